"""compile() -> Program: joins a DSL workload and the simulator (execute, synchronize, stats, trace, enumerate)."""
from __future__ import annotations

import contextvars
import numbers
import threading
import time
from contextlib import contextmanager
from typing import Any, Iterator

from .dsl.schedule import register_target
from .dsl.workload import Task, Workload
from .errors import PtortTypeError, PtortValueError, user_location
from .sim.cost_model import CostModel, PinnedCosts, as_cost_model
from .sim.costs import NpuCostModel
from .sim.machine import MACHINES, Machine, ascend_910b, get_machine
from .sim.runner import Run, RunOptions, simulate
from .sim.stats import ProgramStats, compute_stats
from .sim.trace import Trace

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
    stages placed on one core cost none); ``placement`` (``"shared"`` or ``{process: core}``); ``compute_values``
    (False skips the numpy values, for timing-only runs). ``program.options`` is what compile() was given.

    Runs. A run that computes values writes its tensors only if it succeeds: when ``execute()`` raises, every tensor
    it wrote is as before (see ``sim.runner.simulate``). Threads: ``execute()`` may be called from several threads
    at once, on one Program or on Programs sharing a cost model; each run is independent and gets exactly the result
    it gets alone, and ``stats()``/``trace()`` describe the run that finished last. Runs that compute values take
    turns (they write the tensors the threads share); timing-only runs (``compute_values=False``) run side by side.
    """

    def __init__(self, workload: Workload, target: str = "cpu_sim", options: dict[str, Any] | None = None) -> None:
        started = time.perf_counter()
        self.workload = workload
        self.target = target
        self.options: dict[str, Any] = dict(options or {})
        self.loc = user_location(2)  # the compile() line, named when a study refuses these options
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
        if latency is None:
            latency = self.machine.channel_latency_cycles if self.machine is not None else 0
        latency = _checked_latency(latency, "compile(channel_latency_cycles=...)")
        compute_values = opts.pop("compute_values", True)
        if not isinstance(compute_values, bool):
            raise PtortTypeError(f"compile(compute_values=...) must be True or False, got "
                                 f"{type(compute_values).__name__} {compute_values!r}.",
                                 hint="Pass compute_values=False for a timing-only run (no numpy values), True (the "
                                      "default) to compute the values too.")
        self.run_options = RunOptions(
            channel_latency_cycles=latency,
            placement=opts.pop("placement", None),
            compute_values=compute_values)
        if opts:
            import difflib
            known = ["machine", "cost_model", "channel_latency_cycles", "placement", "compute_values"]
            close = difflib.get_close_matches(sorted(opts)[0], known, n=1)
            raise PtortValueError(f"compile() got unknown option(s) {sorted(opts)}.",
                                  hint=(f"Did you mean {close[0]!r}? " if close else "")
                                  + f"Known options: {', '.join(known)}.")
        self._tasks: list[Task] | None = None
        self._run: Run | None = None
        self._stats: tuple[Run, ProgramStats] | None = None
        self._failed: Exception | None = None  # what the last execute() raised, for later questions about the run
        self._compile_ms = (time.perf_counter() - started) * 1e3
        self._execute_ms = 0.0
        found = _collecting.get()
        if found is not None:
            found.append(self)

    def enumerate(self) -> list[Task]:
        if self._tasks is None:
            self._tasks = self.workload.enumerate()
        return self._tasks

    def set_symbol_u64(self, name: str, value: int) -> None:
        """Reference-compatible knob: ``__pto_wsp_channel_latency_cycles`` sets the channel latency."""
        if name != _LATENCY_SYMBOL:
            raise PtortValueError(f"unknown symbol {name!r}.", hint=f"The simulator reads only {_LATENCY_SYMBOL}.")
        self.run_options.channel_latency_cycles = _checked_latency(value, f"set_symbol_u64({_LATENCY_SYMBOL!r}, ...)")

    def execute(self) -> Program:
        """Run the program (values and time); on failure its tensors are as before and the error says so."""
        started = time.perf_counter()
        try:
            run = simulate(self.workload, self.cost_model, self.run_options)
        except Exception as e:
            with self._lock:
                self._run, self._failed = None, e
            raise
        with self._lock:  # the run that finishes last is the one stats() and trace() describe
            self._run, self._failed = run, None
            self._execute_ms = (time.perf_counter() - started) * 1e3
        return self

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

    # The form is ``program.stats()`` / ``program.trace()``, the reference's ``program.stats.total_cycles``
    # / ``program.trace.to_chrome_trace()``: both work, since ProgramStats and Trace return themselves when called.
    @property
    def trace(self) -> Trace:
        """The last run's Trace (``program.trace`` or ``program.trace()``)."""
        return self._require_run("trace").trace

    @property
    def stats(self) -> ProgramStats:
        """The last run's ProgramStats (``program.stats`` or ``program.stats()``), computed once per run."""
        run = self._require_run("stats")
        cached = self._stats
        if cached is None or cached[0] is not run:
            s = compute_stats(run.trace, len(run.tasks), run.stall_cycles)
            with self._lock:
                execute_ms = self._execute_ms if self._run is run else s.execute_time_ms
            s.compile_time_ms, s.execute_time_ms = self._compile_ms, execute_ms
            cached = self._stats = (run, s)
        return cached[1]

    @property
    def tasks(self) -> list[Task]:
        return self._require_run("tasks").tasks

    def __repr__(self) -> str:
        state = f"{self._run.trace.makespan} cycles" if self._run else "not run"
        return f"<Program {self.workload.name or self.workload.kind} on {self.target}: {state}>"


def _checked_latency(value: Any, api: str) -> int:
    """A channel latency: an int >= 0 (numpy ints become plain ints), else a PtortTypeError / PtortValueError."""
    hint = ("0 models an ideal hop; the 910B's calibrated cross-core hop is 1000 (ascend_910b.channel_latency_cycles). "
            "A negative latency would deliver a message before it is sent.")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise PtortTypeError(f"{api}: channel_latency_cycles must be an int >= 0 (cycles), got "
                             f"{type(value).__name__} {value!r}.", hint=hint)
    if value < 0:
        raise PtortValueError(f"{api}: channel_latency_cycles must be an int >= 0 (cycles), got {value!r}.", hint=hint)
    return int(value)


def _compile(workload: Workload, target: str, options: dict[str, Any]) -> Program:
    return Program(workload, target, options)


for _target in ("cpu_sim", "npu_sim", "sim"):
    register_target(_target, _compile)

__all__ = ["Program", "PinnedCosts", "NpuCostModel", "collect_compiled"]
