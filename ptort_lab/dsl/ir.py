"""Kernel IR: the op enum and its groups, SSA values, literals, ops and the traced kernel. Frozen, printable."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from ..errors import SourceLocation
from .types import Direction, DType, ScalarType, TileType


class OpKind(enum.Enum):
    """Every tile operation, spelled as ``tl.<value>`` in the DSL and ``<value>`` in printed IR."""

    LOAD = "load"
    STORE = "store"
    CAST = "cast"
    ADD = "add"
    SUB = "sub"
    MUL = "mul"
    DIV = "div"
    MAX = "max"
    MIN = "min"
    EXP = "exp"
    LOG = "log"
    SQRT = "sqrt"
    RSQRT = "rsqrt"
    NEG = "neg"
    ABS = "abs"
    RELU = "relu"
    SIGMOID = "sigmoid"
    SILU = "silu"
    TANH = "tanh"
    GELU = "gelu"
    TRANSPOSE = "transpose"
    SIN = "sin"
    COS = "cos"
    SLICE_EVEN = "slice_even"
    SLICE_ODD = "slice_odd"
    INTERLEAVE = "interleave"
    BROADCAST = "broadcast"
    IOTA_U32 = "iota_u32"
    TSORT32 = "tsort32"
    EXTRACT_TOPK = "extract_topk_indices"
    ROWSUM = "rowsum"
    ROWMAX = "rowmax"
    ROWMEAN = "rowmean"
    COLSUM = "colsum"
    COLMAX = "colmax"
    MATMUL = "matmul"
    CMP = "cmp"
    WHERE = "where"
    FULL = "full"

    def __repr__(self) -> str:
        return f"OpKind.{self.name}"


BINARY = frozenset({OpKind.ADD, OpKind.SUB, OpKind.MUL, OpKind.DIV, OpKind.MAX, OpKind.MIN})
ACTIVATION = frozenset({OpKind.SIGMOID, OpKind.SILU, OpKind.TANH, OpKind.GELU})  # no single vector instruction
UNARY = frozenset({OpKind.EXP, OpKind.LOG, OpKind.SQRT, OpKind.RSQRT, OpKind.NEG, OpKind.ABS, OpKind.RELU,
                   OpKind.SIN, OpKind.COS}) | ACTIVATION
TRANSCENDENTAL = frozenset({OpKind.EXP, OpKind.LOG, OpKind.SQRT})
ROW_REDUCE = frozenset({OpKind.ROWSUM, OpKind.ROWMAX, OpKind.ROWMEAN})
COL_REDUCE = frozenset({OpKind.COLSUM, OpKind.COLMAX})
REDUCE = ROW_REDUCE | COL_REDUCE
MEMORY = frozenset({OpKind.LOAD, OpKind.STORE})


@dataclass(frozen=True, slots=True)
class Value:
    """An SSA value: a kernel parameter (``name`` set) or an op result (named at print time)."""

    id: int
    type: TileType | ScalarType
    name: str | None = None

    @property
    def dtype(self) -> DType:
        return self.type.dtype

    @property
    def shape(self) -> tuple[int, ...]:
        return self.type.shape

    @property
    def is_tile(self) -> bool:
        return isinstance(self.type, TileType)

    # Python operators trace the matching tl op, so `a * b + 1.0` reads like numpy.
    def __add__(self, o: Any) -> Value: return _tl().add(self, o)
    def __radd__(self, o: Any) -> Value: return _tl().add(o, self)
    def __sub__(self, o: Any) -> Value: return _tl().sub(self, o)
    def __rsub__(self, o: Any) -> Value: return _tl().sub(o, self)
    def __mul__(self, o: Any) -> Value: return _tl().mul(self, o)
    def __rmul__(self, o: Any) -> Value: return _tl().mul(o, self)
    def __truediv__(self, o: Any) -> Value: return _tl().div(self, o)
    def __rtruediv__(self, o: Any) -> Value: return _tl().div(o, self)
    def __neg__(self) -> Value: return _tl().neg(self)
    def __matmul__(self, o: Any) -> Value: return _tl().matmul(self, o)

    def __repr__(self) -> str:
        return f"Value({self.name or 'v'}:{self.id}: {self.type})"


def _tl() -> Any:
    from . import tl
    return tl


@dataclass(frozen=True, slots=True)
class Literal:
    """A Python scalar used as an operand; takes the dtype of the tile it meets."""

    value: float | int
    dtype: DType

    def __str__(self) -> str:
        return repr(self.value)


Operand = Value | Literal


@dataclass(frozen=True, slots=True)
class Op:
    """One traced tile operation. ``str(op)`` is the short form: ``load src``, ``cast F16``, ``store dst``."""

    kind: OpKind
    result: Value | None
    operands: tuple[Operand, ...]
    attrs: tuple[tuple[str, Any], ...] = ()
    loc: SourceLocation | None = field(default=None, compare=False)

    def attr(self, key: str, default: Any = None) -> Any:
        for k, v in self.attrs:
            if k == key:
                return v
        return default

    def __str__(self) -> str:
        from .printer import short_op
        return short_op(self)

    __repr__ = __str__


@dataclass(frozen=True, slots=True)
class KernelParam:
    """A kernel parameter: name, direction, type, and the Value standing for it in the body (None for Constexpr)."""

    name: str
    direction: Direction
    type: Any
    value: Value | None = None

    @property
    def is_tile(self) -> bool:
        return isinstance(self.type, TileType)


@dataclass(frozen=True, slots=True)
class KernelIR:
    """A traced kernel: its parameters and ops in program order. ``str(ir)`` prints one line per op."""

    name: str
    params: tuple[KernelParam, ...]
    ops: tuple[Op, ...]
    constexprs: tuple[tuple[str, Any], ...] = ()

    def param(self, name: str) -> KernelParam:
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def __str__(self) -> str:
        from .printer import print_kernel
        return print_kernel(self)

    __repr__ = __str__

    def dump(self) -> str:
        return str(self)


__all__ = ["OpKind", "Value", "Literal", "Op", "KernelParam", "KernelIR", "BINARY", "UNARY", "ACTIVATION",
           "TRANSCENDENTAL", "ROW_REDUCE", "COL_REDUCE", "REDUCE", "MEMORY"]
