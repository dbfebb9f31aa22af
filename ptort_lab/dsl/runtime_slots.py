"""Runtime slots (the reference's HEAD API): integer registers read from input tensors while a workload is listed,
for data-driven control flow. (Not a channel's *buffer slots*: those are the places a channel's items occupy.)

``slot_load_u64(0, EffSeq[b, s])`` inside a data-parallel workload reads one element of an input tensor into slot 0
when that statement is reached; ``slot_set_u64(1, expr)`` sets one; ``slot_u64(0)`` (also ``slot_i64``,
``slot_bool``) is an expression for conditions, indices and launch axes: ``P.when(slot_u64(0) <= 2048)``.

What is checked, and why: a workload is listed (its tasks enumerated) before any task computes, so a load may only
read a tensor no task of the workload writes (else a second run would see the first run's results), and slots
are read only while listing (a dispatch key, run later, would see the last value). Process bodies of a pipeline
run concurrently in simulated time and would share one table, so slots are refused there.

Each listing has its own table (a ``_Listing`` in a context variable), so two threads listing slot-driven
workloads at once never see each other's slots, and a listing inside another (a workload listed while one is
being listed) leaves the outer one's table as it was.
"""
from __future__ import annotations

import contextvars
from typing import Any, Mapping

import numpy as np

from ..errors import PtortTypeError, PtortValueError, SourceLocation
from .expr import Expr, SlotValueError
from .types import TensorView

_U64_MAX = 2**64 - 1


class _Listing:
    """The slot table of one listing, and the loads it made."""

    __slots__ = ("values", "loaded", "outer")

    def __init__(self, outer: _Listing | None) -> None:
        self.values: dict[int, int] = {}
        self.loaded: list[tuple[Any, SourceLocation | None, str]] = []  # (tensor, where, view text) per load
        self.outer = outer


_current: contextvars.ContextVar[_Listing | None] = contextvars.ContextVar("ptort_slot_listing", default=None)


def begin_listing() -> None:
    """A workload starts being listed (in this thread or context): an empty table, slot reads allowed."""
    _current.set(_Listing(_current.get()))


def end_listing() -> list[tuple[Any, SourceLocation | None, str]]:
    """Listing is over: slot reads are refused again (or go back to the enclosing listing's table); returns the
    loads made (to check against task writes)."""
    listing = _current.get()
    if listing is None:
        return []
    _current.set(listing.outer)
    return list(listing.loaded)


def is_listing() -> bool:
    """Whether a workload is being listed in this context (slot statements may run)."""
    return _current.get() is not None


class UnsetSlot(SlotValueError):
    """A slot read before anything was stored in it (re-raised at the reading statement)."""


def check_slot(slot: Any, api: str) -> int:
    """``slot`` as a slot number (an int >= 0), else PtortValueError naming ``api``."""
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
    listing = _current.get()
    if listing is None:
        raise PtortValueError(f"{what} is stored outside the listing of a workload.",
                              hint="Slot statements run while a data-parallel workload is listed.", where=where,
                              locate=where is None)
    listing.values[slot] = value


def read(slot: int) -> int:
    """The value in ``slot`` of the listing under way."""
    listing = _current.get()
    if listing is None:
        raise PtortValueError(f"slot_u64({slot}) is read outside the listing of a workload (e.g. in a dispatch key "
                              "or cycles function, which run after every slot statement).",
                              hint="Read slots in P.when/cond, indices and launch axes; for a key, launch with the "
                                   "slot as an axis (k[b, slot_u64(0)]) and key on t.params.")
    try:
        return listing.values[slot]
    except KeyError:
        raise UnsetSlot(f"slot {slot} is read before anything was stored in it.",
                        hint=f"Put slot_load_u64({slot}, X[...]) or slot_set_u64({slot}, value) before the "
                             "statement that reads it, in the same workload.", locate=False) from None


def load_element(view: TensorView, row: int, col: int, bindings: Mapping[str, Any],
                 where: SourceLocation | None) -> Any:
    """Element [row, col] of the tile ``view`` under ``bindings``, from the tensor's current data."""
    data = view.base.data
    if data is None:
        raise PtortValueError(f"slot_load_u64 reads {view!r}, which has no data.",
                              hint="A workload is listed before its tasks run, so slots read input tensors: give "
                                   "it data, Tensor(data=...).", where=where, locate=where is None)
    listing = _current.get()
    if listing is not None:
        listing.loaded.append((view.base, where, repr(view)))
    tile = np.asarray(data[view.resolve(bindings, where)])
    # A view may end at a scalar (EffSeq[b, s] of an [B, S] tensor), a row, or a tile.
    index = {0: (), 1: (col,), 2: (row, col)}.get(tile.ndim)
    if index is None or (tile.ndim == 1 and row) or any(not 0 <= i < n for i, n in zip(index, tile.shape)):
        raise PtortValueError(f"slot_load_u64 reads element [{row}, {col}] of {view!r}, whose shape is "
                              f"{tile.shape}.", hint="Give row= and col= inside it (a 1-D view takes col= only).",
                              where=where, locate=where is None)
    return tile[index].item()


class SlotExpr(Expr):
    """``slot_u64(i)`` / ``slot_i64(i)`` / ``slot_bool(i)``: the value in slot i when the expression is evaluated."""

    __slots__ = ("slot", "kind", "u64")

    def __init__(self, slot: int, kind: str) -> None:
        self.slot, self.kind = slot, kind
        self.u64 = kind == "u64"  # arithmetic on it is refused outside [0, 2**64) when evaluated

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
    """The value of runtime slot ``slot`` as an unsigned 64-bit integer, read when the expression is evaluated."""
    return SlotExpr(check_slot(slot, "slot_u64(slot)"), "u64")


def slot_i64(slot: int) -> SlotExpr:
    """The value of runtime slot ``slot`` as a signed 64-bit integer."""
    return SlotExpr(check_slot(slot, "slot_i64(slot)"), "i64")


def slot_bool(slot: int) -> SlotExpr:
    """Whether runtime slot ``slot`` is non-zero."""
    return SlotExpr(check_slot(slot, "slot_bool(slot)"), "bool")


def check_value(value: Any) -> Any:
    """``slot_set_u64``'s value: an int or a loop/slot expression."""
    if isinstance(value, Expr) or (isinstance(value, (int, np.integer)) and not isinstance(value, bool)):
        return value
    raise PtortTypeError(f"slot_set_u64 needs an int or a loop expression, got {type(value).__name__} {value!r}.",
                         hint="Write slot_set_u64(1, b * 4) or slot_set_u64(1, 2048).")


__all__ = ["slot_u64", "slot_i64", "slot_bool", "SlotExpr", "begin_listing", "end_listing", "is_listing", "read",
           "store", "load_element", "UnsetSlot", "check_slot", "check_value"]
