"""The spec's CSP pipeline (loader F32->F16, computer squares, storer F16->F32) as a ready-made, knob-driven builder."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .dsl import Channel, DType, In, Kernel, Out, Pipeline, Process, Tensor, Tile, connect, consume, kernel, send, tl

F32, F16 = DType.F32, DType.F16


def spec_kernels(tile: tuple[int, int] = (128, 128)) -> tuple[Kernel, Kernel, Kernel]:
    """``load_kernel`` (F32 -> F16), ``compute_kernel`` (square in F16), ``store_kernel`` (F16 -> F32)."""
    rows, cols = tile
    # A kernel's annotations are values that @kernel reads (a Tile of this run's size), not static types, so
    # the type checker is told to skip them.

    @kernel
    def load_kernel(src: In[Tile[rows, cols, F32]], dst: Out[Tile[rows, cols, F16]]) -> None:  # type: ignore[type-arg, valid-type]
        tl.store(dst, tl.cast(tl.load(src), F16))

    @kernel
    def compute_kernel(input_tile: In[Tile[rows, cols, F16]],  # type: ignore[type-arg, valid-type]
                       output_tile: Out[Tile[rows, cols, F16]]) -> None:  # type: ignore[type-arg, valid-type]
        x = tl.load(input_tile)
        tl.store(output_tile, tl.mul(x, x))

    @kernel
    def store_kernel(src: In[Tile[rows, cols, F16]], dst: Out[Tile[rows, cols, F32]]) -> None:  # type: ignore[type-arg, valid-type]
        tl.store(dst, tl.cast(tl.load(src), F32))

    return load_kernel, compute_kernel, store_kernel


@dataclass
class SpecPipeline:
    """The pipeline and its tensors: X (input), T0 and T1 (F16 intermediates), Y (output)."""

    pipeline: Pipeline
    X: Tensor
    T0: Tensor
    T1: Tensor
    Y: Tensor

    def expected(self) -> np.ndarray:
        """What Y must hold: float32(float16(X) * float16(X))."""
        x16 = self.X.allocate().astype(np.float16)
        return (x16 * x16).astype(np.float32)


def spec_pipeline(depth: int = 2, tile: tuple[int, int] = (128, 128), tiles: int = 8,
                  x: np.ndarray | None = None, seed: int | None = 2026) -> SpecPipeline:
    """Build loader -> computer -> storer over ``tiles`` tiles, both channels of ``depth`` slots (spec API forms).

    The input is ``x``, else random normals from ``seed``; ``seed=None`` leaves every tensor unallocated (zeros on
    first use), which is what timing-only studies want: no data is made for runs that compute no values.
    """
    load_kernel, compute_kernel, store_kernel = spec_kernels(tile)
    shape = (tiles,) + tuple(tile)
    if x is None and seed is not None:
        x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    if x is not None:
        shape = x.shape
    X = Tensor(data=x, shape=shape, dtype=F32, name="X")
    T0 = Tensor(shape=shape, dtype=F16, name="T0")
    T1 = Tensor(shape=shape, dtype=F16, name="T1")
    Y = Tensor(shape=shape, dtype=F32, name="Y")
    load_to_compute = Channel[Tensor](name="load_to_compute", depth=depth)
    compute_to_store = Channel[Tensor](name="compute_to_store", depth=depth)
    n = shape[0]
    loader = (Process("loader").produces(load_to_compute)
              .body_func(lambda: [send(load_to_compute, load_kernel[t](src=X[t], dst=T0[t])) for t in range(n)]))
    computer = (Process("computer").consumes(load_to_compute).produces(compute_to_store)
                .body_func(lambda: consume(load_to_compute, lambda t: send(
                    compute_to_store, compute_kernel[t](input_tile=T0[t], output_tile=T1[t])))))
    storer = (Process("storer").consumes(compute_to_store)
              .body_func(lambda: consume(compute_to_store, lambda t: store_kernel[t](src=T1[t], dst=Y[t]))))
    return SpecPipeline(connect(loader, computer, storer), X, T0, T1, Y)


def build(depth: int = 2, tile: tuple[int, int] = (128, 128), tiles: int = 8) -> Pipeline:
    """The spec pipeline for ``explore.Study`` / ``notebook.Explorer`` / ``sweep``: just the Pipeline (inputs are
    zeros made only if values are computed, so timing-only moves of a widget cost no data)."""
    return spec_pipeline(depth, tile, tiles, seed=None).pipeline


__all__ = ["spec_kernels", "spec_pipeline", "SpecPipeline", "build"]
