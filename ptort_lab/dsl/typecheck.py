"""Builder-time type checking: the error kinds a @workload collects, axis bounds, and layout joins."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import PtortTypeError, SourceLocation
from .types import TensorLayout, TensorReplicate, TensorShard  # (in types: a Tensor's default layout is one)


class TypeErrorKind(enum.Enum):
    """The kind of a type error a @workload collects (``TypeErrorInfo.kind``)."""

    ARITY_MISMATCH = "ARITY_MISMATCH"
    TYPE_MISMATCH = "TYPE_MISMATCH"
    LAYOUT_INCOMPATIBLE = "LAYOUT_INCOMPATIBLE"
    AXIS_OUT_OF_BOUNDS = "AXIS_OUT_OF_BOUNDS"
    MISSING_ARGUMENT = "MISSING_ARGUMENT"
    DIRECTION_VIOLATION = "DIRECTION_VIOLATION"
    SHAPE_MISMATCH = "SHAPE_MISMATCH"


@dataclass(frozen=True)
class TypeErrorInfo:
    """One collected type error: its kind, message, the user's line, what was expected and got, and a fix."""

    kind: TypeErrorKind
    message: str
    location: SourceLocation | None = None
    expected: str = ""
    got: str = ""
    hint: str = ""

    def short(self) -> str:
        at = f" (at {self.location})" if self.location else ""
        return f"{self.kind.value}: {self.message}{at}"

    def format(self) -> str:
        lines = [f"TypeError: {self.kind.value}"]
        if self.location:
            lines.append(f"  at {self.location}")
            if self.location.code:
                lines.append(f"    {self.location.code}")
        lines += ["", f"  {self.message}"]
        if self.expected or self.got:
            lines += ["", f"  Expected: {self.expected}", f"  Got: {self.got}"]
        if self.hint:
            lines += ["", f"  Hint: {self.hint}"]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.format()


@dataclass
class TypeCheckContext:
    """How a TypeChecker reports: raise at the first error (``fail_fast``) or collect them, for which workload and
    at which line."""

    fail_fast: bool = False
    workload_name: str = ""
    current_location: SourceLocation | None = None


@dataclass
class TypeChecker:
    """Collects TypeErrorInfo records; with ``ctx.fail_fast`` the first one raises."""

    ctx: TypeCheckContext = field(default_factory=TypeCheckContext)
    errors: list[TypeErrorInfo] = field(default_factory=list)

    def report(self, info: TypeErrorInfo) -> None:
        self.errors.append(info)
        if self.ctx.fail_fast:
            raise PtortTypeError(info.message, hint=info.hint, where=info.location, locate=info.location is None)

    def check_axis_bounds(self, axis: Any, index: Any) -> bool:
        size = getattr(axis, "size", None)
        if isinstance(index, int) and isinstance(size, int) and not 0 <= index < size:
            self.report(TypeErrorInfo(TypeErrorKind.AXIS_OUT_OF_BOUNDS,
                                      f"Index {index} is out of bounds for {axis!r} (size {size})",
                                      self.ctx.current_location, expected=f"0 <= index < {size}", got=str(index),
                                      hint=f"Use an index in 0..{size - 1}."))
            return False
        return True

    def check_kernel_call(self, kernel: Any, args: Any = (), kwargs: Any = None) -> bool:
        """Check a launch's arguments (positional ones bound in parameter order) against ``kernel``'s parameters,
        as a @workload does; each problem is reported here. True when the call fits (None leaves a parameter
        unbound: all None is an abstract launch)."""
        if not isinstance(args, (list, tuple)) or not isinstance(kwargs, (dict, type(None))):
            raise PtortTypeError(f"check_kernel_call(kernel, args, kwargs) takes a tuple and a dict, got "
                                 f"{type(args).__name__} and {type(kwargs).__name__}.",
                                 hint="Write checker.check_kernel_call(k, (), {'x': X[0], 'y': Y[0]}).")
        assert _CALL_CHECK, "ptort_lab.dsl.builder registers the launch checks when it is imported"
        before = len(self.errors)
        _CALL_CHECK[0](kernel, tuple(args), dict(kwargs or {}), self.ctx.current_location, self.report)
        return len(self.errors) == before

    def has_errors(self) -> bool:
        return bool(self.errors)


# The launch checks live in the builder, a layer above; it registers them here when it is imported.
_CALL_CHECK: list[Callable[..., Any]] = []


def register_call_check(check: Callable[..., Any]) -> None:
    """Builder: ``check(kernel, args, kwargs, loc, report)`` is what ``TypeChecker.check_kernel_call`` runs."""
    _CALL_CHECK[:] = [check]


def validate_axis_index(axis: Any, index: int) -> bool:
    """True when ``index`` is inside ``axis`` (the reference's ``assert validate_axis_index(axis, 3)``); raise a
    TypeError when it is outside."""
    return TypeChecker(TypeCheckContext(fail_fast=True)).check_axis_bounds(axis, index)


# -- layouts (distribution facet): R = replicated, S(i) = sharded over mesh axis i --------------------------------
class LayoutIncompatibleError(PtortTypeError):
    """Two layouts that cannot be joined (e.g. S(0) and S(1) on the same dimension)."""


def tensor_layout_join(a: TensorLayout, b: TensorLayout) -> TensorLayout:
    """R joins anything; S(i) joins S(i); S(i) with S(j) (i != j) or different ranks raise. The memory facets join
    by ``MemLayout.compose`` (``b``'s over ``a``'s)."""
    for which, layout in (("first", a), ("second", b)):
        if not isinstance(layout, TensorLayout):  # (a tensor, an int, None: it would fail on .dist)
            text = repr(layout).replace("\n", " ")
            text = text if len(text) <= 80 else text[:77] + "..."
            raise PtortTypeError(f"tensor_layout_join(a, b) joins two TensorLayouts; its {which} argument is "
                                 f"{type(layout).__name__} {text}.",
                                 hint="Pass the tensors' layouts, e.g. tensor_layout_join(x.layout, y.layout), or "
                                      "build one with TensorLayout.default(rank).")
    if len(a.dist) != len(b.dist):
        raise LayoutIncompatibleError(f"Layout rank mismatch: {len(a.dist)} vs {len(b.dist)}.",
                                      hint="Join layouts of tensors with the same rank.")
    out = []
    for i, (x, y) in enumerate(zip(a.dist, b.dist)):
        if isinstance(x, TensorReplicate):
            out.append(y)
        elif isinstance(y, TensorReplicate) or x == y:
            out.append(x)
        else:
            raise LayoutIncompatibleError(f"Incompatible sharding at dim {i}: {x!r} vs {y!r}.",
                                          hint="Relayout one tensor so both shard the same mesh axis.")
    # The memory facets as the reference joins them: either one, or b's composed over a's (MemLayout.compose).
    mem = b.mem if a.mem is None else a.mem if b.mem is None else a.mem.compose(b.mem)
    return TensorLayout(tuple(out), mem)


__all__ = ["TypeErrorKind", "TypeErrorInfo", "TypeCheckContext", "TypeChecker", "validate_axis_index",
           "LayoutIncompatibleError", "TensorReplicate", "TensorShard", "TensorLayout", "tensor_layout_join"]
