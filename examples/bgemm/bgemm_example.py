#!/usr/bin/env python3
"""Batched GEMM example: C[b] = A[b] @ B[b] with F16 inputs and F32 accumulation, tiled, on the ptort_lab simulator.

Every output tile C[b, m, n] is the sum over K tiles of A[b, m, k] @ B[b, k, n]. The workload runs that sum as a
sequential chain (``P.seq``) per output tile: the first step writes the tile (``gemm_first``: Out), every later step
accumulates into it (``gemm_acc``: InOut + ``tl.matmul(a, b, acc=c)``). Dependencies between the steps of one chain
are inferred from the C tile they both touch. The schedule dispatches with ``DispatchPolicy.affinity`` keyed on the
output tile, so each tile's K chain stays on one core; the same workload under round-robin dispatch runs too, for
comparison. Both results are checked against a float64 numpy reference (golden.py).

Usage:
    python examples/bgemm/bgemm_example.py [--size {small,default,large}]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
try:
    import ptort_lab  # noqa: F401
except ImportError:  # running from a source checkout without `pip install -e .`
    sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from golden import bgemm_ref, from_tiles, to_tiles  # noqa: E402

from ptort_lab import Dense, DispatchPolicy, DType, In, InOut, Out, P, Tensor, Tile, kernel, tl, workload  # noqa: E402
from ptort_lab.dsl.printer import kernel_op_summary  # noqa: E402
from ptort_lab.report import check, report, run_example  # noqa: E402

F16, F32 = DType.F16, DType.F32

# batch, M, N, K, tile (tm, tn, tk), cores
SIZES = {
    "small": dict(batch=1, M=64, N=64, K=64, tile=(16, 16, 16), cores=4),
    "default": dict(batch=4, M=512, N=384, K=512, tile=(128, 128, 128), cores=24),
    "large": dict(batch=6, M=1024, N=1024, K=1024, tile=(128, 128, 128), cores=24),
}

# F16 x F16 products are exact in F32, so the only difference from the float64 reference is the F32 summation
# (the simulator sums per K tile and then adds the partials; the reference sums exactly). That error grows like
# sqrt(K) * 2**-24 * |C|: a few 1e-5 here for |C| ~ sqrt(K). rtol 1e-4 plus atol 1e-3 is 10-30x above it and far below
# any indexing or accumulation mistake (those are O(1)).
RTOL, ATOL = 1e-4, 1e-3


def make_kernels(tm: int, tn: int, tk: int):
    @kernel
    def gemm_first(a: In[Tile[tm, tk, F16]], b: In[Tile[tk, tn, F16]], c: Out[Tile[tm, tn, F32]]):
        """The first K step of an output tile: c = a @ b (F16 operands, F32 result from the cube unit)."""
        tl.store(c, tl.matmul(tl.load(a), tl.load(b)))

    @kernel
    def gemm_acc(a: In[Tile[tm, tk, F16]], b: In[Tile[tk, tn, F16]], c: InOut[Tile[tm, tn, F32]]):
        """Every later K step: c += a @ b, with the running tile as the matmul accumulator."""
        tl.store(c, tl.matmul(tl.load(a), tl.load(b), acc=tl.load(c)))

    return gemm_first, gemm_acc


def build_workload(A: Tensor, B: Tensor, C: Tensor, gemm_first, gemm_acc, k_outer: bool = True):
    """The batched GEMM over tiles; ``k_outer`` picks the issue order (the tasks and their values are the same)."""
    batch, mt, kt = A.shape[:3]
    nt = B.shape[2]

    def step(b, m, n, k):
        with P.when(k.eq(0)):
            gemm_first[b, m, n, k](a=A[b, m, k], b=B[b, k, n], c=C[b, m, n])
        with P.otherwise():
            gemm_acc[b, m, n, k](a=A[b, m, k], b=B[b, k, n], c=C[b, m, n])

    @workload
    def bgemm():
        """K outermost: a core's queue interleaves independent output tiles between the dependent K steps."""
        for k in P.seq(Dense[kt](), name="k"):
            for b, m, n in P(Dense[batch](), Dense[mt](), Dense[nt](), names=["b", "m", "n"]):
                step(b, m, n, k)

    @workload
    def bgemm_tile_major():
        """K innermost: each output tile's chain is issued back to back, so a core waits on every step."""
        for b, m, n in P(Dense[batch](), Dense[mt](), Dense[nt](), names=["b", "m", "n"]):
            for k in P.seq(Dense[kt](), name="k"):
                step(b, m, n, k)

    return bgemm() if k_outer else bgemm_tile_major()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="default", help="problem size (default: default)")
    args = ap.parse_args(argv)
    cfg = SIZES[args.size]
    batch, M, N, K, cores = cfg["batch"], cfg["M"], cfg["N"], cfg["K"], cfg["cores"]
    tm, tn, tk = cfg["tile"]
    mt, nt, kt = M // tm, N // tn, K // tk

    rng = np.random.default_rng(2026)
    a = rng.standard_normal((batch, M, K)).astype(np.float16)
    b = rng.standard_normal((batch, K, N)).astype(np.float16)
    A = Tensor(data=to_tiles(a, tm, tk), dtype=F16, name="A")   # [batch, M/tm, K/tk, tm, tk]
    B = Tensor(data=to_tiles(b, tk, tn), dtype=F16, name="B")   # [batch, K/tk, N/tn, tk, tn]
    gemm_first, gemm_acc = make_kernels(tm, tn, tk)

    print(f"Batched GEMM: {batch} x [{M}x{K}] @ [{K}x{N}], F16 in -> F32 out; tiles {tm}x{tn}x{tk}")
    print(f"  {batch * mt * nt} output tiles x {kt} K steps = {batch * mt * nt * kt} tasks on {cores} cores")
    for k in (gemm_first, gemm_acc):
        print(f"  {k.name}: {kernel_op_summary(k.trace())}")
    print(gemm_acc.trace())
    print()

    def tile_key(t) -> int:
        """One key per output tile (b, m, n): all K steps of a tile go to the same core."""
        return (t.get("b") * mt + t.get("m")) * nt + t.get("n")

    expected = bgemm_ref(a, b)
    checks, programs = [], {}
    runs = (("affinity", DispatchPolicy.affinity(tile_key, cores), True),
            ("aff k-inner", DispatchPolicy.affinity(tile_key, cores), False),
            ("round_robin", DispatchPolicy.round_robin(cores), True))
    for label, policy, k_outer in runs:
        C = Tensor(shape=(batch, mt, nt, tm, tn), dtype=F32, name="C")
        program = build_workload(A, B, C, gemm_first, gemm_acc, k_outer).dispatch(policy).compile()
        program.execute()
        checks.append(check(f"C ({label})", from_tiles(C.data), expected, rtol=RTOL, atol=ATOL))
        programs[label] = program

    ok = report(f"bgemm [{args.size}]: C = A @ B vs numpy (float64)", checks, programs)
    return 0 if ok else 1


if __name__ == "__main__":
    run_example(main)  # a ptort_lab error: its message and exit status 2, no traceback
