"""How a data-parallel run issues its tasks under a TimingPolicy: the issue order and what each task waits for.

The reference records ``TimingPolicy`` and ignores it; here each policy has a defined effect:

- ``immediate`` (default): tasks are issued in program order as soon as their core and inputs allow.
- ``batched(n)``: tasks are issued in batches of n (in issue order); a batch starts only when every task of the
  previous one has finished, as a host that submits n tasks and waits for them would.
- ``interleaved(s)``: the program-order task list is cut into s contiguous chunks, and tasks are issued taking one
  from each chunk in turn, so s separate regions of the iteration space are in flight together. A chunk whose next
  task depends on a task not issued yet skips its turn, so the order stays a valid one (no task is issued before a
  task it depends on) and a run can never deadlock on it.
- ``rate_limit(r)``: the k-th task issued (from 0) starts no earlier than k / r milliseconds, in cycles at the
  machine clock: ``floor(k * clock_hz / (1000 * r))``.

Issue order also decides ``round_robin`` dispatch (the k-th task issued goes to core k mod n).
"""
from __future__ import annotations

import heapq
from typing import Any, Callable, Iterator

import numpy as np

from ..dsl.commands import AFTER, NOT_BEFORE
from ..dsl.workload import Task
from ..errors import PtortValueError, raise_user_error


def interleave(tasks: list[Task], deps: list[list[int]], streams: int) -> list[int]:
    """Positions of ``tasks`` in ``interleaved(streams)`` issue order (see the module docstring)."""
    n = len(tasks)
    streams = max(1, min(streams, n))  # more chunks than tasks is one task per chunk: program order, in O(n)
    size = -(-n // streams) if n else 0
    heads = [c * size for c in range(streams) if c * size < n]
    ends = [min(h + size, n) for h in heads]
    issued: set[int] = set()
    order: list[int] = []
    while len(order) < n:
        before = len(order)
        for c, head in enumerate(heads):
            if head < ends[c] and all(d in issued for d in deps[head]):
                order.append(head)
                issued.add(tasks[head].id)
                heads[c] = head + 1
        if len(order) == before:  # only if a dependency points forward, which infer_dependencies never does
            stuck = [tasks[h].id for c, h in enumerate(heads) if h < ends[c]]
            raise PtortValueError(f"TimingPolicy.interleaved({streams}) cannot order tasks {stuck}: each waits for "
                                  "a task that is not issued yet.",
                                  hint="Use TimingPolicy.immediate for this workload.", locate=False)
    return order


def by_priority(tasks: list[Task], deps: list[list[int]], key: Any) -> list[int]:
    """Positions of ``tasks`` in ``ReadyPolicy.priority(key)`` order: among the tasks whose dependencies are issued,
    the lowest ``key(task)`` first (ties in program order)."""
    waiting = [len(d) for d in deps]
    users: dict[int, list[int]] = {}
    for i, d in enumerate(deps):
        for tid in d:
            users.setdefault(tid, []).append(i)
    def priority(i: int) -> tuple[Any, int]:
        try:
            value = key(tasks[i])
        except Exception as e:  # noqa: BLE001 - the user's priority function
            raise_user_error(e, f"the ReadyPolicy.priority function (for task {tasks[i].id})")
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)) \
                or value != value:
            raise PtortValueError(f"the ReadyPolicy.priority function returned {value!r} for task {tasks[i].id}; it "
                                  "must return a number (lower runs first).",
                                  hint='Return e.g. -t.get("b") or t.params[0].', where=tasks[i].loc, locate=False)
        return value, i

    ready = [priority(i) for i in range(len(tasks)) if not waiting[i]]
    heapq.heapify(ready)
    order: list[int] = []
    while ready:
        _, i = heapq.heappop(ready)
        order.append(i)
        for j in users.get(tasks[i].id, ()):
            waiting[j] -= 1
            if not waiting[j]:
                heapq.heappush(ready, priority(j))
    if len(order) < len(tasks):  # only if a dependency points forward, which infer_dependencies never does
        raise PtortValueError("ReadyPolicy.priority cannot order every task: some wait for a task never issued.",
                              hint="Use ReadyPolicy.fifo() for this workload.", locate=False)
    return order


def issue_plan(tasks: list[Task], deps: list[list[int]], timing: Any, clock_hz: float,
               ready: Any = None) -> tuple[list[Task], list[tuple[tuple[Any, ...], ...]]]:
    """(tasks in issue order, the commands each must pass before it starts: data deps, batch barrier, rate).
    ``ready`` is the task graph's ReadyPolicy: ``priority(fn)`` orders tasks before the TimingPolicy applies."""
    kind = getattr(timing, "kind", "immediate") if timing is not None else "immediate"
    order = list(range(len(tasks)))
    if ready is not None and ready.kind == "priority":
        order = by_priority(tasks, deps, ready.fn)
        tasks, deps = [tasks[i] for i in order], [deps[i] for i in order]
        order = list(range(len(tasks)))
    if kind == "interleaved":
        order = interleave(tasks, deps, int(timing.value))
    elif kind not in ("immediate", "batched", "rate_limit"):
        raise PtortValueError(f"unknown TimingPolicy {kind!r}.",
                              hint="Use TimingPolicy.immediate, .batched(n), .interleaved(s) or .rate_limit(r).")
    issued = [tasks[i] for i in order]
    gates = [_gates(k, deps[i], kind, timing, clock_hz, issued) for k, i in enumerate(order)]
    return issued, gates


def streams(timing: Any, ready: Any = None) -> bool:
    """Whether ``stream_plan`` can issue under these policies: in program order, each task's gates known from the
    tasks before it (not ``interleaved``, which reorders the whole list, nor ``ReadyPolicy.priority``)."""
    kind = getattr(timing, "kind", "immediate") if timing is not None else "immediate"
    return kind in ("immediate", "batched", "rate_limit") and (ready is None or ready.kind != "priority")


def stream_plan(tasks: Iterator[Task], deps_of: Callable[[Task], list[int]], timing: Any,
                clock_hz: float) -> Iterator[tuple[Task, tuple[tuple[Any, ...], ...]]]:
    """``issue_plan`` one task at a time, for policies that ``streams``: (task, its gates) in program order, the
    tasks' ids their positions (``steps.stream_tasks``)."""
    kind = getattr(timing, "kind", "immediate") if timing is not None else "immediate"
    for k, task in enumerate(tasks):
        yield task, _gates(k, deps_of(task), kind, timing, clock_hz, None)


def _gates(k: int, deps: list[int], kind: str, timing: Any, clock_hz: float,
           issued: list[Task] | None) -> tuple[tuple[Any, ...], ...]:
    """The commands the k-th task issued must pass before it starts: its data deps, then what the TimingPolicy adds.
    ``issued``: the tasks in issue order (None when they are issued in program order, ids 0, 1, ...)."""
    pre: list[tuple[Any, ...]] = []
    if deps:
        pre.append((AFTER, deps))
    if kind == "batched" and k >= timing.value:
        n = int(timing.value)
        batch = k // n
        before = (list(range((batch - 1) * n, batch * n)) if issued is None
                  else [t.id for t in issued[(batch - 1) * n:batch * n]])
        pre.append((AFTER, before, f"batch {batch} waits for batch {batch - 1}"))
    elif kind == "rate_limit" and k:
        at = k * clock_hz / (1000 * timing.value)
        if not at < 2**62:  # also catches inf from a vanishing rate
            raise PtortValueError(f"TimingPolicy.rate_limit({timing.value:g}) spaces tasks {at / k:g} cycles "
                                  "apart, beyond any simulated time.",
                                  hint="Use a rate of at least one task per second: rate_limit(0.001) or more.")
        pre.append((NOT_BEFORE, int(at), f"rate limit {timing.value:g} tasks/ms"))
    return tuple(pre)


__all__ = ["issue_plan", "interleave", "streams", "stream_plan"]
