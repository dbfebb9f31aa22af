"""CostModel: what the runner asks of a cost model, each hook with its default; PinnedCosts, the simplest one.

``compile()`` reads ``machine`` (the Machine it models, None by default: its channel latency becomes the default
``channel_latency_cycles``). A run asks its cost model, in this order (SimPy ``BaseResource`` style: a subclass
overrides what it needs):

- ``clock_hz`` (cycles -> seconds), ``uses_ir`` (False: prices never look at the kernel's ops, so the runner skips
  tracing them), ``time_ordered`` (False: prices never depend on other tasks, so the engine may run each process
  until it blocks instead of in global time order);
- ``begin_run(workload, placement, vector_units) -> TaskPricer``: once per run, before any task. ``placement`` maps
  each CSP process to its core (None for a data-parallel workload), ``vector_units`` each process placed on AIV1
  (``{"update": 1}``). It returns the run's pricer, which holds all state of that run (pipes, buffers, memory), so
  one model can price runs in several threads at once. The default prepares the model itself (``prepare``) and
  returns it: right for a model without per-run state (``PinnedCosts``).
- on the pricer, per task: ``fixed_cycles(task) -> int | None`` (a plain delay: one span ``[start, start + cycles)``
  on the process lane, no other state touched; the runner records it and skips ``task_timing``, unless values are
  computed), else ``task_timing(task, ir, core, start, lane, pipelined) -> (issue_done, end, spans)``; per channel,
  ``channel_stays_on_chip(producers, consumers)`` (a channel between processes on one core costs the same-core
  latency, else the cross-core one); after the run, ``launch_cycles`` (cycles before the first instruction, recorded
  in the trace; None when unknown).

``task_timing``: the task's ops start no earlier than ``start``; ``end`` is when its last op finishes;
``issue_done`` is when the issuing process may go on. A CSP process is sequential (``pipelined=False``: return
``end``); a data-parallel core (``pipelined=True``) may issue its next task while this one still runs, so its pipes
overlap across tasks as far as buffers allow. ``lane`` names the process (stage or core) for the spans. What a model
of the user's own returns is checked on every task (``timing_check``): a result that is not that tuple in whole cycles,
with ``issue_done`` and ``end`` no earlier than ``start`` and spans that are ``Span`` records, stops the run with an
error at the model's ``task_timing`` line. So do the other answers of a user's hooks (``begin_run``): a pricer
without ``task_timing``, a ``fixed_cycles`` that is not None or whole cycles in 0..2**53, a
``channel_stays_on_chip`` that is not a bool, a ``launch_cycles`` that is not None or whole cycles (numpy integers
and bools are taken as Python's). A pricer may lack the optional hooks: it gets the defaults above.

A cost model that does not subclass CostModel still works (``as_cost_model`` adapts it) if it has ``clock_hz`` and
``task_timing``; every other hook is optional, with the defaults above. Without ``begin_run`` its ``prepare`` (if
any) is called once per run and ``task_timing`` on the model itself, which is only safe for one run at a time.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from ..dsl.tasks import MAX_CYCLES, cycles_bound_hint
from ..errors import PtortTypeError, PtortValueError
from .machine import DEFAULT_CLOCK_HZ, Machine, clock_range_error
from .timing_check import code_location, whole_fixed_cycles
from .trace import Span
from .trace_files import short

if TYPE_CHECKING:
    from ..dsl.ir import KernelIR
    from ..dsl.workload import Task, Workload

#: What ``task_timing`` returns for one task: ``(issue_done, end, spans)``, the cycle its process may go on, the
#: cycle its last op ends and its spans.
Timing = tuple[int, int, list[Span]]


class TaskPricer(Protocol):
    """What prices one run's tasks (``CostModel.begin_run`` returns one; a CostModel is one)."""

    @property
    def launch_cycles(self) -> int | None: ...

    def fixed_cycles(self, task: Task) -> int | None: ...

    def channel_stays_on_chip(self, producers: list[Any], consumers: list[Any]) -> bool: ...

    def task_timing(self, task: Task, ir: KernelIR | None, core: int, start: int, lane: str,
                    pipelined: bool) -> Timing: ...


class CostModel:
    """Prices tasks on cores; the hooks and their defaults are in the module docstring. Subclasses override
    ``task_timing`` (and ``begin_run`` when a run keeps state, as ``NpuCostModel`` does)."""

    clock_hz: float = DEFAULT_CLOCK_HZ
    machine: Machine | None = None  # the machine it models, if one (compile() takes its channel latency)
    uses_ir: bool = True  # False: prices never look at the kernel's ops
    time_ordered: bool = True  # False: prices never depend on other tasks (the engine may run until block)
    launch_cycles: int | None = None  # cycles before the first instruction of a run; None: unknown

    def begin_run(self, workload: Workload, placement: dict[str, int] | None,
                  vector_units: dict[str, int]) -> TaskPricer:
        """The pricer of a new run: by default the model itself, prepared (no per-run state of its own)."""
        if vector_units:
            raise _no_aivs(self, vector_units)
        self.prepare(workload, placement)
        return self

    def prepare(self, workload: Workload, placement: dict[str, int] | None) -> None:
        """Check a run before it starts (capacities, core counts); the default checks nothing."""

    def fixed_cycles(self, task: Task) -> int | None:
        """The task's cycles when it is a plain delay, else None (then ``task_timing`` prices it)."""
        return None

    def channel_stays_on_chip(self, producers: list[Any], consumers: list[Any]) -> bool:
        """Whether a channel between processes on one core stays on chip (by default: always)."""
        return True

    def task_timing(self, task: Task, ir: KernelIR | None, core: int, start: int, lane: str,
                    pipelined: bool) -> Timing:
        """``(issue_done, end, spans)`` of ``task`` started no earlier than ``start`` (see the module docstring)."""
        raise PtortTypeError(f"{type(self).__name__} is a CostModel but defines no task_timing().",
                             hint="Define task_timing(self, task, ir, core, start, lane, pipelined) returning "
                                  "(issue_done, end, spans), or begin_run() returning an object that has it.")


class _FromClass:
    """The default of a PinnedCosts field: the class's attribute of that name (a subclass may set it)."""

    def __repr__(self) -> str:
        return "<the class's value>"


_FROM_CLASS: Any = _FromClass()


@dataclass
class PinnedCosts(CostModel):
    """Every task costs its pinned cycles (``@kernel(cycles=)`` / ``task(..., cycles=)``) or ``default_cycles``.

    ``default_cycles`` (0) and ``clock_hz`` (1.8 GHz) may be given as arguments or set by a subclass as class
    attributes (``class Slow(PinnedCosts): clock_hz = 1e6``); an argument wins.
    A subclass that overrides ``task_timing`` should also override ``fixed_cycles`` (return None to always be asked).
    """

    # (defaults made at __init__, so no class attribute hides a subclass's own: __post_init__ reads the class's)
    default_cycles: int = field(default_factory=lambda: _FROM_CLASS)
    clock_hz: float = field(default_factory=lambda: _FROM_CLASS)
    time_ordered = False  # prices never depend on other tasks, so the engine may run processes until they block
    uses_ir = False  # prices never look at the kernel's ops
    launch_cycles = 0  # no launch is modelled: the first task starts at cycle 0

    def __post_init__(self) -> None:
        cls = type(self)
        # what a wrong value is called: the argument, or the subclass's attribute it came from
        cycles_name = clock_name = "PinnedCosts"
        if self.default_cycles is _FROM_CLASS:
            self.default_cycles = getattr(cls, "default_cycles", 0)
            cycles_name = cls.__name__ if hasattr(cls, "default_cycles") else cycles_name
        if self.clock_hz is _FROM_CLASS:
            self.clock_hz = cls.clock_hz  # (CostModel's 1.8 GHz unless a subclass sets its own)
            clock_name = cls.__name__ if cls.clock_hz is not CostModel.clock_hz else clock_name
        cycles_what = "PinnedCosts(default_cycles=...)" if cycles_name == "PinnedCosts" else \
            f"{cycles_name}.default_cycles"
        clock_what = "PinnedCosts(clock_hz=...)" if clock_name == "PinnedCosts" else f"{clock_name}.clock_hz"
        if isinstance(self.default_cycles, np.integer):  # (numpy ints are taken where ints are)
            self.default_cycles = int(self.default_cycles)
        if isinstance(self.clock_hz, np.integer):
            self.clock_hz = int(self.clock_hz)
        if isinstance(self.default_cycles, bool) or not isinstance(self.default_cycles, int) \
                or self.default_cycles < 0:
            raise PtortValueError(f"{cycles_what} must be an int >= 0, got {self.default_cycles!r}.",
                                  hint="It is the cost of a task that pins none: PinnedCosts(default_cycles=100).")
        if self.default_cycles > MAX_CYCLES:
            raise PtortValueError(f"{cycles_what} must be at most 2**53, got {self.default_cycles!r}.",
                                  hint=cycles_bound_hint(cycles_what))
        if isinstance(self.clock_hz, bool) or not isinstance(self.clock_hz, (int, float)) \
                or not 0 < self.clock_hz < float("inf"):
            raise PtortValueError(f"{clock_what} must be a frequency > 0, got {self.clock_hz!r}.",
                                  hint="It converts cycles to microseconds: PinnedCosts(clock_hz=1.8e9).")
        error = clock_range_error(clock_name, self.clock_hz, "PinnedCosts(clock_hz=1.8e9)")
        if error is not None:
            raise error

    def fixed_cycles(self, task: Task) -> int:
        """The task's pinned cycles, or ``default_cycles`` when it pins none."""
        c = task.cycles
        if c.__class__ is int and c <= MAX_CYCLES:
            return c  # (checked by its class, not isinstance: the fast path of millions of tasks)
        if c is None:
            return self.default_cycles
        # a function (called once: it may count its calls), or an int subclass or one past 2**53 (checked there)
        return task.pinned_cycles()  # type: ignore[return-value]  # (an int: the task pins cycles)

    def task_timing(self, task: Task, ir: KernelIR | None, core: int, start: int, lane: str,
                    pipelined: bool) -> Timing:
        cycles = self.fixed_cycles(task)
        if cycles.__class__ is not int or not 0 <= cycles <= MAX_CYCLES:  # a subclass's fixed_cycles: checked
            cycles = whole_fixed_cycles(self.fixed_cycles, cycles, task)
        end = start + cycles
        return end, end, [span_of(task, core, lane, start, end)]


def span_of(task: Task, core: int, lane: str, start: int, end: int) -> Span:
    """The one span of a task priced as a plain delay: on its process's lane, named by its kernel, indexed by its
    first parameter (its id when it has none)."""
    return Span(core=core, lane=lane, name=task.kernel, index=task.params[0] if task.params else task.id,
                start=start, end=end, bytes=0, process=lane, task_id=task.id)


def _no_aivs(model: Any, vector_units: dict[str, int]) -> PtortValueError:
    """The error for a placement on AIV1 (``{"update": (0, 1)}``) with a model that has no vector units."""
    return PtortValueError(f"placement names vector units {vector_units}, but {type(model).__name__} has no AIVs.",
                           hint="Give plain core numbers, or run on the NPU model (NpuCostModel).")


# -- cost models that do not subclass CostModel ---------------------------------------------------------------------
def as_cost_model(model: Any, api: str = "compile(cost_model=...)") -> CostModel:
    """``model`` as a CostModel: itself when it is one, else an adapter reading its hooks where it has them; a
    PtortTypeError (naming ``api``) for a class or for something that is not a cost model."""
    hint = ("Pass an instance: cost_model=PinnedCosts() (every task costs its pinned cycles) or "
            "cost_model=NpuCostModel() (the Ascend model; or use machine='ascend_910b4' to pick a machine).")
    if isinstance(model, type):
        raise PtortTypeError(f"{api} got the class {model.__name__}, not a cost model.",
                             hint=f"Call it: cost_model={model.__name__}(). {hint}")
    if isinstance(model, CostModel):
        _check_clock(model, api)
        cls = type(model)
        if cls.task_timing is CostModel.task_timing and cls.begin_run is CostModel.begin_run:
            raise PtortTypeError(f"{api} got {cls.__name__}, a CostModel that defines no task_timing().",
                                 hint="Define task_timing(self, task, ir, core, start, lane, pipelined) returning "
                                      "(issue_done, end, spans) on it, or begin_run() returning an object that has "
                                      "it.")
        return model
    missing = [what for what, ok in (("task_timing()", callable(getattr(model, "task_timing", None))),
                                     ("clock_hz", hasattr(model, "clock_hz"))) if not ok]
    if missing:
        raise PtortTypeError(f"{api} takes a cost model, got {type(model).__name__} {short(model)} "
                             f"(it has no {' and no '.join(missing)}).", hint=hint)
    _check_clock(model, api)
    return _DuckTyped(model)


def _check_clock(model: Any, api: str) -> None:
    """A model's ``clock_hz`` must be a frequency a trace can record (machine.MIN_CLOCK_HZ..MAX_CLOCK_HZ)."""
    clock = model.clock_hz
    owner = f"{api}: {type(model).__name__}"
    if isinstance(clock, bool) or not isinstance(clock, numbers.Real):
        raise PtortTypeError(f"{owner}.clock_hz must be a frequency in Hz (a number), got {type(clock).__name__} "
                             f"{short(clock)}.", hint="Give the model a clock, e.g. clock_hz = 1.8e9 (the 910B2's).")
    error = clock_range_error(owner, clock, "clock_hz = 1.8e9 (the 910B2's)")
    if error is not None:
        raise error


class _DuckTyped(CostModel):
    """A cost model that does not subclass CostModel: its own hooks where it has them, the defaults elsewhere (the
    one place that probes a model's attributes)."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.clock_hz = model.clock_hz
        self.uses_ir = bool(getattr(model, "uses_ir", True))
        self.time_ordered = bool(getattr(model, "time_ordered", True))
        machine = getattr(model, "machine", None)
        self.machine = machine if isinstance(machine, Machine) else None

    def begin_run(self, workload: Workload, placement: dict[str, int] | None,
                  vector_units: dict[str, int]) -> TaskPricer:
        begin = getattr(self.model, "begin_run", None)
        if begin is not None:
            pricer = begin(workload, placement, vector_units)
            _check_pricer(pricer, begin)
            return _DuckPricer(pricer)
        if vector_units:
            if not hasattr(self.model, "vector_units"):
                raise _no_aivs(self.model, vector_units)
            self.model.vector_units = vector_units  # an older model that reads them in prepare and task_timing
        prepare = getattr(self.model, "prepare", None)
        if prepare is not None:
            prepare(workload, placement)
        return _DuckPricer(self.model, owned_by=self)


class _DuckPricer:
    """A pricer that may lack the optional hooks: theirs where they exist, CostModel's defaults elsewhere. Other
    attributes read through to it (``run.pricing.memory``)."""

    def __init__(self, pricer: Any, owned_by: _DuckTyped | None = None) -> None:
        self.pricer = pricer
        self.owned_by = owned_by  # the adapter, when this is the model itself (no per-run state to report)
        self.task_timing = pricer.task_timing
        self.fixed_cycles = getattr(pricer, "fixed_cycles", _never_fixed)
        self.channel_stays_on_chip = getattr(pricer, "channel_stays_on_chip", _always_on_chip)

    @property
    def launch_cycles(self) -> int | None:
        """The pricer's, read when the run is over (it may learn it while pricing), else None (not known)."""
        value: int | None = getattr(self.pricer, "launch_cycles", None)
        return value

    def __getattr__(self, name: str) -> Any:
        return getattr(self.pricer, name)


# -- what the runner asks of a pricer, checked ----------------------------------------------------------------------
_OPTIONAL_HOOKS = ("fixed_cycles", "channel_stays_on_chip", "launch_cycles")


def begin_run(model: CostModel, workload: Workload, placement: dict[str, int] | None,
              vector_units: dict[str, int]) -> TaskPricer:
    """``model.begin_run(...)``: the run's pricer, refused when it has no ``task_timing`` (a ``begin_run`` that
    forgot its ``return``), and given CostModel's defaults for the optional hooks it lacks."""
    pricer = model.begin_run(workload, placement, vector_units)
    if pricer is model or type(pricer).__module__.startswith("ptort_lab."):
        return pricer  # (the model itself, NpuRun, _DuckPricer: every hook there)
    _check_pricer(pricer, model.begin_run)
    if all(hasattr(pricer, hook) for hook in _OPTIONAL_HOOKS):
        return pricer
    return _DuckPricer(pricer)


def _check_pricer(pricer: Any, begin: Any) -> None:
    """A PtortTypeError at ``begin``'s line when what it returned cannot price tasks."""
    if callable(getattr(pricer, "task_timing", None)):
        return
    owner = type(getattr(begin, "__self__", begin)).__name__
    got = "None" if pricer is None else f"{type(pricer).__name__} {short(pricer)}, which has no task_timing()"
    where = code_location(begin)
    raise PtortTypeError(
        f"{owner}.begin_run returned {got}; it must return the run's pricer, an object with task_timing(task, ir, "
        "core, start, lane, pipelined).",
        hint="End begin_run with `return self` when the model prices the run itself (as CostModel.begin_run does), "
             "or return the object that holds this run's state and prices its tasks.",
        where=where, locate=where is None)


def stays_on_chip(pricer: TaskPricer, producers: list[Any], consumers: list[Any]) -> bool:
    """``pricer.channel_stays_on_chip(producers, consumers)``, which must be a bool (numpy's too): a PtortTypeError
    at its line otherwise (a string such as "no" would count as on chip)."""
    test = pricer.channel_stays_on_chip
    answer = test(producers, consumers)
    if answer is True or answer is False:
        return answer
    if isinstance(answer, np.bool_):
        return bool(answer)
    owner = type(getattr(test, "__self__", test)).__name__
    names = [[p.name for p in side] for side in (producers, consumers)]
    where = code_location(test)
    raise PtortTypeError(
        f"{owner}.channel_stays_on_chip returned {type(answer).__name__} {short(answer)} for a channel from "
        f"{names[0]} to {names[1]}; it must return True (it stays in the core's buffers) or False (it is staged "
        "through GM and costs the channel latency).",
        hint="Return a bool: True when both ends share the core's buffers, else False (wrap a test in bool(...)).",
        where=where, locate=where is None)


def _never_fixed(task: Task) -> None:
    """CostModel.fixed_cycles's default, for a pricer without the hook."""
    return None


def _always_on_chip(producers: list[Any], consumers: list[Any]) -> bool:
    """CostModel.channel_stays_on_chip's default, for a pricer without the hook."""
    return True


def user_types(pricer: TaskPricer, model: CostModel) -> list[type]:
    """The classes whose code prices a run (the pricer's, the model's): an exception raised in one of them that is
    not ptort_lab's is the user's bug, reported at its line."""
    found = [type(pricer.pricer) if isinstance(pricer, _DuckPricer) else type(pricer),
             type(model.model) if isinstance(model, _DuckTyped) else type(model)]
    return list(dict.fromkeys(found))


def run_state(pricer: TaskPricer, model: CostModel) -> Any:
    """What a run keeps of its pricer (``Run.pricing``): the per-run object, or None when the model priced the run
    itself."""
    if pricer is model:
        return None
    if isinstance(pricer, _DuckPricer):
        return None if pricer.owned_by is not None else pricer.pricer
    return pricer


__all__ = ["CostModel", "PinnedCosts", "TaskPricer", "as_cost_model", "span_of", "run_state", "user_types", "Timing",
           "begin_run", "stays_on_chip"]
