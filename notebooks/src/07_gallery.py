# %% [markdown]
# # 07 · Gallery: flash attention, MoE, batched GEMM
#
# Workloads PTO users write: the first three each in one `%%ptort` cell checked against numpy, the fourth a
# production-form kernel from `examples/` run timing-only:
#
# 1. **Flash attention as a CSP pipeline**: QKᵀ on the cube → softmax on the vector unit → PV on the cube →
#    rescale/normalise on the vector unit, coupled by channels (the pattern Ascend flash-attention kernels use).
# 2. **Mixture of Experts** (DeepSeek-V3 style): top-k routing as a `Sparse` CSR structure and the experts
#    launched with `P.sel` over each token tile's row of it.
# 3. **Batched GEMM**: F16 × F16 → F32 tiles with a sequential K loop (`P.seq`) that accumulates into `C`.
# 4. **Flash attention the way the hardware runs it** (`examples/flash_attention/`): on-chip state, tile channels,
#    a join over both vector units and one pipeline per AI core, against its data-parallel twin at S = 4096.
#
# The cells are compact versions of the full examples in `examples/csp_attention/`, `examples/moe/` and
# `examples/bgemm/` (each of those has a `golden.py`, sizes and a README). Each `%%ptort` cell shows its summary
# and its timeline (`--show timeline`); the cell after it prints the check against numpy.

# %%
%load_ext ptort_lab

# %%
import numpy as np
from ptort_lab import (Dense, DispatchPolicy, DType, In, InOut, Out, P, Sparse, Tensor, Tile, cond, for_each,
                       kernel, tl, workload)
from ptort_lab.csp import Channel, connect, consume, process, send
from ptort_lab.report import check

F32, F16 = DType.F32, DType.F16


def verdict(name, got, expected, rtol, atol):
    """PASS/FAIL against numpy (the error itself can differ in its last digits between BLAS builds)."""
    c = check(name, got, expected, rtol=rtol, atol=atol)
    return f"{name}: {'PASS' if c.passed else 'FAIL'} (rtol {rtol:g}, atol {atol:.3g})"

# %% [markdown]
# ## 1 · Flash attention: a 4-stage cube/vector pipeline
#
# One head, 2 query tiles of `M` rows, `TILES` KV blocks of `N` rows (`--tile MxN`), head dim 128. A token
# `t = i · n_kv + j` is one (query tile `i`, KV block `j`) pair; the channels carry `t`, the tiles live in tensors.
# The vector stages keep the online-softmax state per query tile: running row max `mx`, row sum `sm` and the
# unnormalised output `acc`. On a query tile's first block (`cond(j.eq(0), first, later)`) they start the
# state instead of updating it; after its last block `normalize` writes `Y = acc / sm`.
#
# `.place({...})` puts all four stages on AI core 0, as a flash-attention kernel does: `qk` and `pv` on its cube
# (AIC), `softmax` on its first vector unit and `update` on its second (`(0, 1)` = core 0, AIV1). AIC and AIVs
# share no buffer, so each channel still goes through GM with a cross-unit flag and pays the 1000-cycle hop (the
# latency NPU_MODEL fitted to onboard flash attention). With `--cores 1` the data-parallel twin runs the same tasks
# on one AI core too, so the two timelines compare like with like.

# %%
%%ptort --depth 2 --tile 64x128 --tiles 4 --cores 1 --show timeline -o fa
M, N = TILE
D, NQ, NKV = 128, 2, TILES
T, scale = NQ * NKV, 1.0 / np.sqrt(D)

@kernel
def qk(q: In[Tile[M, D, F16]], kt: In[Tile[D, N, F16]], s: Out[Tile[M, N, F32]]):
    tl.store(s, tl.matmul(tl.load(q), tl.load(kt)))

@kernel
def softmax_first(s: In[Tile[M, N, F32]], mx: Out[Tile[M, 1, F32]], sm: Out[Tile[M, 1, F32]],
                  p: Out[Tile[M, N, F16]]):
    x = tl.mul(tl.load(s), scale)
    m = tl.rowmax(x)
    e = tl.exp(tl.sub(x, m))
    tl.store(mx, m)
    tl.store(sm, tl.rowsum(e))
    tl.store(p, tl.cast(e, F16))

@kernel
def softmax(s: In[Tile[M, N, F32]], mx: InOut[Tile[M, 1, F32]], sm: InOut[Tile[M, 1, F32]],
            p: Out[Tile[M, N, F16]], alpha: Out[Tile[M, 1, F32]]):
    x = tl.mul(tl.load(s), scale)
    m_old = tl.load(mx)
    m = tl.max(m_old, tl.rowmax(x))
    e = tl.exp(tl.sub(x, m))
    a = tl.exp(tl.sub(m_old, m))
    tl.store(mx, m)
    tl.store(sm, tl.add(tl.mul(tl.load(sm), a), tl.rowsum(e)))
    tl.store(alpha, a)
    tl.store(p, tl.cast(e, F16))

@kernel
def pv(p: In[Tile[M, N, F16]], v: In[Tile[N, D, F16]], o: Out[Tile[M, D, F32]]):
    tl.store(o, tl.matmul(tl.load(p), tl.load(v)))

@kernel
def update_first(o: In[Tile[M, D, F32]], acc: Out[Tile[M, D, F32]]):
    tl.store(acc, tl.load(o))

@kernel
def update(o: In[Tile[M, D, F32]], alpha: In[Tile[M, 1, F32]], acc: InOut[Tile[M, D, F32]]):
    tl.store(acc, tl.add(tl.mul(tl.load(acc), tl.load(alpha)), tl.load(o)))

@kernel
def normalize(acc: In[Tile[M, D, F32]], sm: In[Tile[M, 1, F32]], y: Out[Tile[M, D, F32]]):
    tl.store(y, tl.div(tl.load(acc), tl.load(sm)))

rng = np.random.default_rng(0)
q, k, v = (rng.standard_normal((n, r, D)).astype(np.float16) for n, r in ((NQ, M), (NKV, N), (NKV, N)))
Q, KT, V = Tensor(data=q), Tensor(data=np.ascontiguousarray(k.transpose(0, 2, 1))), Tensor(data=v)
S, PR, A, PV = (Tensor(shape=(T, M, N)), Tensor(shape=(T, M, N), dtype=F16), Tensor(shape=(T, M, 1)),
                Tensor(shape=(T, M, D)))
MX, SM, ACC, Y = Tensor(shape=(NQ, M, 1)), Tensor(shape=(NQ, M, 1)), Tensor(shape=(NQ, M, D)), Tensor(shape=(NQ, M, D))

def token(t):
    """Token t -> (query tile, KV block); kernels launch with these two axes."""
    return t // NKV, t % NKV

def fa_pipeline(depth):
    s_ready, p_ready, pv_ready = (Channel[Tensor](name=n, depth=depth) for n in ("s_ready", "p_ready", "pv_ready"))

    def qk_step(t):
        i, j = token(t)
        return send(s_ready, qk[i, j](q=Q[i], kt=KT[j], s=S[t]), token=t)

    def softmax_step(t):
        i, j = token(t)
        first = softmax_first[i, j](s=S[t], mx=MX[i], sm=SM[i], p=PR[t])
        later = softmax[i, j](s=S[t], mx=MX[i], sm=SM[i], p=PR[t], alpha=A[t])
        return send(p_ready, cond(j.eq(0), first, later), token=t)

    def pv_step(t):
        i, j = token(t)
        return send(pv_ready, pv[i, j](p=PR[t], v=V[j], o=PV[t]), token=t)

    def update_step(t):
        i, j = token(t)
        return [cond(j.eq(0), update_first[i, j](o=PV[t], acc=ACC[i]), update[i, j](o=PV[t], alpha=A[t], acc=ACC[i])),
                cond(j.eq(NKV - 1), normalize[i, j](acc=ACC[i], sm=SM[i], y=Y[i]))]

    return connect(process("qk").produces(s_ready).body(for_each(Dense[T](), qk_step)),
                   process("softmax").consumes(s_ready).produces(p_ready).body(consume(s_ready, softmax_step)),
                   process("pv").consumes(p_ready).produces(pv_ready).body(consume(p_ready, pv_step)),
                   process("update").consumes(pv_ready).body(consume(pv_ready, update_step))
                   ).place({"qk": 0, "softmax": 0, "pv": 0, "update": (0, 1)})

fa_pipeline(DEPTH)

# %% [markdown]
# The pipeline run computed `Y` (its data-parallel twin runs timing-only); it must equal `softmax(q kᵀ / √D) v`.
# The tolerance comes from `P`, which is rounded to F16 before `P V`: each weight is off by at most 2⁻¹¹ relative,
# so the output by at most 2⁻¹¹ · max|V|.

# %% tags=["nbval-check-output"]
s_ref = q.reshape(-1, D).astype(np.float64) @ k.reshape(-1, D).astype(np.float64).T * scale
p_ref = np.exp(s_ref - s_ref.max(axis=1, keepdims=True))
y_ref = (p_ref @ v.reshape(-1, D).astype(np.float64)) / p_ref.sum(axis=1, keepdims=True)
print(repr(fa))
print(verdict("flash attention", Y.data.reshape(-1, D), y_ref, rtol=1e-3, atol=2.0 ** -11 * float(np.abs(v).max())))

# %% [markdown]
# In the pipeline's timeline the cube stages work on block `j + 1` while the vector stages work on block `j`.
# With one slot per channel a stage cannot start the next block until the stage after it has freed the slot, so
# cube and vector take turns (`fa_pipeline` is the builder the cell defined):

# %% tags=["nbval-check-output"]
for depth in (1, 2):
    program = fa_pipeline(depth).compile()
    program.execute()
    print(f"flash attention pipeline, depth {depth}: {program.stats().total_cycles} cycles")

# %% [markdown]
# ## 2 · Mixture of Experts with `P.sel` over `Sparse` routing
#
# `TILES` token tiles of 64 tokens, d_model 128, 8 routed experts (top-2) and one shared expert. The router runs
# on the host here (numpy: sigmoid scores, top-2, gates normalised over the two; `examples/moe/` runs it on the
# device). The routing becomes a CSR structure with one row per token tile, listing the experts any of its tokens
# chose; the gates become one `[64, 1]` column per (tile, expert), 0 for the tile's tokens that did not choose
# that expert. Then, per tile, the shared expert initialises `Y[b]` and `P.sel(routing[b])` launches only the
# chosen experts: `H = x @ W_e` on the cube, `Y += g * H` on the vector unit. Affinity on `b` keeps a tile's
# accumulation chain on one core.

# %%
%%ptort --tiles 8 --cores 4 --show timeline -o moe
TM, DM, E, TOPK = 64, 128, 8, 2
NB = TILES

@kernel
def expert_linear(x: In[Tile[TM, DM, F16]], w: In[Tile[DM, DM, F16]], h: Out[Tile[TM, DM, F32]]):
    tl.store(h, tl.matmul(tl.load(x), tl.load(w)))

@kernel
def gate_accumulate(h: In[Tile[TM, DM, F32]], g: In[Tile[TM, 1, F32]], y: InOut[Tile[TM, DM, F32]]):
    tl.store(y, tl.add(tl.load(y), tl.mul(tl.load(h), tl.load(g))))

rng = np.random.default_rng(1)
x = (rng.standard_normal((NB, 1, DM)) + 0.5 * rng.standard_normal((NB, TM, DM))).astype(np.float16)
w_router = rng.standard_normal((DM, E)) / np.sqrt(DM)
w = (rng.standard_normal((E + 1, DM, DM)) / np.sqrt(DM)).astype(np.float16)    # index E: the shared expert

scores = 1 / (1 + np.exp(-(x.reshape(-1, DM).astype(np.float64) @ w_router)))    # router (host)
top = np.argsort(-scores, axis=1, kind="stable")[:, :TOPK]
gates = np.take_along_axis(scores, top, axis=1)
gates /= gates.sum(axis=1, keepdims=True)
g_dense = np.zeros((NB * TM, E), np.float32)
np.put_along_axis(g_dense, top, gates.astype(np.float32), axis=1)
chosen = [sorted(set(top[b * TM:(b + 1) * TM].ravel().tolist())) for b in range(NB)]
routing = Sparse(NB, np.cumsum([0] + [len(c) for c in chosen]).tolist(), sum(chosen, []))

X, W = Tensor(data=x), Tensor(data=w)
G = Tensor(data=np.ascontiguousarray(g_dense.reshape(NB, TM, E).transpose(0, 2, 1)[..., None]))
H, YM = Tensor(shape=(NB, E, TM, DM)), Tensor(shape=(NB, TM, DM))

@workload
def moe():
    for b in P(Dense[NB]()):
        expert_linear[b, E](x=X[b], w=W[E], h=YM[b])                  # shared expert, gate 1
        for e in P.sel(routing[b]):
            expert_linear[b, e](x=X[b], w=W[e], h=H[b, e])
            gate_accumulate[b, e](h=H[b, e], g=G[b, e], y=YM[b])

moe().dispatch(DispatchPolicy.affinity(lambda t: t.get("b"), CORES))

# %% [markdown]
# `y = x @ W_s + Σ_e g_e · (x @ W_e)` over each token's two experts. The F16 products are exact in F32, so only
# the F32 accumulation differs from float64.

# %% tags=["nbval-check-output"]
x64, w64 = x.reshape(-1, DM).astype(np.float64), w.astype(np.float64)
y_ref = x64 @ w64[E] + sum(g_dense[:, [e]].astype(np.float64) * (x64 @ w64[e]) for e in range(E))
print(f"routing: {routing!r}; tile 0 -> experts {routing[0]}")
print(repr(moe))
print(verdict("moe", YM.data.reshape(-1, DM), y_ref, rtol=1e-4, atol=1e-4))

# %% [markdown]
# ## 3 · Batched GEMM with a sequential K loop
#
# `C[b] = A[b] @ B[b]` for `TILES` batches of 256 × 256 × 256, in `TILE`-sized output tiles and 128-deep K slices.
# `P(...)` over (batch, row tile, column tile) is parallel; `P.seq` over K is ordered, and `P.when`/`P.otherwise`
# pick the kernel: the first slice writes `C`, the later ones accumulate into it (`InOut`). Every output tile's K
# chain stays on one core (affinity on the tile).

# %%
%%ptort --tile 128x128 --tiles 4 --cores 4 --show timeline -o bgemm
BM, BN = TILE
BK, NB = 128, TILES
MT, NT, KT = 256 // BM, 256 // BN, 256 // BK

@kernel
def gemm_first(a: In[Tile[BM, BK, F16]], b: In[Tile[BK, BN, F16]], c: Out[Tile[BM, BN, F32]]):
    tl.store(c, tl.matmul(tl.load(a), tl.load(b)))

@kernel
def gemm_acc(a: In[Tile[BM, BK, F16]], b: In[Tile[BK, BN, F16]], c: InOut[Tile[BM, BN, F32]]):
    tl.store(c, tl.add(tl.load(c), tl.matmul(tl.load(a), tl.load(b))))

rng = np.random.default_rng(2)
a = rng.standard_normal((NB, MT * BM, KT * BK)).astype(np.float16)
bm = rng.standard_normal((NB, KT * BK, NT * BN)).astype(np.float16)
A = Tensor(data=np.ascontiguousarray(a.reshape(NB, MT, BM, KT, BK).transpose(0, 1, 3, 2, 4)))   # [n, i, k] tiles
B = Tensor(data=np.ascontiguousarray(bm.reshape(NB, KT, BK, NT, BN).transpose(0, 1, 3, 2, 4)))  # [n, k, j] tiles
C = Tensor(shape=(NB, MT, NT, BM, BN))

@workload
def bgemm():
    for n, i, j in P(Dense[NB](), Dense[MT](), Dense[NT](), names=["n", "i", "j"]):
        for kk in P.seq(Dense[KT](), name="k"):
            with P.when(kk.eq(0)):
                gemm_first[n, i, j, kk](a=A[n, i, kk], b=B[n, kk, j], c=C[n, i, j])
            with P.otherwise():
                gemm_acc[n, i, j, kk](a=A[n, i, kk], b=B[n, kk, j], c=C[n, i, j])

bgemm().dispatch(DispatchPolicy.affinity(lambda t: (t.get("n") * MT + t.get("i")) * NT + t.get("j"), CORES))

# %% [markdown]
# `C` against float64 numpy: the F16 products are exact in F32 and each output sums 256 of them in F32 (two
# slices of 128), entries are around ±16, so F32 rounding stays far below `atol 1e-3`.

# %% tags=["nbval-check-output"]
c_ref = a.astype(np.float64) @ bm.astype(np.float64)
c_got = C.data.transpose(0, 1, 3, 2, 4).reshape(NB, MT * BM, NT * BN)
print(repr(bgemm))
print(verdict("bgemm", c_got, c_ref, rtol=1e-4, atol=1e-3))

# %% [markdown]
# ## 4 · Flash attention the way the hardware runs it
#
# Section 1 keeps every tile in GM tensors. `examples/flash_attention/` writes the same algorithm the way
# production Ascend kernels are written: Q stays in L1 and the running O, m, l stay in the AIVs' UB across KV blocks
# (`Tensor(location=Location.UB)`), the stages exchange tiles through tile channels (`Channel(..., tile=Tile[...])`,
# GM rings between the cube and the vector units, UB queues within one AIV), the softmax is split over both vector
# units and `pv` waits for both halves (a join, `consume([p0, p1], fn)`), sub-tiles keep every matmul inside L0C,
# and `per_core` gives each of the 24 AI cores its own six-process pipeline. Its data-parallel variant runs the same
# kernels as software-pipelined tasks. Here both run timing-only at S = 3072 (one head: 24 query tiles, one per AI
# core): the same schedule and cycles as a run with values, without the numpy work; the example's README explains
# each stage. (At S = 4096 there are 32 query tiles, so 8 cores take a second one and the run takes twice as long
# as one tile: wave quantisation, which `--seq` shows in the example.)

# %% tags=["nbval-check-output"]
import sys
from pathlib import Path

import ptort_lab

sys.path.insert(0, str(Path(ptort_lab.__file__).resolve().parents[1] / "examples" / "flash_attention"))
import flash_attention_example as fa_example

fa_runs = {}
for variant in fa_example.VARIANTS:
    fa_cfg = fa_example.Config(seq=3072)
    fa_runs[variant], _ = fa_example.run(variant, fa_cfg)
    stats = fa_runs[variant].stats()
    print(f"{variant:<14} {stats.total_cycles:>8} cycles = {stats.time_us:8.3f} us, {stats.task_count} tasks")
    print("   " + fa_example.pipes_line(fa_runs[variant]))

# %% [markdown]
# One core's pipeline up close (S = 1024 on one AI core: 8 query tiles x 4 KV blocks): `qk` and `pv` alternate on
# the cube while the two softmax halves and the two updates run on AIV0 and AIV1, and the channel fills below show
# the cube working ahead of the vector units; the busy shares above say which pipe bounds the run.

# %%
from ptort_lab.viz import plot_timeline

one_core, _ = fa_example.run("pipeline", fa_example.Config(seq=1024, cores=1))
plot_timeline(one_core, title="flash attention pipeline, S = 1024, one AI core")

# %% [markdown]
# ## The three side by side
#
# Cycles on the simulated Ascend 910B (1.8 GHz) for each run above:

# %% tags=["nbval-check-output"]
for name, result in (("flash attention", fa), ("moe", moe), ("bgemm", bgemm)):
    for row in result.comparison.rows():
        print(f"{name:<16} {row['run']:<14} {row['cycles']:>8} cycles {row['us']:>9.3f} us  {row['tasks']:>3} tasks")
