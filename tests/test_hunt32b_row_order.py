"""Bug hunt 32b: a row taken from the sweep cache has its keys in the order of a computed row (``worker.row_of``:
the knobs, each run's cycles and overlap %, the speedup, then each run's µs, cores and bytes moved), although the
cache's files store them sorted; so ``result.rows`` (and a DataFrame of them) looks the same either way."""
from __future__ import annotations

from pathlib import Path

from ptort_lab.explore import Knobs
from ptort_lab.spec_pipeline import build
from ptort_lab.sweeps import run_sweep
from ptort_lab.sweeps.cache import ROW_KEYS

ORDER = ["depth", "tile", "tiles", "cores", "pipeline_cycles", "data_parallel_cycles", "pipeline_overlap_pct",
         "data_parallel_overlap_pct", "speedup", "pipeline_us", "pipeline_cores", "pipeline_bytes_moved",
         "data_parallel_us", "data_parallel_cores", "data_parallel_bytes_moved"]


def test_cached_rows_keep_the_computed_key_order(tmp_path: Path) -> None:
    assert set(ORDER) == ROW_KEYS
    computed = run_sweep(build, depth=[1, 2], tiles=[2], knobs=Knobs(tile=(64, 64)), executor="serial",
                         cache=tmp_path, progress=False)
    cached = run_sweep(build, depth=[1, 2], tiles=[2], knobs=Knobs(tile=(64, 64)), executor="serial",
                       cache=tmp_path, progress=False)
    assert (computed.cache.computed, cached.cache.reused) == (2, 2)
    assert [list(row) for row in computed.rows] == [ORDER, ORDER]
    assert [list(row) for row in cached.rows] == [ORDER, ORDER]
    assert cached.rows == computed.rows
    assert [type(row["tile"]) for row in cached.rows] == [tuple, tuple]


def test_cached_rows_keep_the_order_with_one_mode(tmp_path: Path) -> None:
    """A pipeline-only sweep: the data-parallel fields are None, in their places."""
    kwargs = dict(depth=[2], tiles=[2], knobs=Knobs(tile=(64, 64)), mode="pipeline", executor="serial",
                  cache=tmp_path, progress=False)
    computed = run_sweep(build, **kwargs)
    cached = run_sweep(build, **kwargs)
    assert cached.cache.reused == 1
    assert list(cached.rows[0]) == list(computed.rows[0]) == ORDER
    assert cached.rows == computed.rows


def test_row_order_holds_every_run_field() -> None:
    from ptort_lab.sweeps.cache import _RUN_FIELDS, _RUN_PREFIXES, ROW_INTS, ROW_ORDER

    assert len(ROW_ORDER) == len(set(ROW_ORDER))
    assert set(ROW_ORDER) == {"tile", *ROW_INTS, "speedup", *(f"{p}_{n}" for p in _RUN_PREFIXES for n in _RUN_FIELDS)}
