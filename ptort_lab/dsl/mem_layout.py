"""The memory facet of a layout (MemLayout) and the layout transitions (relayout and the collectives): type-level."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import PtortTypeError, PtortValueError
from .typecheck import LayoutIncompatibleError
from .types import Tensor, TensorLayout, TensorReplicate, TensorShard

REDUCE_OPS = ("sum", "max", "min", "mean")  # the reduction ops the reference's collectives name


def _ints(value: Any, what: str, hint: str) -> tuple[int, ...]:
    """``value`` (a tuple or list of ints) as a tuple of Python ints; anything else is refused."""
    if isinstance(value, np.ndarray) and value.ndim == 1:
        value = value.tolist()
    if not isinstance(value, (tuple, list)) or any(isinstance(v, bool) or not isinstance(v, (int, np.integer))
                                                   for v in value):
        raise PtortTypeError(f"{what} must be a tuple of ints, got {type(value).__name__} {value!r}.", hint=hint)
    return tuple(int(v) for v in value)


def _check_perm(perm: tuple[int, ...], rank: int, what: str) -> None:
    """Refuse ``perm`` unless it holds each of ``0..rank-1`` exactly once."""
    if sorted(perm) != list(range(rank)):
        raise PtortValueError(f"{what} {perm} is not a permutation of the {rank} dimensions 0..{rank - 1}.",
                              hint=f"Name each dimension once, e.g. {tuple(reversed(range(rank)))}.")


def _shape(shape: Any, what: str) -> tuple[int, ...]:
    """A layout's shape: a tuple of ints >= 1."""
    out = _ints(shape, f"{what} shape", "Pass one int per dimension, e.g. (4, 8).")
    if any(s <= 0 for s in out):
        raise PtortValueError(f"{what} shape must be positive, got {out}.", hint="Every dimension needs >= 1.")
    return out


def _order_of(strides: tuple[int, ...]) -> tuple[int, ...]:
    """The dimensions from the slowest-varying (largest stride) to the fastest, ties in dimension order."""
    return tuple(sorted(range(len(strides)), key=lambda d: -abs(strides[d])))


@dataclass(frozen=True)
class MemLayout:
    """Where each element sits in memory: ``strides`` per dimension (in elements), ``order`` the dimensions from
    slowest- to fastest-varying, and an optional ``swizzle`` and ``pack``. A type refinement only: no run reads it."""

    strides: tuple[int, ...] | None = None
    order: tuple[int, ...] | None = None
    swizzle: Any = None
    pack: Any = None

    def __post_init__(self) -> None:
        if self.strides is not None:
            object.__setattr__(self, "strides", _ints(self.strides, "MemLayout strides",
                                                      "Pass one stride per dimension, e.g. strides=(8, 1)."))
        if self.order is not None:
            order = _ints(self.order, "MemLayout order", "List the dimensions slowest first, e.g. order=(0, 1).")
            _check_perm(order, len(self.strides) if self.strides is not None else len(order), "MemLayout order")
            object.__setattr__(self, "order", order)
        for name in ("swizzle", "pack"):  # (a layout is a key: the layouts of a join and of a cache are hashed)
            value = getattr(self, name)
            try:
                hash(value)
            except TypeError:
                raise PtortTypeError(f"MemLayout {name} must be hashable (a name, a number or a tuple), got "
                                     f"{type(value).__name__} {value!r}.",
                                     hint=f"Write it as a tuple or a string, e.g. {name}=('xor', 4)." if name ==
                                     "swizzle" else f"Write it as a tuple or a string, e.g. {name}=(16, 16).") from None

    @staticmethod
    def row_major(shape: tuple[int, ...]) -> MemLayout:
        """C-contiguous: the last dimension is contiguous (``row_major((4, 8))`` has strides ``(8, 1)``)."""
        shape = _shape(shape, "MemLayout.row_major")
        strides = [1] * len(shape)
        for d in range(len(shape) - 2, -1, -1):
            strides[d] = strides[d + 1] * shape[d + 1]
        return MemLayout(tuple(strides), tuple(range(len(shape))))

    @staticmethod
    def col_major(shape: tuple[int, ...]) -> MemLayout:
        """Fortran-contiguous: the first dimension is contiguous (``col_major((4, 8))`` has strides ``(1, 4)``)."""
        shape = _shape(shape, "MemLayout.col_major")
        strides = [1] * len(shape)
        for d in range(1, len(shape)):
            strides[d] = strides[d - 1] * shape[d - 1]
        return MemLayout(tuple(strides), tuple(reversed(range(len(shape)))))

    def permute(self, perm: tuple[int, ...]) -> MemLayout:
        """The layout of the permuted tensor: its dimension ``k`` is this layout's dimension ``perm[k]``."""
        if self.strides is None:
            return self  # (no strides to permute, as in the reference)
        perm = _ints(perm, "MemLayout.permute perm", f"Pass a permutation of {tuple(range(len(self.strides)))}.")
        _check_perm(perm, len(self.strides), "MemLayout.permute perm")
        new_dim = {old: new for new, old in enumerate(perm)}
        order = None if self.order is None else tuple(new_dim[d] for d in self.order)
        return MemLayout(tuple(self.strides[d] for d in perm), order, self.swizzle, self.pack)

    def compose(self, other: MemLayout) -> MemLayout:
        """This layout with ``other``'s facets laid over it: each of strides, order, swizzle and pack that ``other``
        sets wins (how the reference joins the memory facets of two tensors' layouts)."""
        if not isinstance(other, MemLayout):
            raise PtortTypeError(f"MemLayout.compose needs a MemLayout, got {type(other).__name__} {other!r}.",
                                 hint="Compose with e.g. MemLayout(swizzle='XOR') or MemLayout.row_major(shape).")
        strides = other.strides if other.strides is not None else self.strides
        order = other.order if other.order is not None else self.order
        if order is not None and strides is not None and len(order) != len(strides):
            order = _order_of(strides)  # (other's strides with this layout's order of another rank)
        return MemLayout(strides, order, other.swizzle if other.swizzle is not None else self.swizzle,
                         other.pack if other.pack is not None else self.pack)

    def tile(self, tile_shape: tuple[int, ...]) -> MemLayout:
        """The layout divided into tiles: rank ``2n``, the tile indices' strides (``stride * tile``) then the
        within-tile strides (this layout's), ``order`` again slowest first."""
        if self.strides is None:
            raise PtortValueError("MemLayout.tile needs strides: this layout has none.",
                                  hint="Tile a layout with strides, e.g. MemLayout.row_major(shape).tile((16, 16)).")
        n = len(self.strides)
        tile_shape = _shape(tile_shape, "MemLayout.tile")
        if len(tile_shape) != n:
            raise PtortValueError(f"MemLayout.tile({tile_shape}) has {len(tile_shape)} dimensions, but the layout has "
                                  f"{n}.", hint="Give one tile size per dimension.")
        strides = tuple(s * t for s, t in zip(self.strides, tile_shape)) + self.strides
        return MemLayout(strides, _order_of(strides), self.swizzle, self.pack)

    def __repr__(self) -> str:
        # The reference's repr: the facets that are set (it leaves pack out; here it shows when set).
        parts = [f"{k}={v}" for k, v in (("strides", self.strides), ("order", self.order), ("swizzle", self.swizzle),
                                         ("pack", self.pack)) if v]
        return f"MemLayout({', '.join(parts)})"


def _tensor(t: Any, what: str) -> Tensor:
    if not isinstance(t, Tensor):
        raise PtortTypeError(f"{what} needs a Tensor, got {type(t).__name__} {t!r}.",
                             hint="Pass a whole Tensor (not an indexed view X[t]); index the result instead.")
    if t.on_chip:
        raise PtortTypeError(f"{what}: {t!r} is on-chip state, which cannot be re-laid out into a new Tensor (each "
                             "unit's copy belongs to the tensor itself).",
                             hint="Give the on-chip tensor its layout where it is made: Tensor(..., layout=...).")
    return t


def _dim(t: Tensor, dim: Any, what: str) -> int:
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise PtortTypeError(f"{what}: dim must be an int, got {type(dim).__name__} {dim!r}.",
                             hint=f"Pass a dimension of the tensor, 0..{t.ndim - 1}.")
    if not 0 <= dim < t.ndim:
        raise PtortValueError(f"{what}: dim {dim} is out of range for {t!r}, which has {t.ndim} dimensions.",
                              hint=f"Pass a dimension 0..{t.ndim - 1}.")
    return int(dim)


def _mesh_axis(mesh_axis: Any, what: str) -> int:
    if isinstance(mesh_axis, bool) or not isinstance(mesh_axis, (int, np.integer)) or mesh_axis < 0:
        raise PtortTypeError(f"{what}: mesh_axis must be an int >= 0, got {type(mesh_axis).__name__} {mesh_axis!r}.",
                             hint="Name the mesh axis by number, e.g. mesh_axis=0.")
    return int(mesh_axis)


def _op(op: Any, what: str) -> str:
    if not isinstance(op, str) or op not in REDUCE_OPS:
        raise PtortValueError(f"{what}: op {op!r} is not a reduction this layout knows.",
                              hint=f"Use one of {', '.join(map(repr, REDUCE_OPS))}.")
    return str(op)


def _with_dist(t: Tensor, dist: list[Any]) -> Tensor:
    return relayout(t, TensorLayout(tuple(dist), t.layout.mem))


def relayout(t: Tensor, to: TensorLayout) -> Tensor:
    """A new Tensor with layout ``to``, sharing ``t``'s array (``Tensor.with_layout``: allocated for both when either
    first needs it): a change of type, no data movement."""
    t = _tensor(t, "relayout")
    if not isinstance(to, TensorLayout):
        raise PtortTypeError(f"relayout: the target layout must be a TensorLayout, got {type(to).__name__} {to!r}.",
                             hint=f"Write e.g. relayout(t, TensorLayout.sharded(0, {t.ndim})).")
    if len(to.dist) != t.ndim:
        raise LayoutIncompatibleError(f"relayout: {to!r} has {len(to.dist)} dimensions but {t!r} has {t.ndim}.",
                                      hint="Give the layout one entry (R or S(i)) per dimension of the tensor.")
    bad = next((d for d in to.dist if not isinstance(d, (TensorReplicate, TensorShard))), None)
    if bad is not None:
        raise PtortTypeError(f"relayout: {to!r} has {bad!r} among its dimensions; each is R (TensorReplicate()) or "
                             "S(i) (TensorShard(i)).",
                             hint=f"Write e.g. relayout(t, TensorLayout.sharded(0, {t.ndim})).")
    strides = to.mem.strides if isinstance(to.mem, MemLayout) else None
    if strides is not None and len(strides) != t.ndim:
        raise LayoutIncompatibleError(f"relayout: the memory layout {to.mem!r} has {len(strides)} strides but {t!r} "
                                      f"has {t.ndim} dimensions.",
                                      hint=f"Give one stride per dimension, e.g. MemLayout.row_major({t.shape}).")
    return t.with_layout(to)  # (one array for both, allocated when either first needs it)


def allreduce(t: Tensor, mesh_axis: int, op: str = "sum") -> Tensor:
    """``t`` reduced over mesh axis ``mesh_axis``: every dimension sharded on it (``S(mesh_axis)``) becomes
    replicated (``R``); the others keep theirs."""
    t, axis = _tensor(t, "allreduce"), _mesh_axis(mesh_axis, "allreduce")
    _op(op, "allreduce")
    return _with_dist(t, [TensorReplicate() if d == TensorShard(axis) else d for d in t.layout.dist])


def allgather(t: Tensor, dim: int, mesh_axis: int) -> Tensor:
    """``t`` with dimension ``dim``, sharded over mesh axis ``mesh_axis`` (or already whole), gathered: replicated."""
    t = _tensor(t, "allgather")
    dim, axis = _dim(t, dim, "allgather"), _mesh_axis(mesh_axis, "allgather")
    d = t.layout.dist[dim]
    if isinstance(d, TensorShard) and d.mesh_axis != axis:
        raise LayoutIncompatibleError(f"allgather: dim {dim} of {t!r} is sharded over mesh axis {d.mesh_axis} "
                                      f"({d!r}), not {axis}.", hint=f"Gather it with mesh_axis={d.mesh_axis}.")
    return _with_dist(t, [TensorReplicate() if k == dim else e for k, e in enumerate(t.layout.dist)])


def reduce_scatter(t: Tensor, dim: int, mesh_axis: int, op: str = "sum") -> Tensor:
    """``t`` reduced over mesh axis ``mesh_axis`` and scattered along dimension ``dim``: that dimension becomes
    ``S(mesh_axis)``."""
    t = _tensor(t, "reduce_scatter")
    dim, axis = _dim(t, dim, "reduce_scatter"), _mesh_axis(mesh_axis, "reduce_scatter")
    _op(op, "reduce_scatter")
    d = t.layout.dist[dim]
    if isinstance(d, TensorShard) and d.mesh_axis != axis:
        raise LayoutIncompatibleError(f"reduce_scatter: dim {dim} of {t!r} is already sharded over mesh axis "
                                      f"{d.mesh_axis} ({d!r}); a dimension is split over one mesh axis.",
                                      hint=f"Gather it first: allgather(t, {dim}, {d.mesh_axis}).")
    return _with_dist(t, [TensorShard(axis) if k == dim else e for k, e in enumerate(t.layout.dist)])


__all__ = ["MemLayout", "relayout", "allreduce", "allgather", "reduce_scatter"]
