"""Arguments the reference (PTO-WSP v9) names otherwise than ptort_lab (``cond(predicate=...)`` for ``cond(pred)``):
either name is taken, and both at once is refused, since which of the two values was meant would be a guess."""
from __future__ import annotations

from typing import Any

from ..errors import PtortTypeError


class _Unset:
    """The mark of an argument not given (None cannot be it: ``cond(p, t, None)`` means "no otherwise branch")."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<not given>"


UNSET: Any = _Unset()

_ORDINALS = {1: "1st", 2: "2nd", 3: "3rd"}


def _ours(name: str, position: int) -> str:
    """How a message names our spelling: ``pred (its 1st argument, or pred=)``."""
    return f"{name} (its {_ORDINALS[position]} argument, or {name}=)"


def one_of(api: str, ours: str, position: int, our_value: Any, theirs: str, their_value: Any, usage: str) -> Any:
    """The argument given as ``ours`` (ptort_lab's name or its ``position``) or as ``theirs=`` (the reference's);
    UNSET when neither. Given both ways, a PtortTypeError names both spellings."""
    if our_value is UNSET:
        return their_value
    if their_value is not UNSET:
        raise PtortTypeError(f"{api} got both {_ours(ours, position)} and {theirs}=: they are one argument, spelled "
                             "as ptort_lab and as the reference (PTO-WSP v9) name it.",
                             hint=f"Give it once, under either name: {usage}.")
    return our_value


def required(api: str, ours: str, position: int, theirs: str | None, value: Any, usage: str) -> Any:
    """``value``, or a PtortTypeError saying the argument is missing (by both its spellings)."""
    if value is UNSET:
        also = f"; the reference's {theirs}=" if theirs is not None else ""
        raise PtortTypeError(f"{api} is missing {ours} (its {_ORDINALS[position]} argument{also}).",
                             hint=f"Write {usage}.")
    return value


__all__ = ["UNSET", "one_of", "required"]
