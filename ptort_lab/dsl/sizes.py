"""Sizes known before listing: a lower bound on the tasks and loop iterations of a workload, from static sizes alone
(so a workload too big to list is refused at once instead of after minutes of listing), and the refusals."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from ..errors import PtortValueError, SourceLocation
from .axes import MAX_ITERATIONS, Axis, DenseDyn, Ragged, Sparse, SparseRow
from .tasks import Task
from .tree import LOOPS, NodeKind, Workload


@dataclass(frozen=True)
class LeastWork:
    """What listing a workload does at least, from static sizes alone: tasks, loop iterations, and the launch and
    loop lines to name when either is too many."""

    tasks: int = 0
    iterations: int = 0
    task_loc: SourceLocation | None = None
    loop_loc: SourceLocation | None = None


def _least_points(axis: Any) -> int:
    """At least how many points a loop over ``axis`` visits (0 when only the run knows)."""
    if isinstance(axis, Ragged):
        return axis.total()
    if isinstance(axis, Axis):
        size = axis.size if isinstance(axis, DenseDyn) else getattr(axis, "size", 0)
        return size if isinstance(size, int) else 0
    if isinstance(axis, Sparse):
        return axis.nnz()
    if isinstance(axis, SparseRow):
        sp = axis.sparse
        return min((sp.row_nnz(r) for r in range(sp.outer_size)), default=0)
    if isinstance(axis, range):
        return max(0, (axis.stop - axis.start + axis.step - (1 if axis.step > 0 else -1)) // axis.step)
    if isinstance(axis, (list, tuple)):
        return len(axis)
    return 0


def _sum(parts: list[LeastWork]) -> LeastWork:
    return LeastWork(sum(p.tasks for p in parts), sum(p.iterations for p in parts),
                     next((p.task_loc for p in parts if p.task_loc is not None), None),
                     next((p.loop_loc for p in parts if p.loop_loc is not None), None))


def _loop(node: Workload) -> LeastWork:
    n = 1
    for axis in node.axes:
        n *= _least_points(axis)
    body = least_work(node.body)
    return LeastWork(n * body.tasks, n * (1 + body.iterations), body.task_loc, node.loc)


def _cond(node: Workload) -> LeastWork:
    if isinstance(node.pred, (bool, int)):
        return least_work(node.then if node.pred else node.otherwise)
    a, b = least_work(node.then), least_work(node.otherwise)
    return LeastWork(min(a.tasks, b.tasks), min(a.iterations, b.iterations), a.task_loc or b.task_loc,
                     a.loop_loc or b.loop_loc)


# The kinds with their own rule; every other kind does at least what its children do together (a group, a send's
# task, a pipeline's process bodies; nothing for a leaf without children).
_RULES: dict[NodeKind, Callable[[Any], LeastWork]] = {
    NodeKind.TASK: lambda node: LeastWork(1, 0, node.loc),
    **{kind: _loop for kind in LOOPS},
    NodeKind.COND: _cond,
    NodeKind.CONSUME: lambda node: LeastWork(),  # its token count is known only at run time
    NodeKind.JOIN: lambda node: LeastWork(),
}


def least_work(node: Any) -> LeastWork:
    """A lower bound on the work of listing ``node``: loops multiply their static sizes (Dense, DenseDyn of an int,
    lists, Ragged, Sparse), a branch counts its smaller side, and what only the run knows (DenseDyn of a loop
    expression, tokens a consume receives) counts 0."""
    if not isinstance(node, Workload):
        return LeastWork()
    rule = _RULES.get(node.kind)
    return rule(node) if rule is not None else _sum([least_work(c) for c in node.children()])


def check_task_count(n: int, w: Workload, task: Task, limit: int, name: str = "MAX_TASKS") -> None:
    """Refuse a run past ``limit`` tasks (``steps.MAX_TASKS``, or ``MAX_PIPELINE_TASKS`` when ``name`` says so): it
    would take minutes and gigabytes, and look like a hang."""
    if n > limit:
        pipeline = name == "MAX_PIPELINE_TASKS"
        why = ("at tens to hundreds of microseconds of simulator time a task it would run for an hour or more"
               if pipeline else
               "the simulator lists every task of a run in memory, so it would run for minutes and exhaust memory")
        raise PtortValueError(
            f"workload '{w.name or w.kind}' has more than {limit:,} tasks; {why}.",
            hint="Use larger tiles or fewer of them (the timing of a long run is periodic: a few thousand tiles "
                 "show it" + (", and execute(steady_state=True) extrapolates it exactly" if pipeline else "")
                 + f"), or shorten the loop. If the run is meant to be this long, raise ptort_lab.dsl.steps.{name}"
                 + (" and run it with execute(keep_trace=False), which keeps no task in memory." if pipeline
                    else "."), where=task.loc, locate=False)


def check_size(w: Workload, max_tasks: int, name: str = "MAX_TASKS") -> None:
    """Refuse, before listing anything, a workload whose axis sizes alone guarantee more than ``max_tasks`` tasks
    or MAX_ITERATIONS loop iterations (listing it would run for minutes and exhaust memory)."""
    try:
        least = least_work(w)
    except RecursionError:  # a tree this deep is left to the listing's own checks
        return
    if least.tasks > max_tasks:
        check_task_count(least.tasks, w, Task(w.name or str(w.kind), [], {}, loc=least.task_loc), max_tasks, name)
    if least.iterations > MAX_ITERATIONS:
        raise PtortValueError(
            f"workload '{w.name or w.kind}' loops over at least {least.iterations:,} iterations, more than "
            f"the {MAX_ITERATIONS:,} a workload may list; listing them would run for minutes before any task "
            "runs.", hint="Shorten the loops or use larger tiles (fewer, bigger iterations); an iteration that "
                          "launches nothing still has to be listed.", where=least.loop_loc, locate=False)


__all__ = ["LeastWork", "least_work", "check_task_count", "check_size"]
