"""Capacity at definition time: compile() refuses a kernel whose live tiles cannot fit a buffer, with the reorder
that makes them fit or else the largest tile that does; it refuses exactly what a run would refuse, and nothing
that runs."""
from __future__ import annotations

import numpy as np
import pytest

from ptort_lab import (
    CapacityError,
    Channel,
    Dense,
    DType,
    In,
    InOut,
    Out,
    P,
    Tensor,
    Tile,
    TracePolicy,
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
from ptort_lab.sim.capacity import kernel_overflow
from ptort_lab.sim.cost_model import PinnedCosts
from ptort_lab.sim.costs import NpuCostModel
from ptort_lab.sim.machine import ascend_910b
from ptort_lab.sim.runner import RunOptions, simulate

F16, F32 = DType.F16, DType.F32
M_ROWS, N, D = 128, 256, 128  # a 128-row query tile against a 256-wide KV block, head dim 128
UB = ascend_910b.ub_bytes


def line_of(marker: str) -> int:
    with open(__file__) as f:
        return next(i for i, line in enumerate(f, 1) if marker in line and "line_of(" not in line)


# The online-softmax step of flash attention on one 256-wide block, written the way that does not fit: the running
# output O (64 KiB) is loaded before the scores S (128 KiB) are reduced and cast to P, so S, O and the row vectors
# are live together (197632 bytes > 192 KiB).
@kernel
def fa_step(s: In[Tile[M_ROWS, N, F32]], m: InOut[Tile[M_ROWS, 1, F32]], o: InOut[Tile[M_ROWS, D, F32]],
            pv: In[Tile[M_ROWS, D, F32]], p: Out[Tile[M_ROWS, N, F16]]):
    x = tl.load(s) * 0.125  # fa: scores
    acc = tl.load(o)  # fa: O loaded early
    m_old = tl.load(m)  # fa: old max
    m_new = tl.max(m_old, tl.rowmax(x))  # fa: the peak
    tl.store(p, tl.cast(tl.exp(x - m_new), F16))  # fa: P cast
    tl.store(m, m_new)
    tl.store(o, acc * tl.exp(m_old - m_new) + tl.load(pv))  # fa: first use of O


# The same step as the compile error suggests: O is loaded just before its first use, after P is cast.
@kernel
def fa_step_fixed(s: In[Tile[M_ROWS, N, F32]], m: InOut[Tile[M_ROWS, 1, F32]], o: InOut[Tile[M_ROWS, D, F32]],
                  pv: In[Tile[M_ROWS, D, F32]], p: Out[Tile[M_ROWS, N, F16]]):
    x = tl.load(s) * 0.125
    m_old = tl.load(m)
    m_new = tl.max(m_old, tl.rowmax(x))
    tl.store(p, tl.cast(tl.exp(x - m_new), F16))
    tl.store(m, m_new)
    acc = tl.load(o)
    tl.store(o, acc * tl.exp(m_old - m_new) + tl.load(pv))


def fa_workload(k, blocks: int = 1):
    rng = np.random.default_rng(0)
    S = Tensor(data=rng.standard_normal((blocks, M_ROWS, N)).astype(np.float32), name="S")
    Mx = Tensor(data=rng.standard_normal((blocks, M_ROWS, 1)).astype(np.float32), name="m")
    Out_ = Tensor(data=rng.standard_normal((blocks, M_ROWS, D)).astype(np.float32), name="O")
    PV = Tensor(data=rng.standard_normal((blocks, M_ROWS, D)).astype(np.float32), name="PV")
    Pr = Tensor(shape=(blocks, M_ROWS, N), dtype=F16, name="P")

    @workload
    def w():
        for b in P(Dense[blocks]()):
            k[b](s=S[b], m=Mx[b], o=Out_[b], pv=PV[b], p=Pr[b])  # fa: launch

    return w(), (S, Mx, Out_, PV, Pr)


def test_a_flash_attention_block_that_does_not_fit_ub_is_refused_at_compile_with_the_reorder():
    w, _ = fa_workload(fa_step)
    with pytest.raises(CapacityError) as e:
        w.compile()
    err = e.value
    peak, early, use = line_of("# fa: the peak"), line_of("# fa: O loaded early"), line_of("# fa: first use of O")
    assert err.what == (
        f"kernel 'fa_step' cannot fit ascend_910b's buffers: it needs 197632 bytes of UB at once at `rowmax` "
        f"(line {peak}), but the UB of an AIV holds 196608 bytes (192 KiB). Live there: `mul 0.125` (line "
        f"{line_of('# fa: scores')}) 131072 B, `load o` (line {early}) 65536 B, `load m` (line "
        f"{line_of('# fa: old max')}) 512 B, `rowmax` (line {peak}) 512 B.")
    assert err.hint == (
        f"Make tiles only when they are needed: move line {early} (`acc = tl.load(o)  # fa: O loaded early`) down "
        f"past the peak at line {peak} to just before its first use, line {use} "
        f"(`tl.store(o, acc * tl.exp(m_old - m_new) + tl.load(pv))  # fa: first use of O`). The UB peak is then "
        f"132096 bytes, which fits.")
    assert err.where is not None and err.where.lineno == peak
    assert err.context == f"kernel 'fa_step' launched at test_static_capacity.py:{line_of('# fa: launch')}"


def test_the_suggested_reorder_compiles_runs_and_matches_numpy():
    w, (S, Mx, Acc, PV, Pr) = fa_workload(fa_step_fixed, blocks=2)
    s, m, o, pv = S.data.copy(), Mx.data.copy(), Acc.data.copy(), PV.data.copy()
    w.compile().execute()
    x = s * np.float32(0.125)
    m_new = np.maximum(m, x.max(axis=2, keepdims=True))
    np.testing.assert_array_equal(Pr.data, np.exp(x - m_new).astype(np.float16))
    np.testing.assert_array_equal(Mx.data, m_new)
    np.testing.assert_allclose(Acc.data, o * np.exp(m - m_new) + pv, rtol=1e-6)


def test_a_run_without_compile_meets_the_overflow_where_it_starts():
    """The run stops at the first op over the size (the load of m: 197120 bytes); compile() names the peak, the
    most the kernel needs at once (197632 bytes, at the row max one op later). Both offer the same fix."""
    w, _ = fa_workload(fa_step)
    with pytest.raises(CapacityError) as e:
        simulate(w, NpuCostModel(), RunOptions(compute_values=False))
    assert "needs 197120 bytes of UB at once at `load m`" in e.value.what
    assert e.value.where is not None and e.value.where.lineno == line_of("# fa: old max")
    with pytest.raises(CapacityError) as at_compile:
        w.compile()
    assert e.value.hint == at_compile.value.hint and e.value.hint.startswith("Make tiles only when they are needed")


def copy_kernel(rows: int, cols: int):
    @kernel
    def copy(x: In[Tile[rows, cols, F32]], y: Out[Tile[rows, cols, F32]]):
        tl.store(y, tl.exp(tl.load(x)))
    return copy


def copy_workload(k, rows: int, cols: int):
    X, Y = Tensor(shape=(1, rows, cols), dtype=F32), Tensor(shape=(1, rows, cols), dtype=F32)

    @workload
    def w():
        k[0](x=X[0], y=Y[0])

    return w()


def test_a_kernel_only_a_smaller_tile_fixes_gets_the_largest_tile_that_fits():
    """A [256, 256] F32 tile is 256 KiB; one live tile is all the kernel has, so no reorder helps. 192 rows of 256
    F32 are exactly the 192 KiB UB."""
    with pytest.raises(CapacityError) as e:
        copy_workload(copy_kernel(256, 256), 256, 256).compile()
    assert e.value.what.startswith("kernel 'copy' cannot fit ascend_910b's buffers: it needs 262144 bytes of UB at "
                                   "once at `load x`")
    assert e.value.hint == ("Use a smaller tile than [256, 256] (no reorder of the kernel's ops makes it fit): the "
                            "largest that fits is [192, 256] (192 rows instead of 256 in x and y) or [256, 192] (192 "
                            "columns instead of 256 in x and y).")
    copy_workload(copy_kernel(192, 256), 192, 256).compile().execute()  # exactly full: compiles and runs
    with pytest.raises(CapacityError):
        copy_workload(copy_kernel(208, 256), 208, 256).compile()  # the next multiple of 16 does not


def test_an_l0c_overflow_names_l0c_and_the_aic():
    """A [128, 512] F32 matmul result is 256 KiB; L0C holds 128 KiB: 64 rows, or 256 columns, fit."""
    @kernel
    def mm(a: In[Tile[128, 64, F16]], b: In[Tile[64, 512, F16]], c: Out[Tile[128, 512, F32]]):
        tl.store(c, tl.matmul(tl.load(a), tl.load(b)))

    A, B, C = Tensor(shape=(1, 128, 64), dtype=F16), Tensor(shape=(1, 64, 512), dtype=F16), \
        Tensor(shape=(1, 128, 512), dtype=F32)

    @workload
    def w():
        mm[0](a=A[0], b=B[0], c=C[0])

    with pytest.raises(CapacityError) as e:
        w().compile()
    assert e.value.what.startswith("kernel 'mm' cannot fit ascend_910b's buffers: it needs 262144 bytes of L0C at "
                                   "once at `matmul` (line ")
    assert "but the L0C of the AIC holds 131072 bytes (128 KiB)" in e.value.what
    assert e.value.hint == ("Use a smaller tile than [128, 512] (no reorder of the kernel's ops makes it fit): the "
                            "largest that fits is [64, 512] (64 rows instead of 128 in a and c) or [128, 256] (256 "
                            "columns instead of 512 in b and c).")


def test_two_early_loads_are_both_moved():
    """Two 64 KiB tiles loaded before a 160 KiB computation and used only after it: moving one is not enough
    (160 + 64 > 192 KiB); with both moved the peak is the 160 KiB exp (their sum reuses one of them in place)."""
    @kernel
    def late(s: In[Tile[160, 256, F32]], a: In[Tile[128, 128, F32]], b: In[Tile[128, 128, F32]],
             y: Out[Tile[160, 256, F32]], z: Out[Tile[128, 128, F32]]):
        ta = tl.load(a)  # two: a early
        tb = tl.load(b)  # two: b early
        tl.store(y, tl.exp(tl.load(s)))  # two: the peak
        tl.store(z, ta + tb)  # two: first use

    S, A, B = Tensor(shape=(1, 160, 256), dtype=F32), Tensor(shape=(1, 128, 128), dtype=F32), \
        Tensor(shape=(1, 128, 128), dtype=F32)
    Y, Z = Tensor(shape=(1, 160, 256), dtype=F32), Tensor(shape=(1, 128, 128), dtype=F32)

    @workload
    def w():
        late[0](s=S[0], a=A[0], b=B[0], y=Y[0], z=Z[0])

    with pytest.raises(CapacityError) as e:
        w().compile()
    use = line_of("# two: first use")
    assert e.value.hint == (
        f"Make tiles only when they are needed: move line {line_of('# two: a early')} (`ta = tl.load(a)  # two: a "
        f"early`) down past the peak at line {line_of('# two: the peak')} to just before its first use, line {use} "
        f"(`tl.store(z, ta + tb)  # two: first use`); then move line {line_of('# two: b early')} (`tb = tl.load(b)  "
        f"# two: b early`) down to just before its first use, line {use} (`tl.store(z, ta + tb)  # two: first use`). "
        "The UB peak is then 163840 bytes, which fits.")


def test_a_load_is_never_moved_past_a_store_into_the_tile_it_reads():
    """y is loaded, then overwritten, then the old value is used: moving the load would read the new value, so the
    only fix offered is a smaller tile."""
    @kernel
    def swap(x: In[Tile[128, 256, F32]], y: InOut[Tile[128, 128, F32]], z: Out[Tile[128, 128, F32]]):
        old = tl.load(y)
        big = tl.exp(tl.load(x))
        tl.store(y, tl.rowsum(big) * tl.full(128, 128, 1.0, F32))
        tl.store(z, old)

    X, Y, Z = Tensor(shape=(1, 128, 256), dtype=F32), Tensor(shape=(1, 128, 128), dtype=F32), \
        Tensor(shape=(1, 128, 128), dtype=F32)

    @workload
    def w():
        swap[0](x=X[0], y=Y[0], z=Z[0])

    with pytest.raises(CapacityError) as e:
        w().compile()
    assert e.value.hint.startswith("Use a smaller tile than [128, 256]")


@pytest.mark.parametrize("rows", [160, 176, 192, 208, 224])
def test_compile_refuses_exactly_what_a_run_refuses(rows):
    k = copy_kernel(rows, 256)
    try:
        simulate(copy_workload(k, rows, 256), NpuCostModel(), RunOptions(compute_values=False))
        runs = True
    except CapacityError:
        runs = False
    try:
        copy_workload(k, rows, 256).compile()
        compiles = True
    except CapacityError:
        compiles = False
    assert runs == compiles == (rows * 256 * 4 <= UB)


def test_a_pipeline_process_body_is_checked_too():
    big = copy_kernel(256, 256)
    X = Tensor(shape=(2, 256, 256), dtype=F32)
    ch = Channel(name="ch", depth=1)
    a = process("a").produces(ch).body(for_each(Dense[2](), lambda t: send(ch, big[t](x=X[t], y=X[t]))))  # pipe
    b = process("b").consumes(ch).body(consume(ch, lambda t: task("b", [t], [], cycles=1)))
    with pytest.raises(CapacityError) as e:
        connect(a, b).compile()
    assert e.value.context == f"kernel 'copy' launched at test_static_capacity.py:{line_of('# pipe')}"


def test_what_never_lowers_a_kernel_is_not_refused():
    """Pinned kernels and tasks, PinnedCosts and TracePolicy.cycles price without lowering: a kernel too big for UB
    runs there as it always did."""
    big = copy_kernel(256, 256)

    @kernel(cycles=10)
    def pinned(x: In[Tile[256, 256, F32]], y: Out[Tile[256, 256, F32]]):
        tl.store(y, tl.exp(tl.load(x)))

    X = Tensor(shape=(1, 256, 256), dtype=F32)

    @workload
    def with_pinned_kernel():
        pinned[0](x=X[0], y=X[0])

    @workload
    def with_pinned_task():
        task(big, [0], {"x": X[0], "y": X[0]}, cycles=10)

    with_pinned_kernel().compile(compute_values=False).execute()
    with_pinned_task().compile(compute_values=False).execute()
    copy_workload(big, 256, 256).compile(cost_model=PinnedCosts(), compute_values=False).execute()
    copy_workload(big, 256, 256).task_graph(trace=TracePolicy.cycles(lambda t: 5)).compile(
        compute_values=False).execute()


def test_a_kernel_is_checked_once_per_machine():
    ir = copy_kernel(64, 64).trace()
    assert kernel_overflow(ir, ascend_910b) is None
    big = copy_kernel(256, 256).trace()
    first = kernel_overflow(big, ascend_910b)
    assert first is not None and kernel_overflow(big, ascend_910b) is first
    assert kernel_overflow(big, ascend_910b.replace(ub_bytes=512 * 1024)) is None


@pytest.mark.parametrize("width, fits", [(39296, True), (39297, False)])
def test_buffers_hold_tiles_at_aligned_addresses(width, fits):
    """UB is 32 B aligned (NPU_MODEL §1): five live I8 tiles of 39,297 B take 5 x 39,328 = 196,640 B, more than the
    196,608 B of a UB, though their raw bytes (196,485) would fit; at 39,296 B (a multiple of 32) they fit."""
    from ptort_lab.sim.lowering import buffer_peaks, lower
    from ptort_lab.sim.machine import ascend_910b
    T = Tile[1, width, DType.I8]

    @kernel
    def sum5(a: In[T], b: In[T], c: In[T], d: In[T], e: In[T], y: Out[T]):
        xa, xb, xc, xd = tl.load(a), tl.load(b), tl.load(c), tl.load(d)
        xe = tl.load(e)
        tl.store(y, tl.add(tl.add(tl.add(tl.add(xa, xb), xc), xd), xe))

    peak = {str(k): v.bytes for k, v in buffer_peaks(lower(sum5.trace(), ascend_910b)).items()}["UB"]
    assert peak == 5 * (-(-width // 32) * 32)
    assert (peak <= ascend_910b.ub_bytes) is fits
