"""Plain-numpy reference for the CSP flash-attention example: softmax(Q K^T / sqrt(d)) V per head.

Importable on its own (numpy only). Computed in float64 from the F16 inputs, with an exact (not online) softmax:
the pipeline's online softmax is algebraically the same, so only rounding separates the two.
"""
from __future__ import annotations

import numpy as np


def attention_ref(q: np.ndarray, k: np.ndarray, v: np.ndarray) -> np.ndarray:
    """``softmax(q @ k^T / sqrt(d)) @ v`` for q [heads, Sq, d], k and v [heads, Skv, d] -> [heads, Sq, d]."""
    q64, k64, v64 = (a.astype(np.float64) for a in (q, k, v))
    s = q64 @ k64.transpose(0, 2, 1) / np.sqrt(q.shape[-1])
    p = np.exp(s - s.max(axis=-1, keepdims=True))
    return (p @ v64) / p.sum(axis=-1, keepdims=True)


def online_softmax_ref(q: np.ndarray, k: np.ndarray, v: np.ndarray, block: int) -> np.ndarray:
    """The same result the flash-attention way (one head): KV blocks of ``block`` rows, a running row max ``m``,
    running sum ``row_sum`` and rescaled accumulator ``o``, normalised at the end. Equal to ``attention_ref`` up to
    rounding; kept to document what the pipeline's stages compute."""
    q64, k64, v64 = (a.astype(np.float64) for a in (q, k, v))
    scale = 1.0 / np.sqrt(q.shape[-1])
    m = np.full((q.shape[0], 1), -np.inf)
    row_sum = np.zeros((q.shape[0], 1))
    o = np.zeros_like(q64)
    for j in range(0, k.shape[0], block):
        s = q64 @ k64[j:j + block].T * scale          # qk (cube)
        m_new = np.maximum(m, s.max(axis=-1, keepdims=True))
        p = np.exp(s - m_new)                          # softmax (vector)
        alpha = np.exp(m - m_new)
        row_sum = row_sum * alpha + p.sum(axis=-1, keepdims=True)
        o = o * alpha + p @ v64[j:j + block]           # pv (cube), update (vector)
        m = m_new
    return o / row_sum                                       # normalize (vector, last block)


__all__ = ["attention_ref", "online_softmax_ref"]
