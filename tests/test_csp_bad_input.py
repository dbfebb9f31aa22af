"""Bad input to the CSP layer and task windows: replicate, query in a body, TaskWindow modes/units, duplicate
event names and nested P.pipe() blocks each raise a located PtortError that says what to do instead."""
import inspect
import time

import pytest

from ptort_lab import (
    Channel,
    Dense,
    DSLUsageError,
    Event,
    P,
    PipelineError,
    PtortTypeError,
    PtortValueError,
    TaskWindow,
    WindowMode,
    cond,
    connect,
    consume,
    for_each,
    process,
    query,
    record,
    replicate,
    send,
    synchronize,
    task,
    workload,
)
from ptort_lab.dsl.csp import MAX_REPLICAS
from ptort_lab.program import PinnedCosts


def here() -> int:
    return inspect.currentframe().f_back.f_lineno


def worker_on(ch, stages):
    return process("worker").consumes(ch).body(consume(ch, lambda t: task(stages.b, [t], {}, cycles=1)))


def producer_of(ch, stages, n=4):
    return process("prod").produces(ch).body(for_each(Dense[n](), lambda t: send(ch, task(stages.a, [t], {},
                                                                                             cycles=1))))


# -- replicate ------------------------------------------------------------------------------------------------------
def test_replicate_a_string_is_a_type_error(where):
    with pytest.raises(PtortTypeError, match=r"replicate\(\) needs a Process .* got str 'worker'") as e:
        line = here() + 1
        replicate("worker", 2)
    assert "process(" in where(e, line)


def test_replicate_a_float_count_says_it_needs_an_int(stages, where):
    w = worker_on(Channel(name="c", depth=1), stages)
    with pytest.raises(PtortTypeError, match=r"needs an int n .* got float 2\.0") as e:
        line = here() + 1
        replicate(w, 2.0)
    assert "replicate(p, 4)" in where(e, line)
    with pytest.raises(PtortTypeError, match="needs an int n"):
        replicate(w, True)


def test_replicate_zero_is_still_a_value_error(stages):
    with pytest.raises(PtortValueError, match=r"needs n >= 1, got 0"):
        replicate(worker_on(Channel(name="c", depth=1), stages), 0)


def test_replicate_a_huge_count_is_refused_at_once(stages, where):
    w = worker_on(Channel(name="c", depth=1), stages)
    t0 = time.perf_counter()
    with pytest.raises(PtortValueError, match=rf"at most {MAX_REPLICAS} copies, got n=10000000") as e:
        line = here() + 1
        replicate(w, 10**7)
    assert time.perf_counter() - t0 < 1.0
    msg = where(e, line)
    assert "24" in msg and "num_cores" in msg and "own AI core" in msg


def test_replicate_at_the_cap_still_builds_and_runs_shared(stages):
    ch = Channel(name="c", depth=2)
    copies = replicate(worker_on(ch, stages), MAX_REPLICAS)
    assert len(copies) == MAX_REPLICAS and copies[-1].name == f"worker[{MAX_REPLICAS - 1}]"
    program = connect(producer_of(ch, stages), copies).place("shared").compile(cost_model=PinnedCosts())
    program.execute()
    assert program.stats().task_count == 8


def test_replicate_a_process_without_body_is_refused_at_the_call(where):
    w = process("w").consumes(Channel(name="c", depth=1))
    with pytest.raises(PipelineError, match=r"replicate\('w', 2\) copies a process with no body") as e:
        line = here() + 1
        replicate(w, 2)
    assert "before replicate()" in where(e, line)


# -- query() while a body is built -----------------------------------------------------------------------------------
def test_query_in_a_consume_body_raises_instead_of_dropping_tasks(stages, where):
    ev, ch = Event("e"), Channel(name="c", depth=2)
    with pytest.raises(DSLUsageError, match=r"query\('e'\) is a host-side check") as e:
        line = here() + 1
        consume(ch, lambda t: cond(query(ev), task(stages.b, [t], {})))
    msg = where(e, line)
    assert "record(ev)" in msg and "synchronize(ev)" in msg


def test_query_in_a_workload_body_raises(stages):
    ev = Event("e")

    @workload
    def w():
        with P.when(query(ev)):
            task(stages.a, [0], {})

    with pytest.raises(DSLUsageError, match="host-side check"):
        w()


def test_query_on_the_host_still_works():
    ev = Event("e")
    assert query(ev) is False
    record(ev)
    assert query(ev) is True
    synchronize(ev)
    assert query(ev) is False


# -- TaskWindow --------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["stall", "explode", 0, None])
def test_task_window_mode_must_be_a_window_mode(mode, where):
    with pytest.raises(PtortTypeError, match=r"TaskWindow mode must be a WindowMode, got") as e:
        line = here() + 1
        TaskWindow(2, mode=mode)
    assert "WindowMode.STALL" in where(e, line)


@pytest.mark.parametrize("mode", [WindowMode.ABORT, WindowMode.BENCHMARK])
def test_task_window_modes_other_than_stall_are_refused(mode, where):
    with pytest.raises(PtortValueError, match=rf"{mode} has no model here") as e:
        line = here() + 1
        TaskWindow(2, mode=mode)
    msg = where(e, line)
    assert "only unit='tasks' with mode=WindowMode.STALL" in msg and "TaskWindow(2, 'tasks')" in msg


@pytest.mark.parametrize("unit", ["bytes", "entries"])
def test_task_window_units_other_than_tasks_are_refused(unit):
    with pytest.raises(PtortValueError, match=rf"unit '{unit}' has no model here") as e:
        TaskWindow(2, unit)
    assert "drop window=" in str(e.value)


def test_task_window_tasks_stall_and_unknown_units_as_before():
    assert TaskWindow(2) == TaskWindow(2, "tasks", WindowMode.STALL)
    with pytest.raises(PtortValueError, match=r"^Invalid unit: pages"):
        TaskWindow(2, "pages")


# -- duplicate event names ------------------------------------------------------------------------------------------
def test_two_events_with_one_name_are_refused_like_channels(stages, where):
    e1, e2, ch = Event("e"), Event("e"), Channel(name="c", depth=2)
    a = process("a").produces(ch).body(for_each(Dense[2](), lambda t: [record(e1), send(ch, task(stages.a, [t], {}))]))
    b = process("b").consumes(ch).body(consume(ch, lambda t: [synchronize(e2), task(stages.b, [t], {})]))
    with pytest.raises(PipelineError, match=r"two different events are named 'e' \(one recorded by process 'a', "
                                            r"the other waited on by process 'b'\)") as e:
        line = here() + 1
        connect(a, b)
    assert "unique name" in where(e, line)


def test_one_event_shared_by_two_processes_is_fine(stages):
    ev, ch = Event("e"), Channel(name="c", depth=2)
    a = process("a").produces(ch).body(for_each(Dense[2](), lambda t: [record(ev), send(ch, task(stages.a, [t], {},
                                                                                                   cycles=1))]))
    b = process("b").consumes(ch).body(consume(ch, lambda t: [synchronize(ev), task(stages.b, [t], {}, cycles=1)]))
    program = connect(a, b).compile(cost_model=PinnedCosts())
    program.execute()
    assert program.stats().task_count == 4


# -- nested P.pipe() ------------------------------------------------------------------------------------------------
def test_pipe_nested_in_a_pipe_names_the_outside_producer(stages, where):
    ch = Channel(name="c", depth=2)

    @workload
    def w():
        with P.pipe():
            for t in P.seq(Dense[4]()):
                send(ch, task(stages.a, [t], {}))
            with P.pipe():
                consume(ch, lambda t: task(stages.b, [t], {}))

    line = here() - 3
    with pytest.raises(DSLUsageError, match=r"pipelines cannot nest: this P.pipe\(\) block is inside another one") as e:
        w()
    where(e, line)  # the inner `with P.pipe():` line


def test_complete_pipe_nested_in_a_pipe_is_refused(stages, where):
    ch = Channel(name="c", depth=2)

    @workload
    def w():
        with P.pipe():
            for t in P.seq(Dense[4]()):
                task(stages.a, [t], {})
            with P.pipe():
                for t in P.seq(Dense[4]()):
                    send(ch, task(stages.a, [t], {}))
                consume(ch, lambda t: task(stages.b, [t], {}))

    line = here() - 5
    with pytest.raises(DSLUsageError, match=r"pipelines cannot nest") as e:
        w()
    assert "one `with P.pipe():` block" in where(e, line)


def test_inner_pipe_before_its_consumer_mentions_nesting(stages):
    ch = Channel(name="c", depth=2)

    @workload
    def w():
        with P.pipe():
            with P.pipe():
                for t in P.seq(Dense[4]()):
                    send(ch, task(stages.a, [t], {}))
            consume(ch, lambda t: task(stages.b, [t], {}))

    with pytest.raises(DSLUsageError, match=r"(?s)pipelines cannot nest.*with P.pipe\(\):"):
        w()


def test_flat_pipe_still_runs(stages):
    ch = Channel(name="c", depth=2)

    @workload
    def w():
        with P.pipe():
            for t in P.seq(Dense[4]()):
                send(ch, task(stages.a, [t], {}, cycles=1))
            consume(ch, lambda t: task(stages.b, [t], {}, cycles=1))

    program = w().compile(cost_model=PinnedCosts())
    program.execute()
    assert program.stats().task_count == 8
