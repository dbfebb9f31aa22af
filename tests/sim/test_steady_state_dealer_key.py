"""The steady-state key holds a data-parallel run's dealer: its queues and the work-stealing look-ahead."""
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
