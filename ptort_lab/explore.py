"""Study one piece of work two ways: as a CSP pipeline and as its data-parallel twin, under a set of knobs."""
from __future__ import annotations

import inspect
import numbers
import types
import warnings
from collections import deque
from dataclasses import dataclass, fields, replace
from typing import Any, Callable

import numpy as np

from .dsl import Channel
from .dsl.schedule import DispatchPolicy
from .dsl.tree import NodeKind
from .dsl.types import Direction, Location, Tensor, TensorView, item_key
from .dsl.workload import Task, Workload, group
from .errors import KnobError, PtortTypeError, PtortValueError, raise_user_error, value_text
from .knobs import (
    KNOB_NAMES,
    PYTHON_WORDS,
    Knobs,
    KnobWords,
    check_cores,
    check_depth,
    check_knob_limits,
    check_knobs,
    refuse_knob_keywords,
    task_limit,
)
from .program import COMPILE_OPTIONS, Program, collect_compiled
from .run_cache import RunCache
from .sim.deps import Region, RegionKeys, infer_dependencies, task_accesses
from .sim.machine import get_machine
from .sim.numerics import Writes
from .sim.on_chip import direction_of
from .sim.runner import recording

#: What a study runs: the pipeline, its data-parallel twin, or both (``%%ptort --mode``, ``Study(mode=...)``).
MODES = ("pipeline", "data-parallel", "both")
OnBuilt = Callable[["Workload | Program", Knobs], None]  # Study.run_with's hook: what the builder made, the knobs


def pipeline_channels(workload: Workload) -> list[Channel[Any]]:
    """The channels of a pipeline (none for any other workload)."""
    return list(workload.channels) if is_pipeline(workload) else []


def _tile_key(task: Task) -> int:
    """Tasks of one tile stay on one core: key on the tile index (the first axis value)."""
    key = task.params[0] if task.params else task.id
    return key if isinstance(key, int) else task.id


class MergeOrderWarning(UserWarning):
    """A data-parallel twin cannot keep the order a merge's consumer took its items in (``data_parallel_twin``)."""


class ReusedBufferWarning(UserWarning):
    """A data-parallel twin cannot keep the order in which a pipeline reuses a buffer item after item
    (``data_parallel_twin``)."""


# What a builder written as a generator or async function returns, and the fix.
_NOT_CALLED_RIGHT = {
    types.GeneratorType: ("a generator", "is a generator function (it yields): return the workload instead of "
                                         "yielding it."),
    types.AsyncGeneratorType: ("an async generator", "is an async generator function (it yields): return the "
                                                     "workload instead of yielding it, from a plain def."),
    types.CoroutineType: ("a coroutine", "is an async function, which a study cannot await: make it a plain def "
                                         "that returns the workload."),
}


def _not_a_workload(build: Any, value: Any) -> PtortTypeError:
    """The error of a builder that returned ``value``, not a workload (a generator or coroutine is closed)."""
    special = _NOT_CALLED_RIGHT.get(type(value))
    if special is None:
        return PtortTypeError(f"the study's builder returned {value_text(value)}, not a workload.",
                              hint="Return the pipeline (connect(...)) or workload to study.")
    if isinstance(value, (types.GeneratorType, types.CoroutineType)):
        value.close()  # (a coroutine never awaited warns when collected)
    what, fix = special
    return PtortTypeError(f"the study's builder returned {what}, not a workload.", hint=f"{_builder_name(build)} {fix}")


def _builder_name(build: Any) -> str:
    """``build.__name__``, else its type's name: an object whose ``__getattr__`` raises something other than
    AttributeError (a dict-backed config: KeyError) still gets a name."""
    try:
        name = getattr(build, "__name__", None)
    except Exception:  # noqa: BLE001 - the user's __getattr__
        name = None
    return name if isinstance(name, str) else type(build).__name__


def _builder_signature(build: Any) -> inspect.Signature | None:
    """The builder's signature; a callable object whose attributes raise (``inspect.signature`` probes
    ``__wrapped__`` through its ``__getattr__``) is asked through its class's ``__call__``; None when none is known."""
    try:
        return inspect.signature(build)
    except (TypeError, ValueError):
        return None
    except Exception:  # noqa: BLE001 - the user's __getattr__ raised something other than AttributeError
        try:
            return inspect.signature(type(build).__call__.__get__(build))  # (the bound method, found on the class)
        except Exception:  # noqa: BLE001
            return None


def data_parallel_twin(workload: Workload, cores: int, *, run: Program | None = None) -> Workload:
    """The same tasks as ``workload`` (a pipeline or any workload), dispatched over ``cores`` with each tile's
    tasks on one core; dependencies come from the tensors they touch, exactly as for any data-parallel run.

    The tasks are listed in program order: a pipeline's process by process, each consumer's in the order its items
    were sent. A merge (a channel several processes produce) is the exception: its consumer takes the items in the
    order they arrive, which depends on timing. When the tasks of that consumer (or of a process it feeds) depend on
    that order (an accumulation such as ``acc = 2*acc + x`` in an InOut), pass the pipeline's ``run`` (a Program of
    ``workload`` that has executed): the twin then lists the tasks in the order that run ran them and computes what
    it computed. Without it (or when the run kept no trace) the twin keeps the listing's order, and a
    ``MergeOrderWarning`` names the merge and the consumer.

    A buffer the pipeline reuses item after item (``T0[t % 2]``, kept right by a channel's depth: the producer waits
    for a free slot, so for the consumer to finish the item before) is the other case: the listing runs the
    producer ahead without those waits, so its consumer would read only the last value. The twin then follows
    ``run`` too, and without one it keeps the listing's order and a ``ReusedBufferWarning`` names the tile and the
    processes.

    Tasks that share on-chip state (``Tensor(location=Location.UB | L1 | L0C)``: a running value a task leaves for
    the next one) stay on one core, since each core has its own copy; the other tasks are dealt by tile."""
    if not isinstance(workload, Workload):
        raise PtortTypeError(f"data_parallel_twin() needs a workload or pipeline, got {type(workload).__name__} "
                             f"{workload!r}.",
                             hint="Pass what connect(...) or a @workload call returns: "
                                  "data_parallel_twin(pipeline, 4).")
    cores = _twin_cores(cores)
    if run is not None and not isinstance(run, Program):
        raise PtortTypeError(f"data_parallel_twin(run=...) takes the pipeline's Program, got {type(run).__name__} "
                             f"{run!r}.",
                             hint="Pass the Program that ran the pipeline: program = pipeline.compile(); "
                                  "program.execute(); data_parallel_twin(pipeline, 4, run=program).")
    if run is not None and not run.is_complete():
        raise PtortValueError("data_parallel_twin(run=...) takes a Program that has run, but this one has not run "
                              "yet (or its last execute() failed).",
                              hint="Call program.execute() first, then data_parallel_twin(pipeline, 4, run=program).")
    tasks, notes = _twin_tasks_and_notes(workload, run, "data_parallel_twin(pipeline, cores, run=program)")
    for category, note in notes:
        warnings.warn(note, category, stacklevel=2)
    return _twin_of(tasks, _twin_name(workload), cores)


def _twin_cores(cores: Any) -> int:
    if isinstance(cores, bool) or not isinstance(cores, numbers.Integral):
        raise PtortTypeError(f"data_parallel_twin() cores must be an int >= 1, got {type(cores).__name__} {cores!r}.",
                             hint="Pass a whole number of cores, e.g. data_parallel_twin(pipeline, 4).")
    if cores < 1:
        raise PtortValueError(f"data_parallel_twin() cores must be an int >= 1, got {cores!r}.",
                              hint="Pass at least one core, e.g. data_parallel_twin(pipeline, 4).")
    return int(cores)


def _twin_name(workload: Workload) -> str:
    return f"{workload.name or workload.kind} (data-parallel)"


Notes = list[tuple[type[UserWarning], str]]  # what a twin could not keep of the pipeline, with its warning category


def _twin_tasks_and_notes(workload: Workload, run: Program | None, pass_run: str
                          ) -> tuple[list[tuple[Any, ...]], Notes]:
    """``_twin_tasks`` of ``workload``, in the order ``run`` ran them where the listing's order would change what the
    tasks compute (a merge's order matters: ``_merge_order``; a buffer the pipeline reuses: ``_reused_buffers``),
    and a note for each such case when that order is not known (none when there is nothing to say)."""
    listing = workload.enumerate()
    items = _unrolled_items(listing)  # (the same for any order of the same tasks)
    tasks, note = _merge_order(workload, listing, run, pass_run)
    notes: Notes = [(MergeOrderWarning, note)] if note else []
    if tasks is listing and is_pipeline(workload):  # (a run's order, once followed, reuses each buffer as it did)
        reused = _reused_buffers(listing, items)
        if reused:
            ordered, reason = _run_order(listing, run)
            if ordered is not None:
                return _twin_tasks(ordered, items), []
            notes.append((ReusedBufferWarning, _reuse_note(reused, reason, pass_run)))
    return _twin_tasks(tasks, items), notes


def _twin_tasks(tasks: list[Task], items: dict[int, Tensor]) -> list[tuple[Any, ...]]:
    """What each task node of the twin is made of, (loc, kernel, params, resources, cycles): everything the twin
    holds but its name and cores (a run cache keys on them, before any node is made); ``items``: each tile
    channel's own tiles (``_unrolled_items``)."""
    return [(t.loc, t.kernel_ref if t.kernel_ref is not None else t.kernel, tuple(t.params), _own_items(t, items),
             t.cycles) for t in tasks]


def _twin_of(tasks: list[tuple[Any, ...]], name: str, cores: int) -> Workload:
    """The twin of ``tasks`` (``_twin_tasks``): grouped, named, each tile's tasks on one of ``cores`` cores, and the
    tasks that pass on-chip state to each other on one core (``_StateKey``).

    A pipeline that keeps state in UB keeps it in one AIV's copy (a process runs its vector work on one AIV), so its
    twin runs each core's vector tasks on AIV0 (``.vector_unit(0)``), where a data-parallel core would otherwise deal
    them to its AIVs in turn and a task would read the other AIV's untouched copy (refused: sim/on_chip.py)."""
    nodes = [Workload("task", loc=loc, kernel=kernel, params=params, resources=resources, cycles=cycles)
             for loc, kernel, params, resources, cycles in tasks]
    twin = group(nodes)
    if twin.kind == "task" or twin.kind == "empty":
        twin = Workload("combine", parts=tuple(nodes))
    twin = twin.named(name).dispatch(DispatchPolicy.affinity(_StateKey(tasks), cores))
    return twin.vector_unit(0) if any(_in_ub(resources) for _, _, _, resources, _ in tasks) else twin


class _StateKey:
    """The twin's affinity key: a task's tile (``_tile_key``), except that a task reading on-chip state (a tile of a
    ``Tensor(location=UB | L1 | L0C)``) that earlier tasks wrote goes where they go. Each core has its own copy of
    an on-chip tensor, so a running value (a sum over tiles in UB) dealt over cores by tile would leave each core a
    part of it. The tasks that pass one value on (a writer, the tasks reading what it wrote, their writes read in
    turn) take the key of the first of them: where they are all on one core already, nothing moves. A task that
    overwrites the value without reading it starts a new one, free to go elsewhere (flash attention's per-tile m
    and l)."""

    def __init__(self, tasks: list[tuple[Any, ...]]) -> None:
        first = _state_chains(tasks)
        # task id (its place in the twin's listing) -> its chain's key, where that differs from its own tile's key
        self.keys = {i: key for i, key in ((i, _listed_tile_key(tasks[f], f)) for i, f in enumerate(first))
                     if key != _listed_tile_key(tasks[i], i)}

    def __call__(self, task: Task) -> int:
        key = self.keys.get(task.id)
        return key if key is not None else _tile_key(task)


def _listed_tile_key(task: tuple[Any, ...], position: int) -> int:
    """``_tile_key`` of the twin's task at ``position`` (``_twin_tasks``), before its node is made."""
    params = task[2]
    key = params[0] if params else position
    return key if isinstance(key, int) else position


def _state_chains(tasks: list[tuple[Any, ...]]) -> list[int]:
    """For each task (``_twin_tasks``), the first task of the chain of on-chip values it belongs to (itself when it
    touches no on-chip tensor): a task that reads a tile of one joins the chain of the tile's last writers."""
    parent = list(range(len(tasks)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    writers: dict[int, dict[tuple[int, ...], int]] = {}  # id(on-chip tensor) -> index written -> its last writer
    for i, (_, kernel, _, resources, _) in enumerate(tasks):
        for pname, view in resources.items() if isinstance(resources, dict) else ():
            if not (isinstance(view, TensorView) and view.base.on_chip and view.base.ring_of is None):
                continue
            index = tuple(v + n if v < 0 else v for v, n in zip(view.index, view.base.shape))
            written = writers.setdefault(id(view.base), {})
            direction = direction_of(kernel, pname)
            if direction is not Direction.OUT:  # it reads the tile: it needs the values written into it
                for other, w in written.items():
                    if other[:len(index)] == index or index[:len(other)] == other:
                        a, b = sorted((root(i), root(w)))
                        parent[b] = a
            if direction is not Direction.IN:  # its write replaces every value written inside the tile
                for other in [o for o in written if o[:len(index)] == index]:
                    del written[other]
                written[index] = i
    return [root(i) for i in range(len(tasks))]


def _in_ub(resources: Any) -> bool:
    """Whether a task's arguments include a UB-resident tensor."""
    values = resources.values() if isinstance(resources, dict) else resources or ()
    return any(isinstance(v, TensorView) and v.base.location is Location.UB for v in values)


def _unrolled_items(tasks: list[Task]) -> dict[int, Tensor]:
    """For each tile channel the tasks use: a GM tensor with one tile per item. The twin runs a channel's items in
    program order, not through its slots, so the slots the pipeline reuses item after item would alias."""
    count: dict[int, tuple[Any, int]] = {}
    for t in tasks:
        for view in _item_views(t):
            ch = view.base.ring_of
            n = t.bindings.get(item_key(ch), -1) + 1
            count[id(ch)] = (ch, max(n, count.get(id(ch), (ch, 0))[1]))
    return {key: Tensor(shape=(n,) + ch.tile.shape, dtype=ch.tile.dtype, name=f"{ch.name}.items")
            for key, (ch, n) in count.items() if n > 0}


def _item_views(task: Task) -> list[TensorView]:
    res = task.resources
    return [v for v in (res.values() if isinstance(res, dict) else ()) if isinstance(v, TensorView)
            and v.base.ring_of is not None]


def _own_items(task: Task, items: dict[int, Tensor]) -> Any:
    """A task's arguments with each tile-channel item (``ch.item``) replaced by that item's own tile."""
    if not _item_views(task):
        return task.resources
    out = dict(task.resources)
    for name, v in task.resources.items():
        if isinstance(v, TensorView) and v.base.ring_of is not None:
            ch = v.base.ring_of
            out[name] = TensorView(items[id(ch)], (task.bindings[item_key(ch)],))
    return out


# -- a merge's order ---------------------------------------------------------------------------------------------------
# The listing (steps._Dataflow) runs the processes without time, so a merge's consumer takes the items in the order
# the producers listed them (connect() order), while a run takes them in the order they become visible
# (docs/explanation/channels.md). Only the tasks of processes downstream of a merge can differ, and only in order.
Merge = tuple[str, tuple[str, ...], tuple[str, ...]]  # (channel, its producers, its consumers)


def _merge_order(workload: Workload, tasks: list[Task], run: Program | None, pass_run: str) -> tuple[list[Task], str]:
    """``tasks`` (``workload``'s listing) and ""; but when tasks downstream of a merge depend on the order of its
    items: ``tasks`` in the order ``run`` ran them (when ``run`` says it and ran these tasks), else ``tasks`` and a
    note saying that the twin keeps the listing's order. ``pass_run`` is how the caller gets a run to follow."""
    merges = _merges(workload)
    if not merges:
        return tasks, ""
    below = {name: _downstream(workload, consumers) for name, _, consumers in merges}
    dependent = _order_dependent(workload, tasks, set().union(*below.values()))
    if not dependent:
        return tasks, ""
    ordered, reason = _run_order(tasks, run)
    if ordered is not None:
        return ordered, ""
    named = [m for m in merges if below[m[0]] & set(dependent)]
    return tasks, _merge_note(named, dependent, reason, pass_run)


def _run_order(tasks: list[Task], run: Program | None) -> tuple[list[Task] | None, str]:
    """(``tasks`` in the order ``run`` ran them, ""), or (None, why that order is not known)."""
    if run is None:
        return None, "there is no pipeline run whose order the twin could follow"
    try:
        ran = run.tasks
    except PtortValueError:
        return None, ("the pipeline run kept no trace (execute(keep_trace=False)), so the order it took them in is "
                      "not known")
    ordered = _in_order_of(tasks, ran)
    if ordered is None:
        return None, ("the pipeline run did not run these very tasks (a steady-state run lists only its first "
                      "periods)")
    return ordered, ""


def _merges(workload: Workload) -> list[Merge]:
    """The channels of a pipeline that several processes produce (none for any other workload)."""
    out = []
    for c in pipeline_channels(workload):
        producers = workload.producers(c)
        if len(producers) > 1:
            out.append((c.name, tuple(p.name for p in producers), tuple(p.name for p in workload.consumers(c))))
    return out


def _downstream(workload: Workload, names: tuple[str, ...]) -> set[str]:
    """The processes ``names`` and every process they feed through channels, transitively."""
    by_name = {p.name: p for p in workload.processes}
    seen, todo = set(names), list(names)
    while todo:
        for c in by_name[todo.pop()].produces:
            for p in workload.consumers(c):
                if p.name not in seen:
                    seen.add(p.name)
                    todo.append(p.name)
    return seen


def _order_dependent(workload: Workload, tasks: list[Task], processes: set[str]) -> list[str]:
    """The processes of ``processes`` (in process order) in which a task of one item depends on a task of another
    (through a tensor region both touch, one writing: ``sim.deps``), so the order of the items changes what they
    compute. An item is what a consume binds: the tasks of one token (or of the k-th tokens of a join)."""
    of_process: dict[Any, list[Task]] = {}
    for t in tasks:
        if t.process in processes:
            of_process.setdefault(t.process, []).append(t)
    out = []
    for p in workload.processes:
        if p.name not in processes or p.workload is None:
            continue
        names = sorted(_item_names(p.workload))
        own = [t for t in of_process.get(p.name, ()) if any(n in t.bindings for n in names)]
        by_id = {t.id: t for t in own}
        if _on_chip_order_dependent(own, names):
            out.append(p.name)
            continue
        for t, deps in zip(own, infer_dependencies(own)):
            if any(not _same_item(t, by_id[d], names) for d in deps):
                out.append(p.name)
                break
    return out


def _on_chip_order_dependent(tasks: list[Task], names: list[str]) -> bool:
    """Whether tasks of two items touch one tile of an on-chip tensor (not a tile channel's slots), one of them
    writing it: a running value kept on chip (``acc = 2 * acc + x``), which ``infer_dependencies`` leaves out (a
    core's copy orders its own tasks), so the order of the items changes what they compute. A touch of the whole
    tensor counts as a touch of each of its tiles."""
    keys = RegionKeys()
    touched: dict[Any, dict[Any, list[tuple[Task, bool]]]] = {}  # storage -> tile index -> (task, writes)
    for t in tasks:
        kernel, res = t.kernel_ref, t.resources
        if kernel is None or not isinstance(res, dict):
            continue
        for pname, view in res.items():
            if isinstance(view, TensorView) and view.base.on_chip and view.base.ring_of is None:
                storage, index = keys.region(view)[:2]
                writes = direction_of(kernel, pname) in (Direction.OUT, Direction.INOUT)
                touched.setdefault(storage, {}).setdefault(index, []).append((t, writes))
    for tiles in touched.values():
        groups = [sum(tiles.values(), [])] if () in tiles else list(tiles.values())
        for uses in groups:
            first_writer = next((t for t, w in uses if w), None)
            if first_writer is not None and any(not _same_item(first_writer, t, names) for t, _ in uses):
                return True
    return False


def _item_names(body: Workload) -> set[str]:
    """The names the consumes (and joins) of a process body bind to their tokens."""
    names: set[str] = set()
    stack = [body]
    while stack:
        node = stack.pop()
        if node.kind is NodeKind.CONSUME:
            names.add(node.var.name)
        elif node.kind is NodeKind.JOIN:
            names.update(v.name for v in node.vars)
        if node.kind is not NodeKind.TASK:
            stack.extend(node.children())
    return names


def _same_item(a: Task, b: Task, names: list[str]) -> bool:
    """Whether two tasks see the same tokens (a token that cannot be compared counts as another item)."""
    for n in names:
        x, y = a.bindings.get(n, _UNBOUND), b.bindings.get(n, _UNBOUND)
        try:
            if x is not y and not bool(x == y):
                return False
        except Exception:  # noqa: BLE001 - a token of the user's whose == is not a truth value
            return False
    return True


_UNBOUND = object()


def _in_order_of(tasks: list[Task], ran: list[Task]) -> list[Task] | None:
    """``tasks`` in the order of ``ran`` (a run of the same pipeline, maybe of an equal one built anew: its tasks
    are matched by process, kernel, axis values and bindings, not by identity); None when the two do not hold the
    same tasks. Tasks that match alike are one process's launches of one kernel under the same bindings, which
    both list in that process's program order."""
    if len(ran) != len(tasks):
        return None
    waiting: dict[Any, deque[Task]] = {}
    try:
        for t in tasks:
            waiting.setdefault(_match_key(t), deque()).append(t)
        out = []
        for t in ran:
            same = waiting.get(_match_key(t))
            if not same:
                return None
            out.append(same.popleft())
    except TypeError:  # an axis value or token that cannot be hashed
        return None
    return out


def _match_key(t: Task) -> tuple[Any, ...]:
    return (t.process, t.kernel, tuple(t.params), tuple(sorted(t.bindings.items())))


def _merge_note(merges: list[Merge], dependent: list[str], reason: str, pass_run: str) -> str:
    """What the twin of a pipeline with an order-dependent merge does instead, and how to avoid it."""
    chans = " and ".join(f"merged channel '{c}' (produced by {_quoted(ps)}, consumed by {_quoted(cs)})"
                         for c, ps, cs in merges)
    return (f"{chans}: a merge's consumer takes the items in the order they arrive, which depends on timing, and the "
            f"tasks of {_quoted(dependent)} depend on that order (an order-dependent accumulation, e.g. an InOut "
            f"acc = 2*acc + x); {reason}, so the data-parallel twin runs them in the listing's order (connect() "
            f"order) and may compute a different result than the pipeline. To follow the pipeline's order, use "
            f"{pass_run}; to fix the order, give each producer its own channel and consume([a, b], ...) them "
            "(item k of each, together).")


# -- a buffer the pipeline reuses -------------------------------------------------------------------------------------
# A producer that writes tile T0[t % 2] for item t may do so only once item t - 2 has been consumed: its channel's
# depth (2) makes it wait for a free slot. The listing has no depth (unbounded buffers) and runs the producer ahead,
# so item 2's value lands on item 0's before the consumer read it. In the listing that shows as a value its process
# overwrites in a later iteration before any task read it, where a task of another process then reads the tile.
Reuse = tuple[str, Task, Task]  # (the tile, the task that overwrote a value nobody read, a reader in another process)


def _reused_buffers(tasks: list[Task], items: dict[int, Tensor]) -> list[Reuse]:
    """The tiles (the first one of each tensor, in listing order) that a process writes again in a later iteration
    before any task read the value they held, and that a task of another process reads after that. ``tasks`` is the
    listing; each tile-channel item is read as its own tile (``items``), as the twin runs it."""
    keys = RegionKeys()  # (task_accesses' caches: each tensor's storage, each kernel's directions)
    directions: dict[int, Any] = {}
    last: dict[Region, tuple[Task, bool]] = {}  # region -> its last writer, and whether it overwrote an unread value
    unread: set[Region] = set()  # regions whose last value no task has read yet
    below: dict[Region, set[tuple[int, ...]]] = {}  # region -> the longer indices of its storage written under it
    found: dict[Any, Reuse] = {}  # storage -> its first such tile
    for listed in tasks:
        task = replace(listed, resources=_own_items(listed, items)) if _item_views(listed) else listed
        reads, writes = task_accesses(task, directions, keys)
        for region in reads:
            base, index = region
            for key in [(base, index[:k]) for k in range(len(index) + 1)] + [(base, i) for i in below.get(region, ())]:
                hit = last.get(key)
                if hit is None:
                    continue
                unread.discard(key)
                writer, overwrote = hit
                if overwrote and writer.process != task.process and base not in found:
                    found[base] = (_tile_written(writer, key, keys), writer, task)
        for region in writes:
            base, index = region
            covered = [region] + [(base, i) for i in below.get(region, ())]
            overwrote = any(k in unread and last[k][0].process == task.process
                            and not _same_item(last[k][0], task, sorted({*last[k][0].bindings, *task.bindings}))
                            for k in covered)
            for k in covered:
                last.pop(k, None)
                unread.discard(k)
            for n in range(len(index)):
                below.setdefault((base, index[:n]), set()).add(index)
            last[region] = (task, overwrote)
            unread.add(region)
    return list(found.values())


def _tile_written(task: Task, region: Region, keys: RegionKeys) -> str:
    """How the user wrote the tile of ``region`` that ``task`` wrote: T0[0]."""
    res = task.resources
    for view in res.values() if isinstance(res, dict) else ():
        if isinstance(view, TensorView) and not view.base.on_chip and keys.region(view) == region:
            return (view.base.name or repr(view.base)) + "".join(f"[{i}]" for i in view.index)
    return repr(region)  # (not reached: the region came from one of its views)


def _reuse_note(reused: list[Reuse], reason: str, pass_run: str) -> str:
    """What the twin of a pipeline that reuses a buffer item after item does instead, and how to avoid it."""
    tiles = " and ".join(
        f"tile {tile} (written again by process '{w.process}' in a later iteration, {w.kernel}"
        f"{f' at {w.loc}' if w.loc is not None else ''}, before any task read the value it held; read by process "
        f"'{r.process}', {r.kernel})" for tile, w, r in reused)
    return (f"{tiles}: the pipeline reuses {'this buffer' if len(reused) == 1 else 'these buffers'} item after item, "
            "which its channels keep right (a producer waits for a free slot, that is for the consumer to finish the "
            f"item before), but the listing runs each process ahead without those waits; {reason}, so the "
            "data-parallel twin runs the tasks in the listing's order, in which the readers see only the last value "
            "written, and may compute a different result than the pipeline. To follow the pipeline's order, use "
            f"{pass_run}; to avoid the reuse, give each item its own tile (T[t] rather than T[t % 2]) or pass the "
            "tiles through a tile channel (Channel(..., tile=Tile[...]) and ch.item), which the twin gives one tile "
            "per item.")


def _quoted(names: Any) -> str:
    """'a', 'a' and 'b', 'a', 'b' and 'c'."""
    q = [f"'{n}'" for n in names]
    return q[0] if len(q) == 1 else f"{', '.join(q[:-1])} and {q[-1]}"


def is_pipeline(workload: Workload) -> bool:
    """Whether ``workload`` is a CSP pipeline (connect() or a P.pipe() block) rather than data-parallel."""
    return workload.is_pipeline


@dataclass
class Comparison:
    """A pipeline run and a data-parallel run of the same work (either may be absent, by mode). They share the
    work's tensors, so at most one of them computed values; the other ran timing-only (same times). A run a
    study's ``RunCache`` answered is the Program of the earlier run with the same content (same trace and stats)."""

    knobs: Knobs
    pipeline: Program | None = None
    data_parallel: Program | None = None
    # e.g. that the workload's own dispatch decided the cores, not knobs.cores; or that the twin could not follow
    # the order in which a merge's consumer took its items, or in which the pipeline reused a buffer (no pipeline
    # run: data_parallel_twin)
    note: str = ""
    equal_cores: bool = False  # the twin ran on exactly the pipeline's cores (knobs.cores says how many)
    # The knobs the work was built with: a Study's, those its builder takes; a %%ptort cell's, those it reads (a
    # caller of run_study built the work itself, so all three are taken as used).
    built_with: tuple[str, ...] = ("depth", "tile", "tiles")

    @property
    def used(self) -> tuple[str, ...]:
        """The knobs the runs depend on: those the work was built with, and cores when a data-parallel run ran on
        them. The summary shows only these; ``knobs`` holds the others too, at the values they were left at."""
        return tuple(n for n in KNOB_NAMES if n in self.built_with or (n == "cores" and self.data_parallel is not None))

    @property
    def runs(self) -> list[tuple[str, Program]]:
        return [(label, p) for label, p in (("pipeline", self.pipeline), ("data-parallel", self.data_parallel))
                if p is not None]

    @property
    def speedup(self) -> float | None:
        """Data-parallel cycles / pipeline cycles (> 1: the pipeline is faster)."""
        if self.pipeline is None or self.data_parallel is None:
            return None
        p = self.pipeline.stats().total_cycles
        return self.data_parallel.stats().total_cycles / p if p else None

    def rows(self) -> list[dict[str, Any]]:
        """One row per run: label, cores, cycles, µs, overlap %, tasks."""
        out = []
        for label, prog in self.runs:
            s = prog.stats()
            out.append({"run": label, "cores": cores_used(prog), "cycles": s.total_cycles,
                        "us": round(s.time_us, 3), "overlap_pct": round(s.overlap_pct, 1), "tasks": s.task_count})
        return out

    def verdict(self) -> str:
        """One line: who wins, by how much, on how many cores, and why, from the runs' own numbers ("" with one
        run)."""
        if self.pipeline is None or self.data_parallel is None:
            return ""
        p, d = self.pipeline.stats(), self.data_parallel.stats()
        pc, dc = cores_used(self.pipeline), cores_used(self.data_parallel)
        if pc == dc:
            cores = f"both on {pc} core{'s' if pc != 1 else ''}"
        else:
            cores = f"pipeline on {pc} cores, data-parallel on {dc} (not like for like: give both {pc})"
        why = f"{_hop_text(self.pipeline)}; {_busiest_stage(p)}; data-parallel cores {_mean(d.core_busy_pct):.0f}% busy"
        if p.total_cycles == d.total_cycles:
            return f"a tie at {p.total_cycles:,} cycles, {cores}: {why}"
        if d.total_cycles < p.total_cycles:
            head = f"data-parallel {p.total_cycles / max(d.total_cycles, 1):.2f}x faster"
        else:
            head = f"pipeline {d.total_cycles / max(p.total_cycles, 1):.2f}x faster"
        return f"{head}, {cores}: {why}"

    def summary(self) -> str:
        lines = [f"knobs: {self.knobs.text(self.used) or 'none used'}"]
        if self.note:
            lines.append(f"  ({self.note})")
        for r in self.rows():
            lines.append(f"  {r['run']:<14} {r['cycles']:>10} cycles  {r['us']:>10.3f} us  "
                         f"overlap {r['overlap_pct']:5.1f}%  {r['tasks']} tasks")
        if self.speedup is not None:
            lines.append(f"  pipeline speedup vs data-parallel: {self.speedup:.2f}x")
            lines.append(f"  verdict: {self.verdict()}")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()

    def __repr__(self) -> str:
        """``<Comparison depth=2 tile=64x64 tiles=8 cores=4: pipeline 1.52x faster, ...>``: the knobs and the verdict
        (or the one run's cycles); ``print(comparison)`` shows the summary, the dataclass repr dumped both Programs."""
        knobs = self.knobs.text(self.used) or "no knobs used"
        try:
            verdict = self.verdict() or "; ".join(f"{label} run {p.stats().total_cycles:,} cycles"
                                                  for label, p in self.runs) or "no runs"
        except PtortValueError:  # (a run kept no trace, failed or has not run: a repr must not raise)
            verdict = "; ".join(_run_state(label, p) for label, p in self.runs)
        return f"<Comparison {knobs}: {verdict}>"


def _run_state(label: str, program: Program) -> str:
    """What a repr can say of one run when the verdict cannot be had: its cycles, and whether it kept no trace,
    failed or has not run (the verdict needs every run's trace)."""
    run = getattr(program, "_run", None)
    if run is None:
        failed = program.last_error
        return (f"{label} failed ({type(failed).__name__})" if failed is not None else f"{label} not run yet")
    try:
        text = f"{label} run {program.stats().total_cycles:,} cycles"
    except PtortValueError:
        text = f"{label} run"
    if not getattr(run, "kept_trace", True):
        text += " but kept no trace (execute(keep_trace=False): no verdict)"
    return text


def cores_used(program: Program) -> int:
    """The cores a run used (cores that ran at least one span; at least 1)."""
    trace = program.trace()
    return len({sp.core for sp in trace.spans}) or len(trace.cores) or 1


def _mean(values: dict[Any, float]) -> float:
    return sum(values.values()) / len(values) if values else 0.0


def _busiest_stage(stats: Any) -> str:
    """"busiest stage loader 70% busy" from a pipeline run's per-stage busy %."""
    if not stats.stage_busy_pct:
        return "no stage busy"
    name, pct = max(stats.stage_busy_pct.items(), key=lambda kv: (kv[1], kv[0]))
    return f"busiest stage {name} {pct:.0f}% busy"


def channel_hops(program: Program) -> list[tuple[str, int, int]]:
    """(channel, items sent, cycles per hop) for each channel of a pipeline run, priced as the run priced it: a
    channel between processes on one core whose units share on-chip buffers costs the same-core latency, any other
    (other cores, or the cube and a vector unit of one core) the cross-core channel latency."""
    workload = program.workload
    if not is_pipeline(workload):
        return []
    trace = program.trace()
    core_of: dict[str, int] = {}
    for sp in trace.spans:
        core_of.setdefault(sp.process, sp.core)
    sent: dict[str, int] = {}
    level: dict[str, int] = {}
    for sm in trace.samples:  # each rise of a channel's occupancy is one item sent
        before = level.get(sm.channel, 0)
        if sm.occupancy > before:
            sent[sm.channel] = sent.get(sm.channel, 0) + sm.occupancy - before
        level[sm.channel] = sm.occupancy
    opts = program.run_options
    on_chip = _on_chip_test(program)
    out = []
    for c in workload.channels:
        producers, consumers = list(workload.producers(c)), list(workload.consumers(c))
        same = (len({core_of.get(p.name, p.name) for p in producers + consumers}) == 1
                and on_chip(producers, consumers))
        latency = opts.same_core_latency_cycles if same else opts.channel_latency_cycles
        out.append((c.name, sent.get(c.name, 0), latency))
    return out


def _on_chip_test(program: Program) -> Callable[[list[Any], list[Any]], bool]:
    """The run's own ``channel_stays_on_chip`` (its per-run pricer's, else its cost model's; always True without)."""
    run = getattr(program, "_run", None)
    for owner in (getattr(run, "pricing", None), program.cost_model):
        test = getattr(owner, "channel_stays_on_chip", None)
        if callable(test):
            return test  # type: ignore[no-any-return]
    return lambda producers, consumers: True


def _hop_text(program: Program) -> str:
    """"the pipeline's 32 channel hops cost 1,000 cycles each" (or the mix of hop costs)."""
    hops = [(n, lat) for _, n, lat in channel_hops(program) if n]
    count = sum(n for n, _ in hops)
    if not count:
        return "the pipeline sends nothing between stages"
    costs = sorted({lat for _, lat in hops})
    if len(costs) == 1:
        return f"the pipeline's {count} channel hops cost {costs[0]:,} cycles each"
    parts = ", ".join(f"{sum(n for n, lat in hops if lat == c)} x {c:,}" for c in costs)
    return f"the pipeline's {count} channel hops cost {parts} cycles"


def run_study(workload: Workload | Program, knobs: Knobs, mode: str = "both", *, words: KnobWords = PYTHON_WORDS,
              equal_cores: bool = False, cache: RunCache | None = None, **compile_options: Any) -> Comparison:
    """Run ``workload`` as a pipeline, as its data-parallel twin on ``knobs.cores`` cores, or both.

    ``workload`` may also be a compiled Program: it is studied with the options it was compiled with (machine,
    cost_model, channel_latency_cycles, placement, compute_values), and ``compile_options`` that contradict them are
    refused. Values: the runs of one study share the workload's tensors, so one run computes values and the others
    are timing-only: the pipeline (or, with ``mode="data-parallel"``, the twin), unless the Program has already run,
    in which case that run is the study's pipeline run (or, for a data-parallel workload with its own dispatch, its
    run) and nothing computes values again. The tensors end up exactly as after one run.

    Before anything runs, ``knobs.cores`` must fit the machine when the twin runs (``check_cores``; ``words`` is how
    the error names the knob). ``equal_cores=True`` (with mode "both") runs the twin on exactly the cores the
    pipeline used instead of ``knobs.cores`` (like for like); the result's knobs then say that many cores.

    ``cache`` (a ``run_cache.RunCache``): a timing-only run whose workload and options equal, by content, a run the
    cache holds is not run again: the result holds that earlier run's Program (same trace, same stats); runs that
    compute values are never cached.

    The twin of a pipeline with a merge whose order matters, or that reuses a buffer item after item, lists the
    tasks in the order the pipeline run (this study's, or the given Program's) ran them; with none (mode
    "data-parallel" of a workload), the result's ``note`` says that the twin keeps the listing's order
    (``data_parallel_twin``).
    """
    check_mode(mode, "run_study")
    equal_cores = check_equal_cores(equal_cores, "run_study")
    program = workload if isinstance(workload, Program) else None
    if program is not None:
        workload = program.workload
    if not isinstance(workload, Workload):
        raise PtortTypeError(f"run_study needs a workload or pipeline, got {type(workload).__name__} {workload!r}.",
                             hint="Pass what connect(...) or a @workload call returns (or use Study(build) for a "
                                  "builder function).")
    if not isinstance(knobs, Knobs):
        raise PtortTypeError(f"run_study needs Knobs, got {type(knobs).__name__} {knobs!r}.",
                             hint="Write run_study(w, Knobs(cores=2)).")
    _check_words(words, "run_study")
    cache = _check_cache(cache, "run_study")
    options = merged_options(program, compile_options, "run_study") if program is not None else dict(compile_options)
    runner = _Runs(program, options, cache)
    result = Comparison(knobs)
    if is_pipeline(workload):
        if mode in ("pipeline", "both"):
            key, hit = runner.cached("pipeline", workload)
            pipeline = hit if hit is not None else runner.compile(workload)
            if mode == "both":  # the twin runs on the pipeline's machine: refuse its cores before either runs
                _check_twin_cores(pipeline, knobs, words)
            result.pipeline = runner.execute(key, pipeline, hit is not None)
            if equal_cores and mode == "both":
                knobs = result.knobs = replace(knobs, cores=cores_used(result.pipeline))
                result.equal_cores = True
        if mode in ("data-parallel", "both"):
            # the run whose order a merge's consumer took its items in: this study's, else the given Program's
            ran = result.pipeline if result.pipeline is not None else (
                program if program is not None and program.is_complete() else None)
            result.data_parallel = runner.run_twin(workload, knobs, words, result, ran)
        return result
    if mode == "pipeline":
        raise PtortValueError(f"mode 'pipeline' needs a pipeline, but the workload is {workload.kind!r}.",
                              hint="Build one with connect(...) or P.pipe(), or use mode='data-parallel'.")
    if workload._schedule.dispatch is None:
        result.data_parallel = runner.run_twin(workload, knobs, words, result)
        return result
    # The workload was dispatched already (``w.dispatch(round_robin(2))``), so its own policy decides the cores.
    # Refusing a mismatch would reject every such cell run with the default knobs (cores=4), so instead the
    # result reports the cores that actually ran, and says that knobs.cores was not applied.
    used = _dispatched_cores(workload)
    if used != knobs.cores:
        result.knobs = replace(knobs, cores=used)
        result.note = (f"the workload's own dispatch ({workload._schedule.dispatch!r}) runs on {used} "
                       f"core{'s' if used != 1 else ''}; cores={knobs.cores} from the knobs was not applied")
    key, hit = runner.cached("dispatched", workload)
    result.data_parallel = runner.execute(key, hit if hit is not None else runner.compile(workload), hit is not None)
    return result


def check_mode(mode: Any, api: str) -> str:
    """A study's mode: one of MODES, else a PtortValueError (PtortTypeError for what is not a str)."""
    if isinstance(mode, str) and mode in MODES:
        return mode
    error = PtortValueError if isinstance(mode, str) else PtortTypeError
    raise error(f"{api}(mode=...) must be one of {', '.join(map(repr, MODES))}, got {type(mode).__name__} {mode!r}.",
                hint="Use mode='both' (the pipeline and its data-parallel twin), 'pipeline' or 'data-parallel'.")


def check_equal_cores(value: Any, api: str) -> bool:
    """``equal_cores``: True or False (a numpy bool too); any other value would be read by its truth (\"no\" is
    True), so it is refused."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    raise PtortTypeError(f"{api}(equal_cores=...) must be True or False, got {type(value).__name__} {value!r}.",
                         hint="Pass equal_cores=True to run the data-parallel twin on the pipeline's own cores (like "
                              "for like), or leave it out (False: the twin runs on knobs.cores).")


def check_compile_options(options: dict[str, Any], api: str, mode: str | None = None) -> None:
    """Refuse compile options that compile() would refuse (an unknown name, a bad machine or latency, ...) now,
    before anything is built: a sweep would otherwise build every point to report the same argument error. A knob
    among them (or a typo of one) is refused as a knob first. ``placement`` places a pipeline's processes, so the
    trial (an empty data-parallel workload) leaves it out: the pipeline's compile checks it; a study whose ``mode``
    runs the data-parallel twin, which has no processes, refuses it."""
    refuse_knob_keywords(options, api, COMPILE_OPTIONS)
    if options.get("placement") is not None and mode is not None and mode != "pipeline":
        raise PtortValueError(f"{api}(placement=...) places the processes of a pipeline on cores, but mode={mode!r} "
                              "also runs the data-parallel twin, which has no processes to place.",
                              hint="Pass mode='pipeline' to study the placed pipeline alone, or leave placement out.")
    trial = {name: value for name, value in options.items() if name != "placement"}
    try:
        with collect_compiled():  # the trial Program must not count as one the caller's code compiled
            group([]).compile(**trial)
    except (PtortValueError, PtortTypeError) as e:
        error = PtortTypeError if isinstance(e, TypeError) else PtortValueError
        raise error(f"{api}(...) passes its other keyword arguments to compile(), which refused them: {e.what}",
                    hint=e.hint, where=e.where, context=e.context, locate=False) from None


def _check_words(words: Any, api: str) -> KnobWords:
    if not isinstance(words, KnobWords):
        raise PtortTypeError(f"{api}(words=...) takes a KnobWords, got {type(words).__name__} {words!r}.",
                             hint="Leave words out (Python's knob names), or pass e.g. "
                                  "KnobWords(given=\"--{name} {value}\") (from ptort_lab.knobs import KnobWords).")
    return words


def _check_cache(cache: Any, api: str) -> RunCache | None:
    if cache is not None and not isinstance(cache, RunCache):
        raise PtortTypeError(f"{api}(cache=...) takes a RunCache or None, got {type(cache).__name__} {cache!r}.",
                             hint="Leave cache out (every run is new), or pass cache=RunCache() "
                                  "(from ptort_lab.explore import RunCache) to reuse recent timing-only runs.")
    return cache


def _check_twin_cores(program: Program, knobs: Knobs, words: KnobWords) -> None:
    """knobs.cores on the program's machine (a cost model of the user's own has no machine, and no core limit)."""
    if program.machine is not None:
        check_cores(knobs.cores, program.machine, words)


class _Runs:
    """The runs of one study, each a new Program with the study's options; at most one computes values (later ones
    are timing-only: they would write the same tensors again), none if the given Program has run already. With a
    ``RunCache``, a timing-only run the cache holds (same content) is taken from it instead of run again."""

    def __init__(self, program: Program | None, options: dict[str, Any], cache: RunCache | None = None) -> None:
        self.options = options
        self.cache = cache
        # A Program that has run computed its values already (unless it ran timing-only or failed).
        self.values_done = program is not None and program.is_complete() and program.run_options.compute_values

    def _next_options(self) -> dict[str, Any]:
        return {**self.options, "compute_values": False} if self.values_done else self.options

    def compile(self, workload: Workload) -> Program:
        """The study's next run, not yet executed (runs execute in the order they are compiled)."""
        prog: Program = workload.compile(**self._next_options())
        self.values_done = self.values_done or prog.run_options.compute_values
        return prog

    def cached(self, side: str, *parts: Any) -> tuple[str | None, Program | None]:
        """(the cache key of the next run, made of ``parts``, or None; the cached run of that key, or None)."""
        if self.cache is None:
            return None, None
        key = self.cache.key(side, *parts, options=self._next_options())
        return key, self.cache.get(key)

    def execute(self, key: str | None, program: Program, cached: bool) -> Program:
        """Run ``program`` unless it came from the cache (``cached``: it has run), and keep it under ``key``."""
        if cached:
            return program
        program.execute()
        if self.cache is not None:
            self.cache.put(key, program)
        return program

    def run_twin(self, workload: Workload, knobs: Knobs, words: KnobWords, result: Comparison,
                 run: Program | None = None) -> Program:
        """Make, compile and check the data-parallel twin of ``workload`` on ``knobs.cores`` cores, run it. A
        merge's order, and that of a buffer the pipeline reuses, come from ``run`` (the pipeline's run, if any); when
        it matters and is not known, ``result`` gets a note saying so (``_twin_tasks_and_notes``)."""
        cores = _twin_cores(knobs.cores)
        tasks, notes = _twin_tasks_and_notes(workload, run, "mode='both' (the twin then follows the pipeline run)")
        for _, note in notes:
            result.note = f"{result.note}; {note}" if result.note else note
        name = _twin_name(workload)
        key, hit = self.cached("data-parallel", tasks, name, cores)
        prog = hit if hit is not None else self.compile(_twin_of(tasks, name, cores))
        _check_twin_cores(prog, knobs, words)
        return self.execute(key, prog, hit is not None)


def merged_options(program: Program, given: dict[str, Any], api: str) -> dict[str, Any]:
    """The program's compile options plus ``given``; an option that contradicts the program's is refused."""
    merged = dict(program.options)
    where = f" at {program.loc}" if program.loc is not None else ""
    for name, value in given.items():
        if name not in merged or (name == "compute_values" and value is False):
            merged[name] = value  # a study may always leave values out: they do not change the times
        elif not same_option(name, merged[name], value):
            raise PtortValueError(
                f"{api}({name}={value!r}) contradicts the program's own compile({name}={merged[name]!r}){where}.",
                hint=f"Leave {name} out of {api}(...) to study the program as compiled, or compile the workload "
                     f"with {name}={value!r}.")
    if "machine" in merged and "cost_model" in merged:
        ours, theirs = ("machine", "cost_model") if "machine" in given else ("cost_model", "machine")
        raise PtortValueError(
            f"{api}({ours}=...) contradicts the program's own compile({theirs}={merged[theirs]!r}){where}: a run "
            "has either a machine (for the NPU model) or a cost model of its own.",
            hint=f"Leave {ours} out of {api}(...), or compile the workload with the one you want.")
    return merged


def same_option(name: str, a: Any, b: Any) -> bool:
    """Whether two values of compile option ``name`` mean the same run (a preset name and its Machine do)."""
    if name == "machine":
        try:
            return get_machine(a) == get_machine(b)
        except Exception:  # noqa: BLE001 - a bad value: compile() reports it
            return a is b
    if name == "cost_model":
        return a is b
    try:
        return bool(a == b) and type(a) is type(b)
    except Exception:  # noqa: BLE001 - values without a truthy ==
        return a is b


def _dispatched_cores(workload: Workload) -> int:
    """The cores a dispatched workload runs on, counted as the simulator counts them."""
    sched = workload._schedule
    return (sched.dispatch.num_cores if sched.dispatch is not None else 0) or sched.stream_count or 1


class Study:
    """A builder plus knobs: ``Study(build).run(depth=4)`` rebuilds the work with new knobs and runs it.

    ``build`` takes any of ``depth``, ``tile``, ``tiles``, ``cores`` as keyword arguments (only those it names)
    and returns the workload or pipeline to study (or a compiled Program, studied with its compile options; a
    workload the builder compiled is studied as that Program, and as already run if the builder executed it).
    Changing a knob the builder does not take is refused (the run would not change); ``cores`` needs no parameter,
    since it sets the data-parallel twin's cores. A ``depth`` given to ``run`` must reach every channel of the
    pipeline the builder makes (``check_depth``), and ``cores`` must fit the machine (``check_cores``); ``words`` is
    how those errors name the knobs.

    Re-running: every run of a Study starts from the same data. When runs compute values, the Study remembers each
    tensor they write as it was before its first run, and a later run that uses the tensor again first puts that
    back, so an in-place kernel (``Y += X``) gives Y = X after any number of runs, as after one; tensors a later run
    does not use (a builder that makes new ones each time) keep their results. A run that fails leaves the tensors
    as the last successful run left them. (Timing-only studies, the default of ``sweep`` and the explorer, write
    nothing.)

    Recent runs: with ``cache=RunCache()`` (the explorer gives its study one), a timing-only run
    (``compute_values=False``, or the twin of a study whose pipeline computed the values) whose workload and options
    equal, by content, one of the cache's recent runs is not run again: the Comparison holds that run's Program,
    whose trace and stats are exactly a new run's (its ``workload`` is the equal one built then). So a knob change
    that leaves one side's workload as it was reruns only the other (``cores`` never changes the pipeline of a
    builder without a cores parameter; ``depth`` changes the channels, which the twin does not have, so the spec
    pipeline's twin stays), and a slider moved back to an earlier value reruns nothing. The builder still runs every
    time (its result is what is compared), and runs that compute values are never taken from the cache: the tensors
    are restored and written exactly as without it.
    """

    def __init__(self, build: Callable[..., Workload | Program], knobs: Knobs | None = None, mode: str = "both", *,
                 words: KnobWords = PYTHON_WORDS, equal_cores: bool = False, cache: RunCache | None = None,
                 **compile_options: Any) -> None:
        if not callable(build):
            raise PtortTypeError(f"Study needs a builder function, got {build!r}.",
                                 hint="def build(depth, tile, tiles): ... return connect(...)")
        self.build = build
        self.knobs = check_knobs(knobs, "Study") or Knobs()
        self.mode = check_mode(mode, "Study")
        self.words = _check_words(words, "Study")
        # The twin runs on the pipeline's cores (then knobs.cores is unused).
        self.equal_cores = check_equal_cores(equal_cores, "Study")
        self.cache = _check_cache(cache, "Study")  # recent timing-only runs (the explorer's slider positions)
        check_compile_options(compile_options, "Study", self.mode)
        self.compile_options = compile_options
        signature = _builder_signature(build)
        if signature is not None:
            params = signature.parameters
            self._takes = {n for n in params if n in KNOB_NAMES}
            self._takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
            self._signature = f"{_builder_name(build)}{signature}"
        else:  # no signature (a builtin): the builder is called with every knob, as one taking **knobs would be
            self._takes, self._takes_all = set(), True
            self._signature = _builder_name(build)
        self.last: Comparison | None = None
        self._writes: Writes | None = None  # every tensor the study's runs wrote, as before its first run

    def takes(self, knob: str) -> bool:
        """Whether changing ``knob`` can change a run: the builder takes it (``cores`` also sets the twin)."""
        if knob == "cores":
            return self.mode != "pipeline" or self._takes_all or "cores" in self._takes
        return self._takes_all or knob in self._takes

    def refuse_untaken(self, knob: str, api: str, outcome: str = "every run would be the same") -> None:
        """A PtortValueError when varying ``knob`` cannot change a run (``api`` names the caller)."""
        if self.takes(knob):
            return
        if knob == "cores":
            raise KnobError(f"{api} varies knob 'cores', which sets the cores of the data-parallel twin, but "
                            f"the study's mode is 'pipeline', which runs no twin, so {outcome}.",
                            hint="Use mode='both' or 'data-parallel', or leave cores out.")
        name = self._signature.split("(")[0]
        params = self._signature[len(name):] or "(...)"
        example = f"def {name}(..., {knob}): ..." if name.isidentifier() else f"lambda ..., {knob}: ..."
        raise KnobError(
            f"{api} varies knob '{knob}', but the builder {self._signature} does not take it (its parameters are "
            f"{params}), so {outcome}.",
            hint=f"Give the builder a '{knob}' parameter and build with it ({example}), or leave {knob} alone.")

    def adopt(self, writes: Writes) -> None:
        """Count the tensors ``writes`` saved as written by this study: a later run that uses one first puts it
        back (the explorer of a %%ptort cell adopts the cell's own run, so that moving a slider replaces it)."""
        if self._writes is None:
            self._writes = writes
        else:
            self._writes.absorb(writes)

    def workload(self, knobs: Knobs) -> Workload:
        """The workload the builder makes for ``knobs`` (a Program's workload, when it returns a Program)."""
        target = self._target(knobs)
        return target.workload if isinstance(target, Program) else target

    def _target(self, knobs: Knobs) -> Workload | Program:
        """What the builder makes: a workload the builder also compiled is studied as that (last) Program, with
        its options, and as having run if the builder executed it (then the study computes no values again)."""
        args = {f.name: getattr(knobs, f.name) for f in fields(knobs)
                if self._takes_all or f.name in self._takes}
        try:
            with collect_compiled() as compiled:
                w = self.build(**args)
        except Exception as e:  # noqa: BLE001 - the user's builder
            raise_user_error(e, f"the study's builder {_builder_name(self.build)} (with {args})")
        if not isinstance(w, (Workload, Program)):
            raise _not_a_workload(self.build, w)
        if isinstance(w, Workload):
            programs = [p for p in compiled if p.workload is w]
            if programs:
                return programs[-1]
        return w

    def run(self, **changes: Any) -> Comparison:
        """Apply knob changes, rebuild, run; the result is also kept in ``.last``."""
        return self.run_with(changes)

    def run_with(self, changes: dict[str, Any], on_built: OnBuilt | None = None) -> Comparison:
        """``run(**changes)``, calling ``on_built(target, knobs)`` once the builder has built and the depth check
        passed, before anything runs (a sweep hashes the program there; an exception it raises stops the run, and
        the study is left as after a failed run)."""
        if not isinstance(self.knobs, Knobs):  # study.knobs was reassigned
            check_knobs(self.knobs, "Study")
        knobs = self.knobs.replace(**changes)
        for name in changes:
            if getattr(knobs, name) != getattr(self.knobs, name):
                self.refuse_untaken(name, f"Study.run({name}={changes[name]!r})")
        check_knob_limits(knobs, self.mode, "knob tiles")
        self.last = self._run_from_start(knobs, depth_set="depth" in changes and self.takes("depth"),
                                         on_built=on_built)
        self.knobs = knobs  # only now: a failed run keeps the last good knobs, so the next run does not fail again
        return self.last

    def _run_from_start(self, knobs: Knobs, depth_set: bool = False, on_built: OnBuilt | None = None) -> Comparison:
        """Build and run from the data the study's first run saw; on failure, put back the last run's results.
        ``depth_set``: the caller set the depth, so it must reach the pipeline."""
        before = self._writes
        journal = Writes(before)  # each tensor an earlier run wrote starts from its first state when touched
        try:
            with recording(journal):  # the builder's own runs (a cell that executes its program) count too
                target = self._target(knobs)
                if depth_set:
                    workload = target.workload if isinstance(target, Program) else target
                    check_depth(pipeline_channels(workload), knobs.depth, self.words)
                if on_built is not None:
                    on_built(target, knobs)
                result = run_study(target, knobs, self.mode, words=self.words, equal_cores=self.equal_cores,
                                   cache=self.cache, **self.compile_options)
                result.built_with = tuple(n for n in KNOB_NAMES if self._takes_all or n in self._takes)
        except BaseException:
            journal.restore()
            raise
        if before is None:
            self._writes = journal if len(journal) else None
        else:
            before.absorb(journal)  # tensors seen for the first time, as they were before this run
        return result


# Knobs and their rules live in ptort_lab.knobs, the run cache in ptort_lab.run_cache; they are also importable
# from here, where studies use them.
__all__ = ["Knobs", "KnobWords", "Comparison", "Study", "RunCache", "run_study", "data_parallel_twin", "check_knobs",
           "MergeOrderWarning", "ReusedBufferWarning",
           "cores_used", "channel_hops",
           "check_knob_limits", "check_cores", "check_depth", "task_limit", "pipeline_channels", "merged_options",
           "check_mode", "check_equal_cores", "check_compile_options",
           "MODES", "KNOB_NAMES", "PYTHON_WORDS"]
