"""Loop expressions compiled to Python functions: a tree of arithmetic on loop variables as one function call."""
from __future__ import annotations

import functools
from types import CodeType
from typing import Any, Callable, Mapping

from .expr import _BINARY, _PLAIN, BY_NODES, BinaryExpr, Expr, LoopVar

# Operators written inline as Python operators (the same functions as ``_BINARY``'s); ``and``/``or`` call
# ``_BINARY``'s, which evaluate both sides as the tree does.
_INLINE = frozenset({"+", "-", "*", "//", "%", "<", "<=", ">", ">=", "==", "!=", "&", "|"})
# Larger or deeper trees are evaluated node by node: Python's parser limits nesting, and a tree that shares
# subtrees would be written out once per use.
MAX_INLINE_DEPTH = 40
MAX_INLINE_NODES = 64


class Code:
    """Python text for loop expressions over the bindings ``b``, and the names it uses for what it does not write
    out (constants, functions, expressions evaluated by their own ``evaluate``), to ``exec`` the text with."""

    def __init__(self, module: str) -> None:
        # ``module`` as the generated code's __name__: its frames are ptort_lab's, so an error raised in or below
        # them names the user's line, not "<task factory>" (errors.user_location)
        self.names: dict[str, Any] = {"__name__": module}

    def name(self, value: Any) -> str:
        """A name standing for ``value`` in the text."""
        key = f"_c{len(self.names)}"
        self.names[key] = value
        return key

    def value(self, value: Any, read_loop_vars: bool = False) -> str:
        """The text of ``evaluate(value, b)``: a plain BinaryExpr tree small enough written out (as
        ``compile_tree`` does), a loop variable read from ``b``, any other expression by its ``evaluate``, a
        constant by its name. ``read_loop_vars``: every LoopVar, of a subclass too, read from ``b`` by its name (as
        a task's parameters and plain resources are: ``bindings._getter``)."""
        if read_loop_vars and isinstance(value, LoopVar):
            return f"b[{self.name(value.name)}]"
        if value.__class__ in _PLAIN and (value.u64 or not _small(value)):
            return f"{self.name(value)}.evaluate(b)"  # (node by node: u64, or too large to write out)
        return self.write(value)

    def write(self, node: Any) -> str:
        """The text of ``node`` with every plain BinaryExpr below it written out."""
        if node.__class__ is LoopVar:
            return f"b[{self.name(node.name)}]"
        if node.__class__ in _PLAIN and not node.u64:
            if node.op in _INLINE:
                return f"({self.write(node.lhs)} {node.op} {self.write(node.rhs)})"
            if node.op in _BINARY:
                return f"{self.name(_BINARY[node.op])}({self.write(node.lhs)}, {self.write(node.rhs)})"
        if node.__class__ in _PLAIN:  # (u64 arithmetic, or an operator made by hand: node by node, as before)
            return f"{self.name(node)}.evaluate_nodes(b)"
        if isinstance(node, Expr):
            return f"{self.name(node)}.evaluate(b)"
        return self.name(node)  # a constant

    def function(self, text: str, filename: str) -> Any:
        """The function ``text`` defines (its one ``def``), compiled with this code's names; None when Python
        cannot compile it."""
        try:
            exec(_compiled(text, filename), self.names)  # noqa: S102 - text written from operators and names
        except Exception:  # noqa: BLE001 - anything Python cannot write or compile: the caller's slow path
            return None
        fn_name = text.split("(", 1)[0].removeprefix("def ")
        return self.names.pop(fn_name)  # (the function holds its names, not they it)


@functools.lru_cache(maxsize=1024)
def _compiled(text: str, filename: str) -> CodeType:
    """``text`` compiled, once per text: the copies of a process on each core write the same text (their names
    bound to other values), and compiling is most of the cost of writing a function out."""
    return compile(text, filename, "exec")


def compile_tree(expr: BinaryExpr) -> Callable[[Mapping[str, int]], Any]:
    """``expr.evaluate`` as one function of the bindings: loop variables, constants and the operators of plain
    BinaryExprs written inline; any other expression (``ch.item``, runtime slots, a subclass) called through its own
    ``evaluate``, a u64 one through ``evaluate_nodes``. ``BY_NODES`` for a tree not written so: a subclass, a u64
    one, one too large or too deep, or one Python cannot compile."""
    if expr.__class__ not in _PLAIN or expr.u64 or not _small(expr):
        return BY_NODES
    code = Code(__name__)
    try:
        text = f"def _tree(b):\n    return {code.write(expr)}\n"
    except Exception:  # noqa: BLE001 - anything Python cannot write: evaluated node by node
        return BY_NODES
    fn: Callable[[Mapping[str, int]], Any] | None = code.function(text, "<loop expression>")
    return BY_NODES if fn is None else fn


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
