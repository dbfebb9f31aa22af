"""PTOWSP_V9_API.md section 8, acceptance candidates A1-A5, A9 and A10, as literally as our spec allows."""
import inspect

import numpy as np
import pytest

from ptort_lab import (
    Channel,
    Dense,
    DenseDyn,
    DispatchPolicy,
    DType,
    Event,
    In,
    LayoutIncompatibleError,
    Out,
    P,
    Process,
    PtortTypeError,
    Ragged,
    Sparse,
    Tensor,
    TensorLayout,
    TensorReplicate,
    TensorShard,
    Tile,
    TimingPolicy,
    TypeChecker,
    TypeErrorKind,
    connect,
    consume,
    for_each,
    kernel,
    process,
    query,
    record,
    send,
    synchronize,
    task,
    tensor_layout_join,
    tl,
    try_send,
    validate_axis_index,
    workload,
)


# -- A1 -----------------------------------------------------------------------------------------------------------
@pytest.fixture
def a1_tasks(spec_kernels, spec_data):
    """The spec's data-parallel twin over Dense[8], enumerated."""
    k, d = spec_kernels, spec_data
    tiles = Dense[8]()

    @workload
    def dp():
        for t in P(tiles):
            k.load[t](src=d.X[t], dst=d.T[t])
            k.compute[t](input_tile=d.T[t], output_tile=d.T[t])
            k.store[t](src=d.T[t], dst=d.Y[t])

    return dp


def test_a1_twin_has_24_tasks(a1_tasks):
    """A1: the data-parallel twin enumerates 24 tasks."""
    assert len(a1_tasks().enumerate()) == 24


def test_a1_counts_per_kernel_in_first_seen_order(a1_tasks):
    """A1: 8 tasks per kernel, keys in first-seen order load, compute, store."""
    counts: dict[str, int] = {}
    for t in a1_tasks().enumerate():
        counts[t.kernel] = counts.get(t.kernel, 0) + 1
    assert list(counts.items()) == [("load_kernel", 8), ("compute_kernel", 8), ("store_kernel", 8)]


def test_a1_program_order_params_ids_bindings(a1_tasks):
    """A1: ts[0..2] are load/compute/store with params [0]; ts[3].params == [1]; ids 0..23; bindings {'b': t}."""
    ts = a1_tasks().enumerate()
    assert [t.kernel for t in ts[:3]] == ["load_kernel", "compute_kernel", "store_kernel"]
    assert [t.params for t in ts[:3]] == [[0], [0], [0]]
    assert ts[3].params == [1]
    assert [t.id for t in ts] == list(range(24))
    assert [t.bindings for t in ts] == [{"b": i // 3} for i in range(24)]


def test_a1_schedule_compiles_to_a_program(a1_tasks, spec_data):
    """A1: .dispatch(round_robin(4)).streams(2).timing(immediate).compile() returns a Program that runs."""
    program = a1_tasks().dispatch(DispatchPolicy.round_robin(4)).streams(2).timing(TimingPolicy.immediate).compile()
    assert type(program).__name__ == "Program"
    program.execute()
    assert np.array_equal(spec_data.Y.data, spec_data.expected)


def test_stats_and_trace_read_as_attributes_or_calls(a1_tasks, capsys):
    """The reference reads ``program.stats.total_cycles`` and ``program.trace.to_chrome_trace()``; the issue calls
    ``program.stats()`` and ``program.trace()``. Both forms give the same objects."""
    program = a1_tasks().dispatch(DispatchPolicy.round_robin(4)).compile().execute()
    assert program.stats is program.stats() and program.trace is program.trace()
    assert program.stats.total_cycles == program.stats().total_cycles > 0 and program.stats.task_count == 24
    assert program.trace.to_chrome_trace() == program.trace().to_chrome_json()
    program.stats.print_summary()
    assert capsys.readouterr().out == program.stats().summary() + "\n"


# -- A2 -----------------------------------------------------------------------------------------------------------
@pytest.fixture
def a2(spec_kernels, spec_data):
    """The reference-form spec pipeline with its channels and processes."""
    k, d = spec_kernels, spec_data
    tiles = Dense[8]()
    l2c = Channel[Tensor](name="load_to_compute", depth=2)
    c2s = Channel[Tensor](name="compute_to_store", depth=2)
    loader = process("loader").produces(l2c).body(
        for_each(tiles, lambda t: send(l2c, task(k.load, [t], {"src": d.X[t], "dst": d.T[t]}))))
    computer = process("computer").consumes(l2c).produces(c2s).body(
        consume(l2c, lambda t: send(c2s, task(k.compute, [t], {"input_tile": d.T[t], "output_tile": d.U[t]}))))
    storer = process("storer").consumes(c2s).body(
        consume(c2s, lambda t: task(k.store, [t], {"src": d.U[t], "dst": d.Y[t]})))
    pipeline = connect([loader, computer, storer], [l2c, c2s])
    return dict(l2c=l2c, c2s=c2s, loader=loader, computer=computer, storer=storer, pipeline=pipeline)


def test_a2_names_and_depths_print_as_in_readme(a2):
    """A2: the README's `load_to_compute (depth=2)` and `Processes: loader -> computer -> storer` lines."""
    p = a2["pipeline"]
    assert [f"{c.name} (depth={c.depth})" for c in p.channels] == ["load_to_compute (depth=2)",
                                                                     "compute_to_store (depth=2)"]
    assert "Processes: " + " -> ".join(q.name for q in p.processes) == "Processes: loader -> computer -> storer"


def test_a2_consumes_and_produces_hold_channels(a2):
    """A2: proc.consumes / proc.produces hold the Channel objects themselves."""
    assert list(a2["loader"].consumes) == [] and list(a2["loader"].produces) == [a2["l2c"]]
    assert a2["computer"].consumes[0] is a2["l2c"] and a2["computer"].produces[0] is a2["c2s"]
    assert a2["storer"].consumes[0] is a2["c2s"] and list(a2["storer"].produces) == []


def test_a2_pipeline_type_name(a2):
    """A2 (spec wins): type(pipeline).__name__ == "Pipeline"."""
    assert type(a2["pipeline"]).__name__ == "Pipeline"


def test_a2_spec_builder_and_varargs_connect_are_accepted(spec_kernels, spec_data):
    """A2: Process(name).produces(ch).body_func(fn) and connect(p1, p2, p3) work too."""
    k, d = spec_kernels, spec_data
    l2c = Channel[Tensor](name="load_to_compute", depth=2)
    c2s = Channel[Tensor](name="compute_to_store", depth=2)
    loader = Process("loader").produces(l2c).body_func(
        lambda: [send(l2c, k.load[t](src=d.X[t], dst=d.T[t])) for t in range(8)])
    computer = Process("computer").consumes(l2c).produces(c2s).body_func(
        lambda: consume(l2c, lambda t: send(c2s, k.compute[t](input_tile=d.T[t], output_tile=d.U[t]))))
    storer = Process("storer").consumes(c2s).body_func(
        lambda: consume(c2s, lambda t: k.store[t](src=d.U[t], dst=d.Y[t])))
    pipeline = connect(loader, computer, storer)
    assert type(pipeline).__name__ == "Pipeline"
    assert [q.name for q in pipeline.processes] == ["loader", "computer", "storer"]
    assert [c.name for c in pipeline.channels] == ["load_to_compute", "compute_to_store"]


# -- A3 -----------------------------------------------------------------------------------------------------------
def test_a3_load_kernel_ir(spec_kernels):
    """A3: load_kernel.trace() has 3 ops printing `load src`, `cast F16`, `store dst`."""
    ops = spec_kernels.load.trace().ops
    assert len(ops) == 3
    assert [str(op) for op in ops] == ["load src", "cast F16", "store dst"]


def test_a3_compute_kernel_has_three_ops(spec_kernels):
    """A3: compute_kernel (load, mul, store) gives 3 ops."""
    assert [op.kind.value for op in spec_kernels.compute.trace().ops] == ["load", "mul", "store"]


def test_a3_rmsnorm_analogue_five_ops():
    """A3: rmsnorm mul, rowmean, rsqrt, mul, store gives 5 ops; rowmean is (rows, 1) and F16 -> F32."""
    @kernel
    def rmsnorm(x: In[Tile[32, 128, DType.F16]], g: In[Tile[32, 128, DType.F32]], y: Out[Tile[32, 128, DType.F32]]):
        r = tl.rsqrt(tl.rowmean(tl.mul(x, x)))
        tl.store(y, tl.mul(g, r))

    ops = rmsnorm.trace().ops
    assert [op.kind.value for op in ops] == ["mul", "rowmean", "rsqrt", "mul", "store"]
    assert ops[1].result.shape == (32, 1) and ops[1].result.dtype is DType.F32


def test_a3_bgemm_analogue_three_ops():
    """A3: bgemm matmul, add, store gives 3 ops; matmul F16 @ F16 -> F32."""
    @kernel
    def gemm_tile(a: In[Tile[32, 64, DType.F16]], b: In[Tile[64, 32, DType.F16]], c: In[Tile[32, 32, DType.F32]],
                  out: Out[Tile[32, 32, DType.F32]]):
        tl.store(out, tl.add(tl.matmul(a, b), c))

    ops = gemm_tile.trace().ops
    assert [op.kind.value for op in ops] == ["matmul", "add", "store"]
    assert ops[0].result.dtype is DType.F32 and ops[0].result.shape == (32, 32)


# -- A4 -----------------------------------------------------------------------------------------------------------
def test_a4_event_semantics():
    """A4: query False; record; query True; synchronize returns immediately; query False."""
    ev = Event(name="load_done")
    assert query(ev) is False
    record(ev)
    assert query(ev) is True
    assert f"Query load_done: {query(ev)}" == "Query load_done: True"
    synchronize(ev)
    assert query(ev) is False


@pytest.mark.timeout(5)
def test_a4_depth_0_event_record_does_not_block():
    """A4 (defined better): a depth-0 event's record on a single thread never blocks; synchronize then returns."""
    ev = Event(name="rendezvous", depth=0)
    record(ev)
    assert query(ev) is True
    synchronize(ev)
    assert query(ev) is False


# -- A5 -----------------------------------------------------------------------------------------------------------
def test_a5_fresh_channel_state():
    """A5: Channel[int](name="demo_channel", depth=3) is empty, not full, size 0."""
    ch = Channel[int](name="demo_channel", depth=3)
    assert ch.empty() is True
    assert ch.full() is False
    assert ch.size() == 0


def test_a5_try_send_fills_a_depth_1_channel():
    """A5: Channel("x", depth=1): try_send 1 -> True, try_send 2 -> False, size 1, full."""
    ch = Channel("x", depth=1)
    assert try_send(ch, 1) is True
    assert try_send(ch, 2) is False
    assert ch.size() == 1
    assert ch.full() is True


# -- A9 -----------------------------------------------------------------------------------------------------------
@kernel
def _copy(src: In[Tile[8, 8, DType.F32]], dst: Out[Tile[8, 8, DType.F32]]):
    """Copy an 8x8 F32 tile."""
    tl.store(dst, tl.load(src))


def _tensors():
    return Tensor(data=np.ones((4, 8, 8), np.float32)), Tensor(shape=(4, 8, 8), dtype=DType.F32)


def test_a9_missing_kwarg_is_collected():
    """A9: a missing kwarg leaves w.type_errors non-empty with kind ARITY_MISMATCH."""
    X, _ = _tensors()

    @workload
    def missing():
        for t in P(Dense[4]()):
            _copy[t](src=X[t])

    w = missing()
    assert w.has_type_errors()
    assert [e.kind for e in w.type_errors] == [TypeErrorKind.ARITY_MISMATCH]


def test_a9_collected_errors_refuse_enumerate_and_compile_at_the_users_line():
    """A9: a workload with collected errors refuses enumerate() and compile() with a PtortTypeError naming the line."""
    X, _ = _tensors()
    lines = []

    @workload
    def missing():
        for t in P(Dense[4]()):
            lines.append(inspect.currentframe().f_lineno + 1)
            _copy[t](src=X[t])

    w = missing()
    for refuse in (w.enumerate, w.compile):
        with pytest.raises(PtortTypeError, match="missing argument 'dst'") as e:
            refuse()
        assert f"test_acceptance.py:{lines[0]}" in str(e.value)


def test_a9_type_check_false_collects_nothing():
    """A9: @workload(type_check=False) gives no errors."""
    X, _ = _tensors()

    @workload(type_check=False)
    def unchecked():
        for t in P(Dense[4]()):
            _copy[t](src=X[t])

    assert unchecked().type_errors == []


def test_a9_fail_on_type_error_raises_type_error():
    """A9: @workload(fail_on_type_error=True) raises TypeError containing "Type errors in workload '<name>'"."""
    X, _ = _tensors()

    @workload(fail_on_type_error=True)
    def strict():
        for t in P(Dense[4]()):
            _copy[t](src=X[t])

    with pytest.raises(TypeError, match="Type errors in workload 'strict'") as e:
        strict()
    assert "ARITY_MISMATCH" in str(e.value)


def test_a9_axis_bounds():
    """A9: check_axis_bounds(Dense[8](), 10) records AXIS_OUT_OF_BOUNDS; validate_axis_index(Dense[4](), 5) raises."""
    checker = TypeChecker()
    assert checker.check_axis_bounds(Dense[8](), 10) is False
    assert [e.kind for e in checker.errors] == [TypeErrorKind.AXIS_OUT_OF_BOUNDS]
    assert checker.check_axis_bounds(Dense[8](), 7) is True
    with pytest.raises(TypeError):
        validate_axis_index(Dense[4](), 5)


def test_a9_layout_join():
    """A9: S(0) joined with S(1) raises LayoutIncompatibleError; R joined with S(3) is TensorLayout(R, S(3))."""
    with pytest.raises(LayoutIncompatibleError):
        tensor_layout_join(TensorLayout((TensorShard(0),)), TensorLayout((TensorShard(1),)))
    joined = tensor_layout_join(TensorLayout((TensorReplicate(), TensorReplicate())),
                                TensorLayout((TensorReplicate(), TensorShard(3))))
    assert repr(joined) == "TensorLayout(R, S(3))"
    assert issubclass(LayoutIncompatibleError, TypeError)


def test_a9_p_outside_workload_is_runtime_error():
    """A9: `for i in P(ax)` outside @workload raises RuntimeError."""
    with pytest.raises(RuntimeError):
        for _ in P(Dense[4]()):
            pass


def test_a9_tl_outside_kernel_message():
    """A9: tl.add outside a kernel raises RuntimeError("tl.* must be used inside @kernel function")."""
    with pytest.raises(RuntimeError, match=r"^tl\.\* must be used inside @kernel function"):
        tl.add(1, 2)


def test_a9_tile_with_four_args_is_type_error():
    """A9: Tile[1,2,3,4] raises TypeError."""
    with pytest.raises(TypeError, match="Tile expects 2-3 args, got 4"):
        Tile[1, 2, 3, 4]


def test_a9_axis_bound_call_outside_workload_is_runtime_error():
    """A9: k[0](...) outside a workload raises RuntimeError."""
    X, Y = _tensors()
    with pytest.raises(RuntimeError, match="Axis-bound kernel call must be inside @workload"):
        _copy[0](src=X[0], dst=Y[0])


# -- A10 ----------------------------------------------------------------------------------------------------------
def test_a10_ragged():
    """A10: Ragged(4, [10,15,8,12]).total() == 45 and .length(0) == 10."""
    r = Ragged(4, [10, 15, 8, 12])
    assert r.total() == 45
    assert r.length(0) == 10


def test_a10_sparse():
    """A10: Sparse(2, [0,2,5], [1,3,0,2,4]) has nnz 5, row_nnz(0) 2, sp[1] == [0,2,4]."""
    sp = Sparse(2, [0, 2, 5], [1, 3, 0, 2, 4])
    assert sp.nnz() == 5
    assert sp.row_nnz(0) == 2
    assert sp[1] == [0, 2, 4]


def test_a10_dense_size():
    """A10: Dense[8]().size == 8."""
    assert Dense[8]().size == 8


def test_a10_two_axis_p_yields_six_tasks():
    """A10: P(Dense[2](), DenseDyn(3)) yields 6 tasks; first params [0,0], last bindings {'b':1,'h':2}."""
    @workload
    def grid():
        for b, h in P(Dense[2](), DenseDyn(3)):
            task("k", [b, h], [])

    ts = grid().enumerate()
    assert len(ts) == 6
    assert ts[0].params == [0, 0]
    assert ts[-1].bindings == {"b": 1, "h": 2}
    assert [t.params for t in ts] == [[b, h] for b in range(2) for h in range(3)]
