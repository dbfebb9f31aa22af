"""On-chip state of one run: the copies of on-chip tensors (``Tensor(location=Location.UB | L1 | L0C)``), one per
(core, unit) that uses them, and the buffer slots of tile channels (``Channel(tile=...)``).

Neither is a user output in global memory, so neither goes through the write-on-success journal (``numerics.Writes``):
each run starts every copy from the tensor's ``data`` (else zeros) and every slot from zeros, and never writes the
tensor's own array. A run keeps its copies (``Run.on_chip``) for the host to read afterwards
(``program.on_chip(tensor)``).

A data-parallel core deals its vector tasks to its AIVs in turn, so two tasks sharing a UB tensor may run on
different AIVs, each with its own copy: a task reading a tile that only another AIV of its core wrote is refused
(``UnitWrites``), as a pipeline process reading a copy only another unit writes is (``residency``).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..dsl.tree import NodeKind
from ..dsl.types import Direction, Location, Tensor, TensorView
from ..dsl.workload import Task, Workload
from ..errors import SimulationError
from .machine import Buffer

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
    one (zeros, or the tensor's data) instead of the value written."""

    __slots__ = ("_units",)

    def __init__(self) -> None:
        self._units: dict[tuple[int, int], dict[str, Written]] = {}  # (id(tensor), core) -> AIV -> tiles written

    def touch(self, task: Task, name: str, base: Tensor, index: Tile, core: int, unit: str) -> None:
        """``task`` uses tile ``index`` of ``base`` (its parameter ``name``) on (core, unit): refuse a read of a tile
        only another unit of the core wrote; note a write."""
        direction = direction_of(task.kernel_ref, name)
        key = (id(base), core)
        units = self._units.get(key)
        tile = normalised(index, base.shape)
        if units is not None and direction is not Direction.OUT:
            own = units.get(unit)
            if own is None or _writer(own, tile) is None:
                for other, written in units.items():
                    writer = _writer(written, tile) if other != unit else None
                    if writer is not None:
                        raise _read_elsewhere(task, base, index, core, unit, other, writer)
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
                    writer: str) -> SimulationError:
    label = f"'{base.name}'" if base.name else f"{base.dtype.value}{list(base.shape)}"
    tile = f"tile [{', '.join(map(str, index))}] of " if index else ""
    start = "the tensor's data" if base.data is not None else "zeros"
    return SimulationError(
        f"task {task.id} ({task.kernel}) reads {tile}on-chip tensor {label} on core {core} {unit}, but only {other} "
        f"of that core wrote it ({writer}): each AIV keeps its own copy of a UB tensor, so the task would read "
        f"{unit}'s untouched copy ({start}).",
        hint="A data-parallel core deals its vector tasks to its AIVs in turn. Keep the tasks that share the tensor "
             "on one AIV with .vector_unit(lambda t: ...) on the workload (the same AIV for a tile's writer and "
             "readers, e.g. .vector_unit(lambda t: t.params[0] % 2), or .vector_unit(0) for all), or keep the value "
             "in global memory (a Tensor without location=).",
        where=task.loc, locate=False)


class OnChipValues:
    """The values of one run's on-chip state: a copy of each on-chip tensor per (core, unit), and one array per
    buffer slot of each tile channel."""

    __slots__ = ("copies", "slots", "writes")

    def __init__(self) -> None:
        self.copies: dict[tuple[int, int, str], tuple[Tensor, np.ndarray]] = {}  # (id, core, unit) -> (tensor, copy)
        self.slots: dict[tuple[int, tuple[int, ...]], np.ndarray] = {}  # (id(ring), (slot,)) -> the slot's tile
        # the tiles each AIV of a data-parallel core wrote (a task's AIV is the cost model's: pinned tasks too)
        self.writes = UnitWrites()

    def views(self, task: Task, core: int, aiv: int) -> dict[str, np.ndarray]:
        """The arrays a task's on-chip arguments stand for on ``core`` (its vector work on AIV ``aiv``)."""
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
                if task.process is None and unit != "AIC":  # a data-parallel task: its core's AIVs share no copy
                    self.writes.touch(task, name, base, index, core, unit)
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

    def of(self, tensor: Tensor) -> dict[tuple[int, str], np.ndarray]:
        """Every (core, unit) copy of ``tensor`` this run made, in (core, unit) order (copies of the arrays)."""
        found = [(core, unit, arr) for (key, core, unit), (base, arr) in self.copies.items() if base is tensor]
        return {(core, unit): arr.copy() for core, unit, arr in sorted(found, key=lambda c: (c[0], c[1]))}


def has_on_chip_state(workload: Workload) -> bool:
    """Whether a run of ``workload`` keeps on-chip tensors or tile-channel slots (so values need ``OnChipValues``)."""
    return bool(on_chip_bases(workload))


__all__ = ["BUFFER_OF", "OnChipValues", "UnitWrites", "on_chip_bases", "unit_of", "has_on_chip_state", "direction_of",
           "normalised"]
