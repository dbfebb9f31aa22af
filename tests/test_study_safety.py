"""Studies compute values once and leave tensors as one run does, study a Program with its own compile options,
refuse knobs that change nothing or are too large to run, before building anything."""
from __future__ import annotations

import time

import numpy as np
import pytest

from ptort_lab import (
    Channel,
    Dense,
    DispatchPolicy,
    DType,
    In,
    InOut,
    NpuCostModel,
    Out,
    PinnedCosts,
    PtortValueError,
    Tensor,
    Tile,
    connect,
    consume,
    for_each,
    kernel,
    process,
    send,
    task,
    tl,
)
from ptort_lab.dsl import steps
from ptort_lab.explore import Knobs, Study, check_knob_limits, run_study
from ptort_lab.program import Program
from ptort_lab.spec_pipeline import spec_pipeline

F32 = DType.F32
N = 6


@kernel(cycles=100)
def accumulate(x: In[Tile[4, 4, F32]], y: InOut[Tile[4, 4, F32]]):
    tl.store(y, tl.add(tl.load(y), tl.load(x)))


@kernel(cycles=50)
def double(x: In[Tile[4, 4, F32]], y: Out[Tile[4, 4, F32]]):
    v = tl.load(x)
    tl.store(y, tl.add(v, v))


def tensors(fill: float = 0.0):
    x = np.arange(N * 16, dtype=np.float32).reshape(N, 4, 4) + 1
    return x, Tensor(data=x, name="X"), Tensor(data=np.full_like(x, fill), name="Y")


def in_place_pipeline(X: Tensor, Y: Tensor, depth: int = 2):
    """loader doubles X into T; adder does Y += X in place: one run leaves Y = Y0 + X."""
    T = Tensor(shape=(N, 4, 4), dtype=F32, name="T")
    ch = Channel(name="c", depth=depth)
    loader = process("loader").produces(ch).body(
        for_each(Dense[N](), lambda t: send(ch, task(double, [t], {"x": X[t], "y": T[t]}))))
    adder = process("adder").consumes(ch).body(consume(ch, lambda t: task(accumulate, [t], {"x": X[t], "y": Y[t]})))
    return connect(loader, adder)


# -- one study, one set of values ----------------------------------------------------------------------------------
@pytest.mark.parametrize("mode", ["both", "pipeline", "data-parallel"])
def test_a_study_of_an_in_place_pipeline_adds_x_once(mode):
    x, X, Y = tensors()
    comparison = run_study(in_place_pipeline(X, Y), Knobs(cores=2), mode)
    np.testing.assert_array_equal(Y.data, x)
    assert [label for label, _ in comparison.runs] == {"both": ["pipeline", "data-parallel"],
                                                      "pipeline": ["pipeline"],
                                                      "data-parallel": ["data-parallel"]}[mode]


def test_the_twin_runs_timing_only_when_the_pipeline_computed_the_values():
    """The twin's program is timing-only (compute_values=False) and its times are those of a values run."""
    x, X, Y = tensors()
    both = run_study(in_place_pipeline(X, Y), Knobs(cores=2))
    assert both.pipeline.run_options.compute_values and not both.data_parallel.run_options.compute_values
    x2, X2, Y2 = tensors()
    alone = run_study(in_place_pipeline(X2, Y2), Knobs(cores=2), "data-parallel")
    assert alone.data_parallel.run_options.compute_values
    assert both.data_parallel.trace().to_chrome_json() == alone.data_parallel.trace().to_chrome_json()
    np.testing.assert_array_equal(Y2.data, x2)


def test_a_data_parallel_workload_with_its_own_dispatch_adds_x_once():
    x, X, Y = tensors(1.0)
    w = for_each(Dense[N](), lambda t: task(accumulate, [t], {"x": X[t], "y": Y[t]}))
    run_study(w.dispatch(DispatchPolicy.round_robin(2)), Knobs(cores=2))
    np.testing.assert_array_equal(Y.data, 1 + x)


def test_a_program_that_already_ran_is_not_computed_again():
    x, X, Y = tensors()
    program = in_place_pipeline(X, Y).compile().execute()
    comparison = run_study(program, Knobs(cores=3))
    np.testing.assert_array_equal(Y.data, x)
    assert not comparison.pipeline.run_options.compute_values
    assert comparison.pipeline.trace().to_chrome_json() == program.trace().to_chrome_json()


# -- a Program's own options ---------------------------------------------------------------------------------------
def test_a_program_is_studied_on_its_own_machine():
    """pipe.compile(machine="ascend_910b4"): both runs on the 910B4 (its 1.5 GHz clock, not the 910B2's 1.8)."""
    sp = spec_pipeline(tiles=4, tile=(64, 64), seed=None)
    program = sp.pipeline.compile(machine="ascend_910b4", compute_values=False)
    comparison = run_study(program, Knobs(cores=2))
    assert comparison.pipeline.machine.name == comparison.data_parallel.machine.name == "ascend_910b4"
    own = sp.pipeline.compile(machine="ascend_910b4", compute_values=False).execute().stats()
    default = sp.pipeline.compile(compute_values=False).execute().stats()
    got = comparison.pipeline.stats()
    assert (got.total_cycles, got.time_us) == (own.total_cycles, own.time_us)
    assert got.time_us == pytest.approx(default.time_us * 1.8 / 1.5)


def test_a_program_keeps_its_latency_placement_and_cost_model():
    sp = spec_pipeline(tiles=4, tile=(64, 64), seed=None)
    model = NpuCostModel("ascend_910b1")
    program = sp.pipeline.compile(cost_model=model, channel_latency_cycles=7, placement="shared",
                                  compute_values=False)
    comparison = run_study(program, Knobs(cores=2), "pipeline")
    run = comparison.pipeline
    assert run.cost_model is model and run.run_options.channel_latency_cycles == 7
    assert run.run_options.placement == "shared" and {s.core for s in run.trace().spans} == {0}


def test_options_that_contradict_the_programs_are_refused():
    sp = spec_pipeline(tiles=2, tile=(64, 64), seed=None)
    program = sp.pipeline.compile(machine="ascend_910b4")  # the compile line
    with pytest.raises(PtortValueError) as e:
        run_study(program, Knobs(), machine="ascend_910b1")
    assert e.value.what.startswith("run_study(machine='ascend_910b1') contradicts the program's own "
                                   "compile(machine='ascend_910b4') at test_study_safety.py:")
    assert "Leave machine out of run_study(...)" in e.value.hint
    with pytest.raises(PtortValueError, match=r"run_study\(cost_model=...\) contradicts the program's own "
                                              r"compile\(machine='ascend_910b4'\)"):
        run_study(program, Knobs(), cost_model=PinnedCosts())
    # the same machine, named differently, is no contradiction
    from ptort_lab.sim.machine import ascend_910b4
    assert run_study(program, Knobs(), "pipeline", machine=ascend_910b4, compute_values=False).pipeline \
        .machine.name == "ascend_910b4"


# -- Study: every run starts from the same data --------------------------------------------------------------------
def test_rerunning_a_study_of_an_in_place_kernel_does_not_drift():
    x, X, Y = tensors(1.0)
    study = Study(lambda depth: in_place_pipeline(X, Y, depth), Knobs(cores=2))
    for depth in (1, 2, 3, 2):
        study.run(depth=depth)
        np.testing.assert_array_equal(Y.data, 1 + x)


def test_a_builder_that_executes_its_own_program_does_not_drift_either():
    """A builder (like a %%ptort cell) that runs its program with values each time: the study undoes the builder's
    own runs too before the next one."""
    x, X, Y = tensors()

    def build(depth):
        pipe = in_place_pipeline(X, Y, depth)
        pipe.compile().execute()
        return pipe

    study = Study(build, Knobs(cores=2))
    for depth in (2, 3, 4):
        study.run(depth=depth)
        np.testing.assert_array_equal(Y.data, x)


def test_a_failing_study_run_leaves_the_last_good_results():
    """Run 1 succeeds (Y = X); run 2's builder writes Y then fails: Y is as run 1 left it, and run 3 works."""
    x, X, Y = tensors()

    def build(depth):
        pipe = in_place_pipeline(X, Y, depth)
        if depth == 5:
            pipe.compile().execute()
            raise RuntimeError("builder broke")
        return pipe

    study = Study(build, Knobs(cores=2))
    study.run(depth=1)
    with pytest.raises(Exception, match="builder broke"):
        study.run(depth=5)
    np.testing.assert_array_equal(Y.data, x)
    study.run(depth=2)
    np.testing.assert_array_equal(Y.data, x)


def test_a_study_with_fresh_tensors_per_build_computes_each_builds_values():
    """spec_pipeline makes new tensors on every build: each run's Y is its own X squared."""
    built = []

    def build(tiles):
        sp = spec_pipeline(tiles=tiles, tile=(32, 32))
        built.append(sp)
        return sp.pipeline

    study = Study(build, Knobs(cores=2))
    for tiles in (2, 3):
        study.run(tiles=tiles)
        np.testing.assert_array_equal(built[-1].Y.data, built[-1].expected())
    np.testing.assert_array_equal(built[0].Y.data, built[0].expected())  # a later run leaves earlier tensors alone


# -- knobs that change nothing --------------------------------------------------------------------------------------
def test_changing_a_knob_the_builder_does_not_take_is_refused():
    def build(depth):
        return spec_pipeline(depth=depth, tiles=2, tile=(32, 32), seed=None).pipeline

    study = Study(build, compute_values=False)
    with pytest.raises(PtortValueError) as e:
        study.run(tiles=16)
    assert e.value.what == ("Study.run(tiles=16) varies knob 'tiles', but the builder build(depth) does not take it "
                            "(its parameters are (depth)), so every run would be the same.")
    assert e.value.hint == ("Give the builder a 'tiles' parameter and build with it (def build(..., tiles): ...), "
                            "or leave tiles alone.")
    assert study.knobs == Knobs() and study.last is None
    study.run(tiles=Knobs().tiles, depth=3)  # an unchanged value is fine
    assert study.takes("cores") and not study.takes("tile")


def test_cores_change_nothing_in_a_pipeline_only_study():
    study = Study(lambda depth: spec_pipeline(depth=depth, tiles=2, tile=(32, 32), seed=None).pipeline,
                  mode="pipeline", compute_values=False)
    with pytest.raises(PtortValueError, match=r"Study.run\(cores=2\) varies knob 'cores', which sets the cores of "
                                              r"the data-parallel twin, but the study's mode is 'pipeline'"):
        study.run(cores=2)


def test_a_builder_taking_keywords_takes_every_knob():
    study = Study(lambda **knobs: spec_pipeline(depth=knobs["depth"], tiles=2, tile=(32, 32), seed=None).pipeline,
                  compute_values=False)
    assert all(study.takes(k) for k in ("depth", "tile", "tiles", "cores"))


# -- sizes refused before building -----------------------------------------------------------------------------------
def test_a_tile_count_past_the_task_limits_is_refused_before_building():
    calls = []

    def build(tiles):
        calls.append(tiles)
        return spec_pipeline(tiles=2, tile=(32, 32), seed=None).pipeline

    study = Study(build, compute_values=False)
    started = time.perf_counter()
    with pytest.raises(PtortValueError) as e:
        study.run(tiles=100_000_000)
    assert time.perf_counter() - started < 1.0 and calls == []
    assert e.value.what.startswith("knob tiles is 100,000,000: with at least one task per tile that is more than "
                                   "the 2,000,000 tasks the data-parallel run may list")
    assert e.value.hint.startswith("Use at most 2,000,000 tiles")


def test_the_limit_follows_the_mode():
    check_knob_limits(Knobs(tiles=steps.MAX_TASKS), "both")
    with pytest.raises(PtortValueError, match="2,000,000 tasks the data-parallel run may list"):
        check_knob_limits(Knobs(tiles=steps.MAX_TASKS + 1), "data-parallel")
    check_knob_limits(Knobs(tiles=steps.MAX_TASKS + 1), "pipeline")
    with pytest.raises(PtortValueError, match="20,000,000 tasks a pipeline run may have"):
        check_knob_limits(Knobs(tiles=steps.MAX_PIPELINE_TASKS + 1), "pipeline", "TILES")


def test_program_options_are_recorded_as_given():
    program = spec_pipeline(tiles=2, tile=(32, 32), seed=None).pipeline.compile(machine="ascend_910b4",
                                                                                 compute_values=False)
    assert isinstance(program, Program) and program.options == {"machine": "ascend_910b4", "compute_values": False}
    assert program.loc is not None and program.loc.filename == __file__



# -- the cores and depth rules (explore's; %%ptort, the explorer and sweep() apply the same) ------------------------
CORES_HINT = ("Use 24 cores or fewer (Knobs(cores=24)); mode 'pipeline' runs no data-parallel twin, so it does not "
              "use cores.")


@pytest.mark.parametrize("mode", ["both", "data-parallel"])
def test_cores_past_the_machine_are_refused_before_anything_runs(mode):
    """The 910B2 has 24 AI cores: a twin on 25 is refused, and the pipeline run of mode 'both' did not start."""
    x, X, Y = tensors()
    with pytest.raises(PtortValueError) as e:
        run_study(in_place_pipeline(X, Y), Knobs(cores=25), mode)
    assert e.value.what == "cores=25 is more than machine 'ascend_910b' has (24 AI cores) for the data-parallel run."
    assert e.value.hint == CORES_HINT
    assert e.value.where is not None and e.value.where.filename == __file__
    np.testing.assert_array_equal(Y.data, np.zeros_like(x))  # nothing ran


def test_cores_are_checked_against_the_machine_the_study_runs_on():
    """The 910B4 has 20 cores; a pipeline-only study runs no twin; a cost model of one's own has no core limit; a
    workload's own dispatch decides its cores (the knob is reported as not applied)."""
    sp = spec_pipeline(tiles=2, tile=(32, 32), seed=None)
    with pytest.raises(PtortValueError, match=r"^cores=21 is more than machine 'ascend_910b4' has \(20 AI cores\)"):
        run_study(sp.pipeline, Knobs(cores=21), machine="ascend_910b4", compute_values=False)
    with pytest.raises(PtortValueError, match=r"^cores=21 is more than machine 'ascend_910b4'"):
        run_study(sp.pipeline.compile(machine="ascend_910b4", compute_values=False), Knobs(cores=21))
    assert run_study(sp.pipeline, Knobs(cores=20), machine="ascend_910b4", compute_values=False).data_parallel
    assert run_study(sp.pipeline, Knobs(cores=99), "pipeline", compute_values=False).data_parallel is None
    pinned = run_study(sp.pipeline, Knobs(cores=30), "data-parallel", cost_model=PinnedCosts(default_cycles=10),
                       compute_values=False)
    assert len({s.core for s in pinned.data_parallel.trace().spans}) == 2  # two tiles, each on its own core
    x, X, Y = tensors()
    w = for_each(Dense[N](), lambda t: task(accumulate, [t], {"x": X[t], "y": Y[t]}))
    assert run_study(w.dispatch(DispatchPolicy.round_robin(2)), Knobs(cores=30)).knobs.cores == 2


def test_a_study_refuses_cores_past_the_machine_in_its_words():
    study = Study(lambda tiles: spec_pipeline(tiles=tiles, tile=(32, 32), seed=None).pipeline, Knobs(tiles=2),
                  compute_values=False)
    with pytest.raises(PtortValueError) as e:
        study.run(cores=25)
    assert e.value.what.startswith("cores=25 is more than machine 'ascend_910b' has (24 AI cores)")
    assert e.value.hint == CORES_HINT and study.last is None


def chain(depth: int, second_depth: int | None = None):
    """loader -> a -> copier -> b -> adder (Y += 4X). Channel b takes ``second_depth`` when given: a builder that
    does not build every channel with its depth."""
    x, X, Y = tensors()
    T, U = Tensor(shape=(N, 4, 4), dtype=F32, name="T"), Tensor(shape=(N, 4, 4), dtype=F32, name="U")
    a = Channel(name="a", depth=depth)
    b = Channel(name="b", depth=depth if second_depth is None else second_depth)
    loader = process("loader").produces(a).body(
        for_each(Dense[N](), lambda t: send(a, task(double, [t], {"x": X[t], "y": T[t]}))))
    copier = process("copier").consumes(a).produces(b).body(
        consume(a, lambda t: send(b, task(double, [t], {"x": T[t], "y": U[t]}))))
    adder = process("adder").consumes(b).body(consume(b, lambda t: task(accumulate, [t], {"x": U[t], "y": Y[t]})))
    return connect(loader, copier, adder)


def test_a_depth_that_does_not_reach_every_channel_is_refused():
    """Study.run(depth=4) with a channel the builder makes at depth 2: which channel, where, how to fix it."""
    study = Study(lambda depth: chain(depth, second_depth=2), compute_values=False)
    with pytest.raises(PtortValueError) as e:
        study.run(depth=4)
    assert e.value.what == "depth=4 did not reach the pipeline: channel 'b' has depth 2."
    assert e.value.hint == ('Build every channel with depth=depth, e.g. Channel[Tensor](name="q", depth=depth): depth '
                            "holds the depth you set.")
    assert e.value.where is not None and e.value.where.filename == __file__
    assert e.value.where.code == 'b = Channel(name="b", depth=depth if second_depth is None else second_depth)'
    assert study.last is None
    assert [c.depth for c in study.run(depth=2).pipeline.workload.channels] == [2, 2]  # the depth they all have
    assert study.run() is study.last  # no depth given: nothing to check


def test_every_channel_that_misses_the_depth_is_named():
    """The first channel is the error's place; the others are listed with theirs."""
    study = Study(lambda depth: chain(1), compute_values=False)  # ignores depth altogether
    with pytest.raises(PtortValueError) as e:
        study.run(depth=3)
    line = e.value.where.lineno
    assert e.value.what == (f"depth=3 did not reach the pipeline: channel 'a' has depth 1, 'b' has depth 1 "
                            f"(test_study_safety.py:{line + 1}).")


def test_depth_is_not_checked_when_the_builder_does_not_take_it():
    """A builder without a depth parameter builds what it builds: no knob claims its channels' depth."""
    study = Study(lambda tiles: chain(3, second_depth=2), compute_values=False)
    assert [c.depth for c in study.run(tiles=4).pipeline.workload.channels] == [3, 2]


def test_run_study_alone_does_not_check_depth():
    """run_study gets a built pipeline: knobs.depth only labels the result (a Study or %%ptort --depth checks)."""
    assert run_study(chain(3), Knobs(depth=2, cores=2), compute_values=False).knobs.depth == 2


def test_knob_words_are_checked():
    """A front end's KnobWords: real templates, a callable locate; run_study and Study take nothing else."""
    from ptort_lab.errors import PtortTypeError
    from ptort_lab.knobs import KnobWords

    assert KnobWords(given="--{name} {value}").say("--{name} {value}", "cores", 4) == "--cores 4"
    with pytest.raises(PtortValueError) as e:
        KnobWords(given="{nme}={value}")
    assert e.value.what == ("KnobWords(given='{nme}={value}') is not a template of {name}, {NAME} and {value} "
                            "(KeyError: 'nme').")
    with pytest.raises(PtortValueError, match=r"^KnobWords\(setting=5\) is not a template"):
        KnobWords(setting=5)
    with pytest.raises(PtortTypeError, match=r"^KnobWords\(locate=...\) takes a function of a channel"):
        KnobWords(locate="here")
    with pytest.raises(PtortTypeError, match=r"^run_study\(words=...\) takes a KnobWords, got str 'DEPTH'\."):
        run_study(chain(2), Knobs(), words="DEPTH")
    with pytest.raises(PtortTypeError, match=r"^Study\(words=...\) takes a KnobWords, got int 3\."):
        Study(lambda depth: chain(depth), words=3)
