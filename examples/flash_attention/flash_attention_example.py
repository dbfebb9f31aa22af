#!/usr/bin/env python3
"""Flash-attention forward written the way production Ascend kernels write it, on the ptort_lab simulator.

fp16 Q, K, V, head dim 128, Q tiles of 128 rows, KV blocks of --block rows (128, 256 or 512). For every
(batch, head) ``Y = softmax(Q K^T / sqrt(128)) V``, each query tile with an online softmax over the KV blocks:

    qk       (AIC)   S = Q K^T, Q resident in L1 across the KV loop; K^T moves in column blocks of <= 256 and each
                     half of S is its own [64, <= 256] F32 matmul (a [128, 512] F32 tile would overflow the 128 KiB
                     L0C); rows 0:64 go to AIV0, rows 64:128 to AIV1
    softmax0 (AIV0)  online softmax of 64 rows: m' = max(m, rowmax(S scale)), P = exp(S scale - m') (F16),
    softmax1 (AIV1)  alpha = exp(m - m'), rowsum(P); the row max m stays in the AIV's UB
    pv       (AIC)   a join of both halves of P: PV = P V, accumulated over 128-row chunks of V in L0C; its halves
                     go back to AIV0 and AIV1
    update0  (AIV0)  O = alpha O + PV and l = alpha l + rowsum(P), with O and l resident in UB; after the last block
    update1  (AIV1)  Y = O / l (F16)

pipeline: those six processes on one AI core (qk and pv on its AIC, softmax0/update0 on AIV0, softmax1/update1 on
AIV1), coupled by tile channels: GM rings between the AIC and the AIVs (s, p, pv) and on-chip UB queues within one
AIV (alpha, rowsum), one copy per core with ``per_core``; core c takes query tiles c, c + cores, ... of all
batch x heads. data_parallel: the same kernels as tasks, dispatched by query tile with affinity over the cores and
software-pipelined (the loop issues qk of block u, softmax of u - 1, pv of u - 2 and update of u - 3, so cube and
vector work overlap); S, P, PV, alpha and rowsum go through a per-core GM workspace, Q, m, l and O stay on chip, and
``.vector_unit`` puts each half's vector work on its AIV.

Usage:
    python examples/flash_attention/flash_attention_example.py --seq S [--seq-kv S_KV] [--heads H] [--batch B]
        [--variant pipeline|data_parallel] [--timing-only] [--size small|default|large]
        [--block 128|256|512] [--depth D] [--cores N]

Without --variant both variants run. --size sets --seq when it is not given (small 512, default 2048, large 4096).
Each run prints ``flash_attention variant=<v> seq=<S> heads=<H> batch=<B>: <cycles> cycles = <us> us``, then the
pipe utilisation and the bound, then the work, wall time and peak RSS; unless --timing-only its output Y is checked
against a float64 numpy golden (golden.py) and the script prints PASS or FAIL (exit status 1).
"""
from __future__ import annotations

import argparse
import os
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

try:
    import ptort_lab  # noqa: F401
except ImportError:  # running from a source checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

sys.path.insert(0, str(Path(__file__).resolve().parent))
import golden  # noqa: E402

from ptort_lab import (  # noqa: E402
    Dense,
    DispatchPolicy,
    DType,
    In,
    InOut,
    Location,
    Out,
    P,
    Program,
    Tensor,
    Tile,
    ascend_910b,
    cond,
    for_each,
    kernel,
    per_core,
    tl,
    workload,
)
from ptort_lab.csp import Channel, connect, consume, process, send  # noqa: E402
from ptort_lab.report import check, run_example  # noqa: E402

F16, F32 = DType.F16, DType.F32
ROWS, HALF, D = 128, 64, 128     # query tile rows, rows per AIV, head dim
SCORE_COLS = 256                 # columns of S one cube matmul makes per half: [64, 256] F32 = 64 KiB of L0C
PV_CHUNK = 128                   # rows of V per accumulating matmul of P V
VEC_BYTES = 32 * 1024            # F32 bytes of S one vector pass works on ([32, 256], [16, 512], [64, 128])
DEPTH = 4                        # slots of the pipeline's channels (2 leaves it latency-bound: README)
SIZES = {"small": 512, "default": 2048, "large": 4096}
VARIANTS = ("pipeline", "data_parallel")
# --depth's bound: the pipeline's alpha and rowsum channels are UB queues on one AIV, two [64, 1] F32 slots per depth
# step. (Channel itself bounds only a tile channel's GM ring: depth x tile bytes within the modelled 64 GiB of HBM.) A
# deeper queue can never be placed; fewer slots fit next to the kernels' own tiles, and placement's CapacityError
# names how many.
MAX_DEPTH = ascend_910b.ub_bytes // (2 * HALF * 4)
# Peak host memory of a run with values (measured: 1.67 GB at S = 8192, 348 MB at S = 512 with 64 heads): the
# golden's float64 scores of one head (S x S_KV, three arrays) and, per element of Q, K and V, the float64 draw,
# the F16 inputs, K transposed, the float64 golden output and the check's copies.
SCORE_BYTES, INPUT_BYTES = 24, 24
# data_parallel: the stages of KV block j run in loop iterations j + offset, so the cube works ahead of the vector
# units; its GM workspace needs a slot per iteration a value lives (alpha: made at +1, used at +3).
STAGE_OFFSETS = (("qk", 0), ("softmax", 1), ("pv", 2), ("update", 3))
WORKSPACE_SLOTS = max(k for _, k in STAGE_OFFSETS) + 1


@dataclass(frozen=True)
class Config:
    """The problem (batch x heads: ``seq`` queries attending to ``seq_kv`` keys, ``seq`` when not given; KV blocks of
    ``block`` rows) and how it runs."""

    seq: int
    heads: int = 1
    batch: int = 1
    block: int = 256
    cores: int = 24
    depth: int = DEPTH
    seq_kv: int | None = None

    @property
    def keys(self) -> int:
        """Key/value rows per (batch, head): ``seq_kv``, else ``seq``."""
        return self.seq if self.seq_kv is None else self.seq_kv

    @property
    def q_tiles(self) -> int:
        """Query tiles per (batch, head)."""
        return self.seq // ROWS

    @property
    def kv_blocks(self) -> int:
        return self.keys // self.block

    @property
    def tiles(self) -> int:
        """Query tiles over all batch x heads: the unit of work a core takes."""
        return self.batch * self.heads * self.q_tiles

    @property
    def cores_used(self) -> int:
        return min(self.cores, self.tiles)


def cat(parts: list[Any]) -> Any:
    """One tile from row passes (a V copy when there are several)."""
    return parts[0] if len(parts) == 1 else tl.concat(parts, axis=0)


def make_kernels(block: int) -> dict[str, Any]:
    """The kernels for KV blocks of ``block`` rows."""
    N = block
    scale = 1.0 / float(np.sqrt(D))
    score_cols = [slice(c, c + min(N, SCORE_COLS)) for c in range(0, N, SCORE_COLS)]
    v_chunks = [slice(c, c + PV_CHUNK) for c in range(0, N, PV_CHUNK)]
    rows_per_pass = min(HALF, VEC_BYTES // (4 * N))
    passes = [slice(r, r + rows_per_pass) for r in range(0, HALF, rows_per_pass)]

    def scores(q: Any, kt: Any, s0: Any, s1: Any) -> None:
        for cols in score_cols:  # only this block of K^T moves; each half's result is stored to its slice of S
            k = tl.load(kt[:, cols])
            tl.store(s0[:, cols], tl.matmul(q[0:HALF, :], k))
            tl.store(s1[:, cols], tl.matmul(q[HALF:ROWS, :], k))

    @kernel
    def qk_first(q: In[Tile[ROWS, D, F16]], q_l1: Out[Tile[ROWS, D, F16]], kt: In[Tile[D, N, F16]],
                 s0: Out[Tile[HALF, N, F32]], s1: Out[Tile[HALF, N, F32]]):
        """Cube, first KV block of a query tile: Q comes from GM straight into its L1-resident copy."""
        qq = tl.load(q)
        tl.store(q_l1, qq)
        scores(qq, kt, s0, s1)

    @kernel
    def qk(q_l1: In[Tile[ROWS, D, F16]], kt: In[Tile[D, N, F16]], s0: Out[Tile[HALF, N, F32]],
           s1: Out[Tile[HALF, N, F32]]):
        """Cube, later blocks: Q is already in L1."""
        scores(tl.load(q_l1), kt, s0, s1)

    def exp_pass(x: Any, m_new: Any, p: Any, rows: slice) -> Any:
        e = tl.exp(x - m_new)
        tl.store(p[rows, :], tl.cast(e, F16))
        return tl.rowsum(e)

    @kernel
    def softmax_first(s: In[Tile[HALF, N, F32]], m: Out[Tile[HALF, 1, F32]], p: Out[Tile[HALF, N, F16]],
                      alpha: Out[Tile[HALF, 1, F32]], rowsum: Out[Tile[HALF, 1, F32]]):
        """Vector, first block: start the row max (alpha is not used: update starts O and l)."""
        maxes, sums = [], []
        for rows in passes:
            x = tl.load(s[rows, :]) * scale
            maxes.append(tl.rowmax(x))
            sums.append(exp_pass(x, maxes[-1], p, rows))
        tl.store(m, cat(maxes))
        tl.store(rowsum, cat(sums))
        tl.store(alpha, tl.full(HALF, 1, 0.0))

    @kernel
    def softmax(s: In[Tile[HALF, N, F32]], m: InOut[Tile[HALF, 1, F32]], p: Out[Tile[HALF, N, F16]],
                alpha: Out[Tile[HALF, 1, F32]], rowsum: Out[Tile[HALF, 1, F32]]):
        """Vector, later blocks: one online-softmax step of 64 rows, in passes of VEC_BYTES."""
        m_old = tl.load(m)
        maxes, sums = [], []
        for rows in passes:
            x = tl.load(s[rows, :]) * scale
            maxes.append(tl.max(m_old[rows, :], tl.rowmax(x)))
            sums.append(exp_pass(x, maxes[-1], p, rows))
        m_new = cat(maxes)
        tl.store(alpha, tl.exp(m_old - m_new))
        tl.store(m, m_new)
        tl.store(rowsum, cat(sums))

    @kernel
    def pv(p0: In[Tile[HALF, N, F16]], p1: In[Tile[HALF, N, F16]], v: In[Tile[N, D, F16]],
           o0: Out[Tile[HALF, D, F32]], o1: Out[Tile[HALF, D, F32]]):
        """Cube: both halves of P times V (V loaded once), each accumulating over PV_CHUNK rows of V in L0C."""
        vv = tl.load(v)
        for half, out in ((tl.load(p0), o0), (tl.load(p1), o1)):
            acc = None
            for rows in v_chunks:
                acc = tl.matmul(half[:, rows], vv[rows, :], acc)
            tl.store(out, acc)

    @kernel
    def update_first(pv: In[Tile[HALF, D, F32]], rowsum: In[Tile[HALF, 1, F32]], o: Out[Tile[HALF, D, F32]],
                     l_sum: Out[Tile[HALF, 1, F32]]):
        """Vector, first block: O and l start as this block's P V and row sums."""
        tl.store(o, tl.load(pv))
        tl.store(l_sum, tl.load(rowsum))

    @kernel
    def update(pv: In[Tile[HALF, D, F32]], alpha: In[Tile[HALF, 1, F32]], rowsum: In[Tile[HALF, 1, F32]],
               o: InOut[Tile[HALF, D, F32]], l_sum: InOut[Tile[HALF, 1, F32]]):
        """Vector, later blocks: rescale O and l by alpha and add this block's share."""
        a = tl.load(alpha)
        tl.store(o, tl.load(o) * a + tl.load(pv))
        tl.store(l_sum, tl.load(l_sum) * a + tl.load(rowsum))

    @kernel
    def finish(o: In[Tile[HALF, D, F32]], l_sum: In[Tile[HALF, 1, F32]], y: Out[Tile[HALF, D, F16]]):
        """Vector, after the last block: Y = O / l in F16."""
        tl.store(y, tl.cast(tl.load(o) / tl.load(l_sum), F16))

    return dict(qk_first=qk_first, qk=qk, softmax_first=softmax_first, softmax=softmax, pv=pv,
                update_first=update_first, update=update, finish=finish)


@dataclass
class Tensors:
    """Inputs and output in GM (query tile g = (b * heads + h) * q_tiles + i) and the on-chip state."""

    Q: Tensor     # [tiles, 128, 128] F16
    KT: Tensor    # [batch * heads, kv_blocks, 128, block] F16: K stored transposed
    V: Tensor     # [batch * heads, kv_blocks, block, 128] F16
    Y: Tensor     # [tiles, 2, 64, 128] F16: rows 0:64 of a tile written by AIV0, 64:128 by AIV1
    q_l1: Tensor  # L1 of each AIC: the query tile, loaded at its first KV block
    m: Tensor     # UB of each AIV: running row max of its 64 rows
    l_sum: Tensor  # UB of each AIV: running row sum (l)
    o: Tensor     # UB of each AIV: running, unnormalised output


def make_tensors(cfg: Config, qkv: tuple[np.ndarray, ...] | None) -> Tensors:
    """The tensors of ``cfg``; filled from (q, k, v) [batch * heads, S, 128] when given, else shapes only."""
    bh, nkv, n = cfg.batch * cfg.heads, cfg.kv_blocks, cfg.block
    if qkv is None:
        Q = Tensor(shape=(cfg.tiles, ROWS, D), dtype=F16, name="Q")
        KT = Tensor(shape=(bh, nkv, D, n), dtype=F16, name="KT")
        V = Tensor(shape=(bh, nkv, n, D), dtype=F16, name="V")
    else:
        q, k, v = qkv
        Q = Tensor(data=q.reshape(cfg.tiles, ROWS, D), name="Q")
        KT = Tensor(data=np.ascontiguousarray(k.reshape(bh, nkv, n, D).transpose(0, 1, 3, 2)), name="KT")
        V = Tensor(data=v.reshape(bh, nkv, n, D), name="V")
    # On-chip tensors: each (core, unit) that uses one keeps its own copy, so AIV0 and AIV1 of every core hold their
    # own half's m, l and O, and every AIC its own Q tile.
    return Tensors(Q=Q, KT=KT, V=V, Y=Tensor(shape=(cfg.tiles, 2, HALF, D), dtype=F16, name="Y"),
                   q_l1=Tensor(shape=(ROWS, D), dtype=F16, location=Location.L1, name="q_l1"),
                   m=Tensor(shape=(HALF, 1), dtype=F32, location=Location.UB, name="m"),
                   l_sum=Tensor(shape=(HALF, 1), dtype=F32, location=Location.UB, name="l"),
                   o=Tensor(shape=(HALF, D), dtype=F32, location=Location.UB, name="O"))


# -- the pipeline variant ------------------------------------------------------------------------------------------
PLACE = {"qk": 0, "pv": 0, "softmax0": 0, "update0": 0, "softmax1": (0, 1), "update1": (0, 1)}


def pipeline_variant(cfg: Config, t: Tensors, ks: dict[str, Any]) -> Any:
    """One six-process cube/vector pipeline per core (``per_core``); core c takes query tiles c, c + cores, ..."""
    cores, nq, nkv, n = cfg.cores_used, cfg.q_tiles, cfg.kv_blocks, cfg.block

    def build(core: int) -> Any:
        tokens = len(range(core, cfg.tiles, cores)) * nkv   # token = (local query tile) * kv_blocks + j

        def tile_and_block(tok: Any) -> tuple[Any, Any]:
            return core + cores * (tok // nkv), tok % nkv

        def ring(name: str, tile: Any) -> list[Channel[Any]]:
            return [Channel(f"{name}{h}", depth=cfg.depth, tile=tile) for h in (0, 1)]

        s = ring("s", Tile[HALF, n, F32])       # AIC -> AIV h: GM rings
        p = ring("p", Tile[HALF, n, F16])       # AIV h -> AIC
        o = ring("pv", Tile[HALF, D, F32])      # AIC -> AIV h
        a = ring("alpha", Tile[HALF, 1, F32])   # softmax h -> update h, on one AIV: UB queues
        r = ring("rowsum", Tile[HALF, 1, F32])

        def qk_step(tok: Any) -> Any:
            g, j = tile_and_block(tok)
            out = dict(kt=t.KT[g // nq, j], s0=s[0].item, s1=s[1].item)
            work = cond(j.eq(0), ks["qk_first"][g, j](q=t.Q[g], q_l1=t.q_l1, **out), ks["qk"][g, j](q_l1=t.q_l1, **out))
            return send(s[0], send(s[1], work, token=tok), token=tok)   # a split: one task fills both halves

        def softmax_step(h: int) -> Callable[[Any], Any]:
            def step(tok: Any) -> Any:
                g, j = tile_and_block(tok)
                args = dict(s=s[h].item, m=t.m, p=p[h].item, alpha=a[h].item, rowsum=r[h].item)
                work = cond(j.eq(0), ks["softmax_first"][g, j](**args), ks["softmax"][g, j](**args))
                return send(p[h], send(a[h], send(r[h], work, token=tok), token=tok), token=tok)
            return step

        def pv_step(tok: Any, _tok1: Any) -> Any:   # a join: the k-th items of p0 and p1
            g, j = tile_and_block(tok)
            work = ks["pv"][g, j](p0=p[0].item, p1=p[1].item, v=t.V[g // nq, j], o0=o[0].item, o1=o[1].item)
            return send(o[0], send(o[1], work, token=tok), token=tok)

        def update_step(h: int) -> Callable[..., Any]:
            def step(tok: Any, _alpha_tok: Any, _rowsum_tok: Any) -> Any:
                g, j = tile_and_block(tok)
                first = ks["update_first"][g, j](pv=o[h].item, rowsum=r[h].item, o=t.o, l_sum=t.l_sum)
                later = ks["update"][g, j](pv=o[h].item, alpha=a[h].item, rowsum=r[h].item, o=t.o, l_sum=t.l_sum)
                return [cond(j.eq(0), first, later),
                        cond(j.eq(nkv - 1), ks["finish"][g, j](o=t.o, l_sum=t.l_sum, y=t.Y[g, h]))]
            return step

        procs = [process("qk").produces(*s).body(for_each(Dense[tokens](), qk_step))]
        procs += [process(f"softmax{h}").consumes(s[h]).produces(p[h], a[h], r[h]).body(
            consume(s[h], softmax_step(h))) for h in (0, 1)]
        procs += [process("pv").consumes(*p).produces(*o).body(consume([p[0], p[1]], pv_step))]
        procs += [process(f"update{h}").consumes(o[h], a[h], r[h]).body(
            consume([o[h], a[h], r[h]], update_step(h))) for h in (0, 1)]
        return connect(*procs).place(PLACE)

    return per_core(build, cores=cores)


# -- the data-parallel variant -------------------------------------------------------------------------------------
def data_parallel_variant(cfg: Config, t: Tensors, ks: dict[str, Any]) -> Any:
    """The same kernels as tasks: query tile g on core g % cores, its KV loop software-pipelined (STAGE_OFFSETS);
    S, P, PV, alpha and rowsum in a per-core GM workspace; half h's vector work on AIV h."""
    cores, nq, nkv, n = cfg.cores_used, cfg.q_tiles, cfg.kv_blocks, cfg.block
    slots = WORKSPACE_SLOTS

    def workspace(name: str, cols: int, dtype: DType) -> Tensor:
        return Tensor(shape=(cores, slots, 2, HALF, cols), dtype=dtype, name=name)

    S, Pr, PV = workspace("S_ws", n, F32), workspace("P_ws", n, F16), workspace("PV_ws", D, F32)
    A, RS = workspace("alpha_ws", 1, F32), workspace("rowsum_ws", 1, F32)

    def qk_stage(g: Any, j: Any) -> None:
        c, w = g % cores, j % slots
        out = dict(kt=t.KT[g // nq, j], s0=S[c, w, 0], s1=S[c, w, 1])
        with P.when(j == 0):
            ks["qk_first"][g, j](q=t.Q[g], q_l1=t.q_l1, **out)
        with P.otherwise():
            ks["qk"][g, j](q_l1=t.q_l1, **out)

    def softmax_stage(g: Any, j: Any) -> None:
        c, w = g % cores, j % slots
        for h in P(Dense[2](), names=["h"]):
            args = dict(s=S[c, w, h], m=t.m, p=Pr[c, w, h], alpha=A[c, w, h], rowsum=RS[c, w, h])
            with P.when(j == 0):
                ks["softmax_first"][g, j, h](**args)
            with P.otherwise():
                ks["softmax"][g, j, h](**args)

    def pv_stage(g: Any, j: Any) -> None:
        c, w = g % cores, j % slots
        ks["pv"][g, j](p0=Pr[c, w, 0], p1=Pr[c, w, 1], v=t.V[g // nq, j], o0=PV[c, w, 0], o1=PV[c, w, 1])

    def update_stage(g: Any, j: Any) -> None:
        c, w = g % cores, j % slots
        for h in P(Dense[2](), names=["h"]):
            with P.when(j == 0):
                ks["update_first"][g, j, h](pv=PV[c, w, h], rowsum=RS[c, w, h], o=t.o, l_sum=t.l_sum)
            with P.otherwise():
                ks["update"][g, j, h](pv=PV[c, w, h], alpha=A[c, w, h], rowsum=RS[c, w, h], o=t.o, l_sum=t.l_sum)
            with P.when(j == nkv - 1):
                ks["finish"][g, j, h](o=t.o, l_sum=t.l_sum, y=t.Y[g, h])

    stages = dict(qk=qk_stage, softmax=softmax_stage, pv=pv_stage, update=update_stage)
    last = max(k for _, k in STAGE_OFFSETS)

    @workload
    def flash_attention():
        for g, u in P(Dense[cfg.tiles](), Dense[nkv + last](), names=["g", "u"]):
            for name, k in STAGE_OFFSETS:           # iteration u runs stage `name` of KV block u - k
                with P.when((u >= k) & (u < nkv + k)):
                    stages[name](g, u - k)

    return (flash_attention().dispatch(DispatchPolicy.affinity(lambda task: task.get("g"), cores))
            .vector_unit(lambda task: task.get("h", 0)))


BUILDERS = {"pipeline": pipeline_variant, "data_parallel": data_parallel_variant}


# -- running and reporting -----------------------------------------------------------------------------------------
def build(variant: str, cfg: Config, qkv: tuple[np.ndarray, ...] | None = None) -> tuple[Any, Tensors]:
    """The workload of ``variant`` and its tensors (filled from ``qkv`` when given)."""
    t = make_tensors(cfg, qkv)
    return BUILDERS[variant](cfg, t, make_kernels(cfg.block)), t


def run(variant: str, cfg: Config, qkv: tuple[np.ndarray, ...] | None = None) -> tuple[Program, Tensors]:
    """Build, compile and run one variant: values when ``qkv`` is given, else timing-only."""
    w, t = build(variant, cfg, qkv)
    program = w.compile(compute_values=qkv is not None)
    program.execute()
    return program, t


def hbm_bytes(program: Program) -> int:
    """Bytes the run moved through HBM: reads that missed L2, dirty tiles written back, and (with a write-through
    L2, ``l2_write_back=False``) every GM write."""
    return int(program.cost_model.memory.hbm_bytes)


def hbm_busy_pct(program: Program) -> float:
    """Share of the HBM pool's bandwidth (bytes per cycle over the makespan) the run used."""
    capacity = program.trace().makespan * program.machine.hbm_bytes_per_cycle
    return 100.0 * hbm_bytes(program) / capacity if capacity else 0.0


def utilisation(program: Program) -> tuple[dict[str, float], str]:
    """Busy % of each pipe (averaged over the cores that use it) and of the HBM pool, and the bound: the busiest of
    them (ties: every one within half a point)."""
    busy = dict(sorted(program.stats().lane_busy_pct.items()))
    busy["HBM"] = hbm_busy_pct(program)
    top = max(busy.values())
    return busy, "+".join(name for name, pct in busy.items() if pct >= top - 0.5)


def pipes_line(program: Program) -> str:
    """``pipes: AIC.CUBE 27% ... HBM 97%  bound by HBM (busiest pipe AIC.FIX 90%)``."""
    busy, bound = utilisation(program)
    text = "pipes: " + " ".join(f"{name} {pct:.0f}%" for name, pct in busy.items()) + f"  bound by {bound}"
    if "HBM" in bound.split("+"):
        pipe = max((name for name in busy if name != "HBM"), key=lambda name: busy[name])
        text += f" (busiest pipe {pipe} {busy[pipe]:.0f}%)"
    return text


def random_inputs(cfg: Config) -> tuple[np.ndarray, ...]:
    """q [batch * heads, S, 128] and k, v [batch * heads, S_kv, 128] F16, standard normal from a fixed seed."""
    rng = np.random.default_rng(2026)
    return tuple(rng.standard_normal((cfg.batch * cfg.heads, rows, D)).astype(np.float16)
                 for rows in (cfg.seq, cfg.keys, cfg.keys))


def output(cfg: Config, t: Tensors) -> np.ndarray:
    """Y as [batch * heads, S, 128]."""
    return t.Y.allocate().reshape(cfg.batch * cfg.heads, cfg.seq, D)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seq", type=int, help="sequence length S: a multiple of 128 and of --block (required unless "
                                            "--size is given)")
    ap.add_argument("--seq-kv", type=int, help="key/value length when it differs from --seq (a multiple of --block)")
    ap.add_argument("--heads", type=int, default=1, help="heads (default 1)")
    ap.add_argument("--batch", type=int, default=1, help="batch (default 1)")
    ap.add_argument("--variant", choices=VARIANTS, help="pipeline or data_parallel (default: both)")
    ap.add_argument("--timing-only", action="store_true", help="time only: no values, no check")
    ap.add_argument("--size", choices=tuple(SIZES), help="sets --seq when it is not given: "
                    + ", ".join(f"{k} {v}" for k, v in SIZES.items()))
    ap.add_argument("--block", type=int, choices=(128, 256, 512), default=256, help="KV block rows (default 256)")
    ap.add_argument("--depth", type=int, default=DEPTH,
                    help=f"slots of the pipeline's channels, 1 to {MAX_DEPTH} (default {DEPTH})")
    ap.add_argument("--cores", type=int, default=24,
                    help=f"AI cores the query tiles spread over, 1 to {ascend_910b.num_cores} (default 24)")
    args = ap.parse_args(argv)
    for name in ("heads", "batch", "depth", "cores"):  # (--cores and --depth do not depend on --seq: checked first)
        if getattr(args, name) < 1:
            ap.error(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.cores > ascend_910b.num_cores:
        ap.error(f"--cores {args.cores} is more than machine 'ascend_910b' has ({ascend_910b.num_cores} AI cores); "
                 f"use --cores {ascend_910b.num_cores} or fewer")
    if args.depth > MAX_DEPTH:
        ap.error(f"--depth {args.depth} is more than {MAX_DEPTH}: the pipeline's alpha and rowsum channels are UB "
                 f"queues of [{HALF}, 1] F32 slots, and {MAX_DEPTH} of each fill an AIV's "
                 f"{ascend_910b.ub_bytes // 1024} KiB UB (fewer fit next to the kernels' tiles); use a few slots "
                 f"(default {DEPTH})")
    if args.seq is None:
        if args.size is None:
            ap.error("give --seq S (e.g. --seq 4096), or --size small|default|large")
        args.seq = SIZES[args.size]
    if args.seq_kv is None and (args.seq < args.block or args.seq % args.block or args.seq % ROWS):
        ap.error(f"--seq {args.seq} must be a positive multiple of --block {args.block} (and of {ROWS}, the query "
                 "tile)")
    if args.seq_kv is not None and (args.seq < ROWS or args.seq % ROWS):
        ap.error(f"--seq {args.seq} must be a positive multiple of {ROWS} (the query tile)")
    if args.seq_kv is not None and (args.seq_kv < args.block or args.seq_kv % args.block):
        ap.error(f"--seq-kv {args.seq_kv} must be a positive multiple of --block {args.block}")
    keys = args.seq if args.seq_kv is None else args.seq_kv
    needed = SCORE_BYTES * args.seq * keys + INPUT_BYTES * args.batch * args.heads * (args.seq + 2 * keys) * D
    memory = host_memory_bytes()
    if not args.timing_only and memory is not None and needed > memory:
        ap.error(f"checking the values of --seq {args.seq}{f' --seq-kv {keys}' if args.seq_kv else ''} "
                 f"--heads {args.heads} --batch {args.batch} would need about {needed:,} bytes "
                 f"({needed / 2**30:,.1f} GiB) of host memory (the numpy golden's float64 scores and the inputs), "
                 f"more than this host's {memory / 2**30:,.1f} GiB; add --timing-only (the same cycles, no values), "
                 "or use a smaller --seq, --heads or --batch")
    return args


def host_memory_bytes() -> int | None:
    """This host's physical memory, or None where the OS does not say (no sysconf on Windows)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    cfg = Config(args.seq, args.heads, args.batch, args.block, args.cores, args.depth, args.seq_kv)
    qkv = None if args.timing_only else random_inputs(cfg)
    expected = golden.attention_ref(*qkv) if qkv is not None else None
    ok = True
    for variant in (args.variant,) if args.variant else VARIANTS:
        start = time.perf_counter()
        program, t = run(variant, cfg, qkv)
        stats = program.stats()
        kv = f" seq_kv={cfg.keys}" if cfg.seq_kv is not None else ""
        print(f"flash_attention variant={variant} seq={cfg.seq}{kv} heads={cfg.heads} batch={cfg.batch}: "
              f"{stats.total_cycles} cycles = {stats.time_us:.3f} us")
        print("  " + pipes_line(program))
        peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(f"  block {cfg.block}, depth {cfg.depth}: {cfg.tiles} query tiles x {cfg.kv_blocks} KV blocks on "
              f"{cfg.cores_used} cores, {stats.task_count} tasks; wall {time.perf_counter() - start:.1f} s, "
              f"peak RSS {peak_rss_mib:.0f} MiB")
        if qkv is not None:
            result = check(variant, output(cfg, t), expected, **golden.tolerance(qkv[2]))
            print(result.line())
            ok = ok and result.passed
    if qkv is not None:
        print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    run_example(main)  # a ptort_lab error: its message and exit status 2, no traceback
