"""Task: one concrete kernel launch, as listing a workload or running a process body makes it."""
from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Union

import numpy as np

from ..errors import PtortValueError, SourceLocation, raise_user_error
from .expr import refuse_placeholders

if TYPE_CHECKING:
    from .kernel import Kernel

# A launch's pinned cost: a number of cycles, or a function of the task giving it.
Cycles = Union[int, Callable[["Task"], Any], None]

_NO_DEFAULT: Any = object()


@dataclass(slots=True)
class Task:
    """One concrete kernel launch: ``kernel`` is the kernel's name; ``params`` its axis values in order."""

    kernel: str
    params: list[Any]
    resources: Any
    id: int = 0
    bindings: dict[str, Any] = field(default_factory=dict)
    kernel_ref: Kernel | None = None
    cycles: Cycles = None
    loc: SourceLocation | None = None
    process: str | None = None

    def get(self, axis: str, default: Any = _NO_DEFAULT) -> Any:
        """The value of loop variable ``axis`` for this task; an unknown name is an error unless ``default``
        is given (a silent 0 would send every task of a dispatch key to core 0)."""
        if axis in self.bindings:
            return self.bindings[axis]
        if default is not _NO_DEFAULT:
            return default
        refuse_placeholders(axis, f"task {self.id} ({self.kernel}).get()")
        names = sorted(self.bindings)
        close = difflib.get_close_matches(axis, names, n=1)
        raise PtortValueError(
            f"task {self.id} ({self.kernel}) has no loop variable {axis!r}; its bindings are "
            f"{', '.join(f'{k}={v}' for k, v in sorted(self.bindings.items())) or 'none'}.",
            hint=(f"Did you mean {close[0]!r}? " if close else "")
            + "P(...) names its variables b, h, s, d, ... unless you pass names=[...]; pass a default to allow "
              "a missing name.", where=self.loc, locate=False)

    def get_axis_value(self, i: int) -> Any:
        """The ``i``-th axis value (the reference's spelling of ``params[i]``)."""
        return self.params[i]

    def pinned_cycles(self) -> int | None:
        """The cost pinned by ``cycles=`` (an int, or a function of this task), else None."""
        c = self.cycles
        if c is None or isinstance(c, int):
            return c
        try:
            value = c(self)
        except Exception as e:  # noqa: BLE001 - the user's cost function
            raise_user_error(e, f"the cycles= function of task {self.id} ({self.kernel})")
        if isinstance(value, np.integer) and value >= 0:
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise PtortValueError(f"the cycles= function of task {self.id} ({self.kernel}) returned {value!r}; it "
                                  "must return an int >= 0.", hint="Return a whole number of cycles.",
                                  where=self.loc, locate=False)
        return value

    def __repr__(self) -> str:
        args = ""
        if isinstance(self.resources, dict):
            args = ", ".join(f"{k}={v!r}" for k, v in self.resources.items())
        where = f" @{self.process}" if self.process else ""
        return f"Task({self.id}: {self.kernel}{self.params}({args}){where})"


# The concrete Task of a task node under loop bindings (``bindings.task_factory`` builds one per node).
TaskFactory = Callable[[dict[str, Any]], Task]

__all__ = ["Task", "Cycles", "TaskFactory"]
