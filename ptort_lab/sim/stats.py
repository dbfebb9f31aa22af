"""Run statistics from a Trace: makespan, busy shares per lane and core, overlap, stalls, bytes moved, the GM
traffic the memory model counted, and the model's validated error band for the kind of work (validation.py)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

from .machine import DEFAULT_CLOCK_HZ
from .trace import Span, Trace
from .validation import ErrorBand, error_band, model_notes


def _merge(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for s, e in sorted(intervals):
        if e <= s:
            continue
        if out and s <= out[-1][1]:
            if e > out[-1][1]:
                out[-1] = (out[-1][0], e)
        else:
            out.append((s, e))
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
    events: list[tuple[int, int]] = []
    for spans in groups.values():
        for s, e in _merge((sp.start, sp.end) for sp in spans):
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
    compile_time_ms: float = 0.0
    execute_time_ms: float = 0.0
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
        return "\n".join(lines)

    def print_summary(self) -> None:
        print(self.summary())

    def __call__(self) -> ProgramStats:
        """Itself: ``program.stats()`` and the reference's ``program.stats`` are the same object."""
        return self

    def __str__(self) -> str:
        return self.summary()


def _lane_ratios(per_core_lane: dict[tuple[int, str], list[Span]], pct: Any) -> dict[str, float]:
    """Busy share of each lane (pipe or stage), averaged over the cores that use it (msprof's *_ratio)."""
    sums: dict[str, list[float]] = {}
    for (_, lane), spans in per_core_lane.items():
        sums.setdefault(lane, []).append(pct(busy_cycles(spans)))
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


def compute_stats(trace: Trace, task_count: int, stall_cycles: dict[str, int], pricing: Any = None) -> ProgramStats:
    """The statistics of ``trace``; ``pricing`` is the cost model's per-run state (``Run.pricing``), for the
    memory counters."""
    total = trace.makespan
    pct = (lambda c: 100.0 * c / total) if total else (lambda c: 0.0)
    per_core_lane: dict[tuple[int, str], list[Span]] = {}
    stages = stage_groups(trace)
    cores: dict[int, list[Span]] = {}
    for sp in trace.spans:
        per_core_lane.setdefault((sp.core, sp.lane), []).append(sp)
        cores.setdefault(sp.core, []).append(sp)
    multi, _ = overlap_cycles(stages)
    lanes = _lane_ratios(per_core_lane, pct)
    return ProgramStats(
        total_cycles=total,
        time_us=trace.makespan_us,
        task_count=task_count,
        mode=trace.mode,
        clock_hz=trace.clock_hz,
        lane_busy_pct=lanes,
        core_busy_pct={k: pct(busy_cycles(v)) for k, v in sorted(cores.items())},
        stage_busy_pct={k: pct(busy_cycles(stages.get(k, []))) for k in trace.processes} if trace.mode == "pipeline"
        else {k: pct(busy_cycles(v)) for k, v in stages.items()},
        overlap_pct=pct(multi),
        stall_cycles=dict(stall_cycles),
        bytes_moved=sum(sp.bytes for sp in trace.spans),
        error_band=error_band(lanes),
        notes=model_notes(lanes),
        memory=memory_counters(pricing),
    )
