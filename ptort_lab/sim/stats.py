"""Run statistics from a Trace: makespan, busy shares per lane and core, overlap, stalls, bytes moved, the GM
traffic the memory model counted, and the model's validated error band for the kind of work (validation.py).

The span figures (busy cycles per (core, lane), core and stage, the >= 2-stages overlap, bytes) are counted by
``SpanTotals``, from a whole trace (``SpanTotals.of``) or, for a run that keeps no trace
(``execute(keep_trace=False)``), as its spans come (``SpanFeed``); both count with ``_merge`` and ``overlap_of``, so
they give the same figures."""
from __future__ import annotations

import itertools
import operator
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from . import span_union
from .gc_pause import gc_paused
from .machine import DEFAULT_CLOCK_HZ
from .trace import Span, SpanColumns, Trace
from .validation import ErrorBand, ModelUse, error_band, model_notes


def _merge(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    """The union of ``(start, end)`` intervals as disjoint sorted intervals (touching ones joined, empty ones
    dropped): what every busy figure is the length of."""
    out: list[tuple[int, int]] = []
    ordered = iter(sorted(intervals))
    for cs, ce in ordered:  # the first non-empty interval
        if ce > cs:
            break
    else:
        return out
    add = out.append
    for s, e in ordered:  # (the hot loop of stats(): the open interval in locals)
        if s <= ce:
            if e > ce:
                ce = e
        elif e > s:
            add((cs, ce))
            cs, ce = s, e
    add((cs, ce))
    return out


def busy_cycles(spans: Iterable[Span]) -> int:
    return sum(e - s for s, e in _merge((sp.start, sp.end) for sp in spans))


def stage_groups(trace: Trace) -> dict[str, list[Span]]:
    """Spans by stage: the process that ran them, else their lane (what overlap and stage busy % are over)."""
    stages: dict[str, list[Span]] = {}
    for sp in trace.spans:
        stages.setdefault(sp.process or sp.lane, []).append(sp)
    return stages


def overlap_cycles(groups: dict[str, list[Span]]) -> tuple[int, int]:
    """(cycles when >= 2 groups are busy, cycles when >= 1 is busy)."""
    return overlap_of([_merge((sp.start, sp.end) for sp in spans) for spans in groups.values()])


def overlap_of(unions: Iterable[list[tuple[int, int]]]) -> tuple[int, int]:
    """(cycles when >= 2 of ``unions`` are busy, cycles when >= 1 is busy); each union is ``_merge``'s output."""
    events: list[tuple[int, int]] = []
    for union in unions:
        for s, e in union:
            events.append((s, 1))
            events.append((e, -1))
    events.sort()
    level = 0
    last = 0
    multi = any_busy = 0
    for t, d in events:
        if level >= 2:
            multi += t - last
        if level >= 1:
            any_busy += t - last
        level += d
        last = t
    return multi, any_busy


# -- the figures of a run's spans, as they come ----------------------------------------------------------------------
# What stats() reads from the spans is additive over time: the busy cycles of a union of intervals (per (core, lane),
# per core, per stage), the cycles when >= 2 stages are busy, and the bytes. A run that keeps no trace
# (execute(keep_trace=False)) feeds its spans here in chunks and, after each, gives a watermark W: no span added later
# starts before W (runner.py: the earliest clock of a process still running). Then the union of the spans so far,
# cut at W, is final before W: its part before W is counted and only the part after W is kept. Every figure is the
# sum over the windows between two cuts, so the result is the very number a full trace gives; what is kept is the
# busy intervals still open after W (the work in flight), already merged.
_START = operator.itemgetter(4)  # a span's start
_END = operator.itemgetter(5)
_BYTES = operator.itemgetter(6)
_GROUP_KEY = operator.itemgetter(0, 1, 7)  # (core, lane, process): a span's finest group


class SpanBeforeCut(Exception):
    """A span added after a cut at ``cut`` starts before it, so the figures before the cut are not final."""

    def __init__(self, span: Any, cut: int) -> None:
        super().__init__(span, cut)
        self.span, self.cut = span, cut


class SpanTotals:
    """The span figures of a run: busy cycles per (core, lane) (``lanes``), per core (``cores``) and per stage (the
    span's process, else its lane: ``stages``), the cycles when >= 2 stages are busy (``multi``), the bytes moved and
    the span count. ``add`` spans in any order, ``flush(cut)`` when no later span starts before ``cut``, and
    ``flush()`` at the end; ``SpanTotals.of(spans)`` does it for a whole trace. Keys are listed in the order their
    first span came. The unions are worked out with numpy (``span_union``), a window of spans at a time."""

    def __init__(self) -> None:
        self.lanes: dict[tuple[int, str], int] = {}
        self.cores: dict[int, int] = {}
        self.stages: dict[str, int] = {}
        self.multi = 0
        self.bytes_moved = 0
        self.span_count = 0
        self.cut: int | None = None  # the last cut: every figure before it is counted
        self.kept = 0  # intervals kept after the last flush (what the run holds for its statistics)
        # The finest group of a span is its (core, lane, process): numbered in the order first seen, each with the
        # place of its lane, core and stage in those dicts (the lane, core and stage unions are of some groups).
        self._group_of: dict[tuple[int, str, str], int] = {}
        self._places: tuple[list[int], list[int], list[int]] = ([], [], [])
        self._place_of: tuple[dict[Any, int], dict[Any, int], dict[Any, int]] = ({}, {}, {})
        # the intervals not final yet, (group, start, end) arrays a chunk each: merged per group at each flush
        self._open: list[tuple[np.ndarray[Any, Any], Any, Any]] = []

    @classmethod
    def of(cls, spans: Iterable[Span]) -> SpanTotals:
        """The figures of every span of a trace (a run's: counted FEED_CHUNK at a time, each chunk cut at the
        earliest start of the spans after it, so a long trace is never grouped all at once)."""
        totals = cls()
        if totals._add_columns_of(spans):
            return totals
        if not hasattr(spans, "__len__"):  # (read twice below)
            spans = list(spans)
        starts = _starts(spans)
        if starts is None or len(starts) <= FEED_CHUNK:
            totals.add(spans if isinstance(spans, list) else list(spans))
            totals.flush()
            return totals
        later = _earliest_from(starts)
        rows = iter(spans)
        done = 0
        while done < len(starts):
            chunk = list(itertools.islice(rows, FEED_CHUNK))
            totals.add(chunk)
            done += len(chunk)
            totals.flush(int(later[done]) if done < len(starts) else None)
        return totals

    def _add_columns_of(self, spans: Any) -> bool:
        """Count a run's spans read column by column (``trace.SpanColumns``: no Span is built), FEED_CHUNK at a time
        as ``of`` does; False (nothing counted) when ``spans`` has no such columns."""
        if not isinstance(spans, SpanColumns) or spans.pending:
            return False  # (records still pending are tuples, read as rows: a run below COMPACT_AFTER_ROWS)
        columns: list[Any] = [spans.ints(k) for k in (0, 4, 5, 6)]
        if any(c is None for c in columns):
            return False
        names: list[Any] = [spans.name_codes(k) for k in (1, 7)]
        if any(c is None for c in names):
            return False
        cores, starts, ends, nbytes = columns
        (lanes, lane_at), (processes, process_at) = names
        n = len(starts)
        if n:
            # each span's (core, lane, process) group, numbered in the order of the first span of each
            fine = (cores * len(lanes) + lane_at) * len(processes) + process_at
            _, first, inverse = np.unique(fine, return_index=True, return_inverse=True)
            for i in np.sort(first).tolist():
                self._new_group((int(cores[i]), lanes[lane_at[i]], processes[process_at[i]]))
            rank = np.empty(len(first), dtype=np.int64)
            rank[np.argsort(first)] = np.arange(len(first))
            groups = rank[inverse.reshape(-1)]
            later = _earliest_from(starts)
            for a in range(0, n, FEED_CHUNK):
                b = min(a + FEED_CHUNK, n)
                self._open.append((groups[a:b], starts[a:b], ends[a:b]))
                self.flush(int(later[b]) if b < n else None)
        self.bytes_moved += int(nbytes.sum())
        self.span_count += n
        return True

    def add(self, spans: list[Span]) -> None:
        """Take ``spans`` (Span tuples); SpanBeforeCut if one starts before the last cut."""
        if not spans:
            return
        # (the columns read one by one: transposing all nine fields of every span cost twice as much)
        starts, ends = span_union.ints(list(map(_START, spans))), span_union.ints(list(map(_END, spans)))
        cut = self.cut
        if cut is not None and starts.min() < cut:
            raise SpanBeforeCut(next(sp for sp in spans if sp[4] < cut), cut)
        keys = list(map(_GROUP_KEY, spans))
        group_of = self._group_of
        groups = list(map(group_of.get, keys))
        if None in groups:
            for key in dict.fromkeys(keys):  # (new groups numbered in the order their first span came)
                if key not in group_of:
                    self._new_group(key)
            groups = list(map(group_of.get, keys))
        self._open.append((np.array(groups, dtype=np.int64), starts, ends))
        self.bytes_moved += sum(map(_BYTES, spans))
        self.span_count += len(spans)

    @property
    def pending(self) -> dict[tuple[int, str, str], list[tuple[int, int]]]:
        """The intervals not final yet, per (core, lane, process) group seen so far, merged."""
        keys = list(self._group_of)
        out: dict[tuple[int, str, str], list[tuple[int, int]]] = {key: [] for key in keys}
        if self._open:
            groups, starts, ends = span_union.runs(*self._open_intervals())
            for g, s, e in zip(groups.tolist(), starts.tolist(), ends.tolist()):
                out[keys[g]].append((s, e))
        return out

    def _new_group(self, key: tuple[int, str, str]) -> None:
        """Number a new (core, lane, process) group and list it under its lane, core and stage (new ones last)."""
        core, lane, process = key
        self._group_of[key] = len(self._group_of)
        figures: tuple[dict[Any, int], ...] = (self.lanes, self.cores, self.stages)
        for k, busy, places, place_of in zip(((core, lane), core, process or lane), figures, self._places,
                                             self._place_of):
            place = place_of.get(k)
            if place is None:
                place = place_of[k] = len(place_of)
                busy[k] = 0
            places.append(place)

    def flush(self, cut: int | None = None) -> None:
        """Count every figure up to ``cut`` (None: all of them, the run is over); no span added later may start
        before ``cut``."""
        if cut is not None and self.cut is not None and cut < self.cut:
            cut = self.cut  # a cut never moves back
        if cut is not None:
            self.cut = cut
        if not self._open:
            return
        groups, starts, ends = self._open_intervals()
        if cut is None:
            self._open, self.kept = [], 0
        else:
            # each interval's part before the cut is final; its part after stays open, merged per group
            starts, ends = span_union.fits(starts, cut), span_union.fits(ends, cut)
            after = ends > cut
            kept = span_union.runs(groups[after], np.maximum(starts[after], cut), ends[after])
            self._open, self.kept = [kept], len(kept[0])
            before = starts < cut
            groups, starts, ends = groups[before], starts[before], np.minimum(ends[before], cut)
        self._count(groups, starts, ends)

    def _open_intervals(self) -> tuple[np.ndarray[Any, Any], Any, Any]:
        """The intervals not final yet as one (group, start, end) triple of arrays."""
        return (np.concatenate([g for g, _, _ in self._open]), _joined([s for _, s, _ in self._open]),
                _joined([e for _, _, e in self._open]))

    def _count(self, groups: np.ndarray[Any, Any], starts: Any, ends: Any) -> None:
        """Add the busy cycles of a window's final intervals (by group) to every figure."""
        figures: tuple[dict[Any, int], ...] = (self.lanes, self.cores, self.stages)
        for busy, places in zip(figures, self._places):
            keys = list(busy)
            runs = span_union.runs(np.array(places, dtype=np.int64)[groups], starts, ends)
            for place, cycles in span_union.run_lengths(*runs).items():
                busy[keys[place]] += cycles
        self.multi += span_union.runs_busy_in_two(runs[1], runs[2])  # (the stages' runs, the last merged)


def _joined(chunks: list[Any]) -> Any:
    """One array of ``chunks`` (of objects if any is: numpy would make floats of a mix of int64 and objects)."""
    if any(c.dtype == object for c in chunks):
        chunks = [c.astype(object) for c in chunks]
    return np.concatenate(chunks)


class SpanFeed(list):  # type: ignore[type-arg]
    """The spans of a run that keeps no trace (``execute(keep_trace=False)``): appended as to a list (the runner's
    hot path), then counted into ``totals`` and dropped at each ``flush``."""

    def __init__(self, totals: SpanTotals) -> None:
        super().__init__()
        self.totals = totals

    def flush(self, cut: int | None = None) -> None:
        """Count the spans appended so far, final up to ``cut`` (``SpanTotals.flush``), and drop them (a user's cost
        model's spans are checked as they come: timing_check.py)."""
        self.totals.add(self)
        self.totals.flush(cut)
        self.clear()

    def add_columns(self, columns: list[Any]) -> None:
        """Spans given column by column (the max-plus path: ``trace.RecordColumns.add_columns``' form), in the
        engine's order, which is not time order: counted FEED_CHUNK at a time, each chunk cut at the earliest start
        of the spans after it."""
        starts = np.asarray(columns[4], dtype=np.int64)
        n = len(starts)
        if not n:
            return
        later = _earliest_from(starts)
        for a in range(0, n, FEED_CHUNK):
            b = min(a + FEED_CHUNK, n)
            # (core, lane, -, -, start, end, bytes, process): what SpanTotals.add reads of a span
            core, lane, start, end, nbytes, process = (_rows(columns[k], a, b) for k in (0, 1, 4, 5, 6, 7))
            self.extend(zip(core, lane, itertools.repeat(None), itertools.repeat(None), start, end, nbytes,
                            process))
            if b < n:
                self.flush(int(later[b]))


FEED_CHUNK = 1 << 16


def _starts(spans: Iterable[Span]) -> Any:
    """The start of every span, as an int64 array (read from a run's columns when it can), or None when one is not
    an int64 (a hand-made trace: then counted in one go)."""
    column = getattr(spans, "ints", None)
    if column is not None:
        return column(4)
    try:
        return np.fromiter(map(_START, spans), dtype=np.int64)
    except (TypeError, ValueError, OverflowError, IndexError):
        return None


def _rows(given: Any, a: int, b: int) -> list[Any]:
    """Rows ``a:b`` of one column as ``RecordColumns.add_columns`` takes it, as plain values."""
    if isinstance(given, tuple):
        table, at = given
        return [table[i] for i in np.asarray(at)[a:b].tolist()]
    return given[a:b].tolist() if isinstance(given, np.ndarray) else list(given[a:b])


def _earliest_from(starts: Any) -> Any:
    """``later[i]``: the earliest of ``starts[i:]`` (where a chunk of spans ending before ``i`` can be cut)."""
    return np.minimum.accumulate(starts[::-1])[::-1]


@dataclass
class ProgramStats:
    """What one execution cost. ``summary()`` prints a short deterministic table.

    ``total_cycles`` is the reference's name for the run's length, the trace's ``makespan`` (the time the last
    process finished, in cycles); ``time_us`` is the same in microseconds at ``clock_hz``. ``error_band`` is how far
    the model was from hardware on the kind of work this run did (``validation.py``; "unvalidated" when nothing
    measured covers it), ``notes`` warnings about unsourced parts it leaned on, and ``memory`` the GM traffic of
    the NPU model's L2 and HBM (bytes, as msprof's Memory/L2Cache counters; empty for other cost models).
    """

    total_cycles: int = 0  # = Trace.makespan
    time_us: float = 0.0
    task_count: int = 0
    mode: str = ""
    clock_hz: float = DEFAULT_CLOCK_HZ
    lane_busy_pct: dict[str, float] = field(default_factory=dict)  # per pipe/stage, averaged over its cores
    core_busy_pct: dict[int, float] = field(default_factory=dict)
    stage_busy_pct: dict[str, float] = field(default_factory=dict)
    overlap_pct: float = 0.0
    stall_cycles: dict[str, int] = field(default_factory=dict)
    bytes_moved: int = 0
    # wall-clock times of this host's compile() and execute(): left out of ==, which compares what was simulated
    # (two runs of one program give equal stats; a keep_trace=False run's equal a full run's)
    compile_time_ms: float = field(default=0.0, compare=False)
    execute_time_ms: float = field(default=0.0, compare=False)
    steady_state: Any = None  # how execute(steady_state=True) found these figures (sim/steady_state.SteadyState)
    error_band: ErrorBand | None = None
    notes: list[str] = field(default_factory=list)
    memory: dict[str, int] = field(default_factory=dict)

    @property
    def parallel_tasks(self) -> int:
        return self.task_count

    def summary(self) -> str:
        lines = [f"{self.mode} run: {self.total_cycles} cycles = {self.time_us:.3f} us at "
                 f"{self.clock_hz / 1e9:g} GHz, {self.task_count} tasks, overlap {self.overlap_pct:.1f}%"]
        if self.bytes_moved:
            lines.append(f"  bytes moved: {self.bytes_moved}")
        if self.stage_busy_pct:
            lines.append("  stage            busy%   stall cycles")
            for name, pct in self.stage_busy_pct.items():
                lines.append(f"  {name:<16} {pct:5.1f}   {self.stall_cycles.get(name, 0)}")
        if self.lane_busy_pct and set(self.lane_busy_pct) != set(self.stage_busy_pct):
            lines.append("  pipe             busy%")
            for name, pct in self.lane_busy_pct.items():
                lines.append(f"  {name:<16} {pct:5.1f}")
        if self.memory:
            m = self.memory
            lines.append(f"  GM: {m['read_hit_bytes']} B read from L2, {m['read_miss_bytes']} B from HBM, "
                         f"{m['write_bytes']} B written; HBM {m['hbm_bytes']} B; dirty in L2 at the end "
                         f"{m['l2_dirty_at_end_bytes']} B")
        if self.error_band is not None:
            lines.append(f"  model error: {self.error_band.text()}")
        lines += [f"  note: {note}" for note in self.notes]
        if self.steady_state is not None:  # (the figures may be extrapolated: say how they were found)
            lines.append(f"  {self.steady_state.note}")
        return "\n".join(lines)

    def print_summary(self) -> None:
        print(self.summary())

    def __call__(self) -> ProgramStats:
        """Itself: ``program.stats()`` and the reference's ``program.stats`` are the same object."""
        return self

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        """``<ProgramStats pipeline run: 12,345 cycles = 6.858 us, 8 tasks, overlap 62.5%>``: the summary's first line
        (``print(stats)`` shows the whole summary; the dataclass repr listed every pipe's busy share)."""
        mode = f"{self.mode} run" if self.mode else "run"
        return (f"<ProgramStats {mode}: {self.total_cycles:,} cycles = {self.time_us:.3f} us, {self.task_count:,} "
                f"task{'s' if self.task_count != 1 else ''}, overlap {self.overlap_pct:.1f}%>")


def lane_ratios(lanes: dict[tuple[int, str], int], pct: Any) -> dict[str, float]:
    """Busy share of each lane (pipe or stage), averaged over the cores that use it (msprof's *_ratio)."""
    sums: dict[str, list[float]] = {}
    for (_, lane), busy in lanes.items():
        sums.setdefault(lane, []).append(pct(busy))
    return {lane: sum(v) / len(v) for lane, v in sums.items()}


def memory_counters(pricing: Any) -> dict[str, int]:
    """The GM traffic counted by a cost model's per-run state (``NpuRun.memory``), or {} when it keeps none."""
    mem = getattr(pricing, "memory", None)
    if mem is None or not hasattr(mem, "read_hit_bytes"):
        return {}
    return {"read_hit_bytes": mem.read_hit_bytes, "read_miss_bytes": mem.read_miss_bytes,
            "write_bytes": mem.write_bytes, "writeback_bytes": mem.writeback_bytes,
            "flushed_bytes": mem.flushed_bytes, "hbm_bytes": mem.hbm_bytes,
            "l2_dirty_at_end_bytes": mem.dirty_bytes, "evictions": mem.evictions,
            "dirty_evictions": mem.dirty_evictions}


def model_use(pricing: Any) -> ModelUse | None:
    """What the run's cost model leaned on (``NpuRun.model_use``: its machine, the fitted terms in play), for the
    error band and notes; None for a model that does not say (pinned or foreign costs)."""
    use = getattr(pricing, "model_use", None)
    return use() if callable(use) else None


# -- notes on how a run was set up (Program.stats adds them: the cost model and schedule are the program's) ----------
def unpinned_note(kernels: list[str]) -> str:
    """PinnedCosts priced the tasks of ``kernels``, which pin no ``cycles=``, at its default_cycles of 0: a run of a
    real kernel moved onto PinnedCosts would otherwise report 0 cycles without a word. (No task count: a run that
    keeps no tasks, keep_trace=False or a steady state's, cannot give one, and its notes equal the full run's.)"""
    named = ", ".join(f"'{k}'" for k in kernels[:3]) + (f" and {len(kernels) - 3} more" if len(kernels) > 3 else "")
    return (f"the tasks of {named} had no cycles= and took PinnedCosts' default_cycles=0: pin them with "
            "@kernel(cycles=...) or task(..., cycles=...), or use the NPU model (compile() without cost_model=)")


def one_core_note(policy: str, suggestion: str, tasks: int) -> str:
    """A data-parallel run dispatched by ``policy`` given no core count (0: as many cores as ``streams(n)``, else 1)
    and no streams(n), so every task ran on core 0."""
    return (f"{policy} was given no core count, so all {tasks:,} tasks ran on core 0 (a count of 0 means as many "
            f"cores as .streams(n), else 1): spread them with {suggestion}")


def compute_stats(trace: Trace, task_count: int, stall_cycles: dict[str, int], pricing: Any = None,
                  totals: SpanTotals | None = None) -> ProgramStats:
    """The statistics of ``trace``; ``pricing`` is the cost model's per-run state (``Run.pricing``), for the
    memory counters and what the run leaned on (``model_use``: the error band's domain, the notes); ``totals`` the
    figures of its spans when the run kept none (else they are computed from ``trace.spans``)."""
    with gc_paused():  # (the spans it builds and drops would set the collector on the run's millions of records)
        return _compute_stats(trace, task_count, stall_cycles, pricing, totals)


def _compute_stats(trace: Trace, task_count: int, stall_cycles: dict[str, int], pricing: Any,
                   totals: SpanTotals | None) -> ProgramStats:
    if totals is None:
        totals = SpanTotals.of(trace.spans)
    total = trace.makespan
    pct = (lambda c: 100.0 * c / total) if total else (lambda c: 0.0)
    lanes = lane_ratios(totals.lanes, pct)
    use = model_use(pricing)
    return ProgramStats(
        total_cycles=total,
        time_us=trace.makespan_us,
        task_count=task_count,
        mode=trace.mode,
        clock_hz=trace.clock_hz,
        lane_busy_pct=lanes,
        core_busy_pct={k: pct(v) for k, v in sorted(totals.cores.items())},
        stage_busy_pct={k: pct(totals.stages.get(k, 0)) for k in trace.processes} if trace.mode == "pipeline"
        else {k: pct(v) for k, v in totals.stages.items()},
        overlap_pct=pct(totals.multi),
        stall_cycles=dict(stall_cycles),
        bytes_moved=totals.bytes_moved,
        error_band=error_band(lanes, use),
        notes=model_notes(lanes, use),
        memory=memory_counters(pricing),
    )
