"""Plain-numpy references for the tensor_data example, in float64 (exact for the F32 inputs' sums and squares
up to the final rounding, so a comparison shows whether each kernel result is the correctly rounded F32 value)."""
from __future__ import annotations

import numpy as np


def add_ref(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """C = A + B elementwise."""
    return np.asarray(a, dtype=np.float64) + np.asarray(b, dtype=np.float64)


def square_ref(x: np.ndarray) -> np.ndarray:
    """Y = X * X elementwise."""
    xd = np.asarray(x, dtype=np.float64)
    return xd * xd


__all__ = ["add_ref", "square_ref"]
