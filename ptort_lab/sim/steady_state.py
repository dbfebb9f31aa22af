"""Steady state, exactly: a run over a periodic workload reaches a periodic regime; find it and extrapolate.

``program.execute(steady_state=True)`` (optionally ``tiles=N``) runs the workload's tile axis (its largest Dense
axis: every loop over that many points) at a few small sizes instead of the full one:

1. A probe run (``PROBE_TILES`` tiles, then more) records, at the start of each tile's first task, the engine's
   state normalised to the starting process's clock (``engine_key``): each process's relative clock, pending work
   and place in its body (the generator frames), each channel's free-slot times, tokens in flight and waiters, the
   run queue, and the cost model's own state (``pricer_key``: pinned costs have none; the NPU model's pipes,
   buffers, HBM/L2 pools and lines). Times before the earliest live clock are clamped to it (every use of a time
   is a max with a clock). When the state at the first task of tile ``x_k`` equals that at the first task of tile
   ``x_j``, the run from there on is the run from ``x_j`` shifted in time: the period is ``p = x_k - x_j`` tiles.
2. Then ``makespan(n + p) = makespan(n) + D`` for every ``n > x_k`` (the run of n + p tiles, from ``x_k`` on, is
   the run of n tiles from ``x_j`` on, shifted), and so for every additive figure of the run (busy cycles per stage,
   pipe and core, overlap, stall cycles, bytes, tasks). Three full runs at ``n0, n0 + p, n0 + 2p`` tiles (``n0 > x_k``,
   ``n0 = N mod p``) give the figures and their per-period step; the two steps must agree (else the run is not
   periodic after all and the full run is used). ``N``'s figures are ``n0``'s plus ``(N - n0) / p`` steps, exactly.

The trace kept is that of the ``n0``-tile run (the first periods and the drain: every span of it exact);
``program.stats()`` gives the figures of the ``N``-tile run, and ``stats().steady_state`` says how they were
found. Where no state repeats within ``MAX_PROBE_TILES`` (or the workload's own size), the full run is used and the
note says so (a full run is impossible past the workload's own size: then it raises); a probe that ran every tile
is that full run when its engine ran in global time order anyway (``CostModel.time_ordered``: the NPU model).

Steady-state runs are timing-only (no values are computed: they could not be for tiles never run).
"""
from __future__ import annotations

import dataclasses
import threading
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterator

from ..dsl.axes import Dense, DenseDyn
from ..dsl.tree import walk
from ..dsl.workload import Workload
from ..errors import PtortValueError
from .cost_model import CostModel, PinnedCosts
from .fifo import Actor
from .stats import ProgramStats, SpanTotals, lane_ratios, memory_counters
from .validation import error_band, model_notes

# (tiles, stride): probe sizes, tried in turn until a state repeats, keying the state at every stride-th tile (a
# multiple of the true period is a period too; the NPU model's state holds every L2 line, so keys cost more there)
PROBE_TILES = ((64, 1), (512, 1), (4096, 8), (32768, 64))
MAX_PROBE_TILES = 32768
_resizing = threading.Lock()  # the tile axes are resized in place for the probe runs: one steady-state run at a time


@dataclass
class SteadyState:
    """How a steady-state run found its figures (``ProgramStats.steady_state``)."""

    tiles: int  # the tile count the figures are for
    period_tiles: int = 0  # p: the state repeats every p tiles (0: no repeat found)
    period_cycles: int = 0  # D: the makespan grows by D per period
    repeat_from_tile: int = 0  # x_j: the first tile of the repeating state
    traced_tiles: int = 0  # n0: the tiles of the run whose trace is kept
    extrapolated: bool = False
    note: str = ""


class _Found(Exception):
    """Raised out of a probe run when the state repeats: (x_j, x_k) tiles."""

    def __init__(self, first: int, again: int) -> None:
        super().__init__(first, again)
        self.first, self.again = first, again


# -- the tile axis ---------------------------------------------------------------------------------------------------
def tile_axes(workload: Workload) -> tuple[int, list[Any]]:
    """(size, axes): the workload's largest static loop size and every Dense/DenseDyn axis of that size."""
    found: list[Any] = []
    roots = [workload] + [p.workload for p in getattr(workload, "processes", ()) or ()]
    for root in roots:
        for node in walk(root):
            for axis in getattr(node, "fields", {}).get("axes", ()) or ():
                if isinstance(axis, (Dense, DenseDyn)) and isinstance(axis.size, int):
                    found.append(axis)
    if not found:
        return 0, []
    size = max(a.size for a in found)
    unique: dict[int, Any] = {}
    for a in found:
        if a.size == size:
            unique[id(a)] = a
    return size, list(unique.values())


@contextmanager
def resized(axes: list[Any], n: int) -> Iterator[None]:
    """The tile axes at ``n`` points for the ``with`` (put back after, whatever happens)."""
    saved = [(a, a.__dict__.get("size", _MISSING)) for a in axes]
    for a in axes:
        a.size = n
    try:
        yield
    finally:
        for a, old in saved:
            if old is _MISSING:
                del a.size
            else:
                a.size = old


_MISSING = object()


# -- the normalised state --------------------------------------------------------------------------------------------
def _pc(gen: Any) -> tuple[Any, ...]:
    """Where a step generator is in its body: (code, instruction) of each frame down its ``yield from`` chain."""
    out: list[tuple[Any, int] | None] = []
    while gen is not None:
        frame = getattr(gen, "gi_frame", None)
        if frame is None:
            out.append(None)
            break
        out.append((frame.f_code, frame.f_lasti))
        gen = getattr(gen, "gi_yieldfrom", None)
    return tuple(out)


def engine_key(engine: Any, actor: Actor, tasks_so_far: int) -> tuple[int, Hashable]:
    """(t_ref, the engine's state relative to ``t_ref``, the clock of ``actor`` about to run a task)."""
    t_ref = actor.t
    live = [p for p in engine.procs if not p.done]
    floor = min((p.t for p in live), default=t_ref)

    def r(t: int) -> int:
        return (t if t > floor else floor) - t_ref

    procs = tuple(
        None if p.done else (r(p.t), r(max(p.last_end, p.t)), p.blocked, p.wait_since - t_ref if p.blocked else 0,
                             p.retry[0] if p.retry else None, p.granted, tuple(map(r, p.grants)), _pc(p.gen))
        for p in engine.procs)
    fifos = tuple((f.fresh, tuple(map(r, f.free)), tuple(r(ts) for _, ts in f.tokens),
                   tuple(sorted((r(e[0]), r(e[1]), e[2]) for e in f.pending)) if f.pending is not None else None,
                   tuple(c.order for c in f.consumers), tuple(q.order for q in f.producers), f.producers_left)
                  for f in engine.fifos.values())
    wakeups = tuple((tuple(r(ts) for _, ts in w.tokens), tuple(c.order for c in w.consumers),
                     tuple(sorted((r(e[0]), r(e[1]), e[2]) for e in w.pending)) if w.pending is not None else None)
                    for w in engine.wakeups.values())
    queue = tuple((e[0] - t_ref, e[2].order if isinstance(e[2], Actor) else e[2].name) for e in sorted(engine._heap))
    ready = tuple(p.order for p in engine._ready)
    finished = tuple(sorted((tid - tasks_so_far, end - t_ref) for tid, end in engine.finished.items() if end > floor))
    waiters = tuple(sorted((tid - tasks_so_far, tuple(a.order for a in ws)) for tid, ws in engine.task_waiters.items()))
    flight = tuple(sorted(x - t_ref for x in engine.in_flight if x > floor))
    return t_ref, (actor.order, procs, fifos, wakeups, queue, ready, finished, waiters, flight)


def pricer_key(pricer: Any, t_ref: int, floor: int) -> Hashable | None:
    """The cost model's per-run state relative to ``t_ref`` (times before ``floor`` clamped), None when it cannot
    say: the pricer's own ``state_key(t_ref, floor)`` hook, else the NPU model's (``npu_state_key``), else () for a
    pricer that keeps no state (pinned costs)."""
    hook = getattr(pricer, "state_key", None)
    if hook is not None:
        key: Hashable | None = hook(t_ref, floor)
        return key
    if type(pricer).__name__ == "NpuRun":
        return npu_state_key(pricer, t_ref, floor)
    if isinstance(pricer, PinnedCosts) and type(pricer).task_timing is PinnedCosts.task_timing \
            and type(pricer).fixed_cycles is PinnedCosts.fixed_cycles:
        return ()  # a fixed delay per task: no state
    return None


def npu_state_key(run: Any, t_ref: int, floor: int) -> Hashable | None:
    """The NPU model's run state (``costs.NpuRun``) relative to ``t_ref``: pipes' free times, buffer allocations,
    HBM/L2 bandwidth reservations and L2 lines (by age, size, ready time, dirtiness), the AIV turn; None if a part is
    missing. (The proposed ``NpuRun.state_key`` hook, kept here while the NPU model changes.)"""
    def r(t: int) -> int:
        return (t if t > floor else floor) - t_ref

    def pool(p: Any) -> tuple[Any, ...]:
        i = max(0, _last_at_or_before(p.times, floor))
        return tuple((r(t), u, h) for t, u, h in zip(p.times[i:], p.used[i:], p.holders[i:]))

    try:
        mem = run.memory
        aivs = max(1, run.machine.aiv_per_core)  # next_aiv counts a core's vector tasks; the AIV is that mod this
        pipes = tuple(sorted((k, r(t)) for k, t in run.pipe_free.items()))
        buffers = tuple(sorted((k, tuple(a.bytes for a in b.open),
                                tuple((a.bytes, r(a.end)) for a in b.closed if a.end > floor))
                               for k, b in run.pools.items()))
        lines = tuple((line.nbytes, r(line.ready), line.dirty) for line in mem.lines.values())
        return (pipes, buffers, pool(mem.hbm), pool(mem.l2), pool(mem.l2_write), lines, mem.l2_used_bytes,
                tuple(sorted((core, k % aivs) for core, k in run.next_aiv.items())), run.launched)
    except AttributeError:
        return None


def _last_at_or_before(times: list[int], t: int) -> int:
    i = 0
    for k, x in enumerate(times):
        if x <= t:
            i = k
        else:
            break
    return i


def _floor(engine: Any, t_ref: int) -> int:
    return min((p.t for p in engine.procs if not p.done), default=t_ref)


Observe = Callable[[Any, Any, Callable[..., None]], Callable[..., None]]


def detector(stride: int = 1, max_states: int = 200_000) -> Observe:
    """The probe's ``RunOptions.observe``: wraps ``run_task`` to key the state at the start of each tile's first task
    (in global time order); raises _Found at the first repeat (at a later tile), or stops keying (a non-repeating
    run) after ``max_states`` keys.

    Once per tile, not at every task: a key holds every process, channel and pricer part, so keying every task of a
    many-process pipeline (flash attention: 6 processes x 24 cores) cost ~20x the run itself, which is what a probe
    that finds no repeat then adds to the full run. In a periodic regime the first task of tile ``x + p`` starts in
    the state of the first task of tile ``x``, shifted, so the repeats found are the same kind as before."""
    def observe(engine: Any, pricer: Any, run_task: Callable[..., None]) -> Callable[..., None]:
        # Keyed in global time order: a run-until-block engine runs one process far ahead of the others, whose
        # relative clocks then never repeat; the times are the same in either order (engine.py).
        engine._require_time_order()
        pipeline = engine.fifos or None
        seen: dict[Hashable, int] = {}
        keyed_tiles: set[int] = set()
        count = [0]

        def keyed(task: Any, actor: Actor) -> None:
            n = count[0]
            count[0] = n + 1
            tile = task.params[0] if task.params else None
            if tile.__class__ is int and tile % stride == 0 and tile not in keyed_tiles \
                    and len(keyed_tiles) < max_states:
                keyed_tiles.add(tile)
                # task ids: a pipeline's are given in run order (this is the n-th), a data-parallel run's beforehand
                t_ref, key = engine_key(engine, actor, task.id if pipeline is None else n)
                extra = pricer_key(pricer, t_ref, _floor(engine, t_ref))
                if extra is None:
                    raise _Unsupported(f"the cost model's per-run state ({type(pricer).__name__}) has no state_key "
                                       "hook, so its state cannot be compared")
                full = (key, extra, task.kernel)
                first = seen.get(full)
                if first is not None and tile > first:
                    raise _Found(first, tile)
                if first is None:
                    seen[full] = tile
            run_task(task, actor)

        return keyed

    return observe


class _Unsupported(Exception):
    """The run's state cannot be normalised (a cost model without the hook)."""


# -- the figures -----------------------------------------------------------------------------------------------------
@dataclass
class Figures:
    """The additive figures of one run (what ``compute_stats`` turns into ProgramStats), in cycles and counts."""

    makespan: int
    tasks: int
    lanes: dict[tuple[int, str], int]
    cores: dict[int, int]
    stages: dict[str, int]
    multi: int
    stalls: dict[str, int]
    bytes_moved: int
    memory: dict[str, int]  # the cost model's GM traffic counters (stats.memory_counters), {} when it keeps none

    def fields(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def figures(run: Any) -> Figures:
    """The additive figures of a finished Run (from its spans, or its totals when it kept no trace)."""
    trace = run.trace
    totals = run.totals if run.totals is not None else SpanTotals.of(trace.spans)
    names = list(trace.processes) if trace.mode == "pipeline" else list(totals.stages)
    return Figures(trace.makespan, run.task_count, dict(totals.lanes), dict(sorted(totals.cores.items())),
                   {k: totals.stages.get(k, 0) for k in names}, totals.multi, dict(run.stall_cycles),
                   totals.bytes_moved, memory_counters(run.pricing))


def _step(a: Any, b: Any) -> Any:
    """b - a, field by field (dicts by key; a key missing on one side is refused: not the same shape)."""
    if isinstance(a, dict):
        if a.keys() != b.keys():
            raise ValueError("keys differ")
        return {k: _step(a[k], b[k]) for k in a}
    return b - a


def _add(a: Any, step: Any, m: int) -> Any:
    if isinstance(a, dict):
        return {k: _add(a[k], step[k], m) for k in a}
    return a + m * step


def extrapolate(f0: Figures, f1: Figures, f2: Figures, m: int) -> Figures | None:
    """f0 plus m per-period steps, if the steps f1 - f0 and f2 - f1 agree (else None: not periodic)."""
    try:
        s1 = _step(f0.fields(), f1.fields())
        s2 = _step(f1.fields(), f2.fields())
    except ValueError:
        return None
    if s1 != s2:
        return None
    return Figures(**_add(f0.fields(), s1, m))


def stats_of(f: Figures, mode: str, clock_hz: float) -> ProgramStats:
    """ProgramStats from figures, by the formulas of ``stats.compute_stats`` (so equal figures give equal stats)."""
    total = f.makespan
    pct = (lambda c: 100.0 * c / total) if total else (lambda c: 0.0)
    lanes = lane_ratios(f.lanes, pct)
    return ProgramStats(total_cycles=total, time_us=total / clock_hz * 1e6, task_count=f.tasks, mode=mode,
                        clock_hz=clock_hz, lane_busy_pct=lanes, core_busy_pct={k: pct(c) for k, c in f.cores.items()},
                        stage_busy_pct={k: pct(c) for k, c in f.stages.items()}, overlap_pct=pct(f.multi),
                        stall_cycles=dict(f.stalls), bytes_moved=f.bytes_moved, error_band=error_band(lanes),
                        notes=model_notes(lanes), memory=dict(f.memory))


# -- the run ---------------------------------------------------------------------------------------------------------
Simulate = Callable[..., Any]


def run_steady_state(workload: Workload, cost: CostModel, opts: Any, simulate: Simulate,
                     tiles: int | None = None) -> tuple[Any, ProgramStats, SteadyState]:
    """(the run whose trace is kept, the figures' ProgramStats for ``tiles`` tiles, how they were found)."""
    size, axes = tile_axes(workload)
    target = size if tiles is None else tiles
    if not axes:
        return _fallback(workload, cost, opts, simulate, size, target if tiles is not None else 0,
                         "the workload has no tile loop (a for_each or parallel_for over Dense[n]()) to extrapolate")
    probe_opts = dataclasses.replace(opts, compute_values=False)
    with _resizing:
        found, why, whole = _probe(workload, cost, probe_opts, simulate, axes, size)
        if found is not None:
            first, again = found
            p = again - first
            n0 = again + 1 + p
            n0 += (target - n0) % p
            if target >= n0 + 2 * p and n0 + 2 * p <= size:
                runs = []
                for n in (n0, n0 + p, n0 + 2 * p):
                    with resized(axes, n):
                        runs.append(simulate(workload, cost, probe_opts))
                m = (target - n0) // p
                fs = [figures(r) for r in runs]
                out = extrapolate(fs[0], fs[1], fs[2], m)
                if out is not None:
                    period = fs[1].makespan - fs[0].makespan
                    info = SteadyState(target, p, period, first, n0, True,
                                       f"steady state: the run repeats every {p} tile(s) ({period:,} cycles) from "
                                       f"tile {first}; figures for {target:,} tiles extrapolated "
                                       f"exactly from runs of {n0}, {n0 + p} and {n0 + 2 * p} tiles; "
                                       + (f"the trace is the {n0}-tile run." if getattr(opts, "keep_trace", True)
                                          else "no trace kept (keep_trace=False)."))
                    return runs[0], stats_of(out, runs[0].trace.mode, runs[0].trace.clock_hz), info
                why = f"the figures of {n0}, {n0 + p} and {n0 + 2 * p} tiles do not grow by equal steps"
            elif target < n0 + 2 * p:
                why = f"{target:,} tiles is too few to extrapolate (the period is {p} tile(s) from tile {first})"
            else:
                why = f"the workload has {size:,} tiles, fewer than the {n0 + 2 * p} the extrapolation runs"
    return _fallback(workload, cost, opts, simulate, size, target, why, whole)


def _probe(workload: Workload, cost: CostModel, opts: Any, simulate: Simulate, axes: list[Any],
           size: int) -> tuple[tuple[int, int] | None, str, Any]:
    """((x_j, x_k), "", None) at the first repeat of the state in a probe run, else (None, why, the probe's run when
    it was the whole workload's full run, else None)."""
    tried = 0
    run = None
    for n, stride in PROBE_TILES:
        n = min(n, size, MAX_PROBE_TILES)
        if n <= tried:
            break
        tried = n
        try:
            with resized(axes, n):
                run = simulate(workload, cost, dataclasses.replace(opts, observe=detector(stride)))
        except _Found as hit:
            return (hit.first, hit.again), "", None
        except _Unsupported as e:
            return None, str(e), None
    # A probe of every tile that found no repeat is the full run itself when the engine ran in global time order
    # anyway (a cost model whose prices depend on other tasks: the NPU model): the fallback need not run it again.
    whole = run if tried == size and cost.time_ordered else None
    return None, f"the run's state did not repeat within {tried:,} tiles", whole


def _fallback(workload: Workload, cost: CostModel, opts: Any, simulate: Simulate, size: int, target: int,
              why: str, whole: Any = None) -> tuple[Any, ProgramStats, SteadyState]:
    """The full run, when no steady state was found (refused past the workload's own size); ``whole``: the probe's
    run of every tile, when it is that run already."""
    if target != size:
        built = f"the workload's {size:,} tiles" if size else "the tiles the workload lists"
        raise PtortValueError(f"execute(steady_state=True, tiles={target:,}) found no steady state to extrapolate "
                              f"from: {why}; and a full run has only {built}.",
                              hint="Run it in full with execute() at the size you built, or make the per-tile work "
                                   "the same for every tile (no per-tile costs or shapes).")
    run = whole if whole is not None else simulate(workload, cost, dataclasses.replace(opts, compute_values=False))
    f = figures(run)
    info = SteadyState(target, traced_tiles=size, note=f"no steady state: {why}; this is the full run.")
    return run, stats_of(f, run.trace.mode, run.trace.clock_hz), info


__all__ = ["SteadyState", "run_steady_state", "engine_key", "pricer_key", "npu_state_key", "tile_axes", "resized",
           "figures", "extrapolate", "stats_of", "PROBE_TILES", "MAX_PROBE_TILES"]
