"""Trace.save / Trace.load on bad input: a PtortError that names the path, says what is wrong and how to fix it."""
from __future__ import annotations

import gzip
import json
import math

import pytest

from ptort_lab.errors import PtortTypeError, PtortValueError
from ptort_lab.sim.export import load_chrome_json, to_chrome_json
from ptort_lab.sim.trace import Sample, Span, Stall, Trace


def small_trace() -> Trace:
    return Trace(spans=[Span(0, "V", "k", 0, 0, 100, 64, "p", 0)], samples=[Sample("c", 10, 1)],
                 stalls=[Stall("p", "backpressure", 100, 150)], makespan=150, clock_hz=1e9, channels={"c": 1},
                 cores={0: "core0"}, processes=["p"])


def doc() -> dict:
    return json.loads(to_chrome_json(small_trace()))


def load_error(path, content, kind=PtortValueError) -> str:
    """Write ``content`` (bytes, text or a JSON-able value) to ``path``, load it and return the error message."""
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content if isinstance(content, str) else json.dumps(content))
    with pytest.raises(kind) as ei:
        Trace.load(path)
    msg = str(ei.value)
    assert str(path) in msg
    return msg


# -- save -----------------------------------------------------------------------------------------------------------
def test_save_into_a_missing_folder(tmp_path):
    target = tmp_path / "nope" / "run.json"
    with pytest.raises(PtortValueError) as ei:
        small_trace().save(target)
    msg = str(ei.value)
    assert str(target) in msg and "does not exist" in msg and "mkdir" in msg
    assert isinstance(ei.value.__cause__, FileNotFoundError)


def test_save_onto_a_folder(tmp_path):
    with pytest.raises(PtortValueError) as ei:
        small_trace().save(tmp_path)
    msg = str(ei.value)
    assert str(tmp_path) in msg and "is a folder" in msg and "file name inside it" in msg
    assert isinstance(ei.value.__cause__, IsADirectoryError)


@pytest.mark.parametrize("path", [None, 42, ["run.json"]])
def test_save_needs_a_path(path):
    with pytest.raises(PtortTypeError) as ei:
        small_trace().save(path)
    msg = str(ei.value)
    assert "Trace.save(path) needs a file path" in msg and repr(path) in msg and "trace.save('run.json')" in msg


def test_export_of_a_bad_clock_or_index():
    with pytest.raises(PtortValueError, match="(?s)clock_hz is 0.*Set trace.clock_hz"):
        to_chrome_json(Trace(clock_hz=0))
    with pytest.raises(PtortValueError, match="non-finite index"):
        to_chrome_json(Trace(spans=[Span(0, "V", "k", math.nan, 0, 1)]))
    with pytest.raises(PtortTypeError, match="(?s)span index .* of type object.*Use ints, strings or tuples"):
        to_chrome_json(Trace(spans=[Span(0, "V", "k", object(), 0, 1)]))


# -- load: reading the file -------------------------------------------------------------------------------------------
def test_load_a_missing_file(tmp_path):
    target = tmp_path / "missing.json"
    with pytest.raises(PtortValueError) as ei:
        Trace.load(target)
    msg = str(ei.value)
    assert str(target) in msg and "does not exist" in msg and "Check the path" in msg
    assert isinstance(ei.value.__cause__, FileNotFoundError)


def test_load_a_folder(tmp_path):
    with pytest.raises(PtortValueError) as ei:
        Trace.load(tmp_path)
    msg = str(ei.value)
    assert str(tmp_path) in msg and "is a folder" in msg and ".json.gz file in it" in msg


@pytest.mark.parametrize("arg", [None, 3.5])
def test_load_needs_a_path_text_or_bytes(arg):
    with pytest.raises(PtortTypeError) as ei:
        Trace.load(arg)
    msg = str(ei.value)
    assert "needs a file path" in msg and "JSON text or bytes" in msg and repr(arg) in msg
    assert "Trace.load('run.json')" in msg


def test_load_non_json_text(tmp_path):
    msg = load_error(tmp_path / "notes.json", "hello, not json\n")
    assert "is not JSON text" in msg and "Trace.save" in msg


def test_load_a_binary_file(tmp_path):
    msg = load_error(tmp_path / "image.png", b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    assert "is not JSON text" in msg and "utf-8" in msg and "Trace.save" in msg


def test_load_a_truncated_gz(tmp_path):
    data = gzip.compress(to_chrome_json(small_trace()).encode())
    msg = load_error(tmp_path / "cut.json.gz", data[: len(data) // 2])
    assert "damaged gzip file" in msg and "save it again" in msg


def test_load_a_gz_with_a_bad_header(tmp_path):
    msg = load_error(tmp_path / "bad.json.gz", b"\x1f\x8b" + b"garbage" * 10)
    assert "damaged gzip file" in msg and "save it again" in msg


# -- load: what the JSON holds ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("content", [{"foo": 1}, [1, 2, 3], "7", '"text"', {"traceEvents": "x"}])
def test_load_json_that_is_not_a_trace(tmp_path, content):
    msg = load_error(tmp_path / "other.json", content)
    assert "is not a ptort_lab trace" in msg and "Only files written by Trace.save(path) or to_chrome_json()" in msg


def test_load_an_object_names_its_keys(tmp_path):
    assert "keys ['foo']" in load_error(tmp_path / "other.json", {"foo": 1})


def test_load_a_trace_of_another_format(tmp_path):
    d = doc()
    d["otherData"]["ptort"]["format"] = "something-else"
    msg = load_error(tmp_path / "run.json", d)
    assert "is not a ptort_lab trace" in msg and "'something-else'" in msg and "Trace.save" in msg


def test_load_a_trace_from_a_newer_version(tmp_path):
    d = doc()
    d["otherData"]["ptort"]["version"] = 99
    msg = load_error(tmp_path / "run.json", d)
    assert "newer ptort_lab" in msg and "version 99" in msg and "Upgrade ptort_lab" in msg


def test_load_a_trace_with_a_bad_version(tmp_path):
    d = doc()
    d["otherData"]["ptort"]["version"] = "1"
    msg = load_error(tmp_path / "run.json", d)
    assert "not a valid ptort_lab trace" in msg and "version is '1'" in msg


def test_load_a_trace_without_makespan(tmp_path):
    d = doc()
    del d["otherData"]["ptort"]["makespan"]
    msg = load_error(tmp_path / "run.json", d)
    assert "is not a valid ptort_lab trace: otherData.ptort: missing key 'makespan'" in msg
    assert "save it again with trace.save(path)" in msg


def test_load_a_stall_without_args(tmp_path):
    d = doc()
    i = next(i for i, ev in enumerate(d["traceEvents"]) if ev.get("cat") == "stall")
    del d["traceEvents"][i]["args"]
    msg = load_error(tmp_path / "run.json", d)
    assert f"is not a valid ptort_lab trace: traceEvents[{i}]: missing key 'process'" in msg


@pytest.mark.parametrize("change, words", [
    (lambda d: d["traceEvents"].append(5), "expected an event object"),
    (lambda d: d.__setitem__("traceEvents", {}), "traceEvents: expected a list of events"),
    (lambda d: d["otherData"]["ptort"].__setitem__("clock_hz", "fast"), "clock_hz must be a number > 0"),
    (lambda d: d["otherData"]["ptort"].__setitem__("sample_cycles", []), "1 counter events but 0 sample_cycles"),
    (lambda d: d["otherData"]["ptort"].__setitem__("channels", 3), "otherData.ptort:"),
])
def test_load_a_malformed_ptort_trace(tmp_path, change, words):
    d = doc()
    change(d)
    msg = load_error(tmp_path / "run.json", d)
    assert "is not a valid ptort_lab trace" in msg and words in msg


@pytest.mark.parametrize("ts", ["abc", None, [1]])
def test_load_a_chrome_trace_with_a_bad_ts(ts):
    text = json.dumps({"traceEvents": [{"ph": "X", "name": "job", "pid": 1, "tid": 7, "ts": ts, "dur": 1}]})
    with pytest.raises(PtortValueError) as ei:
        load_chrome_json(text)
    msg = str(ei.value)
    assert "the given trace JSON text" in msg and "not a valid Chrome trace: traceEvents[0]" in msg
    assert "ts must be a finite number" in msg and "Trace.save" in msg
    assert isinstance(ei.value.__cause__, ValueError)


def test_load_of_bytes_and_text_names_the_source():
    with pytest.raises(PtortValueError, match="the given trace bytes: it is not JSON text"):
        load_chrome_json(b"\x00\x01")
    with pytest.raises(PtortValueError, match="the given trace JSON text: it is not JSON text"):
        load_chrome_json("{not json")


def test_errors_still_are_value_errors(tmp_path):
    """Callers catching the builtin ValueError (as before) keep working."""
    with pytest.raises(ValueError):
        Trace.load(tmp_path / "missing.json")
