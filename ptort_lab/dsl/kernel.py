"""@kernel: trace a Python function once, through its annotations, into Kernel IR; launch it as tasks."""
from __future__ import annotations

import contextvars
import enum
import functools
import inspect
import itertools
import linecache
import numbers
import os
import re
import sys
from contextlib import contextmanager
from types import FrameType, FunctionType, MethodType, ModuleType
from typing import Any, Callable, Iterator

import numpy as np

from ..errors import (
    DSLUsageError,
    PtortError,
    PtortTypeError,
    PtortValueError,
    SourceLocation,
    UserCodeError,
    is_user_file,
    raise_user_error,
    user_location,
)
from .builder import bind_positional, forget_pending, in_builder, launch_task, note_pending
from .expr import clear_refusal, recover_refusal, refuse_placeholders, refuse_unprintable
from .ir import (
    NUMPY_ATTRIBUTES,
    NUMPY_TO_TL,
    TL_OPS,
    KernelIR,
    KernelParam,
    KernelTrace,
    OpKind,
    Value,
    active_trace,
    tracing,
)
from .tasks import MAX_CYCLES, cycles_bound_hint
from .types import Direction, DType, LaunchShaped, ParamAnnotation, ScalarType, Tensor, TensorView, TileType
from .user_code import (
    Step,
    body_location,
    code_objects,
    is_stub,
    read_chains,
    refuse_generator,
    refuse_generator_result,
)

_DSL_DIR = os.path.dirname(os.path.abspath(__file__))


def _parse_annotation(kernel_name: str, pname: str, ann: Any, default: Any) -> tuple[Direction, Any]:
    if isinstance(ann, ParamAnnotation):
        inner = ann.type
        if ann.direction is Direction.CONSTEXPR:
            return ann.direction, inner
        if ann.direction is Direction.OUT and (isinstance(inner, ScalarType) or inner in (float, int)):
            # tl.store writes tiles only: an Out scalar could never be written, so it would keep its old value
            raise PtortTypeError(
                f"kernel '{kernel_name}' parameter '{pname}' is annotated {ann!r}: a kernel cannot write a scalar "
                "(tl.store writes tiles), so that output would never be written.",
                hint=f"Return it in a tile: {pname}: Out[Tile[1, 1, DType.F32]] and tl.store({pname}, value); or "
                     f"annotate it Scalar[...] if the kernel only reads it.")
        if isinstance(inner, (TileType, ScalarType)):
            return ann.direction, inner
        if inner is Tensor:  # the reference's In[Tensor]: the launch's argument gives the tile shape and dtype
            return ann.direction, LaunchShaped(f"{ann.direction.value}[Tensor]")
        if inner in (float, int):
            return ann.direction, ScalarType(DType.F32 if inner is float else DType.I32)
        raise PtortTypeError(
            f"kernel '{kernel_name}' parameter '{pname}' is annotated {ann!r}; the inner type must be Tile[...] "
            "or Scalar[...].", hint=f"Write {pname}: {ann.direction.value}[Tile[rows, cols, DType.F32]].")
    if isinstance(ann, (TileType, ScalarType)):
        return Direction.IN, ann
    if ann is Tensor:
        return Direction.IN, LaunchShaped("Tensor")
    if ann in (int, float, bool, str):
        return Direction.CONSTEXPR, ann
    if ann is inspect.Parameter.empty:
        # The reference's unannotated parameter: shaped by the launch, and read and written for all we know (so
        # tasks that share its tensor are ordered; In[...]/Out[...] lets independent readers overlap).
        return Direction.INOUT, LaunchShaped("no annotation")
    raise PtortTypeError(f"kernel '{kernel_name}' parameter '{pname}' has an annotation ptort_lab cannot use: "
                         f"{ann!r}.", hint="Use In[Tile[...]], Out[Tile[...]], InOut[Tile[...]], Scalar[...] or "
                                           "Constexpr[int].")


def _user_locals() -> dict[str, Any]:
    """Local names of the user's frame that applies @kernel (string annotations may refer to them)."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_DSL_DIR):
        frame = frame.f_back
    return dict(frame.f_locals) if frame is not None else {}


def _annotations(fn: Callable[..., Any], scope_locals: dict[str, Any] | None = None) -> dict[str, Any]:
    """The function's annotations, evaluated even under ``from __future__ import annotations``."""
    raw = dict(getattr(fn, "__annotations__", {}))
    if not any(isinstance(v, str) for v in raw.values()):
        return raw
    scope = dict(fn.__globals__)
    scope.update(scope_locals or {})
    if fn.__closure__:
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__):
            try:
                scope[name] = cell.cell_contents
            except ValueError:
                pass
    out = {}
    for k, v in raw.items():
        if isinstance(v, str):
            try:
                v = eval(v, scope)  # noqa: S307 - the user's own annotation text, in the user's own scope
            except PtortError as e:  # the names resolved, but to a bad value (Tile[-4, ...]): that error as it is
                raise type(e)(e.what, hint=e.hint, where=_parameter_location(fn, k), context=e.context,
                              locate=False) from None
            except Exception as e:
                hint = ("Define the names it uses at module level (string annotations cannot see a function's "
                        "locals), or drop `from __future__ import annotations`." if isinstance(e, NameError) else
                        "Fix the annotation: it must evaluate to In[Tile[...]], Out[Tile[...]], Scalar[...] or "
                        "Constexpr[...].")
                raise PtortTypeError(
                    f"the annotation {v!r} of kernel parameter '{k}' could not be evaluated: "
                    f"{str(e).rstrip('.')}.", hint=hint, where=_parameter_location(fn, k), locate=False) from None
        out[k] = v
    return out


def _parameter_location(fn: Callable[..., Any], pname: str) -> SourceLocation | None:
    """The line of ``fn``'s signature that declares ``pname`` (else its ``def`` line)."""
    code = getattr(fn, "__code__", None)
    if code is None:
        return user_location()
    filename, line = code.co_filename, code.co_firstlineno
    for n in range(line, line + 20):  # past the decorators
        if linecache.getline(filename, n).lstrip().startswith(("def ", "async def ")):
            line = n
            break
    declares = re.compile(rf"(^|[(,\s]){re.escape(pname)}\s*:")
    depth = 0
    for n in range(line, line + 60):
        text = linecache.getline(filename, n).split("#")[0]
        if declares.search(text):
            line = n
            break
        depth += text.count("(") + text.count("[") - text.count(")") - text.count("]")
        if depth <= 0 and text.rstrip().endswith(":"):
            break  # the signature ended without naming it
    return SourceLocation(filename, line, code.co_name, linecache.getline(filename, line).strip())


# The run being simulated (a number, 0 outside runs), per thread and task: a kernel checks the values its traces
# baked in once per run (``Kernel._forget_stale_traces``). A context variable, so runs in several threads each count.
_RUN: contextvars.ContextVar[int] = contextvars.ContextVar("ptort_lab_kernel_run", default=0)
_RUNS = itertools.count(1)


@contextmanager
def checked_once_per_run() -> Iterator[None]:
    """A run of the simulator: inside it each kernel checks once whether a value its traces baked in changed."""
    token = _RUN.set(next(_RUNS))
    try:
        yield
    finally:
        _RUN.reset(token)


class Kernel:
    """A traced tile kernel made by ``@kernel``.

    ``k.trace()`` gives its KernelIR; ``k[t](src=X[t], dst=Y[t])`` inside a @workload (or a process body)
    launches it as a task bound to the axis values ``t``; ``k(src=..., dst=...)`` launches it with no axes.
    Outside a workload ``k(...)`` only traces: given tensors or arrays it is refused, as it would compute nothing.

    The body runs once per trace (at the ``def`` when every Constexpr has a default), and the trace is cached per
    Constexpr values; a Constexpr object (an instance of the user's own class) by what the body reads of it as well
    (``cfg.scale``, ``cfg.sizes[0]``), so changing it in place traces the body again. A plain value the body reads
    (``SCALE = 2.0``: a bool, int, float, complex, str, None, a numpy number, an enum member or a tuple of them) is
    part of the trace, and so is a function it calls: read as a global, a closure variable, a constant item
    (``CFG["scale"]``, ``L[0]``) or an attribute of the user's module, class or instance (``config.EPS``), by the
    body or by the helper functions it calls that way. When one changes later (a new notebook cell, a changed
    setting of a kernel factory) the next launch
    traces the body again.
    Values reached any other way (a computed key, a numpy array's elements, a property, a helper passed in an object
    or from an installed package) are read only when the body is traced.
    """

    def __init__(self, fn: Callable[..., Any], *, cycles: int | None = None, name: str | None = None,
                 scope: dict[str, Any] | None = None, **options: Any) -> None:
        if not callable(fn):
            raise PtortTypeError(f"@kernel decorates a function, got {type(fn).__name__} {fn!r}.",
                                 hint="Write @kernel above a def whose parameters are annotated In[Tile[...]] / "
                                      "Out[Tile[...]].")
        if isinstance(fn, Kernel):  # (its launches would trace the inner kernel inside the outer one's body)
            raise PtortTypeError(f"@kernel is applied twice to '{fn.name}': the function is a kernel already.",
                                 hint="Remove one of the two @kernel (or kernel(...)) calls.")
        if isinstance(fn, functools.partial):  # (its parameters' annotations and the values bound would be lost)
            raise PtortTypeError(
                f"@kernel decorates a function, got functools.partial of {getattr(fn.func, '__name__', fn.func)!r}: "
                "a partial has no annotated parameters of its own, so every parameter would be an unannotated "
                "tile and the values it binds would not be Constexprs.",
                hint="Make the bound values Constexpr parameters with defaults (def k(x: In[...], ..., s: "
                     "Constexpr[float] = 3.0)), or define the kernel in a function that takes them (a kernel "
                     "factory).")
        self.fn = fn
        if name is not None:
            refuse_placeholders(name, "@kernel(name=...)")
            if not isinstance(name, str):  # (as a Channel's or Process's name; "" still means the function's)
                raise PtortTypeError(f"@kernel(name=...) must be a string, got {name!r}.",
                                     hint='Write @kernel(name="load_tile", ...), or leave name out to use the '
                                          "function's name.")
            refuse_unprintable(name, "@kernel(name=...)", "@kernel(name={})")
        self.name: str = name or str(getattr(fn, "__name__", "kernel"))
        refuse_generator(fn, f"@kernel '{self.name}'", "record no ops and write no outputs",
                         "Write the body as a plain def that calls tl.* ops and tl.store (no yield, no async).")
        _check_kernel_options(self.name, options)
        self.options = options
        if cycles is not None and (isinstance(cycles, bool) or not isinstance(cycles, numbers.Integral)
                                   or cycles < 0):
            raise PtortValueError(f"@kernel(cycles=...) must be an int >= 0, got {cycles!r}.",
                                  hint="cycles pins every launch of this kernel to that many cycles.")
        if cycles is not None and cycles > MAX_CYCLES:
            raise PtortValueError(f"@kernel(cycles=...) must be an int in 0..2**53, got {cycles!r}.",
                                  hint=cycles_bound_hint("A kernel's cycles"))
        self.cycles = None if cycles is None else int(cycles)  # (numpy ints are as good as Python ones)
        self.__doc__ = fn.__doc__
        self.__wrapped__ = fn
        anns = _annotations(fn, scope if scope is not None else _user_locals())
        sig = inspect.signature(fn)
        _refuse_method(self.name, fn, sig)
        self.signature: dict[str, tuple[Direction, Any]] = {}
        self.defaults: dict[str, Any] = {}
        for pname, p in sig.parameters.items():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                raise PtortTypeError(f"kernel '{self.name}' uses *{pname}; kernels need named parameters.",
                                     hint="List every tile parameter by name.")
            if p.kind is p.POSITIONAL_ONLY:  # launches pass every argument by name: such a parameter never binds
                raise PtortTypeError(f"kernel '{self.name}' makes parameter '{pname}' positional-only (the '/' in "
                                     "its signature); kernels need named parameters, as launches pass arguments by "
                                     "name.", hint=f"Remove the '/' from the signature of '{self.name}'.",
                                     where=_parameter_location(fn, pname), locate=False)
            self.signature[pname] = _parse_annotation(self.name, pname, anns.get(pname, p.empty), p.default)
            if p.default is not p.empty:
                self.defaults[pname] = p.default
        self._cache: dict[Any, KernelIR] = {}
        self._object_reads = _param_reads(fn, self.constexpr_params)
        self._shaped = tuple(n for n, (_, t) in self.signature.items() if isinstance(t, LaunchShaped))
        self._no_constexpr = not self.constexpr_params and not self._shaped
        self._watch()
        if not self._shaped and all(n in self.defaults for n in self.constexpr_params):
            self._trace_at_definition()

    def _trace_at_definition(self) -> None:
        """Trace now so shape/dtype mistakes point at the kernel as it is defined; a body that needs names defined
        later in the module is traced again on first use instead, and so is one whose Constexpr defaults include a
        placeholder None (each launch passes the real value)."""
        placeholders = [n for n in self.constexpr_params if self.defaults[n] is None]
        try:
            self.trace()
        except UserCodeError:  # deferred: the same error recurs, located, on first use
            self._cache.clear()
        except PtortError as e:
            self._cache.clear()
            if placeholders:
                return
            if self.constexpr_params and "(traced with " not in e.what:  # the launches may pass other values
                defaults = {n: self.defaults[n] for n in self.constexpr_params}
                _add_note(e, f"Kernel '{self.name}' was traced at its definition with the defaults {defaults}.",
                          f"Give {', '.join(self.constexpr_params)} a default the body can run with, or none (then "
                          "each launch passes the value).")
            raise

    def _watch(self) -> None:
        """Find the values a trace of the body may bake in (see ``_dependencies``) and note what they are now: the
        cached traces are made with these."""
        self._deps = _dependencies(self.fn)
        self._checked_in = 0  # the run (``_RUN``) that last checked them
        self._deps_read = [_read(d) for d in self._deps]
        self._deps_seen = [_dependency_key(v) for v in self._deps_read]

    def _forget_stale_traces(self) -> None:
        """Drop the cached traces when a value the body or its helpers read changed since they were made. Asked at
        every launch outside a run, and once per kernel in a run (``checked_once_per_run``: nothing the kernel reads
        changes between two launches of one run, and a kernel that reads many values pays ~5 us a check); the same
        objects as before answer at once (a few dict lookups); the code is scanned again only after a change, as a
        changed helper may read other values."""
        run = _RUN.get()
        if run:
            if self._checked_in == run:
                return
            self._checked_in = run
        for dep, read in zip(self._deps, self._deps_read):
            root, name, steps = dep
            if (root.get(name, _NOT_PLAIN) if not steps and root.__class__ is dict else _read(dep)) is not read:
                break
        else:
            return
        now = [_read(d) for d in self._deps]
        if [_dependency_key(v) for v in now] == self._deps_seen:
            self._deps_read = now  # other objects that a trace cannot tell apart (an equal list, a new tensor)
            return
        self._cache.clear()
        self._watch()

    @property
    def tile_params(self) -> list[str]:
        """The names of the tile and scalar parameters (every one but the Constexprs)."""
        return [n for n, (d, t) in self.signature.items() if d is not Direction.CONSTEXPR]

    @property
    def constexpr_params(self) -> list[str]:
        """The names of the Constexpr parameters (values fixed per trace)."""
        return [n for n, (d, _) in self.signature.items() if d is Direction.CONSTEXPR]

    @property
    def shaped_params(self) -> list[str]:
        """The shape-generic parameters (``In[Tensor]`` or unannotated), shaped by each launch's arguments."""
        return list(self._shaped)

    def ir_for(self, args: Any) -> KernelIR:
        """The IR a launch with these arguments runs (the cached trace when the kernel has no Constexpr and no
        shape-generic parameter)."""
        self._forget_stale_traces()
        if self._no_constexpr:
            ir = self._cache.get(())
            return ir if ir is not None else self.trace()
        return self.trace(**{k: v for k, v in args.items() if k in self.signature
                             and (self.signature[k][0] is Direction.CONSTEXPR or k in self._shaped)})

    def _bind_shapes(self, given: dict[str, Any]) -> dict[str, TileType]:
        """The tile type of each shape-generic parameter from what binds it (a tensor view, a Value.tile(...) or a
        Tile[...] type); a PtortTypeError for one missing or not a 2-D tile."""
        bound: dict[str, TileType] = {}
        for n in self._shaped:
            spelled = self.signature[n][1].spelled
            what = f"kernel '{self.name}' parameter '{n}' ({spelled}: shaped by its argument)"
            if n not in given:
                raise PtortTypeError(f"{what} has no shape to trace with.",
                                     hint=f"Launch it in a @workload ({self.name}[t]({n}=X[t], ...)), or trace it at "
                                          f"a shape: {self.name}.trace({n}=Tile[64, 64, DType.F32]) or "
                                          f"{self.name}({n}=Value.tile(64, 64, DType.F32), ...).")
            bound[n] = _tile_of(what, given[n])
        return bound

    def trace(self, *positional: Any, **constexprs: Any) -> KernelIR:
        """Run the body once on symbolic values and return the recorded KernelIR (cached per constexpr values and
        per shape of the shape-generic parameters, which take a tensor view, a ``Value.tile(...)`` or a
        ``Tile[...]`` here)."""
        if positional:  # which parameter a value is for is not for the order of the signature to decide
            named = [*self.constexpr_params, *self._shaped]
            raise PtortTypeError(
                f"{self.name}.trace() takes its values by name, got {len(positional)} positional "
                f"({', '.join(repr(a) for a in positional)}).",
                hint=f"Name them: {self.name}.trace({', '.join(f'{n}=...' for n in named)})." if named else
                     f"Call {self.name}.trace() with no arguments: kernel '{self.name}' has no Constexpr or "
                     "shape-generic parameters.")
        self._forget_stale_traces()
        shapes = {k: constexprs.pop(k) for k in self._shaped if k in constexprs}
        bound = self._bind_shapes(shapes) if self._shaped else {}
        values = {}
        for n in self.constexpr_params:
            if n in constexprs:
                values[n] = constexprs[n]
            elif n in self.defaults:
                values[n] = self.defaults[n]
            else:
                raise PtortTypeError(f"kernel '{self.name}' needs a value for Constexpr parameter '{n}'.",
                                     hint=f"Give it a default in the signature or pass {n}=... at launch.")
        unknown = set(constexprs) - set(self.constexpr_params)
        if unknown:
            shaped = f"; its shape-generic parameters are {list(self._shaped)}" if self._shaped else ""
            raise PtortTypeError(f"kernel '{self.name}' has no Constexpr parameter(s) {sorted(unknown)}.",
                                 hint=f"Its Constexpr parameters are {self.constexpr_params or 'none'}{shaped}.")
        key = tuple(sorted(values.items(), key=lambda kv: kv[0]))
        typed = tuple((n, _value_key(v)) for n, v in key)  # -0.0 is not 0.0, nor True 1, for a trace
        objects = self._object_reads
        if objects:  # a Constexpr object is keyed by what the body reads of it too, not only by its identity
            typed = (*typed, *((n, _object_state(v, objects[n])) for n, v in key if n in objects and not _plain(v)))
        cache_key: Any = (typed, tuple(bound.items())) if bound else typed
        try:
            return self._cache[cache_key]
        except (KeyError, TypeError):
            pass
        trace = KernelTrace(self.name)
        args: dict[str, Any] = {}
        for pname, (direction, typ) in self.signature.items():
            if direction is Direction.CONSTEXPR:
                args[pname] = values[pname]
                trace.params[pname] = KernelParam(pname, direction, typ, None)
            else:
                typ = bound.get(pname, typ)
                v = trace.new_value(typ, pname)
                trace.params[pname] = KernelParam(pname, direction, typ, v)
                args[pname] = v
        clear_refusal()
        try:
            with tracing(trace):
                returned = self.fn(**args)
        except Exception as e:  # noqa: BLE001 - the user's body: any error becomes one located ptort_lab error
            swallowed = recover_refusal(e)  # numpy turned a refusal (int(tile), ...) into its own error
            if swallowed is not None:
                raise swallowed from e
            placeholders = [n for n in self.constexpr_params if n not in constexprs and values[n] is None]
            if isinstance(e, PtortError) and placeholders and "(traced with " not in e.what:
                _add_note(e, f"Kernel '{self.name}' was traced with the default "
                             f"{', '.join(f'{n}=None' for n in placeholders)}.",
                          f"Pass {', '.join(f'{n}=...' for n in placeholders)} at the launch.")
            traced_with = {**dict(key), **{n: str(t) for n, t in bound.items()}}
            raise_user_error(e, f"the body of kernel '{self.name}' (traced with {traced_with})"
                             if traced_with else f"the body of kernel '{self.name}'", _missing_tl_op_hint(e))
        finally:
            clear_refusal()
        refuse_generator_result(returned, f"the body of kernel '{self.name}'", "record no ops and write no outputs",
                                "Write the body as a plain def that calls tl.* ops and tl.store (no yield, no async).")
        if returned is not None:
            raise PtortTypeError(f"kernel '{self.name}' returned {returned!r}; a kernel writes its results with "
                                 "tl.store and returns nothing (a returned tile would be lost).",
                                 hint="Declare an Out[Tile[...]] parameter and tl.store(out, value) into it.",
                                 where=trace.ops[-1].loc if trace.ops else None, locate=not trace.ops)
        _refuse_unwritten_outputs(self, trace, {**dict(key), **{n: str(t) for n, t in bound.items()}})
        ir = KernelIR(self.name, tuple(trace.params.values()), tuple(trace.ops), key)
        try:
            self._cache[cache_key] = ir
        except TypeError:
            pass
        return ir

    def __getitem__(self, axes: Any) -> KernelLaunch:
        return KernelLaunch(self, axes if isinstance(axes, tuple) else (axes,))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Inside a @workload or body: launch with no axes (arguments by name or by position); outside: trace
        with these Constexpr values, shaping the shape-generic parameters by their arguments (``Value.tile(...)``
        or a ``Tile[...]``). Tensors or arrays are refused outside: the call would run nothing on them."""
        _refuse_nested_call(self.name, f"{self.name}(...)")
        loc = user_location()
        kwargs = bind_positional(self, args, kwargs, loc)
        if in_builder():
            return launch_task(self, (), kwargs, loc)
        _refuse_data_outside_workload(self, kwargs, loc)
        for name, value in kwargs.items():
            _check_traced_argument(self, name, value)
        return self.trace(**{k: v for k, v in kwargs.items() if k in self.constexpr_params or k in self._shaped})

    def compile(self, *args: Any, **kwargs: Any) -> Any:
        """Refused, as at the reference's HEAD (a RuntimeError there too): a program is compiled from a workload,
        which says which tiles each launch reads and writes; ``k.trace()`` gives this kernel's IR."""
        raise DSLUsageError(f"Kernel.compile() is not supported: kernel '{self.name}' runs as tasks of a workload, "
                            "and the workload is what compiles (as at the reference's HEAD).",
                            hint=f"Launch it in a @workload and compile that: workload(...).compile(), e.g. "
                                 f"@workload def w(): {self.name}[t](...) inside a P(...) loop, then "
                                 f"w().compile().execute(). {self.name}.trace() gives the kernel's IR.")

    def __repr__(self) -> str:
        return f"<kernel {self.name}>"


class KernelLaunch:
    """``kernel[axes]``: call it with keyword arguments inside a @workload to create a task."""

    def __init__(self, kernel: Kernel, axes: tuple[Any, ...]) -> None:
        self.kernel, self.axes = kernel, axes
        self.loc: Any = None
        if in_builder():  # ``k[t]`` on its own launches nothing: refused at the next statement unless it is called
            self.loc = user_location()
            note_pending(self)

    def pending_error(self) -> DSLUsageError:
        name = self.kernel.name
        return DSLUsageError(f"{name}[...] is not called: it names a launch of kernel '{name}' but launches nothing "
                             "until it is called with its arguments.",
                             hint=f"Call it: {name}[...]({', '.join(f'{p}=...' for p in self.kernel.signature)}).",
                             where=self.loc, locate=False)

    @property
    def kernel_ref(self) -> Kernel:
        """The kernel being launched (the reference's name for ``.kernel``)."""
        return self.kernel

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Launch the kernel bound to these axes (a task of the workload being built); arguments by name, or by
        position in the kernel's parameter order (``attn[b, h](q, k, v, o)``)."""
        _refuse_nested_call(self.kernel.name, f"{self.kernel.name}[...](...)")
        forget_pending(self)
        loc = user_location()
        kwargs = bind_positional(self.kernel, args, kwargs, loc)
        if not in_builder():
            raise DSLUsageError(
                f"Axis-bound kernel call must be inside @workload ({self.kernel.name}[...](...) was called outside "
                "one).", hint="Put the launch in a @workload function or a process body (for_each/consume lambda).")
        return launch_task(self.kernel, self.axes, kwargs, loc)


_NOT_PLAIN = ("not a plain value",)  # a global that is absent, or not a plain value: not part of a trace's key
_PLAIN_TYPES = (bool, int, float, complex, str, type(None), np.number, np.bool_, enum.Enum)


def _add_note(e: PtortError, note: str, hint: str) -> None:
    """Add a sentence to ``e``'s message and its hint; it is raised on as it is (same type, same line)."""
    e.what = f"{e.what} {note}"
    e.hint = f"{e.hint} {hint}" if e.hint else hint
    e.args = (e._compose(),)


def _plain(value: Any) -> bool:
    """A value a trace may have baked in: a bool, int, float, complex, str, None, a numpy number, an enum member
    (``DType.F16``), or a tuple of them."""
    return isinstance(value, _PLAIN_TYPES) or (isinstance(value, tuple) and all(_plain(v) for v in value))


def _value_key(value: Any) -> Any:
    """``value`` as a cache key that tells apart values Python calls equal but a trace does not: 0.0 and -0.0 (which
    give 1/x different signs), True, 1 and 1.0 (a body may test the type); a nan matches itself."""
    if isinstance(value, (float, np.floating)):
        return type(value), float(value).hex()
    if isinstance(value, complex):
        return type(value), value.real.hex(), value.imag.hex()
    if isinstance(value, tuple):
        return type(value), tuple(_value_key(v) for v in value)
    if isinstance(value, frozenset):
        return type(value), frozenset(_value_key(v) for v in value)
    return type(value), value


# A value a trace may depend on: a global (the function's namespace and a name) or a closure cell (and its name),
# then attribute and constant-item steps from it (``CFG["scale"]``, ``config.EPS``, ``Cfg.scale``), as
# (is_attribute, name or key) pairs.
Dependency = tuple[Any, str, tuple[Step, ...]]
_MAX_HELPERS = 256  # helper functions scanned per kernel: a bound on the scan, far above what a body calls


def _read(dep: Dependency) -> Any:
    """What ``dep`` stands for now (``_NOT_PLAIN`` for a name not defined, or a step that cannot be followed)."""
    root, name, steps = dep
    if root.__class__ is dict:
        value = root.get(name, _NOT_PLAIN)
    else:
        try:
            value = root.cell_contents
        except ValueError:  # a closure variable not assigned yet
            value = _NOT_PLAIN
    for is_attribute, key in steps:
        if value is _NOT_PLAIN:
            break
        value = _attribute(value, key) if is_attribute else _item(value, key)
    return value


def _attribute(obj: Any, name: str) -> Any:
    """``obj.name`` as stored, read without running user code (no property, no __getattr__): a module's, a class's
    (through its bases) or an instance's own value, else its class's."""
    if isinstance(obj, ModuleType):
        return obj.__dict__.get(name, _NOT_PLAIN)
    if not isinstance(obj, type):
        try:
            own = object.__getattribute__(obj, "__dict__")
        except AttributeError:  # __slots__
            own = {}
        if name in own:
            return own[name]
        obj = type(obj)
    for klass in obj.__mro__:
        if name in klass.__dict__:
            return klass.__dict__[name]
    return _NOT_PLAIN


def _item(obj: Any, key: Any) -> Any:
    """``obj[key]`` of a dict, list or tuple (a constant key; without running a subclass's __getitem__)."""
    if isinstance(obj, dict):
        return dict.get(obj, key, _NOT_PLAIN)
    if isinstance(obj, (list, tuple)) and isinstance(key, int):
        try:
            return list.__getitem__(obj, key) if isinstance(obj, list) else tuple.__getitem__(obj, key)
        except IndexError:
            return _NOT_PLAIN
    return _NOT_PLAIN


def _function_of(value: Any) -> FunctionType | None:
    """The Python function ``value`` calls when it is a function, a method, or a staticmethod/classmethod."""
    if isinstance(value, (MethodType, staticmethod, classmethod)):
        value = value.__func__
    return value if isinstance(value, FunctionType) else None


def _dependency_key(value: Any) -> Any:
    """What of ``value`` a trace depends on: a plain value (as ``_value_key``) or a function (by identity, so a helper
    defined again traces the body again); any other object (a module, a tensor, a list) is left out."""
    if _plain(value):
        return _value_key(value)
    fn = _function_of(value)
    if fn is not None and isinstance(value, MethodType):  # a bound method: its instance too (Scaler(3.0).apply is not
        # Scaler(2.0).apply; the old one stays alive in _deps_read, so its id is not reused meanwhile)
        return ("method", fn, id(value.__self__))
    return ("function", fn) if fn is not None else _NOT_PLAIN


def _user_module(module: ModuleType) -> bool:
    filename = getattr(module, "__file__", None)
    return module.__name__ == "__main__" if not isinstance(filename, str) else is_user_file(filename)


def _followed(value: Any, step: Step) -> bool:
    """Whether a dependency goes on through ``value`` by ``step``: into the user's own modules, classes and
    instances, and into dicts, lists and tuples."""
    if value is _NOT_PLAIN:
        return False
    if not step[0]:
        return isinstance(value, (dict, list, tuple))
    if isinstance(value, ModuleType):
        return _user_module(value)
    klass = value if isinstance(value, type) else type(value)
    module = sys.modules.get(str(getattr(klass, "__module__", "")))
    return module is not None and _user_module(module)


def _param_reads(fn: Callable[..., Any], names: list[str]) -> dict[str, tuple[tuple[Step, ...], ...]]:
    """The attribute and constant-item chains the body reads from each parameter of ``names`` (``cfg.scale``,
    ``cfg.sizes[0]``), in its own code or in a function nested in it that uses the parameter."""
    f = _function_of(fn)
    reads: dict[str, dict[tuple[Step, ...], None]] = {n: {} for n in names}
    if f is None:
        return {}
    for code in code_objects(f.__code__):
        for kind, name, steps in read_chains(code):
            if name in reads and steps and (kind == "free" or code is f.__code__):
                reads[name][tuple(steps)] = None
    return {n: tuple(chains) for n, chains in reads.items() if chains}


def _object_state(value: Any, reads: tuple[tuple[Step, ...], ...]) -> tuple[Any, ...]:
    """What a trace read from a Constexpr object: the plain value (or function) at the end of each chain of
    ``reads`` as ``_dependency_key`` keys it, followed into the user's instances and classes, dicts, lists and
    tuples as a global's chains are (so ``cfg.s = 5.0`` after a launch with ``cfg`` traces the body again)."""
    state = []
    for steps in reads:
        got = value
        for step in steps:
            if not _followed(got, step):
                break
            got = _attribute(got, step[1]) if step[0] else _item(got, step[1])
        state.append(_dependency_key(got))
    return tuple(state)


def _dependencies(fn: Callable[..., Any]) -> tuple[Dependency, ...]:
    """The values a trace of ``fn`` may bake in: the globals and closure variables it reads, the constant items and
    attributes it reads from them, and the same for the user's helper functions it reaches that way (transitively;
    ptort_lab's, Python's and installed packages' functions are not scanned)."""
    deps: dict[tuple[int, str, tuple[Step, ...]], Dependency] = {}
    first = _function_of(fn)
    queue: list[FunctionType] = [first] if first is not None else []
    scanned: set[int] = set()
    while queue and len(scanned) < _MAX_HELPERS:
        f = queue.pop()
        if id(f) in scanned:
            continue
        scanned.add(id(f))
        cells = dict(zip(f.__code__.co_freevars, f.__closure__ or ()))
        for code in code_objects(f.__code__):
            for kind, name, steps in read_chains(code):
                if kind == "local":
                    continue
                root: Any = f.__globals__ if kind == "global" else cells.get(name)
                if root is None:  # a variable of the function itself, shared with a function nested in it
                    continue
                path: tuple[Step, ...] = ()
                while True:  # the read itself, and each step of it that can be followed
                    deps.setdefault((id(root), name, path), (root, name, path))
                    value = _read((root, name, path))
                    helper = _function_of(value)
                    if helper is not None and id(helper) not in scanned and \
                            is_user_file(helper.__code__.co_filename):
                        queue.append(helper)
                    if len(path) == len(steps) or not _followed(value, steps[len(path)]):
                        break
                    path = (*path, steps[len(path)])
    return tuple(deps.values())


def _refuse_data_outside_workload(kernel: Kernel, kwargs: dict[str, Any], loc: SourceLocation | None) -> None:
    """``k(src=X[0], dst=Y[0])`` outside a @workload would only trace the kernel: it computes nothing and writes no
    tensor, which looks like a run that left the output as it was."""
    data = [n for n, v in kwargs.items() if n in kernel.signature
            and kernel.signature[n][0] is not Direction.CONSTEXPR
            and isinstance(v, (Tensor, TensorView, np.ndarray))]
    if not data:
        return
    name = kernel.name
    given = ", ".join(f"{n}={_data_text(kwargs[n])}" for n in data)
    spelled = f"{name}({', '.join(f'{p}=...' for p in kernel.signature)})"
    raise DSLUsageError(
        f"{name}(...) outside a @workload only traces the kernel: it computes nothing and writes no tensor, so the "
        f"data given ({given}) would not be used.",
        hint=f"To run it, launch it in a @workload (@workload def w(): {spelled}) and call w().compile().execute(); "
             f"to see its IR only, call {name}.trace().",
        where=loc, locate=loc is None)


def _data_text(value: Any) -> str:
    """How the refusal above names a tensor, view or array."""
    if isinstance(value, np.ndarray):
        return f"an ndarray of shape {tuple(value.shape)}"
    return repr(value)


def _tile_of(what: str, value: Any) -> TileType:
    """The 2-D tile type ``value`` gives a shape-generic parameter (``what`` names it in errors)."""
    if isinstance(value, TileType):
        return value
    if isinstance(value, Value) and isinstance(value.type, TileType):
        return value.type
    if isinstance(value, Tensor):
        value = TensorView(value, ())
    if isinstance(value, TensorView):
        shape = tuple(value.shape)
        if len(shape) != 2:
            raise PtortTypeError(f"{what} gets {value!r} of shape {shape}; a kernel parameter is a 2-D tile.",
                                 hint="Index the tensor down to one tile (X[t] for a [n, rows, cols] tensor), or "
                                      "reshape it to 2-D.")
        return TileType(shape[0], shape[1], value.dtype)
    raise PtortTypeError(f"{what} gets {type(value).__name__} {value!r}; it is shaped by a tensor view, a "
                         "Value.tile(...) or a Tile[...].",
                         hint="Pass X[t] at a launch, or Value.tile(rows, cols, dtype) / Tile[rows, cols, dtype] to "
                              "trace it; annotate it Scalar[...] if it is a number.")


def _check_traced_argument(kernel: Kernel, name: str, value: Any) -> None:
    """A Value given to an annotated tile parameter when tracing by a call must have its annotated type."""
    if name not in kernel.signature:
        import difflib  # an error path only: not loaded by `import ptort_lab`
        close = difflib.get_close_matches(name, list(kernel.signature), n=1)
        raise PtortTypeError(f"kernel '{kernel.name}' has no parameter '{name}'.",
                             hint=(f"Did you mean '{close[0]}'? " if close else "")
                             + f"Its parameters are {', '.join(kernel.signature)}.")
    typ = kernel.signature[name][1]
    if isinstance(value, Value) and isinstance(typ, (TileType, ScalarType)) and value.type != typ \
            and (value.shape, value.dtype) != (typ.shape, typ.dtype):
        raise PtortTypeError(f"kernel '{kernel.name}' parameter '{name}' is {typ}, but it was called with "
                             f"{value.type}.", hint=f"Pass a value of its annotated type ({typ}), or annotate it "
                                                    "In[Tensor] to shape it by its argument.")


Window = tuple[int, int, int, int]  # rows r0:r1, cols c0:c1 of a tile


def _stored_windows(trace: KernelTrace) -> dict[str, list[tuple[Window, SourceLocation | None]]]:
    """The windows of each tile parameter the body stores into (the whole tile, or a slice of a slice ... of it),
    with the line of each store."""
    slices: dict[int, tuple[Value, int, int]] = {}  # a slice's value -> (what it slices, its first row and column)
    stored: dict[str, list[tuple[Window, SourceLocation | None]]] = {}
    for op in trace.ops:
        if op.kind is OpKind.SLICE and op.result is not None and isinstance(op.operands[0], Value):
            slices[op.result.id] = (op.operands[0], op.attr("rows")[0], op.attr("cols")[0])
        if op.kind is not OpKind.STORE or not isinstance(op.operands[0], Value):
            continue
        dst = op.operands[0]
        target = trace.region_of(dst)
        if target is None:
            continue
        r, c, v = 0, 0, dst
        while trace.param_of(v) is None and v.id in slices:
            v, r0, c0 = slices[v.id]
            r, c = r + r0, c + c0
        rows, cols = dst.shape
        stored.setdefault(target.name, []).append(((r, r + rows, c, c + cols), op.loc))
    return stored


def _unwritten_part(shape: tuple[int, int], windows: list[Window]) -> tuple[Window, int] | None:
    """The bounding window of the elements of a ``shape`` tile that no window covers, and how many they are; None
    when the windows cover it all. Worked out on the grid the windows' edges cut the tile into (a few cells per
    store), never on an array the size of the tile (a [16384, 16384] tile would take 270 MB a pass)."""
    n_rows, n_cols = shape
    if any(w == (0, n_rows, 0, n_cols) for w in windows):
        return None
    clipped = [(min(max(r0, 0), n_rows), min(max(r1, 0), n_rows), min(max(c0, 0), n_cols), min(max(c1, 0), n_cols))
               for r0, r1, c0, c1 in windows]
    row_cuts = sorted({0, n_rows, *(w[0] for w in clipped), *(w[1] for w in clipped)})
    col_cuts = sorted({0, n_cols, *(w[2] for w in clipped), *(w[3] for w in clipped)})
    row_at = {v: i for i, v in enumerate(row_cuts)}
    col_at = {v: i for i, v in enumerate(col_cuts)}
    written = np.zeros((len(row_cuts) - 1, len(col_cuts) - 1), dtype=bool)
    for r0, r1, c0, c1 in clipped:
        written[row_at[r0]:row_at[r1], col_at[c0]:col_at[c1]] = True
    rows, cols = np.nonzero(~written)
    if not rows.size:
        return None
    first_row, last_row, first_col, last_col = int(rows.min()), int(rows.max()), int(cols.min()), int(cols.max())
    window = (row_cuts[first_row], row_cuts[last_row + 1], col_cuts[first_col], col_cuts[last_col + 1])
    count = sum((row_cuts[r + 1] - row_cuts[r]) * (col_cuts[c + 1] - col_cuts[c])  # (Python ints: no overflow)
                for r, c in zip(rows.tolist(), cols.tolist()))
    return window, count


def _window_text(name: str, window: Window, shape: tuple[int, int]) -> str:
    """``out[3:4, :]``: a window as Python slices it (``:`` for a whole dimension)."""
    r0, r1, c0, c1 = window
    rows = ":" if (r0, r1) == (0, shape[0]) else f"{r0}:{r1}"
    cols = ":" if (c0, c1) == (0, shape[1]) else f"{c0}:{c1}"
    return f"{name}[{rows}, {cols}]"


def _refuse_unwritten_outputs(kernel: Kernel, trace: KernelTrace, traced_with: dict[str, Any]) -> None:
    """An Out[...] tile the body never stores into keeps whatever its tensor held: a stale output, never what the
    kernel meant. So does the part of one that no store covers (an off-by-one slice): the stores into it, and into
    slices of it, must cover the whole tile. InOut[...] may stay as it is. A body that is only ``pass`` (or a
    docstring, or ``...``) is a stub, as the reference's own tests write kernels whose bodies do not matter: left
    be."""
    if is_stub(kernel.fn):
        return
    stored = _stored_windows(trace)
    outs = [p for p in trace.params.values() if p.direction is Direction.OUT and p.is_tile]
    unwritten = [p.name for p in outs if p.name not in stored]
    shown = f" (traced with {traced_with})" if traced_with else ""
    if not unwritten:
        _refuse_partly_written(kernel, outs, stored, shown)
        return
    names = ", ".join(f"'{n}'" for n in unwritten)
    first = unwritten[0]
    where = body_location(kernel.fn)
    several = len(unwritten) > 1
    raise PtortTypeError(
        f"kernel '{kernel.name}'{shown} never stores into its Out parameter{'s' if several else ''} {names}: "
        f"{'their tensors' if several else 'its tensor'} would keep the values {'they' if several else 'it'} held "
        "before the run.",
        hint=f"Store the result: tl.store({first}, value). A parameter the kernel only reads is In[...]; one it may "
             "leave as it is (written under some Constexpr values only) is InOut[...].",
        where=where, locate=where is None, context=f"kernel '{kernel.name}'")


def _refuse_partly_written(kernel: Kernel, outs: list[KernelParam], stored: dict[str, list[Any]], shown: str) -> None:
    """The first Out[...] tile whose stores leave part of it unwritten, refused at its first store."""
    for p in outs:
        shape = p.type.shape
        part = _unwritten_part(shape, [w for w, _ in stored[p.name]])
        if part is None:
            continue
        window, count = part
        r0, r1, c0, c1 = window
        exact = count == (r1 - r0) * (c1 - c0)
        gap = _window_text(p.name, window, shape)
        what = f"{gap} is never written" if exact else f"{count} element(s) within {gap} are never written"
        windows = [_window_text(p.name, w, shape) for w, _ in stored[p.name]]
        covered = ", ".join(windows[:4]) + (f" and {len(windows) - 4} more" if len(windows) > 4 else "")
        where = stored[p.name][0][1]
        raise PtortTypeError(
            f"kernel '{kernel.name}'{shown} stores into only part of its Out parameter '{p.name}' ({p.type}): {what} "
            f"(the stores cover {covered}), so that part would keep the values its tensor held before the run.",
            hint=(f"Store that part too (tl.store({gap}, ...)), " if exact else "Store those elements too, ")
            + "or fix the slice bounds; a parameter the kernel may leave partly as it is is InOut[...].",
            where=where, locate=where is None, context=f"kernel '{kernel.name}'")


_TL_MODULE = __name__.rpartition(".")[0] + ".tl"


def _missing_tl_op_hint(e: Exception) -> str:
    """For ``tl.sum(x)`` and the like (an op tl does not have): the tl ops that do it, else the closest names; ""
    for any other error."""
    name = getattr(e, "name", None)
    module = getattr(e, "obj", None)  # (tl by its name: the ops' module sits a layer above this one)
    if not isinstance(e, AttributeError) or not isinstance(module, ModuleType) or module.__name__ != _TL_MODULE \
            or not isinstance(name, str):
        return ""
    instead = NUMPY_TO_TL.get(name)
    if instead is not None and instead.partition(" ")[0] in TL_OPS:
        return f"tl has no '{name}': use tl.{instead} (help(tl) lists every op)."
    if name in NUMPY_ATTRIBUTES:  # (tl.reshape, tl.astype, ...: what a tile's numpy attribute would be)
        return f"tl has no '{name}': use {NUMPY_ATTRIBUTES[name]}."
    import difflib  # (an error path only)
    close = difflib.get_close_matches(name, sorted(TL_OPS), n=3)
    return f"tl has no '{name}'" + (f": did you mean {', '.join(f'tl.{c}' for c in close)}?" if close else
                                    " (help(tl) lists every op).")


def _refuse_method(name: str, fn: Any, sig: inspect.Signature) -> None:
    """``@kernel`` on a method (``def k(self, x: In[...], ...)`` in a class body): every launch would need a tile
    for ``self``; said at the definition instead of as a missing argument at the first launch."""
    first = next(iter(sig.parameters), None)
    owner, _, _ = str(getattr(fn, "__qualname__", "")).rpartition(".")
    if first not in ("self", "cls") or not owner or owner.endswith("<locals>"):
        return
    raise PtortTypeError(f"@kernel '{name}' decorates a method of class {owner} (its first parameter is '{first}'); "
                         "a kernel is a plain function whose parameters are all tiles, scalars or Constexprs.",
                         hint="Define the kernel outside the class, and pass what it reads from the instance as a "
                              "Constexpr (e.g. cfg: Constexpr[Settings]) or a Scalar[...] parameter.",
                         where=_parameter_location(fn, first), locate=False)


def _refuse_nested_call(name: str, spelled: str) -> None:
    """A kernel launched inside another kernel's body would record nothing in the outer kernel and write nothing."""
    outer = active_trace()
    if outer is None:
        return
    raise DSLUsageError(
        f"kernel '{name}' is called inside the body of kernel '{outer.kernel_name}' ({spelled}); a kernel cannot "
        "launch another kernel, so its ops would not be part of the outer kernel and its outputs never written.",
        hint=f"Inline its tl.* ops in '{outer.kernel_name}', or move them into a plain Python function (no @kernel) "
             "that takes tiles and calls tl.*, and call that from both kernels; launch kernels from a @workload.",
        context=f"kernel '{outer.kernel_name}'")


_RECORDED_OPTIONS = ("num_warps", "num_stages")  # the reference's Triton-style options: kept, no effect on an NPU
_CPP_OPTIONS = ("cpp_src", "cpp_body_path", "cpp_tu_path", "cpp_includes")


def _check_kernel_options(name: str, options: dict[str, Any]) -> None:
    cpp = sorted(set(options) & set(_CPP_OPTIONS))
    if cpp:
        raise PtortValueError(f"@kernel {name}: {', '.join(cpp)} (a C++ kernel body) cannot be simulated; ptort_lab "
                              "runs kernels written with tl.* ops.",
                              hint="Write the body with tl.* ops, or pin its cost with @kernel(cycles=N) and keep "
                                   "the Python body as the numerics.")
    unknown = sorted(set(options) - set(_RECORDED_OPTIONS))
    if unknown:
        import difflib  # an error path only: not loaded by `import ptort_lab`
        close = difflib.get_close_matches(unknown[0], ["cycles", "name", *_RECORDED_OPTIONS], n=1)
        raise PtortValueError(f"@kernel {name}: unknown option(s) {unknown}.",
                              hint=(f"Did you mean '{close[0]}'? " if close else "")
                              + "Options: cycles=N (pin the cost), name=, num_warps=, num_stages= (recorded).")


def kernel(fn: Callable[..., Any] | None = None, **options: Any) -> Any:
    """Decorate a tile function: ``@kernel`` or ``@kernel(cycles=100)`` (pin every launch to 100 cycles)."""
    scope = _user_locals()
    if fn is None:
        return lambda f: Kernel(f, scope=scope, **options)
    return Kernel(fn, scope=scope, **options)


jit_kernel = kernel

__all__ = ["Kernel", "KernelLaunch", "kernel", "jit_kernel"]
