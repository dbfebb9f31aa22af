"""Shared fixtures: the spec's three kernels and tensors, a one-task runner, and empty kernels for pinned timelines."""
from __future__ import annotations

import atexit
import inspect
import os
import shutil
import tempfile
from types import SimpleNamespace

import numpy as np
import pytest

from ptort_lab import DType, In, Out, Tensor, Tile, kernel, tl, workload

# Sweeps cache their rows on disk (ptort_lab.sweeps): the tests use a cache of their own (never the user's, whose
# rows would hide a change), in this process, the notebook kernels and the worker processes they start.
os.environ["PTORT_LAB_CACHE"] = _CACHE = tempfile.mkdtemp(prefix="ptort-cache-")
atexit.register(shutil.rmtree, _CACHE, ignore_errors=True)

F16, F32 = DType.F16, DType.F32
ROWS = COLS = 128
NUM_TILES = 8


@kernel
def load_kernel(src: In[Tile[ROWS, COLS, F32]], dst: Out[Tile[ROWS, COLS, F16]]):
    """The spec's loader: F32 in, cast to F16, store."""
    x = tl.load(src)
    y = tl.cast(x, F16)
    tl.store(dst, y)


@kernel
def compute_kernel(input_tile: In[Tile[ROWS, COLS, F16]], output_tile: Out[Tile[ROWS, COLS, F16]]):
    """The spec's computer: square in F16."""
    x = tl.load(input_tile)
    y = tl.mul(x, x)
    tl.store(output_tile, y)


@kernel
def store_kernel(src: In[Tile[ROWS, COLS, F16]], dst: Out[Tile[ROWS, COLS, F32]]):
    """The spec's storer: F16 back to F32."""
    x = tl.load(src)
    y = tl.cast(x, F32)
    tl.store(dst, y)


@kernel
def stage_a():
    """An empty kernel whose cost each test pins with cycles=."""


@kernel
def stage_b():
    """A second empty kernel, so spans of two stages have different names."""


@pytest.fixture
def spec_kernels() -> SimpleNamespace:
    """The spec's load_kernel, compute_kernel and store_kernel (128x128 tiles)."""
    return SimpleNamespace(load=load_kernel, compute=compute_kernel, store=store_kernel)


@pytest.fixture
def stages() -> SimpleNamespace:
    """Two parameterless kernels for timelines with pinned costs."""
    return SimpleNamespace(a=stage_a, b=stage_b)


@pytest.fixture
def spec_data() -> SimpleNamespace:
    """Fresh tensors for the spec pipeline: X (F32 input), T and U (F16 scratch), Y (F32 output), and the expected Y."""
    rng = np.random.default_rng(2024)
    x = (rng.standard_normal((NUM_TILES, ROWS, COLS)) * 8).astype(np.float32)
    expected = (x.astype(np.float16) * x.astype(np.float16)).astype(np.float32)
    return SimpleNamespace(
        x=x, expected=expected, X=Tensor(data=x.copy(), shape=x.shape, dtype=F32),
        T=Tensor(shape=x.shape, dtype=F16), U=Tensor(shape=x.shape, dtype=F16), Y=Tensor(shape=x.shape, dtype=F32),
        n=NUM_TILES)


@pytest.fixture
def run_once():
    """``run_once(k, a=array, out=array)``: launch ``k`` once on numpy arrays (wrapped as Tensors), return the arrays.

    Outputs are written in place, so the returned dict holds the kernel's results.
    """
    def run(k, **arrays: np.ndarray) -> dict[str, np.ndarray]:
        tensors = {name: Tensor(data=a, shape=a.shape, dtype=DType.from_numpy(a.dtype)) for name, a in arrays.items()}

        @workload
        def one():
            k(**tensors)

        one().compile().execute()
        return {name: t.data for name, t in tensors.items()}

    return run


@pytest.fixture
def where():
    """``where(excinfo, lineno)``: assert the message names this test file's line and leaks no ptort_lab/ path."""
    def check(excinfo: pytest.ExceptionInfo, lineno: int) -> str:
        msg = str(excinfo.value)
        filename = os.path.basename(inspect.currentframe().f_back.f_code.co_filename)
        assert f"{filename}:{lineno}" in msg, msg
        assert "ptort_lab/" not in msg and "ptort_lab\\" not in msg, msg
        return msg

    return check
