#!/usr/bin/env python3
"""Regenerate test/fixtures/*.json from a real ptort_lab run (the spec pipeline: load -> compute -> store).

    .venv/bin/python extensions/ptort-lab-renderers/scripts/make_fixtures.py

Writes the exact ``application/vnd.ptort.trace+json`` and ``application/vnd.ptort.pipeline+json`` payloads that
``PtortResult._repr_mimebundle_`` / ``Diagram`` emit, small enough (4 tiles) to commit. The TS unit tests read them.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))

from ptort_lab import DType, In, Out, Tensor, Tile, kernel, tl  # noqa: E402
from ptort_lab.csp import Channel, Process, connect, consume, send  # noqa: E402
from ptort_lab.explore import Knobs, run_study  # noqa: E402
from ptort_lab.viz import pipeline_json  # noqa: E402

F32, F16 = DType.F32, DType.F16


def spec_pipeline(n: int, r: int, c: int, depth: int):
    @kernel
    def load_kernel(src: In[Tile[r, c, F32]], dst: Out[Tile[r, c, F16]]):
        tl.store(dst, tl.cast(tl.load(src), F16))

    @kernel
    def compute_kernel(input_tile: In[Tile[r, c, F16]], output_tile: Out[Tile[r, c, F16]]):
        x = tl.load(input_tile)
        tl.store(output_tile, tl.mul(x, x))

    @kernel
    def store_kernel(src: In[Tile[r, c, F16]], dst: Out[Tile[r, c, F32]]):
        tl.store(dst, tl.cast(tl.load(src), F32))

    x = np.random.default_rng(2026).standard_normal((n, r, c)).astype(np.float32)
    X = Tensor(data=x, dtype=F32, name="X")
    T0 = Tensor(shape=(n, r, c), dtype=F16, name="T0")
    T1 = Tensor(shape=(n, r, c), dtype=F16, name="T1")
    Y = Tensor(data=np.zeros_like(x), dtype=F32, name="Y")
    l2c = Channel[Tensor](name="load_to_compute", depth=depth)
    c2s = Channel[Tensor](name="compute_to_store", depth=depth)
    loader = (Process("loader").produces(l2c)
              .body_func(lambda: [send(l2c, load_kernel[t](src=X[t], dst=T0[t])) for t in range(n)]))
    computer = (Process("computer").consumes(l2c).produces(c2s)
                .body_func(lambda: consume(l2c, lambda t: send(
                    c2s, compute_kernel[t](input_tile=T0[t], output_tile=T1[t])))))
    storer = (Process("storer").consumes(c2s)
              .body_func(lambda: consume(c2s, lambda t: store_kernel[t](src=T1[t], dst=Y[t]))))
    return connect(loader, computer, storer)


def main() -> None:
    knobs = Knobs(depth=2, tile=(64, 64), tiles=4, cores=2)
    wl = spec_pipeline(knobs.tiles, *knobs.tile, knobs.depth)
    comparison = run_study(wl, knobs)
    runs = {label: json.loads(program.trace().to_chrome_json()) for label, program in comparison.runs}
    trace = {"runs": runs, "knobs": {"depth": knobs.depth, "tile": list(knobs.tile), "tiles": knobs.tiles,
                                     "cores": knobs.cores}}
    out = HERE.parent / "test" / "fixtures"
    out.mkdir(parents=True, exist_ok=True)
    (out / "trace.json").write_text(json.dumps(trace, sort_keys=True, indent=1) + "\n")
    (out / "pipeline.json").write_text(json.dumps(pipeline_json(wl), sort_keys=True, indent=1) + "\n")
    print(f"wrote {out}/trace.json ({sum(len(r['traceEvents']) for r in runs.values())} events), pipeline.json")


if __name__ == "__main__":
    main()
