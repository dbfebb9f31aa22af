"""task_graph() with no window takes the reference's default, ``TaskWindow(8192, "tasks", WindowMode.STALL)`` (its
workload.py: ``window=window or TaskWindow(8192, "tasks", WindowMode.STALL)``), both where the config is read and in
the run's cap; a window that never fills changes no run."""
from __future__ import annotations

import numpy as np

import ptort_lab.compat as pto_wsp
from ptort_lab import Dense, DispatchPolicy, DType, In, Out, P, Tensor, Tile, kernel, tl, workload
from ptort_lab.compat import Deps, TaskWindow, WindowMode, task

F32 = DType.F32


def test_task_graph_without_a_window_records_the_reference_default():
    w = task("kernel", [], []).task_graph()
    window = w._task_graph_config.window
    assert (window.size, window.unit, window.mode) == (8192, "tasks", WindowMode.STALL)
    assert w.schedule.window == TaskWindow(8192, "tasks", WindowMode.STALL)  # the cap the run reads
    assert w.schedule.graph.window is w.schedule.window
    assert task("kernel", [], []).schedule.window is None  # no task_graph(): no cap, as in the reference


def test_task_graph_with_a_window_keeps_it_and_a_later_call_defaults_again():
    w = task("kernel", [], []).task_graph(window=TaskWindow(4, "tasks"))
    assert w.schedule.window == TaskWindow(4) and w._task_graph_config.window == TaskWindow(4)
    again = w.task_graph(deps=Deps.explicit())  # each call records its own arguments, as the reference's
    assert again._task_graph_config.window == TaskWindow(8192) == again.schedule.window
    assert again._task_graph_config.deps.mode is pto_wsp.DepsMode.EXPLICIT


@kernel(cycles=100)
def copy(src: In[Tile[4, 4, F32]], dst: Out[Tile[4, 4, F32]]):
    tl.store(dst, tl.load(src))


def _copies():
    x = np.arange(6 * 16, dtype=np.float32).reshape(6, 4, 4)
    X, Y = Tensor(data=x), Tensor(shape=(6, 4, 4), dtype=F32)

    @workload
    def copies():
        for b in P(Dense[6]()):
            copy[b](src=X[b], dst=Y[b])

    return copies().dispatch(DispatchPolicy.round_robin(2)), x, Y


def _run(w):
    prog = w.compile()
    prog.execute()
    return prog.stats.total_cycles, sorted((s.task_id, s.core, s.start, s.end) for s in prog.trace().spans)


def test_the_default_window_changes_no_run_it_does_not_fill():
    plain, x, Y = _copies()
    cycles, spans = _run(plain)
    assert cycles == 300  # 6 tasks of 100 cycles, 3 on each of 2 cores
    assert spans == [(0, 0, 0, 100), (1, 1, 0, 100), (2, 0, 100, 200), (3, 1, 100, 200), (4, 0, 200, 300),
                     (5, 1, 200, 300)]
    graphed, x2, Y2 = _copies()
    assert _run(graphed.task_graph()) == (300, spans)
    assert np.array_equal(Y2.data, x2)


def test_a_window_that_fills_still_caps_as_before():
    w, _, _ = _copies()
    cycles, spans = _run(w.task_graph(window=TaskWindow(1)))
    assert cycles == 600  # one task in flight at a time
    assert [s[2:] for s in spans] == [(0, 100), (100, 200), (200, 300), (300, 400), (400, 500), (500, 600)]
