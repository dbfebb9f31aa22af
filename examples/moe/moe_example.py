#!/usr/bin/env python3
"""DeepSeek-V3-style Mixture of Experts on the ptort_lab simulator: a router, top-k routing as a Sparse CSR
structure, and the experts launched with P.sel over each token tile's row of it.

For tokens x [T, d] (F16), a router W_r [d, E], E routed experts W_e [d, d] and one shared expert W_s [d, d]:

    scores = sigmoid(x @ W_r)                        phase 1, on the device (router kernel: cube + vector)
    idx, g = top-k(scores), normalised top-k scores  on the host: the data-dependent part
    routing = Sparse(tiles, indptr, experts)         token tile b -> the experts its tokens chose
    y[b] = x[b] @ W_s + sum_{e in routing[b]} G[b, e] * (x[b] @ W_e)      phase 2, on the device

where G[b, e] is the [tile_rows, 1] column of gates (0 for tokens of the tile that did not pick e). Phase 2 is

    for b in P(tiles):                        # token tiles, in parallel
        expert_linear[b, E](x=X[b], w=W[E], h=Y[b])          # the shared expert initialises Y[b]
        for e in P.sel(routing[b]):           # only the experts this tile routes to
            expert_linear[b, e](x=X[b], w=W[e], h=H[b, e])   # cube: F16 x F16 -> F32
            gate_accumulate[b, e](h=H[b, e], g=G[b, e], y=Y[b])  # vector: Y[b] += G[b, e] * H[b, e]

dispatched with affinity on b, so a tile's accumulation chain stays on one core. For comparison the same workload
also runs with the dense mix (every expert on every tile, gate 0 where a token did not choose it). Scores and both
outputs are checked against golden.py (plain numpy, float64).

Usage:
    python examples/moe/moe_example.py [--size {small,default,large}] [--cores N]
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
    Dense,
    DispatchPolicy,
    DType,
    In,
    InOut,
    Out,
    P,
    Sparse,
    Tensor,
    Tile,
    ascend_910b,
    kernel,
    tl,
    workload,
)
from ptort_lab.report import check, report, run_example  # noqa: E402

F32, F16 = DType.F32, DType.F16

# tokens T, tile_rows (tokens per tile), d (model width), experts E, top_k, cores of the data-parallel runs
SIZES = {
    "small": dict(tokens=128, tile_rows=32, d=64, experts=8, top_k=2, cores=4),
    "default": dict(tokens=512, tile_rows=64, d=256, experts=16, top_k=2, cores=8),
    "large": dict(tokens=1024, tile_rows=64, d=256, experts=32, top_k=4, cores=16),
}

# Tolerances (see README): scores are sigmoid(F32 logits) in (0, 1); y sums exact F16 x F16 products in F32.
SCORE_TOL = dict(rtol=1e-5, atol=1e-6)
OUT_TOL = dict(rtol=1e-4, atol=1e-4)


def make_kernels(tile_rows: int, d: int, experts: int):
    @kernel
    def router(x: In[Tile[tile_rows, d, F16]], w_router: In[Tile[d, experts, F16]],
               scores: Out[Tile[tile_rows, experts, F32]]):
        """Router affinities of one token tile: sigmoid(x @ W_r) = 1 / (1 + exp(-logits))."""
        logits = tl.matmul(tl.load(x), tl.load(w_router))           # cube, F32 accumulate
        tl.store(scores, tl.sigmoid(logits))  # vector

    @kernel
    def expert_linear(x: In[Tile[tile_rows, d, F16]], w: In[Tile[d, d, F16]], h: Out[Tile[tile_rows, d, F32]]):
        """One expert's linear layer on one token tile: h = x @ W_e (cube, F16 inputs, F32 result)."""
        tl.store(h, tl.matmul(tl.load(x), tl.load(w)))

    @kernel
    def gate_accumulate(h: In[Tile[tile_rows, d, F32]], g: In[Tile[tile_rows, 1, F32]],
                        y: InOut[Tile[tile_rows, d, F32]]):
        """Gated combine: y += g * h, the [rows, 1] gate column broadcast over each row (vector)."""
        tl.store(y, tl.add(tl.load(y), tl.mul(tl.load(h), tl.load(g))))

    return router, expert_linear, gate_accumulate


def make_inputs(tokens: int, tile_rows: int, d: int, experts: int, seed: int = 2026):
    """Tokens of one tile share a 'topic' (a random centre plus noise), so tiles route to different expert sets."""
    rng = np.random.default_rng(seed)
    tiles = tokens // tile_rows
    centres = rng.standard_normal((tiles, 1, d))
    x = (centres + 0.5 * rng.standard_normal((tiles, tile_rows, d))).astype(np.float16)
    w_router = (rng.standard_normal((d, experts)) / np.sqrt(d)).astype(np.float16)
    # experts 0..E-1 are routed, index E is the shared expert
    w = (rng.standard_normal((experts + 1, d, d)) / np.sqrt(d)).astype(np.float16)
    return x, w_router, w


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="default", help="problem size (default: default)")
    ap.add_argument("--cores", type=int, default=None,
                    help=f"cores for the dispatch, 1 to {ascend_910b.num_cores} (default: per size)")
    args = ap.parse_args(argv)
    if args.cores is not None and args.cores < 1:  # (0 is not "the size's default": that is leaving it out)
        ap.error(f"--cores must be >= 1, got {args.cores}")
    if args.cores is not None and args.cores > ascend_910b.num_cores:
        ap.error(f"--cores {args.cores} is more than machine 'ascend_910b' has ({ascend_910b.num_cores} AI cores); "
                 f"use --cores {ascend_910b.num_cores} or fewer")
    cfg = SIZES[args.size]
    T, TM, d, E, K = cfg["tokens"], cfg["tile_rows"], cfg["d"], cfg["experts"], cfg["top_k"]
    cores = cfg["cores"] if args.cores is None else args.cores
    NB = T // TM
    router, expert_linear, gate_accumulate = make_kernels(TM, d, E)
    x, w_router, w = make_inputs(T, TM, d, E)

    print(f"MoE (DeepSeek-V3 style) - size {args.size}: {T} tokens in {NB} tiles of {TM}, d_model {d}, "
          f"{E} routed experts + 1 shared, top-{K}, {cores} cores")
    tiles = Dense[NB]()
    X = Tensor(data=x, name="X")

    # -- phase 1: the router on the device --------------------------------------------------------------------
    WR = Tensor(data=w_router, name="W_router")
    SC = Tensor(shape=(NB, TM, E), dtype=F32, name="scores")

    @workload
    def route():
        for b in P(tiles):
            router[b](x=X[b], w_router=WR, scores=SC[b])

    route_program = route().dispatch(DispatchPolicy.round_robin(cores)).compile()
    route_program.execute()
    scores = SC.data.reshape(T, E)

    # -- the host turns the device's scores into the routing structure ----------------------------------------
    idx, gates = golden.top_k_routing(scores.astype(np.float64), K)
    indptr, indices = golden.tile_routing(idx, TM, E)
    routing = Sparse(NB, indptr, indices)
    g = golden.dense_gates(idx, gates, TM, E)
    print(f"routing: {routing!r}, {routing.nnz()} (tile, expert) pairs of {NB * E} "
          f"({100 * routing.nnz() / (NB * E):.0f}% of the dense mix)")
    for b in range(min(NB, 4)):
        print(f"  tile {b}: experts {routing[b]}")
    if NB > 4:
        print(f"  ... ({NB - 4} more tiles)")

    # -- phase 2: shared expert + the routed experts each tile selected ---------------------------------------
    W = Tensor(data=w, name="W")                                   # [E + 1, d, d], index E = shared
    G = Tensor(data=g, name="G")                                   # [tiles, E, TM, 1]
    H = Tensor(shape=(NB, E, TM, d), dtype=F32, name="H")          # per (tile, expert) expert outputs
    Y = Tensor(shape=(NB, TM, d), dtype=F32, name="Y")

    def moe_workload(routing: Sparse, Y: Tensor):
        @workload
        def moe():
            for b in P(tiles):
                expert_linear[b, E](x=X[b], w=W[E], h=Y[b])            # shared expert, gate 1
                for e in P.sel(routing[b]):
                    expert_linear[b, e](x=X[b], w=W[e], h=H[b, e])
                    gate_accumulate[b, e](h=H[b, e], g=G[b, e], y=Y[b])
        return moe().dispatch(DispatchPolicy.affinity(lambda t: t.get("b"), cores))

    moe_w = moe_workload(routing, Y)
    moe_program = moe_w.compile()
    moe_program.execute()
    counts: dict[str, int] = {}
    for t in moe_w.enumerate():
        counts[t.kernel] = counts.get(t.kernel, 0) + 1
    print("tasks: " + ", ".join(f"{k} {n}" for k, n in counts.items()))

    # -- for comparison: the dense mix, every expert on every tile (the unchosen ones with gate 0) --------------
    every = Sparse(NB, [b * E for b in range(NB + 1)], list(range(E)) * NB)
    Y_dense = Tensor(shape=(NB, TM, d), dtype=F32, name="Y_dense")
    dense_program = moe_workload(every, Y_dense).compile()
    dense_program.execute()
    print(f"select saves {100 * (1 - moe_program.stats().total_cycles / dense_program.stats().total_cycles):.0f}% "
          f"of the dense mix's cycles ({moe_program.stats().task_count} vs {dense_program.stats().task_count} "
          "tasks)")

    # -- check against numpy -------------------------------------------------------------------------------------
    x2 = x.reshape(T, d)
    expected_scores = golden.router_scores(x2, w_router)
    expected_y = golden.moe_ref(x2, w[E], w[:E], idx, gates.astype(np.float32))
    checks = [check("router scores", scores, expected_scores, **SCORE_TOL),
              check("moe output y", Y.data.reshape(T, d), expected_y, **OUT_TOL),
              check("dense mix y", Y_dense.data.reshape(T, d), expected_y, **OUT_TOL)]
    print()
    ok = report(f"MoE {args.size}: checks against numpy (golden.py)", checks,
                {"router": route_program, "experts (select)": moe_program, "experts (dense)": dense_program})
    return 0 if ok else 1


if __name__ == "__main__":
    run_example(main)  # a ptort_lab error: its message and exit status 2, no traceback
