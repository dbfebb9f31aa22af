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
            for a in closed[:k]:
                self.closed_total -= a.bytes
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
        # The usual case: every allocation still held after t started by t. From t on the occupancy then only
        # falls, one closed end at a time (in ``closed_ends`` order): the answer is the first end after which it
        # fits (the general sweep below gives the same), or None if the open ones alone leave no room.
        n = len(closed)
        started = True
        for i in range(k, n):
            if closed[i].start > t:
                started = False
                break
        if started:
            for a in self.open:
                if a.start > t:
                    started = False
                    break
        if started:
            level = held
            for i in range(k, n):
                level -= closed[i].bytes
                if level <= cap:
                    return self._take(closed_ends[i], nbytes)
            return None
        # only allocations still held after t matter; those starting before t count from t. The answer is the
        # first instant after the last moment the occupancy exceeds ``cap`` (None if it exceeds it for ever).
        # the change of the occupancy at each instant, summed there (sorting ints, not (time, change) pairs)
        change: dict[int, int] = {}
        get = change.get
        for i in range(k, len(closed)):
            a = closed[i]
            at = a.start if a.start > t else t
            change[at] = get(at, 0) + a.bytes
            at = closed_ends[i]
            change[at] = get(at, 0) - a.bytes
        for a in self.open:
            at = a.start if a.start > t else t
            change[at] = get(at, 0) + a.bytes
        times = sorted(change)
        start = t
        level = 0
        last = len(times) - 1
        for i, tm in enumerate(times):
            level += change[tm]  # the level after every change at tm
            if level > cap:
                if i == last:
                    return None  # the open allocations alone leave no room
                start = times[i + 1]
        return self._take(start, nbytes)

    def _take(self, start: int, nbytes: int) -> Allocation:
        alloc = Allocation(start, nbytes)
        self.open.append(alloc)
        self.open_total += nbytes
        return alloc


__all__ = ["Allocation", "BufferPool"]
