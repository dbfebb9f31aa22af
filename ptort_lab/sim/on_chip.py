"""On-chip state of one run: the copies of on-chip tensors (``Tensor(location=Location.UB | L1 | L0C)``), one per
(core, unit) that uses them, and the buffer slots of tile channels (``Channel(tile=...)``).

Neither is a user output in global memory, so neither goes through the write-on-success journal (``numerics.Writes``):
each run starts every copy from the tensor's ``data`` (else zeros) and every slot from zeros, and never writes the
tensor's own array. A run keeps its copies (``Run.on_chip``) for the host to read afterwards
(``program.on_chip(tensor)``).
"""
from __future__ import annotations

import numpy as np

from ..dsl.tree import NodeKind
from ..dsl.types import Location, Tensor, TensorView
from ..dsl.workload import Task, Workload
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


class OnChipValues:
    """The values of one run's on-chip state: a copy of each on-chip tensor per (core, unit), and one array per
    buffer slot of each tile channel."""

    __slots__ = ("copies", "slots")

    def __init__(self) -> None:
        self.copies: dict[tuple[int, int, str], tuple[Tensor, np.ndarray]] = {}  # (id, core, unit) -> (tensor, copy)
        self.slots: dict[tuple[int, tuple[int, ...]], np.ndarray] = {}  # (id(ring), (slot,)) -> the slot's tile

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
                copy = self._copy(base, core, unit_of(base, aiv))
                out[name] = copy[tuple(arg.index)] if arg.index else copy
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


__all__ = ["BUFFER_OF", "OnChipValues", "on_chip_bases", "unit_of", "has_on_chip_state"]
