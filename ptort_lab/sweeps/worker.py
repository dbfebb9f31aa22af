"""What runs one sweep point, here or in a worker process: build, hash, look up, run, one row (or one error).

``run_point`` is the whole of a point, in whichever process it runs. ``run_chunk`` is the task an executor runs:
it loads the sweep's spec (the builder and options, pickled once by the notebook with cloudpickle; loaded once per
worker process) and runs a few points. Nothing here imports a plotting or notebook library: worker processes
import ptort_lab's core only.
"""
from __future__ import annotations

import linecache
import pickle
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from ..errors import KnobError, SweepError
from ..explore import Comparison, Study
from ..knobs import Knobs, KnobWords
from .cache import ROW_ORDER, SweepCache
from .fingerprint import Undescribable, code_version
from .keys import program_key
from .module_state import ModuleState, apply_module_state
from .result import PointError


@dataclass
class SweepSpec:
    """Everything a worker needs to run points of a sweep: the study's parts, the swept knob names, the sweep
    cache folder (read, when the worker can see it), ptort_lab's code version and the text of the user's cells
    (so that an error in a worker shows the line)."""

    build: Callable[..., Any]
    knobs: Knobs
    mode: str
    words: KnobWords
    options: dict[str, Any]
    params: tuple[str, ...]
    keyed: bool  # compute program keys (the sweep uses a cache)
    cache_dir: str | None
    code: str
    sources: dict[str, tuple[int, None, list[str], str]] = field(default_factory=dict)
    equal_cores: bool = False  # the twin runs on the pipeline's own cores (Study(equal_cores=True))
    # The notebook's values of the module settings the builder reaches (a worker imports modules fresh): set in the
    # worker before its first point, so that it runs what the notebook would (module_state).
    module_state: ModuleState = field(default_factory=dict)

    def study(self) -> Study:
        return Study(self.build, self.knobs, self.mode, words=self.words, equal_cores=self.equal_cores,
                     **self.options)


@dataclass
class Outcome:
    """One point's outcome: its row or its error, the key of what ran, whether the row came from the cache, and
    why the run could not be keyed (then it is not saved)."""

    index: int
    row: dict[str, Any] | None = None
    error: PointError | None = None
    program: str | None = None
    cached: bool = False
    unkeyed: str | None = None
    cpu_s: float = 0.0  # the CPU time the point took (its thread's), wherever it ran


@dataclass
class ChunkResult:
    """What one task returns: its points' outcomes; ``stop`` says why the sweep cannot go on (the spec could not
    be loaded, the worker runs other code) and ``interrupted`` that a KeyboardInterrupt ended it early."""

    outcomes: list[Outcome] = field(default_factory=list)
    stop: str | None = None
    interrupted: bool = False
    settings: tuple[str, str] | None = None  # (what, hint): the worker's modules hold other settings than the notebook
    corrupt: list[str] = field(default_factory=list)  # unreadable cache entries met (the notebook warns of them)


class _Hit(Exception):
    """The program is in the cache: stop before running it."""

    def __init__(self, row: dict[str, Any]) -> None:
        super().__init__("cached")
        self.row = row


_RUNS = (("pipeline", "pipeline"), ("data-parallel", "data_parallel"))  # (label, row prefix)


def row_of(comparison: Comparison) -> dict[str, Any]:
    """One SweepResult row: the knobs that ran, each run's cycles and overlap % and the speedup (the columns
    sweeps always had, in their order), then each run's µs, cores used and bytes moved (None for a run the mode
    leaves out)."""
    k = comparison.knobs
    runs = dict(comparison.runs)
    stats = {label: prog.stats() for label, prog in runs.items()}
    row: dict[str, Any] = {"depth": k.depth, "tile": k.tile, "tiles": k.tiles, "cores": k.cores}
    row.update({f"{p}_cycles": s.total_cycles if (s := stats.get(label)) else None for label, p in _RUNS})
    row.update({f"{p}_overlap_pct": round(s.overlap_pct, 1) if (s := stats.get(label)) else None
                for label, p in _RUNS})
    row["speedup"] = comparison.speedup
    for label, p in _RUNS:
        s, prog = stats.get(label), runs.get(label)
        row[f"{p}_us"] = round(s.time_us, 3) if s else None
        row[f"{p}_cores"] = len({span.core for span in prog.trace.spans}) if prog is not None else None
        row[f"{p}_bytes_moved"] = s.bytes_moved if s else None
    return {k: row[k] for k in ROW_ORDER}  # (the order a row read from the cache is given in)


def run_point(study: Study, index: int, changes: dict[str, Any], params: tuple[str, ...], *,
              cache: SweepCache | None, keyed: bool, raise_knob_errors: bool) -> Outcome:
    """Build point ``changes`` with ``study``, key what was built, take its row from ``cache`` or run it.

    Any exception becomes the outcome's error, except a KeyboardInterrupt (the sweep stops) and, with
    ``raise_knob_errors``, a KnobError (it stops the sweep as it stopped it before there were workers)."""
    outcome = Outcome(index)
    requested = study.knobs.replace(**changes)
    cpu_started = time.thread_time()

    def on_built(target: Any, knobs: Knobs) -> None:
        if not keyed:
            return
        try:
            outcome.program = program_key(target, knobs, study)
        except Undescribable as e:
            outcome.unkeyed = str(e)
            return
        row = cache.result(outcome.program, knobs) if cache is not None else None
        if row is not None:
            raise _Hit(row)

    try:
        comparison = study.run_with(changes, on_built)
        if "cores" in params and comparison.knobs.cores != requested.cores:
            raise KnobError(
                f"sweep(cores=...) varies the data-parallel cores, but {comparison.note}, so every row would be the "
                "same.",
                hint="Leave cores out of the sweep, or build the workload without .dispatch(...) (the study then "
                     "dispatches its tasks over the cores knob), or give the builder a cores parameter and dispatch "
                     "with it.")
        outcome.row = row_of(comparison)
    except _Hit as hit:
        outcome.row, outcome.cached = hit.row, True
    except KnobError as e:
        if raise_knob_errors:
            raise
        outcome.error = PointError.of(e)
    except (Exception, SystemExit) as e:  # noqa: BLE001 - the point's own failure; the sweep goes on
        outcome.error = PointError.of(e)
    outcome.cpu_s = time.thread_time() - cpu_started
    return outcome


# -- in a worker process ---------------------------------------------------------------------------------------------
# (spec id, thread) -> the spec loaded once per worker process, its Study per thread (a thread-pool executor runs
# several tasks at once, and a Study keeps the state of its last run).
_LOADED: dict[tuple[str, int], tuple[SweepSpec, Study, SweepCache | None]] = {}
_MAX_LOADED = 8


def _load(spec_id: str, data: bytes) -> tuple[SweepSpec, Study, SweepCache | None]:
    key = (spec_id, threading.get_ident())
    loaded = _LOADED.get(key)
    if loaded is None:
        spec = pickle.loads(data)  # noqa: S301 - bytes the sweep's own notebook pickled for this worker
        apply_module_state(spec.module_state)
        for filename, entry in spec.sources.items():
            linecache.cache.setdefault(filename, entry)
        cache = SweepCache(Path(spec.cache_dir), read_only=True) if spec.cache_dir is not None else None
        loaded = (spec, spec.study(), cache)
        if len(_LOADED) >= _MAX_LOADED:
            _LOADED.pop(next(iter(_LOADED)), None)
        _LOADED[key] = loaded
    return loaded


def run_chunk(spec_id: str, data: bytes, points: list[tuple[int, dict[str, Any]]], code: str,
              nonce: str = "") -> ChunkResult:
    """Run ``points`` ((index, knob changes) pairs) of the sweep whose pickled spec is ``data``. ``nonce`` is unused
    here: it makes each submission's arguments unique, so that a Dask client never hands back an earlier task."""
    if code != code_version():
        return ChunkResult(stop=f"this worker runs ptort_lab {code_version()}, but the sweep was started with "
                                f"ptort_lab {code}, so its results would not be the notebook's")
    try:
        spec, study, cache = _load(spec_id, data)
    except SweepError as e:  # (module_state: settings the worker cannot be given)
        return ChunkResult(stop=e.what, settings=(e.what, e.hint or ""))
    except Exception as e:  # noqa: BLE001 - reported once, by the notebook, for the whole sweep
        return ChunkResult(stop=f"the worker could not load the sweep's builder ({type(e).__name__}: {e})")
    result = ChunkResult()
    try:
        for index, changes in points:
            result.outcomes.append(run_point(study, index, changes, spec.params, cache=cache, keyed=spec.keyed,
                                             raise_knob_errors=False))
    except KeyboardInterrupt:
        result.interrupted = True
    finally:
        if cache is not None:  # (a worker's warning would go to its own stderr, or nowhere)
            result.corrupt = cache.take_corrupt()
    return result


__all__ = ["SweepSpec", "Outcome", "ChunkResult", "run_point", "run_chunk", "row_of"]
