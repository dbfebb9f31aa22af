"""The reference's (PTO-WSP v9) public names, for porting: ``import ptort_lab.compat as pto_wsp`` or
``from ptort_lab.compat import *`` in place of ``import pto_wsp`` / ``from pto_wsp import *``.

Every public name of ``ptort_lab`` is here, plus the reference's other spellings of the same things (``Layout`` for
``TensorLayout``, ``KernelError`` for ``KernelExecutionError``, ...), its error classes (``CompileError``, ...) and
its type-checker functions (``check_kernel_call``, ``check_layouts_compatible``) and its memory layouts
(``MemLayout``, ``relayout``, ``allreduce``, ``allgather``, ``reduce_scatter``: ``dsl.mem_layout``), its tracing
switches (``TraceLevel``, ``Program.enable_tracing``) and its C++ bridge's names (``HAS_CPP_BINDINGS`` is False:
``ir_bridge``), and its run-time symbols: ``Symbol`` (a kernel's scalar argument read from
``program.set_symbol_f32/u64``) and the ``scalar_expr`` module (``symbol_u64``, ``t.tags[...]``, ``where``,
``cast_u64``, ... in dispatch keys and P.when conditions: ``dsl.scalar_expr``). Names ptort_lab does not provide
(``npu``, ``ptoisa``, ...) are not faked: using one fails at the import, where it is plain to see;
docs/howto/port_from_v9.md ("What is not provided") lists them and what to write instead.

The reference's submodules import as ``ptort_lab.compat.<name>`` (``from ptort_lab.compat.csp import Channel``):
``csp``, ``ir_bridge``, ``primitives``, ``workload``, ``types``, ``errors``, ``p_namespace``, ``schedule``,
``kernel``, ``builder``, ``type_checker``, ``program`` and ``scalar_expr``, each holding the names the reference's
module of that name exports (those ptort_lab provides). They also import under any name the compat module is bound to in
``sys.modules``, so a test set-up that aliases it (``sys.modules["pto_wsp"] = ptort_lab.compat``) runs ``from
pto_wsp.csp import ...`` as written. As in the reference, the attributes ``workload`` and ``kernel`` are the
decorators, not the submodules.
"""
from __future__ import annotations

import abc
import importlib.abc
import importlib.machinery
import sys
import types as _types
from collections.abc import Mapping, Sequence
from typing import Any

from . import *  # noqa: F403 - the whole public surface, under the same names as the reference's
from . import __all__ as _ptort_all
from . import csp as _csp
from . import errors as _errors
from . import ir_bridge as _ir_bridge
from .dsl import (
    Constexpr,
    In,
    InOut,
    LayoutIncompatibleError,
    Out,
    TensorLayout,
    TensorReplicate,
    TensorShard,
    TypeCheckContext,
    TypeChecker,
    TypeErrorInfo,
    tensor_layout_join,
)
from .dsl import scalar_expr as _scalar_expr
from .dsl.mem_layout import MemLayout, allgather, allreduce, reduce_scatter, relayout
from .dsl.scalar_expr import Symbol
from .errors import CompileError, IRConversionError, KernelExecutionError, PtortTypeError, ScheduleError, user_location
from .ir_bridge import (
    HAS_CPP_BINDINGS,
    IRBridgeError,
    cpp,
    module_to_string,
    parse_ir_string,
    workload_to_codegen_ir,
    workload_to_ir,
)
from .program import ExecutionTrace, TraceEvent, TraceLevel

# The reference's type_checker.py aliases of its layout types.
Layout = TensorLayout
LayoutShard = TensorShard
LayoutReplicate = TensorReplicate
layout_join = tensor_layout_join
LayoutCompatibilityError = LayoutIncompatibleError
# The reference's HEAD aliases of the distribution facets (its deprecated spatial.Shard/Replicate).
Shard = TensorShard
Replicate = TensorReplicate
# The reference's error raised by a failing kernel (a subclass of its ExecutionError, as here).
KernelError = KernelExecutionError


class DistElem(abc.ABC):  # noqa: B024 - no abstract method: it only names what the two facets are
    """The reference's base class of the distribution facets: ``isinstance(d, DistElem)`` holds for every
    ``TensorReplicate()`` (R) and ``TensorShard(i)`` (S(i)) of a ``TensorLayout``."""


DistElem.register(TensorReplicate)
DistElem.register(TensorShard)


def check_kernel_call(kernel: Any, axes: Sequence[Any] = (), args: Mapping[str, Any] | None = None,
                      fail_fast: bool = False) -> list[TypeErrorInfo]:
    """The type errors of launching ``kernel[axes](**args)``, checked as a ``@workload`` checks a launch
    (``TypeChecker.check_kernel_call``); empty when it fits. With ``fail_fast`` the first one raises a
    PtortTypeError instead. The reference's module function: ``axes`` are the launch's loop values, which take no
    part in the check (a kernel's parameters are its tiles and scalars)."""
    if isinstance(axes, (str, bytes)) or not isinstance(axes, Sequence):
        raise PtortTypeError(f"check_kernel_call(kernel, axes, args): axes must be a tuple of the launch's loop "
                             f"values, got {type(axes).__name__} {axes!r}.",
                             hint="Write check_kernel_call(k, (b,), {'x': X[b], 'y': Y[b]}), or () for none.")
    if args is not None and not isinstance(args, Mapping):
        raise PtortTypeError(f"check_kernel_call(kernel, axes, args): args must be a dict of the kernel's "
                             f"arguments by parameter name, got {type(args).__name__} {args!r}.",
                             hint="Write check_kernel_call(k, (), {'x': X[0], 'y': Y[0]}).")
    checker = TypeChecker(TypeCheckContext(fail_fast=bool(fail_fast), current_location=user_location()))
    checker.check_kernel_call(kernel, (), dict(args or {}))
    return list(checker.errors)


def check_layouts_compatible(*tensors: Any) -> TensorLayout | None:
    """The join of the tensors' layouts (``tensor_layout_join`` of each ``.layout`` in turn), or None when two of
    them cannot be joined (S(0) against S(1) on one dimension, or different ranks). A tensor without a layout is
    left out; with one layout that one is the answer, with none it is None. The reference's module function."""
    layouts = [layout for layout in (getattr(t, "layout", None) for t in tensors) if layout is not None]
    if not layouts:
        return None
    joined: TensorLayout = layouts[0]
    for layout in layouts[1:]:
        try:
            joined = tensor_layout_join(joined, layout)
        except LayoutIncompatibleError:
            return None
    return joined


_MARKERS = (In, Out, InOut, Constexpr)


def get_direction(hint: Any) -> str:
    """The direction of a parameter annotation, as the reference spells it: ``"in"`` for ``In[...]`` (and for
    ``In`` or the string ``"In[...]"``), ``"out"``, ``"inout"``, ``"constexpr"``; ``"unknown"`` for anything else.
    The reference's builder function."""
    if isinstance(hint, str):
        return next((m.__name__.lower() for m in _MARKERS if hint.startswith(f"{m.__name__}[")), "unknown")
    if any(hint is m for m in _MARKERS):
        return str(hint.__name__).lower()
    if hasattr(hint, "direction") and hasattr(hint, "type"):  # In[T]: a ParamAnnotation(direction, type)
        return str(hint.direction.value).lower()
    return "unknown"


def get_inner_type(hint: Any) -> Any:
    """The type inside a parameter annotation (``Tile[64, 64, DType.F32]`` for ``In[Tile[64, 64, DType.F32]]``),
    else None. The reference's builder function."""
    if hasattr(hint, "direction") and hasattr(hint, "type"):
        return hint.type
    return None


__all__ = list(_ptort_all) + ["Layout", "LayoutShard", "LayoutReplicate", "layout_join", "LayoutCompatibilityError",
                              "Shard", "Replicate", "KernelError", "CompileError", "ScheduleError",
                              "IRConversionError", "DistElem", "check_kernel_call", "check_layouts_compatible",
                              "get_direction", "get_inner_type", "MemLayout", "relayout", "allreduce", "allgather",
                              "reduce_scatter", "TraceLevel", "TraceEvent", "ExecutionTrace", "HAS_CPP_BINDINGS", "cpp",
                              "IRBridgeError", "workload_to_ir", "workload_to_codegen_ir", "module_to_string",
                              "parse_ir_string", "Symbol"]


# -- the reference's submodules -------------------------------------------------------------------------------------
# name -> (what the reference's module holds, the names of it ptort_lab provides). csp is ptort_lab.csp itself.
_SUBMODULE_NAMES: dict[str, tuple[str, tuple[str, ...]]] = {
    "primitives": ("the functional workload primitives", (
        "parallel_for", "for_each", "select", "cond", "task", "combine", "sequential", "empty", "slot_set_u64",
        "slot_load_u64")),
    "workload": ("the workload tree, its tasks and its schedule", ("Workload", "Task", "Schedule")),
    "types": ("axes, tensors and layouts", (
        "Dense", "DenseDyn", "Ragged", "Sparse", "DType", "Location", "Tensor", "TensorLayout", "TensorShard",
        "TensorReplicate", "DistElem", "LayoutIncompatibleError", "tensor_layout_join", "MemLayout", "relayout",
        "allreduce", "allgather", "reduce_scatter", "Symbol")),
    "errors": ("the error classes", tuple(dict.fromkeys(list(_errors.__all__) + ["KernelError"]))),
    "p_namespace": ("the P loops", ("P", "LoopVar")),
    "schedule": ("the schedule policies", (
        "DispatchPolicy", "TimingPolicy", "WindowMode", "TaskWindow", "DepsMode", "Deps", "ReadyPolicy",
        "StartPolicy", "TracePolicy", "Pools", "TaskGraphConfig")),
    "kernel": ("kernel tracing and the Kernel IR", (
        "pto", "tl", "Value", "Op", "OpKind", "KernelIR", "KernelParam", "TileType", "ScalarType", "Tile",
        "Scalar")),
    "builder": ("the @workload and @kernel decorators", (
        "workload", "kernel", "Kernel", "KernelRef", "In", "Out", "InOut", "Constexpr", "KernelParam",
        "get_direction", "get_inner_type")),
    "type_checker": ("the builder-time type checker", (
        "TypeChecker", "TypeCheckContext", "TypeErrorInfo", "TypeErrorKind", "Layout", "Shard", "Replicate",
        "DistElem", "layout_join", "LayoutCompatibilityError", "check_kernel_call", "check_layouts_compatible",
        "validate_axis_index")),
    "program": ("the compiled program", ("Program", "ProgramStats", "TraceLevel", "TraceEvent", "ExecutionTrace")),
}


def _namespace(name: str, what: str, names: tuple[str, ...]) -> _types.ModuleType:
    """A module ``ptort_lab.compat.<name>`` holding ``names`` (the compat module's, or the error module's)."""
    module = _types.ModuleType(f"{__name__}.{name}", f"The reference's ``pto_wsp.{name}`` ({what}), as ptort_lab "
                                                     "provides it: see ptort_lab.compat.")
    here = globals()
    for n in names:
        setattr(module, n, here[n] if n in here else getattr(_errors, n))
    setattr(module, "__all__", list(names))  # noqa: B010 - (a module type declares no __all__)
    module.__spec__ = importlib.machinery.ModuleSpec(module.__name__, None)  # its own name, under an alias too
    return module


def _scalar_expr_module() -> _types.ModuleType:
    """``ptort_lab.compat.scalar_expr``: the reference's ``pto_wsp.scalar_expr``, with ``Expr`` its ScalarExpr."""
    names = ("ScalarExpr", "as_expr", "symbol_u64", "slot_u64", "slot_i64", "slot_bool", "axis", "task_param",
             "TaskExpr", "trace_task_fn", "to_cpp", "fnv1a_64", "Symbol")
    module = _types.ModuleType(f"{__name__}.scalar_expr", "The reference's ``pto_wsp.scalar_expr`` (its scalar "
                                                          "expressions), as ptort_lab provides it: "
                                                          "ptort_lab.dsl.scalar_expr, ``Expr`` being its ScalarExpr.")
    for n in names:
        setattr(module, n, getattr(_scalar_expr, n))
    setattr(module, "Expr", _scalar_expr.ScalarExpr)  # noqa: B010 - (the reference's name)
    setattr(module, "__all__", ["Expr", *names])  # noqa: B010 - (a module type declares no __all__)
    module.__spec__ = importlib.machinery.ModuleSpec(module.__name__, None)
    return module


_SUBMODULES: dict[str, _types.ModuleType] = {"csp": _csp, "ir_bridge": _ir_bridge,
                                             "scalar_expr": _scalar_expr_module()}
_SUBMODULES.update((name, _namespace(name, *spec)) for name, spec in _SUBMODULE_NAMES.items())
_DECORATORS = ("workload", "kernel")  # attributes that stay the decorators, as in the reference
for _name, _module in _SUBMODULES.items():
    sys.modules.setdefault(f"{__name__}.{_name}", _module)
    if _name not in _DECORATORS:
        globals()[_name] = _module
__path__: list[str] = []  # a package to the import system, so that ``import <its name>.csp`` asks _Submodules


class _CompatModule(_types.ModuleType):
    """This module's type: the import system binds a submodule it loads (``pto_wsp.workload`` under an alias) as
    an attribute of its parent, which would hide the ``workload`` and ``kernel`` decorators; those two stay."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name in _DECORATORS and value is _SUBMODULES[name]:
            return
        super().__setattr__(name, value)


_THIS = sys.modules[__name__]
_THIS.__class__ = _CompatModule


class _Submodules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds ``X.csp`` (and the other submodules) for any ``X`` that ``sys.modules`` binds to this compat module:
    ``sys.modules["pto_wsp"] = ptort_lab.compat`` then runs ``from pto_wsp.csp import Channel`` unchanged. It
    answers for nothing else, so it changes no other import."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        parent, _, child = fullname.rpartition(".")
        if child not in _SUBMODULES or sys.modules.get(parent) is not _THIS:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> _types.ModuleType:
        return _SUBMODULES[spec.name.rpartition(".")[2]]

    def exec_module(self, module: _types.ModuleType) -> None:
        """Nothing to run: the module is already filled."""


if not any(type(f).__name__ == "_Submodules" and type(f).__module__ == __name__ for f in sys.meta_path):
    sys.meta_path.append(_Submodules())
