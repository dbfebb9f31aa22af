"""Iteration axes: Dense[n]() (static), DenseDyn(n) (sized at run time), Ragged and Sparse (CSR)."""
from __future__ import annotations

import contextvars
from collections.abc import Iterable
from typing import Any, Iterator, Mapping, Sequence

import numpy as np

from ..errors import PtortTypeError, PtortValueError, SourceLocation, user_location
from .expr import Expr, evaluate


def _describe_bindings(bindings: Any) -> str:
    try:
        items = dict(bindings).items()
    except (TypeError, ValueError):
        return f"bindings {bindings!r}"
    return ", ".join(f"{k} = {v}" for k, v in items) or "no loop variables bound"


def _expr_text(e: Any) -> str:
    """``b - 2`` rather than ``(b - 2)``, for messages that put the expression in parentheses themselves."""
    text = repr(e)
    return text[1:-1] if text.startswith("(") and text.endswith(")") else text


# Listing visits every point of every loop, about a microsecond each before any task is made: past this many a
# workload takes minutes to list (tasks have their own, lower limit: MAX_TASKS in steps.py).
MAX_ITERATIONS = 20_000_000


# Per-run sizes of static axes (id(axis) -> size): execute(steady_state=True) runs the workload's tile loops at a few
# small sizes (sim/steady_state.py). It sets this only around those runs, in its own context, so the axes themselves
# never change and a run of the same workload in another thread lists them at their built size.
run_sizes: contextvars.ContextVar[Mapping[int, int] | None] = contextvars.ContextVar("ptort_run_sizes", default=None)


def _run_size(axis: Any, built: Any) -> Any:
    """``axis``'s size in this run: its override in ``run_sizes`` if any, else ``built``."""
    sizes = run_sizes.get()
    if sizes is None:
        return built
    return sizes.get(id(axis), built)


# Per-run structures of Ragged and Sparse axes (id(axis) -> (outer, lengths) or (outer, indptr, indices)): a Program
# binds them with set_symbol_u64 / set_symbol_ptr (the reference's outer_<id>, lengths_<id>, ... symbols) and sets
# them around each run, in that run's context only, so the axes themselves never change and a run of the same
# workload in another thread (or workload.enumerate()) lists them as built.
run_structures: contextvars.ContextVar[Mapping[int, tuple[Any, ...]] | None] = contextvars.ContextVar(
    "ptort_run_structures", default=None)


def _run_structure(axis: Any, built: tuple[Any, ...]) -> tuple[Any, ...]:
    """``axis``'s structure in this run: the one bound in ``run_structures`` if any, else ``built``."""
    structures = run_structures.get()
    if structures is None:
        return built
    return structures.get(id(axis), built)


def _count_text(n: int) -> str:
    return f"{n:,}" if n < 10**15 else f"about 10**{len(str(n)) - 1}"


def _check_size(size: Any, what: str, unset_ok: bool = False) -> int:
    """``size`` as an int in 1..MAX_ITERATIONS (0 too with ``unset_ok``: a DenseDyn sized at run time)."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        raise PtortTypeError(f"{what} size must be an int, got {size!r}.", hint=f"Write {what}[8]() or similar.")
    if size == 0 and unset_ok:
        return 0
    if size <= 0:
        raise PtortValueError(f"{what} size must be positive, got {size}.",
                              hint="An axis with no iterations builds no tasks; use a size >= 1"
                              + (", or DenseDyn(0) for a size the program sets at run time "
                                 "(program.set_axis_sizes)." if unset_ok else "."))
    if size > MAX_ITERATIONS:
        raise PtortValueError(f"{what} size {_count_text(int(size))} is more than the {MAX_ITERATIONS:,} iterations a "
                              "workload may list: listing its points alone would run for minutes.",
                              hint="Use larger tiles (fewer, bigger iterations) or a smaller problem; the timing of "
                                   "a long run is periodic, a few thousand tiles show it.")
    return int(size)


def _int_list(values: Any, api: str, what: str, example: str) -> list[int]:
    """``values`` as a list of Python ints; None, a string, a float or a bool entry is refused, not truncated."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise PtortTypeError(f"{api}: {what} must be a list of ints, got {type(values).__name__} {values!r}.",
                             hint=f"Pass a list of whole numbers, e.g. {example}.")
    out = list(values)
    for i, n in enumerate(out):
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise PtortTypeError(f"{api}: {what}[{i}] is {type(n).__name__} {n!r}, not an int.",
                                 hint=f"Every entry must be a whole number, e.g. {example} (convert with int(...) "
                                      "only when the value is exact).")
    return [int(n) for n in out]


def _ragged_lengths(items: list[int], api: str) -> list[int]:
    """A Ragged's lengths checked: each >= 0, at most MAX_ITERATIONS items in all."""
    if any(n < 0 for n in items):
        raise PtortValueError(f"Ragged lengths must be >= 0, got {items}.", hint="Use 0 for an empty row.")
    total = sum(items)
    if total > MAX_ITERATIONS:
        raise PtortValueError(f"{api} holds {_count_text(total)} items, more than the {MAX_ITERATIONS:,} iterations a "
                              "workload may list.", hint="Use larger tiles (fewer items per row) or a smaller problem.")
    return items


def _outer_size(value: Any, api: str) -> int:
    """A Ragged's or Sparse's outer size set after it was built: an int in 1..MAX_ITERATIONS."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise PtortTypeError(f"{api}: the outer size must be an int, got {type(value).__name__}.",
                             hint="Set the number of rows as a whole number, e.g. r.outer_size = 2.")
    if not 1 <= value <= MAX_ITERATIONS:
        raise PtortValueError(f"{api}: the outer size must be in 1..{MAX_ITERATIONS:,}.",
                              hint="A Ragged or Sparse has at least one row; for no items give each row length 0 "
                                   "(or an indptr of zeros).")
    return int(value)


def _sparse_indptr(ptr: list[int]) -> list[int]:
    """A Sparse's indptr checked: from 0, never decreasing."""
    if not ptr or ptr[0] != 0 or any(b < a for a, b in zip(ptr, ptr[1:])):
        raise PtortValueError(f"Sparse indptr must start at 0 and never decrease, got {ptr}.",
                              hint="Build indptr as the running count of indices per row.")
    return ptr


def _call_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    """The arguments of a call as written: ``3, name='b'``."""
    return ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])


class Axis:
    """An iteration space. ``points(bindings)`` lists the index values (ints, or tuples for 2-D spaces)."""

    def points(self, bindings: Any) -> Sequence[Any]:  # pragma: no cover - each axis lists its own
        """The index values under the loop ``bindings`` of the enclosing loops."""
        raise NotImplementedError

    @property
    def rank(self) -> int:
        return 1


class Dense(Axis):
    """A static axis: ``Dense[8]()``; ``.size == 8``."""

    built_size: int = 0  # Dense[n] sets it on the class

    @property
    def size(self) -> int:
        size: int = _run_size(self, self.built_size)
        return size

    def points(self, bindings: Any) -> Sequence[Any]:
        """0 .. size - 1."""
        return range(self.size)

    def __class_getitem__(cls, size: Any) -> type[Dense]:
        n = _check_size(size, "Dense")
        return type(f"Dense[{n}]", (Dense,), {"built_size": n})

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        if type(self) is Dense:
            raise PtortTypeError(f"Dense needs a static size: write Dense[8](), not Dense({_call_args(args, kwargs)}).",
                                 hint="Use DenseDyn(n) for an axis whose size is a plain runtime value.")
        if args or kwargs:
            raise PtortTypeError(f"{type(self).__name__}() takes no arguments, got {type(self).__name__}"
                                 f"({_call_args(args, kwargs)}): the size goes in the brackets.",
                                 hint=f"Write {type(self).__name__}() (an axis of {self.size} iterations), "
                                      "Dense[n]() for another static size, or DenseDyn(n) for a size known only "
                                      "when the workload is built.")

    def __repr__(self) -> str:
        return f"Dense[{self.size}]()"


class DenseDyn(Axis):
    """An axis sized when the workload is built, ``DenseDyn(n)``, per iteration, ``DenseDyn(ragged.length(b))``,
    or at run time, ``DenseDyn(0)``.

    A size given as a loop expression may come out 0 for some iterations (an empty row of a Ragged): that
    iteration runs no inner loop. A negative size is an error. ``DenseDyn(0)`` (as in the reference) has no size
    until the program sets one, ``program.set_axis_sizes({"b": 4})`` by its loop variable's name; a run that lists
    it before then is refused, naming that call. ``program.set_axis_sizes`` resizes a ``DenseDyn(n)`` too.
    """

    def __init__(self, size: Any) -> None:
        self.loc: SourceLocation | None = None
        self.built_size: int | Expr
        if isinstance(size, Expr):
            self.built_size = size
            self.loc = user_location()  # named if the size comes out negative when the loop is enumerated
        else:
            self.built_size = _check_size(size, "DenseDyn", unset_ok=True)
            if self.built_size == 0:
                self.loc = user_location()  # named if a run lists it before its size is set

    @property
    def size(self) -> int | Expr:
        size: int | Expr = _run_size(self, self.built_size)
        return size

    def points(self, bindings: Any) -> Sequence[Any]:
        if not isinstance(self.size, Expr):
            if self.size == 0:  # DenseDyn(0) with no size set for this run (set sizes are >= 1)
                raise PtortValueError("DenseDyn(0) has no size: it is sized at run time, and no size was set for "
                                      "this run.",
                                      hint="Compile the workload and set the size by its loop variable's name before "
                                           "running: program.set_axis_sizes({'b': 4}) ('b' names the first P axis); "
                                           "or build the axis with its size, DenseDyn(4). (0 is the reference's "
                                           "'sized at run time', not an empty loop: a size that may come out 0 "
                                           "launches nothing under cond(n > 0, ...) or P.when(n > 0).)",
                                      where=self.loc, locate=self.loc is None)
            return range(self.size)
        n = evaluate(self.size, bindings)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise PtortTypeError(f"DenseDyn({_expr_text(self.size)}) size must be an int, got {type(n).__name__} {n!r} "
                                 f"with {_describe_bindings(bindings)}.",
                                 hint="Size the axis with an integer expression of loop variables (e.g. n - b) "
                                      "or ragged.length(b).", where=self.loc, locate=self.loc is None)
        if n < 0:
            raise PtortValueError(f"DenseDyn({_expr_text(self.size)}) size is {n} with {_describe_bindings(bindings)}; "
                                  "a loop cannot run a negative number of times.",
                                  hint="Keep the size expression >= 0 for every outer iteration (0 runs no inner "
                                       "iteration), e.g. guard it with cond(...) or shrink the outer axis.",
                                  where=self.loc, locate=self.loc is None)
        if n > MAX_ITERATIONS:
            raise PtortValueError(f"DenseDyn({_expr_text(self.size)}) size is {_count_text(int(n))} with "
                                  f"{_describe_bindings(bindings)}, more than the {MAX_ITERATIONS:,} iterations a "
                                  "workload may list.", hint="Keep the size expression small (larger tiles, fewer "
                                  "iterations).", where=self.loc, locate=self.loc is None)
        return range(int(n))

    def __repr__(self) -> str:
        return f"DenseDyn({self.size!r})"


class _Rows:
    """The row count of a Ragged or a Sparse, whose structure is ``built`` (outer size first) unless a run rebinds
    it (``run_structures``)."""

    built: tuple[Any, ...]

    @property
    def outer_size(self) -> int:
        """The number of rows (in a run that rebinds it, the bound number)."""
        outer: int = _run_structure(self, self.built)[0]
        return outer

    @outer_size.setter
    def outer_size(self, value: int) -> None:
        """``r.outer_size = n`` changes the built structure (checked as the constructor checks it); with another
        row count set the rows too (a Ragged's ``lengths``, a Sparse's ``indptr``) before it is next listed, where
        the two are checked together."""
        self.built = (_outer_size(value, f"{self!r}.outer_size = {value!r}"), *self.built[1:])


class Ragged(_Rows, Axis):
    """``Ragged(outer, lengths)``: ``outer`` rows, row ``i`` holding ``lengths[i]`` items.

    Iterating it with ``P(ragged)`` yields ``(i, j)`` pairs for every item, row by row. A loop that binds one
    variable, ``P.seq(ragged)``, ``P.sel(ragged)``, ``for_each(ragged, body)`` (or ``parallel_for``, ``select``),
    numbers the items instead: ``0 .. total() - 1``, row by row, as the reference iterates a Ragged.

    A compiled program rebinds it between runs, as the reference's symbols do:
    ``program.set_symbol_u64(f"outer_{id(ragged)}", n)`` and ``program.set_symbol_ptr(f"lengths_{id(ragged)}",
    lengths)``; during such a run ``outer_size``, ``lengths`` and ``total()`` are the bound ones (``built`` keeps
    the structure it was made with).
    """

    def __init__(self, outer_size: int, lengths: Sequence[int]) -> None:
        outer = _check_size(outer_size, "Ragged")
        api = f"Ragged({outer_size}, lengths)"
        items = _int_list(lengths, api, "lengths", "Ragged(2, [3, 1]) (one item count >= 0 per outer row)")
        if len(items) != outer_size:
            raise PtortValueError(f"Ragged({outer_size}, lengths) needs {outer_size} lengths, got {len(items)}.",
                                  hint="Pass one length per outer row.")
        self.built: tuple[int, list[int]] = (outer, _ragged_lengths(items, api))

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle; a Ragged pickled before run-time symbols kept ``outer_size`` and ``lengths`` as attributes."""
        if "built" not in state and "lengths" in state:
            state = {**state, "built": (state.pop("outer_size"), list(state.pop("lengths")))}
        self.__dict__.update(state)

    @property
    def lengths(self) -> list[int]:
        """Each row's item count (in a run that rebinds them, the bound ones)."""
        lengths: list[int] = _run_structure(self, self.built)[1]
        return lengths

    @lengths.setter
    def lengths(self, value: Sequence[int]) -> None:
        """``r.lengths = [...]`` changes the built structure, checked as the constructor checks it (one length
        per row: ``r.outer_size`` too when the row count changes)."""
        api = f"{self!r}.lengths = ..."
        items = _int_list(value, api, "lengths", "[3, 1] (one item count >= 0 per outer row)")
        self.built = (self.built[0], _ragged_lengths(items, api))

    def _rows(self) -> list[int]:
        """The lengths, one per outer row: a Ragged whose ``outer_size`` and ``lengths`` were set to disagree is
        refused where it is listed."""
        outer, lengths = _run_structure(self, self.built)
        if len(lengths) != outer:
            raise PtortValueError(f"{self!r}: outer_size is {outer} but lengths has {len(lengths)} entries; a Ragged "
                                  "takes one length per outer row.",
                                  hint="Set them together before the Ragged is listed: r.outer_size = n and "
                                       "r.lengths = [...] with n entries (or build a new Ragged(n, lengths)).")
        return lengths  # type: ignore[no-any-return]

    @property
    def size(self) -> int:
        """The number of items, ``total()``."""
        return self.total()

    def length(self, i: Any) -> Any:
        """Row ``i``'s length; with a loop variable ``i``, an expression evaluated per iteration."""
        if isinstance(i, Expr):
            return _RaggedLength(self, i, user_location())
        return self._row_length(i, None)

    def _row_length(self, i: Any, loc: SourceLocation | None, row: Any = None) -> int:
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise PtortTypeError(f"{self!r}.length({i!r}): the row must be an int or a loop variable, got "
                                 f"{type(i).__name__}.", hint="Pass a row number such as r.length(b).",
                                 where=loc, locate=loc is None)
        lengths = self._rows()
        if not 0 <= i < self.outer_size:
            label = f"{_expr_text(row)} = {i}" if row is not None else f"{i}"
            raise PtortValueError(f"{self!r}.length({label}): row {i} is out of range; it has {self.outer_size} rows "
                                  f"(0..{self.outer_size - 1}).",
                                  hint=f"Index rows with the outer loop over Dense[{self.outer_size}]() (or fewer).",
                                  where=loc, locate=loc is None)
        return lengths[int(i)]

    def total(self) -> int:
        """The number of items: the sum of the lengths."""
        return sum(self._rows())

    @property
    def rank(self) -> int:
        return 2

    def points(self, bindings: Any) -> Sequence[Any]:
        return [(i, j) for i, n in enumerate(self._rows()) for j in range(n)]

    def __repr__(self) -> str:
        if len(self.lengths) <= 12:
            return f"Ragged({self.outer_size}, {self.lengths})"
        # (messages name the axis: thousands of lengths would bury what they say)
        head = ", ".join(map(str, self.lengths[:6]))
        return f"Ragged({self.outer_size}, [{head}, ... {len(self.lengths):,} lengths])"


class RaggedFlat(Axis):
    """A Ragged's items numbered ``0 .. total() - 1``, row by row: the axis of a loop that binds one variable to a
    Ragged (``P.seq(ragged)``, ``for_each(ragged, body)``), as the reference iterates it. ``ragged`` is the Ragged
    (so a run that rebinds it loops over the bound items)."""

    def __init__(self, ragged: Ragged) -> None:
        self.ragged = ragged

    @property
    def size(self) -> int:
        """The number of items of the Ragged."""
        return self.ragged.total()

    def points(self, bindings: Any) -> Sequence[Any]:
        """0 .. total() - 1."""
        return range(self.ragged.total())

    @property
    def unpack_note(self) -> tuple[str, str]:
        """What a loop variable over it says when unpacked (``for b, j in P.seq(ragged)``): (text, hint)."""
        return ("P.seq, P.sel and for_each over a Ragged iterate it flat, one index per item (0 .. total() - 1, row "
                f"by row), as the reference does; P(ragged) gives (row, item) pairs. Here: {self.ragged!r}.",
                "For (row, item) pairs write `for b, j in P(ragged):`; for one index per item write "
                "`for i in P.seq(ragged):`.")

    def __repr__(self) -> str:
        return f"{self.ragged!r} (flat)"


class _RaggedLength(Expr):
    __slots__ = ("ragged", "row", "loc")

    def __init__(self, ragged: Ragged, row: Expr, loc: SourceLocation | None = None) -> None:
        self.ragged, self.row, self.loc = ragged, row, loc

    def evaluate(self, bindings: Any) -> int:
        return self.ragged._row_length(evaluate(self.row, bindings), self.loc, self.row)

    def __repr__(self) -> str:
        return f"len[{self.row!r}]"


class Sparse(_Rows):
    """CSR structure ``Sparse(outer, indptr, indices)``: ``sp[r]`` lists the indices stored in row ``r``.

    A compiled program rebinds it between runs, as the reference's symbols do: ``program.set_symbol_u64(
    f"outer_{id(sp)}", n)``, ``program.set_symbol_ptr(f"indptr_{id(sp)}", indptr)`` and ``program.set_symbol_ptr(
    f"indices_{id(sp)}", indices)``; during such a run ``outer_size``, ``indptr`` and ``indices`` are the bound ones
    (``built`` keeps the structure it was made with).
    """

    def __init__(self, outer_size: int, indptr: Sequence[int], indices: Sequence[int]) -> None:
        outer = _check_size(outer_size, "Sparse")
        ptr = _int_list(indptr, f"Sparse({outer_size}, indptr, indices)", "indptr", "[0, 2, 3]")
        idx = _int_list(indices, f"Sparse({outer_size}, indptr, indices)", "indices", "[4, 7, 1]")
        if len(ptr) != outer_size + 1:
            raise PtortValueError(f"Sparse indptr needs outer_size + 1 = {outer_size + 1} entries, "
                                  f"got {len(ptr)}.", hint="indptr[r]..indptr[r+1] delimits row r.")
        _sparse_indptr(ptr)
        # indptr[-1] is the CSR's nnz: fewer indices cannot fill the rows, and more would be silently dropped
        # (almost always an off-by-one in building indptr).
        if ptr[-1] != len(idx):
            extra = len(idx) - ptr[-1]
            what = (f"only {len(idx)} indices were given" if extra < 0 else
                    f"{len(idx)} indices were given, so the last {extra} would belong to no row")
            raise PtortValueError(f"Sparse({outer_size}, indptr, indices): indptr ends at {ptr[-1]} (the "
                                  f"number of stored indices) but {what}.",
                                  hint="indptr[-1] must equal len(indices): build indptr as the running count of "
                                       "indices per row, e.g. Sparse(2, [0, 2, 3], [4, 7, 1]).")
        self.built: tuple[int, list[int], list[int]] = (outer, ptr, idx)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle; a Sparse pickled before run-time symbols kept ``outer_size``, ``indptr`` and ``indices`` as
        attributes."""
        if "built" not in state and "indptr" in state:
            state = {**state, "built": (state.pop("outer_size"), list(state.pop("indptr")),
                                        list(state.pop("indices")))}
        self.__dict__.update(state)

    @property
    def indptr(self) -> list[int]:
        """Row ``r``'s indices are ``indices[indptr[r]:indptr[r + 1]]`` (in a run that rebinds it, the bound one)."""
        indptr: list[int] = _run_structure(self, self.built)[1]
        return indptr

    @indptr.setter
    def indptr(self, value: Sequence[int]) -> None:
        """``sp.indptr = [...]`` changes the built structure, checked as the constructor checks it (from 0, never
        decreasing; outer_size + 1 entries ending at len(indices), checked when the Sparse is next listed)."""
        outer, _, idx = self.built
        ptr = _int_list(value, f"{self!r}.indptr = ...", "indptr", "[0, 2, 3]")
        self.built = (outer, _sparse_indptr(ptr), idx)

    @property
    def indices(self) -> list[int]:
        """The stored indices, row by row (in a run that rebinds them, the bound ones)."""
        indices: list[int] = _run_structure(self, self.built)[2]
        return indices

    @indices.setter
    def indices(self, value: Sequence[int]) -> None:
        """``sp.indices = [...]`` changes the built structure, checked as the constructor checks it (ints;
        len(indices) == indptr[-1], checked when the Sparse is next listed: set ``sp.indptr`` too when it changes)."""
        outer, ptr, _ = self.built
        self.built = (outer, ptr, _int_list(value, f"{self!r}.indices = ...", "indices", "[4, 7, 1]"))

    def _csr(self) -> tuple[int, list[int], list[int]]:
        """(outer_size, indptr, indices), refused where the Sparse is listed when they were set to disagree."""
        outer, ptr, idx = _run_structure(self, self.built)
        if len(ptr) != outer + 1:
            raise PtortValueError(f"{self!r}: outer_size is {outer} but indptr has {len(ptr)} entries; it needs "
                                  f"outer_size + 1 = {outer + 1}.",
                                  hint="indptr[r]..indptr[r+1] delimits row r: set sp.outer_size and sp.indptr "
                                       "together before the Sparse is listed (or build a new Sparse).")
        if ptr[-1] != len(idx):
            raise PtortValueError(f"{self!r}: indptr ends at {ptr[-1]} (the number of stored indices) but indices "
                                  f"has {len(idx)} entries.",
                                  hint="indptr[-1] must equal len(indices): set sp.indptr and sp.indices together "
                                       "before the Sparse is listed.")
        return outer, ptr, idx

    def nnz(self) -> int:
        outer, ptr, _ = self._csr()
        return ptr[outer]

    def row_nnz(self, r: int) -> int:
        r = self._row(r, "row_nnz")
        return self.indptr[r + 1] - self.indptr[r]

    def _row(self, r: Any, api: str) -> int:
        """``r`` as a row number in range (a numpy integer is the int it holds); a float or a string is refused."""
        if isinstance(r, bool) or not isinstance(r, (int, np.integer)):
            raise PtortTypeError(f"Sparse {api}: the row must be an int or a loop variable, got {type(r).__name__} "
                                 f"{r!r}.", hint="Pass a row number such as sp[0], or a loop variable: sp[b].")
        self._csr()
        if not 0 <= r < self.outer_size:
            raise PtortValueError(f"Sparse row {r} is out of range 0..{self.outer_size - 1}.",
                                  hint="Index rows with a value of the outer axis.")
        return int(r)

    def __getitem__(self, r: Any) -> Any:
        if isinstance(r, Expr):
            return SparseRow(self, r, user_location())
        r = self._row(r, "sp[row]")
        return self.indices[self.indptr[r]:self.indptr[r + 1]]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices[: self.nnz()])

    def __len__(self) -> int:
        return self.nnz()

    def __repr__(self) -> str:  # (never raises: messages name it, a Sparse set to disagree too)
        ptr = self.indptr
        return f"Sparse({self.outer_size}, nnz={ptr[-1] if ptr else 0})"


class SparseRow:
    """``sp[r]`` where ``r`` is a loop variable: the row's indices, known when tasks are enumerated."""

    __slots__ = ("sparse", "row", "loc")

    def __init__(self, sparse: Sparse, row: Expr, loc: SourceLocation | None = None) -> None:
        self.sparse, self.row, self.loc = sparse, row, loc

    def resolve(self, bindings: Any) -> list[int]:
        """The row's indices under ``bindings``."""
        r = evaluate(self.row, bindings)
        is_int = isinstance(r, (int, np.integer)) and not isinstance(r, bool)
        if not is_int or not 0 <= r < self.sparse.outer_size:
            error = PtortValueError if is_int else PtortTypeError
            raise error(f"sparse[{_expr_text(self.row)}] is row {type(r).__name__} {r!r} with "
                        f"{_describe_bindings(bindings)}, but the Sparse's rows are the ints "
                        f"0..{self.sparse.outer_size - 1}.",
                        hint="Index the Sparse with the loop variable of its outer axis, e.g. P.sel(sp[b]) inside "
                             f"`for b in P(Dense[{self.sparse.outer_size}]()):`.", where=self.loc,
                        locate=self.loc is None)
        indices: list[int] = self.sparse[int(r)]
        return indices

    def __repr__(self) -> str:
        return f"sparse[{self.row!r}]"


__all__ = ["Axis", "Dense", "DenseDyn", "Ragged", "RaggedFlat", "Sparse", "SparseRow", "MAX_ITERATIONS", "run_sizes",
           "run_structures"]
