"""plot_timeline and compare on any Trace: one that breaks the rules is refused by name; any that loads draws."""
from __future__ import annotations

import json

import numpy as np
import pytest
from matplotlib.figure import Figure

from ptort_lab import PtortValueError, Span, Trace
from ptort_lab.sim.export import load_chrome_json
from ptort_lab.sim.trace import MAX_CYCLES, Sample
from ptort_lab.viz import compare, figure_png, plot_timeline


def makespan_x(fig: Figure) -> list[float]:
    (gantt,) = [ax for ax in fig.axes if ax.get_gid() == "gantt"]
    return [x for line in gantt.lines if line.get_gid() == "makespan" for x in line.get_xdata()]


@pytest.mark.parametrize("spans, makespan, words", [
    ([Span(0, "p", "k", 0, 0, 10**400)], 10, "spans[0].end is an int of 401 digits; expected a whole, finite number"),
    ([Span(0, "p", "k", 0, 0, 10)], 10**400, "makespan is an int of 401 digits; expected a whole, finite number"),
    ([Span(0, "p", "k", 0, 0, 2**53 + 2)], 10, "spans[0].end is 9007199254740994; expected"),
    ([Span(0, "p", "k", 0, 9, 3)], 10, "spans[0].end is 3; expected a number of cycles >= the span's start 9"),
    ([Span(0, "p", "k", 0, float("inf"), 3)], 10, "spans[0].start is inf; expected"),
    ([Span(0, ["p"], "k", 0, 0, 3)], 10, "spans[0].lane is ['p']; expected a string"),
])
def test_a_trace_that_cannot_be_drawn_is_refused_by_field(spans, makespan, words):
    """10**400 cycles used to raise OverflowError inside matplotlib; now the field is named before drawing."""
    bad = Trace(spans=spans, makespan=makespan, processes=["p"])
    for draw in (lambda: plot_timeline(bad), lambda: compare(bad, Trace())):
        with pytest.raises(PtortValueError) as ei:
            draw()
        assert f"got a Trace whose {words}" in ei.value.what
        assert ei.value.where is not None and ei.value.where.filename == __file__


def test_numpy_numbers_draw_like_ints():
    trace = Trace(spans=[Span(np.int64(0), "p", "k", np.int64(1), np.int64(0), np.int64(40), 0, "p", 0)],
                  makespan=np.int64(40), processes=["p"])
    assert makespan_x(plot_timeline(trace)) == [40, 40]


def test_the_largest_times_draw():
    """Times up to 2**53 cycles draw without overflow, with the makespan where it is."""
    trace = Trace(spans=[Span(0, "p", "k", 0, 0, 5), Span(0, "p", "k", 1, MAX_CYCLES - 5, MAX_CYCLES)],
                  samples=[Sample("c", MAX_CYCLES, 1)], makespan=MAX_CYCLES, processes=["p"], channels={"c": 1})
    fig = plot_timeline(trace)
    assert makespan_x(fig) == [MAX_CYCLES, MAX_CYCLES]
    assert figure_png(fig).startswith(b"\x89PNG")


def test_a_foreign_trace_that_loads_draws_and_compares():
    """A Chrome trace from another tool, once loaded, draws in both lane modes and in compare."""
    events = [{"ph": "X", "name": f"job{i % 3}", "pid": 7, "tid": i % 2, "ts": 1e12 + 10 * i, "dur": 8}
              for i in range(20)]
    events += [{"ph": "M", "name": "thread_name", "pid": 7, "tid": 1, "args": {"name": "io"}},
               {"ph": "C", "name": "q", "ts": 1e12 + 5, "args": {"n": 3}}]
    trace = load_chrome_json(json.dumps({"traceEvents": events}))
    for lanes in ("stage", "pipe"):
        fig = plot_timeline(trace, lanes=lanes)
        assert makespan_x(fig) == [trace.makespan, trace.makespan] == [198_000, 198_000]
    assert figure_png(compare(trace, trace)).startswith(b"\x89PNG")
