"""A run writes its outputs only if it succeeds: every failure (kernel error, deadlock, capacity, user code, a
KeyboardInterrupt) leaves each tensor exactly as it was, and the error names the tile, the process or core, the
sim time and the kernel line, and says the outputs were left unchanged."""
from __future__ import annotations

import re

import numpy as np
import pytest

import ptort_lab.sim.numerics as numerics
from ptort_lab import (
    CapacityError,
    Channel,
    DeadlockError,
    Dense,
    DispatchPolicy,
    DType,
    In,
    InOut,
    KernelExecutionError,
    Out,
    P,
    PtortValueError,
    Tensor,
    Tile,
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
from ptort_lab.errors import UserCodeError
from ptort_lab.sim.costs import NpuCostModel
from ptort_lab.sim.runner import PinnedCosts, RunOptions, simulate
from ptort_lab.sim.trace import Span

F32, I32 = DType.F32, DType.I32
N = 8


@kernel(cycles=100)
def divide(x: In[Tile[4, 4, I32]], d: In[Tile[4, 4, I32]], y: Out[Tile[4, 4, I32]], z: Out[Tile[4, 4, I32]]):
    q = tl.div(tl.load(x), tl.load(d))  # the failing line
    tl.store(y, q)
    tl.store(z, q)


@kernel(cycles=100)
def copy(x: In[Tile[4, 4, F32]], y: Out[Tile[4, 4, F32]]):
    tl.store(y, tl.load(x))


@kernel(cycles=100)
def accumulate(x: In[Tile[4, 4, F32]], y: InOut[Tile[4, 4, F32]]):
    tl.store(y, tl.add(tl.load(y), tl.load(x)))


def divisors(zero_at: int = 5) -> Tensor:
    d = np.ones((N, 4, 4), np.int32)
    d[zero_at, 2, 3] = 0
    return Tensor(data=d, name="D")


def ones() -> Tensor:
    return Tensor(data=np.arange(N * 16, dtype=np.int32).reshape(N, 4, 4) + 1, name="X")


def divide_workload(X: Tensor, D: Tensor, Y: Tensor, Z: Tensor):
    @workload
    def w():
        for t in P(Dense[N]()):
            divide[t](x=X[t], d=D[t], y=Y[t], z=Z[t])

    return w().dispatch(DispatchPolicy.round_robin(2))


def line_of(text: str) -> int:
    """The line number of ``text`` in this file (to check the location errors report)."""
    with open(__file__) as f:
        for i, line in enumerate(f, start=1):
            if text in line:
                return i
    raise AssertionError(text)


def test_a_failing_data_parallel_run_leaves_outputs_as_they_were():
    """Tile 5 divides by zero. Before: tiles 0-4 of Y were written and Z allocated; now Y holds its 7s (the very
    array the user passed) and Z has no data again. Round robin over 2 cores at 100 cycles a task: tile 5 is
    core 1's third task, so it starts at cycle 200."""
    X, D = ones(), divisors()
    y = np.full((N, 4, 4), 7, np.int32)
    Y, Z = Tensor(data=y, name="Y"), Tensor(shape=(N, 4, 4), dtype=I32, name="Z")
    with pytest.raises(KernelExecutionError) as e:
        divide_workload(X, D, Y, Z).compile().execute()
    assert Y.data is y and np.array_equal(y, np.full((N, 4, 4), 7, np.int32))
    assert Z.data is None
    text = str(e.value)
    assert text.splitlines()[0] == (
        "kernel 'divide' failed at `div` on tile 5: integer division by zero (the divisor has a 0 element).")
    assert text.splitlines()[-1].endswith(
        "Outputs left unchanged: 'Y' and 'Z' are as before the run (a run writes its outputs only if it succeeds).")
    assert text.splitlines()[1] == (f"  at test_run_safety.py:{line_of('# the failing line')} in core 1, "
                                    "tile 5, sim time 200 cycles")
    assert "keep zeros out of the divisor" in e.value.hint


def test_a_failing_pipeline_names_the_process_and_tile_not_the_task_number():
    """p1 computes every tile into Z; p2 divides by D and fails on tile 5 (its 6th task; task 9 in execution
    order). Each stage takes 100 cycles, so p2 starts tile t at 100 (t + 1): tile 5 at 600."""
    X, D = ones(), divisors()
    y = np.full((N, 4, 4), 7, np.int32)
    Y, Z, W = Tensor(data=y, name="Y"), Tensor(shape=(N, 4, 4), dtype=I32, name="Z"), Tensor(
        shape=(N, 4, 4), dtype=I32, name="W")
    ch = Channel(name="c", depth=2)
    p1 = process("p1").produces(ch).body(
        for_each(Dense[N](), lambda t: send(ch, task(divide, [t], {"x": X[t], "d": X[t], "y": Z[t], "z": W[t]}))))
    p2 = process("p2").consumes(ch).body(
        consume(ch, lambda t: task(divide, [t], {"x": X[t], "d": D[t], "y": Y[t], "z": W[t]})))
    with pytest.raises(KernelExecutionError) as e:
        connect(p1, p2).compile(channel_latency_cycles=0).execute()
    assert np.array_equal(Y.data, np.full((N, 4, 4), 7, np.int32))
    assert Z.data is None and W.data is None
    text = str(e.value)
    assert "task 9" not in text
    assert "on tile 5" in text.splitlines()[0]
    assert text.splitlines()[1].endswith("in process 'p2' on core 1, tile 5, sim time 600 cycles")
    assert "Outputs left unchanged: 'Z', 'W' and 'Y' are as before the run" in text


def _cycles_failing_at(tile: int, exc: BaseException):
    def cycles(t):
        if t.params[0] == tile:
            raise exc
        return 100
    return cycles


def _in_place(Y: Tensor, X: Tensor, cycles=None):
    """Y[t] += X[t] for every tile, on one core (each task 100 cycles unless ``cycles`` says otherwise)."""
    return for_each(Dense[N](), lambda t: task(accumulate, [t], {"x": X[t], "y": Y[t]}, cycles=cycles))


def test_an_error_in_a_cycles_function_undoes_the_run_and_names_the_tile():
    x = np.arange(N * 16, dtype=np.float32).reshape(N, 4, 4)
    X, Y = Tensor(data=x, name="X"), Tensor(data=np.ones_like(x), name="Y")
    with pytest.raises(UserCodeError) as e:
        _in_place(Y, X, _cycles_failing_at(4, ZeroDivisionError("boom"))).compile().execute()
    assert np.array_equal(Y.data, np.ones_like(x))
    assert "raised ZeroDivisionError: boom" in str(e.value)
    assert "core 0, tile 4, sim time 400 cycles" in str(e.value)
    assert "Outputs left unchanged: 'Y' is as before the run" in str(e.value)


def test_a_keyboard_interrupt_mid_run_undoes_the_writes_too():
    x = np.arange(N * 16, dtype=np.float32).reshape(N, 4, 4)
    X, Y = Tensor(data=x, name="X"), Tensor(data=np.ones_like(x), name="Y")
    prog = _in_place(Y, X, _cycles_failing_at(6, KeyboardInterrupt())).compile()
    with pytest.raises(KeyboardInterrupt):
        prog.execute()
    assert np.array_equal(Y.data, np.ones_like(x))
    # the same program, uninterrupted, accumulates exactly once
    _in_place(Y, X).compile().execute()
    assert np.array_equal(Y.data, np.ones_like(x) + x)


def test_a_deadlock_after_some_writes_undoes_them():
    """p1 sends all of 'a' (depth 1) before 'b'; p2 reads 'b' first: p1 writes Z[0], then both wait forever."""
    x = np.ones((N, 4, 4), np.float32)
    X, Z = Tensor(data=x, name="X"), Tensor(shape=(N, 4, 4), dtype=F32, name="Z")
    a, b = Channel(name="a", depth=1), Channel(name="b", depth=1)
    p1 = process("p1").produces(a, b).body_func(lambda: (
        [send(a, copy[t](x=X[t], y=Z[t])) for t in range(N)] + [send(b, copy[t](x=X[t], y=Z[t])) for t in range(N)]))
    p2 = process("p2").consumes(a, b).body_func(lambda: [consume(b, lambda t: copy[t](x=X[t], y=Z[t])),
                                                         consume(a, lambda t: copy[t](x=X[t], y=Z[t]))])
    with pytest.raises(DeadlockError) as e:
        connect(p1, p2).compile().execute()
    assert Z.data is None
    assert "Outputs left unchanged: 'Z' is as before the run" in str(e.value)


@kernel
def big_square(x: In[Tile[256, 256, F32]], y: Out[Tile[256, 256, F32]]):
    v = tl.load(x)
    tl.store(y, tl.mul(v, v))


@kernel
def small_copy(x: In[Tile[4, 4, F32]], y: Out[Tile[4, 4, F32]]):
    tl.store(y, tl.load(x))


def test_a_capacity_error_after_some_tasks_undoes_their_writes():
    """Eight small copies run, then a 256 KiB tile that cannot fit the 192 KiB UB: the copies are undone. (compile()
    refuses such a kernel before running, sim/capacity.py; a run without compile() still meets it mid-run.)"""
    x = np.ones((N, 4, 4), np.float32)
    X, Y = Tensor(data=x, name="X"), Tensor(data=np.zeros_like(x), name="Y")
    B = Tensor(shape=(1, 256, 256), dtype=F32, name="B")

    @workload
    def w():
        for t in P(Dense[N]()):
            small_copy[t](x=X[t], y=Y[t])
        big_square[0](x=B[0], y=B[0])

    with pytest.raises(CapacityError) as e:
        simulate(w(), NpuCostModel(), RunOptions())
    assert np.array_equal(Y.data, np.zeros_like(x)) and B.data is None
    assert "(core 0, tile 0, sim time" in str(e.value)
    assert "Outputs left unchanged: 'Y' is as before the run" in str(e.value)


class _Raising(PinnedCosts):
    """A cost model of the user's own whose task_timing fails on tile 3."""

    def fixed_cycles(self, task):
        return None

    def task_timing(self, task, ir, core, start, lane, pipelined):
        if task.params[0] == 3:
            return {}["missing"]  # the user's bug
        end = start + 10
        return end, end, [Span(core, lane, task.kernel, task.params[0], start, end, 0, lane, task.id)]


def test_a_custom_cost_model_that_raises_is_the_users_error_and_undoes_the_run():
    x = np.ones((N, 4, 4), np.float32)
    X, Y = Tensor(data=x, name="X"), Tensor(data=np.zeros_like(x), name="Y")
    with pytest.raises(UserCodeError) as e:
        _in_place(Y, X).compile(cost_model=_Raising()).execute()
    assert np.array_equal(Y.data, np.zeros_like(x))
    assert re.search(r"the cost model's task_timing \(for accumulate, tile 3, core 0, tile 3, sim time 30 cycles\) "
                     r"raised KeyError: 'missing'", str(e.value))
    assert e.value.where is not None and e.value.where.code == 'return {}["missing"]  # the user\'s bug'


def test_tensors_sharing_memory_are_put_back_exactly():
    """A slice shares its parent's array: the run writes both, then fails; the array is as it was."""
    x = np.arange(N * 16, dtype=np.float32).reshape(N, 4, 4)
    before = x.copy()
    A = Tensor(data=x, name="A")
    S = A.slice(2, 6)
    S.name = "S"
    X = Tensor(data=np.full((N, 4, 4), 5, np.float32), name="X")

    @workload
    def w():
        for t in P(Dense[N]()):
            accumulate[t](x=X[t], y=A[t])
        for t in P(Dense[4]()):
            accumulate[t](x=X[t], y=S[t])
        big_square[0](x=Tensor(shape=(1, 256, 256), dtype=F32)[0], y=Tensor(shape=(1, 256, 256), dtype=F32)[0])

    with pytest.raises(CapacityError):
        simulate(w(), NpuCostModel(), RunOptions())
    assert A.data is x and np.array_equal(x, before)


def test_a_read_only_output_array_says_so_and_nothing_is_written():
    x = np.ones((N, 4, 4), np.float32)
    out = np.zeros_like(x)
    out.flags.writeable = False
    X, Y, Z = Tensor(data=x, name="X"), Tensor(data=out, name="Y"), Tensor(shape=(N, 4, 4), dtype=F32, name="Z")

    @workload
    def w():
        for t in P(Dense[N]()):
            copy[t](x=X[t], y=Z[t])
            copy[t](x=X[t], y=Y[t])  # the launch into the read-only array

    with pytest.raises(PtortValueError) as e:
        w().compile().execute()
    text = str(e.value)
    assert "output tensor 'Y'" in text and "passed as 'y' to copy, has a read-only array " \
        "(np.ndarray.flags.writeable is False), so the kernel cannot store into it." in text
    assert "log of negatives" not in text and "operand values" not in text
    assert f"test_run_safety.py:{line_of('# the launch into the read-only array')} in core 0, tile 0" in text
    assert e.value.hint.startswith("Pass a writable copy: Tensor(data=array.copy())")
    assert Z.data is None and not out.any()


def test_numerics_alone_names_a_read_only_store_too():
    """numerics.run_task (no run around it) reports a read-only destination at the store, not as bad values."""
    x = np.ones((1, 4, 4), np.float32)
    out = np.zeros_like(x)
    out.flags.writeable = False
    X, Y = Tensor(data=x), Tensor(data=out)

    @workload
    def w():
        copy[0](x=X[0], y=Y[0])

    with pytest.raises(KernelExecutionError, match=r"the array behind 'y' is read-only \(np.ndarray.flags.writeable "
                                                    r"is False\)") as e:
        numerics.run_task(w().enumerate()[0])
    assert e.value.hint == "Pass the tensor a writable array, e.g. Tensor(data=y.copy())."


def test_a_tile_too_big_for_the_core_is_refused_before_any_value_is_computed():
    """Tile[1, 2**28, F32] is 1 GiB: the NPU model refuses it from its size; the tensors were never allocated."""
    @kernel
    def huge(x: In[Tile[1, 2**28, F32]], y: Out[Tile[1, 2**28, F32]]):
        tl.store(y, tl.load(x))

    X, Y = Tensor(shape=(1, 1, 2**28), dtype=F32, name="X"), Tensor(shape=(1, 1, 2**28), dtype=F32, name="Y")

    @workload
    def w():
        huge[0](x=X[0], y=Y[0])

    with pytest.raises(CapacityError, match=r"kernel 'huge' cannot fit ascend_910b's buffers: it needs 1073741824 "
                                            r"bytes of UB"):
        w().compile().execute()
    with pytest.raises(CapacityError, match=r"kernel 'huge' \(task 0, core 0\) needs 1073741824 bytes of UB"):
        simulate(w(), NpuCostModel(), RunOptions())  # a run without compile() refuses it from its size too
    assert X.data is None and Y.data is None


def test_running_out_of_host_memory_is_a_ptort_error_naming_the_task(monkeypatch):
    x = np.ones((N, 4, 4), np.float32)
    X, Y = Tensor(data=x, name="X"), Tensor(data=np.zeros_like(x), name="Y")
    real = numerics.eval_op
    calls = []

    def eval_op_tile3(op, env, views):
        calls.append(1)
        if len(calls) > 3 * 4:  # tiles 0-2 ran (two loads, an add and a store each)
            raise MemoryError()
        return real(op, env, views)

    monkeypatch.setattr(numerics, "eval_op", eval_op_tile3)
    with pytest.raises(KernelExecutionError) as e:
        _in_place(Y, X).compile(cost_model=PinnedCosts()).execute()
    text = str(e.value)
    assert text.startswith("kernel 'accumulate' (tile 3) ran out of host memory while it ran.")
    assert "in core 0, tile 3, sim time 300 cycles" in text
    assert "compile(compute_values=False)" in e.value.hint
    assert isinstance(e.value.__cause__, MemoryError)
    assert np.array_equal(Y.data, np.zeros_like(x))


def test_values_are_computed_after_pricing_and_timing_does_not_depend_on_them(spec_kernels):
    """A values run and a timing-only run of the spec pipeline and of its data-parallel form give byte-identical
    traces (each task is priced before its values are computed)."""
    from ptort_lab.explore import data_parallel_twin
    from ptort_lab.spec_pipeline import spec_pipeline

    for make in (lambda sp: sp.pipeline, lambda sp: data_parallel_twin(sp.pipeline, 3)):
        with_values = make(spec_pipeline(tiles=6, tile=(64, 64))).compile().execute().trace().to_chrome_json()
        timing_only = make(spec_pipeline(tiles=6, tile=(64, 64), seed=None)).compile(compute_values=False) \
            .execute().trace().to_chrome_json()
        assert with_values == timing_only


def test_a_successful_run_writes_into_the_users_arrays_and_keeps_no_copy():
    x = np.arange(N * 16, dtype=np.float32).reshape(N, 4, 4)
    y = np.ones_like(x)
    X, Y = Tensor(data=x), Tensor(data=y)
    run = simulate(_in_place(Y, X), PinnedCosts(), RunOptions())
    assert Y.data is y and np.array_equal(y, 1 + x)
    assert run.pricing is None  # PinnedCosts keeps no per-run state


@pytest.mark.parametrize("fill", [0.0, -0.0, np.nan, 3.5])
def test_outputs_are_restored_bit_for_bit(fill):
    """Zero-filled outputs are scanned rather than copied; -0.0, nan and other values are copied: each comes back
    with exactly its bytes."""
    x = np.ones((N, 4, 4), np.float32)
    y = np.full((N, 4, 4), fill, np.float32)
    y[1, 2, 3] = fill if fill == 0.0 else 7.0
    before = y.tobytes()
    X, Y = Tensor(data=x, name="X"), Tensor(data=y, name="Y")
    with pytest.raises(UserCodeError):
        _in_place(Y, X, _cycles_failing_at(5, ValueError("stop"))).compile().execute()
    assert Y.data is y and y.tobytes() == before
