"""Loop expressions run as one compiled function (dsl/expr_code.py): the same values and the same errors as the
tree evaluated node by node."""
from __future__ import annotations

import copy
import pickle
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ptort_lab.dsl import expr_code
from ptort_lab.dsl.expr import BY_NODES, BinaryExpr, Expr, LoopVar
from ptort_lab.errors import PtortValueError

VI, VJ = LoopVar("i"), LoopVar("j")
_OPS = ("+", "-", "*", "//", "%", "<", "<=", ">", ">=", "==", "!=", "&", "|", "and", "or")


def _trees() -> st.SearchStrategy[Any]:
    leaves = st.one_of(st.sampled_from([VI, VJ]), st.integers(-3, 5))
    return st.recursive(leaves, lambda kids: st.builds(BinaryExpr, st.sampled_from(_OPS), kids, kids),
                        max_leaves=12).filter(lambda e: isinstance(e, BinaryExpr))


def _outcome(fn: Any, bindings: dict[str, int]) -> tuple[str, Any]:
    try:
        value = fn(bindings)
    except Exception as e:  # noqa: BLE001 - the error itself is what is compared
        return type(e).__name__, str(e)
    return type(value).__name__, value


@settings(max_examples=300, deadline=None)
@given(_trees(), st.integers(-4, 6), st.integers(-4, 6))
def test_compiled_tree_matches_node_by_node(tree: BinaryExpr, i: int, j: int) -> None:
    fresh = copy.deepcopy(tree)  # (a copy has no compiled function: it is evaluated node by node below)
    depth = expr_code.MAX_INLINE_DEPTH
    expr_code.MAX_INLINE_DEPTH = 0  # (every node of the copy then keeps evaluate_nodes)
    try:
        reference = _outcome(fresh.evaluate, {"i": i, "j": j})
    finally:
        expr_code.MAX_INLINE_DEPTH = depth
    assert fresh._fn is BY_NODES
    assert _outcome(tree.evaluate, {"i": i, "j": j}) == reference
    assert tree._fn is not None and tree._fn is not BY_NODES


def test_a_division_by_zero_names_the_node_that_divides() -> None:
    e = (VI + 1) * (VJ // (VI - 2))
    assert e.evaluate({"i": 3, "j": 7}) == 28
    with pytest.raises(PtortValueError) as err:
        e.evaluate({"i": 2, "j": 7})
    assert err.value.what == "`(j // (i - 2))` divides by zero for {'i': 2, 'j': 7}."
    # as before: raised from None over the ZeroDivisionError of that node, itself chained to nothing (the compiled
    # function's failure is not in the chain)
    assert err.value.__suppress_context__ and err.value.__context__.__context__ is None


def test_a_missing_loop_variable_is_the_key_error_of_the_tree() -> None:
    e = (VI + 1) * VJ
    with pytest.raises(KeyError) as err:
        e.evaluate({"i": 3})
    assert err.value.args == ("j",)


def test_the_tree_is_compiled_once_into_one_function() -> None:
    e = (VI // 4) * 24 + VJ % 4
    assert e.evaluate({"i": 9, "j": 6}) == 50
    fn = e._fn
    assert fn is not None and fn is not BY_NODES and fn.__code__.co_filename == "<loop expression>"
    assert e.evaluate({"i": 1, "j": 1}) == 1 and e._fn is fn


def test_a_tree_too_deep_to_write_inline_is_evaluated_node_by_node() -> None:
    e: Any = VI
    for k in range(expr_code.MAX_INLINE_DEPTH + 5):
        e = e + k
    assert e.evaluate({"i": 1}) == 1 + sum(range(expr_code.MAX_INLINE_DEPTH + 5))
    assert e._fn is BY_NODES


def test_copies_and_pickles_leave_the_compiled_function_behind() -> None:
    e = (VI + 2) * VJ
    assert e.evaluate({"i": 1, "j": 5}) == 15
    for other in (copy.copy(e), copy.deepcopy(e), pickle.loads(pickle.dumps(e))):
        assert repr(other) == "((i + 2) * j)" and other._fn is None
        assert other.evaluate({"i": 2, "j": 5}) == 20


class _Counted(Expr):
    """A leaf that counts its evaluations (and can fail)."""

    __slots__ = ("calls", "fail")

    def __init__(self, fail: bool = False) -> None:
        self.calls, self.fail = 0, fail

    def evaluate(self, bindings: Any) -> Any:
        self.calls += 1
        if self.fail:
            raise KeyError("x")
        return 1


@pytest.mark.parametrize("depth", [5, 60, 900])
def test_a_failing_tree_evaluates_its_leaves_at_most_twice(depth: int) -> None:
    """Compiled once, then node by node once: never a retry per level (900 levels: as deep as the node-by-node
    evaluation went before, one frame a level)."""
    leaf = _Counted(fail=True)
    e: Any = leaf
    for k in range(depth):
        e = e + k
    with pytest.raises(KeyError):
        e.evaluate({})
    assert leaf.calls == (2 if depth <= expr_code.MAX_INLINE_DEPTH else 1)
    ok = _Counted()
    e = ok
    for _ in range(depth):
        e = e + 1
    assert e.evaluate({}) == depth + 1 and ok.calls == 1


def test_shared_subtrees_and_huge_constants_are_evaluated_as_before() -> None:
    x: Any = VI
    for _ in range(18):
        x = x + x  # (2**18 leaves when written out: evaluated node by node, as before)
    assert x.evaluate({"i": 1}) == 2**18 and x._fn is BY_NODES
    assert (VI + 10**5000).evaluate({"i": 1}) == 10**5000 + 1  # (its repr has more digits than Python will print)


def test_subclasses_and_operators_made_by_hand_are_evaluated_node_by_node() -> None:
    class Sub(BinaryExpr):
        __slots__ = ()

    assert Sub("+", VI, 2).evaluate({"i": 3}) == 5 and Sub("+", VI, 2)._fn is None
    s = Sub("*", VI, 3)
    assert s.evaluate({"i": 2}) == 6 and s._fn is BY_NODES
    assert (s + 1).evaluate({"i": 2}) == 7
    power = BinaryExpr("**", VI, 2) + 1
    with pytest.raises(KeyError) as err:
        power.evaluate({"i": 3})
    assert err.value.args == ("**",) and err.value.__context__ is None
