#!/usr/bin/env python3
"""Llama layer-block example: RMSNorm -> causal multi-head attention -> residual -> RMSNorm -> SwiGLU MLP -> residual.

One pre-norm llama layer on the S tokens of one sequence, tiled into row tiles of ``ts`` tokens, on the ptort_lab
simulator. Activations are F32 between kernels except the matmul operands, which are F16 (weights are F16 too); the
cube unit accumulates in F32. The stages, each a parallel loop whose dependencies are inferred from the tensors:

  1. rmsnorm_rows / rmsnorm_cols   x -> F16(RMSNorm(x) * g1), in row layout (for Q, V) and column layout (for K^T)
  2. project / project_t           Q, V = xn @ W (per head), K^T = W_k^T @ xn^T (per head, already transposed)
  3. attn_init, attn_step(_causal) flash attention per (query tile t, head h): P.seq over key tiles
                                   DenseDyn(t + 1) (causal: key tiles 0..t only), online softmax state (o, m, l) in
                                   InOut tensors, the diagonal tile masked by P.when(j < t) / P.otherwise()
  4. o_proj_first / o_proj_acc     h1 = x + sum_h F16(o_h / l_h) @ W_o[h]  (P.seq over heads, matmul acc=)
  5. rmsnorm_rows                  n = F16(RMSNorm(h1) * g2)
  6. mlp_first / mlp_acc           y = h1 + sum_f F16(silu(n @ W1_f) * (n @ W3_f)) @ W2_f  (P.seq over F tiles;
                                   silu(a) = a / (1 + exp(-a)))
The result is checked against a float64 numpy reference of the same layer (golden.py).

Usage:
    python examples/llama/llama_example.py [--size {small,default,large}]
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

from golden import llama_block_ref  # noqa: E402

from ptort_lab import (  # noqa: E402
    Dense,
    DenseDyn,
    DispatchPolicy,
    DType,
    In,
    InOut,
    Out,
    P,
    Tensor,
    Tile,
    kernel,
    tl,
    workload,
)
from ptort_lab.dsl.printer import kernel_op_summary  # noqa: E402
from ptort_lab.report import check, report, run_example  # noqa: E402

F16, F32 = DType.F16, DType.F32
EPS = 1e-6

# tokens S, model dim D, heads H, MLP hidden F, token tile ts, F tile tf, cores
SIZES = {
    "small": dict(S=16, D=16, H=2, F=32, ts=8, tf=16, cores=4),
    "default": dict(S=128, D=128, H=4, F=384, ts=32, tf=128, cores=24),
    "large": dict(S=512, D=256, H=8, F=768, ts=64, tf=128, cores=24),
}

# Every matmul operand is rounded to F16 (normalised activations, q/k/v, softmax weights, the attention output and the
# SwiGLU activation): each rounding is a relative error <= 2**-11 ~ 4.9e-4, and the F32-accumulated matmuls average
# such errors over their K dimension. Through the two residual branches the outputs (|h1|, |y| up to ~6) differ from
# float64 by a few 1e-3 at most (measured: 0.7e-3 to 1.6e-3). rtol 1e-2 with atol 1e-2 bounds that with margin; a
# wrong mask, state update or index moves outputs by O(1).
RTOL, ATOL = 1e-2, 1e-2


def make_kernels(ts: int, d: int, dh: int, tf: int):
    scale = 1.0 / math.sqrt(dh)
    ninf = float("-inf")

    @kernel
    def rmsnorm_rows(x: In[Tile[ts, d, F32]], g: In[Tile[1, d, F32]], y: Out[Tile[ts, d, F16]]):
        """y = F16(x * rsqrt(mean(x^2) + eps) * g), one token per row."""
        v = tl.load(x)
        inv = tl.rsqrt(tl.add(tl.rowmean(tl.mul(v, v)), EPS))
        tl.store(y, tl.cast(tl.mul(tl.mul(v, inv), tl.load(g)), F16))

    @kernel
    def rmsnorm_cols(xt: In[Tile[d, ts, F32]], g: In[Tile[d, 1, F32]], y: Out[Tile[d, ts, F16]]):
        """The same RMSNorm in column layout (one token per column), for the K^T projection."""
        v = tl.load(xt)
        inv = tl.rsqrt(tl.add(tl.mul(tl.colsum(tl.mul(v, v)), 1.0 / d), EPS))   # [1, ts]; tl has no colmean
        tl.store(y, tl.cast(tl.mul(tl.mul(v, inv), tl.load(g)), F16))

    @kernel
    def project(x: In[Tile[ts, d, F16]], w: In[Tile[d, dh, F16]], y: Out[Tile[ts, dh, F16]]):
        """One head's projection: y = F16(x @ w)."""
        tl.store(y, tl.cast(tl.matmul(tl.load(x), tl.load(w)), F16))

    @kernel
    def project_t(wt: In[Tile[dh, d, F16]], xt: In[Tile[d, ts, F16]], y: Out[Tile[dh, ts, F16]]):
        """One head's key projection, transposed: K^T = W_k^T @ x^T."""
        tl.store(y, tl.cast(tl.matmul(tl.load(wt), tl.load(xt)), F16))

    @kernel
    def attn_init(o: Out[Tile[ts, dh, F32]], m: Out[Tile[ts, 1, F32]], l: Out[Tile[ts, 1, F32]]):  # noqa: E741
        """Empty online-softmax state: o = 0, m = -inf, l = 0."""
        tl.store(o, tl.full(ts, dh, 0.0))
        tl.store(m, tl.full(ts, 1, ninf))
        tl.store(l, tl.full(ts, 1, 0.0))

    def online_softmax_step(q, kt, v, o, m, l, mask=None):  # noqa: E741
        s = tl.mul(tl.matmul(tl.load(q), tl.load(kt)), scale)           # [ts, ts] F32
        if mask is not None:
            s = tl.add(s, tl.load(mask))                                  # -inf above the diagonal
        m_old = tl.load(m)
        m_new = tl.max(m_old, tl.rowmax(s))
        alpha = tl.exp(tl.sub(m_old, m_new))                              # rescales the old state
        p = tl.exp(tl.sub(s, m_new))
        tl.store(l, tl.add(tl.mul(tl.load(l), alpha), tl.rowsum(p)))
        tl.store(o, tl.add(tl.mul(tl.load(o), alpha), tl.matmul(tl.cast(p, F16), tl.load(v))))
        tl.store(m, m_new)

    @kernel
    def attn_step(q: In[Tile[ts, dh, F16]], kt: In[Tile[dh, ts, F16]], v: In[Tile[ts, dh, F16]],
                  o: InOut[Tile[ts, dh, F32]], m: InOut[Tile[ts, 1, F32]], l: InOut[Tile[ts, 1, F32]]):  # noqa: E741
        """Fold one key tile strictly before the query tile into the state (no mask needed)."""
        online_softmax_step(q, kt, v, o, m, l)

    @kernel
    def attn_step_causal(q: In[Tile[ts, dh, F16]], kt: In[Tile[dh, ts, F16]], v: In[Tile[ts, dh, F16]],
                         mask: In[Tile[ts, ts, F32]], o: InOut[Tile[ts, dh, F32]], m: InOut[Tile[ts, 1, F32]],
                         l: InOut[Tile[ts, 1, F32]]):  # noqa: E741
        """Fold the diagonal key tile into the state, with the causal mask."""
        online_softmax_step(q, kt, v, o, m, l, mask)

    @kernel
    def o_proj_first(x: In[Tile[ts, d, F32]], o: In[Tile[ts, dh, F32]], l: In[Tile[ts, 1, F32]],  # noqa: E741
                     w: In[Tile[dh, d, F16]], y: Out[Tile[ts, d, F32]]):
        """Head 0 of the output projection, plus the residual: y = x + F16(o / l) @ w."""
        attn = tl.cast(tl.div(tl.load(o), tl.load(l)), F16)
        tl.store(y, tl.add(tl.load(x), tl.matmul(attn, tl.load(w))))

    @kernel
    def o_proj_acc(o: In[Tile[ts, dh, F32]], l: In[Tile[ts, 1, F32]], w: In[Tile[dh, d, F16]],  # noqa: E741
                   y: InOut[Tile[ts, d, F32]]):
        """Every other head: y += F16(o / l) @ w, with y as the matmul accumulator."""
        attn = tl.cast(tl.div(tl.load(o), tl.load(l)), F16)
        tl.store(y, tl.matmul(attn, tl.load(w), acc=tl.load(y)))

    def swiglu(x, w1, w3):
        xn = tl.load(x)
        gate = tl.matmul(xn, tl.load(w1))                                 # [ts, tf] F32
        up = tl.matmul(xn, tl.load(w3))
        silu = tl.silu(gate)                                              # gate / (1 + exp(-gate))
        return tl.cast(tl.mul(silu, up), F16)

    @kernel
    def mlp_first(res: In[Tile[ts, d, F32]], x: In[Tile[ts, d, F16]], w1: In[Tile[d, tf, F16]],
                  w3: In[Tile[d, tf, F16]], w2: In[Tile[tf, d, F16]], y: Out[Tile[ts, d, F32]]):
        """F tile 0 of the SwiGLU MLP, plus the residual: y = res + swiglu(x) @ w2."""
        tl.store(y, tl.add(tl.load(res), tl.matmul(swiglu(x, w1, w3), tl.load(w2))))

    @kernel
    def mlp_acc(x: In[Tile[ts, d, F16]], w1: In[Tile[d, tf, F16]], w3: In[Tile[d, tf, F16]],
                w2: In[Tile[tf, d, F16]], y: InOut[Tile[ts, d, F32]]):
        """Every other F tile: y += swiglu(x) @ w2."""
        tl.store(y, tl.matmul(swiglu(x, w1, w3), tl.load(w2), acc=tl.load(y)))

    return dict(rmsnorm_rows=rmsnorm_rows, rmsnorm_cols=rmsnorm_cols, project=project, project_t=project_t,
                attn_init=attn_init, attn_step=attn_step, attn_step_causal=attn_step_causal,
                o_proj_first=o_proj_first, o_proj_acc=o_proj_acc, mlp_first=mlp_first, mlp_acc=mlp_acc)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="default", help="problem size (default: default)")
    args = ap.parse_args(argv)
    cfg = SIZES[args.size]
    s, d, nh, f, ts, tf, cores = (cfg[k] for k in ("S", "D", "H", "F", "ts", "tf", "cores"))
    dh, st, ft = d // nh, s // ts, f // tf

    # Inputs in their natural layouts: tokens x [S, D] (F32), norm gains (F32), weights [in, out] (F16).
    rng = np.random.default_rng(2026)
    x = rng.standard_normal((s, d)).astype(np.float32)
    g1, g2 = (1.0 + 0.1 * rng.standard_normal((2, d))).astype(np.float32)

    def weight(n_in: int, n_out: int) -> np.ndarray:
        return (rng.standard_normal((n_in, n_out)) / math.sqrt(n_in)).astype(np.float16)

    wq, wk, wv, wo = (weight(d, d) for _ in range(4))
    w1, w3, w2 = weight(d, f), weight(d, f), weight(f, d)

    # The same data in tile layouts: one index per tile. x is also given column-major (XT), so K^T is computed
    # directly from x^T by the cube (tl.transpose would send the tile through GM; see README).
    def heads_in(w: np.ndarray) -> np.ndarray:   # [D, H*dh] -> [H, D, dh]
        return np.ascontiguousarray(w.reshape(d, nh, dh).transpose(1, 0, 2))

    X = Tensor(data=np.ascontiguousarray(x.reshape(st, ts, d)), name="X")                       # [st, ts, D]
    XT = Tensor(data=np.ascontiguousarray(x.reshape(st, ts, d).transpose(0, 2, 1)), name="XT")   # [st, D, ts]
    G1, G1T = Tensor(data=g1[None, :], name="G1"), Tensor(data=g1[:, None], name="G1T")        # [1, D], [D, 1]
    G2 = Tensor(data=g2[None, :], name="G2")
    WQ, WV = Tensor(data=heads_in(wq), name="WQ"), Tensor(data=heads_in(wv), name="WV")          # [H, D, dh]
    WKT = Tensor(data=np.ascontiguousarray(heads_in(wk).transpose(0, 2, 1)), name="WKT")        # [H, dh, D]
    WO = Tensor(data=np.ascontiguousarray(wo.reshape(nh, dh, d)), name="WO")                    # [H, dh, D]
    W1 = Tensor(data=np.ascontiguousarray(w1.reshape(d, ft, tf).transpose(1, 0, 2)), name="W1")  # [ft, D, tf]
    W3 = Tensor(data=np.ascontiguousarray(w3.reshape(d, ft, tf).transpose(1, 0, 2)), name="W3")
    W2 = Tensor(data=np.ascontiguousarray(w2.reshape(ft, tf, d)), name="W2")                    # [ft, tf, D]
    causal = np.where(np.tril(np.ones((ts, ts), dtype=bool)), 0.0, -np.inf).astype(np.float32)
    CAUSAL = Tensor(data=causal, name="CAUSAL")                                                 # [ts, ts]

    XN = Tensor(shape=(st, ts, d), dtype=F16, name="XN")
    XNT = Tensor(shape=(st, d, ts), dtype=F16, name="XNT")
    Q = Tensor(shape=(st, nh, ts, dh), dtype=F16, name="Q")
    KT = Tensor(shape=(st, nh, dh, ts), dtype=F16, name="KT")
    V = Tensor(shape=(st, nh, ts, dh), dtype=F16, name="V")
    OS = Tensor(shape=(st, nh, ts, dh), dtype=F32, name="OS")    # flash-attention state per (query tile, head)
    MS = Tensor(shape=(st, nh, ts, 1), dtype=F32, name="MS")
    LS = Tensor(shape=(st, nh, ts, 1), dtype=F32, name="LS")
    H1 = Tensor(shape=(st, ts, d), dtype=F32, name="H1")         # x + attention
    HN = Tensor(shape=(st, ts, d), dtype=F16, name="HN")         # RMSNorm(h1) for the MLP
    Y = Tensor(shape=(st, ts, d), dtype=F32, name="Y")           # h1 + MLP

    k = make_kernels(ts, d, dh, tf)

    @workload
    def llama_layer():
        for t in P(Dense[st](), names=["t"]):                       # 1. attention RMSNorm, both layouts
            k["rmsnorm_rows"][t](x=X[t], g=G1, y=XN[t])
            k["rmsnorm_cols"][t](xt=XT[t], g=G1T, y=XNT[t])
        for t, h in P(Dense[st](), Dense[nh](), names=["t", "h"]):  # 2. Q, K^T, V per (token tile, head)
            k["project"][t, h, 0](x=XN[t], w=WQ[h], y=Q[t, h])
            k["project_t"][t, h](wt=WKT[h], xt=XNT[t], y=KT[t, h])
            k["project"][t, h, 2](x=XN[t], w=WV[h], y=V[t, h])
        for t, h in P(Dense[st](), Dense[nh](), names=["t", "h"]):  # 3. causal flash attention
            k["attn_init"][t, h](o=OS[t, h], m=MS[t, h], l=LS[t, h])
            for j in P.seq(DenseDyn(t + 1), name="j"):              #    key tiles 0..t only
                with P.when(j < t):
                    k["attn_step"][t, h, j](q=Q[t, h], kt=KT[j, h], v=V[j, h], o=OS[t, h], m=MS[t, h], l=LS[t, h])
                with P.otherwise():
                    k["attn_step_causal"][t, h, j](q=Q[t, h], kt=KT[j, h], v=V[j, h], mask=CAUSAL,
                                                   o=OS[t, h], m=MS[t, h], l=LS[t, h])
        for t in P(Dense[st](), names=["t"]):
            for h in P.seq(Dense[nh](), name="h"):                  # 4. output projection + residual
                with P.when(h.eq(0)):
                    k["o_proj_first"][t, h](x=X[t], o=OS[t, h], l=LS[t, h], w=WO[h], y=H1[t])
                with P.otherwise():
                    k["o_proj_acc"][t, h](o=OS[t, h], l=LS[t, h], w=WO[h], y=H1[t])
            k["rmsnorm_rows"][t](x=H1[t], g=G2, y=HN[t])            # 5. MLP RMSNorm
            for c in P.seq(Dense[ft](), name="c"):                  # 6. SwiGLU MLP + residual
                with P.when(c.eq(0)):
                    k["mlp_first"][t, c](res=H1[t], x=HN[t], w1=W1[c], w3=W3[c], w2=W2[c], y=Y[t])
                with P.otherwise():
                    k["mlp_acc"][t, c](x=HN[t], w1=W1[c], w3=W3[c], w2=W2[c], y=Y[t])

    w = llama_layer()
    tasks = w.enumerate()
    counts: dict[str, int] = {}
    for task in tasks:
        counts[task.kernel] = counts.get(task.kernel, 0) + 1
    print(f"Llama layer block: S={s} tokens, D={d}, {nh} heads of {dh}, MLP hidden {f} (SwiGLU), eps={EPS:g}")
    print(f"  token tiles of {ts}, F tiles of {tf}: {len(tasks)} tasks on {cores} cores")
    for name, kern in k.items():
        print(f"  {name:<17} x{counts.get(name, 0):<4} {kernel_op_summary(kern.trace())}")
    print(k["attn_step_causal"].trace())
    print()

    # Every intermediate tensor is fully rewritten by each run, so the same workload runs under both schedules.
    h1_ref, y_ref = llama_block_ref(x, g1, g2, wq, wk, wv, wo, w1, w3, w2, nh, EPS)
    checks, programs = [], {}
    for label, policy in (("round_robin", DispatchPolicy.round_robin(cores)),
                          ("work_steal", DispatchPolicy.work_steal(cores))):
        H1.data, Y.data = None, None
        program = w.dispatch(policy).compile()
        program.execute()
        checks.append(check(f"h1 ({label})", H1.data.reshape(s, d), h1_ref, rtol=RTOL, atol=ATOL))
        checks.append(check(f"y ({label})", Y.data.reshape(s, d), y_ref, rtol=RTOL, atol=ATOL))
        programs[label] = program
    ok = report(f"llama [{args.size}]: one pre-norm layer vs numpy (float64)", checks, programs)
    return 0 if ok else 1


if __name__ == "__main__":
    run_example(main)  # a ptort_lab error: its message and exit status 2, no traceback
