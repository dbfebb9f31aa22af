"""Foreign traces, round 30: whose a file is comes from its parsed structure (not from "ptort" anywhere in its text),
and every counter series has a name of its own, its samples in time order."""
from __future__ import annotations

import json

import pytest

from ptort_lab import Trace
from ptort_lab.sim.trace import Sample, Span

# torch.profiler-style epoch times (µs since 1970, to the ns): 100 ns apart, closer than a float holds there
EPOCH_SPANS = ('{"ph":"X","name":"a","pid":1,"tid":1,"ts":1712667379478076.150,"dur":0.1},'
               '{"ph":"X","name":"b","pid":1,"tid":1,"ts":1712667379478076.250,"dur":0.1},'
               '{"ph":"X","name":"c","pid":1,"tid":1,"ts":1712667379478076.350,"dur":0.1}')


# -- bug 1: "ptort" in a foreign trace's text does not make it ours ----------------------------------------------------
@pytest.mark.parametrize("text", [
    '[' + EPOCH_SPANS + ',{"ph":"M","name":"thread_name","pid":1,"tid":1,"args":{"name":"ptort"}}]',
    '[' + EPOCH_SPANS + ',{"ph":"i","name":"ptort","pid":1,"tid":1,"ts":1712667379478076.150}]',
    '[' + EPOCH_SPANS + ',{"ph":"i","name":"mark","pid":1,"tid":1,"ts":1712667379478076.150,"args":{"ptort":1}}]',
    '{"otherData":{"tool":"ptort"},"traceEvents":[' + EPOCH_SPANS + ']}',
    '{"otherData":{"ptort_lab":{"ptort":true}},"traceEvents":[' + EPOCH_SPANS + ']}',
], ids=["thread-name", "event-name", "args-key", "otherData-value", "nested-block"])
def test_a_foreign_trace_that_says_ptort_keeps_its_epoch_times_to_the_ns(text: str):
    """The spans start 0, 100 and 200 ns after the first, as without the mention (the old test of the raw text read
    them as floats, all three at 0)."""
    for given in (text, text.encode()):
        spans = Trace.load(given).spans
        assert [(s.name, s.start, s.end) for s in spans] == [("a", 0, 100), ("b", 100, 200), ("c", 200, 300)]


def test_a_ptort_lab_trace_whose_ptort_key_is_escaped_still_loads_equal():
    """The structure, not the spelling, makes a file ours: a JSON tool may write the key as "\\u0070tort". Its ts
    beyond 2**32 µs must be read as the floats save wrote (read exactly, they were refused as edited times)."""
    trace = Trace(spans=[Span(0, "pipe", "t", None, 5_000_000_000_123, 5_000_000_000_456, 0, "p", -1)],
                  clock_hz=1e9, processes=["p"])
    text = trace.to_chrome_json()
    assert text.count('"ptort"') == 1
    back = Trace.load(text.replace('"ptort"', '"\\u0070tort"'))
    assert back == trace and back.spans[0].start == 5_000_000_000_123


# -- bug 2: one name per counter series, samples in time order ---------------------------------------------------------
def counters(*events: tuple[str, int, float, dict[str, int]]) -> str:
    """A foreign trace of C events, each (name, pid, ts in µs, args)."""
    return json.dumps([{"ph": "C", "name": n, "pid": pid, "ts": ts, "args": args} for n, pid, ts, args in events])


def test_a_counter_literally_named_like_a_key_series_is_not_merged_with_it():
    """Counter "a" (keys x, y) would name its x series "a.x", the name of counter "a.x": that one keeps its own
    name, a's x series becomes "a.x #2"; each series' samples are its own, in time order."""
    t = Trace.load(counters(("a", 1, 0, {"x": 1, "y": 2}), ("a", 1, 10, {"x": 3, "y": 4}),
                            ("a.x", 1, 5, {"v": 100}), ("a.x", 1, 15, {"v": 200})))
    assert t.occupancy("a.x") == [(5000, 100), (15000, 200)]
    assert t.occupancy("a.x #2") == [(0, 1), (10000, 3)]
    assert t.samples == [Sample("a.x #2", 0, 1), Sample("a.x #2", 10000, 3), Sample("a.y", 0, 2),
                         Sample("a.y", 10000, 4), Sample("a.x", 5000, 100), Sample("a.x", 15000, 200)]


@pytest.mark.parametrize("literal_first", [False, True])
def test_a_counter_literally_named_like_a_pid_suffix_stays_apart_from_that_pid(literal_first: bool):
    """pid 2's "q" would be "q (pid 2)", the name of pid 3's counter: pid 3's keeps it wherever it comes in the
    file, pid 2's is "q (pid 2) #2", and none of the three series is merged."""
    events = [("q", 1, 0, {"slots": 1}), ("q", 2, 1, {"slots": 2}), ("q (pid 2)", 3, 2, {"slots": 99})]
    t = Trace.load(counters(*(events[2:] + events[:2] if literal_first else events)))
    assert sorted(t.samples) == [Sample("q (pid 1)", 0, 1), Sample("q (pid 2)", 2000, 99),
                                 Sample("q (pid 2) #2", 1000, 2)]


def test_two_generated_names_that_meet_are_numbered_past_every_wanted_name():
    """Counter "a"'s key "b.c" and counter "a.b"'s key "c" both make "a.b.c": the first in the file keeps it; the
    other skips "a.b.c #2", the own name of a third counter, and becomes "a.b.c #3"."""
    t = Trace.load(counters(("a", 1, 0, {"b.c": 1, "z": 2}), ("a.b", 1, 1, {"c": 3, "z": 4}),
                            ("a.b.c #2", 1, 2, {"n": 5})))
    assert t.samples == [Sample("a.b.c", 0, 1), Sample("a.z", 0, 2), Sample("a.b.c #3", 1000, 3),
                         Sample("a.b.z", 1000, 4), Sample("a.b.c #2", 2000, 5)]


def test_the_first_series_in_the_file_keeps_a_generated_name_even_if_its_counter_came_later():
    """Counter "a" comes first but gives key "b.c" a value only at 2 µs; counter "a.b"'s key "c" has one at 1 µs, so
    "a.b.c" is a.b's, and a's is "a.b.c #2"."""
    t = Trace.load(counters(("a", 1, 0, {"y": 1}), ("a.b", 1, 1, {"c": 2, "w": 3}), ("a", 1, 2, {"y": 4, "b.c": 5})))
    assert t.samples == [Sample("a.y", 0, 1), Sample("a.y", 2000, 4), Sample("a.b.c", 1000, 2),
                         Sample("a.b.w", 1000, 3), Sample("a.b.c #2", 2000, 5)]


def test_samples_of_a_series_are_in_time_order_with_equal_times_in_file_order():
    """Chrome's format does not sort events: a series given at 30, 10, 10, 20 µs steps at 0, 0, 10,000 and 20,000 ns
    (rebased to 10 µs), its two samples at 10 µs in file order (2 before 5); another series keeps its own order."""
    t = Trace.load(counters(("q", 1, 30, {"n": 1}), ("r", 1, 25, {"n": 7}), ("q", 1, 10, {"n": 2}),
                            ("q", 1, 10, {"n": 5}), ("r", 1, 15, {"n": 6}), ("q", 1, 20, {"n": 3})))
    assert t.occupancy("q") == [(0, 2), (0, 5), (10000, 3), (20000, 1)]
    assert t.occupancy("r") == [(5000, 6), (15000, 7)]
    assert t.samples[:4] == [Sample("q", 0, 2), Sample("q", 0, 5), Sample("q", 10000, 3), Sample("q", 20000, 1)]
    assert t.makespan == 20000
