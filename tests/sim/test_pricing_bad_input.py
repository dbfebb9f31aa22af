"""Bad input to pricing: aliased tiles in dependencies and L2, issue costs past the latency, and what a cost model of
the user's own gives the runner (fixed_cycles, launch_cycles, begin_run, channel_stays_on_chip, class attributes)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pinned_chains import linear

from ptort_lab import (
    Channel,
    CostModel,
    Dense,
    DispatchPolicy,
    DType,
    In,
    Out,
    P,
    PinnedCosts,
    PtortTypeError,
    PtortValueError,
    SimulationError,
    Tensor,
    Tile,
    connect,
    consume,
    for_each,
    kernel,
    process,
    send,
    tl,
    workload,
)
from ptort_lab.dsl.steps import enumerate_tasks
from ptort_lab.sim.cost_model import span_of
from ptort_lab.sim.costs import NpuCostModel
from ptort_lab.sim.deps import infer_dependencies
from ptort_lab.sim.machine import TransferCost, ascend_910b
from ptort_lab.sim.timing_check import checked_fixed

T = Tile[64, 64, DType.F32]


@kernel
def copy(src: In[T], dst: Out[T]):
    tl.store(dst, tl.load(src))


def _here(error: Exception) -> bool:
    where = getattr(error, "where", None)
    return where is not None and Path(where.filename) == Path(__file__)


# -- 1. a tile named two ways is one region (dependencies and L2) ----------------------------------------------------
def _writer_then_reader(dst_of, reads_of=None):
    """copy[0] writes row 3 of Y (named by ``dst_of(Y)``), copy[1] on the other core reads it (``reads_of(Y)``)."""
    x = np.random.RandomState(0).rand(4, 64, 64).astype(np.float32)
    X, Y, Z = Tensor(data=x), Tensor(data=np.zeros_like(x)), Tensor(data=np.zeros_like(x))
    dst, src = dst_of(Y), (reads_of or (lambda y: y[3]))(Y)

    @workload
    def w():
        copy[0](src=X[3], dst=dst)
        copy[1](src=src, dst=Z[0])
    program = w().dispatch(DispatchPolicy.round_robin(2)).compile().execute()
    return program, x, Z


def _load_after_store(program) -> bool:
    spans = program.trace().spans
    store_end = max(s.end for s in spans if s.core == 0 and s.name == "store")
    return min(s.start for s in spans if s.core == 1 and s.name == "load") >= store_end


NAMES = {
    "Y[-1]": lambda y: y[-1],
    "Y.slice(2, 4)[1]": lambda y: y.slice(2, 4)[1],
    "Y.slice(3, 4)[-1]": lambda y: y.slice(3, 4)[-1],
    "a second Tensor over Y's array": lambda y: Tensor(data=y.data)[3],
}


@pytest.mark.parametrize("name", list(NAMES))
def test_a_tile_named_another_way_is_written_before_it_is_read(name):
    plain, _, _ = _writer_then_reader(lambda y: y[3])
    other, x, Z = _writer_then_reader(NAMES[name])
    assert _load_after_store(other)
    assert list(other.trace().spans) == list(plain.trace().spans)  # the same timing, L2 hits included
    assert other.trace().makespan == plain.trace().makespan
    assert np.array_equal(Z.data[0], x[3])


def test_a_reader_through_a_slice_waits_for_the_writer():
    program, x, Z = _writer_then_reader(lambda y: y[3], reads_of=lambda y: y.slice(1, 4)[2])
    assert _load_after_store(program)
    assert np.array_equal(Z.data[0], x[3])


def _deps(views):
    """infer_dependencies of one copy task per (src, dst) pair of ``views``, in order."""
    @workload
    def w():
        for src, dst in views:
            copy[0](src=src, dst=dst)
    return infer_dependencies(enumerate_tasks(w()))


def test_overlap_in_another_layout_counts_as_the_whole_array():
    y = np.zeros((4, 64, 64), np.float32)
    X, Y = Tensor(data=np.ones_like(y)), Tensor(data=y)
    Yt = Tensor(data=y.transpose(0, 2, 1))  # row 3 of Yt is row 3 of Y transposed: rows cannot express it
    assert _deps([(X[0], Yt[3]), (Y[3], X[1])]) == [[], [0]]
    assert _deps([(X[0], Yt[3]), (Y[0], X[1])]) == [[], [0]]  # (conservative: any row of Y)
    assert _deps([(X[0], Y[3]), (X[1], Y[2])]) == [[], []]  # disjoint rows of one Tensor stay independent


def test_tensors_over_disjoint_rows_of_one_array_stay_independent():
    buf = np.zeros((8, 64, 64), np.float32)
    A, B, X = Tensor(data=buf[:4]), Tensor(data=buf[4:]), Tensor(data=np.ones((4, 64, 64), np.float32))
    assert _deps([(X[0], A[3]), (B[0], X[1])]) == [[], []]
    assert _deps([(X[0], A[3]), (B[-1], X[1])]) == [[], []]
    assert _deps([(X[0], B[0]), (A[-4], X[1]), (Tensor(data=buf)[4], X[2])]) == [[], [], [0]]


# -- 2. an issue cost above the read latency ---------------------------------------------------------------------------
def test_the_makespan_covers_a_load_whose_issue_cost_outlasts_its_latency():
    X, Y = Tensor(data=np.ones((2, 64, 64), np.float32)), Tensor(shape=(2, 64, 64), dtype=DType.F32)

    @workload
    def w():
        for t in P(Dense[2]()):
            copy[t](src=X[t], dst=Y[t])
    program = w().compile(machine=ascend_910b.replace(gm_to_ub=TransferCost(60, 1000))).execute()
    trace = program.trace()
    last = max(s.end for s in trace.spans)
    assert trace.makespan == program.stats().total_cycles == last
    assert trace.process_end and max(trace.process_end.values()) >= last
    assert "makespan" in trace.to_chrome_json()  # (a run's own trace passes the export's checks)


# -- 3. fixed_cycles of a user's model ---------------------------------------------------------------------------------
def _pinned_subclass(value):
    class Costs(PinnedCosts):
        def fixed_cycles(self, task):
            return value
    return Costs()


BAD_FIXED = {-1: "returned -1 for task 0 (s0); it must return a whole number of cycles in 0..2**53.",
             2.5: "returned 2.5 for task 0 (s0); it must return a whole number of cycles in 0..2**53.",
             "10": "returned '10' for task 0 (s0); it must return a whole number of cycles in 0..2**53.",
             True: "returned True for task 0 (s0); it must return a whole number of cycles in 0..2**53.",
             2**70: f"returned {2**70} for task 0 (s0); a task's cycles must be at most 2**53.",
             None: "returned None for task 0 (s0), which asks task_timing to price it, but Costs prices tasks with "
                   "PinnedCosts.task_timing, which takes its cycles from fixed_cycles."}


@pytest.mark.parametrize("values", [False, True], ids=["timing-only", "values"])
@pytest.mark.parametrize("value", list(BAD_FIXED), ids=repr)
def test_a_bad_fixed_cycles_result_is_refused_at_its_line(value, values):
    program = linear(3).compile(cost_model=_pinned_subclass(value), compute_values=values)
    with pytest.raises(SimulationError) as e:
        program.execute()
    assert e.value.what == "Costs.fixed_cycles " + BAD_FIXED[value]
    assert _here(e.value) and e.value.where.function == "fixed_cycles"
    assert "process 's0'" in e.value.context


def test_a_numpy_fixed_cycles_result_is_its_int():
    stats = linear(3).compile(cost_model=_pinned_subclass(np.int64(7)), compute_values=False).execute().stats()
    assert stats.total_cycles.__class__ is int and stats.total_cycles == 35


def test_a_duck_typed_models_fixed_cycles_is_checked_and_may_say_none():
    class Mine:
        clock_hz = 1e9

        def fixed_cycles(self, task):
            return None if task.kernel == "s1" else -3 if task.kernel == "s2" else 4

        def task_timing(self, task, ir, core, start, lane, pipelined):
            return start + 9, start + 9, [span_of(task, core, lane, start, start + 9)]
    with pytest.raises(SimulationError, match=r"^Mine\.fixed_cycles returned -3 for task \d+ \(s2\); it must return "
                                              r"None \(then task_timing prices the task\) or a whole number"):
        linear(3).compile(cost_model=Mine(), compute_values=False).execute()


def test_an_inherited_fixed_cycles_keeps_the_fast_path():
    class Tuned(PinnedCosts):
        default_cycles = 5
    assert checked_fixed(Tuned()).__func__ is PinnedCosts.fixed_cycles
    assert checked_fixed(PinnedCosts()).__func__ is PinnedCosts.fixed_cycles


# -- 6. class attributes of a PinnedCosts subclass ------------------------------------------------------------------
def test_a_subclass_clock_and_default_cycles_are_honoured():
    class Slow(PinnedCosts):
        clock_hz = 1e6
        default_cycles = 11
    assert (Slow().clock_hz, Slow().default_cycles) == (1e6, 11)
    assert (Slow(3, 2e6).clock_hz, Slow(3, 2e6).default_cycles) == (2e6, 3)  # an argument wins
    assert (PinnedCosts().clock_hz, PinnedCosts().default_cycles) == (1.8e9, 0)
    assert PinnedCosts() == PinnedCosts(0, 1.8e9)
    X, Y = Tensor(data=np.ones((2, 64, 64), np.float32)), Tensor(shape=(2, 64, 64), dtype=DType.F32)

    @workload
    def w():
        for t in P(Dense[2]()):
            copy[t](src=X[t], dst=Y[t])
    stats = w().compile(cost_model=Slow(), compute_values=False).execute().stats()
    assert stats.total_cycles == 22
    assert stats.time_us == pytest.approx(22.0)  # 22 cycles at 1 MHz


def test_a_numpy_default_cycles_is_its_int():
    assert PinnedCosts(np.int64(4)).default_cycles.__class__ is int


@pytest.mark.parametrize("attrs, message", [
    ({"clock_hz": -1.0}, "Slow.clock_hz must be a frequency > 0, got -1.0."),
    ({"clock_hz": "fast"}, "Slow.clock_hz must be a frequency > 0, got 'fast'."),
    ({"default_cycles": -2}, "Slow.default_cycles must be an int >= 0, got -2."),
    ({"default_cycles": 2.5}, "Slow.default_cycles must be an int >= 0, got 2.5."),
])
def test_a_bad_subclass_attribute_is_named(attrs, message):
    Slow = type("Slow", (PinnedCosts,), attrs)
    with pytest.raises(PtortValueError) as e:
        Slow()
    assert e.value.what == message


# -- 9. launch_cycles -------------------------------------------------------------------------------------------------
def _two_copies():
    X, Y = Tensor(data=np.ones((2, 64, 64), np.float32)), Tensor(shape=(2, 64, 64), dtype=DType.F32)

    @workload
    def w():
        for t in P(Dense[2]()):
            copy[t](src=X[t], dst=Y[t])
    return w(), X, Y


@pytest.mark.parametrize("value", [-100, 2.5, "x", 2**60, True], ids=repr)
def test_a_bad_launch_cycles_is_refused_naming_the_model(value):
    class Costs(PinnedCosts):
        launch_cycles = value
    w, _, Y = _two_copies()
    with pytest.raises(SimulationError) as e:
        w.compile(cost_model=Costs(10)).execute()
    assert e.value.what.startswith(f"the cost model's Costs.launch_cycles is {value!r}; it must be None (not known) "
                                   "or a whole number of cycles in 0..2**53")
    assert _here(e.value) and "launch_cycles = value" in e.value.where.code
    assert Y.data is None  # the failed run left no outputs behind


@pytest.mark.parametrize("value, recorded", [(np.int64(5), 5), (None, None), (0, 0)])
def test_a_good_launch_cycles_is_recorded(value, recorded):
    class Costs(PinnedCosts):
        launch_cycles = value
    w, _, _ = _two_copies()
    trace = w.compile(cost_model=Costs(10), compute_values=False).execute().trace()
    assert trace.launch_cycles == recorded and trace.launch_cycles.__class__ is type(recorded)


def test_a_bad_finish_run_is_refused():
    class Model(CostModel):
        clock_hz = 1e9

        def task_timing(self, task, ir, core, start, lane, pipelined):
            return start + 9, start + 9, [span_of(task, core, lane, start, start + 9)]

        def finish_run(self, makespan):
            return makespan - 1
    w, _, _ = _two_copies()
    with pytest.raises(SimulationError) as e:
        w.compile(cost_model=Model(), compute_values=False).execute()
    assert e.value.what.startswith("Model.finish_run(18) returned 17; it must return the run's end")
    assert _here(e.value)


# -- 10. begin_run ----------------------------------------------------------------------------------------------------
class _NoReturn(CostModel):
    def begin_run(self, workload, placement, vector_units):
        self.prepared = True  # forgot `return self`


class _NotAPricer(CostModel):
    def begin_run(self, workload, placement, vector_units):
        return {"run": 1}


@pytest.mark.parametrize("model, returned", [(_NoReturn, "None"),
                                             (_NotAPricer, "dict {'run': 1}, which has no task_timing()")])
@pytest.mark.parametrize("kind", ["data-parallel", "pipeline"])
def test_begin_run_must_return_a_pricer(model, returned, kind):
    program = _two_copies()[0] if kind == "data-parallel" else linear(3)
    with pytest.raises(PtortTypeError) as e:
        program.compile(cost_model=model(), compute_values=False).execute()
    assert e.value.what == (f"{model.__name__}.begin_run returned {returned}; it must return the run's pricer, an "
                            "object with task_timing(task, ir, core, start, lane, pipelined).")
    assert _here(e.value) and e.value.where.function == "begin_run"


def test_a_duck_typed_models_begin_run_is_checked():
    class Mine:
        clock_hz = 1e9

        def task_timing(self, task, ir, core, start, lane, pipelined):
            raise AssertionError("not reached")

        def begin_run(self, workload, placement, vector_units):
            return None
    with pytest.raises(PtortTypeError, match=r"^Mine\.begin_run returned None; it must return the run's pricer"):
        linear(3).compile(cost_model=Mine(), compute_values=False).execute()


def test_a_pricer_without_the_optional_hooks_gets_their_defaults():
    class Run:
        def task_timing(self, task, ir, core, start, lane, pipelined):
            return start + 9, start + 9, [span_of(task, core, lane, start, start + 9)]

    class Model(CostModel):
        clock_hz = 1e9

        def begin_run(self, workload, placement, vector_units):
            return Run()
    program = linear(3).compile(cost_model=Model(), compute_values=False).execute()
    assert program.trace().launch_cycles is None
    assert program.stats().total_cycles == 9 * 5  # 3 stages x 3 items, on a 3-deep chain: 5 steps of 9


# -- D(f). channel_stays_on_chip --------------------------------------------------------------------------------------
def _shared_core_pipeline(latency_model):
    X, Y, Z = (Tensor(data=np.ones((2, 64, 64), np.float32)) for _ in range(3))
    q = Channel("q", depth=2)
    a = process("a").produces(q).body(for_each(Dense[2](), lambda t: send(q, copy[t](src=X[t], dst=Y[t]))))
    b = process("b").consumes(q).body(consume(q, lambda t: copy[t](src=Y[t], dst=Z[t])))
    return connect(a, b).place("shared").compile(cost_model=latency_model, compute_values=False,
                                                 channel_latency_cycles=1000)


class _Pinned(PinnedCosts):
    def __init__(self, answer):
        super().__init__(default_cycles=10)
        self.answer = answer

    def channel_stays_on_chip(self, producers, consumers):
        return self.answer


@pytest.mark.parametrize("answer", ["no", 0, None, np.array([True])], ids=repr)
def test_a_channel_stays_on_chip_answer_must_be_a_bool(answer):
    with pytest.raises(PtortTypeError) as e:
        _shared_core_pipeline(_Pinned(answer)).execute()
    assert e.value.what.startswith(f"_Pinned.channel_stays_on_chip returned {type(answer).__name__} ")
    assert "for a channel from ['a'] to ['b']; it must return True (it stays in the core's buffers) or False" \
        in e.value.what
    assert _here(e.value) and e.value.where.function == "channel_stays_on_chip"


def test_a_numpy_bool_is_a_bool():
    on = _shared_core_pipeline(_Pinned(np.bool_(True))).execute().stats().total_cycles
    off = _shared_core_pipeline(_Pinned(np.bool_(False))).execute().stats().total_cycles
    assert off - on == 1000  # the cross-core hop costs the channel latency, the on-chip one nothing


def test_the_npu_models_own_hooks_pass_unchanged():
    program = linear(3).compile(cost_model=NpuCostModel(), compute_values=False).execute()
    assert program.trace().launch_cycles == 0  # (pinned tasks only: no launch)


# -- an NpuCostModel subclass's hooks: its runs are priced by NpuRun ------------------------------------------------
def test_an_npu_model_hook_its_runs_never_call_is_refused():
    class MyNpu(NpuCostModel):
        def task_timing(self, task, ir, core, start, lane, pipelined):
            return super().task_timing(task, ir, core, start, lane, pipelined)
    with pytest.raises(PtortTypeError) as e:
        linear(3).compile(cost_model=MyNpu(), compute_values=False).execute()
    assert e.value.what.startswith("MyNpu overrides task_timing, which NpuCostModel's runs never call")
    assert _here(e.value) and e.value.where.function == "task_timing"


def test_an_npu_model_subclass_that_changes_no_hook_runs():
    class Named(NpuCostModel):
        label = "mine"

    class Wrapped(NpuCostModel):  # its own begin_run: its pricer may call the hooks it defines
        def begin_run(self, workload, placement, vector_units=None):
            return super().begin_run(workload, placement, vector_units)

        def fixed_cycles(self, task):
            return 0
    expected = linear(3).compile(cost_model=NpuCostModel(), compute_values=False).execute().stats().total_cycles
    for model in (Named(), Wrapped()):
        assert linear(3).compile(cost_model=model, compute_values=False).execute().stats().total_cycles == expected


# -- whole-number arguments of the NPU model's public methods (sim/int_args.py) --------------------------------------
def _run_with_dirty_line() -> object:
    run = NpuCostModel()._current()
    run.memory.write(0, 4096, ascend_910b.gm_to_ub, ("y", (0,)))
    return run


@pytest.mark.parametrize("call, what", [
    (lambda run: run.block_start, "NpuRun.block_start(core=...)"),
    (lambda run: run.finish_run, "NpuRun.finish_run(makespan=...)"),
    (lambda run: run.memory.flush, "GlobalMemory.flush(t=...)"),
    (lambda run: lambda t: run.memory.read(t, 256, ascend_910b.gm_to_ub, ("x", (1,))),
     "GlobalMemory.read(t=...)"),
    (lambda run: lambda n: run.memory.read(0, n, ascend_910b.gm_to_ub, ("x", (1,))),
     "GlobalMemory.read(nbytes=...)"),
    (lambda run: lambda t: run.memory.write(t, 256, ascend_910b.gm_to_ub, ("x", (1,))),
     "GlobalMemory.write(t=...)"),
    (lambda run: lambda n: run.memory.write(0, n, ascend_910b.gm_to_ub, ("x", (1,))),
     "GlobalMemory.write(nbytes=...)"),
])
def test_numpy_ints_are_ints_and_other_numbers_are_refused_by_name(call, what) -> None:
    """A numpy int gives what the int gives (the compiled build once raised a bare TypeError); a float or a bool
    raises a PtortTypeError naming the method and argument at the caller's line."""
    plain, numpy = call(_run_with_dirty_line()), call(_run_with_dirty_line())
    assert numpy(np.int64(3)) == plain(3)
    for bad in (3.0, True, "3"):
        with pytest.raises(PtortTypeError) as e:
            call(_run_with_dirty_line())(bad)
        assert e.value.what == f"{what} is {type(bad).__name__} {bad!r}; it must be a whole number (an int)."
        assert _here(e.value)
