"""Flash attention (examples/flash_attention) under the NPU model before and after issue 13, and each mechanism alone.

Run: ``.venv/bin/python bench/fa_model_ablation.py [--seq 1024 4096 ...] [--variant pipeline|data_parallel]
[--machines before after ...]``. For each sequence length, variant and machine it builds the example's workload with
its ``build()``, compiles it timing-only with ``NpuCostModel(machine)`` and prints the cycles, the time, the HBM
traffic and the bound (the example's own ``utilisation``). The example is imported from its path, not edited.

Machines (ascend_910b with some switches of issue 13 set back; ``PRE_ISSUE_13`` in sim/machine.py is all of them):
- ``before``: the model before issue 13 (write-through L2, loads holding their pipe for the latency, no dispatch);
- ``+write-back``, ``+overlap``, ``+dispatch``: ``before`` with that one mechanism of issue 13 switched on;
- ``after``: the default ascend_910b.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ptort_lab.sim.costs import NpuCostModel  # noqa: E402
from ptort_lab.sim.machine import PRE_ISSUE_13, Machine, ascend_910b  # noqa: E402

EXAMPLE = ROOT / "examples" / "flash_attention" / "flash_attention_example.py"
SEQS = (1024, 4096, 16384, 32768)


def _before(**back_on: Any) -> Machine:
    """The pre-issue-13 model, with the settings in ``back_on`` restored to the default's."""
    changes = {k: v for k, v in PRE_ISSUE_13.items() if k not in back_on}
    return ascend_910b.replace(**changes, **back_on)


MACHINES: dict[str, Machine] = {
    "before": _before(),
    "+write-back": _before(l2_write_back=True, ub_to_gm=ascend_910b.ub_to_gm, l0c_to_gm=ascend_910b.l0c_to_gm),
    "+overlap": _before(gm_read_overlap=True),
    "+dispatch": _before(block_dispatch_cycles=ascend_910b.block_dispatch_cycles),
    "after": ascend_910b,
}


def load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ptort_fa_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up while the file runs
    spec.loader.exec_module(module)
    return module


def measure(fa: ModuleType, variant: str, seq: int, machine: Machine) -> dict[str, Any]:
    """One timing-only run: cycles, us, HBM bytes, the bound and its busy %, wall seconds."""
    started = time.perf_counter()
    workload, _ = fa.build(variant, fa.Config(seq))
    program = workload.compile(cost_model=NpuCostModel(machine), compute_values=False)
    program.execute()
    stats = program.stats()
    hbm = program.cost_model.memory.hbm_bytes  # read misses, write-backs, flushes and written-through bytes
    busy = dict(sorted(stats.lane_busy_pct.items()))
    busy["HBM"] = 100.0 * hbm / (stats.total_cycles * machine.hbm_bytes_per_cycle)
    top = max(busy.values())
    bound = "+".join(name for name, pct in busy.items() if pct >= top - 0.5)  # as the example's utilisation()
    return {"cycles": stats.total_cycles, "us": stats.time_us, "hbm_mb": hbm / 1e6,
            "bound": f"{bound} {top:.0f}%", "wall": time.perf_counter() - started}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seq", type=int, nargs="+", default=list(SEQS))
    ap.add_argument("--variant", choices=("pipeline", "data_parallel"), nargs="+",
                    default=["pipeline", "data_parallel"])
    ap.add_argument("--machines", choices=tuple(MACHINES), nargs="+", default=["before", "after"])
    args = ap.parse_args(argv)
    fa = load_example()
    print(f"{'variant':<14} {'S':>6} {'machine':<12} {'cycles':>12} {'us':>10} {'HBM MB':>9}  bound (busiest)")
    for seq in args.seq:
        for variant in args.variant:
            base = None
            for name in args.machines:
                r = measure(fa, variant, seq, MACHINES[name])
                base = r["cycles"] if base is None else base
                change = f" ({(r['cycles'] / base - 1) * 100:+.1f} %)" if r["cycles"] != base else ""
                print(f"{variant:<14} {seq:>6} {name:<12} {r['cycles']:>12} {r['us']:>10.1f} {r['hbm_mb']:>9.1f}  "
                      f"{r['bound']}{change}   [{r['wall']:.0f} s]", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
