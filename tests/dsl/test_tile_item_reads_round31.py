"""A send to a tile channel must write its item before any task of it reads the item (round 31).

The slot a send takes still holds the item sent ``depth`` items before (at first, whatever the buffer held:
uninitialised memory on the chip), while the data-parallel twin gives every item a fresh tile. A producer that filled
``ch.item`` through an ``InOut`` (``dst += src``) gave [1, 1, 2, 2] in the pipeline and [1, 1, 1, 1] in the twin, and
neither said anything. Now the send is refused at its line, naming the kernel and the parameter; so are an ``In``
read of the item before it is written and a ``cond`` that writes it in one branch only. Writing it first and then
updating it, updating a consumed item in place, and forwarding a consumed item stay accepted, and give plain numpy's
values in the pipeline (on one core and on two) and in its twin.
"""
from __future__ import annotations

import numpy as np
import pytest

from ptort_lab import (
    Dense,
    DType,
    In,
    InOut,
    Out,
    P,
    Tensor,
    Tile,
    cond,
    for_each,
    kernel,
    sequential,
    tl,
    workload,
)
from ptort_lab.csp import Channel, connect, consume, process, send
from ptort_lab.errors import DSLUsageError, PtortError, PtortTypeError
from ptort_lab.explore import data_parallel_twin

T = Tile[4, 4, DType.F32]
N = 4


@kernel
def copy(src: In[T], dst: Out[T]):
    tl.store(dst, tl.load(src))


@kernel
def acc(src: In[T], dst: InOut[T]):  # dst += src
    tl.store(dst, tl.add(tl.load(dst), tl.load(src)))


@kernel
def double(dst: InOut[T]):
    v = tl.load(dst)
    tl.store(dst, tl.add(v, v))


@kernel
def add(a: In[T], b: In[T], dst: Out[T]):
    tl.store(dst, tl.add(tl.load(a), tl.load(b)))


@kernel
def half_copy(src: In[Tensor], dst: Out[Tensor]):  # shaped by its arguments: traced at the launch
    tl.store(dst[0:2, :], tl.load(src[0:2, :]))


STALE = ("the item's slot still holds the item sent 2 item(s) before (its slot is reused every 2), or for the first "
         "items whatever the buffer held (uninitialised memory on the chip), while the data-parallel twin gives each "
         "item a fresh tile: the numbers would depend on the depth and differ from the twin's.")


def data(seed: int = 0) -> tuple[np.ndarray, Tensor, Tensor]:
    x = np.random.default_rng(seed).standard_normal((N, 4, 4)).astype(np.float32)
    return x, Tensor(data=x.copy()), Tensor(data=np.zeros_like(x))


def refused(build) -> DSLUsageError:
    with pytest.raises(DSLUsageError) as e:
        build()
    return e.value


# -- refused: the send reads its item before writing it --------------------------------------------------------------
def test_inout_item_in_a_send_is_refused_at_the_send():
    """The repro: send(q, acc[t](src=X[t], dst=q.item)) with dst += src."""
    _, X, _ = data()
    q = Channel("q", depth=2, tile=T)
    e = refused(lambda: process("p").produces(q).body(
        for_each(Dense[N](), lambda t: send(q, acc[t](src=X[t], dst=q.item)))))
    assert e.what == ("process 'p' sends to tile channel 'q' with kernel 'acc', which reads q.item before it is "
                      "written (its parameter 'dst' is InOut[f32[4,4]], an update in place that starts from the "
                      "item): " + STALE)
    assert e.hint.startswith("Declare 'dst' Out[...] and store the whole tile from the kernel's other inputs "
                             "(tl.store(dst, v) with v computed without tl.load(dst));")
    assert "send(q, sequential(init[t](..., dst=q.item), acc[t](..., dst=q.item)), token=t)" in e.hint
    assert e.where is not None and "send(q, acc[t](src=X[t], dst=q.item))" in e.where.code


def test_in_read_of_the_item_before_a_task_writes_it_is_refused():
    """A task reads q.item (In), and only a later task of the send writes it."""
    _, X, Y = data()
    q = Channel("q", depth=2, tile=T)
    e = refused(lambda: process("p").produces(q).body(for_each(Dense[N](), lambda t: send(
        q, sequential(copy[t](src=q.item, dst=Y[t]), copy[t](src=X[t], dst=q.item)), token=t))))
    assert e.what == ("process 'p' sends to tile channel 'q' with kernel 'copy', which reads q.item before it is "
                      "written (its parameter 'src' (In[f32[4,4]]) gets q.item; no earlier task of that send writes "
                      "it): " + STALE)
    assert e.hint.startswith("Read the data where it comes from (a tensor, or the item of a channel this process "
                             "consumes) and write q.item through an Out[...] parameter;")
    assert e.where is not None and "send(" in e.where.code


def test_one_task_reading_and_writing_the_item_is_refused():
    """add[t](a=q.item, b=X[t], dst=q.item): the Out does not help, 'a' reads the slot first."""
    _, X, _ = data()
    q = Channel("q", depth=2, tile=T)
    e = refused(lambda: process("p").produces(q).body(
        for_each(Dense[N](), lambda t: send(q, add[t](a=q.item, b=X[t], dst=q.item)))))
    assert e.what.startswith("process 'p' sends to tile channel 'q' with kernel 'add', which reads q.item before it "
                             "is written (its parameter 'a' (In[f32[4,4]]) gets q.item): ")


def test_a_loop_in_the_send_whose_first_iteration_reads_the_item_is_refused():
    _, X, _ = data()
    q = Channel("q", depth=2, tile=T)
    e = refused(lambda: process("p").produces(q).body(for_each(Dense[N](), lambda t: send(
        q, for_each(Dense[2](), lambda j: acc[t](src=X[t], dst=q.item)), token=t))))
    assert "with kernel 'acc', which reads q.item before it is written" in e.what


def test_cond_reading_the_item_in_one_branch_is_refused():
    """The otherwise branch updates a slot only the then branch writes: [0, 16, 32, 64] in the pipeline,
    [0, 16, 32, 48] in the twin before the check."""
    _, X, _ = data()
    q = Channel("q", depth=2, tile=T)
    e = refused(lambda: process("p").produces(q).body(for_each(Dense[N](), lambda t: send(
        q, cond(t < 2, copy[t](src=X[t], dst=q.item), acc[t](src=X[t], dst=q.item)), token=t))))
    assert "with kernel 'acc', which reads q.item before it is written (its parameter 'dst' is InOut" in e.what


def test_cond_writing_the_item_in_one_branch_only_is_refused():
    """Items 2 and 3 handed on the stale slot (items 0 and 1 again) in the pipeline, zeros in the twin."""
    _, X, Y = data()
    q = Channel("q", depth=2, tile=T)
    e = refused(lambda: process("p").produces(q).body(for_each(Dense[N](), lambda t: send(
        q, cond(t < 2, copy[t](src=X[t], dst=q.item), copy[t](src=X[t], dst=Y[t])), token=t))))
    cond_line = e.where.lineno + 1  # the send( opens one line above its cond: the message names the cond's line
    assert e.what == (f"process 'p' sends to tile channel 'q' but writes q.item in only one branch of the cond at "
                      f"test_tile_item_reads_round31.py:{cond_line} in that send, so after the other branch the "
                      "consumer would read whatever the item's slot holds: "
                      + STALE.removeprefix("the item's slot still holds "))
    assert e.hint.startswith("Write q.item (with an Out[...] parameter) in both branches, or make the send itself "
                             "conditional, cond(pred, send(q, k[t](..., dst=q.item))),")


def test_the_p_pipe_form_is_checked_too():
    _, X, Y = data()
    q = Channel("q", depth=2, tile=T)

    @workload
    def piped():
        with P.pipe():
            for_each(Dense[N](), lambda t: send(q, acc[t](src=X[t], dst=q.item)))
            consume(q, lambda t: copy[t](src=q.item, dst=Y[t]))

    e = refused(piped)
    assert "process 'stage0' sends to tile channel 'q' with kernel 'acc', which reads q.item" in e.what


def test_an_out_item_written_only_in_part_was_and_is_refused():
    """An Out item whose stores leave part of it unwritten would hand on the rest stale: the kernel's Out coverage
    check refuses it where the send launches it."""
    _, X, _ = data()
    q = Channel("q", depth=2, tile=T)
    with pytest.raises(PtortTypeError) as e:
        process("p").produces(q).body(for_each(Dense[N](), lambda t: send(q, half_copy[t](src=X[t], dst=q.item))))
    assert "stores into only part of its Out parameter 'dst' (f32[4,4]): dst[2:4, :] is never written" in e.value.what


# -- accepted: the item is written first, or it is the consumer's ----------------------------------------------------
def runs(producer_body, consumer_body, Y: Tensor) -> list[np.ndarray]:
    """Y after the pipeline on one core, on two cores, and after its data-parallel twin."""
    q = Channel("q", depth=2, tile=T)
    p = process("p").produces(q).body(for_each(Dense[N](), lambda t: producer_body(q, t)))
    c = process("c").consumes(q).body(consume(q, lambda t: consumer_body(q, t)))
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


def test_writing_the_item_then_updating_it_in_place_is_accepted():
    x, X, Y = data(1)
    got = runs(lambda q, t: send(q, sequential(copy[t](src=X[t], dst=q.item), acc[t](src=X[t], dst=q.item)),
                                 token=t),
               lambda q, t: copy[t](src=q.item, dst=Y[t]), Y)
    for y in got:
        np.testing.assert_array_equal(y, x + x)


def test_reading_the_item_after_a_task_of_the_send_wrote_it_is_accepted():
    x, X, Y = data(2)
    Z = Tensor(data=np.zeros_like(x))
    got = runs(lambda q, t: send(q, sequential(copy[t](src=X[t], dst=q.item), add[t](a=q.item, b=X[t], dst=Z[t])),
                                 token=t),
               lambda q, t: copy[t](src=q.item, dst=Y[t]), Y)
    for y in got:
        np.testing.assert_array_equal(y, x)
    np.testing.assert_array_equal(Z.data, x + x)


def test_cond_writing_the_item_in_both_branches_is_accepted():
    x, X, Y = data(3)
    got = runs(lambda q, t: send(q, cond(t < 2, copy[t](src=X[t], dst=q.item), add[t](a=X[t], b=X[t], dst=q.item)),
                                 token=t),
               lambda q, t: copy[t](src=q.item, dst=Y[t]), Y)
    want = np.concatenate([x[:2], x[2:] + x[2:]])
    for y in got:
        np.testing.assert_array_equal(y, want)


def test_a_constant_cond_counts_only_its_branch():
    x, X, Y = data(4)
    got = runs(lambda q, t: send(q, cond(True, copy[t](src=X[t], dst=q.item)), token=t),
               lambda q, t: copy[t](src=q.item, dst=Y[t]), Y)
    for y in got:
        np.testing.assert_array_equal(y, x)


def test_a_consumer_may_update_the_item_it_consumes_in_place():
    """The slot is the consumer's until its body ends, and the next send to it writes it whole: no stale value can
    reach anyone, so an InOut (or Out) on a consumed item is scratch space, not refused."""
    x, X, Y = data(5)
    got = runs(lambda q, t: send(q, copy[t](src=X[t], dst=q.item)),
               lambda q, t: sequential(double[t](dst=q.item), copy[t](src=q.item, dst=Y[t])), Y)
    for y in got:
        np.testing.assert_array_equal(y, x + x)


def test_forwarding_a_consumed_item_into_the_next_channel_is_accepted():
    """send(b, copy[t](src=a.item, dst=b.item)) reads a's item (consumed), writes b's: the docs' form."""
    x, X, Y = data(6)
    a = Channel("a", depth=2, tile=T)
    b = Channel("b", depth=2, tile=T)
    p1 = process("p1").produces(a).body(for_each(Dense[N](), lambda t: send(a, copy[t](src=X[t], dst=a.item))))
    p2 = process("p2").consumes(a).produces(b).body(
        consume(a, lambda t: send(b, add[t](a=a.item, b=a.item, dst=b.item))))
    p3 = process("p3").consumes(b).body(consume(b, lambda t: copy[t](src=b.item, dst=Y[t])))
    pipe = connect(p1, p2, p3)
    pipe.compile().execute()
    np.testing.assert_array_equal(Y.data, x + x)
    Y.data[...] = 0
    data_parallel_twin(pipe, 2).compile().execute()
    np.testing.assert_array_equal(Y.data, x + x)


def test_a_loop_filling_the_item_at_its_first_iteration_and_accumulating_after_is_accepted():
    """The K-loop of a reduction: cond(k == 0, copy into the item, add into it) over K. Every read of the item
    follows a write of an earlier iteration (a cond's branch inside a loop that writes the item may run only in
    later iterations); the sum over K, as plain numpy gives it."""
    k_steps = 3
    x = np.random.default_rng(5).standard_normal((N, k_steps, 4, 4)).astype(np.float32)
    X, Y = Tensor(data=x.copy()), Tensor(data=np.zeros((N, 4, 4), np.float32))
    got = runs(lambda q, t: send(q, for_each(Dense[k_steps](), lambda k: cond(
        k == 0, copy[t, k](src=X[t, k], dst=q.item), acc[t, k](src=X[t, k], dst=q.item))), token=t),
               lambda q, t: copy[t](src=q.item, dst=Y[t]), Y)
    want = x[:, 0] + x[:, 1] + x[:, 2]  # (the pipeline adds in this order)
    for y in got:
        np.testing.assert_array_equal(y, want)


def test_a_loop_whose_body_reads_the_item_before_its_own_write_is_still_refused():
    """sequential(acc, copy) over K: the first iteration reads the item before anything wrote it, whatever the
    later ones do."""
    x = np.zeros((N, 2, 4, 4), np.float32)
    X, Z = Tensor(data=x), Tensor(data=x.copy())
    q = Channel("q", depth=2, tile=T)
    e = refused(lambda: process("p").produces(q).body(for_each(Dense[N](), lambda t: send(q, for_each(
        Dense[2](), lambda k: sequential(acc[t, k](src=X[t, k], dst=q.item), copy[t, k](src=Z[t, k], dst=q.item))),
        token=t))))
    assert e.what.startswith("process 'p' sends to tile channel 'q' with kernel 'acc', which reads q.item before it "
                             "is written (its parameter 'dst' is InOut[f32[4,4]]")


def test_an_index_out_of_bounds_says_the_default_name_is_the_users_loop_variable():
    """The user wrote `for t in P(...)`; the message's index is P's own name for it, b: the hint says so."""
    X, Z = Tensor(shape=(8, 4, 4), dtype=DType.F32), Tensor(shape=(8, 4, 4), dtype=DType.F32)

    @workload
    def w():
        for t in P(Dense[9]()):
            copy[t](src=X[t], dst=Z[t])
    with pytest.raises(PtortError) as e:
        w().compile(compute_values=False).execute()
    assert e.value.what == "index b = 8 is out of bounds for dimension 0 of Tensor(f32[8, 4, 4]) (size 8)."
    assert e.value.hint == ("Keep the loop axis within 0..7. ('b' is the name P(...) gives a loop variable, as in "
                            "t.get('b'): your own name for it at the line above; P(..., names=[...]) makes messages "
                            "use yours.)")
