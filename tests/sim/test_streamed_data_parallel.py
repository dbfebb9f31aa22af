"""A timing-only data-parallel run lists its tasks as the cores take them (runner._Dealer): the same trace as listing
them all first, no list of them kept, and only the cores that got tasks in the trace."""
from __future__ import annotations

import dataclasses
import gc
from typing import Any

import numpy as np
import pytest
from loaders import flash_attention_example

from ptort_lab import (
    Dense,
    DispatchPolicy,
    DType,
    In,
    NpuCostModel,
    Out,
    P,
    PinnedCosts,
    PtortValueError,
    Tensor,
    Tile,
    TimingPolicy,
    kernel,
    tl,
    workload,
)
from ptort_lab.dsl.tasks import Task
from ptort_lab.sim import runner as runner_module

F32 = DType.F32


@kernel
def add1(src: In[Tile[16, 16, F32]], dst: Out[Tile[16, 16, F32]]):
    tl.store(dst, tl.add(tl.load(src), 1.0))


def rows(n: int, reuse: int = 1) -> Any:
    """n tasks; task b reads X[b] and writes Y[b // reuse] (reuse > 1: later tasks overwrite, so they wait)."""
    X = Tensor(data=np.ones((n, 16, 16), np.float32), name="X")
    Y = Tensor(shape=(n, 16, 16), dtype=F32, name="Y")

    @workload
    def w():
        for b in P(Dense[n]()):
            add1[b](src=X[b], dst=Y[b // reuse])

    return w()


def figures(stats: Any) -> dict[str, Any]:
    """Every field of a ProgramStats but the wall-clock times."""
    out = dataclasses.asdict(stats)
    del out["compile_time_ms"], out["execute_time_ms"]
    return out


def spans_of(program: Any) -> list[tuple[Any, ...]]:
    return [tuple(sp) for sp in program.trace.spans]


@pytest.fixture
def listed(monkeypatch: Any) -> Any:
    """Run with every task listed first (the path that value-computing runs take)."""
    def run(make_program: Any) -> Any:
        with monkeypatch.context() as m:
            m.setattr(runner_module, "streams", lambda *a, **k: False)
            return make_program().execute()
    return run


@pytest.mark.parametrize("policy", [DispatchPolicy.round_robin(3), DispatchPolicy.work_steal(3),
                                    DispatchPolicy.affinity(lambda t: t.get("b") // 4, 3)])
@pytest.mark.parametrize("reuse", [1, 3])
def test_a_streamed_run_gives_the_trace_of_a_listed_one(listed, policy, reuse):
    """Same spans, stalls, makespan and cores on the NPU model, with and without write-after-write waits."""
    def make() -> Any:
        return rows(12, reuse).dispatch(policy).compile(compute_values=False, cost_model=NpuCostModel())
    streamed, first = make().execute(), listed(make)
    assert spans_of(streamed) == spans_of(first) and len(spans_of(first)) > 12
    assert list(streamed.trace.stalls) == list(first.trace.stalls)
    assert streamed.trace.makespan == first.trace.makespan
    assert streamed.trace.cores == first.trace.cores and streamed.trace.processes == first.trace.processes
    assert figures(streamed.stats()) == figures(first.stats())


@pytest.mark.parametrize("timing", [TimingPolicy.batched(4), TimingPolicy.rate_limit(2000)])
def test_batches_and_rate_limits_stream_with_the_same_gates(listed, timing):
    """batched(4): tasks 4-7 wait for tasks 0-3 (ids are positions); rate_limit: the k-th starts k spacings in."""
    def make() -> Any:
        return rows(10).dispatch(DispatchPolicy.round_robin(2)).timing(timing).compile(
            compute_values=False, cost_model=PinnedCosts(default_cycles=100))
    streamed, first = make().execute(), listed(make)
    assert spans_of(streamed) == spans_of(first)
    if timing.kind == "batched":  # two cores, 100 cycles a task, a batch of 4 on 2 cores: 200 cycles a batch
        assert streamed.trace.makespan == 200 + 200 + 100


def test_cores_that_get_no_task_have_no_lane():
    """round_robin(8) over 3 tasks, or a key that sends every task to core 2: only those cores are in the trace."""
    program = rows(3).dispatch(DispatchPolicy.round_robin(8)).compile(compute_values=False,
                                                                      cost_model=PinnedCosts(default_cycles=50))
    trace = program.execute().trace
    assert trace.cores == {0: "core0", 1: "core1", 2: "core2"} and trace.processes == ["core0", "core1", "core2"]
    assert trace.makespan == 50
    program = rows(3).dispatch(DispatchPolicy.affinity(lambda t: 2, 4)).compile(
        compute_values=False, cost_model=PinnedCosts(default_cycles=50))
    trace = program.execute().trace
    assert trace.cores == {2: "core2"} and trace.makespan == 150
    assert program.stats().core_busy_pct == {2: 100.0}


def test_a_streamed_run_that_keeps_no_trace_holds_no_tasks(monkeypatch):
    """keep_trace=False: when the first task is priced, the run holds a few tasks, not all of them (a listed run
    holds every one, and lets them go as the cores take them). Work stealing runs the cores in time order, as the NPU
    model does: cores take tasks in step."""
    n = 2_000
    alive: list[int] = []

    def tasks_alive() -> int:
        return sum(type(o) is Task for o in gc.get_objects())

    class Counting(PinnedCosts):
        def fixed_cycles(self, task: Any) -> int:
            if task.id == 0:
                alive.append(tasks_alive())
            return 10

    def run() -> int:
        program = rows(n).dispatch(DispatchPolicy.work_steal(4)).compile(compute_values=False, cost_model=Counting())
        alive[:] = [tasks_alive()]  # (other tests' tasks may still be alive)
        program.execute(keep_trace=False)
        return alive[1] - alive[0]

    assert run() < 10  # one dealt per core
    monkeypatch.setattr(runner_module, "streams", lambda *a, **k: False)
    assert run() >= n  # (so the check above can fail: listed first, every task is alive at the last one)


def test_flash_attention_data_parallel_holds_a_few_tasks_without_a_trace(monkeypatch):
    """The FA data-parallel variant on the NPU model (time-ordered, round-robin over 8 cores), keep_trace=False: at
    its first task the run holds the tasks dealt so far, not the 800 of the listing."""
    fa = flash_attention_example("ptort_streamed_fa_example")
    workload, _ = fa.build("data_parallel", fa.Config(2048))
    program = workload.compile(compute_values=False)
    seen: list[int] = []

    def observe(engine: Any, pricer: Any, run_task: Any) -> Any:
        def counted(task: Any, actor: Any) -> None:
            if task.id == 0:
                seen.append(sum(type(o) is Task for o in gc.get_objects()))
            run_task(task, actor)
        return counted

    monkeypatch.setattr(program, "run_options", dataclasses.replace(program.run_options, observe=observe))
    for listed in (False, True):
        if listed:
            monkeypatch.setattr(runner_module, "streams", lambda *a, **k: False)
        before = sum(type(o) is Task for o in gc.get_objects())
        program.execute(keep_trace=False)
        assert program.stats().task_count == 800
        seen[-1] -= before
    assert seen[0] < 20 and seen[1] >= 800


def test_an_error_in_the_listing_of_a_streamed_run_names_the_users_line():
    X, Y = Tensor(data=np.ones((4, 16, 16), np.float32)), Tensor(shape=(4, 16, 16), dtype=F32)

    @workload
    def w():
        for b in P(Dense[6]()):
            add1[b](src=X[b // 2 * 3], dst=Y[b % 4])

    line = w.fn.__code__.co_firstlineno + 3
    with pytest.raises(PtortValueError) as e:
        w().dispatch(DispatchPolicy.round_robin(2)).compile(compute_values=False).execute()
    assert e.value.what.startswith("index ((b // 2) * 3) = 6 is out of bounds for dimension 0")
    assert e.value.where.lineno == line and e.value.where.filename == __file__
