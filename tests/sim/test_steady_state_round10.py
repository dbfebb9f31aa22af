"""Round 10 of the steady state: the key holds a data-parallel run's dealer (bounded), task waits relative to the task
keyed, and the full run's band and notes."""
from collections import deque
from types import SimpleNamespace

from ptort_lab.dsl.commands import AFTER, NOT_BEFORE
from ptort_lab.sim import steady_state
from ptort_lab.sim.runner import _Dealer, _Undealt


def task(tid, kernel="pin"):
    return SimpleNamespace(id=tid, kernel=kernel)


def dealer(first, queued, ahead, core_of=lambda i, t: 0, dealt=0):
    """A dealer ``first`` tasks into a run: core 0 holds ``queued`` (ids relative to ``first``), the look-ahead
    ``ahead`` (id, gates)."""
    d = _Dealer(iter(()), core_of, 2, {})
    d.queues[0] = deque((task(first + i), ()) for i in queued)
    d.ahead = [_Undealt(task(first + i), gates) for i, gates in ahead]
    d.dealt = first + dealt
    return d


def key(d, first, t_ref):
    return steady_state._dealer_key(d, first, lambda t: t - t_ref)


def test_the_same_dealer_state_a_period_later_keys_the_same():
    a = dealer(10, [1, 2], [(3, ((AFTER, (11, 12)), (NOT_BEFORE, 500, "rate limit")))], dealt=3)
    b = dealer(40, [1, 2], [(3, ((AFTER, (41, 42)), (NOT_BEFORE, 800, "rate limit")))], dealt=3)
    assert key(a, 10, 100) == key(b, 40, 400)
    assert key(a, 10, 100) == (3, ((0, ((1, "pin", ()), (2, "pin", ()))), (1, ())),
                               ((3, "pin", ((AFTER, (1, 2)), (NOT_BEFORE, 400, "rate limit")), None),))


def test_queues_that_differ_key_differently():
    """Before, two states that differed only in what a core had queued (or the look-ahead held) keyed alike, so a
    repeat could be found where the run had not repeated."""
    base = key(dealer(10, [1, 2], []), 10, 0)
    assert key(dealer(10, [1], []), 10, 0) != base
    assert key(dealer(10, [1, 2], [], dealt=5), 10, 0) != key(dealer(10, [1, 2], [], dealt=3), 10, 0)
    assert key(dealer(10, [], [(1, ())]), 10, 0) != key(dealer(10, [], [(2, ())]), 10, 0)
    assert key(dealer(10, [], [(1, ((AFTER, (9,)),))]), 10, 0) != key(dealer(10, [], [(1, ((AFTER, (8,)),))]), 10, 0)


def test_work_stealing_counts_no_deals_and_a_pipeline_has_no_dealer():
    stealing = dealer(10, [], [(1, ())], core_of=None)
    assert key(stealing, 10, 0)[0] is None  # (its ``dealt`` stays 0: relative to the task keyed it would drift)
    assert steady_state._dealer_key(None, 10, lambda t: t) is None


def test_a_dealer_holding_more_than_it_can_key_keys_as_unlike_any_other():
    """hunt10a #2: a fixed dispatch handing one core a long run queued the others' tasks, and every key held them
    all (7.6 GB, 44 s at 20,000 tiles): past MAX_DEALT_KEYED tasks the state is keyed as unlike any other."""
    big = list(range(steady_state.MAX_DEALT_KEYED + 1))
    first, again = key(dealer(10, big, []), 10, 0), key(dealer(10, big, []), 10, 0)
    assert first != again and first != first.__class__()
    small = list(range(steady_state.MAX_DEALT_KEYED))
    assert key(dealer(10, small, []), 10, 0) == key(dealer(10, small, []), 10, 0)


# -- whole runs ------------------------------------------------------------------------------------------------------
from ptort_lab import (  # noqa: E402
    Dense,
    DispatchPolicy,
    DType,
    In,
    Out,
    P,
    PinnedCosts,
    Tensor,
    Tile,
    ascend_910b,
    kernel,
    tl,
    workload,
)

F16, F32 = DType.F16, DType.F32


@kernel
def copy8(a: In[Tile[8, 8, F32]], b: Out[Tile[8, 8, F32]]):
    tl.store(b, tl.load(a))


def figures(stats):
    return {k: v for k, v in vars(stats).items() if k not in ("execute_time_ms", "steady_state")}


def test_cores_waiting_on_each_others_tasks_extrapolate():
    """hunt10a #4: a process blocked on a task was keyed by the task's absolute id ('task 120 to finish'), so no
    two tiles matched: three dependent tasks a tile, dealt round robin, never extrapolated. Keyed relative to the
    task keyed, the run repeats every 4 tiles (222 cycles), equal to the full run."""
    n = 2_000
    X, T0, T1, Y = (Tensor(shape=(n, 8, 8), dtype=F32, name=s) for s in ("X", "T0", "T1", "Y"))

    @workload
    def w():
        for t in P(Dense[n]()):
            copy8[t](a=X[t], b=T0[t])
            copy8[t](a=T0[t], b=T1[t])
            copy8[t](a=T1[t], b=Y[t])

    program = w().dispatch(DispatchPolicy.round_robin(4)).compile(compute_values=False,
                                                                 cost_model=PinnedCosts(default_cycles=37))
    full = program.execute().stats()
    steady = program.execute(steady_state=True).stats()
    assert (steady.steady_state.extrapolated, steady.steady_state.period_tiles,
            steady.steady_state.period_cycles) == (True, 4, 222)
    assert full.total_cycles == 111_000 and figures(steady) == figures(full)


@kernel
def mm32(a: In[Tile[32, 32, F16]], b: In[Tile[32, 32, F16]], c: Out[Tile[32, 32, F32]]):
    tl.store(c, tl.matmul(tl.load(a), tl.load(b)))


def test_an_extrapolated_npu_run_has_the_full_runs_error_band_and_notes():
    """hunt10a #1: the steady state's figures left the model's use out, so a what-if machine got the validated GEMM
    band and no launch/dispatch notes."""
    n = 2_000
    A, B = (Tensor(shape=(n, 32, 32), dtype=F16, name=s) for s in "AB")
    C = Tensor(shape=(n, 32, 32), dtype=F32, name="C")

    @workload
    def w():
        for t in P(Dense[n]()):
            mm32[t](a=A[t], b=B[t], c=C[t])

    program = w().dispatch(DispatchPolicy.round_robin(4)).compile(
        compute_values=False, machine=ascend_910b.replace(l2_bytes=1 << 20))
    full = program.execute().stats()
    steady = program.execute(steady_state=True).stats()
    assert steady.steady_state.extrapolated
    assert full.error_band.low_pct is None and "l2_bytes changed from ascend_910b" in full.error_band.basis
    assert any(note.startswith("launch: ") for note in full.notes)
    assert (steady.error_band, steady.notes) == (full.error_band, full.notes)
    assert figures(steady) == figures(full)


def test_a_long_ragged_axis_is_named_short():
    """hunt10a #6: a refusal naming a Ragged axis of 3,000 rows printed every length (~9 KB)."""
    from ptort_lab import Ragged
    assert repr(Ragged(3, [1, 2, 3])) == "Ragged(3, [1, 2, 3])"
    assert repr(Ragged(3000, [4] * 3000)) == "Ragged(3000, [4, 4, 4, 4, 4, 4, ... 3,000 lengths])"


def test_a_repeat_found_too_late_to_pay_is_the_plain_run():
    """hunt10a #3: a repeat found at tile 192 of 600 made the steady state run 204 + 208 + 212 tiles on top of the
    probe (the data_parallel example: 56 s against 6.8 s for the plain run). It now runs the 600 tiles."""
    n = 600
    A, B = (Tensor(shape=(n, 32, 32), dtype=F16, name=s) for s in "AB")
    C = Tensor(shape=(n, 32, 32), dtype=F32, name="C")

    @workload
    def w():
        for t in P(Dense[n]()):
            mm32[t](a=A[t], b=B[t], c=C[t])

    program = w().dispatch(DispatchPolicy.round_robin(4)).compile(
        compute_values=False, machine=ascend_910b.replace(l2_bytes=1 << 20))
    full = program.execute().stats()
    steady = program.execute(steady_state=True).stats()
    assert not steady.steady_state.extrapolated
    assert steady.steady_state.note == (
        "steady state: the run repeats every 4 tile(s) from tile 192, but the extrapolation's runs of 204, 208 and "
        "212 tiles would take longer than the 600 tiles themselves; this is the full run.")
    assert figures(steady) == figures(full)


def test_a_task_wait_copies_and_pickles_whole():
    """review11a #4: a str subtype rebuilt from its text gave 'task task 12 to finish to finish'."""
    import copy
    import pickle

    from ptort_lab.sim.engine import TaskWait
    for made in (copy.copy(TaskWait(12)), copy.deepcopy(TaskWait(12)), pickle.loads(pickle.dumps(TaskWait(12)))):
        assert (made, made.tid, type(made)) == ("task 12 to finish", 12, TaskWait)
