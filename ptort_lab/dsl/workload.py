"""The user's workload API: ``@workload``, ``P`` loops (and ``P.pipe``/``P.when``), ``task()``, the functional
loops, ``cond``/``combine``/``sequential`` and the runtime-slot statements. Each builds a node of the workload tree
(``tree``) through the builder (``builder``)."""
from __future__ import annotations

import numbers
import sys
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..errors import DSLUsageError, PtortTypeError, PtortValueError, SourceLocation, user_location
from . import runtime_slots
from .axes import Axis, Ragged, RaggedFlat, Sparse, SparseRow
from .builder import (
    BODY_HINT,
    WorkloadBuilder,
    active_builder,
    add,
    adopt,
    body_with_var,
    building,
    call_body,
    check_axes,
    check_pending,
    close_vars,
    drop_pending,
    fresh_var,
    in_builder,
    launch_task,
    note_pending,
    refuse_stray_vars,
    require_builder,
    scalar_argument,
    take_returned,
)
from .expr import Expr, LoopVar, name_template, refuse_placeholders
from .kernel import Kernel
from .scalar_expr import ScalarCondition, ScalarExpr
from .spellings import UNSET, one_of, required
from .tasks import MAX_CYCLES, Cycles, Task, cycles_bound_hint
from .tree import NodeKind, Workload, group
from .types import Tensor, TensorView
from .user_code import check_arity, refuse_generator, refuse_generator_result, run_user_body
from .wiring import pipe_pipeline


def task(kernel: Any, params: Sequence[Any] = (), resources: Any = None, *, cycles: Cycles = None) -> Workload:
    """A task leaf: ``task(k, [t], {"src": X[t], "dst": Y[t]})``; ``cycles=`` pins its cost.

    ``kernel`` may be a @kernel (then ``resources`` is a dict param -> tensor view, checked against the
    annotations) or a name string (enumerate-only, as in the reference's early examples).
    """
    loc = user_location()
    if callable(cycles):
        check_arity(cycles, 1, "task(cycles=fn) calls fn with the task (one argument)",
                    "cycles=lambda t: times[t.params[0]]")
    elif cycles is not None:
        if isinstance(cycles, bool) or not isinstance(cycles, numbers.Integral) or cycles < 0:
            raise PtortValueError(f"task(cycles=...) must be an int >= 0 or a function of the task, got {cycles!r}.",
                                  hint="cycles pins this task's cost in the simulator: cycles=100 or "
                                       "cycles=lambda t: times[t.params[0]].")
        cycles = int(cycles)  # a numpy integer (from a table of costs) runs as the int it holds
        if cycles > MAX_CYCLES:
            raise PtortValueError(f"task(cycles=...) must be at most 2**53, got {cycles!r}.",
                                  hint=cycles_bound_hint("task(cycles=...)"))
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
    if isinstance(axis, np.ndarray) and axis.ndim == 1 and axis.dtype.kind in "iu":
        axis = axis.tolist()  # e.g. np.nonzero(mask)[0]: the ints it holds
    if isinstance(axis, (list, tuple)):
        _check_index_list(axis, api)
        return axis
    if isinstance(axis, (Axis, SparseRow, Sparse, range)):
        return axis
    if isinstance(axis, type) and issubclass(axis, Axis):
        raise PtortTypeError(f"{api} got the axis class {axis.__name__}; instantiate it.",
                             hint=f"Write {axis.__name__}() (note the parentheses).")
    raise PtortTypeError(f"{api} needs an axis (Dense[n](), DenseDyn(n), Ragged, Sparse row), got {axis!r}.",
                         hint="Build one with Dense[8]() or DenseDyn(n).")


def _check_index_list(values: list[Any] | tuple[Any, ...], api: str) -> None:
    """A loop over a list visits its entries: each an int or a loop expression (evaluated per iteration). What is
    neither (1.5, "2", None) is refused at the loop's line, not when the run lists the tasks."""
    label = "select/P.sel" if api in ("P.sel()", "select") else api  # (as the run's own check words it)
    for i, v in enumerate(values):
        if isinstance(v, bool) or not isinstance(v, (numbers.Integral, Expr)):
            raise PtortTypeError(f"{label} over a list needs int indices, got {v!r} ({type(v).__name__}, entry {i} "
                                 f"of {list(values)!r}).",
                                 hint=f"Pass whole numbers (or loop expressions), e.g. {api.rstrip('()')}([0, 2, 5]); "
                                      "convert computed indices with int(...) only when they are exact.")


_LOOP_API = {NodeKind.PARALLEL_FOR: "P", NodeKind.FOR_EACH: "P.seq", NodeKind.SELECT: "P.sel"}


class _PLoop:
    """``P(...)``, ``P.seq(...)`` or ``P.sel(...)``: iterating it once opens the loop body and yields its variables."""

    def __init__(self, axes: tuple[Any, ...], names: Sequence[str] | None, kind: NodeKind,
                 default_name: str | None = None) -> None:
        # default_name: P.seq's "i" / P.sel's "e" (the reference's defaults); None takes b, h, s, d, ... from the
        # build's counter, as P() does.
        self.axes, self.names, self.kind, self.default_name = axes, names, kind, default_name
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
        api = f"{_LOOP_API[self.kind]}()"
        st = require_builder(api)
        check_pending(st)
        vars_: list[LoopVar] = []
        names = list(self.names or [])
        clash = [n for n in names if n in st.used_names]
        if clash:
            raise PtortValueError(f"loop variable name {clash[0]!r} is already used by an enclosing loop.",
                                  hint="Give the inner loop another name; t.get(name) must say which loop it means.",
                                  where=self.loc, locate=False)
        for axis in self.axes:
            for _ in range(2 if isinstance(axis, Ragged) else 1):
                # A default name an enclosing loop already has becomes i2, i3, ... (fresh_var's rule), so a nested
                # P.seq still runs and the counter's names (t.get("b") = the first P axis) stay where they were.
                vars_.append(fresh_var(st, names.pop(0) if names else self.default_name, api, self.loc))
                if isinstance(axis, RaggedFlat):  # (unpacking it says how a Ragged is iterated: LoopVar.__iter__)
                    vars_[-1].axis = axis
        frame: list[Workload] = []
        st.frames.append(frame)
        try:
            yield vars_[0] if len(vars_) == 1 else tuple(vars_)
        except GeneratorExit:  # the body left the loop early (break, return, next(iter(P(...)))) or raised
            self._left_early(st, frame, vars_)
            raise
        if not st.frames or st.frames[-1] is not frame:  # another loop's frame opened after this one is still open
            self._tangled(st, frame, vars_)
            return
        body = group(st.frames.pop())
        close_vars(st, vars_)  # only enclosing loops must not share a name
        add(Workload(self.kind, loc=self.loc, axes=self.axes, vars=tuple(vars_), body=body))

    def _left_early(self, st: WorkloadBuilder, frame: list[Workload], vars_: list[LoopVar]) -> None:
        """Close this loop's frame and scope, and refuse the early exit at the build's next statement (or its end):
        what the body built so far would otherwise run without its loop, or be silently dropped."""
        st.frames[:] = [f for f in st.frames if f is not frame]
        close_vars(st, vars_)
        if active_builder() is st:  # not a generator collected after its build ended
            note_pending(_Refused(_left_early_error(_LOOP_API[self.kind], self.loc, user_location())))

    def _tangled(self, st: WorkloadBuilder, frame: list[Workload], vars_: list[LoopVar]) -> None:
        """This loop ended while a loop opened after it was still open (``zip(P(a), P(b))``): its frame is taken
        out and the mistake refused at the build's next statement, instead of statements landing in a stale frame."""
        st.frames[:] = [f for f in st.frames if f is not frame]
        close_vars(st, vars_)
        api = _LOOP_API[self.kind]
        at = f" at {self.loc}" if self.loc is not None else ""
        note_pending(_Refused(DSLUsageError(
            f"the {api}() loop{at} ended while a loop opened after it was still open (zip() or next() over "
            f"{api}(...) loops?): a loop's body must be the statements inside its `for`.",
            hint="Nest the loops (`for b in P(Dense[2]()):` then `for h in P(Dense[4]()):` inside it), or loop over "
                 "several axes at once: `for b, h in P(Dense[2](), Dense[4]()):`.",
            where=user_location() or self.loc, locate=False)))


class _Refused:
    """A build mistake found where it cannot be raised (a generator being closed, a loop ending), refused at the
    build's next statement or when its body ends."""

    def __init__(self, error: DSLUsageError) -> None:
        self.error = error

    def pending_error(self) -> DSLUsageError:
        return self.error


def _left_early_error(api: str, loop_loc: SourceLocation | None, where: SourceLocation | None) -> DSLUsageError:
    """The error for a P() loop whose body was left before its end (break, return, next() on P(...))."""
    at = f" at {loop_loc}" if loop_loc is not None else ""
    return DSLUsageError(
        f"the {api}() loop{at} was left before the end of its body (`break`, `return`, or next() on {api}(...)). "
        f"{api}() loops are symbolic: the body runs once, while the workload is built, to describe every iteration, "
        "so leaving it cannot skip iterations and would lose what the body built.",
        hint="Let the loop body run to its end; to run only some iterations, put the statements under "
             "`with P.when(t < n):`, or loop over a smaller axis.",
        where=where or loop_loc, locate=False)


class _PNamespace:
    """``P(axes)`` parallel loop; ``P.seq`` sequential; ``P.sel`` sparse; ``P.pipe()``; ``P.when``/``otherwise``."""

    def __call__(self, *axes: Any, names: Sequence[str] | None = None) -> _PLoop:
        require_builder("P()")
        if not axes:
            raise PtortTypeError("P() needs at least one axis.", hint="Write `for t in P(Dense[8]()):`.")
        return _PLoop(tuple(_check_axis(a, "P()") for a in axes), names, NodeKind.PARALLEL_FOR)

    grid = __call__

    def seq(self, axis: Any, name: Any = None, *more: Any) -> _PLoop:
        """An ordered loop: ``for k in P.seq(Dense[8]()):`` lists iteration k's tasks before iteration k + 1's, and a
        process body runs the iterations one after another. A data-parallel run does not chain them in time: a task
        waits only for the earlier tasks that write what it reads or read or write what it writes
        (docs/explanation/semantics.md), so independent iterations run side by side. To order them, make the data
        dependency explicit (each iteration updates one tile, an ``InOut``), or issue one task at a time with
        ``.timing(TimingPolicy.batched(1))``.

        The loop variable is named ``name``, by default ``"i"`` as in the reference (``t.get("i")``); it does not
        take a name from P()'s b, h, s, d, ... sequence, so ``t.get("b")`` still means the first ``P`` axis. Under an
        enclosing loop that already has the default name (a nested ``P.seq``) it is named ``i2`` (then ``i3``, ...);
        the reference reuses ``i`` there, so ``t.get("i")`` reads the outer loop here. An explicit name an enclosing
        loop has is refused.

        Over a ``Ragged``, the one variable numbers its items ``0 .. total() - 1``, row by row, as the reference
        iterates it (``P(ragged)`` yields ``(row, item)`` pairs instead)."""
        require_builder("P.seq()")
        _one_axis("P.seq", name, more)
        return _PLoop((_flat(_check_axis(axis, "P.seq()")),), [name] if name else None, NodeKind.FOR_EACH,
                      default_name="i")

    def sel(self, source: Any, name: Any = None, *more: Any) -> _PLoop:
        """One iteration per index of ``source`` (a list, a Sparse row ``sp[b]`` or a whole Sparse; over a Ragged,
        one per item, numbered ``0 .. total() - 1``).

        The loop variable is named ``name``, by default ``"e"`` as in the reference (``t.get("e")``); it does not
        take a name from P()'s b, h, s, d, ... sequence. Under an enclosing loop that already has the default name
        it is named ``e2`` (then ``e3``, ...); an explicit name an enclosing loop has is refused."""
        require_builder("P.sel()")
        _one_axis("P.sel", name, more)
        return _PLoop((_flat(_check_axis(source, "P.sel()")),), [name] if name else None, NodeKind.SELECT,
                      default_name="e")

    def pipe(self) -> _Pipe:
        """``with P.pipe():``: each top-level statement inside becomes one pipeline stage, coupled by the channels it
        uses."""
        return _Pipe()

    def when(self, pred: Any) -> _When:
        """``with P.when(pred):``: the block's statements run where ``pred`` (a loop expression, bool or function of
        the task) holds."""
        return _When(pred, "P.when")

    def elif_(self, pred: Any) -> _When:
        """``with P.elif_(pred):``: the block's statements run where ``pred`` holds and no ``P.when``/``P.elif_``
        before it in the chain did (Python's ``elif``; the trailing underscore because ``elif`` is a keyword)."""
        return _When(pred, "P.elif_")

    def otherwise(self) -> _Otherwise:
        """``with P.otherwise():``: the block's statements run where the ``P.when`` (and every ``P.elif_``) just
        before it does not hold."""
        return _Otherwise()


def _flat(axis: Any) -> Any:
    """The axis of a loop binding one variable: a Ragged's items numbered 0..total-1 (RaggedFlat), as the reference
    iterates a Ragged bound to one variable; any other axis as it is."""
    return RaggedFlat(axis) if isinstance(axis, Ragged) else axis


def _one_axis(api: str, name: Any, more: tuple[Any, ...]) -> None:
    """``P.seq``/``P.sel`` loop over one axis: a second axis given where the name goes is refused by name."""
    if more or isinstance(name, (Axis, SparseRow, Sparse, list, tuple, range)) or \
            (isinstance(name, type) and issubclass(name, Axis)):
        raise PtortTypeError(f"{api} takes one axis, got {1 + len(more) + (name is not None)}; use P(...) for "
                             "several.", hint=f"Write `for i in {api}(Dense[4]()):`; for several axes at once write "
                                              "`for i, j in P(Dense[2](), Dense[3]()):`, or nest one loop per axis "
                                              "to keep each one's order.")
    if name is not None and not isinstance(name, str):
        raise PtortTypeError(f"{api}(axis, name): name must be a str (the loop variable's name), got "
                             f"{type(name).__name__} {name!r}.", hint=f"Write {api}(Dense[4](), \"k\").")


class _Block:
    """A ``with`` block of the builder (P.pipe(), P.when(), P.elif_(), P.otherwise()). Made, it waits to be entered:
    made and not entered (``P.when(t < 2)`` without ``with``) it is refused at the build's next statement or when
    the body ends, instead of being silently ignored."""

    api = ""
    without_with = ""  # what a call without `with` would silently do

    def __init__(self) -> None:
        self.st = require_builder(f"{self.api}()")
        check_pending(self.st)
        self.loc = user_location()
        self.entered = False
        self.depth = 0
        note_pending(self)

    def pending_error(self) -> DSLUsageError:
        return DSLUsageError(f"{self.api}(...) was called without `with`: it opens a block, so on its own it "
                             f"does nothing and {self.without_with}.",
                             hint=f"Write `with {self.api}(...):` and indent the statements it governs under it.",
                             where=self.loc, locate=False)

    def __enter__(self) -> None:
        if self.entered:
            raise DSLUsageError(f"this {self.api}(...) block (made at {self.loc}) is entered a second time.",
                                hint=f"Write a new `with {self.api}(...):` for each block.")
        self.entered = True
        drop_pending(self.st, self)
        self.open()
        self.st.frames.append([])
        self.depth = len(self.st.frames)

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        st = self.st
        self.leave()
        if len(st.frames) != self.depth:  # an inner block or loop did not close: the build is being abandoned
            return
        nodes = st.frames.pop()
        if exc_type is None:
            self.close(nodes)

    def open(self) -> None:
        """Check the block may start here (before its frame opens)."""

    def leave(self) -> None:
        """Undo ``open``'s state, whether the block ended or raised."""

    def close(self, nodes: list[Workload]) -> None:  # pragma: no cover - each block builds its own node
        """Build the block's node from the statements inside it."""
        raise NotImplementedError


class _Pipe(_Block):
    api = "P.pipe"
    without_with = "no pipeline is built: the statements after it run as ordinary statements"

    def open(self) -> None:
        if self.st.pipe_depth:
            raise DSLUsageError("pipelines cannot nest: this P.pipe() block is inside another one.",
                                hint="Put every stage directly under one `with P.pipe():` block (a stage may be a "
                                     "loop of tasks), or connect() separate processes.", where=self.loc, locate=False)
        self.st.pipe_depth += 1

    def leave(self) -> None:
        self.st.pipe_depth -= 1

    def close(self, nodes: list[Workload]) -> None:
        add(pipe_pipeline(nodes, self.loc))


class _When(_Block):
    """``P.when(pred)`` and ``P.elif_(pred)``."""

    without_with = "the statements after it run for every iteration, as if the condition always held"

    def __init__(self, pred: Any, api: str) -> None:
        self.api = api
        self.pred = _check_predicate(pred, api)
        super().__init__()
        refuse_stray_vars(self.st, self.pred, self.loc)  # checked as the block starts, not when it ends
        self.tail: Workload | None = None

    def open(self) -> None:
        if self.api == "P.elif_":
            self.tail = _chain_tail("P.elif_()")

    def close(self, nodes: list[Workload]) -> None:
        node = Workload(NodeKind.COND, loc=self.loc, pred=self.pred, then=group(nodes), is_elif=self.tail is not None)
        if self.tail is None:
            add(node)
        else:
            self.tail.set_otherwise(node)


class _Otherwise(_Block):
    api = "P.otherwise"
    tail: Workload
    without_with = "the statements after it run for every iteration, not only where the P.when() does not hold"

    def open(self) -> None:
        self.tail = _chain_tail("P.otherwise()")

    def close(self, nodes: list[Workload]) -> None:
        self.tail.set_otherwise(group(nodes))


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
    axis = _flat(_check_axis(axis, api))  # (a Ragged: its items 0..total-1, one variable)
    var, node_body = body_with_var(body, api)
    node = Workload(kind, loc=loc, axes=(axis,), vars=(var,), body=node_body)
    add(node)
    return node


def parallel_for(axis: Any, body: Callable[..., Any]) -> Workload:
    """Independent iterations: ``parallel_for(Dense[8](), lambda t: k[t](src=X[t], dst=Y[t]))``."""
    return _loop(NodeKind.PARALLEL_FOR, axis, body, "parallel_for")


def for_each(axis: Any, body: Callable[..., Any]) -> Workload:
    """Ordered iterations: ``for_each(Dense[8](), lambda i: k[i](...))`` lists iteration i's tasks before those of
    iteration i + 1, and a process body runs the iterations one after another. A data-parallel run does not chain
    them in time: a task waits only for the earlier tasks that write what it reads or read or write what it writes
    (docs/explanation/semantics.md), so independent iterations run side by side. To order them, make the data
    dependency explicit (each iteration updates one tile, an ``InOut``), or issue one task at a time with
    ``.timing(TimingPolicy.batched(1))``."""
    return _loop(NodeKind.FOR_EACH, axis, body, "for_each")


_SELECT_USAGE = "select(source, body) or select(sparse=..., body=...)"


def select(source: Any = UNSET, body: Any = UNSET, *, sparse: Any = UNSET) -> Workload:
    """One iteration per index of ``source``: a list, a Sparse row ``sp[b]``, or a whole Sparse (every index).
    ``sparse=`` is the reference's name for ``source``."""
    source = required("select()", "source", 1, "sparse",
                      one_of("select()", "source", 1, source, "sparse", sparse, _SELECT_USAGE), _SELECT_USAGE)
    body = required("select()", "body", 2, None, body, _SELECT_USAGE)
    return _loop(NodeKind.SELECT, source, body, "select")


def _check_predicate(pred: Any, api: str) -> Any:
    """The condition of ``api`` as the tree keeps it: a bool (a numpy bool or an integer made a Python bool, by
    Python's truth rule, as the reference evaluates its predicate), a loop expression or a function of the task.
    Other numbers (2.5) are refused: a float is no truth value."""
    if isinstance(pred, (bool, np.bool_, numbers.Integral)):
        return bool(pred)
    if isinstance(pred, ScalarExpr):  # the reference's predicates: axis("b") < symbol_u64("cut").cast_i64()
        return ScalarCondition(pred, api)
    if isinstance(pred, Expr) or callable(pred):
        return pred
    if isinstance(pred, numbers.Number):
        raise PtortTypeError(f"{api}(pred) needs a bool, a loop expression or a function of the task, got "
                             f"{type(pred).__name__} {pred!r}: a number is not a truth value.",
                             hint=f"Compare it: {api}(x != 0) or {api}(x > 0.5) (or pass True/False).")
    raise PtortTypeError(f"{api}(pred) needs a bool, a loop expression or a function of the task, got "
                         f"{type(pred).__name__} {pred!r}.",
                         hint=f"Write {api}(b < 4), {api}(b.eq(0)) or {api}(lambda t: t.get('b') % 2 == 0)"
                              + ("; a string is not evaluated." if isinstance(pred, str) else "."))


_COND_USAGE = "cond(pred, then, otherwise) or cond(predicate=..., then_workload=..., else_workload=...)"


def cond(pred: Any = UNSET, then: Any = UNSET, otherwise: Any = UNSET, *, predicate: Any = UNSET,
         then_workload: Any = UNSET, else_workload: Any = UNSET) -> Workload:
    """``then`` if ``pred`` holds, else ``otherwise``: pred is a bool, a loop expression (``t < 4``) or a callable
    taking the task bindings. ``predicate=``, ``then_workload=`` and ``else_workload=`` are the reference's names."""
    pred = required("cond()", "pred", 1, "predicate",
                    one_of("cond()", "pred", 1, pred, "predicate", predicate, _COND_USAGE), _COND_USAGE)
    then = required("cond()", "then", 2, "then_workload",
                    one_of("cond()", "then", 2, then, "then_workload", then_workload, _COND_USAGE), _COND_USAGE)
    otherwise = one_of("cond()", "otherwise", 3, otherwise, "else_workload", else_workload, _COND_USAGE)
    if otherwise is UNSET:  # (optional here: the reference requires it; None also means "no otherwise branch")
        otherwise = None
    pred = _check_predicate(pred, "cond")
    loc = user_location()
    then_w = then if isinstance(then, Workload) else Workload(NodeKind.EMPTY)
    else_w = otherwise if isinstance(otherwise, Workload) else Workload(NodeKind.EMPTY)
    for w, what in ((then, "then"), (otherwise, "otherwise")):
        if w is not None and not isinstance(w, Workload):
            raise PtortTypeError(f"cond() {what} branch must be a workload, got {w!r}.",
                                 hint="Pass task(...)/k[t](...) or combine(...).")
    _refuse_pipeline_parts((then_w, else_w), loc)
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
    loc = user_location()
    _refuse_pipeline_parts(items, loc)
    adopt(*items)
    node = Workload(kind, loc=loc, parts=tuple(items))
    add(node)
    return node


def _refuse_pipeline_parts(parts: Sequence[Workload], loc: SourceLocation | None) -> None:
    """A pipeline given to combine()/sequential()/cond() is refused at that call: listing the parts would refuse
    it too, but could only name the connect() line."""
    if any(w.is_pipeline for w in parts):
        raise DSLUsageError("a pipeline can only be the root of a program, not a step inside another workload.",
                            hint="Compile the Pipeline itself (connect(...).compile()).", where=loc,
                            locate=loc is None)


def combine(*workloads: Any) -> Workload:
    """Unordered composition: the children may run concurrently (data dependencies still hold)."""
    return _compose(NodeKind.COMBINE, workloads)


def sequential(*workloads: Any) -> Workload:
    """Ordered composition: the children's tasks are listed in order, and in a process body each child runs after
    the previous one finished. A data-parallel run does not chain them in time: a task waits only for the earlier
    tasks that write what it reads or read or write what it writes (docs/explanation/semantics.md), so independent
    children run side by side. To order them, make the data dependency explicit (each child updates one tile, an
    ``InOut``), or issue one task at a time with ``.timing(TimingPolicy.batched(1))``."""
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
        # What functools.wraps copies, so help(), repr-minded tools and f"{w.__name__}" see the function (its
        # __dict__ is not merged: a function attribute named like one of ours would replace it).
        self.__name__ = self.name
        self.__qualname__ = getattr(fn, "__qualname__", self.name)
        self.__module__ = getattr(fn, "__module__", None) or __name__
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __reduce_ex__(self, protocol: Any) -> Any:
        """A module-level @workload pickles by reference, as Python pickles the function it replaces (its ``fn``
        could not be pickled by name: that name is this object); any other by its fields."""
        found: Any = sys.modules.get(self.__module__)
        for part in self.__qualname__.split("."):
            found = getattr(found, part, None)
        if found is self:
            return self.__qualname__
        return super().__reduce_ex__(protocol)

    def __repr__(self) -> str:
        return f"<@workload function {self.__qualname__}>"

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
        take_returned(nodes, result, f"the body of @workload '{self.name}'")
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

    def __getattr__(self, name: str) -> Any:
        """Reached only for a name the function lacks: a Workload's (``w.compile()``) says to call it first."""
        if name.startswith("_") or not (hasattr(Workload, name) or name in _PROGRAM_NAMES):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        fn = self.__dict__.get("name", "w")
        hint = (f"Call it, compile and run it: {fn}().compile().execute() (.{name} belongs to the program that "
                "compile() returns)." if name in _PROGRAM_NAMES else
                f"Call it first: {fn}().{name}(...)" + (f", e.g. {fn}().compile().execute()." if name == "compile"
                                                        else "."))
        raise WorkloadNotCalledError(
            f"'{fn}' is the @workload function, not the workload it builds, so it has no .{name}.", hint=hint)


class WorkloadNotCalledError(DSLUsageError, AttributeError):
    """A Workload attribute asked of the @workload function itself (also an AttributeError, so ``hasattr`` and
    ``getattr(w, name, default)`` still answer as for any object without it)."""


# What a Program has (``w.execute()`` also means "call, compile and execute").
_PROGRAM_NAMES = frozenset({"execute", "stats", "trace", "tasks", "synchronize"})


def workload(fn: Callable[..., Any] | None = None, *, type_check: bool = True,
             fail_on_type_error: bool = False, **unknown: Any) -> Any:
    """``@workload`` or ``@workload(type_check=True, fail_on_type_error=False)``."""
    if unknown:
        bad = next(iter(unknown))
        raise PtortTypeError(f"@workload has no option {bad}=; its options are type_check= and fail_on_type_error=.",
                             hint="A workload is named after its function (def attention(): ...); rename a built one "
                                  "with .named(\"x\"): w().named(\"x\")."
                             if bad == "name" else "Write @workload, or @workload(type_check=True, "
                                                   "fail_on_type_error=False).")
    for option, value in (("type_check", type_check), ("fail_on_type_error", fail_on_type_error)):
        if not isinstance(value, (bool, np.bool_)):
            raise PtortTypeError(f"@workload({option}=...) must be True or False, got {type(value).__name__} "
                                 f"{value!r}.", hint=f"Write @workload({option}=False).")
    if fn is None:
        return lambda f: WorkloadFunction(f, bool(type_check), bool(fail_on_type_error))
    return WorkloadFunction(fn, bool(type_check), bool(fail_on_type_error))


__all__ = ["Workload", "Task", "workload", "WorkloadFunction", "P", "task", "parallel_for", "for_each", "select",
           "cond", "combine", "sequential", "empty", "in_builder", "launch_task", "adopt", "group", "call_body",
           "slot_set_u64", "slot_load_u64", "scalar_argument"]
