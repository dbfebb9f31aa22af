"""The user's workload API: ``@workload``, ``P`` loops (and ``P.pipe``/``P.when``), ``task()``, the functional
loops, ``cond``/``combine``/``sequential`` and the runtime-slot statements. Each builds a node of the workload tree
(``tree``) through the builder (``builder``)."""
from __future__ import annotations

from contextlib import contextmanager
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..errors import DSLUsageError, PtortTypeError, PtortValueError, user_location
from . import runtime_slots
from .axes import Axis, Ragged, Sparse, SparseRow
from .builder import (
    BODY_HINT,
    add,
    adopt,
    body_with_var,
    building,
    call_body,
    check_axes,
    fresh_var,
    in_builder,
    launch_task,
    require_builder,
    scalar_argument,
)
from .expr import Expr, LoopVar, name_template, refuse_placeholders
from .kernel import Kernel
from .tasks import Cycles, Task
from .tree import NodeKind, Workload, group
from .types import Tensor, TensorView
from .user_code import refuse_generator, refuse_generator_result, run_user_body
from .wiring import pipe_pipeline


def task(kernel: Any, params: Sequence[Any] = (), resources: Any = None, *, cycles: Cycles = None) -> Workload:
    """A task leaf: ``task(k, [t], {"src": X[t], "dst": Y[t]})``; ``cycles=`` pins its cost.

    ``kernel`` may be a @kernel (then ``resources`` is a dict param -> tensor view, checked against the
    annotations) or a name string (enumerate-only, as in the reference's early examples).
    """
    loc = user_location()
    if cycles is not None and not callable(cycles) and (isinstance(cycles, bool) or not isinstance(cycles, int)
                                                        or cycles < 0):
        raise PtortValueError(f"task(cycles=...) must be an int >= 0 or a function of the task, got {cycles!r}.",
                              hint="cycles pins this task's cost in the simulator: cycles=100 or "
                                   "cycles=lambda t: times[t.params[0]].")
    if not isinstance(params, (list, tuple)):
        params = [params]
    if isinstance(kernel, Kernel):
        if resources is None:
            resources = {}
        if not isinstance(resources, dict):
            raise PtortTypeError(f"task(kernel=@kernel, ...) requires resources=dict[param -> tensor], got "
                                 f"{type(resources).__name__}.",
                                 hint=f"Write task({kernel.name}, [t], {{'src': X[t], 'dst': Y[t]}}).")
        return launch_task(kernel, tuple(params), resources, loc, cycles)
    if not isinstance(kernel, str):
        raise PtortTypeError(f"task() needs a @kernel or a kernel name, got {type(kernel).__name__} {kernel!r}.",
                             hint="Decorate the function with @kernel and pass it.")
    check_axes(str(kernel), params, loc)
    kernel = name_template(kernel, "task()")  # task(f"expert_{e}", ...): each task gets its own name
    refuse_placeholders(resources, f"task({kernel!r}) resources")
    node = Workload(NodeKind.TASK, loc=loc, kernel=kernel, params=tuple(params),
                    resources=resources if resources is not None else [], cycles=cycles)
    add(node)
    return node


# -- P: loops inside @workload ---------------------------------------------------------------------------------------
def _check_axis(axis: Any, api: str) -> Any:
    if isinstance(axis, (Axis, SparseRow, Sparse, list, tuple, range)):
        return axis
    if isinstance(axis, type) and issubclass(axis, Axis):
        raise PtortTypeError(f"{api} got the axis class {axis.__name__}; instantiate it.",
                             hint=f"Write {axis.__name__}() (note the parentheses).")
    raise PtortTypeError(f"{api} needs an axis (Dense[n](), DenseDyn(n), Ragged, Sparse row), got {axis!r}.",
                         hint="Build one with Dense[8]() or DenseDyn(n).")


_LOOP_API = {NodeKind.PARALLEL_FOR: "P", NodeKind.FOR_EACH: "P.seq", NodeKind.SELECT: "P.sel"}


class _PLoop:
    """``P(...)``, ``P.seq(...)`` or ``P.sel(...)``: iterating it once opens the loop body and yields its variables."""

    def __init__(self, axes: tuple[Any, ...], names: Sequence[str] | None, kind: NodeKind) -> None:
        self.axes, self.names, self.kind = axes, names, kind
        self.loc = user_location()
        api = _LOOP_API[kind]
        count = sum(2 if isinstance(a, Ragged) else 1 for a in axes)
        if names is None:
            return
        refuse_placeholders(names, f"{api}(names=...)")
        if isinstance(names, str) or not isinstance(names, (list, tuple)):
            raise PtortTypeError(f"{api}(names=...) takes a list of variable names, got {names!r}.",
                                 hint=f"Write {api}(..., names=['tile']).", where=self.loc, locate=False)
        bad = [n for n in names if not isinstance(n, str) or not n.isidentifier()]
        if bad or len(set(names)) != len(names) or len(names) > count:
            what = (f"{bad[0]!r} is not a Python identifier" if bad else
                    "a name repeats" if len(set(names)) != len(names) else
                    f"{len(names)} names for {count} loop variable(s)")
            raise PtortValueError(f"{api}(names={list(names)!r}): {what}.",
                                  hint=f"Give at most {count} distinct identifiers, one per loop variable "
                                       "(a Ragged axis has two: the row and the position in it).",
                                  where=self.loc, locate=False)

    def __iter__(self) -> Iterator[Any]:
        st = require_builder("P()" if self.kind is NodeKind.PARALLEL_FOR else "P.seq()")
        vars_: list[LoopVar] = []
        names = list(self.names or [])
        clash = [n for n in names if n in st.used_names]
        if clash:
            raise PtortValueError(f"loop variable name {clash[0]!r} is already used by an enclosing loop.",
                                  hint="Give the inner loop another name; t.get(name) must say which loop it means.",
                                  where=self.loc, locate=False)
        for axis in self.axes:
            for _ in range(2 if isinstance(axis, Ragged) else 1):
                vars_.append(fresh_var(st, names.pop(0) if names else None))
        st.frames.append([])
        depth = len(st.frames)
        yield vars_[0] if len(vars_) == 1 else tuple(vars_)
        if len(st.frames) != depth:  # the body raised or broke out; the build is being abandoned
            return
        body = group(st.frames.pop())
        st.used_names.difference_update(v.name for v in vars_)  # only enclosing loops must not share a name
        add(Workload(self.kind, loc=self.loc, axes=self.axes, vars=tuple(vars_), body=body))


class _PNamespace:
    """``P(axes)`` parallel loop; ``P.seq`` sequential; ``P.sel`` sparse; ``P.pipe()``; ``P.when``/``otherwise``."""

    def __call__(self, *axes: Any, names: Sequence[str] | None = None) -> _PLoop:
        require_builder("P()")
        if not axes:
            raise PtortTypeError("P() needs at least one axis.", hint="Write `for t in P(Dense[8]()):`.")
        return _PLoop(tuple(_check_axis(a, "P()") for a in axes), names, NodeKind.PARALLEL_FOR)

    grid = __call__

    def seq(self, axis: Any, name: str | None = None) -> _PLoop:
        """An ordered loop: ``for k in P.seq(Dense[8]()):`` (iteration k + 1 after iteration k)."""
        require_builder("P.seq()")
        return _PLoop((_check_axis(axis, "P.seq()"),), [name] if name else None, NodeKind.FOR_EACH)

    def sel(self, source: Any, name: str | None = None) -> _PLoop:
        """One iteration per index of ``source`` (a list, a Sparse row ``sp[b]`` or a whole Sparse)."""
        require_builder("P.sel()")
        return _PLoop((_check_axis(source, "P.sel()"),), [name] if name else None, NodeKind.SELECT)

    @contextmanager
    def pipe(self) -> Iterator[None]:
        """Each top-level statement inside becomes one pipeline stage, coupled by the channels it uses."""
        st = require_builder("P.pipe()")
        loc = user_location()
        if st.pipe_depth:
            raise DSLUsageError("pipelines cannot nest: this P.pipe() block is inside another one.",
                                hint="Put every stage directly under one `with P.pipe():` block (a stage may be a "
                                     "loop of tasks), or connect() separate processes.", where=loc, locate=False)
        st.frames.append([])
        depth = len(st.frames)
        st.pipe_depth += 1
        try:
            yield
        finally:
            st.pipe_depth -= 1
        if len(st.frames) != depth:
            return
        stages = st.frames.pop()
        add(pipe_pipeline(stages, loc))

    @contextmanager
    def when(self, pred: Any) -> Iterator[None]:
        """The block's statements run where ``pred`` (a loop expression, bool or function of the task) holds."""
        _check_predicate(pred, "P.when")
        st = require_builder("P.when()")
        loc = user_location()
        st.frames.append([])
        yield
        then = group(st.frames.pop())
        add(Workload(NodeKind.COND, loc=loc, pred=pred, then=then))

    @contextmanager
    def elif_(self, pred: Any) -> Iterator[None]:
        """The block's statements run where ``pred`` holds and no ``P.when``/``P.elif_`` before it in the chain did
        (Python's ``elif``; the trailing underscore because ``elif`` is a keyword)."""
        _check_predicate(pred, "P.elif_")
        tail = _chain_tail("P.elif_()")
        st = require_builder("P.elif_()")
        loc = user_location()
        st.frames.append([])
        yield
        then = group(st.frames.pop())
        tail.set_otherwise(Workload(NodeKind.COND, loc=loc, pred=pred, then=then, is_elif=True))

    @contextmanager
    def otherwise(self) -> Iterator[None]:
        """The block's statements run where the ``P.when`` (and every ``P.elif_``) just before it does not hold."""
        tail = _chain_tail("P.otherwise()")
        st = require_builder("P.otherwise()")
        st.frames.append([])
        yield
        tail.set_otherwise(group(st.frames.pop()))


def _chain_tail(api: str) -> Workload:
    """The last cond of the ``P.when`` / ``P.elif_`` chain that ends the open block, which ``api`` continues."""
    st = require_builder(api)
    frame = st.frames[-1]
    node = frame[-1] if frame else None
    if node is None or node.kind is not NodeKind.COND:
        raise DSLUsageError(f"{api} must follow P.when() (or P.elif_()).",
                            hint=f"Write `with P.when(cond): ...` immediately before "
                                 f"`with {'P.elif_(cond)' if api == 'P.elif_()' else api}: ...`, as Python's "
                                 "if / elif / else.")
    while node.has_else and node.otherwise.kind is NodeKind.COND and node.otherwise.is_elif:
        node = node.otherwise
    if node.has_else:
        raise DSLUsageError(f"{api} after P.otherwise(): the P.when() chain before it already has its otherwise "
                            "block.", hint="Put every P.elif_() between P.when() and P.otherwise(), and one "
                                           "P.otherwise() last, as Python's if / elif / else.")
    return node


P = _PNamespace()


# -- functional forms (usable inside and outside @workload) -------------------------------------------------------
def _loop(kind: NodeKind, axis: Any, body: Callable[..., Any], api: str) -> Workload:
    loc = user_location()
    axis = _check_axis(axis, api)
    var, node_body = body_with_var(body, api)
    if isinstance(axis, Ragged):
        raise PtortTypeError(f"{api} over a Ragged axis needs two loop variables; use P(ragged) in a @workload.",
                             hint="Or loop over Dense[outer] and DenseDyn(ragged.length(b)).")
    node = Workload(kind, loc=loc, axes=(axis,), vars=(var,), body=node_body)
    add(node)
    return node


def parallel_for(axis: Any, body: Callable[..., Any]) -> Workload:
    """Independent iterations: ``parallel_for(Dense[8](), lambda t: k[t](src=X[t], dst=Y[t]))``."""
    return _loop(NodeKind.PARALLEL_FOR, axis, body, "parallel_for")


def for_each(axis: Any, body: Callable[..., Any]) -> Workload:
    """Ordered iterations (iteration i+1 after iteration i)."""
    return _loop(NodeKind.FOR_EACH, axis, body, "for_each")


def select(source: Any, body: Callable[..., Any]) -> Workload:
    """One iteration per index of ``source``: a list, a Sparse row ``sp[b]``, or a whole Sparse (every index)."""
    return _loop(NodeKind.SELECT, source, body, "select")


def _check_predicate(pred: Any, api: str) -> None:
    if isinstance(pred, (bool, int, Expr)) or callable(pred):
        return
    raise PtortTypeError(f"{api}(pred) needs a bool, a loop expression or a function of the task, got "
                         f"{type(pred).__name__} {pred!r}.",
                         hint=f"Write {api}(b < 4), {api}(b.eq(0)) or {api}(lambda t: t.get('b') % 2 == 0)"
                              + ("; a string is not evaluated." if isinstance(pred, str) else "."))


def cond(pred: Any, then: Any, otherwise: Any = None) -> Workload:
    """``then`` if ``pred`` holds, else ``otherwise``: pred is a bool, a loop expression (``t < 4``) or a callable
    taking the task bindings."""
    _check_predicate(pred, "cond")
    loc = user_location()
    then_w = then if isinstance(then, Workload) else Workload(NodeKind.EMPTY)
    else_w = otherwise if isinstance(otherwise, Workload) else Workload(NodeKind.EMPTY)
    for w, what in ((then, "then"), (otherwise, "otherwise")):
        if w is not None and not isinstance(w, Workload):
            raise PtortTypeError(f"cond() {what} branch must be a workload, got {w!r}.",
                                 hint="Pass task(...)/k[t](...) or combine(...).")
    adopt(then_w, else_w)
    node = Workload(NodeKind.COND, loc=loc, pred=pred, then=then_w, otherwise=else_w, has_else=otherwise is not None)
    add(node)
    return node


def _compose(kind: NodeKind, workloads: tuple[Any, ...]) -> Workload:
    items = list(workloads[0]) if len(workloads) == 1 and isinstance(workloads[0], (list, tuple)) else list(workloads)
    for w in items:
        if not isinstance(w, Workload):
            raise PtortTypeError(f"{kind}() takes workloads, got {type(w).__name__} {w!r}.",
                                 hint="Pass task(...), k[t](...), loops or other workloads.")
    adopt(*items)
    node = Workload(kind, loc=user_location(), parts=tuple(items))
    add(node)
    return node


def combine(*workloads: Any) -> Workload:
    """Unordered composition: the children may run concurrently (data dependencies still hold)."""
    return _compose(NodeKind.COMBINE, workloads)


def sequential(*workloads: Any) -> Workload:
    """Ordered composition: each child starts after the previous one finished."""
    return _compose(NodeKind.SEQUENTIAL, workloads)


def slot_set_u64(slot: int, value: Any) -> Workload:
    """Set runtime slot ``slot`` to ``value`` (an int or a loop expression) when this statement is reached."""
    node = Workload(NodeKind.SLOT_SET, loc=user_location(),
                   slot=runtime_slots.check_slot(slot, "slot_set_u64(slot, value)"),
                   value=runtime_slots.check_value(value))
    add(node)
    return node


def slot_load_u64(slot: int, view: Any, row: int = 0, col: int = 0) -> Workload:
    """Read element [row, col] of the tile ``view`` (e.g. ``EffSeq[b, s]``) into runtime slot ``slot`` when this
    statement is reached; ``slot_u64(slot)`` then reads it in conditions, indices and keys."""
    loc = user_location()
    if isinstance(view, Tensor):
        view = TensorView(view, ())
    if not isinstance(view, TensorView):
        raise PtortTypeError(f"slot_load_u64 reads a tensor view such as X[b], got {type(view).__name__} {view!r}.",
                             hint="Write slot_load_u64(0, EffSeq[b, s]).", where=loc, locate=False)
    for name, n in (("row", row), ("col", col)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise PtortValueError(f"slot_load_u64 {name}= must be an int >= 0, got {n!r}.",
                                  hint="row= and col= pick the element inside the tile.", where=loc, locate=False)
    node = Workload(NodeKind.SLOT_LOAD, loc=loc, slot=runtime_slots.check_slot(slot, "slot_load_u64(slot, view)"),
                    view=view, row=int(row), col=int(col))
    add(node)
    return node


def empty() -> Workload:
    """A workload with nothing in it."""
    return Workload(NodeKind.EMPTY)


# -- @workload -----------------------------------------------------------------------------------------------------
class WorkloadFunction:
    """The result of ``@workload``: call it to run the body once symbolically and get its Workload tree."""

    def __init__(self, fn: Callable[..., Any], type_check: bool = True, fail_on_type_error: bool = False) -> None:
        if not callable(fn):
            raise PtortTypeError(f"@workload decorates a function, got {type(fn).__name__} {fn!r}.",
                                 hint="Write @workload above a def whose body launches tasks in P(...) loops.")
        self.fn = fn
        self.name = getattr(fn, "__name__", "workload")
        refuse_generator(fn, f"@workload '{self.name}'", "build no tasks", BODY_HINT)
        self.type_check = type_check
        self.fail_on_type_error = fail_on_type_error
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Workload:
        """Build the tree. Inside another @workload or body it builds into the enclosing one, sharing its loop
        variable names (so the outer loop's ``b`` is not shadowed) and its type-error list."""
        nested = in_builder()
        with building(self.name, self.type_check, report=False) as st:
            result = self.fn(*args, **kwargs) if nested else \
                run_user_body(self.fn, args, kwargs, f"the body of @workload '{self.name}'")
            refuse_generator_result(result, f"@workload '{self.name}'", "build no tasks", BODY_HINT)
            nodes = list(st.frames[-1])
            errors = list(st.type_errors)
        if isinstance(result, Workload) and not any(result is n for n in nodes):
            nodes.append(result)
        root = group(nodes)
        root.default_name(self.name)
        if nested:
            add(root)
            return root
        root.set_type_errors(errors if self.type_check else [])
        if root.type_errors and self.fail_on_type_error:
            raise PtortTypeError(f"Type errors in workload '{self.name}':\n"
                                 + "\n".join(e.format() for e in root.type_errors),
                                 hint="Fix the kernel launches listed above.", where=root.type_errors[0].location,
                                 locate=False)
        return root


def workload(fn: Callable[..., Any] | None = None, *, type_check: bool = True,
             fail_on_type_error: bool = False) -> Any:
    """``@workload`` or ``@workload(type_check=True, fail_on_type_error=False)``."""
    if fn is None:
        return lambda f: WorkloadFunction(f, type_check, fail_on_type_error)
    return WorkloadFunction(fn, type_check, fail_on_type_error)


__all__ = ["Workload", "Task", "workload", "WorkloadFunction", "P", "task", "parallel_for", "for_each", "select",
           "cond", "combine", "sequential", "empty", "in_builder", "launch_task", "adopt", "group", "call_body",
           "slot_set_u64", "slot_load_u64", "scalar_argument"]
