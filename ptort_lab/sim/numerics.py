"""Numeric execution of Kernel IR with numpy, op by op in each op's dtype: the executable definition of every op."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..dsl.ir import ACTIVATION, KernelIR, Literal, Op, OpKind, Value
from ..dsl.types import TensorView
from ..dsl.workload import Task
from ..errors import KernelExecutionError

_BINARY: dict[OpKind, Callable[[Any, Any], Any]] = {
    OpKind.ADD: np.add, OpKind.SUB: np.subtract, OpKind.MUL: np.multiply,
    OpKind.MAX: np.maximum, OpKind.MIN: np.minimum,
}
_UNARY: dict[OpKind, Callable[[Any], Any]] = {
    OpKind.EXP: np.exp, OpKind.LOG: np.log, OpKind.SQRT: np.sqrt, OpKind.RSQRT: lambda x: 1 / np.sqrt(x),
    OpKind.NEG: np.negative, OpKind.ABS: np.abs, OpKind.RELU: lambda x: np.maximum(x, np.zeros((), x.dtype)),
    OpKind.SIN: np.sin, OpKind.COS: np.cos,
    OpKind.SLICE_EVEN: lambda x: np.ascontiguousarray(x[:, 0::2]),
    OpKind.SLICE_ODD: lambda x: np.ascontiguousarray(x[:, 1::2]),
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


def _value(env: dict[int, Any], a: Value | Literal) -> Any:
    if isinstance(a, Literal):
        return np.asarray(a.value, dtype=a.dtype.np_dtype)
    return env[a.id]


def eval_op(op: Op, env: dict[int, Any], views: dict[str, np.ndarray]) -> None:
    """Compute one op: read operands from ``env`` (value id -> array), write its result or the destination view."""
    k = op.kind
    out_dtype = op.result.type.dtype.np_dtype if op.result is not None else None
    if k is OpKind.LOAD:
        result = np.array(_value(env, op.operands[0]), dtype=out_dtype)
    elif k is OpKind.STORE:
        dst, src = op.operands
        assert isinstance(dst, Value) and dst.name is not None
        views[dst.name][...] = _value(env, src)
        return
    elif k is OpKind.CAST:
        result = _value(env, op.operands[0]).astype(out_dtype)
    elif k in _BINARY:
        result = _BINARY[k](_value(env, op.operands[0]), _value(env, op.operands[1]))
    elif k is OpKind.DIV:
        a, b = _value(env, op.operands[0]), _value(env, op.operands[1])
        if np.issubdtype(out_dtype, np.integer):
            if not np.all(b):  # numpy gives 0 silently; an integer division by zero has no value
                raise ValueError("integer division by zero")
            result = np.floor_divide(a, b)
        else:
            result = np.true_divide(a, b)
    elif k in _UNARY:
        result = _UNARY[k](_value(env, op.operands[0]))
    elif k in ACTIVATION:
        result = _activation(k, _value(env, op.operands[0]))
    elif k is OpKind.TRANSPOSE:
        result = np.ascontiguousarray(_value(env, op.operands[0]).T)
    elif k is OpKind.INTERLEAVE:
        a, b = _value(env, op.operands[0]), _value(env, op.operands[1])
        result = np.empty((a.shape[0], 2 * a.shape[1]), dtype=out_dtype)
        result[:, 0::2], result[:, 1::2] = a, b
    elif k is OpKind.IOTA_U32:
        result = np.arange(op.result.type.shape[1], dtype=np.uint32).reshape(1, -1)
    elif k is OpKind.TSORT32:
        scores, idx = _value(env, op.operands[0])[0], _value(env, op.operands[1])[0]
        order = np.lexsort((idx, -scores))  # largest score first; ties: lower index first
        result = np.empty((1, 64), dtype=np.float32)
        result[0, 0::2] = scores[order]
        result[0, 1::2] = idx[order].astype(np.uint32).view(np.float32)  # the index's bits, as TSORT32 stores it
    elif k is OpKind.EXTRACT_TOPK:
        pairs = np.ascontiguousarray(_value(env, op.operands[0])[0], dtype=np.float32)
        result = pairs[1::2][: op.attr("k")].view(np.uint32).astype(np.int32).reshape(1, -1)
    elif k is OpKind.BROADCAST:
        result = np.array(np.broadcast_to(_value(env, op.operands[0]), op.attr("shape")), dtype=out_dtype)
    elif k in (OpKind.ROWSUM, OpKind.ROWMEAN, OpKind.ROWMAX, OpKind.COLSUM, OpKind.COLMAX):
        x = _value(env, op.operands[0]).astype(out_dtype)
        axis = 1 if k.value.startswith("row") else 0
        fn = {OpKind.ROWSUM: np.sum, OpKind.COLSUM: np.sum, OpKind.ROWMEAN: np.mean,
              OpKind.ROWMAX: np.max, OpKind.COLMAX: np.max}[k]
        result = fn(x, axis=axis, keepdims=True)
    elif k is OpKind.MATMUL:
        acc_dtype = out_dtype
        a = _value(env, op.operands[0]).astype(acc_dtype)
        b = _value(env, op.operands[1]).astype(acc_dtype)
        result = np.matmul(a, b)
        if len(op.operands) == 3:
            result = result + _value(env, op.operands[2])
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


def bind_views(task: Task) -> dict[str, np.ndarray]:
    """The numpy views a task's tensor arguments stand for (allocating zero tensors on first use)."""
    views = {}
    for name, arg in task.resources.items():
        if isinstance(arg, TensorView):
            views[name] = arg.base.allocate()[arg.index] if arg.index else arg.base.allocate()
    return views


def run_kernel(ir: KernelIR, task: Task) -> None:
    """Run ``ir`` on the task's tensors: loads read the views, stores write them in place."""
    views = bind_views(task)
    env: dict[int, Any] = {}
    for p in ir.params:
        if p.value is None:
            continue
        if p.name not in task.resources:
            raise KernelExecutionError(f"task {task.id} ({task.kernel}) has no argument for parameter '{p.name}'.",
                                       hint=f"Pass {p.name}=... when launching {task.kernel}.", where=task.loc,
                                       locate=False)
        if p.is_tile:
            env[p.value.id] = views[p.name]
        else:
            value = task.resources[p.name]
            try:
                env[p.value.id] = np.asarray(value, dtype=p.type.dtype.np_dtype)
            except (OverflowError, ValueError, TypeError) as e:
                raise KernelExecutionError(
                    f"task {task.id} ({task.kernel}) passes {value!r} for scalar parameter '{p.name}' "
                    f"({p.type}): {e}.", hint=f"Pass a value that fits {p.type.dtype}.", where=task.loc,
                    locate=False) from e
    for op in ir.ops:
        try:
            eval_op(op, env, views)
        except (FloatingPointError, ValueError, TypeError) as e:
            raise KernelExecutionError(f"kernel '{ir.name}' failed at `{op}` on task {task.id}: {e}.",
                                       hint="Check the operand values (e.g. log of negatives, division by zero).",
                                       where=op.loc, locate=False) from e


def run_task(task: Task) -> KernelIR | None:
    """Compute one task's values; returns the IR it ran (None for a named task with a pinned cost only)."""
    kernel = task.kernel_ref
    if kernel is None:
        if task.cycles is not None:
            return None
        raise KernelExecutionError(
            f"task {task.id} names kernel {task.kernel!r} by string, so there is nothing to compute.",
            hint="Pass the @kernel object to task(...) (task(my_kernel, [t], {...})), or pin a cost with cycles=.",
            where=task.loc, locate=False)
    ir = kernel.ir_for(task.resources)
    with np.errstate(all="ignore"):
        run_kernel(ir, task)
    return ir


