"""Value types of the DSL: DType, Tile and Scalar types, Tensors and their views, and parameter directions."""
from __future__ import annotations

import enum
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import DSLUsageError, PtortTypeError, PtortValueError, user_location
from .expr import DEFAULT_VAR_NAMES, Expr, LoopVar, is_symbolic, refuse_placeholders


def is_integer(v: Any) -> bool:
    """An integer of any kind (a numpy integer from np.arange or a sweep grid counts as the int it holds), never a bool
    or a float such as 2.0."""
    return isinstance(v, numbers.Integral) and not isinstance(v, (bool, np.bool_))


class DType(enum.Enum):
    """Element types. ``str(DType.F16) == "F16"``; ``DType.F16.value == "f16"``."""

    F16 = "f16"
    BF16 = "bf16"
    F32 = "f32"
    F64 = "f64"
    I8 = "i8"
    I16 = "i16"
    I32 = "i32"
    I64 = "i64"
    U8 = "u8"
    U16 = "u16"
    U32 = "u32"
    U64 = "u64"

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"DType.{self.name}"

    @property
    def itemsize(self) -> int:
        return _ITEMSIZE[self]

    @property
    def is_float(self) -> bool:
        return self in (DType.F16, DType.BF16, DType.F32, DType.F64)

    @property
    def np_dtype(self) -> np.dtype[Any]:
        """The numpy dtype that holds these values (BF16 through ml_dtypes)."""
        dtype: np.dtype[Any] = np.dtype(_bfloat16() if self is DType.BF16 else _NUMPY_NAME[self])
        return dtype

    @property
    def finfo(self) -> Any:
        """numpy's finfo of a float DType (BF16's through ml_dtypes)."""
        if self is DType.BF16:
            import ml_dtypes
            return ml_dtypes.finfo(ml_dtypes.bfloat16)  # type: ignore[no-untyped-call]  # (no type hints)
        return np.finfo(self.np_dtype)

    @classmethod
    def from_numpy(cls, dtype: Any) -> DType:
        name = np.dtype(dtype).name
        for d, n in _NUMPY_NAME.items():
            if n == name:
                return d
        if name == "bfloat16":
            return cls.BF16
        raise PtortTypeError(f"numpy dtype {name} has no ptort_lab DType.",
                             hint="Use one of float16, bfloat16, float32, float64, int8..int64, uint8..uint64.")


def _bfloat16() -> Any:
    """ml_dtypes' bfloat16, imported when BF16 is first used (importing ml_dtypes takes most of a second)."""
    import ml_dtypes
    return ml_dtypes.bfloat16


_ITEMSIZE = {DType.F16: 2, DType.BF16: 2, DType.F32: 4, DType.F64: 8, DType.I8: 1, DType.I16: 2, DType.I32: 4,
             DType.I64: 8, DType.U8: 1, DType.U16: 2, DType.U32: 4, DType.U64: 8}
_NUMPY_NAME = {DType.F16: "float16", DType.F32: "float32", DType.F64: "float64", DType.I8: "int8",
               DType.I16: "int16", DType.I32: "int32", DType.I64: "int64", DType.U8: "uint8", DType.U16: "uint16",
               DType.U32: "uint32", DType.U64: "uint64"}


_FLOATS = (DType.F16, DType.BF16, DType.F32, DType.F64)
_SIGNED = (DType.I8, DType.I16, DType.I32, DType.I64)
_UNSIGNED = (DType.U8, DType.U16, DType.U32, DType.U64)


def wider_dtype(dtype: DType, value: Any = None) -> DType | None:
    """The narrowest dtype of ``dtype``'s kind wider than it that holds ``value`` (any value when None): a float for a
    float, a signed integer for a signed one or for a negative value, else an unsigned one; None when no such dtype
    exists (past I64, U64 and F64): a hint then says what else to do."""
    if dtype.is_float:
        wider: tuple[DType, ...] = tuple(d for d in _FLOATS if d.itemsize > dtype.itemsize)
        if value is None:
            return wider[0] if wider else None
        return next((d for d in wider if abs(value) <= float(d.finfo.max)), None)
    signed = dtype in _SIGNED or (value is not None and value < 0)
    kind = _SIGNED if signed else _UNSIGNED
    fits = [d for d in kind if value is None or _int_bounds(d)[0] <= value <= _int_bounds(d)[1]]
    # (a negative result of an unsigned op: the signed dtype of its size when none is wider, as for U64)
    return next((d for d in fits if d.itemsize > dtype.itemsize), None) or next(
        (d for d in fits if dtype in _UNSIGNED and signed and d.itemsize == dtype.itemsize), None)


def _int_bounds(dtype: DType) -> tuple[int, int]:
    info = np.iinfo(dtype.np_dtype)
    return int(info.min), int(info.max)


class Location(enum.Enum):
    """Memory level a tensor or tile lives in. A Tensor in ``UB``, ``L1`` or ``L0C`` is on-chip state (Ascend C's
    ``TBuf``): it stays in that buffer of each unit that uses it for the whole run (``Tensor.on_chip``)."""

    Global = "global"
    L2 = "l2"
    UB = "ub"
    L1 = "l1"
    L0C = "l0c"

    @property
    def on_chip(self) -> bool:
        """Whether a tensor here lives in a core's buffers (UB, L1, L0C) rather than in global memory."""
        return self in _ON_CHIP


_ON_CHIP = frozenset({Location.UB, Location.L1, Location.L0C})


@dataclass(frozen=True, slots=True)
class TileType:
    """A 2-D tile of ``rows x cols`` elements of ``dtype`` (``Tile[rows, cols, dtype]``)."""

    rows: int
    cols: int
    dtype: DType = DType.F16
    location: Location = Location.UB

    @property
    def shape(self) -> tuple[int, int]:
        return (self.rows, self.cols)

    @property
    def nbytes(self) -> int:
        return self.rows * self.cols * self.dtype.itemsize

    def __str__(self) -> str:
        return f"{self.dtype.value}[{self.rows},{self.cols}]"


@dataclass(frozen=True, slots=True)
class ScalarType:
    """A single value of ``dtype`` (``Scalar[dtype]``)."""

    dtype: DType = DType.F32

    shape = ()

    @property
    def nbytes(self) -> int:
        return self.dtype.itemsize

    def __str__(self) -> str:
        return f"{self.dtype.value}[]"


@dataclass(frozen=True, slots=True)
class LaunchShaped:
    """The type of a shape-generic kernel parameter (annotated ``In[Tensor]`` or not at all): each launch binds it to
    its argument's 2-D tile shape and dtype, and the kernel is traced once per distinct binding. ``spelled`` is how
    the parameter was written (``"In[Tensor]"``, ``"no annotation"``)."""

    spelled: str = "Tensor"

    def __str__(self) -> str:
        return "Tensor"


class Tile:
    """``Tile[rows, cols]`` or ``Tile[rows, cols, dtype]`` builds a TileType (default dtype F16)."""

    def __class_getitem__(cls, args: Any) -> TileType:
        args = args if isinstance(args, tuple) else (args,)
        if len(args) not in (2, 3):
            raise PtortTypeError(f"Tile expects 2-3 args, got {len(args)}: Tile[{', '.join(map(str, args))}].",
                                 hint="Write Tile[rows, cols] or Tile[rows, cols, DType.F32].")
        rows, cols = args[0], args[1]
        dtype = args[2] if len(args) == 3 else DType.F16
        for name, v in (("rows", rows), ("cols", cols)):
            if not isinstance(v, numbers.Integral) or isinstance(v, bool) or v <= 0:
                raise PtortTypeError(f"Tile {name} must be a positive int, got {type(v).__name__} {v!r}.",
                                     hint="Tile sizes are static: use whole numbers such as Tile[128, 128, F16].")
        if not isinstance(dtype, DType):
            raise PtortTypeError(f"Tile dtype must be a DType, got {dtype!r}.", hint="Use e.g. DType.F16.")
        return TileType(int(rows), int(cols), dtype)  # a numpy integer is the int it holds


class Scalar:
    """``Scalar[dtype]`` builds a ScalarType."""

    def __class_getitem__(cls, dtype: Any) -> ScalarType:
        if not isinstance(dtype, DType):
            raise PtortTypeError(f"Scalar dtype must be a DType, got {dtype!r}.", hint="Use e.g. Scalar[DType.F32].")
        return ScalarType(dtype)


class Direction(enum.Enum):
    IN = "In"
    OUT = "Out"
    INOUT = "InOut"
    CONSTEXPR = "Constexpr"


@dataclass(frozen=True, slots=True)
class ParamAnnotation:
    """A kernel parameter annotation such as ``In[Tile[64, 64, F32]]``."""

    direction: Direction
    type: Any

    # The reference's names for the two parts (its In[T] is a class with these attributes; its
    # extract_kernel_params reads them): "in" / "out" / "inout" / "constexpr", and T.
    @property
    def _direction(self) -> str:
        return self.direction.value.lower()

    @property
    def _inner_type(self) -> Any:
        return self.type

    def __repr__(self) -> str:
        return f"{self.direction.value}[{self.type}]"


class _DirectionMarker:
    _direction: Direction

    def __class_getitem__(cls, inner: Any) -> ParamAnnotation:
        return ParamAnnotation(cls._direction, inner)


class In(_DirectionMarker):
    """``In[Tile[...]]``: the kernel reads this parameter."""

    _direction = Direction.IN


class Out(_DirectionMarker):
    """``Out[Tile[...]]``: the kernel writes this parameter."""

    _direction = Direction.OUT


class InOut(_DirectionMarker):
    """``InOut[Tile[...]]``: the kernel reads and writes this parameter."""

    _direction = Direction.INOUT


class Constexpr(_DirectionMarker):
    """``Constexpr[int]``: a compile-time constant passed as a Python value."""

    _direction = Direction.CONSTEXPR


def _check_index(index: Any, size: int, what: str) -> None:
    if isinstance(index, bool) or not isinstance(index, (int, np.integer, Expr)):
        raise PtortTypeError(f"{what} index must be an int or a loop variable, got {index!r}.",
                             hint="Index tensors with ints or loop variables from P(...)/for_each.")
    if not is_symbolic(index) and not -size <= int(index) < size:
        raise PtortValueError(f"{what} index {index} is out of bounds for a leading dimension of {size}.",
                              hint=f"Use an index in 0..{size - 1}.")


def _check_shape(shape: Any) -> tuple[int, ...]:
    """``shape`` as a tuple of Python ints >= 1; a bare int, a float, a bool or a string is refused, not truncated."""
    if isinstance(shape, np.ndarray) and shape.ndim == 1:
        shape = shape.tolist()
    if not isinstance(shape, (tuple, list)):
        bare_int = isinstance(shape, (int, np.integer)) and not isinstance(shape, bool)
        example = f"({shape},)" if bare_int else "(4, 64, 64)"
        raise PtortTypeError(f"Tensor shape must be a tuple of ints, got {type(shape).__name__} {shape!r}.",
                             hint=f"Write shape={example}: one int per dimension, leading (tile-index) dimension "
                                  "first.")
    for k, s in enumerate(shape):
        if isinstance(s, bool) or not isinstance(s, (int, np.integer)):
            raise PtortTypeError(f"Tensor shape={tuple(shape)!r}: dimension {k} is {type(s).__name__} {s!r}, "
                                 "not an int.",
                                 hint="Every dimension must be a whole number >= 1 (e.g. shape=(8, 64, 64)); "
                                      "convert computed sizes with int(...) only when they are exact.")
    out = tuple(int(s) for s in shape)
    if any(s <= 0 for s in out):
        raise PtortValueError(f"Tensor shape must be positive, got {out}.", hint="Every dimension needs >= 1.")
    return out


# The modelled Ascend 910B carries 64 GB of HBM (910B1-B3; the 910B4 has 32 GB), so no tensor of a program for it
# can be bigger: a larger one is a shape mistake, and numpy would try (and fail) to allocate it on the host.
_HBM_BYTES = 64 * 2**30


def _format_bytes(n: int) -> str:
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{n} B"


_SAME_MEMORY = "a plain ndarray view of the same memory, so results still land in your array"


def _check_data(data: np.ndarray) -> None:
    """Refuse arrays whose values ptort_lab would read or write wrongly, each with its own reason and fix (a
    generic dtype message would name the same dtype twice for a byte-swapped array)."""
    kind = type(data)
    if kind is not np.ndarray and kind is not np.memmap:  # memmap: writes reach its file, as wanted
        if isinstance(data, np.ma.MaskedArray):
            raise PtortTypeError("Tensor data is a numpy masked array: ptort_lab computes on every element and would "
                                 "ignore its mask.",
                                 hint="Pass data.filled(value) (masked elements set to a value you choose), or "
                                      "data.data if the mask does not matter.")
        if isinstance(data, np.matrix):
            raise PtortTypeError("Tensor data is a numpy.matrix, which stays 2-D when indexed (m[0] is 1 x N), so "
                                 "tile indexing would pick the wrong elements.",
                                 hint=f"Pass np.asarray(data) ({_SAME_MEMORY}).")
        raise PtortTypeError(f"Tensor data is a {kind.__module__}.{kind.__qualname__}, a numpy.ndarray subclass "
                             "whose indexing may differ from ndarray's.",
                             hint=f"Pass np.asarray(data) ({_SAME_MEMORY}).")
    dt = data.dtype
    if dt.names is not None:
        raise PtortTypeError(f"Tensor data has the structured dtype {dt} (fields {', '.join(map(repr, dt.names))}); "
                             "a tensor holds one number per element.",
                             hint=f"Pass one field, e.g. data[{dt.names[0]!r}] (a view: results land in your "
                                  "array), or build a plain numeric array.")
    if dt.hasobject:
        raise PtortTypeError("Tensor data holds Python objects (numpy dtype object), not numbers.",
                             hint="Convert it first, e.g. np.asarray(data, dtype=np.float32).")
    if not dt.isnative:
        native = dt.newbyteorder("=")
        order = "big" if dt.byteorder == ">" else "little"
        raise PtortTypeError(
            f"Tensor data is {order}-endian ({dt.str!r}); ptort_lab computes in this machine's byte order "
            f"({native.str!r}) and never converts silently.",
            hint=f"Pass data.astype({native.str!r}) (same values in native order; keep that array to read results "
                 "from it).")
    if dt.name != "bfloat16" and dt.name not in _NUMPY_NAME.values():
        fixes = {"b": "data.astype(np.uint8)", "c": "data.real and data.imag as two tensors"}
        raise PtortTypeError(f"Tensor data has numpy dtype {dt.name}, which ptort_lab has no DType for.",
                             hint=f"Use {fixes.get(dt.kind, 'a numeric array')} (DTypes: float16, bfloat16, "
                                  "float32, float64, int8..int64, uint8..uint64).")


# Past this many elements a layout the quick stride test cannot clear is refused without listing its addresses
# (only as_strided makes such layouts; listing 16M element offsets takes about a second and 128 MB).
_EXACT_OVERLAP_ELEMENTS = 2**24


def _overlaps_itself(data: np.ndarray) -> bool:
    """Whether two elements of ``data`` share memory (a zero stride on a dimension of size > 1, or an as_strided
    layout whose rows interleave), so the tasks writing them would overwrite each other."""
    dims = sorted((abs(st), n) for st, n in zip(data.strides, data.shape) if n > 1)
    if data.size <= 1 or not dims:
        return False
    if dims[0][0] == 0:
        return True
    # Quick test (every strided numpy view passes it): each dimension, taken by increasing stride, steps past all
    # the bytes the smaller ones span.
    span = data.itemsize
    for stride, n in dims:
        if stride < span:
            break
        span = stride * (n - 1) + span
    else:
        return False
    if data.size > _EXACT_OVERLAP_ELEMENTS:
        return True
    offsets = np.zeros((), np.int64)
    for stride, n in dims:
        offsets = np.add.outer(offsets, np.arange(n, dtype=np.int64) * stride)
    starts = np.sort(offsets, axis=None)
    return bool(np.any(np.diff(starts) < data.itemsize))


def _check_writable_layout(data: np.ndarray) -> None:
    """Refuse a writable array whose elements share memory: every task would store into the same bytes and the last
    writer would win without a word. (A read-only one, e.g. np.broadcast_to, is a fine input: nothing writes it.)"""
    if not data.flags.writeable or not _overlaps_itself(data):
        return
    zero = [k for k, (st, n) in enumerate(zip(data.strides, data.shape)) if st == 0 and n > 1]
    how = (f"dimension {zero[0]} has stride 0, so all its {data.shape[zero[0]]} entries are one piece of memory"
           if zero else f"its strides {data.strides} make some elements share memory")
    raise PtortValueError(
        f"Tensor data of shape {data.shape} overlaps itself ({how}), and it is writable: tasks storing into "
        "different tiles would overwrite each other, the last writer winning silently.",
        hint="Give every element its own memory: pass np.ascontiguousarray(data) (a copy: read the results from "
             "tensor.data) or allocate the output with np.zeros(shape); if the array is only read, make it "
             "read-only (np.broadcast_to(...) or as_strided(..., writeable=False)).")


# -- layouts (distribution facet): R = replicated, S(i) = sharded over mesh axis i. A type refinement only, as in
# the reference: no run reads them. (typecheck joins them; they live here because a Tensor's default layout is one.)
@dataclass(frozen=True)
class TensorReplicate:
    """A tensor dimension held whole by every device (``R`` in a ``TensorLayout``)."""

    def __repr__(self) -> str:
        return "R"


@dataclass(frozen=True)
class TensorShard:
    """A tensor dimension split over mesh axis ``mesh_axis`` (``S(i)`` in a ``TensorLayout``)."""

    mesh_axis: int

    def __repr__(self) -> str:
        return f"S({self.mesh_axis})"


@dataclass(frozen=True)
class TensorLayout:
    """Per-dimension distribution, e.g. ``TensorLayout((R, S(0)))``, and optionally the memory facet ``mem`` (a
    ``MemLayout``, from ``ptort_lab.dsl.mem_layout``)."""

    dist: tuple[Any, ...]
    mem: Any = None

    def __post_init__(self) -> None:
        if self.mem is not None and not callable(getattr(self.mem, "compose", None)):  # (MemLayout is a layer up)
            raise PtortTypeError(f"TensorLayout mem must be a MemLayout, got {type(self.mem).__name__} {self.mem!r}.",
                                 hint="Write mem=MemLayout.row_major(shape) or MemLayout(strides=(8, 1)) "
                                      "(from ptort_lab.dsl.mem_layout), or leave it out.")

    @staticmethod
    def default(rank: int) -> TensorLayout:
        return TensorLayout(tuple(TensorReplicate() for _ in range(rank)))

    @staticmethod
    def sharded(dim: int, rank: int, mesh_axis: int = 0) -> TensorLayout:
        return TensorLayout(tuple(TensorShard(mesh_axis) if d == dim else TensorReplicate() for d in range(rank)))

    def is_replicated(self) -> bool:
        return all(isinstance(d, TensorReplicate) for d in self.dist)

    def sharded_dims(self) -> list[int]:
        return [i for i, d in enumerate(self.dist) if isinstance(d, TensorShard)]

    def __repr__(self) -> str:
        mem = f", mem={self.mem!r}" if self.mem is not None else ""
        return f"TensorLayout({', '.join(map(repr, self.dist))}{mem})"


class Tensor:
    """A global-memory tensor: ``Tensor(data=array, shape=(n, r, c), dtype=DType.F32)``.

    ``data`` may be None (the simulator allocates zeros). ``X[t]`` drops the leading dimension and gives a view;
    ``X[t, i]`` drops two. Views stay symbolic while ``t`` is a loop variable.

    ``location=Location.UB | L1 | L0C`` makes on-chip state instead (Ascend C's ``TBuf``): each (core, unit) whose
    tasks use the tensor keeps its own copy in that buffer for the whole run, starting from ``data`` (else zeros);
    loads of it are free, stores into it are on-chip moves, and ``data`` is never written (read a run's copies with
    ``program.on_chip(tensor)``).
    """

    def __init__(self, data: Any = None, shape: tuple[int, ...] | None = None, dtype: DType | None = None,
                 location: Location = Location.Global, layout: Any = None, name: str | None = None) -> None:
        if data is not None and not isinstance(data, np.ndarray):
            raise PtortTypeError(f"Tensor data must be a numpy.ndarray, got {type(data).__name__}.",
                                 hint="Wrap it: Tensor(data=np.asarray(x), ...).")
        if data is not None:
            _check_data(data)
            if not (isinstance(location, Location) and location.on_chip):  # (on-chip: data is never written)
                _check_writable_layout(data)
        if shape is None:
            if data is None:
                raise PtortTypeError("Tensor needs a shape or data.", hint="Pass shape=(n, rows, cols).")
            shape = tuple(data.shape)
        shape = _check_shape(shape)
        if dtype is None:
            dtype = DType.from_numpy(data.dtype) if data is not None else DType.F32
        if not isinstance(dtype, DType):
            raise PtortTypeError(f"Tensor dtype must be a DType, got {dtype!r}.", hint="Use e.g. DType.F32.")
        if not isinstance(location, Location):
            raise PtortTypeError(f"Tensor location must be a Location, got {type(location).__name__} {location!r}.",
                                 hint="Use Location.Global (the default: global memory), or Location.UB / L1 / L0C "
                                      "for a tensor that stays on chip.")
        if data is not None:
            if tuple(data.shape) != shape:
                raise PtortTypeError(f"Tensor data has shape {tuple(data.shape)} but shape={shape}.",
                                     hint="Make them agree (reshape the array or fix shape=).")
            if data.dtype != dtype.np_dtype:
                raise PtortTypeError(
                    f"Tensor data has numpy dtype {data.dtype.name} but dtype={dtype}.",
                    hint=f"Pass data.astype({dtype.np_dtype.name!r}) or dtype=DType.{DType.from_numpy(data.dtype)}; "
                         "ptort_lab never converts silently, so results land in the array you passed.")
        # (_check_data ran first: the dtypes compared here are native numbers, so equal names mean equal dtypes.)
        self._data: np.ndarray[Any, Any] | None = data
        self._source: Tensor | None = None  # the tensor whose array this one shares (with_layout, relayout)
        self.shape = shape
        self.dtype = dtype
        self.location = location
        if layout is not None and not isinstance(layout, TensorLayout):
            raise PtortTypeError(f"Tensor layout must be a TensorLayout, got {type(layout).__name__} {layout!r}.",
                                 hint=f"Write layout=TensorLayout.sharded(0, {len(shape)}) or "
                                      f"TensorLayout((TensorShard(0), TensorReplicate(), ...)), one entry per "
                                      "dimension; leave it out for the replicated default.")
        # As in the reference, every dimension replicated unless a layout is given (a refinement no run reads).
        self.layout: TensorLayout = layout if layout is not None else TensorLayout.default(len(shape))
        refuse_placeholders(name, "Tensor(name=...)")
        self.name = name
        self.loc = user_location()  # where the user built it: named if allocating its values fails
        self.ring_of: Any = None  # the tile channel whose buffer slots this tensor stands for (Channel(tile=...))

    @property
    def data(self) -> np.ndarray[Any, Any] | None:
        """The tensor's values: the array it was given, or None until a run allocates its zeros (a tensor made by
        ``with_layout`` or ``relayout`` reads and sets those of the tensor it was made from: one array for both)."""
        return self._data if self._source is None else self._source.data

    @data.setter
    def data(self, data: Any) -> None:
        if self._source is not None:
            self._source.data = data
            return
        # Checked as the constructor checks it, here at the assignment: a program built on this tensor indexes it by
        # its shape, so an array of other shape or type would fail deep in the next run, far from this line.
        if data is not None:
            self._check_new_data(data)
        self._data = data

    def _check_new_data(self, data: Any) -> None:
        """Refuse an array assigned to ``data`` that the constructor would refuse for this tensor's shape and dtype."""
        np_name = self.dtype.np_dtype.name
        if not isinstance(data, np.ndarray):
            spelled = f"np.{np_name}" if hasattr(np, np_name) else f"ml_dtypes.{np_name}"  # (bfloat16)
            raise PtortTypeError(f"{self!r}.data must be a numpy.ndarray (or None), got {type(data).__name__}.",
                                 hint=f"Convert it: tensor.data = np.asarray(values, dtype={spelled}), of shape "
                                      f"{self.shape}.")
        _check_data(data)
        if not self.on_chip:  # (on-chip: data is never written)
            _check_writable_layout(data)
        if tuple(data.shape) != self.shape:
            raise PtortTypeError(f"{self!r}.data is given an array of shape {tuple(data.shape)}, but the tensor has "
                                 f"shape {self.shape}: workloads built on it index it by that shape.",
                                 hint=f"Assign an array of shape {self.shape} (or copy values in: tensor.data[...] = "
                                      "values), or make a new Tensor for data of another shape and build the "
                                      "workload with it.")
        if data.dtype != self.dtype.np_dtype:
            raise PtortTypeError(f"{self!r}.data is given an array of numpy dtype {data.dtype.name}, but the tensor "
                                 f"is {self.dtype}.",
                                 hint=f"Assign data.astype({np_name!r}); ptort_lab never converts silently, so "
                                      "results land in the array you assigned.")

    @property
    def on_chip(self) -> bool:
        """Whether this tensor is on-chip state (location UB, L1 or L0C): one copy per (core, unit) per run."""
        return self.location.on_chip

    def __getitem__(self, index: Any) -> TensorView:
        return TensorView(self, ())[index]

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def base(self) -> Tensor:
        """The tensor itself (a view's ``base`` is the tensor it indexes), as in the reference."""
        return self

    @property
    def index_exprs(self) -> tuple[Any, ...]:
        """No indices: a whole tensor (a view's are the indices applied to its base), as in the reference."""
        return ()

    def nbytes(self) -> int:
        """The bytes of its values; 0 for a 0-d tensor (shape ``()``), as the reference counts it."""
        if not self.shape:
            return 0
        n = self.dtype.itemsize
        for s in self.shape:
            n *= s
        return n

    def slice(self, start: int, stop: int) -> Tensor:
        """A new Tensor over rows ``start:stop`` of the leading dimension, sharing this tensor's array (allocated
        here, as zeros, when it has none yet)."""
        if not self.shape:
            raise PtortTypeError(f"{self!r}.slice({start!r}, {stop!r}): a 0-d tensor has no rows to slice.",
                                 hint="Slice a tensor with a leading dimension, e.g. shape=(n, rows, cols).")
        n = self.shape[0]
        if self.on_chip:
            raise PtortTypeError(f"{self!r}.slice({start!r}, {stop!r}): an on-chip tensor cannot be sliced into a new "
                                 "Tensor (each unit's copy belongs to the tensor itself).",
                                 hint="Index it instead (T[i] is one tile of it), or make a smaller on-chip tensor.")
        for what, v in (("start", start), ("stop", stop)):
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise PtortTypeError(f"{self!r}.slice({start!r}, {stop!r}): {what} must be an int, got "
                                     f"{type(v).__name__} {v!r}.",
                                     hint=f"Pass row numbers such as .slice(0, {n}).")
        start, stop = int(start), int(stop)
        if not 0 <= start < stop <= n:
            raise PtortValueError(
                f"{self!r}.slice({start}, {stop}) is out of range: its leading dimension has {n} rows (0..{n - 1}), "
                f"and a slice needs 0 <= start < stop <= {n}.",
                hint=f"Keep 0 <= start < stop <= {n} (.slice(0, {n}) takes every row), or make the tensor's "
                     "leading dimension bigger.")
        # The slice shares this tensor's array, so one without data gets its zeros now (np.zeros maps pages lazily:
        # no memory is touched until written); a slice with an array of its own would keep every write to itself.
        data = self.allocate()[start:stop]
        return Tensor(data, (stop - start,) + self.shape[1:], self.dtype, self.location, self.layout, self.name)

    def with_layout(self, layout: Any) -> Tensor:
        """This tensor under another layout, sharing its array (allocated for both when either first needs it)."""
        made = Tensor(None, self.shape, self.dtype, self.location, layout, self.name)
        made._source = self.storage
        return made

    @property
    def storage(self) -> Tensor:
        """The tensor that owns this one's array: itself, or the one ``with_layout`` / ``relayout`` made it from."""
        return self if self._source is None else self._source

    def allocate(self) -> np.ndarray[Any, Any]:
        """The backing array, allocating zeros on first use when ``data`` was None."""
        if self._source is not None:
            return self._source.allocate()
        if self.data is None:
            nbytes = self.nbytes()
            what = (f"Tensor {self.name + ' ' if self.name else ''}{self.dtype.value}{list(self.shape)} needs "
                    f"{nbytes:,} bytes ({_format_bytes(nbytes)}) to hold its values")
            hint = ("Use a smaller shape, or run timing-only with compute_values=False "
                    "(e.g. w.compile(compute_values=False)), which never allocates tensor data.")
            if nbytes > _HBM_BYTES:
                raise PtortValueError(f"{what}, more than the modelled 910B's {_format_bytes(_HBM_BYTES)} of HBM.",
                                      hint=hint, where=self.loc, locate=self.loc is None)
            try:
                self.data = np.zeros(self.shape, dtype=self.dtype.np_dtype)
            except MemoryError:
                raise PtortValueError(f"{what}, and this host could not allocate them.", hint=hint, where=self.loc,
                                      locate=self.loc is None) from None
        return self.data

    def __repr__(self) -> str:
        label = f"{self.name}: " if self.name else ""
        where = f" in {self.location.name}" if self.on_chip else ""
        return f"Tensor({label}{self.dtype.value}{list(self.shape)}{where})"


class UnboundItem(DSLUsageError):
    """``ch.item`` evaluated where no send or consume of its channel binds it (``TensorView.resolve`` locates it)."""


class ItemSlot(Expr):
    """The index of ``ch.item`` in its tile channel's buffer: the slot of the item being sent or consumed (item number
    % depth); that channel's send or consume binds the item number while it runs (under the key ``item_key(ch)``)."""

    __slots__ = ("channel",)

    def __init__(self, channel: Any) -> None:
        self.channel = channel

    def evaluate(self, bindings: Any) -> Any:
        try:
            return bindings[item_key(self.channel)] % self.channel.depth
        except KeyError:
            name = self.channel.name
            raise UnboundItem(
                f"{name}.item is used outside a send to or consume of channel '{name}': it stands for the buffer "
                "slot of the item that send or consume is handling, so elsewhere it has no slot.",
                hint=f"Use it in the task a send fills, send({name}, k[t](..., dst={name}.item)), or in the body of "
                     f"consume({name}, lambda t: k2[t](src={name}.item, ...)) (or of a join that takes '{name}').",
                locate=False) from None

    def __repr__(self) -> str:
        return f"{self.channel.name}.item"


def item_key(channel: Any) -> str:
    """The binding that holds the number of a tile channel's current item (0, 1, ...) while its send or consume
    runs (a task's ``bindings`` keep it: ``ch.item`` is slot number % depth of it)."""
    return f"{channel.name}.item"


class TensorView:
    """``tensor[i][j]...``: the base tensor plus leading indices (ints or loop expressions)."""

    __slots__ = ("base", "index")

    def __init__(self, base: Tensor, index: tuple[Any, ...]) -> None:
        self.base = base
        self.index = index

    def __getitem__(self, index: Any) -> TensorView:
        items = index if isinstance(index, tuple) else (index,)
        if len(self.index) + len(items) > len(self.base.shape):
            raise PtortTypeError(
                f"Too many indices for tensor: {self.base!r} has {self.base.ndim} dimensions, "
                f"indexed with {len(self.index) + len(items)}.", hint="Drop an index, or index a bigger tensor.")
        for k, item in enumerate(items):
            _check_index(item, self.base.shape[len(self.index) + k], "Tensor")
        return TensorView(self.base, self.index + tuple(items))

    @property
    def shape(self) -> tuple[int, ...]:
        return self.base.shape[len(self.index):]

    @property
    def index_exprs(self) -> tuple[Any, ...]:
        """The indices applied to ``base`` (the reference's name for ``index``)."""
        return self.index

    @property
    def layout(self) -> TensorLayout | None:
        """The base's layout without the indexed dimensions, as the reference's ``t[i].layout`` (None for a view
        of every dimension)."""
        layout, drop = self.base.layout, len(self.index)
        if len(layout.dist) > drop:
            return TensorLayout(tuple(layout.dist[drop:]), layout.mem)
        return TensorLayout.default(len(self.shape)) if self.shape else None

    @property
    def dtype(self) -> DType:
        return self.base.dtype

    @property
    def is_symbolic(self) -> bool:
        return any(is_symbolic(i) for i in self.index)

    def resolve(self, bindings: Any, where: Any = None) -> tuple[int, ...]:
        """Concrete index tuple under loop bindings, with a type and bounds check; ``where`` is the launch line."""
        out = []
        shape = self.base.shape
        for k, i in enumerate(self.index):
            try:
                v = i.evaluate(bindings) if isinstance(i, Expr) else i  # (``evaluate``, inline: once per task)
            except UnboundItem as e:  # ch.item outside its channel's send or consume: named at the launch line
                if where is None or e.where is not None:
                    raise
                raise UnboundItem(e.what, hint=e.hint, where=where, locate=False) from None
            except ZeroDivisionError:
                raise PtortValueError(f"index {i!r} of {self!r} divides by zero for {dict(bindings)}.",
                                      hint="Check the divisor of // or % in the index expression.", where=where,
                                      locate=where is None) from None
            # the usual case: a plain int (not a bool) in range, as is
            out.append(v if type(v) is int and 0 <= v < shape[k] else self._entry(k, v, bindings, where))
        return tuple(out)

    def at_entries(self, entries: tuple[Any, ...], bindings: Any, where: Any = None) -> TensorView:
        """This view at the index ``entries``: the values of its index under ``bindings``, evaluated already (by a
        written-out task factory, which must not evaluate them again: task_code), checked as ``resolve`` checks
        them."""
        shape = self.base.shape
        return TensorView(self.base, tuple(v if type(v) is int and 0 <= v < shape[k] else
                                           self._entry(k, v, bindings, where) for k, v in enumerate(entries)))

    def _entry(self, k: int, v: Any, bindings: Any, where: Any) -> int:
        """Index entry ``k``, of value ``v``, as the int it stands for (a literal -1 counts from the end), or the
        error saying why it cannot be one (not an int, negative, out of bounds)."""
        i, size = self.index[k], self.base.shape[k]
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise PtortTypeError(
                f"index {i!r} of {self!r} is {type(v).__name__} {v!r} for {dict(bindings)}; tensor indices are "
                "ints.", hint="Channels carry tile indices: send(ch, task(...), token=t) with an int t, or "
                              "index with a loop variable.", where=where, locate=where is None)
        # A literal -1 counts from the end, as in numpy; a loop expression going negative is a bug.
        if v < 0 and not isinstance(i, (int, np.integer)):
            raise PtortValueError(
                f"index {i!r} = {v} of {self!r} is negative for {dict(bindings)}.",
                hint="Guard the first iterations with P.when(t > 0) / cond(t > 0, ...), or index with a "
                     "non-negative expression.", where=where, locate=where is None)
        if not -size <= v < size:
            raise PtortValueError(
                f"index {i!r} = {v} is out of bounds for dimension {k} of {self.base!r} (size {size}).",
                hint=f"Keep the loop axis within 0..{size - 1}.{_default_name_note(i)}", where=where,
                locate=where is None)
        return int(v) % size

    def __repr__(self) -> str:
        ring = self.base.ring_of
        if ring is not None:  # a tile channel's item: ch.item, or one buffer slot of it once resolved
            slot = self.index[0] if self.index else None
            return f"{ring.name}.item" + ("" if slot is None or isinstance(slot, Expr) else f"[slot {slot}]")
        return f"{self.base!r}" + "".join(f"[{i!r}]" for i in self.index)


def _default_name_note(index: Any) -> str:
    """For an index that is a loop variable of a default name: that the message's ``b`` is the user's own ``t``."""
    if not isinstance(index, LoopVar) or index.name not in DEFAULT_VAR_NAMES:
        return ""
    return (f" ('{index.name}' is the name P(...) gives a loop variable, as in t.get('{index.name}'): your own name "
            "for it at the line above; P(..., names=[...]) makes messages use yours.)")


__all__ = ["is_integer", "DType", "Location", "TileType", "ScalarType", "LaunchShaped", "Tile", "Scalar", "Direction",
           "ParamAnnotation", "In", "Out", "InOut", "Constexpr", "TensorReplicate", "TensorShard", "TensorLayout",
           "Tensor", "TensorView", "ItemSlot", "UnboundItem", "item_key"]
