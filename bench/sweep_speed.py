#!/usr/bin/env python3
"""Sweep speed: a 200-point timing-only flash-attention sweep run serially, on a process pool and on a Dask
LocalCluster (this machine's cores, one thread per worker), and a rerun from the sweep cache; the rows of every
executor must be equal, and the ratios to the serial run are printed.

The sweep: depth 1..5 x tile (M, N) in {32x64, 64x64, 64x128, 128x128} x tiles (KV blocks per query tile)
2, 4, ..., 20 = 200 points, each one pipeline run and its data-parallel twin (2 heads, 2 query tiles, head dim
128). The builder comes from ``flash_attention_builder()``: examples/csp_attention's kernels and pipeline for now;
switch that one function to examples/flash_attention's builder when it lands (the rest of the bench takes any
builder of depth, tile, tiles).

Wall times are the best of ``--repeats`` rounds, each round running every executor once (interleaved: the
machine is shared, and a burst of other work then hits each executor alike); the process pool is timed with its
start (a new pool per sweep, as sweep(executor="processes") does), the Dask cluster without its start (printed
apart: a cluster is started once and used for many sweeps). CPU s is the CPU time of the points wherever they ran,
so CPU/wall says how many cores a sweep kept busy.

Usage:
    python bench/sweep_speed.py [--repeats 2] [--points 200]
"""
from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ptort_lab.sweeps import run_sweep  # noqa: E402

DEPTHS = [1, 2, 3, 4, 5]
TILES = [(32, 64), (64, 64), (64, 128), (128, 128)]
KV_BLOCKS = [2, 4, 6, 8, 10, 12, 14, 16, 18, 20]
HEADS, Q_TILES, HEAD_DIM = 2, 2, 128


def flash_attention_builder() -> Callable[..., Any]:
    """The builder the bench sweeps, a function of (depth, tile, tiles): examples/csp_attention's 4-stage cube/vector
    flash attention for now. Switch this function to examples/flash_attention's builder once that example lands."""
    sys.path.insert(0, str(ROOT / "examples" / "csp_attention"))
    import csp_attention_example as fa  # the workers import it by reference (sys.path is handed to them)
    import numpy as np

    def build(depth: int, tile: tuple[int, int], tiles: int) -> Any:
        m, n = tile
        q = np.zeros((HEADS, Q_TILES, m, HEAD_DIM), np.float16)  # timing-only: the values are never read
        kt = np.zeros((HEADS, tiles, HEAD_DIM, n), np.float16)
        v = np.zeros((HEADS, tiles, n, HEAD_DIM), np.float16)
        return fa.build(q, kt, v, m, n, depth, fa.make_kernels(m, n, HEAD_DIM)).pipeline

    return build


def timed(run: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """(best wall time in seconds, the last result)."""
    best, result = float("inf"), None
    for _ in range(repeats):
        started = time.perf_counter()
        result = run()
        best = min(best, time.perf_counter() - started)
    return best, result


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=2, help="runs per executor; the best wall time counts (default 2)")
    ap.add_argument("--points", type=int, default=200, choices=(40, 200),
                    help="200 (the full sweep) or 40 (tiles 2 and 4 only: a quick check)")
    args = ap.parse_args(argv)
    build = flash_attention_builder()
    blocks = KV_BLOCKS if args.points == 200 else KV_BLOCKS[:2]
    knobs = dict(depth=DEPTHS, tile=TILES, tiles=blocks)
    cores = os.cpu_count() or 1

    def sweep(executor: Any, cache: Any = False) -> Any:
        return run_sweep(build, **knobs, executor=executor, cache=cache, progress=False)

    from distributed import Client, LocalCluster
    started = time.perf_counter()
    results: dict[str, tuple[float, Any]] = {}
    with LocalCluster(n_workers=cores, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster, \
            Client(cluster) as client:
        cluster_s = time.perf_counter() - started
        runs: dict[str, Callable[[], Any]] = {"serial": lambda: sweep("serial"),
                                              "process pool": lambda: sweep("processes"),
                                              "Dask LocalCluster": lambda: sweep(client.get_executor())}
        for _ in range(args.repeats):  # interleaved, so that a burst of other load on the machine hits each alike
            for name, run in runs.items():
                seconds, result = timed(run, 1)
                if name not in results or seconds < results[name][0]:
                    results[name] = (seconds, result)

    with tempfile.TemporaryDirectory() as folder:
        sweep("serial", cache=folder)  # fill the cache
        results["rerun from the cache"] = timed(lambda: sweep("serial", cache=folder), args.repeats)

    reference = results["serial"][1].rows
    assert len(reference) == args.points, len(reference)
    for name, (_, result) in results.items():
        assert result.rows == reference, f"{name}: rows differ from the serial run"
        assert not result.failures, result.failures

    serial_s = results["serial"][0]
    print(f"Sweep speed: {args.points}-point timing-only flash-attention sweep "
          f"(examples/csp_attention: {HEADS} heads, {Q_TILES} query tiles, head dim {HEAD_DIM}; depth x tile x "
          f"KV blocks), best of {args.repeats}")
    print(f"  Python {platform.python_version()}, {platform.machine()}, {cores} CPUs, load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"  {'executor':<22} {'wall s':>8} {'points/s':>9} {'vs serial':>10} {'CPU s':>7} {'CPU/wall':>9}  ran on")
    for name, (seconds, result) in results.items():
        print(f"  {name:<22} {seconds:8.2f} {args.points / seconds:9.1f} {serial_s / seconds:9.2f}x "
              f"{result.cpu_seconds:7.2f} {result.cpu_seconds / seconds:9.2f}  {result.executor}")
    print("  (CPU s: the CPU time of the points, wherever they ran; CPU/wall: how many cores the sweep kept busy. On a "
          "shared machine other work takes cores too, so compare CPU/wall with the cores free.)")
    print(f"  Dask LocalCluster start ({cores} worker processes): {cluster_s:.2f} s (not in its row)")
    print("  rows: equal for every executor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
