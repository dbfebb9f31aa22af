"""The data-parallel twin computes what the pipeline computes (hunt 9a, findings 1 and 5).

1. A staging buffer the pipeline reuses by hand: ``p1`` squares X[t] into ``T[t % 2]``, ``p2`` copies ``T[t % 2]``
   to Y[t]; the depth-2 channel makes ``p1`` wait for ``p2`` to finish item t - 2 before it overwrites its slot.
   The listing runs ``p1`` ahead, so a twin in the listing's order gives every Y[t] the last square written to its
   slot (x[4]**2 or x[5]**2). The twin follows the pipeline run when it has one, and says that it cannot when not.
5. State kept on chip (docs/explanation/on_chip.md's running sum in UB): each core has its own copy, so a twin that
   deals the tiles over 4 cores leaves each core a part of the sum. The tasks that pass the value on stay on one
   core; tasks that start a new value (an Out write) or touch no state are dealt by tile as before.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from source_lines import here

from ptort_lab import (
    Channel,
    Dense,
    DType,
    In,
    InOut,
    Location,
    Out,
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
from ptort_lab.explore import Knobs, ReusedBufferWarning, data_parallel_twin, run_study

R, C, N, F32 = 4, 4, 6, DType.F32
T = Tile[R, C, F32]
X_DATA = np.random.default_rng(9).random((N, R, C)).astype(np.float32)


@kernel
def square(x: In[T], y: Out[T]):
    v = tl.load(x)
    tl.store(y, tl.mul(v, v))


@kernel
def copy(x: In[T], y: Out[T]):
    tl.store(y, tl.load(x))


@kernel
def zero(y: Out[T]):
    tl.store(y, tl.full(R, C, 0.0, F32))


@kernel
def add_into(x: In[T], acc: InOut[T]):
    tl.store(acc, tl.add(tl.load(acc), tl.load(x)))


def staged(slots=2, depth=2):
    """p1: square X[t] into T[t % slots]; p2: copy T[t % slots] to Y[t]. (X, Y: the tensors.)"""
    X, Y = Tensor(data=X_DATA.copy(), name="X"), Tensor(data=np.zeros_like(X_DATA), name="Y")
    staging = Tensor(shape=(slots, R, C), dtype=F32, name="T")
    ch = Channel(name="c", depth=depth)
    p1 = process("p1").produces(ch).body(
        for_each(Dense[N](), lambda t: send(ch, task(square, [t], {"x": X[t], "y": staging[t % slots]}), token=t)))
    p2 = process("p2").consumes(ch).body(consume(ch, lambda t: task(copy, [t], {"x": staging[t % slots],
                                                                                 "y": Y[t]})))
    return connect(p1, p2), Y


SQUARES = X_DATA * X_DATA  # what the pipeline computes, by hand
LISTING_ORDER = np.stack([SQUARES[4], SQUARES[5]] * 3)  # what a twin in the listing's order computes

NOTE_PARTS = ("tile T[0] (written again by process 'p1' in a later iteration, square at test_twin_values_round9.py:",
              ", before any task read the value it held; read by process 'p2', copy): the pipeline reuses this "
              "buffer item after item, which its channels keep right (a producer waits for a free slot, that is for "
              "the consumer to finish the item before), but the listing runs each process ahead without those "
              "waits; ",
              ", so the data-parallel twin runs the tasks in the listing's order, in which the readers see only the "
              "last value written, and may compute a different result than the pipeline.",
              "to avoid the reuse, give each item its own tile (T[t] rather than T[t % 2]) or pass the tiles through "
              "a tile channel (Channel(..., tile=Tile[...]) and ch.item), which the twin gives one tile per item.")
NO_RUN = "there is no pipeline run whose order the twin could follow"


def test_the_numbers_by_hand():
    """The listing's order gives Y[t] = x[4]**2 for even t and x[5]**2 for odd t: not the squares."""
    assert not np.array_equal(LISTING_ORDER, SQUARES)
    assert np.array_equal(LISTING_ORDER[4:], SQUARES[4:])


def test_the_pipeline_computes_the_squares():
    pipe, Y = staged()
    pipe.compile().execute()
    np.testing.assert_array_equal(Y.data, SQUARES)


def test_a_twin_given_the_run_computes_the_squares():
    """With the pipeline's run, the twin lists the tasks in the run's order (p2 copies slot 0 before p1 reuses
    it) and warns of nothing."""
    pipe, Y = staged()
    program = pipe.compile()
    program.execute()
    Y.data[...] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        twin = data_parallel_twin(pipe, 4, run=program).compile()
    twin.execute()
    np.testing.assert_array_equal(Y.data, SQUARES)
    order = [(t.kernel, t.params[0]) for t in twin.tasks]
    assert order.index(("copy", 0)) < order.index(("square", 2))


def test_a_twin_without_a_run_warns_at_the_callers_line():
    """Without a run the twin keeps the listing's order (Y = the last squares of each slot) and says so."""
    pipe, Y = staged()
    with pytest.warns(ReusedBufferWarning) as caught:
        line = here() + 1
        twin = data_parallel_twin(pipe, 4)
    [w] = caught.list
    text = str(w.message)
    for part in NOTE_PARTS:
        assert part in text, text
    assert f"{NO_RUN}, so" in text
    assert "To follow the pipeline's order, use data_parallel_twin(pipeline, cores, run=program);" in text
    assert (w.filename, w.lineno) == (__file__, line)
    twin.compile().execute()
    np.testing.assert_array_equal(Y.data, LISTING_ORDER)


def test_a_run_that_kept_no_trace_cannot_give_its_order():
    pipe, _ = staged()
    program = pipe.compile(compute_values=False)
    program.execute(keep_trace=False)
    with pytest.warns(ReusedBufferWarning, match=r"the pipeline run kept no trace \(execute\(keep_trace=False\)\), "
                                                 r"so the order it took them in is not known, so the data-parallel"):
        data_parallel_twin(pipe, 2, run=program)


def test_run_study_data_parallel_says_so_on_the_comparison():
    """mode='data-parallel' runs no pipeline: the twin computes the listing's values, and the note says why."""
    pipe, Y = staged()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a study notes it; it does not warn
        c = run_study(pipe, Knobs(cores=4), mode="data-parallel")
    for part in NOTE_PARTS:
        assert part in c.note, c.note
    assert f"{NO_RUN}, so" in c.note
    assert "To follow the pipeline's order, use mode='both' (the twin then follows the pipeline run);" in c.note
    assert f"  ({c.note})" in c.summary().splitlines()
    np.testing.assert_array_equal(Y.data, LISTING_ORDER)


def test_run_study_both_follows_the_pipeline_run():
    pipe, Y = staged()
    c = run_study(pipe, Knobs(cores=4), mode="both")
    assert c.note == ""
    np.testing.assert_array_equal(Y.data, SQUARES)
    order = [(t.kernel, t.params[0]) for t in c.data_parallel.tasks]
    assert order.index(("copy", 0)) < order.index(("square", 2))


def test_run_study_data_parallel_of_a_program_that_ran_follows_its_run():
    pipe, Y = staged()
    program = pipe.compile()
    program.execute()
    c = run_study(program, Knobs(cores=4), mode="data-parallel")
    assert c.note == ""
    np.testing.assert_array_equal(Y.data, SQUARES)
    order = [(t.kernel, t.params[0]) for t in c.data_parallel.tasks]
    assert order.index(("copy", 0)) < order.index(("square", 2))


def test_a_buffer_per_item_is_left_as_it_was():
    """T[t] (a tile per item): no warning, and the twin lists the tasks process by process, as before."""
    pipe, Y = staged(slots=N)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        twin = data_parallel_twin(pipe, 4).compile()
    twin.execute()
    np.testing.assert_array_equal(Y.data, SQUARES)
    assert [(t.kernel, t.params) for t in twin.tasks if t.kernel == "square"] == [("square", [t]) for t in range(N)]
    assert [(t.kernel, t.params) for t in twin.workload.enumerate()] == \
        [(t.kernel, t.params) for t in pipe.enumerate()]


def test_a_value_built_up_and_then_handed_on_is_left_as_it_was():
    """p1 accumulates every X[t] into A (an InOut: each write reads the last one), then hands A on once; and it
    zeroes Z[t] and fills it in the same iteration (a write nobody reads, but not a reuse). No warning, and the twin
    computes what numpy does."""
    X, A = Tensor(data=X_DATA.copy(), name="X"), Tensor(data=np.zeros((1, R, C), np.float32), name="A")
    Z, Y = Tensor(data=np.ones_like(X_DATA), name="Z"), Tensor(data=np.zeros((N + 1, R, C), np.float32), name="Y")
    done, items = Channel(name="done", depth=1), Channel(name="items", depth=2)

    def produce():
        return [for_each(Dense[N](), lambda t: [add_into[t](x=X[t], acc=A[0]), zero[t](y=Z[t]),
                                                send(items, square[t](x=X[t], y=Z[t]))]),
                send(done, copy(x=A[0], y=A[0]))]  # (an in-place copy: the send of the finished sum)

    p1 = process("p1").produces(items, done).body_func(produce)
    p2 = process("p2").consumes(items).body(consume(items, lambda t: copy[t](x=Z[t], y=Y[t])))
    p3 = process("p3").consumes(done).body(consume(done, lambda _: copy(x=A[0], y=Y[N])))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        twin = data_parallel_twin(connect(p1, p2, p3), 4).compile()
    twin.execute()
    total = np.zeros((R, C), np.float32)
    for tile in X_DATA:
        total = total + tile
    np.testing.assert_array_equal(Y.data[:N], SQUARES)
    np.testing.assert_array_equal(Y.data[N], total)


# -- on-chip state -----------------------------------------------------------------------------------------------------
BIG = Tile[64, 64, F32]
TILES = np.random.default_rng(5).random((8, 64, 64)).astype(np.float32)


@kernel
def accumulate(x: In[BIG], acc: InOut[BIG]):
    tl.store(acc, tl.add(tl.load(acc), tl.load(x)))


@kernel
def start(x: In[BIG], acc: Out[BIG]):
    tl.store(acc, tl.load(x))


@kernel
def emit(acc: In[BIG], y: Out[BIG]):
    tl.store(y, tl.load(acc))


@kernel
def double(x: In[BIG], y: Out[BIG]):
    tl.store(y, tl.add(tl.load(x), tl.load(x)))


def running_sum():
    """docs/explanation/on_chip.md's example, plus a task per tile that touches no state (D[t] = 2 X[t]) and one
    more before emit (E = 2 X[0]), so that emit is task 17, whose own key would put it on core 1 of 4."""
    X, Y = Tensor(data=TILES), Tensor(shape=(64, 64), dtype=F32)
    D, E = Tensor(shape=(8, 64, 64), dtype=F32), Tensor(shape=(64, 64), dtype=F32)
    acc = Tensor(shape=(64, 64), dtype=F32, location=Location.UB, name="acc")
    summer = process("sum").body_func(lambda: [for_each(Dense[8](), lambda t: [accumulate[t](x=X[t], acc=acc),
                                                                               double[t](x=X[t], y=D[t])]),
                                               double(x=X[0], y=E), emit(acc=acc, y=Y)])
    return connect(summer), acc, Y, D


def cores_of(program):
    """Each task's (kernel, first axis value or None) -> the core it ran on."""
    by_id = {t.id: (t.kernel, t.params[0] if t.params else None) for t in program.tasks}
    return {by_id[sp.task_id]: sp.core for sp in program.trace().spans if sp.task_id in by_id}


def test_a_running_sum_in_ub_stays_on_one_core_of_the_twin():
    """The sum's tasks (accumulate, then emit) run on one core, so Y is the whole sum (by hand, in order); the
    tasks that touch no state are dealt by tile over the 4 cores as before."""
    total = np.zeros((64, 64), np.float32)
    for tile in TILES:
        total = total + tile
    pipe, acc, Y, D = running_sum()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        twin = data_parallel_twin(pipe, 4).compile()
    twin.execute()
    np.testing.assert_array_equal(Y.data, total)
    np.testing.assert_array_equal(D.data, TILES + TILES)
    cores = cores_of(twin)
    assert [t.id for t in twin.tasks if t.kernel == "emit"] == [17]
    assert {cores[("accumulate", t)] for t in range(8)} == {cores[("emit", None)]} == {0}
    assert [cores[("double", t)] for t in range(8)] == [t % 4 for t in range(8)]
    assert list(twin.on_chip(acc)) == [(0, "AIV0")]


def test_run_study_of_the_running_sum_computes_the_sum():
    """The repro: run_study(..., mode='data-parallel') on 4 cores, no note."""
    total = np.zeros((64, 64), np.float32)
    for tile in TILES:
        total = total + tile
    pipe, _, Y, _ = running_sum()
    c = run_study(pipe, Knobs(cores=4), mode="data-parallel")
    np.testing.assert_array_equal(Y.data, total)
    assert c.note == ""


def test_state_started_anew_per_tile_is_still_dealt_by_tile():
    """A value each tile starts anew (an Out write, then an InOut update): each tile's tasks keep to its own core,
    as before, and each Y[t] is 2 X[t] by hand."""
    X, Y = Tensor(data=TILES), Tensor(shape=(8, 64, 64), dtype=F32)
    acc = Tensor(shape=(64, 64), dtype=F32, location=Location.UB, name="acc")
    body = for_each(Dense[8](), lambda t: [start[t](x=X[t], acc=acc), accumulate[t](x=X[t], acc=acc),
                                           emit[t](acc=acc, y=Y[t])])
    twin = data_parallel_twin(connect(process("per_tile").body(body)), 4).compile()
    twin.execute()
    np.testing.assert_array_equal(Y.data, TILES + TILES)
    cores = cores_of(twin)
    for name in ("start", "accumulate", "emit"):
        assert [cores[(name, t)] for t in range(8)] == [t % 4 for t in range(8)]
