#!/usr/bin/env python3
"""Tensors bound to numpy arrays, multi-level views T[b][i][j], task counts, and real results checked with numpy.

Two data-parallel workloads from the PTO-WSP v9 tensor_data example:
    C = A + B    A, B, C [B, TM, TN, 32, 32]: batched matrices in tiles; add_tiles[b, i, j] adds tile (i, j)
    Y = X * X    X, Y [B, T, 32, 32]: T tiles per batch; square_tile[b, t] squares one tile
What the example shows about Tensor <-> numpy:
    - Tensor(data=array) binds the array itself (no copy), so results land in the array you passed. A, B and C
      are numpy *views* of plain [B, M, N] matrices cut into tiles: C's tiles are written into the matrix c.
    - Tensor(shape=..., dtype=...) without data is allocated (zeros) on first use; read it back as Y.data.
    - dtypes are never converted silently: float64 data for an F32 tensor is an error.
    - A[b] drops one leading axis, A[b][i][j] (= A[b, i, j]) three: one [32, 32] tile, what a kernel parameter
      annotated Tile[32, 32, F32] accepts. Inside a workload the indices are loop variables.
    - workload.enumerate() lists the tasks; their count is checked against the loop bounds.

Usage:
    python examples/tensor_data/tensor_data_example.py [--size {small,default,large}]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

try:
    import ptort_lab  # noqa: F401
except ImportError:  # running from a source checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # golden.py next to this script

from golden import add_ref, square_ref  # noqa: E402

from ptort_lab import (  # noqa: E402
    Dense,
    DispatchPolicy,
    DType,
    In,
    Out,
    P,
    PtortError,
    Tensor,
    Tile,
    kernel,
    tl,
    workload,
)
from ptort_lab.report import check, report, run_example  # noqa: E402

F32 = DType.F32
RULE = "-" * 60

# add: batch x TM x TN tiles; square: batch x T tiles; every tile is tile x tile F32.
SIZES = {
    "small": dict(batch=2, tm=2, tn=2, tiles=4, tile=32, cores=4),      # the reference: 8 + 8 tasks
    "default": dict(batch=4, tm=4, tn=4, tiles=16, tile=32, cores=4),   # 64 + 64 tasks (the v9 demo's count)
    "large": dict(batch=8, tm=8, tn=8, tiles=64, tile=64, cores=16),    # 512 + 512 tasks
}

# One correctly rounded F32 operation: |result - exact| <= 2^-24 * |exact| (half an ulp).
RTOL_F32_ONE_ROUNDING = 2.0 ** -24


def tiled(m: np.ndarray, t: int) -> np.ndarray:
    """A [B, M/t, N/t, t, t] numpy view of a [B, M, N] array: element [b][i][j] is the tile at block (i, j)."""
    b, rows, cols = m.shape
    return m.reshape(b, rows // t, t, cols // t, t).transpose(0, 1, 3, 2, 4)


def section(title: str) -> None:
    print(f"\n{title}")
    print(RULE)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="default", help="problem size (default: default)")
    args = ap.parse_args(argv)
    cfg = SIZES[args.size]
    NB, TM, TN, T, TS, cores = cfg["batch"], cfg["tm"], cfg["tn"], cfg["tiles"], cfg["tile"], cfg["cores"]

    @kernel
    def add_tiles(a: In[Tile[TS, TS, F32]], b: In[Tile[TS, TS, F32]], c: Out[Tile[TS, TS, F32]]):
        """c = a + b for one tile."""
        tl.store(c, tl.add(tl.load(a), tl.load(b)))

    @kernel
    def square_tile(input_tile: In[Tile[TS, TS, F32]], output_tile: Out[Tile[TS, TS, F32]]):
        """output = input * input for one tile."""
        x = tl.load(input_tile)
        tl.store(output_tile, tl.mul(x, x))

    print("=" * 70)
    print("Tensor data binding - PTO-RT v9 style, on the ptort_lab simulator")
    print("=" * 70)
    print(f"add: [{NB}, {TM}, {TN}, {TS}, {TS}] (= {NB} matrices of {TM * TS}x{TN * TS}); "
          f"square: [{NB}, {T}, {TS}, {TS}]; round_robin over {cores} cores")

    # ---------------------------------------------------------------------------------------------------------
    section("1. Tensor <-> numpy binding")
    rng = np.random.default_rng(11)
    a_mat = rng.standard_normal((NB, TM * TS, TN * TS)).astype(np.float32)
    b_mat = rng.standard_normal((NB, TM * TS, TN * TS)).astype(np.float32)
    c_mat = np.zeros_like(a_mat)
    A = Tensor(data=tiled(a_mat, TS), dtype=F32, name="A")
    B = Tensor(data=tiled(b_mat, TS), dtype=F32, name="B")
    C = Tensor(data=tiled(c_mat, TS), dtype=F32, name="C")
    x = rng.standard_normal((NB, T, TS, TS)).astype(np.float32)
    X = Tensor(data=x, name="X")                                   # dtype taken from the array: F32
    Y = Tensor(shape=x.shape, dtype=F32, name="Y")                 # no data: allocated on first use
    for t in (A, B, C, X, Y):
        bound = "unbound (zeros on first use)" if t.data is None else f"bound to numpy {t.data.dtype}"
        print(f"  {t!r:<34} {bound}")
    print(f"  A.data is a tiled view of a_mat (no copy): {np.shares_memory(A.data, a_mat)}")
    print(f"  C.data writes land in c_mat:               {np.shares_memory(C.data, c_mat)}")
    try:
        Tensor(data=x.astype(np.float64), dtype=F32)
    except PtortError as e:
        print(f"  Tensor(data=float64 array, dtype=F32) -> {type(e).__name__}: {str(e).splitlines()[0]}")

    # ---------------------------------------------------------------------------------------------------------
    section("2. Multi-level views")
    for text, view in (("A[1]", A[1]), ("A[1][0]", A[1][0]), ("A[1][0][1]", A[1][0][1]), ("A[1, 0, 1]", A[1, 0, 1])):
        print(f"  {text:<11} shape {str(tuple(view.shape)):<16} {view!r}")
    tile_ok = np.array_equal(A.data[1][0][1], a_mat[1, 0:TS, TS:2 * TS])
    print(f"  A[1][0][1] is a_mat[1, 0:{TS}, {TS}:{2 * TS}]: {tile_ok}")

    @workload
    def wrong_depth():
        for bb, i in P(Dense[NB](), Dense[TM](), names=("b", "i")):
            add_tiles[bb, i](a=A[bb][i], b=B[bb][i], c=C[bb][i])   # a row of tiles, not one tile

    try:
        wrong_depth().enumerate()
    except PtortError as e:
        print(f"  add_tiles(a=A[b][i], ...) -> {type(e).__name__}: {str(e).splitlines()[0]}")

    # ---------------------------------------------------------------------------------------------------------
    section("3. Kernel IR")
    for k in (add_tiles, square_tile):
        ir = k.trace()
        print(f"  {k.name}: {len(ir.ops)} operations")
        print("\n".join("    " + line for line in str(ir).splitlines()[1:]))

    # ---------------------------------------------------------------------------------------------------------
    section("4. Workloads and task counts")
    batch, tiles_m, tiles_n, tiles = Dense[NB](), Dense[TM](), Dense[TN](), Dense[T]()

    @workload
    def add_workload():
        """Batched tile addition: one task per (batch, tile row, tile column)."""
        for bb, i, j in P(batch, tiles_m, tiles_n, names=("b", "i", "j")):
            add_tiles[bb, i, j](a=A[bb][i][j], b=B[bb][i][j], c=C[bb][i][j])

    @workload
    def square_workload():
        """Batched tile squaring: one task per (batch, tile)."""
        for bb in P(batch, names=("b",)):
            for t in P(tiles, names=("t",)):
                square_tile[bb, t](input_tile=X[bb][t], output_tile=Y[bb][t])

    add_w, square_w = add_workload(), square_workload()
    add_tasks, square_tasks = add_w.enumerate(), square_w.enumerate()
    for label, tasks in (("add_workload", add_tasks), ("square_workload", square_tasks)):
        first, last = tasks[0], tasks[-1]
        print(f"  {label:<16} {len(tasks)} tasks: {first.kernel}{list(first.params)} .. "
              f"{last.kernel}{list(last.params)}  (last task bindings {last.bindings})")
    checks = [check("add tasks", len(add_tasks), NB * TM * TN, rtol=0.0, atol=0.0),
              check("square tasks", len(square_tasks), NB * T, rtol=0.0, atol=0.0)]

    # ---------------------------------------------------------------------------------------------------------
    section("5. Execution, checked against numpy")
    programs = {}
    for label, w in (("add", add_w), ("square", square_w)):
        program = w.dispatch(DispatchPolicy.round_robin(cores)).compile()
        program.execute()
        program.synchronize()
        programs[label] = program
    print(f"  Y allocated by the run: {Y.data is not None}, shape {Y.data.shape}, dtype {Y.data.dtype}")
    checks += [check("C = A + B", c_mat, add_ref(a_mat, b_mat), rtol=RTOL_F32_ONE_ROUNDING, atol=0.0),
               check("Y = X * X", Y.data, square_ref(x), rtol=RTOL_F32_ONE_ROUNDING, atol=0.0)]
    print()
    ok = report("tensor_data vs numpy (float64; rtol = one F32 rounding)", checks, programs)
    return 0 if ok else 1


if __name__ == "__main__":
    run_example(main)  # a ptort_lab error: its message and exit status 2, no traceback
