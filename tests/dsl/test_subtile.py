"""Sub-tile views: tl.slice / x[r0:r1, c0:c1] and tl.concat — printed IR, numerics against numpy, the cost of a
view (no instruction, a matmul extract or a GM transfer of only its bytes, a concat's vector copy) and an error for
each misuse."""
from __future__ import annotations

import numpy as np
import pytest

from ptort_lab import (
    DType,
    In,
    InOut,
    Out,
    PtortTypeError,
    PtortValueError,
    Scalar,
    Tensor,
    Tile,
    kernel,
    tl,
    workload,
)
from ptort_lab.dsl.expr import LoopVar
from ptort_lab.sim.costs import NpuCostModel
from ptort_lab.sim.lowering import lower
from ptort_lab.sim.machine import ascend_910b
from ptort_lab.sim.runner import RunOptions, simulate

F16, F32 = DType.F16, DType.F32
M = ascend_910b
LAUNCH = M.launch_overhead_cycles + M.block_dispatch_cycles  # the first block starts after its dispatch: 11050


def ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def run_one(k, **views):
    """Launch ``k`` once on ``views`` (tensor views) and run it on the NPU model, values included."""
    @workload
    def w():
        k(**views)

    return simulate(w(), NpuCostModel(), RunOptions())


# -- the IR ------------------------------------------------------------------------------------------------------
def test_slices_and_concat_print_as_ops_with_their_windows():
    @kernel
    def swap(x: In[Tile[64, 256, F32]], y: Out[Tile[64, 256, F32]]):
        a = tl.load(x)
        left, right = a[:, 0:128], tl.slice(a, cols=(128, 256))
        tl.store(y[:, 0:128], right)
        tl.store(tl.slice(y, rows=None, cols=(128, 256)), left * 2.0)
        tl.store(y, tl.concat([right, left], axis=1))

    assert str(swap.trace()) == "\n".join([
        "kernel swap(x: In[f32[64,256]], y: Out[f32[64,256]]):",
        "  a: f32[64,256] = load x",
        "  b: f32[64,128] = slice[0:64][0:128] a",
        "  c: f32[64,128] = slice[0:64][128:256] a",
        "  d: f32[64,128] = slice[0:64][0:128] y",
        "  store d, c",
        "  e: f32[64,128] = slice[0:64][128:256] y",
        "  f: f32[64,128] = mul b, 2.0",
        "  store e, f",
        "  g: f32[64,256] = concat[1] c, b",
        "  store y, g",
    ])
    assert [str(op) for op in swap.trace().ops][:4] == ["load x", "slice 0:64 0:128", "slice 0:64 128:256",
                                                        "slice 0:64 0:128 y"]


def test_python_slicing_is_tl_slice():
    """x[r0:r1] keeps every column, x[:, c0:c1] every row; None ends are the tile's ends."""
    @kernel
    def k(x: In[Tile[32, 64, F32]], y: Out[Tile[8, 16, F32]]):
        a = tl.load(x)
        tl.store(y, a[8:16][:, 48:])

    ops = k.trace().ops
    assert [(op.attr("rows"), op.attr("cols")) for op in ops if op.kind.value == "slice"] == [
        ((8, 16), (0, 64)), ((0, 8), (48, 64))]

    @kernel
    def same(x: In[Tile[32, 64, F32]], y: Out[Tile[8, 16, F32]]):
        tl.store(y, tl.slice(tl.load(x), rows=slice(8, 16), cols=(48, None)))

    assert [str(op) for op in same.trace().ops] == ["load x", "slice 8:16 48:64", "store y"]


# -- numerics ------------------------------------------------------------------------------------------------------
def test_slices_of_a_loaded_tile_and_stores_into_slices_of_the_output_match_numpy():
    x = np.random.default_rng(0).standard_normal((1, 64, 256)).astype(np.float32)

    @kernel
    def swap(x: In[Tile[64, 256, F32]], y: Out[Tile[64, 256, F32]]):
        a = tl.load(x)
        tl.store(y[:, 0:128], a[:, 128:256])
        tl.store(y[:, 128:256], a[:, 0:128] * 2.0)

    X, Y = Tensor(data=x), Tensor(shape=x.shape, dtype=F32)
    run_one(swap, x=X[0], y=Y[0])
    np.testing.assert_array_equal(Y.data[0], np.concatenate([x[0, :, 128:], x[0, :, :128] * 2], axis=1))


def test_a_store_into_a_slice_of_an_inout_tile_leaves_the_rest_as_it_was():
    y = np.arange(16 * 16, dtype=np.float32).reshape(1, 16, 16)
    before = y.copy()

    @kernel
    def bump(y: InOut[Tile[16, 16, F32]]):
        tl.store(y[4:8, 2:10], tl.load(y[4:8, 2:10]) + 1.0)

    Y = Tensor(data=y)
    run_one(bump, y=Y[0])
    before[0, 4:8, 2:10] += 1
    np.testing.assert_array_equal(Y.data, before)


def test_a_512_wide_kv_block_as_four_128_wide_matmuls_matches_numpy():
    """The issue's case: Q [128, 128] @ K^T [128, 512] as four [128, 128] cube matmuls, each F32 result stored to
    its column slice of S."""
    rng = np.random.default_rng(1)
    q = rng.standard_normal((1, 128, 128)).astype(np.float16)
    kt = rng.standard_normal((1, 128, 512)).astype(np.float16)

    @kernel
    def qk4(q: In[Tile[128, 128, F16]], kt: In[Tile[128, 512, F16]], s: Out[Tile[128, 512, F32]]):
        a = tl.load(q)
        for j in range(4):
            cols = (128 * j, 128 * (j + 1))
            tl.store(tl.slice(s, cols=cols), tl.matmul(a, tl.load(tl.slice(kt, cols=cols))))

    Q, KT, S = Tensor(data=q), Tensor(data=kt), Tensor(shape=(1, 128, 512), dtype=F32)
    run = run_one(qk4, q=Q[0], kt=KT[0], s=S[0])
    np.testing.assert_allclose(S.data[0], q[0].astype(np.float32) @ kt[0].astype(np.float32), rtol=1e-5, atol=1e-4)
    loads = [s for s in run.trace.spans if s.lane == "AIC.MTE2"]
    stores = [s for s in run.trace.spans if s.lane == "AIC.FIX"]
    assert [s.bytes for s in loads] == [128 * 128 * 2] * 5  # Q, then one [128, 128] block of K^T per matmul
    assert [s.bytes for s in stores] == [128 * 128 * 4] * 4  # each result to its slice of S
    assert {s.name for s in run.trace.spans} == {"load", "extract", "matmul", "store"}  # no instruction for a slice


@pytest.mark.parametrize("axis", [0, 1])
def test_concat_matches_numpy(axis):
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((1, 8, 16)).astype(np.float32), rng.standard_normal((1, 8, 16)).astype(np.float32)
    shape = (16, 16) if axis == 0 else (8, 32)

    @kernel
    def cat(a: In[Tile[8, 16, F32]], b: In[Tile[8, 16, F32]], y: Out[Tile[shape[0], shape[1], F32]]):
        tl.store(y, tl.concat([tl.load(a), tl.load(b) + 1.0], axis=axis))

    A, B, Y = Tensor(data=a), Tensor(data=b), Tensor(shape=(1, *shape), dtype=F32)
    run_one(cat, a=A[0], b=B[0], y=Y[0])
    np.testing.assert_array_equal(Y.data[0], np.concatenate([a[0], b[0] + 1], axis=axis))


def test_concat_of_f16_slices_keeps_the_dtype():
    x = np.random.default_rng(3).standard_normal((1, 4, 8)).astype(np.float16)

    @kernel
    def rot(x: In[Tile[4, 8, F16]], y: Out[Tile[4, 8, F16]]):
        a = tl.load(x)
        tl.store(y, tl.concat([a[:, 6:], a[:, :6]], axis=1))

    X, Y = Tensor(data=x), Tensor(shape=x.shape, dtype=F16)
    run_one(rot, x=X[0], y=Y[0])
    np.testing.assert_array_equal(Y.data[0], np.roll(x[0], 2, axis=1))


# -- timing --------------------------------------------------------------------------------------------------------
def test_a_slice_feeding_matmul_extracts_only_its_bytes():
    """A [64, 256] F16 tile is loaded whole into L1; the matmul on its [64, 128] slice extracts 64 x 128 x 2 bytes
    into L0A (one K-slice: 128 deep fits half of L0A) and runs 4 x 4 x 8 fractals, as a [64, 128] tile would."""
    @kernel
    def half(a: In[Tile[64, 256, F16]], b: In[Tile[128, 64, F16]], c: Out[Tile[64, 64, F32]]):
        tl.store(c, tl.matmul(tl.load(a)[:, 0:128], tl.load(b)))

    A, B = Tensor(np.ones((1, 64, 256), np.float16)), Tensor(np.ones((1, 128, 64), np.float16))
    C = Tensor(shape=(1, 64, 64), dtype=F32)
    run = run_one(half, a=A[0], b=B[0], c=C[0])
    spans = [(s.lane, s.name, s.cycles, s.bytes) for s in run.trace.spans]
    a_slice, b_bytes = 64 * 128 * 2, 128 * 64 * 2
    # the whole tile, a miss into L1 (ND -> NZ, sim/memory.py): MTE2 is held for 32768 B at min(80, 94 x 0.75 = 70)
    # B/cycle = 469 cycles, + the 210-cycle issue cost
    assert spans[0] == ("AIC.MTE2", "load", ceil_div(64 * 256 * 2, 70) + M.gm_to_l1.fixed_cycles, 64 * 256 * 2)
    assert spans[0][2] == 679
    assert spans[2] == ("AIC.MTE1", "extract", M.l1_to_l0a.fixed_cycles + a_slice // M.l1_to_l0a.bytes_per_cycle, 0)
    assert spans[3] == ("AIC.MTE1", "extract", M.l1_to_l0b.fixed_cycles + b_bytes // M.l1_to_l0b.bytes_per_cycle, 0)
    assert spans[4] == ("AIC.CUBE", "matmul", M.cube_head_cycles + (64 // 16) * (64 // 16) * (128 // 16), 0)
    np.testing.assert_array_equal(C.data[0], np.full((64, 64), 128, np.float32))


def test_a_slice_of_a_parameter_loads_and_stores_only_its_region():
    """tl.load(x[0:32, :]) of a [64, 128] F32 parameter moves 16 KiB (the whole tile is 32 KiB): the GM read is
    16384 / 60 = 274 cycles of streaming on MTE2 + the 118 issue cost, its data in after 274 + the HBM latency 347;
    the store into y[32:64, :] moves 16 KiB back, posted into L2 (MTE3 held 16384 / 100 + 48)."""
    @kernel
    def top(x: In[Tile[64, 128, F32]], y: InOut[Tile[64, 128, F32]]):  # (an Out must be written whole)
        tl.store(y[32:64, :], tl.load(x[0:32, :]))

    X, Y = Tensor(np.ones((1, 64, 128), np.float32)), Tensor(shape=(1, 64, 128), dtype=F32)
    run = run_one(top, x=X[0], y=Y[0])
    half = 32 * 128 * 4
    load, ready = 274 + M.gm_to_ub.fixed_cycles, 274 + M.hbm_read_latency_cycles  # 392, 621
    store = ceil_div(half, M.ub_to_gm.bytes_per_cycle) + M.ub_to_gm.fixed_cycles  # 164 + 48
    assert [(s.lane, s.name, s.start, s.end, s.bytes) for s in run.trace.spans] == [
        ("AIV0.MTE2", "load", LAUNCH, LAUNCH + load, half),
        ("AIV0.MTE3", "store", LAUNCH + ready, LAUNCH + ready + store, half)]
    assert np.array_equal(Y.data[0, 32:], np.ones((32, 128))) and not Y.data[0, :32].any()


def test_two_windows_of_one_parameter_are_two_regions_in_l2():
    """Reading rows 0:32 then 32:64 are two misses; reading rows 0:32 twice is a miss then an L2 hit."""
    def reads(second: tuple[int, int]):
        @kernel
        def two(x: In[Tile[64, 128, F32]], y: Out[Tile[32, 128, F32]]):
            tl.store(y, tl.load(x[0:32, :]) + tl.load(x[second[0]:second[1], :]))

        run = run_one(two, x=Tensor(np.ones((1, 64, 128), np.float32))[0], y=Tensor(shape=(1, 32, 128),
                                                                                    dtype=F32)[0])
        return run.pricing.memory.read_miss_bytes, run.pricing.memory.read_hit_bytes

    half = 32 * 128 * 4
    assert reads((32, 64)) == (2 * half, 0)
    assert reads((0, 32)) == (half, half)


def test_a_slice_is_a_view_and_a_concat_a_vector_copy_into_a_new_allocation():
    """No instruction for the slices; the concat is one V copy at the vcopy rate over its [16, 32] F32 result (2 KiB
    = 8 repeats), in a new UB allocation (the parts are still live while it is written)."""
    @kernel
    def k(x: In[Tile[16, 64, F32]], y: Out[Tile[32, 32, F32]]):
        a = tl.load(x)
        tl.store(y, tl.concat([a[:, 0:32], a[:, 32:64]], axis=0))

    plan = lower(k.trace(), M)
    assert [(ins.unit, str(ins.pipe), ins.name) for ins in plan.instrs] == [
        ("AIV", "MTE2", "load"), ("AIV", "V", "concat"), ("AIV", "MTE3", "store")]
    concat = plan.instrs[1]
    assert (concat.cycles, concat.head_cycles) == (M.vec_unary.slope_cycles * (32 * 32 * 4 // 256),
                                                   M.vec_unary.head_cycles)
    assert concat.alloc >= 0 and [a.bytes for a in plan.allocs] == [16 * 64 * 4, 32 * 32 * 4]


def test_an_op_on_a_slice_works_in_place_only_when_the_whole_tile_dies():
    """The slice shares its tile's allocation: y = a[:, :64] * 2 may overwrite a only if a is not used later."""
    @kernel
    def dies(x: In[Tile[16, 128, F32]], y: Out[Tile[16, 64, F32]]):
        tl.store(y, tl.load(x)[:, 0:64] * 2.0)

    @kernel
    def lives(x: In[Tile[16, 128, F32]], y: Out[Tile[16, 64, F32]], z: Out[Tile[16, 128, F32]]):
        a = tl.load(x)
        tl.store(y, a[:, 0:64] * 2.0)
        tl.store(z, a)

    mul = next(ins for ins in lower(dies.trace(), M).instrs if ins.name == "mul")
    assert mul.alloc == -1  # in place over the loaded tile
    mul = next(ins for ins in lower(lives.trace(), M).instrs if ins.name == "mul")
    assert mul.alloc >= 0  # a is stored afterwards: a new allocation


def test_a_slice_used_by_the_cube_loads_its_tile_into_l1_only():
    """The tile is used only through a slice that feeds a matmul: loaded once, into L1 (no UB copy)."""
    @kernel
    def k(a: In[Tile[32, 64, F16]], b: In[Tile[32, 32, F16]], c: Out[Tile[32, 32, F32]]):
        tl.store(c, tl.matmul(tl.load(a)[:, 32:64], tl.load(b)))

    loads = [(ins.unit, ins.bytes) for ins in lower(k.trace(), M).instrs if ins.name == "load"]
    assert loads == [("AIC", 32 * 64 * 2), ("AIC", 32 * 32 * 2)]


# -- errors ----------------------------------------------------------------------------------------------------------
def trace_error(body, error=PtortTypeError, src_type=Tile[16, 32, F32]):
    """The error tracing ``body(x, y, s)`` raises (x: In tile, y: Out tile, s: a scalar)."""
    with pytest.raises(error) as e:
        @kernel
        def k(x: In[src_type], y: Out[Tile[16, 32, F32]], s: Scalar[F32]):
            body(x, y, s)
    return e.value


@pytest.mark.parametrize("body, what, hint", [
    (lambda x, y, s: tl.slice(tl.load(x), rows=(0, 20)),
     "tl.slice: rows 0:20 runs past the tile's 16 rows: the tile has rows 0..16.",
     "Use 0 <= start < stop <= 16, e.g. rows=(0, 8); count a bound from the end by writing it out (16 - k)."),
    (lambda x, y, s: tl.load(x)[:, 8:8], "tl.slice: cols 8:8 is empty: the tile has cols 0..32.", "Use 0 <= start"),
    (lambda x, y, s: tl.load(x)[:, 10:4], "tl.slice: cols 10:4 is empty: the tile has cols 0..32.", "Use 0 <= start"),
    (lambda x, y, s: tl.load(x)[-4:, :], "tl.slice: rows -4:16 has a negative bound: the tile has rows 0..16.",
     "Use 0 <= start < stop <= 16"),
    (lambda x, y, s: tl.load(x)[::2, :], "tl.slice: x[::2, :] has step 2 on the rows; a slice is one contiguous "
     "window.", "Every other column is tl.slice_even(x) / tl.slice_odd(x); otherwise drop the step."),
], ids=["past-end", "empty", "reversed", "negative", "step"])
def test_bad_slice_bounds_are_value_errors(body, what, hint):
    e = trace_error(body, PtortValueError)
    assert e.what == what and e.hint.startswith(hint)
    assert e.where is not None and e.where.filename.endswith("test_subtile.py")


@pytest.mark.parametrize("body, what", [
    (lambda x, y, s: tl.slice(tl.load(x), rows=(0, 2.5)),
     "tl.slice: rows bounds must be static ints known when the kernel is traced, got float 2.5."),
    (lambda x, y, s: tl.slice(tl.load(x), cols=(LoopVar("t"), 8)),
     "tl.slice: cols bounds must be static ints known when the kernel is traced, got a loop expression."),
    (lambda x, y, s: tl.slice(tl.load(x), cols=(0, s)),
     "tl.slice: cols bounds must be static ints known when the kernel is traced, got a traced value."),
    (lambda x, y, s: tl.slice(tl.load(x), rows=8), "tl.slice: rows= must be a (start, stop) pair of ints, got 8."),
    (lambda x, y, s: tl.load(x)[0:1, 0:1, 0:1], "tl.slice: a tile has two dimensions, got 3 slices in "
     "x[0:1, 0:1, 0:1]."),
    (lambda x, y, s: tl.slice(s, rows=(0, 1)), "tl.slice: needs a tile, got s (f32[])."),
    (lambda x, y, s: tl.exp(y[0:4, :]), "tl.exp: a slice of parameter 'y' is Out[...] and cannot be read."),
    (lambda x, y, s: tl.store(x[0:4, :], tl.load(x[4:8, :])), "tl.store: parameter 'x' is In[...] and cannot be "
     "written."),
    (lambda x, y, s: tl.store(y[0:4, :], tl.load(x)), "tl.store: source f32[16,32] does not fit destination a slice "
     "of 'y' (f32[4,32]): shapes differ."),
], ids=["float", "loop-var", "traced", "not-a-pair", "three-dims", "scalar", "read-out-slice", "store-in-slice",
        "store-shape"])
def test_misused_slices_are_type_errors(body, what):
    e = trace_error(body)
    assert e.what == what
    assert e.hint and e.where is not None and e.where.filename.endswith("test_subtile.py")


def test_a_non_static_bound_says_how_to_vary_it():
    e = trace_error(lambda x, y, s: tl.slice(tl.load(x), rows=(0, 2.5)))
    assert e.hint == ("Slice with Python ints (a Constexpr[int] parameter is one, fixed per launch); to pick a tile by "
                      "a loop variable, index the tensor at launch (X[t]).")


@pytest.mark.parametrize("body, error, what", [
    (lambda x, y, s: tl.concat([tl.load(x)]), PtortTypeError,
     "tl.concat: needs a list of at least two tiles, got a list of 1."),
    (lambda x, y, s: tl.concat(tl.load(x)), PtortTypeError, "tl.concat: needs a list of at least two tiles, got "
     "f32[16,32]."),
    (lambda x, y, s: tl.concat([tl.load(x), tl.load(x)], axis=2), PtortValueError,
     "tl.concat: axis must be 0 (stack rows) or 1 (join columns), got 2."),
    (lambda x, y, s: tl.concat([tl.load(x), tl.load(x)[:, 0:8]], axis=0), PtortTypeError,
     "tl.concat: along axis 0 every tile needs the same number of columns: tile 0 is f32[16,32], tile 1 is "
     "f32[16,8]."),
    (lambda x, y, s: tl.concat([tl.load(x), tl.load(x)[0:8, :]], axis=1), PtortTypeError,
     "tl.concat: along axis 1 every tile needs the same number of rows: tile 0 is f32[16,32], tile 1 is f32[8,32]."),
    (lambda x, y, s: tl.concat([tl.load(x), tl.cast(tl.load(x), F16)], axis=0), PtortTypeError,
     "tl.concat: tiles have different dtypes: tile 0 is f32[16,32], tile 1 is f16[16,32]."),
    (lambda x, y, s: tl.concat([tl.load(x), 1.0]), PtortTypeError, "tl.concat: tile 1 must be a tile, got float "
     "1.0."),
    (lambda x, y, s: tl.concat([tl.load(x), y]), PtortTypeError, "tl.concat: parameter 'y' is Out[...] and cannot "
     "be read."),
], ids=["one-tile", "not-a-list", "axis", "cols-differ", "rows-differ", "dtype", "number", "out-param"])
def test_misused_concat_is_refused(body, error, what):
    e = trace_error(body, error)
    assert e.what == what and e.hint


def test_an_element_index_is_still_refused_and_points_at_slicing():
    from ptort_lab import DSLUsageError
    e = trace_error(lambda x, y, s: tl.load(x)[0], DSLUsageError)
    assert e.what.startswith("indexing [0] of a tile (f32[16,32])")
    assert e.hint.endswith("A sub-tile is a slice of static bounds: x[r0:r1, c0:c1] (tl.slice).")
