"""Round 9 (hunt9c #13): the matplotlib timelines' labels overlap nothing, the kernel launch is drawn as in the live
view, compare()'s table is readable, merged bars keep an op's colour, and the sweep plot ticks whole knob values."""
from __future__ import annotations

import pytest
from matplotlib.colors import to_hex
from matplotlib.transforms import Bbox

from ptort_lab import PinnedCosts
from ptort_lab.explore import Knobs, Study
from ptort_lab.notebook import sweep
from ptort_lab.sim.trace import Span, Trace
from ptort_lab.spec_pipeline import build
from ptort_lab.viz import compare, plot_timeline
from ptort_lab.viz import gantt as gantt_mod
from ptort_lab.viz.colors import PALETTE, span_color


@pytest.fixture(scope="module")
def comparison():
    """Both runs of the spec pipeline (16 tiles on 4 cores): what the explorer's static picture draws."""
    return Study(build, Knobs(depth=2, tile=(128, 128), tiles=16, cores=4)).run()


def gantts(fig) -> list:
    return [ax for ax in fig.axes if ax.get_gid() == "gantt"]


def texts(ax, gid: str) -> list:
    return [t for t in ax.texts if t.get_gid() == gid]


def bar_boxes(ax) -> list[Bbox]:
    """The display extent of every bar of the Gantt."""
    return [Bbox.from_extents(*ax.transData.transform(path.vertices).min(axis=0),
                              *ax.transData.transform(path.vertices).max(axis=0))
            for c in ax.collections if str(c.get_gid()).startswith("bars:") for path in c.get_paths()]


def test_the_makespan_label_overlaps_no_bar_or_tile_label(comparison):
    """compare() (the explorer's static picture): each run's "makespan N" is level text in the strip above the
    first lane, clear of every row of bars (which hold the tile labels), inside the figure, and names its run."""
    fig = compare(comparison)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    for ax, (_, program) in zip(gantts(fig), comparison.runs):
        (label,) = texts(ax, "makespan-label")
        box = label.get_window_extent(renderer)
        bars = bar_boxes(ax)
        assert bars and not any(box.overlaps(bar) for bar in bars)
        assert label.get_rotation() == 0 and f"makespan {program.trace().makespan:,}" in label.get_text()
        tiles = [t.get_window_extent(renderer) for t in ax.texts if t.get_gid() is None]
        assert not any(box.overlaps(t) for t in tiles)
        assert box.y0 >= max(bar.y1 for bar in bars) and box.y1 <= ax.bbox.y1  # in the header strip
        assert 0 <= box.x0 and box.x1 <= fig.bbox.x1
    assert [t for t in gantts(fig)[0].texts if t.get_gid() is None]  # the pipeline's bars carry tile labels


def test_the_makespan_label_on_a_time_axis_gives_the_time(comparison):
    """Runs at different clocks share a µs axis: each end label gives its run's time, placed as in cycles."""
    fast = comparison.pipeline.trace()
    slow = Trace(spans=list(fast.spans), makespan=fast.makespan, clock_hz=1e9, processes=list(fast.processes),
                 launch_cycles=fast.launch_cycles)
    fig = compare(fast, slow, labels=("fast", "slow"))
    assert [texts(ax, "makespan-label")[0].get_text() for ax in gantts(fig)] == [
        f" makespan {fast.makespan_us:.3f} µs", f" makespan {slow.makespan_us:.3f} µs"]


def test_the_kernel_launch_is_drawn_as_in_the_live_view(comparison):
    """A trace with launch_cycles: a band from 0 to the launch (no instruction runs before it), an edge at its end,
    and "kernel launch" over it; the channel-fill plot has the band too."""
    program = comparison.pipeline
    launch = program.trace().launch_cycles
    assert launch and min(sp.start for sp in program.trace().spans) >= launch
    fig = plot_timeline(program)
    for ax in fig.axes:
        (band,) = [p for p in ax.patches if p.get_gid() == "launch"]
        assert (band.get_x(), band.get_width()) == (0, launch) and to_hex(band.get_facecolor()) == PALETTE["launch"]
    (gantt,) = gantts(fig)
    assert [list(line.get_xdata()) for line in gantt.lines if line.get_gid() == "launch-edge"] == [[launch, launch]]
    (label,) = texts(gantt, "launch-label")
    assert label.get_text().startswith("kernel launch") and label.get_position()[0] == launch / 2


def test_no_launch_band_when_the_trace_records_none():
    """A hand-made trace without launch_cycles draws no band and no launch label."""
    trace = Trace(spans=[Span(0, "p", "load", 0, 10, 50, process="p")], processes=["p"])
    (ax,) = gantts(plot_timeline(trace))
    assert not [p for p in ax.patches if p.get_gid() == "launch"] and not texts(ax, "launch-label")


def test_the_summary_table_is_readable(comparison):
    """compare()'s table: a 10 pt font (about 14 px at the default 100 dpi), its lines within the figure."""
    fig = compare(comparison)
    (table,) = [t for t in fig.texts if t.get_gid() == "summary"]
    assert table.get_fontsize() == 10 and table.get_fontsize() * fig.dpi / 72 >= 13
    fig.canvas.draw()
    assert table.get_window_extent(fig.canvas.get_renderer()).x1 <= fig.bbox.x1


def test_a_long_table_line_shrinks_to_fit_the_figure():
    """A table line too long for 10 pt (long run labels in the speedup line) is drawn smaller, not cut off."""
    a = Trace(spans=[Span(0, "p", "load", 0, 0, 50, process="p")], processes=["p"])
    b = Trace(spans=[Span(0, "p", "load", 0, 0, 80, process="p")], processes=["p"], clock_hz=1e9)
    fig = compare(a, b, labels=("pipeline of 3", "data-parallel 4"))
    (table,) = [t for t in fig.texts if t.get_gid() == "summary"]
    assert 8 <= table.get_fontsize() < 10
    fig.canvas.draw()
    assert table.get_window_extent(fig.canvas.get_renderer()).x1 <= fig.bbox.x1


def test_bars_merged_across_ops_take_the_op_that_covers_most_of_them():
    """Past MAX_BARS, neighbouring bars of different ops merge: the merged bar takes the colour of the op that
    ran most of its cycles (mul, 9 of every 10), never the first op's nor a grey that reads as a stall."""
    spans = []
    for i in range(gantt_mod.MAX_BARS + 1000):
        t = 10 * i
        spans += [Span(0, "p", "load", i, t, t + 1, process="p"), Span(0, "p", "mul", i, t + 1, t + 10, process="p")]
    (ax,) = gantts(plot_timeline(Trace(spans=spans, processes=["p"])))
    colours = {to_hex(c) for coll in ax.collections if str(coll.get_gid()).startswith("bars:")
               for c in coll.get_facecolors()}
    assert colours == {span_color("mul")}
    assert not colours & {PALETTE["stall"], PALETTE["cluster"]}


def test_a_cross_op_merge_keeps_the_first_op_on_a_tie():
    """Equal cycles of two ops: the first keeps the bar (deterministic)."""
    assert gantt_mod._merge([(0, 5, "load"), (5, 10, "mul")], 1.0, same_key=False) == [(0, 10, "load")]


def test_the_sweep_plot_ticks_whole_knob_values(tmp_path, monkeypatch):
    """depth = [1, 2, 4]: x ticks at 1, 2 and 4 (never 1.5 or 2.5); the Pareto plot's cores ticks are whole too."""
    monkeypatch.setenv("PTORT_LAB_CACHE", str(tmp_path))
    result = sweep(build, depth=[1, 2, 4], tile=[64], tiles=4, progress=False, cache=False,
                   cost_model=PinnedCosts())
    ax = result.plot().axes[0]
    assert list(ax.get_xticks()) == [1, 2, 4]
    pareto = result.pareto().axes[0]
    lo, hi = pareto.get_xlim()
    assert all(float(t).is_integer() for t in pareto.get_xticks() if lo <= t <= hi)
