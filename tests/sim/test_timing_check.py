"""A cost model of the user's own whose task_timing returns something that is not (issue_done, end, spans) in whole
cycles is refused at the first such task, naming the model, what it returned, what is wrong, its task_timing line,
the process, tile and sim time, and how to fix it (before: a bare IndexError in stats(), a TypeError in the engine's
clock arithmetic, or clocks that go back)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from pinned_chains import linear

from ptort_lab import CostModel, PinnedCosts, SimulationError
from ptort_lab.sim.cost_model import span_of
from ptort_lab.sim.costs import NpuCostModel
from ptort_lab.sim.timing_check import checked_timing

HINT = ("Return (issue_done, end, spans): issue_done and end whole cycles no earlier than start, and spans a list of "
        "Span(core, lane, name, index, start, end, bytes, process, task_id) within [start, end] "
        "(ptort_lab.sim.cost_model.span_of(task, core, lane, start, end) builds one).")


def model(returns):
    """A user's cost model whose task_timing returns ``returns(task, core, start, lane)``."""
    class Mine(CostModel):
        clock_hz = 1e9

        def task_timing(self, task, ir, core, start, lane, pipelined):
            return returns(task, core, start, lane)
    return Mine()


CASES = {
    "a span of 6 fields": (lambda t, c, s, ln: (s + 5, s + 5, [(c, ln, "k", 0, s, s + 5)]),
                           "(5, 5, [(0, 's0', 'k', 0, 0, 5)]): a span is (0, 's0', 'k', 0, 0, 5), not a Span(core, "
                           "lane, name, index, start, end, bytes, process, task_id)"),
    "a string for a span": (lambda t, c, s, ln: (s + 5, s + 5, ["oops"]),
                            "(5, 5, ['oops']): a span is 'oops', not a Span(core, lane, name, index, start, end, "
                            "bytes, process, task_id)"),
    "two values": (lambda t, c, s, ln: (s + 5, s + 5),
                   "(5, 5): it is not a tuple (issue_done, end, spans)"),
    "a list": (lambda t, c, s, ln: [s + 5, s + 5, []],
               "[5, 5, []]: it is not a tuple (issue_done, end, spans)"),
    "an end that is text": (lambda t, c, s, ln: (s + 5, "late", []),
                            "(5, 'late', []): its end is 'late', not a whole number of cycles"),
    "a float end": (lambda t, c, s, ln: (s + 5, s + 5.5, []),
                    "(5, 5.5, []): its end is 5.5, not a whole number of cycles"),
    "a bool": (lambda t, c, s, ln: (True, s + 5, []),
               "(True, 5, []): its issue_done is True, not a whole number of cycles"),
    "issue before start": (lambda t, c, s, ln: (s - 1, s + 5, []),
                           "(-1, 5, []): its issue_done is cycle -1, before the task's start at cycle 0 (clocks never "
                           "go back)"),
    "spans not a list": (lambda t, c, s, ln: (s + 5, s + 5, None),
                         "(5, 5, None): its spans are None, not a list"),
    "a span that ends before it starts": (
        lambda t, c, s, ln: (s + 5, s + 5, [span_of(t, c, ln, s + 5, s)]),
        "(5, 5, [Span(core=0, lane='s0', name='s0', index=0, start...: a span runs from 5 to 0: start and end must "
        "be whole cycles, start <= end"),
    "bytes that are text": (lambda t, c, s, ln: (s + 5, s + 5, [span_of(t, c, ln, s, s + 5)._replace(bytes="64")]),
                            "(5, 5, [Span(core=0, lane='s0', name='s0', index=0, start...: a span's bytes are '64', "
                            "not a whole number"),
    "a span past the task's end": (lambda t, c, s, ln: (s + 5, s + 5, [span_of(t, c, ln, s, s + 9)]),
                                   "(5, 5, [Span(core=0, lane='s0', name='s0', index=0, start...: a span ends at cycle "
                                   "9, after the task's end at cycle 5 (a task ends no earlier than its last span)"),
    "a span before the task's start": (lambda t, c, s, ln: (s + 5, s + 5, [span_of(t, c, ln, s - 3, s + 5)]),
                                       "(5, 5, [Span(core=0, lane='s0', name='s0', index=0, start...: a span starts at "
                                       "cycle -3, before the task's start at cycle 0"),
}


@pytest.mark.parametrize("keep", [True, False], ids=["trace", "stats-only"])
@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_result_is_refused_at_the_first_task(case, keep):
    returns, problem = CASES[case]
    program = linear(3).compile(cost_model=model(returns), compute_values=False)
    with pytest.raises(SimulationError) as e:
        program.execute(keep_trace=keep)
    assert e.value.what == f"Mine.task_timing returned {problem}."
    assert e.value.hint == HINT
    assert e.value.where is not None and Path(e.value.where.filename) == Path(__file__)
    assert e.value.where.code == "def task_timing(self, task, ir, core, start, lane, pipelined):"
    assert e.value.context == "process 's0' on core 0, tile 0, sim time 0 cycles"


def test_numpy_integers_and_spans_are_whole_cycles():
    """int64 cycles (a model that computes with numpy) are whole cycles: the run goes through."""
    def returns(t, c, s, ln):
        end = np.int64(s) + np.int64(7)
        return end, end, [span_of(t, c, ln, s, int(end))]
    stats = linear(4).compile(cost_model=model(returns), compute_values=False).execute().stats()
    assert (stats.total_cycles, stats.task_count) == (6 * 7, 12)


def test_ptort_lab_s_own_models_are_not_wrapped():
    pinned = PinnedCosts()
    assert checked_timing(pinned) == pinned.task_timing
    npu = NpuCostModel()
    assert checked_timing(npu) == npu.task_timing
    user = model(lambda t, c, s, ln: (s, s, []))
    assert checked_timing(user) != user.task_timing
