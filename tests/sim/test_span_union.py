"""The busy-cycle unions of SpanTotals with numpy (sim/span_union.py) against the interval helpers they replaced
(stats._merge, stats.overlap_of): equal on any ints, int64 or past it."""
from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from loaders import flash_attention_example

from ptort_lab.sim import span_union, stats
from ptort_lab.sim.stats import SpanTotals, _merge, overlap_of
from ptort_lab.sim.trace import Span, SpanColumns

# times small (many ties and touching intervals), near int64's end (the shifted path goes to Python ints) or past it
_TIMES = st.one_of(st.integers(0, 40), st.integers(2**61 - 40, 2**61), st.integers(2**70, 2**70 + 40))


@st.composite
def _intervals(draw: Any) -> list[tuple[int, int, int]]:
    """(label, start, end) triples, end possibly before or at start (empty intervals), labels 0..5."""
    base = draw(_TIMES)
    items = draw(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 30), st.integers(-5, 30)), max_size=30))
    return [(label, base + s, base + s + d) for label, s, d in items]


def _arrays(items: list[tuple[int, int, int]]) -> tuple[Any, Any, Any]:
    labels = np.array([k for k, _, _ in items], dtype=np.int64)
    return labels, span_union.ints([s for _, s, _ in items]), span_union.ints([e for _, _, e in items])


@settings(max_examples=300, deadline=None)
@given(_intervals())
def test_runs_lengths_and_overlap_equal_the_helpers(items: list[tuple[int, int, int]]) -> None:
    by_label: dict[int, list[tuple[int, int]]] = {}
    for label, s, e in items:
        by_label.setdefault(label, []).append((s, e))
    merged = {label: _merge(intervals) for label, intervals in sorted(by_label.items())}
    labels, starts, ends = span_union.runs(*_arrays(items))
    assert list(zip(labels.tolist(), starts.tolist(), ends.tolist())) == \
        [(label, s, e) for label, union in merged.items() for s, e in union]
    assert span_union.lengths(*_arrays(items)) == {label: sum(e - s for s, e in union)
                                                    for label, union in merged.items() if union}
    assert span_union.busy_in_two(*_arrays(items)) == overlap_of(merged.values())[0]


def test_times_past_int64_are_counted_exactly_as_python_ints() -> None:
    assert span_union.ints([1, 2**63]).dtype == object and span_union.ints([1, 2**40]).dtype == np.int64
    assert span_union.ints([1.5]).dtype == object  # (never rounded by numpy's conversion)
    labels, starts, ends = _arrays([(0, 2**70, 2**70 + 7), (1, 2**70 + 3, 2**70 + 9), (0, 2**70 + 7, 2**70 + 8)])
    assert span_union.lengths(labels, starts, ends) == {0: 8, 1: 6}
    assert span_union.busy_in_two(labels, starts, ends) == 5


def test_a_window_of_big_and_small_times_is_cut_and_counted_like_a_whole_trace() -> None:
    """Chunks of int64 and Python-int times in one window, cut part-way: the figures of SpanTotals.of."""
    big = 2**64
    spans = [Span(0, "V", "k", 0, 0, 10, 4, "p"), Span(0, "M", "k", 1, 5, 12, 0, "q"),
             Span(1, "V", "k", 2, big, big + 5, 1, "p"), Span(0, "V", "k", 3, big + 2, big + 4, 0, "p")]
    totals = SpanTotals()
    totals.add(spans[:2])
    totals.flush(5)
    totals.add(spans[2:])
    totals.flush(big + 3)
    assert totals.pending == {(0, "V", "p"): [(big + 3, big + 4)], (0, "M", "q"): [],
                              (1, "V", "p"): [(big + 3, big + 5)]}
    totals.flush()
    whole = SpanTotals.of(spans)
    for t in (totals, whole):
        assert t.lanes == {(0, "V"): 12, (0, "M"): 7, (1, "V"): 5} and t.cores == {0: 14, 1: 5}
        assert t.stages == {"p": 15, "q": 7} and t.multi == 5 and t.bytes_moved == 5 and t.span_count == 4


def test_a_run_s_columns_are_counted_like_its_spans_one_by_one(monkeypatch: Any) -> None:
    """SpanTotals.of on a run's SpanColumns reads the columns (no Span built) and gives the figures, in the same key
    order, of the spans counted as rows; in chunks (FEED_CHUNK made small) as in one."""
    fa = flash_attention_example("ptort_span_union_fa_example")
    workload, _ = fa.build("pipeline", fa.Config(seq=1024, cores=3))
    spans = workload.compile(compute_values=False).execute().trace.spans
    assert isinstance(spans, SpanColumns) and len(spans) > 2000
    spans.compact()  # (as a run past COMPACT_AFTER_ROWS: in the columns, none pending)
    assert not spans.pending
    for chunk in (stats.FEED_CHUNK, 700):
        monkeypatch.setattr(stats, "FEED_CHUNK", chunk)
        columns, rows = SpanTotals.of(spans), SpanTotals.of(list(spans))
        assert list(columns.lanes.items()) == list(rows.lanes.items())
        assert list(columns.cores.items()) == list(rows.cores.items())
        assert list(columns.stages.items()) == list(rows.stages.items())
        assert (columns.multi, columns.bytes_moved, columns.span_count) == (rows.multi, rows.bytes_moved, len(spans))
        assert columns.pending == rows.pending and rows.kept == columns.kept == 0
    assert len(rows.stages) == 18 and rows.multi > 0  # (six processes on each of three cores)


def test_hand_made_spans_far_from_int64_or_not_ints_are_counted_exactly() -> None:
    """Times near -2**63, float times and a cut past int64 (a hand-made trace's): the numbers Python gives."""
    low = SpanTotals()
    low.add([Span(0, "A", "k", 0, -2**63 + 1, 0), Span(0, "A", "k", 1, 5, 10)])
    low.flush()
    assert low.lanes == {(0, "A"): 2**63 - 1 + 5} and low.multi == 0
    floats = SpanTotals.of([Span(0, "A", "k", 0, 0.5, 2.0), Span(0, "A", "k", 1, 1.0, 3.25)])
    assert floats.lanes == {(0, "A"): 2.75} and floats.cores == {0: 2.75}
    cut = SpanTotals()
    cut.add([Span(0, "A", "k", 0, 0, 10, 0, "p"), Span(0, "B", "k", 1, 4, 2**64, 0, "q")])
    cut.flush(2**64)
    cut.flush()
    assert cut.lanes == {(0, "A"): 10, (0, "B"): 2**64 - 4} and cut.multi == 6 and cut.kept == 0
