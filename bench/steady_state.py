"""Steady state (issue 14): execute(steady_state=True) against the full run, and the 1e9-tile run's wall time.

For each case the program runs in full and with steady_state=True; every figure of program.stats() must be equal
(makespan, tasks, stage/pipe/core busy %, overlap, stall cycles, bytes, error band, notes, memory counters). Then
tiles=10**9 is timed.

    .venv/bin/python bench/steady_state.py            # pinned up to 1e6 tiles, NPU model at 1e4; ~1-2 minutes
    .venv/bin/python bench/steady_state.py --quick    # up to 1e5 / 2e3
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1] / "tests"
sys.path[:0] = [str(TESTS), str(TESTS / "sim")]

from pinned_chains import linear  # noqa: E402
from test_steady_state import SMALL_L2, csp_pipe, data_parallel, figures  # noqa: E402

from ptort_lab import PinnedCosts  # noqa: E402


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return time.perf_counter() - t0, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    pinned = (10_000, 100_000) if args.quick else (10_000, 100_000, 1_000_000)
    npu = (2_000,) if args.quick else (2_000, 10_000)
    cases = [(f"linear 3-stage pinned depth {d}", n, lambda n=n, d=d: linear(n, depth=d).compile(
        cost_model=PinnedCosts())) for n in pinned for d in (1, 2)]
    cases += [(f"csp_pipeline P.pipe NPU model (L2 1 MiB) depth {d}", n, lambda n=n, d=d: csp_pipe(n, d).compile(
        compute_values=False, machine=SMALL_L2)) for n in npu for d in (1, 2)]
    cases += [("data-parallel 4 cores NPU model (L2 1 MiB)", n, lambda n=n: data_parallel(n, 4).compile(
        compute_values=False, machine=SMALL_L2)) for n in npu]
    print("| case | tiles | full run s | steady_state s | equal | period (tiles, cycles) | traced tiles |")
    print("|---|---|---|---|---|---|---|")
    for label, n, make in cases:
        program = make()
        full_s, full = timed(lambda p=program: figures(p.execute().stats()))
        steady_s, stats = timed(lambda p=program: p.execute(steady_state=True).stats())
        info = stats.steady_state
        print(f"| {label} | {n:,} | {full_s:.2f} | {steady_s:.3f} | {'yes' if figures(stats) == full else 'NO'} | "
              f"{info.period_tiles}, {info.period_cycles:,} | {info.traced_tiles} |", flush=True)
    print()
    for label, make in (("linear 3-stage pinned depth 2", lambda: linear(1000).compile(cost_model=PinnedCosts())),
                        ("csp_pipeline P.pipe NPU model (L2 1 MiB)", lambda: csp_pipe(2000).compile(
                            compute_values=False, machine=SMALL_L2))):
        program = make()
        wall, stats = timed(lambda p=program: p.execute(steady_state=True, tiles=10**9).stats())
        print(f"{label} at 1e9 tiles: {wall:.3f} s wall, makespan {stats.total_cycles:,} cycles, "
              f"{stats.task_count:,} tasks, stage busy {({k: round(v, 3) for k, v in stats.stage_busy_pct.items()})}")


if __name__ == "__main__":
    main()
