"""Trace.save / Trace.load on bad input: a PtortError that names the path, says what is wrong and how to fix it."""
from __future__ import annotations

import errno
import gzip
import json
import math
import os

import pytest

from ptort_lab.errors import PtortTypeError, PtortValueError
from ptort_lab.sim import export
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


def save_error(path) -> PtortValueError:
    with pytest.raises(PtortValueError) as ei:
        small_trace().save(path)
    assert str(path) in str(ei.value)
    return ei.value


def test_save_where_the_folder_exists_but_takes_no_files():
    """/proc exists: the old message said "the folder '/proc' does not exist"; the real cause is said instead."""
    e = save_error("/proc/run.json")
    assert e.what == ("Trace.save: cannot write '/proc/run.json': the folder '/proc' does not take new files (a "
                      "special file system, like /proc) (No such file or directory, errno ENOENT).")
    assert "does not exist" not in str(e) and "Save into an ordinary folder you may write" in e.hint
    assert os.path.basename(e.where.filename) == "test_export_bad_input.py"  # the user's line, not a library's
    assert e.where.code == "small_trace().save(path)"


def test_save_permission_denied():
    """/sys refuses new files even to root: permission denied, with the folder to fix."""
    e = save_error("/sys/run.json")
    assert e.what == ("Trace.save: cannot write '/sys/run.json': permission denied (Permission denied, errno "
                      "EACCES).")
    assert "Save into a folder you may write" in e.hint and "permissions of '/sys'" in e.hint


def test_save_onto_a_full_device():
    """/dev/full is a device: refused before anything opens it (a pipe or a device may block or lose the trace;
    ENOSPC itself: test_each_os_error_is_reported_as_itself), and left as it was."""
    e = save_error("/dev/full")
    assert "cannot write '/dev/full': it is a character device, not a regular file" in e.what
    assert "Save to an ordinary file" in e.hint
    assert os.path.exists("/dev/full") and not os.path.isfile("/dev/full")


def test_save_under_a_file_and_with_a_long_name(tmp_path):
    (tmp_path / "notes.txt").write_text("x")
    e = save_error(tmp_path / "notes.txt" / "run.json")
    assert "a part of the path before the file name is a file, not a folder (Not a directory, errno ENOTDIR)" in e.what
    e = save_error(tmp_path / ("x" * 300 + ".json"))
    assert "the file name is too long for the file system" in e.what and "shorter file name" in e.hint


@pytest.mark.parametrize("code, words, fix", [
    (errno.EROFS, "the file system is read-only (Read-only file system, errno EROFS)", "writable file system"),
    (errno.EACCES, "permission denied (Permission denied, errno EACCES)", "Save into a folder you may write"),
    (errno.ENOSPC, "no space is left on the device", "Free some space"),
    (errno.EIO, "Input/output error (Input/output error, errno EIO)", "Check the path and that you may write there"),
])
def test_each_os_error_is_reported_as_itself(tmp_path, monkeypatch, code, words, fix):
    """Whatever the OS says while the file is written, the message says that, with the path and a fix."""
    def refuse(*_args, **_kw):
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(export.os, "open", refuse)
    e = save_error(tmp_path / "run.json")
    assert words in e.what and fix in e.hint
    assert isinstance(e.__cause__, OSError) and e.__cause__.errno == code


def test_a_failed_save_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    """The file is replaced whole or not at all: a write that fails half-way keeps the previous trace intact."""
    target = tmp_path / "run.json"
    old = small_trace().save(target).read_bytes()
    real_fdopen = os.fdopen

    class HalfWriter:
        def __init__(self, f):
            self.f = f

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

        def write(self, data):
            self.f.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(export.os, "fdopen", lambda fd, mode: HalfWriter(real_fdopen(fd, mode)))
    bigger = Trace(spans=[Span(0, "V", "k", i, i, i + 1) for i in range(50)], makespan=50)
    e = save_error(target)
    assert "no space is left on the device" in e.what
    assert target.read_bytes() == old and Trace.load(target) == small_trace()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]
    monkeypatch.undo()
    assert Trace.load(bigger.save(target)) == bigger


def test_save_through_a_symlink_writes_its_target(tmp_path):
    real = tmp_path / "real.json"
    real.write_text("old")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    small_trace().save(link)
    assert link.is_symlink() and Trace.load(real) == small_trace()


def test_load_errors_from_the_os(tmp_path, monkeypatch):
    """Reading: a path under a file, and a permission error, each named as such."""
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(PtortValueError) as ei:
        Trace.load(tmp_path / "notes.txt" / "run.json")
    assert "Trace.load: cannot read" in str(ei.value) and "is a file, not a folder" in str(ei.value)
    path = small_trace().save(tmp_path / "run.json")

    def refuse(*_args, **_kw):
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr("builtins.open", refuse)
    with pytest.raises(PtortValueError) as ei:
        Trace.load(path)
    assert f"Trace.load: cannot read '{path}': permission denied" in str(ei.value)
    assert f"chmod u+r '{path}'" in ei.value.hint


@pytest.mark.parametrize("path", [None, 42, ["run.json"]])
def test_save_needs_a_path(path):
    with pytest.raises(PtortTypeError) as ei:
        small_trace().save(path)
    msg = str(ei.value)
    assert "Trace.save(path) needs a file path" in msg and repr(path) in msg and "trace.save('run.json')" in msg


def test_export_of_a_bad_clock_or_index():
    with pytest.raises(PtortValueError, match=r"(?s)to_chrome_json\(\) got a Trace whose clock_hz is 0; expected a "
                                              r"clock frequency in Hz \(a finite number in 1..1e15\).*fix that field"):
        to_chrome_json(Trace(clock_hz=0))
    with pytest.raises(PtortValueError, match=r"spans\[0\].index is nan; expected None, a bool, an int \(64-bit\), "
                                              "a finite float"):
        to_chrome_json(Trace(spans=[Span(0, "V", "k", math.nan, 0, 1)]))
    with pytest.raises(PtortValueError, match=r"(?s)spans\[0\].index\[1\] is <object object at .*>; expected None"):
        to_chrome_json(Trace(spans=[Span(0, "V", "k", (1, object()), 0, 1)]))


# -- load: reading the file -------------------------------------------------------------------------------------------
def test_load_a_missing_file(tmp_path):
    target = tmp_path / "missing.json"
    with pytest.raises(PtortValueError) as ei:
        Trace.load(target)
    msg = str(ei.value)
    assert f"Trace.load: cannot read '{target}': it does not exist (No such file or directory, errno ENOENT)." in msg
    assert "Check the path" in msg
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
@pytest.mark.parametrize("content", [{"foo": 1}, "7", '"text"', {"traceEvents": "x"}])
def test_load_json_that_is_not_a_trace(tmp_path, content):
    msg = load_error(tmp_path / "other.json", content)
    assert "is not a ptort_lab trace (no otherData.ptort block and no list of trace events" in msg
    assert "ptort_lab reads the files Trace.save(path) and to_chrome_json() write" in msg


def test_load_a_list_that_is_not_of_events(tmp_path):
    """A bare JSON list is Chrome's array format: its items must be event objects."""
    msg = load_error(tmp_path / "other.json", [1, 2, 3])
    assert "it is not a Chrome trace ptort_lab can read: traceEvents[0] is 1; expected an event object." in msg
    assert "not written by ptort_lab (no otherData.ptort block)" in msg


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
    assert "is not a valid ptort_lab trace: otherData.ptort.makespan is missing; expected a value" in msg
    assert "save it again with trace.save(path)" in msg


def test_load_a_stall_without_args(tmp_path):
    d = doc()
    i = next(i for i, ev in enumerate(d["traceEvents"]) if ev.get("cat") == "stall")
    del d["traceEvents"][i]["args"]
    msg = load_error(tmp_path / "run.json", d)
    assert f"is not a valid ptort_lab trace: traceEvents[{i}].args is missing; expected an object." in msg


@pytest.mark.parametrize("change, words", [
    (lambda d: d["traceEvents"].append(5), "traceEvents[11] is 5; expected an event object."),
    (lambda d: d.__setitem__("traceEvents", {}), "traceEvents is {}; expected a list of events."),
    (lambda d: d["otherData"]["ptort"].__setitem__("clock_hz", "fast"),
     "otherData.ptort.clock_hz is 'fast'; expected a clock frequency in Hz"),
    (lambda d: d["otherData"]["ptort"].__setitem__("sample_cycles", []),
     "otherData.ptort.sample_cycles is a list of 0; expected one cycle per counter (C) event: 1."),
    (lambda d: d["otherData"]["ptort"].__setitem__("channels", 3), "otherData.ptort.channels is 3; expected a list."),
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
    assert "the given trace JSON text: it is not a Chrome trace ptort_lab can read: traceEvents[0].ts is" in msg
    assert "expected a finite number of µs." in msg and "not written by ptort_lab" in msg


def test_load_of_bytes_and_text_names_the_source():
    with pytest.raises(PtortValueError, match="the given trace bytes: it is not JSON text"):
        load_chrome_json(b"\x00\x01")
    with pytest.raises(PtortValueError, match="the given trace JSON text: it is not JSON text"):
        load_chrome_json("{not json")


def test_errors_still_are_value_errors(tmp_path):
    """Callers catching the builtin ValueError (as before) keep working."""
    with pytest.raises(ValueError):
        Trace.load(tmp_path / "missing.json")
