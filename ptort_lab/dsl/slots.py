"""Runtime slots (the reference's HEAD API): integers read from tensors in program order, for data-driven control.

``slot_load_u64(0, EffSeq[b, s])`` inside a workload or process body reads one element of a tensor into slot 0 when
that statement is reached; ``slot_set_u64(1, expr)`` sets one; ``slot_u64(0)`` (also ``slot_i64``, ``slot_bool``)
is an expression usable wherever a loop expression is: ``P.when(slot_u64(0) <= 2048)``, an index, a dispatch key.

The table belongs to one run: it is cleared when a workload is listed (``enumerate()``, a data-parallel run) or a
pipeline starts. A data-parallel workload is listed before any of its tasks computes anything, so its loads read
the tensors' host data (inputs); in a pipeline, a load reads what the tasks before it in simulated time wrote.
"""
from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from ..errors import PtortTypeError, PtortValueError, SourceLocation
from .expr import Expr, evaluate
from .types import TensorView

_U64_MAX = 2**64 - 1
_values: dict[int, int] = {}


def reset() -> None:
    """Forget every slot (a new run)."""
    _values.clear()


def _check_slot(slot: Any, api: str) -> int:
    if isinstance(slot, bool) or not isinstance(slot, (int, np.integer)) or slot < 0:
        raise PtortValueError(f"{api} needs a slot number (int >= 0), got {slot!r}.",
                              hint=f"Write {api.split('(')[0]}(0, ...).")
    return int(slot)


def store(slot: int, value: Any, what: str, where: SourceLocation | None) -> None:
    """Put ``value`` (a whole number in the u64 or i64 range) into ``slot``."""
    if isinstance(value, (bool, np.bool_)):
        value = int(value)
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)
    if not isinstance(value, (int, np.integer)):
        raise PtortTypeError(f"{what} is {type(value).__name__} {value!r}; slots hold whole numbers.",
                             hint="Load an integer element (or one holding a whole number).", where=where,
                             locate=where is None)
    value = int(value)
    if not -(2**63) <= value <= _U64_MAX:
        raise PtortValueError(f"{what} is {value}, outside 64 bits.", hint="Slots hold u64 / i64 values.",
                              where=where, locate=where is None)
    _values[slot] = value


def read(slot: int) -> int:
    try:
        return _values[slot]
    except KeyError:
        raise PtortValueError(f"slot {slot} is read before anything was stored in it.",
                              hint=f"Put slot_load_u64({slot}, X[...]) or slot_set_u64({slot}, value) before the "
                                   "statement that reads it, in the same workload or process body.") from None


def load_element(view: TensorView, row: int, col: int, bindings: Mapping[str, Any],
                 where: SourceLocation | None) -> Any:
    """Element [row, col] of the tile ``view`` under ``bindings``, from the tensor's current data."""
    data = view.base.data
    if data is None:
        raise PtortValueError(f"slot_load_u64 reads {view!r}, which has no data yet.",
                              hint="A data-parallel workload is listed before its tasks run, so slots can only "
                                   "read input tensors (Tensor(data=...)); in a pipeline, load after the task that "
                                   "writes it.", where=where, locate=where is None)
    tile = data[view.resolve(bindings, where)]
    if tile.ndim != 2 or not (0 <= row < tile.shape[0] and 0 <= col < tile.shape[1]):
        raise PtortValueError(f"slot_load_u64 reads element [{row}, {col}] of a tile of shape {tile.shape}.",
                              hint="Give row= and col= inside the tile.", where=where, locate=where is None)
    return tile[row, col].item()


class SlotExpr(Expr):
    """``slot_u64(i)`` / ``slot_i64(i)`` / ``slot_bool(i)``: the value in slot i when the expression is evaluated."""

    __slots__ = ("slot", "kind")

    def __init__(self, slot: int, kind: str) -> None:
        self.slot, self.kind = slot, kind

    def evaluate(self, bindings: Mapping[str, Any]) -> Any:
        v = read(self.slot)
        if self.kind == "bool":
            return v != 0
        if self.kind == "i64":
            return v - 2**64 if v >= 2**63 else v
        return v & _U64_MAX

    def __repr__(self) -> str:
        return f"slot_{self.kind}({self.slot})"

    __str__ = __repr__


def slot_u64(slot: int) -> SlotExpr:
    return SlotExpr(_check_slot(slot, "slot_u64(slot)"), "u64")


def slot_i64(slot: int) -> SlotExpr:
    return SlotExpr(_check_slot(slot, "slot_i64(slot)"), "i64")


def slot_bool(slot: int) -> SlotExpr:
    return SlotExpr(_check_slot(slot, "slot_bool(slot)"), "bool")


def check_value(value: Any) -> Any:
    """``slot_set_u64``'s value: an int or a loop/slot expression."""
    if isinstance(value, Expr) or (isinstance(value, (int, np.integer)) and not isinstance(value, bool)):
        return value
    raise PtortTypeError(f"slot_set_u64 needs an int or a loop expression, got {type(value).__name__} {value!r}.",
                         hint="Write slot_set_u64(1, b * 4) or slot_set_u64(1, 2048).")


__all__ = ["slot_u64", "slot_i64", "slot_bool", "SlotExpr", "reset", "read", "store", "load_element", "evaluate"]
