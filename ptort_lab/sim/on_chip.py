"""On-chip state of one run: the copies of on-chip tensors (``Tensor(location=Location.UB | L1 | L0C)``), one per
(core, unit) that uses them, and the buffer slots of tile channels (``Channel(tile=...)``).

Neither is a user output in global memory, so neither goes through the write-on-success journal (``numerics.Writes``):
each run starts every copy from the tensor's ``data`` (else zeros) and every slot from zeros, and never writes the
tensor's own array. A run keeps its copies (``Run.on_chip``) for the host to read afterwards
(``program.on_chip(tensor)``).

A data-parallel core deals its vector tasks to its AIVs in turn, so two tasks sharing a UB tensor may run on
different AIVs, each with its own copy: a task reading a tile that only another AIV of its core wrote is refused
(``UnitWrites``), as a pipeline process reading a copy only another unit writes is (``residency``).

Across copies (cores, or AIVs) a data-parallel run also refuses a read that misses values lost on other copies
(``CopyFlows``): a task that only reads a tile (``In``) on one copy, while writes to that tile made on other copies
since this copy's value started (its last write that did not read the old value, or the run's start) and before the
read, in program order, are never read by any task on their own copies. Each copy is its own, so those values reach
no task: the read sees a partial value (a sum over tasks dealt to several cores, read back on one). Per-copy state
that every copy reads back itself (a partial sum per core, each core writing its own) is fine, as is state no task
reads out (the host reads the copies: ``program.on_chip``). Whether a write is ever read is known at the run's end,
so the check runs there (``OnChipValues.check``) and names the read's task, line and sim time.

A pipeline has no program order across its processes, so the same check (``PipelineFlows``) orders writes and reads
by what surely happens before what: vector clocks that the processes' channels (one producer, one consumer) and
events (one recorder, one waiter) carry (``Clocks``, wrapping each process's step generator). A write that only timing
puts before a read is never counted, so the verdict does not depend on depths or costs.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import deque
from typing import Any, Generator, Iterable

import numpy as np

from ..dsl.commands import CLOSED, PULL, PUSH, RECORD, SEND, SEND_PULL, TASK, TASK_PULL, WAIT
from ..dsl.tree import NodeKind
from ..dsl.types import Direction, Location, Tensor, TensorView
from ..dsl.wiring import channel_uses
from ..dsl.workload import Task, Workload
from ..errors import SimulationError
from .machine import Buffer
from .numerics import tensor_label, tile_label

# The buffer an on-chip tensor lives in, by its location.
BUFFER_OF = {Location.UB: Buffer.UB, Location.L1: Buffer.L1, Location.L0C: Buffer.L0C}
_ON_CHIP, _GM = frozenset(BUFFER_OF), Location.Global


def on_chip_bases(workload: Workload) -> list[Tensor]:
    """Every on-chip tensor and tile-channel buffer the tasks of ``workload`` use, in first-use order (their
    arguments name them even while their indices are loop expressions)."""
    seen: dict[int, Tensor] = {}
    stack = [workload]  # (walk, without asking a task node, a leaf, for its children: twins have millions)
    task = NodeKind.TASK
    while stack:
        node = stack.pop()
        if node.kind is not task:
            stack.extend(reversed(node.children()))
            continue
        res = node.resources
        for view in res.values() if isinstance(res, dict) else res or ():
            if view.__class__ is TensorView:
                base = view.base
                if (base.ring_of is not None or (base.location is not _GM and base.location in _ON_CHIP)) \
                        and id(base) not in seen:
                    seen[id(base)] = base
    return list(seen.values())


def unit_of(base: Tensor, aiv: int) -> str:
    """The unit whose buffer holds an on-chip tensor: the AIV the task's vector work runs on for UB, else the AIC."""
    return f"AIV{aiv}" if base.location is Location.UB else "AIC"


def direction_of(kernel: Any, pname: str) -> Direction:
    """How a task's kernel uses parameter ``pname`` (a kernel named by string: as read and written)."""
    signature = getattr(kernel, "signature", None)
    if not signature or pname not in signature:
        return Direction.INOUT
    direction: Direction = signature[pname][0]
    return direction


Tile = tuple[Any, ...]  # a tile's index in its tensor (negative indices counted from the end)
Written = tuple[dict[Tile, str], dict[Tile, str]]  # (written tile -> its writer, prefix of a written tile -> writer)


class UnitWrites:
    """Which tiles of each UB tensor each AIV of a core has written in one data-parallel run, to refuse a task that
    reads a tile only another AIV of its core wrote: each AIV keeps its own copy, so it would read its own untouched
    one (zeros, or the tensor's data) instead of the value written. ``cores``: how many cores the run deals its tasks
    to (its hint says each of them keeps its own copies too)."""

    __slots__ = ("_units", "cores")

    def __init__(self, cores: int = 1) -> None:
        self._units: dict[tuple[int, int], dict[str, Written]] = {}  # (id(tensor), core) -> AIV -> tiles written
        self.cores = cores

    def touch(self, task: Task, name: str, base: Tensor, index: Tile, core: int, unit: str) -> None:
        """``task`` uses tile ``index`` of ``base`` (its parameter ``name``) on (core, unit): refuse a read of a tile
        only another unit of the core wrote; note a write."""
        self.note(task, base, index, normalised(index, base.shape), direction_of(task.kernel_ref, name), core, unit)

    def note(self, task: Task, base: Tensor, index: Tile, tile: Tile, direction: Direction, core: int,
             unit: str) -> None:
        """``touch`` with the parameter's direction and the normalised tile known."""
        key = (id(base), core)
        units = self._units.get(key)
        if units is not None and direction is not Direction.OUT:
            own = units.get(unit)
            if own is None or _writer(own, tile) is None:
                for other, written in units.items():
                    writer = _writer(written, tile) if other != unit else None
                    if writer is not None:
                        raise _read_elsewhere(task, base, index, core, unit, other, writer, self.cores)
        if direction is Direction.IN:
            return
        if units is None:
            units = self._units[key] = {}
        full, prefixes = units.setdefault(unit, ({}, {}))
        if tile not in full:
            label = f"task {task.id} ({task.kernel})"
            full[tile] = label
            for k in range(len(tile) + 1):
                prefixes.setdefault(tile[:k], label)


def normalised(index: Tile, shape: tuple[int, ...]) -> Tile:
    """``index`` with negative ints counted from the end (``S[-1]`` is the same tile as ``S[n - 1]``)."""
    for i in index:  # (a loop, not all(...): once per on-chip argument of every task)
        if i.__class__ is not int and not isinstance(i, np.integer) or i < 0:
            break
    else:
        return index
    return tuple(int(i) % shape[k] if isinstance(i, (int, np.integer)) and -shape[k] <= i < 0 else i
                 for k, i in enumerate(index))


def _writer(written: Written, tile: Tile) -> str | None:
    """The task that wrote part of ``tile`` (a written tile that contains it, or one inside it), else None."""
    full, prefixes = written
    for k in range(len(tile) + 1):
        hit = full.get(tile[:k])
        if hit is not None:
            return hit
    return prefixes.get(tile)


def _read_elsewhere(task: Task, base: Tensor, index: Tile, core: int, unit: str, other: str,
                    writer: str, cores: int = 1) -> SimulationError:
    label = tensor_label(base)
    tile = _tile_of(index)
    start = "the tensor's data" if base.data is not None else "zeros"
    if cores > 1:  # .vector_unit(0) alone leaves one copy per core: say so
        fix = ("Keep the tasks that share a tile on one AIV with .vector_unit(0) (or .vector_unit(lambda t: ...): the "
               f"same AIV for a tile's writer and readers), and on one core too unless each core is meant to keep a "
               f"value of its own: this run deals its tasks to {cores} cores, and each core keeps its own copy as well "
               "(e.g. .dispatch(DispatchPolicy.affinity(lambda t: 0)) keeps them all on core 0); or keep the value in "
               "global memory (a Tensor without location=).")
    else:
        fix = ("Keep the tasks that share the tensor on one AIV with .vector_unit(lambda t: ...) on the workload (the "
               "same AIV for a tile's writer and readers, e.g. .vector_unit(lambda t: t.params[0] % 2), or "
               ".vector_unit(0) for all), or keep the value in global memory (a Tensor without location=).")
    return SimulationError(
        f"task {task.id} ({task.kernel}) reads {tile}on-chip tensor {label} on core {core} {unit}, but only {other} "
        f"of that core wrote it ({writer}): each AIV keeps its own copy of a UB tensor, so the task would read "
        f"{unit}'s untouched copy ({start}).",
        hint="A data-parallel core deals its vector tasks to its AIVs in turn. " + fix,
        where=task.loc, locate=False)


def _tile_of(index: Tile) -> str:
    """``"tile [2, 0] of "`` for an indexed tile, nothing for the whole tensor: how the errors below name it."""
    return f"tile [{', '.join(map(str, index))}] of " if index else ""


Copy = tuple[int, str]  # (core, unit) of one copy of an on-chip tensor


class _TileCopy:
    """One tile of an on-chip tensor in one (core, unit) copy, in a data-parallel run (``CopyFlows``)."""

    __slots__ = ("last", "unread", "lost", "chain", "reads")

    def __init__(self, chain: int) -> None:
        self.last: Task | None = None  # the copy's last write of the tile
        self.unread = False  # no task on the copy has read ``last`` yet
        self.lost: list[Task] = []  # writes a later write on the copy replaced before any task on it read them
        # the id of the task whose write started the copy's current value without reading the old one (-1: the run's
        # start, the tensor's data or zeros): the writes on other copies after it are the ones the value leaves out
        self.chain = chain
        # the pure reads (In) of the tile, one entry per chain: (chain, [(reader id, its start, reader), ...])
        self.reads: list[tuple[int, list[tuple[int, int, Task]]]] = []


class _Flow:
    """Every tile of one on-chip tensor that a data-parallel run used, per copy."""

    __slots__ = ("base", "tiles", "length")

    def __init__(self, base: Tensor) -> None:
        self.base = base
        self.tiles: dict[Tile, dict[Copy, _TileCopy]] = {}
        self.length = -2  # the index length of every access so far (-2: none yet; -1: several, tiles may overlap)

    def related(self, tile: Tile) -> list[Tile]:
        """The tiles used so far that overlap ``tile`` (one contains the other), itself included."""
        if self.length != -1:  # one index length: tiles overlap only when equal
            return [tile]
        n = len(tile)
        return [t for t in self.tiles if t[:n] == tile or tile[:len(t)] == t]


class CopyFlows:
    """Refuses, at the end of a data-parallel run, a pure read (``In``) of an on-chip tile on one (core, unit) copy
    that misses values lost on other copies: writes to the tile on another copy, after the reading copy's value
    started (its last write that did not read the old value; the run's start when none) and before the read in
    program order (task ids), that no task on their own copy ever reads (a later write there replaced them first,
    or the run ended). Those values reach no task, and the read sees its own copy's part alone.

    What is kept per (tile, copy): its last write and whether it was read since, the writes replaced unread, and
    its pure reads grouped by chain (a tuple per read: a run computing values holds every task anyway). The check
    needs to know whether a write is ever read, so it runs once the run is over (``check``)."""

    __slots__ = ("_flows",)

    def __init__(self) -> None:
        self._flows: dict[int, _Flow] = {}  # id(tensor) -> its tiles (a run's tensors live as long as its tasks)

    def access(self, task: Task, base: Tensor, tile: Tile, direction: Direction, copy: Copy, start: int) -> None:
        """``task`` (starting at cycle ``start``) uses tile ``tile`` (normalised) of ``base`` on ``copy`` as
        ``direction`` says (a read of the copy's value, then a write, for ``InOut``)."""
        flow = self._flows.get(id(base))
        if flow is None:
            flow = self._flows[id(base)] = _Flow(base)
        if flow.length != len(tile):
            flow.length = len(tile) if flow.length == -2 else -1
        copies = flow.tiles.get(tile)
        if copies is None:
            copies = flow.tiles[tile] = {}
        state = copies.get(copy)
        if state is None:
            state = copies[copy] = _TileCopy(self._chain_of(flow, tile, copy) if flow.length == -1 else -1)
        if flow.length == -1:  # (tiles of several sizes: a read or write reaches the tiles it overlaps)
            self._overlapping(flow, task, tile, state, direction, copy, start)
            return
        if direction is not Direction.OUT:  # reads the copy's value
            state.unread = False
            if direction is Direction.IN:
                _note_read(state, task, start)
                return
        elif state.unread:  # overwritten before any task on the copy read it
            state.lost.append(state.last)  # type: ignore[arg-type]  # (unread: there is a last write)
        if direction is Direction.OUT:
            state.chain = task.id
        state.last = task
        state.unread = True

    @staticmethod
    def _chain_of(flow: _Flow, tile: Tile, copy: Copy) -> int:
        """Where a tile new to ``copy`` starts its value: the latest chain of a tile containing it there (-1)."""
        chain = -1
        for k in range(len(tile)):
            outer = flow.tiles.get(tile[:k])
            state = outer.get(copy) if outer is not None else None
            if state is not None and state.chain > chain:
                chain = state.chain
        return chain

    @staticmethod
    def _overlapping(flow: _Flow, task: Task, tile: Tile, state: _TileCopy, direction: Direction, copy: Copy,
                     start: int) -> None:
        """``access`` when tiles of several sizes are used: a read reads every overlapping tile's last write on the
        copy; a write that does not read replaces those of the tiles inside it (its own included)."""
        n = len(tile)
        if direction is not Direction.OUT:
            for t in flow.related(tile):
                other = flow.tiles[t].get(copy)
                if other is not None:
                    other.unread = False
            if direction is Direction.IN:
                _note_read(state, task, start)
                return
        else:
            for t in flow.related(tile):
                inner = flow.tiles[t].get(copy) if t[:n] == tile else None
                if inner is None:
                    continue
                if inner.unread:
                    inner.lost.append(inner.last)  # type: ignore[arg-type]  # (unread: there is a last write)
                inner.last, inner.unread, inner.chain = None, False, task.id
        state.last = task
        state.unread = True

    def check(self) -> None:
        """Refuse the run if a pure read missed values lost on other copies (the class docstring): the first such
        read in program order, with every copy whose writes it misses."""
        found: tuple[Any, ...] | None = None  # (reader id, reader, its start, flow, tile, copy, chain)
        for flow in self._flows.values():
            if not any(s.reads for copies in flow.tiles.values() for s in copies.values()):
                continue  # (no task only read it: nothing to miss)
            lost_of = {t: {c: sorted(w.id for w in _lost(s)) for c, s in copies.items()}
                       for t, copies in flow.tiles.items()}
            for tile, copies in flow.tiles.items():
                related = flow.related(tile)
                for copy, state in copies.items():
                    for chain, readers in state.reads:
                        last = max(r[0] for r in readers)
                        earliest = None  # the first lost write on another copy the chain's reads miss
                        for t in related:
                            for other, ids in lost_of[t].items():
                                if other == copy or not ids:
                                    continue
                                i = bisect_right(ids, chain)
                                if i < len(ids) and ids[i] < last and (earliest is None or ids[i] < earliest):
                                    earliest = ids[i]
                        if earliest is None:
                            continue
                        # the chain's first read after it (reads come in time order, not always in task order)
                        _, at, reader = min((r for r in readers if r[0] > earliest), key=_first)
                        if found is None or reader.id < found[0]:
                            found = (reader.id, reader, at, flow, tile, copy, chain)
        if found is not None:
            _, reader, at, flow, tile, copy, chain = found
            missed: dict[Copy, list[Task]] = {}
            for t in flow.related(tile):
                for other, s in flow.tiles[t].items():
                    if other != copy:
                        missed.setdefault(other, []).extend(w for w in _lost(s) if chain < w.id < reader.id)
            raise _lost_elsewhere(reader, at, flow.base, tile, copy,
                                  {c: sorted(ws, key=lambda w: w.id) for c, ws in sorted(missed.items()) if ws})


def _first(read: tuple[int, int, Task]) -> int:
    return read[0]


def _note_read(state: _TileCopy, task: Task, start: int) -> None:
    """A pure read of the copy's value, under its chain's entry."""
    reads = state.reads
    if not reads or reads[-1][0] != state.chain:
        reads.append((state.chain, []))
    reads[-1][1].append((task.id, start, task))


def _lost(state: _TileCopy) -> list[Task]:
    """The writes of a tile on a copy that no task on it read: those replaced unread, and the last if still unread."""
    return state.lost + [state.last] if state.unread and state.last is not None else state.lost


def _lost_elsewhere(reader: Task, start: int, base: Tensor, tile: Tile, copy: Copy,
                    missed: dict[Copy, list[Task]]) -> SimulationError:
    """The error of a pure read that misses values lost on other copies (``CopyFlows``)."""
    label = tensor_label(base)
    where = _tile_of(tile)
    core, unit = copy
    parts = []
    for (c, u), writes in missed.items():
        last = writes[-1]
        more = f" and {len(writes) - 1} earlier" if len(writes) > 1 else ""
        parts.append(f"core {c} {u} (task {last.id} ({last.kernel}){more})")
    copies = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
    cores = sorted({c for c, _ in missed} - {core})
    one_unit = "one core and one unit" if cores else "one unit"
    aiv = " with .vector_unit(0)" if unit != "AIC" else ""
    keep = (f"dispatch them to one core (e.g. .dispatch(DispatchPolicy.affinity(lambda t: 0))){aiv}" if cores
            else f"keep them on one AIV{aiv}")
    return SimulationError(
        f"task {reader.id} ({reader.kernel}) reads {where}on-chip tensor {label} on core {core} {unit}, but never "
        f"sees the values written to it on {copies}, which come before the read in program order: each (core, unit) "
        f"keeps its own copy of an on-chip tensor, so the task reads core {core} {unit}'s copy alone (a partial "
        "value), and no task ever reads those writes on their own copies (they are lost).",
        hint=f"Keep the tasks that pass this value on {one_unit}: {keep}; or read each copy back on its own core and "
             "unit (a task there that writes its part to global memory, combined afterwards); or keep the value in "
             "global memory (a Tensor without location=), where the run orders the tasks that share it.",
        where=reader.loc, context=f"core {core}, {tile_label(reader)}, sim time {start} cycles", locate=False)


# -- pipelines: what happens before what, and reads that miss values lost on other copies -------------------------
Stamp = tuple[int, ...]  # a vector clock: per process (in pipeline order), how many of its tasks happened before
Access = tuple[Task, int, int, int, Stamp]  # (task, its start, its process's index, its number there, its clock)


def happens_before(a: Access, b: Access) -> bool:
    """Whether task ``a`` happened before task ``b`` in every run of the pipeline: earlier in one process, or
    before a send (or record) whose item (or signal) ``b``'s process took before ``b``, transitively."""
    return b[4][a[2]] > a[3]


class Clocks:
    """Vector clocks of one pipeline run: which tasks surely happened before which, whatever the timing.

    Each process counts its tasks; an item sent on a channel with one producer and one consumer process carries the
    producer's clock, which the consumer takes in when it pulls that item (items arrive in the order they were sent),
    and so does a signal of an event with one recording and one waiting process. Channels and events with several
    producers or consumers (which item reaches whom depends on timing), and the slot credits that flow back from a
    consumer, add no ordering: the clocks may leave out an order, never claim one that a run may not have. Each
    process's step generator is wrapped (``wrap``); the commands pass through unchanged."""

    def __init__(self, pipe: Workload) -> None:
        procs = list(pipe.fields["processes"])
        self.index = {p.name: i for i, p in enumerate(procs)}
        self.clock = {p.name: [0] * len(procs) for p in procs}
        self.items: dict[int, deque[Stamp]] = {}  # id(channel) -> the clocks of the items sent, not yet taken
        for c in pipe.fields["channels"]:
            if len(pipe.producers(c)) == 1 and len(pipe.consumers(c)) == 1:
                self.items[id(c)] = deque()
        ends: dict[int, tuple[set[str], set[str]]] = {}
        for p in procs:
            _, _, records, waits = channel_uses(p.workload)
            for ev in records:
                ends.setdefault(id(ev), (set(), set()))[0].add(p.name)
            for ev in waits:
                ends.setdefault(id(ev), (set(), set()))[1].add(p.name)
        self.signals: dict[int, deque[Stamp]] = {k: deque() for k, (r, w) in ends.items() if len(r) == 1 == len(w)}
        self.pending: dict[int, tuple[int, int, Stamp]] = {}  # id(task) -> (process, number, clock) until it runs

    def wrap(self, name: str, gen: Any) -> Generator[Any, Any, None]:
        """``gen``'s commands, noting the clock of each task, item and signal and taking in those received."""
        i, clock, items, signals = self.index[name], self.clock[name], self.items, self.signals
        reply = None
        while True:
            try:
                cmd = gen.send(reply)
            except StopIteration:
                return
            op = cmd[0]
            if op == TASK or op == TASK_PULL:
                self._task(cmd[1], i, clock)
            elif op == SEND or op == SEND_PULL:
                self._task(cmd[2], i, clock)
                sent = items.get(id(cmd[1]))
                if sent is not None:
                    sent.append(tuple(clock))
            elif op == PUSH:
                sent = items.get(id(cmd[1]))
                if sent is not None:
                    sent.append(tuple(clock))
            elif op == RECORD:
                signal = signals.get(id(cmd[1]))
                if signal is not None:
                    signal.append(tuple(clock))
            reply = yield cmd
            # the command is carried out: take in the clock of the item pulled, or of the signal taken
            pull = cmd if op == PULL else cmd[2] if op == TASK_PULL else cmd[4] if op == SEND_PULL else None
            got = None
            if pull is not None and reply is not CLOSED:
                got = items.get(id(pull[1]))
            elif op == WAIT:
                got = signals.get(id(cmd[1]))
            if got:  # (None: an ordering the clocks leave out)
                for k, v in enumerate(got.popleft()):
                    if v > clock[k]:
                        clock[k] = v

    def _task(self, task: Task, i: int, clock: list[int]) -> None:
        self.pending[id(task)] = (i, clock[i], tuple(clock))
        clock[i] += 1

    def at(self, task: Task, start: int) -> Access | None:
        """The access record of ``task``, now running from cycle ``start`` (None: not one of a wrapped process)."""
        noted = self.pending.pop(id(task), None)
        return None if noted is None else (task, start, *noted)


def shared_on_chip(pipe: Workload, places: dict[str, Any] | None = None) -> set[int]:
    """id() of each on-chip tensor (not a tile channel's slots) that two or more processes of ``pipe`` use, from
    more than one place when ``places`` gives each process's (core, AIV): users that share one core and one AIV share
    one copy, so no read of theirs can miss another copy's writes."""
    users: dict[int, set[str]] = {}
    for p in pipe.fields["processes"]:
        if not isinstance(p.workload, Workload):
            continue
        for base in on_chip_bases(p.workload):
            if base.ring_of is None and base.on_chip:
                users.setdefault(id(base), set()).add(p.name)
    return {k for k, names in users.items() if len(names) > 1
            and (places is None or len({places.get(name) for name in names}) > 1)}


class _PipeTileCopy:
    """One tile of an on-chip tensor in one (core, unit) copy, in a pipeline run (``PipelineFlows``)."""

    __slots__ = ("last", "unread", "lost", "chain", "reads")

    def __init__(self, chain: Access | None) -> None:
        self.last: Access | None = None  # the copy's last write of the tile (in the order the run computed them)
        self.unread = False  # no task on the copy has read ``last`` yet
        self.lost: list[Access] = []  # writes a later write on the copy replaced before any task on it read them
        self.chain = chain  # the write that started the copy's value without reading the old one (None: the start)
        self.reads: list[tuple[Access, Access | None]] = []  # the pure reads (In), each with its chain


class PipelineFlows:
    """``CopyFlows`` for a pipeline: refuses, at the run's end, a pure read (``In``) of an on-chip tile on one
    (core, unit) copy that misses a value lost on another copy: a write there that no task on that copy ever
    reads, which surely happened after the reading copy's value started (its last write that did not read the old
    value; the run's start) and before the read - ordered by the processes' channels and events (``Clocks``), so
    the verdict never depends on timing. Such a value reaches no task, and the read sees its own copy's part alone.

    Processes on one copy share the value; per-copy state that each copy reads back itself, values passed through
    channels or global memory, and other tiles of the tensor are never refused; nor is a write that only timing puts
    before the read, nor a lost value no task reads after it (the host may read that copy: ``program.on_chip``). A
    task that surely reads a copy after such a value was lost elsewhere is refused, a read by the process that
    wrote the copy's own part included."""

    __slots__ = ("clocks", "shared", "_flows")

    def __init__(self, clocks: Clocks, shared: set[int]) -> None:
        self.clocks, self.shared = clocks, shared
        self._flows: dict[int, _Flow] = {}  # id(tensor) -> its tiles (``_Flow.tiles`` values: _PipeTileCopy)

    def access(self, at: Access, base: Tensor, tile: Tile, direction: Direction, copy: Copy) -> None:
        """The task of ``at`` uses tile ``tile`` (normalised) of ``base`` on ``copy`` as ``direction`` says (a read
        of the copy's value, then a write, for ``InOut``)."""
        flow = self._flows.get(id(base))
        if flow is None:
            flow = self._flows[id(base)] = _Flow(base)
        if flow.length != len(tile):
            flow.length = len(tile) if flow.length == -2 else -1
        copies: Any = flow.tiles.setdefault(tile, {})
        state = copies.get(copy)
        if state is None:
            state = copies[copy] = _PipeTileCopy(self._chain_of(flow, tile, copy))
        related = flow.related(tile)
        if direction is not Direction.OUT:  # reads the copy's value: every overlapping tile's last write there
            for t in related:
                other: Any = flow.tiles[t].get(copy)
                if other is not None:
                    other.unread = False
            if direction is Direction.IN:
                state.reads.append((at, state.chain))
                return
        else:  # replaces the value of the tiles inside it (its own included)
            n = len(tile)
            for t in related:
                inner: Any = flow.tiles[t].get(copy) if t[:n] == tile else None
                if inner is None:
                    continue
                if inner.unread and inner.last is not None:
                    inner.lost.append(inner.last)
                inner.last, inner.unread, inner.chain = None, False, at
        state.last, state.unread = at, True

    @staticmethod
    def _chain_of(flow: _Flow, tile: Tile, copy: Copy) -> Access | None:
        """Where a tile new to ``copy`` starts its value: the latest chain of a tile containing it there."""
        chain = None
        for k in range(len(tile)):
            outer = flow.tiles.get(tile[:k])
            state: Any = outer.get(copy) if outer is not None else None
            if state is not None and state.chain is not None and (chain is None or state.chain[0].id > chain[0].id):
                chain = state.chain
        return chain

    def check(self) -> None:
        """Refuse the run if a pure read missed a value lost on another copy (the class docstring): the first such
        read in the order the run computed them, with every lost write it misses."""
        found: tuple[Access, _Flow, Tile, Copy, dict[Copy, list[Access]]] | None = None
        for flow in self._flows.values():
            tiles: Any = flow.tiles
            if not any(s.reads for copies in tiles.values() for s in copies.values()):
                continue
            # the lost writes of each tile on each copy, by process, in each process's order (with their numbers)
            lost: dict[Tile, dict[Copy, dict[int, Lost]]] = {}
            for t, copies in tiles.items():
                for c, s in copies.items():
                    writes = s.lost + [s.last] if s.unread and s.last is not None else s.lost
                    by_proc: dict[int, list[Access]] = {}
                    for w in writes:
                        by_proc.setdefault(w[2], []).append(w)
                    if by_proc:
                        lost.setdefault(t, {})[c] = {
                            proc: ([w[3] for w in ws], ws) for proc, ws in
                            ((proc, sorted(ws, key=_number)) for proc, ws in by_proc.items())}
            if not lost:
                continue
            for tile, copies in tiles.items():
                related = [t for t in flow.related(tile) if t in lost]
                if not related:
                    continue
                for copy, state in copies.items():
                    for read, chain in state.reads:
                        if found is not None and read[0].id >= found[0][0].id:
                            continue
                        missed = _missed(read, chain, copy, [lost[t] for t in related])
                        if missed:
                            found = (read, flow, tile, copy, missed)
        if found is not None:
            read, flow, tile, copy, missed = found
            raise _pipeline_lost_elsewhere(read, flow.base, tile, copy, missed)


def _number(a: Access) -> int:
    return a[3]


Lost = tuple[list[int], list[Access]]  # one process's lost writes of a tile on a copy: their numbers, and them


def _missed(read: Access, chain: Access | None, copy: Copy,
            lost: list[dict[Copy, dict[int, Lost]]]) -> dict[Copy, list[Access]]:
    """The lost writes on copies other than ``copy`` that happened after ``chain`` (None: the run's start) and
    before ``read``. A process's writes that happened before the read are a prefix of its list; if any of them
    happened after ``chain``, its last one did (a process's clock only grows)."""
    missed: dict[Copy, list[Access]] = {}
    seen = read[4]
    for by_copy in lost:
        for other, by_proc in by_copy.items():
            if other == copy:
                continue
            for proc, (numbers, ws) in by_proc.items():
                n = bisect_left(numbers, seen[proc])  # (the writes numbered below what the read saw)
                if n and (chain is None or happens_before(chain, ws[n - 1])):
                    missed.setdefault(other, []).extend(
                        w for w in ws[:n] if chain is None or happens_before(chain, w))
    return missed


def _pipeline_lost_elsewhere(read: Access, base: Tensor, tile: Tile, copy: Copy,
                             missed: dict[Copy, list[Access]]) -> SimulationError:
    """The error of a pipeline's pure read that misses values lost on other copies (``PipelineFlows``)."""
    reader, start = read[0], read[1]
    label = tensor_label(base)
    where = _tile_of(tile)
    core, unit = copy
    parts: list[str] = []
    writers: list[str] = []
    for (c, u), writes in sorted(missed.items()):
        writes = sorted(writes, key=lambda w: w[0].id)
        last = writes[-1][0]
        more = f" and {len(writes) - 1} earlier" if len(writes) > 1 else ""
        names = sorted({w[0].process for w in writes if w[0].process is not None})
        by = " and ".join(f"'{n}'" for n in names)
        parts.append(f"core {c} {u} by process {by} (task {last.id} ({last.kernel}){more})")
        writers.extend(n for n in names if n not in writers)
    copies = ", ".join(parts[:-1]) + " and " + parts[-1] if len(parts) > 1 else parts[0]
    together = ", ".join(f"'{n}': {core}" for n in [reader.process, *writers])
    return SimulationError(
        f"task {reader.id} ({reader.kernel}) of process '{reader.process}' reads {where}on-chip tensor {label} on "
        f"core {core} {unit}, but never sees the values written to it on {copies}, which happen before the read "
        "(the processes' channels and events order them): each (core, unit) keeps its own copy of an on-chip tensor, "
        f"so the task reads core {core} {unit}'s copy alone (a partial value), and no task ever reads those writes "
        "on their own copies (they are lost).",
        hint=f"Place the processes that pass this value on one core and unit, where they share one copy "
             f"(.place({{{together}}})); or read each copy back on its own core and unit (a task there that writes "
             "its part to global memory or into a channel, combined afterwards); or keep the value in global memory "
             "(a Tensor without location=).",
        where=reader.loc, context=f"process '{reader.process}' on core {core}, {tile_label(reader)}, sim time {start} "
                                  "cycles", locate=False)


class OnChipValues:
    """The values of one run's on-chip state: a copy of each on-chip tensor per (core, unit), and one array per
    buffer slot of each tile channel."""

    __slots__ = ("copies", "slots", "writes", "flows", "pipe_flows")

    def __init__(self, cores: int = 1) -> None:
        self.copies: dict[tuple[int, int, str], tuple[Tensor, np.ndarray]] = {}  # (id, core, unit) -> (tensor, copy)
        self.slots: dict[tuple[int, tuple[int, ...]], np.ndarray] = {}  # (id(ring), (slot,)) -> the slot's tile
        # the tiles each AIV of a data-parallel core wrote (a task's AIV is the cost model's: pinned tasks too)
        self.writes = UnitWrites(cores)
        self.flows = CopyFlows()  # what a data-parallel run's copies write and read, for ``check``
        self.pipe_flows: PipelineFlows | None = None  # a pipeline's, when ``follow`` found state shared across copies

    def views(self, task: Task, core: int, aiv: int, start: int = 0) -> dict[str, np.ndarray]:
        """The arrays a task's on-chip arguments stand for on ``core`` (its vector work on AIV ``aiv``); ``start``:
        the task's start (cycles), for ``check``'s error."""
        out: dict[str, np.ndarray] = {}
        pipe_flows, at = self.pipe_flows, None
        if pipe_flows is not None and task.process is not None:
            at = pipe_flows.clocks.at(task, start)  # (taken for every task: the clocks keep it until then)
        if not isinstance(task.resources, dict):
            return out
        for name, arg in task.resources.items():
            if not isinstance(arg, TensorView):
                continue
            base = arg.base
            if base.ring_of is not None:
                out[name] = self._slot(base, tuple(arg.index))
            elif base.on_chip:
                unit = unit_of(base, aiv)
                index = tuple(arg.index)
                if task.process is None:  # a data-parallel task: no two (core, unit) share a copy
                    direction = direction_of(task.kernel_ref, name)
                    tile = normalised(index, base.shape)
                    if unit != "AIC":
                        self.writes.note(task, base, index, tile, direction, core, unit)
                    self.flows.access(task, base, tile, direction, (core, unit), start)
                elif at is not None and pipe_flows is not None and id(base) in pipe_flows.shared:
                    pipe_flows.access(at, base, normalised(index, base.shape), direction_of(task.kernel_ref, name),
                                      (core, unit))
                copy = self._copy(base, core, unit)
                out[name] = copy[index] if index else copy
        return out

    def _copy(self, base: Tensor, core: int, unit: str) -> np.ndarray:
        key = (id(base), core, unit)
        hit = self.copies.get(key)
        if hit is None:
            start = base.data.copy() if base.data is not None else np.zeros(base.shape, dtype=base.dtype.np_dtype)
            hit = self.copies[key] = (base, start)
        return hit[1]

    def _slot(self, ring: Tensor, index: tuple[int, ...]) -> np.ndarray:
        key = (id(ring), index)
        tile = self.slots.get(key)
        if tile is None:
            tile = self.slots[key] = np.zeros(ring.shape[1:], dtype=ring.dtype.np_dtype)
        return tile

    def follow(self, pipe: Workload, actors: Iterable[Any], vector_units: dict[str, int] | None = None) -> None:
        """Before a pipeline runs: when an on-chip tensor is used by two or more of its processes placed apart
        (another core, or another AIV: ``vector_units``, process name -> AIV), follow what happens before what
        (``Clocks``: each actor's step generator is wrapped) so that ``check`` can refuse a read that misses values
        lost on other copies (``PipelineFlows``). ``actors``: the engine's (name, core, gen)."""
        actors = list(actors)
        units = vector_units or {}
        shared = shared_on_chip(pipe, {a.name: (a.core, units.get(a.name, 0)) for a in actors})
        if not shared:
            return
        self.pipe_flows = flows = PipelineFlows(Clocks(pipe), shared)
        for actor in actors:
            actor.gen = flows.clocks.wrap(actor.name, actor.gen)

    def check(self) -> None:
        """At the end of a run: refuse it if a task read a partial value of on-chip state (``CopyFlows``, and
        ``PipelineFlows`` for a pipeline)."""
        self.flows.check()
        if self.pipe_flows is not None:
            self.pipe_flows.check()

    def of(self, tensor: Tensor) -> dict[tuple[int, str], np.ndarray]:
        """Every (core, unit) copy of ``tensor`` this run made, in (core, unit) order (copies of the arrays)."""
        found = [(core, unit, arr) for (key, core, unit), (base, arr) in self.copies.items() if base is tensor]
        return {(core, unit): arr.copy() for core, unit, arr in sorted(found, key=lambda c: (c[0], c[1]))}


def dispatched_cores(workload: Workload) -> int:
    """How many cores a data-parallel workload's schedule deals its tasks to (as ``placement.assign_cores``)."""
    sched = workload.schedule
    return (sched.dispatch.num_cores if sched.dispatch is not None else 0) or sched.stream_count or 1


def has_on_chip_state(workload: Workload) -> bool:
    """Whether a run of ``workload`` keeps on-chip tensors or tile-channel slots (so values need ``OnChipValues``)."""
    return bool(on_chip_bases(workload))


__all__ = ["BUFFER_OF", "OnChipValues", "UnitWrites", "CopyFlows", "PipelineFlows", "Clocks", "shared_on_chip",
           "happens_before", "dispatched_cores", "on_chip_bases", "unit_of", "has_on_chip_state", "direction_of",
           "normalised"]
