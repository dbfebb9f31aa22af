"""A study's cache of recent timing-only runs (run_cache.RunCache): a knob that leaves one side's workload as it was
reruns only the other side, a move back reruns nothing, and every result is exactly a fresh study's. The content
key tells apart every change that can change a run, and only that."""
from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from ptort_lab import (
    Channel,
    Dense,
    DType,
    In,
    InOut,
    Out,
    PinnedCosts,
    PtortTypeError,
    PtortValueError,
    Tensor,
    Tile,
    connect,
    consume,
    for_each,
    kernel,
    process,
    send,
    task,
    tl,
)
from ptort_lab.explore import Knobs, Study, run_study
from ptort_lab.run_cache import RunCache, content_key
from ptort_lab.spec_pipeline import build as spec_build

F32 = DType.F32
N = 4


@kernel(cycles=100)
def accumulate(x: In[Tile[4, 4, F32]], y: InOut[Tile[4, 4, F32]]):
    tl.store(y, tl.add(tl.load(y), tl.load(x)))


@kernel(cycles=50)
def double(x: In[Tile[4, 4, F32]], y: Out[Tile[4, 4, F32]]):
    v = tl.load(x)
    tl.store(y, tl.add(v, v))


@kernel(cycles=50)
def triple(x: In[Tile[4, 4, F32]], y: Out[Tile[4, 4, F32]]):
    v = tl.load(x)
    tl.store(y, tl.add(tl.add(v, v), v))


def in_place(X: Tensor, Y: Tensor, depth: int = 2, first=double, tiles: int = N, T: Tensor | None = None):
    """loader: T = 2 X; adder: Y += X in place (one run leaves Y = Y0 + X)."""
    T = T if T is not None else Tensor(shape=(N, 4, 4), dtype=F32, name="T")
    ch = Channel(name="c", depth=depth)
    loader = process("loader").produces(ch).body(
        for_each(Dense[tiles](), lambda t: send(ch, task(first, [t], {"x": X[t], "y": T[t]}))))
    adder = process("adder").consumes(ch).body(consume(ch, lambda t: task(accumulate, [t], {"x": X[t], "y": Y[t]})))
    return connect(loader, adder)


def tensors():
    x = np.arange(N * 16, dtype=np.float32).reshape(N, 4, 4) + 1
    return x, Tensor(data=x, name="X"), Tensor(data=np.zeros_like(x), name="Y")


def figures(program) -> dict:
    """Everything a run's stats say, but how long compiling and simulating took on this machine."""
    stats = dataclasses.asdict(program.stats())
    for name in ("compile_time_ms", "execute_time_ms"):
        stats.pop(name)
    return stats


def assert_same_as_fresh(comparison, study: Study, changes: dict) -> None:
    """``comparison`` equals what a new Study (no cache) gives for the same knobs: traces, stats, table, verdict."""
    fresh = Study(study.build, study.knobs, study.mode, equal_cores=study.equal_cores,
                  **study.compile_options).run(**changes)
    assert fresh.knobs == comparison.knobs
    assert [label for label, _ in fresh.runs] == [label for label, _ in comparison.runs]
    for (_, a), (_, b) in zip(comparison.runs, fresh.runs):
        assert a.trace().to_chrome_json() == b.trace().to_chrome_json()
        assert figures(a) == figures(b)
    assert comparison.rows() == fresh.rows() and comparison.verdict() == fresh.verdict()


# -- a sequence of moves -------------------------------------------------------------------------------------------
MOVES = [  # (knob changes, pipeline from which earlier move or None: new, twin likewise)
    ({}, None, None),
    ({"depth": 3}, None, 0),          # the twin has no channels: the depth leaves it as it was
    ({"cores": 3}, 1, None),          # the builder takes no cores: the pipeline stays
    ({"depth": 2}, 0, 2),             # back to the first pipeline; the 3-core twin stays
    ({"cores": 2}, 3, 0),             # back to the first move altogether
    ({"tiles": 5}, None, None),       # new tasks on both sides
    ({"tile": (64, 64)}, None, None),
    ({"tile": (32, 32), "tiles": 4}, 0, 0),
]


@pytest.mark.parametrize("options", [{"compute_values": False},
                                     {"compute_values": False, "cost_model": PinnedCosts()},
                                     {"compute_values": False, "channel_latency_cycles": 7}],
                         ids=["npu-model", "pinned-costs", "latency-7"])
def test_every_move_equals_a_fresh_study_and_reruns_only_what_changed(options):
    study = Study(spec_build, Knobs(depth=2, tile=(32, 32), tiles=4, cores=2), cache=RunCache(), **options)
    done = []
    for changes, pipeline_from, twin_from in MOVES:
        comparison = study.run(**changes)
        assert_same_as_fresh(comparison, study, {})
        old = [c.pipeline for c in done], [c.data_parallel for c in done]
        for side, source, earlier in (("pipeline", pipeline_from, old[0]), ("twin", twin_from, old[1])):
            program = comparison.pipeline if side == "pipeline" else comparison.data_parallel
            if source is None:
                assert all(program is not p for p in earlier), (changes, side)
            else:
                assert program is earlier[source], (changes, side)
        done.append(comparison)
    assert (study.cache.hits, study.cache.misses) == (8, 8)


def test_equal_cores_reuse_the_pipeline_and_give_the_twin_its_cores():
    study = Study(spec_build, Knobs(depth=2, tile=(32, 32), tiles=4, cores=4), cache=RunCache(),
                  compute_values=False)
    unequal = study.run()
    study.equal_cores = True
    equal = study.run()
    assert equal.pipeline is unequal.pipeline and equal.data_parallel is not unequal.data_parallel
    assert equal.knobs.cores == 3 and equal.equal_cores
    assert_same_as_fresh(equal, study, {})


def test_a_study_without_a_cache_runs_everything_again():
    study = Study(spec_build, Knobs(tile=(32, 32), tiles=4), compute_values=False)
    first, again = study.run(), study.run()
    assert study.cache is None
    assert first.pipeline is not again.pipeline and first.data_parallel is not again.data_parallel


# -- values --------------------------------------------------------------------------------------------------------
def test_runs_that_compute_values_are_never_taken_from_the_cache():
    """A values study: the pipeline computes (and is restored) every time, the timing-only twin comes from the
    cache, and Y is X after every run, as after one."""
    x, X, Y = tensors()
    study = Study(lambda depth: in_place(X, Y, depth), Knobs(depth=2, cores=2), cache=RunCache())
    runs = [study.run(depth=d) for d in (2, 3, 2)]
    np.testing.assert_array_equal(Y.data, x)
    assert all(c.pipeline.run_options.compute_values for c in runs)
    assert len({id(c.pipeline) for c in runs}) == 3
    assert runs[1].data_parallel is runs[0].data_parallel is runs[2].data_parallel
    assert not runs[0].data_parallel.run_options.compute_values
    assert_same_as_fresh(runs[2], study, {})


def test_a_data_parallel_values_study_computes_every_time():
    x, X, Y = tensors()
    study = Study(lambda depth: in_place(X, Y, depth), Knobs(cores=2), "data-parallel", cache=RunCache())
    first, again = study.run(), study.run()
    assert first.data_parallel is not again.data_parallel and again.data_parallel.run_options.compute_values
    np.testing.assert_array_equal(Y.data, x)
    assert len(study.cache) == 0


# -- what the cache will not answer --------------------------------------------------------------------------------
def test_a_cached_program_run_again_differently_is_not_answered():
    """The user re-ran a cached pipeline with another latency: its trace is not the key's any more."""
    study = Study(spec_build, Knobs(tile=(32, 32), tiles=4), cache=RunCache(), compute_values=False)
    first = study.run()
    first.pipeline.set_symbol_u64("__pto_wsp_channel_latency_cycles", 5)
    first.pipeline.execute()
    again = study.run()
    assert again.pipeline is not first.pipeline and again.data_parallel is first.data_parallel
    assert_same_as_fresh(again, study, {})


def test_a_workload_without_a_stable_description_is_run_every_time():
    """A pinned cost that reads a generator has no stable description: the runs are not cached, and are right."""
    ticks = (i for i in itertools.count())

    def build(depth):
        ch = Channel(name="c", depth=depth)
        prod = process("prod").produces(ch).body(
            for_each(Dense[3](), lambda t: send(ch, task("a", [t], {}, cycles=lambda task, _ticks=ticks: 10))))
        cons = process("cons").consumes(ch).body(consume(ch, lambda t: task("b", [t], {}, cycles=30)))
        return connect([prod, cons], [ch])

    study = Study(build, Knobs(cores=2), cache=RunCache(), cost_model=PinnedCosts(), compute_values=False)
    first, again = study.run(), study.run()
    assert first.pipeline is not again.pipeline and first.data_parallel is not again.data_parallel
    assert len(study.cache) == 0 and study.cache.hits == 0
    assert again.pipeline.stats().total_cycles == first.pipeline.stats().total_cycles


def test_the_cache_keeps_the_most_recent_runs():
    cache = RunCache(size=2)
    study = Study(spec_build, Knobs(tile=(32, 32), tiles=2), "pipeline", cache=cache, compute_values=False)
    one, two = study.run(depth=1), study.run(depth=2)
    assert study.run(depth=1).pipeline is one.pipeline  # depth 1 is now the most recent, depth 2 the oldest
    study.run(depth=3)  # pushes depth 2 out
    assert len(cache) == 2
    assert study.run(depth=1).pipeline is one.pipeline
    assert study.run(depth=2).pipeline is not two.pipeline


@pytest.mark.parametrize("make", [lambda: Study(spec_build, cache=3),
                                  lambda: run_study(spec_build(tiles=2), Knobs(), cache={})])
def test_a_cache_that_is_not_a_run_cache_is_refused(make):
    with pytest.raises(PtortTypeError) as err:
        make()
    text = str(err.value)
    assert "(cache=...) takes a RunCache or None, got" in text
    assert "pass cache=RunCache() (from ptort_lab.explore import RunCache)" in text


# -- the content key -----------------------------------------------------------------------------------------------
def key_of(workload, **options):
    return RunCache().key("pipeline", workload, options={"compute_values": False, **options})


def test_the_same_content_built_twice_has_one_key():
    _, X, Y = tensors()
    _, X2, Y2 = tensors()
    assert key_of(in_place(X, Y)) == key_of(in_place(X, Y)) == key_of(in_place(X2, Y2))
    assert key_of(spec_build(tiles=3)) == key_of(spec_build(tiles=3))


def test_every_change_that_can_change_a_run_changes_the_key():
    _, X, Y = tensors()
    T = Tensor(shape=(N, 4, 4), dtype=F32, name="T")
    base = key_of(in_place(X, Y, T=T))
    variants = {
        "depth": key_of(in_place(X, Y, depth=3, T=T)),
        "kernel": key_of(in_place(X, Y, first=triple, T=T)),
        "tiles": key_of(in_place(X, Y, tiles=3, T=T)),
        "tensor shape": key_of(in_place(X, Y, T=Tensor(shape=(N + 2, 4, 4), dtype=F32, name="T"))),
        "tensor name": key_of(in_place(X, Y, T=Tensor(shape=(N, 4, 4), dtype=F32, name="U"))),
        "same tensor twice": key_of(in_place(X, Y, T=Y)),  # T and Y equal in all but identity: Y is both now
        "option": key_of(in_place(X, Y, T=T), channel_latency_cycles=3),
        "cost model": key_of(in_place(X, Y, T=T), cost_model=PinnedCosts()),
    }
    assert len({base, *variants.values()}) == len(variants) + 1, variants


def test_tensor_values_count_only_where_a_run_may_read_them():
    x, X, Y = tensors()
    other = Tensor(data=x * 2, name="X")
    assert key_of(in_place(X, Y)) == key_of(in_place(other, Y))

    class OwnModel(PinnedCosts):  # a cost model of the user's own may read anything
        pass

    assert key_of(in_place(X, Y), cost_model=OwnModel()) != key_of(in_place(other, Y), cost_model=OwnModel())


def test_a_run_that_computes_values_has_no_key():
    cache = RunCache()
    assert cache.key("pipeline", spec_build(tiles=2), options={}) is None
    assert cache.key("pipeline", spec_build(tiles=2), options={"compute_values": True}) is None
    assert cache.key("pipeline", spec_build(tiles=2), options={"compute_values": False}) is not None


def test_what_cannot_be_described_has_no_key():
    assert content_key((i for i in range(3))) is None  # a generator
    assert content_key((2**20000,)) is None  # Python refuses the repr of a 6,000-digit int
    assert content_key((1, "a")) == content_key((1, "a")) != content_key((1, "b"))


@pytest.mark.parametrize("size", [0, -1, 2.5, "4", True])
def test_a_cache_size_that_is_not_a_count_is_refused(size):
    with pytest.raises(PtortValueError) as err:
        RunCache(size=size)
    assert str(err.value).startswith(f"RunCache(size=...) must be an int >= 1, got {type(size).__name__} {size!r}.")
    assert "RunCache(size=32) (the default)" in str(err.value)
