"""Predicates: & | ~ on loop expressions, P.when / P.elif_ / P.otherwise chains and nested cond() — which tasks they
select, how they print, and an error for each misuse."""
from __future__ import annotations

import numpy as np
import pytest

from ptort_lab import (
    Channel,
    Dense,
    DSLUsageError,
    NodeKind,
    P,
    PtortTypeError,
    cond,
    connect,
    consume,
    for_each,
    process,
    send,
    task,
    workload,
)


def listed(w):
    """(task name, first axis value) of every task ``w`` lists, in program order."""
    return [(t.kernel, t.params[0]) for t in w.enumerate()]


def line_of(marker: str) -> int:
    with open(__file__) as f:
        return next(i for i, line in enumerate(f, 1) if marker in line and "line_of(" not in line)


# -- & | ~ ---------------------------------------------------------------------------------------------------------
def test_and_selects_the_tasks_where_both_hold():
    """The issue's P.when((u >= 3) & (u <= n)), with n a Python int."""
    n = 5

    @workload
    def w():
        for u in P(Dense[8](), names=["u"]):
            with P.when((u >= 3) & (u <= n)):
                task("k", [u])

    assert listed(w()) == [("k", 3), ("k", 4), ("k", 5)]


def test_or_and_not_and_two_loop_variables():
    @workload
    def w():
        for b, s in P(Dense[3](), Dense[3](), names=["b", "s"]):
            with P.when((b == s) | ~(s < 2)):
                task("k", [b * 3 + s])

    assert listed(w()) == [("k", v) for v in (0, 2, 4, 5, 8)]  # the diagonal, and s == 2


def test_on_integers_and_or_are_bitwise_as_in_numpy():
    @workload
    def w():
        for t in P(Dense[8](), names=["t"]):
            with P.when((t & 1) == 0):
                task("even", [t])
            with P.when((t | 4) == t):
                task("has4", [t])

    assert [v for k, v in listed(w()) if k == "even"] == [0, 2, 4, 6]
    assert [v for k, v in listed(w()) if k == "has4"] == [4, 5, 6, 7]


def test_combined_predicates_print_with_their_operators():
    seen = []

    @workload
    def w():
        for u in P(Dense[4](), names=["u"]):
            seen.append(((u >= 3) & (u <= 5), ~(u < 2), 1 | (u == 0), True & (u > 1)))
            task("k", [u])

    w()
    assert [repr(e) for e in seen[0]] == ["((u >= 3) & (u <= 5))", "~(u < 2)", "(1 | (u == 0))", "(True & (u > 1))"]


def test_a_combined_predicate_works_in_cond_and_in_a_process_body():
    ch = Channel(name="ch", depth=2)
    made = process("made").produces(ch).body(for_each(Dense[6](), lambda t: send(ch, task("m", [t], []))))
    used = process("used").consumes(ch).body(consume(ch, lambda t: cond((t >= 1) & ~(t == 3) & (t < 5),
                                                                         task("hit", [t], []), task("miss", [t], []))))
    tasks = connect(made, used).enumerate()
    assert [(t.kernel, t.params[0]) for t in tasks if t.process == "used"] == [
        ("miss", 0), ("hit", 1), ("hit", 2), ("miss", 3), ("hit", 4), ("miss", 5)]


# -- P.when / P.elif_ / P.otherwise --------------------------------------------------------------------------------
def classify():
    @workload
    def w():
        for u in P(Dense[8](), names=["u"]):
            with P.when((u >= 3) & (u <= 5)):
                task("mid", [u])
            with P.elif_(u >= 7):
                task("hi", [u])
            with P.elif_((u == 0) | (u == 1)):
                task("lo", [u])
            with P.otherwise():
                task("other", [u])

    return w()


def test_when_elif_otherwise_runs_the_first_branch_that_holds():
    assert listed(classify()) == [("lo", 0), ("lo", 1), ("other", 2), ("mid", 3), ("mid", 4), ("mid", 5),
                                  ("other", 6), ("hi", 7)]


def test_an_elif_chain_is_nested_conds_in_the_workload_ir():
    loop = classify()
    top = loop.body
    assert top.kind is NodeKind.COND and not top.is_elif and top.has_else
    second = top.otherwise
    assert second.kind is NodeKind.COND and second.is_elif and repr(second.pred) == "(u >= 7)"
    third = second.otherwise
    assert third.is_elif and third.has_else and third.otherwise.kind is NodeKind.TASK


def test_elif_without_otherwise_and_the_first_true_branch_wins():
    @workload
    def w():
        for u in P(Dense[6](), names=["u"]):
            with P.when(u < 2):
                task("a", [u])
            with P.elif_(u < 4):  # 0 and 1 also satisfy this; the when took them
                task("b", [u])

    assert listed(w()) == [("a", 0), ("a", 1), ("b", 2), ("b", 3)]


def test_nested_cond_is_the_functional_elif():
    @workload
    def w():
        for u in P(Dense[8](), names=["u"]):
            cond((u >= 3) & (u <= 5), task("mid", [u]),
                 cond(u >= 7, task("hi", [u]),
                      cond((u == 0) | (u == 1), task("lo", [u]), task("other", [u]))))

    assert listed(w()) == listed(classify())


def test_a_chain_inside_a_chain_branch_and_a_second_chain_after_it():
    @workload
    def w():
        for u in P(Dense[4](), names=["u"]):
            with P.when(u < 2):
                with P.when(u == 0):
                    task("zero", [u])
                with P.otherwise():
                    task("one", [u])
            with P.elif_(u == 2):
                task("two", [u])
            with P.when(u == 3):  # a new chain
                task("three", [u])

    assert listed(w()) == [("zero", 0), ("one", 1), ("two", 2), ("three", 3)]


def test_callables_and_expressions_mix_across_a_chain():
    @workload
    def w():
        for u in P(Dense[5](), names=["u"]):
            with P.when(lambda t: t.get("u") % 2 == 1):
                task("odd", [u])
            with P.elif_(u == 4):
                task("four", [u])

    assert listed(w()) == [("odd", 1), ("odd", 3), ("four", 4)]


# -- misuse ----------------------------------------------------------------------------------------------------------
def build_error(body, error=DSLUsageError):
    @workload
    def w():
        for u in P(Dense[4](), names=["u"]):
            body(u)

    with pytest.raises(error) as e:
        w()
    return e.value


def test_python_and_is_refused_with_the_operators_to_use():
    e = build_error(lambda u: P.when((u >= 1) and (u <= 2)))  # the mistake under test
    assert e.what == "the symbolic expression `(u >= 1)` has no value while the workload is being built."
    assert e.hint.endswith("combine conditions with & | ~ instead of and / or / not, in parentheses: "
                           "P.when((b >= 3) & (b < 8)).")
    assert e.where is not None and e.where.lineno == line_of("# the mistake under test")


def test_forgotten_parentheses_are_refused():
    """u >= 1 & u <= 2 is u >= (1 & u) <= 2: a chained comparison, which asks for a truth value."""
    e = build_error(lambda u: P.when(u >= 1 & u <= 2))
    assert e.what == "the symbolic expression `(u >= (1 & u))` has no value while the workload is being built."
    assert "in parentheses" in e.hint


@pytest.mark.parametrize("body, what", [
    (lambda u: P.when((u < 3) & 1.5), "`(u < 3) & 1.5`: `&` combines loop expressions (conditions such as `t < 4`, "
     "or integers), not float."),
    (lambda u: P.when((lambda t: True) | (u < 3)), "`function | (u < 3)`: `|` combines loop expressions (conditions "
     "such as `t < 4`, or integers), not function."),
    (lambda u: P.when((u < 3) & "u > 1"), "`(u < 3) & 'u > 1'`: `&` combines loop expressions"),
], ids=["float", "function", "string"])
def test_combining_with_something_else_is_a_type_error(body, what):
    e = build_error(body, PtortTypeError)
    assert e.what.startswith(what)
    assert e.hint.startswith("Combine conditions on loop variables, P.when((u >= 3) & (u <= n)); for a condition "
                             "that needs the task, write the whole of it as one function: P.when(lambda t: ...).")


def elif_first(u):
    with P.elif_(u < 2):  # elif first
        task("x", [u])


def elif_after_task(u):
    task("x", [u])
    with P.elif_(u < 2):  # elif after a task
        task("y", [u])


def elif_after_otherwise(u):
    with P.when(u < 1):
        task("x", [u])
    with P.otherwise():
        task("y", [u])
    with P.elif_(u < 2):  # elif after otherwise
        task("z", [u])


def otherwise_twice(u):
    with P.when(u < 1):
        task("x", [u])
    with P.elif_(u < 3):
        task("y", [u])
    with P.otherwise():
        task("z", [u])
    with P.otherwise():  # otherwise twice
        task("w", [u])


@pytest.mark.parametrize("body, marker, what", [
    (elif_first, "# elif first", "P.elif_() must follow P.when() (or P.elif_())."),
    (elif_after_task, "# elif after a task", "P.elif_() must follow P.when() (or P.elif_())."),
    (elif_after_otherwise, "# elif after otherwise", "P.elif_() after P.otherwise(): the P.when() chain before it "
     "already has its otherwise block."),
    (otherwise_twice, "# otherwise twice", "P.otherwise() after P.otherwise(): the P.when() chain before it already "
     "has its otherwise block."),
], ids=["first", "after-task", "after-otherwise", "otherwise-twice"])
def test_a_misplaced_elif_or_otherwise_is_refused_at_its_line(body, marker, what):
    e = build_error(body)
    assert e.what == what
    assert "if / elif / else" in e.hint
    assert e.where is not None and e.where.lineno == line_of(marker)


def test_elif_needs_a_predicate_and_a_workload():
    e = build_error(lambda u: P.elif_("u < 2").__enter__(), PtortTypeError)
    assert e.what.startswith("P.elif_(pred) needs a bool, a loop expression or a function of the task, got str")
    with pytest.raises(DSLUsageError, match=r"^P.elif_\(\) used outside @workload context."):
        with P.elif_(True):
            pass


def test_not_of_an_integer_is_bitwise():
    from ptort_lab.dsl.expr import LoopVar
    assert (~LoopVar("t")).evaluate({"t": 5}) == ~5
    assert (~(LoopVar("t") < 3)).evaluate({"t": np.int64(1)}) is False
