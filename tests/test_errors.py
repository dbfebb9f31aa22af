"""Bad input: every user mistake raises a ptort_lab error saying what is wrong, where (file:line) and how to fix it.

Trace-time tl.* mistakes (shape/dtype mismatches, storing into In, reading Out, matmul inner dims) are covered with
the same checks in tests/dsl/test_kernel_ir.py.
"""

import numpy as np
import pytest
from source_lines import here

from ptort_lab import (
    Channel,
    ChannelClosed,
    ChannelFull,
    Constexpr,
    Dense,
    DenseDyn,
    DispatchPolicy,
    DSLUsageError,
    DType,
    Event,
    In,
    Out,
    P,
    PipelineError,
    Process,
    PtortError,
    PtortTypeError,
    PtortValueError,
    Ragged,
    Scalar,
    Sparse,
    TaskWindow,
    Tensor,
    Tile,
    combine,
    cond,
    connect,
    consume,
    errors,
    for_each,
    kernel,
    process,
    record,
    send,
    send_nowait,
    synchronize,
    task,
    tl,
    try_send,
    validate_axis_index,
    workload,
)

F16, F32 = DType.F16, DType.F32



@kernel
def copy(src: In[Tile[8, 8, F32]], dst: Out[Tile[8, 8, F32]]):
    """Copy an 8x8 F32 tile."""
    tl.store(dst, tl.load(src))


@pytest.fixture
def tensors():
    """X: 4 F32 8x8 tiles of ones; Y: F32 output; H: F16 output; W: 8x4 tiles (wrong shape)."""
    return dict(X=Tensor(data=np.ones((4, 8, 8), np.float32)), Y=Tensor(shape=(4, 8, 8), dtype=F32),
                H=Tensor(shape=(4, 8, 8), dtype=F16), W=Tensor(shape=(4, 8, 4), dtype=F32))


# -- the hierarchy ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("cls, builtin", [
    (errors.DSLUsageError, RuntimeError), (errors.PtortTypeError, TypeError), (errors.PtortValueError, ValueError),
    (errors.PipelineError, ValueError), (errors.ChannelError, RuntimeError), (errors.ChannelClosed, RuntimeError),
    (errors.ChannelFull, RuntimeError), (errors.SimulationError, RuntimeError), (errors.DeadlockError, RuntimeError),
    (errors.KernelExecutionError, RuntimeError), (errors.CapacityError, RuntimeError)])
def test_every_error_is_a_ptort_error_and_its_builtin(cls, builtin):
    """Each ptort_lab error class derives from PtortError and from the matching builtin exception."""
    assert issubclass(cls, PtortError) and issubclass(cls, builtin)


def test_message_has_what_where_and_hint():
    """A PtortError's text is: the sentence, `at file:line`, the code line, then the hint."""
    line = here() + 1
    e = PtortValueError("the thing is wrong.", hint="Do it right.")
    assert str(e).splitlines() == ["the thing is wrong.", f"  at test_errors.py:{line}",
                                   '    e = PtortValueError("the thing is wrong.", hint="Do it right.")',
                                   "Do it right."]


def test_ipython_renders_the_message_without_traceback():
    """_render_traceback_ gives the class name and the message lines only."""
    lines = PtortValueError("bad.", hint="Fix it.")._render_traceback_()
    assert lines[0] == "PtortValueError: bad."
    assert lines[-1] == "Fix it."


# -- kernel launches inside @workload: collected, then refused with the launch line ---------------------------------
def _collected(body, where, match):
    w = body()
    assert w.type_errors, "expected collected type errors"
    line = w.type_errors[0].location.lineno
    for refuse in (w.enumerate, w.compile):
        with pytest.raises(PtortTypeError, match=match) as e:
            refuse()
        msg = where(e, line)
    return w, msg


def test_wrong_tile_shape(tensors, where):
    """Passing 8x4 tiles to an 8x8 parameter names the kernel, parameter and both shapes."""
    T = tensors
    lines = []

    @workload
    def bad():
        for t in P(Dense[4]()):
            lines.append(here() + 1)
            copy[t](src=T["W"][t], dst=T["Y"][t])

    w, msg = _collected(bad, where, r"Kernel 'copy' parameter 'src' expects a 8x8 tile, got .* of shape \(8, 4\)")
    assert w.type_errors[0].location.lineno == lines[0]
    assert w.type_errors[0].kind.value == "SHAPE_MISMATCH"
    assert "change the kernel's Tile[...] annotation" in msg


def test_wrong_tile_dtype(tensors, where):
    """Passing F16 tiles to an F32 parameter names both dtypes and the two possible fixes."""
    T = tensors

    @workload
    def bad():
        for t in P(Dense[4]()):
            copy[t](src=T["X"][t], dst=T["H"][t])

    w, msg = _collected(bad, where, r"Kernel 'copy' parameter 'dst' expects dtype F32, got .* of dtype F16")
    assert w.type_errors[0].kind.value == "TYPE_MISMATCH"
    assert "dtype=DType.F32" in msg and "Tile[8, 8, DType.F16]" in msg


def test_unknown_kwarg_suggests_the_close_name(tensors, where):
    """A mistyped parameter name (srcc) is reported with "Did you mean 'src'?"."""
    T = tensors

    @workload
    def bad():
        for t in P(Dense[4]()):
            copy[t](srcc=T["X"][t], dst=T["Y"][t])

    _, msg = _collected(bad, where, r"Kernel 'copy' has no parameter 'srcc'")
    assert "Did you mean 'src'?" in msg


def test_missing_kwarg(tensors, where):
    """A missing argument is an ARITY_MISMATCH naming the missing parameter."""
    T = tensors

    @workload
    def bad():
        for t in P(Dense[4]()):
            copy[t](src=T["X"][t])

    w, msg = _collected(bad, where, r"Kernel 'copy' expects 2 args, got 1: missing argument 'dst'")
    assert [e.kind.value for e in w.type_errors] == ["ARITY_MISMATCH"]
    assert "Pass dst=..." in msg


def test_positional_kernel_arguments(tensors, where):
    """k[t](X[t], Y[t]) binds in parameter order (the reference's form); one too many, or a parameter given both by
    position and by name, is refused at the launch line with the call spelled by name."""
    T = tensors

    @workload
    def ok():
        copy[0](T["X"][0], T["Y"][0])

    assert ok().enumerate()[0].resources["dst"].base is T["Y"]
    lines = []

    @workload
    def bad():
        lines.append(here() + 1)
        copy[0](T["X"][0], T["Y"][0], T["Y"][1])

    with pytest.raises(PtortTypeError,
                       match=r"kernel 'copy' takes 2 argument\(s\) \(src, dst\), got 3 positional") as e:
        bad()
    assert "copy[t](src=..., dst=...)" in where(e, lines[0])

    @workload
    def twice():
        lines.append(here() + 1)
        copy[0](T["X"][0], src=T["X"][1], dst=T["Y"][0])

    with pytest.raises(PtortTypeError, match=r"kernel 'copy' got parameter 'src' both by position and by name") as e:
        twice()
    where(e, lines[1])


def test_launch_error_outside_workload_raises_at_once(tensors, where):
    """In a for_each lambda built outside @workload nothing collects errors, so the bad launch raises at once."""
    T = tensors
    with pytest.raises(PtortTypeError, match=r"Kernel 'copy' has no parameter 'srcc'") as e:
        line = here() + 1
        for_each(Dense[4](), lambda t: copy[t](srcc=T["X"][t], dst=T["Y"][t]))
    where(e, line)


# -- DSL calls in the wrong place ------------------------------------------------------------------------------------
def test_tl_outside_kernel(where):
    """tl.add outside @kernel raises RuntimeError("tl.* must be used inside @kernel function")."""
    with pytest.raises(RuntimeError, match=r"tl\.\* must be used inside @kernel function") as e:
        line = here() + 1
        tl.add(1, 2)
    assert isinstance(e.value, DSLUsageError)
    assert "Decorate the function that calls it with @kernel" in where(e, line)


def test_p_outside_workload(where):
    """P(...) outside @workload raises RuntimeError saying where it belongs."""
    with pytest.raises(RuntimeError, match=r"P\(\) used outside @workload context") as e:
        line = here() + 1
        P(Dense[4]())
    assert isinstance(e.value, DSLUsageError)
    assert "inside a @workload function" in where(e, line)


def test_p_seq_outside_workload(where):
    """P.seq(...) outside @workload raises RuntimeError."""
    with pytest.raises(RuntimeError, match=r"P\.seq\(\) used outside @workload context") as e:
        line = here() + 1
        P.seq(Dense[4]())
    where(e, line)


def test_p_pipe_outside_workload(where):
    """`with P.pipe():` outside @workload raises RuntimeError on the with line."""
    with pytest.raises(RuntimeError, match=r"P\.pipe\(\) used outside @workload context") as e:
        line = here() + 1
        with P.pipe():
            pass
    where(e, line)


def test_for_loop_over_p_outside_workload(where):
    """`for i in P(ax)` outside @workload raises RuntimeError on the for line."""
    with pytest.raises(RuntimeError) as e:
        line = here() + 1
        for _ in P(Dense[2]()):
            pass
    where(e, line)


def test_axis_bound_launch_outside_workload(tensors, where):
    """k[0](...) outside a workload raises RuntimeError."""
    with pytest.raises(RuntimeError, match=r"Axis-bound kernel call must be inside @workload") as e:
        line = here() + 1
        copy[0](src=tensors["X"][0], dst=tensors["Y"][0])
    assert "Put the launch in a @workload function" in where(e, line)


def test_otherwise_without_when(where):
    """P.otherwise() not preceded by P.when() names the with-line of the user's code."""
    lines = []

    @workload
    def bad():
        lines.append(here() + 1)
        with P.otherwise():
            pass

    with pytest.raises(DSLUsageError, match=r"P\.otherwise\(\) must follow P\.when\(\)") as e:
        bad()
    where(e, lines[0])


def test_uninstantiated_axis(where):
    """P(Dense[4]) (the class) says to instantiate it with ()."""
    @workload
    def bad():
        for _ in P(Dense[4]):
            pass

    with pytest.raises(PtortTypeError, match=r"P\(\) got the axis class Dense\[4\]; instantiate it") as e:
        bad()
    assert "Dense[4]()" in where(e, bad.fn.__code__.co_firstlineno + 2)


def test_send_steps_outside_a_pipeline(where):
    """send() inside a plain @workload is refused at enumerate(), at the send's own line: it only runs inside
    pipeline processes."""
    ch = Channel(name="c", depth=1)

    @workload
    def bad():
        send(ch, 1)

    with pytest.raises(DSLUsageError, match="only run inside the processes of a pipeline") as e:
        bad().enumerate()
    where(e, bad.fn.__code__.co_firstlineno + 2)


# -- types, tensors and axes -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, match, fix", [
    (lambda: Tile[1, 2, 3, 4], r"Tile expects 2-3 args, got 4", "Tile[rows, cols]"),
    (lambda: Tile[8.0, 8], r"Tile rows must be a positive int, got 8.0", "Python ints"),
    (lambda: Tile[8, 0], r"Tile cols must be a positive int, got 0", "Python ints"),
    (lambda: Tile[8, 8, "f16"], r"Tile dtype must be a DType, got 'f16'", "DType.F16"),
    (lambda: Scalar["f32"], r"Scalar dtype must be a DType, got 'f32'", "Scalar[DType.F32]"),
    (lambda: Tensor(data=[1, 2, 3]), r"Tensor data must be a numpy.ndarray, got list", "np.asarray"),
    (lambda: Tensor(data=np.ones((2, 2), np.float32), shape=(3, 3)), r"Tensor data has shape \(2, 2\) but "
     r"shape=\(3, 3\)", "reshape"),
    (lambda: Tensor(data=np.ones((2, 2), np.float64), dtype=F32), r"Tensor data has numpy dtype float64 but "
     r"dtype=F32", "data.astype('float32')"),
    (lambda: Tensor(shape=(2, 2), dtype="f32"), r"Tensor dtype must be a DType", "DType.F32"),
    (lambda: DType.from_numpy(np.complex64), r"numpy dtype complex64 has no ptort_lab DType", "bfloat16"),
    (lambda: Tensor(shape=(4, 8, 8))[0, 0, 0, 0], r"Too many indices for tensor", "Drop an index"),
    (lambda: Dense(), r"Dense needs a static size", "DenseDyn(n)"),
    (lambda: Dense["8"], r"Dense size must be an int, got '8'", "Dense[8]()"),
], ids=["tile-4-args", "tile-float", "tile-zero", "tile-dtype", "scalar-dtype", "tensor-list", "tensor-shape",
        "tensor-dtype-mismatch", "tensor-dtype-str", "numpy-dtype", "too-many-indices", "dense-no-size", "dense-str"])
def test_bad_types_raise_type_errors(make, match, fix, where):
    """Malformed Tile/Scalar/Tensor/axis constructions raise TypeError with the fix spelled out."""
    with pytest.raises(PtortTypeError, match=match) as e:
        make()
    assert isinstance(e.value, TypeError)
    assert fix in where(e, make.__code__.co_firstlineno)


@pytest.mark.parametrize("make, match, fix", [
    (lambda: Dense[0], r"Dense size must be positive, got 0", "size >= 1"),
    (lambda: DenseDyn(-1), r"DenseDyn size must be positive, got -1", "size >= 1"),
    (lambda: Ragged(2, [1]), r"Ragged\(2, lengths\) needs 2 lengths, got 1", "one length per outer row"),
    (lambda: Ragged(2, [1, -1]), r"Ragged lengths must be >= 0", "0 for an empty row"),
    (lambda: Sparse(2, [0, 3, 1], [1, 2, 3]), r"Sparse indptr must start at 0 and never decrease", "running count"),
    (lambda: Sparse(2, [0, 2, 5], [1, 3, 0, 2, 4])[5], r"Sparse row 5 is out of range 0..1", "outer axis"),
    (lambda: Tensor(shape=(4, 8, 8))[4], r"Tensor index 4 is out of bounds for a leading dimension of 4",
     "index in 0..3"),
    (lambda: Tensor(shape=(0, 8)), r"Tensor shape must be positive", ">= 1"),
], ids=["dense-0", "densedyn-neg", "ragged-count", "ragged-neg", "sparse-indptr", "sparse-row", "tensor-oob",
        "tensor-shape-0"])
def test_bad_values_raise_value_errors(make, match, fix, where):
    """Out-of-range sizes and indices raise ValueError with the allowed range."""
    with pytest.raises(PtortValueError, match=match) as e:
        make()
    assert isinstance(e.value, ValueError)
    assert fix in where(e, make.__code__.co_firstlineno)


def test_index_out_of_bounds_at_enumerate(tensors, where):
    """A loop axis larger than the tensor fails at enumerate() with the index, the tensor, the range and the
    launch line that indexes it."""
    T = tensors

    @workload
    def bad():
        for t in P(Dense[8]()):
            copy[t](src=T["X"][t], dst=T["Y"][t])

    w = bad()
    match = r"index b = 4 is out of bounds for dimension 0 of Tensor\(f32\[4, 8, 8\]\)"
    with pytest.raises(PtortValueError, match=match) as e:
        w.enumerate()
    assert "0..3" in where(e, bad.__wrapped__.__code__.co_firstlineno + 3)


def test_validate_axis_index(where):
    """validate_axis_index(Dense[4](), 5) raises TypeError naming the index, the axis and the user's line."""
    with pytest.raises(TypeError, match=r"Index 5 is out of bounds for Dense\[4\]\(\)") as e:
        line = here() + 1
        validate_axis_index(Dense[4](), 5)
    assert "0..3" in where(e, line)


# -- kernels ---------------------------------------------------------------------------------------------------------
def test_kernel_parameter_without_annotation(tensors, where):
    """A parameter with no annotation is shaped by its launch (the reference's form); a launch that gives it no 2-D
    tile is refused at the launch line, naming the shape and how to index it down."""
    @kernel
    def bare(a, c: Out[Tile[8, 8, F32]]):
        tl.store(c, tl.load(a))

    X = Tensor(shape=(2, 4, 8, 8), dtype=F32)

    lines = []

    @workload
    def bad():
        lines.append(here() + 1)
        bare[0](a=X[0], c=tensors["Y"][0])

    with pytest.raises(PtortTypeError, match=r"Kernel 'bare' parameter 'a' \(no annotation\) is shaped by its "
                                             r"argument, a 2-D tile, but .* has shape \(4, 8, 8\)") as e:
        bad().compile()
    assert "X[t] for a [n, rows, cols] tensor" in where(e, lines[0])


def test_kernel_parameter_with_unusable_annotation(where):
    """In[list] is rejected naming the parameter and the accepted forms."""
    with pytest.raises(PtortTypeError, match=r"kernel 'bad' parameter 'a' is annotated In\[<class 'list'>\]") as e:
        line = here() + 1
        @kernel
        def bad(a: In[list]):
            pass
    assert "In[Tile[rows, cols, DType.F32]]" in where(e, line)


def test_kernel_with_varargs(where):
    """*args kernels are rejected: parameters must be named."""
    with pytest.raises(PtortTypeError, match=r"kernel 'bad' uses \*tiles") as e:
        line = here() + 1
        @kernel
        def bad(*tiles):
            pass
    where(e, line)


def test_kernel_cycles_must_be_a_count(where):
    """@kernel(cycles=-1) is rejected."""
    with pytest.raises(PtortValueError, match=r"@kernel\(cycles=...\) must be an int >= 0, got -1") as e:
        line = here() + 1
        @kernel(cycles=-1)
        def bad():
            pass
    where(e, line)


def test_missing_constexpr_value(where):
    """Tracing a kernel without a value for its Constexpr parameter names it."""
    @kernel
    def scale(a: In[Tile[8, 8, F32]], n: Constexpr[int]):
        tl.muls(a, n)

    with pytest.raises(PtortTypeError, match=r"kernel 'scale' needs a value for Constexpr parameter 'n'") as e:
        line = here() + 1
        scale.trace()
    assert "pass n=..." in where(e, line)


def test_unknown_constexpr(where):
    """Tracing with an unknown Constexpr name lists the real ones."""
    @kernel
    def scale(a: In[Tile[8, 8, F32]], n: Constexpr[int]):
        tl.muls(a, n)

    with pytest.raises(PtortTypeError, match=r"kernel 'scale' has no Constexpr parameter\(s\) \['m'\]") as e:
        line = here() + 1
        scale.trace(n=1, m=2)
    assert "['n']" in where(e, line)


# -- tasks and composition ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, exc, match", [
    (lambda T: task(copy, [0], [T["X"][0]]), PtortTypeError, r"task\(kernel=@kernel, ...\) requires resources=dict"),
    (lambda T: task(42), PtortTypeError, r"task\(\) needs a @kernel or a kernel name, got int 42"),
    (lambda T: task(copy, [0], {}, cycles=-5), PtortValueError, r"task\(cycles=...\) must be an int >= 0"),
    (lambda T: cond(True, 3), PtortTypeError, r"cond\(\) then branch must be a workload, got 3"),
    (lambda T: combine(1), PtortTypeError, r"combine\(\) takes workloads, got int 1"),
], ids=["task-list-resources", "task-int", "task-cycles", "cond-branch", "combine-int"])
def test_bad_task_and_composition_arguments(tensors, make, exc, match, where):
    """task()/cond()/combine() with the wrong kinds of arguments raise, naming what they got."""
    with pytest.raises(exc, match=match) as e:
        make(tensors)
    where(e, make.__code__.co_firstlineno)


# -- schedules and programs ----------------------------------------------------------------------------------------
def _program(tensors):
    T = tensors

    @workload
    def ok():
        for t in P(Dense[4]()):
            _program.launch_line = here() + 1
            copy[t](src=T["X"][t], dst=T["Y"][t])

    return ok()


def test_unknown_compile_target(tensors, where):
    """compile(target="gpu") raises ValueError("Unknown target: gpu") listing the known targets."""
    w = _program(tensors)
    with pytest.raises(ValueError, match=r"Unknown target: gpu") as e:
        line = here() + 1
        w.compile(target="gpu")
    assert "Known targets: cpu_sim" in where(e, line)


def test_unknown_compile_option(tensors, where):
    """compile(foo=1) lists the known options."""
    w = _program(tensors)
    with pytest.raises(PtortValueError, match=r"compile\(\) got unknown option\(s\) \['foo'\]") as e:
        line = here() + 1
        w.compile(foo=1)
    assert "channel_latency_cycles" in where(e, line)


def test_dispatch_key_must_return_an_int(tensors, where):
    """An affinity key returning a string fails at execute(), naming the task and pointing at its launch line."""
    w = _program(tensors).dispatch(DispatchPolicy.affinity(lambda t: "x", 2))
    program = w.compile()
    with pytest.raises(PtortValueError, match=r"DispatchPolicy.affinity key function returned 'x' for task 0") as e:
        program.execute()
    assert 't.get("b")' in where(e, _program.launch_line)


@pytest.mark.parametrize("make, exc, match", [
    (lambda w: w.dispatch("rr"), PtortTypeError, r"dispatch\(\) takes a DispatchPolicy, got 'rr'"),
    (lambda w: w.streams(0), PtortValueError, r"streams\(n\) needs an int >= 1, got 0"),
    (lambda w: w.task_graph(window=3), PtortTypeError, r"task_graph\(window=...\) takes a TaskWindow, got 3"),
    (lambda w: TaskWindow(10, "pages"), PtortValueError, r"^Invalid unit: pages"),
    (lambda w: TaskWindow(0), PtortValueError, r"TaskWindow size must be an int >= 1, got 0"),
    (lambda w: DispatchPolicy.round_robin(-1), PtortValueError, r"round_robin\(n\) needs an int >= 0, got -1"),
    (lambda w: DispatchPolicy.affinity(3), PtortTypeError, r"DispatchPolicy.affinity needs a key function, got 3"),
    (lambda w: w.compile().trace(), PtortValueError, r"program.trace needs a run first"),
    (lambda w: w.compile().set_symbol_u64("x", 1), PtortValueError, r"unknown symbol 'x'"),
], ids=["dispatch-str", "streams-0", "window-int", "window-unit", "window-0", "rr-neg", "affinity-int",
        "trace-before-run", "unknown-symbol"])
def test_bad_schedule_arguments(tensors, make, exc, match, where):
    """Schedule combinators and Program methods reject bad arguments, naming them and the fix."""
    w = _program(tensors)
    with pytest.raises(exc, match=match) as e:
        make(w)
    where(e, make.__code__.co_firstlineno)


# -- channels, processes, events -------------------------------------------------------------------------------------
def test_negative_channel_depth(where):
    """Channel(depth=-1) raises ValueError explaining what depth means."""
    with pytest.raises(ValueError, match=r"Channel 'c' depth must be >= 0, got -1") as e:
        line = here() + 1
        Channel(name="c", depth=-1)
    assert isinstance(e.value, PtortValueError)
    assert "double buffering" in where(e, line)


@pytest.mark.parametrize("make, match", [
    (lambda: Channel(name="c", depth=1.5), r"Channel 'c' depth must be an int, got 1.5"),
    (lambda: Channel(name="", depth=1), r"Channel name must be a non-empty string, got ''"),
    (lambda: Process(""), r"Process name must be a non-empty string, got ''"),
    (lambda: process("p").body(3), r"process 'p' .body\(\) takes a workload, got int 3"),
    (lambda: process("p").body_func(3), r"body_func needs a callable body, got int 3"),
    (lambda: process("p").produces("ch"), r"process 'p' .produces\(\) takes Channels, got 'ch'"),
    (lambda: send("ch", 1), r"send\(\) needs a Channel as first argument, got str 'ch'"),
    (lambda: consume("ch", lambda t: None), r"consume\(\) needs a Channel as first argument, got str 'ch'"),
    (lambda: consume(Channel(name="c"), 3), r"consume needs a callable body, got int 3"),
    (lambda: record("ev"), r"record\(\) needs an Event, got str 'ev'"),
    (lambda: synchronize(None), r"synchronize\(\) needs an Event, got NoneType None"),
    (lambda: try_send("ch", 1), r"try_send needs a Channel, got 'ch'"),
], ids=["depth-float", "channel-name", "process-name", "body-int", "body-func-int", "produces-str", "send-str",
        "consume-str", "consume-body", "record-str", "sync-none", "try-send-str"])
def test_bad_csp_arguments(make, match, where):
    """CSP constructors and steps given the wrong kinds of arguments raise TypeError naming what they got."""
    with pytest.raises(PtortTypeError, match=match) as e:
        make()
    where(e, make.__code__.co_firstlineno)


def test_send_to_closed_channel(where):
    """send() to a closed channel raises ChannelClosed naming the channel."""
    ch = Channel(name="cc", depth=1)
    ch.close()
    with pytest.raises(ChannelClosed, match=r"send to closed channel 'cc'") as e:
        line = here() + 1
        Process("p").produces(ch).body_func(lambda: send(ch, 1))
    assert isinstance(e.value, RuntimeError)
    assert "Do not call ch.close()" in where(e, line)


def test_try_send_to_closed_channel(where):
    """try_send() on a closed channel raises ChannelClosed."""
    ch = Channel(name="cc", depth=1)
    ch.close()
    with pytest.raises(ChannelClosed, match=r"try_send on closed channel 'cc'") as e:
        line = here() + 1
        try_send(ch, 1)
    where(e, line)


def test_send_nowait_to_full_channel(where):
    """send_nowait() on a full channel raises ChannelFull with its fill."""
    ch = Channel(name="one", depth=1)
    send_nowait(ch, 1)
    with pytest.raises(ChannelFull, match=r"Channel 'one' is full \(1/1\)") as e:
        line = here() + 1
        send_nowait(ch, 2)
    assert "larger depth" in where(e, line)


def test_consume_on_channel_nobody_produces(where):
    """connect() of a consumer whose channel has no producer raises PipelineError naming both."""
    @kernel
    def sink():
        """Nothing."""

    ch = Channel(name="orphan", depth=1)
    cons = Process("cons").consumes(ch).body_func(lambda: consume(ch, lambda t: task(sink, [t], {})))
    with pytest.raises(PipelineError, match=r"channel 'orphan' has no producer \(process 'cons' consumes it\)") as e:
        line = here() + 1
        connect(cons)
    assert isinstance(e.value, ValueError)
    where(e, line)


def test_event_negative_depth(where):
    """Event(depth=-1) raises ValueError."""
    with pytest.raises(PtortValueError, match=r"Event 'e' depth must be an int >= 0, got -1") as e:
        line = here() + 1
        Event(name="e", depth=-1)
    where(e, line)


def test_host_synchronize_without_record(where):
    """synchronize() on the host with nothing recorded raises RuntimeError instead of hanging."""
    ev = Event(name="never")
    with pytest.raises(RuntimeError, match=r"synchronize\('never'\) would wait forever") as e:
        line = here() + 1
        synchronize(ev)
    assert "Call record(event) first" in where(e, line)


def test_nested_pipeline_is_rejected(where):
    """A pipeline used as a step inside a process body raises PipelineError."""
    @kernel
    def k():
        """Nothing."""

    ch = Channel(name="c", depth=1)
    line = here() + 1
    inner = connect(Process("a").produces(ch).body_func(lambda: send(ch, task(k, [0], {}))),
                    Process("b").consumes(ch).body_func(lambda: consume(ch, lambda t: task(k, [t], {}))))
    outer = Process("outer").body(inner)  # (in combine(): refused at that line)
    with pytest.raises(PipelineError, match="a pipeline cannot be nested") as e:
        connect(outer)
    where(e, line)


def test_kernel_scalar_param_given_a_tensor(tensors, where):
    """A Scalar parameter given a tensor view is a TYPE_MISMATCH naming the parameter."""
    @kernel
    def scale(a: In[Tile[8, 8, F32]], s: Scalar[F32], out: Out[Tile[8, 8, F32]]):
        tl.store(out, tl.mul(tl.load(a), s))

    T = tensors

    @workload
    def bad():
        scale(a=T["X"][0], s=T["X"][1], out=T["Y"][0])

    w = bad()
    assert w.type_errors[0].kind.value == "TYPE_MISMATCH"
    with pytest.raises(PtortTypeError, match=r"Kernel 'scale' parameter 's' is a scalar") as e:
        w.enumerate()
    where(e, bad.fn.__code__.co_firstlineno + 2)


@pytest.mark.parametrize("make, match", [
    (lambda ch: consume(ch, lambda: None), r"the consume body <lambda>\(\) must take one argument"),
    (lambda ch: for_each(Dense[2](), lambda a, b: None), r"the for_each body <lambda>\(a, b\) must take one argument"),
    (lambda ch: Process("p").body_func(lambda t: None), r"the body_func body <lambda>\(t\) must take no arguments"),
], ids=["consume-0-args", "for-each-2-args", "body-func-1-arg"])
def test_body_callable_with_wrong_arity(make, match, where):
    """A body lambda with the wrong number of parameters is a ptort_lab TypeError, not a bare Python TypeError."""
    with pytest.raises(PtortTypeError, match=match) as e:
        make(Channel(name="c", depth=1))
    assert "lambda" in where(e, make.__code__.co_firstlineno)


def test_load_of_a_temporary(where):
    """tl.load of an op result (not a parameter) says only kernel parameters can be loaded."""
    lines = []

    with pytest.raises(PtortTypeError, match=r"tl\.load: can only load a kernel parameter, got f32\[8,8\]") as e:
        @kernel
        def bad(a: In[Tile[8, 8, F32]]):
            x = tl.load(a)
            lines.append(here() + 1)
            tl.load(x)
    where(e, lines[0])
