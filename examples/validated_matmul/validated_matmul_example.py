#!/usr/bin/env python3
"""Single-tile matmuls on the cube unit, F16 -> F32 and F32, checked against a float64 numpy matmul.

One task multiplies one [M, K] tile by one [K, N] tile (the PTO-WSP v9 validated_matmul example, which is the F32
16x16x16 case), for a batch of independent pairs:
    matmul_f16      C[b] = A[b] @ B[b]          F16 inputs, F32 result (the cube accumulates in F32)
    matmul_acc_f16  D[b] = D[b] + A[b] @ B[b]   the same with tl.matmul(a, b, acc=d): D is InOut
    matmul_f32      C[b] = A[b] @ B[b]          F32 inputs and result
Each result is compared with the exact product (float64) within the worst-case bound of F32 accumulation,
K * 2^-24 * max(|A| @ |B|), and the run reports the cube's busy % and the achieved TFLOP/s.

Usage:
    python examples/validated_matmul/validated_matmul_example.py [--size {small,default,large}]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

try:
    import ptort_lab  # noqa: F401
except ImportError:  # running from a source checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # golden.py next to this script

from golden import accumulation_bound, matmul_ref  # noqa: E402

from ptort_lab import Dense, DispatchPolicy, DType, In, InOut, Out, P, Tensor, Tile, kernel, tl, workload  # noqa: E402
from ptort_lab.report import check, report, run_example  # noqa: E402

F32, F16 = DType.F32, DType.F16
RULE = "=" * 70

# batch of independent tile pairs; (M, K, N) per precision; round_robin over `cores` AI cores. The result tile
# M x N x 4 bytes must fit L0C (128 KiB).
SIZES = {
    "small": dict(batch=2, f16=(16, 16, 16), f32=(16, 16, 16), cores=2),          # the reference's 16^3
    "default": dict(batch=8, f16=(128, 256, 128), f32=(128, 128, 128), cores=8),
    "large": dict(batch=48, f16=(128, 512, 256), f32=(128, 256, 128), cores=24),
}


def make_kernels(f16: tuple[int, int, int], f32: tuple[int, int, int]):
    M, K, N = f16

    @kernel
    def matmul_f16(a: In[Tile[M, K, F16]], b: In[Tile[K, N, F16]], c: Out[Tile[M, N, F32]]):
        """c = a @ b; F16 x F16 products are exact in F32 and summed in F32."""
        tl.store(c, tl.matmul(tl.load(a), tl.load(b)))

    @kernel
    def matmul_acc_f16(a: In[Tile[M, K, F16]], b: In[Tile[K, N, F16]], d: InOut[Tile[M, N, F32]]):
        """d = d + a @ b, the accumulator passed to the cube (acc=)."""
        tl.store(d, tl.matmul(tl.load(a), tl.load(b), acc=tl.load(d)))

    M, K, N = f32

    @kernel
    def matmul_f32(a: In[Tile[M, K, F32]], b: In[Tile[K, N, F32]], c: Out[Tile[M, N, F32]]):
        """c = a @ b in F32."""
        tl.store(c, tl.matmul(tl.load(a), tl.load(b)))

    return matmul_f16, matmul_acc_f16, matmul_f32


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="default", help="problem size (default: default)")
    args = ap.parse_args(argv)
    cfg = SIZES[args.size]
    nb, cores = cfg["batch"], cfg["cores"]
    matmul_f16, matmul_acc_f16, matmul_f32 = make_kernels(cfg["f16"], cfg["f32"])

    rng = np.random.default_rng(5)
    (m16, k16, n16), (m32, k32, n32) = cfg["f16"], cfg["f32"]
    a16 = rng.standard_normal((nb, m16, k16)).astype(np.float16)
    b16 = rng.standard_normal((nb, k16, n16)).astype(np.float16)
    d0 = rng.standard_normal((nb, m16, n16)).astype(np.float32)
    a32 = rng.standard_normal((nb, m32, k32)).astype(np.float32)
    b32 = rng.standard_normal((nb, k32, n32)).astype(np.float32)

    A16, B16, A32, B32 = (Tensor(data=a16, name="A16"), Tensor(data=b16, name="B16"), Tensor(data=a32, name="A32"),
                          Tensor(data=b32, name="B32"))
    C16 = Tensor(shape=(nb, m16, n16), dtype=F32, name="C16")
    D = Tensor(data=d0.copy(), name="D")                 # InOut: starts as d0, ends as d0 + A16 @ B16
    C32 = Tensor(shape=(nb, m32, n32), dtype=F32, name="C32")
    batch = Dense[nb]()

    @workload
    def matmul_f16_workload():
        for b in P(batch, names=("b",)):
            matmul_f16[b](a=A16[b], b=B16[b], c=C16[b])

    @workload
    def matmul_acc_workload():
        for b in P(batch, names=("b",)):
            matmul_acc_f16[b](a=A16[b], b=B16[b], d=D[b])

    @workload
    def matmul_f32_workload():
        for b in P(batch, names=("b",)):
            matmul_f32[b](a=A32[b], b=B32[b], c=C32[b])

    print(RULE)
    print("Validated matmul - single cube tiles, F16 -> F32 and F32")
    print(RULE)
    print(f"batch {nb}; F16 tiles [{m16}x{k16}] @ [{k16}x{n16}], F32 tiles [{m32}x{k32}] @ [{k32}x{n32}]; "
          f"round_robin over {cores} cores")
    for k in (matmul_f16, matmul_acc_f16, matmul_f32):
        print()
        print(k.trace())

    runs = {"matmul_f16": (matmul_f16_workload(), (m16, k16, n16)),
            "matmul_acc_f16": (matmul_acc_workload(), (m16, k16, n16)),
            "matmul_f32": (matmul_f32_workload(), (m32, k32, n32))}
    programs = {}
    for label, (w, _) in runs.items():
        program = w.dispatch(DispatchPolicy.round_robin(cores)).compile()
        program.execute()
        programs[label] = program

    expected = {"matmul_f16": (C16.data, matmul_ref(a16, b16), accumulation_bound(a16, b16)),
                "matmul_acc_f16": (D.data, matmul_ref(a16, b16, d0), accumulation_bound(a16, b16, d0)),
                "matmul_f32": (C32.data, matmul_ref(a32, b32), accumulation_bound(a32, b32))}
    checks = [check(label, got, ref, rtol=0.0, atol=bound) for label, (got, ref, bound) in expected.items()]

    print()
    ok = report(f"validated matmul, batch {nb}, vs numpy (float64; atol = F32 accumulation bound)", checks, programs)
    print("Achieved:")
    for label, (_, (m, k, n)) in runs.items():
        s = programs[label].stats()
        tflops = 2.0 * m * k * n * nb / (s.time_us * 1e-6) / 1e12
        cube = s.lane_busy_pct.get("AIC.CUBE", 0.0)
        print(f"  {label:<15} {2 * m * k * n * nb:>12} flop in {s.total_cycles:>7} cycles: {tflops:7.3f} TFLOP/s, "
              f"cube busy {cube:.1f}%")
    return 0 if ok else 1


if __name__ == "__main__":
    run_example(main)  # a ptort_lab error: its message and exit status 2, no traceback
