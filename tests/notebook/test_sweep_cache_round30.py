"""A sweep cache row edited by hand into values no run gives is ignored, recomputed and replaced with one warning,
as the cache's docstring says of any entry edited by hand (round 30: only the fields' types used to be checked)."""
from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any, Callable

import pytest

from ptort_lab.notebook import sweep
from ptort_lab.spec_pipeline import build
from ptort_lab.sweeps import SweepCacheWarning

DEPTHS = [1, 2, 3]


def _run(cache: Path, mode: str = "both") -> Any:
    return sweep(build, depth=DEPTHS, tiles=2, mode=mode, executor="serial", cache=cache, progress=False)


def _result_file(cache: Path, depth: int) -> Path:
    """The cache file of the row of the point at ``depth``."""
    return next(f for f in (cache / "v1" / "results").glob("*/*.json")
                if json.loads(f.read_text())["row"]["depth"] == depth)


def _edit(path: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads(path.read_text())
    change(data["row"])
    path.write_text(json.dumps(data))  # (NaN and Infinity as Python's json writes and reads them)


EDITS: dict[str, Callable[[dict[str, Any]], None]] = {
    "negative cycles": lambda r: r.update(pipeline_cycles=-5),
    "bool cycles": lambda r: r.update(data_parallel_cycles=True),
    "NaN speedup": lambda r: r.update(speedup=math.nan),
    "infinite speedup": lambda r: r.update(speedup=math.inf),
    "speedup not the cycles' ratio": lambda r: r.update(speedup=r["speedup"] * 2),
    "bool overlap": lambda r: r.update(pipeline_overlap_pct=True),
    "overlap over 100%": lambda r: r.update(pipeline_overlap_pct=100.5),
    "NaN overlap": lambda r: r.update(data_parallel_overlap_pct=math.nan),
    "negative time": lambda r: r.update(pipeline_us=-0.5),
    "fractional bytes": lambda r: r.update(data_parallel_bytes_moved=1.5),
    "negative cores used": lambda r: r.update(pipeline_cores=-1),
    "bool tile side": lambda r: r.update(tile=[r["tile"][0], True]),
    "another point's depth": lambda r: r.update(depth=3),
    "one figure of a run dropped": lambda r: r.update(pipeline_cycles=None),
    "a field no row has": lambda r: r.update(note="checked by hand"),
}


@pytest.mark.parametrize("edit", list(EDITS), ids=list(EDITS))
def test_a_row_edited_by_hand_is_ignored_recomputed_and_replaced(tmp_path, edit):
    """The edited row is not shown: the point is computed again (its row as the first sweep's), one
    SweepCacheWarning names the file, and the next sweep reuses the replaced row without a warning."""
    cache = tmp_path / "cache"
    first = _run(cache)
    bad = _result_file(cache, 2)
    _edit(bad, EDITS[edit])
    with pytest.warns(SweepCacheWarning) as warned:
        again = _run(cache)
    assert [str(w.message) for w in warned] == [
        f"sweep cache: 1 unreadable entry ignored, recomputed and replaced ({bad})."]
    assert again.rows == first.rows
    assert [p.cached for p in again.points] == [True, False, True]
    assert (again.cache.reused, again.cache.computed) == (2, 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SweepCacheWarning)
        third = _run(cache)
    assert third.rows == first.rows and third.cache.reused == 3


@pytest.mark.parametrize("edit", ["negative cycles", "a speedup without a twin"])
def test_a_pipeline_only_row_edited_by_hand_is_recomputed(tmp_path, edit):
    """mode='pipeline' rows hold None for the data-parallel run and the speedup: those rows read back as they are,
    but a negative cycle count, or a speedup where no twin ran, is an edit."""
    cache = tmp_path / "cache"
    first = _run(cache, "pipeline")
    assert first.rows[1]["data_parallel_cycles"] is None and first.rows[1]["speedup"] is None
    bad = _result_file(cache, 2)
    _edit(bad, (lambda r: r.update(pipeline_cycles=-5)) if edit == "negative cycles"
          else (lambda r: r.update(speedup=1.0)))
    with pytest.warns(SweepCacheWarning, match="1 unreadable entry ignored, recomputed and replaced"):
        again = _run(cache, "pipeline")
    assert again.rows == first.rows and [p.cached for p in again.points] == [True, False, True]
    with warnings.catch_warnings():
        warnings.simplefilter("error", SweepCacheWarning)
        assert _run(cache, "pipeline").cache.reused == 3
