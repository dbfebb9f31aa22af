"""simulate(workload): run a pipeline or a data-parallel workload on the engine, computing values and time.

A run: the cost model begins it (``CostModel.begin_run``: a per-run pricer), ``_start_pipeline`` or
``_start_data_parallel`` puts the processes (or cores) on the engine, the engine runs them, and every task goes
through ``run_task`` (``_task_runner``): priced, its values computed when asked, recorded. Where things go is in
``placement``, the cost-model protocol in ``cost_model``, the undo journal of value-computing runs in ``journal``.
"""
from __future__ import annotations

import functools
import gc
import itertools
import mmap
import traceback
import warnings
from collections import deque
from contextlib import nullcontext
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Iterable, Iterator, NoReturn

import numpy as np

from ..dsl import steps as steps_module
from ..dsl.commands import AFTER, TASK
from ..dsl.ir import KernelIR
from ..dsl.kernel import checked_once_per_run
from ..dsl.schedule import Schedule, schedule_core_count
from ..dsl.steps import check_task_count, enumerate_tasks, pipeline_of, steps, stream_tasks, uses_slots
from ..dsl.tasks import MAX_CYCLES
from ..dsl.tree import first_use, nesting_named
from ..dsl.wiring import channel_uses
from ..dsl.workload import Task, Workload
from ..errors import (
    KernelExecutionError,
    PtortError,
    PtortValueError,
    SimulationError,
    SourceLocation,
    UnorderedAccessWarning,
    raise_user_error,
    warning_stack_level,
)
from . import numerics
from .access_order import AccessOrder, AccessOutOfOrder
from .cost_model import (
    CostModel,
    PinnedCosts,
    TaskPricer,
    as_cost_model,
    begin_run,
    run_state,
    stays_on_chip,
    user_types,
)
from .deps import RegionMap, infer_dependencies
from .engine import Engine
from .fifo import Actor, Hops
from .gc_pause import gc_paused
from .issue import issue_plan, stream_plan, streams
from .journal import journal_for, recording, undo, values_lock
from .limits import BYTES_PER_OPEN_INTERVAL, BYTES_PER_UNCOUNTED_SPAN, endless_cycle, held_bytes, run_past_max_cycles
from .on_chip import OnChipValues, dispatched_cores, has_on_chip_state
from .placement import Dispatch, assign_cores, dispatcher, dispatching, is_work_stealing, process_cores
from .stats import SpanBeforeCut, SpanFeed, SpanTotals
from .timing_check import checked_fixed, checked_launch_cycles, checked_run_end, checked_timing
from .trace import CHUNK_ROWS, COMPACT_AFTER_ROWS, Dropped, Span, SpanColumns, StallColumns, Trace

_new = tuple.__new__  # builds a Span without its Python-level __new__ (3x cheaper; long runs record millions)
# A run that keeps no trace counts its spans every FLUSH_SPANS (stats.SpanTotals): ~3 MB of Span tuples at most, and
# few enough flushes that their fixed cost (every (core, lane, process) group is merged) does not show.
FLUSH_SPANS = 1 << 14
# Host memory set aside for each run (an anonymous mapping: address space, no page touched) and given back first when
# it runs out: the run's error is built, and what it holds let go, in that room. Without it every allocation on the
# way fails or crawls, and Python 3.11 retries a handler whose entry needs a new int forever (a livelock, seen under
# an address-space cap: ulimit -v, a shared JupyterHub).
RESERVE_BYTES = 32 << 20


@dataclass
class RunOptions:
    """Knobs of one simulation run."""

    channel_latency_cycles: int = 0  # a hop between cores (GM-staged FIFO + cross-core flag)
    same_core_latency_cycles: int = 0  # a queue between stages placed on one core stays on chip
    placement: Any = None
    compute_values: bool = True
    # False: keep only what stats() needs (SpanTotals), no spans, stalls, samples or Task objects (long runs)
    keep_trace: bool = True
    # observe(engine, pricer, run_task) -> run_task: wraps the engine's run_task (steady_state.py keys the state)
    observe: Callable[[Any, Any, Callable[[Task, Actor], None]], Callable[[Task, Actor], None]] | None = None


@dataclass
class Run:
    """The outcome of one simulation: the trace, every task in execution order, and the per-process clocks;
    ``pricing`` is the cost model's per-run state (an ``NpuRun`` for the NPU model: its memory counters, ...), None
    when the model priced the run itself; ``on_chip`` the values of its on-chip state (None when it computed no
    values or kept none). A run with ``RunOptions(keep_trace=False)`` keeps ``totals`` (the figures of its spans)
    instead of its records: its ``trace`` holds the makespan and the names but no spans, stalls or samples, and
    ``tasks`` is refused (``task_count`` still counts them)."""

    trace: Trace
    task_list: list[Task] = field(default_factory=list)
    stall_cycles: dict[str, int] = field(default_factory=dict)
    pricing: Any = None
    on_chip: OnChipValues | None = None
    # the max-plus path (maxplus.py) prices a simple chain without Task objects: they are built when first read
    task_builder: Callable[[], list[Task]] | None = None
    task_total: int | None = None  # len(tasks) while they are not built yet (or not kept)
    totals: SpanTotals | None = None  # the span figures of a run that keeps no trace (RunOptions.keep_trace=False)
    where: Any = None  # the user's line that ran it (Program.execute), for errors about it

    @property
    def kept_trace(self) -> bool:
        """Whether the run kept its trace and tasks (``RunOptions.keep_trace``)."""
        return self.totals is None

    @property
    def tasks(self) -> list[Task]:
        """Every task in execution order (ids 0..n-1 for a pipeline)."""
        if self.totals is not None:
            raise PtortValueError("this run kept no tasks (it ran with keep_trace=False).",
                                  hint="Run it with keep_trace=True (the default) to keep its tasks and trace.",
                                  locate=False)
        if self.task_builder is not None:
            self.task_list, self.task_builder, self.task_total = self.task_builder(), None, None
        return self.task_list

    @property
    def task_count(self) -> int:
        """``len(tasks)``, without building them."""
        return self.task_total if self.task_total is not None else len(self.task_list)


def simulate(workload: Workload, cost_model: Any = None, options: RunOptions | None = None,
             writes: numerics.Writes | None = None) -> Run:
    """Run ``workload`` (a Pipeline, a P.pipe() block, or a data-parallel workload): values and time.

    ``cost_model`` is a CostModel (default ``PinnedCosts()``) or an object with its required hooks
    (``cost_model.as_cost_model``). A run that computes values writes its outputs only if it succeeds: when it
    raises (any error, a KeyboardInterrupt too) every tensor it wrote is put back as it was, and one it allocated
    goes back to no data. ``writes`` (default: the one ``journal.recording`` set, else a new one dropped when the run
    succeeds) collects what the run writes, as it was before, for a caller that undoes successful runs later (a Study).
    """
    opts = options or RunOptions()
    cost = PinnedCosts() if cost_model is None else as_cost_model(cost_model, "simulate(cost_model=...)")
    journal = journal_for(opts.compute_values, writes)
    # Value-computing runs take turns (they write shared tensors); numpy's warnings are the kernels' own business.
    values: tuple[ContextManager[Any], ContextManager[Any]] = \
        (values_lock, np.errstate(all="ignore")) if journal is not None else (nullcontext(), nullcontext())
    reserve = [mmap.mmap(-1, RESERVE_BYTES)]
    with gc_paused(), values[0], values[1], checked_once_per_run():
        try:
            if journal is not None and _runs_until_blocked(workload, cost):
                return _simulate_in_access_order(workload, cost, opts, journal, reserve)
            return _simulate(workload, cost, opts, journal, reserve)
        except BaseException as e:
            if isinstance(e, MemoryError) or isinstance(e.__cause__, MemoryError):
                reserve.clear()  # (allocates nothing) the room to let go of the run and report it
                _drop_run(e)
            if journal is not None:
                undo(journal, e)
            if isinstance(e, MemoryError):
                raise _out_of_memory(workload, opts) from e
            raise


def _runs_until_blocked(workload: Workload, cost: CostModel) -> bool:
    """Whether ``workload`` is a pipeline whose processes run until they block (not in time order)."""
    pipe = pipeline_of(workload)
    return pipe is not None and not _needs_time_order(cost, pipe, workload)


def _simulate_in_access_order(workload: Workload, cost: CostModel, opts: RunOptions, journal: numerics.Writes,
                              reserve: list[mmap.mmap]) -> Run:
    """A value-computing pipeline run, each process until it blocks (its times are exact either way), watched for
    shared memory touched out of simulated-time order (``access_order``); when it is, the run's writes are undone
    and it runs again in time order, so its values are those of the run its trace shows (UnorderedAccessWarning)."""
    attempt = journal.fork()
    try:
        run = _simulate(workload, cost, opts, attempt, reserve, watch=AccessOrder())
    except AccessOutOfOrder as out_of_order:
        attempt.restore()
        if not out_of_order.certain:  # (regions overlap, bytes too many to check: time order, nothing to report)
            return _simulate(workload, cost, opts, journal, reserve, time_ordered=True)
        warnings.warn(UnorderedAccessWarning(
            f"two processes touch the same memory with nothing ordering them: {out_of_order.describe()}, but the "
            "run had computed them the other way round. It ran again in time order, so its values follow simulated "
            "time (as its trace shows); on hardware the order of such accesses is a race.\n"
            "Hint: order them with a channel (send/consume) or an Event, or give each process its own tensor."),
            stacklevel=warning_stack_level())
        return _simulate(workload, cost, opts, journal, reserve, time_ordered=True)
    except BaseException:
        journal.absorb(attempt)  # (simulate undoes the run's writes through the journal it was given)
        raise
    journal.absorb(attempt)
    return run


def _drop_run(e: BaseException) -> None:
    """Let go of a run that ran out of host memory: its error's traceback holds the frames that hold the run (its
    tasks, spans, engine), and the cyclic collector is paused (``gc_paused``). Until they go, every allocation fails
    or crawls (under an address-space cap, each one first tries and fails to map a new arena), building its error
    too; and a notebook keeps the last traceback, so the run would stay held after the error."""
    traceback.clear_frames(e.__traceback__)  # (the frame running this handler is left as it is)
    cause = e.__cause__
    if cause is not None:
        traceback.clear_frames(cause.__traceback__)
    gc.collect()


def _simulate(workload: Workload, cost: CostModel, opts: RunOptions, journal: numerics.Writes | None,
              reserve: list[mmap.mmap] | None = None, watch: AccessOrder | None = None,
              time_ordered: bool = False) -> Run:
    """Set the run up (a pipeline's processes or a data-parallel workload's cores), run the engine, fill the trace
    (``reserve``: the memory given back when a task runs out of it, ``RESERVE_BYTES``; ``watch``: checks that
    processes run until they block touch shared memory in time order; ``time_ordered``: run in time order)."""
    from . import maxplus  # loaded by the first run, not by `import ptort_lab` (issue 14's import time)
    schedule = workload.schedule
    if schedule.window is not None:  # (compile() refused it already; a run started another way is refused here)
        schedule.window.require_simulated("execute()")
    window = schedule.window.size if schedule.window is not None else None
    if opts.keep_trace:
        run = Run(Trace(clock_hz=cost.clock_hz, spans=SpanColumns()))  # records kept column by column (trace.py)
    else:  # spans go to the totals (stats.py) and are dropped, stalls and occupancy steps are not kept
        run = Run(Trace(clock_hz=cost.clock_hz, spans=SpanFeed(SpanTotals())))
        run.totals = run.trace.spans.totals  # type: ignore[attr-defined]
    if journal is not None and has_on_chip_state(workload):  # per-run values no journal keeps (sim/on_chip.py)
        run.on_chip = OnChipValues(dispatched_cores(workload))
    pipe = pipeline_of(workload)
    engine = Engine(_not_started, opts.channel_latency_cycles, window,
                    time_ordered=time_ordered or _needs_time_order(cost, pipe, workload))
    engine.stalls = StallColumns() if opts.keep_trace else Dropped()  # type: ignore[assignment]  # (as a list)
    dealer = None
    if pipe is not None:
        pricer = _start_pipeline(engine, pipe, workload, cost, opts, run.trace)
        if run.on_chip is not None:  # what happens before what, for reads of on-chip copies (on_chip.PipelineFlows)
            run.on_chip.follow(pipe, engine.procs, _vector_units(pipe, workload, opts))
    else:
        pricer, dealer = _start_data_parallel(engine, workload, cost, opts, run.trace, journal is None)
    if not opts.keep_trace:
        for f in engine.fifos.values():
            f.deltas = Dropped()  # type: ignore[assignment]  # no occupancy samples
    tally = None if opts.keep_trace else itertools.count()  # counts the tasks of a run that keeps none
    run_task_for = functools.partial(_task_runner, run, engine, cost=cost, journal=journal, pipe=pipe,
                                     track_finish=pipe is None or window is not None,
                                     aivs=_vector_units(pipe, workload, opts), tally=tally, reserve=reserve,
                                     watch=watch)
    engine.run_task = run_task_for(pricer=pricer)
    if opts.observe is not None:
        engine.run_task = opts.observe(engine, pricer, engine.run_task)
    # the run limits' view of it (limits.py): how much it holds; a pipeline: can it ever finish
    engine.held_bytes = functools.partial(_held_bytes, run, engine)
    if pipe is not None:
        engine.endless = endless_cycle(list(pipe.fields["processes"]), pipe.producers)
    else:  # a finite list of tasks: held to MAX_RUN_BYTES only
        engine.finite = True
    run.pricing = run_state(pricer, cost)
    trace = run.trace
    trace.processes = [p.name for p in engine.procs]
    # a linear pinned-cost chain takes the max-plus path (maxplus.py: same trace, no engine steps)
    chain = maxplus.plan(engine, pipe, cost, pricer, journal is None and opts.observe is None
                         and run.on_chip is None) if pipe is not None else None
    fast, priced = maxplus.run(engine, chain, pricer, trace, run) if chain is not None else (None, pricer)
    if priced is not pricer:  # (the engine prices with the cycles the max-plus path priced: each function once)
        engine.run_task = run_task_for(pricer=priced)
    with nesting_named(workload):  # (a body nested too deep for the step walks)
        trace.makespan = engine.run() if fast is None else fast  # every span ends by its process's final clock
    if run.on_chip is not None:  # a read that missed values lost on other copies (known only now: on_chip.py)
        run.on_chip.check()
    if dealer is not None:
        _drop_idle_cores(engine, trace, dealer)
    finish_run = getattr(pricer, "finish_run", None)  # optional hook: work the run waits for after its last task
    if finish_run is not None:
        trace.makespan = checked_run_end(finish_run, trace.makespan)
    if trace.makespan > MAX_CYCLES:  # every time the run records is at most its makespan: one comparison a run
        raise run_past_max_cycles(trace.makespan, cost, opts.channel_latency_cycles)
    trace.process_end = {p.name: p.t for p in engine.procs}
    trace.launch_cycles = checked_launch_cycles(pricer)  # (a model's own: None or whole cycles, else refused)
    run.stall_cycles = {p.name: p.stall_cycles for p in engine.procs}
    if tally is not None:
        _keep_totals_only(run, engine, next(tally))
        return run
    # the samples are computed on first use from the engine's channels; its other per-task record (each task's end,
    # for AFTER waits) is not needed once the run is over, and would be kept alive with them
    engine.finished = {}
    trace.samples = functools.partial(engine.samples, trace.makespan)  # type: ignore[assignment]  # computed on use
    trace.stalls = engine.stalls
    kept: tuple[Any, ...] = (trace.spans, trace.stalls)
    if any(len(records) > COMPACT_AFTER_ROWS for records in kept):  # a long run: its last records too
        for records in kept:
            records.compact()
    if pipe is None:
        run.tasks.sort(key=lambda t: t.id)
    return run


def _drop_idle_cores(engine: Engine, trace: Trace, dealer: _Dealer) -> None:
    """A data-parallel run starts a process on every core; those no task was dealt to go (no lane, figures or process
    end for a core that ran nothing)."""
    idle = set(dealer.idle_cores())
    engine.procs = [p for p in engine.procs if p.core not in idle]
    trace.cores = {p.core: p.name for p in engine.procs}
    trace.processes = [p.name for p in engine.procs]


def _keep_totals_only(run: Run, engine: Engine, engine_tasks: int) -> None:
    """The end of a run that keeps no trace (``engine_tasks`` tasks ran on the engine): its last spans counted, and
    nothing else of its records kept."""
    _flush_spans(run.trace.spans, None)
    run.task_total = engine_tasks + run.task_count  # (the max-plus path builds its tasks, or leaves a builder)
    run.task_list, run.task_builder = [], None
    trace = run.trace
    trace.spans, trace.stalls, trace.samples = [], [], []
    for f in engine.fifos.values():
        f.deltas_source = None  # the max-plus path's occupancy steps


def _flush_spans(feed: Any, cut: int | None) -> None:
    """Count a no-trace run's spans so far, final up to ``cut`` (None: all). Refused: a span that starts before an
    earlier cut (a cost model whose spans start before the task's start: the figures before the cut were counted
    already)."""
    try:
        feed.flush(cut)
    except SpanBeforeCut as e:
        sp = e.span
        raise SimulationError(
            f"execute(keep_trace=False) cannot count this run's statistics exactly: the cost model gave "
            f"{_span_owner(sp)} a span that starts at cycle {sp[4]:,}, before cycle {e.cut:,}, which every process "
            "had passed already (the figures before it were counted).",
            hint="Run it with keep_trace=True (the default), which keeps every span. A cost model's task_timing "
                 "should return spans that start no earlier than the task's start (sim/cost_model.py).",
            locate=True) from None


def _span_owner(sp: Any) -> str:
    """"task 17 ('k', process 'p' on core 0, lane 'V')": whose span ``sp`` is."""
    core, lane, name, _, _, _, _, process = sp[:8]
    task_id = f"task {sp[8]} " if len(sp) > 8 else ""
    return f"{task_id}({name!r}, process {process or lane!r} on core {core}, lane {lane!r})"


def _watermark(engine: Engine) -> int:
    """The earliest clock of a process still running: no span priced from now on starts before it (every task
    starts at its process's clock, and clocks never go back)."""
    return min((p.t for p in engine.procs if not p.done), default=0)


def _held_bytes(run: Run, engine: Engine) -> int:
    """An estimate of the host memory the run holds so far (tasks, spans and stalls kept for the trace; for a run
    that keeps no trace, the spans not counted yet and the busy intervals still open)."""
    if run.totals is not None:
        return len(run.trace.spans) * BYTES_PER_UNCOUNTED_SPAN + run.totals.kept * BYTES_PER_OPEN_INTERVAL
    return held_bytes(run.task_list, run.trace.spans, engine.stalls)  # (measured on the run: limits.py)


def _not_started(task: Task, actor: Actor) -> None:
    """The engine's ``run_task`` while the run is set up (``_simulate`` replaces it before the engine runs)."""
    raise AssertionError("the engine ran a task before the run was set up")


def _start_pipeline(engine: Engine, pipe: Workload, workload: Workload, cost: CostModel, opts: RunOptions,
                    trace: Trace) -> TaskPricer:
    """Put a pipeline's processes on their cores: the run's pricer, then its channels, events and processes."""
    procs = list(pipe.fields["processes"])
    placement = opts.placement if opts.placement is not None else workload.schedule.placement
    cores, aivs = process_cores(procs, placement)
    pricer = begin_run(cost, workload, cores, aivs)

    order = {p.name: i for i, p in enumerate(procs)}  # each process's Actor.order (added in this order below)

    def hop_latency(senders: list[Any], takers: list[Any]) -> tuple[int, Hops | None]:
        """(latency, None) when every hop of a channel or event costs the same, else (the cross-core latency, each
        hop's). A hop between processes on one core whose units share on-chip state costs the same-core latency;
        any other is a cross-core hop."""
        if not senders or not takers:  # (no hop: one latency, as for a channel between all of its ends)
            same_core = len({cores[p.name] for p in senders + takers}) == 1 and stays_on_chip(pricer, senders, takers)
            return (opts.same_core_latency_cycles if same_core else opts.channel_latency_cycles), None
        same, cross = opts.same_core_latency_cycles, opts.channel_latency_cycles
        latency = {(order[s.name], order[t.name]): same if cores[s.name] == cores[t.name]
                   and stays_on_chip(pricer, [s], [t]) else cross for s in senders for t in takers}
        costs = set(latency.values())
        return (costs.pop(), None) if len(costs) == 1 else (cross, Hops(latency))

    for c in pipe.fields["channels"]:
        producers, consumers = list(pipe.producers(c)), list(pipe.consumers(c))
        latency, hops = hop_latency(producers, consumers)
        f = engine.add_fifo(c, len(producers), latency, len(consumers), tuple(p.name for p in consumers), hops)
        f.writers = tuple(p.name for p in producers)
        f.takes = tuple(first_use(p.workload, "consumes", c) for p in consumers)
        trace.channels[c.name] = c.depth
    for ev, recorders, waiters in _event_ends(procs):
        engine.add_event(ev, len(recorders), len(waiters), *hop_latency(recorders, waiters))
    gens = {}
    for p in procs:
        gens[p.name] = gen = steps(p.workload, {})
        engine.add_process(p.name, gen, cores[p.name], p.produces)
        trace.cores.setdefault(cores[p.name], f"core{cores[p.name]}")
    bodies = {p.name: p.workload for p in procs}

    def step_line(name: str, role: str, used: Any) -> SourceLocation | None:
        """(read on a deadlock only: the step the process waits in, else its body's first step on ``used``)"""
        return steps_module.blocked_at(gens.get(name), role, used) or first_use(bodies.get(name), role, used)
    engine.step_line = step_line
    trace.mode = "pipeline"
    return pricer


def _event_ends(procs: list[Any]) -> list[tuple[Any, list[Any], list[Any]]]:
    """(Event, the processes that record it, those that wait on it), events in order of first use."""
    events: dict[int, tuple[Any, list[Any], list[Any]]] = {}
    for p in procs:
        _, _, records, waits = channel_uses(p.workload)
        for ev in records:
            events.setdefault(id(ev), (ev, [], []))[1].append(p)
        for ev in waits:
            events.setdefault(id(ev), (ev, [], []))[2].append(p)
    return list(events.values())


def _start_data_parallel(engine: Engine, workload: Workload, cost: CostModel, opts: RunOptions,
                         trace: Trace, timing_only: bool = False) -> tuple[TaskPricer, _Dealer]:
    """Put a data-parallel workload's tasks on cores: one process per core, fed by a dealer in issue order or
    stealing. A process starts only for each core the tasks go to when that is known before the run (``_dealt_to``);
    else for each of the n cores, and those that got no task go once the run is over (``_drop_idle_cores``).

    A timing-only run under a policy that issues in program order is streamed: its tasks are listed as the cores
    take them, so no list of them is kept. (A run that computes values lists them all first, as the reference
    does: a condition or key function that reads a tensor must see it as it was before any task ran.)"""
    if opts.placement is not None:
        raise PtortValueError("compile(placement=...) puts the processes of a CSP pipeline on cores; this is a "
                              "data-parallel workload, which has none.",
                              hint="Send its tasks to cores with .dispatch(DispatchPolicy.round_robin(4)) or "
                                   "another DispatchPolicy.")
    schedule = workload.schedule
    graph = schedule.graph
    ready = graph.ready if graph is not None else None
    infers = graph is None or graph.deps.infers
    cost_fn = graph.trace.fn if graph is not None and graph.trace.kind == "cycles" else None
    trace.mode = "data-parallel"
    if timing_only and streams(schedule.timing, ready) and not uses_slots(workload):
        # listed as the cores take them (no list of the tasks is kept: keep_trace=False stays bounded in memory)
        dispatch = Dispatch(*dispatcher(schedule), listing=lambda: stream_tasks(workload))
        with dispatching(workload, dispatch):  # (a model that reads the keys ahead reads the dealer's: once a task)
            pricer = begin_run(cost, workload, None, {})  # a data-parallel core deals its vector tasks to its AIVs
        n = schedule_core_count(dispatch.n, schedule)  # (after the model's own check: the NPU model's machine)
        cores = _dealt_to(dispatch, schedule)  # (before ``dealing``: the dealer takes the cores read ahead)
        core_of = dispatch.dealing()
        regions = RegionMap() if infers else None

        def deps_of(t: Task) -> list[int]:
            deps = regions.dependencies(t) if regions is not None else []
            if cost_fn is not None and t.cycles is None:  # TracePolicy.cycles(cost_fn) prices what pins nothing
                t.cycles = cost_fn
            return deps

        stream = stream_plan(iter(dispatch.tasks()), deps_of, schedule.timing, cost.clock_hz)
    else:
        tasks = enumerate_tasks(workload)
        deps = infer_dependencies(tasks) if infers else [[] for _ in tasks]
        if cost_fn is not None:
            for t in tasks:  # TracePolicy.cycles(cost_fn) prices the tasks that pin nothing themselves
                if t.cycles is None:
                    t.cycles = cost_fn
        tasks, gates = issue_plan(tasks, deps, schedule.timing, cost.clock_hz, ready)
        n, assignment = assign_cores(tasks, schedule)  # (every key function called before any task runs)
        core_of = None if assignment is None else (lambda i, t: assignment[i])
        with dispatching(workload, Dispatch(n, None, cores=assignment)):  # (a model reads these: no key again)
            pricer = begin_run(cost, workload, None, {})
        schedule_core_count(n, schedule)
        cores = range(n) if assignment is None else sorted(set(assignment))
        stream = iter(zip(tasks, gates))
    dealer = engine.dealer = _Dealer(stream, core_of, n, engine.finished, cores)
    for c in cores:  # (in core order, each with its core as its order: the order of a run that starts every core)
        proc = dealer.cores[c] = engine.add_process(f"core{c}", dealer.feed(c), c)
        proc.order = c
    return pricer, dealer


def _dealt_to(dispatch: Dispatch, schedule: Schedule) -> Iterable[int]:
    """The cores a streamed run starts, in order: when its tasks go to the cores in turn (task i to core i % n:
    ``round_robin(n)``, ``streams(n)``), those the tasks reach, read ahead up to n tasks (``Dispatch.used_cores``:
    round_robin(10**6) of 4 tasks starts 4 cores); else (work stealing, or a key function, whose keys might all have
    to be read first) every one of the n cores (at most ``MAX_CORES``)."""
    policy = schedule.dispatch
    in_turn = (policy.kind == "round_robin" and not is_work_stealing(schedule)) if policy is not None \
        else schedule.stream_by is None
    used = dispatch.used_cores() if in_turn else None
    return range(dispatch.n) if used is None else sorted(used)


# Work stealing: the tasks not dealt yet that an idle core looks at, in issue order, for one it can start now. Bounded,
# so a streamed run (its tasks listed as the cores take them) holds at most this many tasks not dealt yet, and each
# ask costs at most this many looks (a task's start is worked out once, when every task it waits for has started).
LOOKAHEAD = 64


class _Dealer:
    """Deals a stream of (task, gates) to the cores' feeds as they ask: core c's next task is the next one the
    stream gives core c; those dealt to other cores meanwhile wait in their queues. In a time-ordered run (the NPU
    model, work stealing) the cores ask about in step, so the queues stay short; a run-until-block run (pinned
    costs, fixed dispatch) lets one core run ahead, and its queues can hold what a listing would.

    With work stealing (``core_of`` None; the run is time-ordered) the core that asks takes, among the next
    ``LOOKAHEAD`` tasks not dealt yet, the first in issue order that can start at its clock (the tasks it depends on
    have finished by then, and its other gates pass: batch, rate); when none can, the one that can start earliest,
    as far as is known (a task whose dependencies have not all started yet cannot say when); when none can say, the
    first (it waits for its dependencies). So a core is not held up by a task that waits while later ones are ready
    (greedy list scheduling, over that window); without dependencies the first task is always the one taken."""

    def __init__(self, stream: Iterator[tuple[Task, tuple[Any, ...]]], core_of: Callable[[int, Task], int] | None,
                 n: int, finished: dict[int, int], cores: Iterable[int] | None = None) -> None:
        self.stream = stream
        self.core_of = core_of
        # a queue for each core that has a process (``cores``: those the tasks go to, when known; else all n)
        self.queues: dict[int, deque[tuple[Task, tuple[Any, ...]]]] = {
            c: deque() for c in (range(n) if cores is None else cores)}
        self.used: set[int] = set(range(n)) if core_of is None else set()  # (work stealing: every core, as listed)
        self.dealt = 0
        self.cores: dict[int, Actor] = {}  # each core's process (work stealing: its clock when it asks)
        self.finished = finished  # task id -> its end, once it started (the engine's)
        self.ahead: list[_Undealt] = []  # work stealing: the next tasks not dealt yet, in issue order

    def feed(self, core: int) -> Iterator[tuple[Any, ...]]:
        """Core ``core``'s commands, as ``_feed``'s: each task's gates, then the task."""
        queue = self.queues[core]
        while queue or self._deal(core):
            task, gates = queue.popleft()
            yield from gates
            yield (TASK, task)

    def _deal(self, core: int) -> bool:
        """Take tasks from the stream until one is ``core``'s; False when the stream ends first."""
        core_of = self.core_of
        if core_of is None:
            return self._steal(core)
        queues = self.queues
        for item in self.stream:
            c = core_of(self.dealt, item[0])
            self.dealt += 1
            self.used.add(c)
            queue = queues.get(c)
            if queue is None:  # (a listing that differed when the run read it again: see _not_started_core)
                _not_started_core(item[0], c)
            queue.append(item)
            if c == core:
                return True
        return False

    def _steal(self, core: int) -> bool:
        """Work stealing: give ``core`` the task it takes (see the class docstring); False when none is left."""
        ahead, now, finished = self.ahead, self.cores[core].t, self.finished
        pick, soonest, i = 0, None, 0
        while True:  # (the stream is read only as far as needed: without dependencies, one task at a time)
            if i == len(ahead):
                item = next(self.stream, None) if i < LOOKAHEAD else None
                if item is None:
                    break
                ahead.append(_Undealt(*item))
            start = ahead[i].start(finished)
            if start is not None:
                if start <= now:
                    pick = i
                    break
                if soonest is None or start < soonest:
                    pick, soonest = i, start
            i += 1
        if not ahead:
            return False
        taken = ahead.pop(pick)
        self.queues[core].append((taken.task, taken.gates))
        return True

    def idle_cores(self) -> list[int]:
        """The cores no task was dealt to (listing first would have given them no process)."""
        return sorted(set(self.queues) - self.used)


def _not_started_core(task: Task, core: int) -> NoReturn:
    """A task dealt to a core the run started no process for: the run read the tasks' cores ahead
    (``_dealt_to``), and the listing gave more or other tasks when it was read again."""
    raise SimulationError(
        f"task {task.id} ({task.kernel}{task.params}) goes to core {core}, which the run did not start: listed again "
        "for the run, the workload gave other tasks than when the run read their cores.",
        hint="Build the workload so that listing it twice gives the same tasks (a loop size or key function that "
             "reads a global that changes, or a random number, does not).", where=task.loc, locate=False)


class _Undealt:
    """A task the work-stealing dealer has not dealt yet: its gates, and the earliest cycle they let it start, once
    every task it waits for has started (so its end is known; it never changes after)."""

    __slots__ = ("task", "gates", "known")

    def __init__(self, task: Task, gates: tuple[Any, ...]) -> None:
        self.task = task
        self.gates = gates
        self.known: int | None = None if gates else 0

    def start(self, finished: dict[int, int]) -> int | None:
        """The earliest cycle its gates let it start; None while a task it waits for has not started."""
        if self.known is None:
            at = 0
            for gate in self.gates:  # (AFTER, task ids[, reason]) or (NOT_BEFORE, cycle, reason): issue._gates
                if gate[0] is AFTER:
                    ids = gate[1]
                    if ids and ids[-1] not in finished:  # (the latest first: a batch waits for its whole list)
                        return None
                    for tid in ids:
                        end = finished.get(tid)
                        if end is None:
                            return None
                        at = end if end > at else at
                else:
                    at = gate[1] if gate[1] > at else at
            self.known = at
        return self.known


def _vector_units(pipe: Workload | None, workload: Workload, opts: RunOptions) -> dict[str, int]:
    """Each pipeline process's AIV when not AIV0 (a cost model that picks AIVs itself says so: ``last_aiv``)."""
    if pipe is None:
        return {}
    placement = opts.placement if opts.placement is not None else workload.schedule.placement
    return process_cores(list(pipe.fields["processes"]), placement)[1]


def _task_runner(run: Run, engine: Engine, pricer: TaskPricer, cost: CostModel, journal: numerics.Writes | None,
                 pipe: Workload | None, track_finish: bool, aivs: dict[str, int] | None = None,
                 tally: Iterator[int] | None = None, reserve: list[mmap.mmap] | None = None,
                 watch: AccessOrder | None = None) -> Callable[[Task, Actor], None]:
    """The engine's ``run_task``: price a task from its process's clock, compute its values when asked, record its
    spans, and move the clock on. The hot path: one call per task, everything it needs bound in the closure.
    ``tally`` counts the tasks of a run that keeps no trace (none are kept); ``reserve`` is given back when a task
    runs out of host memory (``RESERVE_BYTES``); ``watch`` sees each task's accesses before its values are computed
    (``access_order``)."""
    spans_out: Any = run.trace.spans
    stalls_out: Any = engine.stalls
    record_span = spans_out.append
    record_task: Callable[[Task], Any]
    if run.totals is None:
        # the records pending compaction (trace.py): moved into the columns every CHUNK_ROWS past COMPACT_AFTER_ROWS
        span_rows: Any = getattr(spans_out, "pending", None)
        stall_rows: Any = getattr(stalls_out, "pending", None)
        compact = span_rows is not None and stall_rows is not None
        compact_at = COMPACT_AFTER_ROWS  # pending records that trigger a compaction: CHUNK_ROWS after the first
        record_task = run.task_list.append

        def records_full() -> int:
            """Compact the records; the pending count that triggers the next compaction."""
            spans_out.compact()
            stalls_out.compact()
            return CHUNK_ROWS
    else:  # no trace: every FLUSH_SPANS spans, count them up to the earliest clock (stats.py) and drop them
        span_rows, stall_rows, compact, compact_at = spans_out, (), True, FLUSH_SPANS
        count = (tally or itertools.count()).__next__
        record_task = lambda task: count()  # noqa: E731 - a counter the hot path calls like list.append

        def records_full() -> int:
            """Count the spans so far, final up to the earliest clock; the count that triggers the next flush."""
            _flush_spans(spans_out, _watermark(engine))
            return FLUSH_SPANS
    # Every task is priced before its values are computed: a tile too big for the core's buffers is refused from
    # its size, not after numpy tried to allocate it.
    ir_of = numerics.ir_for if journal is not None else _ir_of if cost.uses_ir else _no_ir
    compute = journal.compute if journal is not None else None
    on_chip, placed_aivs = run.on_chip, aivs or {}
    timing = checked_timing(pricer)  # a user's model: its results checked (timing_check.py)
    # Plain delays need neither task_timing nor the IR; values, when asked for, are computed by the slow path. A
    # user's fixed_cycles is checked (timing_check.py): None or whole cycles in 0..2**53.
    fixed = None if journal is not None else checked_fixed(pricer, not isinstance(pricer, PinnedCosts) or
                                                           type(pricer).task_timing is not PinnedCosts.task_timing)
    new_id = itertools.count().__next__
    owners = user_types(pricer, cost)
    spare = reserve if reserve is not None else []
    memory_hint = _task_memory_hint(journal is not None, run.totals is None)

    def run_task(task: Task, proc: Actor) -> None:
        nonlocal compact_at
        start = proc.t
        if pipe is not None:
            task.id = new_id()
            task.process = proc.name
            if task.id >= steps_module.MAX_PIPELINE_TASKS:
                check_task_count(task.id + 1, pipe, task, steps_module.MAX_PIPELINE_TASKS, "MAX_PIPELINE_TASKS")
        if watch is not None:  # (before the try: AccessOutOfOrder is not the task's error, simulate reruns)
            watch.check(task, proc.name, start, (proc.core, placed_aivs.get(proc.name, 0)))
        try:
            cycles = fixed(task) if fixed is not None else None
            if cycles is None:
                ir = ir_of(task)
                issued, end, spans = timing(task, ir, proc.core, start, proc.name, pipe is None)
                if on_chip is not None and compute is not None:
                    # on-chip arguments are this core's copies; UB ones the AIV's the model ran the task on (else
                    # the AIV the process is placed on)
                    aiv = getattr(pricer, "last_aiv", None)
                    aiv = placed_aivs.get(proc.name, 0) if aiv is None else aiv
                    compute(task, ir, on_chip.views(task, proc.core, aiv, start))
                elif compute is not None:
                    compute(task, ir)
                spans_out.extend(spans)
            else:
                issued = end = start + cycles
                params = task.params
                # cost_model.span_of, inline (once per task): Span(core, lane, name, index, start, end, bytes,
                # process, task_id), positionally
                record_span(_new(Span, (proc.core, proc.name, task.kernel, params[0] if params else task.id, start,
                                        end, 0, proc.name, task.id)))
        except Exception as e:  # noqa: BLE001 - each becomes an error naming the task, its process and time
            if e.__class__ is MemoryError:
                spare.clear()  # (allocates nothing) room to build the error: simulate lets go of the run
            failed = _task_failed(e, task, proc, start, pipe is not None, owners, memory_hint)
            if failed is e:
                raise
            raise failed from e
        record_task(task)
        if compact and (len(span_rows) > compact_at or len(stall_rows) > compact_at):
            compact_at = records_full()
        proc.t = issued
        if end > proc.last_end:
            proc.last_end = end
        if track_finish:
            engine.task_started(task.id, end)

    return run_task


def _task_failed(e: Exception, task: Task, proc: Actor, start: int, in_pipeline: bool,
                 owners: list[type], memory_hint: str = "") -> Exception:
    """``e``, raised while running ``task``, as a ptort_lab error that also names the tile, the process (or core)
    and the sim time; a MemoryError (with ``memory_hint``: ``_task_memory_hint``) or a custom cost model's own
    exception (raised in a module of one of the ``owners``' types) becomes one."""
    where = f"process '{proc.name}' on core {proc.core}" if in_pipeline else f"core {proc.core}"
    context = f"{where}, {numerics.tile_label(task)}, sim time {start} cycles"
    if isinstance(e, PtortError):
        if not getattr(e, "_task_noted", False):
            e._task_noted = True  # type: ignore[attr-defined]  # a mark on the error: note it once when runs nest
            e.context = f"{e.context} ({context})" if e.context else context
            if e.where is None:
                e.where = task.loc
            e.args = (e._compose(),)
        return e
    if isinstance(e, MemoryError):
        return KernelExecutionError(
            f"kernel '{task.kernel}' ({numerics.tile_label(task)}) ran out of host memory while it ran.",
            hint=memory_hint or _task_memory_hint(True, True), where=task.loc, context=context, locate=False)
    for owner in owners:
        model = owner.__module__
        if not model.startswith("ptort_lab.") and _raised_in(e, model):  # a cost model of the user's own raised
            try:
                raise_user_error(e, f"the cost model's task_timing (for {task.kernel}, {numerics.tile_label(task)}, "
                                    f"{context})")
            except PtortError as user:
                return user
    return e


def _task_memory_hint(computes_values: bool, keeps_trace: bool) -> str:
    """What to change when a task runs out of host memory: a run that computes values holds its tiles and tensors;
    a timing-only one its trace; one that keeps neither, only what is in flight."""
    if computes_values:
        return ("Run timing-only with compile(compute_values=False), which computes no values, or use smaller tiles "
                "or tensors.")
    if keeps_trace:
        return ("This run is timing-only already: what it holds is its trace. Run it with execute(keep_trace=False), "
                "which keeps only the figures of stats(), or run fewer tiles.")
    return ("This run is timing-only and keeps no trace already: run fewer or smaller tiles, or free host memory for "
            "it (other runs' results, large objects of your own).")


def _raised_in(e: BaseException, module: str) -> bool:
    """Whether a frame of ``module`` is on ``e``'s traceback."""
    tb = e.__traceback__
    while tb is not None:
        if tb.tb_frame.f_globals.get("__name__") == module:
            return True
        tb = tb.tb_next
    return False


def _out_of_memory(workload: Workload, opts: RunOptions) -> SimulationError:
    return SimulationError(
        f"the run of '{workload.name or workload.kind}' ran out of host memory.",
        hint="Run fewer or larger tiles (a few thousand show the steady state)"
             + (", or timing-only with compile(compute_values=False), which keeps no tensor data"
                if opts.compute_values else "")
             + (", or with execute(keep_trace=False), which keeps only the figures of stats() (no trace)"
                if opts.keep_trace else "") + ".", locate=True)


def _needs_time_order(cost: CostModel, pipe: Workload | None, workload: Workload) -> bool:
    """Global time order matters when prices depend on what else runs (shared pipes/HBM), when several processes
    share one end of a channel or wait on events, or when idle cores steal work; otherwise run-until-block gives
    exactly the same times with far fewer steps."""
    if cost.time_ordered:
        return True
    if pipe is None:
        return is_work_stealing(workload.schedule)
    procs = list(pipe.fields["processes"])
    if any(len(producers) > 1 or len(consumers) > 1
           for producers, consumers in ((pipe.producers(c), pipe.consumers(c)) for c in pipe.channels)):
        return True
    return bool(_event_ends(procs))  # events order processes by time


def _no_ir(task: Task) -> None:
    return None


def _ir_of(task: Task) -> KernelIR | None:
    kernel = task.kernel_ref
    return kernel.ir_for(task.resources) if kernel is not None else None


__all__ = ["simulate", "Run", "RunOptions", "PinnedCosts", "CostModel", "assign_cores", "recording"]
