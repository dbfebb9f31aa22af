"""Round 31: the reference's (PTO-WSP v9) C++ bridge names, tracing switches, DispatchPolicy.num_aicpus and the
TaskWindow units and modes it builds."""
import pytest

import ptort_lab.ir_bridge as ir_bridge
from ptort_lab import DispatchPolicy, TaskWindow, WindowMode, task
from ptort_lab.dsl.task_graph import TaskGraphConfig
from ptort_lab.errors import PtortError, PtortTypeError, PtortValueError
from ptort_lab.ir_bridge import (
    HAS_CPP_BINDINGS,
    IRBridgeError,
    cpp,
    module_to_string,
    parse_ir_string,
    workload_to_codegen_ir,
    workload_to_ir,
)
from ptort_lab.program import ExecutionTrace, Program, TraceEvent, TraceLevel
from ptort_lab.sim.trace import Trace


# -- the C++ IR bridge -------------------------------------------------------------------------------------------------
def test_bridge_flags_say_there_are_no_bindings():
    assert HAS_CPP_BINDINGS is False and cpp is None
    assert issubclass(IRBridgeError, PtortError) and issubclass(IRBridgeError, Exception)
    assert set(ir_bridge.__all__) == {"HAS_CPP_BINDINGS", "cpp", "IRBridgeError", "workload_to_ir",
                                      "workload_to_codegen_ir", "module_to_string", "parse_ir_string"}


@pytest.mark.skipif(not HAS_CPP_BINDINGS, reason="C++ bindings not available")
def test_reference_style_test_skips():  # the reference's tests/test_integration.py guards every test this way
    raise AssertionError("never runs: HAS_CPP_BINDINGS is False")


@pytest.mark.parametrize("call, name", [
    (lambda: workload_to_ir(task("k", [], [])), "workload_to_ir(workload)"),
    (lambda: workload_to_ir(task("k", [], []), "main"), "workload_to_ir(workload)"),
    (lambda: workload_to_codegen_ir(task("k", [], [])), "workload_to_codegen_ir(workload)"),
    (lambda: module_to_string(object()), "module_to_string(module)"),
    (lambda: parse_ir_string("module main {}"), "parse_ir_string(text)"),
])
def test_bridge_functions_raise_naming_what_to_use(call, name):
    with pytest.raises(IRBridgeError) as e:
        call()
    assert e.value.what == (f"{name}: there is no C++ IR bridge in ptort_lab (HAS_CPP_BINDINGS is False, cpp is "
                            "None): it simulates the Python workload tree itself, with no C++ module to build, "
                            "print or parse.")
    assert e.value.hint.startswith("The workload tree is the IR here: read w.kind and w.children()")
    assert "w.compile().enumerate()" in e.value.hint and "k.trace().dump()" in e.value.hint


# -- tracing -----------------------------------------------------------------------------------------------------------
def test_trace_level_values_are_the_references():
    assert [(m.name, int(m)) for m in TraceLevel] == [("NONE", 0), ("SUMMARY", 1), ("TIMING", 2), ("FULL", 3)]
    assert TraceLevel.TIMING >= TraceLevel.SUMMARY


def test_trace_event_fields_and_durations():
    e = TraceEvent("k", "kernel", 1_000, 3_500_000)
    assert (e.task_id, e.thread_id, e.metadata) == (None, None, {})
    assert e.duration_us == 3499.0 and e.duration_ms == 3.499
    assert TraceEvent("k", "task", 0, 1, task_id=4, thread_id=2, metadata={"a": 1}).metadata == {"a": 1}


def test_execution_trace_is_the_run_trace():
    assert ExecutionTrace is Trace
    for name in ("summary", "print_summary", "to_chrome_trace"):
        assert callable(getattr(ExecutionTrace, name))


def _program() -> Program:
    return task("k", [], [], cycles=5).compile()


def test_tracing_switches_return_the_program_and_set_the_level():
    p = _program()
    assert p.trace_level is TraceLevel.FULL  # every run keeps its trace from compile() on
    assert p.disable_tracing() is p and p.trace_level is TraceLevel.NONE
    assert p.enable_tracing() is p and p.trace_level is TraceLevel.TIMING  # the reference's default level
    assert p.enable_tracing(TraceLevel.SUMMARY).trace_level is TraceLevel.SUMMARY
    assert p.enable_tracing(3).trace_level is TraceLevel.FULL
    assert p.enable_tracing(TraceLevel.NONE).trace_level is TraceLevel.NONE


@pytest.mark.parametrize("level", [True, 4, -1, "TIMING", 2.0, None])
def test_enable_tracing_refuses_what_is_not_a_level(level):
    p = _program()
    with pytest.raises(PtortTypeError, match=r"^program.enable_tracing\(level\) takes a TraceLevel, got "):
        p.enable_tracing(level)
    assert p.trace_level is TraceLevel.FULL


def test_disable_tracing_runs_keep_no_trace_but_the_same_stats():
    p = _program()
    full = p.execute().stats.total_cycles
    p.disable_tracing().execute()
    assert p.stats.total_cycles == full and p.stats.task_count == 1
    with pytest.raises(PtortValueError, match=r"^program.trace is not available: the last run at .* kept no trace, "
                                              r"since program.disable_tracing\(\) turned tracing off") as e:
        p.trace  # noqa: B018
    assert e.value.hint.startswith("Call program.enable_tracing()")
    p.execute(keep_trace=True)  # one run may still ask for its trace
    assert len(p.trace.spans) == 1
    p.enable_tracing().execute()
    assert len(p.trace.spans) == 1 and [t.kernel for t in p.tasks] == ["k"]


def test_execute_keep_trace_false_still_names_itself():
    p = _program().execute(keep_trace=False)
    with pytest.raises(PtortValueError, match=r"kept no trace \(execute\(keep_trace=False\) at "):
        p.trace  # noqa: B018


def test_clear_trace_drops_the_last_runs_trace_and_keeps_its_stats():
    p = _program()
    assert p.clear_trace() is None  # before any run: nothing to clear
    p.execute()
    cycles = p.stats.total_cycles
    assert p.clear_trace() is None
    assert p.stats.total_cycles == cycles
    for api in ("trace", "tasks"):
        with pytest.raises(PtortValueError, match=rf"^program.{api} is not available: program.clear_trace\(\) at "
                                                  r".* dropped the last run's trace.") as e:
            getattr(p, api)
        assert e.value.hint.startswith("Run program.execute() again for a new trace")
    p.execute()
    assert len(p.trace.spans) == 1


# -- DispatchPolicy.num_aicpus -----------------------------------------------------------------------------------------
def test_num_aicpus_is_num_cores_read_only():
    assert DispatchPolicy.round_robin(4).num_aicpus == 4
    assert DispatchPolicy.affinity(lambda t: 0).num_aicpus == 0
    assert DispatchPolicy.dispatch_by(lambda t: 0, 3).num_aicpus == 3
    with pytest.raises(AttributeError):
        DispatchPolicy.round_robin(4).num_aicpus = 2


# -- TaskWindow: the reference's units and modes build; only tasks+STALL runs ---------------------------------------
@pytest.mark.parametrize("unit", ["tasks", "bytes", "entries"])
@pytest.mark.parametrize("mode", list(WindowMode))
def test_task_window_builds_every_reference_unit_and_mode(unit, mode):
    w = TaskWindow(16, unit, mode)
    assert (w.size, w.unit, w.mode) == (16, unit, mode)
    assert w.simulated is (unit == "tasks" and mode is WindowMode.STALL)
    assert TaskWindow(size=16, unit=unit, mode=mode) == w


def test_task_window_unknown_unit_as_the_reference():
    with pytest.raises(PtortValueError) as e:
        TaskWindow(10, "pages")
    assert isinstance(e.value, ValueError) and e.value.what == "Invalid unit: pages"
    assert e.value.hint == ("Use unit='tasks', the only unit simulated: TaskWindow(10, 'tasks') ('bytes' "
                            "and 'entries', the reference's other units, build but cannot run).")


def test_unsimulated_window_refused_at_compile():
    w = task("k", [], [], cycles=5).task_graph(window=TaskWindow(4096, "tasks", WindowMode.ABORT))
    assert w.schedule.window.mode is WindowMode.ABORT  # recorded as given
    with pytest.raises(PtortValueError) as e:
        w.compile()
    assert e.value.what == ("compile(): the workload's TaskWindow(4096, 'tasks', WindowMode.ABORT) is not "
                            "simulated: only unit='tasks' with mode=WindowMode.STALL caps the tasks in flight, and "
                            "mode WindowMode.ABORT has no model here.")
    assert e.value.hint == ("Use TaskWindow(4096, 'tasks') (mode STALL) for at most 4096 tasks in flight, or drop "
                            "window= for no cap (the reference runs other units and modes with no window).")


def test_unsimulated_window_refused_by_a_run_started_another_way():
    from ptort_lab.sim.cost_model import PinnedCosts
    from ptort_lab.sim.runner import RunOptions, simulate
    w = task("k", [], [], cycles=5).task_graph(window=TaskWindow(2, "bytes"))
    with pytest.raises(PtortValueError, match=r"^execute\(\): the workload's TaskWindow\(2, 'bytes', "
                                              r"WindowMode.STALL\) is not simulated: .*unit 'bytes' has no model"):
        simulate(w, PinnedCosts(), RunOptions())


def test_simulated_window_and_default_config_window_still_run():
    assert TaskGraphConfig().window.simulated
    w = task("k", [], [], cycles=5).task_graph(window=TaskWindow(1, "tasks", WindowMode.STALL))
    assert w.compile().execute().stats.task_count == 1
