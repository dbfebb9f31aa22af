"""Bad input to traces, round 2: inconsistent Traces and files, B/E-only Chrome traces, pipes, odd paths, %%ptort."""
from __future__ import annotations

import gzip
import json
import os
import signal
import socket
from contextlib import contextmanager
from typing import Any, Iterator

import pytest

from ptort_lab.errors import PtortValueError, SimulationError
from ptort_lab.sim.export import load_chrome_json, to_chrome_json
from ptort_lab.sim.trace import Sample, Span, SpanColumns, Stall, Trace, check_trace
from ptort_lab.spec_pipeline import build


@contextmanager
def no_hang(seconds: float = 20.0) -> Iterator[None]:
    """Fail (instead of blocking the test run forever) if the body takes longer than ``seconds``."""
    def alarm(*_: Any) -> None:
        raise AssertionError(f"blocked for more than {seconds} s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def refusal(trace: Trace, api: str = "Trace.save") -> PtortValueError:
    with pytest.raises(PtortValueError) as ei:
        check_trace(trace, api)
    return ei.value


def load_error(source: Any) -> PtortValueError:
    with pytest.raises(PtortValueError) as ei:
        load_chrome_json(source)
    return ei.value


@pytest.fixture(scope="module")
def run_doc() -> tuple[Trace, dict[str, Any]]:
    """A real pipeline run's trace and its saved file as JSON."""
    trace = build(depth=2, tile=(32, 32), tiles=3).compile().execute().trace()
    return trace, json.loads(to_chrome_json(trace))


def two_spans() -> list[Span]:
    return [Span(0, "a", "k", 0, 0, 1000, 0, "a", 0), Span(1, "b", "k", 0, 0, 1000, 0, "b", 1)]


# -- a Trace's fields must agree (hunt2 #3, hunt #13) ----------------------------------------------------------------
def test_a_makespan_left_out_is_the_last_end_of_the_records():
    """Trace(spans=...) without a makespan is as long as its records (it was 0: every bar off the plot)."""
    from ptort_lab.viz import plot_timeline
    t = Trace(spans=two_spans(), processes=["a", "b"])
    assert t.makespan == 1000 and check_trace(t, "test") == t
    assert plot_timeline(t).axes[0].get_xlim()[1] >= 1000
    assert Trace().makespan == 0
    assert Trace(stalls=[Stall("p", "wait", 5, 70)], samples=[Sample("c", 90, 1)]).makespan == 90
    assert Trace(spans=two_spans(), process_end={"a": 1500}).makespan == 1500
    t.spans.append(Span(0, "a", "k", 1, 1000, 1200, 0, "a", 2))  # grows with its records
    assert t.makespan == 1200 and t == Trace(spans=t.spans, makespan=1200, processes=["a", "b"])
    assert Trace(spans=two_spans(), makespan=5000).makespan == 5000  # given: kept as given
    assert Trace(spans=[("not", "a", "span")]).makespan == 0  # reading it never raises (the check names the span)


@pytest.mark.parametrize("records, latest", [
    ({"spans": two_spans()}, "spans[0].end is 1,000"),
    ({"stalls": [Stall("p", "backpressure", 0, 400)]}, "stalls[0].end is 400"),
    ({"samples": [Sample("c", 0, 1), Sample("c", 300, 0)]}, "samples[1].time is 300"),
    ({"process_end": {"p": 12, "q": 250}}, "process_end['q'] is 250"),
])
def test_an_explicit_makespan_before_an_end_is_refused(records, latest):
    e = refusal(Trace(makespan=10, **records))
    assert e.what == (f"Trace.save got a Trace whose makespan is 10; expected a number of cycles >= the last end of "
                      f"the trace's records ({latest}).")
    assert e.hint.startswith("Leave makespan out (Trace(spans=...) computes it as the last end")


def test_plots_and_compare_refuse_a_makespan_before_the_spans_end():
    """compare() used to print an overlap of 10000 % and a speedup of 0.00x for this pair."""
    from ptort_lab.viz import compare, plot_timeline
    short = Trace(spans=two_spans(), makespan=10, processes=["a", "b"])
    for draw in (lambda: compare(short, Trace(spans=two_spans())), lambda: plot_timeline(short)):
        with pytest.raises(PtortValueError, match=r"got a Trace whose makespan is 10; expected a number of cycles"):
            draw()


@pytest.mark.parametrize("fields, words", [
    ({"spans": two_spans(), "processes": ["a"]},
     "spans[1].process is 'b'; expected '' (no process) or one of the trace's processes ('a')."),
    ({"stalls": [Stall("ghost", "starved", 0, 5)], "processes": ["a", "b"]},
     "stalls[0].process is 'ghost'; expected one of the trace's processes ('a', 'b')."),
    ({"process_end": {"a": 5, "zz": 6}, "processes": ["a"]},
     "process_end key 'zz' is 'zz'; expected one of the trace's processes ('a')."),
    ({"processes": ["a", "b", "a"]}, "processes[2] is 'a'; expected a process name not listed before"),
])
def test_records_that_name_an_unlisted_process_are_refused(fields, words):
    e = refusal(Trace(**fields))
    assert e.what.startswith(f"Trace.save got a Trace whose {words}")
    assert "processes=[...]" in e.hint


def test_what_the_process_and_core_rules_leave_alone():
    """A span without a process, records of any process when none is listed, and spans on a core that ``cores``
    does not name (it only names cores: exported as core<N>) all pass."""
    no_process = Trace(spans=[Span(0, "V", "k", 0, 0, 5)], processes=["p"])
    assert check_trace(no_process, "test") is no_process
    unlisted = Trace(spans=two_spans(), stalls=[Stall("z", "wait", 0, 3)], process_end={"q": 4}, makespan=1000)
    assert check_trace(unlisted, "test") is unlisted
    other_core = Trace(spans=[Span(3, "V", "k", 0, 0, 5, 0, "p")], processes=["p"], cores={0: "core zero"},
                       makespan=5)
    assert check_trace(other_core, "test") is other_core
    names = [e["args"]["name"] for e in json.loads(to_chrome_json(other_core))["traceEvents"]
             if e.get("name") == "process_name"]
    assert names == ["core zero", "core3"]


def test_a_runs_trace_passes_the_rules_between_fields_unchanged(run_doc):
    trace, doc = run_doc
    assert isinstance(trace.spans, SpanColumns) and check_trace(trace, "test") is trace
    assert load_chrome_json(json.dumps(doc)) == trace


def test_span_columns_distinct_reads_columns_and_pending_records():
    cols = SpanColumns([Span(0, "V", "k", 0, 0, 5, 0, "p"), Span(2, "M", "k", "x", 1, 9, 0, "q")])
    cols.append(Span(7, "V", "k", 1, 2, 3, 0, "r"))
    assert cols.distinct(7) == {"p", "q", "r"} and cols.distinct(0) == {0, 2, 7} and cols.distinct(3) == {0, "x", 1}


def _edited(doc: dict[str, Any], edit: Any) -> str:
    d = json.loads(json.dumps(doc))
    edit(d)
    return json.dumps(d)


def meta_of(d: dict[str, Any]) -> dict[str, Any]:
    meta: dict[str, Any] = d["otherData"]["ptort"]
    return meta


def _first_span(d: dict[str, Any]) -> dict[str, Any]:
    return next(e for e in d["traceEvents"] if e.get("cat") == "span")


def test_an_edited_file_whose_fields_disagree_is_refused(run_doc):
    """hunt #13: makespan 5 (spans end at thousands of cycles), a span of process 'zzz': both loaded as they were."""
    trace, doc = run_doc
    meta = "otherData.ptort"
    first = next(i for i, e in enumerate(doc["traceEvents"]) if e.get("cat") == "span")
    ends = [(f"traceEvents[{i}].args.end_cycles", e["args"]["end_cycles"]) for i, e in enumerate(doc["traceEvents"])
            if e["ph"] == "X"]
    ends += [(f"{meta}.sample_cycles[{k}]", t) for k, t in enumerate(meta_of(doc)["sample_cycles"])]
    latest = max(ends, key=lambda x: x[1])  # the first span, stall or sample that ends last
    cases = [
        (lambda d: d["otherData"]["ptort"].__setitem__("makespan", 5),
         f"{meta}.makespan is 5; expected a number of cycles >= the last end of the trace's records "
         f"({latest[0]} is {latest[1]:,})."),
        (lambda d: _first_span(d)["args"].__setitem__("process", "zzz"),
         f"traceEvents[{first}].args.process is 'zzz'; expected '' (no process) or one of the trace's processes "
         "('loader', 'computer', 'storer')."),
        (lambda d: d["otherData"]["ptort"]["process_end"][1].__setitem__(0, "zzz"),
         f"{meta}.process_end[1][0] is 'zzz'; expected one of the trace's processes"),
        (lambda d: d["otherData"]["ptort"]["sample_cycles"].__setitem__(-1, trace.makespan + 1),
         f"{meta}.makespan is {trace.makespan}; expected a number of cycles >= the last end of the trace's records "
         f"({meta}.sample_cycles[{len(trace.samples) - 1}] is {trace.makespan + 1:,})."),
        (lambda d: d["otherData"]["ptort"].__setitem__("processes", ["loader", "computer", "storer", "loader"]),
         f"{meta}.processes[3] is 'loader'; expected a process name not listed before"),
    ]
    for edit, words in cases:
        e = load_error(_edited(doc, edit))
        assert e.what.startswith(f"Cannot load the given trace JSON text: it is not a valid ptort_lab trace: {words}")
        assert e.hint.startswith("The trace was edited")


# -- a Chrome trace of B/E events (hunt2 #8) -------------------------------------------------------------------------
def test_begin_end_pairs_become_spans_matched_per_thread_as_a_stack():
    events = [
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 2, "args": {"name": "main"}},
        {"ph": "B", "name": "outer", "ts": 0, "pid": 1, "tid": 2},
        {"ph": "B", "name": "other thread", "ts": 1, "pid": 1, "tid": 3},
        {"ph": "E", "ts": 2, "pid": 1, "tid": 3},
        {"ph": "E", "ts": 4, "pid": 1, "tid": 2},  # out of time order in the file: closes "inner" (B at 3)
        {"ph": "B", "name": "inner", "ts": 3, "pid": 1, "tid": 2},
        {"ph": "E", "ts": 5, "pid": 1, "tid": 2},  # closes "outer"
        {"ph": "E", "ts": 6, "pid": 1, "tid": 2},  # nothing open: skipped
        {"ph": "B", "name": "never ends", "ts": 7, "pid": 1, "tid": 2},
        {"ph": "X", "name": "x", "ts": 8, "dur": 1, "pid": 1, "tid": 2},
    ]
    tr = load_chrome_json(json.dumps({"traceEvents": events}))
    assert tr.spans == [Span(1, "main", "outer", None, 0, 5000), Span(1, "3", "other thread", None, 1000, 2000),
                        Span(1, "main", "inner", None, 3000, 4000), Span(1, "main", "never ends", None, 7000, 9000),
                        Span(1, "main", "x", None, 8000, 9000)]
    assert tr.makespan == 9000 and check_trace(tr, "test") is tr
    assert load_chrome_json(to_chrome_json(tr)) == tr


def test_the_reported_b_e_only_trace_is_no_longer_empty():
    tr = load_chrome_json(json.dumps([{"ph": "B", "ts": 0, "name": "a"}, {"ph": "E", "ts": 5, "name": "a"}]))
    assert tr.spans == [Span(0, "0", "a", None, 0, 5000)] and tr.makespan == 5000


@pytest.mark.parametrize("events, words", [
    ([{"ph": "i", "ts": 0, "name": "a"}, {"ph": "M", "name": "x"}, {"ph": "i", "ts": 1}],
     "traceEvents holds 3 events (phases 'i': 2, 'M': 1), none of which becomes a span or a sample"),
    ([{"ph": "E", "ts": 0}], "traceEvents holds 1 event (phase 'E'), which becomes no span or sample"),
    ([{"ph": "C", "ts": 0, "name": "c", "args": {"v": 0.5}}, {"ts": 1}],
     "traceEvents holds 2 events (phases 'C': 1, no ph: 1), none of which becomes a span or a sample"),
])
def test_a_foreign_file_with_no_usable_event_is_refused_naming_its_phases(events, words):
    e = load_error(json.dumps({"traceEvents": events}))
    assert e.what.startswith(f"Cannot load the given trace JSON text: it is not a Chrome trace ptort_lab can read: "
                             f"{words} (ptort_lab reads X events, B/E pairs")
    assert "begin/end (B/E)" in e.hint


def test_an_empty_event_list_still_loads_as_an_empty_trace():
    assert load_chrome_json("[]") == Trace(clock_hz=1e9) and load_chrome_json('{"traceEvents": []}').spans == []


# -- pipes, sockets and devices (hunt2 #1) ---------------------------------------------------------------------------
def test_save_refuses_a_fifo_a_socket_and_a_device_without_blocking(tmp_path, run_doc):
    trace = run_doc[0]
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    link = tmp_path / "link.json"
    link.symlink_to(fifo)
    sock_path = tmp_path / "s.json"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    try:
        for path, what in ((fifo, "a named pipe (FIFO)"), (link, "a named pipe (FIFO)"), (sock_path, "a socket"),
                           ("/dev/null", "a character device")):
            with no_hang(), pytest.raises(PtortValueError) as ei:
                trace.save(path)
            assert ei.value.what == (f"Trace.save: cannot write '{path}': it is {what}, not a regular file; writing "
                                     "into it could block forever or lose the trace.")
            assert "Save to an ordinary file" in ei.value.hint
    finally:
        sock.close()
    assert not fifo.is_file() and fifo.exists() and os.path.islink(link)  # left as they were


# -- odd paths (hunt2 #10, #11, #18) ---------------------------------------------------------------------------------
def test_a_nul_in_the_path_is_a_ptort_error(run_doc):
    with pytest.raises(PtortValueError, match=r"^Trace.save: cannot write 'a\\x00b.json': a file path cannot hold a "
                                              r"NUL character"):
        run_doc[0].save("a\x00b.json")
    e = load_error("a\x00b.json")
    assert e.what.startswith("Cannot load trace file 'a\\x00b.json': a file path cannot hold a NUL character")


@pytest.mark.parametrize("name", ["[exp1].json", "{a}.json", " [x].json.gz"])
def test_a_path_that_looks_like_json_is_read_as_the_file_it_names(tmp_path, monkeypatch, run_doc, name):
    monkeypatch.chdir(tmp_path)
    trace = run_doc[0]
    trace.save(name)
    assert load_chrome_json(name) == trace
    assert load_chrome_json(os.fsencode(name)) == trace  # bytes naming a file are its path
    assert load_chrome_json(bytearray(os.fsencode(str(tmp_path / name)))) == trace


def test_json_text_and_bytes_still_load_and_a_missing_path_is_named(tmp_path, monkeypatch, run_doc):
    monkeypatch.chdir(tmp_path)
    trace, doc = run_doc
    text = to_chrome_json(trace)
    assert load_chrome_json(text) == trace and load_chrome_json(text.encode()) == trace
    e = load_error("[exp2].json")
    assert e.what.startswith("Cannot load the given trace JSON text: it is not JSON text")
    assert e.hint.startswith(f"No file named '[exp2].json' exists either (relative paths start at {tmp_path})")
    e = load_error(b"/no/such/run.json")
    assert e.what.startswith("Cannot load the given trace bytes: it is not JSON text")
    assert e.hint.startswith("No file named '/no/such/run.json' exists either")


def test_an_upper_case_gz_suffix_compresses_too(tmp_path, run_doc):
    trace = run_doc[0]
    path = trace.save(tmp_path / "run.json.GZ")
    data = path.read_bytes()
    assert data[:2] == b"\x1f\x8b" and gzip.decompress(data).decode() == trace.to_chrome_json()
    assert load_chrome_json(path) == trace


# -- times past 2**53 (hunt2 #15) ------------------------------------------------------------------------------------
def test_times_past_2_53_say_what_the_format_keeps_and_what_to_change():
    e = refusal(Trace(spans=[Span(0, "V", "k", 0, 0, 2**60)], makespan=2**60))
    assert e.what.startswith("Trace.save got a Trace whose spans[0].end is 1152921504606846976; expected a whole")
    assert e.hint.startswith("A trace keeps times up to 2**53 cycles (9,007,199,254,740,992")
    assert "channel_latency_cycles" in e.hint and "Use program.trace() from a run" not in e.hint


# -- %%ptort (hunt2 #1, #12, #15, #18) -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shell():
    """A real IPython shell with %%ptort (as tests/notebook/conftest.py makes one), cleared afterwards."""
    os.environ.setdefault("IPYTHONDIR", str(__import__("tempfile").mkdtemp(prefix="ptort-ipython-")))
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    ip = InteractiveShell.instance(config=config)
    ip.run_line_magic("load_ext", "ptort_lab")
    ip.run_cell("from ptort_lab import *")
    yield ip
    InteractiveShell.clear_instance()


BODY = "ran = True\nfrom ptort_lab.spec_pipeline import build\npipeline = build(depth=DEPTH, tile=TILE, tiles=TILES)\n"


def usage_error(shell: Any, line: str) -> str:
    from IPython.core.error import UsageError
    shell.user_ns.pop("ran", None)
    with no_hang(), pytest.raises(UsageError) as ei:
        shell.run_cell_magic("ptort", line, BODY)
    assert "ran" not in shell.user_ns  # refused before the body ran
    message = str(ei.value)
    assert "\n" not in message
    return message


def test_trace_out_refuses_a_fifo_before_the_cell_runs(shell, tmp_path):
    fifo = tmp_path / "run.json"
    os.mkfifo(fifo)
    assert usage_error(shell, f"--trace-out {fifo}") == (f"--trace-out '{fifo}' is a named pipe (FIFO), not a "
                                                         "regular file; pick a file name like --trace-out run.json.")
    assert usage_error(shell, "--trace-out {chr(0).join(['a', 'b.json'])}").startswith(
        "--trace-out 'a\\x00b.json' holds a NUL character")


def test_trace_out_next_to_a_fifo_is_refused_after_the_run_without_blocking(shell, tmp_path, capsys):
    """The data-parallel file goes next to FILE.json: a pipe there is refused when it is written."""
    os.mkfifo(tmp_path / "run.data-parallel.json")
    shell.user_ns.update(DEPTH=2, TILE=(32, 32), TILES=2, CORES=2)
    shell.user_ns.pop("_ptort", None)
    with no_hang(120), pytest.raises(PtortValueError) as ei:
        shell.run_cell_magic("ptort", f"--trace-out {tmp_path / 'run.json'}", BODY)
    assert "it is a named pipe (FIFO), not a regular file" in ei.value.what
    assert (tmp_path / "run.json").is_file() and "_ptort" in shell.user_ns


@pytest.mark.parametrize("line, start", [
    ("--depth '2", "%%ptort options could not be split into words: No closing quotation in \"--depth '2\""),
    ("--show none,ir", "--show none (the summary only) stands alone, got --show none,ir; use --show none, or list "
                       "the parts to show: --show ir."),
    ("--show ir,ALL", "--show all (every part) stands alone, got --show ir,all"),
    ("--show ,", "--show got no part in ','"),
    ("-o for", "-o for: 'for' is a Python keyword"),
    ("-o class", "-o class: 'class' is a Python keyword"),
    ("-o DEPTH", "-o DEPTH: the magic binds DEPTH for the cells"),
    ("-o TILES", "-o TILES: the magic binds TILES for the cells"),
])
def test_bad_magic_lines_are_one_line_usage_errors(shell, line, start):
    assert usage_error(shell, line).startswith(start)


def test_a_run_past_2_53_cycles_names_the_format_limit_not_the_folder(shell, tmp_path):
    """hunt2 #15: the hint said "Pick a file in a folder you can write to" for a trace the format cannot hold; the
    run itself now stops at its end (hunt5b #5), naming the limit and what adds up to it, before any file."""
    body = BODY + ("from ptort_lab.sim.cost_model import PinnedCosts\n"
                   "pipeline.compile(cost_model=PinnedCosts(default_cycles=2**52), compute_values=False)\n")
    shell.user_ns.update(DEPTH=2, TILE=(32, 32), TILES=3, CORES=2)
    shell.user_ns.pop("_ptort", None)
    with pytest.raises(SimulationError) as ei:
        shell.run_cell_magic("ptort", f"--mode pipeline --trace-out {tmp_path / 'big.json'}", body)
    assert ei.value.what.startswith("the run ends at cycle ") and "past 2**53" in ei.value.what
    assert ei.value.hint.startswith("Times add up over a run's tasks: lower the cycles you pinned")
    assert "folder" not in ei.value.hint and not (tmp_path / "big.json").exists()
