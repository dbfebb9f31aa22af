"""per_core(build, cores): one independent pipeline per core in one call — names, placement (which core and unit
each process gets), numerics, timing by hand, and an error for each misuse."""
from __future__ import annotations

import numpy as np
import pytest

from ptort_lab import (
    Channel,
    Dense,
    DType,
    Event,
    In,
    Out,
    PipelineError,
    PtortValueError,
    Tensor,
    Tile,
    connect,
    consume,
    for_each,
    kernel,
    per_core,
    process,
    record,
    send,
    synchronize,
    task,
    tl,
)
from ptort_lab.errors import UserCodeError
from ptort_lab.sim.cost_model import PinnedCosts

F32 = DType.F32
ITEMS = 4


@kernel
def copy(src: In[Tile[16, 16, F32]], dst: Out[Tile[16, 16, F32]]):
    tl.store(dst, tl.load(src))


@kernel
def double(src: In[Tile[16, 16, F32]], dst: Out[Tile[16, 16, F32]]):
    tl.store(dst, tl.load(src) * 2.0)


def data(cores: int):
    x = np.random.default_rng(0).standard_normal((cores, ITEMS, 16, 16)).astype(np.float32)
    return x, Tensor(data=x), Tensor(shape=x.shape, dtype=F32), Tensor(shape=x.shape, dtype=F32)


def two_stages(X, T, Y, placement=None, name="ch"):
    """build(core): a loader and a doubler of that core's rows of X, coupled by a fresh channel."""
    def build(core):
        ch = Channel(name=name, depth=2)
        load = process("load").produces(ch).body(
            for_each(Dense[ITEMS](), lambda t: send(ch, copy[t](src=X[core, t], dst=T[core, t]))))
        dbl = process("dbl").consumes(ch).body(consume(ch, lambda t: double[t](src=T[core, t], dst=Y[core, t])))
        pipe = connect(load, dbl)
        return pipe.place(placement) if placement is not None else pipe
    return build


def test_each_copy_gets_its_own_names_and_its_own_core():
    x, X, T, Y = data(3)
    pipe = per_core(two_stages(X, T, Y), cores=3)
    assert [p.name for p in pipe.processes] == ["load@c0", "dbl@c0", "load@c1", "dbl@c1", "load@c2", "dbl@c2"]
    assert [c.name for c in pipe.channels] == ["ch@c0", "ch@c1", "ch@c2"]
    assert pipe.schedule.placement == {"load@c0": 0, "dbl@c0": 0, "load@c1": 1, "dbl@c1": 1, "load@c2": 2,
                                       "dbl@c2": 2}
    program = pipe.compile().execute()
    np.testing.assert_array_equal(Y.data, 2 * x)
    assert {s.process: s.core for s in program.trace().spans} == {"load@c0": 0, "dbl@c0": 0, "load@c1": 1,
                                                                  "dbl@c1": 1, "load@c2": 2, "dbl@c2": 2}


def test_a_copys_placement_moves_to_its_core_and_keeps_the_unit():
    """{"load": 0, "dbl": (0, 1)}: on copy 2 the loader on core 2 (AIV0), the doubler on core 2's AIV1."""
    x, X, T, Y = data(3)
    pipe = per_core(two_stages(X, T, Y, {"load": 0, "dbl": (0, 1)}), cores=3)
    assert pipe.schedule.placement == {"load@c0": 0, "dbl@c0": (0, 1), "load@c1": 1, "dbl@c1": (1, 1),
                                       "load@c2": 2, "dbl@c2": (2, 1)}
    program = pipe.compile().execute()
    lanes = {(s.process, s.core, s.lane.split(".")[0]) for s in program.trace().spans}
    assert ("dbl@c2", 2, "AIV1") in lanes and ("load@c2", 2, "AIV0") in lanes
    np.testing.assert_array_equal(Y.data, 2 * x)


def test_a_placement_that_names_the_copys_own_core_works_too():
    x, X, T, Y = data(2)

    def build(core):
        return two_stages(X, T, Y, {"load": core, "dbl": (core, 1)})(core)

    assert per_core(build, cores=2).schedule.placement == {"load@c0": 0, "dbl@c0": (0, 1), "load@c1": 1,
                                                           "dbl@c1": (1, 1)}


def test_names_a_builder_made_unique_stay():
    x, X, T, Y = data(2)

    def build(core):
        ch = Channel(name=f"ch{core}", depth=1)
        a = process(f"a{core}").produces(ch).body(for_each(Dense[2](), lambda t: send(ch, task("a", [t], []))))
        b = process(f"b{core}").consumes(ch).body(consume(ch, lambda t: task("b", [t], [])))
        return connect(a, b)

    pipe = per_core(build, cores=2)
    assert [p.name for p in pipe.processes] == ["a0", "b0", "a1", "b1"]
    assert [c.name for c in pipe.channels] == ["ch0", "ch1"]


def test_copies_run_side_by_side_and_their_channels_stay_on_one_core_by_hand():
    """Pinned costs: loader 10 cycles per item, doubler 20, depth 2, hop latency L = 100 between cores, by the
    recurrence S_k(i) = max(F_k(i-1), F_k-1(i) + L, F_k+1(i-2) + L). Per core the channel stays on chip (L = 0):
    loads 0-10, 10-20, 30-40, 50-60 (each third waits for a freed slot), doubles 10-30, 30-50, 50-70, 70-90, on every
    copy at once. A core per process pays the hop both ways: doubles 110-130, 130-150, then load 2 waits for double
    0's slot (130 + 100) and runs 230-240, so doubles 2 and 3 run 340-360, 360-380."""
    def build(core):
        ch = Channel(name="ch", depth=2)
        a = process("a").produces(ch).body(for_each(Dense[ITEMS](), lambda t: send(ch, task("a", [t], [],
                                                                                             cycles=10))))
        b = process("b").consumes(ch).body(consume(ch, lambda t: task("b", [t], [], cycles=20)))
        return connect(a, b)

    program = per_core(build, cores=4).compile(cost_model=PinnedCosts(), channel_latency_cycles=100).execute()
    assert program.trace().process_end == {f"{p}@c{c}": (60 if p == "a" else 90) for c in range(4) for p in "ab"}
    assert sorted((s.start, s.end) for s in program.trace().spans if s.process == "b@c3") == [
        (10, 30), (30, 50), (50, 70), (70, 90)]
    apart = build(0).compile(cost_model=PinnedCosts(), channel_latency_cycles=100).execute()
    assert sorted((s.start, s.end) for s in apart.trace().spans if s.process == "b") == [
        (110, 130), (130, 150), (340, 360), (360, 380)]


def test_events_repeated_across_copies_are_renamed_with_them():
    def build(core):
        ev = Event(name="go")
        a = process("a").body(for_each(Dense[1](), lambda t: record(ev)))
        b = process("b").body(for_each(Dense[1](), lambda t: synchronize(ev)))
        return connect(a, b)

    pipe = per_core(build, cores=2)
    program = pipe.compile(cost_model=PinnedCosts()).execute()
    assert program.stats().total_cycles == 0


# -- misuse ----------------------------------------------------------------------------------------------------------
def test_more_cores_than_the_machine_has_is_refused_at_compile():
    x, X, T, Y = data(30)
    pipe = per_core(two_stages(X, T, Y), cores=30)
    with pytest.raises(PtortValueError) as e:
        pipe.compile()
    assert e.value.what == ("process 'load@c24' is placed on core 24, but machine 'ascend_910b' has 24 AI cores "
                            "(0..23); the placement uses 30.")
    assert e.value.hint == ("Use at most 24 cores (per_core(build, cores=24)), or a machine with more: "
                            "compile(machine=ascend_910b.replace(num_cores=30)).")
    assert e.value.where is not None and e.value.where.filename.endswith("test_per_core.py")
    on_24 = per_core(two_stages(X, T, Y), cores=24)
    on_24.compile(compute_values=False)  # fits the 910B2
    with pytest.raises(PtortValueError, match=r"process 'load@c20' is placed on core 20, but machine 'ascend_910b4' "
                                              r"has 20 AI cores \(0..19\); the placement uses 24\."):
        on_24.compile(machine="ascend_910b4")


@pytest.mark.parametrize("cores, what", [
    (0, "per_core: cores must be an int in 1..4096, got 0."),
    (-2, "per_core: cores must be an int in 1..4096, got -2."),
    (2.0, "per_core: cores must be an int in 1..4096, got 2.0."),
    (True, "per_core: cores must be an int in 1..4096, got True."),
    (5000, "per_core: cores must be an int in 1..4096, got 5000."),
], ids=["zero", "negative", "float", "bool", "too-many"])
def test_a_bad_core_count_is_refused(cores, what):
    with pytest.raises(PipelineError) as e:
        per_core(lambda core: None, cores=cores)
    assert e.value.what == what and e.value.hint
    assert e.value.where is not None and e.value.where.filename.endswith("test_per_core.py")


def test_build_must_be_a_function_returning_a_pipeline():
    with pytest.raises(PipelineError, match=r"per_core: build must be a function of the core returning a Pipeline, "
                                            r"got int 3\."):
        per_core(3, cores=2)
    with pytest.raises(PipelineError) as e:
        per_core(lambda core: None, cores=2)
    assert e.value.what == "per_core: build(0) returned NoneType None, not a pipeline."
    assert e.value.hint.startswith("Return the connect(...) of that copy's processes")
    with pytest.raises(PipelineError, match=r"build\(0\) returned Process Process\('p'\), not a pipeline"):
        per_core(lambda core: process("p").body(task("x", [0], [])), cores=2)


def test_an_error_in_build_is_the_users_error_at_its_line():
    def build(core):
        return {}["missing"]  # the user's bug

    with pytest.raises(UserCodeError) as e:
        per_core(build, cores=2)
    assert e.value.what.startswith("the per_core builder (for core 0) raised KeyError: 'missing'")
    assert e.value.where is not None and e.value.where.code == 'return {}["missing"]  # the user\'s bug'


def test_a_channel_made_outside_build_is_refused():
    x, X, T, Y = data(2)
    shared = Channel(name="ch", depth=2)

    def build(core):
        load = process("load").produces(shared).body(
            for_each(Dense[ITEMS](), lambda t: send(shared, copy[t](src=X[core, t], dst=T[core, t]))))
        dbl = process("dbl").consumes(shared).body(consume(shared, lambda t: double[t](src=T[core, t],
                                                                                      dst=Y[core, t])))
        return connect(load, dbl)

    with pytest.raises(PipelineError) as e:
        per_core(build, cores=2)
    assert e.value.what == ("per_core: copies 0 and 1 share the channel 'ch' (the same object): build returned it "
                            "twice, so the copies would not be independent.")
    assert e.value.hint.startswith("Create the channel inside build(core), so every call makes a fresh one")


def test_a_process_or_event_made_outside_build_is_refused():
    p = process("p").body(for_each(Dense[1](), lambda t: task("x", [t], [])))
    with pytest.raises(PipelineError, match=r"copies 0 and 1 share the process 'p' \(the same object\)"):
        per_core(lambda core: connect(p), cores=2)
    ev = Event(name="go")

    def build(core):
        return connect(process("a").body(for_each(Dense[1](), lambda t: record(ev))),
                       process("b").body(for_each(Dense[1](), lambda t: synchronize(ev))))

    with pytest.raises(PipelineError, match=r"copies 0 and 1 share the Event 'go' \(the same object\)"):
        per_core(build, cores=2)


@pytest.mark.parametrize("placement, what", [
    ({"load": 1, "dbl": 0}, "per_core: copy 0 places process 'load' on 1; each copy runs on one core, its own "
     "(core 0)."),
    ({"load": 0, "dbll": 0}, "per_core: copy 0's placement names unknown process(es) ['dbll']."),
    ("apart", "per_core: copy 0 is placed 'apart'; a copy's placement is 'shared' or a dict process -> place."),
], ids=["other-core", "unknown-name", "not-a-dict"])
def test_a_copy_placed_off_its_core_is_refused(placement, what):
    x, X, T, Y = data(2)

    def build(core):
        pipe = two_stages(X, T, Y)(core)
        return pipe._with(placement=placement)  # (place() itself accepts any value)

    with pytest.raises(PipelineError) as e:
        per_core(build, cores=2)
    assert e.value.what == what and e.value.hint


def test_a_copy_may_be_a_p_pipe_block():
    """A @workload whose body is one `with P.pipe():` block is a pipeline too: its stages are renamed per copy. Depth
    1 serialises each copy's stages (a 0-5, b 5-10, a 10-15, b 15-20), and the two copies run side by side."""
    from ptort_lab import P, workload

    def build(core):
        ch = Channel(name="ch", depth=1)

        @workload
        def stages():
            with P.pipe():
                for_each(Dense[2](), lambda t: send(ch, task("a", [t], [], cycles=5)))
                consume(ch, lambda t: task("b", [t], [], cycles=5))

        return stages()

    pipe = per_core(build, cores=2)
    assert [p.name for p in pipe.processes] == ["stage0@c0", "stage1@c0", "stage0@c1", "stage1@c1"]
    assert pipe.compile(cost_model=PinnedCosts()).execute().stats().total_cycles == 20
