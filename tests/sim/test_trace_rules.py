"""check_trace: the one set of rules every Trace reader relies on (save, load, plots, stats), on hand-made Traces."""
from __future__ import annotations

import math

import numpy as np
import pytest

from ptort_lab.errors import PtortValueError
from ptort_lab.sim.export import load_chrome_json, to_chrome_json
from ptort_lab.sim.stats import compute_stats
from ptort_lab.sim.trace import MAX_CYCLES, Sample, Span, Stall, Trace, check_trace

HINT = "A Trace from a run always passes; fix that field of the hand-made Trace"


def refusal(trace: Trace) -> PtortValueError:
    with pytest.raises(PtortValueError) as ei:
        check_trace(trace, "Trace.save")
    return ei.value


@pytest.mark.parametrize("trace, text", [
    (Trace(spans=[Span(0, "V", "k", 0, 0, 10**400)]),
     "Trace.save got a Trace whose spans[0].end is an int of 401 digits; expected a whole, finite number of cycles "
     ">= 0 (an int up to 2**53)."),
    (Trace(spans=[Span(0, "V", "k", 0, 5, 4)]),
     "Trace.save got a Trace whose spans[0].end is 4; expected a number of cycles >= the span's start 5."),
    (Trace(spans=[Span(0, "V", "k", 0, 1.5, 4)]), "spans[0].start is 1.5; expected a whole, finite number"),
    (Trace(spans=[Span(0, "V", "k", 0, math.nan, 4)]), "spans[0].start is nan; expected a whole"),
    (Trace(spans=[Span(-1, "V", "k", 0, 0, 4)]), "spans[0].core is -1; expected a core number"),
    (Trace(spans=[Span(0, None, "k", 0, 0, 4)]), "spans[0].lane is None; expected a string of at most 4096"),
    (Trace(spans=[Span(0, "V", "k" * 5000, 0, 0, 4)]), "spans[0].name is 'kkkkk"),
    (Trace(spans=[Span(0, "V", "k", 0, 0, 4, -3)]), "spans[0].bytes is -3; expected an int in 0..2**63-1."),
    (Trace(spans=[Span(0, "V", "k", 0, 0, 4, task_id=[1])]), "spans[0].task_id is [1]; expected a task id"),
    (Trace(spans=[Span(0, "V", "k", {1, 2}, 0, 4)]), "spans[0].index is {1, 2}; expected None, a bool, an int"),
    (Trace(spans=[(0, "V", "k", 0, 0, 4)]), "spans[0] is (0, 'V', 'k', 0, 0, 4); expected a Span(core, lane, "),
    (Trace(samples=[Sample("c", -1, 0)]), "samples[0].time is -1; expected a whole, finite number of cycles"),
    (Trace(samples=[Sample("c", 0, 2**63)]), "samples[0].occupancy is 9223372036854775808; expected an int in"),
    (Trace(stalls=[Stall("p", "wait", 9, 3)]), "stalls[0].end is 3; expected a number of cycles >= the stall's "
                                               "start 9."),
    (Trace(stalls=[Stall("p", 7, 0, 3)]), "stalls[0].reason is 7; expected a string of at most 4096 characters."),
    (Trace(makespan=MAX_CYCLES + 1), "makespan is 9007199254740993; expected a whole, finite number of cycles"),
    (Trace(clock_hz=float("inf")), "clock_hz is inf; expected a clock frequency in Hz (a finite number in 1..1e15)."),
    (Trace(clock_hz=True), "clock_hz is True; expected a clock frequency in Hz"),
    (Trace(mode="serial"), "mode is 'serial'; expected 'pipeline' or 'data-parallel'."),
    (Trace(processes="p"), "processes is 'p'; expected a list."),
    (Trace(channels={"c": -1}), "channels['c'] is -1; expected an int in 0..2**63-1."),
    (Trace(cores={"0": "core0"}), "cores key '0' is '0'; expected a core number"),
    (Trace(process_end={"p": 10**400}), "process_end['p'] is an int of 401 digits; expected a whole"),
], ids=lambda v: None)
def test_hand_made_traces_that_break_a_rule(trace, text):
    """Each rule names the field, shows the value and says what it must hold; the hint says how to fix it."""
    e = refusal(trace)
    assert text in e.what
    # (times past 2**53 have their own hint: a run can get there too, with a huge latency)
    assert e.hint.startswith((HINT, "A trace keeps times up to 2**53 cycles", "Leave makespan out"))


def test_numpy_numbers_are_accepted_as_plain_values():
    """numpy ints and floats (common in hand-made traces) are made plain, so export writes them; the original is
    left as it was."""
    spans = [Span(np.int64(1), "V", "k", np.int32(3), np.int64(0), np.int64(10), np.uint64(64), "p", np.int16(0)),
             Span(0, "V", "k", (np.int64(1), np.float32(0.5)), 10, 20)]
    trace = Trace(spans=spans, samples=[Sample("c", np.int64(5), np.int8(1))], makespan=np.int64(20),
                  clock_hz=np.float64(1e9), channels={"c": np.int64(2)}, cores={np.int64(1): "core1"})
    plain = check_trace(trace, "test")
    assert plain is not trace and plain == trace and trace.spans[0].start.__class__ is np.int64
    assert [type(v) for v in plain.spans[0]] == [int, str, str, int, int, int, int, str, int]
    assert type(plain.spans[1].index[1]) is float and type(plain.makespan) is int
    assert load_chrome_json(to_chrome_json(trace)) == plain
    assert check_trace(plain, "test") is plain  # nothing left to change: the same object, no copy


def test_a_trace_from_a_run_passes_unchanged(stages):
    from tests.sim.test_export import run_trace
    trace = run_trace(stages)
    assert check_trace(trace, "test") is trace


def test_the_limits_themselves_pass():
    """The largest values allowed load, export, and compute stats without overflow."""
    trace = Trace(spans=[Span(2**31 - 1, "V", "k", -2**63, 0, MAX_CYCLES, 2**63 - 1, "p", 2**63 - 1)],
                  samples=[Sample("c", MAX_CYCLES, 2**63 - 1)], makespan=MAX_CYCLES, clock_hz=1.0,
                  channels={"c": 2**63 - 1})
    assert check_trace(trace, "test") is trace
    assert load_chrome_json(to_chrome_json(trace)) == trace
    stats = compute_stats(trace, 1, {})
    assert stats.total_cycles == MAX_CYCLES and stats.time_us == MAX_CYCLES * 1e6
    assert load_chrome_json(to_chrome_json(Trace(makespan=5, clock_hz=1e15))).clock_hz == 1e15


def test_save_and_to_chrome_json_refuse_with_their_own_name(tmp_path):
    bad = Trace(spans=[Span(0, "V", "k", 0, 0, 10**400)])
    with pytest.raises(PtortValueError, match=r"^Trace.save got a Trace whose spans\[0\].end"):
        bad.save(tmp_path / "run.json")
    assert not (tmp_path / "run.json").exists()
    with pytest.raises(PtortValueError, match=r"^to_chrome_json\(\) got a Trace whose spans\[0\].end"):
        bad.to_chrome_json()
