"""Tile channels (issue 12, B): items that are tiles in the channel's buffer slots. On one core with a shared buffer
the slots stay on chip (Ascend C's TQue: CopyIn -> Compute -> CopyOut whose loads overlap compute at depth 2); between
units that share nothing (AIC <-> AIV) they are a GM ring the channel owns, whose addresses are reused. Timelines are
worked out by hand from the machine's constants; values against numpy; every misuse is refused with what/where/how."""
from __future__ import annotations

import numpy as np
import pytest

from ptort_lab import Dense, DType, In, Out, P, Tensor, Tile, for_each, kernel, tl, workload
from ptort_lab.csp import Channel, connect, consume, process, replicate, send
from ptort_lab.errors import CapacityError, DSLUsageError, PipelineError, PtortTypeError, PtortValueError
from ptort_lab.sim.costs import NpuCostModel
from ptort_lab.sim.machine import ascend_910b
from ptort_lab.sim.runner import RunOptions, simulate

F16, F32 = DType.F16, DType.F32
M = ascend_910b
LAUNCH = M.launch_overhead_cycles + M.block_dispatch_cycles  # the first block starts after its dispatch: 11050
TILE = Tile[64, 64, F32]
TILE_BYTES = 64 * 64 * 4


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


# Costs of one 64x64 F32 tile, from NPU_MODEL's formulas (sim/machine.py constants; memory.py for GM):
# GM -> UB, an L2 miss: 16384 / 60 = 274 cycles of streaming; the pipe is held for that + the 118 issue cost, the
# data are in the HBM latency (347) after the stream started. A CSP process waits for its task, i.e. for the data.
LOAD_PIPE = ceil_div(TILE_BYTES, M.gm_to_ub.bytes_per_cycle) + M.gm_to_ub.fixed_cycles  # 392
LOAD = ceil_div(TILE_BYTES, M.gm_to_ub.bytes_per_cycle) + M.hbm_read_latency_cycles  # 621: when the data are in
MUL = M.vec_binary.head_cycles + M.vec_binary.slope_cycles * ceil_div(TILE_BYTES, M.vector_repeat_bytes)  # 138
# UB -> GM, posted into L2: 16384 / 100 = 164 cycles; the pipe lets go after + 48, the write is visible after + 96
STORE = ceil_div(TILE_BYTES, M.ub_to_gm.bytes_per_cycle) + M.ub_to_gm.fixed_cycles  # 212
STORE_SEEN = ceil_div(TILE_BYTES, M.ub_to_gm.bytes_per_cycle) + M.l2_write_latency_cycles  # 260
TAIL = M.vec_binary.tail_cycles  # MTE3 sees the V result after the tail: 14


@kernel
def copy_in(src: In[TILE], dst: Out[TILE]):
    tl.store(dst, tl.load(src))


@kernel
def square(src: In[TILE], dst: Out[TILE]):
    x = tl.load(src)
    tl.store(dst, tl.mul(x, x))


@kernel
def copy_out(src: In[TILE], dst: Out[TILE]):
    tl.store(dst, tl.load(src))


def three_stages(n: int, depth: int, seed: int = 0):
    """CopyIn -> Compute -> CopyOut over two UB tile channels; returns the pipeline, X's values and Y."""
    x = np.random.default_rng(seed).random((n, 64, 64), dtype=np.float32)
    X, Y = Tensor(data=x, name="X"), Tensor(shape=x.shape, dtype=F32, name="Y")
    qin, qout = Channel("qin", depth=depth, tile=TILE), Channel("qout", depth=depth, tile=TILE)
    a = process("copy_in").produces(qin).body(
        for_each(Dense[n](), lambda t: send(qin, copy_in[t](src=X[t], dst=qin.item))))
    b = process("compute").consumes(qin).produces(qout).body(
        consume(qin, lambda t: send(qout, square[t](src=qin.item, dst=qout.item))))
    c = process("copy_out").consumes(qout).body(consume(qout, lambda t: copy_out[t](src=qout.item, dst=Y[t])))
    return connect(a, b, c), x, Y


def spans(run, process: str, name: str):
    return [(s.index, s.lane, s.start, s.end, s.bytes) for s in run.trace.spans if s.process == process and
            s.name == name]


# -- on chip: CopyIn / Compute / CopyOut on one core ------------------------------------------------------------
def test_depth_2_ub_channels_overlap_the_next_load_with_this_compute():
    """Depth 2: copy_in's load of item k+1 runs on MTE2 while compute squares item k on V. The items sit in UB slots,
    so copy_in is one GM->UB load (straight into the slot), compute one V op (into the next channel's slot), copy_out
    one UB->GM store: the loads (621 cycles) set the pace and nothing else waits."""
    n = 6
    pipe, x, Y = three_stages(n, depth=2)
    run = simulate(pipe.place("shared"), NpuCostModel(), RunOptions())
    np.testing.assert_array_equal(Y.data, x * x)
    loads = spans(run, "copy_in", "load")
    assert loads == [(k, "AIV0.MTE2", LAUNCH + k * LOAD, LAUNCH + k * LOAD + LOAD_PIPE, TILE_BYTES) for k in range(n)]
    assert spans(run, "compute", "mul") == [(k, "AIV0.V", LAUNCH + (k + 1) * LOAD, LAUNCH + (k + 1) * LOAD + MUL, 0)
                                            for k in range(n)]
    stores = spans(run, "copy_out", "store")
    assert stores == [(k, "AIV0.MTE3", LAUNCH + (k + 1) * LOAD + MUL + TAIL,
                       LAUNCH + (k + 1) * LOAD + MUL + TAIL + STORE, TILE_BYTES) for k in range(n)]
    # item 1's load [1 LOAD, 2 LOAD) overlaps item 0's compute [1 LOAD, 1 LOAD + MUL)
    assert loads[1][2] < spans(run, "compute", "mul")[0][3]
    assert run.trace.makespan == LAUNCH + n * LOAD + MUL + TAIL + STORE_SEEN  # 15188: the last write is visible
    # nothing else: no store out of copy_in, no load into compute or copy_out, no GM byte but X's and Y's
    assert sorted({(s.process, s.name) for s in run.trace.spans}) == [
        ("compute", "mul"), ("copy_in", "load"), ("copy_out", "store")]
    assert sum(s.bytes for s in run.trace.spans) == 2 * n * TILE_BYTES


def test_depth_1_ub_channels_serialise_the_load_and_the_compute():
    """Depth 1: copy_in cannot load item k+1 before compute has freed item k's slot, so each item costs
    LOAD + MUL (759 cycles) and no load overlaps a compute."""
    n = 6
    pipe, x, Y = three_stages(n, depth=1)
    run = simulate(pipe.place("shared"), NpuCostModel(), RunOptions())
    np.testing.assert_array_equal(Y.data, x * x)
    period = LOAD + MUL
    assert [s[2] for s in spans(run, "copy_in", "load")] == [LAUNCH + k * period for k in range(n)]
    assert [s[2] for s in spans(run, "compute", "mul")] == [LAUNCH + k * period + LOAD for k in range(n)]
    for (_, _, _, mul_end, _), (_, _, next_load, _, _) in zip(spans(run, "compute", "mul"),
                                                             spans(run, "copy_in", "load")[1:]):
        assert next_load == mul_end  # the slot frees when compute ends, and the load takes it then
    assert run.trace.makespan == LAUNCH + n * period + TAIL + STORE_SEEN  # 15878
    stalls = [s for s in run.trace.stalls if s.process == "copy_in"]
    assert stalls and all(s.reason == "backpressure from 'qin'" and s.end - s.start == MUL for s in stalls)


def copied_through_one_ub(tile, a_ch, b_ch):
    """p -> a_ch -> q -> b_ch -> r copying 4 tiles, all placed on core 0 (the channels' slots in one AIV's UB): the
    CapacityError the run raises."""
    @kernel
    def fill(src: In[tile], dst: Out[tile]):
        tl.store(dst, tl.load(src))

    X, Y = Tensor(shape=(4, *tile.shape), dtype=F32), Tensor(shape=(4, *tile.shape), dtype=F32)
    p = process("p").produces(a_ch).body(for_each(Dense[4](), lambda t: send(a_ch, fill[t](src=X[t], dst=a_ch.item))))
    q = process("q").consumes(a_ch).produces(b_ch).body(
        consume(a_ch, lambda t: send(b_ch, fill[t](src=a_ch.item, dst=b_ch.item))))
    r = process("r").consumes(b_ch).body(consume(b_ch, lambda t: fill[t](src=b_ch.item, dst=Y[t])))
    with pytest.raises(CapacityError) as e:
        connect(p, q, r).place("shared").compile(compute_values=False).execute()
    return e


def test_channel_slots_in_ub_are_reserved_for_the_whole_run():
    """Two depth-4 channels of 64 KiB tiles need 512 KiB of one AIV's 192 KiB UB: refused before the run, naming each
    channel, its bytes and line, with the depth that fits."""
    big = Tile[128, 128, F32]
    a_ch = Channel("a_ch", depth=2, tile=big)
    b_ch = Channel("b_ch", depth=2, tile=big)
    e = copied_through_one_ub(big, a_ch, b_ch)
    what = e.value.what
    assert what.startswith("on-chip state on core 0 needs 262144 bytes of UB but the UB of AIV0 holds 196608 bytes "
                           "(192 KiB): tile channel 'a_ch' (2 x f32[128,128]): 131072 B, made at ")
    assert "test_tile_channels.py" in what and "used by processes 'p' and 'q'" in what
    assert "tile channel 'b_ch' (2 x f32[128,128]): 131072 B" in what and "used by processes 'q' and 'r'" in what
    assert "give tile channel 'a_ch' depth 1" in e.value.hint
    assert e.value.where is not None and e.value.where.code.startswith('a_ch = Channel("a_ch"')


def test_channels_made_at_one_line_get_one_depth_that_fits_them_all():
    """Two depth-4 channels of 32 KiB tiles made by one Channel(...) line need 256 KiB of UB: the hint gives the depth
    at which both fit (3: 192 KiB), not the one that fits if only the first changed (2), and says the kernels need
    room besides."""
    tile = Tile[64, 128, F32]
    a_ch, b_ch = [Channel(name, depth=4, tile=tile) for name in ("a_ch", "b_ch")]
    e = copied_through_one_ub(tile, a_ch, b_ch)
    assert e.value.what.startswith("on-chip state on core 0 needs 262144 bytes of UB")
    assert ("give tile channel 'a_ch', tile channel 'b_ch' (made at the same line) depth 3 or less (less still, to "
            "leave the kernels placed there room for their own tiles)") in e.value.hint


def test_a_kernel_that_does_not_fit_beside_the_slots_names_the_reservation():
    """What the slots reserve is not the kernels' to take: a kernel whose own tiles need 160 KiB of UB fails beside
    a 64 KiB channel, and its error says what is reserved."""
    tile = Tile[128, 160, F32]  # 80 KiB

    @kernel
    def two_tiles(src: In[tile], dst: Out[tile]):
        x = tl.load(src)
        y = tl.exp(x)  # x is used again below, so y needs a second 80 KiB buffer
        tl.store(dst, tl.add(x, y))

    @kernel
    def fill(src: In[TILE], dst: Out[TILE]):
        tl.store(dst, tl.load(src))

    X, Y = Tensor(shape=(2, 128, 160), dtype=F32), Tensor(shape=(2, 128, 160), dtype=F32)
    Z = Tensor(shape=(2, 64, 64), dtype=F32)
    ch = Channel("held", depth=4, tile=TILE)
    p = process("p").produces(ch).body(for_each(Dense[2](), lambda t: [two_tiles[t](src=X[t], dst=Y[t]),
                                                                      send(ch, fill[t](src=Z[t], dst=ch.item))]))
    q = process("q").consumes(ch).body(consume(ch, lambda t: fill[t](src=ch.item, dst=Z[t])))
    with pytest.raises(CapacityError) as e:
        connect(p, q).place("shared").compile(compute_values=False).execute()
    assert "needs 163840 bytes of UB at once" in e.value.what
    assert e.value.what.endswith("holds 196608 bytes (192 KiB), 65536 of them reserved for on-chip state (tile channel "
                                 "'held' (4 x f32[64,64]) 65536 B).")
    assert e.value.hint.startswith("The on-chip state reserved in UB (65536 bytes) leaves the kernel's own tiles "
                                   "131072 bytes, and at its peak the kernel holds 163840 bytes there at once.")
    assert e.value.hint.endswith("Or keep the kernel as it is and give tile channel 'held' depth 2 or less (it has 4).")


# -- through GM: a ring between the AIC and an AIV ---------------------------------------------------------------
@kernel
def scores(q: In[Tile[64, 64, F16]], k: In[Tile[64, 64, F16]], s: Out[TILE]):
    tl.store(s, tl.matmul(tl.load(q), tl.load(k)))


@kernel
def exponent(s: In[TILE], y: Out[TILE]):
    tl.store(y, tl.exp(tl.load(s)))


def cube_to_vector(n: int, depth: int = 2):
    rng = np.random.default_rng(1)
    q = (rng.random((n, 64, 64)) - 0.5).astype(np.float16)
    k = (rng.random((n, 64, 64)) - 0.5).astype(np.float16)
    Q, K = Tensor(data=q, name="Q"), Tensor(data=k, name="K")
    Y = Tensor(shape=(n, 64, 64), dtype=F32, name="Y")
    s_ch = Channel("s", depth=depth, tile=TILE)
    qk = process("qk").produces(s_ch).body(
        for_each(Dense[n](), lambda t: send(s_ch, scores[t](q=Q[t], k=K[t], s=s_ch.item))))
    sm = process("sm").consumes(s_ch).body(consume(s_ch, lambda t: exponent[t](s=s_ch.item, y=Y[t])))
    expected = np.exp(np.matmul(q.astype(np.float32), k.astype(np.float32)))
    return connect(qk, sm), s_ch, Y, expected


def test_a_cube_to_vector_tile_channel_is_a_gm_ring_written_and_read_per_item():
    """AIC and AIV0 of one core share no buffer: each item is one FIX write of the slot's GM address by the cube
    stage and one MTE2 read of it by the vector stage, which hits L2 (the write allocated it): the pipe is held for
    16384 B at the per-core L2 port (128 cycles) + the 118 issue cost. The cube task ends when its posted write is
    visible in L2 (96 cycles after its last byte, 48 after the FIX pipe let go), and the item one hop (1000 cycles)
    later."""
    n = 4
    pipe, s_ch, Y, expected = cube_to_vector(n)
    run = simulate(pipe, NpuCostModel(), RunOptions(channel_latency_cycles=M.channel_latency_cycles,
                                                    placement={"qk": 0, "sm": 0}))
    np.testing.assert_allclose(Y.data, expected, rtol=1e-5)
    writes = spans(run, "qk", "store")
    reads = spans(run, "sm", "load")
    assert [(w[0], w[1], w[4]) for w in writes] == [(t, "AIC.FIX", TILE_BYTES) for t in range(n)]
    assert [(r[0], r[1], r[4]) for r in reads] == [(t, "AIV0.MTE2", TILE_BYTES) for t in range(n)]
    hit = ceil_div(TILE_BYTES, M.l2_port_bytes_per_cycle) + M.gm_to_ub.fixed_cycles  # 128 + 118
    assert all(end - start == hit for _, _, start, end, _ in reads)
    seen = M.l2_write_latency_cycles - M.l0c_to_gm.fixed_cycles  # 96 - 48: visible after the FIX pipe let go
    assert reads[0][2] == writes[0][3] + seen + M.channel_latency_cycles  # one hop after the write is visible
    memory = run.pricing.memory
    assert memory.read_hit_bytes == n * TILE_BYTES  # every ring read hit; Q and K (distinct tiles) missed
    assert memory.read_miss_bytes == 2 * n * 64 * 64 * 2


def test_the_ring_reuses_its_slot_addresses_item_after_item():
    """Eight items through a depth-2 ring touch two GM addresses: item k is written to slot k % 2 (so a write-back L2
    keeps the traffic on chip)."""
    n = 8
    pipe, s_ch, Y, expected = cube_to_vector(n, depth=2)
    run = simulate(pipe, NpuCostModel(), RunOptions(placement={"qk": 0, "sm": 0}))
    np.testing.assert_allclose(Y.data, expected, rtol=1e-5)
    ring = id(s_ch.item.base)
    assert sorted(key for key in run.pricing.memory.lines if key[0] == ring) == [(ring, (0,)), (ring, (1,))]
    assert [str(t.resources["s"]) for t in run.tasks if t.process == "qk"] == [f"s.item[slot {k % 2}]"
                                                                              for k in range(n)]


def test_tile_channel_on_separate_cores_is_a_ring_too():
    """One core per process (the default placement): the same ring in GM, the same values."""
    pipe, _, Y, expected = cube_to_vector(3)
    prog = pipe.compile()
    prog.execute()
    np.testing.assert_allclose(Y.data, expected, rtol=1e-5)
    assert {s.lane for s in prog.trace().spans if s.process == "sm" and s.name == "load"} == {"AIV0.MTE2"}
    assert sum(s.bytes for s in prog.trace().spans if s.process == "sm" and s.name == "load") == 3 * TILE_BYTES


def test_items_take_slots_in_turn_for_the_producer_and_the_consumer():
    """Item k sits in slot k % depth, counted by the producer's sends and the consumer's items."""
    pipe, _, _ = three_stages(5, depth=3)
    tasks = pipe.enumerate()
    slot = {(t.process, t.params[0]): {k: str(v) for k, v in t.resources.items() if "item" in str(v)} for t in tasks}
    assert [slot[("copy_in", k)]["dst"] for k in range(5)] == [f"qin.item[slot {k % 3}]" for k in range(5)]
    assert [slot[("compute", k)] for k in range(5)] == [{"src": f"qin.item[slot {k % 3}]",
                                                         "dst": f"qout.item[slot {k % 3}]"} for k in range(5)]


def test_a_cube_to_cube_tile_channel_keeps_its_slots_in_l1():
    """Both ends on the AIC of one core: the producer's matmul result moves L0C -> L1 into the slot (FIX, on chip) and
    the consumer's matmul reads it from L1 without a load; the two slots (32 KiB) are reserved in L1."""
    @kernel
    def first(a: In[Tile[64, 64, F16]], b: In[Tile[64, 64, F16]], s: Out[TILE]):
        tl.store(s, tl.matmul(tl.load(a), tl.load(b)))

    @kernel
    def second(s: In[TILE], c: In[TILE], out: Out[TILE]):
        tl.store(out, tl.matmul(tl.load(s), tl.load(c)))

    rng = np.random.default_rng(3)
    a, b = (rng.random((3, 64, 64)) - 0.5).astype(np.float16), (rng.random((3, 64, 64)) - 0.5).astype(np.float16)
    c = (rng.random((3, 64, 64)) - 0.5).astype(np.float32)
    A, B, C, Z = Tensor(data=a), Tensor(data=b), Tensor(data=c), Tensor(shape=(3, 64, 64), dtype=F32)
    s_ch = Channel("s", depth=2, tile=TILE)
    p1 = process("p1").produces(s_ch).body(for_each(Dense[3](), lambda t: send(s_ch, first[t](a=A[t], b=B[t],
                                                                                          s=s_ch.item))))
    p2 = process("p2").consumes(s_ch).body(consume(s_ch, lambda t: second[t](s=s_ch.item, c=C[t], out=Z[t])))
    run = simulate(connect(p1, p2), NpuCostModel(), RunOptions(placement="shared"))
    expected = np.matmul(np.matmul(a.astype(np.float32), b.astype(np.float32)), c)
    np.testing.assert_allclose(Z.data, expected, rtol=1e-5)
    item0 = [(s.process, s.lane, s.name, s.bytes) for s in run.trace.spans if s.index == 0]
    assert item0 == [("p1", "AIC.MTE2", "load", 8192), ("p1", "AIC.MTE2", "load", 8192),
                     ("p1", "AIC.MTE1", "extract", 0), ("p1", "AIC.MTE1", "extract", 0),
                     ("p1", "AIC.CUBE", "matmul", 0),
                     ("p1", "AIC.FIX", "fix", 0),  # L0C -> L1, into the slot
                     ("p2", "AIC.MTE2", "load", TILE_BYTES),  # C only: the item is already in L1
                     ("p2", "AIC.MTE1", "extract", 0), ("p2", "AIC.MTE1", "extract", 0),
                     ("p2", "AIC.CUBE", "matmul", 0), ("p2", "AIC.FIX", "store", TILE_BYTES)]
    fix = next(s for s in run.trace.spans if s.name == "fix")
    assert fix.end - fix.start == M.l0c_to_l1.fixed_cycles + ceil_div(TILE_BYTES, M.l0c_to_l1.bytes_per_cycle)
    assert [(key, [r.nbytes for r in items]) for key, items in run.pricing.residency.reserved.items()] == [
        ((0, "AIC", "L1"), [2 * TILE_BYTES])]


def test_the_data_parallel_twin_gives_every_item_its_own_tile():
    """The twin runs the pipeline's tasks in program order, not through the channel's slots: each item gets its own
    GM tile there, so the twin computes the pipeline's values."""
    from ptort_lab.explore import data_parallel_twin

    pipe, x, Y = three_stages(5, depth=2)
    twin = data_parallel_twin(pipe, 2)
    assert [str(t.resources["dst"]) for t in twin.enumerate() if t.kernel == "copy_in"] == [
        f"Tensor(qin.items: f32[5, 64, 64])[{k}]" for k in range(5)]
    twin.compile().execute()
    np.testing.assert_array_equal(Y.data, x * x)


# -- misuse ------------------------------------------------------------------------------------------------------
def test_a_tile_channel_with_two_producers_is_refused():
    X = Tensor(shape=(2, 64, 64), dtype=F32)
    ch = Channel("merged", depth=2, tile=TILE)
    makers = [process(f"p{i}").produces(ch).body(for_each(Dense[2](), lambda t: send(ch, copy_in[t](
        src=X[t], dst=ch.item)))) for i in range(2)]
    sink = process("sink").consumes(ch).body(consume(ch, lambda t: copy_out[t](src=ch.item, dst=X[t])))
    with pytest.raises(PipelineError) as e:
        connect(*makers, sink)
    assert e.value.what == ("tile channel 'merged' is produced by 2 processes ('p0' and 'p1'); a tile channel has "
                            "exactly one producer and one consumer, since item k of each sits in buffer slot k % "
                            "depth.")
    assert "join them with consume([a, b], ...)" in e.value.hint
    assert e.value.where is not None and "connect(" in e.value.where.code


def test_a_tile_channel_consumed_by_a_worker_pool_is_refused():
    X = Tensor(shape=(2, 64, 64), dtype=F32)
    ch = Channel("pool", depth=2, tile=TILE)
    src = process("src").produces(ch).body(for_each(Dense[2](), lambda t: send(ch, copy_in[t](src=X[t],
                                                                                          dst=ch.item))))
    worker = process("w").consumes(ch).body(consume(ch, lambda t: copy_out[t](src=ch.item, dst=X[t])))
    with pytest.raises(PipelineError) as e:
        connect(src, replicate(worker, 2))
    assert "tile channel 'pool' is consumed by 2 processes ('w[0]' and 'w[1]')" in e.value.what


def test_item_outside_a_send_or_consume_of_its_channel_is_refused_at_its_line():
    X = Tensor(shape=(2, 64, 64), dtype=F32)
    a, b = Channel("a", depth=2, tile=TILE), Channel("b", depth=2, tile=TILE)
    with pytest.raises(DSLUsageError) as e:
        process("p").produces(a).body(for_each(Dense[2](), lambda t: send(a, copy_in[t](src=X[t], dst=b.item))))
    assert e.value.what == ("process 'p' passes b.item (to 'dst') outside a send to or consume of channel 'b': it "
                            "stands for the buffer slot of the item that send or consume is handling, so here it has "
                            "no slot.")
    assert e.value.hint.startswith("Use it in the task a send fills, send(b, k[t](..., dst=b.item))")
    assert e.value.where is not None and "dst=b.item" in e.value.where.code
    with pytest.raises(DSLUsageError, match="passes a.item .to 'src'. outside a send to or consume of channel 'a'"):
        process("q").body(for_each(Dense[2](), lambda t: copy_out[t](src=a.item, dst=X[t])))


def test_item_in_a_data_parallel_workload_is_refused_at_the_launch_line():
    X = Tensor(shape=(2, 64, 64), dtype=F32)
    ch = Channel("lonely", depth=2, tile=TILE)

    @workload
    def w():
        for t in P(Dense[2]()):
            copy_out[t](src=ch.item, dst=X[t])

    with pytest.raises(DSLUsageError) as e:
        w().enumerate()
    assert e.value.what.startswith("lonely.item is used outside a send to or consume of channel 'lonely'")
    assert e.value.where is not None and "copy_out[t](src=ch.item" in e.value.where.code


def test_item_of_a_token_channel_is_refused():
    ch = Channel("tokens", depth=2)
    with pytest.raises(DSLUsageError) as e:
        _ = ch.item
    assert e.value.what == "channel 'tokens' carries tokens, not tiles, so it has no .item."
    assert e.value.hint.startswith("Make it a tile channel: Channel(name='tokens', depth=2, tile=Tile[rows, cols, "
                                   "dtype])")


@pytest.mark.parametrize("tile, kind, words", [
    (Tile[64, 32, F32], "SHAPE_MISMATCH", "channel 'c' carries f32[64,32] items"),
    (Tile[64, 64, F16], "TYPE_MISMATCH", "channel 'c' carries f16[64,64] items"),
])
def test_an_item_that_does_not_fit_the_kernel_parameter_is_a_type_error(tile, kind, words):
    X = Tensor(shape=(2, 64, 64), dtype=F32)
    ch = Channel("c", depth=2, tile=tile)
    with pytest.raises(PtortTypeError) as e:
        process("p").produces(ch).body(for_each(Dense[2](), lambda t: send(ch, copy_in[t](src=X[t], dst=ch.item))))
    assert e.value.what == f"Kernel 'copy_in' parameter 'dst' is f32[64,64] but {words}, so c.item does not fit it."
    assert e.value.hint.startswith("Give the channel the parameter's tile (tile=Tile[64, 64, DType.F32])")
    assert e.value.where is not None and "dst=ch.item" in e.value.where.code


def test_a_send_to_a_tile_channel_must_write_its_item():
    X = Tensor(shape=(2, 64, 64), dtype=F32)
    ch = Channel("empty_items", depth=2, tile=TILE)
    for body in (lambda t: send(ch, t), lambda t: send(ch, copy_in[t](src=X[t], dst=X[t]))):
        with pytest.raises(DSLUsageError) as e:
            process("p").produces(ch).body(for_each(Dense[2](), body))
        assert e.value.what == ("process 'p' sends to tile channel 'empty_items' but no task of that send writes "
                                "empty_items.item, so the consumer would read a buffer slot nobody filled.")
        assert "make 'empty_items' a token channel" in e.value.hint


@pytest.mark.parametrize("kwargs, error, what", [
    (dict(depth=0, tile=TILE), PtortValueError, "Channel 'c' carries tiles but has depth 0"),
    (dict(depth=2, tile=(64, 64)), PtortTypeError, "Channel 'c' tile= must be a tile type such as Tile[64, 64, "
                                                   "DType.F32], got tuple (64, 64)."),
    (dict(depth=2, tile=Tile), PtortTypeError, "Channel 'c' tile= must be a tile type"),
    (dict(depth=10**6, tile=Tile[256, 256, F32]), PtortValueError, "Channel 'c' holds 1000000 slots of f32[256,256]"),
])
def test_bad_tile_channel_arguments_are_refused(kwargs, error, what):
    with pytest.raises(error) as e:
        Channel("c", **kwargs)
    assert e.value.what.startswith(what)
    assert e.value.hint


def test_every_channel_is_counted_and_two_channels_get_a_common_depth():
    """Two channels of 16 KiB slots at depths 20 and 20 on one AIV: the error counts both (655,360 B, not the first
    alone), and since neither fits beside the other at any depth, the hint gives a depth for both (6: 192 KiB)."""
    tile = Tile[64, 64, F32]
    a_ch = Channel("a_ch", depth=20, tile=tile)
    b_ch = Channel("b_ch", depth=20, tile=tile)
    e = copied_through_one_ub(tile, a_ch, b_ch)
    assert e.value.what.startswith("on-chip state on core 0 needs 655360 bytes of UB")
    assert "tile channel 'a_ch' (20 x f32[64,64]): 327680 B" in e.value.what
    assert "tile channel 'b_ch' (20 x f32[64,64]): 327680 B" in e.value.what
    assert "give tile channel 'a_ch', tile channel 'b_ch' each depth 6 or less" in e.value.hint
