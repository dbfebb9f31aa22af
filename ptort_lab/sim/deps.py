"""Data dependencies between data-parallel tasks, inferred from the tensor regions they read and write."""
from __future__ import annotations

from ..dsl.types import Direction, TensorView
from ..dsl.workload import Task


def task_accesses(task: Task) -> tuple[list[tuple[int, tuple[int, ...]]], list[tuple[int, tuple[int, ...]]]]:
    """(reads, writes) as (tensor id, leading index) regions; named tasks without a kernel touch nothing."""
    reads: list[tuple[int, tuple[int, ...]]] = []
    writes: list[tuple[int, tuple[int, ...]]] = []
    kernel = task.kernel_ref
    if kernel is None or not isinstance(task.resources, dict):
        return reads, writes
    for name, arg in task.resources.items():
        if not isinstance(arg, TensorView) or name not in kernel.signature or arg.base.on_chip:
            continue  # (an on-chip tensor: each core has its own copy, and a core runs its tasks in order)
        region = (id(arg.base), tuple(arg.index))
        direction = kernel.signature[name][0]
        if direction in (Direction.IN, Direction.INOUT):
            reads.append(region)
        if direction in (Direction.OUT, Direction.INOUT):
            writes.append(region)
    return reads, writes


class RegionMap:
    """Last writer and readers-since per region; regions overlap when one index is a prefix of the other."""

    def __init__(self) -> None:
        self.writer: dict[tuple[int, tuple[int, ...]], int] = {}
        self.readers: dict[tuple[int, tuple[int, ...]], list[int]] = {}
        self.below: dict[tuple[int, tuple[int, ...]], set[tuple[int, ...]]] = {}

    def _overlapping(self, base: int, index: tuple[int, ...]) -> list[tuple[int, tuple[int, ...]]]:
        keys = [(base, index[:k]) for k in range(len(index) + 1)]
        keys += [(base, sub) for sub in self.below.get((base, index), ())]
        return keys

    def _register(self, base: int, index: tuple[int, ...]) -> None:
        for k in range(len(index)):
            self.below.setdefault((base, index[:k]), set()).add(index)

    def dependencies(self, task: Task) -> list[int]:
        """Ids of earlier tasks this task must wait for (RAW, WAR, WAW), then record its own accesses."""
        reads, writes = task_accesses(task)
        deps: set[int] = set()
        for base, index in reads:
            for key in self._overlapping(base, index):
                w = self.writer.get(key)
                if w is not None:
                    deps.add(w)
        for base, index in writes:
            for key in self._overlapping(base, index):
                w = self.writer.get(key)
                if w is not None:
                    deps.add(w)
                deps.update(self.readers.get(key, ()))
        for base, index in reads:
            self._register(base, index)
            self.readers.setdefault((base, index), []).append(task.id)
        for base, index in writes:
            self._register(base, index)
            # this write covers its sub-regions: later accesses to them depend on this task alone
            for sub in self.below.get((base, index), ()):
                self.readers.pop((base, sub), None)
                self.writer.pop((base, sub), None)
            self.readers.pop((base, index), None)
            self.writer[(base, index)] = task.id
        deps.discard(task.id)
        return sorted(deps)


def infer_dependencies(tasks: list[Task]) -> list[list[int]]:
    """For each task (in program order), the ids of the earlier tasks it depends on."""
    rm = RegionMap()
    return [rm.dependencies(t) for t in tasks]

