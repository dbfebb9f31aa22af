"""Whether a pipeline's processes, each run until it blocks, touched shared memory in simulated-time order.

A pipeline priced with exact per-process times (PinnedCosts and other models without ``time_ordered``) runs each
process until it blocks: its times are exact, but its values are computed in that order, not in simulated time.
Processes ordered by channels and events touch their shared tensors in the same order either way; two processes
that touch one region with nothing ordering them may not (a writer at cycles 100..200 whose value a reader at 0..10
would see). ``AccessOrder.check`` sees each task as it runs and raises ``AccessOutOfOrder`` at the first access
that comes after, in the run, an access of another process that starts later in simulated time (one of the two a
write): the runner then undoes the run's writes and runs it again in time order (runner.simulate), and says so.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..dsl.types import Location, TensorView
from ..dsl.workload import Task
from .deps import HOST_CALLS, Region, RegionMap, _directions_of, task_accesses

EXACT_CHECKS = 64  # byte-level overlap checks per task before an overlap of regions is taken as one of bytes
ON_CHIP = "on-chip copy"  # the first item of an on-chip region's storage key: (ON_CHIP, unit, storage)


class AccessOutOfOrder(Exception):
    """A task touches memory after (in the run) another process's task that starts later (in simulated time)."""

    def __init__(self, task: Task, process: str, start: int, other: Task, other_process: str, other_start: int,
                 wrote: bool, other_wrote: bool, params: tuple[str, str] = ("?", "?"), certain: bool = True) -> None:
        super().__init__(f"{process} {task.kernel} at {start} after {other_process} {other.kernel} at {other_start}")
        self.task, self.process, self.start, self.wrote = task, process, start, wrote
        self.other, self.other_process, self.other_start, self.other_wrote = other, other_process, other_start, \
            other_wrote
        self.params = params
        self.certain = certain  # False: too many candidates to check their bytes (time order is the safe answer)

    def describe(self) -> str:
        """The two accesses, the later in the run first, for the warning."""
        def access(process: str, task: Task, start: int, wrote: bool, param: str) -> str:
            where = f" ({task.loc})" if task.loc is not None else ""
            return (f"process '{process}' {'writes' if wrote else 'reads'} it as '{param}' of {task.kernel}{where} "
                    f"at cycle {start:,}")
        return (f"{access(self.process, self.task, self.start, self.wrote, self.params[0])} and "
                f"{access(self.other_process, self.other, self.other_start, self.other_wrote, self.params[1])}")


class AccessOrder:
    """Per region, per process: the latest start of its reads and of its writes so far (and their tasks)."""

    def __init__(self) -> None:
        self._map = RegionMap()  # (its index of which regions overlap a region: one is a prefix of the other)
        self._directions: dict[int, tuple[Any, dict[str, tuple[bool, bool]]]] = {}
        # region -> process -> [latest read start, its task, latest write start, its task] (-1: none)
        self._latest: dict[Region, dict[str, list[Any]]] = {}

    def check(self, task: Task, process: str, start: int, unit: tuple[int, int] = (0, 0)) -> None:
        """Record ``task``'s accesses, starting at ``start`` in ``process`` on ``unit`` (core, AIV); AccessOutOfOrder
        when one comes out of simulated-time order with another process's access to an overlapping region (one of
        them a write)."""
        reads, writes = task_accesses(task, self._directions, self._map._keys)
        if task.kernel_ref is not None and isinstance(task.resources, dict):
            self._on_chip_accesses(task, unit, reads, writes)
        if not reads and not writes:
            return
        if HOST_CALLS in writes:  # (host kernels' call order, not memory: they are called in the run's order)
            reads = [r for r in reads if r != HOST_CALLS]
            writes = [w for w in writes if w != HOST_CALLS]
        latest = self._latest
        prefixes, prefixes_of, below = self._map._prefixes, self._map._prefixes_of, self._map.below
        exact_checks = EXACT_CHECKS  # (regions of a layout rows cannot express are whole arrays: many candidates)
        for regions, wrote in ((reads, False), (writes, True)):
            for region in regions:
                keys = prefixes.get(region) or prefixes_of(region)
                under = below.get(region)
                if under:
                    keys = (*keys, *((region[0], sub) for sub in under))
                for key in keys:
                    records = latest.get(key)
                    if records is None:
                        continue
                    for other, (read_at, reader, write_at, writer) in records.items():
                        if other == process:
                            continue
                        if write_at > start:
                            exact_checks = self._candidate(task, process, start, region, wrote, exact_checks,
                                                           writer, other, write_at, key, True)
                        if wrote and read_at > start:
                            exact_checks = self._candidate(task, process, start, region, wrote, exact_checks,
                                                           reader, other, read_at, key, False)
        for regions, slot in ((reads, 0), (writes, 2)):
            for region in regions:
                record = latest.setdefault(region, {}).setdefault(process, [-1, None, -1, None])
                if start >= record[slot]:
                    record[slot], record[slot + 1] = start, task

    def _candidate(self, task: Task, process: str, start: int, region: Region, wrote: bool, exact_checks: int,
                   them: Task, other: str, at: int, key: Region, they_wrote: bool) -> int:
        """An access of ``other`` to ``key`` that starts later (``at``) than ``task``'s to ``region``: raise
        AccessOutOfOrder when they share bytes (or when ``exact_checks`` is spent: then without checking); the
        checks left."""
        exact_checks -= 1
        pair = self._shared(task, region, them, key) if exact_checks >= 0 else ("?", "?")
        if pair is not None:
            raise AccessOutOfOrder(task, process, start, them, other, at, wrote, they_wrote, pair,
                                   certain=exact_checks >= 0)
        return exact_checks

    def _on_chip_accesses(self, task: Task, unit: tuple[int, int], reads: list[Region],
                          writes: list[Region]) -> None:
        """Add the on-chip state ``task`` reads and writes (deps leaves it out: each core has its copy, and a
        data-parallel core runs its tasks in order), as regions of that unit's copy: processes placed on one core
        share it (a UB tensor each AIV's own)."""
        directions = None
        for name, view in task.resources.items():
            if not isinstance(view, TensorView) or not view.base.on_chip:
                continue
            if directions is None:
                directions = _directions_of(task.kernel_ref, self._directions)
            rw = directions.get(name)
            if rw is None:
                continue
            storage, index = self._map._keys.region(view)
            region = ((ON_CHIP, unit if view.base.location is Location.UB else unit[0], storage), index)
            if rw[0]:
                reads.append(region)
            if rw[1]:
                writes.append(region)

    def _arguments(self, task: Task, region: Region) -> list[tuple[str, TensorView]]:
        """``task``'s arguments (name, view) whose regions overlap ``region``."""
        resources = task.resources if isinstance(task.resources, dict) else dict(enumerate(task.resources or ()))
        near = {(k[0][2], k[1]) if isinstance(k[0], tuple) and k[0][:1] == (ON_CHIP,) else k
                for k in self._map._overlapping(*region)}  # (an on-chip copy's region: its storage's)
        return [(str(name), view) for name, view in resources.items()
                if isinstance(view, TensorView) and self._map._keys.region(view) in near]

    def _shared(self, task: Task, region: Region, other: Task, other_region: Region) -> tuple[str, str] | None:
        """The names of an argument of ``task`` in ``region`` and one of ``other`` in ``other_region`` that really
        share bytes, None when none do: regions are rows of a storage, and column slices of one array share rows but
        may not share bytes (checked on the arrays, only when the regions overlap; when numpy cannot tell cheaply,
        they do)."""
        mine, theirs = self._arguments(task, region), self._arguments(other, other_region)
        if not mine or not theirs:
            return (mine[0][0] if mine else "?"), (theirs[0][0] if theirs else "?")
        return next(((a, b) for a, va in mine for b, vb in theirs if _bytes_overlap(va, vb)), None)


def _bytes_overlap(a: TensorView, b: TensorView) -> bool:
    """Whether the arrays of two tensor views share bytes (True when one has no data yet, or it is too hard to
    tell within a bounded search)."""
    arrays = []
    for view in (a, b):
        data = view.base.data
        if data is None:
            return True
        arrays.append(data[view.index] if view.index else data)
    if not np.may_share_memory(arrays[0], arrays[1]):  # (their address ranges do not even meet)
        return False
    try:
        return bool(np.shares_memory(arrays[0], arrays[1], max_work=10_000))  # type: ignore[arg-type]
    except Exception:  # noqa: BLE001 - numpy's TooHardError: counted as shared
        return True


__all__ = ["AccessOrder", "AccessOutOfOrder"]
