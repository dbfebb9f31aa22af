"""Where a run keeps on-chip state, and the buffer room it reserves for it (NpuRun's part for issue 12).

On-chip state is an on-chip tensor (``Tensor(location=Location.UB | L1 | L0C)``, Ascend C's ``TBuf``) or the buffer
slots of a tile channel (``Channel(tile=...)``, Ascend C's ``TQue``) whose producer and consumer share a buffer: one
core, and the same AIV (slots in that AIV's UB) or both on the AIC (slots in L1). Any other tile channel is a ring
of ``depth`` tiles in global memory, priced as GM writes and reads of its slots' addresses (reused item after item).

Each (core, unit) that uses an on-chip tensor keeps its own copy, so its bytes are reserved in that unit's buffer for
the whole run, before the kernels' own tiles; so are the slots of an on-chip tile channel. A pipeline reserves
everything when the run starts (placement says who uses what); a data-parallel core reserves a tensor when its first
task using it runs. Over capacity is a CapacityError naming the buffer, the bytes, each tensor or channel with the line
it was made on, and a fix.

Across tasks, the last write of each resident tile (per (core, unit) copy) is remembered, so a data-parallel core that
issues its next task early still reads the value the previous task wrote. A data-parallel task that reads a UB tile
only another AIV of its core wrote is refused (``on_chip.UnitWrites``): its own AIV's copy was never written; and one
that reads a tile whose other copies were written with values no task there reads is refused at the run's end
(``on_chip.CopyFlows``). A pipeline is checked when placed for a copy read where no process writes it
(``_check_shared``), and at the run's end for a read of one copy that surely follows another copy's writes no task
there read (``on_chip.PipelineFlows``: ordered through channels and events, not by timing).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, NamedTuple

from ..dsl.tree import NodeKind, walk
from ..dsl.types import Direction, Tensor, TensorView
from ..dsl.workload import Task, Workload
from ..errors import CapacityError, PtortValueError, SourceLocation
from .lowering import AIC, Plan
from .machine import Buffer, bytes_text
from .numerics import tensor_label
from .on_chip import BUFFER_OF, UnitWrites, direction_of, dispatched_cores, normalised, on_chip_bases, unit_of

if TYPE_CHECKING:
    from .npu_run import NpuRun

Placed = tuple[tuple[str, Buffer, Tensor, tuple[int, ...]], ...]  # (parameter, buffer, tensor, index) per argument
PoolKey = tuple[int, str, Buffer]  # (core, unit, buffer)


_UB: Final = Buffer.UB  # (a module constant: compiled, ``Buffer.UB`` is an attribute lookup per use)
_AIV_NAMES: Final = tuple(f"AIV{k}" for k in range(8))  # an AIV's unit name, made once


class Reservation(NamedTuple):
    """Room on-chip state takes in one buffer for the whole run."""

    what: str  # "tensor 'acc' f32[128, 128]" / "tile channel 'qin' (2 x f32[64,64])"
    nbytes: int
    loc: SourceLocation | None  # where it was made
    user: str  # who uses it: "process 'compute'" / "core 3's tasks"
    depth: int = 0  # a tile channel's depth (0 for a tensor)
    slot_bytes: int = 0  # and one slot's bytes


class Residency:
    """One run's on-chip state: which tensors stay in which buffer, what is reserved where, and the last write of
    each resident tile."""

    def __init__(self, run: NpuRun) -> None:
        self.run = run
        self.buffers: dict[int, Buffer] = {}  # id(tensor) -> its buffer, for tensors this run keeps on chip
        self.reserved: dict[PoolKey, list[Reservation]] = {}
        self._reserved_for: set[tuple[int, int, str]] = set()  # (id(tensor), core, unit) already reserved
        self._ready: dict[tuple[int, str, int, tuple[int, ...]], tuple[int, str, int]] = {}  # last write per copy
        self._writes = UnitWrites()  # the UB tiles each AIV of a data-parallel core wrote

    # -- set-up ------------------------------------------------------------------------------------------------------
    def find(self, workload: Workload) -> None:
        """Note the on-chip tensors the workload's tasks use (tile channels are placed by ``place_pipeline``)."""
        self._writes.cores = dispatched_cores(workload)  # (a data-parallel run's: its AIV error's hint names them)
        for base in on_chip_bases(workload):
            if base.on_chip:
                self.buffers[id(base)] = BUFFER_OF[base.location]

    def place_pipeline(self, workload: Workload, placement: dict[str, int]) -> None:
        """Keep on chip the tile channels whose two ends share a buffer, and reserve their slots and every on-chip
        tensor on the (core, unit) of each process that uses it."""
        procs = list(workload.fields.get("processes", ()))
        ends = _channel_ends(procs)
        for ch in workload.fields.get("channels", ()):
            if ch.tile is not None:
                self._place_channel(ch, ends.get(id(ch), ([], [])), placement)
        uses: dict[int, tuple[Tensor, dict[tuple[int, str], list[tuple[Any, bool, bool, Any]]]]] = {}
        for p in procs:
            core, aiv = placement[p.name], self.run.vector_units.get(p.name, 0)
            for node in _task_nodes(p.workload):
                for pname, view in _named_views(node.resources):
                    base = view.base
                    if not base.on_chip:
                        continue
                    unit = unit_of(base, aiv)
                    direction = direction_of(node.kernel, pname)
                    uses.setdefault(id(base), (base, {}))[1].setdefault((core, unit), []).append(
                        (p, direction in (Direction.IN, Direction.INOUT), direction in _WRITES, node))
                    self.reserve_tensor(base, core, unit, f"process '{p.name}'", check=False)
        for base, copies in uses.values():
            _check_shared(base, copies)
        for key in sorted(self.reserved, key=str):  # checked once all are in: the error lists every part
            core, unit, buffer = key
            capacity = self.run.machine.buffer_bytes(buffer)
            if sum(r.nbytes for r in self.reserved[key]) > capacity:
                raise _over_capacity(core, unit, buffer, self.reserved[key], capacity)

    def _place_channel(self, ch: Any, ends: tuple[list[Any], list[Any]], placement: dict[str, int]) -> None:
        producers, consumers = ends
        cores = {placement[p.name] for p in producers + consumers}
        if len(cores) != 1 or not self.run.channel_stays_on_chip(producers, consumers):
            return  # a ring in global memory
        place = self._slot_buffer(producers, consumers)
        if place is None:
            return  # only pinned tasks use it: nothing is priced
        unit, buffer = place
        core = cores.pop()
        ring = ch.item.base
        self.buffers[id(ring)] = buffer
        users = " and ".join(f"'{p.name}'" for p in producers + consumers)
        slot = self.run.machine.aligned_bytes(ch.tile.nbytes)  # each slot starts on an aligned address
        self._reserve(core, unit, buffer, id(ring),
                      Reservation(f"tile channel '{ch.name}' ({ch.depth} x {ch.tile})", ch.depth * slot,
                                  ch.loc, f"processes {users}", ch.depth, slot), check=False)

    def _slot_buffer(self, producers: list[Any], consumers: list[Any]) -> tuple[str, Buffer] | None:
        """(unit, buffer) of an on-chip tile channel's slots: the UB of the AIV both ends use, else the AIC's L1."""
        made = frozenset().union(*(self.run.units_placed(p) for p in producers))
        used = frozenset().union(*(self.run.units_placed(p) for p in consumers))
        for units in (made & used, made | used):
            for unit in sorted(units):
                if unit != AIC:
                    return unit, Buffer.UB
            if AIC in units:
                return AIC, Buffer.L1
        return None

    # -- reservations ------------------------------------------------------------------------------------------------
    def reserve_tensor(self, base: Tensor, core: int, unit: str, user: str, check: bool = True) -> None:
        """Reserve an on-chip tensor in the buffer of (core, unit), once per run (``check``: as ``_reserve``)."""
        if (id(base), core, unit) in self._reserved_for:
            return
        label = f"'{base.name}' " if base.name else ""
        nbytes = self.run.machine.aligned_bytes(base.nbytes())
        self._reserve(core, unit, BUFFER_OF[base.location], id(base),
                      Reservation(f"tensor {label}{base.dtype.value}{list(base.shape)}", nbytes, base.loc, user), check)

    def _reserve(self, core: int, unit: str, buffer: Buffer, key: int, item: Reservation, check: bool = True) -> None:
        """Reserve ``item``; ``check``: refuse it now if the buffer overflows (a pipeline's are checked together once
        all are in, by ``place_pipeline``)."""
        self._reserved_for.add((key, core, unit))
        items = self.reserved.setdefault((core, unit, buffer), [])
        items.append(item)
        capacity = self.run.machine.buffer_bytes(buffer)
        if check and sum(r.nbytes for r in items) > capacity:
            raise _over_capacity(core, unit, buffer, items, capacity)
        pool = self.run.pools.get((core, unit, buffer))
        if pool is not None:  # a data-parallel core's first use, after its tasks took room: less from now on
            pool.capacity_bytes -= item.nbytes

    def reserved_bytes(self, key: PoolKey) -> int:
        """Bytes of on-chip state reserved in (core, unit, buffer)."""
        return sum(r.nbytes for r in self.reserved.get(key, ()))

    def describe(self, key: PoolKey) -> str:
        """What is reserved in (core, unit, buffer), for a kernel's capacity error ("" when nothing)."""
        items = self.reserved.get(key)
        if not items:
            return ""
        return (f", {sum(r.nbytes for r in items)} of them reserved for on-chip state ("
                + ", ".join(f"{r.what} {r.nbytes} B" for r in items) + ")")

    def state_of(self, core: int, aiv: int) -> dict[Buffer, list[Reservation]]:
        """What is reserved in each buffer a task on ``core`` whose vector work runs on AIV ``aiv`` uses (its UB is
        that AIV's, the others the AIC's): the room a kernel's capacity fix has to fit (``capacity.fix_in_room``)."""
        return {b: list(self.reserved.get((core, f"AIV{aiv}" if b is Buffer.UB else AIC, b), ())) for b in Buffer}

    def resident_of(self, task: Task) -> tuple[tuple[str, Buffer], ...]:
        """(parameter, buffer) of each argument of ``task`` kept on chip, sorted: how the run lowers its kernel."""
        return tuple(sorted((name, buffer) for name, buffer, _, _ in self.placed(task))) if self.buffers else ()

    def resident_of_node(self, resources: Any) -> tuple[tuple[str, Buffer], ...]:
        """``resident_of`` for a task node's resources (a process body's, built once with a symbolic token)."""
        buffers = self.buffers
        return tuple(sorted((name, buffers[id(v.base)]) for name, v in _named_views(resources)
                            if id(v.base) in buffers))

    def tensors_of(self, resources: Any) -> tuple[tuple[str, Buffer], ...]:
        """(parameter, buffer) of a task node's on-chip tensor arguments, as a plan key: the units a process uses
        follow from its kernels lowered with them resident (a tile-channel item counts as in GM there: whether its
        slots stay on chip depends on those units)."""
        return tuple(sorted((name, BUFFER_OF[v.base.location]) for name, v in _named_views(resources)
                            if v.base.on_chip))

    # -- per task ----------------------------------------------------------------------------------------------------
    def placed(self, task: Task) -> Placed:
        """(parameter, buffer, tensor, index) of each argument of ``task`` kept on chip in this run."""
        res = task.resources
        if not isinstance(res, dict):
            return ()
        buffers = self.buffers
        out = []
        for name, v in res.items():  # (a loop: once per task, each view's base read once)
            if isinstance(v, TensorView):
                base = v.base
                buffer = buffers.get(id(base))
                if buffer is not None:
                    out.append((name, buffer, base, tuple(v.index)))
        return tuple(out)

    def enter(self, task: Task, placed: Placed, plan: Plan, core: int, aiv: int,
              ready: list[tuple[int, str, int] | None]) -> list[tuple[int, Any]]:
        """Before ``task``'s instructions: reserve what its core uses for the first time, and start each resident
        tile's slot from its last write (``ready``: slot -> last write). Returns (slot, copy) pairs for ``leave``."""
        kept = []
        vector_unit = _AIV_NAMES[aiv] if 0 <= aiv < len(_AIV_NAMES) else f"AIV{aiv}"
        reserved_for = self._reserved_for
        for name, buffer, base, index in placed:
            slot = plan.resident.get(name)
            if slot is None:
                continue
            unit = vector_unit if buffer is _UB else AIC
            # (reserve_tensor's own once-per-copy test first: the user text is built only for a first reservation)
            if (id(base), core, unit) not in reserved_for and base.on_chip:
                self.reserve_tensor(base, core, unit, f"core {core}'s tasks")
            copy = (core, unit, id(base), normalised(index, base.shape))  # (S[-1] is the tile S[n - 1] is)
            last = self._ready.get(copy)
            if last is not None:
                ready[slot] = last
            elif unit != AIC and self.run.placement is None:  # this AIV's copy of the tile was never written here
                self._writes.touch(task, name, base, index, core, unit)
            kept.append((slot, copy))
        return kept

    def leave(self, kept: list[tuple[int, Any]], ready: list[tuple[int, str, int] | None]) -> None:
        """After ``task``'s instructions: remember each resident tile's last write (``ready``: slot -> its last
        write, None when the task wrote none)."""
        for slot, copy in kept:
            last = ready[slot]
            if last is not None:
                self._ready[copy] = last


_WRITES = (Direction.OUT, Direction.INOUT)


def _channel_ends(procs: list[Any]) -> dict[int, tuple[list[Any], list[Any]]]:
    """id(channel) -> (its producers, its consumers), each in the order of ``procs`` and once per process: found in
    one pass, since a pipeline of many stages has as many channels (asking each channel of every process is
    quadratic)."""
    ends: dict[int, tuple[list[Any], list[Any]]] = {}
    for p in procs:
        for side, chans in ((0, p.produces), (1, p.consumes)):
            for key in dict.fromkeys(id(c) for c in chans):  # (a channel listed twice: the process once)
                ends.setdefault(key, ([], []))[side].append(p)
    return ends


def _task_nodes(body: Any) -> list[Any]:
    return [n for n in walk(body) if n.kind is NodeKind.TASK] if isinstance(body, Workload) else []


def _named_views(resources: Any) -> list[tuple[str, TensorView]]:
    pairs = resources.items() if isinstance(resources, dict) else enumerate(resources or ())
    return [(str(k), v) for k, v in pairs if isinstance(v, TensorView)]


def _check_shared(base: Tensor, copies: dict[tuple[int, str], list[tuple[Any, bool, bool, Any]]]) -> None:
    """A process that reads an on-chip tensor on a (core, unit) whose copy nobody writes, while another process
    writes it elsewhere, would never see those values: each (core, unit) has its own copy."""
    written = {place: [p for p, _, w, _ in users if w] for place, users in copies.items()}
    writers = [(place, ps[0]) for place, ps in written.items() if ps]
    if not writers:
        return
    for place, users in copies.items():
        if written[place]:
            continue
        reader = next(((p, node) for p, r, _, node in users if r), None)
        if reader is None:
            continue
        (wcore, wunit), writer = writers[0]
        label = tensor_label(base)
        raise PtortValueError(
            f"on-chip tensor {label} is written by process '{writer.name}' (core {wcore}, {wunit}) but read by "
            f"process '{reader[0].name}' on core {place[0]}, {place[1]}, whose copy no process writes: each (core, "
            "unit) keeps its own copy of an on-chip tensor, so it would read its own untouched copy.",
            hint=f"Place '{reader[0].name}' with '{writer.name}' (same core and unit: they share the copy), pass the "
                 "values through a tile channel (Channel(tile=...)), or make the tensor a global-memory Tensor.",
            where=reader[1].loc, locate=reader[1].loc is None)


def _over_capacity(core: int, unit: str, buffer: Buffer, items: list[Reservation], capacity: int) -> CapacityError:
    """On-chip state that does not fit one buffer: every part with its line, and a fix for the largest."""
    total = sum(r.nbytes for r in items)
    parts = "; ".join(f"{r.what}: {r.nbytes} B, made at {r.loc if r.loc is not None else '?'}, used by {r.user}"
                      for r in items)
    big = max(items, key=lambda r: r.nbytes)
    fix = _depth_fix(items, big, capacity, total)
    if fix is None and big.depth:
        fix = f"give {big.what.split(' (')[0]} a smaller tile"
    elif fix is None:
        room = capacity - (total - big.nbytes)
        fix = (f"make {big.what} at most {room} bytes (it has {big.nbytes})" if room > 0
               else f"make {big.what} smaller")
    return CapacityError(
        f"on-chip state on core {core} needs {total} bytes of {buffer} but the {buffer} of {unit} holds "
        f"{bytes_text(capacity)}: {parts}.",
        hint=f"On-chip state is reserved for the whole run, before the kernels' own tiles: {fix}, keep less state "
             "on chip (a global-memory Tensor), or spread the processes over more cores.",
        where=big.loc, locate=big.loc is None)


def _depth_fix(items: list[Reservation], big: Reservation, capacity: int, total: int) -> str | None:
    """The tile-channel depths at which the state fits (None: no depth does). First the largest channel alone (with
    the channels made at its line at its depth: one Channel(...) call in a loop or a list takes one depth, so
    changing that line changes them all), else every tile channel there at one depth."""
    channels = [r for r in items if r.depth]
    groups = []
    if big.depth:
        same = [r for r in channels if r.depth == big.depth and r.loc is not None and r.loc == big.loc]
        groups.append((same if len(same) > 1 else [big], " (made at the same line)" if len(same) > 1 else ""))
    if len(channels) > 1:
        groups.append((channels, " each"))
    for group, note in groups:
        fits = (capacity - (total - sum(r.nbytes for r in group))) // sum(r.slot_bytes for r in group)
        if fits >= 1:  # that depth fills the buffer: the kernels placed there need room for their own tiles too
            names = ", ".join(r.what.split(" (")[0] for r in group)
            return (f"give {names}{note} depth {fits} or less (less still, to leave the kernels placed there room "
                    "for their own tiles)")
    return None


__all__ = ["Residency", "Reservation", "Placed"]
