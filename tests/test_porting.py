"""Porting from PTO-WSP v9 (issue 17): the reference's public forms, written as its own tests write them, run here.

Each test copies the reference's usage (tests/test_python_frontend.py and tests/test_e2e.py at PTO-WSP cca3172)
through ``import ptort_lab.compat as pto_wsp``, and checks real behaviour: values against numpy, task counts and
cycles worked out by hand, and the exact text of the errors kept where the reference is looser.
"""
from __future__ import annotations

import numpy as np
import pytest

import ptort_lab.compat as pto_wsp
from ptort_lab import PtortTypeError, PtortValueError
from ptort_lab.compat import (
    Channel,
    Constexpr,
    Dense,
    DenseDyn,
    DispatchPolicy,
    DType,
    In,
    InOut,
    KernelRef,
    OpKind,
    Out,
    P,
    PinnedCosts,
    TaskGraphConfig,
    TaskWindow,
    Tensor,
    Tile,
    TypeChecker,
    TypeErrorKind,
    Value,
    WindowMode,
    combine,
    connect,
    consume,
    for_each,
    kernel,
    parallel_for,
    process,
    select,
    send,
    task,
    tl,
    workload,
)
from ptort_lab.errors import UserCodeError

F16, F32 = DType.F16, DType.F32


# -- 1. shape-generic kernel parameters ------------------------------------------------------------------------------
def test_kernel_with_tensor_annotations_is_a_kernel_ref():
    @kernel
    def my_kernel(x: In[Tensor], y: Out[Tensor]):
        pass

    @kernel
    def typed_kernel(a: In[Tensor], b: Out[Tensor], c: Constexpr[int]):
        pass

    assert isinstance(my_kernel, KernelRef)
    assert my_kernel.name == "my_kernel"
    assert "a" in typed_kernel.signature and "b" in typed_kernel.signature and "c" in typed_kernel.signature
    assert typed_kernel.shaped_params == ["a", "b"]


def test_tensor_parameters_take_each_launch_shape_and_dtype():
    """One In[Tensor] kernel launched on f32 8x16 and f16 4x4 tiles: traced once per shape, values as numpy."""
    @kernel
    def scale(x: In[Tensor], y: Out[Tensor]):
        tl.store(y, tl.mul(x, 2.0))

    a = np.arange(2 * 8 * 16, dtype=np.float32).reshape(2, 8, 16)
    b = np.linspace(-1, 1, 3 * 4 * 4).astype(np.float16).reshape(3, 4, 4)
    A, B = Tensor(data=a), Tensor(data=b)
    YA, YB = Tensor(shape=a.shape, dtype=F32), Tensor(shape=b.shape, dtype=F16)

    @workload
    def both():
        for i in P(Dense[2]()):
            scale[i](x=A[i], y=YA[i])
        for j in P(Dense[3]()):
            scale[j](x=B[j], y=YB[j])

    program = both().compile()
    program.execute()
    np.testing.assert_array_equal(YA.data, a * 2)
    np.testing.assert_array_equal(YB.data, b * np.float16(2))
    irs = {t.kernel_ref.ir_for(t.resources) for t in program.tasks}
    assert len(irs) == 2  # one trace per distinct (shape, dtype), shared by the tasks
    assert sorted(str(ir.params[0].type) for ir in irs) == ["f16[4,4]", "f32[8,16]"]
    assert scale.trace(x=Tile[8, 16, F32], y=Tile[8, 16, F32]) in irs


def test_unannotated_parameters_are_shaped_by_the_launch_and_read_and_written():
    """The reference's `def attn(Q, K, V, O)`: each parameter is shaped by its argument; without a direction it is
    taken as read and written (InOut), so a task writing it may not be overlapped with its readers."""
    @kernel
    def axpy(x, y):
        tl.store(y, tl.add(tl.mul(x, 3.0), y))

    x = np.ones((2, 4, 4), np.float32)
    y = np.full((2, 4, 4), 5.0, np.float32)
    X, Y = Tensor(data=x), Tensor(data=y.copy())
    assert axpy.signature["y"][0].value == "InOut" and axpy.signature["x"][0].value == "InOut"
    parallel_for(Dense[2](), lambda t: axpy[t](X[t], Y[t])).compile().execute()
    np.testing.assert_array_equal(Y.data, 3 * x + y)


def test_a_tile_annotation_still_checks_the_argument():
    """The strict check kept: a Tile[...] annotation that disagrees with the argument's shape is a SHAPE_MISMATCH."""
    @kernel
    def fixed(x: In[Tile[8, 8, F32]], y: Out[Tensor]):
        tl.store(y, x)

    X, Y = Tensor(shape=(2, 8, 4), dtype=F32), Tensor(shape=(2, 8, 4), dtype=F32)

    @workload
    def bad():
        for t in P(Dense[2]()):
            fixed[t](X[t], Y[t])

    w = bad()
    assert [e.kind for e in w.type_errors] == [TypeErrorKind.SHAPE_MISMATCH]
    assert w.type_errors[0].message.startswith("Kernel 'fixed' parameter 'x' expects a 8x8 tile, got ")


def test_a_tensor_parameter_needs_a_two_d_tile():
    @kernel
    def copy(x: In[Tensor], y: Out[Tensor]):
        tl.store(y, x)

    X = Tensor(shape=(2, 8, 8), dtype=F32)

    @workload
    def whole():
        copy(x=X, y=X)

    errors = whole().type_errors
    assert [e.kind for e in errors] == [TypeErrorKind.SHAPE_MISMATCH] * 2
    assert errors[0].message == ("Kernel 'copy' parameter 'x' (In[Tensor]) is shaped by its argument, a 2-D tile, but "
                                 "Tensor(f32[2, 8, 8]) has shape (2, 8, 8).")
    with pytest.raises(PtortTypeError, match=r"kernel 'copy' parameter 'x' \(In\[Tensor\]: shaped by its argument\) "
                                             r"has no shape to trace with\."):
        copy.trace()


def test_the_reference_type_check_forms():
    """tests/test_python_frontend.py TestWorkloadTypeCheckIntegration, as written there."""
    @kernel
    def valid_kernel(x: In[Tensor], y: Out[Tensor]):
        pass

    t1 = Tensor(data=None, shape=(16, 32), dtype=DType.F16)
    t2 = Tensor(data=None, shape=(16, 32), dtype=DType.F16)

    @workload
    def valid_workload():
        valid_kernel(x=t1, y=t2)

    assert not valid_workload().has_type_errors()

    @kernel
    def indexed_kernel(q: In[Tensor], k: In[Tensor]):
        pass

    batch = Dense[4]()
    q = Tensor(data=None, shape=(4, 64), dtype=DType.F16)
    k = Tensor(data=None, shape=(4, 64), dtype=DType.F16)

    @workload
    def indexed_workload():
        for b in P(batch):
            indexed_kernel[b](q=q, k=k)

    assert not indexed_workload().has_type_errors()

    @kernel
    def my_kernel(a: In[Tensor], b: In[Tensor]):
        pass

    @workload
    def bad_workload():
        my_kernel(a=None)  # missing b

    errors = bad_workload().type_errors
    assert [e.kind for e in errors] == [TypeErrorKind.ARITY_MISMATCH]
    assert errors[0].message == "Kernel 'my_kernel' expects 2 args, got 1: missing argument 'b'."

    @workload
    def workload_arity_mismatch():
        my_kernel(a=None, b=None, z=None)

    assert [e.message for e in workload_arity_mismatch().type_errors] == ["Kernel 'my_kernel' has no parameter 'z'."]

    @workload(type_check=False)
    def no_check_workload():
        my_kernel()

    assert not no_check_workload().has_type_errors()

    @workload(type_check=True, fail_on_type_error=True)
    def fail_workload():
        my_kernel()

    with pytest.raises(TypeError, match="Type errors in workload 'fail_workload'"):
        fail_workload()


def test_a_kernel_is_traced_by_calling_it_with_value_tiles():
    @kernel
    def rowscale(x: In[Tensor], y: Out[Tensor]):
        tl.store(y, tl.mul(x, tl.rowmax(x)))

    ir = rowscale(x=Value.tile(32, 128, DType.F32), y=Value.tile(32, 128, DType.F32))
    assert [str(p.type) for p in ir.params] == ["f32[32,128]", "f32[32,128]"]
    assert [op.kind for op in ir.ops] == [OpKind.RowMax, OpKind.Mul, OpKind.Store]
    assert rowscale(Value.tile(32, 128, DType.F32), Value.tile(32, 128, DType.F32)) is ir  # cached per shape

    @kernel
    def fixed(x: In[Tile[32, 128, F16]], y: Out[Tile[32, 128, F16]]):
        tl.store(y, x)

    assert fixed(x=Value.tile(32, 128), y=Value.tile(32, 128)) is fixed.trace()
    with pytest.raises(PtortTypeError, match=r"kernel 'fixed' parameter 'x' is f16\[32,128\], but it was called "
                                             r"with f16\[16,128\]\."):
        fixed(x=Value.tile(16, 128), y=Value.tile(32, 128))


# -- 2. string-named abstract tasks ----------------------------------------------------------------------------------
def test_a_string_task_runs_as_an_abstract_task_of_one_cycle():
    """tests/test_e2e.py test_simple_task_execution, plus its timing: no cycles= costs ABSTRACT_TASK_CYCLES = 1."""
    w = task("simple", [0], [])
    program = w.compile(target="cpu_sim")
    assert program is not None
    assert program.stats.compile_time_ms >= 0
    program.execute()
    program.synchronize()
    assert program.is_complete()
    assert program.stats.task_count == 1
    assert program.stats.total_cycles == 1
    assert [(s.name, s.index, s.start, s.end) for s in program.trace.spans] == [("simple", 0, 0, 1)]
    pinned = task("simple", [0], [], cycles=40).compile()
    assert pinned.execute().stats.total_cycles == 40


def test_string_tasks_in_loops_count_and_time():
    """test_parallel_for_enumeration / test_nested_parallel_for / test_combine_workloads: the task counts; one core
    runs the 8 one-cycle tasks back to back, round_robin(4) four at a time."""
    batch = DenseDyn(8)
    w = parallel_for(batch, lambda b: task("process", [b], []))
    program = w.compile(target="cpu_sim")
    program.execute()
    assert program.stats.task_count == 8
    assert program.stats.total_cycles == 8
    assert [(s.name, s.index, s.start) for s in program.trace.spans] == [("process", b, b) for b in range(8)]
    assert w.dispatch(DispatchPolicy.round_robin(4)).compile().execute().stats.total_cycles == 2

    @workload
    def nested_workload(batch, heads):
        for b in P(batch):
            for h in P(heads):
                task("attn", [b, h], [])

    nested = nested_workload(DenseDyn(4), Dense[2]()).compile(target="cpu_sim")
    assert nested.execute().stats.task_count == 8
    assert [t.params for t in nested.tasks][:3] == [[0, 0], [0, 1], [1, 0]]
    combined = combine(task("kernel_a", [], []), task("kernel_b", [], []), task("kernel_c", [], [])).compile()
    assert [t.kernel for t in combined.execute().tasks] == ["kernel_a", "kernel_b", "kernel_c"]


def test_string_tasks_run_in_a_pipeline():
    """A loader sends 4 one-cycle abstract loads; the consumer's 10-cycle abstract tasks are the bottleneck: with no
    hop latency it starts at cycle 1 and runs back to back, so the makespan is 1 + 4 * 10 = 41."""
    ch = Channel("ch", depth=2)
    loader = process("loader").produces(ch).body(for_each(Dense[4](), lambda t: send(ch, task("load", [t], []))))
    computer = process("compute").consumes(ch).body(consume(ch, lambda t: task("process", [t], [], cycles=10)))
    program = connect([loader, computer], [ch]).compile(channel_latency_cycles=0)
    program.execute()
    assert program.stats.total_cycles == 41
    spans = [(s.lane, s.name, s.index, s.start, s.end) for s in program.trace.spans if s.lane == "compute"]
    assert spans == [("compute", "process", t, 1 + 10 * t, 11 + 10 * t) for t in range(4)]
    assert sorted(t.kernel for t in program.tasks) == ["load"] * 4 + ["process"] * 4


def test_the_reference_pipeline_without_consume_is_refused_by_the_wiring_check():
    """tests/test_e2e.py test_process_pipeline declares `.consumes(ch)` but never consumes: a stricter check kept."""
    ch = Channel("pipe", depth=2)
    loader = process("loader").produces(ch).body(task("load", [], []))
    computer = process("computer").consumes(ch).produces(Channel("out", depth=2)).body(task("compute", [], []))
    with pytest.raises(pto_wsp.PipelineError, match="process 'computer' declares it consumes channel 'pipe' but its "
                                                    "body never consumes it"):
        connect([loader, computer], [ch]).compile(target="cpu_sim")


def test_send_outside_a_pipeline_runs_its_task():
    """tests/test_e2e.py test_channel_send: the send's task runs (nobody receives the token); a bare token does not."""
    ch = Channel("data", depth=2)
    w = send(ch, task("produce", [], []))
    program = w.compile(target="cpu_sim")
    program.execute()
    program.synchronize()
    assert program.stats.task_count == 1
    assert [t.kernel for t in w.enumerate()] == ["produce"]
    with pytest.raises(pto_wsp.DSLUsageError, match="send/consume/record/synchronize steps only run inside the "
                                                    "processes of a pipeline"):
        send(ch, 3).enumerate()


# -- 3. positional and placeholder launch arguments ------------------------------------------------------------------
def test_none_placeholders_make_abstract_launches():
    """TestIntegration.test_attention_workload: `attention[b, h](None, None, None, None)` lists one abstract task per
    (b, h), named after the kernel, run as ABSTRACT_TASK_CYCLES each."""
    @kernel
    def attention(Q: In[Tensor], K: In[Tensor], V: In[Tensor], O: Out[Tensor]):  # noqa: E741 - the reference's
        pass

    @workload
    def multi_head_attention(batch, heads):
        for b, h in P(batch, heads):
            attention[b, h](None, None, None, None)

    w = multi_head_attention(DenseDyn(4), Dense[8]())
    tasks = w.enumerate()
    assert len(tasks) == 32 and tasks[9].kernel == "attention" and tasks[9].params == [1, 1]
    program = w.dispatch(DispatchPolicy.round_robin(4)).compile()
    assert program.execute().stats.total_cycles == 8

    @kernel
    def compute(x: In[Tensor], y: Out[Tensor]):
        pass

    @workload
    def process_(batch):
        for b in P(batch):
            compute[b](None, None)

    assert process_(DenseDyn(4)).compile(target="cpu_sim").execute().stats.task_count == 4


def test_positional_arguments_bind_in_parameter_order():
    @kernel
    def attn(q: In[Tensor], k: In[Tensor], v: In[Tensor], o: Out[Tensor]):
        s = tl.matmul(q, tl.transpose(k))
        tl.store(o, tl.matmul(s, v))

    rng = np.random.default_rng(0)
    q, k, v = (rng.standard_normal((2, 2, 8, 8)).astype(np.float32) for _ in range(3))
    Q, K, V, Out_ = Tensor(data=q), Tensor(data=k), Tensor(data=v), Tensor(shape=(2, 2, 8, 8), dtype=F32)

    @workload
    def heads():
        for b, h in P(Dense[2](), Dense[2]()):
            attn[b, h](Q[b, h], K[b, h], V[b, h], Out_[b, h])

    heads().compile().execute()
    np.testing.assert_allclose(Out_.data, q @ k.transpose(0, 1, 3, 2) @ v, rtol=1e-5, atol=1e-5)


def test_a_launch_mixing_none_and_tensors_is_refused():
    @kernel
    def copy(x: In[Tensor], y: Out[Tensor]):
        tl.store(y, x)

    X = Tensor(shape=(2, 4, 4), dtype=F32)

    @workload
    def half():
        for t in P(Dense[2]()):
            copy[t](X[t], None)

    errors = half().type_errors
    assert len(errors) == 1 and errors[0].kind is TypeErrorKind.TYPE_MISMATCH  # (the loop body is built once)
    assert errors[0].message == ("Kernel 'copy' is launched with y None (unbound) but x bound; a launch binds every "
                                 "parameter (the kernel runs) or none (an abstract task that computes nothing).")
    assert errors[0].hint.startswith("Pass a tensor view for y, or None for every parameter")


# -- 4. the small spellings ------------------------------------------------------------------------------------------
def test_register_kernel_runs_python_callables_on_the_tasks():
    """tests/test_e2e.py test_kernel_with_implementation and test_kernel_with_actual_computation."""
    results = []
    batch = DenseDyn(4)
    w = parallel_for(batch, lambda b: task("accumulate", [b], [b]))
    program = w.compile(target="cpu_sim")
    program.register_kernel("accumulate", results.append)
    program.execute()
    program.synchronize()
    assert results == [0, 1, 2, 3]
    assert program.stats.total_cycles == 4

    total = {"sum": 0}

    def add_impl(val):
        total["sum"] += val

    adds = parallel_for(DenseDyn(5), lambda b: task("add_kernel", [b], [b])).compile(target="cpu_sim")
    adds.register_kernel("add_kernel", add_impl)
    adds.execute()
    assert total["sum"] == 10


def test_a_host_kernel_writes_tensor_views_and_a_failed_run_undoes_them():
    X = Tensor(data=np.zeros((3, 2, 2), np.float32))

    def fill(view, b):
        view[...] = b + 1

    program = parallel_for(Dense[3](), lambda b: task("fill", [b], [X[b], b])).compile()
    program.register_kernel("fill", fill)
    program.execute()
    np.testing.assert_array_equal(X.data[:, 0, 0], [1, 2, 3])

    def fails_on_two(view, b):
        view[...] = -1
        if b == 2:
            raise ValueError("boom")

    again = parallel_for(Dense[3](), lambda b: task("fill", [b], [X[b], b])).compile()
    again.register_kernel("fill", fails_on_two)
    with pytest.raises(UserCodeError,
                       match=r"the kernel registered as 'fill' \(task 2, params \[2\]\) raised ValueError: boom"):
        again.execute()
    np.testing.assert_array_equal(X.data[:, 0, 0], [1, 2, 3])  # the failed run's writes are undone


def test_register_kernel_refuses_a_name_no_task_has():
    program = parallel_for(DenseDyn(2), lambda b: task("accumulate", [b], [b])).compile()
    with pytest.raises(PtortValueError) as e:
        program.register_kernel("acumulate", print)
    assert e.value.what == "register_kernel('acumulate', ...): no task of this program is named 'acumulate', so it " \
                           "would never run."
    assert e.value.hint == "Did you mean 'accumulate'? Its tasks named by string are accumulate."
    with pytest.raises(PtortTypeError, match=r"register_kernel\('accumulate', fn\): fn must be callable, got int 3"):
        program.register_kernel("accumulate", 3)


def test_type_checker_check_kernel_call():
    """TestTypeChecker.test_type_checker_kernel_call / _missing_argument / _arity_mismatch, as written there."""
    @kernel
    def my_kernel(a: In[Tensor], b: Out[Tensor]):
        pass

    checker = TypeChecker()
    assert checker.check_kernel_call(my_kernel, (), {"a": None, "b": None})
    checker = TypeChecker()
    assert not checker.check_kernel_call(my_kernel, (), {"a": None})
    assert checker.has_errors()
    assert [e.kind for e in checker.errors] == [TypeErrorKind.ARITY_MISMATCH]
    checker = TypeChecker()
    checker.check_kernel_call(my_kernel, (), {"a": None, "b": None, "c": None})
    assert any(e.kind == TypeErrorKind.ARITY_MISMATCH for e in checker.errors)
    X = Tensor(shape=(2, 4, 4), dtype=F32)
    assert TypeChecker().check_kernel_call(my_kernel, (X[0], X[1]), {})  # positional, bound in order


def test_stats_before_execute_know_only_the_compile_time():
    program = task("simple", [0], []).compile()
    assert program.stats.compile_time_ms >= 0 and program.stats.execute_time_ms == 0.0
    with pytest.raises(PtortValueError) as e:
        _ = program.stats.total_cycles
    assert e.value.what == "program.stats.total_cycles needs a run first: before execute() only compile_time_ms is " \
                           "known."


def test_task_graph_config_window():
    """TestTaskGraphPrimitives.test_task_graph_config_defaults (window part) and the window task_graph records."""
    config = TaskGraphConfig()
    assert config.window.size == 8192
    assert config.window.mode == WindowMode.STALL
    assert config.pools.kind == "single" and config.ready.kind == "fifo"
    w = task("kernel", [], []).task_graph(window=TaskWindow(4096, "tasks", WindowMode.STALL))
    assert w.schedule.graph.window.size == 4096 and w.schedule.window.size == 4096
    defaulted = task("kernel", [], []).task_graph()  # no window given: the reference's TaskWindow(8192), as there
    assert defaulted.schedule.graph.window == TaskWindow(8192) == defaulted.schedule.window
    aborting = task("kernel", [], []).task_graph(window=TaskWindow(4096, "tasks", WindowMode.ABORT))  # builds, as there
    with pytest.raises(PtortValueError, match=r"TaskWindow\(4096, 'tasks', WindowMode.ABORT\) is not simulated"):
        aborting.compile()  # the reference runs it with no window; ptort_lab refuses it when it reaches a run


def test_kernel_launch_kernel_ref_and_opkind_spellings():
    @kernel
    def indexed_kernel(x):
        tl.store(x, tl.exp(x))

    builder = indexed_kernel[1, 2]
    assert builder.axes == (1, 2)
    assert builder.kernel_ref is indexed_kernel
    assert OpKind.Mul is OpKind.MUL and OpKind.RowMean is OpKind.ROWMEAN and OpKind.Load is OpKind.LOAD
    assert [k.name for k in OpKind][:3] == ["LOAD", "STORE", "CAST"]  # iteration and printing unchanged
    ir = indexed_kernel(Value.tile(4, 4, F32))
    assert [op.kind for op in ir.ops] == [OpKind.Exp, OpKind.Store]


def test_a_second_execute_runs_again():
    """The reference's 96b0376 raised RuntimeError on a second execute(); its HEAD and ptort_lab run again (the
    notebooks and the explorer re-run programs), with the same result."""
    x = np.arange(16, dtype=np.float32).reshape(1, 4, 4)
    X, Y = Tensor(data=x), Tensor(shape=(1, 4, 4), dtype=F32)

    @kernel
    def double(a: In[Tensor], b: Out[Tensor]):
        tl.store(b, tl.add(a, a))

    program = parallel_for(Dense[1](), lambda t: double[t](X[t], Y[t])).compile()
    first = program.execute().stats.total_cycles
    assert program.execute().stats.total_cycles == first
    np.testing.assert_array_equal(Y.data, 2 * x)


def test_private_attribute_names_are_read_only_aliases():
    """The reference's tests read internals (w._kind, policy._kwargs, w._dispatch_policy): provided as read-only
    aliases of the public forms w.kind, policy.kind and w.schedule.dispatch (more: test_reference_private_round31)."""
    w = task("kernel", [], []).dispatch(DispatchPolicy.round_robin(4))
    policy = pto_wsp.ReadyPolicy.priority(lambda t: t.id)
    assert w._kind == w.kind == "task" and w._dispatch_policy is w.schedule.dispatch is not None
    assert w._kwargs["kernel"] == w.kernel == "kernel"
    assert policy._kind == policy.kind == "priority" and policy._kwargs["priority_fn"] is policy.fn
    for name in ("_kind", "_kwargs", "_dispatch_policy"):
        with pytest.raises(pto_wsp.DSLUsageError):
            setattr(w, name, None)
    for name in ("_kind", "_kwargs"):
        with pytest.raises(AttributeError):
            setattr(policy, name, None)


# -- 6. formatting a loop variable into a task name ------------------------------------------------------------------
def test_formatted_task_names_are_per_task():
    """tests/test_e2e.py test_enumerate_select: f"expert_{e}" names each task by its own e."""
    indices = [0, 2, 5]
    w = select(indices, lambda e: task(f"expert_{e}", [e], []))
    tasks = w.enumerate()
    assert len(tasks) == 3
    assert [t.kernel for t in tasks] == ["expert_0", "expert_2", "expert_5"]
    assert [t.kernel for t in select(indices, lambda e: task("expert_" + str(e), [e], [])).enumerate()] == \
        ["expert_0", "expert_2", "expert_5"]
    program = w.compile()
    assert [s.name for s in program.execute().trace.spans] == ["expert_0", "expert_2", "expert_5"]


# -- 7. the reduction dtype rule -------------------------------------------------------------------------------------
def test_the_reference_rmsnorm_pattern_raises_and_the_ported_one_matches_numpy():
    """F16 row reductions give F32 (as the reference's HEAD), and mixed dtypes raise: the reference's
    `mul(x, rsqrt(rowmean(x*x)))` on F16 needs a tl.cast here."""
    with pytest.raises(PtortTypeError) as e:
        @kernel
        def rmsnorm_ref(x: In[Tile[16, 16, F16]], out: Out[Tile[16, 16, F16]]):
            tl.store(out, tl.mul(x, tl.rsqrt(tl.rowmean(tl.mul(x, x)))))
    assert e.value.what == "tl.mul: operands have different dtypes: x (f16[16,16]) and f32[16,1]."
    assert e.value.hint == "Convert one with tl.cast(x, DType.F16) first."

    @kernel
    def rmsnorm(x: In[Tile[16, 16, F16]], out: Out[Tile[16, 16, F16]]):
        xf = tl.cast(x, F32)
        tl.store(out, tl.cast(tl.mul(xf, tl.rsqrt(tl.rowmean(tl.mul(xf, xf)))), F16))

    x = np.random.default_rng(1).standard_normal((2, 16, 16)).astype(np.float16)
    X, Y = Tensor(data=x), Tensor(shape=(2, 16, 16), dtype=F16)
    parallel_for(Dense[2](), lambda t: rmsnorm[t](X[t], Y[t])).compile().execute()
    xf = x.astype(np.float32)
    expect = (xf / np.sqrt((xf * xf).mean(axis=-1, keepdims=True))).astype(np.float16)
    np.testing.assert_allclose(Y.data.astype(np.float32), expect.astype(np.float32), rtol=2e-3, atol=2e-3)


# -- 8. the compat module --------------------------------------------------------------------------------------------
def test_the_compat_module_has_the_reference_names():
    assert pto_wsp.Layout is pto_wsp.TensorLayout and pto_wsp.LayoutShard is pto_wsp.TensorShard
    assert pto_wsp.layout_join is pto_wsp.tensor_layout_join
    assert pto_wsp.LayoutCompatibilityError is pto_wsp.LayoutIncompatibleError
    assert pto_wsp.KernelError is pto_wsp.KernelExecutionError and issubclass(pto_wsp.KernelError,
                                                                               pto_wsp.ExecutionError)
    assert pto_wsp.KernelRef is pto_wsp.Kernel and pto_wsp.pto is pto_wsp.tl
    a = pto_wsp.Layout((pto_wsp.LayoutReplicate(), pto_wsp.LayoutReplicate()))
    b = pto_wsp.Layout((pto_wsp.LayoutShard(0), pto_wsp.LayoutReplicate()))
    assert repr(pto_wsp.layout_join(a, b)) == "TensorLayout(S(0), R)"
    assert set(pto_wsp.__all__) >= {"workload", "kernel", "P", "Tensor", "Channel", "Layout", "KernelError"}
    for missing in ("npu", "ptoisa"):  # not provided: fails plainly at the import
        assert not hasattr(pto_wsp, missing)
    assert pto_wsp.Symbol("eps").name == "eps"  # a run-time symbol (set_symbol_f32), as in the reference's HEAD
    assert pto_wsp.MemLayout.row_major((4, 8)).strides == (8, 1)
    assert pto_wsp.types.MemLayout is pto_wsp.MemLayout and pto_wsp.types.relayout is pto_wsp.relayout


def test_a_reference_program_runs_through_the_compat_module():
    """A PTO-WSP style data-parallel program using only `pto_wsp.` names: values against numpy."""
    @pto_wsp.kernel
    def square(x: pto_wsp.In[pto_wsp.Tensor], y: pto_wsp.Out[pto_wsp.Tensor]):
        pto_wsp.pto.store(y, pto_wsp.pto.mul(x, x))

    x = np.arange(4 * 8 * 8, dtype=np.float32).reshape(4, 8, 8) / 100
    X, Y = pto_wsp.Tensor(data=x), pto_wsp.Tensor(data=None, shape=(4, 8, 8), dtype=pto_wsp.DType.F32)

    @pto_wsp.workload
    def tiles():
        for t in pto_wsp.P(pto_wsp.Dense[4]()):
            square[t](X[t], Y[t])

    program = tiles().dispatch(pto_wsp.DispatchPolicy.round_robin(4)).compile(target="cpu_sim")
    program.execute()
    program.synchronize()
    assert program.stats.task_count == 4 and program.is_complete()
    np.testing.assert_array_equal(Y.data, x * x)


def test_inout_direction_is_accepted_on_tensor():
    @kernel
    def acc(x: In[Tensor], y: InOut[Tensor]):
        tl.store(y, tl.add(y, x))

    X = Tensor(data=np.ones((1, 4, 4), np.float32))
    Y = Tensor(data=np.full((1, 4, 4), 2.0, np.float32))
    parallel_for(Dense[1](), lambda t: acc[t](X[t], Y[t])).compile(cost_model=PinnedCosts()).execute()
    np.testing.assert_array_equal(Y.data, np.full((1, 4, 4), 3.0, np.float32))
