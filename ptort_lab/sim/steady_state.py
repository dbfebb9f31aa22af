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
from typing import Any, Callable, Hashable, Iterator

from ..dsl import axes as axes_module
from ..dsl import expr as expr_module
from ..dsl.axes import Axis, Dense, DenseDyn, SparseRow, run_sizes
from ..dsl.bindings import call_predicate, make_task, resolve_select_source
from ..dsl.expr import Expr, LoopVar
from ..dsl.tree import LOOPS, NodeKind, walk
from ..dsl.workload import Workload
from ..errors import PtortError, PtortValueError, SourceLocation
from .cost_model import CostModel, PinnedCosts
from .fifo import Actor
from .stats import ProgramStats, SpanTotals, lane_ratios, memory_counters
from .validation import error_band, model_notes

# (tiles, stride): probe sizes, tried in turn until a state repeats, keying the state at every stride-th tile (a
# multiple of the true period is a period too; the NPU model's state holds every L2 line, so keys cost more there)
PROBE_TILES = ((64, 1), (512, 1), (4096, 8), (32768, 64))
MAX_PROBE_TILES = 32768


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
def _roots(workload: Workload) -> list[Workload]:
    return [workload] + [p.workload for p in getattr(workload, "processes", ()) or ()]


def tile_axes(workload: Workload) -> tuple[int, list[Any]]:
    """(size, axes): the workload's largest static loop size and every Dense/DenseDyn axis of that size."""
    found: list[Any] = []
    for root in _roots(workload):
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
                extra = pricer_key(pricer, t_ref, _floor(engine, t_ref))
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


# -- work that depends on the tile index -----------------------------------------------------------------------------
# The state a probe compares holds no cost and no branch taken, so a cond(i < 5000, ...), a cycles= function of the
# tile or a loop sized by it changes the work of tiles the short runs never reach. Their values are evaluated at
# every tile instead, at most this many evaluations in all (about a second); past it they cannot be checked.
MAX_VALUE_CHECKS = 1_000_000
_TILE, _OTHER = 1, 2  # what a loop or consume variable holds (absent: nothing of the tile): the tile index itself,
# or a value derived from it (a token computed from it, a send's running index)
_INDEX = object()  # the token of a send that passes its index among the process's sends
_PER_TILE_HINT = ("Run it in full with execute() at the size you built, or make the per-tile work the same for every "
                  "tile (no per-tile costs or shapes).")


@dataclass
class _Why:
    """Why a run is not extrapolated: the note's reason, and the hint and line of the error when it must refuse."""

    text: str
    hint: str = _PER_TILE_HINT
    where: SourceLocation | None = None
    among: str = ""  # where the refusal found no steady state, when that is the reason ("in a workload of 100 tiles")


@dataclass
class _Place:
    """A value of the workload that may change with the tile index: its value at tile x, or why it cannot say."""

    what: str
    loc: SourceLocation | None
    value: Callable[[int], Hashable] | None
    why: str = ""

    def named(self) -> str:
        return f"{self.what} at {self.loc}" if self.loc is not None else self.what


class TileValues:
    """The places whose values change with the tile index (conds, cycles= functions, loop sizes) and their values,
    evaluated tile by tile as far as needed: ``seq[x]`` numbers the tuple of values at tile x (``table[seq[x]]``).
    ``why``: they cannot be evaluated (then the run is not extrapolated)."""

    def __init__(self, places: list[_Place]) -> None:
        self.places = places
        # the names of the variables that hold the tile index (and no other variable's): a task's tile is its value
        self.tile_names: tuple[str, ...] = ()
        self.seq: list[int] = []
        self.table: list[tuple[Any, ...]] = []
        self._ids: dict[tuple[Any, ...], int] = {}
        opaque = next((p for p in places if p.value is None), None)
        self.why = None if opaque is None else _Why(f"{opaque.named()} {opaque.why}, so whether the run repeats "
                                                    "cannot be checked", where=opaque.loc)

    def evaluate(self, tiles: int) -> _Why | None:
        """The values up to tile ``tiles`` (exclusive); why not, when they cannot be evaluated."""
        if not self.places or len(self.seq) >= tiles:
            return None
        if tiles * len(self.places) > MAX_VALUE_CHECKS:
            place = self.places[0]
            return _Why(f"{place.named()} depends on the tile index, and checking its values at {tiles:,} tiles is "
                        f"more than the {MAX_VALUE_CHECKS:,} evaluations a steady-state run makes",
                        hint="Run fewer tiles, or run it in full with execute() at the size you built (with "
                             "keep_trace=False for a long run).", where=place.loc)
        for x in range(len(self.seq), tiles):
            values = []
            for place in self.places:
                try:
                    values.append(place.value(x))  # type: ignore[misc]  # (set: the places were checked)
                except Exception as e:  # noqa: BLE001 - the user's condition or cost function
                    what = e.what if isinstance(e, PtortError) else str(e)
                    return _Why(f"{place.named()} depends on the tile index, and evaluating it for tile {x:,} "
                                f"raised {type(e).__name__} ({what.rstrip('.')}), so whether the run repeats cannot "
                                "be checked", where=place.loc)
            key = tuple(values)
            number = self._ids.get(key)
            if number is None:
                number = self._ids[key] = len(self.table)
                self.table.append(key)
            self.seq.append(number)
        return None

    def pattern(self, tiles: int, target: int, size: int) -> tuple[int, int, _Why | None]:
        """(start, every, why not): the values up to ``tiles`` (of ``target``) repeat every ``every`` tiles from
        tile ``start`` on (the probe keys only those tiles); ``why``: they do not, or only so late that the full run
        of ``size`` tiles (when it is the run asked for) costs less."""
        if not self.places:
            return 0, 1, None
        why = self.evaluate(tiles)
        if why is not None:
            return 0, 1, why
        repeat = _repeats(self.seq[:tiles])
        if repeat is None or repeat[1] > MAX_PROBE_TILES // 4:
            place = self._varies()
            along = f"the first {tiles:,} tiles" if tiles < target else f"its {tiles:,} tiles"
            return 0, 1, _Why(f"{place.named()} changes the tiles' work and does not repeat along {along}",
                              where=place.loc)
        start, every = repeat
        if (start, every) == (0, 1):
            return 0, 1, None  # the same at every tile (a cycles= function that is a constant)
        if target == size and 3 * (start + 2 * every) >= size:
            # the short runs would each pass tile `start` and three periods: the full run costs less
            if start:
                place = self._differs(start - 1, start - 1 + every)
                when = f"repeats every {every:,} tile(s) only from tile {start:,} on"
            else:
                place = self._varies()
                when = f"repeats only every {every:,} tiles"
            return start, every, _Why(f"{place.named()} changes the tiles' work, which {when}, so extrapolating "
                                      "would simulate about as many tiles as the full run", where=place.loc)
        return start, every, None

    def breaks(self, first: int, p: int, tiles: int) -> _Why | None:
        """Why a period of ``p`` tiles from tile ``first`` on is not the values' own over ``tiles`` tiles (or they
        cannot be checked), None when it is."""
        why = self.evaluate(tiles)
        if why is not None or not self.places:
            return why
        seq = self.seq
        for x in range(first, tiles - p):
            if seq[x] != seq[x + p]:
                place = self._differs(x, x + p)
                return _Why(f"{place.named()} has another value at tile {x + p:,} than at tile {x:,}, one period of "
                            f"the run's state ({p} tile(s)) before, so the run does not repeat with it",
                            where=place.loc)
        return None

    def _varies(self) -> _Place:
        """The first place whose value is not the same at every tile evaluated."""
        return next((p for i, p in enumerate(self.places) if len({row[i] for row in self.table}) > 1),
                    self.places[0])

    def _differs(self, x: int, y: int) -> _Place:
        a, b = self.table[self.seq[x]], self.table[self.seq[y]]
        return next((place for place, u, v in zip(self.places, a, b) if u != v), self.places[0])


def tile_values(workload: Workload, axes: list[Any]) -> TileValues:
    """What in ``workload`` may change with the tile index of ``axes`` (evaluated tile by tile when asked)."""
    scoped = list(_scoped(_roots(workload)))
    kinds = _variable_kinds(scoped, {id(a) for a in axes})
    out = TileValues([p for node, scope in scoped if (p := _place(node, scope, kinds)) is not None])
    bound = [v for node, _ in scoped for v in _bound(node)]
    other = {v.name for v in bound if kinds.get(id(v)) != _TILE}
    out.tile_names = tuple(sorted({v.name for v in bound if kinds.get(id(v)) == _TILE} - other))
    return out


def _repeats(seq: list[int]) -> tuple[int, int] | None:
    """(s, q): ``seq[s:]`` repeats every q items, for the longest such tail that holds at least three periods (the
    prefix function of the reversed sequence gives each tail's shortest period); None when there is none."""
    r = seq[::-1]
    border = [0] * len(r)
    k = 0
    for i in range(1, len(r)):
        while k and r[i] != r[k]:
            k = border[k - 1]
        if r[i] == r[k]:
            k += 1
        border[i] = k
    best = None
    for length in range(1, len(r) + 1):
        period = length - border[length - 1]
        if length >= 3 * period:
            best = (len(r) - length, period)
    return best


def _scoped(roots: list[Workload]) -> Iterator[tuple[Workload, tuple[LoopVar, ...]]]:
    """Every node under ``roots`` (once each) with the loop and consume variables bound where it runs."""
    seen: set[int] = set()
    stack: list[tuple[Workload, tuple[LoopVar, ...]]] = [(r, ()) for r in reversed(roots)]
    while stack:
        node, scope = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node, scope
        inner = scope + _bound(node)
        stack.extend((child, inner) for child in reversed(node.children()))


def _bound(node: Workload) -> tuple[LoopVar, ...]:
    """The variables ``node`` binds for its body: a loop's, a consume's or a join's."""
    kind = node.kind
    return tuple(node.vars) if kind in LOOPS or kind is NodeKind.JOIN else (node.var,) if kind is NodeKind.CONSUME \
        else ()


def _variable_kinds(scoped: list[tuple[Workload, tuple[LoopVar, ...]]], tile_ids: set[int]) -> dict[int, int]:
    """id(variable) -> _TILE or _OTHER for the variables that hold a tile index: the loop variables of the tile axes,
    and the consume and join variables of channels whose every send passes one of those on as its token."""
    kinds: dict[int, int] = {}
    tokens: dict[int, list[Any]] = {}
    receivers: list[tuple[LoopVar, Any]] = []
    for node, _ in scoped:
        if node.kind in LOOPS:
            k = 0
            for axis in node.axes:
                if id(axis) in tile_ids and k < len(node.vars):
                    kinds[id(node.vars[k])] = _TILE
                k += axis.rank if isinstance(axis, Axis) else 1
        elif node.kind is NodeKind.SEND:
            tokens.setdefault(id(node.channel), []).append(_token(node))
        elif node.kind is NodeKind.CONSUME:
            receivers.append((node.var, node.channel))
        elif node.kind is NodeKind.JOIN:
            receivers.extend(zip(node.vars, node.channels))
    for _ in range(len(receivers) + 1):  # a token may be another consume's variable: until nothing changes
        changed = False
        for var, channel in receivers:
            sent = {_token_kind(t, kinds) for t in tokens.get(id(channel), [])}
            kind = _TILE if sent == {_TILE} else 0 if sent <= {0} else _OTHER
            if kinds.get(id(var), 0) != kind:
                kinds[id(var)] = kind
                changed = True
        if not changed:
            break
    else:  # (did not settle: assume the worst)
        kinds.update((id(var), _OTHER) for var, _ in receivers)
    return {k: v for k, v in kinds.items() if v}


def _token(send: Workload) -> Any:
    """What a send passes on (csp.send): ``token=``, else its task's first axis value, else its index."""
    if send.token is not None:
        return send.token
    value = send.value
    if isinstance(value, Workload):
        return value.params[0] if value.kind is NodeKind.TASK and value.params else _INDEX
    return value


def _token_kind(token: Any, kinds: dict[int, int]) -> int:
    if token is _INDEX:
        return _OTHER
    if isinstance(token, LoopVar):
        return kinds.get(id(token), 0)
    reads, opaque = _reads(token)
    return _OTHER if opaque or any(kinds.get(id(v), 0) for v in reads) else 0


def _reads(value: Any) -> tuple[list[LoopVar], bool]:
    """(the loop variables ``value`` reads, whether it also reads something only the run knows: a runtime slot, a
    channel item)."""
    found: list[LoopVar] = []
    opaque = False
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, LoopVar):
            found.append(v)
        elif isinstance(v, Expr):
            if type(v).__module__ not in (expr_module.__name__, axes_module.__name__):
                opaque = True
                continue
            stack.extend(getattr(v, name, None) for cls in type(v).__mro__ for name in getattr(cls, "__slots__", ()))
        elif isinstance(v, DenseDyn):
            stack.append(v.size)
        elif isinstance(v, SparseRow):
            stack.append(v.row)
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
    return found, opaque


def _place(node: Workload, scope: tuple[LoopVar, ...], kinds: dict[int, int]) -> _Place | None:
    """The place ``node`` has whose value may change with the tile index, None when it has none."""
    loc = node.loc
    if node.kind is NodeKind.COND:
        pred = node.pred
        if isinstance(pred, Expr):
            return _expr_place(f"cond({_text(pred)}, ...)", loc, pred, scope, kinds,
                               lambda b: bool(expr_module.evaluate(pred, b)))
        if callable(pred):
            return _call_place("the condition function of a cond", loc, scope, kinds,
                               lambda b: bool(call_predicate(pred, b, loc)))
    elif node.kind is NodeKind.TASK and callable(node.cycles):
        name = node.kernel if isinstance(node.kernel, str) else node.kernel.name
        return _call_place(f"the cycles= function of task '{name}'", loc, scope, kinds,
                           lambda b: make_task(node, b).pinned_cycles())
    elif node.kind in LOOPS:
        for axis in node.axes:
            if isinstance(axis, (DenseDyn, SparseRow, list, tuple)):
                place = _expr_place(f"the loop over {axis!r}", loc, axis, scope, kinds,
                                    functools.partial(_points, axis))
                if place is not None:
                    return place
    return None


def _points(axis: Any, bindings: dict[str, Any]) -> Hashable:
    """The points a loop over ``axis`` visits (as a hashable value)."""
    points = resolve_select_source(axis, bindings)
    return points if isinstance(points, range) else tuple(points)


def _expr_place(what: str, loc: SourceLocation | None, value: Any, scope: tuple[LoopVar, ...],
                kinds: dict[int, int], value_at: Callable[[dict[str, Any]], Hashable]) -> _Place | None:
    """A loop expression's place: evaluated with its one tile variable bound to each tile."""
    reads, opaque = _reads(value)
    if opaque:
        if any(id(v) in kinds for v in scope):
            return _Place(what, loc, None, "reads a value only the run knows (a runtime slot or a channel item)")
        return None
    tiled = [v for v in reads if id(v) in kinds]
    if not tiled:
        return None
    derived = next((v for v in tiled if kinds[id(v)] == _OTHER), None)
    if derived is not None:
        return _Place(what, loc, None, f"reads '{derived.name}', a value derived from the tile index that its "
                                       "channel's producers send (not the tile index itself)")
    names = sorted({v.name for v in reads})
    if len(names) > 1:
        tile = tiled[0].name
        others = ", ".join(repr(n) for n in names if n != tile)
        return _Place(what, loc, None, f"reads the tile index '{tile}' together with {others}")
    return _at_tile(what, loc, names[0], value_at)


def _call_place(what: str, loc: SourceLocation | None, scope: tuple[LoopVar, ...], kinds: dict[int, int],
                value_at: Callable[[dict[str, Any]], Hashable]) -> _Place | None:
    """A function's place (it may read any variable bound where it runs): called with the tile variable bound."""
    tiled = [v for v in scope if id(v) in kinds]
    if not tiled:
        return None
    if any(kinds[id(v)] == _OTHER for v in tiled) or len({v.name for v in tiled}) > 1:
        return _Place(what, loc, None, "is a function of a task whose loop variables include values derived from "
                                       "the tile index")
    return _at_tile(what, loc, tiled[0].name, value_at)


def _at_tile(what: str, loc: SourceLocation | None, name: str,
             value_at: Callable[[dict[str, Any]], Hashable]) -> _Place:
    return _Place(what, loc, lambda x: value_at({name: x}))


def _text(e: Any) -> str:
    text = repr(e)
    return text[1:-1] if text.startswith("(") and text.endswith(")") else text


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
    why: _Why | None = None
    run: Any = None
    tiles: int = 0


def run_steady_state(workload: Workload, cost: CostModel, opts: Any, simulate: Simulate,
                     tiles: int | None = None) -> tuple[Any, ProgramStats, SteadyState]:
    """(the run whose trace is kept, the figures' ProgramStats for ``tiles`` tiles, how they were found)."""
    size, axes = tile_axes(workload)
    target = size if tiles is None else tiles
    runs = _Runs(workload, cost, dataclasses.replace(opts, compute_values=False), simulate, axes)
    if not axes:
        return _fallback(runs, size, target if tiles is not None else 0, _Why(
            "the workload has no tile loop (a for_each or parallel_for over Dense[n]()) to extrapolate"))
    values = tile_values(workload, axes)
    if values.why is not None:
        return _fallback(runs, size, target, values.why)
    # (as far as a probe goes; the rest is checked against the period found)
    start, every, why = values.pattern(min(target, size, MAX_PROBE_TILES), target, size)
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
    if need > size:
        return _fallback(runs, size, target, _Why(
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
        return _fallback(runs, size, target, _Why(
            f"the figures of {n0}, {n0 + p} and {need} tiles do not grow by equal steps"))
    period = fs[1].makespan - fs[0].makespan
    info = SteadyState(target, p, period, first, n0, True,
                       f"steady state: the run repeats every {p} tile(s) ({period:,} cycles) from tile {first}; "
                       f"figures for {target:,} tiles extrapolated exactly from runs of {n0}, {n0 + p} and {need} "
                       "tiles; " + (f"the trace is the {n0}-tile run." if getattr(opts, "keep_trace", True)
                                    else "no trace kept (keep_trace=False)."))
    return done[0], stats_of(out, done[0].trace.mode, done[0].trace.clock_hz), info


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
            return _Probed(why=_Why(str(e)))
        except PtortError as e:  # (a short run may fail where the full run does not: it is no verdict)
            return _Probed(why=_failed(n, e))
    # A probe of every tile that found no repeat is the full run itself when the engine ran in global time order
    # anyway (a cost model whose prices depend on other tasks: the NPU model): the fallback need not run it again.
    kept = run if runs.cost.time_ordered else None
    return _Probed(why=_Why(f"the run's state did not repeat within {tried:,} tiles"), run=kept, tiles=tried)


def _failed(n: int, e: PtortError) -> _Why:
    return _Why(f"a short run of {n:,} tiles raised {type(e).__name__} ({e.what.rstrip('.')})",
                hint="Run it in full with execute() at the size you built: the error came from a run of fewer "
                     "tiles, which the full run may not have.")


def _this_run(target: int, size: int) -> str:
    return "this is the full run." if target == size else f"this is the run of {target:,} tiles (the tile loop cut " \
                                                          f"to {target:,})."


def _fallback(runs: _Runs, size: int, target: int, why: _Why,
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
    return run, stats_of(figures(run), run.trace.mode, run.trace.clock_hz), info


__all__ = ["SteadyState", "run_steady_state", "engine_key", "pricer_key", "npu_state_key", "tile_axes", "resized",
           "figures", "extrapolate", "stats_of", "tile_values", "TileValues", "PROBE_TILES", "MAX_PROBE_TILES",
           "MAX_VALUE_CHECKS"]
