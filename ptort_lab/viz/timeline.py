"""Timelines of a run: a matplotlib Gantt (one lane per stage or per core pipe), channel fill, makespan and overlap."""
from __future__ import annotations

from typing import Any, Sequence

from matplotlib import colormaps
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator

from ..errors import PtortTypeError, PtortValueError
from ..sim.export import PIPE_ORDER
from ..sim.stats import overlap_cycles
from ..sim.trace import Span, Trace, check_trace
from .figures import figure_png, new_figure, text_kwargs

# Figures are built without pyplot (``Figure`` on an Agg canvas), so a notebook cell never shows or keeps a figure it
# did not return. Bars are ``broken_barh`` collections, one per lane row; spans that overlap inside a lane (pipes of
# one task, or tasks a data-parallel core issues back to back) get extra rows in that lane. Tile indices label the
# bars that are wide enough, and very large runs merge bars closer than a pixel so the PNG stays small.

LANES = ("stage", "pipe")
MAX_BARS = 3000  # per Gantt; above it, neighbouring bars closer than a pixel are merged
MAX_LABELS = 80  # tile-index texts per Gantt (text is the slowest artist to draw)
MAX_SUBROWS = 6  # rows inside one lane for overlapping spans; more overlap is drawn on top
MAX_POINTS = 4000  # occupancy steps per channel before they are reduced to per-pixel maxima
_WIDTH_IN, _DPI = 10.0, 100
_MAKESPAN_COLOR = "#c0392b"
_XPAD = 1.035  # room right of the last bar for the makespan label


# -- inputs -----------------------------------------------------------------------------------------------------------
def _as_trace(obj: Any, api: str) -> Trace:
    if isinstance(obj, Trace):
        return _checked_trace(obj, api)
    if hasattr(obj, "runs") and hasattr(obj, "knobs"):
        raise PtortTypeError(f"{api}() takes one run, got a Comparison of {len(obj.runs)}.",
                             hint="Use compare(comparison) to stack its runs, or pass comparison.pipeline.")
    complete = getattr(obj, "is_complete", None)
    if callable(complete) and hasattr(obj, "workload") and not complete():
        # A Program that was never executed, or whose last execute() raised: a Program that keeps what it raised
        # (``_failed``) gets the precise message, otherwise one message covers both cases.
        failed = getattr(obj, "_failed", None)
        if isinstance(failed, BaseException):
            first = (str(failed).splitlines() or [""])[0]
            raise PtortValueError(f"{api}() has no run to draw: the last execute() failed with "
                                  f"{type(failed).__name__} ({first}).",
                                  hint="Fix that error and run program.execute() again, then plot.")
        raise PtortValueError(f"{api}() needs a Program that has run, but this one has no finished run.",
                              hint="Call program.execute() first; if execute() raised, fix that error and run it "
                                   "again before plotting.")
    get = getattr(obj, "trace", None)
    if callable(get):
        trace = get()
        if isinstance(trace, Trace):
            return _checked_trace(trace, api)
    raise PtortTypeError(f"{api}() needs a Trace or a Program that has run, got {type(obj).__name__} {obj!r}.",
                         hint="Pass program.trace(), or the Program after program.execute().")


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


# -- what goes where -----------------------------------------------------------------------------------------------
def _pipe_key(core: int, lane: str) -> tuple[int, int, str, int, str]:
    unit, _, pipe = lane.rpartition(".")
    order = PIPE_ORDER.index(pipe.upper()) if pipe.upper() in PIPE_ORDER else len(PIPE_ORDER)
    return (core, 0 if unit.startswith("AIC") else 1, unit, order, lane)


def lane_groups(trace: Trace, lanes: str) -> list[tuple[str, list[Span]]]:
    """(lane label, its spans in time order), top to bottom: processes in run order, or (core, pipe) sorted."""
    groups: dict[Any, list[Span]] = {}
    if lanes == "stage":
        for p in trace.processes:
            groups[p] = []
        for sp in trace.spans:
            groups.setdefault(sp.process or sp.lane, []).append(sp)
        items = [(str(k), v) for k, v in groups.items()]
    else:
        for sp in trace.spans:
            groups.setdefault((sp.core, sp.lane), []).append(sp)
        items = [(f"{trace.cores.get(c, f'core{c}')} {lane}", groups[(c, lane)])
                 for c, lane in sorted(groups, key=lambda k: _pipe_key(*k))]
    for _, spans in items:
        spans.sort(key=lambda s: (s.start, s.end))
    return items


def _rows(spans: list[Span]) -> list[list[Span]]:
    """Greedy interval partitioning: each row holds spans that do not overlap."""
    rows: list[list[Span]] = []
    ends: list[int] = []
    for sp in spans:
        for i, end in enumerate(ends):
            if end <= sp.start:
                rows[i].append(sp)
                ends[i] = sp.end
                break
        else:
            if len(rows) < MAX_SUBROWS:
                rows.append([sp])
                ends.append(sp.end)
            else:
                i = min(range(len(ends)), key=ends.__getitem__)
                rows[i].append(sp)
                ends[i] = max(ends[i], sp.end)
    return rows


def _merge(bars: list[tuple[int, int, str]], tol: float, same_key: bool) -> list[tuple[int, int, str]]:
    out: list[tuple[int, int, str]] = []
    for s, e, k in bars:
        if out and s - out[-1][1] <= tol and (not same_key or out[-1][2] == k):
            ps, pe, pk = out[-1]
            out[-1] = (ps, max(pe, e), pk)
        else:
            out.append((s, e, k))
    return out


def overlap_pct(trace: Trace) -> float:
    """Share of the makespan during which two or more stages (or cores) are busy, as ProgramStats computes it."""
    groups: dict[str, list[Span]] = {}
    for sp in trace.spans:
        groups.setdefault(sp.process or sp.lane, []).append(sp)
    multi, _ = overlap_cycles(groups)
    return 100.0 * multi / trace.makespan if trace.makespan else 0.0


def _summary(trace: Trace, label: str) -> str:
    us = trace.makespan / trace.clock_hz * 1e6 if trace.clock_hz else 0.0
    return f"{label}: {trace.makespan:,} cycles = {us:.2f} µs, overlap {overlap_pct(trace):.1f}%"


# -- drawing ------------------------------------------------------------------------------------------------------
def _palette(keys: list[str]) -> dict[str, Any]:
    cmap = colormaps["tab10" if len(keys) <= 10 else "tab20"]
    n = 10 if len(keys) <= 10 else 20
    return {k: cmap(i % n) for i, k in enumerate(keys)}


def _draw_gantt(ax: Axes, trace: Trace, lanes: str, label: str, width_px: float, xmax: int = 0) -> None:
    """Draw one run's lanes into ``ax``; ``xmax`` is the largest makespan on a shared x axis."""
    groups = lane_groups(trace, lanes)
    by_process = lanes == "pipe" and trace.mode == "pipeline" and len(trace.processes) > 1

    def key(sp: Span) -> str:
        return sp.process if by_process and sp.process else sp.name

    keys = list(dict.fromkeys(key(sp) for _, spans in groups for sp in spans))
    colors = _palette(keys)
    span_x = max(trace.makespan, xmax, 1)
    px = width_px / (span_x * _XPAD)  # pixels per cycle
    laid = [(name, _rows(spans)) for name, spans in groups]
    bars = [[[(sp.start, sp.end, key(sp)) for sp in row] for row in rows] for _, rows in laid]
    total = sum(len(r) for rows in bars for r in rows)
    if total > MAX_BARS:  # merge bars under a pixel apart: first of one colour, then of any
        for same_key, tol in ((True, 1.0 / px), (False, 2.0 / px)):
            bars = [[_merge(r, tol, same_key) for r in rows] for rows in bars]
            if sum(len(r) for rows in bars for r in rows) <= MAX_BARS:
                break
    labels: list[tuple[float, float, str]] = []
    for li, ((_, rows), lane_bars) in enumerate(zip(laid, bars)):
        h = 0.8 / max(len(rows), 1)
        for ri, row in enumerate(lane_bars):
            if not row:
                continue
            y0 = li - 0.4 + ri * h
            wide = sorted(e - s for s, e, _ in row)[len(row) // 2] * px >= 6  # thin bars get no white edge
            coll = ax.broken_barh([(s, e - s) for s, e, _ in row], (y0, h * 0.92),
                                  facecolors=[colors[k] for _, _, k in row], edgecolor="white" if wide else "none",
                                  linewidth=0.3 if wide else 0)
            coll.set_gid(f"bars:{li}")
        if len(rows) > 2:  # rows too thin for text
            continue
        extent: dict[Any, list[Any]] = {}  # a tile label over each task's extent, in the row of its first span
        for ri, row in enumerate(rows):
            for sp in row:
                tid = sp.task_id if lanes == "stage" else (sp.task_id, sp.start)
                e = extent.setdefault(tid, [sp.start, sp.end, sp.index, li - 0.4 + (ri + 0.46) * h])
                if sp.start < e[0]:
                    e[3] = li - 0.4 + (ri + 0.46) * h
                e[0], e[1] = min(e[0], sp.start), max(e[1], sp.end)
        for s, e, index, y in extent.values():
            text = str(index)
            if (e - s) * px >= 5.5 * len(text) + 3:
                labels.append(((s + e) / 2, y, text))
    right: dict[float, float] = {}  # per row: where the last label ends (cycles), so labels never collide
    placed = 0
    for x, y, text in sorted(labels):
        half = (5.5 * len(text) + 3) / 2 / px
        if x - half < right.get(y, float("-inf")) or placed >= MAX_LABELS:
            continue
        right[y] = x + half
        placed += 1
        ax.text(x, y, text, ha="center", va="center", fontsize=6, clip_on=True, **text_kwargs())
    ax.set_yticks(range(len(groups)), [name for name, _ in groups], **text_kwargs(fontsize=8))
    ax.set_ylim(max(len(groups), 1) - 0.5, -0.5)
    ax.set_xlim(0, span_x * _XPAD)
    ax.grid(axis="x", alpha=0.3, linewidth=0.5)
    ax.set_axisbelow(True)
    ax.tick_params(axis="x", labelsize=7)
    ax.axvline(trace.makespan, color=_MAKESPAN_COLOR, linestyle="--", linewidth=1, gid="makespan")
    ax.text(trace.makespan, 0.98, f" makespan {trace.makespan:,}", transform=ax.get_xaxis_transform(),
            rotation=90, ha="left", va="top", fontsize=7, color=_MAKESPAN_COLOR, gid="makespan-label")
    ax.set_title(_summary(trace, label), loc="left", fontsize=9, y=1.0, pad=4, **text_kwargs())  # y: no auto
    shown = keys[:12]
    handles = [Patch(facecolor=colors[k], label=k) for k in shown]
    if len(keys) > len(shown):
        handles.append(Patch(facecolor="white", label=f"+{len(keys) - len(shown)} more"))
    if handles:
        leg = ax.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=min(len(handles), 6),
                        fontsize=7, frameon=False, borderaxespad=0.1, handlelength=1.0, columnspacing=0.8)
        for t in leg.get_texts():
            t.set_parse_math(False)
    ax.set_gid("gantt")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{int(v):,}"))


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
    colors = _palette(list(trace.channels))
    for name, depth in trace.channels.items():
        xs, ys = _steps(trace.occupancy(name), trace.makespan, width_px)
        line, = ax.step(xs, ys, where="post", linewidth=1.1, color=colors[name], label=f"{name} (depth={depth})")
        line.set_gid(f"occupancy:{name}")
    top = max(trace.channels.values(), default=1)
    ax.set_ylim(0, top + 0.5)
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, nbins=4))
    ax.set_ylabel("channel fill", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(axis="x", alpha=0.3, linewidth=0.5)
    ax.axvline(trace.makespan, color=_MAKESPAN_COLOR, linestyle="--", linewidth=1, gid="makespan")
    leg = ax.legend(loc="upper left", fontsize=7, frameon=False, ncol=min(len(trace.channels), 4))
    for t in leg.get_texts():
        t.set_parse_math(False)
    ax.set_gid("occupancy")


def _layout(fig: Figure, label_chars: int, top_in: float, bottom_in: float) -> tuple[float, float]:
    """Margins from the longest lane label; returns (axes width in pixels, figure height)."""
    w, h = fig.get_size_inches()
    left = min(0.4, (0.065 * label_chars + 0.35) / w)
    fig.subplots_adjust(left=left, right=1 - 0.25 / w, top=1 - top_in / h, bottom=bottom_in / h)
    return (1 - 0.25 / w - left) * w * fig.dpi, h


def _gantt_height(trace: Trace, lanes: str) -> tuple[int, float]:
    groups = lane_groups(trace, lanes)
    rows = sum(max(1, min(len(_rows(s)), 3)) for _, s in groups)
    return len(groups), max(1.0, 0.12 * rows + 0.28 * len(groups) + 0.2)


def plot_timeline(trace_or_program: Any, *, lanes: str = "stage", title: str | None = None,
                  ax: Axes | None = None) -> Figure:
    """A Gantt of one run: a lane per stage (``lanes="stage"``) or per core pipe (``"pipe"``), the channels' fill
    as a step plot below it, the makespan marked and the overlap % in the title.

    Takes a Trace or a Program that has run. With ``ax``, draws only the Gantt into it and returns its figure.
    """
    _check_lanes(lanes)
    _check_ax(ax)
    trace = _as_trace(trace_or_program, "plot_timeline")
    label = title or trace.mode
    if ax is not None:
        width_px = ax.get_window_extent().width or _WIDTH_IN * _DPI * 0.8
        _draw_gantt(ax, trace, lanes, label, width_px)
        ax.set_xlabel("cycles", fontsize=8)
        return ax.figure  # type: ignore[return-value]
    groups = lane_groups(trace, lanes)
    _, gantt_h = _gantt_height(trace, lanes)
    show_fill = bool(trace.channels)
    fill_h = 1.0 if show_fill else 0.0
    top_in, bottom_in = 0.45, 0.45
    fig = new_figure(_WIDTH_IN, gantt_h + fill_h + top_in + bottom_in + (0.15 if show_fill else 0.0), _DPI)
    gs = fig.add_gridspec(2 if show_fill else 1, 1, height_ratios=[gantt_h, fill_h] if show_fill else [1],
                          hspace=0.15 / max(gantt_h, 1.0) * 2)
    width_px, _ = _layout(fig, max((len(n) for n, _ in groups), default=4), top_in, bottom_in)
    gantt = fig.add_subplot(gs[0])
    _draw_gantt(gantt, trace, lanes, label, width_px)
    bottom = gantt
    if show_fill:
        bottom = fig.add_subplot(gs[1], sharex=gantt)
        _draw_occupancy(bottom, trace, width_px)
        gantt.tick_params(labelbottom=False)
    bottom.set_xlabel("cycles", fontsize=8)
    bottom.tick_params(axis="x", labelsize=7)
    return fig


def _runs(a: Any, b: Any, labels: Sequence[str]) -> list[tuple[str, Trace]]:
    if b is None and hasattr(a, "runs") and hasattr(a, "knobs"):
        runs = [(label, _as_trace(p, "compare")) for label, p in a.runs]
        if not runs:
            raise PtortValueError("compare() got a Comparison with no runs.", hint="Run it with mode='both'.")
        return runs
    if b is None:
        raise PtortTypeError("compare() needs two runs (or one Comparison).",
                             hint="compare(pipeline_program, data_parallel_program) or compare(study.run()).")
    if len(labels) != 2:
        raise PtortValueError(f"compare() labels must be two strings, got {labels!r}.",
                              hint='Use labels=("pipeline", "data-parallel").')
    return [(str(labels[0]), _as_trace(a, "compare")), (str(labels[1]), _as_trace(b, "compare"))]


def compare(a: Any, b: Any = None, labels: Sequence[str] = ("pipeline", "data-parallel"), *,
            lanes: str = "stage", title: str | None = None) -> Figure:
    """Two runs stacked on one cycle axis, each with its makespan and overlap, and a table of cycles and overlap.

    Takes two Traces or Programs, or one ``explore.Comparison`` (its runs and labels).
    """
    _check_lanes(lanes)
    runs = _runs(a, b, labels)
    end = max(max(t.makespan for _, t in runs), 1)
    heights = [_gantt_height(t, lanes)[1] for _, t in runs]
    chars = max((len(n) for _, t in runs for n, _ in lane_groups(t, lanes)), default=4)
    table = ["run             cycles         µs   overlap"]
    for label, t in runs:
        us = t.makespan / t.clock_hz * 1e6 if t.clock_hz else 0.0
        table.append(f"{label[:14]:<14} {t.makespan:>8,} {us:>10.3f}   {overlap_pct(t):5.1f}%")
    if len(runs) == 2 and runs[0][1].makespan:
        table.append(f"{runs[0][0]} speedup vs {runs[1][0]}: {runs[1][1].makespan / runs[0][1].makespan:.2f}x")
    top_in, bottom_in = 0.5 + (0.25 if title else 0.0), 0.55 + 0.16 * len(table)
    gap = 0.55
    fig = new_figure(_WIDTH_IN, sum(heights) + gap * (len(runs) - 1) + top_in + bottom_in, _DPI)
    gs = fig.add_gridspec(len(runs), 1, height_ratios=heights, hspace=gap / (sum(heights) / len(runs)))
    width_px, h = _layout(fig, max(chars, 4), top_in, bottom_in)
    axes: list[Axes] = []
    for i, (label, trace) in enumerate(runs):
        ax = fig.add_subplot(gs[i], sharex=axes[0] if axes else None)
        _draw_gantt(ax, trace, lanes, label, width_px, end)
        axes.append(ax)
    axes[0].set_xlim(0, end * _XPAD)
    for ax in axes[:-1]:
        ax.tick_params(labelbottom=False)
    axes[-1].set_xlabel("cycles", fontsize=8)
    if title:
        fig.suptitle(title, x=0.01, ha="left", fontsize=10, **text_kwargs())
    fig.text(0.01, 0.08 / h, "\n".join(table), family="monospace", fontsize=8, va="bottom", ha="left",
             gid="summary", **text_kwargs())
    return fig


__all__ = ["plot_timeline", "compare", "figure_png", "lane_groups", "overlap_pct", "LANES"]
