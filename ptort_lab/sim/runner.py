"""simulate(workload): run a pipeline or a data-parallel workload on the engine, computing values and time."""
from __future__ import annotations

import contextvars
import functools
import gc
import itertools
import threading
from collections import deque
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import Any, Iterator, Protocol

import numpy as np

from ..dsl import steps as steps_module
from ..dsl.csp import channel_uses
from ..dsl.ir import KernelIR
from ..dsl.steps import TASK, check_task_count, enumerate_tasks, pipeline_of, steps
from ..dsl.workload import Task, Workload
from ..errors import KernelExecutionError, PtortError, PtortValueError, SimulationError, raise_user_error
from . import numerics
from .deps import infer_dependencies
from .engine import Engine, Proc
from .issue import issue_plan
from .trace import Span, Trace

_new = tuple.__new__  # builds a Span without its Python-level __new__ (3x cheaper; long runs record millions)


class CostModel(Protocol):
    """Prices one task on a core.

    ``task_timing(task, ir, core, start, lane, pipelined)`` returns ``(issue_done, end, spans)``: the task's ops
    start no earlier than ``start``; ``end`` is when its last op finishes; ``issue_done`` is when the issuing
    process may go on. A CSP process is sequential (``pipelined=False``: return ``end``); a data-parallel core
    (``pipelined=True``) may issue its next task while this one still runs, so its pipes overlap across tasks as
    far as buffers allow. ``lane`` names the process (stage or core) for the spans. ``prepare(run)`` is called
    once before a run (to check capacities and reset per-run state).

    Optional: ``time_ordered = False`` (prices never depend on other tasks), ``uses_ir = False`` (prices never look
    at the kernel's ops), and ``fixed_cycles(task) -> int | None``: a model that prices a task as a plain delay (one
    span ``[start, start + cycles)`` on the process lane, no other state touched) returns its cycles, else None.
    For such tasks the runner records that span itself and skips ``task_timing`` (unless values are computed).
    ``channel_stays_on_chip(producers, consumers) -> bool``: whether a channel between processes placed on one core
    stays on chip (``same_core_latency_cycles``) or crosses units through GM (``channel_latency_cycles``); without
    it every same-core channel stays on chip.

    Per-run state. A model that keeps state during a run (pipes, buffers, memory) should provide
    ``begin_run(workload, placement, vector_units) -> pricer``: a new object per run with ``task_timing`` (and the
    optional ``fixed_cycles``, ``channel_stays_on_chip``) that holds that run's state, as ``NpuCostModel`` does. Then
    one model can price runs in several threads at once, each getting exactly its single-thread result. Without
    ``begin_run`` the runner calls ``prepare`` and ``task_timing`` on the model itself, which is only safe for one
    run at a time (or for a model with no per-run state, such as ``PinnedCosts``).
    """

    clock_hz: float

    def prepare(self, workload: Workload, placement: dict[str, int] | None) -> None: ...

    def task_timing(self, task: Task, ir: KernelIR | None, core: int, start: int, lane: str,
                    pipelined: bool) -> tuple[int, int, list[Span]]: ...


@dataclass
class PinnedCosts:
    """Every task costs its pinned cycles (``@kernel(cycles=)`` / ``task(..., cycles=)``) or ``default_cycles``.

    A subclass that overrides ``task_timing`` should also override ``fixed_cycles`` (return None to always be asked).
    """

    default_cycles: int = 0
    clock_hz: float = 1.8e9
    time_ordered = False  # prices never depend on other tasks, so the engine may run processes until they block

    def __post_init__(self) -> None:
        if isinstance(self.default_cycles, bool) or not isinstance(self.default_cycles, int) \
                or self.default_cycles < 0:
            raise PtortValueError(f"PinnedCosts(default_cycles=...) must be an int >= 0, got {self.default_cycles!r}.",
                                  hint="It is the cost of a task that pins none: PinnedCosts(default_cycles=100).")
        if isinstance(self.clock_hz, bool) or not isinstance(self.clock_hz, (int, float)) \
                or not 0 < self.clock_hz < float("inf"):
            raise PtortValueError(f"PinnedCosts(clock_hz=...) must be a frequency > 0, got {self.clock_hz!r}.",
                                  hint="It converts cycles to microseconds: PinnedCosts(clock_hz=1.8e9).")
    uses_ir = False  # prices never look at the kernel's ops

    def prepare(self, workload: Workload, placement: dict[str, int] | None) -> None:
        return None

    def fixed_cycles(self, task: Task) -> int:
        """The task's pinned cycles, or ``default_cycles`` when it pins none."""
        c = task.cycles
        if c.__class__ is int:
            return c  # type: ignore[return-value]
        if c is None:
            return self.default_cycles
        try:
            cycles = c(task)
        except Exception:  # noqa: BLE001 - the checked path below reports the user's function at its line
            cycles = None
        if cycles.__class__ is not int or cycles < 0:
            cycles = task.pinned_cycles()  # the checked path: converts numpy ints, raises a clear error otherwise
        return cycles  # type: ignore[return-value]

    def task_timing(self, task: Task, ir: KernelIR | None, core: int, start: int, lane: str,
                    pipelined: bool) -> tuple[int, int, list[Span]]:
        end = start + self.fixed_cycles(task)
        return end, end, [Span(core, lane, task.kernel, task.params[0] if task.params else task.id, start, end, 0,
                               lane, task.id)]


@dataclass
class RunOptions:
    """Knobs of one simulation run."""

    channel_latency_cycles: int = 0  # a hop between cores (GM-staged FIFO + cross-core flag)
    same_core_latency_cycles: int = 0  # a queue between stages placed on one core stays on chip
    placement: Any = None
    compute_values: bool = True


@dataclass
class Run:
    """The outcome of one simulation: the trace, every task in execution order, and the per-process clocks;
    ``pricing`` is the cost model's per-run state (an ``NpuRun`` for the NPU model: its memory counters, ...)."""

    trace: Trace
    tasks: list[Task] = field(default_factory=list)
    stall_cycles: dict[str, int] = field(default_factory=dict)
    pricing: Any = None


def _placement(procs: list[Any], placement: Any) -> tuple[dict[str, int], dict[str, int]]:
    """(core of each process, the vector unit its vector work runs on). A placement value is a core, or
    ``(core, aiv)`` to put a vector stage on the core's second AIV (default AIV0)."""
    if placement is None:
        return {p.name: i for i, p in enumerate(procs)}, {}
    if placement == "shared":
        return {p.name: 0 for p in procs}, {}
    if isinstance(placement, dict):
        unknown = set(placement) - {p.name for p in procs}
        if unknown:
            raise PtortValueError(f"placement names unknown process(es) {sorted(unknown)}.",
                                  hint=f"Processes are {', '.join(p.name for p in procs)}.")
        out: dict[str, int] = {}
        aivs: dict[str, int] = {}
        for p in procs:
            if p.name in placement:
                out[p.name], aivs[p.name] = _core_and_aiv(p.name, placement[p.name])
        free, used = 0, set(out.values())
        for p in procs:
            if p.name not in out:
                while free in used:
                    free += 1
                out[p.name] = free
                used.add(free)
        return out, {k: v for k, v in aivs.items() if v}
    raise PtortValueError(f"placement must be None, 'shared' or a dict process -> core, got {placement!r}.",
                          hint='Use .place("shared") to put every stage on one core.')


def _core_and_aiv(name: str, value: Any) -> tuple[int, int]:
    parts = tuple(value) if isinstance(value, (tuple, list)) else (value, 0)
    if len(parts) != 2 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) for v in parts):
        raise PtortValueError(f"placement puts process '{name}' on {value!r}; a place is a core (int) or "
                              "(core, aiv) with two ints.",
                              hint='Write .place({"loader": 0, "computer": 0}) or {"update": (0, 1)} for AIV1.')
    return int(parts[0]), int(parts[1])


def _mix(key: int) -> int:
    # splitmix64 finaliser: a real hash, so structured keys spread over cores (affinity keeps them together).
    z = (key + 0x9E3779B97F4A7C15) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
    return z ^ (z >> 31)


def assign_cores(tasks: list[Task], schedule: Any) -> tuple[int, list[int] | None]:
    """(number of cores, core of each task); None assignments mean dynamic (work stealing)."""
    policy = schedule.dispatch
    streams = schedule.stream_count or 0
    if schedule.stream_by is not None and not streams:
        raise PtortValueError("stream_by(fn) picks one of the streams(n), but no streams(n) was given.",
                              hint='Write .streams(4).stream_by(lambda t: t.get("b")).')
    if policy is None:
        if streams and schedule.stream_by is not None:  # streams(n).stream_by(fn): stream fn(t) mod n, one per core
            return streams, [_key(schedule.stream_by, t, "stream_by") % streams for t in tasks]
        if streams:  # streams(n) alone: tasks go to the n streams in turn (the reference puts all on stream 0)
            return streams, [i % streams for i in range(len(tasks))]
        return 1, [0] * len(tasks)
    n = policy.num_cores or streams or 1
    graph = schedule.graph
    if policy.kind == "work_steal" or (graph is not None and graph.ready.kind == "work_steal"):
        return n, None
    if policy.kind == "round_robin":
        return n, [i % n for i in range(len(tasks))]
    api = f"DispatchPolicy.{policy.kind}"
    return n, [(_mix(k) if policy.kind == "hash" else k) % n for k in (_key(policy.key_fn, t, api) for t in tasks)]


def _key(fn: Any, t: Task, api: str) -> int:
    try:
        key = fn(t)
    except Exception as e:  # noqa: BLE001 - the user's key function
        raise_user_error(e, f"the {api} key function (for task {t.id}, {t.kernel}{t.params})")
    if isinstance(key, (int, np.integer)) and not isinstance(key, bool):
        return int(key)
    raise PtortValueError(f"{api} key function returned {key!r} for task {t.id} ({t.kernel}{t.params}); it must "
                          "return an int (a float would be truncated silently).",
                          hint='Return a loop binding, e.g. lambda t: t.get("b"), or t.get("b") // 2.',
                          where=t.loc, locate=False)


_gc_lock = threading.Lock()
_gc_runs = 0  # runs in progress in any thread; the collector waits until the last one ends
_gc_was_enabled = False


@contextmanager
def _gc_paused() -> Iterator[None]:
    """A run allocates millions of small long-lived records (tasks, spans, samples); the cyclic collector would
    rescan them again and again while finding nothing to free, so it waits until the run is over (until every run
    is over, when several threads run at once: the first to start pauses it, the last to end resumes it)."""
    global _gc_runs, _gc_was_enabled
    with _gc_lock:
        if _gc_runs == 0:
            _gc_was_enabled = gc.isenabled()
            gc.disable()
        _gc_runs += 1
    try:
        yield
    finally:
        with _gc_lock:
            _gc_runs -= 1
            if _gc_runs == 0 and _gc_was_enabled:
                # freeze+unfreeze moves the run's objects straight to the oldest generation, so re-enabling does
                # not start with one young-generation pass over all of them (40% of a long run); nothing stays
                # frozen.
                gc.freeze()
                gc.unfreeze()
                gc.enable()


# Runs that compute values write tensors their callers share (two threads running one Program write the same
# arrays, and undoing a failed run must not undo another run's writes), so they take turns; timing-only runs
# touch no tensor and run concurrently. Re-entrant: a cycles= function may itself run a program.
_values_lock = threading.RLock()
_recording: contextvars.ContextVar[numerics.Writes | None] = contextvars.ContextVar("ptort_writes", default=None)


@contextmanager
def recording(writes: numerics.Writes) -> Iterator[numerics.Writes]:
    """Inside the ``with``, value-computing runs (in this thread) record what they write into ``writes``, and one
    that fails puts back everything ``writes`` holds: the tensors return to how they were when it was made. A Study
    uses it so that each of its runs starts from the same data."""
    token = _recording.set(writes)
    try:
        yield writes
    finally:
        _recording.reset(token)


def simulate(workload: Workload, cost_model: CostModel | None = None, options: RunOptions | None = None,
             writes: numerics.Writes | None = None) -> Run:
    """Run ``workload`` (a Pipeline, a P.pipe() block, or a data-parallel workload): values and time.

    A run that computes values writes its outputs only if it succeeds: when it raises (any error, a
    KeyboardInterrupt too) every tensor it wrote is put back as it was, and one it allocated goes back to no data.
    ``writes`` (default: the one ``recording`` set, else a new one dropped when the run succeeds) collects what the
    run writes, as it was before, for a caller that undoes successful runs later (a Study).
    """
    opts = options or RunOptions()
    journal = None
    if opts.compute_values:
        journal = writes if writes is not None else _recording.get()
        if journal is None:
            journal = numerics.Writes()
    values = (_values_lock, np.errstate(all="ignore")) if journal is not None else (nullcontext(), nullcontext())
    with _gc_paused(), values[0], values[1]:
        try:
            return _simulate(workload, cost_model, opts, journal)
        except BaseException as e:
            if journal is not None:
                _undo(journal, e)
            if isinstance(e, MemoryError):
                raise _out_of_memory(workload, opts) from e
            raise


def _undo(journal: numerics.Writes, e: BaseException) -> None:
    """Put back what a failed run wrote, and say so in its error."""
    names = [_tensor_name(t) for t in journal.tensors()]
    try:
        journal.restore()
        note = (f"Outputs left unchanged: {_listing(names)} {'is' if len(names) == 1 else 'are'} as before the run "
                "(a run writes its outputs only if it succeeds)." if names else "")
    except Exception as failed:  # noqa: BLE001 - never hide the run's own error behind this one
        note = f"Undoing the run's writes failed ({type(failed).__name__}: {failed}): {_listing(names)} may be " \
               "half-written."
    if note and isinstance(e, PtortError) and not getattr(e, "_undo_noted", False):
        e._undo_noted = True  # type: ignore[attr-defined]
        e.hint = f"{e.hint} {note}" if e.hint else note
        e.args = (e._compose(),)


def _tensor_name(t: Any) -> str:
    return f"'{t.name}'" if t.name else f"{t.dtype.value}{list(t.shape)}"


def _listing(names: list[str]) -> str:
    shown = names[:6] + ([f"{len(names) - 6} more"] if len(names) > 6 else [])
    return ", ".join(shown[:-1]) + " and " + shown[-1] if len(shown) > 1 else "".join(shown)


def _out_of_memory(workload: Workload, opts: RunOptions) -> SimulationError:
    return SimulationError(
        f"the run of '{workload.name or workload.kind}' ran out of host memory.",
        hint="Run fewer or larger tiles (a few thousand show the steady state)"
             + (", or timing-only with compile(compute_values=False), which keeps no tensor data"
                if opts.compute_values else "") + ".", locate=True)


def _begin_run(cost: Any, workload: Workload, placement: dict[str, int] | None, aivs: dict[str, int]) -> Any:
    """The object that prices this run's tasks: a fresh per-run pricer when the model makes one (``begin_run``),
    else the model itself after ``prepare``."""
    begin = getattr(cost, "begin_run", None)
    if begin is not None:
        return begin(workload, placement, aivs)
    if hasattr(cost, "vector_units"):
        cost.vector_units = aivs  # read by prepare() (channel checks) and when pricing each task
    cost.prepare(workload, placement)
    return cost


def _simulate(workload: Workload, cost_model: CostModel | None, opts: RunOptions,
              journal: numerics.Writes | None) -> Run:
    cost = cost_model or PinnedCosts()
    window = workload._schedule.window.size if workload._schedule.window is not None else None
    trace = Trace(clock_hz=cost.clock_hz)
    run = Run(trace)
    ids = itertools.count()
    pipe = pipeline_of(workload)
    engine: Engine
    pricer: Any = None  # set below, once placement is known; run_task only runs after that

    spans_out = trace.spans
    record_span = spans_out.append
    record_task = run.tasks.append
    # Every task is priced before its values are computed: a tile too big for the core's buffers is refused from
    # its size, not after numpy tried to allocate it.
    ir_of = numerics.ir_for if journal is not None else _ir_of if getattr(cost, "uses_ir", True) else _no_ir
    compute = journal.compute if journal is not None else None
    new_id = ids.__next__

    def run_task(task: Task, proc: Proc) -> None:
        start = proc.t
        if pipe is not None:
            task.id = new_id()
            task.process = proc.name
            if task.id >= steps_module.MAX_PIPELINE_TASKS:
                check_task_count(task.id + 1, pipe, task, steps_module.MAX_PIPELINE_TASKS)
        try:
            cycles = fixed(task) if fixed is not None else None
            if cycles is None:
                ir = ir_of(task)
                issued, end, spans = timing(task, ir, proc.core, start, proc.name, pipe is None)
                if compute is not None:
                    compute(task, ir)
                spans_out.extend(spans)
            else:
                issued = end = start + cycles
                params = task.params
                record_span(_new(Span, (proc.core, proc.name, task.kernel, params[0] if params else task.id, start,
                                        end, 0, proc.name, task.id)))
        except Exception as e:  # noqa: BLE001 - each becomes an error naming the task, its process and time
            failed = _task_failed(e, task, proc, start, pipe is not None, pricer)
            if failed is e:
                raise
            raise failed from e
        record_task(task)
        proc.t = issued
        if end > proc.last_end:
            proc.last_end = end
        if track_finish:
            engine.task_started(task.id, end)

    track_finish = pipe is None or window is not None
    engine = Engine(run_task, opts.channel_latency_cycles, window,
                    time_ordered=_needs_time_order(cost, pipe, workload))
    if pipe is not None:
        procs = list(pipe.fields["processes"])
        placement = opts.placement if opts.placement is not None else workload._schedule.placement
        cores, aivs = _placement(procs, placement)
        if aivs and not hasattr(cost, "vector_units"):
            raise PtortValueError(f"placement names vector units {aivs}, but {type(cost).__name__} has no AIVs.",
                                  hint="Give plain core numbers, or run on the NPU model (NpuCostModel).")
        pricer = _begin_run(cost, workload, cores, aivs)
        on_chip = getattr(pricer, "channel_stays_on_chip", None)

        def hop_latency(senders: list[Any], takers: list[Any]) -> int:
            """A channel or event between processes on one core whose units share on-chip state costs the same-core
            latency; any other is a cross-core hop."""
            ends = {cores[p.name] for p in senders + takers}
            same_core = len(ends) == 1 and (on_chip is None or on_chip(senders, takers))
            return opts.same_core_latency_cycles if same_core else opts.channel_latency_cycles

        for c in pipe.fields["channels"]:
            producers = [p for p in procs if any(c is d for d in p.produces)]
            consumers = [p for p in procs if any(c is d for d in p.consumes)]
            engine.add_fifo(c, len(producers), hop_latency(producers, consumers), len(consumers))
            trace.channels[c.name] = c.depth
        events: dict[int, tuple[Any, list[Any], list[Any]]] = {}  # id -> (Event, recorders, waiters)
        for p in procs:
            _, _, records, waits = channel_uses(p.workload)
            for ev in records:
                events.setdefault(id(ev), (ev, [], []))[1].append(p)
            for ev in waits:
                events.setdefault(id(ev), (ev, [], []))[2].append(p)
        for ev, recorders, waiters in events.values():
            engine.add_event(ev, len(recorders), len(waiters), hop_latency(recorders, waiters))
        for p in procs:
            engine.add_process(p.name, steps(p.workload, {}), cores[p.name], p.produces)
            trace.cores.setdefault(cores[p.name], f"core{cores[p.name]}")
        trace.mode = "pipeline"
    else:
        if opts.placement is not None:
            raise PtortValueError("compile(placement=...) puts the processes of a CSP pipeline on cores; this is a "
                                  "data-parallel workload, which has none.",
                                  hint="Send its tasks to cores with .dispatch(DispatchPolicy.round_robin(4)) or "
                                       "another DispatchPolicy.")
        graph = workload._schedule.graph
        tasks = enumerate_tasks(workload)
        deps = infer_dependencies(tasks) if graph is None or graph.deps.infers else [[] for _ in tasks]
        if graph is not None and graph.trace.kind == "cycles" and graph.trace.fn is not None:
            for t in tasks:  # TracePolicy.cycles(cost_fn) prices the tasks that pin nothing themselves
                if t.cycles is None:
                    t.cycles = graph.trace.fn
        tasks, gates = issue_plan(tasks, deps, workload._schedule.timing, cost.clock_hz,
                                  graph.ready if graph is not None else None)
        n, assignment = assign_cores(tasks, workload._schedule)
        pricer = _begin_run(cost, workload, None, {})  # a data-parallel core deals its vector tasks to its AIVs
        trace.mode = "data-parallel"
        if assignment is None:
            queue = deque(zip(tasks, gates))
            for c in range(n):
                engine.add_process(f"core{c}", _stealing(queue), c)
                trace.cores[c] = f"core{c}"
        else:
            per_core: dict[int, list[tuple[Task, tuple[Any, ...]]]] = {}
            for t, g, c in zip(tasks, gates, assignment):
                per_core.setdefault(c, []).append((t, g))
            for c in sorted(per_core):
                engine.add_process(f"core{c}", _in_order(per_core[c]), c)
                trace.cores[c] = f"core{c}"
    timing = pricer.task_timing
    # Plain delays need neither task_timing nor the IR; values, when asked for, are computed by the slow path.
    fixed = None if journal is not None else getattr(pricer, "fixed_cycles", None)
    run.pricing = pricer if pricer is not cost else None
    trace.processes = [p.name for p in engine.procs]
    makespan = engine.run()
    trace.makespan = makespan  # every span ends by its process's final clock
    trace.samples = functools.partial(engine.samples, trace.makespan)  # computed when first read
    trace.stalls = engine.stalls
    trace.process_end = {p.name: p.t for p in engine.procs}
    run.stall_cycles = {p.name: p.stall_cycles for p in engine.procs}
    if pipe is None:
        run.tasks.sort(key=lambda t: t.id)
    return run


def _task_failed(e: Exception, task: Task, proc: Proc, start: int, in_pipeline: bool, pricer: Any) -> Exception:
    """``e``, raised while running ``task``, as a ptort_lab error that also names the tile, the process (or core)
    and the sim time; a MemoryError or a custom cost model's own exception becomes one."""
    where = f"process '{proc.name}' on core {proc.core}" if in_pipeline else f"core {proc.core}"
    context = f"{where}, {numerics.tile_label(task)}, sim time {start} cycles"
    if isinstance(e, PtortError):
        if not getattr(e, "_task_noted", False):
            e._task_noted = True  # type: ignore[attr-defined]
            e.context = f"{e.context} ({context})" if e.context else context
            if e.where is None:
                e.where = task.loc
            e.args = (e._compose(),)
        return e
    if isinstance(e, MemoryError):
        return KernelExecutionError(
            f"kernel '{task.kernel}' ({numerics.tile_label(task)}) ran out of host memory while it ran.",
            hint="Run timing-only with compile(compute_values=False), which computes no values, or use smaller "
                 "tiles or tensors.", where=task.loc, context=context, locate=False)
    model = type(pricer).__module__ if pricer is not None else ""
    if not model.startswith("ptort_lab.") and _raised_in(e, model):  # a cost model of the user's own raised
        try:
            raise_user_error(e, f"the cost model's task_timing (for {task.kernel}, {numerics.tile_label(task)}, "
                                f"{context})")
        except PtortError as user:
            return user
    return e


def _raised_in(e: BaseException, module: str) -> bool:
    """Whether a frame of ``module`` is on ``e``'s traceback."""
    tb = e.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__") == module:
            return True
        tb = tb.tb_next
    return False


def _needs_time_order(cost: Any, pipe: Workload | None, workload: Workload) -> bool:
    """Global time order matters when prices depend on what else runs (shared pipes/HBM), when several processes
    share one end of a channel or wait on events, or when idle cores steal work; otherwise run-until-block gives
    exactly the same times with far fewer steps."""
    if getattr(cost, "time_ordered", True):
        return True
    if pipe is None:
        policy, graph = workload._schedule.dispatch, workload._schedule.graph
        return policy is not None and (policy.kind == "work_steal"
                                       or (graph is not None and graph.ready.kind == "work_steal"))
    procs = pipe.fields["processes"]
    for c in pipe.fields["channels"]:
        if sum(1 for p in procs if any(c is d for d in p.consumes)) > 1:
            return True
        if sum(1 for p in procs if any(c is d for d in p.produces)) > 1:
            return True
    for p in procs:
        _, _, records, waits = channel_uses(p.workload)  # events order processes by time
        if records or waits:
            return True
    return False


def _no_ir(task: Task) -> None:
    return None


def _ir_of(task: Task) -> KernelIR | None:
    kernel = task.kernel_ref
    return kernel.ir_for(task.resources) if kernel is not None else None


def _in_order(items: list[tuple[Task, tuple[Any, ...]]]) -> Iterator[tuple[Any, ...]]:
    for task, gates in items:
        yield from gates  # data dependencies, then what the TimingPolicy adds (sim/issue.py)
        yield (TASK, task)


def _stealing(queue: deque[tuple[Task, tuple[Any, ...]]]) -> Iterator[tuple[Any, ...]]:
    while queue:
        task, gates = queue.popleft()
        yield from gates
        yield (TASK, task)


__all__ = ["simulate", "Run", "RunOptions", "PinnedCosts", "CostModel", "assign_cores", "channel_uses", "recording"]
