"""Data dependencies between data-parallel tasks, inferred from the tensor regions they read and write."""
from __future__ import annotations

from typing import Any

from ..dsl.types import Direction, TensorView
from ..dsl.workload import Task


def task_accesses(task: Task, _directions: dict[int, tuple[Any, dict[str, tuple[bool, bool]]]] | None = None
                  ) -> tuple[list[tuple[int, tuple[int, ...]]], list[tuple[int, tuple[int, ...]]]]:
    """(reads, writes) as (tensor id, leading index) regions; named tasks without a kernel touch nothing.
    ``_directions`` caches each kernel's (reads, writes) per parameter across the tasks of one run."""
    reads: list[tuple[int, tuple[int, ...]]] = []
    writes: list[tuple[int, tuple[int, ...]]] = []
    kernel = task.kernel_ref
    if kernel is None or not isinstance(task.resources, dict):
        return reads, writes
    directions = _directions_of(kernel, _directions)
    for name, arg in task.resources.items():
        if not isinstance(arg, TensorView):
            continue
        rw = directions.get(name)
        if rw is None or arg.base.on_chip:
            continue  # (an on-chip tensor: each core has its own copy, and a core runs its tasks in order)
        region = (id(arg.base), tuple(arg.index))
        if rw[0]:
            reads.append(region)
        if rw[1]:
            writes.append(region)
    return reads, writes


def _directions_of(kernel: Any, cache: dict[int, tuple[Any, dict[str, tuple[bool, bool]]]] | None
                   ) -> dict[str, tuple[bool, bool]]:
    """(read, written) per parameter of ``kernel``'s signature (cached per kernel object in ``cache``)."""
    hit = cache.get(id(kernel)) if cache is not None else None
    if hit is not None and hit[0] is kernel:
        return hit[1]
    directions = {name: (spec[0] in (Direction.IN, Direction.INOUT), spec[0] in (Direction.OUT, Direction.INOUT))
                  for name, spec in kernel.signature.items()}
    if cache is not None:
        cache[id(kernel)] = (kernel, directions)
    return directions


class RegionMap:
    """Last writer and readers-since per region; regions overlap when one index is a prefix of the other."""

    def __init__(self) -> None:
        self.writer: dict[tuple[int, tuple[int, ...]], int] = {}
        self.readers: dict[tuple[int, tuple[int, ...]], list[int]] = {}
        self.below: dict[tuple[int, tuple[int, ...]], set[tuple[int, ...]]] = {}
        # region -> the regions it contains or is contained in by prefix: (base, index[:k]) for every k
        self._prefixes: dict[tuple[int, tuple[int, ...]], tuple[tuple[int, tuple[int, ...]], ...]] = {}
        self._directions: dict[int, tuple[Any, dict[str, tuple[bool, bool]]]] = {}

    def _overlapping(self, base: int, index: tuple[int, ...]) -> list[tuple[int, tuple[int, ...]]]:
        keys = list(self._prefixes_of((base, index)))
        keys += [(base, sub) for sub in self.below.get((base, index), ())]
        return keys

    def _prefixes_of(self, region: tuple[int, tuple[int, ...]]) -> tuple[tuple[int, tuple[int, ...]], ...]:
        """``region``'s prefixes, itself last; registers it below each shorter one the first time (a region with no
        writer or readers yet adds no dependency, so registering it before its task's own accesses are recorded
        changes nothing)."""
        keys = self._prefixes.get(region)
        if keys is None:
            base, index = region
            keys = self._prefixes[region] = tuple((base, index[:k]) for k in range(len(index) + 1))
            for k in range(len(index)):
                self.below.setdefault(keys[k], set()).add(index)
        return keys

    def dependencies(self, task: Task) -> list[int]:
        """Ids of earlier tasks this task must wait for (RAW, WAR, WAW), then record its own accesses."""
        reads, writes = task_accesses(task, self._directions)
        deps: set[int] = set()
        writer, readers, below = self.writer, self.readers, self.below
        for region in reads:
            for key in self._overlapping(*region):
                w = writer.get(key)
                if w is not None:
                    deps.add(w)
        for region in writes:
            for key in self._overlapping(*region):
                w = writer.get(key)
                if w is not None:
                    deps.add(w)
                r = readers.get(key)
                if r:
                    deps.update(r)
        for region in reads:
            readers.setdefault(region, []).append(task.id)
        for region in writes:
            base, index = region
            # this write covers its sub-regions: later accesses to them depend on this task alone
            for sub in below.get(region, ()):
                readers.pop((base, sub), None)
                writer.pop((base, sub), None)
            readers.pop(region, None)
            writer[region] = task.id
        deps.discard(task.id)
        return sorted(deps)


def infer_dependencies(tasks: list[Task]) -> list[list[int]]:
    """For each task (in program order), the ids of the earlier tasks it depends on."""
    rm = RegionMap()
    return [rm.dependencies(t) for t in tasks]
