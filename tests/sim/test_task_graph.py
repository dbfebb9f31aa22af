"""task_graph(deps=, ready=, trace=, ...) in data-parallel runs (dsl/task_graph.py), on timelines worked out by hand."""
from __future__ import annotations

import numpy as np
import pytest

import ptort_lab
from ptort_lab import (
    Dense,
    Deps,
    DispatchPolicy,
    DType,
    In,
    Out,
    P,
    Pools,
    ReadyPolicy,
    StartPolicy,
    Tensor,
    Tile,
    TracePolicy,
    cond,
    kernel,
    tl,
    workload,
)
from ptort_lab.errors import PtortTypeError

F32 = DType.F32


@kernel(cycles=100)
def copy(src: In[Tile[4, 4, F32]], dst: Out[Tile[4, 4, F32]]):
    tl.store(dst, tl.load(src))


@kernel
def copy_unpinned(src: In[Tile[4, 4, F32]], dst: Out[Tile[4, 4, F32]]):
    tl.store(dst, tl.load(src))


def two_passes():
    """Tasks 0-2 write Y[b]; tasks 3-5 copy Y[2 - b] to Z[b], so task 3 needs task 2 and task 5 task 0."""
    x = np.arange(3 * 16, dtype=np.float32).reshape(3, 4, 4)
    X, Y, Z = Tensor(data=x), Tensor(shape=(3, 4, 4), dtype=F32), Tensor(shape=(3, 4, 4), dtype=F32)

    @workload
    def passes():
        for b in P(Dense[3]()):
            copy[b](src=X[b], dst=Y[b])
        for b in P(Dense[3]()):
            copy[b](src=Y[2 - b], dst=Z[b])

    return passes(), x, Z


def spans(w):
    prog = w.compile()
    prog.execute()
    return prog, sorted((s.task_id, s.core, s.start, s.end) for s in prog.trace().spans)


def test_inferred_dependencies_hold_tasks_back():
    """round_robin(2): task 3 (core 1) waits for task 2 (core 0, ends at 200), so task 5 ends at 400."""
    w, x, Z = two_passes()
    prog, got = spans(w.dispatch(DispatchPolicy.round_robin(2)).task_graph(deps=Deps.infer_tensor_map_exact()))
    assert got == [(0, 0, 0, 100), (1, 1, 0, 100), (2, 0, 100, 200), (3, 1, 200, 300), (4, 0, 200, 300),
                   (5, 1, 300, 400)]
    np.testing.assert_array_equal(Z.data, x[::-1])


def test_explicit_deps_infer_nothing():
    """Deps.explicit(): no inferred edges, so the second pass no longer waits: 300 cycles."""
    w, _, _ = two_passes()
    prog, got = spans(w.dispatch(DispatchPolicy.round_robin(2)).task_graph(deps=Deps.explicit()))
    assert [(t, start) for t, _, start, _ in got] == [(0, 0), (1, 0), (2, 100), (3, 100), (4, 200), (5, 200)]
    assert prog.stats.total_cycles == 300


def test_priority_issues_the_lowest_key_first_among_ready_tasks():
    """One core, priority = -(loop index): tasks 0-2 have keys 0, -1, -2 and tasks 3-5 keys 0, -1, -2, but task 3
    needs task 2, 4 needs 1 and 5 needs 0. Ready at first: 0, 1, 2 -> run 2 (frees 3), then 1 (frees 4, key -1),
    then 4, then 0 (frees 5, key -2), then 5, then 3. The values are unchanged."""
    w, x, Z = two_passes()
    prog, got = spans(w.task_graph(ready=ReadyPolicy.priority(lambda t: -t.params[0])))
    order = [t for t, _, _, _ in sorted(got, key=lambda s: s[2])]
    assert order == [2, 1, 4, 0, 5, 3]
    np.testing.assert_array_equal(Z.data, x[::-1])


def four_uneven():
    """Four independent tasks on the unpinned kernel; TracePolicy.cycles gives task 0 300 cycles, others 100."""
    X, Y = Tensor(data=np.ones((4, 4, 4), np.float32)), Tensor(shape=(4, 4, 4), dtype=F32)

    @workload
    def four():
        for b in P(Dense[4]()):
            copy_unpinned[b](src=X[b], dst=Y[b])

    return four().dispatch(DispatchPolicy.round_robin(2))


def test_trace_cycles_prices_unpinned_tasks_and_work_steal_balances_them():
    """round_robin(2): core 0 runs tasks 0 (300) and 2 (100) = 400. With ReadyPolicy.work_steal, core 1 takes
    tasks 1, 2, 3 while core 0 runs task 0: 300."""
    cost = TracePolicy.cycles(lambda t: 300 if t.get("b") == 0 else 100)
    prog, got = spans(four_uneven().task_graph(trace=cost))
    assert got == [(0, 0, 0, 300), (1, 1, 0, 100), (2, 0, 300, 400), (3, 1, 100, 200)]
    prog, got = spans(four_uneven().task_graph(trace=cost, ready=ReadyPolicy.work_steal()))
    assert prog.stats.total_cycles == 300 and {core for t, core, _, _ in got if t != 0} == {1}


def test_trace_cycles_leaves_a_task_s_own_pin_alone():
    w, _, _ = two_passes()
    _, got = spans(w.task_graph(trace=TracePolicy.cycles(lambda t: 7)))
    assert {end - start for _, _, start, end in got} == {100}


def test_start_and_pools_are_recorded():
    w, _, _ = two_passes()
    g = w.task_graph(start=StartPolicy.threshold(4), pools=Pools.by_exec_unit())._schedule.graph
    assert (g.start.kind, g.start.n, g.pools.kind, g.ready.kind, g.deps) == ("threshold", 4, "by_exec_unit", "fifo",
                                                                              Deps.infer_tensor_map_exact())


def test_task_graph_arguments_of_the_wrong_kind_are_refused():
    w, _, _ = two_passes()
    with pytest.raises(PtortTypeError, match=r"(?s)task_graph\(ready=...\) takes a ReadyPolicy, got 'fifo'.*"
                                             r"ready=ReadyPolicy.fifo\(\)"):
        w.task_graph(ready="fifo")
    with pytest.raises(PtortTypeError, match="ReadyPolicy.priority"):
        ReadyPolicy.priority(3)


def test_a_condition_may_take_no_argument():
    """cond(lambda: flag, ...), the reference's older form, runs like cond(lambda t: flag, ...)."""
    X, Y = Tensor(data=np.ones((2, 4, 4), np.float32)), Tensor(data=np.zeros((2, 4, 4), np.float32))

    @workload
    def half():
        for b in P(Dense[2]()):
            cond(lambda: False, copy[b](src=X[b], dst=Y[b]))

    assert half().compile().execute().stats.task_count == 0
    np.testing.assert_array_equal(Y.data, 0)


def test_reference_names_resolve_to_ours():
    assert ptort_lab.KernelRef is ptort_lab.Kernel and isinstance(copy, ptort_lab.KernelRef)
    assert ptort_lab.PtoError is ptort_lab.PtortError
    with pytest.raises(ptort_lab.PtoError):
        ReadyPolicy.priority(None)
