"""Plain-numpy reference for the llama layer-block example (importable on its own: numpy only).

Everything is computed in float64 from the example's inputs (F32 activations, F16 weights) and returned as float32.
"""
from __future__ import annotations

import numpy as np


def rmsnorm_ref(x: np.ndarray, g: np.ndarray, eps: float) -> np.ndarray:
    """x / sqrt(mean(x**2) + eps) * g over the last axis."""
    x = x.astype(np.float64)
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * g.astype(np.float64)


def causal_attention_ref(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """softmax(q k^T / sqrt(d) + causal mask) v for [heads, S, d] inputs: token i attends to tokens 0..i."""
    s = q @ np.swapaxes(k, -1, -2) / np.sqrt(q.shape[-1])
    n = s.shape[-1]
    s = np.where(np.tril(np.ones((n, n), dtype=bool)), s, -np.inf)
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    return (p / p.sum(axis=-1, keepdims=True)) @ v


def silu_ref(x: np.ndarray) -> np.ndarray:
    return x / (1.0 + np.exp(-x))


def llama_block_ref(x: np.ndarray, g1: np.ndarray, g2: np.ndarray, wq: np.ndarray, wk: np.ndarray, wv: np.ndarray,
                    wo: np.ndarray, w1: np.ndarray, w3: np.ndarray, w2: np.ndarray, heads: int,
                    eps: float = 1e-6) -> tuple[np.ndarray, np.ndarray]:
    """One pre-norm llama layer on the tokens ``x`` [S, D] of one sequence:

        h1 = x + Attention(RMSNorm(x; g1))         causal multi-head attention, W_q/W_k/W_v [D, D], W_o [D, D]
        y  = h1 + W_2(silu(W_1 n) * W_3 n)         n = RMSNorm(h1; g2), W_1/W_3 [D, F], W_2 [F, D] (SwiGLU MLP)

    Returns (h1, y), both [S, D].
    """
    f64 = [a.astype(np.float64) for a in (wq, wk, wv, wo, w1, w3, w2)]
    wq, wk, wv, wo, w1, w3, w2 = f64
    s, d = x.shape
    dh = d // heads
    xn = rmsnorm_ref(x, g1, eps)

    def split(t: np.ndarray) -> np.ndarray:   # [S, D] -> [heads, S, dh]
        return t.reshape(s, heads, dh).transpose(1, 0, 2)

    attn = causal_attention_ref(split(xn @ wq), split(xn @ wk), split(xn @ wv))   # [heads, S, dh]
    h1 = x.astype(np.float64) + attn.transpose(1, 0, 2).reshape(s, d) @ wo
    n = rmsnorm_ref(h1, g2, eps)
    y = h1 + (silu_ref(n @ w1) * (n @ w3)) @ w2
    return h1.astype(np.float32), y.astype(np.float32)


__all__ = ["rmsnorm_ref", "causal_attention_ref", "silu_ref", "llama_block_ref"]
