"""Plain-numpy reference for the tiled attention example (importable on its own: numpy only)."""
from __future__ import annotations

import numpy as np


def attention_ref(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """softmax(Q K^T / sqrt(d)) V over the last two axes, in float64, returned as float32.

    ``q`` is [..., Sq, d], ``k`` and ``v`` are [..., S, d] (K in its natural layout, not transposed).
    """
    q64, k64, v64 = (x.astype(np.float64) for x in (q, k, v))
    s = q64 @ np.swapaxes(k64, -1, -2) / np.sqrt(q.shape[-1])
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    p /= p.sum(axis=-1, keepdims=True)
    return (p @ v64).astype(np.float32)


__all__ = ["attention_ref"]
