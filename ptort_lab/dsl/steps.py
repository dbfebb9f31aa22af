"""Process bodies as step generators: what a body does, in order, as commands a driver carries out.

A body yields ``(TASK, task)``; ``(SEND, channel, task, token)`` (take a free slot, run the task into it, pass the
token on); ``(ACQUIRE, channel)`` ... ``(PUSH, channel, token)`` (the same around a non-task body); ``(PULL, channel,
release)`` (first free the slot of the previous token when ``release``; the driver sends back the next token, or
CLOSED); ``(RECORD, event)`` and ``(WAIT, event)``. ``(TASK_PULL, task, pull)`` and ``(SEND_PULL, channel, task,
token, pull)`` are a TASK or SEND followed by the PULL command ``pull``, in one step: the driver carries out both and
sends back the pull's reply. Only a driver knows what a command costs or whether it blocks: the simulator runs them
in simulated time; ``enumerate_tasks`` here runs them with unbounded buffers and no time.
Common leaf bodies (a task, a send of a task) are run inline, since these loops are the simulator's inner loop.
"""
from __future__ import annotations

import inspect
import itertools
from collections import deque
from typing import Any, Callable, Generator, Iterator

import numpy as np

from ..errors import DeadlockError, DSLUsageError, PtortTypeError, PtortValueError, RunLimitError, raise_user_error
from . import slots
from .expr import Expr, LoopVar, NameTemplate, evaluate
from .types import TensorView
from .workload import Task, Workload, resolve_select_source

TASK, SEND, ACQUIRE, PUSH, PULL, RECORD, WAIT, TASK_PULL, SEND_PULL = range(9)
CLOSED = object()

Steps = Generator[tuple[Any, ...], Any, None]


def _getter(value: Any) -> Callable[[dict[str, Any]], Any]:
    if isinstance(value, LoopVar):
        name = value.name
        return lambda b: b[name]
    if isinstance(value, Expr):
        return value.evaluate
    return lambda b: value


def _view_maker(view: TensorView, loc: Any) -> Callable[[dict[str, Any]], TensorView]:
    if not view.is_symbolic:
        return lambda b: view
    base = view.base
    return lambda b: TensorView(base, view.resolve(b, loc))


def task_factory(node: Workload) -> Callable[[dict[str, Any]], Task]:
    """A function building the concrete Task of a task node under loop bindings (cached on the node)."""
    f = node.fields
    cached = f.get("_factory")
    if cached is not None:
        return cached  # type: ignore[no-any-return]
    kernel = f["kernel"]
    name = kernel if isinstance(kernel, str) else kernel.name
    kref = None if isinstance(kernel, str) else kernel
    cycles, loc = f.get("cycles"), node.loc
    params = [_getter(p) for p in f["params"]]
    res = f["resources"]
    # Loops hand every iteration a fresh bindings dict that nobody changes afterwards, so tasks keep it as is.
    if isinstance(res, dict) and not res and len(params) == 1 and isinstance(f["params"][0], LoopVar):
        var = f["params"][0].name

        def make(b: dict[str, Any]) -> Task:
            return Task(name, [b[var]], {}, 0, b, kref, cycles, loc)
    elif isinstance(res, dict):
        makers = [(k, _view_maker(v, loc) if isinstance(v, TensorView) else _getter(v)) for k, v in res.items()]

        def make(b: dict[str, Any]) -> Task:
            return Task(name, [g(b) for g in params], {k: m(b) for k, m in makers}, 0, b, kref, cycles, loc)
    else:
        items = [_view_maker(v, loc) if isinstance(v, TensorView) else _getter(v) for v in res]

        def make(b: dict[str, Any]) -> Task:
            return Task(name, [g(b) for g in params], [m(b) for m in items], 0, b, kref, cycles, loc)
    if isinstance(name, NameTemplate):  # task(f"expert_{e}", ...): each task is named by its own value of e
        make = name.renaming(make)
    f["_factory"] = make
    return make


def make_task(node: Workload, bindings: dict[str, Any]) -> Task:
    """The concrete Task a task node stands for under ``bindings``."""
    return task_factory(node)(bindings)


def _points(axes: tuple[Any, ...], bindings: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    lists = []
    for a in axes:
        pts = resolve_select_source(a, bindings)
        lists.append([p if isinstance(p, tuple) else (p,) for p in pts])
    for combo in itertools.product(*lists):
        yield tuple(v for part in combo for v in part)


def _leaf(node: Workload) -> tuple[int, Any, Any, Any] | None:
    """(TASK, factory, -, -) or (SEND, factory, channel, token) for bodies run inline; None otherwise."""
    if node.kind == "task":
        return (TASK, task_factory(node), None, None)
    if node.kind == "send" and isinstance(node.fields["value"], Workload) and node.fields["value"].kind == "task":
        return (SEND, task_factory(node.fields["value"]), node.fields["channel"], node.fields["token"])
    return None


def _token(task: Task, token: Any, bindings: dict[str, Any], ch: Any, sent: dict[Any, int]) -> Any:
    """What a send passes on: its ``token=`` expression, else the task's first axis value, else (a task launched
    without axes, the spec's ``send(ch, kernel(...))``) the send's index on ``ch`` (see ``_next_index``)."""
    if token is not None:
        return evaluate(token, bindings)
    return task.params[0] if task.params else _next_index(sent, ch)


def _next_index(sent: dict[Any, int], ch: Any) -> int:
    """0, 1, 2, ...: how many tokens this process has sent to ``ch`` so far without an axis value or ``token=``."""
    n = sent.get(ch, 0)
    sent[ch] = n + 1
    return n


def steps(node: Workload, bindings: dict[str, Any], sent: dict[Any, int] | None = None) -> Steps:
    """Walk ``node`` under ``bindings`` and yield its commands in program order. ``sent`` counts, per channel, this
    process's sends that carry no axis value (one dict per process run)."""
    if sent is None:
        sent = {}
    kind = node.kind
    f = node.fields
    if kind == "task":
        try:
            task = make_task(node, bindings)
        except slots.UnsetSlot as e:
            raise _at_node(e, node) from None
        yield (TASK, task)
    elif kind in ("parallel_for", "for_each", "select"):
        names = [v.name for v in f["vars"]]
        body = f["body"]
        axes = f["axes"]
        if len(names) == 1 and len(axes) == 1:  # the common 1-D loop: bind each value as it is
            name = names[0]
            scopes: Iterator[dict[str, Any]] = ({**bindings, name: v} if bindings else {name: v}
                                                for v in resolve_select_source(axes[0], bindings))
        else:
            scopes = ({**bindings, **dict(zip(names, point))} for point in _points(axes, bindings))
        leaf = _leaf(body)
        if leaf is None:
            for inner in scopes:
                yield from steps(body, inner, sent)
        else:
            op, make, ch, token = leaf
            for inner in scopes:
                task = make(inner)
                if op == TASK:
                    yield (TASK, task)
                else:
                    # the token is the task's first axis value unless send(token=...) says otherwise
                    yield (SEND, ch, task, task.params[0] if token is None and task.params else
                           _token(task, token, inner, ch, sent))
    elif kind in ("combine", "sequential"):
        for child in f["children"]:
            yield from steps(child, bindings, sent)
    elif kind == "cond":
        pred = f["pred"]
        if callable(pred) and not hasattr(pred, "evaluate"):
            value = _call_predicate(pred, bindings, node)
        else:
            try:
                value = evaluate(pred, bindings)
            except slots.UnsetSlot as e:
                raise _at_node(e, node) from None
        if not isinstance(value, (bool, int, np.bool_, np.integer)):
            raise PtortTypeError(f"a condition evaluated to {type(value).__name__} {value!r} for "
                                 f"{dict(bindings) or 'no loop variables'}; it must be a bool.",
                                 hint="Return one True/False per task, e.g. lambda t: t.get('b') < 4, or use "
                                      "P.when(b < 4).", where=node.loc, locate=node.loc is None)
        yield from steps(f["then"] if value else f["otherwise"], bindings, sent)
    elif kind in ("slot_set", "slot_load"):
        if not slots.is_listing():
            raise DSLUsageError("runtime slots work in data-parallel workloads, not in pipeline process bodies (their "
                                "processes run concurrently and would share one slot table).",
                                hint="Read the value into a tensor and branch with cond(lambda t: ...), or build the "
                                     "slot-driven part as a data-parallel @workload.", where=node.loc, locate=False)
        if kind == "slot_set":
            try:
                value = evaluate(f["value"], bindings)
            except slots.UnsetSlot as e:
                raise _at_node(e, node) from None
            slots.store(f["slot"], value, f"slot_set_u64({f['slot']}, {f['value']})", node.loc)
        else:
            value = slots.load_element(f["view"], f["row"], f["col"], bindings, node.loc)
            slots.store(f["slot"], value, f"the element slot_load_u64({f['slot']}, {f['view']!r}) read", node.loc)
    elif kind == "send":
        ch, value, token = f["channel"], f["value"], f["token"]
        if isinstance(value, Workload) and value.kind == "task":
            task = make_task(value, bindings)
            yield (SEND, ch, task, _token(task, token, bindings, ch, sent))
        else:
            yield (ACQUIRE, ch)
            if isinstance(value, Workload):
                yield from steps(value, bindings, sent)
            elif token is None:
                token = value
            yield (PUSH, ch, evaluate(token, bindings) if token is not None else _next_index(sent, ch))
    elif kind == "consume":
        ch, name, body = f["channel"], f["var"].name, f["body"]
        leaf = _leaf(body)
        more = (PULL, ch, True)
        token = yield (PULL, ch, False)
        if leaf is None:
            while token is not CLOSED:
                yield from steps(body, {**bindings, name: token}, sent)
                token = yield more
            return
        op, make, out, token_expr = leaf
        while token is not CLOSED:
            inner = {**bindings, name: token} if bindings else {name: token}
            task = make(inner)
            # One step per item: the body's command and the pull of the next token (which frees this one's slot).
            if op == TASK:
                token = yield (TASK_PULL, task, more)
            else:
                token = yield (SEND_PULL, out, task, task.params[0] if token_expr is None and task.params else
                               _token(task, token_expr, inner, out, sent), more)
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


# Listing a task costs about 1 KB and a few microseconds, running one in a pipeline about 1.5 us: past these a
# run takes minutes and gigabytes and looks like a hang (the engine bench goes to 3 million pipeline tasks).
MAX_TASKS = 2_000_000
MAX_PIPELINE_TASKS = 20_000_000


def check_task_count(n: int, w: Workload, task: Task, limit: int | None = None) -> None:
    """Refuse a run past ``limit`` (default MAX_TASKS) tasks: it would take minutes and gigabytes, and look like a
    hang."""
    limit = MAX_TASKS if limit is None else limit
    if n > limit:
        raise PtortValueError(
            f"workload '{w.name or w.kind}' has more than {limit:,} tasks; the simulator keeps every task of a "
            "run in memory, so it would run for minutes and exhaust memory.",
            hint="Use larger tiles or fewer of them (the timing of a long run is periodic: a few thousand tiles "
                 "show it), or shorten the loop.", where=task.loc, locate=False)


def enumerate_tasks(w: Workload) -> list[Task]:
    """Tasks in program order (process by process for pipelines), with ids 0..n-1."""
    pipe = pipeline_of(w)
    if pipe is None:
        slots.begin_listing()
        try:
            tasks = _list(w)
        finally:
            loaded = slots.end_listing()
        if loaded:
            _check_slot_loads(loaded, tasks)
    else:
        tasks = run_dataflow(pipe)
    for i, t in enumerate(tasks):
        t.id = i
    return tasks


def _check_slot_loads(loaded: list[tuple[int, Any, str]], tasks: list[Task]) -> None:
    """A slot load must read a tensor no task of the workload writes: listing happens before any task runs."""
    from .types import Direction
    written = set()
    for t in tasks:
        k = t.kernel_ref
        if k is None or not isinstance(t.resources, dict):
            continue
        for name, (direction, _) in k.signature.items():
            view = t.resources.get(name)
            if direction in (Direction.OUT, Direction.INOUT) and isinstance(view, TensorView):
                written.add(id(view.base))
    for base, where, text in loaded:
        if base in written:
            raise PtortValueError(f"slot_load_u64 reads {text}, which tasks of this workload write; slots are read "
                                  "while the workload is listed, before any task runs, so it would see the previous "
                                  "run's values.", hint="Load from an input tensor that no task writes.",
                                  where=where, locate=where is None)


def _list(w: Workload) -> list[Task]:
    """The data-parallel workload's tasks in program order (slot statements run as they are reached)."""
    tasks: list[Task] = []
    for cmd in steps(w, {}):
        if cmd[0] == TASK:
            tasks.append(cmd[1])
            check_task_count(len(tasks), w, cmd[1])
        elif cmd[0] in (SEND, ACQUIRE, PUSH, PULL, RECORD, WAIT, TASK_PULL, SEND_PULL):
            raise DSLUsageError(
                "send/consume/record/synchronize steps only run inside the processes of a pipeline.",
                hint="Wrap them in process(...).body(...) and connect() the processes, or use P.pipe().")
    return tasks


# Listing a pipeline has no clock: steps that list no task and end no process are how processes passing items back
# and forth forever show (each takes about a microsecond, so the default stops such a loop in a second or two).
MAX_LISTING_STEPS_WITHOUT_TASKS = 1_000_000


def run_dataflow(pipe: Workload) -> list[Task]:
    """Run every process with unbounded buffers and no time; each runs until it blocks, in process order."""
    procs = list(pipe.fields["processes"])
    idle = 0  # steps since a task was listed or a process ended
    recent: deque[tuple[str, tuple[Any, ...]]] = deque(maxlen=64)
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
                        idle = 0
                        break
                    idle += 1
                    recent.append((p.name, cmd))
                    if idle > MAX_LISTING_STEPS_WITHOUT_TASKS:
                        raise _listing_loops(pipe, idle - 1, recent)
                op = cmd[0]
                replies[p.name] = None
                if op == TASK or op == TASK_PULL or op == SEND or op == SEND_PULL:
                    idle = 0
                if op == TASK or op == TASK_PULL:
                    cmd[1].process = p.name
                    tasks.append(cmd[1])
                    check_task_count(len(tasks), pipe, cmd[1])
                elif op == SEND or op == SEND_PULL:
                    cmd[2].process = p.name
                    tasks.append(cmd[2])
                    check_task_count(len(tasks), pipe, cmd[2])
                    queues.setdefault(id(cmd[1]), deque()).append(cmd[3])
                elif op == PUSH:
                    queues.setdefault(id(cmd[1]), deque()).append(cmd[2])
                if op == TASK_PULL or op == SEND_PULL:  # then the pull it carries (the task part was progress)
                    progressed = True
                    cmd = cmd[-1]
                    op = PULL
                if op == PULL:
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
            fills = ", ".join(f"'{c.name}' {len(queues.get(id(c), ()))} token(s) waiting"
                              + (" (closed)" if producers_left.get(id(c), 0) == 0 else "")
                              for c in pipe.fields["channels"])
            raise DeadlockError(f"the pipeline can never finish: {waits}." + (f" Channels: {fills}." if fills else ""),
                                hint="Check that every consumed channel has a producer that sends, and that every "
                                     "synchronize has a matching record.", where=pipe.loc, locate=pipe.loc is None)
    return tasks


def _listing_loops(pipe: Workload, steps_taken: int, recent: deque[tuple[str, tuple[Any, ...]]]) -> RunLimitError:
    """The error for a listing whose processes pass items around forever, naming them and their channels."""
    acts: dict[str, set[tuple[int, str]]] = {}
    for name, cmd in recent:
        op, found = cmd[0], acts.setdefault(name, set())
        if op in (SEND, SEND_PULL, ACQUIRE, PUSH):
            found.add((0, f"sends to '{cmd[1].name}'"))
        if op in (PULL, TASK_PULL, SEND_PULL):
            found.add((1, f"consumes '{cmd[-1][1].name if op != PULL else cmd[1].name}'"))
        if op in (RECORD, WAIT):
            found.add((2, f"{'records' if op == RECORD else 'synchronizes on'} '{cmd[1].name}'"))
    parts = []
    for name in sorted(acts, key=[p.name for p in pipe.fields["processes"]].index):
        words = [w for _, w in sorted(acts[name])]
        parts.append(f"'{name}' " + (", ".join(words[:-1]) + " and " if len(words) > 1 else "") + words[-1])
    return RunLimitError(
        f"Run limit: listing the pipeline's tasks took {steps_taken:,} steps in which no process ran a task or "
        f"finished. Active: {'; '.join(parts)}. Processes that feed each other through channels pass items back and "
        "forth forever: a consume loop ends only when every producer of its channel has finished.",
        hint="Give the loop an end, e.g. a for_each over a finite axis instead of a consume that feeds its own "
             "producer. If the listing is only long, raise the limit: ptort_lab.dsl.steps."
             f"MAX_LISTING_STEPS_WITHOUT_TASKS = {10 * MAX_LISTING_STEPS_WITHOUT_TASKS:_} (now "
             f"{MAX_LISTING_STEPS_WITHOUT_TASKS:_}).", where=pipe.loc, locate=pipe.loc is None)


def _at_node(e: slots.UnsetSlot, node: Workload) -> slots.UnsetSlot:
    """An unset-slot error moved to the statement that reads the slot."""
    return slots.UnsetSlot(e.what, hint=e.hint, where=node.loc, locate=node.loc is None)


def _call_predicate(pred: Any, bindings: dict[str, Any], node: Workload) -> Any:
    """A callable condition takes the task bindings (``lambda t: t.get("b") < 4``) or nothing (``lambda: flag``,
    the reference's 96b0376 form)."""
    try:
        params = [p for p in inspect.signature(pred).parameters.values()
                  if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):  # builtins without a signature: give them the bindings
        params = [None]
    if len(params) > 1:
        raise PtortTypeError(f"a condition function takes {len(params)} arguments; it gets one (the task, with "
                             "t.get('b') for its loop variables) or none.",
                             hint="Write lambda t: t.get('b') < 4.", where=node.loc, locate=node.loc is None)
    try:
        return pred() if not params else pred(Task("condition", [], {}, 0, dict(bindings), loc=node.loc))
    except Exception as e:  # noqa: BLE001 - the user's predicate
        raise_user_error(e, f"a condition function (at {node.loc or 'its cond'}, for {dict(bindings)})")
