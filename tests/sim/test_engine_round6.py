"""Round 6 engine fixes, on timelines worked out by hand: work stealing takes a ready task before one that waits,
channel and event latency per hop, tokens left in a channel at the end of a run, and what a deadlock on an event
reports."""
from __future__ import annotations

import numpy as np
import pytest
from source_lines import here, located

from ptort_lab import (
    Channel,
    DeadlockError,
    Dense,
    DispatchPolicy,
    DType,
    Event,
    In,
    InOut,
    Out,
    P,
    PinnedCosts,
    PipelineError,
    ReadyPolicy,
    Tensor,
    Tile,
    cond,
    connect,
    consume,
    for_each,
    kernel,
    process,
    record,
    replicate,
    send,
    sequential,
    synchronize,
    task,
    tl,
    workload,
)
from ptort_lab.sim import runner

F32 = DType.F32


def pinned(name: str, cycles: int):
    """A kernel with no arguments that costs ``cycles`` on every launch."""
    @kernel(cycles=cycles)
    def k():
        """Pinned."""
    k.__name__ = name
    return k


def run(pipe, latency=0, **options):
    program = pipe.compile(cost_model=PinnedCosts(), channel_latency_cycles=latency, **options)
    program.execute()
    return program


def spans_of(program, name):
    """(index, start, end) of a process's tasks, in start order."""
    spans = sorted((sp.start, sp.index, sp.end) for sp in program.trace().spans if sp.process == name)
    return [(index, start, end) for start, index, end in spans]


# -- work stealing: an idle core takes the next ready task ----------------------------------------------------------

@kernel
def copy(src: In[Tile[4, 4, F32]], dst: Out[Tile[4, 4, F32]]):
    """Copy a 4x4 tile."""
    tl.store(dst, tl.load(src))


def one_slow_chain(ready: int = 4):
    """t0 (100 cycles) writes Y[0], t1 (10) reads it; then ``ready`` independent 10-cycle tasks t2, t3, ..."""
    X = Tensor(data=np.arange((ready + 2) * 16, dtype=np.float32).reshape(ready + 2, 4, 4))
    Y, Z = (Tensor(shape=(ready + 2, 4, 4), dtype=F32) for _ in range(2))

    @workload
    def w():
        task(copy, [0], {"src": X[0], "dst": Y[0]}, cycles=100)
        task(copy, [1], {"src": Y[0], "dst": Z[0]}, cycles=10)
        for i in P(Dense[ready]()):
            task(copy, [i + 2], {"src": X[i + 1], "dst": Z[i + 1]}, cycles=10)

    return w(), X, Z


# By hand, 2 cores in time order: core 0 asks first and takes t0 (0-100). Core 1 asks at 0: t1 waits for t0 (until
# 100) while t2 is ready, so it takes t2 (0-10), then t3 (10-20), t4 (20-30), t5 (30-40). At 40 only t1 is left, ready
# at 100: it runs 100-110. Makespan 110, where taking t1 at 0 (head-of-line) gave 130.
STEAL_BY_HAND = [(0, 0, 0, 100), (1, 1, 100, 110), (2, 1, 0, 10), (3, 1, 10, 20), (4, 1, 20, 30), (5, 1, 30, 40)]


@pytest.mark.parametrize("schedule", ["dispatch", "ready policy"])
def test_an_idle_core_takes_a_ready_task_before_one_that_waits(schedule):
    """work_steal(2) and ReadyPolicy.work_steal(): core 1 runs the four ready tasks while t1 waits for t0, so the
    run ends at 110 (STEAL_BY_HAND); the values are those of the program."""
    w, X, Z = one_slow_chain()
    if schedule == "dispatch":
        w = w.dispatch(DispatchPolicy.work_steal(2))
    else:
        w = w.dispatch(DispatchPolicy.round_robin(2)).task_graph(ready=ReadyPolicy.work_steal())
    program = w.compile()
    program.execute()
    assert sorted((s.task_id, s.core, s.start, s.end) for s in program.trace().spans) == STEAL_BY_HAND
    assert program.stats().total_cycles == 110
    assert np.array_equal(Z.data[:5], X.data[:5])


def test_a_streamed_timing_only_run_steals_the_same_way():
    """compute_values=False lists the tasks as the cores take them (streamed): the same timeline."""
    w, _, _ = one_slow_chain()
    program = w.dispatch(DispatchPolicy.work_steal(2)).compile(compute_values=False)
    program.execute()
    assert sorted((s.task_id, s.core, s.start, s.end) for s in program.trace().spans) == STEAL_BY_HAND


def test_a_core_looks_only_lookahead_tasks_ahead():
    """The look-ahead is bounded (runner.LOOKAHEAD tasks not dealt yet): with LOOKAHEAD tasks that wait for t0
    between t0 and a ready task, core 1 cannot see the ready one; it takes t1, the first of those that can start
    soonest (at 100), and the ready task runs after 100. With one waiting task fewer it sees it and runs it at 0."""
    n = runner.LOOKAHEAD
    X = Tensor(data=np.ones((2, 4, 4), np.float32))
    Y, Z = Tensor(shape=(2, 4, 4), dtype=F32), Tensor(shape=(n + 1, 4, 4), dtype=F32)

    def build(waiting):
        @workload
        def w():
            task(copy, [0], {"src": X[0], "dst": Y[0]}, cycles=100)
            for i in P(Dense[waiting]()):
                task(copy, [i + 1], {"src": Y[0], "dst": Z[i]}, cycles=10)
            task(copy, [waiting + 1], {"src": X[1], "dst": Y[1]}, cycles=10)

        program = w().dispatch(DispatchPolicy.work_steal(2)).compile(compute_values=False)
        program.execute()
        return {s.task_id: (s.core, s.start) for s in program.trace().spans}

    near = build(n - 1)
    assert near[n] == (1, 0) and near[1][1] == 100
    far = build(n)
    assert far[1] == (1, 100) and far[n + 1][1] >= 100


def test_without_dependencies_work_stealing_takes_tasks_in_order():
    """No dependencies: the asking core takes the next task in order, as before. By hand (35, 10, 10, 10, 20, 5
    cycles on 2 cores): core 0 t0 0-35; core 1 t1 0-10, t2 10-20, t3 20-30, t4 30-50; core 0 t5 35-40."""
    X = Tensor(data=np.ones((6, 4, 4), np.float32))
    Y = Tensor(shape=(6, 4, 4), dtype=F32)
    cycles = [35, 10, 10, 10, 20, 5]

    @workload
    def w():
        for i in range(6):
            task(copy, [i], {"src": X[i], "dst": Y[i]}, cycles=cycles[i])

    program = w().dispatch(DispatchPolicy.work_steal(2)).compile()
    program.execute()
    assert sorted((s.task_id, s.core, s.start, s.end) for s in program.trace().spans) == [
        (0, 0, 0, 35), (1, 1, 0, 10), (2, 1, 10, 20), (3, 1, 20, 30), (4, 1, 30, 50), (5, 0, 35, 40)]


# -- latency per hop ------------------------------------------------------------------------------------------------

def test_a_merge_pays_the_cross_core_latency_only_on_its_cross_core_hop():
    """p1 and cons share core 0, p2 is on core 1, latency 1000. p1's items (done at 100, 200) reach cons at once,
    p2's (done at 100, 200) at 1100 and 1200: cons runs them at (0: 100), (1: 200), (2: 1100), (3: 1200), each 10
    cycles, so the run ends at 1210."""
    a, c = pinned("a", 100), pinned("c", 10)
    ch = Channel("m", depth=4)
    p1 = process("p1").produces(ch).body(for_each(Dense[2](), lambda t: send(ch, a[t]())))
    p2 = process("p2").produces(ch).body(for_each(Dense[2](), lambda t: send(ch, a[t + 2]())))
    cons = process("cons").consumes(ch).body(consume(ch, lambda t: c[t]()))
    program = run(connect(p1, p2, cons), 1000, placement={"p1": 0, "cons": 0, "p2": 1})
    assert spans_of(program, "cons") == [(0, 100, 110), (1, 200, 210), (2, 1100, 1110), (3, 1200, 1210)]
    assert program.stats().total_cycles == 1210


def test_a_freed_slot_goes_first_to_the_producer_that_sees_it_first():
    """Depth 1, p1 and cons on core 0, p2 on core 1, latency 1000, every a 100 cycles and c 10. At 0 p1 takes the
    slot and p2 waits for it. p1's item 0 (0-100) reaches cons at 100 (100-110), and p1 waits for the slot from 100.
    cons frees it at 110: p1 sees that at 110, p2 only at 1110, so p1 gets it: item 1 110-210, cons 210-220. The
    slot freed at 220 goes to p2 at 1220: item 2 1220-1320, at cons 2320-2330."""
    a, c = pinned("a", 100), pinned("c", 10)
    ch = Channel("m", depth=1)
    p1 = process("p1").produces(ch).body(for_each(Dense[2](), lambda t: send(ch, a[t]())))
    p2 = process("p2").produces(ch).body_func(lambda: send(ch, a[2]()))
    cons = process("cons").consumes(ch).body(consume(ch, lambda t: c[t]()))
    program = run(connect(p1, p2, cons), 1000, placement={"p1": 0, "cons": 0, "p2": 1})
    assert spans_of(program, "p1") == [(0, 0, 100), (1, 110, 210)]
    assert spans_of(program, "p2") == [(2, 1220, 1320)]
    assert spans_of(program, "cons") == [(0, 100, 110), (1, 210, 220), (2, 2320, 2330)]


def test_an_item_goes_to_the_waiting_consumer_that_sees_it_first():
    """A pool of two workers on one channel: work[0] on core 1 (far from prod), work[1] on core 0 with prod; latency
    1000. Both wait from 0. Item 0 (done at 100) is seen by work[1] at 100 and by work[0] at 1100: work[1] takes it
    (100-600). Item 1 (done at 200) has only work[0] waiting, which sees it at 1200 (1200-1700)."""
    a, w = pinned("a", 100), pinned("w", 500)
    q = Channel("q", depth=4)
    prod = process("prod").produces(q).body(for_each(Dense[2](), lambda t: send(q, a[t]())))
    work = process("work").consumes(q).body(consume(q, lambda t: w[t]()))
    program = run(connect(prod, replicate(work, 2)), 1000, placement={"prod": 0, "work[0]": 1, "work[1]": 0})
    assert spans_of(program, "work[1]") == [(0, 100, 600)]
    assert spans_of(program, "work[0]") == [(1, 1200, 1700)]
    assert program.stats().total_cycles == 1700


def test_an_event_signal_pays_the_latency_of_its_own_hop():
    """r1 shares core 0 with the waiter, r2 is on core 1, latency 1000: r1's record at 100 reaches w at 100 (its
    task 100-110); r2's (at 300) would only reach it at 1300."""
    a, b = pinned("a", 100), pinned("b", 10)
    ev = Event("e")
    r1 = process("r1").body_func(lambda: sequential(a[0](), record(ev)))
    r2 = process("r2").body_func(lambda: sequential(a[1](), a[2](), a[3](), record(ev)))
    w = process("w").body_func(lambda: sequential(synchronize(ev), b[0]()))
    program = run(connect(r1, r2, w), 1000, placement={"r1": 0, "w": 0, "r2": 1})
    assert spans_of(program, "w") == [(0, 100, 110)]


@pytest.mark.parametrize("placement, ends", [("shared", [(0, 100, 110), (2, 110, 120), (1, 200, 210),
                                                           (3, 210, 220)]),
                                              (None, [(0, 1100, 1110), (2, 1110, 1120), (1, 1200, 1210),
                                                      (3, 1210, 1220)])])
def test_a_merge_on_one_core_or_across_cores_is_unchanged(placement, ends):
    """Every hop the same: all on one core (no latency) or every process on its own core (1000 each way), as before."""
    a, c = pinned("a", 100), pinned("c", 10)
    ch = Channel("m", depth=4)
    p1 = process("p1").produces(ch).body(for_each(Dense[2](), lambda t: send(ch, a[t]())))
    p2 = process("p2").produces(ch).body(for_each(Dense[2](), lambda t: send(ch, a[t + 2]())))
    cons = process("cons").consumes(ch).body(consume(ch, lambda t: c[t]()))
    program = run(connect(p1, p2, cons), 1000, placement=placement)
    assert spans_of(program, "cons") == ends


# -- tokens left in a channel ---------------------------------------------------------------------------------------

def leftover_pipeline(depth, line_holder, in_when=False):
    a, b, c = pinned("a", 10), pinned("b", 10), pinned("c", 10)
    q = Channel("q", depth=depth)
    prod = process("prod").produces(q).body(for_each(Dense[4](), lambda t: send(q, a[t]())))
    if in_when:
        def body():
            with P.when(False):
                line_holder.append(here() + 1)
                consume(q, lambda t: b[t]())
            c[0]()
        cons = process("cons").consumes(q).body_func(body)
    else:
        line_holder.append(here() + 1)
        cons = process("cons").consumes(q).body_func(lambda: cond(False, consume(q, lambda t: b[t]()), c[0]()))
    return connect(prod, cons)


LEFTOVER = ("the run ended (t=40 cycles) with 4 token(s) left in channel 'q': 'prod' sent them, and the "
            "consume(q, ...) of 'cons' never took them, so the work they stand for never ran.")
LEFTOVER_HINT = ("A consume takes every token until its channel closes, so this one never ran: it sits in a branch "
                 "that was not taken (cond(...) or P.when(...)). Consume the channel outside the branch, or send to "
                 "it only under the same condition.")


@pytest.mark.parametrize("depth", [4, 8])
@pytest.mark.parametrize("in_when", [False, True])
def test_tokens_left_in_a_channel_at_the_end_of_a_run_are_an_error(depth, in_when):
    """The consumer's only consume sits in a branch not taken: the 4 tokens sent are never consumed. With room for
    them all the run used to end quietly; it raises at the consume's line, naming the channel, the count, the
    producer and the consumer (a depth of 2 deadlocks instead, as before)."""
    lines: list[int] = []
    with pytest.raises(PipelineError) as e:
        run(leftover_pipeline(depth, lines, in_when))
    assert e.value.what == LEFTOVER
    assert e.value.hint == LEFTOVER_HINT
    located(e, lines[0])


def test_a_depth_that_cannot_hold_the_tokens_still_deadlocks():
    with pytest.raises(DeadlockError, match="'q' 2/2 slots in use, 2 token\\(s\\) waiting"):
        run(leftover_pipeline(2, []))


def test_tokens_left_over_leave_the_outputs_unchanged():
    """The error comes from the run itself: what the producer wrote is put back, and the error says so."""
    @kernel(cycles=10)
    def bump(acc: InOut[Tile[4, 4, F32]]):
        """acc += 1."""
        tl.store(acc, tl.load(acc) + 1.0)

    A = Tensor(data=np.zeros((4, 4, 4), np.float32), name="A")
    b = pinned("b", 10)
    q = Channel("q", depth=4)
    prod = process("prod").produces(q).body(for_each(Dense[4](), lambda t: send(q, bump[t](acc=A[t]))))
    cons = process("cons").consumes(q).body_func(lambda: cond(False, consume(q, lambda t: b[t]()), b[9]()))
    with pytest.raises(PipelineError) as e:
        connect(prod, cons).compile(cost_model=PinnedCosts()).execute()
    assert e.value.what.startswith("the run ended (t=40 cycles) with 4 token(s) left in channel 'q'")
    assert e.value.hint == LEFTOVER_HINT + " Outputs left unchanged: 'A' is as before the run (a run writes its " \
                                           "outputs only if it succeeds)."
    assert not A.data.any()


# -- a deadlock on an event -----------------------------------------------------------------------------------------

def test_an_event_deadlock_says_when_the_run_stopped_and_what_the_event_saw():
    """One record, two waiters: r runs 0-100 and records, w1 takes the signal and runs 100-110, w2 waits from 0
    forever. The run stopped at 110 (not 0), and the event was recorded once and that signal taken."""
    a, b = pinned("a", 100), pinned("b", 10)
    ev = Event("e")
    r = process("r").body_func(lambda: sequential(a[0](), record(ev)))
    w1 = process("w1").body_func(lambda: sequential(synchronize(ev), b[0]()))
    w2 = process("w2").body_func(lambda: sequential(synchronize(ev), b[1]()))
    line = here() - 1
    with pytest.raises(DeadlockError) as e:
        run(connect(r, w1, w2))
    assert e.value.what == ("Deadlock at t=110 cycles: no process can move. 'w2' waits to synchronize on 'e' "
                            f"at test_engine_round6.py:{line} (since t=0). Events: 'e' recorded 1, taken 1.")
    located(e, line)
    assert e.value.hint == ("Check that every consumed channel has a producer that keeps sending, that every "
                            "synchronize has a matching record, and that no process waits on a channel it fills "
                            "itself; or raise a depth.")
