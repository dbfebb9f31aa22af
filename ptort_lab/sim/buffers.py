"""On-chip buffer occupancy over time (UB, L1, L0A/B/C): when can a tile of n bytes be allocated?

Each allocation holds ``bytes`` from ``start`` until ``end``; ``end`` stays open (None) until the instruction that
last uses the tile has been scheduled. A new allocation needs room from its start *for ever after* (its own end
is not known yet), so it starts at the earliest time from which the occupancy never again exceeds
``capacity - bytes``. That one rule is what limits how far the next task's loads run ahead: with room for two
tasks' tiles they overlap the current task's compute (double buffering), with room for one they wait.
"""
from __future__ import annotations

from bisect import bisect_right
from typing import Optional


class Allocation:
    """``bytes`` held from ``start`` to ``end`` (None while the last user is not scheduled yet)."""

    __slots__ = ("start", "end", "bytes")

    def __init__(self, start: int, nbytes: int) -> None:
        self.start = start
        self.end: Optional[int] = None
        self.bytes = nbytes


class BufferPool:
    """One on-chip buffer of ``capacity_bytes`` (e.g. the UB of AIV0 on core 3)."""

    __slots__ = ("name", "capacity_bytes", "open", "closed", "closed_ends")

    def __init__(self, name: str, capacity_bytes: int) -> None:
        self.name = name
        self.capacity_bytes = capacity_bytes
        self.open: list[Allocation] = []
        self.closed: list[Allocation] = []  # sorted by end
        self.closed_ends: list[int] = []

    def open_bytes(self) -> int:
        """Bytes held by allocations whose end is not known yet (the tiles of the task being scheduled)."""
        return sum(a.bytes for a in self.open)

    def free(self, alloc: Allocation, end: int) -> None:
        """The last user of ``alloc`` ends at ``end``."""
        self.open.remove(alloc)
        alloc.end = end
        i = bisect_right(self.closed_ends, end)
        self.closed_ends.insert(i, end)
        self.closed.insert(i, alloc)

    def allocate(self, t: int, nbytes: int, floor: int) -> Allocation | None:
        """Allocate ``nbytes`` at the earliest time >= ``t`` with room from then on; None if it never fits.

        ``floor`` is a time no later request will precede (the current task's start): allocations that ended by
        then are forgotten.
        """
        k = bisect_right(self.closed_ends, floor)
        if k:
            del self.closed_ends[:k]
            del self.closed[:k]
        cap = self.capacity_bytes - nbytes
        if cap < 0:
            return None
        # only allocations still held after t matter; those starting before t count from t
        deltas: dict[int, int] = {}
        k = bisect_right(self.closed_ends, t)
        for end, a in zip(self.closed_ends[k:], self.closed[k:]):  # (closed_ends[i] is closed[i].end, an int)
            s = a.start if a.start > t else t
            deltas[s] = deltas.get(s, 0) + a.bytes
            deltas[end] = deltas.get(end, 0) - a.bytes
        for a in self.open:
            s = a.start if a.start > t else t
            deltas[s] = deltas.get(s, 0) + a.bytes
        times = sorted(deltas)
        levels = []
        level = 0
        for tm in times:
            level += deltas[tm]
            levels.append(level)
        # suffix maxima: the highest occupancy from step i on; levels[-1] is what the open allocations hold
        for i in range(len(levels) - 2, -1, -1):
            if levels[i + 1] > levels[i]:
                levels[i] = levels[i + 1]
        if levels and levels[-1] > cap:
            return None  # the open allocations alone leave no room
        start = t
        for i, _ in enumerate(times):
            if levels[i] <= cap:
                break
            if i + 1 < len(times):
                start = times[i + 1]
        alloc = Allocation(start, nbytes)
        self.open.append(alloc)
        return alloc


__all__ = ["Allocation", "BufferPool"]
