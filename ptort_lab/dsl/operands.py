"""The operand checks and op families (binary, unary, reduce, compare, ...) the tl.* ops are made of: each checks
its operands at trace time, then records one op in the kernel being traced."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..errors import PtortError, PtortTypeError, PtortValueError
from .expr import Expr
from .ir import ROW_REDUCE, KernelTrace, Literal, OpKind, ScalarRefused, Value, current_trace, scalar_value
from .types import Direction, DType, TileType, wider_dtype

_F32_ACC = {DType.F16: DType.F32, DType.BF16: DType.F32}
# The accumulator of sums and matmuls: the cube accumulates 8-bit integer products in 32-bit integers (Ascend's
# s8 x s8 -> s32 Mmad) and half-precision ones in F32; an I8 result would wrap after a handful of terms.
ACCUMULATOR = {**_F32_ACC, DType.I8: DType.I32, DType.U8: DType.I32}


def op_error(op: str, message: str, hint: str, trace: KernelTrace | None = None,
             error: type[PtortError] = PtortTypeError) -> PtortError:
    """The error for a bad tl.<op> call: PtortTypeError by default, ``error=PtortValueError`` for a bad value."""
    context = f"kernel '{trace.kernel_name}'" if trace is not None else ""
    return error(f"tl.{op}: {message}", hint=hint, context=context)


def literal(op: str, trace: KernelTrace, x: Any, dtype: DType, what: str = "operand") -> float | int:
    """The Python number ``x`` as a value of ``dtype``, refused when it has none: integer dtypes take only whole,
    finite numbers inside the dtype's range (numpy would otherwise truncate 0.5 to 0, or fail on nan at run time)."""
    try:
        return scalar_value(x, dtype)
    except ScalarRefused as r:
        refused = r
    if refused.kind == "type":
        if what == "operand":
            raise op_error(op, f"operand must be a tile or a Python number, got {type(x).__name__} {x!r}.",
                           "Pass tiles, scalars from tl.constant(), or plain numbers such as 0.0.", trace)
        raise op_error(op, f"{what} must be a real number (int or float), got {type(x).__name__} {x!r}.",
                       f"Write a number, e.g. tl.{op}(8, 8, 0.0, DType.F32)." if op == "full" else
                       f"Write a number, e.g. tl.{op}(2.0, DType.F32).", trace)
    wider = wider_dtype(dtype, x) if refused.kind in ("float_range", "int_range") else None
    hint = {
        "too_large": "Use a value within the float range, or float('inf') if infinity is meant.",
        "float_range": (f"Cast the tile to {wider} first (tl.cast(x, DType.{wider})), or pass float('inf') if "
                        "infinity is meant." if wider is not None else
                        "Use a value within the float range, or float('inf') if infinity is meant."),
        "nonfinite": f"Cast the tile to F32 first (tl.cast(x, DType.F32)) to compute with {x!r}.",
        "int_range": (f"Cast the tile to {'a signed' if wider.itemsize == dtype.itemsize else 'a wider'} dtype "
                      f"first (tl.cast(x, DType.{wider}))." if wider is not None else
                      f"No integer dtype holds {x}: compute in DType.F64 (tl.cast(x, DType.F64), exact up to 2**53), "
                      "or use a smaller value."),
    }.get(refused.kind) or (f"Cast the tile to F32 first (tl.cast(x, DType.F32)), or pass a whole number such as "
                            f"{math.floor(x)}.")
    raise op_error(op, f"{what} {refused.text}", hint, trace, PtortValueError)


def describe(x: Any) -> str:
    """How an error names an operand: the tile's name and type, or the value."""
    if isinstance(x, Value):
        return f"{x.name or 'tile'} ({x.type})" if x.name else str(x.type)
    return repr(x)


def _readable(op: str, trace: KernelTrace, x: Value) -> Value:
    """``x``, unless it is an Out[...] parameter (written only)."""
    p = trace.region_of(x)
    if p is not None and p.direction is Direction.OUT:
        what = f"parameter '{p.name}'" if x.name is not None else f"a slice of parameter '{p.name}'"
        raise op_error(op, f"{what} is Out[...] and cannot be read.",
                       "Declare it InOut[...] if the kernel must read it.", trace)
    return x


def tile_operand(op: str, trace: KernelTrace, x: Any, what: str = "operand") -> Value:
    """``x`` as a tile operand of tl.``op``: a readable tile value."""
    if not isinstance(x, Value):
        raise op_error(op, f"{what} must be a tile, got {type(x).__name__} {x!r}.",
                       "Pass a kernel parameter or the result of another tl op.", trace)
    if not x.is_tile:
        raise op_error(op, f"{what} must be a tile, got the scalar {describe(x)}.", "Use a Tile parameter here.", trace)
    return _readable(op, trace, x)


def operand(op: str, trace: KernelTrace, x: Any, like: DType) -> Value | Literal:
    """``x`` as an operand of tl.``op``: a readable value, or a number as a literal of ``like``'s dtype."""
    if isinstance(x, Value):
        return _readable(op, trace, x)
    if isinstance(x, Literal):  # a tl.constant: its own dtype rounds the value first (0.1 as F16 is 0.0999755...)
        own = np.asarray(x.value, dtype=x.dtype.np_dtype).item()
        return Literal(literal(op, trace, own, like, "constant"), like)
    return Literal(literal(op, trace, x, like), like)


def broadcast_shape(op: str, trace: KernelTrace, a: Value, c: Value) -> tuple[int, int]:
    """The result shape of an elementwise op on tiles ``a`` and ``c``: equal shapes, or a [rows, 1] / [1, cols]
    vector of the other."""
    ra, ca = a.shape
    rc, cc = c.shape
    if (ra, ca) == (rc, cc):
        return (ra, ca)
    if (rc, cc) in ((ra, 1), (1, ca)):
        return (ra, ca)
    if (ra, ca) in ((rc, 1), (1, cc)):
        return (rc, cc)
    raise op_error(op, f"got tiles of shape {a.shape} and {c.shape}; shapes must match or one must be a "
                    f"[rows, 1] / [1, cols] vector of the other.", _broadcast_hint(a, c), trace)


def _broadcast_hint(a: Value, c: Value) -> str:
    """How to make two tiles of shapes tl ops do not broadcast fit: repeat a [1, 1] total (or both vectors of an
    outer [r, 1] x [1, c] op) to the shape numpy would give, else load or reduce to matching shapes."""
    if any(n not in (1, m) and m != 1 for n, m in zip(a.shape, c.shape)):  # no common shape at all
        return "Load tiles of matching shape, or reduce one operand with tl.rowsum/tl.colsum first."
    rows, cols = (max(n, m) for n, m in zip(a.shape, c.shape))
    short = [v for v in (a, c) if v.shape != (rows, cols)]
    call = f"tl.broadcast({short[0].name or 'v'}, ({rows}, {cols}))"
    if len(short) == 1:  # a [1, 1] total against a full tile
        return f"Repeat the {list(short[0].shape)} operand to [{rows}, {cols}] first: {call}."
    return (f"Repeat one of them to [{rows}, {cols}] first, e.g. {call} for the {list(short[0].shape)} one; the "
            "other then broadcasts as its vector.")


def binary_op(kind: OpKind, a: Any, c: Any, name: str | None = None) -> Value:
    """An elementwise op on two operands (a tile and a tile, vector, scalar or number), broadcast; errors name it
    tl.``name`` (the op the user called: tl.muls, tl.rowmul, ...), by default tl.<kind>."""
    op = name or kind.value
    trace = current_trace(op)
    if not isinstance(a, Value) and not isinstance(c, Value):
        raise op_error(op, f"needs at least one tile operand, got {a!r} and {c!r}.", "Pass a tile.", trace)
    like = (a if isinstance(a, Value) else c).dtype
    x, y = operand(op, trace, a, like), operand(op, trace, c, like)
    tiles = [v for v in (x, y) if isinstance(v, Value) and v.is_tile]
    if not tiles:
        raise op_error(op, f"needs at least one tile operand, got {describe(a)} and {describe(c)}.",
                       "Pass a tile.", trace)
    if isinstance(x, Value) and isinstance(y, Value) and x.dtype != y.dtype:
        raise op_error(op, f"operands have different dtypes: {describe(x)} and {describe(y)}.",
                       _dtype_hint(x, y, f"Convert one with tl.cast(x, DType.{x.dtype}) first."), trace)
    shape = tiles[0].shape
    if len(tiles) == 2:
        shape = broadcast_shape(op, trace, tiles[0], tiles[1])
    if kind is OpKind.DIV and not like.is_float and isinstance(y, Literal) and y.value == 0:
        raise op_error(op, f"divides the {like} tile by the literal 0, which has no integer result.",
                       "Divide by a non-zero value, or cast to F32 first (float division by 0 gives inf).", trace,
                       PtortValueError)
    return trace.emit(kind, TileType(shape[0], shape[1], like), (x, y))


def _dtype_hint(x: Value, y: Value, tiles_hint: str) -> str:
    """How to give two operands one dtype: tl.cast converts tiles only, so a Scalar[...] operand is declared in the
    tile's dtype instead."""
    scalar = x if not x.is_tile else y if not y.is_tile else None
    if scalar is None:
        return tiles_hint
    tile = y if scalar is x else x
    named = f"parameter '{scalar.name}'" if scalar.name else "scalar parameter"
    return (f"Declare the {named} Scalar[DType.{tile.dtype}], the tile's dtype (tl.cast converts tiles, not "
            "scalars).")


def unary_op(kind: OpKind, x: Any, float_only: bool = True) -> Value:
    """An elementwise op on one tile (floating point only unless ``float_only`` is False)."""
    op = kind.value
    trace = current_trace(op)
    t = tile_operand(op, trace, x)
    if float_only and not t.dtype.is_float:
        raise op_error(op, f"needs a floating-point tile, got {describe(t)}.",
                       "Cast first: tl.cast(x, DType.F32).", trace)
    return trace.emit(kind, TileType(t.shape[0], t.shape[1], t.dtype), (t,))


def half_op(kind: OpKind, x: Any) -> Value:
    """tl.slice_even/slice_odd: every other column of a tile with an even column count."""
    op = kind.value
    trace = current_trace(op)
    t = tile_operand(op, trace, x)
    rows, cols = t.shape
    if cols % 2:
        raise op_error(op, f"needs an even number of columns, got {describe(t)}.",
                       "Load a tile with an even column count (e.g. the rotary dimension).", trace)
    return trace.emit(kind, TileType(rows, cols // 2, t.dtype), (t,))


def vector_op(kind: OpKind, name: str, a: Any, v: Any, row: bool) -> Value:
    """tl.rowmul/rowadd/colmul/coladd: ``a`` op a [rows, 1] (row) or [1, cols] (col) vector, broadcast."""
    trace = current_trace(name)
    t, vec = tile_operand(name, trace, a), tile_operand(name, trace, v, "vector")
    rows, cols = t.shape
    want = (rows, 1) if row else (1, cols)
    if vec.shape != want:
        raise op_error(name, f"needs a {list(want)} vector for a {list(t.shape)} tile, got {describe(vec)}.",
                       f"Reduce with tl.{'rowsum' if row else 'colsum'} (or load a {list(want)} tile) first.", trace)
    if t.dtype != vec.dtype:
        raise op_error(name, f"tile and vector have different dtypes: {describe(t)} and {describe(vec)}.",
                       f"Convert one with tl.cast(v, DType.{t.dtype}) first.", trace)
    return binary_op(kind, t, vec, name)


def reduce_op(kind: OpKind, x: Any) -> Value:
    """A row or column reduction: [r, c] -> [r, 1] or [1, c], sums and means in the accumulator dtype."""
    op = kind.value
    trace = current_trace(op)
    t = tile_operand(op, trace, x)
    rows, cols = t.shape
    if kind is OpKind.ROWMEAN and not t.dtype.is_float:
        raise op_error(op, f"needs a floating-point tile, got {describe(t)} (an integer mean would be truncated).",
                       "Cast first: tl.rowmean(tl.cast(x, DType.F32)), or use tl.rowsum.", trace)
    # Sums and means of half-precision tiles accumulate in F32 and of 8-bit integers in I32, as the vector unit
    # does (an I8 sum of a 128-wide row would wrap); max is exact.
    dtype = t.dtype if kind in (OpKind.ROWMAX, OpKind.COLMAX) else ACCUMULATOR.get(t.dtype, t.dtype)
    shape = (rows, 1) if kind in ROW_REDUCE else (1, cols)
    return trace.emit(kind, TileType(shape[0], shape[1], dtype), (t,))


def slice_bounds(trace: KernelTrace, bounds: Any, size: int, what: str) -> tuple[int, int]:
    """``(start, stop)`` of a tl.slice dimension of ``size`` elements: None is the whole dimension, else two static
    ints (or a Python ``slice`` without a step) with 0 <= start < stop <= size (a None end is that end)."""
    if bounds is None:
        return 0, size
    if isinstance(bounds, slice) and bounds.step in (None, 1):  # rows=slice(0, 64) reads as rows=(0, 64)
        bounds = (bounds.start, bounds.stop)
    if isinstance(bounds, (Value, Expr)) or not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
        raise op_error("slice", f"{what}= must be a (start, stop) pair of ints, got {describe(bounds)}.",
                       f"Write tl.slice(x, {what}=(0, {size})) with static ints, or leave {what} out for all of them.",
                       trace)
    start, stop = (0 if bounds[0] is None else bounds[0]), (size if bounds[1] is None else bounds[1])
    for end in (start, stop):
        if isinstance(end, bool) or not isinstance(end, (int, np.integer)):
            kind = ("a loop expression" if isinstance(end, Expr) else
                    "a traced value" if isinstance(end, Value) else f"{type(end).__name__} {end!r}")
            raise op_error("slice", f"{what} bounds must be static ints known when the kernel is traced, got {kind}.",
                           "Slice with Python ints (a Constexpr[int] parameter is one, fixed per launch); to pick "
                           "a tile by a loop variable, index the tensor at launch (X[t]).", trace)
    start, stop = int(start), int(stop)
    if not 0 <= start < stop <= size:
        why = ("is empty" if 0 <= stop <= start <= size else
               "has a negative bound" if min(start, stop) < 0 else f"runs past the tile's {size} {what}")
        raise op_error("slice", f"{what} {start}:{stop} {why}: the tile has {what} 0..{size}.",
                       f"Use 0 <= start < stop <= {size}, e.g. {what}=(0, {max(1, size // 2)}); count a bound from "
                       f"the end by writing it out ({size} - k).", trace, PtortValueError)
    return start, stop


def compare_op(name: str, a: Any, c: Any) -> Value:
    """tl.lt/le/gt/ge/eq/ne: an elementwise comparison as a U8 mask."""
    trace = current_trace(name)
    like = (a if isinstance(a, Value) else c).dtype if isinstance(a, Value) or isinstance(c, Value) else DType.F32
    x, y = operand(name, trace, a, like), operand(name, trace, c, like)
    tiles = [v for v in (x, y) if isinstance(v, Value) and v.is_tile]
    if not tiles:
        raise op_error(name, "needs at least one tile operand.", "Compare a tile with a tile or a number.", trace)
    if isinstance(x, Value) and isinstance(y, Value) and x.dtype != y.dtype:
        raise op_error(name, f"operands have different dtypes: {describe(x)} and {describe(y)}.",
                       _dtype_hint(x, y, "Cast one operand first."), trace)
    shape = tiles[0].shape if len(tiles) == 1 else broadcast_shape(name, trace, tiles[0], tiles[1])
    return trace.emit(OpKind.CMP, TileType(shape[0], shape[1], DType.U8), (x, y), (("cmp", name),))


__all__ = ["ACCUMULATOR", "op_error", "literal", "describe", "tile_operand", "operand", "broadcast_shape", "binary_op",
           "unary_op", "half_op", "vector_op", "reduce_op", "compare_op", "slice_bounds"]
