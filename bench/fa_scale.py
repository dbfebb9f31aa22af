"""Flash attention (examples/flash_attention) timing-only at production sequence lengths: wall time, peak RSS, us
of simulator time per task (issue 14).

Run: ``.venv/bin/python bench/fa_scale.py [--seq 4096 32768 131072] [--variant pipeline data_parallel]
[--stats-only] [--both] [--digest]``. Each (S, variant, mode) runs in a subprocess of its own, so its peak RSS
(``ru_maxrss`` of that child) is its own. A run builds the example's workload with its ``build()`` and runs it as its
``run()`` does (timing-only, the default NPU model), and prints wall s (build + compile + execute), sim s (execute
alone), stats s (``program.stats()`` after it), peak RSS (after execute, before stats), tasks, us of simulator time
per task (sim s / tasks), the simulated cycles and, with ``--digest``, the sha256 of the spans (to compare two
versions of the simulator) and of the figures of ``stats()`` (to compare the two modes).

``--stats-only`` runs ``execute(keep_trace=False)``: the same run, keeping only what ``stats()`` needs (no spans,
stalls or tasks); ``--both`` runs each case both ways. Mode ``trace`` is the default ``execute()``.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "flash_attention" / "flash_attention_example.py"
sys.path.insert(0, str(ROOT))

from fa_model_ablation import load_example  # noqa: E402  # one loader for both FA benches (bench/ is on sys.path)

SEQS = (4096, 32768, 131072)


def raise_limits() -> None:
    """Lift the run limits (engine steps, held bytes, data-parallel task count): this bench runs long on purpose."""
    from ptort_lab.dsl import steps
    from ptort_lab.sim import engine
    for module, name in ((engine, "MAX_STEPS"), (engine, "MAX_RUN_BYTES"), (steps, "MAX_TASKS"),
                         (steps, "MAX_PIPELINE_TASKS")):
        if hasattr(module, name):
            setattr(module, name, 1 << 40)


def measure(variant: str, seq: int, digest: bool, stats_only: bool = False) -> dict[str, Any]:
    """One timing-only run in this process: wall s, peak RSS MB, tasks, us per task, cycles (and the digests);
    ``stats_only``: with ``execute(keep_trace=False)``."""
    fa = load_example()
    raise_limits()
    started = time.perf_counter()
    workload, _ = fa.build(variant, fa.Config(seq))
    program = workload.compile(compute_values=False)  # as fa.run(variant, cfg) does, timed in two parts
    executed = time.perf_counter()
    program.execute(keep_trace=not stats_only)
    done = time.perf_counter()
    wall, sim = done - started, done - executed
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # (before stats() adds its own)
    stats = program.stats()
    stats_s = time.perf_counter() - done
    tasks = stats.task_count
    out = {"variant": variant, "seq": seq, "mode": "stats-only" if stats_only else "trace", "wall_s": wall,
           "tasks": tasks, "sim_s": sim, "stats_s": stats_s, "us_per_task": 1e6 * sim / tasks,
           "cycles": int(stats.total_cycles), "rss_mb": rss_mb}
    if digest:
        if not stats_only:
            spans = repr([tuple(int(v) if isinstance(v, int) or hasattr(v, "item") else v for v in s)
                          for s in program.trace.spans])
            out["digest"] = hashlib.sha256(spans.encode()).hexdigest()[:16]
        figures = repr((stats.total_cycles, stats.task_count, stats.lane_busy_pct, stats.core_busy_pct,
                        stats.stage_busy_pct, stats.overlap_pct, stats.stall_cycles, stats.bytes_moved,
                        stats.memory, stats.notes, stats.error_band))
        out["stats_digest"] = hashlib.sha256(figures.encode()).hexdigest()[:16]
    return out


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seq", type=int, nargs="+", default=list(SEQS))
    ap.add_argument("--variant", choices=("pipeline", "data_parallel"), nargs="+",
                    default=["pipeline", "data_parallel"])
    ap.add_argument("--stats-only", action="store_true",
                    help="run execute(keep_trace=False): keep only the statistics, no trace")
    ap.add_argument("--both", action="store_true", help="run each case with the trace and stats-only")
    ap.add_argument("--digest", action="store_true",
                    help="also print the sha256 of the spans and of the stats() figures (first 16 hex)")
    ap.add_argument("--child", nargs=2, metavar=("VARIANT", "SEQ"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(measure(args.child[0], int(args.child[1]), args.digest, args.stats_only)))
        return 0
    modes = [False, True] if args.both else [args.stats_only]
    print(f"{'variant':<14} {'mode':<10} {'S':>7} {'tasks':>9} {'wall s':>8} {'sim s':>8} {'stats s':>8} "
          f"{'us/task':>8} {'peak RSS MB':>11} {'cycles':>12}" + ("  digest            stats digest" if args.digest
                                                                   else ""), flush=True)
    for seq in args.seq:
        for variant in args.variant:
            for stats_only in modes:
                mode = "stats-only" if stats_only else "trace"
                cmd = [sys.executable, __file__, "--child", variant, str(seq)] + (["--digest"] if args.digest
                                                                                   else [])
                done = subprocess.run(cmd + (["--stats-only"] if stats_only else []), capture_output=True,
                                      text=True, check=False)
                if done.returncode:
                    print(f"{variant:<14} {mode:<10} {seq:>7} failed: {done.stderr.strip().splitlines()[-1:]}",
                          flush=True)
                    continue
                r = json.loads(done.stdout.strip().splitlines()[-1])
                print(f"{variant:<14} {mode:<10} {seq:>7} {r['tasks']:>9} {r['wall_s']:>8.2f} {r['sim_s']:>8.2f} "
                      f"{r['stats_s']:>8.2f} {r['us_per_task']:>8.1f} {r['rss_mb']:>11.0f} {r['cycles']:>12}"
                      + (f"  {r.get('digest', '-'):<16}  {r['stats_digest']}" if args.digest else ""), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
