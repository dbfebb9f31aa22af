"""compile() -> Program: joins a DSL workload and the simulator (execute, synchronize, stats, trace, enumerate)."""
from __future__ import annotations

import time
from typing import Any

from .dsl.schedule import register_target
from .dsl.workload import Task, Workload
from .errors import PtortValueError
from .sim.runner import CostModel, PinnedCosts, Run, RunOptions, simulate
from .sim.stats import ProgramStats, compute_stats
from .sim.trace import Trace

_LATENCY_SYMBOL = "__pto_wsp_channel_latency_cycles"


class Program:
    """A compiled workload. ``execute()`` runs it on the simulator (values and time) and returns when done;
    ``synchronize()`` is then immediate; ``stats()`` and ``trace()`` describe the last run."""

    def __init__(self, workload: Workload, target: str = "cpu_sim", options: dict[str, Any] | None = None) -> None:
        started = time.perf_counter()
        self.workload = workload
        self.target = target
        self.options = dict(options or {})
        self.cost_model: CostModel | None = self.options.pop("cost_model", None)
        self.run_options = RunOptions(
            channel_latency_cycles=int(self.options.pop("channel_latency_cycles", 0)),
            placement=self.options.pop("placement", None),
            compute_values=bool(self.options.pop("compute_values", True)))
        if self.options:
            raise PtortValueError(f"compile() got unknown option(s) {sorted(self.options)}.",
                                  hint="Known options: cost_model, channel_latency_cycles, placement, compute_values.")
        self._tasks: list[Task] | None = None
        self._run: Run | None = None
        self._compile_ms = (time.perf_counter() - started) * 1e3
        self._execute_ms = 0.0

    def enumerate(self) -> list[Task]:
        if self._tasks is None:
            self._tasks = self.workload.enumerate()
        return self._tasks

    def set_symbol_u64(self, name: str, value: int) -> None:
        """Reference-compatible knob: ``__pto_wsp_channel_latency_cycles`` sets the channel latency."""
        if name != _LATENCY_SYMBOL:
            raise PtortValueError(f"unknown symbol {name!r}.", hint=f"The simulator reads only {_LATENCY_SYMBOL}.")
        self.run_options.channel_latency_cycles = int(value)

    def execute(self) -> Program:
        started = time.perf_counter()
        self._run = simulate(self.workload, self.cost_model, self.run_options)
        self._execute_ms = (time.perf_counter() - started) * 1e3
        return self

    def synchronize(self) -> None:
        """Execution is synchronous, so there is nothing to wait for."""

    def is_complete(self) -> bool:
        return self._run is not None

    def _require_run(self, api: str) -> Run:
        if self._run is None:
            raise PtortValueError(f"program.{api}() needs a run first.", hint="Call program.execute() before it.")
        return self._run

    def trace(self) -> Trace:
        return self._require_run("trace").trace

    def stats(self) -> ProgramStats:
        run = self._require_run("stats")
        s = compute_stats(run.trace, len(run.tasks), run.stall_cycles)
        s.compile_time_ms, s.execute_time_ms = self._compile_ms, self._execute_ms
        return s

    @property
    def tasks(self) -> list[Task]:
        return self._require_run("tasks").tasks

    def __repr__(self) -> str:
        state = f"{self._run.trace.makespan} cycles" if self._run else "not run"
        return f"<Program {self.workload.name or self.workload.kind} on {self.target}: {state}>"


def _compile(workload: Workload, target: str, options: dict[str, Any]) -> Program:
    return Program(workload, target, options)


for _target in ("cpu_sim", "npu_sim", "sim"):
    register_target(_target, _compile)

__all__ = ["Program", "PinnedCosts"]
