"""One run's Gantt in a matplotlib Axes: lanes (stages or core pipes), bars in palette colours, tile-index labels,
the kernel launch and the makespan, a title with cycles, µs and overlap, and a legend of the colours.

Bars are ``broken_barh`` collections, one per lane row (gid ``bars:<lane>``); spans that overlap inside a lane (pipes
of one task, or tasks a data-parallel core issues back to back) get extra rows in that lane. Tile indices label the
bars that are wide enough, and very large runs merge bars closer than a pixel so the PNG stays small (a bar merged
from several ops takes the colour of the op that covers most of it). A header strip above the first lane holds the
makespan label and the kernel launch's label, so neither is drawn over a bar. Colours come from palette.json (see
``viz.colors``), shared with the JupyterLab renderers.
"""
from __future__ import annotations

from typing import Any, Callable, Hashable, NamedTuple

from matplotlib.axes import Axes
from matplotlib.font_manager import FontProperties
from matplotlib.patches import Patch
from matplotlib.textpath import TextPath
from matplotlib.ticker import FuncFormatter
from matplotlib.transforms import ScaledTranslation

from ..sim.export import PIPE_ORDER
from ..sim.stats import overlap_cycles, stage_groups
from ..sim.trace import Span, Trace
from .colors import MAKESPAN_COLOR, PALETTE, hashed_color, span_color
from .figures import drawable, text_kwargs

MAX_BARS = 3000  # per Gantt; above it, neighbouring bars closer than a pixel are merged
MAX_LABELS = 80  # tile-index texts per Gantt (text is the slowest artist to draw)
MAX_SUBROWS = 6  # rows inside one lane for overlapping spans; more overlap is drawn on top
MAX_LABEL_ROWS = 2  # a lane split into more rows than this has rows too thin for text
MAX_LEGEND = 12  # legend entries before "+N more" (as in the JupyterLab renderer)
LEGEND_COLUMNS = 6
TITLE_IN = 0.22  # the title line above a Gantt; its legend sits above that, so the two never overlap
LEGEND_ROW_IN = 0.15  # one row of legend entries
XPAD = 1.035  # the x axis runs to XPAD * makespan: room right of the last bar
HEADER_IN = 0.2  # the strip above the first lane that holds the makespan and launch labels (clear of every bar)
HEADER_PT = 7.5  # their font size
LAUNCH_COLOR: str = PALETTE["launch"]
LAUNCH_ALPHA = 0.22  # the band's opacity, as the JupyterLab renderer's
_LAUNCH_TEXT_COLOR = "#555555"
_HEADER_PAD_PX = 4  # between a header label and the line it names (or its neighbour)

# Geometry, in lane units on the y axis (lane i is centred on y = i) and pixels along x.
LANE_FILL = 0.8  # share of a lane's height its rows fill; the rest separates neighbouring lanes
ROW_FILL = 0.92  # share of a row's height its bars fill, so overlapping rows stay apart
EDGE_MIN_PX = 6  # bars thinner than this (the row's median) get no white edge: it would hide them
LABEL_PT = 6  # tile-index font size
_LABEL_CHAR_PX, _LABEL_PAD_PX = 5.5, 3  # width of one digit at LABEL_PT, and the room a label keeps around it
_ROW_IN, _LANE_IN, _PAD_IN = 0.12, 0.28, 0.2  # a Gantt's height in inches: per row (3 at most per lane), per lane, once

Bar = tuple[int, int, str]  # (start, end, colour key)


class TileLabel(NamedTuple):
    """A tile index drawn at (x cycles, y lane units)."""

    x: float
    y: float
    text: str


def _label_px(text: str) -> float:
    """How wide a tile-index label is on screen, padding included (an estimate: digits at LABEL_PT)."""
    return _LABEL_CHAR_PX * len(text) + _LABEL_PAD_PX


def _row_box(lane: int, row: int, rows: int) -> tuple[float, float]:
    """(top y, height) of row ``row`` of ``rows`` in lane ``lane``: the rows share the lane's LANE_FILL band."""
    h = LANE_FILL / max(rows, 1)
    return lane - LANE_FILL / 2 + row * h, h


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


def _merge(bars: list[Bar], tol: float, same_key: bool) -> list[Bar]:
    """Bars at most ``tol`` apart as one (of one colour key only, with ``same_key``). A bar merged from several keys
    takes the key that covers most of its cycles (the first such on a tie): the op the stretch mostly ran, not
    whichever happened to start it."""
    out: list[Bar] = []
    cover: list[dict[str, int]] = []  # per merged bar: cycles of each key in it
    for s, e, k in bars:
        if out and s - out[-1][1] <= tol and (not same_key or out[-1][2] == k):
            ps, pe, _ = out[-1]
            cycles = cover[-1]
            cycles[k] = cycles.get(k, 0) + e - s
            out[-1] = (ps, max(pe, e), max(cycles, key=cycles.__getitem__))
        else:
            out.append((s, e, k))
            cover.append({k: e - s})
    return out


def overlap_pct(trace: Trace) -> float:
    """Share of the makespan during which two or more stages (or cores) are busy, as ProgramStats.overlap_pct."""
    multi, _ = overlap_cycles(stage_groups(trace))
    return 100.0 * multi / trace.makespan if trace.makespan else 0.0


def _summary(trace: Trace, label: str) -> str:
    return f"{label}: {trace.makespan:,} cycles = {trace.makespan_us:.2f} µs, overlap {overlap_pct(trace):.1f}%"


# -- drawing ------------------------------------------------------------------------------------------------------
def _by_process(trace: Trace, lanes: str) -> bool:
    """Whether bar colours say which process ran them (pipe lanes of a pipeline run) rather than which op."""
    return lanes == "pipe" and trace.mode == "pipeline" and len(trace.processes) > 1


def _colors(groups: list[tuple[str, list[Span]]], key: Callable[[Span], str], by_process: bool) -> dict[str, str]:
    """Colour key -> colour, in order of first appearance (lane by lane): an op's palette colour, else its pipe's,
    else its name's hashed colour; a process always takes its name's hashed colour."""
    colors: dict[str, str] = {}
    for _, spans in groups:
        for sp in spans:
            k = key(sp)
            if k not in colors:
                colors[k] = hashed_color(k) if by_process and sp.process else span_color(k, sp.lane)
    return colors


def _bars(ax: Axes, laid: list[list[list[Span]]], key: Callable[[Span], str], colors: dict[str, str],
          px: float) -> None:
    """One broken_barh per row (gid ``bars:<lane>``); above MAX_BARS, bars under a pixel apart are merged."""
    bars = [[[(sp.start, sp.end, key(sp)) for sp in row] for row in rows] for rows in laid]
    if sum(len(r) for rows in bars for r in rows) > MAX_BARS:  # first bars of one colour, then of any
        for same_key, tol in ((True, 1.0 / px), (False, 2.0 / px)):
            bars = [[_merge(r, tol, same_key) for r in rows] for rows in bars]
            if sum(len(r) for rows in bars for r in rows) <= MAX_BARS:
                break
    for li, lane_bars in enumerate(bars):
        for ri, row in enumerate(lane_bars):
            if not row:
                continue
            y0, h = _row_box(li, ri, len(lane_bars))
            wide = sorted(e - s for s, e, _ in row)[len(row) // 2] * px >= EDGE_MIN_PX
            coll = ax.broken_barh([(s, e - s) for s, e, _ in row], (y0, h * ROW_FILL),
                                  facecolors=[colors[k] for _, _, k in row], edgecolor="white" if wide else "none",
                                  linewidth=0.3 if wide else 0)
            coll.set_gid(f"bars:{li}")


def _tile_labels(laid: list[list[list[Span]]], lanes: str, px: float) -> list[TileLabel]:
    """A tile index over each task's extent in a lane (in the row of its first span), where the extent is wide
    enough for the text; lanes of more than MAX_LABEL_ROWS rows get none."""
    labels: list[TileLabel] = []
    for li, rows in enumerate(laid):
        if len(rows) > MAX_LABEL_ROWS:
            continue
        extent: dict[Hashable, list[Any]] = {}  # task -> [start, end, tile index, y]
        for ri, row in enumerate(rows):
            y0, h = _row_box(li, ri, len(rows))
            y = y0 + h * ROW_FILL / 2  # the middle of the bar
            for sp in row:
                if sp.index is None:  # (a foreign trace's span: no tile to name)
                    continue
                # a span without a task id (-1: hand-made or foreign) is its own task, not one with all the others
                task: Hashable = sp.task_id if lanes == "stage" and sp.task_id != -1 else (sp.task_id, sp.start)
                e = extent.setdefault(task, [sp.start, sp.end, sp.index, y])
                if sp.start < e[0]:
                    e[3] = y
                e[0], e[1] = min(e[0], sp.start), max(e[1], sp.end)
        for s, e, index, y in extent.values():
            text = str(index)
            if (e - s) * px >= _label_px(text):
                labels.append(TileLabel((s + e) / 2, y, text))
    return labels


def _place_labels(ax: Axes, labels: list[TileLabel], px: float) -> None:
    """Draw labels left to right, skipping one that would overlap its row's previous label; at most MAX_LABELS."""
    right: dict[float, float] = {}  # per row: where the last label ends (cycles)
    placed = 0
    for x, y, text in sorted(labels):
        half = _label_px(text) / 2 / px
        if x - half < right.get(y, float("-inf")) or placed >= MAX_LABELS:
            continue
        right[y] = x + half
        placed += 1
        ax.text(x, y, drawable(text), ha="center", va="center", fontsize=LABEL_PT, clip_on=True, **text_kwargs())


def mark_makespan(ax: Axes, makespan: int) -> None:
    ax.axvline(makespan, color=MAKESPAN_COLOR, linestyle="--", linewidth=1, gid="makespan")


def launch_of(trace: Trace) -> int:
    """Cycles of the kernel launch before the first instruction, as the trace records it (0: none or not known)."""
    return trace.launch_cycles or 0


def mark_launch(ax: Axes, trace: Trace, edge: bool = True) -> None:
    """The kernel launch as the JupyterLab timeline draws it: a pale band from 0 (no instruction runs before the
    launch completes), with ``edge`` a dotted line at its end. Nothing when the trace records no launch."""
    launch = launch_of(trace)
    if launch > 0:
        ax.axvspan(0, launch, facecolor=LAUNCH_COLOR, alpha=LAUNCH_ALPHA, linewidth=0, zorder=0.6, gid="launch")
        if edge:
            ax.axvline(launch, color=LAUNCH_COLOR, linestyle=(0, (2, 3)), linewidth=1, zorder=0.6, gid="launch-edge")


def _text_px(text: str, dpi: float, italic: bool = False) -> float:
    """How wide ``text`` is drawn at HEADER_PT, in pixels at ``dpi`` (its outline measured: no renderer needed)."""
    prop = FontProperties(size=HEADER_PT, style="italic" if italic else "normal")
    return float(TextPath((0, 0), text, size=HEADER_PT, prop=prop).get_extents().width) * dpi / 72


def _header_lanes(ax: Axes, lanes: int) -> float:
    """The header strip's height in lane units: HEADER_IN of the Axes' height, the lanes sharing the rest."""
    height_px = ax.get_window_extent().height
    header_px = HEADER_IN * ax.figure.dpi
    return header_px * lanes / max(height_px - header_px, header_px)


def _header_labels(ax: Axes, trace: Trace, px: float, header_y: float, end_text: str) -> None:
    """The makespan label beside its line (left of it when there is room, so it stays inside the axes), then the
    launch label centred over the launch band: the longest of its forms that fits the band and clears the makespan
    label, as the JupyterLab renderer shortens it. Both sit in the header strip, where no bar is."""
    dpi = ax.figure.dpi
    end_px = trace.makespan * px
    width = _text_px(end_text, dpi) + _HEADER_PAD_PX
    left = width <= end_px
    pad = _HEADER_PAD_PX / px
    ax.text(trace.makespan - pad if left else trace.makespan + pad, header_y, end_text, ha="right" if left else "left",
            va="center", fontsize=HEADER_PT, color=MAKESPAN_COLOR, gid="makespan-label", **text_kwargs())
    taken = (end_px - width, end_px) if left else (end_px, end_px + width)
    launch = launch_of(trace)
    band_px = launch * px
    for text in (f"kernel launch · {launch:,} cycles", "kernel launch", "launch"):
        half = (_text_px(text, dpi, italic=True) + _HEADER_PAD_PX) / 2
        if 2 * half <= band_px and (band_px / 2 + half <= taken[0] or band_px / 2 - half >= taken[1]):
            ax.text(launch / 2, header_y, text, ha="center", va="center", fontsize=HEADER_PT, style="italic",
                    color=_LAUNCH_TEXT_COLOR, gid="launch-label", **text_kwargs())
            break


def _style_axes(ax: Axes, trace: Trace, lane_names: list[str], span_x: int, title: str, end_text: str,
                px: float) -> None:
    """Lane labels top to bottom, the header strip above them, the x range, grid, launch band, makespan line and
    their labels, and the title."""
    lanes = max(len(lane_names), 1)
    header = _header_lanes(ax, lanes)
    ax.set_yticks(range(len(lane_names)), [drawable(n) for n in lane_names], **text_kwargs(fontsize=8))
    ax.set_ylim(lanes - 0.5, -0.5 - header)
    ax.set_xlim(0, span_x * XPAD)
    ax.grid(axis="x", alpha=0.3, linewidth=0.5)
    ax.set_axisbelow(True)
    ax.tick_params(axis="x", labelsize=7)
    mark_launch(ax, trace)
    mark_makespan(ax, trace.makespan)
    _header_labels(ax, trace, px, -0.5 - header / 2, end_text)
    ax.set_title(drawable(title), loc="left", fontsize=9, y=1.0, pad=4, **text_kwargs())  # y: no auto
    ax.set_gid("gantt")
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{int(v):,}"))


def _legend_handles(colors: dict[str, str]) -> list[Patch]:
    """The colour keys in order of first appearance, at most MAX_LEGEND, then "+N more"."""
    shown = list(colors)[:MAX_LEGEND]
    handles = [Patch(facecolor=colors[k], label=drawable(k)) for k in shown]
    if len(colors) > len(shown):
        handles.append(Patch(facecolor="white", label=f"+{len(colors) - len(shown)} more"))
    return handles


def _legend(ax: Axes, colors: dict[str, str]) -> None:
    """The colour legend, right-aligned in its own rows above the title line (a long title never runs under it)."""
    handles = _legend_handles(colors)
    if handles:
        above_title = ax.transAxes + ScaledTranslation(0, TITLE_IN, ax.figure.dpi_scale_trans)
        leg = ax.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0), bbox_transform=above_title,
                        ncol=min(len(handles), LEGEND_COLUMNS), fontsize=7, frameon=False, borderaxespad=0.1,
                        handlelength=1.0, columnspacing=0.8)
        for t in leg.get_texts():
            t.set_parse_math(False)


def _color_key(by_process: bool) -> Callable[[Span], str]:
    """What a span's colour says: its process (``_by_process``) or its op."""
    def key(sp: Span) -> str:
        return sp.process if by_process and sp.process else sp.name
    return key


def legend_in(trace: Trace, lanes: str) -> float:
    """Inches a Gantt's title line and legend rows take above it (what a figure's margin must leave): as many legend
    entries as ``_legend_handles`` makes of the run's colour keys, counted without grouping the spans."""
    keys = len(set(map(_color_key(_by_process(trace, lanes)), trace.spans)))
    entries = min(keys, MAX_LEGEND) + (keys > MAX_LEGEND)
    rows = -(-entries // LEGEND_COLUMNS)
    return TITLE_IN + LEGEND_ROW_IN * rows


def draw_gantt(ax: Axes, trace: Trace, lanes: str, label: str, width_px: float, xmax: int = 0,
               title: str | None = None, end_label: str = "makespan", end_value: str | None = None) -> None:
    """Draw one run's lanes into ``ax``; ``xmax`` is the largest makespan on a shared x axis. ``title`` replaces
    the summary title (``label: cycles, µs, overlap``), ``end_label`` the word at the trace's end line (a trace
    that is only part of its run does not end at the run's makespan), ``end_value`` the figure after it (default
    the makespan in cycles; a Gantt on a time axis gives its time)."""
    groups = lane_groups(trace, lanes)
    by_process = _by_process(trace, lanes)
    key = _color_key(by_process)
    colors = _colors(groups, key, by_process)
    span_x = max(trace.makespan, xmax, 1)
    px = width_px / (span_x * XPAD)  # pixels per cycle
    laid = [_rows(spans) for _, spans in groups]
    _bars(ax, laid, key, colors, px)
    _place_labels(ax, _tile_labels(laid, lanes, px), px)
    heading = title if title is not None else _summary(trace, label)
    end_text = f" {end_label} {trace.makespan:,}" if end_value is None else f" {end_label} {end_value}"
    _style_axes(ax, trace, [name for name, _ in groups], span_x, heading, end_text, px)
    _legend(ax, colors)


def gantt_height(trace: Trace, lanes: str) -> float:
    """Inches for one run's Gantt: a lane of overlapping spans grows by up to three rows' worth; the header strip
    comes on top."""
    groups = lane_groups(trace, lanes)
    rows = sum(max(1, min(len(_rows(s)), 3)) for _, s in groups)
    return max(1.0, _ROW_IN * rows + _LANE_IN * len(groups) + _PAD_IN) + HEADER_IN


__all__ = ["draw_gantt", "gantt_height", "legend_in", "lane_groups", "mark_makespan", "mark_launch", "launch_of",
           "overlap_pct", "MAX_BARS", "MAX_LABELS", "LANE_FILL", "ROW_FILL", "XPAD", "HEADER_IN", "HEADER_PT"]
