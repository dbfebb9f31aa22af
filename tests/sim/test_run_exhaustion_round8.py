"""Resource exhaustion, round 8 (hunt8a): data-parallel runs held to MAX_RUN_BYTES, a run that runs out of host memory
let go of before its error is built (and told what to change), a chain of thousands of processes on one core checked
in linear time, and steady-state tile counts whose extrapolated figures pass 2**53 refused."""
from __future__ import annotations

import time

import pytest

import ptort_lab.sim.engine as engine_module
import ptort_lab.sim.limits as limits_module
import ptort_lab.sim.runner as runner_module
from ptort_lab import (
    Channel,
    Dense,
    DType,
    In,
    Out,
    P,
    PinnedCosts,
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
from ptort_lab.errors import KernelExecutionError, PtortValueError, RunLimitError
from ptort_lab.sim.engine import Engine
from ptort_lab.sim.runner import Run
from tests.source_lines import here, located

T = Tile[16, 16, DType.F32]


@kernel
def add_twice(src: In[T], dst: Out[T]):
    tl.store(dst, tl.add(tl.load(src), tl.load(src)))


pinned = kernel(name="pinned", cycles=10)(lambda: None)


def _tiles(n: int):
    X, Y = Tensor(shape=(n, 16, 16)), Tensor(shape=(n, 16, 16))

    @workload
    def tiles():
        for t in P(Dense[n]()):
            add_twice[t](src=X[t], dst=Y[t])
    return tiles()


def _pinned_tiles(n: int):
    @workload
    def pinned_tiles():
        for t in P(Dense[n]()):
            pinned[t]()
    return pinned_tiles()


# -- item 2: a data-parallel run is held to MAX_RUN_BYTES --------------------------------------------------------------
def test_a_data_parallel_run_past_the_memory_limit_stops_with_the_tasks_so_far(monkeypatch):
    monkeypatch.setattr(engine_module, "MAX_RUN_BYTES", 1 << 20)
    monkeypatch.setattr(limits_module, "CHECK_EVERY", 1000)
    program = _pinned_tiles(20_000).compile(compute_values=False)
    line = here() + 2
    with pytest.raises(RunLimitError) as e:
        program.execute()
    located(e, line)
    assert e.value.what.startswith("Run limit: the run holds about ")
    assert " of tasks and spans after 1,999 tasks (simulated time t=19,990 cycles), more than its limit of 1 MiB; " \
           "going on would exhaust host memory." in e.value.what
    assert e.value.hint == ("Run fewer tiles, or execute(keep_trace=False), which keeps only the figures of stats() "
                            "(no trace and no tasks); if the host has the memory, raise the limit: "
                            "ptort_lab.sim.engine.MAX_RUN_BYTES = 2_097_152 (now 1_048_576).")


def test_a_data_parallel_run_is_not_held_to_the_step_limit_and_stats_only_is_not_refused(monkeypatch):
    """MAX_STEPS is for pipelines that may loop; a run that keeps no trace holds little, whatever its length."""
    monkeypatch.setattr(engine_module, "MAX_STEPS", 1000)
    monkeypatch.setattr(limits_module, "CHECK_EVERY", 1000)
    assert _pinned_tiles(5000).compile(compute_values=False).execute().stats().task_count == 5000
    monkeypatch.setattr(engine_module, "MAX_RUN_BYTES", 8 << 20)  # (a trace of 20,000 tasks holds ~13 MiB)
    stats = _pinned_tiles(20_000).compile(compute_values=False).execute(keep_trace=False).stats()
    assert (stats.task_count, stats.total_cycles) == (20_000, 200_000)


# -- items 2 and 7: running out of host memory ------------------------------------------------------------------------
def _out_of_memory_at_tile_2(monkeypatch):
    def failing(real):
        def ir_of(task):  # stands in for the host running out of memory while tile 2 runs (NpuRun may be compiled)
            if task.params and task.params[0] == 2:
                raise MemoryError
            return real(task)
        return ir_of
    monkeypatch.setattr(runner_module, "_ir_of", failing(runner_module._ir_of))  # timing-only runs
    monkeypatch.setattr(runner_module.numerics, "ir_for", failing(runner_module.numerics.ir_for))  # runs with values


def _frames(e: BaseException) -> list:
    out = []
    while e is not None:
        tb = e.__traceback__
        while tb is not None:
            out.append(tb.tb_frame)
            tb = tb.tb_next
        e = e.__cause__
    return out


@pytest.mark.parametrize("values, keep_trace, hint", [
    (True, True, "Run timing-only with compile(compute_values=False), which computes no values, or use smaller tiles "
                 "or tensors."),
    (False, True, "This run is timing-only already: what it holds is its trace. Run it with "
                  "execute(keep_trace=False), which keeps only the figures of stats(), or run fewer tiles."),
    (False, False, "This run is timing-only and keeps no trace already: run fewer or smaller tiles, or free host "
                   "memory for it (other runs' results, large objects of your own)."),
])
def test_running_out_of_host_memory_lets_go_of_the_run_and_says_what_to_change(monkeypatch, values, keep_trace,
                                                                                hint):
    program = _tiles(4).compile(compute_values=values)
    _out_of_memory_at_tile_2(monkeypatch)
    with pytest.raises(KernelExecutionError) as e:
        program.execute(keep_trace=keep_trace)
    assert e.value.what == "kernel 'add_twice' (tile 2) ran out of host memory while it ran."
    assert e.value.hint.startswith(hint)  # (then, when it computes values: its outputs are left unchanged)
    assert e.value.where is not None and e.value.where.code == "add_twice[t](src=X[t], dst=Y[t])"
    # the error's traceback (a notebook keeps the last one) no longer holds the run: its frames were cleared
    held = [(f.f_code.co_name, name) for f in _frames(e.value) for name, v in f.f_locals.items()
            if isinstance(v, (Run, Engine))]
    assert held == []


def test_a_run_sets_memory_aside_and_gives_it_back_when_a_task_runs_out(monkeypatch):
    """The room the error is built in (RESERVE_BYTES): given back before anything else is allocated."""
    reserves: list = []
    real = runner_module._simulate

    def simulate(*args):
        reserves.append(args[-1])
        assert [len(b) for b in args[-1]] == [runner_module.RESERVE_BYTES]
        return real(*args)
    monkeypatch.setattr(runner_module, "_simulate", simulate)
    _out_of_memory_at_tile_2(monkeypatch)
    with pytest.raises(KernelExecutionError):
        _tiles(4).compile(compute_values=False).execute()
    assert reserves == [[]]


# -- item 6: many processes on one core ----------------------------------------------------------------------------
def test_a_chain_of_thousands_of_processes_on_one_core_is_checked_in_linear_time():
    """The NPU model's check of on-chip channel slots indexes the processes by channel once (it scanned every process
    for every channel: 4000 processes took 13 s)."""
    n = 4000
    chs = [Channel(name=f"c{i}", depth=2) for i in range(n - 1)]
    procs = [process("p0").produces(chs[0]).body(for_each(Dense[4](), lambda t: send(chs[0], task(pinned, [t], {}))))]

    def relay(i: int):
        return process(f"p{i}").consumes(chs[i - 1]).produces(chs[i]).body(
            consume(chs[i - 1], lambda t: send(chs[i], task(pinned, [t], {}))))
    procs.extend(relay(i) for i in range(1, n - 1))
    procs.append(process(f"p{n - 1}").consumes(chs[-1]).body(consume(chs[-1], lambda t: task(pinned, [t], {}))))
    program = connect(*procs).place("shared").compile(compute_values=False)
    start = time.perf_counter()
    stats = program.execute().stats()
    assert time.perf_counter() - start < 5
    assert stats.task_count == 4 * n


# -- item 9: steady-state tile counts ---------------------------------------------------------------------------------
def _steady_program():
    load, work = kernel(name="load", cycles=100)(lambda: None), kernel(name="work", cycles=60)(lambda: None)
    ch = Channel(name="ch", depth=2)
    src = process("src").produces(ch).body(for_each(Dense[10_000](), lambda t: send(ch, task(load, [t], {}))))
    dst = process("dst").consumes(ch).body(consume(ch, lambda t: task(work, [t], {})))
    return connect(src, dst).compile(cost_model=PinnedCosts())


def test_steady_state_figures_past_2_53_are_refused_naming_the_largest_tile_count():
    program = _steady_program()
    line = here() + 2
    with pytest.raises(PtortValueError) as e:
        program.execute(steady_state=True, tiles=90_071_992_547_410)
    located(e, line)
    assert e.value.what == (
        "execute(steady_state=True, tiles=90,071,992,547,410) extrapolates a run that ends at cycle "
        "9,007,199,254,741,060, past 2**53 (9,007,199,254,740,992): a trace keeps times as JSON numbers, exact only "
        "up to 2**53, so its figures could not be kept (a plain run this long is refused the same way).")
    assert e.value.hint == (
        "Pass tiles=90,071,992,547,409 or fewer: the run repeats every 1 tile(s) (100 cycles), and "
        "90,071,992,547,409 tiles end within 2**53. Or lower the cycles its tasks take (task(cycles=...), "
        "@kernel(cycles=...), the machine's cycle constants).")
    stats = program.execute(steady_state=True, tiles=90_071_992_547_409).stats()
    assert stats.total_cycles == 9_007_199_254_740_960


@pytest.mark.parametrize("tiles, shown", [(10**30, "more than 2**99"), (10**400, "more than 2**1328"),
                                          (2**53 + 1, "9,007,199,254,740,993")])
def test_a_steady_state_tile_count_past_2_53_is_refused(tiles, shown):
    program = _steady_program()
    line = here() + 2
    with pytest.raises(PtortValueError) as e:
        program.execute(steady_state=True, tiles=tiles)
    located(e, line)
    assert e.value.what == (
        f"execute(steady_state=True, tiles={shown}) is past 2**53 (9,007,199,254,740,992) tiles: a trace keeps times "
        "and counts as JSON numbers, exact only up to 2**53, so its figures could not be kept.")
    assert e.value.hint == "Pass the tile count the figures are for, at most 2**53, e.g. tiles=10**9."
