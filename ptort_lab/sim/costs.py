"""NpuCostModel: price each task's ops on the pipes of an Ascend-class core (NPU_MODEL §2-§4).

How a task is priced. Its kernel is lowered to pipe instructions (``lowering``). On its core they are issued in
program order; each starts at ``max(task start, its pipe free, its operands ready, room in its buffer)`` and holds
its pipe until it ends; one that overwrites a buffer in place also waits for that buffer's readers on other pipes,
and a buffer is freed when its last reader on any pipe is done (write-after-read: ``memo.hazards``). Pipes of one
core (AIC.MTE2, AIC.MTE1, AIC.CUBE, AIC.FIX, AIV0.MTE2, AIV0.V, AIV0.MTE3, AIV1.*) and different cores run
concurrently; processes placed on the same core share its pipes and buffers.

Costs (every constant from ``Machine``): GM transfers by ``memory`` (reads hold their pipe for the stream plus an
issue cost and land a latency later; writes are posted into the write-back L2, visible after its write latency),
with its pool sharing; on-chip moves
``L_fix + ceil32(bytes) / BW``; vector ``[head] + slope * repeats`` (head only when V was idle, i.e. once per
back-to-back stream) plus ``tail`` before another pipe may use the result; cube
``[6] + r * ceil(M/16) * ceil(N/16) * ceil(K / (32 / sizeof))`` per K-slice (6 only when M was idle). No
instruction starts before ``launch_overhead_cycles`` (§3.5, fitted to onboard kernel times, which include it), nor
one of core k's before its block is dispatched, ``(k + 1) * block_dispatch_cycles`` later (``block_start``).

Cores. A core index is one physical AI core (1 AIC + ``aiv_per_core`` AIVs); ``machine.num_cores`` of them.
A CSP process runs its vector work on AIV0 of its core (the Ascend CopyIn/Compute/CopyOut pattern: stages placed
on one core share that AIV's MTE2, V and MTE3), or on AIV1 when placed ``(core, 1)``. A data-parallel core
hands its vector tasks to its AIVs in turn (task k -> AIV k mod aiv_per_core), so 24 cores drive all 48 vector
units, unless the workload's ``.vector_unit(...)`` names each task's AIV. Cube work always runs on the AIC.

Overlap. ``pipelined=False`` (a CSP process): the process waits for the task (``issue_done == end``).
``pipelined=True`` (a data-parallel core): the core may issue the next task once this one's first instruction has
started; how far it then runs ahead is decided by pipes and buffer room only (``buffers``), so double buffering
appears when two tasks' tiles fit and disappears when one does.

On-chip state (``residency``). An on-chip tensor (``Tensor(location=Location.UB | L1 | L0C)``) and the slots of a
tile channel whose two ends share a buffer are resident: their room is reserved in that (core, unit, buffer) for the
whole run, and a task's kernel is lowered with those arguments already in place (``lowering``: loads of them are
free, stores into them write the slot), cached per kernel and resident set. Every other tile channel is a GM ring
whose slots' addresses are reused item after item.

Pinned costs. A task with ``cycles=`` (``task(..., cycles=...)`` or ``@kernel(cycles=...)``) takes exactly that
many cycles from its start, touches no pipe or buffer, and is recorded as one span on the process lane (as
``PinnedCosts`` does), so oracle models can be built from the DSL.

Memoisation (issue 14). What pricing needs that does not depend on time - each instruction's lane, pipe key, buffer
pool, GM path and argument - is resolved once per (plan, core, AIV) of a run into a ``memo.TaskTemplate`` and
replayed per task; pipes, buffers and the GM pools still arbitrate at run time, so times are those of pricing each
instruction afresh.

Spans: one per instruction, lane ``"<unit>.<pipe>"``, name the op (``load``, ``add``, ``extract``, ``matmul``,
``store``, ``fix`` for a GM staging hop), ``bytes`` the GM bytes moved (0 on chip and for compute).
"""
from __future__ import annotations

from typing import Any

from ..dsl.ir import KernelIR
from ..dsl.workload import Task, Workload
from ..errors import PtortTypeError
from .buffers import BufferPool
from .cost_model import CostModel, TaskPricer, Timing
from .lowering import Plan, lower
from .machine import Buffer, Machine, ascend_910b, get_machine
from .memory import GlobalMemory
from .npu_run import NpuRun, Resident


class NpuCostModel(CostModel):
    """The sourced Ascend timing model: ``NpuCostModel()`` (910B2) or ``NpuCostModel("ascend_910b4")``.

    The model itself holds only the machine and a cache of lowered kernels, so one model may price any number of
    runs, from any number of threads at once: each run gets its own ``NpuRun`` (``begin_run``), which holds that
    run's pipes, buffers and GM state. ``prepare``/``task_timing`` on the model are the single-run form of the
    same (the run last begun), kept for callers that price tasks by hand; the runner never uses them.
    """

    machine: Machine  # (always one, unlike a CostModel's)

    def __init__(self, machine: Machine | str = ascend_910b) -> None:
        self.machine = get_machine(machine)
        self.clock_hz = self.machine.clock_hz
        self._plans: dict[int, tuple[KernelIR, Plan]] = {}
        self._resident_plans: dict[tuple[int, Resident], tuple[KernelIR, Plan]] = {}
        self.vector_units: dict[str, int] = {}  # for prepare(): CSP process -> AIV index, when placed on AIV1
        self._last: NpuRun | None = None  # the run last begun, for the single-run API (prepare, memory, ...)

    def __getstate__(self) -> dict[str, Any]:
        """A copy or pickle of the model (a sweep sends it to its workers) holds its machine and lowered kernels,
        not the state of the run last begun (an NpuRun: per run, and compiled objects do not pickle)."""
        return {**self.__dict__, "_last": None}

    @property
    def channel_latency_cycles(self) -> int:
        """The machine's cross-core channel latency (pass it as ``channel_latency_cycles=`` to compile/run)."""
        return self.machine.channel_latency_cycles

    def plan(self, ir: KernelIR, resident: Resident = ()) -> Plan:
        """The lowered instructions of ``ir`` (cached per traced kernel and which of its parameters stay on chip in
        which buffer, ``resident``; lowering is pure, so a race between two threads only lowers it twice)."""
        if resident:
            key = (id(ir), resident)
            found = self._resident_plans.get(key)
            if found is None or found[0] is not ir:
                found = self._resident_plans[key] = (ir, lower(ir, self.machine, resident))
            return found[1]
        hit = self._plans.get(id(ir))
        if hit is None or hit[0] is not ir:
            hit = (ir, lower(ir, self.machine))
            self._plans[id(ir)] = hit
        return hit[1]

    def begin_run(self, workload: Workload, placement: dict[str, int] | None,
                  vector_units: dict[str, int] | None = None) -> TaskPricer:
        """A new run's pricer (an ``NpuRun``): checks core counts and channel slots, then prices that run's tasks."""
        if type(self) is not NpuCostModel:
            _check_overrides(type(self))
        run = NpuRun(self, dict(vector_units or {}))
        self._last = run
        run.prepare(workload, placement)
        return run

    # -- the single-run form: state of the run last begun ------------------------------------------------------------
    def _current(self) -> NpuRun:
        if self._last is None:
            self._last = NpuRun(self, dict(self.vector_units))
        return self._last

    def reset(self) -> None:
        """Forget every pipe, buffer and GM state (a new run for the single-run API)."""
        self._last = NpuRun(self, dict(self.vector_units))

    def prepare(self, workload: Workload, placement: dict[str, int] | None) -> None:
        """Start a run for ``task_timing`` on the model (uses ``self.vector_units``)."""
        self.begin_run(workload, placement, self.vector_units)

    def units_of(self, process: Any) -> frozenset[str]:
        """``NpuRun.units_of`` for the run last begun."""
        return self._current().units_of(process)

    def channel_stays_on_chip(self, producers: list[Any], consumers: list[Any]) -> bool:
        """``NpuRun.channel_stays_on_chip`` for the run last begun."""
        return self._current().channel_stays_on_chip(producers, consumers)

    def fixed_cycles(self, task: Task) -> int | None:
        """A pinned task's cycles (a plain delay), else None."""
        return task.pinned_cycles()

    def task_timing(self, task: Task, ir: KernelIR | None, core: int, start: int, lane: str,
                    pipelined: bool) -> Timing:
        """``NpuRun.task_timing`` in the run last begun (``prepare``)."""
        return self._current().task_timing(task, ir, core, start, lane, pipelined)

    @property
    def memory(self) -> GlobalMemory:
        """The GM state (L2, HBM counters) of the run last begun."""
        return self._current().memory

    @property
    def pipe_free(self) -> dict[tuple[int, str], int]:
        """When each (core, pipe) is next free, in the run last begun."""
        return self._current().pipe_free

    @property
    def pools(self) -> dict[tuple[int, str, Buffer], BufferPool]:
        """The on-chip buffer pools of the run last begun."""
        return self._current().pools


# the hooks a run asks its pricer (an NpuRun), never the model: a subclass's own would be silently ignored
_RUN_HOOKS = ("prepare", "fixed_cycles", "task_timing", "channel_stays_on_chip", "launch_cycles", "finish_run")


def _check_overrides(cls: type) -> None:
    """Refuse a subclass of NpuCostModel (outside ptort_lab) that defines a hook its runs would never call (unless
    it also overrides begin_run: its own pricer may call them)."""
    from .timing_check import attribute_location
    if cls.begin_run is not NpuCostModel.begin_run:  # type: ignore[attr-defined]
        return
    for name in _RUN_HOOKS:
        if not any(name in vars(k) and not k.__module__.startswith("ptort_lab.") for k in cls.__mro__):
            continue
        where = attribute_location(cls, name)
        raise PtortTypeError(
            f"{cls.__name__} overrides {name}, which NpuCostModel's runs never call: each run is priced by its own "
            "NpuRun (the pricer begin_run returns), so the override would be ignored.",
            hint="Subclass CostModel instead and delegate to the NPU model: in begin_run, make "
                 "self.run = NpuCostModel(machine).begin_run(workload, placement, vector_units) and return self; "
                 "in task_timing, call self.run.task_timing(...) and adjust what it returns.",
            where=where, locate=where is None)


__all__ = ["NpuCostModel", "NpuRun"]
