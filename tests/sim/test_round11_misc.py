"""Round 11 fixes: the reference's ExecutionTrace.summary() / print_summary() on a run's Trace, the hint for a Python
callable called with the wrong arguments, ProgramStats == across identical runs, and a kernel's Tile[...] annotation
following a module global the way its body does. (No `from __future__ import annotations`: the kernels' annotations
here are evaluated by Python at their def, the common case; test_a_string_annotation_follows_its_global_too writes a
module with it.)"""
import textwrap

import pytest
from loaders import load_file

import ptort_lab.sim.trace as trace_module
from ptort_lab import (
    Channel,
    Dense,
    DType,
    PinnedCosts,
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
from ptort_lab.errors import UserCodeError
from ptort_lab.sim.trace import Span, Trace

F32 = DType.F32


# -- (A) Trace.summary() / print_summary() ---------------------------------------------------------------------------
@kernel(cycles=100)
def load_stage():
    """stub"""


@kernel(cycles=300)
def compute_stage():
    """stub"""


def two_stage_pipeline():
    """loader runs load_stage (100 cycles) on tokens 0..2 into a depth-2 channel; computer runs compute_stage (300)
    on each. By hand: loader [0,100) [100,200), then waits for a slot (the computer frees token 0's at 400),
    [400,500); computer is starved until 100, then [100,400) [400,700) [700,1000). Makespan 1000."""
    ch = Channel(name="ch", depth=2)
    loader = process("loader").produces(ch).body(for_each(Dense[3](), lambda i: send(ch, task(load_stage, [i], {}))))
    computer = process("computer").consumes(ch).body(consume(ch, lambda t: task(compute_stage, [t], {})))
    return connect(loader, computer).compile(cost_model=PinnedCosts()).execute()


def test_trace_summary_of_a_hand_worked_pipeline():
    program = two_stage_pipeline()
    assert sorted((s.process, s.start, s.end) for s in program.trace.spans) == [
        ("computer", 100, 400), ("computer", 400, 700), ("computer", 700, 1000),
        ("loader", 0, 100), ("loader", 100, 200), ("loader", 400, 500)]
    loader = {"spans": 3, "tasks": 3, "busy_cycles": 300, "first_start": 0, "last_end": 500}
    computer = {"spans": 3, "tasks": 3, "busy_cycles": 900, "first_start": 100, "last_end": 1000}
    summary = program.trace.summary()
    assert summary == {
        "mode": "pipeline", "makespan": 1000, "makespan_us": program.trace.makespan_us, "spans": 6, "tasks": 6,
        "by_name": {"load_stage": loader, "compute_stage": computer},
        "by_process": {"loader": loader, "computer": computer},
    }
    assert list(summary["by_process"]) == ["loader", "computer"]  # the pipeline's processes, in order
    assert program.trace().summary() == summary  # (program.trace() is the same Trace)


def test_trace_print_summary_of_a_hand_worked_pipeline(capsys):
    two_stage_pipeline().trace.print_summary()
    assert capsys.readouterr().out == textwrap.dedent("""\
        pipeline trace: 6 spans, 6 tasks, makespan 1,000 cycles = 0.556 us at 1.8 GHz
          process           spans  tasks  busy cycles   busy%  first start   last end
          loader                3      3          300    30.0            0        500
          computer              3      3          900    90.0          100      1,000
          name              spans  tasks  busy cycles   busy%  first start   last end
          load_stage            3      3          300    30.0            0        500
          compute_stage         3      3          900    90.0          100      1,000
        """)


def test_trace_summary_counts_overlapping_spans_once_and_a_span_without_process_by_its_lane():
    """a: [0,10) and [5,20) overlap (busy 20, not 25), then [30,40): busy 30. b has no process: grouped by its
    lane 'V', as stats() groups stages; a task id of -1 (a hand-made span) is no task."""
    trace = Trace(spans=[Span(0, "MTE2", "a", 0, 0, 10, process="p", task_id=0),
                         Span(0, "V", "b", 0, 12, 14),
                         Span(0, "V", "a", 1, 5, 20, process="p", task_id=0),
                         Span(1, "MTE2", "a", 2, 30, 40, process="p", task_id=1)], mode="data-parallel")
    summary = trace.summary()
    assert (summary["makespan"], summary["spans"], summary["tasks"]) == (40, 4, 2)
    assert summary["by_name"] == {
        "a": {"spans": 3, "tasks": 2, "busy_cycles": 30, "first_start": 0, "last_end": 40},
        "b": {"spans": 1, "tasks": 0, "busy_cycles": 2, "first_start": 12, "last_end": 14}}
    assert summary["by_process"] == {
        "p": {"spans": 3, "tasks": 2, "busy_cycles": 30, "first_start": 0, "last_end": 40},
        "V": {"spans": 1, "tasks": 0, "busy_cycles": 2, "first_start": 12, "last_end": 14}}
    assert Trace().summary() == {"mode": "pipeline", "makespan": 0, "makespan_us": 0.0, "spans": 0, "tasks": 0,
                                 "by_name": {}, "by_process": {}}


def test_trace_summary_reads_a_compact_trace_without_building_its_spans(monkeypatch):
    """A run's spans are columns: the summary reads the columns (building millions of Span tuples would cost more
    than the run), and gives what the same spans in a list give."""
    program = two_stage_pipeline()
    spans = program.trace.spans
    assert isinstance(spans, trace_module.SpanColumns)
    as_list = Trace(spans=list(spans), processes=list(program.trace.processes), mode="pipeline").summary()

    def refuse(self):
        raise AssertionError("summary() built the spans")

    monkeypatch.setattr(trace_module.RecordColumns, "_records", refuse)
    assert program.trace.summary() == as_list


# -- (B) the hint for a Python callable called with the wrong arguments ----------------------------------------------
class _Task:
    id, kernel, params, loc = 0, "k", (0,), None


takes_nothing = lambda: 0  # noqa: E731 - a module-level lambda: Python names it <lambda>() on every version


def test_a_python_callable_called_with_the_wrong_arguments_is_not_called_a_builtin():
    """The call of the lambda fails in ptort_lab's frame (none of its lines ran): the hint says so, and does not
    call it "a builtin or C function"."""
    from ptort_lab.sim.placement import vector_unit_of

    with pytest.raises(UserCodeError) as ei:
        vector_unit_of(_Task(), takes_nothing, 2, "m")
    assert ei.value.what == ("the vector_unit() function (for task 0, k(0,)) raised TypeError: <lambda>() takes 0 "
                             "positional arguments but 1 was given")
    assert ei.value.hint == ("The call of <lambda>() itself failed, before any of its lines ran: its parameters do "
                             "not match the arguments it was called with (see the TypeError above). Define it with "
                             "the parameters the API passes it.")
    with pytest.raises(UserCodeError) as ei:  # a builtin keeps its own wording
        vector_unit_of(_Task(), divmod, 2, "m")
    assert ei.value.hint.startswith("It was raised by the callable itself (a builtin or C function")


# -- (C) ProgramStats == compares what was simulated -----------------------------------------------------------------
def test_two_identical_runs_give_equal_stats_and_a_lean_run_equals_a_full_one():
    """docs/howto/long_runs.md: a keep_trace=False run's stats() are the full run's figures, "equal with ==";
    the wall-clock compile/execute times differ from run to run and are left out of ==."""
    program = two_stage_pipeline()
    full = program.stats()
    again = program.execute().stats()
    lean = program.execute(keep_trace=False).stats()
    again.execute_time_ms = full.execute_time_ms + 1.0  # (as a slower host would measure)
    assert full == again
    assert lean == full
    assert full.total_cycles == 1000


# -- review 11 #1: kernels made in a loop over a module-level variable keep their own shapes ---------------------------
def test_kernels_made_in_a_module_level_loop_keep_the_shapes_they_were_made_with(tmp_path):
    """(A first fix of hunt11b #3 evaluated the annotations again when a global they read changed: every kernel a
    module-level loop made then took the loop's last size.)"""
    src = tmp_path / "loop_kernels.py"
    src.write_text(textwrap.dedent("""
        import numpy as np
        from ptort_lab import DType, In, Out, Tensor, Tile, kernel, tl, workload
        F32 = DType.F32
        kernels = {}
        for n in (16, 32):
            @kernel(name=f"double{n}")
            def double(x: In[Tile[n, n, F32]], y: Out[Tile[n, n, F32]]):
                tl.store(y, tl.muls(tl.load(x), 2.0))
            kernels[n] = double
        results = {}
        for n, k in kernels.items():
            X = Tensor(data=np.ones((1, n, n), np.float32)); Y = Tensor(data=np.zeros((1, n, n), np.float32))
            @workload
            def w():
                k[0](x=X[0], y=Y[0])
            w().compile().execute()
            results[n] = float(Y.data.sum())
    """))
    module = load_file("ptort_round11_loop_kernels", src)
    assert module.results == {16: 2.0 * 16 * 16, 32: 2.0 * 32 * 32}


# -- hunt11b #2: a matmul whose whole K fits L0 runs as one K slice ----------------------------------------------------
def _matmul_run(M: int, K: int, N: int):
    from ptort_lab import kernel
    from ptort_lab.dsl.types import DType, In, Out

    @kernel(name="mm")
    def mm(a: In[Tile[M, K, DType.F16]], b: In[Tile[K, N, DType.F16]], y: Out[Tile[M, N, DType.F32]]):
        tl.store(y, tl.matmul(tl.load(a), tl.load(b)))
    A = Tensor(shape=(1, M, K), dtype=DType.F16, name="A")
    B = Tensor(shape=(1, K, N), dtype=DType.F16, name="B")
    Y = Tensor(shape=(1, M, N), dtype=DType.F32, name="Y")

    @workload
    def w():
        mm[0](a=A[0], b=B[0], y=Y[0])
    return w().compile(compute_values=False).execute()


def test_a_matmul_costs_no_less_when_k_grows_and_a_k_that_fits_is_one_slice():
    """K = 48 used to run as 32 + 16 (the largest power-of-two slice), costing more than K = 49 taken whole."""
    cycles = [_matmul_run(64, k, 64).stats().total_cycles for k in (16, 32, 47, 48, 49, 50, 64, 80, 96, 112, 128)]
    assert cycles == sorted(cycles)
    cube = [s for s in _matmul_run(128, 48, 128).trace().spans if s.lane == "AIC.CUBE"]
    # one slice: 6 + ceil(128/16) * ceil(128/16) * ceil(48/16) = 6 + 192 cycles (NPU_MODEL §3.4, M idle)
    assert [(s.name, s.end - s.start) for s in cube] == [("matmul", 198)]
