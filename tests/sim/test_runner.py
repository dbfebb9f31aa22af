"""The runner's contracts: the engine's command vocabulary, the CostModel protocol (subclassed, duck-typed, refused),
the kernel launch a trace records, the pipe and buffer names, and the one cycles-to-microseconds conversion."""
from __future__ import annotations

import gc
import json

import pytest

from ptort_lab import (
    Channel,
    Dense,
    NpuCostModel,
    PtortTypeError,
    PtortValueError,
    connect,
    consume,
    for_each,
    process,
    send,
    task,
)
from ptort_lab.dsl import steps as steps_module
from ptort_lab.dsl.commands import CLOSED, NOT_BEFORE, TASK, Cmd
from ptort_lab.errors import SimulationError
from ptort_lab.sim import engine as engine_module
from ptort_lab.sim.cost_model import CostModel, PinnedCosts, as_cost_model, span_of
from ptort_lab.sim.engine import Engine
from ptort_lab.sim.export import PIPE_ORDER, to_chrome_json
from ptort_lab.sim.gc_pause import gc_paused
from ptort_lab.sim.load import load_chrome_json
from ptort_lab.sim.lowering import lower
from ptort_lab.sim.machine import Buffer, Pipe, ascend_910b, cycles_to_us
from ptort_lab.sim.runner import RunOptions, simulate
from ptort_lab.sim.trace import Span, Stall, Trace, check_trace
from ptort_lab.spec_pipeline import spec_pipeline

TIMING_ONLY = RunOptions(compute_values=False)


def two_stages(stages, n=3, depth=1):
    """p sends n tasks of stage a into ch; q runs a stage-b task per token."""
    ch = Channel(name="ch", depth=depth)
    p = process("p").produces(ch).body(for_each(Dense[n](), lambda t: send(ch, task(stages.a, [t], {}))))
    q = process("q").consumes(ch).body(consume(ch, lambda t: task(stages.b, [t], {})))
    return connect(p, q)


class SevenCycles(CostModel):
    """A cost model of the user's own: every task takes 7 cycles (only task_timing is defined)."""

    clock_hz = 1e9

    def task_timing(self, task, ir, core, start, lane, pipelined):
        return start + 7, start + 7, [span_of(task, core, lane, start, start + 7)]


# -- commands -------------------------------------------------------------------------------------------------------
def test_one_command_vocabulary():
    """Cmd is the one list of engine commands: consecutive codes, the names steps and the engine use are its
    members, and the engine keeps no codes of its own (WINDOW is gone)."""
    assert [(c.name, int(c)) for c in Cmd] == [
        ("TASK", 0), ("SEND", 1), ("ACQUIRE", 2), ("PUSH", 3), ("PULL", 4), ("RECORD", 5), ("WAIT", 6),
        ("TASK_PULL", 7), ("SEND_PULL", 8), ("AFTER", 9), ("NOT_BEFORE", 10),
        ("RELEASE", 11)]
    assert steps_module.TASK is Cmd.TASK and steps_module.SEND_PULL is Cmd.SEND_PULL and steps_module.CLOSED is CLOSED
    assert not hasattr(engine_module, "WINDOW") and engine_module.AFTER is Cmd.AFTER
    assert repr(CLOSED) == "CLOSED"


def engine_run(commands):
    """Run one process yielding ``commands`` on a bare engine whose tasks take 10 cycles; (makespan, stalls)."""
    def run_task(t, actor):
        actor.t += 10
        actor.last_end = actor.t

    engine = Engine(run_task, time_ordered=False)
    engine.add_process("p", (cmd for cmd in commands), 0)
    return engine.run(), engine.stalls


def test_a_command_given_as_a_plain_int_is_carried_out_as_its_member():
    """(0, task) is TASK and (10, cycle, reason) NOT_BEFORE: the same times and stalls as with Cmd members."""
    with_members = engine_run([(TASK, "t0"), (NOT_BEFORE, 25, "rate"), (TASK, "t1")])
    assert with_members == (35, [Stall("p", "rate", 10, 25)])
    assert engine_run([(0, "t0"), (10, 25, "rate"), (0, "t1")]) == with_members


@pytest.mark.parametrize("bad", [(99,), ("send",), (None, 1)], ids=["unknown code", "a string", "None"])
def test_a_command_that_is_not_one_is_refused_by_name(bad):
    with pytest.raises(SimulationError) as e:
        engine_run([bad])
    assert f"process 'p' gave the engine {bad[0]!r}, which is not a command." in str(e.value)
    assert "A process body yields (Cmd.X, ...) tuples of ptort_lab.dsl.commands" in str(e.value)


def test_a_member_the_engine_has_no_rule_for_is_refused_not_looped_on(monkeypatch):
    """A Cmd member missing from the engine's table used to be retried as itself forever."""
    engine = Engine(lambda t, actor: None, time_ordered=False)
    monkeypatch.delitem(engine._cold, Cmd.NOT_BEFORE)
    engine.add_process("p", (cmd for cmd in [(NOT_BEFORE, 25, "rate")]), 0)
    with pytest.raises(SimulationError) as e:
        engine.run()
    assert f"process 'p' gave the engine {NOT_BEFORE!r}, which the engine has no rule for." in str(e.value)


# -- the CostModel protocol -----------------------------------------------------------------------------------------
def test_the_base_class_writes_every_default_once():
    model = SevenCycles()
    assert (model.uses_ir, model.time_ordered, model.launch_cycles) == (True, True, None)
    assert model.fixed_cycles(None) is None and model.channel_stays_on_chip([], []) is True
    assert model.begin_run(None, None, {}) is model  # no per-run state: the model prices its runs itself
    assert (PinnedCosts.uses_ir, PinnedCosts.time_ordered, PinnedCosts.launch_cycles) == (False, False, 0)
    assert issubclass(PinnedCosts, CostModel) and issubclass(NpuCostModel, CostModel)


def test_a_subclass_that_defines_only_task_timing_runs(stages):
    """Every task takes 7 cycles through depth-1 ch at latency 0: q waits for each token (starved), p for each slot
    (the slot of token i is free when q pulls token i+1, after q's task i ends)."""
    run = simulate(two_stages(stages), SevenCycles(), TIMING_ONLY)
    assert [(s.process, s.start, s.end) for s in run.trace.spans] == [
        ("p", 0, 7), ("q", 7, 14), ("p", 14, 21), ("q", 21, 28), ("p", 28, 35), ("q", 35, 42)]
    assert run.trace.makespan == 42 and run.trace.clock_hz == 1e9 and run.pricing is None
    assert run.stall_cycles == {"p": 14, "q": 21}
    assert run.trace.launch_cycles is None


def test_a_subclass_without_task_timing_is_refused_at_compile(stages):
    class Nothing(CostModel):
        pass

    with pytest.raises(PtortTypeError) as e:
        two_stages(stages).compile(cost_model=Nothing())
    assert "compile(cost_model=...) got Nothing, a CostModel that defines no task_timing()." in str(e.value)
    assert "Define task_timing(self, task, ir, core, start, lane, pipelined)" in str(e.value)


class Pricer:
    """A per-run pricer with only task_timing (no fixed_cycles, no channel_stays_on_chip, no launch_cycles)."""

    def __init__(self):
        self.priced = 0

    def task_timing(self, task, ir, core, start, lane, pipelined):
        self.priced += 1
        return start + 5, start + 5, [span_of(task, core, lane, start, start + 5)]


class DuckWithBeginRun:
    """Not a CostModel subclass: clock_hz, begin_run and a task_timing that must never be called."""

    clock_hz = 1e9

    def begin_run(self, workload, placement, vector_units):
        self.placement = placement
        return Pricer()

    def task_timing(self, *args):
        raise AssertionError("the runner prices with the run's pricer")


def test_a_duck_typed_model_with_begin_run_gets_the_defaults_for_what_its_pricer_lacks(stages):
    model = DuckWithBeginRun()
    run = simulate(two_stages(stages, n=2), model, TIMING_ONLY)
    assert isinstance(run.pricing, Pricer) and run.pricing.priced == 4  # the user's own per-run object
    assert model.placement == {"p": 0, "q": 1}
    assert run.trace.makespan == 4 * 5 and run.trace.launch_cycles is None
    assert as_cost_model(model).time_ordered is True  # (no time_ordered: the safe default)


class LaunchingPricer(Pricer):
    """A pricer that learns its launch while it prices (as the NPU model's NpuRun does)."""

    def task_timing(self, task, ir, core, start, lane, pipelined):
        self.launch_cycles = 99
        return super().task_timing(task, ir, core, start, lane, pipelined)


def test_a_duck_typed_pricer_s_launch_is_read_when_the_run_is_over(stages):
    model = DuckWithBeginRun()
    model.begin_run = lambda workload, placement, vector_units: LaunchingPricer()
    assert simulate(two_stages(stages, n=1), model, TIMING_ONLY).trace.launch_cycles == 99


class Legacy:
    """An older cost model: state on itself, vector_units read while pricing, no begin_run."""

    clock_hz = 1e9
    time_ordered = False

    def __init__(self):
        self.vector_units = {}
        self.seen = []

    def prepare(self, workload, placement):
        self.seen.append(dict(self.vector_units))

    def task_timing(self, task, ir, core, start, lane, pipelined):
        return start + 3, start + 3, [span_of(task, core, lane, start, start + 3)]


def test_an_older_duck_typed_model_is_prepared_once_per_run_and_told_its_vector_units(stages):
    model = Legacy()
    run = simulate(two_stages(stages, n=2).place({"q": (0, 1)}), model, TIMING_ONLY)
    assert model.seen == [{"q": 1}] and run.pricing is None and run.trace.makespan == 4 * 3


NoAivs = type("NoAivs", (), {"clock_hz": 1e9, "task_timing": SevenCycles.task_timing})  # duck-typed, no begin_run


@pytest.mark.parametrize("model", [SevenCycles(), NoAivs()], ids=["subclass", "duck"])
def test_a_model_without_vector_units_refuses_a_placement_on_aiv1(stages, model):
    with pytest.raises(PtortValueError) as e:
        simulate(two_stages(stages).place({"q": (0, 1)}), model, TIMING_ONLY)
    assert f"placement names vector units {{'q': 1}}, but {type(model).__name__} has no AIVs." in str(e.value)
    assert "Give plain core numbers, or run on the NPU model (NpuCostModel)." in str(e.value)


def test_a_run_never_changes_the_npu_model_it_shares(stages):
    """The AIV placement goes to the run's NpuRun, not to the model (runs in other threads share it)."""
    model = NpuCostModel()
    run = simulate(two_stages(stages).place({"q": (0, 1)}), model, TIMING_ONLY)
    assert model.vector_units == {} and run.pricing.vector_units == {"q": 1}


@pytest.mark.parametrize("clock, error, words", [
    ("fast", PtortTypeError, "Model.clock_hz must be a frequency in Hz (a number), got str 'fast'."),
    (True, PtortTypeError, "Model.clock_hz must be a frequency in Hz (a number), got bool True."),
    (float("nan"), PtortValueError, "Model: clock_hz must be a frequency of 1 Hz to 1e15 Hz, got nan."),
    (1e16, PtortValueError, "Model: clock_hz must be a frequency of 1 Hz to 1e15 Hz, got 1e+16."),
    (0.5, PtortValueError, "Model: clock_hz must be a frequency of 1 Hz to 1e15 Hz, got 0.5."),
    (10 ** 400, PtortValueError, "Model: clock_hz must be a frequency of 1 Hz to 1e15 Hz, got an int of 1329 bits."),
], ids=["str", "bool", "nan", "too fast", "too slow", "huge int"])
def test_a_clock_no_trace_could_record_is_refused_at_compile(stages, clock, error, words):
    model = type("Model", (), {"clock_hz": clock, "task_timing": SevenCycles.task_timing})()
    with pytest.raises(error) as e:
        two_stages(stages).compile(cost_model=model)
    assert f"compile(cost_model=...): {words}" in str(e.value)


@pytest.mark.parametrize("make, words", [
    (lambda: PinnedCosts(clock_hz=1e16), "PinnedCosts: clock_hz must be a frequency of 1 Hz to 1e15 Hz, got 1e+16."),
    (lambda: ascend_910b.replace(clock_hz=0.5),
     "Machine 'ascend_910b': clock_hz must be a frequency of 1 Hz to 1e15 Hz, got 0.5."),
], ids=["PinnedCosts", "Machine"])
def test_pinned_costs_and_machines_keep_their_clock_in_range(make, words):
    with pytest.raises(PtortValueError) as e:
        make()
    assert words in str(e.value)


# -- the kernel launch in the trace ---------------------------------------------------------------------------------
def test_a_run_that_ran_instructions_records_the_machines_launch():
    """The NPU model runs no instruction before the launch: the trace says how long it is, the export writes it in
    otherData.ptort (the renderers draw it), and Trace.load reads it back."""
    trace = spec_pipeline(tiles=2, tile=(32, 32), seed=None).pipeline.compile(compute_values=False).execute().trace()
    assert trace.launch_cycles == ascend_910b.launch_overhead_cycles == 10_900
    # the first instruction waits for the launch and its block's dispatch (NPU_MODEL §3.5: 150 per block)
    assert min(s.start for s in trace.spans) == 10_900 + ascend_910b.block_dispatch_cycles
    text = to_chrome_json(trace)
    assert json.loads(text)["otherData"]["ptort"]["launch_cycles"] == 10_900
    assert load_chrome_json(text) == trace


@pytest.mark.parametrize("model, launch", [(NpuCostModel(), 0), (PinnedCosts(), 0), (SevenCycles(), None)],
                         ids=["npu, pinned tasks only", "PinnedCosts", "a custom model"])
def test_a_run_without_instructions_has_no_launch(stages, model, launch):
    trace = simulate(two_stages(stages), model, TIMING_ONLY).trace
    assert trace.launch_cycles == launch
    meta = json.loads(to_chrome_json(trace))["otherData"]["ptort"]
    assert meta.get("launch_cycles", "absent") == ("absent" if launch is None else 0)
    assert load_chrome_json(to_chrome_json(trace)).launch_cycles == launch


def test_a_trace_file_without_launch_cycles_loads_and_a_bad_one_is_refused():
    trace = Trace(spans=[Span(0, "x", "k", 0, 0, 5)], makespan=5)
    text = to_chrome_json(trace)
    assert '"launch_cycles"' not in text and load_chrome_json(text).launch_cycles is None
    bad = text.replace('"makespan":5', '"launch_cycles":"soon","makespan":5')
    with pytest.raises(PtortValueError) as e:
        load_chrome_json(bad)
    assert ("otherData.ptort.launch_cycles is 'soon'; expected a whole, finite number of cycles >= 0 (an int up to "
            "2**53)") in str(e.value)
    with pytest.raises(PtortValueError) as e:
        check_trace(Trace(launch_cycles=-1), "Trace.save")
    assert "Trace.save got a Trace whose launch_cycles is -1; expected a whole, finite number of cycles" in str(e.value)


# -- names ----------------------------------------------------------------------------------------------------------
def test_pipes_and_buffers_are_enums_that_read_as_their_names(spec_kernels):
    assert PIPE_ORDER == ("MTE2", "MTE1", "CUBE", "FIX", "V", "MTE3") == tuple(p.value for p in Pipe)
    assert f"{Pipe.V}.{Buffer.L0C}" == "V.L0C" and str(Pipe.MTE2) == "MTE2" and Pipe.CUBE == "CUBE"
    assert [ascend_910b.buffer_bytes(b) // 1024 for b in Buffer] == [192, 512, 64, 64, 128]
    plan = lower(spec_kernels.compute.ir_for({}), ascend_910b)
    assert [f"{i.unit}.{i.pipe}" for i in plan.instrs] == ["AIV.MTE2", "AIV.V", "AIV.MTE3"]
    assert all(type(i.pipe) is Pipe for i in plan.instrs) and all(type(a.buffer) is Buffer for a in plan.allocs)


def test_cycles_become_microseconds_in_one_place():
    assert cycles_to_us(1800, 1.8e9) == 1.0 and ascend_910b.us(9000) == 5.0 and cycles_to_us(5, 0) == 0.0
    assert Trace(makespan=3600).makespan_us == 2.0  # at the default clock, the 910B2's 1.8 GHz


def test_gc_paused_is_public_and_nests():
    assert gc.isenabled()
    with gc_paused():
        with gc_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()
