"""TimingPolicy and stream_by in data-parallel runs (sim/issue.py), on timelines worked out by hand."""
from __future__ import annotations

import numpy as np
import pytest

from ptort_lab import (
    Channel,
    Dense,
    DispatchPolicy,
    DType,
    In,
    Out,
    P,
    Tensor,
    Tile,
    TimingPolicy,
    connect,
    consume,
    for_each,
    kernel,
    process,
    send,
    task,
    tl,
    workload,
)
from ptort_lab.dsl.steps import enumerate_tasks
from ptort_lab.errors import PtortTypeError, PtortValueError
from ptort_lab.sim.deps import infer_dependencies
from ptort_lab.sim.issue import interleave

F32 = DType.F32


@kernel(cycles=100)
def copy(src: In[Tile[4, 4, F32]], dst: Out[Tile[4, 4, F32]]):
    """Copy a 4x4 tile; every launch costs 100 cycles."""
    tl.store(dst, tl.load(src))


def copies(n: int = 6):
    x = np.arange(n * 16, dtype=np.float32).reshape(n, 4, 4)
    X, Y = Tensor(data=x), Tensor(data=np.zeros_like(x))

    @workload
    def many():
        for i in P(Dense[n]()):
            copy[i](src=X[i], dst=Y[i])

    return many(), x, Y


def timeline(w):
    """(task index, core, start, end) of every task, by index."""
    prog = w.compile()
    prog.execute()
    return prog, sorted((s.index, s.core, s.start, s.end) for s in prog.trace().spans)


def test_immediate_is_the_default_order():
    """6 tasks of 100 cycles, round_robin(2): 0/2/4 on core 0 and 1/3/5 on core 1, back to back: 300 cycles."""
    w, x, Y = copies()
    prog, spans = timeline(w.dispatch(DispatchPolicy.round_robin(2)).timing(TimingPolicy.immediate))
    assert spans == [(0, 0, 0, 100), (1, 1, 0, 100), (2, 0, 100, 200), (3, 1, 100, 200), (4, 0, 200, 300),
                     (5, 1, 200, 300)]
    np.testing.assert_array_equal(Y.data, x)


def test_batched_waits_for_the_whole_previous_batch():
    """batched(3) on 2 cores: batch 0 = tasks 0, 1, 2 ends at 200 (task 2 runs after task 0 on core 0), so tasks 3
    and 4 start at 200 and task 5 at 300: 400 cycles instead of 300, and core 1 shows the barrier as a stall."""
    w, x, Y = copies()
    prog, spans = timeline(w.dispatch(DispatchPolicy.round_robin(2)).timing(TimingPolicy.batched(3)))
    assert spans == [(0, 0, 0, 100), (1, 1, 0, 100), (2, 0, 100, 200), (3, 1, 200, 300), (4, 0, 200, 300),
                     (5, 1, 300, 400)]
    stalls = [(s.process, s.reason, s.start, s.end) for s in prog.trace().stalls]
    assert ("core1", "batch 1 waits for batch 0", 100, 200) in stalls
    np.testing.assert_array_equal(Y.data, x)


def test_rate_limit_spaces_issues_at_the_machine_clock():
    """18000 tasks/ms at 1.8 GHz = one task per 100 cycles: task k starts no earlier than 100k, so on 2 cores
    every other core-slot idles: 600 cycles."""
    w, _, _ = copies()
    prog, spans = timeline(w.dispatch(DispatchPolicy.round_robin(2)).timing(TimingPolicy.rate_limit(18000)))
    assert [(i, start) for i, _, start, _ in spans] == [(k, 100 * k) for k in range(6)]
    assert prog.stats().total_cycles == 600
    assert {s.reason for s in prog.trace().stalls} == {"rate limit 18000 tasks/ms"}


def test_interleaved_takes_one_task_from_each_chunk_in_turn():
    """interleaved(2) over 6 tasks: chunks 0-2 and 3-5, issued 0, 3, 1, 4, 2, 5; round_robin(2) then puts the
    first chunk on core 0 and the second on core 1."""
    w, x, Y = copies()
    _, spans = timeline(w.dispatch(DispatchPolicy.round_robin(2)).timing(TimingPolicy.interleaved(2)))
    assert [(i, core) for i, core, _, _ in spans] == [(0, 0), (1, 0), (2, 0), (3, 1), (4, 1), (5, 1)]
    np.testing.assert_array_equal(Y.data, x)


def chained(reverse: bool):
    """Tasks 0-2 write Y[i]; tasks 3-5 read Y[i] (or Y[2 - i]) into Z."""
    X = Tensor(data=np.ones((3, 4, 4), np.float32))
    Y, Z = Tensor(shape=(3, 4, 4), dtype=F32), Tensor(shape=(3, 4, 4), dtype=F32)

    @workload
    def two_passes():
        for i in P(Dense[3]()):
            copy[i](src=X[i], dst=Y[i])
        for i in P(Dense[3]()):
            copy[i](src=Y[2 - i] if reverse else Y[i], dst=Z[i])

    return enumerate_tasks(two_passes())


@pytest.mark.parametrize("reverse, order", [(False, [0, 3, 1, 4, 2, 5]), (True, [0, 1, 2, 3, 4, 5])])
def test_interleaving_never_issues_a_task_before_one_it_depends_on(reverse, order):
    """Task 3 reads what task 0 (or, reversed, task 2) wrote: in the reversed case the second chunk waits."""
    tasks = chained(reverse)
    assert interleave(tasks, infer_dependencies(tasks), 2) == order


def test_stream_by_puts_each_task_on_its_stream():
    """streams(2).stream_by(b // 3) (P names its variable b): tasks 0-2 on core 0 and 3-5 on core 1, 300 cycles."""
    w, x, Y = copies()
    prog, spans = timeline(w.streams(2).stream_by(lambda t: t.get("b") // 3))
    assert [(i, core) for i, core, _, _ in spans] == [(0, 0), (1, 0), (2, 0), (3, 1), (4, 1), (5, 1)]
    assert prog.stats().total_cycles == 300
    np.testing.assert_array_equal(Y.data, x)


def test_timing_policy_mistakes_are_refused():
    w, _, _ = copies()
    with pytest.raises(PtortValueError, match=r"batched\(n\) needs an int >= 1, got 0"):
        TimingPolicy.batched(0)
    with pytest.raises(PtortValueError, match=r"rate_limit\(tasks_per_ms\) needs a number > 0"):
        TimingPolicy.rate_limit(0)
    with pytest.raises(PtortTypeError, match="timing\\(policy\\) needs a TimingPolicy, got 'batched'"):
        w.timing("batched")
    with pytest.raises(PtortTypeError, match="stream_by\\(fn\\) needs a key function"):
        w.stream_by(3)


def test_a_pipeline_refuses_a_timing_policy():
    x = Tensor(data=np.ones((2, 4, 4), np.float32))
    y = Tensor(shape=(2, 4, 4), dtype=F32)
    ch = Channel(name="c", depth=1)
    a = process("a").produces(ch).body(for_each(Dense[2](), lambda t: send(ch, task(copy, [t], {"src": x[t],
                                                                                                 "dst": y[t]}))))
    b = process("b").consumes(ch).body(consume(ch, lambda t: task(copy, [t], {"src": y[t], "dst": y[t]})))
    with pytest.raises(PtortValueError, match=r"(?s)timing\(TimingPolicy.batched\) applies to data-parallel "
                                              r"workloads.*test_issue.py"):
        connect(a, b).timing(TimingPolicy.batched(2))
    for combinator in (lambda p: p.dispatch(DispatchPolicy.round_robin(2)), lambda p: p.streams(2),
                       lambda p: p.task_graph()):
        with pytest.raises(PtortValueError, match="applies to data-parallel workloads"):
            combinator(connect(a, b))
    assert connect(a, b).timing(TimingPolicy.immediate).compile().execute().stats.task_count == 4
