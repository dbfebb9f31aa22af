"""Where flash attention's simulator time per task goes: the NPU model's pricing, and the rest (engine, process
bodies, runner), each measured alone and in the whole run (issue 14 part 1).

Run: ``.venv/bin/python bench/fa_split.py [--seq 16384] [--variant pipeline data_parallel] [--repeat 3]``. One run of
the example (timing-only, the default NPU model, trace kept) records every ``task_timing`` call and its answer. Then,
best of ``--repeat`` each, in this process:

- ``whole``: the run as it is (``execute()``), and the part of it spent inside ``task_timing`` (``in pricing``);
- ``pricing alone``: the recorded calls replayed on a fresh ``NpuRun`` of the run, the collector paused as in a run,
  nothing else running (and once more, the digest of its answers checked against the recording's);
- ``rest alone``: the run again with each ``task_timing`` answered from the recording (no pricing at all).

``whole`` is more than the two alone: interleaved, each part finds the other's data out of the CPU caches, and the
spans the pricing makes are built and freed in the run. A change to the pricing shows in ``pricing alone`` with far
less noise than in ``whole``; a change to the engine or the DSL, in ``rest alone``.
"""
from __future__ import annotations

import argparse
import hashlib
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from fa_scale import load_example, raise_limits  # noqa: E402  # (bench/ is on sys.path)


def _add(h: Any, answer: Any) -> None:
    issued, end, spans = answer
    h.update(repr((issued, end, [tuple(s) for s in spans])).encode())


def split(variant: str, seq: int, repeat: int) -> dict[str, float]:
    """us per task of the whole run, its pricing part, the pricing alone and the rest alone (best of ``repeat``)."""
    from ptort_lab.sim import runner
    from ptort_lab.sim.gc_pause import gc_paused
    fa = load_example()
    raise_limits()
    workload, _ = fa.build(variant, fa.Config(seq))
    program = workload.compile(compute_values=False)
    calls: list[tuple[Any, ...]] = []
    answers: list[Any] = []
    begun: list[tuple[Any, ...]] = []
    mode = ["record"]
    in_pricing = [0.0]
    begin_run = runner.begin_run

    class Pricer:
        """The run's NpuRun, recorded, timed or answered from the recording (``mode``)."""

        def __init__(self, run: Any) -> None:
            self.run, self.answer = run, iter(answers)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.run, name)

        def task_timing(self, *args: Any) -> Any:
            if mode[0] == "replay":
                return next(self.answer)
            started = time.perf_counter()
            result = self.run.task_timing(*args)
            in_pricing[0] += time.perf_counter() - started
            if mode[0] == "record":
                calls.append(args)
                answers.append(result)
            return result

    Pricer.__module__ = "ptort_lab.bench_fa_split"  # (the runner checks no answer of ptort_lab's own pricers)

    def begin(cost: Any, workload: Any, placement: Any, vector_units: Any) -> Any:
        begun.append((cost, workload, placement, vector_units))
        return Pricer(begin_run(cost, workload, placement, vector_units))

    runner.begin_run = begin  # type: ignore[assignment]
    try:
        program.execute()
        tasks = len(calls)
        recorded = hashlib.sha256()
        for answer in answers:
            _add(recorded, answer)
        best: dict[str, float] = {}
        for _ in range(repeat):
            mode[0], in_pricing[0] = "time", 0.0
            started = time.perf_counter()
            program.execute()
            whole = time.perf_counter() - started
            if whole < best.get("whole", float("inf")):
                best["whole"], best["in pricing"] = whole, in_pricing[0]
            mode[0] = "replay"
            started = time.perf_counter()
            program.execute()
            best["rest alone"] = min(best.get("rest alone", float("inf")), time.perf_counter() - started)
            cost, w, placement, vector_units = begun[0]
            timing = begin_run(cost, w, placement, vector_units).task_timing
            with gc_paused():  # (as a run: the collector waits)
                started = time.perf_counter()
                for c in calls:
                    timing(*c)
                best["pricing alone"] = min(best.get("pricing alone", float("inf")), time.perf_counter() - started)
            replayed = hashlib.sha256()  # (again, checked: the same answers)
            timing = begin_run(cost, w, placement, vector_units).task_timing
            for c in calls:
                _add(replayed, timing(*c))
            if replayed.digest() != recorded.digest():
                raise AssertionError("the replayed pricing differs from the recorded one")
    finally:
        runner.begin_run = begin_run
    return {k: 1e6 * v / tasks for k, v in best.items()}


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seq", type=int, nargs="+", default=[16384])
    ap.add_argument("--variant", choices=("pipeline", "data_parallel"), nargs="+",
                    default=["pipeline", "data_parallel"])
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    from ptort_lab import compiled
    print(f"# {compiled.status()}; us of simulator time per task, best of {args.repeat}")
    print(f"{'variant':<14} {'S':>7} {'whole':>8} {'in pricing':>11} {'pricing alone':>14} {'rest alone':>11}")
    for seq in args.seq:
        for variant in args.variant:
            r = split(variant, seq, args.repeat)
            print(f"{variant:<14} {seq:>7} {r['whole']:>8.1f} {r['in pricing']:>11.1f} {r['pricing alone']:>14.1f} "
                  f"{r['rest alone']:>11.1f}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
