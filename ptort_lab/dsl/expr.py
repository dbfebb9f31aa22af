"""Symbolic index expressions: loop variables and the integer arithmetic and comparisons built from them."""
from __future__ import annotations

import operator
from typing import Any, Callable, Mapping

_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv, "%": operator.mod,
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
    "and": lambda a, b: bool(a) and bool(b), "or": lambda a, b: bool(a) or bool(b),
}


class Expr:
    """An integer (or boolean) expression over loop variables, evaluated when tasks are enumerated or run."""

    __slots__ = ()

    def evaluate(self, bindings: Mapping[str, int]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _bin(self, op: str, other: Any, swap: bool = False) -> BinaryExpr:
        if not isinstance(other, (Expr, int)):
            return NotImplemented  # type: ignore[return-value]
        if op in ("//", "%") and not swap and other == 0 and not isinstance(other, Expr):
            from ..errors import PtortValueError
            raise PtortValueError(f"`{self} {op} 0` divides by zero.", hint="Use a non-zero divisor.")
        return BinaryExpr(op, other, self) if swap else BinaryExpr(op, self, other)

    def __add__(self, o: Any) -> Expr: return self._bin("+", o)
    def __radd__(self, o: Any) -> Expr: return self._bin("+", o, True)
    def __sub__(self, o: Any) -> Expr: return self._bin("-", o)
    def __rsub__(self, o: Any) -> Expr: return self._bin("-", o, True)
    def __mul__(self, o: Any) -> Expr: return self._bin("*", o)
    def __rmul__(self, o: Any) -> Expr: return self._bin("*", o, True)
    def __floordiv__(self, o: Any) -> Expr: return self._bin("//", o)
    def __mod__(self, o: Any) -> Expr: return self._bin("%", o)
    def __lt__(self, o: Any) -> Expr: return self._bin("<", o)
    def __le__(self, o: Any) -> Expr: return self._bin("<=", o)
    def __gt__(self, o: Any) -> Expr: return self._bin(">", o)
    def __ge__(self, o: Any) -> Expr: return self._bin(">=", o)

    def eq(self, other: Any) -> Expr:
        """Symbolic equality, the same as ``self == other``."""
        return self._bin("==", other)

    def ne(self, other: Any) -> Expr:
        return self._bin("!=", other)

    # ``t == 3`` is symbolic too, so ``P.when(t == 3)`` works; its truth value is identity, so loop variables stay
    # usable as dict keys and in ``in`` tests.
    def __eq__(self, o: Any) -> Any:  # type: ignore[override]
        return _IdentityTruth("==", self, o) if isinstance(o, (Expr, int)) else NotImplemented

    def __ne__(self, o: Any) -> Any:  # type: ignore[override]
        return _IdentityTruth("!=", self, o) if isinstance(o, (Expr, int)) else NotImplemented

    __hash__ = object.__hash__

    def __bool__(self) -> bool:
        from ..errors import DSLUsageError
        raise DSLUsageError(
            f"the symbolic expression `{self}` has no value while the workload is being built.",
            hint="Use P.when(expr) / cond(expr, then, else) instead of a Python `if`, or index with it.")

    def __index__(self) -> int:
        from ..errors import DSLUsageError
        raise DSLUsageError(
            f"the symbolic expression `{self}` cannot be used as a Python int while the workload is being built.",
            hint="Use it to index a Tensor (X[t]) or as a kernel launch axis (k[t](...)); values exist at run time.")


class LoopVar(Expr):
    """A loop variable introduced by P(...), P.seq, for_each, parallel_for, select or consume."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def evaluate(self, bindings: Mapping[str, int]) -> Any:
        return bindings[self.name]

    def __repr__(self) -> str:
        return self.name

    __str__ = __repr__


class BinaryExpr(Expr):
    """``lhs <op> rhs`` where either side is an Expr or an int."""

    __slots__ = ("op", "lhs", "rhs")

    def __init__(self, op: str, lhs: Any, rhs: Any) -> None:
        self.op, self.lhs, self.rhs = op, lhs, rhs

    def evaluate(self, bindings: Mapping[str, int]) -> Any:
        try:
            return _BINARY[self.op](evaluate(self.lhs, bindings), evaluate(self.rhs, bindings))
        except ZeroDivisionError:
            from ..errors import PtortValueError
            raise PtortValueError(f"`{self}` divides by zero for {dict(bindings)}.",
                                  hint="Check the divisor of // or % (a loop variable or slot can be 0).") from None

    def __repr__(self) -> str:
        return f"({self.lhs} {self.op} {self.rhs})"

    __str__ = __repr__


def evaluate(value: Any, bindings: Mapping[str, int]) -> Any:
    """Evaluate an Expr against loop bindings; plain values pass through."""
    return value.evaluate(bindings) if isinstance(value, Expr) else value


def is_symbolic(value: Any) -> bool:
    return isinstance(value, Expr)


class _IdentityTruth(BinaryExpr):
    """``a == b`` / ``a != b`` on expressions: symbolic when used as a condition, identity when Python asks."""

    __slots__ = ()

    def __bool__(self) -> bool:
        same = self.lhs is self.rhs
        return same if self.op == "==" else not same
