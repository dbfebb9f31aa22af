"""Trace.load refuses a saved file whose spans' or stalls' ts/dur were edited away from their exact cycles (the
file would show one time and load another); unedited and time-sorted files still load."""
from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

import pytest

from ptort_lab.errors import PtortValueError
from ptort_lab.sim.machine import MIN_CLOCK_HZ
from ptort_lab.sim.trace import MAX_CYCLES, Span, Stall, Trace
from ptort_lab.sim.trace_files import NsClock
from ptort_lab.spec_pipeline import build

HINT = ("A span's or stall's ts and dur are drawn from its args.start_cycles and args.end_cycles, the exact times "
        "ptort_lab loads, so they must change together: undo the edit of ts/dur, or change the loaded Trace in "
        "Python and save it again with trace.save(path).")


@pytest.fixture(scope="module")
def run() -> Trace:
    """A real pipeline run's trace (spans, stalls and samples at 1.8 GHz)."""
    trace = build(depth=2, tile=(32, 32), tiles=3).compile().execute().trace()
    assert trace.spans and trace.stalls and trace.samples
    return trace


@pytest.fixture
def saved(run: Trace, tmp_path: Path) -> dict[str, Any]:
    """The run's file as Trace.save wrote it, parsed."""
    doc: dict[str, Any] = json.loads(run.save(tmp_path / "run.json").read_text())
    return doc


def first(doc: dict[str, Any], cat: str, fractional: bool = True) -> int:
    """The index of the first X event of ``cat`` (with a ts and dur that are not whole µs, when ``fractional``)."""
    return next(i for i, e in enumerate(doc["traceEvents"]) if e.get("cat") == cat
                and (not fractional or (type(e["ts"]) is float and type(e["dur"]) is float)))


def refused(doc: dict[str, Any]) -> PtortValueError:
    with pytest.raises(PtortValueError) as ei:
        Trace.load(json.dumps(doc))
    return ei.value


PREFIX = "Cannot load the given trace JSON text: it is not a valid ptort_lab trace: "


def test_an_unedited_saved_file_loads_equal(run: Trace, tmp_path: Path):
    assert Trace.load(run.save(tmp_path / "run.json")) == run
    assert Trace.load(run.save(tmp_path / "run.json.gz")) == run


def test_a_file_sorted_by_ts_loads_the_same_records(run: Trace, saved: dict[str, Any]):
    """``jq '.traceEvents |= sort_by(.ts)'`` (events without a ts first, then stable): every event keeps its own
    ts, so nothing is refused; spans and stalls come back in the file's new order."""
    saved["traceEvents"].sort(key=lambda e: e.get("ts", float("-inf")))
    ns = NsClock(run.clock_hz).ns
    expected = dataclasses.replace(run, spans=sorted(run.spans, key=lambda sp: ns(sp.start)),
                                   stalls=sorted(run.stalls, key=lambda st: ns(st.start)))
    assert list(expected.spans) != list(run.spans)  # (the sort moved some)
    assert Trace.load(json.dumps(saved)) == expected


def test_a_span_whose_ts_was_edited_is_refused(saved: dict[str, Any]):
    k = first(saved, "span")
    ev = saved["traceEvents"][k]
    was, start = ev["ts"], ev["args"]["start_cycles"]
    ev["ts"] = round(was + 1.0, 3)  # shifted 1 µs later, args untouched
    e = refused(saved)
    assert e.what == (f"{PREFIX}traceEvents[{k}].ts is {ev['ts']!r}; expected {was!r} (µs, the time of "
                      f"args.start_cycles {start}; the span's ts/dur disagree with its args: the file's times were "
                      "edited, and args.start_cycles holds the exact start).")
    assert e.hint == HINT


def test_a_span_whose_dur_was_edited_is_refused(saved: dict[str, Any]):
    k = first(saved, "span")
    ev = saved["traceEvents"][k]
    was, start, end = ev["dur"], ev["args"]["start_cycles"], ev["args"]["end_cycles"]
    ev["dur"] = round(was * 2, 3)
    e = refused(saved)
    assert e.what == (f"{PREFIX}traceEvents[{k}].dur is {ev['dur']!r}; expected {was!r} (µs, from args.start_cycles "
                      f"{start} to args.end_cycles {end}; the span's ts/dur disagree with its args: the file's times "
                      "were edited, and args.end_cycles holds the exact end).")
    assert e.hint == HINT


def test_a_stall_whose_ts_was_edited_is_refused(saved: dict[str, Any]):
    k = first(saved, "stall", fractional=False)
    ev = saved["traceEvents"][k]
    was, start = ev["ts"], ev["args"]["start_cycles"]
    ev["ts"] = was + 0.5
    e = refused(saved)
    assert e.what == (f"{PREFIX}traceEvents[{k}].ts is {ev['ts']!r}; expected {was!r} (µs, the time of "
                      f"args.start_cycles {start}; the stall's ts/dur disagree with its args: the file's times were "
                      "edited, and args.start_cycles holds the exact start).")
    assert e.hint == HINT


def test_a_ts_off_by_one_float_step_is_refused(saved: dict[str, Any]):
    """Exact, as save writes it: no tolerance lets a nearby time through."""
    k = first(saved, "span")
    ev = saved["traceEvents"][k]
    was = ev["ts"]
    ev["ts"] = math.nextafter(was, math.inf)
    assert f"traceEvents[{k}].ts is {ev['ts']!r}; expected {was!r} (µs" in refused(saved).what


@pytest.mark.parametrize("value, shown", [(None, "missing"), ("0", "'0'"), (False, "False")])
def test_a_missing_or_non_number_ts_is_refused(saved: dict[str, Any], value: Any, shown: str):
    """A stall that starts at cycle 0 is drawn at ts 0: a string or a bool there is not a time, however it compares."""
    k = next(i for i, e in enumerate(saved["traceEvents"]) if e.get("cat") == "stall" and e["ts"] == 0)
    if value is None:
        del saved["traceEvents"][k]["ts"]
    else:
        saved["traceEvents"][k]["ts"] = value
    assert refused(saved).what.startswith(f"{PREFIX}traceEvents[{k}].ts is {shown}; expected 0 (µs, the time of "
                                          "args.start_cycles 0;")


def test_whole_and_huge_times_still_load(tmp_path: Path):
    """Whole µs are written as ints, and a time past 2**53 µs (the slowest clock, the last cycle) as save's float or
    int: both are compared exactly and load."""
    whole = Trace(spans=[Span(0, "V", "k", 0, 1000, 3000, 0, "p", 0)], stalls=[Stall("p", "wait", 0, 1000)],
                  processes=["p"], clock_hz=1e9)
    doc = json.loads(whole.to_chrome_json())
    assert [(e["ts"], e["dur"]) for e in doc["traceEvents"] if e["ph"] == "X"] == [(1, 2), (0, 1)]
    assert Trace.load(whole.save(tmp_path / "whole.json")) == whole
    huge = Trace(spans=[Span(0, "V", "k", 0, MAX_CYCLES - 3, MAX_CYCLES, 0, "p", 0)], processes=["p"],
                 clock_hz=MIN_CLOCK_HZ * 3)
    assert Trace.load(huge.save(tmp_path / "huge.json")) == huge


def test_a_foreign_trace_is_not_checked_against_cycles():
    """A Chrome trace from another tool has no exact cycles: its ts/dur are the times."""
    loaded = Trace.load(json.dumps([{"ph": "X", "name": "a", "ts": 1.25, "dur": 2.5, "pid": 0, "tid": 0,
                                     "args": {"start_cycles": 7, "end_cycles": 9}}]))
    assert [(sp.start, sp.end) for sp in loaded.spans] == [(0, 2500)]
