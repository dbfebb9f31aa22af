"""Packed int64 arrays for the bandwidth pools (``memory.Pool``): librt's ``vec`` when ``memory`` runs compiled, plain
lists behind the same names when it runs interpreted, where a vec would make a Python int on every read."""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import compiled

if TYPE_CHECKING:  # (what mypy and mypyc see: compiled, vec[i64] is a packed array and its ops are inlined)
    from librt.vecs import append as append
    from librt.vecs import pop as pop
    from librt.vecs import vec as vec
    from mypy_extensions import i64 as i64
else:
    NATIVE = compiled.loads_compiled("ptort_lab.sim.memory")  # (asked while memory itself is imported)
    if NATIVE:  # (mypy, and so librt and mypy_extensions, are there: the build needed them)
        from librt.vecs import append, pop, vec
        from mypy_extensions import i64
    else:  # (nothing to install: the names only)
        i64 = int

        class vec:  # noqa: N801 - vec[i64](items) is list(items)
            def __class_getitem__(cls, item: Any) -> type[list[Any]]:
                return list

        def append(v: list[int], x: int) -> list[int]:
            v.append(x)
            return v

        def pop(v: list[int], i: int = -1) -> tuple[list[int], int]:
            x = v.pop(i)
            return v, x
