"""Runtime slots: tensor values read in program order drive conditions and indices (the lightning-indexer pattern)."""
from __future__ import annotations

import numpy as np
import pytest

from ptort_lab import (
    Channel,
    Dense,
    DType,
    In,
    Out,
    P,
    PtortValueError,
    Tensor,
    Tile,
    cond,
    connect,
    consume,
    for_each,
    kernel,
    process,
    send,
    slot_bool,
    slot_i64,
    slot_load_u64,
    slot_set_u64,
    slot_u64,
    task,
    tl,
    workload,
)

F32, I32 = DType.F32, DType.I32


@kernel(cycles=10)
def small(src: In[Tile[1, 4, F32]], dst: Out[Tile[1, 4, F32]]):
    tl.store(dst, tl.load(src))


@kernel(cycles=50)
def large(src: In[Tile[1, 4, F32]], dst: Out[Tile[1, 4, F32]]):
    tl.store(dst, tl.add(tl.load(src), 1.0))


def tiered(lengths):
    """One task per entry: `small` when its effective length <= 2048, else `large` (read through slot 0)."""
    n = len(lengths)
    L = Tensor(data=np.asarray(lengths, np.int32).reshape(n, 1, 1), name="EffSeq")
    X, Y = Tensor(data=np.zeros((n, 1, 4), np.float32)), Tensor(shape=(n, 1, 4), dtype=F32)

    @workload
    def w():
        for b in P(Dense[n]()):
            slot_load_u64(0, L[b])
            with P.when(slot_u64(0) <= 2048):
                small[b](src=X[b], dst=Y[b])
            with P.otherwise():
                large[b](src=X[b], dst=Y[b])

    return w(), Y


def test_a_slot_loaded_from_a_tensor_picks_the_kernel_per_task():
    w, Y = tiered([100, 3000, 2048, 9000])
    assert [t.kernel for t in w.enumerate()] == ["small", "large", "small", "large"]
    prog = w.compile().execute()
    assert prog.stats.total_cycles == 10 + 50 + 10 + 50
    np.testing.assert_array_equal(Y.data[:, 0, 0], [0.0, 1.0, 0.0, 1.0])


def test_slots_can_be_set_from_expressions_and_read_as_signed_or_bool():
    X, Y = Tensor(data=np.arange(8, dtype=np.float32).reshape(2, 1, 4)), Tensor(shape=(2, 1, 4), dtype=F32)

    @workload
    def w():
        for b in P(Dense[2]()):
            slot_set_u64(1, 1 - b)  # the other tile
            slot_set_u64(2, b - 1)  # -1 for b = 0
            with P.when(slot_bool(1)):
                small[b](src=X[slot_u64(1)], dst=Y[b])
            with P.when(slot_i64(2).eq(0)):
                large[b](src=X[b], dst=Y[b])

    tasks = w().enumerate()
    assert [(t.kernel, t.params) for t in tasks] == [("small", [0]), ("large", [1])]
    w().compile().execute()
    np.testing.assert_array_equal(Y.data[0], [[4, 5, 6, 7]])


def test_a_slot_load_needs_input_data_that_no_task_writes():
    X, Y = Tensor(data=np.zeros((1, 1, 4), np.float32)), Tensor(shape=(1, 1, 4), dtype=F32)

    @workload
    def no_data():
        slot_load_u64(0, Y[0])
        small(src=X[0], dst=Y[0])

    with pytest.raises(PtortValueError, match=r"(?s)slot_load_u64 reads .* which has no data.*test_slots.py"):
        no_data().enumerate()

    Y.data = np.zeros((1, 1, 4), np.float32)
    with pytest.raises(PtortValueError, match=r"(?s)reads .* which tasks of this workload write.*previous run"):
        no_data().enumerate()


def test_a_slot_load_from_a_second_tensor_over_written_memory_is_refused():
    """Two Tensors over one array are one memory: a load from either sees the previous run's values."""
    data = np.zeros((2, 1, 4), np.float32)
    X, Y, Y_alias = Tensor(data=np.zeros((2, 1, 4), np.float32)), Tensor(data=data), Tensor(data=data[::1])
    Apart = Tensor(data=np.zeros((2, 1, 4), np.float32))

    def listed(loaded):
        @workload
        def w():
            slot_load_u64(0, loaded[0])
            small(src=X[0], dst=Y[0])
        return w()

    with pytest.raises(PtortValueError, match=r"(?s)reads .* which tasks of this workload write.*test_slots.py"):
        listed(Y_alias).enumerate()
    assert [t.kernel for t in listed(Apart).enumerate()] == ["small"]  # separate memory: allowed


def test_a_scalar_view_of_a_two_axis_tensor_is_loaded_as_is():
    """EffSeq[b, s] of an [B, S] tensor is a scalar: the README's form, no row/col needed."""
    L = Tensor(data=np.array([[10, 5000]], np.int32))
    X, Y = Tensor(data=np.zeros((2, 1, 4), np.float32)), Tensor(shape=(2, 1, 4), dtype=F32)

    @workload
    def w():
        for s in P(Dense[2]()):
            slot_load_u64(0, L[0, s])
            with P.when(slot_u64(0) > 2048):
                large[s](src=X[s], dst=Y[s])

    assert [t.params for t in w().enumerate()] == [[1]]


def test_slots_are_refused_in_pipelines_and_outside_listing():
    """Processes run concurrently and would share one slot table; a dispatch key runs after listing."""
    from ptort_lab import DispatchPolicy, DSLUsageError

    X = Tensor(data=np.ones((2, 1, 4), np.float32))
    Y = Tensor(shape=(2, 1, 4), dtype=F32)
    ch = Channel(name="c", depth=1)
    producer = process("p").produces(ch).body(
        for_each(Dense[2](), lambda t: send(ch, task(small, [t], {"src": X[t], "dst": Y[t]}))))
    consumer = process("c").consumes(ch).body(consume(ch, lambda t: [
        slot_load_u64(0, X[t]), cond(slot_u64(0) > 0, task(small, [t], {"src": Y[t], "dst": X[t]}))]))
    with pytest.raises(DSLUsageError, match=r"(?s)runtime slots work in data-parallel workloads.*test_slots.py"):
        connect(producer, consumer).compile().execute()

    w, _ = tiered([100, 3000])
    with pytest.raises(PtortValueError, match=r"slot_u64\(0\) is read outside the listing"):
        w.dispatch(DispatchPolicy.affinity(lambda t: slot_u64(0).evaluate(t.bindings), 2)).compile().execute()


def test_an_unset_slot_is_reported_at_the_statement_that_reads_it(where):
    X, Y = Tensor(data=np.zeros((1, 1, 4), np.float32)), Tensor(shape=(1, 1, 4), dtype=F32)

    @workload
    def w():
        with P.when(slot_u64(7) > 0):
            small(src=X[0], dst=Y[0])

    with pytest.raises(PtortValueError, match="slot 7 is read before anything was stored in it") as e:
        w().enumerate()
    where(e, w.__wrapped__.__code__.co_firstlineno + 2)
