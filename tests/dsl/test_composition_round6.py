"""Composition (round 6): a combinator copy returned from a body takes its node's place, what a @workload body may
return, schedules on parts refused, pipelines nested in combine()/sequential()/cond() refused at that line, what
orders a data-parallel run (P.seq, for_each, sequential), and slot_u64 arithmetic kept in range."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest
from source_lines import here, located

from ptort_lab import (
    Channel,
    Dense,
    DispatchPolicy,
    DSLUsageError,
    DType,
    In,
    InOut,
    Out,
    P,
    PinnedCosts,
    PtortTypeError,
    PtortValueError,
    TaskWindow,
    Tensor,
    Tile,
    TimingPolicy,
    combine,
    cond,
    connect,
    consume,
    for_each,
    kernel,
    parallel_for,
    process,
    send,
    sequential,
    slot_i64,
    slot_load_u64,
    slot_u64,
    task,
    tl,
    workload,
)

F32 = DType.F32


@kernel(cycles=100)
def bump(acc: InOut[Tile[4, 4, F32]]):
    tl.store(acc, tl.add(tl.load(acc), 1.0))


@kernel(cycles=100)
def copy(src: In[Tile[4, 4, F32]], dst: Out[Tile[4, 4, F32]]):
    tl.store(dst, tl.load(src))


@kernel(cycles=10)
def stage(src: In[Tile[4, 4, F32]], dst: Out[Tile[4, 4, F32]]):
    tl.store(dst, tl.load(src))


def accumulator() -> Tensor:
    return Tensor(data=np.zeros((4, 4, 4), np.float32))


def phase_of(A: Tensor) -> Any:
    """A @workload adding 1 to each of A's four tiles (InOut): a task listed twice adds 2."""
    @workload
    def phase():
        for i in P(Dense[4]()):
            bump[i](acc=A[i])
    return phase


def spans(program: Any) -> list[tuple[int, int, int]]:
    """(task id, core, start) of each span of a data-parallel run."""
    return sorted((s.task_id, s.core, s.start) for s in program.trace().spans)


# -- 1. a combinator copy returned from a body replaces the node it was made from --------------------------------------
def test_a_dispatched_copy_returned_from_a_workload_runs_each_task_once_on_the_cores_it_asks_for():
    A = accumulator()
    phase = phase_of(A)

    @workload
    def outer():
        return phase().dispatch(DispatchPolicy.round_robin(4))

    w = outer()
    assert len(w.enumerate()) == 4
    assert w.schedule.dispatch == DispatchPolicy.round_robin(4)
    p = w.compile()
    p.execute()
    np.testing.assert_array_equal(A.data, np.ones((4, 4, 4), np.float32))
    assert sorted({s.core for s in p.trace().spans}) == [0, 1, 2, 3]
    assert p.stats().total_cycles == 100


COPIES: dict[str, Callable[[Any], Any]] = {
    "named": lambda w: w.named("p1"),
    "timing": lambda w: w.timing(TimingPolicy.batched(2)),
    "task_graph": lambda w: w.task_graph(window=TaskWindow(2)),
    "streams": lambda w: w.streams(2),
    "stream_by": lambda w: w.streams(2).stream_by(lambda t: t.params[0]),
    "vector_unit": lambda w: w.vector_unit(0),
    "spatial_map": lambda w: w.spatial_map((2, 2)),
    "a copy of a copy": lambda w: w.named("p1").dispatch(DispatchPolicy.round_robin(2)),
}


@pytest.mark.parametrize("make_copy", COPIES.values(), ids=COPIES.keys())
def test_every_combinator_copy_returned_from_a_workload_lists_its_tasks_once(make_copy):
    A = accumulator()
    phase = phase_of(A)

    @workload
    def outer():
        return make_copy(phase())

    w = outer()
    assert len(w.enumerate()) == 4
    expected = make_copy(phase())  # the root is the copy, with the name and schedule it asked for
    fields = ("dispatch", "stream_count", "timing", "window", "vector_unit", "spatial_grid")
    assert w.name == expected.name
    assert [getattr(w.schedule, f) for f in fields] == [getattr(expected.schedule, f) for f in fields]
    w.compile().execute()
    np.testing.assert_array_equal(A.data, np.ones((4, 4, 4), np.float32))


def test_a_returned_copy_keeps_the_place_of_its_node_among_the_statements():
    A = accumulator()
    phase = phase_of(A)

    @workload
    def outer():
        first = task("first", [0])
        phase()
        task("last", [0])
        return first.named("renamed")

    w = outer()
    assert [t.kernel for t in w.enumerate()] == ["first"] + ["bump"] * 4 + ["last"]
    assert w.parts[0].name == "renamed"


def test_a_named_task_returned_from_a_workload_is_listed_once():
    A = accumulator()

    @workload
    def outer():
        return task(bump, [0], {"acc": A[0]}).named("x")

    w = outer()
    assert [t.kernel for t in w.enumerate()] == ["bump"]
    w.compile().execute()
    assert A.data[0, 0, 0] == 1 and A.data[1:].sum() == 0


def test_a_body_func_returning_a_named_loop_sends_each_token_once():
    ch = Channel("q", depth=2)
    X, Y = Tensor(data=np.ones((4, 4, 4), np.float32)), Tensor(shape=(4, 4, 4), dtype=F32)
    prod = process("prod").produces(ch).body_func(
        lambda: for_each(Dense[4](), lambda t: send(ch, stage[t](src=X[t], dst=Y[t]))).named("loop"))
    cons = process("cons").consumes(ch).body(consume(ch, lambda t: stage[t](src=Y[t], dst=Y[t])))
    p = connect(prod, cons).compile(cost_model=PinnedCosts())
    p.execute()
    by_process: dict[str, list[int]] = {}
    for s in sorted(p.trace().spans, key=lambda s: (s.start, s.process)):
        by_process.setdefault(s.process, []).append(s.index)
    assert by_process == {"prod": [0, 1, 2, 3], "cons": [0, 1, 2, 3]}


def test_a_copy_returned_in_a_list_or_from_a_loop_body_is_listed_once():
    A = accumulator()

    def body():
        first = task(bump, [0], {"acc": A[0]})
        return [first.named("a"), task(bump, [1], {"acc": A[1]})]

    w = for_each(Dense[1](), lambda i: body())
    assert len(w.enumerate()) == 2
    loop = parallel_for(Dense[4](), lambda i: task(bump, [i], {"acc": A[i]}).named("t"))
    assert len(loop.enumerate()) == 4
    assert loop.body.name == "t"


def test_a_copy_given_to_combine_takes_its_node_out_of_the_body():
    A = accumulator()
    phase = phase_of(A)

    @workload
    def outer():
        combine(phase().named("p"), task("other", [0]))

    w = outer()
    assert [t.kernel for t in w.enumerate()] == ["bump"] * 4 + ["other"]
    w.compile().execute()
    np.testing.assert_array_equal(A.data, np.ones((4, 4, 4), np.float32))


# -- 2. what a @workload body may return -------------------------------------------------------------------------------
def test_a_workload_body_returning_a_list_or_tuple_of_workloads_runs_them():
    A = accumulator()
    phase = phase_of(A)
    pa, pb = phase(), phase()

    @workload
    def as_list():
        return [pa, pb]

    @workload
    def as_tuple():
        return (pa, None)

    assert len(as_list().enumerate()) == 8
    assert len(as_tuple().enumerate()) == 4
    as_list().compile().execute()
    np.testing.assert_array_equal(A.data, np.full((4, 4, 4), 2, np.float32))


def test_a_workload_body_returning_anything_else_is_refused_at_the_call():
    @workload
    def outer():
        task("k", [0])
        return 42

    line = here() + 2
    with pytest.raises(PtortTypeError) as e:
        outer()
    assert e.value.what == "the body of @workload 'outer' returned int 42; it must build or return workloads."
    assert e.value.hint == "Return task(...), send(...), k[t](...) or a list of them."
    located(e, line)

    @workload
    def mixed():
        return [task("k", [0]), "k"]

    with pytest.raises(PtortTypeError, match=r"^the body of @workload 'mixed' returned str 'k'; it must build"):
        mixed()


# -- 3. a schedule on a part of another workload -----------------------------------------------------------------------
def halves() -> tuple[Any, Any]:
    X = Tensor(data=np.ones((4, 4, 4), np.float32))
    Y, Z = Tensor(shape=(4, 4, 4), dtype=F32), Tensor(shape=(4, 4, 4), dtype=F32)

    @workload
    def a():
        for i in P(Dense[4]()):
            copy[i](src=X[i], dst=Y[i])

    @workload
    def b():
        for i in P(Dense[4]()):
            copy[i](src=X[i], dst=Z[i])

    return a, b


@pytest.mark.parametrize("compose", [combine, sequential])
def test_a_dispatched_child_of_combine_or_sequential_is_refused_at_that_call(compose):
    a, b = halves()
    wa = a().dispatch(DispatchPolicy.round_robin(4))
    wb = b()
    line = here() + 2
    with pytest.raises(DSLUsageError) as e:
        compose(wa, wb)
    assert e.value.what == (
        f"workload 'a' carries its own schedule (.dispatch(DispatchPolicy.round_robin(4))) but is a part of "
        f"{compose.__name__}(){' (or of a @workload or body with several statements)' if compose is combine else ''}"
        ", where that has no effect: a run follows only the schedule of the workload it runs (the root), never a "
        "part's.")
    assert e.value.hint == ("Put the schedule on the workload you compile and run (combine(a, b).dispatch("
                            "DispatchPolicy.round_robin(4)), or my_workload().dispatch(DispatchPolicy.round_robin(4)))"
                            " and build the part without it.")
    located(e, line)


def test_the_combined_workload_takes_the_schedule():
    a, b = halves()
    p = combine(a(), b()).dispatch(DispatchPolicy.round_robin(4)).compile()
    p.execute()
    assert p.stats().total_cycles == 200  # 8 tasks of 100 cycles on 4 cores


def test_other_schedules_on_a_part_are_refused_and_spatial_map_is_not():
    a, b = halves()
    with pytest.raises(DSLUsageError, match=r"^workload 'b' carries its own schedule \(\.streams\(2\) "
                                            r"\.timing\(TimingPolicy\.batched\(2\)\)\) but is a branch of cond\(\)"):
        cond(True, a(), b().streams(2).timing(TimingPolicy.batched(2)))
    assert len(combine(a().spatial_map((2, 2)), b()).enumerate()) == 8  # spatial_map records only


def test_a_dispatched_copy_returned_next_to_other_statements_is_refused_at_the_call():
    a, b = halves()

    @workload
    def outer():
        b()
        return a().dispatch(DispatchPolicy.round_robin(4))

    line = here() + 2
    with pytest.raises(DSLUsageError, match=r"^workload 'a' carries its own schedule") as e:
        outer()
    located(e, line)


# -- 6. what orders a data-parallel run --------------------------------------------------------------------------------
def test_ordered_loops_and_sequential_list_in_order_but_only_data_orders_a_data_parallel_run():
    """As docs/explanation/semantics.md and the docstrings say: independent iterations run side by side; a shared
    InOut tile or TimingPolicy.batched(1) chains them."""
    X, Y = Tensor(data=np.ones((4, 4, 4), np.float32)), Tensor(shape=(4, 4, 4), dtype=F32)
    A = accumulator()

    @workload
    def seq_independent():
        for i in P.seq(Dense[4]()):
            copy[i](src=X[i], dst=Y[i])

    @workload
    def seq_shared():
        for i in P.seq(Dense[4]()):
            bump[i](acc=A[0])

    independent = [seq_independent(),
                   for_each(Dense[4](), lambda i: copy[i](src=X[i], dst=Y[i])),
                   sequential(*[task(copy, [i], {"src": X[i], "dst": Y[i]}) for i in range(4)])]
    rr4 = DispatchPolicy.round_robin(4)
    for w in independent:
        p = w.dispatch(rr4).compile()
        p.execute()
        assert spans(p) == [(0, 0, 0), (1, 1, 0), (2, 2, 0), (3, 3, 0)]
    p = seq_shared().dispatch(rr4).compile()
    p.execute()
    assert spans(p) == [(0, 0, 0), (1, 1, 100), (2, 2, 200), (3, 3, 300)]
    p = seq_independent().dispatch(rr4).timing(TimingPolicy.batched(1)).compile()
    p.execute()
    assert spans(p) == [(0, 0, 0), (1, 1, 100), (2, 2, 200), (3, 3, 300)]
    for doc in (P.seq.__doc__, for_each.__doc__, sequential.__doc__):
        text = " ".join((doc or "").split())
        assert "does not chain them in time" in text and "TimingPolicy.batched(1)" in text


# -- 11. a pipeline nested in combine()/sequential()/cond() ------------------------------------------------------------
def pipeline() -> Any:
    ch = Channel("q", depth=2)
    X, Y = Tensor(data=np.ones((3, 4, 4), np.float32)), Tensor(shape=(3, 4, 4), dtype=F32)
    prod = process("prod").produces(ch).body(for_each(Dense[3](), lambda t: send(ch, stage[t](src=X[t], dst=Y[t]))))
    cons = process("cons").consumes(ch).body(consume(ch, lambda t: stage[t](src=Y[t], dst=Y[t])))
    return connect(prod, cons)


def test_a_pipeline_nested_in_combine_sequential_or_cond_is_refused_at_that_line():
    pipe = pipeline()
    what = "a pipeline can only be the root of a program, not a step inside another workload."
    hint = "Compile the Pipeline itself (connect(...).compile())."
    line = here() + 2
    with pytest.raises(DSLUsageError) as e:
        combine(pipe, task("k", [0]))
    assert (e.value.what, e.value.hint) == (what, hint)
    located(e, line)
    line = here() + 2
    with pytest.raises(DSLUsageError) as e:
        sequential(task("k", [0]), pipe)
    assert (e.value.what, e.value.hint) == (what, hint)
    located(e, line)
    line = here() + 2
    with pytest.raises(DSLUsageError) as e:
        cond(True, pipe)
    assert (e.value.what, e.value.hint) == (what, hint)
    located(e, line)


# -- 9. slot_u64 arithmetic stays in the u64 range ---------------------------------------------------------------------
def slot_workload(condition: Callable[[], Any]) -> Any:
    L = Tensor(data=np.array([[3], [0], [5], [1]], dtype=np.int32))

    @workload
    def w():
        for b in P(Dense[4]()):
            slot_load_u64(0, L[b])
            with P.when(condition()):
                task("big", [b])
            with P.otherwise():
                task("small", [b])
    return w


def test_slot_u64_arithmetic_below_zero_is_refused_at_the_statement():
    w = slot_workload(lambda: slot_u64(0) - 2 < 100)
    with pytest.raises(PtortValueError) as e:
        w().enumerate()
    assert e.value.what == ("`(slot_u64(0) - 2)` is -2 for {'b': 1}, outside the unsigned 64-bit range of slot_u64 "
                            "arithmetic: the reference's u64 would wrap it around to 18446744073709551614 rather "
                            "than -2.")
    assert e.value.hint == ("Keep slot_u64 arithmetic between 0 and 2**64 - 1: compare before subtracting "
                            "(slot_u64(0) < n + 2 rather than slot_u64(0) - 2 < n), or read the slot with "
                            "slot_i64(0) for signed arithmetic.")
    assert e.value.where is not None and e.value.where.code == "with P.when(condition()):"


def test_slot_u64_arithmetic_in_range_and_slot_i64_arithmetic_still_work():
    assert [t.kernel for t in slot_workload(lambda: slot_u64(0) + 2 >= 5)().enumerate()] == \
        ["big", "small", "big", "small"]
    assert [t.kernel for t in slot_workload(lambda: slot_i64(0) - 2 < 1)().enumerate()] == \
        ["small", "big", "small", "big"]
    with pytest.raises(PtortValueError, match=r"^`~slot_u64\(0\)` is -4 for \{'b': 0\}, outside the unsigned"):
        slot_workload(lambda: ~slot_u64(0) < 5)().enumerate()
    with pytest.raises(PtortValueError, match=r"is 18446744073709551618 for \{'b': 0\}"):
        slot_workload(lambda: slot_u64(0) + (2**64 - 1) > 5)().enumerate()
