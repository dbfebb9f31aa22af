"""Schedule descriptions: dispatch, timing and window policies, and the registry of compile targets."""
from __future__ import annotations

import dataclasses
import enum
import numbers
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Callable, ClassVar, Mapping

import numpy as np

from ..errors import PtortTypeError, PtortValueError


def _check_count(n: Any, api: str, least: int = 0) -> int:
    """A count as a Python int: any integer (a numpy one from a sweep grid is the int it holds), not a bool."""
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < least:
        raise PtortValueError(f"{api} needs an int >= {least}, got {n!r}.", hint=f"Write {api.split('(')[0]}(4).")
    return int(n)


#: The most cores a data-parallel schedule may deal its tasks to (a DispatchPolicy's n, ``streams(n)``): each core a
#: run deals tasks to is a process of the simulator. The default machine has 24 AI cores, so 4,096 (as
#: ``csp.MAX_REPLICAS``, 170x the chip) is past any chip modelled, while 10**7 or 2**70 would take gigabytes (or never
#: end) before the first task ran. A run starts a process only for the cores that get tasks when it knows them
#: (runner._start_data_parallel), so raising it to model a bigger machine costs nothing for the cores left idle.
MAX_CORES = 4096


def max_cores() -> int:
    """``MAX_CORES`` as set, checked (an int >= 1, as ``sizes.checked_limit`` checks the other run limits)."""
    limit = MAX_CORES
    if isinstance(limit, numbers.Integral) and not isinstance(limit, bool) and int(limit) >= 1:
        return int(limit)
    raise PtortValueError(f"the run limit ptort_lab.dsl.schedule.MAX_CORES must be an int >= 1, got {limit!r}.",
                          hint="Set it to a core count, e.g. ptort_lab.dsl.schedule.MAX_CORES = 4096.")


def check_core_count(n: int, spelled: str) -> int:
    """Refuse a core count past ``MAX_CORES``; ``spelled`` is how the user gave it, with ``{}`` for the count (e.g.
    ``"streams({})"``). Returns ``n``."""
    limit = max_cores()
    if n > limit:
        raise PtortValueError(
            f"{spelled.format('n')} deals tasks to {n:,} cores, more than the {limit:,} a run may model "
            "(ptort_lab.dsl.schedule.MAX_CORES): each core is a process of the simulator, and the default machine "
            "has 24.",
            hint=f"Deal the tasks to as many cores as the machine you model has, e.g. {spelled.format(24)} for the "
                 "910B's 24 AI cores; to model a bigger machine, raise ptort_lab.dsl.schedule.MAX_CORES.")
    return n


# how each policy is written, with {} for its core count (check_core_count's messages)
_SPELLED = {"round_robin": "round_robin({})", "work_steal": "work_steal({})", "affinity": "affinity(key_fn, {})",
            "hash": "hash(key_fn, {})", "dispatch_by": "dispatch_by(fn, {})"}


def _cores(n: Any, kind: str) -> int:
    """A policy's core count: an int >= 0 (0: as many as streams(n), else 1), at most MAX_CORES."""
    return check_core_count(_check_count(n, _SPELLED[kind].format("n")), f"DispatchPolicy.{_SPELLED[kind]}")


def schedule_core_count(n: int, schedule: Schedule) -> int:
    """Refuse a run whose schedule deals its tasks to more than MAX_CORES cores (``n``: as many as ``dispatcher``
    gives): a policy made before MAX_CORES was lowered, ``streams(n)``, a Schedule built by hand. Returns ``n``."""
    policy = schedule.dispatch
    if policy is not None and policy.num_cores and policy.kind in _SPELLED:
        return check_core_count(n, f"DispatchPolicy.{_SPELLED[policy.kind]}")
    return check_core_count(n, "streams({})")


@dataclass(frozen=True)
class DispatchPolicy:
    """Which core runs each task of a data-parallel workload.

    ``round_robin(n)``: task i -> core i % n. ``affinity(key_fn, n)``: core key % n, so equal keys share a core.
    ``hash(key_fn, n)``: core = a mixing hash of the key % n (spreads structured keys). ``work_steal(n)``: an idle
    core takes the next ready task (greedy list scheduling). ``dispatch_by(fn, n)``: core = fn(task) % n.
    ``key_fn`` and ``fn`` receive the Task (``t.get("b")`` reads a loop binding).

    ``n`` is the number of cores. Given no ``n`` (or 0), a policy uses as many cores as the workload's
    ``.streams(n)``, else 1: every task then runs on core 0, and the run's ``stats()`` notes it. Write
    ``round_robin(24)`` to spread the tasks over the 910B's 24 AI cores.
    """

    kind: str
    num_cores: int = 0
    key_fn: Callable[[Any], int] | None = None

    @staticmethod
    def round_robin(num_aicpus: int = 0) -> DispatchPolicy:
        return DispatchPolicy("round_robin", _cores(num_aicpus, "round_robin"))

    @staticmethod
    def affinity(key_fn: Callable[[Any], int], num_aicpus: int = 0) -> DispatchPolicy:
        _check_fn(key_fn, "affinity")
        return DispatchPolicy("affinity", _cores(num_aicpus, "affinity"), key_fn)

    @staticmethod
    def hash(key_fn: Callable[[Any], int], num_aicpus: int = 0) -> DispatchPolicy:
        _check_fn(key_fn, "hash")
        return DispatchPolicy("hash", _cores(num_aicpus, "hash"), key_fn)

    @staticmethod
    def work_steal(num_aicpus: int = 0) -> DispatchPolicy:
        return DispatchPolicy("work_steal", _cores(num_aicpus, "work_steal"))

    @staticmethod
    def dispatch_by(fn: Callable[[Any], int], num_aicpus: int = 0) -> DispatchPolicy:
        _check_fn(fn, "dispatch_by")
        return DispatchPolicy("dispatch_by", _cores(num_aicpus, "dispatch_by"), fn)

    @property
    def num_aicpus(self) -> int:
        """The number of cores (the reference's name for ``num_cores``; 0: as many as ``.streams(n)``, else 1).
        Read-only, as the policy is."""
        return self.num_cores

    def __repr__(self) -> str:
        return f"DispatchPolicy.{self.kind}({self.num_cores or ''})"

    # -- the reference's private names (its tests read them): read-only aliases ---------------------------------
    @property
    def _kind(self) -> str:
        """The reference's ``policy._kind``: ``kind``."""
        return self.kind

    @property
    def _kwargs(self) -> Mapping[str, Any]:
        """The reference's ``policy._kwargs``, read-only: ``num_aicpus`` (``num_cores``) and ``key_fn`` (affinity,
        hash) or ``fn`` (dispatch_by); ``work_steal()`` has none unless given a core count."""
        out: dict[str, Any] = {}
        if self.kind in ("affinity", "hash"):
            out["key_fn"] = self.key_fn
        elif self.kind == "dispatch_by":
            out["fn"] = self.key_fn
        if self.kind != "work_steal" or self.num_cores:
            out["num_aicpus"] = self.num_cores
        return MappingProxyType(out)


def _check_fn(fn: Any, api: str) -> None:
    if not callable(fn):
        raise PtortTypeError(f"DispatchPolicy.{api} needs a key function, got {fn!r}.",
                             hint=f'Write DispatchPolicy.{api}(lambda t: t.get("b"), 4).')


@dataclass(frozen=True)
class TimingPolicy:
    """When a data-parallel run issues its tasks (effects: ``ptort_lab.sim.issue``). ``immediate`` (an attribute, as
    in the reference) issues at once; ``batched(n)``, ``interleaved(s)`` and ``rate_limit(tasks_per_ms)``."""

    kind: str = "immediate"
    value: float = 0
    immediate: ClassVar[TimingPolicy]  # set below: the policy itself, as the reference spells it

    def __post_init__(self) -> None:
        v = self.value
        if isinstance(v, np.integer):  # numpy counts and rates are as good as Python ones
            object.__setattr__(self, "value", v := int(v))
        elif isinstance(v, np.floating):
            object.__setattr__(self, "value", v := float(v))
        if self.kind in ("batched", "interleaved"):
            _check_count(v, f"TimingPolicy.{self.kind}(n)", least=1)
        elif self.kind == "rate_limit":
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 < v < float("inf"):
                raise PtortValueError(f"TimingPolicy.rate_limit(tasks_per_ms) needs a number > 0, got {v!r}.",
                                      hint="TimingPolicy.rate_limit(100) issues at most 100 tasks per millisecond.")
            try:
                object.__setattr__(self, "value", float(v))  # the issue times are computed in floats
            except OverflowError:
                raise PtortValueError(f"TimingPolicy.rate_limit(tasks_per_ms) got about 10**{len(str(v)) - 1}, "
                                      "beyond any float rate.",
                                      hint="Use TimingPolicy.immediate to issue tasks without a rate limit.") from None
        elif self.kind != "immediate":
            raise PtortValueError(f"unknown TimingPolicy kind {self.kind!r}.",
                                  hint="Use TimingPolicy.immediate, .batched(n), .interleaved(s) or .rate_limit(r).")

    def __call__(self) -> TimingPolicy:
        """``TimingPolicy.immediate()`` works like ``TimingPolicy.immediate`` (the reference has the attribute)."""
        return self

    # -- the reference's private names (its tests read them): read-only aliases ---------------------------------
    @property
    def _kind(self) -> str:
        """The reference's ``policy._kind``: ``kind``."""
        return self.kind

    @property
    def _kwargs(self) -> Mapping[str, Any]:
        """The reference's ``policy._kwargs``, read-only: ``value`` under the reference's key (``n`` for batched,
        ``streams`` for interleaved, ``tasks_per_ms`` for rate_limit; immediate has none)."""
        key = _TIMING_KEYS.get(self.kind)
        return MappingProxyType({} if key is None else {key: self.value})

    @staticmethod
    def batched(n: int) -> TimingPolicy:
        return TimingPolicy("batched", n)

    @staticmethod
    def interleaved(streams: int) -> TimingPolicy:
        return TimingPolicy("interleaved", streams)

    @staticmethod
    def rate_limit(tasks_per_ms: float) -> TimingPolicy:
        return TimingPolicy("rate_limit", tasks_per_ms)


TimingPolicy.immediate = TimingPolicy("immediate")
_TIMING_KEYS = {"batched": "n", "interleaved": "streams", "rate_limit": "tasks_per_ms"}


class WindowMode(enum.Enum):
    """What a full TaskWindow does: ``STALL`` waits for a task to finish (the one simulated). ``ABORT`` and
    ``BENCHMARK``, the reference's other modes, build a TaskWindow but are refused when it reaches a run."""

    STALL = "stall"
    ABORT = "abort"
    BENCHMARK = "benchmark"


_WINDOW_UNITS = ("tasks", "bytes", "entries")


@dataclass(frozen=True)
class TaskWindow:
    """At most ``size`` tasks in flight at once (``unit="tasks"``, ``mode=WindowMode.STALL``).

    As in the reference, the units "tasks", "bytes" and "entries" and every WindowMode build a TaskWindow (another
    unit raises ``Invalid unit: X``). Only ``unit="tasks"`` with ``mode=WindowMode.STALL`` is simulated: the
    reference runs any other window as no window at all (diagnosed), and here a workload carrying one is refused
    when it reaches a run (``compile()``, or a run started another way), naming what to write instead, rather than
    run with no cap or with a wrong one (a 2-byte window run as 2 tasks). ``simulated`` says which a window is. A
    mode that is not a WindowMode at all (``mode="stall"``) is refused where it is given.
    """

    size: int
    unit: str = "tasks"
    mode: WindowMode = WindowMode.STALL

    def __post_init__(self) -> None:
        if self.unit not in _WINDOW_UNITS:
            raise PtortValueError(f"Invalid unit: {self.unit}",
                                  hint="Use unit='tasks', the only unit simulated: TaskWindow(10, 'tasks') ('bytes' "
                                       "and 'entries', the reference's other units, build but cannot run).")
        if isinstance(self.size, bool) or not isinstance(self.size, numbers.Integral) or self.size < 1:
            raise PtortValueError(f"TaskWindow size must be an int >= 1, got {self.size!r}.",
                                  hint="Use TaskWindow(8) for at most 8 tasks in flight.")
        object.__setattr__(self, "size", int(self.size))  # a numpy integer (a sweep grid's value) is the int it holds
        if not isinstance(self.mode, WindowMode):
            raise PtortTypeError(
                f"TaskWindow mode must be a WindowMode, got {type(self.mode).__name__} {self.mode!r}.",
                hint="Use mode=WindowMode.STALL (the default; from ptort_lab import WindowMode), the only mode "
                     "the simulator runs.")

    @property
    def simulated(self) -> bool:
        """Does a run model this window: ``unit="tasks"`` with ``mode=WindowMode.STALL``?"""
        return self.unit == "tasks" and self.mode is WindowMode.STALL

    def require_simulated(self, api: str) -> None:
        """Refuse this window, for ``api`` (``"compile()"``, ...), unless a run models it (``simulated``)."""
        if self.simulated:
            return
        what = f"unit {self.unit!r}" if self.unit != "tasks" else f"mode {self.mode}"
        raise PtortValueError(
            f"{api}: the workload's TaskWindow({self.size}, {self.unit!r}, {self.mode}) is not simulated: only "
            f"unit='tasks' with mode=WindowMode.STALL caps the tasks in flight, and {what} has no model here.",
            hint=f"Use TaskWindow({self.size}, 'tasks') (mode STALL) for at most {self.size} tasks in flight, "
                 "or drop window= for no cap (the reference runs other units and modes with no window).")


@dataclass(frozen=True)
class _ScheduleFields:
    """The fields of a Schedule (its constructor adds the reference's ``streams=`` spelling)."""

    dispatch: DispatchPolicy | None = None
    stream_count: int | None = None
    stream_by: Callable[..., Any] | None = None
    timing: Any = None
    window: TaskWindow | None = None
    deps: Any = None
    spatial_grid: Any = None
    placement: Any = None
    graph: Any = None  # a task_graph.TaskGraphConfig once task_graph(...) was called
    vector_unit: Any = None  # the AIV of each data-parallel task: an int, or a function of the task (None: in turn)
    params: tuple[tuple[str, Any], ...] = ()  # with_params(("batch", axis), ...): recorded only, as in the reference


class Schedule(_ScheduleFields):
    """Everything the combinators recorded; the simulator reads it.

    The reference's names work too: ``Schedule(streams=4)`` and ``schedule.streams`` are ``stream_count`` (1 when
    unset, as the reference's default), and ``to_dict()`` lists what was set."""

    def __init__(self, *args: Any, streams: Any = None, **fields: Any) -> None:
        if streams is not None:
            if fields.get("stream_count") is not None or len(args) > 1:
                raise PtortTypeError("Schedule(streams=..., stream_count=...): streams is the reference's name for "
                                     "stream_count; give one of them.", hint=f"Write Schedule(streams={streams!r}).")
            fields["stream_count"] = streams
        super().__init__(*args, **fields)

    @property
    def streams(self) -> int:
        """The number of streams (the reference's name for ``stream_count``; 1 when ``streams(n)`` was not given)."""
        return 1 if self.stream_count is None else self.stream_count

    def to_dict(self) -> dict[str, Any]:
        """What was set, by name, as the reference's ``Schedule.to_dict()``: ``dispatch``, ``streams`` (when not 1),
        ``stream_by`` and ``timing`` when given, then any of ptort_lab's other fields that were set (``window``,
        ``deps``, ``placement``, ...). A default Schedule gives ``{}``."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "stream_count":
                if self.streams != 1:
                    out["streams"] = self.streams
            elif value is not None and not (isinstance(value, tuple) and not value):  # (params: () when unset)
                out[f.name] = value
        return out


_COMPILERS: dict[str, Callable[..., Any]] = {}


def register_target(name: str, compiler: Callable[..., Any]) -> None:
    """Make ``workload.compile(target=name)`` call ``compiler(workload, target, options)``."""
    _COMPILERS[name] = compiler


def compiler_for(target: str) -> Callable[..., Any]:
    try:
        return _COMPILERS[target]
    except KeyError:
        known = ", ".join(sorted(_COMPILERS)) or "none (import ptort_lab to register the simulator)"
        raise PtortValueError(f"Unknown target: {target}", hint=f"Known targets: {known}.") from None


__all__ = ["DispatchPolicy", "TimingPolicy", "TaskWindow", "WindowMode", "Schedule", "register_target"]
