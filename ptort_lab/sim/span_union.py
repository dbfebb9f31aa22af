"""Unions of labelled intervals with numpy: the busy-cycle arithmetic of ``stats.SpanTotals``, exact on any ints.

Times are int64 arrays when every value fits, else object arrays of Python ints (the same numpy code, exact and
slower); nothing here rounds.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

Ints = Any  # a 1-d int64 or object (Python int) array
_INT64_ROOM = 1 << 62  # the largest shifted time the int64 path may make


def ints(values: Sequence[Any]) -> Ints:
    """``values`` (whole numbers) as an int64 array, or an object array of them when one does not fit (or is not an
    int: then numpy's own conversion would round it)."""
    array = np.array(values)
    if array.dtype.kind in "iu" and (not len(array) or -_INT64_ROOM < int(array.min()) and
                                     int(array.max()) < _INT64_ROOM):
        return array.astype(np.int64, copy=False)
    return np.array(values, dtype=object)


def fits(array: Ints, value: Any) -> Ints:
    """``array``, as Python ints when ``value`` (to be compared or combined with it) is outside what ``ints`` keeps
    in int64."""
    if array.dtype != object and not (type(value) is int and -_INT64_ROOM < value < _INT64_ROOM):
        return array.astype(object)
    return array


def runs(labels: np.ndarray[Any, Any], starts: Ints, ends: Ints) -> tuple[np.ndarray[Any, Any], Ints, Ints]:
    """Per label, the union of its intervals [start, end) as disjoint runs (touching ones joined, empty ones
    dropped, as ``stats._merge``): (label, start, end) of each run, by label, then start."""
    if starts.dtype == object or ends.dtype == object:  # (one side past int64: both as Python ints)
        starts, ends = starts.astype(object), ends.astype(object)
    keep = ends > starts
    labels, starts, ends = labels[keep], starts[keep], ends[keep]
    n = len(starts)
    if not n:
        return labels, starts, ends
    order = np.lexsort((starts, labels))
    labels, starts, ends = labels[order], starts[order], ends[order]
    # One running maximum of the ends over all labels at once: each label's times shifted past the previous one's
    # (by the width of all of them), so a label's first interval always starts a run.
    base = starts.min()
    width = ends.max() - base + 1
    if starts.dtype != object and (int(labels[-1]) + 1) * int(width) >= _INT64_ROOM:
        starts, ends = starts.astype(object), ends.astype(object)
        base, width = int(base), int(width)
    shift = labels.astype(starts.dtype) * width - base
    reach = np.maximum.accumulate(ends + shift)
    first = np.empty(n, dtype=bool)
    first[0] = True
    first[1:] = (starts + shift)[1:] > reach[:-1]
    at = np.flatnonzero(first)
    last = np.append(at[1:] - 1, n - 1)
    return labels[at], starts[at], reach[last] - shift[last]


def lengths(labels: np.ndarray[Any, Any], starts: Ints, ends: Ints) -> dict[int, int]:
    """label -> the busy cycles of its union (``runs``)."""
    return run_lengths(*runs(labels, starts, ends))


def run_lengths(labels: np.ndarray[Any, Any], starts: Ints, ends: Ints) -> dict[int, int]:
    """``lengths`` of intervals that are ``runs`` already."""
    if not len(labels):
        return {}
    at = np.flatnonzero(np.append(True, labels[1:] != labels[:-1]))
    sums = np.add.reduceat(ends - starts, at)
    return dict(zip(labels[at].tolist(), sums.tolist()))  # (plain Python numbers, as they were summed)


def busy_in_two(labels: np.ndarray[Any, Any], starts: Ints, ends: Ints) -> int:
    """The cycles when the unions of >= 2 labels are busy at once (``stats.overlap_of``'s first figure)."""
    _, starts, ends = runs(labels, starts, ends)
    return runs_busy_in_two(starts, ends)


def runs_busy_in_two(starts: Ints, ends: Ints) -> int:
    """``busy_in_two`` of intervals that are ``runs`` already (disjoint within each label)."""
    if not len(starts):
        return 0
    times = np.concatenate([starts, ends])
    steps = np.concatenate([np.ones(len(starts), np.int64), np.full(len(ends), -1, np.int64)])
    order = np.argsort(times, kind="stable")  # (events at one time: their order spans no cycle)
    times, level = times[order], np.cumsum(steps[order])
    busy = ((times[1:] - times[:-1]) * (level[:-1] >= 2)).sum()
    return busy.item() if isinstance(busy, np.generic) else busy  # type: ignore[no-any-return]


__all__ = ["ints", "fits", "runs", "lengths", "run_lengths", "busy_in_two", "runs_busy_in_two"]
