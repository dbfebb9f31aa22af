"""Hunt 5a, round 6: a channel depth past 2**53 is refused where it is given, Ctrl-C in a %%ptort cell is one short
message, the summary names only the knobs a cell reads, an executor that returns no chunk result is a SweepError,
and smaller magic-line messages (a value starting with '-', a # comment, numpy's Cython frames)."""
from __future__ import annotations

import os
from concurrent.futures import Executor, Future

import pytest
from IPython.core.error import UsageError
from source_lines import here, located

from ptort_lab.csp import Channel
from ptort_lab.errors import PtortValueError, SweepError
from ptort_lab.explore import Knobs, Study
from ptort_lab.notebook import magic, sweep
from ptort_lab.notebook.cell import _is_user_frame
from ptort_lab.notebook.display import PtortResult
from ptort_lab.sweeps.execute import SweepInterrupted

SMALL = Knobs(tile=(32, 32), tiles=2)
DEPTH_HINT = ("depth is the number of buffer slots: a few is typical (2 double-buffers); a depth as large as the "
              "number of items the channel carries never blocks its producer.")


def rendered(excinfo) -> list[str]:
    """What IPython prints for the exception: its _render_traceback_ lines."""
    return list(excinfo.value._render_traceback_())


def summary_lines(ip) -> list[str]:
    return ip.user_ns["_ptort"].summary().splitlines()


# -- 6: a channel depth past 2**53 ------------------------------------------------------------------------------------
def test_a_channel_deeper_than_2_53_is_refused_where_it_is_made():
    assert Channel(name="c", depth=2**53).depth == 2**53  # the bound itself is a depth
    with pytest.raises(PtortValueError) as e:
        line = here() + 1
        Channel(name="c", depth=2**63)
    assert e.value.what == "Channel 'c' depth must be at most 2**53 = 9,007,199,254,740,992, got 9223372036854775808."
    assert e.value.hint == DEPTH_HINT
    located(e, line)
    with pytest.raises(PtortValueError, match="got an int of 1001 digits"):
        Channel(name="c", depth=10**1000)
    with pytest.raises(PtortValueError, match="got an int of over 4000 digits"):  # str() would refuse it
        Channel(name="c", depth=10**5000)


def test_knobs_deeper_than_2_53_are_refused_where_they_are_made():
    with pytest.raises(PtortValueError) as e:
        line = here() + 1
        Knobs(depth=2**53 + 1)
    assert e.value.what == "knob depth must be at most 2**53 = 9,007,199,254,740,992, got 9007199254740993."
    assert e.value.hint == "depth is the buffer slots of each channel: a few is typical; use e.g. depth=4."
    located(e, line)


def test_a_sweep_deeper_than_2_53_is_refused_in_sweep_terms(spec_builder):
    with pytest.raises(PtortValueError) as e:
        line = here() + 1
        sweep(spec_builder, depth=[2, 2**60], knobs=SMALL, progress=False, cache=False)
    assert e.value.what == ("sweep(depth=...) value 1152921504606846976 is more than 2**53 = 9,007,199,254,740,992, "
                            "the most buffer slots a channel may have.")
    assert e.value.hint == "A few slots is typical: sweep(build, depth=[1, 2, 4, 8])."
    located(e, line)


def test_a_depth_option_past_2_53_is_a_usage_error(ip, spec_body):
    with pytest.raises(UsageError) as e:
        ip.run_cell("%%ptort --depth 99999999999999999999 --tile 32x32 --tiles 2\n" + spec_body)
    assert str(e.value) == ("--depth must be at most 2**53 = 9,007,199,254,740,992 (buffer slots per channel), got "
                            "99999999999999999999; a few is typical, e.g. --depth 4.")


def test_a_depth_in_the_namespace_past_2_53_is_refused_before_the_body(ip, spec_body):
    ip.user_ns["DEPTH"] = 2**60
    with pytest.raises(PtortValueError) as e:
        ip.run_cell("%%ptort --tile 32x32 --tiles 2\n" + spec_body)
    assert e.value.what == ("DEPTH in the namespace is 1152921504606846976; DEPTH must be at most 2**53 = "
                            "9,007,199,254,740,992 (buffer slots per channel).")
    assert e.value.hint == "A few slots is typical: set DEPTH = 4 or pass --depth 4."


def test_a_depth_the_body_sets_past_2_53_is_refused_at_its_channel_line(ip, spec_body):
    with pytest.raises(PtortValueError) as e:
        ip.run_cell("%%ptort --tile 32x32 --tiles 2\nDEPTH = 2**63\n" + spec_body)
    lines = rendered(e)
    assert lines[0] == ("PtortValueError: Channel 'load_to_compute' depth must be at most 2**53 = "
                        "9,007,199,254,740,992, got 9223372036854775808.")
    assert lines[1:3] == ["  at cell line 24",
                          '    load_to_compute = Channel[Tensor](name="load_to_compute", depth=DEPTH)']
    assert lines[-1] == DEPTH_HINT


# -- 7: Ctrl-C in a cell ----------------------------------------------------------------------------------------------
def test_an_interrupt_in_the_body_is_one_short_message_and_stays_an_interrupt(ip):
    ip.run_cell("DEPTH = 2")
    with pytest.raises(KeyboardInterrupt) as e:
        ip.run_cell("%%ptort --depth 5 --tile 16x16\nx = 1\nraise KeyboardInterrupt\n")
    assert type(e.value) is KeyboardInterrupt  # the kernel sees an interrupt: the cell and the queue stop
    assert rendered(e) == ["KeyboardInterrupt: %%ptort interrupted while running the cell body, at cell line 3.",
                           "    raise KeyboardInterrupt",
                           "The cell stored no result: _ptort, DEPTH, TILE, TILES and CORES are as before it."]
    assert ip.user_ns["DEPTH"] == 2 and "TILE" not in ip.user_ns and "_ptort" not in ip.user_ns


def test_an_interrupt_during_the_runs_says_what_was_simulating(ip, spec_body, monkeypatch):
    def interrupted_run(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(magic, "run_study", interrupted_run)
    with pytest.raises(KeyboardInterrupt) as e:
        ip.run_cell("%%ptort --tile 32x32 --tiles 2 --mode pipeline\n" + spec_body)
    assert rendered(e) == ["KeyboardInterrupt: %%ptort interrupted while simulating the pipeline.",
                           "The cell stored no result: _ptort, DEPTH, TILE, TILES and CORES are as before it."]
    assert "_ptort" not in ip.user_ns and "TILE" not in ip.user_ns


def test_an_interrupted_sweep_in_a_cell_keeps_its_own_message(ip):
    ip.user_ns["SweepInterrupted"] = SweepInterrupted
    with pytest.raises(SweepInterrupted) as e:
        ip.run_cell("%%ptort\nraise SweepInterrupted('sweep interrupted after 3 of 8 points; they are saved')\n")
    assert rendered(e) == ["SweepInterrupted: %%ptort interrupted while running the cell body, at cell line 2.",
                           "    raise SweepInterrupted('sweep interrupted after 3 of 8 points; they are saved')",
                           "sweep interrupted after 3 of 8 points; they are saved",
                           "The cell stored no result: _ptort, DEPTH, TILE, TILES and CORES are as before it."]


def test_an_interrupt_while_writing_the_trace_keeps_the_result(ip, spec_body, tmp_path, monkeypatch):
    def interrupted_save(self, path):
        raise KeyboardInterrupt

    monkeypatch.setattr(PtortResult, "save_trace", interrupted_save)
    path = tmp_path / "run.json"
    with pytest.raises(KeyboardInterrupt) as e:
        ip.run_cell(f"%%ptort --tile 32x32 --tiles 2 --show none --trace-out {path}\n" + spec_body)
    assert rendered(e) == [f"KeyboardInterrupt: %%ptort interrupted while writing --trace-out {path}.",
                           "The runs themselves finished: the result is in _ptort."]
    assert isinstance(ip.user_ns["_ptort"], PtortResult)


def test_an_interrupt_keeps_the_full_traceback_when_short_errors_are_off(ip):
    ip.run_line_magic("config", "PtortMagics.short_errors = False")
    try:
        with pytest.raises(KeyboardInterrupt) as e:
            ip.run_cell("%%ptort\nraise KeyboardInterrupt\n")
        assert "_render_traceback_" not in vars(e.value)
    finally:
        ip.run_line_magic("config", "PtortMagics.short_errors = True")


# -- 8: the summary's knobs are the ones the cell used ---------------------------------------------------------------
README_BODY = '''\
load_kernel, compute_kernel, store_kernel = spec_kernels((64, 64))
x = np.random.rand(4, 64, 64).astype(np.float32)
X, Y = Tensor(data=x), Tensor(data=np.zeros_like(x))
T0, T1 = Tensor(shape=x.shape, dtype=DType.F16), Tensor(shape=x.shape, dtype=DType.F16)
l2c, c2s = Channel(name="load_to_compute", depth=2), Channel(name="compute_to_store", depth=2)
loader = process("loader").produces(l2c).body(
    for_each(Dense[4](), lambda t: send(l2c, task(load_kernel, [t], {"src": X[t], "dst": T0[t]}))))
computer = process("computer").consumes(l2c).produces(c2s).body(
    consume(l2c, lambda t: send(c2s, task(compute_kernel, [t], {"input_tile": T0[t], "output_tile": T1[t]}))))
storer = process("storer").consumes(c2s).body(
    consume(c2s, lambda t: task(store_kernel, [t], {"src": T1[t], "dst": Y[t]})))
connect(loader, computer, storer)
'''


def test_a_cell_that_builds_its_own_tiles_shows_only_the_cores_it_used(ip):
    ip.run_cell("from ptort_lab.spec_pipeline import spec_kernels")
    ip.run_cell("%%ptort --show none\n" + README_BODY)
    assert summary_lines(ip)[2] == "knobs: cores=4"
    assert ip.user_ns["_ptort"].comparison.used == ("cores",)
    ip.run_cell("%%ptort --show none --mode pipeline\n" + README_BODY)
    assert summary_lines(ip)[2] == "knobs: none used"


def test_an_option_the_cell_does_not_read_is_noted(ip, spec_body):
    ip.run_cell("%%ptort --tile 32x32 --tiles 2 --mode pipeline --cores 3 --show none\n" + spec_body)
    assert summary_lines(ip)[2:4] == [
        "knobs: depth=2 tile=32x32 tiles=2",
        "  (--cores 3 was not used: the cell does not read CORES and --mode pipeline runs no data-parallel twin)"]
    ip.run_cell("from ptort_lab.spec_pipeline import spec_kernels")
    ip.run_cell("%%ptort --tile 16x16 --show none\n" + README_BODY)
    # CORES = 3 stays bound from the cell before, and the twin runs on it
    assert summary_lines(ip)[2:4] == ["knobs: cores=3", "  (--tile 16x16 was not used: the cell does not read TILE)"]


def test_an_explicit_depth_that_reaches_literal_channels_counts_as_used(ip):
    ip.run_cell("from ptort_lab.spec_pipeline import spec_kernels")
    ip.run_cell("%%ptort --depth 2 --show none\n" + README_BODY)
    assert summary_lines(ip)[2] == "knobs: depth=2 cores=4"


def test_knobs_read_by_a_helper_from_an_earlier_cell_count(ip, spec_body):
    """A function a plain cell defined reads the notebook's DEPTH, TILE, TILES: a cell that calls it uses them."""
    ip.user_ns["SPEC_BODY"] = spec_body
    ip.run_cell("def make():\n    ns = dict(globals())\n    exec(SPEC_BODY, ns)\n    return ns['pipeline']\n"
                "def spec():\n    return make()\n")
    ip.run_cell("%%ptort --tile 32x32 --tiles 2 --show none\nspec()\n")
    assert summary_lines(ip)[2] == "knobs: cores=4"  # exec of a string: nothing names the knobs
    ip.run_cell("def sized():\n    return (DEPTH, TILE, TILES)\n"
                "class Maker:\n    @staticmethod\n    def build():\n        sized()\n        return make()\n")
    ip.run_cell("%%ptort --tile 32x32 --tiles 2 --show none\nMaker.build()\n")
    assert summary_lines(ip)[2] == "knobs: depth=2 tile=32x32 tiles=2 cores=4"


def test_the_explorer_of_a_cell_shows_the_knobs_the_cell_reads(ip):
    ip.run_cell("from ptort_lab.spec_pipeline import spec_kernels")
    explorer = ip.run_cell_magic("ptort", "--interact --show none", README_BODY)
    explorer.sliders["cores"].value = 2
    assert explorer.controller.last.summary().splitlines()[0] == "knobs: cores=2"


def test_a_study_shows_the_knobs_its_builder_takes(spec_builder):
    def by_depth(depth):
        return spec_builder(depth, (32, 32), 2)

    assert Study(by_depth, SMALL).run().summary().splitlines()[0] == "knobs: depth=2 cores=4"
    assert Study(by_depth, SMALL, mode="pipeline").run().summary().splitlines()[0] == "knobs: depth=2"
    assert Study(spec_builder, SMALL).run().summary().splitlines()[0] == "knobs: depth=2 tile=32x32 tiles=2 cores=4"


# -- 10: an executor whose futures hold something else --------------------------------------------------------------
class _ForgetfulExecutor(Executor):
    """A wrapper that forgets to return fn(*args): every future's result is None."""

    def submit(self, fn, /, *args, **kwargs):
        future: Future = Future()
        future.set_result(None)
        return future


def test_an_executor_that_returns_no_chunk_result_is_a_sweep_error(spec_builder):
    with pytest.raises(SweepError) as e:
        line = here() + 1
        sweep(spec_builder, depth=[1, 2], knobs=SMALL, progress=False, cache=False, executor=_ForgetfulExecutor())
    assert e.value.what == ("sweep(executor=...) gave back None for a task of 1 point, not what the function it was "
                            "given returned; 0 of 2 points are done.")
    assert e.value.hint == ("The executor's submit(fn, *args) must return a Future whose result() is fn(*args)'s "
                            "return value (a wrapper must `return fn(*args)`); or leave executor= out.")
    located(e, line)


# -- 13: smaller magic-line messages ---------------------------------------------------------------------------------
def test_cython_frames_are_not_the_users():
    assert not _is_user_frame("_generator.pyx") and not _is_user_frame("numpy/random/_bounded_integers.pxd")
    assert _is_user_frame(__file__)


@pytest.mark.parametrize("line, message", [
    ("--tile -4x4", "argument --tile: expected one argument: -4x4 starts with '-', so it reads as an option; a "
                    "--tile value is never negative: e.g. --tile 4x4."),
    ("--depth -x", "argument --depth: expected one argument: -x starts with '-', so it reads as an option; a --depth "
                   "value is never negative: e.g. --depth 2."),
    ("--trace-out -run.json", "argument --trace-out: expected one argument: -run.json starts with '-', so it reads "
                              "as an option; write --trace-out=-run.json to pass it."),
])
def test_a_value_starting_with_a_dash_is_explained(ip, line, message):
    with pytest.raises(UsageError) as e:
        ip.run_cell(f"%%ptort {line}\nx = 1\n")
    assert str(e.value) == message


def test_a_comment_ends_the_magic_line(ip, spec_body, tmp_path, capsys, monkeypatch):
    ip.run_cell("%%ptort --depth 3 --tile 32x32 --tiles 2 --show none  # deeper buffers\n" + spec_body)
    assert ip.user_ns["_ptort"].knobs.depth == 3
    path = tmp_path / "run#1.json"  # a # inside a word is kept
    ip.run_cell(f"%%ptort --tile 32x32 --tiles 2 --mode pipeline --show none --trace-out {path} #out\n" + spec_body)
    assert os.listdir(tmp_path) == ["run#1.json"]
    monkeypatch.chdir(tmp_path)
    ip.run_cell("%%ptort --tile 32x32 --tiles 2 --mode pipeline --show none --trace-out '#2.json'\n" + spec_body)
    assert sorted(os.listdir(tmp_path)) == ["#2.json", "run#1.json"]  # a quoted # is a value
    capsys.readouterr()
    assert "A # that starts a word ends the options" in magic.PtortMagics.ptort.__doc__
