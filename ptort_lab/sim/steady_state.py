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
note says so (a full run is impossible past the workload's own size: then it raises; fewer tiles than the workload
has are run directly, its tile loop cut to them); a probe that ran every tile is that full run when its engine ran
in global time order anyway (``CostModel.time_ordered``: the NPU model). A probe that fails (a join over loops of
other sizes, an event of an absolute tile) is no verdict on the program: the full run is used, and its error is
the one raised.

The state holds no cost and no branch taken, so work that depends on the absolute tile index (``cond(i < 5000,
...)``, a ``cycles=`` function, a loop sized by the tile) is not seen by runs that never reach those tiles. Such
values are evaluated at every tile (``tile_values``): the period found must be theirs too, from ``x_j`` on, or it is
the full run (where they cannot be evaluated, it is the full run as well).

The short runs cut the tile loops for themselves only (``axes.run_sizes``, a context variable): the workload's
axes never change, so a run of the same workload in another thread lists every tile.

Steady-state runs are timing-only (no values are computed: they could not be for tiles never run).
"""
from __future__ import annotations

import dataclasses
import functools
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterator, Mapping

from ..dsl import steps as steps_module
from ..dsl.axes import Dense, DenseDyn, run_sizes
from ..dsl.commands import AFTER
from ..dsl.tasks import MAX_CYCLES
from ..dsl.tree import walk
from ..dsl.workload import Workload
from ..errors import PtortError, PtortValueError
from .cost_model import CostModel, PinnedCosts
from .engine import TaskWait
from .fifo import Actor
from .stats import ProgramStats, SpanTotals, lane_ratios, memory_counters, model_use
from .tile_values import TileValues, Why, roots, tile_values
from .trace_files import WholeRun
from .validation import ModelUse, error_band, model_notes

# (tiles, stride): probe sizes, tried in turn until a state repeats, keying the state at every stride-th tile (a
# multiple of the true period is a period too; the NPU model's state holds every L2 line, so keys cost more there)
PROBE_TILES = ((64, 1), (512, 1), (4096, 8), (32768, 64))
MAX_PROBE_TILES = 32768
# the most tasks a data-parallel run's dealer may hold not started (queued for a core, or looked ahead at) for the
# state to be keyed (``_dealer_key``)
MAX_DEALT_KEYED = 256


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
    for root in roots(workload):
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
    """The tile axes at ``n`` points for the runs of the ``with``, in this context only (``axes.run_sizes``): the
    axes themselves never change, so a run of the same workload in another thread still lists every tile."""
    sizes = dict(run_sizes.get() or {})
    sizes.update((id(a), n) for a in axes)
    token = run_sizes.set(sizes)
    try:
        yield
    finally:
        run_sizes.reset(token)


# -- the normalised state --------------------------------------------------------------------------------------------
def _pc(gen: Any, cut: Mapping[int, int]) -> tuple[Any, ...]:
    """Where a step generator is in its body: (code, instruction, loop point) of each frame down its ``yield from``
    chain (``steps.loop_point``: ``cut`` holds the axes the run's tile loops are cut at)."""
    out: list[tuple[Any, int, Any] | None] = []
    while gen is not None:
        frame = getattr(gen, "gi_frame", None)
        if frame is None:
            out.append(None)
            break
        # (a loop the short runs do not cut - another size than the tile loop, outside it: a second producer's 10
        # tiles, the 999 tiles of an uneven split - is part of the state with its variables' values: without them
        # the state at tile 2 and tile 3 looked alike while such a loop still ran, and a repeat was found that the
        # full run never had; a tile loop's own point is the tile, which the state is relative to)
        out.append((frame.f_code, frame.f_lasti, steps_module.loop_point(frame, cut)))
        gen = getattr(gen, "gi_yieldfrom", None)
    return tuple(out)


def engine_key(engine: Any, actor: Actor, tasks_so_far: int) -> tuple[int, Hashable]:
    """(t_ref, the engine's state relative to ``t_ref``, the clock of ``actor`` about to run a task)."""
    t_ref = actor.t
    live = [p for p in engine.procs if not p.done]
    floor = min((p.t for p in live), default=t_ref)

    def r(t: int) -> int:
        return (t if t > floor else floor) - t_ref

    def waits(blocked: Any) -> Any:  # (a wait on a task: its id relative to the task keyed)
        return ("task", blocked.tid - tasks_so_far) if blocked.__class__ is TaskWait else blocked

    cut = run_sizes.get() or {}
    procs = tuple(
        # (a finished process's last task may still end after the live clocks: it sets the makespan)
        ("done", r(p.last_end)) if p.done else (r(p.t), r(max(p.last_end, p.t)), waits(p.blocked),
                                                p.wait_since - t_ref if p.blocked else 0,
                                                p.retry[0] if p.retry else None, p.granted, tuple(map(r, p.grants)),
                                                _pc(p.gen, cut))
        for p in engine.procs)
    fifos = tuple((f.fresh, tuple(map(r, f.free)), tuple(r(ts) for _, ts in f.tokens),
                   tuple(sorted((r(e[0]), r(e[1]), e[2]) for e in f.pending)) if f.pending is not None else None,
                   tuple(c.order for c in f.consumers), tuple(q.order for q in f.producers), f.producers_left,
                   _hops_key(f.hops), None if f.closed_at is None else r(f.closed_at))
                  for f in engine.fifos.values())
    wakeups = tuple((tuple(r(ts) for _, ts in w.tokens), tuple(c.order for c in w.consumers),
                     tuple(sorted((r(e[0]), r(e[1]), e[2]) for e in w.pending)) if w.pending is not None else None,
                     _hops_key(w.hops))
                    for w in engine.wakeups.values())
    queue = tuple((e[0] - t_ref, e[2].order if isinstance(e[2], Actor) else e[2].name) for e in sorted(engine._heap))
    ready = tuple(p.order for p in engine._ready)
    finished = tuple(sorted((tid - tasks_so_far, end - t_ref) for tid, end in engine.finished.items() if end > floor))
    waiters = tuple(sorted((tid - tasks_so_far, tuple(a.order for a in ws)) for tid, ws in engine.task_waiters.items()))
    flight = tuple(sorted(x - t_ref for x in engine.in_flight if x > floor))
    dealt = _dealer_key(engine.dealer, tasks_so_far, r)
    return t_ref, (actor.order, procs, fifos, wakeups, queue, ready, finished, waiters, flight, dealt)


def _dealer_key(dealer: Any, tasks_so_far: int, r: Callable[[int], int]) -> Hashable:
    """A data-parallel run's dealer (``runner._Dealer``): how far ahead of the task keyed it has read the stream,
    and the tasks read but not started - each core's queue and the work-stealing look-ahead - by id relative to the
    task keyed, with their gates (task ids relative, cycles by ``r``). None for a pipeline."""
    if dealer is None:
        return None
    if sum(map(len, dealer.queues.values())) + len(dealer.ahead) > MAX_DEALT_KEYED:
        # A fixed dispatch that hands one core a long run of tasks queues the others' behind it: keying every one
        # at every tile costs tiles x queue (7.6 GB at 20,000 tiles). A state holding that many never repeats in a
        # run the probe could extrapolate from anyway: it is keyed as unlike any other.
        return object()

    def gates(gs: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple((g[0], tuple(i - tasks_so_far for i in g[1]), *g[2:]) if g[0] is AFTER
                     else (g[0], r(g[1]), *g[2:]) for g in gs)

    queues = tuple((c, tuple((t.id - tasks_so_far, t.kernel, gates(g)) for t, g in q))
                   for c, q in sorted(dealer.queues.items()))
    ahead = tuple((u.task.id - tasks_so_far, u.task.kernel, gates(u.gates), None if u.known is None else r(u.known))
                  for u in dealer.ahead)
    read = dealer.dealt - tasks_so_far if dealer.core_of is not None else None  # (work stealing counts no deals)
    return read, queues, ahead


def _hops_key(hops: Any) -> Hashable:
    """Who sent the items a channel holds and who freed its free slots, in order, when its hops' latencies
    differ (``fifo.Hops``: who takes an item then decides when it is seen); None otherwise."""
    return None if hops is None else (tuple(hops.senders), tuple(hops.freers))


def pricer_key(pricer: Any, t_ref: int, floor: int, tile: int = 0) -> Hashable | None:
    """The cost model's per-run state relative to ``t_ref`` (times before ``floor`` clamped), None when it cannot
    say: the pricer's own ``state_key(t_ref, floor)`` hook, else the NPU model's (``npu_state_key``), else () for a
    pricer that keeps no state (pinned costs)."""
    hook = getattr(pricer, "state_key", None)
    if hook is not None:
        key: Hashable | None = hook(t_ref, floor)
        return key
    if type(pricer).__name__ == "NpuRun":
        return npu_state_key(pricer, t_ref, floor, tile)
    if isinstance(pricer, PinnedCosts) and type(pricer).task_timing is PinnedCosts.task_timing \
            and type(pricer).fixed_cycles is PinnedCosts.fixed_cycles:
        return ()  # a fixed delay per task: no state
    return None


def npu_state_key(run: Any, t_ref: int, floor: int, tile: int = 0) -> Hashable | None:
    """The NPU model's run state (``npu_run.NpuRun``) relative to ``t_ref``: pipes' free times, buffer allocations,
    HBM/L2 bandwidth reservations and L2 lines (by age, the tile they hold counted from ``tile``, size, ready time,
    dirtiness), the AIV turn; None if a part is missing. (The proposed ``NpuRun.state_key`` hook, kept here while
    the NPU model changes.)"""
    def r(t: int) -> int:
        return (t if t > floor else floor) - t_ref

    def pool(p: Any) -> tuple[Any, ...]:
        i = max(0, _last_at_or_before(p.times, floor))
        return tuple((r(t), u, h) for t, u, h in zip(p.times[i:], p.used[i:], p.holders[i:]))

    try:
        mem = run.memory
        aivs = max(1, run.machine.aiv_per_core)  # next_aiv counts a core's vector tasks; the AIV is that mod this
        pipes = tuple(sorted((k, r(t)) for k, t in run.pipe_free.items()))
        # (with their starts: a new allocation's search counts those that start after its own time)
        buffers = tuple(sorted((k, tuple((a.bytes, r(a.start)) for a in b.open),
                                tuple((a.bytes, r(a.start), r(a.end)) for a in b.closed if a.end > floor))
                               for k, b in run.pools.items()))
        # which tile each line holds, counted from the tile keyed (``_line_key``): lines of one size and state are
        # not interchangeable (a tile every tile reads, Acc[0], must be the same line a period later, not X[t - 3])
        lines = tuple((_line_key(region, tile), line.nbytes, r(line.ready), line.dirty)
                      for region, line in mem.lines.items())
        return (pipes, buffers, pool(mem.hbm), pool(mem.l2), pool(mem.l2_write), lines, mem.l2_used_bytes,
                tuple(sorted((core, k % aivs) for core, k in run.next_aiv.items())), run.launched)
    except AttributeError:
        return None


def _line_key(region: Any, tile: int) -> Hashable:
    """An L2 line's region with its leading index counted from ``tile``: ``X[t]`` keyed at tile ``t`` is ``X[+0]``
    at every tile, so a stream of tiles repeats; a tile the run uses at every tile (``Acc[0]``) drifts (``Acc[-t]``),
    so a state holding it never repeats and the run is the full one (whose evictions of it a repeat would miss)."""
    if region.__class__ is tuple and len(region) >= 2 and region[1].__class__ is tuple and region[1] \
            and region[1][0].__class__ is int:
        index = region[1]
        return (region[0], (index[0] - tile, *index[1:]), *region[2:])
    return region  # type: ignore[no-any-return]


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


def detector(stride: int = 1, max_states: int = 200_000, start: int = 0, every: int = 1,
             tile_names: tuple[str, ...] = ()) -> Observe:
    """The probe's ``RunOptions.observe``: wraps ``run_task`` to key the state at the start of each tile's first task
    (in global time order); raises _Found at the first repeat (at a later tile), or stops keying (a non-repeating
    run) after ``max_states`` keys. A task's tile is the value of its variable named in ``tile_names`` (the tile
    loop's, or a consume's that receives it: ``TileValues.tile_names``), else its first axis value. Where the
    tiles' own work repeats only from tile ``start`` on, every ``every`` tiles (``TileValues``), only those tiles are
    keyed and only repeats a multiple of ``every`` apart count.

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
            for name in tile_names:  # (the tile index itself where the first axis value is another: t // 4, ...)
                if name in task.bindings:
                    tile = task.bindings[name]
                    break
            if tile.__class__ is int and tile % stride == 0 and tile >= start and tile not in keyed_tiles \
                    and len(keyed_tiles) < max_states:
                keyed_tiles.add(tile)
                # task ids: a pipeline's are given in run order (this is the n-th), a data-parallel run's beforehand
                t_ref, key = engine_key(engine, actor, task.id if pipeline is None else n)
                extra = pricer_key(pricer, t_ref, _floor(engine, t_ref), tile)
                if extra is None:
                    raise _Unsupported(f"the cost model's per-run state ({type(pricer).__name__}) has no state_key "
                                       "hook, so its state cannot be compared")
                full = (key, extra, task.kernel)
                first = seen.get(full)
                if first is not None and tile > first and (tile - first) % every == 0:
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
    out = Figures(**_add(f0.fields(), s1, m))
    busy = [*out.lanes.values(), *out.cores.values(), *out.stages.values(), out.multi]
    if any(b > out.makespan for b in busy):  # (what no run can have: the steps were not the run's own after all)
        return None
    return out


def stats_of(f: Figures, mode: str, clock_hz: float, use: ModelUse | None = None) -> ProgramStats:
    """ProgramStats from figures, by the formulas of ``stats.compute_stats`` (so equal figures give equal stats);
    ``use``: what the run's cost model leaned on (``stats.model_use``), for the error band and notes."""
    total = f.makespan
    pct = (lambda c: 100.0 * c / total) if total else (lambda c: 0.0)
    lanes = lane_ratios(f.lanes, pct)
    return ProgramStats(total_cycles=total, time_us=total / clock_hz * 1e6, task_count=f.tasks, mode=mode,
                        clock_hz=clock_hz, lane_busy_pct=lanes, core_busy_pct={k: pct(c) for k, c in f.cores.items()},
                        stage_busy_pct={k: pct(c) for k, c in f.stages.items()}, overlap_pct=pct(f.multi),
                        stall_cycles=dict(f.stalls), bytes_moved=f.bytes_moved, error_band=error_band(lanes, use),
                        notes=model_notes(lanes, use), memory=dict(f.memory))


# -- the run ---------------------------------------------------------------------------------------------------------
Simulate = Callable[..., Any]


@dataclass
class _Runs:
    """Timing-only runs of the workload with its tile loops cut to n tiles, for those runs only."""

    workload: Workload
    cost: CostModel
    opts: Any
    simulate: Simulate
    axes: list[Any]

    def at(self, n: int, observe: Observe | None = None) -> Any:
        opts = self.opts if observe is None else dataclasses.replace(self.opts, observe=observe)
        with resized(self.axes, n):
            run = self.simulate(self.workload, self.cost, opts)
        builder = getattr(run, "task_builder", None)
        if builder is not None:  # (the max-plus path lists its tasks when they are first read: at n tiles too)
            run.task_builder = functools.partial(_listed_at, self.axes, n, builder)
        return run


def _listed_at(axes: list[Any], n: int, builder: Callable[[], Any]) -> Any:
    with resized(axes, n):
        return builder()


@dataclass
class _Probed:
    """What the probe runs found: the repeat (x_j, x_k), else why not and the last probe's run when the fallback may
    keep it (``tiles`` tiles, run in global time order)."""

    found: tuple[int, int] | None = None
    why: Why | None = None
    run: Any = None
    tiles: int = 0


def run_steady_state(workload: Workload, cost: CostModel, opts: Any, simulate: Simulate,
                     tiles: int | None = None) -> tuple[Any, ProgramStats, SteadyState]:
    """(the run whose trace is kept, the figures' ProgramStats for ``tiles`` tiles, how they were found)."""
    if tiles is not None and tiles > MAX_CYCLES:  # (every tile takes a cycle at least, or its tasks count past it)
        raise PtortValueError(
            f"execute(steady_state=True, tiles={_count(tiles)}) is past 2**53 ({MAX_CYCLES:,}) tiles: a trace keeps "
            "times and counts as JSON numbers, exact only up to 2**53, so its figures could not be kept.",
            hint="Pass the tile count the figures are for, at most 2**53, e.g. tiles=10**9.")
    size, axes = tile_axes(workload)
    target = size if tiles is None else tiles
    runs = _Runs(workload, cost, dataclasses.replace(opts, compute_values=False), simulate, axes)
    if not axes:
        return _fallback(runs, size, target if tiles is not None else 0, Why(
            "the workload has no tile loop (a for_each or parallel_for over Dense[n]()) to extrapolate"))
    values = tile_values(workload, axes)
    if values.why is not None:
        return _fallback(runs, size, target, values.why)
    # (as far as a probe goes; the rest is checked against the period found)
    start, every, why = values.pattern(min(target, size, MAX_PROBE_TILES), target, size, MAX_PROBE_TILES // 4)
    if why is not None:
        return _fallback(runs, size, target, why)
    probed = _probe(runs, size, values, start, every)
    if probed.found is None:
        assert probed.why is not None
        return _fallback(runs, size, target, probed.why, probed)
    first, again = probed.found
    p = again - first
    n0 = again + 1 + p
    n0 += (target - n0) % p
    need = n0 + 2 * p
    repeats = f"the run repeats every {p} tile(s) from tile {first}"
    if target < need and target <= size:
        return _direct(runs, size, target, SteadyState(
            target, p, 0, first, target, note=f"steady state: {repeats}, but {target:,} tiles are fewer than the "
                                              f"{need:,} the extrapolation runs; {_this_run(target, size)}"))
    if target <= size and n0 + (n0 + p) + need >= target:  # (hunt10a: a repeat found late made it 8x a plain run)
        return _direct(runs, size, target, SteadyState(
            target, p, 0, first, target, note=f"steady state: {repeats}, but the extrapolation's runs of {n0:,}, "
                                              f"{n0 + p:,} and {need:,} tiles would take longer than the "
                                              f"{target:,} tiles themselves; {_this_run(target, size)}"))
    if need > size:
        return _fallback(runs, size, target, Why(
            f"{repeats}, but extrapolating takes runs of {n0:,}, {n0 + p:,} and {need:,} tiles and the workload "
            f"has {size:,}",
            hint=f"Build the workload with at least {need:,} tiles (its tile loop over Dense[{need}]() or more): "
                 f"execute(steady_state=True, tiles={target:,}) then extrapolates from it.",
            among=f" in a workload of {size:,} tiles"))
    broken = values.breaks(first, p, target)
    if broken is not None:
        return _fallback(runs, size, target, broken)
    done = []
    for n in (n0, n0 + p, need):
        try:
            done.append(runs.at(n))
        except PtortError as e:
            return _fallback(runs, size, target, _failed(n, e))
    fs = [figures(r) for r in done]
    out = extrapolate(fs[0], fs[1], fs[2], (target - n0) // p)
    if out is None:
        return _fallback(runs, size, target, Why(
            f"the figures of {n0}, {n0 + p} and {need} tiles do not grow by equal steps"))
    period = fs[1].makespan - fs[0].makespan
    if out.makespan > MAX_CYCLES:  # (the rule a plain run is held to: limits.run_past_max_cycles)
        raise _past_max_cycles(target, out.makespan, fs[0].makespan, n0, p, period)
    info = SteadyState(target, p, period, first, n0, True,
                       f"steady state: the run repeats every {p} tile(s) ({period:,} cycles) from tile {first}; "
                       f"figures for {target:,} tiles extrapolated exactly from runs of {n0}, {n0 + p} and {need} "
                       "tiles; " + (f"the trace is the {n0}-tile run." if getattr(opts, "keep_trace", True)
                                    else "no trace kept (keep_trace=False)."))
    stats = stats_of(out, done[0].trace.mode, done[0].trace.clock_hz, model_use(done[-1].pricing))
    if n0 != target:  # the trace holds the first n0 tiles only: it says so, in its saved file too
        whole = WholeRun(target, n0, stats.total_cycles, stats.overlap_pct, info.note)
        done[0].trace.whole_run = whole
    return done[0], stats, info


def _count(n: int) -> str:
    """12,345, or "more than 2**1328" for a count too long to print."""
    return f"{n:,}" if n.bit_length() <= 64 else f"more than 2**{n.bit_length() - 1}"


def _past_max_cycles(target: int, makespan: int, start: int, n0: int, p: int, period: int) -> PtortValueError:
    """The error for figures extrapolated to ``target`` tiles whose makespan is past 2**53, naming the largest tile
    count of the same phase (``n0`` tiles end at ``start``, each ``p`` more tiles add ``period`` cycles) within it."""
    largest = n0 + (MAX_CYCLES - start) // period * p
    return PtortValueError(
        f"execute(steady_state=True, tiles={_count(target)}) extrapolates a run that ends at cycle "
        f"{_count(makespan)}, past 2**53 ({MAX_CYCLES:,}): a trace keeps times as JSON numbers, exact only up to "
        "2**53, so its figures could not be kept (a plain run this long is refused the same way).",
        hint=f"Pass tiles={largest:,} or fewer: the run repeats every {p} tile(s) ({period:,} cycles), and "
             f"{largest:,} tiles end within 2**53. Or lower the cycles its tasks take (task(cycles=...), "
             "@kernel(cycles=...), the machine's cycle constants).")


def _probe(runs: _Runs, size: int, values: TileValues, start: int, every: int) -> _Probed:
    """The probe runs, at growing sizes, until the state repeats (only where the tiles' own work repeats too)."""
    tried = 0
    run = None
    for n, stride in PROBE_TILES:
        n = min(n, size, MAX_PROBE_TILES)
        if n <= tried:
            break
        tried = n
        try:
            run = runs.at(n, detector(stride, start=start, every=every, tile_names=values.tile_names))
        except _Found as hit:
            return _Probed((hit.first, hit.again))
        except _Unsupported as e:
            return _Probed(why=Why(str(e)))
        except PtortError as e:  # (a short run may fail where the full run does not: it is no verdict)
            return _Probed(why=_failed(n, e))
    # A probe of every tile that found no repeat is the full run itself when the engine ran in global time order
    # anyway (a cost model whose prices depend on other tasks: the NPU model): the fallback need not run it again.
    kept = run if runs.cost.time_ordered else None
    return _Probed(why=Why(f"the run's state did not repeat within {tried:,} tiles"), run=kept, tiles=tried)


def _failed(n: int, e: PtortError) -> Why:
    return Why(f"a short run of {n:,} tiles raised {type(e).__name__} ({e.what.rstrip('.')})",
                hint="Run it in full with execute() at the size you built: the error came from a run of fewer "
                     "tiles, which the full run may not have.")


def _this_run(target: int, size: int) -> str:
    return "this is the full run." if target == size else f"this is the run of {target:,} tiles (the tile loop cut " \
                                                          f"to {target:,})."


def _fallback(runs: _Runs, size: int, target: int, why: Why,
              probed: _Probed | None = None) -> tuple[Any, ProgramStats, SteadyState]:
    """The run of ``target`` tiles itself, when it cannot be extrapolated (the tile loop cut to them, below the
    workload's size; refused past it); ``probed``: the probe, whose last run may be that run already."""
    if target != size and not (runs.axes and target < size):
        built = f"the workload's {size:,} tiles" if size else "the tiles the workload lists"
        raise PtortValueError(f"execute(steady_state=True, tiles={target:,}) found no steady state to extrapolate "
                              f"from{why.among}: {why.text}; and a full run has only {built}.", hint=why.hint,
                              where=why.where, locate=why.where is None)
    kept = probed.run if probed is not None and probed.tiles == target else None
    return _direct(runs, size, target, SteadyState(target, traced_tiles=target or size,
                                                   note=f"no steady state: {why.text}; {_this_run(target, size)}"),
                   kept)


def _direct(runs: _Runs, size: int, target: int, info: SteadyState,
            kept: Any = None) -> tuple[Any, ProgramStats, SteadyState]:
    """The run of ``target`` tiles, not extrapolated (``kept``: that run, made already). The full run's own error is
    raised as it is; a run of fewer tiles says it was one."""
    if kept is not None:
        run = kept
    elif target == size:
        run = runs.simulate(runs.workload, runs.cost, runs.opts)
    else:
        try:
            run = runs.at(target)
        except PtortError as e:
            raise PtortValueError(
                f"execute(steady_state=True, tiles={target:,}) ran the workload with its tile loop cut to {target:,} "
                f"of its {size:,} tiles, and that run raised {type(e).__name__} ({e.what.rstrip('.')}).",
                hint=f"Only the loops over the workload's {size:,} tiles are cut (loops of other sizes keep theirs): "
                     f"build the workload with {target:,} tiles and run it in full with execute().") from e
    return run, stats_of(figures(run), run.trace.mode, run.trace.clock_hz, model_use(run.pricing)), info


__all__ = ["SteadyState", "run_steady_state", "engine_key", "pricer_key", "npu_state_key", "tile_axes", "resized",
           "figures", "extrapolate", "stats_of", "PROBE_TILES", "MAX_PROBE_TILES"]
