#!/usr/bin/env python3
"""Data-parallel elementwise work over ragged sequences: dispatch policies, and 1 core vs many.

A batch of B sequences of different lengths (in tiles, a Ragged axis), each tile [rows, cols] F32. Every tile gets
    gelu_gate   y = gelu(x) * g[b]     gelu in its tanh form, 13 vector ops per tile (compute-bound)
where g[b] is a per-sequence [1, cols] gain broadcast over the rows. The tiles are independent, so the only
question is which core runs which task:
    round_robin(n)   task i -> core i % n                     (static, ignores costs)
    affinity(b, n)   every tile of sequence b -> core b % n   (locality: a sequence stays on one core)
    work_steal(n)    an idle core takes the next task         (dynamic)
The example runs the same workload under each policy, then on 1, 2, 4, ... cores next to its memory-bound twin
    gate        y = x * g[b]           1 vector op per tile: limited by HBM, not by cores
and last a mixed stream (a gelu_gate and a gate task per tile, interleaved) where a static round robin lines all
heavy tasks up on the same cores. Every run is checked against numpy; the numbers never depend on the schedule.

Usage:
    python examples/data_parallel/data_parallel_example.py [--size {small,default,large}]
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

try:
    import ptort_lab  # noqa: F401
except ImportError:  # running from a source checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # golden.py next to this script

from golden import gate_ref, gelu_gate_ref  # noqa: E402

from ptort_lab import (  # noqa: E402
    Dense,
    DenseDyn,
    DispatchPolicy,
    DType,
    In,
    Out,
    P,
    Ragged,
    Tensor,
    Tile,
    ascend_910b,
    kernel,
    tl,
    workload,
)
from ptort_lab.report import check, report, run_example  # noqa: E402

F32 = DType.F32
RULE = "=" * 70

# B sequences of 1..max_len tiles of rows x cols F32; the policies run on `cores` cores, the scaling on each of
# `scaling` core counts.
SIZES = {
    "small": dict(batch=4, max_len=4, tile=(16, 128), cores=4, scaling=(1, 2, 4)),
    "default": dict(batch=16, max_len=24, tile=(32, 256), cores=8, scaling=(1, 2, 4, 8, 16, 24)),
    "large": dict(batch=32, max_len=64, tile=(32, 256), cores=24, scaling=(1, 2, 4, 8, 16, 24)),
}

# F32 (why: see README). Relative for most values; the atol covers gelu's 1 + tanh(u) -> 0 cancellation for
# negative x, whose absolute error is about an F32 ulp of |0.5 x g| (up to ~12) while the exact value is tiny.
RTOL, ATOL = 1e-5, 1e-5
SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)


def make_kernels(r: int, c: int):
    @kernel
    def gelu_gate(x: In[Tile[r, c, F32]], g: In[Tile[1, c, F32]], y: Out[Tile[r, c, F32]]):
        """y = 0.5 x (1 + tanh(u)) * g with u = sqrt(2/pi) (x + 0.044715 x^3), tanh(u) = 1 - 2 / (exp(2u) + 1)."""
        v = tl.load(x)
        two_u = tl.mul(tl.add(tl.mul(tl.mul(tl.mul(v, v), v), 0.044715), v), 2.0 * SQRT_2_OVER_PI)
        tanh_u = tl.sub(1.0, tl.div(2.0, tl.add(tl.exp(two_u), 1.0)))
        tl.store(y, tl.mul(tl.mul(tl.mul(v, 0.5), tl.add(tanh_u, 1.0)), tl.load(g)))

    @kernel
    def gate(x: In[Tile[r, c, F32]], g: In[Tile[1, c, F32]], y: Out[Tile[r, c, F32]]):
        """y = x * g: the same traffic as gelu_gate with one vector op."""
        tl.store(y, tl.mul(tl.load(x), tl.load(g)))

    return gelu_gate, gate


class Problem:
    """Inputs shared by every run: the padded tile arrays, the gains and the Ragged lengths."""

    def __init__(self, batch: int, max_len: int, r: int, c: int) -> None:
        rng = np.random.default_rng(31)
        self.lengths = [int(n) for n in rng.integers(1, max_len + 1, batch)]
        self.seqs = Ragged(batch, self.lengths)
        lmax = max(self.lengths)
        self.x = (1.5 * rng.standard_normal((batch, lmax, r, c))).astype(np.float32)
        self.g = (1.0 + 0.5 * rng.standard_normal((batch, 1, c))).astype(np.float32)
        self.X = Tensor(data=self.x, name="X")
        self.G = Tensor(data=self.g, name="G")
        self.batch = Dense[batch]()

    def output(self, name: str) -> Tensor:
        return Tensor(data=np.zeros_like(self.x), name=name)

    def workload(self, kernels, outputs):
        """For every sequence b and every one of its tiles j: each kernel of `kernels` into its output."""
        X, G, seqs = self.X, self.G, self.seqs

        @workload
        def ragged_elementwise():
            for b in P(self.batch, names=("b",)):
                for j in P(DenseDyn(seqs.length(b)), names=("j",)):   # sequence b's own length
                    for k, Y in zip(kernels, outputs):
                        k[b, j](x=X[b][j], g=G[b], y=Y[b][j])

        return ragged_elementwise()


def run(problem: Problem, kernels, policy: DispatchPolicy, label: str):
    outputs = [problem.output(f"{k.name}_{label}") for k in kernels]
    program = problem.workload(kernels, outputs).dispatch(policy).compile()
    program.execute()
    return program, [y.data for y in outputs]


def policies(n: int) -> dict[str, DispatchPolicy]:
    return {f"round_robin({n})": DispatchPolicy.round_robin(n),
            f"affinity(b, {n})": DispatchPolicy.affinity(lambda t: t.get("b"), n),
            f"work_steal({n})": DispatchPolicy.work_steal(n)}


def core_spread(program) -> str:
    busy = program.stats().core_busy_pct.values()
    return f"{min(busy):5.1f} .. {max(busy):5.1f}"


def hbm_floor(runs: list[tuple[int, dict[str, int]]]) -> str:
    """What bounds gate from below whatever the core count: the bytes that reach HBM (``stats().memory``: the reads
    that miss L2; its writes stay in the write-back L2 unless evicted) at the HBM's bandwidth, after the launch. The
    run that moved the fewest gives the floor, and the table's fastest run is compared with it, not assumed."""
    _, memory = min(runs, key=lambda run: run[1]["hbm_bytes"])
    hbm, written = memory["hbm_bytes"], memory["write_bytes"]
    back = hbm - memory["read_miss_bytes"]  # written back (evicted, flushed) or written through
    bw, launch = ascend_910b.hbm_bytes_per_cycle, ascend_910b.launch_overhead_cycles
    floor = launch + -(-hbm // bw)
    fastest = min(cycles for cycles, _ in runs)
    writes = (f"its reads, and {back} of the {written} bytes it writes, written to HBM" if back
              else f"its reads: the {written} bytes it writes stay in the write-back L2")
    said = (f"gate moves {hbm} bytes through HBM ({writes}): {-(-hbm // bw)} cycles at {bw} B/cycle\n"
            f"  after the {launch}-cycle launch")
    if fastest < floor:  # (the model moved data in a way this floor leaves out: say so rather than claim it)
        return said + f" = {floor}, yet a run took {fastest}: not a floor here"
    return said + (f" - no core count beats {floor} cycles (the fastest run, {fastest}, is "
                   f"{100 * (fastest / floor - 1):.0f}% above it)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="default", help="problem size (default: default)")
    args = ap.parse_args(argv)
    cfg = SIZES[args.size]
    (r, c), cores = cfg["tile"], cfg["cores"]
    pb = Problem(cfg["batch"], cfg["max_len"], r, c)
    gelu_gate, gate = make_kernels(r, c)
    want_gelu = gelu_gate_ref(pb.x, pb.g, pb.lengths)
    want_gate = gate_ref(pb.x, pb.g, pb.lengths)

    print(RULE)
    print("Data-parallel elementwise work: dispatch policies and core scaling")
    print(RULE)
    print(f"{len(pb.lengths)} sequences, lengths {pb.lengths} tiles ({sum(pb.lengths)} tiles of {r}x{c} F32)")
    print(f"gelu_gate IR ({len(gelu_gate.trace().ops)} ops):")
    print("\n".join("  " + line for line in str(gelu_gate.trace()).splitlines()[1:]))

    # -- 1. the same workload under each policy ----------------------------------------------------------------
    print(f"\n1. Policies on {cores} cores (gelu_gate, {sum(pb.lengths)} tasks)")
    print(f"  {'policy':<18} {'cycles':>9} {'us':>9}  core busy % min .. max")
    checks, programs = [], {}
    for label, policy in policies(cores).items():
        program, (y,) = run(pb, [gelu_gate], policy, label)
        programs[label] = program
        checks.append(check(label, y, want_gelu, rtol=RTOL, atol=ATOL))
        s = program.stats()
        print(f"  {label:<18} {s.total_cycles:>9} {s.time_us:>9.2f}  {core_spread(program)}")
    per_core = [sum(n for b, n in enumerate(pb.lengths) if b % cores == k) for k in range(cores)]
    print(f"  affinity(b) gives the cores {per_core} tiles: the busiest sets the time "
          f"({max(per_core)} vs {sum(pb.lengths) / cores:.1f} for an even split)")

    # -- 2. 1 core vs many ---------------------------------------------------------------------------------------
    print("\n2. 1 core vs many (round_robin(n)): compute-bound gelu_gate vs memory-bound gate")
    print(f"  {'cores':>5} {'gelu_gate':>10} {'speedup':>8} {'gate':>10} {'speedup':>8}")
    base: dict[str, int] = {}
    gate_runs: list[tuple[int, dict[str, int]]] = []  # (cycles, memory counters) of each gate run
    got: dict[str, list[np.ndarray]] = {"gelu_gate": [], "gate": []}
    for n in cfg["scaling"]:
        cells = []
        for k in (gelu_gate, gate):
            program, (y,) = run(pb, [k], DispatchPolicy.round_robin(n), f"rr{n}")
            got[k.name].append(y)
            cyc = program.stats().total_cycles
            if k is gate:
                gate_runs.append((cyc, program.stats().memory))
            base.setdefault(k.name, cyc)
            cells.append(f"{cyc:>10} {base[k.name] / cyc:>7.2f}x")
        print(f"  {n:>5} " + " ".join(cells))
    print("  " + hbm_floor(gate_runs))
    n_runs = len(cfg["scaling"])
    checks.append(check(f"gelu_gate x{n_runs}", np.stack(got["gelu_gate"]),
                        np.broadcast_to(want_gelu, (n_runs,) + want_gelu.shape), rtol=RTOL, atol=ATOL))
    checks.append(check(f"gate x{n_runs}", np.stack(got["gate"]),
                        np.broadcast_to(want_gate, (n_runs,) + want_gate.shape), rtol=RTOL, atol=ATOL))

    # -- 3. a mixed stream: where a static schedule hurts -------------------------------------------------------
    print(f"\n3. Mixed stream on {cores} cores: gelu_gate[b, j] and gate[b, j] interleaved "
          f"({2 * sum(pb.lengths)} tasks)")
    print(f"  {'policy':<18} {'cycles':>9} {'us':>9}  core busy % min .. max")
    for label, policy in policies(cores).items():
        program, (y1, y2) = run(pb, [gelu_gate, gate], policy, f"mixed_{label}")
        checks.append(check(f"mixed {label}", np.stack([y1, y2]), np.stack([want_gelu, want_gate]),
                            rtol=RTOL, atol=ATOL))
        s = program.stats()
        print(f"  {label:<18} {s.total_cycles:>9} {s.time_us:>9.2f}  {core_spread(program)}")
    print("  round robin sends every gelu_gate (even task numbers) to the even cores when n is even")

    print()
    ok = report("data_parallel vs numpy (float64); all runs, whatever the schedule", checks, programs)
    return 0 if ok else 1


if __name__ == "__main__":
    run_example(main)  # a ptort_lab error: its message and exit status 2, no traceback
