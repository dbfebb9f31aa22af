"""What a cost model of the user's own returns from ``task_timing``, checked before the run uses it.

A result that is not ``(issue_done, end, spans)`` in whole cycles used to surface later as a bare IndexError or
TypeError (in ``stats()``, the export, or the engine's clock arithmetic), or worse, as clocks that go back. The
check costs a few isinstance tests per task and is skipped for ptort_lab's own models; it is the one place spans
are checked, so what counts them (``stats.SpanTotals``, the trace's columns) may take them as spans.
"""
from __future__ import annotations

import linecache
import numbers
from typing import Any, Callable

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
        return result

    return checked


def _whole(v: Any) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _problem(result: Any, start: int) -> str | None:
    """What is wrong with a task_timing result, or None."""
    if not isinstance(result, tuple) or len(result) != 3:
        return "it is not a tuple (issue_done, end, spans)"
    issued, end, spans = result
    for name, v in (("issue_done", issued), ("end", end)):
        if not _whole(v):
            return f"its {name} is {short(v)}, not a whole number of cycles"
        if v < start:
            return f"its {name} is cycle {v:,}, before the task's start at cycle {start:,} (clocks never go back)"
    if not isinstance(spans, (list, tuple)):
        return f"its spans are {short(spans)}, not a list"
    for sp in spans:
        if not isinstance(sp, tuple) or len(sp) != len(Span._fields):
            return f"a span is {short(sp)}, not a {FIELDS}"
        if not (_whole(sp[4]) and _whole(sp[5])) or sp[5] < sp[4]:
            return (f"a span runs from {short(sp[4])} to {short(sp[5])}: start and end must be whole cycles, "
                    "start <= end")
        if not _whole(sp[6]):
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
    code = getattr(getattr(timing, "__func__", timing), "__code__", None)
    where = None
    if code is not None:
        where = SourceLocation(code.co_filename, code.co_firstlineno, code.co_name,
                               linecache.getline(code.co_filename, code.co_firstlineno).strip())
    return SimulationError(
        f"{owner.__name__}.task_timing returned {short(result)}: {problem}.",
        hint="Return (issue_done, end, spans): issue_done and end whole cycles no earlier than start, and spans a "
             f"list of {FIELDS} within [start, end] (ptort_lab.sim.cost_model.span_of(task, core, lane, start, end) "
             "builds one).",
        where=where, locate=where is None)


__all__ = ["checked_timing"]
