"""One run's pricing on the NPU model: pipes, buffers, GM state and the issue loop (``costs`` module docstring: how
a task is priced; ``NpuCostModel.begin_run`` makes one per run). Compiled by mypyc when built (``ptort_lab.compiled``).
"""
from __future__ import annotations

from typing import Any, Callable, Iterator

from ..dsl.ir import KernelIR
from ..dsl.steps import enumerate_tasks, stream_tasks, uses_slots
from ..dsl.tree import NodeKind, walk
from ..dsl.types import Direction, TensorView, TileType
from ..dsl.wiring import channel_uses
from ..dsl.workload import Task, Workload
from ..errors import CapacityError, PtortError, PtortValueError
from .buffers import Allocation, BufferPool
from .capacity import fix_in_room
from .cost_model import Timing, span_of
from .deps import RegionKeys
from .int_args import as_int, whole
from .lowering import AIC, Instr, Plan
from .machine import Buffer, Machine, Pipe, bytes_text
from .memo import COMPUTE, READ, TaskTemplate, build_template
from .memory import GlobalMemory
from .placement import is_work_stealing, run_dispatch, vector_unit_of
from .residency import Residency
from .trace import Span
from .validation import ModelUse

_new = tuple.__new__  # builds a Span without its Python-level __new__ (one per instruction of every task)
Resident = tuple[tuple[str, Buffer], ...]  # the kernel parameters a task keeps on chip, and their buffers


class NpuRun:
    """One run's pricing state on an NpuCostModel: when each pipe is free, buffer pools, GM/L2 state, which AIV
    takes a core's next vector task. Made by ``NpuCostModel.begin_run``; never shared between runs."""

    def __init__(self, model: Any, vector_units: dict[str, Any]) -> None:  # (an NpuCostModel: costs imports us)
        self.model = model
        self.machine: Machine = model.machine
        self.plan: Callable[..., Plan] = model.plan  # (kernel IR, resident parameters) -> its lowered plan
        # CSP process -> AIV index, when placed on AIV1 (numpy ints taken as ints)
        self.vector_units = {name: as_int(aiv) for name, aiv in vector_units.items()}
        # when each pipe is free, by its index (pipe_index; -1: never used), which a template's steps carry
        self.pipe_clock: list[int] = []
        self.pipe_index: dict[tuple[int, str], int] = {}  # (core, lane such as "AIV0.MTE2") -> its clock's index
        self.pools: dict[tuple[int, str, Buffer], BufferPool] = {}
        self.memory = GlobalMemory(self.machine)
        self.next_aiv: dict[int, int] = {}
        self.vector_unit: Any = None  # a data-parallel run's .vector_unit(...) choice (None: AIVs in turn)
        self._units: dict[int, frozenset[str]] = {}  # id(process) -> units_of, for this run
        self.placement: dict[str, int] | None = None
        self.launched = False  # whether any task ran instructions (then no instruction ran before the launch)
        self.residency = Residency(self)  # on-chip tensors and tile-channel slots: where, and the room reserved
        self.last_aiv = 0  # the AIV the task priced last runs its vector work on (its UB state is that AIV's)
        self.block_ranks: dict[int, int] = {}  # core -> its block's place in the dispatch order (empty: the index)
        self._block_start: dict[int, int] = {}  # core -> block_start(core), once known
        self.flush_end: int | None = None  # when the kernel-end L2 flush is done (Machine.l2_flush_at_end)
        self._templates: dict[tuple[int, int, int], TaskTemplate] = {}  # (id(plan), core, aiv) -> its steps here
        self.region_keys = RegionKeys(exact_only=True)  # each argument's L2 region, by the memory it names
        self.workload: Workload | None = None  # the run's workload (a capacity hint looks at its other kernels)
        # what the run leaned on, for its error band and notes (model_use): found per plan as it is first priced
        self.cube_dtypes: set[str] = set()  # the input dtypes of its matmuls
        self.acc_via_l1 = False  # an accumulator went L1 -> L0C on MTE1 (lowering's approximation)
        self.channel_hops = False  # a pipeline channel or event hop crosses cores or units (it pays L_chan)
        self.cross_unit_reads = False  # data-parallel: a task read GM data another core's or unit's task wrote
        # data-parallel: GM tile -> (core, unit, task id) of its last writer, until a cross-unit read is seen
        self._gm_writers: dict[Any, tuple[int, str, int]] | None = None
        self._noted_plans: set[int] = set()

    @property
    def pipe_free(self) -> dict[tuple[int, str], int]:
        """When each pipe used so far is free: (core, lane) -> cycle."""
        clock = self.pipe_clock
        return {key: clock[i] for key, i in self.pipe_index.items() if clock[i] >= 0}

    def _pipe(self, key: tuple[int, str]) -> int:
        """The index of pipe ``key``'s clock (a new one, never used, on first sight)."""
        i = self.pipe_index.get(key)
        if i is None:
            i = self.pipe_index[key] = len(self.pipe_clock)
            self.pipe_clock.append(-1)
        return i

    @property
    def clock_hz(self) -> float:
        return self.machine.clock_hz

    def block_start(self, core: Any) -> int:
        """When the block of ``core`` may start: the launch, then one ``block_dispatch_cycles`` per block
        dispatched up to and including it (blocks go out in core order, one per AI core used; NPU_MODEL §3.5): its
        rank among the cores the run uses (``block_ranks``; a core missing there uses cores 0..core before it)."""
        m = self.machine
        index = whole(core, "NpuRun.block_start(core=...)")
        rank = self.block_ranks.get(index, index)
        return m.launch_overhead_cycles + (rank + 1) * m.block_dispatch_cycles

    def finish_run(self, makespan: Any) -> int:
        """The run's end: ``makespan``, or when the kernel-end L2 flush is done if the machine waits for it
        (``Machine.l2_flush_at_end``; the dirty bytes are counted either way)."""
        end = whole(makespan, "NpuRun.finish_run(makespan=...)")
        if not self.machine.l2_flush_at_end or not self.launched:
            return end
        self.flush_end = self.memory.flush(end)
        return max(end, self.flush_end)

    @property
    def launch_cycles(self) -> int:
        """Cycles before the first instruction: the kernel launch, when a task ran instructions (pinned tasks are
        plain delays from cycle 0)."""
        return self.machine.launch_overhead_cycles if self.launched else 0

    # -- run set-up ------------------------------------------------------------------------------------------------
    def prepare(self, workload: Workload, placement: dict[str, Any] | None) -> None:
        """Check core counts and, for processes sharing a core, channel slots against UB."""
        m = self.machine
        self.workload = workload
        self.residency.find(workload)
        if placement is None:
            sched = workload.schedule
            self.vector_unit = sched.vector_unit
            wanted = (sched.dispatch.num_cores if sched.dispatch is not None else 0) or sched.stream_count or 1
            if wanted > m.num_cores:
                raise PtortValueError(
                    f"the schedule dispatches to {wanted} cores but machine '{m.name}' has {m.num_cores} AI cores "
                    f"({m.num_vector_cores} vector units).",
                    hint=f"Use at most {m.num_cores} cores (each core's {m.aiv_per_core} AIVs take its vector tasks "
                         "in turn), or a machine with more cores.", locate=True)
            self.block_ranks = _keyed_block_ranks(workload)
            self._gm_writers = {}
            return
        placement = {name: as_int(core) for name, core in placement.items()}  # (numpy ints taken as ints)
        self.placement = placement
        self.block_ranks = {core: rank for rank, core in enumerate(sorted(set(placement.values())))}
        for name, core in placement.items():
            if not 0 <= core < m.num_cores:
                raise PtortValueError(
                    f"process '{name}' is placed on core {core} but machine '{m.name}' has cores 0..{m.num_cores - 1}.",
                    hint='Place processes on fewer cores, e.g. .place("shared") or {"loader": 0, "computer": 0}.',
                    locate=True)
        for name, aiv in self.vector_units.items():
            if not 0 <= aiv < m.aiv_per_core:
                units = "AIV0" if m.aiv_per_core == 1 else f"AIV0..AIV{m.aiv_per_core - 1}"
                raise PtortValueError(
                    f"process '{name}' is placed on AIV{aiv} but each AI core of '{m.name}' has {units}.",
                    hint=(f'Use aiv 0..{m.aiv_per_core - 1}, e.g. {{"{name}": (0, 1)}} for core 0, AIV1.'
                          if m.aiv_per_core > 1 else f'Place it on a core only: {{"{name}": 0}}.'), locate=True)
        self.residency.place_pipeline(workload, placement)
        self._check_channel_slots(workload, placement)
        self.channel_hops = self._crosses_units(workload, placement)

    def units_of(self, process: Any) -> frozenset[str]:
        """The units (AIC, AIV) whose pipes the kernels of a CSP process use; empty when it runs only pinned tasks.
        Found once per run (prepare's slot check and the runner's channel latencies both ask)."""
        cached = self._units.get(id(process))
        if cached is not None:
            return cached
        units: set[str] = set()
        for node, _ in _task_nodes(process.workload):
            kernel = node.kernel
            if node.cycles is not None or getattr(kernel, "cycles", None) is not None or isinstance(kernel, str) \
                    or not hasattr(kernel, "ir_for"):
                continue  # a pinned task touches no pipe
            try:
                ir = kernel.ir_for(node.resources or {})
            except PtortError:  # Constexpr values that depend on the token: the task's own launch will say why
                continue
            units.update(ins.unit for ins in self.plan(ir, self.residency.tensors_of(node.resources)).instrs)
        self._units[id(process)] = frozen = frozenset(units)
        return frozen

    def channel_stays_on_chip(self, producers: list[Any], consumers: list[Any]) -> bool:
        """Whether a channel between processes placed on one core can stay in that core's buffers.

        Not when one side works only on the AIC and the other only on the AIVs, or the two sit on different AIVs
        (``.place({"update": (0, 1)})``): those units share nothing on chip
        (NPU_MODEL §2.1), so the channel is the GM-staged FIFO of §4.2 with its cross-core flag, as between the
        cube and vector stages of Ascend's flash attention, and it pays the channel latency."""
        made = frozenset().union(*(self.units_placed(p) for p in producers))
        used = frozenset().union(*(self.units_placed(p) for p in consumers))
        return not (made and used and made.isdisjoint(used))

    def units_placed(self, process: Any) -> frozenset[str]:
        """``units_of`` with the AIV named (AIV0, AIV1): two AIVs share no buffer either."""
        aiv = f"AIV{self.vector_units.get(process.name, 0)}"
        return frozenset(aiv if u != AIC else u for u in self.units_of(process))

    def _crosses_units(self, workload: Workload, placement: dict[str, int]) -> bool:
        """Whether a hop of a channel or event of the pipeline goes between cores, or between units of one core that
        share no buffer: the hops the runner charges the channel latency (L_chan)."""
        ends: dict[int, tuple[list[Any], list[Any]]] = {}
        for p in workload.fields.get("processes", ()):
            _, _, records, waits = channel_uses(p.workload)
            for items, side in ((p.produces, 0), (p.consumes, 1), (records, 0), (waits, 1)):
                for key in {id(c) for c in items}:
                    ends.setdefault(key, ([], []))[side].append(p)

        def cross(senders: list[Any], takers: list[Any]) -> bool:
            return placement[senders[0].name] != placement[takers[0].name] \
                or not self.channel_stays_on_chip(senders, takers)
        for senders, takers in ends.values():
            if not senders or not takers:  # (one end only: the runner charges it as one hop between all its ends)
                both = senders + takers
                if len({placement[p.name] for p in both}) > 1 or not self.channel_stays_on_chip(senders, takers):
                    return True
            elif any(cross([s], [t]) for s in senders for t in takers):
                return True
        return False

    def model_use(self) -> ModelUse:
        """What this run leaned on, for its error band and notes (``validation``)."""
        return ModelUse(self.machine, tuple(sorted(self.cube_dtypes)), self.launched, self.channel_hops,
                        self.cross_unit_reads, self.acc_via_l1)

    def _note_plan(self, plan: Plan) -> None:
        """Record what ``plan`` leans on (once per plan): its matmuls' input dtypes, an accumulator moved L1 ->
        L0C on MTE1 (a path NPU_MODEL does not document)."""
        if id(plan) in self._noted_plans:
            return
        self._noted_plans.add(id(plan))
        for ins in plan.instrs:
            if ins.pipe is Pipe.CUBE and ins.op is not None and ins.op.operands:
                self.cube_dtypes.add(str(ins.op.operands[0].dtype))
            elif ins.pipe is Pipe.MTE1 and ins.alloc >= 0 and plan.allocs[ins.alloc].buffer is Buffer.L0C:
                self.acc_via_l1 = True

    def _check_channel_slots(self, workload: Workload, placement: dict[str, int]) -> None:
        """Token channels kept on one core are UB queues: depth x slot bytes must fit the UB left by on-chip state
        (tile channels reserve their slots: ``residency``)."""
        # Each channel's producers and consumers, in process order, found in one pass over the processes (a chain
        # of thousands of processes on one core has as many channels: scanning every process per channel is
        # quadratic).
        producers_of: dict[int, list[Any]] = {}
        consumers_of: dict[int, list[Any]] = {}
        for p in workload.fields.get("processes", ()):
            for ends, of in ((p.produces, producers_of), (p.consumes, consumers_of)):
                for key in {id(c) for c in ends}:  # (a channel named twice counts once)
                    of.setdefault(key, []).append(p)
        per_core: dict[tuple[int, int], list[tuple[Any, list[Any], int]]] = {}
        for ch in workload.fields.get("channels", ()):
            if ch.tile is not None:
                continue
            producers, consumers = producers_of.get(id(ch), []), consumers_of.get(id(ch), [])
            cores = {placement[p.name] for p in (*producers, *consumers)}
            if len(cores) != 1:
                continue  # between cores: GM-staged, the engine adds the channel latency per hop
            if not self.channel_stays_on_chip(producers, consumers):
                continue  # AIC <-> AIV: GM-staged as well
            slot = max((_slot_bytes(p.workload, ch) for p in producers), default=0)
            aiv = self.vector_units.get(producers[0].name, 0) if producers else 0
            per_core.setdefault((cores.pop(), aiv), []).append((ch, producers, slot))
        ub = self.machine.ub_bytes
        for (core, aiv), chans in sorted(per_core.items()):
            need = sum(ch.depth * slot for ch, _, slot in chans)
            left = ub - self.residency.reserved_bytes((core, f"AIV{aiv}", Buffer.UB))
            if need <= left:
                continue
            parts = ", ".join(f"'{ch.name}' {ch.depth} x {slot} B (from process "
                              f"'{producers[0].name if producers else '?'}')" for ch, producers, slot in chans)
            big, producers, slot = max(chans, key=lambda c: c[0].depth * c[2])
            fits = (left - (need - big.depth * slot)) // slot if slot else 0
            depth_hint = (f"channel '{big.name}' depth {fits}" if fits >= 1
                          else f"a smaller tile for channel '{big.name}'")
            reserved = self.residency.describe((core, f"AIV{aiv}", Buffer.UB))
            raise CapacityError(
                f"channel buffers on core {core} need {need} bytes of UB but the UB of AIV{aiv} holds "
                f"{bytes_text(ub)}{reserved}: {parts}.",
                hint=f"Use a smaller tile or a smaller depth (e.g. {depth_hint}), or place the processes on "
                     "different cores.",
                context=f"process '{producers[0].name if producers else '?'}'", locate=True)

    # -- pricing ---------------------------------------------------------------------------------------------------
    def fixed_cycles(self, task: Task) -> int | None:
        """A pinned task is a plain delay on its process lane (no pipe, buffer or launch cost): the fast path."""
        return task.pinned_cycles()

    def task_timing(self, task: Task, ir: KernelIR | None, core: Any, start: Any, lane: str,
                    pipelined: bool) -> Timing:
        """Issue ``task``'s instructions in program order from ``start`` (module docstring: how each is priced).
        ``core`` and ``start`` may be numpy integers (a model that wraps this one may compute them)."""
        return self._task_timing(task, ir, core if type(core) is int else whole(core, "NpuRun.task_timing(core=...)"),
                                 start if type(start) is int else whole(start, "NpuRun.task_timing(start=...)"),
                                 lane, pipelined)

    def _task_timing(self, task: Task, ir: KernelIR | None, core: int, start: int, lane: str,
                     pipelined: bool) -> Timing:
        m = self.machine
        index = task.params[0] if task.params else task.id
        if not 0 <= core < m.num_cores:
            raise PtortValueError(
                f"task {task.id} ({task.kernel}) is dispatched to core {core} but machine '{m.name}' has cores "
                f"0..{m.num_cores - 1}.", hint=f"Dispatch to at most {m.num_cores} cores.", where=task.loc,
                locate=False)
        pinned = task.pinned_cycles()
        if pinned is not None or ir is None or not ir.ops:
            self.last_aiv = self.vector_units.get(lane, 0) if self.vector_units else 0
            if pipelined and self.vector_unit is not None:  # its values go to the AIV .vector_unit(...) names
                self.last_aiv = vector_unit_of(task, self.vector_unit, m.aiv_per_core, m.name)
            end = start + (pinned or 0)
            return end, end, [span_of(task, core, lane, start, end)]
        plan = self.plan(ir)
        placed = self.residency.placed(task) if self.residency.buffers else ()
        if placed:  # arguments kept on chip: lowered with them resident (cached per parameter and buffer)
            plan = self.plan(ir, tuple(sorted((name, buffer) for name, buffer, _, _ in placed)))
        self.launched = True
        floor = self._block_start.get(core)
        if floor is None:
            floor = self._block_start[core] = self.block_start(core)
        # The pools forget what lies before the task's own start: the engine gives starts in time order, so no
        # later transfer starts before it. (Not the start a core's late block moves it to: other cores' tasks
        # still start before that.)
        self.memory.forget_before(start)
        if start < floor:  # no instruction runs before the launch and this core's block is dispatched
            start = floor
        aiv = self.vector_units.get(lane, 0) if self.vector_units else 0  # a CSP process: the AIV it is placed on
        if pipelined and plan.uses_aiv:
            if self.vector_unit is not None:
                aiv = vector_unit_of(task, self.vector_unit, m.aiv_per_core, m.name)
            else:
                k = self.next_aiv.get(core, 0)
                self.next_aiv[core] = k + 1
                aiv = k % m.aiv_per_core
        self.last_aiv = aiv
        tpl = self._templates.get((id(plan), core, aiv))
        if tpl is None or tpl.plan is not plan:
            tpl = self._templates[(id(plan), core, aiv)] = build_template(plan, core, aiv, self._pool, self._pipe)
            self._note_plan(plan)
        return self._issue(task, tpl, placed, core, aiv, start, lane, pipelined, index)

    def _issue(self, task: Task, tpl: TaskTemplate, placed: Any, core: int, aiv: int, start: int, lane: str,
               pipelined: bool, index: Any) -> Timing:
        """The issue loop: each step of ``tpl`` from ``start`` in program order (module docstring: how each is
        priced); only what depends on time is worked out here."""
        ready: list[tuple[int, str, int] | None] = [None] * tpl.slots  # slot -> (end, lane, tail) of its last write
        kept = None
        if placed:  # arguments kept on chip: each resident slot starts from its last write
            kept = self.residency.enter(task, placed, tpl.plan, core, aiv, ready)
        # the GM region a transfer touches: (storage, tile index) of the task's argument (deps.RegionKeys: Y[-1] and
        # Y.slice(2, 4)[1] are Y[3]'s line), with the sub-block (r0, r1, c0, c1) a slice of it moves appended (found
        # once per argument, not per transfer)
        regions: dict[str, Any] = {}
        if tpl.params:
            res = task.resources
            if isinstance(res, dict):
                region_of = self.region_keys.region
                for name in tpl.params:
                    view = res.get(name)
                    if isinstance(view, TensorView):
                        regions[name] = region_of(view)
        held: list[Allocation | None] = [None] * tpl.allocs
        pools = tpl.pools
        # when each read another pipe's later write or free must wait for is done (memo.hazards; most plans: none)
        marks: list[int] = [0] * tpl.marks
        hazards = tpl.marks > 0
        spans: list[Span] = []
        add_span = spans.append
        first = None
        end_all = start
        pipe_clock = self.pipe_clock
        memory = self.memory
        task_id = task.id
        # one boxed int each for every span of the task (compiled, an int local is unboxed and boxed again per use:
        # ~50 MB more per million spans held)
        core_box: object = core
        task_box: object = task_id
        writers = self._gm_writers  # (data-parallel, until a task reads what another unit's task wrote)
        for step in tpl.steps:
            pipe = step.pipe
            name = step.lane
            free = pipe_clock[pipe]  # (-1 until the pipe is first used; times are never negative)
            t = start if free < start else free
            for s in step.reads:
                r = ready[s]
                if r is not None:
                    rt = r[0] + (r[2] if r[1] != name else 0)
                    if rt > t:
                        t = rt
            if hazards:
                for k in step.waits:  # an in-place write: the buffer's readers on other pipes are done
                    if marks[k] > t:
                        t = marks[k]
            alloc = step.alloc
            if alloc >= 0:
                pool = step.pool
                assert pool is not None
                got = pool.allocate(t, step.alloc_bytes, start)
                if got is None:
                    raise self._capacity_error(task, lane, core, name.split(".")[0], tpl.plan.allocs[alloc].buffer,
                                               pool, step.alloc_bytes, step.instr)
                held[alloc] = got
                t = got.start
            kind = step.kind
            if kind == COMPUTE:
                gm_bytes = 0
                end = done = freed = t + step.cycles + (step.head_cycles if free < t else 0)
            else:
                region = tile = None
                param = step.param
                if param is not None:
                    region = tile = regions.get(param)
                    window = step.window
                    if region is not None and window is not None:
                        region = region + (window,)
                nbytes = gm_bytes = step.nbytes
                path = step.path
                assert path is not None
                if kind == READ:  # the pipe is free before the data arrive (memory.py: latency overlaps)
                    end, done, _ = memory.read_times(t, nbytes, path, region, step.nz, step.extent)  # nz: L1, ND -> NZ
                    freed = done  # its buffer is written until the data are in
                    if writers is not None and tile is not None:
                        w = writers.get(tile)
                        if w is not None and w[2] != task_id and (w[0] != core or w[1] != name.partition(".")[0]):
                            self._cross_unit_read()
                            writers = None
                else:  # posted into L2: visible a write latency after the pipe let go
                    end, done = memory.write_times(t, nbytes, path, region)
                    freed = end  # the data have left its buffer
                    if writers is not None and tile is not None:
                        writers[tile] = (core, name.partition(".")[0], task_id)
            pipe_clock[pipe] = end
            write = step.write
            if write >= 0:
                ready[write] = (done, name, step.tail_cycles)
            if hazards and step.mark >= 0:
                marks[step.mark] = freed + step.tail_cycles
            free_waits = step.free_waits if hazards else ()
            n = 0
            for a in step.frees:
                h = held[a]
                if h is not None:
                    owner = pools[a]
                    assert owner is not None
                    at = freed
                    if free_waits:  # a buffer another pipe still reads is free once that read is done
                        for k in free_waits[n]:
                            if marks[k] > at:
                                at = marks[k]
                    owner.free(h, at)
                n += 1
            # Span(core, lane, name, index, start, end, bytes, process, task_id), built positionally (per instruction)
            add_span(_new(Span, (core_box, name, step.name, index, t, end, gm_bytes, lane, task_box)))
            if first is None:
                first = t
            if done > end_all:
                end_all = done
            if end > end_all:  # (a read whose issue cost outlasts its latency holds its pipe past its data)
                end_all = end
        if kept:
            self.residency.leave(kept, ready)
        issue_done = first if pipelined and first is not None else end_all
        return issue_done, end_all, spans

    def _cross_unit_read(self) -> None:
        """A data-parallel task read GM data another core's or unit's task wrote: a handoff that pays no flag
        latency here (L_chan is charged on channels only), which the run's notes say; no need to look further."""
        self.cross_unit_reads = True
        self._gm_writers = None

    def _pool(self, core: int, unit: str, buffer: Buffer) -> BufferPool:
        key = (core, unit, buffer)
        pool = self.pools.get(key)
        if pool is None:  # what on-chip state reserved there is not the kernels' to take
            room = self.machine.buffer_bytes(buffer) - self.residency.reserved_bytes(key)
            pool = self.pools[key] = BufferPool(f"{buffer} of core {core} {unit}", room)
        return pool

    def _capacity_error(self, task: Task, lane: str, core: int, unit: str, buffer: Buffer, pool: BufferPool,
                        nbytes: int, ins: Instr) -> CapacityError:
        need = pool.open_bytes() + nbytes
        cap = self.machine.buffer_bytes(buffer)
        reserved = self.residency.describe((core, unit, buffer))
        who = f"process '{lane}'" if self.placement is not None else f"task {task.id}"
        op = f" at `{ins.op}`" if ins.op is not None else ""
        # the reorder or smaller tile compile() would suggest, worked out in the room the on-chip state leaves, else
        # the state to cut: each one checked to fit (capacity.fix_in_room)
        fix = fix_in_room(task, self.machine, buffer, self.residency.state_of(core, self.last_aiv),
                          self.residency.resident_of(task), self._siblings(task, core, unit))
        return CapacityError(
            f"kernel '{task.kernel}' ({who}, core {core}) needs {need} bytes of {buffer} at once{op}, but the "
            f"{buffer} of {unit} holds {bytes_text(cap)}{reserved}.", hint=fix,
            where=ins.op.loc if ins.op is not None else task.loc, context=f"kernel '{task.kernel}'", locate=False)


    def _siblings(self, task: Task, core: int, unit: str) -> list[tuple[str, KernelIR, Any]]:
        """The other traced kernels that run on ``unit`` of ``core`` (a pipeline's processes placed there; every
        kernel of a data-parallel run), as (name, IR, on-chip parameters): a capacity hint that cuts the on-chip
        state makes room for all of them."""
        if self.workload is None:
            return []
        if self.placement is None:
            nodes = [node for node in walk(self.workload) if node.kind is NodeKind.TASK]
        else:
            aiv = int(unit[3:]) if unit.startswith("AIV") else None
            nodes = [node for p in self.workload.fields.get("processes", ())
                     if self.placement.get(p.name) == core
                     and (aiv is None or self.vector_units.get(p.name, 0) == aiv)
                     for node, _ in _task_nodes(p.workload)]
        out: dict[str, tuple[str, KernelIR, Any]] = {}
        for node in nodes:
            kernel = node.kernel
            name = getattr(kernel, "name", None)
            if name is None or name == task.kernel or name in out or node.cycles is not None \
                    or getattr(kernel, "cycles", None) is not None or not hasattr(kernel, "ir_for"):
                continue
            try:
                ir = kernel.ir_for(node.resources or {})
            except PtortError:  # (Constexpr values that depend on the token: not known before its launch)
                continue
            out[name] = (name, ir, self.residency.resident_of_node(node.resources))
        return list(out.values())


# the dispatch policies whose key function decides which cores a data-parallel run uses
_KEYED = ("affinity", "hash", "dispatch_by")


def _keyed_block_ranks(workload: Workload) -> dict[int, int]:
    """Each core's place in the block dispatch order of a data-parallel run whose cores a key function picks
    (``affinity``, ``hash``, ``dispatch_by``, ``streams(n).stream_by``): the blocks, one per core used, go out in
    core order (NPU_MODEL §3.5), so a run on cores 7 and 21 starts them at the first and second dispatch. The keys
    are read before any task runs, through the run's ``placement.Dispatch``: the runner's (``run_dispatch``), whose
    dealer then takes the cores read, so each key function is called once a task. Empty (ranks = core indices) when
    every core is used, and for round robin, ``streams(n)`` in turn and work stealing, which use cores 0..k-1."""
    sched = workload.schedule
    policy = sched.dispatch
    keyed = policy.kind in _KEYED if policy is not None else sched.stream_by is not None and bool(sched.stream_count)
    if not keyed or is_work_stealing(sched):
        return {}
    used = run_dispatch(workload, lambda: enumerate_tasks(workload) if uses_slots(workload)
                        else stream_tasks(workload)).used_cores()
    return {} if used is None else {core: rank for rank, core in enumerate(sorted(used))}


def _task_nodes(body: Any, channel: Any = None, into: bool = False) -> Iterator[tuple[Workload, bool]]:
    """Every task node of a process body (built once with a symbolic token), with whether it is sent into
    ``channel``."""
    if not isinstance(body, Workload):
        return
    if body.kind is NodeKind.TASK:
        yield body, into
        return
    into = into or any(c is channel for c in body.uses("sends"))
    for child in body.children():
        yield from _task_nodes(child, channel, into)


def _slot_bytes(body: Any, channel: Any) -> int:
    """Bytes of the tiles written by the kernels a process sends into ``channel`` (any of its kernels if it
    sends bare tokens)."""
    sent: list[int] = []
    every: list[int] = []
    for node, into in _task_nodes(body, channel):
        sig = getattr(node.kernel, "signature", None)
        b = sum(t.nbytes for d, t in sig.values()
                if d in (Direction.OUT, Direction.INOUT) and isinstance(t, TileType)) if sig else 0
        every.append(b)
        if into:
            sent.append(b)
    return max(sent or every or [0])
