"""Write-after-read on chip: an instruction that overwrites a buffer in place, or frees it, waits until another
pipe's earlier read of it is done (NPU_MODEL §2.2: RAW and WAR edges from tile read/write sets)."""
from __future__ import annotations

from ptort_lab import Dense, DispatchPolicy, DType, In, Out, P, Tensor, Tile, kernel, tl, workload
from ptort_lab.sim.costs import NpuCostModel
from ptort_lab.sim.lowering import buffer_peaks, lower
from ptort_lab.sim.machine import ascend_910b
from ptort_lab.sim.memo import build_template
from ptort_lab.sim.runner import RunOptions, simulate

F16, F32 = DType.F16, DType.F32
M = ascend_910b


@kernel
def store_then_exp(x: In[Tile[128, 384, F32]], z1: Out[Tile[128, 384, F32]], z2: Out[Tile[128, 384, F32]]):
    a = tl.load(x)  # 192 KiB: the whole UB
    tl.store(z1, a)  # MTE3 reads a's buffer ...
    tl.store(z2, tl.exp(a))  # ... which exp (V) overwrites in place: a dies there


@kernel
def store_then_accumulate(a: In[Tile[128, 64, F16]], b: In[Tile[64, 256, F16]], z1: Out[Tile[128, 256, F32]],
                          z2: Out[Tile[128, 256, F32]]):
    A, B = tl.load(a), tl.load(b)
    c = tl.matmul(A, B)  # 128 KiB: the whole L0C
    tl.store(z1, c)  # FIX reads c's L0C buffer ...
    tl.store(z2, tl.matmul(A, B, c))  # ... which the cube accumulates into


@kernel
def store_then_widen(x: In[Tile[64, 256, F16]], y: In[Tile[64, 256, F16]], z0: Out[Tile[64, 256, F16]],
                     z1: Out[Tile[64, 256, F16]], z2: Out[Tile[64, 256, F32]]):
    a = tl.load(x)
    b = tl.load(y)
    tl.store(z0, b)
    tl.store(z1, a)  # queued behind z0's store on MTE3: it reads a until after the cast is done
    tl.store(z2, tl.cast(a, F32))  # the last use of a in program order (V): a's buffer is freed here


def _spans(k, shapes, n=1):
    tensors = {p: Tensor(shape=(n, r, c), dtype=d) for p, (r, c, d) in shapes.items()}

    @workload
    def w():
        for t in P(Dense[n]()):
            k[t](**{p: T[t] for p, T in tensors.items()})
    wl = w().dispatch(DispatchPolicy.round_robin(1)).vector_unit(0) if n > 1 else w()
    run = simulate(wl, NpuCostModel(M), RunOptions(compute_values=False))
    return [(s.task_id, s.lane, s.name, s.start, s.end) for s in run.trace.spans]


def _one(spans, task, lane, name, nth=0):
    return [s for s in spans if s[0] == task and s[1] == lane and s[2] == name][nth]


def test_an_in_place_vector_op_waits_for_the_store_still_reading_its_buffer():
    spans = _spans(store_then_exp, {"x": (128, 384, F32), "z1": (128, 384, F32), "z2": (128, 384, F32)})
    store, exp = _one(spans, 0, "AIV0.MTE3", "store"), _one(spans, 0, "AIV0.V", "exp")
    # one UB buffer (it is the whole UB), so exp can only start once MTE3 has read it out (the store's tail is 0)
    assert {str(b): p.bytes for b, p in buffer_peaks(lower(store_then_exp.trace(), M)).items()} == {"UB": 196608}
    assert exp[3] == store[4]
    assert store[4] - store[3] == 2015 and exp[4] - exp[3] == 1549  # (each as before: only exp's start moved)


def test_an_accumulating_matmul_waits_for_the_fix_store_of_its_accumulator():
    spans = _spans(store_then_accumulate, {"a": (128, 64, F16), "b": (64, 256, F16), "z1": (128, 256, F32),
                                           "z2": (128, 256, F32)})
    fix = _one(spans, 0, "AIC.FIX", "store")
    second = _one(spans, 0, "AIC.CUBE", "matmul", 1)
    assert second[3] == fix[4]


def test_a_buffer_is_freed_when_its_last_reader_on_any_pipe_is_done():
    shapes = {"x": (64, 256, F16), "y": (64, 256, F16), "z0": (64, 256, F16), "z1": (64, 256, F16),
              "z2": (64, 256, F32)}
    spans = _spans(store_then_widen, shapes, n=2)
    store_a = _one(spans, 0, "AIV0.MTE3", "store", 1)  # task 0's store of a, queued behind the store of b
    cast0 = _one(spans, 0, "AIV0.V", "cast")
    assert cast0[4] < store_a[4]  # the cast (a's last use in program order) ends first ...
    # ... and task 1's cast needs 64 KiB of UB: task 0 holds c (64 KiB) until its store, task 1 a and b (32 KiB
    # each), so it takes a's 32 KiB and b's: a's only once the store of a has read it out (not at the cast's end)
    assert _one(spans, 1, "AIV0.V", "cast")[3] == store_a[4]


def test_the_template_records_only_reads_on_another_pipe():
    def template(k):
        pipes: dict[tuple[int, str], int] = {}  # (core, lane) -> its clock, as NpuRun._pipe numbers them
        return build_template(lower(k.trace(), M), 0, 0, lambda core, unit, buffer: None,
                              lambda key: pipes.setdefault(key, len(pipes)))
    exp = template(store_then_exp)
    names = [s.name for s in exp.steps]
    assert names == ["load", "store", "exp", "store"] and exp.marks == 1
    assert [s.mark for s in exp.steps] == [-1, 0, -1, -1]
    assert [s.waits for s in exp.steps] == [(), (), (0,), ()]
    widen = template(store_then_widen)
    cast = next(s for s in widen.steps if s.name == "cast")
    assert len(cast.frees) == 1 and cast.free_waits == ((0,),)
    # a reader on the same pipe needs no record: a copy kernel (load, store) has none
    assert template(_copy).marks == 0


@kernel
def _copy(x: In[Tile[64, 64, F32]], z: Out[Tile[64, 64, F32]]):
    tl.store(z, tl.exp(tl.load(x)))
