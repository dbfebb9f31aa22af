"""Task-graph configuration (the reference's R9 API): how a data-parallel run finds, orders and prices its tasks.

The reference defines these as placeholders and reads only the window. Here the ones that mean something for a
simulated run take effect (``ptort_lab.sim.runner``), the rest are recorded:

- ``Deps``: ``infer_tensor_map_exact()`` (default), ``infer_bytes_overlap()`` and ``hybrid()`` infer dependencies
  from the tensor regions tasks read and write (the inference already treats a region and its sub-regions as
  overlapping); ``explicit()`` infers none, so only program order on each core orders tasks.
- ``ReadyPolicy``: ``fifo()`` (default) issues in program order; ``priority(fn)`` issues the task with the lowest
  ``fn(task)`` first among those whose dependencies are issued; ``work_steal()`` lets an idle core take the next
  task (as ``DispatchPolicy.work_steal`` over the dispatch policy's cores).
- ``TracePolicy``: ``cycles(cost_fn)`` pins every task that pins no cost of its own to ``cost_fn(task)`` cycles;
  ``none()`` (default) changes nothing (every run is traced).
- ``StartPolicy`` and ``Pools`` are recorded only: the simulator does not model orchestration time or the AICPU's
  ready queues.
"""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Callable, ClassVar, Mapping

from ..errors import PtortTypeError, PtortValueError
from .schedule import TaskWindow


class DepsMode(enum.Enum):
    """How a task graph finds dependencies: inferred from the tensor regions tasks read and write (exactly, or by
    overlapping bytes), only the explicit ones, or both (``HYBRID``)."""

    INFER_TENSOR_MAP_EXACT = "infer_tensor_map_exact"
    INFER_BYTES_OVERLAP = "infer_bytes_overlap"
    EXPLICIT = "explicit"
    HYBRID = "hybrid"


@dataclass(frozen=True)
class Deps:
    """How dependencies between tasks are found."""

    mode: DepsMode = DepsMode.INFER_TENSOR_MAP_EXACT
    infer: DepsMode = DepsMode.INFER_TENSOR_MAP_EXACT
    explicit_edges: bool = False

    @staticmethod
    def infer_tensor_map_exact() -> Deps:
        return Deps(DepsMode.INFER_TENSOR_MAP_EXACT)

    @staticmethod
    def infer_bytes_overlap() -> Deps:
        return Deps(DepsMode.INFER_BYTES_OVERLAP, DepsMode.INFER_BYTES_OVERLAP)

    @staticmethod
    def explicit() -> Deps:
        return Deps(DepsMode.EXPLICIT, explicit_edges=True)

    @staticmethod
    def hybrid(infer: DepsMode = DepsMode.INFER_TENSOR_MAP_EXACT, explicit: bool = True) -> Deps:
        return Deps(DepsMode.HYBRID, infer, explicit)

    @property
    def infers(self) -> bool:
        return self.mode is not DepsMode.EXPLICIT

    @property
    def _kwargs(self) -> Mapping[str, Any]:
        """The reference's ``deps._kwargs``, read-only: ``hybrid()``'s ``infer`` and ``explicit`` (``explicit_edges``);
        the other modes have none."""
        if self.mode is not DepsMode.HYBRID:
            return MappingProxyType({})
        return MappingProxyType({"infer": self.infer, "explicit": self.explicit_edges})


@dataclass(frozen=True)
class _Policy:
    """A policy kind with its function or count (the reference keeps them in ``_kind`` and ``_kwargs``)."""

    kind: str
    fn: Callable[..., Any] | None = field(default=None, compare=False)
    n: int = 0
    # kind -> the reference's ``_kwargs`` key of its function (or, for "n", of its count)
    _KWARG_KEYS: ClassVar[dict[str, str]] = {}

    # -- the reference's private names (its tests read them): read-only aliases ---------------------------------
    @property
    def _kind(self) -> str:
        """The reference's ``policy._kind``: ``kind``."""
        return self.kind

    @property
    def _kwargs(self) -> Mapping[str, Any]:
        """The reference's ``policy._kwargs``, read-only: the function (``priority_fn``, ``cost_fn``, ``pool_fn``) or
        the count (``n``) under the reference's key; kinds without one have none."""
        key = self._KWARG_KEYS.get(self.kind)
        if key is None:
            return MappingProxyType({})
        return MappingProxyType({key: self.n if key == "n" else self.fn})


class ReadyPolicy(_Policy):
    """Which ready task is issued next."""

    _KWARG_KEYS: ClassVar[dict[str, str]] = {"priority": "priority_fn"}

    @staticmethod
    def fifo() -> ReadyPolicy:
        return ReadyPolicy("fifo")

    @staticmethod
    def work_steal() -> ReadyPolicy:
        return ReadyPolicy("work_steal")

    @staticmethod
    def priority(priority_fn: Callable[[Any], Any]) -> ReadyPolicy:
        if not callable(priority_fn):
            raise PtortTypeError(f"ReadyPolicy.priority(priority_fn) needs a function, got {priority_fn!r}.",
                                 hint='Write ReadyPolicy.priority(lambda t: -t.get("b")) (lower runs first).')
        return ReadyPolicy("priority", priority_fn)


class StartPolicy(_Policy):
    """When workers start relative to orchestration (recorded only)."""

    _KWARG_KEYS: ClassVar[dict[str, str]] = {"threshold": "n"}

    @staticmethod
    def threshold(n: int) -> StartPolicy:
        if isinstance(n, bool) or not isinstance(n, int) or n < 0:
            raise PtortValueError(f"StartPolicy.threshold(n) needs an int >= 0, got {n!r}.",
                                  hint="StartPolicy.threshold(100) starts after 100 tasks are ready.")
        return StartPolicy("threshold", n=n)

    @staticmethod
    def after_orchestration() -> StartPolicy:
        return StartPolicy("after_orchestration")


class TracePolicy(_Policy):
    """``cycles(cost_fn)`` prices tasks that pin no cost with ``cost_fn(task)``; ``none()`` changes nothing."""

    _KWARG_KEYS: ClassVar[dict[str, str]] = {"cycles": "cost_fn"}

    @staticmethod
    def none() -> TracePolicy:
        return TracePolicy("none")

    @staticmethod
    def cycles(cost_fn: Callable[[Any], int] | None = None) -> TracePolicy:
        if cost_fn is not None and not callable(cost_fn):
            raise PtortTypeError(f"TracePolicy.cycles(cost_fn) needs a function task -> cycles, got {cost_fn!r}.",
                                 hint="Write TracePolicy.cycles(lambda t: 100).")
        return TracePolicy("cycles", cost_fn)


class Pools(_Policy):
    """How tasks are routed to ready queues (recorded only)."""

    _KWARG_KEYS: ClassVar[dict[str, str]] = {"custom": "pool_fn"}

    @staticmethod
    def single() -> Pools:
        return Pools("single")

    @staticmethod
    def by_exec_unit() -> Pools:
        return Pools("by_exec_unit")

    @staticmethod
    def custom(pool_fn: Callable[[Any], str]) -> Pools:
        if not callable(pool_fn):
            raise PtortTypeError(f"Pools.custom(pool_fn) needs a function task -> pool name, got {pool_fn!r}.",
                                 hint='Write Pools.custom(lambda t: "cube" if t.kernel == "mm" else "vec").')
        return Pools("custom", pool_fn)


# The reference's task_graph() window when none is given (its workload.py: ``window or TaskWindow(8192, "tasks",
# WindowMode.STALL)``), which its runs enforce; so does a run here, through ``workload.schedule.window``.
DEFAULT_WINDOW = TaskWindow(8192)


@dataclass(frozen=True)
class TaskGraphConfig:
    """Everything ``task_graph(...)`` recorded, with the reference's defaults, the window included: ``TaskWindow(8192)``
    when none was given. The run caps tasks in flight by ``workload.schedule.window``, the same window."""

    deps: Deps = Deps()
    pools: Any = Pools("single")
    ready: Any = ReadyPolicy("fifo")
    start: Any = StartPolicy("after_orchestration")
    trace: Any = TracePolicy("none")
    window: TaskWindow | None = DEFAULT_WINDOW


_ARGS = {"deps": (Deps, "Deps.infer_tensor_map_exact()"), "pools": (Pools, "Pools.single()"),
         "ready": (ReadyPolicy, "ReadyPolicy.fifo()"), "start": (StartPolicy, "StartPolicy.after_orchestration()"),
         "trace": (TracePolicy, "TracePolicy.cycles(lambda t: 100)")}


def task_graph_config(window: TaskWindow | None = None, **given: Any) -> TaskGraphConfig:
    """Check ``task_graph(...)``'s arguments (None = the default, ``DEFAULT_WINDOW`` for the window) and bundle them."""
    for name, value in given.items():
        want, example = _ARGS[name]
        if value is not None and not isinstance(value, want):
            raise PtortTypeError(f"task_graph({name}=...) takes a {want.__name__}, got {value!r}.",
                                 hint=f"Build one with its constructors, e.g. {name}={example}.")
    return TaskGraphConfig(**{k: v for k, v in given.items() if v is not None},
                           window=DEFAULT_WINDOW if window is None else window)


__all__ = ["DepsMode", "Deps", "ReadyPolicy", "StartPolicy", "TracePolicy", "Pools", "TaskGraphConfig"]
