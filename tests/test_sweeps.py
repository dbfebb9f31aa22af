"""Sweeps on executors (a process pool, a real Dask LocalCluster, Ray when installed), the disk cache (content keys,
resume after an interrupt or a killed worker, corrupt entries, atomic writes), failing points, and builders that
cannot be sent to workers."""
from __future__ import annotations

import inspect
import json
import os
import sys
import threading
from concurrent.futures import Executor, Future
from pathlib import Path

import numpy as np
import pytest
import sweep_builders
from sweep_builders import Logged, calls, depths

from ptort_lab import Dense, DType, In, Out, P, Tensor, Tile, for_each, kernel, slot_load_u64, slot_u64, task, tl
from ptort_lab import workload as workload_decorator
from ptort_lab.errors import KnobError, PtortTypeError, PtortValueError, SweepError
from ptort_lab.explore import Knobs, Study
from ptort_lab.sim.machine import ascend_910b
from ptort_lab.spec_pipeline import spec_pipeline
from ptort_lab.sweeps import (
    MAX_RUNS_EXECUTOR,
    RayExecutor,
    SweepCacheWarning,
    SweepInterrupted,
    cache_info,
    clear_cache,
    execute,
    keys,
    run_sweep,
)
from ptort_lab.sweeps.cache import SweepCache
from ptort_lab.sweeps.fingerprint import Undescribable
from ptort_lab.sweeps.points import plan
from ptort_lab.sweeps.worker import run_chunk

F32 = DType.F32
DEPTHS = range(1, 9)


@pytest.fixture(autouse=True)
def cache_dir(tmp_path, monkeypatch) -> Path:
    """Each test its own sweep cache (the default location, through PTORT_LAB_CACHE)."""
    monkeypatch.setenv("PTORT_LAB_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "sweeps"


@pytest.fixture
def log(tmp_path) -> Path:
    return tmp_path / "calls.log"


@pytest.fixture(scope="module")
def serial_rows(tmp_path_factory) -> list[dict]:
    """The rows of the 8-point depth sweep, run in this process without a cache: what every executor must give."""
    log = tmp_path_factory.mktemp("serial") / "calls.log"
    return run_sweep(Logged(log), depth=DEPTHS, executor="serial", cache=False, progress=False).rows


@pytest.fixture(scope="module")
def dask_client():
    """A real scheduler and two worker processes on this machine (one thread each), for the module; its dashboard on
    a free port (8787 may be taken by another cluster, and the fallback warns, which the tests make an error)."""
    distributed = pytest.importorskip("distributed")
    main = sys.modules["__main__"]
    if not hasattr(main, "__spec__"):  # after the notebook tests, an IPython namespace that %reset emptied
        main.__spec__ = None
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0") \
            as cluster, distributed.Client(cluster) as client:
        yield client


def line_of(text: str, module=sweep_builders) -> int:
    """The line of ``module`` holding ``text``."""
    return next(i for i, line in enumerate(Path(module.__file__).read_text().splitlines(), 1) if text in line)


class RecordingExecutor(Executor):
    """Runs nothing: counts what it was given (a sweep refused before any worker starts gives it nothing)."""

    def __init__(self) -> None:
        self.submitted = 0

    def submit(self, fn, /, *args, **kwargs) -> Future:
        self.submitted += 1
        raise AssertionError("nothing may be submitted")


# -- executors give the serial rows ----------------------------------------------------------------------------------
def test_the_rows_are_those_of_the_spec_pipeline(serial_rows):
    """The reference rows: one per depth, depth 1 slowest (it serialises the stages), the twin the same for all:
    its 2 tiles on 2 cores, the pipeline's 3 stages on 3; per tile each run reads X (F32) and writes Y (F32), and
    writes and reads T0 and T1 (F16): 4096 + 2 * (2048 + 2048) + 4096 bytes of 32x32 elements."""
    assert [r["depth"] for r in serial_rows] == list(DEPTHS)
    assert serial_rows[0]["pipeline_cycles"] > serial_rows[1]["pipeline_cycles"]
    assert len({r["data_parallel_cycles"] for r in serial_rows}) == 1
    assert all(r["data_parallel_cores"] == 2 and r["pipeline_cores"] == 3 for r in serial_rows)
    assert all(r["pipeline_bytes_moved"] == r["data_parallel_bytes_moved"] == 2 * (4096 + 2 * 4096 + 4096)
               for r in serial_rows)


def test_a_dask_local_cluster_gives_the_serial_rows(dask_client, log, serial_rows):
    """client.get_executor(): every point built and run in the two worker processes, the rows exactly serial's."""
    result = run_sweep(Logged(log), depth=DEPTHS, executor=dask_client.get_executor(), cache=False, progress=False)
    assert result.rows == serial_rows
    workers = set(dask_client.run(os.getpid).values())
    assert depths(log) == list(DEPTHS) and {pid for _, pid in calls(log)} <= workers and os.getpid() not in workers
    assert result.executor == "distributed.ClientExecutor (2 at once)"


def test_a_failing_point_on_dask_is_recorded_with_its_line_and_the_sweep_goes_on(dask_client, log):
    """A Client is taken as its executor; the point that raises comes back with its type, message and line."""
    result = run_sweep(Logged(log, fail_at=3), depth=range(1, 6), executor=dask_client, cache=False,
                       progress=False)
    assert [r["depth"] for r in result.rows] == [1, 2, 4, 5]
    [failed] = result.failures
    assert (failed.index, failed.values, failed.row) == (2, {"depth": 3}, None)
    error = failed.error
    assert error.type == "UserCodeError"
    assert error.what == "the study's builder Logged (with {'depth': 3}) raised ValueError: no tile fits at depth 3"
    assert error.where.filename == sweep_builders.__file__ and error.where.lineno == line_of("raise ValueError")
    assert error.where.code == 'raise ValueError(f"no tile fits at depth {depth}")'
    assert "failed points (1):\n  #2 depth=3: UserCodeError: the study's builder Logged" in repr(result)


def test_a_knob_rule_broken_in_a_worker_stops_the_sweep(dask_client):
    """A depth that does not reach a channel stops the sweep on a cluster as it does here, located."""
    with pytest.raises(KnobError) as e:
        run_sweep(sweep_builders.stuck, depth=[2, 4], executor=dask_client.get_executor(), cache=False,
                  progress=False)
    assert e.value.what == "depth=4 did not reach the pipeline: channel 'compute_to_store' has depth 2."
    assert e.value.where.filename == sweep_builders.__file__


def test_a_thread_pool_gives_the_serial_rows(log, serial_rows):
    """Any concurrent.futures executor: threads share the process (each runs its own copy of the study)."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(2) as pool:
        result = run_sweep(Logged(log), depth=DEPTHS, executor=pool, cache=False, progress=False)
    assert result.rows == serial_rows and result.executor == "concurrent.ThreadPoolExecutor (2 at once)"


def test_a_process_pool_gives_the_serial_rows_and_auto_moves_to_it(monkeypatch, log, serial_rows):
    """executor="auto" runs the first points here; when the rest would take long, a process pool runs them."""
    monkeypatch.setattr(execute, "AUTO_PARALLEL_AFTER_S", 0.0)
    result = run_sweep(Logged(log), depth=DEPTHS, progress=False)
    assert result.rows == serial_rows
    assert result.executor == "2 points in this process, then a process pool of 2 workers"
    pids = [pid for _, pid in sorted(calls(log))]
    assert pids[:2] == [os.getpid()] * 2 and os.getpid() not in pids[2:]


def test_a_process_pool_starts_under_an_emptied_ipython_namespace(monkeypatch, log):
    """After %reset, IPython's __main__ has no __spec__, which multiprocessing reads to start a worker."""
    class DummyMod:  # what IPython puts in sys.modules["__main__"]: its namespace, here emptied
        pass

    monkeypatch.setitem(sys.modules, "__main__", DummyMod())
    result = run_sweep(Logged(log), depth=[1, 2], executor="processes", cache=False, progress=False)
    assert len(result.rows) == 2 and os.getpid() not in {pid for _, pid in calls(log)}


def test_auto_stays_here_for_a_quick_sweep_or_one_that_computes_values(monkeypatch, log):
    assert run_sweep(Logged(log), depth=[1, 2, 3], cache=False, progress=False).executor == "this process"
    monkeypatch.setattr(execute, "AUTO_PARALLEL_AFTER_S", 0.0)
    result = run_sweep(Logged(log), depth=[1, 2, 3], cache=False, progress=False, compute_values=True)
    assert result.executor == "this process" and {pid for _, pid in calls(log)} == {os.getpid()}


# -- the cache: reruns, resuming ------------------------------------------------------------------------------------
def test_a_rerun_builds_nothing_and_says_so(log, cache_dir, serial_rows):
    first = run_sweep(Logged(log), depth=DEPTHS, executor="serial", progress=False)
    assert repr(first).splitlines()[-1] == f"cache: 0 reused, 8 computed and saved in {cache_dir}; ran on this process"
    log.unlink()
    again = run_sweep(Logged(log), depth=DEPTHS, executor="serial", progress=False)
    assert calls(log) == [] and again.rows == first.rows == serial_rows
    assert all(p.cached for p in again.points) and first.cpu_seconds > 0 and again.cpu_seconds == 0
    assert repr(again).splitlines()[-1] == (f"cache: 8 reused, 0 computed and saved in {cache_dir}; ran on nothing "
                                            "(every row came from the cache)")


def test_a_sweep_interrupted_here_resumes_where_it_stopped(tmp_path, log, cache_dir, serial_rows):
    """A KeyboardInterrupt at the fourth point: three rows saved; the rerun builds only the five others."""
    once = tmp_path / "once"
    once.touch()
    build = Logged(log, interrupt_at=4, once=once)
    with pytest.raises(SweepInterrupted) as e:
        run_sweep(build, depth=DEPTHS, executor="serial", progress=False)
    assert isinstance(e.value, KeyboardInterrupt)
    assert str(e.value) == (f"sweep interrupted after 3 of 8 points; they are saved in the sweep cache ({cache_dir}), "
                            "so running the same sweep again resumes it: only the 5 others run.")
    assert depths(log) == [1, 2, 3, 4]
    log.unlink()
    result = run_sweep(build, depth=DEPTHS, executor="serial", progress=False)
    assert depths(log) == [4, 5, 6, 7, 8]
    assert result.rows == serial_rows and (result.cache.reused, result.cache.computed) == (3, 5)


def test_a_sweep_interrupted_in_a_worker_resumes_where_it_stopped(tmp_path, log, serial_rows):
    """The interrupt comes from a worker process: the points done are saved, the others rebuilt on the rerun."""
    once = tmp_path / "once"
    once.touch()
    build = Logged(log, interrupt_at=5, once=once)
    with pytest.raises(SweepInterrupted, match=r"^sweep interrupted after \d of 8 points; they are saved"):
        run_sweep(build, depth=DEPTHS, executor="processes", progress=False)
    saved = cache_info().results
    assert saved == cache_info().points and saved < 8
    log.unlink()
    result = run_sweep(build, depth=DEPTHS, executor="processes", progress=False)
    assert len(calls(log)) == 8 - saved and 5 in depths(log)
    assert result.rows == serial_rows and (result.cache.reused, result.cache.computed) == (saved, 8 - saved)


def test_a_killed_worker_stops_the_sweep_and_the_rerun_resumes(tmp_path, log, cache_dir, serial_rows):
    once = tmp_path / "once"
    once.touch()
    build = Logged(log, kill_at=5, once=once)
    with pytest.raises(SweepError) as e:
        run_sweep(build, depth=DEPTHS, executor="processes", progress=False)
    saved = cache_info().results
    assert e.value.what == (f"a worker process of the sweep died (killed, or out of memory) after {saved} of 8 points "
                            f"were done (BrokenProcessPool); they are saved in the sweep cache ({cache_dir}), so "
                            f"running the same sweep again resumes it: only the {8 - saved} others run.")
    assert e.value.hint.startswith("Run the same sweep() again to resume.")
    log.unlink()
    result = run_sweep(build, depth=DEPTHS, executor="processes", progress=False)
    assert len(calls(log)) == 8 - saved and result.rows == serial_rows


def test_failed_points_are_not_cached(log):
    """A failure is not saved (it may be fixed): the rerun builds that point again, and only it."""
    first = run_sweep(Logged(log, fail_at=2), depth=[1, 2, 3], executor="serial", progress=False)
    assert [p.index for p in first.failures] == [1] and first.summary() == "sweep of depth: 2 runs, 1 failed"
    log.unlink()
    again = run_sweep(Logged(log, fail_at=2), depth=[1, 2, 3], executor="serial", progress=False)
    assert depths(log) == [2] and [p.index for p in again.failures] == [1]


# -- the keys -------------------------------------------------------------------------------------------------------
def _copy_workload(n=4, op="mul", data=None):
    """A data-parallel workload over n 8x8 tiles whose kernel applies ``op``; built afresh on every call."""
    @kernel
    def k(x: In[Tile[8, 8, F32]], y: Out[Tile[8, 8, F32]]):
        v = tl.load(x)
        tl.store(y, getattr(tl, op)(v, v))

    X = Tensor(data=data if data is not None else np.zeros((n, 8, 8), np.float32), name="X")
    Y = Tensor(shape=(n, 8, 8), dtype=F32, name="Y")
    return for_each(Dense[n](), lambda t: task(k, [t], {"x": X[t], "y": Y[t]}))


def _slot_workload(lengths):
    """One task per entry, its kernel chosen at run time from a tensor's value (a runtime slot)."""
    n = len(lengths)
    L = Tensor(data=np.asarray(lengths, np.int32).reshape(n, 1, 1), name="L")
    X, Y = Tensor(shape=(n, 1, 4), dtype=F32, name="X"), Tensor(shape=(n, 1, 4), dtype=F32, name="Y")

    @kernel(cycles=10)
    def small(src: In[Tile[1, 4, F32]], dst: Out[Tile[1, 4, F32]]):
        tl.store(dst, tl.load(src))

    @workload_decorator
    def w():
        for b in P(Dense[n]()):
            slot_load_u64(0, L[b])
            with P.when(slot_u64(0) <= 2048):
                small[b](src=X[b], dst=Y[b])
    return w()


def key(target, knobs=None, mode="both", **options):
    knobs = knobs or Knobs()
    return keys.program_key(target, knobs, Study(lambda: None, knobs, mode, **options))


def test_the_program_key_is_the_same_for_the_same_program_built_twice():
    assert key(_copy_workload()) == key(_copy_workload())
    assert key(spec_pipeline(2, (32, 32), 4, seed=None).pipeline) == key(spec_pipeline(2, (32, 32), 4).pipeline)


def _spec(depth):
    return spec_pipeline(depth, (32, 32), 4, seed=None).pipeline


@pytest.mark.parametrize("change, before, after", [
    ("kernel body", lambda: key(_copy_workload()), lambda: key(_copy_workload(op="add"))),
    ("tile count", lambda: key(_copy_workload()), lambda: key(_copy_workload(n=5))),
    ("channel depth", lambda: key(_spec(2)), lambda: key(_spec(3))),
    ("knob", lambda: key(_copy_workload()), lambda: key(_copy_workload(), Knobs(cores=2))),
    ("mode", lambda: key(_copy_workload()), lambda: key(_copy_workload(), mode="data-parallel")),
    ("machine constant", lambda: key(_copy_workload()),
     lambda: key(_copy_workload(), machine=ascend_910b.replace(hbm_bytes_per_cycle=100))),
    ("channel latency", lambda: key(_spec(2)), lambda: key(_spec(2), channel_latency_cycles=7)),
    ("compute values", lambda: key(_spec(2)), lambda: key(_spec(2), compute_values=False)),
])
def test_the_program_key_changes_with_what_changes_the_run(change, before, after):
    assert before() != after()


def test_the_program_key_changes_with_ptort_labs_code(monkeypatch):
    before = key(_copy_workload())
    monkeypatch.setattr(keys, "code_version", lambda: "0.1.0+edited")
    assert key(_copy_workload()) != before


def test_tensor_values_count_only_where_a_run_reads_them():
    """A kernel's operand values never change a timing-only run; a runtime slot's tensor decides what runs."""
    ones = np.ones((4, 8, 8), np.float32)
    assert key(_copy_workload(data=ones)) == key(_copy_workload(data=ones * 2))
    assert key(_slot_workload([1, 4096])) != key(_slot_workload([4096, 1]))
    assert key(_slot_workload([1, 4096])) == key(_slot_workload([1, 4096]))


def test_keys_are_the_same_in_another_process():
    """Another process (another string hash seed, so other set orders) finds the same keys: a worker's key
    matches the notebook's."""
    import subprocess
    code = ("from ptort_lab.explore import Knobs, Study; from ptort_lab.sweeps import keys; "
            "from ptort_lab.spec_pipeline import spec_pipeline, build; "
            "print(keys.program_key(spec_pipeline(2, (32, 32), 4).pipeline, Knobs(), Study(lambda: None)), "
            "keys.builder_key(Study(build))[0])")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    from ptort_lab.spec_pipeline import build
    assert result.stdout.split() == [key(_spec(2)), keys.builder_key(Study(build))[0]]


def test_the_builder_key_is_the_same_after_the_builder_was_pickled():
    """Pickling an object caches __slotnames__ on its class: sending a builder to workers changes nothing of its
    key (else a resumed sweep would find none of its rows)."""
    import cloudpickle

    class Builder:
        def __init__(self, tiles):
            self.tiles = tiles

        def __call__(self, depth):
            return spec_pipeline(depth, (32, 32), self.tiles, seed=None).pipeline

    build = Builder(2)
    before = keys.builder_key(Study(build))[0]
    cloudpickle.dumps(build)
    assert "__slotnames__" in vars(Builder) and keys.builder_key(Study(build))[0] == before


def test_the_point_key_follows_the_builders_code_and_data():
    def make(tiles):
        def build(depth):
            return spec_pipeline(depth, (32, 32), tiles, seed=None).pipeline
        return build

    def other(depth):
        return spec_pipeline(depth, (32, 64), 2, seed=None).pipeline

    digest = [keys.builder_key(Study(b))[0] for b in (make(2), make(2), make(4), other)]
    assert digest[0] == digest[1] and len(set(digest)) == 3
    assert keys.point_key(digest[0], Knobs(depth=1)) != keys.point_key(digest[0], Knobs(depth=2))


@kernel(cycles=10)
def copy_kernel(x: In[Tile[8, 8, F32]], y: Out[Tile[8, 8, F32]]):
    tl.store(y, tl.load(x))


def test_a_program_that_cannot_be_described_runs_but_is_not_saved():
    """A cost function closing over a generator has no stable description: the row is computed, not saved."""
    ticks = (c for c in iter(int, 1))  # an endless generator of 0

    def build(tiles):
        X, Y = Tensor(shape=(tiles, 8, 8), dtype=F32), Tensor(shape=(tiles, 8, 8), dtype=F32)
        return for_each(Dense[tiles](), lambda t: task(copy_kernel, [t], {"x": X[t], "y": Y[t]},
                                                       cycles=lambda task: 10 + next(ticks)))

    with pytest.raises(Undescribable, match=r"-> closure variable 'ticks': builtins.generator <generator object .* "
                                            r"has no stable description \(TypeError: cannot pickle 'generator' "
                                            r"object\)$"):
        key(build(2))
    result = run_sweep(build, tiles=[2, 3], executor="serial", progress=False)
    assert len(result.rows) == 2 and cache_info().results == 0
    line = result.cache.line()
    assert "points are looked up only once built: " in line and "some rows were not saved: " in line


# -- cache files ----------------------------------------------------------------------------------------------------
def _result_file(cache_dir: Path, depth: int) -> Path:
    return next(f for f in (cache_dir / "v1" / "results").glob("*/*.json")
                if json.loads(f.read_text())["row"]["depth"] == depth)


@pytest.mark.parametrize("corrupt", ["truncated", "wrong row", "bad link"])
def test_a_corrupt_entry_is_ignored_recomputed_and_replaced(corrupt, log, cache_dir):
    first = run_sweep(Logged(log), depth=[1, 2, 3], executor="serial", progress=False)
    bad = _result_file(cache_dir, 2)
    if corrupt == "truncated":
        bad.write_text(bad.read_text()[:40])
    elif corrupt == "wrong row":
        data = json.loads(bad.read_text())
        data["row"]["pipeline_cycles"] = "fast"
        bad.write_text(json.dumps(data))
    else:  # the point's link to its result names no valid result key
        program = bad.stem
        bad = next(f for f in (cache_dir / "v1" / "points").glob("*/*.json")
                   if json.loads(f.read_text())["program"] == program)
        bad.write_text(json.dumps({"format": 1, "key": bad.stem, "program": "zz"}))
    log.unlink()
    with pytest.warns(SweepCacheWarning) as warned:
        again = run_sweep(Logged(log), depth=[1, 2, 3], executor="serial", progress=False)
    assert [str(w.message) for w in warned] == [
        f"sweep cache: 1 unreadable entry ignored, recomputed and replaced ({bad})."]
    assert depths(log) == [2] and again.rows == first.rows
    log.unlink()
    run_sweep(Logged(log), depth=[1, 2, 3], executor="serial", progress=False)  # replaced: no warning now
    assert calls(log) == []


def test_an_interrupted_write_leaves_no_entry_and_no_temporary_file(tmp_path, monkeypatch):
    cache = SweepCache(tmp_path / "c")
    row = run_sweep(spec_build, depth=[1], cache=False, progress=False).rows[0]

    def dump_half(data, f, **kw):
        f.write('{"format": 1, ')
        raise KeyboardInterrupt

    monkeypatch.setattr("ptort_lab.sweeps.cache.json.dump", dump_half)
    with pytest.raises(KeyboardInterrupt):
        cache.store("a" * 64, row, "b" * 64)
    assert [p for p in (tmp_path / "c").rglob("*") if p.is_file()] == []
    monkeypatch.undo()
    cache.store("a" * 64, row, "b" * 64)
    assert cache.lookup("b" * 64) == ("a" * 64, row)


def test_a_cache_that_cannot_be_written_warns_and_the_sweep_runs(tmp_path, log):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    with pytest.warns(SweepCacheWarning, match=rf"sweep cache: could not write to {blocker}"):
        result = run_sweep(Logged(log), depth=[1, 2], executor="serial", cache=blocker, progress=False)
    assert len(result.rows) == 2 and "2 computed; could not save to the cache " in result.cache.line()


def test_cache_info_and_clear_cache(log, cache_dir):
    run_sweep(Logged(log), depth=[1, 2, 3], executor="serial", progress=False)
    info = cache_info()
    assert (info.path, info.results, info.points) == (cache_dir, 3, 3) and info.bytes > 0
    assert str(info).startswith(f"sweep cache {cache_dir}: 3 results, 3 points, ")
    assert str(info).endswith(" (clear it with ptort_lab.sweeps.clear_cache())")
    (cache_dir / "v1" / "results" / "00").mkdir(exist_ok=True)  # (a result's key may start with 00 too)
    (cache_dir / "v1" / "results" / "00" / ".tmp-x.json").write_text("{")  # a write killed before its rename
    assert cache_info().results == 3
    assert clear_cache() == 6 and cache_info().results == cache_info().points == 0
    log.unlink()
    run_sweep(Logged(log), depth=[1, 2, 3], executor="serial", progress=False)
    assert depths(log) == [1, 2, 3]


# -- builders that cannot travel ------------------------------------------------------------------------------------
_MODULE_LOCK = threading.Lock()


def spec_build(depth):
    return spec_pipeline(depth, (32, 32), 2, seed=None).pipeline


def test_a_builder_holding_an_open_file_is_refused_before_any_worker_starts(tmp_path):
    executor = RecordingExecutor()
    with open(tmp_path / "out.txt", "w") as out:
        def build(depth):
            out.write(f"{depth}\n")
            return spec_build(depth)

        with pytest.raises(SweepError) as e:
            run_sweep(build, depth=[1, 2], executor=executor, progress=False)
    name = build.__qualname__
    assert executor.submitted == 0
    assert e.value.what == (
        f"sweep(executor=...) cannot send the builder {name} to its worker processes: the builder {name}'s closure "
        f"variable 'out' is an open file (_io.TextIOWrapper '{tmp_path / 'out.txt'}'), which cannot be pickled "
        "(PicklingError: Cannot pickle files that are not opened for reading: w).")
    assert e.value.hint == ("Open the file inside the builder (each worker process opens its own), or pass "
                            "executor='serial' to run the sweep in this process.")
    assert e.value.where.lineno == inspect.getsourcelines(build)[1] and e.value.where.code == "def build(depth):"


@pytest.mark.parametrize("holds", ["module lock", "generator"])
def test_a_builder_holding_a_lock_or_a_generator_is_refused(holds):
    sizes = (n for n in (2, 4))

    def build(depth):
        with _MODULE_LOCK:
            return spec_build(depth)

    def build_sized(depth):
        return spec_pipeline(depth, (32, 32), next(sizes), seed=None).pipeline

    builder = build if holds == "module lock" else build_sized
    with pytest.raises(SweepError) as e:
        run_sweep(builder, depth=[1, 2], executor="processes", progress=False)
    name = builder.__qualname__
    if holds == "module lock":
        assert e.value.what == (
            f"sweep(executor='processes') cannot send the builder {name} to its worker processes: the builder "
            f"{name}'s global '_MODULE_LOCK' is a lock (_thread.lock), which cannot be pickled (TypeError: cannot "
            "pickle '_thread.lock' object).")
        assert e.value.hint.startswith("Create the lock inside the builder, or drop it")
    else:
        assert e.value.what.endswith(f"the builder {name}'s closure variable 'sizes' is a generator (test_a_builder_"
                                     "holding_a_lock_or_a_generator_is_refused.<locals>.<genexpr>), which cannot be "
                                     "pickled (TypeError: cannot pickle 'generator' object).")
        assert e.value.hint.startswith("Pass a list instead (list(...))")


def test_auto_keeps_a_builder_that_cannot_travel_in_this_process(tmp_path, monkeypatch):
    monkeypatch.setattr(execute, "AUTO_PARALLEL_AFTER_S", 0.0)
    with open(tmp_path / "out.txt", "w") as out:
        def build(depth):
            out.write(f"{depth}\n")
            return spec_build(depth)

        result = run_sweep(build, depth=[1, 2, 3], cache=False, progress=False)
    assert result.executor == "this process" and len(result.rows) == 3
    assert result.notes[0].startswith("ran in this process: sweep() cannot send the builder ")
    assert repr(result).splitlines()[-1] == f"note: {result.notes[0]}"
    assert (tmp_path / "out.txt").read_text() == "1\n2\n3\n"


def test_auto_runs_here_when_its_pool_runs_other_ptort_lab_code(monkeypatch, log, serial_rows):
    """ptort_lab edited since the notebook imported it: the pool's workers refuse, the points run here."""
    monkeypatch.setattr(execute, "AUTO_PARALLEL_AFTER_S", 0.0)
    monkeypatch.setattr(execute, "code_version", lambda: "0.1.0+as-imported")
    result = run_sweep(Logged(log), depth=DEPTHS, cache=False, progress=False)
    assert result.rows == serial_rows and result.executor == "this process"
    assert result.notes[0].startswith("ran in this process: the sweep cannot run on this executor: this worker runs "
                                      "ptort_lab 0.1.0+")
    assert result.notes[0].endswith(", but the sweep was started with ptort_lab 0.1.0+as-imported, so its results "
                                    "would not be the notebook's.")


def test_a_worker_running_other_ptort_lab_code_stops_the_sweep():
    """A worker whose ptort_lab differs from the notebook's would give other rows: refused, not mixed in."""
    assert run_chunk("x", b"", [(0, {"depth": 1})], "0.0.1+other").stop.startswith(
        "this worker runs ptort_lab ")

    class Stale(Executor):
        def submit(self, fn, /, *args, **kwargs):
            future = Future()
            future.set_result(fn(args[0], args[1], args[2], "0.0.1+other"))
            return future

    with pytest.raises(SweepError, match=r"^the sweep cannot run on this executor: this worker runs ptort_lab "):
        run_sweep(spec_build, depth=[1, 2], executor=Stale(), cache=False, progress=False)


# -- arguments and limits -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kwargs, what", [
    ({"executor": "threads"}, "sweep(executor=...) takes a concurrent.futures.Executor or one of 'auto', 'serial', "
                              "'processes', got str 'threads'."),
    ({"cache": 3}, "sweep(cache=...) takes True, False or a folder, got int 3."),
    ({"progress": "yes"}, "sweep(progress=...) takes True, False or None, got str 'yes'."),
])
def test_bad_executor_cache_and_progress_arguments(kwargs, what):
    with pytest.raises(PtortTypeError) as e:
        run_sweep(spec_build, depth=[1], **kwargs)
    assert e.value.what == what


def test_an_empty_cache_path_and_a_shut_down_executor_are_refused():
    with pytest.raises(PtortValueError, match=r"^sweep\(cache=''\) names no folder\."):
        run_sweep(spec_build, depth=[1], cache="", progress=False)
    from concurrent.futures import ThreadPoolExecutor
    pool = ThreadPoolExecutor(1)
    pool.shutdown()
    with pytest.raises(SweepError) as e:
        run_sweep(spec_build, depth=[1, 2], executor=pool, cache=False, progress=False)
    assert e.value.what == ("sweep(executor=...) could not hand points to the executor (RuntimeError: cannot schedule "
                            "new futures after shutdown); 0 of 2 points are done.")


def test_a_compile_option_that_cannot_be_pickled_is_named():
    """The builder travels, but a cost model of the user's own holding a lock does not: the option is named."""
    from ptort_lab.sim.cost_model import PinnedCosts

    class LockedCosts(PinnedCosts):
        def __init__(self):
            super().__init__()
            self.guard = threading.Lock()

    with pytest.raises(SweepError) as e:
        run_sweep(spec_build, depth=[1, 2], executor=RecordingExecutor(), cost_model=LockedCosts(), progress=False)
    assert e.value.what == ("sweep(executor=...) cannot send the sweep's options to its worker processes: compile "
                            "option cost_model's attribute 'guard' is a lock (_thread.lock), which cannot be pickled "
                            "(TypeError: cannot pickle '_thread.lock' object).")


def test_an_executor_raises_the_limit_and_the_message_names_it(log):
    """20,000 points are refused without an executor (the hint says executor=) and planned with one."""
    with pytest.raises(PtortValueError) as e:
        run_sweep(Logged(log), depth=range(1, 20_001), progress=False)
    assert e.value.what == ("sweep() would run 20,000 combinations (depth: 20,000 values); without executor= it runs "
                            "at most 10,000.")
    assert "pass executor= (a concurrent.futures executor: a process pool, client.get_executor() of a Dask " \
           "cluster, or a Ray one) to run up to 100,000." in e.value.hint
    planned = plan(Logged(log), {"depth": range(1, 20_001), "tile": None, "tiles": None, "cores": None}, None,
                   None, {}, with_executor=True)
    assert len(planned.combos) == 20_000 and calls(log) == []
    with pytest.raises(PtortValueError, match=rf"with an executor it runs at most {MAX_RUNS_EXECUTOR:,}\."):
        run_sweep(Logged(log), depth=range(1, MAX_RUNS_EXECUTOR + 2), executor="processes", progress=False)


# -- Ray -------------------------------------------------------------------------------------------------------------
def test_ray_executor_without_ray_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # as if Ray were not installed
    with pytest.raises(SweepError) as e:
        RayExecutor()
    assert e.value.what == "RayExecutor needs Ray, which is not installed."
    assert e.value.hint.startswith("pip install 'ptort_lab[ray]'")


def test_a_ray_cluster_gives_the_serial_rows(log, serial_rows):
    ray = pytest.importorskip("ray", reason="Ray is optional (pip install 'ptort_lab[ray]'); not in the dev extra")
    path = os.pathsep.join(p for p in (str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")) if p)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": path}})  # Ray's workers import sweep_builders too
    try:
        result = run_sweep(Logged(log), depth=DEPTHS, executor=RayExecutor(), cache=False, progress=False)
    finally:
        ray.shutdown()
    assert result.rows == serial_rows and os.getpid() not in {pid for _, pid in calls(log)}


# -- progress and layering ------------------------------------------------------------------------------------------
def test_progress_counts_and_time_left(monkeypatch):
    """12 s after the start, 1 point computed and 1 from the cache out of 10: 12 s a point, 8 left: 1 min 36 s."""
    from ptort_lab.sweeps import progress as progress_module
    clock = iter([100.0, 100.0, 112.0, 112.0, 112.0, 130.0])
    monkeypatch.setattr(progress_module.time, "perf_counter", lambda: next(clock))
    p = progress_module.Progress(mode=False)
    p.start(10)
    p.update(1, 0, 1)
    p.update(2, 1, 1)
    assert p.text(final=False) == "2/10 runs, 1 failed, 1 from the cache, 1 min 36 s left"
    assert p.text(final=True) == "2/10 runs, 1 failed, 1 from the cache"
    assert [progress_module.eta_text(s) for s in (7.4, 125, 3780)] == ["7 s", "2 min 05 s", "1 h 03 min"]


def test_the_sweep_core_loads_no_plotting_or_notebook_library():
    """What a worker process imports to run points: ptort_lab's core, no matplotlib, IPython or ipywidgets."""
    import subprocess
    code = ("import sys, ptort_lab.sweeps.worker, ptort_lab.sweeps; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'IPython', 'ipywidgets', "
            "'distributed', 'ray')))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
