"""Bug hunt 32b, the %%ptort line: -o refuses the names IPython's machinery needs (get_ipython, In, Out, _, exit,
the history names ...), which would break every later cell; an option given twice is refused also when one spelling
is an abbreviation (abbreviations are not options: --dep is unknown) or a short option with its value attached
(-ob)."""
from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from ptort_lab.notebook.magic import PtortMagics, parse_words


def line_error(line: str) -> str:
    """The UsageError of a %%ptort line (raised before the body runs: no shell needed)."""
    with pytest.raises(UsageError) as excinfo:
        PtortMagics(shell=None).ptort(line, "x = 1\n")
    return str(excinfo.value)


@pytest.mark.parametrize("name, what", [
    ("get_ipython", "get_ipython (every magic calls it)"),
    ("In", "the input history in In"),
    ("Out", "the output history in Out"),
    ("_", "the last outputs in _, __ and ___"),
    ("__", "the last outputs in _, __ and ___"),
    ("___", "the last outputs in _, __ and ___"),
    ("exit", "exit (it ends the kernel)"),
    ("quit", "quit (it ends the kernel)"),
    ("_i", "the input history in _i, _ii, _iii, _ih and _i<N>"),
    ("_ii", "the input history in _i, _ii, _iii, _ih and _i<N>"),
    ("_i7", "the input history in _i, _ii, _iii, _ih and _i<N>"),
    ("_ih", "the input history in _i, _ii, _iii, _ih and _i<N>"),
    ("_iresult", "the input history in _i, _ii, _iii, _ih and _i<N>"),
    ("_oh", "the output history in _oh and _<N>"),
    ("_o", "the output history in _oh and _<N>"),
    ("_12", "the output history in _oh and _<N>"),
    ("_dh", "the folder history in _dh"),
    ("_dhx", "the folder history in _dh"),
])
def test_output_name_ipython_needs_is_refused(name: str, what: str) -> None:
    assert line_error(f"-o {name} --tiles 2") == (
        f"-o {name}: IPython keeps {what}, so storing the result there would break the notebook; pick another "
        "name, e.g. -o result.")


@pytest.mark.parametrize("name", ["__builtins__", "__name__", "__doc__"])
def test_output_name_python_keeps_is_refused(name: str) -> None:
    assert line_error(f"-o {name}") == (
        f"-o {name}: names that begin and end with __ are Python's own (the notebook's namespace needs some, such "
        "as __builtins__), so storing the result there could break the notebook; pick another name, e.g. -o result.")


@pytest.mark.parametrize("name", ["result", "_ptort2", "out", "ins", "_x", "exit_code", "r_", "_result_"])
def test_ordinary_output_names_are_kept(name: str) -> None:
    assert parse_words(PtortMagics.ptort, ["-o", name]).output == name


@pytest.mark.parametrize("line, first, second", [
    ("-o a -ob", "-o", "-o"),
    ("-ob -o a", "-o", "-o"),
    ("-oa -ob", "-o", "-o"),
    ("-o=a -o b", "-o", "-o"),
])
def test_attached_short_option_given_twice_is_refused(line: str, first: str, second: str) -> None:
    assert line_error(line) == (f"%%ptort got {first} and {second}: the same option twice (only the last would "
                                "count); give it once.")


@pytest.mark.parametrize("words, output", [(["-ob"], "b"), (["-o=b"], "b"), (["-o", "b"], "b")])
def test_attached_short_option_once_is_kept(words: list[str], output: str) -> None:
    assert parse_words(PtortMagics.ptort, words).output == output


@pytest.mark.parametrize("line, message", [
    ("--dep 4 --depth 2", "unrecognized arguments: --dep 4. Did you mean '--depth'?"),
    ("--mode pipeline --mo data-parallel", "unrecognized arguments: --mo data-parallel. Did you mean '--mode'?"),
    ("--til 2", "unrecognized arguments: --til 2. Did you mean '--tile'?"),
    ("--inter", "unrecognized arguments: --inter. Did you mean '--interact'?"),
    ("--trace out.json", "unrecognized arguments: --trace out.json. Did you mean '--trace-out'?"),
])
def test_abbreviations_are_not_options(line: str, message: str) -> None:
    """No abbreviation is documented (argparse's prefix matching would take --dep for --depth, and let it be given
    twice without a word): each is an unknown option, with the full name suggested."""
    assert line_error(line) == message
