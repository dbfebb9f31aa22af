"""On-chip tensors in data-parallel runs and pipelines: each (core, unit) keeps its own copy, so a task that reads a
tile on one copy never sees what was written on the others. A read that misses values no task ever reads on their
own copies (they are lost) is refused in a data-parallel run (sim/on_chip.py ``CopyFlows``); per-copy state that each
copy reads back itself still runs, with exact values, in data-parallel runs and pipelines."""
from __future__ import annotations

import re

import numpy as np
import pytest

from ptort_lab import (
    Dense,
    DispatchPolicy,
    DType,
    Event,
    In,
    InOut,
    Location,
    Out,
    P,
    Tensor,
    Tile,
    for_each,
    kernel,
    record,
    synchronize,
    tl,
    workload,
)
from ptort_lab.csp import connect, process
from ptort_lab.dsl.tasks import Task
from ptort_lab.dsl.types import Direction
from ptort_lab.errors import SimulationError
from ptort_lab.sim.runner import PinnedCosts, RunOptions, simulate

F16, F32 = DType.F16, DType.F32
T = Tile[8, 8, F32]


@kernel
def accumulate(x: In[T], acc: InOut[T]):
    tl.store(acc, tl.add(tl.load(acc), tl.load(x)))


@kernel
def emit(acc: In[T], y: Out[T]):
    tl.store(y, tl.load(acc))


@kernel
def emit_reset(acc: InOut[T], y: Out[T]):  # read the sum out, then start it again from zero
    v = tl.load(acc)
    tl.store(y, v)
    tl.store(acc, tl.sub(v, v))


@kernel
def keep(x: In[T], acc: Out[T]):
    tl.store(acc, tl.load(x))


@kernel
def make(x: In[T], tmp: Out[T]):
    tl.store(tmp, tl.mul(tl.load(x), 2.0))


@kernel
def use(tmp: In[T], y: Out[T]):
    tl.store(y, tl.add(tl.load(tmp), 1.0))


def data(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).random((n, 8, 8), dtype=np.float32)


def running_sum(parts: list[np.ndarray]) -> np.ndarray:
    """The sum in the order the tasks add them, in float32, from zeros."""
    total = np.zeros((8, 8), np.float32)
    for p in parts:
        total = total + p
    return total


def summed_then_emitted(x: np.ndarray, acc: Tensor, y: Tensor):
    X = Tensor(data=x)

    @workload
    def w():
        for t in P.seq(Dense[len(x)]()):
            accumulate[t](x=X[t], acc=acc)
        emit(acc=acc, y=y)

    return w()


# -- the finding: a sum dealt over cores, read back on one ----------------------------------------------------------
def test_a_sum_dealt_over_four_cores_and_read_on_one_is_refused_at_the_read():
    """Each core sums its own tasks in its own copy; emit (on core 0) would read core 0's partial sum (2 of 8 tiles)
    and the other cores' partial sums reach no task: refused at emit's line, naming every copy it misses."""
    x = data(8, 1)
    acc = Tensor(shape=(8, 8), dtype=F32, location=Location.UB, name="acc")
    Y = Tensor(shape=(8, 8), dtype=F32)
    prog = summed_then_emitted(x, acc, Y).dispatch(DispatchPolicy.round_robin(4)).vector_unit(0).compile()
    with pytest.raises(SimulationError) as e:
        prog.execute()
    err = e.value
    assert err.what == (
        "task 8 (emit) reads on-chip tensor 'acc' on core 0 AIV0, but never sees the values written to it on core 1 "
        "AIV0 (task 5 (accumulate)), core 2 AIV0 (task 6 (accumulate)) and core 3 AIV0 (task 7 (accumulate)), which "
        "come before the read in program order: each (core, unit) keeps its own copy of an on-chip tensor, so the "
        "task reads core 0 AIV0's copy alone (a partial value), and no task ever reads those writes on their own "
        "copies (they are lost).")
    assert err.hint == (
        "Keep the tasks that pass this value on one core and one unit: dispatch them to one core (e.g. "
        ".dispatch(DispatchPolicy.affinity(lambda t: 0))) with .vector_unit(0); or read each copy back on its own "
        "core and unit (a task there that writes its part to global memory, combined afterwards); or keep the value "
        "in global memory (a Tensor without location=), where the run orders the tasks that share it. Outputs left "
        "unchanged: f32[8, 8] is as before the run (a run writes its outputs only if it succeeds).")
    assert err.where is not None and err.where.code.strip() == "emit(acc=acc, y=y)"
    time = re.fullmatch(r"core 0, task 8, sim time (\d+) cycles", err.context)
    assert time is not None
    # the read's time: emit is core 0's third task, so it starts no earlier than its second one's first instruction
    timing = summed_then_emitted(x, acc, Tensor(shape=(8, 8), dtype=F32)).dispatch(
        DispatchPolicy.round_robin(4)).vector_unit(0).compile(compute_values=False).execute()
    firsts = {}
    for s in timing.trace().spans:
        firsts[s.task_id] = min(firsts.get(s.task_id, s.start), s.start)
    assert firsts[4] <= int(time.group(1)) <= firsts[8]
    assert Y.data is None  # the failed run wrote nothing


def test_the_hint_followed_sums_every_tile():
    x = data(8, 2)
    acc = Tensor(shape=(8, 8), dtype=F32, location=Location.UB, name="acc")
    Y = Tensor(shape=(8, 8), dtype=F32)
    prog = summed_then_emitted(x, acc, Y).dispatch(DispatchPolicy.affinity(lambda t: 0)).vector_unit(0).compile()
    prog.execute()
    np.testing.assert_array_equal(Y.data, running_sum(list(x)))
    assert list(prog.on_chip(acc)) == [(0, "AIV0")]


def test_the_aiv_error_says_one_vector_unit_is_not_enough_when_tasks_go_to_several_cores():
    """Without .vector_unit the run is refused at the first read of AIV1's untouched copy; when the run deals its
    tasks to several cores the hint no longer offers .vector_unit(0) as the whole fix."""
    x = data(8, 3)
    acc = Tensor(shape=(8, 8), dtype=F32, location=Location.UB, name="acc")
    with pytest.raises(SimulationError) as e:
        summed_then_emitted(x, acc, Tensor(shape=(8, 8), dtype=F32)).dispatch(
            DispatchPolicy.round_robin(4)).compile().execute()
    assert e.value.what.startswith("task 4 (accumulate) reads on-chip tensor 'acc' on core 0 AIV1, but only AIV0 of "
                                   "that core wrote it (task 0 (accumulate))")
    assert e.value.hint == (
        "A data-parallel core deals its vector tasks to its AIVs in turn. Keep the tasks that share a tile on one AIV "
        "with .vector_unit(0) (or .vector_unit(lambda t: ...): the same AIV for a tile's writer and readers), and on "
        "one core too unless each core is meant to keep a value of its own: this run deals its tasks to 4 cores, and "
        "each core keeps its own copy as well (e.g. .dispatch(DispatchPolicy.affinity(lambda t: 0)) keeps them all "
        "on core 0); or keep the value in global memory (a Tensor without location=).")
    # one core: the AIVs are the only copies, and the hint is as before
    with pytest.raises(SimulationError) as one:
        summed_then_emitted(x, acc, Tensor(shape=(8, 8), dtype=F32)).compile().execute()
    assert one.value.what.startswith("task 1 (accumulate) reads on-chip tensor 'acc' on core 0 AIV1, but only AIV0")
    assert one.value.hint.endswith(".vector_unit(0) for all), or keep the value in global memory (a Tensor without "
                                   "location=).")


def test_pinned_costs_are_refused_the_same_whatever_order_the_cores_run_in():
    """Pinned costs run each core until it blocks (core 0's emit may be computed before core 3's tasks): the check
    waits for the run's end, so it refuses the same read."""
    x = data(8, 14)
    acc = Tensor(shape=(8, 8), dtype=F32, location=Location.UB, name="acc")
    wl = summed_then_emitted(x, acc, Tensor(shape=(8, 8), dtype=F32)).dispatch(
        DispatchPolicy.round_robin(4)).vector_unit(0)
    with pytest.raises(SimulationError) as e:
        simulate(wl, PinnedCosts(), RunOptions())
    assert e.value.what.startswith("task 8 (emit) reads on-chip tensor 'acc' on core 0 AIV0, but never sees the "
                                   "values written to it on core 1 AIV0 (task 5 (accumulate)), core 2 AIV0 (task 6 "
                                   "(accumulate)) and core 3 AIV0 (task 7 (accumulate))")


def test_a_timing_only_run_computes_no_values_and_is_not_refused():
    x = data(8, 4)
    acc = Tensor(shape=(8, 8), dtype=F32, location=Location.UB, name="acc")
    prog = summed_then_emitted(x, acc, Tensor(shape=(8, 8), dtype=F32)).dispatch(
        DispatchPolicy.round_robin(4)).vector_unit(0).compile(compute_values=False)
    assert prog.execute().stats().total_cycles > 0


# -- the class: overwrites, scratch tiles, the AIC's copies ---------------------------------------------------------
def test_the_last_value_kept_on_another_core_is_refused_too():
    """Each task overwrites the tile (Out): emit would read the value of task 4, core 0's last, not task 7's."""
    x = data(8, 5)
    X = Tensor(data=x)
    acc = Tensor(shape=(8, 8), dtype=F32, location=Location.UB, name="last")

    @workload
    def w():
        for t in P.seq(Dense[8]()):
            keep[t](x=X[t], acc=acc)
        emit(acc=acc, y=Tensor(shape=(8, 8), dtype=F32))

    with pytest.raises(SimulationError) as e:
        w().dispatch(DispatchPolicy.round_robin(4)).vector_unit(0).compile().execute()
    assert e.value.what.startswith("task 8 (emit) reads on-chip tensor 'last' on core 0 AIV0, but never sees the "
                                   "values written to it on core 1 AIV0 (task 5 (keep)), core 2 AIV0 (task 6 (keep)) "
                                   "and core 3 AIV0 (task 7 (keep)), which come before the read in program order")


def test_a_scratch_tile_made_on_one_core_and_used_on_another_is_refused_at_the_first_use():
    """make[t] and use[t] alternate over two cores: every use reads core 1's untouched copy (zeros), and every value
    make wrote on core 0 is overwritten there unread."""
    x = data(4, 6)
    X = Tensor(data=x)
    tmp = Tensor(shape=(8, 8), dtype=F32, location=Location.UB, name="tmp")
    Y = Tensor(shape=(4, 8, 8), dtype=F32)

    @workload
    def w():
        for t in P(Dense[4]()):
            make[t](x=X[t], tmp=tmp)
            use[t](tmp=tmp, y=Y[t])

    with pytest.raises(SimulationError) as e:
        w().dispatch(DispatchPolicy.round_robin(2)).vector_unit(0).compile().execute()
    assert e.value.what.startswith("task 1 (use) reads on-chip tensor 'tmp' on core 1 AIV0, but never sees the values "
                                   "written to it on core 0 AIV0 (task 0 (make)), which come before the read")
    assert e.value.context.startswith("core 1, tile 0, sim time ")
    # kept together on each core (affinity by tile), each use reads its own make's value
    w().dispatch(DispatchPolicy.affinity(lambda t: t.params[0], 2)).vector_unit(0).compile().execute()
    np.testing.assert_array_equal(Y.data, x * np.float32(2.0) + np.float32(1.0))


TC = Tile[16, 16, F32]


@kernel
def mm_acc(a: In[Tile[16, 16, F16]], b: In[Tile[16, 16, F16]], acc: InOut[TC]):
    tl.store(acc, tl.matmul(tl.load(a), tl.load(b), tl.load(acc)))


@kernel
def drain(acc: In[TC], y: Out[TC]):
    tl.store(y, tl.load(acc))


def test_an_l0c_accumulator_dealt_over_two_cores_is_refused_naming_the_aic_copy():
    rng = np.random.default_rng(7)
    a, b = (rng.random((4, 16, 16)) - 0.5).astype(np.float16), (rng.random((4, 16, 16)) - 0.5).astype(np.float16)
    A, B = Tensor(data=a), Tensor(data=b)
    C = Tensor(shape=(16, 16), dtype=F32, location=Location.L0C, name="c")
    Y = Tensor(shape=(16, 16), dtype=F32)

    @workload
    def w():
        for k in P.seq(Dense[4]()):
            mm_acc[k](a=A[k], b=B[k], acc=C)
        drain(acc=C, y=Y)

    with pytest.raises(SimulationError) as e:
        w().dispatch(DispatchPolicy.round_robin(2)).compile().execute()
    assert e.value.what.startswith("task 4 (drain) reads on-chip tensor 'c' on core 0 AIC, but never sees the values "
                                   "written to it on core 1 AIC (task 3 (mm_acc)), which come before the read")
    assert "dispatch them to one core (e.g. .dispatch(DispatchPolicy.affinity(lambda t: 0)));" in e.value.hint
    assert ".vector_unit" not in e.value.hint  # (the AIC's copy: no AIV to choose)
    w().dispatch(DispatchPolicy.round_robin(1)).compile().execute()  # one core: one copy, every product in it
    expected = np.zeros((16, 16), np.float32)
    for k in range(4):
        expected = np.matmul(a[k].astype(np.float32), b[k].astype(np.float32)) + expected
    np.testing.assert_array_equal(Y.data, expected)


# -- per-copy state each copy reads back itself: runs, exact values ---------------------------------------------------
def test_partial_sums_each_core_writes_back_itself_run():
    """The same round-robin sum, then one flush per core (flush[c] lands on core c): every copy is read back on its
    own core, so nothing is lost; each Y[c] is core c's partial sum."""
    x = data(8, 8)
    X = Tensor(data=x)
    acc = Tensor(shape=(8, 8), dtype=F32, location=Location.UB, name="acc")
    Y = Tensor(shape=(4, 8, 8), dtype=F32)

    @workload
    def w():
        for t in P.seq(Dense[8]()):
            accumulate[t](x=X[t], acc=acc)
        for c in P(Dense[4]()):
            emit[c](acc=acc, y=Y[c])

    prog = w().dispatch(DispatchPolicy.round_robin(4)).vector_unit(0).compile()
    prog.execute()
    for c in range(4):
        np.testing.assert_array_equal(Y.data[c], running_sum([x[c], x[c + 4]]))
    assert sorted(prog.on_chip(acc)) == [(c, "AIV0") for c in range(4)]


@pytest.mark.parametrize("core_major", [True, False])
def test_a_per_core_accumulator_read_back_on_its_own_core_runs_in_either_program_order(core_major):
    """One accumulator tensor, used by every core for its own output tile (affinity by tile), read back by that
    core: the program may list a core's tasks together or interleave the cores' (tile-major or step-major)."""
    x = np.random.default_rng(9).random((4, 3, 8, 8), dtype=np.float32)  # 4 output tiles, 3 steps each
    X = Tensor(data=x)
    acc = Tensor(shape=(8, 8), dtype=F32, location=Location.UB, name="acc")
    Y = Tensor(shape=(4, 8, 8), dtype=F32)

    @workload
    def by_tile():
        for c, k in P(Dense[4](), Dense[3](), names=["c", "k"]):
            accumulate[c, k](x=X[c, k], acc=acc)
        for c in P(Dense[4](), names=["c"]):
            emit[c](acc=acc, y=Y[c])

    @workload
    def by_step():
        for k, c in P(Dense[3](), Dense[4](), names=["k", "c"]):
            accumulate[c, k](x=X[c, k], acc=acc)
        for c in P(Dense[4](), names=["c"]):
            emit[c](acc=acc, y=Y[c])

    w = by_tile if core_major else by_step
    prog = w().dispatch(DispatchPolicy.affinity(lambda t: t.get("c"), 4)).vector_unit(0).compile()
    prog.execute()
    for c in range(4):
        np.testing.assert_array_equal(Y.data[c], running_sum(list(x[c])))
        np.testing.assert_array_equal(prog.on_chip(acc)[(c, "AIV0")], running_sum(list(x[c])))


def test_partial_sums_no_task_reads_stay_for_the_host():
    """No task reads the sums out: the host reads each copy (program.on_chip)."""
    x = data(8, 10)
    X = Tensor(data=x)
    acc = Tensor(shape=(8, 8), dtype=F32, location=Location.UB, name="acc")

    @workload
    def w():
        for t in P.seq(Dense[8]()):
            accumulate[t](x=X[t], acc=acc)

    prog = w().dispatch(DispatchPolicy.round_robin(4)).vector_unit(0).compile()
    prog.execute()
    copies = prog.on_chip(acc)
    for c in range(4):
        np.testing.assert_array_equal(copies[(c, "AIV0")], running_sum([x[c], x[c + 4]]))


def test_a_value_started_anew_on_the_reading_core_after_the_others_wrote_is_its_own():
    """Core 1's last write is lost, but core 0 starts its value anew (Out) after it in program order: emit reads
    core 0's own value, as the program says."""
    x = data(3, 11)
    X = Tensor(data=x)
    acc = Tensor(shape=(8, 8), dtype=F32, location=Location.UB, name="acc")
    Y = Tensor(shape=(8, 8), dtype=F32)

    @workload
    def w():
        for t in P.seq(Dense[3]()):  # cores 0, 1, 0: task 2 overwrites on core 0 after core 1's task 1
            keep[t](x=X[t], acc=acc)
        emit(acc=acc, y=Y)  # task 3: core 1 under round robin; pinned to core 0 by the key below

    prog = w().dispatch(DispatchPolicy.affinity(lambda t: t.params[0] % 2 if t.params else 0, 2)).vector_unit(0)
    prog.compile().execute()
    np.testing.assert_array_equal(Y.data, x[2])


# -- pipelines: placed without the run-time check (which tiles they touch is known per task, not when placed) ------
def test_a_pipeline_reading_back_one_copy_in_place_and_another_plainly_runs():
    """Two per-core sums read back on their own cores, one by an In kernel, one by an InOut one that resets it: no
    value is lost, and both come out exact (a check at placement that counted only In reads refused it)."""
    x = np.random.default_rng(1).integers(0, 9, (8, 8, 8)).astype(np.float32)
    X, Y = Tensor(data=x), Tensor(shape=(2, 8, 8), dtype=F32)
    acc = Tensor(shape=(8, 8), dtype=F32, location=Location.UB, name="acc")
    e0, e1 = Event("d0"), Event("d1")
    s0 = process("s0").body_func(lambda: [for_each(Dense[4](), lambda t: accumulate[t](x=X[t], acc=acc)),
                                          record(e0)])
    o0 = process("o0").body_func(lambda: [synchronize(e0), for_each(Dense[1](), lambda t: emit[t](acc=acc, y=Y[0]))])
    s1 = process("s1").body_func(lambda: [for_each(Dense[4](), lambda t: accumulate[t](x=X[t + 4], acc=acc)),
                                          record(e1)])
    o1 = process("o1").body_func(lambda: [synchronize(e1),
                                          for_each(Dense[1](), lambda t: emit_reset[t](acc=acc, y=Y[1]))])
    connect(s0, o0, s1, o1).place({"s0": 0, "o0": 0, "s1": 1, "o1": 1}).compile().execute()
    np.testing.assert_array_equal(Y.data[0], x[:4].sum(axis=0))
    np.testing.assert_array_equal(Y.data[1], x[4:].sum(axis=0))


def test_a_pipeline_whose_processes_touch_other_tiles_of_one_tensor_runs():
    """'a' on core 0 fills and reads row 0; 'b' on core 1 sums into row 1 for the host (program.on_chip)."""
    x = np.random.default_rng(1).integers(0, 9, (4, 8, 8)).astype(np.float32)
    X, Y = Tensor(data=x), Tensor(shape=(4, 8, 8), dtype=F32)
    S = Tensor(shape=(2, 8, 8), dtype=F32, location=Location.UB, name="S")
    a = process("a").body(for_each(Dense[4](), lambda t: [keep[t](x=X[t], acc=S[0]), emit[t](acc=S[0], y=Y[t])]))
    b = process("b").body(for_each(Dense[4](), lambda t: accumulate[t](x=X[t], acc=S[1])))
    program = connect(a, b).place({"a": 0, "b": 1}).compile()
    program.execute()
    np.testing.assert_array_equal(Y.data, x)
    np.testing.assert_array_equal(program.on_chip(S)[(1, "AIV0")][1], x.sum(axis=0))


def test_a_pipeline_whose_every_copy_is_read_back_on_its_core_runs():
    x = data(8, 13)
    X, Y = Tensor(data=x), Tensor(shape=(2, 8, 8), dtype=F32)
    acc = Tensor(shape=(8, 8), dtype=F32, location=Location.UB, name="acc")
    procs = []
    for core in range(2):
        done = Event(f"done{core}")
        procs.append(process(f"sum{core}").body_func(
            lambda core=core, done=done: [
                for_each(Dense[4](), lambda t: accumulate[t](x=X[4 * core + t], acc=acc)), record(done)]))
        procs.append(process(f"out{core}").body_func(
            lambda core=core, done=done: [synchronize(done),
                                          for_each(Dense[1](), lambda t: emit[t](acc=acc, y=Y[core]))]))
    connect(*procs).place({"sum0": 0, "out0": 0, "sum1": 1, "out1": 1}).compile().execute()
    for core in range(2):
        np.testing.assert_array_equal(Y.data[core], running_sum(list(x[4 * core:4 * core + 4])))


# -- the bookkeeping itself: tiles of several sizes overlap ---------------------------------------------------------
def _task(i: int) -> Task:
    return Task(kernel=f"k{i}", params=[], resources={}, id=i)


def test_tiles_of_several_sizes_reach_the_tiles_they_overlap():
    """A write of the whole tensor on core 1 that no task there reads is missed by a read of one of its rows on
    core 0; once core 1 reads a row of it, it is not lost."""
    from ptort_lab.sim.on_chip import CopyFlows  # (here: the rest of the file runs without it)

    base = Tensor(shape=(2, 8, 8), dtype=F32, location=Location.UB, name="s")
    flows = CopyFlows()
    flows.access(_task(0), base, (0,), Direction.OUT, (0, "AIV0"), 10)
    flows.access(_task(1), base, (), Direction.OUT, (1, "AIV0"), 10)
    flows.access(_task(2), base, (0,), Direction.IN, (0, "AIV0"), 20)
    with pytest.raises(SimulationError) as e:
        flows.check()
    assert e.value.what.startswith("task 2 (k2) reads tile [0] of on-chip tensor 's' on core 0 AIV0, but never sees "
                                   "the values written to it on core 1 AIV0 (task 1 (k1))")
    assert e.value.context == "core 0, task 2, sim time 20 cycles"
    flows.access(_task(3), base, (1,), Direction.IN, (1, "AIV0"), 30)  # core 1 reads its value back
    flows.check()


def test_the_error_names_the_first_read_that_misses_a_lost_write():
    """Core 0 keeps a value and reads it at tasks 1, 3, 4, 5, 6; core 1 writes the tile at task 2 and nobody reads
    it there. Task 1 comes before the lost write; task 3 is the first read that misses it (not the chain's last)."""
    x = data(3, 14)
    X, Y = Tensor(data=x), Tensor(shape=(8, 8, 8), dtype=F32)
    acc = Tensor(shape=(8, 8), dtype=F32, location=Location.UB, name="acc")
    core = {0: 0, 1: 0, 2: 1, 3: 0, 4: 0, 5: 0, 6: 0}

    @workload
    def w():
        keep[0](x=X[0], acc=acc)
        emit[1](acc=acc, y=Y[1])
        keep[2](x=X[2], acc=acc)
        emit[3](acc=acc, y=Y[3])
        emit[4](acc=acc, y=Y[4])
        emit[5](acc=acc, y=Y[5])
        emit[6](acc=acc, y=Y[6])
    with pytest.raises(SimulationError) as e:
        w().dispatch(DispatchPolicy.affinity(lambda t: core[t.params[0]], 2)).vector_unit(0).compile().execute()
    assert e.value.what.startswith("task 3 (emit) reads on-chip tensor 'acc' on core 0 AIV0, but never sees the "
                                   "values written to it on core 1 AIV0 (task 2 (keep))")
    assert e.value.where is not None and "emit[3](acc=acc, y=Y[3])" in e.value.where.code
