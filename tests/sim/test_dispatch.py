"""Data-parallel runs: dispatch policies, task windows and inferred dependencies, on hand-computable timelines."""
from __future__ import annotations

import numpy as np
import pytest

from ptort_lab import Dense, DispatchPolicy, DType, In, InOut, Out, P, TaskWindow, Tensor, Tile, kernel, tl, workload

F32 = DType.F32


@kernel(cycles=32)
def copy(src: In[Tile[4, 4, F32]], dst: Out[Tile[4, 4, F32]]):
    """Copy a 4x4 tile; every launch costs 32 cycles."""
    tl.store(dst, tl.load(src))


def four_copies():
    x = np.arange(4 * 16, dtype=np.float32).reshape(4, 4, 4)
    X, Y = Tensor(data=x), Tensor(data=np.zeros_like(x))

    @workload
    def copies():
        for t in P(Dense[4]()):
            copy[t](src=X[t], dst=Y[t])

    return copies(), x, Y


def run(w):
    prog = w.compile()
    prog.execute()
    return prog


def test_no_dispatch_runs_serially_on_one_core():
    """Without a dispatch policy the 4 independent tasks run one after another: 4 x 32 cycles."""
    w, x, Y = four_copies()
    prog = run(w)
    assert prog.stats().total_cycles == 128
    assert [(s.core, s.start, s.end) for s in prog.trace().spans] == [(0, 0, 32), (0, 32, 64), (0, 64, 96),
                                                                      (0, 96, 128)]
    assert np.array_equal(Y.data, x)


def test_round_robin_two_cores_halves_the_time():
    """round_robin(2): tasks 0, 2 on core 0 and 1, 3 on core 1, so 2 x 32 cycles."""
    w, x, Y = four_copies()
    prog = run(w.dispatch(DispatchPolicy.round_robin(2)))
    assert prog.stats().total_cycles == 64
    assert sorted((s.index, s.core, s.start) for s in prog.trace().spans) == [(0, 0, 0), (1, 1, 0), (2, 0, 32),
                                                                              (3, 1, 32)]
    assert np.array_equal(Y.data, x)


def test_task_window_of_one_serialises_again():
    """A window of 1 task in flight undoes the two cores: back to 128 cycles."""
    w, _, _ = four_copies()
    prog = run(w.dispatch(DispatchPolicy.round_robin(2)).task_graph(window=TaskWindow(1, "tasks")))
    assert prog.stats().total_cycles == 128


def test_combinators_return_new_workloads():
    """dispatch/streams/task_graph leave the original workload unchanged."""
    w, _, _ = four_copies()
    w2 = w.dispatch(DispatchPolicy.round_robin(2)).streams(2)
    assert w._schedule.dispatch is None and w2._schedule.dispatch.num_cores == 2
    assert w2.task_graph()._schedule.stream_count is None and w2._schedule.stream_count == 2


def test_affinity_keeps_equal_keys_on_one_core():
    """affinity(key) sends tasks with equal keys to the same core (key % n)."""
    w, _, _ = four_copies()
    prog = run(w.dispatch(DispatchPolicy.affinity(lambda t: t.get("b") // 2, 2)))
    cores = {s.index: s.core for s in prog.trace().spans}
    assert cores == {0: 0, 1: 0, 2: 1, 3: 1}
    assert prog.stats().total_cycles == 64


def test_work_steal_gives_each_task_to_the_first_idle_core():
    """work_steal(3) with 4 equal tasks: three start at 0, the fourth at 32 on the first core to free up."""
    w, _, _ = four_copies()
    prog = run(w.dispatch(DispatchPolicy.work_steal(3)))
    starts = sorted(s.start for s in prog.trace().spans)
    assert starts == [0, 0, 0, 32] and prog.stats().total_cycles == 64


@kernel(cycles=10)
def bump(acc: InOut[Tile[4, 4, F32]]):
    """acc += 1 (10 cycles)."""
    tl.store(acc, tl.add(tl.load(acc), 1.0))


def test_dependencies_are_inferred_from_tensor_regions():
    """Three bumps of the same tile on three cores still run one after another (RAW/WAW on acc[0])."""
    A = Tensor(data=np.zeros((2, 4, 4), dtype=np.float32))

    @workload
    def bumps():
        for _ in P(Dense[3]()):
            bump[0](acc=A[0])
        bump[1](acc=A[1])

    prog = run(bumps().dispatch(DispatchPolicy.round_robin(4)))
    spans = sorted((s.task_id, s.core, s.start, s.end) for s in prog.trace().spans)
    assert spans == [(0, 0, 0, 10), (1, 1, 10, 20), (2, 2, 20, 30), (3, 3, 0, 10)]
    assert np.array_equal(A.data[0], np.full((4, 4), 3.0)) and np.array_equal(A.data[1], np.ones((4, 4)))


def test_key_function_must_return_an_int():
    """A dispatch key that is not an int is reported with the task and a fix."""
    w, _, _ = four_copies()
    with pytest.raises(ValueError, match="key function returned 'x'"):
        run(w.dispatch(DispatchPolicy.hash(lambda t: "x", 2)))
