"""Running a sweep: points planned and looked up in the cache, the rest run here or on a concurrent.futures
executor, each outcome saved as it arrives.

``executor``:
- ``"auto"`` (the default): points run in this process; once the first ones show that the rest would take more
  than AUTO_PARALLEL_AFTER_S seconds, and the machine has more than one core, the rest go to a process pool of one
  worker per core (started for the sweep, stopped after it). A sweep that computes values (``compute_values=True``)
  or whose builder cannot be pickled stays in this process.
- ``"serial"`` (or None): every point in this process, one after another.
- ``"processes"``: a process pool of one worker per core, from the first point.
- a ``concurrent.futures.Executor`` (``ProcessPoolExecutor``, ``client.get_executor()`` of a Dask client, a Ray
  executor) or a Dask ``Client`` (its ``get_executor()`` is used): the points go to it in tasks of a few points
  each; the executor is the caller's and is left running.

A point that raises records its error and the sweep goes on, except for a KnobError (a knob value the study cannot
apply: the sweep itself is wrong) and a KeyboardInterrupt (SweepInterrupted: the points done are saved, and the
same sweep run again resumes from there). A worker process that dies stops the sweep with a SweepError saying how
to resume.
"""
from __future__ import annotations

import ast
import linecache
import math
import multiprocessing
import os
import sys
import time
import uuid
from concurrent.futures import BrokenExecutor, CancelledError, Executor, Future, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from ..errors import PtortTypeError, PtortValueError, SourceLocation, SweepError, value_text
from ..explore import Study
from ..knobs import Knobs
from .cache import SweepCache, cache_folder, default_cache_dir
from .fingerprint import Undescribable, code_version
from .keys import builder_key, point_key
from .module_state import module_state
from .points import DEFAULT_DEPTHS, Plan, plan
from .progress import Progress
from .result import CacheUse, PointError, SweepPoint, SweepResult
from .ship import cell_sources, pack
from .worker import ChunkResult, Outcome, SweepSpec, run_chunk, run_point

#: The executors ``run_sweep(executor=...)`` takes by name (else any concurrent.futures Executor or Dask Client).
EXECUTOR_NAMES = ("auto", "serial", "processes")
#: Seconds: ``executor="auto"`` moves to a process pool when the rest of the sweep would take longer serially.
AUTO_PARALLEL_AFTER_S = 3.0
AUTO_PROBE_S = 1.0  # ... judged after this long (or two points) in this process
TASKS_PER_WORKER = 16  # points are sent in tasks: about this many per worker, so progress and resuming stay fine
MAX_POINTS_PER_TASK = 32


class _WorkerRefused(SweepError):
    """A worker cannot run the sweep's points at all (other ptort_lab code, a builder it cannot load)."""


class SweepInterrupted(KeyboardInterrupt):
    """A sweep stopped by Ctrl-C or a KeyboardInterrupt in its builder; the points done are in the sweep cache, so
    running the same sweep again resumes it."""


def run_sweep(study_or_builder: Any, *, depth: Any = DEFAULT_DEPTHS, tile: Any = None, tiles: Any = None,
              cores: Any = None, knobs: Knobs | None = None, mode: str | None = None, executor: Any = "auto",
              cache: Any = True, progress: bool | None | Progress = None, **compile_options: Any) -> SweepResult:
    """Run every combination of the knob values (see ``ptort_lab.notebook.sweep`` for the arguments), on
    ``executor``, with rows cached in ``cache`` (True: ``default_cache_dir()``; a folder; False: none).
    ``progress``: None shows a line on stderr after half a second, True at once, False never, or a Progress."""
    choice = _executor_choice(executor)
    given = {"depth": depth, "tile": tile, "tiles": tiles, "cores": cores}
    the_plan = plan(study_or_builder, given, knobs, mode, compile_options,
                    with_executor=not isinstance(choice, str) or choice == "processes")
    reporter = progress if isinstance(progress, Progress) else Progress(_progress_mode(progress))
    return _Sweep(the_plan, _open_cache(cache), reporter).run(choice)


def _progress_mode(progress: Any) -> bool | None:
    if progress is None or isinstance(progress, bool):
        return progress
    raise PtortTypeError(f"sweep(progress=...) takes True, False or None, got {value_text(progress)}.",
                         hint="Leave it out (a progress bar once the sweep takes more than half a second), or pass "
                              "progress=True (at once) or progress=False (never).")


def _executor_choice(executor: Any) -> str | Executor:
    """``executor`` checked: a name, an Executor, or a Dask Client's executor."""
    if executor is None:
        return "serial"
    if isinstance(executor, str) and executor in EXECUTOR_NAMES:
        return executor
    if isinstance(executor, Executor):
        return executor
    get_executor = getattr(executor, "get_executor", None)  # a dask.distributed Client
    if callable(get_executor):
        made = get_executor()
        if isinstance(made, Executor):
            return made
    raise PtortTypeError(
        f"sweep(executor=...) takes a concurrent.futures.Executor or one of {', '.join(map(repr, EXECUTOR_NAMES))}, "
        f"got {value_text(executor)}.",
        hint="Leave it out (\"auto\": a process pool when the sweep is long enough), pass executor='serial' (this "
             "process), executor='processes', a ProcessPoolExecutor, or client.get_executor() of a Dask client.")


def _open_cache(cache: Any) -> SweepCache | None:
    if cache is False or cache is None:
        return None
    if cache is True:
        return SweepCache(default_cache_dir())
    if isinstance(cache, (str, os.PathLike)) and str(cache).strip():
        return SweepCache(cache_folder(Path(cache).expanduser()))
    if isinstance(cache, str):
        raise PtortValueError("sweep(cache='') names no folder.",
                              hint="Pass cache=True (the default cache), cache=False (none) or a folder's path.")
    raise PtortTypeError(f"sweep(cache=...) takes True, False or a folder, got {value_text(cache)}.",
                         hint="Leave it out (the default cache, ptort_lab.sweeps.cache_info() shows where), pass "
                              "cache=False (no cache) or cache='path/to/folder'.")


def _workers(executor: Executor) -> int:
    """How many tasks ``executor`` runs at once, as well as it can be told (else this machine's cores)."""
    n = getattr(executor, "_max_workers", None)
    if isinstance(n, int) and n > 0:
        return n
    client = getattr(executor, "_client", None)  # a Dask ClientExecutor
    if client is not None:
        try:
            return max(1, int(sum(client.nthreads().values())))
        except Exception:  # noqa: BLE001 - a client that cannot say: guess
            pass
    return os.cpu_count() or 1


def _check_has_workers(executor: Executor, api: str) -> None:
    """A Dask client whose cluster has no worker would wait for one forever: refused with what to start."""
    client = getattr(executor, "_client", None)
    if client is None or not callable(getattr(client, "scheduler_info", None)):
        return
    try:
        info = client.scheduler_info()
        workers = info.get("workers") if isinstance(info, dict) else None
    except Exception:  # noqa: BLE001 - a client that cannot say: the sweep tries
        return
    if isinstance(workers, dict) and not workers:
        address = getattr(getattr(client, "scheduler", None), "address", None) or "tcp://SCHEDULER:8786"
        raise SweepError(f"{api} got a Dask client whose cluster has no workers, so no point would ever run.",
                         hint=f"Start workers first (`dask worker {address}` on each machine, or "
                              "LocalCluster(n_workers=2)), or leave executor= out to run the sweep on this machine.",
                         locate=False)


def unguarded_main_line() -> tuple[str, int] | None:
    """(file, line) of the script line that started this sweep when it is not under ``if __name__ ==
    "__main__":`` (each worker process of a pool imports the script, and would start the sweep again), else None.
    A notebook or an interactive session has no script: None."""
    frame = sys._getframe(1)
    found = None
    while frame is not None:  # the outermost module-level frame of __main__
        if frame.f_code.co_name == "<module>" and frame.f_globals.get("__name__") == "__main__":
            found = (frame.f_code.co_filename, frame.f_lineno)
        frame = frame.f_back  # type: ignore[assignment]
    if found is None or not os.path.isfile(found[0]):
        return None
    try:
        with open(found[0], encoding="utf-8") as f:
            tree = ast.parse(f.read())
    except (OSError, SyntaxError, ValueError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and _is_main_test(node.test):
            if node.lineno <= found[1] <= (node.end_lineno or node.lineno):
                return None
    return found


def _is_main_test(test: ast.expr) -> bool:
    """``__name__ == "__main__"`` (either way round), also as one term of an ``and`` (``if __name__ == "__main__"
    and len(sys.argv) > 1:``: the body still runs only in the main script)."""
    if isinstance(test, ast.BoolOp) and isinstance(test.op, ast.And):
        return any(_is_main_test(v) for v in test.values)
    if not (isinstance(test, ast.Compare) and len(test.ops) == 1 and isinstance(test.ops[0], ast.Eq)):
        return False
    sides = [test.left, test.comparators[0]]
    return (any(isinstance(s, ast.Name) and s.id == "__name__" for s in sides)
            and any(isinstance(s, ast.Constant) and s.value == "__main__" for s in sides))


def _describe_executor(executor: Executor) -> str:
    workers = _workers(executor)
    return f"{type(executor).__module__.split('.')[0]}.{type(executor).__name__} ({workers} at once)"


def process_pool(workers: int) -> ProcessPoolExecutor:
    """A new process pool whose workers start from a fork server that has imported ptort_lab's core already (fast,
    and safe in a notebook, whose kernel runs threads); spawn where there is no fork server. As with any
    multiprocessing, a script must start its sweeps under ``if __name__ == "__main__":`` (the workers import it)."""
    main = sys.modules.get("__main__")
    if main is not None and not hasattr(main, "__spec__"):
        # multiprocessing reads __main__.__spec__ to start a worker; an IPython namespace emptied by %reset has
        # none (a plain Python __main__ has it, None when run as a script), and starting would fail.
        main.__spec__ = None
    if "forkserver" in multiprocessing.get_all_start_methods():
        server = multiprocessing.get_context("forkserver")
        server.set_forkserver_preload(["ptort_lab.sweeps.worker"])
        return ProcessPoolExecutor(max_workers=workers, mp_context=server)
    return ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))


class _Sweep:
    """One sweep's run: the outcomes so far, the cache, the progress."""

    def __init__(self, the_plan: Plan, cache: SweepCache | None, progress: Progress) -> None:
        self.plan = the_plan
        self.study = the_plan.study
        self.base_knobs = the_plan.study.knobs
        self.cache = cache
        self.progress = progress
        self.outcomes: dict[int, Outcome] = {}
        self.point_keys: list[str | None] = [None] * len(the_plan.combos)
        self.sources: set[str] = set()
        self.notes: list[str] = []  # about the cache
        self.run_notes: list[str] = []  # about where the points ran
        self.unkeyed: str | None = None
        self.reused = self.computed = 0
        self.ran_on: list[str] = []
        self._packed: tuple[str, bytes] | None = None

    # -- the sweep -------------------------------------------------------------------------------------------------
    def run(self, choice: str | Executor) -> SweepResult:
        started = time.perf_counter()
        self._key_points()
        self._look_up()
        pending = [i for i in range(len(self.plan.combos)) if i not in self.outcomes]
        self.progress.start(len(self.plan.combos))
        self._report()
        try:
            if pending:
                self._run(choice, pending)
        except KeyboardInterrupt:
            raise self._interrupted() from None
        finally:
            self.progress.close()
            if self.cache is not None:
                self.cache.warn()
        return self._result(time.perf_counter() - started)

    def _key_points(self) -> None:
        """Every point's key (the builder's hash and its knobs): a rerun finds its rows without building."""
        try:
            digest, self.sources = builder_key(self.study)
        except Undescribable as e:
            code = getattr(self.study.build, "__code__", None)
            self.sources = {code.co_filename} if code is not None else set()
            if self.cache is not None:
                self.notes.append(f"points are looked up only once built: {e}")
            return
        if self.cache is None:
            return
        for i, combo in enumerate(self.plan.combos):
            self.point_keys[i] = point_key(digest, self.base_knobs.replace(**combo))

    def _look_up(self) -> None:
        if self.cache is None:
            return
        for i, key in enumerate(self.point_keys):
            # (the point's knobs: a row holding others was edited by hand, and is recomputed)
            found = self.cache.lookup(key, self.base_knobs.replace(**self.plan.combos[i])) if key is not None else None
            if found is not None:
                self.outcomes[i] = Outcome(i, row=found[1], program=found[0], cached=True)
                self.reused += 1

    def _run(self, choice: str | Executor, pending: list[int]) -> None:
        if choice == "serial":
            self.ran_on.append("this process")
            self._serial(pending)
        elif choice == "auto":
            self._auto(pending)
        elif choice == "processes":
            self._own_pool(pending, "sweep(executor='processes')")
        else:
            assert isinstance(choice, Executor)
            self.ran_on.append(_describe_executor(choice))
            self._parallel(choice, pending, "sweep(executor=...)")

    def _auto(self, pending: list[int]) -> None:
        """In this process until the pace is known; the rest on a process pool when it is worth starting one."""
        cores = os.cpu_count() or 1
        if cores < 2 or len(pending) < 3 or self.study.compile_options.get("compute_values") is not False:
            self.ran_on.append("this process")
            self._serial(pending)
            return
        times: list[float] = []
        while len(times) < 2 and (not times or sum(times) < AUTO_PROBE_S):
            started = time.perf_counter()
            self._serial(pending[len(times):len(times) + 1])
            times.append(time.perf_counter() - started)
        done = len(times)
        rest = pending[done:]
        per_point = min(times)  # the first point also pays one-time costs (imports, first traces)
        here = f"{done} point{'s' if done != 1 else ''} in this process"
        if not rest or per_point * len(rest) < AUTO_PARALLEL_AFTER_S:
            self.ran_on.append("this process")
            self._serial(rest)
            return
        unguarded = unguarded_main_line()
        if unguarded is not None:  # the pool's workers would run the script, and its sweep, again
            self.ran_on.append("this process")
            self.run_notes.append(f"ran in this process: the script starts the sweep at {unguarded[0]}:"
                                  f"{unguarded[1]} outside `if __name__ == \"__main__\":`, so the worker processes "
                                  "of a pool (which import the script) would start it again; put the script's code "
                                  "under that guard to let long sweeps use every core")
            self._serial(rest)
            return
        try:
            self._spec_bytes("sweep()")
        except SweepError as e:  # the builder cannot travel: the sweep runs here, as it always could
            self.ran_on.append("this process")
            self.run_notes.append(f"ran in this process: {e.what}")
            self._serial(rest)
            return
        self.ran_on.append(here + ", then")
        try:
            self._own_pool(rest, "sweep()")
        except _WorkerRefused as e:  # the pool's workers cannot run it (ptort_lab edited since it was imported)
            self.ran_on = ["this process"]
            self.run_notes.append(f"ran in this process: {e.what}")
            self._serial([i for i in rest if i not in self.outcomes])

    def _own_pool(self, pending: list[int], api: str) -> None:
        unguarded = unguarded_main_line()
        if unguarded is not None:
            file, line = unguarded
            raise SweepError(
                f"{api} starts a process pool, whose worker processes import the script {file}; the sweep is "
                f"started at line {line}, outside `if __name__ == \"__main__\":`, so each worker would start it "
                "again, and the pool fails.",
                hint="Put the script's code that runs the sweep under `if __name__ == \"__main__\":`, or pass "
                     "executor='serial'.",
                where=SourceLocation(file, line, "<module>", linecache.getline(file, line).strip()), locate=False)
        data = self._spec_bytes(api)  # before any worker starts: a builder that cannot travel is refused now
        # A new pool per sweep (its workers fork from the fork server in a few ms): a pool kept between sweeps
        # would run modules the user has edited since its workers imported them.
        workers = max(1, min(os.cpu_count() or 1, len(pending)))
        pool = process_pool(workers)
        self.ran_on.append(f"a process pool of {workers} worker{'s' if workers != 1 else ''}")
        ok = False
        try:
            self._parallel(pool, pending, api, packed=data)
            ok = True
        finally:
            if not ok:  # interrupted or failed: stop the workers now rather than after their current points
                for proc in list((getattr(pool, "_processes", None) or {}).values()):
                    _terminate(proc)
            pool.shutdown(wait=ok, cancel_futures=True)

    def _serial(self, pending: list[int]) -> None:
        for i in pending:
            outcome = run_point(self.study, i, self.plan.combos[i], self.plan.params, cache=self.cache,
                                keyed=self.cache is not None, raise_knob_errors=True)
            self._record(outcome)

    # -- executors -------------------------------------------------------------------------------------------------
    def _spec(self) -> SweepSpec:
        s = self.study
        return SweepSpec(s.build, self.base_knobs, s.mode, s.words, dict(s.compile_options), self.plan.params,
                         equal_cores=s.equal_cores, module_state=module_state((s.build, dict(s.compile_options))),
                         keyed=self.cache is not None,
                         cache_dir=str(self.cache.root) if self.cache is not None else None,
                         code=code_version(), sources=cell_sources(self.sources))

    def _spec_bytes(self, api: str) -> tuple[str, bytes]:
        """The spec pickled once (a SweepError naming what cannot be pickled, before any worker starts)."""
        if self._packed is None:
            self._packed = pack(self._spec(), self.study.build, api)
        return self._packed

    def _parallel(self, executor: Executor, pending: list[int], api: str,
                  packed: tuple[str, bytes] | None = None) -> None:
        spec_id, data = packed if packed is not None else self._spec_bytes(api)
        size = max(1, min(MAX_POINTS_PER_TASK, math.ceil(len(pending) / (_workers(executor) * TASKS_PER_WORKER))))
        chunks = [pending[k:k + size] for k in range(0, len(pending), size)]
        code = code_version()
        _check_has_workers(executor, api)
        # A Dask client names a task by a hash of its function and arguments, and hands back the future it already
        # has under that name: the same chunk of a sweep run again (resumed after Ctrl-C, or the same sweep started
        # twice on one client) would get the cancelled future of the first. A fresh nonce makes every task new.
        nonce = uuid.uuid4().hex
        futures: dict[Future[ChunkResult], list[int]] = {}
        waiting: set[Future[ChunkResult]] = set()
        try:
            for chunk in chunks:
                points = [(i, self.plan.combos[i]) for i in chunk]
                try:
                    future = executor.submit(run_chunk, spec_id, data, points, code, nonce)
                except (RuntimeError, BrokenExecutor) as e:  # shut down, or its cluster is gone
                    raise SweepError(f"{api} could not hand points to the executor ({type(e).__name__}: {e}); "
                                     f"{len(self.outcomes)} of {len(self.plan.combos)} points are done.",
                                     hint="Pass an executor that is running (a Dask client still connected), or "
                                          "leave executor= out.", locate=False) from None
                futures[future] = chunk
                waiting.add(future)
            for future in as_completed(futures):
                waiting.discard(future)
                self._take(future, futures[future])
        finally:
            for future in waiting:
                future.cancel()

    def _take(self, future: Future[ChunkResult], chunk: list[int]) -> None:
        """Record what one task returned (or how it failed)."""
        try:
            result = future.result()
        except CancelledError:  # not by this sweep (it cancels only what it leaves behind): another client's doing
            error = PointError("CancelledError", "the executor cancelled the task running this point before it "
                                                 "returned, so the point has no row.",
                               hint="Run the same sweep() again: the points done are in the sweep cache, and only "
                                    "this one and the other missing ones run.")
            for i in chunk:
                self._record(Outcome(i, error=error))
            return
        except BrokenExecutor as e:
            raise self._worker_died(e) from None
        except KeyboardInterrupt:
            raise
        except Exception as e:  # noqa: BLE001 - the task failed as a whole (a Dask KilledWorker): its points did
            error = PointError(type(e).__name__, f"the worker running this point failed: {e}",
                               hint="A worker that dies on the same points again needs more memory: run them with "
                                    "executor='serial', or with fewer tiles.")
            for i in chunk:
                self._record(Outcome(i, error=error))
            return
        if not isinstance(result, ChunkResult):  # a wrapper executor that forgot to return fn(*args)
            raise SweepError(
                f"sweep(executor=...) gave back {_short_repr(result)} for a task of {len(chunk)} point"
                f"{'s' if len(chunk) != 1 else ''}, not what the function it was given returned; "
                f"{len(self.outcomes)} of {len(self.plan.combos)} points are done.",
                hint="The executor's submit(fn, *args) must return a Future whose result() is fn(*args)'s return value "
                     "(a wrapper must `return fn(*args)`); or leave executor= out.")
        if self.cache is not None:  # warned of with the notebook's own, at the sweep's end
            self.cache.add_corrupt(result.corrupt)
        if result.settings is not None:  # ("auto" then runs the rest here: a _WorkerRefused)
            raise _WorkerRefused(result.settings[0], hint=result.settings[1], locate=False)
        if result.stop is not None:
            raise _WorkerRefused(f"the sweep cannot run on this executor: {result.stop}.",
                                 hint="Install the same ptort_lab (and the modules your builder imports) on every "
                                      "worker, or define the builder in the notebook (sent whole with cloudpickle). "
                                      "If you edited ptort_lab's source since this notebook imported it, restart "
                                      "the kernel, or run the sweep with executor='serial'.", locate=False)
        for outcome in result.outcomes:
            self._record(outcome)
        if result.interrupted:
            raise KeyboardInterrupt

    # -- outcomes --------------------------------------------------------------------------------------------------
    def _record(self, outcome: Outcome) -> None:
        self.outcomes[outcome.index] = outcome
        if outcome.error is not None and outcome.error.knob_rule:
            outcome.error.raise_knob_error()  # it came from a worker: the sweep stops as it would here
        if outcome.row is not None and self.cache is not None:
            if outcome.program is not None:
                self.cache.store(outcome.program, outcome.row, self.point_keys[outcome.index])
            elif outcome.unkeyed is not None and self.unkeyed is None:
                self.unkeyed = outcome.unkeyed
        if outcome.cached:
            self.reused += 1
        elif outcome.row is not None and outcome.program is not None:
            self.computed += 1
        self._report()

    def _report(self) -> None:
        failed = sum(1 for o in self.outcomes.values() if o.error is not None)
        cached = sum(1 for o in self.outcomes.values() if o.cached)
        self.progress.update(len(self.outcomes), failed, cached)

    def _saved_text(self) -> str:
        if self.cache is None:
            return "nothing was saved (cache=False), so running it again starts over"
        return (f"they are saved in the sweep cache ({self.cache.root}), so running the same sweep again resumes it: "
                f"only the {len(self.plan.combos) - len(self.outcomes)} others run")

    def _interrupted(self) -> SweepInterrupted:
        done = len(self.outcomes)
        return SweepInterrupted(f"sweep interrupted after {done} of {len(self.plan.combos)} points; "
                                f"{self._saved_text()}.")

    def _worker_died(self, e: BaseException) -> SweepError:
        return SweepError(
            f"a worker process of the sweep died (killed, or out of memory) after {len(self.outcomes)} of "
            f"{len(self.plan.combos)} points were done ({type(e).__name__}); {self._saved_text()}.",
            hint="Run the same sweep() again to resume. If a worker dies again, its points need more memory than a "
                 "worker has: run them with executor='serial', or with fewer tiles.", locate=False)

    def _result(self, seconds: float) -> SweepResult:
        combos = self.plan.combos
        missing = PointError("SweepError", "the executor returned no result for this point.",
                             hint="Run the same sweep() again: the points done are in the sweep cache, and only the "
                                  "missing ones run.")
        for i in range(len(combos)):  # never a result that silently lacks a combination
            if i not in self.outcomes:
                self.outcomes[i] = Outcome(i, error=missing)
        points = [SweepPoint(i, combos[i], row=o.row, error=o.error, cached=o.cached)
                  for i, o in sorted(self.outcomes.items())]
        notes = list(self.notes)
        if self.unkeyed is not None:
            notes.append(f"some rows were not saved: {self.unkeyed}")
        use = CacheUse(str(self.cache.root) if self.cache is not None else None, self.reused, self.computed,
                       "; ".join(notes), self.cache.write_error if self.cache is not None else None)
        s = self.study
        base = Study(s.build, self.base_knobs, s.mode, words=s.words, equal_cores=s.equal_cores,
                     **s.compile_options)
        ran_on = " ".join(self.ran_on) if self.ran_on else "nothing (every row came from the cache)"
        cpu = sum(o.cpu_s for o in self.outcomes.values())
        return SweepResult(self.plan.params, points, seconds, use, ran_on, base, list(self.run_notes), cpu)


def _short_repr(value: Any, limit: int = 80) -> str:
    """``None``, ``int 3``, ``str 'abc…'``: a value for a message, cut to ``limit`` characters, without memory
    addresses (``explore.value_text``)."""
    return "None" if value is None else value_text(value, limit)


def _terminate(proc: Any) -> None:
    try:
        proc.terminate()
    except Exception:  # noqa: BLE001 - a process that already ended
        pass


__all__ = ["run_sweep", "SweepInterrupted", "process_pool", "EXECUTOR_NAMES", "AUTO_PARALLEL_AFTER_S"]
