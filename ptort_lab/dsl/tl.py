"""tl.* tile primitives: check operands at trace time, then record an op in the current kernel."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import PtortError, PtortTypeError, PtortValueError
from .ir import Literal, OpKind, ScalarRefused, Value, scalar_value
from .kernel import KernelBuilder, current_builder
from .types import Direction, DType, TileType

_F32_ACC = {DType.F16: DType.F32, DType.BF16: DType.F32}
# The accumulator of sums and matmuls: the cube accumulates 8-bit integer products in 32-bit integers (Ascend's
# s8 x s8 -> s32 Mmad) and half-precision ones in F32; an I8 result would wrap after a handful of terms.
_ACCUMULATOR = {**_F32_ACC, DType.I8: DType.I32, DType.U8: DType.I32}


def _fail(op: str, message: str, hint: str, builder: KernelBuilder | None = None,
          error: type[PtortError] = PtortTypeError) -> PtortError:
    """The error for a bad tl.<op> call: PtortTypeError by default, ``error=PtortValueError`` for a bad value."""
    context = f"kernel '{builder.kernel_name}'" if builder is not None else ""
    return error(f"tl.{op}: {message}", hint=hint, context=context)


def _literal(op: str, b: KernelBuilder, x: Any, dtype: DType, what: str = "operand") -> float | int:
    """The Python number ``x`` as a value of ``dtype``, refused when it has none: integer dtypes take only whole,
    finite numbers inside the dtype's range (numpy would otherwise truncate 0.5 to 0, or fail on nan at run time)."""
    try:
        return scalar_value(x, dtype)
    except ScalarRefused as r:
        refused = r
    if refused.kind == "type":
        if what == "operand":
            raise _fail(op, f"operand must be a tile or a Python number, got {type(x).__name__} {x!r}.",
                        "Pass tiles, scalars from tl.constant(), or plain numbers such as 0.0.", b)
        raise _fail(op, f"{what} must be a real number (int or float), got {type(x).__name__} {x!r}.",
                    f"Write a number, e.g. tl.{op}(8, 8, 0.0, DType.F32)." if op == "full" else
                    f"Write a number, e.g. tl.{op}(2.0, DType.F32).", b)
    hint = {
        "too_large": "Use a value within the float range, or float('inf') if infinity is meant.",
        "float_range": "Cast the tile to F32 first (tl.cast(x, DType.F32)), or pass float('inf') if infinity is "
                       "meant.",
        "nonfinite": f"Cast the tile to F32 first (tl.cast(x, DType.F32)) to compute with {x!r}.",
        "int_range": "Cast the tile to a wider dtype first (e.g. tl.cast(x, DType.I32) or DType.F32).",
    }.get(refused.kind) or (f"Cast the tile to F32 first (tl.cast(x, DType.F32)), or pass a whole number such as "
                            f"{math.floor(x)}.")
    raise _fail(op, f"{what} {refused.text}", hint, b, PtortValueError)


def _describe(x: Any) -> str:
    if isinstance(x, Value):
        return f"{x.name or 'tile'} ({x.type})" if x.name else str(x.type)
    return repr(x)


def _tile(op: str, b: KernelBuilder, x: Any, what: str = "operand") -> Value:
    if not isinstance(x, Value):
        raise _fail(op, f"{what} must be a tile, got {type(x).__name__} {x!r}.",
                    "Pass a kernel parameter or the result of another tl op.", b)
    if not x.is_tile:
        raise _fail(op, f"{what} must be a tile, got the scalar {_describe(x)}.", "Use a Tile parameter here.", b)
    p = b.param_of(x)
    if p is not None and p.direction is Direction.OUT:
        raise _fail(op, f"parameter '{p.name}' is Out[...] and cannot be read.",
                    "Declare it InOut[...] if the kernel must read it.", b)
    return x


def _operand(op: str, b: KernelBuilder, x: Any, like: DType) -> Value | Literal:
    if isinstance(x, Value):
        p = b.param_of(x)
        if p is not None and p.direction is Direction.OUT:
            raise _fail(op, f"parameter '{p.name}' is Out[...] and cannot be read.",
                        "Declare it InOut[...] if the kernel must read it.", b)
        return x
    if isinstance(x, Literal):  # a tl.constant: its own dtype rounds the value first (0.1 as F16 is 0.0999755...)
        own = np.asarray(x.value, dtype=x.dtype.np_dtype).item()
        return Literal(_literal(op, b, own, like, "constant"), like)
    return Literal(_literal(op, b, x, like), like)


def _broadcast_shape(op: str, b: KernelBuilder, a: Value, c: Value) -> tuple[int, int]:
    ra, ca = a.shape
    rc, cc = c.shape
    if (ra, ca) == (rc, cc):
        return (ra, ca)
    if (rc, cc) in ((ra, 1), (1, ca)):
        return (ra, ca)
    if (ra, ca) in ((rc, 1), (1, cc)):
        return (rc, cc)
    raise _fail(op, f"got tiles of shape {a.shape} and {c.shape}; shapes must match or one must be a "
                    f"[rows, 1] / [1, cols] vector of the other.",
                "Load tiles of matching shape, or reduce one operand with tl.rowsum/tl.colsum first.", b)


def _binary(kind: OpKind, a: Any, c: Any) -> Value:
    op = kind.value
    b = current_builder(op)
    if not isinstance(a, Value) and not isinstance(c, Value):
        raise _fail(op, f"needs at least one tile operand, got {a!r} and {c!r}.", "Pass a tile.", b)
    like = (a if isinstance(a, Value) else c).dtype
    x, y = _operand(op, b, a, like), _operand(op, b, c, like)
    tiles = [v for v in (x, y) if isinstance(v, Value) and v.is_tile]
    if not tiles:
        raise _fail(op, f"needs at least one tile operand, got {_describe(a)} and {_describe(c)}.",
                    "Pass a tile.", b)
    if isinstance(x, Value) and isinstance(y, Value) and x.dtype != y.dtype:
        raise _fail(op, f"operands have different dtypes: {_describe(x)} and {_describe(y)}.",
                    f"Convert one with tl.cast(x, DType.{x.dtype}) first.", b)
    shape = tiles[0].shape
    if len(tiles) == 2:
        shape = _broadcast_shape(op, b, tiles[0], tiles[1])
    if kind is OpKind.DIV and not like.is_float and isinstance(y, Literal) and y.value == 0:
        raise _fail(op, f"divides the {like} tile by the literal 0, which has no integer result.",
                    "Divide by a non-zero value, or cast to F32 first (float division by 0 gives inf).", b,
                    PtortValueError)
    return b.emit(kind, TileType(shape[0], shape[1], like), (x, y))  # type: ignore[return-value]


def _unary(kind: OpKind, x: Any, float_only: bool = True) -> Value:
    op = kind.value
    b = current_builder(op)
    t = _tile(op, b, x)
    if float_only and not t.dtype.is_float:
        raise _fail(op, f"needs a floating-point tile, got {_describe(t)}.",
                    "Cast first: tl.cast(x, DType.F32).", b)
    return b.emit(kind, TileType(t.shape[0], t.shape[1], t.dtype), (t,))  # type: ignore[return-value]


def load(src: Any) -> Value:
    """Load a tile parameter (In/InOut) into on-chip memory; the result has the parameter's shape and dtype."""
    b = current_builder("load")
    if not isinstance(src, Value) or b.param_of(src) is None:
        raise _fail("load", f"can only load a kernel parameter, got {_describe(src)}.",
                    "Pass a tile parameter of the kernel (e.g. tl.load(src)).", b)
    t = _tile("load", b, src, "source")
    return b.emit(OpKind.LOAD, TileType(t.shape[0], t.shape[1], t.dtype), (t,))  # type: ignore[return-value]


def store(dst: Any, src: Any) -> None:
    """Store tile ``src`` into the Out/InOut parameter ``dst``; shape and dtype must match exactly."""
    b = current_builder("store")
    p = b.param_of(dst) if isinstance(dst, Value) else None
    if p is None or not p.is_tile:
        raise _fail("store", f"destination must be a tile parameter of the kernel, got {_describe(dst)}.",
                    "Store into a parameter annotated Out[Tile[...]] or InOut[Tile[...]].", b)
    if p.direction is Direction.IN:
        raise _fail("store", f"parameter '{p.name}' is In[...] and cannot be written.",
                    "Annotate it Out[...] or InOut[...].", b)
    if not isinstance(src, Value) or not src.is_tile:
        raise _fail("store", f"source must be a tile, got {_describe(src)}.", "Store the result of a tl op.", b)
    if src.shape != p.type.shape:
        raise _fail("store", f"source {src.type} does not fit destination '{p.name}' ({p.type}): shapes differ.",
                    "Store a tile of the destination's shape.", b)
    if src.dtype != p.type.dtype:
        raise _fail("store", f"source {src.type} does not fit destination '{p.name}' ({p.type}): dtypes differ.",
                    f"Convert first: tl.store({p.name}, tl.cast(x, DType.{p.type.dtype})).", b)
    b.emit(OpKind.STORE, None, (dst, src))


def cast(x: Any, dtype: DType) -> Value:
    """Convert a tile to ``dtype`` (round to nearest even for floats)."""
    b = current_builder("cast")
    t = _tile("cast", b, x)
    if not isinstance(dtype, DType):
        raise _fail("cast", f"dtype must be a DType, got {dtype!r}.", "Write tl.cast(x, DType.F16).", b)
    return b.emit(OpKind.CAST, TileType(t.shape[0], t.shape[1], dtype), (t,), (("dtype", dtype),))  # type: ignore


def add(a: Any, b: Any) -> Value:
    """Elementwise ``a + b``; either side may be a [rows,1]/[1,cols] vector, a scalar or a Python number."""
    return _binary(OpKind.ADD, a, b)


def sub(a: Any, b: Any) -> Value:
    """Elementwise ``a - b`` (broadcasting as in tl.add)."""
    return _binary(OpKind.SUB, a, b)


def mul(a: Any, b: Any) -> Value:
    """Elementwise ``a * b`` (broadcasting as in tl.add)."""
    return _binary(OpKind.MUL, a, b)


def div(a: Any, b: Any) -> Value:
    """Elementwise ``a / b`` (broadcasting as in tl.add)."""
    return _binary(OpKind.DIV, a, b)


def max(a: Any, b: Any) -> Value:  # noqa: A001 - tl.max is the DSL's name
    """Elementwise maximum (broadcasting as in tl.add)."""
    return _binary(OpKind.MAX, a, b)


def min(a: Any, b: Any) -> Value:  # noqa: A001
    """Elementwise minimum (broadcasting as in tl.add)."""
    return _binary(OpKind.MIN, a, b)


maximum, minimum = max, min


def adds(x: Any, s: float) -> Value:
    """Tile plus scalar."""
    return _binary(OpKind.ADD, x, s)


def subs(x: Any, s: float) -> Value:
    """Tile minus scalar."""
    return _binary(OpKind.SUB, x, s)


def muls(x: Any, s: float) -> Value:
    """Tile times scalar."""
    return _binary(OpKind.MUL, x, s)


def divs(x: Any, s: float) -> Value:
    """Tile divided by scalar."""
    return _binary(OpKind.DIV, x, s)


def maxs(x: Any, s: float) -> Value:
    """Elementwise max with a scalar."""
    return _binary(OpKind.MAX, x, s)


def mins(x: Any, s: float) -> Value:
    """Elementwise min with a scalar."""
    return _binary(OpKind.MIN, x, s)


def exp(x: Any) -> Value:
    """Elementwise e**x."""
    return _unary(OpKind.EXP, x)


def log(x: Any) -> Value:
    """Elementwise natural logarithm."""
    return _unary(OpKind.LOG, x)


def sqrt(x: Any) -> Value:
    """Elementwise square root."""
    return _unary(OpKind.SQRT, x)


def rsqrt(x: Any) -> Value:
    """Elementwise 1/sqrt(x)."""
    return _unary(OpKind.RSQRT, x)


def neg(x: Any) -> Value:
    """Elementwise -x."""
    return _unary(OpKind.NEG, x, float_only=False)


def abs(x: Any) -> Value:  # noqa: A001
    """Elementwise |x|."""
    return _unary(OpKind.ABS, x, float_only=False)


def relu(x: Any) -> Value:
    """Elementwise max(x, 0)."""
    return _unary(OpKind.RELU, x, float_only=False)


def sigmoid(x: Any) -> Value:
    """Elementwise 1 / (1 + e**-x)."""
    return _unary(OpKind.SIGMOID, x)


def silu(x: Any) -> Value:
    """Elementwise x * sigmoid(x) (SiLU / swish), computed as x / (1 + e**-x)."""
    return _unary(OpKind.SILU, x)


def tanh(x: Any) -> Value:
    """Elementwise hyperbolic tangent, computed as 1 - 2 / (e**2x + 1)."""
    return _unary(OpKind.TANH, x)


def gelu(x: Any) -> Value:
    """Elementwise GELU, tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x**3)))."""
    return _unary(OpKind.GELU, x)


def transpose(x: Any) -> Value:
    """The [cols, rows] transpose of a [rows, cols] tile (same dtype)."""
    b = current_builder("transpose")
    t = _tile("transpose", b, x)
    rows, cols = t.shape
    return b.emit(OpKind.TRANSPOSE, TileType(cols, rows, t.dtype), (t,))  # type: ignore[return-value]


def sin(x: Any) -> Value:
    """Elementwise sine (radians)."""
    return _unary(OpKind.SIN, x)


def cos(x: Any) -> Value:
    """Elementwise cosine (radians)."""
    return _unary(OpKind.COS, x)


def _half(kind: OpKind, x: Any) -> Value:
    op = kind.value
    b = current_builder(op)
    t = _tile(op, b, x)
    rows, cols = t.shape
    if cols % 2:
        raise _fail(op, f"needs an even number of columns, got {_describe(t)}.",
                    "Load a tile with an even column count (e.g. the rotary dimension).", b)
    return b.emit(kind, TileType(rows, cols // 2, t.dtype), (t,))  # type: ignore[return-value]


def slice_even(x: Any) -> Value:
    """Columns 0, 2, 4, ... of a [rows, cols] tile: [rows, cols / 2] (the first of each rotary pair)."""
    return _half(OpKind.SLICE_EVEN, x)


def slice_odd(x: Any) -> Value:
    """Columns 1, 3, 5, ... of a [rows, cols] tile: [rows, cols / 2]."""
    return _half(OpKind.SLICE_ODD, x)


def interleave(a: Any, c: Any) -> Value:
    """[rows, 2 cols] with ``a``'s columns at even positions and ``c``'s at odd ones (undoes slice_even/odd)."""
    b = current_builder("interleave")
    x, y = _tile("interleave", b, a), _tile("interleave", b, c)
    if x.type != y.type:
        raise _fail("interleave", f"needs two tiles of one shape and dtype, got {_describe(x)} and {_describe(y)}.",
                    "Interleave the two halves produced by tl.slice_even and tl.slice_odd.", b)
    rows, cols = x.shape
    return b.emit(OpKind.INTERLEAVE, TileType(rows, 2 * cols, x.dtype), (x, y))  # type: ignore[return-value]


def broadcast(x: Any, shape: Any) -> Value:
    """Repeat a [rows, 1], [1, cols] or [1, 1] tile to ``shape`` = (rows, cols)."""
    b = current_builder("broadcast")
    t = _tile("broadcast", b, x)
    if (not isinstance(shape, (tuple, list)) or len(shape) != 2
            or any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 for n in shape)):
        raise _fail("broadcast", f"shape must be (rows, cols) with ints >= 1, got {shape!r}.",
                    "Write tl.broadcast(v, (128, 64)).", b)
    rows, cols = int(shape[0]), int(shape[1])
    r, c = t.shape
    if r not in (1, rows) or c not in (1, cols):
        raise _fail("broadcast", f"cannot repeat {_describe(t)} to [{rows}, {cols}]; each dimension must be 1 or "
                                 "already the target size.", "Reduce to [rows, 1] or [1, cols] first.", b)
    return b.emit(OpKind.BROADCAST, TileType(rows, cols, t.dtype), (t,),  # type: ignore[return-value]
                  (("shape", (rows, cols)),))


def _vector_op(kind: OpKind, name: str, a: Any, v: Any, row: bool) -> Value:
    """tl.rowmul/rowadd/colmul/coladd: ``a`` op a [rows, 1] (row) or [1, cols] (col) vector, broadcast."""
    b = current_builder(name)
    t, vec = _tile(name, b, a), _tile(name, b, v, "vector")
    rows, cols = t.shape
    want = (rows, 1) if row else (1, cols)
    if vec.shape != want:
        raise _fail(name, f"needs a {list(want)} vector for a {list(t.shape)} tile, got {_describe(vec)}.",
                    f"Reduce with tl.{'rowsum' if row else 'colsum'} (or load a {list(want)} tile) first.", b)
    if t.dtype != vec.dtype:
        raise _fail(name, f"tile and vector have different dtypes: {_describe(t)} and {_describe(vec)}.",
                    f"Convert one with tl.cast(v, DType.{t.dtype}) first.", b)
    return _binary(kind, t, vec)


def rowmul(a: Any, v: Any) -> Value:
    """Each row of ``a`` times its entry of the [rows, 1] vector ``v`` (tl.mul with a row vector)."""
    return _vector_op(OpKind.MUL, "rowmul", a, v, row=True)


def rowadd(a: Any, v: Any) -> Value:
    """Each row of ``a`` plus its entry of the [rows, 1] vector ``v``."""
    return _vector_op(OpKind.ADD, "rowadd", a, v, row=True)


def colmul(a: Any, v: Any) -> Value:
    """Each column of ``a`` times its entry of the [1, cols] vector ``v``."""
    return _vector_op(OpKind.MUL, "colmul", a, v, row=False)


def coladd(a: Any, v: Any) -> Value:
    """Each column of ``a`` plus its entry of the [1, cols] vector ``v``."""
    return _vector_op(OpKind.ADD, "coladd", a, v, row=False)


def _reduce(kind: OpKind, x: Any) -> Value:
    op = kind.value
    b = current_builder(op)
    t = _tile(op, b, x)
    rows, cols = t.shape
    if kind is OpKind.ROWMEAN and not t.dtype.is_float:
        raise _fail(op, f"needs a floating-point tile, got {_describe(t)} (an integer mean would be truncated).",
                    "Cast first: tl.rowmean(tl.cast(x, DType.F32)), or use tl.rowsum.", b)
    # Sums and means of half-precision tiles accumulate in F32 and of 8-bit integers in I32, as the vector unit
    # does (an I8 sum of a 128-wide row would wrap); max is exact.
    dtype = t.dtype if kind in (OpKind.ROWMAX, OpKind.COLMAX) else _ACCUMULATOR.get(t.dtype, t.dtype)
    shape = (rows, 1) if kind.value.startswith("row") else (1, cols)
    return b.emit(kind, TileType(shape[0], shape[1], dtype), (t,))  # type: ignore[return-value]


def rowsum(x: Any) -> Value:
    """Sum of each row: [r, c] -> [r, 1] (F16/BF16 accumulate and return F32, I8/U8 return I32)."""
    return _reduce(OpKind.ROWSUM, x)


def rowmax(x: Any) -> Value:
    """Max of each row: [r, c] -> [r, 1], same dtype."""
    return _reduce(OpKind.ROWMAX, x)


def rowmean(x: Any) -> Value:
    """Mean of each row: [r, c] -> [r, 1] (F16/BF16 return F32)."""
    return _reduce(OpKind.ROWMEAN, x)


def colsum(x: Any) -> Value:
    """Sum of each column: [r, c] -> [1, c] (F16/BF16 return F32)."""
    return _reduce(OpKind.COLSUM, x)


def colmax(x: Any) -> Value:
    """Max of each column: [r, c] -> [1, c], same dtype."""
    return _reduce(OpKind.COLMAX, x)


def matmul(a: Any, b: Any, acc: Any = None) -> Value:
    """``a @ b`` on the cube unit: [M, K] @ [K, N] -> [M, N]; F16/BF16 inputs accumulate in F32, I8/U8 in I32.

    With ``acc`` ([M, N], the result dtype) it returns ``acc + a @ b``.
    """
    bld = current_builder("matmul")
    x, y = _tile("matmul", bld, a, "left operand"), _tile("matmul", bld, b, "right operand")
    if x.shape[1] != y.shape[0]:
        raise _fail("matmul", f"inner dimensions differ: {_describe(x)} @ {_describe(y)} "
                              f"({x.shape[1]} != {y.shape[0]}).",
                    "The left tile's columns must equal the right tile's rows (transpose K if needed).", bld)
    if x.dtype != y.dtype:
        raise _fail("matmul", f"operands have different dtypes: {_describe(x)} and {_describe(y)}.",
                    f"Cast both to the same dtype, e.g. tl.cast(b, DType.{x.dtype}).", bld)
    out = TileType(x.shape[0], y.shape[1], _ACCUMULATOR.get(x.dtype, x.dtype))
    operands: tuple[Value, ...] = (x, y)
    if acc is not None:
        z = _tile("matmul", bld, acc, "accumulator")
        if z.shape != out.shape or z.dtype != out.dtype:
            raise _fail("matmul", f"the accumulator must have the result's shape and dtype, got acc={z.type} "
                                  f"out={out} ({x.dtype} inputs give a {out.dtype} result).",
                        f"Pass an accumulator of {out}, e.g. tl.full({out.rows}, {out.cols}, 0, DType.{out.dtype}) "
                        f"or a loaded InOut[Tile[{out.rows}, {out.cols}, DType.{out.dtype}]].", bld)
        operands = (x, y, z)
    return bld.emit(OpKind.MATMUL, out, operands)  # type: ignore[return-value]


def _compare(name: str, a: Any, c: Any) -> Value:
    b = current_builder(name)
    like = (a if isinstance(a, Value) else c).dtype if isinstance(a, Value) or isinstance(c, Value) else DType.F32
    x, y = _operand(name, b, a, like), _operand(name, b, c, like)
    tiles = [v for v in (x, y) if isinstance(v, Value) and v.is_tile]
    if not tiles:
        raise _fail(name, "needs at least one tile operand.", "Compare a tile with a tile or a number.", b)
    if isinstance(x, Value) and isinstance(y, Value) and x.dtype != y.dtype:
        raise _fail(name, f"operands have different dtypes: {_describe(x)} and {_describe(y)}.",
                    "Cast one operand first.", b)
    shape = tiles[0].shape if len(tiles) == 1 else _broadcast_shape(name, b, tiles[0], tiles[1])
    return b.emit(OpKind.CMP, TileType(shape[0], shape[1], DType.U8), (x, y), (("cmp", name),))  # type: ignore


def lt(a: Any, b: Any) -> Value:
    """Elementwise a < b as a U8 mask (1 where true)."""
    return _compare("lt", a, b)


def le(a: Any, b: Any) -> Value:
    """Elementwise a <= b as a U8 mask."""
    return _compare("le", a, b)


def gt(a: Any, b: Any) -> Value:
    """Elementwise a > b as a U8 mask."""
    return _compare("gt", a, b)


def ge(a: Any, b: Any) -> Value:
    """Elementwise a >= b as a U8 mask."""
    return _compare("ge", a, b)


def eq(a: Any, b: Any) -> Value:
    """Elementwise a == b as a U8 mask."""
    return _compare("eq", a, b)


def ne(a: Any, b: Any) -> Value:
    """Elementwise a != b as a U8 mask."""
    return _compare("ne", a, b)


def where(mask: Any, a: Any, b: Any) -> Value:
    """Pick ``a`` where ``mask`` (from tl.lt/gt/...) is set, else ``b``; a or b may be numbers."""
    bld = current_builder("where")
    m = _tile("where", bld, mask, "mask")
    if m.dtype is not DType.U8:
        raise _fail("where", f"mask must come from a comparison (U8), got {_describe(m)}.",
                    "Build it with tl.gt/tl.lt/tl.eq/...", bld)
    like = a.dtype if isinstance(a, Value) else b.dtype if isinstance(b, Value) else DType.F32
    x, y = _operand("where", bld, a, like), _operand("where", bld, b, like)
    for v in (x, y):
        if isinstance(v, Value) and (v.dtype != like):
            raise _fail("where", f"branches have different dtypes: {_describe(a)} and {_describe(b)}.",
                        "Cast one branch first.", bld)
        if isinstance(v, Value) and v.is_tile:
            _broadcast_shape("where", bld, m, v)
    return bld.emit(OpKind.WHERE, TileType(m.shape[0], m.shape[1], like), (m, x, y))  # type: ignore


select = where


def full(rows: int, cols: int, value: float, dtype: DType = DType.F32) -> Value:
    """A new [rows, cols] tile filled with ``value``."""
    b = current_builder("full")
    for name, n in (("rows", rows), ("cols", cols)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise _fail("full", f"{name} must be an int, got {type(n).__name__} {n!r}.",
                        "Tile sizes are static ints: write tl.full(8, 8, 0.0, DType.F32) (value third).", b)
        if n < 1:
            raise _fail("full", f"{name} must be >= 1, got {n}: a tile has at least one row and one column.",
                        "Write tl.full(8, 8, 0.0, DType.F32) with the tile's [rows, cols].", b, PtortValueError)
    if not isinstance(dtype, DType):
        raise _fail("full", f"dtype must be a DType, got {dtype!r}.", "Write tl.full(8, 8, 0.0, DType.F32).", b)
    if isinstance(value, Literal):
        value = value.value
    v = _literal("full", b, value, dtype, "value")
    return b.emit(OpKind.FULL, TileType(int(rows), int(cols), dtype), (Literal(v, dtype),))  # type: ignore


def iota_u32(cols: int) -> Value:
    """A [1, cols] U32 tile 0, 1, ..., cols - 1: the indices to sort alongside scores (tl.tsort32)."""
    b = current_builder("iota_u32")
    if isinstance(cols, bool) or not isinstance(cols, (int, np.integer)) or cols < 1:
        raise _fail("iota_u32", f"cols must be an int >= 1, got {cols!r}.", "Write tl.iota_u32(32).", b,
                    PtortValueError if isinstance(cols, (int, np.integer)) else PtortTypeError)
    return b.emit(OpKind.IOTA_U32, TileType(1, int(cols), DType.U32), ())  # type: ignore[return-value]


def tsort32(scores: Any, idx: Any) -> Value:
    """Sort 32 (score, index) pairs by score, largest first (ties: lower index first), as TSORT32 does:
    [1, 32] F32 scores and [1, 32] U32 indices -> [1, 64] F32 of interleaved (score, index bits) pairs."""
    b = current_builder("tsort32")
    s, i = _tile("tsort32", b, scores, "scores"), _tile("tsort32", b, idx, "idx")
    if s.type != TileType(1, 32, DType.F32) or i.type != TileType(1, 32, DType.U32):
        raise _fail("tsort32", f"needs scores f32[1,32] and idx u32[1,32], got {_describe(s)} and {_describe(i)}.",
                    "Sort 32 candidates at a time: tl.tsort32(scores, tl.iota_u32(32)); cast scores to F32 first.",
                    b)
    return b.emit(OpKind.TSORT32, TileType(1, 64, DType.F32), (s, i))  # type: ignore[return-value]


def extract_topk_indices(pairs: Any, k: int) -> Value:
    """The indices of the first ``k`` pairs of a tl.tsort32 result: [1, 64] F32 -> [1, k] I32, 1 <= k <= 32."""
    b = current_builder("extract_topk_indices")
    p = _tile("extract_topk_indices", b, pairs, "pairs")
    if p.type != TileType(1, 64, DType.F32):
        raise _fail("extract_topk_indices", f"needs the f32[1,64] result of tl.tsort32, got {_describe(p)}.",
                    "Pass what tl.tsort32(scores, idx) returned.", b)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= 32:
        raise _fail("extract_topk_indices", f"k must be an int in 1..32, got {k!r}.",
                    "A tsort32 result holds 32 pairs: write tl.extract_topk_indices(pairs, 8).", b, PtortValueError)
    return b.emit(OpKind.EXTRACT_TOPK, TileType(1, int(k), DType.I32), (p,),  # type: ignore[return-value]
                  (("k", int(k)),))


def constant(value: float, dtype: DType = DType.F32) -> Literal:
    """A scalar constant usable wherever a Python number is accepted."""
    b = current_builder("constant")
    if not isinstance(dtype, DType):
        raise _fail("constant", f"dtype must be a DType, got {dtype!r}.", "Write tl.constant(2.0, DType.F32).", b)
    return Literal(_literal("constant", b, value, dtype, "value"), dtype)


__all__ = ["load", "store", "cast", "add", "sub", "mul", "div", "max", "min", "maximum", "minimum", "adds", "subs",
           "muls", "divs", "maxs", "mins", "exp", "log", "sqrt", "rsqrt", "neg", "abs", "relu", "sigmoid", "silu",
           "tanh", "gelu", "sin", "cos", "transpose", "slice_even", "slice_odd", "interleave", "broadcast",
           "rowmul", "rowadd", "colmul", "coladd", "rowsum", "rowmax", "rowmean",
           "colsum", "colmax", "matmul", "lt", "le", "gt", "ge", "eq", "ne", "where", "select", "full", "constant",
           "iota_u32", "tsort32", "extract_topk_indices"]
