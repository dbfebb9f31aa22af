"""%%ptort, sweep and the explorer: values computed once (no drift when re-run), a cell's Program studied with its
own compile options, knobs that change nothing or cannot run refused up front, --trace-out failures named."""
from __future__ import annotations

import os
import time
from textwrap import dedent

import numpy as np
import pytest
from IPython.core.error import UsageError

from ptort_lab.errors import PtortValueError
from ptort_lab.explore import Knobs
from ptort_lab.notebook import Explorer, sweep
from ptort_lab.notebook.display import PtortResult
from ptort_lab.spec_pipeline import spec_pipeline

# Y += X in place (over zeros, so one run leaves Y == X), as a two-stage pipeline; X and Y live in the namespace.
IN_PLACE = dedent("""\
    @kernel
    def double(x: In[Tile[8, 8, F32]], t: Out[Tile[8, 8, F32]]):
        v = tl.load(x)
        tl.store(t, tl.add(v, v))

    @kernel
    def acc(x: In[Tile[8, 8, F32]], y: InOut[Tile[8, 8, F32]]):
        tl.store(y, tl.add(tl.load(y), tl.load(x)))

    T = Tensor(shape=(TILES, 8, 8), dtype=F32, name="T")
    ch = Channel(name="c", depth=DEPTH)
    loader = process("loader").produces(ch).body(
        for_each(Dense[TILES](), lambda t: send(ch, task(double, [t], {"x": X[t], "t": T[t]}))))
    adder = process("adder").consumes(ch).body(consume(ch, lambda t: task(acc, [t], {"x": X[t], "y": Y[t]})))
    pipe = connect(loader, adder)
""")
TENSORS = dedent("""\
    from ptort_lab import InOut, connect, consume, for_each, process, send, task
    x = np.arange(4 * 64, dtype=np.float32).reshape(4, 8, 8)
    X, Y = Tensor(data=x, name="X"), Tensor(data=np.zeros_like(x), name="Y")
""")


@pytest.fixture
def shell(ip):
    ip.run_cell(TENSORS)
    return ip


def run(ip, line: str, body: str):
    ip.run_cell(f"%%ptort {line}\n{body}")
    return ip.user_ns["_ptort"]


def y_times_x(ip) -> float:
    """How many X the cell added to Y (1.0 after exactly one run)."""
    ns = ip.user_ns
    return float(ns["Y"].data.sum() / ns["x"].sum())


@pytest.mark.parametrize("mode", ["both", "pipeline", "data-parallel"])
def test_a_cell_with_an_in_place_kernel_adds_x_once(shell, mode):
    result = run(shell, f"--tiles 4 --cores 2 --mode {mode} --show none", IN_PLACE + "pipe\n")
    np.testing.assert_array_equal(shell.user_ns["Y"].data, shell.user_ns["x"])
    assert len(result.runs) == (2 if mode == "both" else 1)


def test_a_cell_that_executes_its_program_is_not_computed_again(shell):
    """The cell runs pipe.compile().execute() itself: the study's runs are all timing-only."""
    result = run(shell, "--tiles 4 --cores 2 --show none", IN_PLACE + "pipe.compile().execute()\n")
    assert y_times_x(shell) == 1.0
    assert not result.pipeline.run_options.compute_values and not result.data_parallel.run_options.compute_values
    result = run(shell, "--tiles 4 --cores 2 --show none", IN_PLACE + "prog = pipe.compile().execute()\nprint(1)\n")
    assert y_times_x(shell) == 2.0  # a second cell that runs it again adds X again, as plain Python would


def test_a_cell_ending_in_compile_with_a_machine_runs_on_that_machine(ip, spec_body):
    result = run(ip, "--tiles 4 --tile 64x64 --show none", spec_body + 'pipeline.compile(machine="ascend_910b4")\n')
    assert [p.machine.name for _, p in result.runs] == ["ascend_910b4", "ascend_910b4"]
    assert "ascend_910b4" in result.summary()
    own = ip.user_ns["pipeline"].compile(machine="ascend_910b4", compute_values=False).execute().stats()
    assert result.pipeline.stats().total_cycles == own.total_cycles
    np.testing.assert_array_equal(ip.user_ns["Y"].data, (ip.user_ns["x"].astype(np.float16) ** 2).astype(np.float32))


def test_a_program_compiled_and_executed_in_the_cell_keeps_its_options(ip, spec_body):
    """The cell returns the pipeline but compiled it (placement="shared", latency 0) and ran it: that Program's
    options are studied, and its values are not computed twice."""
    body = spec_body + 'prog = pipeline.compile(placement="shared", channel_latency_cycles=0).execute()\npipeline\n'
    result = run(ip, "--tiles 4 --tile 64x64 --show none --mode pipeline", body)
    opts = result.pipeline.run_options
    assert (opts.placement, opts.channel_latency_cycles, opts.compute_values) == ("shared", 0, False)
    assert result.pipeline.trace().to_chrome_json() == ip.user_ns["prog"].trace().to_chrome_json()


def test_machine_option_contradicting_the_cells_compile_is_refused(ip, spec_body):
    body = spec_body + 'pipeline.compile(machine="ascend_910b1")\n'
    with pytest.raises(PtortValueError) as e:
        run(ip, "--machine ascend_910b4 --tiles 2 --tile 64x64", body)
    lines = str(e.value).splitlines()
    assert lines[0] == ("--machine ascend_910b4 contradicts the cell's compile(machine='ascend_910b1'): the cell's "
                        "program would run one way and %%ptort another.")
    compile_line = 1 + len(spec_body.splitlines()) + 1
    assert lines[1] == f"  at cell line {compile_line}"
    assert lines[2].strip() == 'pipeline.compile(machine="ascend_910b1")'
    assert lines[3].startswith("Drop --machine to study the program as the cell compiled it")


def test_the_same_machine_named_on_both_sides_is_fine(ip, spec_body):
    result = run(ip, "--machine ascend_910b4 --tiles 2 --tile 64x64 --show none",
                 spec_body + 'pipeline.compile(machine="ascend_910b4")\n')
    assert result.pipeline.machine.name == "ascend_910b4"


def test_latency_and_cost_model_conflicts_are_refused(ip, spec_body):
    with pytest.raises(PtortValueError, match=r"--latency 5 contradicts the cell's "
                                              r"compile\(channel_latency_cycles=100\)"):
        run(ip, "--latency 5 --tiles 2 --tile 64x64", spec_body + "pipeline.compile(channel_latency_cycles=100)\n")
    with pytest.raises(PtortValueError, match=r"--machine ascend_910b4 contradicts the cell's compile\(cost_model="):
        run(ip, "--machine ascend_910b4 --tiles 2 --tile 64x64",
            spec_body + "pipeline.compile(cost_model=PinnedCosts(default_cycles=10))\n")
    # --latency applies when the cell's compile did not choose one
    result = run(ip, "--latency 5 --tiles 2 --tile 64x64 --show none",
                 spec_body + 'pipeline.compile(machine="ascend_910b4")\n')
    assert result.pipeline.run_options.channel_latency_cycles == 5


def test_cores_are_checked_against_the_cells_machine(ip, spec_body):
    """The 910B4 has 20 cores: CORES = 22 fits the default 910B2 but not the cell's machine."""
    ip.user_ns["CORES"] = 22
    with pytest.raises(PtortValueError, match=r"^CORES = 22 is more than machine 'ascend_910b4' has \(20 AI cores\) "
                                              r"for the data-parallel run\.\n"):
        run(ip, "--tiles 2 --tile 64x64", spec_body + 'pipeline.compile(machine="ascend_910b4")\n')


def test_a_huge_tile_count_is_refused_before_the_body_runs(ip):
    started = time.perf_counter()
    with pytest.raises(UsageError, match=r"--tiles 100000000 is more than the 262,144 tiles a notebook cell may "
                                         r"study \(at ~8 KB a tile, its runs and display fill the 2 GiB a cell may "
                                         r"hold\); use --tiles 262144 or fewer"):
        run(ip, "--tiles 100000000", "built = True\n")
    ip.user_ns["TILES"] = 30_000_000
    with pytest.raises(PtortValueError, match=r"TILES is 30,000,000: with at least one task per tile that is more "
                                              r"than the 20,000,000 tasks a pipeline run may have"):
        run(ip, "--mode pipeline", "built = True\n")
    assert "built" not in ip.user_ns and time.perf_counter() - started < 2.0


@pytest.mark.parametrize("path, reason", [("/proc/ptort-no/x.json", "does not exist"),
                                          ("/proc/x.json", "No such file or directory")])
def test_an_unwritable_trace_out_names_the_reason(ip, spec_body, path, reason):
    with pytest.raises(UsageError) as e:
        run(ip, f"--trace-out {path}", spec_body)
    assert "--trace-out" in str(e.value) and reason in str(e.value) and "IPython" not in str(e.value)


def test_a_trace_that_cannot_be_saved_is_reported_at_the_magic_line(ip, spec_body, tmp_path, monkeypatch):
    """The path was writable when the cell started, but saving fails (the disk filled, the folder went away)."""
    def fail(self, path):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(PtortResult, "save_trace", fail)
    with pytest.raises(PtortValueError) as e:
        run(ip, f"--tiles 2 --tile 64x64 --trace-out {tmp_path}/t.json", spec_body)
    lines = str(e.value).splitlines()
    assert lines[0] == (f"--trace-out '{tmp_path}/t.json': the trace could not be written: No space left on device "
                        "(errno 28).")
    assert lines[1] == "  at cell line 1" and lines[2].strip().startswith("%%ptort --tiles 2")
    assert not os.path.exists(tmp_path / "t.json")


# -- sweep and the explorer ----------------------------------------------------------------------------------------
def test_sweeping_a_knob_the_builder_ignores_is_refused(spec_builder):
    def build(depth, tile):
        return spec_builder(depth, tile, 4)

    with pytest.raises(PtortValueError) as e:
        sweep(build, depth=[1, 2], tiles=[4, 8], progress=False)
    assert e.value.what == ("sweep(tiles=...) varies knob 'tiles', but the builder build(depth, tile) does not take it "
                            "(its parameters are (depth, tile)), so every row would be the same.")
    assert e.value.hint.startswith("Give the builder a 'tiles' parameter and build with it")
    assert len(sweep(build, depth=[1, 2], cores=[1, 2], tile=64, progress=False).rows) == 4


def test_sweeping_cores_that_the_workloads_own_dispatch_decides_is_refused():
    from ptort_lab import Dense, DispatchPolicy, DType, In, Out, Tensor, Tile, for_each, kernel, task, tl

    @kernel(cycles=10)
    def k(x: In[Tile[4, 4, DType.F32]], y: Out[Tile[4, 4, DType.F32]]):
        tl.store(y, tl.load(x))

    def build(tiles):
        X, Y = Tensor(shape=(tiles, 4, 4), dtype=DType.F32), Tensor(shape=(tiles, 4, 4), dtype=DType.F32)
        return for_each(Dense[tiles](), lambda t: task(k, [t], {"x": X[t], "y": Y[t]})) \
            .dispatch(DispatchPolicy.round_robin(2))

    with pytest.raises(PtortValueError, match=r"sweep\(cores=...\) varies the data-parallel cores, but the "
                                              r"workload's own dispatch .* runs on 2 cores; cores=1 from the knobs "
                                              r"was not applied, so every row would be the same"):
        sweep(build, cores=[1, 3], tiles=4, progress=False)


def test_sweeping_cores_in_pipeline_mode_is_refused(spec_builder):
    with pytest.raises(PtortValueError, match="the study's mode is 'pipeline', which runs no twin"):
        sweep(spec_builder, cores=[1, 2], mode="pipeline", progress=False)


def test_a_sweep_past_the_task_limit_is_refused_before_any_run(spec_builder):
    calls = []

    def build(tiles):
        calls.append(tiles)
        return spec_builder(2, (32, 32), 2)

    with pytest.raises(PtortValueError, match=r"the largest sweep\(tiles=...\) value is 3,000,000"):
        sweep(build, tiles=[2, 4, 3_000_000], progress=False)
    assert calls == []


def test_the_explorer_disables_sliders_the_builder_ignores(spec_builder):
    explorer = Explorer(lambda depth: spec_builder(depth, (32, 32), 2), Knobs(tiles=2))
    assert {n: s.disabled for n, s in explorer.sliders.items()} == {
        "depth": False, "tile": True, "tiles": True, "cores": False}
    explorer.sliders["tiles"].value = 9  # set from code anyway: the panel says why nothing ran
    assert "varies knob 'tiles'" in explorer.message
    assert "(lambda ..., tiles: ...)" in explorer.message


def test_moving_a_slider_does_not_drift_an_in_place_cell(shell):
    """--interact: every slider move re-runs the body, which executes its program with values; Y stays X."""
    explorer = shell.run_cell("%%ptort --tiles 4 --cores 2 --show none --interact\n" + IN_PLACE
                              + "pipe.compile().execute()\npipe\n").result
    assert isinstance(explorer, Explorer)
    assert y_times_x(shell) == 1.0
    for depth in (1, 3, 4):
        explorer.sliders["depth"].value = depth
        assert explorer.message == "" and y_times_x(shell) == 1.0
    assert explorer.controller.last.pipeline.workload.channels[0].depth == 4


def test_moving_a_slider_keeps_the_values_of_the_cells_own_tensors(ip, spec_body):
    """The body makes new tensors on every run: the slider runs (in a copy of the namespace) leave the tensors of
    the cell's own run, which the user can still look at, as that run computed them."""
    explorer = ip.run_cell("%%ptort --tiles 2 --tile 32x32 --show none --interact\n" + spec_body).result
    ns = ip.user_ns
    expected = (ns["x"].astype(np.float16) ** 2).astype(np.float32)
    explorer.sliders["depth"].value = 3
    assert explorer.message == ""
    np.testing.assert_array_equal(ns["Y"].data, expected)


# -- explore's depth and cores rules reach sweep() and the explorer -------------------------------------------------
def stuck_builder(depth, tiles=2):
    """The spec pipeline whose second channel stays at depth 2 whatever depth says (a builder bug)."""
    pipe = spec_pipeline(depth=depth, tiles=tiles, tile=(32, 32), seed=None).pipeline
    pipe.channels[1].depth = 2
    return pipe


DEPTH_MISSED = "did not reach the pipeline: channel 'compute_to_store' has depth 2."


def test_sweep_refuses_a_depth_that_does_not_reach_the_pipeline():
    with pytest.raises(PtortValueError) as e:
        sweep(stuck_builder, depth=[2, 4], progress=False)
    assert e.value.what == f"depth=4 {DEPTH_MISSED}"
    assert e.value.hint.startswith("Build every channel with depth=depth")


def test_sweep_refuses_cores_past_the_machine(spec_builder):
    with pytest.raises(PtortValueError) as e:
        sweep(lambda tiles: spec_builder(2, (32, 32), tiles), tiles=2, cores=[2, 25], progress=False)
    assert e.value.what == "cores=25 is more than machine 'ascend_910b' has (24 AI cores) for the data-parallel run."
    with pytest.raises(PtortValueError, match=r"^cores=21 is more than machine 'ascend_910b4' has \(20 AI cores\)"):
        sweep(lambda tiles: spec_builder(2, (32, 32), tiles), tiles=2, cores=[21], machine="ascend_910b4",
              progress=False)


def test_the_explorer_shows_the_depth_and_cores_rules():
    """The panel shows explore's refusals as it shows any error, keeping the last good run."""
    explorer = Explorer(stuck_builder, Knobs(tiles=2))
    assert explorer.message == ""  # depth 2: every channel has it
    explorer.sliders["depth"].value = 3
    assert "KnobError: depth=3 did not reach the pipeline: channel 'compute_to_store' has depth 2." \
        in explorer.message and explorer.controller.last.knobs.depth == 2
    too_many = Explorer(stuck_builder, Knobs(tiles=2, cores=25))
    assert "cores=25 is more than machine 'ascend_910b' has (24 AI cores)" in too_many.message


def test_interact_names_the_cell_line_of_a_channel_the_depth_misses(ip, spec_body):
    """--interact on a cell whose second channel has a literal depth: moving DEPTH says which cell line to fix."""
    body = spec_body.replace('name="compute_to_store", depth=DEPTH', 'name="compute_to_store", depth=2')
    explorer = ip.run_cell("%%ptort --tiles 2 --tile 32x32 --show none --interact\n" + body).result
    assert explorer.message == ""
    explorer.sliders["depth"].value = 3
    text = explorer.message
    assert f"KnobError: DEPTH = 3 {DEPTH_MISSED}" in text
    assert "at cell line 24" in text and "Build every channel with depth=DEPTH" in text
