"""Timelines: lanes per stage or pipe, one bar per span, makespan, channel fill, compare, deterministic PNG."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from matplotlib.collections import PolyCollection
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from viz_cases import XSS, two_stage

from ptort_lab import (
    Channel,
    PinnedCosts,
    Process,
    PtortError,
    PtortTypeError,
    PtortValueError,
    Span,
    Trace,
    connect,
    consume,
    send,
    task,
)
from ptort_lab.explore import Knobs, run_study
from ptort_lab.viz import colors, compare, figure_png, plot_timeline
from ptort_lab.viz import gantt as gantt_mod


def axes_by_gid(fig: Figure, gid: str) -> list:
    return [ax for ax in fig.axes if ax.get_gid() == gid]


def lane_labels(ax) -> list[str]:
    return [t.get_text() for t in ax.get_yticklabels()]


def bar_count(ax) -> int:
    return sum(len(c.get_paths()) for c in ax.collections if isinstance(c, PolyCollection))


def makespan_x(ax) -> list[float]:
    return [list(line.get_xdata()) for line in ax.lines if line.get_gid() == "makespan"]


@pytest.fixture
def spec_run(spec_pipeline):
    """The spec pipeline on the default NPU model (spans per pipe instruction)."""
    return spec_pipeline.compile().execute()


# -- lanes and bars ---------------------------------------------------------------------------------------------------
def test_stage_lanes_are_the_processes(spec_run):
    """lanes="stage" draws one lane per process, in run order, labelled with its name."""
    (gantt,) = axes_by_gid(plot_timeline(spec_run), "gantt")
    assert lane_labels(gantt) == spec_run.trace().processes == ["loader", "computer", "storer"]


def test_pipe_lanes_are_core_pipes(spec_run):
    """lanes="pipe" draws one lane per (core, pipe) that ran something, loads before vector before stores."""
    (gantt,) = axes_by_gid(plot_timeline(spec_run, lanes="pipe"), "gantt")
    assert lane_labels(gantt) == [f"core{c} AIV0.{p}" for c in range(3) for p in ("MTE2", "V", "MTE3")]


@pytest.mark.parametrize("lanes", ["stage", "pipe"])
def test_one_bar_per_span(spec_run, pinned_run, lanes):
    """Every span of a small run is one bar, in either lane mode."""
    for program in (pinned_run, spec_run):
        (gantt,) = axes_by_gid(plot_timeline(program, lanes=lanes), "gantt")
        assert bar_count(gantt) == len(program.trace().spans)


def test_pinned_bars_match_span_times(pinned_run):
    """With pinned costs the producer lane shows four 100-cycle bars at the spans' start times."""
    trace = pinned_run.trace()
    (gantt,) = axes_by_gid(plot_timeline(trace), "gantt")
    producer = [c for c in gantt.collections if c.get_gid() == "bars:0"]
    xs = sorted((round(p.vertices[:, 0].min()), round(p.vertices[:, 0].max())) for c in producer
                for p in c.get_paths())
    assert xs == sorted((s.start, s.end) for s in trace.spans if s.process == "producer")
    assert all(e - s == 100 for s, e in xs)


def test_tiles_are_labelled_with_their_index(pinned_run):
    """Bars wide enough for text carry their tile index."""
    (gantt,) = axes_by_gid(plot_timeline(pinned_run), "gantt")
    tile_texts = sorted(t.get_text() for t in gantt.texts if t.get_gid() is None)
    assert tile_texts == sorted(["0", "1", "2", "3"] * 2)


def test_makespan_is_marked(spec_run):
    """A vertical line at trace.makespan on the Gantt and on the fill plot, and a label naming it."""
    trace = spec_run.trace()
    fig = plot_timeline(spec_run)
    for ax in fig.axes:
        assert makespan_x(ax) == [[trace.makespan, trace.makespan]]
    (gantt,) = axes_by_gid(fig, "gantt")
    assert any(t.get_gid() == "makespan-label" and f"{trace.makespan:,}" in t.get_text() for t in gantt.texts)


def test_overlap_and_cycles_in_the_title(spec_run):
    """The title gives the cycles and the same overlap % as program.stats()."""
    stats = spec_run.stats()
    (gantt,) = axes_by_gid(plot_timeline(spec_run), "gantt")
    title = gantt.get_title(loc="left")
    assert title.startswith(f"pipeline: {stats.total_cycles:,} cycles")
    assert title.endswith(f"overlap {stats.overlap_pct:.1f}%")


def test_channel_fill_is_a_step_plot(spec_run):
    """One step line per channel on its own axis below, following the occupancy samples, y up to the depth."""
    trace = spec_run.trace()
    fig = plot_timeline(spec_run)
    (gantt,) = axes_by_gid(fig, "gantt")
    (fill,) = axes_by_gid(fig, "occupancy")
    assert fill.get_shared_x_axes().joined(gantt, fill)
    lines = {line.get_gid(): line for line in fill.lines if line.get_gid() != "makespan"}
    assert set(lines) == {"occupancy:load_to_compute", "occupancy:compute_to_store"}
    line = lines["occupancy:load_to_compute"]
    assert line.get_drawstyle() == "steps-post"
    assert list(line.get_ydata()[:-1]) == [o for _, o in trace.occupancy("load_to_compute")]
    assert fill.get_ylim()[1] >= 2
    assert [t.get_text() for t in fill.get_legend().get_texts()] == [
        "load_to_compute (depth=2)", "compute_to_store (depth=2)"]


def test_no_fill_axis_without_channels(spec_pipeline):
    """A data-parallel run has no channels, so the figure is the Gantt alone (one lane per core)."""
    comparison = run_study(spec_pipeline, Knobs(cores=2), mode="data-parallel", cost_model=PinnedCosts())
    fig = plot_timeline(comparison.data_parallel)
    assert [ax.get_gid() for ax in fig.axes] == ["gantt"]
    assert lane_labels(fig.axes[0]) == ["core0", "core1"]


def test_trace_and_program_inputs_agree(pinned_run):
    """A Program and its Trace give the same figure (same PNG bytes)."""
    assert figure_png(plot_timeline(pinned_run)) == figure_png(plot_timeline(pinned_run.trace()))


def test_draws_into_a_given_axes(pinned_run):
    """ax= draws only the Gantt into that axes and returns its figure."""
    fig = Figure()
    ax = fig.add_subplot()
    assert plot_timeline(pinned_run, ax=ax, title="mine") is fig
    assert len(fig.axes) == 1 and lane_labels(ax) == ["producer", "consumer"]
    assert ax.get_title(loc="left").startswith("mine: ")


def test_user_names_stay_plain_text(stages):
    """Process names with HTML or $ show verbatim as lane labels (never mathtext) and the PNG draws."""
    program = two_stage(stages, producer=XSS, consumer="$x^$").compile(cost_model=PinnedCosts()).execute()
    fig = plot_timeline(program)
    assert lane_labels(axes_by_gid(fig, "gantt")[0]) == [XSS, "$x^$"]
    assert figure_png(fig).startswith(b"\x89PNG")


def test_large_runs_merge_bars_and_cap_labels():
    """20,000 back-to-back spans collapse to at most MAX_BARS bars and MAX_LABELS tile labels."""
    spans = [Span(0, "p", "k", i, 10 * i, 10 * i + 9, 0, "p", i) for i in range(20_000)]
    trace = Trace(spans=spans, makespan=200_000, processes=["p"])
    (gantt,) = axes_by_gid(plot_timeline(trace), "gantt")
    assert 0 < bar_count(gantt) <= gantt_mod.MAX_BARS
    assert len([t for t in gantt.texts if t.get_gid() is None]) <= gantt_mod.MAX_LABELS


def test_bad_arguments_say_what_to_pass(pinned_run, spec_pipeline):
    """Unknown lanes, a non-trace and a Comparison are rejected with a hint."""
    with pytest.raises(PtortValueError, match="lanes must be 'stage' or 'pipe'"):
        plot_timeline(pinned_run, lanes="core")
    with pytest.raises(PtortTypeError, match="needs a Trace or a Program"):
        plot_timeline([1, 2])
    comparison = run_study(spec_pipeline, Knobs(), cost_model=PinnedCosts())
    with pytest.raises(PtortTypeError, match=r"Use compare\(comparison\)"):
        plot_timeline(comparison)
    with pytest.raises(PtortTypeError, match="needs two runs"):
        compare(pinned_run)


# -- compare --------------------------------------------------------------------------------------------------------
def test_compare_stacks_two_runs_on_a_shared_x(spec_pipeline):
    """compare(Comparison) stacks the pipeline and data-parallel Gantts on one cycle axis, each with its makespan."""
    comparison = run_study(spec_pipeline, Knobs(cores=4))
    fig = compare(comparison)
    gantts = axes_by_gid(fig, "gantt")
    assert len(gantts) == 2 and gantts[0].get_shared_x_axes().joined(gantts[0], gantts[1])
    assert gantts[0].get_xlim() == gantts[1].get_xlim()
    traces = [comparison.pipeline.trace(), comparison.data_parallel.trace()]
    for ax, trace, label in zip(gantts, traces, ["pipeline", "data-parallel"]):
        assert makespan_x(ax) == [[trace.makespan, trace.makespan]]
        assert ax.get_title(loc="left").startswith(f"{label}: {trace.makespan:,} cycles")
    assert lane_labels(gantts[0]) == ["loader", "computer", "storer"]
    assert lane_labels(gantts[1]) == ["core0", "core1", "core2", "core3"]
    (table,) = [t for t in fig.texts if t.get_gid() == "summary"]
    assert f"{traces[0].makespan:,}" in table.get_text() and f"{traces[1].makespan:,}" in table.get_text()
    assert f"speedup vs data-parallel: {comparison.speedup:.2f}x" in table.get_text()


def test_compare_two_programs_with_labels(spec_pipeline, pinned_run):
    """compare(a, b, labels=...) takes two runs of anything and names them."""
    other = spec_pipeline.compile(cost_model=PinnedCosts()).execute()
    gantts = axes_by_gid(compare(pinned_run, other.trace(), labels=("small", "spec")), "gantt")
    assert [ax.get_title(loc="left").split(":")[0] for ax in gantts] == ["small", "spec"]


# -- determinism and isolation -----------------------------------------------------------------------------------
def test_png_bytes_are_identical_across_renders(spec_run):
    """Two figures of one trace give the same PNG bytes, without Software metadata."""
    a = figure_png(plot_timeline(spec_run.trace()))
    b = figure_png(plot_timeline(spec_run.trace()))
    assert a == b and b"Software" not in a
    assert figure_png(compare(spec_run, spec_run)) == figure_png(compare(spec_run, spec_run))


def test_figures_never_touch_pyplot():
    """Building and saving figures leaves matplotlib.pyplot unimported (nothing can leak between cells)."""
    code = ("import sys, matplotlib; matplotlib.use('Agg')\n"
            "from ptort_lab import Trace, Span\n"
            "from ptort_lab.viz import plot_timeline, figure_png, compare\n"
            "t = Trace(spans=[Span(0, 'p', 'k', 0, 0, 10, 0, 'p', 0)], makespan=10, processes=['p'])\n"
            "figure_png(plot_timeline(t)); figure_png(compare(t, t))\n"
            "print('matplotlib.pyplot' in sys.modules, 'ptort_lab.notebook' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "False"]


def test_empty_trace_draws_without_warnings():
    """A run with no spans still draws (one empty lane), alone and in compare; warnings are errors here."""
    empty = Trace()
    assert figure_png(plot_timeline(empty)).startswith(b"\x89PNG")
    assert figure_png(compare(empty, empty, lanes="pipe")).startswith(b"\x89PNG")


def test_figure_shows_itself_in_ipython(pinned_run):
    """The returned Figure has _repr_png_, so a cell ending in plot_timeline(...) shows it without pyplot."""
    fig = plot_timeline(pinned_run)
    assert isinstance(fig, Figure)
    assert fig._repr_png_() == figure_png(fig)


# -- colours: the palette shared with the JupyterLab renderers ------------------------------------------------------
def bar_colours(ax) -> list[tuple[int, int, str]]:
    """(start, end, colour) of every bar, from the drawn rectangles."""
    out = []
    for coll in ax.collections:
        if not isinstance(coll, PolyCollection):
            continue
        for path, face in zip(coll.get_paths(), coll.get_facecolors()):
            xs = path.vertices[:, 0]
            out.append((round(xs.min()), round(xs.max()), to_hex(face)))
    return sorted(out)


def legend(ax) -> list[tuple[str, str]]:
    leg = ax.get_legend()
    return [(t.get_text(), to_hex(h.get_facecolor())) for t, h in zip(leg.get_texts(), leg.legend_handles)]


@pytest.mark.parametrize("text, expected", [
    ("", 0x811C9DC5), ("a", 0xE40C292C), ("foobar", 0xBF9CF968),  # the published vectors, pinned in colors.test.ts
    # Beyond ASCII the hash runs over UTF-16 code units, as JavaScript's charCodeAt (values from node):
    ("é", 1812687940), ("Ω", 2886558724), ("😀", 3409036472),
])
def test_fnv1a_hashes_names_as_the_renderers_do(text, expected):
    assert colors.fnv1a32(text) == expected


def test_the_palette_is_the_shared_file():
    """viz.colors reads ptort_lab/viz/palette.json (the extension keeps a checked copy of it)."""
    shared = json.loads((Path(colors.__file__).parent / "palette.json").read_text())
    assert colors.PALETTE == shared and colors.MAKESPAN_COLOR == shared["makespan"] == "#e15759"


@pytest.mark.parametrize("name, lane, colour", [
    ("load", "AIV0.MTE2", "#4e79a7"),  # ops["load"]
    ("mul", "AIV1.V", "#59a14f"),  # ops["mul"]
    ("matmul", "AIC0.CUBE", "#e15759"),  # ops["matmul"]
    ("extract", "AIC0.MTE1", "#76b7b2"),  # not an op: pipes["MTE1"]
    ("fix", "core3.AIC0.fix", "#b07aa1"),  # pipes["FIX"], whatever the case of the lane
    ("rowsum", "loader", "#b07aa1"),  # neither: categorical[fnv1a("rowsum") % 10] = categorical[6]
    ("foobar", "", "#4e79a7"),  # categorical[0xbf9cf968 % 10] = categorical[0]
])
def test_span_colour_is_op_else_pipe_else_hashed(name, lane, colour):
    assert colors.span_color(name, lane) == colour


def test_spec_bars_take_their_ops_colours(spec_run):
    """Stage lanes of the spec run: loads, casts, squares and stores in the palette's op colours, one per span."""
    trace = spec_run.trace()
    (gantt,) = axes_by_gid(plot_timeline(spec_run), "gantt")
    op = {"load": "#4e79a7", "cast": "#76b7b2", "mul": "#59a14f", "store": "#f28e2b"}
    assert bar_colours(gantt) == sorted((s.start, s.end, op[s.name]) for s in trace.spans)
    # the legend lists the ops in order of first appearance, lane by lane: loader (load, cast, store), computer (mul)
    assert legend(gantt) == [("load", "#4e79a7"), ("cast", "#76b7b2"), ("store", "#f28e2b"), ("mul", "#59a14f")]


def test_kernel_named_spans_hash_to_the_categorical_colours(pinned_run):
    """Pinned spans are named after their kernels, which the palette does not list: the renderers' hash decides."""
    (gantt,) = axes_by_gid(plot_timeline(pinned_run), "gantt")
    assert legend(gantt) == [("stage_a", "#e15759"), ("stage_b", "#b07aa1")]
    assert {c for _, _, c in bar_colours(gantt)} == {"#e15759", "#b07aa1"}


def test_pipe_lanes_of_a_pipeline_colour_by_process(spec_run):
    """lanes="pipe" of a pipeline: a bar's colour is its process's hashed colour, so stages stay apart."""
    (gantt,) = axes_by_gid(plot_timeline(spec_run, lanes="pipe"), "gantt")
    assert legend(gantt) == [("loader", "#76b7b2"), ("computer", "#9c755f"), ("storer", "#59a14f")]


def test_makespan_and_channels_use_the_palette(spec_run):
    """The makespan line is palette["makespan"] on every axis; channel lines cycle through the categorical colours."""
    fig = plot_timeline(spec_run)
    for ax in fig.axes:
        (line,) = [ln for ln in ax.lines if ln.get_gid() == "makespan"]
        assert to_hex(line.get_color()) == "#e15759"
    (fill,) = axes_by_gid(fig, "occupancy")
    assert {ln.get_gid(): to_hex(ln.get_color()) for ln in fill.lines if ln.get_gid() != "makespan"} == {
        "occupancy:load_to_compute": "#4e79a7", "occupancy:compute_to_store": "#f28e2b"}


def test_more_than_twelve_colours_are_summed_up_in_the_legend():
    """Fifteen op names: twelve legend entries in order of first appearance, then "+3 more"."""
    spans = [Span(0, "p", f"op{i:02d}", i, 10 * i, 10 * i + 5, 0, "p", i) for i in range(15)]
    (gantt,) = axes_by_gid(plot_timeline(Trace(spans=spans, makespan=150, processes=["p"])), "gantt")
    labels = [t for t, _ in legend(gantt)]
    assert labels == [f"op{i:02d}" for i in range(12)] + ["+3 more"]
    assert all(c == colors.hashed_color(t) for t, c in legend(gantt)[:12])


# -- geometry ----------------------------------------------------------------------------------------------------
def test_overlapping_spans_share_the_lane_band_in_rows():
    """Two overlapping spans in one lane: two rows, each LANE_FILL / 2 high, bars ROW_FILL of their row."""
    spans = [Span(0, "p", "k", 0, 0, 100, 0, "p", 0), Span(0, "p", "k", 1, 50, 150, 0, "p", 1)]
    (gantt,) = axes_by_gid(plot_timeline(Trace(spans=spans, makespan=150, processes=["p"])), "gantt")
    boxes = sorted((round(p.vertices[:, 1].min(), 6), round(p.vertices[:, 1].max(), 6))
                   for c in gantt.collections for p in c.get_paths())
    h = gantt_mod.LANE_FILL / 2
    top = -gantt_mod.LANE_FILL / 2
    assert boxes == [(round(top, 6), round(top + h * gantt_mod.ROW_FILL, 6)),
                     (round(top + h, 6), round(top + h + h * gantt_mod.ROW_FILL, 6))]
    assert (gantt_mod.LANE_FILL, gantt_mod.ROW_FILL) == (0.8, 0.92)


def test_label_width_estimate():
    """A tile-index label needs 5.5 px per character plus 3 px: "7" fits a 9 px bar, "12" does not."""
    assert gantt_mod._label_px("7") == 8.5 and gantt_mod._label_px("12") == 14.0


# -- a Program's last error ------------------------------------------------------------------------------------------
def test_a_failed_run_is_named_until_a_run_succeeds(stages):
    """Program.last_error keeps what the last execute() raised; plot_timeline names it; a good run clears it."""
    failing = [True]

    def cycles(task):
        if failing[0]:
            raise RuntimeError("cost table offline")
        return 10

    ch = Channel(name="ch", depth=1)
    prod = Process("p").produces(ch).body_func(
        lambda: [send(ch, task(stages.a, [i], {}, cycles=cycles)) for i in range(2)])
    cons = Process("c").consumes(ch).body_func(lambda: consume(ch, lambda t: task(stages.b, [t], {}, cycles=5)))
    program = connect(prod, cons).compile(cost_model=PinnedCosts())
    assert program.last_error is None
    with pytest.raises(PtortError) as raised:
        program.execute()
    assert program.last_error is raised.value
    with pytest.raises(PtortValueError, match=rf"the last execute\(\) failed with {type(raised.value).__name__}"):
        plot_timeline(program)
    failing[0] = False
    assert program.execute().last_error is None
    assert makespan_x(axes_by_gid(plot_timeline(program), "gantt")[0]) == [[program.trace().makespan] * 2]


def _many_op_trace(names: int) -> Trace:
    """One lane whose spans carry ``names`` distinct op names (a legend of several rows)."""
    spans = [Span(0, "loader", f"op{i:02d}", i, 10 * i, 10 * i + 8, 0, "loader", i) for i in range(names)]
    return Trace(spans=spans, makespan=10 * names, mode="pipeline", processes=["loader"])


def _boxes(fig: Figure) -> tuple[Any, Any]:
    """(legend, title) of the figure's Gantt, in display pixels after a draw."""
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    (gantt,) = axes_by_gid(fig, "gantt")
    return gantt.get_legend().get_window_extent(renderer), gantt.title.get_window_extent(renderer)


@pytest.mark.parametrize("names, title_chars", [(4, 0), (13, 0), (13, 90), (30, 60)])
def test_the_legend_sits_above_the_title_inside_the_figure(names, title_chars):
    """However many legend rows (6 keys a row, 12 keys then "+N more") and however long the title, the legend is
    above the title line, never over it, and the figure leaves room for all of it (nothing cut at the top)."""
    fig = plot_timeline(_many_op_trace(names), title="a long title " * (title_chars // 13) + "pipeline")
    leg, title = _boxes(fig)
    assert leg.y0 >= title.y1 - 1  # display y grows upwards
    assert leg.y1 <= fig.bbox.height
    rows = -(-(min(names, 12) + (names > 12)) // 6)
    assert gantt_mod.legend_in(_many_op_trace(names), "stage") == pytest.approx(0.22 + 0.15 * rows)


def test_compare_leaves_room_for_each_runs_legend():
    """compare(): the lower run's legend clears the upper run's x axis, and the upper legend stays in the figure."""
    fig = compare(_many_op_trace(13), _many_op_trace(30))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    upper, lower = axes_by_gid(fig, "gantt")
    assert upper.get_legend().get_window_extent(renderer).y1 <= fig.bbox.height
    ticks = upper.get_tightbbox(renderer)
    assert lower.get_legend().get_window_extent(renderer).y1 <= ticks.y0 + 1


def test_compare_table_columns_widen_for_long_runs():
    """Ten million cycles and more keep the summary's rows in line with its header (the columns widen)."""
    from pinned_chains import linear

    short = linear(2, (100, 60, 100)).compile(cost_model=PinnedCosts()).execute()
    long = linear(2, (6_000_000, 60, 100)).compile(cost_model=PinnedCosts()).execute()
    assert long.trace().makespan >= 10_000_000
    (table,) = [t for t in compare(long, short, labels=("long", "short")).texts if t.get_gid() == "summary"]
    header, first, second = table.get_text().splitlines()[:3]
    assert first.startswith("long") and second.startswith("short")
    for column in ("cycles", "µs"):  # each figure ends where its heading does
        end = header.index(column) + len(column)
        assert first[end - 1] != " " and first[end:end + 1] == " " and second[end - 1] != " "
    assert f"{long.trace().makespan:,}" in first
