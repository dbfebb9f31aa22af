#!/usr/bin/env python3
"""Regenerate test/fixtures/*.json from a real ptort_lab run (the spec pipeline: load -> compute -> store).

    .venv/bin/python extensions/ptort-lab-renderers/scripts/make_fixtures.py

Writes the exact ``application/vnd.ptort.trace+json`` and ``application/vnd.ptort.pipeline+json`` payloads that
``PtortResult._repr_mimebundle_`` / ``Diagram`` emit, small enough (4 tiles) to commit, and compact.json: the
explorer's compact run data (``ptort_lab.notebook.compact``) of the same runs, read back from trace.json, so that
``modelFromCompact`` can be checked against ``buildModel``. The TS unit tests read them.

    .venv/bin/python extensions/ptort-lab-renderers/scripts/make_fixtures.py --compact-only

rewrites compact.json alone, from the committed trace.json.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT))

from ptort_lab.explore import Knobs, run_study  # noqa: E402
from ptort_lab.notebook.compact import compact_trace  # noqa: E402
from ptort_lab.sim.trace import Trace  # noqa: E402
from ptort_lab.spec_pipeline import build  # noqa: E402
from ptort_lab.viz import pipeline_json  # noqa: E402

OUT = HERE.parent / "test" / "fixtures"


def write_compact(out: Path) -> None:
    """compact.json: each run of trace.json as the explorer sends it."""
    bundle = json.loads((out / "trace.json").read_text())
    runs = {label: compact_trace(label, Trace.load(json.dumps(trace))) for label, trace in bundle["runs"].items()}
    (out / "compact.json").write_text(json.dumps({"runs": runs}, sort_keys=True, indent=1) + "\n")
    print(f"wrote {out}/compact.json ({', '.join(runs)})")


def main() -> None:
    if "--compact-only" in sys.argv[1:]:
        write_compact(OUT)
        return
    knobs = Knobs(depth=2, tile=(64, 64), tiles=4, cores=2)
    wl = build(knobs.depth, knobs.tile, knobs.tiles)
    comparison = run_study(wl, knobs)
    runs = {label: json.loads(program.trace().to_chrome_json()) for label, program in comparison.runs}
    trace = {"runs": runs, "knobs": {"depth": knobs.depth, "tile": list(knobs.tile), "tiles": knobs.tiles,
                                     "cores": knobs.cores}}
    out = OUT
    out.mkdir(parents=True, exist_ok=True)
    (out / "trace.json").write_text(json.dumps(trace, sort_keys=True, indent=1) + "\n")
    (out / "pipeline.json").write_text(json.dumps(pipeline_json(wl), sort_keys=True, indent=1) + "\n")
    print(f"wrote {out}/trace.json ({sum(len(r['traceEvents']) for r in runs.values())} events), pipeline.json")
    write_compact(out)


if __name__ == "__main__":
    main()
