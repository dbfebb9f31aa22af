"""Workloads: @workload, P loops, task launches and the composition nodes (for_each, combine, select, cond, ...)."""
from __future__ import annotations

import contextvars
import copy
import inspect
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from ..errors import DSLUsageError, PtortTypeError, PtortValueError, SourceLocation, raise_user_error, user_location
from .axes import MAX_ITERATIONS, Axis, DenseDyn, Ragged, Sparse, SparseRow
from .expr import Expr, LoopVar, clear_refusal, evaluate, name_template, recover_refusal, refuse_placeholders
from .ir import ScalarRefused, scalar_value
from .kernel import Kernel, refuse_generator, refuse_generator_result
from .schedule import Schedule, TimingPolicy
from .typecheck import TypeErrorInfo, TypeErrorKind
from .types import Direction, ScalarType, Tensor, TensorView, TileType

_DEFAULT_VAR_NAMES = ["b", "h", "s", "d", "i", "j", "k", "l", "m", "n"]


class Workload:
    """A node of a workload tree. ``kind`` is one of: task, parallel_for, for_each, select, cond, combine,
    sequential, send, consume, record, wait, pipe, connect, empty.

    Schedule combinators (``dispatch``, ``streams``, ``timing``, ``task_graph``, ...) return a new Workload and
    leave this one unchanged; ``compile()`` gives a Program; ``enumerate()`` lists its tasks in program order.
    """

    def __init__(self, kind: str, name: str | None = None, loc: SourceLocation | None = None, **fields: Any) -> None:
        self.kind = kind
        self.name = name
        self.loc = loc
        self.fields = fields
        self._schedule = Schedule()
        self.type_errors: list[TypeErrorInfo] = []

    def __getattr__(self, item: str) -> Any:
        fields = self.__dict__.get("fields")
        if fields is not None and item in fields:
            return fields[item]
        raise AttributeError(f"{type(self).__name__!s} of kind {self.__dict__.get('kind')!r} has no attribute "
                             f"{item!r}")

    # -- identity and display ------------------------------------------------------------------------------
    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"<{type(self).__name__} {self.kind}{label}>"

    def has_type_errors(self) -> bool:
        return bool(self.type_errors)

    def named(self, name: str) -> Workload:
        refuse_placeholders(name, "named()")
        w = copy.copy(self)
        w.name = name
        return w

    # -- enumeration -------------------------------------------------------------------------------------------
    def enumerate(self) -> list[Task]:
        """Every task in program order, with loop variables bound (ids 0..n-1)."""
        self.raise_type_errors()
        from . import steps
        self.check_size(steps.MAX_TASKS)
        return steps.enumerate_tasks(self)

    def task_count(self) -> int:
        return len(self.enumerate())

    def raise_type_errors(self) -> None:
        if self.type_errors:
            first = self.type_errors[0]
            more = "".join(f"\n  - {e.short()}" for e in self.type_errors[1:])
            raise PtortTypeError(
                f"workload '{self.name or self.kind}' has {len(self.type_errors)} type error(s): {first.message}"
                + (f"\nOther errors:{more}" if more else ""), hint=first.hint, where=first.location, locate=False)

    # -- schedule combinators (each returns a copy) ------------------------------------------------------------
    def _with(self, **changes: Any) -> Workload:
        w = copy.copy(self)
        w._schedule = replace(self._schedule, **changes)
        return w

    def _data_parallel_only(self, api: str) -> None:
        """Schedule combinators that order enumerated tasks mean nothing to a pipeline: say so at the call."""
        if self.kind in ("connect", "pipe"):
            raise PtortValueError(
                f"{api} applies to data-parallel workloads; a CSP pipeline runs each process's body in order on its "
                "own core.", hint="Place processes with .place('shared') or .place({process: core}); compare with "
                                  "a data-parallel run through ptort_lab.explore.data_parallel_twin(pipeline, cores).")

    def dispatch(self, policy: Any) -> Workload:
        from .schedule import DispatchPolicy
        self._data_parallel_only("dispatch()")
        if not isinstance(policy, DispatchPolicy):
            raise PtortTypeError(f"dispatch() takes a DispatchPolicy, got {policy!r}.",
                                 hint="Use DispatchPolicy.round_robin(4), .affinity(fn), .hash(fn) or .work_steal().")
        return self._with(dispatch=policy)

    def streams(self, n: int) -> Workload:
        self._data_parallel_only("streams()")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise PtortValueError(f"streams(n) needs an int >= 1, got {n!r}.", hint="Use streams(2).")
        return self._with(stream_count=n)

    def stream_by(self, fn: Callable[..., Any]) -> Workload:
        """With ``streams(n)`` and no dispatch policy: task t runs on stream (core) ``fn(t) % n``."""
        self._data_parallel_only("stream_by()")
        if not callable(fn):
            raise PtortTypeError(f"stream_by(fn) needs a key function, got {fn!r}.",
                                 hint='Write .streams(4).stream_by(lambda t: t.get("b")).')
        return self._with(stream_by=fn)

    def timing(self, policy: Any) -> Workload:
        """How a data-parallel run issues its tasks: a TimingPolicy (see ``ptort_lab.sim.issue``)."""
        if not isinstance(policy, TimingPolicy):
            raise PtortTypeError(f"timing(policy) needs a TimingPolicy, got {policy!r}.",
                                 hint="Write .timing(TimingPolicy.batched(8)) or .timing(TimingPolicy.immediate).")
        if policy.kind != "immediate":
            self._data_parallel_only(f"timing(TimingPolicy.{policy.kind})")
        return self._with(timing=policy)

    def spatial_map(self, grid: Any) -> Workload:
        return self._with(spatial_grid=grid)

    def place(self, placement: Any) -> Workload:
        """Put processes on cores: ``{"loader": 0, "computer": 0}``, ``{"update": (0, 1)}`` (core 0, AIV1) or
        ``"shared"`` (all on one core)."""
        if self.kind not in ("connect", "pipe"):
            raise PtortValueError("place() puts the processes of a CSP pipeline on cores; this is a data-parallel "
                                  "workload, which has none.",
                                  hint="Send its tasks to cores with .dispatch(DispatchPolicy.round_robin(4)) or "
                                       "another DispatchPolicy.")
        return self._with(placement=placement)

    def task_graph(self, deps: Any = None, window: Any = None, pools: Any = None, ready: Any = None,
                   start: Any = None, trace: Any = None, **unknown: Any) -> Workload:
        """Run as a task graph (clears streams, as in the reference). What each argument does:
        ``ptort_lab.dsl.task_graph``; ``window=TaskWindow(k)`` caps the tasks in flight."""
        from .schedule import TaskWindow
        from .task_graph import task_graph_config
        self._data_parallel_only("task_graph()")
        if unknown:
            raise PtortValueError(f"task_graph() has no option(s) {sorted(unknown)}.",
                                  hint="Its options are deps, window, pools, ready, start and trace.")
        if window is not None and not isinstance(window, TaskWindow):
            raise PtortTypeError(f"task_graph(window=...) takes a TaskWindow, got {window!r}.",
                                 hint="Use TaskWindow(8, 'tasks').")
        graph = task_graph_config(deps=deps, pools=pools, ready=ready, start=start, trace=trace)
        return self._with(window=window, deps=deps, graph=graph, stream_count=None, stream_by=None)

    def compile(self, target: str = "cpu_sim", **options: Any) -> Any:
        """Check the workload and return a Program ready to ``execute()``."""
        from . import steps
        from .schedule import compiler_for
        refuse_placeholders(target, "compile(target)")
        for key, value in options.items():
            refuse_placeholders(value, f"compile({key}=...)")
        self.raise_type_errors()
        self.check_size(steps.MAX_PIPELINE_TASKS if steps.pipeline_of(self) is not None else steps.MAX_TASKS)
        return compiler_for(target)(self, target, options)

    def check_size(self, max_tasks: int) -> None:
        """Refuse, before listing anything, a workload whose axis sizes alone guarantee more than ``max_tasks`` tasks
        or MAX_ITERATIONS loop iterations (listing it would run for minutes and exhaust memory)."""
        try:
            least = least_work(self)
        except RecursionError:  # a tree this deep is left to the listing's own checks
            return
        if least.tasks > max_tasks:
            from .steps import check_task_count
            check_task_count(least.tasks, self, Task(self.name or self.kind, [], {}, loc=least.task_loc), max_tasks)
        if least.iterations > MAX_ITERATIONS:
            raise PtortValueError(
                f"workload '{self.name or self.kind}' loops over at least {least.iterations:,} iterations, more than "
                f"the {MAX_ITERATIONS:,} a workload may list; listing them would run for minutes before any task "
                "runs.", hint="Shorten the loops or use larger tiles (fewer, bigger iterations); an iteration that "
                              "launches nothing still has to be listed.", where=least.loop_loc, locate=False)


_NO_DEFAULT: Any = object()


@dataclass(slots=True)
class Task:
    """One concrete kernel launch: ``kernel`` is the kernel's name; ``params`` its axis values in order."""

    kernel: str
    params: list[Any]
    resources: Any
    id: int = 0
    bindings: dict[str, Any] = field(default_factory=dict)
    kernel_ref: Kernel | None = None
    cycles: int | None = None
    loc: SourceLocation | None = None
    process: str | None = None

    def get(self, axis: str, default: Any = _NO_DEFAULT) -> Any:
        """The value of loop variable ``axis`` for this task; an unknown name is an error unless ``default``
        is given (a silent 0 would send every task of a dispatch key to core 0)."""
        if axis in self.bindings:
            return self.bindings[axis]
        if default is not _NO_DEFAULT:
            return default
        refuse_placeholders(axis, f"task {self.id} ({self.kernel}).get()")
        import difflib
        names = sorted(self.bindings)
        close = difflib.get_close_matches(axis, names, n=1)
        raise PtortValueError(
            f"task {self.id} ({self.kernel}) has no loop variable {axis!r}; its bindings are "
            f"{', '.join(f'{k}={v}' for k, v in sorted(self.bindings.items())) or 'none'}.",
            hint=(f"Did you mean {close[0]!r}? " if close else "")
            + "P(...) names its variables b, h, s, d, ... unless you pass names=[...]; pass a default to allow "
              "a missing name.", where=self.loc, locate=False)

    def get_axis_value(self, i: int) -> Any:
        return self.params[i]

    def pinned_cycles(self) -> int | None:
        """The cost pinned by ``cycles=`` (an int, or a function of this task), else None."""
        c = self.cycles
        if c is None or isinstance(c, int):
            return c
        try:
            value = c(self)
        except Exception as e:  # noqa: BLE001 - the user's cost function
            raise_user_error(e, f"the cycles= function of task {self.id} ({self.kernel})")
        if isinstance(value, np.integer) and value >= 0:
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise PtortValueError(f"the cycles= function of task {self.id} ({self.kernel}) returned {value!r}; it "
                                  "must return an int >= 0.", hint="Return a whole number of cycles.",
                                  where=self.loc, locate=False)
        return value

    def __repr__(self) -> str:
        args = ""
        if isinstance(self.resources, dict):
            args = ", ".join(f"{k}={v!r}" for k, v in self.resources.items())
        where = f" @{self.process}" if self.process else ""
        return f"Task({self.id}: {self.kernel}{self.params}({args}){where})"


# -- the builder: open frames collect the statements of a @workload body or a body callable ----------------------
@dataclass
class _BuildState:
    name: str
    frames: list[list[Workload]] = field(default_factory=list)
    var_counter: int = 0
    used_names: set[str] = field(default_factory=set)  # names of the loops open right now
    type_errors: list[TypeErrorInfo] = field(default_factory=list)
    type_check: bool = True
    pipe_depth: int = 0  # P.pipe() blocks open right now (they cannot nest)
    placeholders: dict[str, tuple[Any, str]] = field(default_factory=dict)  # f"{b}" text -> (expression, spec)


_state: contextvars.ContextVar[_BuildState | None] = contextvars.ContextVar("ptort_build", default=None)


def placeholder_table() -> dict[str, tuple[Any, str]] | None:
    """Where formatting a loop expression records it (None outside any build)."""
    st = _state.get()
    return st.placeholders if st is not None else None


def in_builder() -> bool:
    st = _state.get()
    return st is not None and bool(st.frames)


def _require_builder(api: str) -> _BuildState:
    st = _state.get()
    if st is None or not st.frames:
        raise DSLUsageError(f"{api} used outside @workload context.",
                            hint="Call it inside a @workload function, or inside a process body / for_each lambda.")
    return st


def _add(node: Workload) -> None:
    st = _state.get()
    if st is not None and st.frames:
        st.frames[-1].append(node)


def adopt(*nodes: Any) -> None:
    """Take nodes out of the open frame: they become children of the node being built (send, combine, ...)."""
    st = _state.get()
    if st is None or not st.frames:
        return
    frame = st.frames[-1]
    for node in nodes:
        for i in range(len(frame) - 1, -1, -1):
            if frame[i] is node:
                del frame[i]
                break


def group(nodes: Sequence[Workload], kind: str = "combine") -> Workload:
    """0 nodes -> empty, 1 -> that node, more -> a combine (or sequential) node."""
    if not nodes:
        return Workload("empty")
    if len(nodes) == 1:
        return nodes[0]
    return Workload(kind, children=tuple(nodes))


def _fresh_var(st: _BuildState, name: str | None) -> LoopVar:
    if name is None:
        name = _DEFAULT_VAR_NAMES[st.var_counter] if st.var_counter < len(_DEFAULT_VAR_NAMES) \
            else f"v{st.var_counter}"
        st.var_counter += 1
    base, k = name, 1
    while name in st.used_names:
        k += 1
        name = f"{base}{k}"
    st.used_names.add(name)
    return LoopVar(name)


@contextmanager
def _building(name: str, type_check: bool = True) -> Iterator[_BuildState]:
    """Open a build (if none is open) and one frame; yields the state."""
    st = _state.get()
    token = None
    if st is None:
        st = _BuildState(name, type_check=type_check)
        token = _state.set(st)
    st.frames.append([])
    try:
        yield st
    finally:
        st.frames.pop()
        if token is not None:
            _state.reset(token)
    if token is not None and st.type_errors:  # built outside @workload: nobody collects, so report now
        first = st.type_errors[0]
        raise PtortTypeError(first.message, hint=first.hint, where=first.location, locate=False)


def _check_arity(fn: Callable[..., Any], n: int, api: str) -> None:
    """Reject a body callable that cannot take the ``n`` arguments ``api`` passes (the loop index or token)."""
    try:
        inspect.signature(fn).bind(*range(n))
    except ValueError:  # no signature (some builtins): let the call decide
        return
    except TypeError:
        name = getattr(fn, "__name__", "body")
        what = "no arguments" if n == 0 else "one argument (the loop index or channel token)"
        example = ".body_func(lambda: [...])" if n == 0 else f"{api}(..., lambda t: task(k, [t], {{...}}))"
        raise PtortTypeError(f"the {api} body {name}{inspect.signature(fn)} must take {what}.",
                             hint=f"Write it as {example}.") from None


def call_body(fn: Callable[..., Any], *args: Any, api: str) -> Workload:
    """Run a body callable (for_each lambda, consume handler, body_func) and return what it built."""
    if not callable(fn):
        raise PtortTypeError(f"{api} needs a callable body, got {type(fn).__name__} {fn!r}.",
                             hint=f"Pass a lambda, e.g. {api}(..., lambda t: task(k, [t], {{...}})).")
    _check_arity(fn, len(args), api)
    what = f"the {api} body {getattr(fn, '__name__', '')}".rstrip()
    refuse_generator(fn, what, "build no tasks", _BODY_HINT)
    with _building(getattr(fn, "__name__", api)) as st:
        result = run_user_body(fn, args, {}, what)
        nodes = list(st.frames[-1])
    refuse_generator_result(result, what, "build no tasks", _BODY_HINT)
    for item in (result if isinstance(result, (list, tuple)) else [result]):
        if item is None:
            continue
        if not isinstance(item, Workload):
            raise PtortTypeError(f"the {api} body returned {type(item).__name__} {item!r}; it must build or return "
                                 "workloads.", hint="Return task(...), send(...), k[t](...) or a list of them.")
        if not any(item is n for n in nodes):
            nodes.append(item)
    return group(nodes, "sequential")


_BODY_HINT = ("Launch tasks as statements (k[t](...), task(...), send(...)) or return them (a workload or a list); "
              "do not yield them, and use a plain def, not async def.")


def run_user_body(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], what: str) -> Any:
    """Call a user body; any error it raises becomes one located ptort_lab error (a refusal numpy swallowed, such
    as ``array[b]`` on a loop variable, comes back as itself)."""
    clear_refusal()
    try:
        return fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - the user's body: any error becomes one located ptort_lab error
        swallowed = recover_refusal(e)
        if swallowed is not None:
            raise swallowed from e
        raise_user_error(e, what)
    finally:
        clear_refusal()  # it holds its traceback's frames


def _var_name_of(fn: Any, default: str) -> str | None:
    try:
        params = list(inspect.signature(fn).parameters)
    except (TypeError, ValueError):
        return default
    return params[0] if params else default


def _body_with_var(fn: Callable[..., Any], api: str, name: str | None = None) -> tuple[LoopVar, Workload]:
    with _building(api) as st:
        var = _fresh_var(st, name or _var_name_of(fn, "i"))
        try:
            body = call_body(fn, var, api=api)
        finally:
            st.used_names.discard(var.name)  # a sibling loop may use the name again
    return var, body


# -- task launches ----------------------------------------------------------------------------------------------
def _record_error(info: TypeErrorInfo) -> None:
    st = _state.get()
    if st is not None and st.frames and st.type_check:
        st.type_errors.append(info)
        return
    if st is not None and not st.type_check:
        return
    raise PtortTypeError(info.message, hint=info.hint, where=info.location, locate=False)


def check_launch(kernel: Kernel, kwargs: dict[str, Any], loc: SourceLocation | None) -> bool:
    """Check launch arguments against the kernel's annotations; report each problem. True when all fit."""
    ok = True
    names = list(kernel.signature)
    required = [n for n in names if n not in kernel.defaults]
    unknown = [k for k in kwargs if k not in kernel.signature]
    missing = [n for n in required if n not in kwargs]
    if unknown or missing:
        import difflib
        for u in unknown:
            close = difflib.get_close_matches(u, names, n=1)
            _record_error(TypeErrorInfo(
                TypeErrorKind.ARITY_MISMATCH, f"Kernel '{kernel.name}' has no parameter '{u}'.", loc,
                expected=", ".join(names), got=", ".join(kwargs),
                hint=(f"Did you mean '{close[0]}'? " if close else "") + f"Its parameters are {', '.join(names)}."))
        for m in missing:
            _record_error(TypeErrorInfo(
                TypeErrorKind.ARITY_MISMATCH if len(kwargs) != len(required) else TypeErrorKind.MISSING_ARGUMENT,
                f"Kernel '{kernel.name}' expects {len(required)} args, got {len(kwargs)}: missing argument '{m}'.",
                loc, expected=", ".join(required), got=", ".join(kwargs) or "(none)",
                hint=f"Pass {m}=... (a tensor view such as X[t])."))
        ok = False
    for pname, value in kwargs.items():
        if pname not in kernel.signature:
            continue
        direction, typ = kernel.signature[pname]
        if direction is Direction.CONSTEXPR:
            refuse_placeholders(value, f"kernel '{kernel.name}' Constexpr parameter '{pname}'")
            continue
        if isinstance(typ, ScalarType):
            if isinstance(value, Expr):
                continue  # its value exists per task: checked when the task runs (scalar_argument)
            if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
                _check_scalar_launch(kernel, pname, typ, value, loc)
                continue
            _record_error(TypeErrorInfo(TypeErrorKind.TYPE_MISMATCH,
                                        f"Kernel '{kernel.name}' parameter '{pname}' is a scalar, got {value!r}.",
                                        loc, expected=str(typ), got=type(value).__name__,
                                        hint="Pass a Python number."))
            ok = False
            continue
        if isinstance(value, Tensor):
            value = TensorView(value, ())
        if not isinstance(value, TensorView):
            _record_error(TypeErrorInfo(
                TypeErrorKind.TYPE_MISMATCH,
                f"Kernel '{kernel.name}' parameter '{pname}' expects a Tensor view of {typ}, got "
                f"{type(value).__name__} {value!r}.", loc, expected=f"Tensor view {typ}", got=type(value).__name__,
                hint=f"Pass a tile of a Tensor, e.g. {pname}=X[t]."))
            ok = False
            continue
        assert isinstance(typ, TileType)
        if tuple(value.shape) != typ.shape:
            _record_error(TypeErrorInfo(
                TypeErrorKind.SHAPE_MISMATCH,
                f"Kernel '{kernel.name}' parameter '{pname}' expects a {typ.rows}x{typ.cols} tile, got {value!r} "
                f"of shape {tuple(value.shape)}.", loc, expected=str(typ.shape), got=str(tuple(value.shape)),
                hint="Index the tensor down to one tile (X[t] for a [n, rows, cols] tensor), or change the "
                     "kernel's Tile[...] annotation."))
            ok = False
        elif value.dtype != typ.dtype:
            _record_error(TypeErrorInfo(
                TypeErrorKind.TYPE_MISMATCH,
                f"Kernel '{kernel.name}' parameter '{pname}' expects dtype {typ.dtype}, got {value!r} of dtype "
                f"{value.dtype}.", loc, expected=str(typ.dtype), got=str(value.dtype),
                hint=f"Create the tensor with dtype=DType.{typ.dtype}, or change the annotation to "
                     f"Tile[{typ.rows}, {typ.cols}, DType.{value.dtype}]."))
            ok = False
    return ok


def _scalar_hint(kind: str, value: Any, dtype: Any) -> str:
    """How to fix a scalar kernel argument that has no value in its parameter's dtype."""
    if kind == "not_whole":
        import math
        return (f"Pass a whole number (e.g. {math.floor(value)}), or declare the parameter Scalar[DType.F32] if "
                "fractions are meant.")
    if kind == "int_range":
        return ("Pass a value inside that range, or declare the parameter with a wider dtype (Scalar[DType.I64] or "
                "Scalar[DType.F32]).")
    if kind == "nonfinite":
        return f"Integer dtypes have no nan or inf: declare the parameter Scalar[DType.F32] to pass {value!r}."
    if kind == "type" and isinstance(value, (bool, np.bool_)):
        return ("A comparison of loop variables gives True/False, not a number: pass an integer expression, or "
                "choose between two launches with P.when(...) / cond(...).")
    if kind == "type":
        return "Pass a real number (an int or a float) of the parameter's dtype."
    return (f"Pass a value inside the range of {dtype}, declare the parameter Scalar[DType.F32], or pass "
            "float('inf') if infinity is meant.")


def _check_scalar_launch(kernel: Kernel, pname: str, typ: ScalarType, value: Any, loc: SourceLocation | None) -> None:
    """A number given for a Scalar[...] parameter must have a value in its dtype (numpy would truncate 2.7 to 2 for
    I32 and make 1e6 inf in F16): refused at the launch line, even with type_check=False."""
    try:
        scalar_value(value, typ.dtype)
    except ScalarRefused as r:
        raise PtortValueError(f"kernel '{kernel.name}' parameter '{pname}' (Scalar[{typ.dtype}]): {r.text}",
                              hint=_scalar_hint(r.kind, value, typ.dtype), where=loc, locate=False) from None


def scalar_argument(value: Any, typ: ScalarType, task: Task, pname: str, label: str = "") -> np.ndarray:
    """The 0-d array a scalar kernel argument runs as; a value with none in the parameter's dtype (a loop
    expression evaluated for this task, a bool from a comparison) raises a KernelExecutionError naming the launch
    (``label``: how the caller names the task, e.g. "tile 3")."""
    from ..errors import KernelExecutionError
    try:
        number = scalar_value(value, typ.dtype)
    except ScalarRefused as r:
        raise KernelExecutionError(
            f"the launch of {task.kernel} for {label or f'task {task.id}'} passes {value!r} for scalar parameter "
            f"'{pname}' (Scalar[{typ.dtype}]): {r.text}", hint=_scalar_hint(r.kind, value, typ.dtype),
            where=task.loc, locate=False) from None
    return np.asarray(number, dtype=typ.dtype.np_dtype)


def _check_axes(name: str, axes: Any, loc: SourceLocation | None) -> None:
    """Launch axes are ints or loop expressions: anything else would surface far away (a token, a dispatch key)."""
    for a in axes:
        if isinstance(a, Expr) or (isinstance(a, (int, np.integer)) and not isinstance(a, bool)):
            continue
        raise PtortTypeError(f"kernel '{name}' is launched with axis {a!r} ({type(a).__name__}); launch axes are "
                             "ints or loop variables.", hint=f"Write {name}[t](...) with t from P(...), or "
                                                             f"task({name}, [t], {{...}}).", where=loc, locate=False)


def launch_task(kernel: Kernel, axes: tuple[Any, ...], kwargs: dict[str, Any], loc: SourceLocation | None,
                cycles: int | None = None) -> Workload:
    _check_axes(kernel.name, axes, loc)
    for k in kwargs:
        refuse_placeholders(k, f"kernel '{kernel.name}' launch argument name")
    bad_keys = [k for k in kwargs if not isinstance(k, str)]
    if bad_keys:
        raise PtortTypeError(f"kernel '{kernel.name}' got resource key(s) {bad_keys!r}; keys are parameter names.",
                             hint=f"Its parameters are {', '.join(kernel.signature)}: "
                                  f"task({kernel.name}, [t], {{'{next(iter(kernel.signature), 'src')}': X[t], ...}}).",
                             where=loc, locate=False)
    check_launch(kernel, kwargs, loc)
    resources = {k: (TensorView(v, ()) if isinstance(v, Tensor) else v) for k, v in kwargs.items()}
    node = Workload("task", loc=loc, kernel=kernel, params=tuple(axes), resources=resources,
                    cycles=cycles if cycles is not None else kernel.cycles)
    _add(node)
    return node


def task(kernel: Any, params: Sequence[Any] = (), resources: Any = None, *, cycles: int | None = None) -> Workload:
    """A task leaf: ``task(k, [t], {"src": X[t], "dst": Y[t]})``; ``cycles=`` pins its cost.

    ``kernel`` may be a @kernel (then ``resources`` is a dict param -> tensor view, checked against the
    annotations) or a name string (enumerate-only, as in the reference's early examples).
    """
    loc = user_location(2)
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
    _check_axes(str(kernel), params, loc)
    kernel = name_template(kernel, "task()")  # task(f"expert_{e}", ...): each task gets its own name
    refuse_placeholders(resources, f"task({kernel!r}) resources")
    node = Workload("task", loc=loc, kernel=kernel, params=tuple(params),
                    resources=resources if resources is not None else [], cycles=cycles)
    _add(node)
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


class _PLoop:
    def __init__(self, axes: tuple[Any, ...], names: Sequence[str] | None, kind: str) -> None:
        self.axes, self.names, self.kind = axes, names, kind
        self.loc = user_location(3)
        api = {"parallel_for": "P", "for_each": "P.seq", "select": "P.sel"}[kind]
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
        st = _require_builder("P()" if self.kind == "parallel_for" else "P.seq()")
        vars_: list[LoopVar] = []
        names = list(self.names or [])
        clash = [n for n in names if n in st.used_names]
        if clash:
            raise PtortValueError(f"loop variable name {clash[0]!r} is already used by an enclosing loop.",
                                  hint="Give the inner loop another name; t.get(name) must say which loop it means.",
                                  where=self.loc, locate=False)
        for axis in self.axes:
            for _ in range(2 if isinstance(axis, Ragged) else 1):
                vars_.append(_fresh_var(st, names.pop(0) if names else None))
        st.frames.append([])
        depth = len(st.frames)
        yield vars_[0] if len(vars_) == 1 else tuple(vars_)
        if len(st.frames) != depth:  # the body raised or broke out; the build is being abandoned
            return
        body = group(st.frames.pop())
        st.used_names.difference_update(v.name for v in vars_)  # only enclosing loops must not share a name
        _add(Workload(self.kind, loc=self.loc, axes=self.axes, vars=tuple(vars_), body=body))


class _PNamespace:
    """``P(axes)`` parallel loop; ``P.seq`` sequential; ``P.sel`` sparse; ``P.pipe()``; ``P.when``/``otherwise``."""

    def __call__(self, *axes: Any, names: Sequence[str] | None = None) -> _PLoop:
        _require_builder("P()")
        if not axes:
            raise PtortTypeError("P() needs at least one axis.", hint="Write `for t in P(Dense[8]()):`.")
        return _PLoop(tuple(_check_axis(a, "P()") for a in axes), names, "parallel_for")

    grid = __call__

    def seq(self, axis: Any, name: str | None = None) -> _PLoop:
        _require_builder("P.seq()")
        return _PLoop((_check_axis(axis, "P.seq()"),), [name] if name else None, "for_each")

    def sel(self, source: Any, name: str | None = None) -> _PLoop:
        _require_builder("P.sel()")
        return _PLoop((_check_axis(source, "P.sel()"),), [name] if name else None, "select")

    @contextmanager
    def pipe(self) -> Iterator[None]:
        """Each top-level statement inside becomes one pipeline stage, coupled by the channels it uses."""
        st = _require_builder("P.pipe()")
        loc = user_location(3)
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
        from .csp import pipe_pipeline
        _add(pipe_pipeline(stages, loc))

    @contextmanager
    def when(self, pred: Any) -> Iterator[None]:
        _check_predicate(pred, "P.when")
        st = _require_builder("P.when()")
        loc = user_location(3)
        st.frames.append([])
        yield
        then = group(st.frames.pop())
        _add(Workload("cond", loc=loc, pred=pred, then=then, otherwise=Workload("empty")))

    @contextmanager
    def otherwise(self) -> Iterator[None]:
        st = _require_builder("P.otherwise()")
        frame = st.frames[-1]
        if not frame or frame[-1].kind != "cond" or frame[-1].fields.get("has_else"):
            raise DSLUsageError("P.otherwise() must follow P.when().",
                                hint="Write `with P.when(cond): ...` immediately before `with P.otherwise(): ...`.")
        node = frame[-1]
        st.frames.append([])
        yield
        node.fields["otherwise"] = group(st.frames.pop())
        node.fields["has_else"] = True


P = _PNamespace()


# -- functional forms (usable inside and outside @workload) -------------------------------------------------------
def _loop(kind: str, axis: Any, body: Callable[..., Any], api: str) -> Workload:
    loc = user_location(3)
    axis = _check_axis(axis, api)
    var, node_body = _body_with_var(body, api)
    vars_: tuple[LoopVar, ...] = (var,)
    if isinstance(axis, Ragged):
        raise PtortTypeError(f"{api} over a Ragged axis needs two loop variables; use P(ragged) in a @workload.",
                             hint="Or loop over Dense[outer] and DenseDyn(ragged.length(b)).")
    node = Workload(kind, loc=loc, axes=(axis,), vars=vars_, body=node_body)
    _add(node)
    return node


def parallel_for(axis: Any, body: Callable[..., Any]) -> Workload:
    """Independent iterations: ``parallel_for(Dense[8](), lambda t: k[t](src=X[t], dst=Y[t]))``."""
    return _loop("parallel_for", axis, body, "parallel_for")


def for_each(axis: Any, body: Callable[..., Any]) -> Workload:
    """Ordered iterations (iteration i+1 after iteration i)."""
    return _loop("for_each", axis, body, "for_each")


def select(source: Any, body: Callable[..., Any]) -> Workload:
    """One iteration per index of ``source``: a list, a Sparse row ``sp[b]``, or a whole Sparse (every index)."""
    return _loop("select", source, body, "select")


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
    loc = user_location(2)
    then_w = then if isinstance(then, Workload) else Workload("empty")
    else_w = otherwise if isinstance(otherwise, Workload) else Workload("empty")
    for w, what in ((then, "then"), (otherwise, "otherwise")):
        if w is not None and not isinstance(w, Workload):
            raise PtortTypeError(f"cond() {what} branch must be a workload, got {w!r}.",
                                 hint="Pass task(...)/k[t](...) or combine(...).")
    adopt(then_w, else_w)
    node = Workload("cond", loc=loc, pred=pred, then=then_w, otherwise=else_w, has_else=otherwise is not None)
    _add(node)
    return node


def _compose(kind: str, workloads: tuple[Any, ...]) -> Workload:
    items = list(workloads[0]) if len(workloads) == 1 and isinstance(workloads[0], (list, tuple)) else list(workloads)
    for w in items:
        if not isinstance(w, Workload):
            raise PtortTypeError(f"{kind}() takes workloads, got {type(w).__name__} {w!r}.",
                                 hint="Pass task(...), k[t](...), loops or other workloads.")
    adopt(*items)
    node = Workload(kind, loc=user_location(3), children=tuple(items))
    _add(node)
    return node


def combine(*workloads: Any) -> Workload:
    """Unordered composition: the children may run concurrently (data dependencies still hold)."""
    return _compose("combine", workloads)


def sequential(*workloads: Any) -> Workload:
    """Ordered composition: each child starts after the previous one finished."""
    return _compose("sequential", workloads)


def slot_set_u64(slot: int, value: Any) -> Workload:
    """Set runtime slot ``slot`` to ``value`` (an int or a loop expression) when this statement is reached."""
    from . import slots
    node = Workload("slot_set", loc=user_location(2), slot=slots._check_slot(slot, "slot_set_u64(slot, value)"),
                    value=slots.check_value(value))
    _add(node)
    return node


def slot_load_u64(slot: int, view: Any, row: int = 0, col: int = 0) -> Workload:
    """Read element [row, col] of the tile ``view`` (e.g. ``EffSeq[b, s]``) into runtime slot ``slot`` when this
    statement is reached; ``slot_u64(slot)`` then reads it in conditions, indices and keys."""
    from . import slots
    loc = user_location(2)
    if isinstance(view, Tensor):
        view = TensorView(view, ())
    if not isinstance(view, TensorView):
        raise PtortTypeError(f"slot_load_u64 reads a tensor view such as X[b], got {type(view).__name__} {view!r}.",
                             hint="Write slot_load_u64(0, EffSeq[b, s]).", where=loc, locate=False)
    for name, n in (("row", row), ("col", col)):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise PtortValueError(f"slot_load_u64 {name}= must be an int >= 0, got {n!r}.",
                                  hint="row= and col= pick the element inside the tile.", where=loc, locate=False)
    node = Workload("slot_load", loc=loc, slot=slots._check_slot(slot, "slot_load_u64(slot, view)"), view=view,
                    row=int(row), col=int(col))
    _add(node)
    return node


def empty() -> Workload:
    return Workload("empty")


# -- @workload -----------------------------------------------------------------------------------------------------
class WorkloadFunction:
    """The result of ``@workload``: call it to run the body once symbolically and get its Workload tree."""

    def __init__(self, fn: Callable[..., Any], type_check: bool = True, fail_on_type_error: bool = False) -> None:
        if not callable(fn):
            raise PtortTypeError(f"@workload decorates a function, got {type(fn).__name__} {fn!r}.",
                                 hint="Write @workload above a def whose body launches tasks in P(...) loops.")
        self.fn = fn
        self.name = getattr(fn, "__name__", "workload")
        refuse_generator(fn, f"@workload '{self.name}'", "build no tasks", _BODY_HINT)
        self.type_check = type_check
        self.fail_on_type_error = fail_on_type_error
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn

    def __call__(self, *args: Any, **kwargs: Any) -> Workload:
        outer = _state.get()
        if outer is not None and outer.frames:
            return self._build_nested(outer, args, kwargs)
        token = _state.set(_BuildState(self.name, type_check=self.type_check))
        try:
            st = _state.get()
            assert st is not None
            st.frames.append([])
            result = run_user_body(self.fn, args, kwargs, f"the body of @workload '{self.name}'")
            refuse_generator_result(result, f"@workload '{self.name}'", "build no tasks", _BODY_HINT)
            nodes = st.frames.pop()
            if isinstance(result, Workload) and not any(result is n for n in nodes):
                nodes.append(result)
            errors = list(st.type_errors)
        finally:
            _state.reset(token)
        root = group(nodes)
        root.name = root.name or self.name
        root.type_errors = errors if self.type_check else []
        if root.type_errors and self.fail_on_type_error:
            raise PtortTypeError(f"Type errors in workload '{self.name}':\n"
                                 + "\n".join(e.format() for e in root.type_errors),
                                 hint="Fix the kernel launches listed above.", where=root.type_errors[0].location,
                                 locate=False)
        return root

    def _build_nested(self, st: _BuildState, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Workload:
        """Called inside another @workload or a body: build into the enclosing workload, sharing its loop variable
        names (so the outer loop's ``b`` is not shadowed) and its type-error list."""
        st.frames.append([])
        result = self.fn(*args, **kwargs)
        nodes = st.frames.pop()
        refuse_generator_result(result, f"@workload '{self.name}'", "build no tasks", _BODY_HINT)
        if isinstance(result, Workload) and not any(result is n for n in nodes):
            nodes.append(result)
        root = group(nodes)
        root.name = root.name or self.name
        _add(root)
        return root


def workload(fn: Callable[..., Any] | None = None, *, type_check: bool = True,
             fail_on_type_error: bool = False) -> Any:
    """``@workload`` or ``@workload(type_check=True, fail_on_type_error=False)``."""
    if fn is None:
        return lambda f: WorkloadFunction(f, type_check, fail_on_type_error)
    return WorkloadFunction(fn, type_check, fail_on_type_error)


# -- sizes known before listing ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LeastWork:
    """What listing a workload does at least, from static sizes alone: tasks, loop iterations, and the launch and
    loop lines to name when either is too many."""

    tasks: int = 0
    iterations: int = 0
    task_loc: SourceLocation | None = None
    loop_loc: SourceLocation | None = None


def _least_points(axis: Any) -> int:
    """At least how many points a loop over ``axis`` visits (0 when only the run knows)."""
    if isinstance(axis, Ragged):
        return axis.total()
    if isinstance(axis, Axis):
        size = axis.size if isinstance(axis, DenseDyn) else getattr(axis, "size", 0)
        return size if isinstance(size, int) else 0
    if isinstance(axis, Sparse):
        return axis.nnz()
    if isinstance(axis, SparseRow):
        sp = axis.sparse
        return min((sp.row_nnz(r) for r in range(sp.outer_size)), default=0)
    if isinstance(axis, range):
        return max(0, (axis.stop - axis.start + axis.step - (1 if axis.step > 0 else -1)) // axis.step)
    if isinstance(axis, (list, tuple)):
        return len(axis)
    return 0


def _sum(parts: list[LeastWork]) -> LeastWork:
    return LeastWork(sum(p.tasks for p in parts), sum(p.iterations for p in parts),
                     next((p.task_loc for p in parts if p.task_loc is not None), None),
                     next((p.loop_loc for p in parts if p.loop_loc is not None), None))


def least_work(node: Any) -> LeastWork:
    """A lower bound on the work of listing ``node``: loops multiply their static sizes (Dense, DenseDyn of an int,
    lists, Ragged, Sparse), a branch counts its smaller side, and what only the run knows (DenseDyn of a loop
    expression, tokens a consume receives) counts 0."""
    if not isinstance(node, Workload):
        return LeastWork()
    kind, f = node.kind, node.fields
    if kind == "task":
        return LeastWork(1, 0, node.loc)
    if kind in ("parallel_for", "for_each", "select"):
        n = 1
        for axis in f["axes"]:
            n *= _least_points(axis)
        body = least_work(f["body"])
        return LeastWork(n * body.tasks, n * (1 + body.iterations), body.task_loc, node.loc)
    if kind in ("combine", "sequential"):
        return _sum([least_work(c) for c in f["children"]])
    if kind == "cond":
        pred = f["pred"]
        if isinstance(pred, (bool, int)):
            return least_work(f["then"] if pred else f["otherwise"])
        a, b = least_work(f["then"]), least_work(f["otherwise"])
        return LeastWork(min(a.tasks, b.tasks), min(a.iterations, b.iterations), a.task_loc or b.task_loc,
                         a.loop_loc or b.loop_loc)
    if kind == "send":
        return least_work(f["value"])
    if kind in ("pipe", "connect"):
        return _sum([least_work(p.workload) for p in f["processes"]])
    return LeastWork()  # consume (its token count is known only at run time), events, slots, empty


def resolve_select_source(source: Any, bindings: dict[str, Any]) -> Sequence[int]:
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


__all__ = ["Workload", "Task", "workload", "WorkloadFunction", "P", "task", "parallel_for", "for_each", "select",
           "cond", "combine", "sequential", "empty", "in_builder", "launch_task", "adopt", "group", "call_body",
           "slot_set_u64", "slot_load_u64"]
