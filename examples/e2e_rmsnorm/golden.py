"""Plain-numpy reference for the e2e_rmsnorm example: y = x * rsqrt(mean(x^2) + eps) * g over the last axis.

Computed in float64 from the inputs as given (F16 inputs widen exactly), so a comparison measures the error of the
kernels alone, including the final rounding to the output dtype.
"""
from __future__ import annotations

import numpy as np


def rmsnorm_ref(x: np.ndarray, g: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """RMSNorm of every row (last axis) of ``x``, scaled by the gain vector ``g`` (broadcast over the rows)."""
    xd = np.asarray(x, dtype=np.float64)
    inv = 1.0 / np.sqrt(np.mean(xd * xd, axis=-1, keepdims=True) + eps)
    return xd * inv * np.asarray(g, dtype=np.float64)


__all__ = ["rmsnorm_ref"]
