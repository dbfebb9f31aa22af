"""No hang, ever (issue 14): pipelines that can never finish, runs at one cycle time, and runs past the memory
limit stop with a RunLimitError naming the processes, their channels, the steps and time so far, and the limit.

Timelines by hand: in a ping-pong with 10-cycle tasks every step after the first three is one task, one after the
other, so after s steps the clocks are at 10 * (s - 3)."""
from __future__ import annotations

import time

import pytest

from ptort_lab import (
    Channel,
    DeadlockError,
    Dense,
    DType,
    In,
    Out,
    PinnedCosts,
    PtortValueError,
    RunLimitError,
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
from ptort_lab.sim import engine as engine_module
from ptort_lab.sim import limits as limits_module

ENDLESS_A_B = ("Run limit: this pipeline can never finish: 'A' ends only after 'c2' closes, which needs 'B' to "
               "finish; 'B' ends only after 'c1' closes, which needs 'A' to finish.")
HINT = ("Give the loop an end: a process that consumes a channel ends only when every producer of that channel has "
        "finished, so a cycle of such processes needs one that stops on its own (a for_each over a finite axis "
        "instead of a consume). If it is meant to run this long, raise ptort_lab.sim.limits.NEVER_ENDS_STEPS "
        "(now 16_384).")

pinned10 = kernel(name="k10", cycles=10)(lambda: None)
pinned0 = kernel(name="k0", cycles=0)(lambda: None)


@kernel
def bump(a: In[Tile[64, 64, DType.F16]], b: Out[Tile[64, 64, DType.F16]]):
    tl.store(b, tl.add(tl.load(a), 1.0))


def ping_pong(item=lambda t: t):
    """A sends a token to B over c1, B sends it back over c2, forever."""
    c1, c2 = Channel(name="c1", depth=1), Channel(name="c2", depth=1)
    a = process("A").consumes(c2).produces(c1).body_func(lambda: [send(c1, item(0)),
                                                                   consume(c2, lambda t: send(c1, item(t)))])
    b = process("B").consumes(c1).produces(c2).body(consume(c1, lambda t: send(c2, item(t))))
    return connect(a, b)


def run_error(program):
    with pytest.raises(RunLimitError) as e:
        program.execute()
    return str(e.value)


# -- pipelines that can never finish ---------------------------------------------------------------------------------
@pytest.mark.timeout(30)
def test_ping_pong_with_tasks_stops_at_default_limits_naming_the_cycle():
    """10-cycle tasks move the clock, so no step limit is near; the cycle A <-> B can never finish, and the run
    stops at the second check (32,768 steps: 32,765 tasks, t = 327,650) in well under 10 s."""
    started = time.perf_counter()
    msg = run_error(ping_pong(lambda t: task(pinned10, [t], {})).compile(cost_model=PinnedCosts()))
    assert time.perf_counter() - started < 10
    assert msg.startswith(ENDLESS_A_B + " It has run 32,768 steps (simulated time t=327,650 cycles) and would run "
                                        "until a limit. Active: 'A' (t=327,650) sends to 'c1', consumes 'c2' and "
                                        "runs tasks; 'B' (t=327,650) sends to 'c2', consumes 'c1' and runs tasks.")
    assert msg.endswith(HINT)


@pytest.mark.timeout(60)
def test_ping_pong_on_the_npu_model_stops_within_ten_seconds():
    """The issue's 8 GB case: real kernels priced by the NPU model, at default limits."""
    X = Tensor(shape=(2, 64, 64), dtype=DType.F16, name="X")
    started = time.perf_counter()
    msg = run_error(ping_pong(lambda t: bump[0](a=X[0], b=X[1])).compile(compute_values=False))
    assert time.perf_counter() - started < 10
    assert msg.startswith(ENDLESS_A_B + " It has run 32,768 steps")


@pytest.mark.timeout(30)
def test_ping_pong_with_zero_cycle_tasks_at_time_zero_stops_at_default_limits():
    """At t=0 with 0-cycle tasks the clock never moves: the no-progress limit stops it (checked every 65,536 steps:
    8 checks without progress after the first), within 10 s."""
    started = time.perf_counter()
    msg = run_error(ping_pong(lambda t: task(pinned0, [t], {})).compile(cost_model=PinnedCosts()))
    assert time.perf_counter() - started < 10
    assert msg.startswith("Run limit: 524,288 steps without simulated time moving (at t=0 cycles, 589,824 steps in "
                          "all). Active: 'A' (t=0) sends to 'c1', consumes 'c2' and runs tasks;")


def test_a_three_process_ring_and_a_process_feeding_itself():
    """A -> B -> C -> A over c_ab, c_bc, c_ca; and P consuming the channel it produces: both named link by link."""
    ab, bc, ca = (Channel(name=n, depth=1) for n in ("c_ab", "c_bc", "c_ca"))
    a = process("A").produces(ab).consumes(ca).body_func(
        lambda: [send(ab, task(pinned10, [0], {})), consume(ca, lambda t: send(ab, task(pinned10, [t], {})))])
    b = process("B").consumes(ab).produces(bc).body(consume(ab, lambda t: send(bc, task(pinned10, [t], {}))))
    c = process("C").consumes(bc).produces(ca).body(consume(bc, lambda t: send(ca, task(pinned10, [t], {}))))
    msg = run_error(connect(a, b, c).compile(cost_model=PinnedCosts()))
    assert msg.startswith("Run limit: this pipeline can never finish: 'A' ends only after 'c_ca' closes, which needs "
                          "'C' to finish; 'C' ends only after 'c_bc' closes, which needs 'B' to finish; 'B' ends only "
                          "after 'c_ab' closes, which needs 'A' to finish.")
    loop = Channel(name="loop", depth=2)
    p = process("P").produces(loop).consumes(loop).body_func(
        lambda: [send(loop, task(pinned10, [0], {})), consume(loop, lambda t: send(loop, task(pinned10, [t], {})))])
    msg = run_error(connect(p).compile(cost_model=PinnedCosts()))
    assert msg.startswith("Run limit: this pipeline can never finish: 'P' ends only after 'loop' closes, which needs "
                          "'P' to finish.")


def test_a_producer_that_never_stops_into_a_consumer_that_discards():
    """A and B ping-pong forever and A also feeds a sink that discards: the sink is not part of the cycle."""
    c1, c2, out = (Channel(name=n, depth=1) for n in ("c1", "c2", "out"))
    a = process("A").consumes(c2).produces(c1, out).body_func(
        lambda: [send(c1, task(pinned10, [0], {})), consume(c2, lambda t: [send(c1, task(pinned10, [t], {})),
                                                                            send(out, t)])])
    b = process("B").consumes(c1).produces(c2).body(consume(c1, lambda t: send(c2, t)))
    sink = process("sink").consumes(out).body(consume(out, lambda t: None))
    msg = run_error(connect(a, b, sink).compile(cost_model=PinnedCosts()))
    assert msg.startswith(ENDLESS_A_B)


def test_a_cycle_that_deadlocks_is_still_reported_as_a_deadlock():
    """A waits on c2 before it ever sends; B waits on c1: nothing moves at t=0, a deadlock, said as before."""
    c1, c2 = Channel(name="c1", depth=1), Channel(name="c2", depth=1)
    a = process("A").consumes(c2).produces(c1).body(consume(c2, lambda t: send(c1, t)))
    b = process("B").consumes(c1).produces(c2).body(consume(c1, lambda t: send(c2, t)))
    with pytest.raises(DeadlockError, match="Deadlock at t=0 cycles: no process can move."):
        connect(a, b).compile(cost_model=PinnedCosts()).execute()


def test_finite_pipelines_are_not_taken_for_endless_ones():
    """A linear pipeline has no cycle of processes waiting for each other's end, and finishes: 3 stages of 10
    cycles over 40 tiles end at 40 * 10 + 2 * 10 = 420."""
    from ptort_lab.sim.limits import endless_cycle
    c1, c2 = Channel(name="c1", depth=2), Channel(name="c2", depth=2)
    src = process("src").produces(c1).body(for_each(Dense[40](), lambda t: send(c1, task(pinned10, [t], {}))))
    mid = process("mid").consumes(c1).produces(c2).body(consume(c1, lambda t: send(c2, task(pinned10, [t], {}))))
    dst = process("dst").consumes(c2).body(consume(c2, lambda t: task(pinned10, [t], {})))
    pipe = connect(src, mid, dst)
    assert endless_cycle(list(pipe.processes), pipe.producers) is None
    assert pipe.compile(cost_model=PinnedCosts()).execute().stats().total_cycles == 420


# -- memory -----------------------------------------------------------------------------------------------------------
def test_a_run_past_the_memory_limit_stops_before_host_memory_runs_out(monkeypatch):
    """The estimate (limits.BYTES_PER_TASK/SPAN/STALL) is checked with the step limits; past MAX_RUN_BYTES the run
    stops with the size, the steps and time so far, and how to raise it."""
    monkeypatch.setattr(engine_module, "MAX_RUN_BYTES", 20 << 20)
    c1, c2 = Channel(name="c1", depth=2), Channel(name="c2", depth=2)
    src = process("src").produces(c1).body(for_each(Dense[100_000](), lambda t: send(c1, task(pinned10, [t], {}))))
    mid = process("mid").consumes(c1).produces(c2).body(consume(c1, lambda t: send(c2, task(pinned10, [t], {}))))
    dst = process("dst").consumes(c2).body(consume(c2, lambda t: task(pinned10, [t], {})))
    msg = run_error(connect(src, mid, dst).compile(cost_model=PinnedCosts()))
    assert msg.startswith("Run limit: the run holds about ")
    assert " of tasks, spans and stalls after 65,536 steps (simulated time t=" in msg
    assert "more than its limit of 20 MiB; going on would exhaust host memory. Active: 'src'" in msg
    assert msg.endswith("raise the limit: ptort_lab.sim.engine.MAX_RUN_BYTES = 41_943_040 (now 20_971_520).")
    assert "execute(steady_state=True)" in msg


def test_the_memory_estimate_grows_with_what_the_run_keeps():
    # ~560 B per stage-item measured with spans and stalls kept column by column (tests/sim/test_compact_trace.py)
    assert 500 <= limits_module.BYTES_PER_TASK + limits_module.BYTES_PER_SPAN + limits_module.BYTES_PER_STALL <= 650
    assert engine_module.MAX_RUN_BYTES == 4 << 30


@pytest.mark.parametrize("value", [0, -1, 2.5, True, "4G"])
def test_a_bad_memory_limit_is_refused(monkeypatch, value):
    monkeypatch.setattr(engine_module, "MAX_RUN_BYTES", value)
    with pytest.raises(PtortValueError) as e:
        ping_pong().compile(cost_model=PinnedCosts()).execute()
    assert f"the run limit ptort_lab.sim.engine.MAX_RUN_BYTES must be an int >= 1, got {value!r}." in str(e.value)
