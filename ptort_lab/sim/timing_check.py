"""What a cost model of the user's own returns (``task_timing``, ``fixed_cycles``, ``launch_cycles``, and
``finish_run``), checked before the run uses it.

A result that is not ``(issue_done, end, spans)`` in whole cycles used to surface later as a bare IndexError or
TypeError (in ``stats()``, the export, or the engine's clock arithmetic), or worse, as clocks that go back. The
check costs a few isinstance tests per task and is skipped for ptort_lab's own models; it is the one place spans
are checked, so what counts them (``stats.SpanTotals``, the trace's columns) may take them as spans. A cycle count
(``fixed_cycles``, ``launch_cycles``, the run's end from ``finish_run``) is a whole number in 0..2**53, as
``task(cycles=)`` is; a numpy integer is taken as the int it holds.
"""
from __future__ import annotations

import inspect
import linecache
import re
from typing import Any, Callable

from ..dsl.tasks import MAX_CYCLES, cycles_bound_hint
from ..dsl.types import is_integer
from ..errors import SimulationError, SourceLocation
from .trace import Span
from .trace_files import short

FIELDS = "Span(core, lane, name, index, start, end, bytes, process, task_id)"


def checked_timing(pricer: Any) -> Callable[..., Any]:
    """``pricer.task_timing``, checked on every call when its code is not ptort_lab's."""
    timing = pricer.task_timing
    owner = type(getattr(timing, "__self__", pricer))
    if owner.__module__.startswith("ptort_lab."):
        return timing  # type: ignore[no-any-return]

    def checked(task: Any, ir: Any, core: int, start: int, lane: str, pipelined: bool) -> Any:
        result = timing(task, ir, core, start, lane, pipelined)
        problem = _problem(result, start)
        if problem is not None:
            raise _bad_timing(timing, owner, result, problem)
        if type(result[0]) is not int or type(result[1]) is not int:  # (numpy ints become the clocks as ints)
            return int(result[0]), int(result[1]), result[2]
        return result

    return checked



def _problem(result: Any, start: int) -> str | None:
    """What is wrong with a task_timing result, or None."""
    if not isinstance(result, tuple) or len(result) != 3:
        return "it is not a tuple (issue_done, end, spans)"
    issued, end, spans = result
    for name, v in (("issue_done", issued), ("end", end)):
        if not is_integer(v):
            return f"its {name} is {short(v)}, not a whole number of cycles"
        if v < start:
            return f"its {name} is cycle {v:,}, before the task's start at cycle {start:,} (clocks never go back)"
    if not isinstance(spans, (list, tuple)):
        return f"its spans are {short(spans)}, not a list"
    for sp in spans:
        if not isinstance(sp, tuple) or len(sp) != len(Span._fields):
            return f"a span is {short(sp)}, not a {FIELDS}"
        if not (is_integer(sp[4]) and is_integer(sp[5])) or sp[5] < sp[4]:
            return (f"a span runs from {short(sp[4])} to {short(sp[5])}: start and end must be whole cycles, "
                    "start <= end")
        if not is_integer(sp[6]):
            return f"a span's bytes are {short(sp[6])}, not a whole number"
        # (a span outside its task's [start, end] puts work where no clock is: the run's end, the busy figures of a
        # run that keeps no trace and a saved trace's makespan would disagree with it)
        if sp[4] < start:
            return f"a span starts at cycle {sp[4]:,}, before the task's start at cycle {start:,}"
        if sp[5] > end:
            return (f"a span ends at cycle {sp[5]:,}, after the task's end at cycle {end:,} (a task ends no earlier "
                    "than its last span)")
    return None


def _bad_timing(timing: Any, owner: type, result: Any, problem: str) -> SimulationError:
    where = code_location(timing)
    return SimulationError(
        f"{owner.__name__}.task_timing returned {short(result)}: {problem}.",
        hint="Return (issue_done, end, spans): issue_done and end whole cycles no earlier than start, and spans a "
             f"list of {FIELDS} within [start, end] (ptort_lab.sim.cost_model.span_of(task, core, lane, start, end) "
             "builds one).",
        where=where, locate=where is None)


def code_location(fn: Any) -> SourceLocation | None:
    """The first line of function (or bound method) ``fn``, None when it has no Python code."""
    code = getattr(getattr(fn, "__func__", fn), "__code__", None)
    if code is None:
        return None
    return SourceLocation(code.co_filename, code.co_firstlineno, code.co_name,
                          linecache.getline(code.co_filename, code.co_firstlineno).strip())


def is_ours(fn: Any) -> bool:
    """Whether function (or bound method) ``fn`` is ptort_lab's code (its results need no check)."""
    module = getattr(getattr(fn, "__func__", fn), "__module__", None)
    if module is None and hasattr(fn, "__self__"):  # a compiled method (compiled.py) names no module: its class does
        module = type(fn.__self__).__module__
    return isinstance(module, str) and module.startswith("ptort_lab.")


# -- fixed_cycles ---------------------------------------------------------------------------------------------------
def checked_fixed(pricer: Any, none_ok: bool = True) -> Callable[[Any], int | None]:
    """``pricer.fixed_cycles``, its result checked on every call when its code is not ptort_lab's (a subclass of
    PinnedCosts that inherits it keeps the unchecked fast path); ``none_ok``: whether None (ask ``task_timing``)
    is an answer (not when ``task_timing`` is PinnedCosts's, which asks ``fixed_cycles`` in turn)."""
    fixed = pricer.fixed_cycles
    if is_ours(fixed):
        return fixed  # type: ignore[no-any-return]

    def checked(task: Any) -> int | None:
        cycles = fixed(task)
        if cycles.__class__ is int and 0 <= cycles <= MAX_CYCLES or cycles is None and none_ok:
            return cycles
        return whole_fixed_cycles(fixed, cycles, task, none_ok)

    return checked


def whole_fixed_cycles(fixed: Any, cycles: Any, task: Any, none_ok: bool = False) -> int:
    """``cycles``, what ``fixed(task)`` returned, as an int in 0..2**53 (a numpy int converted); a SimulationError
    at the method's line otherwise (``none_ok``: the pricer may return None, so the message offers it)."""
    if is_integer(cycles) and 0 <= cycles <= MAX_CYCLES:
        return int(cycles)
    owner = type(getattr(fixed, "__self__", fixed)).__name__
    said = f"{owner}.fixed_cycles returned {short(cycles)} for task {task.id} ({task.kernel})"
    where = code_location(fixed)
    if cycles is None:
        raise SimulationError(
            f"{said}, which asks task_timing to price it, but {owner} prices tasks with PinnedCosts.task_timing, "
            "which takes its cycles from fixed_cycles.",
            hint="Return the task's cycles (an int >= 0; super().fixed_cycles(task) gives its pinned cycles), or "
                 "override task_timing too.", where=where, locate=where is None)
    if is_integer(cycles) and cycles > MAX_CYCLES:
        raise SimulationError(f"{said}; a task's cycles must be at most 2**53.",
                              hint=cycles_bound_hint(f"{owner}.fixed_cycles"), where=where, locate=where is None)
    allowed = "None (then task_timing prices the task) or " if none_ok else ""
    raise SimulationError(
        f"{said}; it must return {allowed}a whole number of cycles in 0..2**53.",
        hint="Return an int >= 0, e.g. int(round(cycles)) for a computed float"
             + (", or None for a task that task_timing prices." if none_ok else "."),
        where=where, locate=where is None)


# -- once per run: launch_cycles, finish_run -------------------------------------------------------------------------
def checked_launch_cycles(pricer: Any) -> int | None:
    """The pricer's ``launch_cycles`` (read when the run is over): None (not known) or an int in 0..2**53; a
    SimulationError naming the model's attribute otherwise."""
    owner = getattr(pricer, "pricer", pricer)  # (the user's object behind cost_model._DuckPricer)
    value = pricer.launch_cycles
    if value is None or type(owner).__module__.startswith("ptort_lab."):
        return value  # type: ignore[no-any-return]  # (ptort_lab's: from the Machine, whose fields are checked)
    if is_integer(value) and 0 <= value <= MAX_CYCLES:
        return int(value)
    name = f"{type(owner).__name__}.launch_cycles"
    too_big = is_integer(value) and value > MAX_CYCLES
    raise SimulationError(
        f"the cost model's {name} is {short(value)}; it must be None (not known) or a whole number of cycles in "
        f"0..2**53 (the cycles before the run's first instruction).",
        hint=cycles_bound_hint(name) if too_big else
        "Set it to an int, e.g. launch_cycles = 0 for a model without a launch cost (None when it is not known).",
        where=attribute_location(type(owner), "launch_cycles"), locate=True)


def checked_run_end(finish_run: Any, makespan: int) -> int:
    """What a pricer's ``finish_run(makespan)`` hook returned, the run's end: an int in makespan..2**53."""
    end = finish_run(makespan)
    if is_ours(finish_run):
        return end  # type: ignore[no-any-return]
    if is_integer(end) and makespan <= end <= MAX_CYCLES:
        return int(end)
    owner = type(getattr(finish_run, "__self__", finish_run)).__name__
    where = code_location(finish_run)
    raise SimulationError(
        f"{owner}.finish_run({makespan:,}) returned {short(end)}; it must return the run's end: a whole number of "
        f"cycles no earlier than the makespan it was given ({makespan:,}) and at most 2**53.",
        hint="Return the makespan, or a later cycle when the run waits for work after its last task "
             "(e.g. return max(makespan, flush_done)).", where=where, locate=where is None)


def attribute_location(cls: type, name: str) -> SourceLocation | None:
    """The line that sets ``name`` in ``cls`` or the first of its bases outside ptort_lab that does (its getter's for
    a property), None when it cannot be found."""
    for klass in cls.__mro__:
        if name not in vars(klass) or klass.__module__.startswith("ptort_lab."):
            continue
        value = vars(klass)[name]
        where = code_location(value.fget if isinstance(value, property) else value)
        if where is not None:
            return where
        try:
            lines, first = inspect.getsourcelines(klass)
            filename = inspect.getsourcefile(klass) or ""
        except (OSError, TypeError):
            return None
        setter = re.compile(rf"\s*{re.escape(name)}\s*(:[^=]*)?=")
        for k, line in enumerate(lines):
            if setter.match(line):
                return SourceLocation(filename, first + k, klass.__name__, line.strip())
        return None
    return None


__all__ = ["checked_timing", "checked_fixed", "whole_fixed_cycles", "checked_launch_cycles", "checked_run_end",
           "code_location", "attribute_location", "is_ours"]
