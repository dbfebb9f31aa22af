"""The memory hierarchy of issue 13, each behaviour on a hand-worked case (NPU_MODEL §4.1, sim/memory.py).

Numbers used throughout (ascend_910b): a 64 KiB tile. A GM read streams at Little's law's rate, 64 requests of
512 B per latency: 32768 / 236 = 138 B/cycle for an L2 hit (capped by the 128 B/cycle port), 32768 / 347 = 94 for a
miss (capped by the GM -> UB path's 60). The load pipe is held for the stream plus the path's issue cost (118 for
GM -> UB); the data land one latency after the stream started. A write is posted into L2 at min(path, 128 B/cycle
port, 48 x 256 B / 96 = 128): UB -> GM at 100 B/cycle, the pipe held for the stream + 48, visible after + 96.
"""
from __future__ import annotations

import pytest

from ptort_lab import Dense, DispatchPolicy, DType, In, Out, P, Tensor, Tile, kernel, tl, workload
from ptort_lab.errors import PtortTypeError
from ptort_lab.sim.costs import NpuCostModel
from ptort_lab.sim.machine import KIB, ascend_910b
from ptort_lab.sim.memory import GlobalMemory
from ptort_lab.sim.runner import RunOptions, simulate

M = ascend_910b
TILE = 64 * KIB
UB_LOAD, UB_STORE = M.gm_to_ub, M.ub_to_gm
HIT_STREAM = TILE // 128  # 512 cycles at the L2 port
MISS_STREAM = -(-TILE // 60)  # 1093 cycles at the GM -> UB path's cap
WRITE_STREAM = -(-TILE // 100)  # 656 cycles at the UB -> GM path's cap


# -- writes stay in L2 --------------------------------------------------------------------------------------------
def test_a_write_lands_in_l2_and_moves_no_hbm_byte():
    mem = GlobalMemory(M)
    assert mem.write(0, TILE, UB_STORE, "z") == (WRITE_STREAM + 48, WRITE_STREAM + 96)  # (704, 752)
    assert (mem.write_bytes, mem.hbm_bytes, mem.dirty_bytes) == (TILE, 0, TILE)
    assert list(mem.hbm.times) == [0]  # the HBM pool was never reserved
    assert mem.read(800, TILE, UB_LOAD, "z").hit  # and the next stage reads it from L2


def test_write_through_sends_the_same_write_to_hbm_and_holds_the_pipe_until_it_is_there():
    """``l2_write_back=False`` (the model before issue 13): fixed cost 48, then 656 cycles through the HBM pool."""
    mem = GlobalMemory(M.replace(l2_write_back=False))
    assert mem.write(0, TILE, UB_STORE, "z") == (48 + WRITE_STREAM, 48 + WRITE_STREAM)
    assert (mem.hbm_bytes, mem.dirty_bytes) == (TILE, 0)


# -- write-back on eviction ---------------------------------------------------------------------------------------
def evicting_read(dirty: bool) -> tuple[GlobalMemory, tuple[int, int, bool]]:
    """Room for two tiles and a 100 B/cycle HBM pool: a and b enter (a written when ``dirty``, else read), then a
    miss of c at 10000 evicts a (FIFO: the oldest)."""
    mem = GlobalMemory(M.replace(l2_bytes=2 * TILE, hbm_bytes_per_cycle=100))
    if dirty:
        mem.write(0, TILE, UB_STORE, "a")
    else:
        mem.read(0, TILE, UB_LOAD, "a")
    mem.read(3000, TILE, UB_LOAD, "b")
    return mem, tuple(mem.read(10_000, TILE, UB_LOAD, "c"))


def test_evicting_a_dirty_tile_writes_it_back_to_hbm_and_delays_the_fill():
    """The write-back takes the whole 100 B/cycle pool from 10000 to 10656 (65536 / 100); c's data phase, due at
    10347, gets HBM only then: ready at 10656 + 1093 = 11749, its pipe free at 11749 - 347 + 118 = 11520."""
    mem, got = evicting_read(dirty=True)
    assert got == (11_520, 11_749, False)
    assert list(mem.lines) == ["b", "c"]
    assert (mem.writeback_bytes, mem.dirty_evictions, mem.evictions) == (TILE, 1, 1)
    assert mem.hbm_bytes == 2 * TILE + TILE  # b and c read from HBM, a written back


def test_evicting_a_clean_tile_costs_nothing():
    """The same with a only read: c's data run from 10347 at 60 B/cycle to 11440, 309 cycles sooner."""
    mem, got = evicting_read(dirty=False)
    assert got == (10_000 + MISS_STREAM + 118, 10_347 + MISS_STREAM, False)
    assert (mem.writeback_bytes, mem.dirty_evictions, mem.evictions) == (0, 0, 1)


# -- overlapped reads -----------------------------------------------------------------------------------------------
def hit_reads(machine, dependent: bool) -> list[int]:
    """Four L2-hit reads of distinct tiles on one pipe: each issued when the pipe is free (independent) or when the
    previous read's data are in (dependent); returns when each one's data are ready."""
    mem = GlobalMemory(machine)
    for r in "abcd":
        mem.write(0, TILE, UB_STORE, r)  # all four now sit in L2, visible at 752
    t, ready = 1000, []
    for r in "abcd":
        pipe_end, done, hit = mem.read(t, TILE, UB_LOAD, r)
        assert hit
        ready.append(done)
        t = done if dependent else pipe_end
    return ready


def test_independent_reads_pay_the_latency_once_and_dependent_reads_once_each():
    """Independent: issues 630 apart (512 + 118), so the last is ready at 1000 + 3 x 630 + 748 = 3638: one 236-cycle
    latency plus 3 issue costs. Dependent: each waits 748 (512 + 236), the last is ready at 1000 + 4 x 748 = 3992:
    four latencies. The gap is 3 x (236 - 118) = 354."""
    independent = hit_reads(M, dependent=False)
    dependent = hit_reads(M, dependent=True)
    assert independent == [1000 + k * 630 + 748 for k in range(4)]
    assert dependent == [1000 + (k + 1) * 748 for k in range(4)]
    assert dependent[-1] - independent[-1] == 3 * (236 - 118)


def test_held_reads_pay_the_latency_every_time():
    """``gm_read_overlap=False`` (the model before issue 13): the pipe waits out each latency, so independent
    reads cost what dependent ones do, 748 each."""
    held = M.replace(gm_read_overlap=False)
    assert hit_reads(held, dependent=False) == hit_reads(held, dependent=True) == [1000 + (k + 1) * 748
                                                                                    for k in range(4)]


def test_the_outstanding_limit_caps_a_read_below_the_port():
    """With 16 requests of 512 B in flight, a hit streams at 8192 / 236 = 34 B/cycle, not the port's 128."""
    mem = GlobalMemory(M.replace(read_outstanding_requests=16))
    mem.write(0, TILE, UB_STORE, "a")
    assert mem.read(1000, TILE, UB_LOAD, "a") == (1000 + -(-TILE // 34) + 118, 1000 + -(-TILE // 34) + 236, True)


# -- separate read and write pools -----------------------------------------------------------------------------------
def test_writes_do_not_share_the_hbm_pool_with_read_misses():
    """A miss holding a 60 B/cycle HBM pool from 347 to 1440 does not slow a write posted at 400 (it goes to L2);
    written through, the same write waits for the pool until 1440 and then streams at 60 B/cycle."""
    small_hbm = M.replace(hbm_bytes_per_cycle=60)
    for machine, expected in [(small_hbm, (400 + WRITE_STREAM + 48, 400 + WRITE_STREAM + 96)),
                              (small_hbm.replace(l2_write_back=False), (1440 + MISS_STREAM, 1440 + MISS_STREAM))]:
        mem = GlobalMemory(machine)
        assert mem.read(0, TILE, UB_LOAD, "x")[:2] == (MISS_STREAM + 118, MISS_STREAM + 347)
        assert mem.write(400, TILE, UB_STORE, "z") == expected


def test_l2_reads_and_writes_have_separate_pools():
    """Read and write pools of 128 B/cycle each: a hit filling the read pool from 236 to 748 leaves the write pool
    alone, so a write at 236 streams at its own 100 B/cycle."""
    mem = GlobalMemory(M.replace(l2_bytes_per_cycle=128, l2_write_bytes_per_cycle=128))
    mem.write(-5000, TILE, UB_STORE, "a")
    mem.forget_before(0)
    assert mem.read(0, TILE, UB_LOAD, "a")[:2] == (HIT_STREAM + 118, HIT_STREAM + 236)
    assert mem.write(236, TILE, UB_STORE, "z") == (236 + WRITE_STREAM + 48, 236 + WRITE_STREAM + 96)


# -- kernel end -----------------------------------------------------------------------------------------------------
@kernel
def copy_tile(x: In[Tile[128, 128, DType.F16]], z: Out[Tile[128, 128, DType.F16]]):
    tl.store(z, tl.load(x))


def one_copy(machine):
    X, Z = Tensor(shape=(1, 128, 128), dtype=DType.F16), Tensor(shape=(1, 128, 128), dtype=DType.F16)

    @workload
    def w():
        copy_tile(x=X[0], z=Z[0])

    cost = NpuCostModel(machine)
    return simulate(w(), cost, RunOptions(compute_values=False)), cost.memory


def test_the_kernel_end_flush_is_counted_by_default_and_timed_when_asked():
    """32 KiB: the load's data are in at 547 + 347 = 894 after the first block starts (10900 + 150), the store is
    visible 328 + 96 = 424 later. By default the dirty 32 KiB stay in L2 (counted); with l2_flush_at_end the run
    also waits for them to reach HBM: 32768 / 850 = 39 cycles + the 203-cycle HBM write latency."""
    run, mem = one_copy(M)
    end = M.launch_overhead_cycles + M.block_dispatch_cycles + 894 + 424
    assert run.trace.makespan == end
    assert (mem.dirty_bytes, mem.flushed_bytes) == (32 * KIB, 0)
    flushed, mem = one_copy(M.replace(l2_flush_at_end=True))
    assert flushed.trace.makespan == end + 39 + M.hbm_write_latency_cycles
    assert (mem.dirty_bytes, mem.flushed_bytes, mem.hbm_bytes) == (0, 32 * KIB, 64 * KIB)


def test_program_stats_report_the_gm_traffic():
    X, Z = Tensor(shape=(1, 128, 128), dtype=DType.F16), Tensor(shape=(1, 128, 128), dtype=DType.F16)

    @workload
    def w():
        copy_tile(x=X[0], z=Z[0])

    stats = w().compile(compute_values=False).execute().stats()
    assert stats.memory["read_miss_bytes"] == stats.memory["write_bytes"] == 32 * KIB
    assert stats.memory["hbm_bytes"] == 32 * KIB and stats.memory["l2_dirty_at_end_bytes"] == 32 * KIB
    assert ("  GM: 0 B read from L2, 32768 B from HBM, 32768 B written; HBM 32768 B; dirty in L2 at the end "
            "32768 B") in stats.summary()


# -- block dispatch ----------------------------------------------------------------------------------------------
@kernel
def load_only(x: In[Tile[128, 256, DType.F16]]):
    tl.load(x)


def one_task_per_core(cores: int, machine=M) -> int:
    X = Tensor(shape=(cores, 128, 256), dtype=DType.F16)

    @workload
    def w():
        for t in P(Dense[cores]()):
            load_only[t](x=X[t])

    run = simulate(w().dispatch(DispatchPolicy.round_robin(cores)), NpuCostModel(machine),
                   RunOptions(compute_values=False))
    return run.trace.makespan


@pytest.mark.parametrize("cores", [1, 2, 4, 8])
def test_each_launched_block_adds_its_dispatch(cores):
    """Block k starts at launch + (k + 1) x 150; each loads one 64 KiB tile alone (8 x 60 B/cycle < the 850 pool),
    its data in 1093 + 347 = 1440 later: the run ends at 10900 + cores x 150 + 1440."""
    assert one_task_per_core(cores) == M.launch_overhead_cycles + cores * M.block_dispatch_cycles + 1440


def test_without_dispatch_cost_the_time_does_not_move_with_the_cores():
    no_dispatch = M.replace(block_dispatch_cycles=0)
    assert {one_task_per_core(n, no_dispatch) for n in (1, 8)} == {M.launch_overhead_cycles + 1440}


def test_switches_must_be_bools():
    with pytest.raises(PtortTypeError, match=r"(?s)gm_read_overlap must be True or False, got int 1\..*preset has "
                                             r"gm_read_overlap=True"):
        M.replace(gm_read_overlap=1)
