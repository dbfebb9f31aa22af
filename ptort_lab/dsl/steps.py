"""Process bodies as step generators: what a body does, in order, as commands a driver carries out.

A body yields ``(TASK, task)``, ``(ACQUIRE, channel)``, ``(PUSH, channel, token)``, ``(PULL, channel)`` (the driver
sends back the token, or CLOSED), ``(RELEASE, channel)``, ``(RECORD, event)`` and ``(WAIT, event)``. Only a driver
knows what a command costs or whether it blocks: the simulator runs them in simulated time; ``enumerate_tasks`` here
runs them with unbounded buffers and no time to list tasks.
"""
from __future__ import annotations

import itertools
from collections import deque
from typing import Any, Generator, Iterator

from ..errors import DeadlockError, DSLUsageError, PtortTypeError
from .expr import evaluate
from .types import TensorView
from .workload import Task, Workload, resolve_select_source

TASK, ACQUIRE, PUSH, PULL, RELEASE, RECORD, WAIT = range(7)
CLOSED = object()

Steps = Generator[tuple[Any, ...], Any, None]


def make_task(node: Workload, bindings: dict[str, Any]) -> Task:
    """The concrete Task a task node stands for under ``bindings``."""
    f = node.fields
    kernel = f["kernel"]
    params = [evaluate(p, bindings) for p in f["params"]]
    res = f["resources"]
    if isinstance(res, dict):
        resolved: Any = {}
        for k, v in res.items():
            if isinstance(v, TensorView):
                resolved[k] = TensorView(v.base, v.resolve(bindings)) if v.index else v
            else:
                resolved[k] = evaluate(v, bindings)
    else:
        resolved = [TensorView(v.base, v.resolve(bindings)) if isinstance(v, TensorView) else v for v in res]
    name = kernel if isinstance(kernel, str) else kernel.name
    return Task(name, params, resolved, 0, dict(bindings), None if isinstance(kernel, str) else kernel,
                f.get("cycles"), node.loc)


def _points(axes: tuple[Any, ...], bindings: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    lists = []
    for a in axes:
        pts = resolve_select_source(a, bindings)
        lists.append([p if isinstance(p, tuple) else (p,) for p in pts])
    for combo in itertools.product(*lists):
        yield tuple(v for part in combo for v in part)


def steps(node: Workload, bindings: dict[str, Any]) -> Steps:
    """Walk ``node`` under ``bindings`` and yield its commands in program order."""
    kind = node.kind
    f = node.fields
    if kind == "task":
        yield (TASK, make_task(node, bindings))
    elif kind in ("parallel_for", "for_each", "select"):
        names = [v.name for v in f["vars"]]
        body = f["body"]
        for point in _points(f["axes"], bindings):
            inner = dict(bindings)
            inner.update(zip(names, point))
            yield from steps(body, inner)
    elif kind in ("combine", "sequential"):
        for child in f["children"]:
            yield from steps(child, bindings)
    elif kind == "cond":
        pred = f["pred"]
        value = pred(Task("", [], {}, 0, dict(bindings))) if callable(pred) and not hasattr(pred, "evaluate") \
            else evaluate(pred, bindings)
        yield from steps(f["then"] if value else f["otherwise"], bindings)
    elif kind == "send":
        ch, value = f["channel"], f["value"]
        yield (ACQUIRE, ch)
        token = f["token"]
        if isinstance(value, Workload):
            if value.kind == "task":
                task = make_task(value, bindings)
                yield (TASK, task)
                if token is None and task.params:
                    token = task.params[0]
            else:
                yield from steps(value, bindings)
        elif token is None:
            token = evaluate(value, bindings)
        yield (PUSH, ch, evaluate(token, bindings))
    elif kind == "consume":
        ch, name, body = f["channel"], f["var"].name, f["body"]
        while True:
            token = yield (PULL, ch)
            if token is CLOSED:
                break
            inner = dict(bindings)
            inner[name] = token
            yield from steps(body, inner)
            yield (RELEASE, ch)
    elif kind == "record":
        yield (RECORD, f["event"])
    elif kind == "wait":
        yield (WAIT, f["event"])
    elif kind == "empty":
        return
    elif kind in ("pipe", "connect"):
        raise DSLUsageError("a pipeline can only be the root of a program, not a step inside another workload.",
                            hint="Compile the Pipeline itself (connect(...).compile()).", where=node.loc,
                            locate=node.loc is None)
    else:  # pragma: no cover - every kind is handled above
        raise PtortTypeError(f"unknown workload node kind {kind!r}.", hint="This is a ptort_lab bug; please report it.")


def pipeline_of(w: Workload) -> Workload | None:
    """The pipeline node a workload runs as (a connect() result, or a P.pipe() block at its root), else None."""
    if w.kind in ("connect", "pipe"):
        return w
    return None


def enumerate_tasks(w: Workload) -> list[Task]:
    """Tasks in program order (process by process for pipelines), with ids 0..n-1."""
    pipe = pipeline_of(w)
    if pipe is None:
        tasks = []
        for cmd in steps(w, {}):
            if cmd[0] == TASK:
                tasks.append(cmd[1])
            elif cmd[0] in (ACQUIRE, PUSH, PULL, RELEASE, RECORD, WAIT):
                raise DSLUsageError(
                    "send/consume/record/synchronize steps only run inside the processes of a pipeline.",
                    hint="Wrap them in process(...).body(...) and connect() the processes, or use P.pipe().")
    else:
        tasks = run_dataflow(pipe)
    for i, t in enumerate(tasks):
        t.id = i
    return tasks


def run_dataflow(pipe: Workload) -> list[Task]:
    """Run every process with unbounded buffers and no time; each runs until it blocks, in process order."""
    procs = list(pipe.fields["processes"])
    queues: dict[int, deque[Any]] = {}
    producers_left: dict[int, int] = {}
    for p in procs:
        for c in p.produces:
            producers_left[id(c)] = producers_left.get(id(c), 0) + 1
    signals: dict[int, int] = {}
    gens = {p.name: steps(p.workload, {}) for p in procs}
    replies: dict[str, Any] = {p.name: None for p in procs}
    retry: dict[str, tuple[Any, ...] | None] = {p.name: None for p in procs}
    blocked_on: dict[str, str] = {}
    done: set[str] = set()
    tasks: list[Task] = []
    while len(done) < len(procs):
        progressed = False
        for p in procs:
            if p.name in done:
                continue
            while True:
                cmd = retry[p.name]
                retry[p.name] = None
                if cmd is None:
                    try:
                        cmd = gens[p.name].send(replies[p.name])
                    except StopIteration:
                        done.add(p.name)
                        blocked_on.pop(p.name, None)
                        for c in p.produces:
                            producers_left[id(c)] -= 1
                        progressed = True
                        break
                op = cmd[0]
                replies[p.name] = None
                if op == TASK:
                    cmd[1].process = p.name
                    tasks.append(cmd[1])
                elif op == PUSH:
                    queues.setdefault(id(cmd[1]), deque()).append(cmd[2])
                elif op == PULL:
                    q = queues.setdefault(id(cmd[1]), deque())
                    if q:
                        replies[p.name] = q.popleft()
                    elif producers_left.get(id(cmd[1]), 0) == 0:
                        replies[p.name] = CLOSED
                    else:
                        blocked_on[p.name] = f"consume from '{cmd[1].name}'"
                        retry[p.name] = cmd
                        break
                elif op == RECORD:
                    signals[id(cmd[1])] = signals.get(id(cmd[1]), 0) + 1
                elif op == WAIT:
                    if signals.get(id(cmd[1]), 0) > 0:
                        signals[id(cmd[1])] -= 1
                    else:
                        blocked_on[p.name] = f"synchronize on '{cmd[1].name}'"
                        retry[p.name] = cmd
                        break
                blocked_on.pop(p.name, None)
                progressed = True
        if not progressed:
            waits = "; ".join(f"'{n}' waits to {w}" for n, w in blocked_on.items() if n not in done)
            raise DeadlockError(f"the pipeline can never finish: {waits}.",
                                hint="Check that every consumed channel has a producer that sends, and that every "
                                     "synchronize has a matching record.", where=pipe.loc, locate=pipe.loc is None)
    return tasks
