"""Round 11 (hunt 11a, findings 2-6 and 9): a pipeline is checked as it is when it is compiled and run (processes
changed after connect()), a channel's depth set again is checked at its line, the reference constructor
Workload("connect", ...) gets connect()'s checks, a process's channel lists take only Channels, connect() takes the
reference's keyword names, and register_kernel refuses a host kernel that cannot take its task's resources."""
import numpy as np
import pytest
from ptort_lab.compat.csp import Process
from ptort_lab.compat.workload import Workload
from source_lines import here, located

from ptort_lab import (
    Channel,
    Dense,
    DSLUsageError,
    Event,
    P,
    PinnedCosts,
    PipelineError,
    PtortTypeError,
    PtortValueError,
    Tensor,
    Tile,
    connect,
    consume,
    for_each,
    kernel,
    process,
    record,
    send,
    sequential,
    synchronize,
    task,
    workload,
)
from ptort_lab.dsl import wiring
from ptort_lab.dsl.types import DType

FILE = "test_wiring_round11.py"


@kernel(cycles=100)
def kp():
    """100 cycles."""


@kernel(cycles=300)
def kc():
    """300 cycles."""


def two_stages(depth=2):
    """p1 sends 4 items to c over channel a; returns (a, p1, c, the pipeline, connect()'s line)."""
    a = Channel("a", depth)
    p1 = process("p1").produces(a).body(for_each(Dense[4](), lambda t: send(a, task(kp, [t], {}))))
    c = process("c").consumes(a).body(consume(a, lambda t: task(kc, [t], {})))
    line = here() + 1
    pipe = connect(p1, c)
    return a, p1, c, pipe, line


def cycles(w):
    return w.compile(cost_model=PinnedCosts(), channel_latency_cycles=0).execute().stats().total_cycles


def changed_since(connect_line):
    return (f"connect() checked this pipeline when it built it (at {FILE}:{connect_line}), and a process of it has "
            "changed since (its body set again, its .consumes/.produces edited, or it was renamed).")


RECONNECT = ("A pipeline runs the Process objects connect() was given, as they are when it runs: change them before "
             "connecting them, or connect() them again after the change and compile that pipeline.")


# -- finding 2: processes changed after connect() ---------------------------------------------------------------------
def test_a_body_set_again_to_consume_another_channel_is_refused_at_compile_not_a_key_error():
    a, p1, c, pipe, connected = two_stages()
    b = Channel("b", 1)
    c.body(consume(b, lambda t: task(kc, [t], {})))
    with pytest.raises(PipelineError) as e:
        line = here() + 1
        pipe.compile(cost_model=PinnedCosts())
    assert e.value.what == f"process 'c' consumes channel 'b' it did not declare. {changed_since(connected)}"
    assert e.value.hint == f"Add .consumes(b) to process 'c'. {RECONNECT}"
    located(e, line)


@pytest.mark.parametrize("change, what", [
    (lambda a, p1, c: c.body(for_each(Dense[2](), lambda t: task(kc, [t], {}))),
     "process 'c' declares it consumes channel 'a' but its body never consumes it, so its producer would block "
     "forever."),
    (lambda a, p1, c: (c.consumes.clear(), p1.produces.clear()),
     "process 'p1' sends to channel 'a' but does not declare it."),
    (lambda a, p1, c: setattr(c, "name", "p1"), "two processes are named 'p1'."),
], ids=["body without its consume", "declarations cleared", "renamed to another's name"])
def test_a_process_changed_after_connect_gets_connects_message_not_a_deadlock(change, what):
    a, p1, c, pipe, connected = two_stages()
    change(a, p1, c)
    with pytest.raises(PipelineError) as e:
        line = here() + 1
        pipe.compile(cost_model=PinnedCosts())
    assert e.value.what == f"{what} {changed_since(connected)}"
    assert e.value.hint.endswith(RECONNECT)
    located(e, line)


def test_a_change_between_compile_and_execute_is_refused_at_the_execute_line():
    a, p1, c, pipe, connected = two_stages()
    program = pipe.compile(cost_model=PinnedCosts())
    c.body(for_each(Dense[2](), lambda t: task(kc, [t], {})))
    with pytest.raises(PipelineError, match="its body never consumes it") as e:
        line = here() + 1
        program.execute()
    located(e, line)


def test_a_rewiring_that_passes_the_checks_is_refused_since_the_pipeline_has_other_channels():
    a, p1, c, pipe, connected = two_stages()
    b = Channel("b", 1)
    p1.produces.clear()
    p1.produces(b).body(for_each(Dense[4](), lambda t: send(b, task(kp, [t], {}))))
    c.consumes.clear()
    c.consumes(b).body(consume(b, lambda t: task(kc, [t], {})))
    with pytest.raises(PipelineError) as e:
        line = here() + 1
        pipe.compile(cost_model=PinnedCosts())
    assert e.value.what == (f"process 'p1' now uses channel 'b', which is not a channel of this pipeline ('a'): "
                            f"{changed_since(connected)}")
    assert e.value.hint == RECONNECT
    located(e, line)


def test_a_channel_whose_ends_changed_is_refused_naming_both_wirings():
    a, b = Channel("a", 2), Channel("b", 2)
    p1 = process("p1").produces(a).body(for_each(Dense[4](), lambda t: send(a, task(kp, [t], {}))))
    p2 = process("p2").produces(b).body(for_each(Dense[4](), lambda t: send(b, task(kp, [t], {}))))
    c1 = process("c1").consumes(a).body(consume(a, lambda t: task(kc, [t], {})))
    c2 = process("c2").consumes(b).body(consume(b, lambda t: task(kc, [t], {})))
    connected = here() + 1
    pipe = connect(p1, c1, p2, c2)
    c1.consumes[0], c2.consumes[0] = b, a  # the consumers swap channels: still valid wiring, but not this pipeline's
    c1.body(consume(b, lambda t: task(kc, [t], {})))
    c2.body(consume(a, lambda t: task(kc, [t], {})))
    with pytest.raises(PipelineError) as e:
        line = here() + 1
        pipe.compile(cost_model=PinnedCosts())
    assert e.value.what == (f"channel 'a' now goes from 'p1' to 'c2', but connect() wired it from 'p1' to 'c1': "
                            f"{changed_since(connected)}")
    assert e.value.hint == RECONNECT
    located(e, line)


def test_an_unchanged_pipeline_is_not_walked_again_and_a_valid_rename_runs_the_same(monkeypatch):
    a, p1, c, pipe, _ = two_stages()
    before = cycles(pipe)
    calls = []
    real = wiring.check_wiring
    monkeypatch.setattr(wiring, "check_wiring", lambda *args: calls.append(1) or real(*args))
    program = pipe.compile(cost_model=PinnedCosts(), channel_latency_cycles=0)
    program.execute()
    assert calls == []  # the state connect() checked: no body walked again
    c.name = "consumer"  # a new unique name is still a valid pipeline
    assert program.execute().stats().total_cycles == before
    assert calls == [1]  # checked once, at the execute() after the change
    program.execute()
    assert calls == [1]
    assert any(s.process == "consumer" for s in program.trace().spans)


def test_a_replicated_pool_of_thousands_compiles_without_walking_its_bodies_again(monkeypatch):
    from ptort_lab import replicate
    from ptort_lab.dsl.csp import MAX_REPLICAS
    ch = Channel("c", 2)
    src = process("src").produces(ch).body(for_each(Dense[8](), lambda t: send(ch, task(kp, [t], {}))))
    pool = replicate(process("w").consumes(ch).body(consume(ch, lambda t: task(kc, [t], {}))), MAX_REPLICAS)
    pipe = connect(src, pool).place("shared")
    monkeypatch.setattr(wiring, "check_wiring", lambda *args: pytest.fail("walked again"))
    assert pipe.compile(cost_model=PinnedCosts()).execute().stats().task_count == 16


# -- finding 3: Channel.depth set again -------------------------------------------------------------------------------
@pytest.mark.parametrize("bad, kind, what", [
    (-1, PtortValueError, "Channel 'a' depth must be >= 0, got -1, and >= 1 to carry items in a pipeline (connect() "
                          "refuses depth 0: each item in flight needs a buffer slot)."),
    (0, PtortValueError, "Channel 'a' depth must be >= 1, got 0: data channels need at least one buffer slot (depth 0 "
                         "is for Events)."),
    (1.5, PtortTypeError, "Channel 'a' depth must be an int, got float 1.5."),
    ("2", PtortTypeError, "Channel 'a' depth must be an int, got str '2'."),
    (None, PtortTypeError, "Channel 'a' depth must be an int, got NoneType None."),
])
def test_a_bad_depth_set_after_connect_is_refused_at_its_line(bad, kind, what):
    a, p1, c, pipe, _ = two_stages()
    with pytest.raises(kind) as e:
        line = here() + 1
        pipe.channels[0].depth = bad
    assert e.value.what == what
    assert e.value.hint
    located(e, line)
    assert a.depth == 2  # unchanged


def test_a_good_depth_set_after_connect_runs_with_it():
    _, _, _, pipe, _ = two_stages(depth=1)
    at_1 = cycles(pipe)
    pipe.channels[0].depth = np.int64(4)  # a numpy integer is the int it holds
    assert pipe.channels[0].depth == 4 and type(pipe.channels[0].depth) is int
    assert cycles(pipe) < at_1
    assert repr(pipe.channels[0]) == "Channel('a', depth=4)"


def test_a_tile_channels_depth_stays_the_one_its_buffer_was_made_with():
    ch = Channel("t", 2, tile=Tile[4, 4, DType.F32])
    ch.depth = 2  # the same depth: nothing changes
    with pytest.raises(PtortValueError) as e:
        line = here() + 1
        ch.depth = 3
    assert e.value.what.startswith("Channel 't' is a tile channel: its depth (2) is fixed when it is made")
    assert "Channel('t', depth=3, tile=...)" in e.value.hint
    located(e, line)


# -- finding 4: the reference constructor Workload("connect", ...) ----------------------------------------------------
def test_the_reference_constructor_runs_as_connect_does():
    a, p1, c, pipe, _ = two_stages()
    raw = Workload("connect", processes=[p1, c], channels=[a])
    assert raw.channels == (a,) and raw.processes == (p1, c)
    assert cycles(raw) == cycles(pipe)


@pytest.mark.parametrize("make, kind, what", [
    (lambda a: Workload("connect", processes=[Process("p", [], [], Workload("send", channel=a, value=1))],
                        channels=[]),
     PipelineError, "process 'p' sends to channel 'a' but does not declare it."),
    (lambda a: Workload("connect", processes=[Process("p", [], [a], Workload("send", channel=a, value=1))],
                        channels=[a]),
     PipelineError, "channel 'a' has no consumer (process 'p' produces it); its producer would block once 2 slot(s) "
                    "fill."),
    (lambda a: Workload("connect", processes=[], channels=[]),
     PipelineError, "Workload('connect', processes=[], ...) needs at least one process, as connect() does."),
    (lambda a: Workload("connect", processes=[Process("p")], channels=[]), PipelineError, "process 'p' has no body."),
    (lambda a: Workload("connect", processes=["loader"], channels=[]),
     PipelineError, "connect() takes Process objects, got str 'loader'."),
    (lambda a: Workload("pipe", processes=Process("p"), channels=[]),
     PtortTypeError, "Workload('pipe') field processes= must be a list, got Process Process('p')."),
], ids=["undeclared send", "no consumer", "no processes", "no body", "not a process", "not a list"])
def test_the_reference_constructor_gets_connects_checks(make, kind, what):
    a = Channel("a", 2)
    with pytest.raises(kind) as e:
        make(a)
    assert e.value.what == what
    assert e.value.hint
    located(e, make.__code__.co_firstlineno)  # the line that calls Workload(...)


def test_p_pipe_and_connect_are_not_checked_twice(monkeypatch):
    calls = []
    real = wiring.check_wiring
    monkeypatch.setattr(wiring, "check_wiring", lambda *args: calls.append(1) or real(*args))
    two_stages()
    a = Channel("a", 2)

    @workload
    def piped():
        with P.pipe():
            for_each(Dense[2](), lambda t: send(a, task(kp, [t], {})))
            consume(a, lambda t: task(kc, [t], {}))
    piped()
    assert calls == [1, 1]


# -- finding 5: a process's channel lists take Channels only ----------------------------------------------------------
@pytest.mark.parametrize("add, api", [
    (lambda c, x: c.consumes.append(x), ".consumes.append()"),
    (lambda c, x: c.produces.extend([x]), ".produces.extend()"),
    (lambda c, x: c.consumes.insert(0, x), ".consumes.insert()"),
    (lambda c, x: c.consumes.__setitem__(0, x), ".consumes[0] = ..."),
    (lambda c, x: c.consumes.__iadd__([x]), ".consumes.extend()"),
])
def test_a_channel_name_added_to_a_channel_list_is_refused_at_once(add, api):
    _, _, c, _, _ = two_stages()
    with pytest.raises(PtortTypeError) as e:
        add(c, "a")
    assert e.value.what == f"process 'c' {api} takes Channels, got 'a'."
    assert "(not its name)" in e.value.hint
    located(e, add.__code__.co_firstlineno)  # the line that adds it
    assert [ch.name for ch in c.consumes] == ["a"]


def test_plus_equals_on_a_channel_list_checks_too():
    _, _, c, _, _ = two_stages()
    with pytest.raises(PtortTypeError, match=r"process 'c' \.consumes\.extend\(\) takes Channels, got 3"):
        c.consumes += [3]


def test_an_event_added_to_a_channel_list_is_named_as_an_event():
    _, _, c, _, _ = two_stages()
    with pytest.raises(PtortTypeError) as e:
        line = here() + 1
        c.consumes.append(Event("e"))
    assert e.value.what == ("process 'c' .consumes.append() takes Channels, got Event 'e': a process does not declare "
                            "the Events it uses.")
    assert e.value.hint.startswith("Put record(e) / synchronize(e) steps in the process bodies")
    located(e, line)


def test_channels_appended_with_the_list_api_wire_as_the_call_does():
    a = Channel("a", 2)
    p1 = process("p1").body(for_each(Dense[4](), lambda t: send(a, task(kp, [t], {}))))
    p1.produces.append(a)
    c = process("c").body(consume(a, lambda t: task(kc, [t], {})))
    c.consumes.extend([a])
    _, _, _, called, _ = two_stages()
    assert cycles(connect(p1, c)) == cycles(called)


# -- finding 6: connect(processes=..., channels=...) ------------------------------------------------------------------
def test_connect_takes_the_references_keyword_names():
    a, p1, c, pipe, _ = two_stages()
    by_name = connect(processes=[p1, c], channels=[a])
    assert by_name.processes == (p1, c) and by_name.channels == (a,)
    assert cycles(by_name) == cycles(pipe)
    assert connect(processes=[p1, c]).channels == (a,)
    assert connect([p1, c], channels=[a]).channels == (a,)


def test_connect_checks_keyword_channel_lists_as_positional_ones():
    a, p1, c, _, _ = two_stages()
    with pytest.raises(PipelineError, match="channel 'a' is used by process 'p1' but is missing from connect"):
        connect(processes=[p1, c], channels=[])


@pytest.mark.parametrize("call, what", [
    (lambda p1, c, a: connect(procs=[p1, c]), "connect() got unknown keyword argument(s) ['procs']."),
    (lambda p1, c, a: connect(p1, processes=[c]),
     "connect() got the processes twice: 1 positionally and processes=."),
])
def test_connect_refuses_other_keywords_listing_the_accepted_forms(call, what):
    a, p1, c, _, _ = two_stages()
    with pytest.raises(PtortTypeError) as e:
        call(p1, c, a)
    assert e.value.what == what
    assert "connect(processes=[p1, p2, p3], channels=[ch1, ch2])" in e.value.hint
    assert "connect([p1, p2, p3], [ch1, ch2])" in e.value.hint
    located(e, call.__code__.co_firstlineno)  # the connect() line


# -- finding 9 (second half): a host kernel that cannot take its task's resources -------------------------------------
def _host_program(resources):
    X = Tensor(data=np.ones((4, 4), np.float32))

    @workload
    def w():
        for t in P(Dense[4]()):
            task("double", [t], resources(X, t))
    return w().compile()


def test_a_host_kernel_with_too_few_parameters_is_refused_at_register_kernel():
    program = _host_program(lambda X, t: [X[t]])
    with pytest.raises(PtortTypeError) as e:
        line = here() + 1
        program.register_kernel("double", lambda: None)
    assert e.value.what.startswith(f"register_kernel('double', fn): the lambda at {FILE}:{line} has the parameters (), "
                                   "but task 'double' (at ")
    assert e.value.what.endswith("passes it its 1 resource(s) by position, so a run could not call it.")
    assert e.value.hint == ("Give it one parameter per resource: lambda r0: ... (or def double(r0): ...), each a "
                            "numpy view of that tensor tile.")
    located(e, line)


def test_a_host_kernel_of_named_resources_needs_those_names():
    program = _host_program(lambda X, t: {"x": X[t]})
    with pytest.raises(PtortTypeError, match=r"passes it its 1 resource\(s\) by name \(x\)") as e:
        program.register_kernel("double", lambda y: None)
    assert "lambda x: ..." in e.value.hint


@pytest.mark.parametrize("fn", [lambda x: None, lambda *args: None, lambda x, y=0: None])
def test_a_host_kernel_that_can_take_the_resources_runs(fn):
    program = _host_program(lambda X, t: [X[t]])
    program.register_kernel("double", fn)
    assert program.execute().stats().task_count == 4


def test_events_in_a_changed_body_are_checked_as_connect_checks_them():
    a, p1, c, pipe, _ = two_stages()
    ev = Event("go")
    c.body(consume(a, lambda t: synchronize(ev)))
    with pytest.raises(PipelineError, match="synchronizes on Event 'go', but no process of this pipeline records it"):
        pipe.compile(cost_model=PinnedCosts())
    p1.body(for_each(Dense[4](), lambda t: sequential(record(ev), send(a, task(kp, [t], {})))))
    assert pipe.compile(cost_model=PinnedCosts()).execute().stats().task_count == 4


def test_a_consume_twice_in_a_changed_body_is_refused_at_its_line():
    a, p1, c, pipe, _ = two_stages()
    c.body(consume(a, lambda t: task(kc, [t], {})))
    assert pipe.compile(cost_model=PinnedCosts()) is not None  # a new body of the same wiring: still fine
    with pytest.raises(DSLUsageError, match="consumes channel 'a' twice"):
        c.body(sequential(consume(a, lambda t: task(kc, [t], {})), consume(a, lambda t: task(kc, [t], {}))))
