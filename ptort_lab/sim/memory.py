"""Global memory seen by every core: the HBM pool, the write-back L2 and its read and write pools (NPU_MODEL §4.1).

Pools. Three chip-wide bandwidth pools: the L2 read pool (hits; CANN ``L2_RO`` 2550 B/cycle), the L2 write pool
(every GM write lands in L2; CANN ini ``l2_write_rate`` 86 x 24 = 2064) and the HBM pool (read misses and the
write-back of dirty lines share it; CANN ``DDR_RW`` 850). Transfers are priced when the engine reaches them, in
global time order, and never re-timed afterwards, so the fluid max-min model of §4.1 cannot be applied exactly.
Instead each pool keeps the bandwidth already reserved over time; a new transfer's data phase takes, in each
stretch of time, ``min(cap, pool / (n + 1), pool - reserved)`` where ``n`` transfers already hold bandwidth there.
This is pto-isa's ``min(BW_core, total / n_active)`` (arch_config.hpp HillBandwidthModel::BwEff) made conservative:
the pool is never oversubscribed, one transfer alone runs at its cap, and many streaming split the pool.

Reads overlap their latency. A read of B bytes issued at t streams its requests at ``rate = min(cap, outstanding
x request bytes / latency, pool share)`` (Little's law, as CANN's GEMM estimator: 64 x 512 B / 236 cycles = 138
B/cycle for a hit, / 347 = 94 for a miss), so its data arrive from ``t + latency`` to ``data_end``. The load pipe is
held until the last request is out plus the path's issue cost (``TransferCost.fixed_cycles``: CANN's GetDMABiuBw
charges latency / 2 per DMA), i.e. until ``data_end - latency + issue``; the data are ready at ``data_end``. So N
independent reads back to back on one pipe pay one latency (plus N issue costs), N dependent reads pay N latencies;
the outstanding limit holds through the rate cap. A hit uses the L2 hit latency (236) and the per-core L2 read port
(128) through the L2 read pool; a hit on a region whose first read is still in flight is ready no earlier than that
read (the request merges with it). A miss uses the HBM read latency (347) and the path's per-core bandwidth through
the HBM pool, and allocates its region in L2.

Writes are posted into L2 (write-back, write-allocate): a write streams at ``min(path cap, L2 write port,
outstanding x request bytes / L2 write latency)`` through the L2 write pool, holds its pipe for that plus the issue
cost, and is visible to readers ``l2_write_latency_cycles`` after its last byte. Its region becomes a dirty line;
nothing reaches HBM until the line is evicted. Data staged through GM between the AIC and an AIV (``region`` None:
a small workspace reused at once) costs its L2 write and an L2-hit read, and is never evicted.

Eviction (``Machine.l2_replacement``; the hardware policy is unpublished), at tile granularity: an ordered set of
GM regions (a tensor view = one tile) holding up to ``l2_bytes``. ``"fifo"``, the default, evicts in insertion
order, so a tile stays until ``l2_bytes`` of newer data has entered, however often it is hit; this is the
footprint view of Huawei's sizing rules (hiascend "L2 CacheMode": replacement starts once the data accessed exceeds
the L2; CANN's GEMM tiling ``is_fit_l2``: A + B + C <= l2_size). ``"lru"`` moves a tile to the back on every use,
as pto-isa perf_sim ``cache_model.hpp`` and pypto do. An evicted dirty tile is written back to HBM through the HBM
pool from the time of the access that evicts it, and that access's data cannot land before the write-back is done
(hiascend "L2 CacheMode": "旧数据需要先写回GM(此过程中会占用GM带宽),旧数据写回后,新的数据才能进入L2 Cache").

Kernel end: dirty tiles still in L2 are counted (``dirty_bytes``); ``Machine.l2_flush_at_end`` also writes them
back through the HBM pool after the last instruction (``flush``), which the run then waits for. No public source
says a kernel waits for that, so it is off by default.

Ablation (the model before issue 13, for before/after numbers): ``Machine.gm_read_overlap=False`` holds the load
pipe from issue until the data are ready (L2 hit: latency, then the per-core L2 port; miss: latency, then the path's
cap through the HBM pool; no outstanding-rate caps, no issue cost); ``Machine.l2_write_back=False`` writes through:
the path's fixed cost, then the HBM pool, the pipe held until HBM has the bytes (the L2 keeps a clean copy).

Counters (msprof's Memory.csv / L2Cache.csv split reads and writes the same way): ``read_hit_bytes``,
``read_miss_bytes`` (= HBM read traffic), ``write_bytes`` (GM writes), ``writeback_bytes`` (evicted dirty bytes
written to HBM), ``flushed_bytes`` (written back at the end), ``writethrough_bytes`` (written straight to HBM when
write-back is off), ``evictions`` and ``dirty_evictions``; ``hbm_bytes`` sums HBM traffic.
"""
from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import OrderedDict
from typing import Hashable, NamedTuple

from .machine import Machine, TransferCost

_new = tuple.__new__  # builds a Line without its Python-level __new__ (one per GM transfer)


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
        times = self.times
        last = len(times) - 1
        if data_start >= times[last] and nbytes > 0:
            # Fast path: past every breakpoint, one stretch to the end (what the loop below does for it, inline)
            used, holders = self.used, self.holders
            u, h = used[last], holders[last]
            rate = min(cap, pool // (h + 1), pool - u)
            if rate > 0:
                if times[last] != data_start:
                    times.append(data_start)
                    used.append(u)
                    holders.append(h)
                    last += 1
                end = data_start + -(-nbytes // rate)
                times.append(end)
                used.append(u)
                holders.append(h)
                used[last] = u + rate
                holders[last] = h + 1
                return end
        remaining = nbytes
        i = self._split(data_start)
        if nbytes > 0 and cap <= pool:
            # Fast path: if the transfer gets its whole cap in every stretch up to ``data_start + nbytes / cap``,
            # the loop below would end there and add ``cap`` and one holder to each of those stretches.
            end = data_start + -(-nbytes // cap)
            j = bisect_left(times, end, i)
            if pool // (max(self.holders[i:j]) + 1) >= cap and pool - max(self.used[i:j]) >= cap:
                j = self._split(end)
                used, holders = self.used, self.holders
                for k in range(i, j):  # (in place, without new lists: once per GM transfer)
                    used[k] += cap
                    holders[k] += 1
                return end
        used, holders = self.used, self.holders
        n = len(times)
        t = data_start
        while True:
            u = used[i]
            rate = pool // (holders[i] + 1)
            if cap < rate:
                rate = cap
            if pool - u < rate:
                rate = pool - u
            if rate > 0:
                if i + 1 == n or rate * (times[i + 1] - t) >= remaining:
                    end = t + -(-remaining // rate)
                    j = self._split(end)
                    used[i] += rate  # the stretch [t, end) may be one segment split just now
                    holders[i] += 1
                    for k in range(i + 1, j):
                        used[k] += rate
                        holders[k] += 1
                    return end
                remaining -= rate * (times[i + 1] - t)
                used[i] = u + rate
                holders[i] += 1
            t = times[i + 1]  # (past the last breakpoint the rate is never 0: nothing is reserved there)
            i += 1

    def forget_before(self, t: int) -> None:
        """Drop the reservations before ``t`` (no later query precedes t)."""
        i = bisect_right(self.times, t) - 1
        if i > 0:
            del self.times[:i]
            del self.used[:i]
            del self.holders[:i]


class GmRead(NamedTuple):
    """A priced GM read: when its pipe may issue again, when its data are in place, whether L2 served it."""

    pipe_end: int
    ready: int
    hit: bool


class GmWrite(NamedTuple):
    """A priced GM write: when its pipe may issue again, and when a reader sees it in L2."""

    pipe_end: int
    visible: int


class Line(NamedTuple):
    """One region (tile) in L2: its bytes, when its data are there, and whether HBM still lacks them."""

    nbytes: int
    ready: int
    dirty: bool


class GlobalMemory:
    """HBM and L2 state of one run."""

    def __init__(self, machine: Machine) -> None:
        m = self.m = machine
        self.hbm = Pool(m.hbm_bytes_per_cycle)
        self.l2 = Pool(m.l2_bytes_per_cycle)  # the L2 read pool
        self.l2_write = Pool(m.l2_write_bytes_per_cycle)
        self.lines: OrderedDict[Hashable, Line] = OrderedDict()  # region -> its line, oldest first
        self._lru = m.l2_replacement == "lru"
        self.l2_used_bytes = 0
        read_window = m.read_outstanding_requests * m.read_request_bytes
        # per-transfer rate caps by Little's law (outstanding bytes / latency), never below 1 B/cycle
        hit, miss = read_window / max(1, m.l2_hit_latency_cycles), read_window / max(1, m.hbm_read_latency_cycles)
        nz = m.nd2nz_efficiency_pct / 100
        # (hit cap, miss cap) of an ND -> ND load (to UB) and of an ND -> NZ load (to L1)
        self.read_caps = {False: (min(m.l2_port_bytes_per_cycle, max(1, int(hit))), max(1, int(miss))),
                          True: (min(m.l2_port_bytes_per_cycle, max(1, int(hit * nz))), max(1, int(miss * nz)))}
        write_window = m.write_outstanding_requests * m.write_request_bytes
        self.write_cap = min(m.l2_write_port_bytes_per_cycle,
                             max(1, write_window // max(1, m.l2_write_latency_cycles)))
        self.read_hit_bytes = 0  # GM read bytes served by L2 (including data staged through GM)
        self.read_miss_bytes = 0  # GM read bytes fetched from HBM
        self.write_bytes = 0  # GM write bytes (all land in L2)
        self.writeback_bytes = 0  # dirty bytes evicted to HBM during the run
        self.flushed_bytes = 0  # dirty bytes written back at the end (Machine.l2_flush_at_end)
        self.writethrough_bytes = 0  # GM write bytes sent straight to HBM (Machine.l2_write_back=False)
        self._overlap = m.gm_read_overlap
        self.evictions = 0
        self.dirty_evictions = 0

    def forget_before(self, t: int) -> None:
        self.hbm.forget_before(t)
        self.l2.forget_before(t)
        self.l2_write.forget_before(t)

    def read(self, t: int, nbytes: int, path: TransferCost, region: Hashable | None, nz: bool = False) -> GmRead:
        """A GM read whose first request leaves at ``t``; ``region`` None means data just staged through GM (a
        hit); ``nz`` a load into L1 (ND -> NZ: its outstanding rate is ``nd2nz_efficiency_pct`` of the plain one)."""
        return GmRead(*self.read_times(t, nbytes, path, region, nz))

    def read_times(self, t: int, nbytes: int, path: TransferCost, region: Hashable | None,
                   nz: bool = False) -> tuple[int, int, bool]:
        """``read`` as a plain (pipe_end, ready, hit) tuple (the issue loop's form: one per GM load)."""
        m = self.m
        a = m.transfer_align_bytes
        aligned = -(-nbytes // a) * a
        hit_cap, miss_cap = self.read_caps[nz] if self._overlap else (m.l2_port_bytes_per_cycle, path.bytes_per_cycle)
        line = self.lines.get(region) if region is not None else None
        if region is None or line is not None:
            latency = m.l2_hit_latency_cycles
            data_end = self.l2.transfer(t + latency, aligned, hit_cap)
            ready = data_end
            if line is not None:
                if self._lru:
                    self.lines.move_to_end(region)
                if line.ready > ready:
                    ready = line.ready
            self.read_hit_bytes += nbytes
            # the pipe goes when the last request is out plus the issue cost (overlapped), or when the data are
            # ready (gm_read_overlap=False: it waits out the latency, as before issue 13)
            return (data_end - latency + path.fixed_cycles if self._overlap else ready), ready, True
        latency = m.hbm_read_latency_cycles
        # the victims leave first (their write-back takes HBM from t on), and the new data cannot land before
        written_back = self._insert(region, aligned, t)
        data_end = self.hbm.transfer(t + latency, aligned, min(path.bytes_per_cycle, miss_cap))
        if written_back > data_end:
            data_end = written_back
        self.lines[region] = _new(Line, (aligned, data_end, False))
        self.read_miss_bytes += nbytes
        return (data_end - latency + path.fixed_cycles if self._overlap else data_end), data_end, False

    def write(self, t: int, nbytes: int, path: TransferCost, region: Hashable | None) -> GmWrite:
        """A GM write whose first byte leaves at ``t``, posted into L2 (its region becomes a dirty line)."""
        return GmWrite(*self.write_times(t, nbytes, path, region))

    def write_times(self, t: int, nbytes: int, path: TransferCost, region: Hashable | None) -> tuple[int, int]:
        """``write`` as a plain (pipe_end, visible) tuple (the issue loop's form: one per GM store)."""
        m = self.m
        a = m.transfer_align_bytes
        aligned = -(-nbytes // a) * a
        self.write_bytes += nbytes
        if not m.l2_write_back:
            done = self._write_through(t, aligned, path, region)
            return done.pipe_end, done.visible
        stream_end = self.l2_write.transfer(t, aligned, min(path.bytes_per_cycle, self.write_cap))
        if region is not None:
            line = self.lines.get(region)
            if line is None or self._lru:
                if line is not None:  # LRU: a write is a use, the region moves to the back
                    self.l2_used_bytes -= self.lines.pop(region).nbytes
                written_back = self._insert(region, aligned, t)
                if written_back > stream_end:
                    stream_end = written_back
            else:  # FIFO: the region keeps its place in the insertion order
                self.l2_used_bytes += aligned - line.nbytes
                written_back = self._evict_overflow(t, keep=region)
                if written_back > stream_end:
                    stream_end = written_back
            self.lines[region] = _new(Line, (aligned, stream_end + m.l2_write_latency_cycles, True))
        return stream_end + path.fixed_cycles, stream_end + m.l2_write_latency_cycles

    def _write_through(self, t: int, aligned: int, path: TransferCost, region: Hashable | None) -> GmWrite:
        """``l2_write_back=False`` (the model before issue 13): the path's fixed cost, then the bytes through the
        HBM pool; the pipe is held until HBM has them, and the region stays in L2 as a clean line."""
        end = self.hbm.transfer(t + path.fixed_cycles, aligned, path.bytes_per_cycle)
        self.writethrough_bytes += aligned
        if region is not None:
            line = self.lines.get(region)
            if line is None or self._lru:
                if line is not None:
                    self.l2_used_bytes -= self.lines.pop(region).nbytes
                self._insert(region, aligned, end)
            else:
                self.l2_used_bytes += aligned - line.nbytes
                self._evict_overflow(end, keep=region)
            self.lines[region] = Line(aligned, end, False)
        return GmWrite(end, end)

    def _insert(self, region: Hashable, nbytes: int, t: int) -> int:
        """Make room for ``region`` (placed at the back) and return when the evicted dirty bytes are written back
        (``t`` when none)."""
        self.lines[region] = _new(Line, (nbytes, t, False))
        self.l2_used_bytes += nbytes
        return self._evict_overflow(t, keep=region)

    def _evict_overflow(self, t: int, keep: Hashable) -> int:
        """Drop the oldest regions (the front of the order) until the rest fit in ``l2_bytes``, never ``keep``;
        write the dirty ones back to HBM from ``t`` and return when that is done (``t`` when nothing was dirty)."""
        dirty = 0
        lines = self.lines
        while self.l2_used_bytes > self.m.l2_bytes and len(lines) > 1:
            key, old = lines.popitem(last=False)
            if key == keep:  # (only when it is the oldest: it goes back to the front, and nothing more can go)
                lines[key] = old
                lines.move_to_end(key, last=False)
                break
            self.l2_used_bytes -= old.nbytes
            self.evictions += 1
            if old.dirty:
                dirty += old.nbytes
                self.dirty_evictions += 1
        if not dirty:
            return t
        self.writeback_bytes += dirty
        return self.hbm.transfer(t, dirty, self.m.hbm_bytes_per_cycle)

    @property
    def hbm_bytes(self) -> int:
        """Bytes HBM moved: read misses, write-backs (evicted and flushed) and written-through bytes."""
        return self.read_miss_bytes + self.writeback_bytes + self.flushed_bytes + self.writethrough_bytes

    @property
    def dirty_bytes(self) -> int:
        """Bytes in L2 that HBM does not have yet (written and not evicted)."""
        return sum(line.nbytes for line in self.lines.values() if line.dirty)

    def flush(self, t: int) -> int:
        """Write every dirty line back to HBM from ``t`` on; returns when HBM has acknowledged the last byte."""
        dirty = self.dirty_bytes
        if not dirty:
            return t
        for key, line in self.lines.items():
            if line.dirty:
                self.lines[key] = line._replace(dirty=False)
        self.flushed_bytes += dirty
        return self.hbm.transfer(t, dirty, self.m.hbm_bytes_per_cycle) + self.m.hbm_write_latency_cycles


__all__ = ["GlobalMemory", "Pool", "GmRead", "GmWrite", "Line"]
