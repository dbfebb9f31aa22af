"""sweep(): every combination runs, rows and a plot come back, and progress shows only when asked or slow; the
notebook's views: the table, the Pareto plot, a point's timeline and explorer, the progress bar's counts."""
from __future__ import annotations

import sys
import types

import pytest
from matplotlib.figure import Figure

from ptort_lab.errors import PtortValueError
from ptort_lab.explore import Knobs, Study
from ptort_lab.notebook import Explorer, sweep
from ptort_lab.notebook.sweep import SweepResult
from ptort_lab.sweeps import SweepPoint, SweepTable


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch):
    """Each test its own sweep cache, so that every sweep here runs its points."""
    monkeypatch.setenv("PTORT_LAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "sweeps"


@pytest.fixture
def small(spec_builder):
    return sweep(spec_builder, depth=[1, 2, 4], tile=[64, "32x64"], tiles=4, progress=False)


def test_sweep_runs_every_combination(small):
    """3 depths x 2 tiles x 1 tile count: six rows, one per combination, with both runs' cycles."""
    assert small.params == ("depth", "tile", "tiles")
    assert [(r["depth"], r["tile"]) for r in small.rows] == [
        (1, (64, 64)), (1, (32, 64)), (2, (64, 64)), (2, (32, 64)), (4, (64, 64)), (4, (32, 64))]
    for r in small.rows:
        assert r["tiles"] == 4 and r["pipeline_cycles"] > 0 and r["data_parallel_cycles"] > 0
        assert r["speedup"] == pytest.approx(r["data_parallel_cycles"] / r["pipeline_cycles"])


def test_deeper_channels_never_slow_the_pipeline(small):
    """For each tile size, pipeline makespan does not grow with depth."""
    for tile in ((64, 64), (32, 64)):
        cycles = [r["pipeline_cycles"] for r in small.rows if r["tile"] == tile]
        assert cycles == sorted(cycles, reverse=True)


def test_plot_draws_one_line_per_other_value_and_run(small):
    """plot() puts depth on x and draws pipeline (solid) and data-parallel (dashed) per tile size."""
    fig = small.plot()
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "depth" and ax.get_ylabel() == "makespan (cycles)"
    lines = ax.get_lines()
    assert len(lines) == 4
    assert sorted(line.get_linestyle() for line in lines) == ["-", "-", "--", "--"]
    assert all(list(line.get_xdata()) == [1, 2, 4] for line in lines)
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "pipeline (tile=64x64, tiles=4)" in labels


def test_plot_against_tile_uses_categorical_ticks(small):
    """plot(x="tile") labels the x ticks with RxC."""
    ax = small.plot(x="tile").axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["32x64", "64x64"]
    with pytest.raises(PtortValueError, match="not a swept knob"):
        small.plot(x="cores")


def test_sweep_bundle_is_a_table_and_a_plot(small):
    """The result shows as a text table plus the plot (PNG, and both together in HTML)."""
    bundle = small._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", "image/png"}
    text = bundle["text/plain"]
    assert text.startswith("sweep of depth, tile, tiles: 6 runs\n")
    table = text.splitlines()[1:8]
    assert table[0].split() == ["#", "depth", "tile", "tiles", "pipeline", "cycles", "data-parallel", "cycles",
                                "speedup"]
    assert table[2].split()[:4] == ["1", "1", "32x64", "4"] and all(" ms" not in line for line in table)
    assert text.splitlines()[8].startswith("cache: 0 reused, 6 computed and saved in ")


def test_sweep_copies_a_study_and_leaves_it_unchanged(spec_builder):
    """Sweeping a Study leaves its knobs as they were."""
    study = Study(spec_builder, Knobs(tiles=2, depth=3))
    result = sweep(study, depth=[1, 2], progress=False)
    assert [r["depth"] for r in result.rows] == [1, 2] and study.knobs.depth == 3 and study.last is None


def test_text_progress_outside_a_kernel(spec_builder, capsys):
    """progress=True without a kernel prints a progress line on stderr; progress=False prints nothing."""
    sweep(spec_builder, depth=[1, 2], tiles=2, progress=True)
    assert capsys.readouterr().err.endswith("\rsweep: 2/2 runs, 0 failed, 0 from the cache\n")
    sweep(spec_builder, depth=[1, 2], tiles=2, progress=False)
    assert capsys.readouterr().err == ""


def test_bad_sweep_arguments(spec_builder):
    """No knob to vary, an empty value list or a bad tile are PtortValueErrors."""
    with pytest.raises(PtortValueError, match="no knob to vary"):
        sweep(spec_builder, depth=None)
    with pytest.raises(PtortValueError, match="no values for depth"):
        sweep(spec_builder, depth=[])
    with pytest.raises(PtortValueError, match="not ROWSxCOLS"):
        sweep(spec_builder, tile=["big"])


def test_empty_result_repr():
    """A SweepResult with no rows still renders its header."""
    assert repr(SweepResult(("depth",))).startswith("sweep of depth: 0 runs")


def test_progress_bar_in_a_kernel_ends_in_its_finished_state(ip, spec_builder, monkeypatch, capsys):
    """In a kernel a slow sweep shows an ipywidgets bar, updated in place to its final, deterministic state."""
    monkeypatch.setattr(ip, "kernel", object(), raising=False)
    monkeypatch.setattr(sys.modules["ptort_lab.notebook.sweep"], "PROGRESS_AFTER_S", 0.0)
    bars = shown_bars(monkeypatch)
    sweep(spec_builder, depth=[1, 2], tiles=2)
    out = capsys.readouterr().out
    assert "IntProgress(value=2, bar_style='success', description='sweep', max=2)" in out
    assert [b.label.value for b in bars] == ["2/2 runs, 0 failed, 0 from the cache"]


def shown_bars(monkeypatch):
    """The progress displays of the sweeps to come, as they are when the sweep ends."""
    cls = sys.modules["ptort_lab.notebook.sweep"]._NotebookProgress
    bars, close = [], cls.close

    def closing(self):
        close(self)
        bars.append(self)

    monkeypatch.setattr(cls, "close", closing)
    return bars


def test_the_progress_bar_counts_failed_and_cached_points(ip, spec_builder, monkeypatch, capsys):
    """Failed points and points from the cache are counted apart; a sweep with failures ends in 'warning'."""
    monkeypatch.setattr(ip, "kernel", object(), raising=False)
    monkeypatch.setattr(sys.modules["ptort_lab.notebook.sweep"], "PROGRESS_AFTER_S", 0.0)

    def build(depth):
        if depth == 3:
            raise ValueError("no room")
        return spec_builder(depth, (32, 32), 2)

    sweep(build, depth=[1, 2])
    capsys.readouterr()
    bars = shown_bars(monkeypatch)
    result = sweep(build, depth=[1, 2, 3])
    out = capsys.readouterr().out
    assert "IntProgress(value=3, bar_style='warning', description='sweep', max=3)" in out
    assert [b.label.value for b in bars] == ["3/3 runs, 1 failed, 2 from the cache"]
    assert [p.index for p in result.failures] == [2] and result.failures[0].error.type == "UserCodeError"


def test_quick_sweeps_show_no_progress(spec_builder, capsys, monkeypatch):
    """With progress=None a sweep that ends before the threshold (0.5 s; 60 s here, for a loaded CI) prints
    nothing."""
    monkeypatch.setattr(sys.modules["ptort_lab.notebook.sweep"], "PROGRESS_AFTER_S", 60.0)
    sweep(spec_builder, depth=[1, 2], tiles=1)
    assert capsys.readouterr().err == ""


# -- views: table, Pareto plot, a point's timeline and explorer -------------------------------------------------------
def _row(depth, pipe, twin):
    """A row whose pipeline ran on pipe = (cores, cycles) and whose twin on twin = (cores, cycles)."""
    return {"depth": depth, "tile": (32, 32), "tiles": 2, "cores": 4, "pipeline_cycles": pipe[1],
            "data_parallel_cycles": twin[1], "pipeline_overlap_pct": 0.0, "data_parallel_overlap_pct": 0.0,
            "speedup": twin[1] / pipe[1], "pipeline_us": 0.0, "pipeline_cores": pipe[0], "pipeline_bytes_moved": 0,
            "data_parallel_us": 0.0, "data_parallel_cores": twin[0], "data_parallel_bytes_moved": 0}


@pytest.fixture
def made():
    """Three points worked out by hand: the front is the twin of depth 3 (2 cores, 400 cycles), then the pipeline
    of depth 2 (3 cores, 200): depth 3's pipeline ties with it and comes later, everything else is beaten."""
    rows = [_row(1, (3, 300), (4, 250)), _row(2, (3, 200), (4, 250)), _row(3, (3, 200), (2, 400))]
    return SweepResult(("depth",), [SweepPoint(i, {"depth": i + 1}, row=r) for i, r in enumerate(rows)])


def test_the_pareto_front_is_what_no_other_run_beats(made):
    assert made.pareto_front() == [(2.0, 400.0, "data-parallel", 2), (3.0, 200.0, "pipeline", 1)]
    assert made.pareto_front(x="depth") == [(1.0, 250.0, "data-parallel", 0), (2.0, 200.0, "pipeline", 1)]


def test_the_pareto_plot_marks_both_runs_and_draws_the_front(made):
    fig = made.pareto()
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    assert ax.get_xlabel() == "cores used" and ax.get_ylabel() == "makespan (cycles)"
    assert ax.get_title() == "makespan vs cores used: the Pareto front (lower left is better)"
    [front] = [line for line in ax.get_lines() if line.get_label() == "Pareto front"]
    assert list(front.get_xdata()) == [2.0, 3.0] and list(front.get_ydata()) == [400.0, 200.0]
    pipeline, twin = (c for c in ax.collections if c.get_label() in ("pipeline", "data-parallel"))
    assert pipeline.get_offsets().tolist() == [[3, 300], [3, 200], [3, 200]]
    assert twin.get_offsets().tolist() == [[4, 250], [4, 250], [2, 400]]
    assert [t.get_text() for t in ax.texts] == ["#2 depth=3", "#1 depth=2"]
    with pytest.raises(PtortValueError, match=r"^pareto\(x='tiles'\) is not one of 'cores', 'bytes_moved', 'us', "
                                              r"'depth'\."):
        made.pareto(x="tiles")


def test_a_point_opens_its_timeline_and_its_explorer(small):
    """Point 1 (depth 1, tile 32x64) runs again here: the same cycles as its row, drawn; the explorer opens there."""
    assert small.point(1).label() == "depth=1 tile=32x64 tiles=4"
    comparison = small.comparison(1)
    assert comparison.pipeline.stats().total_cycles == small.rows[1]["pipeline_cycles"]
    assert comparison.data_parallel.stats().total_cycles == small.rows[1]["data_parallel_cycles"]
    fig = small.timeline(1)
    assert isinstance(fig, Figure) and fig._suptitle.get_text() == "point #1: depth=1 tile=32x64 tiles=4"
    explorer = small.explore(1)
    assert isinstance(explorer, Explorer)
    assert (explorer.sliders["depth"].value, explorer.sliders["tile"].value) == (1, (32, 64))
    assert explorer.controller.last.pipeline.stats().total_cycles == small.rows[1]["pipeline_cycles"]
    with pytest.raises(PtortValueError, match=r"^point\(6\) is not a point of this sweep: it has 6 \(0\.\.5\)\."):
        small.point(6)


def test_the_table_without_pandas_is_text_and_html(small, monkeypatch):
    monkeypatch.setitem(sys.modules, "pandas", None)  # as if pandas were not installed
    table = small.table()
    assert isinstance(table, SweepTable) and len(table) == 6
    assert table.columns[:6] == ["point", "depth", "tile", "tiles", "cores", "pipeline_cycles"]
    assert table.columns[-2:] == ["cached", "error"]
    lines = repr(table).splitlines()
    assert lines[2].split()[:5] == ["1", "1", "32x64", "4", "4"] and lines[2].split()[-2:] == ["False", "-"]
    assert table._repr_html_().startswith('<table class="ptort-sweep"><tr><th>point</th><th>depth</th>')


def test_the_table_is_a_dataframe_when_pandas_is_installed(small, monkeypatch):
    made = {}

    class DataFrame:
        @classmethod
        def from_records(cls, records, columns):
            made.update(records=records, columns=columns)
            return cls()

    monkeypatch.setitem(sys.modules, "pandas", types.SimpleNamespace(DataFrame=DataFrame))
    assert isinstance(small.table(), DataFrame)
    assert made["columns"] == small.columns() and len(made["records"]) == 6
    assert made["records"][1] == {"point": 1, **small.rows[1], "cached": False, "error": None}
