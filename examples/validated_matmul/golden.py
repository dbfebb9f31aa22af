"""Plain-numpy reference for the validated_matmul example: C = A @ B (and C0 + A @ B), computed in float64.

F16 and F32 inputs widen to float64 exactly, so the reference is the exact product up to float64 rounding and a
comparison measures the kernel's F32 accumulation error alone.
"""
from __future__ import annotations

import numpy as np


def matmul_ref(a: np.ndarray, b: np.ndarray, acc: np.ndarray | None = None) -> np.ndarray:
    """(acc +) a @ b over the last two axes, in float64."""
    out = np.matmul(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
    return out if acc is None else out + np.asarray(acc, dtype=np.float64)


def accumulation_bound(a: np.ndarray, b: np.ndarray, acc: np.ndarray | None = None) -> float:
    """Worst-case error of F32-accumulated dot products of length K (Higham, Accuracy and Stability of Numerical
    Algorithms, sec. 3.5): |fl(a.b) - a.b| <= gamma_K * (|a| . |b|) with gamma_K ~= K * 2^-24; an accumulator adds
    one more term. Returned as the max over all outputs."""
    n = np.asarray(a).shape[-1]
    mag = np.matmul(np.abs(np.asarray(a, dtype=np.float64)), np.abs(np.asarray(b, dtype=np.float64)))
    if acc is not None:
        n, mag = n + 1, mag + np.abs(np.asarray(acc, dtype=np.float64))
    return float(n * 2.0 ** -24 * mag.max())


__all__ = ["matmul_ref", "accumulation_bound"]
