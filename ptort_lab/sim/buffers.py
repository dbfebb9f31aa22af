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

    __slots__ = ("name", "capacity_bytes", "open", "closed", "closed_ends", "open_total", "closed_total")

    def __init__(self, name: str, capacity_bytes: int) -> None:
        self.name = name
        self.capacity_bytes = capacity_bytes
        self.open: list[Allocation] = []
        self.closed: list[Allocation] = []  # sorted by end
        self.closed_ends: list[int] = []
        self.open_total = 0  # bytes in ``open`` and in ``closed`` (kept as they change: the fast path's bound)
        self.closed_total = 0

    def open_bytes(self) -> int:
        """Bytes held by allocations whose end is not known yet (the tiles of the task being scheduled)."""
        return sum(a.bytes for a in self.open)

    def free(self, alloc: Allocation, end: int) -> None:
        """The last user of ``alloc`` ends at ``end``."""
        self.open.remove(alloc)
        self.open_total -= alloc.bytes
        self.closed_total += alloc.bytes
        alloc.end = end
        closed_ends = self.closed_ends
        if not closed_ends or end >= closed_ends[-1]:  # (the usual case: ends come in about in order)
            closed_ends.append(end)
            self.closed.append(alloc)
            return
        i = bisect_right(closed_ends, end)
        closed_ends.insert(i, end)
        self.closed.insert(i, alloc)

    def allocate(self, t: int, nbytes: int, floor: int) -> Allocation | None:
        """Allocate ``nbytes`` at the earliest time >= ``t`` with room from then on; None if it never fits.

        ``floor`` is a time no later request will precede (the current task's start): allocations that ended by
        then are forgotten.
        """
        closed_ends = self.closed_ends
        closed = self.closed
        if closed_ends and closed_ends[0] <= floor:
            k = bisect_right(closed_ends, floor)
            for i in range(k):
                self.closed_total -= closed[i].bytes
            del closed_ends[:k]
            del closed[:k]
        cap = self.capacity_bytes - nbytes
        if cap < 0:
            return None
        # Fast path: if everything still held after t fits beside the new tile all at once, no instant after t can
        # be fuller, so the general search below would start it at t too. (Held bytes: the open ones, and the
        # closed ones ending after t, found from the back, where the latest ends are.)
        held = self.open_total
        if held + self.closed_total > cap:
            k = len(closed_ends)
            while k and closed_ends[k - 1] > t:
                k -= 1
                held += closed[k].bytes
            if held > cap:
                return self._search(t, nbytes, cap, k, held)
        alloc = Allocation(t, nbytes)
        self.open.append(alloc)
        self.open_total += nbytes
        return alloc

    def _search(self, t: int, nbytes: int, cap: int, k: int, held: int) -> Allocation | None:
        """``allocate``'s general case: the earliest start from which the occupancy never exceeds ``cap``; the
        closed allocations from ``k`` on end after ``t``, and ``held`` bytes (theirs and the open ones') are held
        after it."""
        closed_ends, closed = self.closed_ends, self.closed
        n = len(closed)
        # Only allocations still held after t matter; those starting by t count from t. The occupancy changes at
        # the closed ends (already in order) and at the starts after t (few: a task's tiles on its other pipes,
        # sorted here); the answer is the first instant after the last one at which it exceeds ``cap`` (None if it
        # exceeds it for ever). Once every start is past, the occupancy only falls: the first instant it fits
        # from then on is the answer.
        later: list[tuple[int, int]] = []  # (start, bytes) of the allocations held after t that start after it
        level = held  # the occupancy at t, once ``later``'s bytes are taken off
        for i in range(k, n):
            a = closed[i]
            if a.start > t:
                later.append((a.start, a.bytes))
                level -= a.bytes
        for a in self.open:
            if a.start > t:
                later.append((a.start, a.bytes))
                level -= a.bytes
        later.sort()
        m = len(later)
        start = t
        over = level > cap  # the occupancy after the changes at the last instant passed exceeds cap
        i, j = k, 0
        while not over and j < m or over and (i < n or j < m):
            if j < m and (i >= n or later[j][0] <= closed_ends[i]):
                tm = later[j][0]
            else:
                tm = closed_ends[i]
            if over:
                start = tm
            while j < m and later[j][0] == tm:
                level += later[j][1]
                j += 1
            while i < n and closed_ends[i] == tm:
                level -= closed[i].bytes
                i += 1
            over = level > cap
        return None if over else self._take(start, nbytes)

    def _take(self, start: int, nbytes: int) -> Allocation:
        alloc = Allocation(start, nbytes)
        self.open.append(alloc)
        self.open_total += nbytes
        return alloc


__all__ = ["Allocation", "BufferPool"]
