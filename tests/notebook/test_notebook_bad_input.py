"""Bad input to the notebook layer, the explorer and viz: refused at once, as a PtortError (or, for %%ptort
options, a one-line UsageError) that says what is wrong, where, and how to fix it in the API that was called."""
from __future__ import annotations

import itertools
import os
import time

import numpy as np
import pytest
from IPython.core.error import UsageError

from ptort_lab import viz
from ptort_lab.errors import PtortError, PtortTypeError, PtortValueError
from ptort_lab.explore import Knobs, Study, data_parallel_twin, run_study
from ptort_lab.notebook import Explorer, ExplorerController, sweep
from ptort_lab.notebook.sweep import MAX_RUNS
from ptort_lab.sim.trace import Span, Trace

SMALL = Knobs(tile=(32, 32), tiles=2)


def _here(exc: PtortError) -> bool:
    """The error points at a line of this file (the user's call), not inside ptort_lab."""
    return exc.where is not None and os.path.samefile(exc.where.filename, __file__)


@pytest.fixture
def program(spec_builder):
    return spec_builder(2, (32, 32), 2).compile(compute_values=False).execute()


# -- 1. sweep size -------------------------------------------------------------------------------------------------
def test_huge_sweep_is_refused_up_front_with_the_count(spec_builder):
    started = time.perf_counter()
    with pytest.raises(PtortValueError) as e:
        sweep(spec_builder, depth=range(1, 10**7), knobs=SMALL, progress=False)
    assert time.perf_counter() - started < 2.0  # nothing was built
    msg = str(e.value)
    assert "9,999,999 combinations" in msg and f"at most {MAX_RUNS:,}" in msg
    assert "sweep(build, depth=[" in e.value.hint and _here(e.value)


def test_sweep_counts_the_product_and_never_reads_an_endless_generator(spec_builder):
    with pytest.raises(PtortValueError, match="20,000 combinations"):
        sweep(spec_builder, depth=range(1, 101), tiles=range(1, 201), knobs=SMALL, progress=False)
    with pytest.raises(PtortValueError, match=f"more than {MAX_RUNS:,} combinations"):
        sweep(spec_builder, depth=itertools.count(1), knobs=SMALL, progress=False)


# -- 2. the explorer controller ------------------------------------------------------------------------------------
def test_controller_figure_before_update_says_to_call_update(spec_builder):
    controller = ExplorerController(Study(spec_builder, SMALL))
    with pytest.raises(PtortValueError) as e:
        controller.figure()
    assert "no run to draw yet" in str(e.value) and "update()" in e.value.hint and _here(e.value)
    with pytest.raises(PtortTypeError, match="figure\\(\\) takes a Comparison"):
        controller.figure("pipeline")
    with pytest.raises(PtortTypeError, match="ExplorerController needs a Study"):
        ExplorerController(spec_builder)


# -- 3. knobs= of the wrong type, and numpy ints in Knobs ---------------------------------------------------------
@pytest.mark.parametrize("call, api, fix", [
    (lambda b: Explorer(b, knobs="depth=2"), "Explorer", "Knobs(depth=2)"),
    (lambda b: Explorer(Study(b), knobs=5), "Explorer", "Knobs(depth=2)"),
    (lambda b: Study(b, knobs={"depth": 2}).run(), "Study", "Knobs(depth=2)"),
    (lambda b: sweep(b, knobs="tiles=2", progress=False), "sweep", "Knobs(tiles=2)"),
])
def test_knobs_of_the_wrong_type_name_the_api_and_the_fix(spec_builder, call, api, fix):
    with pytest.raises(PtortTypeError) as e:
        call(spec_builder)
    assert str(e.value).startswith(f"{api}(knobs=...) needs a Knobs")
    assert f"{api}(..., knobs={fix})" in e.value.hint and _here(e.value)


def test_a_reassigned_study_knobs_is_checked_on_run(spec_builder):
    study = Study(spec_builder)
    study.knobs = {"depth": 2}
    with pytest.raises(PtortTypeError, match="needs a Knobs"):
        study.run()


def test_knobs_accept_numpy_integers_as_plain_ints():
    k = Knobs(depth=np.int64(2), tile=(np.int32(64), np.int64(128)), tiles=np.int32(4), cores=np.uint8(2))
    assert k == Knobs(depth=2, tile=(64, 128), tiles=4, cores=2)
    assert all(type(v) is int for v in (k.depth, k.tiles, k.cores, *k.tile))
    with pytest.raises(PtortValueError, match="knob depth must be an int >= 1"):
        Knobs(depth=np.float64(2.0))


# -- 4. data_parallel_twin ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("cores, exc", [(0, PtortValueError), (-2, PtortValueError), (2.0, PtortTypeError),
                                        ("2", PtortTypeError), (True, PtortTypeError)])
def test_twin_cores_are_checked_in_its_own_words(spec_builder, cores, exc):
    with pytest.raises(exc) as e:
        data_parallel_twin(spec_builder(2, (32, 32), 2), cores)
    assert "data_parallel_twin() cores must be an int >= 1" in str(e.value)
    assert "affinity" not in str(e.value) and "data_parallel_twin(pipeline, 4)" in e.value.hint and _here(e.value)


def test_twin_of_something_that_is_not_a_workload(spec_builder):
    with pytest.raises(PtortTypeError, match="data_parallel_twin\\(\\) needs a workload or pipeline, got str"):
        data_parallel_twin("pipeline", 2)
    twin = data_parallel_twin(spec_builder(2, (32, 32), 2), np.int64(3))
    assert twin._schedule.dispatch.num_cores == 3


# -- 5. a workload dispatched already ---------------------------------------------------------------------------
def test_run_study_reports_the_cores_a_dispatched_workload_really_used(spec_builder):
    twin = data_parallel_twin(spec_builder(2, (32, 32), 2), 2)
    result = run_study(twin, Knobs(cores=8), compute_values=False)
    assert result.knobs.cores == 2 and len(result.data_parallel.trace().cores) <= 2
    assert "cores=2" in result.summary() and "cores=8 from the knobs was not applied" in result.summary()
    same = run_study(twin, Knobs(cores=2), compute_values=False)
    assert same.knobs.cores == 2 and same.note == "" and "not applied" not in same.summary()


# -- 6. viz misuse -------------------------------------------------------------------------------------------------
def test_plot_timeline_ax_must_be_an_axes(program):
    with pytest.raises(PtortTypeError) as e:
        viz.plot_timeline(program, ax="left")
    assert "takes a matplotlib Axes, got str 'left'" in str(e.value) and "ax=ax" in e.value.hint and _here(e.value)


def test_figure_png_needs_a_figure(program):
    with pytest.raises(PtortTypeError) as e:
        viz.figure_png(program)
    assert "figure_png() needs a matplotlib Figure, got Program" in str(e.value)
    assert "figure_png(plot_timeline(program))" in e.value.hint and _here(e.value)
    with pytest.raises(PtortTypeError, match="call its .png\\(\\)"):
        viz.figure_png(viz.draw_pipeline(program.workload))
    with pytest.raises(PtortValueError, match="dpi"):
        viz.figure_png(viz.plot_timeline(program), dpi=0)


def test_render_svg_checks_its_arguments_at_once():
    started = time.perf_counter()
    with pytest.raises(PtortTypeError) as e:
        viz.render_svg(12345)
    assert time.perf_counter() - started < 0.5
    assert "render_svg() needs DOT source text (a str), got int 12345" in str(e.value) and _here(e.value)
    with pytest.raises(PtortValueError) as e:
        viz.render_svg("digraph { a -> b }", backend="graphviz")
    assert "unknown Graphviz backend 'graphviz'" in str(e.value) and "backend='auto'" in e.value.hint


def test_plot_timeline_refuses_a_makespan_it_cannot_draw():
    for makespan in (float("nan"), float("inf"), -5):
        with pytest.raises(PtortValueError, match="makespan") as e:
            viz.plot_timeline(Trace(spans=[Span(0, "V", "k", 0, 0, 50)], makespan=makespan))
        assert "finite number of cycles" in str(e.value) and _here(e.value)


def test_plot_timeline_of_a_program_without_a_finished_run(spec_builder):
    unrun = spec_builder(2, (32, 32), 2).compile(compute_values=False)
    with pytest.raises(PtortValueError) as e:
        viz.plot_timeline(unrun)
    assert "no finished run" in str(e.value) and "if execute() raised, fix that error" in e.value.hint
    with pytest.raises(PtortValueError, match="no finished run"):
        viz.compare(unrun, unrun)


def test_plot_timeline_after_a_failed_execute_names_the_failure(spec_builder):
    failed = spec_builder(2, (32, 32), 2).compile(compute_values=False, placement={"loader": 99})
    with pytest.raises(PtortValueError):
        failed.execute()
    assert isinstance(failed.last_error, PtortValueError) and "core 99" in str(failed.last_error)
    with pytest.raises(PtortValueError) as e:
        viz.plot_timeline(failed)
    assert "the last execute() failed with PtortValueError" in str(e.value) and "core 99" in str(e.value)
    assert "Fix that error" in e.value.hint
    assert _here(e.value)


# -- 7. %%ptort options ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("line, words", [
    ("--trace-out {tmp}", ["--trace-out", "is a folder", "run.json"]),
    ("--trace-out {tmp}/missing/run.json", ["--trace-out", "does not exist"]),
    ("--cores 100000", ["--cores 100000 is more than machine 'ascend_910b' has (24 AI cores) for the data-parallel "
                        "run. Use 24 cores or fewer (--cores 24); mode 'pipeline' runs no data-parallel twin"]),
    ("--machine ascend_910b4 --cores 24", ["--cores 24 is more than machine 'ascend_910b4' has (20 AI cores)",
                                           "(--cores 20)"]),
])
def test_bad_trace_out_and_cores_options_are_one_line_usage_errors(ip, spec_body, tmp_path, line, words):
    with pytest.raises(UsageError) as e:
        ip.run_cell(f"%%ptort {line.format(tmp=tmp_path)}\n{spec_body}")
    assert all(w in str(e.value) for w in words) and "\n" not in str(e.value)
    assert "pipeline" not in ip.user_ns  # refused before the body ran


def test_cores_from_the_namespace_must_fit_the_machine(ip, spec_body):
    ip.user_ns["CORES"] = 100000
    with pytest.raises(PtortValueError) as e:
        ip.run_cell(f"%%ptort --tile 32x32 --tiles 2\n{spec_body}")
    assert e.value.what == ("CORES = 100000 is more than machine 'ascend_910b' has (24 AI cores) for the "
                            "data-parallel run.")
    assert e.value.hint == ("Use 24 cores or fewer (CORES = 24, or --cores 24); mode 'pipeline' runs no data-parallel "
                            "twin, so it does not use cores.")
    assert "at cell line 32" in str(e.value)  # the pipeline's line: the first run had not started
    ip.run_cell(f"%%ptort --tile 32x32 --tiles 2 --mode pipeline\n{spec_body}")  # no twin: CORES is not used
    assert ip.user_ns["_ptort"].data_parallel is None


def test_cores_within_the_machine_still_run(ip, spec_body):
    ip.run_cell(f"%%ptort --cores 24 --tile 32x32 --tiles 2\n{spec_body}")
    assert ip.user_ns["_ptort"].knobs.cores == 24


def test_a_pipeline_only_cell_does_not_use_cores(ip, spec_body):
    """--mode pipeline runs no data-parallel twin, so --cores past the machine's is not refused (the rule's hint)."""
    ip.run_cell(f"%%ptort --mode pipeline --cores 25 --tile 32x32 --tiles 2\n{spec_body}")
    assert ip.user_ns["_ptort"].data_parallel is None and ip.user_ns["CORES"] == 25


# -- 8. sweep value errors give sweep advice --------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, words", [
    ({"depth": range(3)}, ["sweep(depth=...) value 0 is not an int >= 1", "sweep(build, depth=["]),
    ({"depth": None, "tile": ["16x"]}, ["sweep(tile=...) value '16x' is not ROWSxCOLS", "sweep(build, tile=["]),
    ({"depth": None, "tile": [0]}, ["sweep(tile=...) value 0 is not a tile size", "sweep(build, tile=["]),
    ({"depth": None, "cores": [1, 2.5]}, ["sweep(cores=...) value 2.5 is not an int >= 1", "sweep(build, cores=["]),
    ({"depth": []}, ["no values for depth", "sweep(build, depth=["]),
])
def test_sweep_value_errors_are_located_and_give_sweep_hints(spec_builder, kwargs, words):
    with pytest.raises(PtortValueError) as e:
        sweep(spec_builder, knobs=SMALL, progress=False, **kwargs)
    msg = str(e.value)
    assert all(w in msg for w in words) and _here(e.value)
    assert "--" not in e.value.hint and "Set " not in e.value.hint  # no %%ptort advice


def test_sweep_plot_of_an_unswept_knob_and_a_bad_metric(spec_builder):
    result = sweep(spec_builder, depth=[1, 2], knobs=SMALL, progress=False)
    with pytest.raises(PtortValueError) as e:
        result.plot(x="cores")
    assert "plot(x='cores') is not a swept knob; this sweep varied depth" in str(e.value) and _here(e.value)
    assert "plot(x='depth')" in e.value.hint and "cores=[1, 2, 4]" in e.value.hint
    with pytest.raises(PtortValueError, match="plot\\(metric='speed'\\)"):
        result.plot(metric="speed")


def test_sweep_of_something_that_is_not_a_builder():
    with pytest.raises(PtortTypeError, match="sweep\\(\\) needs a builder function or a Study, got str") as e:
        sweep("build", depth=[1], progress=False)
    assert _here(e.value)



def test_explorer_cores_slider_stops_at_the_machines_cores(spec_builder):
    assert Explorer(spec_builder, SMALL, machine="ascend_910b4").sliders["cores"].max == 20
    assert Explorer(spec_builder, SMALL).sliders["cores"].max == 24
