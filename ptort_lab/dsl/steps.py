"""Process bodies as step generators: what a body does, in order, as commands a driver carries out.

A body yields ``(TASK, task)``; ``(SEND, channel, task, token)`` (take a free buffer slot, run the task into it,
pass the token on); ``(ACQUIRE, channel)`` ... ``(PUSH, channel, token)`` (the same around a non-task body);
``(PULL, channel, release)`` (first free the buffer slot of the previous token when ``release``; the driver sends
back the next token, or CLOSED); ``(RELEASE, channel)`` (free that slot without pulling: a join frees every slot
before it waits for any next item); ``(RECORD, event)`` and ``(WAIT, event)``. ``(TASK_PULL, task, pull)`` and
``(SEND_PULL, channel, task, token, pull)`` are a TASK or SEND followed by the PULL command ``pull``, in one step:
the driver carries out both and sends back the pull's reply (``commands``: the vocabulary). Only a driver knows
what a command costs or whether it blocks: the simulator runs them in simulated time; ``enumerate_tasks`` here runs
them with unbounded buffers and no time.

The interpreter is a table, ``HANDLERS``: one generator per node kind. Common leaf bodies (a task, a send of a task)
run inline in the loop and consume handlers, since those loops are the simulator's inner loop.
"""
from __future__ import annotations

import itertools
from collections import deque
from typing import Any, Callable, Generator, Iterator, Mapping

import numpy as np

from ..errors import (
    DeadlockError,
    DSLUsageError,
    PipelineError,
    PtortTypeError,
    PtortValueError,
    RunLimitError,
    SourceLocation,
)
from . import runtime_slots
from .bindings import (
    TaskFactory,
    call_predicate,
    loop_points,
    make_task,
    missing_binding,
    resolve_select_source,
    task_factory,
)
from .commands import ACQUIRE, CLOSED, PULL, PUSH, RECORD, RELEASE, SEND, SEND_PULL, TASK, TASK_PULL, WAIT
from .expr import SlotValueError, evaluate
from .sizes import check_size, check_task_count, checked_limit
from .tasks import Task
from .tree import NodeKind, Workload, first_use, nesting_named
from .types import Direction, TensorView, item_key

Steps = Generator[tuple[Any, ...], Any, None]
Handler = Callable[[Any, dict[str, Any], dict[Any, int]], Steps]


def steps(node: Workload, bindings: dict[str, Any], sent: dict[Any, int] | None = None) -> Steps:
    """Walk ``node`` under ``bindings`` and yield its commands in program order. ``sent`` counts, per channel, this
    process's sends that carry no axis value (one dict per process run)."""
    return HANDLERS[node.kind](node, bindings, {} if sent is None else sent)


def _leaf(node: Workload) -> tuple[Any, TaskFactory, Any, Any] | None:
    """(TASK, factory, -, -) or (SEND, factory, channel, token) for bodies run inline; None otherwise (a send to a
    tile channel binds its item's slot: ``_send``)."""
    if node.kind is NodeKind.TASK:
        return (TASK, task_factory(node), None, None)
    if node.kind is NodeKind.SEND and isinstance(node.value, Workload) and node.value.kind is NodeKind.TASK \
            and getattr(node.channel, "tile", None) is None:
        return (SEND, task_factory(node.value), node.channel, node.token)
    return None


def _token(task: Task, token: Any, bindings: dict[str, Any], ch: Any, sent: dict[Any, int]) -> Any:
    """What a send passes on: its ``token=`` expression, else the task's first axis value, else (a task launched
    without axes, the spec's ``send(ch, kernel(...))``) the send's index on ``ch`` (see ``_next_index``)."""
    if token is not None:
        return _value(token, bindings, task.loc)
    return task.params[0] if task.params else _next_index(sent, ch)


def _value(expr: Any, bindings: dict[str, Any], loc: Any) -> Any:
    """``expr`` under ``bindings``; a loop variable with no value there is named (``bindings.missing_binding``)."""
    try:
        return evaluate(expr, bindings)
    except KeyError as e:
        raise missing_binding(e, bindings, loc) from None


def _next_index(sent: dict[Any, int], ch: Any) -> int:
    """0, 1, 2, ...: how many tokens this process has sent to ``ch`` so far without an axis value or ``token=``."""
    n = sent.get(ch, 0)
    sent[ch] = n + 1
    return n


def _with_item(bindings: dict[str, Any], ch: Any, sent: dict[Any, int]) -> dict[str, Any]:
    """``bindings`` plus the number of this process's next item on tile channel ``ch`` (a producer's slots are taken
    in turn, so its k-th item lands in slot k % depth: ``types.ItemSlot``)."""
    key = (ch, _ITEMS)
    n = sent.get(key, 0)
    sent[key] = n + 1
    return {**bindings, item_key(ch): n}


_ITEMS = "items"  # with a channel, the key of ``sent`` that counts this process's items sent to a tile channel


def _at_node(e: SlotValueError, node: Workload) -> SlotValueError:
    """A runtime-slot error (an unset slot, slot_u64 arithmetic out of range) moved to the statement that reads
    the slot."""
    return type(e)(e.what, hint=e.hint, where=node.loc, locate=node.loc is None)


# -- the handlers, one per node kind --------------------------------------------------------------------------------
def _task(node: Workload, bindings: dict[str, Any], sent: dict[Any, int]) -> Steps:
    try:
        task = make_task(node, bindings)
    except SlotValueError as e:
        raise _at_node(e, node) from None
    yield (TASK, task)


def _loop(node: Workload, bindings: dict[str, Any], sent: dict[Any, int]) -> Steps:
    names = [v.name for v in node.vars]
    body, axes = node.body, node.axes
    scopes: Iterator[dict[str, Any]]
    if len(names) == 1 and len(axes) == 1:  # the common 1-D loop: bind each value as it is
        name = names[0]
        scopes = ({**bindings, name: v} if bindings else {name: v} for v in resolve_select_source(axes[0], bindings))
    else:
        scopes = ({**bindings, **dict(zip(names, point))} for point in loop_points(axes, bindings))
    limit = MAX_LOOP_ITERATIONS
    if type(limit) is not int or limit < 1:
        limit = _loop_limit()
    leaf = _leaf(body)
    if leaf is None:
        run = HANDLERS[body.kind]
        for inner in scopes:
            # the body may hold loops of its own, which count in ``sent`` too: counted there, iteration by iteration
            visited = sent[_VISITED] = sent.get(_VISITED, 0) + 1
            if visited > limit:
                raise _too_many_iterations(node, visited)
            yield from run(body, inner, sent)
        return
    # A leaf body holds no loop: the count is kept here and written back when the loop ends.
    op, make, ch, token = leaf
    visited = sent.get(_VISITED, 0)
    if op is TASK:
        for inner in scopes:
            visited += 1
            if visited > limit:
                raise _too_many_iterations(node, visited)
            yield (TASK, make(inner))
    elif token is None:  # the token is the task's first axis value (else the send's index)
        for inner in scopes:
            visited += 1
            if visited > limit:
                raise _too_many_iterations(node, visited)
            task = make(inner)
            yield (SEND, ch, task, task.params[0] if task.params else _next_index(sent, ch))
    else:
        for inner in scopes:
            visited += 1
            if visited > limit:
                raise _too_many_iterations(node, visited)
            task = make(inner)
            yield (SEND, ch, task, _value(token, inner, task.loc))
    sent[_VISITED] = visited


def blocked_at(gen: Any, role: str, used: Any) -> SourceLocation | None:
    """The line of the step a process's step generator ``gen`` is suspended in, when that step uses channel or event
    ``used`` in ``role`` ("sends", "consumes", "waits"): down its ``yield from`` chain, the innermost frame's node
    with such a step (itself, or in its subtree: a loop runs the sends of its body inline). None when none has (the
    caller falls back to the body's first such step). A deadlock's message asks it."""
    nodes = []
    while gen is not None:
        frame = getattr(gen, "gi_frame", None)
        if frame is None:
            break
        node = frame.f_locals.get("node")
        if isinstance(node, Workload):
            nodes.append(node)
        gen = getattr(gen, "gi_yieldfrom", None)
    return next((loc for node in reversed(nodes) if (loc := first_use(node, role, used)) is not None), None)


def loop_point(frame: Any, cut: Mapping[int, int]) -> Any:
    """For a step generator's frame (``gi_frame``): the values of the variables of the loop it runs, when it is a
    loop's (``_loop``) whose axes are none of ``cut`` (id(axis) -> points: the loops a run cuts short); else None.
    ``("before",)`` before its first point."""
    if frame.f_code is not _loop.__code__:
        return None
    scope = frame.f_locals
    node = scope.get("node")
    if node is None or any(id(axis) in cut for axis in node.axes):
        return None
    inner = scope.get("inner")
    return ("before",) if inner is None else tuple(inner.get(name) for name in scope.get("names", ()))


# Listing visits every point of every loop, also those that launch no task (a fraction of a microsecond each): past
# this many in one workload (in one process of a pipeline) the listing runs for many seconds and looks like a hang.
# Static sizes are refused before listing (axes.MAX_ITERATIONS, the same number); this count also covers loops sized
# per outer iteration (DenseDyn of a loop expression).
MAX_LOOP_ITERATIONS = 20_000_000
_VISITED = "visited"  # the key of ``sent`` that counts the loop iterations this body has visited so far


def _loop_limit() -> int:
    return checked_limit(MAX_LOOP_ITERATIONS, "ptort_lab.dsl.steps.MAX_LOOP_ITERATIONS", "an iteration count",
                         "100_000_000")


def _too_many_iterations(loop: Workload, visited: int) -> RunLimitError:
    """The error for a listing past MAX_LOOP_ITERATIONS loop iterations, at the loop that went past it."""
    limit = _loop_limit()
    return RunLimitError(
        f"Run limit: the loops listed so far visited {visited:,} iterations in all, more than the {limit:,} a "
        "workload (or a process of a pipeline) may list; every iteration of every loop counts, also one that "
        "launches no task. Loops sized per outer iteration (DenseDyn of a loop expression) add up: each size is "
        "checked on its own, their total only as they are listed.",
        hint="Shorten the loops or use larger tiles (fewer, bigger iterations). If the listing is meant to be this "
             f"long, raise the limit: ptort_lab.dsl.steps.MAX_LOOP_ITERATIONS = {max(10 * limit, 100_000_000):_} "
             f"(now {limit:_}).", where=loop.loc, locate=loop.loc is None)


def _group(node: Workload, bindings: dict[str, Any], sent: dict[Any, int]) -> Steps:
    for child in node.parts:
        yield from HANDLERS[child.kind](child, bindings, sent)


def _cond(node: Workload, bindings: dict[str, Any], sent: dict[Any, int]) -> Steps:
    pred = node.pred
    if callable(pred) and not hasattr(pred, "evaluate"):
        value = call_predicate(pred, bindings, node.loc)
    else:
        try:
            value = evaluate(pred, bindings)
        except SlotValueError as e:
            raise _at_node(e, node) from None
        except KeyError as e:
            raise missing_binding(e, bindings, node.loc) from None
        except TypeError as e:  # (a token that is no number, compared: '<' between a str and an int)
            raise PtortTypeError(f"the condition {pred} could not be evaluated for "
                                 f"{dict(bindings) or 'no loop variables'}: {e}.",
                                 hint="The values it compares must be numbers: a token a send passes (token=...) is "
                                      "a tile index, an int.", where=node.loc, locate=node.loc is None) from None
    if not isinstance(value, (bool, int, np.bool_, np.integer)):
        raise PtortTypeError(f"a condition evaluated to {type(value).__name__} {value!r} for "
                             f"{dict(bindings) or 'no loop variables'}; it must be a bool.",
                             hint="Return one True/False per task, e.g. lambda t: t.get('b') < 4, or use "
                                  "P.when(b < 4).", where=node.loc, locate=node.loc is None)
    branch = node.then if value else node.otherwise
    yield from HANDLERS[branch.kind](branch, bindings, sent)


def _listing_only(node: Workload) -> None:
    """Runtime slots are read while a data-parallel workload is listed; pipeline bodies run concurrently."""
    if not runtime_slots.is_listing():
        raise DSLUsageError("runtime slots work in data-parallel workloads, not in pipeline process bodies (their "
                            "processes run concurrently and would share one slot table).",
                            hint="Read the value into a tensor and branch with cond(lambda t: ...), or build the "
                                 "slot-driven part as a data-parallel @workload.", where=node.loc, locate=False)


def _slot_set(node: Workload, bindings: dict[str, Any], sent: dict[Any, int]) -> Steps:
    _listing_only(node)
    try:
        value = evaluate(node.value, bindings)
    except SlotValueError as e:
        raise _at_node(e, node) from None
    except KeyError as e:
        raise missing_binding(e, bindings, node.loc) from None
    runtime_slots.store(node.slot, value, f"slot_set_u64({node.slot}, {node.value})", node.loc)
    yield from ()


def _slot_load(node: Workload, bindings: dict[str, Any], sent: dict[Any, int]) -> Steps:
    _listing_only(node)
    value = runtime_slots.load_element(node.view, node.row, node.col, bindings, node.loc)
    runtime_slots.store(node.slot, value, f"the element slot_load_u64({node.slot}, {node.view!r}) read", node.loc)
    yield from ()


def _send(node: Workload, bindings: dict[str, Any], sent: dict[Any, int]) -> Steps:
    ch, value, token = node.channel, node.value, node.token
    if getattr(ch, "tile", None) is not None:  # the send's tasks see the slot it takes as ch.item
        bindings = _with_item(bindings, ch, sent)
    if isinstance(value, Workload) and value.kind is NodeKind.TASK:
        task = make_task(value, bindings)
        yield (SEND, ch, task, _token(task, token, bindings, ch, sent))
        return
    yield (ACQUIRE, ch)
    if isinstance(value, Workload):
        yield from HANDLERS[value.kind](value, bindings, sent)
    elif token is None:
        token = value
    yield (PUSH, ch, _value(token, bindings, node.loc) if token is not None else _next_index(sent, ch))


def _consume(node: Workload, bindings: dict[str, Any], sent: dict[Any, int]) -> Steps:
    ch, name, body = node.channel, node.var.name, node.body
    if getattr(ch, "tile", None) is not None:  # the body sees the slot of the item it consumes as ch.item
        yield from _items((ch,), (name,), node, bindings, sent)
        return
    leaf = _leaf(body)
    more = (PULL, ch, True)
    token = yield (PULL, ch, False)
    if leaf is None:
        run = HANDLERS[body.kind]
        while token is not CLOSED:
            yield from run(body, {**bindings, name: token}, sent)
            token = yield more
        return
    op, make, out, token_expr = leaf
    # One step per item: the body's command and the pull of the next token (which frees this one's buffer slot).
    while token is not CLOSED:
        inner = {**bindings, name: token} if bindings else {name: token}
        task = make(inner)
        if op is TASK:
            token = yield (TASK_PULL, task, more)
        else:
            token = yield (SEND_PULL, out, task, task.params[0] if token_expr is None and task.params else
                           _token(task, token_expr, inner, out, sent), more)


def _join(node: Workload, bindings: dict[str, Any], sent: dict[Any, int]) -> Steps:
    yield from _items(node.channels, tuple(v.name for v in node.vars), node, bindings, sent)


def _items(chans: tuple[Any, ...], names: tuple[str, ...], node: Workload, bindings: dict[str, Any],
           sent: dict[Any, int]) -> Steps:
    """A consume that binds items: for the k-th token of every channel (in the order listed), run the body with
    each token bound and each tile channel's ``ch.item`` on slot k % depth (its k-th item); then free every slot
    and take the next tokens. Ends when every channel closed; one closing while another still delivers is an
    error."""
    body = node.body
    run = HANDLERS[body.kind]
    tiles = [item_key(c) for c in chans if getattr(c, "tile", None) is not None]
    tokens = []
    for c in chans:
        tokens.append((yield (PULL, c, False)))
    n = 0
    one = len(chans) == 1 and len(names) == 1  # (the usual consume: one channel, its token bound to one name)
    while True:
        if one:
            if tokens[0] is CLOSED:
                return
            inner = {**bindings, names[0]: tokens[0]}
        else:
            closed = [t is CLOSED for t in tokens]
            if all(closed):
                return
            if any(closed):
                raise _join_mismatch(chans, closed, n, node)
            inner = {**bindings, **dict(zip(names, tokens))}
        for key in tiles:
            inner[key] = n  # the k-th item of each tile channel
        yield from run(body, inner, sent)
        n += 1
        if len(chans) == 1:
            tokens[0] = yield (PULL, chans[0], True)
            continue
        # Free every slot before waiting for any next item: a pull that freed its slot and then waited would hold
        # the later channels' slots, which the producer of the awaited item may need (a split feeding this join).
        for c in chans:
            yield (RELEASE, c)
        for i, c in enumerate(chans):
            tokens[i] = yield (PULL, c, False)


def _join_mismatch(chans: tuple[Any, ...], closed: list[bool], n: int, node: Workload) -> PipelineError:
    """The error for a join whose channels close at different counts."""
    ended = [c.name for c, x in zip(chans, closed) if x]
    more = [c.name for c, x in zip(chans, closed) if not x]
    listed = ", ".join(f"'{c.name}'" for c in chans)
    return PipelineError(
        f"consume([{listed}]) pairs the k-th tokens of its channels, but {_names(ended)} closed after {n} token(s) "
        f"while {_names(more)} delivered token {n + 1}: the channels' producers send different numbers of tokens.",
        hint="Send the same number of tokens to every channel of a join (one per pair), or consume the channels "
             "separately in two processes.", where=node.loc, locate=node.loc is None)


def _names(names: list[str]) -> str:
    return " and ".join(f"'{n}'" for n in names)


def _record(node: Workload, bindings: dict[str, Any], sent: dict[Any, int]) -> Steps:
    yield (RECORD, node.event)


def _wait(node: Workload, bindings: dict[str, Any], sent: dict[Any, int]) -> Steps:
    yield (WAIT, node.event)


def _empty(node: Workload, bindings: dict[str, Any], sent: dict[Any, int]) -> Steps:
    yield from ()


def _pipeline(node: Workload, bindings: dict[str, Any], sent: dict[Any, int]) -> Steps:
    raise DSLUsageError("a pipeline can only be the root of a program, not a step inside another workload.",
                        hint="Compile the Pipeline itself (connect(...).compile()).", where=node.loc,
                        locate=node.loc is None)
    yield  # a generator, so the error comes when the step is reached, as every step's does


# What each node kind does when a body reaches it (tests/dsl check that every NodeKind has an entry).
HANDLERS: dict[NodeKind, Handler] = {
    NodeKind.TASK: _task,
    NodeKind.PARALLEL_FOR: _loop,
    NodeKind.FOR_EACH: _loop,
    NodeKind.SELECT: _loop,
    NodeKind.COND: _cond,
    NodeKind.COMBINE: _group,
    NodeKind.SEQUENTIAL: _group,
    NodeKind.SEND: _send,
    NodeKind.CONSUME: _consume,
    NodeKind.JOIN: _join,
    NodeKind.RECORD: _record,
    NodeKind.WAIT: _wait,
    NodeKind.PIPE: _pipeline,
    NodeKind.CONNECT: _pipeline,
    NodeKind.EMPTY: _empty,
    NodeKind.SLOT_SET: _slot_set,
    NodeKind.SLOT_LOAD: _slot_load,
}


def pipeline_of(w: Workload) -> Workload | None:
    """The pipeline node a workload runs as (a connect() result, or a P.pipe() block at its root), else None."""
    return w if w.is_pipeline else None


# -- listing: the driver without time ---------------------------------------------------------------------------------
# Listing a task costs about 1 KB and a few microseconds, running one in a pipeline about 1.5 us: past these a
# run takes minutes and gigabytes and looks like a hang (the engine bench goes to 3 million pipeline tasks).
MAX_TASKS = 2_000_000
MAX_PIPELINE_TASKS = 20_000_000


def enumerate_tasks(w: Workload) -> list[Task]:
    """Tasks in program order (process by process for pipelines), with ids 0..n-1."""
    if w.is_pipeline:
        tasks = _Dataflow(w).run()
    else:
        runtime_slots.begin_listing()
        try:
            tasks = _list(w)
        finally:
            loaded = runtime_slots.end_listing()
        if loaded:
            _check_slot_loads(loaded, tasks)
    for i, t in enumerate(tasks):
        t.id = i
    return tasks


def _check_slot_loads(loaded: list[tuple[Any, Any, str]], tasks: list[Task]) -> None:
    """A runtime-slot load must read a tensor no task of the workload writes (nor one over the same memory: a second
    Tensor on the same array): listing happens before any task runs."""
    written: dict[int, Any] = {}
    for t in tasks:
        k = t.kernel_ref
        if k is None or not isinstance(t.resources, dict):
            continue
        for name, (direction, _) in k.signature.items():
            view = t.resources.get(name)
            if direction in (Direction.OUT, Direction.INOUT) and isinstance(view, TensorView):
                written[id(view.base)] = view.base
    for base, where, text in loaded:
        if id(base) in written or any(_same_memory(base, w) for w in written.values()):
            raise PtortValueError(f"slot_load_u64 reads {text}, which tasks of this workload write; slots are read "
                                  "while the workload is listed, before any task runs, so it would see the previous "
                                  "run's values.", hint="Load from an input tensor that no task writes.",
                                  where=where, locate=where is None)


def _same_memory(a: Any, b: Any) -> bool:
    """Whether two tensors' arrays overlap in memory (exactly: tensors are plain strided arrays)."""
    x, y = getattr(a, "data", None), getattr(b, "data", None)
    return isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and bool(np.shares_memory(x, y))


# What a data-parallel workload cannot run: steps that only mean something between a pipeline's processes.
_STEP_APIS = {"record": "record(ev)", "wait": "synchronize(ev)", "consume": "consume(ch, ...)",
              "join": "consume([ch1, ch2], ...)", "send": "send(ch, ...)"}


def refuse_pipeline_steps(workload: Workload) -> None:
    """A record/synchronize/consume (or a send of anything but a plain channel's task) in a data-parallel workload
    is refused at its own line (at compile and enumerate): listing the tasks would refuse it too, but could only
    name the line that listed them."""
    if workload.is_pipeline:
        return
    stack = [workload]  # (task nodes, the leaves, are not asked for children: twins have millions)
    while stack:
        node = stack.pop()
        kind = node.kind
        if kind is NodeKind.TASK or node.is_pipeline:  # (a nested pipeline is refused where it is listed)
            continue
        if kind is NodeKind.SEND:
            value = node.value
            plain = getattr(node.channel, "tile", None) is None
            if plain and isinstance(value, Workload) and value.kind is NodeKind.TASK:
                continue  # send(ch, task) outside a pipeline runs its task (the reference lists it as one)
        if kind.value in _STEP_APIS:
            raise DSLUsageError(
                f"{_STEP_APIS[kind.value]} is a step of a pipeline process, but workload "
                f"'{workload.name or workload.kind}' is data-parallel: send/consume/record/synchronize steps only "
                "run inside the processes of a pipeline.",
                hint="Wrap them in process(...).body(...) and connect() the processes, or use P.pipe().",
                where=node.loc, locate=node.loc is None)
        stack.extend(reversed(node.children()))


def _list(w: Workload) -> list[Task]:
    """The data-parallel workload's tasks in program order (runtime-slot statements run as they are reached)."""
    return list(_listed(w))


def _listed(w: Workload) -> Iterator[Task]:
    """``_list``'s tasks one at a time (ids not set yet)."""
    n = 0
    with nesting_named(w):
        for cmd in steps(w, {}):
            if cmd[0] == TASK:
                n += 1
                check_task_count(n, w, cmd[1], MAX_TASKS)
                yield cmd[1]
            elif cmd[0] == SEND and getattr(cmd[1], "tile", None) is None:
                # send(ch, task) outside a pipeline: the task runs and nobody receives the token (the reference lists
                # a send as its task); a send of a bare token, of a body or into a tile channel's buffer, and consume,
                # have no meaning here
                n += 1
                check_task_count(n, w, cmd[2], MAX_TASKS)
                yield cmd[2]
            elif cmd[0] in (SEND, ACQUIRE, PUSH, PULL, RECORD, WAIT, TASK_PULL, SEND_PULL, RELEASE):
                raise DSLUsageError(
                    "send/consume/record/synchronize steps only run inside the processes of a pipeline.",
                    hint="Wrap them in process(...).body(...) and connect() the processes, or use P.pipe().")


def stream_tasks(w: Workload) -> Iterator[Task]:
    """A data-parallel workload's tasks in program order, ids 0, 1, ..., listed as they are taken (the runner's
    streaming path: no list of them is kept). Only for a workload without runtime-slot statements (``uses_slots``):
    slot values and the load check need the whole listing. Slot reads (which then raise: no slot is ever set) see
    a listing only while a task is being listed, as in ``enumerate_tasks``."""
    listed = _listed(w)
    for i in itertools.count():
        runtime_slots.begin_listing()
        try:
            task = next(listed, None)
        finally:
            runtime_slots.end_listing()
        if task is None:
            return
        task.id = i
        yield task


def uses_slots(w: Workload) -> bool:
    """Whether the workload has a runtime-slot statement (slot_set_u64 / slot_load_u64)."""
    stack = [w]
    while stack:
        node = stack.pop()
        if node.kind in (NodeKind.SLOT_SET, NodeKind.SLOT_LOAD):
            return True
        if node.kind is not NodeKind.TASK:
            stack.extend(node.children())
    return False


# Listing a pipeline has no clock: steps that list no task and end no process are how processes passing items back
# and forth forever show (each takes about a microsecond, so the default stops such a loop in a second or two).
MAX_LISTING_STEPS_WITHOUT_TASKS = 1_000_000


def run_dataflow(pipe: Workload) -> list[Task]:
    """Run every process with unbounded buffers and no time; each runs until it blocks, in process order."""
    return _Dataflow(pipe).run()


class _Dataflow:
    """One listing of a pipeline: each process's step generator, reply, retried command and what it waits on."""

    def __init__(self, pipe: Workload) -> None:
        self.pipe = pipe
        self.procs = list(pipe.processes)
        self.idle = 0  # steps since a task was listed or a process ended
        self.recent: deque[tuple[str, tuple[Any, ...]]] = deque(maxlen=64)
        self.queues: dict[int, deque[Any]] = {}
        self.producers_left: dict[int, int] = {}
        for p in self.procs:
            for c in p.produces:
                self.producers_left[id(c)] = self.producers_left.get(id(c), 0) + 1
        self.signals: dict[int, int] = {}
        self.gens = {p.name: steps(p.workload, {}) for p in self.procs}
        self.replies: dict[str, Any] = {p.name: None for p in self.procs}
        self.retry: dict[str, tuple[Any, ...] | None] = {p.name: None for p in self.procs}
        self.blocked_on: dict[str, str] = {}
        self.done: set[str] = set()
        self.tasks: list[Task] = []

    def run(self) -> list[Task]:
        """Every process's tasks, listed in the order the processes reach them."""
        checked_limit(MAX_LISTING_STEPS_WITHOUT_TASKS, "ptort_lab.dsl.steps.MAX_LISTING_STEPS_WITHOUT_TASKS",
                      "a step count", "10_000_000")
        with nesting_named(self.pipe):
            while len(self.done) < len(self.procs):
                progressed = False
                for p in self.procs:
                    if p.name not in self.done and self._advance(p):
                        progressed = True
                if not progressed:
                    raise self._deadlock()
        return self.tasks

    def _next(self, p: Any) -> tuple[Any, ...] | None:
        """The command ``p`` carries out next (None when its body ended)."""
        cmd = self.retry[p.name]
        self.retry[p.name] = None
        if cmd is not None:
            return cmd
        try:
            cmd = self.gens[p.name].send(self.replies[p.name])
        except StopIteration:
            self.done.add(p.name)
            self.blocked_on.pop(p.name, None)
            for c in p.produces:
                self.producers_left[id(c)] -= 1
            self.idle = 0
            return None
        self.idle += 1
        self.recent.append((p.name, cmd))
        if self.idle > MAX_LISTING_STEPS_WITHOUT_TASKS:
            raise _listing_loops(self.pipe, self.idle - 1, self.recent)
        return cmd

    def _listed(self, p: Any, task: Task) -> None:
        task.process = p.name
        self.tasks.append(task)
        check_task_count(len(self.tasks), self.pipe, task, MAX_TASKS)
        self.idle = 0

    def _advance(self, p: Any) -> bool:
        """Run ``p`` until it blocks or ends; whether it moved."""
        progressed = False
        while True:
            cmd = self._next(p)
            if cmd is None:
                return True
            op = cmd[0]
            self.replies[p.name] = None
            if op == TASK or op == TASK_PULL:
                self._listed(p, cmd[1])
            elif op == SEND or op == SEND_PULL:
                self._listed(p, cmd[2])
                self.queues.setdefault(id(cmd[1]), deque()).append(cmd[3])
            elif op == PUSH:
                self.queues.setdefault(id(cmd[1]), deque()).append(cmd[2])
            if op == TASK_PULL or op == SEND_PULL:  # then the pull it carries (the task part was progress)
                progressed = True
                cmd = cmd[-1]
                op = PULL
            if op == PULL:
                q = self.queues.setdefault(id(cmd[1]), deque())
                if q:
                    self.replies[p.name] = q.popleft()
                elif self.producers_left.get(id(cmd[1]), 0) == 0:
                    self.replies[p.name] = CLOSED
                else:
                    return self._block(p, cmd, f"consume from '{cmd[1].name}'", progressed)
            elif op == RECORD:
                self.signals[id(cmd[1])] = self.signals.get(id(cmd[1]), 0) + 1
            elif op == WAIT:
                if self.signals.get(id(cmd[1]), 0) > 0:
                    self.signals[id(cmd[1])] -= 1
                else:
                    return self._block(p, cmd, f"synchronize on '{cmd[1].name}'", progressed)
            self.blocked_on.pop(p.name, None)
            progressed = True

    def _block(self, p: Any, cmd: tuple[Any, ...], waits: str, progressed: bool) -> bool:
        self.blocked_on[p.name] = waits
        self.retry[p.name] = cmd
        return progressed

    def _deadlock(self) -> DeadlockError:
        """Every process left waits: who waits on what (at which line of theirs), pointing at the first one's line
        (the connect() line when no wait's line is known)."""
        blocked = [n for n in self.blocked_on if n not in self.done]
        bodies = {p.name: p.workload for p in self.procs}
        lines = [self._step_line(bodies[n], self.retry[n]) for n in blocked]
        waits = "; ".join(f"'{n}' waits to {self.blocked_on[n]}" + ("" if at is None else f" at {at}")
                          for n, at in zip(blocked, lines))
        fills = ", ".join(f"'{c.name}' {len(self.queues.get(id(c), ()))} token(s) waiting"
                          + (" (closed)" if self.producers_left.get(id(c), 0) == 0 else "")
                          for c in self.pipe.channels)
        first = next(((n, at) for n, at in zip(blocked, lines) if at is not None), None)
        where = self.pipe.loc if first is None else first[1]
        return DeadlockError(f"the pipeline can never finish: {waits}." + (f" Channels: {fills}." if fills else ""),
                             hint="Check that every consumed channel has a producer that sends, and that every "
                                  "synchronize has a matching record.", where=where,
                             context="" if first is None else f"process '{first[0]}'", locate=where is None)

    @staticmethod
    def _step_line(body: Any, cmd: tuple[Any, ...] | None) -> SourceLocation | None:
        """The user's line of the consume or synchronize that ``cmd``, a blocked process's retried PULL or WAIT,
        comes from."""
        if cmd is None:
            return None
        return first_use(body, "consumes" if cmd[0] == PULL else "waits", cmd[1])


def _listing_loops(pipe: Workload, steps_taken: int, recent: deque[tuple[str, tuple[Any, ...]]]) -> RunLimitError:
    """The error for a listing whose processes pass items around forever, naming them and their channels."""
    acts: dict[str, set[tuple[int, str]]] = {}
    for name, cmd in recent:
        op, found = cmd[0], acts.setdefault(name, set())
        if op in (SEND, SEND_PULL, ACQUIRE, PUSH):
            found.add((0, f"sends to '{cmd[1].name}'"))
        if op in (PULL, TASK_PULL, SEND_PULL, RELEASE):
            found.add((1, f"consumes '{cmd[-1][1].name if op in (TASK_PULL, SEND_PULL) else cmd[1].name}'"))
        if op in (RECORD, WAIT):
            found.add((2, f"{'records' if op == RECORD else 'synchronizes on'} '{cmd[1].name}'"))
    parts = []
    for name in sorted(acts, key=[p.name for p in pipe.processes].index):
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


__all__ = ["steps", "refuse_pipeline_steps", "stream_tasks", "uses_slots", "HANDLERS", "loop_point",
           "Steps", "resolve_select_source", "pipeline_of", "check_task_count", "check_size",
           "enumerate_tasks", "run_dataflow", "make_task", "MAX_TASKS", "MAX_PIPELINE_TASKS",
           "MAX_LISTING_STEPS_WITHOUT_TASKS", "MAX_LOOP_ITERATIONS", "TASK", "SEND", "ACQUIRE", "PUSH", "PULL",
           "RECORD", "WAIT", "TASK_PULL", "SEND_PULL", "RELEASE", "CLOSED"]
