"""Program API, report and compare() bad-input fixes (round 4): runs at different clocks, exact integer and
bfloat16 checks, enumerate() after the host data changes, notes on a one-core dispatch and on unpinned PinnedCosts
tasks, options given to the wrong call, numpy bools, and connect()'s event and duplicate-process checks."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from pinned_chains import linear
from source_lines import here, located

from ptort_lab import (
    Channel,
    Dense,
    DispatchPolicy,
    DType,
    Event,
    In,
    Out,
    P,
    PinnedCosts,
    PipelineError,
    PtortTypeError,
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
    workload,
)
from ptort_lab.csp import record, synchronize
from ptort_lab.report import check

F32, I64 = DType.F32, DType.I64


# -- compare() of runs at different clocks (hunt2 #1) -----------------------------------------------------------------
def _summary(fig) -> str:
    (table,) = [t for t in fig.texts if t.get_gid() == "summary"]
    return table.get_text()


def _gantts(fig) -> list:
    return [ax for ax in fig.axes if ax.get_gid() == "gantt"]


def test_compare_at_different_clocks_gives_the_speedup_in_time_on_a_time_axis():
    """The same cycles at 1.8 GHz and at 1 GHz: the speedup is 1.80x in time (not 1.00x in cycles), and the
    Gantts share a µs axis: each spans the same time, whatever its clock."""
    from ptort_lab.viz.timeline import compare

    fast = linear(2).compile(cost_model=PinnedCosts()).execute()
    slow = linear(2).compile(cost_model=PinnedCosts(clock_hz=1e9)).execute()
    assert fast.stats().total_cycles == slow.stats().total_cycles
    fig = compare(fast, slow, labels=("fast", "slow"))
    assert _summary(fig).splitlines()[-1] == ("fast speedup vs slow: 1.80x in time (clocks differ: fast 1.8 GHz, "
                                              "slow 1 GHz; 1.00x in cycles)")
    upper, lower = _gantts(fig)
    assert not upper.get_shared_x_axes().joined(upper, lower)
    spans_us = [ax.get_xlim()[1] / (hz / 1e6) for ax, hz in ((upper, 1.8e9), (lower, 1e9))]
    assert spans_us[0] == pytest.approx(spans_us[1])  # one µs is as wide in both
    assert lower.get_xlabel().startswith("time (µs): the runs' clocks differ")
    labels = [t.get_text() for t in lower.get_xticklabels()]
    assert labels[:2] == ["0", "0.04"]  # µs, at the same place in both Gantts


def test_compare_of_traces_at_different_clocks_and_of_one_clock_unchanged():
    """Loaded traces carry their own clock too; runs at one clock keep the cycle axis and the cycle speedup."""
    import dataclasses

    from ptort_lab.viz.timeline import compare

    run = linear(2).compile(cost_model=PinnedCosts()).execute()
    other = linear(2, (50, 30, 50)).compile(cost_model=PinnedCosts()).execute()
    slow = dataclasses.replace(run.trace(), clock_hz=0.9e9)
    assert "2.00x in time" in _summary(compare(run.trace(), slow, labels=("a", "b"))).splitlines()[-1]
    same = compare(other, run, labels=("a", "b"))
    ratio = run.stats().total_cycles / other.stats().total_cycles
    assert _summary(same).splitlines()[-1] == f"a speedup vs b: {ratio:.2f}x"
    upper, lower = _gantts(same)
    assert upper.get_shared_x_axes().joined(upper, lower) and lower.get_xlabel() == "cycles"


# -- check(): integers exactly, bfloat16 accepted (hunt2 #2, #13) -----------------------------------------------------
def test_check_compares_int64_results_exactly():
    """2**60 + 1 against 2**60 at rtol=atol=0 fails (float64 would call them equal), from a kernel's I64 output."""
    @kernel
    def inc(src: In[Tile[1, 4, I64]], dst: Out[Tile[1, 4, I64]]):
        tl.store(dst, tl.add(tl.load(src), 1))

    x = np.full((1, 1, 4), 2**60, np.int64)
    X, Y = Tensor(data=x, dtype=I64), Tensor(shape=x.shape, dtype=I64)

    @workload
    def w():
        for t in P(Dense[1]()):
            inc[t](src=X[t], dst=Y[t])

    w().compile().execute()
    wrong = check("Y = X + 1", Y, x, rtol=0, atol=0)
    assert not wrong.passed and wrong.max_abs_error == 1.0
    assert check("Y = X + 1", Y, x + 1, rtol=0, atol=0).passed


@pytest.mark.parametrize("got, expected, passed, error", [
    (np.uint64(2**64 - 1), np.uint64(2**64 - 2), False, 1.0),
    (np.uint64(2**63), np.int64(2**63 - 1), False, 1.0),
    (np.int64(2**63 - 1), np.int64(-2**63), False, 2.0**64),
    (np.array([1, 2], np.int8), np.array([1, 3], np.int16), True, 1.0),  # within atol=1
    (np.array([True, False]), np.array([True, True]), False, 1.0),
    (np.array([], np.int64), np.array([], np.uint64), True, 0.0),
], ids=["uint64", "uint64-int64", "int64-extremes", "small-ints", "bools", "empty"])
def test_integer_errors_are_exact(got, expected, passed, error):
    c = check("exact", got, expected, rtol=0, atol=1 if got.dtype == np.int8 else 0)
    assert (c.passed, c.max_abs_error) == (passed, error)


def test_float_checks_are_unchanged():
    """An int result against a float reference is still compared in float64 (1e-7 relative passes at rtol=1e-5)."""
    c = check("mixed", np.array([10_000_000], np.int64), np.array([10_000_001.0]))
    assert c.passed and c.max_abs_error == 1.0


def test_check_accepts_bfloat16_and_float8():
    import ml_dtypes

    x = np.array([1.0, 2.5, -3.0], np.float32)
    assert check("bf16", x.astype(ml_dtypes.bfloat16), x).passed
    assert check("fp8", x.astype(ml_dtypes.float8_e4m3fn), x.astype(ml_dtypes.bfloat16)).passed
    off = check("bf16", np.array([1.0, 2.0], ml_dtypes.bfloat16), np.array([1.0, 2.01], ml_dtypes.bfloat16),
                rtol=0, atol=0)
    assert not off.passed and off.max_abs_error == 0.015625


def test_check_of_plain_arrays_does_not_import_ml_dtypes():
    code = ("import sys, numpy as np\nfrom ptort_lab.report import check\n"
            "check('x', np.arange(3), np.arange(3)); check('y', np.ones(2), [1.0, 1.0])\n"
            "print('ml_dtypes' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr


# -- enumerate() lists again (hunt2 #3) --------------------------------------------------------------------------------
def test_enumerate_lists_the_tasks_a_run_runs_now():
    @kernel(cycles=10)
    def copy(src: In[Tile[4, 4, F32]], dst: Out[Tile[4, 4, F32]]):
        tl.store(dst, tl.load(src))

    X, Y = Tensor(data=np.ones((8, 4, 4), np.float32)), Tensor(shape=(8, 4, 4), dtype=F32)
    rows = [0, 1]

    @workload
    def w():
        for b in P.sel(rows, "b"):
            copy[b](src=X[b], dst=Y[b])

    program = w().compile()
    assert [t.get("b") for t in program.enumerate()] == [0, 1]
    rows[:] = [2, 3, 4]
    program.execute()
    assert [t.get("b") for t in program.enumerate()] == [t.get("b") for t in program.tasks] == [2, 3, 4]


# -- notes: a dispatch policy without a count, unpinned PinnedCosts tasks (hunt2 #6, #7) -----------------------------
def _squares(n: int = 8, cycles: int | None = None):
    @kernel(cycles=cycles)
    def sq(src: In[Tile[64, 64, F32]], dst: Out[Tile[64, 64, F32]]):
        x = tl.load(src)
        tl.store(dst, tl.mul(x, x))

    X, Y = Tensor(shape=(n, 64, 64), dtype=F32), Tensor(shape=(n, 64, 64), dtype=F32)

    @workload
    def w():
        for t in P(Dense[n]()):
            sq[t](src=X[t], dst=Y[t])

    return w


def test_a_dispatch_policy_without_a_count_runs_on_core_0_and_says_so():
    w = _squares()
    program = w().dispatch(DispatchPolicy.round_robin()).compile(compute_values=False).execute()
    assert {sp.core for sp in program.trace().spans} == {0}  # as before: 0 means streams(n), else 1
    assert program.stats().notes[-1] == (
        "DispatchPolicy.round_robin() was given no core count, so all 8 tasks ran on core 0 (a count of 0 means as "
        "many cores as .streams(n), else 1): spread them with DispatchPolicy.round_robin(n), e.g. "
        "DispatchPolicy.round_robin(24) for every AI core of 'ascend_910b'")
    assert "note: DispatchPolicy.round_robin() was given no core count" in program.stats().summary()
    stolen = w().dispatch(DispatchPolicy.work_steal()).compile(cost_model=PinnedCosts(default_cycles=5)).execute()
    assert stolen.stats().notes == [
        "DispatchPolicy.work_steal() was given no core count, so all 8 tasks ran on core 0 (a count of 0 means as "
        "many cores as .streams(n), else 1): spread them with DispatchPolicy.work_steal(n)"]


@pytest.mark.parametrize("spread", [lambda w: w.dispatch(DispatchPolicy.round_robin(4)),
                                    lambda w: w.dispatch(DispatchPolicy.round_robin()).streams(4),
                                    lambda w: w], ids=["count", "streams", "no-policy"])
def test_no_dispatch_note_when_the_tasks_are_spread_or_no_policy_was_given(spread):
    program = spread(_squares()()).compile(cost_model=PinnedCosts(default_cycles=5)).execute()
    assert program.stats().notes == []


def test_pinned_costs_note_the_tasks_that_took_the_default_0_cycles():
    program = _squares()().compile(cost_model=PinnedCosts()).execute()
    assert program.stats().total_cycles == 0
    assert program.stats().notes == [
        "the tasks of 'sq' had no cycles= and took PinnedCosts' default_cycles=0: pin them with @kernel(cycles=...) "
        "or task(..., cycles=...), or use the NPU model (compile() without cost_model=)"]
    lean = _squares()().compile(cost_model=PinnedCosts()).execute(keep_trace=False)
    assert lean.stats().notes == program.stats().notes  # (hunt10a #5: equal with ==, as long_runs.md says)


@pytest.mark.parametrize("model, cycles", [(PinnedCosts(), 7), (PinnedCosts(default_cycles=3), None)],
                         ids=["pinned", "default-given"])
def test_no_pinned_note_when_every_task_has_a_cost(model, cycles):
    assert _squares(cycles=cycles)().compile(cost_model=model).execute().stats().notes == []


# -- options given to the wrong call, numpy bools (hunt2 #9, #15) -----------------------------------------------------
def test_execute_refuses_a_compile_option_naming_compile():
    program = linear(2).compile(cost_model=PinnedCosts())
    with pytest.raises(PtortTypeError) as e:
        line = here() + 1
        program.execute(compute_values=False)
    located(e, line)
    assert e.value.what == "execute() got unknown option(s) ['compute_values']."
    assert e.value.hint == ("compute_values is a compile() option: pass it when compiling, "
                            "w.compile(compute_values=False).execute(). execute() takes steady_state, tiles and "
                            "keep_trace; compile() takes machine, cost_model, channel_latency_cycles, placement and "
                            "compute_values.")
    assert isinstance(e.value, TypeError)  # as Python's own error for an unknown keyword


def test_execute_refuses_a_typo_with_the_closest_option():
    with pytest.raises(PtortTypeError) as e:
        linear(2).compile(cost_model=PinnedCosts()).execute(steady=True)
    assert e.value.what == "execute() got unknown option(s) ['steady']."
    assert e.value.hint.startswith("Did you mean 'steady_state'? execute() takes steady_state, tiles and keep_trace")


def test_execute_keeps_its_signature_for_help():
    import inspect

    from ptort_lab import Program
    assert list(inspect.signature(Program.execute).parameters)[:4] == ["self", "steady_state", "tiles", "keep_trace"]


def test_compile_names_execute_for_its_options():
    with pytest.raises(PtortValueError) as e:
        line = here() + 1
        linear(2).compile(steady_state=True)
    located(e, line)
    assert e.value.what == "compile() got unknown option(s) ['steady_state']."
    assert e.value.hint == ("Known options: machine, cost_model, channel_latency_cycles, placement, compute_values. "
                            "steady_state is an execute() option: pass it when running, "
                            "w.compile().execute(steady_state=True).")


def test_numpy_bools_are_taken_as_bools():
    timing_only = np.array([0, 1])[1] == 1  # np.True_
    program = linear(3).compile(cost_model=PinnedCosts(), compute_values=~timing_only)
    assert program.run_options.compute_values is False
    program.execute(keep_trace=~timing_only)
    assert not program._run.kept_trace
    with pytest.raises(PtortValueError, match=r"^execute\(tiles=\.\.\.\) sets the tile count"):
        program.execute(steady_state=~timing_only, tiles=10)  # taken as False: tiles= needs steady_state=True


# -- connect(): an event no process records, a process listed twice (hunt3 #13, #14) -----------------------------------
_k = kernel(name="k", cycles=10)(lambda: None)


def test_connect_refuses_a_synchronize_no_process_records():
    ev = Event("loaded")
    c = Channel("c", depth=2)
    line = here() + 1
    w = process("w").produces(c).body_func(lambda: [synchronize(ev), for_each(Dense[3](), lambda t: send(c, task(
        _k, [t], {})))])
    d = process("d").consumes(c).body(consume(c, lambda t: task(_k, [t], {})))
    with pytest.raises(PipelineError) as e:
        connect(w, d)
    located(e, line)
    assert e.value.what == ("process 'w' synchronizes on Event 'loaded', but no process of this pipeline records it, "
                            "so it would wait forever: a pipeline run starts with no signals, and only its own "
                            "processes' record() steps signal it.")
    assert e.value.hint.startswith("Record it inside the pipeline: add record(loaded) to the body of the process that "
                                   "should release 'w'")
    rec = process("rec").body_func(lambda: [task(_k, [0], {}), record(ev)])
    assert connect(w, d, rec).compile(cost_model=PinnedCosts()).execute().stats().total_cycles > 0


def test_connect_names_a_process_listed_twice():
    c = Channel("c", depth=2)
    src = process("src").produces(c).body(for_each(Dense[4](), lambda t: send(c, task(_k, [t], {}))))
    dst = process("dst").consumes(c).body(consume(c, lambda t: task(_k, [t], {})))
    with pytest.raises(PipelineError) as e:
        line = here() + 1
        connect(src, src, dst)
    located(e, line)
    assert e.value.what == "process 'src' is listed twice; a process runs once in a pipeline."
    assert e.value.hint == "List each process once: drop the second 'src'."
    other = process("src").consumes(c).body(consume(c, lambda t: task(_k, [t], {})))
    with pytest.raises(PipelineError, match=r"^two processes are named 'src'\."):
        connect(src, other)
