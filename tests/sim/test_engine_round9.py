"""Round 9 engine fixes, on timelines worked out by hand from docs/explanation/channels.md and semantics.md: a
consume ends when its producers' bodies have ended (the close), in every engine mode; an item still in flight when
its producer finishes goes to the waiting consumer that sees it first; and the steady-state refusal names the
places whose values together repeat too rarely."""
from __future__ import annotations

import pytest
from source_lines import here, located

from ptort_lab import (
    Channel,
    Dense,
    PinnedCosts,
    PtortValueError,
    connect,
    consume,
    for_each,
    kernel,
    process,
    replicate,
    send,
    task,
)
from ptort_lab.sim import maxplus


class Ordered(PinnedCosts):
    """Pinned costs run in global time order (the mode every shared-resource cost model runs in)."""

    time_ordered = True


class NoMaxplus(PinnedCosts):
    """Pinned costs in run-until-block order, never the max-plus path (it needs PinnedCosts itself)."""


MODES = [pytest.param(PinnedCosts, id="run-until-block"), pytest.param(Ordered, id="time-ordered")]


def pinned(name: str, cycles: int):
    return kernel(name=name, cycles=cycles)(lambda: None)


def spans(program):
    return [(s.process, s.name, s.start, s.end) for s in program.trace().spans]


def stalls(program):
    return sorted((s.process, s.reason, s.start, s.end) for s in program.trace().stalls)


def run(pipe, cost, latency=0, **options):
    """(program, how many runs took the max-plus path) of one timing-only run."""
    before = maxplus.runs
    program = pipe.compile(cost_model=cost(), channel_latency_cycles=latency, compute_values=False, **options)
    program.execute()
    return program, maxplus.runs - before


# -- 1. a consume ends at the close: the end of its producers' bodies ------------------------------------------------
work, tail, after = pinned("work", 10), pinned("tail", 1000), pinned("after", 5)


def tail_after_send(step_after_consume: bool):
    """src: send (work 10 cycles), then a 1000-cycle tail task: its body ends at 1010. dst: consume (work 10), then
    (optionally) after (5)."""
    c = Channel("c", depth=2)
    src = process("src").produces(c).body(
        for_each([0], lambda t: [send(c, task(work, [t], {})), task(tail, [t], {})]))
    rest = [task(after, [0], {})] if step_after_consume else []
    dst = process("dst").consumes(c).body_func(lambda: [consume(c, lambda t: task(work, [t], {})), *rest])
    return connect(src, dst)


@pytest.mark.parametrize("cost", MODES)
@pytest.mark.parametrize("latency", [0, 100])
def test_a_consume_ends_when_its_producers_body_ends(cost, latency):
    """The item is done at 10, seen by dst at 10 + L (work until 20 + L). The close pays no latency: the channel
    closes when src's body ends, at 1010, so the consume ends at 1010 and 'after' runs 1010-1015; dst is starved from
    0 to 10 + L and from 20 + L to 1010 (1000 cycles in all, whatever L)."""
    program, fast = run(tail_after_send(True), cost, latency)
    assert fast == 0  # (src's body is more than one loop around a send: never the max-plus path)
    assert sorted(spans(program)) == sorted([
        ("src", "work", 0, 10), ("src", "tail", 10, 1010), ("dst", "work", 10 + latency, 20 + latency),
        ("dst", "after", 1010, 1015)])
    assert stalls(program) == [("dst", "starved on 'c'", 0, 10 + latency),
                               ("dst", "starved on 'c'", 20 + latency, 1010)]
    assert program.stats().stall_cycles == {"src": 0, "dst": 1000}
    assert program.stats().total_cycles == 1015


@pytest.mark.parametrize("cost", MODES)
def test_the_last_wait_for_the_close_is_a_stall_in_every_mode(cost):
    """Nothing after the consume: the same spans as before, and dst's wait from its last item (done at 20) to the
    close (1010) is a starved stall in both modes."""
    program, _ = run(tail_after_send(False), cost)
    assert stalls(program) == [("dst", "starved on 'c'", 0, 10), ("dst", "starved on 'c'", 20, 1010)]
    assert program.stats().stall_cycles == {"src": 0, "dst": 1000}
    assert program.stats().total_cycles == 1010


def test_a_chain_on_the_max_plus_path_agrees_with_the_engine_at_the_close():
    """A chain of single-task bodies takes the max-plus path; its close is its last send, so every mode gives the
    same spans, stalls and figures (depth 1, latency 7, a slow middle stage)."""
    a, b, c = pinned("a", 10), pinned("b", 30), pinned("c", 5)

    def chain():
        c0, c1 = Channel("c0", depth=1), Channel("c1", depth=1)
        src = process("src").produces(c0).body(for_each(Dense[4](), lambda t: send(c0, a[t]())))
        mid = process("mid").consumes(c0).produces(c1).body(consume(c0, lambda t: send(c1, b[t]())))
        dst = process("dst").consumes(c1).body(consume(c1, lambda t: c[t]()))
        return connect(src, mid, dst)

    results = {}
    for cost in (PinnedCosts, NoMaxplus, Ordered):
        program, fast = run(chain(), cost, 7)
        assert fast == (1 if cost is PinnedCosts else 0)
        results[cost] = (sorted(spans(program)), stalls(program), program.stats().stall_cycles,
                         program.stats().total_cycles)
    assert results[PinnedCosts] == results[NoMaxplus] == results[Ordered]


# -- 2. an item in flight at the close goes to the waiting consumer that sees it first -------------------------------
make, quick, prep, job = pinned("make", 100), pinned("quick", 0), pinned("prep", 700), pinned("job", 50)


def pool(sends: list, placement: dict[str, int]):
    """src: prep (700), then one send of each kernel of ``sends``; three workers (job, 50) all waiting from 0."""
    c = Channel("c", depth=4)
    src = process("src").produces(c).body(
        for_each([0], lambda t: [task(prep, [t], {}), *[send(c, task(k, [n], {})) for n, k in enumerate(sends)]]))
    worker = process("worker").consumes(c).body(consume(c, lambda t: task(job, [t], {})))
    return connect(src, *replicate(worker, 3)).place(placement)


NEAR_LAST = {"src": 0, "worker[0]": 1, "worker[1]": 2, "worker[2]": 0}


@pytest.mark.parametrize("cost", MODES)
def test_the_last_item_goes_to_the_nearest_worker_when_its_producer_ends_as_it_is_seen(cost):
    """The item is done at 800, when src's body ends too. worker[2] shares src's core and sees it at 800, the others
    at 1800: worker[2] takes it (800-850), not worker[0], which waited as long."""
    program, _ = run(pool([make], NEAR_LAST), cost, 1000)
    assert spans(program) == [("src", "prep", 0, 700), ("src", "make", 700, 800), ("worker[2]", "job", 800, 850)]
    assert program.stats().total_cycles == 850


@pytest.mark.parametrize("cost", MODES)
def test_two_items_at_the_close_each_go_to_the_worker_that_sees_it_first(cost):
    """Items done at 800 and 900; src's body ends at 900. worker[2] (next to src) sees item 0 at 800 (800-850), asks
    again at 850 and sees item 1 at 900, before the far workers (1900): it takes that one too (900-950)."""
    program, _ = run(pool([make, make], NEAR_LAST), cost, 1000)
    assert spans(program) == [("src", "prep", 0, 700), ("src", "make", 700, 800), ("src", "make", 800, 900),
                              ("worker[2]", "job", 800, 850), ("worker[2]", "job", 900, 950)]
    assert program.stats().total_cycles == 950


@pytest.mark.parametrize("cost", MODES)
def test_two_items_in_flight_at_the_close_go_by_who_sees_them_first(cost):
    """make (700-800) then a 0-cycle send: both items and src's body end at 800. worker[2] sees item 0 first (800)
    and takes it (800-850); item 1 then has only the far workers waiting, who see it alike at 1800: worker[0], waiting
    longest, takes it (1800-1850)."""
    program, _ = run(pool([make, quick], NEAR_LAST), cost, 1000)
    assert sorted(spans(program)[3:]) == [("worker[0]", "job", 1800, 1850), ("worker[2]", "job", 800, 850)]
    assert program.stats().total_cycles == 1850


@pytest.mark.parametrize("cost", MODES)
def test_between_workers_that_see_the_last_item_alike_the_one_waiting_longest_takes_it(cost):
    """worker[1] and worker[2] both share src's core and wait from 0 (worker[1] first): worker[1] takes the item
    at 800."""
    program, _ = run(pool([make], {"src": 0, "worker[0]": 1, "worker[1]": 0, "worker[2]": 0}), cost, 1000)
    assert spans(program)[-1] == ("worker[1]", "job", 800, 850)
    assert program.stats().total_cycles == 850


# -- 3. the steady-state refusal names what does not repeat ----------------------------------------------------------
load, crunch = pinned("load", 1), pinned("crunch", 1)
A, B = [100, 200, 300], [50, 60, 70, 80, 90]  # periods 3 and 5: together 15


def costed(load_cycles, crunch_cycles, tiles: int = 40):
    ch = Channel("ch", depth=2)
    line = here() + 1  # (the src line: where the statement with load's cycles= starts)
    src = process("src").produces(ch).body(for_each(Dense[tiles](), lambda t: send(ch, task(
        load, [t], {}, cycles=load_cycles))))
    dst = process("dst").consumes(ch).body(consume(ch, lambda t: task(crunch, [t], {}, cycles=crunch_cycles)))
    return connect(src, dst).compile(cost_model=PinnedCosts(), compute_values=False), line


def test_values_that_each_repeat_but_together_too_rarely_are_named_together():
    program, line = costed(lambda k: A[k.params[0] % 3], lambda k: B[k.params[0] % 5])
    with pytest.raises(PtortValueError) as e:
        program.execute(steady_state=True, tiles=1000)
    text = str(e.value)
    assert "execute(steady_state=True, tiles=1,000) found no steady state to extrapolate from: the per-tile values " \
           f"of the cycles= function of task 'load' at test_engine_round9.py:{line} (every 3 tiles) and the cycles= " \
           "function of task 'crunch' at test_engine_round9.py:" in text
    assert "(every 5 tiles) together repeat only every 15 tiles: extrapolating needs 3 periods of them, 45 tiles, " \
           "and the workload has 40; and a full run has only the workload's 40 tiles." in text
    assert "does not repeat" not in text
    assert e.value.hint.startswith("Build the workload with at least 45 tiles (its tile loop over Dense[45]() or "
                                   "more), or make those values repeat sooner")
    located(e, line)


def test_the_note_of_a_full_run_names_the_combined_period():
    program, _ = costed(lambda k: A[k.params[0] % 3], lambda k: B[k.params[0] % 5])
    note = program.execute(steady_state=True).stats().steady_state.note
    assert note.startswith("no steady state: the per-tile values of the cycles= function of task 'load' at ")
    assert note.endswith("together repeat only every 15 tiles: extrapolating needs 3 periods of them, 45 tiles, and "
                         "the workload has 40; this is the full run.")


def test_a_value_that_never_repeats_is_blamed_alone():
    """load repeats every 3 tiles; crunch's cost grows with the tile: crunch is the one named."""
    program, _ = costed(lambda k: A[k.params[0] % 3], lambda k: 10 + k.params[0] ** 2)
    with pytest.raises(PtortValueError) as e:
        program.execute(steady_state=True, tiles=1000)
    assert "found no steady state to extrapolate from: the cycles= function of task 'crunch' at " \
           "test_engine_round9.py:" in str(e.value)
    assert "changes the tiles' work and does not repeat along the first 40 tiles; and a full run has only the " \
           "workload's 40 tiles." in str(e.value)
