"""Values follow simulated time in pipelines whose processes run until they block (sim/access_order.py): two
processes touching one tensor region with nothing ordering them are computed in time order, with a warning."""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from source_lines import here

from ptort_lab import DType, In, Out, PinnedCosts, Process, Tensor, Tile, connect, kernel, task, tl
from ptort_lab.errors import UnorderedAccessWarning, UserCodeError
from ptort_lab.sim.journal import recording
from ptort_lab.sim.numerics import Writes

F32 = DType.F32


@kernel(cycles=100)
def produce(src: In[Tile[4, 4, F32]], dst: Out[Tile[4, 4, F32]]):
    tl.store(dst, tl.adds(tl.load(src), 1.0))


@kernel(cycles=10)
def use(src: In[Tile[4, 4, F32]], dst: Out[Tile[4, 4, F32]]):
    tl.store(dst, tl.muls(tl.load(src), 2.0))


@kernel(cycles=50)
def idle(src: In[Tile[4, 4, F32]], dst: Out[Tile[4, 4, F32]]):
    tl.store(dst, tl.load(src))


def _tensors():
    x = np.ones((2, 4, 4), np.float32)
    return Tensor(data=x), Tensor(data=np.zeros_like(x)), Tensor(data=np.zeros_like(x))


def _spans(program):
    return [(s.process, s.name, s.start, s.end) for s in program.trace().spans]


def test_a_read_computed_after_a_write_that_comes_later_in_time_is_computed_again_in_time_order():
    X, T, Y = _tensors()
    w_line = here() + 1
    writer = Process("writer").body_func(lambda: [produce[0](src=X[0], dst=T[0]), produce[1](src=X[1], dst=T[1])])
    r_line = here() + 1
    reader = Process("reader").body_func(lambda: [use[1](src=T[1], dst=Y[1])])
    program = connect(writer, reader).compile(cost_model=PinnedCosts(), channel_latency_cycles=0)
    with pytest.warns(UnorderedAccessWarning) as caught:
        line = here() + 1
        program.execute()
    assert len(caught) == 1 and (caught[0].filename, caught[0].lineno) == (__file__, line)
    assert str(caught[0].message) == (
        "two processes touch the same memory with nothing ordering them: process 'reader' reads it as 'src' of use "
        f"(test_access_order.py:{r_line}) at cycle 0 and process 'writer' writes it as 'dst' of produce "
        f"(test_access_order.py:{w_line}) at cycle 100, but the run had computed them the other way round. It ran "
        "again in time order, so its values follow simulated time (as its trace shows); on hardware the order of such "
        "accesses is a race.\nHint: order them with a channel (send/consume) or an Event, or give each process its "
        "own tensor.")
    # the reader read T[1] at cycle 0, before the writer wrote it at 100..200: it saw zeros (the NPU model's value)
    np.testing.assert_array_equal(Y.data[1], np.zeros((4, 4), np.float32))
    np.testing.assert_array_equal(T.data, np.full((2, 4, 4), 2.0, np.float32))
    timing = connect(writer, reader).compile(cost_model=PinnedCosts(), channel_latency_cycles=0,
                                             compute_values=False).execute()
    assert sorted(_spans(program)) == sorted(_spans(timing)) == [
        ("reader", "use", 0, 10), ("writer", "produce", 0, 100), ("writer", "produce", 100, 200)]


def test_a_write_computed_after_a_read_that_comes_later_in_time_is_computed_again_in_time_order():
    X, T, Y = _tensors()
    S = Tensor(data=np.zeros((2, 4, 4), np.float32))
    reader = Process("reader").body_func(lambda: [idle[0](src=X[0], dst=S[0]), use[0](src=T[0], dst=Y[0])])
    writer = Process("writer").body_func(lambda: [produce[0](src=X[0], dst=T[0])])
    program = connect(reader, writer).compile(cost_model=PinnedCosts(), channel_latency_cycles=0)
    with pytest.warns(UnorderedAccessWarning, match=r"process 'writer' writes it as 'dst' of produce .* at cycle 0 "
                                                    r"and process 'reader' reads it as 'src' of use .* at cycle 50,"):
        program.execute()
    # the write (0..100) comes before the read (50..60) starts in simulated time: the reader sees 2, so Y is 4
    np.testing.assert_array_equal(Y.data[0], np.full((4, 4), 4.0, np.float32))


def test_accesses_in_time_order_run_once_with_no_warning():
    X, T, Y = _tensors()
    writer = Process("writer").body_func(lambda: [produce[1](src=X[1], dst=T[1])])
    reader = Process("reader").body_func(lambda: [idle[0](src=X[0], dst=Y[0]), idle[1](src=X[1], dst=Y[1]),
                                                  use[1](src=T[1], dst=Y[1])])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        connect(writer, reader).compile(cost_model=PinnedCosts(), channel_latency_cycles=0).execute()
    np.testing.assert_array_equal(Y.data[1], np.full((4, 4), 4.0, np.float32))  # read at 100, written 0..100


def test_a_run_that_fails_after_its_first_attempt_still_leaves_its_outputs_as_they_were():
    X, T, Y = _tensors()
    writer = Process("writer").body_func(lambda: [produce[0](src=X[0], dst=T[0]), produce[1](src=X[1], dst=T[1])])
    reader = Process("reader").body_func(lambda: [use[1](src=T[1], dst=Y[1]), task("boom", [0], [Y[0]])])
    program = connect(writer, reader).compile(cost_model=PinnedCosts(), channel_latency_cycles=0)

    def boom(y):
        raise ValueError("no")
    program.register_kernel("boom", boom)
    with pytest.warns(UnorderedAccessWarning), pytest.raises(UserCodeError) as e:
        program.execute()  # (the time-ordered run fails; the first attempt never reached the host kernel)
    assert e.value.hint.endswith("Outputs left unchanged: f32[2, 4, 4] and f32[2, 4, 4] are as before the run (a run "
                                 "writes its outputs only if it succeeds).")
    np.testing.assert_array_equal(T.data, np.zeros((2, 4, 4), np.float32))
    np.testing.assert_array_equal(Y.data, np.zeros((2, 4, 4), np.float32))


def test_a_recorded_run_keeps_the_writes_of_the_attempt_it_kept():
    X, T, Y = _tensors()
    writer = Process("writer").body_func(lambda: [produce[1](src=X[1], dst=T[1])])
    reader = Process("reader").body_func(lambda: [idle[0](src=X[0], dst=Y[0]), idle[1](src=X[1], dst=Y[1]),
                                                  use[1](src=T[1], dst=Y[1])])
    program = connect(writer, reader).compile(cost_model=PinnedCosts(), channel_latency_cycles=0)
    writes = Writes()
    with recording(writes):
        program.execute()
    assert {id(t) for t in writes.tensors()} == {id(T), id(Y)}
    writes.restore()  # (what a Study does between its runs)
    np.testing.assert_array_equal(T.data, np.zeros((2, 4, 4), np.float32))
    np.testing.assert_array_equal(Y.data, np.zeros((2, 4, 4), np.float32))


def test_column_halves_of_one_array_are_not_the_same_memory():
    """Regions are rows of a storage; two tensors over the left and right halves of one array share rows, not
    bytes: no warning, no second run."""
    X = Tensor(data=np.ones((2, 4, 4), np.float32))
    out = np.zeros((2, 4, 8), np.float32)
    L, R = Tensor(data=out[:, :, :4]), Tensor(data=out[:, :, 4:])
    a = Process("a").body_func(lambda: [produce[0](src=X[0], dst=L[0]), produce[1](src=X[1], dst=L[1])])
    b = Process("b").body_func(lambda: [produce[0](src=X[0], dst=R[0])])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        connect(a, b).compile(cost_model=PinnedCosts(), channel_latency_cycles=0).execute()
    np.testing.assert_array_equal(out[0], np.full((4, 8), 2.0, np.float32))
    np.testing.assert_array_equal(out[1], np.concatenate([np.full((4, 4), 2.0), np.zeros((4, 4))], 1))


def test_host_kernels_of_two_processes_are_not_a_race_and_run_once_each():
    X, T, Y = _tensors()
    calls: list[int] = []
    a = Process("a").body_func(lambda: [idle[0](src=X[0], dst=T[0]), task("log", [0], [X[0]])])
    b = Process("b").body_func(lambda: [task("log", [1], [X[1]]), task("log", [2], [X[1]])])
    program = connect(a, b).compile(cost_model=PinnedCosts(), channel_latency_cycles=0)
    program.register_kernel("log", lambda x: calls.append(int(x.sum())))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        program.execute()
    assert sorted(calls) == [16, 16, 16]


def test_on_chip_state_shared_by_two_processes_on_one_core_is_watched_too():
    from ptort_lab import Location

    class TimeOrdered(PinnedCosts):
        time_ordered = True

    def run(model):
        X = Tensor(data=np.ones((2, 4, 4), np.float32))
        S = Tensor(shape=(4, 4), dtype=F32, location=Location.UB, name="S")
        Y = Tensor(data=np.zeros((2, 4, 4), np.float32))
        w = Process("writer").body_func(lambda: [produce[0](src=X[0], dst=Y[0]), produce[1](src=X[1], dst=S)])
        r = Process("reader").body_func(lambda: [use[1](src=S, dst=Y[1])])
        connect(w, r).compile(cost_model=model, channel_latency_cycles=0, placement="shared").execute()
        return Y.data.copy()
    with pytest.warns(UnorderedAccessWarning, match=r"process 'reader' reads it as 'src' of use .* at cycle 0 and "
                                                    r"process 'writer' writes it as 'dst' of produce .* at cycle 100"):
        watched = run(PinnedCosts())
    np.testing.assert_array_equal(watched, run(TimeOrdered()))  # the reader saw S before the writer wrote it
    np.testing.assert_array_equal(watched[1], np.zeros((4, 4), np.float32))


@kernel(cycles=10)
def use_both(left: In[Tile[4, 4, F32]], right: In[Tile[4, 4, F32]], dst: Out[Tile[4, 4, F32]]):
    tl.store(dst, tl.add(tl.load(left), tl.load(right)))


def test_every_argument_in_the_shared_storage_is_checked_for_shared_bytes():
    """The reader's first argument in the storage (the left half) shares no bytes with the write; its second (the
    right half) does."""
    X = Tensor(data=np.ones((2, 4, 4), np.float32))
    out = np.zeros((2, 4, 8), np.float32)
    L, R = Tensor(data=out[:, :, :4]), Tensor(data=out[:, :, 4:])
    Y, Z = Tensor(data=np.zeros((1, 4, 4), np.float32)), Tensor(data=np.zeros((1, 4, 4), np.float32))
    w = Process("writer").body_func(lambda: [produce[0](src=X[0], dst=Z[0]), produce[1](src=X[1], dst=R[0])])
    r = Process("reader").body_func(lambda: [use_both[0](left=L[0], right=R[0], dst=Y[0])])
    with pytest.warns(UnorderedAccessWarning, match="reads it as 'right' of use_both"):
        connect(w, r).compile(cost_model=PinnedCosts(), channel_latency_cycles=0).execute()
    np.testing.assert_array_equal(Y.data[0], np.zeros((4, 4), np.float32))  # read at 0, written at 100..200


def test_many_column_slices_that_share_rows_run_in_time_order_without_a_warning():
    """Past EXACT_CHECKS candidates in one task the watch stops checking bytes: the run repeats in time order (the
    safe answer) and says nothing, as it cannot tell a race from disjoint slices cheaply."""
    from ptort_lab import Dense, for_each
    n = 200
    X = Tensor(data=np.ones((n, 4, 4), np.float32))
    out = np.zeros((n, 4, 8), np.float32)
    L, R = Tensor(data=out[:, :, :4]), Tensor(data=out[:, :, 4:])
    a = Process("a").body(for_each(Dense[n](), lambda t: produce[t](src=X[t], dst=L[t])))
    b = Process("b").body(for_each(Dense[n](), lambda t: produce[t](src=X[t], dst=R[t])))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        connect(a, b).compile(cost_model=PinnedCosts(), channel_latency_cycles=0).execute()
    np.testing.assert_array_equal(out, np.full((n, 4, 8), 2.0, np.float32))
