"""Chrome/Perfetto export of a Trace: layout, exact µs, strict nesting, determinism and a lossless round trip."""
from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from ptort_lab import Channel, Dense, DispatchPolicy, connect, consume, for_each, process, send, task
from ptort_lab.sim.export import load_chrome_json, to_chrome_json
from ptort_lab.sim.trace import Sample, Span, Stall, Trace


def pipeline(stages, n: int = 6, depth: int = 1):
    """Three stages with unequal pinned costs, so both backpressure and starvation show up as stalls."""
    c0, c1 = Channel(name="c0", depth=depth), Channel(name="c1", depth=depth)
    load = process("load").produces(c0).body(
        for_each(Dense[n](), lambda i: send(c0, task(stages.a, [i], {}, cycles=100))))
    compute = process("compute").consumes(c0).produces(c1).body(
        consume(c0, lambda i: send(c1, task(stages.b, [i], {}, cycles=lambda t: 60 + 40 * (t.params[0] % 3)))))
    store = process("store").consumes(c1).body(consume(c1, lambda i: task(stages.a, [i], {}, cycles=150)))
    return connect([load, compute, store])


def run_trace(stages, **kw) -> Trace:
    prog = pipeline(stages, **kw).compile(channel_latency_cycles=7)
    prog.execute()
    return prog.trace()


def doc_of(trace: Trace) -> dict:
    return json.loads(to_chrome_json(trace))


def llround_ns(us: float) -> int:
    """What Perfetto's JSON importer makes of a µs value: llround(us * 1000) ns."""
    p = us * 1000.0
    return math.floor(p) + (1 if p - math.floor(p) >= 0.5 else 0)


def assert_strictly_nested(doc: dict) -> None:
    """Every ts/dur is a whole number of ns, and X events on one (pid, tid) nest strictly as a viewer stacks them."""
    tracks: dict[tuple[int, int], list[tuple[int, int]]] = {}
    for ev in doc["traceEvents"]:
        if ev["ph"] not in ("X", "C"):
            continue
        for key in ("ts", "dur"):
            if key in ev:
                exact = Fraction(repr(ev[key])) * 1000
                assert exact.denominator == 1, ev
                assert llround_ns(ev[key]) == exact, ev
        if ev["ph"] == "X":
            s = llround_ns(ev["ts"])
            tracks.setdefault((ev["pid"], ev["tid"]), []).append((s, s + llround_ns(ev["dur"])))
    for key, items in tracks.items():
        stack: list[int] = []
        for s, e in sorted(items, key=lambda x: x[0]):
            while stack and stack[-1] <= s:
                stack.pop()
            assert not stack or e <= stack[-1], f"partial overlap on track {key}: [{s}, {e}) vs end {stack[-1]}"
            stack.append(e)


def test_round_trip_of_a_pipeline_run_is_lossless(stages, tmp_path):
    """Spans, samples, stalls and every run field come back equal, from text, from a file and from a .gz file."""
    trace = run_trace(stages)
    assert trace.spans and trace.samples and trace.stalls
    assert load_chrome_json(trace.to_chrome_json()) == trace
    path = trace.save(tmp_path / "run.json")
    assert Trace.load(path) == trace
    assert Trace.load(str(path)) == trace
    assert Trace.load(trace.save(tmp_path / "run.json.gz")) == trace


def test_round_trip_of_a_data_parallel_run(stages):
    """A data-parallel run (round-robin on 3 cores) round-trips too, and each core is its own pid."""
    body = for_each(Dense[7](), lambda i: task(stages.a, [i], {}, cycles=lambda t: 10 + t.params[0]))
    w = body.dispatch(DispatchPolicy.round_robin(3))
    prog = w.compile()
    prog.execute()
    trace = prog.trace()
    assert trace.mode == "data-parallel"
    doc = doc_of(trace)
    assert {ev["pid"] for ev in doc["traceEvents"] if ev["ph"] == "X"} == {0, 1, 2}
    assert load_chrome_json(trace.to_chrome_json()) == trace


def test_same_workload_twice_gives_byte_identical_json(stages, tmp_path):
    """Two independent builds and runs of one workload export the same bytes (also through save())."""
    a, b = run_trace(stages), run_trace(stages)
    assert a.to_chrome_json() == b.to_chrome_json()
    assert a.save(tmp_path / "a.json").read_bytes() == b.save(tmp_path / "b.json").read_bytes()
    assert a.save(tmp_path / "a.json.gz").read_bytes() == b.save(tmp_path / "b.json.gz").read_bytes()


def test_layout_top_level_and_sorted_keys(stages):
    """Top level is displayTimeUnit, otherData, traceEvents (Perfetto stops at unknown keys); keys sorted throughout."""
    text = run_trace(stages).to_chrome_json()
    doc = json.loads(text)
    assert list(doc) == ["displayTimeUnit", "otherData", "traceEvents"]
    assert doc["displayTimeUnit"] == "ns"
    assert doc["otherData"]["ptort"]["format"] == "ptort-chrome-trace"
    for line in text.splitlines()[3:-1]:
        ev = json.loads(line.rstrip(","))
        assert list(ev) == sorted(ev)
        assert list(ev["args"]) == sorted(ev["args"])


def test_us_conversion_is_exact_for_a_hand_made_trace():
    """ts/dur are cycles / clock in µs: exact at 1 GHz and 2 GHz, and on the 1 ns grid at 1.8 GHz."""
    def xs(clock: float, spans: list[tuple[int, int]]) -> list[tuple[object, object, dict]]:
        tr = Trace(spans=[Span(0, "V", "k", i, s, e, 64, "p", i) for i, (s, e) in enumerate(spans)], clock_hz=clock)
        return [(ev["ts"], ev["dur"], ev["args"]) for ev in doc_of(tr)["traceEvents"] if ev["ph"] == "X"]

    got = xs(1e9, [(0, 1500), (1500, 4000), (4000, 4001)])
    assert [(ts, dur) for ts, dur, _ in got] == [(0, 1.5), (1.5, 2.5), (4, 0.001)]
    assert got[1][2] == {"bytes": 64, "cycles": 2500, "end_cycles": 4000, "index": 1, "lane": "V", "process": "p",
                         "start_cycles": 1500, "task_id": 1}
    assert [(ts, dur) for ts, dur, _ in xs(2e9, [(3000, 5000), (5000, 5001)])] == [(1.5, 1), (2.5, 0.001)]
    # 1.8 GHz: 1 cycle = 0.5556 ns; ends snap to round(c / 1.8) ns, so neighbours abut exactly.
    got = xs(1.8e9, [(0, 100), (100, 200), (1800, 3600)])
    assert [(ts, dur) for ts, dur, _ in got] == [(0, 0.056), (0.056, 0.055), (1, 1)]
    assert got[0][0] + got[0][1] == got[1][0]


def test_counters_present_for_every_channel(stages):
    """One C event per occupancy sample, named after its channel, with the slots in use as its only series."""
    trace = run_trace(stages, depth=2)
    doc = doc_of(trace)
    cs = [ev for ev in doc["traceEvents"] if ev["ph"] == "C"]
    assert {ev["name"] for ev in cs} == set(trace.channels) == {"c0", "c1"}
    assert [(ev["name"], ev["args"]) for ev in cs] == [(s.channel, {"slots": s.occupancy}) for s in trace.samples]
    assert max(ev["args"]["slots"] for ev in cs if ev["name"] == "c0") == 2
    assert len({ev["pid"] for ev in cs}) == 1
    assert doc["otherData"]["ptort"]["sample_cycles"] == [s.time for s in trace.samples]


def test_metadata_names_processes_and_tracks(stages):
    """pid = core named "coreN", one named track per stage (sorted in pipeline order), stall tracks, channels last."""
    trace = run_trace(stages)
    doc = doc_of(trace)
    meta = [ev for ev in doc["traceEvents"] if ev["ph"] == "M"]
    procs = {ev["pid"]: ev["args"]["name"] for ev in meta if ev["name"] == "process_name"}
    assert procs == {0: "core0", 1: "core1", 2: "core2", 3: "channels"}
    pid_sort = {ev["pid"]: ev["args"]["sort_index"] for ev in meta if ev["name"] == "process_sort_index"}
    assert sorted(pid_sort, key=pid_sort.get) == [0, 1, 2, 3]
    threads = {(ev["pid"], ev["tid"]): ev["args"]["name"] for ev in meta if ev["name"] == "thread_name"}
    sort = {(ev["pid"], ev["tid"]): ev["args"]["sort_index"] for ev in meta if ev["name"] == "thread_sort_index"}
    assert set(threads) == set(sort)
    names = [threads[k] for k in sorted(threads, key=sort.get)]
    assert [n for n in names if not n.endswith("stalls")] == ["load", "compute", "store"]
    assert {n for n in names if n.endswith("stalls")} == {f"{p} stalls" for p in {s.process for s in trace.stalls}}
    assert len({tid for _, tid in threads}) == len(threads)  # tids are unique across pids
    for ev in doc["traceEvents"]:
        if ev["ph"] == "X" and ev["cat"] == "span":
            assert threads[(ev["pid"], ev["tid"])] == ev["args"]["lane"]
            assert procs[ev["pid"]] == trace.cores[ev["pid"]]
        if ev["ph"] == "X" and ev["cat"] == "stall":
            assert threads[(ev["pid"], ev["tid"])] == f"{ev['args']['process']} stalls"
            assert ev["name"] == ev["args"]["reason"]


def test_pipeline_tracks_nest_strictly(stages):
    """A real run at 1.8 GHz: all times on the ns grid and every track strictly nested."""
    assert_strictly_nested(doc_of(run_trace(stages, n=40, depth=2)))


def test_partial_overlaps_go_to_overflow_tracks():
    """Guard: spans that would partially overlap on one (core, lane) are split onto "#2" tracks; nothing is lost."""
    spans = [Span(0, "V", "a", 0, 0, 100), Span(0, "V", "b", 1, 50, 150), Span(0, "V", "c", 2, 60, 70),
             Span(0, "V", "d", 3, 100, 200), Span(0, "V", "e", 4, 120, 130), Span(0, "MTE2", "f", 5, 0, 300)]
    trace = Trace(spans=spans, clock_hz=1e9, makespan=300)
    doc = doc_of(trace)
    assert_strictly_nested(doc)
    threads = {ev["tid"]: ev["args"]["name"] for ev in doc["traceEvents"] if ev.get("name") == "thread_name"}
    where = {ev["name"]: threads[ev["tid"]] for ev in doc["traceEvents"] if ev["ph"] == "X"}
    assert where == {"a": "V", "b": "V #2", "c": "V", "d": "V", "e": "V", "f": "MTE2"}
    assert list(threads.values()) == ["MTE2", "V", "V #2"]  # pipes in NPU order: MTE2 before V
    assert load_chrome_json(to_chrome_json(trace)) == trace


def test_index_values_round_trip():
    """Span indices that are tuples, strings, None, numpy ints or nested lists decode to equal values."""
    idx = [(1, 2), "tile-3", None, np.int64(4), [5, (6, "x")], {"b": 1}, 2.5, True]
    trace = Trace(spans=[Span(0, "s", "k", v, i, i + 1) for i, v in enumerate(idx)], clock_hz=1e9)
    back = load_chrome_json(to_chrome_json(trace))
    assert back == trace
    assert isinstance(back.spans[0].index, tuple) and isinstance(back.spans[4].index[1], tuple)


def test_foreign_chrome_trace_loads_best_effort():
    """A trace without otherData.ptort: X events become spans (cycles = ns from the first event), C series samples,
    lanes from M events."""
    text = json.dumps({"traceEvents": [
        {"ph": "M", "name": "thread_name", "pid": 1, "tid": 7, "args": {"name": "worker"}},
        {"ph": "X", "name": "job", "pid": 1, "tid": 7, "ts": 1.5, "dur": 0.25},
        {"ph": "C", "name": "queue", "pid": 1, "ts": 2, "args": {"depth": 3}},
        {"ph": "C", "name": "mem", "pid": 1, "ts": 3, "args": {"rd": 1, "wr": 2}}]})
    tr = load_chrome_json(text)
    assert tr.spans == [Span(1, "worker", "job", None, 0, 250)]
    assert tr.samples == [Sample("queue", 500, 3), Sample("mem.rd", 1500, 1), Sample("mem.wr", 1500, 2)]
    assert (tr.makespan, tr.clock_hz, tr.processes) == (1500, 1e9, ["worker"])


names = st.text(st.sampled_from("abcxyz_. '\"\\é"), min_size=1, max_size=6)
cycles = st.integers(0, 10**9)


@st.composite
def traces(draw) -> Trace:
    def interval():
        s = draw(cycles)
        return s, s + draw(st.integers(0, 10**6))

    spans = []
    for _ in range(draw(st.integers(0, 12))):
        s, e = interval()
        spans.append(Span(draw(st.integers(0, 3)), draw(names), draw(names),
                          draw(st.one_of(st.integers(-5, 5), names, st.tuples(st.integers(-2**63, 2**63 - 1), names))),
                          s, e, draw(st.integers(0, 1 << 40)), draw(names), draw(st.integers(-1, 100))))
    stalls = []
    for _ in range(draw(st.integers(0, 5))):
        s, e = interval()
        stalls.append(Stall(draw(names), draw(names), s, e))
    samples = [Sample(draw(names), draw(cycles), draw(st.integers(0, 8))) for _ in range(draw(st.integers(0, 6)))]
    process_end = draw(st.dictionaries(names, cycles, max_size=3))
    # consistent as a run's trace is (trace.cross_check): the processes the records name are listed (or none is),
    # and the makespan is no earlier than the last end
    named = [sp.process for sp in spans] + [st_.process for st_ in stalls] + list(process_end)
    processes = list(dict.fromkeys(named + draw(st.lists(names, max_size=3)))) if draw(st.booleans()) else []
    last = max([sp.end for sp in spans] + [st_.end for st_ in stalls] + [sm.time for sm in samples]
               + list(process_end.values()), default=0)
    return Trace(spans=spans, samples=samples, stalls=stalls, makespan=last + draw(st.integers(0, 10**6)),
                 clock_hz=draw(st.sampled_from([1e9, 1.8e9, 1.85e9, 2.5e8, 3.3e9, 1234567.0])),
                 mode=draw(st.sampled_from(["pipeline", "data-parallel"])),
                 processes=processes,
                 channels=draw(st.dictionaries(names, st.integers(1, 8), max_size=3)),
                 cores=draw(st.dictionaries(st.integers(0, 5), names, max_size=3)),
                 process_end=process_end)


@settings(max_examples=150, deadline=None)
@given(traces())
def test_random_traces_round_trip_deterministically_and_nest(trace):
    """Any Trace: load(export(t)) == t, export is stable, and every track nests strictly on the ns grid."""
    text = to_chrome_json(trace)
    assert load_chrome_json(text) == trace
    assert to_chrome_json(load_chrome_json(text)) == text
    assert_strictly_nested(json.loads(text))
