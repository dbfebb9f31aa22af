"""A long run's spans merged per time bin before they are drawn: a timeline is about a thousand pixels wide, so a
million spans are mostly thinner than a pixel, and walking each of them through the Gantt's Python (lanes, rows,
labels, bars) took minutes and GBs.

``binned(trace)`` keeps the spans of a trace of at most MAX_DRAWN_SPANS as they are (small runs draw exactly as
before). Above that, the spans of one (core, lane, op, process) whose time bins touch become one span from the
first start to the last end (no tile index: a merged bar names no tile), over TIME_BINS bins of the makespan: one
bin is under a pixel of the figure. This is done with numpy over the trace's columns (``RecordColumns.ints``), with
one Python pass to number the (core, lane, op, process) keys.
"""
from __future__ import annotations

import dataclasses
from operator import itemgetter
from typing import Any

import numpy as np

from ..sim.trace import RecordColumns, Span, Trace

#: Spans a timeline draws one by one; a trace with more is drawn merged per time bin (the title says so). At 50,000
#: the Gantt's Python takes about 2 s; the notebook leaves the trace JSON out past the same count
#: (notebook.display.MAX_TRACE_SPANS).
MAX_DRAWN_SPANS = 50_000
#: Time bins over the makespan when spans are merged: more than the Gantt's ~800 pixel columns, so a bin is under a
#: pixel wide and merging changes no pixel's colour by more than its neighbour's share.
TIME_BINS = 1000

_START, _END = 4, 5  # Span fields
_KEY = itemgetter(0, 1, 2, 7)  # core, lane, name, process: what a bar's lane, row and colour come from


def _ints(spans: Any, k: int) -> np.ndarray[Any, np.dtype[np.int64]]:
    """Field ``k`` (an int field) of every span as an int64 array."""
    column = spans.ints(k) if isinstance(spans, RecordColumns) else None
    if column is not None:
        return column
    return np.fromiter(map(itemgetter(k), spans), dtype=np.int64, count=len(spans))


def binned(trace: Trace, bins: int = TIME_BINS) -> Trace:
    """``trace`` itself when it has at most MAX_DRAWN_SPANS spans; else a copy whose spans are merged per time bin
    (see the module docstring). Samples, stalls, processes and the makespan are kept."""
    spans = trace.spans
    n = len(spans)
    if n <= MAX_DRAWN_SPANS:
        return trace
    keys: dict[tuple[Any, ...], int] = {}
    number = keys.setdefault
    group = np.fromiter((number(k, len(keys)) for k in map(_KEY, spans)), dtype=np.int64, count=n)
    starts, ends = _ints(spans, _START), _ints(spans, _END)
    makespan = max(trace.makespan, 1)
    # bin edges as exact ints (i * makespan would overflow int64 for makespans near 2**53)
    edges = np.array([i * makespan // bins for i in range(bins + 1)], dtype=np.int64)
    first = np.clip(np.searchsorted(edges, starts, side="right") - 1, 0, bins - 1)
    last = np.clip(np.searchsorted(edges, np.maximum(ends - 1, starts), side="right") - 1, 0, bins - 1)
    order = np.lexsort((first, group))
    group, first, last, starts, ends = group[order], first[order], last[order], starts[order], ends[order]
    # The furthest bin reached so far in the span's group: key-major order makes a running maximum of
    # group * stride + last stay within each group.
    stride = bins + 2
    reach = np.maximum.accumulate(group * stride + last)
    new_bar = np.ones(n, dtype=bool)
    new_bar[1:] = (group[1:] != group[:-1]) | (first[1:] > reach[:-1] - group[1:] * stride + 1)
    at = np.flatnonzero(new_bar)
    bar_group = group[at]
    bar_start = np.minimum.reduceat(starts, at)
    bar_end = np.maximum.reduceat(ends, at)
    shown = np.lexsort((bar_group, bar_start))  # in time order, as a run records its spans
    key_list = list(keys)
    merged = [Span(key_list[g][0], key_list[g][1], key_list[g][2], None, s, e, 0, key_list[g][3], -1)
              for g, s, e in zip(bar_group[shown].tolist(), bar_start[shown].tolist(), bar_end[shown].tolist())]
    return dataclasses.replace(trace, spans=merged)


__all__ = ["binned", "MAX_DRAWN_SPANS", "TIME_BINS"]
