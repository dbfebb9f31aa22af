"""Plain-numpy reference for the softmax example.

Everything is computed in float64 from the F32 logits, so a comparison measures the error of the F32 kernels
alone (not the difference between two F32 computations that might share a mistake).
"""
from __future__ import annotations

import numpy as np


def softmax_ref(logits: np.ndarray) -> np.ndarray:
    """softmax over the last axis: exp(x - max(x)) / sum(exp(x - max(x)))."""
    x = np.asarray(logits, dtype=np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def row_stats_ref(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(row max m, row sum l = sum(exp(x - m))), each with a trailing axis of 1: what the running tensors hold."""
    x = np.asarray(logits, dtype=np.float64)
    m = x.max(axis=-1, keepdims=True)
    return m, np.exp(x - m).sum(axis=-1, keepdims=True)


__all__ = ["softmax_ref", "row_stats_ref"]
