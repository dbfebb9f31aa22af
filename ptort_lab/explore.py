"""Study one piece of work two ways: as a CSP pipeline and as its data-parallel twin, under a set of knobs."""
from __future__ import annotations

import inspect
import numbers
from dataclasses import dataclass, fields, replace
from typing import Any, Callable

from .dsl.schedule import DispatchPolicy
from .dsl.workload import Task, Workload, group
from .errors import PtortTypeError, PtortValueError, raise_user_error
from .program import Program

MODES = ("pipeline", "data-parallel", "both")


@dataclass(frozen=True)
class Knobs:
    """What the explorer and ``%%ptort`` let you change: channel depth, tile size, tile count, cores."""

    depth: int = 2
    tile: tuple[int, int] = (128, 128)
    tiles: int = 8
    cores: int = 4

    def __post_init__(self) -> None:
        # numpy integers (np.int64(2), a value out of np.arange) are accepted, as everywhere else, and stored as
        # plain ints so that the knobs print, compare and hash like the ints a user typed.
        for name in ("depth", "tiles", "cores"):
            v = getattr(self, name)
            if not _whole(v):
                raise PtortValueError(f"knob {name} must be an int >= 1, got {v!r}.",
                                      hint=f"Use e.g. {name}=2.")
            object.__setattr__(self, name, int(v))
        if (not isinstance(self.tile, (tuple, list)) or len(self.tile) != 2
                or not all(_whole(v) for v in self.tile)):
            raise PtortValueError(f"knob tile must be (rows, cols) of ints >= 1, got {self.tile!r}.",
                                  hint="Use tile=(64, 128) (or --tile 64x128 in %%ptort).")
        object.__setattr__(self, "tile", (int(self.tile[0]), int(self.tile[1])))

    def replace(self, **changes: Any) -> Knobs:
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise PtortValueError(f"unknown knob(s) {sorted(unknown)}.", hint="Knobs are depth, tile, tiles, cores.")
        return replace(self, **changes)

    def __str__(self) -> str:
        return f"depth={self.depth} tile={self.tile[0]}x{self.tile[1]} tiles={self.tiles} cores={self.cores}"


def _whole(v: Any) -> bool:
    """An int >= 1: Python's or numpy's integers, never a bool or a float such as 2.0."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and int(v) >= 1


def _knobs_example(value: Any) -> str:
    """``Knobs(...)`` written from what the user passed instead, when it reads as knob settings."""
    names = {f.name for f in fields(Knobs)}
    if isinstance(value, dict) and value and set(map(str, value)) <= names:
        return "Knobs(" + ", ".join(f"{k}={v!r}" for k, v in value.items()) + ")"
    if isinstance(value, str):
        parts = [p.strip() for p in value.replace(";", ",").split(",") if p.strip()]
        if parts and all("=" in p and p.split("=", 1)[0].strip() in names for p in parts):
            return "Knobs(" + ", ".join(p.replace(" ", "") for p in parts) + ")"
    return "Knobs(depth=2)"


def check_knobs(knobs: Any, api: str) -> Knobs | None:
    """``knobs`` if it is a Knobs (or None); else a PtortTypeError naming ``api`` (e.g. "sweep") and the fix."""
    if knobs is None or isinstance(knobs, Knobs):
        return knobs
    example = _knobs_example(knobs)
    raise PtortTypeError(f"{api}(knobs=...) needs a Knobs, got {type(knobs).__name__} {knobs!r}.",
                         hint=f"Write {api}(..., knobs={example}) (from ptort_lab.explore import Knobs).",
                         locate=True)


def _tile_key(task: Task) -> int:
    """Tasks of one tile stay on one core: key on the tile index (the first axis value)."""
    key = task.params[0] if task.params else task.id
    return key if isinstance(key, int) else task.id


def data_parallel_twin(workload: Workload, cores: int) -> Workload:
    """The same tasks as ``workload`` (a pipeline or any workload), dispatched over ``cores`` with each tile's
    tasks on one core; dependencies come from the tensors they touch, exactly as for any data-parallel run."""
    if not isinstance(workload, Workload):
        raise PtortTypeError(f"data_parallel_twin() needs a workload or pipeline, got {type(workload).__name__} "
                             f"{workload!r}.",
                             hint="Pass what connect(...) or a @workload call returns: "
                                  "data_parallel_twin(pipeline, 4).")
    if isinstance(cores, bool) or not isinstance(cores, numbers.Integral):
        raise PtortTypeError(f"data_parallel_twin() cores must be an int >= 1, got {type(cores).__name__} {cores!r}.",
                             hint="Pass a whole number of cores, e.g. data_parallel_twin(pipeline, 4).")
    if cores < 1:
        raise PtortValueError(f"data_parallel_twin() cores must be an int >= 1, got {cores!r}.",
                              hint="Pass at least one core, e.g. data_parallel_twin(pipeline, 4).")
    cores = int(cores)
    tasks = workload.enumerate()
    nodes = [Workload("task", loc=t.loc, kernel=t.kernel_ref if t.kernel_ref is not None else t.kernel,
                      params=tuple(t.params), resources=t.resources, cycles=t.cycles) for t in tasks]
    twin = group(nodes)
    if twin.kind == "task" or twin.kind == "empty":
        twin = Workload("combine", children=tuple(nodes))
    twin.name = f"{workload.name or workload.kind} (data-parallel)"
    return twin.dispatch(DispatchPolicy.affinity(_tile_key, cores))


def is_pipeline(workload: Workload) -> bool:
    return workload.kind in ("connect", "pipe")


@dataclass
class Comparison:
    """A pipeline run and a data-parallel run of the same work (either may be absent, by mode)."""

    knobs: Knobs
    pipeline: Program | None = None
    data_parallel: Program | None = None
    note: str = ""  # e.g. that the workload's own dispatch decided the cores, not knobs.cores

    @property
    def runs(self) -> list[tuple[str, Program]]:
        return [(label, p) for label, p in (("pipeline", self.pipeline), ("data-parallel", self.data_parallel))
                if p is not None]

    @property
    def speedup(self) -> float | None:
        """Data-parallel cycles / pipeline cycles (> 1: the pipeline is faster)."""
        if self.pipeline is None or self.data_parallel is None:
            return None
        p = self.pipeline.stats().total_cycles
        return self.data_parallel.stats().total_cycles / p if p else None

    def rows(self) -> list[dict[str, Any]]:
        """One row per run: label, cycles, µs, overlap %, tasks."""
        out = []
        for label, prog in self.runs:
            s = prog.stats()
            out.append({"run": label, "cycles": s.total_cycles, "us": round(s.time_us, 3),
                        "overlap_pct": round(s.overlap_pct, 1), "tasks": s.task_count})
        return out

    def summary(self) -> str:
        lines = [f"knobs: {self.knobs}"]
        if self.note:
            lines.append(f"  ({self.note})")
        for r in self.rows():
            lines.append(f"  {r['run']:<14} {r['cycles']:>10} cycles  {r['us']:>10.3f} us  "
                         f"overlap {r['overlap_pct']:5.1f}%  {r['tasks']} tasks")
        if self.speedup is not None:
            lines.append(f"  pipeline speedup vs data-parallel: {self.speedup:.2f}x")
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.summary()


def run_study(workload: Workload, knobs: Knobs, mode: str = "both", **compile_options: Any) -> Comparison:
    """Run ``workload`` as a pipeline, as its data-parallel twin on ``knobs.cores`` cores, or both."""
    if mode not in MODES:
        raise PtortValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}.", hint="Use mode='both'.")
    if not isinstance(workload, Workload):
        raise PtortTypeError(f"run_study needs a workload or pipeline, got {type(workload).__name__} {workload!r}.",
                             hint="Pass what connect(...) or a @workload call returns (or use Study(build) for a "
                                  "builder function).")
    if not isinstance(knobs, Knobs):
        raise PtortTypeError(f"run_study needs Knobs, got {type(knobs).__name__} {knobs!r}.",
                             hint="Write run_study(w, Knobs(cores=2)).")
    result = Comparison(knobs)
    if is_pipeline(workload):
        if mode in ("pipeline", "both"):
            result.pipeline = workload.compile(**compile_options).execute()
        if mode in ("data-parallel", "both"):
            result.data_parallel = data_parallel_twin(workload, knobs.cores).compile(**compile_options).execute()
        return result
    if mode == "pipeline":
        raise PtortValueError(f"mode 'pipeline' needs a pipeline, but the workload is {workload.kind!r}.",
                              hint="Build one with connect(...) or P.pipe(), or use mode='data-parallel'.")
    if workload._schedule.dispatch is None:
        workload = data_parallel_twin(workload, knobs.cores)
    else:
        # The workload was dispatched already (``w.dispatch(round_robin(2))``), so its own policy decides the cores.
        # Refusing a mismatch would reject every such cell run with the default knobs (cores=4), so instead the
        # result reports the cores that actually ran, and says that knobs.cores was not applied.
        used = _dispatched_cores(workload)
        if used != knobs.cores:
            result.knobs = replace(knobs, cores=used)
            result.note = (f"the workload's own dispatch ({workload._schedule.dispatch!r}) runs on {used} "
                           f"core{'s' if used != 1 else ''}; cores={knobs.cores} from the knobs was not applied")
    result.data_parallel = workload.compile(**compile_options).execute()
    return result


def _dispatched_cores(workload: Workload) -> int:
    """The cores a dispatched workload runs on, counted as the simulator counts them."""
    sched = workload._schedule
    return (sched.dispatch.num_cores if sched.dispatch is not None else 0) or sched.stream_count or 1


class Study:
    """A builder plus knobs: ``Study(build).run(depth=4)`` rebuilds the work with new knobs and runs it.

    ``build`` takes any of ``depth``, ``tile``, ``tiles``, ``cores`` as keyword arguments (only those it names)
    and returns the workload or pipeline to study.
    """

    def __init__(self, build: Callable[..., Workload], knobs: Knobs | None = None, mode: str = "both",
                 **compile_options: Any) -> None:
        if not callable(build):
            raise PtortTypeError(f"Study needs a builder function, got {build!r}.",
                                 hint="def build(depth, tile, tiles): ... return connect(...)")
        self.build = build
        self.knobs = check_knobs(knobs, "Study") or Knobs()
        self.mode = mode
        self.compile_options = compile_options
        try:
            params = inspect.signature(build).parameters
            self._takes = {n for n in params if n in {f.name for f in fields(Knobs)}}
            self._takes_all = any(p.kind is p.VAR_KEYWORD for p in params.values())
        except (TypeError, ValueError):
            self._takes, self._takes_all = set(), True
        self.last: Comparison | None = None

    def workload(self, knobs: Knobs) -> Workload:
        args = {f.name: getattr(knobs, f.name) for f in fields(knobs)
                if self._takes_all or f.name in self._takes}
        try:
            w = self.build(**args)
        except Exception as e:  # noqa: BLE001 - the user's builder
            raise_user_error(e, f"the study's builder {getattr(self.build, '__name__', '')} (with {args})")
        if not isinstance(w, Workload):
            raise PtortTypeError(f"the study's builder returned {type(w).__name__} {w!r}, not a workload.",
                                 hint="Return the pipeline (connect(...)) or workload to study.")
        return w

    def run(self, **changes: Any) -> Comparison:
        """Apply knob changes, rebuild, run; the result is also kept in ``.last``."""
        if not isinstance(self.knobs, Knobs):  # study.knobs was reassigned
            check_knobs(self.knobs, "Study")
        self.knobs = self.knobs.replace(**changes)
        self.last = run_study(self.workload(self.knobs), self.knobs, self.mode, **self.compile_options)
        return self.last


__all__ = ["Knobs", "Comparison", "Study", "run_study", "data_parallel_twin", "check_knobs", "MODES"]
