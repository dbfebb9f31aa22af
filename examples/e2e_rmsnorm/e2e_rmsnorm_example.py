#!/usr/bin/env python3
"""RMSNorm end to end: kernel -> IR -> workload -> schedule -> tasks -> program -> run -> where the time went.

y[b, s, :] = x[b, s, :] * rsqrt(mean(x[b, s, :]^2) + eps) * g for x [B, S, H], in two precisions:
    rmsnorm_f32   F32 in, F32 out
    rmsnorm_f16   F16 in, F16 out, the maths in F32 (tl.cast up after the load, down before the store), as LLM
                  inference kernels do: squaring and averaging 4096 F16 values in F16 would lose the result.
Each task normalises one [rows, H] tile of whole rows (a row must be in one tile: its mean needs every column);
tl.rowmean gives the [rows, 1] mean square, which broadcasts back over the row; g is a [1, H] tile broadcast over
the rows. eps is a Scalar kernel parameter with a default, set per launch.

The stages follow the PTO-WSP v9 e2e_rmsnorm walkthrough; every value is computed on the simulator and checked
against numpy.

Usage:
    python examples/e2e_rmsnorm/e2e_rmsnorm_example.py [--size {small,default,large}]
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

from golden import rmsnorm_ref  # noqa: E402

from ptort_lab import (  # noqa: E402
    Dense,
    DispatchPolicy,
    DType,
    In,
    Out,
    P,
    Scalar,
    Tensor,
    Tile,
    kernel,
    tl,
    workload,
)
from ptort_lab.report import check, report, run_example  # noqa: E402

F32, F16 = DType.F32, DType.F16
RULE = "-" * 60
EPS = 1e-6

# x [batch, seq, hidden]; each task normalises `rows` whole rows; tasks go round-robin over `cores` AI cores.
# rows x hidden is bounded by the 192 KiB UB: the F16 kernel keeps an F16 tile and up to three F32 tiles live.
SIZES = {
    "small": dict(batch=1, seq=32, hidden=16, rows=16, cores=2),      # the reference's shape: 2 tasks
    "default": dict(batch=4, seq=512, hidden=1024, rows=8, cores=8),
    "large": dict(batch=4, seq=2048, hidden=4096, rows=4, cores=24),  # LLaMA-7B hidden size
}

# Tolerances per output dtype (why: see README).
TOL = {"F32": dict(rtol=1e-5, atol=1e-7),   # F32 eps 1.2e-7: a few roundings, the mean's sum is pairwise
       "F16": dict(rtol=1e-3, atol=1e-6)}   # the F16 output rounding alone is up to 2^-11 = 4.9e-4 relative


def make_kernels(rows: int, hidden: int):
    @kernel
    def rmsnorm_f32(x: In[Tile[rows, hidden, F32]], g: In[Tile[1, hidden, F32]], y: Out[Tile[rows, hidden, F32]],
                    eps: Scalar[F32] = EPS):
        """y = x * rsqrt(mean(x^2) + eps) * g, all in F32."""
        v = tl.load(x)
        inv = tl.rsqrt(tl.add(tl.rowmean(tl.mul(v, v)), eps))   # [rows, 1]
        tl.store(y, tl.mul(tl.mul(v, inv), tl.load(g)))         # [rows, 1] and [1, hidden] broadcast

    @kernel
    def rmsnorm_f16(x: In[Tile[rows, hidden, F16]], g: In[Tile[1, hidden, F16]], y: Out[Tile[rows, hidden, F16]],
                    eps: Scalar[F32] = EPS):
        """The same in F16 storage: widen to F32, normalise, round back to F16 once."""
        v = tl.cast(tl.load(x), F32)
        inv = tl.rsqrt(tl.add(tl.rowmean(tl.mul(v, v)), eps))
        out = tl.mul(tl.mul(v, inv), tl.cast(tl.load(g), F32))
        tl.store(y, tl.cast(out, F16))

    return rmsnorm_f32, rmsnorm_f16


def stage(n: int, title: str) -> None:
    print(f"\n[Stage {n}] {title}")
    print(RULE)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="default", help="problem size (default: default)")
    args = ap.parse_args(argv)
    cfg = SIZES[args.size]
    B, S, H, R, cores = cfg["batch"], cfg["seq"], cfg["hidden"], cfg["rows"], cfg["cores"]

    rng = np.random.default_rng(7)
    x32 = (rng.standard_normal((B, S, H)) * rng.uniform(0.1, 8.0, (B, S, 1))).astype(np.float32)  # varied row scales
    g32 = (1.0 + 0.25 * rng.standard_normal((1, H))).astype(np.float32)
    inputs = {"F32": (x32, g32), "F16": (x32.astype(np.float16), g32.astype(np.float16))}

    print("=" * 70)
    print("RMSNorm end to end - PTO-RT v9 style, on the ptort_lab simulator")
    print("=" * 70)
    print(f"x [{B}, {S}, {H}], g [1, {H}], eps {EPS:g}; tiles of {R} rows x {H}; round_robin over {cores} cores")

    stage(1, "Kernel definition (@kernel + tl.* primitives)")
    rmsnorm_f32, rmsnorm_f16 = make_kernels(R, H)
    kernels = {"F32": rmsnorm_f32, "F16": rmsnorm_f16}
    for k in kernels.values():
        params = ", ".join(f"{name}: {d.value} {t}" for name, (d, t) in k.signature.items())
        print(f"  {k.name}({params})")

    stage(2, "Kernel IR (traced from the tl.* calls)")
    for k in kernels.values():
        ir = k.trace()
        print(f"  {k.name}: {len(ir.ops)} operations")
        print("\n".join("    " + line for line in str(ir).splitlines()[1:]))

    stage(3, "Workload (@workload + P)")
    batch, seq_tiles = Dense[B](), Dense[S // R]()
    tensors = {}
    for dt, (x, g) in inputs.items():
        y = np.zeros_like(x)
        # [B, S, H] viewed as [B, S/R, R, H]: X[b][t] is one tile of R whole rows; results land in `y`.
        tensors[dt] = (Tensor(data=x.reshape(B, S // R, R, H), name=f"x_{dt}"), Tensor(data=g, name=f"g_{dt}"),
                       Tensor(data=y.reshape(B, S // R, R, H), name=f"y_{dt}"), y)

    def make_workload(dt: str):
        k = kernels[dt]
        X, G, Y, _ = tensors[dt]

        @workload
        def rmsnorm_workload():
            """Every (batch, row tile) is independent."""
            for b, t in P(batch, seq_tiles, names=("b", "t")):  # names: the bindings tasks report
                k[b, t](x=X[b][t], g=G, y=Y[b][t], eps=EPS)

        return rmsnorm_workload()

    workloads = {dt: make_workload(dt) for dt in kernels}
    print(f"  for b, t in P(Dense[{B}](), Dense[{S // R}]()): rmsnorm[b, t](x=X[b][t], g=G, y=Y[b][t], eps={EPS:g})")
    print(f"  {B} x {S // R} = {B * (S // R)} tasks per precision")

    stage(4, "Schedule (combinators)")
    scheduled = {dt: w.dispatch(DispatchPolicy.round_robin(cores)) for dt, w in workloads.items()}
    print(f"  .dispatch(DispatchPolicy.round_robin({cores}))   task i -> core i % {cores}")

    stage(5, "Task enumeration")
    tasks = scheduled["F16"].enumerate()
    print(f"  {len(tasks)} tasks, e.g.:")
    for t in tasks[:3]:
        views = ", ".join(f"{name}={view!r}" for name, view in t.resources.items() if name != "eps")
        print(f"    task {t.id}: {t.kernel}{list(t.params)} bindings {t.bindings}: {views}")

    stage(6, "Compilation")
    programs = {dt: w.compile() for dt, w in scheduled.items()}
    print(f"  {type(programs['F16']).__name__} x {len(programs)} (target cpu_sim: the NPU model)")

    stage(7, "Execution on the simulator, checked against numpy")
    checks = []
    for dt, program in programs.items():
        program.execute()
        x, g = inputs[dt]
        checks.append(check(f"rmsnorm {dt}", tensors[dt][3], rmsnorm_ref(x, g, EPS), **TOL[dt]))
    ok = report(f"rmsnorm [{B}, {S}, {H}] vs numpy (float64)", checks,
                {f"rmsnorm_{dt.lower()}": p for dt, p in programs.items()})

    stage(8, "Where the time went: the first F16 task's instructions on its core")
    trace = programs["F16"].trace()
    first = sorted((sp for sp in trace.spans if sp.task_id == tasks[0].id), key=lambda sp: (sp.start, sp.lane))
    for sp in first:
        moved = f"  {sp.bytes} B" if sp.bytes else ""
        print(f"  {sp.lane:<10} {sp.name:<8} {sp.start:>7} .. {sp.end:<7}{moved}".rstrip())
    s16, s32 = programs["F16"].stats(), programs["F32"].stats()
    print(f"  F16 storage moves {s16.bytes_moved} GM bytes vs {s32.bytes_moved} for F32: "
          f"{s16.total_cycles} vs {s32.total_cycles} cycles")
    return 0 if ok else 1


if __name__ == "__main__":
    run_example(main)  # a ptort_lab error: its message and exit status 2, no traceback
