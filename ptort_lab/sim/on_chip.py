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
"""
from __future__ import annotations

from bisect import bisect_right
from typing import Any

import numpy as np

from ..dsl.tree import NodeKind
from ..dsl.types import Direction, Location, Tensor, TensorView
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


class OnChipValues:
    """The values of one run's on-chip state: a copy of each on-chip tensor per (core, unit), and one array per
    buffer slot of each tile channel."""

    __slots__ = ("copies", "slots", "writes", "flows")

    def __init__(self, cores: int = 1) -> None:
        self.copies: dict[tuple[int, int, str], tuple[Tensor, np.ndarray]] = {}  # (id, core, unit) -> (tensor, copy)
        self.slots: dict[tuple[int, tuple[int, ...]], np.ndarray] = {}  # (id(ring), (slot,)) -> the slot's tile
        # the tiles each AIV of a data-parallel core wrote (a task's AIV is the cost model's: pinned tasks too)
        self.writes = UnitWrites(cores)
        self.flows = CopyFlows()  # what a data-parallel run's copies write and read, for ``check``

    def views(self, task: Task, core: int, aiv: int, start: int = 0) -> dict[str, np.ndarray]:
        """The arrays a task's on-chip arguments stand for on ``core`` (its vector work on AIV ``aiv``); ``start``:
        the task's start (cycles), for ``check``'s error."""
        out: dict[str, np.ndarray] = {}
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

    def check(self) -> None:
        """At the end of a run: refuse it if a task read a partial value of on-chip state (``CopyFlows``)."""
        self.flows.check()

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


__all__ = ["BUFFER_OF", "OnChipValues", "UnitWrites", "CopyFlows", "dispatched_cores", "on_chip_bases", "unit_of",
           "has_on_chip_state", "direction_of", "normalised"]
