"""%%ptort: registration, help, how options reach the cell, which workload is studied, options, errors."""
from __future__ import annotations

import json
import re
from pathlib import Path
from textwrap import dedent

import numpy as np
import pytest
from IPython.core.error import UsageError

from ptort_lab.errors import CapacityError, PtortTypeError, PtortValueError
from ptort_lab.notebook import PtortResult
from ptort_lab.notebook.cell import CellBody, PtortSyntaxError, label


def cell(ip, line: str, body: str):
    """Run ``%%ptort line`` + body as a whole cell (through run_cell, as a notebook does); return _ptort."""
    ip.run_cell(f"%%ptort {line}\n{body}")
    return ip.user_ns["_ptort"]


def rendered(excinfo) -> str:
    """What IPython prints for the exception: its _render_traceback_ lines."""
    return "\n".join(excinfo.value._render_traceback_())


def assert_short(text: str, max_lines: int = 6) -> None:
    assert len(text.splitlines()) <= max_lines, text
    assert "Traceback" not in text and "ptort_lab/" not in text and "site-packages" not in text, text
    assert "<ptort-cell-" not in text, text


def test_load_ext_registers_the_cell_magic(ip):
    """%load_ext ptort_lab registers %%ptort as a cell magic (the session fixture ran it)."""
    assert "ptort_lab" in ip.extension_manager.loaded
    assert ip.find_cell_magic("ptort") is not None


def test_help_documents_every_option_and_how_options_reach_the_cell(ip):
    """%%ptort? shows every option, the names the magic binds and how the workload is found."""
    doc = ip.find_cell_magic("ptort").__doc__
    for option in ("--depth", "--tile", "--tiles", "--cores", "--mode", "--show", "--machine", "--latency",
                   "--trace-out", "-o", "--interact"):
        assert option in doc
    for text in ("DEPTH", "TILE", "TILES", "CORES", "last expression", "%%ptort [--depth N]"):
        assert text in doc


def test_help_query_prints_the_help(ip, capsys):
    """`%%ptort?` runs (through IPython's pinfo) and prints the help text."""
    ip.run_cell("%%ptort?")
    assert "--depth N" in capsys.readouterr().out


def test_spec_cell_runs_both_ways_and_computes_values(ip, spec_body):
    """The spec pipeline cell runs as a pipeline and data-parallel; its summary has cycles and overlap."""
    result = cell(ip, "", spec_body)
    assert isinstance(result, PtortResult)
    assert [label for label, _ in result.runs] == ["pipeline", "data-parallel"]
    text = result._repr_mimebundle_(include={"text/plain"})["text/plain"]
    assert "cycles" in text and "overlap" in text and "speedup" in text
    assert "pipeline loader -> computer -> storer" in text
    x = ip.user_ns["x"]
    expected = (x.astype(np.float16) * x.astype(np.float16)).astype(np.float32)
    np.testing.assert_array_equal(ip.user_ns["Y"].data, expected)


def test_names_defined_in_the_cell_stay_in_the_namespace(ip, spec_body):
    """The body runs in the user namespace: its kernels, tensors and pipeline are there afterwards."""
    cell(ip, "", spec_body)
    for name in ("load_kernel", "X", "pipeline", "load_to_compute"):
        assert name in ip.user_ns


def test_defaults_are_bound_when_no_option_or_name_exists(ip, spec_body):
    """Without options or existing names the Knobs defaults are bound: DEPTH 2, TILE (128, 128), TILES 8, CORES 4."""
    result = cell(ip, "", spec_body)
    assert (ip.user_ns["DEPTH"], ip.user_ns["TILE"], ip.user_ns["TILES"], ip.user_ns["CORES"]) == (2, (128, 128), 8, 4)
    assert (result.knobs.depth, result.knobs.tile, result.knobs.tiles, result.knobs.cores) == (2, (128, 128), 8, 4)


def test_options_override_the_knobs_and_o_stores_the_result(ip, spec_body):
    """--depth/--tile/--tiles/--cores bind DEPTH/TILE/TILES/CORES; -o NAME stores the result as NAME and _ptort."""
    result = cell(ip, "--depth 3 --tile 64x32 --tiles 4 --cores 2 -o run", spec_body)
    assert ip.user_ns["run"] is result
    assert (ip.user_ns["DEPTH"], ip.user_ns["TILE"], ip.user_ns["TILES"], ip.user_ns["CORES"]) == (3, (64, 32), 4, 2)
    assert str(result.knobs) == "depth=3 tile=64x32 tiles=4 cores=2"
    assert [c.depth for c in result.workload.channels] == [3, 3]
    assert len(result.pipeline.tasks) == 12
    assert ip.user_ns["Y"].data.shape == (4, 64, 32)


def test_existing_names_are_used_when_no_option_is_given(ip, spec_body):
    """A DEPTH/TILE/TILES set in an earlier cell is used; options still win over it."""
    ip.run_cell("DEPTH = 4\nTILE = 64\nTILES = 3")
    result = cell(ip, "", spec_body)
    assert (result.knobs.depth, result.knobs.tile, result.knobs.tiles) == (4, (64, 64), 3)
    result = cell(ip, "--tiles 5", spec_body)
    assert (result.knobs.depth, result.knobs.tiles) == (4, 5)


def test_bad_knob_value_in_the_namespace_is_a_real_error(ip, spec_body):
    """A TILE the magic cannot use raises a PtortValueError naming the variable."""
    ip.user_ns["TILE"] = "big"
    with pytest.raises(PtortValueError, match="TILE in the namespace is 'big'"):
        ip.run_cell_magic("ptort", "", spec_body)


def test_line_is_variable_expanded(ip, spec_body):
    """The first line goes through IPython's var_expand: {d} and $d work."""
    ip.user_ns["d"] = 5
    assert cell(ip, "--depth {d}", spec_body).knobs.depth == 5
    assert cell(ip, "--depth $d", spec_body).knobs.depth == 5


def test_last_expression_is_the_studied_workload(ip, spec_body):
    """A workload as the last expression is studied, even when another pipeline was assigned."""
    body = spec_body + dedent("""\
        @workload
        def parallel():
            for t in P(Dense[n]()):
                load_kernel[t](src=X[t], dst=T0[t])
        parallel()
    """)
    result = cell(ip, "", body)
    assert result.workload.kind != "connect" and result.pipeline is None
    assert len(result.data_parallel.tasks) == 8


def test_last_assigned_pipeline_is_preferred_over_other_workloads(ip, spec_body):
    """Without a workload as last expression, the last assigned pipeline wins over a later plain workload."""
    body = spec_body + dedent("""\
        @workload
        def parallel():
            for t in P(Dense[n]()):
                load_kernel[t](src=X[t], dst=T0[t])
        other = parallel()
        done = True
    """)
    result = cell(ip, "", body)
    assert result.workload is ip.user_ns["pipeline"]


def test_mode_pipeline_runs_only_the_pipeline(ip, spec_body):
    """--mode pipeline leaves out the data-parallel run (and the speedup)."""
    result = cell(ip, "--mode pipeline", spec_body)
    assert result.data_parallel is None and result.speedup is None
    assert "speedup" not in result.summary()


def test_machine_and_latency_options_reach_the_simulator(ip, spec_body):
    """--machine picks the preset and --latency the channel latency; the summary names both."""
    result = cell(ip, "--machine ascend_910b4 --latency 0", spec_body)
    assert result.pipeline.machine.name == "ascend_910b4"
    assert result.pipeline.run_options.channel_latency_cycles == 0
    assert "machine ascend_910b4, channel latency 0 cycles" in result.summary()
    slower = cell(ip, "--machine ascend_910b4 --latency 5000", spec_body)
    assert slower.cycles()["pipeline"] > result.cycles()["pipeline"]


def test_trace_out_writes_chrome_json(ip, spec_body, tmp_path, capsys):
    """--trace-out writes the pipeline trace to FILE.json and the data-parallel one next to it."""
    path = tmp_path / "run.json"
    cell(ip, f"--trace-out {path}", spec_body)
    assert f"Wrote {path} (pipeline), {tmp_path / 'run.data-parallel.json'} (data-parallel)" in capsys.readouterr().out
    for name in ("run.json", "run.data-parallel.json"):
        data = json.loads((tmp_path / name).read_text())
        assert any(e.get("ph") == "X" for e in data["traceEvents"])


@pytest.mark.parametrize("line, message", [
    ("--bogus 3", "unrecognized arguments: --bogus 3"),
    ("--dpeth 3", "Did you mean '--depth'?"),
    ("--depth 0", "--depth must be >= 1, got 0."),
    ("--depth two", "argument --depth: invalid int value: 'two'"),
    ("--tile 3y4", "--tile takes ROWSxCOLS"),
    ("--machine ascend_910c", "unknown machine 'ascend_910c'. Did you mean 'ascend_910b'?"),
    ("--show diagam,ir", "--show got unknown part 'diagam'. Did you mean 'diagram'?"),
    ("--mode pipe", "invalid choice: 'pipe'"),
    ("-o 1x", "-o takes a Python name"),
    ("--latency -1", "--latency must be >= 0"),
    ("--trace-out /no/such/dir/t.json", "does not exist"),
])
def test_bad_options_are_one_line_usage_errors(ip, spec_body, line, message):
    """Every bad option is a UsageError with a one-line message, raised before the body runs."""
    with pytest.raises(UsageError) as excinfo:
        ip.run_cell(f"%%ptort {line}\n{spec_body}")
    assert message in str(excinfo.value)
    assert "\n" not in str(excinfo.value)
    assert "pipeline" not in ip.user_ns


def test_empty_body_is_a_usage_error(ip):
    """A %%ptort cell with nothing under it is a usage error."""
    with pytest.raises(UsageError, match="needs a cell body"):
        ip.run_cell("%%ptort --depth 2\n\n")


BAD_KERNEL = dedent("""\
    @kernel
    def k(a: In[Tile[64, 64, F32]], b: In[Tile[64, 32, F32]], o: Out[Tile[64, 64, F32]]):
        x = tl.load(a)
        y = tl.load(b)
        tl.store(o, tl.mul(x, y))
    A = Tensor(shape=(4, 64, 64), dtype=F32)
    B = Tensor(shape=(4, 64, 32), dtype=F32)
    O = Tensor(shape=(4, 64, 64), dtype=F32)

    @workload
    def w():
        for t in P(Dense[4]()):
            k[t](a=A[t], b=B[t], o=O[t])
    w()
""")


def test_dsl_error_is_one_short_message_at_the_cell_line(ip, capsys):
    """A type error in a kernel of the cell is a real PtortTypeError whose rendering names the cell line (body
    line 5 is cell line 6), shows the offending line and leaks no internal path."""
    with pytest.raises(PtortTypeError) as excinfo:
        ip.run_cell("%%ptort\n" + BAD_KERNEL)
    text = rendered(excinfo)
    assert_short(text)
    assert text.splitlines()[0].startswith("PtortTypeError: tl.mul")
    assert "at cell line 6 in kernel 'k'" in text
    assert "tl.store(o, tl.mul(x, y))" in text
    assert text in capsys.readouterr().out  # what IPython printed is exactly the rendering


def test_python_error_in_the_cell_is_short_and_keeps_its_type(ip):
    """A plain Python error in the body keeps its type and renders as the user's frames only."""
    with pytest.raises(NameError) as excinfo:
        ip.run_cell("%%ptort\nx = 1\ny = undefined_name + 1\n")
    text = rendered(excinfo)
    assert_short(text)
    assert text.splitlines() == ["NameError: name 'undefined_name' is not defined", "  at cell line 3",
                                 "    y = undefined_name + 1"]


def test_syntax_error_points_at_the_cell_line_with_a_caret(ip):
    """Invalid Python in the body is a PtortSyntaxError at its cell line, with the line and a caret."""
    with pytest.raises(PtortSyntaxError) as excinfo:
        ip.run_cell("%%ptort\nx = 1\ny = = 2\n")
    lines = rendered(excinfo).splitlines()
    assert lines[:4] == ["PtortSyntaxError: invalid syntax", "  at cell line 3", "    y = = 2", "        ^"]


def test_simulation_error_points_at_the_cell(ip, spec_body):
    """A tile too big for the on-chip buffer fails in the simulator; the message points at the kernel's cell line."""
    with pytest.raises(CapacityError) as excinfo:
        ip.run_cell("%%ptort --tile 4096x4096 --tiles 2\n" + spec_body)
    text = rendered(excinfo)
    assert_short(text)
    assert "at cell line 7 in kernel 'load_kernel'" in text
    assert "tl.store(dst, tl.cast(tl.load(src), F16))" in text


def test_explicit_depth_that_misses_a_channel_is_an_error(ip, spec_body):
    """--depth 4 with a channel built with depth=2 says which channel and how to fix it."""
    body = spec_body.replace('name="compute_to_store", depth=DEPTH', 'name="compute_to_store", depth=2')
    with pytest.raises(PtortValueError) as excinfo:
        ip.run_cell("%%ptort --depth 4\n" + body)
    text = rendered(excinfo)
    assert_short(text)
    assert "--depth 4 did not reach the pipeline: channel 'compute_to_store' has depth 2." in text
    assert "at cell line 24" in text and 'Channel[Tensor](name="compute_to_store", depth=2)' in text
    assert "depth=DEPTH" in text


def test_depth_from_the_namespace_does_not_have_to_match(ip, spec_body):
    """Only an explicit --depth is checked: a cell with literal depths runs under any DEPTH."""
    ip.user_ns["DEPTH"] = 4
    body = spec_body.replace("depth=DEPTH", "depth=2")
    assert [c.depth for c in cell(ip, "", body).workload.channels] == [2, 2]


def test_cell_without_a_workload_is_an_error(ip):
    """A body that builds nothing to run says how to return the pipeline."""
    with pytest.raises(PtortValueError, match="built no workload, pipeline or compiled program") as excinfo:
        ip.run_cell("%%ptort\nx = 1\n")
    assert_short(rendered(excinfo))


def test_locations_in_another_ptort_cell_are_named_by_its_prompt():
    """A location in another %%ptort cell reads "cell In [n] line L"; in the current cell, "cell line L"."""
    other, current = CellBody("x = 1\n", "", execution_count=7), CellBody("y = 2\n", "")
    text = f"at {other.filename}:2 and {current.filename}:2"
    assert label(text, current.filename) == "at cell In [7] line 2 and cell line 2"


def test_ptort_lab_does_not_import_the_notebook_layer():
    """Only the lazy load_ipython_extension in ptort_lab/__init__.py refers to ptort_lab.notebook."""
    import ast
    from pathlib import Path

    import ptort_lab
    root = Path(ptort_lab.__file__).parent
    offenders = []
    for path in root.rglob("*.py"):
        if "notebook" in path.relative_to(root).parts:
            continue
        tree = ast.parse(path.read_text())
        lazy = {id(n) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef) for n in ast.walk(f)}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and "notebook" in (node.module or "").split("."):
                if not (path.name == "__init__.py" and path.parent == root and id(node) in lazy):
                    offenders.append(f"{path.name}:{node.lineno}")
    assert offenders == []


def test_short_errors_can_be_turned_off_with_config(ip):
    """%config PtortMagics.short_errors = False leaves Python errors to IPython's full traceback."""
    ip.run_line_magic("config", "PtortMagics.short_errors = False")
    try:
        with pytest.raises(NameError) as excinfo:
            ip.run_cell("%%ptort\ny = undefined_name + 1\n")
        assert "_render_traceback_" not in vars(excinfo.value)
    finally:
        ip.run_line_magic("config", "PtortMagics.short_errors = True")
    with pytest.raises(NameError) as excinfo:
        ip.run_cell("%%ptort\ny = undefined_name + 1\n")
    assert "_render_traceback_" in vars(excinfo.value)


def test_trailing_semicolon_silences_the_output(ip, spec_body):
    """A body whose last line ends in `;` returns nothing to display; _ptort still holds the result."""
    assert ip.run_cell_magic("ptort", "--tiles 2", spec_body.rstrip() + ";\n") is None
    assert ip.user_ns["_ptort"].knobs.tiles == 2
    assert isinstance(ip.run_cell_magic("ptort", "--tiles 2", spec_body), PtortResult)


ROOT = Path(__file__).resolve().parents[2]
# The README's examples, and the on-chip page the README's on-chip section moved to (each of its blocks stands alone)
EXAMPLE_PAGES = [ROOT / "README.md", ROOT / "docs" / "explanation" / "on_chip.md"]


def _readme_pipeline_blocks() -> list[str]:
    """The ```python blocks of the README and the on-chip page that build a pipeline, extracted as
    tests/test_readme.py does."""
    blocks = [b for page in EXAMPLE_PAGES for b in re.findall(r"```python\n(.*?)```", page.read_text(), re.S)]
    return [b for b in blocks if "connect(" in b or "P.pipe" in b]


def test_readme_pipeline_examples_work_pasted_verbatim_under_the_magic(ip):
    """Every README pipeline example, pasted as it is under %%ptort, is studied: a pipeline run and its twin."""
    blocks = _readme_pipeline_blocks()
    assert len(blocks) >= 4
    for body in blocks:
        result = cell(ip, "--show none", body)
        assert isinstance(result, PtortResult), body[:200]
        assert [label for label, _ in result.runs] == ["pipeline", "data-parallel"], body[:200]
        assert result.pipeline.stats().total_cycles > 0


def test_the_readme_quick_start_pipeline_is_studied_as_its_own_executed_program(ip):
    """The quick start ends in `program = connect(...).compile().execute()`: the study reruns that program
    timing-only (the cell computed the values), with the same trace, and the values stay right."""
    body = next(b for b in _readme_pipeline_blocks() if "spec_kernels((64, 64))" in b)
    result = cell(ip, "--show none", body)
    assert result.pipeline.trace().spans == ip.user_ns["program"].trace().spans
    assert result.pipeline.run_options.compute_values is False
    x16 = ip.user_ns["x"].astype(np.float16)
    assert np.array_equal(ip.user_ns["Y"].data, (x16 * x16).astype(np.float32))


def test_a_program_compiled_inside_a_function_is_studied(ip):
    """A cell that builds and compiles its pipeline inside a function it calls (README "On chip") leaves no
    workload in its names: the last Program the cell compiled is studied (here the depth-1 run)."""
    body = next(b for b in _readme_pipeline_blocks() if "def copy_in_compute_copy_out" in b)
    result = cell(ip, "--show none", body)
    assert [c.depth for c in result.workload.channels] == [1, 1]
    assert [p.name for p in result.workload.processes] == ["copy_in", "compute", "copy_out"]


def test_a_cell_ending_in_a_compiled_program_is_studied_with_its_options(ip, spec_body):
    """A body whose last expression is `pipeline.compile(...)` (not executed) is studied with that program's
    compile options: here its channel latency."""
    body = spec_body.rstrip() + "\npipeline.compile(channel_latency_cycles=5)\n"
    result = cell(ip, "--show none", body)
    assert result.pipeline.run_options.channel_latency_cycles == 5
    assert result.data_parallel.run_options.channel_latency_cycles == 5
