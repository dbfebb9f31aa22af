"""Calibrate the NPU timing model against NPU_MODEL §5.1 V1 (GEMM on 24 cores) and check the §5.3 rooflines.

Run: ``.venv/bin/python bench/calibrate_gemm.py`` (about 12 s; ``--quick`` skips 7680^3). Exits 1 when a figure
is outside the targets.

GEMM fp16 x fp16 -> fp32, m = k = n. The work is split as in pto-isa's gemm_performance kernel: 24 cores in a
4 x 6 grid; core c owns a [n/4, n/6] block of C and walks its 128 x 256 output tiles row by row. One task is one
output tile: for each 256-wide K step it loads a [128, 256] A tile and a [256, 256] B tile into L1 and
accumulates ``tl.matmul`` in L0C; the model slices each matmul into 64-deep K-slices for L0A/L0B (baseK = 64,
stepK = 4), exactly the measured kernel's shape. Values are not computed (``compute_values=False``).

The order is the measured kernel's: pto-isa ``kernels/manual/a2a3/gemm_performance/gemm_performance_kernel.cpp``
(InitGMOffsets: mIterIdx = block_idx % 4, nIterIdx = block_idx / 4; RunGemmE2E: plain ``for i / for j /
for kIter`` loops). The "n-swizzle m-zigzag" L2 schedule of the pto-isa skill file is a different kernel (the
PTO-DSL GEMM under ``kernels/python/gemm``); that file calls gemm_performance its "manual SPMD-static baseline".
Each size's line also prints the share of GM read bytes the model's L2 served (msprof's L2 hit rate), the
number to compare once L2Cache.csv is measured on hardware. A second table runs the sizes whose data outgrow
the L2 under each ``Machine.l2_replacement``: the one modelling choice V1 decided before issue 13 (bench/RESULTS.md,
"GEMM calibration", has the reasoning, the capacity sweep and the variants tried; since the write-back L2 and
overlapped reads both policies land, see "NPU model: memory hierarchy (issue 13)").
"""
from __future__ import annotations

import importlib.util
import inspect
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ptort_lab import Dense, DispatchPolicy, DType, In, Kernel, Out, P, Tensor, Tile, tl, workload  # noqa: E402
from ptort_lab.sim.costs import NpuCostModel  # noqa: E402
from ptort_lab.sim.machine import L2_REPLACEMENTS, Machine, ascend_910b  # noqa: E402
from ptort_lab.sim.runner import Run, RunOptions, simulate  # noqa: E402

BASE_M, BASE_N, STEP_K = 128, 256, 256  # baseM, baseN, baseK * stepK of the measured kernel
GRID_M, GRID_N = 4, 6  # 24 cores split 4 x 6

# NPU_MODEL §5.1 V1: time (us) and pipe ratios (%) measured on 24 AIC (pto-isa gemm_performance README)
MEASURED = {
    1536: dict(time_us=38.8, CUBE=54.5, MTE1=42.2, MTE2=72.2, FIX=7.7),
    3072: dict(time_us=206.7, CUBE=79.0, MTE1=62.0, MTE2=90.9, FIX=5.8),
    6144: dict(time_us=1506.0, CUBE=86.7, MTE1=68.1, MTE2=95.2, FIX=3.1),
    7680: dict(time_us=3168.0, CUBE=80.6, MTE1=63.0, MTE2=98.4, FIX=2.4),
}
PIPE_NAMES = {"CUBE": "TMATMUL", "MTE1": "TEXTRACT", "MTE2": "TLOAD", "FIX": "TSTORE"}
TIME_TOLERANCE = 0.10  # ±10 % on time
RATIO_TOLERANCE = 5.0  # ±5 points on pipe ratios


def gemm_kernel(k_steps: int) -> Kernel:
    """A kernel computing one [128, 256] F32 tile of C from k_steps A tiles [128, 256] and B tiles [256, 256]."""
    a_names = [f"a{s}" for s in range(k_steps)]
    b_names = [f"b{s}" for s in range(k_steps)]
    annotations: dict[str, Any] = {}
    for name in a_names:
        annotations[name] = In[Tile[BASE_M, STEP_K, DType.F16]]
    for name in b_names:
        annotations[name] = In[Tile[STEP_K, BASE_N, DType.F16]]
    annotations["c"] = Out[Tile[BASE_M, BASE_N, DType.F32]]

    def body(**tiles: Any) -> None:
        acc = None
        for a_name, b_name in zip(a_names, b_names):
            a, b = tl.load(tiles[a_name]), tl.load(tiles[b_name])
            acc = tl.matmul(a, b) if acc is None else tl.matmul(a, b, acc)
        tl.store(tiles["c"], acc)

    body.__name__ = f"gemm_tile_k{k_steps * STEP_K}"
    body.__annotations__ = annotations
    body.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in annotations])
    return Kernel(body)


def gemm_workload(n: int) -> Any:
    """C[n, n] = A[n, n] @ B[n, n] as one task per 128 x 256 output tile, dispatched to 24 cores in a 4 x 6 grid."""
    k_steps = n // STEP_K
    m_loop, n_loop = n // GRID_M // BASE_M, n // GRID_N // BASE_N
    A = Tensor(shape=(n // BASE_M, k_steps, BASE_M, STEP_K), dtype=DType.F16, name="A")
    B = Tensor(shape=(k_steps, n // BASE_N, STEP_K, BASE_N), dtype=DType.F16, name="B")
    C = Tensor(shape=(n // BASE_M, n // BASE_N, BASE_M, BASE_N), dtype=DType.F32, name="C")
    kern = gemm_kernel(k_steps)

    @workload
    def gemm():
        for core in P(Dense[GRID_M * GRID_N]()):
            for i in P.seq(Dense[m_loop]()):
                for j in P.seq(Dense[n_loop]()):
                    row = (core % GRID_M) * m_loop + i
                    col = (core // GRID_M) * n_loop + j
                    args = {f"a{s}": A[row, s] for s in range(k_steps)}
                    args.update({f"b{s}": B[s, col] for s in range(k_steps)})
                    kern[core, i, j](c=C[row, col], **args)

    return gemm().dispatch(DispatchPolicy.dispatch_by(lambda t: t.params[0], GRID_M * GRID_N))


def pipe_ratios(run: Run, pipes: dict[str, str]) -> dict[str, float]:
    """Per-core busy share of each pipe (msprof's aic_*_ratio), averaged over the cores that ran."""
    total = run.trace.makespan
    cores = sorted({s.core for s in run.trace.spans})
    out = {}
    for key, lane in pipes.items():
        busy = 0
        for c in cores:
            last = 0
            for s in sorted((s for s in run.trace.spans if s.core == c and s.lane == lane), key=lambda s: s.start):
                lo = max(s.start, last)
                if s.end > lo:
                    busy += s.end - lo
                last = max(last, s.end)
        out[key] = 100.0 * busy / total / len(cores) if total else 0.0
    return out


def run_gemm(n: int, machine: Machine = ascend_910b) -> tuple[float, dict[str, float], float, float]:
    """(model time in us, pipe ratios in %, share of GM read bytes that hit L2 in %, wall seconds) for n^3."""
    started = time.perf_counter()
    cost = NpuCostModel(machine)
    run = simulate(gemm_workload(n), cost, RunOptions(compute_values=False))
    wall = time.perf_counter() - started
    lanes = {"CUBE": "AIC.CUBE", "MTE1": "AIC.MTE1", "MTE2": "AIC.MTE2", "FIX": "AIC.FIX"}
    mem = cost.memory
    read = mem.read_hit_bytes + mem.read_miss_bytes
    hit = 100.0 * mem.read_hit_bytes / read if read else 0.0
    return run.trace.makespan / machine.clock_hz * 1e6, pipe_ratios(run, lanes), hit, wall


def calibration_table(sizes: list[int], m: Machine = ascend_910b) -> bool:
    print(f"model: NpuCostModel({m.name}); enabled (§5.2): launch {m.launch_overhead_cycles} cycles, HBM pool "
          f"{m.hbm_bytes_per_cycle} B/cycle and L2 pool {m.l2_bytes_per_cycle} B/cycle shared between cores, "
          f"L2 = {m.l2_replacement.upper()} over tiles, {m.l2_bytes >> 20} MiB")
    print("GEMM fp16->fp32 on 24 cores vs NPU_MODEL §5.1 V1 (target: time ±10 %, pipe ratios ±5 points)")
    print(f"{'size':>6} {'what':>9} {'model':>9} {'measured':>9} {'diff':>8}  ok")
    all_ok = True
    for n in sizes:
        us, ratios, hit, wall = run_gemm(n, m)
        meas = MEASURED[n]
        diff = us / meas["time_us"] - 1
        ok = abs(diff) <= TIME_TOLERANCE
        all_ok &= ok
        print(f"{n:>6} {'time us':>9} {us:9.1f} {meas['time_us']:9.1f} {diff * 100:+7.1f}%  {'yes' if ok else 'NO'}"
              f"   (L2 hit {hit:.1f} % of read bytes; simulated in {wall:.1f} s)")
        for key, name in PIPE_NAMES.items():
            d = ratios[key] - meas[key]
            ok = abs(d) <= RATIO_TOLERANCE
            all_ok &= ok
            print(f"{'':>6} {name:>9} {ratios[key]:8.1f}% {meas[key]:8.1f}% {d:+7.1f}pt  {'yes' if ok else 'NO'}")
    return all_ok


def policy_table(sizes: list[int]) -> None:
    """The sizes whose data outgrow the L2, under each replacement policy (the one modelling choice V1 decides)."""
    print()
    print("L2 replacement (Machine.l2_replacement) on the sizes whose data outgrow the L2: time / TMATMUL vs measured")
    for n in sizes:
        meas = MEASURED[n]
        cells = []
        for policy in L2_REPLACEMENTS:
            us, ratios, hit, _ = run_gemm(n, ascend_910b.replace(l2_replacement=policy))
            ok = abs(us / meas["time_us"] - 1) <= TIME_TOLERANCE and all(
                abs(ratios[k] - meas[k]) <= RATIO_TOLERANCE for k in PIPE_NAMES)
            time_pct, cube_pt = (us / meas["time_us"] - 1) * 100, ratios["CUBE"] - meas["CUBE"]
            verdict = "in" if ok else "OUT"
            cells.append(f"{policy} {time_pct:+5.1f} % / {cube_pt:+5.1f}pt (L2 hit {hit:.1f} %, {verdict})")
        print(f"{n:>6}  " + "   ".join(cells))


def roofline_table() -> None:
    """The §5.3 cases of tests/sim/test_roofline.py (imported from there, so bench and test agree)."""
    path = Path(__file__).resolve().parents[1] / "tests" / "sim" / "test_roofline.py"
    spec = importlib.util.spec_from_file_location("ptort_roofline_cases", path)
    assert spec is not None and spec.loader is not None
    cases = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = cases  # dataclasses look their module up while the file runs
    spec.loader.exec_module(cases)
    print()
    print("Roofline (NPU_MODEL §5.3, target: 5-15 % above the bound; with the kernel-end L2 flush, as §5.3 counts "
          "every byte through HBM)")
    for case in (cases.add_case(), cases.softmax_case()):
        print(f"  {case.name:<28} model {case.model_us:8.2f} us   bound {case.bound_us:8.2f} us   "
              f"{(case.ratio - 1) * 100:+6.1f} %   ({case.bound_what})")


def main(argv: list[str]) -> int:
    sizes = [1536, 3072, 6144] if "--quick" in argv else [1536, 3072, 6144, 7680]
    ok = calibration_table(sizes)
    policy_table([n for n in sizes if n >= 6144])
    roofline_table()
    print()
    print("all GEMM figures inside the targets" if ok else "some GEMM figures are OUTSIDE the targets")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
