"""Plain-numpy reference for the MoE example: sigmoid router, top-k routing, gated expert combine.

Importable on its own (numpy only). Everything is computed in float64 from the inputs as the device sees them
(F16 activations and weights, F32 gates), so the only differences from the simulator are its F32 rounding.
"""
from __future__ import annotations

import numpy as np


def router_scores(x: np.ndarray, w_router: np.ndarray) -> np.ndarray:
    """DeepSeek-V3 router affinities: ``sigmoid(x @ W_r)``, [tokens, experts]."""
    logits = x.astype(np.float64) @ w_router.astype(np.float64)
    return 1.0 / (1.0 + np.exp(-logits))


def top_k_routing(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each token's ``k`` highest-scoring experts (ties -> lower expert id) and their gates, the top-k scores
    normalised to sum to 1 (DeepSeek-V3 normalises the selected sigmoid affinities). Shapes [tokens, k]."""
    idx = np.argsort(-scores, axis=-1, kind="stable")[:, :k]
    top = np.take_along_axis(scores, idx, axis=-1)
    return idx, top / top.sum(axis=-1, keepdims=True)


def tile_routing(idx: np.ndarray, tile_rows: int, num_experts: int) -> tuple[list[int], list[int]]:
    """CSR (indptr, indices) of token tile -> the experts any token of the tile chose, in ascending order."""
    indptr, indices = [0], []
    for b in range(idx.shape[0] // tile_rows):
        chosen = sorted(set(int(e) for e in idx[b * tile_rows:(b + 1) * tile_rows].ravel()))
        assert all(0 <= e < num_experts for e in chosen)
        indices.extend(chosen)
        indptr.append(len(indices))
    return indptr, indices


def dense_gates(idx: np.ndarray, gates: np.ndarray, tile_rows: int, num_experts: int) -> np.ndarray:
    """Gates laid out per (tile, expert) as [tiles, experts, tile_rows, 1] float32; 0 where a token did not pick
    the expert."""
    tokens = idx.shape[0]
    g = np.zeros((tokens, num_experts), dtype=np.float32)
    np.put_along_axis(g, idx, gates.astype(np.float32), axis=-1)
    return np.ascontiguousarray(g.reshape(tokens // tile_rows, tile_rows, num_experts).transpose(0, 2, 1)[..., None])


def moe_ref(x: np.ndarray, w_shared: np.ndarray, w_experts: np.ndarray, idx: np.ndarray,
            gates: np.ndarray) -> np.ndarray:
    """``y = x @ W_shared + sum_k gates[:, k] * (x @ W[idx[:, k]])`` for every token, in float64."""
    x64 = x.astype(np.float64)
    y = x64 @ w_shared.astype(np.float64)
    for e in range(w_experts.shape[0]):
        rows, slot = np.nonzero(idx == e)
        if rows.size:
            y[rows] += gates[rows, slot].astype(np.float64)[:, None] * (x64[rows] @ w_experts[e].astype(np.float64))
    return y


def moe_ref_toy(x: np.ndarray, g: np.ndarray, w0: np.ndarray, w1: np.ndarray) -> np.ndarray:
    """The reference project's deepseek_v3 toy: ``y = g * (x @ W0) + (1 - g) * (x @ W1)`` (two experts, both
    chosen by every token, gates g and 1-g): the special case experts=2, top_k=2 without a shared expert."""
    return g * (x @ w0) + (1.0 - g) * (x @ w1)


__all__ = ["router_scores", "top_k_routing", "tile_routing", "dense_gates", "moe_ref", "moe_ref_toy"]
