"""Round 9 (a real JupyterLab): short reprs for a trace, stats and a comparison shown as a cell's value; errors that
name a notebook cell as IPython does (never its hashed temporary file); a library kernel's CapacityError at the
kernel's own line, launched from the user's; knobs passed where compile options go; a sweep index error in the words
of the method called."""
from __future__ import annotations

import os
import tempfile

import pytest
from source_lines import here

from ptort_lab.errors import CapacityError, PtortValueError, SourceLocation
from ptort_lab.explore import Comparison, Knobs, Study
from ptort_lab.sim.stats import ProgramStats
from ptort_lab.sim.trace import Span, Stall, Trace
from ptort_lab.sim.trace_files import WholeRun
from ptort_lab.spec_pipeline import build, spec_pipeline

SMALL = Knobs(depth=2, tile=(64, 64), tiles=4, cores=2)


# -- reprs --------------------------------------------------------------------------------------------------------
def test_a_trace_repr_is_one_line_of_counts():
    spans = [Span(0, "AIV0.V", "k", 0, 0, 1500), Span(1, "AIV0.V", "k", 1, 500, 2000)]
    assert repr(Trace(spans=spans)) == "<Trace pipeline: 2 spans, 2 cores, makespan 2,000 cycles>"
    assert repr(Trace()) == "<Trace pipeline: 0 spans, 0 cores, makespan 0 cycles>"
    part = Trace(spans=spans[:1], stalls=[Stall("p", "wait", 0, 10)], mode="data-parallel",
                 whole_run=WholeRun(tiles=10_000, traced_tiles=4, cycles=1_000_060, overlap_pct=50.0))
    assert repr(part) == ("<Trace data-parallel: 1 span, 1 core, makespan 1,500 cycles, 1 stall; the 4-tile trace "
                          "of a 10,000-tile run (1,000,060 cycles)>")
    assert Trace(spans=list(spans)) == Trace(spans=list(spans))  # still a dataclass: equal by its fields


def test_a_long_runs_trace_and_stats_show_short():
    """The finding: `p.trace()` ending a cell printed every span (3 MB at 2000 tiles)."""
    p = spec_pipeline(2, (64, 64), 2000, seed=None).pipeline.compile(compute_values=False)
    p.execute()
    trace, stats = p.trace(), p.stats()
    assert repr(trace) == (f"<Trace pipeline: {len(trace.spans):,} spans, 3 cores, makespan {trace.makespan:,} "
                           f"cycles, {len(trace.stalls):,} stalls>")
    assert len(trace.spans) == 18_000 and len(repr(trace)) < 100
    assert repr(stats) == (f"<ProgramStats pipeline run: {stats.total_cycles:,} cycles = {stats.time_us:.3f} us, "
                           f"6,000 tasks, overlap {stats.overlap_pct:.1f}%>")


def test_a_stats_repr_is_its_summarys_first_line():
    stats = ProgramStats(total_cycles=12345, time_us=6.858333, task_count=8, mode="pipeline", overlap_pct=62.5,
                         lane_busy_pct={"AIV0.MTE2": 5.096314272713484})
    assert repr(stats) == "<ProgramStats pipeline run: 12,345 cycles = 6.858 us, 8 tasks, overlap 62.5%>"
    assert repr(ProgramStats(task_count=1)) == "<ProgramStats run: 0 cycles = 0.000 us, 1 task, overlap 0.0%>"
    assert str(stats) == stats.summary()  # print() keeps the whole table
    assert ProgramStats(total_cycles=3) == ProgramStats(total_cycles=3)


def test_a_comparison_repr_is_its_knobs_and_verdict():
    both = Study(build, SMALL).run()
    assert isinstance(both, Comparison) and both.verdict()
    assert repr(both) == f"<Comparison depth=2 tile=64x64 tiles=4 cores=2: {both.verdict()}>"
    assert "Program" not in repr(both) and "Span(" not in repr(both)
    one = Study(build, SMALL, mode="pipeline").run()
    cycles = one.pipeline.stats().total_cycles
    assert repr(one) == f"<Comparison depth=2 tile=64x64 tiles=4: pipeline run {cycles:,} cycles>"
    assert repr(Comparison(Knobs(), built_with=())) == "<Comparison no knobs used: no runs>"
    unrun = spec_pipeline(2, (64, 64), 4, seed=None).pipeline.compile(compute_values=False)
    assert repr(Comparison(SMALL, pipeline=unrun)) == "<Comparison depth=2 tile=64x64 tiles=4: pipeline not run yet>"


# -- notebook cells are named as IPython names them ---------------------------------------------------------------
@pytest.fixture(scope="module")
def shell():
    """An IPython shell compiling cells as a Jupyter kernel does: each under a hashed temporary file name
    (ipykernel's compiler), which is what the messages named ("at 2702741056.py:1")."""
    os.environ.setdefault("IPYTHONDIR", tempfile.mkdtemp(prefix="ptort-ipython-"))
    from ipykernel.compiler import XCachingCompiler
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config
    ours = not InteractiveShell.initialized()  # (else a shell another test made, lent with its compiler put back)
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    ip = InteractiveShell.instance(config=config)
    saved, ip.compile = ip.compile, XCachingCompiler()
    ip.run_line_magic("load_ext", "ptort_lab")
    ip.run_cell("from ptort_lab.explore import Knobs, Study\nfrom ptort_lab.notebook import Explorer\n"
                "from ptort_lab.spec_pipeline import build\n", store_history=True)
    yield ip
    ip.compile = saved
    if ours:
        InteractiveShell.clear_instance()  # later tests see no IPython


def run(ip, code: str) -> tuple[int, BaseException | None]:
    """Run ``code`` as the next cell: its number (In[n]) and the exception it raised."""
    n = ip.execution_count
    try:
        return n, ip.run_cell(code, store_history=True).error_in_exec
    except Exception as e:  # noqa: BLE001 - the lent shell (tests/notebook's) raises the cell's exception
        return n, e


def test_an_error_in_a_plain_cell_names_the_cell(shell):
    n, e = run(shell, "x = 1\nExplorer(build, depth=2)\n")
    assert isinstance(e, PtortValueError)
    assert e.where.filename.endswith(".py") and os.path.basename(e.where.filename)[0].isdigit()  # the hashed file
    assert str(e.where) == f"cell In[{n}], line 2"
    assert str(e).splitlines()[1:3] == [f"  at cell In[{n}], line 2", "    Explorer(build, depth=2)"]


def test_a_plain_cells_function_named_in_a_ptort_cells_traceback(shell):
    n, _ = run(shell, "def helper():\n    return {}['missing']\n")
    m, e = run(shell, "%%ptort\nhelper()\npipeline = build(DEPTH, TILE, TILES)\n")
    assert isinstance(e, KeyError)
    assert e._render_traceback_() == ["KeyError: 'missing'", "  at cell line 2", "    helper()",
                                      f"  at cell In[{n}], line 2 in helper", "    return {}['missing']"]


def test_a_library_kernels_capacity_error_in_a_cell(shell):
    n, e = run(shell, "Study(build, Knobs(tile=(256, 256))).run()")
    assert isinstance(e, CapacityError)
    assert e.context == f"kernel 'load_kernel' launched from cell In[{n}], line 1"


def test_a_file_outside_a_notebook_keeps_its_name():
    assert str(SourceLocation("/tmp/somewhere/2702741056.py", 3)) == "2702741056.py:3"
    assert str(SourceLocation("/home/u/run.py", 12, "main", "go()")) == "run.py:12"


# -- a library kernel's capacity error ----------------------------------------------------------------------------
def _def_line(name: str) -> int:
    import ptort_lab.spec_pipeline as module
    with open(module.__file__) as f:
        return next(i for i, text in enumerate(f, 1) if text.lstrip().startswith(f"def {name}("))


def test_a_library_kernels_capacity_error_is_at_the_kernel_launched_from_the_users_line():
    """load_kernel is ptort_lab's: its ops were recorded at the user's line, so the message named `load src` at the
    user's line and said the kernel was "in" the user's file."""
    with pytest.raises(CapacityError) as e:
        Study(build, Knobs(tile=(256, 256))).run()
    line = here() - 1
    assert e.value.what == ("kernel 'load_kernel' cannot fit ascend_910b's buffers: it needs 262144 bytes of UB at "
                            "once at `load src`, but the UB of an AIV holds 196608 bytes (192 KiB). Live there: "
                            "`load src` 262144 B.")
    where = e.value.where
    assert (os.path.basename(where.filename), where.lineno) == ("spec_pipeline.py", _def_line("load_kernel"))
    assert where.code.startswith("def load_kernel(src: In[Tile[rows, cols, F32]]") and "#" not in where.code
    assert e.value.context == f"kernel 'load_kernel' launched from test_reprs_locations_round9.py:{line}"
    assert e.value.hint.startswith("Use a smaller tile than [256, 256]")


# -- knobs where compile options go -------------------------------------------------------------------------------
def test_a_knob_given_to_the_explorer_as_a_keyword():
    from ptort_lab.notebook import Explorer
    with pytest.raises(PtortValueError) as e:
        Explorer(build, depth=2)
    line = here() - 1
    assert e.value.what == ("Explorer(...) got depth=2, but depth is a knob, not a compile() option (the keyword "
                            "arguments Explorer() does not take itself go to compile()).")
    assert e.value.hint == "depth is a knob: Explorer(build, Knobs(depth=2)) (from ptort_lab.explore import Knobs)."
    assert (e.value.where.filename, e.value.where.lineno) == (__file__, line)


def test_knobs_given_to_a_study_as_keywords():
    with pytest.raises(PtortValueError) as e:
        Study(build, tile=64, tiles=[2, 4])
    assert e.value.what == ("Study(...) got tile=64, tiles=[2, 4], but tile and tiles are knobs, not compile() "
                            "options (the keyword arguments Study() does not take itself go to compile()).")
    assert e.value.hint == ("tile and tiles are knobs: Study(build, Knobs(tile=(64, 64), tiles=8)) (from "
                            "ptort_lab.explore import Knobs); to run several values, sweep(build, tiles=[2, 4]).")


def test_a_typo_of_a_knob_is_offered_the_knob():
    from ptort_lab.notebook import Explorer, sweep
    with pytest.raises(PtortValueError) as e:
        sweep(build, dpeth=[1, 2], executor="serial", cache=False, progress=False)
    line = here() - 1
    assert e.value.what == ("sweep(...) got an unknown keyword argument dpeth=[1, 2] (the keyword arguments sweep() "
                            "does not take itself go to compile(), which has no such option).")
    assert e.value.hint == "Did you mean the knob depth? sweep(build, depth=[1, 2])."
    assert (e.value.where.filename, e.value.where.lineno) == (__file__, line)
    with pytest.raises(PtortValueError) as e:
        Explorer(build, core=2)
    assert e.value.hint == ("Did you mean the knob cores? Explorer(build, Knobs(cores=2)) (from ptort_lab.explore "
                            "import Knobs).")


def test_a_typo_of_a_compile_option_keeps_compiles_message():
    with pytest.raises(PtortValueError) as e:
        Study(build, machin="ascend_910b")
    assert e.value.what == ("Study(...) passes its other keyword arguments to compile(), which refused them: "
                            "compile() got unknown option(s) ['machin'].")
    assert e.value.hint.startswith("Did you mean 'machine'?")


# -- a sweep's index in the words of the method called ------------------------------------------------------------
def test_a_sweeps_index_error_names_the_method_called():
    from ptort_lab.notebook import sweep
    result = sweep(build, depth=[1, 2], knobs=SMALL, executor="serial", cache=False, progress=False)
    for method in ("explore", "timeline"):
        with pytest.raises(PtortValueError) as e:
            getattr(result, method)(99)
        line = here() - 1
        assert e.value.what == f"{method}(99) is not a point of this sweep: it has 2 (0..1)."
        assert e.value.hint == f"Use the # column of the table, e.g. result.{method}(0)."
        assert (e.value.where.filename, e.value.where.lineno) == (__file__, line)


@pytest.mark.parametrize("method", ["study", "comparison"])
def test_a_sweep_results_study_and_comparison_name_themselves_for_a_bad_index(method):
    from ptort_lab.sweeps.result import SweepResult
    result = SweepResult.__new__(SweepResult)
    result.points = [object(), object()]
    with pytest.raises(PtortValueError) as e:
        getattr(result, method)(5)
    assert e.value.what == f"{method}(5) is not a point of this sweep: it has 2 (0..1)."
    assert e.value.hint == f"Use the # column of the table, e.g. result.{method}(0)."
