"""Every tl op, run by the simulator on real arrays, against the same computation written in plain numpy."""
import ml_dtypes
import numpy as np
import pytest

from ptort_lab import DType, In, Out, Tile, kernel, tl
from ptort_lab.errors import PtortTypeError, PtortValueError

F16, F32, BF16, U8 = DType.F16, DType.F32, DType.BF16, DType.U8
R, C = 8, 16
BF = np.dtype(ml_dtypes.bfloat16)
TOL = {np.dtype(np.float32): dict(rtol=1e-6, atol=1e-6), np.dtype(np.float16): dict(rtol=1e-3, atol=1e-3),
       BF: dict(rtol=1e-2, atol=1e-2)}


def rand(shape, dtype, lo=-4.0, hi=4.0, seed=0):
    """Uniform random values in [lo, hi), rounded to ``dtype``."""
    return np.random.default_rng(seed).uniform(lo, hi, shape).astype(dtype)


def close(got, want):
    """Dtype-appropriate comparison; the result dtype must match exactly."""
    assert got.dtype == want.dtype, (got.dtype, want.dtype)
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), **TOL[got.dtype])


def binary_kernel(op, dtype, rhs_shape=(R, C)):
    @kernel
    def k(a: In[Tile[R, C, dtype]], b: In[Tile[rhs_shape[0], rhs_shape[1], dtype]], out: Out[Tile[R, C, dtype]]):
        tl.store(out, op(tl.load(a), tl.load(b)))
    return k


NP_BINARY = {tl.add: np.add, tl.sub: np.subtract, tl.mul: np.multiply, tl.div: np.divide, tl.max: np.maximum,
             tl.min: np.minimum}


@pytest.mark.parametrize("dtype", [np.float32, np.float16, BF], ids=["f32", "f16", "bf16"])
@pytest.mark.parametrize("op", list(NP_BINARY), ids=lambda f: f.__name__)
def test_binary_ops_match_numpy(run_once, op, dtype):
    """add/sub/mul/div/max/min of two tiles equal numpy in the tiles' dtype."""
    a, b = rand((R, C), dtype, seed=1), rand((R, C), dtype, 0.5, 4.0, seed=2)
    got = run_once(binary_kernel(op, DType.from_numpy(dtype)), a=a, b=b, out=np.zeros((R, C), dtype))["out"]
    close(got, NP_BINARY[op](a, b).astype(dtype))


def test_f16_mul_rounds_to_f16(run_once):
    """F16 rounding is real: the F16 product differs from the F32 product of the same inputs."""
    a = np.full((R, C), 1.0009765625, np.float16)  # 1 + 2**-10, the F16 after 1
    k = binary_kernel(tl.mul, F16)
    got = run_once(k, a=a, b=a, out=np.zeros((R, C), np.float16))["out"]
    assert np.array_equal(got, a * a)
    assert got[0, 0] != np.float32(a[0, 0]) * np.float32(a[0, 0])


@pytest.mark.parametrize("op", list(NP_BINARY), ids=lambda f: f.__name__)
@pytest.mark.parametrize("vec", [(R, 1), (1, C)], ids=["row", "col"])
def test_broadcast_vector_operand_matches_numpy(run_once, op, vec):
    """A [r,c] tile op a [r,1] or [1,c] vector broadcasts like numpy."""
    a, v = rand((R, C), np.float32, seed=3), rand(vec, np.float32, 0.5, 2.0, seed=4)
    got = run_once(binary_kernel(op, F32, vec), a=a, b=v, out=np.zeros((R, C), np.float32))["out"]
    close(got, NP_BINARY[op](a, v))


def test_vector_on_the_left_broadcasts(run_once):
    """tl.sub(vector, tile) computes v - a with v broadcast along the rows."""
    @kernel
    def k(v: In[Tile[R, 1, F32]], a: In[Tile[R, C, F32]], out: Out[Tile[R, C, F32]]):
        tl.store(out, tl.sub(tl.load(v), tl.load(a)))

    v, a = rand((R, 1), np.float32, seed=5), rand((R, C), np.float32, seed=6)
    close(run_once(k, v=v, a=a, out=np.zeros((R, C), np.float32))["out"], v - a)


SCALAR_FORMS = {
    "adds": (lambda x: tl.adds(x, 1.5), lambda a: a + np.float32(1.5)),
    "subs": (lambda x: tl.subs(x, 1.5), lambda a: a - np.float32(1.5)),
    "muls": (lambda x: tl.muls(x, 2.5), lambda a: a * np.float32(2.5)),
    "divs": (lambda x: tl.divs(x, 4.0), lambda a: a / np.float32(4.0)),
    "maxs": (lambda x: tl.maxs(x, 0.25), lambda a: np.maximum(a, np.float32(0.25))),
    "mins": (lambda x: tl.mins(x, 0.25), lambda a: np.minimum(a, np.float32(0.25))),
    "mul_literal": (lambda x: tl.mul(x, 2.0), lambda a: a * np.float32(2.0)),
    "rsub_literal": (lambda x: 3.0 - x, lambda a: np.float32(3.0) - a),
    "rdiv_literal": (lambda x: tl.div(1, x), lambda a: np.float32(1.0) / a),
    "operators": (lambda x: x * x + 1.0, lambda a: a * a + np.float32(1.0)),
}


@pytest.mark.parametrize("name", list(SCALAR_FORMS))
def test_scalar_forms_match_numpy(run_once, name):
    """Tile-scalar forms (adds..mins, Python numbers on either side) equal numpy in F32."""
    ours, ref = SCALAR_FORMS[name]

    @kernel
    def k(a: In[Tile[R, C, F32]], out: Out[Tile[R, C, F32]]):
        tl.store(out, ours(tl.load(a)))

    a = rand((R, C), np.float32, 0.5, 4.0, seed=7)
    close(run_once(k, a=a, out=np.zeros((R, C), np.float32))["out"], ref(a))


def test_scalar_literal_takes_the_tile_dtype(run_once):
    """`x * 3.3` on an F16 tile multiplies by F16(3.3), as numpy does with an F16 scalar."""
    @kernel
    def k(a: In[Tile[R, C, F16]], out: Out[Tile[R, C, F16]]):
        tl.store(out, tl.load(a) * 3.3)

    a = rand((R, C), np.float16, seed=8)
    got = run_once(k, a=a, out=np.zeros((R, C), np.float16))["out"]
    assert np.array_equal(got, a * np.float16(3.3))


UNARY = {tl.exp: np.exp, tl.log: np.log, tl.sqrt: np.sqrt, tl.rsqrt: lambda x: 1 / np.sqrt(x),
         tl.neg: np.negative, tl.abs: np.abs, tl.relu: lambda x: np.maximum(x, 0)}


@pytest.mark.parametrize("dtype", [np.float32, np.float16, BF], ids=["f32", "f16", "bf16"])
@pytest.mark.parametrize("op", list(UNARY), ids=lambda f: f.__name__)
def test_unary_ops_match_numpy(run_once, op, dtype):
    """exp/log/sqrt/rsqrt/neg/abs/relu equal numpy (computed in float64, rounded to the dtype)."""
    positive = op in (tl.log, tl.sqrt, tl.rsqrt)
    a = rand((R, C), dtype, 0.1 if positive else -3.0, 3.0, seed=9)

    @kernel
    def k(x: In[Tile[R, C, DType.from_numpy(dtype)]], out: Out[Tile[R, C, DType.from_numpy(dtype)]]):
        tl.store(out, op(tl.load(x)))

    got = run_once(k, x=a, out=np.zeros((R, C), dtype))["out"]
    close(got, UNARY[op](a.astype(np.float64)).astype(dtype))


REDUCE = {tl.rowsum: (np.sum, 1), tl.rowmax: (np.max, 1), tl.rowmean: (np.mean, 1), tl.colsum: (np.sum, 0),
          tl.colmax: (np.max, 0)}


@pytest.mark.parametrize("dtype", [np.float32, np.float16], ids=["f32", "f16"])
@pytest.mark.parametrize("op", list(REDUCE), ids=lambda f: f.__name__)
def test_reductions_match_numpy(run_once, op, dtype):
    """Row/column sums, means and maxima equal numpy; F16 sums/means accumulate and return F32."""
    fn, axis = REDUCE[op]
    shape = (R, 1) if axis == 1 else (1, C)
    widen = fn is not np.max and dtype == np.float16
    out_dtype = np.float32 if widen else dtype
    a = rand((R, C), dtype, seed=10)

    @kernel
    def k(x: In[Tile[R, C, DType.from_numpy(dtype)]], out: Out[Tile[shape[0], shape[1], DType.from_numpy(out_dtype)]]):
        tl.store(out, op(tl.load(x)))

    got = run_once(k, x=a, out=np.zeros(shape, out_dtype))["out"]
    close(got, fn(a.astype(out_dtype), axis=axis, keepdims=True))


def test_matmul_f16_matches_numpy_in_f32(run_once):
    """matmul of F16 tiles equals numpy's F32 product of the same values."""
    @kernel
    def mm(a: In[Tile[16, 32, F16]], b: In[Tile[32, 8, F16]], c: Out[Tile[16, 8, F32]]):
        tl.store(c, tl.matmul(tl.load(a), tl.load(b)))

    a, b = rand((16, 32), np.float16, seed=11), rand((32, 8), np.float16, seed=12)
    got = run_once(mm, a=a, b=b, c=np.zeros((16, 8), np.float32))["c"]
    np.testing.assert_allclose(got, a.astype(np.float32) @ b.astype(np.float32), rtol=1e-5, atol=1e-4)
    assert got.dtype == np.float32


def test_matmul_with_accumulator_matches_numpy(run_once):
    """matmul(a, b, acc) equals acc + a @ b."""
    @kernel
    def gemm(a: In[Tile[16, 32, F16]], b: In[Tile[32, 8, F16]], acc: In[Tile[16, 8, F32]], c: Out[Tile[16, 8, F32]]):
        tl.store(c, tl.matmul(a, b, tl.load(acc)))

    a, b = rand((16, 32), np.float16, seed=13), rand((32, 8), np.float16, seed=14)
    acc = rand((16, 8), np.float32, seed=15)
    got = run_once(gemm, a=a, b=b, acc=acc, c=np.zeros((16, 8), np.float32))["c"]
    np.testing.assert_allclose(got, acc + a.astype(np.float32) @ b.astype(np.float32), rtol=1e-5, atol=1e-4)


def test_matmul_f32_stays_f32(run_once):
    """matmul of F32 tiles is an F32 product."""
    @kernel
    def mm(a: In[Tile[8, 4, F32]], b: In[Tile[4, 8, F32]], c: Out[Tile[8, 8, F32]]):
        tl.store(c, tl.matmul(a, b))

    a, b = rand((8, 4), np.float32, seed=16), rand((4, 8), np.float32, seed=17)
    np.testing.assert_allclose(run_once(mm, a=a, b=b, c=np.zeros((8, 8), np.float32))["c"], a @ b, rtol=1e-5)


@pytest.mark.parametrize("src, dst", [(np.float32, np.float16), (np.float16, np.float32), (np.float32, BF),
                                      (BF, np.float32), (np.float16, BF), (np.float32, np.int32)],
                         ids=["f32-f16", "f16-f32", "f32-bf16", "bf16-f32", "f16-bf16", "f32-i32"])
def test_cast_matches_numpy_astype(run_once, src, dst):
    """tl.cast equals numpy's astype exactly, including BF16 through ml_dtypes; a float -> int cast rounds to the
    nearest integer, halves to even (Ascend C's CAST_NONE: CAST_RINT when precision is lost), then converts."""
    a = rand((R, C), src, -100.0, 100.0, seed=18)

    @kernel
    def k(x: In[Tile[R, C, DType.from_numpy(src)]], out: Out[Tile[R, C, DType.from_numpy(dst)]]):
        tl.store(out, tl.cast(tl.load(x), DType.from_numpy(dst)))

    got = run_once(k, x=a, out=np.zeros((R, C), dst))["out"]
    assert got.dtype == np.dtype(dst)
    want = np.rint(a).astype(dst) if np.issubdtype(np.dtype(dst), np.integer) else a.astype(dst)
    assert np.array_equal(got, want)


@pytest.mark.parametrize("name, ref", [("lt", np.less), ("le", np.less_equal), ("gt", np.greater),
                                       ("ge", np.greater_equal), ("eq", np.equal), ("ne", np.not_equal)])
def test_comparisons_give_u8_masks(run_once, name, ref):
    """tl.lt/le/gt/ge/eq/ne give 1 where numpy's comparison holds, else 0 (U8)."""
    cmp = getattr(tl, name)

    @kernel
    def k(a: In[Tile[R, C, F32]], b: In[Tile[R, C, F32]], out: Out[Tile[R, C, U8]]):
        tl.store(out, cmp(tl.load(a), tl.load(b)))

    a = np.round(rand((R, C), np.float32, seed=19))
    b = np.round(rand((R, C), np.float32, seed=20))
    got = run_once(k, a=a, b=b, out=np.zeros((R, C), np.uint8))["out"]
    assert np.array_equal(got, ref(a, b).astype(np.uint8))
    assert 0 < got.sum() < R * C


def test_where_selects_between_tiles(run_once):
    """tl.where(a > b, a, b) equals np.where(a > b, a, b)."""
    @kernel
    def k(a: In[Tile[R, C, F32]], b: In[Tile[R, C, F32]], out: Out[Tile[R, C, F32]]):
        x, y = tl.load(a), tl.load(b)
        tl.store(out, tl.where(tl.gt(x, y), x, y))

    a, b = rand((R, C), np.float32, seed=21), rand((R, C), np.float32, seed=22)
    assert np.array_equal(run_once(k, a=a, b=b, out=np.zeros((R, C), np.float32))["out"], np.where(a > b, a, b))


def test_where_with_a_literal_branch(run_once):
    """tl.where(x < 0, 0.5, x) replaces negatives by 0.5."""
    @kernel
    def k(a: In[Tile[R, C, F32]], out: Out[Tile[R, C, F32]]):
        x = tl.load(a)
        tl.store(out, tl.where(tl.lt(x, 0.0), 0.5, x))

    a = rand((R, C), np.float32, seed=23)
    got = run_once(k, a=a, out=np.zeros((R, C), np.float32))["out"]
    assert np.array_equal(got, np.where(a < 0, np.float32(0.5), a))


def test_rmsnorm_like_kernel_matches_numpy(run_once):
    """mul/rowmean/rsqrt/mul on an F16 tile with an F32 gain equals the numpy formula."""
    @kernel
    def rmsnorm(x: In[Tile[16, 64, F16]], gamma: In[Tile[16, 64, F32]], y: Out[Tile[16, 64, F32]]):
        r = tl.rsqrt(tl.rowmean(tl.mul(x, x)))
        tl.store(y, tl.mul(gamma, r))

    x, g = rand((16, 64), np.float16, seed=24), rand((16, 64), np.float32, seed=25)
    sq = (x * x).astype(np.float32)
    want = g * (1 / np.sqrt(sq.mean(axis=1, keepdims=True)))
    np.testing.assert_allclose(run_once(rmsnorm, x=x, gamma=g, y=np.zeros((16, 64), np.float32))["y"], want,
                               rtol=1e-5)


def test_inout_accumulates_in_place(run_once):
    """An InOut parameter is read, updated and written back: y += x."""
    from ptort_lab import InOut

    @kernel
    def acc(x: In[Tile[R, C, F32]], y: InOut[Tile[R, C, F32]]):
        tl.store(y, tl.add(tl.load(y), tl.load(x)))

    x, y = rand((R, C), np.float32, seed=26), rand((R, C), np.float32, seed=27)
    want = x + y
    assert np.array_equal(run_once(acc, x=x, y=y)["y"], want)


def unary_kernel(op, dtype, out_shape=(R, C)):
    @kernel
    def k(a: In[Tile[R, C, dtype]], out: Out[Tile[out_shape[0], out_shape[1], dtype]]):
        tl.store(out, op(tl.load(a)))
    return k


def gelu_ref(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


NP_ACTIVATION = {tl.sigmoid: lambda x: 1 / (1 + np.exp(-x)), tl.silu: lambda x: x / (1 + np.exp(-x)),
                 tl.tanh: np.tanh, tl.gelu: gelu_ref}
ACT_TOL = {np.float32: dict(rtol=1e-5, atol=1e-6), np.float16: dict(rtol=5e-3, atol=5e-3)}


@pytest.mark.parametrize("dtype", [np.float32, np.float16], ids=["f32", "f16"])
@pytest.mark.parametrize("op", list(NP_ACTIVATION), ids=lambda f: f.__name__)
def test_activations_match_numpy(run_once, op, dtype):
    """sigmoid/silu/tanh/gelu, computed step by step in the tile's dtype, stay close to the float64 function."""
    a = rand((R, C), dtype, -6.0, 6.0, seed=5)
    got = run_once(unary_kernel(op, DType.from_numpy(dtype)), a=a, out=np.zeros((R, C), dtype))["out"]
    assert got.dtype == dtype
    np.testing.assert_allclose(got.astype(np.float64), NP_ACTIVATION[op](a.astype(np.float64)), **ACT_TOL[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float16], ids=["f32", "f16"])
def test_activations_saturate_without_nan_or_warnings(run_once, dtype):
    """Far from 0, e**x overflows to inf inside the formulas; the results saturate exactly (no NaN, no warning)."""
    a = np.tile(np.array([-1e4, -100.0, 100.0, 1e4] * (C // 4), dtype), (R, 1)).astype(dtype)
    want = {tl.sigmoid: [0, 0, 1, 1], tl.tanh: [-1, -1, 1, 1], tl.silu: [0, 0, 100, 1e4],
            tl.gelu: [0, 0, 100, 1e4]}
    for op, row in want.items():
        got = run_once(unary_kernel(op, DType.from_numpy(dtype)), a=a, out=np.zeros((R, C), dtype))["out"]
        assert not np.isnan(got).any(), op.__name__
        np.testing.assert_allclose(got[0, :4].astype(np.float64), row, rtol=0, atol=1e-30, err_msg=op.__name__)


@pytest.mark.parametrize("dtype", [np.float32, np.float16, BF], ids=["f32", "f16", "bf16"])
def test_transpose_is_exact(run_once, dtype):
    a = rand((R, C), dtype, seed=6)
    got = run_once(unary_kernel(tl.transpose, DType.from_numpy(dtype), (C, R)), a=a,
                   out=np.zeros((C, R), dtype))["out"]
    assert np.array_equal(got, a.T)


@pytest.mark.parametrize("op, np_op, vec", [(tl.rowmul, np.multiply, (R, 1)), (tl.rowadd, np.add, (R, 1)),
                                            (tl.colmul, np.multiply, (1, C)), (tl.coladd, np.add, (1, C))],
                         ids=lambda x: getattr(x, "__name__", ""))
def test_row_and_column_vector_ops_broadcast(run_once, op, np_op, vec):
    a, v = rand((R, C), np.float32, seed=7), rand(vec, np.float32, seed=8)
    got = run_once(binary_kernel(op, F32, vec), a=a, b=v, out=np.zeros((R, C), np.float32))["out"]
    close(got, np_op(a, v))


def test_rowmul_names_the_vector_it_needs():
    with pytest.raises(PtortTypeError, match=r"(?s)tl.rowmul: needs a \[8, 1\] vector for a \[8, 16\] tile, got "
                                             r"f32\[1,16\].*Reduce with tl.rowsum"):
        binary_kernel(tl.rowmul, F32, (1, C))


@pytest.mark.parametrize("op, np_op", [(tl.sin, np.sin), (tl.cos, np.cos)], ids=["sin", "cos"])
def test_sin_cos_match_numpy(run_once, op, np_op):
    a = rand((R, C), np.float32, -10.0, 10.0, seed=9)
    got = run_once(unary_kernel(op, F32), a=a, out=np.zeros((R, C), np.float32))["out"]
    close(got, np_op(a))


def test_rope_rotation_with_slices_and_interleave(run_once):
    """Rotary embedding on pairs (x[2i], x[2i+1]) by angle t: the kernel equals the complex-number rotation."""
    @kernel
    def rope(x: In[Tile[R, C, F32]], ang: In[Tile[R, C // 2, F32]], y: Out[Tile[R, C, F32]]):
        v, a = tl.load(x), tl.load(ang)
        c, s = tl.cos(a), tl.sin(a)
        e, o = tl.slice_even(v), tl.slice_odd(v)
        tl.store(y, tl.interleave(e * c - o * s, e * s + o * c))

    x, ang = rand((R, C), np.float32, seed=10), rand((R, C // 2), np.float32, -3.0, 3.0, seed=11)
    got = run_once(rope, x=x, ang=ang, y=np.zeros((R, C), np.float32))["y"]
    z = (x[:, 0::2] + 1j * x[:, 1::2]) * np.exp(1j * ang)
    want = np.empty_like(x)
    want[:, 0::2], want[:, 1::2] = z.real, z.imag
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("shape", [(R, 1), (1, C), (1, 1)], ids=["col", "row", "scalar"])
def test_broadcast_repeats_a_vector(run_once, shape):
    @kernel
    def bc(v: In[Tile[shape[0], shape[1], F32]], out: Out[Tile[R, C, F32]]):
        tl.store(out, tl.broadcast(tl.load(v), (R, C)))

    v = rand(shape, np.float32, seed=12)
    got = run_once(bc, v=v, out=np.zeros((R, C), np.float32))["out"]
    assert np.array_equal(got, np.broadcast_to(v, (R, C)))


def test_shape_rules_of_the_rearranging_ops():
    with pytest.raises(PtortTypeError, match=r"tl.slice_even: needs an even number of columns, got .*\[8,15\]"):
        @kernel
        def odd(x: In[Tile[8, 15, F32]], y: Out[Tile[8, 7, F32]]):
            tl.store(y, tl.slice_even(tl.load(x)))
    with pytest.raises(PtortTypeError, match=r"tl.broadcast: cannot repeat .*\[8,2\].* to \[8, 16\]"):
        @kernel
        def wide(x: In[Tile[8, 2, F32]], y: Out[Tile[8, 16, F32]]):
            tl.store(y, tl.broadcast(tl.load(x), (8, 16)))
    with pytest.raises(PtortTypeError, match=r"tl.interleave: needs two tiles of one shape and dtype"):
        @kernel
        def mixed(x: In[Tile[8, 4, F32]], z: In[Tile[8, 2, F32]], y: Out[Tile[8, 8, F32]]):
            tl.store(y, tl.interleave(tl.load(x), tl.load(z)))


def test_int8_sums_accumulate_in_i32(run_once):
    """A row of 16 I8 values of 100 sums to 1600, which I8 cannot hold: the sum is I32, as on the vector unit."""
    @kernel
    def k(a: In[Tile[R, C, DType.I8]], out: Out[Tile[R, 1, DType.I32]]):
        tl.store(out, tl.rowsum(tl.load(a)))

    got = run_once(k, a=np.full((R, C), 100, np.int8), out=np.zeros((R, 1), np.int32))["out"]
    assert got.dtype == np.int32 and np.all(got == 100 * C)
    with pytest.raises(PtortTypeError, match=r"tl.rowmean: needs a floating-point tile"):
        @kernel
        def m(a: In[Tile[R, C, DType.I32]], out: Out[Tile[R, 1, DType.I32]]):
            tl.store(out, tl.rowmean(tl.load(a)))


def test_topk_with_tsort32_matches_a_stable_descending_argsort(run_once):
    """iota + tsort32 + extract: the k largest of 32 scores, ties broken by the lower index (the reference's
    stable_topk_indices_desc)."""
    @kernel
    def topk(s: In[Tile[1, 32, F32]], out: Out[Tile[1, 8, DType.I32]]):
        tl.store(out, tl.extract_topk_indices(tl.tsort32(tl.load(s), tl.iota_u32(32)), 8))

    for seed in range(5):
        s = np.random.default_rng(seed).integers(0, 4, (1, 32)).astype(np.float32)  # many ties
        got = run_once(topk, s=s, out=np.zeros((1, 8), np.int32))["out"]
        assert np.array_equal(got[0], np.argsort(-s[0], kind="stable")[:8])


def test_topk_helpers_check_their_shapes():
    with pytest.raises(PtortTypeError, match=r"tl.tsort32: needs scores f32\[1,32\] and idx u32\[1,32\]"):
        @kernel
        def bad(s: In[Tile[1, 16, F32]], out: Out[Tile[1, 64, F32]]):
            tl.store(out, tl.tsort32(tl.load(s), tl.iota_u32(16)))
    with pytest.raises(PtortValueError, match=r"k must be an int in 1..32, got 40"):
        @kernel
        def big_k(s: In[Tile[1, 32, F32]], out: Out[Tile[1, 8, DType.I32]]):
            tl.store(out, tl.extract_topk_indices(tl.tsort32(tl.load(s), tl.iota_u32(32)), 40))
    with pytest.raises(PtortValueError, match=r"tl.iota_u32: cols must be an int >= 1, got 0"):
        @kernel
        def none(out: Out[Tile[1, 1, DType.U32]]):
            tl.store(out, tl.iota_u32(0))
