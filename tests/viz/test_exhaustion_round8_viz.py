"""Round 8 (resource exhaustion): long traces drawn merged per time bin, %%ptort's tile limit from a cell's memory and
its out-of-memory message, and kernel tiles refused before numpy allocates more than the host budget."""
from __future__ import annotations

import argparse

import numpy as np
import pytest
from IPython.core.error import UsageError
from source_lines import here, located

from ptort_lab import Dense, DType, In, Out, P, PinnedCosts, Tensor, Tile, kernel, tl, workload
from ptort_lab.errors import KernelExecutionError, PtortValueError
from ptort_lab.knobs import CELL_BYTES_PER_TILE, Knobs, cell_tile_limit, check_cell_tiles
from ptort_lab.notebook import magic
from ptort_lab.sim import engine, numerics
from ptort_lab.sim.trace import Span, Trace
from ptort_lab.viz import binning, compare, figure_png, plot_timeline, timeline


def _long_trace(n: int) -> Trace:
    """Two processes taking turns, ``n`` spans each: 'a' busy [10i, 10i+6), 'b' busy [10i+6, 10i+10)."""
    spans = []
    for i in range(n):
        spans.append(Span(0, "a", "load", i, 10 * i, 10 * i + 6, 0, "a", 2 * i))
        spans.append(Span(0, "b", "work", i, 10 * i + 6, 10 * i + 10, 0, "b", 2 * i + 1))
    return Trace(spans=spans, processes=["a", "b"])


@pytest.fixture
def small_budget(monkeypatch):
    """MAX_DRAWN_SPANS of 100, so a 1,000-span trace is 'long'."""
    monkeypatch.setattr(binning, "MAX_DRAWN_SPANS", 100)
    monkeypatch.setattr(timeline, "MAX_DRAWN_SPANS", 100)


def test_a_trace_within_the_span_budget_is_drawn_as_it_is():
    trace = _long_trace(10)
    assert binning.binned(trace) is trace


def test_spans_of_one_lane_in_touching_bins_merge_and_far_ones_stay_apart(small_budget):
    trace = _long_trace(500)  # 1,000 spans over 5,000 cycles: 5 cycles a bin
    trace.spans.append(Span(0, "a", "load", 9, 9000, 9003, 0, "a", 9999))  # far after the rest
    merged = binning.binned(trace)
    assert [(sp.process, sp.start, sp.end) for sp in merged.spans] == [("a", 0, 4996), ("b", 6, 5000),
                                                                        ("a", 9000, 9003)]
    assert all(sp.index is None and sp.task_id == -1 for sp in merged.spans)
    assert merged.makespan == trace.makespan and merged.processes == ["a", "b"]


def test_a_long_trace_is_drawn_merged_and_its_title_says_so(small_budget):
    fig = plot_timeline(_long_trace(500))
    title = fig.axes[0].get_title(loc="left")
    assert title == ("pipeline: 5,000 cycles = 2.78 µs, overlap 0.0% (1,000 spans drawn merged into 1,000 time "
                     "bins per lane)")
    assert figure_png(fig)[:4] == b"\x89PNG"
    fig = compare(_long_trace(500), _long_trace(20))
    assert "1,000 spans drawn merged into 1,000 time bins per lane" in fig.axes[0].get_title(loc="left")
    assert fig.axes[1].get_title(loc="left") == "data-parallel: 200 cycles = 0.11 µs, overlap 0.0%"  # (40 spans)


def test_a_long_runs_title_keeps_the_whole_runs_overlap(small_budget):
    from ptort_lab import Channel, connect, consume, for_each, process, send, task
    load, work = kernel(name="load", cycles=100)(lambda: None), kernel(name="work", cycles=60)(lambda: None)
    ch = Channel(name="ch", depth=2)
    src = process("src").produces(ch).body(for_each(Dense[300](), lambda t: send(ch, task(load, [t], {}))))
    dst = process("dst").consumes(ch).body(consume(ch, lambda t: task(work, [t], {})))
    program = connect(src, dst).compile(cost_model=PinnedCosts(), compute_values=False).execute()
    title = plot_timeline(program).axes[0].get_title(loc="left")
    assert title == (f"pipeline: {program.stats().total_cycles:,} cycles = {program.stats().time_us:.2f} µs, overlap "
                     f"{program.stats().overlap_pct:.1f}% (600 spans drawn merged into 1,000 time bins per lane)")


def _options(**given):
    args = dict(mode="both", depth=None, tiles=None, cores=None, tile=None, show=None, machine=None, latency=None,
                trace_out=None, output=None, interact=False)
    args.update(given)
    return argparse.Namespace(**args)


def test_the_cell_tile_limit_comes_from_the_cells_memory(monkeypatch):
    limit, _ = cell_tile_limit("both")
    assert limit == (2 * 2**30) // CELL_BYTES_PER_TILE == 262_144
    with pytest.raises(UsageError) as e:
        magic.parse_options(_options(tiles=2_000_000))
    assert str(e.value) == ("--tiles 2000000 is more than the 262,144 tiles a notebook cell may study (at ~8 KB a "
                            "tile, its runs and display fill the 2 GiB a cell may hold); use --tiles 262144 or fewer "
                            "(a few thousand show a pipeline's steady state).")
    monkeypatch.setattr(engine, "MAX_RUN_BYTES", 2**28)  # a lower run limit lowers it too
    assert cell_tile_limit("pipeline")[0] == 32_768
    with pytest.raises(PtortValueError) as e:
        check_cell_tiles(Knobs(tiles=40_000), "pipeline")
    assert e.value.what == ("TILES is 40,000: more than the 32,768 tiles a notebook cell may study (at ~8 KB a tile, "
                            "its runs and display fill the 0.25 GiB a cell may hold), so it is refused before "
                            "building anything.")
    assert e.value.hint == ("Use at most 32,768 tiles (a few thousand already show a pipeline's steady state), or "
                            "larger tiles.")


def test_a_cell_out_of_memory_is_a_short_message_at_the_magic_line():
    opts = magic.parse_options(_options(tiles=200_000))
    body = magic.CellBody("x = 1\n", "--tiles 200000", 7)
    error = magic._out_of_memory("while simulating the pipeline", body, "--tiles 200000", opts)
    assert error.what == "%%ptort ran out of host memory while simulating the pipeline."
    assert error.hint == ("Use fewer tiles than --tiles 200000 or smaller ones (--tile), or compile the kernels "
                          "timing-only (compute_values=False), which keeps no tensor values. The cell stored no "
                          "result: _ptort, DEPTH, TILE, TILES and CORES are as before it.")
    assert (error.where.filename, error.where.lineno) == (body.filename, 1)


T = Tile[16, 16, DType.F32]


def test_a_pinned_kernels_huge_tile_is_refused_before_numpy_allocates_it(monkeypatch):
    monkeypatch.setattr(numerics, "MAX_VALUE_BYTES", 2**20)  # 1 MiB: a 1024x1024 F32 tile is 4 MiB
    line = here() + 4  # the tl.full line

    @kernel(cycles=100)
    def k(src: In[T], dst: Out[T]):
        big = tl.full(1024, 1024, 1.0)
        tl.store(dst, tl.slice(tl.add(big, big), rows=(0, 16), cols=(0, 16)))

    x, y = Tensor(data=np.ones((1, 16, 16), np.float32)), Tensor(data=np.zeros((1, 16, 16), np.float32))

    @workload
    def w():
        for t in P(Dense[1]()):
            k[t](src=x[t], dst=y[t])

    with pytest.raises(KernelExecutionError) as e:
        w().compile(cost_model=PinnedCosts()).execute()
    assert e.value.what == ("kernel 'k' would allocate a 1024x1024 F32 tile of 4,194,304 bytes (4.0 MiB) at `full "
                            "1.0` on tile 0: more than the 1.0 MiB of tile values one launch may hold on the host "
                            "(ptort_lab.sim.numerics.MAX_VALUE_BYTES), so it is refused before numpy allocates it.")
    assert e.value.hint.startswith("Use smaller tiles (the NPU cost model, the default, refuses tiles that do not "
                                   "fit the chip's buffers; PinnedCosts checks no tile size), or run timing-only "
                                   "with compile(compute_values=False), which computes no values.")
    located(e, line)
    assert not y.data.any()
