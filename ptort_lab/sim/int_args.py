"""Whole-number arguments of the NPU model's public methods: numpy integers taken as ints, anything else refused
with a ptort_lab error (the compiled build would raise a bare TypeError; plain Python would price with floats)."""
from __future__ import annotations

from typing import Any

from ..dsl.types import is_integer
from ..errors import PtortTypeError


def as_int(value: Any) -> Any:
    """``value`` as a plain int when it is an integer of another type (numpy's): the compiled build takes only ints
    where the annotations say int; anything else as it is (for the checks after it to say what is wrong)."""
    return int(value) if type(value) is not int and is_integer(value) else value


def whole(value: Any, what: str) -> int:
    """``value`` as a plain int (a numpy integer too); a float, a bool or anything else raises a PtortTypeError
    naming ``what`` (e.g. "NpuRun.finish_run(makespan=...)")."""
    value = as_int(value)
    if type(value) is int:
        return value
    raise PtortTypeError(f"{what} is {type(value).__name__} {value!r}; it must be a whole number (an int).",
                         hint="Pass an int: times are whole cycles, cores and sizes whole numbers (round a float "
                              "with int(...) if that is what you mean).", locate=True)


__all__ = ["as_int", "whole"]
