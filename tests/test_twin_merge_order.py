"""The data-parallel twin of a merge: two producers feed one channel, and the consumer's tasks depend on the order.

``p1`` (100 cycles a task) sends items 0 and 1, ``p2`` (10 cycles a task) items 2 and 3, both to channel ``m``;
``cons`` folds each item into ``A`` with ``acc = 2*acc + M[t]`` (an InOut: the result depends on the order). With
M[t] = t, the pipeline takes the items as they arrive, 2 3 0 1 (p2's finish at 10 and 20, p1's at 100 and 200):
A = 2*(2*(2*2 + 3) + 0) + 1 = 29. The listing (connect() order) gives 0 1 2 3: A = 2*(2*(2*0 + 1) + 2) + 3 = 11.
The twin follows the pipeline run's order when it has one, and says that it cannot when it has none.
"""
from __future__ import annotations

import warnings

import numpy as np
import pytest
from source_lines import here, located

from ptort_lab import (
    Channel,
    Dense,
    DType,
    In,
    InOut,
    Out,
    Tensor,
    Tile,
    connect,
    consume,
    for_each,
    kernel,
    process,
    send,
    tl,
)
from ptort_lab.errors import PtortTypeError, PtortValueError
from ptort_lab.explore import Knobs, MergeOrderWarning, RunCache, Study, data_parallel_twin, run_study
from ptort_lab.sim.cost_model import PinnedCosts

T = Tile[4, 4, DType.F32]
OPTIONS = {"cost_model": PinnedCosts(), "channel_latency_cycles": 0}


@kernel(cycles=100)
def slow(src: In[T], dst: Out[T]):
    tl.store(dst, tl.load(src))


@kernel(cycles=10)
def fast(src: In[T], dst: Out[T]):
    tl.store(dst, tl.load(src))


@kernel(cycles=5)
def fold(src: In[T], acc: InOut[T]):
    tl.store(acc, tl.add(tl.mul(tl.load(acc), 2.0), tl.load(src)))


@kernel(cycles=5)
def copy(src: In[T], dst: Out[T]):
    tl.store(dst, tl.load(src))


def folded(order):
    """``acc = 2*acc + t`` over ``order``, by hand in numpy (M[t] = t everywhere in the tile)."""
    acc = np.zeros((4, 4), np.float32)
    for t in order:
        acc = 2 * acc + np.float32(t)
    return float(acc[0, 0])


PIPELINE_A, LISTING_A = folded([2, 3, 0, 1]), folded([0, 1, 2, 3])


def merge(consumer=fold):
    """The merge pipeline and its tensors (A: the fold's accumulator, Y: what an order-free consumer writes)."""
    x = np.arange(4, dtype=np.float32)[:, None, None] * np.ones((4, 4, 4), np.float32)
    X, M = Tensor(data=x, name="X"), Tensor(data=np.zeros((4, 4, 4), np.float32), name="M")
    A = Tensor(data=np.zeros((1, 4, 4), np.float32), name="A")
    Y = Tensor(data=np.zeros((4, 4, 4), np.float32), name="Y")
    m = Channel("m", depth=4)
    p1 = process("p1").produces(m).body(for_each(Dense[2](), lambda t: send(m, slow[t](src=X[t], dst=M[t]))))
    p2 = process("p2").produces(m).body(for_each(Dense[2](), lambda t: send(m, fast[t + 2](src=X[t + 2],
                                                                                           dst=M[t + 2]))))
    if consumer is fold:
        body = consume(m, lambda t: fold[t](src=M[t], acc=A[0]))
    else:
        body = consume(m, lambda t: copy[t](src=M[t], dst=Y[t]))
    return connect(p1, p2, process("cons").consumes(m).body(body)), A, Y


def folded_order(program):
    """The items the fold ran on, in the order the program ran them."""
    return [t.params[0] for t in program.tasks if t.kernel == "fold"]


NOTE_PARTS = ("merged channel 'm' (produced by 'p1' and 'p2', consumed by 'cons'): a merge's consumer takes the "
              "items in the order they arrive, which depends on timing, and the tasks of 'cons' depend on that order "
              "(an order-dependent accumulation, e.g. an InOut acc = 2*acc + x);",
              "so the data-parallel twin runs them in the listing's order (connect() order) and may compute a "
              "different result than the pipeline.",
              "to fix the order, give each producer its own channel and consume([a, b], ...) them (item k of each, "
              "together).")


def test_the_numbers_by_hand():
    assert (PIPELINE_A, LISTING_A) == (29.0, 11.0)


def test_the_pipeline_takes_the_items_as_they_arrive():
    pipe, A, _ = merge()
    program = pipe.compile(**OPTIONS)
    program.execute()
    assert folded_order(program) == [2, 3, 0, 1]
    assert A.data[0, 0, 0] == PIPELINE_A


def test_a_twin_given_the_run_computes_what_the_pipeline_computed():
    """With the pipeline's run, the twin lists the fold's tasks in the run's order, and says nothing."""
    pipe, A, _ = merge()
    program = pipe.compile(**OPTIONS)
    program.execute()
    A.data[...] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no MergeOrderWarning
        twin = data_parallel_twin(pipe, 2, run=program).compile(cost_model=PinnedCosts())
    twin.execute()
    assert folded_order(twin) == [2, 3, 0, 1]
    assert A.data[0, 0, 0] == PIPELINE_A
    np.testing.assert_array_equal(A.data, np.full((1, 4, 4), PIPELINE_A, np.float32))


def test_a_twin_without_a_run_says_it_keeps_the_listings_order():
    """Without a run the twin keeps the listing's order (A = 11, not the pipeline's 29) and warns, at the caller's
    line, naming the merged channel, its producers and consumer, and how to avoid it."""
    pipe, A, _ = merge()
    with pytest.warns(MergeOrderWarning) as caught:
        line = here() + 1
        twin = data_parallel_twin(pipe, 2)
    [w] = caught.list
    text = str(w.message)
    for part in NOTE_PARTS:
        assert part in text, text
    assert "there is no pipeline run whose order the twin could follow, so" in text
    assert "To follow the pipeline's order, use data_parallel_twin(pipeline, cores, run=program);" in text
    assert (w.filename, w.lineno) == (__file__, line)
    program = twin.compile(cost_model=PinnedCosts())
    program.execute()
    assert folded_order(program) == [0, 1, 2, 3]
    assert A.data[0, 0, 0] == LISTING_A


def test_a_run_that_kept_no_trace_cannot_give_its_order():
    pipe, A, _ = merge()
    program = pipe.compile(**OPTIONS)
    program.execute(keep_trace=False)
    with pytest.warns(MergeOrderWarning) as caught:
        data_parallel_twin(pipe, 2, run=program)
    text = str(caught.list[0].message)
    assert ("the pipeline run kept no trace (execute(keep_trace=False)), so the order it took them in is not known, "
            "so the data-parallel twin runs them in the listing's order") in text


def test_run_study_data_parallel_says_so_on_the_comparison():
    """mode='data-parallel' runs no pipeline: the twin computes A = 11, and the Comparison's note (and summary)
    say why and how to get the pipeline's order."""
    pipe, A, _ = merge()
    c = run_study(pipe, Knobs(cores=2), "data-parallel", **OPTIONS)
    assert A.data[0, 0, 0] == LISTING_A
    for part in NOTE_PARTS:
        assert part in c.note, c.note
    assert "there is no pipeline run whose order the twin could follow" in c.note
    assert "To follow the pipeline's order, use mode='both' (the twin then follows the pipeline run);" in c.note
    assert f"  ({c.note})" in c.summary().splitlines()


def test_run_study_both_follows_the_pipeline_run():
    pipe, A, _ = merge()
    c = run_study(pipe, Knobs(cores=2), "both", **OPTIONS)
    assert c.note == ""
    assert A.data[0, 0, 0] == PIPELINE_A  # the pipeline computed the values, the twin ran timing-only
    assert folded_order(c.pipeline) == folded_order(c.data_parallel) == [2, 3, 0, 1]


def test_run_study_data_parallel_of_a_program_that_ran_follows_its_run():
    pipe, A, _ = merge()
    program = pipe.compile(**OPTIONS)
    program.execute()
    c = run_study(program, Knobs(cores=2), "data-parallel")
    assert c.note == ""
    assert A.data[0, 0, 0] == PIPELINE_A
    assert folded_order(c.data_parallel) == [2, 3, 0, 1]


def test_a_cached_pipeline_run_of_an_equal_build_gives_its_order():
    """The explorer's RunCache answers the pipeline of a rebuilt (equal) pipeline with the earlier run: its tasks
    are matched to the new build's by content, so the twin still follows the pipeline's order."""
    study = Study(lambda: merge()[0], mode="both", cache=RunCache(), compute_values=False, **OPTIONS)
    first = study.run()
    second = study.run()
    assert second.pipeline is first.pipeline  # the cached run
    assert second.note == ""
    assert folded_order(second.data_parallel) == [2, 3, 0, 1]


def test_an_order_free_merge_is_left_as_it_was():
    """A consumer whose tasks of different items touch different tiles (Y[t]) does not depend on the order: the
    twin keeps the listing's order, with or without a run, and warns of nothing."""
    pipe, _, Y = merge(consumer=copy)
    program = pipe.compile(**OPTIONS)
    program.execute()
    expected = np.arange(4, dtype=np.float32)[:, None, None] * np.ones((4, 4, 4), np.float32)
    np.testing.assert_array_equal(Y.data, expected)
    Y.data[...] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        twins = [data_parallel_twin(pipe, 2), data_parallel_twin(pipe, 2, run=program)]
    for twin in twins:
        assert [(t.kernel, t.params) for t in twin.enumerate()] == [(t.kernel, t.params) for t in pipe.enumerate()]
    twin_run = twins[0].compile(cost_model=PinnedCosts())
    twin_run.execute()
    np.testing.assert_array_equal(Y.data, expected)
    assert run_study(pipe, Knobs(cores=2), "data-parallel", **OPTIONS).note == ""


def test_run_must_be_a_program_that_ran():
    pipe, _, _ = merge()
    with pytest.raises(PtortTypeError) as e:
        line = here() + 1
        data_parallel_twin(pipe, 2, run=pipe)
    assert e.value.what.startswith(f"data_parallel_twin(run=...) takes the pipeline's Program, got "
                                   f"{type(pipe).__name__} ")
    assert e.value.hint == ("Pass the Program that ran the pipeline: program = pipeline.compile(); "
                            "program.execute(); data_parallel_twin(pipeline, 4, run=program).")
    located(e, line)
    with pytest.raises(PtortValueError) as e:
        line = here() + 1
        data_parallel_twin(pipe, 2, run=pipe.compile(**OPTIONS))
    located(e, line)
    assert "data_parallel_twin(run=...) takes a Program that has run, but this one has not run yet" in e.value.what
    assert e.value.hint == "Call program.execute() first, then data_parallel_twin(pipeline, 4, run=program)."
