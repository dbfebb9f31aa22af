"""tl.* tile primitives: check operands at trace time, then record an op in the current kernel."""
from __future__ import annotations

import builtins
import functools
import inspect
from typing import Any, Callable

import numpy as np

from ..errors import PtortError, PtortTypeError, PtortValueError
from .ir import OPERATORS, TL_OPS, Literal, OpKind, Value, active_trace, current_trace
from .operands import (
    ACCUMULATOR,
    binary_op,
    broadcast_shape,
    compare_op,
    describe,
    half_op,
    literal,
    op_error,
    operand,
    reduce_op,
    slice_bounds,
    tile_operand,
    unary_op,
    vector_op,
)
from .types import Direction, DType, TileType


def _reference_window(op: str, offset: Any, mask: Any, trace: Any) -> None:
    """The reference's ``offset=``/``mask=`` keywords of load/store: its defaults ``(0, 0)`` and ``None`` (what
    every load and store does) are accepted; another window or a mask is refused, naming the ptort_lab form."""
    call = "tl.load(src[r0:r1, c0:c1])" if op == "load" else "tl.store(dst[r0:r1, c0:c1], value)"
    pair = isinstance(offset, (tuple, list)) and len(offset) == 2 and \
        all(isinstance(n, (int, np.integer)) and not isinstance(n, (bool, np.bool_)) for n in offset)
    if not pair:
        raise op_error(op, f"offset= must be a pair of ints (the reference's default (0, 0)), got {offset!r}.",
                       f"Leave offset out; to move a window of the tile, slice it: {call}.", trace)
    if tuple(int(n) for n in offset) != (0, 0):
        raise op_error(op, f"offset={tuple(int(n) for n in offset)!r} is not supported: tl.{op} moves the whole "
                           "tile it is given.",
                       f"Slice the parameter instead (static bounds, only that region moves): {call}.", trace,
                       PtortValueError)
    if mask is not None:
        use = ("x = tl.where(mask, tl.load(src), 0.0)" if op == "load" else
               "tl.store(dst, tl.where(mask, value, tl.load(dst))) with dst InOut[...]")
        raise op_error(op, f"mask= is not supported (got {describe(mask)}): tl.{op} moves every element.",
                       f"Pick per element with tl.where on the whole tile: {use}.", trace, PtortValueError)


def load(src: Any, offset: Any = (0, 0), mask: Any = None) -> Value:
    """Load a tile parameter (In/InOut), or a slice of one (only that region moves), into on-chip memory; the
    result has its shape and dtype.

    ``offset=(0, 0)`` and ``mask=None`` are the reference's keywords at their defaults, accepted so its code runs;
    another offset or a mask is refused: slice the parameter (``tl.load(src[0:64, :])``) or use ``tl.where``."""
    trace = current_trace("load")
    _reference_window("load", offset, mask, trace)
    if not isinstance(src, Value) or trace.region_of(src) is None:
        raise op_error("load", f"can only load a kernel parameter, got {describe(src)}.",
                       "Pass a tile parameter of the kernel (e.g. tl.load(src)) or a slice of one "
                       "(tl.load(src[0:64, :])).", trace)
    t = tile_operand("load", trace, src, "source")
    return trace.emit(OpKind.LOAD, TileType(t.shape[0], t.shape[1], t.dtype), (t,))


def store(dst: Any, src: Any, offset: Any = (0, 0), mask: Any = None) -> None:
    """Store tile ``src`` into the Out/InOut parameter ``dst``; shape and dtype must match exactly.

    ``offset=(0, 0)`` and ``mask=None`` are the reference's keywords at their defaults, accepted so its code runs;
    another offset or a mask is refused: store into a slice (``tl.store(dst[0:64, :], x)``) or use ``tl.where``."""
    trace = current_trace("store")
    _reference_window("store", offset, mask, trace)
    p = trace.region_of(dst) if isinstance(dst, Value) else None
    if p is None or not p.is_tile:
        raise op_error("store", f"destination must be a tile parameter of the kernel, got {describe(dst)}.",
                       "Store into a parameter annotated Out[Tile[...]] or InOut[Tile[...]], or a slice of one.",
                       trace)
    assert isinstance(dst, Value)
    if p.direction is Direction.IN:
        raise op_error("store", f"parameter '{p.name}' is In[...] and cannot be written.",
                       "Annotate it Out[...] or InOut[...].", trace)
    if not isinstance(src, Value) or not src.is_tile:
        raise op_error("store", f"source must be a tile, got {describe(src)}.", "Store the result of a tl op.", trace)
    target = f"'{p.name}'" if dst.name is not None else f"a slice of '{p.name}'"
    if src.shape != dst.shape:
        raise op_error("store", f"source {src.type} does not fit destination {target} ({dst.type}): shapes differ.",
                       "Store a tile of the destination's shape.", trace)
    if src.dtype != dst.dtype:
        raise op_error("store", f"source {src.type} does not fit destination {target} ({dst.type}): dtypes differ.",
                       f"Convert first: tl.store({p.name}, tl.cast(x, DType.{dst.dtype})).", trace)
    trace.emit_effect(OpKind.STORE, (dst, src))


def cast(x: Any, dtype: DType) -> Value:
    """Convert a tile to ``dtype``, rounding to nearest with halves to even.

    To a float dtype the value is rounded to the nearest one the dtype holds. A float converted to an integer dtype
    becomes the nearest integer, halves to even (2.5 -> 2, 3.5 -> 4, -2.7 -> -3), not truncated toward zero as
    numpy's astype does: this is the default conversion mode, Ascend C's RoundMode::CAST_NONE ("If accuracy drop is
    involved during conversion, the CAST_RINT mode is used", hiascend.com, Ascend C API "Cast"), which PTO-ISA's TCVT
    lowers to the rint instruction on A2/A3. A value with no integer of the dtype (nan, inf, or out of its range after
    rounding) is refused when the kernel runs.
    """
    trace = current_trace("cast")
    t = tile_operand("cast", trace, x)
    if not isinstance(dtype, DType):
        raise op_error("cast", f"dtype must be a DType, got {dtype!r}.", "Write tl.cast(x, DType.F16).", trace)
    return trace.emit(OpKind.CAST, TileType(t.shape[0], t.shape[1], dtype), (t,), (("dtype", dtype),))


def add(a: Any, b: Any) -> Value:
    """Elementwise ``a + b``; either side may be a [rows,1]/[1,cols] vector, a scalar or a Python number."""
    return binary_op(OpKind.ADD, a, b)


def sub(a: Any, b: Any) -> Value:
    """Elementwise ``a - b`` (broadcasting as in tl.add)."""
    return binary_op(OpKind.SUB, a, b)


def mul(a: Any, b: Any) -> Value:
    """Elementwise ``a * b`` (broadcasting as in tl.add)."""
    return binary_op(OpKind.MUL, a, b)


def div(a: Any, b: Any) -> Value:
    """Elementwise ``a / b`` (broadcasting as in tl.add).

    Integer tiles divide to an integer only where the rounding rule cannot matter: operands of one sign (7 / 2 is
    3), or an exact quotient (-8 / 2 is -4). Whether the NPU rounds a negative quotient such as -7 / 2 toward zero
    (-3) or down (-4) has no source, so a run that meets one refuses it, as it refuses a divisor of 0: make the
    operands non-negative, or divide in a float dtype and tl.cast the quotient back (which rounds it to the nearest
    integer, halves to even).
    """
    return binary_op(OpKind.DIV, a, b)


def max(a: Any, b: Any) -> Value:  # noqa: A001 - tl.max is the DSL's name
    """Elementwise maximum (broadcasting as in tl.add)."""
    return binary_op(OpKind.MAX, a, b)


def min(a: Any, b: Any) -> Value:  # noqa: A001
    """Elementwise minimum (broadcasting as in tl.add)."""
    return binary_op(OpKind.MIN, a, b)


def maximum(a: Any, b: Any) -> Value:
    """tl.max's other name (the reference's spelling)."""
    return binary_op(OpKind.MAX, a, b, "maximum")


def minimum(a: Any, b: Any) -> Value:
    """tl.min's other name (the reference's spelling)."""
    return binary_op(OpKind.MIN, a, b, "minimum")


def exp(x: Any) -> Value:
    """Elementwise e**x."""
    return unary_op(OpKind.EXP, x)


def log(x: Any) -> Value:
    """Elementwise natural logarithm."""
    return unary_op(OpKind.LOG, x)


def sqrt(x: Any) -> Value:
    """Elementwise square root."""
    return unary_op(OpKind.SQRT, x)


def rsqrt(x: Any) -> Value:
    """Elementwise 1/sqrt(x)."""
    return unary_op(OpKind.RSQRT, x)


def neg(x: Any) -> Value:
    """Elementwise -x."""
    return unary_op(OpKind.NEG, x, float_only=False)


def abs(x: Any) -> Value:  # noqa: A001
    """Elementwise absolute value, ``|x|``."""
    return unary_op(OpKind.ABS, x, float_only=False)


def relu(x: Any) -> Value:
    """Elementwise max(x, 0)."""
    return unary_op(OpKind.RELU, x, float_only=False)


def sigmoid(x: Any) -> Value:
    """Elementwise 1 / (1 + e**-x)."""
    return unary_op(OpKind.SIGMOID, x)


def silu(x: Any) -> Value:
    """Elementwise x * sigmoid(x) (SiLU / swish), computed as x / (1 + e**-x)."""
    return unary_op(OpKind.SILU, x)


def tanh(x: Any) -> Value:
    """Elementwise hyperbolic tangent, computed as 1 - 2 / (e**2x + 1) in the tile's dtype (the vector instructions
    the cost model prices): near 0 its error is absolute, about one ulp of 1 (6e-8 in F32), not relative, so
    tanh(1e-8) is 0.0 where np.tanh gives 1e-8."""
    return unary_op(OpKind.TANH, x)


def gelu(x: Any) -> Value:
    """Elementwise GELU, tanh form: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x**3)))."""
    return unary_op(OpKind.GELU, x)


def transpose(x: Any) -> Value:
    """The [cols, rows] transpose of a [rows, cols] tile (same dtype)."""
    trace = current_trace("transpose")
    t = tile_operand("transpose", trace, x)
    rows, cols = t.shape
    return trace.emit(OpKind.TRANSPOSE, TileType(cols, rows, t.dtype), (t,))


def sin(x: Any) -> Value:
    """Elementwise sine (radians)."""
    return unary_op(OpKind.SIN, x)


def cos(x: Any) -> Value:
    """Elementwise cosine (radians)."""
    return unary_op(OpKind.COS, x)


def slice_even(x: Any) -> Value:
    """Columns 0, 2, 4, ... of a [rows, cols] tile: [rows, cols / 2] (the first of each rotary pair)."""
    return half_op(OpKind.SLICE_EVEN, x)


def slice_odd(x: Any) -> Value:
    """Columns 1, 3, 5, ... of a [rows, cols] tile: [rows, cols / 2]."""
    return half_op(OpKind.SLICE_ODD, x)


def interleave(a: Any, c: Any) -> Value:
    """[rows, 2 cols] with ``a``'s columns at even positions and ``c``'s at odd ones (undoes slice_even/odd)."""
    trace = current_trace("interleave")
    x, y = tile_operand("interleave", trace, a), tile_operand("interleave", trace, c)
    if x.type != y.type:
        raise op_error("interleave", f"needs two tiles of one shape and dtype, got {describe(x)} and {describe(y)}.",
                       "Interleave the two halves produced by tl.slice_even and tl.slice_odd.", trace)
    rows, cols = x.shape
    return trace.emit(OpKind.INTERLEAVE, TileType(rows, 2 * cols, x.dtype), (x, y))


def broadcast(x: Any, shape: Any) -> Value:
    """Repeat a [rows, 1], [1, cols] or [1, 1] tile to ``shape`` = (rows, cols)."""
    trace = current_trace("broadcast")
    t = tile_operand("broadcast", trace, x)
    if (not isinstance(shape, (tuple, list)) or len(shape) != 2
            or any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1 for n in shape)):
        raise op_error("broadcast", f"shape must be (rows, cols) with ints >= 1, got {shape!r}.",
                       "Write tl.broadcast(v, (128, 64)).", trace)
    rows, cols = int(shape[0]), int(shape[1])
    r, c = t.shape
    if r not in (1, rows) or c not in (1, cols):
        raise op_error("broadcast", f"cannot repeat {describe(t)} to [{rows}, {cols}]; each dimension must be 1 or "
                                 "already the target size.", "Reduce to [rows, 1] or [1, cols] first.", trace)
    return trace.emit(OpKind.BROADCAST, TileType(rows, cols, t.dtype), (t,),
                      (("shape", (rows, cols)),))


def slice(x: Any, rows: Any = None, cols: Any = None) -> Value:  # noqa: A001 - tl.slice is the DSL's name
    """Rows ``r0:r1`` and columns ``c0:c1`` of a tile: ``tl.slice(x, rows=(0, 64), cols=(128, 256))`` (static ints;
    None keeps the whole dimension). A view: it moves no data; a slice of a parameter loads or stores only that
    region. ``x[0:64, 128:256]`` is the same."""
    trace = current_trace("slice")
    if not isinstance(x, Value) or not x.is_tile:
        raise op_error("slice", f"needs a tile, got {describe(x)}.",
                       "Slice a tile parameter or the result of a tl op: tl.slice(x, rows=(0, 64)).", trace)
    r0, r1 = slice_bounds(trace, rows, x.shape[0], "rows")
    c0, c1 = slice_bounds(trace, cols, x.shape[1], "cols")
    out = trace.emit(OpKind.SLICE, TileType(r1 - r0, c1 - c0, x.dtype), (x,), (("rows", (r0, r1)), ("cols", (c0, c1))))
    root = trace.region_of(x)
    if root is not None:
        trace.regions[out.id] = root
    return out


def _getitem(x: Value, key: Any) -> Value:
    """``x[r0:r1, c0:c1]`` on a traced tile: tl.slice with Python's slice syntax (no steps)."""
    trace = current_trace("slice")
    parts = key if isinstance(key, tuple) else (key,)
    if len(parts) > 2:
        raise op_error("slice", f"a tile has two dimensions, got {len(parts)} slices in x[{_key_text(parts)}].",
                       "Write x[r0:r1, c0:c1].", trace)
    bounds = []
    for part, what in zip(parts, ("rows", "cols")):
        if part.step is not None and part.step != 1:
            raise op_error("slice", f"x[{_key_text(parts)}] has step {part.step!r} on the {what}; a slice is one "
                                    "contiguous window.",
                           "Every other column is tl.slice_even(x) / tl.slice_odd(x); otherwise drop the step.", trace,
                           PtortValueError)
        bounds.append(None if part.start is None and part.stop is None else (part.start, part.stop))
    return slice(x, *bounds)


def _key_text(parts: tuple[Any, ...]) -> str:
    return ", ".join(f"{'' if p.start is None else p.start}:{'' if p.stop is None else p.stop}"
                     + (f":{p.step}" if p.step is not None else "") for p in parts)


def concat(tiles: Any, axis: int = 0) -> Value:
    """Join tiles along rows (``axis=0``: [r1 + r2, c]) or columns (``axis=1``: [r, c1 + c2]) into a new tile: a
    vector copy into a new UB allocation. ``tl.concat([a, b], axis=1)``."""
    trace = current_trace("concat")
    if not isinstance(tiles, (list, tuple)) or len(tiles) < 2:
        got = f"a {type(tiles).__name__} of {len(tiles)}" if isinstance(tiles, (list, tuple)) else describe(tiles)
        raise op_error("concat", f"needs a list of at least two tiles, got {got}.",
                       "Write tl.concat([a, b], axis=1) (a single tile needs no concat).", trace)
    if isinstance(axis, bool) or axis not in (0, 1):
        raise op_error("concat", f"axis must be 0 (stack rows) or 1 (join columns), got {axis!r}.",
                       "Write tl.concat([a, b], axis=0) or axis=1.", trace, PtortValueError)
    parts = [tile_operand("concat", trace, t, f"tile {i}") for i, t in enumerate(tiles)]
    keep = 1 - axis  # the dimension every part must share
    for i, t in enumerate(parts[1:], 1):
        if t.dtype != parts[0].dtype:
            raise op_error("concat", f"tiles have different dtypes: tile 0 is {parts[0].type}, tile {i} is {t.type}.",
                           f"Cast first: tl.cast(x, DType.{parts[0].dtype}).", trace)
        if t.shape[keep] != parts[0].shape[keep]:
            dim = "columns" if axis == 0 else "rows"
            raise op_error("concat", f"along axis {axis} every tile needs the same number of {dim}: tile 0 is "
                                     f"{parts[0].type}, tile {i} is {t.type}.",
                           f"Slice or pad them to one {dim[:-1]} count, or join along axis {keep}.", trace)
    size = sum(t.shape[axis] for t in parts)
    shape = (size, parts[0].shape[1]) if axis == 0 else (parts[0].shape[0], size)
    return trace.emit(OpKind.CONCAT, TileType(shape[0], shape[1], parts[0].dtype), tuple(parts), (("axis", axis),))


def rowmul(a: Any, v: Any) -> Value:
    """Each row of ``a`` times its entry of the [rows, 1] vector ``v`` (tl.mul with a row vector)."""
    return vector_op(OpKind.MUL, "rowmul", a, v, row=True)


def rowadd(a: Any, v: Any) -> Value:
    """Each row of ``a`` plus its entry of the [rows, 1] vector ``v``."""
    return vector_op(OpKind.ADD, "rowadd", a, v, row=True)


def colmul(a: Any, v: Any) -> Value:
    """Each column of ``a`` times its entry of the [1, cols] vector ``v``."""
    return vector_op(OpKind.MUL, "colmul", a, v, row=False)


def coladd(a: Any, v: Any) -> Value:
    """Each column of ``a`` plus its entry of the [1, cols] vector ``v``."""
    return vector_op(OpKind.ADD, "coladd", a, v, row=False)


def rowsum(x: Any) -> Value:
    """Sum of each row: [r, c] -> [r, 1] (F16/BF16 accumulate and return F32, I8/U8 return I32)."""
    return reduce_op(OpKind.ROWSUM, x)


def rowmax(x: Any) -> Value:
    """Max of each row: [r, c] -> [r, 1], same dtype."""
    return reduce_op(OpKind.ROWMAX, x)


def rowmean(x: Any) -> Value:
    """Mean of each row: [r, c] -> [r, 1] (F16/BF16 return F32), computed as the vector unit does it: the row sum
    times 1/c rounded to the result's dtype."""
    return reduce_op(OpKind.ROWMEAN, x)


def colsum(x: Any) -> Value:
    """Sum of each column: [r, c] -> [1, c] (F16/BF16 return F32)."""
    return reduce_op(OpKind.COLSUM, x)


def colmax(x: Any) -> Value:
    """Max of each column: [r, c] -> [1, c], same dtype."""
    return reduce_op(OpKind.COLMAX, x)


# The cube's input dtypes on A2/A3 (NPU_MODEL §1, §3.4): F16/BF16/I8 at full rate, F32 at quarter rate; U8 as I8
# (the 8-bit integer mode). F64, 16/32/64-bit integers have no cube mode.
_CUBE_DTYPES = (DType.F16, DType.BF16, DType.F32, DType.I8, DType.U8)


def matmul(a: Any, b: Any, acc: Any = None) -> Value:
    """``a @ b`` on the cube unit: [M, K] @ [K, N] -> [M, N]; F16/BF16 inputs accumulate in F32, I8/U8 in I32, F32
    stays F32. Other dtypes have no cube mode and are refused (cast them first).

    With ``acc`` ([M, N], the result dtype) it returns ``acc + a @ b``.
    """
    trace = current_trace("matmul")
    x, y = tile_operand("matmul", trace, a, "left operand"), tile_operand("matmul", trace, b, "right operand")
    if x.shape[1] != y.shape[0]:
        raise op_error("matmul", f"inner dimensions differ: {describe(x)} @ {describe(y)} "
                              f"({x.shape[1]} != {y.shape[0]}).",
                       "The left tile's columns must equal the right tile's rows (transpose K if needed).", trace)
    if x.dtype != y.dtype:
        raise op_error("matmul", f"operands have different dtypes: {describe(x)} and {describe(y)}.",
                       f"Cast both to the same dtype, e.g. tl.cast(b, DType.{x.dtype}).", trace)
    if x.dtype not in _CUBE_DTYPES:  # no cube mode to price (or compute) it by: refused, not given an invented rate
        raise op_error("matmul", f"the cube unit has no {x.dtype} mode: {describe(x)} @ {describe(y)} (A2/A3 cube "
                                 f"inputs are {', '.join(map(str, _CUBE_DTYPES))}).",
                       "Cast both operands first: tl.cast(a, DType.F16) or DType.BF16 (full cube rate), or "
                       "DType.F32 (quarter rate, keeps more precision).", trace)
    out = TileType(x.shape[0], y.shape[1], ACCUMULATOR.get(x.dtype, x.dtype))
    operands: tuple[Value, ...] = (x, y)
    if acc is not None:
        z = tile_operand("matmul", trace, acc, "accumulator")
        if z.shape != out.shape or z.dtype != out.dtype:
            raise op_error("matmul", f"the accumulator must have the result's shape and dtype, got acc={z.type} "
                                  f"out={out} ({x.dtype} inputs give a {out.dtype} result).",
                           f"Pass an accumulator of {out}, e.g. tl.full({out.rows}, {out.cols}, 0, DType.{out.dtype}) "
                           f"or a loaded InOut[Tile[{out.rows}, {out.cols}, DType.{out.dtype}]].", trace)
        operands = (x, y, z)
    return trace.emit(OpKind.MATMUL, out, operands)


def lt(a: Any, b: Any) -> Value:
    """Elementwise a < b as a U8 mask (1 where true)."""
    return compare_op("lt", a, b)


def le(a: Any, b: Any) -> Value:
    """Elementwise a <= b as a U8 mask."""
    return compare_op("le", a, b)


def gt(a: Any, b: Any) -> Value:
    """Elementwise a > b as a U8 mask."""
    return compare_op("gt", a, b)


def ge(a: Any, b: Any) -> Value:
    """Elementwise a >= b as a U8 mask."""
    return compare_op("ge", a, b)


def eq(a: Any, b: Any) -> Value:
    """Elementwise a == b as a U8 mask."""
    return compare_op("eq", a, b)


def ne(a: Any, b: Any) -> Value:
    """Elementwise a != b as a U8 mask."""
    return compare_op("ne", a, b)


def where(mask: Any, a: Any, b: Any) -> Value:
    """Pick ``a`` where ``mask`` (from tl.lt/gt/...) is set, else ``b``; a or b may be numbers. Mask and branches
    broadcast as in tl.add: a [rows, 1] mask picks whole rows of [rows, cols] branches, giving [rows, cols]."""
    return _where("where", mask, a, b)


def select(mask: Any, a: Any, b: Any) -> Value:
    """tl.where's other name (the reference's spelling)."""
    return _where("select", mask, a, b)


def _where(op: str, mask: Any, a: Any, b: Any) -> Value:
    trace = current_trace(op)
    m = tile_operand(op, trace, mask, "mask")
    if m.dtype is not DType.U8:
        raise op_error(op, f"mask must come from a comparison (U8), got {describe(m)}.",
                       "Build it with tl.gt/tl.lt/tl.eq/...", trace)
    like = a.dtype if isinstance(a, Value) else b.dtype if isinstance(b, Value) else DType.F32
    x, y = operand(op, trace, a, like), operand(op, trace, b, like)
    tiles = [m]
    for v in (x, y):
        if isinstance(v, Value) and (v.dtype != like):
            raise op_error(op, f"branches have different dtypes: {describe(a)} and {describe(b)}.",
                           "Cast one branch first.", trace)
        if isinstance(v, Value) and v.is_tile:
            tiles.append(v)
    # The result has the shape of mask and branches broadcast together, as np.where gives (not the mask's shape):
    # the largest of them, which every other one must broadcast to as in tl.add.
    w = builtins.max(range(len(tiles)), key=lambda i: tiles[i].shape[0] * tiles[i].shape[1])
    for i, t in enumerate(tiles):
        if i != w:  # (named in the order they were passed)
            broadcast_shape(op, trace, *((t, tiles[w]) if i < w else (tiles[w], t)))
    rows, cols = tiles[w].shape
    return trace.emit(OpKind.WHERE, TileType(rows, cols, like), (m, x, y))


def full(rows: int, cols: int, value: float, dtype: DType = DType.F32) -> Value:
    """A new [rows, cols] tile filled with ``value``."""
    trace = current_trace("full")
    for name, n in (("rows", rows), ("cols", cols)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise op_error("full", f"{name} must be an int, got {type(n).__name__} {n!r}.",
                           "Tile sizes are static ints: write tl.full(8, 8, 0.0, DType.F32) (value third).", trace)
        if n < 1:
            raise op_error("full", f"{name} must be >= 1, got {n}: a tile has at least one row and one column.",
                           "Write tl.full(8, 8, 0.0, DType.F32) with the tile's [rows, cols].", trace, PtortValueError)
    if not isinstance(dtype, DType):
        raise op_error("full", f"dtype must be a DType, got {dtype!r}.", "Write tl.full(8, 8, 0.0, DType.F32).", trace)
    if isinstance(value, Literal):
        value = value.value
    v = literal("full", trace, value, dtype, "value")
    return trace.emit(OpKind.FULL, TileType(int(rows), int(cols), dtype), (Literal(v, dtype),))


def iota_u32(cols: int) -> Value:
    """A [1, cols] U32 tile 0, 1, ..., cols - 1: the indices to sort alongside scores (tl.tsort32)."""
    trace = current_trace("iota_u32")
    if isinstance(cols, bool) or not isinstance(cols, (int, np.integer)) or cols < 1:
        raise op_error("iota_u32", f"cols must be an int >= 1, got {cols!r}.", "Write tl.iota_u32(32).", trace,
                       PtortValueError if isinstance(cols, (int, np.integer)) else PtortTypeError)
    return trace.emit(OpKind.IOTA_U32, TileType(1, int(cols), DType.U32), ())


def tsort32(scores: Any, idx: Any) -> Value:
    """Sort 32 (score, index) pairs by score, largest first (ties: lower index first), as TSORT32 does:
    [1, 32] F32 scores and [1, 32] U32 indices -> [1, 64] F32 of interleaved (score, index bits) pairs."""
    trace = current_trace("tsort32")
    s, i = tile_operand("tsort32", trace, scores, "scores"), tile_operand("tsort32", trace, idx, "idx")
    if s.type != TileType(1, 32, DType.F32) or i.type != TileType(1, 32, DType.U32):
        raise op_error("tsort32", f"needs scores f32[1,32] and idx u32[1,32], got {describe(s)} and {describe(i)}.",
                       "Sort 32 candidates at a time: tl.tsort32(scores, tl.iota_u32(32)); cast scores to F32 first.",
                       trace)
    return trace.emit(OpKind.TSORT32, TileType(1, 64, DType.F32), (s, i))


def extract_topk_indices(pairs: Any, k: int) -> Value:
    """The indices of the first ``k`` pairs of a tl.tsort32 result: [1, 64] F32 -> [1, k] I32, 1 <= k <= 32."""
    trace = current_trace("extract_topk_indices")
    p = tile_operand("extract_topk_indices", trace, pairs, "pairs")
    if p.type != TileType(1, 64, DType.F32):
        raise op_error("extract_topk_indices", f"needs the f32[1,64] result of tl.tsort32, got {describe(p)}.",
                       "Pass what tl.tsort32(scores, idx) returned.", trace)
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= 32:
        raise op_error("extract_topk_indices", f"k must be an int in 1..32, got {k!r}.",
                       "A tsort32 result holds 32 pairs: write tl.extract_topk_indices(pairs, 8).", trace,
                       PtortValueError)
    return trace.emit(OpKind.EXTRACT_TOPK, TileType(1, int(k), DType.I32), (p,),
                      (("k", int(k)),))


def constant(value: float, dtype: DType = DType.F32) -> Literal:
    """A scalar constant usable wherever a Python number is accepted."""
    trace = current_trace("constant")
    if not isinstance(dtype, DType):
        raise op_error("constant", f"dtype must be a DType, got {dtype!r}.", "Write tl.constant(2.0, DType.F32).",
                       trace)
    return Literal(literal("constant", trace, value, dtype, "value"), dtype)


# -- the reference's spellings: the scalar twins of the binary ops (and the aliases, with the checks below) ------------

def adds(x: Any, s: float) -> Value:
    """Tile plus scalar."""
    return binary_op(OpKind.ADD, x, s, "adds")


def subs(x: Any, s: float) -> Value:
    """Tile minus scalar."""
    return binary_op(OpKind.SUB, x, s, "subs")


def muls(x: Any, s: float) -> Value:
    """Tile times scalar."""
    return binary_op(OpKind.MUL, x, s, "muls")


def divs(x: Any, s: float) -> Value:
    """Tile divided by scalar; integer tiles follow tl.div's rule (a non-whole negative quotient, or a divisor of 0,
    is refused when the kernel runs)."""
    return binary_op(OpKind.DIV, x, s, "divs")


def maxs(x: Any, s: float) -> Value:
    """Elementwise max with a scalar."""
    return binary_op(OpKind.MAX, x, s, "maxs")


def mins(x: Any, s: float) -> Value:
    """Elementwise min with a scalar."""
    return binary_op(OpKind.MIN, x, s, "mins")


# -- calls that do not fit an op's signature --------------------------------------------------------------------------
_ROW_NO_AXIS = "tl.{op} reduces each row ([r, c] -> [r, 1]) and takes no axis; the {other} of each column ([1, c]) is "
_COL_NO_AXIS = "tl.{op} reduces each column ([r, c] -> [1, c]) and takes no axis; the {other} of each row ([r, 1]) is "
# How to call the ops people most often call another way (the others get their signature).
_CALL_HINTS = {
    "rowsum": _ROW_NO_AXIS.format(op="rowsum", other="sum") + "tl.colsum(x).",
    "rowmax": _ROW_NO_AXIS.format(op="rowmax", other="max") + "tl.colmax(x).",
    "rowmean": _ROW_NO_AXIS.format(op="rowmean", other="mean") + "tl.muls(tl.colsum(x), 1.0 / rows).",
    "colsum": _COL_NO_AXIS.format(op="colsum", other="sum") + "tl.rowsum(x).",
    "colmax": _COL_NO_AXIS.format(op="colmax", other="max") + "tl.rowmax(x).",
    "transpose": "tl.transpose(x) swaps the two dimensions of a 2-D tile ([r, c] -> [c, r]) and takes no axes.",
    "broadcast": "Write tl.broadcast(x, (rows, cols)) with the target shape as one tuple.",
    "full": "Write tl.full(rows, cols, value, DType.F32).",
    "cast": "Write tl.cast(x, DType.F16) with a DType.",
    "slice": "Write tl.slice(x, rows=(r0, r1), cols=(c0, c1)), or x[r0:r1, c0:c1].",
    "concat": "Pass the tiles as one list: tl.concat([a, b], axis=1).",
    "store": "Write tl.store(dst, value): the destination parameter first, then the tile.",
    "load": "Write tl.load(src) with a tile parameter of the kernel (or a slice of one).",
    "matmul": "Write tl.matmul(a, b), or tl.matmul(a, b, acc) to add into an accumulator.",
}


def _spelled(fn: Callable[..., Any]) -> str:
    """An op's parameters as a call shows them: ``x``, ``a, b, acc=None``, ``rows, cols, value, dtype=DType.F32``."""
    parts = []
    for p in inspect.signature(fn).parameters.values():
        default = p.default
        if default is p.empty:
            parts.append(p.name)
        else:
            parts.append(f"{p.name}=DType.{default.name}" if isinstance(default, DType) else f"{p.name}={default!r}")
    return ", ".join(parts)


def _given(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """The arguments of a call, tiles by their type: ``f32[64,64], axis=1``."""
    def text(v: Any) -> str:
        return str(v.type) if isinstance(v, Value) else repr(v)
    return ", ".join([text(a) for a in args] + [f"{k}={text(v)}" for k, v in kwargs.items()])


def _checked_call(public: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` as the op ``tl.<public>``: a call that does not fit its parameters (``tl.rowsum(x, axis=1)``) raises a
    PtortTypeError naming the op's signature and the right call, not Python's bare TypeError."""
    @functools.wraps(fn)
    def op(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except TypeError as e:
            # Only a call that never reached the op's body (its traceback stops here) is a signature mistake.
            if isinstance(e, PtortError) or e.__traceback__ is None or e.__traceback__.tb_next is not None:
                raise
            trace = active_trace()
            raise op_error(public, f"called as tl.{public}({_given(args, kwargs)}), but it takes "
                                   f"tl.{public}({_spelled(fn)}) ({e}).",
                           _CALL_HINTS.get(fn.__name__, f"Call it as tl.{public}({_spelled(fn)}); help(tl.{public}) "
                                                        "says what each argument is."), trace) from None
    return op



__all__ = ["load", "store", "cast", "add", "sub", "mul", "div", "max", "min", "maximum", "minimum", "adds", "subs",
           "muls", "divs", "maxs", "mins", "exp", "log", "sqrt", "rsqrt", "neg", "abs", "relu", "sigmoid", "silu",
           "tanh", "gelu", "sin", "cos", "transpose", "slice_even", "slice_odd", "interleave", "broadcast", "slice",
           "concat",
           "rowmul", "rowadd", "colmul", "coladd", "rowsum", "rowmax", "rowmean",
           "colsum", "colmax", "matmul", "lt", "le", "gt", "ge", "eq", "ne", "where", "select", "full", "constant",
           "iota_u32", "tsort32", "extract_topk_indices"]

# Every op checks its call, under the name it was called by (an alias names itself: tl.select, not tl.where).
for _public in __all__:
    globals()[_public] = _checked_call(_public, globals()[_public])

# Python operators on traced values (``a * b + 1.0``, ``-x``, ``a @ b``) run these ops.
OPERATORS.update(add=add, sub=sub, mul=mul, div=div, neg=neg, abs=abs, matmul=matmul, getitem=_getitem)
TL_OPS.update(__all__)  # (so numpy applied to a tile names the tl op to use)
