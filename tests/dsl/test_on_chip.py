"""On-chip state (issue 12, A): ``Tensor(location=Location.UB | L1 | L0C)`` stays in that buffer of each (core, unit)
that uses it for the whole run (Ascend C's TBuf). Loads of it are free, stores into it are written in place by the op
that makes the value (or moved there), its bytes are reserved before the kernels' tiles, each (core, unit) has its own
copy, and the host reads the copies with ``program.on_chip(tensor)``. Values against numpy, times by hand."""
from __future__ import annotations

import numpy as np
import pytest

from ptort_lab import (
    Dense,
    DispatchPolicy,
    DType,
    In,
    InOut,
    Location,
    Out,
    P,
    Tensor,
    Tile,
    for_each,
    kernel,
    tl,
    workload,
)
from ptort_lab.csp import connect, process
from ptort_lab.errors import CapacityError, PtortTypeError, PtortValueError, SimulationError
from ptort_lab.sim.machine import ascend_910b
from ptort_lab.sim.runner import PinnedCosts, RunOptions, simulate

F16, F32 = DType.F16, DType.F32
M = ascend_910b
LAUNCH = M.launch_overhead_cycles + M.block_dispatch_cycles  # the first block starts after its dispatch: 11050
TILE = Tile[64, 64, F32]
TILE_BYTES = 64 * 64 * 4


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


# GM -> UB, a miss (sim/memory.py): 16384 / 60 = 274 cycles of streaming; MTE2 is held for that + the 118 issue
# cost, the data are in the HBM latency (347) after the stream started
LOAD_PIPE = ceil_div(TILE_BYTES, M.gm_to_ub.bytes_per_cycle) + M.gm_to_ub.fixed_cycles  # 392
LOAD = ceil_div(TILE_BYTES, M.gm_to_ub.bytes_per_cycle) + M.hbm_read_latency_cycles  # 621: the data are in
ADD = M.vec_binary.head_cycles + M.vec_binary.slope_cycles * ceil_div(TILE_BYTES, M.vector_repeat_bytes)  # 138
# UB -> GM, posted into L2: 16384 / 100 = 164 cycles; MTE3 lets go after + 48, the write is visible after + 96
STORE = ceil_div(TILE_BYTES, M.ub_to_gm.bytes_per_cycle) + M.ub_to_gm.fixed_cycles  # 212
STORE_SEEN = ceil_div(TILE_BYTES, M.ub_to_gm.bytes_per_cycle) + M.l2_write_latency_cycles  # 260


@kernel
def accumulate(x: In[TILE], acc: InOut[TILE]):
    tl.store(acc, tl.add(tl.load(acc), tl.load(x)))


@kernel
def emit(acc: In[TILE], y: Out[TILE]):
    tl.store(y, tl.load(acc))


def running_sum(x: np.ndarray) -> np.ndarray:
    out = np.zeros(x.shape[1:], np.float32)
    for tile in x:
        out = out + tile  # F32, in order: exactly what the kernels compute
    return out


def accumulator_process(n: int, x: np.ndarray, acc: Tensor, y: Tensor):
    X = Tensor(data=x, name="X")
    return process("acc").body_func(lambda: [for_each(Dense[n](), lambda t: accumulate[t](x=X[t], acc=acc)),
                                             emit(acc=acc, y=y)])


# -- UB: a running sum that never leaves the unified buffer ---------------------------------------------------------
def test_a_ub_accumulator_stays_on_chip_across_a_process_tasks():
    """Each task loads its X tile (621 cycles) and adds it into the resident acc in place (138): no load or store of
    acc. The final emit stores acc once, after the last add's tail. Values: the F32 running sum, in acc's one copy
    (core 0, AIV0); acc's own array is never written."""
    n = 5
    x = np.random.default_rng(0).random((n, 64, 64), dtype=np.float32)
    ACC = Tensor(shape=(64, 64), dtype=F32, location=Location.UB, name="acc")
    Y = Tensor(shape=(64, 64), dtype=F32, name="Y")
    prog = connect(accumulator_process(n, x, ACC, Y)).compile()
    prog.execute()
    expected = running_sum(x)
    np.testing.assert_array_equal(Y.data, expected)
    copies = prog.on_chip(ACC)
    assert list(copies) == [(0, "AIV0")]
    np.testing.assert_array_equal(copies[(0, "AIV0")], expected)
    assert ACC.data is None
    spans = [(s.name, s.index, s.lane, s.start, s.end) for s in prog.trace().spans]
    period = LOAD + ADD
    assert spans[:2 * n] == [item for k in range(n) for item in (
        ("load", k, "AIV0.MTE2", LAUNCH + k * period, LAUNCH + k * period + LOAD_PIPE),
        ("add", k, "AIV0.V", LAUNCH + k * period + LOAD, LAUNCH + (k + 1) * period))]
    last_add = LAUNCH + n * period
    assert spans[2 * n:] == [("store", n, "AIV0.MTE3", last_add + M.vec_binary.tail_cycles,  # (index: task id)
                              last_add + M.vec_binary.tail_cycles + STORE)]
    assert prog.stats().total_cycles == last_add + M.vec_binary.tail_cycles + STORE_SEEN  # the write is visible


def test_the_same_sum_through_global_memory_loads_and_stores_acc_every_task():
    """The comparison: acc in GM costs a load (an L2 hit after the first task) and a store per task."""
    n = 5
    x = np.random.default_rng(0).random((n, 64, 64), dtype=np.float32)
    ACC = Tensor(shape=(64, 64), dtype=F32, name="acc")
    Y = Tensor(shape=(64, 64), dtype=F32)
    prog = connect(accumulator_process(n, x, ACC, Y)).compile()
    prog.execute()
    np.testing.assert_array_equal(ACC.data, running_sum(x))
    names = [s.name for s in prog.trace().spans if s.name != "add"]
    assert names.count("load") == 2 * n + 1 and names.count("store") == n + 1
    resident = connect(accumulator_process(n, x, Tensor(shape=(64, 64), dtype=F32, location=Location.UB),
                                           Tensor(shape=(64, 64), dtype=F32))).compile()
    resident.execute()
    assert resident.stats().total_cycles < prog.stats().total_cycles


def test_a_copy_starts_from_data_and_data_is_never_written():
    """``data=`` is each copy's starting value; the run never writes it, and on_chip() hands out copies."""
    x = np.ones((2, 64, 64), np.float32)
    start = np.full((64, 64), 10.0, np.float32)
    ACC = Tensor(data=start.copy(), location=Location.UB, name="acc")
    Y = Tensor(shape=(64, 64), dtype=F32)
    prog = connect(accumulator_process(2, x, ACC, Y)).compile()
    prog.execute()
    np.testing.assert_array_equal(Y.data, start + 2)
    np.testing.assert_array_equal(ACC.data, start)
    got = prog.on_chip(ACC)[(0, "AIV0")]
    got[...] = -1
    np.testing.assert_array_equal(prog.on_chip(ACC)[(0, "AIV0")], start + 2)
    prog.execute()  # a second run starts from data again
    np.testing.assert_array_equal(prog.on_chip(ACC)[(0, "AIV0")], start + 2)


# -- L0C: a matmul accumulating in place ----------------------------------------------------------------------------
@kernel
def mm_acc(a: In[Tile[64, 64, F16]], b: In[Tile[64, 64, F16]], acc: InOut[TILE]):
    tl.store(acc, tl.matmul(tl.load(a), tl.load(b), tl.load(acc)))


@kernel
def drain(acc: In[TILE], y: Out[TILE]):
    tl.store(y, tl.load(acc))


def test_an_l0c_accumulator_takes_each_matmul_in_place():
    """TMATMUL_ACC(c, c, a, b) on an L0C-resident c: per task only a and b move (MTE2 loads, MTE1 extracts) and the
    cube accumulates into the resident tile; no FIX until drain stores it to GM once."""
    n = 3
    rng = np.random.default_rng(2)
    a, b = (rng.random((n, 64, 64)) - 0.5).astype(np.float16), (rng.random((n, 64, 64)) - 0.5).astype(np.float16)
    A, B = Tensor(data=a), Tensor(data=b)
    ACC = Tensor(shape=(64, 64), dtype=F32, location=Location.L0C, name="c")
    Y = Tensor(shape=(64, 64), dtype=F32)
    proc = process("cube").body_func(lambda: [for_each(Dense[n](), lambda k: mm_acc[k](a=A[k], b=B[k], acc=ACC)),
                                              drain(acc=ACC, y=Y)])
    prog = connect(proc).compile()
    prog.execute()
    expected = np.zeros((64, 64), np.float32)
    for k in range(n):
        expected = np.matmul(a[k].astype(np.float32), b[k].astype(np.float32)) + expected
    np.testing.assert_array_equal(Y.data, expected)
    np.testing.assert_array_equal(prog.on_chip(ACC)[(0, "AIC")], expected)
    per_task = {}
    for s in prog.trace().spans:
        per_task.setdefault(s.task_id, []).append((s.lane, s.name))
    assert [per_task[k] for k in range(n)] == [[("AIC.MTE2", "load"), ("AIC.MTE2", "load"), ("AIC.MTE1", "extract"),
                                                ("AIC.MTE1", "extract"), ("AIC.CUBE", "matmul")]] * n
    assert per_task[n] == [("AIC.FIX", "store")]


# -- data-parallel cores: one copy per (core, unit) ---------------------------------------------------------------
def data_parallel_sum(n: int, cores: int, x: np.ndarray, acc: Tensor, y: Tensor):
    X = Tensor(data=x)

    @workload
    def w():
        for t in P(Dense[n]()):
            accumulate[t](x=X[t], acc=acc)

    return w().dispatch(DispatchPolicy.round_robin(cores))


def test_each_core_and_vector_unit_keeps_its_own_copy():
    """Four tasks round-robin over two cores, each core dealing its vector tasks to AIV0 and AIV1 in turn: each
    (core, AIV) has its own copy, so a core's second task would add to AIV1's untouched copy, not to the first's sum:
    refused (it used to run and leave a partial sum in each copy). Per-AIV tiles (acc[t // 2]: one per AIV) make
    that split explicit: four copies, one task's tile each. On-chip tensors create no dependency between tasks, so
    core 1 starts as soon as its block is dispatched, one block_dispatch_cycles after core 0's (NPU_MODEL §3.5)."""
    x = np.random.default_rng(3).random((4, 64, 64), dtype=np.float32)
    ACC = Tensor(shape=(64, 64), dtype=F32, location=Location.UB)
    with pytest.raises(SimulationError, match=r"task 2 \(accumulate\) reads on-chip tensor f32\[64, 64\] on core 0 "
                                              r"AIV1, but only AIV0 of that core wrote it"):
        data_parallel_sum(4, 2, x, ACC, None).compile().execute()
    X = Tensor(data=x)
    PER_AIV = Tensor(shape=(2, 64, 64), dtype=F32, location=Location.UB)

    @workload
    def w():
        for t in P(Dense[4]()):
            accumulate[t](x=X[t], acc=PER_AIV[t // 2])

    prog = w().dispatch(DispatchPolicy.round_robin(2)).compile()
    prog.execute()
    copies = prog.on_chip(PER_AIV)
    assert list(copies) == [(0, "AIV0"), (0, "AIV1"), (1, "AIV0"), (1, "AIV1")]
    for (core, unit), t in zip(copies, (0, 2, 1, 3)):
        np.testing.assert_array_equal(copies[(core, unit)][t // 2], x[t])
    starts = sorted(s.start for s in prog.trace().spans if s.name == "load" and s.index in (0, 1))
    assert starts == [LAUNCH, LAUNCH + M.block_dispatch_cycles]


def test_one_vector_unit_per_core_sums_that_core_tasks():
    """``.vector_unit(0)`` keeps a core's tasks on AIV0: one copy per core, summing its own tasks."""
    x = np.random.default_rng(4).random((4, 64, 64), dtype=np.float32)
    ACC = Tensor(shape=(64, 64), dtype=F32, location=Location.UB)
    prog = data_parallel_sum(4, 2, x, ACC, None).vector_unit(0).compile()
    prog.execute()
    copies = prog.on_chip(ACC)
    assert list(copies) == [(0, "AIV0"), (1, "AIV0")]
    np.testing.assert_array_equal(copies[(0, "AIV0")], x[0] + x[2])
    np.testing.assert_array_equal(copies[(1, "AIV0")], x[1] + x[3])


def test_a_core_that_issues_ahead_still_reads_the_last_write_of_its_copy():
    """A data-parallel core issues its next task once this one's first instruction started, and on-chip tensors add
    no dependency: emit's MTE3 store of acc still waits for accumulate's add into acc (plus the V tail)."""
    x = np.random.default_rng(5).random((1, 64, 64), dtype=np.float32)
    X = Tensor(data=x)
    ACC = Tensor(shape=(64, 64), dtype=F32, location=Location.UB)
    Y = Tensor(shape=(64, 64), dtype=F32)

    @workload
    def w():
        accumulate(x=X[0], acc=ACC)
        emit(acc=ACC, y=Y)

    prog = w().vector_unit(0).compile()
    prog.execute()
    np.testing.assert_array_equal(Y.data, x[0])
    (load, add, store) = [(s.name, s.start, s.end) for s in prog.trace().spans]
    assert add == ("add", LAUNCH + LOAD, LAUNCH + LOAD + ADD)
    assert store == ("store", LAUNCH + LOAD + ADD + M.vec_binary.tail_cycles,
                     LAUNCH + LOAD + ADD + M.vec_binary.tail_cycles + STORE)


# -- where the state lives: moves, cross-unit paths, capacity -------------------------------------------------------
def test_a_value_that_cannot_be_made_in_place_is_moved_with_a_v_copy():
    """acc's old value is read after the new one is made (the kernel stores the old one to GM too), so the add cannot
    write the resident tile: the store into acc is a V copy (vec_unary per 256 B)."""
    @kernel
    def keep_old(x: In[TILE], acc: InOut[TILE], old: Out[TILE]):
        a = tl.load(acc)
        s = tl.add(a, tl.load(x))
        tl.store(old, a)
        tl.store(acc, s)

    x = np.random.default_rng(6).random((1, 64, 64), dtype=np.float32)
    X, OLD = Tensor(data=x), Tensor(shape=(64, 64), dtype=F32)
    ACC = Tensor(data=np.full((64, 64), 2.0, np.float32), location=Location.UB)
    prog = connect(process("p").body_func(lambda: keep_old(x=X[0], acc=ACC, old=OLD))).compile()
    prog.execute()
    np.testing.assert_array_equal(OLD.data, np.full((64, 64), 2.0, np.float32))
    np.testing.assert_array_equal(prog.on_chip(ACC)[(0, "AIV0")], x[0] + 2)
    spans = [(s.lane, s.name, s.end - s.start) for s in prog.trace().spans]
    copy = M.vec_unary.slope_cycles * ceil_div(TILE_BYTES, M.vector_repeat_bytes)  # 64; V is busy: no head
    assert spans == [("AIV0.MTE2", "load", LOAD_PIPE), ("AIV0.V", "add", ADD), ("AIV0.MTE3", "store", STORE),
                     ("AIV0.V", "copy", copy)]


def test_a_matmul_result_stored_into_a_ub_tensor_crosses_through_gm():
    """The cube's result reaches an AIV's UB through GM (FIX to GM, MTE2 from it), the last hop straight into the
    resident tile."""
    @kernel
    def product(a: In[Tile[64, 64, F16]], b: In[Tile[64, 64, F16]], acc: Out[TILE]):
        tl.store(acc, tl.matmul(tl.load(a), tl.load(b)))

    rng = np.random.default_rng(7)
    a, b = (rng.random((64, 64)) - 0.5).astype(np.float16), (rng.random((64, 64)) - 0.5).astype(np.float16)
    ACC = Tensor(shape=(64, 64), dtype=F32, location=Location.UB)
    prog = connect(process("p").body_func(lambda: product(a=Tensor(data=a), b=Tensor(data=b), acc=ACC))).compile()
    prog.execute()
    np.testing.assert_array_equal(prog.on_chip(ACC)[(0, "AIV0")], np.matmul(a.astype(np.float32),
                                                                            b.astype(np.float32)))
    assert [(s.lane, s.name) for s in prog.trace().spans][-2:] == [("AIC.FIX", "fix"), ("AIV0.MTE2", "load")]


def test_an_l1_tensor_read_by_the_vector_unit_is_refused_at_the_op():
    @kernel
    def bad(q: In[TILE], y: Out[TILE]):
        tl.store(y, tl.exp(tl.load(q)))

    Q = Tensor(shape=(64, 64), dtype=F32, location=Location.L1, name="q")
    prog = connect(process("p").body_func(lambda: bad(q=Q, y=Tensor(shape=(64, 64), dtype=F32)))).compile()
    with pytest.raises(PtortValueError) as e:
        prog.execute()
    assert e.value.what.startswith("kernel 'bad': `exp")
    assert "needs tile 'q' in UB (for the vector unit or a store to global memory), but it lives in L1" in e.value.what
    assert e.value.hint.startswith("Give the tensor location=Location.UB")
    assert e.value.where is not None and "tl.exp(tl.load(q))" in e.value.where.code


def test_on_chip_tensors_over_capacity_are_refused_before_the_run():
    """Two 128 KiB UB tensors used by one process need 256 KiB of a 192 KiB UB: named with their lines and a fix."""
    big = Tile[256, 128, F32]

    @kernel
    def both(a: InOut[big], b: InOut[big]):
        tl.store(a, tl.add(tl.load(a), 1.0))
        tl.store(b, tl.add(tl.load(b), 1.0))

    A = Tensor(shape=(256, 128), dtype=F32, location=Location.UB, name="first")
    B = Tensor(shape=(256, 128), dtype=F32, location=Location.UB, name="second")
    prog = connect(process("p").body_func(lambda: both(a=A, b=B))).compile()
    with pytest.raises(CapacityError) as e:
        prog.execute()
    what = e.value.what
    assert what.startswith("on-chip state on core 0 needs 262144 bytes of UB but the UB of AIV0 holds 196608 bytes "
                           "(192 KiB): tensor 'first' f32[256, 128]: 131072 B, made at test_on_chip.py:")
    assert "tensor 'second' f32[256, 128]: 131072 B" in what and "used by process 'p'" in what
    assert "make tensor 'first' f32[256, 128] at most 65536 bytes (it has 131072)" in e.value.hint
    assert e.value.where is not None and "name=\"first\"" in e.value.where.code


def test_a_data_parallel_core_reserves_its_copy_at_first_use():
    """A data-parallel core reserves an on-chip tensor when its first task using it runs; too big is refused there."""
    big = Tile[512, 128, F32]  # 256 KiB > 192 KiB

    @kernel
    def bump(a: InOut[big]):
        tl.store(a, tl.add(tl.load(a), 1.0))

    A = Tensor(shape=(512, 128), dtype=F32, location=Location.UB, name="huge")

    @workload
    def w():
        bump(a=A)

    with pytest.raises(CapacityError) as e:
        w().compile(compute_values=False).execute()
    assert "needs 262144 bytes of UB but the UB of AIV0 holds 196608 bytes" in e.value.what
    assert "used by core 0's tasks" in e.value.what


def test_a_process_reading_a_copy_another_core_writes_is_refused():
    """Each (core, unit) has its own copy: a reader on another core would read its own untouched copy."""
    x = np.ones((2, 64, 64), np.float32)
    ACC = Tensor(shape=(64, 64), dtype=F32, location=Location.UB, name="acc")
    X = Tensor(data=x)
    writer = process("writer").body(for_each(Dense[2](), lambda t: accumulate[t](x=X[t], acc=ACC)))
    reader = process("reader").body(for_each(Dense[1](), lambda t: emit[t](acc=ACC, y=X[t])))
    pipe = connect(writer, reader)
    with pytest.raises(PtortValueError) as e:
        pipe.compile().execute()
    assert e.value.what == ("on-chip tensor 'acc' is written by process 'writer' (core 0, AIV0) but read by process "
                            "'reader' on core 1, AIV0, whose copy no process writes: each (core, unit) keeps its own "
                            "copy of an on-chip tensor, so it would read its own untouched copy.")
    assert e.value.hint.startswith("Place 'reader' with 'writer' (same core and unit: they share the copy)")
    assert e.value.where is not None and "emit[t](acc=ACC" in e.value.where.code
    shared = connect(process("writer").body(for_each(Dense[2](), lambda t: accumulate[t](x=X[t], acc=ACC))),
                     process("reader").body(for_each(Dense[1](), lambda t: emit[t](acc=ACC, y=X[t]))))
    shared.place("shared").compile(compute_values=False).execute()  # same core and AIV: one copy, fine


def test_host_api_misuse_is_refused():
    ACC = Tensor(shape=(64, 64), dtype=F32, location=Location.UB, name="acc")
    G = Tensor(shape=(64, 64), dtype=F32, name="g")
    x = np.ones((1, 64, 64), np.float32)
    prog = connect(accumulator_process(1, x, ACC, Tensor(shape=(64, 64), dtype=F32))).compile()
    with pytest.raises(PtortValueError, match="needs a run first"):
        prog.on_chip(ACC)
    prog.execute()
    with pytest.raises(PtortValueError) as e:
        prog.on_chip(G)
    assert e.value.what == ("program.on_chip(Tensor(g: f32[64, 64])): that tensor lives in global memory "
                            "(location=Location.Global), so its values are in its array.")
    with pytest.raises(PtortTypeError, match="takes a Tensor, got ndarray"):
        prog.on_chip(x)
    assert prog.on_chip(Tensor(shape=(4,), dtype=F32, location=Location.L1)) == {}  # never used: no copy
    timing = connect(accumulator_process(1, x, ACC, Tensor(shape=(64, 64), dtype=F32))).compile(
        compute_values=False)
    timing.execute()
    with pytest.raises(PtortValueError, match="the last run was timing-only"):
        timing.on_chip(ACC)


def test_tensor_location_must_be_a_location_and_on_chip_tensors_are_not_sliced():
    with pytest.raises(PtortTypeError) as e:
        Tensor(shape=(64, 64), dtype=F32, location="ub")
    assert e.value.what == "Tensor location must be a Location, got str 'ub'."
    T = Tensor(shape=(4, 64, 64), dtype=F32, location=Location.UB, name="t")
    assert repr(T) == "Tensor(t: f32[4, 64, 64] in UB)" and T.on_chip and not Tensor(shape=(2,)).on_chip
    with pytest.raises(PtortTypeError, match="an on-chip tensor cannot be sliced"):
        T.slice(0, 2)


def test_pinned_costs_compute_the_same_on_chip_values():
    """On-chip values do not depend on the cost model: PinnedCosts gives the same copies."""
    x = np.random.default_rng(8).random((3, 64, 64), dtype=np.float32)
    ACC = Tensor(shape=(64, 64), dtype=F32, location=Location.UB)
    Y = Tensor(shape=(64, 64), dtype=F32)
    run = simulate(connect(accumulator_process(3, x, ACC, Y)), PinnedCosts(), RunOptions())
    assert run.on_chip is not None
    np.testing.assert_array_equal(run.on_chip.of(ACC)[(0, "AIV0")], running_sum(x))


# -- all three forms together: one query tile of flash attention on one core ------------------------------------------
FA_M, FA_N, FA_D, FA_BLOCKS = 64, 128, 128, 4
FA_SCALE = 1 / float(np.sqrt(FA_D))


@kernel
def fa_qk_first(q: In[Tile[FA_M, FA_D, F16]], q_l1: Out[Tile[FA_M, FA_D, F16]], kt: In[Tile[FA_D, FA_N, F16]],
                s: Out[Tile[FA_M, FA_N, F32]]):
    qq = tl.load(q)
    tl.store(q_l1, qq)  # loaded from GM straight into the L1-resident copy
    tl.store(s, tl.matmul(qq, tl.load(kt)))


@kernel
def fa_qk(q_l1: In[Tile[FA_M, FA_D, F16]], kt: In[Tile[FA_D, FA_N, F16]], s: Out[Tile[FA_M, FA_N, F32]]):
    tl.store(s, tl.matmul(tl.load(q_l1), tl.load(kt)))


@kernel
def fa_softmax(s: In[Tile[FA_M, FA_N, F32]], m: InOut[Tile[FA_M, 1, F32]], ls: InOut[Tile[FA_M, 1, F32]],
               p: Out[Tile[FA_M, FA_N, F16]], alpha: Out[Tile[FA_M, 1, F32]]):
    x = tl.mul(tl.load(s), FA_SCALE)
    m_old = tl.load(m)
    m_new = tl.max(m_old, tl.rowmax(x))
    e = tl.exp(tl.sub(x, m_new))
    a = tl.exp(tl.sub(m_old, m_new))
    tl.store(ls, tl.add(tl.mul(tl.load(ls), a), tl.rowsum(e)))
    tl.store(m, m_new)
    tl.store(alpha, a)
    tl.store(p, tl.cast(e, F16))


@kernel
def fa_pv(p: In[Tile[FA_M, FA_N, F16]], v: In[Tile[FA_N, FA_D, F16]], o: Out[Tile[FA_M, FA_D, F32]]):
    tl.store(o, tl.matmul(tl.load(p), tl.load(v)))


@kernel
def fa_update(pv: In[Tile[FA_M, FA_D, F32]], alpha: In[Tile[FA_M, 1, F32]], acc: InOut[Tile[FA_M, FA_D, F32]]):
    tl.store(acc, tl.add(tl.mul(tl.load(acc), tl.load(alpha)), tl.load(pv)))


@kernel
def fa_finish(acc: In[Tile[FA_M, FA_D, F32]], ls: In[Tile[FA_M, 1, F32]], y: Out[Tile[FA_M, FA_D, F32]]):
    tl.store(y, tl.div(tl.load(acc), tl.load(ls)))


def test_flash_attention_keeps_q_o_m_l_on_chip_and_moves_only_the_cube_vector_items():
    """QK (AIC) -> softmax (AIV0) -> PV (AIC) -> update (AIV0, a join of PV and alpha) on one core: Q is loaded once
    into L1, m, l and O stay in AIV0's UB, alpha stays in a UB tile channel, and S, P and PV go through GM rings. GM
    traffic is exactly Q once, K and V per block, each ring item written and read once, and Y once."""
    from ptort_lab import cond
    from ptort_lab.csp import Channel, consume, send

    rng = np.random.default_rng(9)
    q = rng.standard_normal((FA_M, FA_D)).astype(np.float16)
    k = rng.standard_normal((FA_BLOCKS * FA_N, FA_D)).astype(np.float16)
    v = rng.standard_normal((FA_BLOCKS * FA_N, FA_D)).astype(np.float16)
    Q = Tensor(data=q)
    KT = Tensor(data=np.ascontiguousarray(k.reshape(FA_BLOCKS, FA_N, FA_D).transpose(0, 2, 1)))
    V, Y = Tensor(data=v.reshape(FA_BLOCKS, FA_N, FA_D)), Tensor(shape=(FA_M, FA_D), dtype=F32)
    q_l1 = Tensor(shape=(FA_M, FA_D), dtype=F16, location=Location.L1, name="q_l1")
    m = Tensor(data=np.full((FA_M, 1), -np.inf, np.float32), location=Location.UB, name="m")
    ls = Tensor(shape=(FA_M, 1), dtype=F32, location=Location.UB, name="l")
    o = Tensor(shape=(FA_M, FA_D), dtype=F32, location=Location.UB, name="O")
    s_ch, p_ch = Channel("s", depth=2, tile=Tile[FA_M, FA_N, F32]), Channel("p", depth=2, tile=Tile[FA_M, FA_N, F16])
    a_ch, o_ch = Channel("alpha", depth=2, tile=Tile[FA_M, 1, F32]), Channel("pv", depth=2, tile=Tile[FA_M, FA_D, F32])
    qk = process("qk").produces(s_ch).body(for_each(Dense[FA_BLOCKS](), lambda j: send(s_ch, cond(
        j.eq(0), fa_qk_first[j](q=Q, q_l1=q_l1, kt=KT[j], s=s_ch.item), fa_qk[j](q_l1=q_l1, kt=KT[j], s=s_ch.item)),
        token=j)))
    sm = process("sm").consumes(s_ch).produces(p_ch, a_ch).body(consume(s_ch, lambda j: send(p_ch, send(
        a_ch, fa_softmax[j](s=s_ch.item, m=m, ls=ls, p=p_ch.item, alpha=a_ch.item), token=j), token=j)))
    pv = process("pv").consumes(p_ch).produces(o_ch).body(consume(p_ch, lambda j: send(
        o_ch, fa_pv[j](p=p_ch.item, v=V[j], o=o_ch.item))))
    up = process("up").consumes(o_ch, a_ch).body(consume([o_ch, a_ch], lambda j, ja: [
        fa_update[j](pv=o_ch.item, alpha=a_ch.item, acc=o),
        cond(j.eq(FA_BLOCKS - 1), fa_finish[j](acc=o, ls=ls, y=Y))]))
    prog = connect(qk, sm, pv, up).place("shared").compile()
    prog.execute()
    s = (q.astype(np.float64) @ k.astype(np.float64).T) * FA_SCALE
    p = np.exp(s - s.max(1, keepdims=True))
    np.testing.assert_allclose(Y.data, (p / p.sum(1, keepdims=True)) @ v.astype(np.float64), atol=2e-3)
    ring = 2 * (FA_M * FA_N * 4 + FA_M * FA_N * 2 + FA_M * FA_D * 4)  # S, P and PV: one write and one read each
    kv = 2 * FA_N * FA_D * 2
    assert prog.stats().bytes_moved == FA_M * FA_D * 2 + FA_BLOCKS * (kv + ring) + FA_M * FA_D * 4
    loads_of_q = [sp for sp in prog.trace().spans if sp.process == "qk" and sp.name == "load" and
                  sp.bytes == FA_M * FA_D * 2]
    assert len(loads_of_q) == 1
    assert not [sp for sp in prog.trace().spans if sp.process == "up" and sp.name == "store" and sp.index < 3]


# -- how a kernel lowers with resident parameters (sim/lowering.py) -------------------------------------------------
def instructions(k, resident):
    from ptort_lab.sim.lowering import lower
    from ptort_lab.sim.machine import Buffer

    plan = lower(k.trace(), M, tuple((name, Buffer(buf)) for name, buf in resident))
    return [(ins.unit, str(ins.pipe), ins.name, ins.write in plan.resident.values()) for ins in plan.instrs]


@kernel
def stash(src: In[Tile[64, 64, F16]], keep: Out[Tile[64, 64, F16]], out: Out[Tile[64, 64, F16]]):
    x = tl.load(src)
    tl.store(keep, x)
    tl.store(out, x)


@kernel
def acc_then_old(a: In[Tile[64, 64, F16]], b: In[Tile[64, 64, F16]], acc: InOut[TILE], old: Out[TILE]):
    c0 = tl.load(acc)
    c = tl.matmul(tl.load(a), tl.load(b), c0)
    tl.store(old, c0)  # the old accumulator is still needed after the matmul: it cannot accumulate in place
    tl.store(acc, c)


@pytest.mark.parametrize("k, resident, expected", [
    # a UB-resident tile stored to GM: one MTE3 store from its slot, no load
    (emit, [("acc", "UB")], [("AIV", "MTE3", "store", False)]),
    # kept in L1 and also stored to GM: loaded into the L1 slot and into UB for the store
    (stash, [("keep", "L1")], [("AIC", "MTE2", "load", True), ("AIV", "MTE2", "load", False),
                               ("AIV", "MTE3", "store", False)]),
    # kept in UB and stored to GM: one load into the slot, the store reads it there
    (stash, [("keep", "UB")], [("AIV", "MTE2", "load", True), ("AIV", "MTE3", "store", False)]),
    # an L0C accumulator whose old value is still used: a new L0C tile, then a move into the slot (estimate: FIX rate)
    (acc_then_old, [("acc", "L0C")], [("AIC", "MTE2", "load", False), ("AIC", "MTE2", "load", False),
                                      ("AIC", "MTE1", "extract", False), ("AIC", "MTE1", "extract", False),
                                      ("AIC", "CUBE", "matmul", False), ("AIC", "FIX", "store", False),
                                      ("AIC", "FIX", "copy", True)]),
])
def test_resident_parameters_lower_to_the_moves_they_need(k, resident, expected):
    assert instructions(k, resident) == expected
