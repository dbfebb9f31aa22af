"""Bad input to the CSP layer and task windows: replicate, query in a body, TaskWindow modes/units, duplicate
event names, nested P.pipe() blocks, consumes that could never see an item, events used on the host and in bodies,
and values a send cannot carry each raise a located PtortError that says what to do instead."""
import time

import pytest
from source_lines import here

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
    parallel_for,
    process,
    query,
    record,
    replicate,
    send,
    synchronize,
    task,
    workload,
)
from ptort_lab import select as select_
from ptort_lab.dsl.csp import MAX_REPLICAS
from ptort_lab.program import PinnedCosts


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
def test_task_window_modes_other_than_stall_build_but_are_refused_at_compile(mode, where):
    window = TaskWindow(2, mode=mode)  # the reference's modes build, as there
    assert (window.size, window.unit, window.mode, window.simulated) == (2, "tasks", mode, False)
    w = task("k", [], []).task_graph(window=window)
    with pytest.raises(PtortValueError, match=rf"^compile\(\): the workload's TaskWindow\(2, 'tasks', {mode}\) is "
                                              rf"not simulated: .*{mode} has no model here") as e:
        line = here() + 1
        w.compile()
    msg = where(e, line)
    assert "only unit='tasks' with mode=WindowMode.STALL" in msg and "TaskWindow(2, 'tasks')" in msg


@pytest.mark.parametrize("unit", ["bytes", "entries"])
def test_task_window_units_other_than_tasks_build_but_are_refused_at_compile(unit):
    window = TaskWindow(2, unit)
    assert (window.unit, window.simulated) == (unit, False)
    with pytest.raises(PtortValueError, match=rf"unit '{unit}' has no model here") as e:
        task("k", [], []).task_graph(window=window).compile()
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


# -- a channel is consumed once per body, never inside a loop (issue 10) -------------------------------------------
def test_a_second_consume_of_a_channel_is_refused_at_its_line(stages, where):
    """The first consume ends only when the channel is closed and drained: the second never ran, silently."""
    ch = Channel(name="c", depth=2)
    with pytest.raises(DSLUsageError) as e:
        first = here() + 1
        process("cons").consumes(ch).body_func(lambda: [consume(ch, lambda t: task(stages.a, [t], {})),
                                                        consume(ch, lambda t: task(stages.b, [t], {}))])
    msg = where(e, first + 1)
    assert msg.startswith(f"process 'cons' consumes channel 'c' twice (first at test_csp_bad_input.py:{first}): the "
                          "first consume ends only when the channel is closed and drained, so the second would never "
                          "see an item.")
    assert "Consume 'c' once and put all its per-item work in that consume's body." in msg


def test_a_consume_nested_in_a_consume_of_the_same_channel_is_refused(stages, where):
    ch = Channel(name="c", depth=2)
    with pytest.raises(DSLUsageError) as e:
        line = here() + 1
        inner = consume(ch, lambda t: consume(ch, lambda u: task(stages.b, [u], {})))
        process("cons").consumes(ch).body(inner)
    msg = where(e, line)
    assert msg.startswith(f"consume('c') inside a consume of the same channel 'c' (at test_csp_bad_input.py:{line}) "
                          "in process 'cons': a consume runs until its channel is closed and drained, so it would "
                          "take every item in the loop's first iteration and do nothing in the others.")
    assert "at the top level of the process body" in msg


@pytest.mark.parametrize("loop, named", [(for_each, "a for_each/P.seq loop"), (parallel_for, "a P()/parallel_for loop"),
                                         (select_, "a select/P.sel loop")])
def test_a_consume_inside_a_loop_is_refused(stages, where, loop, named):
    """Only the loop's first iteration would have seen items."""
    ch = Channel(name="c", depth=2)
    with pytest.raises(DSLUsageError) as e:
        line = here() + 1
        process("cons").consumes(ch).body(loop(Dense[3](), lambda i: consume(ch, lambda t: task(stages.b, [t], {}))))
    assert f"consume('c') inside {named} (at test_csp_bad_input.py:{line}) in process 'cons'" in where(e, line)


def test_a_consume_inside_a_consume_of_another_channel_is_refused(stages, where):
    a, b = Channel(name="a", depth=2), Channel(name="b", depth=2)
    with pytest.raises(DSLUsageError, match=r"consume\('b'\) inside a consume of channel 'a'") as e:
        line = here() + 1
        process("cons").consumes(a, b).body(consume(a, lambda t: consume(b, lambda u: task(stages.b, [u], {}))))
    where(e, line)


def test_a_consume_in_a_pipe_stage_loop_is_refused(stages, where):
    ch = Channel(name="c", depth=2)

    @workload
    def w():
        with P.pipe():
            for t in P.seq(Dense[4]()):
                send(ch, task(stages.a, [t], {}))
            for _i in P.seq(Dense[2]()):
                consume(ch, lambda t: task(stages.b, [t], {}))

    line = here() - 3
    with pytest.raises(DSLUsageError, match=r"consume\('c'\) inside a for_each/P.seq loop .* in process 'stage1'") as e:
        w()
    where(e, line)


def test_a_consume_hidden_from_body_is_still_refused_at_connect(stages, where):
    """A workload set without .body() (replicas copy it) is checked again by connect()."""
    ch = Channel(name="c", depth=2)
    prod = producer_of(ch, stages)
    cons = process("cons").consumes(ch).body(consume(ch, lambda t: task(stages.b, [t], {})))
    cons.workload = for_each(Dense[2](), lambda i: consume(ch, lambda t: task(stages.b, [t], {})))
    with pytest.raises(DSLUsageError, match=r"consume\('c'\) inside a for_each/P.seq loop"):
        connect(prod, cons)


def test_consumes_that_can_run_are_kept(stages):
    """Two different channels one after the other (a drains first), and one channel in both branches of a cond
    (only one branch runs): both run. a's items 0, 1 arrive at 1, 2; b's items 10, 11 at 2, 4."""
    a, b = Channel(name="a", depth=2), Channel(name="b", depth=2)
    pa = process("pa").produces(a).body(for_each(Dense[2](), lambda t: send(a, task(stages.a, [t], {}, cycles=1))))
    pb = process("pb").produces(b).body(for_each(Dense[2](), lambda t: send(b, task(stages.a, [t + 10], {},
                                                                                  cycles=2))))
    both = process("both").consumes(a, b).body_func(lambda: [consume(a, lambda t: task(stages.b, [t], {}, cycles=1)),
                                                             consume(b, lambda t: task(stages.b, [t], {}, cycles=1))])
    program = connect(pa, pb, both).compile(cost_model=PinnedCosts()).execute()
    assert sorted((s.index, s.start) for s in program.trace().spans if s.process == "both") == \
        [(0, 1), (1, 2), (10, 3), (11, 4)]
    ch = Channel(name="c", depth=2)
    either = process("either").consumes(ch).body(cond(True, consume(ch, lambda t: task(stages.b, [t], {})),
                                                      consume(ch, lambda t: task(stages.a, [t], {}))))
    assert len(connect(producer_of(ch, stages), either).enumerate()) == 8


# -- an Event is a host event or a pipeline event, not both (issue 10) -----------------------------------------------
def test_a_host_record_cannot_release_a_body_synchronize(stages, where):
    """Host signals never reached a pipeline run: the wait used to deadlock (or silently use another record)."""
    ev = Event("ready")
    host_line = here() + 1
    record(ev)
    with pytest.raises(DSLUsageError) as e:
        line = here() + 1
        process("b").body_func(lambda: [synchronize(ev), task(stages.b, [0], {})])
    msg = where(e, line)
    assert msg.startswith(f"synchronize('ready') in a process body, but Event 'ready' is also used on the host "
                          f"(record at test_csp_bad_input.py:{host_line}). A pipeline run starts with no signals and "
                          "drops them at its end, so the host's records would never reach this step (the process "
                          "would wait forever).")
    assert "Use one Event for host-side record/query/synchronize and another" in msg


def test_a_host_query_cannot_see_what_a_pipeline_recorded(stages, where):
    """After a run whose pipeline recorded the event, query() used to say False."""
    ev = Event("done")
    body_line = here() + 1
    a = process("a").body_func(lambda: [task(stages.a, [0], {}, cycles=1), record(ev)])
    connect(a).compile(cost_model=PinnedCosts()).execute()
    with pytest.raises(DSLUsageError) as e:
        line = here() + 1
        query(ev)
    msg = where(e, line)
    assert msg.startswith(f"query('done') on the host, but Event 'done' is a step of a process body (record at "
                          f"test_csp_bad_input.py:{body_line}). A pipeline run starts with no signals and drops them "
                          "at its end, so query cannot see the signals the body records.")


@pytest.mark.parametrize("host_call, reach", [(record, "this record would never release the body's synchronize"),
                                              (synchronize, "this synchronize cannot take the signals the body "
                                                            "records")])
def test_host_record_or_synchronize_of_a_body_event_is_refused(stages, where, host_call, reach):
    ev = Event("e")
    process("a").body_func(lambda: [record(ev), synchronize(ev)])
    with pytest.raises(DSLUsageError) as e:
        line = here() + 1
        host_call(ev)
    assert reach in where(e, line)
    assert ev.signal_count == 0 and ev.wait_count == 0


def test_a_host_query_alone_does_not_claim_the_event(stages):
    """query() changes nothing, so an event only queried on the host may still become a pipeline event."""
    ev = Event("e")
    assert query(ev) is False
    a = process("a").body_func(lambda: [task(stages.a, [0], {}, cycles=3), record(ev)])
    b = process("b").body_func(lambda: [synchronize(ev), task(stages.b, [0], {}, cycles=1)])
    program = connect(a, b).compile(cost_model=PinnedCosts(), channel_latency_cycles=2).execute()
    assert [(s.process, s.start) for s in program.trace().spans] == [("a", 0), ("b", 5)]


# -- what a send may carry (issue 10) --------------------------------------------------------------------------------
def test_send_of_none_is_refused_at_its_line(where):
    """A helper that builds the task but forgets to return it hands send() None: nothing would travel."""
    ch = Channel(name="c", depth=1)
    with pytest.raises(PtortTypeError) as e:
        line = here() + 1
        send(ch, None)
    assert "send('c', value) got None: there is nothing to send" in where(e, line)


@pytest.mark.parametrize("container", [list, tuple])
def test_send_of_a_list_of_tasks_is_refused_and_points_to_sequential(stages, where, container):
    """The tasks of a list would run before the send, outside its slot, and the list would travel as the token."""
    ch = Channel(name="c", depth=1)
    with pytest.raises(PtortTypeError) as e:
        line = here() + 1
        send(ch, container([task(stages.a, [0], {}), task(stages.a, [1], {})]), token=0)
    msg = where(e, line)
    assert f"send('c', value) got a {container.__name__}, not one task or token" in msg
    assert "send(ch, sequential(k1[t](...), k2[t](...)), token=t)" in msg


def test_send_accepts_numpy_ints_and_loop_expressions(stages):
    import numpy as np
    ch = Channel(name="c", depth=1)
    p = process("p").produces(ch).body_func(lambda: [send(ch, np.int64(4)),
                                                     for_each(Dense[2](), lambda t: send(ch, t * 2 + 1))])
    c = process("c").consumes(ch).body(consume(ch, lambda t: task(stages.b, [t], {})))
    assert [t.params[0] for t in connect(p, c).enumerate()] == [4, 1, 3]


def test_a_tile_type_of_numpy_ints_is_taken_as_ints_and_one_of_floats_is_refused():
    """TileType(...) by hand (Tile[...] checks its own sizes): numpy ints become ints (the compiled simulator takes
    plain ints only), a size that is no positive whole number is refused at the channel."""
    import numpy as np

    from ptort_lab.dsl.types import DType, TileType
    ch = Channel("q", depth=2, tile=TileType(np.int64(64), np.int64(32), DType.F32))
    assert (type(ch.tile.rows), type(ch.tile.cols), ch.tile.nbytes) == (int, int, 64 * 32 * 4)
    for rows in (64.0, 0, True):
        with pytest.raises(PtortTypeError) as e:
            Channel("q", depth=2, tile=TileType(rows, 32, DType.F32))
        assert e.value.what == (f"Channel 'q' tile= f32[{rows},32] has rows={rows!r}; a tile's rows and cols are "
                                "positive whole numbers.")
        assert e.value.hint == "Write Channel(name, depth=2, tile=Tile[64, 64, DType.F32])."
