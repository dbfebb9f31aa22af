"""Sweeps, round 31: settings kept as class attributes (or read through a module's objects) are in the sweep's point
key and reach its worker processes, so changing one never gives back a stale row; a setting that cannot be keyed
turns the point lookups off, saying so. A bad cache row that only a worker process reads is warned of in the
notebook, once, with the notebook's own words."""
from __future__ import annotations

import importlib
import json
import re
import sys
import textwrap
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from ptort_lab.spec_pipeline import build as spec_build
from ptort_lab.spec_pipeline import spec_pipeline
from ptort_lab.sweeps import SweepCacheWarning, run_sweep

DEPTHS = [1, 2]


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch) -> Path:
    """Each test its own sweep cache (the default location, through PTORT_LAB_CACHE)."""
    monkeypatch.setenv("PTORT_LAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "sweeps"


@pytest.fixture
def user_modules(tmp_path, monkeypatch):
    """Write modules into a folder on sys.path and import them (removed from sys.modules after the test)."""
    folder = tmp_path / "mods"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    names: list[str] = []

    def write(name: str, text: str) -> Any:
        (folder / f"{name}.py").write_text(textwrap.dedent(text))
        importlib.invalidate_caches()
        names.append(name)
        return importlib.import_module(name)

    yield write
    for name in names:
        sys.modules.pop(name, None)


def cycles(tiles: int) -> list[int]:
    """The pipeline cycles of the spec pipeline at DEPTHS with ``tiles`` 32x32 tiles: what a fresh run gives."""
    return [spec_pipeline(d, (32, 32), tiles, seed=None).pipeline.compile(compute_values=False).execute()
            .stats().total_cycles for d in DEPTHS]


def pipeline_cycles(result: Any) -> list[int]:
    return [row["pipeline_cycles"] for row in result.rows]


def sweep(build: Any, **options: Any) -> Any:
    return run_sweep(build, depth=DEPTHS, progress=False, **{"executor": "serial", **options})


# -- 1: settings kept in classes and objects of a module --------------------------------------------------------------
CLASS_SETTINGS = """
    import dataclasses
    import threading

    class Cfg:
        TILES = 2

        class Inner:
            TILES = 2

    @dataclasses.dataclass
    class Defaults:
        tiles: int = 2

    class Source:
        def __init__(self):
            self.lock = threading.Lock()  # (no stable description: the object is opaque to the module's digest)
            self.tiles = 2

        def count(self):
            return self.tiles

    SOURCE = Source()
    SOURCE.pick = lambda: 2

    _MADE = []

    class Maker:
        def tiles(self):
            _MADE.append(self)  # (a private cache: never sent, never checked)
            return 2

    def two():
        return 2

    def six():
        return 6

    policy = two
"""
BUILDERS = """
    import {settings} as settings
    from ptort_lab.spec_pipeline import spec_pipeline

    def pipe(depth, tiles):
        return spec_pipeline(depth, (32, 32), tiles, seed=None).pipeline

    def cls(depth):
        return pipe(depth, settings.Cfg.TILES)

    def nested(depth):
        return pipe(depth, settings.Cfg.Inner.TILES)

    def defaults(depth):
        return pipe(depth, settings.Defaults.tiles)

    def source(depth):
        return pipe(depth, settings.SOURCE.tiles)

    def method(depth):
        return pipe(depth, settings.SOURCE.count())

    def policy(depth):
        return pipe(depth, settings.policy())

    def picked(depth):
        return pipe(depth, settings.SOURCE.pick())

    def maker(depth):
        return pipe(depth, settings.Maker().tiles())
"""
CHANGES = {
    "cls": lambda s: setattr(s.Cfg, "TILES", 6),
    "nested": lambda s: setattr(s.Cfg.Inner, "TILES", 6),
    "defaults": lambda s: setattr(s.Defaults, "tiles", 6),  # a dataclass's class-level default
    "source": lambda s: setattr(s.SOURCE, "tiles", 6),
    "method": lambda s: setattr(s.SOURCE, "tiles", 6),
    "policy": lambda s: setattr(s, "policy", s.six),  # a module function rebound to another the file defines
}


@pytest.fixture
def settings_and_builders(user_modules, tmp_path) -> tuple[Any, Any]:
    """A settings module (CLASS_SETTINGS) and the builders that read it (BUILDERS), under the test's own names."""
    n = re.sub(r"\W", "_", tmp_path.name)
    settings = user_modules(f"r31_settings_{n}", CLASS_SETTINGS)
    return settings, user_modules(f"r31_builders_{n}", BUILDERS.format(settings=settings.__name__))


@pytest.mark.parametrize("kind", list(CHANGES))
def test_a_setting_read_through_a_modules_class_or_object_is_in_the_point_key(settings_and_builders, kind):
    """The builder reads settings.Cfg.TILES (or an object's attribute, a rebound function); it is changed at run
    time between two sweeps: the second computes its rows again, never the first's from the cache."""
    settings, builders = settings_and_builders
    build = getattr(builders, kind)
    first = sweep(build)
    assert pipeline_cycles(first) == cycles(2)
    CHANGES[kind](settings)
    second = sweep(build)
    assert pipeline_cycles(second) == cycles(6) and second.cache.reused == 0
    assert [p.cached for p in second.points] == [False, False]
    third = sweep(build)  # (the new rows are found again)
    assert pipeline_cycles(third) == cycles(6) and third.cache.reused == 2


def test_a_setting_that_cannot_be_keyed_turns_the_point_lookups_off_and_says_so(settings_and_builders):
    """settings.SOURCE.count() runs with SOURCE, which holds a lock (no stable description): the builder's key
    cannot be made, so no point is taken by it (rows are found only by what was built), and the note says why."""
    settings, builders = settings_and_builders
    first = sweep(builders.method)
    assert first.cache.note == (
        "points are looked up only once built: function method -> reads settings.SOURCE -> attribute "
        "'lock': _thread.lock <unlocked _thread.lock object at 0x…> has no stable description (TypeError: cannot "
        "pickle '_thread.lock' object)")
    settings.SOURCE.tiles = 6
    second = sweep(builders.method)
    assert pipeline_cycles(second) == cycles(6) and second.cache.reused == 0


NOTEBOOK_CELL = """
from ptort_lab.spec_pipeline import spec_pipeline

class Cfg:
    TILES = 2

def build(depth):
    return spec_pipeline(depth, (32, 32), Cfg.TILES, seed=None).pipeline
"""


def test_a_class_setting_of_the_notebook_is_in_the_point_key():
    """A class defined in the notebook, read by a builder defined there (as it was keyed before: a guard)."""
    namespace: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(NOTEBOOK_CELL, "<cell>", "exec"), namespace)  # noqa: S102 - a notebook cell
    assert pipeline_cycles(sweep(namespace["build"])) == cycles(2)
    namespace["Cfg"].TILES = 6
    second = sweep(namespace["build"])
    assert pipeline_cycles(second) == cycles(6) and second.cache.reused == 0


POOLED = [kind for kind in CHANGES if kind not in ("source", "method")]


@pytest.mark.parametrize("kind", POOLED)
def test_a_setting_read_through_a_modules_class_or_object_reaches_a_process_pool(settings_and_builders, tmp_path,
                                                                                  kind):
    """A worker process imports the settings module from its file (Cfg.TILES = 2, policy = two, ...): it used to
    compute rows of 2 tiles, and save them under the key of 6, where a later serial sweep took them."""
    settings, builders = settings_and_builders
    build = getattr(builders, kind)
    CHANGES[kind](settings)
    pooled = sweep(build, executor="processes", cache=tmp_path / "c")
    assert pipeline_cycles(pooled) == cycles(6) and pooled.executor.startswith("a process pool")
    serial = sweep(build, cache=tmp_path / "c")
    assert pipeline_cycles(serial) == cycles(6) and serial.cache.reused == 2


def test_a_value_read_through_an_object_without_a_digest_is_checked_by_a_process_pool(settings_and_builders):
    """settings.SOURCE.tiles: SOURCE has no digest (a lock), but the value read has: the worker's (2, the file's) is
    not the notebook's (6), so the pool refuses rather than compute rows with it."""
    from ptort_lab.errors import SweepError
    settings, builders = settings_and_builders
    settings.SOURCE.tiles = 6
    with pytest.raises(SweepError) as e:
        sweep(builders.source, executor="processes", cache=False)
    assert e.value.what == (
        f"{settings.__name__}.SOURCE.tiles holds other values in the sweep's worker processes than in the notebook: a "
        "worker imports the module afresh from its file, and a value set at run time that is not a small plain value "
        "(a number, a string, a small array or list of them) cannot be sent to it, so its rows would be computed "
        "with other settings.")
    settings.SOURCE.tiles = 2  # (as the file says: the pool runs it)
    pooled = sweep(builders.source, executor="processes", cache=False)
    assert pipeline_cycles(pooled) == cycles(2) and pooled.executor.startswith("a process pool")


def test_a_function_read_through_an_object_must_be_the_workers_own(settings_and_builders):
    """settings.SOURCE.pick (a function set on an object without a digest) is the notebook's six, not the file's
    lambda: the pool refuses; the key has it too."""
    from ptort_lab.errors import SweepError
    settings, builders = settings_and_builders
    first = sweep(builders.picked)
    settings.SOURCE.pick = settings.six
    second = sweep(builders.picked)
    assert pipeline_cycles(first) == cycles(2) and pipeline_cycles(second) == cycles(6)
    assert second.cache.reused == 0
    with pytest.raises(SweepError) as e:
        sweep(builders.picked, executor="processes", cache=False)
    assert e.value.what.startswith(f"{settings.__name__}.SOURCE.pick holds other values in the sweep's worker ")


def test_a_class_the_builder_makes_runs_on_a_process_pool_whatever_its_private_caches_hold(settings_and_builders):
    """settings.Maker() is the worker's own class (found by name): what its methods' private globals hold now
    (a cache the notebook filled) does not make the pool refuse."""
    settings, builders = settings_and_builders
    settings._MADE.extend([1, 2, 3])
    pooled = sweep(builders.maker, executor="processes", cache=False)
    assert pipeline_cycles(pooled) == cycles(2) and pooled.executor.startswith("a process pool")


def test_a_frozen_settings_object_the_notebook_did_not_change_runs_on_a_process_pool(user_modules):
    """What the builder reads through a frozen dataclass is checked with the object, never assigned in a worker."""
    user_modules("r31_frozen_settings", """
        import dataclasses

        @dataclasses.dataclass(frozen=True)
        class Cfg:
            tiles: int = 2

        CFG = Cfg()
    """)
    builders = user_modules("r31_frozen_builders", BUILDERS.format(settings="r31_frozen_settings").replace(
        "settings.SOURCE.tiles", "settings.CFG.tiles"))
    pooled = sweep(builders.source, executor="processes", cache=False)
    assert pipeline_cycles(pooled) == cycles(2) and pooled.executor.startswith("a process pool")


def test_an_object_the_builder_reads_that_cannot_be_checked_is_refused_by_a_process_pool(settings_and_builders):
    """settings.SOURCE.count() runs with SOURCE (a lock in it: no digest): a worker cannot be given it nor check
    its own, so the pool refuses rather than compute rows with the file's SOURCE."""
    from ptort_lab.errors import SweepError
    settings, builders = settings_and_builders
    settings.SOURCE.tiles = 6
    with pytest.raises(SweepError) as e:
        sweep(builders.method, executor="processes", cache=False)
    assert e.value.what == (
        f"{settings.__name__}.SOURCE cannot be checked in the sweep's worker processes: the builder reads it through "
        "its module, and it has no stable description (an object holding a lock, a file or a generator), so a "
        "worker, which imports the module afresh from its file, could compute its rows with other settings than "
        "the notebook's.")
    assert e.value.hint == ("Run the sweep with executor='serial', or keep the settings the builder reads in plain "
                            "values (numbers, strings, arrays) or objects made of them.")
    assert pipeline_cycles(sweep(builders.method, cache=False)) == cycles(6)


def test_a_class_imported_by_a_notebook_builder_reaches_a_process_pool(user_modules):
    """A builder defined in the notebook (sent whole) reads a class of the user's module (sent by reference: the
    worker's is the file's)."""
    cfg = user_modules("r31_pool_settings", "class Cfg:\n    TILES = 2\n").Cfg
    cfg.TILES = 6

    def build(depth):
        return spec_pipeline(depth, (32, 32), cfg.TILES, seed=None).pipeline

    pooled = sweep(build, executor="processes", cache=False)
    assert pipeline_cycles(pooled) == cycles(6) and pooled.executor.startswith("a process pool")


def test_the_module_state_names_class_settings_and_reads_by_path(user_modules):
    from ptort_lab.sweeps.module_state import module_state
    settings = user_modules("r31_state_settings", CLASS_SETTINGS)
    builders = user_modules("r31_state_builders", BUILDERS.format(settings="r31_state_settings"))
    settings.Cfg.Inner.TILES = 6
    settings.SOURCE.tiles = 6
    state = module_state(builders.nested)
    assert state["values"]["r31_state_settings"] == {"Cfg.Inner.TILES": 6, "Cfg.TILES": 2, "Defaults.tiles": 2,
                                                     "policy": settings.two}  # (no SOURCE: nested never reads it)
    assert state["values"]["r31_state_builders"] == {"spec_pipeline": spec_pipeline}  # (code found by name)
    assert "r31_state_settings" not in state["digests"] and state["unchecked"] == []  # (SOURCE is not read)
    source = module_state(builders.source)
    assert set(source["digests"]["r31_state_settings"]) == {"SOURCE.tiles"} and source["unchecked"] == []
    assert module_state(builders.method)["unchecked"] == ["r31_state_settings.SOURCE"]


# -- 2: a bad row that only a worker reads ----------------------------------------------------------------------------
THREE = [1, 2, 3]


def _spec_sweep(cache: Path, executor: Any) -> Any:
    return run_sweep(spec_build, depth=THREE, tiles=2, executor=executor, cache=cache, progress=False)


def _row_file(cache: Path, depth: int) -> Path:
    return next(f for f in (cache / "v1" / "results").glob("*/*.json")
                if json.loads(f.read_text())["row"]["depth"] == depth)


def _spoil(path: Path, how: str) -> None:
    if how == "truncated":
        path.write_text(path.read_text()[:40])
        return
    data = json.loads(path.read_text())
    data["row"]["pipeline_cycles"] = -5
    path.write_text(json.dumps(data))


def _forget_points(cache: Path) -> None:
    """Remove the point entries: the notebook finds no row before building, so only the worker reads the rows."""
    for f in (cache / "v1" / "points").glob("*/*.json"):
        f.unlink()


def _quiet(cache: Path, executor: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("error", SweepCacheWarning)
        return _spec_sweep(cache, executor)


@pytest.mark.parametrize("how", ["truncated", "negative cycles"])
def test_a_bad_row_read_only_in_a_worker_process_is_warned_of_in_the_notebook(tmp_path, how):
    cache = tmp_path / "c"
    first = _spec_sweep(cache, "serial")
    bad = _row_file(cache, 2)
    _spoil(bad, how)
    _forget_points(cache)
    with pytest.warns(SweepCacheWarning) as warned:
        again = _spec_sweep(cache, "processes")
    assert [str(w.message) for w in warned] == [
        f"sweep cache: 1 unreadable entry ignored, recomputed and replaced ({bad})."]
    assert again.executor.startswith("a process pool")
    assert again.rows == first.rows and [p.cached for p in again.points] == [True, False, True]
    assert _quiet(cache, "serial").cache.reused == 3  # (the notebook replaced it)


def test_a_bad_row_met_by_the_notebook_and_a_worker_is_warned_of_once(tmp_path):
    """The notebook looks the point up (bad row), then the worker builds it and reads the same row: one entry."""
    cache = tmp_path / "c"
    first = _spec_sweep(cache, "serial")
    bad = _row_file(cache, 3)
    _spoil(bad, "negative cycles")
    with pytest.warns(SweepCacheWarning) as warned:
        again = _spec_sweep(cache, "processes")
    assert [str(w.message) for w in warned] == [
        f"sweep cache: 1 unreadable entry ignored, recomputed and replaced ({bad})."]
    assert again.rows == first.rows


def test_a_thread_pool_worker_hands_each_bad_row_over_once(tmp_path):
    """A thread pool's worker keeps its view of the cache between sweeps: what it reported is not reported again."""
    cache = tmp_path / "c"
    _spec_sweep(cache, "serial")
    bads = [_row_file(cache, 1), _row_file(cache, 3)]
    for bad in bads:
        _spoil(bad, "truncated")
    _forget_points(cache)
    with ThreadPoolExecutor(1) as pool:
        with pytest.warns(SweepCacheWarning) as warned:
            _spec_sweep(cache, pool)
        assert [str(w.message) for w in warned] == [
            f"sweep cache: 2 unreadable entries ignored, recomputed and replaced ({bads[0]}, {bads[1]})."]
        _forget_points(cache)
        assert _quiet(cache, pool).cache.reused == 3
