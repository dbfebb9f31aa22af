"""Kernel numerics, round 9: ops that make a new tile never share memory with a parameter, tl.cast rounds a float to
the nearest integer (halves to even) as Ascend's default conversion does, and tl.rowmean is the priced row sum times
1/C. Every expected value is written by hand or computed with plain numpy."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from source_lines import here, located

from ptort_lab import DType, In, InOut, KernelExecutionError, Out, Tensor, Tile, kernel, tl, workload

F16, BF16, F32, F64 = DType.F16, DType.BF16, DType.F32, DType.F64
I8, I16, I32, I64, U8 = DType.I8, DType.I16, DType.I32, DType.I64, DType.U8


def run_once(k, **arrays):
    """Launch ``k`` once on these arrays (whole tensors as its tiles); return the arrays, outputs filled in."""
    tensors = {name: Tensor(data=a) for name, a in arrays.items()}

    @workload
    def one():
        k(**tensors)

    one().compile().execute()
    return {name: t.data for name, t in tensors.items()}


# -- finding 4: a new tile made from a parameter keeps its values when the parameter is stored to --------------------
# np.ascontiguousarray returns the operand's own memory when it is already contiguous: the transpose of an [n, 1] or
# [1, n] tile, and slice_even/slice_odd of a [1, 2] tile. An InOut parameter used without tl.load is the tensor's
# array, so the store of zeros into it then changed the "new" tile too.
NEW_TILE_OPS = {
    "transpose [4,1]": (lambda y: tl.transpose(y), (4, 1), lambda a: a.T),
    "transpose [1,4]": (lambda y: tl.transpose(y), (1, 4), lambda a: a.T),
    "transpose [1,1]": (lambda y: tl.transpose(y), (1, 1), lambda a: a.T),
    "slice_even [1,2]": (lambda y: tl.slice_even(y), (1, 2), lambda a: a[:, 0::2]),
    "slice_odd [1,2]": (lambda y: tl.slice_odd(y), (1, 2), lambda a: a[:, 1::2]),
    "slice_odd [3,2]": (lambda y: tl.slice_odd(y), (3, 2), lambda a: a[:, 1::2]),
    # (these made a copy already; kept so that none of them starts to alias)
    "rowmax [4,1]": (lambda y: tl.rowmax(y), (4, 1), lambda a: a),
    "colmax [1,4]": (lambda y: tl.colmax(y), (1, 4), lambda a: a),
    "broadcast [1,4]": (lambda y: tl.broadcast(y, (1, 4)), (1, 4), lambda a: a),
    "concat [1,4]": (lambda y: tl.concat([y, y], axis=0), (1, 4), lambda a: np.concatenate([a, a])),
    "relu [1,4]": (lambda y: tl.relu(y), (1, 4), lambda a: a),
}
ALIAS_DTYPES = {"f32": np.float32, "f16": np.float16, "bf16": ml_dtypes.bfloat16, "i32": np.int32}


CASES = [(name, dtype) for name in NEW_TILE_OPS for dtype in ALIAS_DTYPES
         if not (name.startswith("relu") and dtype == "i32")]  # (tl.relu takes float tiles)


@pytest.mark.parametrize("name, dtype_name", CASES)
def test_a_new_tile_of_a_parameter_keeps_its_values_after_a_store_to_the_parameter(name, dtype_name):
    dtype = ALIAS_DTYPES[dtype_name]
    make, (r, c), numpy_op = NEW_TILE_OPS[name]
    y = np.arange(1, r * c + 1).reshape(r, c).astype(dtype)
    want = np.ascontiguousarray(numpy_op(y.copy()))
    dt = DType.from_numpy(dtype)

    @kernel
    def k(y: InOut[Tile[r, c, dt]], o: Out[Tile[want.shape[0], want.shape[1], dt]]):
        t = make(y)                          # a new tile holding y's values
        tl.store(y, tl.full(r, c, 0, dt))    # then y is cleared
        tl.store(o, t)                       # o gets y's old values

    got = run_once(k, y=y, o=np.full(want.shape, 9, dtype))
    assert np.array_equal(got["o"].astype(np.float64), want.astype(np.float64)), (got["o"], want)
    assert not got["y"].astype(np.float64).any()


def test_tl_slice_stays_a_view_of_the_parameter():
    """Only tl.slice is documented as a view: a store into the parameter is seen through it."""
    @kernel
    def k(y: InOut[Tile[1, 2, F32]], o: Out[Tile[1, 1, F32]]):
        t = tl.slice(y, cols=(1, 2))
        tl.store(y, tl.full(1, 2, 0.0, F32))
        tl.store(o, t)

    got = run_once(k, y=np.array([[5.0, 7.0]], np.float32), o=np.full((1, 1), 9.0, np.float32))
    assert got["o"].tolist() == [[0.0]]


# -- finding 7: a float cast to an integer dtype rounds to nearest, halves to even -----------------------------------
# Ascend C's default RoundMode CAST_NONE is CAST_RINT for a lossy conversion (hiascend.com, Ascend C API "Cast"), and
# PTO-ISA's A2/A3 TCVT emits the rint instruction for it; numpy's astype truncated toward zero (2.7 -> 2, -2.7 -> -2).
SIGNED = [2.5, 3.5, -2.5, -3.5, 2.75, -2.75, 0.5, -0.5, 1.5, 0.25, -1.25, 6.5]
SIGNED_WANT = [2, 4, -2, -4, 3, -3, 0, 0, 2, 0, -1, 6]
UNSIGNED = [0.5, 1.5, 2.5, 3.5, 0.25, 2.75, 4.5, 5.5, 100.5, 101.5, 63.25, 126.5]
UNSIGNED_WANT = [0, 2, 2, 4, 0, 3, 4, 6, 100, 102, 63, 126]
FLOATS = {"f32": np.float32, "f16": np.float16, "bf16": ml_dtypes.bfloat16, "f64": np.float64}


def cast_kernel(src, dst):
    @kernel
    def to_int(x: In[Tile[1, 12, src]], y: Out[Tile[1, 12, dst]]):
        tl.store(y, tl.cast(tl.load(x), dst))
    return to_int


@pytest.mark.parametrize("src", list(FLOATS.values()), ids=list(FLOATS))
@pytest.mark.parametrize("dst", [I8, I16, I32, I64, U8, DType.U16, DType.U32], ids=str)
def test_a_float_cast_to_an_int_dtype_rounds_half_to_even(src, dst):
    values, want = (UNSIGNED, UNSIGNED_WANT) if dst.np_dtype.kind == "u" else (SIGNED, SIGNED_WANT)
    x = np.array([values], dtype=src)
    assert x.astype(np.float64).tolist() == [values]  # (every value is exact in the source dtype)
    got = run_once(cast_kernel(DType.from_numpy(src), dst), x=x, y=np.zeros((1, 12), dst.np_dtype))["y"]
    assert got.dtype == dst.np_dtype
    assert got.tolist() == [want]


def test_the_hunters_example_rounds_half_to_even():
    x = np.array([[2.5, 2.7, -2.5, -2.7, 0.5, 1.5]], np.float32)

    @kernel
    def to_int(x: In[Tile[1, 6, F32]], y: Out[Tile[1, 6, I32]]):
        tl.store(y, tl.cast(tl.load(x), I32))

    assert run_once(to_int, x=x, y=np.zeros((1, 6), np.int32))["y"].tolist() == [[2, 3, -2, -3, 0, 2]]


@kernel
def to_i8(x: In[Tile[1, 4, F32]], y: Out[Tile[1, 4, I8]]):
    tl.store(y, tl.cast(tl.load(x), I8))
TO_I8_LINE = here() - 1


def test_the_range_check_applies_to_the_rounded_value():
    """127.4 -> 127 and -128.5 -> -128 (even) are in I8's range; 127.5 rounds to 128 and -128.6 to -129, which are
    not, so the cast is refused (numpy would wrap 128 to -128) and nothing is written."""
    ok = run_once(to_i8, x=np.array([[127.4, -128.5, 126.5, -127.5]], np.float32), y=np.zeros((1, 4), np.int8))
    assert ok["y"].tolist() == [[127, -128, 126, -128]]
    y = np.full((1, 4), 5, np.int8)
    with pytest.raises(KernelExecutionError) as e:
        run_once(to_i8, x=np.array([[127.5, 1.0, -128.6, 2.0]], np.float32), y=y)
    assert e.value.what.startswith("kernel 'to_i8' failed at `cast I8` on task 0: cast to I8 of values with no I8 "
                                   "value (nan, inf, or outside its range -128..127): 127.5 at [0, 0], -128.6")
    located(e, TO_I8_LINE)
    assert e.value.hint.startswith("Keep such values out before the cast: clamp with tl.mins(tl.maxs(x, -128), 127)")
    assert y.tolist() == [[5, 5, 5, 5]]


@kernel
def halve(a: In[Tile[1, 4, I32]], out: Out[Tile[1, 4, I32]]):
    tl.store(out, tl.div(tl.load(a), 2))
HALVE_LINE = here() - 1


def test_the_integer_division_hint_no_longer_says_the_cast_truncates():
    with pytest.raises(KernelExecutionError) as e:
        run_once(halve, a=np.array([[3, -3, -1, 1]], np.int32), out=np.zeros((1, 4), np.int32))
    assert "-3 / 2 is not whole" in e.value.what
    located(e, HALVE_LINE)
    assert "truncates" not in e.value.hint
    assert ("tl.cast the quotient back (the cast rounds to the nearest integer, halves to even: "
                                 "neither toward zero nor down).") in e.value.hint


def test_int_and_float_to_float_casts_are_unchanged():
    """Only float -> int casts round here; an integer source and float targets convert as numpy does (nearest)."""
    @kernel
    def k(a: In[Tile[1, 4, I32]], b: In[Tile[1, 4, F32]], ai: Out[Tile[1, 4, I8]], bf: Out[Tile[1, 4, F16]]):
        tl.store(ai, tl.cast(tl.load(a), I8))
        tl.store(bf, tl.cast(tl.load(b), F16))

    b = np.array([[1.0 + 2.0**-11, 2.5, -2.7, 65504.0]], np.float32)
    got = run_once(k, a=np.array([[1, -2, 127, -128]], np.int32), b=b, ai=np.zeros((1, 4), np.int8),
                   bf=np.zeros((1, 4), np.float16))
    assert got["ai"].tolist() == [[1, -2, 127, -128]]
    assert np.array_equal(got["bf"], b.astype(np.float16))
    assert got["bf"][0, 0] == 1.0  # (1 + 2**-11 is a tie between 1 and 1 + 2**-10: to even)


# -- finding 8: tl.rowmean is the priced row sum times fl(1/C) ------------------------------------------------------
@pytest.mark.parametrize("cols", [1, 3, 5, 7, 12, 64])
@pytest.mark.parametrize("src, acc", [(np.float32, np.float32), (np.float16, np.float32),
                                      (ml_dtypes.bfloat16, np.float32), (np.float64, np.float64)],
                         ids=["f32", "f16", "bf16", "f64"])
def test_rowmean_is_the_row_sum_times_the_reciprocal_in_the_result_dtype(src, acc, cols):
    rows = 64
    x = np.random.default_rng(cols).random((rows, cols)).astype(src)

    @kernel
    def k(a: In[Tile[rows, cols, DType.from_numpy(src)]], o: Out[Tile[rows, 1, DType.from_numpy(acc)]]):
        tl.store(o, tl.rowmean(tl.load(a)))

    got = run_once(k, a=x, o=np.zeros((rows, 1), acc))["o"]
    s = x.astype(acc).sum(axis=1, keepdims=True)
    inv = np.asarray(acc(1) / acc(cols), acc)   # fl(1/C), rounded once to the result's dtype
    want = s * inv
    assert got.dtype == acc
    assert np.array_equal(got, want)
    if src is np.float32 and cols == 3:  # the case the finding measured: sum / C differs in a third of the rows
        assert (got != s / acc(cols)).sum() > 0
