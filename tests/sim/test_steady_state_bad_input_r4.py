"""execute(steady_state=True) on programs its short runs could misread (bad-input hunt 3 #1, #2, #9, #10; hunt 2 #14).

- Its short runs cut the tile loop for themselves only: a run of the same workload in another thread still lists
  every tile (they once resized the shared axis objects in place).
- Work that depends on the absolute tile index (a cond on it, a cycles= function of the tile) is checked at every
  tile: a period its values do not share is not extrapolated (it once said "extrapolated exactly", 5.5x too small).
- A short run that fails where the full run does not is no verdict: the full run is used.
- tiles= below the extrapolation's runs is the run of that many tiles; a workload built too small says so.
"""
from __future__ import annotations

import threading

import numpy as np
import pytest
from pinned_chains import linear
from source_lines import here, located

from ptort_lab import (
    Channel,
    Dense,
    DispatchPolicy,
    DType,
    In,
    Out,
    P,
    PinnedCosts,
    PipelineError,
    PtortValueError,
    Tensor,
    Tile,
    cond,
    connect,
    consume,
    for_each,
    kernel,
    process,
    send,
    task,
    tl,
    workload,
)
from ptort_lab.dsl.axes import run_sizes
from ptort_lab.sim.steady_state import resized, tile_axes

F32 = DType.F32
a = kernel(name="a")(lambda: None)
k10 = kernel(name="k10", cycles=10)(lambda: None)


def figures(stats):
    return (stats.total_cycles, stats.task_count, stats.stage_busy_pct, stats.lane_busy_pct, stats.core_busy_pct,
            stats.overlap_pct, stats.stall_cycles, stats.bytes_moved)


def two_stages(n, src_item, dst_cycles=50):
    """src sends src_item(i) for each of n tiles; dst runs a dst_cycles task per token."""
    ch = Channel(name="c", depth=2)
    src = process("src").produces(ch).body(for_each(Dense[n](), lambda i: send(ch, src_item(i), token=i)))
    dst = process("dst").consumes(ch).body(consume(ch, lambda i: task(a, [i], {}, cycles=dst_cycles)))
    return connect(src, dst).compile(cost_model=PinnedCosts())


# -- #1: the short runs change nothing another run sees -------------------------------------------------------------
def test_a_cut_tile_loop_is_seen_only_in_its_own_context():
    """Inside resized() the axis lists 3 points here, and its built size in another thread at the same time."""
    program = linear(1_000).compile(cost_model=PinnedCosts())
    size, axes = tile_axes(program.workload)
    seen = []
    with resized(axes, 3):
        thread = threading.Thread(target=lambda: seen.append([ax.size for ax in axes]))
        thread.start()
        thread.join()
        assert [ax.size for ax in axes] == [3]
    assert seen == [[1_000]] and size == 1_000 and [ax.size for ax in axes] == [1_000]
    assert run_sizes.get() is None


def test_a_plain_run_beside_steady_state_runs_in_another_thread_runs_every_tile():
    """hunt3 #1 (t1): plain runs of a second Program of the same processes, while another thread loops
    execute(steady_state=True): every plain run has the full figures (39 of 40 ran 5 tiles before)."""
    b = kernel(name="b", cycles=60)(lambda: None)
    load = kernel(name="load", cycles=100)(lambda: None)
    ch = Channel(name="c", depth=2)
    src = process("src").produces(ch).body(for_each(Dense[5_000](), lambda t: send(ch, task(load, [t], {}))))
    dst = process("dst").consumes(ch).body(consume(ch, lambda t: task(b, [t], {})))
    steady = connect(src, dst).compile(cost_model=PinnedCosts())
    plain = connect(src, dst).compile(cost_model=PinnedCosts())
    expected = figures(plain.execute().stats())
    assert expected[:2] == (500_060, 10_000)
    stop = threading.Event()
    steady_runs = []

    def loop():
        while not stop.is_set():
            steady_runs.append(steady.execute(steady_state=True).stats().total_cycles)

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        wrong = [got for _ in range(30) if (got := figures(plain.execute().stats())) != expected]
    finally:
        stop.set()
        thread.join()
    assert wrong == []
    assert steady_runs and set(steady_runs) == {500_060}


@kernel
def copy_tile(src: In[Tile[16, 16, F32]], dst: Out[Tile[16, 16, F32]]):
    tl.store(dst, tl.load(src))


def test_a_value_run_beside_steady_state_runs_writes_every_output_tile():
    """hunt3 #1 (t2): a value-computing run of the same processes while steady-state runs loop: every output tile
    is written (64 of 300 were, with no error, before)."""
    n = 200
    x = np.random.default_rng(0).random((n, 16, 16)).astype(np.float32)
    X, Y = Tensor(data=x), Tensor(data=np.zeros_like(x))
    ch = Channel(name="c", depth=2)
    src = process("src").produces(ch).body(for_each(Dense[n](), lambda t: send(ch, task(k10, [t], {}))))
    dst = process("dst").consumes(ch).body(consume(ch, lambda t: copy_tile[t](src=X[t], dst=Y[t])))
    pipe = connect(src, dst)
    timing, values = pipe.compile(compute_values=False), pipe.compile()
    stop = threading.Event()
    thread = threading.Thread(target=lambda: [timing.execute(steady_state=True) for _ in iter(stop.is_set, True)])
    thread.start()
    try:
        for _ in range(10):
            Y.data[:] = 0
            assert values.execute().stats().task_count == 2 * n
            assert np.array_equal(Y.data, x)
    finally:
        stop.set()
        thread.join()


def test_program_tasks_of_a_cut_run_are_its_own_tiles():
    """The max-plus path lists a run's tasks when first read: a cut run's at its own tile count."""
    program = linear(1_000).compile(cost_model=PinnedCosts())
    program.execute(steady_state=True)
    traced = program.stats().steady_state.traced_tiles
    assert len(program.tasks) == 3 * traced
    program.execute(steady_state=True, tiles=3)
    assert [t.params[0] for t in program.tasks if t.kernel == "s0"] == [0, 1, 2]


# -- #2: work that depends on the absolute tile index ---------------------------------------------------------------
def regime(n, kind, at):
    """hunt3 s1: the source costs 100 cycles below tile `at`, 1000 from there (a cycles= function or a cond)."""
    if kind == "cycles":
        return two_stages(n, lambda i: task(a, [i], {}, cycles=lambda t: 100 if t.params[0] < at else 1000))
    return two_stages(n, lambda i: cond(i < at, task(a, [i], {}, cycles=100), task(a, [i], {}, cycles=1000)))


@pytest.mark.parametrize("kind, what", [("cycles", "the cycles= function of task 'a'"),
                                        ("cond", "cond(i < 1000, ...)")])
def test_a_regime_change_at_an_absolute_tile_is_the_full_run_not_an_extrapolation(kind, what):
    """The short runs never reach tile 1000; the values are checked at every tile instead: they repeat only from
    tile 1000 on, so the full run is used (the figures were 5.5x too small, "extrapolated exactly")."""
    program = regime(2_000, kind, 1_000)
    full = program.execute().stats()
    steady = program.execute(steady_state=True).stats()
    assert figures(steady) == figures(full) and full.total_cycles == 100 * 1_000 + 1_000 * 1_000 + 50
    info = steady.steady_state
    assert not info.extrapolated
    assert info.note.startswith(f"no steady state: {what} at test_steady_state_bad_input_r4.py:")
    assert info.note.endswith(" changes the tiles' work, which repeats every 1 tile(s) only from tile 1,000 on, so "
                              "extrapolating would simulate about as many tiles as the full run; this is the full "
                              "run.")
    assert "exactly" not in info.note


def test_tiles_past_a_regime_change_are_extrapolated_from_the_runs_past_it():
    """tiles=6000 of a 4000-tile build with the change at 1000: the probe keys only tiles from 1000 on, and the
    cond's values are checked up to tile 6000: equal to the full run of a 6000-tile build."""
    steady = regime(4_000, "cond", 1_000).execute(steady_state=True, tiles=6_000).stats()
    assert steady.steady_state.extrapolated and steady.steady_state.repeat_from_tile >= 1_000
    assert figures(steady) == figures(regime(6_000, "cond", 1_000).execute().stats())


def test_a_regime_change_past_the_workload_is_refused_naming_the_cond():
    """tiles=3000 of a 1000-tile build whose cond changes at tile 1500: the period found in the short runs is not
    the cond's past tile 1500, and a full run has only 1000 tiles: refused, at the cond's line."""
    ch = Channel(name="c", depth=2)
    line = here() + 2
    src = process("src").produces(ch).body(for_each(Dense[1_000](), lambda i: send(ch, cond(
        i < 1_500, task(a, [i], {}, cycles=100), task(a, [i], {}, cycles=1_000)), token=i)))
    dst = process("dst").consumes(ch).body(consume(ch, lambda i: task(a, [i], {}, cycles=50)))
    program = connect(src, dst).compile(cost_model=PinnedCosts())
    with pytest.raises(PtortValueError) as e:
        program.execute(steady_state=True, tiles=3_000)
    assert e.value.what.startswith("execute(steady_state=True, tiles=3,000) found no steady state to extrapolate "
                                   f"from: cond(i < 1500, ...) at test_steady_state_bad_input_r4.py:{line - 1} has "
                                   "another value at tile 1,500 than at tile 1,499, one period of the run's state "
                                   "(1 tile(s)) before, so the run does not repeat with it; ")
    assert e.value.what.endswith("and a full run has only the workload's 1,000 tiles.")
    assert e.value.hint == ("Run it in full with execute() at the size you built, or make the per-tile work the same "
                            "for every tile (no per-tile costs or shapes).")
    located(e, line - 1)


@pytest.mark.parametrize("period", [2, 3])
@pytest.mark.parametrize("stage", ["src", "dst"])
def test_a_periodic_cond_on_the_tile_index_still_extrapolates(period, stage):
    """cond(i % 2 == 0, ...) in the tile loop or in the consume (its token is the tile): the values repeat every
    `period` tiles, the period found is a multiple of it, and the figures equal the full run's."""
    def build(n):
        ch = Channel(name="c", depth=2)

        def pick(i):
            return cond(i % period == 0, task(a, [i], {}, cycles=100), task(a, [i], {}, cycles=30))

        def fixed(i):
            return task(a, [i], {}, cycles=40)

        src = process("src").produces(ch).body(for_each(Dense[n](), lambda i: send(
            ch, (pick if stage == "src" else fixed)(i), token=i)))
        dst = process("dst").consumes(ch).body(consume(ch, fixed if stage == "src" else pick))
        return connect(src, dst).compile(cost_model=PinnedCosts())

    program = build(3_000)
    steady = program.execute(steady_state=True).stats()
    assert figures(steady) == figures(program.execute().stats())
    info = steady.steady_state
    assert info.extrapolated and info.period_tiles % period == 0 and info.traced_tiles < 50
    assert info.note.startswith(f"steady state: the run repeats every {info.period_tiles} tile(s) (")
    far = program.execute(steady_state=True, tiles=20_000).stats()
    assert figures(far) == figures(build(20_000).execute().stats())


def test_warm_up_tiles_extrapolate_from_after_them():
    """cond(i < 3, ...): different work for the first three tiles only; the period is found after them."""
    program = two_stages(5_000, lambda i: cond(i < 3, task(a, [i], {}, cycles=500), task(a, [i], {}, cycles=100)))
    steady = program.execute(steady_state=True).stats()
    assert steady.steady_state.extrapolated and steady.steady_state.repeat_from_tile >= 3
    assert figures(steady) == figures(program.execute().stats())


def test_a_cond_on_the_tile_and_another_variable_cannot_be_checked_and_is_the_full_run():
    ch = Channel(name="c", depth=2)
    line = here() + 2
    src = process("src").produces(ch).body(for_each(Dense[400](), lambda i: for_each(Dense[2](), lambda j: send(
        ch, cond(i + j < 300, task(a, [i], {}, cycles=100), task(a, [i], {}, cycles=10)), token=i))))
    dst = process("dst").consumes(ch).body(consume(ch, lambda i: task(a, [i], {}, cycles=50)))
    program = connect(src, dst).compile(cost_model=PinnedCosts())
    steady = program.execute(steady_state=True).stats()
    assert figures(steady) == figures(program.execute().stats())
    assert steady.steady_state.note == (
        f"no steady state: cond((i + j) < 300, ...) at test_steady_state_bad_input_r4.py:{line} reads the tile "
        "index 'i' together with 'j', so whether the run repeats cannot be checked; this is the full run.")
    with pytest.raises(PtortValueError) as e:
        program.execute(steady_state=True, tiles=10_000)
    assert "reads the tile index 'i' together with 'j', so whether the run repeats cannot be checked; and a " \
           "full run has only the workload's 400 tiles." in e.value.what
    located(e, line)


def test_a_cond_on_a_token_computed_from_the_tile_cannot_be_checked():
    """The consume's variable holds 2 * t, not the tile: its cond's values per tile are not known."""
    ch = Channel(name="c", depth=2)
    src = process("src").produces(ch).body(for_each(Dense[300](), lambda t: send(ch, task(k10, [t], {}),
                                                                                   token=2 * t)))
    line = here() + 1
    dst = process("dst").consumes(ch).body(consume(ch, lambda x: cond(x < 100, task(a, [x], {}, cycles=99))))
    program = connect(src, dst).compile(cost_model=PinnedCosts())
    steady = program.execute(steady_state=True).stats()
    assert figures(steady) == figures(program.execute().stats())
    assert steady.steady_state.note == (
        f"no steady state: cond(x < 100, ...) at test_steady_state_bad_input_r4.py:{line} reads 'x', a value derived "
        "from the tile index that its channel's producers send (not the tile index itself), so whether the run "
        "repeats cannot be checked; this is the full run.")


def test_checking_a_cond_at_more_tiles_than_the_budget_is_refused():
    program = two_stages(1_000, lambda i: cond(i < 3, task(a, [i], {}, cycles=500), task(a, [i], {}, cycles=100)))
    with pytest.raises(PtortValueError) as e:
        program.execute(steady_state=True, tiles=10**9)
    assert "cond(i < 3, ...) at test_steady_state_bad_input_r4.py:" in e.value.what
    assert ("depends on the tile index, and checking its values at 1,000,000,000 tiles is more than the 1,000,000 "
            "evaluations a steady-state run makes; and a full run has only the workload's 1,000 tiles.") \
        in e.value.what
    assert e.value.hint == ("Run fewer tiles, or run it in full with execute() at the size you built (with "
                            "keep_trace=False for a long run).")


# -- #9: a short run that fails is no verdict -----------------------------------------------------------------------
def join_of(nb):
    """hunt3 s2: a join of PA (Dense[1000], one send each) and PB (Dense[nb], two sends each)."""
    ca, cb = Channel(name="a", depth=2), Channel(name="b", depth=2)
    pa = process("PA").produces(ca).body(for_each(Dense[1_000](), lambda t: send(ca, task(k10, [t], {}))))
    pb = process("PB").produces(cb).body(for_each(Dense[nb](), lambda h: [send(cb, task(k10, [2 * h], {})),
                                                                          send(cb, task(k10, [2 * h + 1], {}))]))
    j = process("J").consumes(ca, cb).body(consume([ca, cb], lambda x, y: task(k10, [x], {})))
    return connect(pa, pb, j).compile(cost_model=PinnedCosts())


def test_a_join_over_loops_of_other_sizes_is_the_full_run_not_a_wiring_error():
    """Only the 1000-tile loop is cut, so the short runs' join is unequal (PipelineError); the full run is not."""
    program = join_of(500)
    steady = program.execute(steady_state=True).stats()
    assert figures(steady) == figures(program.execute().stats()) and steady.total_cycles == 10_010
    assert steady.steady_state.note == (
        "no steady state: a short run of 5 tiles raised PipelineError (consume(['a', 'b']) pairs the k-th tokens of "
        "its channels, but 'a' closed after 5 token(s) while 'b' delivered token 6: the channels' producers send "
        "different numbers of tokens); this is the full run.")
    with pytest.raises(PtortValueError) as e:
        program.execute(steady_state=True, tiles=5_000)
    assert e.value.what.startswith("execute(steady_state=True, tiles=5,000) found no steady state to extrapolate "
                                   "from: a short run of 5 tiles raised PipelineError (")
    assert e.value.hint == ("Run it in full with execute() at the size you built: the error came from a run of fewer "
                            "tiles, which the full run may not have.")
    line = here() - 5
    located(e, line)


def test_the_full_runs_own_error_is_the_one_raised():
    """PB sends 800 tokens against PA's 1000: the full run's join fails too, and its error (not the short run's)
    is what the user sees."""
    with pytest.raises(PipelineError) as e:
        join_of(400).execute(steady_state=True)
    assert "but 'b' closed after 800 token(s) while 'a' delivered token 801" in e.value.what


def test_an_event_recorded_at_an_absolute_tile_is_the_full_run_not_a_deadlock():
    """hunt3 s5: cond(t == 500, record(ev)) and a synchronize elsewhere: the short runs never record it (they
    reported a deadlock); the cond is checked at every tile, and the full run is used."""
    from ptort_lab import Event
    from ptort_lab.csp import record, synchronize

    ev = Event("checkpoint")
    ch = Channel("c", depth=2)
    src = process("src").produces(ch).body(for_each(Dense[1_000](), lambda t: [
        send(ch, task(k10, [t], {})), cond(t == 500, record(ev))]))
    dst = process("dst").consumes(ch).body(consume(ch, lambda t: task(k10, [t], {})))
    saver = process("saver").body_func(lambda: [synchronize(ev), task(k10, [0], {})])
    program = connect(src, dst, saver).compile(cost_model=PinnedCosts())
    steady = program.execute(steady_state=True).stats()
    assert figures(steady) == figures(program.execute().stats()) and steady.total_cycles == 10_010
    assert steady.steady_state.note.startswith("no steady state: cond(t == 500, ...) at ")


# -- #10 and hunt2 #14: too few tiles, a workload built too small ----------------------------------------------------
@pytest.mark.parametrize("n", [1, 3, 5])
def test_fewer_tiles_than_the_extrapolation_runs_is_the_run_of_that_many(n):
    """hunt3 s4: tiles=3 of a 1000-tile build said "found no steady state" although it found one; it is now the
    run of 3 tiles (the tile loop cut to 3), equal to a 3-tile build's full run."""
    program = linear(1_000, cycles=(100, 60)).compile(cost_model=PinnedCosts())
    stats = program.execute(steady_state=True, tiles=n).stats()
    assert figures(stats) == figures(linear(n, cycles=(100, 60)).compile(cost_model=PinnedCosts()).execute().stats())
    info = stats.steady_state
    assert (info.tiles, info.traced_tiles, info.extrapolated) == (n, n, False)
    assert info.note == (f"steady state: the run repeats every 1 tile(s) from tile 1, but {n:,} tiles are fewer than "
                         f"the 6 the extrapolation runs; this is the run of {n:,} tiles (the tile loop cut to {n:,}).")


def test_tiles_below_the_workload_without_a_period_is_the_run_of_that_many():
    program = two_stages(300, lambda i: task(a, [i], {}, cycles=lambda t: 10 + t.params[0] ** 3 % 1009))
    stats = program.execute(steady_state=True, tiles=120).stats()
    built = two_stages(120, lambda i: task(a, [i], {}, cycles=lambda t: 10 + t.params[0] ** 3 % 1009))
    assert figures(stats) == figures(built.execute().stats())
    assert stats.steady_state.note.endswith("; this is the run of 120 tiles (the tile loop cut to 120).")


def test_a_cut_run_that_fails_says_it_was_cut():
    with pytest.raises(PtortValueError) as e:
        join_of(500).execute(steady_state=True, tiles=3)
    assert e.value.what.startswith("execute(steady_state=True, tiles=3) ran the workload with its tile loop cut to 3 "
                                   "of its 1,000 tiles, and that run raised PipelineError (")
    assert e.value.hint == ("Only the loops over the workload's 1,000 tiles are cut (loops of other sizes keep "
                            "theirs): build the workload with 3 tiles and run it in full with execute().")


@kernel(cycles=37)
def pin(src: In[Tile[64, 64, F32]], dst: Out[Tile[64, 64, F32]]):
    tl.store(dst, tl.load(src))


def work_steal(n):
    """hunt2 r_steady_hint: 5 cores stealing n pinned tiles (the state repeats every 25 tiles)."""
    X, Y = Tensor(shape=(n, 64, 64), dtype=F32), Tensor(shape=(n, 64, 64), dtype=F32)

    @workload
    def w():
        for t in P(Dense[n]()):
            pin[t](src=X[t], dst=Y[t])

    return w().dispatch(DispatchPolicy.work_steal(5)).compile(compute_values=False)


def test_a_workload_built_too_small_to_extrapolate_from_says_how_big_to_build_it():
    """hunt2 #14: a period was found, but its runs need 125 tiles and the workload has 100: the hint says to build
    at least 125 (it blamed per-tile costs); built so, tiles= extrapolates, equal to the full run."""
    line = here() + 2
    with pytest.raises(PtortValueError) as e:
        work_steal(100).execute(steady_state=True, tiles=2_000)
    assert e.value.what == (
        "execute(steady_state=True, tiles=2,000) found no steady state to extrapolate from in a workload of 100 "
        "tiles: the run repeats every 25 tile(s) from tile 4, but extrapolating takes runs of 75, 100 and 125 tiles "
        "and the workload has 100; and a full run has only the workload's 100 tiles.")
    assert e.value.hint == ("Build the workload with at least 125 tiles (its tile loop over Dense[125]() or more): "
                            "execute(steady_state=True, tiles=2,000) then extrapolates from it.")
    located(e, line)
    stats = work_steal(125).execute(steady_state=True, tiles=2_000).stats()
    assert stats.steady_state.extrapolated
    assert figures(stats) == figures(work_steal(2_000).execute().stats())
