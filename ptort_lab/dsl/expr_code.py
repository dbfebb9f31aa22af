"""Loop expressions compiled to Python functions: a tree of arithmetic on loop variables as one function call."""
from __future__ import annotations

from typing import Any, Callable, Mapping

from .expr import _BINARY, BinaryExpr, Expr, LoopVar, _IdentityTruth

# Operators written inline as Python operators (the same functions as ``_BINARY``'s); ``and``/``or`` call
# ``_BINARY``'s, which evaluate both sides as the tree does.
_INLINE = frozenset({"+", "-", "*", "//", "%", "<", "<=", ">", ">=", "==", "!=", "&", "|"})
MAX_INLINE_DEPTH = 40  # deeper trees are evaluated node by node (Python's parser limits nesting)


def compile_tree(expr: BinaryExpr) -> Callable[[Mapping[str, int]], Any]:
    """``expr.evaluate`` as one function of the bindings: loop variables, constants and the operators of plain
    BinaryExprs written inline; any other expression (slot_u64 arithmetic, ``ch.item``, runtime slots, a subclass)
    called through its own ``evaluate``. Trees too deep to write inline, or u64 ones, keep ``evaluate_nodes``."""
    if expr.u64 or _depth(expr) > MAX_INLINE_DEPTH:
        return expr.evaluate_nodes
    source = _Source()
    fn = source.function("_tree", [f"    return {source.write(expr)}"], repr(expr))
    return fn if fn is not None else expr.evaluate_nodes


class _Source:
    """The text of one generated function and the constants it names."""

    def __init__(self) -> None:
        self.names: dict[str, Any] = {}

    def name(self, value: Any) -> str:
        key = f"_c{len(self.names)}"
        self.names[key] = value
        return key

    def write(self, node: Any) -> str:
        """``node``'s value as a Python expression of ``b`` (the bindings)."""
        if type(node) is LoopVar:
            return f"b[{self.name(node.name)}]"
        if type(node) in (BinaryExpr, _IdentityTruth) and not node.u64:
            lhs, rhs = self.write(node.lhs), self.write(node.rhs)
            if node.op in _INLINE:
                return f"({lhs} {node.op} {rhs})"
            if node.op in _BINARY:
                return f"{self.name(_BINARY[node.op])}({lhs}, {rhs})"
        if isinstance(node, Expr):
            return f"{self.name(node)}.evaluate(b)"
        return self.name(node)  # a constant

    def function(self, fn_name: str, body: list[str], label: str) -> Any:
        """The function ``fn_name(b)`` of ``body``'s lines, or None when Python cannot compile it."""
        text = "\n".join([f"def {fn_name}(b):", *body]) + "\n"
        try:
            code = compile(text, f"<loop expression {label}>", "exec")
        except (SyntaxError, RecursionError, MemoryError, ValueError):
            return None
        exec(code, self.names)  # noqa: S102 - text written above from the tree's operators and constants' names
        return self.names[fn_name]


def _depth(node: Any) -> int:
    """How deeply BinaryExprs nest in ``node`` (iteratively: a tree may be deeper than Python's recursion limit)."""
    deepest, stack = 0, [(node, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, BinaryExpr):
            deepest = max(deepest, depth)
            if deepest > MAX_INLINE_DEPTH:
                return deepest
            stack.append((item.lhs, depth + 1))
            stack.append((item.rhs, depth + 1))
    return deepest
