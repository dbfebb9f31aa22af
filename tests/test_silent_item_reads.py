"""A loop in a send whose first iteration reads the item before anything wrote it is refused (no silent stale read).

Before: inside a loop whose body writes the sent item, a cond's branches were taken to possibly follow an earlier
iteration's write, so the K-loop ``cond(k == 0, init, acc)`` was accepted (right) and ``cond(k == 1, init, acc)``
over ``range(K)`` was accepted too (wrong): its first iteration updates whatever the item's slot held. The partial
sums a producer saved at k = 0 were [1, 1, 3, 3] in the pipeline (depth 2: items 2 and 3 start from items 0 and 1)
and [1, 1, 1, 1] in its data-parallel twin, and nothing said so. Now the cond's condition is evaluated at the loop's
first iteration when the loop's first point and the condition are known when the send is built; what cannot be
decided there (a condition on the token t, a function of the task) keeps the rule from before.
"""
from __future__ import annotations

import numpy as np
import pytest

from ptort_lab import Dense, DenseDyn, DType, In, InOut, Out, Tensor, Tile, cond, for_each, kernel, sequential, tl
from ptort_lab.csp import Channel, connect, consume, process, send
from ptort_lab.errors import DSLUsageError
from ptort_lab.explore import data_parallel_twin

T = Tile[4, 4, DType.F32]
N, K = 4, 3


@kernel
def copy(src: In[T], dst: Out[T]):
    tl.store(dst, tl.load(src))


@kernel
def acc(src: In[T], dst: InOut[T]):  # dst += src
    tl.store(dst, tl.add(tl.load(dst), tl.load(src)))


STALE = ("the item's slot still holds the item sent 2 item(s) before (its slot is reused every 2), or for the first "
         "items whatever the buffer held (uninitialised memory on the chip), while the data-parallel twin gives each "
         "item a fresh tile: the numbers would depend on the depth and differ from the twin's.")


def refused(build) -> DSLUsageError:
    with pytest.raises(DSLUsageError) as e:
        build()
    return e.value


def runs(send_value, x: np.ndarray, extra: Tensor | None = None) -> list[np.ndarray]:
    """What the consumer receives (Y) on one core, on two cores and in the data-parallel twin, for items made by
    send(q, send_value(q, X, t), token=t) with X holding ``x``."""
    X, Y = Tensor(data=x.copy()), Tensor(data=np.zeros((N, 4, 4), np.float32))
    q = Channel("q", depth=2, tile=T)
    p = process("p").produces(q).body(for_each(Dense[N](), lambda t: send(q, send_value(q, X, t), token=t)))
    c = process("c").consumes(q).body(consume(q, lambda t: copy[t](src=q.item, dst=Y[t])))
    pipe = connect(p, c)
    out = []
    for place in ("shared", {"p": 0, "c": 1}):
        Y.data[...] = 0
        pipe.place(place).compile().execute()
        out.append(Y.data.copy())
    Y.data[...] = 0
    data_parallel_twin(pipe, 2).compile().execute()
    out.append(Y.data.copy())
    return out


def kx(seed: int, k_steps: int = K) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((N, k_steps, 4, 4)).astype(np.float32)


# -- refused: the first iteration surely reads first -----------------------------------------------------------------
def test_the_repro_k_eq_1_init_over_range_k_was_a_silent_stale_read_and_is_refused():
    """The repro: the partial sum saved at k = 0 came from the slot's stale item ([1, 1, 3, 3] vs the twin's
    [1, 1, 1, 1]); now refused at the send, naming the cond, its line, and the first iteration's k."""
    x = np.ones((N, K, 4, 4), np.float32)
    X, Z = Tensor(data=x), Tensor(data=np.zeros_like(x))
    q = Channel("q", depth=2, tile=T)
    e = refused(lambda: process("p").produces(q).body(for_each(Dense[N](), lambda t: send(q, for_each(
        Dense[K](), lambda k: sequential(
            cond(k == 1, copy[t, k](src=X[t, k], dst=q.item), acc[t, k](src=X[t, k], dst=q.item)),
            copy[t, k](src=q.item, dst=Z[t, k]))), token=t))))
    cond_line = e.where.lineno + 2
    assert e.what == ("process 'p' sends to tile channel 'q' with kernel 'acc', which reads q.item before it is "
                      "written (its parameter 'dst' is InOut[f32[4,4]], an update in place that starts from the item; "
                      "no earlier task of that send writes it; at the first iteration of the loop in the send (k = 0) "
                      f"the cond `k == 1` at test_silent_item_reads.py:{cond_line} runs its otherwise branch, which "
                      "reads the item before any task has written it): " + STALE)
    assert e.hint.startswith("Make the branch that the first iteration runs write q.item whole through an Out[...] "
                             "parameter, as a K-loop does: cond(k == 0, init[t, k](..., dst=q.item), "
                             "acc[t, k](..., dst=q.item)). Or: declare 'dst' Out[...]")
    assert e.where is not None and "send(q, for_each(" in e.where.code


def test_k_eq_1_init_acc_over_range_k_is_refused():
    """The plain off-by-one K-loop: its k = 0 update starts from the stale slot (then k = 1 overwrites it)."""
    x = kx(0)
    e = refused(lambda: runs(lambda q, X, t: for_each(Dense[K](), lambda k: cond(
        k == 1, copy[t, k](src=X[t, k], dst=q.item), acc[t, k](src=X[t, k], dst=q.item))), x))
    assert "the cond `k == 1` at test_silent_item_reads.py:" in e.what
    assert "runs its otherwise branch, which reads the item before any task has written it): " + STALE in e.what


@pytest.mark.parametrize("pred", [lambda k: k >= 1, lambda k: k != 0, lambda k: ~(k < 1), lambda k: k % 2 == 1])
def test_other_conditions_false_at_k_0_are_refused(pred):
    x = kx(1)
    e = refused(lambda: runs(lambda q, X, t: for_each(Dense[K](), lambda k: cond(
        pred(k), copy[t, k](src=X[t, k], dst=q.item), acc[t, k](src=X[t, k], dst=q.item))), x))
    assert "at the first iteration of the loop in the send (k = 0)" in e.what


def test_the_reading_branch_as_then_is_refused_too():
    x = kx(2)
    e = refused(lambda: runs(lambda q, X, t: for_each(Dense[K](), lambda k: cond(
        k < 1, acc[t, k](src=X[t, k], dst=q.item), copy[t, k](src=X[t, k], dst=q.item))), x))
    assert "the cond `k < 1` at test_silent_item_reads.py:" in e.what and "runs its then branch" in e.what


def test_nested_loops_are_decided_at_their_first_iteration_together():
    """for k: for j: cond((k == 0) & (j == 1), init, acc): k = 0, j = 0 updates an unwritten item."""
    x = np.random.default_rng(3).standard_normal((N, 2, 2, 4, 4)).astype(np.float32)
    e = refused(lambda: runs(lambda q, X, t: for_each(Dense[2](), lambda k: for_each(Dense[2](), lambda j: cond(
        (k == 0) & (j == 1), copy[t, k, j](src=X[t, k, j], dst=q.item),
        acc[t, k, j](src=X[t, k, j], dst=q.item)))), x))
    assert "at the first iteration of the loop in the send (k = 0, j = 0) the cond `(k == 0) & (j == 1)`" in e.what


def test_a_dense_dyn_loop_of_a_static_size_is_decided():
    x = kx(4)
    e = refused(lambda: runs(lambda q, X, t: for_each(DenseDyn(K), lambda k: cond(
        k == 2, copy[t, k](src=X[t, k], dst=q.item), acc[t, k](src=X[t, k], dst=q.item))), x))
    assert "the cond `k == 2`" in e.what


def test_a_loop_over_a_list_starts_at_its_first_entry():
    """select over [2, 0, 1]: the first iteration is k = 2, so cond(k == 0, init, acc) updates first."""
    from ptort_lab import select
    x = kx(5)
    e = refused(lambda: runs(lambda q, X, t: select([2, 0, 1], lambda k: cond(
        k == 0, copy[t, k](src=X[t, k], dst=q.item), acc[t, k](src=X[t, k], dst=q.item))), x))
    assert "at the first iteration of the loop in the send (k = 2) the cond `k == 0`" in e.what


# -- accepted: a write precedes every read; numbers as plain numpy's ------------------------------------------------
@pytest.mark.parametrize("pred", [lambda k: k == 0, lambda k: k < 1, lambda k: ~(k > 0), lambda k: (k == 0) | (k == 5)])
def test_the_k_loop_initialising_at_k_0_is_accepted(pred):
    x = kx(6)
    for y in runs(lambda q, X, t: for_each(Dense[K](), lambda k: cond(
            pred(k), copy[t, k](src=X[t, k], dst=q.item), acc[t, k](src=X[t, k], dst=q.item))), x):
        np.testing.assert_array_equal(y, x[:, 0] + x[:, 1] + x[:, 2])


def test_the_k_loop_with_its_branches_swapped_is_accepted():
    x = kx(7)
    for y in runs(lambda q, X, t: for_each(Dense[K](), lambda k: cond(
            k > 0, acc[t, k](src=X[t, k], dst=q.item), copy[t, k](src=X[t, k], dst=q.item))), x):
        np.testing.assert_array_equal(y, x[:, 0] + x[:, 1] + x[:, 2])


def test_a_write_before_the_loop_makes_any_condition_valid():
    """init before the loop, then cond(k == 1, init, acc): every read follows the first write."""
    x = kx(8)
    for y in runs(lambda q, X, t: sequential(copy[t, 0](src=X[t, 0], dst=q.item), for_each(Dense[K](), lambda k: cond(
            k == 1, copy[t, k](src=X[t, k], dst=q.item), acc[t, k](src=X[t, k], dst=q.item)))), x):
        np.testing.assert_array_equal(y, x[:, 1] + x[:, 2])


def test_two_conds_one_writing_at_k_0_one_updating_after_are_accepted():
    """sequential(cond(k == 0, init), cond(k >= 1, acc)): the update's branch never runs before the init's."""
    x = kx(9)
    for y in runs(lambda q, X, t: for_each(Dense[K](), lambda k: sequential(
            cond(k == 0, copy[t, k](src=X[t, k], dst=q.item)),
            cond(k >= 1, acc[t, k](src=X[t, k], dst=q.item)))), x):
        np.testing.assert_array_equal(y, x[:, 0] + x[:, 1] + x[:, 2])


def test_nested_k_loop_initialising_at_the_first_point_is_accepted():
    x = np.random.default_rng(10).standard_normal((N, 2, 2, 4, 4)).astype(np.float32)
    for y in runs(lambda q, X, t: for_each(Dense[2](), lambda k: for_each(Dense[2](), lambda j: cond(
            (k == 0) & (j == 0), copy[t, k, j](src=X[t, k, j], dst=q.item),
            acc[t, k, j](src=X[t, k, j], dst=q.item)))), x):
        np.testing.assert_array_equal(y, ((x[:, 0, 0] + x[:, 0, 1]) + x[:, 1, 0]) + x[:, 1, 1])


def test_writing_the_item_at_k_0_only_is_accepted():
    """cond(k == 0, init) and nothing after: the item is the first iteration's (before, this was refused as a write
    in one branch only, though every later iteration finds the item written)."""
    x = kx(11)
    for y in runs(lambda q, X, t: for_each(Dense[K](), lambda k: cond(
            k == 0, copy[t, k](src=X[t, k], dst=q.item))), x):
        np.testing.assert_array_equal(y, x[:, 0])


def test_a_one_iteration_loop_never_runs_its_later_branch():
    """Dense[1]: only k = 0 runs, so cond(k == 0, init, acc) is init alone."""
    x = kx(12, 1)
    for y in runs(lambda q, X, t: for_each(Dense[1](), lambda k: cond(
            k == 0, copy[t, k](src=X[t, k], dst=q.item), acc[t, k](src=X[t, k], dst=q.item))), x):
        np.testing.assert_array_equal(y, x[:, 0])


# -- not decided when the send is built: the rule from before --------------------------------------------------------
def test_a_condition_on_the_token_is_not_decided_and_keeps_the_rule_from_before():
    """cond(k == t % K, ...) depends on the token t, a variable of the loop around the send: the check cannot tell
    which branch the first iteration runs, so (as before) a branch in the writing loop may follow a write. Item 0's
    k = 0 iteration runs init; the others start with an update (a limit of this check, documented in _ItemFill)."""
    x = kx(13)
    got = runs(lambda q, X, t: for_each(Dense[K](), lambda k: cond(
        k == 0 + t * 0, copy[t, k](src=X[t, k], dst=q.item), acc[t, k](src=X[t, k], dst=q.item))), x)
    for y in got:  # (t * 0: the condition mentions t, and is k == 0 for every item)
        np.testing.assert_array_equal(y, x[:, 0] + x[:, 1] + x[:, 2])


def test_a_condition_function_is_not_decided_and_keeps_the_rule_from_before():
    x = kx(14)
    got = runs(lambda q, X, t: for_each(Dense[K](), lambda k: cond(
        lambda b: b.get("k") == 0, copy[t, k](src=X[t, k], dst=q.item), acc[t, k](src=X[t, k], dst=q.item))), x)
    for y in got:
        np.testing.assert_array_equal(y, x[:, 0] + x[:, 1] + x[:, 2])


def test_the_hint_initialises_at_the_loops_first_value():
    """Over range(1, 4), `k == 0` is the refused code itself: the hint's K-loop starts at k == 1, the first value."""
    X = Tensor(data=kx(3, 4))

    def build():
        q = Channel("q", depth=2, tile=T)
        process("p").produces(q).body(for_each(Dense[N](), lambda t: send(q, for_each(range(1, 4), lambda k: cond(
            k == 0, copy[t, k](src=X[t, k], dst=q.item), acc[t, k](src=X[t, k], dst=q.item))), token=t)))
    e = refused(build)
    assert "(k = 1)" in str(e)
    assert "as a K-loop does: cond(k == 1, init[t, k](..., dst=q.item), acc[t, k](..., dst=q.item))" in e.hint
