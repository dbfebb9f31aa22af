"""Numeric execution of Kernel IR with numpy, op by op in each op's dtype: the executable definition of every op.

A run writes its outputs only if it succeeds: ``Writes`` computes each task's values and remembers every tensor a
run writes as it was before (a copy of its array, taken on the run's first write to it, or "unallocated" when the run
allocated it), so the runner can put them all back when the run fails for any reason. A successful run just drops
the copies, so it costs one array copy per pre-filled output tensor and nothing per task.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..dsl.ir import ACTIVATION, REDUCE, ROW_REDUCE, KernelIR, Literal, Op, OpKind, Value
from ..dsl.tasks import call_host_kernel, host_kernel
from ..dsl.types import Direction, Tensor, TensorView, TileType, _format_bytes, wider_dtype
from ..dsl.workload import Task, scalar_argument
from ..errors import KernelExecutionError, PtortValueError


class _OpFailed(Exception):
    """An op's values have no defined result; ``run_kernel`` turns it into a KernelExecutionError at the op."""

    def __init__(self, reason: str, hint: str) -> None:
        super().__init__(reason)
        self.reason, self.hint = reason, hint

_BINARY: dict[OpKind, Callable[[Any, Any], Any]] = {
    OpKind.ADD: np.add, OpKind.SUB: np.subtract, OpKind.MUL: np.multiply,
    OpKind.MAX: np.maximum, OpKind.MIN: np.minimum,
}
_UNARY: dict[OpKind, Callable[[Any], Any]] = {
    OpKind.EXP: np.exp, OpKind.LOG: np.log, OpKind.SQRT: np.sqrt, OpKind.RSQRT: lambda x: 1 / np.sqrt(x),
    OpKind.NEG: np.negative, OpKind.ABS: np.abs, OpKind.RELU: lambda x: np.maximum(x, np.zeros((), x.dtype)),
    OpKind.SIN: np.sin, OpKind.COS: np.cos,
    # A copy, never a view (np.ascontiguousarray returns a [1, 2] tile's own memory): the result is a new tile, so a
    # later tl.store to a parameter used directly must not change it. (tl.slice alone is a view.)
    OpKind.SLICE_EVEN: lambda x: x[:, 0::2].copy(),
    OpKind.SLICE_ODD: lambda x: x[:, 1::2].copy(),
}
def _activation(kind: OpKind, x: Any) -> Any:
    """The instruction sequence the cost model prices (sim/lowering.py), step by step in the tile's dtype.
    Overflow of e**x to inf is part of each formula (it saturates to 0, 1 or -1), so it is not warned about."""
    one = np.ones((), x.dtype)
    with np.errstate(over="ignore"):
        if kind is OpKind.SIGMOID:
            return one / (one + np.exp(-x))
        if kind is OpKind.SILU:
            return x / (one + np.exp(-x))
        if kind is OpKind.TANH:
            return one - (one + one) / (np.exp(x * (one + one)) + one)
        c = np.asarray(0.7978845608028654, x.dtype)  # sqrt(2 / pi)
        inner = c * (x + np.asarray(0.044715, x.dtype) * (x * x * x))
        return np.asarray(0.5, x.dtype) * x * (one + _activation(OpKind.TANH, inner))


_CMP: dict[str, Callable[[Any, Any], Any]] = {
    "lt": np.less, "le": np.less_equal, "gt": np.greater, "ge": np.greater_equal, "eq": np.equal, "ne": np.not_equal,
}


def _rowmean(x: Any, axis: int, keepdims: bool) -> Any:
    """The steps the cost model prices (sim/lowering.py): a row sum, then one tile-scalar multiply by fl(1/C), the
    reciprocal rounded to the result's dtype (np.mean divides by C, which differs by an ulp for C not a power of 2)."""
    one = np.ones((), x.dtype)
    return np.sum(x, axis=axis, keepdims=keepdims) * (one / np.asarray(x.shape[axis], x.dtype))


_REDUCE: dict[OpKind, Callable[..., Any]] = {
    OpKind.ROWSUM: np.sum, OpKind.COLSUM: np.sum, OpKind.ROWMEAN: _rowmean,
    OpKind.ROWMAX: np.max, OpKind.COLMAX: np.max,
}


# -- integers past their dtype's range ---------------------------------------------------------------------------
# numpy wraps integer results around silently (I8 100 + 100 -> -56) and gives platform-defined values for float -> int
# casts out of range or of nan (+3e9 -> INT_MIN on x86). What the modelled NPU does there (wrap, saturate) has no
# source here, so such a result is an error naming the values, never a number that looks computed.
_INT_CHECKED = frozenset({OpKind.ADD, OpKind.SUB, OpKind.MUL, OpKind.DIV, OpKind.NEG, OpKind.ABS, OpKind.ROWSUM,
                          OpKind.COLSUM, OpKind.MATMUL})
def _int_hint(dtype: Any, value: int) -> str:
    """How to avoid an integer op's result ``value`` outside ``dtype``: a wider dtype that holds it, if any."""
    wider = wider_dtype(dtype, value)
    what = "a signed" if wider is not None and wider.itemsize == dtype.itemsize else "a wider"
    instead = (f"compute in {what} dtype (tl.cast(x, DType.{wider}) first)" if wider is not None else
               f"no integer dtype holds {value}: compute in DType.F64 (tl.cast(x, DType.F64) first, exact up to "
               "2**53)")
    return ("ptort_lab does not model what the NPU does past an integer dtype's range (wrap-around or saturation), "
            f"so it has no value: {instead}, or keep the operands in range (clamp them with tl.maxs/tl.mins).")
_SYMBOL = {OpKind.ADD: "+", OpKind.SUB: "-", OpKind.MUL: "*", OpKind.DIV: "//"}


def _int_range(dtype: Any) -> tuple[int, int]:
    info = np.iinfo(dtype)
    return int(info.min), int(info.max)


def _extent(x: Any) -> tuple[int, int]:
    """(min, max) of an integer array as Python ints."""
    x = np.asarray(x)
    return (int(x.min()), int(x.max())) if x.size else (0, 0)


def _interval(kind: OpKind, parts: tuple[Any, ...]) -> tuple[int, int]:
    """A range that holds every exact (unbounded) result of the op on these operands: a cheap test that rules out
    overflow for almost every tile, before the exact check."""
    (lo, hi), rest = _extent(parts[0]), [_extent(x) for x in parts[1:]]
    if kind is OpKind.NEG:
        return -hi, -lo
    if kind in (OpKind.ABS, OpKind.DIV):  # |a // b| <= |a| for a whole divisor (zeros were refused before)
        m = max(abs(lo), abs(hi))
        negative = kind is OpKind.DIV and (lo < 0 or rest[0][0] < 0)
        return (-m if negative else 0), m
    if kind in (OpKind.ROWSUM, OpKind.COLSUM):
        n = np.shape(parts[0])[1 if kind is OpKind.ROWSUM else 0]
        return n * lo, n * hi
    blo, bhi = rest[0]
    if kind is OpKind.ADD:
        return lo + blo, hi + bhi
    if kind is OpKind.SUB:
        return lo - bhi, hi - blo
    products = (lo * blo, lo * bhi, hi * blo, hi * bhi)
    if kind is OpKind.MUL:
        return min(products), max(products)
    inner = np.shape(parts[0])[1]  # MATMUL: a sum of `inner` products, plus the accumulator
    acc = rest[1] if len(rest) > 1 else (0, 0)
    return inner * min(products) + acc[0], inner * max(products) + acc[1]


def _exact(kind: OpKind, parts: tuple[Any, ...]) -> Any:
    """The op over Python ints (object arrays): its exact result, to find the elements out of range."""
    x = [np.asarray(p).astype(object) for p in parts]
    if kind is OpKind.NEG:
        return -x[0]
    if kind is OpKind.ABS:
        return np.abs(x[0])
    if kind in (OpKind.ROWSUM, OpKind.COLSUM):
        return x[0].sum(axis=1 if kind is OpKind.ROWSUM else 0, keepdims=True)
    if kind is OpKind.MATMUL:
        product = np.matmul(x[0], x[1])
        return product + x[2] if len(x) > 2 else product
    return {OpKind.ADD: np.add, OpKind.SUB: np.subtract, OpKind.MUL: np.multiply,
            OpKind.DIV: np.floor_divide}[kind](x[0], x[1])


def _where(mask: Any) -> tuple[tuple[int, ...], str]:
    """The first True element's index, and "element [r, c]" / "... and n more" words for it."""
    hits = np.argwhere(mask)
    first = tuple(int(i) for i in hits[0])
    more = f" (and {len(hits) - 1} more)" if len(hits) > 1 else ""
    return first, f"element {list(first)}{more}"


def _check_ints(op: Op, parts: tuple[Any, ...], result: Any) -> None:
    """Refuse an integer op whose exact result leaves its dtype's range somewhere (numpy wrapped it)."""
    assert op.result is not None
    dtype = op.result.type.dtype
    lo, hi = _int_range(dtype.np_dtype)
    low, high = _interval(op.kind, parts)
    if lo <= low and high <= hi:
        return
    exact = _exact(op.kind, parts)
    bad = np.asarray((exact < lo) | (exact > hi), dtype=bool)
    if not bad.any():
        return
    idx, at = _where(bad)
    value = exact[idx]
    shape = np.shape(result)
    if op.kind in _SYMBOL:
        a, b = (np.broadcast_to(p, shape)[idx].item() for p in parts)
        expr = f"{a} {_SYMBOL[op.kind]} {b} = {value}"
    elif op.kind is OpKind.NEG:
        expr = f"-({np.asarray(parts[0])[idx].item()}) = {value}"
    elif op.kind is OpKind.ABS:
        expr = f"|{np.asarray(parts[0])[idx].item()}| = {value}"
    elif op.kind is OpKind.MATMUL:
        expr = f"the product's element {list(idx)} is {value}"
    else:
        row = op.kind is OpKind.ROWSUM
        expr = f"the sum of {'row' if row else 'column'} {idx[0 if row else 1]} is {value}"
    wrapped = np.asarray(result).astype(dtype.np_dtype)[idx].item()  # (numpy sums small ints wider, then casts)
    raise _OpFailed(f"{dtype} {op.kind.value} overflows at {at}: {expr} is outside the range of {dtype} ({lo}..{hi}), "
                    f"and numpy would silently wrap it to {wrapped}", _int_hint(dtype, int(value)))


_ROUNDING_HINT = ("Make the operands non-negative (e.g. divide |a| and restore the sign with tl.where), or divide in a "
                  "float dtype: tl.cast both operands to DType.F32 (exact for integers up to 2**24), divide, and "
                  "tl.cast the quotient back (the cast rounds to the nearest integer, halves to even: neither toward "
                  "zero nor down).")


def _check_int_rounding(op: Op, a: Any, b: Any) -> None:
    """Refuse an integer division whose quotient is negative and not whole: the one case where rounding down
    (numpy's //) and toward zero (C's /) differ, and which of them the NPU does has no source here."""
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind == "u" and b.dtype.kind == "u":
        return
    inexact = ((a < 0) != (b < 0)) & (np.remainder(a, b) != 0)
    if not inexact.any():
        return
    shape = np.broadcast_shapes(a.shape, b.shape)
    idx, at = _where(np.broadcast_to(inexact, shape))
    x, y = (int(np.broadcast_to(p, shape)[idx]) for p in (a, b))
    floor, trunc = x // y, -(-x // y)
    dtype = op.result.type.dtype if op.result is not None else a.dtype
    raise _OpFailed(f"{dtype} division of operands of different signs at {at}: {x} / {y} is not whole, and whether "
                    f"the NPU rounds it toward zero ({trunc}) or down ({floor}) is not modelled", _ROUNDING_HINT)


def _is_float(x: Any) -> bool:
    return bool(np.asarray(x).dtype.kind in "fV")  # a float, BF16 (ml_dtypes' kind is V) among them


def _nearest_whole(x: Any) -> Any:
    """A float tile's values rounded to the nearest integer, halves to even (2.5 -> 2, -2.7 -> -3), in float64, which
    holds every F16/BF16/F32/F64 value and its rounding exactly. This is how tl.cast converts a float to an integer
    dtype, as the default conversion mode does: for Ascend C's RoundMode::CAST_NONE, "If accuracy drop is involved
    during conversion, the CAST_RINT mode is used" (hiascend.com, Ascend C API "Cast"/"ScalarCast", RoundMode), and
    PTO-ISA's TCVT on A2/A3 emits the rint instruction for it (vconv_f322s32r for F32 -> I32, likewise to I16/I64
    and from F16/BF16 to I32: cannmirror/pto-isa include/pto/npu/a2a3/TCvt.hpp)."""
    return np.rint(np.asarray(x).astype(np.float64))


def _check_cast(op: Op, x: Any) -> None:
    """Refuse a cast to an integer dtype of nan, inf or a value outside the dtype's range (after rounding)."""
    assert op.result is not None
    dtype = op.result.type.dtype
    lo, hi = _int_range(dtype.np_dtype)
    x = np.asarray(x)
    if _is_float(x):
        wide = x.astype(np.float64)
        whole = _nearest_whole(wide)
        bad = ~np.isfinite(wide) | (whole < float(lo)) | (whole >= float(hi + 1))  # (both bounds exact floats)
    else:
        low, high = _extent(x)
        if lo <= low and high <= hi:
            return
        wide = x.astype(object)
        bad = np.asarray((wide < lo) | (wide > hi), dtype=bool)
    if not bad.any():
        return
    hits = np.argwhere(bad)
    shown = ", ".join(f"{_number(wide[tuple(i)])} at {[int(j) for j in i]}" for i in hits[:3])
    more = f" and {len(hits) - 3} more" if len(hits) > 3 else ""
    # tl.maxs/tl.mins take bounds in x's dtype: name them only when it holds them exactly (F32 rounds 2**31 - 1 up)
    exact = x.dtype.kind not in "fV" or all(float(np.asarray(b, x.dtype).astype(np.float64)) == b for b in (lo, hi))
    clamp = (f"clamp with tl.mins(tl.maxs(x, {lo}), {hi})" if exact else
             f"clamp into {lo}..{hi} with tl.maxs/tl.mins (at bounds {x.dtype.name} holds exactly)")
    hint = (f"Keep such values out before the cast: {clamp}, replace nan with tl.where(tl.eq(x, x), x, 0.0), or "
            "cast to a wider integer dtype.")
    raise _OpFailed(f"cast to {dtype} of values with no {dtype} value (nan, inf, or outside its range {lo}..{hi}): "
                    f"{shown}{more}; numpy gives platform-defined values for them, and the NPU's conversion of them "
                    "is not modelled", hint)


def _number(x: Any) -> str:
    """A numpy or Python number as Python prints it (3000000000.0, nan, -5)."""
    return repr(x.item() if hasattr(x, "item") else x)


def _value(env: dict[int, Any], a: Value | Literal) -> Any:
    if isinstance(a, Literal):
        return np.asarray(a.value, dtype=a.dtype.np_dtype)
    return env[a.id]


def eval_op(op: Op, env: dict[int, Any], views: dict[str, np.ndarray]) -> None:
    """Compute one op: read operands from ``env`` (value id -> array), write its result or the destination view."""
    k = op.kind
    out_dtype = op.result.type.dtype.np_dtype if op.result is not None else None
    ints = out_dtype is not None and out_dtype.kind in "iu"  # integer results: checked against their range
    if k is OpKind.LOAD:
        result = np.array(_value(env, op.operands[0]), dtype=out_dtype)
    elif k is OpKind.STORE:
        dst, src = op.operands
        assert isinstance(dst, Value)
        view = views[dst.name] if dst.name is not None else env[dst.id]  # a parameter, or a slice of one (a view)
        if not view.flags.writeable:
            shown = f"'{dst.name}'" if dst.name is not None else "the stored slice"
            raise _OpFailed(f"the array behind {shown} is read-only (np.ndarray.flags.writeable is False)",
                            "Pass the tensor a writable array, e.g. Tensor(data=y.copy()).")
        view[...] = _value(env, src)
        return
    elif k is OpKind.CAST:
        x = _value(env, op.operands[0])
        if ints:
            _check_cast(op, x)
            if _is_float(x):
                x = _nearest_whole(x)  # (numpy's astype would truncate toward zero)
        result = x.astype(out_dtype)
    elif k in _BINARY:
        a, b = _value(env, op.operands[0]), _value(env, op.operands[1])
        result = _BINARY[k](a, b)
        if k in _INT_CHECKED and ints:
            _check_ints(op, (a, b), result)
    elif k is OpKind.DIV:
        a, b = _value(env, op.operands[0]), _value(env, op.operands[1])
        if np.issubdtype(out_dtype, np.integer):
            if not np.all(b):  # numpy gives 0 silently; an integer division by zero has no value
                raise _OpFailed("integer division by zero (the divisor has a 0 element)",
                                "An integer division by zero has no value: keep zeros out of the divisor (e.g. "
                                "tl.max(d, 1)), or divide in a float dtype, where x / 0 is inf or nan.")
            _check_int_rounding(op, a, b)
            result = np.floor_divide(a, b)  # (exact, or of one sign: floor and truncation agree)
            _check_ints(op, (a, b), result)  # (INT_MIN // -1)
        else:
            result = np.true_divide(a, b)
    elif k in _UNARY:
        x = _value(env, op.operands[0])
        result = _UNARY[k](x)
        if k in _INT_CHECKED and ints:
            _check_ints(op, (x,), result)  # (-INT_MIN, |INT_MIN|, -x of an unsigned x)
    elif k in ACTIVATION:
        result = _activation(k, _value(env, op.operands[0]))
    elif k is OpKind.TRANSPOSE:
        result = _value(env, op.operands[0]).T.copy()  # a new tile, even where .T is contiguous ([n, 1] <-> [1, n])
    elif k is OpKind.INTERLEAVE:
        a, b = _value(env, op.operands[0]), _value(env, op.operands[1])
        result = np.empty((a.shape[0], 2 * a.shape[1]), dtype=out_dtype)
        result[:, 0::2], result[:, 1::2] = a, b
    elif k is OpKind.IOTA_U32:
        tile = op.result.type if op.result is not None else None
        assert isinstance(tile, TileType)  # (tl.iota_u32 makes a [1, n] tile)
        result = np.arange(tile.cols, dtype=np.uint32).reshape(1, -1)
    elif k is OpKind.TSORT32:
        scores, idx = _value(env, op.operands[0])[0], _value(env, op.operands[1])[0]
        order = np.lexsort((idx, -scores))  # largest score first; ties: lower index first
        result = np.empty((1, 64), dtype=np.float32)
        result[0, 0::2] = scores[order]
        result[0, 1::2] = idx[order].astype(np.uint32).view(np.float32)  # the index's bits, as TSORT32 stores it
    elif k is OpKind.EXTRACT_TOPK:
        pairs = np.ascontiguousarray(_value(env, op.operands[0])[0], dtype=np.float32)
        result = pairs[1::2][: op.attr("k")].view(np.uint32).astype(np.int32).reshape(1, -1)
    elif k is OpKind.SLICE:  # a view of its operand: a store into a slice of a parameter writes the tensor
        (r0, r1), (c0, c1) = op.attr("rows"), op.attr("cols")
        result = _value(env, op.operands[0])[r0:r1, c0:c1]
    elif k is OpKind.CONCAT:
        result = np.concatenate([_value(env, x) for x in op.operands], axis=op.attr("axis"))
    elif k is OpKind.BROADCAST:
        result = np.array(np.broadcast_to(_value(env, op.operands[0]), op.attr("shape")), dtype=out_dtype)
    elif k in REDUCE:
        x = _value(env, op.operands[0]).astype(out_dtype)
        axis = 1 if k in ROW_REDUCE else 0
        result = _REDUCE[k](x, axis=axis, keepdims=True)
        if k in _INT_CHECKED and ints:
            _check_ints(op, (x,), result)
    elif k is OpKind.MATMUL:
        acc_dtype = out_dtype
        a = _value(env, op.operands[0]).astype(acc_dtype)
        b = _value(env, op.operands[1]).astype(acc_dtype)
        result = np.matmul(a, b)
        parts: tuple[Any, ...] = (a, b)
        if len(op.operands) == 3:
            acc = _value(env, op.operands[2])
            result = result + acc
            parts = (a, b, acc)
        if ints:
            _check_ints(op, parts, result)
    elif k is OpKind.CMP:
        result = _CMP[op.attr("cmp")](_value(env, op.operands[0]), _value(env, op.operands[1]))
    elif k is OpKind.WHERE:
        m, a, b = (_value(env, x) for x in op.operands)
        result = np.where(m != 0, a, b)
    elif k is OpKind.FULL:
        assert op.result is not None
        result = np.full(op.result.type.shape, _value(env, op.operands[0]), dtype=out_dtype)
    else:  # pragma: no cover - the enum is closed
        raise NotImplementedError(k)
    assert op.result is not None
    env[op.result.id] = np.asarray(result).astype(out_dtype, copy=False)


#: The most bytes of tile values one kernel launch may hold on the host while its values are computed (``env`` keeps
#: every op's result until the launch ends). A cost model that does not price the IR (PinnedCosts) never checks a
#: tile against the chip's buffers, so ``tl.full(2**17, 2**17, 1.0)`` (64 GiB) would otherwise go straight to numpy,
#: and tiles of a few GiB each would be allocated one by one until the OOM killer took the process. 4 GiB is
#: thousands of times the modelled chip's largest on-chip buffer, and fits a laptop's RAM.
MAX_VALUE_BYTES = 4 * 2**30


def _check_value_bytes(ir: KernelIR, op: Op, held: int, task: Task) -> int:
    """``held`` plus the bytes of ``op``'s result; a KernelExecutionError at the op, before numpy allocates it, when
    that passes MAX_VALUE_BYTES."""
    typ = op.result.type if op.result is not None else None
    if not isinstance(typ, TileType) or op.kind is OpKind.SLICE:  # (a slice is a view of its operand's array)
        return held
    nbytes = typ.nbytes
    if held + nbytes <= MAX_VALUE_BYTES:
        return held + nbytes
    before = f" (with the {_format_bytes(held)} its earlier ops hold)" if held else ""
    raise KernelExecutionError(
        f"kernel '{ir.name}' would allocate a {typ.rows}x{typ.cols} {typ.dtype} tile of {nbytes:,} bytes "
        f"({_format_bytes(nbytes)}) at `{op}` on {tile_label(task)}{before}: more than the "
        f"{_format_bytes(MAX_VALUE_BYTES)} of tile values one launch may hold on the host "
        "(ptort_lab.sim.numerics.MAX_VALUE_BYTES), so it is refused before numpy allocates it.",
        hint="Use smaller tiles (the NPU cost model, the default, refuses tiles that do not fit the chip's buffers; "
             "PinnedCosts checks no tile size), or run timing-only with compile(compute_values=False), which "
             "computes no values.", where=op.loc, locate=False)


def tensor_label(base: Tensor) -> str:
    """How messages name a tensor: ``'acc'`` by its name, else ``f32[8, 8]`` by its type."""
    return f"'{base.name}'" if base.name else f"{base.dtype.value}{list(base.shape)}"


def tile_label(task: Task) -> str:
    """How messages name a task: by its tile index (its first axis value), else by its id."""
    params = task.params
    if not params:
        return f"task {task.id}"
    return f"tile {params[0]}" if len(params) == 1 else f"tile {tuple(params)}"


def bind_views(task: Task) -> dict[str, np.ndarray]:
    """The numpy views a task's tensor arguments stand for (allocating zero tensors on first use)."""
    views = {}
    for name, arg in task.resources.items():
        if isinstance(arg, TensorView):
            views[name] = arg.base.allocate()[arg.index] if arg.index else arg.base.allocate()
    return views


def run_kernel(ir: KernelIR, task: Task, views: dict[str, np.ndarray] | None = None) -> None:
    """Run ``ir`` on the task's tensors: loads read the views, stores write them in place."""
    if views is None:
        views = bind_views(task)
    env: dict[int, Any] = {}
    for p in ir.params:
        if p.value is None:
            continue
        if p.name not in task.resources:
            defaults = getattr(task.kernel_ref, "defaults", {})
            if not p.is_tile and p.name in defaults:  # a Scalar parameter left out runs with its default
                env[p.value.id] = scalar_argument(defaults[p.name], p.type, task, p.name, tile_label(task))
                continue
            raise KernelExecutionError(f"the launch of {task.kernel} for {tile_label(task)} has no argument for "
                                       f"parameter '{p.name}'.",
                                       hint=f"Pass {p.name}=... when launching {task.kernel}.", where=task.loc,
                                       locate=False)
        if p.is_tile:
            env[p.value.id] = _checked_view(ir, p, task, views.get(p.name))
        else:  # the value was checked at launch, unless it is a loop expression: check what it came to
            env[p.value.id] = scalar_argument(task.resources[p.name], p.type, task, p.name, tile_label(task))
    held = 0  # bytes of tile values in env
    for op in ir.ops:
        held = _check_value_bytes(ir, op, held, task)
        try:
            eval_op(op, env, views)
        except _OpFailed as e:
            raise KernelExecutionError(f"kernel '{ir.name}' failed at `{op}` on {tile_label(task)}: {e.reason}.",
                                       hint=e.hint, where=op.loc, locate=False) from None
        except (FloatingPointError, ValueError, TypeError) as e:
            # Shapes and dtypes were checked when the kernel was traced, so numpy should accept every op.
            raise KernelExecutionError(f"kernel '{ir.name}' failed at `{op}` on {tile_label(task)}: numpy raised "
                                       f"{type(e).__name__}: {e}.",
                                       hint="The kernel's types were checked when it was traced, so numpy should not "
                                            "refuse this op: please report it as a ptort_lab bug, with the kernel.",
                                       where=op.loc, locate=False) from e


def _checked_view(ir: KernelIR, p: Any, task: Task, view: np.ndarray | None) -> np.ndarray:
    """The array a tile parameter stands for, which must have exactly its tile's shape and dtype: a launch that
    skipped the build-time check (``@workload(type_check=False)``) would otherwise let numpy broadcast a row into the
    tile or convert its dtype, a wrong answer with no error."""
    typ = p.type
    assert isinstance(typ, TileType)
    arg = task.resources.get(p.name)
    if view is None:
        raise KernelExecutionError(
            f"kernel '{ir.name}' parameter '{p.name}' is a {typ.rows}x{typ.cols} {typ.dtype} tile, but the launch "
            f"for {tile_label(task)} passes {type(arg).__name__} {arg!r}, not a tensor view.",
            hint=f"Pass a tile of a Tensor, e.g. {p.name}=X[t] (@workload(type_check=False) skips this check when "
                 "the workload is built, not when it runs).", where=task.loc, locate=False)
    if tuple(view.shape) == typ.shape and view.dtype == typ.dtype.np_dtype:
        return view
    got = f"shape {tuple(view.shape)} and dtype {view.dtype.name}"
    raise KernelExecutionError(
        f"kernel '{ir.name}' parameter '{p.name}' is a {typ.rows}x{typ.cols} {typ.dtype} tile, but the launch for "
        f"{tile_label(task)} passes {arg!r} of {got}; numpy would broadcast or convert it into the tile, so the "
        "values would be wrong.",
        hint=f"Pass a view of shape {typ.shape} and dtype {typ.dtype} (X[t] of a [n, {typ.rows}, {typ.cols}] tensor), "
             "or change the kernel's Tile[...] annotation; @workload(type_check=False) skips this check when the "
             "workload is built, not when it runs.", where=task.loc, locate=False)


def ir_for(task: Task) -> KernelIR | None:
    """The IR a task runs: None for an abstract task (named by string: nothing to compute, a registered host
    kernel aside; it costs its cycles= or ``ABSTRACT_TASK_CYCLES``)."""
    kernel = task.kernel_ref
    return kernel.ir_for(task.resources) if kernel is not None else None


def run_task(task: Task) -> KernelIR | None:
    """Compute one task's values (no undo on failure: runs use ``Writes``); returns the IR it ran."""
    ir = ir_for(task)
    if ir is not None:
        with np.errstate(all="ignore"):
            run_kernel(ir, task)
    return ir


_WRITTEN = (Direction.OUT, Direction.INOUT)


def _stored_params(ir: KernelIR) -> frozenset[str]:
    """The parameters ``ir`` stores into, whole or through slices of them."""
    params = {p.value.id: p.name for p in ir.params if p.value is not None}
    source = {op.result.id: op.operands[0] for op in ir.ops if op.kind is OpKind.SLICE and op.result is not None}
    stored = set()
    for op in ir.ops:
        if op.kind is OpKind.STORE:
            target = op.operands[0]
            while isinstance(target, Value) and target.id not in params and target.id in source:
                target = source[target.id]
            if isinstance(target, Value) and target.id in params:
                stored.add(params[target.id])
    return frozenset(stored)


class Writes:
    """Computes a run's values and remembers, for every tensor the run writes or allocates, how it was before.

    ``Writes(origin)``: the run starts from ``origin``'s data. Each tensor ``origin`` saved is put back to that
    state when the run first touches it (reads or writes it), after saving its present state here, so a failed run
    still restores what was there. A Study passes what its earlier runs saved: every run sees the same inputs and
    leaves what one run leaves, and tensors the run never touches keep their values.
    """

    __slots__ = ("_saved", "_outputs", "_origin")

    def __init__(self, origin: Writes | None = None) -> None:
        # id(tensor) -> (tensor, its array before the run's first write, or None: the run allocated it). In order of
        # first touch, so restoring in reverse also undoes writes to tensors that share memory (slices of one array).
        self._saved: dict[int, tuple[Tensor, np.ndarray | None]] = {}
        # id(kernel), id(ir) -> (kernel, ir, the parameters it may write that this trace stores into)
        self._outputs: dict[tuple[int, int], tuple[Any, KernelIR, frozenset[str]]] = {}
        self._origin = origin._saved if origin is not None and origin._saved else None

    def compute(self, task: Task, ir: KernelIR | None, on_chip: dict[str, np.ndarray] | None = None) -> None:
        """Compute ``task``'s values with ``ir`` (from ``ir_for``), saving each tensor before its first write.
        ``on_chip``: the arrays of its arguments that are on-chip state (``on_chip.OnChipValues.views``), which no
        journal keeps. The caller sets ``np.errstate(all="ignore")`` once for the whole run (inf and nan are values
        here)."""
        if ir is not None:
            run_kernel(ir, task, self._bind(task, ir, on_chip))
        elif task.kernel_ref is None:
            host = host_kernel(task)
            if host is not None:
                self._run_host(task, host)

    def _run_host(self, task: Task, host: Any) -> None:
        """Run a registered host kernel (Program.register_kernel) on the task's resources, tensor views as numpy
        views saved first like any write, so a failed run undoes what it wrote."""
        def arg(name: Any, v: Any) -> Any:
            if not isinstance(v, TensorView) or v.base.on_chip:
                return v
            if id(v.base) not in self._saved:
                self._first_touch(v.base, str(name), True, task)
            data = v.base.data
            assert data is not None  # (allocated at its first touch)
            return data[v.index] if v.index else data
        res = task.resources
        if isinstance(res, dict):
            call_host_kernel(task, host, (), {k: arg(k, v) for k, v in res.items()})
        else:
            call_host_kernel(task, host, tuple(arg(i, v) for i, v in enumerate(res or ())), {})

    def _bind(self, task: Task, ir: KernelIR, on_chip: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        saved = self._saved
        written = self._written(task, ir)
        views = dict(on_chip) if on_chip else {}
        for name, arg in task.resources.items():
            if not isinstance(arg, TensorView) or name in views:
                continue
            base = arg.base
            if id(base) not in saved:
                self._first_touch(base, name, name in written, task)
            data = base.data
            assert data is not None  # (allocated at its first touch, above or in an earlier task)
            views[name] = data[arg.index] if arg.index else data
        return views

    def _first_touch(self, base: Tensor, name: str, writes: bool, task: Task) -> None:
        """Save what ``base`` holds before the run changes it (and start it from the origin's data)."""
        key = id(base)
        origin = self._origin
        if origin is not None and key in origin:
            self._saved[key] = (base, None if base.data is None else _state(base.data))
            _put_back(base, origin[key][1])
            if base.data is None:
                base.allocate()
        elif base.data is None:
            base.allocate()
            self._saved[key] = (base, None)
        elif writes:
            self._saved[key] = (base, self._copy_before_write(base, name, task))

    def _written(self, task: Task, ir: KernelIR) -> frozenset[str]:
        """The parameters ``task`` writes: Out/InOut ones (an unannotated one is InOut) that its trace ``ir`` stores
        into. (One it only reads is not saved before the run, so a read-only array may be passed for it.)"""
        kernel = task.kernel_ref
        key = (id(kernel), id(ir))
        hit = self._outputs.get(key)
        if hit is None or hit[0] is not kernel or hit[1] is not ir:
            names = frozenset(n for n, (d, _) in getattr(kernel, "signature", {}).items() if d in _WRITTEN)
            hit = self._outputs[key] = (kernel, ir, names & _stored_params(ir))
        return hit[2]

    @staticmethod
    def _copy_before_write(base: Tensor, name: str, task: Task) -> np.ndarray:
        data = base.data
        assert data is not None
        if not data.flags.writeable:
            shown = tensor_label(base)
            made = f" (made at {base.loc})" if base.loc is not None else ""
            raise PtortValueError(
                f"output tensor {shown}{made}, passed as '{name}' to {task.kernel}, has a read-only array "
                "(np.ndarray.flags.writeable is False), so the kernel cannot store into it.",
                hint="Pass a writable copy: Tensor(data=array.copy()) (np.broadcast_to and np.frombuffer give "
                     "read-only arrays).", where=task.loc, locate=False)
        return _state(data)

    def tensors(self) -> list[Tensor]:
        """The tensors this run wrote or allocated, in order of first touch."""
        return [t for t, _ in self._saved.values()]

    def restore(self) -> None:
        """Put every tensor back as it was before the run (an allocated one back to no data); idempotent."""
        for base, before in reversed(list(self._saved.values())):
            _put_back(base, before)

    def fork(self) -> Writes:
        """A journal for one more attempt at this run: it starts tensors this one has not seen from the same origin,
        and restores only what the attempt wrote (``absorb`` it to keep the attempt)."""
        fork = Writes()
        if self._origin is not None:
            fork._origin = {k: v for k, v in self._origin.items() if k not in self._saved} or None
        return fork

    def absorb(self, later: Writes) -> None:
        """Add what ``later`` saved for tensors this one has not seen (this one's older copies win)."""
        for key, entry in later._saved.items():
            self._saved.setdefault(key, entry)

    def __len__(self) -> int:
        return len(self._saved)


# Outputs usually start as np.zeros_like(...): for those a scan replaces the copy (a third of the time, no memory).
_ZEROS: np.ndarray = np.zeros(())


def _all_zero_bits(data: np.ndarray) -> bool:
    """Whether every byte of ``data`` is 0 (so +0.0, never -0.0); False for arrays that are not contiguous."""
    if not (data.flags.c_contiguous or data.flags.f_contiguous):
        return False
    return not data.reshape(-1, order="A").view(np.uint8).any()


def _state(data: np.ndarray) -> np.ndarray:
    """What ``data`` holds, to be put back later: ``_ZEROS`` or a copy."""
    return _ZEROS if _all_zero_bits(data) else data.copy()


def _put_back(base: Tensor, before: np.ndarray | None) -> None:
    """Give ``base`` the values ``before`` (None: no data; ``_ZEROS``: all zero bytes), in its own array when it has
    one (views of it and the caller's references see them); ``before`` stays untouched, to be put back again."""
    if before is None:
        base.data = None
    elif before is _ZEROS:
        if base.data is None:
            base.allocate()
        else:
            base.data[...] = 0
    elif base.data is None:
        base.data = before.copy()
    else:
        base.data[...] = before
