"""Trace files, round 6: samples of re-sorted files, overlapping spans, safe saving, steady-state files, foreign
traces (epoch times, counters, threads, string pids, BOM, unclosed arrays), paths, and odd names in plots."""
from __future__ import annotations

import errno
import json
import os
import stat
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from ptort_lab import Channel, Dense, PinnedCosts, connect, consume, for_each, kernel, process, send, task
from ptort_lab.errors import PtortTypeError, PtortValueError
from ptort_lab.sim import export
from ptort_lab.sim.trace import Sample, Span, Trace
from ptort_lab.sim.trace_files import WholeRun
from ptort_lab.viz import compare, plot_timeline
from ptort_lab.viz.colors import fnv1a32
from ptort_lab.viz.figures import figure_svg
from ptort_lab.viz.gantt import overlap_pct
from tests.source_lines import here, located


def sampled_trace() -> Trace:
    """Two channels stepping at cycles whose ns differ, at 1.8 GHz (several cycles share one ns)."""
    samples = [Sample("a", 0, 0), Sample("b", 0, 0), Sample("a", 5, 1), Sample("b", 3, 1), Sample("a", 9, 2),
               Sample("b", 900, 2), Sample("a", 901, 1), Sample("b", 2000, 0)]
    return Trace(spans=[Span(0, "V", "k", 0, 0, 2000)], samples=samples, channels={"a": 2, "b": 2}, makespan=2000)


def refused(arg: Any, **kw: Any) -> PtortValueError:
    with pytest.raises(PtortValueError) as ei:
        Trace.load(arg, **kw)
    return ei.value


# -- 1: samples are paired with their own ts -----------------------------------------------------------------------
def test_a_file_sorted_by_time_keeps_every_sample_at_its_cycle():
    trace = sampled_trace()
    doc = json.loads(trace.to_chrome_json())
    doc["traceEvents"].sort(key=lambda e: e.get("ts", -1))  # what jq sort_by(.ts) does: stable
    loaded = Trace.load(json.dumps(doc))
    assert loaded.samples == trace.samples  # the order of sample_cycles, the order they had
    assert loaded == trace


def test_a_c_event_whose_ts_matches_no_sample_cycle_is_refused():
    doc = json.loads(sampled_trace().to_chrome_json())
    k = next(i for i, e in enumerate(doc["traceEvents"]) if e["ph"] == "C" and e["ts"] == 0.5)  # cycle 900
    doc["traceEvents"][k]["ts"] = 0.25
    e = refused(json.dumps(doc))
    assert e.what == (f"Cannot load the given trace JSON text: it is not a valid ptort_lab trace: traceEvents[{k}].ts "
                      "is 0.25; expected the time of an otherData.ptort.sample_cycles entry not used by an earlier C "
                      "event (the C events' ts disagree with sample_cycles: the file's times were edited).")
    assert e.hint.startswith("The trace was edited or cut short after it was written")


# -- 2: overlapping spans export in O(n log n), with the same bytes ---------------------------------------------------
def staircase(n: int) -> Trace:
    """n spans on one thread, each overlapping all the later ones (async work logged as X events)."""
    return Trace.load(json.dumps([{"ph": "X", "name": "req", "ts": i, "dur": 10**6, "pid": 0, "tid": 0}
                                  for i in range(n)]))


def old_nest(items: list[tuple[int, int, int]]) -> dict[int, int]:
    """The level walk _nest did before (quadratic when the levels pile up): the reference for the levels."""
    stacks: list[list[int]] = []
    level: dict[int, int] = {}
    for start, end, key in sorted(items, key=lambda x: x[0]):
        k = 0
        while True:
            if k == len(stacks):
                stacks.append([])
            stack = stacks[k]
            while stack and stack[-1] <= start:
                stack.pop()
            if not stack or end <= stack[-1]:
                stack.append(end)
                level[key] = k
                break
            k += 1
    return level


def test_nest_gives_the_levels_of_the_level_walk():
    import random
    rnd = random.Random(6)
    for _ in range(500):
        span = rnd.choice([5, 50, 500])
        items = []
        for key in range(rnd.randint(0, 80)):
            s = rnd.randint(0, span)
            items.append((s, s + rnd.choice([0, 1, rnd.randint(0, span), rnd.randint(0, 4 * span)]), key))
        assert export._nest(items) == old_nest(items)


def test_a_staircase_of_overlapping_spans_exports_in_n_log_n():
    t0 = time.perf_counter()
    text = staircase(20_000).to_chrome_json()  # 25 s before (the level walk), about 1 s now
    assert time.perf_counter() - t0 < 10
    assert '"0 #20000"' in text
    small = staircase(300)
    saved = export._nest_many
    try:  # the same file through the level walk alone
        export._nest_many = old_nest  # type: ignore[assignment]
        before = small.to_chrome_json()
    finally:
        export._nest_many = saved
    assert small.to_chrome_json() == before


# -- 3 and 9: saving never destroys the old file, and keeps its mode ------------------------------------------------
def test_a_folder_that_takes_no_new_files_is_refused_and_the_old_file_kept(tmp_path, monkeypatch):
    path = tmp_path / "run.json"
    old = Trace(spans=[Span(0, "V", "k", i, i, i + 1) for i in range(50)], makespan=50)
    old.save(path)
    before = path.read_bytes()
    real_open = os.open

    def no_new_files(p: Any, flags: int, *a: Any) -> int:
        if ".ptort-" in str(p):
            raise PermissionError(errno.EACCES, "Permission denied", str(p))
        return real_open(p, flags, *a)

    monkeypatch.setattr(export.os, "open", no_new_files)
    line = here() + 2
    with pytest.raises(PtortValueError) as ei:
        Trace(spans=old.spans[:3], makespan=50).save(path)
    assert ei.value.what == (
        f"Trace.save: cannot write '{path}': its folder '{tmp_path}' does not take new files (permission denied, "
        "errno EACCES), and the trace is only ever written to a new file renamed over the old one, so that a failed "
        "write cannot destroy the old file.")
    assert ei.value.hint == (f"Save into a folder you may write (e.g. trace.save('run.json') in your home folder), or "
                             f"make '{tmp_path}' writable (chmod u+w '{tmp_path}').")
    located(ei, line)
    assert path.read_bytes() == before


def test_a_resaved_file_keeps_its_permission_bits(tmp_path):
    path = tmp_path / "private.json"
    trace = Trace(spans=[Span(0, "V", "k", 0, 0, 1)])
    trace.save(path)
    os.chmod(path, 0o600)
    trace.save(path)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


# -- 5: a steady-state run's file says it is part of a run ----------------------------------------------------------
def steady_program() -> Any:
    load = kernel(name="load", cycles=100)(lambda: None)
    work = kernel(name="work", cycles=60)(lambda: None)
    ch = Channel(name="ch", depth=2)
    src = process("src").produces(ch).body(for_each(Dense[10_000](), lambda t: send(ch, task(load, [t], {}))))
    dst = process("dst").consumes(ch).body(consume(ch, lambda t: task(work, [t], {})))
    return connect(src, dst).compile(cost_model=PinnedCosts()).execute(steady_state=True)


def test_a_steady_state_trace_file_keeps_the_whole_run_and_compare_shows_it(tmp_path):
    program = steady_program()
    stats = program.stats()
    loaded = Trace.load(program.trace().save(tmp_path / "steady.json"))
    whole = loaded.whole_run  # type: ignore[attr-defined]
    assert whole == WholeRun(10_000, 4, stats.total_cycles, stats.overlap_pct, stats.steady_state.note)
    assert loaded.makespan == 460 and whole.cycles == 1_000_060
    table = compare(program, loaded, labels=("program", "from file")).texts[-1].get_text().splitlines()
    assert table[2].startswith("from file*     1,000,060    555.589")
    assert table[3] == "program speedup vs from file: 1.00x"
    assert table[-1] == ("* from file: steady-state run, figures for all 10,000 tiles; its timeline shows the "
                         "4-tile trace")
    assert Trace.load(loaded.to_chrome_json()).whole_run == whole  # type: ignore[attr-defined]


def test_a_bad_whole_run_in_a_file_is_refused():
    doc = json.loads(Trace(spans=[Span(0, "V", "k", 0, 0, 1)]).to_chrome_json())
    doc["otherData"]["ptort"]["whole_run"] = {"tiles": 4, "traced_tiles": 9, "cycles": 10, "overlap_pct": 5.0,
                                              "note": ""}
    assert refused(json.dumps(doc)).what.endswith(
        "otherData.ptort.whole_run.traced_tiles is 9; expected an int in 1..tiles (4).")


def test_a_tiny_speedup_is_not_printed_as_zero():
    fast = Trace(spans=[Span(0, "V", "k", 0, 0, 1_000_000)])
    slow = Trace(spans=[Span(0, "V", "k", 0, 0, 460)])
    assert compare(fast, slow, labels=("a", "b")).texts[-1].get_text().splitlines()[-1] == \
        "a speedup vs b: 0.00046x"


# -- 4: epoch times keep their ns --------------------------------------------------------------------------------
def test_epoch_timestamps_keep_their_ns():
    text = ('[{"ph":"X","name":"parent","pid":1,"tid":1,"ts":1712667379478076.100,"dur":1.000},'
            ' {"ph":"X","name":"child","pid":1,"tid":1,"ts":1712667379478076.150,"dur":0.100},'
            ' {"ph":"X","name":"next","pid":1,"tid":1,"ts":1712667379478077.100,"dur":0.050}]')
    assert [(s.name, s.start, s.end) for s in Trace.load(text).spans] == \
        [("parent", 0, 1000), ("child", 50, 150), ("next", 1000, 1050)]


# -- 6 and 7: foreign counters and threads -----------------------------------------------------------------------
def test_foreign_counters_are_one_series_per_process_key_and_kept_whole_or_not_at_all():
    ev = [{"ph": "C", "name": "mem", "pid": 1, "ts": 0, "args": {"v": 100}},
          {"ph": "C", "name": "mem", "pid": 2, "ts": 1, "args": {"v": 5}},
          {"ph": "C", "name": "q", "pid": 1, "ts": 0, "args": {"a": 1}},
          {"ph": "C", "name": "q", "pid": 1, "ts": 1, "args": {"a": 2, "b": 7}},
          {"ph": "C", "name": "f", "pid": 1, "ts": 0, "args": {"v": 1.0}},
          {"ph": "C", "name": "f", "pid": 1, "ts": 1, "args": {"v": 1.5}},
          {"ph": "C", "name": "n", "pid": 1, "ts": 2, "args": {"slots": 3}}]
    assert Trace.load(json.dumps(ev)).samples == [
        Sample("mem (pid 1)", 0, 100), Sample("mem (pid 2)", 1000, 5), Sample("q.a", 0, 1), Sample("q.a", 1000, 2),
        Sample("q.b", 1000, 7), Sample("n", 2000, 3)]


def test_unnamed_threads_of_two_processes_are_two_lanes():
    ev = [{"ph": "X", "name": "work", "pid": 1, "tid": 1, "ts": 0, "dur": 100},
          {"ph": "X", "name": "work", "pid": 2, "tid": 1, "ts": 0, "dur": 100},
          {"ph": "X", "name": "w", "pid": 3, "tid": 1, "ts": 0, "dur": 1},
          {"ph": "X", "name": "w", "pid": 3, "tid": "1", "ts": 0, "dur": 1},
          {"ph": "X", "name": "solo", "pid": 4, "tid": 9, "ts": 0, "dur": 1}]
    trace = Trace.load(json.dumps(ev))
    assert trace.processes == ["1/1", "2/1", "3/1 (tid 1)", "3/1 (tid '1')", "9"]
    assert overlap_pct(Trace.load(json.dumps(ev[:2]))) == 100.0


# -- 8: tile labels of spans without a task id ----------------------------------------------------------------
def test_spans_without_a_task_id_get_their_own_tile_labels():
    t = Trace(spans=[Span(0, "AIV0.V", "mul", i, 100 * i, 100 * i + 90, process="compute") for i in range(3)],
              processes=["compute"])
    ax = plot_timeline(t).axes[0]
    assert [(x.get_position()[0], x.get_text()) for x in ax.texts if x.get_gid() != "makespan-label"] == \
        [(45.0, "0"), (145.0, "1"), (245.0, "2")]
    f = Trace.load(json.dumps([{"ph": "X", "name": "k", "ts": i * 10, "dur": 9, "pid": 0, "tid": 0}
                               for i in range(3)]))
    ax = plot_timeline(f).axes[0]
    assert [x.get_text() for x in ax.texts if x.get_gid() != "makespan-label"] == []


# -- 10 and 12: odd characters in names ---------------------------------------------------------------------------
def test_control_characters_and_lone_surrogates_give_valid_svg():
    t = Trace.load(json.dumps([{"ph": "X", "name": "\u001b[31mred\u0000", "ts": 0, "dur": 9, "pid": 0,
                                "tid": "attn\ud83d"}]))
    svg = figure_svg(plot_timeline(t))
    ET.fromstring(svg)  # well-formed XML
    assert "\ufffd[31mred\ufffd" in svg


def test_a_lone_surrogate_hashes_as_its_code_unit():
    assert fnv1a32("attn\ud83d") != fnv1a32("attn")
    compare(Trace.load(json.dumps([{"ph": "X", "name": "attn\ud83d", "ts": 0, "dur": 9, "pid": 0, "tid": 0}])),
            Trace(spans=[Span(0, "V", "k", 0, 0, 1)]))


# -- 11: a big max_bytes ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["small.json", "small.json.gz"])
@pytest.mark.parametrize("limit", [10**11, 2**40, sys.maxsize, 2**70])
def test_any_max_bytes_reads_a_small_file(tmp_path, name, limit):
    trace = Trace(spans=[Span(0, "V", "k", 0, 0, 1)])
    assert Trace.load(trace.save(tmp_path / name), max_bytes=limit) == trace


# -- 14: byte order marks ---------------------------------------------------------------------------------------
def test_a_byte_order_mark_is_skipped(tmp_path):
    trace = Trace(spans=[Span(0, "V", "k", 0, 0, 1)])
    path = tmp_path / "bom.json"
    path.write_bytes(b"\xef\xbb\xbf" + trace.to_chrome_json().encode())
    assert Trace.load(path) == trace
    assert Trace.load(path.read_text(encoding="utf-8")) == trace


def test_a_long_path_in_an_error_is_cut(tmp_path):
    long = str(tmp_path / ("x" * 3000)) + ".json"
    e = refused(long)
    assert e.what == (f"Trace.load: cannot read '{long[:961]}...{long[-60:]}': the file name is too long for the file "
                      "system (File name too long, errno ENAMETOOLONG).")


# -- 15 and 18: paths ---------------------------------------------------------------------------------------------
def test_an_empty_path_is_refused_as_empty():
    line = here() + 2
    with pytest.raises(PtortValueError) as ei:
        Trace().save("")
    assert ei.value.what == "Trace.save: the path is empty (''), which names no file."
    assert ei.value.hint == "Write trace.save('run.json') ('run.json.gz' to compress)."
    located(ei, line)
    assert refused("").what == "Trace.load: the path is empty (''), which names no file."


def test_a_path_ending_in_a_slash_is_a_folder(tmp_path):
    with pytest.raises(PtortValueError) as ei:
        Trace().save(f"{tmp_path}/traces/")
    assert ei.value.what == (f"Trace.save: the path '{tmp_path}/traces/' ends with '/', so it names a folder, not "
                             "a file.")
    assert ei.value.hint == f"Name a file inside it, e.g. '{tmp_path}/traces/run.json'."
    assert not (tmp_path / "traces").exists()


def test_a_tilde_is_the_home_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    trace = Trace(spans=[Span(0, "V", "k", 0, 0, 1)])
    assert trace.save("~/run.json") == tmp_path / "run.json"
    assert Trace.load("~/run.json") == trace


class BytesPath:
    def __init__(self, path: Path) -> None:
        self.path = path

    def __fspath__(self) -> bytes:
        return os.fsencode(self.path)


def test_a_path_like_giving_bytes(tmp_path):
    trace = Trace(spans=[Span(0, "V", "k", 0, 0, 1)])
    path = trace.save(tmp_path / "run.json")
    assert Trace.load(BytesPath(path)) == trace
    with pytest.raises(PtortTypeError) as ei:
        trace.save(BytesPath(path))
    assert ei.value.what.startswith("Trace.save(path) needs a file path (str or pathlib.Path), got BytesPath ")
    assert ", whose os.fspath() is bytes b'/" in ei.value.what
    assert ei.value.hint == "Write trace.save('run.json') ('run.json.gz' to compress)."


# -- 16: an array without its ] ---------------------------------------------------------------------------------
def test_an_array_trace_without_its_closing_bracket_loads():
    text = ('[{"ph":"X","name":"a","pid":0,"tid":0,"ts":0,"dur":1},\n'
            '{"ph":"X","name":"b","pid":0,"tid":0,"ts":1,"dur":1},\n')
    assert [s.name for s in Trace.load(text).spans] == ["a", "b"]
    e = refused('{"traceEvents": [')
    assert e.hint == ("ptort_lab reads the files Trace.save(path) and to_chrome_json() write; a Chrome trace from "
                      'another tool must be a list of events, or an object {"traceEvents": [...]}.')


# -- 13: string pids (torch.profiler) -----------------------------------------------------------------------------
def test_string_pids_become_cores_of_their_own():
    ev = [{"ph": "X", "name": "aten::mm", "pid": 70610, "tid": 70610, "ts": 100, "dur": 50},
          {"ph": "X", "name": "PyTorch Profiler (0)", "pid": "Spans", "tid": "PyTorch Profiler", "ts": 76, "dur": 74},
          {"name": "process_sort_index", "ph": "M", "pid": "Spans", "tid": 0, "args": {"sort_index": 5}}]
    trace = Trace.load(json.dumps(ev))
    assert [(s.core, s.lane) for s in trace.spans] == [(70610, "70610"), (70611, "PyTorch Profiler")]
    assert trace.cores == {70611: "Spans"}
