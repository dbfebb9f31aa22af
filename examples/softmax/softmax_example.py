#!/usr/bin/env python3
"""Softmax over the vocabulary, tile by tile (F32), run on the ptort_lab simulator and checked against numpy.

probs[b, s, :] = softmax(logits[b, s, :]) for logits [B, S, V]. A row of the vocabulary does not fit one tile, so
the rows are cut into [r, c] tiles and the row statistics (max m, sum l) are carried across the vocabulary tiles
in small [r, 1] running tensors, one per row block. Two algorithms, three workloads:

  three-phase (the PTO-WSP v9 reference example)
    1. update_rowmax       m = max(m, rowmax(x))                 P.seq over the vocabulary tiles
    2. exp_and_accumulate  y = exp(x - m); l += rowsum(y)         P.seq over the vocabulary tiles
    3. rescale             y = y / l                              P over every tile (independent)
  online (Milakov & Gimelshein 2018: one pass for both statistics)
    1. online_stats        m' = max(m, rowmax(x)); l = l * exp(m - m') + rowsum(exp(x - m'))   P.seq
    2. normalize           y = exp(x - m) / l                     P over every tile

  online affinity: the online workload dispatched with affinity on the row block instead of round robin
  online v-outer: the online tasks with the loops interchanged (P.seq over the vocabulary outside, the row
    blocks in parallel inside): the same tasks and dependencies, issued so that consecutive tasks are independent.

Row-vector operands ([r, 1]) broadcast over the tile's columns (tl.sub, tl.div, tl.max). The runs use
DispatchPolicy.round_robin(cores) unless named otherwise; the running max must match numpy exactly, the
probabilities and sums to F32 accuracy.

Usage:
    python examples/softmax/softmax_example.py [--size {small,default,large}]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

try:
    import ptort_lab  # noqa: F401
except ImportError:  # running from a source checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # golden.py next to this script

from golden import row_stats_ref, softmax_ref  # noqa: E402

from ptort_lab import Dense, DispatchPolicy, DType, In, InOut, Out, P, Tensor, Tile, kernel, tl, workload  # noqa: E402
from ptort_lab.dsl.printer import kernel_op_summary  # noqa: E402
from ptort_lab.report import check, report, run_example  # noqa: E402

F32 = DType.F32
RULE = "=" * 70

# batch x seq x vocab logits, cut into [rows, cols] tiles; tasks go round-robin over `cores` AI cores.
SIZES = {
    "small": dict(batch=1, seq=32, vocab=256, tile=(8, 64), cores=4),          # the reference's shape
    "default": dict(batch=2, seq=128, vocab=8192, tile=(16, 512), cores=8),
    "large": dict(batch=4, seq=256, vocab=32000, tile=(16, 640), cores=24),     # LLaMA-sized vocabulary
}

# F32 tolerances (why: see README). The max is exact (max never rounds); probabilities and sums pass through a
# handful of F32 roundings (exp, one sum per tile, a running sum over the vocabulary tiles, a divide), each
# relative, so the check is relative with an atol far below any probability in the data.
RTOL, ATOL = 1e-5, 1e-12


def make_kernels(r: int, c: int) -> dict:
    """The five tile kernels; [r, c] logit tiles, [r, 1] running max / sum tiles."""

    @kernel
    def update_rowmax(x: In[Tile[r, c, F32]], m: InOut[Tile[r, 1, F32]]):
        """Phase 1 of 3: fold this tile's row maxima into the running max."""
        tl.store(m, tl.max(tl.load(m), tl.rowmax(tl.load(x))))

    @kernel
    def exp_and_accumulate(x: In[Tile[r, c, F32]], m: In[Tile[r, 1, F32]], y: Out[Tile[r, c, F32]],
                           l: InOut[Tile[r, 1, F32]]):  # noqa: E741 - l is the softmax denominator's usual name
        """Phase 2 of 3: y = exp(x - m) (m broadcast along the row), l += rowsum(y)."""
        e = tl.exp(tl.sub(tl.load(x), tl.load(m)))
        tl.store(l, tl.add(tl.load(l), tl.rowsum(e)))
        tl.store(y, e)

    @kernel
    def rescale(y: InOut[Tile[r, c, F32]], l: In[Tile[r, 1, F32]]):  # noqa: E741
        """Phase 3 of 3: y = y / l."""
        tl.store(y, tl.div(tl.load(y), tl.load(l)))

    @kernel
    def online_stats(x: In[Tile[r, c, F32]], m: InOut[Tile[r, 1, F32]], l: InOut[Tile[r, 1, F32]]):  # noqa: E741
        """Online pass: new max, and the running sum rescaled to it, in one visit of the tile."""
        xv, m_old = tl.load(x), tl.load(m)
        m_new = tl.max(m_old, tl.rowmax(xv))
        carried = tl.mul(tl.load(l), tl.exp(tl.sub(m_old, m_new)))   # exp(-inf) = 0 on the first tile
        tl.store(l, tl.add(carried, tl.rowsum(tl.exp(tl.sub(xv, m_new)))))
        tl.store(m, m_new)

    @kernel
    def normalize(x: In[Tile[r, c, F32]], m: In[Tile[r, 1, F32]], l: In[Tile[r, 1, F32]],  # noqa: E741
                  y: Out[Tile[r, c, F32]]):
        """Online output pass: y = exp(x - m) / l with the final statistics."""
        tl.store(y, tl.div(tl.exp(tl.sub(tl.load(x), tl.load(m))), tl.load(l)))

    return dict(update_rowmax=update_rowmax, exp_and_accumulate=exp_and_accumulate, rescale=rescale,
                online_stats=online_stats, normalize=normalize)


def tiled(a: np.ndarray, r: int, c: int) -> np.ndarray:
    """A [B, S/r, V/c, r, c] view of a [B, S, V] array: tile (b, s, v) is a[b, s*r:(s+1)*r, v*c:(v+1)*c].

    It is a numpy view, so what the kernels store lands in ``a`` itself.
    """
    b, s, v = a.shape
    return a.reshape(b, s // r, r, v // c, c).transpose(0, 1, 3, 2, 4)


class Softmax:
    """The tensors of one run: logits and probs as tiled views, plus the running max / sum per row block."""

    def __init__(self, logits: np.ndarray, r: int, c: int, label: str) -> None:
        b, s, _ = logits.shape
        self.probs = np.zeros_like(logits)
        self.X = Tensor(data=tiled(logits, r, c), name="logits")
        self.Y = Tensor(data=tiled(self.probs, r, c), name=f"probs_{label}")
        # The host initialises the running statistics: max = -inf, sum = 0.
        self.M = Tensor(data=np.full((b, s // r, r, 1), -np.inf, dtype=np.float32), name=f"row_max_{label}")
        self.L = Tensor(data=np.zeros((b, s // r, r, 1), dtype=np.float32), name=f"row_sum_{label}")

    def row_max(self) -> np.ndarray:
        return self.M.data.reshape(self.M.shape[0], -1, 1)

    def row_sum(self) -> np.ndarray:
        return self.L.data.reshape(self.L.shape[0], -1, 1)


def three_phase_workload(k: dict, t: Softmax, batch: Dense, row_blocks: Dense, vocab_tiles: Dense):
    X, Y, M, L = t.X, t.Y, t.M, t.L

    @workload
    def softmax_three_phase():
        """The reference's loop order: row blocks in parallel, each sweeping its vocabulary tiles in order."""
        for b, s in P(batch, row_blocks):
            for v in P.seq(vocab_tiles):
                k["update_rowmax"][b, s, v](x=X[b][s][v], m=M[b][s])
        for b, s in P(batch, row_blocks):
            for v in P.seq(vocab_tiles):
                k["exp_and_accumulate"][b, s, v](x=X[b][s][v], m=M[b][s], y=Y[b][s][v], l=L[b][s])
        for b, s, v in P(batch, row_blocks, vocab_tiles):
            k["rescale"][b, s, v](y=Y[b][s][v], l=L[b][s])

    return softmax_three_phase()


def online_workload(k: dict, t: Softmax, batch: Dense, row_blocks: Dense, vocab_tiles: Dense):
    X, Y, M, L = t.X, t.Y, t.M, t.L

    @workload
    def softmax_online():
        """One ordered pass for (m, l) per row block, then every output tile independently."""
        for b, s in P(batch, row_blocks):
            for v in P.seq(vocab_tiles):
                k["online_stats"][b, s, v](x=X[b][s][v], m=M[b][s], l=L[b][s])
        for b, s, v in P(batch, row_blocks, vocab_tiles):
            k["normalize"][b, s, v](x=X[b][s][v], m=M[b][s], l=L[b][s], y=Y[b][s][v])

    return softmax_online()


def online_vocab_outer_workload(k: dict, t: Softmax, batch: Dense, row_blocks: Dense, vocab_tiles: Dense):
    X, Y, M, L = t.X, t.Y, t.M, t.L

    @workload
    def softmax_online_vocab_outer():
        """The same tasks and dependencies with the loops interchanged: the vocabulary sweep outside, all row
        blocks in parallel inside. Consecutive tasks now belong to different row blocks, so a core never waits
        for the task it has just issued."""
        for v in P.seq(vocab_tiles):
            for b, s in P(batch, row_blocks):
                k["online_stats"][b, s, v](x=X[b][s][v], m=M[b][s], l=L[b][s])
        for b, s, v in P(batch, row_blocks, vocab_tiles):
            k["normalize"][b, s, v](x=X[b][s][v], m=M[b][s], l=L[b][s], y=Y[b][s][v])

    return softmax_online_vocab_outer()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="default", help="problem size (default: default)")
    args = ap.parse_args(argv)
    cfg = SIZES[args.size]
    B, S, V, (r, c), cores = cfg["batch"], cfg["seq"], cfg["vocab"], cfg["tile"], cfg["cores"]

    rng = np.random.default_rng(2026)
    # Rows are shifted by up to +100: exp(x) without the max subtraction would overflow F32 (e^88.7), so a broken
    # max phase cannot pass by accident (softmax itself does not depend on the shift).
    logits = (4.0 * rng.standard_normal((B, S, V)) + rng.uniform(-20.0, 100.0, (B, S, 1))).astype(np.float32)
    batch, row_blocks, vocab_tiles = Dense[B](), Dense[S // r](), Dense[V // c]()
    k = make_kernels(r, c)

    print(RULE)
    print("Softmax - tiled, three-phase and online (F32)")
    print(RULE)
    print(f"logits [{B}, {S}, {V}] F32, tiles {r}x{c}: {B * (S // r)} row blocks x {V // c} vocabulary tiles; "
          f"{cores} cores")
    print("\nKernels:")
    for name, kern in k.items():
        print(f"  {name:<19} {kernel_op_summary(kern.trace())}")
    print("\nonline_stats IR:")
    print("\n".join("  " + line for line in str(k["online_stats"].trace()).splitlines()))

    round_robin = DispatchPolicy.round_robin(cores)
    # Row block (b, s) -> one core. The key reads the launch indices k[b, s, v] (task.params): see README on why
    # not t.get("b") here.
    by_row_block = DispatchPolicy.affinity(lambda task: task.params[0] * (S // r) + task.params[1], cores)
    variants = [("three-phase", three_phase_workload, round_robin),
                ("online", online_workload, round_robin),
                ("online affinity", online_workload, by_row_block),
                ("online v-outer", online_vocab_outer_workload, round_robin)]
    runs = {}
    for label, build, policy in variants:
        t = Softmax(logits, r, c, label)
        w = build(k, t, batch, row_blocks, vocab_tiles)
        program = w.dispatch(policy).compile()
        program.execute()
        runs[label] = (t, program)

    probs_ref = softmax_ref(logits)
    m_ref, l_ref = row_stats_ref(logits)
    checks = []
    for label, (t, _) in runs.items():
        checks += [check(f"{label} probs", t.probs, probs_ref, rtol=RTOL, atol=ATOL),
                   check(f"{label} max", t.row_max(), m_ref, rtol=0.0, atol=0.0),
                   check(f"{label} sum", t.row_sum(), l_ref, rtol=RTOL, atol=0.0)]

    print("\nTasks:")
    for label, (_, program) in runs.items():
        counts: dict[str, int] = {}
        for task in program.enumerate():
            counts[task.kernel] = counts.get(task.kernel, 0) + 1
        print(f"  {label:<16} " + ", ".join(f"{n} x {kname}" for kname, n in counts.items()))

    print()
    ok = report(f"softmax [{B}, {S}, {V}] F32 vs numpy (float64)", checks,
                {label: program for label, (_, program) in runs.items()})
    print("Compared:")
    base = runs["three-phase"][1].stats().total_cycles
    for label, (_, program) in runs.items():
        s = program.stats()
        print(f"  {label:<16} {s.total_cycles:>9} cycles ({base / s.total_cycles:5.2f}x)  {s.bytes_moved:>11} GM bytes")
    return 0 if ok else 1


if __name__ == "__main__":
    run_example(main)  # a ptort_lab error: its message and exit status 2, no traceback
