#!/usr/bin/env python3
"""A DeepSeek-style lightning indexer on the ptort_lab simulator: tiered top-k block selection, with the tier of
each query picked at run time from its effective sequence length through a runtime slot.

For each query (b, s) there are 32 candidate KV blocks with a score each (scores [B, S, 32], F32), and an
effective length EffSeq[b, s] (tokens the query may attend to). The tier is the smallest of 2K / 8K / 64K / 128K
tokens that holds it; it fixes the block size (64 / 256 / 2048 / 4096 tokens, so 32 blocks cover the tier).
Blocks that start at or past the effective length are masked out, and the indices of the 8 best blocks are kept:

    for b, s in P(Dense[B](), Dense[S]()):
        slot_load_u64(0, EffSeq[b, s])                  # the effective length, read at run time
        slot_set_u64(1, (slot_u64(0) > 2048) + (slot_u64(0) > 8192) + (slot_u64(0) > 65536))   # the tier
        for tier, block in enumerate((64, 256, 2048, 4096)):
            with P.when(slot_u64(1).eq(tier)):  select_topk[b, s](..., block=block)
    select_topk: mask = iota * block < eff; pairs = tsort32(where(mask, scores, -inf), iota); extract 8 indices

dispatched with affinity on b (a batch's queries on one core), as the reference example does. The indices are
checked exactly against golden.py (a stable descending argsort, ties to the lower index).

Usage:
    python examples/lightning_indexer/lightning_indexer_example.py [--size {small,default,large}] [--cores N]
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import golden  # noqa: E402

from ptort_lab import (  # noqa: E402
    Constexpr,
    Dense,
    DispatchPolicy,
    DType,
    In,
    Out,
    P,
    Tensor,
    Tile,
    ascend_910b,
    kernel,
    slot_load_u64,
    slot_set_u64,
    slot_u64,
    tl,
    workload,
)
from ptort_lab.report import check, report, run_example  # noqa: E402

F32, I32 = DType.F32, DType.I32
K = 8
SIZES = {"small": dict(batch=1, queries=4), "default": dict(batch=4, queries=16),
         "large": dict(batch=8, queries=64)}


@kernel
def select_topk(scores: In[Tile[1, 32, F32]], eff: In[Tile[1, 1, F32]], out: Out[Tile[1, K, I32]],
                block: Constexpr[int] = 64):
    """Top-8 candidate blocks among those that start before the effective length (tier block size ``block``)."""
    idx = tl.iota_u32(32)
    start = tl.muls(tl.cast(idx, F32), float(block))             # first token of each candidate block
    valid = tl.lt(start, tl.load(eff))                            # [1, 32] vs [1, 1]: broadcast
    masked = tl.where(valid, tl.load(scores), float("-inf"))
    tl.store(out, tl.extract_topk_indices(tl.tsort32(masked, idx), K))


def build(scores: np.ndarray, eff: np.ndarray):
    """The indexer workload over scores [B, S, 32] and effective lengths [B, S]; returns (workload, output)."""
    B, S, _ = scores.shape
    SC = Tensor(data=scores.reshape(B, S, 1, 32), name="scores")
    EffSeq = Tensor(data=eff.astype(np.int32).reshape(B, S, 1, 1), name="EffSeq")     # read into slot 0
    EffF = Tensor(data=eff.astype(np.float32).reshape(B, S, 1, 1), name="EffF")       # the kernel's mask input
    Out_ = Tensor(shape=(B, S, 1, K), dtype=I32, name="topk")
    limits = [limit for limit, _ in golden.TIERS]

    @workload
    def indexer():
        for b, s in P(Dense[B](), Dense[S]()):
            slot_load_u64(0, EffSeq[b, s])
            # slot 1 = the tier: how many tier limits the effective length exceeds (0..3)
            slot_set_u64(1, (slot_u64(0) > limits[0]) + (slot_u64(0) > limits[1]) + (slot_u64(0) > limits[2]))
            for tier, (_, block) in enumerate(golden.TIERS):
                with P.when(slot_u64(1).eq(tier)):
                    select_topk[b, s](scores=SC[b, s], eff=EffF[b, s], out=Out_[b, s], block=block)

    return indexer(), Out_


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="default", help="problem size (default: default)")
    ap.add_argument("--cores", type=int, default=4,
                    help=f"AI cores for the affinity dispatch, 1 to {ascend_910b.num_cores} (default: 4)")
    args = ap.parse_args(argv)
    if args.cores < 1:  # (affinity(key, 0) would quietly mean one core)
        ap.error(f"--cores must be >= 1, got {args.cores}")
    if args.cores > ascend_910b.num_cores:
        ap.error(f"--cores {args.cores} is more than machine 'ascend_910b' has ({ascend_910b.num_cores} AI cores); "
                 f"use --cores {ascend_910b.num_cores} or fewer")
    B, S = SIZES[args.size]["batch"], SIZES[args.size]["queries"]

    rng = np.random.default_rng(2026)
    # Scores rounded to 0.25 so that ties happen (the order then depends on the lower index, as in the golden).
    scores = np.round(rng.standard_normal((B, S, golden.CANDIDATES)) * 4) / 4
    scores = scores.astype(np.float32)
    # Effective lengths spread over all four tiers, some shorter than 8 blocks (fewer valid blocks than k).
    eff = rng.choice([100, 300, 1500, 2048, 5000, 8192, 20000, 65536, 100000, 131072], size=(B, S))
    tiers = np.bincount([golden.tier_of(int(e)) for e in eff.ravel()], minlength=4)

    w, out = build(scores, eff)
    tasks = w.enumerate()
    program = w.dispatch(DispatchPolicy.affinity(lambda t: t.get("b"), args.cores)).compile().execute()
    expected = golden.indexer_ref(scores, eff, K)

    print(f"Lightning indexer - size {args.size}: {B} x {S} queries, {golden.CANDIDATES} candidate blocks each, "
          f"top-{K}, {args.cores} cores (affinity on b)")
    print("  tier (tokens, block)   queries")
    for (limit, block), n in zip(golden.TIERS, tiers):
        print(f"  <= {limit:>6} ({block:>4})   {n:>7}")
    print(f"  tasks: {len(tasks)} (one per query; its tier picked at run time from slot 0)")
    checks = [check("top-8 block indices", out.data[:, :, 0, :], expected, rtol=0, atol=0)]
    ok = report(f"Lightning indexer {args.size}: indices exact against golden.py (stable, ties to the lower index)",
                checks, {"affinity": program})
    return 0 if ok else 1


if __name__ == "__main__":
    run_example(main)  # a ptort_lab error: its message and exit status 2, no traceback
