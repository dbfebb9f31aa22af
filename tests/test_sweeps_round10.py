"""Sweeps, round 10: a resumed Dask sweep keeps every point, module settings reach the workers and the keys, the
keys follow tensor values a user function reads and installed builders' versions, equal_cores and placement go
through, and clear messages for ambiguous tiles, unguarded scripts, workerless clusters and cache write errors."""
from __future__ import annotations

import dataclasses
import errno
import importlib
import os
import subprocess
import sys
import textwrap
import time
from concurrent.futures import Executor, Future
from pathlib import Path

import numpy as np
import pytest
from sweep_builders import Logged

from ptort_lab import Dense, DType, In, Out, Tensor, Tile, for_each, kernel, task, tl
from ptort_lab.errors import PtortValueError, SweepError
from ptort_lab.explore import RunCache, Study
from ptort_lab.spec_pipeline import build as spec_build
from ptort_lab.spec_pipeline import spec_pipeline
from ptort_lab.sweeps import SweepCacheWarning, SweepInterrupted, cache_info, clear_cache, keys, run_sweep
from ptort_lab.sweeps.cache import SweepCache

F32 = DType.F32
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("PTORT_LAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "sweeps"


@pytest.fixture
def user_modules(tmp_path, monkeypatch):
    """Write modules into a folder on sys.path and import them (removed from sys.modules after the test)."""
    folder = tmp_path / "mods"
    folder.mkdir()
    monkeypatch.syspath_prepend(str(folder))
    names: list[str] = []

    def write(name: str, text: str):
        (folder / f"{name}.py").write_text(textwrap.dedent(text))
        importlib.invalidate_caches()
        names.append(name)
        return folder / f"{name}.py"

    yield write
    for name in names:
        sys.modules.pop(name, None)


def cycles_of(result, side="pipeline"):
    return [row[f"{side}_cycles"] for row in result.rows]


# -- 1: a Dask sweep resumed after an interrupt keeps every point -----------------------------------------------------
class SlowLogged(Logged):
    """Logged, taking 0.3 s a point but at depth 1 (so that most tasks are still queued when depth 1 interrupts)."""

    def __call__(self, depth):
        if depth != 1:
            time.sleep(0.3)
        return super().__call__(depth)


@pytest.fixture(scope="module")
def dask_client():
    distributed = pytest.importorskip("distributed")
    main = sys.modules["__main__"]
    if not hasattr(main, "__spec__"):
        main.__spec__ = None
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") \
            as cluster, distributed.Client(cluster) as client:
        yield client


def test_a_dask_sweep_resumed_after_an_interrupt_has_every_row(dask_client, tmp_path):
    """The interrupted sweep's cancelled tasks are never handed back to the rerun (same chunks, same arguments)."""
    once = tmp_path / "once"
    once.touch()
    build = SlowLogged(tmp_path / "calls.log", interrupt_at=1, once=once)
    serial = run_sweep(Logged(tmp_path / "serial.log"), depth=range(1, 9), executor="serial", cache=False,
                       progress=False)
    with pytest.raises(SweepInterrupted):
        run_sweep(build, depth=range(1, 9), executor=dask_client, progress=False)
    result = run_sweep(build, depth=range(1, 9), executor=dask_client, progress=False)
    assert len(result.points) == 8 and result.failures == [] and result.rows == serial.rows


class CancellingExecutor(Executor):
    """Every task comes back cancelled (by someone else: another client sharing the cluster)."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        future.cancel()
        future.set_running_or_notify_cancel()
        return future


def test_a_task_cancelled_by_someone_else_is_a_failed_point_not_a_missing_one(tmp_path):
    result = run_sweep(Logged(tmp_path / "calls.log"), depth=[1, 2, 3], executor=CancellingExecutor(),
                       cache=False, progress=False)
    assert [p.index for p in result.failures] == [0, 1, 2] and result.rows == []
    error = result.failures[0].error
    assert error.type == "CancelledError"
    assert error.what == ("the executor cancelled the task running this point before it returned, so the point has "
                          "no row.")
    assert error.hint.startswith("Run the same sweep() again: the points done are in the sweep cache")


# -- 10: a Dask cluster without workers -------------------------------------------------------------------------------
def test_a_dask_cluster_without_workers_is_refused_at_once(tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as cluster, \
            distributed.Client(cluster) as client:
        with pytest.raises(SweepError) as e:
            run_sweep(Logged(tmp_path / "calls.log"), depth=[1, 2], executor=client, cache=False, progress=False)
    assert e.value.what == ("sweep(executor=...) got a Dask client whose cluster has no workers, so no point would "
                            "ever run.")
    assert e.value.hint == (f"Start workers first (`dask worker {cluster.scheduler_address}` on each machine, or "
                            "LocalCluster(n_workers=2)), or leave executor= out to run the sweep on this machine.")


# -- 2 and 4: module settings set at run time -------------------------------------------------------------------------
SETTINGS = "TILES = 2\n"
BUILDER = """
    import {settings} as settings
    from ptort_lab.spec_pipeline import spec_pipeline

    def build(depth):
        return spec_pipeline(depth, (32, 32), settings.TILES, seed=None).pipeline
"""


def test_a_process_pool_runs_with_the_module_settings_the_notebook_set(user_modules):
    user_modules("r10_settings_a", SETTINGS)
    user_modules("r10_builder_a", BUILDER.format(settings="r10_settings_a"))
    settings, builder = importlib.import_module("r10_settings_a"), importlib.import_module("r10_builder_a")
    settings.TILES = 6  # set at run time: the workers import the file, which says 2
    serial = run_sweep(builder.build, depth=[1, 2, 3], executor="serial", cache=False, progress=False)
    pooled = run_sweep(builder.build, depth=[1, 2, 3], executor="processes", cache=False, progress=False)
    six = spec_pipeline(1, (32, 32), 6, seed=None).pipeline.compile(compute_values=False).execute()
    assert pooled.rows == serial.rows and cycles_of(serial)[0] == six.stats().total_cycles


def test_a_module_setting_changed_at_run_time_changes_the_point_key(user_modules):
    user_modules("r10_settings_b", SETTINGS)
    user_modules("r10_builder_b", BUILDER.format(settings="r10_settings_b"))
    settings, builder = importlib.import_module("r10_settings_b"), importlib.import_module("r10_builder_b")
    first = run_sweep(builder.build, depth=[1, 2], executor="serial", progress=False)
    settings.TILES = 6
    second = run_sweep(builder.build, depth=[1, 2], executor="serial", progress=False)
    fresh = run_sweep(builder.build, depth=[1, 2], executor="serial", cache=False, progress=False)
    assert second.rows == fresh.rows != first.rows and second.cache.reused == 0


def test_a_module_the_builders_module_imports_counts_in_the_key(user_modules):
    """mylib.make reads mytiles.TILE: an edited (here: reassigned) mytiles gives a new key."""
    user_modules("r10_tiles", "TILE = (32, 32)\n")
    user_modules("r10_lib", """
        import r10_tiles
        from ptort_lab.spec_pipeline import spec_pipeline

        def make(depth):
            return spec_pipeline(depth, r10_tiles.TILE, 2, seed=None).pipeline
    """)
    lib, tiles = importlib.import_module("r10_lib"), importlib.import_module("r10_tiles")

    def build(depth):
        return lib.make(depth)

    before = keys.builder_key(Study(build))[0]
    tiles.TILE = (64, 64)
    assert keys.builder_key(Study(build))[0] != before


# -- 5: a builder from an installed package ---------------------------------------------------------------------------
def test_a_builder_from_an_installed_package_is_keyed_by_its_file(tmp_path, monkeypatch):
    site = tmp_path / "lib" / "site-packages"
    site.mkdir(parents=True)
    module = site / "r10_installed.py"
    source = ("from ptort_lab.spec_pipeline import spec_pipeline\n"
              "def build(depth):\n    return spec_pipeline(depth, {tile}, 2, seed=None).pipeline\n")
    module.write_text(source.format(tile=(32, 32)))
    monkeypatch.syspath_prepend(str(site))
    try:
        installed = importlib.import_module("r10_installed")
        before = keys.builder_key(Study(installed.build))[0]
        module.write_text(source.format(tile=(128, 128)))  # `pip install -U`: the file on disk is another version
        os.utime(module, ns=(time.time_ns(), time.time_ns() + 10**9))
        assert keys.builder_key(Study(installed.build))[0] != before
    finally:
        sys.modules.pop("r10_installed", None)


# -- 3: tensor values a cycles= function reads ------------------------------------------------------------------------
@kernel
def copy(x: In[Tile[8, 8, F32]], y: Out[Tile[8, 8, F32]]):
    tl.store(y, tl.load(x))


LENGTHS = {"per_tile": np.array([100, 200, 300, 400], np.int64)}


def ragged(tiles):
    lengths = Tensor(data=LENGTHS["per_tile"][:tiles].copy(), name="L")
    X, Y = Tensor(shape=(tiles, 8, 8), dtype=F32, name="X"), Tensor(shape=(tiles, 8, 8), dtype=F32, name="Y")
    return for_each(Dense[tiles](), lambda t: task(copy, [t], {"x": X[t], "y": Y[t]},
                                                   cycles=lambda tk: int(lengths.data[tk.params[0]])))


def test_tensor_values_a_cycles_function_reads_are_in_the_program_key(monkeypatch):
    monkeypatch.setitem(LENGTHS, "per_tile", np.array([100, 200, 300, 400], np.int64))
    run = dict(tiles=[2, 4], cores=[1], mode="data-parallel", executor="serial", progress=False)
    first = run_sweep(ragged, **run)
    monkeypatch.setitem(LENGTHS, "per_tile", LENGTHS["per_tile"] * 10)
    second = run_sweep(ragged, **run)
    fresh = run_sweep(ragged, **run, cache=False)
    assert cycles_of(first, "data_parallel") == [300, 1000]
    assert cycles_of(second, "data_parallel") == cycles_of(fresh, "data_parallel") == [3000, 10000]
    assert second.cache.reused == 0


def test_the_run_cache_keys_tensor_values_a_cycles_function_reads(monkeypatch):
    monkeypatch.setitem(LENGTHS, "per_tile", np.array([100, 200, 300, 400], np.int64))
    study = Study(ragged, mode="data-parallel", cache=RunCache(), compute_values=False)
    assert study.run(tiles=4, cores=1).data_parallel.stats().total_cycles == 1000
    monkeypatch.setitem(LENGTHS, "per_tile", LENGTHS["per_tile"] * 10)
    assert study.run(tiles=4, cores=1).data_parallel.stats().total_cycles == 10000


# -- 6: equal_cores ---------------------------------------------------------------------------------------------------
def test_a_sweep_of_an_equal_cores_study_runs_the_twin_on_the_pipelines_cores():
    study = Study(spec_build, equal_cores=True)
    expected = study.run(depth=2)
    result = run_sweep(Study(spec_build, equal_cores=True), depth=[2], executor="serial", progress=False)
    row = result.rows[0]
    assert row["cores"] == expected.knobs.cores == row["data_parallel_cores"]
    assert row["data_parallel_cycles"] == expected.data_parallel.stats().total_cycles
    assert result.study(0).equal_cores and result.comparison(0).equal_cores


def test_sweeping_cores_of_an_equal_cores_study_is_refused():
    with pytest.raises(PtortValueError) as e:
        run_sweep(Study(spec_build, equal_cores=True), cores=[2, 4], executor="serial", progress=False)
    assert e.value.what == ("sweep(cores=...) varies the data-parallel twin's cores, but the Study has "
                            "equal_cores=True, which runs the twin on the pipeline's own cores, so every row would be "
                            "the same.")
    assert e.value.hint == "Leave cores out of the sweep, or sweep a Study without equal_cores=True."


# -- 7: placement -----------------------------------------------------------------------------------------------------
PLACE = {"loader": 0, "computer": 0, "storer": 0}


def test_placement_goes_through_a_pipeline_study_and_sweep():
    placed = spec_build(depth=2).compile(placement=PLACE, compute_values=False).execute().stats().total_cycles
    assert Study(spec_build, mode="pipeline", placement=PLACE).run(depth=2).pipeline.stats().total_cycles == placed
    result = run_sweep(spec_build, depth=[2], mode="pipeline", placement=PLACE, executor="serial", cache=False,
                       progress=False)
    assert cycles_of(result) == [placed]


@pytest.mark.parametrize("api", ["Study", "sweep"])
def test_placement_with_the_twin_says_to_use_the_pipeline_mode(api):
    with pytest.raises(PtortValueError) as e:
        if api == "Study":
            Study(spec_build, placement=PLACE)
        else:
            run_sweep(spec_build, depth=[1, 2], placement=PLACE, executor="serial", cache=False, progress=False)
    assert e.value.what == (f"{api}(placement=...) places the processes of a pipeline on cores, but mode='both' also "
                            "runs the data-parallel twin, which has no processes to place.")
    assert e.value.hint == "Pass mode='pipeline' to study the placed pipeline alone, or leave placement out."


# -- 8: tile=(rows, cols) ---------------------------------------------------------------------------------------------
def test_a_tile_pair_is_refused_as_ambiguous():
    with pytest.raises(PtortValueError) as e:
        run_sweep(spec_build, tile=(64, 128), executor="serial", cache=False, progress=False)
    assert e.value.what == ("sweep(tile=(64, 128)) is ambiguous: one 64x128 tile, or the two square tiles 64x64 and "
                            "128x128?")
    assert e.value.hint == ("Pass a list: tile=[(64, 128)] for the one tile, or tile=[64, 128] for the two square "
                            "tiles.")
    result = run_sweep(spec_build, depth=[1], tile=[(64, 128)], executor="serial", cache=False, progress=False)
    assert [p.values["tile"] for p in result.points] == [(64, 128)]


# -- 9: a script without a __main__ guard -----------------------------------------------------------------------------
SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from sweep_builders import Logged
from ptort_lab.sweeps import execute, run_sweep
execute.AUTO_PARALLEL_AFTER_S = 0.0
r = run_sweep(Logged({log!r}), depth=[1, 2, 3, 4], executor={executor!r}, progress=False, cache=False)
print(len(r.rows), r.notes)
"""


def run_script(tmp_path: Path, executor: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "noguard.py"
    script.write_text(SCRIPT.format(tests=str(ROOT / "tests"), log=str(tmp_path / "calls.log"), executor=executor))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120, env=env,
                          cwd=tmp_path)


def test_a_script_without_a_main_guard_is_told_so(tmp_path):
    done = run_script(tmp_path, "processes")
    assert done.returncode == 1
    assert ("SweepError: sweep(executor='processes') starts a process pool, whose worker processes import the script "
            f"{tmp_path / 'noguard.py'}; the sweep is started at line 7, outside `if __name__ == \"__main__\":`, so "
            "each worker would start it again, and the pool fails.") in done.stderr
    assert "at noguard.py:7" in done.stderr
    assert ("Put the script's code that runs the sweep under `if __name__ == \"__main__\":`, or pass "
            "executor='serial'.") in done.stderr


def test_auto_runs_a_script_without_a_main_guard_in_this_process(tmp_path):
    done = run_script(tmp_path, "auto")
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("4 ['ran in this process: the script starts the sweep at ")
    assert ":7 outside `if __name__ == \"__main__\":`, so the worker processes of a pool" in done.stdout


# -- 11: a dataclass the builder reads --------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Config:
    tiles: int = 2
    tile: tuple[int, int] = (32, 32)
    extra: dict = dataclasses.field(default_factory=dict, metadata={"doc": "unused"})


CONFIG = Config()
BUILT: list[int] = []


def configured(depth):
    BUILT.append(depth)
    return spec_pipeline(depth, CONFIG.tile, CONFIG.tiles, seed=None).pipeline


def test_a_dataclass_the_builder_reads_keeps_the_point_cache(monkeypatch):
    run_sweep(configured, depth=[1, 2], executor="serial", progress=False)
    BUILT.clear()
    again = run_sweep(configured, depth=[1, 2], executor="serial", progress=False)
    assert BUILT == [] and again.cache.note == "" and again.cache.reused == 2
    monkeypatch.setattr(sys.modules[__name__], "CONFIG", Config(tiles=3))
    changed = run_sweep(configured, depth=[1, 2], executor="serial", progress=False)
    assert BUILT == [1, 2] and changed.cache.reused == 0


# -- 14: odd globals --------------------------------------------------------------------------------------------------
HUGE = 10 ** 5000


class BadRepr:
    def __repr__(self):
        raise ValueError("no repr")

    def __hash__(self):
        return 1


ODD = {BadRepr(): 1}


def odd(depth):
    assert HUGE > 0 and ODD
    return spec_pipeline(depth, (32, 32), 2, seed=None).pipeline


def test_a_huge_int_and_a_key_whose_repr_raises_are_keyed():
    first = run_sweep(odd, depth=[1, 2], executor="serial", progress=False)
    again = run_sweep(odd, depth=[1, 2], executor="serial", progress=False)
    assert again.rows == first.rows and again.cache.reused == 2


# -- 12: cache write errors -------------------------------------------------------------------------------------------
def test_a_full_disk_says_how_many_rows_were_saved(tmp_path, monkeypatch):
    real = SweepCache._write
    writes = {"n": 0}

    def write(self, kind, key, data):
        writes["n"] += 1
        if writes["n"] > 2:  # the first row's two files fit, then the disk is full
            raise OSError(errno.ENOSPC, "No space left on device")
        real(self, kind, key, data)

    monkeypatch.setattr(SweepCache, "_write", write)
    with pytest.warns(SweepCacheWarning) as warned:
        result = run_sweep(Logged(tmp_path / "calls.log"), depth=[1, 2, 3], executor="serial",
                           cache=tmp_path / "c", progress=False)
    message = str(warned[0].message)
    assert message == (f"sweep cache: could not write to {tmp_path / 'c'} (the disk is full: OSError: [Errno 28] No "
                       "space left on device); 2 of 3 rows computed were not saved, 1 were. Free some space "
                       "(ptort_lab.sweeps.clear_cache() empties the sweep cache) and run the same sweep again: only "
                       "the rows not saved are computed again.")
    assert result.cache.line() == (f"cache: 0 reused, 3 computed; could not save to the cache {tmp_path / 'c'}: 2 of 3 "
                                   "rows could not be saved, 1 were (the disk is full: OSError: [Errno 28] No space "
                                   "left on device)")
    assert cache_info(tmp_path / "c").results == 1


def test_a_cache_folder_removed_during_a_write_is_made_again(tmp_path, monkeypatch):
    import tempfile
    real = tempfile.mkstemp
    failed = {"n": 0}

    def mkstemp(*args, **kwargs):
        if failed["n"] == 0:  # clear_cache() in another process removed the bucket just now
            failed["n"] += 1
            raise FileNotFoundError(errno.ENOENT, "No such file or directory")
        return real(*args, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    result = run_sweep(Logged(tmp_path / "calls.log"), depth=[1, 2], executor="serial", cache=tmp_path / "c",
                       progress=False)
    assert result.cache.write_error is None and cache_info(tmp_path / "c").results == 2


# -- 13: the PTORT_LAB_CACHE folder given to cache_info / clear_cache -------------------------------------------------
def test_cache_info_and_clear_cache_take_the_ptort_lab_cache_folder(tmp_path, cache_dir):
    run_sweep(Logged(tmp_path / "calls.log"), depth=[1, 2], executor="serial", progress=False)
    root = os.environ["PTORT_LAB_CACHE"]
    info = cache_info(root)
    assert (info.path, info.results, info.points) == (cache_dir, 2, 2)
    again = run_sweep(Logged(tmp_path / "calls.log"), depth=[1, 2], executor="serial", cache=root, progress=False)
    assert again.cache.reused == 2 and again.cache.path == str(cache_dir)
    assert clear_cache(root) == 4 and cache_info().results == 0


class _DictBacked:
    """A config object whose __getattr__ looks names up in a dict (KeyError, not AttributeError, for others)."""

    def __init__(self, **values):
        self.__dict__["_d"] = values

    def __getattr__(self, name):
        return self._d[name]

    def __call__(self, depth):
        return spec_pipeline(depth, (32, 32), self.tiles, seed=None).pipeline


def test_a_builder_whose_getattr_raises_keyerror_still_sweeps():
    """hunt10b #14: inspect.signature probes __wrapped__ through the object's __getattr__, which raised a bare
    KeyError from Study(). Its signature now comes from its class's __call__, and it is named by its type."""
    study = Study(_DictBacked(tiles=4))
    assert (study._signature, study._takes, study._takes_all) == ("_DictBacked(depth)", {"depth"}, False)
    result = run_sweep(_DictBacked(tiles=4), depth=[1, 2], executor="serial", progress=False, cache=False)
    plain = run_sweep(lambda depth: spec_pipeline(depth, (32, 32), 4, seed=None).pipeline, depth=[1, 2],
                      executor="serial", progress=False, cache=False)
    assert [p.error for p in result.points] == [None, None]
    assert [p.row for p in result.points] == [p.row for p in plain.points]


# -- review11b: what module settings a worker is given, and when it is refused ----------------------------------------
OBJECT_SETTINGS = """
    class Config:
        def __init__(self, tiles):
            self.tiles = tiles

    CFG = Config(2)
"""
OBJECT_BUILDER = """
    import {settings} as settings
    from ptort_lab.spec_pipeline import spec_pipeline

    def build(depth):
        return spec_pipeline(depth, (32, 32), settings.CFG.tiles, seed=None).pipeline
"""


def test_a_settings_object_set_at_run_time_is_refused_by_a_pool_not_computed_with_the_files_value(user_modules,
                                                                                                   tmp_path):
    """review11b #1: the key saw the new object but the workers built with the file's, and the wrong rows were
    saved under the new key (a later serial sweep reused them). A value that cannot be sent is now checked by
    digest in the worker: the pool refuses, nothing is cached, and "auto" runs the sweep here."""
    user_modules("r10_settings_obj", OBJECT_SETTINGS)
    user_modules("r10_builder_obj", OBJECT_BUILDER.format(settings="r10_settings_obj"))
    settings, builder = importlib.import_module("r10_settings_obj"), importlib.import_module("r10_builder_obj")
    settings.CFG = settings.Config(6)
    with pytest.raises(SweepError) as e:
        run_sweep(builder.build, depth=[1, 2], executor="processes", cache=tmp_path / "c", progress=False)
    assert e.value.what == (
        "r10_settings_obj.CFG holds other values in the sweep's worker processes than in the notebook: a worker "
        "imports the module afresh from its file, and a value set at run time that is not a small plain value (a "
        "number, a string, a small array or list of them) cannot be sent to it, so its rows would be computed with "
        "other settings.")
    assert e.value.hint == ("Run the sweep with executor='serial', make the value a knob of the builder, or set it in "
                            "the module's file.")
    serial = run_sweep(builder.build, depth=[1, 2], executor="serial", cache=tmp_path / "c", progress=False)
    assert serial.cache.reused == 0  # (the pool saved nothing)
    six = spec_pipeline(1, (32, 32), 6, seed=None).pipeline.compile(compute_values=False).execute()
    assert cycles_of(serial)[0] == six.stats().total_cycles


def test_a_thread_pool_leaves_the_notebooks_module_objects_alone(user_modules):
    """review11b #4: a thread-pool worker set the module's attributes to copies unpickled from the spec, so later
    changes through the user's own name no longer reached the builder."""
    from concurrent.futures import ThreadPoolExecutor
    user_modules("r10_settings_tp", "CONFIG = {'tiles': 2}\n")
    user_modules("r10_builder_tp", """
    import r10_settings_tp as settings
    from ptort_lab.spec_pipeline import spec_pipeline

    def build(depth):
        return spec_pipeline(depth, (32, 32), settings.CONFIG["tiles"], seed=None).pipeline
""")
    settings, builder = importlib.import_module("r10_settings_tp"), importlib.import_module("r10_builder_tp")
    mine = settings.CONFIG
    with ThreadPoolExecutor(2) as pool:
        run_sweep(builder.build, depth=[1, 2], executor=pool, cache=False, progress=False)
    assert settings.CONFIG is mine


def test_a_large_array_is_checked_by_digest_not_sent_with_every_task(user_modules):
    """review11b #3: a 256 MB array in a user module went with every pool task (1.6 s -> 27.7 s)."""
    from ptort_lab.sweeps.module_state import module_state
    user_modules("r10_settings_big", "import numpy as np\nBIG = np.zeros(1 << 20)\nSMALL = 3\n")
    user_modules("r10_builder_big", BUILDER.format(settings="r10_settings_big").replace("settings.TILES",
                                                                                       "settings.SMALL"))
    builder = importlib.import_module("r10_builder_big")
    state = module_state(builder.build)
    assert state["values"]["r10_settings_big"] == {"SMALL": 3}
    digests = state["digests"]["r10_settings_big"]
    assert set(digests) == {"BIG"} and len(digests["BIG"]) == 64  # (a sha256, not the 8 MB array)


def test_a_main_guard_with_more_conditions_is_a_guard():
    """review11b #5: `if __name__ == "__main__" and ...:` was not seen as a guard."""
    import ast

    from ptort_lab.sweeps.execute import _is_main_test
    assert _is_main_test(ast.parse('__name__ == "__main__" and len(sys.argv) > 1', mode="eval").body)
    assert not _is_main_test(ast.parse('__name__ == "__main__" or x', mode="eval").body)
