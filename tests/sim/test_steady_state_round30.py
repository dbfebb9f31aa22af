"""execute(steady_state=True), round 30: loops of another size than the tile loop, outside it, run in full in the
short runs; their progress is part of the state now. Before, the state at tile 2 and tile 3 looked alike while such
a loop still ran, a repeat of 0 or 30 cycles a tile was "found", and the figures were extrapolated far too small
(100,330 cycles as 31,030 with a stage 322 % busy): a silent wrong answer. Also a send's token= that is not an int
that is a number but no index is refused at its line (a float ran as a tile index), and a str token compared in a
cond is reported at the cond (a bare TypeError before)."""
from __future__ import annotations

import pytest
from source_lines import here, located

from ptort_lab import (
    Channel,
    Dense,
    PinnedCosts,
    PtortTypeError,
    cond,
    connect,
    consume,
    for_each,
    kernel,
    process,
    send,
    task,
)
from ptort_lab.csp import per_core
from ptort_lab.sim import steady_state

load = kernel(name="load", cycles=100)(lambda: None)
work = kernel(name="work", cycles=30)(lambda: None)
side_work = kernel(name="side", cycles=5000)(lambda: None)


def figures(stats):
    return (stats.total_cycles, stats.task_count, stats.stage_busy_pct, stats.lane_busy_pct, stats.core_busy_pct,
            stats.overlap_pct, stats.stall_cycles, stats.bytes_moved)


def chain(n: int, *others):
    """src sends n loads (100 cycles) into ch (depth 2); dst runs a 30-cycle task per token."""
    ch = Channel("ch", depth=2)
    src = process("src").produces(ch).body(for_each(Dense[n](), lambda t: send(ch, task(load, [t], {}))))
    dst = process("dst").consumes(ch).body(consume(ch, lambda t: task(work, [t], {})))
    return connect(src, dst, *others)


def test_a_second_producer_with_fewer_tiles_is_part_of_the_state():
    """main sends 1,000 loads and extra 10 into one channel: src-bound at 100 cycles a tile once extra is done."""
    ch = Channel(name="ch", depth=2)
    main = process("main").produces(ch).body(for_each(Dense[1000](), lambda t: send(ch, task(load, [t], {}))))
    extra = process("extra").produces(ch).body(for_each(Dense[10](), lambda t: send(ch, task(load, [t], {}))))
    worker = process("worker").consumes(ch).body(consume(ch, lambda t: task(work, [t], {})))
    program = connect(main, extra, worker).compile(cost_model=PinnedCosts(), compute_values=False)
    full, steady = program.execute().stats(), program.execute(steady_state=True).stats()
    assert full.total_cycles == 100_330  # 1,000 loads of main back to back, then the last work (30) after a wait
    assert figures(steady) == figures(full)
    info = steady.steady_state
    assert info.extrapolated and info.period_cycles == 100 and info.repeat_from_tile >= 10


def test_an_independent_process_with_a_short_loop_is_part_of_the_state():
    program = chain(1000, process("side").body(for_each(Dense[10](), lambda i: task(side_work, [i], {}))))
    program = program.compile(cost_model=PinnedCosts(), compute_values=False)
    full, steady = program.execute().stats(), program.execute(steady_state=True).stats()
    assert full.total_cycles == 100_030 and full.stage_busy_pct["side"] == pytest.approx(100 * 50_000 / 100_030)
    assert figures(steady) == figures(full)
    assert steady.steady_state.repeat_from_tile >= 500  # (side runs 50,000 cycles: 500 of src's tiles)


@pytest.mark.parametrize("tiles_on_core_1", [999, 500])
def test_an_uneven_split_over_cores_is_run_in_full_not_extrapolated(tiles_on_core_1):
    """Core 1's loop (999 or 500 tiles) is not the tile loop: the short runs kept it whole, and the state never
    repeats while it runs; the probe runs every tile and that is the full run (the NPU model: in time order)."""
    program = per_core(lambda core: chain(1000 if core == 0 else tiles_on_core_1), 2).compile(compute_values=False)
    full, steady = program.execute().stats(), program.execute(steady_state=True).stats()
    assert full.total_cycles == steady.total_cycles and figures(steady) == figures(full)
    assert not steady.steady_state.extrapolated


def test_figures_busier_than_the_run_are_no_extrapolation():
    """A guard under the state's: steps that would make a stage busier than the makespan are not the run's own."""
    f = steady_state.Figures(makespan=100, tasks=4, lanes={(0, "a"): 50}, cores={0: 50}, stages={"a": 50}, multi=0,
                             stalls={}, bytes_moved=0, memory={})
    g = steady_state.Figures(makespan=130, tasks=5, lanes={(0, "a"): 100}, cores={0: 100}, stages={"a": 100},
                             multi=0, stalls={}, bytes_moved=0, memory={})
    h = steady_state.Figures(makespan=160, tasks=6, lanes={(0, "a"): 150}, cores={0: 150}, stages={"a": 150},
                             multi=0, stalls={}, bytes_moved=0, memory={})
    assert steady_state.extrapolate(f, g, h, 2) == h  # (two steps on: 150 busy of 160, possible)
    assert steady_state.extrapolate(f, g, h, 10) is None  # 550 busy of 400 cycles


@pytest.mark.parametrize("token, what", [
    (1.5, "the float 1.5: tokens are tile indices, ints"),
    (True, "the bool True, which is not a tile index"),
])
def test_a_token_that_is_a_number_but_no_index_is_refused_at_the_send(token, what):
    """As send(ch, 1.5) is: it ran as the consumer's tile index, [1.5], where no tensor was indexed by it."""
    ch = Channel(name="ch", depth=2)
    with pytest.raises(PtortTypeError) as e:
        line = here() + 1
        process("src").produces(ch).body(for_each(Dense[4](), lambda t: send(ch, task(load, [t], {}), token=token)))
    assert e.value.what == f"send('ch', ..., token=...) got {what}; a token is an int or a loop expression (t, t + 1)."
    assert e.value.hint == ("Pass the tile index the consumer should receive: token=t (the loop variable), an "
                            "expression of it (token=t + 1) or an int.")
    located(e, line)


def test_a_str_token_compared_in_a_cond_is_reported_at_the_cond():
    """Other tokens travel and are checked where they are used (test_bad_input: at the launch that indexes with
    one); a cond comparing one raised a bare TypeError from inside ptort_lab."""
    ch = Channel(name="ch", depth=2)
    src = process("src").produces(ch).body(for_each(Dense[4](), lambda t: send(ch, task(load, [t], {}), token="x")))
    line = here() + 1
    dst = process("dst").consumes(ch).body(consume(ch, lambda t: cond(t < 3, task(work, [t], {}))))
    with pytest.raises(PtortTypeError) as e:
        connect(src, dst).compile(cost_model=PinnedCosts()).execute()
    assert e.value.what.startswith("the condition ") and e.value.what.endswith(
        " could not be evaluated for {'t': 'x'}: '<' not supported between instances of 'str' and 'int'.")
    assert e.value.hint == ("The values it compares must be numbers: a token a send passes (token=...) is a tile "
                            "index, an int.")
    located(e, line)


def test_the_npu_state_holds_when_each_held_buffer_allocation_started():
    """A new allocation's search counts the allocations that start after its own time, so two states whose buffers
    hold the same bytes until the same ends but from other starts are not the same state."""
    from types import SimpleNamespace

    from ptort_lab.sim.buffers import BufferPool
    from ptort_lab.sim.machine import ascend_910b
    from ptort_lab.sim.memory import GlobalMemory
    from ptort_lab.sim.steady_state import npu_state_key

    def key(start: int) -> object:
        pool = BufferPool("UB of core 0 AIV0", 1 << 17)
        done = pool.allocate(start, 4096, 0)
        assert done is not None
        pool.free(done, 500)
        pool.allocate(start, 1024, 0)  # (still open)
        run = SimpleNamespace(memory=GlobalMemory(ascend_910b), machine=ascend_910b, pipe_free={},
                              pools={(0, "AIV0", "UB"): pool}, next_aiv={}, launched=True)
        return npu_state_key(run, 100, 100)
    assert key(200) != key(300)
    assert key(200) == key(200)
