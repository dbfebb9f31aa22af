"""Bad input, round 2: unwritten Out tiles, integer results past their dtype, steady-state values, run-time shape
checks, placement given twice and cycle counts past 2**53."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from ptort_lab import (
    Constexpr,
    Dense,
    DType,
    In,
    InOut,
    KernelExecutionError,
    Out,
    P,
    PinnedCosts,
    PtortTypeError,
    PtortValueError,
    SimulationError,
    Tensor,
    Tile,
    for_each,
    kernel,
    task,
    tl,
    workload,
)
from ptort_lab.csp import Channel, connect, consume, process, send
from ptort_lab.sim.machine import ascend_910b

F32, I32, U8 = DType.F32, DType.I32, DType.U8
T = Tile[8, 8, F32]


@kernel
def copy(src: In[T], dst: Out[T]):
    tl.store(dst, tl.load(src))


def run_one(k, **arrays):
    """Launch ``k`` once on these arrays (each a [1, r, c] tensor); return the tensors."""
    tensors = {name: Tensor(data=a) for name, a in arrays.items()}

    @workload
    def one():
        k(**{name: t[0] for name, t in tensors.items()})

    one().compile().execute()
    return tensors


def pipeline(X, Y, Z, n=4):
    ch = Channel("q", depth=2)
    a = process("a").produces(ch).body(for_each(Dense[n](), lambda t: send(ch, copy[t](src=X[t], dst=Y[t]))))
    b = process("b").consumes(ch).body(consume(ch, lambda t: copy[t](src=Y[t], dst=Z[t])))
    return connect(a, b)


def tensors3(n=4):
    x = np.random.default_rng(0).random((n, 8, 8)).astype(np.float32)
    return Tensor(data=x), Tensor(shape=x.shape, dtype=F32), Tensor(data=np.full_like(x, 7))


# -- 3. an Out tile never stored ---------------------------------------------------------------------------------
def test_a_kernel_that_never_stores_its_out_parameter_is_refused_at_its_def_line():
    with pytest.raises(PtortTypeError) as e:
        @kernel
        def scale(src: In[T], dst: Out[T]):  # the def line is the one named
            tl.muls(tl.load(src), 2.0)        # forgot tl.store(dst, ...)
    assert str(e.value).startswith("kernel 'scale' never stores into its Out parameter 'dst': its tensor would keep "
                                   "the values it held before the run.")
    assert e.value.where.code.startswith("def scale(")
    assert e.value.hint.startswith("Store the result: tl.store(dst, value).")


def test_two_unwritten_outputs_are_both_named():
    with pytest.raises(PtortTypeError, match=r"^kernel 'k' never stores into its Out parameters 'a', 'c': their "):
        @kernel
        def k(x: In[T], a: Out[T], b: Out[T], c: Out[T]):
            tl.store(b, tl.load(x))


def test_a_store_into_a_slice_of_an_inout_and_an_unstored_inout_are_fine():
    """(An Out stored only in part is refused: tests/dsl/test_kernel_bad_input_r4.py.)"""
    @kernel
    def top_half(x: In[Tile[8, 8, F32]], y: InOut[Tile[8, 8, F32]], keep: InOut[Tile[8, 8, F32]]):
        tl.store(y[0:4, :], tl.load(x)[0:4, :])

    out = run_one(top_half, x=np.ones((1, 8, 8), np.float32), y=np.zeros((1, 8, 8), np.float32),
                  keep=np.full((1, 8, 8), 3, np.float32))
    assert out["y"].data[0, :4].sum() == 32 and out["y"].data[0, 4:].sum() == 0
    assert (out["keep"].data == 3).all()


def test_a_store_skipped_under_a_constexpr_names_the_traced_values():
    @kernel
    def maybe(x: In[T], y: Out[T], write: Constexpr[bool] = True):
        if write:
            tl.store(y, tl.load(x))

    maybe.trace()  # writing: fine
    with pytest.raises(PtortTypeError, match=r"^kernel 'maybe' \(traced with \{'write': False\}\) never stores into "):
        maybe.trace(write=False)


def test_a_shape_generic_kernel_without_a_store_is_refused_at_its_launch():
    @kernel
    def forgot(x: In[Tensor], y: Out[Tensor]):
        tl.exp(tl.load(x))

    X, Y = Tensor(shape=(1, 8, 8), dtype=F32), Tensor(shape=(1, 8, 8), dtype=F32)
    with pytest.raises(PtortTypeError, match=r"^kernel 'forgot' \(traced with .*\) never stores into its Out "):
        @workload
        def w():
            forgot(x=X[0], y=Y[0])

        w()


def test_a_stub_kernel_is_left_be():
    """A body of only ``pass`` / ``...`` / a docstring is a stub (the reference's own tests launch such kernels, e.g.
    TestWorkloadTypeCheckIntegration's ``valid_kernel``): no refusal, at its launch or when traced."""
    @kernel
    def stub(x: In[Tensor], y: Out[Tensor]):
        pass

    @kernel
    def documented(x: In[T], y: Out[T]):
        """Only a docstring."""

    X, Y = Tensor(shape=(1, 8, 8), dtype=F32), Tensor(shape=(1, 8, 8), dtype=F32)

    @workload
    def w():
        stub(x=X[0], y=Y[0])

    assert w().compile(compute_values=False).execute().stats().task_count == 1
    assert documented.trace().ops == ()


def test_an_out_scalar_parameter_is_refused():
    """tl.store writes tiles only, so an Out[Scalar[...]] could never be written."""
    with pytest.raises(PtortTypeError, match=r"^kernel 'k' parameter 's' is annotated Out\[.*\]: a kernel cannot "
                                             r"write a scalar"):
        @kernel
        def k(x: In[T], y: Out[T], s: Out[float]):
            tl.store(y, tl.load(x))


# -- 4. integer results past the dtype -----------------------------------------------------------------------------
def cast_kernel(src_dtype, dst_dtype):
    @kernel
    def to_int(src: In[Tile[1, 4, src_dtype]], dst: Out[Tile[1, 4, dst_dtype]]):
        tl.store(dst, tl.cast(tl.load(src), dst_dtype))
    return to_int


def test_a_cast_of_nan_or_out_of_range_floats_to_an_int_dtype_is_refused_and_writes_nothing():
    k = cast_kernel(F32, I32)
    d = np.array([[[np.nan, 3e9, -3e9, 300.0]]], np.float32)
    X, Y = Tensor(data=d), Tensor(data=np.full((1, 1, 4), 5, np.int32))

    @workload
    def w():
        k(src=X[0], dst=Y[0])

    with pytest.raises(KernelExecutionError) as e:
        w().compile().execute()
    assert str(e.value).startswith("kernel 'to_int' failed at `cast I32` on task 0: cast to I32 of values with no I32 "
                                   "value (nan, inf, or outside its range -2147483648..2147483647): nan at [0, 0], "
                                   "3000000000.0 at [0, 1], -3000000000.0 at [0, 2]; ")
    assert "tl.where(tl.eq(x, x), x, 0.0)" in e.value.hint
    assert (Y.data == 5).all()


@pytest.mark.parametrize("src, dst, value, ok", [
    (np.float32, U8, 300.0, False), (np.float32, U8, 256.0, False), (np.float32, U8, -1.0, False),
    (np.float32, U8, 255.4, True), (np.float32, U8, -0.5, True), (np.float32, U8, 255.5, False),
    (np.float32, U8, -0.6, False), (np.float16, DType.I16, np.inf, False),
    (ml_dtypes.bfloat16, I32, 3e9, False), (np.float32, DType.I64, 3e9, True),
    (np.float64, DType.I64, 2.0**63, False), (np.float64, DType.I64, -(2.0**63), True),
    (np.int32, U8, 300, False), (np.int32, DType.U32, -1, False), (np.int64, I32, 2**40, False),
    (np.int32, U8, 255, True),
])
def test_casts_to_int_dtypes_take_only_values_the_dtype_holds(src, dst, value, ok):
    """In range, a float cast rounds to nearest, halves to even (255.4 -> 255, -0.5 -> 0), as Ascend C's default
    RoundMode CAST_NONE does (CAST_RINT for a lossy conversion: hiascend.com, Ascend C API "Cast"); past the range
    after rounding (255.5 -> 256, -0.6 -> -1), or nan/inf, it is refused."""
    data = np.full((1, 1, 4), value, dtype=src)
    k = cast_kernel(DType.from_numpy(src), dst)
    if ok:
        out = run_one(k, src=data, dst=np.zeros((1, 1, 4), dst.np_dtype))
        whole = np.rint(data.astype(np.float64)) if data.dtype.kind in "fV" else data
        assert (out["dst"].data == whole.astype(dst.np_dtype)).all()
    else:
        with pytest.raises(KernelExecutionError, match=rf"failed at `cast {dst}` on task 0: cast to {dst} of values "
                                                       rf"with no {dst} value"):
            run_one(k, src=data, dst=np.zeros((1, 1, 4), dst.np_dtype))


def binary_kernel(op, dtype, out_dtype=None):
    out_dtype = out_dtype or dtype

    @kernel
    def k(a: In[Tile[2, 2, dtype]], b: In[Tile[2, 2, dtype]], y: Out[Tile[2, 2, out_dtype]]):
        tl.store(y, getattr(tl, op)(tl.load(a), tl.load(b)))
    return k


@pytest.mark.parametrize("op, dtype, a, b, text", [
    ("add", DType.I8, 100, 100, "I8 add overflows at element [0, 0] (and 3 more): 100 + 100 = 200 is outside the "
                                "range of I8 (-128..127), and numpy would silently wrap it to -56"),
    ("sub", U8, 3, 5, "U8 sub overflows at element [0, 0] (and 3 more): 3 - 5 = -2 is outside the range of U8 "
                      "(0..255), and numpy would silently wrap it to 254"),
    ("mul", DType.I16, 300, 300, "I16 mul overflows at element [0, 0] (and 3 more): 300 * 300 = 90000 is outside"),
    ("mul", I32, 2**16, 2**15, "I32 mul overflows at element [0, 0] (and 3 more): 65536 * 32768 = 2147483648 is"),
    ("add", DType.I64, 2**62, 2**62, "I64 add overflows at element [0, 0] (and 3 more): 4611686018427387904 + "),
    ("mul", DType.U64, 2**32, 2**32, "U64 mul overflows at element [0, 0] (and 3 more): 4294967296 * 4294967296 = "),
    ("div", DType.I8, -128, -1, "I8 div overflows at element [0, 0] (and 3 more): -128 // -1 = 128 is outside"),
    # (an I32 matmul is refused at trace time since hunt 10c F6: the cube has no I32 mode)
])
def test_integer_results_past_the_dtype_are_refused_not_wrapped(op, dtype, a, b, text):
    k = binary_kernel(op, dtype)
    with pytest.raises(KernelExecutionError) as e:
        run_one(k, a=np.full((1, 2, 2), a, dtype.np_dtype), b=np.full((1, 2, 2), b, dtype.np_dtype),
                y=np.zeros((1, 2, 2), dtype.np_dtype))
    assert str(e.value).startswith(f"kernel 'k' failed at `{op}` on task 0: {text}")
    assert e.value.hint.startswith("ptort_lab does not model what the NPU does past an integer dtype's range")


@pytest.mark.parametrize("op, dtype, a, b, want", [
    ("add", DType.I8, 100, 27, 127), ("sub", U8, 5, 5, 0), ("mul", I32, 2**16, 2**15 - 1, 2**31 - 2**16),
    ("div", DType.I8, -128, 1, -128), ("matmul", DType.I8, 127, 127, 2 * 127 * 127),
])
def test_integer_results_in_range_are_computed(op, dtype, a, b, want):
    out_dtype = I32 if op == "matmul" and dtype is DType.I8 else dtype
    k = binary_kernel(op, dtype, out_dtype)
    out = run_one(k, a=np.full((1, 2, 2), a, dtype.np_dtype), b=np.full((1, 2, 2), b, dtype.np_dtype),
                  y=np.zeros((1, 2, 2), out_dtype.np_dtype))
    assert (out["y"].data == want).all()


@pytest.mark.parametrize("op, dtype, value, text", [
    ("neg", DType.I8, -128, "I8 neg overflows at element [0, 0] (and 3 more): -(-128) = 128 is outside"),
    ("abs", DType.I8, -128, "I8 abs overflows at element [0, 0] (and 3 more): |-128| = 128 is outside"),
    ("neg", U8, 1, "U8 neg overflows at element [0, 0] (and 3 more): -(1) = -1 is outside"),
])
def test_unary_integer_results_past_the_dtype_are_refused(op, dtype, value, text):
    @kernel
    def k(a: In[Tile[2, 2, dtype]], y: Out[Tile[2, 2, dtype]]):
        tl.store(y, getattr(tl, op)(tl.load(a)))

    with pytest.raises(KernelExecutionError, match=r"^kernel 'k' failed at `" + op + "` on task 0: ") as e:
        run_one(k, a=np.full((1, 2, 2), value, dtype.np_dtype), y=np.zeros((1, 2, 2), dtype.np_dtype))
    assert text in str(e.value)


def test_an_i16_row_sum_past_its_range_is_refused_and_an_i8_sum_accumulates_in_i32():
    @kernel
    def sum16(a: In[Tile[2, 4, DType.I16]], y: Out[Tile[2, 1, DType.I16]]):
        tl.store(y, tl.rowsum(tl.load(a)))

    with pytest.raises(KernelExecutionError, match=r"I16 rowsum overflows at element \[0, 0\] \(and 1 more\): the "
                                                   r"sum of row 0 is 40000 is outside the range of I16 "
                                                   r"\(-32768\.\.32767\), and numpy would silently wrap it to -25536"):
        run_one(sum16, a=np.full((1, 2, 4), 10_000, np.int16), y=np.zeros((1, 2, 1), np.int16))

    @kernel
    def sum8(a: In[Tile[2, 4, DType.I8]], y: Out[Tile[2, 1, I32]]):
        tl.store(y, tl.rowsum(tl.load(a)))

    assert (run_one(sum8, a=np.full((1, 2, 4), 127, np.int8), y=np.zeros((1, 2, 1), np.int32))["y"].data
            == 508).all()


# -- 5. steady state with values -------------------------------------------------------------------------------------
def test_steady_state_of_a_program_compiled_for_values_is_refused():
    X, Y, Z = tensors3()
    program = pipeline(X, Y, Z).compile(compute_values=True)
    with pytest.raises(PtortValueError) as e:
        program.execute(steady_state=True)
    assert str(e.value).startswith("execute(steady_state=True) is a timing-only run, but this program was compiled "
                                   "with compute_values=True and kernel 'copy' writes 'dst': a steady-state run "
                                   "would leave those outputs unwritten.")
    assert "compile(compute_values=False).execute(steady_state=True)" in e.value.hint
    assert (Z.data == 7).all()


def test_steady_state_of_a_default_compiled_workload_that_writes_is_refused_and_timing_only_runs():
    X, Y, Z = tensors3()

    @workload
    def w():
        for t in P(Dense[4]()):
            copy[t](src=X[t], dst=Z[t])

    with pytest.raises(PtortValueError, match=r"^execute\(steady_state=True\) is a timing-only run, but this program "
                                              r"computes values \(compile\(\)'s default, compute_values=True\)"):
        w().compile().execute(steady_state=True)
    assert w().compile(compute_values=False).execute(steady_state=True).stats().task_count == 4
    assert (Z.data == 7).all()


def test_steady_state_of_tasks_that_write_nothing_still_runs_with_default_options():
    """docs/howto/long_runs.md: pinned kernels with no parameters compute no values, so nothing is lost."""
    load = kernel(name="load", cycles=100)(lambda: None)
    ch = Channel(name="ch", depth=2)
    src = process("src").produces(ch).body(for_each(Dense[100](), lambda t: send(ch, task(load, [t], {}))))
    dst = process("dst").consumes(ch).body(consume(ch, lambda t: task(load, [t], {})))
    program = connect(src, dst).compile(cost_model=PinnedCosts())
    assert program.execute(steady_state=True).stats().total_cycles == program.execute().stats().total_cycles


# -- 6. shapes checked when the kernel runs ------------------------------------------------------------------------
def test_a_row_is_not_broadcast_into_a_tile_with_type_check_off():
    X = Tensor(data=np.random.default_rng(1).random((4, 8)).astype(np.float32))
    Y = Tensor(data=np.zeros((4, 8, 8), np.float32))

    @workload(type_check=False)
    def w():
        for t in P(Dense[4]()):
            copy[t](src=X[t], dst=Y[t])

    with pytest.raises(KernelExecutionError) as e:
        w().compile().execute()
    assert str(e.value).startswith("kernel 'copy' parameter 'src' is a 8x8 F32 tile, but the launch for tile 0 passes "
                                   "Tensor(f32[4, 8])[0] of shape (8,) and dtype float32; numpy would broadcast")
    assert e.value.where.code == "copy[t](src=X[t], dst=Y[t])"
    assert (Y.data == 0).all()


def test_a_wrong_dtype_or_a_number_for_a_tile_is_refused_with_type_check_off():
    X64 = Tensor(data=np.ones((1, 8, 8), np.float64))
    Y = Tensor(data=np.zeros((1, 8, 8), np.float32))

    @workload(type_check=False)
    def w():
        copy(src=X64[0], dst=Y[0])

    with pytest.raises(KernelExecutionError, match=r"^kernel 'copy' parameter 'src' is a 8x8 F32 tile, but the launch "
                                                   r"for task 0 passes .* of shape \(8, 8\) and dtype float64"):
        w().compile().execute()

    @workload(type_check=False)
    def v():
        copy(src=2.5, dst=Y[0])

    with pytest.raises(KernelExecutionError, match=r"^kernel 'copy' parameter 'src' is a 8x8 F32 tile, but the launch "
                                                   r"for task 0 passes float 2.5, not a tensor view\."):
        v().compile().execute()
    assert (Y.data == 0).all()


# -- 11. placement given twice ---------------------------------------------------------------------------------------
def test_compile_placement_that_contradicts_place_is_refused():
    X, Y, Z = tensors3()
    pipe = pipeline(X, Y, Z).place({"a": 0, "b": 0})
    with pytest.raises(PtortValueError) as e:
        pipe.compile(placement={"a": 0, "b": 5})
    assert str(e.value).startswith("compile(placement={'a': 0, 'b': 5}) contradicts the pipeline's own "
                                   ".place({'a': 0, 'b': 0}); a pipeline is placed once")
    program = pipe.compile(placement={"a": 0, "b": 0}).execute()  # the same placement twice: nothing to drop
    assert {s.core for s in program.trace().spans} == {0}


# -- 12. cycle counts past 2**53 -------------------------------------------------------------------------------------
def test_channel_latency_past_2_53_is_refused():
    X, Y, Z = tensors3()
    pipe = pipeline(X, Y, Z)
    with pytest.raises(PtortValueError, match=r"^compile\(channel_latency_cycles=\.\.\.\): channel_latency_cycles "
                                              r"must be at most 2\*\*53 cycles, got 10{30}\."):
        pipe.compile(channel_latency_cycles=10**30)
    with pytest.raises(PtortValueError, match=r"^Machine 'ascend_910b': channel_latency_cycles must be at most "
                                              r"2\*\*53 \(cycles\)"):  # (the Machine itself refuses it now)
        pipe.compile(machine=ascend_910b.replace(channel_latency_cycles=2**60))
    program = pipe.compile(channel_latency_cycles=2**53, compute_values=False)
    with pytest.raises(PtortValueError, match=r"^set_symbol_u64\(.*\): channel_latency_cycles must be at most 2\*\*53"):
        program.set_symbol_u64("__pto_wsp_channel_latency_cycles", 2**53 + 1)
    with pytest.raises(SimulationError) as e:  # the bound itself is taken; a run whose times pass it stops at its end
        program.execute()
    assert e.value.what.startswith("the run ends at cycle ") and "past 2**53" in e.value.what
    assert e.value.hint.startswith("channel_latency_cycles=9,007,199,254,740,992 is more than a second per hop")


def test_kernel_cycles_past_2_53_are_refused_and_numpy_ints_are_taken():
    with pytest.raises(PtortValueError, match=r"^@kernel\(cycles=\.\.\.\) must be an int in 0\.\.2\*\*53, got "
                                              r"9007199254740993\."):
        kernel(name="big", cycles=2**53 + 1)(lambda: None)
    k = kernel(name="np", cycles=np.int64(5))(lambda: None)
    assert k.cycles == 5 and type(k.cycles) is int


def test_a_cycles_function_returning_more_than_2_53_is_refused_when_it_runs():
    a = kernel(name="a")(lambda: None)

    @workload
    def w():
        for t in P(Dense[2]()):
            task(a, [t], {}, cycles=lambda task_: 2**60)

    with pytest.raises(PtortValueError, match=r"^the cycles= function of task 0 \(a\) returned 1152921504606846976; "
                                              r"it must return an int in 0\.\.2\*\*53\."):
        w().compile().execute()


def test_a_pinned_task_past_2_53_is_refused_where_it_is_made():
    """task(cycles=...) refuses it at its line (Task.pinned_cycles keeps a backstop for tasks made otherwise)."""
    a = kernel(name="a")(lambda: None)

    @workload
    def w():
        for t in P(Dense[2]()):
            task(a, [t], {}, cycles=2**60)

    with pytest.raises(PtortValueError, match=r"^task\(cycles=\.\.\.\) must be at most 2\*\*53, got "
                                              r"1152921504606846976\."):
        w()


def test_pinned_cycles_past_2_53_are_refused_where_they_are_given():
    """task(cycles=), PinnedCosts(default_cycles=) and what a cycles= function returns under PinnedCosts (its fast
    path included) stop at 2**53: the trace keeps times exact only up to there."""
    from ptort_lab import Dense, PinnedCosts, for_each, task

    with pytest.raises(PtortValueError, match=r"^task\(cycles=\.\.\.\) must be at most 2\*\*53, got 115292150"):
        task("k", [0], cycles=2**60)
    with pytest.raises(PtortValueError, match=r"^PinnedCosts\(default_cycles=\.\.\.\) must be at most 2\*\*53"):
        PinnedCosts(default_cycles=2**60)
    src = Channel("c", depth=1)
    def huge(_task):  # (a function: only what it returns can be checked)
        return 2**60

    a = process("a").produces(src).body(for_each(Dense[2](), lambda t: send(src, task("k", [t], cycles=huge))))
    b = process("b").consumes(src).body(consume(src, lambda t: task("j", [t], cycles=1)))
    with pytest.raises(PtortValueError, match=r"returned 1152921504606846976; it must return an int in 0\.\.2\*\*53"):
        connect(a, b).compile(cost_model=PinnedCosts()).execute()
