"""Sweeps: every combination of knob values run on any concurrent.futures executor, cached on disk, resumable.

The core of ``ptort_lab.notebook.sweep`` (which adds the progress widget, plots and timelines): it imports no
plotting or notebook library, so worker processes load only ptort_lab's core.

- ``run_sweep(build, depth=[1, 2, 4], executor=...)`` runs the points here, on a process pool, or on a Dask or
  Ray cluster (``execute``); ``SweepResult`` holds one ``SweepPoint`` per combination (``result``).
- The cache (``cache``): rows keyed by the content hash of the program that ran (``keys``, ``fingerprint``), in
  ``default_cache_dir()`` (``$PTORT_LAB_CACHE/sweeps``, else ``~/.cache/ptort_lab/sweeps``); ``cache_info()``
  shows it, ``clear_cache()`` empties it.
"""
from __future__ import annotations

from .cache import CacheInfo, SweepCacheWarning, cache_info, clear_cache, default_cache_dir
from .execute import AUTO_PARALLEL_AFTER_S, EXECUTOR_NAMES, SweepInterrupted, process_pool, run_sweep
from .points import KNOBS, MAX_RUNS, MAX_RUNS_EXECUTOR
from .progress import Progress
from .ray_executor import RayExecutor
from .result import CacheUse, PointError, SweepPoint, SweepResult, SweepTable

__all__ = ["run_sweep", "SweepResult", "SweepPoint", "PointError", "SweepTable", "CacheUse", "SweepInterrupted",
           "cache_info", "clear_cache", "default_cache_dir", "CacheInfo", "SweepCacheWarning", "Progress",
           "RayExecutor", "process_pool", "MAX_RUNS", "MAX_RUNS_EXECUTOR", "KNOBS", "EXECUTOR_NAMES",
           "AUTO_PARALLEL_AFTER_S"]
