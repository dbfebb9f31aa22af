"""Plain-numpy references for the data_parallel example, in float64.

The inputs are padded [B, Lmax, rows, cols] tile arrays; sequence b holds lengths[b] tiles and the padding tiles
after them are never touched, so the references leave them at zero.
"""
from __future__ import annotations

import math

import numpy as np


def _ragged(values: np.ndarray, lengths: list[int]) -> np.ndarray:
    out = np.zeros_like(values)
    for b, n in enumerate(lengths):
        out[b, :n] = values[b, :n]
    return out


def gelu_gate_ref(x: np.ndarray, g: np.ndarray, lengths: list[int]) -> np.ndarray:
    """GELU (tanh form) times the per-sequence gain: 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) * g[b]."""
    xd = np.asarray(x, dtype=np.float64)
    y = 0.5 * xd * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (xd + 0.044715 * xd ** 3)))
    return _ragged(y * np.asarray(g, dtype=np.float64)[:, None], lengths)


def gate_ref(x: np.ndarray, g: np.ndarray, lengths: list[int]) -> np.ndarray:
    """x * g[b]: one multiply per element (the memory-bound twin)."""
    return _ragged(np.asarray(x, dtype=np.float64) * np.asarray(g, dtype=np.float64)[:, None], lengths)


__all__ = ["gelu_gate_ref", "gate_ref"]
