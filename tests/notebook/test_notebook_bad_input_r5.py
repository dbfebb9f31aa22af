"""Hunt 5a fixes: a failed %%ptort cell or study run leaves the knobs as they were, quoted %%ptort option values lose
their quotes, and Python's compile-time errors in a cell body are short PtortSyntaxErrors at the cell line."""
from __future__ import annotations

import os

import pytest
from IPython.core.error import UsageError

from ptort_lab.errors import CapacityError, KnobError, PtortTypeError, PtortValueError
from ptort_lab.explore import Knobs, Study
from ptort_lab.notebook import ExplorerController
from ptort_lab.notebook.cell import PtortSyntaxError
from ptort_lab.notebook.display import SHOW_PARTS

SMALL = Knobs(tile=(32, 32), tiles=2)


def rendered(excinfo) -> str:
    return "\n".join(excinfo.value._render_traceback_())


# -- a failed cell does not leave its knob bindings behind ---------------------------------------------------------
def test_failed_cell_puts_back_the_knobs_it_bound(ip, spec_body):
    ip.run_cell("%%ptort --tile 32x32 --tiles 2 --show none\n" + spec_body)
    assert (ip.user_ns["DEPTH"], ip.user_ns["TILE"], ip.user_ns["TILES"]) == (2, (32, 32), 2)
    literal_depth = spec_body.replace("depth=DEPTH)\ncompute", "depth=2)\ncompute")
    with pytest.raises(KnobError, match="--depth 6 did not reach the pipeline"):
        ip.run_cell("%%ptort --depth 6 --tile 16x16 --tiles 3 --show none\n" + literal_depth)
    assert (ip.user_ns["DEPTH"], ip.user_ns["TILE"], ip.user_ns["TILES"]) == (2, (32, 32), 2)
    ip.run_cell("%%ptort --show none\n" + spec_body)  # the user dropped --depth 6: the cell runs as before it
    assert ip.user_ns["_ptort"].knobs == Knobs(depth=2, tile=(32, 32), tiles=2, cores=4)


def test_failed_first_cell_leaves_no_knob_names(ip):
    with pytest.raises(ZeroDivisionError):
        ip.run_cell("%%ptort --depth 3\nx = 1 / 0\n")
    assert not {"DEPTH", "TILE", "TILES", "CORES"} & set(ip.user_ns)


# -- a failed study run keeps the last good knobs ------------------------------------------------------------------
def test_refused_controller_update_keeps_the_last_good_knobs(spec_builder):
    controller = ExplorerController(Study(spec_builder, SMALL))
    controller.update()
    with pytest.raises(KnobError, match="cores=1000 is more than machine"):
        controller.update(cores=1000)
    assert controller.knobs == SMALL
    assert controller.update(depth=3).knobs == SMALL.replace(depth=3)  # not the old cores error again


def test_failed_study_run_keeps_the_last_good_knobs(spec_builder):
    study = Study(spec_builder, SMALL)
    with pytest.raises(CapacityError):
        study.run(tile=(4096, 4096))
    assert study.knobs == SMALL
    assert study.run(depth=3).knobs == SMALL.replace(depth=3)
    assert study.knobs == SMALL.replace(depth=3)


# -- quoted option values --------------------------------------------------------------------------------------------
def test_quoted_option_values_lose_their_quotes(ip, spec_body, tmp_path, capsys):
    path = tmp_path / "my run.json"
    ip.run_cell(f'%%ptort --tile 32x32 --tiles 2 --mode pipeline --trace-out "{path}" --show none\n' + spec_body)
    assert os.listdir(tmp_path) == ["my run.json"]
    assert f"Wrote {path} (pipeline)" in capsys.readouterr().out
    ip.run_cell("%%ptort --machine 'ascend_910b4' --show \"none\" --tile 32x32 --tiles 2\n" + spec_body)
    assert "machine ascend_910b4" in ip.user_ns["_ptort"].summary()


# -- compile-time syntax errors --------------------------------------------------------------------------------------
@pytest.mark.parametrize("body, line, code, what", [
    ("x = 1\nreturn x\n", 3, "return x", "'return' outside function"),
    ("yield 1\n", 2, "yield 1", "'yield' outside function"),
    ("break\n", 2, "break", "'break' outside loop"),
    ("nonlocal x\nx = 1\n", 2, "nonlocal x", "nonlocal declaration not allowed at module level"),
    ("x = 1\nawait x\n", 3, "await x", "'await' outside function"),
])
def test_compile_errors_are_short_and_at_the_cell_line(ip, body, line, code, what):
    with pytest.raises(PtortSyntaxError) as excinfo:
        ip.run_cell("%%ptort\n" + body)
    text = rendered(excinfo)
    lines = text.splitlines()
    assert lines[:3] == [f"PtortSyntaxError: {what}", f"  at cell line {line}", f"    {code}"]
    assert "Traceback" not in text and "ptort_lab/" not in text and "<ptort-cell-" not in text
    if "await" in code:
        assert "cannot use top-level await" in excinfo.value.hint
    else:
        assert excinfo.value.hint == "Fix the line above; the cell body is ordinary Python."


# -- --show all,all -------------------------------------------------------------------------------------------------
def test_show_repeated_alone_word_means_it_once(ip, spec_body):
    ip.run_cell("%%ptort --show none,none --tile 32x32 --tiles 2\n" + spec_body)
    assert ip.user_ns["_ptort"].show == ()
    ip.run_cell("%%ptort --show all,ALL --tile 32x32 --tiles 2 --mode pipeline\n" + spec_body)
    assert ip.user_ns["_ptort"].show == SHOW_PARTS


def test_show_all_with_none_gives_no_empty_show_advice(ip):
    with pytest.raises(UsageError) as e:
        ip.run_cell("%%ptort --show all,none\nx = 1\n")
    assert str(e.value) == "--show none (the summary only) stands alone, got --show all,none; use --show none."


@pytest.mark.parametrize("line, first, second", [("--depth 2 --tiles 4 --depth 4", "--depth", "--depth"),
                                                  ("-o a --tiles=4 -o b", "-o", "-o")])
def test_an_option_given_twice_is_refused(ip, line, first, second):
    """argparse keeps the last of two --depth without a word: the cell would run at a depth the user did not mean."""
    with pytest.raises(UsageError) as e:
        ip.run_cell(f"%%ptort {line}\nx = 1\n")
    assert str(e.value) == (f"%%ptort got {first} and {second}: the same option twice (only the last would count); "
                            "give it once.")


# -- PtortResult.ir()[...] -------------------------------------------------------------------------------------------
def test_ir_lookup_of_a_missing_kernel_names_the_kernels(ip, spec_body):
    ip.run_cell("%%ptort --tile 32x32 --tiles 2 --show none\n" + spec_body)
    ir = ip.user_ns["_ptort"].ir()
    assert ir["compute_kernel"] is ir[1] and ir[-1].ir.name == "store_kernel"
    with pytest.raises(PtortValueError) as e:
        ir["nope"]  # noqa: B018
    assert e.value.what == ("ir()['nope']: no kernel 'nope' in this result; kernels: 'load_kernel', "
                            "'compute_kernel', 'store_kernel'.")
    assert "ir()[0]" in e.value.hint and os.path.samefile(e.value.where.filename, __file__)
    assert isinstance(e.value, KeyError) and str(e.value).startswith("ir()['nope']: no kernel")  # still a lookup
    with pytest.raises(PtortValueError) as e:
        ir[7]  # noqa: B018
    assert e.value.what.startswith("ir()[7]: this result has 3 kernel(s), numbered 0..2: 'load_kernel'")
    assert e.value.hint == "Pick one by number or by name, e.g. ir()[0] or ir()['load_kernel']."
    assert os.path.samefile(e.value.where.filename, __file__) and isinstance(e.value, IndexError)
    with pytest.raises(PtortTypeError, match="takes a kernel's name \\(str\\) or number \\(int\\), got float 1.5"):
        ir[1.5]  # noqa: B018


def test_a_sweep_value_the_machine_cannot_take_is_refused_in_sweep_terms(spec_builder):
    """cores=30 on a 24-core machine: the hint says how to write the sweep, not Knobs(...) (another API)."""
    from ptort_lab.notebook import sweep
    with pytest.raises(KnobError) as e:
        sweep(spec_builder, depth=None, cores=[1, 30], knobs=Knobs(tile=(32, 32), tiles=2), progress=False, cache=False)
    assert e.value.what.startswith("cores=30 is more than machine 'ascend_910b' has (24 AI cores)")
    assert e.value.hint.startswith("Use 24 cores or fewer (sweep(build, cores=[24]))")
