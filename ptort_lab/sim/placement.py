"""Where a run's work goes: each CSP process's core (and AIV), and each data-parallel task's core."""
from __future__ import annotations

from array import array
from collections.abc import Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from itertools import chain
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import numpy as np

from ..dsl.scalar_expr import KeyFunction
from ..errors import PtortTypeError, PtortValueError, raise_user_error

if TYPE_CHECKING:
    from ..dsl.schedule import Schedule
    from ..dsl.workload import Task, Workload


_PLACE_HINT = 'Write placement="shared" or {"loader": 0, "computer": (0, 1)}: a process (or its name) -> a core, or ' \
              '(core, aiv) for a vector process on that AIV of the core.'


def process_cores(procs: list[Any], placement: Any) -> tuple[dict[str, int], dict[str, int]]:
    """(core of each process, the vector unit its vector work runs on when not AIV0). A placement value is a core,
    or ``(core, aiv)`` to put a vector stage on the core's second AIV (default AIV0). Processes the placement does not
    name take the lowest cores left, in order. A placement keyed by Process objects is read by their names."""
    if placement is None:
        return {p.name: i for i, p in enumerate(procs)}, {}
    if isinstance(placement, str):  # (before any ==: an array compared with a string is an array, not a bool)
        if placement == "shared":
            return {p.name: 0 for p in procs}, {}
        raise PtortValueError(f"the only placement string is 'shared' (every process on one core), got "
                              f"{placement!r}.", hint=_PLACE_HINT)
    if not isinstance(placement, Mapping):
        raise PtortTypeError(f"placement must be None, 'shared' or a dict process -> core, got "
                             f"{type(placement).__name__} {_short(placement)}.", hint=_PLACE_HINT)
    placement = _by_name(procs, placement)
    unknown = set(placement) - {p.name for p in procs}
    if unknown:
        raise PtortValueError(f"placement names unknown process(es) {sorted(unknown)}.",
                              hint=f"Processes are {', '.join(p.name for p in procs)}.")
    cores: dict[str, int] = {}
    aivs: dict[str, int] = {}
    for p in procs:
        if p.name in placement:
            cores[p.name], aivs[p.name] = _core_and_aiv(p.name, placement[p.name])
    free, used = 0, set(cores.values())
    for p in procs:
        if p.name not in cores:
            while free in used:
                free += 1
            cores[p.name] = free
            used.add(free)
    return cores, {k: v for k, v in aivs.items() if v}


def _by_name(procs: list[Any], placement: Mapping[Any, Any]) -> dict[str, Any]:
    """``placement`` keyed by process names: a name as it is, one of ``procs`` (a Process) by its name."""
    from ..dsl.csp import Process  # (an error path mostly; the dsl is loaded by then)
    out: dict[str, Any] = {}
    for key, value in placement.items():
        if isinstance(key, str):
            name = key
        elif any(key is p for p in procs):
            name = key.name
        elif isinstance(key, Process):  # but not one of this pipeline's
            raise PtortValueError(f"placement places process {key.name!r}, which is not one of this pipeline's "
                                  f"processes ({', '.join(repr(p.name) for p in procs)}).",
                                  hint="Place the Process objects passed to connect(...), or name them by string.")
        else:
            raise PtortTypeError(f"a placement key is a process or its name, got {type(key).__name__} "
                                 f"{_short(key)}.", hint=_PLACE_HINT)
        if name in out:
            raise PtortValueError(f"placement places process '{name}' twice (as a Process and by its name?).",
                                  hint="Give each process one place.")
        out[name] = value
    return out


def _short(value: Any) -> str:
    text = repr(value).replace("\n", " ")
    return text if len(text) <= 80 else text[:77] + "..."


def _core_and_aiv(name: str, value: Any) -> tuple[int, int]:
    parts = tuple(value) if isinstance(value, (tuple, list)) else (value, 0)
    if len(parts) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in parts):
        raise PtortValueError(f"placement puts process '{name}' on {_short(value)}; a place is a core (int) or "
                              "(core, aiv) with two ints.",
                              hint='Write .place({"loader": 0, "computer": 0}) or {"update": (0, 1)} for AIV1.')
    if parts[0] < 0 or parts[1] < 0:
        raise PtortValueError(f"placement puts process '{name}' on {_short(value)}; cores and AIVs are numbered from "
                              "0.", hint='Write .place({"loader": 0, "computer": 0}) or {"update": (0, 1)} for AIV1.')
    return int(parts[0]), int(parts[1])


def _mix(key: int) -> int:
    # splitmix64 finaliser: a real hash, so structured keys spread over cores (affinity keeps them together).
    z = (key + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


# The tasks a streamed run holds while it reads their keys ahead (``Dispatch.used_cores``): past this many, only their
# cores are kept and the run lists its tasks again. Small, as the dealer's LOOKAHEAD: a streamed run holds a few tasks,
# never its listing (a key by an outer loop, as flash attention's affinity by query tile, meets its last core late).
READ_AHEAD = 64


class Dispatch:
    """Where the tasks of one data-parallel run go, each task's key function called once in the run.

    The dealer asks ``core_of(i, task)`` for the i-th task issued. A cost model that must know the cores in use
    before the first task is priced (the NPU model's block dispatch order) asks ``used_cores``, which reads the keys
    ahead when they are not known yet; the dealer then takes the cores read (``dealing``), and a streamed run the
    tasks read ahead (``tasks``). ``cores``: every task's core, in issue order, when the run listed them first."""

    def __init__(self, n: int, key_core: Callable[[int, Task], int] | None,
                 listing: Callable[[], Iterable[Task]] | None = None, cores: list[int] | None = None) -> None:
        self.n = n
        self._key_core = key_core  # None: dynamic (work stealing)
        self._listing = listing  # the run's tasks in program order, listed anew on each call
        self._complete = cores is not None
        self._cores: Any = cores if cores is not None else array("B" if n <= 256 else "q")  # read so far, in order
        self._held: list[Task] = []  # tasks read ahead and kept for the run (``tasks``)
        self._rest: Iterator[Task] | None = None  # the listing they were read from, where it stopped
        self._used: set[int] | None = None

    def core_of(self, i: int, task: Task) -> int:
        """The core of the ``i``-th task issued: read ahead already, else its key read now."""
        cores = self._cores
        if i < len(cores):
            return cores[i]  # type: ignore[no-any-return]
        assert self._key_core is not None
        return self._key_core(i, task)

    def dealing(self) -> Callable[[int, Task], int] | None:
        """The dealer's ``core_of``: the cores known (read ahead, or listed), else the plain key function (None:
        dynamic dispatch)."""
        return self.core_of if self._complete or self._cores else self._key_core

    def tasks(self) -> Iterable[Task]:
        """A streamed run's tasks in program order: those read ahead, then the rest of their listing; a new listing
        when none were read ahead, or too many to hold (their cores are kept: ``core_of``)."""
        held, rest = self._held, self._rest
        self._held, self._rest = [], None
        if rest is None:
            assert self._listing is not None
            return self._listing()
        return chain(held, rest)

    def used_cores(self) -> set[int] | None:
        """The cores the run's tasks go to; None when every one of the n cores is used (reading stops there) or the
        dispatch is dynamic. Reads the keys (once) when they are not known yet."""
        if self._used is None and (self._complete or self._key_core is not None):
            self._used = set(self._cores) if self._complete else self._read_ahead()
        return None if self._used is None or len(self._used) == self.n else self._used

    def _read_ahead(self) -> set[int]:
        """Read the tasks' keys until every core is used or the tasks end, keeping each core and, up to
        ``READ_AHEAD`` of them, the tasks."""
        assert self._listing is not None and self._key_core is not None
        key_core, cores, used = self._key_core, self._cores, set()
        listing = iter(self._listing())
        held: list[Task] | None = []
        for i, task in enumerate(listing):
            core = key_core(i, task)
            cores.append(core)
            used.add(core)
            if held is not None:
                held.append(task)
                if len(held) > READ_AHEAD:  # too many to hold: the run lists them again (their cores are kept)
                    held = None
            if len(used) == self.n:
                break
        if held is not None:
            self._held, self._rest = held, listing
        return used


# the dispatch of the run being set up (``dispatching``), with its workload
_RUN_DISPATCH: ContextVar[tuple[Any, Dispatch] | None] = ContextVar("ptort_run_dispatch", default=None)


@contextmanager
def dispatching(workload: Workload, dispatch: Dispatch) -> Iterator[None]:
    """Inside the ``with``, ``dispatch`` is the one ``run_dispatch(workload, ...)`` gives: the runner sets its run's
    up around ``begin_run``, so a cost model that reads the keys reads the dealer's (each key once a run)."""
    token = _RUN_DISPATCH.set((workload, dispatch))
    try:
        yield
    finally:
        _RUN_DISPATCH.reset(token)


def run_dispatch(workload: Workload, listing: Callable[[], Iterable[Task]]) -> Dispatch:
    """The dispatch of the run of ``workload`` being set up (``dispatching``), else a new one over ``listing`` (a
    model prepared by hand, outside a run: no dealer reads its keys)."""
    current = _RUN_DISPATCH.get()
    if current is not None and current[0] is workload:
        return current[1]
    return Dispatch(*dispatcher(workload.schedule), listing=listing)


def assign_cores(tasks: list[Task], schedule: Schedule) -> tuple[int, list[int] | None]:
    """(number of cores, core of each task); None assignments mean dynamic (work stealing)."""
    n, core_of = dispatcher(schedule)
    return n, None if core_of is None else [core_of(i, t) for i, t in enumerate(tasks)]


def dispatcher(schedule: Schedule) -> tuple[int, Callable[[int, Task], int] | None]:
    """(number of cores, the core of the i-th task issued, ``core_of(i, task)``); None for dynamic dispatch (work
    stealing: idle cores take the next task)."""
    policy = schedule.dispatch
    streams = schedule.stream_count or 0
    if schedule.stream_by is not None and not streams:
        raise PtortValueError("stream_by(fn) picks one of the streams(n), but no streams(n) was given.",
                              hint='Write .streams(4).stream_by(lambda t: t.get("b")).')
    if policy is None:
        if streams and schedule.stream_by is not None:  # streams(n).stream_by(fn): stream fn(t) mod n, one per core
            by = KeyFunction(schedule.stream_by, "the stream_by key")
            return streams, lambda i, t: _key(by, t, "stream_by") % streams
        if streams:  # streams(n) alone: tasks go to the n streams in turn (the reference puts all on stream 0)
            return streams, lambda i, t: i % streams
        return 1, lambda i, t: 0
    n = policy.num_cores or streams or 1
    if is_work_stealing(schedule):
        return n, None
    if policy.kind == "round_robin":
        return n, lambda i, t: i % n
    api = f"DispatchPolicy.{policy.kind}"
    # (a key written the reference's way, t.params[0].cast_u64() or t.tags["mask"], is a scalar expression evaluated
    # for each task: dsl/scalar_expr.py)
    key_fn = KeyFunction(policy.key_fn, f"the {api} key") if policy.key_fn is not None else None
    mixed = policy.kind == "hash"
    return n, lambda i, t: (_mix(_key(key_fn, t, api)) if mixed else _key(key_fn, t, api)) % n


def is_work_stealing(schedule: Schedule) -> bool:
    """Whether idle cores take the next task (DispatchPolicy.work_steal, or a task graph's work-stealing queue)."""
    policy, graph = schedule.dispatch, schedule.graph
    return policy is not None and (policy.kind == "work_steal"
                                   or (graph is not None and graph.ready.kind == "work_steal"))


def vector_unit_of(task: Task, unit: Any, aiv_per_core: int, machine: str) -> int:
    """The AIV ``.vector_unit(unit)`` puts ``task`` on: ``unit`` itself, or ``unit(task)``; checked against the
    machine's AIVs per core."""
    if callable(unit):
        try:
            aiv = unit(task)
        except Exception as e:  # noqa: BLE001 - the user's function
            raise_user_error(e, f"the vector_unit() function (for task {task.id}, {task.kernel}{task.params})")
        if isinstance(aiv, np.integer):
            aiv = int(aiv)
        if isinstance(aiv, bool) or not isinstance(aiv, int):
            raise PtortValueError(f"the vector_unit() function returned {aiv!r} for task {task.id} "
                                  f"({task.kernel}{task.params}); it must return an AIV index (int).",
                                  hint='Return a loop binding or a number, e.g. lambda t: t.get("h") % 2.',
                                  where=task.loc, locate=False)
    else:
        aiv = unit
    if not 0 <= aiv < aiv_per_core:
        units = "AIV0" if aiv_per_core == 1 else f"AIV0..AIV{aiv_per_core - 1}"
        raise PtortValueError(f"vector_unit() puts task {task.id} ({task.kernel}{task.params}) on AIV{aiv}, but each "
                              f"AI core of '{machine}' has {units}.",
                              hint=f"Return 0..{aiv_per_core - 1}, e.g. lambda t: t.get(\"h\") % {aiv_per_core}."
                              if aiv_per_core > 1 else "This machine has one AIV per core: drop vector_unit().",
                              where=task.loc, locate=False)
    return int(aiv)


def _key(fn: Callable[[Task], Any] | None, t: Task, api: str) -> int:
    try:
        key = fn(t)  # type: ignore[misc]  # (a policy that keys tasks always has its key function)
    except Exception as e:  # noqa: BLE001 - the user's key function
        raise_user_error(e, f"the {api} key function (for task {t.id}, {t.kernel}{t.params})")
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return int(key)
    raise PtortValueError(f"{api} key function returned {key!r} for task {t.id} ({t.kernel}{t.params}); it must "
                          "return an int (a float would be truncated silently).",
                          hint='Return a loop binding, e.g. lambda t: t.get("b"), or t.get("b") // 2.',
                          where=t.loc, locate=False)


__all__ = ["process_cores", "assign_cores", "dispatcher", "is_work_stealing", "vector_unit_of", "Dispatch",
           "dispatching", "run_dispatch", "READ_AHEAD"]
