"""Global memory seen by every core: the shared HBM pool, the chip L2 and its pool (NPU_MODEL §4.1).

Bandwidth sharing. Transfers are priced when the engine reaches them, in global time order, and never re-timed
afterwards, so the fluid max-min model of §4.1 cannot be applied exactly. Instead each pool keeps the bandwidth
already reserved over time; a new transfer's data phase takes, in each stretch of time, ``min(cap, pool / (n + 1),
pool - reserved)`` where ``n`` transfers already hold bandwidth there. This is pto-isa's ``min(BW_core,
total / n_active)`` (arch_config.hpp HillBandwidthModel::BwEff) made conservative: the pool is never
oversubscribed, one transfer alone runs at its per-core cap, and many streaming split the pool. Reads and writes
share one HBM pool (HWConf quotes HBM as combined read + write).

L2 (§4.1, at tile granularity): an ordered set of GM regions (a tensor view = one tile) holding up to
``l2_bytes``. A read of a region in the set is a hit: L2 hit latency, then the per-core L2 port shared through the
L2 pool; a hit on a region whose first read is still in flight finishes no earlier than that read (the request
merges with it). Any other read is a miss: HBM read latency, then the path's per-core bandwidth shared through
the HBM pool. (So for GM reads the hit/miss latencies, 236/347 cycles from the CANN tiling header, take the place
of §3.1's L_fix.) Writes pay the path's L_fix and go through the HBM pool; their region stays in L2
(write-allocate), so a tile stored by one stage and loaded by the next is a hit (§4.2). Data staged through GM
between the AIC and an AIV (``region`` None) is read as a hit. ``read_hit_bytes`` and ``read_miss_bytes`` count
the GM read bytes served each way (msprof reports the same split as the L2 hit rate).

Replacement (``Machine.l2_replacement``; the hardware policy is unpublished): ``"fifo"``, the default, evicts in
insertion order, so a tile stays until ``l2_bytes`` of newer data has entered, however often it is hit; this is the
footprint view of Huawei's sizing rules (hiascend "L2 CacheMode": replacement starts once the data accessed
exceeds the L2; CANN's GEMM tiling ``is_fit_l2``: A + B + C <= l2_size). ``"lru"`` moves a tile to the back on
every hit, as pto-isa perf_sim ``cache_model.hpp`` and pypto do. They differ only when the data in use outgrows the
L2: on NPU_MODEL §5.1 V1 GEMM 7680^3 the B panels a core re-reads every 5 output tiles stay in an LRU (about
142 MB between uses, 70 % of the L2) but about a quarter of the re-reads miss under FIFO, which is what the
measured 11 % load slowdown needs; smaller sizes are identical (bench/RESULTS.md, "GEMM calibration").
"""
from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict
from typing import Hashable

from .machine import Machine, TransferCost


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class Pool:
    """A shared bandwidth pool: the bandwidth already reserved over time and how many transfers hold it.

    A new transfer's data phase takes, in each stretch of time, ``min(cap, pool / (n + 1), pool - reserved)``,
    where ``n`` transfers already hold bandwidth there: its fair share against the transfers priced before it,
    and never more than what is left (the pool is never oversubscribed; earlier transfers keep their rates).
    """

    __slots__ = ("bytes_per_cycle", "times", "used", "holders")

    def __init__(self, bytes_per_cycle: int) -> None:
        self.bytes_per_cycle = bytes_per_cycle
        self.times: list[int] = [0]  # breakpoints; used[i] / holders[i] hold from times[i] to times[i + 1]
        self.used: list[int] = [0]
        self.holders: list[int] = [0]

    def _split(self, t: int) -> int:
        """Index of the breakpoint at ``t`` (inserted if needed)."""
        i = bisect_right(self.times, t) - 1
        if i < 0:  # before everything remembered (a request older than the last forget): nothing reserved then
            self.times.insert(0, t)
            self.used.insert(0, 0)
            self.holders.insert(0, 0)
            return 0
        if self.times[i] != t:
            i += 1
            self.times.insert(i, t)
            self.used.insert(i, self.used[i - 1])
            self.holders.insert(i, self.holders[i - 1])
        return i

    def transfer(self, data_start: int, nbytes: int, cap: int) -> int:
        """Reserve bandwidth for ``nbytes`` from ``data_start`` on; returns when the last byte has moved."""
        pool = self.bytes_per_cycle
        remaining = nbytes
        i = self._split(data_start)
        t = data_start
        while True:
            nxt = self.times[i + 1] if i + 1 < len(self.times) else None
            rate = min(cap, pool // (self.holders[i] + 1), pool - self.used[i])
            if rate > 0:
                if nxt is None or rate * (nxt - t) >= remaining:
                    end = t + -(-remaining // rate)
                    j = self._split(end)
                    self.used[i] += rate  # the stretch [t, end) may be one segment split just now
                    self.holders[i] += 1
                    for k in range(i + 1, j):
                        self.used[k] += rate
                        self.holders[k] += 1
                    return end
                remaining -= rate * (nxt - t)
                self.used[i] += rate
                self.holders[i] += 1
            t = nxt  # type: ignore[assignment]
            i += 1

    def forget_before(self, t: int) -> None:
        """Drop the reservations before ``t`` (no later query precedes t)."""
        i = bisect_right(self.times, t) - 1
        if i > 0:
            del self.times[:i]
            del self.used[:i]
            del self.holders[:i]


class GlobalMemory:
    """HBM and L2 state of one run."""

    def __init__(self, machine: Machine) -> None:
        self.m = machine
        self.hbm = Pool(machine.hbm_bytes_per_cycle)
        self.l2 = Pool(machine.l2_bytes_per_cycle)
        self.lines: OrderedDict[Hashable, tuple[int, int]] = OrderedDict()  # region -> (bytes, ready), oldest first
        self._lru = machine.l2_replacement == "lru"
        self.l2_used_bytes = 0
        self.read_hit_bytes = 0  # GM read bytes served by L2 (including data staged through GM)
        self.read_miss_bytes = 0  # GM read bytes fetched from HBM

    def forget_before(self, t: int) -> None:
        self.hbm.forget_before(t)
        self.l2.forget_before(t)

    def _aligned(self, nbytes: int) -> int:
        a = self.m.transfer_align_bytes
        return _ceil_div(nbytes, a) * a

    def read(self, t: int, nbytes: int, path: TransferCost, region: Hashable | None) -> tuple[int, bool]:
        """(end, hit) of a GM read starting at ``t``; ``region`` None means data just staged through GM (a hit)."""
        aligned = self._aligned(nbytes)
        line = self.lines.get(region) if region is not None else None
        if region is None or line is not None:
            end = self.l2.transfer(t + self.m.l2_hit_latency_cycles, aligned, self.m.l2_port_bytes_per_cycle)
            if line is not None:
                if self._lru:
                    self.lines.move_to_end(region)
                if line[1] > end:
                    end = line[1]
            self.read_hit_bytes += nbytes
            return end, True
        end = self.hbm.transfer(t + self.m.hbm_read_latency_cycles, aligned, path.bytes_per_cycle)
        self._insert(region, aligned, end)
        self.read_miss_bytes += nbytes
        return end, False

    def write(self, t: int, nbytes: int, path: TransferCost, region: Hashable | None) -> int:
        """End of a GM write starting at ``t`` (through the HBM pool; the region stays in L2)."""
        aligned = self._aligned(nbytes)
        end = self.hbm.transfer(t + path.fixed_cycles, aligned, path.bytes_per_cycle)
        if region is not None:
            line = self.lines.get(region)
            if line is None:
                self._insert(region, aligned, end)
            elif self._lru:  # a write is a use: the region moves to the back
                self.l2_used_bytes -= self.lines.pop(region)[0]
                self._insert(region, aligned, end)
            else:  # FIFO: the region keeps its place in the insertion order
                self.lines[region] = (aligned, end)
                self.l2_used_bytes += aligned - line[0]
                self._evict_overflow()
        return end

    def _insert(self, region: Hashable, nbytes: int, ready: int) -> None:
        self.lines[region] = (nbytes, ready)
        self.l2_used_bytes += nbytes
        self._evict_overflow()

    def _evict_overflow(self) -> None:
        """Drop the oldest regions (the front of the order) until the rest fit in ``l2_bytes``."""
        while self.l2_used_bytes > self.m.l2_bytes and len(self.lines) > 1:
            _, (old, _) = self.lines.popitem(last=False)
            self.l2_used_bytes -= old


__all__ = ["GlobalMemory", "Pool"]
