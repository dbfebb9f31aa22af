#!/usr/bin/env python3
"""Flash attention as a 4-stage CSP pipeline (the cube/vector pattern of Ascend flash-attention kernels),
run on the ptort_lab simulator and checked against numpy.

Per head, tokens are t = i * n_kv + j (query tile i, KV block j) and flow through four processes:

    qk      (Cube)    S[t]  = Q[i] @ K^T[j]                                         F16 x F16 -> F32
    softmax (Vector)  online softmax: m' = max(m, rowmax(S * scale)), P[t] = exp(S * scale - m') (F16),
                      alpha[t] = exp(m - m'), l = l * alpha + rowsum(P); m = m'
    pv      (Cube)    PV[t] = P[t] @ V[j]                                           F16 x F16 -> F32
    update  (Vector)  O[i] = alpha[t] * O[i] + PV[t]; after the last block j, Y[i] = O[i] / l

coupled by the channels s_ready, p_ready and pv_ready. On the first block (j = 0) the vector stages launch
softmax_first / update_first instead, which start m, l and O (``cond`` on the token), so the pipeline can be run
again on the same tensors. Channels carry the token t; S, P, alpha, PV and the running state m, l, O live in
tensors. Every head is its own pipeline of four processes.

The script runs it at channel depth 1 and 2 with two placements: one core per process (the default; each channel
hop pays the cross-core latency) and the flash-attention placement, `.place({...})` putting a head's cube stages
(qk, pv: AIC) and vector stages (softmax, update: AIV) on one AI core. It also runs the data-parallel twin
(`ptort_lab.explore.data_parallel_twin`) of the same tasks on as many cores as each placement uses.

Usage:
    python examples/csp_attention/csp_attention_example.py [--size {small,default,large}]
"""
from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

try:
    import ptort_lab  # noqa: F401
except ImportError:  # running from a source checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

sys.path.insert(0, str(Path(__file__).resolve().parent))
import golden  # noqa: E402

from ptort_lab import Dense, DType, In, InOut, Out, Tensor, Tile, cond, for_each, kernel, tl  # noqa: E402
from ptort_lab.csp import Channel, Pipeline, Process, connect, consume, process, send  # noqa: E402
from ptort_lab.explore import data_parallel_twin  # noqa: E402
from ptort_lab.report import check, report, run_example  # noqa: E402

F32, F16 = DType.F32, DType.F16
STAGES = ("qk", "softmax", "pv", "update")

# heads; query tile rows M, KV block rows N, head dim D; query tiles and KV blocks per head
SIZES = {
    "small": dict(heads=1, m=32, n=64, d=64, q_tiles=1, kv_blocks=2),
    "default": dict(heads=2, m=64, n=128, d=128, q_tiles=2, kv_blocks=4),
    "large": dict(heads=4, m=64, n=128, d=128, q_tiles=4, kv_blocks=8),
}


def make_kernels(M: int, N: int, D: int):
    scale = 1.0 / float(np.sqrt(D))

    @kernel
    def qk(q: In[Tile[M, D, F16]], kt: In[Tile[D, N, F16]], s: Out[Tile[M, N, F32]]):
        """Cube: scores of one query tile against one KV block (K stored transposed, [D, N])."""
        tl.store(s, tl.matmul(tl.load(q), tl.load(kt)))

    @kernel
    def softmax_first(s: In[Tile[M, N, F32]], row_max: Out[Tile[M, 1, F32]], row_sum: Out[Tile[M, 1, F32]],
                      p: Out[Tile[M, N, F16]]):
        """Vector, first KV block of a query tile: start the running row max and row sum."""
        x = tl.mul(tl.load(s), scale)
        m_new = tl.rowmax(x)
        e = tl.exp(tl.sub(x, m_new))
        tl.store(row_sum, tl.rowsum(e))
        tl.store(row_max, m_new)
        tl.store(p, tl.cast(e, F16))

    @kernel
    def softmax(s: In[Tile[M, N, F32]], row_max: InOut[Tile[M, 1, F32]], row_sum: InOut[Tile[M, 1, F32]],
                p: Out[Tile[M, N, F16]], alpha: Out[Tile[M, 1, F32]]):
        """Vector, later blocks: one online-softmax step; alpha = exp(m_old - m_new) rescales what came before."""
        x = tl.mul(tl.load(s), scale)
        m_old = tl.load(row_max)
        m_new = tl.max(m_old, tl.rowmax(x))
        e = tl.exp(tl.sub(x, m_new))
        a = tl.exp(tl.sub(m_old, m_new))
        tl.store(row_sum, tl.add(tl.mul(tl.load(row_sum), a), tl.rowsum(e)))
        tl.store(row_max, m_new)
        tl.store(alpha, a)
        tl.store(p, tl.cast(e, F16))

    @kernel
    def pv(p: In[Tile[M, N, F16]], v: In[Tile[N, D, F16]], o: Out[Tile[M, D, F32]]):
        """Cube: the block's probabilities times its values."""
        tl.store(o, tl.matmul(tl.load(p), tl.load(v)))

    @kernel
    def update_first(pv: In[Tile[M, D, F32]], acc: Out[Tile[M, D, F32]]):
        """Vector, first KV block: the running output starts as this block's P @ V."""
        tl.store(acc, tl.load(pv))

    @kernel
    def update(pv: In[Tile[M, D, F32]], alpha: In[Tile[M, 1, F32]], acc: InOut[Tile[M, D, F32]]):
        """Vector, later blocks: rescale the running output by alpha and add this block's P @ V."""
        tl.store(acc, tl.add(tl.mul(tl.load(acc), tl.load(alpha)), tl.load(pv)))

    @kernel
    def normalize(acc: In[Tile[M, D, F32]], row_sum: In[Tile[M, 1, F32]], y: Out[Tile[M, D, F32]]):
        """Vector, after the last KV block: divide by the softmax denominator."""
        tl.store(y, tl.div(tl.load(acc), tl.load(row_sum)))

    return qk, softmax_first, softmax, pv, update_first, update, normalize


@dataclass
class FlashAttention:
    """The pipeline (every head's four processes) and its output tensor Y [heads, q_tiles, M, D]."""

    pipeline: Pipeline
    Y: Tensor

    def output(self) -> np.ndarray:
        h, nq, m, d = self.Y.shape
        return self.Y.allocate().reshape(h, nq * m, d)


def build(q: np.ndarray, kt: np.ndarray, v: np.ndarray, M: int, N: int, depth: int, kernels) -> FlashAttention:
    """Fresh tensors and processes: q [H, nq, M, D], kt [H, nkv, D, N], v [H, nkv, N, D] (all F16)."""
    qk, softmax_first, softmax, pv, update_first, update, normalize = kernels
    H, NQ, _, D = q.shape
    NKV = kt.shape[1]
    T = NQ * NKV
    Q, KT, V = Tensor(data=q, name="Q"), Tensor(data=kt, name="KT"), Tensor(data=v, name="V")
    S = Tensor(shape=(H, T, M, N), dtype=F32, name="S")          # per token: scores
    Pr = Tensor(shape=(H, T, M, N), dtype=F16, name="P")         # per token: probabilities (unnormalised)
    A = Tensor(shape=(H, T, M, 1), dtype=F32, name="alpha")      # per token: rescale factor
    PV = Tensor(shape=(H, T, M, D), dtype=F32, name="PV")        # per token: P @ V
    Mx = Tensor(shape=(H, NQ, M, 1), dtype=F32, name="m")        # per query tile: running row max
    L = Tensor(shape=(H, NQ, M, 1), dtype=F32, name="l")         # per query tile: running row sum
    Acc = Tensor(shape=(H, NQ, M, D), dtype=F32, name="O")       # per query tile: running, unnormalised output
    Y = Tensor(shape=(H, NQ, M, D), dtype=F32, name="Y")

    def head(h: int) -> list[Process]:
        """The four processes of head h. Token t is (query tile i, KV block j) = (t // NKV, t % NKV)."""
        s_ready = Channel[Tensor](name=f"s_ready.h{h}", depth=depth)
        p_ready = Channel[Tensor](name=f"p_ready.h{h}", depth=depth)
        pv_ready = Channel[Tensor](name=f"pv_ready.h{h}", depth=depth)

        def at(t):
            """Launch axes (query tile numbered over all heads, KV block): the twin keeps a query tile on one
            core. The channels still carry the token t (send(..., token=t))."""
            return h * NQ + t // NKV, t % NKV

        def qk_step(t):
            return send(s_ready, qk[at(t)](q=Q[h, t // NKV], kt=KT[h, t % NKV], s=S[h, t]), token=t)

        def softmax_step(t):
            i = t // NKV
            first = softmax_first[at(t)](s=S[h, t], row_max=Mx[h, i], row_sum=L[h, i], p=Pr[h, t])
            later = softmax[at(t)](s=S[h, t], row_max=Mx[h, i], row_sum=L[h, i], p=Pr[h, t], alpha=A[h, t])
            return send(p_ready, cond((t % NKV).eq(0), first, later), token=t)

        def pv_step(t):
            return send(pv_ready, pv[at(t)](p=Pr[h, t], v=V[h, t % NKV], o=PV[h, t]), token=t)

        def update_step(t):
            i = t // NKV
            first = update_first[at(t)](pv=PV[h, t], acc=Acc[h, i])
            later = update[at(t)](pv=PV[h, t], alpha=A[h, t], acc=Acc[h, i])
            return [cond((t % NKV).eq(0), first, later),
                    cond((t % NKV).eq(NKV - 1), normalize[at(t)](acc=Acc[h, i], row_sum=L[h, i], y=Y[h, i]))]

        return [process(f"qk.h{h}").produces(s_ready).body(for_each(Dense[T](), qk_step)),
                process(f"softmax.h{h}").consumes(s_ready).produces(p_ready).body(consume(s_ready, softmax_step)),
                process(f"pv.h{h}").consumes(p_ready).produces(pv_ready).body(consume(p_ready, pv_step)),
                process(f"update.h{h}").consumes(pv_ready).body(consume(pv_ready, update_step))]

    return FlashAttention(connect(*[head(h) for h in range(H)]), Y)


def fa_placement(heads: int) -> dict[str, Any]:
    """Head h's four stages on AI core h: qk and pv on its AIC (cube), softmax on its AIV0 and update on its AIV1
    (a place is a core, or (core, aiv))."""
    return {f"{stage}.h{h}": (h, 1) if stage == "update" else h for h in range(heads) for stage in STAGES}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="default", help="problem size (default: default)")
    args = ap.parse_args(argv)
    cfg = SIZES[args.size]
    H, M, N, D, NQ, NKV = (cfg[k] for k in ("heads", "m", "n", "d", "q_tiles", "kv_blocks"))
    kernels = make_kernels(M, N, D)

    rng = np.random.default_rng(2026)
    q = rng.standard_normal((H, NQ * M, D)).astype(np.float16)
    k = rng.standard_normal((H, NKV * N, D)).astype(np.float16)
    v = rng.standard_normal((H, NKV * N, D)).astype(np.float16)
    q_t = q.reshape(H, NQ, M, D)
    kt_t = np.ascontiguousarray(k.reshape(H, NKV, N, D).transpose(0, 1, 3, 2))   # K^T blocks [D, N]
    v_t = v.reshape(H, NKV, N, D)
    expected = golden.attention_ref(q, k, v)
    # P is rounded to F16 before P @ V: each weight is off by at most 2^-11 relative, so the output by at most
    # 2^-11 * max|V| (the weights sum to 1); everything else is F32 (see README).
    tol = dict(rtol=1e-3, atol=2.0 ** -11 * float(np.abs(v.astype(np.float64)).max()))

    print(f"CSP flash attention - size {args.size}: {H} head(s), Sq {NQ * M} = {NQ} query tile(s) x {M}, "
          f"Skv {NKV * N} = {NKV} KV block(s) x {N}, head dim {D}")
    print("stages per head: qk (cube) -> softmax (vector) -> pv (cube) -> update + normalize (vector); "
          f"{NQ * NKV} tokens each")
    print()

    per_stage = 4 * H
    runs = []  # (label, placement label, depth, cores, program, output)
    for label, place, cores in (("1 core/stage", None, per_stage), ("FA: AIC+AIV", fa_placement(H), H)):
        for depth in (1, 2):
            fa = build(q_t, kt_t, v_t, M, N, depth, kernels)
            pipeline = fa.pipeline.place(place) if place is not None else fa.pipeline
            program = pipeline.compile()
            program.execute()
            runs.append((f"{label} d{depth}", label, str(depth), cores, program, fa.output()))
    for cores in (per_stage, H):
        fa = build(q_t, kt_t, v_t, M, N, 2, kernels)
        program = data_parallel_twin(fa.pipeline, cores).compile()
        program.execute()
        runs.append((f"twin {cores} cores", "data-parallel twin", "-", cores, program, fa.output()))

    print(f"{'run':<20} {'depth':>5} {'cores':>5} {'cycles':>9} {'us':>9}  overlap")
    for _, placement, depth, cores, program, _ in runs:
        s = program.stats()
        print(f"{placement:<20} {depth:>5} {cores:>5} {s.total_cycles:>9} {s.time_us:>9.3f}  {s.overlap_pct:5.1f}%")
    print()

    checks = [check(label, out, expected, **tol) for label, _, _, _, _, out in runs]
    shown = {label: program for label, _, _, _, program, _ in runs if label in
             ("1 core/stage d2", "FA: AIC+AIV d2", f"twin {H} cores")}
    ok = report(f"CSP flash attention {args.size}: Y = softmax(Q K^T / sqrt({D})) V, checked against numpy "
                "(golden.py)", checks, shown)
    return 0 if ok else 1


if __name__ == "__main__":
    run_example(main)  # a ptort_lab error: its message and exit status 2, no traceback
