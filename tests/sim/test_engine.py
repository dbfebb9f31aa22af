"""The engine's semantics (issue 10): merge order on channels with several producers, and the run limits that stop
processes looping forever. Timelines are worked out by hand in each docstring; costs are pinned."""
from __future__ import annotations

import inspect
import time

import pytest

import ptort_lab
from ptort_lab import (
    Channel,
    Dense,
    PinnedCosts,
    PtortError,
    PtortValueError,
    RunLimitError,
    SimulationError,
    connect,
    consume,
    for_each,
    process,
    replicate,
    send,
    sequential,
    task,
    workload,
)
from ptort_lab import errors as errors_module
from ptort_lab.sim import engine as engine_module


class OrderedPinned(PinnedCosts):
    """Pinned costs with the engine in global time order (the mode of every shared-resource cost model)."""

    time_ordered = True


def spans(program, name=None):
    return sorted((s.process, s.index, s.start, s.end) for s in program.trace().spans
                  if name is None or s.process == name)


def taken(program, name):
    """The tokens process ``name`` worked on, in the order it took them."""
    return [s.index for s in sorted(program.trace().spans, key=lambda s: s.start) if s.process == name]


# -- merges: the consumer takes items in the order they become visible -------------------------------------------
@pytest.mark.parametrize("costs", [PinnedCosts, OrderedPinned])
def test_merge_takes_the_item_that_becomes_visible_first(stages, costs):
    """p0 and p1 each take a fresh slot at t=0; p0's item 1 is ready at 65, p1's item 9 at 34. The consumer waits
    from 0, takes 9 at 34 ([34, 74)) and then 1 ([74, 110)): makespan 110. (It used to take 1 first, the send the
    engine ran first, idle until 65 and end at 141.)"""
    ch = Channel(name="ch", depth=2)
    p0 = process("p0").produces(ch).body(send(ch, task(stages.a, [1], {}, cycles=65)))
    p1 = process("p1").produces(ch).body(send(ch, task(stages.a, [9], {}, cycles=34)))
    c = process("c").consumes(ch).body(consume(ch, lambda t: task(stages.b, [t], {},
                                                                 cycles=lambda k: 36 + 4 * (k.params[0] > 1))))
    program = connect(p0, p1, c).compile(cost_model=costs()).execute()
    assert spans(program, "c") == [("c", 1, 74, 110), ("c", 9, 34, 74)]
    assert program.stats().total_cycles == 110


def issue_repro(stages, item2_cycles=40):
    """The issue's case: item 2 gets its slot at 60 and is ready at 100, item 100 gets its slot at 70 and is ready
    at 1100; latency 30.

    p2 (first in connect()) sends 99 (0 cycles) into a fresh slot at t=0, runs a 45-cycle task and sends 100 (1030
    cycles). p1 sends 1 (0 cycles) into the other fresh slot and waits for a slot for 2. Tokens 99 and 1 are
    visible at 30; c takes 99 ([30, 30), its slot free at 60 goes to the waiting p1) and 1 ([30, 40), its slot free
    at 70 stays free). p2 asks for a slot at 45 and gets the one free at 70, so 100 runs [70, 1100), visible at
    1130; p1's 2 runs [60, 100), visible at 130. The engine runs p2's send (at 45) before p1's (at 60): it used to
    hand 100 to the waiting consumer at once, which then idled until 1130.
    """
    ch = Channel(name="ch", depth=2)
    cost = {99: 0, 1: 10, 2: 10, 100: 10}
    p2 = process("p2").produces(ch).body_func(lambda: [
        send(ch, task(stages.a, [99], {}, cycles=0)), task(stages.a, [0], {}, cycles=45),
        send(ch, task(stages.a, [100], {}, cycles=1030))])
    p1 = process("p1").produces(ch).body_func(lambda: [
        send(ch, task(stages.a, [1], {}, cycles=0)), send(ch, task(stages.a, [2], {}, cycles=item2_cycles))])
    c = process("c").consumes(ch).body(consume(ch, lambda t: task(stages.b, [t], {},
                                                                 cycles=lambda k: cost[k.params[0]])))
    return connect(p2, p1, c).compile(cost_model=PinnedCosts(), channel_latency_cycles=30).execute()


def test_merge_issue_repro_takes_item_2_first(stages):
    """c takes 2 at 130 ([130, 140)) and 100 at 1130 ([1130, 1140)): makespan 1140 (it used to be 1150, with 100
    first)."""
    program = issue_repro(stages)
    assert spans(program, "p1") == [("p1", 1, 0, 0), ("p1", 2, 60, 100)]
    assert spans(program, "p2") == [("p2", 0, 0, 45), ("p2", 99, 0, 0), ("p2", 100, 70, 1100)]
    assert taken(program, "c") == [99, 1, 2, 100]
    assert spans(program, "c") == [("c", 1, 30, 40), ("c", 2, 130, 140), ("c", 99, 30, 30), ("c", 100, 1130, 1140)]
    assert program.stats().total_cycles == 1140


def test_merge_ties_go_to_the_earlier_slot_grant(stages):
    """As above, but 2 costs 1040 cycles: 2 ([60, 1100)) and 100 ([70, 1100)) are both visible at 1130. 2's slot was
    granted first (60 < 70), so c takes it first though p2 comes first in connect() and the engine ran its send
    first: 2 [1130, 1140), then 100 [1140, 1150)."""
    program = issue_repro(stages, item2_cycles=1040)
    assert taken(program, "c") == [99, 1, 2, 100]
    assert spans(program, "c")[1:2] + spans(program, "c")[3:] == [("c", 2, 1130, 1140), ("c", 100, 1140, 1150)]


@pytest.mark.parametrize("first", ["p", "q"])
def test_merge_ties_in_visible_and_grant_time_follow_connect_order(stages, first):
    """p and q both take a fresh slot at t=0 and finish at 10: the one listed first in connect() goes first."""
    ch = Channel(name="ch", depth=2)
    p = process("p").produces(ch).body(send(ch, task(stages.a, [1], {}, cycles=10)))
    q = process("q").produces(ch).body(send(ch, task(stages.a, [2], {}, cycles=10)))
    c = process("c").consumes(ch).body(consume(ch, lambda t: task(stages.b, [t], {}, cycles=3)))
    order = [p, q] if first == "p" else [q, p]
    program = connect(*order, c).compile(cost_model=PinnedCosts()).execute()
    assert taken(program, "c") == ([1, 2] if first == "p" else [2, 1])
    assert [s[2:] for s in sorted(spans(program, "c"), key=lambda s: s[2])] == [(10, 13), (13, 16)]


def test_merge_with_a_body_send_uses_its_push_time(stages):
    """p sends a two-task body (token 1): it takes its slot at 0, runs [0, 10) and [10, 20), and the token is visible
    at 20. q's task 7 runs [0, 25) and is visible at 25. The engine ran q's send first (at t=0, before p's second
    task); c still takes 1 at 20 ([20, 21)) and 7 at 25 ([25, 26))."""
    ch = Channel(name="ch", depth=2)
    p = process("p").produces(ch).body(send(ch, sequential(task(stages.a, [1], {}, cycles=10),
                                                           task(stages.a, [2], {}, cycles=10)), token=1))
    q = process("q").produces(ch).body(send(ch, task(stages.a, [7], {}, cycles=25)))
    c = process("c").consumes(ch).body(consume(ch, lambda t: task(stages.b, [t], {}, cycles=1)))
    program = connect(p, q, c).compile(cost_model=PinnedCosts()).execute()
    assert spans(program, "c") == [("c", 1, 20, 21), ("c", 7, 25, 26)]


def test_merge_into_a_worker_pool(stages):
    """Two producers (items 1 at 50, 2 at 20) and two workers waiting from t=0: the first visible item (2, at 20)
    goes to the worker waiting longest (w[0], first in connect()), 1 to w[1] at 50."""
    ch = Channel(name="ch", depth=2)
    p = process("p").produces(ch).body(send(ch, task(stages.a, [1], {}, cycles=50)))
    q = process("q").produces(ch).body(send(ch, task(stages.a, [2], {}, cycles=20)))
    w = process("w").consumes(ch).body(consume(ch, lambda t: task(stages.b, [t], {}, cycles=5)))
    program = connect(p, q, replicate(w, 2)).compile(cost_model=PinnedCosts()).execute()
    assert spans(program, "w[0]") == [("w[0]", 2, 20, 25)]
    assert spans(program, "w[1]") == [("w[1]", 1, 50, 55)]


def test_merge_close_reaches_the_worker_no_item_is_left_for(stages):
    """p's item (10 cycles) goes to w[0] ([10, 15)), which waits again from 15. q finishes at 30 with its item still
    to become visible: w[1], waiting since 0, will take it ([30, 35)), so w[0] learns at 30 that the channel
    closed; w[1] ends at 35 after finding it closed."""
    ch = Channel(name="ch", depth=2)
    p = process("p").produces(ch).body(send(ch, task(stages.a, [1], {}, cycles=10)))
    q = process("q").produces(ch).body(send(ch, task(stages.a, [2], {}, cycles=30)))
    w = process("w").consumes(ch).body(consume(ch, lambda t: task(stages.b, [t], {}, cycles=5)))
    program = connect(p, q, replicate(w, 2)).compile(cost_model=PinnedCosts()).execute()
    assert spans(program, "w[0]") == [("w[0]", 1, 10, 15)] and spans(program, "w[1]") == [("w[1]", 2, 30, 35)]
    assert program.trace().process_end == {"p": 10, "q": 30, "w[0]": 30, "w[1]": 35}


def test_single_producer_runs_until_block_but_a_merge_forces_time_order(stages):
    """The engine runs processes until they block only where no channel has several producers or consumers; a
    merge switches it to global time order even when the cost model allows the fast mode."""
    from ptort_lab.sim.engine import Engine
    one, two = Channel(name="one", depth=1), Channel(name="two", depth=1)
    e = Engine(lambda task, proc: None, time_ordered=False)
    e.add_fifo(one, 1)
    assert not e.time_ordered
    e.add_fifo(two, 2)
    assert e.time_ordered
    e2 = Engine(lambda task, proc: None, time_ordered=False)
    e2.add_fifo(one, 1, consumers=2)
    assert e2.time_ordered


# -- run limits ------------------------------------------------------------------------------------------------------
def ping_pong(stages=None, cycles=None):
    """A sends a token to B over c1, B sends it back over c2, forever (each consume waits for the other to end)."""
    c1, c2 = Channel(name="c1", depth=1), Channel(name="c2", depth=1)

    def item(t):
        return t if stages is None else task(stages.a, [t], {}, cycles=cycles)

    a = process("A").consumes(c2).produces(c1).body_func(lambda: [send(c1, item(0)),
                                                                   consume(c2, lambda t: send(c1, item(t)))])
    b = process("B").consumes(c1).produces(c2).body(consume(c1, lambda t: send(c2, item(t))))
    return connect(a, b)


@pytest.mark.timeout(20)
def test_ping_pong_at_time_zero_stops_within_seconds_at_default_limits(where):
    """The issue's hang: two processes passing a token back and forth over depth-1 channels at t=0. At the default
    limits it stops with RunLimitError naming both processes and their channels, well within 10 s."""
    program = ping_pong().compile(cost_model=PinnedCosts())
    started = time.perf_counter()
    with pytest.raises(RunLimitError) as e:
        line = inspect.currentframe().f_lineno + 1
        program.execute()
    assert time.perf_counter() - started < 10
    msg = where(e, line)
    assert msg.startswith("Run limit: 524,288 steps without simulated time moving (at t=0 cycles, ")
    assert "Active: 'A' (t=0) sends to 'c1' and consumes 'c2'; 'B' (t=0) sends to 'c2' and consumes 'c1'." in msg
    assert "a consume loop ends only when every producer of its channel has finished" in msg
    assert "ptort_lab.sim.engine.MAX_STEPS_WITHOUT_PROGRESS = 5_000_000 (now 500_000)" in msg
    assert isinstance(e.value, SimulationError) and isinstance(e.value, RuntimeError)


def test_ping_pong_with_zero_cost_tasks_stops_too(stages, monkeypatch):
    """With tasks that cost 0 cycles the clock does not move either: the message adds that they run tasks."""
    monkeypatch.setattr(engine_module, "MAX_STEPS_WITHOUT_PROGRESS", 3000)
    with pytest.raises(RunLimitError) as e:
        ping_pong(stages, cycles=0).compile(cost_model=PinnedCosts()).execute()
    msg = str(e.value)
    assert msg.startswith("Run limit: 3,000 steps without simulated time moving (at t=0 cycles, 6,000 steps in all)")
    assert "Active: 'A' (t=0) sends to 'c1', consumes 'c2' and runs tasks; 'B' (t=0) sends to 'c2', consumes 'c1' " \
           "and runs tasks." in msg
    assert "(now 3_000)" in msg


def test_ping_pong_that_moves_the_clock_hits_the_step_limit(stages, monkeypatch):
    """With 10-cycle tasks the clock moves, so only the step limit stops it. The steps are A's first send (a task),
    A's and B's first pulls, then one send-and-pull per item (a task each); the 2,000th is taken but not carried out,
    so 1,997 tasks of 10 cycles have run one after another: t=19,970, both processes' clocks."""
    monkeypatch.setattr(engine_module, "MAX_STEPS", 2000)
    with pytest.raises(RunLimitError) as e:
        ping_pong(stages, cycles=10).compile(cost_model=PinnedCosts()).execute()
    msg = str(e.value)
    assert msg.startswith("Run limit: the pipeline ran 2,000 steps (a send, consume, task, record or synchronize of "
                          "a process each) and has not finished; simulated time is t=19,970 cycles. Active: 'A' "
                          "(t=19,970) sends to 'c1', consumes 'c2' and runs tasks; 'B' (t=19,970) sends to 'c2', "
                          "consumes 'c1' and runs tasks.")
    assert "ptort_lab.sim.engine.MAX_STEPS = 20_000 (now 2_000)." in msg


def linear(stages, n, cycles=1):
    c1, c2 = Channel(name="c1", depth=2), Channel(name="c2", depth=2)
    s0 = process("s0").produces(c1).body(for_each(Dense[n](), lambda t: send(c1, task(stages.a, [t], {},
                                                                                       cycles=cycles))))
    s1 = process("s1").consumes(c1).produces(c2).body(consume(c1, lambda t: send(c2, task(stages.b, [t], {},
                                                                                             cycles=cycles))))
    s2 = process("s2").consumes(c2).body(consume(c2, lambda t: task(stages.a, [t], {}, cycles=cycles)))
    return connect(s0, s1, s2)


def test_a_pipeline_takes_one_step_per_stage_and_item(stages, monkeypatch):
    """3 stages over 2,000 tiles take 3 * 2,000 + 2 steps (each consumer's first pull): a run of 3 million
    stage-items stays far below the default MAX_STEPS, and the limit counts exactly."""
    assert engine_module.MAX_STEPS >= 3 * 3_000_000
    monkeypatch.setattr(engine_module, "MAX_STEPS", 6003)
    assert linear(stages, 2000).compile(cost_model=PinnedCosts()).execute().stats().total_cycles == 2002
    monkeypatch.setattr(engine_module, "MAX_STEPS", 6002)
    with pytest.raises(RunLimitError, match="ran 6,002 steps"):
        linear(stages, 2000).compile(cost_model=PinnedCosts()).execute()


def test_a_long_zero_cost_pipeline_is_told_to_pin_costs_or_raise_the_limit(stages, monkeypatch):
    """A pipeline whose tasks all cost 0 cycles never moves the clock: past the limit it is refused with that
    reason, and a higher limit lets it finish."""
    monkeypatch.setattr(engine_module, "MAX_STEPS_WITHOUT_PROGRESS", 100)
    with pytest.raises(RunLimitError) as e:
        linear(stages, 100, cycles=0).compile(cost_model=PinnedCosts()).execute()
    assert "If the run is only long and its tasks cost 0 cycles, pin costs (cycles=) or raise the limit" in str(e.value)
    monkeypatch.setattr(engine_module, "MAX_STEPS_WITHOUT_PROGRESS", 1000)
    assert len(linear(stages, 100, cycles=0).compile(cost_model=PinnedCosts()).execute().tasks) == 300


def test_data_parallel_runs_are_not_limited_and_pipelines_without_channels_are(stages, monkeypatch):
    """Data-parallel workloads are finite lists of tasks (MAX_TASKS caps them): no engine limit applies. A pipeline
    without channels cannot loop, but it is held to MAX_STEPS (and MAX_RUN_BYTES) as every pipeline run is."""
    monkeypatch.setattr(engine_module, "MAX_STEPS", 3)
    monkeypatch.setattr(engine_module, "MAX_STEPS_WITHOUT_PROGRESS", 3)

    @workload
    def many():
        for_each(Dense[50](), lambda t: task(stages.a, [t], {}))

    assert len(many().compile(cost_model=PinnedCosts()).execute().tasks) == 50
    solo = process("solo").body(for_each(Dense[50](), lambda t: task(stages.a, [t], {})))
    with pytest.raises(RunLimitError, match="ran 3 steps"):
        connect(solo).compile(cost_model=PinnedCosts()).execute()
    monkeypatch.setattr(engine_module, "MAX_STEPS", 1000)
    assert len(connect(solo).compile(cost_model=PinnedCosts()).execute().tasks) == 50


def test_listing_a_ping_pong_stops_too(stages, monkeypatch):
    """enumerate() runs the processes without a clock: steps that list no task and end no process are the sign
    (the listing used to hang). At the default it stops in a second or two; here at 5,000 steps."""
    from ptort_lab.dsl import steps as steps_module
    assert steps_module.MAX_LISTING_STEPS_WITHOUT_TASKS == 1_000_000
    monkeypatch.setattr(steps_module, "MAX_LISTING_STEPS_WITHOUT_TASKS", 5000)
    with pytest.raises(RunLimitError) as e:
        ping_pong().enumerate()
    msg = str(e.value)
    assert msg.startswith("Run limit: listing the pipeline's tasks took 5,000 steps in which no process ran a task or "
                          "finished. Active: 'A' sends to 'c1' and consumes 'c2'; 'B' sends to 'c2' and consumes "
                          "'c1'.")
    assert "ptort_lab.dsl.steps.MAX_LISTING_STEPS_WITHOUT_TASKS = 50_000 (now 5_000)." in msg
    # A long task-less stretch that ends is fine: p sends 1,000 plain tokens (2,000 steps, then it ends), c passes
    # them on (a pull, an acquire and a push each: 3,000 steps, then it ends), the sink lists a task per token.
    ch, ch2 = Channel(name="c", depth=1), Channel(name="c2", depth=1)
    p = process("p").produces(ch).body(for_each(Dense[1000](), lambda t: send(ch, t)))
    c = process("c").consumes(ch).produces(ch2).body(consume(ch, lambda t: send(ch2, t)))
    sink = process("sink").consumes(ch2).body(consume(ch2, lambda t: task(stages.b, [t], {})))
    assert len(connect(p, c, sink).enumerate()) == 1000


@pytest.mark.parametrize("name", ["MAX_STEPS", "MAX_STEPS_WITHOUT_PROGRESS"])
@pytest.mark.parametrize("value", [0, -5, 2.5, "many", True])
def test_a_bad_limit_is_refused_by_name(stages, monkeypatch, name, value):
    monkeypatch.setattr(engine_module, name, value)
    with pytest.raises(PtortValueError) as e:
        linear(stages, 2).compile(cost_model=PinnedCosts()).execute()
    assert f"the run limit ptort_lab.sim.engine.{name} must be an int >= 1, got {value!r}." in str(e.value)
    assert f"ptort_lab.sim.engine.{name} = 100_000_000" in str(e.value)


def test_run_limit_error_sits_under_simulation_error():
    assert issubclass(RunLimitError, SimulationError) and issubclass(RunLimitError, PtortError)
    assert "RunLimitError" in ptort_lab.__all__ and "RunLimitError" in errors_module.__all__
    assert "RunLimitError" in errors_module.__doc__
