"""Plain-numpy reference for the flashinfer-style decode attention example (importable on its own: numpy only)."""
from __future__ import annotations

import numpy as np


def decode_attention_ref(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """One decode step of one sequence: softmax(q K^T / sqrt(d)) V in float64, returned as float32.

    ``q`` is [..., G, d] (G query heads sharing one KV head), ``k`` and ``v`` are [..., L, d] (the L cached tokens of
    the sequence, natural layout). Leading axes (KV heads) broadcast.
    """
    q64, k64, v64 = (x.astype(np.float64) for x in (q, k, v))
    s = q64 @ np.swapaxes(k64, -1, -2) / np.sqrt(q.shape[-1])
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    return (p @ v64).astype(np.float32)


__all__ = ["decode_attention_ref"]
