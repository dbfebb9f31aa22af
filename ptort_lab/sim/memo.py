"""Task templates: what pricing a task needs that does not depend on time, found once per plan and place (issue 14).

A task's pipe-level cost depends on its kernel, shapes, dtypes, placement (core, AIV, on-chip arguments) and the
machine, not on its index. The kernel is lowered once per traced IR and resident set (``NpuCostModel.plan``); a
``TaskTemplate`` goes one step further for one run: for a plan on one (core, AIV) it resolves each instruction's
pipe lane and the index of that pipe's clock in ``NpuRun.pipe_clock``, the buffer pool its allocation comes from,
its GM path and argument, so the issue loop of ``NpuRun.task_timing`` replays plain steps instead of re-deriving
names, keys and pools per instruction. Everything that depends on time - when each pipe is free, buffer room,
HBM/L2 bandwidth and lines - still arbitrates at run time in ``task_timing``, ``buffers`` and ``memory``, so the
times are exactly those of pricing each instruction from scratch.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

from .lowering import AIC, GM_READ, GM_WRITE, Instr, Plan
from .machine import TransferCost

if TYPE_CHECKING:
    from .buffers import BufferPool

# how a step is priced (Instr.kind, as a small int the loop compares cheaply)
COMPUTE, READ, WRITE = 0, 1, 2


class Step:
    """One instruction of a plan, resolved for one (core, AIV) of one run (a class, not a tuple: compiled, the issue
    loop reads the fields a step needs straight from it instead of unpacking all twenty per instruction)."""

    __slots__ = ("kind", "pipe", "lane", "name", "reads", "write", "tail_cycles", "alloc", "pool", "alloc_bytes",
                 "frees", "cycles", "head_cycles", "nbytes", "path", "param", "window", "extent", "nz", "instr",
                 "mark", "waits", "free_waits")

    def __init__(self, kind: int, pipe: int, lane: str, name: str, reads: tuple[int, ...], write: int,
                 tail_cycles: int, alloc: int, pool: BufferPool | None, alloc_bytes: int, frees: tuple[int, ...],
                 cycles: int, head_cycles: int, nbytes: int, path: TransferCost | None, param: str | None,
                 window: tuple[int, int, int, int] | None, extent: tuple[int, int, int, int] | None, nz: bool,
                 instr: Instr) -> None:
        self.kind = kind  # COMPUTE (static cycles: compute and on-chip moves), READ or WRITE (a GM transfer)
        self.pipe = pipe  # the index of its pipe's clock in NpuRun.pipe_clock (NpuRun.pipe_index)
        self.lane = lane  # "AIV0.MTE2"
        self.name = name  # the span's name (load, add, matmul, ...)
        self.reads = reads  # slots it waits for
        self.write = write  # the slot it writes (-1: none)
        self.tail_cycles = tail_cycles
        self.alloc = alloc  # the allocation it takes before it starts (-1: none)
        self.pool = pool  # where that allocation comes from
        self.alloc_bytes = alloc_bytes
        self.frees = frees  # allocations released when it ends
        self.cycles = cycles  # static cost (COMPUTE)
        self.head_cycles = head_cycles  # extra cost when its pipe was idle (COMPUTE)
        self.nbytes = nbytes  # GM bytes (READ, WRITE)
        self.path = path  # GM path (READ, WRITE)
        self.param = param  # the tile parameter a GM transfer touches (None: staging through GM)
        self.window = window  # the sub-block of ``param`` it moves
        self.extent = extent  # (0, rows, 0, cols) of ``param``'s tile when it moves all of it
        self.nz = nz  # a read into L1 (ND -> NZ)
        self.instr = instr  # the instruction itself, for error messages
        # write-after-read hazards (``hazards``): where this step records when it is done reading a buffer another
        # pipe overwrites or frees next (-1: nowhere), the records its own write waits for, and those each of its
        # frees waits for (empty: none)
        self.mark = -1
        self.waits: tuple[int, ...] = ()
        self.free_waits: tuple[tuple[int, ...], ...] = ()


class TaskTemplate(NamedTuple):
    """A plan's steps on one (core, AIV) of a run, and the sizes of its per-task state."""

    plan: Plan
    steps: tuple[Step, ...]
    slots: int  # len(plan.slot_alloc): the ``ready`` list of a task
    allocs: int  # len(plan.allocs): the ``held`` list of a task
    params: tuple[str, ...]  # the tile parameters its GM transfers touch (their regions are found once per task)
    pools: tuple[BufferPool | None, ...]  # allocation -> the pool its step takes it from (None: not taken)
    marks: int  # the write-after-read records a task keeps (Step.mark; 0: the plan has no such hazard)


def build_template(plan: Plan, core: int, aiv: int, pool_of: Any, pipe_of: Any) -> TaskTemplate:
    """The template of ``plan`` on ``core`` (vector work on AIV ``aiv``); ``pool_of(core, unit, buffer)`` gives the
    run's buffer pool (made on first use, as the issue loop would), ``pipe_of((core, lane))`` its pipe's clock."""
    units = {AIC: "AIC", "AIV": f"AIV{aiv}"}
    steps = []
    params: list[str] = []
    pools: list[BufferPool | None] = [None] * len(plan.allocs)  # (lowering makes a fresh allocation per step)
    for ins in plan.instrs:
        unit = units[ins.unit]
        lane = f"{unit}.{ins.pipe}"
        pool = None
        alloc_bytes = 0
        if ins.alloc >= 0:
            alloc = plan.allocs[ins.alloc]
            pool, alloc_bytes = pool_of(core, unit, alloc.buffer), alloc.bytes
            pools[ins.alloc] = pool
        kind = READ if ins.kind == GM_READ else WRITE if ins.kind == GM_WRITE else COMPUTE
        if kind != COMPUTE and ins.region is not None and ins.region not in params:
            params.append(ins.region)
        steps.append(Step(kind, pipe_of((core, lane)), lane, ins.name, tuple(ins.reads), ins.write, ins.tail_cycles,
                          ins.alloc, pool, alloc_bytes, tuple(ins.frees), ins.cycles, ins.head_cycles, ins.bytes,
                          ins.path, ins.region, ins.window, ins.extent, ins.unit == AIC, ins))
    marks = hazards(plan, steps)
    return TaskTemplate(plan, tuple(steps), len(plan.slot_alloc), len(plan.allocs), tuple(params), tuple(pools),
                        marks)


def hazards(plan: Plan, steps: list[Step]) -> int:
    """Give ``steps`` their write-after-read waits; returns how many records a task keeps.

    A buffer read on one pipe may be overwritten in place or freed by an instruction on another pipe (``store(z,
    a)`` on MTE3, then ``exp(a)`` on V into ``a``'s buffer, since ``a`` dies there): that instruction waits until
    the read is done and its flag seen (its end plus its tail, as a read-after-write hand-off waits for the
    writer's), as the WAR edges pto-isa's perf-sim derives from tile read/write sets (NPU_MODEL §2.2). A reader on
    the same pipe needs no wait (the pipe is in order). Readers before the buffer's last write are that write's to
    wait for (it reads the buffer too: ``lowering.reusable``)."""
    readers: dict[int, list[int]] = {}  # allocation -> the steps that read it since its last write
    mark_of: dict[int, int] = {}  # step -> its record

    def waits_for(a: int, n: int) -> tuple[int, ...]:
        found = []
        for j in readers.get(a, ()):
            if j != n and steps[j].pipe != steps[n].pipe:
                if j not in mark_of:
                    mark_of[j] = steps[j].mark = len(mark_of)
                found.append(mark_of[j])
        return tuple(found)
    for n, ins in enumerate(plan.instrs):
        written = plan.slot_alloc[ins.write] if ins.write >= 0 else -1
        if written >= 0:
            steps[n].waits = waits_for(written, n)
        for s in ins.reads:
            a = plan.slot_alloc[s]
            if a >= 0:
                readers.setdefault(a, []).append(n)
        if written >= 0:
            readers[written] = []
        if ins.frees:
            frees = tuple(waits_for(a, n) for a in ins.frees)
            if any(frees):
                steps[n].free_waits = frees
    return len(mark_of)


__all__ = ["Step", "TaskTemplate", "build_template", "COMPUTE", "READ", "WRITE"]
