"""The workload builder: the build state, its open frames, body callables, and kernel launches with their checks.

While a @workload body (or a loop, consume or process body) runs, each DSL statement builds a node and adds it to
the innermost open *frame*; closing a frame makes its nodes the children of the node being built. One context
variable holds the build (the autodidax staging pattern), so nested bodies and threads never mix their frames.
"""
from __future__ import annotations

import contextvars
import inspect
import math
import sys
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol

import numpy as np

from ..errors import (
    DSLUsageError,
    KernelExecutionError,
    PtortError,
    PtortTypeError,
    PtortValueError,
    SourceLocation,
    is_internal_frame,
    user_location,
)
from .axes import DenseDyn, SparseRow
from .expr import DEFAULT_VAR_NAMES, Expr, LoopVar, recording_placeholders, refuse_placeholders
from .ir import ScalarRefused, scalar_value
from .tasks import Cycles, Task
from .tree import SCHEMAS, NodeKind, Workload, group
from .typecheck import TypeErrorInfo, TypeErrorKind, register_call_check
from .types import Direction, DType, LaunchShaped, ScalarType, Tensor, TensorView, TileType
from .user_code import refuse_generator, refuse_generator_result, run_user_body

if TYPE_CHECKING:
    from .kernel import Kernel


BODY_HINT = ("Launch tasks as statements (k[t](...), task(...), send(...)) or return them (a workload or a list); "
             "do not yield them, and use a plain def, not async def.")


class Pending(Protocol):
    """A mistake noticed while building that is refused at the next statement or when the body ends: a block helper
    called without `with` (P.when(...)), or a P() loop left early (break, return)."""

    def pending_error(self) -> PtortError: ...


@dataclass
class WorkloadBuilder:
    """The state of one build: its open frames (one node list per open body), loop names and type errors."""

    name: str
    frames: list[list[Workload]] = field(default_factory=list)
    var_counter: int = 0
    used_names: set[str] = field(default_factory=set)  # names of the loops open right now
    type_errors: list[TypeErrorInfo] = field(default_factory=list)
    type_check: bool = True
    pipe_depth: int = 0  # P.pipe() blocks open right now (they cannot nest)
    open_vars: list[LoopVar] = field(default_factory=list)  # the variables of the loops open right now
    # Every variable this build made (id -> (variable, loop api, loop line)), to say which loop a stray one is of.
    made_vars: dict[int, tuple[LoopVar, str, SourceLocation | None]] = field(default_factory=dict)
    pending: list[Pending] = field(default_factory=list)


_builder: contextvars.ContextVar[WorkloadBuilder | None] = contextvars.ContextVar("ptort_build", default=None)


def active_builder() -> WorkloadBuilder | None:
    """The build under way in this context, else None."""
    return _builder.get()


def in_builder() -> bool:
    """Whether a body is being built right now (statements become nodes of it)."""
    st = _builder.get()
    return st is not None and bool(st.frames)


def require_builder(api: str) -> WorkloadBuilder:
    """The build under way, or a DSLUsageError saying ``api`` needs one."""
    st = _builder.get()
    if st is None or not st.frames:
        raise DSLUsageError(f"{api} used outside @workload context.",
                            hint="Call it inside a @workload function, or inside a process body / for_each lambda.")
    return st


def add(node: Workload) -> None:
    """Add a statement's node to the open frame (nothing outside a build), refusing a pending mistake before it and
    a loop variable it uses outside that variable's loop."""
    st = _builder.get()
    if st is not None and st.frames:
        check_pending(st)
        check_in_scope(st, node)
        st.frames[-1].append(node)


def check_pending(st: WorkloadBuilder) -> None:
    """Raise the first mistake noticed earlier in this build (an un-entered block, a loop left early)."""
    if st.pending:
        first = st.pending[0]
        st.pending.clear()
        raise first.pending_error()


def note_pending(item: Pending) -> None:
    """Keep ``item`` to be refused at the next statement of the build under way, or when its body ends."""
    st = _builder.get()
    if st is not None and st.frames:
        st.pending.append(item)


def drop_pending(st: WorkloadBuilder, item: Pending) -> None:
    """``item`` turned out fine (the block was entered)."""
    st.pending[:] = [p for p in st.pending if p is not item]


def forget_pending(item: Pending) -> None:
    """``drop_pending`` in the build under way, if any (a kernel launch ``k[t]`` that is called after all)."""
    st = _builder.get()
    if st is not None and st.pending:
        drop_pending(st, item)


# -- loop variables in scope ------------------------------------------------------------------------------------------
_NOT_VALUES = frozenset({"vars", "var", "processes", "channels", "channel", "event"})  # node fields without values


def _vars_in(value: Any, out: list[LoopVar], depth: int = 0) -> None:
    """Collect the loop variables ``value`` uses: in expressions, tensor view indices, slices, axes sized by an
    expression, sparse rows, task-name templates and the lists, tuples and dicts holding them."""
    if depth > 50:  # a pathological structure: the run-time backstop (bindings) still names a stray variable
        return
    if isinstance(value, LoopVar):
        out.append(value)
    elif isinstance(value, Expr):
        for cls in type(value).__mro__:
            for slot in getattr(cls, "__slots__", ()):
                _vars_in(getattr(value, slot, None), out, depth + 1)
    elif isinstance(value, TensorView):
        _vars_in(value.index, out, depth + 1)
    elif isinstance(value, slice):
        _vars_in((value.start, value.stop, value.step), out, depth + 1)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _vars_in(v, out, depth + 1)
    elif isinstance(value, dict):
        for v in value.values():
            _vars_in(v, out, depth + 1)
    elif isinstance(value, str):
        _vars_in(getattr(value, "parts", ()), out, depth + 1)  # a NameTemplate: task(f"expert_{e}", ...)
    elif isinstance(value, DenseDyn):
        _vars_in(value.size, out, depth + 1)
    elif isinstance(value, SparseRow):
        _vars_in(value.row, out, depth + 1)


def check_in_scope(st: WorkloadBuilder, node: Workload) -> None:
    """Every loop variable ``node``'s own fields use (not its children's: they were checked when added) belongs to a
    loop open right now: elsewhere it has no value, and listing the tasks would fail far from the mistake."""
    schema = SCHEMAS[node.kind]
    found: list[LoopVar] = []
    for name in schema.names:
        if name in _NOT_VALUES:
            continue
        value = getattr(node, name)
        if name in schema.children and isinstance(value, (Workload, tuple)) and \
                (isinstance(value, Workload) or all(isinstance(v, Workload) for v in value)):
            continue
        _vars_in(value, found)
    _refuse_stray(st, found, node.loc)


def refuse_stray_vars(st: WorkloadBuilder, value: Any, loc: SourceLocation | None) -> None:
    """Every loop variable ``value`` uses (a condition, an index) belongs to a loop open right now."""
    found: list[LoopVar] = []
    _vars_in(value, found)
    _refuse_stray(st, found, loc)


def _refuse_stray(st: WorkloadBuilder, found: list[LoopVar], loc: SourceLocation | None) -> None:
    for var in found:
        if not any(var is v for v in st.open_vars):
            raise stray_variable(st, var, loc)


def stray_variable(st: WorkloadBuilder, var: LoopVar, loc: SourceLocation | None) -> DSLUsageError:
    """The error for loop variable ``var`` used at ``loc``, outside every loop open there."""
    name = _python_name(var) or var.name
    shown = f"`{name}`" if name == var.name else f"`{name}` (named '{var.name}' in the workload)"
    made = st.made_vars.get(id(var))
    if made is not None and made[0] is var:
        at = f" at {made[2]}" if made[2] is not None else ""
        what = (f"loop variable {shown} of the {made[1]} loop{at} is used outside that loop, where it has no "
                "value.")
    else:
        what = (f"{shown} is not a variable of any loop open here (it belongs to another workload or body, or was "
                "made by hand), so it has no value here.")
    return DSLUsageError(what, hint="Use a loop variable only inside the body of its loop. P() loops are symbolic: "
                                    "the body runs once, to build the loop, so `break`, `return` and using the "
                                    "variable after the loop do not work; select iterations with `with P.when(...):`.",
                         where=loc, locate=loc is None)


def _python_name(var: LoopVar) -> str | None:
    """The name the user's innermost frame gives ``var`` (``t`` in ``for t in P(...)``), if any."""
    frame = sys._getframe(1)
    while frame is not None and is_internal_frame(frame):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return None
    for key, value in frame.f_locals.items():
        if value is var:
            return str(key)
    return None


def close_vars(st: WorkloadBuilder, variables: Any) -> None:
    """The loop of ``variables`` ended: they leave the scope, and a sibling loop may use their names again."""
    for v in variables:
        st.used_names.discard(v.name)
    st.open_vars[:] = [v for v in st.open_vars if not any(v is w for w in variables)]


def adopt(*nodes: Any) -> None:
    """Take nodes out of the open frame: they become children of the node being built (send, combine, ...)."""
    st = _builder.get()
    if st is None or not st.frames:
        return
    frame = st.frames[-1]
    for node in nodes:
        # A copy (``combine(phase().named("p"), ...)``) takes the place of the node it was made from, which would
        # otherwise stay in the frame and run a second time.
        for wanted in (node, *node.copy_sources()) if isinstance(node, Workload) else (node,):
            found = next((i for i in range(len(frame) - 1, -1, -1) if frame[i] is wanted), None)
            if found is not None:
                del frame[found]
                break


def fresh_var(st: WorkloadBuilder, name: str | None, api: str = "", loc: SourceLocation | None = None) -> LoopVar:
    """A loop variable named ``name`` (else the next of b, h, s, d, ...), renamed if an enclosing loop has it; it is
    in scope until ``close_vars``. ``api`` and ``loc`` name its loop in errors."""
    if name is None:
        name = DEFAULT_VAR_NAMES[st.var_counter] if st.var_counter < len(DEFAULT_VAR_NAMES) \
            else f"v{st.var_counter}"
        st.var_counter += 1
    base, k = name, 1
    while name in st.used_names:
        k += 1
        name = f"{base}{k}"
    st.used_names.add(name)
    var = LoopVar(name)
    st.open_vars.append(var)
    st.made_vars[id(var)] = (var, api or "loop", loc if loc is not None else user_location())
    return var


@contextmanager
def building(name: str, type_check: bool = True, report: bool = True) -> Iterator[WorkloadBuilder]:
    """Open a build (if none is open) and one frame; yields the build. A build opened here with ``report`` raises
    its first type error when it closes (outside @workload nobody else collects them)."""
    st = _builder.get()
    if st is not None:
        st.frames.append([])
        try:
            yield st
            check_pending(st)  # a block called without `with`, or a loop left early, as the body's last statement
        finally:
            st.frames.pop()
        return
    st = WorkloadBuilder(name, type_check=type_check)
    token = _builder.set(st)
    st.frames.append([])
    try:
        with recording_placeholders():
            yield st
        check_pending(st)
    finally:
        st.frames.pop()
        _builder.reset(token)
    if report and st.type_errors:
        first = st.type_errors[0]
        raise PtortTypeError(first.message, hint=first.hint, where=first.location, locate=False)


# -- body callables ---------------------------------------------------------------------------------------------------
def _check_arity(fn: Callable[..., Any], n: int, api: str) -> None:
    """Reject a body callable that cannot take the ``n`` arguments ``api`` passes (the loop index or token)."""
    try:
        inspect.signature(fn).bind(*range(n))
    except ValueError:  # no signature (some builtins): let the call decide
        return
    except TypeError:
        name = getattr(fn, "__name__", "body")
        what = "no arguments" if n == 0 else "one argument (the loop index or channel token)" if n == 1 else \
            f"{n} arguments (one token per joined channel, in the order listed)"
        example = ".body_func(lambda: [...])" if n == 0 else f"{api}(..., lambda t: task(k, [t], {{...}}))" if n == 1 \
            else f"{api}([{', '.join('abcdefgh'[:n])}], lambda {', '.join(f't{c}' for c in 'abcdefgh'[:n])}: ...)"
        raise PtortTypeError(f"the {api} body {name}{inspect.signature(fn)} must take {what}.",
                             hint=f"Write it as {example}.") from None


def call_body(fn: Callable[..., Any], *args: Any, api: str) -> Workload:
    """Run a body callable (for_each lambda, consume handler, body_func) and return what it built."""
    if not callable(fn):
        raise PtortTypeError(f"{api} needs a callable body, got {type(fn).__name__} {fn!r}.",
                             hint=f"Pass a lambda, e.g. {api}(..., lambda t: task(k, [t], {{...}})).")
    _check_arity(fn, len(args), api)
    what = f"the {api} body {getattr(fn, '__name__', '')}".rstrip()
    refuse_generator(fn, what, "build no tasks", BODY_HINT)
    with building(getattr(fn, "__name__", api)) as st:
        result = run_user_body(fn, args, {}, what)
        nodes = list(st.frames[-1])
    refuse_generator_result(result, what, "build no tasks", BODY_HINT)
    take_returned(nodes, result, f"the {api} body")
    return group(nodes, "sequential")


def take_returned(nodes: list[Workload], result: Any, what: str) -> None:
    """Add to ``nodes`` (what a body built) what it returned: None, a workload, or a list or tuple of them. A node
    it built stays where it is; a copy of one (``.named()`` and the schedule combinators return copies) takes that
    node's place, so its tasks are listed once and as the copy says; any other workload is appended. Anything else
    is refused (``what`` names the body)."""
    position = {id(n): i for i, n in enumerate(nodes)}  # (a body returning the 16,000 tasks it built stays linear)
    for item in (result if isinstance(result, (list, tuple)) else [result]):
        if item is None:
            continue
        if not isinstance(item, Workload):
            raise PtortTypeError(f"{what} returned {type(item).__name__} {item!r}; it must build or return "
                                 "workloads.", hint="Return task(...), send(...), k[t](...) or a list of them.")
        if id(item) in position:
            continue
        source = next((s for s in item.copy_sources() if id(s) in position), None)
        if source is None:
            position[id(item)] = len(nodes)
            nodes.append(item)
        else:
            at = position.pop(id(source))
            nodes[at] = item
            position[id(item)] = at


def _var_name_of(fn: Any, default: str) -> str | None:
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return default
    return params[0] if params else default


def body_with_var(fn: Callable[..., Any], api: str, name: str | None = None) -> tuple[LoopVar, Workload]:
    """A fresh loop variable (named after ``fn``'s parameter) and what ``fn`` builds when called with it."""
    with building(api) as st:
        var = fresh_var(st, name or _var_name_of(fn, "i"), api)
        try:
            body = call_body(fn, var, api=api)
        finally:
            close_vars(st, (var,))  # a sibling loop may use the name again
    return var, body


def body_with_vars(fn: Callable[..., Any], api: str, n: int) -> tuple[tuple[LoopVar, ...], Workload]:
    """``n`` fresh variables (named after ``fn``'s parameters) and what ``fn`` builds when called with them (the body
    of a join, one token per channel)."""
    names: list[str | None] = []
    try:
        names.extend(list(inspect.signature(fn).parameters)[:n])
    except (TypeError, ValueError):  # no signature (some builtins): default names
        pass
    names += [None] * (n - len(names))
    with building(api) as st:
        variables = tuple(fresh_var(st, name, api) for name in names)
        try:
            body = call_body(fn, *variables, api=api)
        finally:
            close_vars(st, variables)
    return variables, body


# -- task launches ----------------------------------------------------------------------------------------------------
def _record_error(info: TypeErrorInfo) -> None:
    """Collect a launch's type error in the build (raise it when nobody collects; drop it with type_check=False)."""
    st = _builder.get()
    if st is not None and st.frames and st.type_check:
        st.type_errors.append(info)
        return
    if st is not None and not st.type_check:
        return
    raise PtortTypeError(info.message, hint=info.hint, where=info.location, locate=False)


Report = Callable[[TypeErrorInfo], None]


def _needs_argument(kernel: Kernel, pname: str, abstract: bool) -> bool:
    """Whether a launch must pass ``pname``: a parameter without a default; a tile parameter even with one (its
    default, None, is no tensor to run on) unless the launch is abstract (every tile given None); a Scalar whose
    default is no number (None). A run uses the defaults of the others."""
    if pname not in kernel.defaults:
        return True
    direction, typ = kernel.signature[pname]
    if direction is Direction.CONSTEXPR:
        return False
    if isinstance(typ, ScalarType):
        default = kernel.defaults[pname]
        return not abstract and not isinstance(default, (int, float, np.integer, np.floating))
    return not abstract


def _missing_hint(kernel: Kernel, pname: str) -> str:
    """How to pass the missing argument ``pname``, by the kind of its parameter."""
    direction, typ = kernel.signature[pname]
    if direction is Direction.CONSTEXPR:
        spelled = getattr(typ, "__name__", None) or repr(typ)
        return f"Pass {pname}=... (its Constexpr[{spelled}] value, fixed for each trace), or give it a default."
    if isinstance(typ, ScalarType):
        if pname in kernel.defaults:
            return (f"Pass {pname}=... (a number, Scalar[{typ.dtype}]): its default {kernel.defaults[pname]!r} is not "
                    "a number.")
        return f"Pass {pname}=... (a number, Scalar[{typ.dtype}]), or give it a default."
    if pname in kernel.defaults:
        return (f"Pass {pname}=... (a tensor view such as X[t]): its default {kernel.defaults[pname]!r} is no tensor "
                "for the kernel to run on.")
    return f"Pass {pname}=... (a tensor view such as X[t])."


def _check_names(kernel: Kernel, kwargs: dict[str, Any], loc: SourceLocation | None, report: Report) -> bool:
    """Unknown and missing keyword arguments of a launch, each reported; True when there are none."""
    names = list(kernel.signature)
    unbound, bound = unbound_params(kernel, kwargs)
    abstract = bool(unbound) and not bound
    required = [n for n in names if _needs_argument(kernel, n, abstract)]
    unknown = [k for k in kwargs if k not in kernel.signature]
    missing = [n for n in required if n not in kwargs]
    for u in unknown:
        import difflib  # an error path only: not loaded by `import ptort_lab`
        close = difflib.get_close_matches(u, names, n=1)
        report(TypeErrorInfo(
            TypeErrorKind.ARITY_MISMATCH, f"Kernel '{kernel.name}' has no parameter '{u}'.", loc,
            expected=", ".join(names), got=", ".join(kwargs),
            hint=(f"Did you mean '{close[0]}'? " if close else "") + f"Its parameters are {', '.join(names)}."))
    given = len(required) - len(missing)  # unknown names are reported above, not counted as arguments it got
    for m in missing:
        report(TypeErrorInfo(
            TypeErrorKind.ARITY_MISMATCH if len(kwargs) != len(required) else TypeErrorKind.MISSING_ARGUMENT,
            f"Kernel '{kernel.name}' expects {len(required)} args, got {given}: missing argument '{m}'.",
            loc, expected=", ".join(required), got=", ".join(kwargs) or "(none)",
            hint=_missing_hint(kernel, m)))
    return not unknown and not missing


def _tile_problem(kernel: Kernel, pname: str, typ: TileType, value: Any) -> TypeErrorInfo | None:
    """What is wrong with ``value`` for the Tile parameter ``pname`` (location filled in by the caller), else None."""
    k = f"Kernel '{kernel.name}' parameter '{pname}'"
    if not isinstance(value, TensorView):
        return TypeErrorInfo(TypeErrorKind.TYPE_MISMATCH, f"{k} expects a Tensor view of {typ}, got "
                             f"{type(value).__name__} {value!r}.", expected=f"Tensor view {typ}",
                             got=type(value).__name__, hint=f"Pass a tile of a Tensor, e.g. {pname}=X[t].")
    ring = value.base.ring_of
    if ring is not None and (tuple(value.shape) != typ.shape or value.dtype != typ.dtype):
        kind = TypeErrorKind.SHAPE_MISMATCH if tuple(value.shape) != typ.shape else TypeErrorKind.TYPE_MISMATCH
        return TypeErrorInfo(kind, f"{k} is {typ} but channel '{ring.name}' carries {ring.tile} items, so "
                             f"{ring.name}.item does not fit it.", expected=str(typ), got=str(ring.tile),
                             hint=f"Give the channel the parameter's tile (tile=Tile[{typ.rows}, {typ.cols}, "
                                  f"DType.{typ.dtype}]), or change the kernel's annotation to Tile[{ring.tile.rows}, "
                                  f"{ring.tile.cols}, DType.{ring.tile.dtype}].")
    if tuple(value.shape) != typ.shape:
        return TypeErrorInfo(TypeErrorKind.SHAPE_MISMATCH, f"{k} expects a {typ.rows}x{typ.cols} tile, got {value!r} "
                             f"of shape {tuple(value.shape)}.", expected=str(typ.shape), got=str(tuple(value.shape)),
                             hint="Index the tensor down to one tile (X[t] for a [n, rows, cols] tensor), or change "
                                  "the kernel's Tile[...] annotation.")
    if value.dtype != typ.dtype:
        return TypeErrorInfo(TypeErrorKind.TYPE_MISMATCH, f"{k} expects dtype {typ.dtype}, got {value!r} of dtype "
                             f"{value.dtype}.", expected=str(typ.dtype), got=str(value.dtype),
                             hint=f"Create the tensor with dtype=DType.{typ.dtype}, or change the annotation to "
                                  f"Tile[{typ.rows}, {typ.cols}, DType.{value.dtype}].")
    return None


def _shaped_problem(kernel: Kernel, pname: str, typ: LaunchShaped, value: Any) -> TypeErrorInfo | None:
    """What is wrong with ``value`` for the shape-generic parameter ``pname``, else None: it must be a tensor view
    of a 2-D tile (its shape and dtype become the parameter's)."""
    k = f"Kernel '{kernel.name}' parameter '{pname}' ({typ.spelled})"
    if isinstance(value, Tensor):
        value = TensorView(value, ())
    if not isinstance(value, TensorView):
        return TypeErrorInfo(TypeErrorKind.TYPE_MISMATCH, f"{k} expects a tensor view, got {type(value).__name__} "
                             f"{value!r}.", expected="Tensor view of a 2-D tile", got=type(value).__name__,
                             hint=f"Pass a tile of a Tensor, e.g. {pname}=X[t]; annotate the parameter Scalar[...] "
                                  "if it takes a number.")
    if len(value.shape) != 2:
        return TypeErrorInfo(TypeErrorKind.SHAPE_MISMATCH, f"{k} is shaped by its argument, a 2-D tile, but {value!r} "
                             f"has shape {tuple(value.shape)}.", expected="a 2-D tile (rows, cols)",
                             got=str(tuple(value.shape)),
                             hint="Index the tensor down to one tile (X[t] for a [n, rows, cols] tensor).")
    return None


def _check_argument(kernel: Kernel, pname: str, value: Any, loc: SourceLocation | None, report: Report) -> bool:
    """Check one launch argument against its parameter's annotation; report a problem; True when it fits."""
    direction, typ = kernel.signature[pname]
    if direction is Direction.CONSTEXPR:
        refuse_placeholders(value, f"kernel '{kernel.name}' Constexpr parameter '{pname}'")
        return True
    if isinstance(typ, LaunchShaped):
        shaped = _shaped_problem(kernel, pname, typ, value)
        if shaped is not None:
            report(TypeErrorInfo(shaped.kind, shaped.message, loc, shaped.expected, shaped.got, shaped.hint))
        return shaped is None
    if isinstance(typ, ScalarType):
        if isinstance(value, Expr):
            return True  # its value exists per task: checked when the task runs (scalar_argument)
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            _check_scalar_launch(kernel, pname, typ, value, loc)
            return True
        report(TypeErrorInfo(TypeErrorKind.TYPE_MISMATCH, f"Kernel '{kernel.name}' parameter '{pname}' is a "
                                    f"scalar, got {value!r}.", loc, expected=str(typ), got=type(value).__name__,
                                    hint="Pass a Python number."))
        return False
    assert isinstance(typ, TileType)  # what an annotation that is neither Constexpr nor Scalar parses to
    problem = _tile_problem(kernel, pname, typ, TensorView(value, ()) if isinstance(value, Tensor) else value)
    if problem is None:
        return True
    report(TypeErrorInfo(problem.kind, problem.message, loc, problem.expected, problem.got, problem.hint))
    return False


def unbound_params(kernel: Kernel, kwargs: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(parameters given None, parameters given a value) among the kernel's tile and scalar parameters."""
    given = [n for n in kernel.tile_params if n in kwargs]
    return [n for n in given if kwargs[n] is None], [n for n in given if kwargs[n] is not None]


def _what_binds(kernel: Kernel, names: list[str]) -> str:
    """What a launch passes for each of ``names``: a tensor view for a tile parameter, a number for a scalar one."""
    scalars = [n for n in names if isinstance(kernel.signature[n][1], ScalarType)]
    tiles = [n for n in names if n not in scalars]
    parts = ([f"a tensor view for {', '.join(tiles)}"] if tiles else []) + \
        ([f"a number for {', '.join(scalars)}"] if scalars else [])
    return " and ".join(parts)


def check_launch(kernel: Kernel, kwargs: dict[str, Any], loc: SourceLocation | None,
                 report: Report | None = None) -> bool:
    """Check launch arguments against the kernel's annotations; report each problem (collected in the build, or to
    ``report``). True when all fit. None leaves a parameter unbound: every one None is an abstract launch."""
    report = report or _record_error
    ok = _check_names(kernel, kwargs, loc, report)
    unbound, bound = unbound_params(kernel, kwargs)
    if unbound and bound:
        report(TypeErrorInfo(
            TypeErrorKind.TYPE_MISMATCH, f"Kernel '{kernel.name}' is launched with {', '.join(unbound)} None "
            f"(unbound) but {', '.join(bound)} bound; a launch binds every parameter (the kernel runs) or none "
            "(an abstract task that computes nothing).", loc, expected="all bound, or all None",
            got=", ".join(f"{n}={'None' if kwargs[n] is None else 'bound'}" for n in kernel.tile_params if n in kwargs),
            hint=f"Pass {_what_binds(kernel, unbound)}, or None for every parameter (then the task costs "
                 "cycles=, else 1 cycle)."))
        ok = False
    for pname, value in kwargs.items():
        if pname in kernel.signature and value is not None \
                and not _check_argument(kernel, pname, value, loc, report):
            ok = False
    return ok


def check_call(kernel: Any, args: tuple[Any, ...], kwargs: dict[str, Any], loc: SourceLocation | None,
               report: Report) -> bool:
    """``TypeChecker.check_kernel_call``: the launch checks of ``kernel(*args, **kwargs)``, reported to ``report``."""
    if not hasattr(kernel, "signature") or not hasattr(kernel, "tile_params"):
        raise PtortTypeError(f"check_kernel_call needs a @kernel, got {type(kernel).__name__} {kernel!r}.",
                             hint="Pass the decorated kernel: checker.check_kernel_call(k, (), {'x': X[0]}).")
    return check_launch(kernel, bind_positional(kernel, args, kwargs, loc), loc, report)


register_call_check(check_call)


def bind_positional(kernel: Kernel, args: tuple[Any, ...], kwargs: dict[str, Any],
                    loc: SourceLocation | None) -> dict[str, Any]:
    """The launch's arguments by name: positional ones bind to the kernel's parameters in order, as in Python."""
    if not args:
        return kwargs
    names = list(kernel.signature)
    spelled = f"{kernel.name}[t](" + ", ".join(f"{p}=..." for p in names) + ")"
    if len(args) > len(names):
        raise PtortTypeError(f"kernel '{kernel.name}' takes {len(names)} argument(s) ({', '.join(names)}), got "
                             f"{len(args)} positional.", hint=f"Pass one per parameter, in order, or name them: "
                                                           f"{spelled}.", where=loc, locate=False)
    twice = [n for n in names[:len(args)] if n in kwargs]
    if twice:
        raise PtortTypeError(f"kernel '{kernel.name}' got parameter '{twice[0]}' both by position and by name.",
                             hint=f"Pass it once; positional arguments fill {', '.join(names[:len(args)])} in order.",
                             where=loc, locate=False)
    return {**dict(zip(names, args)), **kwargs}


def _scalar_hint(kind: str, value: Any, dtype: Any) -> str:
    """How to fix a scalar kernel argument that has no value in its parameter's dtype."""
    if kind == "not_whole":
        return (f"Pass a whole number (e.g. {math.floor(value)}), or declare the parameter Scalar[DType.F32] if "
                "fractions are meant.")
    if kind == "int_range":
        wider = " or ".join(f"Scalar[DType.{d}]" for d in (DType.I64, DType.F32) if d is not dtype)
        return f"Pass a value inside that range, or declare the parameter with a wider dtype ({wider})."
    if kind == "nonfinite":
        return f"Integer dtypes have no nan or inf: declare the parameter Scalar[DType.F32] to pass {value!r}."
    if kind == "type" and isinstance(value, (bool, np.bool_)):
        return ("A comparison of loop variables gives True/False, not a number: pass an integer expression, or "
                "choose between two launches with P.when(...) / cond(...).")
    if kind == "type":
        return "Pass a real number (an int or a float) of the parameter's dtype."
    wider_float = {DType.F16: DType.F32, DType.BF16: DType.F32, DType.F32: DType.F64}.get(dtype)
    declare = f"declare the parameter Scalar[DType.{wider_float}], " \
        if wider_float is not None and kind != "too_large" else ""
    return f"Pass a value inside the range of {dtype}, {declare}or pass float('inf') if infinity is meant."


def _check_scalar_launch(kernel: Kernel, pname: str, typ: ScalarType, value: Any, loc: SourceLocation | None) -> None:
    """A number given for a Scalar[...] parameter must have a value in its dtype (numpy would truncate 2.7 to 2 for
    I32 and make 1e6 inf in F16): refused at the launch line, even with type_check=False."""
    try:
        scalar_value(value, typ.dtype)
    except ScalarRefused as r:
        raise PtortValueError(f"kernel '{kernel.name}' parameter '{pname}' (Scalar[{typ.dtype}]): {r.text}",
                              hint=_scalar_hint(r.kind, value, typ.dtype), where=loc, locate=False) from None


def scalar_argument(value: Any, typ: ScalarType, task: Task, pname: str, label: str = "") -> np.ndarray[Any, Any]:
    """The 0-d array a scalar kernel argument runs as; a value with none in the parameter's dtype (a loop
    expression evaluated for this task, a bool from a comparison) raises a KernelExecutionError naming the launch
    (``label``: how the caller names the task, e.g. "tile 3")."""
    try:
        number = scalar_value(value, typ.dtype)
    except ScalarRefused as r:
        raise KernelExecutionError(
            f"the launch of {task.kernel} for {label or f'task {task.id}'} passes {value!r} for scalar parameter "
            f"'{pname}' (Scalar[{typ.dtype}]): {r.text}", hint=_scalar_hint(r.kind, value, typ.dtype),
            where=task.loc, locate=False) from None
    return np.asarray(number, dtype=typ.dtype.np_dtype)


def check_axes(name: str, axes: Any, loc: SourceLocation | None) -> None:
    """Launch axes are ints or loop expressions: anything else would surface far away (a token, a dispatch key)."""
    for a in axes:
        if isinstance(a, Expr) or (isinstance(a, (int, np.integer)) and not isinstance(a, bool)):
            continue
        raise PtortTypeError(f"kernel '{name}' is launched with axis {a!r} ({type(a).__name__}); launch axes are "
                             "ints or loop variables.", hint=f"Write {name}[t](...) with t from P(...), or "
                                                             f"task({name}, [t], {{...}}).", where=loc, locate=False)


def launch_task(kernel: Kernel, axes: tuple[Any, ...], kwargs: dict[str, Any], loc: SourceLocation | None,
                cycles: Cycles = None) -> Workload:
    """The task node of a kernel launch (``k[t](...)``, ``task(k, ...)``), checked and added to the open frame."""
    check_axes(kernel.name, axes, loc)
    for k in kwargs:
        refuse_placeholders(k, f"kernel '{kernel.name}' launch argument name")
    bad_keys = [k for k in kwargs if not isinstance(k, str)]
    if bad_keys:
        raise PtortTypeError(f"kernel '{kernel.name}' got resource key(s) {bad_keys!r}; keys are parameter names.",
                             hint=f"Its parameters are {', '.join(kernel.signature)}: "
                                  f"task({kernel.name}, [t], {{'{next(iter(kernel.signature), 'src')}': X[t], ...}}).",
                             where=loc, locate=False)
    fits = check_launch(kernel, kwargs, loc)
    unbound, bound = unbound_params(kernel, kwargs)
    pinned = cycles if cycles is not None else kernel.cycles
    if unbound and not bound:  # the reference's k[b](None, None): an abstract task, named after the kernel
        constexprs = {k: v for k, v in kwargs.items() if k not in kernel.tile_params}
        node = Workload(NodeKind.TASK, loc=loc, kernel=kernel.name, params=tuple(axes), resources=constexprs,
                        cycles=pinned)
        add(node)
        return node
    resources = {k: (TensorView(v, ()) if isinstance(v, Tensor) else v) for k, v in kwargs.items()}
    if fits and kernel.shaped_params and pinned is None:
        _trace_now(kernel, resources)
    node = Workload(NodeKind.TASK, loc=loc, kernel=kernel, params=tuple(axes), resources=resources, cycles=pinned)
    add(node)
    return node


def _trace_now(kernel: Kernel, resources: dict[str, Any]) -> None:
    """Trace a shape-generic kernel at this launch's shapes now, so a mistake in its body points at the body as the
    launch first meets it (a Constexpr given by a loop expression is traced per task instead)."""
    if any(isinstance(resources.get(n), Expr) for n in kernel.constexpr_params):
        return
    kernel.ir_for(resources)


__all__ = ["WorkloadBuilder", "active_builder", "in_builder", "require_builder", "add", "adopt", "fresh_var",
           "close_vars", "check_pending", "note_pending", "drop_pending", "forget_pending", "check_in_scope",
           "refuse_stray_vars",
           "stray_variable", "Pending",
           "building", "call_body", "take_returned", "body_with_var", "body_with_vars", "check_launch",
           "bind_positional", "unbound_params", "scalar_argument", "check_axes",
           "launch_task", "BODY_HINT"]
