"""execute(steady_state=True) (issue 14): the periodic regime found and extrapolated exactly, equal to the full run.

Every case runs the same program twice, in full and with steady_state=True, and compares every figure of
program.stats() (makespan, task count, per-stage/pipe/core busy %, overlap, stall cycles, bytes moved) for equality.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
from pinned_chains import linear

from ptort_lab import (
    Channel,
    Dense,
    DispatchPolicy,
    DType,
    In,
    Out,
    P,
    PinnedCosts,
    PtortTypeError,
    PtortValueError,
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
    workload,
)
from ptort_lab.sim.machine import ascend_910b

ROOT = Path(__file__).resolve().parents[2]
F32, F16 = DType.F32, DType.F16
SIZE = 64
SMALL_L2 = ascend_910b.replace(l2_bytes=1 << 20)  # the L2 fills within a few tiles, so the state repeats early


def figures(stats):
    """Every figure of a ProgramStats (the error band and notes too: a steady-state run once dropped them, and the
    NPU model's memory counters)."""
    return (stats.total_cycles, stats.task_count, stats.stage_busy_pct, stats.lane_busy_pct, stats.core_busy_pct,
            stats.overlap_pct, stats.stall_cycles, stats.bytes_moved, stats.mode, stats.error_band, stats.notes,
            stats.memory)


def both(program, **steady):
    """(full-run stats, steady-state stats) of one program."""
    full = program.execute().stats()
    steady_stats = program.execute(steady_state=True, **steady).stats()
    return full, steady_stats


@kernel
def load_kernel(src: In[Tile[SIZE, SIZE, F32]], dst: Out[Tile[SIZE, SIZE, F16]]):
    tl.store(dst, tl.cast(tl.load(src), F16))


@kernel
def square_kernel(input_tile: In[Tile[SIZE, SIZE, F16]], output_tile: Out[Tile[SIZE, SIZE, F16]]):
    x = tl.load(input_tile)
    tl.store(output_tile, tl.mul(x, x))


def csp_pipe(n, depth=2):
    """examples/csp_pipeline's P.pipe() workload (load -> square over one channel), at n tiles."""
    X = Tensor(shape=(n, SIZE, SIZE), dtype=F32, name="X")
    T0 = Tensor(shape=(n, SIZE, SIZE), dtype=F16, name="T0")
    T1 = Tensor(shape=(n, SIZE, SIZE), dtype=F16, name="T1")
    tiles = Dense[n]()

    @workload
    def csp_workload():
        with P.pipe():
            ch = Channel[Tensor](name="data_channel", depth=depth)
            for t in P(tiles):
                send(ch, load_kernel[t](src=X[t], dst=T0[t]))
            consume(ch, lambda t: square_kernel[t](input_tile=T0[t], output_tile=T1[t]))

    return csp_workload()


def data_parallel(n, cores):
    X = Tensor(shape=(n, SIZE, SIZE), dtype=F32, name="X")
    T0 = Tensor(shape=(n, SIZE, SIZE), dtype=F16, name="T0")
    tiles = Dense[n]()

    @workload
    def dp():
        for t in P(tiles):
            load_kernel[t](src=X[t], dst=T0[t])

    return dp().dispatch(DispatchPolicy.round_robin(cores))


# -- pinned costs: the max-plus regime ------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [1, 2, 3, 4])
@pytest.mark.parametrize("latency", [0, 7])
def test_linear_pipeline_at_ten_thousand_tiles_equals_the_full_run(depth, latency):
    """3 stages (100, 60, 100 cycles) over 10,000 tiles: every figure equal, and the makespan by hand: the slow
    stages set the period (100 cycles a tile), so 10,000 * 100 + the fill (100 + 60 + latencies)... checked against
    the full run, which the oracle test checks span by span."""
    program = linear(10_000, depth=depth).compile(cost_model=PinnedCosts(), channel_latency_cycles=latency)
    full, steady = both(program)
    assert figures(steady) == figures(full)
    info = steady.steady_state
    assert info.extrapolated and info.tiles == 10_000 and info.traced_tiles < 100
    assert len(program.trace().spans) == 3 * info.traced_tiles  # the trace is the short run's
    assert full.steady_state is None


def test_linear_pipeline_makespan_by_hand_and_a_billion_tiles_in_under_a_second():
    """Depth 2, no latency: stage 0 and 2 (100 cycles) alternate with the 60-cycle middle; the bench's makespan is
    100 * n + 160 (1,000,160 at 10,000 tiles, the oracle's). At 1e9 tiles: 100,000,000,160, in well under a second,
    and stage busy shares 1e11 / makespan."""
    program = linear(10_000).compile(cost_model=PinnedCosts())
    assert program.execute(steady_state=True).stats().total_cycles == 1_000_160
    started = time.perf_counter()
    stats = program.execute(steady_state=True, tiles=10**9).stats()
    assert time.perf_counter() - started < 1.0
    assert stats.total_cycles == 100 * 10**9 + 160
    assert stats.task_count == 3 * 10**9
    assert stats.stage_busy_pct["s0"] == 100.0 * 100 * 10**9 / stats.total_cycles
    assert stats.stage_busy_pct["s1"] == 100.0 * 60 * 10**9 / stats.total_cycles


@pytest.mark.slow
def test_linear_pipeline_at_a_hundred_thousand_tiles_with_four_stages():
    program = linear(100_000, cycles=(30, 100, 70, 100), depth=3).compile(cost_model=PinnedCosts())
    full, steady = both(program)
    assert figures(steady) == figures(full)


@pytest.mark.parametrize("cores", [1, 3, 4])
def test_data_parallel_round_robin_with_pinned_costs(cores):
    program = data_parallel(10_000, cores).compile(cost_model=PinnedCosts(default_cycles=7), compute_values=False)
    full, steady = both(program)
    assert figures(steady) == figures(full)
    assert steady.steady_state.extrapolated


# -- the NPU model --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("depth", [1, 2])
def test_csp_pipeline_on_the_npu_model(depth):
    """examples/csp_pipeline's P.pipe() workload priced by the NPU model (an L2 small enough to fill early)."""
    program = csp_pipe(2_000, depth).compile(compute_values=False, machine=SMALL_L2)
    full, steady = both(program)
    assert figures(steady) == figures(full)
    assert steady.steady_state.extrapolated


@pytest.mark.slow
def test_csp_pipeline_on_the_npu_model_at_ten_thousand_tiles():
    program = csp_pipe(10_000).compile(compute_values=False, machine=SMALL_L2)
    full, steady = both(program)
    assert figures(steady) == figures(full)
    assert steady.steady_state.extrapolated


def test_data_parallel_on_the_npu_model():
    program = data_parallel(3_000, 4).compile(compute_values=False, machine=SMALL_L2)
    full, steady = both(program)
    assert figures(steady) == figures(full)
    assert steady.steady_state.extrapolated


def test_csp_attention_pinned_and_on_the_npu_model():
    """examples/csp_attention (one head, 4 KV blocks per query tile, tiny tiles): pinned costs extrapolate; the NPU
    model's state (KV blocks re-read from L2 while per-token tiles stream through it) is compared too, and whichever
    way it goes the figures equal the full run's."""
    sys.path.insert(0, str(ROOT / "examples/csp_attention"))
    try:
        import csp_attention_example as ex
    finally:
        sys.path.pop(0)
    M = N = D = 16
    kernels = ex.make_kernels(M, N, D)
    q, kt, v = (np.zeros(s, np.float16) for s in ((1, 100, M, D), (1, 4, D, N), (1, 4, N, D)))
    for options in (dict(cost_model=PinnedCosts(default_cycles=5)), dict(machine=SMALL_L2)):
        program = ex.build(q, kt, v, M, N, 2, kernels).pipeline.compile(compute_values=False, **options)
        full, steady = both(program)
        assert figures(steady) == figures(full), options
    assert steady.steady_state.note


# -- where it cannot extrapolate -------------------------------------------------------------------------------------
def test_per_tile_costs_that_never_repeat_fall_back_to_the_full_run_and_say_so():
    """Stage costs that grow with the tile index: the state keys may repeat (costs are not state) but the figures
    do not grow by equal steps, so it is the full run, with a note."""
    a = kernel(name="a")(lambda: None)
    ch = Channel(name="c", depth=2)
    src = process("src").produces(ch).body(for_each(Dense[300](), lambda i: send(ch, task(
        a, [i], {}, cycles=lambda t: 10 + t.params[0] ** 2 % 97))))
    dst = process("dst").consumes(ch).body(consume(ch, lambda i: task(a, [i], {}, cycles=50)))
    program = connect(src, dst).compile(cost_model=PinnedCosts())
    full, steady = both(program)
    assert figures(steady) == figures(full)
    assert not steady.steady_state.extrapolated
    assert steady.steady_state.note.startswith("no steady state: ")
    assert steady.steady_state.note.endswith("; this is the full run.")
    with pytest.raises(PtortValueError) as e:
        program.execute(steady_state=True, tiles=10**6)
    assert "execute(steady_state=True, tiles=1,000,000) found no steady state to extrapolate from" in str(e.value)
    assert "a full run has only the workload's 300 tiles" in str(e.value)


def test_a_workload_without_a_tile_loop_is_run_in_full():
    a = kernel(name="a", cycles=5)(lambda: None)
    ch = Channel(name="c", depth=1)
    src = process("src").produces(ch).body_func(lambda: [send(ch, task(a, [i], {})) for i in range(20)])
    dst = process("dst").consumes(ch).body(consume(ch, lambda i: task(a, [i], {})))
    program = connect(src, dst).compile(cost_model=PinnedCosts())
    full, steady = both(program)
    assert figures(steady) == figures(full)
    assert "no tile loop" in steady.steady_state.note


@pytest.mark.parametrize("kwargs, error, text", [
    (dict(steady_state=1), PtortTypeError, "execute(steady_state=...) must be True or False, got int 1."),
    (dict(tiles=10), PtortValueError, "execute(tiles=...) sets the tile count of a steady-state run."),
    (dict(steady_state=True, tiles=0), PtortValueError, "execute(tiles=...) must be an int >= 1, got int 0."),
    (dict(steady_state=True, tiles=2.5), PtortValueError, "execute(tiles=...) must be an int >= 1, got float 2.5."),
])
def test_bad_steady_state_options_are_refused(kwargs, error, text):
    program = linear(10).compile(cost_model=PinnedCosts())
    with pytest.raises(error) as e:
        program.execute(**kwargs)
    assert str(e.value).startswith(text)


def test_the_tile_axes_are_put_back_after_a_steady_state_run():
    program = linear(1_000).compile(cost_model=PinnedCosts())
    program.execute(steady_state=True)
    assert program.execute().stats().task_count == 3_000


# -- what a probe costs ------------------------------------------------------------------------------------------------
def test_the_probe_keys_the_state_once_per_tile(monkeypatch):
    """A key holds every process and channel, so the probe keys the first task of each tile only (the csp pipeline
    has two tasks a tile): the period found and every figure are as before."""
    from ptort_lab.sim import steady_state

    keyed_tiles = []
    real_key = steady_state.engine_key

    def counting_key(engine, actor, tasks_so_far):
        keyed_tiles.append(tasks_so_far)
        return real_key(engine, actor, tasks_so_far)

    monkeypatch.setattr(steady_state, "engine_key", counting_key)
    program = csp_pipe(2_000).compile(compute_values=False, machine=SMALL_L2)
    full, steady = both(program)
    assert figures(steady) == figures(full)
    info = steady.steady_state
    assert info.extrapolated and info.period_tiles == 2  # (at depth 2, as bench/steady_state.py finds)
    # keys up to the repeat: one per tile up to and including the tile that repeats, never one per task
    assert len(keyed_tiles) == info.repeat_from_tile + info.period_tiles + 1


def test_a_probe_over_every_tile_is_the_fallback_run_when_no_state_repeats(monkeypatch):
    """With the default 192 MiB L2 nothing is evicted, so the L2's lines grow with the run and its state never
    repeats: the probe that ran every tile (in global time order, as every NPU run does) is the full run, and the
    fallback does not simulate it a second time. The result is the plain run's, span for span."""
    from ptort_lab.sim import runner

    program = csp_pipe(40).compile(compute_values=False)
    plain = program.execute().stats()
    plain_spans = list(program.trace().spans)
    runs = []
    real = runner.simulate

    def counting(*args, **kwargs):
        runs.append(kwargs.get("opts", args[2] if len(args) > 2 else None))
        return real(*args, **kwargs)

    monkeypatch.setattr(runner, "simulate", counting)
    monkeypatch.setattr("ptort_lab.program.simulate", counting)
    steady = program.execute(steady_state=True).stats()
    assert steady.steady_state.note == ("no steady state: the run's state did not repeat within 40 tiles; this is "
                                        "the full run.")
    assert len(runs) == 1  # the probe, kept
    assert figures(steady) == figures(plain) and list(program.trace().spans) == plain_spans


def test_the_summary_says_how_the_figures_were_found():
    """A steady-state run's summary ends with its note (extrapolated, or the full run), so a printed summary never
    passes extrapolated figures off as a run's."""
    program = linear(2_000).compile(cost_model=PinnedCosts())
    stats = program.execute(steady_state=True).stats()
    assert stats.summary().splitlines()[-1] == "  " + stats.steady_state.note
    assert stats.steady_state.note.startswith("steady state: the run repeats every 1 tile(s) (100 cycles) from tile ")
    assert "steady state" not in program.execute().stats().summary()
