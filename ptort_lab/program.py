"""compile() -> Program: joins a DSL workload and the simulator (execute, synchronize, stats, trace, enumerate)."""
from __future__ import annotations

import contextvars
import dataclasses
import enum
import numbers
import threading
import time
from collections.abc import Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Iterator, NoReturn

import numpy as np

from .dsl.axes import MAX_ITERATIONS, DenseDyn, run_sizes
from .dsl.combinators import check_placement
from .dsl.schedule import compiler_for, register_target
from .dsl.steps import refuse_pipeline_steps
from .dsl.tasks import MAX_CYCLES, cycles_bound_hint, running_host_kernels
from .dsl.types import Tensor
from .dsl.wiring import check_pipeline
from .dsl.workload import Task, Workload, WorkloadFunction
from .errors import PtortTypeError, PtortValueError, user_location
from .sim.capacity import check_capacity
from .sim.cost_model import CostModel, PinnedCosts, as_cost_model
from .sim.costs import NpuCostModel
from .sim.machine import MACHINES, Machine, ascend_910b, get_machine
from .sim.on_chip import has_on_chip_state
from .sim.runner import Run, RunOptions, simulate
from .sim.stats import ProgramStats, compute_stats, one_core_note, unpinned_note
from .sim.trace import Trace
from .symbols import ProgramSymbols

# The reference's tracing names (its program.py). ptort_lab's runs record a simulated Trace; these are its spellings.
ExecutionTrace = Trace  # program.trace: summary(), print_summary(), to_chrome_trace() (JSON text here, a dict there)


class TraceLevel(enum.IntEnum):
    """How much the next runs trace (``program.enable_tracing(level)``), with the reference's values. The
    simulator's trace has one granularity: every level but ``NONE`` keeps all of it; ``NONE`` keeps none."""

    NONE = 0
    SUMMARY = 1
    TIMING = 2
    FULL = 3


@dataclass
class TraceEvent:
    """The reference's record of one traced event (wall-clock ns on its host). ptort_lab's runs record spans
    in simulated cycles instead (``program.trace.spans``); this class is for code that builds or reads the
    reference's events."""

    name: str
    category: str
    start_ns: int
    end_ns: int
    task_id: int | None = None
    thread_id: int | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def duration_us(self) -> float:
        """Duration in microseconds."""
        return (self.end_ns - self.start_ns) / 1000

    @property
    def duration_ms(self) -> float:
        """Duration in milliseconds."""
        return (self.end_ns - self.start_ns) / 1_000_000

_LATENCY_SYMBOL = "__pto_wsp_channel_latency_cycles"
_collecting: contextvars.ContextVar[list[Program] | None] = contextvars.ContextVar("ptort_compiled", default=None)


@contextmanager
def collect_compiled() -> Iterator[list[Program]]:
    """Every Program compiled (in this thread) inside the ``with``, in order: ``%%ptort`` studies a cell's program
    with the options the cell compiled it with."""
    found: list[Program] = []
    token = _collecting.set(found)
    try:
        yield found
    finally:
        _collecting.reset(token)


class Program:
    """A compiled workload. ``execute()`` runs it on the simulator (values and time) and returns when done;
    ``synchronize()`` is then immediate; ``stats()`` and ``trace()`` (or ``stats`` and ``trace``, as in the
    reference) describe the last run.

    Options (``workload.compile(**options)``): ``machine`` (a preset name such as ``"ascend_910b4"`` or a Machine;
    default the sourced Ascend 910B2 model), or ``cost_model`` (e.g. ``PinnedCosts()``: every task costs its pinned
    cycles); ``channel_latency_cycles`` (a cross-core hop; default the machine's, 1000 on the 910B; channels between
    stages placed on one core cost none); ``placement`` (``"shared"`` or ``{process: core}``; refused when it
    contradicts the pipeline's own ``.place(...)``); ``compute_values``
    (False skips the numpy values, for timing-only runs). ``program.options`` is what compile() was given.

    Runs. A run that computes values writes its tensors only if it succeeds: when ``execute()`` raises, every tensor
    it wrote is as before (see ``sim.runner.simulate``). Threads: ``execute()`` may be called from several threads
    at once, on one Program or on Programs sharing a cost model; each run is independent and gets exactly the result
    it gets alone, and ``stats()``/``trace()`` describe the run that finished last. Runs that compute values take
    turns (they write the tensors the threads share); timing-only runs (``compute_values=False``) run side by side.
    """

    def __init__(self, workload: Workload, target: str = "cpu_sim", options: dict[str, Any] | None = None) -> None:
        started = time.perf_counter()
        _check_program_args(workload, target, options)
        self.workload = workload
        self.target = target
        self.options: dict[str, Any] = dict(options or {})
        self.loc = user_location(2)  # the compile() line, named when a study refuses these options
        # A pipeline's processes may have changed since connect() checked them: the state checked, for execute().
        self._wiring = check_pipeline(workload, self.loc) if workload.is_pipeline else ()
        if workload.schedule.window is not None:  # a TaskWindow of another unit or mode builds, but cannot run
            workload.schedule.window.require_simulated("compile()")
        self._lock = threading.Lock()  # execute() may finish in several threads; readers see one run's pair
        opts = dict(options or {})
        machine = opts.pop("machine", None)
        cost_model = opts.pop("cost_model", None)
        if cost_model is not None and machine is not None:
            raise PtortValueError("compile() got both machine= and cost_model=.",
                                  hint="Pass machine= for the NPU model on that machine, or a cost_model of your own.")
        if cost_model is not None:
            as_cost_model(cost_model)  # a clear error now for what is not a cost model (a class, a str, a Machine)
        if machine is not None and not isinstance(machine, (Machine, str)):
            raise PtortTypeError(f"compile(machine=...) takes a Machine or a preset name, got "
                                 f"{type(machine).__name__} {machine!r}.",
                                 hint=f"Pass a preset name ({', '.join(map(repr, MACHINES))}) or a Machine such as "
                                      "ascend_910b.replace(num_cores=20).")
        # The model as given: a CostModel, or a duck-typed one (see sim.cost_model) that each run adapts.
        self.cost_model: CostModel | Any = (cost_model if cost_model is not None
                                            else NpuCostModel(ascend_910b if machine is None else get_machine(machine)))
        self.machine: Machine | None = as_cost_model(self.cost_model).machine
        latency = opts.pop("channel_latency_cycles", None)
        api = "compile(channel_latency_cycles=...)"
        if latency is None:
            latency = self.machine.channel_latency_cycles if self.machine is not None else 0
            api = f"compile(machine={self.machine.name!r})" if self.machine is not None else api
        latency = _checked_latency(latency, api)
        compute_values = _plain_bool(opts.pop("compute_values", True))
        if not isinstance(compute_values, bool):
            raise PtortTypeError(f"compile(compute_values=...) must be True or False, got "
                                 f"{type(compute_values).__name__} {compute_values!r}.",
                                 hint="Pass compute_values=False for a timing-only run (no numpy values), True (the "
                                      "default) to compute the values too.")
        placement = opts.pop("placement", None)
        if placement is not None:
            if not workload.is_pipeline:  # (the run would refuse it too, pointing at execute())
                raise PtortValueError("compile(placement=...) puts the processes of a CSP pipeline on cores; this is a "
                                      "data-parallel workload, which has none.",
                                      hint="Send its tasks to cores with .dispatch(DispatchPolicy.round_robin(4)) or "
                                           "another DispatchPolicy.")
            placement = check_placement(placement, workload.processes, "compile(placement=...)")
        _check_one_placement(workload, placement)
        self.run_options = RunOptions(
            channel_latency_cycles=latency,
            placement=placement,
            compute_values=compute_values)
        if opts:
            import difflib
            known = list(COMPILE_OPTIONS)
            close = difflib.get_close_matches(sorted(opts)[0], known, n=1)
            for_execute = [name for name in sorted(opts) if name in EXECUTE_OPTIONS]
            given = ", ".join(f"{name}={_short_repr(opts[name])}" for name in for_execute)
            raise PtortValueError(f"compile() got unknown option(s) {sorted(opts)}.",
                                  hint=(f"Did you mean {close[0]!r}? " if close and not for_execute else "")
                                  + f"Known options: {', '.join(known)}."
                                  + (f" {_listed(for_execute)} {'is an' if len(for_execute) == 1 else 'are'} "
                                     f"execute() option{'s' if len(for_execute) > 1 else ''}: pass "
                                     f"{'it' if len(for_execute) == 1 else 'them'} when running, "
                                     f"w.compile().execute({given})." if for_execute else ""))
        if self.machine is not None:
            _check_placement_cores(workload, self.machine)
            _check_vector_unit(workload, self.machine)
        if isinstance(self.cost_model, NpuCostModel):  # its kernels must fit the core's buffers (sim/capacity.py)
            check_capacity(workload, self.cost_model.machine, self.cost_model.plan)
        self._run: Run | None = None
        self._stats: tuple[Run, ProgramStats] | None = None
        self._failed: Exception | None = None  # what the last execute() raised, for later questions about the run
        self._host_kernels: dict[str, Any] = {}  # register_kernel: abstract-task name -> Python callable
        self._axis_sizes: dict[int, tuple[Any, int]] = {}  # set_axis_sizes: id(DenseDyn) -> (that axis, its size)
        self._loops: dict[str, list[Any]] | None = None  # loop variable name -> its axes (the tree never changes)
        self._symbols = ProgramSymbols(workload)  # set_symbol_u64/f32/ptr: read by the next runs (symbols.py)
        self._compile_ms = (time.perf_counter() - started) * 1e3
        self._execute_ms = 0.0
        self._trace_level = TraceLevel.FULL  # every run keeps its whole trace until disable_tracing()
        self._untraced: Run | None = None  # a run that kept no trace because disable_tracing() turned it off
        self._cleared: tuple[Run, Any] | None = None  # the run whose trace clear_trace() dropped, and where
        found = _collecting.get()
        if found is not None:
            found.append(self)

    def enumerate(self) -> list[Task]:
        """The tasks a run would run, listed anew on every call as ``execute()`` lists them: a workload that reads
        host data while it is listed (``P.sel(rows, "b")`` over a list the host changes) gives its current tasks,
        and the loop sizes ``set_axis_sizes`` set and the symbols ``set_symbol_*`` set are those of the next run."""
        with self._axis_sizes_of_run(), self._symbols.of_run():  # (keys are not called: no read check)
            return self.workload.enumerate()

    # -- the reference's run-time knobs (its codegen-first HEAD): axis sizes and symbols, set between runs --------
    @property
    def using_cpp_backend(self) -> bool:
        """True. The reference's flag says that compile() built the program into something that really runs (its
        generated C++, loaded); its tests assert it before running. A ptort_lab program always really runs, on the
        simulator: numpy computes its values and the NPU model its time. There is no C++ here, but the flag is
        about running, so it is True for every Program (docs/howto/port_from_v9.md)."""
        return True

    @property
    def codegen_artifact_dir(self) -> str | None:
        """None, as the reference's is for a program that runs in place (it names a directory only for targets it
        can emit but not run): ptort_lab emits no code, so there is no artifact directory."""
        return None

    def set_axis_sizes(self, axis_sizes: Mapping[str, int]) -> None:
        """Size the program's runtime-sized loops for the next ``execute()`` (and ``enumerate()``), by loop variable
        name: ``program.set_axis_sizes({"b": 4})`` runs ``for b in P(DenseDyn(0)):`` 4 times, with no recompile.

        Each name must be a loop over a DenseDyn of a whole-number size (``DenseDyn(0)``: a size set only here); a
        loop over a static axis or a DenseDyn of an expression, a name no loop has, and a size that is not an int
        >= 1 are refused, naming the loop. Sizes set earlier stay until set again (as in the reference). A name
        bound by several loops sizes each of its loops over such a DenseDyn, and a DenseDyn shared by several
        loops takes the size in all of them."""
        if not isinstance(axis_sizes, Mapping):
            raise PtortTypeError(f"set_axis_sizes takes a dict {{loop variable: size}}, got "
                                 f"{type(axis_sizes).__name__} {axis_sizes!r}.",
                                 hint="Write program.set_axis_sizes({'b': 4}) for `for b in P(DenseDyn(0)):`.")
        loops = self._loop_axes()
        new: dict[int, tuple[Any, int]] = {}
        for name, size in axis_sizes.items():
            for axis in _sizable_axes(loops, name):
                new[id(axis)] = (axis, _checked_axis_size(name, size))
        with self._lock:
            self._axis_sizes = {**self._axis_sizes, **new}

    def set_symbol_u64(self, name: str, value: int) -> None:
        """Set a run-time symbol the next runs read, with no rebuild (the reference's, by name):

        - ``__pto_wsp_channel_latency_cycles``: the channel latency of a pipeline, in cycles;
        - ``f"outer_{id(axis)}"``: the outer size of a Ragged or Sparse axis the workload loops over (with
          ``set_symbol_ptr`` for its arrays: see ``symbols.py``);
        - the name of a ``Symbol("n")`` in the workload, or of ``symbol_u64("n")`` / ``t.tags["n"]`` in its dispatch
          or stream key: a u64 (``set_symbol_f32`` for a kernel's float scalar).

        A name the program does not read, or one its Symbols read as a float, is refused, naming the symbols it reads.
        No key function is called to check a name: a name only a dispatch or stream key may read is taken, and the
        run warns of it if no key read it (``symbols.UnreadSymbolWarning``)."""
        if name == _LATENCY_SYMBOL:
            self.run_options.channel_latency_cycles = _checked_latency(value,
                                                                       f"set_symbol_u64({_LATENCY_SYMBOL!r}, ...)")
            return
        self._symbols.set_u64(name, value)

    def set_symbol_f32(self, name: str, value: float) -> None:
        """Set the f32 run-time symbol ``name`` the next runs read: a ``Symbol(name)`` passed as a kernel's float
        ``Scalar`` argument (``k(x=X, s=Symbol("scale_s"))``), rounded to f32 as the reference stores it. A name the
        program does not read, or its Symbols read as a whole number (an integer scalar, an index), is refused; one
        a key reads as a whole number is warned of by the run."""
        if name == _LATENCY_SYMBOL:
            raise PtortTypeError(f"set_symbol_f32({name!r}, {value!r}): the channel latency is a whole number of "
                                 "cycles, not an f32.",
                                 hint=f"Write program.set_symbol_u64({_LATENCY_SYMBOL!r}, 50).")
        self._symbols.set_f32(name, value)

    def set_symbol_ptr(self, name: str, array: Any) -> None:
        """Bind an array of a Ragged or Sparse axis the workload loops over, for the next runs: ``f"lengths_{id(r)}"``
        of a Ragged, ``f"indptr_{id(s)}"`` and ``f"indices_{id(s)}"`` of a Sparse (their outer size through
        ``set_symbol_u64(f"outer_{id(axis)}", n)``). ``array`` is a 1-D integer numpy array (or a list of ints),
        checked now and read again when each run starts, as the reference reads its pointer; what only the pair can
        say (one length per outer row, ``indptr`` ending at ``len(indices)``) is checked then, at ``execute()``."""
        self._symbols.set_ptr(name, array)

    def register_kernel(self, name: str, fn: Any) -> None:
        """Run the Python callable ``fn`` for every abstract task named ``name`` (``task(name, [b], [b])``), on its
        resources: a list by position (``fn(*resources)``, as the reference calls it), a dict by name, tensor views
        as numpy views. Runs that compute values call it, in task order; its task costs ``cycles=``, else
        ``ABSTRACT_TASK_CYCLES`` (1). Its task reads and writes every tensor among its resources (a data-parallel
        run orders it against the kernels that touch them, and host tasks one after another); a tensor ``fn``
        reaches otherwise (a closure) is not ordered: pass it as a resource."""
        if not isinstance(name, str) or not name:
            raise PtortTypeError(f"register_kernel(name, fn): name must be a task name (a non-empty str), got "
                                 f"{type(name).__name__} {name!r}.", hint='Write program.register_kernel("accumulate", '
                                                                         'fn) for task("accumulate", [b], [b]).')
        if not callable(fn):
            raise PtortTypeError(f"register_kernel({name!r}, fn): fn must be callable, got {type(fn).__name__} "
                                 f"{fn!r}.", hint="Pass a Python function; it gets each task's resources.")
        names = _abstract_task_names(self.workload)
        if names is not None and name not in names:
            import difflib
            close = difflib.get_close_matches(name, sorted(names), n=1)
            raise PtortValueError(
                f"register_kernel({name!r}, ...): no task of this program is named {name!r}, so it would never run.",
                hint=(f"Did you mean {close[0]!r}? " if close else "")
                + (f"Its tasks named by string are {', '.join(sorted(names))}." if names else
                   "It has no tasks named by string: host kernels run for task(\"name\", ...) tasks."))
        _check_host_kernel_arity(self.workload, name, fn)
        self._host_kernels[name] = fn

    # -- the reference's tracing switches (Program.enable_tracing / disable_tracing / clear_trace) ------------------
    @property
    def trace_level(self) -> TraceLevel:
        """The tracing level of the next runs: ``TraceLevel.FULL`` (every run keeps its whole trace) until
        ``disable_tracing()``, then ``NONE`` (runs keep only what ``stats`` needs), as ``enable_tracing(level)``
        set it."""
        return self._trace_level

    def enable_tracing(self, level: TraceLevel | int = TraceLevel.TIMING) -> Program:
        """Make the next runs keep their trace (``program.trace``, ``program.tasks``, the timeline views); returns
        the program, as the reference's. The simulator's trace has one granularity: every level but
        ``TraceLevel.NONE`` (SUMMARY, TIMING, FULL) keeps all of it (spans, stalls, occupancy samples, tasks), and
        ``NONE`` is ``disable_tracing()``. Runs keep their trace from compile() on, so this only undoes
        ``disable_tracing()``; ``execute(keep_trace=...)`` still decides for one run."""
        if isinstance(level, bool) or not isinstance(level, (TraceLevel, numbers.Integral)) \
                or int(level) not in tuple(TraceLevel):
            raise PtortTypeError(f"program.enable_tracing(level) takes a TraceLevel, got {type(level).__name__} "
                                 f"{level!r}.", hint="Write program.enable_tracing(TraceLevel.TIMING) (the default), "
                                                     "or program.disable_tracing() for no trace.")
        self._trace_level = TraceLevel(int(level))
        return self

    def disable_tracing(self) -> Program:
        """Make the next runs keep no trace, only what ``stats`` needs, as ``execute(keep_trace=False)`` (the
        figures are the same; ``program.trace`` then refuses, naming this call); returns the program, as the
        reference's. ``enable_tracing()`` turns it back on."""
        self._trace_level = TraceLevel.NONE
        return self

    def clear_trace(self) -> None:
        """Drop the last run's trace, as the reference's: ``program.trace`` and ``program.tasks`` (and the timeline
        views) then refuse, naming this call, until the next ``execute()`` records a new one. ``program.stats``
        still gives the last run's figures. Its memory is released by the next run (a study comparing against this
        program, ``data_parallel_twin(..., run=program)``, still reads it: it is that run's, not stale), or run with
        ``execute(keep_trace=False)`` to keep none."""
        with self._lock:
            run = self._run
        if run is None:
            return
        self.stats  # noqa: B018 - computed from the trace now, so stats stay the run's once the trace is gone
        with self._lock:
            if self._run is run:
                self._cleared = (run, user_location())

    def execute(self, steady_state: bool = False, tiles: int | None = None, keep_trace: bool | None = None,
                **unknown: Any) -> Program:
        """Run the program (values and time); on failure its tensors are as before and the error says so. Each call
        is a new run (the reference's 96b0376 raised on a second call; its HEAD re-runs, as here).

        ``steady_state=True``: a timing-only run that finds the periodic regime of the workload's tile loop and
        extrapolates its figures exactly (``sim/steady_state.py``): ``stats()`` gives them for the whole run (or for
        ``tiles`` tiles, any count), ``stats().steady_state`` says how they were found, and ``trace()`` is the trace
        of the first few periods only (the run actually simulated). It computes no values, so it is refused for a
        program that computes them (``compute_values=True``, the default) when its tasks write tensors: compile
        that one with ``compute_values=False`` for the figures, or run it in full for the values.

        ``keep_trace=False``: for huge runs, keep only what ``stats()`` needs (None, the default: True, unless
        ``disable_tracing()`` turned tracing off). The run is the same, and ``stats()``
        gives exactly the figures of a full run (makespan, tasks, busy % per pipe, core and stage, overlap, stall
        cycles, bytes, memory counters, error band), counted as the spans come and then dropped (``sim/stats.py``
        ``SpanTotals``): no spans, stalls, occupancy samples or Task objects are kept, so host memory stays bounded
        by the work in flight instead of growing by ~0.5-5 KB a task (a data-parallel run that computes values still
        lists its tasks first: sim/runner.py). ``trace()``, ``tasks`` and the timeline views
        then raise, saying so. With ``steady_state=True`` the short runs it simulates keep no trace either.

        Any other keyword is refused, naming compile() for compile()'s options (``compute_values``, ``machine``, ...).
        """
        started = time.perf_counter()
        if unknown:
            _refuse_execute_options(unknown)
        by_level = keep_trace is None
        if by_level:
            keep_trace = self._trace_level is not TraceLevel.NONE
        steady_state, keep_trace = _plain_bool(steady_state), _plain_bool(keep_trace)
        _check_steady_options(steady_state, tiles)
        _check_keep_trace(keep_trace)
        if steady_state and self.run_options.compute_values:
            self._refuse_steady_values()
        if self.workload.is_pipeline:
            self._check_wiring_unchanged()
        opts = self.run_options if keep_trace else dataclasses.replace(self.run_options, keep_trace=False)
        where = None if keep_trace else user_location()
        steady: Any = None
        try:
            with running_host_kernels(self._host_kernels), self._axis_sizes_of_run(), \
                    self._symbols.of_run() as symbols:
                if steady_state:
                    from .sim.steady_state import run_steady_state  # only steady-state runs need it
                    run, figures, info = run_steady_state(self.workload, as_cost_model(self.cost_model),
                                                          opts, simulate, None if tiles is None else int(tiles))
                    steady = (figures, info)
                else:
                    run = simulate(self.workload, self.cost_model, opts)
                symbols.check()  # a symbol set that no part of the run read (a misspelt name?) is warned of
        except Exception as e:
            with self._lock:
                self._run, self._failed = None, e
            raise
        run.where = where
        with self._lock:  # the run that finishes last is the one stats() and trace() describe
            self._run, self._failed = run, None
            if by_level and not keep_trace:
                self._untraced = run
            self._execute_ms = (time.perf_counter() - started) * 1e3
            if steady is not None:  # its figures are extrapolated, not computed from its (shorter) trace
                steady[0].steady_state = steady[1]
                steady[0].notes += self._setup_notes(run, steady[0].task_count, counted=False)
                self._stats = (run, steady[0])
        return self

    def _check_wiring_unchanged(self) -> None:
        """A pipeline whose processes changed since compile() checked them (a body set again, a channel list
        edited) gets the wiring checks again, at this execute() line; unchanged, the check costs a tuple per
        process."""
        state = check_pipeline(self.workload, None, self._wiring)  # (None: an error names the execute() line)
        if state != self._wiring:  # (Process, Workload and Channel compare by identity)
            if isinstance(self.cost_model, NpuCostModel):  # a new body's kernels must fit the core's buffers too
                check_capacity(self.workload, self.cost_model.machine, self.cost_model.plan)
            with self._lock:
                self._wiring, self._loops = state, None

    def _loop_axes(self) -> dict[str, list[Any]]:
        """Loop variable name -> the axes of the loops that bind it, in the workload and its processes' bodies
        (found once: a workload never changes after it is built)."""
        if self._loops is None:
            self._loops = _loop_axes(self.workload)
        return self._loops

    @contextmanager
    def _axis_sizes_of_run(self) -> Iterator[None]:
        """The ``with`` lists the workload at the sizes ``set_axis_sizes`` set (``axes.run_sizes``, in this context
        only); a DenseDyn(0) with no size set is refused first, naming its loop and the call that sizes it."""
        with self._lock:
            sizes = {key: size for key, (_, size) in self._axis_sizes.items()}
        outer = run_sizes.get() or {}
        for name, axes in self._loop_axes().items():
            for axis in axes:
                if isinstance(axis, DenseDyn) and type(axis.built_size) is int and axis.built_size == 0 \
                        and id(axis) not in sizes \
                        and id(axis) not in outer:
                    at = f" (built at {axis.loc})" if axis.loc is not None else ""
                    raise PtortValueError(
                        f"loop '{name}' runs over DenseDyn(0){at}, whose size is set at run time, but none was set.",
                        hint=f"Call program.set_axis_sizes({{'{name}': n}}) before running it, or build the axis "
                             "with its size, DenseDyn(n).")
        if not sizes:
            yield
            return
        token = run_sizes.set({**outer, **sizes})
        try:
            yield
        finally:
            run_sizes.reset(token)

    def _refuse_steady_values(self) -> None:
        """A steady-state run is timing-only (it never runs most tiles), so a program that computes values and
        writes tensors would leave its outputs unwritten: refused, saying how to get the figures or the values."""
        writer = _first_writer(self.workload, self._host_kernels)
        if writer is None:
            return  # its tasks write nothing (pinned or abstract kernels): no values to lose
        asked = ("was compiled with compute_values=True" if "compute_values" in self.options
                 else "computes values (compile()'s default, compute_values=True)")
        raise PtortValueError(
            f"execute(steady_state=True) is a timing-only run, but this program {asked} and {writer}: a "
            "steady-state run would leave those outputs unwritten.",
            hint="For the figures of a long run, compile it timing-only: compile(compute_values=False).execute("
                 "steady_state=True); for the values, run it in full: program.execute().")

    def _setup_notes(self, run: Run, task_count: int, counted: bool) -> list[str]:
        """Notes for ``stats()`` on a setup that silently shaped the figures: tasks PinnedCosts priced at its default
        0 cycles (counted in ``run`` when ``counted``: it kept the run's own tasks), a dispatch policy given no core
        count that put every task on core 0."""
        notes = []
        model = as_cost_model(self.cost_model)
        schedule = self.workload.schedule
        priced_by_graph = schedule.graph is not None and schedule.graph.trace.kind == "cycles"
        if isinstance(model, PinnedCosts) and model.default_cycles == 0 and not priced_by_graph \
                and type(model).fixed_cycles is PinnedCosts.fixed_cycles:  # (a subclass prices tasks its own way)
            kernels = _unpinned_kernels(self.workload)
            tasks = sum(1 for t in run.tasks if t.cycles is None) if kernels and counted else None
            if kernels and tasks != 0:
                notes.append(unpinned_note(kernels))
        policy = schedule.dispatch
        if not self.workload.is_pipeline and policy is not None and policy.num_cores == 0 \
                and not schedule.stream_count and task_count > 1:
            key = {"affinity": "key_fn, ", "hash": "key_fn, ", "dispatch_by": "fn, "}.get(policy.kind, "")
            spread = f"DispatchPolicy.{policy.kind}({key}n)"
            if self.machine is not None:
                spread += (f", e.g. DispatchPolicy.{policy.kind}({key}{self.machine.num_cores}) for every AI core of "
                           f"'{self.machine.name}'")
            notes.append(one_core_note(f"DispatchPolicy.{policy.kind}()", spread, task_count))
        return notes

    def synchronize(self) -> None:
        """Execution is synchronous, so there is nothing to wait for."""

    def is_complete(self) -> bool:
        return self._run is not None

    @property
    def last_error(self) -> Exception | None:
        """What the last execute() raised; None once a run succeeded (or before any)."""
        return self._failed

    def _require_run(self, api: str) -> Run:
        with self._lock:
            run, failed = self._run, self._failed
        if run is None and failed is not None:
            raise PtortValueError(f"program.{api} has no run: the last execute() raised "
                                  f"{type(failed).__name__} ({(str(failed).splitlines() or [''])[0]}).",
                                  hint="Fix that error and call program.execute() again.")
        if run is None:
            raise PtortValueError(f"program.{api} needs a run first.", hint="Call program.execute() before it.")
        return run

    def _require_trace(self, api: str) -> Run:
        """The last run, if it kept its trace and tasks; else an error saying it ran with keep_trace=False."""
        run = self._require_run(api)
        with self._lock:
            cleared, untraced = self._cleared, self._untraced
        if cleared is not None and cleared[0] is run:
            at = f" at {cleared[1]}" if cleared[1] is not None else ""
            raise PtortValueError(f"program.{api} is not available: program.clear_trace(){at} dropped the last "
                                  "run's trace.",
                                  hint="Run program.execute() again for a new trace; program.stats still gives the "
                                       "last run's figures.")
        if not run.kept_trace and untraced is run:
            at = f" at {run.where}" if run.where is not None else ""
            raise PtortValueError(f"program.{api} is not available: the last run{at} kept no trace, since "
                                  "program.disable_tracing() turned tracing off; only the figures of program.stats "
                                  "were kept.",
                                  hint="Call program.enable_tracing() and run it again with program.execute() to keep "
                                       "its spans, stalls, samples and tasks.")
        if not run.kept_trace:
            at = f" at {run.where}" if run.where is not None else ""
            raise PtortValueError(
                f"program.{api} is not available: the last run kept no trace (execute(keep_trace=False){at}), only "
                "the figures of program.stats().",
                hint="Run it again with program.execute() (keep_trace=True, the default) to keep its spans, stalls, "
                     "samples and tasks; for a long run, execute(steady_state=True) keeps the trace of the first "
                     "few periods with exact figures for the whole run, or build it with fewer tiles.")
        return run

    # The form is ``program.stats()`` / ``program.trace()``, the reference's ``program.stats.total_cycles``
    # / ``program.trace.to_chrome_trace()``: both work, since ProgramStats and Trace return themselves when called.
    @property
    def trace(self) -> Trace:
        """The last run's Trace (``program.trace`` or ``program.trace()``); refused after
        ``execute(keep_trace=False)``."""
        return self._require_trace("trace").trace

    @property
    def stats(self) -> ProgramStats | CompileStats:
        """The last run's ProgramStats (``program.stats`` or ``program.stats()``), computed once per run; before any
        run, a CompileStats that knows ``compile_time_ms`` only (the reference's stats exist from compile on)."""
        with self._lock:
            never_ran = self._run is None and self._failed is None
        if never_ran:
            return CompileStats(self._compile_ms)
        run = self._require_run("stats")
        cached = self._stats
        if cached is not None and cached[0] is run and cached[1].steady_state is not None:
            with self._lock:
                cached[1].compile_time_ms, cached[1].execute_time_ms = self._compile_ms, self._execute_ms
            return cached[1]
        if cached is None or cached[0] is not run:
            s = compute_stats(run.trace, run.task_count, run.stall_cycles, run.pricing, run.totals)
            with self._lock:
                execute_ms = self._execute_ms if self._run is run else s.execute_time_ms
            s.compile_time_ms, s.execute_time_ms = self._compile_ms, execute_ms
            s.notes += self._setup_notes(run, s.task_count, counted=run.kept_trace)
            cached = self._stats = (run, s)
        return cached[1]

    @property
    def tasks(self) -> list[Task]:
        """The last run's tasks in execution order; refused after ``execute(keep_trace=False)``."""
        return self._require_trace("tasks").tasks

    def on_chip(self, tensor: Tensor) -> dict[tuple[int, str], np.ndarray]:
        """The last run's copies of an on-chip tensor (``Tensor(location=Location.UB | L1 | L0C)``): one array per
        (core, unit) whose tasks used it, keyed like ``(0, "AIV0")`` or ``(3, "AIC")``, in that order; empty when no
        task used it. They are copies: changing them changes nothing."""
        if not isinstance(tensor, Tensor):
            raise PtortTypeError(f"program.on_chip() takes a Tensor, got {type(tensor).__name__} {tensor!r}.",
                                 hint="Pass the on-chip Tensor the kernels used: program.on_chip(acc).")
        if not tensor.on_chip:
            raise PtortValueError(f"program.on_chip({tensor!r}): that tensor lives in global memory "
                                  f"(location={tensor.location}), so its values are in its array.",
                                  hint="Read tensor.data; program.on_chip() is for tensors made with location="
                                       "Location.UB, L1 or L0C.")
        run = self._require_run("on_chip()")
        if run.on_chip is None and has_on_chip_state(self.workload):
            raise PtortValueError(f"program.on_chip({tensor!r}): the last run was timing-only "
                                  "(compute_values=False), so it computed no values.",
                                  hint="Compile with compute_values=True (the default) to read on-chip values.")
        return run.on_chip.of(tensor) if run.on_chip is not None else {}

    def __repr__(self) -> str:
        state = f"{self._run.trace.makespan} cycles" if self._run else "not run"
        return f"<Program {self.workload.name or self.workload.kind} on {self.target}: {state}>"

    # A copy would share (shallow) or could not take (deep, pickle) the kernels' functions and the run's state.
    def __copy__(self) -> NoReturn:
        raise _not_copyable("copy.copy(program)", "a shallow copy would share this Program's run state and "
                                                  "settings (set_symbol_u64 on the copy changes this one)")

    def __deepcopy__(self, memo: Any) -> NoReturn:
        raise _not_copyable("copy.deepcopy(program)", "those cannot be copied")

    def __reduce_ex__(self, protocol: Any) -> NoReturn:
        raise _not_copyable("pickling a Program", "those cannot be pickled")


def _not_copyable(api: str, why: str) -> PtortTypeError:
    """The error for copying or pickling a Program: what holds it back, and what to copy instead."""
    return PtortTypeError(
        f"{api}: a compiled Program cannot be copied or pickled. It holds the Python functions of its kernels "
        "(defined anywhere: local functions, notebook cells, module globals), the axis classes its workload "
        f"generated and its simulator run's state; {why}.",
        hint="Copy or pickle its results instead: program.trace() and program.stats() copy and pickle. For another "
             "Program of the same workload, compile it again: program.workload.compile(program.target, "
             "**program.options) (then set_axis_sizes and register_kernel again, if you used them).")


class CompileStats:
    """``program.stats`` before ``execute()``: ``compile_time_ms`` (and ``execute_time_ms`` 0.0) as in the
    reference; every run figure raises, saying to execute first (0 cycles would be a silent wrong answer)."""

    execute_time_ms = 0.0

    def __init__(self, compile_time_ms: float) -> None:
        self.compile_time_ms = compile_time_ms

    def __call__(self) -> CompileStats:
        return self

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or not hasattr(ProgramStats, name) and name not in ProgramStats.__dataclass_fields__:
            raise AttributeError(name)
        raise PtortValueError(f"program.stats.{name} needs a run first: before execute() only compile_time_ms is "
                              "known.", hint="Call program.execute() before reading it.")

    def __repr__(self) -> str:
        return f"<CompileStats compile_time_ms={self.compile_time_ms:.3f}, not run>"


def _loop_axes(workload: Workload) -> dict[str, list[Any]]:
    """Loop variable name -> the axes of the loops binding it, in ``workload`` and its processes' bodies."""
    from .dsl.tree import LOOPS, NodeKind
    found: dict[str, list[Any]] = {}
    processes = workload.processes if workload.is_pipeline else ()
    stack = [workload] + [p.workload for p in processes if isinstance(getattr(p, "workload", None), Workload)]
    while stack:  # (walked as _first_writer walks: a task node is a leaf)
        node = stack.pop()
        if node.kind is NodeKind.TASK:
            continue
        stack.extend(reversed(node.children()))
        if node.kind in LOOPS:
            names = iter(node.vars)
            for axis in node.axes:  # one variable per axis, two for a Ragged
                for var in [next(names, None) for _ in range(getattr(axis, "rank", 1))]:
                    if var is not None:
                        found.setdefault(var.name, []).append(axis)
    return found


def _sizable_axes(loops: dict[str, list[Any]], name: Any) -> list[Any]:
    """The DenseDyn axes of whole-number size that the loops named ``name`` run over (for set_axis_sizes), else an
    error naming what the name is."""
    if not isinstance(name, str):
        raise PtortTypeError(f"set_axis_sizes: a key must be a loop variable's name (a str), got "
                             f"{type(name).__name__} {name!r}.",
                             hint="Write program.set_axis_sizes({'b': 4}) for `for b in P(DenseDyn(0)):`.")
    dynamic = sorted(n for n, axes in loops.items() if any(_is_sizable(a) for a in axes))
    if name not in loops:
        import difflib
        close = difflib.get_close_matches(name, dynamic, n=1)
        raise PtortValueError(f"set_axis_sizes: no loop of this program is named {name!r}.",
                              hint=(f"Did you mean {close[0]!r}? " if close else "")
                              + (f"Its loops over a DenseDyn are {', '.join(map(repr, dynamic))}." if dynamic else
                                 "It has no loop over a DenseDyn: build the loop over DenseDyn(0) (a size set at "
                                 "run time) to size it here."))
    axes = [a for a in loops[name] if _is_sizable(a)]
    if not axes:
        axis = loops[name][0]
        why = (f"a DenseDyn sized by the expression {axis.size!r}, computed per iteration"
               if isinstance(axis, DenseDyn) else "a static axis")
        raise PtortValueError(f"set_axis_sizes: loop {name!r} runs over {axis!r}, {why}; only a DenseDyn of a "
                              "whole-number size takes its size at run time.",
                              hint="Build the loop over DenseDyn(0) (or DenseDyn(n)) to size it with set_axis_sizes, "
                                   "or build the workload again with the new size.")
    return axes


def _is_sizable(axis: Any) -> bool:
    return isinstance(axis, DenseDyn) and isinstance(axis.built_size, int)


def _checked_axis_size(name: str, size: Any) -> int:
    """A size for set_axis_sizes: an int in 1..MAX_ITERATIONS (a numpy integer is the int it holds)."""
    if isinstance(size, bool) or not isinstance(size, numbers.Integral):
        raise PtortTypeError(f"set_axis_sizes: loop {name!r} size must be an int >= 1, got {type(size).__name__} "
                             f"{size!r}.", hint=f"Write program.set_axis_sizes({{{name!r}: 4}}).")
    n = int(size)  # a numpy integer is the int it holds
    if n < 1:
        raise PtortValueError(f"set_axis_sizes: loop {name!r} size must be an int >= 1, got {size!r}.",
                              hint="A loop of a run runs at least once; for a run without it, build a workload "
                                   "without the loop.")
    if n > MAX_ITERATIONS:
        raise PtortValueError(f"set_axis_sizes: loop {name!r} size {n:,} is more than the {MAX_ITERATIONS:,} "
                              "iterations a workload may list.",
                              hint="Use larger tiles (fewer, bigger iterations) or a smaller problem.")
    return n


def _abstract_task_names(workload: Workload) -> set[str] | None:
    """The names of the tasks named by string in ``workload``, or None when some name is formatted per task
    (``task(f"expert_{e}", ...)``) and so not known before listing."""
    from .dsl.expr import NameTemplate
    from .dsl.tree import NodeKind, walk
    names: set[str] = set()
    for node in walk(workload):
        if node.kind is NodeKind.TASK and isinstance(node.kernel, str):
            if isinstance(node.kernel, NameTemplate):
                return None
            names.add(str(node.kernel))
    return names


def _check_host_kernel_arity(workload: Workload, name: str, fn: Any) -> None:
    """Refuse, at its register_kernel line, a host kernel that cannot take the resources a task named ``name``
    passes it (by position for a list, by name for a dict): called in the run, it would fail far from that line."""
    import inspect

    from .dsl.tree import NodeKind, walk
    from .dsl.user_code import describe_function
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):  # no signature (some builtins): the call decides
        return
    seen: set[Any] = set()
    for node in walk(workload):
        if node.kind is not NodeKind.TASK or type(node.kernel) is not str or node.kernel != name:
            continue  # (a name formatted per task, NameTemplate, is known only when the tasks are listed)
        res = node.resources
        if isinstance(res, dict):
            args: tuple[Any, ...] = ()
            params = [str(k) for k in res]
            shape: Any = tuple(params)
        elif isinstance(res, (list, tuple)) or res is None:
            args, params, shape = tuple(res or ()), _resource_names(res or ()), len(res or ())
        else:
            continue
        if shape in seen:
            continue
        seen.add(shape)
        try:
            if isinstance(res, dict):
                sig.bind(**dict.fromkeys(params))
            else:
                sig.bind(*args)
        except TypeError:
            how = (f"its {len(params)} resource(s) by name ({', '.join(params)})" if isinstance(res, dict) else
                   f"its {len(params)} resource(s) by position")
            at = f" (at {node.loc})" if node.loc is not None else ""
            fn_name = name if name.isidentifier() else "host_kernel"
            raise PtortTypeError(
                f"register_kernel({name!r}, fn): {describe_function(fn)} has the parameters {sig}, but task "
                f"{name!r}{at} passes it {how}, so a run could not call it.",
                hint=f"Give it one parameter per resource: lambda {', '.join(params)}: ... (or def {fn_name}("
                     f"{', '.join(params)}): ...), each a numpy view of that tensor tile.") from None


def _resource_names(resources: Any) -> list[str]:
    """Parameter names for a host kernel's positional resources: each tensor's name, lower-cased, else ``r<i>``."""
    names: list[str] = []
    for i, r in enumerate(resources):
        base = getattr(getattr(r, "base", r), "name", None)
        word = base.lower() if isinstance(base, str) and base.isidentifier() else f"r{i}"
        names.append(word if word not in names else f"{word}{i}")
    return names


def _unpinned_kernels(workload: Workload) -> list[str]:
    """The names of the kernels whose task nodes in ``workload`` pin no ``cycles=`` (a PinnedCosts run prices them
    at its default_cycles), in program order."""
    from .dsl.tree import NodeKind
    names: dict[str, None] = {}
    stack = [workload]  # (walked as _first_writer walks: a task node is a leaf)
    while stack:
        node = stack.pop()
        if node.kind is not NodeKind.TASK:
            stack.extend(reversed(node.children()))
        elif node.cycles is None:
            names[getattr(node.kernel, "name", None) or str(node.kernel)] = None
    return list(names)


def _first_writer(workload: Workload, host_kernels: dict[str, Any]) -> str | None:
    """Words naming the first task of ``workload`` that writes a tensor when values are computed (a kernel with an
    Out/InOut tile parameter, or an abstract task with a registered host kernel), else None."""
    from .dsl.kernel import Kernel
    from .dsl.tree import NodeKind
    from .dsl.types import Direction
    stack = [workload]  # (walked without asking a task node, a leaf, for its children: twins have millions)
    while stack:
        node = stack.pop()
        if node.kind is not NodeKind.TASK:
            stack.extend(reversed(node.children()))
            continue
        kernel = node.kernel
        if isinstance(kernel, Kernel):
            written = [n for n, (d, _) in kernel.signature.items() if d in (Direction.OUT, Direction.INOUT)]
            if written:
                return f"kernel '{kernel.name}' writes {', '.join(repr(n) for n in written)}"
        elif str(kernel) in host_kernels:
            return f"the host kernel registered as {str(kernel)!r} writes its task's tensors"
    return None


#: The options compile() takes, and those execute() takes (each names the other call for the other's options).
COMPILE_OPTIONS = ("machine", "cost_model", "channel_latency_cycles", "placement", "compute_values")
EXECUTE_OPTIONS = ("steady_state", "tiles", "keep_trace")


def _listed(names: list[str]) -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _refuse_execute_options(unknown: dict[str, Any]) -> None:
    """execute() with keywords it does not take: compile()'s options are named as such, with the call that takes
    them; anything else gets the closest execute() option."""
    import difflib
    names = sorted(unknown)
    for_compile = [name for name in names if name in COMPILE_OPTIONS]
    if for_compile:
        given = ", ".join(f"{name}={_short_repr(unknown[name])}" for name in for_compile)
        one = len(for_compile) == 1
        hint = (f"{_listed(for_compile)} {'is a compile() option' if one else 'are compile() options'}: pass "
                f"{'it' if one else 'them'} when compiling, w.compile({given}).execute(). ")
    else:
        close = difflib.get_close_matches(names[0], EXECUTE_OPTIONS, n=1)
        hint = f"Did you mean {close[0]!r}? " if close else ""
    raise PtortTypeError(f"execute() got unknown option(s) {names}.",
                         hint=hint + f"execute() takes {_listed(list(EXECUTE_OPTIONS))}; compile() takes "
                                     f"{_listed(list(COMPILE_OPTIONS))}.")


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _plain_bool(value: Any) -> Any:
    """A numpy bool (a sweep grid's value, a comparison) as the Python bool it holds; anything else as given."""
    return bool(value) if isinstance(value, np.bool_) else value


def _check_steady_options(steady_state: Any, tiles: Any) -> None:
    """execute()'s steady_state (a bool) and tiles (an int >= 1, with steady_state only)."""
    if not isinstance(steady_state, bool):
        raise PtortTypeError(f"execute(steady_state=...) must be True or False, got {type(steady_state).__name__} "
                             f"{steady_state!r}.", hint="Pass steady_state=True to extrapolate a periodic run exactly.")
    if tiles is not None and not steady_state:
        raise PtortValueError("execute(tiles=...) sets the tile count of a steady-state run.",
                              hint="Pass steady_state=True too, or build the workload with that many tiles.")
    if tiles is not None and (isinstance(tiles, bool) or not isinstance(tiles, numbers.Integral) or tiles < 1):
        raise PtortValueError(f"execute(tiles=...) must be an int >= 1, got {type(tiles).__name__} {tiles!r}.",
                              hint="Pass the tile count the figures are for, e.g. tiles=10**9.")


def _check_keep_trace(keep_trace: Any) -> None:
    """execute()'s keep_trace: a bool."""
    if not isinstance(keep_trace, bool):
        raise PtortTypeError(f"execute(keep_trace=...) must be True or False, got {type(keep_trace).__name__} "
                             f"{keep_trace!r}.", hint="Pass keep_trace=False to keep only the statistics of a huge "
                                                      "run (no trace), True to keep its trace, or leave it out to "
                                                      "follow program.enable_tracing() / disable_tracing() (a trace "
                                                      "unless disabled).")


def _checked_latency(value: Any, api: str) -> int:
    """A channel latency: an int in 0..2**53 (numpy ints become plain ints), else a PtortTypeError /
    PtortValueError."""
    hint = ("0 models an ideal hop; the 910B's calibrated cross-core hop is 1000 (ascend_910b.channel_latency_cycles). "
            "A negative latency would deliver a message before it is sent.")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise PtortTypeError(f"{api}: channel_latency_cycles must be an int >= 0 (cycles), got "
                             f"{type(value).__name__} {value!r}.", hint=hint)
    if value < 0:
        raise PtortValueError(f"{api}: channel_latency_cycles must be an int >= 0 (cycles), got {value!r}.", hint=hint)
    if int(value) > MAX_CYCLES:
        raise PtortValueError(f"{api}: channel_latency_cycles must be at most 2**53 cycles, got {value!r}.",
                              hint=cycles_bound_hint("A channel hop's latency") + " The 910B's hop is 1000 cycles.")
    return int(value)


def _check_program_args(workload: Any, target: Any, options: Any) -> None:
    """``Program(workload, target, options)`` called directly (the reference's constructor) gets the checks
    ``workload.compile(target=...)`` makes before it: a Workload, a registered target, options as a dict."""
    if not isinstance(workload, Workload):
        hint = (f"Call it first: Program({workload.name}(), 'cpu_sim'), or {workload.name}().compile()."
                if isinstance(workload, WorkloadFunction) else
                "Build one with a @workload function (w()) or connect(...), then write w().compile() or "
                "Program(w(), 'cpu_sim').")
        raise PtortTypeError(f"Program(workload, ...) takes a Workload, got {type(workload).__name__} "
                             f"{workload!r}.", hint=hint)
    if not isinstance(target, str):
        raise PtortTypeError(f"Program(workload, target): target must be a target name (str), got "
                             f"{type(target).__name__} {target!r}.", hint="Use 'cpu_sim' (the default).")
    compiler_for(target)  # an unknown target is refused here as compile(target=...) refuses it
    if options is not None and not isinstance(options, dict):
        raise PtortTypeError(f"Program(workload, target, options): options must be a dict, got "
                             f"{type(options).__name__} {options!r}.",
                             hint="Pass compile options by name instead: w().compile(machine='ascend_910b4').")
    workload.raise_type_errors()  # compile() refuses a workload with collected type errors; so does this
    refuse_pipeline_steps(workload)


def _check_one_placement(workload: Workload, placement: Any) -> None:
    """A pipeline placed by ``.place(...)`` (or ``per_core``) and again by ``compile(placement=...)`` is refused
    unless both say the same: one of them would be dropped without a word."""
    placed = workload.schedule.placement
    if placement is None or placed is None:
        return
    try:
        same = bool(placed == placement)
    except Exception:  # noqa: BLE001 - values without a truthy == are not the same placement
        same = False
    if not same:
        raise PtortValueError(
            f"compile(placement={placement!r}) contradicts the pipeline's own .place({placed!r}); a pipeline is "
            "placed once, so one of the two would be ignored.",
            hint="Keep one: drop placement= from compile() to run the pipeline as .place(...) put it, or build the "
                 "pipeline without .place(...) (per_core(...) places its copies itself) and pass placement= to "
                 "compile().")


def _check_placement_cores(workload: Workload, machine: Machine) -> None:
    """A pipeline placed (``.place``, as ``per_core`` does) on more cores than the machine has is refused now; a
    ``compile(placement=...)`` is checked when the run starts, as before."""
    placement = workload.schedule.placement
    if not isinstance(placement, dict) or not workload.is_pipeline:
        return
    firsts = {name: place[0] if isinstance(place, (tuple, list)) and place else place
              for name, place in placement.items()}
    cores = {name: int(c) for name, c in firsts.items() if isinstance(c, numbers.Integral) and not isinstance(c, bool)}
    for name, core in cores.items():
        if core >= machine.num_cores:
            used = max(cores.values()) + 1
            raise PtortValueError(
                f"process '{name}' is placed on core {core}, but machine '{machine.name}' has {machine.num_cores} AI "
                f"cores (0..{machine.num_cores - 1}); the placement uses {used}.",
                hint=f"Use at most {machine.num_cores} cores (per_core(build, cores={machine.num_cores})), or a "
                     f"machine with more: compile(machine=ascend_910b.replace(num_cores={used})).")


def _check_vector_unit(workload: Workload, machine: Machine) -> None:
    """``.vector_unit(n)`` with an AIV the machine's cores lack is refused now (a function is checked per task)."""
    unit = workload.schedule.vector_unit
    if isinstance(unit, int) and unit >= machine.aiv_per_core:
        units = "AIV0" if machine.aiv_per_core == 1 else f"AIV0..AIV{machine.aiv_per_core - 1}"
        raise PtortValueError(f"vector_unit({unit}) puts every task on AIV{unit}, but each AI core of "
                              f"'{machine.name}' has {units}.",
                              hint=f"Use vector_unit(0)..vector_unit({machine.aiv_per_core - 1})."
                              if machine.aiv_per_core > 1 else "This machine has one AIV per core: drop vector_unit().")


def _compile(workload: Workload, target: str, options: dict[str, Any]) -> Program:
    return Program(workload, target, options)


for _target in ("cpu_sim", "npu_sim", "sim"):
    register_target(_target, _compile)

__all__ = ["Program", "CompileStats", "PinnedCosts", "NpuCostModel", "collect_compiled", "TraceLevel", "TraceEvent",
           "ExecutionTrace"]
