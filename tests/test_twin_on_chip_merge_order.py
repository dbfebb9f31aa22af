"""The data-parallel twin of a merge into a running value kept on chip follows the run's order (hunt 3).

Two producers feed one channel and the consumer folds the items into a UB accumulator (acc = 2 * acc + x), so the
order the items arrive in changes the result. The twin decided whether a merge's order matters from the
data-parallel dependencies, which leave on-chip tensors out (a core's copy orders its own tasks): it kept the
listing's order without a word and gave 1.0 where the pipeline gave 2.0. An accumulator in GM was handled.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest

from ptort_lab import DType, In, InOut, Location, Out, Tensor, Tile, kernel, tl
from ptort_lab.csp import Channel, connect, consume, process, send
from ptort_lab.explore import MergeOrderWarning, data_parallel_twin

T = Tile[8, 16, DType.F32]


@kernel
def horner(x: In[T], acc: InOut[T]):  # acc = 2 * acc + x: the order of the items matters
    tl.store(acc, tl.add(tl.mul(tl.load(acc), 2.0), tl.load(x)))


@kernel
def copy(src: In[T], dst: Out[T]):
    tl.store(dst, tl.load(src))


def merge(location):
    x = np.arange(2, dtype=np.float32)[:, None, None] * np.ones((2, 8, 16), np.float32)
    X, Y = Tensor(data=x), Tensor(data=np.zeros((8, 16), np.float32))
    acc = (Tensor(shape=(8, 16), dtype=DType.F32, location=location, name="acc") if location is not None else
           Tensor(data=np.zeros((8, 16), np.float32), name="acc"))
    q = Channel("q", depth=2)
    a = process("a").produces(q).body(send(q, 0))  # on another core: its item arrives second
    b = process("b").produces(q).body(send(q, 1))  # on the sink's core: first
    sink = process("sink").consumes(q).body_func(
        lambda: [consume(q, lambda t: horner[t](x=X[t], acc=acc)), copy(src=acc, dst=Y)])
    return connect(a, b, sink).place({"a": 1, "b": 0, "sink": 0}), Y, acc


@pytest.mark.parametrize("location", [Location.UB, None], ids=["UB", "GM"])
def test_the_twin_of_a_merge_into_on_chip_state_follows_the_runs_order(location):
    pipe, Y, acc = merge(location)
    program = pipe.compile()
    program.execute()
    assert Y.data[0, 0] == 2.0  # 2 * (2 * 0 + 1) + 0: item 1 first
    Y.data[...] = 0
    if location is None:
        acc.data[...] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (the run says the order: no warning)
        data_parallel_twin(pipe, 2, run=program).compile().execute()
    assert Y.data[0, 0] == 2.0


def test_without_a_run_the_twin_of_an_on_chip_merge_warns_that_its_order_is_a_guess():
    pipe, Y, _ = merge(Location.UB)
    with pytest.warns(MergeOrderWarning, match="sink"):
        twin = data_parallel_twin(pipe, 2)
    twin.compile().execute()
    assert Y.data[0, 0] == 1.0  # (the listing's order, as the warning says)
