"""The max-plus fast path (issue 14, part 5): linear pinned-cost chains run without the engine, to the very same trace.

Every case runs one program twice, once on the max-plus path and once with it switched off (the general engine),
and compares the whole outcome: spans (task ids and order included), stalls in order, occupancy samples, makespan,
per-process ends and stall cycles, and ``program.tasks``. The start/finish times are also checked against the
max-plus recurrence written out here. Cases that must not take the path say which path ran (``maxplus.runs``).
"""
from __future__ import annotations

import random

import numpy as np
import pytest

from ptort_lab import (
    Channel,
    Dense,
    DType,
    Event,
    In,
    Out,
    PinnedCosts,
    Tensor,
    Tile,
    cond,
    connect,
    consume,
    for_each,
    kernel,
    process,
    record,
    send,
    synchronize,
    task,
    tl,
)
from ptort_lab.sim import maxplus


def oracle(times, depth, latency):
    """S, F of every (stage, item): S_k(i) = max(F_k(i-1), F_{k-1}(i) + L, F_{k+1}(i-D) + L)."""
    K, n = len(times), len(times[0])
    S = [[0] * n for _ in range(K)]
    F = [[0] * n for _ in range(K)]
    for i in range(n):
        for k in range(K):
            s = F[k][i - 1] if i else 0
            if k:
                s = max(s, F[k - 1][i] + latency)
            if k + 1 < K and i >= depth:
                s = max(s, F[k + 1][i - depth] + latency)
            S[k][i], F[k][i] = s, s + times[k][i]
    return S, F


def chain(times, depth, per_task=False, order=None):
    """s0 -> c0 -> s1 -> ...: empty kernels pinned to ``times[k][0]`` (``kernel(cycles=)``), or per task to
    ``times[k][i]`` (``task(..., cycles=fn)``); ``order`` lists the processes in connect() order."""
    K, n = len(times), len(times[0])
    chans = [Channel(name=f"c{k}", depth=depth) for k in range(K - 1)]
    procs = []
    for k in range(K):
        def empty() -> None:
            """An empty stage kernel."""
        if per_task:
            kern = kernel(name=f"s{k}")(empty)
            work = (lambda kn, tk: lambda i: task(kn, [i], {}, cycles=lambda t: tk[t.params[0]]))(kern, times[k])
        else:
            kern = kernel(cycles=times[k][0], name=f"s{k}")(empty)
            work = (lambda kn: lambda i: task(kn, [i], {}))(kern)
        body = (lambda ch, wk: lambda i: send(ch, wk(i)))(chans[k], work) if k + 1 < K else work
        p = process(f"s{k}").body(for_each(Dense[n](), body) if k == 0 else consume(chans[k - 1], body))
        if k:
            p.consumes(chans[k - 1])
        if k + 1 < K:
            p.produces(chans[k])
        procs.append(p)
    return connect([procs[k] for k in (order or range(K))])


def execute(pipe, latency, fast):
    """(program, whether the max-plus path ran) of one timing-only run on PinnedCosts."""
    program = pipe.compile(cost_model=PinnedCosts(), channel_latency_cycles=latency, compute_values=False)
    saved, before = maxplus.plan, maxplus.runs
    if not fast:
        maxplus.plan = lambda *args, **kwargs: None
    try:
        program.execute()
    finally:
        maxplus.plan = saved
    return program, maxplus.runs - before


def outcome(program):
    tr, run = program.trace(), program._run
    return (tr.spans, tr.stalls, tr.samples, tr.makespan, tr.process_end, run.stall_cycles,
            [repr(t) for t in program.tasks], [(t.id, t.process, t.params) for t in program.tasks])


def check_same_as_engine(times, depth, latency, per_task=False, order=None):
    fast, ran = execute(chain(times, depth, per_task, order), latency, True)
    assert ran == 1, "the max-plus path did not run"
    slow, ran = execute(chain(times, depth, per_task, order), latency, False)
    assert ran == 0
    assert outcome(fast) == outcome(slow)
    S, F = oracle(times, depth, latency)
    got = {(sp.process, sp.index): (sp.start, sp.end) for sp in fast.trace().spans}
    assert got == {(f"s{k}", i): (S[k][i], F[k][i]) for k in range(len(times)) for i in range(len(times[0]))}
    return fast


@pytest.mark.parametrize("stages", [2, 3, 4, 5])
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("latency", [0, 7])
def test_fixed_costs_equal_the_engine(stages, depth, latency):
    base = [100, 60, 100, 35, 130]
    check_same_as_engine([[base[k]] * 400 for k in range(stages)], depth, latency)


@pytest.mark.parametrize("stages,depth,latency,seed", [(2, 1, 0, 1), (3, 2, 0, 2), (3, 1, 5, 3), (4, 3, 0, 4),
                                                       (5, 4, 9, 5), (4, 2, 3, 6)])
def test_per_task_costs_equal_the_engine(stages, depth, latency, seed):
    rng = random.Random(seed)
    times = [[rng.randint(1, 150) for _ in range(300)] for _ in range(stages)]
    check_same_as_engine(times, depth, latency, per_task=True)


def test_processes_listed_out_of_chain_order():
    """connect(storer, loader, computer): the engine's queue starts in that order, and so do the task ids."""
    program = check_same_as_engine([[100] * 200, [60] * 200, [100] * 200], 2, 0, order=[2, 0, 1])
    assert program.trace().spans[0].process == "s0"


def test_a_long_chain_repeats_and_is_extrapolated():
    """At 20,000 items the schedule and the times are extrapolated from their period: still equal everywhere."""
    check_same_as_engine([[100] * 20_000, [60] * 20_000, [100] * 20_000], 2, 0)


def test_worked_example_by_hand():
    """Two stages (10, 30 cycles), depth 1, 3 items: s0 runs 0-10, waits for the slot until s1 frees it at 40..."""
    program = check_same_as_engine([[10] * 3, [30] * 3], 1, 0)
    spans = [(s.process, s.index, s.start, s.end, s.task_id) for s in program.trace().spans]
    assert spans == [("s0", 0, 0, 10, 0), ("s1", 0, 10, 40, 1), ("s0", 1, 40, 50, 2), ("s1", 1, 50, 80, 3),
                     ("s0", 2, 80, 90, 4), ("s1", 2, 90, 120, 5)]
    assert program.trace().makespan == 120
    assert program.stats().task_count == 6


def test_tasks_are_built_when_first_read():
    program, ran = execute(chain([[100] * 50, [60] * 50], 2), 0, True)
    assert ran == 1 and program._run.task_builder is not None
    assert program.stats().task_count == 100 and program._run.task_builder is not None  # stats need no tasks
    assert [(t.id, t.process, t.params[0]) for t in program.tasks[:3]] == [(0, "s0", 0), (1, "s0", 1), (2, "s1", 0)]


# -- what must take the general engine ------------------------------------------------------------------------------
def two_stage(first_body, second_body, extra=()):
    c = Channel(name="c", depth=2)
    a = process("a").produces(c).body(first_body(c))
    b = process("b").consumes(c).body(second_body(c))
    return connect(a, b, *extra)


@kernel(cycles=10)
def k10() -> None:
    """A pinned kernel."""


def runs_on_engine(pipe, **compile_kw):
    before = maxplus.runs
    program = pipe.compile(**{"cost_model": PinnedCosts(), "compute_values": False, **compile_kw}).execute()
    assert maxplus.runs == before, "the max-plus path ran where the general engine must"
    return program


def test_a_join_takes_the_engine():
    c1, c2 = Channel(name="c1", depth=2), Channel(name="c2", depth=2)
    a = process("a").produces(c1).body(for_each(Dense[8](), lambda i: send(c1, task(k10, [i], {}))))
    b = process("b").produces(c2).body(for_each(Dense[8](), lambda i: send(c2, task(k10, [i], {}))))
    j = process("j").consumes(c1, c2).body(consume([c1, c2], lambda x, y: task(k10, [x], {})))
    assert runs_on_engine(connect(a, b, j)).trace().makespan > 0


def test_an_event_takes_the_engine():
    ev = Event(name="go")
    pipe = two_stage(lambda c: for_each(Dense[4](), lambda i: send(c, task(k10, [i], {}))),
                     lambda c: consume(c, lambda i: task(k10, [i], {})))
    procs = list(pipe.fields["processes"])
    rec = process("r").body(for_each(Dense[1](), lambda i: record(ev)))
    wait = process("w").body(for_each(Dense[1](), lambda i: synchronize(ev)))
    assert runs_on_engine(connect(*procs, rec, wait)).trace().makespan == 50


def test_a_cond_takes_the_engine():
    pipe = two_stage(lambda c: for_each(Dense[4](), lambda i: send(c, task(k10, [i], {}))),
                     lambda c: consume(c, lambda i: cond(lambda t: t.get("i") % 2 == 0, task(k10, [i], {}))))
    program = runs_on_engine(pipe)
    assert [s.index for s in program.trace().spans if s.process == "b"] == [0, 2]


def test_npu_costs_take_the_engine():
    pipe = two_stage(lambda c: for_each(Dense[4](), lambda i: send(c, task(k10, [i], {}))),
                     lambda c: consume(c, lambda i: task(k10, [i], {})))
    before = maxplus.runs
    pipe.compile(compute_values=False).execute()  # the default cost model: the NPU model
    assert maxplus.runs == before


def test_computed_values_take_the_engine():
    @kernel(cycles=10)
    def double(src: In[Tile[8, 8, DType.F32]], dst: Out[Tile[8, 8, DType.F32]]):
        tl.store(dst, tl.add(tl.load(src), tl.load(src)))

    x = np.arange(4 * 64, dtype=np.float32).reshape(4, 8, 8)
    X, Y = Tensor(data=x), Tensor(data=np.zeros_like(x))
    pipe = two_stage(lambda c: for_each(Dense[4](), lambda i: send(c, task(k10, [i], {}))),
                     lambda c: consume(c, lambda i: task(double, [i], {"src": X[i], "dst": Y[i]})))
    runs_on_engine(pipe, compute_values=True)
    assert np.array_equal(Y.data, 2 * x)


def test_zero_cycle_tasks_take_the_engine():
    """A 0-cycle stage could meet the no-progress limit, which only the engine checks."""
    @kernel(cycles=0)
    def free() -> None:
        """Costs nothing."""

    runs_on_engine(two_stage(lambda c: for_each(Dense[4](), lambda i: send(c, task(free, [i], {}))),
                             lambda c: consume(c, lambda i: task(k10, [i], {}))))
