#!/usr/bin/env python3
"""FlashInfer-style batched decode attention over KV caches of different lengths, on the ptort_lab simulator.

Each sequence b has one new query token (G query heads per KV head, grouped-query attention) and a KV cache of
length[b] tokens, stored in blocks of ``blk`` tokens. The work is split the way FlashInfer's split-KV decode does it:

  phase 1  for (b, j) in P(blocks)                     Ragged: every KV block j of every sequence b, all parallel
             decode_block: partial attention of q[b] against block j -> (o_j, m_j, l_j)
             o_j = exp(s - m_j) @ V_j (unnormalised), m_j = rowmax(s), l_j = rowsum(exp(s - m_j)), s = q K_j^T/sqrt(d)
             The last block of a sequence is partly filled: an additive mask (0 / -inf) hides its padding.
  chain    for b: for j in P.seq(DenseDyn(blocks.length(b)))
             merge_state: the online-softmax combine of the running state (o, m, l) with block j's partial:
               m' = max(m, m_j); o' = o exp(m - m') + o_j exp(m_j - m'); l' = l exp(m - m') + l_j exp(m_j - m')
           finalize: out[b] = o / l
  tree     the same partials combined pairwise instead: log2(blocks) rounds, round r merging block i*2^(r+1) + 2^r
           into block i*2^(r+1) (P over DenseDyn((blocks.length(b) + 2^r - 1) // 2^(r+1)) pairs), then finalize

Phase 2 reads what phase 1 wrote, so the dependencies are inferred from the tensors; idle cores take the next ready
task (work stealing), which balances the very different sequence lengths. The chain combine is a serial dependency
chain as long as the longest sequence's block count; the tree combine shortens it to log2 of that. Each sequence's
output, from both combines, is checked against a float64 numpy reference (golden.py).

Usage:
    python examples/flashinfer_decode/flashinfer_decode_example.py [--size {small,default,large}]
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
try:
    import ptort_lab  # noqa: F401
except ImportError:  # running from a source checkout without `pip install -e .`
    sys.path.insert(0, str(HERE.parents[1]))
sys.path.insert(0, str(HERE))

from golden import decode_attention_ref  # noqa: E402

from ptort_lab import (  # noqa: E402
    Dense,
    DenseDyn,
    DispatchPolicy,
    DType,
    In,
    InOut,
    Out,
    P,
    Ragged,
    Tensor,
    Tile,
    kernel,
    tl,
    workload,
)
from ptort_lab.dsl.printer import kernel_op_summary  # noqa: E402
from ptort_lab.report import check, report, run_example  # noqa: E402

F16, F32 = DType.F16, DType.F32

# KV heads, query heads per KV head (G), head dim, tokens per KV block, cores, sequence lengths in tokens
SIZES = {
    "small": dict(hkv=1, g=1, d=16, blk=16, cores=4, lengths=[64, 5, 33]),
    "default": dict(hkv=2, g=4, d=128, blk=128, cores=24, lengths=[1, 127, 128, 129, 700, 1024, 1500, 2048]),
    "large": dict(hkv=4, g=8, d=128, blk=128, cores=24, lengths=None),  # 16 random lengths in 1..4096
}

# Scores, the softmax statistics (m, l) and every partial and merged output stay in F32. The only rounding beyond F32
# is F16(exp(s - m_j)) for the P @ V matmul: relative error <= 2**-11 per weight, and the merge rescales all partials
# by the same factors, so |out - exact| <= 2**-11 * max|V| ~ 2e-3 for these N(0, 1) caches; typical errors are ~1e-4.
RTOL, ATOL = 1e-3, 2e-3


def make_kernels(g: int, d: int, blk: int):
    scale = 1.0 / math.sqrt(d)

    @kernel
    def decode_block(q: In[Tile[g, d, F16]], kt: In[Tile[d, blk, F16]], v: In[Tile[blk, d, F16]],
                     mask: In[Tile[1, blk, F32]], o: Out[Tile[g, d, F32]], m: Out[Tile[g, 1, F32]],
                     l: Out[Tile[g, 1, F32]]):  # noqa: E741
        """Attention of the G query heads against one KV block, unnormalised, with its softmax statistics."""
        s = tl.add(tl.mul(tl.matmul(tl.load(q), tl.load(kt)), scale), tl.load(mask))  # [g, blk] F32, padding -inf
        mx = tl.rowmax(s)
        p = tl.exp(tl.sub(s, mx))
        tl.store(m, mx)
        tl.store(l, tl.rowsum(p))
        tl.store(o, tl.matmul(tl.cast(p, F16), tl.load(v)))

    @kernel
    def copy_state(o_j: In[Tile[g, d, F32]], m_j: In[Tile[g, 1, F32]], l_j: In[Tile[g, 1, F32]],
                   o: Out[Tile[g, d, F32]], m: Out[Tile[g, 1, F32]], l: Out[Tile[g, 1, F32]]):  # noqa: E741
        """The running state starts as the first block's partial."""
        tl.store(o, tl.load(o_j))
        tl.store(m, tl.load(m_j))
        tl.store(l, tl.load(l_j))

    @kernel
    def merge_state(o_j: In[Tile[g, d, F32]], m_j: In[Tile[g, 1, F32]], l_j: In[Tile[g, 1, F32]],
                    o: InOut[Tile[g, d, F32]], m: InOut[Tile[g, 1, F32]], l: InOut[Tile[g, 1, F32]]):  # noqa: E741
        """Online-softmax combine: rescale both sides to the new running max and add."""
        m_old, m_blk = tl.load(m), tl.load(m_j)
        m_new = tl.max(m_old, m_blk)
        a_old = tl.exp(tl.sub(m_old, m_new))
        a_blk = tl.exp(tl.sub(m_blk, m_new))
        tl.store(o, tl.add(tl.mul(tl.load(o), a_old), tl.mul(tl.load(o_j), a_blk)))
        tl.store(l, tl.add(tl.mul(tl.load(l), a_old), tl.mul(tl.load(l_j), a_blk)))
        tl.store(m, m_new)

    @kernel
    def finalize(o: In[Tile[g, d, F32]], l: In[Tile[g, 1, F32]], out: Out[Tile[g, d, F32]]):  # noqa: E741
        """out = o / l (row broadcast)."""
        tl.store(out, tl.div(tl.load(o), tl.load(l)))

    return decode_block, copy_state, merge_state, finalize


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="default", help="problem size (default: default)")
    args = ap.parse_args(argv)
    cfg = SIZES[args.size]
    hkv, g, d, blk, cores = cfg["hkv"], cfg["g"], cfg["d"], cfg["blk"], cfg["cores"]
    rng = np.random.default_rng(2026)
    lengths = cfg["lengths"] or [int(n) for n in rng.integers(1, 4097, size=16)]
    nseq = len(lengths)
    nblocks = [-(-n // blk) for n in lengths]
    maxblk = max(nblocks)

    # The inputs: one query per sequence, and each sequence's K and V cache (natural layout, [hkv, length, d]).
    q = rng.standard_normal((nseq, hkv, g, d)).astype(np.float16)
    ks = [rng.standard_normal((hkv, n, d)).astype(np.float16) for n in lengths]
    vs = [rng.standard_normal((hkv, n, d)).astype(np.float16) for n in lengths]

    # The cache as the kernels see it: per sequence, room for maxblk blocks of blk tokens; K pre-transposed per block.
    kt_cache = np.zeros((nseq, maxblk, hkv, d, blk), np.float16)
    v_cache = np.zeros((nseq, maxblk, hkv, blk, d), np.float16)
    mask = np.full((nseq, maxblk, 1, blk), -np.inf, np.float32)   # additive: 0 for a cached token, -inf for padding
    for b, n in enumerate(lengths):
        for j in range(nblocks[b]):
            lo, hi = j * blk, min(n, (j + 1) * blk)
            kt_cache[b, j, :, :, : hi - lo] = ks[b][:, lo:hi].transpose(0, 2, 1)
            v_cache[b, j, :, : hi - lo] = vs[b][:, lo:hi]
            mask[b, j, 0, : hi - lo] = 0.0

    Q = Tensor(data=q, name="Q")                                       # [nseq, hkv, g, d]
    KT = Tensor(data=kt_cache, name="KT")                              # [nseq, maxblk, hkv, d, blk]
    V = Tensor(data=v_cache, name="V")                                 # [nseq, maxblk, hkv, blk, d]
    MASK = Tensor(data=mask, name="MASK")                              # [nseq, maxblk, 1, blk]
    blocks = Ragged(nseq, nblocks)   # sequence b holds nblocks[b] KV blocks
    decode_block, copy_state, merge_state, finalize = make_kernels(g, d, blk)

    def partials(tag: str) -> tuple[Tensor, Tensor, Tensor]:
        """Per-block partial results (o, m, l) of every (sequence, block, KV head)."""
        return (Tensor(shape=(nseq, maxblk, hkv, g, d), dtype=F32, name=f"OJ_{tag}"),
                Tensor(shape=(nseq, maxblk, hkv, g, 1), dtype=F32, name=f"MJ_{tag}"),
                Tensor(shape=(nseq, maxblk, hkv, g, 1), dtype=F32, name=f"LJ_{tag}"))

    def split_kv(OJ: Tensor, MJ: Tensor, LJ: Tensor) -> None:
        """Phase 1: every (sequence, block, KV head) partial is independent."""
        for b, j in P(blocks, names=["b", "j"]):
            for h in P(Dense[hkv](), names=["h"]):
                decode_block[b, j, h](q=Q[b, h], kt=KT[b, j, h], v=V[b, j, h], mask=MASK[b, j],
                                      o=OJ[b, j, h], m=MJ[b, j, h], l=LJ[b, j, h])

    OJ, MJ, LJ = partials("chain")
    OS = Tensor(shape=(nseq, hkv, g, d), dtype=F32, name="OS")           # running state per (sequence, KV head)
    MS = Tensor(shape=(nseq, hkv, g, 1), dtype=F32, name="MS")
    LS = Tensor(shape=(nseq, hkv, g, 1), dtype=F32, name="LS")
    OUT = Tensor(shape=(nseq, hkv, g, d), dtype=F32, name="OUT")

    @workload
    def batch_decode():
        """Split-KV partials, then per (sequence, KV head) an online-softmax fold over its blocks, in order."""
        split_kv(OJ, MJ, LJ)
        for s, kh in P(Dense[nseq](), Dense[hkv](), names=["s", "kh"]):
            for i in P.seq(DenseDyn(blocks.length(s)), name="i"):    # this sequence's blocks only
                with P.when(i.eq(0)):
                    copy_state[s, kh, i](o_j=OJ[s, i, kh], m_j=MJ[s, i, kh], l_j=LJ[s, i, kh],
                                         o=OS[s, kh], m=MS[s, kh], l=LS[s, kh])
                with P.otherwise():
                    merge_state[s, kh, i](o_j=OJ[s, i, kh], m_j=MJ[s, i, kh], l_j=LJ[s, i, kh],
                                          o=OS[s, kh], m=MS[s, kh], l=LS[s, kh])
            finalize[s, kh](o=OS[s, kh], l=LS[s, kh], out=OUT[s, kh])

    OJt, MJt, LJt = partials("tree")
    OUTt = Tensor(shape=(nseq, hkv, g, d), dtype=F32, name="OUT_tree")
    levels = max(1, (maxblk - 1).bit_length())   # ceil(log2(maxblk)) pairwise rounds

    @workload
    def batch_decode_tree():
        """The same partials combined pairwise in log2(blocks) rounds; round r merges block i*2^(r+1) + 2^r into
        block i*2^(r+1), for the (length(b) + 2^r - 1) // 2^(r+1) pairs sequence b has in that round."""
        split_kv(OJt, MJt, LJt)
        for r in range(levels):
            step = 1 << r
            for s, kh in P(Dense[nseq](), Dense[hkv](), names=["s", "kh"]):
                for i in P(DenseDyn((blocks.length(s) + (step - 1)) // (2 * step)), names=["i"]):
                    left, right = 2 * step * i, 2 * step * i + step
                    merge_state[s, kh, left](o_j=OJt[s, right, kh], m_j=MJt[s, right, kh], l_j=LJt[s, right, kh],
                                             o=OJt[s, left, kh], m=MJt[s, left, kh], l=LJt[s, left, kh])
        for s, kh in P(Dense[nseq](), Dense[hkv](), names=["s", "kh"]):
            finalize[s, kh](o=OJt[s, 0, kh], l=LJt[s, 0, kh], out=OUTt[s, kh])

    variants = (("chain", batch_decode(), OUT), ("tree", batch_decode_tree(), OUTt))
    print(f"FlashInfer-style decode: {nseq} sequences, {hkv} KV heads x {g} query heads, d={d}, KV blocks of {blk}")
    print(f"  lengths {lengths}")
    print(f"  blocks  {nblocks} (Ragged, {blocks.total()} in all)")
    for label, wl, _ in variants:
        counts: dict[str, int] = {}
        for t in wl.enumerate():
            counts[t.kernel] = counts.get(t.kernel, 0) + 1
        print(f"  {label} combine: {sum(counts.values())} tasks on {cores} cores (work stealing): "
              + ", ".join(f"{name} {n}" for name, n in counts.items()))
    for k in (decode_block, copy_state, merge_state, finalize):
        print(f"  {k.name}: {kernel_op_summary(k.trace())}")
    print(decode_block.trace())
    print(merge_state.trace())
    print()

    checks, programs = [], {}
    for label, wl, out in variants:
        program = wl.dispatch(DispatchPolicy.work_steal(cores)).compile()
        program.execute()
        programs[f"work_steal, {label} combine"] = program
        checks += [check(f"L={n} {label}", out.data[b], decode_attention_ref(q[b], ks[b], vs[b]), rtol=RTOL, atol=ATOL)
                   for b, n in enumerate(lengths)]
    ok = report(f"flashinfer_decode [{args.size}]: per-sequence decode attention vs numpy (float64)", checks, programs)
    return 0 if ok else 1


if __name__ == "__main__":
    run_example(main)  # a ptort_lab error: its message and exit status 2, no traceback
