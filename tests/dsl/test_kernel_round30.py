"""Kernel definitions, round 30: a Constexpr object changed in place is traced again (its cached trace was reused
with the old attribute values: a silent wrong answer), and the check that an Out tile's sliced stores cover it works
on the stores' windows, not on an array as large as the tile (a [2**40, 2**40] tile raised a bare ValueError; a
[16384, 16384] one took 2.5 GB)."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from source_lines import here, located

from ptort_lab import Constexpr, DType, In, Out, PtortTypeError, Tensor, Tile, kernel, tl, workload
from ptort_lab.dsl.kernel import _unwritten_part

F32 = DType.F32
R, C = 4, 8
T = Tile[R, C, F32]


class Settings:
    """A user's settings object, passed to a kernel as a Constexpr (hashed by identity)."""

    def __init__(self, scale: float, extra: dict[str, float] | None = None) -> None:
        self.scale = scale
        self.extra = extra or {"bias": 0.0}


def _run(k, cfg) -> float:
    x = Tensor(data=np.ones((R, C), np.float32))
    out = Tensor(data=np.zeros((R, C), np.float32))

    @workload
    def w():
        k(a=x, out=out, cfg=cfg)

    w().compile().execute()
    return float(out.data[0, 0])


def test_a_constexpr_object_changed_in_place_is_traced_again():
    @kernel
    def k(a: In[T], out: Out[T], cfg: Constexpr[Settings]):
        tl.store(out, tl.load(a) * cfg.scale)

    cfg = Settings(2.0)
    assert _run(k, cfg) == 2.0
    cfg.scale = 5.0
    assert _run(k, cfg) == 5.0  # (was 2.0: the trace made with scale 2.0, reused)
    cfg.scale = 2.0
    assert _run(k, cfg) == 2.0 and len(k._cache) == 2  # the first trace serves again
    assert _run(k, Settings(5.0)) == 5.0


def test_an_item_of_a_constexpr_object_and_a_read_in_a_nested_function_count_too():
    @kernel
    def k(a: In[T], out: Out[T], cfg: Constexpr[Settings]):
        shift = lambda x: x + cfg.extra["bias"]  # noqa: E731 - the parameter read inside a nested function
        tl.store(out, shift(tl.load(a)))

    cfg = Settings(1.0, {"bias": 1.5})
    assert _run(k, cfg) == 2.5
    cfg.extra["bias"] = -3.0
    assert _run(k, cfg) == -2.0


def test_a_plain_constexpr_is_keyed_as_before():
    @kernel
    def k(a: In[T], out: Out[T], n: Constexpr[int] = 2):
        tl.store(out, tl.load(a) * float(n.real))

    assert k.trace(n=3) is k.trace(n=3) and k.trace(n=3) is not k.trace(n=4)


# -- sliced stores of a huge Out tile ---------------------------------------------------------------------------------
N = 2**40


def test_a_huge_out_tile_stored_in_two_halves_is_accepted_at_its_definition():
    @kernel
    def k(a: In[Tile[N, N, F32]], out: Out[Tile[N, N, F32]]):
        x = tl.load(a)
        tl.store(out[0:N // 2, :], x[0:N // 2, :])
        tl.store(out[N // 2:N, :], x[N // 2:N, :])

    h, n = N // 2, N
    assert str(k.trace()) == (
        f"kernel k(a: In[f32[{n},{n}]], out: Out[f32[{n},{n}]]):\n"
        f"  b: f32[{n},{n}] = load a\n"
        f"  c: f32[{h},{n}] = slice[0:{h}][0:{n}] out\n"
        f"  d: f32[{h},{n}] = slice[0:{h}][0:{n}] b\n"
        "  store c, d\n"
        f"  e: f32[{h},{n}] = slice[{h}:{n}][0:{n}] out\n"
        f"  f: f32[{h},{n}] = slice[{h}:{n}][0:{n}] b\n"
        "  store e, f")


def test_a_huge_out_tile_missing_a_quarter_is_refused_with_the_gap_and_its_size():
    with pytest.raises(PtortTypeError) as e:
        line = here() + 4  # (the error names the first store)
        @kernel
        def k(a: In[Tile[N, N, F32]], out: Out[Tile[N, N, F32]]):
            x = tl.load(a)
            tl.store(out[0:N // 2, :], x[0:N // 2, :])
            tl.store(out[N // 2:N, 0:N // 2], x[N // 2:N, 0:N // 2])
    assert e.value.what == (
        f"kernel 'k' stores into only part of its Out parameter 'out' (f32[{N},{N}]): out[{N // 2}:{N}, {N // 2}:{N}] "
        f"is never written (the stores cover out[0:{N // 2}, :], out[{N // 2}:{N}, 0:{N // 2}]), so that part would "
        "keep the values its tensor held before the run.")
    located(e, line)


def _dense_unwritten(shape, windows):
    """The old check, on an array the size of the tile: the oracle for small shapes."""
    written = np.zeros(shape, dtype=bool)
    for r0, r1, c0, c1 in windows:
        written[r0:r1, c0:c1] = True
    rows, cols = np.nonzero(~written)
    if not rows.size:
        return None
    return (int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1), int(rows.size)


@st.composite
def _tile_and_windows(draw):
    rows, cols = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    windows = []
    for _ in range(draw(st.integers(0, 6))):
        r0, r1 = sorted(draw(st.integers(0, rows)) for _ in range(2))
        c0, c1 = sorted(draw(st.integers(0, cols)) for _ in range(2))
        windows.append((r0, r1, c0, c1))
    return (rows, cols), windows


@settings(max_examples=400, deadline=None)
@given(_tile_and_windows())
def test_the_gap_found_on_the_windows_grid_is_the_one_found_element_by_element(case):
    shape, windows = case
    assert _unwritten_part(shape, windows) == _dense_unwritten(shape, windows)


# -- hints that name a dtype that holds the value ---------------------------------------------------------------------
def test_wider_dtype_is_the_narrowest_of_the_kind_that_holds_the_value():
    from ptort_lab.dsl.types import wider_dtype
    assert [wider_dtype(d) for d in (DType.F16, DType.BF16, DType.F32, DType.F64)] == [F32, F32, DType.F64, None]
    assert [wider_dtype(DType.I8, v) for v in (300, 40_000, 2**40, 2**63)] == [DType.I16, DType.I32, DType.I64, None]
    assert [wider_dtype(DType.U8, v) for v in (300, -1, 2**64 - 1)] == [DType.U16, DType.I16, DType.U64]
    assert wider_dtype(DType.U64, -1) == DType.I64  # (no signed dtype is wider: the one of its size)
    assert wider_dtype(DType.F16, 1e39) == DType.F64 and wider_dtype(DType.F32, 1e309) is None


@pytest.mark.parametrize("dtype, value, hint", [
    (DType.BF16, 1e39, "Cast the tile to F64 first (tl.cast(x, DType.F64)), or pass float('inf') if infinity is "
                       "meant."),
    (F32, -1e39, "Cast the tile to F64 first (tl.cast(x, DType.F64)), or pass float('inf') if infinity is meant."),
    (DType.I32, 2**40, "Cast the tile to a wider dtype first (tl.cast(x, DType.I64))."),
    (DType.U8, -1, "Cast the tile to a wider dtype first (tl.cast(x, DType.I16))."),
    (DType.I64, 2**63, "No integer dtype holds 9223372036854775808: compute in DType.F64 (tl.cast(x, DType.F64), "
                       "exact up to 2**53), or use a smaller value."),
], ids=["bf16", "f32", "i32", "u8 negative", "i64"])
def test_a_literal_out_of_a_tiles_range_names_a_dtype_that_holds_it(dtype, value, hint):
    from ptort_lab import PtortValueError
    with pytest.raises(PtortValueError) as e:
        @kernel
        def k(a: In[Tile[R, C, dtype]], out: Out[Tile[R, C, dtype]]):
            tl.store(out, tl.adds(tl.load(a), value))
    assert e.value.hint == hint


@pytest.mark.parametrize("dtype, a, b, instead", [
    (DType.I32, 46341, 46341, "compute in a wider dtype (tl.cast(x, DType.I64) first)"),
    (DType.I64, 2**62, 2**62, "no integer dtype holds 21267647932558653966460912964485513216: compute in DType.F64 "
                              "(tl.cast(x, DType.F64) first, exact up to 2**53)"),
], ids=["i32", "i64"])
def test_an_integer_overflow_at_run_time_names_a_dtype_that_holds_the_result(dtype, a, b, instead):
    from ptort_lab import PtortError
    np_dtype = dtype.np_dtype

    @kernel
    def k(x: In[Tile[1, C, dtype]], y: In[Tile[1, C, dtype]], out: Out[Tile[1, C, dtype]]):
        tl.store(out, tl.mul(tl.load(x), tl.load(y)))

    xs, ys = Tensor(data=np.full((1, C), a, np_dtype)), Tensor(data=np.full((1, C), b, np_dtype))
    out = Tensor(data=np.zeros((1, C), np_dtype))

    @workload
    def w():
        k(x=xs, y=ys, out=out)

    with pytest.raises(PtortError) as e:
        w().compile().execute()
    assert e.value.hint.startswith(
        "ptort_lab does not model what the NPU does past an integer dtype's range (wrap-around or saturation), so it "
        f"has no value: {instead}, or keep the operands in range (clamp them with tl.maxs/tl.mins).")


# -- numpy habits on a traced tile ------------------------------------------------------------------------------------
@pytest.mark.parametrize("attribute, use", [
    ("T", "Use tl.transpose(x)."),
    ("astype", "Use tl.cast(x, DType.F32) (any DType)."),
    ("sum", "Use tl.rowsum(x) or tl.colsum(x) (a reduction runs along one axis)."),
    ("reshape", "Use the tl op that makes the shape you need: a tile's shape is fixed, so take a part of it with a "
                "slice (x[r0:r1, c0:c1]), join tiles with tl.concat, or tl.transpose it."),
    ("ndim", "Use x.shape (a tile is 2-D)."),
])
def test_a_numpy_attribute_of_a_traced_tile_is_refused_at_its_line_naming_the_tl_op(attribute, use):
    from ptort_lab import DSLUsageError
    with pytest.raises(DSLUsageError) as e:
        line = here() + 4
        @kernel
        def k(a: In[T], out: Out[T]):
            x = tl.load(a)
            getattr(x, attribute)
            tl.store(out, x)
    assert e.value.what == (f"x.{attribute} on a tile (f32[4,8]): a traced tile is not a numpy array, and has no "
                            f"'{attribute}'.")
    assert e.value.hint == use
    located(e, line)


def test_other_attributes_stay_plain_attribute_errors_and_hasattr_works_outside_a_kernel():
    from ptort_lab import Value
    from ptort_lab.errors import UserCodeError
    v = Value.tile(4, 8, F32)
    assert not hasattr(v, "T") and not hasattr(v, "sum") and hasattr(v, "shape")
    with pytest.raises(UserCodeError) as e:
        @kernel
        def k(a: In[T], out: Out[T]):
            x = tl.load(a)
            x.no_such_thing  # noqa: B018
            tl.store(out, x)
        k.trace()
    assert e.value.what == "the body of kernel 'k' raised AttributeError: 'Value' object has no attribute " \
                           "'no_such_thing'"
    assert e.value.hint == "Fix the error in that line (the original exception is kept as this error's __cause__)."


def test_unary_plus_is_the_tile_and_invert_and_divmod_are_refused():
    from ptort_lab import DSLUsageError

    @kernel
    def k(a: In[T], out: Out[T]):
        tl.store(out, +tl.load(a))

    assert str(k.trace()).splitlines()[1:] == ["  b: f32[4,8] = load a", "  store out, b"]
    with pytest.raises(DSLUsageError) as e:
        @kernel
        def inverted(a: In[T], out: Out[T]):
            tl.store(out, ~tl.load(a))
    assert e.value.what == "~ on a tile (f32[4,8]): tl has no bitwise or logical not."
    with pytest.raises(DSLUsageError) as e:
        @kernel
        def divided(a: In[T], out: Out[T]):
            q, r = divmod(tl.load(a), 2)
            tl.store(out, q)
    assert e.value.what == ("`//` on a tile (f32[4,8]) (with 2 on the right): tl has no floor-division op, so a tile "
                            "does not support `//`.")


# -- a parameter only read may take a read-only array -----------------------------------------------------------------
def test_an_unannotated_parameter_the_kernel_only_reads_takes_a_read_only_array():
    """An unannotated parameter is InOut (it may be stored into); one the trace never stores into is not saved
    before the run, so a read-only array (np.broadcast_to) is fine for it. One it does store into is refused."""
    from ptort_lab import PtortValueError

    @kernel
    def k(a, out: Out[T]):
        tl.store(out, tl.load(a) + 1.0)

    x = Tensor(data=np.broadcast_to(np.arange(C, dtype=np.float32), (R, C)))
    out = Tensor(data=np.zeros((R, C), np.float32))

    @workload
    def w():
        k(a=x, out=out)

    w().compile().execute()
    np.testing.assert_array_equal(out.data, np.broadcast_to(np.arange(C, dtype=np.float32) + 1.0, (R, C)))

    @kernel
    def bump(a):
        tl.store(a, tl.load(a) + 1.0)

    @workload
    def w2():
        bump(a=x)

    with pytest.raises(PtortValueError) as e:
        w2().compile().execute()
    assert "passed as 'a' to bump, has a read-only array (np.ndarray.flags.writeable is False)" in e.value.what


def test_probing_a_traced_tile_with_hasattr_or_getattr_with_a_default_still_answers():
    """The refusal is an AttributeError too: duck typing in a helper (getattr(x, "size", None)) traces as before."""
    def square_unless_sized(x):
        return tl.mul(x, x) if getattr(x, "size", None) is None and not hasattr(x, "T") else x

    @kernel
    def k(a: In[T], out: Out[T]):
        tl.store(out, square_unless_sized(tl.load(a)))

    assert str(k.trace()).splitlines()[1:] == ["  b: f32[4,8] = load a", "  c: f32[4,8] = mul b, b", "  store out, c"]


# -- kernel definitions and launches that named the wrong fix ---------------------------------------------------------
def test_a_kernel_defined_as_a_method_is_refused_at_its_definition():
    from ptort_lab import PtortTypeError as TypeErr
    with pytest.raises(TypeErr) as e:
        line = here() + 3
        class Model:
            @kernel
            def k(self, a: In[T], out: Out[T]):
                tl.store(out, tl.load(a))
    assert e.value.what == ("@kernel 'k' decorates a method of class test_a_kernel_defined_as_a_method_is_refused_at_"
                            "its_definition.<locals>.Model (its first parameter is 'self'); a kernel is a plain "
                            "function whose parameters are all tiles, scalars or Constexprs.")
    assert e.value.hint.startswith("Define the kernel outside the class, and pass what it reads from the instance")
    located(e, line)


def test_a_scalar_parameter_left_none_is_asked_for_a_number_not_a_tensor_view():
    from ptort_lab import Scalar

    @kernel
    def k(a: In[T], s: Scalar[F32], out: Out[T]):
        tl.store(out, tl.muls(tl.load(a), s))

    x, out = Tensor(data=np.ones((R, C), np.float32)), Tensor(data=np.zeros((R, C), np.float32))

    @workload
    def w():
        k(a=x, s=None, out=out)

    with pytest.raises(PtortTypeError) as e:
        w().compile().execute()
    assert e.value.hint == ("Pass a number for s, or None for every parameter (then the task costs cycles=, else 1 "
                            "cycle).")


@pytest.mark.parametrize("call, hint", [
    ("sum", "tl has no 'sum': use tl.rowsum or tl.colsum (help(tl) lists every op)."),
    ("expp", "tl has no 'expp': did you mean tl.exp?"),
    ("astype", "tl has no 'astype': use tl.cast(x, DType.F32) (any DType)."),
    ("qwxyz", "tl has no 'qwxyz' (help(tl) lists every op)."),
])
def test_an_op_tl_does_not_have_names_the_ones_it_has(call, hint):
    from ptort_lab.errors import UserCodeError

    @kernel
    def k(a: In[T], out: Out[T]):
        x = tl.load(a)
        getattr(tl, call)(x)
        tl.store(out, x)

    with pytest.raises(UserCodeError) as e:
        k.trace()
    assert e.value.what.endswith(f"raised AttributeError: module 'ptort_lab.dsl.tl' has no attribute '{call}'")
    assert e.value.hint == hint


def test_kernel_applied_twice_or_to_a_partial_is_refused_saying_what_to_write():
    import functools

    from ptort_lab import PtortTypeError as TypeErr

    @kernel
    def k(a: In[T], out: Out[T]):
        tl.store(out, tl.load(a))

    with pytest.raises(TypeErr) as e:
        kernel(k)
    assert e.value.what == "@kernel is applied twice to 'k': the function is a kernel already."

    def scaled(a: In[T], out: Out[T], s: float = 1.0):
        tl.store(out, tl.load(a) * s)

    with pytest.raises(TypeErr) as e:
        kernel(functools.partial(scaled, s=3.0))
    assert e.value.what.startswith("@kernel decorates a function, got functools.partial of 'scaled': a partial has no "
                                   "annotated parameters of its own")
    assert e.value.hint.startswith("Make the bound values Constexpr parameters with defaults")
