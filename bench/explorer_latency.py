#!/usr/bin/env python3
"""Explorer latency in a real browser: slider release -> redraw finished, measured in the page.

Starts its own JupyterLab (as tests/extension/test_browser.py does: 127.0.0.1, a free port, a random token,
temporary dirs; it kills exactly that server at the end), opens a notebook whose cell shows
``Explorer(build, Knobs(depth=2, tile=(128, 128), tiles=TILES, cores=4))`` (the spec pipeline of tutorial 03) in
headless Debian chromium through playwright, and moves each slider (depth, tile, tiles, cores) several times with
the keyboard (ArrowRight / ArrowLeft on the focused slider: one release each). The explorer's view records, for
every move, the time from the slider's ``change`` event to the end of the synchronous redraw of both timelines
(``window.ptortExplorerTimings``, ``performance.now()`` in the page): the kernel's rerun, the round trip and the
client-side drawing are all inside it. Prints each move with its parts (the kernel's rerun as the kernel timed it,
the rest of the round trip: comm messages and JSON, and the drawing in the page), their medians, and ends with

    explorer slider->redraw median <N> ms p90 <M> ms (<K> moves)

Usage:
    python bench/explorer_latency.py [--moves 4] [--tiles 16] [--notebook-7]

Needs /usr/bin/chromium (``apt-get install -y chromium``; never ``playwright install``), playwright and JupyterLab
(``--notebook-7``: the ``notebook`` package). The budget (issue 15) is a median under 150 ms.
"""
from __future__ import annotations

import argparse
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "extension"))

from test_explorer_browser import (  # noqa: E402
    CHROMIUM,
    LabServer,
    explorer_requirements,
    launch_chromium,
    open_explorer,
    write_explorer_notebook,
)

KNOBS = ("depth", "tile", "tiles", "cores")
BUDGET_MS = 150.0


def move(page, knob: str, key: str, timeout_ms: float = 30_000) -> dict:
    """Release the ``knob`` slider one step further (``key``) and wait for the view to record the redraw."""
    before = page.evaluate("() => (window.ptortExplorerTimings || []).length")
    page.focus(f".ptort-explorer input[data-knob='{knob}']")
    page.keyboard.press(key)
    page.wait_for_function(f"() => (window.ptortExplorerTimings || []).length > {before}", timeout=timeout_ms,
                           polling="raf")
    return page.evaluate("() => window.ptortExplorerTimings[window.ptortExplorerTimings.length - 1]")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--moves", type=int, default=4, help="moves per slider (default 4)")
    ap.add_argument("--tiles", type=int, default=16, help="tiles of the spec pipeline (default 16)")
    ap.add_argument("--notebook-7", action="store_true", help="open the notebook in Notebook 7, not JupyterLab")
    args = ap.parse_args(argv)
    reason = explorer_requirements(notebook_7=args.notebook_7)
    if reason:
        print(f"explorer_latency: cannot run: {reason}", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    print(f"explorer latency: spec pipeline, 128x128 tiles, {args.tiles} tiles, {args.moves} moves per slider, "
          f"{'Notebook 7' if args.notebook_7 else 'JupyterLab'} in {CHROMIUM}; python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="ptort-explorer-bench-") as tmp:
        root = Path(tmp) / "root"
        root.mkdir()
        write_explorer_notebook(root / "explorer.ipynb", tiles=args.tiles)
        server = LabServer(root, app="notebook" if args.notebook_7 else "lab")
        try:
            server.wait_ready()
            with sync_playwright() as p:
                browser = launch_chromium(p)
                try:
                    page = browser.new_context(viewport={"width": 1400, "height": 1000}).new_page()
                    started = time.perf_counter()
                    open_explorer(page, server, "explorer.ipynb", notebook_7=args.notebook_7)
                    print(f"  notebook open and explorer drawn in {time.perf_counter() - started:.1f} s")
                    timings, parts = [], []
                    for knob in KNOBS:
                        for i in range(args.moves):
                            t = move(page, knob, "ArrowRight" if i % 2 == 0 else "ArrowLeft")
                            timings.append(t["ms"])
                            kernel = t.get("kernelMs") or 0.0
                            part = (kernel, t["replyMs"] - kernel, t["drawMs"])
                            parts.append(part)
                            print(f"  {knob:<6} move {i + 1}: {t['ms']:7.1f} ms  (kernel {part[0]:5.1f}, transfer "
                                  f"{part[1]:5.1f}, draw {part[2]:5.1f})")
                finally:
                    browser.close()
        finally:
            server.stop()
    timings.sort()
    median = statistics.median(timings)
    p90 = timings[min(len(timings) - 1, int(round(0.9 * (len(timings) - 1))))]
    kernel, transfer, draw = (statistics.median(p[i] for p in parts) for i in range(3))
    print(f"  medians: kernel {kernel:.1f} ms, transfer {transfer:.1f} ms, draw {draw:.1f} ms")
    print(f"  min {timings[0]:.1f} ms, max {timings[-1]:.1f} ms (budget: median < {BUDGET_MS:.0f} ms: "
          f"{'within' if median < BUDGET_MS else 'OVER'})")
    print(f"explorer slider->redraw median {median:.0f} ms p90 {p90:.0f} ms ({len(timings)} moves)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
