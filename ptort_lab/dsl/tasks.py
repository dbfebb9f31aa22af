"""Task: one concrete kernel launch, as listing a workload or running a process body makes it."""
from __future__ import annotations

import contextvars
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Union

import numpy as np

from ..errors import PtortValueError, SourceLocation, raise_user_error
from .expr import refuse_placeholders

if TYPE_CHECKING:
    from .kernel import Kernel

#: A launch's pinned cost: a number of cycles, or a function of the task giving it (None: not pinned).
Cycles = Union[int, Callable[["Task"], Any], None]

#: What an abstract task (named by string, ``task("process", [b], [])``, or a launch with every argument None) costs
#: when it pins no cycles=: the reference gives such tasks no time (no cycles at 96b0376, not run at HEAD); one cycle
#: keeps each a visible span on its lane, in order, without pretending to model work.
ABSTRACT_TASK_CYCLES = 1

#: The largest cycle count a task may pin, or a channel hop cost: a trace keeps times as JSON numbers, which are exact
#: (in JavaScript readers, plots and Perfetto) up to ``2**53``, and Trace.save/load refuse a time past it.
MAX_CYCLES = 2**53

_NO_DEFAULT: Any = object()


def cycles_bound_hint(what: str) -> str:
    """The hint for a cycle count past ``MAX_CYCLES`` (``what`` says what it is)."""
    return (f"{what} must be at most 2**53 = {MAX_CYCLES:,} cycles (about 58 days at 1.8 GHz): a trace keeps times "
            "as JSON numbers, exact only up to 2**53, so a run with a longer time could not be saved or loaded.")


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
        import difflib  # an error path only: not loaded by `import ptort_lab`
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
        """The cost pinned by ``cycles=`` (an int, or a function of this task), else None; an abstract task (no
        kernel to run) that pins none costs ``ABSTRACT_TASK_CYCLES``."""
        c = self.cycles
        if c is None:
            return ABSTRACT_TASK_CYCLES if self.kernel_ref is None else None
        if isinstance(c, int):
            if c > MAX_CYCLES:  # (task(cycles=...) should refuse it when the task is made; this is the backstop)
                raise PtortValueError(f"task {self.id} ({self.kernel}) pins cycles={c!r}; a task's cycles must be an "
                                      "int in 0..2**53.", hint=cycles_bound_hint("A task's cycles"),
                                      where=self.loc, locate=False)
            return c
        try:
            value = c(self)
        except Exception as e:  # noqa: BLE001 - the user's cost function
            raise_user_error(e, f"the cycles= function of task {self.id} ({self.kernel})")
        if value.__class__ is int and 0 <= value <= MAX_CYCLES:  # (the usual answer, first: once per task)
            return value
        if isinstance(value, np.integer) and 0 <= value <= MAX_CYCLES:
            return int(value)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
            raise PtortValueError(f"the cycles= function of task {self.id} ({self.kernel}) returned {value!r}; it "
                                  "must return an int >= 0.", hint="Return a whole number of cycles.",
                                  where=self.loc, locate=False)
        if value > MAX_CYCLES:
            raise PtortValueError(f"the cycles= function of task {self.id} ({self.kernel}) returned {value!r}; it "
                                  "must return an int in 0..2**53.", hint=cycles_bound_hint("A task's cycles"),
                                  where=self.loc, locate=False)
        return int(value)

    def __repr__(self) -> str:
        args = ""
        if isinstance(self.resources, dict):
            args = ", ".join(f"{k}={v!r}" for k, v in self.resources.items())
        where = f" @{self.process}" if self.process else ""
        return f"Task({self.id}: {self.kernel}{self.params}({args}){where})"


#: The concrete Task of a task node under loop bindings (``bindings.task_factory`` builds one per node).
TaskFactory = Callable[[dict[str, Any]], Task]

# -- host kernels: Python callables a Program runs for the abstract tasks of that name (Program.register_kernel) ----
_host_kernels: contextvars.ContextVar[Mapping[str, Callable[..., Any]] | None] = \
    contextvars.ContextVar("ptort_host_kernels", default=None)


@contextmanager
def running_host_kernels(kernels: Mapping[str, Callable[..., Any]]) -> Iterator[None]:
    """Make ``kernels`` (task name -> callable) the host kernels of the run inside the ``with``."""
    token = _host_kernels.set(dict(kernels) if kernels else None)
    try:
        yield
    finally:
        _host_kernels.reset(token)


def host_kernel(task: Task) -> Callable[..., Any] | None:
    """The host kernel registered for an abstract task's name in the run under way, else None."""
    kernels = _host_kernels.get()
    if kernels is None or task.kernel_ref is not None:
        return None
    return kernels.get(task.kernel)


def call_host_kernel(task: Task, fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Run a registered host kernel on one task's resources (a list by position, as the reference calls it; a dict
    by name); an error in it names the task."""
    try:
        fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - the user's host kernel
        raise_user_error(e, f"the kernel registered as {task.kernel!r} (task {task.id}, params {task.params})")


__all__ = ["Task", "Cycles", "TaskFactory", "ABSTRACT_TASK_CYCLES", "MAX_CYCLES", "cycles_bound_hint",
           "running_host_kernels", "host_kernel", "call_host_kernel"]
