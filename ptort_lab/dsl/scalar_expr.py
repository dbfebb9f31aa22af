"""Run-time symbols, and the reference's scalar expressions (its ``pto_wsp.scalar_expr``).

A compiled program takes symbol values between runs, with no rebuild: ``program.set_symbol_u64(name, n)`` and
``program.set_symbol_f32(name, x)`` (``Program``, which keeps them and sets ``run_symbols`` around each run). Two
things read them:

- ``Symbol("scale_s")``: a loop expression whose value is the symbol's in the run. The reference passes it as a
  kernel's ``Scalar[...]`` argument, ``scale(x=X, y=Y, s=Symbol("scale_s"))``: each task gets the value when the
  run lists its tasks.
- ``ScalarExpr`` (the reference's ``scalar_expr.Expr``): a typed (``bool`` / ``i64`` / ``u64``) expression over a
  task's launch axes (``t.params[i]``), its loop variables (``t.get("b")``), its tags (``t.tags["mask"]``: the
  reference reads a tag from the symbol of that name) and symbols (``symbol_u64("n")``), with C++'s 64-bit
  arithmetic (wrap-around, division truncating toward zero), comparisons, ``&``/``|``, ``where`` and ``cast_*``.
  A dispatch key written the reference's way, ``DispatchPolicy.affinity(lambda t: t.tags["mask"] &
  t.params[0].cast_u64(), 2)``, is evaluated for each task of the run (``KeyFunction``); a condition,
  ``P.when(axis("b") < symbol_u64("cut").cast_i64())``, for each iteration (``ScalarCondition``).

A symbol the run reads and no ``set_symbol_*`` set is an error naming it (the reference reads 0).
"""
from __future__ import annotations

import contextvars
import dataclasses
import numbers
from typing import Any, Callable, Iterator, Mapping, NoReturn

import numpy as np

from ..errors import DSLUsageError, PtortError, PtortTypeError, PtortValueError, SourceLocation, user_location
from .expr import Expr, refuse_placeholders
from .runtime_slots import slot_bool, slot_i64, slot_u64
from .tasks import Task

_U64 = 2**64
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1

# The symbols of the run under way: name -> value (an int for set_symbol_u64, a float for set_symbol_f32). Set by
# Program around each run (and enumerate()), in that context only; None outside any run.
run_symbols: contextvars.ContextVar[Mapping[str, int | float] | None] = contextvars.ContextVar(
    "ptort_run_symbols", default=None)


class RunReads:
    """The symbols a run read (``run_reads``): ``names``, name -> how it was read ("u64": a key's or a condition's
    whole number; "any": a ``Symbol``, read as its use needs), every symbol a run's ``Symbol`` or key expression
    reads (one in a branch a task did not take too); ``keys_called``: whether a dispatch or stream key ran at all
    (a run with no tasks calls none, so it cannot say what a key reads). The Program checks after a run that every
    symbol it set was read (``symbols.py``)."""

    __slots__ = ("names", "keys_called")

    def __init__(self) -> None:
        self.names: dict[str, set[str]] = {}
        self.keys_called = False

    def note(self, name: str, kind: str) -> None:
        kinds = self.names.get(name)
        if kinds is None:
            self.names[name] = {kind}
        elif kind not in kinds:
            kinds.add(kind)


# The reads of the run under way (set by Program around each run, in that context only); None outside any run.
run_reads: contextvars.ContextVar[RunReads | None] = contextvars.ContextVar("ptort_run_reads", default=None)


def symbol_value(name: str, what: str, loc: SourceLocation | None = None, setter: str = "u64") -> Any:
    """The value of symbol ``name`` in the run under way; an error naming ``what`` (which reads it) when it has
    none, whose hint sets it with ``set_symbol_u64`` (``setter`` "u64": a key reads a whole number) or either
    setter ("any": a Symbol, read as its use needs)."""
    example = (f"program.set_symbol_u64({name!r}, n) for a whole number, program.set_symbol_f32({name!r}, x) for a "
               "kernel's float scalar" if setter == "any" else f"program.set_symbol_u64({name!r}, 1)")
    reads = run_reads.get()
    if reads is not None:
        reads.note(name, "u64" if setter == "u64" else "any")
    table = run_symbols.get()
    if table is None:
        raise PtortValueError(f"{what} has no value here: symbols are set on a compiled program, and they have "
                              "values only while it runs.",
                              hint=f"Compile the workload and set the symbol before running it: program = "
                                   f"w().compile(), then {example}, then program.execute() (or "
                                   "program.enumerate()).",
                              where=loc, locate=loc is None)
    if name not in table:
        raise PtortValueError(f"{what} has no value in this run: the program was never given symbol {name!r} (the "
                              "reference would read 0).",
                              hint=f"Set it before running: {example}.", where=loc, locate=loc is None)
    return table[name]


class Symbol(Expr):
    """``Symbol("eps")``: the value of the run-time symbol ``eps``, read when the run lists its tasks. The reference
    passes it as a kernel's scalar argument, ``k(x=X[b], s=Symbol("eps"))``; the program sets it between runs,
    ``program.set_symbol_f32("eps", 1e-6)`` (``set_symbol_u64`` for an integer parameter), with no rebuild."""

    __slots__ = ("name", "loc")

    def __init__(self, name: str) -> None:
        if not isinstance(name, str) or not name:
            raise PtortTypeError(f"Symbol(name): name must be a non-empty str, got {type(name).__name__} {name!r}.",
                                 hint='Write Symbol("scale_s"), and set it with program.set_symbol_f32("scale_s", '
                                      '2.0).')
        refuse_placeholders(name, "Symbol(name)")
        self.name = name
        self.loc = user_location()

    def evaluate(self, bindings: Mapping[str, Any]) -> Any:
        return symbol_value(self.name, f"Symbol({self.name!r})", self.loc, "any")

    def __reduce__(self) -> tuple[Any, ...]:
        return _symbol, (self.name, self.loc)

    def __repr__(self) -> str:
        return f"Symbol({self.name!r})"

    __str__ = __repr__


def _symbol(name: str, loc: SourceLocation | None) -> Symbol:
    """A Symbol rebuilt by copy or pickle, with the line it was made at."""
    s = Symbol.__new__(Symbol)
    s.name, s.loc = name, loc
    return s


# -- ScalarExpr ------------------------------------------------------------------------------------------------------
_UNSET: Any = object()


def fnv1a_64(s: str) -> int:
    """The reference's stable 64-bit FNV-1a hash of an identifier (its codegen names symbols by it)."""
    h = 0xCBF29CE484222325
    for b in str(s).encode("utf-8"):
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


class ScalarExprError(PtortTypeError):
    """A scalar expression built from operands that do not fit (``&`` of an i64 and a u64, ``where`` on a number)."""


def _refuse(what: str, hint: str) -> NoReturn:
    raise ScalarExprError(what, hint=hint)


class ScalarExpr:
    """A typed scalar expression (the reference's ``scalar_expr.Expr``): ``kind`` (``lit_bool``, ``lit_i64``,
    ``lit_u64``, ``task_param``, ``task_tag_u64``, ``axis_var``, ``symbol_u64``, ``unary``, ``binary``, ``ternary``,
    ``cast``), ``type`` (``"bool"``, ``"i64"`` or ``"u64"``) and its operands ``a``, ``b``, ``c``. It has no value
    while it is built: ``bool(expr)`` (a Python ``if``, ``and``, ``or``) is refused; use ``&``/``|`` and
    ``.where(then, else)``. Leaves name their symbol, tag or loop variable by its name (the reference by its
    FNV-1a hash)."""

    __slots__ = ("kind", "type", "a", "b", "c")

    def __init__(self, kind: str, type: str, a: Any = None, b: Any = None, c: Any = None) -> None:  # noqa: A002
        self.kind, self.type, self.a, self.b, self.c = kind, type, a, b, c

    # -- what it says
    def to_debug_str(self) -> str:
        """The expression as text, e.g. ``(tag('mask') & (u64)(task.params[0]))``."""
        k = self.kind
        if k.startswith("lit_"):
            return repr(self.a)
        if k == "task_param":
            return f"task.params[{self.a}]"
        if k == "axis_var":
            return f"axis({self.a!r})"
        if k == "task_tag_u64":
            return f"tag({self.a!r})"
        if k == "symbol_u64":
            return f"symbol({self.a!r})"
        if k == "unary":
            return f"({self.a}{self.b.to_debug_str()})"
        if k == "binary":
            return f"({self.b.to_debug_str()} {self.a} {self.c.to_debug_str()})"
        if k == "ternary":
            return f"({self.a.to_debug_str()} ? {self.b.to_debug_str()} : {self.c.to_debug_str()})"
        return f"({self.type})({self.a.to_debug_str()})"  # cast

    def __repr__(self) -> str:
        return f"ScalarExpr({self.to_debug_str()}: {self.type})"

    def to_cpp(self) -> NoReturn:
        raise PtortValueError("ScalarExpr.to_cpp(): ptort_lab builds no C++; the simulator evaluates the expression "
                              "itself, for each task of the run.",
                              hint="Pass the expression (or the key function building it) where it is used, e.g. "
                                   "DispatchPolicy.affinity(lambda t: ..., n); expr.to_debug_str() shows it.")

    def leaves(self) -> Iterator[ScalarExpr]:
        """Every leaf of the expression (literals, task params, tags, loop variables, symbols; a loop variable's default
        too)."""
        stack: list[Any] = [self]
        while stack:
            e = stack.pop()
            if e.kind in ("unary",):
                stack.append(e.b)
            elif e.kind == "binary":
                stack.extend((e.b, e.c))
            elif e.kind == "ternary":
                stack.extend((e.a, e.b, e.c))
            elif e.kind == "cast":
                stack.append(e.a)
            else:
                yield e
                if e.kind == "axis_var" and isinstance(e.b, ScalarExpr):  # t.get("b", default): its default too
                    stack.append(e.b)

    # -- no value while built
    def __bool__(self) -> bool:
        raise DSLUsageError(f"the scalar expression `{self.to_debug_str()}` has no value while it is built: it is "
                            "evaluated for each task when the program runs, so Python's `if`, `and`, `or` and `not` "
                            "cannot use it.",
                            hint="Combine conditions with & and |, and choose with cond.where(then, else): "
                                 "(t.params[0] == 0).where(1, 2).")

    __hash__ = object.__hash__

    # -- operators (the reference's typing: the result has the left operand's type, comparisons are bool)
    def where(self, then_expr: Any, else_expr: Any) -> ScalarExpr:
        """``cond.where(a, b)``: ``a`` where the bool ``cond`` holds, else ``b`` (C++'s ``cond ? a : b``)."""
        if self.type != "bool":
            _refuse(f"`{self.to_debug_str()}`.where(...) needs a bool condition, got a {self.type} expression.",
                    hint="Compare first: (t.params[0] == 0).where(1, 2), or .cast_bool().")
        t, f = as_expr(then_expr), as_expr(else_expr)
        if t.type != f.type:
            _refuse(f".where({t.to_debug_str()}, {f.to_debug_str()}): the branches are {t.type} and {f.type}; both "
                    "must have one type.", hint="Cast one of them: .where(x.cast_u64(), 0) or .where(1, 0).")
        return ScalarExpr("ternary", t.type, self, t, f)

    def __invert__(self) -> ScalarExpr:
        if self.type == "bool":
            return ScalarExpr("unary", "bool", "!", self)
        if self.type == "u64":
            return ScalarExpr("unary", "u64", "~", self)
        _refuse(f"~`{self.to_debug_str()}`: ~ takes a bool (not) or a u64 (bitwise not), got an i64.",
                hint="Cast it first: ~x.cast_u64().")

    def __neg__(self) -> ScalarExpr:
        if self.type not in ("i64", "u64"):
            _refuse(f"-`{self.to_debug_str()}`: unary minus takes an i64 or a u64, got a bool.",
                    hint="Cast it first: -x.cast_i64().")
        return ScalarExpr("unary", self.type, "-", self)

    def _bin(self, other: Any, op: str, swap: bool = False) -> ScalarExpr:
        lhs, rhs = (as_expr(other), self) if swap else (self, as_expr(other))
        return ScalarExpr("binary", lhs.type, op, lhs, rhs)

    def __add__(self, o: Any) -> ScalarExpr: return self._bin(o, "+")
    def __radd__(self, o: Any) -> ScalarExpr: return self._bin(o, "+", True)
    def __sub__(self, o: Any) -> ScalarExpr: return self._bin(o, "-")
    def __rsub__(self, o: Any) -> ScalarExpr: return self._bin(o, "-", True)
    def __mul__(self, o: Any) -> ScalarExpr: return self._bin(o, "*")
    def __rmul__(self, o: Any) -> ScalarExpr: return self._bin(o, "*", True)
    def __floordiv__(self, o: Any) -> ScalarExpr: return self._bin(o, "/")
    def __rfloordiv__(self, o: Any) -> ScalarExpr: return self._bin(o, "/", True)
    def __mod__(self, o: Any) -> ScalarExpr: return self._bin(o, "%")
    def __rmod__(self, o: Any) -> ScalarExpr: return self._bin(o, "%", True)

    def _logic(self, other: Any, op: str, swap: bool = False) -> ScalarExpr:
        lhs, rhs = (as_expr(other), self) if swap else (self, as_expr(other))
        if lhs.type == "bool" and rhs.type == "bool" and op in "&|":
            return ScalarExpr("binary", "bool", op * 2, lhs, rhs)
        if lhs.type == "u64" and rhs.type == "u64":
            return ScalarExpr("binary", "u64", op, lhs, rhs)
        what = "both bool or both u64" if op in "&|" else "two u64"
        _refuse(f"`{lhs.to_debug_str()} {op} {rhs.to_debug_str()}`: {op} needs {what}, got {lhs.type} and "
                f"{rhs.type}.",
                hint="Cast the integer operands to u64 (t.params[0].cast_u64(), symbol_u64 and tags already are), "
                     "or compare them to get bools.")

    def __and__(self, o: Any) -> ScalarExpr: return self._logic(o, "&")
    def __rand__(self, o: Any) -> ScalarExpr: return self._logic(o, "&", True)
    def __or__(self, o: Any) -> ScalarExpr: return self._logic(o, "|")
    def __ror__(self, o: Any) -> ScalarExpr: return self._logic(o, "|", True)
    def __xor__(self, o: Any) -> ScalarExpr: return self._logic(o, "^")
    def __rxor__(self, o: Any) -> ScalarExpr: return self._logic(o, "^", True)

    def __lshift__(self, o: Any) -> ScalarExpr:
        return ScalarExpr("binary", "u64", "<<", self.cast_u64(), as_expr(o).cast_u64())

    def __rshift__(self, o: Any) -> ScalarExpr:
        return ScalarExpr("binary", "u64", ">>", self.cast_u64(), as_expr(o).cast_u64())

    def _cmp(self, other: Any, op: str) -> ScalarExpr:
        return ScalarExpr("binary", "bool", op, self, as_expr(other))

    def __lt__(self, o: Any) -> ScalarExpr: return self._cmp(o, "<")
    def __le__(self, o: Any) -> ScalarExpr: return self._cmp(o, "<=")
    def __gt__(self, o: Any) -> ScalarExpr: return self._cmp(o, ">")
    def __ge__(self, o: Any) -> ScalarExpr: return self._cmp(o, ">=")
    def __eq__(self, o: Any) -> ScalarExpr: return self._cmp(o, "==")  # type: ignore[override]
    def __ne__(self, o: Any) -> ScalarExpr: return self._cmp(o, "!=")  # type: ignore[override]

    def cast_bool(self) -> ScalarExpr: return ScalarExpr("cast", "bool", self)
    def cast_i64(self) -> ScalarExpr: return ScalarExpr("cast", "i64", self)
    def cast_u64(self) -> ScalarExpr: return ScalarExpr("cast", "u64", self)


def as_expr(x: Any) -> ScalarExpr:
    """``x`` as a ScalarExpr: itself, a bool literal, an integer literal (i64; u64 from 2**63 up to 2**64 - 1)."""
    if isinstance(x, ScalarExpr):
        return x
    if isinstance(x, (bool, np.bool_)):
        return ScalarExpr("lit_bool", "bool", bool(x))
    if isinstance(x, numbers.Integral):
        v = int(x)
        if _I64_MIN <= v <= _I64_MAX:
            return ScalarExpr("lit_i64", "i64", v)
        if 0 <= v < _U64:
            return ScalarExpr("lit_u64", "u64", v)
        _refuse(f"the integer {v} is outside 64 bits; a scalar expression holds i64 or u64 values.",
                hint="Use a value between -2**63 and 2**64 - 1.")
    if isinstance(x, Expr):
        _refuse(f"`{x!r}` is a loop expression of the workload, not a scalar expression: the two do not mix.",
                hint="In a scalar expression read a loop variable with axis('b') (t.get('b') in a key function) and "
                     "a launch axis with t.params[i]; or write the whole condition as a loop expression (b < 4, "
                     "slot_u64(0) != 0). A runtime slot is read while the workload is listed, before any key: to "
                     "key on it, launch with it as an axis (k[b, slot_u64(0)]) and key on t.params[1].")
    _refuse(f"cannot use {type(x).__name__} {x!r} in a scalar expression: it holds bools and 64-bit integers.",
            hint="Use an int or a bool, t.params[i], t.get('b'), t.tags['name'] or symbol_u64('name').")


def symbol_u64(name: str) -> ScalarExpr:
    """The run-time symbol ``name`` as a u64, read for each task (``program.set_symbol_u64(name, n)``)."""
    if not isinstance(name, str) or not name:
        _refuse(f"symbol_u64(name): name must be a non-empty str, got {type(name).__name__} {name!r}.",
                hint='Write symbol_u64("special").')
    return ScalarExpr("symbol_u64", "u64", name)


def axis(name: str) -> ScalarExpr:
    """The task's loop variable ``name`` as an i64 (``t.get(name)``)."""
    if not isinstance(name, str) or not name:
        _refuse(f"axis(name): name must be a loop variable's name (a str), got {type(name).__name__} {name!r}.",
                hint='Write axis("b") for the first P axis.')
    return ScalarExpr("axis_var", "i64", name, None)  # (b: the default, a ScalarExpr, when given)


def task_param(index: int) -> ScalarExpr:
    """The task's ``index``-th launch axis value as an i64 (``t.params[index]``)."""
    if isinstance(index, bool) or not isinstance(index, numbers.Integral) or index < 0:
        _refuse(f"task_param(index): index must be an int >= 0, got {index!r}.",
                hint="Write t.params[0] for the first launch axis (k[b] launches with params [b]).")
    return ScalarExpr("task_param", "i64", int(index))


class _Traced:
    """A part of the traced task read by index only. It has no length and no items while traced (a key written the
    reference's way is traced once, for every task), so ``len``, iteration and ``in`` are refused at once: without
    them Python would iterate it by calling ``__getitem__(0)``, ``(1)``, ... for ever (``sum(t.params)``)."""

    _shown = ""
    _hint = ""

    def _no_sequence(self, use: str) -> NoReturn:
        _refuse(f"{use} of {self._shown} of a traced task: a key function written the reference's way (with "
                "t.tags, .cast_u64(), .where(...)) is traced once, for every task, and there it has no length or "
                "items to loop over.", hint=self._hint)

    def __iter__(self) -> NoReturn:
        self._no_sequence("iterating over (or unpacking, sum(), tuple())")

    def __len__(self) -> int:
        self._no_sequence("len()")

    def __contains__(self, item: Any) -> bool:
        self._no_sequence("`in`")


class _Params(_Traced):
    """``t.params[i]`` of the traced task."""

    _shown = "t.params"
    _hint = ("Index the launch axes one by one, e.g. t.params[0] + t.params[1], or write the key for concrete tasks "
             "(plain ints: no .cast_u64(), no t.tags), where t.params is a list.")

    def __getitem__(self, i: int) -> ScalarExpr:
        return task_param(i)


class _Tags(_Traced):
    """``t.tags[name]`` of the traced task: a u64 the reference reads from the symbol ``name``."""

    _shown = "t.tags"
    _hint = 'Read each tag by its name: t.tags["mask"].'

    def __getitem__(self, name: str) -> ScalarExpr:
        if not isinstance(name, str) or not name:
            _refuse(f"t.tags[{name!r}]: a tag is named by a non-empty str.", hint='Write t.tags["mask"].')
        return ScalarExpr("task_tag_u64", "u64", name)


class TaskExpr:
    """The symbolic task a key function is traced with (``trace_task_fn``): ``t.params[i]``, ``t.get("b")``,
    ``t.get_axis_value(i)`` and ``t.tags["name"]`` are scalar expressions."""

    def __init__(self) -> None:
        self.params = _Params()
        self.tags = _Tags()

    def get(self, name: str, default: Any = _UNSET) -> ScalarExpr:
        e = axis(name)
        if default is not _UNSET:
            e.b = as_expr(default)
        return e

    def get_axis_value(self, i: int) -> ScalarExpr:
        return task_param(i)


def trace_task_fn(fn: Callable[[Any], Any]) -> ScalarExpr:
    """``fn`` called with a TaskExpr, its result as a ScalarExpr."""
    return as_expr(fn(TaskExpr()))


def to_cpp(expr: Any) -> NoReturn:
    as_expr(expr).to_cpp()
    raise AssertionError("unreachable")  # pragma: no cover


# -- evaluation, with C++'s 64-bit semantics -------------------------------------------------------------------------
class _Eval:
    """Evaluates a ScalarExpr for one task (``params``, ``bindings``); errors name the expression, ``subject`` (the
    task, or a condition's loop values) and what went wrong, at ``loc``."""

    def __init__(self, root: ScalarExpr, what: str, params: Any, bindings: Mapping[str, Any], subject: str,
                 loc: SourceLocation | None) -> None:
        self.root, self.what, self.params, self.bindings = root, what, params, bindings
        self.subject, self.loc = subject, loc

    def fail(self, problem: str, hint: str) -> NoReturn:
        raise PtortValueError(f"{self.what} `{self.root.to_debug_str()}` {self.subject}: {problem}", hint=hint,
                              where=self.loc, locate=self.loc is None)

    def value(self, e: ScalarExpr) -> tuple[int, str]:
        """(value, C++ type) of ``e``: a bool as 0/1 with type "bool"."""
        k = e.kind
        if k == "lit_bool":
            return int(bool(e.a)), "bool"
        if k == "lit_i64":
            return int(e.a), "i64"
        if k == "lit_u64":
            return int(e.a) % _U64, "u64"
        if k == "task_param":
            params = self.params
            if params is None:
                self.fail(f"task_param({e.a}) reads a task's launch axes, and a condition has none.",
                          hint="Read the loop variables of a condition with axis('b').")
            if e.a >= len(params):
                self.fail(f"t.params[{e.a}] does not exist: the task has {len(params)} launch axis value(s) "
                          f"{list(params)}.", hint="Read a launch axis the kernel is launched with (k[b, h] has "
                                                   "t.params[0] and t.params[1]), or a loop variable: t.get('b').")
            return _wrap_i64(self._int(params[e.a], f"t.params[{e.a}]")), "i64"
        if k == "axis_var":
            bindings = self.bindings
            if e.a in bindings:
                return _wrap_i64(self._int(bindings[e.a], f"t.get({e.a!r})")), "i64"
            if e.b is not None:
                return self.value(e.b)
            bound = ", ".join(f"{n}={v}" for n, v in sorted(bindings.items())) or "none"
            self.fail(f"there is no loop variable {e.a!r} (the loop variables: {bound}).",
                      hint="Name a loop variable bound there (P() names them b, h, s, d, ...; P.seq i; P.sel e); a "
                           "key function may give a default, t.get('x', 0).")
        if k in ("symbol_u64", "task_tag_u64"):
            shown = f"symbol_u64({e.a!r})" if k == "symbol_u64" else f"t.tags[{e.a!r}] (the symbol {e.a!r})"
            v = symbol_value(e.a, f"{self.what} reads {shown}, which", self.loc)
            if isinstance(v, float):
                self.fail(f"{shown} is read as a u64, but the symbol was set with set_symbol_f32 ({v!r}).",
                          hint=f"Set it with program.set_symbol_u64({e.a!r}, n).")
            return int(v) % _U64, "u64"
        if k == "unary":
            v, t = self.value(e.b)
            if e.a == "!":
                return int(not v), "bool"
            t = "i64" if t == "bool" else t
            return _wrap(-v if e.a == "-" else ~v, t), t
        if k == "ternary":
            c, _ = self.value(e.a)
            return self.value(e.b if c else e.c)
        if k == "cast":
            v, _ = self.value(e.a)
            return (int(v != 0), "bool") if e.type == "bool" else (_wrap(v, e.type), e.type)
        return self.binary(e)

    def binary(self, e: ScalarExpr) -> tuple[int, str]:
        op = e.a
        if op in ("&&", "||"):  # (short-circuit, as C++)
            lv, _ = self.value(e.b)
            if (op == "&&" and not lv) or (op == "||" and lv):
                return int(op == "||"), "bool"
            rv, _ = self.value(e.c)
            return int(bool(rv)), "bool"
        lv, lt = self.value(e.b)
        rv, rt = self.value(e.c)
        t = "u64" if "u64" in (lt, rt) else "i64"  # (C++'s usual conversions; a bool takes part as 0/1)
        lv, rv = _wrap(lv, t), _wrap(rv, t)
        if op in ("<", "<=", ">", ">=", "==", "!="):
            return int({"<": lv < rv, "<=": lv <= rv, ">": lv > rv, ">=": lv >= rv, "==": lv == rv,
                        "!=": lv != rv}[op]), "bool"
        if op in ("/", "%"):
            if rv == 0:
                self.fail(f"`{e.to_debug_str()}` divides by zero.",
                          hint="Keep the divisor non-zero for every task (C++ leaves this undefined).")
            q = abs(lv) // abs(rv) * (1 if (lv < 0) == (rv < 0) else -1)  # (truncated toward zero, as C++)
            return _wrap(q if op == "/" else lv - q * rv, t), t
        if op in ("<<", ">>"):
            if rv >= 64:
                self.fail(f"`{e.to_debug_str()}` shifts by {rv}, 64 or more bits (C++ leaves this undefined).",
                          hint="Shift a u64 by 0..63 bits.")
            return _wrap(lv << rv if op == "<<" else lv >> rv, "u64"), "u64"
        fn: dict[str, Callable[[int, int], int]] = {
            "+": lambda a, b: a + b, "-": lambda a, b: a - b, "*": lambda a, b: a * b,
            "&": lambda a, b: a & b, "|": lambda a, b: a | b, "^": lambda a, b: a ^ b}
        return _wrap(fn[op](lv, rv), t), t

    def _int(self, v: Any, shown: str) -> int:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
            self.fail(f"{shown} is {type(v).__name__} {v!r}, not an integer.",
                      hint="Key on integer launch axes and loop variables.")
        return int(v)


def _wrap(v: int, t: str) -> int:
    if t == "u64":
        return v % _U64
    if t == "bool":
        return int(v != 0)
    return _wrap_i64(v)


def _wrap_i64(v: int) -> int:
    return (v + 2**63) % _U64 - 2**63


def evaluate_u64(expr: ScalarExpr, task: Any, what: str = "the scalar expression") -> int:
    """``expr`` for ``task`` in the run under way, as the u64 a dispatch key is (``(uint64_t)(expr)``)."""
    subject = f"for task {task.id} ({task.kernel}{task.params})"
    v, _ = _Eval(expr, what, task.params, task.bindings, subject, task.loc).value(expr)
    return v % _U64


class ScalarCondition(Expr):
    """A scalar expression as a condition, ``P.when(axis("b") < symbol_u64("cut").cast_i64())`` (the reference's
    predicates): it holds where the expression is non-zero, its loop variables read from the iteration's bindings
    and its symbols from the run. A loop expression, so conditions take it where they take ``b < 4``."""

    __slots__ = ("expr", "loc", "api")

    def __init__(self, expr: ScalarExpr, api: str = "P.when", loc: SourceLocation | None = None) -> None:
        self.expr, self.api, self.loc = expr, api, loc if loc is not None else user_location()

    def evaluate(self, bindings: Mapping[str, Any]) -> bool:
        subject = f"with {', '.join(f'{k} = {v}' for k, v in bindings.items()) or 'no loop variables'}"
        v, _ = _Eval(self.expr, f"the {self.api} condition", None, bindings, subject, self.loc).value(self.expr)
        return v != 0

    def __reduce__(self) -> tuple[Any, ...]:
        return ScalarCondition, (self.expr, self.api, self.loc)

    def __repr__(self) -> str:
        return self.expr.to_debug_str()

    __str__ = __repr__


class KeyFunction:
    """A dispatch or stream key function as a run calls it, once per task: ``fn(task)`` on the concrete task, its
    result used as it is (or evaluated for the task when it is a ScalarExpr).

    A function written the reference's way, which the concrete task cannot run because it uses what only scalar
    expressions and the symbolic task have (``t.params[0].cast_u64()``, ``t.tags["mask"]``, ``.where(...)``: an
    AttributeError naming one of ``SYMBOLIC_ONLY``), is traced once with a TaskExpr, and the expression it builds is
    evaluated for every task. Any other error of the function is its own (a TypeError adding None, a misspelt
    attribute) and is raised as it is, for the caller to report as the user's."""

    def __init__(self, fn: Callable[[Any], Any], what: str) -> None:
        self.fn, self.what = fn, what
        self.expr: ScalarExpr | None = None
        self._noted: RunReads | None = None  # the run whose reads hold the traced expression's symbols

    def __call__(self, task: Any) -> Any:
        reads = run_reads.get()
        if reads is not None and not reads.keys_called:
            reads.keys_called = True
        expr = self.expr
        if expr is None:
            try:
                key = self.fn(task)
            except AttributeError as e:
                if isinstance(e, PtortError) or getattr(e, "name", None) not in SYMBOLIC_ONLY:
                    raise  # (the function's own error: the caller reports it as the user's)
                expr = self.expr = self._traced(e)
            else:
                if isinstance(key, ScalarExpr):
                    note_reads(key, reads)
                    return evaluate_u64(key, task, self.what)
                return key
        if reads is not None and self._noted is not reads:
            note_reads(expr, reads)
            self._noted = reads
        return evaluate_u64(expr, task, self.what)

    def _traced(self, error: Exception) -> ScalarExpr:
        """The expression ``fn`` builds from a TaskExpr; ``error`` (what the concrete task raised) when it builds
        none. A scalar expression built wrong (``&`` of an i64 and a u64) raises its own error."""
        try:
            traced = self.fn(TaskExpr())
        except PtortError:
            raise
        except Exception:  # noqa: BLE001 - not a reference-style key: the concrete task's error stands
            raise error from None
        if not isinstance(traced, ScalarExpr):
            raise error
        return traced


def note_reads(expr: ScalarExpr, reads: RunReads | None) -> None:
    """Note every symbol (and tag) ``expr`` reads in ``reads`` (the run's), as a u64."""
    if reads is not None:
        for leaf in expr.leaves():
            if leaf.kind in ("symbol_u64", "task_tag_u64"):
                reads.note(leaf.a, "u64")


def _symbolic_only() -> frozenset[str]:
    """The attributes only scalar expressions and the symbolic task have, not the concrete Task nor its ints: what a
    reference-style key uses (``cast_u64``, ``where``, ``tags``, ...), from the classes themselves."""
    symbolic = {n for n in dir(ScalarExpr) if not n.startswith("_") and callable(getattr(ScalarExpr, n))}
    symbolic |= {n for n in (*dir(TaskExpr), *vars(TaskExpr())) if not n.startswith("_")}
    concrete = {n for n in dir(Task) if not n.startswith("_")} | {f.name for f in dataclasses.fields(Task)}
    concrete |= {n for n in dir(int) if not n.startswith("_")}
    return frozenset(symbolic - concrete)


# What a key function's AttributeError must name for KeyFunction to trace it symbolically.
SYMBOLIC_ONLY = _symbolic_only()


__all__ = ["Symbol", "ScalarExpr", "ScalarCondition", "ScalarExprError", "as_expr", "symbol_u64", "axis",
           "task_param", "TaskExpr", "trace_task_fn", "to_cpp", "fnv1a_64", "slot_u64", "slot_i64", "slot_bool",
           "evaluate_u64", "KeyFunction", "SYMBOLIC_ONLY", "note_reads", "symbol_value", "run_symbols", "run_reads",
           "RunReads"]
