"""Compact traces (issue 14 part 2): a run keeps its spans and stalls column by column (trace.SpanColumns,
StallColumns), and ``trace.spans`` reads like the list of Span tuples it was before: same records, same exported
bytes. The export digests below were computed BEFORE the columns existed (the tree of commit 2d3e35c), by
``_export_digest``, and pasted here unchanged."""
from __future__ import annotations

import contextlib
import copy
import hashlib
import io
import pickle
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from loaders import flash_attention_example, load_file
from pinned_chains import linear

import ptort_lab.program as program_module
from ptort_lab.sim import maxplus
from ptort_lab.sim import runner as runner_module
from ptort_lab.sim.runner import PinnedCosts
from ptort_lab.sim.trace import CHUNK_ROWS, Span, SpanColumns, Stall, StallColumns

ROOT = Path(__file__).resolve().parents[2]
EXPECTED = {  # sha256 of to_chrome_json(), first 16 hex digits, before the columns
    "spec data-parallel": "dfa247d3a122eeb2",
    "spec csp pipeline": "9eec35c662fe6f01",
    # since a join frees all its slots before its next pulls (tests/sim/test_join_slots.py): the same spans and
    # stalls, but update's alpha/rowsum slots show free from the end of its task, not from pv's next item
    # since the L2 serves a read from the lines of a tile's sub-blocks (tests/sim/test_l2_subblocks.py); before:
    # d414e6cfb7d5a899 and 962063c9be4c8511 (and before the join fix: ccaa2555b795c38a for the pipeline)
    "fa pipeline S=1024": "4e60e80582ab174f",
    "fa data_parallel S=1024": "7eea0241c0865cfb",
}

# one of each kind of value a span holds: plain ints, names, every kind of index, times past 2**31 (8-byte columns)
ODD = [Span(0, "V", "k", 3, 0, 10, 64, "p", 0), Span(1, "M", "q", (1, "a"), 5, 9, 3, "p2", 1),
       Span(1, "M", "q", None, 5, 9, 0, "p2", 2), Span(2, "V", "k", True, 9, 11, 0, "p", 3),
       Span(2, "V", "k", 2**70, 9, 11, 0, "p", 4), Span(2, "V", "k", "tile 3", 9, 11, 0, "p", 5),
       Span(3, "V", "k", -7, 2**40, 2**41, 2**50, "p", -1), Span(0, "V", "k", 1.5, 0, 1, 0, "", 6)]


def _export_digest(program: Any) -> str:
    return hashlib.sha256(program.trace.to_chrome_json().encode()).hexdigest()[:16]


def run_chain(n: int, fast: bool) -> Any:
    """A timing-only run of ``linear(n)`` on PinnedCosts: the max-plus path (``fast``) or the general engine."""
    program = linear(n).compile(cost_model=PinnedCosts(), channel_latency_cycles=7, compute_values=False)
    saved = maxplus.plan
    if not fast:
        maxplus.plan = lambda *args, **kwargs: None
    try:
        program.execute()
    finally:
        maxplus.plan = saved
    return program


# -- the view -------------------------------------------------------------------------------------------------------
def test_the_view_reads_back_every_span_as_appended():
    view = SpanColumns(ODD)
    assert view._rows == len(ODD) and view.pending == []  # all in the columns
    assert len(view) == 8 and view == ODD and ODD == view and list(view) == ODD
    assert [[type(v) for v in sp] for sp in view] == [[type(v) for v in sp] for sp in ODD]
    assert view[3].index is True and view[4].index == 2**70 and view[6].start == 2**40 and view[7].index == 1.5
    assert view[-1] == ODD[-1] and view[1:4] == ODD[1:4] and view[::-3] == ODD[::-3] and view[5:2] == []
    assert isinstance(view[0], Span) and view[0].cycles == 10
    with pytest.raises(IndexError):
        view[8]
    with pytest.raises(IndexError):
        view[-9]
    assert view != ODD[:-1] and view != [*ODD[:-1], ODD[0]] and view != tuple(ODD)
    assert pickle.loads(pickle.dumps(view)) == ODD and view.copy() == ODD


def test_appends_past_a_chunk_keep_their_order():
    view = SpanColumns()
    spans = [Span(k % 3, f"lane{k % 5}", "k", k, k, k + 2, 0, "p", k) for k in range(CHUNK_ROWS + 10)]
    for sp in spans[:CHUNK_ROWS]:
        view.append(sp)
    view.compact()
    view.extend(spans[CHUNK_ROWS:])  # pending, read after the columns
    assert view._rows == CHUNK_ROWS and len(view.pending) == 10
    assert view == spans and view[CHUNK_ROWS + 3] == spans[CHUNK_ROWS + 3] and view[-12:] == spans[-12:]


def test_a_record_that_does_not_fit_turns_the_store_into_a_list():
    """numpy numbers (a custom cost model's) are kept as they are, not made ints: check_trace reports or converts
    them, as for a list."""
    view = SpanColumns(ODD[:2])
    odd = Span(np.int64(1), "V", "k", 0, 0, 1)
    view.append(odd)
    view.compact()
    assert view == [*ODD[:2], odd] and type(view[2].core) is np.int64 and view._rows == 0


def test_stalls_read_back_as_stalls():
    stalls = [Stall("p", "backpressure from 'c'", 1, 2), Stall("q", "consume from 'c'", 2**33, 2**34)]
    view = StallColumns(stalls)
    assert view == stalls and view[1].end == 2**34 and isinstance(view[0], Stall)


# -- runs -----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fast", [True, False])
def test_a_run_keeps_its_records_in_columns(fast, monkeypatch):
    """The max-plus path (columns straight from its arrays) and the engine (tuples compacted every CHUNK_ROWS past
    COMPACT_AFTER_ROWS, here lowered to 1000) give the same records, worked out by hand for the first items: stages
    100, 60, 100 cycles, latency 7, depth 2."""
    monkeypatch.setattr(runner_module, "COMPACT_AFTER_ROWS", 1000)
    program = run_chain(3 * CHUNK_ROWS, fast)
    tr = program.trace()
    assert isinstance(tr.spans, SpanColumns) and isinstance(tr.stalls, StallColumns)
    assert tr.spans._rows == len(tr.spans) == 9 * CHUNK_ROWS and tr.stalls._rows == len(tr.stalls)
    s1 = [(sp.lane, sp.name, sp.index, sp.start, sp.end) for sp in tr.spans[:40] if sp.process == "s1"][:2]
    assert s1 == [("s1", "s1", 0, 107, 167), ("s1", "s1", 1, 207, 267)]  # s0 ends items at 100, 200; +7 latency
    assert tr.stalls[0] == Stall("s1", "starved on 'c0'", 0, 107)


def test_the_max_plus_columns_equal_the_engine_records(monkeypatch):
    """Also when the engine compacts during the run (past COMPACT_AFTER_ROWS, here lowered to 1000)."""
    fast = run_chain(CHUNK_ROWS // 2 + 5, True).trace()
    calls = []
    compact = SpanColumns.compact
    monkeypatch.setattr(runner_module, "COMPACT_AFTER_ROWS", 1000)
    monkeypatch.setattr(SpanColumns, "compact", lambda self: (calls.append(len(self.pending)) if self.pending
                                                              else None) or compact(self))
    slow = run_chain(CHUNK_ROWS // 2 + 5, False).trace()
    assert calls == [1001, CHUNK_ROWS + 1, 3 * (CHUNK_ROWS // 2 + 5) - 1001 - CHUNK_ROWS - 1]  # the last at the end
    assert fast.spans == slow.spans and fast.stalls == slow.stalls and fast.samples == slow.samples
    assert fast.to_chrome_json() == slow.to_chrome_json()


@pytest.mark.parametrize("copy_of", [lambda tr: pickle.loads(pickle.dumps(tr)), copy.deepcopy, copy.copy])
def test_a_run_trace_copies_and_pickles_with_its_samples(copy_of):
    """A run's samples are computed when first read (a function of the run's engine, whose generators neither copy
    nor pickle): copy, deepcopy and pickle of a trace nobody read yet take them computed, equal to the run's own."""
    tr = run_chain(200, False).trace()
    assert callable(tr.__dict__["_samples"])
    made = copy_of(tr)
    assert not callable(made.__dict__["_samples"]) and made.samples == tr.samples and len(made.samples) > 200
    assert (made.spans, made.stalls, made.makespan, made.process_end) == (tr.spans, tr.stalls, tr.makespan,
                                                                         tr.process_end)


def test_a_short_engine_run_keeps_tuples():
    """Below COMPACT_AFTER_ROWS the engine's records stay tuples (compacting costs time a short run need not pay)."""
    tr = run_chain(100, False).trace()
    assert tr.spans._rows == 0 and len(tr.spans.pending) == 300 and tr.spans == run_chain(100, True).trace().spans


def test_stats_read_the_columns_as_they_read_a_list():
    program = run_chain(1000, False)
    as_list = dict(vars(program.stats()))
    tr = program.trace()
    tr.spans, tr.stalls = list(tr.spans), list(tr.stalls)
    program._stats = None
    assert dict(vars(program.stats())) == as_list


@pytest.mark.parametrize("fast", [True, False])
def test_bytes_per_task_stay_under_the_bound(fast, monkeypatch):
    """What a run keeps once it finished (spans, stalls, occupancy steps, and on the max-plus path no Task objects:
    they are built when read) at 1e5 tasks: <= 100 bytes a task on the max-plus path; on the engine, where every
    Task object is kept (3e4 tasks), the spans and stalls cost <= 70 bytes a task of the total."""
    n = 100_000 // 3 if fast else 10_000  # (the engine under tracemalloc takes ~10 us a task)
    program = linear(n).compile(cost_model=PinnedCosts(), compute_values=False)
    monkeypatch.setattr(runner_module, "COMPACT_AFTER_ROWS", 1000)  # (a long run's: compacted from 1000 records)
    saved = maxplus.plan
    if not fast:
        maxplus.plan = lambda *args, **kwargs: None
    tracemalloc.start()
    try:
        program.execute()
        held, _ = tracemalloc.get_traced_memory()
        tr = program._run.trace
        records = tracemalloc.get_traced_memory()[0]
        tr.spans, tr.stalls = [], []
        records -= tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
        maxplus.plan = saved
    tasks = 3 * n
    if fast:
        assert held / tasks <= 100
    assert records / tasks <= 70


# -- exported files -------------------------------------------------------------------------------------------------
def test_exported_traces_are_byte_identical_to_before():
    ran: list[Any] = []
    execute = program_module.Program.execute

    def keep(self: Any, *args: Any, **kwargs: Any) -> Any:
        ran.append(self)
        return execute(self, *args, **kwargs)

    example = load_file("ptort_compact_spec_example", ROOT / "examples/csp_pipeline/csp_pipeline_example.py")
    program_module.Program.execute = keep  # type: ignore[method-assign]
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            example.main([])
    finally:
        program_module.Program.execute = execute  # type: ignore[method-assign]
    got = {"spec data-parallel": _export_digest(ran[0]), "spec csp pipeline": _export_digest(ran[1])}
    fa = flash_attention_example("ptort_compact_fa_example")
    for variant in ("pipeline", "data_parallel"):
        workload, _ = fa.build(variant, fa.Config(1024))
        got[f"fa {variant} S=1024"] = _export_digest(workload.compile(compute_values=False).execute())
    assert got == EXPECTED
