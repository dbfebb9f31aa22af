"""Bad input to Tensor, the axes and tl.*: each mistake raises a ptort_lab error naming the value, the user's line
and the fix, instead of a bare TypeError/IndexError/MemoryError or a silently truncated value."""
import inspect

import numpy as np
import pytest
from source_lines import here

from ptort_lab import (
    Dense,
    DenseDyn,
    DType,
    In,
    InOut,
    Out,
    P,
    PtortTypeError,
    PtortValueError,
    Ragged,
    Sparse,
    Tensor,
    Tile,
    kernel,
    task,
    tl,
    workload,
)
from ptort_lab.dsl import types as dsl_types

F16, F32, I8, I32, U8 = DType.F16, DType.F32, DType.I8, DType.I32, DType.U8



def listing(w):
    return [t.params for t in w.enumerate()]


# -- 1. Tensor shapes ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, match, fix", [
    (lambda: Tensor(shape=8), r"Tensor shape must be a tuple of ints, got int 8", "shape=(8,)"),
    (lambda: Tensor(shape="8x8"), r"Tensor shape must be a tuple of ints, got str", "shape=(4, 64, 64)"),
    (lambda: Tensor(shape=("a", 64)), r"dimension 0 is str 'a', not an int", ">= 1"),
    (lambda: Tensor(shape=(8, 64.7, 64)), r"dimension 1 is float 64.7, not an int", "whole number"),
    (lambda: Tensor(shape=(8, 64.0, 64)), r"dimension 1 is float 64.0, not an int", "whole number"),
    (lambda: Tensor(shape=(8, True)), r"dimension 1 is bool True", "whole number"),
    (lambda: Tensor(shape=(8, None)), r"dimension 1 is NoneType None", "whole number"),
], ids=["bare-int", "string", "str-dim", "float-dim", "integral-float-dim", "bool-dim", "none-dim"])
def test_tensor_shape_of_the_wrong_type(make, match, fix, where):
    """A shape that is not a tuple/list of ints raises PtortTypeError naming the bad dimension; nothing is truncated."""
    with pytest.raises(PtortTypeError, match=match) as e:
        make()
    assert isinstance(e.value, TypeError)
    assert fix in where(e, make.__code__.co_firstlineno)


def test_tensor_shape_of_negative_size(where):
    """A dimension < 1 raises PtortValueError (the existing message)."""
    with pytest.raises(PtortValueError, match=r"Tensor shape must be positive, got \(4, -1\)") as e:
        line = here() + 1
        Tensor(shape=(4, -1))
    assert ">= 1" in where(e, line)


def test_tensor_shape_accepts_lists_numpy_ints_and_arrays():
    """Lists, numpy integers and a 1-D integer array are valid shapes and become a tuple of Python ints."""
    for shape in ([2, 8, 8], (np.int64(2), 8, np.int32(8)), np.array([2, 8, 8])):
        t = Tensor(shape=shape, dtype=F32)
        assert t.shape == (2, 8, 8) and all(type(s) is int for s in t.shape)


# -- 2. tensors too big to allocate ----------------------------------------------------------------------------------
@kernel
def copy64(src: In[Tile[64, 64, F32]], dst: Out[Tile[64, 64, F32]]):
    """Copy a 64x64 F32 tile."""
    tl.store(dst, tl.load(src))


def _huge_copy():
    line = here() + 1
    X = Tensor(shape=(2**28, 64, 64), dtype=F32, name="X")  # 4 TiB: more than any 910B's HBM
    Y = Tensor(shape=(2**28, 64, 64), dtype=F32, name="Y")

    @workload
    def big():
        for t in P(Dense[2]()):
            copy64[t](src=X[t], dst=Y[t])

    return big, X, Y, line


def test_tensor_bigger_than_hbm_is_refused_when_values_are_computed(where):
    """Computing values of a 4 TiB tensor fails at its Tensor(...) line naming shape, bytes, HBM and the fix."""
    big, X, _, line = _huge_copy()
    with pytest.raises(PtortValueError, match=r"Tensor X f32\[268435456, 64, 64\] needs 4,398,046,511,104 bytes "
                                              r"\(4\.0 TiB\)") as e:
        big().compile().execute()
    msg = where(e, line)
    assert "HBM" in msg and "smaller shape" in msg and "compute_values=False" in msg
    assert X.data is None


def test_timing_only_run_never_allocates_the_huge_tensor():
    """With compute_values=False the same program runs: timing never touches tensor data."""
    big, X, Y, _ = _huge_copy()
    big().compile(compute_values=False).execute()
    assert X.data is None and Y.data is None


def test_host_memory_error_becomes_a_ptort_error(monkeypatch, where):
    """A MemoryError from numpy (host out of memory, below the HBM bound) is reported the same way."""
    line = here() + 1
    t = Tensor(shape=(4, 64, 64), dtype=F32, name="T")

    def no_memory(*args, **kwargs):
        raise MemoryError("simulated")

    monkeypatch.setattr(dsl_types.np, "zeros", no_memory)
    with pytest.raises(PtortValueError, match=r"Tensor T f32\[4, 64, 64\] needs 65,536 bytes .*could not allocate") \
            as e:
        t.allocate()
    assert "compute_values=False" in where(e, line)


def test_small_tensor_still_allocates_zeros():
    t = Tensor(shape=(2, 8, 8), dtype=F16)
    assert t.allocate().dtype == np.float16 and not t.data.any()


# -- 3. Ragged, Sparse and DenseDyn ----------------------------------------------------------------------------------
@pytest.mark.parametrize("make, cls, match, fix", [
    (lambda: Ragged(2, None), PtortTypeError, r"Ragged\(2, lengths\): lengths must be a list of ints, got NoneType",
     "Ragged(2, [3, 1])"),
    (lambda: Ragged(2, 5), PtortTypeError, r"lengths must be a list of ints, got int 5", "Ragged(2, [3, 1])"),
    (lambda: Ragged(2, [1.7, 2.2]), PtortTypeError, r"lengths\[0\] is float 1.7, not an int", "whole number"),
    (lambda: Ragged(2, [1, "2"]), PtortTypeError, r"lengths\[1\] is str '2', not an int", "whole number"),
    (lambda: Ragged(2, [1, 2, 3]), PtortValueError, r"Ragged\(2, lengths\) needs 2 lengths, got 3",
     "one length per outer row"),
    (lambda: Ragged(3, [2, 0, 3]).length(3), PtortValueError,
     r"Ragged\(3, \[2, 0, 3\]\)\.length\(3\): row 3 is out of range; it has 3 rows \(0..2\)", "Dense[3]()"),
    (lambda: Ragged(3, [2, 0, 3]).length(-1), PtortValueError, r"row -1 is out of range; it has 3 rows",
     "Dense[3]()"),
    (lambda: Ragged(3, [2, 0, 3]).length(1.0), PtortTypeError, r"the row must be an int or a loop variable",
     "r.length(b)"),
    (lambda: Sparse(2, None, [1]), PtortTypeError, r"Sparse\(2, indptr, indices\): indptr must be a list of ints",
     "[0, 2, 3]"),
    (lambda: Sparse(2, [0, 1, 2], [1.5, 2]), PtortTypeError, r"indices\[0\] is float 1.5, not an int",
     "whole number"),
], ids=["ragged-none", "ragged-int", "ragged-float", "ragged-str", "ragged-count", "length-past-end",
        "length-negative", "length-float", "sparse-none", "sparse-float"])
def test_bad_ragged_and_sparse_structure(make, cls, match, fix, where):
    """Ragged/Sparse need int lists of the right count; static lengths need a row in range."""
    with pytest.raises(cls, match=match) as e:
        make()
    assert fix in where(e, make.__code__.co_firstlineno)


def test_ragged_accepts_numpy_lengths():
    r = Ragged(2, np.array([3, 1]))
    assert r.lengths == [3, 1] and all(type(n) is int for n in r.lengths) and r.length(0) == 3


def test_ragged_length_of_a_row_past_the_end_at_enumerate(where):
    """DenseDyn(r.length(b)) with b past r's rows names the row, the row count and the DenseDyn line."""
    r = Ragged(3, [2, 0, 3])

    @workload
    def dyn():
        for b in P(Dense[4]()):
            line.append(here() + 1)
            for s in P(DenseDyn(r.length(b))):
                task("dyn", [b, s], [])

    line: list[int] = []
    w = dyn()
    with pytest.raises(PtortValueError, match=r"\.length\(b = 3\): row 3 is out of range; it has 3 rows \(0..2\)") \
            as e:
        w.enumerate()
    assert "Dense[3]()" in where(e, line[0])


def test_negative_dynamic_size_raises_at_enumerate(where):
    """DenseDyn(b - 2) is -2 for b = 0: an error naming the expression, the value and the binding."""
    @workload
    def neg():
        for b in P(Dense[4]()):
            line.append(here() + 1)
            for s in P(DenseDyn(b - 2)):
                task("neg", [b, s], [])

    line: list[int] = []
    w = neg()
    with pytest.raises(PtortValueError, match=r"DenseDyn\(b - 2\) size is -2 with b = 0; a loop cannot run a "
                                              r"negative number of times") as e:
        w.enumerate()
    assert ">= 0" in where(e, line[0])


def test_dynamic_size_zero_is_still_an_empty_loop():
    """A size expression that is 0 for some iteration (an empty row) runs no inner iteration, as documented."""
    @workload
    def dyn():
        for b in P(Dense[3]()):
            for s in P(DenseDyn(2 - b)):
                task("d", [b, s], [])

    assert listing(dyn()) == [[0, 0], [0, 1], [1, 0]]


def test_static_densedyn_accepts_numpy_int():
    assert DenseDyn(np.int64(3)).size == 3 and type(DenseDyn(np.int64(3)).size) is int


# -- 4. number literals on integer tiles -----------------------------------------------------------------------------
def _trace_error(build, cls, where):
    """@kernel traces at definition, so the mistake surfaces at the tl.* line in the kernel body."""
    lines: list[int] = []
    with pytest.raises(cls) as e:
        build(lines)
    return where(e, lines[0])


@pytest.mark.parametrize("value, words", [
    (float("nan"), ["nan has no I32 value", "no nan or inf"]),
    (float("inf"), ["inf has no I32 value"]),
    (0.5, ["0.5 is not a whole number", "no I32 value", "truncated"]),
    (2**40, ["1099511627776 is outside the range of I32 (-2147483648..2147483647)"]),
], ids=["nan", "inf", "half", "too-big"])
def test_float_literal_on_an_integer_tile_is_refused(value, words, where):
    """tl.add(i32_tile, nan / 0.5 / 2**40) is refused at trace time naming the value, the dtype and the cast fix."""
    def build(lines):
        @kernel
        def bad(a: In[Tile[8, 8, I32]], c: Out[Tile[8, 8, I32]]):
            x = tl.load(a)
            lines.append(inspect.currentframe().f_lineno + 1)
            tl.store(c, tl.add(x, value))
        return bad

    msg = _trace_error(build, PtortValueError, where)
    assert msg.startswith("tl.add: operand ")
    for w in words:
        assert w in msg
    assert "kernel 'bad'" in msg and "tl.cast(" in msg


@pytest.mark.parametrize("op, value, words", [
    (lambda x, v: tl.add(x, v), -1, ["-1 is outside the range of U8 (0..255)"]),
    (lambda x, v: tl.lt(x, v), 0.5, ["0.5 is not a whole number"]),
    (lambda x, v: tl.where(tl.gt(x, 0), x, v), 1.5, ["1.5 is not a whole number"]),
    (lambda x, v: tl.mul(x, tl.constant(v)), 0.25, ["constant 0.25 is not a whole number"]),
], ids=["unsigned-negative", "compare", "where", "constant"])
def test_other_literal_paths_on_integer_tiles(op, value, words, where):
    """Comparisons, where() branches and tl.constant() take the same check; so does an out-of-range int."""
    def build(lines):
        @kernel
        def bad(a: In[Tile[8, 8, U8]]):
            x = tl.load(a)
            lines.append(op.__code__.co_firstlineno)  # the error names the tl.* call's line: the lambda's
            op(x, value)
        return bad

    msg = _trace_error(build, PtortValueError, where)
    for w in words:
        assert w in msg


def test_whole_float_literals_on_integer_tiles_still_work(run_once):
    """2.0 on an I32 tile is the integer 2; nan on an F32 tile is still a valid float literal."""
    @kernel
    def k(a: In[Tile[4, 4, I32]], f: In[Tile[4, 4, F32]], c: Out[Tile[4, 4, I32]], g: Out[Tile[4, 4, F32]]):
        tl.store(c, tl.mul(tl.load(a), 2.0))
        tl.store(g, tl.max(tl.load(f), float("-inf")))

    a = np.arange(16, dtype=np.int32).reshape(4, 4)
    f = np.linspace(-1, 1, 16, dtype=np.float32).reshape(4, 4)
    got = run_once(k, a=a, f=f, c=np.zeros((4, 4), np.int32), g=np.zeros((4, 4), np.float32))
    assert np.array_equal(got["c"], a * 2) and np.array_equal(got["g"], f)


def test_non_number_operand_is_a_type_error(where):
    def build(lines):
        @kernel
        def bad(a: In[Tile[8, 8, F32]]):
            lines.append(inspect.currentframe().f_lineno + 1)
            tl.add(tl.load(a), "1")
        return bad

    assert "operand must be a tile or a Python number, got str '1'" in _trace_error(build, PtortTypeError, where)


# -- 5. int8 matmul accumulates in I32 -------------------------------------------------------------------------------
def test_int8_matmul_gives_an_i32_result():
    """I8 @ I8 (and U8 @ U8) is an I32 tile, as F16 @ F16 is F32."""
    @kernel
    def mm(a: In[Tile[8, 16, I8]], b: In[Tile[16, 4, I8]], u: In[Tile[8, 16, U8]], v: In[Tile[16, 4, U8]]):
        assert tl.matmul(a, b).dtype is I32
        assert tl.matmul(u, v).dtype is I32
        assert tl.matmul(tl.cast(a, F16), tl.cast(b, F16)).dtype is F32

    assert [op.result.type.dtype for op in mm.trace().ops if op.result is not None and op.kind.value == "matmul"] \
        == [I32, I32, F32]


def test_int8_matmul_values_do_not_wrap(run_once):
    """100 * 100 summed over K = 64 is 640000 (+ the I32 accumulator), far past I8's range."""
    @kernel
    def mm(a: In[Tile[8, 64, I8]], b: In[Tile[64, 4, I8]], acc: In[Tile[8, 4, I32]], c: Out[Tile[8, 4, I32]]):
        tl.store(c, tl.matmul(a, b, tl.load(acc)))

    rng = np.random.default_rng(5)
    a = rng.integers(-128, 128, (8, 64), dtype=np.int8)
    b = rng.integers(-128, 128, (64, 4), dtype=np.int8)
    a[0], b[:, 0] = 100, 100
    acc = np.full((8, 4), 7, np.int32)
    got = run_once(mm, a=a, b=b, acc=acc, c=np.zeros((8, 4), np.int32))["c"]
    assert np.array_equal(got, acc + a.astype(np.int32) @ b.astype(np.int32))
    assert got[0, 0] == 640007


def test_int8_matmul_with_an_i8_accumulator_is_refused(where):
    def build(lines):
        @kernel
        def bad(a: In[Tile[8, 16, I8]], b: In[Tile[16, 4, I8]], acc: InOut[Tile[8, 4, I8]]):
            lines.append(inspect.currentframe().f_lineno + 1)
            tl.matmul(a, b, tl.load(acc))
        return bad

    msg = _trace_error(build, PtortTypeError, where)
    assert "acc=i8[8,4] out=i32[8,4]" in msg and "I8 inputs give a I32 result" in msg
    assert "tl.full(8, 4, 0, DType.I32)" in msg


# -- 6. tl.full and tl.constant --------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, cls, words", [
    (lambda: tl.full(0, 4, 1.0), PtortValueError, ["tl.full: rows must be >= 1, got 0"]),
    (lambda: tl.full(-4, 4, 1.0), PtortValueError, ["tl.full: rows must be >= 1, got -4"]),
    (lambda: tl.full(4, 4.0, 1.0), PtortTypeError, ["tl.full: cols must be an int, got float 4.0"]),
    (lambda: tl.full(4, True, 1.0), PtortTypeError, ["cols must be an int, got bool True"]),
    (lambda: tl.full(4, 4, "zero"), PtortTypeError,
     ["tl.full: value must be a real number (int or float), got str 'zero'", "tl.full(8, 8, 0.0, DType.F32)"]),
    (lambda: tl.full(4, 4, None), PtortTypeError, ["value must be a real number (int or float), got NoneType"]),
    (lambda: tl.full(4, 4, 0.5, I32), PtortValueError, ["value 0.5 is not a whole number", "I32"]),
    (lambda: tl.full(4, 4, 256, U8), PtortValueError, ["value 256 is outside the range of U8 (0..255)"]),
    (lambda: tl.full(4, 4, 1.0, "f32"), PtortTypeError, ["dtype must be a DType, got 'f32'"]),
    (lambda: tl.constant("two"), PtortTypeError,
     ["tl.constant: value must be a real number (int or float), got str 'two'", "tl.constant(2.0, DType.F32)"]),
    (lambda: tl.constant(float("nan"), I32), PtortValueError, ["tl.constant: value nan has no I32 value"]),
    (lambda: tl.constant(1.0, "f32"), PtortTypeError, ["tl.constant: dtype must be a DType"]),
], ids=["full-rows-0", "full-rows-neg", "full-cols-float", "full-cols-bool", "full-value-str", "full-value-none",
        "full-half-int", "full-u8-range", "full-dtype", "constant-str", "constant-nan-int", "constant-dtype"])
def test_full_and_constant_validate_at_trace_time(call, cls, words, where):
    """Sizes must be ints >= 1 and the value a number with a value in the dtype, checked when the kernel is traced."""
    def build(lines):
        @kernel
        def bad(a: In[Tile[4, 4, F32]]):
            lines.append(inspect.currentframe().f_lineno + 1)
            call()
        return bad

    lines: list[int] = []
    with pytest.raises(cls) as e:
        build(lines)
    msg = where(e, call.__code__.co_firstlineno)  # the tl.* call is in the lambda
    assert "kernel 'bad'" in msg
    for w in words:
        assert w in msg


def test_full_and_constant_valid_forms(run_once):
    """tl.full with numpy ints, a tl.constant value, and integer fills still trace and run."""
    @kernel
    def k(a: In[Tile[4, 4, I32]], c: Out[Tile[4, 4, I32]], f: Out[Tile[4, 4, F32]]):
        tl.store(c, tl.add(tl.load(a), tl.full(np.int64(4), 4, 3.0, I32)))
        tl.store(f, tl.full(4, 4, tl.constant(0.5)))

    a = np.arange(16, dtype=np.int32).reshape(4, 4)
    got = run_once(k, a=a, c=np.zeros((4, 4), np.int32), f=np.zeros((4, 4), np.float32))
    assert np.array_equal(got["c"], a + 3) and np.all(got["f"] == 0.5)


# -- 7. Tensor.slice -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("start, stop, cls, match", [
    (2, 100, PtortValueError, r"Tensor\(f32\[4, 8, 8\]\)\.slice\(2, 100\) is out of range: its leading dimension "
                              r"has 4 rows \(0..3\)"),
    (3, 3, PtortValueError, r"\.slice\(3, 3\) is out of range"),
    (-1, 2, PtortValueError, r"\.slice\(-1, 2\) is out of range"),
    (1.0, 3, PtortTypeError, r"start must be an int, got float 1.0"),
], ids=["past-end", "empty", "negative", "float"])
def test_slice_out_of_range(start, stop, cls, match, where):
    """X.slice(2, 100) on 4 rows names the tensor's extent instead of a confusing shape mismatch."""
    X = Tensor(data=np.zeros((4, 8, 8), np.float32))
    with pytest.raises(cls, match=match) as e:
        line = here() + 1
        X.slice(start, stop)
    assert ".slice(0, 4)" in where(e, line)


def test_slice_in_range_shares_data():
    X = Tensor(data=np.arange(4 * 2 * 2, dtype=np.float32).reshape(4, 2, 2), name="X")
    s = X.slice(1, 3)
    assert s.shape == (2, 2, 2) and s.name == "X"
    s.data[0, 0, 0] = -1
    assert X.data[1, 0, 0] == -1
