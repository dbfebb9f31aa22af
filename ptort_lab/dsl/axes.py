"""Iteration axes: Dense[n]() (static), DenseDyn(n) (sized at run time), Ragged and Sparse (CSR)."""
from __future__ import annotations

from typing import Any, Iterator, Sequence

from ..errors import PtortTypeError, PtortValueError
from .expr import Expr, evaluate


def _check_size(size: Any, what: str) -> int:
    if isinstance(size, bool) or not isinstance(size, int):
        raise PtortTypeError(f"{what} size must be an int, got {size!r}.", hint=f"Write {what}[8]() or similar.")
    if size <= 0:
        raise PtortValueError(f"{what} size must be positive, got {size}.",
                              hint="An axis with no iterations builds no tasks; use a size >= 1.")
    return size


class Axis:
    """An iteration space. ``points(bindings)`` lists the index values (ints, or tuples for 2-D spaces)."""

    size: int

    def points(self, bindings: Any) -> Sequence[Any]:
        return range(self.size)

    @property
    def rank(self) -> int:
        return 1


class Dense(Axis):
    """A static axis: ``Dense[8]()``; ``.size == 8``."""

    size: int = 0

    def __class_getitem__(cls, size: Any) -> type[Dense]:
        n = _check_size(size, "Dense")
        return type(f"Dense[{n}]", (Dense,), {"size": n})

    def __init__(self) -> None:
        if type(self) is Dense:
            raise PtortTypeError("Dense needs a static size: write Dense[8](), not Dense().",
                                 hint="Use DenseDyn(n) for an axis whose size is a plain runtime value.")

    def __repr__(self) -> str:
        return f"Dense[{self.size}]()"


class DenseDyn(Axis):
    """An axis sized when the workload is built, ``DenseDyn(n)``, or per iteration, ``DenseDyn(ragged.length(b))``."""

    def __init__(self, size: Any) -> None:
        self.size = size if isinstance(size, Expr) else _check_size(size, "DenseDyn")

    def points(self, bindings: Any) -> Sequence[Any]:
        return range(int(evaluate(self.size, bindings)))

    def __repr__(self) -> str:
        return f"DenseDyn({self.size})"


class Ragged(Axis):
    """``Ragged(outer, lengths)``: ``outer`` rows, row ``i`` holding ``lengths[i]`` items.

    Iterating it with ``P(ragged)`` yields ``(i, j)`` pairs for every item, row by row.
    """

    def __init__(self, outer_size: int, lengths: Sequence[int]) -> None:
        self.outer_size = _check_size(outer_size, "Ragged")
        self.lengths = [int(n) for n in lengths]
        if len(self.lengths) != outer_size:
            raise PtortValueError(f"Ragged({outer_size}, lengths) needs {outer_size} lengths, got {len(self.lengths)}.",
                                  hint="Pass one length per outer row.")
        if any(n < 0 for n in self.lengths):
            raise PtortValueError(f"Ragged lengths must be >= 0, got {self.lengths}.", hint="Use 0 for an empty row.")
        self.size = self.total()

    def length(self, i: Any) -> Any:
        if isinstance(i, Expr):
            return _RaggedLength(self, i)
        return self.lengths[i]

    def total(self) -> int:
        return sum(self.lengths)

    @property
    def rank(self) -> int:
        return 2

    def points(self, bindings: Any) -> Sequence[Any]:
        return [(i, j) for i, n in enumerate(self.lengths) for j in range(n)]

    def __repr__(self) -> str:
        return f"Ragged({self.outer_size}, {self.lengths})"


class _RaggedLength(Expr):
    __slots__ = ("ragged", "row")

    def __init__(self, ragged: Ragged, row: Expr) -> None:
        self.ragged, self.row = ragged, row

    def evaluate(self, bindings: Any) -> int:
        return self.ragged.lengths[int(evaluate(self.row, bindings))]

    def __repr__(self) -> str:
        return f"len[{self.row}]"


class Sparse:
    """CSR structure ``Sparse(outer, indptr, indices)``: ``sp[r]`` lists the indices stored in row ``r``."""

    def __init__(self, outer_size: int, indptr: Sequence[int], indices: Sequence[int]) -> None:
        self.outer_size = _check_size(outer_size, "Sparse")
        self.indptr = [int(v) for v in indptr]
        self.indices = [int(v) for v in indices]
        if len(self.indptr) != outer_size + 1:
            raise PtortValueError(f"Sparse indptr needs outer_size + 1 = {outer_size + 1} entries, "
                                  f"got {len(self.indptr)}.", hint="indptr[r]..indptr[r+1] delimits row r.")
        if self.indptr[0] != 0 or any(b < a for a, b in zip(self.indptr, self.indptr[1:])):
            raise PtortValueError(f"Sparse indptr must start at 0 and never decrease, got {self.indptr}.",
                                  hint="Build indptr as the running count of indices per row.")
        if self.indptr[-1] > len(self.indices):
            raise PtortValueError(f"Sparse indptr ends at {self.indptr[-1]} but only {len(self.indices)} indices "
                                  "were given.", hint="Pass every row's indices in `indices`.")

    def nnz(self) -> int:
        return self.indptr[self.outer_size]

    def row_nnz(self, r: int) -> int:
        return self.indptr[r + 1] - self.indptr[r]

    def __getitem__(self, r: Any) -> Any:
        if isinstance(r, Expr):
            return SparseRow(self, r)
        if not 0 <= r < self.outer_size:
            raise PtortValueError(f"Sparse row {r} is out of range 0..{self.outer_size - 1}.",
                                  hint="Index rows with a value of the outer axis.")
        return self.indices[self.indptr[r]:self.indptr[r + 1]]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices[: self.nnz()])

    def __len__(self) -> int:
        return self.nnz()

    def __repr__(self) -> str:
        return f"Sparse({self.outer_size}, nnz={self.nnz()})"


class SparseRow:
    """``sp[r]`` where ``r`` is a loop variable: the row's indices, known when tasks are enumerated."""

    __slots__ = ("sparse", "row")

    def __init__(self, sparse: Sparse, row: Expr) -> None:
        self.sparse, self.row = sparse, row

    def resolve(self, bindings: Any) -> list[int]:
        return self.sparse[int(evaluate(self.row, bindings))]

    def __repr__(self) -> str:
        return f"sparse[{self.row}]"


__all__ = ["Axis", "Dense", "DenseDyn", "Ragged", "Sparse", "SparseRow"]
