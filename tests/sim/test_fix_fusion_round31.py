"""Round 31: FIX casts and rectifies on its way out of L0C (NPU_MODEL §2.1, "L0C -> GM ... with fused
cast/quant/relu"; pto-isa a2a3 TStore.hpp: GetCastPreQuantMode, GetScalarPreQuantMode, ReluPreMode). A GM store of
cast(m) and/or relu(m) of a matmul result m, each step used only by the next, is one FIX store of the stored dtype's
bytes: no FIX staging of the F32 result, no AIV load, V op or MTE3 store. The values and the Kernel IR are unchanged.

Also: tl.silu's tile / tile division pays §3.2's count mode like tl.div of two tiles does.

Hand timings (ascend_910b, one task on one idle core, every GM read an HBM miss, times from the block's start):
  GM -> L1 load of a 128 x 128 F16 tile (32 KiB): streams at min(80, 64 x 512 / 347 x 0.75 = 70) B/cycle =
    ceil(32768 / 70) = 469 cycles, the MTE2 pipe held 469 + 210 (issue) = 679, the data ready 469 + 347 = 816 after
    its issue. The second load issues at 679: pipe to 1358, data at 679 + 816 = 1495.
  TEXTRACT (MTE1, 40 + ceil32(bytes) / rate): A 40 + 32768 / 256 = 168 (816 -> 984); B 40 + 32768 / 128 = 296
    (1495 -> 1791).
  Matmul (§3.4): 6 + ceil(128/16) x ceil(128/16) x ceil(128/16) = 6 + 512 = 518 (1791 -> 2309).
  FIX store (§3.1 with issue 13's GM write): the pipe held ceil(bytes / 75) + 48, the data visible 96 cycles after
    the last byte, which ends the task: F16 (32 KiB) 437 + 48 = 485 (2309 -> 2794), visible at 2309 + 437 + 96 =
    2842; F32 (64 KiB) 874 + 48 = 922 (2309 -> 3231), visible at 2309 + 874 + 96 = 3279.
"""
from __future__ import annotations

import numpy as np
import pytest

from ptort_lab import Dense, DispatchPolicy, DType, In, Out, P, Tensor, Tile, kernel, tl, workload
from ptort_lab.dsl.printer import print_kernel
from ptort_lab.sim.costs import NpuCostModel
from ptort_lab.sim.lowering import _vector_cycles, describe, lower
from ptort_lab.sim.machine import Buffer, Pipe, ascend_910b
from ptort_lab.sim.runner import RunOptions, simulate

F16, F32, BF16, I8, I32, U8 = DType.F16, DType.F32, DType.BF16, DType.I8, DType.I32, DType.U8
M = ascend_910b
T0 = M.launch_overhead_cycles + M.block_dispatch_cycles  # the first block's start (§3.5)

# (lane, name, start, end, bytes) of the cube side of a 128 x 128 x 128 F16 matmul, worked out above
CUBE_SIDE = [
    ("AIC.MTE2", "load", 0, 679, 32768),
    ("AIC.MTE2", "load", 679, 1358, 32768),
    ("AIC.MTE1", "extract", 816, 984, 0),
    ("AIC.MTE1", "extract", 1495, 1791, 0),
    ("AIC.CUBE", "matmul", 1791, 2309, 0),
]


def run_one(k, shapes: dict[str, tuple[int, int, DType]], data: dict[str, np.ndarray] | None = None,
            values: bool = False):
    """Run kernel ``k`` once (one task, one core): the run, its spans as (lane, name, start, end, bytes) from the
    block's start, and its tensors."""
    tens = {p: Tensor(data=data[p][None]) if data and p in data else Tensor(shape=(1, r, c), dtype=d)
            for p, (r, c, d) in shapes.items()}

    @workload
    def w():
        for t in P(Dense[1]()):
            k[t](**{p: T[t] for p, T in tens.items()})

    run = simulate(w().dispatch(DispatchPolicy.round_robin(1)), NpuCostModel(M), RunOptions(compute_values=values))
    spans = [(s.lane, s.name, s.start - T0, s.end - T0, s.bytes) for s in run.trace.spans]
    return run, spans, tens


def gemm(out_dtype: DType, body):
    """A 128 x 128 x 128 F16 kernel storing ``body(m)`` (m the F32 matmul result) into an ``out_dtype`` tile."""
    @kernel
    def k(x: In[Tile[128, 128, F16]], w: In[Tile[128, 128, F16]], y: Out[Tile[128, 128, out_dtype]]):
        tl.store(y, body(tl.matmul(tl.load(x), tl.load(w))))
    return k


SHAPES_F16 = {"x": (128, 128, F16), "w": (128, 128, F16), "y": (128, 128, F16)}
SHAPES_F32 = {"x": (128, 128, F16), "w": (128, 128, F16), "y": (128, 128, F32)}


# -- timing: one FIX store of the output dtype's bytes -----------------------------------------------------------------
def test_store_of_a_cast_matmul_is_one_fix_store_of_the_f16_bytes():
    """store(cast(m, F16)): the cube side, then FIX writes 32 KiB (437 + 48 cycles), visible at 2842; before, FIX
    staged 64 KiB of F32, an AIV loaded it, cast it on V and stored it on MTE3 (4995)."""
    run, spans, _ = run_one(gemm(F16, lambda m: tl.cast(m, F16)), SHAPES_F16)
    assert spans == CUBE_SIDE + [("AIC.FIX", "store", 2309, 2794, 32768)]
    assert run.trace.makespan - T0 == 2842


def test_an_f16_store_is_now_faster_than_an_f32_one():
    """Half the bytes through FIX: 2842 against the plain F32 store's 3279 (before: the F16 output took 4995)."""
    run, spans, _ = run_one(gemm(F32, lambda m: m), SHAPES_F32)
    assert spans == CUBE_SIDE + [("AIC.FIX", "store", 2309, 3231, 65536)]
    assert run.trace.makespan - T0 == 3279


@pytest.mark.parametrize("body", [lambda m: tl.relu(m), lambda m: tl.cast(m, F32)], ids=["relu", "cast_to_f32"])
def test_store_of_a_relu_matmul_is_the_plain_f32_fix_store(body):
    """store(relu(m)) (ReluPreMode::NormalRelu) and a no-op cast: the same spans as store(m), FIX only."""
    run, spans, _ = run_one(gemm(F32, body), SHAPES_F32)
    assert spans == CUBE_SIDE + [("AIC.FIX", "store", 2309, 3231, 65536)]
    assert run.trace.makespan - T0 == 3279


@pytest.mark.parametrize("body", [lambda m: tl.cast(tl.relu(m), F16), lambda m: tl.relu(tl.cast(m, F16))],
                         ids=["cast_of_relu", "relu_of_cast"])
def test_relu_and_cast_together_are_one_fix_store(body):
    """Both orders (a ReLU commutes with a sign-keeping rounding): one FIX store of F16 bytes, 2842."""
    run, spans, _ = run_one(gemm(F16, body), SHAPES_F16)
    assert spans == CUBE_SIDE + [("AIC.FIX", "store", 2309, 2794, 32768)]
    assert run.trace.makespan - T0 == 2842


def test_a_bf16_output_is_fused_too():
    """F32 -> BF16 is the other parameterless FIX conversion (GetCastPreQuantMode)."""
    shapes = {"x": (128, 128, F16), "w": (128, 128, F16), "y": (128, 128, BF16)}
    run, spans, _ = run_one(gemm(BF16, lambda m: tl.cast(m, BF16)), shapes)
    assert spans == CUBE_SIDE + [("AIC.FIX", "store", 2309, 2794, 32768)]


@pytest.mark.parametrize("acc_in, out", [(I8, I8), (I8, U8), (I8, F16), (I8, DType.I16), (F16, I8), (F16, U8)])
def test_quant_casts_fix_makes_are_fused(acc_in, out):
    """The pre-quant modes (scale 1 for a plain cast): F32 -> I8/U8, I32 -> I8/U8/F16/I16. One FIX store of
    32 x 32 x itemsize bytes, nothing on an AIV."""
    @kernel
    def k(x: In[Tile[32, 64, acc_in]], w: In[Tile[64, 32, acc_in]], y: Out[Tile[32, 32, out]]):
        tl.store(y, tl.cast(tl.matmul(tl.load(x), tl.load(w)), out))

    shapes = {"x": (32, 64, acc_in), "w": (64, 32, acc_in), "y": (32, 32, out)}
    _, spans, _ = run_one(k, shapes)
    assert [(lane, name) for lane, name, *_ in spans][-2:] == [("AIC.CUBE", "matmul"), ("AIC.FIX", "store")]
    assert spans[-1][4] == 32 * 32 * out.itemsize
    assert not any(lane.startswith("AIV") for lane, *_ in spans)


# -- when the old path stays -------------------------------------------------------------------------------------------
UNFUSED = [("AIC.FIX", "fix"), ("AIV0.MTE2", "load"), ("AIV0.V", "cast"), ("AIV0.MTE3", "store")]


def test_a_cast_result_with_another_use_keeps_the_vector_path():
    """The cast result is stored twice: it is computed once on V, as before (FIX stages m, the AIV loads it)."""
    @kernel
    def k(x: In[Tile[128, 128, F16]], w: In[Tile[128, 128, F16]], y: Out[Tile[128, 128, F16]],
          z: Out[Tile[128, 128, F16]]):
        c = tl.cast(tl.matmul(tl.load(x), tl.load(w)), F16)
        tl.store(y, c)
        tl.store(z, c)

    _, spans, _ = run_one(k, {**SHAPES_F16, "z": (128, 128, F16)})
    assert [(lane, name) for lane, name, *_ in spans][5:] == UNFUSED + [("AIV0.MTE3", "store")]
    assert spans[5][4] == 65536  # the F32 result staged through GM


def test_a_cast_result_also_used_by_a_vector_op_keeps_the_vector_path():
    @kernel
    def k(x: In[Tile[64, 64, F16]], w: In[Tile[64, 64, F16]], y: Out[Tile[64, 64, F16]],
          z: Out[Tile[64, 64, F16]]):
        c = tl.cast(tl.matmul(tl.load(x), tl.load(w)), F16)
        tl.store(y, c)
        tl.store(z, tl.add(c, c))

    plan = lower(k.trace(), M)
    assert [(i.unit, i.pipe, i.name) for i in plan.instrs if i.name in ("cast", "add", "store")] == [
        ("AIV", Pipe.V, "cast"), ("AIV", Pipe.MTE3, "store"), ("AIV", Pipe.V, "add"), ("AIV", Pipe.MTE3, "store")]


@pytest.mark.parametrize("acc_in, out", [(F16, I32), (I8, F32), (F16, DType.I16)])
def test_a_conversion_fix_does_not_make_stays_on_v(acc_in, out):
    """F32 -> I32, I32 -> F32 and F32 -> I16 are no FIX mode in TStore.hpp: the cast runs on V."""
    @kernel
    def k(x: In[Tile[32, 64, acc_in]], w: In[Tile[64, 32, acc_in]], y: Out[Tile[32, 32, out]]):
        tl.store(y, tl.cast(tl.matmul(tl.load(x), tl.load(w)), out))

    plan = lower(k.trace(), M)
    assert [(i.unit, i.pipe, i.name) for i in plan.instrs][-4:] == [
        ("AIC", Pipe.FIX, "fix"), ("AIV", Pipe.MTE2, "load"), ("AIV", Pipe.V, "cast"), ("AIV", Pipe.MTE3, "store")]


def test_two_casts_in_a_row_are_not_fused():
    """F32 -> F16 -> I8 rounds twice: no single FIX mode does that (only one cast and one relu fuse)."""
    @kernel
    def k(x: In[Tile[32, 32, F16]], w: In[Tile[32, 32, F16]], y: Out[Tile[32, 32, I8]]):
        tl.store(y, tl.cast(tl.cast(tl.matmul(tl.load(x), tl.load(w)), F16), I8))

    names = [(i.pipe, i.name) for i in lower(k.trace(), M).instrs]
    assert (Pipe.V, "cast") in names and (Pipe.FIX, "fix") in names


def test_a_vector_op_that_is_not_a_cast_or_relu_is_not_fused():
    @kernel
    def k(x: In[Tile[32, 32, F16]], w: In[Tile[32, 32, F16]], y: Out[Tile[32, 32, F16]]):
        tl.store(y, tl.cast(tl.mul(tl.matmul(tl.load(x), tl.load(w)), 0.5), F16))

    names = [(i.pipe, i.name) for i in lower(k.trace(), M).instrs]
    assert (Pipe.V, "mul") in names and (Pipe.V, "cast") in names


def test_a_store_into_a_resident_tile_keeps_the_vector_path():
    """A store into an on-chip (UB-resident) tile is no GM store: the cast still runs on V, into the slot."""
    @kernel
    def k(x: In[Tile[32, 32, F16]], w: In[Tile[32, 32, F16]], y: Out[Tile[32, 32, F16]]):
        tl.store(y, tl.cast(tl.matmul(tl.load(x), tl.load(w)), F16))

    plan = lower(k.trace(), M, resident=(("y", Buffer.UB),))
    assert [(i.unit, i.pipe, i.name) for i in plan.instrs][-3:] == [
        ("AIC", Pipe.FIX, "fix"), ("AIV", Pipe.MTE2, "load"), ("AIV", Pipe.V, "cast")]
    assert plan.instrs[-1].write == plan.resident["y"]


# -- the plan, the IR and the values -----------------------------------------------------------------------------------
def test_the_fused_plan_is_cube_only_and_the_kernel_ir_keeps_its_cast():
    """The llama example's `project`: the plan has no AIV instruction; the printed IR still shows the cast."""
    k = gemm(F16, lambda m: tl.cast(m, F16))
    ir = k.trace()
    plan = lower(ir, M)
    assert not plan.uses_aiv
    assert describe(plan).splitlines()[-1].split() == ["AIC.FIX", "store", "32768", "B"]
    assert print_kernel(ir) == (
        "kernel k(x: In[f16[128,128]], w: In[f16[128,128]], y: Out[f16[128,128]]):\n"
        "  a: f16[128,128] = load x\n"
        "  b: f16[128,128] = load w\n"
        "  c: f32[128,128] = matmul a, b\n"
        "  d: f16[128,128] = cast[F16] c\n"
        "  store y, d")


def test_the_matmul_result_stays_in_l0c_until_the_fused_store():
    """m's last use in the IR is the acc= of the second matmul, which would take m's L0C allocation in place; the
    fused store reads m after that, so m keeps its own allocation."""
    @kernel
    def k(x: In[Tile[64, 64, F16]], w: In[Tile[64, 64, F16]], y: Out[Tile[64, 64, F16]],
          z: Out[Tile[64, 64, F32]]):
        a, b = tl.load(x), tl.load(w)
        m = tl.matmul(a, b)
        c = tl.cast(m, F16)
        tl.store(z, tl.matmul(a, b, acc=m))
        tl.store(y, c)

    plan = lower(k.trace(), M)
    cube = [i for i in plan.instrs if i.pipe == Pipe.CUBE]
    stores = [i for i in plan.instrs if i.name == "store"]
    assert [s.pipe for s in stores] == [Pipe.FIX, Pipe.FIX] and [s.bytes for s in stores] == [16384, 8192]
    m_alloc, m2_alloc = plan.slot_alloc[cube[0].write], plan.slot_alloc[cube[1].write]
    assert m_alloc != m2_alloc
    assert stores[1].reads == (cube[0].write,)

    rng = np.random.default_rng(31)
    X, W = (rng.integers(-3, 4, (64, 64)).astype(np.float16) for _ in range(2))
    _, _, tens = run_one(k, {"x": (64, 64, F16), "w": (64, 64, F16), "y": (64, 64, F16), "z": (64, 64, F32)},
                         {"x": X, "w": W}, values=True)
    ref = X.astype(np.float32) @ W.astype(np.float32)
    np.testing.assert_array_equal(tens["y"].data[0], ref.astype(np.float16))
    np.testing.assert_array_equal(tens["z"].data[0], 2 * ref)


@pytest.mark.parametrize("name, out, body, ref", [
    ("cast", F16, lambda m: tl.cast(m, F16), lambda r: r.astype(np.float16)),
    ("relu", F32, lambda m: tl.relu(m), lambda r: np.maximum(r, 0)),
    ("cast_relu", F16, lambda m: tl.cast(tl.relu(m), F16), lambda r: np.maximum(r, 0).astype(np.float16)),
    ("relu_cast", F16, lambda m: tl.relu(tl.cast(m, F16)), lambda r: np.maximum(r.astype(np.float16), 0)),
], ids=["cast", "relu", "cast_relu", "relu_cast"])
def test_fused_kernels_compute_what_numpy_does(name, out, body, ref):
    """Values are unchanged by the lowering: small integers keep the F32 matmul exact, so the check is exact."""
    rng = np.random.default_rng(7)
    X, W = (rng.integers(-3, 4, (128, 128)).astype(np.float16) for _ in range(2))
    shapes = SHAPES_F16 if out is F16 else SHAPES_F32
    run, spans, tens = run_one(gemm(out, body), shapes, {"x": X, "w": W}, values=True)
    assert spans[-1][:2] == ("AIC.FIX", "store")
    np.testing.assert_array_equal(tens["y"].data[0], ref(X.astype(np.float32) @ W.astype(np.float32)))


def test_an_int8_quant_store_computes_what_numpy_does():
    """I8 x I8 -> I32 in L0C, cast to I8 on the FIX store: exact against numpy (values stay in I8's range)."""
    @kernel
    def k(x: In[Tile[32, 16, I8]], w: In[Tile[16, 32, I8]], y: Out[Tile[32, 32, I8]]):
        tl.store(y, tl.relu(tl.cast(tl.matmul(tl.load(x), tl.load(w)), I8)))

    rng = np.random.default_rng(3)
    X, W = rng.integers(-2, 3, (32, 16)).astype(np.int8), rng.integers(-2, 3, (16, 32)).astype(np.int8)
    _, spans, tens = run_one(k, {"x": (32, 16, I8), "w": (16, 32, I8), "y": (32, 32, I8)}, {"x": X, "w": W},
                             values=True)
    assert spans[-1][:2] == ("AIC.FIX", "store") and spans[-1][4] == 32 * 32
    ref = np.maximum(X.astype(np.int32) @ W.astype(np.int32), 0).astype(np.int8)
    np.testing.assert_array_equal(tens["y"].data[0], ref)


# -- silu's tile / tile division pays count mode -----------------------------------------------------------------------
def _op_cycles(f, rows: int, cols: int, dtype: DType) -> list[tuple[int, int, int]]:
    @kernel
    def k(x: In[Tile[rows, cols, dtype]], y: In[Tile[rows, cols, dtype]]):
        f(tl.load(x), tl.load(y))
    return [_vector_cycles(op, M) for op in k.trace().ops if op.kind.value != "load"]


def test_silu_division_pays_count_mode_like_tl_div():
    """[3, 5] F32 = 60 B, one repeat, not a whole one: silu's steps -x (1), e** (2), +1 (1), x / (4 + 16 count
    mode) = 24, the head of the first (vmuls, 10) and the tail of the last (vdiv, 19). tl.div of two tiles pays the
    same 16 on the same bytes."""
    assert _op_cycles(lambda a, b: tl.silu(a), 3, 5, F32) == [(1 + 2 + 1 + 4 + 16, 10, 19)]
    assert _op_cycles(lambda a, b: tl.div(a, b), 3, 5, F32) == [(4 + 16, 11, 19)]


def test_silu_on_whole_repeats_and_sigmoid_pay_no_count_mode():
    """[4, 64] F32 = 1024 B, 4 whole repeats: 4 + 8 + 4 + 16 = 32. Sigmoid's 1 / t is a scalar over a tile, like
    tl.div(1.0, t): no count mode, 1 + 2 + 1 + 4 = 8 on [3, 5] F32."""
    assert _op_cycles(lambda a, b: tl.silu(a), 4, 64, F32) == [(4 + 8 + 4 + 16, 10, 19)]
    assert _op_cycles(lambda a, b: tl.sigmoid(a), 3, 5, F32) == [(1 + 2 + 1 + 4, 10, 19)]
    assert _op_cycles(lambda a, b: tl.div(1.0, a), 3, 5, F32) == [(4, 11, 19)]


def test_the_kernel_view_says_a_fused_cast_and_relu_run_in_the_fix_store():
    from ptort_lab.viz.ir_view import kernel_view  # (the view layer: imported here, the rest of the file is sim's)

    @kernel
    def mm_out(a: In[Tile[64, 64, DType.F16]], b: In[Tile[64, 64, DType.F16]], y: Out[Tile[64, 64, DType.F16]]):
        tl.store(y, tl.relu(tl.cast(tl.matmul(tl.load(a), tl.load(b)), DType.F16)))

    assert kernel_view(mm_out).text == (
        "# pipes on ascend_910b (AIC = cube unit, AIV = vector unit)\n"
        "kernel mm_out(a: In[f16[64,64]], b: In[f16[64,64]], y: Out[f16[64,64]]):\n"
        "  c: f16[64,64] = load a                        # AIC.MTE2\n"
        "  d: f16[64,64] = load b                        # AIC.MTE2\n"
        "  e: f32[64,64] = matmul c, d                   # AIC.CUBE via AIC.MTE1 x2\n"
        "  f: f16[64,64] = cast[F16] e                   # fused into AIC.FIX\n"
        "  g: f16[64,64] = relu f                        # fused into AIC.FIX\n"
        "  store y, g                                    # AIC.FIX")
