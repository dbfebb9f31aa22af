#!/usr/bin/env python3
"""Explorer latency on the kernel side only (no browser, no JupyterLab): what one slider release costs in Python.

Builds ``Explorer(build, Knobs(depth=2, tile=(128, 128), tiles=T, cores=4))`` (the spec pipeline of tutorial 03, as
``bench/explorer_latency.py`` shows it) and, for each knob, sends the requests a browser sends when the slider is
released (``Explorer._on_request``): the study reruns, the view state is built and encoded as JSON (what the comm
message carries). Two kinds of moves per knob:

* ``new``: every move goes to a value not seen before (what a run cache cannot answer for the side the knob
  changes);
* ``back``: back and forth between two values (ArrowRight / ArrowLeft, as ``explorer_latency.py`` moves).

Prints, per tile count, knob and kind, the median wall time of a move and its parts: the rerun (study + view state,
``kernel_ms`` as the view reports it) and the JSON encoding; the machine is shared, so the process CPU time is
printed too. A warm-up explorer moves each knob once first (imports, first-use caches).
``--profile`` adds a cProfile of the 64-tile ``new`` moves.

Usage:
    python bench/explorer_kernel.py [--tiles 16 64] [--moves 5] [--profile]
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import platform
import pstats
import statistics
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("MPLBACKEND", "Agg")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from ptort_lab.explore import Knobs  # noqa: E402
from ptort_lab.notebook import Explorer  # noqa: E402
from ptort_lab.spec_pipeline import build  # noqa: E402


def moves(knob: str, kind: str, tiles: int, count: int) -> list[Any]:
    """The values a knob's slider is released at (the start is depth 2, tile 128x128, ``tiles``, cores 4)."""
    if kind == "back":
        pair = {"depth": (3, 2), "tile": ([64, 64], [128, 128]), "tiles": (tiles + 1, tiles), "cores": (5, 4)}[knob]
        return [pair[i % 2] for i in range(count)]
    new = {"depth": [3, 4, 5, 6, 7, 8, 1], "tile": [[64, 64], [32, 32], [128, 128]],
           "tiles": [tiles + 1 + i for i in range(count)], "cores": [5, 6, 7, 8, 3, 2, 1]}[knob]
    return new[:count]


def one_move(explorer: Explorer, knob: str, value: Any, rid: str) -> tuple[float, float, float, float]:
    """(wall ms, cpu ms, kernel_ms, json ms) of one release."""
    wall, cpu = time.perf_counter(), time.process_time()
    explorer._on_request({"new": {"rid": rid, "knobs": {knob: value}}})
    encode = time.perf_counter()
    json.dumps(explorer.view)
    json.dumps(explorer.controls)
    end = time.perf_counter()
    if explorer.view.get("error"):
        raise SystemExit(f"move {knob}={value} failed: {explorer.view['error']}")
    return ((end - wall) * 1e3, (time.process_time() - cpu) * 1e3, explorer.view["kernel_ms"],
            (end - encode) * 1e3)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiles", type=int, nargs="+", default=[16, 64])
    ap.add_argument("--moves", type=int, default=5, help="moves per knob and kind (default 5; tile: at most 3 new)")
    ap.add_argument("--profile", action="store_true", help="cProfile the new moves at the last tile count")
    args = ap.parse_args(argv)
    print(f"explorer kernel side: spec pipeline 128x128, python {platform.python_version()}, "
          f"load average {os.getloadavg()[0]:.1f}")
    warm = Explorer(build, Knobs(depth=2, tile=(128, 128), tiles=4, cores=4))  # imports and first-use caches
    for knob, value in (("depth", 3), ("tile", [64, 64]), ("tiles", 5), ("cores", 5)):
        one_move(warm, knob, value, "warm-up")
    for tiles in args.tiles:
        for kind in ("new", "back"):
            for knob in ("depth", "tile", "tiles", "cores"):
                explorer = Explorer(build, Knobs(depth=2, tile=(128, 128), tiles=tiles, cores=4))
                gc.collect()
                profile = cProfile.Profile() if args.profile and kind == "new" and tiles == args.tiles[-1] else None
                rows = []
                for i, value in enumerate(moves(knob, kind, tiles, args.moves)):
                    if profile is not None:
                        profile.enable()
                    rows.append(one_move(explorer, knob, value, f"{knob}{i}"))
                    if profile is not None:
                        profile.disable()
                wall, cpu, kernel, encode = (statistics.median(r[i] for r in rows) for i in range(4))
                print(f"  tiles {tiles:>3} {knob:<6} {kind:<4}: median {wall:6.1f} ms wall, {cpu:6.1f} ms cpu "
                      f"(rerun + view state {kernel:6.1f}, json {encode:4.1f}) over {len(rows)} moves")
                if profile is not None:
                    out = io.StringIO()
                    pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(25)
                    print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
