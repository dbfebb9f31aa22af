"""Sizes known before listing: a lower bound on the tasks and loop iterations of a workload, from static sizes alone
(so a workload too big to list is refused at once instead of after minutes of listing), the refusals, and the check
of the settings that bound a run (``checked_limit``)."""
from __future__ import annotations

import numbers
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..errors import PtortValueError, SourceLocation
from .axes import MAX_ITERATIONS, Axis, DenseDyn, Ragged, Sparse, SparseRow
from .tasks import Task
from .tree import LOOPS, PIPELINES, NodeKind, Workload

Tokens = Mapping[int, int]  # id(channel) -> the least number of tokens it surely delivers (a pipeline's, _tokens)
_NO_TOKENS: Tokens = {}


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


def _loop(node: Workload, tokens: Tokens) -> LeastWork:
    n = 1
    for axis in node.axes:
        n *= _least_points(axis)
    body = least_work(node.body, tokens)
    return LeastWork(n * body.tasks, n * (1 + body.iterations), body.task_loc, node.loc)


def _cond(node: Workload, tokens: Tokens) -> LeastWork:
    if isinstance(node.pred, (bool, int)):
        return least_work(node.then if node.pred else node.otherwise, tokens)
    a, b = least_work(node.then, tokens), least_work(node.otherwise, tokens)
    return LeastWork(min(a.tasks, b.tasks), min(a.iterations, b.iterations), a.task_loc or b.task_loc,
                     a.loop_loc or b.loop_loc)


def _consumed(node: Workload, tokens: Tokens) -> LeastWork:
    """A consume (a join) runs its body once per token (per k-th token of every channel) its producers surely send:
    known inside a pipeline (``_tokens``), else 0. Its iterations are not a listing's loop iterations: 0."""
    channels = node.channels if node.kind is NodeKind.JOIN else (node.channel,)
    n = min((tokens.get(id(c), 0) for c in channels), default=0)
    body = least_work(node.body, tokens) if n else LeastWork()
    return LeastWork(n * body.tasks, 0, body.task_loc, None)


def _pipeline(node: Workload, tokens: Tokens) -> LeastWork:
    """A pipeline's processes together, each consume counting the tokens its channel's producers surely send."""
    tokens = _tokens(node)
    return _sum([least_work(c, tokens) for c in node.children()])


# The kinds with their own rule; every other kind does at least what its children do together (a group, a send's
# task; nothing for a leaf without children).
_RULES: dict[NodeKind, Callable[[Any, Tokens], LeastWork]] = {
    NodeKind.TASK: lambda node, tokens: LeastWork(1, 0, node.loc),
    **{kind: _loop for kind in LOOPS},
    NodeKind.COND: _cond,
    NodeKind.CONSUME: _consumed,
    NodeKind.JOIN: _consumed,
    **{kind: _pipeline for kind in PIPELINES},
}


def least_work(node: Any, tokens: Tokens = _NO_TOKENS) -> LeastWork:
    """A lower bound on the work of listing ``node``: loops multiply their static sizes (Dense, DenseDyn of an int,
    lists, Ragged, Sparse), a branch counts its smaller side, a consume in a pipeline counts its body once per
    token its channel's producers surely send (``tokens``), and what only the run knows (DenseDyn of a loop
    expression, tokens of a consume outside a pipeline) counts 0."""
    if not isinstance(node, Workload):
        return LeastWork()
    rule = _RULES.get(node.kind)
    return rule(node, tokens) if rule is not None else _sum([least_work(c, tokens) for c in node.children()])


def _least_sends(node: Any, channel: Any, tokens: Tokens) -> int:
    """At least how many tokens a body sends to ``channel`` (by the rules of ``least_work``: a send is one)."""
    if not isinstance(node, Workload):
        return 0
    kind = node.kind
    if kind is NodeKind.SEND:
        return (node.channel is channel) + _least_sends(node.value, channel, tokens)
    if kind in LOOPS:
        n = 1
        for axis in node.axes:
            n *= _least_points(axis)
        return n * _least_sends(node.body, channel, tokens) if n else 0
    if kind is NodeKind.COND:
        if isinstance(node.pred, (bool, int)):
            return _least_sends(node.then if node.pred else node.otherwise, channel, tokens)
        return min(_least_sends(node.then, channel, tokens), _least_sends(node.otherwise, channel, tokens))
    if kind is NodeKind.CONSUME or kind is NodeKind.JOIN:
        channels = node.channels if kind is NodeKind.JOIN else (node.channel,)
        n = min((tokens.get(id(c), 0) for c in channels), default=0)
        return n * _least_sends(node.body, channel, tokens) if n else 0
    return sum(_least_sends(c, channel, tokens) for c in node.children())


def _consumes(node: Workload) -> list[Any]:
    """Every channel a body consumes (in a consume or a join), anywhere in it."""
    out: list[Any] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if n.kind is NodeKind.CONSUME:
            out.append(n.channel)
        elif n.kind is NodeKind.JOIN:
            out.extend(n.channels)
        stack.extend(n.children())
    return out


def _tokens(pipe: Workload) -> dict[int, int]:
    """id(channel) -> at least how many tokens its producers send, for every channel of a pipeline whose count
    follows from static sizes: a source's loops, then each consumer that sends on once per token it takes, channel
    after channel (a linear chain, or any graph without a cycle); a channel fed, even in part, from a cycle of
    channels counts 0 (never more than is certain)."""
    channels = list(pipe.fields["channels"])
    feeds: dict[int, set[int]] = {id(c): set() for c in channels}  # channel -> the channels its producers consume
    for c in channels:
        for p in pipe.producers(c):
            if isinstance(p.workload, Workload):
                feeds[id(c)].update(id(d) for d in _consumes(p.workload) if id(d) in feeds)
    waiting = {cid: len(needs) for cid, needs in feeds.items()}
    feeding: dict[int, list[Any]] = {}
    for c in channels:
        for d in feeds[id(c)]:
            feeding.setdefault(d, []).append(c)
    ready = [c for c in channels if not waiting[id(c)]]
    tokens: dict[int, int] = {}
    while ready:  # in topological order (Kahn): every channel after all those its producers consume
        c = ready.pop()
        tokens[id(c)] = sum(_least_sends(p.workload, c, tokens) for p in pipe.producers(c))
        for later in feeding.get(id(c), ()):
            waiting[id(later)] -= 1
            if not waiting[id(later)]:
                ready.append(later)
    return tokens


def checked_limit(value: Any, setting: str, unit: str, example: str) -> int:
    """The run limit ``setting`` (its full name, e.g. ``ptort_lab.sim.engine.MAX_STEPS``) as an int >= 1: an int or
    a numpy integer; anything else (a bool, a float, a str, None, 0 or less) is refused with a hint setting it to
    ``example`` (a sensible value in ``unit``, e.g. "a step count")."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and int(value) >= 1:
        return int(value)
    raise PtortValueError(f"the run limit {setting} must be an int >= 1, got {value!r}.",
                          hint=f"Set it to {unit}, e.g. {setting} = {example}.")


# The task limits of ptort_lab.dsl.steps, and a sensible larger setting of each (checked_limit's hint).
_TASK_LIMIT_EXAMPLES = {"MAX_TASKS": "5_000_000", "MAX_PIPELINE_TASKS": "50_000_000"}


def checked_task_limit(limit: Any, name: str = "MAX_TASKS") -> int:
    """``ptort_lab.dsl.steps.<name>`` (MAX_TASKS or MAX_PIPELINE_TASKS) checked (``checked_limit``)."""
    return checked_limit(limit, f"ptort_lab.dsl.steps.{name}", "a task count", _TASK_LIMIT_EXAMPLES[name])


def check_task_count(n: int, w: Workload, task: Task, limit: Any, name: str = "MAX_TASKS",
                     least: bool = False) -> None:
    """Refuse a run past ``limit`` tasks (``steps.MAX_TASKS``, or ``MAX_PIPELINE_TASKS`` when ``name`` says so): it
    would take minutes and gigabytes, and look like a hang. ``least``: ``n`` is a lower bound known from static
    sizes (``check_size``), named in the message; else ``n`` is the count listed so far. Called once per listed
    task: the limit itself is checked (``checked_limit``) only when ``n`` is not within it."""
    try:
        if n <= limit:
            return
    except TypeError:  # None, a str, ...: refused just below
        pass
    limit = checked_task_limit(limit, name)
    if n <= limit:
        return
    pipeline = name == "MAX_PIPELINE_TASKS"
    listing = not pipeline and w.is_pipeline  # only enumerate() lists a pipeline's tasks (a run streams them)
    count = f"has more than {limit:,} tasks" + (f" (at least {n:,})" if least else "")
    if pipeline:
        why = "at tens to hundreds of microseconds of simulator time a task it would run for an hour or more"
    elif listing:
        why = ("enumerate() lists every task of the pipeline in memory (about 0.5-1 KB each), so it would run for "
               "minutes and exhaust memory")
    else:
        why = ("enumerate() and a run that computes values list every task in memory (about 0.5-1 KB each), so "
               "they would run for minutes and exhaust memory")
    if listing:
        hint = ("To count the tasks without listing them, run the pipeline with execute(keep_trace=False) and read "
                "stats().task_count (it keeps nothing per task). If the listing is meant to be this long, raise "
                f"ptort_lab.dsl.steps.{name}.")
    else:
        hint = ("Use larger tiles or fewer of them (the timing of a long run is periodic: a few thousand tiles "
                "show it" + (", and execute(steady_state=True) extrapolates it exactly" if pipeline else "")
                + f"), or shorten the loop. If the run is meant to be this long, raise ptort_lab.dsl.steps.{name}"
                + (" and run it with execute(keep_trace=False), which keeps no task in memory." if pipeline
                   else "."))
    raise PtortValueError(f"workload '{w.name or w.kind}' {count}; {why}.", hint=hint, where=task.loc, locate=False)


def check_size(w: Workload, max_tasks: Any, name: str = "MAX_TASKS") -> None:
    """Refuse, before listing anything, a workload whose axis sizes alone guarantee more than ``max_tasks`` tasks
    (``steps.<name>``, checked) or MAX_ITERATIONS loop iterations (listing it would run for minutes and exhaust
    memory). A pipeline's consumes count the tokens their producers surely send."""
    max_tasks = checked_task_limit(max_tasks, name)
    try:
        least = least_work(w)
    except RecursionError:  # a tree this deep is left to the listing's own checks
        return
    if least.tasks > max_tasks:
        check_task_count(least.tasks, w, Task(w.name or str(w.kind), [], {}, loc=least.task_loc), max_tasks, name,
                         least=True)
    if least.iterations > MAX_ITERATIONS:
        raise PtortValueError(
            f"workload '{w.name or w.kind}' loops over at least {least.iterations:,} iterations, more than "
            f"the {MAX_ITERATIONS:,} a workload may list; listing them would run for minutes before any task "
            "runs.", hint="Shorten the loops or use larger tiles (fewer, bigger iterations); an iteration that "
                          "launches nothing still has to be listed.", where=least.loop_loc, locate=False)


__all__ = ["LeastWork", "least_work", "check_task_count", "check_size", "checked_limit", "checked_task_limit"]
