"""Bad input, round 2: the sweep cache, sweeps, studies, the explorer, report.check and the timeline views."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from ptort_lab import (
    Channel,
    Dense,
    Location,
    PinnedCosts,
    Span,
    Tensor,
    Trace,
    connect,
    consume,
    for_each,
    kernel,
    process,
    send,
    task,
)
from ptort_lab.errors import PtortTypeError, PtortValueError
from ptort_lab.explore import Comparison, Knobs, Study, run_study
from ptort_lab.report import check, report, run_report
from ptort_lab.spec_pipeline import build
from ptort_lab.sweeps import cache_info, clear_cache, run_sweep

SMALL = Knobs(tile=(32, 32), tiles=2, cores=2)


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """Each test its own default sweep cache."""
    monkeypatch.setenv("PTORT_LAB_CACHE", str(tmp_path / "default-cache"))


def small_build(depth: int = 2, tiles: int = 2):
    return build(depth=depth, tile=(32, 32), tiles=tiles)


class Counted:
    """A builder that counts its calls (a sweep refused up front builds nothing)."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, depth: int):
        self.calls += 1
        return small_build(depth)


# -- #2: clear_cache deletes only the cache's own files ---------------------------------------------------------------
def _cache_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def test_clear_cache_deletes_its_entries_and_leaves_a_users_files_beside_them(tmp_path):
    root = tmp_path / "cache"
    run_sweep(small_build, depth=[1, 2], executor="serial", cache=root, progress=False)
    entries = _cache_files(root)
    assert len(entries) == 4
    bucket = next((root / "v1" / "results").iterdir())
    mine = {root / "v1" / "results.csv": "a,b\n1,2\n", bucket / "notes.json": "{}",
            root / "v1" / "points" / "zz" / "x.json": "{}", root / "keep.txt": "mine"}
    for path, text in mine.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    (bucket / ".tmp-abcd1234.json").write_text('{"format": 1, ')  # a write killed before its rename
    info = cache_info(root)
    assert (info.results, info.points) == (2, 2)  # the user's .json files are not entries
    assert clear_cache(root) == 4
    assert all(path.read_text() == text for path, text in mine.items())
    assert _cache_files(root) == {str(p.relative_to(root)) for p in mine}
    assert (cache_info(root).results, cache_info(root).points) == (0, 0)
    assert bucket.is_dir()  # it holds the user's notes.json


def test_clear_cache_removes_its_folders_once_empty(tmp_path):
    root = tmp_path / "cache"
    run_sweep(small_build, depth=[1], executor="serial", cache=root, progress=False)
    assert clear_cache(root) == 2
    assert list(root.iterdir()) == []  # v1 and its folders went; the folder given stays


def test_clear_cache_of_a_folder_that_holds_a_users_v1_keeps_it(tmp_path, monkeypatch):
    """The hunt's repro: a project folder whose v1/ is the user's data, not a sweep cache."""
    data = tmp_path / "proj" / "v1" / "results.csv"
    data.parent.mkdir(parents=True)
    data.write_text("the user's results\n")
    assert cache_info(tmp_path / "proj").results == 0
    assert clear_cache(tmp_path / "proj") == 0
    assert data.read_text() == "the user's results\n"
    monkeypatch.chdir(tmp_path / "proj")
    assert clear_cache(".") == 0 and data.exists()


@pytest.mark.parametrize("api", [cache_info, clear_cache])
def test_cache_paths_are_checked(api):
    name = api.__name__
    with pytest.raises(PtortTypeError, match=rf"^{name}\(path\) takes a folder's path \(a str or pathlib.Path\) or "
                                             r"None, got int 123\."):
        api(123)
    with pytest.raises(PtortTypeError, match=rf"^{name}\(path\) takes a folder's path"):
        api(b"/tmp")
    with pytest.raises(PtortValueError, match=rf"^{name}\(path\) got '', which names no folder\."):
        api("")  # Path("") is the current folder
    with pytest.raises(PtortValueError, match=rf"^{name}\(path\) got 'a\\x00b', which holds a NUL character"):
        api("a\x00b")


# -- #18: the cache line of a sweep that could not save ----------------------------------------------------------------
def test_the_cache_line_says_the_rows_were_not_saved(tmp_path):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = run_sweep(small_build, depth=[1], executor="serial", cache=blocker, progress=False)
    line = result.cache.line()
    assert line.startswith(f"cache: 0 reused, 1 computed; could not save to the cache {blocker}: 1 of 1 rows could "
                           "not be saved, 0 were (the path is a file, not a folder: NotADirectoryError")
    assert "saved in" not in line


# -- #4: a set of knob values is refused -------------------------------------------------------------------------------
def test_a_set_of_knob_values_is_refused_before_anything_is_built():
    counted = Counted()
    with pytest.raises(PtortTypeError) as e:
        run_sweep(counted, depth={1, 2, 4}, executor="serial", cache=False, progress=False)
    assert e.value.what.startswith("sweep(depth=...) got a set, whose order changes from one Python process to the "
                                   "next")
    assert "depth=[1, 2, 4]" in e.value.hint and "sorted(...)" in e.value.hint
    with pytest.raises(PtortTypeError, match=r"^sweep\(tile=\.\.\.\) got a frozenset"):
        run_sweep(build, tile=frozenset({"32x32", "16x16"}), tiles=[2], depth=[2], cache=False, progress=False)
    assert counted.calls == 0


def test_dict_keys_keep_their_order():
    result = run_sweep(small_build, depth={2: "b", 1: "a"}.keys(), executor="serial", cache=False, progress=False)
    assert [p.values["depth"] for p in result.points] == [2, 1]


# -- #16: mode and compile options are checked up front ----------------------------------------------------------------
@pytest.mark.parametrize(("kwargs", "error", "start"), [
    ({"mode": "x"}, PtortValueError,
     "sweep(mode=...) must be one of 'pipeline', 'data-parallel', 'both', got str 'x'."),
    ({"mode": 5}, PtortTypeError, "sweep(mode=...) must be one of"),
    ({"bogus": 1}, PtortValueError, "sweep(...) passes its other keyword arguments to compile(), which refused them: "
                                    "compile() got unknown option(s) ['bogus']."),
    ({"channel_latency_cycles": -1}, PtortValueError, "sweep(...) passes its other keyword arguments to compile()"),
    ({"compute_values": "yes"}, PtortTypeError, "sweep(...) passes its other keyword arguments to compile()"),
])
def test_a_sweep_refuses_a_bad_mode_or_compile_option_before_building(kwargs, error, start):
    counted = Counted()
    with pytest.raises(error) as e:
        run_sweep(counted, depth=[1, 2], executor="serial", cache=False, progress=False, **kwargs)
    assert e.value.what.startswith(start)
    assert counted.calls == 0


def test_study_refuses_a_bad_mode_and_compile_options():
    with pytest.raises(PtortValueError, match=r"^Study\(mode=\.\.\.\) must be one of"):
        Study(small_build, SMALL, mode="x")
    with pytest.raises(PtortValueError, match=r"^Study\(\.\.\.\) passes its other keyword arguments to compile\(\)"):
        Study(small_build, SMALL, bogus=1)
    assert Study(small_build, SMALL, mode="pipeline", machine="ascend_910b4").mode == "pipeline"


def test_the_options_check_does_not_count_as_a_compiled_program():
    from ptort_lab.program import collect_compiled
    with collect_compiled() as compiled:
        Study(small_build, SMALL, compute_values=False)
    assert compiled == []


# -- #6: equal_cores takes a bool --------------------------------------------------------------------------------------
def test_equal_cores_must_be_a_bool():
    with pytest.raises(PtortTypeError, match=r"^Study\(equal_cores=\.\.\.\) must be True or False, got str 'no'\."):
        Study(small_build, SMALL, equal_cores="no")
    with pytest.raises(PtortTypeError, match=r"^run_study\(equal_cores=\.\.\.\) must be True or False, got list"):
        run_study(small_build(), SMALL, equal_cores=[])
    study = Study(small_build, SMALL, equal_cores=np.bool_(True))
    assert study.equal_cores is True
    assert run_study(small_build(), SMALL, equal_cores=np.bool_(True), compute_values=False).equal_cores is True


# -- #5, #13: report.check ---------------------------------------------------------------------------------------------
def test_check_refuses_complex_against_real():
    with pytest.raises(PtortTypeError) as e:
        check("c", np.array([1 + 5j]), np.array([1.0]))
    assert e.value.what == ("check('c'): got is complex (complex128) but expected is real, so the imaginary parts "
                            "would be dropped.")
    with pytest.raises(PtortTypeError, match=r"^check\('c'\): expected is complex"):
        check("c", [1.0], np.array([1 + 0j]))
    assert check("c", np.array([1 + 5j]), np.array([1 + 5j])).passed
    assert not check("c", np.array([1 + 5j]), np.array([1 + 4j])).passed


def test_check_compares_infinities_and_nans_as_allclose_does():
    for got, expected in [([np.inf], [np.inf]), ([-np.inf, 1.0], [-np.inf, 1.0]), ([np.inf], [-np.inf]),
                          ([np.nan], [np.nan]), ([np.inf], [1.0]), ([1.0], [np.nan])]:
        result = check("x", got, expected)
        assert result.passed == bool(np.allclose(got, expected, rtol=1e-5, atol=1e-6)), (got, expected)
    assert check("x", [np.inf, 2.0], [np.inf, 2.0]).max_abs_error == 0.0
    assert np.isnan(check("x", [np.nan], [1.0]).max_abs_error)


def test_check_takes_a_tensor_as_its_data():
    X = Tensor(data=np.ones((2, 2), np.float32))
    assert check("t", X, np.ones((2, 2))).passed
    assert not check("t", np.zeros((2, 2)), X).passed
    with pytest.raises(PtortTypeError, match=r"^check\('t'\): got is a TensorView"):
        check("t", X[0], np.ones(2))
    with pytest.raises(PtortValueError, match=r"^check\('t'\): got is Tensor  with no data"):
        check("t", Tensor(shape=(2, 2)), np.ones((2, 2)))
    with pytest.raises(PtortValueError, match=r"^check\('t'\): got is on-chip Tensor acc whose data the run never"):
        check("t", Tensor(data=np.ones((2, 2), np.float32), location=Location.UB, name="acc"), np.ones((2, 2)))


@pytest.mark.parametrize(("args", "kwargs", "error", "start"), [
    (("s", "abc", [1.0]), {}, PtortTypeError, "check('s'): got is str 'abc', not numbers."),
    (("s", [1.0], "1.5"), {}, PtortTypeError, "check('s'): expected is str '1.5', not numbers."),
    (("s", None, [1.0]), {}, PtortTypeError, "check('s'): got is NoneType None, not numbers."),
    (("s", [1.0], [1.0]), {"rtol": "1e-3"}, PtortTypeError, "check(rtol=...) must be a number >= 0, got str '1e-3'."),
    (("s", [1.0], [1.0]), {"atol": -1.0}, PtortValueError, "check(atol=...) must be a finite number >= 0, got -1.0."),
    (("s", [1.0], [1.0]), {"atol": float("nan")}, PtortValueError, "check(atol=...) must be a finite number"),
    ((None, [1], [1]), {}, PtortTypeError, "check(name, ...) takes the check's name as a str, got NoneType None."),
    (("r", [[1, 2], [3]], [[1, 2], [3]]), {}, PtortValueError, "check('r'): got is not an array of numbers"),
])
def test_check_refuses_what_is_not_numbers(args, kwargs, error, start):
    with pytest.raises(error) as e:
        check(*args, **kwargs)
    assert e.value.what.startswith(start)


def test_a_shape_mismatch_names_both_shapes():
    result = check("s", np.ones((2, 3)), np.ones((3, 2)))
    assert not result.passed
    assert result.line() == "  s                got shape (2, 3) but expected shape (3, 2): FAIL"
    assert check("n", 5, 5, rtol=0, atol=0).passed and check("b", [True], [1]).passed


def test_run_report_and_report_check_their_arguments(capsys):
    with pytest.raises(PtortTypeError, match=r"^run_report\(\) takes a Program that has run, got NoneType None\."):
        run_report(None)
    program = small_build().compile(compute_values=False)
    with pytest.raises(PtortValueError, match=r"^run_report\(\) needs a Program that has run"):
        run_report(program)
    program.execute()
    with pytest.raises(PtortTypeError, match=r"^report\(title, checks, \.\.\.\) takes a list of Check .* got NoneType"):
        report("t", None, {})
    with pytest.raises(PtortTypeError, match=r"^report\(title, checks, \.\.\.\) takes a list of Check .* got Check"):
        report("t", check("a", [1], [1]), {})
    with pytest.raises(PtortTypeError, match=r"^report\(title, checks, programs\) takes a dict of label -> Program, "
                                             r"got list"):
        report("t", [], [program])
    assert capsys.readouterr().out == ""  # nothing printed by a refused report
    assert report("t", [check("a", [1], [1])], {"pipeline": program})
    assert capsys.readouterr().out.splitlines()[-1] == "PASS"


# -- #7: a steady-state run's timeline says it is the trace of its first tiles -----------------------------------------
def _pinned(n: int):
    load = kernel(name="load", cycles=100)(lambda: None)
    work = kernel(name="work", cycles=60)(lambda: None)
    ch = Channel(name="ch", depth=2)
    src = process("src").produces(ch).body(for_each(Dense[n](), lambda t: send(ch, task(load, [t], {}))))
    dst = process("dst").consumes(ch).body(consume(ch, lambda t: task(work, [t], {})))
    return connect(src, dst).compile(cost_model=PinnedCosts())


def test_plot_timeline_of_a_steady_state_run_says_it_draws_the_first_tiles():
    from ptort_lab.viz import plot_timeline
    program = _pinned(1000).execute(steady_state=True)
    stats, trace = program.stats(), program.trace()
    tiles = stats.steady_state.traced_tiles
    assert stats.total_cycles > trace.makespan
    fig = plot_timeline(program)
    gantt = next(ax for ax in fig.axes if ax.get_gid() == "gantt")
    assert gantt.get_title(loc="left") == (
        f"pipeline: {tiles}-tile trace ({trace.makespan:,} cycles) of a steady-state run of 1,000 tiles: "
        f"{stats.total_cycles:,} cycles = {stats.time_us:.2f} µs, overlap {stats.overlap_pct:.1f}%")
    assert [t.get_text() for t in gantt.texts if t.get_gid() == "makespan-label"] == [f" trace end {trace.makespan:,}"]
    plain = plot_timeline(_pinned(4).execute())
    assert next(ax for ax in plain.axes if ax.get_gid() == "gantt").get_title(loc="left").startswith("pipeline: ")
    assert "trace" not in next(ax for ax in plain.axes if ax.get_gid() == "gantt").get_title(loc="left")


def test_compare_uses_a_steady_state_runs_whole_figures():
    from ptort_lab.viz import compare
    steady = _pinned(1000).execute(steady_state=True)
    full = _pinned(1000).execute()
    assert steady.stats().total_cycles == full.stats().total_cycles  # exact extrapolation
    fig = compare(steady, full, labels=("steady", "full"))
    table = next(t for t in fig.texts if t.get_gid() == "summary").get_text().splitlines()
    cycles = full.stats().total_cycles
    assert table[1].startswith("steady*") and f"{cycles:,}" in table[1]
    assert table[2].startswith("full") and f"{cycles:,}" in table[2]
    assert table[3] == "steady speedup vs full: 1.00x"
    assert table[4] == (f"* steady: steady-state run, figures for all 1,000 tiles; its timeline shows the "
                        f"{steady.stats().steady_state.traced_tiles}-tile trace")


# -- #9: resolutions and sizes are bounded -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def program():
    return small_build().compile(compute_values=False).execute()


@pytest.mark.parametrize(("dpi", "error", "start"), [
    (1e5, PtortValueError, "figure_png(dpi=...) must be from 10 to 1200 dots per inch, got 100000.0."),
    (1e-6, PtortValueError, "figure_png(dpi=...) must be from 10 to 1200 dots per inch, got 1e-06."),
    (10**400, PtortValueError, "figure_png(dpi=...) must be from 10 to 1200"),
    (float("nan"), PtortValueError, "figure_png(dpi=...) must be from 10 to 1200"),
    ("100", PtortTypeError, "figure_png(dpi=...) must be a number of dots per inch, got str '100'."),
    (True, PtortTypeError, "figure_png(dpi=...) must be a number of dots per inch, got bool True."),
])
def test_figure_png_bounds_its_dpi(program, dpi, error, start):
    from ptort_lab.viz import figure_png, plot_timeline
    with pytest.raises(error) as e:
        figure_png(plot_timeline(program), dpi=dpi)
    assert e.value.what.startswith(start)


def test_figure_png_refuses_a_raster_too_big_to_draw(program):
    from ptort_lab.viz import figure_png, plot_timeline
    fig = plot_timeline(program)
    fig.set_size_inches(10, 800)
    with pytest.raises(PtortValueError) as e:
        figure_png(fig)
    assert e.value.what.startswith("figure_png(): the figure is 10 x 800 inches, 1,000 x 80,000 pixels at 100 dpi: "
                                   "more than the 50,000,000 pixels")
    assert e.value.hint.startswith("Use a lower dpi (at most 79 for this figure)")
    fig.set_size_inches(10, 4)
    assert figure_png(fig, dpi=600)[:4] == b"\x89PNG"


def test_diagram_png_bounds_its_dpi(program):
    from ptort_lab.viz import draw_pipeline
    diagram = draw_pipeline(program.workload)
    with pytest.raises(PtortValueError, match=r"^Diagram\.png\(dpi=\.\.\.\) must be from 10 to 1200"):
        diagram.png(dpi=1e5)
    with pytest.raises(PtortTypeError, match=r"^Diagram\.png\(dpi=\.\.\.\) must be a number"):
        diagram.png(dpi=[100])  # unhashable: refused before the cache lookup
    assert diagram.png(dpi=50)[:4] == b"\x89PNG"


def _many_lanes(n: int) -> Trace:
    names = [f"p{i}" for i in range(n)]
    return Trace(spans=[Span(0, f"l{i}", "k", i, i, i + 10, 0, names[i], i) for i in range(n)], makespan=n + 10,
                 processes=names)


def test_a_timeline_of_thousands_of_lanes_is_refused_with_how_to_pick_some():
    from ptort_lab.viz import compare, plot_timeline
    trace = _many_lanes(3000)
    with pytest.raises(PtortValueError) as e:
        plot_timeline(trace)
    assert e.value.what.startswith("plot_timeline() would draw 3,000 lanes (one per process): more than the 1,000 a "
                                   "timeline draws")
    assert "plot_timeline(..., processes=['p0', 'p1', 'p2'])" in e.value.hint
    with pytest.raises(PtortValueError, match=r"^compare\(\) would draw 6,000 lanes \(one per process\) \(3,000 \+ "
                                              r"3,000 in its 2 runs\)"):
        compare(trace, trace)
    fig = plot_timeline(trace, processes=trace.processes[:40])
    gantt = next(ax for ax in fig.axes if ax.get_gid() == "gantt")
    assert len(gantt.get_yticklabels()) == 40
    assert gantt.get_title(loc="left").endswith("(40 of 3,000 processes shown)")


def test_the_processes_filter_is_checked(program):
    from ptort_lab.viz import plot_timeline
    with pytest.raises(PtortTypeError, match=r"^plot_timeline\(processes=\.\.\.\) takes a list of process names, "
                                             r"got str 'loader'\."):
        plot_timeline(program, processes="loader")
    with pytest.raises(PtortValueError, match=r"^plot_timeline\(processes=\.\.\.\) names 'nope', which is not a "
                                              r"process of the trace; its processes are 'loader', 'computer', "
                                              r"'storer'\."):
        plot_timeline(program, processes=["nope"])
    fig = plot_timeline(program, processes=["storer", "loader"])
    gantt = next(ax for ax in fig.axes if ax.get_gid() == "gantt")
    assert [t.get_text() for t in gantt.get_yticklabels()] == ["storer", "loader"]
    assert gantt.get_title(loc="left").startswith(f"pipeline: {program.trace().makespan:,} cycles")


# -- #14: compare's labels, save_trace's path --------------------------------------------------------------------------
@pytest.mark.parametrize(("labels", "error"), [(None, PtortTypeError), (5, PtortTypeError), ("ab", PtortTypeError),
                                               ((x for x in "ab"), PtortTypeError), (("a",), PtortValueError),
                                               (("a", 2), PtortValueError)])
def test_compare_labels_are_two_strings(program, labels, error):
    from ptort_lab.viz import compare
    with pytest.raises(error, match=r"^compare\(labels=\.\.\.\) takes a tuple of two str, got"):
        compare(program, program, labels=labels)


def test_compare_takes_labels_as_a_list_too(program):
    from ptort_lab.viz import compare
    table = next(t for t in compare(program, program, labels=["x", "y"]).texts if t.get_gid() == "summary")
    assert table.get_text().splitlines()[1].startswith("x ")


def test_save_trace_checks_its_path(tmp_path):
    from ptort_lab.notebook.display import PtortResult
    result = PtortResult(run_study(small_build(), SMALL, compute_values=False), small_build())
    for bad in (123, None, b"run.json"):
        with pytest.raises(PtortTypeError, match=r"^save_trace\(path\) takes a file path \(a str or pathlib.Path\), "
                                                 rf"got {type(bad).__name__} "):
            result.save_trace(bad)
    with pytest.raises(PtortValueError, match=r"^save_trace\(path\) got '', which names no file\."):
        result.save_trace("")
    written = result.save_trace(tmp_path / "run.json")
    assert [label for label, _ in written] == ["pipeline", "data-parallel"] and all(p.exists() for _, p in written)


# -- #6, #16, #17: the explorer ----------------------------------------------------------------------------------------
def test_the_explorer_refuses_bad_arguments_at_once():
    from ptort_lab.notebook import Explorer
    with pytest.raises(PtortValueError, match=r"^Explorer\(mode=\.\.\.\) must be one of"):
        Explorer(small_build, SMALL, mode="x")
    with pytest.raises(PtortTypeError, match=r"^Explorer\(equal_cores=\.\.\.\) must be True or False, got str 'no'"):
        Explorer(small_build, SMALL, equal_cores="no")
    with pytest.raises(PtortValueError, match=r"^Explorer\(\.\.\.\) passes its other keyword arguments to compile\(\), "
                                              r"which refused them: compile\(\) got unknown option\(s\) \['bogus'\]"):
        Explorer(small_build, SMALL, bogus=1)
    study = Study(small_build, SMALL)
    with pytest.raises(PtortValueError, match=r"^Explorer\(study, \.\.\.\) got compile options \['machine'\], but a "
                                              r"Study keeps its own"):
        Explorer(study, machine="ascend_910b4")
    with pytest.raises(PtortValueError, match=r"^Explorer\(study, mode='pipeline'\) contradicts the Study's own mode"):
        Explorer(study, mode="pipeline")
    assert Explorer(small_build, SMALL, equal_cores=np.bool_(True)).equal_cores is True


def test_explorer_update_from_code_raises_and_the_panel_shows_it():
    from ptort_lab.notebook import Explorer
    explorer = Explorer(small_build, SMALL)
    good = explorer.controller.last
    for knobs in ({"depth": -1}, {"tile": "16x16"}, {"depth": None}):
        with pytest.raises(PtortValueError, match=r"^knob (depth|tile) must be"):
            explorer.update(**knobs)
        assert explorer.message.startswith("PtortValueError: knob ")
        assert explorer.controller.last is good and explorer.knob_values()["depth"] == 2
    with pytest.raises(PtortValueError, match=r"^Explorer.update\(\) got unknown knob 'colour'"):
        explorer.update(colour=1)
    comparison = explorer.update(depth=3)
    assert isinstance(comparison, Comparison) and comparison.knobs.depth == 3 and explorer.message == ""
    explorer.sliders["depth"].value = -1  # what moving the slider does: the panel says why, nothing raises
    assert explorer.message.startswith("PtortValueError: knob depth must be an int >= 1, got -1.")


@pytest.mark.parametrize(("request_", "message"), [
    ({"rid": "1", "knobs": {"tile": 5}}, "tile is int 5, not [rows, cols]"),
    ({"rid": "2", "knobs": {"depth": [1, 2]}}, "depth is list [1, 2], not a number"),
    ({"rid": "3", "knobs": ["depth"]}, "'knobs' is list ['depth'], not an object of knob values"),
    ({"rid": "4", "knobs": {"colour": 1}}, "unknown knob 'colour' (knobs: depth, tile, tiles, cores)"),
    ({"rid": "5", "knobs": {"depth": 3}, "equal_cores": "yes"}, "'equal_cores' is str 'yes', not true or false"),
])
def test_a_malformed_request_from_the_view_is_named(request_, message):
    from ptort_lab.notebook import Explorer
    explorer = Explorer(small_build, SMALL)
    explorer.request = request_
    assert explorer.message.startswith(f"PtortValueError: the explorer's view sent a malformed request: {message}.")
    assert explorer.view["rid"] == request_["rid"] and explorer.view["error"] == explorer.message
    assert explorer.knob_values()["depth"] == 2 and explorer.equal_cores is False
    explorer.request = {"rid": "6", "knobs": {"depth": 3, "tile": [32, 32]}, "equal_cores": True}
    assert explorer.message == "" and explorer.controller.last.knobs.depth == 3 and explorer.equal_cores is True
