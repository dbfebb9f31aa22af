"""Loop expressions compiled to Python functions: a tree of arithmetic on loop variables as one function call."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from .expr import _BINARY, _PLAIN, BY_NODES, BinaryExpr, Expr, LoopVar

# Operators written inline as Python operators (the same functions as ``_BINARY``'s); ``and``/``or`` call
# ``_BINARY``'s, which evaluate both sides as the tree does.
_INLINE = frozenset({"+", "-", "*", "//", "%", "<", "<=", ">", ">=", "==", "!=", "&", "|"})
# Larger or deeper trees are evaluated node by node: Python's parser limits nesting, and a tree that shares
# subtrees would be written out once per use.
MAX_INLINE_DEPTH = 40
MAX_INLINE_NODES = 64


def compile_tree(expr: BinaryExpr) -> Callable[[Mapping[str, int]], Any]:
    """``expr.evaluate`` as one function of the bindings: loop variables, constants and the operators of plain
    BinaryExprs written inline; any other expression (``ch.item``, runtime slots, a subclass) called through its own
    ``evaluate``, a u64 one through ``evaluate_nodes``. ``BY_NODES`` for a tree not written so: a subclass, a u64
    one, one too large or too deep, or one Python cannot compile."""
    if expr.__class__ not in _PLAIN or expr.u64 or not _small(expr):
        return BY_NODES
    names: dict[str, Any] = {}

    def name(value: Any) -> str:
        key = f"_c{len(names)}"
        names[key] = value
        return key

    def write(node: Any) -> str:
        if node.__class__ is LoopVar:
            return f"b[{name(node.name)}]"
        if node.__class__ in _PLAIN and not node.u64:
            if node.op in _INLINE:
                return f"({write(node.lhs)} {node.op} {write(node.rhs)})"
            if node.op in _BINARY:
                return f"{name(_BINARY[node.op])}({write(node.lhs)}, {write(node.rhs)})"
        if node.__class__ in _PLAIN:  # (u64 arithmetic, or an operator made by hand: node by node, as before)
            return f"{name(node)}.evaluate_nodes(b)"
        if isinstance(node, Expr):
            return f"{name(node)}.evaluate(b)"
        return name(node)  # a constant

    try:
        code = compile(f"def _tree(b):\n    return {write(expr)}\n", "<loop expression>", "exec")
        exec(code, names)  # noqa: S102 - text written above from the tree's operators and constants' names
    except Exception:  # noqa: BLE001 - anything Python cannot write or compile: evaluated node by node
        return BY_NODES
    fn: Callable[[Mapping[str, int]], Any] = names.pop("_tree")  # (the function holds its names, not they it)
    return fn


def _small(expr: BinaryExpr) -> bool:
    """Whether ``expr`` has at most MAX_INLINE_NODES nodes (a shared subtree counted at each use) and BinaryExprs
    nest at most MAX_INLINE_DEPTH deep (looked at iteratively, stopping at the first past either bound)."""
    count, stack = 0, [(expr, 1)]
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > MAX_INLINE_NODES or depth > MAX_INLINE_DEPTH:
            return False
        if isinstance(node, BinaryExpr):
            stack.append((node.lhs, depth + 1))
            stack.append((node.rhs, depth + 1))
    return True
