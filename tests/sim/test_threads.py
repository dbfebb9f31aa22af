"""Runs are independent: slot tables are per listing, cost-model state is per run, so threads running one Program,
or sharing one NpuCostModel, each get exactly the single-thread result (byte-identical traces)."""
from __future__ import annotations

import gc
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from ptort_lab import Dense, DispatchPolicy, DType, In, NpuCostModel, Out, P, Tensor, Tile, kernel, tl, workload
from ptort_lab.dsl import runtime_slots as slots
from ptort_lab.explore import data_parallel_twin
from ptort_lab.sim.costs import NpuRun
from ptort_lab.sim.runner import PinnedCosts, RunOptions, simulate
from ptort_lab.spec_pipeline import spec_pipeline

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "dsl"))
from test_slots import tiered  # noqa: E402  (the slot-driven workload of the slot tests)

F32 = DType.F32
THREADS = 4


def in_threads(fn, n: int = THREADS) -> list:
    """Run ``fn(i)`` in ``n`` threads started together; return their results in thread order (re-raise errors)."""
    barrier = threading.Barrier(n)
    results: list = [None] * n
    errors: list = []

    def body(i: int) -> None:
        barrier.wait()
        try:
            results[i] = fn(i)
        except BaseException as e:  # noqa: BLE001 - handed to the test thread
            errors.append(e)

    threads = [threading.Thread(target=body, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    if errors:
        raise errors[0]
    return results


def test_threads_listing_slot_driven_workloads_each_see_their_own_slots():
    """Each thread lists its own tiered workload (different lengths) 30 times: every listing has its 8 tasks and
    picks its kernels from its own table."""
    lengths = [[100, 3000, 2048, 9000, 1, 5000, 7, 8000], [5000] * 8, [1] * 8, [3000, 1] * 4]

    def lister(i: int) -> list[list[str]]:
        return [[t.kernel for t in tiered(lengths[i])[0].enumerate()] for _ in range(30)]

    for i, kernels in enumerate(in_threads(lister)):
        expected = ["small" if n <= 2048 else "large" for n in lengths[i]]
        assert all(k == expected for k in kernels), (i, kernels[:2])


def test_a_listing_inside_a_listing_keeps_the_outer_table():
    slots.begin_listing()
    try:
        slots.store(0, 5, "slot 0", None)
        slots.begin_listing()
        slots.store(0, 9, "slot 0", None)
        assert slots.read(0) == 9
        assert slots.end_listing() == []
        assert slots.read(0) == 5 and slots.is_listing()
    finally:
        slots.end_listing()
    assert not slots.is_listing()
    with pytest.raises(ValueError, match=r"slot_u64\(0\) is read outside the listing of a workload"):
        slots.read(0)


def test_a_thread_that_is_not_listing_cannot_read_another_threads_slots():
    slots.begin_listing()
    try:
        slots.store(0, 1, "slot 0", None)
        assert in_threads(lambda i: slots.is_listing(), 1) == [False]
    finally:
        slots.end_listing()


def _spec(tiles: int = 24):
    return spec_pipeline(tiles=tiles, tile=(64, 64), seed=None).pipeline


def test_one_program_run_from_four_threads_gives_the_serial_trace_every_time():
    """Timing-only runs of one Program (NPU model, time-ordered engine) in 4 threads x 3: each trace is
    byte-identical to the serial run's, and the program keeps the right cycles."""
    program = _spec().compile(compute_values=False)
    serial = program.execute().trace().to_chrome_json()
    cycles = program.stats().total_cycles

    def runs(i: int) -> list[str]:
        return [simulate(program.workload, program.cost_model, program.run_options).trace.to_chrome_json()
                for _ in range(3)]

    assert all(t == serial for traces in in_threads(runs) for t in traces)
    in_threads(lambda i: program.execute())
    assert program.stats().total_cycles == cycles and program.trace().to_chrome_json() == serial


def test_programs_sharing_one_cost_model_in_threads_match_their_serial_runs():
    """Four programs (a pipeline and data-parallel forms on 2, 3 and 4 cores) share one NpuCostModel; run together
    in threads, each gives its own serial trace."""
    model = NpuCostModel()
    pipe = _spec(16)
    workloads = [pipe, data_parallel_twin(pipe, 2), data_parallel_twin(pipe, 3), data_parallel_twin(pipe, 4)]
    programs = [w.compile(cost_model=model, compute_values=False) for w in workloads]
    serial = [p.execute().trace().to_chrome_json() for p in programs]
    assert len(set(serial)) == 4

    def run(i: int) -> list[str]:
        return [programs[i].execute().trace().to_chrome_json() for _ in range(3)]

    for i, traces in enumerate(in_threads(run)):
        assert traces == [serial[i]] * 3


@kernel
def square(x: In[Tile[32, 32, F32]], y: Out[Tile[32, 32, F32]]):
    v = tl.load(x)
    tl.store(y, tl.mul(v, v))


def test_value_runs_of_one_program_in_threads_compute_the_right_values():
    """Runs that compute values take turns; each gives the serial trace, and Y is X * X."""
    x = np.random.default_rng(1).standard_normal((12, 32, 32)).astype(np.float32)
    X, Y = Tensor(data=x), Tensor(shape=x.shape, dtype=F32)

    @workload
    def w():
        for t in P(Dense[12]()):
            square[t](x=X[t], y=Y[t])

    program = w().dispatch(DispatchPolicy.round_robin(3)).compile()
    serial = program.execute().trace().to_chrome_json()
    Y.data = None
    traces = in_threads(lambda i: program.execute().trace().to_chrome_json())
    assert traces == [serial] * THREADS
    np.testing.assert_array_equal(Y.data, x * x)


def test_each_run_gets_its_own_npu_state_and_the_model_keeps_none():
    model = NpuCostModel()
    pipe = _spec(4)
    first = simulate(pipe, model, RunOptions(compute_values=False))
    second = simulate(pipe, model, RunOptions(compute_values=False))
    assert isinstance(first.pricing, NpuRun) and first.pricing is not second.pricing
    assert first.pricing.memory is not second.pricing.memory
    assert first.trace.to_chrome_json() == second.trace.to_chrome_json()
    assert model.memory is second.pricing.memory  # the single-run view: the run last begun


class _Legacy:
    """A custom cost model with per-run state on itself and no begin_run: prepare + task_timing, as before."""

    clock_hz = 1.0e9

    def __init__(self) -> None:
        self.prepared = 0
        self.clock = 0

    def prepare(self, workload, placement):
        self.prepared += 1
        self.clock = 0

    def task_timing(self, task, ir, core, start, lane, pipelined):
        self.clock += 1
        end = start + 10 * self.clock
        return end, end, []


def test_a_cost_model_without_begin_run_is_still_prepared_once_per_run():
    model = _Legacy()
    pipe = _spec(3)
    run = simulate(pipe, model, RunOptions(compute_values=False))
    assert model.prepared == 1 and run.pricing is None
    simulate(pipe, model, RunOptions(compute_values=False))
    assert model.prepared == 2 and model.clock == 9


def test_the_collector_is_back_on_after_concurrent_runs():
    assert gc.isenabled()
    program = _spec(8).compile(cost_model=PinnedCosts(), compute_values=False)
    in_threads(lambda i: [program.execute() for _ in range(5)])
    assert gc.isenabled()
