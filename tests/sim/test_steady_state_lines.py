"""The NPU model's steady state keys which tile each L2 line holds (steady_state._line_key), not only its size and
state: lines of one size are not interchangeable (hunt8b).

A run that updates X[t] and adds it into one accumulator Acc[0] holds, in a small FIFO L2, lines that all look alike
(dirty tiles of one size). Keyed by their values alone the state "repeated" every tile, and the three short runs
that check a period all fell between two evictions of Acc[0]: the extrapolation missed every later eviction (a
write-back and an HBM re-read) and said so exactly. Keyed by the tile each line holds, counted from the tile keyed,
X[t] streams repeat and Acc[0] drifts, so that run is the full one.
"""
from __future__ import annotations

import dataclasses

from ptort_lab import Dense, DispatchPolicy, DType, InOut, P, Tensor, Tile, kernel, tl, workload
from ptort_lab.sim.machine import ascend_910b
from ptort_lab.sim.steady_state import _line_key

F32 = DType.F32
S = 32


@kernel
def scale_and_sum(x: InOut[Tile[S, S, F32]], acc: InOut[Tile[S, S, F32]]):
    v = tl.mul(tl.load(x), 0.5)
    tl.store(x, v)
    tl.store(acc, tl.add(tl.load(acc), v))


def accumulate(n: int):
    X = Tensor(shape=(n, S, S), dtype=F32, name="X")
    Acc = Tensor(shape=(1, S, S), dtype=F32, name="Acc")
    tiles = Dense[n]()

    @workload
    def wl():
        for t in P(tiles):
            scale_and_sum[t](x=X[t], acc=Acc[0])

    return wl().dispatch(DispatchPolicy.round_robin(1))


def figures(stats) -> dict:
    return {f.name: getattr(stats, f.name) for f in dataclasses.fields(stats)
            if f.name not in ("steady_state", "execute_time_ms")}


def test_a_tile_used_at_every_tile_keeps_the_steady_state_exact():
    program = accumulate(400).compile(compute_values=False, machine=ascend_910b.replace(l2_bytes=1 << 18))
    full = figures(program.execute().stats())
    steady = program.execute(steady_state=True).stats()
    assert figures(steady) == full
    assert full["memory"]["evictions"] > 0 and full["memory"]["dirty_evictions"] > 0  # (Acc[0] is evicted too)


def test_line_keys_count_the_leading_index_from_the_tile_keyed():
    assert _line_key((7, (12,)), 10) == (7, (2,))
    assert _line_key((7, (12, 3), (0, 32, 0, 32)), 10) == (7, (2, 3), (0, 32, 0, 32))
    assert _line_key((7, (0,)), 10) == (7, (-10,))  # Acc[0]: drifts from tile to tile
    assert _line_key((7, ()), 10) == (7, ()) and _line_key("z", 10) == "z"
