"""Plain-numpy reference for the batched GEMM example (importable on its own: numpy only)."""
from __future__ import annotations

import numpy as np


def bgemm_ref(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C[b] = A[b] @ B[b] for F16 inputs, computed exactly enough (float64) and returned as float32.

    ``a`` is [batch, M, K], ``b`` is [batch, K, N]; the result is [batch, M, N].
    """
    return np.matmul(a.astype(np.float64), b.astype(np.float64)).astype(np.float32)


def to_tiles(x: np.ndarray, tr: int, tc: int) -> np.ndarray:
    """[batch, R, C] -> [batch, R/tr, C/tc, tr, tc]: the blocked layout in which one tile is one index."""
    bsz, r, c = x.shape
    return np.ascontiguousarray(x.reshape(bsz, r // tr, tr, c // tc, tc).transpose(0, 1, 3, 2, 4))


def from_tiles(x: np.ndarray) -> np.ndarray:
    """[batch, R/tr, C/tc, tr, tc] -> [batch, R, C] (inverse of ``to_tiles``)."""
    bsz, rt, ct, tr, tc = x.shape
    return x.transpose(0, 1, 3, 2, 4).reshape(bsz, rt * tr, ct * tc)


__all__ = ["bgemm_ref", "to_tiles", "from_tiles"]
