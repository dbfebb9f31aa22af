"""Plain-numpy reference for the flash-attention example: softmax(Q K^T / sqrt(d)) V per (batch, head).

Importable on its own (numpy only). Computed in float64 from the F16 inputs with an exact (not online) softmax: the
kernels' online softmax is algebraically the same, so only rounding separates the two (README: Tolerance).
"""
from __future__ import annotations

import numpy as np


def attention_ref(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``softmax(q @ k^T / sqrt(d)) @ v`` for q [batch * heads, S, d] and k, v [batch * heads, S_kv, d]
    -> [batch * heads, S, d] (float64)."""
    out = np.empty(q.shape, np.float64)
    for i in range(q.shape[0]):  # one (batch, head) at a time: S x S_kv scores of one head only
        q64, k64, v64 = (a[i].astype(np.float64) for a in (q, k, v))
        s = q64 @ k64.T / np.sqrt(q.shape[-1])
        p = np.exp(s - s.max(axis=-1, keepdims=True))
        out[i] = (p @ v64) / p.sum(axis=-1, keepdims=True)
    return out


def tolerance(v: np.ndarray) -> dict[str, float]:
    """``rtol 1e-3``, ``atol 2^-11 max|V|``: P is rounded to F16 before P V (each weight off by at most 2^-11
    relative, the weights sum to 1), Y is rounded to F16 (2^-11 relative, inside rtol), the rest is F32."""
    return dict(rtol=1e-3, atol=2.0 ** -11 * float(np.abs(v.astype(np.float64)).max()))


__all__ = ["attention_ref", "tolerance"]
