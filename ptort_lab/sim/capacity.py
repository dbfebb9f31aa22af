"""Capacity at definition time: when a workload is compiled, refuse a kernel whose live tiles cannot fit a buffer of
the core, and say how to fix it.

Each launch site (task node) whose kernel can be traced from its static arguments is lowered as a run lowers it,
and its peak per buffer (``lowering.buffer_peaks``) is compared with the buffer's size. A peak over the size is
exactly the CapacityError a run of that kernel would raise (one task's allocations are all that can be held when it
takes one), so nothing that runs is refused; only a launch the run never reaches (a ``P.when`` that never holds) is
refused earlier than before. Launches with on-chip state (on-chip tensors, tile-channel slots) are left to the run,
which lowers them with that state resident and reserves its room per placement (``residency``).

The fix offered is, in this order:

1. a reorder: a tile made before the peak but first used after it (the running output O loaded before the scores
   are cast to P) is moved to just before its first use, and the kernel lowered again; up to three such moves;
2. else the largest tile that fits: every tile with the launch's largest tile's rows (or columns) scaled down, in
   steps of 16, the largest that fits.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..dsl.expr import is_symbolic
from ..dsl.ir import KernelIR, KernelParam, Op, OpKind, Value
from ..dsl.kernel import Kernel
from ..dsl.tree import NodeKind, Workload, walk
from ..dsl.types import TensorView, TileType
from ..errors import CapacityError, PtortError, SourceLocation
from .lowering import AIC, Peak, Plan, buffer_peaks, lower
from .machine import Buffer, Machine, bytes_text

MAX_MOVES = 3  # reorders tried one after the other before a smaller tile is suggested


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
            raise _error(overflow, ir, node.loc)


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


def fix_for(task: Any, machine: Machine) -> str | None:
    """The fix compile() offers for ``task``'s kernel on ``machine`` (for a run that meets the overflow itself, not
    having been compiled), or None when its plain lowering fits."""
    kernel = getattr(task, "kernel_ref", None)
    if not isinstance(kernel, Kernel):
        return None
    try:
        ir = kernel.ir_for(task.resources if isinstance(task.resources, dict) else {})
    except PtortError:
        return None
    overflow = kernel_overflow(ir, machine)
    return overflow.hint if overflow is not None else None


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
    overflow = _overflow(ir, plan, machine)
    if len(_VERDICTS) >= _MAX_VERDICTS:
        _VERDICTS.clear()
    _VERDICTS[key] = (ir, overflow)
    return overflow


def _over(plan: Plan, machine: Machine) -> list[Peak]:
    """The peaks of ``plan`` over their buffer's size, in Buffer order."""
    peaks = buffer_peaks(plan)
    return [peaks[b] for b in Buffer if b in peaks and peaks[b].bytes > machine.buffer_bytes(b)]


def _overflow(ir: KernelIR, plan: Plan, machine: Machine) -> Overflow | None:
    over = _over(plan, machine)
    if not over:
        return None
    peak = over[0]
    cap = machine.buffer_bytes(peak.buffer)
    at = plan.instrs[peak.at]
    unit = "the AIC" if at.unit == AIC else "an AIV"
    where = ""
    if at.op is not None:
        where = f" at `{at.op}`" + (f" (line {at.op.loc.lineno})" if at.op.loc is not None else "")
    what = (f"kernel '{ir.name}' cannot fit {machine.name}'s buffers: it needs {peak.bytes} bytes of {peak.buffer} "
            f"at once{where}, but the {peak.buffer} of {unit} holds {bytes_text(cap)}. Live there: "
            f"{_live_text(plan, peak)}.")
    return Overflow(peak.buffer, peak, cap, at.op, what, _fix(ir, plan, peak, machine))


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


def _error(overflow: Overflow, ir: KernelIR, launch: SourceLocation | None) -> CapacityError:
    op = overflow.op
    at = f" launched at {launch}" if launch is not None else ""
    return CapacityError(overflow.what, hint=overflow.hint, where=op.loc if op is not None and op.loc else launch,
                         context=f"kernel '{ir.name}'{at}", locate=False)


# -- the fix ------------------------------------------------------------------------------------------------------
def _fix(ir: KernelIR, plan: Plan, peak: Peak, machine: Machine) -> str:
    moves = _reorder(ir, machine)
    if moves is not None:
        at = plan.instrs[peak.at].op
        steps = "; then ".join(_move_text(op, before, at if i == 0 else None) for i, (op, before) in enumerate(moves))
        peaks = buffer_peaks(lower(_moved(ir, moves), machine))
        now = peaks[peak.buffer].bytes if peak.buffer in peaks else 0
        return (f"Make tiles only when they are needed: {steps}. The {peak.buffer} peak is then {now} bytes, which "
                "fits.")
    return _smaller_tile(ir, peak, machine)


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


def _worst(plan: Plan, machine: Machine) -> float:
    """How far the plan's worst buffer is over its size (a ratio; <= 1 fits)."""
    peaks = buffer_peaks(plan)
    return max((p.bytes / machine.buffer_bytes(b) for b, p in peaks.items()), default=0.0)


def _reorder(ir: KernelIR, machine: Machine) -> list[tuple[Op, Op]] | None:
    """Moves (op, the op it goes just before) that make ``ir`` fit, found greedily; None when none do."""
    moves: list[tuple[Op, Op]] = []
    current = ir
    worst = _worst(lower(current, machine), machine)
    for _ in range(MAX_MOVES):
        plan = lower(current, machine)
        over = _over(plan, machine)
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
            score = _worst(lower(moved, machine), machine)
            if best is None or score < best[0]:
                best = (score, trial, moved)
        if best is None or best[0] >= worst:
            return None
        worst, moves, current = best
        if worst <= 1.0:
            return moves
    return None


def _smaller_tile(ir: KernelIR, peak: Peak, machine: Machine) -> str:
    """The largest tile (rows or columns of the launch's largest tile scaled down) whose kernel fits."""
    tiles = [p.type for p in ir.params if isinstance(p.type, TileType)]
    if not tiles:
        return "Split the kernel into smaller steps so fewer tiles are live at once."
    big = max(tiles, key=lambda t: t.nbytes)
    found = []
    for axis, size in ((0, big.rows), (1, big.cols)):
        fits = _largest_fitting(ir, machine, axis, size)
        if fits is not None:
            shape = (fits, big.cols) if axis == 0 else (big.rows, fits)
            found.append((shape[0] * shape[1], axis, shape, fits, size))
    if not found:
        return (f"Split the kernel into smaller steps so fewer tiles are live at once: even the smallest tile "
                f"overflows {peak.buffer}.")
    found.sort(key=lambda f: (-f[0], f[1]))
    texts = [f"[{shape[0]}, {shape[1]}] ({fits} {'rows' if axis == 0 else 'columns'} instead of {size} in every "
             "tile that has them)" for _, axis, shape, fits, size in found]
    return (f"Use a smaller tile than [{big.rows}, {big.cols}] (no reorder of the kernel's ops makes it fit): the "
            "largest that fits is " + " or ".join(texts) + ".")


def _largest_fitting(ir: KernelIR, machine: Machine, axis: int, size: int) -> int | None:
    """The largest size < ``size`` (a multiple of 16 when ``size`` is) of dimension ``axis`` that fits."""
    step = 16 if size > 16 and size % 16 == 0 else 1
    low, high = 1, (size - 1) // step  # candidates step * n for n in low..high
    best = None
    while low <= high:
        mid = (low + high) // 2
        if not _over(lower(_scaled(ir, axis, size, step * mid), machine), machine):
            best, low = step * mid, mid + 1
        else:
            high = mid - 1
    return best


def _scaled(ir: KernelIR, axis: int, old: int, new: int) -> KernelIR:
    """``ir`` with dimension ``axis`` of every tile equal to ``old`` set to ``new`` (for its buffer bytes only)."""
    values: dict[int, Value] = {}

    def scaled(v: Any) -> Any:
        if not isinstance(v, Value):
            return v
        out = values.get(v.id)
        if out is None:
            t = v.type
            if isinstance(t, TileType) and (t.rows if axis == 0 else t.cols) == old:
                t = TileType(new, t.cols, t.dtype, t.location) if axis == 0 else \
                    TileType(t.rows, new, t.dtype, t.location)
            out = values[v.id] = Value(v.id, t, v.name)
        return out

    params = tuple(KernelParam(p.name, p.direction, scaled(p.value).type if p.value is not None else p.type,
                               scaled(p.value)) for p in ir.params)
    ops = tuple(Op(op.kind, scaled(op.result), tuple(scaled(x) for x in op.operands), op.attrs, op.loc)
                for op in ir.ops)
    return KernelIR(ir.name, params, ops, ir.constexprs)


__all__ = ["check_capacity", "kernel_overflow", "fix_for", "Overflow", "MAX_MOVES"]
