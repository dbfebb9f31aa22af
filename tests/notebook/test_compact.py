"""The explorer's compact run data (notebook.compact) packed straight from a Trace's spans, stalls and samples: the
same JSON, byte for byte, as packing the Chrome exporter's events (the way it was packed before, kept below as the
reference), on pipelines and data-parallel runs of the NPU model (pipe lanes, cube and vector units, tile channels),
pinned-cost pipelines with stalls, a trace read back from a file, and a hand-made trace with every odd part (rows
that overflow to ``#2``, stalls of a process that ran nothing, every kind of index, samples out of order)."""
from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from ptort_lab import (
    Channel,
    Dense,
    DType,
    In,
    Out,
    PinnedCosts,
    PtortValueError,
    Tensor,
    Tile,
    connect,
    consume,
    for_each,
    kernel,
    process,
    send,
    task,
    tl,
)
from ptort_lab.explore import Knobs, run_study
from ptort_lab.notebook.compact import compact_run, compact_trace
from ptort_lab.sim.export import CHANNELS_PROCESS, chrome_events
from ptort_lab.sim.trace import Sample, Span, Stall, Trace
from ptort_lab.spec_pipeline import build as spec_build

F32, F16 = DType.F32, DType.F16
TILE = Tile[64, 64, F32]


# -- the reference: compact data folded from the exporter's Chrome events ------------------------------------------
def reference(label: str, trace: Trace) -> dict[str, Any]:
    """compact_trace as it was written before: one pass over ``chrome_events(trace)``."""
    events, sample_cycles = chrome_events(trace)
    table: list[str] = []
    index: dict[str, int] = {}

    def name(text: str) -> int:
        if text not in index:
            index[text] = len(table)
            table.append(text)
        return index[text]

    groups, thread_names, rows, counters = [], {}, {}, {}
    samples = iter(sample_cycles)
    for ev in events:
        ph, pid, tid, args = ev["ph"], ev.get("pid", 0), ev.get("tid", 0), ev.get("args", {})
        if ph == "M":
            if ev["name"] == "process_name" and args["name"] != CHANNELS_PROCESS:
                groups.append({"pid": pid, "label": args["name"]})
            elif ev["name"] == "thread_name":
                thread_names[(pid, tid)] = args["name"]
        elif ph == "X":
            row = rows.get((pid, tid))
            if row is None:
                stall = ev["cat"] == "stall"
                lane = "" if stall else args.get("lane", "")
                row = rows[(pid, tid)] = {"pid": pid, "label": thread_names.get((pid, tid), lane), "lane": lane,
                                          "kind": "stall" if stall else "span", "s": [], "e": [], "n": [], "p": [],
                                          "x": [], "t": [], "b": []}
            row["s"].append(args["start_cycles"])
            row["e"].append(args["end_cycles"])
            row["n"].append(name(ev["name"]))
            row["p"].append(name(args.get("process", "")))
            row["x"].append(args.get("index"))
            row["t"].append(args.get("task_id"))
            row["b"].append(args.get("bytes"))
        elif ph == "C":
            c = counters.setdefault(ev["name"], {"name": ev["name"], "capacity": trace.channels.get(ev["name"]),
                                                 "t": [], "v": []})
            c["t"].append(next(samples))
            c["v"].append(args["slots"])
    order = {n: i for i, n in enumerate(trace.channels)}
    for c in counters.values():
        pairs = sorted(zip(c["t"], c["v"]), key=lambda tv: tv[0])
        c["t"], c["v"] = [t for t, _ in pairs], [v for _, v in pairs]
    out_rows = []
    for _, row in sorted(rows.items(), key=lambda item: item[0]):
        if row["kind"] == "stall":
            for key in ("x", "t", "b"):
                del row[key]
        for key in ("n", "p", "t", "b"):
            column = row.get(key)
            if column is not None and len(column) > 1 and all(v == column[0] for v in column):
                row[key] = column[0]
        out_rows.append(row)
    return {"label": label, "clock_hz": trace.clock_hz, "makespan": trace.makespan, "mode": trace.mode,
            "launch_cycles": trace.launch_cycles, "names": table, "groups": groups, "rows": out_rows,
            "counters": sorted(counters.values(), key=lambda c: order.get(c["name"], len(order)))}


def assert_packed_as_before(label: str, trace: Trace) -> dict[str, Any]:
    got = compact_trace(label, trace)
    assert json.dumps(got) == json.dumps(reference(label, trace))
    return got


# -- runs ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("knobs", [Knobs(depth=1, tile=(32, 32), tiles=3, cores=2),
                                   Knobs(depth=2, tile=(128, 128), tiles=16, cores=4),
                                   Knobs(depth=4, tile=(64, 64), tiles=7, cores=3)])
def test_the_spec_pipeline_and_its_twin_on_the_npu_model(knobs):
    comparison = run_study(spec_build(knobs.depth, knobs.tile, knobs.tiles), knobs, compute_values=False)
    for label, program in comparison.runs:
        got = assert_packed_as_before(label, program.trace())
        assert got == compact_run(label, program)
        assert any(row["lane"].endswith(".MTE2") for row in got["rows"])  # the NPU model's pipe lanes


@kernel
def scores(q: In[Tile[64, 64, F16]], k: In[Tile[64, 64, F16]], s: Out[TILE]):
    tl.store(s, tl.matmul(tl.load(q), tl.load(k)))


@kernel
def exponent(s: In[TILE], y: Out[TILE]):
    tl.store(y, tl.exp(tl.load(s)))


@pytest.mark.parametrize("shared", [False, True])
def test_a_cube_to_vector_tile_channel(shared):
    """The cube (AIC) sends tiles to a vector unit over a tile channel: cube and vector pipes, FIX writes."""
    n = 4
    Q, K = Tensor(shape=(n, 64, 64), dtype=F16, name="Q"), Tensor(shape=(n, 64, 64), dtype=F16, name="K")
    Y = Tensor(shape=(n, 64, 64), dtype=F32, name="Y")
    s_ch = Channel("s", depth=2, tile=TILE)
    qk = process("qk").produces(s_ch).body(
        for_each(Dense[n](), lambda t: send(s_ch, scores[t](q=Q[t], k=K[t], s=s_ch.item))))
    sm = process("sm").consumes(s_ch).body(consume(s_ch, lambda t: exponent[t](s=s_ch.item, y=Y[t])))
    pipe = connect(qk, sm)
    comparison = run_study(pipe.place("shared") if shared else pipe, Knobs(cores=2), compute_values=False)
    lanes = set()
    for label, program in comparison.runs:
        lanes |= {row["lane"] for row in assert_packed_as_before(label, program.trace())["rows"]}
    assert any(lane.startswith("AIC.") for lane in lanes) and any(lane.startswith("AIV0.") for lane in lanes)


@kernel
def stage_a():
    """Pinned cost."""


@kernel
def stage_b():
    """Pinned cost."""


def test_a_pinned_cost_pipeline_with_stalls_and_its_twin():
    ch = Channel(name="ch", depth=1)
    prod = process("prod").produces(ch).body(
        for_each(Dense[5](), lambda t: send(ch, task(stage_a, [t], {}, cycles=10))))
    cons = process("cons").consumes(ch).body(consume(ch, lambda t: task(stage_b, [t], {}, cycles=30)))
    comparison = run_study(connect([prod, cons], [ch]), Knobs(cores=2), cost_model=PinnedCosts(),
                           channel_latency_cycles=100)
    got = assert_packed_as_before("pipeline", comparison.pipeline.trace())
    assert [row["label"] for row in got["rows"] if row["kind"] == "stall"] == ["prod stalls", "cons stalls"]
    assert_packed_as_before("data-parallel", comparison.data_parallel.trace())


def test_a_trace_read_back_from_a_file(tmp_path):
    program = spec_build(2, (32, 32), 4).compile(compute_values=False).execute()
    loaded = Trace.load(program.trace().save(tmp_path / "run.json"))
    assert assert_packed_as_before("pipeline", loaded) == compact_run("pipeline", program)


# -- a hand-made trace with every odd part ---------------------------------------------------------------------------
def odd_trace() -> Trace:
    spans = [
        Span(0, "loader", "load", 0, 0, 10, 64, "loader", 0),
        Span(0, "loader", "load", (1, "a"), 5, 15, 64, "loader", 1),  # starts inside the first, ends after: "#2"
        Span(0, "loader", "load", {"k": 2}, 8, 12, 64, "loader", 2),  # inside the second: "#2" nests, or "#3"
        Span(2, "AIV0.V", "mul", None, 3, 9, 0, "computer", 3),
        Span(2, "AIV0.MTE2", "copy", "tile 3", 0, 4, 128, "computer", 4),
        Span(2, "AIC.M", "mm", 1.5, 4, 6, 0, "computer", 5),
        Span(5, "weird lane", "x", True, 1, 2, 0, "", -1),
    ]
    stalls = [Stall("loader", "backpressure", 15, 20), Stall("loader", "backpressure", 18, 25),
              Stall("ghost", "starved", 0, 30)]  # ghost ran nothing: its stalls go with the channels
    samples = [Sample("b", 9, 1), Sample("a", 5, 1), Sample("a", 2, 2), Sample("b", 1, 1), Sample("z", 3, 4)]
    # (a listed process, as every process a trace's records name must be: trace.cross_check)
    return Trace(spans=spans, stalls=stalls, samples=samples, makespan=30, clock_hz=1.5e9,
                 processes=["loader", "computer", "ghost"], channels={"b": 2, "a": 3},
                 cores={0: "core zero", 2: "core two"}, launch_cycles=7)


def test_a_hand_made_trace_with_every_odd_part():
    got = assert_packed_as_before("pipeline", odd_trace())
    assert [(row["pid"], row["label"], row["kind"]) for row in got["rows"]] == [
        (0, "loader", "span"), (0, "loader #2", "span"), (0, "loader stalls", "stall"),
        (0, "loader stalls #2", "stall"), (2, "AIV0.MTE2", "span"), (2, "AIV0.V", "span"), (2, "AIC.M", "span"),
        (5, "weird lane", "span"), (6, "ghost stalls", "stall")]
    assert [g["label"] for g in got["groups"]] == ["core zero", "core two", "core5"]
    assert [c["name"] for c in got["counters"]] == ["b", "a", "z"]
    assert got["counters"][1]["t"] == [2, 5] and got["launch_cycles"] == 7


def test_a_trace_with_numpy_numbers_is_packed_as_plain_numbers():
    trace = Trace(spans=[Span(0, "V", "k", np.int64(3), np.int64(0), np.int64(10), 0, "p", 0)],
                  makespan=np.int64(10))
    got = compact_trace("pipeline", trace)
    assert got["rows"][0]["s"] == [0] and type(got["rows"][0]["x"][0]) is int and type(got["makespan"]) is int
    json.dumps(got)


def test_a_trace_that_breaks_the_rules_is_refused():
    bad = Trace(spans=[Span(0, "V", "k", 0, 10, 5)], makespan=10)
    with pytest.raises(PtortValueError) as err:
        compact_trace("pipeline", bad)
    assert str(err.value).startswith("compact_trace() got a Trace whose spans[0].end is 5; expected a number of "
                                     "cycles >= the span's start 10.")
