"""Engine speed: stage-items (kernel invocations) per second on a linear K-stage pipeline, side by side with SimPy.

The model is the slot-semantics pipeline of ``../shared/bench/slots_pipeline.py``: stage k starts item i when it
finished item i-1, item i arrived from stage k-1 and a slot of channel k is free (depth D, latency L); costs are
fixed per stage (100, 60, 100 cycles by default, so the middle stage waits). Ours is built from the DSL with
``@kernel(cycles=...)``-pinned empty kernels, compiled with ``compute_values=False`` (empty kernels compute nothing
either way; pass ``--compute-values`` to time the numpy path too), and timed around ``program.execute()``, which
covers the engine run and building the Trace (spans, stalls; occupancy samples are built when first read).
Ours runs three ways: with ``PinnedCosts`` (the cost model reduced to fixed per-stage times, the issue's model;
the engine runs each process until it blocks), with a ``PinnedCosts`` that asks for global time order (the heap
path every cost model with shared pipes/HBM takes), and with the default ``compile()`` cost model (the NPU model,
which prices pinned kernels as fixed times too, through its general ``task_timing``).
The same model also runs through ``slots_pipeline.py``'s ``oracle``
(max-plus recurrence), ``heapq_run`` (a hand-written heapq event loop) and ``simpy_run`` (idiomatic SimPy 4), in
the same process, and every makespan must agree (at <= 1e4 tiles every start/finish time is checked as well).

    .venv/bin/python bench/pipeline_speed.py                    # 1e3..1e6 tiles; SimPy up to 1e5; profile at 1e5
    .venv/bin/python bench/pipeline_speed.py --max-tiles 100000 --repeat 3
    .venv/bin/python bench/pipeline_speed.py --tiles 1000 10000 --no-profile
    .venv/bin/python bench/pipeline_speed.py --full             # SimPy at 1e6 too (~30 s more)

Default run: about 1-2 minutes on a 2-core EPYC VM. Wall times are the best of ``--repeat`` runs.
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import hashlib
import importlib.util
import io
import os
import platform
import pstats
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

from ptort_lab import Channel, Dense, connect, consume, for_each, kernel, process, send, task
from ptort_lab.sim.runner import PinnedCosts

SLOTS_PIPELINE = Path(__file__).resolve().parents[2] / "shared/bench/slots_pipeline.py"
DEFAULT_TILES = (1_000, 10_000, 100_000, 1_000_000)
BASE_CYCLES = (100, 60, 100)


# -- the anchors --------------------------------------------------------------------------------------------------
def load_anchors() -> ModuleType | None:
    """``slots_pipeline.py`` (oracle, simpy_run, heapq_run, stage_times), or None with a message when absent."""
    if not SLOTS_PIPELINE.is_file():
        print(f"NOTE: {SLOTS_PIPELINE} not found; timing ptort_lab only, checked against the built-in max-plus "
              "recurrence (no SimPy/heapq columns).", file=sys.stderr)
        return None
    spec = importlib.util.spec_from_file_location("slots_pipeline", SLOTS_PIPELINE)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def stage_times(stages: int, n: int, seed: int | None) -> list[list[int]]:
    """Per-stage, per-item cycles: fixed (100, 60, 100, ...) or with the anchor's +-50% jitter for a seed."""
    if anchors is not None:
        return anchors.stage_times(stages, n, seed)
    if seed is not None:
        raise SystemExit("--jitter-seed needs slots_pipeline.py (its stage_times defines the jitter)")
    return [[BASE_CYCLES[k % len(BASE_CYCLES)]] * n for k in range(stages)]


def maxplus(times: list[list[int]], depth: int, latency: int) -> tuple[list[list[int]], list[list[int]]]:
    """S_k(i) = max(F_k(i-1), F_{k-1}(i) + L, F_{k+1}(i-D) + L), F = S + t: the fallback oracle."""
    K, n = len(times), len(times[0])
    S = [[0] * n for _ in range(K)]
    F = [[0] * n for _ in range(K)]
    for i in range(n):
        for k in range(K):
            s = F[k][i - 1] if i else 0
            if k and F[k - 1][i] + latency > s:
                s = F[k - 1][i] + latency
            if k + 1 < K and i >= depth and F[k + 1][i - depth] + latency > s:
                s = F[k + 1][i - depth] + latency
            S[k][i], F[k][i] = s, s + times[k][i]
    return S, F


# -- ours ---------------------------------------------------------------------------------------------------------
def build_pipeline(times: list[list[int]], depth: int, fixed: bool) -> Any:
    """K processes s0..s{K-1} over channels c0..c{K-2}; stage k's task is an empty kernel pinned to t_k(i)."""
    K, n = len(times), len(times[0])
    chans = [Channel(name=f"c{k}", depth=depth) for k in range(K - 1)]
    procs = []
    for k in range(K):
        def empty() -> None:
            """An empty stage kernel: only its pinned cost matters."""
        if fixed:
            kern = kernel(cycles=times[k][0], name=f"s{k}")(empty)
            work = (lambda kn: lambda i: task(kn, [i], {}))(kern)
        else:
            kern = kernel(name=f"s{k}")(empty)
            work = (lambda kn, tk: lambda i: task(kn, [i], {}, cycles=lambda t: tk[t.params[0]]))(kern, times[k])
        if k + 1 < K:
            body = (lambda ch, wk: lambda i: send(ch, wk(i)))(chans[k], work)
        else:
            body = work
        p = process(f"s{k}").body(for_each(Dense[n](), body) if k == 0 else consume(chans[k - 1], body))
        if k:
            p.consumes(chans[k - 1])
        if k + 1 < K:
            p.produces(chans[k])
        procs.append(p)
    return connect(procs)


def ours_program(times: list[list[int]], depth: int, latency: int, compute_values: bool,
                 cost_model: Any = None) -> Any:
    fixed = all(len(set(t)) == 1 for t in times)
    extra = {"cost_model": cost_model} if cost_model is not None else {}
    return build_pipeline(times, depth, fixed).compile(channel_latency_cycles=latency,
                                                         compute_values=compute_values, **extra)


# -- timing -------------------------------------------------------------------------------------------------------
def best_of(repeat: int, setup: Callable[[], Any], run: Callable[[Any], Any], gc_off: bool) -> tuple[float, Any]:
    """Best wall time of ``run(setup())`` over ``repeat`` runs (setup untimed); returns (seconds, last result)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        arg = setup()
        gc.collect()
        if gc_off:
            gc.disable()
        try:
            t0 = time.perf_counter()
            result = run(arg)
            dt = time.perf_counter() - t0
        finally:
            gc.enable()
        best = min(best, dt)
        del arg
    return best, result


class _TimeOrderedPinned(PinnedCosts):
    """Pinned costs, but the engine must keep global time order (as for any cost model with shared resources)."""

    time_ordered = True


# The cost models ours runs with: None is compile()'s default (the NPU model).
MODELS: dict[str, Callable[[], Any]] = {"pinned": PinnedCosts, "ordered": _TimeOrderedPinned, "npu": lambda: None}


def run_ours(times, depth, latency, compute_values, repeat, gc_off, check_times, model="pinned"):
    """Best wall time of ``program.execute()`` (building the program is not timed); then the makespan and, when
    ``check_times``, every (stage, item) -> (start, end)."""
    def setup():
        return ours_program(times, depth, latency, compute_values, MODELS[model]())

    dt, prog = best_of(repeat, setup, lambda prog: prog.execute(), gc_off)
    tr = prog.trace()
    got = {(sp.process, sp.index): (sp.start, sp.end) for sp in tr.spans} if check_times else None
    return dt, (tr.makespan, got)


def fmt_rate(items: int, dt: float | None) -> str:
    return "-" if dt is None else f"{items / dt / 1e6:.3f}"


def fmt_time(dt: float | None) -> str:
    return "-" if dt is None else f"{dt:.3f}"


def measure(args: argparse.Namespace) -> list[dict[str, Any]]:
    rows = []
    for n in args.tiles:
        repeat = args.repeat if args.repeat is not None else (3 if n <= 100_000 else 1)
        times = stage_times(args.stages, n, args.jitter_seed)
        items = args.stages * n
        row: dict[str, Any] = {"tiles": n, "items": items, "repeat": repeat}
        check = n <= 10_000
        S, F = (anchors.oracle if anchors else maxplus)(times, args.depth, args.latency) if check else (None, None)

        dt, (makespan, got) = run_ours(times, args.depth, args.latency, args.compute_values, repeat,
                                       args.gc_off, check)
        row["ours"], row["makespan"] = dt, {"ours": makespan}
        if check:
            bad = [(k, i) for k in range(args.stages) for i in range(n)
                   if got[(f"s{k}", i)] != (S[k][i], F[k][i])]
            assert not bad, f"ptort_lab start/finish differ from the oracle at (stage, item) {bad[:5]}"
        for key, model, skip in (("ours_heap", "ordered", args.no_time_ordered), ("ours_npu", "npu", args.no_npu)):
            if skip:
                continue
            row[key], (mk, got) = run_ours(times, args.depth, args.latency, args.compute_values, repeat,
                                           args.gc_off, check, model=model)
            row["makespan"][key] = mk
            if check:
                assert all(got[(f"s{k}", i)] == (S[k][i], F[k][i]) for k in range(args.stages) for i in range(n)), \
                    f"the {model} run differs from the oracle"
        if args.compute_values_too:
            row["ours_cv"], (mk, _) = run_ours(times, args.depth, args.latency, True, repeat, args.gc_off, False)
            row["makespan"]["ours_cv"] = mk

        impls: list[tuple[str, Callable[[], int]]] = []
        if anchors is not None:
            impls.append(("oracle", lambda times=times: anchors.oracle(times, args.depth, args.latency)[1][-1][-1]))
            impls.append(("heapq", lambda times=times: anchors.heapq_run(times, args.depth, args.latency)))
            if args.full or n <= args.simpy_max:
                impls.append(("simpy", lambda times=times: anchors.simpy_run(times, args.depth, args.latency)))
        else:
            impls.append(("oracle", lambda times=times: maxplus(times, args.depth, args.latency)[1][-1][-1]))
        for name, fn in impls:
            dt, mk = best_of(repeat, lambda: None, lambda _, fn=fn: fn(), args.gc_off)
            row[name], row["makespan"][name] = dt, mk
        row["agree"] = len(set(row["makespan"].values())) == 1
        rows.append(row)
        walls = ", ".join(f"{k} {row[k]:.3f}s" for k in ("ours", "ours_heap", "ours_npu", "oracle", "heapq", "simpy")
                          if k in row)
        verdict = "ok" if row["agree"] else f"MISMATCH {row['makespan']}"
        print(f"  {n:>9,} tiles: {walls}  makespan {row['makespan']['ours']:,} {verdict}", file=sys.stderr, flush=True)
    return rows


def table(rows: list[dict[str, Any]], compute_values: bool, cv_too: bool) -> str:
    ours_label = "ours" + (" (values on)" if compute_values else "")
    cols = [("ours", ours_label)] + ([("ours_heap", "ours time-ordered")] if any("ours_heap" in r for r in rows)
                                     else []) + ([("ours_npu", "ours NPU model")] if any("ours_npu" in r for r in rows)
                                                 else []) + ([("ours_cv", "ours (values on)")] if cv_too else []) + \
        [("simpy", "SimPy"), ("heapq", "heapq"), ("oracle", "oracle")]
    head = "| tiles | stage-items | " + " | ".join(f"{lab} s | {lab} M/s" for _, lab in cols) + \
        " | ours/SimPy | ours/heapq | ours/oracle | time-ordered/SimPy | NPU model/SimPy | makespan (cycles) | agree |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        cells = [f"{r['tiles']:,}", f"{r['items']:,}"]
        for key, _ in cols:
            cells += [fmt_time(r.get(key)), fmt_rate(r["items"], r.get(key))]
        for ref in ("simpy", "heapq", "oracle"):
            cells.append(f"{r[ref] / r['ours']:.2f}x" if r.get(ref) else "-")
        for key in ("ours_heap", "ours_npu"):
            cells.append(f"{r['simpy'] / r[key]:.2f}x" if r.get("simpy") and r.get(key) else "-")
        cells += [f"{r['makespan']['ours']:,}", "yes" if r["agree"] else f"NO {r['makespan']}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


# -- profile ------------------------------------------------------------------------------------------------------
def profile(args: argparse.Namespace, n: int, top: int) -> str:
    """cProfile of ``program.execute()`` at n tiles: the top functions by own time, with their share."""
    times = stage_times(args.stages, n, args.jitter_seed)
    prog = ours_program(times, args.depth, args.latency, args.compute_values, MODELS[args.profile_model]())
    gc.collect()
    pr = cProfile.Profile()
    t0 = time.perf_counter()
    pr.enable()
    prog.execute()
    pr.disable()
    wall = time.perf_counter() - t0
    if args.profile_out:
        pr.dump_stats(args.profile_out)
    st = pstats.Stats(pr, stream=io.StringIO())
    total = st.total_tt  # type: ignore[attr-defined]
    entries = sorted(st.stats.items(), key=lambda kv: kv[1][2], reverse=True)  # type: ignore[attr-defined]
    root = str(Path(__file__).resolve().parents[1]) + os.sep
    lines = [f"cProfile of program.execute() at {n:,} tiles ({args.stages * n:,} stage-items, "
             f"{args.profile_model} costs): "
             f"{wall:.2f} s under the profiler, {total:.2f} s of profiled time",
             "", "| # | function (file:line) | calls | own s | own % | cumulative s | cumulative % |",
             "|---|---|---|---|---|---|---|"]
    for i, ((file, line, func), (cc, nc, tt, ct, _)) in enumerate(entries[:top], 1):
        where = file.replace(root, "").replace(sys.prefix + os.sep, "").replace(sys.base_prefix + os.sep, "")
        calls = f"{nc:,}" if cc == nc else f"{nc:,}/{cc:,}"
        lines.append(f"| {i} | `{func}` ({where}:{line}) | {calls} | {tt:.3f} | {100 * tt / total:.1f} | "
                     f"{ct:.3f} | {100 * ct / total:.1f} |")
    return "\n".join(lines)


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    simpy_v = "absent"
    try:
        import simpy
        simpy_v = simpy.__version__
    except ImportError:
        pass
    return (f"{platform.system()} {platform.machine()}, {cpu}, nproc={os.cpu_count()}, "
            f"Python {platform.python_version()} ({platform.python_implementation()}), SimPy {simpy_v}")


def _loadavg() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


def gc_cost(args: argparse.Namespace, n: int) -> str:
    """Unprofiled run at n tiles with gc callbacks: how much of execute() the cyclic collector takes."""
    times = stage_times(args.stages, n, args.jitter_seed)
    prog = ours_program(times, args.depth, args.latency, args.compute_values, MODELS[args.profile_model]())
    spans: list[tuple[int, float]] = []
    started: list[float] = []

    def cb(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            started.append(time.perf_counter())
        else:
            spans.append((info["generation"], time.perf_counter() - started.pop()))

    gc.collect()
    gc.callbacks.append(cb)
    try:
        t0 = time.perf_counter()
        prog.execute()
        wall = time.perf_counter() - t0
    finally:
        gc.callbacks.remove(cb)
    in_gc = sum(dt for _, dt in spans)
    big = max(spans, key=lambda x: x[1], default=(None, 0.0))
    return (f"GC during execute() at {n:,} tiles (unprofiled): {len(spans)} collection(s), {in_gc:.3f} s of "
            f"{wall:.3f} s ({100 * in_gc / wall:.0f}%); the largest was generation {big[0]} at {big[1]:.3f} s; "
            f"{len(gc.get_objects()):,} objects tracked afterwards")


def code_version() -> str:
    """git HEAD plus a hash of the files that decide engine speed (they may carry uncommitted edits), taken from the
    ptort_lab that was imported (it may be another checkout, given with PYTHONPATH)."""
    import ptort_lab
    root = Path(ptort_lab.__file__).resolve().parents[1]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=False).stdout.strip() or "?"
    except OSError:
        head = "?"
    parts = []
    for rel in ("ptort_lab/sim/engine.py", "ptort_lab/sim/runner.py", "ptort_lab/dsl/steps.py",
                "ptort_lab/sim/trace.py"):
        f = root / rel
        digest = hashlib.sha256(f.read_bytes()).hexdigest()[:10] if f.is_file() else "absent"
        parts.append(f"{Path(rel).name} {digest}")
    where = "" if root == Path(__file__).resolve().parents[1] else f" (ptort_lab from {root})"
    return f"git {head}{where}; sha256 " + ", ".join(parts)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tiles", type=int, nargs="+", default=None, help="tile counts (default 1e3 1e4 1e5 1e6)")
    ap.add_argument("--max-tiles", type=int, default=None, help="drop tile counts above this")
    ap.add_argument("--repeat", type=int, default=None,
                    help="runs per measurement, the best wall time counts (default 3 up to 1e5 tiles, 1 above)")
    ap.add_argument("--full", action="store_true", help="run SimPy at every size (1e6 takes ~30 s)")
    ap.add_argument("--simpy-max", type=int, default=100_000, help="largest tile count for SimPy without --full")
    ap.add_argument("--stages", type=int, default=3)
    ap.add_argument("--depth", type=int, default=2)
    ap.add_argument("--latency", type=int, default=0)
    ap.add_argument("--jitter-seed", type=int, default=None, help="per-item +-50%% cost jitter (cycles= functions)")
    ap.add_argument("--compute-values", action="store_true", help="run ours with compute_values=True")
    ap.add_argument("--compute-values-too", action="store_true", help="extra column: ours with compute_values=True")
    ap.add_argument("--no-time-ordered", action="store_true",
                    help="skip the extra run of ours with a cost model that asks for global time order (heap)")
    ap.add_argument("--no-npu", action="store_true",
                    help="skip the extra run of ours with the default (NPU) cost model")
    ap.add_argument("--gc-off", action="store_true", help="disable the cyclic GC while timing")
    ap.add_argument("--profile-tiles", type=int, default=100_000)
    ap.add_argument("--profile-top", type=int, default=15)
    ap.add_argument("--profile-out", default=None, help="also dump the raw cProfile stats here")
    ap.add_argument("--profile-model", choices=sorted(MODELS), default="pinned", help="cost model of the profiled run")
    ap.add_argument("--no-profile", action="store_true")
    args = ap.parse_args(argv)
    tiles = list(args.tiles or DEFAULT_TILES)
    if args.max_tiles is not None:
        tiles = [n for n in tiles if n <= args.max_tiles]
    if not tiles:
        ap.error("no tile counts left (check --tiles / --max-tiles)")
    args.tiles = tiles

    global anchors
    anchors = load_anchors()
    cmd = "python " + " ".join([Path(sys.argv[0]).name] + (sys.argv[1:] if argv is None else argv))
    print(f"machine: {machine()}")
    print(f"command: {cmd}")
    print(f"code: {code_version()}")
    base = tuple(BASE_CYCLES[k % len(BASE_CYCLES)] for k in range(args.stages))
    costs = f"fixed {base}" if args.jitter_seed is None else f"{base} +-50% jitter, seed {args.jitter_seed}"
    print(f"model: K={args.stages} stages, per-item cycles {costs}"
          f", depth {args.depth}, latency {args.latency}; ours: PinnedCosts (+ time-ordered PinnedCosts, + the default "
          f"NPU model), compute_values={args.compute_values}, "
          f"timed around program.execute(); best of {args.repeat or '3 (<= 1e5 tiles) / 1 (above)'}; "
          f"GC {'off' if args.gc_off else 'on'}; load average at start {_loadavg()}")
    print()
    rows = measure(args)
    print(table(rows, args.compute_values, args.compute_values_too))
    print()
    if not all(r["agree"] for r in rows):
        print("MAKESPAN MISMATCH: see the agree column")
    simpy_ratios = [r["simpy"] / r["ours"] for r in rows if r.get("simpy")]
    if simpy_ratios:
        print(f"ours/SimPy: {min(simpy_ratios):.2f}x .. {max(simpy_ratios):.2f}x (target >= 3x)")
    for key, label in (("ours_heap", "time-ordered"), ("ours_npu", "NPU model")):
        ratios = [r["simpy"] / r[key] for r in rows if r.get("simpy") and r.get(key)]
        if ratios:
            print(f"ours {label}/SimPy: {min(ratios):.2f}x .. {max(ratios):.2f}x")
    heapq_ratios = [r["heapq"] / r["ours"] for r in rows if r.get("heapq")]
    if heapq_ratios:
        print(f"ours/heapq: {min(heapq_ratios):.2f}x .. {max(heapq_ratios):.2f}x")
    if not args.no_profile:
        print()
        print(profile(args, args.profile_tiles, args.profile_top))
        print()
        print(gc_cost(args, args.profile_tiles))
    if not all(r["agree"] for r in rows):
        raise SystemExit(1)


anchors: ModuleType | None = None

if __name__ == "__main__":
    main()
