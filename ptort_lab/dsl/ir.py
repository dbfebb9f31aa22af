"""Kernel IR: the op enum and its groups, SSA values, literals, ops and the traced kernel. Frozen, printable."""
from __future__ import annotations

import contextvars
import enum
import math
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, NoReturn

import numpy as np

from ..errors import DSLUsageError, PtortTypeError, SourceLocation, is_internal_frame, user_location
from .expr import record_refusal
from .types import Direction, DType, Location, Scalar, ScalarType, Tile, TileType


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
    SLICE = "slice"  # a static [rows, cols] window of a tile: a view, no data moves
    CONCAT = "concat"  # tiles joined along rows (axis 0) or columns (axis 1) into a new tile

    # The reference's CamelCase spellings (``OpKind.Mul is OpKind.MUL``): aliases, so iteration and printing are
    # unchanged. Its Alloc, Constant and TopK have no op here (see the README's porting section).
    Load = "load"  # noqa: PIE796
    Store = "store"  # noqa: PIE796
    Add = "add"  # noqa: PIE796
    Sub = "sub"  # noqa: PIE796
    Mul = "mul"  # noqa: PIE796
    Div = "div"  # noqa: PIE796
    Max = "max"  # noqa: PIE796
    Min = "min"  # noqa: PIE796
    Exp = "exp"  # noqa: PIE796
    Log = "log"  # noqa: PIE796
    Sqrt = "sqrt"  # noqa: PIE796
    Rsqrt = "rsqrt"  # noqa: PIE796
    Neg = "neg"  # noqa: PIE796
    Abs = "abs"  # noqa: PIE796
    Relu = "relu"  # noqa: PIE796
    Sigmoid = "sigmoid"  # noqa: PIE796
    Silu = "silu"  # noqa: PIE796
    Tanh = "tanh"  # noqa: PIE796
    Gelu = "gelu"  # noqa: PIE796
    Sin = "sin"  # noqa: PIE796
    Cos = "cos"  # noqa: PIE796
    RowSum = "rowsum"  # noqa: PIE796
    RowMax = "rowmax"  # noqa: PIE796
    RowMean = "rowmean"  # noqa: PIE796
    ColSum = "colsum"  # noqa: PIE796
    ColMax = "colmax"  # noqa: PIE796
    Matmul = "matmul"  # noqa: PIE796
    IotaU32 = "iota_u32"  # noqa: PIE796
    TSort32 = "tsort32"  # noqa: PIE796
    ExtractTopkIndices = "extract_topk_indices"  # noqa: PIE796

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


@dataclass(frozen=True, slots=True, init=False)
class Value:
    """An SSA value: a kernel parameter (``name`` set) or an op result (named at print time).

    ``Value(id, type, name)``; the reference's ``Value(id, dtype, shape=None, location=Location.UB,
    debug_name=None)`` makes the same value (a tile of ``shape``, or a scalar when ``shape`` is None)."""

    id: int
    type: TileType | ScalarType
    name: str | None

    def __init__(self, id: int, type: Any = None, name: Any = None, location: Any = None,
                 debug_name: str | None = None, *, dtype: Any = None, shape: Any = None) -> None:
        if isinstance(type, DType) or dtype is not None:  # the reference's (id, dtype, shape, location, debug_name)
            if dtype is None:
                dtype, shape = type, name if shape is None else shape
            elif type is not None:
                shape = type
            type, name = _reference_value_type(dtype, shape, location), debug_name
        elif location is not None or debug_name is not None:
            raise PtortTypeError(f"Value(id, type, name) got location= or debug_name= with type {type!r}; those "
                                 "belong to the reference's Value(id, dtype, shape, location, debug_name).",
                                 hint="Write Value(1, DType.F16, (32, 128), Location.UB, 'x'), or "
                                      "Value.tile(32, 128, DType.F16, name='x').")
        if not isinstance(type, (TileType, ScalarType)):
            raise PtortTypeError(f"Value needs a TileType or ScalarType (or the reference's DType and shape), got "
                                 f"{type!r}.", hint="Write Value.tile(32, 128, DType.F16) or Value.scalar(DType.F32).")
        object.__setattr__(self, "id", id)
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "name", name)

    @staticmethod
    def tile(rows: int, cols: int, dtype: DType = DType.F16, location: Location = Location.UB,
             name: str | None = None) -> Value:
        """A tile value made outside any trace (the reference's ``Value.tile``): calling a kernel outside a workload
        with such values, ``k(x=Value.tile(32, 128, DType.F16), ...)``, traces it at those shapes."""
        typ: TileType = Tile[rows, cols, dtype]  # type: ignore[misc]
        if not isinstance(location, Location):
            raise PtortTypeError(f"Value.tile location must be a Location, got {location!r}.",
                                 hint="Use Location.UB (the default), Location.L1 or Location.L0C.")
        return Value(0, TileType(typ.rows, typ.cols, typ.dtype, location), name)

    @staticmethod
    def scalar(dtype: DType = DType.F32, name: str | None = None) -> Value:
        """A scalar value made outside any trace (the reference's ``Value.scalar``)."""
        scalar: ScalarType = Scalar[dtype]  # type: ignore[misc]
        return Value(0, scalar, name)

    @property
    def dtype(self) -> DType:
        """The element type."""
        return self.type.dtype

    @property
    def location(self) -> Location:
        """Where a tile lives (the reference's ``Value.location``); a scalar reports ``Location.UB``, as there."""
        return self.type.location if isinstance(self.type, TileType) else Location.UB

    @property
    def debug_name(self) -> str | None:
        """The reference's name for ``name``."""
        return self.name

    @property
    def shape(self) -> tuple[int, ...]:
        """(rows, cols) of a tile; () for a scalar."""
        return self.type.shape

    @property
    def is_tile(self) -> bool:
        """Whether this is a tile (else a scalar)."""
        return isinstance(self.type, TileType)

    # Python operators trace the matching tl op, so `a * b + 1.0` reads like numpy (tl fills OPERATORS).
    def __add__(self, o: Any) -> Value: return OPERATORS["add"](self, o)
    def __radd__(self, o: Any) -> Value: return OPERATORS["add"](o, self)
    def __sub__(self, o: Any) -> Value: return OPERATORS["sub"](self, o)
    def __rsub__(self, o: Any) -> Value: return OPERATORS["sub"](o, self)
    def __mul__(self, o: Any) -> Value: return OPERATORS["mul"](self, o)
    def __rmul__(self, o: Any) -> Value: return OPERATORS["mul"](o, self)
    def __truediv__(self, o: Any) -> Value: return OPERATORS["div"](self, o)
    def __rtruediv__(self, o: Any) -> Value: return OPERATORS["div"](o, self)
    # Operators with no tl op are refused at the user's line, naming what to write (Python's bare TypeError would
    # name none, and only when the kernel first runs).
    def __pow__(self, o: Any) -> NoReturn: _refuse_operator(self, "**", o, swap=False)
    def __rpow__(self, o: Any) -> NoReturn: _refuse_operator(self, "**", o, swap=True)
    def __floordiv__(self, o: Any) -> NoReturn: _refuse_operator(self, "//", o, swap=False)
    def __rfloordiv__(self, o: Any) -> NoReturn: _refuse_operator(self, "//", o, swap=True)
    def __mod__(self, o: Any) -> NoReturn: _refuse_operator(self, "%", o, swap=False)
    def __rmod__(self, o: Any) -> NoReturn: _refuse_operator(self, "%", o, swap=True)
    def __neg__(self) -> Value: return OPERATORS["neg"](self)
    def __abs__(self) -> Value: return OPERATORS["abs"](self)
    def __matmul__(self, o: Any) -> Value: return OPERATORS["matmul"](self, o)

    def __repr__(self) -> str:
        return f"Value({self.name or 'v'}:{self.id}: {self.type})"

    def __pos__(self) -> Value:
        return self  # (+x is x: tl results are new tiles already)

    def __invert__(self) -> NoReturn:
        _refuse_traced(self, f"~ on {_text(self)}: tl has no bitwise or logical not.",
                       "Swap the comparison instead (tl.ge for not tl.lt, tl.ne for not tl.eq), or the two branches "
                       "of tl.where.")

    def __divmod__(self, o: Any) -> NoReturn: _refuse_operator(self, "//", o, swap=False)
    def __rdivmod__(self, o: Any) -> NoReturn: _refuse_operator(self, "//", o, swap=True)

    # A kernel body runs once, at trace time, on symbolic values: whatever needs a tile's numbers (a Python `if`,
    # int(), iterating rows, `==`) would be decided once for every element of every task, so it is refused there.
    def __eq__(self, o: Any) -> Any:
        if _traced_by_user():
            _refuse_comparison(self, "==", o)
        if o.__class__ is not Value:
            return NotImplemented
        return (self.id, self.type, self.name) == (o.id, o.type, o.name)

    def __ne__(self, o: Any) -> Any:
        if _traced_by_user():
            _refuse_comparison(self, "!=", o)
        same = self.__eq__(o)
        return same if same is NotImplemented else not same

    def __hash__(self) -> int:
        return hash((self.id, self.type, self.name))

    def __lt__(self, o: Any) -> NoReturn: _refuse_comparison(self, "<", o)
    def __le__(self, o: Any) -> NoReturn: _refuse_comparison(self, "<=", o)
    def __gt__(self, o: Any) -> NoReturn: _refuse_comparison(self, ">", o)
    def __ge__(self, o: Any) -> NoReturn: _refuse_comparison(self, ">=", o)

    def __bool__(self) -> bool:
        if not _traced_by_user():
            return True
        _refuse_traced(self, f"the truth value of {_text(self)} is not known while the kernel is traced: the body "
                             "runs once, at trace time, so a Python `if`/`while`/`and`/`or`/`not` on a tile would "
                             "take one branch for every element of every task.",
                       "Compute both results and pick per element with a mask: tl.where(tl.gt(x, 0.0), a, b) "
                       "(masks come from tl.lt/le/gt/ge/eq/ne).")

    def _no_number(self, kind: str) -> NoReturn:
        _refuse_traced(self, f"{kind}() of {_text(self)}: a tile has no Python value while the kernel is traced "
                             "(its values exist only when a task runs).",
                       "Keep computing with tl.* ops on whole tiles; pick per element with a mask and tl.where, "
                       "and pass values known at launch as Constexpr[int] or Scalar[...] parameters.")

    def __int__(self) -> int: self._no_number("int")
    def __float__(self) -> float: self._no_number("float")
    def __index__(self) -> int: self._no_number("int")
    def __complex__(self) -> complex: self._no_number("complex")
    def __round__(self, ndigits: Any = None) -> int: self._no_number("round")
    def __trunc__(self) -> int: self._no_number("math.trunc")
    def __floor__(self) -> int: self._no_number("math.floor")
    def __ceil__(self) -> int: self._no_number("math.ceil")

    def _no_elements(self, what: str) -> NoReturn:
        _refuse_traced(self, f"{what} {_text(self)}: a kernel body works on whole tiles, not on Python elements "
                             "or rows.",
                       f"Use tl.* ops on the whole tile (tl.rowsum, tl.transpose, tl.slice_even, ...); its shape is "
                       f"{list(self.shape)} (x.shape). A sub-tile is a slice of static bounds: x[r0:r1, c0:c1] "
                       "(tl.slice).")

    def __len__(self) -> int: self._no_elements("len() of")
    def __iter__(self) -> NoReturn: self._no_elements("iterating")

    def __getitem__(self, key: Any) -> Value:
        """``x[r0:r1, c0:c1]`` is ``tl.slice(x, rows=(r0, r1), cols=(c0, c1))``; an element index is refused."""
        if isinstance(key, slice) or (isinstance(key, tuple) and key and all(isinstance(k, slice) for k in key)):
            return OPERATORS["getitem"](self, key)
        self._no_elements(f"indexing [{key!r}] of")

    # numpy on a traced value (np.exp(x), np.maximum(x, 0), ndarray + x) would ask it for numbers it does not have,
    # or loop over an array's elements recording one tile op each: refused, naming the numpy call and the tl op.
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        name = getattr(ufunc, "__name__", "ufunc")
        others = [v for v in inputs if v is not self]
        if method == "__call__" and not kwargs and all(_numpy_scalar(v) for v in others):
            # A numpy number in an operator (np.float32(2) * x calls np.multiply) means what a Python number does.
            if name in _NUMPY_OPERATORS:
                return OPERATORS[_NUMPY_OPERATORS[name]](*(v[()] if isinstance(v, np.ndarray) else v for v in inputs))
            if name in _NUMPY_COMPARISONS:
                if _current_trace.get() is None:
                    return NotImplemented
                _refuse_comparison(self, _NUMPY_COMPARISONS[name], others[0] if others else self)
        _refuse_numpy(self, f"np.{name}" if method == "__call__" else f"np.{name}.{method}", name, inputs)

    def __array_function__(self, func: Any, types: Any, args: Any, kwargs: Any) -> Any:
        name = getattr(func, "__name__", "function")
        _refuse_numpy(self, f"np.{name}", name, tuple(args) + tuple(kwargs.values()))

    def __array__(self, dtype: Any = None, copy: Any = None) -> NoReturn:
        _refuse_numpy(self, "np.asarray/np.array", "", ())


def _reference_value_type(dtype: Any, shape: Any, location: Any) -> TileType | ScalarType:
    """The type of the reference's ``Value(id, dtype, shape, location)``: a tile of ``shape`` (rows, cols) at
    ``location`` (UB by default), a scalar when ``shape`` is None."""
    if shape is None:
        scalar: ScalarType = Scalar[dtype]  # type: ignore[misc]
        return scalar
    if not (isinstance(shape, (tuple, list)) and len(shape) == 2):
        raise PtortTypeError(f"Value(id, dtype, shape, ...): shape must be (rows, cols) or None, got {shape!r}.",
                             hint="Write Value(1, DType.F16, (32, 128)), or Value.tile(32, 128, DType.F16).")
    return Value.tile(shape[0], shape[1], dtype, Location.UB if location is None else location).type


# The tl op behind each Python operator on a Value, by tl name ("add", "matmul", ...): filled by ``tl`` when it is
# imported (as JAX attaches lax functions to its tracers), so the IR does not import the op library built on it.
OPERATORS: dict[str, Callable[..., Value]] = {}


def _traced_by_user() -> bool:
    """True while a kernel is being traced and the code asking is the user's (ptort_lab compares values itself)."""
    if _current_trace.get() is None:
        return False
    return not is_internal_frame(sys._getframe(2))


def _text(v: Value) -> str:
    return f"the tile '{v.name}' ({v.type})" if v.name else f"a tile ({v.type})"


def _refuse_traced(v: Value, what: str, hint: str) -> NoReturn:
    trace = _current_trace.get()
    error = DSLUsageError(what, hint=hint, context=f"kernel '{trace.kernel_name}'" if trace is not None else "")
    record_refusal(error)
    raise error


# The tl ops by name (filled by ``tl`` when it is imported, like OPERATORS): what a refused numpy call should use.
TL_OPS: set[str] = set()
# numpy's names for the ufuncs behind Python operators, and the tl op each one runs with a numpy number.
_NUMPY_OPERATORS = {"add": "add", "subtract": "sub", "multiply": "mul", "divide": "div", "true_divide": "div",
                    "matmul": "matmul"}
_NUMPY_COMPARISONS = {"less": "<", "less_equal": "<=", "greater": ">", "greater_equal": ">=", "equal": "==",
                      "not_equal": "!="}
# The tl ops for numpy names that differ (the reductions work along one axis only).
NUMPY_TO_TL = {**_NUMPY_OPERATORS, "negative": "neg", "absolute": "abs", "fabs": "abs", "concatenate": "concat",
                "broadcast_to": "broadcast", "sum": "rowsum or tl.colsum", "max": "rowmax or tl.colmax",
                "amax": "rowmax or tl.colmax", "mean": "rowmean", "dot": "matmul", "clip": "maxs and tl.mins",
                "less": "lt", "less_equal": "le", "greater": "gt", "greater_equal": "ge", "equal": "eq",
                "not_equal": "ne"}


_RESHAPE = ("the tl op that makes the shape you need: a tile's shape is fixed, so take a part of it with a slice "
            "(x[r0:r1, c0:c1]), join tiles with tl.concat, or tl.transpose it")
# numpy array attributes and methods a kernel body may reach for, and what to write instead (Value.__getattr__)
NUMPY_ATTRIBUTES = {
    "T": "tl.transpose(x)", "transpose": "tl.transpose(x)", "astype": "tl.cast(x, DType.F32) (any DType)",
    "sum": "tl.rowsum(x) or tl.colsum(x) (a reduction runs along one axis)", "mean": "tl.rowmean(x)",
    "max": "tl.rowmax(x) or tl.colmax(x) (tl.max(a, b) is elementwise)", "min": "tl.min(a, b) (elementwise)",
    "reshape": _RESHAPE, "flatten": _RESHAPE, "ravel": _RESHAPE, "squeeze": _RESHAPE, "view": _RESHAPE,
    "dot": "tl.matmul(x, y) (or x @ y)", "clip": "tl.mins(tl.maxs(x, lo), hi)", "copy": "x itself (tl ops return "
    "new tiles; a stored tile is not changed by later ops)", "round": "tl.cast(x, an integer DType) (rounds halves "
    "to even)", "item": "tl.* ops on the whole tile: a traced tile has no Python value",
    "tolist": "tl.* ops on the whole tile: a traced tile has no Python value",
    "size": "x.shape (rows, cols)", "ndim": "x.shape (a tile is 2-D)", "fill": "tl.full(rows, cols, value, dtype)",
}


class NumpyAttributeRefused(DSLUsageError, AttributeError):
    """A numpy array's attribute read from a traced tile: a ptort_lab error naming the tl op to use, and an
    AttributeError, so ``hasattr(x, "T")`` and ``getattr(x, "size", None)`` in a body still answer False / None."""


class _NumpyAttribute:
    """A numpy array's attribute or method on a traced tile (x.T, x.astype(...), x.sum()): refused naming the tl op
    to use (Python's AttributeError would name none, and only when the kernel first runs); outside a kernel body it
    is the plain AttributeError. Either way hasattr() and libraries probing objects work as usual."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get__(self, value: Value | None, owner: Any = None) -> Any:
        if value is None:
            return self
        if not _traced_by_user():
            raise AttributeError(f"'Value' object has no attribute {self.name!r}")
        trace = _current_trace.get()
        # (not recorded as a refusal: a hasattr() that swallows it must leave no error behind for a later one)
        raise NumpyAttributeRefused(
            f"x.{self.name} on {_text(value)}: a traced tile is not a numpy array, and has no '{self.name}'.",
            hint=f"Use {NUMPY_ATTRIBUTES[self.name]}.",
            context=f"kernel '{trace.kernel_name}'" if trace is not None else "")


for _name in NUMPY_ATTRIBUTES:
    setattr(Value, _name, _NumpyAttribute(_name))


def _numpy_scalar(x: Any) -> bool:
    """A numpy number, or a 0-d array of one: what an operator with a Python number would accept."""
    return isinstance(x, np.generic) or (isinstance(x, np.ndarray) and x.ndim == 0)


def _refuse_numpy(v: Value, call: str, name: str, inputs: tuple[Any, ...]) -> NoReturn:
    """Refuse numpy applied to a traced value: ``call`` as the user wrote it, ``name`` numpy's name for it."""
    tl_name = NUMPY_TO_TL.get(name, name)
    use = f"tl.{tl_name}" if tl_name.partition(" ")[0] in TL_OPS else "tl.* ops"
    array = next((x for x in inputs if isinstance(x, np.ndarray) and x.ndim > 0), None)
    if array is not None:
        _refuse_traced(v, f"{call} combines a numpy array ({array.dtype}{list(array.shape)}) with {_text(v)} in a "
                          "kernel body: a kernel reads arrays only through its parameters (numpy would loop over "
                          "the array's elements in Python).",
                       "Pass the array as an In[Tile[...]] parameter (a tile of a Tensor at launch, X[t]), tl.load "
                       f"it, and combine the tiles with {use}.")
    _refuse_traced(v, f"{call} was applied to {_text(v)} in a kernel body: numpy computes on numbers, and a traced "
                      "tile has none (its values exist only when a task runs).",
                   f"Use {use} instead: tl ops record the computation on whole tiles (help(tl) lists them).")


def _refuse_operator(v: Value, op: str, other: Any, swap: bool) -> NoReturn:
    """``x ** 2``, ``x // 2``, ``x % 2`` on a tile: tl has no power, floor-division or remainder op."""
    other_text = _text(other) if isinstance(other, Value) else repr(other)
    side = "left" if swap else "right"
    if op == "**":
        name = "power"
        hint = ("Square with tl.mul(x, x) (or x * x); use tl.sqrt(x) for x ** 0.5 and tl.rsqrt(x) for x ** -0.5; "
                "another power p of a positive x is tl.exp(tl.muls(tl.log(x), p)).")
    elif op == "//":
        name = "floor-division"
        hint = ("Divide with tl.div(a, b) (or a / b): integer tiles divide to an integer (operands of one sign), "
                "and a float quotient tl.cast to an integer dtype is rounded to the nearest integer, halves to even "
                "(tl has no floor op).")
    else:
        name = "remainder"
        hint = ("For integer tiles of one sign, compute it as tl.sub(a, tl.mul(tl.div(a, b), b)) "
                "(a - (a / b) * b).")
    _refuse_traced(v, f"`{op}` on {_text(v)} (with {other_text} on the {side}): tl has no {name} op, so a tile "
                      f"does not support `{op}`.", hint)


def _refuse_comparison(v: Value, op: str, other: Any) -> NoReturn:
    fn = {"<": "lt", "<=": "le", ">": "gt", ">=": "ge", "==": "eq", "!=": "ne"}[op]
    _refuse_traced(v, f"`{op}` on {_text(v)} in a kernel body: Python comparisons give one answer at trace time, not "
                      "one per element.",
                   f"Use tl.{fn}(a, b) for the elementwise U8 mask, and tl.where(mask, x, y) to pick per element.")


@dataclass(frozen=True, slots=True)
class Literal:
    """A Python scalar used as an operand; takes the dtype of the tile it meets."""

    value: float | int
    dtype: DType

    def __str__(self) -> str:
        return repr(self.value)


Operand = Value | Literal


class ScalarRefused(Exception):
    """A Python number with no value in a dtype: ``kind`` says why, ``text`` says it (``2.7 is not a whole ...``)."""

    def __init__(self, kind: str, text: str) -> None:
        super().__init__(text)
        self.kind, self.text = kind, text


def _refused(kind: str, text: str) -> NoReturn:
    raise ScalarRefused(kind, text)


def scalar_value(x: Any, dtype: DType) -> float | int:
    """The number ``x`` as a value of ``dtype`` (a Python float or int), or ScalarRefused: integer dtypes take only
    whole, finite numbers inside their range (numpy would truncate 2.7 to 2), float dtypes only values inside their
    finite range unless ``x`` is itself inf or nan (1e6 would become inf in F16); bools and non-numbers never.
    The one check behind tl literals and scalar kernel arguments."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)):
        _refused("type", f"{type(x).__name__} {x!r} is not a real number (int or float).")
    if dtype.is_float:
        try:
            value = float(x)
        except OverflowError:
            _refused("too_large", f"{x!r} is too large for any floating-point dtype ({dtype}).")
        top = float(dtype.finfo.max)  # (BF16's through ml_dtypes, imported on first use)
        if math.isfinite(value) and math.fabs(value) > top:  # it would be inf in the dtype
            _refused("float_range", f"{x!r} is outside the range of {dtype} (largest finite {top:g}).")
        return value
    if isinstance(x, (float, np.floating)):
        if not math.isfinite(x):
            _refused("nonfinite", f"{x!r} has no {dtype} value: {dtype} is an integer dtype, with no nan or inf.")
        if x != math.floor(x):
            _refused("not_whole", f"{x!r} is not a whole number, so it has no {dtype} value ({dtype} is an integer "
                                  "dtype; it would be truncated).")
    v = int(x)
    info = np.iinfo(dtype.np_dtype)
    if not info.min <= v <= info.max:
        _refused("int_range", f"{x!r} is outside the range of {dtype} ({info.min}..{info.max}).")
    return v


class OpAttrs(tuple[tuple[str, Any], ...]):
    """An op's parameters: a tuple of ``(key, value)`` pairs (what the printer and the simulator iterate) that also
    reads like the reference's ``attrs`` dict: ``op.attrs["dtype"]``, ``.get``, ``.keys()``, ``.items()``,
    ``"k" in op.attrs``. ``implied`` holds what the reference records and ptort_lab's op always has (a load's
    ``offset`` (0, 0)): readable by key, never iterated, so the IR text does not change."""

    implied: dict[str, Any]

    def __new__(cls, pairs: Any = (), implied: dict[str, Any] | None = None) -> OpAttrs:
        self = super().__new__(cls, pairs)
        self.implied = dict(implied or {})
        return self

    def _lookup(self) -> dict[str, Any]:
        return {**self.implied, **dict(tuple.__iter__(self))}

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, str):
            return self._lookup()[key]
        return tuple.__getitem__(self, key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            return key in self._lookup()
        return tuple.__contains__(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """The value of ``key``, else ``default`` (as ``dict.get``)."""
        return self._lookup().get(key, default)

    def keys(self) -> Any:
        """The parameter names (as ``dict.keys``)."""
        return self._lookup().keys()

    def values(self) -> Any:
        """The parameter values (as ``dict.values``)."""
        return self._lookup().values()

    def items(self) -> Any:
        """The ``(name, value)`` pairs (as ``dict.items``)."""
        return self._lookup().items()


def _implied_attrs(kind: OpKind, result: Value | None) -> dict[str, Any]:
    """The reference's attrs that ptort_lab's op has by construction (readable as ``op.attrs[key]``)."""
    if kind in (OpKind.LOAD, OpKind.STORE):
        return {"offset": (0, 0)}  # tl.load/tl.store refuse any other offset
    if kind is OpKind.IOTA_U32 and result is not None:
        return {"cols": result.shape[1]}
    return {}


@dataclass(frozen=True, slots=True)
class Op:
    """One traced tile operation. ``str(op)`` is the short form: ``load src``, ``cast F16``, ``store dst``."""

    kind: OpKind
    result: Value | None
    operands: tuple[Operand, ...]
    attrs: tuple[tuple[str, Any], ...] = ()
    loc: SourceLocation | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        # (frozen: set through object) the pairs as given, readable by key as the reference's dict
        object.__setattr__(self, "attrs", OpAttrs(self.attrs, _implied_attrs(self.kind, self.result)))

    def attr(self, key: str, default: Any = None) -> Any:
        """The op's parameter ``key`` (``dtype`` of a cast, ``cmp`` of a comparison), else ``default``."""
        for k, v in self.attrs:
            if k == key:
                return v
        return default

    def __str__(self) -> str:
        from .printer import short_op  # the printer imports the IR: one layer, "ir : printer"
        return short_op(self)

    __repr__ = __str__


@dataclass(frozen=True, slots=True)
class KernelParam:
    """A kernel parameter: name, direction, type, and the Value standing for it in the body (None for Constexpr).

    It is also the reference's ``(name, value)`` pair: ``name, v = ir.params[0]``, ``ir.params[0][1].shape``."""

    name: str
    direction: Direction
    type: Any
    value: Value | None = None

    @property
    def is_tile(self) -> bool:
        """Whether this is a tile (else a scalar)."""
        return isinstance(self.type, TileType)

    def __len__(self) -> int:
        return 2

    def __iter__(self) -> Iterator[Any]:
        return iter((self.name, self.value))

    def __getitem__(self, index: Any) -> Any:
        return (self.name, self.value)[index]


@dataclass(frozen=True, slots=True)
class KernelIR:
    """A traced kernel: its parameters and ops in program order. ``str(ir)`` prints one line per op."""

    name: str
    params: tuple[KernelParam, ...]
    ops: tuple[Op, ...]
    constexprs: tuple[tuple[str, Any], ...] = ()
    # The reference's per-kernel hints for its code generator: kept for its code, read by nothing here.
    schedule_hints: dict[str, Any] = field(default_factory=dict, compare=False, hash=False)

    def param(self, name: str) -> KernelParam:
        """The parameter called ``name`` (KeyError if there is none)."""
        for p in self.params:
            if p.name == name:
                return p
        raise KeyError(name)

    def __str__(self) -> str:
        from .printer import print_kernel  # the printer imports the IR: one layer, "ir : printer"
        return print_kernel(self)

    __repr__ = __str__

    def dump(self) -> str:
        """The printed IR (the reference's name for ``str(ir)``)."""
        return str(self)


# -- the trace: what tracing a kernel body records ------------------------------------------------------------------
@dataclass
class KernelTrace:
    """The tracing state while a kernel body runs: its parameters and the ops recorded so far."""

    kernel_name: str
    params: dict[str, KernelParam] = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)
    next_id: int = 1
    regions: dict[int, KernelParam] = field(default_factory=dict)  # a slice of a parameter -> that parameter

    def new_value(self, type_: TileType | ScalarType, name: str | None = None) -> Value:
        """A fresh SSA value of ``type_`` (named when it stands for a parameter)."""
        v = Value(self.next_id, type_, name)
        self.next_id += 1
        return v

    def emit(self, kind: OpKind, result_type: TileType | ScalarType, operands: tuple[Operand, ...],
             attrs: tuple[tuple[str, Any], ...] = ()) -> Value:
        """Record an op that makes a value, at the user's line; returns the value."""
        result = self.new_value(result_type)
        self.ops.append(Op(kind, result, operands, attrs, user_location()))
        return result

    def emit_effect(self, kind: OpKind, operands: tuple[Operand, ...], attrs: tuple[tuple[str, Any], ...] = ()) -> None:
        """Record an op that makes no value (a store), at the user's line."""
        self.ops.append(Op(kind, None, operands, attrs, user_location()))

    def param_of(self, value: Value) -> KernelParam | None:
        """The kernel parameter ``value`` stands for, else None (an op result)."""
        if value.name is None:
            return None
        p = self.params.get(value.name)
        return p if p is not None and p.value == value else None

    def region_of(self, value: Value) -> KernelParam | None:
        """The tile parameter ``value`` is or is a region of (a ``tl.slice`` of a parameter), else None."""
        return self.param_of(value) or self.regions.get(value.id)


_current_trace: contextvars.ContextVar[KernelTrace | None] = contextvars.ContextVar("ptort_kernel_trace", default=None)


def active_trace() -> KernelTrace | None:
    """The kernel being traced in this context, else None."""
    return _current_trace.get()


def current_trace(op_name: str) -> KernelTrace:
    """The kernel being traced, or a DSLUsageError naming the tl op that was called outside @kernel."""
    trace = _current_trace.get()
    if trace is None:
        raise DSLUsageError(f"tl.* must be used inside @kernel function (tl.{op_name} was called outside one).",
                            hint="Decorate the function that calls it with @kernel, then launch it from a @workload.")
    return trace


@contextmanager
def tracing(trace: KernelTrace) -> Iterator[KernelTrace]:
    """Make ``trace`` the kernel being traced while the block runs."""
    token = _current_trace.set(trace)
    try:
        yield trace
    finally:
        _current_trace.reset(token)


__all__ = ["OpKind", "Value", "Literal", "ScalarRefused", "scalar_value",
           "Op", "KernelParam", "KernelIR", "BINARY", "UNARY", "ACTIVATION",
           "TRANSCENDENTAL", "ROW_REDUCE", "COL_REDUCE", "REDUCE", "MEMORY", "OPERATORS", "TL_OPS", "KernelTrace",
           "active_trace", "current_trace", "tracing"]
