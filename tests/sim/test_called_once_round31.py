"""A user's callable is called once for each task it is asked about in a run: key functions of keyed dispatch
(read ahead for the NPU's block order, then dealt), cycles= functions on the max-plus path's fallback and under
PinnedCosts, and the expressions of a written-out task factory whose entries are not the usual plain ints."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from ptort_lab import (
    Channel,
    Dense,
    DispatchPolicy,
    DType,
    In,
    Out,
    P,
    PinnedCosts,
    Tensor,
    Tile,
    cond,
    connect,
    consume,
    for_each,
    kernel,
    process,
    send,
    task,
    tl,
    workload,
)
from ptort_lab.dsl import bindings
from ptort_lab.dsl.expr import Expr, LoopVar
from ptort_lab.errors import PtortError
from ptort_lab.sim import maxplus, placement
from ptort_lab.sim.costs import NpuCostModel
from ptort_lab.sim.runner import RunOptions, simulate

F32 = DType.F32
N = 6  # tasks of the data-parallel workloads


@kernel
def copy(src: In[Tile[16, 16, F32]], dst: Out[Tile[16, 16, F32]]):
    """Copy a tile (priced by the NPU model)."""
    tl.store(dst, tl.load(src))


class Counter:
    """A key (or cycles=, or condition) function that counts its calls, by task."""

    def __init__(self, value: Any) -> None:
        self.value, self.calls = value, []

    def __call__(self, t: Any) -> Any:
        self.calls.append(t.params[0] if t.params else t.get("b"))  # (a condition's task has no params)
        return self.value(t)


def copies(guard: Counter | None = None, n: int = N) -> Any:
    X, Y = Tensor(shape=(n, 16, 16), dtype=F32), Tensor(shape=(n, 16, 16), dtype=F32)

    @workload
    def w():
        for b in P(Dense[n]()):
            if guard is None:
                copy[b](src=X[b], dst=Y[b])
            else:
                cond(guard, task(copy, [b], {"src": X[b], "dst": Y[b]}))

    return w()


KEYED = {
    "affinity": lambda w, key: w.dispatch(DispatchPolicy.affinity(key, 8)),
    "hash": lambda w, key: w.dispatch(DispatchPolicy.hash(key, 8)),
    "dispatch_by": lambda w, key: w.dispatch(DispatchPolicy.dispatch_by(key, 8)),
    "stream_by": lambda w, key: w.streams(8).stream_by(key),
}


# -- 1. keyed dispatch on the NPU model: the keys are read once, for the block order and the dealer both -------------
@pytest.mark.parametrize("values", [True, False], ids=["listed", "streamed"])
@pytest.mark.parametrize("policy", sorted(KEYED))
def test_a_keyed_dispatch_reads_each_key_once(policy: str, values: bool) -> None:
    """Keys 3 and 4 of 8 cores: the NPU model ranks their blocks 0 and 1 (read before the first task is priced), and
    the dealer sends each task there, with one call of the key function per task."""
    key = Counter(lambda t: t.get("b") % 2 + 3 if policy != "hash" else t.get("b") % 2)
    run = simulate(KEYED[policy](copies(), key), NpuCostModel(), RunOptions(compute_values=values))
    assert sorted(key.calls) == sorted(range(N))
    used = sorted({s.core for s in run.trace.spans})
    assert len(used) == 2 and run.pricing.block_ranks == {used[0]: 0, used[1]: 1}


@pytest.mark.parametrize("values", [True, False], ids=["listed", "streamed"])
def test_a_keyed_dispatch_lists_the_tasks_once(values: bool) -> None:
    """The block order is found from the run's own listing (or the tasks read ahead): a condition of the workload is
    evaluated once per task as well."""
    key, guard = Counter(lambda t: t.get("b") % 2), Counter(lambda t: True)
    run = simulate(copies(guard).dispatch(DispatchPolicy.affinity(key, 4)), NpuCostModel(),
                   RunOptions(compute_values=values))
    assert sorted(guard.calls) == sorted(key.calls) == list(range(N))
    assert run.pricing.block_ranks == {0: 0, 1: 1}


def test_a_streamed_run_past_the_read_ahead_still_reads_each_key_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """More tasks than a streamed run holds while it reads ahead: it keeps their cores and lists them again, so the
    key function is still called once per task (the same cores and times as a listed run)."""
    monkeypatch.setattr(placement, "READ_AHEAD", 2)
    key = Counter(lambda t: t.get("b") % 2 + 5)
    streamed = simulate(copies().dispatch(DispatchPolicy.affinity(key, 8)), NpuCostModel(),
                        RunOptions(compute_values=False))
    assert sorted(key.calls) == list(range(N))
    listed = simulate(copies().dispatch(DispatchPolicy.affinity(lambda t: t.get("b") % 2 + 5, 8)), NpuCostModel(),
                      RunOptions(compute_values=True))
    assert streamed.trace.spans == listed.trace.spans and streamed.pricing.block_ranks == {5: 0, 6: 1}


def test_every_core_used_stops_the_read_ahead_and_the_rest_is_dealt_as_listed() -> None:
    key = Counter(lambda t: t.get("b"))
    run = simulate(copies(n=12).dispatch(DispatchPolicy.affinity(key, 4)), NpuCostModel(),
                   RunOptions(compute_values=False))
    assert sorted(key.calls) == list(range(12)) and run.pricing.block_ranks == {}
    assert {s.index: s.core for s in run.trace.spans} == {b: b % 4 for b in range(12)}


def test_a_model_prepared_by_hand_reads_the_keys_itself() -> None:
    """Outside a run (``NpuCostModel.prepare`` called by hand) there is no dealer: the model lists the keys."""
    key = Counter(lambda t: 7)
    model = NpuCostModel()
    model.prepare(copies().dispatch(DispatchPolicy.affinity(key, 8)), None)
    assert model._current().block_ranks == {7: 0} and len(key.calls) == N


# -- 2. the max-plus path's fallback: the engine takes the cycles priced already ------------------------------------
@kernel
def stage() -> None:
    """An empty stage kernel (its cost pinned by cycles=)."""


def chain_of(first: Any, second: Any, n: int = 8) -> Any:
    c = Channel(name="c", depth=2)
    a = process("a").produces(c).body(for_each(Dense[n](), lambda i: send(c, task(stage, [i], {}, cycles=first))))
    b = process("b").consumes(c).body(consume(c, lambda i: task(stage, [i], {}, cycles=second)))
    return connect(a, b)


def outcome(fast: bool, first: Any, second: Any) -> Any:
    program = chain_of(first, second).compile(cost_model=PinnedCosts(), compute_values=False)
    saved = maxplus.plan
    if not fast:
        maxplus.plan = lambda *args, **kwargs: None
    try:
        program.execute()
    except PtortError as e:
        return type(e).__name__, str(e)
    finally:
        maxplus.plan = saved
    tr = program.trace()
    return tr.spans, tr.stalls, tr.samples, tr.makespan, [repr(t) for t in program.tasks]


def test_a_zero_cycle_task_leaves_the_run_to_the_engine_with_its_cycles_priced_once() -> None:
    a, b = Counter(lambda t: 10), Counter(lambda t: 0 if t.params[0] == 3 else 20)
    before = maxplus.runs
    got = outcome(True, a, b)
    assert maxplus.runs == before, "a 0-cycle task takes the engine"
    assert sorted(a.calls) == sorted(b.calls) == list(range(8))
    assert got == outcome(False, lambda t: 10, lambda t: 0 if t.params[0] == 3 else 20)


def test_a_cycles_function_that_raises_is_called_once_and_reported_as_by_the_engine() -> None:
    def failing(t: Any) -> int:
        if t.params[0] == 5:
            raise ValueError("no cost for tile 5")
        return 20

    b = Counter(failing)
    got = outcome(True, lambda t: 10, b)
    assert sorted(b.calls) == list(range(6))  # tiles 0..5, once each: the engine raised the same error for tile 5
    assert got[0] == "UserCodeError" and got == outcome(False, lambda t: 10, failing)


def test_a_run_past_the_limits_is_left_to_the_engine_before_its_bodies_run(monkeypatch: pytest.MonkeyPatch) -> None:
    drained = []
    monkeypatch.setattr(maxplus, "_within_limits", lambda engine, K, n: False)
    monkeypatch.setattr(maxplus, "_drain", lambda chain: drained.append(chain) or [])
    a = Counter(lambda t: 10)
    chain_of(a, lambda t: 20).compile(cost_model=PinnedCosts(), compute_values=False).execute()
    assert drained == [] and sorted(a.calls) == list(range(8))


# -- PinnedCosts: a cycles= function that returns a numpy int is not called again to convert it ---------------------
@pytest.mark.parametrize("values", [True, False])
def test_a_numpy_int_from_a_cycles_function_is_taken_from_its_one_call(values: bool) -> None:
    cycles = Counter(lambda t: np.int64(5 + t.get("b")))

    @workload
    def w():
        for b in P(Dense[4]()):
            task(stage, [b], {}, cycles=cycles)

    program = w().compile(cost_model=PinnedCosts(), compute_values=values)
    program.execute()
    assert sorted(cycles.calls) == [0, 1, 2, 3]
    assert program.trace().makespan == 5 + 6 + 7 + 8


def test_a_numpy_int_cycles_on_the_max_plus_path_is_called_once() -> None:
    a = Counter(lambda t: np.int64(10))
    before = maxplus.runs
    outcome(True, a, lambda t: 20)
    assert maxplus.runs == before + 1 and sorted(a.calls) == list(range(8))


# -- 3. a written-out task factory: entries that are not plain ints in range are not evaluated again ----------------
class Counted(Expr):
    """A user's expression that counts its evaluations (the loop variable i, as ``kind`` says)."""

    __slots__ = ("kind", "calls")

    def __init__(self, kind: Any) -> None:
        self.kind, self.calls = kind, []

    def evaluate(self, b: Any) -> Any:
        self.calls.append(b["i"])
        return self.kind(b["i"])

    def __repr__(self) -> str:
        return "counted(i)"


X, Y = Tensor(shape=(4, 6), name="X"), Tensor(shape=(5, 3), name="Y")
VI = LoopVar("i")


def _general(node: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    with monkeypatch.context() as m:
        m.setattr(bindings, "compile_factory", lambda *a: a[-1])
        return bindings.task_factory(node)


def _fields(t: Any) -> Any:
    res = {k: (v.base.name, v.index) if hasattr(v, "base") else v for k, v in t.resources.items()}
    return t.kernel, t.params, res, t.bindings, t.cycles, t.loc


@pytest.mark.parametrize("why", ["a literal -1", "a numpy int"])
def test_a_factory_off_the_usual_case_evaluates_each_expression_once(why: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """``Y[-1][i]`` (a literal counting from the end) or an entry that is a numpy int: the written-out factory builds
    the Task from the values it evaluated, as the general factory would build it."""
    def node(p: Counted, x: Counted, n: Counted) -> Any:
        y = Y[-1][VI] if why == "a literal -1" else Y[2][VI]
        return task("k", [p], {"x": X[x][VI], "y": y, "n": n})

    kind = int if why == "a literal -1" else np.int64
    counted = [Counted(int), Counted(kind), Counted(int)]
    fast = bindings.task_factory(node(*counted))
    assert fast.__code__.co_filename == "<task factory>"
    made = fast({"i": 2})
    assert [c.calls for c in counted] == [[2], [2], [2]]
    want = _general(node(Counted(int), Counted(kind), Counted(int)), monkeypatch)({"i": 2})
    assert _fields(made) == _fields(want)


def test_a_factory_whose_entry_is_refused_evaluates_it_once_and_raises_the_general_error(
        monkeypatch: pytest.MonkeyPatch) -> None:
    def node(entry: Counted) -> Any:
        return task("k", [VI], {"x": X[entry][VI]})

    out_of_range = Counted(lambda i: i + 10)
    with pytest.raises(PtortError) as err:
        bindings.task_factory(node(out_of_range))({"i": 1})
    assert out_of_range.calls == [1]
    with pytest.raises(PtortError) as want:
        _general(node(Counted(lambda i: i + 10)), monkeypatch)({"i": 1})
    assert (type(err.value), str(err.value)) == (type(want.value), str(want.value))
    assert str(err.value).startswith("index counted(i) = 11 is out of bounds for dimension 0 of Tensor(X")
