"""Global memory seen by every core: the HBM pool, the write-back L2 and its read and write pools (NPU_MODEL §4.1).

Pools. Three chip-wide bandwidth pools: the L2 read pool (hits; CANN ``L2_RO`` 2550 B/cycle), the L2 write pool
(every GM write lands in L2; CANN ini ``l2_write_rate`` 86 x 24 = 2064) and the HBM pool (read misses and the
write-back of dirty lines share it; CANN ``DDR_RW`` 850). Transfers are priced when the engine reaches them, in
global time order, and never re-timed afterwards, so the fluid max-min model of §4.1 cannot be applied exactly.
Instead each pool keeps the bandwidth already reserved over time; a new transfer's data phase takes, in each
stretch of time, ``min(cap, pool / (n + 1), pool - reserved)`` where ``n`` transfers already hold bandwidth there.
This is pto-isa's ``min(BW_core, total / n_active)`` (arch_config.hpp HillBandwidthModel::BwEff) made conservative:
the pool is never oversubscribed, one transfer alone runs at its cap, and many streaming split the pool. It is not
fair: the first transfers priced in a burst keep their cap and the last take what is left (48 loads of 64 KiB in one
cycle: 1,211 to 4,490 cycles, where the fluid fair share gives each ~3,818; docs/explanation/npu_model.md).

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

Sub-blocks. A transfer of a slice of a tile names its region with the slice's window, ``(storage, index, (r0, r1,
c0, c1))``; the tile's own line and its sub-blocks' lines hold the same GM bytes. A read hits when its bytes are all
in L2: in its own line, in the tile's line, or in the union of sub-block lines that cover it (a whole-tile read
knows its bounds through ``extent``), and is ready when the last of those lines is. A write replaces the sub-block
lines inside it. (Flash attention's AIC writes a [64, 256] half of S and each AIV reads 32 rows of it: those reads
hit the data just written, as they do on the chip, instead of going to HBM the first time each ring slot is used.)

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

A tile larger than the whole L2 (a what-if ``l2_bytes``) cannot be held at this granularity: a read of it is a miss
that leaves no line, and a write of it is written back to HBM as it lands (an eviction of its own dirty line, which
the write waits for, as an evicting access does); data staged through GM that large go the same way.

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
from typing import Any, Final, Hashable, NamedTuple, cast

from .int_args import whole
from .machine import Machine, TransferCost
from .packed import append, i64, pop, vec

_new = tuple.__new__  # builds a Line without its Python-level __new__ (one per GM transfer)
_NATIVE: Final = not __file__.endswith(".py")  # compiled (ptort_lab.compiled): vecs, and loops over them are cheap


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class Pool:
    """A shared bandwidth pool: the bandwidth already reserved over time and how many transfers hold it.

    A new transfer's data phase takes, in each stretch of time, ``min(cap, pool / (n + 1), pool - reserved)``,
    where ``n`` transfers already hold bandwidth there: its fair share against the transfers priced before it,
    and never more than what is left (the pool is never oversubscribed; earlier transfers keep their rates).

    The breakpoints are packed 64-bit ints (``librt.vecs.vec``: compiled, reading and updating one is a machine
    word, not a Python int made and freed); sums and products are taken as Python ints, so nothing wraps. A value
    past 2**63 (a time, a byte count) does not fit and raises OverflowError; times stop at 2**53 cycles long before.
    """

    __slots__ = ("bytes_per_cycle", "times", "used", "holders")

    def __init__(self, bytes_per_cycle: int) -> None:
        self.bytes_per_cycle = bytes_per_cycle
        self.times: vec[i64] = vec[i64]([0])  # breakpoints; used[i] / holders[i] hold from times[i] to times[i + 1]
        self.used: vec[i64] = vec[i64]([0])
        self.holders: vec[i64] = vec[i64]([0])

    def __reduce__(self) -> tuple[Any, ...]:  # (a vec does not pickle: the lists do)
        return _pool, (self.bytes_per_cycle, list(self.times), list(self.used), list(self.holders))

    def _after(self, t: int) -> int:
        """The number of breakpoints at or before ``t`` (``bisect_right``, compiled: over the packed words)."""
        times = self.times
        hi: i64 = len(times)
        at: i64 = 0
        while at < hi:
            mid = (at + hi) >> 1
            if t < times[mid]:
                hi = mid
            else:
                at = mid + 1
        return at

    def _split(self, t: int) -> int:
        """Index of the breakpoint at ``t`` (inserted if needed)."""
        i = (self._after(t) if _NATIVE else bisect_right(self.times, t)) - 1  # (interpreted: no call in between)
        if i < 0:  # before everything remembered (a request older than the last forget): nothing reserved then
            self.times = _inserted(self.times, 0, t)
            self.used = _inserted(self.used, 0, 0)
            self.holders = _inserted(self.holders, 0, 0)
            return 0
        if self.times[i] != t:
            i += 1
            if not _NATIVE:  # (interpreted, lists: their own inserts, without a call of ours per list)
                times: Any = self.times
                used: Any = self.used
                holders: Any = self.holders
                times.insert(i, t)
                used.insert(i, used[i - 1])
                holders.insert(i, holders[i - 1])
                return i
            self.times = _inserted(self.times, i, t)
            self.used = _inserted(self.used, i, self.used[i - 1])
            self.holders = _inserted(self.holders, i, self.holders[i - 1])
        return i

    def transfer(self, data_start: int, nbytes: int, cap: int) -> int:
        """Reserve bandwidth for ``nbytes`` from ``data_start`` on; returns when the last byte has moved."""
        if nbytes <= 0:  # (nothing to move: no reservation, not one of rate x 0 cycles left open past the last one)
            return data_start
        pool = self.bytes_per_cycle
        times = self.times
        last = len(times) - 1
        if data_start >= times[last]:
            # Fast path: past every breakpoint, one stretch to the end (what the loop below does for it, inline)
            u: int = self.used[last]
            h: int = self.holders[last]
            rate = min(cap, pool // (h + 1), pool - u)
            if rate > 0:
                if times[last] != data_start:
                    self.times = times = append(times, data_start)
                    self.used = append(self.used, u)
                    self.holders = append(self.holders, h)
                    last += 1
                end = data_start + -(-nbytes // rate)
                self.times = append(times, end)
                self.used = append(self.used, u)
                self.holders = append(self.holders, h)
                self.used[last] = u + rate
                self.holders[last] = h + 1
                return end
        remaining = nbytes
        i = self._split(data_start)
        if cap <= pool:
            # Fast path: if the transfer gets its whole cap in every stretch up to ``data_start + nbytes / cap``,
            # the loop below would end there and add ``cap`` and one holder to each of those stretches.
            end = data_start + -(-nbytes // cap)
            times = self.times
            j = i
            n = len(times)
            if not _NATIVE:
                j = bisect_left(times, end, i)
            while j < n and times[j] < end:  # (bisect_left from i: the stretch is short)
                j += 1
            used, holders = self.used, self.holders
            # pool // (h + 1) >= cap and pool - u >= cap in every stretch, as bounds on h and u
            most_holders, most_used = pool // cap - 1, pool - cap
            k = i
            while k < j and holders[k] <= most_holders and used[k] <= most_used:
                k += 1
            if k == j:
                j = self._split(end)
                used, holders = self.used, self.holders
                for k in range(i, j):  # (in place: packed words, nothing allocated)
                    used[k] = used[k] + cap
                    holders[k] = holders[k] + 1
                return end
        times = self.times
        n = len(times)
        t = data_start
        while True:
            used, holders = self.used, self.holders
            u = used[i]
            rate = pool // (holders[i] + 1)
            if cap < rate:
                rate = cap
            if pool - u < rate:
                rate = pool - u
            if rate > 0:
                if i + 1 == n or rate * (self.times[i + 1] - t) >= remaining:
                    end = t + -(-remaining // rate)
                    j = self._split(end)
                    used, holders = self.used, self.holders
                    used[i] = used[i] + rate  # the stretch [t, end) may be one segment split just now
                    holders[i] = holders[i] + 1
                    for k in range(i + 1, j):
                        used[k] = used[k] + rate
                        holders[k] = holders[k] + 1
                    return end
                remaining -= rate * (self.times[i + 1] - t)
                used[i] = u + rate
                holders[i] = holders[i] + 1
            t = self.times[i + 1]  # (past the last breakpoint the rate is never 0: nothing is reserved there)
            i += 1

    def forget_before(self, t: int) -> None:
        """Drop the reservations before ``t``: no later transfer starts before it (``NpuRun`` passes each task's
        start as the engine gives it, in time order; not the later start a core's late block moves it to, before
        which other cores' tasks still transfer)."""
        i = (self._after(t) if _NATIVE else bisect_right(self.times, t)) - 1
        if i > 0:
            self.times = _dropped(self.times, i)
            self.used = _dropped(self.used, i)
            self.holders = _dropped(self.holders, i)


def _inserted(v: vec[i64], i: i64, x: i64) -> vec[i64]:
    """``v`` with ``x`` inserted before index ``i`` (compiled: in place, no new buffer unless ``v`` is full)."""
    if not _NATIVE:  # (a list: its own insert)
        cast(Any, v).insert(i, x)
        return v
    k = len(v)
    v = append(v, x)
    while k > i:
        v[k] = v[k - 1]
        k -= 1
    v[i] = x
    return v


def _dropped(v: vec[i64], i: i64) -> vec[i64]:
    """``v`` without its first ``i`` items (compiled: in place)."""
    if not _NATIVE:  # (a list: its own delete)
        del cast(Any, v)[:i]
        return v
    n = len(v) - i
    for k in range(n):
        v[k] = v[k + i]
    for _ in range(i):
        v, _ = pop(v)
    return v


def _pool(bytes_per_cycle: int, times: list[int], used: list[int], holders: list[int]) -> Pool:
    """A Pool rebuilt from its breakpoints (``Pool.__reduce__``)."""
    pool = Pool(bytes_per_cycle)
    pool.times, pool.used, pool.holders = vec[i64](times), vec[i64](used), vec[i64](holders)
    return pool


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
        # (storage, index) -> the sub-block regions (storage, index, window) of that tile in L2 (none for most runs)
        self.parts: dict[Hashable, set[Hashable]] = {}
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

    def read(self, t: Any, nbytes: Any, path: TransferCost, region: Hashable | None, nz: bool = False,
             extent: tuple[int, int, int, int] | None = None) -> GmRead:
        """A GM read whose first request leaves at ``t``; ``region`` None means data just staged through GM (a
        hit); ``nz`` a load into L1 (ND -> NZ: its outstanding rate is ``nd2nz_efficiency_pct`` of the plain one);
        ``extent`` the bounds (0, rows, 0, cols) of a whole tile (``region`` (storage, index)), which lets lines
        of its sub-blocks (``region`` (storage, index, (r0, r1, c0, c1))) serve it."""
        return GmRead(*self.read_times(whole(t, "GlobalMemory.read(t=...)"),
                                       whole(nbytes, "GlobalMemory.read(nbytes=...)"), path, region, nz, extent))

    def read_times(self, t: int, nbytes: int, path: TransferCost, region: Hashable | None,
                   nz: bool = False, extent: tuple[int, int, int, int] | None = None) -> tuple[int, int, bool]:
        """``read`` as a plain (pipe_end, ready, hit) tuple (the issue loop's form: one per GM load)."""
        m = self.m
        a = m.transfer_align_bytes
        aligned = -(-nbytes // a) * a
        hit_cap, miss_cap = self.read_caps[nz] if self._overlap else (m.l2_port_bytes_per_cycle, path.bytes_per_cycle)
        line = self.lines.get(region) if region is not None else None
        held = None
        if region.__class__ is tuple and (self.parts and region[:2] in self.parts
                                          or line is None and len(region) == 3):
            held = self._held(region, extent)  # its tile, or sub-blocks of it, are in L2: the read may be made of them
        kept = aligned <= m.l2_bytes  # a tile larger than the whole L2 cannot be in it: always read from HBM
        if (region is None and kept) or line is not None or held is not None:
            latency = m.l2_hit_latency_cycles
            data_end = self.l2.transfer(t + latency, aligned, hit_cap)
            ready = data_end
            if held is not None:
                for key in held:  # every line holding some of its bytes: the data are there when the last is
                    got = self.lines[key]
                    if self._lru:
                        self.lines.move_to_end(key)
                    if got.ready > ready:
                        ready = got.ready
            elif line is not None:
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
        written_back = self._insert(region, aligned, t) if region is not None and kept else t
        data_end = self.hbm.transfer(t + latency, aligned, min(path.bytes_per_cycle, miss_cap))
        if written_back > data_end:
            data_end = written_back
        if region is not None and kept:
            self.lines[region] = _new(Line, (aligned, data_end, False))
        self.read_miss_bytes += nbytes
        return (data_end - latency + path.fixed_cycles if self._overlap else data_end), data_end, False

    def write(self, t: Any, nbytes: Any, path: TransferCost, region: Hashable | None) -> GmWrite:
        """A GM write whose first byte leaves at ``t``, posted into L2 (its region becomes a dirty line)."""
        return GmWrite(*self.write_times(whole(t, "GlobalMemory.write(t=...)"),
                                         whole(nbytes, "GlobalMemory.write(nbytes=...)"), path, region))

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
        if aligned > m.l2_bytes:  # it cannot stay in L2: evicted as it lands, and the write waits for its write-back
            if region is not None and self.parts:
                self._overwrite(region)
            stream_end = max(stream_end, self._write_back_at_once(t, aligned))
        elif region is not None:
            if self.parts:
                self._overwrite(region)
            line = self.lines.get(region)
            if line is None or self._lru:
                if line is not None:  # LRU: a write is a use, the region moves to the back (_insert: parts again)
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
        if region is not None and self.parts:
            self._overwrite(region)
        if region is not None and aligned <= self.m.l2_bytes:  # (a tile larger than the L2 keeps no clean copy)
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

    def _write_back_at_once(self, t: int, nbytes: int) -> int:
        """A dirty tile larger than the whole L2 leaves it as it is written: its bytes go back to HBM from ``t``, as
        an evicted line's do; returns when they are there."""
        self.evictions += 1
        self.dirty_evictions += 1
        self.writeback_bytes += nbytes
        return self.hbm.transfer(t, nbytes, self.m.hbm_bytes_per_cycle)

    def _insert(self, region: Hashable, nbytes: int, t: int) -> int:
        """Make room for ``region`` (placed at the back) and return when the evicted dirty bytes are written back
        (``t`` when none)."""
        self.lines[region] = _new(Line, (nbytes, t, False))
        self.l2_used_bytes += nbytes
        if _is_part(region):  # a sub-block (storage, index, window) of a tile
            self.parts.setdefault(region[:2], set()).add(region)  # type: ignore[index]
        return self._evict_overflow(t, keep=region)

    def _forget_part(self, key: Hashable) -> None:
        """``key`` left L2: drop it from its tile's sub-blocks."""
        if _is_part(key):
            base = key[:2]  # type: ignore[index]
            parts = self.parts.get(base)
            if parts is not None:
                parts.discard(key)
                if not parts:
                    del self.parts[base]

    def _held(self, region: Hashable, extent: tuple[int, int, int, int] | None) -> list[Hashable] | None:
        """The lines a read of ``region`` finds its bytes in when sub-blocks of its tile are in L2 (all of them
        that overlap it), or None when some of its bytes are in none of them (a miss).

        A tile's line and its sub-blocks' lines are the same GM bytes: a store of rows 0:64 followed by loads of
        rows 0:32 and 32:64 reads data already in L2 (write-allocate), and a load of the whole tile after stores of
        all its parts too (``extent``: the whole tile's bounds, when the read is of all of it)."""
        lines = self.lines
        base = region[:2]  # type: ignore[index]
        whole = base if base in lines else None
        window = region[2] if _is_part(region) else extent  # type: ignore[index]
        parts = self.parts.get(base, ())
        if window is None:  # a whole tile of unknown bounds: only its own line serves it
            if whole is None:
                return None
            return [whole, *sorted(parts, key=_window_order)]  # (every sub-block overlaps the whole tile)
        r0, r1, c0, c1 = window
        found = [k for k in parts if k[2][0] < r1 and r0 < k[2][1] and k[2][2] < c1 and c0 < k[2][3]]  # type: ignore[index]
        if len(found) > 1:  # (the usual case is one: no sort, no key calls)
            found.sort(key=_window_order)
        if whole is not None:
            return [whole, *found]
        if not found or not _covers([k[2] for k in found], window):  # type: ignore[index]
            return None
        return found

    def _overwrite(self, region: Hashable) -> None:
        """A write of ``region`` replaces the sub-blocks of its tile that lie inside it (their bytes are its now):
        their lines leave L2, so no byte is counted twice."""
        base = region[:2]  # type: ignore[index]
        parts = self.parts.get(base)
        if not parts:
            return
        if _is_part(region):
            r0, r1, c0, c1 = region[2]  # type: ignore[index]
            inside = [k for k in parts if k != region and r0 <= k[2][0] and k[2][1] <= r1  # type: ignore[index]
                      and c0 <= k[2][2] and k[2][3] <= c1]  # type: ignore[index]
        else:
            inside = list(parts)
        if len(inside) > 1:
            inside.sort(key=_window_order)
        for key in inside:
            self.l2_used_bytes -= self.lines.pop(key).nbytes
            self._forget_part(key)

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
            if self.parts:
                self._forget_part(key)
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

    def flush(self, t: Any) -> int:
        """Write every dirty line back to HBM from ``t`` on; returns when HBM has acknowledged the last byte."""
        start = whole(t, "GlobalMemory.flush(t=...)")
        dirty = self.dirty_bytes
        if not dirty:
            return start
        for key, line in self.lines.items():
            if line.dirty:
                self.lines[key] = line._replace(dirty=False)
        self.flushed_bytes += dirty
        return self.hbm.transfer(start, dirty, self.m.hbm_bytes_per_cycle) + self.m.hbm_write_latency_cycles


def _is_part(key: Hashable) -> bool:
    """Whether an L2 region is a sub-block of a tile: (storage, index, (r0, r1, c0, c1)), as costs.py makes them."""
    return key.__class__ is tuple and len(key) == 3


def _window_order(key: Any) -> tuple[int, ...]:
    """Sub-block lines in a fixed order (rows, then columns), so a run never depends on set order."""
    return tuple(key[2]) if _is_part(key) else ()


def _covers(windows: list[tuple[int, int, int, int]], target: tuple[int, int, int, int]) -> bool:
    """Whether the union of ``windows`` (r0, r1, c0, c1) covers ``target``: every cell of the grid their edges
    cut ``target`` into lies in one of them."""
    r0, r1, c0, c1 = target
    for w in windows:  # (the usual case: one line holds it all)
        if w[0] <= r0 and r1 <= w[1] and w[2] <= c0 and c1 <= w[3]:
            return True
    rows = sorted({r0, r1, *(min(max(w[i], r0), r1) for w in windows for i in (0, 1))})
    cols = sorted({c0, c1, *(min(max(w[i], c0), c1) for w in windows for i in (2, 3))})
    for a, b in zip(rows, rows[1:]):
        for c, d in zip(cols, cols[1:]):
            if not any(w[0] <= a and b <= w[1] and w[2] <= c and d <= w[3] for w in windows):
                return False
    return True


__all__ = ["GlobalMemory", "Pool", "GmRead", "GmWrite", "Line"]
