"""Capacity at definition time: when a workload is compiled, refuse a kernel whose live tiles cannot fit a buffer of
the core, and say how to fix it; and the same fix for a run that meets the overflow itself (``fix_in_room``).

Each launch site (task node) whose kernel can be traced from its static arguments is lowered as a run lowers it,
and its peak per buffer (``lowering.buffer_peaks``) is compared with the buffer's size. A peak over the size is
exactly the CapacityError a run of that kernel would raise (one task's allocations are all that can be held when it
takes one), so nothing that runs is refused; only a launch the run never reaches (a ``P.when`` that never holds) is
refused earlier than before. Launches with on-chip state (on-chip tensors, tile-channel slots) are left to the run,
which lowers them with that state resident and reserves its room per placement (``residency``); when one of them
overflows, ``fix_in_room`` works the fix out for the room the state leaves.

The fix offered is, in this order:

1. a reorder: a tile made before the peak but first used after it (the running output O loaded before the scores
   are cast to P) is moved to just before its first use, and the kernel lowered again; up to three such moves;
2. else the largest tile that fits: the rows (or columns) of the launch's largest tile scaled down, in steps of 16,
   together with every dimension the kernel's ops tie to them (``_tied_dims``: a matmul's K on both operands, an
   elementwise op's operands and result, ...) and no other, the largest that fits. Each offer is checked, not
   assumed: the scaled kernel is re-recorded op by op through tl.* (``_retraces``: the checks a trace applies) and
   lowered again (its peaks must fit); a size the ops fix (a slice window, a concat, tl.iota_u32) is never scaled.
   When no such tile fits, the hint says so.
"""
from __future__ import annotations

import linecache
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any, Callable, NamedTuple

from ..dsl import tl
from ..dsl.expr import is_symbolic
from ..dsl.ir import COL_REDUCE, ROW_REDUCE, UNARY, KernelIR, KernelParam, KernelTrace, Op, OpKind, Value, tracing
from ..dsl.kernel import Kernel
from ..dsl.tree import NodeKind, Workload, walk
from ..dsl.types import TensorView, TileType
from ..errors import CapacityError, PtortError, SourceLocation, is_user_file
from .lowering import AIC, Peak, Plan, buffer_peaks, lower
from .machine import Buffer, Machine, bytes_text

MAX_MOVES = 3  # reorders tried one after the other before a smaller tile is suggested
Resident = tuple[tuple[str, Buffer], ...]  # the kernel parameters a task keeps on chip, and their buffers


@dataclass(frozen=True)
class Overflow:
    """What a kernel's lowering overflows (the first buffer over its size, by the order of ``Buffer``) and how to
    fix it: the error text without the launch."""

    buffer: Buffer
    peak: Peak
    capacity: int
    op: Op | None
    what: str
    hint: str


@dataclass(frozen=True)
class _Budget:
    """The room a kernel's own tiles have in each buffer (the buffer's size, less the on-chip state reserved there
    in a run), and the parameters a run keeps on chip (lowered resident; their sizes are the state's, not the
    kernel's to change)."""

    machine: Machine
    rooms: tuple[tuple[Buffer, int], ...]
    resident: Resident = ()

    @staticmethod
    def of(machine: Machine, reserved: Mapping[Buffer, int] | None = None, resident: Resident = ()) -> _Budget:
        reserved = reserved or {}
        return _Budget(machine, tuple((b, machine.buffer_bytes(b) - reserved.get(b, 0)) for b in Buffer), resident)

    def room(self, buffer: Buffer) -> int:
        return dict(self.rooms)[buffer]

    def lower(self, ir: KernelIR) -> Plan:
        return lower(ir, self.machine, self.resident)

    def over(self, plan: Plan) -> list[Peak]:
        """The peaks of ``plan`` over their buffer's room, in Buffer order."""
        peaks = buffer_peaks(plan)
        return [peaks[b] for b, room in self.rooms if b in peaks and peaks[b].bytes > room]

    def worst(self, plan: Plan) -> float:
        """How far the plan's worst buffer is over its room (a ratio; <= 1 fits)."""
        rooms = dict(self.rooms)
        return max((p.bytes / rooms[b] if rooms[b] > 0 else float("inf") for b, p in buffer_peaks(plan).items()),
                   default=0.0)


# (id(ir), machine) -> (ir, its overflow or None): a kernel is checked once per machine, whatever compiles it.
_VERDICTS: dict[tuple[int, Machine], tuple[KernelIR, Overflow | None]] = {}
_MAX_VERDICTS = 4096


def check_capacity(workload: Workload, machine: Machine, plan_of: Any = None) -> None:
    """Raise CapacityError for the first launch in ``workload`` whose kernel cannot fit ``machine``'s buffers."""
    graph = workload.schedule.graph
    if graph is not None and graph.trace.kind == "cycles" and graph.trace.fn is not None:
        return  # TracePolicy.cycles prices the unpinned tasks: no kernel is lowered
    seen: set[int] = set()
    for node in walk(workload):
        if node.kind is not NodeKind.TASK:
            continue
        ir = _static_ir(node)
        if ir is None or id(ir) in seen:
            continue
        seen.add(id(ir))
        overflow = kernel_overflow(ir, machine, plan_of)
        if overflow is not None:
            defined = _library_kernel(node.kernel)
            if defined is None:
                raise _error(overflow, ir, node.loc)
            # Its ops were recorded at the user's line that traced it (a library's lines are never "the user's"):
            # the message names them without lines, and the kernel at its own def line.
            unlined = _unlined(ir)
            plan = plan_of(unlined) if plan_of is not None else lower(unlined, machine)
            raise _error(_overflow(unlined, plan, _Budget.of(machine)) or overflow, ir, node.loc, defined)


def _static_ir(node: Workload) -> KernelIR | None:
    """The IR every task of this launch runs, when it is known before the run (else None: a run prices it)."""
    kernel = node.kernel
    if not isinstance(kernel, Kernel) or node.cycles is not None or kernel.cycles is not None:
        return None
    resources = node.resources if isinstance(node.resources, dict) else {}
    if any(is_symbolic(resources.get(name)) for name in kernel.constexpr_params):
        return None  # a Constexpr given by a loop expression: one IR per value
    if any(_on_chip(view) for view in resources.values()):
        return None  # on-chip state lowers differently and reserves room per placement: the run checks it
    try:
        return kernel.ir_for(resources)
    except PtortError:  # a missing Constexpr and the like: the launch itself reports it
        return None


def _task_ir(task: Any) -> KernelIR | None:
    """The IR ``task`` runs, when it is a traced kernel's task (else None)."""
    kernel = getattr(task, "kernel_ref", None)
    if not isinstance(kernel, Kernel):
        return None
    try:
        return kernel.ir_for(task.resources if isinstance(task.resources, dict) else {})
    except PtortError:
        return None


def fix_for(task: Any, machine: Machine) -> str | None:
    """The fix compile() offers for ``task``'s kernel on ``machine`` (for a run that meets the overflow itself, not
    having been compiled), or None when its plain lowering fits."""
    ir = _task_ir(task)
    if ir is None:
        return None
    overflow = kernel_overflow(ir, machine)
    return overflow.hint if overflow is not None else None


Sibling = tuple[str, KernelIR, Resident]  # another kernel placed on the same unit: its name, IR and on-chip params


def fix_in_room(task: Any, machine: Machine, buffer: Buffer, state: Mapping[Buffer, Sequence[Any]] | None = None,
                resident: Resident = (), siblings: Sequence[Sibling] = ()) -> str:
    """The hint of a run's CapacityError: ``task``'s kernel overflows ``buffer`` once the on-chip state ``state``
    (the ``residency.Reservation``s in each buffer the task uses) has taken its room, lowered with the parameters
    ``resident`` kept on chip, as the run lowers it. Every fix it names is checked to fit: a reorder or a smaller
    tile of the kernel in the room the state leaves (as compile() finds them), else state smaller by what the
    kernel's peak needs (one depth for the tile channels made at one line, an on-chip tensor's bytes); when none is
    found it says so. ``siblings`` are the other kernels placed on the same unit (a pipeline's processes sharing the
    AIV or AIC): cutting the state makes room for the hungriest of them too, so one step of the hint is enough."""
    state = state or {}
    reserved = {b: sum(r.nbytes for r in items) for b, items in state.items()}
    budget = _Budget.of(machine, reserved, resident)
    room = budget.room(buffer)
    items = list(state.get(buffer, ()))
    ir = _task_ir(task)
    plan = budget.lower(ir) if ir is not None else None
    over = budget.over(plan) if plan is not None else []
    if ir is None or plan is None or not over:  # not a kernel traced here, or its lowering fits: only the room is known
        return (f"Make the kernel's tiles live at once fit the {room} bytes of {buffer} it has, or split the kernel "
                "into smaller steps" + (", or keep less state on chip." if items else "."))
    kernel_fix = _fix(ir, plan, over[0], budget)
    if not items:
        return kernel_fix.text
    held = buffer_peaks(plan).get(buffer)
    peak = held.bytes if held is not None else 0
    need, hungriest = peak, ""
    for name, sibling, sibling_resident in siblings:  # (the state's room is what each of them needs as well)
        at = buffer_peaks(lower(sibling, machine, sibling_resident)).get(buffer)
        if at is not None and need < at.bytes <= machine.buffer_bytes(buffer):
            need, hungriest = at.bytes, name
    state_fix = _state_fix(items, need - room, machine) if room < need <= machine.buffer_bytes(buffer) else None
    head = (f"The on-chip state reserved in {buffer} ({sum(r.nbytes for r in items)} bytes) leaves the kernel's own "
            f"tiles {room} bytes, and at its peak the kernel holds {peak} bytes there at once"
            + (f", and kernel '{hungriest}' on the same unit {need}" if hungriest else "") + ". ")
    if kernel_fix.fits:
        return head + kernel_fix.text + (f" Or keep the kernel as it is and {state_fix}." if state_fix else "")
    if state_fix is not None:
        return head + f"Keep the kernel as it is and {state_fix}, or keep less state on chip."
    return (head + "Neither a smaller tile nor a smaller part of this state alone makes it fit: keep less state on "
            "chip, or split the kernel into smaller steps.")


def _state_fix(items: Sequence[Any], short: int, machine: Machine) -> str | None:
    """How to make the on-chip state ``items`` (Reservations) ``short`` bytes smaller with one change: the depth of
    the tile channels made at one line, else an on-chip tensor's bytes (the largest part first); None when no one
    part can give so much and keep something. Checked by the arithmetic of the reservation itself: a channel reserves
    depth x slot bytes, a tensor its bytes in whole ``transfer_align_bytes`` blocks."""
    grain = machine.transfer_align_bytes
    for part in sorted(_parts(items), key=lambda part: -sum(r.nbytes for r in part)):
        first = part[0]
        if first.depth:  # the part's channels go down together: their slots together must give ``short``
            depth = first.depth - -(-short // sum(r.slot_bytes for r in part))
            if depth >= 1:
                return _depth_text(part, depth)
        else:
            most = (first.nbytes - short) // grain * grain
            if most >= 1:
                return f"make {first.what} at most {most} bytes (it has {first.nbytes})"
    return None


def _parts(items: Sequence[Any]) -> list[list[Any]]:
    """The parts of the state one change resizes: the tile channels made at one line with one depth together (one
    Channel(...) call in a loop or a list gives them all its depth, as ``residency`` groups them), each other
    reservation alone."""
    parts: list[list[Any]] = []
    made: dict[tuple[SourceLocation, int], list[Any]] = {}
    for r in items:
        if not r.depth or r.loc is None:
            parts.append([r])
        elif (r.loc, r.depth) in made:
            made[(r.loc, r.depth)].append(r)
        else:
            parts.append(made.setdefault((r.loc, r.depth), [r]))
    return parts


def _depth_text(channels: list[Any], depth: int) -> str:
    names = ", ".join(r.what.split(" (")[0] for r in channels)
    if len(channels) == 1:
        return f"give {names} depth {depth} or less (it has {channels[0].depth})"
    return (f"give {names} (made at the same line, {channels[0].loc}) depth {depth} or less (they have "
            f"{channels[0].depth})")


def _on_chip(view: Any) -> bool:
    """Whether a task argument is on-chip state (an on-chip tensor, or a tile channel's buffer slot)."""
    base = getattr(view, "base", None) if isinstance(view, TensorView) else None
    return base is not None and (bool(getattr(base, "on_chip", False)) or getattr(base, "ring_of", None) is not None)


def kernel_overflow(ir: KernelIR, machine: Machine, plan_of: Any = None) -> Overflow | None:
    """The first buffer ``ir`` overflows on ``machine`` and the fix, or None when it fits (cached)."""
    key = (id(ir), machine)
    hit = _VERDICTS.get(key)
    if hit is not None and hit[0] is ir:
        return hit[1]
    plan = plan_of(ir) if plan_of is not None else lower(ir, machine)
    overflow = _overflow(ir, plan, _Budget.of(machine))
    if len(_VERDICTS) >= _MAX_VERDICTS:
        _VERDICTS.clear()
    _VERDICTS[key] = (ir, overflow)
    return overflow


def _overflow(ir: KernelIR, plan: Plan, budget: _Budget) -> Overflow | None:
    over = budget.over(plan)
    if not over:
        return None
    peak = over[0]
    machine = budget.machine
    cap = machine.buffer_bytes(peak.buffer)
    at = plan.instrs[peak.at]
    unit = "the AIC" if at.unit == AIC else "an AIV"
    where = ""
    if at.op is not None:
        where = f" at `{at.op}`" + (f" (line {at.op.loc.lineno})" if at.op.loc is not None else "")
    what = (f"kernel '{ir.name}' cannot fit {machine.name}'s buffers: it needs {peak.bytes} bytes of {peak.buffer} "
            f"at once{where}, but the {peak.buffer} of {unit} holds {bytes_text(cap)}. Live there: "
            f"{_live_text(plan, peak)}.")
    return Overflow(peak.buffer, peak, cap, at.op, what, _fix(ir, plan, peak, budget).text)


def _live_text(plan: Plan, peak: Peak) -> str:
    """``exp (line 14) 131072 B, load o (line 12) 65536 B``: the tile each live allocation holds at the peak."""
    holder: dict[int, Op | None] = {}
    for ins in plan.instrs[:peak.at + 1]:
        if ins.write >= 0 and ins.write < len(plan.slot_alloc) and plan.slot_alloc[ins.write] in peak.live:
            holder[plan.slot_alloc[ins.write]] = ins.op
    parts = []
    for a in sorted(peak.live, key=lambda a: -plan.allocs[a].bytes):
        op = holder.get(a)
        name = f"`{op}`" + (f" (line {op.loc.lineno})" if op.loc is not None else "") if op is not None else "a tile"
        parts.append(f"{name} {plan.allocs[a].bytes} B")
    return ", ".join(parts)


def _error(overflow: Overflow, ir: KernelIR, launch: SourceLocation | None,
           defined: SourceLocation | None = None) -> CapacityError:
    """The CapacityError of ``overflow``: at the op's line, or at ``defined`` (a library kernel's def line, whose
    ops have no lines of their own), and launched from ``launch``."""
    op = overflow.op
    if defined is not None:
        at = f" launched from {launch}" if launch is not None else ""
        return CapacityError(overflow.what, hint=overflow.hint, where=defined, context=f"kernel '{ir.name}'{at}",
                             locate=False)
    at = f" launched at {launch}" if launch is not None else ""
    return CapacityError(overflow.what, hint=overflow.hint, where=op.loc if op is not None and op.loc else launch,
                         context=f"kernel '{ir.name}'{at}", locate=False)


def _library_kernel(kernel: Any) -> SourceLocation | None:
    """Where a kernel that is not the user's code (ptort_lab's own, or an installed library's) is defined: its
    ``def`` line; None for the user's kernel (its ops carry their own lines)."""
    code = getattr(getattr(kernel, "fn", None), "__code__", None)
    if code is None:
        return None
    module = getattr(kernel.fn, "__module__", None)
    if is_user_file(code.co_filename, module if isinstance(module, str) else ""):
        return None
    line = code.co_firstlineno
    for n in range(line, line + 20):  # past the decorators
        if linecache.getline(code.co_filename, n).lstrip().startswith(("def ", "async def ")):
            line = n
            break
    text = linecache.getline(code.co_filename, line).split("  #")[0].strip()  # (a trailing comment left out)
    return SourceLocation(code.co_filename, line, code.co_name, text)


def _unlined(ir: KernelIR) -> KernelIR:
    """``ir`` with no op's line: for messages about a kernel whose ops were recorded at another code's line."""
    return KernelIR(ir.name, ir.params, tuple(replace(op, loc=None) for op in ir.ops), ir.constexprs,
                    ir.schedule_hints)


# -- the fix ------------------------------------------------------------------------------------------------------
class _Fix(NamedTuple):
    """A fix's text, and whether it names a change that fits (else the text says that none was found)."""

    text: str
    fits: bool


def _fix(ir: KernelIR, plan: Plan, peak: Peak, budget: _Budget) -> _Fix:
    moves = _reorder(ir, budget)
    if moves is not None:
        at = plan.instrs[peak.at].op
        steps = "; then ".join(_move_text(op, before, at if i == 0 else None) for i, (op, before) in enumerate(moves))
        peaks = buffer_peaks(budget.lower(_moved(ir, moves)))
        now = peaks[peak.buffer].bytes if peak.buffer in peaks else 0
        return _Fix(f"Make tiles only when they are needed: {steps}. The {peak.buffer} peak is then {now} bytes, "
                    "which fits.", True)
    return _smaller_tile(ir, peak, budget)


def _line(op: Op) -> str:
    if op.loc is None:
        return f"`{op}`"
    return f"line {op.loc.lineno} (`{op.loc.code}`)" if op.loc.code else f"line {op.loc.lineno}"


def _move_text(op: Op, before: Op, peak: Op | None) -> str:
    past = f" past the peak at line {peak.loc.lineno}" if peak is not None and peak.loc is not None else ""
    return f"move {_line(op)} down{past} to just before its first use, {_line(before)}"


def _first_use(ops: list[Op], j: int) -> int | None:
    result = ops[j].result
    if result is None:
        return None
    for k in range(j + 1, len(ops)):
        if any(isinstance(x, Value) and x.id == result.id for x in ops[k].operands):
            return k
    return None


def _root_param(ops: list[Op], v: Value) -> str | None:
    """The parameter ``v`` is, or is a slice of."""
    made = {op.result.id: op for op in ops if op.result is not None}
    while v.name is None:
        op = made.get(v.id)
        if op is None or op.kind is not OpKind.SLICE or not isinstance(op.operands[0], Value):
            return None
        v = op.operands[0]
    return v.name


def _movable(ops: list[Op], j: int, k: int) -> bool:
    """Whether op ``j`` may run just before op ``k``: a load must not pass a store into the tile it reads."""
    op = ops[j]
    if op.kind is OpKind.STORE or op.result is None:
        return False
    if op.kind is not OpKind.LOAD or not isinstance(op.operands[0], Value):
        return True
    source = _root_param(ops, op.operands[0])
    for i in range(j + 1, k):
        other = ops[i]
        if other.kind is OpKind.STORE and isinstance(other.operands[0], Value) \
                and _root_param(ops, other.operands[0]) == source:
            return False
    return True


def _moved(ir: KernelIR, moves: list[tuple[Op, Op]]) -> KernelIR:
    """``ir`` with each ``op`` of ``moves`` taken out and put back just before its ``before``."""
    ops = list(ir.ops)
    for op, before in moves:
        ops = [o for o in ops if o is not op]
        at = next(i for i, o in enumerate(ops) if o is before)
        ops.insert(at, op)
    return KernelIR(ir.name, ir.params, tuple(ops), ir.constexprs)



def _reorder(ir: KernelIR, budget: _Budget) -> list[tuple[Op, Op]] | None:
    """Moves (op, the op it goes just before) that make ``ir`` fit, found greedily; None when none do."""
    moves: list[tuple[Op, Op]] = []
    current = ir
    worst = budget.worst(budget.lower(current))
    for _ in range(MAX_MOVES):
        plan = budget.lower(current)
        over = budget.over(plan)
        at = plan.instrs[over[0].at].op if over else None
        ops = list(current.ops)
        peak_i = next((i for i, o in enumerate(ops) if o is at), None)
        if peak_i is None:
            return None
        best: tuple[float, list[tuple[Op, Op]], KernelIR] | None = None
        for j in range(peak_i):
            k = _first_use(ops, j)
            if k is None or k <= peak_i or not _movable(ops, j, k):
                continue
            trial = moves + [(ops[j], ops[k])]
            moved = _moved(current, [(ops[j], ops[k])])
            score = budget.worst(budget.lower(moved))
            if best is None or score < best[0]:
                best = (score, trial, moved)
        if best is None or best[0] >= worst:
            return None
        worst, moves, current = best
        if worst <= 1.0:
            return moves
    return None


# -- a smaller tile -------------------------------------------------------------------------------------------------
Dim = tuple[int, int]  # (value id, axis): one dimension of one tile value of the kernel (axis 0 rows, 1 columns)


def _smaller_tile(ir: KernelIR, peak: Peak, budget: _Budget) -> _Fix:
    """The largest tile (the rows or the columns of the launch's largest tile, scaled down with every dimension
    tied to them) whose kernel still type-checks and fits."""
    tiles = [p for p in ir.params if p.value is not None and isinstance(p.value.type, TileType)]
    if not tiles:
        return _Fix("Split the kernel into smaller steps so fewer tiles are live at once.", False)
    classes = _tied_dims(ir, {name for name, _ in budget.resident})
    # the largest tile parameter with a size that may change (a resident one's is the state's, not the kernel's)
    scalable = [p for p in tiles if p.value is not None and ((p.value.id, 0) in classes or (p.value.id, 1) in classes)]
    big_param = max(scalable or tiles, key=lambda p: p.type.nbytes)
    assert big_param.value is not None
    big: TileType = big_param.value.type  # type: ignore[assignment]
    found = []
    tried: list[frozenset[Dim]] = []
    for axis, size in ((0, big.rows), (1, big.cols)):
        dims = classes.get((big_param.value.id, axis))
        if dims is None or dims in tried:
            continue  # a size the kernel's ops fix, or the one tile dimension both axes are tied to
        tried.append(dims)
        fits = _largest_fitting(ir, budget, dims, size)
        if fits is not None:
            both = (big_param.value.id, 1 - axis) in dims
            shape = (fits, fits) if both else (fits, big.cols) if axis == 0 else (big.rows, fits)
            found.append((shape[0] * shape[1], axis, shape, _dims_text(ir, dims, fits, size)))
    if not found:
        why = (f"no smaller rows or columns of it that keep the kernel's shapes consistent fit {peak.buffer}" if tried
               else "its sizes are fixed by the kernel's ops (a slice window, a concat, tl.slice_even/odd, "
                    "tl.interleave) or kept on chip as state")
        return _Fix(f"Split the kernel into smaller steps so fewer tiles are live at once: no smaller tile than "
                    f"[{big.rows}, {big.cols}] is offered ({why}).", False)
    found.sort(key=lambda f: (-f[0], f[1]))
    texts = [f"[{shape[0]}, {shape[1]}] ({text})" for _, _, shape, text in found]
    return _Fix(f"Use a smaller tile than [{big.rows}, {big.cols}] (no reorder of the kernel's ops makes it fit): "
                "the largest that fits is " + " or ".join(texts) + ".", True)


def _largest_fitting(ir: KernelIR, budget: _Budget, dims: frozenset[Dim], size: int) -> int | None:
    """The largest size < ``size`` (a multiple of 16 when ``size`` is) of the tied dimensions ``dims`` at which the
    kernel still type-checks and fits."""
    step = 16 if size > 16 and size % 16 == 0 else 1
    low, high = 1, (size - 1) // step  # candidates step * n for n in low..high
    best = None
    while low <= high:
        mid = (low + high) // 2
        scaled = _scaled(ir, dims, step * mid)
        if _retraces(scaled) and not budget.over(budget.lower(scaled)):
            best, low = step * mid, mid + 1
        else:
            high = mid - 1
    return best


def _dims_text(ir: KernelIR, dims: frozenset[Dim], new: int, old: int) -> str:
    """``64 rows instead of 128 in a and c``, ``8 instead of 16 in a's columns and b's rows``: which parameters (and
    which sized ops: tl.full, tl.broadcast) change with ``dims``."""
    named: list[tuple[str, list[int]]] = []
    for p in ir.params:
        axes = [axis for axis in (0, 1) if p.value is not None and (p.value.id, axis) in dims]
        if axes:
            named.append((p.name, axes))
    sized = [op for op in ir.ops if op.kind in (OpKind.FULL, OpKind.BROADCAST) and op.result is not None
             and any((op.result.id, axis) in dims for axis in (0, 1))]
    extra = "".join(f" and the tl.{op.kind.value}" + (f" at line {op.loc.lineno}" if op.loc is not None else "")
                    for op in sized)
    axes_used = {axis for _, axes in named for axis in axes}
    if len(axes_used) == 1 and all(len(axes) == 1 for _, axes in named):
        word = "rows" if axes_used == {0} else "columns"
        return f"{new} {word} instead of {old} in {_and([name for name, _ in named])}{extra}"
    parts = [f"{name}'s {' and '.join('rows' if a == 0 else 'columns' for a in axes)}" for name, axes in named]
    return f"{new} instead of {old} in {_and(parts)}{extra}"


def _and(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


class _Union:
    """Union-find over tile dimensions: which must keep one size for the kernel to type-check, and which the
    kernel's ops fix (``frozen``)."""

    def __init__(self) -> None:
        self.parent: dict[Dim, Dim] = {}
        self.frozen: set[Dim] = set()

    def find(self, d: Dim) -> Dim:
        parent = self.parent.setdefault(d, d)
        while parent != d:
            grand = self.parent[parent]
            self.parent[d] = grand
            d, parent = parent, grand
        return d

    def join(self, a: Dim, b: Dim) -> None:
        self.parent[self.find(a)] = self.find(b)


def _tiles(xs: Sequence[Any]) -> list[Value]:
    return [x for x in xs if isinstance(x, Value) and isinstance(x.type, TileType)]


def _size(v: Value, axis: int) -> int:
    t: TileType = v.type  # type: ignore[assignment]
    return t.rows if axis == 0 else t.cols


_SAME_SHAPE = UNARY | {OpKind.LOAD, OpKind.CAST}  # result and operand of one shape
_BROADCASTING = frozenset({OpKind.ADD, OpKind.SUB, OpKind.MUL, OpKind.DIV, OpKind.MAX, OpKind.MIN, OpKind.CMP,
                           OpKind.WHERE, OpKind.BROADCAST})  # each operand dimension: the result's, or 1


def _tie(u: _Union, op: Op) -> None:
    """Tie the dimensions ``op`` needs equal, and fix those it sets itself (tl.* rules, ``dsl/tl.py``)."""
    res = op.result if op.result is not None and isinstance(op.result.type, TileType) else None
    xs = _tiles(op.operands)
    kind = op.kind

    def same(a: Value, axis_a: int, b: Value, axis_b: int) -> None:
        u.join((a.id, axis_a), (b.id, axis_b))

    def fix(*values: Value, axes: tuple[int, ...] = (0, 1)) -> None:
        u.frozen.update((v.id, axis) for v in values for axis in axes)

    if kind in _SAME_SHAPE and res is not None and xs:
        same(res, 0, xs[0], 0)
        same(res, 1, xs[0], 1)
    elif kind is OpKind.STORE and len(xs) == 2:
        same(xs[0], 0, xs[1], 0)
        same(xs[0], 1, xs[1], 1)
    elif kind in _BROADCASTING and res is not None:
        for x in xs:
            for axis in (0, 1):
                if _size(x, axis) == _size(res, axis):  # (else x is a vector: its 1 stays 1)
                    same(x, axis, res, axis)
    elif kind in ROW_REDUCE | COL_REDUCE and res is not None and xs:
        axis = 0 if kind in ROW_REDUCE else 1
        same(res, axis, xs[0], axis)
    elif kind is OpKind.TRANSPOSE and res is not None and xs:
        same(res, 0, xs[0], 1)
        same(res, 1, xs[0], 0)
    elif kind is OpKind.MATMUL and res is not None and len(xs) >= 2:
        a, b = xs[0], xs[1]
        same(res, 0, a, 0)
        same(a, 1, b, 0)  # K
        same(res, 1, b, 1)
        for acc in xs[2:]:
            same(acc, 0, res, 0)
            same(acc, 1, res, 1)
    elif kind is OpKind.SLICE and res is not None and xs:
        for axis, window in enumerate((op.attr("rows"), op.attr("cols"))):
            if window == (0, _size(xs[0], axis)):  # the whole dimension: it follows the tile
                same(res, axis, xs[0], axis)
            else:  # a window of static bounds
                fix(res, xs[0], axes=(axis,))
    elif kind in (OpKind.SLICE_EVEN, OpKind.SLICE_ODD, OpKind.INTERLEAVE) and res is not None:
        for x in xs:
            same(res, 0, x, 0)
        fix(res, *xs, axes=(1,))  # half or twice the columns
    elif kind is OpKind.CONCAT and res is not None:
        axis = op.attr("axis", 0)
        for x in xs:
            same(res, 1 - axis, x, 1 - axis)
        fix(res, *xs, axes=(axis,))  # the sum of the parts
    elif kind is not OpKind.FULL:  # iota_u32, tsort32, extract_topk_indices, and any op not listed: fixed sizes
        fix(*([res] if res is not None else []), *xs)


def _tied_dims(ir: KernelIR, resident: set[str]) -> dict[Dim, frozenset[Dim]]:
    """For each tile dimension that may be scaled, the dimensions that must scale with it (itself included): none
    that an op fixes, no parameter's kept on chip (``resident``: state, sized where it is made), no size 1."""
    u = _Union()
    for p in ir.params:
        if p.value is not None and isinstance(p.value.type, TileType):
            u.find((p.value.id, 0))
            u.find((p.value.id, 1))
            if p.name in resident:
                u.frozen.update({(p.value.id, 0), (p.value.id, 1)})
    sizes: dict[Dim, int] = {}
    for op in ir.ops:
        _tie(u, op)
        for v in _tiles(op.operands) + ([op.result] if op.result is not None else []):
            if isinstance(v.type, TileType):
                sizes[(v.id, 0)], sizes[(v.id, 1)] = v.type.rows, v.type.cols
    for p in ir.params:
        if p.value is not None and isinstance(p.value.type, TileType):
            sizes[(p.value.id, 0)], sizes[(p.value.id, 1)] = p.value.type.rows, p.value.type.cols
    groups: dict[Dim, set[Dim]] = {}
    for d in sizes:
        groups.setdefault(u.find(d), set()).add(d)
    out: dict[Dim, frozenset[Dim]] = {}
    for members in groups.values():
        if any(d in u.frozen for d in members) or len({sizes[d] for d in members}) != 1 \
                or sizes[next(iter(members))] <= 1:
            continue  # (a class of mixed sizes would be a rule above that does not match tl's: never scaled)
        group = frozenset(members)
        for d in members:
            out[d] = group
    return out


def _scaled(ir: KernelIR, dims: frozenset[Dim], new: int) -> KernelIR:
    """``ir`` with every tile dimension in ``dims`` set to ``new``, and the sizes ops carry with them (a whole-tile
    slice's window, a broadcast's target shape) to match."""
    values: dict[int, Value] = {}

    def scaled(v: Any) -> Any:
        if not isinstance(v, Value):
            return v
        out = values.get(v.id)
        if out is None:
            t = v.type
            if isinstance(t, TileType) and ((v.id, 0) in dims or (v.id, 1) in dims):
                t = TileType(new if (v.id, 0) in dims else t.rows, new if (v.id, 1) in dims else t.cols, t.dtype,
                             t.location)
            out = values[v.id] = Value(v.id, t, v.name)
        return out

    def attrs(op: Op) -> tuple[tuple[str, Any], ...]:
        if op.kind is OpKind.BROADCAST and op.result is not None:
            return tuple((k, scaled(op.result).type.shape if k == "shape" else v) for k, v in op.attrs)
        if op.kind is OpKind.SLICE and isinstance(op.operands[0], Value):
            src = op.operands[0].id
            return tuple((k, (0, new) if k in ("rows", "cols") and (src, 0 if k == "rows" else 1) in dims else v)
                         for k, v in op.attrs)
        return op.attrs

    params = tuple(KernelParam(p.name, p.direction, scaled(p.value).type if p.value is not None else p.type,
                               scaled(p.value)) for p in ir.params)
    ops = tuple(Op(op.kind, scaled(op.result), tuple(scaled(x) for x in op.operands), attrs(op), op.loc)
                for op in ir.ops)
    return KernelIR(ir.name, params, ops, ir.constexprs)


# The tl op that records each kind, when its call is not tl.<kind>(*operands): the op's own sizes come from its attrs
_REPLAY: dict[OpKind, Callable[[Op, list[Any]], Any]] = {
    OpKind.CAST: lambda op, xs: tl.cast(xs[0], op.attr("dtype")),
    OpKind.CMP: lambda op, xs: getattr(tl, op.attr("cmp"))(*xs),
    OpKind.BROADCAST: lambda op, xs: tl.broadcast(xs[0], op.attr("shape")),
    OpKind.SLICE: lambda op, xs: tl.slice(xs[0], rows=op.attr("rows"), cols=op.attr("cols")),
    OpKind.CONCAT: lambda op, xs: tl.concat(xs, axis=op.attr("axis")),
    OpKind.FULL: lambda op, xs: tl.full(op.result.type.rows, op.result.type.cols, xs[0].value,  # type: ignore
                                        op.result.type.dtype),  # type: ignore[union-attr]
    OpKind.IOTA_U32: lambda op, xs: tl.iota_u32(op.result.type.cols),  # type: ignore[union-attr]
    OpKind.EXTRACT_TOPK: lambda op, xs: tl.extract_topk_indices(xs[0], op.attr("k")),
}


def _retraces(ir: KernelIR) -> bool:
    """Whether ``ir`` (a kernel with scaled sizes) passes the checks tl.* make while a body is traced: each op is
    recorded again from its operands through its tl op, which must accept them and give the result type ``ir``
    has. A kind with no tl op to replay it is not accepted."""
    ids = [p.value.id for p in ir.params if p.value is not None] + \
        [op.result.id for op in ir.ops if op.result is not None]
    trace = KernelTrace(ir.name, {p.name: p for p in ir.params}, next_id=max(ids, default=0) + 1)
    try:
        with tracing(trace):
            for op in ir.ops:
                replay = _REPLAY.get(op.kind)
                fn = getattr(tl, op.kind.value, None)
                if replay is None and fn is None:
                    return False
                xs = list(op.operands)
                got = replay(op, xs) if replay is not None else fn(*xs)  # type: ignore[misc]
                if op.result is None:
                    continue
                if not isinstance(got, Value) or got.type != op.result.type:
                    return False
                if op.kind is OpKind.SLICE:  # a slice of a parameter stands for a region of it, as in a trace
                    root = trace.region_of(op.operands[0])  # type: ignore[arg-type]
                    if root is not None:
                        trace.regions[op.result.id] = root
    except PtortError:
        return False
    return True


__all__ = ["check_capacity", "kernel_overflow", "fix_for", "fix_in_room", "Overflow", "MAX_MOVES"]
