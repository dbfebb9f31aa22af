"""Every published measurement the NPU model has (NPU_MODEL §5), model vs measured, with the error per row.

Run: ``.venv/bin/python bench/validate.py`` (about 15 s; ``--quick`` skips 7680^3; ``--before`` runs the model as
it was before issue 13, ``ascend_910b.replace(**PRE_ISSUE_13)``). Rows:

- V1 GEMM fp16 -> fp32 on 24 cores (measured on hardware): time and the four pipe ratios, bench/calibrate_gemm.py's
  workload.
- V5 TopK (measured): not runnable, the DSL has TSORT32 but not TMRGSORT (the merge of sorted runs V5 is made of).
- V6 dense matmul peaks (measured): the model's cube peak, and the TFLOPS its V1 GEMM reaches at 6144^3.
- V7 (Ascend 910 v1, 32 cores): another chip, no preset; listed, not run.
- §5.3 roofline (an estimate, not a measurement): add and softmax, with the kernel-end L2 flush.

The last block prints the error band each kind of work gets (ptort_lab/sim/validation.py) next to what was measured
here, so a drift between the two shows.
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ptort_lab.sim.machine import PRE_ISSUE_13, Machine, ascend_910b  # noqa: E402
from ptort_lab.sim.validation import BANDS, GEMM  # noqa: E402

TOPK_MEASURED_US = {"4800 x 1024": 324.1, "3456 x 1024": 238.8, "2304 x 1024": 161.4, "half 4800, k=1008": 326.9}
PEAKS_TFLOPS = {"BF16/FP16 dense": 328.0, "FP32 dense": 87.0}  # V6, limulidae benchmark README


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def gemm_rows(machine: Machine, sizes: list[int]) -> list[float]:
    """V1: print time and pipe ratios per size; return the time errors in %."""
    bench = _load("ptort_calibrate_gemm", ROOT / "bench" / "calibrate_gemm.py")
    print("V1 GEMM fp16 -> fp32, 24 cores (measured, pto-isa gemm_performance README); target time ±10 %, ratios ±5 pt")
    print(f"  {'size':>6} {'what':>9} {'model':>10} {'measured':>10} {'error':>9}")
    errors = []
    for n in sizes:
        us, ratios, hit, _ = bench.run_gemm(n, machine)
        meas = bench.MEASURED[n]
        err = (us / meas["time_us"] - 1) * 100
        errors.append(err)
        print(f"  {n:>6} {'time us':>9} {us:10.1f} {meas['time_us']:10.1f} {err:+8.1f} %   (L2 hit {hit:.1f} %)")
        for key, name in bench.PIPE_NAMES.items():
            print(f"  {'':>6} {name:>9} {ratios[key]:9.1f}% {meas[key]:9.1f}% {ratios[key] - meas[key]:+7.1f} pt")
    return errors


def peak_rows(machine: Machine) -> None:
    """V6: the model's cube peak (16 x 16 x 16 MAC per cycle per AIC; fp32 at a quarter) against measured peaks."""
    fp16 = machine.cube_flops_per_cycle * machine.num_cores * machine.clock_hz / 1e12
    fp32 = fp16 / machine.cube_fp32_cycles_per_fractal / 2  # fractal K halves for fp32, and 2 cycles per fractal
    print("V6 dense matmul peak (measured, limulidae README): model peak vs measured achieved peak")
    for name, model in (("BF16/FP16 dense", fp16), ("FP32 dense", fp32)):
        meas = PEAKS_TFLOPS[name]
        print(f"  {name:<16} model {model:6.1f} TFLOPS   measured {meas:6.1f}   {(model / meas - 1) * 100:+6.1f} %")


def topk_rows() -> None:
    print("V5 TopK, 48 AIV (measured, pto-isa topk README): NOT RUN, the DSL has tl.tsort32 but no TMRGSORT")
    print("  " + ", ".join(f"{k}: {v} us" for k, v in TOPK_MEASURED_US.items()))
    print("V7 Ascend 910 (v1, 32 cores; AIbench): NOT RUN, a different chip with no preset")


def roofline_rows(machine: Machine) -> None:
    cases = _load("ptort_roofline_cases", ROOT / "tests" / "sim" / "test_roofline.py")
    flushed = machine.replace(l2_flush_at_end=True)
    print("§5.3 roofline (an ESTIMATE, not a measurement; target 5-15 % above; kernel-end L2 flush on)")
    for case in (cases.add_case(flushed), cases.softmax_case(flushed)):
        print(f"  {case.name:<28} model {case.model_us:8.2f} us   bound {case.bound_us:8.2f} us   "
              f"{(case.ratio - 1) * 100:+6.1f} %   ({case.bound_what})")


def band_rows(errors: list[float], sizes: list[int]) -> bool:
    """The bands of validation.py next to this run's V1 errors; False when the GEMM band no longer matches."""
    print("Error bands shown by program.stats() (ptort_lab/sim/validation.py)")
    for band in BANDS.values():
        print(f"  {band.text()}")
    if not errors:
        return True
    low, high = round(min(errors), 1), round(max(errors), 1)
    gemm = BANDS[GEMM]
    same = len(sizes) == 4 and (low, high) == (gemm.low_pct, gemm.high_pct)
    print(f"  V1 measured here: {low:+.1f} % to {high:+.1f} % on {len(sizes)} sizes -> "
          + ("matches the GEMM band" if same else "DIFFERS from the GEMM band (update sim/validation.py)"))
    return same


def main(argv: list[str]) -> int:
    before = "--before" in argv
    machine = ascend_910b.replace(name="ascend_910b_before_issue_13", **PRE_ISSUE_13) if before else ascend_910b
    sizes = [1536, 3072, 6144] if "--quick" in argv else [1536, 3072, 6144, 7680]
    print(f"model: NpuCostModel({machine.name})")
    errors = gemm_rows(machine, sizes)
    print()
    peak_rows(machine)
    topk_rows()
    print()
    roofline_rows(machine)
    print()
    ok = band_rows(errors, sizes) or before  # the bands describe the default model
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
