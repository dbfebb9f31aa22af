"""Symbolic index expressions: loop variables and the integer arithmetic and comparisons built from them.

A loop expression has no value while a workload is being built, so everything that would need one raises a
DSLUsageError at the user's line: a Python ``if``/``while``/``and``/``not`` on it (``b == 0`` and ``b < 1`` alike),
``int()``/``float()``/``range()``/``round()``/``len()``, indexing a Python list. Formatting one into a string
(``f"expert_{e}"``, ``str(e)``) gives a placeholder such as ``expert_⟨e⟩``: a task named by that string gets each
task's value (``expert_2``), and any other ptort_lab API given such a string refuses it.
"""
from __future__ import annotations

import contextvars
import dis
import operator
import re
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator, Mapping, NoReturn, cast

import numpy as np

from ..errors import DSLUsageError, PtortError, PtortTypeError, PtortValueError, is_internal_frame

_BINARY: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "//": operator.floordiv, "%": operator.mod,
    "<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq, "!=": operator.ne,
    "and": lambda a, b: bool(a) and bool(b), "or": lambda a, b: bool(a) or bool(b),
    "&": operator.and_, "|": operator.or_,  # logical on conditions (bools), bitwise on integers, as in numpy
}
_COMPARISONS = frozenset({"<", "<=", ">", ">=", "==", "!="})
_ARITHMETIC = frozenset({"+", "-", "*", "//", "%"})
_U64_END = 2**64  # slot_u64 arithmetic must stay in [0, 2**64)

# The last refusal raised while user code ran: numpy replaces an exception from __index__ with its own IndexError
# (``array[b]``), so the body's error handler puts the located refusal back (see ``recover_refusal``).
_last_refusal: contextvars.ContextVar[Exception | None] = contextvars.ContextVar("ptort_refusal", default=None)


def _refuse(what: str, hint: str) -> NoReturn:
    error = DSLUsageError(what, hint=hint)
    record_refusal(error)
    raise error


def record_refusal(error: Exception) -> None:
    """Remember ``error`` as the last refusal, so a body's error handler can put it back if a library swallows it."""
    _last_refusal.set(error)


def clear_refusal() -> None:
    """Forget earlier refusals: called before running a user body."""
    _last_refusal.set(None)


def recover_refusal(exc: BaseException) -> Exception | None:
    """The DSLUsageError a library swallowed while raising ``exc`` (numpy turns it into IndexError/TypeError): the
    last refusal, if it was made at the line ``exc`` comes from (so an unrelated later error is never replaced)."""
    refusal = _last_refusal.get()
    if refusal is None or isinstance(exc, PtortError) or not isinstance(exc, (IndexError, TypeError, ValueError)):
        return None
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    where = getattr(refusal, "where", None)
    if tb is None or where is None or (tb.tb_frame.f_code.co_filename, tb.tb_lineno) != (where.filename, where.lineno):
        return None
    return refusal


_NO_VALUE_HINT = ("Use it to index a Tensor (X[t]), as a kernel launch axis (k[t](...)) or as a loop size "
                  "(P(DenseDyn(t))); its values exist only when the tasks are listed.")


class SlotValueError(PtortValueError):
    """A value that goes wrong while the tasks are listed (a runtime slot read before it is set, slot_u64 arithmetic
    out of range): re-raised at the statement that evaluates it."""


class SlotRangeError(SlotValueError):
    """slot_u64 arithmetic whose result is outside [0, 2**64): the reference's u64 would wrap around silently."""


class Expr:
    """An integer (or boolean) expression over loop variables, evaluated when tasks are enumerated or run."""

    __slots__ = ()
    u64 = False  # an unsigned 64-bit value (slot_u64 and arithmetic on it), checked to stay in range when evaluated

    def evaluate(self, bindings: Mapping[str, int]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _bin(self, op: str, other: Any, swap: bool = False) -> BinaryExpr:
        comparison = op in _COMPARISONS
        other = _plain_number(other, allow_float=comparison)
        if not comparison and isinstance(other, (float, complex, np.inexact)):
            self._refuse_float(op, other, swap)
        if not isinstance(other, (Expr, int, float) if comparison else (Expr, int)):
            return cast("BinaryExpr", NotImplemented)  # Python then asks the other operand
        if op in ("//", "%") and not swap and not isinstance(other, Expr) and other == 0:
            raise PtortValueError(f"`{self!r} {op} 0` divides by zero.", hint="Use a non-zero divisor.")
        return BinaryExpr(op, other, self) if swap else BinaryExpr(op, self, other)

    def _refuse_float(self, op: str, other: Any, swap: bool) -> NoReturn:
        """``t * 0.5``: Python's bare TypeError would not say that loop expressions are integers, nor what to
        write for a per-task float."""
        shown = f"{other!r} {op} {self!r}" if swap else f"{self!r} {op} {other!r}"
        _refuse(f"`{shown}`: loop expressions are integers, and `{op}` with a {type(other).__name__} would make "
                "a float.",
                hint=f"Keep loop arithmetic in integers (`{self!r} * 2`, `{self!r} // 2`, `{self!r} % 2`). For a "
                     f"float per task, pass the integer to a Scalar[DType.F32] parameter (s={self!r}) and scale it "
                     "in the kernel (tl.muls(tl.muls(x, s), 0.5)), or load the value per tile from a tensor "
                     f"(S[{self!r}]).")

    def __add__(self, o: Any) -> Expr: return self._bin("+", o)
    def __radd__(self, o: Any) -> Expr: return self._bin("+", o, True)
    def __sub__(self, o: Any) -> Expr: return self._bin("-", o)
    def __rsub__(self, o: Any) -> Expr: return self._bin("-", o, True)
    def __mul__(self, o: Any) -> Expr: return self._bin("*", o)
    def __rmul__(self, o: Any) -> Expr: return self._bin("*", o, True)
    def __floordiv__(self, o: Any) -> Expr: return self._bin("//", o)
    def __rfloordiv__(self, o: Any) -> Expr: return self._bin("//", o, True)
    def __mod__(self, o: Any) -> Expr: return self._bin("%", o)
    def __rmod__(self, o: Any) -> Expr: return self._bin("%", o, True)
    def __lt__(self, o: Any) -> Expr: return self._bin("<", o)
    def __le__(self, o: Any) -> Expr: return self._bin("<=", o)
    def __gt__(self, o: Any) -> Expr: return self._bin(">", o)
    def __ge__(self, o: Any) -> Expr: return self._bin(">=", o)
    def __neg__(self) -> Expr: return BinaryExpr("-", 0, self)
    def __pos__(self) -> Expr: return self

    # Conditions combine with & | ~ (Python's and/or/not would ask for a truth value, which a loop expression has
    # none of while the workload is built): P.when((u >= 3) & (u <= n)). On integers they are bitwise (t & 1).
    def _logic(self, op: str, other: Any, swap: bool = False) -> BinaryExpr:
        other = _plain_number(other, allow_float=False)
        if not isinstance(other, (Expr, int)):
            text = repr(other) if isinstance(other, (str, bytes, float, complex)) else type(other).__name__
            shown = f"`{self!r} {op} {text}`" if not swap else f"`{text} {op} {self!r}`"
            raise PtortTypeError(
                f"{shown}: `{op}` combines loop expressions (conditions such as `t < 4`, or integers), not "
                f"{type(other).__name__}.",
                hint="Combine conditions on loop variables, P.when((u >= 3) & (u <= n)); for a condition that needs "
                     "the task, write the whole of it as one function: P.when(lambda t: ...).")
        return BinaryExpr(op, other, self) if swap else BinaryExpr(op, self, other)

    def __and__(self, o: Any) -> Expr: return self._logic("&", o)
    def __rand__(self, o: Any) -> Expr: return self._logic("&", o, True)
    def __or__(self, o: Any) -> Expr: return self._logic("|", o)
    def __ror__(self, o: Any) -> Expr: return self._logic("|", o, True)
    def __invert__(self) -> Expr: return NotExpr(self)

    def __truediv__(self, o: Any) -> NoReturn:
        _refuse(f"`{self!r} / {o!r}`: loop expressions are integers, and `/` would make a float index.",
                hint=f"Use integer division `{self!r} // {o!r}` (and `%` for the remainder).")

    def __rtruediv__(self, o: Any) -> NoReturn:
        _refuse(f"`{o!r} / {self!r}`: loop expressions are integers, and `/` would make a float index.",
                hint=f"Use integer division `{o!r} // {self!r}`.")

    def eq(self, other: Any) -> Expr:
        """Symbolic equality, the same as ``self == other``."""
        return self._bin("==", other)

    def ne(self, other: Any) -> Expr:
        """Symbolic inequality, the same as ``self != other``."""
        return self._bin("!=", other)

    # ``t == 3`` is symbolic too, so ``P.when(t == 3)`` works; asked for its truth value it refuses, as ``t < 3``
    # does, except between two expressions outside a user's ``if``: identity, so loop variables stay usable as
    # dict keys and in ``in`` tests.
    def __eq__(self, o: Any) -> Any:
        return _IdentityTruth("==", self, _plain_number(o, allow_float=True))

    def __ne__(self, o: Any) -> Any:
        return _IdentityTruth("!=", self, _plain_number(o, allow_float=True))

    def __hash__(self) -> int:
        if _user_asks("CONTAINS_OP"):  # `b in {0, 1}` hashes b and would be False for every task, never asking ==
            text = repr(self)
            name = text if text.isidentifier() else "b"
            _refuse(f"`{text} in ...` over a set or dict: the loop expression `{text}` has no value while the workload "
                    "is being built, so membership would be decided once, by identity, for every task.",
                    hint=f"Decide per task with a condition function, P.when(lambda t: t.get({name!r}) in {{0, 1}}), "
                         f"or with one P.when({text} == v) per value.")
        return object.__hash__(self)

    def __bool__(self) -> bool:
        _refuse(f"the symbolic expression `{self!r}` has no value while the workload is being built.",
                hint="Use P.when(expr) / cond(expr, then, else) instead of a Python `if`, or index with it; combine "
                     "conditions with & | ~ instead of and / or / not, in parentheses: P.when((b >= 3) & (b < 8)).")

    def _no_number(self, kind: str) -> NoReturn:
        _refuse(f"the symbolic expression `{self!r}` cannot be used as a Python {kind} while the workload is being "
                "built.", hint=_NO_VALUE_HINT)

    def __index__(self) -> int: self._no_number("int")
    def __int__(self) -> int: self._no_number("int")
    def __float__(self) -> float: self._no_number("float")
    def __complex__(self) -> complex: self._no_number("number")
    def __round__(self, ndigits: Any = None) -> int: self._no_number("number (round)")
    def __trunc__(self) -> int: self._no_number("number (math.trunc)")
    def __floor__(self) -> int: self._no_number("number (math.floor)")
    def __ceil__(self) -> int: self._no_number("number (math.ceil)")

    def __len__(self) -> int:
        _refuse(f"len() of the loop expression `{self!r}`: it is one integer per task, not a sequence.",
                hint=_NO_VALUE_HINT)

    def __iter__(self) -> NoReturn:
        _refuse(f"the loop expression `{self!r}` is one integer per task; it cannot be iterated.",
                hint="Loop over an axis instead: `for i in P(DenseDyn(t)):` or for_each(DenseDyn(t), ...).")

    def __str__(self) -> str:
        return placeholder(self, "")

    def __format__(self, spec: str) -> str:
        return placeholder(self, spec)


def _plain_number(value: Any, allow_float: bool) -> Any:
    """numpy integers (and for comparisons floats) as Python numbers; anything else unchanged."""
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if allow_float and isinstance(value, np.floating):
        return float(value)
    return value


# the names P(...) and the other loops give their variables, in order, when not given names=[...]
DEFAULT_VAR_NAMES = ("b", "h", "s", "d", "i", "j", "k", "l", "m", "n")


class LoopVar(Expr):
    """A loop variable introduced by P(...), P.seq, for_each, parallel_for, select or consume.

    ``LoopVar(name, axis)`` is the reference's constructor (``axis`` is kept as ``.axis``); a variable made by hand
    takes its value from the bindings under ``name``, as the loops' own do."""

    __slots__ = ("name", "axis")

    def __init__(self, name: str, axis: Any = None, index: Any = 0) -> None:
        if not (isinstance(index, int) and not isinstance(index, bool) and index == 0):
            raise PtortValueError(f"LoopVar({name!r}, axis, index={index!r}): a loop variable has no value of its "
                                  "own; each task's bindings give it one.",
                                  hint=f"Write LoopVar({name!r}, axis) (index 0, the reference's default), or use "
                                       "the variable a P(...) loop yields.")
        self.name = name
        self.axis = axis

    def evaluate(self, bindings: Mapping[str, int]) -> Any:
        return bindings[self.name]

    def __iter__(self) -> NoReturn:
        # (a loop over an axis that says why one variable cannot be unpacked, a Ragged iterated flat, adds that)
        note = getattr(self.axis, "unpack_note", None)
        if not isinstance(note, tuple):
            super().__iter__()
        _refuse(f"the loop expression `{self!r}` is one integer per task; it cannot be iterated. {note[0]}",
                hint=note[1])

    def __repr__(self) -> str:
        return self.name


class BinaryExpr(Expr):
    """``lhs <op> rhs`` where either side is an Expr or an int."""

    __slots__ = ("op", "lhs", "rhs", "u64", "_fn")

    def __init__(self, op: str, lhs: Any, rhs: Any) -> None:
        self.op, self.lhs, self.rhs = op, lhs, rhs
        self.u64 = op in _ARITHMETIC and ((isinstance(lhs, Expr) and lhs.u64) or (isinstance(rhs, Expr) and rhs.u64))
        self._fn: Callable[[Mapping[str, int]], Any] | None = None  # the tree as one Python function (expr_code)

    def __reduce__(self) -> tuple[Any, ...]:  # (a copy or pickle rebuilds it, without its compiled function)
        return type(self), (self.op, self.lhs, self.rhs)

    def evaluate(self, bindings: Mapping[str, int]) -> Any:
        # Evaluated once per task or more (index expressions, conditions, tokens): the tree runs as one Python
        # function, made on first use (expr_code). On any exception it is evaluated node by node once, which raises
        # the error naming the node that failed (expressions are pure, so evaluating again is safe). Trees not
        # written as one function (u64, very deep or large ones) are evaluated node by node straight away.
        fn = self._fn
        if fn is None:
            from .expr_code import compile_tree  # (expr_code builds on this module)
            fn = self._fn = compile_tree(self)
        if fn is not BY_NODES:
            try:
                return fn(bindings)
            except Exception:  # noqa: BLE001, S110 - evaluated node by node below, outside this handler
                pass
        return self.evaluate_nodes(bindings)

    def evaluate_nodes(self, bindings: Mapping[str, int]) -> Any:
        """``evaluate``, node by node: plain BinaryExprs below by their ``evaluate_nodes`` (one frame a level, no
        compiled function tried again), any other expression by its ``evaluate``."""
        lhs, rhs = self.lhs, self.rhs
        try:  # (each side inline: index expressions are trees of these)
            value = _BINARY[self.op](
                lhs.evaluate_nodes(bindings) if lhs.__class__ in _PLAIN else
                lhs.evaluate(bindings) if isinstance(lhs, Expr) else lhs,
                rhs.evaluate_nodes(bindings) if rhs.__class__ in _PLAIN else
                rhs.evaluate(bindings) if isinstance(rhs, Expr) else rhs)
        except ZeroDivisionError:
            raise PtortValueError(f"`{self!r}` divides by zero for {dict(bindings)}.",
                                  hint="Check the divisor of // or % (a loop variable or slot can be 0).") from None
        if self.u64 and not 0 <= value < _U64_END:
            raise _u64_out_of_range(self, value, bindings)
        return value

    def __repr__(self) -> str:
        return f"({self.lhs!r} {self.op} {self.rhs!r})"


def BY_NODES(bindings: Mapping[str, int]) -> Any:  # noqa: N802 - a marker, never called
    """``BinaryExpr._fn`` of a tree evaluated node by node (``expr_code.compile_tree``)."""
    raise AssertionError("BY_NODES marks a tree evaluated node by node; it is never called")


class NotExpr(Expr):
    """``~e``: logical not of a condition, bitwise not of an integer (as numpy's ``~``)."""

    __slots__ = ("operand", "u64")

    def __init__(self, operand: Expr) -> None:
        self.operand = operand
        self.u64 = operand.u64

    def evaluate(self, bindings: Mapping[str, int]) -> Any:
        value = evaluate(self.operand, bindings)
        if isinstance(value, (bool, np.bool_)):
            return not value
        if self.u64:  # ~v of a u64 is 2**64 - 1 - v, and Python's -v - 1 is always out of range
            raise _u64_out_of_range(self, ~value, bindings)
        return ~value

    def __repr__(self) -> str:
        return f"~{self.operand!r}"


def _u64_out_of_range(expr: Expr, value: int, bindings: Mapping[str, Any]) -> SlotRangeError:
    """The error for slot_u64 arithmetic whose result ``value`` has no u64 value (the reference would wrap it)."""
    return SlotRangeError(
        f"`{expr!r}` is {value} for {dict(bindings) or 'this statement'}, outside the unsigned 64-bit range of "
        f"slot_u64 arithmetic: the reference's u64 would wrap it around to {value % _U64_END} rather than "
        f"{value}.",
        hint="Keep slot_u64 arithmetic between 0 and 2**64 - 1: compare before subtracting (slot_u64(0) < n + 2 "
             "rather than slot_u64(0) - 2 < n), or read the slot with slot_i64(0) for signed arithmetic.")


def evaluate(value: Any, bindings: Mapping[str, int]) -> Any:
    """Evaluate an Expr against loop bindings; plain values pass through."""
    return value.evaluate(bindings) if isinstance(value, Expr) else value


def is_symbolic(value: Any) -> bool:
    """Whether ``value`` is a loop expression (its value exists per task)."""
    return isinstance(value, Expr)


# Opcodes that ask for a truth value to branch on: `if`, `while`, `and`/`or`, `not`, `assert` (3.10-3.13 spellings).
_BRANCH_OPS = frozenset({"JUMP_IF_FALSE_OR_POP", "JUMP_IF_TRUE_OR_POP", "UNARY_NOT", "TO_BOOL", "COMPARE_OP"})


def _user_op(depth: int) -> str:
    """The opcode the user's frame ``depth`` levels up is running ("" when that frame is ptort_lab's own)."""
    frame = sys._getframe(depth + 1)
    code = frame.f_code
    try:
        op = dis.opname[code.co_code[frame.f_lasti]]
    except (IndexError, ValueError):
        return ""
    if op != "CONTAINS_OP" and op not in _BRANCH_OPS and not op.startswith("POP_JUMP"):
        return op  # no question the callers refuse: skip the (slower) look at whose code this is
    return "" if is_internal_frame(frame) else op


def _user_branches() -> bool:
    """True when the code asking for a truth value is the user's and branches on it (not an ``in`` test or a
    library call)."""
    op = _user_op(2)
    return op.startswith("POP_JUMP") or op in _BRANCH_OPS


def _user_asks(opname: str) -> bool:
    """True when the user's code calling the caller runs ``opname`` (e.g. CONTAINS_OP for ``x in {...}``)."""
    return _user_op(2) == opname


class _IdentityTruth(BinaryExpr):
    """``a == b`` / ``a != b`` on expressions: symbolic when used as a condition. Its truth value is refused when
    a side is not an expression (``if b == 0:`` would always be False) or when the user's code branches on it."""

    __slots__ = ()

    def __bool__(self) -> bool:
        if not (isinstance(self.lhs, Expr) and isinstance(self.rhs, Expr)):
            Expr.__bool__(self)
        same = self.lhs is self.rhs
        if not same and _user_branches():
            text = repr(self)[1:-1]
            _refuse(f"`{text}` compares two loop expressions, which have no values while the workload is being "
                    "built (Python would answer by identity, the same for every task).",
                    hint=f"Use P.when({text}) / cond({text}, then, else) to select the tasks where it holds; "
                         f"`{self.lhs!r} is {self.rhs!r}` tests whether they are the same variable.")
        return same if self.op == "==" else not same


_PLAIN = frozenset({BinaryExpr, _IdentityTruth})  # the classes whose evaluate is BinaryExpr's, exactly


# -- placeholders: a loop expression formatted into a string ----------------------------------------------------------
_OPEN, _CLOSE = "\u27e8", "\u27e9"  # ⟨ ⟩: readable when printed, and not typed by accident
_PLACEHOLDER = re.compile(f"{_OPEN}([^{_OPEN}{_CLOSE}]*){_CLOSE}")
# The placeholders formatted while one workload is built: text -> (expression, format spec). One table per build,
# opened by the workload builder (``recording_placeholders``); None outside any build.
_placeholders: contextvars.ContextVar[dict[str, tuple[Any, str]] | None] = contextvars.ContextVar(
    "ptort_placeholders", default=None)


@contextmanager
def recording_placeholders() -> Iterator[None]:
    """While a workload is built: record each loop expression formatted into a string, so a task named by that
    string can be renamed per task. A build nested in another one shares the outer build's table."""
    if _placeholders.get() is not None:
        yield
        return
    token = _placeholders.set({})
    try:
        yield
    finally:
        _placeholders.reset(token)


def _pure(e: Any) -> bool:
    """An expression whose repr says everything about its value (loop variables and arithmetic on them)."""
    if isinstance(e, (int, float)):
        return True
    if type(e) in (LoopVar, BinaryExpr, _IdentityTruth):
        return type(e) is LoopVar or (_pure(e.lhs) and _pure(e.rhs))
    return False


def placeholder(e: Expr, spec: str) -> str:
    """The text ``str(e)`` / ``f"{e:spec}"`` gives: ``⟨e⟩``, registered with the workload being built so a task
    named by the string gets each task's value."""
    if spec:
        try:
            format(0, spec)
        except (ValueError, TypeError):
            _refuse(f"the format spec {spec!r} in `{{{e!r}:{spec}}}` cannot format the integer values of the loop "
                    f"expression `{e!r}`.", hint="Use an integer format such as f\"expert_{e:03d}\", or none.")
    key = f"{e!r}:{spec}" if spec else repr(e)
    table = _placeholders.get()
    if table is not None:
        base, n = key, 1
        while key in table and table[key][0] is not e and not (_pure(e) and _pure(table[key][0])):
            n += 1
            key = f"{base}#{n}"
        table[key] = (e, spec)
    return f"{_OPEN}{key}{_CLOSE}"


def has_placeholder(text: Any) -> bool:
    """Whether ``text`` is a string holding a formatted loop expression's placeholder."""
    return isinstance(text, str) and _PLACEHOLDER.search(text) is not None


class NameTemplate(str):
    """A task name holding placeholders (``"expert_⟨e⟩"``); ``render(bindings)`` gives one task's name."""

    parts: tuple[Any, ...]

    def render(self, bindings: Mapping[str, Any]) -> str:
        return "".join(p if isinstance(p, str) else format(evaluate(p[0], bindings), p[1]) for p in self.parts)

    def renaming(self, make: Callable[[dict[str, Any]], Any]) -> Callable[[dict[str, Any]], Any]:
        """``make`` (bindings -> Task) with each task named by this template under its bindings."""
        def named(b: dict[str, Any]) -> Any:
            task = make(b)
            task.kernel = self.render(b)
            return task
        return named


def name_template(text: str, api: str) -> str:
    """``text`` unchanged, or a NameTemplate when it holds placeholders made in this build."""
    if not has_placeholder(text):
        return text
    table = _placeholders.get() or {}
    parts: list[Any] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(text):
        entry = table.get(m.group(1))
        if entry is None:
            _refuse(f"{api} got the name {text!r}, whose placeholder {m.group(0)} was not formatted from a loop "
                    "expression of this workload.",
                    hint="Format the task name inside the @workload or body that launches it: "
                         "task(f\"expert_{e}\", [e], ...).")
        parts += [text[pos:m.start()], entry]
        pos = m.end()
    parts.append(text[pos:])
    out = NameTemplate(text)
    out.parts = tuple(p for p in parts if p != "")
    return out


def refuse_unprintable(name: str, subject: str, spelled: str) -> None:
    """Refuse a name holding a control character (a newline or tab would break every table and message that lists
    it): ``subject`` names it in the message (``Process name``), ``spelled`` writes the fix with ``{}`` for the
    name (``Process(name={}, ...)``)."""
    if not name.isprintable():
        fixed = "".join(c if c.isprintable() else "_" for c in name)
        raise PtortValueError(f"{subject} {name!r} holds a control character (a newline, tab, ...).",
                              hint=f"Name it with printable characters only, e.g. {spelled.format(repr(fixed))}.")


def refuse_placeholders(value: Any, api: str, depth: int = 2) -> None:
    """Refuse a string made by formatting a loop expression (``f"x_{b}"``) where no per-task value can go: only
    task names are rendered per task."""
    if isinstance(value, str):
        m = _PLACEHOLDER.search(value)
        if m is None:
            return
        text = re.split("[:#]", m.group(1))[0]
        var = text if text.isidentifier() else "b"
        _refuse(f"{api} got {value!r}, a string made by formatting the loop expression `{text}` while the workload "
                "is being built; the expression has no value yet, so the string holds a placeholder, not a "
                "task's value.",
                hint=f"Only a task's name may format a loop variable (task(f\"expert_{{{var}}}\", [{var}], ...) names "
                     f"each task by its value); here use a fixed string, or read the value at run time "
                     f"(t.get({var!r})).")
    if depth and isinstance(value, (list, tuple, set, frozenset)):
        for v in value:
            refuse_placeholders(v, api, depth - 1)
    elif depth and isinstance(value, dict):
        for k, v in value.items():
            refuse_placeholders(k, api, depth - 1)
            refuse_placeholders(v, api, depth - 1)
