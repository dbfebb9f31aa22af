"""Timelines of a run: a matplotlib Gantt (one lane per stage or per core pipe), channel fill, makespan and overlap."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Sequence

from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator

from ..errors import PtortTypeError, PtortValueError
from ..explore import Comparison
from ..program import Program
from ..sim.machine import cycles_to_us
from ..sim.trace import Trace, check_trace
from ..sim.trace_files import whole_run_of
from .binning import MAX_DRAWN_SPANS, TIME_BINS, binned
from .colors import cycled_color
from .figures import drawable, figure_png, new_figure, text_kwargs
from .gantt import XPAD, draw_gantt, gantt_height, lane_groups, legend_in, mark_launch, mark_makespan, overlap_pct

# Figures are built without pyplot (``Figure`` on an Agg canvas), so a notebook cell never shows or keeps a figure it
# did not return. Each run is a Gantt (``viz.gantt``) with, for a pipeline, its channels' fill below it.

LANES = ("stage", "pipe")
#: The most lanes one timeline draws (all runs of a compare() together): a lane is ~0.4 inch, so 1,000 lanes are a
#: 10 x 400 inch figure (40 million pixels at 100 dpi, about figures.MAX_PIXELS); a 24-core data-parallel run has
#: 144 pipe lanes.
MAX_LANES = 1000
MAX_POINTS = 4000  # occupancy steps per channel before they are reduced to per-pixel maxima
_WIDTH_IN, _DPI = 10.0, 100

# Figure layout, in inches.
_LANE_LABEL_CHAR_IN, _LANE_LABEL_PAD_IN = 0.065, 0.35  # left margin: per character of the longest lane label
_MAX_LEFT = 0.4  # of the figure width, at most
_RIGHT_IN = 0.25
_AXES_SHARE = 0.8  # of the figure width, assumed for a given Axes that is not laid out yet
_FILL_IN, _FILL_GAP_IN = 1.0, 0.15  # the channel-fill plot under a Gantt, and the space between them
_MARGIN_IN = 0.45  # below plot_timeline's plots (x axis); above them: the Gantt's title and legend (legend_in)
_TOP_PAD_IN = 0.08  # above the highest legend row
_COMPARE_BOTTOM_IN = 0.55  # compare(): below the last Gantt (x axis)
_TITLE_IN = 0.25  # compare()'s own title, when given
_TICKS_IN = 0.3  # between compare()'s stacked Gantts: the upper one's x ticks (then the lower one's title, legend)
_TABLE_PT = 10  # compare()'s summary table: a 14 px font at the default 100 dpi, still readable when a notebook
# shrinks the picture to its width; smaller (down to _TABLE_MIN_PT) only for a line too long for the figure
_TABLE_MIN_PT = 8
_MONO_ADVANCE_EM = 0.602  # DejaVu Sans Mono's character width (matplotlib's default monospace font)
_TABLE_LINE_IN = 0.19  # per line of that table


# -- inputs -----------------------------------------------------------------------------------------------------------
def _as_trace(obj: Any, api: str) -> Trace:
    if isinstance(obj, Trace):
        return _checked_trace(obj, api)
    if isinstance(obj, Comparison):
        raise PtortTypeError(f"{api}() takes one run, got a Comparison of {len(obj.runs)}.",
                             hint="Use compare(comparison) to stack its runs, or pass comparison.pipeline.")
    if isinstance(obj, Program) and not obj.is_complete():
        failed = obj.last_error
        if failed is not None:
            first = (str(failed).splitlines() or [""])[0]
            raise PtortValueError(f"{api}() has no run to draw: the last execute() failed with "
                                  f"{type(failed).__name__} ({first}).",
                                  hint="Fix that error and run program.execute() again, then plot.")
        raise PtortValueError(f"{api}() needs a Program that has run, but this one has no finished run.",
                              hint="Call program.execute() first; if execute() raised, fix that error and run it "
                                   "again before plotting.")
    get = getattr(obj, "trace", None)  # a Program, or anything else that keeps its run's Trace
    if callable(get):
        trace = get()
        if isinstance(trace, Trace):
            return _checked_trace(trace, api)
    raise PtortTypeError(f"{api}() needs a Trace or a Program that has run, got {type(obj).__name__} {obj!r}.",
                         hint="Pass program.trace(), or the Program after program.execute().")


@dataclass(frozen=True)
class _Run:
    """One run to draw: its trace, and the figures of the whole run (the trace's own, except for a steady-state run,
    whose trace is only its first tiles: then ``steady`` says how many of how many, and the figures are stats()')."""

    trace: Trace
    cycles: int
    us: float
    overlap_pct: float
    steady: Any = None  # SteadyState (or the loaded trace's WholeRun) of a steady-state run whose trace is part of it
    part: str = ""  # which lanes are drawn, when not all ("2 of 3 processes")
    merged: int = 0  # the spans of a long trace drawn merged per time bin (binning.binned); 0: drawn one by one

    def title(self, label: str) -> str | None:
        """The Gantt title of a partial or merged trace (None: the usual summary of the trace, which is the whole
        run drawn span by span)."""
        figures = f"{self.cycles:,} cycles = {self.us:.2f} µs, overlap {self.overlap_pct:.1f}%"
        notes = [f"{self.part} shown"] if self.part else []
        if self.merged:
            notes.append(f"{self.merged:,} spans drawn merged into {TIME_BINS:,} time bins per lane")
        shown = f" ({'; '.join(notes)})" if notes else ""
        if self.steady is not None:
            return (f"{label}: {self.steady.traced_tiles}-tile trace ({self.trace.makespan:,} cycles) of a "
                    f"steady-state run of {self.steady.tiles:,} tiles: {figures}{shown}")
        return f"{label}: {figures}{shown}" if shown else None

    @property
    def end_label(self) -> str:
        return "makespan" if self.steady is None else "trace end"


def _as_run(obj: Any, api: str) -> _Run:
    """``obj``'s trace and the figures of its whole run (see _Run); a long trace's spans merged per time bin
    (binning.binned), its figures still the whole trace's."""
    run = _whole_run(obj, api)
    drawn = binned(run.trace)
    return run if drawn is run.trace else dataclasses.replace(run, trace=drawn, merged=len(run.trace.spans))


def _whole_run(obj: Any, api: str) -> _Run:
    trace = _as_trace(obj, api)
    stats = obj.stats() if isinstance(obj, Program) else None
    if stats is not None:
        steady = getattr(stats, "steady_state", None)
        if steady is not None and steady.extrapolated and steady.traced_tiles != steady.tiles:
            return _Run(trace, stats.total_cycles, stats.time_us, stats.overlap_pct, steady)
    whole = whole_run_of(trace)  # a loaded trace of a steady-state run's first tiles: the whole run's figures
    if whole is not None:
        return _Run(trace, whole.cycles, cycles_to_us(whole.cycles, trace.clock_hz), whole.overlap_pct, whole)
    if stats is not None and len(trace.spans) > MAX_DRAWN_SPANS:  # drawn merged: stats() counted its overlap already
        return _Run(trace, trace.makespan, trace.makespan_us, stats.overlap_pct)
    return _Run(trace, trace.makespan, trace.makespan_us, overlap_pct(trace))


def _lane_keys(trace: Trace) -> list[str]:
    """The names ``processes=`` may pick: the trace's processes, then the lanes of spans that name no process (as
    the stage lanes are grouped)."""
    keys = dict.fromkeys(trace.processes)
    for sp in trace.spans:
        keys.setdefault(sp.process or sp.lane)
    return list(keys)


def _only(trace: Trace, processes: Any) -> Trace:
    """``trace`` with the spans, stalls and ends of ``processes`` only (its time axis, channels and samples kept)."""
    hint = "Pass a list of the trace's process names, e.g. processes=trace.processes[:20]."
    if isinstance(processes, str) or not isinstance(processes, (list, tuple)) \
            or not all(isinstance(p, str) for p in processes):
        raise PtortTypeError(f"plot_timeline(processes=...) takes a list of process names, got "
                             f"{type(processes).__name__} {processes!r}."[:300], hint=hint)
    known = _lane_keys(trace)
    unknown = [p for p in processes if p not in set(known)]
    if unknown or not processes:
        listed = ", ".join(map(repr, known[:8])) + (f" ... ({len(known):,} in all)" if len(known) > 8 else "")
        what = f"names {unknown[0]!r}, which is not a process of the trace" if unknown else "is empty"
        raise PtortValueError(f"plot_timeline(processes=...) {what}; its processes are {listed}.", hint=hint)
    keep = set(processes)
    return dataclasses.replace(
        trace, spans=[sp for sp in trace.spans if (sp.process or sp.lane) in keep],
        stalls=[st for st in trace.stalls if st.process in keep],
        processes=[p for p in processes if p in set(trace.processes)],
        process_end={p: end for p, end in trace.process_end.items() if p in keep})


def _check_lane_count(traces: list[Trace], lanes: str, api: str) -> None:
    """Refuse more than MAX_LANES lanes: each takes about 0.4 inch, so 20,000 lanes would be a figure of several GB."""
    counts = [len(lane_groups(t, lanes)) for t in traces]
    total = sum(counts)
    if total <= MAX_LANES:
        return
    per = "process" if lanes == "stage" else "core pipe"
    runs = f" ({' + '.join(f'{n:,}' for n in counts)} in its {len(counts)} runs)" if len(counts) > 1 else ""
    if api == "compare":
        hint = "Draw each run alone with plot_timeline(run, processes=[...]), which draws the processes you name."
    else:
        example = _lane_keys(traces[0])[:3]
        hint = (f"Draw some of them: plot_timeline(..., processes={example!r}) draws only the processes named "
                "(trace.processes lists them all)" + (", or use lanes='stage' (one lane per process)."
                                                      if lanes == "pipe" else "."))
    raise PtortValueError(f"{api}() would draw {total:,} lanes (one per {per}){runs}: more than the {MAX_LANES:,} a "
                          "timeline draws (each is a row of the picture, and the picture would take GBs).", hint=hint)


def _checked_trace(trace: Trace, api: str) -> Trace:
    """A Trace that can be drawn (a hand-made one may hold anything: 10**400 cycles would overflow a float): the
    rules every reader shares (sim.trace.check_trace), with numpy numbers made plain."""
    return check_trace(trace, f"{api}()")


def _check_ax(ax: Any) -> None:
    if ax is not None and not isinstance(ax, Axes):
        raise PtortTypeError(f"plot_timeline(ax=...) takes a matplotlib Axes, got {type(ax).__name__} {ax!r}.",
                             hint="Pass an Axes, e.g. ax = fig.add_subplot(1, 1, 1); plot_timeline(program, ax=ax), "
                                  "or leave ax out to get a new Figure.")


def _check_lanes(lanes: str) -> None:
    if lanes not in LANES:
        raise PtortValueError(f"lanes must be 'stage' or 'pipe', got {lanes!r}.",
                              hint="lanes='stage': one lane per process; lanes='pipe': one per core and pipe.")


def _steps(points: list[tuple[int, int]], makespan: int, width_px: float) -> tuple[list[int], list[int]]:
    if not points or points[0][0] > 0:
        points = [(0, 0)] + points
    if len(points) > MAX_POINTS:  # keep the highest fill per pixel column
        bucket = max(makespan, 1) / width_px
        reduced: dict[int, tuple[int, int]] = {}
        for t, o in points:
            b = int(t / bucket)
            if b not in reduced or o > reduced[b][1]:
                reduced[b] = (t, o) if b not in reduced else (reduced[b][0], o)
        points = [reduced[b] for b in sorted(reduced)]
    xs = [t for t, _ in points] + [max(makespan, points[-1][0])]
    ys = [o for _, o in points] + [points[-1][1]]
    return xs, ys


def _draw_occupancy(ax: Axes, trace: Trace, width_px: float) -> None:
    for i, (name, depth) in enumerate(trace.channels.items()):
        xs, ys = _steps(trace.occupancy(name), trace.makespan, width_px)
        line, = ax.step(xs, ys, where="post", linewidth=1.1, color=cycled_color(i),
                        label=drawable(f"{name} (depth={depth})"))
        line.set_gid(f"occupancy:{name}")
    top = max(trace.channels.values(), default=1)
    ax.set_ylim(0, top + 0.5)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    ax.set_ylabel("channel fill", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(axis="x", alpha=0.3, linewidth=0.5)
    mark_launch(ax, trace, edge=False)  # the band only: the fill plot's lines are its channels and the makespan
    mark_makespan(ax, trace.makespan)
    leg = ax.legend(loc="upper left", fontsize=7, frameon=False, ncol=min(len(trace.channels), 4))
    for t in leg.get_texts():
        t.set_parse_math(False)
    ax.set_gid("occupancy")


def _layout(fig: Figure, label_chars: int, top_in: float, bottom_in: float) -> tuple[float, float]:
    """Margins from the longest lane label; returns (axes width in pixels, figure height in inches)."""
    w, h = fig.get_size_inches()
    left = min(_MAX_LEFT, (_LANE_LABEL_CHAR_IN * label_chars + _LANE_LABEL_PAD_IN) / w)
    right = 1 - _RIGHT_IN / w
    fig.subplots_adjust(left=left, right=right, top=1 - top_in / h, bottom=bottom_in / h)
    return (right - left) * w * fig.dpi, h


def plot_timeline(trace_or_program: Trace | Program, *, lanes: str = "stage", title: str | None = None,
                  ax: Axes | None = None, processes: Sequence[str] | None = None) -> Figure:
    """A Gantt of one run: a lane per stage (``lanes="stage"``) or per core pipe (``"pipe"``), the channels' fill
    as a step plot below it, the makespan marked and the overlap % in the title.

    Takes a Trace or a Program that has run. With ``ax``, draws only the Gantt into it and returns its figure.
    After ``execute(steady_state=True)`` the Program's trace is only the first tiles of the run: the title says
    so ("4-tile trace (460 cycles) of a steady-state run of 10,000 tiles") and gives the whole run's cycles, µs and
    overlap from ``stats()``; the dashed line marks the trace's end. ``processes`` (a list of names) draws only
    those processes' lanes (stage lanes; with ``lanes="pipe"``, the pipes their spans ran on), on the run's time
    axis; the title's figures stay the whole run's. At most MAX_LANES lanes are drawn: more are refused, saying how
    many (pick some with ``processes``).
    """
    _check_lanes(lanes)
    _check_ax(ax)
    run = _as_run(trace_or_program, "plot_timeline")
    if processes is not None:
        part = _only(run.trace, processes)
        run = dataclasses.replace(run, trace=part, part=f"{len(processes):,} of {len(_lane_keys(run.trace)):,} "
                                                         "processes")
    trace = run.trace
    _check_lane_count([trace], lanes, "plot_timeline")
    label = title or trace.mode
    heading = run.title(label)
    if ax is not None:
        width_px = ax.get_window_extent().width or _WIDTH_IN * _DPI * _AXES_SHARE
        draw_gantt(ax, trace, lanes, label, width_px, title=heading, end_label=run.end_label)
        ax.set_xlabel("cycles", fontsize=8)
        return ax.figure  # type: ignore[return-value]
    groups = lane_groups(trace, lanes)
    gantt_h = gantt_height(trace, lanes)
    show_fill = bool(trace.channels)
    fill_h = _FILL_IN if show_fill else 0.0
    gap_in = _FILL_GAP_IN if show_fill else 0.0
    top_in = legend_in(trace, lanes) + _TOP_PAD_IN
    fig = new_figure(_WIDTH_IN, gantt_h + fill_h + top_in + _MARGIN_IN + gap_in, _DPI)
    gs = fig.add_gridspec(2 if show_fill else 1, 1, height_ratios=[gantt_h, fill_h] if show_fill else [1],
                          hspace=gap_in / max(gantt_h, 1.0) * 2)
    width_px, _ = _layout(fig, max((len(n) for n, _ in groups), default=4), top_in, _MARGIN_IN)
    gantt = fig.add_subplot(gs[0])
    draw_gantt(gantt, trace, lanes, label, width_px, title=heading, end_label=run.end_label)
    bottom = gantt
    if show_fill:
        bottom = fig.add_subplot(gs[1], sharex=gantt)
        _draw_occupancy(bottom, trace, width_px)
        gantt.tick_params(labelbottom=False)
    bottom.set_xlabel("cycles", fontsize=8)
    bottom.tick_params(axis="x", labelsize=7)
    return fig


def _check_labels(labels: Any) -> tuple[str, str]:
    """compare()'s labels: a list or tuple of two str (a str is refused: "ab" would be the labels "a" and "b")."""
    hint = 'Use labels=("pipeline", "data-parallel"): one name per run, in the order the runs are given.'
    if not isinstance(labels, (list, tuple)):
        raise PtortTypeError(f"compare(labels=...) takes a tuple of two str, got {type(labels).__name__} {labels!r}.",
                             hint=hint)
    if len(labels) != 2 or not all(isinstance(v, str) for v in labels):
        raise PtortValueError(f"compare(labels=...) takes a tuple of two str, got {labels!r}.", hint=hint)
    return labels[0], labels[1]


def _runs(a: Any, b: Any, labels: Any) -> list[tuple[str, _Run]]:
    if b is None and isinstance(a, Comparison):
        runs = [(label, _as_run(p, "compare")) for label, p in a.runs]
        if not runs:
            raise PtortValueError("compare() got a Comparison with no runs.", hint="Run it with mode='both'.")
        return runs
    if b is None:
        raise PtortTypeError("compare() needs two runs (or one Comparison).",
                             hint="compare(pipeline_program, data_parallel_program) or compare(study.run()).")
    first, second = _check_labels(labels)
    return [(first, _as_run(a, "compare")), (second, _as_run(b, "compare"))]


def _table(runs: list[tuple[str, _Run]]) -> list[str]:
    """compare()'s summary: cycles, µs and overlap per run, and the first run's speedup over the second; the whole
    run's figures for a steady-state run (marked *, with a note: its timeline is the first tiles only)."""
    # columns as wide as their widest figure (8 and 10 at least: the usual table), so rows stay in line
    cw = max([8] + [len(f"{r.cycles:,}") for _, r in runs])
    uw = max([10] + [len(f"{r.us:.3f}") for _, r in runs])
    table = [f"{'run':<14} {'cycles':>{cw}} {'µs':>{uw}}   overlap"]
    for label, r in runs:
        mark = "*" if r.steady is not None else ""
        table.append(f"{label[:14 - len(mark)] + mark:<14} {r.cycles:>{cw},} {r.us:>{uw}.3f}   {r.overlap_pct:5.1f}%")
    clocks = [r.trace.clock_hz for _, r in runs]
    if len(runs) == 2 and runs[0][1].cycles and len(set(clocks)) > 1:  # a cycle is not the same time in both
        (first, a), (second, b) = runs
        table.append(f"{first} speedup vs {second}: {_times(b.us / a.us)} in time (clocks differ: {first} "
                     f"{_ghz(a.trace.clock_hz)}, {second} {_ghz(b.trace.clock_hz)}; "
                     f"{_times(b.cycles / a.cycles)} in cycles)")
    elif len(runs) == 2 and runs[0][1].cycles:
        table.append(f"{runs[0][0]} speedup vs {runs[1][0]}: {_times(runs[1][1].cycles / runs[0][1].cycles)}")
    elif len(set(clocks)) > 1:
        table.append("clocks differ: " + ", ".join(f"{label} {_ghz(r.trace.clock_hz)}" for label, r in runs))
    for label, r in runs:
        if r.steady is not None:
            table.append(f"* {label}: steady-state run, figures for all {r.steady.tiles:,} tiles; its timeline shows "
                         f"the {r.steady.traced_tiles}-tile trace")
    return table


def _table_pt(table: list[str]) -> float:
    """_TABLE_PT, or the size at which the table's longest line fits the figure's width (not below _TABLE_MIN_PT)."""
    chars = max(map(len, table), default=1)
    fits = 0.97 * _WIDTH_IN * 72 / (chars * _MONO_ADVANCE_EM)
    return max(_TABLE_MIN_PT, min(_TABLE_PT, math.floor(fits * 2) / 2))


def _times(ratio: float) -> str:
    """A speedup as ``1.50x``; below 0.1 with three significant digits (``0.000460x``, never ``0.00x``)."""
    return f"{ratio:.2f}x" if ratio >= 0.1 else f"{ratio:.3g}x"


def _ghz(clock_hz: float) -> str:
    return f"{clock_hz / 1e9:g} GHz"


def _time_axis(axes: list[Axes], runs: list[_Run], end_us: float) -> None:
    """Gantts of runs at different clocks, each drawn in its own cycles, on one time axis in µs: each Axes spans the
    same time (``end_us``), so a µs takes the same width in every Gantt, and its ticks are at the same µs."""
    top = end_us * XPAD
    ticks = [t for t in MaxNLocator().tick_values(0, top) if 0 <= t <= top]
    for ax, r in zip(axes, runs):
        per_us = r.trace.clock_hz / 1e6  # cycles per µs
        ax.set_xlim(0, top * per_us)
        ax.xaxis.set_major_locator(FixedLocator([t * per_us for t in ticks]))
        ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _, per_us=per_us: f"{round(v / per_us, 9):g}"))


def compare(a: Trace | Program | Comparison, b: Trace | Program | None = None,
            labels: Sequence[str] = ("pipeline", "data-parallel"), *, lanes: str = "stage",
            title: str | None = None) -> Figure:
    """Two runs stacked on one cycle axis, each with its makespan and overlap, and a table of cycles and overlap.

    Runs at different clocks (``ascend_910b`` at 1.8 GHz against ``ascend_910b4`` at 1.5 GHz, a ``PinnedCosts
    (clock_hz=...)``, a loaded trace) share a time axis in µs instead, and the speedup is the ratio of their times
    (the table says the clocks differ and gives the ratio in cycles too): equal cycle counts at different clocks are
    not equal times.

    Takes two Traces or Programs, or one ``explore.Comparison`` (its runs and labels); ``labels`` names two runs
    given apart: a tuple of two str. A Program run with ``execute(steady_state=True)`` keeps the trace of its first
    tiles only: its Gantt is that trace, titled as such (see plot_timeline), while the table and the speedup use
    the whole run's figures from ``stats()`` (marked ``*``, with a note), never the short trace's.
    """
    _check_lanes(lanes)
    both = _runs(a, b, labels)
    _check_lane_count([r.trace for _, r in both], lanes, "compare")
    runs = [(label, r.trace) for label, r in both]
    end = max(max(t.makespan for _, t in runs), 1)
    heights = [gantt_height(t, lanes) for _, t in runs]
    chars = max((len(n) for _, t in runs for n, _ in lane_groups(t, lanes)), default=4)
    table = _table(both)
    above = [legend_in(t, lanes) for _, t in runs]  # each Gantt's title and legend rows
    top_in = above[0] + _TOP_PAD_IN + (_TITLE_IN if title else 0.0)
    bottom_in = _COMPARE_BOTTOM_IN + _TABLE_LINE_IN * len(table)
    gap_in = _TICKS_IN + max(above[1:], default=0.0) + _TOP_PAD_IN
    fig = new_figure(_WIDTH_IN, sum(heights) + gap_in * (len(runs) - 1) + top_in + bottom_in, _DPI)
    gs = fig.add_gridspec(len(runs), 1, height_ratios=heights, hspace=gap_in / (sum(heights) / len(runs)))
    width_px, h = _layout(fig, max(chars, 4), top_in, bottom_in)
    end_us = max(r.trace.makespan_us for _, r in both)
    in_time = len({r.trace.clock_hz for _, r in both}) > 1 and end_us > 0  # a cycle axis would misstate the times
    axes: list[Axes] = []
    for i, (label, run) in enumerate(both):
        ax = fig.add_subplot(gs[i], sharex=axes[0] if axes and not in_time else None)
        xmax = math.ceil(end_us * run.trace.clock_hz / 1e6) if in_time else end
        end_value = f"{run.trace.makespan_us:.3f} µs" if in_time else None  # on a time axis, the end's time
        draw_gantt(ax, run.trace, lanes, label, width_px, xmax, title=run.title(label), end_label=run.end_label,
                   end_value=end_value)
        axes.append(ax)
    if in_time:
        _time_axis(axes, [r for _, r in both], end_us)
    else:
        axes[0].set_xlim(0, end * XPAD)
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
    axes[-1].set_xlabel("time (µs): the runs' clocks differ, so each Gantt's cycles are scaled to time" if in_time
                        else "cycles", fontsize=8)
    if title:
        fig.suptitle(title, x=0.01, ha="left", fontsize=10, **text_kwargs())
    fig.text(0.01, 0.08 / h, "\n".join(table), family="monospace", fontsize=_table_pt(table), va="bottom", ha="left",
             gid="summary", **text_kwargs())
    return fig


__all__ = ["plot_timeline", "compare", "figure_png", "lane_groups", "overlap_pct", "LANES", "MAX_LANES"]
