"""sweep(): every combination runs, rows and a plot come back, and progress shows only when asked or slow."""
from __future__ import annotations

import sys

import pytest
from matplotlib.figure import Figure

from ptort_lab.errors import PtortValueError
from ptort_lab.explore import Knobs, Study
from ptort_lab.notebook import sweep
from ptort_lab.notebook.sweep import SweepResult


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
    assert bundle["text/plain"].startswith("sweep of depth, tile, tiles: 6 runs")
    assert "32x64" in bundle["text/plain"] and "ms" not in bundle["text/plain"]


def test_sweep_copies_a_study_and_leaves_it_unchanged(spec_builder):
    """Sweeping a Study leaves its knobs as they were."""
    study = Study(spec_builder, Knobs(tiles=2, depth=3))
    result = sweep(study, depth=[1, 2], progress=False)
    assert [r["depth"] for r in result.rows] == [1, 2] and study.knobs.depth == 3 and study.last is None


def test_text_progress_outside_a_kernel(spec_builder, capsys):
    """progress=True without a kernel prints a progress line on stderr; progress=False prints nothing."""
    sweep(spec_builder, depth=[1, 2], tiles=2, progress=True)
    assert "sweep: 2/2 runs" in capsys.readouterr().err
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
    sweep(spec_builder, depth=[1, 2], tiles=2)
    out = capsys.readouterr().out
    assert "IntProgress(value=2, bar_style='success', description='sweep', max=2)" in out


def test_quick_sweeps_show_no_progress(spec_builder, capsys, monkeypatch):
    """With progress=None a sweep that ends before the threshold (0.5 s; 60 s here, for a loaded CI) prints
    nothing."""
    monkeypatch.setattr(sys.modules["ptort_lab.notebook.sweep"], "PROGRESS_AFTER_S", 60.0)
    sweep(spec_builder, depth=[1, 2], tiles=1)
    assert capsys.readouterr().err == ""
