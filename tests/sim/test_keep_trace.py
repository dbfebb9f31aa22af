"""execute(keep_trace=False) (issue 14 part 2): a huge run keeps only its statistics. The spans are counted as they
come (stats.SpanTotals: unions of busy intervals cut at the earliest clock of a running process) and dropped, so
stats() gives exactly the figures of the full run, compared with ==, while no span, stall, sample or Task is kept.

Runs here flush every few spans (runner.FLUSH_SPANS, stats.FEED_CHUNK lowered), so every figure crosses many cuts.
"""
from __future__ import annotations

import dataclasses
import gc
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loaders import flash_attention_example
from pinned_chains import linear

from ptort_lab import (
    Channel,
    CostModel,
    Dense,
    DispatchPolicy,
    Event,
    PinnedCosts,
    PtortTypeError,
    PtortValueError,
    SimulationError,
    Span,
    connect,
    consume,
    for_each,
    kernel,
    process,
    record,
    send,
    synchronize,
    task,
)
from ptort_lab.sim import maxplus
from ptort_lab.sim import runner as runner_module
from ptort_lab.sim import stats as stats_module
from ptort_lab.sim.cost_model import span_of
from ptort_lab.sim.machine import ascend_910b
from ptort_lab.sim.stats import SpanBeforeCut, SpanTotals, busy_cycles, overlap_cycles, stage_groups

ROOT = Path(__file__).resolve().parents[2]
SMALL_L2 = ascend_910b.replace(l2_bytes=1 << 20)
HINT = ("Run it again with program.execute() (keep_trace=True, the default) to keep its spans, stalls, samples and "
        "tasks; for a long run, execute(steady_state=True) keeps the trace of the first few periods with exact "
        "figures for the whole run, or build it with fewer tiles.")


@pytest.fixture(autouse=True)
def small_flushes(monkeypatch: Any) -> None:
    """Count the spans every 5 (max-plus columns every 7): many cuts even in a short run."""
    monkeypatch.setattr(runner_module, "FLUSH_SPANS", 5)
    monkeypatch.setattr(stats_module, "FEED_CHUNK", 7)


def figures(stats: Any) -> dict[str, Any]:
    """Every field of a ProgramStats but the wall-clock times."""
    out = dataclasses.asdict(stats)
    del out["compile_time_ms"], out["execute_time_ms"]
    return out


def both(program: Any, **kwargs: Any) -> tuple[Any, Any]:
    """(stats of the full run, stats of the run that keeps no trace)."""
    full = program.execute(**kwargs).stats()
    lean = program.execute(keep_trace=False, **kwargs).stats()
    return full, lean


def on_engine(monkeypatch: Any) -> None:
    """Leave every run to the general engine (no max-plus path)."""
    monkeypatch.setattr(maxplus, "plan", lambda *args, **kwargs: None)


# -- the figures equal the full run's -------------------------------------------------------------------------------
@pytest.mark.parametrize("fast", [True, False], ids=["max-plus", "engine"])
@pytest.mark.parametrize("depth,latency", [(1, 0), (2, 7), (4, 1000)])
def test_a_pinned_linear_pipeline_equals_the_full_run(fast, depth, latency, monkeypatch):
    if not fast:
        on_engine(monkeypatch)
    program = linear(500, depth=depth).compile(cost_model=PinnedCosts(), channel_latency_cycles=latency,
                                               compute_values=False)
    runs = maxplus.runs
    full, lean = both(program)
    assert maxplus.runs - runs == (2 if fast else 0)  # the path under test ran both times
    assert figures(lean) == figures(full)
    assert lean.task_count == 1500 and lean.total_cycles == full.total_cycles > 500 * 100


def test_the_linear_pipeline_by_hand():
    """Depth 2, no latency: s0 and s2 (100 cycles) run back to back, s0 over [0, 100n), s1 item i over
    [100(i + 1), 100(i + 1) + 60), s2 over [160, 100n + 160): the makespan is 100n + 160, s0 is busy 100n cycles,
    s1 60n, and >= 2 stages are busy at every cycle but the first 100 (s0 alone) and the last 100 (s2 alone)."""
    n = 300
    stats = linear(n).compile(cost_model=PinnedCosts(), compute_values=False).execute(keep_trace=False).stats()
    total = 100 * n + 160
    assert stats.total_cycles == total and stats.task_count == 3 * n
    assert stats.stage_busy_pct == {"s0": 100.0 * 100 * n / total, "s1": 100.0 * 60 * n / total,
                                    "s2": 100.0 * 100 * n / total}
    assert stats.overlap_pct == 100.0 * (total - 100 - 100) / total


def test_a_pipeline_with_stalls_equals_the_full_run(monkeypatch):
    """A slow middle stage behind a depth-1 channel: the source stalls on backpressure, the sink starves."""
    on_engine(monkeypatch)
    program = linear(200, cycles=(10, 70, 20), depth=1).compile(cost_model=PinnedCosts(), channel_latency_cycles=3)
    full, lean = both(program)
    assert figures(lean) == figures(full)
    assert lean.stall_cycles["s0"] > 0 and lean.stall_cycles["s2"] > 0
    assert len(program.execute().trace.stalls) > 100  # (the full run keeps them)


def test_a_value_computing_run_equals_the_full_run():
    """compute_values=True (the default) takes the general engine: same figures without a trace."""
    program = linear(120).compile(cost_model=PinnedCosts())
    full, lean = both(program)
    assert figures(lean) == figures(full)


def test_a_merge_a_join_and_events_equal_the_full_run():
    """Runs in global time order: two producers on one channel (a merge), a join of two channels, and a process
    that waits on an event each item another records, with per-tile costs."""
    a_k = kernel(name="a", cycles=30)(lambda: None)
    b_k = kernel(name="b")(lambda: None)
    m = Channel(name="m", depth=2)
    x, y = Channel(name="x", depth=1), Channel(name="y", depth=3)
    go = Event(name="go")
    p1 = process("p1").produces(m).body(for_each(Dense[60](), lambda i: send(m, task(a_k, [i], {}))))
    p2 = process("p2").produces(m).body(for_each(Dense[60](), lambda i: send(m, task(
        b_k, [i], {}, cycles=lambda t: 20 + t.params[0] % 7 * 9))))
    split = process("split").consumes(m).produces(x, y).body(consume(m, lambda i: [
        send(x, task(a_k, [i], {})), send(y, task(b_k, [i], {}, cycles=15)), record(go)]))
    join = process("join").consumes(x, y).body(consume([x, y], lambda i, j: task(b_k, [i], {}, cycles=40)))
    waiter = process("waiter").body(for_each(Dense[120](), lambda i: [synchronize(go), task(a_k, [i], {})]))
    program = connect(p1, p2, split, join, waiter).compile(cost_model=PinnedCosts(), channel_latency_cycles=11)
    full, lean = both(program)
    assert figures(lean) == figures(full)
    assert lean.task_count == 60 + 60 + 240 + 120 + 120 and sum(lean.stall_cycles.values()) > 0


@pytest.mark.parametrize("variant", ["pipeline", "data_parallel"])
def test_flash_attention_on_the_npu_model_equals_the_full_run(variant):
    """examples/flash_attention at S=1024: tile channels, a join of the two AIVs' softmax halves, one pipeline per
    core on 8 cores (or the data-parallel variant on 8 cores), priced by the NPU model; ~2,800 spans cut every 5."""
    fa = flash_attention_example("ptort_keep_trace_fa_example")
    workload, _ = fa.build(variant, fa.Config(1024))
    program = workload.compile(compute_values=False)
    full, lean = both(program)
    assert figures(lean) == figures(full)
    assert lean.task_count == 208 and len(lean.core_busy_pct) == 8 and sum(lean.stall_cycles.values()) > 0
    assert lean.memory["hbm_bytes"] > 0 and lean.error_band is not None


@pytest.mark.parametrize("cores", [1, 3, 4])
def test_a_data_parallel_run_on_the_npu_model_equals_the_full_run(cores):
    """Tiles dealt round-robin to several cores, each core's AIVs taking its vector tasks in turn."""
    from ptort_lab import DType, In, Out, P, Tensor, Tile, tl, workload
    n, size = 60, 64
    X = Tensor(shape=(n, size, size), dtype=DType.F32, name="X")
    Y = Tensor(shape=(n, size, size), dtype=DType.F16, name="Y")

    @kernel
    def cast(src: In[Tile[size, size, DType.F32]], dst: Out[Tile[size, size, DType.F16]]):
        tl.store(dst, tl.cast(tl.load(src), DType.F16))

    @workload
    def dp():
        for t in P(Dense[n]()):
            cast[t](src=X[t], dst=Y[t])

    program = dp().dispatch(DispatchPolicy.round_robin(cores)).compile(compute_values=False, machine=SMALL_L2)
    full, lean = both(program)
    assert figures(lean) == figures(full)
    assert len(lean.core_busy_pct) == cores and lean.mode == "data-parallel"


# -- nothing is kept ------------------------------------------------------------------------------------------------
def test_the_trace_and_the_tasks_are_refused_after_a_run_that_kept_none():
    program = linear(10).compile(cost_model=PinnedCosts(), compute_values=False)
    executed = sys._getframe().f_lineno + 1
    program.execute(keep_trace=False)
    for api, read in (("trace", lambda: program.trace), ("tasks", lambda: program.tasks)):
        with pytest.raises(PtortValueError) as e:
            read()
        assert e.value.what == (f"program.{api} is not available: the last run kept no trace "
                                f"(execute(keep_trace=False) at test_keep_trace.py:{executed}), only the figures of "
                                "program.stats().")
        assert e.value.hint == HINT
        assert e.value.where is not None and e.value.where.filename == __file__
    assert program.stats().total_cycles == 10 * 100 + 160 and program.stats().task_count == 30
    assert program.execute().trace.makespan == 10 * 100 + 160  # a run with its trace brings it back
    assert len(program.tasks) == 30


def test_the_timeline_views_refuse_it_too():
    from ptort_lab.viz import plot_timeline
    program = linear(10).compile(cost_model=PinnedCosts(), compute_values=False).execute(keep_trace=False)
    with pytest.raises(PtortValueError, match=r"^program\.trace is not available: the last run kept no trace"):
        plot_timeline(program)
    with pytest.raises(PtortValueError, match=r"^program\.trace is not available"):
        program.trace.to_chrome_json()


@pytest.mark.parametrize("fast", [True, False], ids=["max-plus", "engine"])
def test_the_run_holds_no_records(fast, monkeypatch):
    if not fast:
        on_engine(monkeypatch)
    program = linear(50, depth=1).compile(cost_model=PinnedCosts(), compute_values=False)
    run = program.execute(keep_trace=False)._run
    assert run is not None and not run.kept_trace
    assert run.trace.spans == [] and run.trace.stalls == [] and run.trace.samples == []
    assert run.task_list == [] and run.task_builder is None and run.task_count == 150
    assert run.totals is not None and run.totals.pending and all(not v for v in run.totals.pending.values())
    assert run.trace.processes == ["s0", "s1", "s2"] and run.trace.channels == {"c0": 1, "c1": 1}
    with pytest.raises(PtortValueError, match=r"^this run kept no tasks \(it ran with keep_trace=False\)\."):
        _ = run.tasks
    full = program.execute().trace
    assert (run.trace.makespan, run.trace.process_end) == (full.makespan, full.process_end)


def test_peak_memory_per_task_is_bounded(monkeypatch):
    """20,000 tasks on the general engine (a 3-stage pinned pipeline), spans counted every 4,096. A full run holds
    ~700 bytes a task (its Task objects and spans); one that keeps no trace holds, at its peak, the spans not counted
    yet (4,096 Span tuples of ~200 bytes: ~0.8 MB) and the set-up, nothing per task: under 100 bytes a task here,
    and its peak does not grow when the run is twice as long."""
    on_engine(monkeypatch)
    monkeypatch.setattr(runner_module, "FLUSH_SPANS", 4096)

    def peak(n: int, keep: bool) -> int:
        program = linear(n).compile(cost_model=PinnedCosts(), compute_values=False)
        gc.collect()
        tracemalloc.start()
        try:
            program.execute(keep_trace=keep)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    tasks = 3 * 6_667
    full, lean = peak(6_667, True), peak(6_667, False)
    assert lean / tasks < 100 and full / tasks > 500 and full > 8 * lean
    assert lean < peak(6_667 // 2, False) + 100_000  # 10,000 more tasks: no more than 10 bytes a task more


# -- steady state and max-plus ---------------------------------------------------------------------------------------
def test_steady_state_keeps_no_trace_either():
    program = linear(2_000).compile(cost_model=PinnedCosts())
    kept = program.execute(steady_state=True).stats()
    lean = program.execute(steady_state=True, keep_trace=False).stats()
    assert kept.steady_state.note.endswith("the trace is the 6-tile run.")
    assert lean.steady_state.note.endswith("no trace kept (keep_trace=False).")
    assert dataclasses.replace(lean.steady_state, note="") == dataclasses.replace(kept.steady_state, note="")
    assert figures(lean) | {"steady_state": None} == figures(kept) | {"steady_state": None}
    with pytest.raises(PtortValueError, match=r"^program\.trace is not available"):
        _ = program.trace
    assert program.execute(steady_state=True, tiles=10**9, keep_trace=False).stats().total_cycles == 10**11 + 160


def test_steady_state_falls_back_to_a_full_run_that_keeps_no_trace():
    """Per-tile costs never repeat: the full run is used, here without a trace, with the figures of a full run."""
    a = kernel(name="a")(lambda: None)
    ch = Channel(name="c", depth=2)
    src = process("src").produces(ch).body(for_each(Dense[300](), lambda i: send(ch, task(
        a, [i], {}, cycles=lambda t: 10 + t.params[0] ** 2 % 97))))
    dst = process("dst").consumes(ch).body(consume(ch, lambda i: task(a, [i], {}, cycles=50)))
    program = connect(src, dst).compile(cost_model=PinnedCosts())
    lean = program.execute(steady_state=True, keep_trace=False).stats()
    assert lean.steady_state.note.startswith("no steady state:")
    full = program.execute().stats()
    assert lean.total_cycles == full.total_cycles and lean.stage_busy_pct == full.stage_busy_pct
    assert lean.stall_cycles == full.stall_cycles and lean.task_count == full.task_count == 600


# -- refusals -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("value", ["no", 0, 1.0])  # (None is the default: as program.disable_tracing() sets it)
def test_keep_trace_must_be_a_bool(value):
    program = linear(2).compile(cost_model=PinnedCosts())
    with pytest.raises(PtortTypeError) as e:
        program.execute(keep_trace=value)
    assert e.value.what == (f"execute(keep_trace=...) must be True or False, got {type(value).__name__} "
                            f"{value!r}.")
    assert e.value.hint == ("Pass keep_trace=False to keep only the statistics of a huge run (no trace), True to "
                            "keep its trace, or leave it out to follow program.enable_tracing() / disable_tracing() "
                            "(a trace unless disabled).")


class LooksBack(CostModel):
    """A cost model of the user's own whose tasks' spans start 50 cycles before the task does."""

    clock_hz = 1e9
    time_ordered = False

    def task_timing(self, task, ir, core, start, lane, pipelined):
        return start + 10, start + 10, [span_of(task, core, lane, max(0, start - 50), start + 10)]


@pytest.mark.parametrize("keep", [True, False], ids=["trace", "stats-only"])
def test_spans_before_their_task_s_start_are_refused(keep):
    """Cutting at the earliest clock needs every span to start at or after its task's start, and so does a trace
    whose makespan is its last end: a user's cost model whose spans start earlier is refused at the first such task,
    with or without a trace (timing_check.py; stats.py keeps its own refusal as a backstop for ptort_lab's models)."""
    program = linear(40).compile(cost_model=LooksBack(), compute_values=False)
    with pytest.raises(SimulationError) as e:
        program.execute(keep_trace=keep)
    assert e.value.what.startswith("LooksBack.task_timing returned (")
    assert e.value.what.endswith("a span starts at cycle 0, before the task's start at cycle 10.")
    assert e.value.where is not None and e.value.where.filename == __file__


class NotASpan(CostModel):
    """A cost model of the user's own whose spans are not spans."""

    clock_hz = 1e9

    def task_timing(self, task, ir, core, start, lane, pipelined):
        return start + 10, start + 10, [(core, lane, start)]


@pytest.mark.parametrize("keep", [True, False])
def test_records_that_are_not_spans_are_refused_with_or_without_a_trace(keep):
    """(The check is timing_check.py's, on every task of a user's model: tests/sim/test_timing_check.py.)"""
    program = linear(3).compile(cost_model=NotASpan(), compute_values=False)
    with pytest.raises(SimulationError) as e:
        program.execute(keep_trace=keep)
    assert e.value.what == ("NotASpan.task_timing returned (10, 10, [(0, 's0', 0)]): a span is (0, 's0', 0), not a "
                            "Span(core, lane, name, index, start, end, bytes, process, task_id).")


# -- SpanTotals: the one definition, cut anywhere ------------------------------------------------------------------
def _by_helpers(spans: list[Span]) -> tuple[Any, ...]:
    """The figures by the public helpers (busy_cycles, overlap_cycles), one group at a time."""
    lanes: dict[Any, list[Span]] = {}
    cores: dict[Any, list[Span]] = {}
    for sp in spans:
        lanes.setdefault((sp.core, sp.lane), []).append(sp)
        cores.setdefault(sp.core, []).append(sp)
    stages = stage_groups(type("T", (), {"spans": spans})())  # (stage_groups reads .spans only)
    return ({k: busy_cycles(v) for k, v in lanes.items()}, {k: busy_cycles(v) for k, v in cores.items()},
            {k: busy_cycles(v) for k, v in stages.items()}, overlap_cycles(stages)[0], sum(sp.bytes for sp in spans))


span_strategy = st.builds(lambda core, lane, proc, start, length, nbytes: Span(core, lane, "k", 0, start,
                                                                                 start + length, nbytes, proc, 0),
                          st.integers(0, 2), st.sampled_from(["V", "M"]), st.sampled_from(["", "p", "q"]),
                          st.integers(0, 60), st.integers(-3, 25), st.integers(0, 5))


@settings(max_examples=300, deadline=None)
@given(st.lists(span_strategy, max_size=40), st.lists(st.integers(0, 40), max_size=6))
def test_cut_totals_equal_the_helpers_for_any_spans_and_cuts(spans, splits):
    """Spans fed in chunks, each chunk cut at the earliest start of the spans after it (as a run's watermark): the
    same figures as SpanTotals.of and as busy_cycles / overlap_cycles on whole groups, in the same key order."""
    spans.sort(key=lambda sp: sp.start)
    totals = SpanTotals()
    bounds = sorted({0, len(spans), *(min(b, len(spans)) for b in splits)})
    for a, b in zip(bounds, bounds[1:]):
        totals.add(spans[a:b])
        totals.flush(spans[b].start if b < len(spans) else None)
    totals.flush()
    whole = SpanTotals.of(spans)
    lanes, cores, stages, multi, nbytes = _by_helpers(spans)
    for t in (totals, whole):
        assert list(t.lanes.items()) == list(lanes.items())
        assert dict(sorted(t.cores.items())) == dict(sorted(cores.items()))
        assert list(t.stages.items()) == list(stages.items())
        assert (t.multi, t.bytes_moved, t.span_count) == (multi, nbytes, len(spans))
    assert totals.kept == 0 and all(not v for v in totals.pending.values())


def test_a_cut_keeps_only_what_is_still_open():
    totals = SpanTotals()
    totals.add([Span(0, "V", "k", 0, 0, 10, 0, "p"), Span(0, "V", "k", 1, 10, 30, 0, "p"),
                Span(0, "M", "k", 2, 5, 8, 0, "q"), Span(0, "V", "k", 3, 40, 50, 0, "p")])
    totals.flush(20)
    assert totals.pending == {(0, "V", "p"): [(20, 30), (40, 50)], (0, "M", "q"): []} and totals.kept == 2
    assert totals.lanes == {(0, "V"): 20, (0, "M"): 3} and totals.cores == {0: 20} and totals.multi == 3
    with pytest.raises(SpanBeforeCut) as e:
        totals.add([Span(0, "V", "k", 4, 19, 25, 0, "p")])
    assert e.value.cut == 20 and e.value.span.start == 19
    totals.add([Span(0, "M", "k", 5, 20, 45, 0, "q")])
    totals.flush()
    assert totals.lanes == {(0, "V"): 40, (0, "M"): 28} and totals.cores == {0: 50}
    assert totals.stages == {"p": 40, "q": 28} and totals.multi == 3 + 10 + 5


def test_a_run_s_start_column_is_read_without_building_its_spans():
    """SpanColumns.ints(4): the starts in the columns, then the pending ones; None for a field that is not an int
    column, or once a record that does not fit turned the store into a list of anything."""
    from ptort_lab.sim.trace import SpanColumns
    view = SpanColumns([Span(0, "V", "k", 0, 5, 9), Span(1, "M", "k", 1, 2**40, 2**41)])
    view.append(Span(0, "V", "k", 2, 7, 8))
    assert view.ints(4).tolist() == [5, 2**40, 7] and view.ints(5).tolist() == [9, 2**41, 8]
    assert view.ints(1) is None and view.ints(3) is None
    assert SpanColumns().ints(4).tolist() == []
    view.append(Span(0, "V", "k", 3, "late", 9))
    view.compact()  # (does not fit: every record pending now)
    assert view.ints(4) is None
