"""Kernel IR: what @kernel traces, how it prints, and the trace-time checks of tl.* operands."""
import inspect
from textwrap import dedent

import pytest

from ptort_lab import (
    Constexpr,
    DType,
    In,
    InOut,
    KernelIR,
    OpKind,
    Out,
    PtortTypeError,
    PtortValueError,
    Tile,
    kernel,
    pto,
    tl,
)

F16, F32, BF16 = DType.F16, DType.F32, DType.BF16


def test_spec_load_kernel_traces_three_ops(spec_kernels):
    """The spec's load_kernel traces to exactly 3 ops: load, cast, store."""
    ir = spec_kernels.load.trace()
    assert isinstance(ir, KernelIR)
    assert len(ir.ops) == 3
    assert [op.kind for op in ir.ops] == [OpKind.LOAD, OpKind.CAST, OpKind.STORE]


def test_spec_load_kernel_short_op_text(spec_kernels):
    """Each op of the spec's load_kernel prints as in the spec: `load src`, `cast F16`, `store dst`."""
    assert [str(op) for op in spec_kernels.load.trace().ops] == ["load src", "cast F16", "store dst"]


def test_spec_compute_and_store_kernels_trace_three_ops(spec_kernels):
    """compute_kernel is load/mul/store and store_kernel is load/cast/store, 3 ops each."""
    assert [str(op) for op in spec_kernels.compute.trace().ops] == ["load input_tile", "mul", "store output_tile"]
    assert [str(op) for op in spec_kernels.store.trace().ops] == ["load src", "cast F32", "store dst"]


def test_load_cast_store_prints_golden_text(spec_kernels):
    """str(ir) of load_kernel is one line per op, with the annotation types."""
    assert str(spec_kernels.load.trace()) == dedent("""\
        kernel load_kernel(src: In[f32[128,128]], dst: Out[f16[128,128]]):
          a: f32[128,128] = load src
          b: f16[128,128] = cast[F16] a
          store dst, b""")


def test_rmsnorm_like_kernel_prints_five_ops_with_f32_row_vector():
    """mul/rowmean/rsqrt/mul/store: 5 ops; rowmean of an F16 tile is an F32 [rows, 1] vector."""
    @kernel
    def rmsnorm(x: In[Tile[16, 64, F16]], gamma: In[Tile[16, 64, F32]], y: Out[Tile[16, 64, F32]]):
        sq = tl.mul(x, x)
        ms = tl.rowmean(sq)
        r = tl.rsqrt(ms)
        tl.store(y, tl.mul(gamma, r))

    ir = rmsnorm.trace()
    assert len(ir.ops) == 5
    rowmean = ir.ops[1]
    assert rowmean.kind is OpKind.ROWMEAN
    assert rowmean.result.shape == (16, 1)
    assert rowmean.result.dtype is F32
    assert str(ir) == dedent("""\
        kernel rmsnorm(x: In[f16[16,64]], gamma: In[f32[16,64]], y: Out[f32[16,64]]):
          a: f16[16,64] = mul x, x
          b: f32[16,1] = rowmean a
          c: f32[16,1] = rsqrt b
          d: f32[16,64] = mul gamma, c
          store y, d""")


def test_matmul_f16_accumulates_in_f32_golden_text():
    """matmul of F16 [16,32] @ [32,8] gives F32 [16,8]; temporaries skip names taken by parameters."""
    @kernel
    def mm(a: In[Tile[16, 32, F16]], b: In[Tile[32, 8, F16]], c: Out[Tile[16, 8, F32]]):
        tl.store(c, tl.matmul(tl.load(a), tl.load(b)))

    assert str(mm.trace()) == dedent("""\
        kernel mm(a: In[f16[16,32]], b: In[f16[32,8]], c: Out[f32[16,8]]):
          d: f16[16,32] = load a
          e: f16[32,8] = load b
          f: f32[16,8] = matmul d, e
          store c, f""")


def test_matmul_with_accumulator_golden_text():
    """bgemm-like matmul(a, b, acc) + store: the accumulator is the third operand."""
    @kernel
    def gemm(x: In[Tile[16, 32, F16]], w: In[Tile[32, 8, F16]], acc: In[Tile[16, 8, F32]],
             out: Out[Tile[16, 8, F32]]):
        tl.store(out, tl.matmul(x, w, acc))

    assert str(gemm.trace()) == dedent("""\
        kernel gemm(x: In[f16[16,32]], w: In[f16[32,8]], acc: In[f32[16,8]], out: Out[f32[16,8]]):
          a: f32[16,8] = matmul x, w, acc
          store out, a""")


def test_scalar_forms_print_literals():
    """tl.mul(x, 2.0), tl.adds, `3.0 - z` and tl.div(1, w) print their literal operands (`mul a, 2.0`)."""
    @kernel
    def scal(src: In[Tile[8, 8, F32]], dst: Out[Tile[8, 8, F32]]):
        x = tl.load(src)
        y = tl.mul(x, 2.0)
        z = tl.adds(y, 1)
        w = 3.0 - z
        tl.store(dst, tl.div(1, w))

    ir = scal.trace()
    assert str(ir) == dedent("""\
        kernel scal(src: In[f32[8,8]], dst: Out[f32[8,8]]):
          a: f32[8,8] = load src
          b: f32[8,8] = mul a, 2.0
          c: f32[8,8] = add b, 1.0
          d: f32[8,8] = sub 3.0, c
          e: f32[8,8] = div 1.0, d
          store dst, e""")
    assert [str(op) for op in ir.ops] == ["load src", "mul 2.0", "add 1.0", "sub 3.0", "div 1.0", "store dst"]


def test_compare_and_where_golden_text():
    """tl.gt makes a U8 mask printed as cmp[gt]; tl.where picks between a tile and a literal."""
    @kernel
    def clamp(src: In[Tile[8, 8, F32]], dst: Out[Tile[8, 8, F32]]):
        x = tl.load(src)
        m = tl.gt(x, 0.0)
        tl.store(dst, tl.where(m, x, 0.5))

    assert str(clamp.trace()) == dedent("""\
        kernel clamp(src: In[f32[8,8]], dst: Out[f32[8,8]]):
          a: f32[8,8] = load src
          b: u8[8,8] = cmp[gt] a, 0.0
          c: f32[8,8] = where b, a, 0.5
          store dst, c""")


def test_constexpr_parameter_prints_its_value():
    """A Constexpr parameter is printed in the header with the value it was traced with."""
    @kernel
    def scale(src: In[Tile[8, 8, F32]], k: Constexpr[int], dst: Out[Tile[8, 8, F32]]):
        tl.store(dst, tl.muls(tl.load(src), float(k)))

    assert str(scale.trace(k=3)) == dedent("""\
        kernel scale[k=3](src: In[f32[8,8]], dst: Out[f32[8,8]]):
          a: f32[8,8] = load src
          b: f32[8,8] = mul a, 3.0
          store dst, b""")


@pytest.mark.parametrize("rows, cols, dtype", [(32, 16, F32), (8, 64, F16), (16, 16, BF16)])
def test_annotations_give_the_ir_types(rows, cols, dtype):
    """Shapes and dtypes in the IR come from the annotations, not from defaults."""
    @kernel
    def ident(src: In[Tile[rows, cols, dtype]], dst: Out[Tile[rows, cols, dtype]]):
        tl.store(dst, tl.load(src))

    ir = ident.trace()
    assert ir.param("src").type == Tile[rows, cols, dtype]
    assert ir.ops[0].result.shape == (rows, cols)
    assert ir.ops[0].result.dtype is dtype
    assert str(ir).splitlines()[1] == f"  a: {dtype.value}[{rows},{cols}] = load src"


def test_reductions_have_vector_shapes_and_widened_dtypes():
    """rowsum/rowmax/rowmean give [r,1], colsum/colmax [1,c]; F16 sums widen to F32, maxima keep F16."""
    @kernel
    def reds(x: In[Tile[8, 16, F16]]):
        for f in (tl.rowsum, tl.rowmax, tl.rowmean, tl.colsum, tl.colmax):
            f(x)

    got = [(op.kind.value, op.result.shape, op.result.dtype) for op in reds.trace().ops]
    assert got == [("rowsum", (8, 1), F32), ("rowmax", (8, 1), F16), ("rowmean", (8, 1), F32),
                   ("colsum", (1, 16), F32), ("colmax", (1, 16), F16)]


def test_broadcast_result_takes_the_full_tile_shape():
    """A [r,c] op a [r,1] or [1,c] vector gives an [r,c] tile, whichever side the vector is on."""
    @kernel
    def bc(x: In[Tile[8, 16, F32]], r: In[Tile[8, 1, F32]], c: In[Tile[1, 16, F32]]):
        tl.sub(x, r)
        tl.div(c, x)

    assert [op.result.shape for op in bc.trace().ops] == [(8, 16), (8, 16)]


def test_pto_is_an_alias_of_tl():
    """pto.* records the same ops as tl.*."""
    @kernel
    def via_pto(src: In[Tile[8, 8, F32]], dst: Out[Tile[8, 8, F16]]):
        tl.store(dst, pto.cast(pto.load(src), F16))

    assert pto.mul is tl.mul
    assert [str(op) for op in via_pto.trace().ops] == ["load src", "cast F16", "store dst"]


def test_ops_record_the_users_line():
    """Each traced op carries the user's file and line."""
    lines = []

    @kernel
    def k(src: In[Tile[8, 8, F32]], dst: Out[Tile[8, 8, F32]]):
        lines.append(inspect.currentframe().f_lineno + 1)
        x = tl.load(src)
        tl.store(dst, x)

    op = k.trace().ops[0]
    assert op.loc.lineno == lines[0]
    assert op.loc.filename == __file__


def test_python_operators_trace_tl_ops():
    """`a * b + 1.0`, `-a` and `a @ b` on traced values record mul, add, neg and matmul."""
    @kernel
    def ops(a: In[Tile[8, 8, F16]], b: In[Tile[8, 8, F16]]):
        _ = a * b + 1.0
        _ = -a
        _ = a @ b

    assert [op.kind.value for op in ops.trace().ops] == ["mul", "add", "neg", "matmul"]


def test_trace_is_cached():
    """Tracing twice returns the same IR object and runs the body once."""
    calls = []

    @kernel
    def k(src: In[Tile[8, 8, F32]], dst: Out[Tile[8, 8, F32]]):
        calls.append(1)
        tl.store(dst, tl.load(src))

    assert k.trace() is k.trace()
    assert calls == [1]


# -- trace-time checks: each error names the op, the operands and the user's line ---------------------------------
def _trace_error(build, where) -> str:
    """@kernel traces at definition, so the mistake surfaces where the kernel is defined."""
    lines: list[int] = []
    with pytest.raises(PtortTypeError) as e:
        build(lines)
    return where(e, lines[0])


def test_shape_mismatch_names_op_shapes_and_line(where):
    """tl.mul of (8,16) and (16,8) tiles fails naming tl.mul, both shapes, the kernel and the line."""
    def build(lines):
        @kernel
        def bad(a: In[Tile[8, 16, F32]], b: In[Tile[16, 8, F32]], c: Out[Tile[8, 16, F32]]):
            x, y = tl.load(a), tl.load(b)
            lines.append(inspect.currentframe().f_lineno + 1)
            tl.store(c, tl.mul(x, y))
        return bad

    msg = _trace_error(build, where)
    assert msg.startswith("tl.mul: got tiles of shape (8, 16) and (16, 8)")
    assert "kernel 'bad'" in msg
    assert "tl.store(c, tl.mul(x, y))" in msg


def test_dtype_mismatch_names_operands(where):
    """tl.add of F32 and F16 tiles names both parameters with their types and suggests tl.cast."""
    def build(lines):
        @kernel
        def bad(a: In[Tile[8, 16, F32]], b: In[Tile[8, 16, F16]], c: Out[Tile[8, 16, F32]]):
            lines.append(inspect.currentframe().f_lineno + 1)
            tl.store(c, tl.add(a, b))
        return bad

    msg = _trace_error(build, where)
    assert "tl.add: operands have different dtypes: a (f32[8,16]) and b (f16[8,16])" in msg
    assert "tl.cast" in msg


def test_matmul_inner_dim_mismatch(where):
    """matmul [8,16] @ [8,16] fails naming both operands and 16 != 8."""
    def build(lines):
        @kernel
        def bad(a: In[Tile[8, 16, F16]], b: In[Tile[8, 16, F16]], c: Out[Tile[8, 16, F32]]):
            lines.append(inspect.currentframe().f_lineno + 1)
            tl.store(c, tl.matmul(a, b))
        return bad

    msg = _trace_error(build, where)
    assert "tl.matmul: inner dimensions differ: a (f16[8,16]) @ b (f16[8,16]) (16 != 8)" in msg


def test_matmul_accumulator_of_wrong_dtype(where):
    """An F16 accumulator for an F32 matmul result fails naming both types."""
    def build(lines):
        @kernel
        def bad(a: In[Tile[8, 16, F16]], b: In[Tile[16, 4, F16]], acc: In[Tile[8, 4, F16]]):
            lines.append(inspect.currentframe().f_lineno + 1)
            tl.matmul(a, b, acc)
        return bad

    msg = _trace_error(build, where)
    assert "acc=f16[8,4] out=f32[8,4]" in msg


def test_store_into_in_param(where):
    """Storing into an In[...] parameter fails and says to annotate it Out or InOut."""
    def build(lines):
        @kernel
        def bad(a: In[Tile[8, 8, F32]], c: Out[Tile[8, 8, F32]]):
            lines.append(inspect.currentframe().f_lineno + 1)
            tl.store(a, tl.load(a))
        return bad

    msg = _trace_error(build, where)
    assert "tl.store: parameter 'a' is In[...] and cannot be written" in msg
    assert "Out[...] or InOut[...]" in msg


def test_read_of_out_param(where):
    """Loading an Out[...] parameter fails and suggests InOut."""
    def build(lines):
        @kernel
        def bad(a: In[Tile[8, 8, F32]], c: Out[Tile[8, 8, F32]]):
            lines.append(inspect.currentframe().f_lineno + 1)
            tl.store(c, tl.load(c))
        return bad

    msg = _trace_error(build, where)
    assert "tl.load: parameter 'c' is Out[...] and cannot be read" in msg
    assert "InOut" in msg


def test_out_param_used_as_operand(where):
    """Using an Out[...] parameter directly as an operand of tl.add fails like a load."""
    def build(lines):
        @kernel
        def bad(a: In[Tile[8, 8, F32]], c: Out[Tile[8, 8, F32]]):
            lines.append(inspect.currentframe().f_lineno + 1)
            tl.store(c, tl.add(a, c))
        return bad

    assert "tl.add: parameter 'c' is Out[...] and cannot be read" in _trace_error(build, where)


def test_inout_param_can_be_read_and_written():
    """An InOut parameter is both loadable and storable."""
    @kernel
    def acc(x: In[Tile[8, 8, F32]], y: InOut[Tile[8, 8, F32]]):
        tl.store(y, tl.add(tl.load(y), x))

    assert [str(op) for op in acc.trace().ops] == ["load y", "add x", "store y"]


def test_store_shape_mismatch(where):
    """Storing a [8,1] row vector into an [8,8] destination fails naming both types."""
    def build(lines):
        @kernel
        def bad(a: In[Tile[8, 8, F32]], c: Out[Tile[8, 8, F32]]):
            lines.append(inspect.currentframe().f_lineno + 1)
            tl.store(c, tl.rowsum(a))
        return bad

    msg = _trace_error(build, where)
    assert "source f32[8,1] does not fit destination 'c' (f32[8,8]): shapes differ" in msg


def test_store_dtype_mismatch_suggests_cast(where):
    """Storing F32 into an F16 destination fails and spells the tl.cast fix."""
    def build(lines):
        @kernel
        def bad(a: In[Tile[8, 8, F32]], c: Out[Tile[8, 8, F16]]):
            lines.append(inspect.currentframe().f_lineno + 1)
            tl.store(c, tl.load(a))
        return bad

    msg = _trace_error(build, where)
    assert "dtypes differ" in msg
    assert "tl.store(c, tl.cast(x, DType.F16))" in msg


def test_cast_needs_a_dtype(where):
    """tl.cast(x, "f16") fails and shows the DType spelling."""
    def build(lines):
        @kernel
        def bad(a: In[Tile[8, 8, F32]]):
            lines.append(inspect.currentframe().f_lineno + 1)
            tl.cast(a, "f16")
        return bad

    assert "tl.cast: dtype must be a DType, got 'f16'" in _trace_error(build, where)


def test_transcendental_on_integer_tile(where):
    """tl.exp of an I32 tile fails and suggests casting to F32."""
    def build(lines):
        @kernel
        def bad(a: In[Tile[8, 8, DType.I32]]):
            lines.append(inspect.currentframe().f_lineno + 1)
            tl.exp(a)
        return bad

    msg = _trace_error(build, where)
    assert "tl.exp: needs a floating-point tile" in msg
    assert "tl.cast" in msg


def test_where_mask_must_come_from_a_comparison(where):
    """tl.where with an F32 mask fails and names the comparison ops."""
    def build(lines):
        @kernel
        def bad(a: In[Tile[8, 8, F32]]):
            lines.append(inspect.currentframe().f_lineno + 1)
            tl.where(a, a, 0.0)
        return bad

    assert "tl.where: mask must come from a comparison (U8)" in _trace_error(build, where)


def test_non_tile_operand(where):
    """tl.mul with a string operand fails naming its type and value."""
    def build(lines):
        @kernel
        def bad(a: In[Tile[8, 8, F32]]):
            lines.append(inspect.currentframe().f_lineno + 1)
            tl.mul(a, "2")
        return bad

    assert "tl.mul: operand must be a tile or a Python number, got str '2'" in _trace_error(build, where)


def test_kernel_op_summary_lists_the_spec_kernels_primitives(spec_kernels):
    """The spec's Kernels list: load_kernel is tl.load, tl.cast, tl.store; compute_kernel tl.load, tl.mul, tl.store."""
    from ptort_lab.dsl.printer import kernel_op_summary
    assert kernel_op_summary(spec_kernels.load.trace()) == "tl.load, tl.cast, tl.store"
    assert kernel_op_summary(spec_kernels.compute.trace()) == "tl.load, tl.mul, tl.store"
    assert kernel_op_summary(spec_kernels.store.trace()) == "tl.load, tl.cast, tl.store"


def test_kernel_traces_at_definition_but_waits_for_names_defined_later():
    """A body that calls a helper defined after the kernel is traced on first use instead of failing early."""
    @kernel
    def later(a: In[Tile[8, 8, F32]], b: Out[Tile[8, 8, F32]]):
        tl.store(b, helper_defined_below(tl.load(a)))  # noqa: F821 - defined below on purpose

    globals()["helper_defined_below"] = lambda x: tl.mul(x, 2.0)
    try:
        assert [str(op) for op in later.trace().ops] == ["load a", "mul 2.0", "store b"]
    finally:
        del globals()["helper_defined_below"]


def test_activations_and_transpose_print_in_short_and_full_form():
    @kernel
    def act(x: In[Tile[16, 64, DType.F32]], y: Out[Tile[64, 16, DType.F32]]):
        tl.store(y, tl.transpose(tl.silu(tl.load(x))))

    assert [str(op) for op in act.trace().ops] == ["load x", "silu", "transpose", "store y"]
    assert act.trace().dump() == ("kernel act(x: In[f32[16,64]], y: Out[f32[64,16]]):\n"
                                  "  a: f32[16,64] = load x\n"
                                  "  b: f32[16,64] = silu a\n"
                                  "  c: f32[64,16] = transpose b\n"
                                  "  store y, c")


def test_kernel_options_are_checked():
    """A misspelt option is named with the close match; C++ bodies are refused (they would be silently ignored);
    the reference's Triton-style options are kept."""
    with pytest.raises(PtortValueError, match=r"(?s)@kernel k: unknown option\(s\) \['cycle'\].*Did you mean 'cycles'"):
        @kernel(cycle=3)
        def k(a: In[Tile[4, 4, DType.F32]], b: Out[Tile[4, 4, DType.F32]]):
            tl.store(b, tl.load(a))
    with pytest.raises(PtortValueError, match=r"cpp_src \(a C\+\+ kernel body\) cannot be simulated"):
        @kernel(cpp_src="void k() {}")
        def k2(a: In[Tile[4, 4, DType.F32]], b: Out[Tile[4, 4, DType.F32]]):
            tl.store(b, tl.load(a))

    @kernel(num_warps=4, num_stages=2)
    def k3(a: In[Tile[4, 4, DType.F32]], b: Out[Tile[4, 4, DType.F32]]):
        tl.store(b, tl.load(a))

    assert k3.options == {"num_warps": 4, "num_stages": 2}


def test_broadcast_prints_its_target_shape():
    @kernel
    def bc(v: In[Tile[8, 1, DType.F32]], y: Out[Tile[8, 16, DType.F32]]):
        tl.store(y, tl.broadcast(tl.load(v), (8, 16)))

    assert [str(op) for op in bc.trace().ops] == ["load v", "broadcast [8,16]", "store y"]
