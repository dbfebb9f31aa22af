"""Node parts under loop bindings: the concrete Task a task node stands for, the points a loop visits, and the value
of a callable condition.

Both run for every iteration of every loop, so a task node's factory is built once and kept on the node.
"""
from __future__ import annotations

import inspect
import itertools
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..errors import DSLUsageError, PtortTypeError, SourceLocation, raise_user_error
from .axes import Axis, Sparse, SparseRow
from .expr import Expr, LoopVar, NameTemplate, evaluate
from .task_code import compile_factory
from .tasks import Task, TaskFactory
from .tree import Workload
from .types import TensorView


def _getter(value: Any) -> Callable[[dict[str, Any]], Any]:
    if isinstance(value, LoopVar):
        name = value.name
        return lambda b: b[name]
    if isinstance(value, Expr):
        return value.evaluate
    return lambda b: value


def _view_maker(view: TensorView, loc: SourceLocation | None) -> Callable[[dict[str, Any]], TensorView]:
    if not view.is_symbolic:
        return lambda b: view
    base = view.base
    return lambda b: TensorView(base, view.resolve(b, loc))


def task_factory(node: Workload) -> TaskFactory:
    """A function building the concrete Task of a task node under loop bindings (built once, kept on the node)."""
    cached = node.factory
    if cached is not None:
        return cached
    kernel = node.kernel
    name = kernel if isinstance(kernel, str) else kernel.name
    kref = None if isinstance(kernel, str) else kernel
    cycles, loc = node.cycles, node.loc
    params = [_getter(p) for p in node.params]
    res = node.resources
    make: TaskFactory
    # Loops hand every iteration a fresh bindings dict that nobody changes afterwards, so tasks keep it as is.
    # (A KeyError is a loop variable with no value here: the build refuses that, this is the backstop.)
    # the simplest node, task(k, [b]): its factory is already one small function
    single = isinstance(res, dict) and not res and len(params) == 1 and isinstance(node.params[0], LoopVar)
    if single:
        var = node.params[0].name

        def make(b: dict[str, Any]) -> Task:
            try:
                return Task(name, [b[var]], {}, 0, b, kref, cycles, loc)
            except KeyError as e:
                raise missing_binding(e, b, loc) from None
    elif isinstance(res, dict):
        makers = [(k, _view_maker(v, loc) if isinstance(v, TensorView) else _getter(v)) for k, v in res.items()]

        def make(b: dict[str, Any]) -> Task:
            try:
                return Task(name, [g(b) for g in params], {k: m(b) for k, m in makers}, 0, b, kref, cycles, loc)
            except KeyError as e:
                raise missing_binding(e, b, loc) from None
    else:
        res = list(res)  # (read once: a generator or other one-pass iterable is used up by the first reading)
        items = [_view_maker(v, loc) if isinstance(v, TensorView) else _getter(v) for v in res]

        def make(b: dict[str, Any]) -> Task:
            try:
                return Task(name, [g(b) for g in params], [m(b) for m in items], 0, b, kref, cycles, loc)
            except KeyError as e:
                raise missing_binding(e, b, loc) from None
    if not single:
        # once per task of every loop: its parameters and views written out as one function (task_code), this
        # factory called for anything unusual (and for the error it raises)
        make = compile_factory(name, kref, cycles, loc, list(node.params), res, make)
    if isinstance(name, NameTemplate):  # task(f"expert_{e}", ...): each task is named by its own value of e
        renamed = name.renaming(make)

        def make(b: dict[str, Any]) -> Task:
            try:
                task: Task = renamed(b)
            except KeyError as e:
                raise missing_binding(e, b, loc) from None
            return task
    node.remember_factory(make)
    return make


def missing_binding(e: KeyError, bindings: Any, loc: SourceLocation | None) -> Exception:
    """The error for a KeyError met while evaluating under ``bindings``: a loop variable with no value there (used
    outside its loop; the build refuses that where it can see it) becomes a DSLUsageError naming it; any other
    KeyError is returned unchanged."""
    name = e.args[0] if len(e.args) == 1 else None
    if not isinstance(name, str) or name in bindings or not name.isidentifier():
        return e
    bound = ", ".join(f"'{k}'" for k in bindings if isinstance(k, str) and k.isidentifier()) or "none"
    return DSLUsageError(f"loop variable '{name}' has no value here: it is used outside its loop (the loop variables "
                         f"bound here: {bound}).",
                         hint="Use a loop variable only inside the body of its loop: not after the loop, after a "
                              "`break` or `return`, or in another workload.", where=loc, locate=loc is None)


def make_task(node: Workload, bindings: dict[str, Any]) -> Task:
    """The concrete Task a task node stands for under ``bindings``."""
    make = node.factory  # (once per task: the node's factory, built on first use)
    if make is None:
        make = task_factory(node)
    return make(bindings)


def call_predicate(pred: Callable[..., Any], bindings: dict[str, Any], loc: SourceLocation | None) -> Any:
    """A callable condition takes the task bindings (``lambda t: t.get("b") < 4``) or nothing (``lambda: flag``,
    the reference's 96b0376 form)."""
    params: list[Any]
    try:
        params = [p for p in inspect.signature(pred).parameters.values()
                  if p.default is p.empty and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):  # builtins without a signature: give them the bindings
        params = [None]
    if len(params) > 1:
        raise PtortTypeError(f"a condition function takes {len(params)} arguments; it gets one (the task, with "
                             "t.get('b') for its loop variables) or none.",
                             hint="Write lambda t: t.get('b') < 4.", where=loc, locate=loc is None)
    try:
        return pred() if not params else pred(Task("condition", [], {}, 0, dict(bindings), loc=loc))
    except Exception as e:  # noqa: BLE001 - the user's predicate
        raise_user_error(e, f"a condition function (at {loc or 'its cond'}, for {dict(bindings)})")


def resolve_select_source(source: Any, bindings: dict[str, Any]) -> Sequence[Any]:
    """The points a loop over ``source`` visits under ``bindings``: an axis's points, a Sparse row's indices, every
    index of a Sparse, or the ints of a list."""
    try:
        return _points(source, bindings)
    except KeyError as e:
        raise missing_binding(e, bindings, getattr(source, "loc", None)) from None


def _points(source: Any, bindings: dict[str, Any]) -> Sequence[Any]:
    if isinstance(source, Axis):
        return source.points(bindings)
    if isinstance(source, SparseRow):
        return source.resolve(bindings)
    if isinstance(source, Sparse):
        return list(source)
    out = []
    for v in source:
        value = evaluate(v, bindings)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise PtortTypeError(f"select/P.sel over a list needs int indices, got {value!r} in {list(source)!r}.",
                                 hint="Select over a list of ints, an axis (Dense[n]()) or a Sparse row.")
        out.append(int(value))
    return out


def loop_points(axes: tuple[Any, ...], bindings: dict[str, Any]) -> Iterator[tuple[Any, ...]]:
    """Every point of a loop over several axes (a Ragged axis gives two values per point), in row-major order."""
    lists = []
    for a in axes:
        pts = resolve_select_source(a, bindings)
        lists.append([p if isinstance(p, tuple) else (p,) for p in pts])
    for combo in itertools.product(*lists):
        yield tuple(v for part in combo for v in part)


__all__ = ["TaskFactory", "task_factory", "make_task", "missing_binding", "call_predicate", "resolve_select_source",
           "loop_points"]
