"""Bad input, round 4: tl.where's broadcast result shape, integer division whose rounding has no source, Scalar
defaults at run time, numpy applied to traced tiles, hints that name the op called, and Tensor.data assignment."""
from __future__ import annotations

import numpy as np
import pytest
from source_lines import here, located

from ptort_lab import (
    Dense,
    DSLUsageError,
    DType,
    In,
    KernelExecutionError,
    Out,
    P,
    PtortTypeError,
    PtortValueError,
    Scalar,
    Tensor,
    Tile,
    kernel,
    tl,
    workload,
)

F16, F32, I32, U8 = DType.F16, DType.F32, DType.I32, DType.U8


def run_once(k, **arrays):
    """Launch ``k`` once on these arrays (whole tensors as its tiles); return the arrays, outputs filled in."""
    tensors = {name: Tensor(data=a) for name, a in arrays.items()}

    @workload
    def one():
        k(**tensors)

    one().compile().execute()
    return {name: t.data for name, t in tensors.items()}


# -- tl.where: the result has the broadcast shape of mask and branches -----------------------------------------------
@pytest.mark.parametrize("mask_shape, a_shape, b_shape", [
    ((4, 1), (4, 8), None), ((1, 8), (4, 8), None), ((4, 1), (4, 8), (4, 8)), ((1, 1), (1, 8), None),
    ((1, 1), (4, 1), (4, 1)), ((4, 8), (4, 1), (1, 8)), ((4, 1), None, (4, 8)), ((4, 8), (4, 8), (4, 1)),
], ids=str)
def test_where_has_the_numpy_broadcast_shape_and_values(mask_shape, a_shape, b_shape):
    """Before: typed as the mask's shape ([4, 1]), so it was priced on a quarter of the elements and a direct store
    into an out of the real shape failed with an internal numpy error."""
    shape = np.broadcast_shapes(*(s for s in (mask_shape, a_shape, b_shape) if s is not None))
    rng = np.random.default_rng(0)
    m = rng.standard_normal(mask_shape).astype(np.float32)
    a = rng.standard_normal(a_shape or (1, 1)).astype(np.float32)
    b = rng.standard_normal(b_shape or (1, 1)).astype(np.float32)

    @kernel
    def pick(m_: In[Tile[mask_shape[0], mask_shape[1], F32]], a_: In[Tile[a.shape[0], a.shape[1], F32]],
             b_: In[Tile[b.shape[0], b.shape[1], F32]], out: Out[Tile[shape[0], shape[1], F32]]):
        x = tl.load(a_) if a_shape else 2.5
        y = tl.load(b_) if b_shape else -1.0
        tl.store(out, tl.where(tl.gt(tl.load(m_), 0.0), x, y))

    where = next(op for op in pick.trace().ops if op.kind.value == "where")
    assert str(where.result.type) == f"f32[{shape[0]},{shape[1]}]"
    got = run_once(pick, m_=m, a_=a, b_=b, out=np.zeros(shape, np.float32))["out"]
    want = np.where(m > 0, a if a_shape else np.float32(2.5), b if b_shape else np.float32(-1.0))
    np.testing.assert_array_equal(got, want.astype(np.float32))


def test_where_result_feeds_later_ops_at_its_real_shape():
    """The row max after a [r, 1]-masked where reduces [4, 8] elements, as numpy does."""
    @kernel
    def rowmax_of_pick(m: In[Tile[4, 1, F32]], a: In[Tile[4, 8, F32]], out: Out[Tile[4, 1, F32]]):
        tl.store(out, tl.rowmax(tl.where(tl.gt(tl.load(m), 0.0), tl.load(a), -100.0)))

    ops = rowmax_of_pick.trace().ops
    assert [str(op.operands[0].type) for op in ops if op.kind.value == "rowmax"] == ["f32[4,8]"]
    m = np.array([[1], [-1], [1], [-1]], np.float32)
    a = np.arange(32, dtype=np.float32).reshape(4, 8)
    got = run_once(rowmax_of_pick, m=m, a=a, out=np.zeros((4, 1), np.float32))["out"]
    np.testing.assert_array_equal(got, np.where(m > 0, a, np.float32(-100)).max(axis=1, keepdims=True))


def test_where_branches_that_only_broadcast_through_each_other_are_refused_like_tl_add():
    line = here() + 4
    with pytest.raises(PtortTypeError) as e:
        @kernel
        def outer(m: In[Tile[1, 1, F32]], a: In[Tile[4, 1, F32]], b: In[Tile[1, 8, F32]], out: Out[Tile[4, 8, F32]]):
            tl.store(out, tl.where(tl.gt(tl.load(m), 0.0), tl.load(a), tl.load(b)))
    located(e, line)
    assert e.value.what == ("tl.where: got tiles of shape (4, 1) and (1, 8); shapes must match or one must be a "
                            "[rows, 1] / [1, cols] vector of the other.")
    assert e.value.hint == ("Repeat one of them to [4, 8] first, e.g. tl.broadcast(v, (4, 8)) for the [4, 1] one; the "
                            "other then broadcasts as its vector.")


# -- integer division: refused where floor and truncation differ ------------------------------------------------------
@kernel
def halve(a: In[Tile[1, 4, I32]], out: Out[Tile[1, 4, I32]]):
    tl.store(out, tl.load(a) / 2)
HALVE_LINE = here() - 1


@kernel
def ratio(a: In[Tile[1, 4, I32]], b: In[Tile[1, 4, I32]], out: Out[Tile[1, 4, I32]]):
    tl.store(out, tl.div(tl.load(a), tl.load(b)))
RATIO_LINE = here() - 1


@kernel
def scaled(a: In[Tile[1, 4, I32]], s: Scalar[I32], out: Out[Tile[1, 4, I32]]):
    tl.store(out, tl.divs(tl.load(a), s))


def test_integer_division_with_a_negative_inexact_quotient_is_refused():
    """Before: -3 / 2 gave -2 (numpy's floor) without a word; C's truncation gives -1, and the NPU's rule has no
    source, so the run refuses as it does for integer overflow."""
    a = np.array([[3, -3, -1, 1]], np.int32)
    out = np.full((1, 4), 7, np.int32)
    with pytest.raises(KernelExecutionError) as e:
        run_once(halve, a=a, out=out)
    assert e.value.what == ("kernel 'halve' failed at `div 2` on task 0: I32 division of operands of different signs "
                            "at element [0, 1] (and 1 more): -3 / 2 is not whole, and whether the NPU rounds it toward "
                            "zero (-1) or down (-2) is not modelled.")
    assert (e.value.where.filename, e.value.where.lineno) == (__file__, HALVE_LINE)
    assert e.value.hint.startswith("Make the operands non-negative (e.g. divide |a| and restore the sign with "
                                   "tl.where), or divide in a float dtype: tl.cast both operands to DType.F32")
    assert ("tl.cast the quotient back (the cast rounds to the nearest integer, halves to even: neither toward zero "
            "nor down)") in e.value.hint
    assert np.array_equal(out, np.full((1, 4), 7, np.int32))  # (a failed run writes nothing)


def test_a_negative_divisor_is_named_too():
    with pytest.raises(KernelExecutionError) as e:
        run_once(ratio, a=np.array([[6, 7, 0, 1]], np.int32), b=np.array([[3, -2, 5, 1]], np.int32),
                 out=np.zeros((1, 4), np.int32))
    assert "at element [0, 1]: 7 / -2 is not whole, and whether the NPU rounds it toward zero (-3) or down (-4)" \
        in e.value.what
    assert (e.value.where.filename, e.value.where.lineno) == (__file__, RATIO_LINE)


def test_integer_division_where_floor_and_truncation_agree_still_runs():
    """Operands of one sign, or exact quotients of any sign, have one answer either way."""
    a = np.array([[7, 0, -8, -7]], np.int32)
    b = np.array([[2, -5, 2, -2]], np.int32)
    got = run_once(ratio, a=a, b=b, out=np.zeros((1, 4), np.int32))["out"]
    np.testing.assert_array_equal(got, [[3, 0, -4, 3]])
    got = run_once(halve, a=np.array([[0, 1, 6, 7]], np.int32), out=np.zeros((1, 4), np.int32))["out"]
    np.testing.assert_array_equal(got, [[0, 0, 3, 3]])


def test_divs_by_a_negative_scalar_is_refused_and_by_a_positive_one_runs():
    A, Y = Tensor(data=np.array([[9, 8, 1, 0]], np.int32)), Tensor(data=np.zeros((1, 4), np.int32))

    def run(s):
        @workload
        def w():
            scaled(a=A, s=s, out=Y)
        w().compile().execute()

    run(4)
    np.testing.assert_array_equal(Y.data, [[2, 2, 0, 0]])
    with pytest.raises(KernelExecutionError, match=r"9 / -4 is not whole.*toward zero \(-2\) or down \(-3\)"):
        run(-4)


def test_integer_division_by_zero_is_still_refused_before_the_sign_check():
    """-1 / 0 has different signs too: the zero divisor is what the message names."""
    with pytest.raises(KernelExecutionError) as e:
        run_once(ratio, a=-np.ones((1, 4), np.int32), b=np.array([[1, 2, 0, 4]], np.int32),
                 out=np.zeros((1, 4), np.int32))
    assert e.value.what == ("kernel 'ratio' failed at `div` on task 0: integer division by zero (the divisor has a 0 "
                            "element).")
    assert e.value.hint.startswith("An integer division by zero has no value")


def test_div_docstrings_state_the_integer_rule():
    for op in (tl.div, tl.divs):
        assert "toward zero" in op.__doc__ or "tl.div's rule" in op.__doc__
    assert "(-3) or down (-4)" in tl.div.__doc__


# -- a Scalar parameter left out at launch runs with its default ------------------------------------------------------
@kernel
def shift(a: In[Tile[4, 8, F32]], out: Out[Tile[4, 8, F32]], eps: Scalar[F32] = 2.5):
    tl.store(out, tl.add(tl.load(a), eps))


def test_an_omitted_scalar_runs_with_the_kernels_default():
    """Before: the workload built and a timing run worked, but execute() said "has no argument for 'eps'"."""
    got = run_once(shift, a=np.ones((4, 8), np.float32), out=np.zeros((4, 8), np.float32))["out"]
    np.testing.assert_array_equal(got, np.full((4, 8), 3.5, np.float32))


def test_a_given_scalar_still_wins_over_the_default():
    A, Y = Tensor(data=np.ones((4, 8), np.float32)), Tensor(data=np.zeros((4, 8), np.float32))

    @workload
    def w():
        shift(a=A, out=Y, eps=-1.0)

    w().compile().execute()
    np.testing.assert_array_equal(Y.data, np.zeros((4, 8), np.float32))


# -- numpy applied to a traced tile ------------------------------------------------------------------------------------
BIAS = np.ones((4, 4), np.float32)


def numpy_error(body, error=DSLUsageError):
    with pytest.raises(error) as e:
        @kernel
        def k(a: In[Tile[4, 4, F32]], out: Out[Tile[4, 4, F32]]):
            tl.store(out, body(tl.load(a)))
    return e


@pytest.mark.parametrize("call, body, use", [
    ("np.exp", lambda x: np.exp(x), "tl.exp"),
    ("np.maximum", lambda x: np.maximum(x, 0.0), "tl.maximum"),
    ("np.negative", lambda x: np.negative(x), "tl.neg"),
    ("np.sum", lambda x: np.sum(x), "tl.rowsum or tl.colsum"),
    ("np.where", lambda x: np.where(True, x, 0.0), "tl.where"),
    ("np.concatenate", lambda x: np.concatenate([x, x]), "tl.concat"),
    ("np.asarray/np.array", lambda x: np.asarray(x), "tl.* ops"),
], ids=lambda v: v if isinstance(v, str) else "")
def test_numpy_on_a_tile_names_the_numpy_call_and_the_tl_op(call, body, use):
    """Before: np.exp(x) said "len() of a tile", np.maximum(x, 0) said "`>=` on a tile"."""
    e = numpy_error(body)
    assert e.value.what == (f"{call} was applied to a tile (f32[4,4]) in a kernel body: numpy computes on numbers, "
                            "and a traced tile has none (its values exist only when a task runs).")
    assert e.value.hint == f"Use {use} instead: tl ops record the computation on whole tiles (help(tl) lists them)."
    assert e.value.where.filename == __file__ and call.split("/")[0] + "(" in e.value.where.code  # the lambda's line
    assert e.value.context == "kernel 'k'"


def test_an_ndarray_plus_a_tile_is_refused_at_once_not_looped_over():
    """Before: numpy looped over the 16 elements of BIAS, recording 16 tile adds, then tl.store failed with a
    1 kB repr of an object array."""
    line = here() + 4
    with pytest.raises(DSLUsageError) as e:
        @kernel
        def k(a: In[Tile[4, 4, F32]], out: Out[Tile[4, 4, F32]]):
            tl.store(out, BIAS + tl.load(a))
    located(e, line)
    assert e.value.what == ("np.add combines a numpy array (float32[4, 4]) with a tile (f32[4,4]) in a kernel body: a "
                            "kernel reads arrays only through its parameters (numpy would loop over the array's "
                            "elements in Python).")
    assert e.value.hint == ("Pass the array as an In[Tile[...]] parameter (a tile of a Tensor at launch, X[t]), "
                            "tl.load it, and combine the tiles with tl.add.")


def test_numpy_numbers_in_operators_still_trace_the_tl_op():
    """np.float32(2) * x calls np.multiply: it still means tl.mul, as 2.0 * x does."""
    @kernel
    def k(a: In[Tile[4, 4, F32]], out: Out[Tile[4, 4, F32]]):
        x = tl.load(a)
        tl.store(out, np.asarray(1.0) + np.float32(2) * x - np.int64(3) + x / np.float64(2))

    assert [op.kind.value for op in k.trace().ops] == ["load", "mul", "add", "sub", "div", "add", "store"]
    a = np.arange(16, dtype=np.float32).reshape(4, 4)
    got = run_once(k, a=a, out=np.zeros((4, 4), np.float32))["out"]
    np.testing.assert_array_equal(got, 1 + 2 * a - 3 + a / 2)


def test_a_numpy_number_compared_with_a_tile_gets_the_comparison_refusal():
    e = numpy_error(lambda x: tl.where(np.float32(0) < x, x, 0.0))
    assert e.value.what.startswith("`<` on a tile (f32[4,4]) in a kernel body")
    assert e.value.hint.startswith("Use tl.lt(a, b)")


# -- hints that point the right way and name the op called ------------------------------------------------------------
def trace_error(body, tile=Tile[4, 8, F32], scalar=Scalar[F32], error=PtortTypeError):
    with pytest.raises(error) as e:
        @kernel
        def k(a: In[tile], s: scalar, out: Out[Tile[4, 8, F32]]):
            body(tl.load(a), s)
    return e.value


def test_a_tile_against_a_1x1_total_is_told_to_broadcast_it():
    e = trace_error(lambda t, s: tl.div(t, tl.rowsum(tl.colsum(t))))
    assert e.what == ("tl.div: got tiles of shape (4, 8) and (1, 1); shapes must match or one must be a [rows, 1] / "
                      "[1, cols] vector of the other.")
    assert e.hint == "Repeat the [1, 1] operand to [4, 8] first: tl.broadcast(v, (4, 8))."


def test_tiles_with_no_common_shape_keep_the_reduce_hint():
    e = trace_error(lambda t, s: tl.add(t, tl.transpose(t)))
    assert e.hint == "Load tiles of matching shape, or reduce one operand with tl.rowsum/tl.colsum first."


@pytest.mark.parametrize("body", [lambda t, s: tl.mul(t, s), lambda t, s: s * t, lambda t, s: tl.gt(t, s)],
                         ids=["mul", "rmul", "gt"])
def test_a_scalar_of_another_dtype_is_told_to_be_declared_in_the_tiles_dtype(body):
    """Before: "Convert one with tl.cast(x, DType.F16) first", but tl.cast refuses scalars."""
    e = trace_error(body, tile=Tile[4, 8, F16], scalar=Scalar[F32])
    assert "operands have different dtypes" in e.what
    assert e.hint == ("Declare the parameter 's' Scalar[DType.F16], the tile's dtype (tl.cast converts tiles, not "
                      "scalars).")


@pytest.mark.parametrize("name, body", [
    ("maxs", lambda t, s: tl.maxs(tl.cast(t, F16), 1e9)),
    ("muls", lambda t, s: tl.muls(tl.cast(t, F16), 1e9)),
    ("adds", lambda t, s: tl.adds(tl.cast(t, F16), 1e9)),
    ("subs", lambda t, s: tl.subs(tl.cast(t, F16), 1e9)),
    ("mins", lambda t, s: tl.mins(tl.cast(t, F16), 1e9)),
    ("maximum", lambda t, s: tl.maximum(tl.cast(t, F16), 1e9)),
    ("minimum", lambda t, s: tl.minimum(tl.cast(t, F16), 1e9)),
])
def test_scalar_twins_name_themselves_in_errors(name, body):
    """Before: tl.maxs(x, 1e9) on F16 said "tl.max: operand 1000000000.0 is outside the range of F16"."""
    e = trace_error(body, error=PtortValueError)
    assert e.what == f"tl.{name}: operand 1000000000.0 is outside the range of F16 (largest finite 65504)."


def test_divs_by_a_literal_zero_names_divs():
    e = trace_error(lambda t, s: tl.divs(tl.cast(t, I32), 0), error=PtortValueError)
    assert e.what.startswith("tl.divs: divides the I32 tile by the literal 0")


def test_rowmul_and_select_name_themselves():
    e = trace_error(lambda t, s: tl.rowmul(t, tl.colsum(t)))
    assert e.what.startswith("tl.rowmul: needs a [4, 1] vector for a [4, 8] tile")
    e = trace_error(lambda t, s: tl.select(tl.gt(t, 0.0), t, 1e39), error=PtortValueError)
    assert e.what.startswith("tl.select: operand 1e+39 is outside the range of F32")
    e = trace_error(lambda t, s: tl.select(t, t, 0.0))
    assert e.what.startswith("tl.select: mask must come from a comparison (U8)")


# -- Tensor.data assignment is checked where it is written -------------------------------------------------------------
@kernel
def sq(src: In[Tile[4, 4, F32]], dst: Out[Tile[4, 4, F32]]):
    x = tl.load(src)
    tl.store(dst, tl.mul(x, x))


def squares():
    X, Y = Tensor(data=np.full((2, 4, 4), 2, np.float32)), Tensor(shape=(2, 4, 4), dtype=F32)

    @workload
    def w():
        for t in P(Dense[2]()):
            sq[t](src=X[t], dst=Y[t])
    return X, Y, w().compile()


def test_data_with_fewer_tiles_is_refused_at_the_assignment():
    """Before: the next execute() raised a bare IndexError in numerics._bind."""
    X, Y, p = squares()
    p.execute()
    line = here() + 2
    with pytest.raises(PtortTypeError) as e:
        X.data = np.full((1, 4, 4), 5, np.float32)
    located(e, line)
    assert e.value.what == ("Tensor(f32[2, 4, 4]).data is given an array of shape (1, 4, 4), but the tensor has shape "
                            "(2, 4, 4): workloads built on it index it by that shape.")
    assert e.value.hint == ("Assign an array of shape (2, 4, 4) (or copy values in: tensor.data[...] = values), or "
                            "make a new Tensor for data of another shape and build the workload with it.")
    assert np.array_equal(X.data, np.full((2, 4, 4), 2, np.float32))  # (unchanged)


def test_a_list_is_refused_with_the_asarray_hint():
    """Before: the next execute() raised a bare AttributeError in deps._storage_of."""
    X, Y, p = squares()
    line = here() + 2
    with pytest.raises(PtortTypeError) as e:
        X.data = [[1.0]]
    located(e, line)
    assert e.value.what == "Tensor(f32[2, 4, 4]).data must be a numpy.ndarray (or None), got list."
    assert e.value.hint == "Convert it: tensor.data = np.asarray(values, dtype=np.float32), of shape (2, 4, 4)."


def test_data_of_another_dtype_or_a_masked_array_is_refused():
    X, Y, p = squares()
    with pytest.raises(PtortTypeError) as e:
        X.data = np.ones((2, 4, 4), np.float64)
    assert e.value.what == "Tensor(f32[2, 4, 4]).data is given an array of numpy dtype float64, but the tensor is F32."
    assert e.value.hint.startswith("Assign data.astype('float32')")
    with pytest.raises(PtortTypeError, match="masked array"):
        X.data = np.ma.masked_array(np.ones((2, 4, 4), np.float32))
    with pytest.raises(PtortValueError, match="overlaps itself"):
        Y.data = np.lib.stride_tricks.as_strided(np.zeros(16, np.float32), (2, 4, 4), (0, 16, 4))


def test_new_data_of_the_right_shape_runs_and_none_reallocates():
    X, Y, p = squares()
    p.execute()
    X.data = np.full((2, 4, 4), 3, np.float32)
    p.execute()
    np.testing.assert_array_equal(Y.data, np.full((2, 4, 4), 9, np.float32))
    Y.data = None  # the run allocates zeros again
    p.execute()
    np.testing.assert_array_equal(Y.data, np.full((2, 4, 4), 9, np.float32))


def test_internal_writes_of_data_still_work():
    """Allocation, the undo of a failed run, and slices sharing the parent's array all assign .data."""
    Y = Tensor(shape=(2, 4, 4), dtype=F32)
    part = Y.slice(1, 2)  # allocates the parent's zeros and shares them
    assert part.data.base is Y.data or np.shares_memory(part.data, Y.data)
    A = Tensor(data=np.array([[-3, 1, 2, 3]], np.int32))
    Z = Tensor(shape=(1, 4), dtype=I32)  # allocated by the run, so put back to None when it fails

    @workload
    def w():
        halve(a=A, out=Z)

    with pytest.raises(KernelExecutionError):
        w().compile().execute()
    assert Z.data is None
