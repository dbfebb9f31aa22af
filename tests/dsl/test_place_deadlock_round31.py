"""Round 31: a second ``.place()`` merges into the first instead of dropping it, and a deadlock names the user's line
of the blocked wait (the error's ``where``, and each wait's own line in the message)."""
from __future__ import annotations

import pytest
from source_lines import here, located

from ptort_lab import DeadlockError, Dense, Event, PinnedCosts, PtortValueError, for_each, sequential, task
from ptort_lab.csp import Channel, connect, consume, process, record, send, synchronize
from ptort_lab.errors import SourceLocation
from ptort_lab.sim.fifo import Actor, Fifo, deadlock_error
from ptort_lab.sim.placement import process_cores

HINT = ("Check that every consumed channel has a producer that keeps sending, that every synchronize has a matching "
        "record, and that no process waits on a channel it fills itself; or raise a depth.")


def loader_computer(n: int = 4):
    """loader sends n items of 10 cycles into a depth-2 channel; computer takes 10 cycles per item."""
    ch = Channel("ch", depth=2)
    loader = process("loader").produces(ch).body(
        for_each(Dense[n](), lambda t: send(ch, task("load", [t], {}, cycles=10))))
    computer = process("computer").consumes(ch).body(consume(ch, lambda t: task("compute", [t], {}, cycles=10)))
    return connect(loader, computer), loader, computer


def cores_of(pipe):
    """Each process's core as a run reads the pipeline's placement (and the AIVs other than AIV0)."""
    return process_cores(list(pipe.processes), pipe.schedule.placement)


def run(pipe, latency=100):
    """Run with pinned costs and ``latency`` cycles per cross-core hop of a channel or event."""
    program = pipe.compile(cost_model=PinnedCosts(), channel_latency_cycles=latency)
    program.execute()
    return program


# -- 1. chained .place() merges ------------------------------------------------------------------------------------
def test_a_second_place_adds_to_the_first():
    """``.place({"loader": 1}).place({"computer": 1})`` puts both on core 1 (the second call used to drop the first,
    so the loader ran on core 0, the lowest core left). On one core the channel costs no hop: the loader ends items at
    10, 20, 30, 40 and the computer runs 10-20 ... 40-50, makespan 50. On two cores each item and each freed slot pays
    the 100-cycle hop: items 0, 1 arrive at 110, 120; the loader's third send waits for the slot freed at 120 + 100,
    runs 220-230 and arrives at 330, the fourth 230-240 arrives at 340, and the computer ends at 350."""
    pipe, _, _ = loader_computer()
    placed = pipe.place({"loader": 1}).place({"computer": 1})
    assert placed.schedule.placement == {"loader": 1, "computer": 1}
    assert cores_of(placed) == ({"loader": 1, "computer": 1}, {})
    program = run(placed)
    assert program.stats().total_cycles == 50
    assert sorted({(s.process, s.core) for s in program.trace().spans}) == [("computer", 1), ("loader", 1)]
    assert run(pipe.place({"computer": 1})).stats().total_cycles == 350  # the loader apart, on core 0


def test_a_later_entry_moves_only_its_own_process():
    """An entry replaces the same process's earlier one, whether either names it by a Process or by its name (no
    "placed twice" across calls); the other entries stay."""
    pipe, loader, computer = loader_computer()
    both = pipe.place({"loader": 1, computer: (1, 1)})
    assert both.place({loader: 2}).schedule.placement == {"loader": 2, "computer": (1, 1)}
    assert both.place({"computer": 3}).schedule.placement == {"loader": 1, "computer": 3}
    assert pipe.place({loader: 0}).place({"loader": 3}).schedule.placement == {"loader": 3}
    assert both.place({}).schedule.placement == {"loader": 1, "computer": (1, 1)}
    assert both.schedule.placement == {"loader": 1, "computer": (1, 1)}  # place() returns a copy


def test_shared_and_a_dict_merge_either_way_round():
    """``"shared"`` is every process on core 0: a dict after it moves only the processes it names; after a dict it
    places every process, so it replaces the dict. ``.place(None)`` drops every placement (one core per process)."""
    pipe, _, computer = loader_computer()
    split = pipe.place("shared").place({computer: (0, 1)})
    assert split.schedule.placement == {"loader": 0, "computer": (0, 1)}
    assert cores_of(split) == ({"loader": 0, "computer": 0}, {"computer": 1})
    moved = pipe.place("shared").place({"computer": 2})
    assert cores_of(moved) == ({"loader": 0, "computer": 2}, {})
    assert pipe.place({"loader": 3, "computer": (1, 1)}).place("shared").schedule.placement == "shared"
    assert pipe.place("shared").place("shared").schedule.placement == "shared"
    assert pipe.place({"loader": 3}).place(None).schedule.placement is None
    assert cores_of(pipe.place({"loader": 3}).place(None)) == ({"loader": 0, "computer": 1}, {})


def test_processes_no_placement_names_still_take_the_lowest_free_cores():
    """A merged placement that leaves a process out is read as a single one is: a, b placed on core 2 by two calls,
    c (unplaced) takes core 0, the lowest core no process is on (it took core 1 when the second call dropped a)."""
    c1, c2 = Channel("c1", depth=1), Channel("c2", depth=1)
    a = process("a").produces(c1).body(for_each(Dense[2](), lambda t: send(c1, task("x", [t], {}, cycles=1))))
    b = process("b").consumes(c1).produces(c2).body(consume(c1, lambda t: send(c2, task("y", [t], {}, cycles=1))))
    c = process("c").consumes(c2).body(consume(c2, lambda t: task("z", [t], {}, cycles=1)))
    pipe = connect(a, b, c).place({"a": 2}).place({b: 2})
    assert pipe.schedule.placement == {"a": 2, "b": 2}
    assert cores_of(pipe) == ({"a": 2, "b": 2, "c": 0}, {})


def test_compile_sees_the_merged_placement():
    """compile(placement=...) is compared with the merged placement: the same one is accepted, the second call's
    alone is refused as a contradiction."""
    pipe, _, _ = loader_computer()
    placed = pipe.place({"loader": 1}).place({"computer": 1})
    assert placed.compile(cost_model=PinnedCosts(), placement={"loader": 1, "computer": 1}) is not None
    with pytest.raises(PtortValueError) as e:
        placed.compile(cost_model=PinnedCosts(), placement={"computer": 1})
    assert e.value.what.startswith("compile(placement={'computer': 1}) contradicts the pipeline's own "
                                   ".place({'loader': 1, 'computer': 1})")


def test_a_second_place_is_checked_as_the_first():
    """A bad entry in the second call is refused at its line, naming place(), and the workload keeps its placement."""
    pipe, _, _ = loader_computer()
    placed = pipe.place({"loader": 1})
    with pytest.raises(PtortValueError) as e:
        placed.place({"storer": 0})
    assert e.value.what == ("place() names unknown process(es) 'storer'; this pipeline's processes are 'loader', "
                            "'computer'.")
    with pytest.raises(PtortValueError) as e:
        placed.place({"computer": -1})
    assert e.value.what == ("placement puts process 'computer' on -1; a place is a core (int) or (core, aiv) with "
                            "two ints, each >= 0 (given to place()).")
    assert placed.schedule.placement == {"loader": 1}


# -- 2. a deadlock names the user's line ---------------------------------------------------------------------------
def mutual_wait():
    """A and B each consume the other's channel first: neither ever sends."""
    c1, c2 = Channel(name="c1", depth=1), Channel(name="c2", depth=1)
    a = process("A").consumes(c1).produces(c2).body(consume(c1, lambda t: send(c2, task("a", [t], {}, cycles=10))))
    b = process("B").consumes(c2).produces(c1).body(consume(c2, lambda t: send(c1, task("b", [t], {}, cycles=10))))
    return connect(a, b), here() - 2


def test_a_consume_deadlock_points_at_the_first_blocked_consume():
    """Both wait from t=0; the message gives each wait its line, the error points at A's consume (the first)."""
    pipe, a_line = mutual_wait()
    with pytest.raises(DeadlockError) as e:
        run(pipe)
    f = "test_place_deadlock_round31.py"
    assert e.value.what == (
        f"Deadlock at t=0 cycles: no process can move. 'A' waits to consume from 'c1' at {f}:{a_line} (since t=0); "
        f"'B' waits to consume from 'c2' at {f}:{a_line + 1} (since t=0). Channels: 'c1' 0/1 slots in use, 0 "
        "token(s) waiting, 'c2' 0/1 slots in use, 0 token(s) waiting.")
    located(e, a_line)
    assert e.value.context == "process 'A'"
    assert str(e.value).splitlines()[1] == f"  at {f}:{a_line} in process 'A'"
    assert e.value.hint == HINT
    assert e.value.waits == [f"'A' waits to consume from 'c1' at {f}:{a_line} (since t=0)",
                             f"'B' waits to consume from 'c2' at {f}:{a_line + 1} (since t=0)"]


def test_listing_a_deadlocked_pipeline_points_at_the_consume_too():
    """enumerate() (no time) reports the same waits with their lines, at A's consume rather than connect()."""
    pipe, a_line = mutual_wait()
    with pytest.raises(DeadlockError) as e:
        pipe.enumerate()
    f = "test_place_deadlock_round31.py"
    assert e.value.what == (f"the pipeline can never finish: 'A' waits to consume from 'c1' at {f}:{a_line}; 'B' "
                            f"waits to consume from 'c2' at {f}:{a_line + 1}. Channels: 'c1' 0 token(s) waiting, "
                            "'c2' 0 token(s) waiting.")
    located(e, a_line)
    assert e.value.context == "process 'A'"


def test_a_full_channel_deadlock_points_at_the_blocked_send():
    """a and b each send 4 items of 5 cycles into a depth-2 channel before consuming the other's: each fills both
    slots by t=10 and waits for a third at its send line."""
    q, r = Channel("q", depth=2), Channel("r", depth=2)
    a = process("a").produces(q).consumes(r).body_func(lambda: [
        for_each(Dense[4](), lambda t: send(q, task("x", [t], {}, cycles=5))),
        consume(r, lambda t: task("y", [t], {}, cycles=5))])
    a_send = here() - 2
    b = process("b").produces(r).consumes(q).body_func(lambda: [
        for_each(Dense[4](), lambda t: send(r, task("x", [t], {}, cycles=5))),
        consume(q, lambda t: task("y", [t], {}, cycles=5))])
    b_send = here() - 2
    with pytest.raises(DeadlockError) as e:
        run(connect(a, b))
    f = "test_place_deadlock_round31.py"
    assert e.value.what == (
        f"Deadlock at t=10 cycles: no process can move. 'a' waits to send to 'q' (no free slot) at {f}:{a_send} "
        f"(since t=10); 'b' waits to send to 'r' (no free slot) at {f}:{b_send} (since t=10). Channels: 'r' 2/2 "
        "slots in use, 2 token(s) waiting, 'q' 2/2 slots in use, 2 token(s) waiting.")
    located(e, a_send)
    assert e.value.context == "process 'a'"


def test_a_process_blocked_in_its_second_send_to_a_channel_is_named_at_that_send():
    """a sends 1 item to q (done), then 4 more (q has 2 slots): it blocks in the second send, not at the first,
    while b waits for r, which a sends to only after."""
    q, r = Channel("q", depth=2), Channel("r", depth=2)
    a = process("a").produces(q, r).body_func(lambda: [
        for_each(Dense[1](), lambda t: send(q, task("x", [t], {}, cycles=5))),
        for_each(Dense[4](), lambda t: send(q, task("x", [t], {}, cycles=5))),
        for_each(Dense[1](), lambda t: send(r, task("x", [t], {}, cycles=5)))])
    second = here() - 2
    b = process("b").consumes(r, q).body_func(lambda: [
        consume(r, lambda t: task("y", [t], {}, cycles=5)),
        consume(q, lambda t: task("y", [t], {}, cycles=5))])
    with pytest.raises(DeadlockError) as e:
        run(connect(a, b))
    assert f"'a' waits to send to 'q' (no free slot) at test_place_deadlock_round31.py:{second} (since t=10)" \
        in e.value.what
    located(e, second)


def test_an_event_deadlock_points_at_the_synchronize():
    """r records once at t=100 (no hop latency), w1 takes that signal and runs 100-110, w2 waits from t=0 at its
    synchronize."""
    ev = Event("e")
    r = process("r").body_func(lambda: sequential(task("a", [0], {}, cycles=100), record(ev)))
    w1 = process("w1").body_func(lambda: sequential(synchronize(ev), task("b", [0], {}, cycles=10)))
    w2 = process("w2").body_func(lambda: sequential(synchronize(ev), task("b", [1], {}, cycles=10)))
    line = here() - 1
    with pytest.raises(DeadlockError) as e:
        run(connect(r, w1, w2), latency=0)
    assert e.value.what == ("Deadlock at t=110 cycles: no process can move. 'w2' waits to synchronize on 'e' at "
                            f"test_place_deadlock_round31.py:{line} (since t=0). Events: 'e' recorded 1, taken 1.")
    located(e, line)
    assert e.value.context == "process 'w2'"


def test_a_join_deadlock_points_at_the_join():
    """pj joins 'a' and 'b'; b's producer pb waits for pj's output first. pa sends its two items of 1 cycle at 0-1
    and 1-2 (no hop latency), pj takes item 0 of 'a' at t=1 and waits for 'b' at its join's line; pa ends at 2."""
    ca, cb, cj = Channel("a", depth=2), Channel("b", depth=2), Channel("j", depth=2)
    pa = process("pa").produces(ca).body(for_each(Dense[2](), lambda t: send(ca, task("x", [t], {}, cycles=1))))
    pb = process("pb").consumes(cj).produces(cb).body(consume(cj, lambda t: send(cb, task("y", [t], {}, cycles=1))))
    pb_line = here() - 1
    pj = process("pj").consumes(ca, cb).produces(cj).body(
        consume([ca, cb], lambda ta, tb: send(cj, task("z", [ta], {}, cycles=1))))
    join_line = here() - 1
    with pytest.raises(DeadlockError) as e:
        run(connect(pa, pb, pj), latency=0)
    f = "test_place_deadlock_round31.py"
    assert e.value.what == (
        f"Deadlock at t=2 cycles: no process can move. 'pb' waits to consume from 'j' at {f}:{pb_line} (since t=0); "
        f"'pj' waits to consume from 'b' at {f}:{join_line} (since t=1). Channels: 'a' 2/2 slots in use, 1 token(s) "
        "waiting, 1 held by 'pj' (taken items, each freed when its consumer takes its next) (closed), 'j' 0/2 slots "
        "in use, 0 token(s) waiting, 'b' 0/2 slots in use, 0 token(s) waiting.")
    located(e, pb_line)  # pb comes first in connect() order
    assert e.value.context == "process 'pb'"


def test_the_error_points_at_the_first_blocked_process_whose_line_is_known():
    """deadlock_error asks step_line only for waits in a channel or event queue, and points at the first line known:
    here 'x' (waiting to consume from 'c', no line) is skipped for 'y' (waiting to send to 'c'); 'z' waits on a task
    (no queue), so its line is not asked."""
    f = Fifo("c", depth=1, producers=1)
    x, y, z = Actor("x", None, 0), Actor("y", None, 0, 1), Actor("z", None, 0, 2)
    x.blocked, y.blocked, z.blocked = f.consume_wait, f.send_wait, "task 3 to finish"
    y.t = y.wait_since = 7
    f.consumers.append(x)
    f.producers.append(y)
    channel, asked = object(), []

    def step_line(name, role, used):
        asked.append((name, role, used is channel))
        return None if name == "x" else SourceLocation("cell.py", 12, "build", "send(c, ...)")

    e = deadlock_error([x, y, z], {channel: f}, {}, 9, step_line)
    assert asked == [("x", "consumes", True), ("y", "sends", True)]
    assert e.what == ("Deadlock at t=9 cycles: no process can move. 'x' waits to consume from 'c' (since t=0); 'y' "
                      "waits to send to 'c' (no free slot) at cell.py:12 (since t=7); 'z' waits to task 3 to finish "
                      "(since t=0). Channels: 'c' 0/1 slots in use, 0 token(s) waiting.")
    assert (e.where, e.context) == (SourceLocation("cell.py", 12, "build", "send(c, ...)"), "process 'y'")
    assert deadlock_error([x], {channel: f}).where is None  # no step_line (an engine the runner did not set up)
