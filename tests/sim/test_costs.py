"""NpuCostModel: hand-computable timings from the NPU_MODEL §3 formulas, in-order pipes, buffer-limited overlap,
capacity errors, HBM sharing, pinned costs and the spec pipeline's depth behaviour."""
from __future__ import annotations

import numpy as np
import pytest

from ptort_lab import (
    Channel,
    Dense,
    DispatchPolicy,
    DType,
    In,
    Out,
    P,
    Tensor,
    Tile,
    connect,
    consume,
    for_each,
    kernel,
    process,
    send,
    task,
    tl,
    workload,
)
from ptort_lab.errors import CapacityError, PtortValueError
from ptort_lab.sim.costs import NpuCostModel
from ptort_lab.sim.machine import KIB, ascend_910b
from ptort_lab.sim.memory import GlobalMemory
from ptort_lab.sim.runner import PinnedCosts, RunOptions, simulate

F16, F32 = DType.F16, DType.F32
M = ascend_910b
# The first block starts after the launch and its own dispatch (§3.5, costs.NpuRun.block_start): 10900 + 150
LAUNCH = M.launch_overhead_cycles + M.block_dispatch_cycles


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def read_rate(path, hit: bool, nz: bool = False) -> int:
    """Per-transfer rate of a GM read on an idle chip (memory.py): Little's law, 64 x 512 B in flight per latency
    (x 0.75 for an ND -> NZ load into L1), capped by the per-core L2 port (hit) or the path (miss)."""
    window = M.read_outstanding_requests * M.read_request_bytes  # 32768 B
    latency = M.l2_hit_latency_cycles if hit else M.hbm_read_latency_cycles
    little = int(window / latency * (M.nd2nz_efficiency_pct / 100 if nz else 1))  # hit 138 (L1: 104), miss 94 (70)
    return min(M.l2_port_bytes_per_cycle if hit else path.bytes_per_cycle, little)


def gm_read(nbytes: int, path, hit: bool = False, nz: bool = False) -> tuple[int, int]:
    """(pipe cycles, ready cycles) of a GM read from its issue on an idle chip: the pipe is held for the stream plus
    the path's issue cost, the data land a latency after the stream's start (memory.py)."""
    stream = ceil_div(nbytes, read_rate(path, hit, nz))
    latency = M.l2_hit_latency_cycles if hit else M.hbm_read_latency_cycles
    return stream + path.fixed_cycles, stream + latency


def gm_write(nbytes: int, path) -> tuple[int, int]:
    """(pipe cycles, visible cycles) of a GM write posted into L2: streamed at min(path, 128 B/cycle write port,
    48 x 256 B / 96 = 128), the pipe held for the stream plus its issue cost (48), visible after the L2 write
    latency (96)."""
    window = M.write_outstanding_requests * M.write_request_bytes
    rate = min(path.bytes_per_cycle, M.l2_write_port_bytes_per_cycle, window // M.l2_write_latency_cycles)
    stream = ceil_div(nbytes, rate)
    return stream + path.fixed_cycles, stream + M.l2_write_latency_cycles


def vector_cycles(cls, nbytes: int, idle: bool = True) -> int:
    """head (when V was idle) + slope x 256-byte repeats (§3.2)."""
    return (cls.head_cycles if idle else 0) + cls.slope_cycles * ceil_div(nbytes, M.vector_repeat_bytes)


def add_kernel(rows: int, cols: int, dtype: DType):
    @kernel
    def add(x: In[Tile[rows, cols, dtype]], y: In[Tile[rows, cols, dtype]], z: Out[Tile[rows, cols, dtype]]):
        tl.store(z, tl.add(tl.load(x), tl.load(y)))
    return add


def add_workload(k, n: int, rows: int, cols: int, dtype: DType, cores: int = 1):
    X, Y, Z = (Tensor(shape=(n, rows, cols), dtype=dtype) for _ in range(3))

    @workload
    def w():
        for t in P(Dense[n]()):
            k[t](x=X[t], y=Y[t], z=Z[t])

    return w().dispatch(DispatchPolicy.round_robin(cores)), (X, Y, Z)


def spans_of(run, task_id: int, lane_suffix: str):
    return [s for s in run.trace.spans if s.task_id == task_id and s.lane.endswith(lane_suffix)]


# -- one task, by hand -------------------------------------------------------------------------------------------
def test_load_add_store_on_one_core_takes_exactly_the_formula_cycles():
    """Two F16 128x128 loads, an add and a store, priced from §3.1/§3.2 with the §3.5 launch in front."""
    k = add_kernel(128, 128, F16)
    wl, (X, Y, Z) = add_workload(k, 1, 128, 128, F16)
    run = simulate(wl, NpuCostModel(), RunOptions())
    tile = 128 * 128 * 2
    load, ready = gm_read(tile, M.gm_to_ub)  # misses: pipe 547 + 118 issue = 665, data in at 547 + 347 = 894
    add = vector_cycles(M.vec_binary, tile)  # 10 + 2 x 128 repeats
    store, visible = gm_write(tile, M.ub_to_gm)  # 328 at 100 B/cycle: pipe 328 + 48, visible at 328 + 96
    assert (load, ready, store, visible) == (665, 894, 376, 424)
    lanes = [(s.lane, s.name, s.start, s.end) for s in run.trace.spans]
    t0 = LAUNCH
    add_start = t0 + load + ready  # the second load issues as the first lets the pipe go; add waits for its data
    store_start = add_start + add + M.vec_binary.tail_cycles  # MTE3 observes the add through a flag (§3.2)
    assert lanes == [
        ("AIV0.MTE2", "load", t0, t0 + load),
        ("AIV0.MTE2", "load", t0 + load, t0 + 2 * load),  # same pipe: in order, right after the first
        ("AIV0.V", "add", add_start, add_start + add),
        ("AIV0.MTE3", "store", store_start, store_start + store),
    ]
    assert run.trace.makespan == store_start + visible  # the kernel ends when its posted write is visible
    assert sum(s.bytes for s in run.trace.spans) == 3 * tile


def test_vector_cost_classes_follow_section_3_2():
    """exp counts F16 elements like F32, cast counts the wider dtype, row max uses the §3.3 structural formula."""
    @kernel
    def mix(x: In[Tile[16, 1024, F16]], y: Out[Tile[16, 1024, F32]]):
        v = tl.load(x)
        e = tl.exp(v)  # per element: 16*1024*4 bytes of repeats
        w = tl.cast(e, F32)  # counted on F32
        m = tl.rowmax(w)  # 50 + R * (2 * (ceil(C*4/256) - 1) + 7)
        tl.store(y, tl.sub(w, m))

    X, Y = Tensor(shape=(1, 16, 1024), dtype=F16), Tensor(shape=(1, 16, 1024), dtype=F32)

    @workload
    def w():
        mix(x=X[0], y=Y[0])

    run = simulate(w(), NpuCostModel(), RunOptions())
    v = [s for s in run.trace.spans if s.lane == "AIV0.V"]
    assert [s.name for s in v] == ["exp", "cast", "rowmax", "sub"]
    elems = 16 * 1024
    assert v[0].cycles == vector_cycles(M.vec_transcendental, elems * 4)
    assert v[1].cycles == vector_cycles(M.vec_cast, elems * 4, idle=False)  # back to back: no head
    assert v[2].cycles == M.row_reduce_fixed_cycles + 16 * (2 * (ceil_div(1024 * 4, 256) - 1) + 7)
    assert v[3].cycles == vector_cycles(M.vec_binary, elems * 4, idle=False)
    assert v[1].start == v[0].end and v[2].start == v[1].end  # one V stream, in program order


def test_matmul_runs_extract_cube_and_fix_with_the_section_3_4_formula():
    """[128,64] @ [64,256] F16: TEXTRACT A and B on MTE1, one 6 + 8*16*4 cube op, the F32 result out on FIX."""
    @kernel
    def mm(a: In[Tile[128, 64, F16]], b: In[Tile[64, 256, F16]], c: Out[Tile[128, 256, F32]]):
        tl.store(c, tl.matmul(tl.load(a), tl.load(b)))

    A, B = Tensor(shape=(1, 128, 64), dtype=F16), Tensor(shape=(1, 64, 256), dtype=F16)
    C = Tensor(shape=(1, 128, 256), dtype=F32)

    @workload
    def w():
        mm(a=A[0], b=B[0], c=C[0])

    run = simulate(w(), NpuCostModel(), RunOptions())
    got = [(s.lane, s.name, s.cycles) for s in run.trace.spans]
    a_bytes, b_bytes, c_bytes = 128 * 64 * 2, 64 * 256 * 2, 128 * 256 * 4
    load_a = gm_read(a_bytes, M.gm_to_l1, nz=True)[0]  # 16384 B at 70 B/cycle (94 x 0.75) = 235, + 210 issue
    load_b = gm_read(b_bytes, M.gm_to_l1, nz=True)[0]  # 32768 / 70 = 469, + 210
    assert (load_a, load_b) == (445, 679)
    assert got == [
        ("AIC.MTE2", "load", load_a),
        ("AIC.MTE2", "load", load_b),
        ("AIC.MTE1", "extract", M.l1_to_l0a.fixed_cycles + a_bytes // M.l1_to_l0a.bytes_per_cycle),
        ("AIC.MTE1", "extract", M.l1_to_l0b.fixed_cycles + b_bytes // M.l1_to_l0b.bytes_per_cycle),
        ("AIC.CUBE", "matmul", 6 + (128 // 16) * (256 // 16) * (64 // 16)),
        ("AIC.FIX", "store", gm_write(c_bytes, M.l0c_to_gm)[0]),  # 131072 / 75 = 1748, + 48 issue
    ]
    np.testing.assert_allclose(C.data[0], A.data[0].astype(np.float32) @ B.data[0].astype(np.float32))


def test_large_k_matmul_is_sliced_and_extracts_overlap_the_cube():
    """K = 256 F16 with N = 256 splits into four 64-deep slices (a B slice fills one L0B ping-pong half), and the
    extract of slice s+1 runs while the cube works on slice s, because two slices fit L0A/L0B."""
    @kernel
    def mm(a: In[Tile[128, 256, F16]], b: In[Tile[256, 256, F16]], c: Out[Tile[128, 256, F32]]):
        tl.store(c, tl.matmul(tl.load(a), tl.load(b)))

    A, B = Tensor(shape=(1, 128, 256), dtype=F16), Tensor(shape=(1, 256, 256), dtype=F16)
    C = Tensor(shape=(1, 128, 256), dtype=F32)

    @workload
    def w():
        mm(a=A[0], b=B[0], c=C[0])

    run = simulate(w(), NpuCostModel(), RunOptions(compute_values=False))
    cube = [s for s in run.trace.spans if s.lane == "AIC.CUBE"]
    extract = [s for s in run.trace.spans if s.lane == "AIC.MTE1"]
    assert len(cube) == 4 and len(extract) == 8
    assert [s.cycles for s in cube] == [6 + 512, 512, 512, 512]  # head only on the first (M was idle)
    assert extract[2].start < cube[0].end  # slice 1's A extract overlaps slice 0's matmul


def test_tile_parameter_used_directly_is_loaded_once():
    """x + x on a parameter (no tl.load) charges one implicit MTE2 load, then the add and the store."""
    @kernel
    def double(x: In[Tile[128, 128, F16]], z: Out[Tile[128, 128, F16]]):
        tl.store(z, tl.add(x, x))

    X, Z = Tensor(np.ones((1, 128, 128), np.float16)), Tensor(shape=(1, 128, 128), dtype=F16)

    @workload
    def w():
        double(x=X[0], z=Z[0])

    run = simulate(w(), NpuCostModel(), RunOptions())
    assert [(s.lane, s.name) for s in run.trace.spans] == [
        ("AIV0.MTE2", "load"), ("AIV0.V", "add"), ("AIV0.MTE3", "store")]
    np.testing.assert_array_equal(Z.data, 2 * X.data)


def test_matmul_result_reaches_the_vector_unit_through_gm():
    """On A2/A3 the AIC and AIV share nothing on chip: L0C -> GM on FIX, then GM -> UB on the AIV's MTE2. (abs, not
    relu: FIX applies a relu itself on the way out, tests/sim/test_fix_fusion_round31.py.)"""
    @kernel
    def mm_relu(a: In[Tile[64, 64, F16]], b: In[Tile[64, 64, F16]], c: Out[Tile[64, 64, F32]]):
        tl.store(c, tl.abs(tl.matmul(tl.load(a), tl.load(b))))

    rng = np.random.default_rng(1)
    A, B = (Tensor(rng.standard_normal((1, 64, 64)).astype(np.float16)) for _ in range(2))
    C = Tensor(shape=(1, 64, 64), dtype=F32)

    @workload
    def w():
        mm_relu(a=A[0], b=B[0], c=C[0])

    run = simulate(w(), NpuCostModel(), RunOptions())
    spans = run.trace.spans
    assert [(s.lane, s.name) for s in spans] == [
        ("AIC.MTE2", "load"), ("AIC.MTE2", "load"), ("AIC.MTE1", "extract"), ("AIC.MTE1", "extract"),
        ("AIC.CUBE", "matmul"), ("AIC.FIX", "fix"), ("AIV0.MTE2", "load"), ("AIV0.V", "abs"),
        ("AIV0.MTE3", "store")]
    fix, staged = spans[5], spans[6]
    assert staged.start >= fix.end  # the AIV reads what FIX wrote
    ref = np.abs(A.data[0].astype(np.float32) @ B.data[0].astype(np.float32))
    np.testing.assert_allclose(C.data[0], ref, rtol=1e-6)


# -- pipes and buffers ---------------------------------------------------------------------------------------------
def two_tasks_one_aiv(dtype: DType):
    """Two add tasks on one core with one AIV (so both use the same pipes and UB), 128x192 tiles."""
    k = add_kernel(128, 192, dtype)
    wl, _ = add_workload(k, 2, 128, 192, dtype)
    return simulate(wl, NpuCostModel(M.replace(aiv_per_core=1)), RunOptions(compute_values=False))


def test_next_tasks_loads_overlap_this_tasks_compute_when_two_tasks_fit_ub():
    """F16 128x192: a task holds 96 KiB of UB, two fit, so task 1 loads while task 0 adds (double buffering)."""
    run = two_tasks_one_aiv(F16)
    add0 = spans_of(run, 0, ".V")[0]
    loads0, loads1 = spans_of(run, 0, ".MTE2"), spans_of(run, 1, ".MTE2")
    assert loads1[0].start == loads0[1].end  # MTE2 goes straight on
    assert loads1[0].start < add0.end and add0.start < loads1[0].end


def test_next_tasks_loads_wait_for_room_when_one_task_fills_ub():
    """F32 128x192: a task's two 96 KiB tiles fill the 192 KiB UB. Task 1's first tile gets room when task 0's add
    frees its y tile (z reuses x in place), its second only when task 0's store frees z: no overlap with the add."""
    run = two_tasks_one_aiv(F32)
    add0 = spans_of(run, 0, ".V")[0]
    store0 = spans_of(run, 0, ".MTE3")[0]
    loads1 = spans_of(run, 1, ".MTE2")
    assert loads1[0].start == add0.end
    assert loads1[1].start == max(loads1[0].end, store0.end)


def test_two_aivs_of_a_core_take_its_tasks_in_turn():
    """On the default machine a data-parallel core hands task k to AIV k % 2; the two run side by side."""
    k = add_kernel(128, 128, F16)
    wl, _ = add_workload(k, 2, 128, 128, F16)
    run = simulate(wl, NpuCostModel(), RunOptions(compute_values=False))
    assert {s.lane.split(".")[0] for s in run.trace.spans if s.task_id == 0} == {"AIV0"}
    assert {s.lane.split(".")[0] for s in run.trace.spans if s.task_id == 1} == {"AIV1"}
    assert spans_of(run, 1, ".MTE2")[0].start == LAUNCH


def test_tile_larger_than_ub_raises_capacity_error_with_the_numbers():
    """An F32 256x256 tile (256 KiB) cannot be loaded into a 192 KiB UB."""
    big = add_kernel(256, 256, F32)
    wl, _ = add_workload(big, 1, 256, 256, F32)
    with pytest.raises(CapacityError) as e:
        simulate(wl, NpuCostModel(), RunOptions(compute_values=False))
    msg = str(e.value)
    assert "kernel 'add'" in msg and "UB" in msg
    assert "262144 bytes" in msg and "196608 bytes" in msg and "smaller tile" in msg


def test_matmul_result_larger_than_l0c_raises_capacity_error():
    """A [128, 512] F32 accumulator (256 KiB) does not fit the 128 KiB L0C."""
    @kernel
    def mm(a: In[Tile[128, 64, F16]], b: In[Tile[64, 512, F16]], c: Out[Tile[128, 512, F32]]):
        tl.store(c, tl.matmul(tl.load(a), tl.load(b)))

    A, B = Tensor(shape=(1, 128, 64), dtype=F16), Tensor(shape=(1, 64, 512), dtype=F16)
    C = Tensor(shape=(1, 128, 512), dtype=F32)

    @workload
    def w():
        mm(a=A[0], b=B[0], c=C[0])

    with pytest.raises(CapacityError, match=r"262144 bytes of L0C.*131072 bytes"):
        simulate(w(), NpuCostModel(), RunOptions(compute_values=False))


def test_more_cores_than_the_machine_has_is_a_clear_error():
    """Dispatching to 25 cores on a 24-core machine is refused before running."""
    k = add_kernel(128, 128, F16)
    wl, _ = add_workload(k, 30, 128, 128, F16, cores=25)
    with pytest.raises(PtortValueError, match="25 cores but machine 'ascend_910b' has 24 AI cores"):
        simulate(wl, NpuCostModel(), RunOptions(compute_values=False))


# -- HBM sharing -----------------------------------------------------------------------------------------------------
def copy_workload(n: int, cores: int):
    @kernel
    def load_only(x: In[Tile[128, 256, F16]]):
        tl.load(x)

    X = Tensor(shape=(n, 128, 256), dtype=F16)

    @workload
    def w():
        for t in P(Dense[n]()):
            load_only[t](x=X[t])

    return w().dispatch(DispatchPolicy.round_robin(cores))


def test_one_core_streaming_alone_reaches_its_per_core_bandwidth():
    """A single 64 KiB GM->UB load runs at the per-core 60 B/cycle: HBM is far from full."""
    run = simulate(copy_workload(1, 1), NpuCostModel(), RunOptions(compute_values=False))
    (s,) = run.trace.spans
    pipe, ready = gm_read(128 * 256 * 2, M.gm_to_ub)  # 65536 / 60 = 1093 cycles of streaming
    assert (s.cycles, pipe, ready) == (1093 + 118, 1093 + 118, 1093 + 347)
    assert run.trace.makespan == s.start + ready  # the run ends when the data are in


def test_48_vector_units_streaming_split_the_hbm_pool():
    """48 AIVs streaming 8 loads each cannot beat the 850 B/cycle pool but keep it nearly full, so each gets about
    850 / 48 B/cycle on average, far below the 60 B/cycle one core reaches alone."""
    run = simulate(copy_workload(48 * 8, 24), NpuCostModel(), RunOptions(compute_values=False))
    spans = run.trace.spans
    assert len({(s.core, s.lane) for s in spans}) == 48
    total = sum(s.bytes for s in spans)
    busy = max(s.end for s in spans) - (LAUNCH + M.hbm_read_latency_cycles)
    assert total / busy <= M.hbm_bytes_per_cycle  # never oversubscribed
    assert total / busy >= 0.9 * M.hbm_bytes_per_cycle  # and kept busy
    per_aiv = total / 48 / busy
    assert 0.9 * M.hbm_bytes_per_cycle / 48 <= per_aiv <= M.hbm_bytes_per_cycle / 48


# -- L2 (memory.py: LRU over tiles, §4.1) -------------------------------------------------------------------------
TILE = 64 * KIB  # one [128, 256] F16 tile


def test_first_read_misses_and_a_reread_hits_at_the_l2_port():
    """A miss streams at the path's cap from HBM after its latency; a re-read at the L2 rate after the L2 latency.
    Into UB (ND): miss 65536 / 60 = 1093, hit 65536 / 128 (port) = 512; the pipe pays the issue cost 118."""
    mem = GlobalMemory(M)
    assert mem.read(0, TILE, M.gm_to_ub, "a") == (1093 + 118, 1093 + 347, False)
    t = 5000
    assert mem.read(t, TILE, M.gm_to_ub, "a") == (t + 512 + 118, t + 512 + 236, True)
    assert gm_read(TILE, M.gm_to_ub, hit=True) == (512 + 118, 512 + 236)
    assert (mem.read_hit_bytes, mem.read_miss_bytes) == (TILE, TILE)


def test_a_read_of_a_tile_still_in_flight_merges_with_the_first_read():
    """A second core asking for a tile whose miss is still in flight hits, but cannot finish before the data arrive."""
    mem = GlobalMemory(M)
    _, first, hit = mem.read(0, TILE, M.gm_to_l1, "a")
    assert not hit
    pipe, second, hit = mem.read(10, TILE, M.gm_to_l1, "a")
    assert hit and second == first
    # its pipe does not wait for the first read: 65536 B at the 128 B/cycle port (nz=False here) + 210 issue
    assert pipe == 10 + 512 + M.gm_to_l1.fixed_cycles


READS = [(0, "a"), (10_000, "b"), (20_000, "a"), (30_000, "c"), (40_000, "a"), (50_000, "b")]


def test_lru_l2_evicts_the_least_recently_used_tile():
    """With room for two tiles: a, b, a (hit, now most recent), c evicts b, so b misses and a still hits."""
    mem = GlobalMemory(M.replace(l2_bytes=2 * TILE, l2_replacement="lru"))
    assert [mem.read(t, TILE, M.gm_to_l1, r).hit for t, r in READS] == [False, False, True, False, True, False]


def test_fifo_l2_evicts_the_oldest_tile_even_when_it_was_just_hit():
    """Same reads under the default FIFO: the hit on a does not renew it, so c evicts a; a then misses and evicts b."""
    assert M.l2_replacement == "fifo"
    mem = GlobalMemory(M.replace(l2_bytes=2 * TILE))
    assert [mem.read(t, TILE, M.gm_to_l1, r).hit for t, r in READS] == [False, False, True, False, False, False]
    assert list(mem.lines) == ["a", "b"]  # b came back last, after a


@pytest.mark.parametrize("policy, order", [("fifo", ["a", "b", "c"]), ("lru", ["b", "c", "a"])])
def test_a_write_to_a_cached_tile_renews_it_only_under_lru(policy, order):
    mem = GlobalMemory(M.replace(l2_bytes=3 * TILE, l2_replacement=policy))
    for t, r in [(0, "a"), (10_000, "b"), (20_000, "c")]:
        mem.read(t, TILE, M.gm_to_l1, r)
    mem.write(30_000, TILE, M.l0c_to_gm, "a")
    assert list(mem.lines) == order and mem.l2_used_bytes == 3 * TILE


def test_unknown_l2_replacement_is_refused_with_the_choices():
    with pytest.raises(PtortValueError, match=r"(?s)unknown l2_replacement 'lfu'.*test_costs.py.*'fifo', 'lru'"):
        M.replace(l2_replacement="lfu")


def test_a_stored_tile_is_read_back_from_l2():
    """Writes allocate their region in L2 (a stage's output is a hit for the next stage, §4.2); staged data too."""
    mem = GlobalMemory(M)
    end, visible = mem.write(0, TILE, M.ub_to_gm, "z")
    assert (end, visible) == gm_write(TILE, M.ub_to_gm) == (656 + 48, 656 + 96)  # 65536 / 100 = 656
    assert mem.read(end, TILE, M.gm_to_ub, "z").hit
    assert mem.read(end, TILE, M.gm_to_ub, None).hit  # L0C -> GM -> UB staging hop
    assert (mem.read_hit_bytes, mem.read_miss_bytes) == (2 * TILE, 0)


# -- pinned costs ------------------------------------------------------------------------------------------------------
def test_pinned_task_takes_exactly_its_cycles_on_the_process_lane(stages):
    """task(..., cycles=N) is priced like PinnedCosts: one span, no pipes, no launch offset."""
    @workload
    def w():
        for t in P(Dense[3]()):
            task(stages.a, [t], {}, cycles=100)

    ours = simulate(w(), NpuCostModel(), RunOptions())
    ref = simulate(w(), PinnedCosts(), RunOptions())
    key = [(s.core, s.lane, s.start, s.end) for s in ours.trace.spans]
    assert key == [(s.core, s.lane, s.start, s.end) for s in ref.trace.spans]
    assert [s.cycles for s in ours.trace.spans] == [100, 100, 100]


def test_pinned_pipeline_matches_the_oracle_recurrence(stages):
    """A two-stage pipeline with pinned costs gives S_k(i) = max(F_k(i-1), F_{k-1}(i) + L, F_{k+1}(i-D) + L)."""
    times, depth, latency = [[30, 50, 10, 40], [60, 20, 70, 10]], 1, 5
    ch = Channel(name="c", depth=depth)
    p0 = process("s0").produces(ch).body(
        for_each(Dense[4](), lambda i: send(ch, task(stages.a, [i], {}, cycles=lambda t: times[0][t.params[0]]))))
    p1 = process("s1").consumes(ch).body(
        consume(ch, lambda i: task(stages.b, [i], {}, cycles=lambda t: times[1][t.params[0]])))
    run = simulate(connect(p0, p1), NpuCostModel(), RunOptions(channel_latency_cycles=latency))
    F0, F1 = [], []
    for i in range(4):
        s0 = max(F0[i - 1] if i else 0, F1[i - depth] + latency if i >= depth else 0)
        F0.append(s0 + times[0][i])
        s1 = max(F1[i - 1] if i else 0, F0[i] + latency)
        F1.append(s1 + times[1][i])
    got = {(s.process, s.index): s.end for s in run.trace.spans}
    assert [got[("s0", i)] for i in range(4)] == F0
    assert [got[("s1", i)] for i in range(4)] == F1


# -- the spec pipeline -------------------------------------------------------------------------------------------------
def spec_pipeline(k, d, depth: int):
    """The spec's loader -> computer -> storer in the reference form send(ch, task(...)) / consume(ch, ...)."""
    l2c = Channel(name="load_to_compute", depth=depth)
    c2s = Channel(name="compute_to_store", depth=depth)
    loader = process("loader").produces(l2c).body(
        for_each(Dense[d.n](), lambda t: send(l2c, task(k.load, [t], {"src": d.X[t], "dst": d.T[t]}))))
    computer = process("computer").consumes(l2c).produces(c2s).body(
        consume(l2c, lambda t: send(c2s, task(k.compute, [t], {"input_tile": d.T[t], "output_tile": d.U[t]}))))
    storer = process("storer").consumes(c2s).body(
        consume(c2s, lambda t: task(k.store, [t], {"src": d.U[t], "dst": d.Y[t]})))
    return connect(loader, computer, storer)


@pytest.mark.parametrize("latency", [0, M.channel_latency_cycles])
def test_spec_pipeline_deeper_channels_never_slow_it_and_double_buffering_helps(spec_kernels, spec_data, latency):
    """Depth 1 -> 2 -> 4 never increases total cycles, depth 2 beats depth 1, and Y still equals numpy."""
    totals = {}
    for depth in (1, 2, 4):
        spec_data.Y.data = None
        prog = spec_pipeline(spec_kernels, spec_data, depth).compile(
            cost_model=NpuCostModel(), channel_latency_cycles=latency)
        prog.execute()
        totals[depth] = prog.stats().total_cycles
        np.testing.assert_array_equal(spec_data.Y.data, spec_data.expected)
    assert totals[4] <= totals[2] < totals[1]


def test_spec_pipeline_on_one_core_shares_its_pipes(spec_kernels, spec_data):
    """Placed on one core, the three stages use one AIV's MTE2/V/MTE3: no two spans of a pipe overlap."""
    prog = spec_pipeline(spec_kernels, spec_data, 2).place("shared").compile(cost_model=NpuCostModel())
    prog.execute()
    spans = prog.trace().spans
    assert {s.core for s in spans} == {0}
    for lane in {s.lane for s in spans}:
        ordered = sorted((s for s in spans if s.lane == lane), key=lambda s: s.start)
        assert all(a.end <= b.start for a, b in zip(ordered, ordered[1:])), lane
    np.testing.assert_array_equal(spec_data.Y.data, spec_data.expected)


def test_channel_slots_on_one_core_must_fit_ub(spec_kernels, spec_data):
    """Shared placement keeps channel slots in UB: depth 4 x 32 KiB x 2 channels = 256 KiB > 192 KiB."""
    wl = spec_pipeline(spec_kernels, spec_data, 4).place("shared")
    with pytest.raises(CapacityError) as e:
        wl.compile(cost_model=NpuCostModel()).execute()
    msg = str(e.value)
    assert "262144 bytes of UB" in msg and "196608 bytes" in msg
    assert "process 'loader'" in msg or "process 'computer'" in msg
    assert "smaller tile or a smaller depth" in msg


def test_pipeline_on_separate_cores_beats_one_core_at_depth_2(spec_kernels, spec_data):
    """Three cores give each stage its own pipes; one shared core makes the stages queue on one AIV."""
    totals = {}
    for placement in (None, "shared"):
        wl = spec_pipeline(spec_kernels, spec_data, 2)
        if placement:
            wl = wl.place(placement)
        prog = wl.compile(cost_model=NpuCostModel(), channel_latency_cycles=0)
        prog.execute()
        totals[placement] = prog.stats().total_cycles
    assert totals[None] < totals["shared"]


def spec_data_parallel(k, d):
    """The same 24 tasks as a data-parallel workload (tile t's three kernels depend on each other through T, U)."""
    @workload
    def twin():
        for t in P(Dense[d.n]()):
            k.load[t](src=d.X[t], dst=d.T[t])
            k.compute[t](input_tile=d.T[t], output_tile=d.U[t])
            k.store[t](src=d.U[t], dst=d.Y[t])
    return twin()


def test_pipeline_versus_data_parallel_on_one_and_many_cores(spec_kernels, spec_data):
    """On one core the data-parallel run has nothing to overlap but buffers allow; the 3-core pipeline beats it;
    spreading the 8 independent tiles over more cores keeps helping until every tile has its own core."""
    def cycles(w, **opts):
        spec_data.Y.data = None
        prog = w.compile(channel_latency_cycles=0, **opts)
        prog.execute()
        np.testing.assert_array_equal(spec_data.Y.data, spec_data.expected)
        return prog.stats().total_cycles

    twin = spec_data_parallel(spec_kernels, spec_data)
    dp = {n: cycles(twin.dispatch(DispatchPolicy.affinity(lambda t: t.get("b"), n))) for n in (1, 2, 4, 8)}
    pipe = cycles(spec_pipeline(spec_kernels, spec_data, 2))
    assert dp[1] > dp[2] > dp[4] > dp[8]
    assert pipe < dp[1]
    assert dp[8] < pipe  # 8 cores with every tile's chain on one core beat a 3-stage pipeline on 3 cores


# -- cube -> vector channels on one core (NPU_MODEL §2.1, §4.2) --------------------------------------------------------
@kernel
def cube_scores(q: In[Tile[128, 128, F16]], k: In[Tile[128, 128, F16]], s: Out[Tile[128, 128, F32]]):
    tl.store(s, tl.matmul(tl.load(q), tl.load(k)))


@kernel
def vector_double(s: In[Tile[128, 128, F32]], y: Out[Tile[128, 128, F32]]):
    x = tl.load(s)
    tl.store(y, tl.add(x, x))


def cube_to_vector(depth: int, n: int = 3):
    """qk (cube only) -> scale (vector only), token t carries S[t] through a tensor; 64 KiB per S tile."""
    q = Tensor(data=np.ones((n, 128, 128), np.float16), name="Q")
    k = Tensor(data=np.ones((n, 128, 128), np.float16), name="K")
    s = Tensor(shape=(n, 128, 128), dtype=F32, name="S")
    y = Tensor(shape=(n, 128, 128), dtype=F32, name="Y")
    ch = Channel(name="s_ready", depth=depth)
    qk = process("qk").produces(ch).body(
        for_each(Dense[n](), lambda t: send(ch, task(cube_scores, [t], {"q": q[t], "k": k[t], "s": s[t]}))))
    scale = process("scale").consumes(ch).body(
        consume(ch, lambda t: task(vector_double, [t], {"s": s[t], "y": y[t]})))
    return connect(qk, scale), y


def test_units_of_a_process_are_the_units_its_kernels_use():
    cost = NpuCostModel()
    wl, _ = cube_to_vector(2)
    qk, scale = wl.fields["processes"]
    assert (cost.units_of(qk), cost.units_of(scale)) == ({"AIC"}, {"AIV"})
    assert not cost.channel_stays_on_chip([qk], [scale])
    assert cost.channel_stays_on_chip([scale], [scale])


def test_a_cube_to_vector_channel_on_one_core_goes_through_gm_and_pays_the_hop():
    """AIC and AIV share nothing: on one core the channel still pays L_chan (1000 cycles) and holds no UB, so
    depth 4 x 64 KiB = 256 KiB (more than the 192 KiB UB) runs, and each consumer task starts no earlier than
    its producer's end + 1000; the same pipeline with a 0-cycle hop starts it earlier."""
    starts = {}
    for latency in (0, M.channel_latency_cycles):
        wl, y = cube_to_vector(4)
        prog = wl.place("shared").compile(cost_model=NpuCostModel(), channel_latency_cycles=latency)
        prog.execute()
        spans = prog.trace().spans
        end = {t: max(s.end for s in spans if s.process == "qk" and s.index == t) for t in range(3)}
        start = {t: min(s.start for s in spans if s.process == "scale" and s.index == t) for t in range(3)}
        assert all(start[t] >= end[t] + latency for t in range(3)), (start, end)
        starts[latency] = start[0]
        np.testing.assert_array_equal(y.data, np.full((3, 128, 128), 256.0, np.float32))
    assert starts[M.channel_latency_cycles] >= starts[0] + M.channel_latency_cycles


def test_activations_cost_the_vector_steps_they_are_built_from():
    """F32 [16, 64] = 16 repeats. sigmoid = tile-scalar, exp, tile-scalar, div; gelu = 4 binary + 8 tile-scalar +
    exp + div; transpose one unary pass. One V stream: only the first pays a head."""
    @kernel
    def acts(x: In[Tile[16, 64, F32]], y: Out[Tile[16, 64, F32]], z: Out[Tile[64, 16, F32]]):
        v = tl.load(x)
        tl.store(y, tl.gelu(tl.sigmoid(v)))
        tl.store(z, tl.transpose(v))

    X = Tensor(shape=(1, 16, 64), dtype=F32)
    Y, Z = Tensor(shape=(1, 16, 64), dtype=F32), Tensor(shape=(1, 64, 16), dtype=F32)

    @workload
    def w():
        acts(x=X[0], y=Y[0], z=Z[0])

    run = simulate(w(), NpuCostModel(), RunOptions(compute_values=False))
    v = [s for s in run.trace.spans if s.lane == "AIV0.V"]
    assert [s.name for s in v] == ["sigmoid", "gelu", "transpose"]
    r = 16  # 4096 bytes / 256
    s_, e_, d_, b_ = (M.vec_scalar.slope_cycles * r, M.vec_transcendental.slope_cycles * r,
                      M.vec_div.slope_cycles * r, M.vec_binary.slope_cycles * r)
    assert v[0].cycles == M.vec_scalar.head_cycles + s_ + e_ + s_ + d_
    assert v[1].cycles == 4 * b_ + 8 * s_ + e_ + d_
    assert v[2].cycles == M.vec_unary.slope_cycles * r


def test_sin_and_rearranging_ops_cost_their_estimated_passes():
    """F32 [16, 64] (16 repeats): sin = 6 tile-scalar + 2 cast + 8 binary passes (range reduction + Horner);
    slice_even one unary pass over its [16, 32] result (8 repeats); broadcast one over its result."""
    @kernel
    def k(x: In[Tile[16, 64, F32]], v: In[Tile[16, 1, F32]], y: Out[Tile[16, 64, F32]],
          h: Out[Tile[16, 32, F32]], b: Out[Tile[16, 64, F32]]):
        a = tl.load(x)
        tl.store(y, tl.sin(a))
        tl.store(h, tl.slice_even(a))
        tl.store(b, tl.broadcast(tl.load(v), (16, 64)))

    X, V = Tensor(shape=(1, 16, 64), dtype=F32), Tensor(shape=(1, 16, 1), dtype=F32)
    Y, H, B = (Tensor(shape=s, dtype=F32) for s in ((1, 16, 64), (1, 16, 32), (1, 16, 64)))

    @workload
    def w():
        k(x=X[0], v=V[0], y=Y[0], h=H[0], b=B[0])

    run = simulate(w(), NpuCostModel(), RunOptions(compute_values=False))
    v = {s.name: s for s in run.trace.spans if s.lane == "AIV0.V"}
    r = 16
    assert v["sin"].cycles == M.vec_scalar.head_cycles + r * (6 * M.vec_scalar.slope_cycles
                                                              + 2 * M.vec_cast.slope_cycles
                                                              + 8 * M.vec_binary.slope_cycles)
    assert v["slice_even"].cycles == M.vec_unary.slope_cycles * (r // 2)
    assert v["broadcast"].cycles == M.vec_unary.slope_cycles * r


def test_a_stage_placed_on_the_second_aiv_runs_there_and_its_channels_go_through_gm(spec_kernels, spec_data):
    """{"computer": (0, 1)}: compute runs on AIV1 of core 0, loader and storer on AIV0. AIV0 and AIV1 share no
    buffer, so both channels are GM-staged (no UB slots: depth 4 x 32 KiB x 2 fits, unlike the all-AIV0
    placement) and each hop pays the channel latency."""
    wl = spec_pipeline(spec_kernels, spec_data, 4).place({"loader": 0, "computer": (0, 1), "storer": 0})
    prog = wl.compile(cost_model=NpuCostModel())
    prog.execute()
    lanes = {p: {s.lane.split(".")[0] for s in prog.trace.spans if s.process == p}
             for p in ("loader", "computer", "storer")}
    assert lanes == {"loader": {"AIV0"}, "computer": {"AIV1"}, "storer": {"AIV0"}}
    np.testing.assert_array_equal(spec_data.Y.data, spec_data.expected)
    loads = {s.index: s.end for s in prog.trace.spans if s.process == "loader" and s.name == "store"}
    computes = {s.index: s.start for s in prog.trace.spans if s.process == "computer" and s.name == "load"}
    assert all(computes[t] >= loads[t] + M.channel_latency_cycles for t in loads)


def test_aiv_placement_mistakes_are_refused(spec_kernels, spec_data):
    with pytest.raises(PtortValueError, match=r"process 'computer' is placed on AIV2 but each AI core .* AIV0..AIV1"):
        spec_pipeline(spec_kernels, spec_data, 2).place({"computer": (0, 2)}).compile(
            cost_model=NpuCostModel()).execute()
    with pytest.raises(PtortValueError, match="PinnedCosts has no AIVs"):
        spec_pipeline(spec_kernels, spec_data, 2).place({"computer": (0, 1)}).compile(
            cost_model=PinnedCosts()).execute()
