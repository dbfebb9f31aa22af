"""Lower Kernel IR to pipe instructions (NPU_MODEL §2.1): which unit and pipe runs what, on which buffers.

Rules (pto-isa perf_sim latency.hpp, for the A2/A3 "separated" core where AIC and AIV share nothing on chip):

- A load whose tile feeds a matmul operand is a Mat load: GM -> L1 on the AIC's MTE2. A load used by vector ops or
  stored is a Vec load: GM -> UB on an AIV's MTE2. A load used both ways is loaded twice, once per side.
- A tile *parameter* used directly as an operand of a non-load op is loaded implicitly, once per side.
- tl.matmul(a, b[, acc]) extracts K-slices of a and b from L1 into L0A/L0B (MTE1, TEXTRACT) and runs one cube
  instruction per slice into L0C (M pipe, TMATMUL/_ACC). A K-slice is the largest power-of-two number of
  K-fractals whose A and B parts each fit one ping-pong half of L0A/L0B (``l0_pingpong_slices``), as the
  production GEMM kernel does; whether two slices then overlap is left to the buffer model.
- Stores of a matmul result leave L0C on FIX; stores of a UB tile leave on the AIV's MTE3.
- Every other op (elementwise, reduce, cast, cmp, where, full) runs on the AIV's V pipe, reading and writing UB.
- A value needed on the other unit crosses through GM, as on A2/A3: L0C -> GM (FIX) -> UB (MTE2), or
  UB -> GM (MTE3) -> L1 (MTE2). A matmul result used as a matmul operand goes L0C -> L1 on FIX.
- An op's result reuses the buffer of an operand that dies at this op when it fits (in place, like
  TMATMUL_ACC(c, c, a, b) or TADD(x, x, y)); otherwise it gets a new allocation.
- No IR op resolves to the scalar pipe S (TASSIGN, TSYNC, TALLOC... are not in the IR); scalar issue is free.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..dsl.ir import BINARY, COL_REDUCE, ROW_REDUCE, TRANSCENDENTAL, KernelIR, Literal, Op, OpKind, Value
from .machine import Buffer, Machine, Pipe, TransferCost, VectorCost

AIC, AIV = "AIC", "AIV"
# instruction kinds: how an instruction is priced
GM_READ, GM_WRITE, ONCHIP, STATIC = "gm_read", "gm_write", "onchip", "static"


@dataclass(slots=True)
class Instr:
    """One pipe instruction. ``cycles`` is the static cost (compute and on-chip moves); GM transfers are priced
    when scheduled (contention). ``alloc`` is the allocation to take before it starts, ``frees`` those released
    when it ends; ``reads``/``write`` are slot ids for data dependencies."""

    unit: str
    pipe: Pipe
    name: str
    kind: str
    op: Op | None
    bytes: int = 0
    path: TransferCost | None = None
    region: str | None = None  # the tile parameter a GM transfer reads or writes (None: staging through GM)
    cycles: int = 0
    head_cycles: int = 0
    tail_cycles: int = 0
    reads: tuple[int, ...] = ()
    write: int = -1
    alloc: int = -1
    frees: list[int] = field(default_factory=list)


@dataclass(slots=True)
class Alloc:
    """An on-chip buffer region shared by the slots that reuse it in place."""

    buffer: Buffer
    bytes: int


@dataclass(slots=True)
class Plan:
    """A lowered kernel: instructions in issue order and the allocations they use."""

    name: str
    instrs: list[Instr]
    allocs: list[Alloc]
    uses_aiv: bool


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _tile_bytes(v: Value) -> int:
    rows, cols = v.shape
    return rows * cols * v.dtype.itemsize


class _Lowering:
    """The state of lowering one kernel: where each value lives (side -> slot) and the instructions so far."""

    def __init__(self, ir: KernelIR, m: Machine) -> None:
        self.ir, self.m = ir, m
        self.instrs: list[Instr] = []
        self.allocs: list[Alloc] = []
        self.slot_alloc: list[int] = []
        self.where: dict[int, dict[Buffer, int]] = {}  # value id -> {UB | L1 | L0C: slot}
        self.param_of: dict[int, str] = {p.value.id: p.name for p in ir.params if p.value is not None and p.is_tile}
        self.source: dict[int, str] = dict(self.param_of)  # value id -> tile parameter it is a copy of
        self.roles: dict[int, set[str]] = {}
        self.last_use: dict[int, int] = {}
        for i, op in enumerate(ir.ops):
            for k, x in enumerate(op.operands):
                if isinstance(x, Value) and x.is_tile:
                    self.roles.setdefault(x.id, set()).add(_role(op, k))
                    self.last_use[x.id] = i

    # -- slots and allocations --------------------------------------------------------------------------------------
    def new_slot(self, buffer: Buffer, nbytes: int, reuse: int = -1) -> int:
        if reuse >= 0:
            alloc = self.slot_alloc[reuse]
        else:
            alloc = len(self.allocs)
            self.allocs.append(Alloc(buffer, nbytes))
        self.slot_alloc.append(alloc)
        return len(self.slot_alloc) - 1

    def emit(self, ins: Instr) -> Instr:
        self.instrs.append(ins)
        return ins

    def fresh_alloc(self, slot: int) -> int:
        """The allocation to take when ``slot`` is written for the first time (-1 when it reuses one in place)."""
        a = self.slot_alloc[slot]
        return -1 if any(self.slot_alloc[s] == a for s in range(slot)) else a

    # -- transfers -------------------------------------------------------------------------------------------------
    def load(self, v: Value, buffer: Buffer, op: Op | None) -> int:
        """Bring value ``v`` (a tile parameter or a copy of one) from GM into ``buffer`` (UB or L1)."""
        nbytes = _tile_bytes(v)
        slot = self.new_slot(buffer, nbytes)
        unit, path = (AIV, self.m.gm_to_ub) if buffer == Buffer.UB else (AIC, self.m.gm_to_l1)
        self.emit(Instr(unit, Pipe.MTE2, "load", GM_READ, op, nbytes, path, self.source[v.id], write=slot,
                        alloc=self.fresh_alloc(slot)))
        self.where.setdefault(v.id, {})[buffer] = slot
        return slot

    def ensure(self, v: Value, buffer: Buffer, op: Op) -> int:
        """The slot holding ``v`` in ``buffer``, emitting the moves that bring it there."""
        have = self.where.get(v.id, {})
        if buffer in have:
            return have[buffer]
        nbytes = _tile_bytes(v)
        m = self.m
        if buffer in (Buffer.UB, Buffer.L1) and v.id in self.source and Buffer.L0C not in have:
            return self.load(v, buffer, op)
        if buffer == Buffer.UB:  # L0C -> GM (FIX) -> UB (MTE2): the AIC and AIV share nothing on chip
            staged = self.emit(Instr(AIC, Pipe.FIX, "fix", GM_WRITE, op, nbytes, m.l0c_to_gm, None,
                                     reads=(have[Buffer.L0C],)))
            slot = self.new_slot(Buffer.UB, nbytes)
            self.emit(Instr(AIV, Pipe.MTE2, "load", GM_READ, op, nbytes, m.gm_to_ub, None,
                            reads=(self._marker(staged),), write=slot, alloc=self.fresh_alloc(slot)))
        elif buffer == Buffer.L1:
            slot = self.new_slot(Buffer.L1, nbytes)
            if Buffer.L0C in have:  # L0C -> L1 on FIX
                self.emit(Instr(AIC, Pipe.FIX, "fix", ONCHIP, op, nbytes, m.l0c_to_l1,
                                cycles=_move(m.l0c_to_l1, nbytes, m), reads=(have[Buffer.L0C],), write=slot,
                                alloc=self.fresh_alloc(slot)))
            else:  # UB -> GM (MTE3) -> L1 (MTE2)
                store = self.emit(Instr(AIV, Pipe.MTE3, "store", GM_WRITE, op, nbytes, m.ub_to_gm, None,
                                        reads=(have[Buffer.UB],)))
                self.emit(Instr(AIC, Pipe.MTE2, "load", GM_READ, op, nbytes, m.gm_to_l1, None,
                                reads=(self._marker(store),), write=slot, alloc=self.fresh_alloc(slot)))
        else:  # an accumulator that is not a matmul result: via L1, then into L0C on MTE1 (approximation)
            l1 = self.ensure(v, Buffer.L1, op)
            slot = self.new_slot(Buffer.L0C, nbytes)
            self.emit(Instr(AIC, Pipe.MTE1, "extract", ONCHIP, op, nbytes, m.l1_to_l0a,
                            cycles=_move(m.l1_to_l0a, nbytes, m), reads=(l1,), write=slot,
                            alloc=self.fresh_alloc(slot)))
        self.where.setdefault(v.id, {})[buffer] = slot
        return slot

    def _marker(self, ins: Instr) -> int:
        """A zero-byte slot written by ``ins`` so a later instruction can wait for it (a GM staging hop)."""
        slot = len(self.slot_alloc)
        self.slot_alloc.append(-1)
        ins.write = slot
        return slot

    def reusable(self, operands: list[tuple[Value, int]], buffer: Buffer, nbytes: int, i: int) -> int:
        """An operand slot that dies at op ``i`` and can hold the result in place, else -1."""
        for v, slot in operands:
            a = self.slot_alloc[slot]
            if a < 0 or self.allocs[a].buffer != buffer or self.allocs[a].bytes < nbytes:
                continue
            if self.last_use.get(v.id) == i:
                return slot
        return -1

    # -- ops -------------------------------------------------------------------------------------------------------
    def lower(self) -> Plan:
        for i, op in enumerate(self.ir.ops):
            k = op.kind
            if k is OpKind.LOAD:
                self.lower_load(op)
            elif k is OpKind.STORE:
                self.lower_store(op)
            elif k is OpKind.MATMUL:
                self.lower_matmul(op, i)
            else:
                self.lower_vector(op, i)
        self.assign_frees()
        return Plan(self.ir.name, self.instrs, self.allocs, any(ins.unit == AIV for ins in self.instrs))

    def lower_load(self, op: Op) -> None:
        src, v = op.operands[0], op.result
        assert isinstance(src, Value) and v is not None
        self.source[v.id] = self.source[src.id]
        roles = self.roles.get(v.id, set())
        if roles & {"mm_a", "mm_b", "mm_acc"}:
            self.load(v, Buffer.L1, op)
        if roles & {"vec", "store"} or not roles:
            self.load(v, Buffer.UB, op)

    def lower_store(self, op: Op) -> None:
        dst, src = op.operands
        assert isinstance(dst, Value) and isinstance(src, Value)
        nbytes = _tile_bytes(src)
        have = self.where.get(src.id, {})
        if Buffer.L0C in have and Buffer.UB not in have:
            self.emit(Instr(AIC, Pipe.FIX, "store", GM_WRITE, op, nbytes, self.m.l0c_to_gm, dst.name,
                            reads=(have[Buffer.L0C],)))
        else:
            slot = self.ensure(src, Buffer.UB, op)
            self.emit(Instr(AIV, Pipe.MTE3, "store", GM_WRITE, op, nbytes, self.m.ub_to_gm, dst.name, reads=(slot,)))

    def lower_matmul(self, op: Op, i: int) -> None:
        m = self.m
        a, b = op.operands[0], op.operands[1]
        assert isinstance(a, Value) and isinstance(b, Value) and op.result is not None
        sa, sb = self.ensure(a, Buffer.L1, op), self.ensure(b, Buffer.L1, op)
        rows, depth = a.shape
        cols = b.shape[1]
        elt = a.dtype.itemsize
        out_bytes = _tile_bytes(op.result)
        acc_slot = -1
        if len(op.operands) == 3:
            acc = op.operands[2]
            assert isinstance(acc, Value)
            acc_slot = self.ensure(acc, Buffer.L0C, op)
            result = self.new_slot(Buffer.L0C, out_bytes, self.reusable([(acc, acc_slot)], Buffer.L0C, out_bytes, i))
        else:
            result = self.new_slot(Buffer.L0C, out_bytes)
        k_frac = max(1, m.cube_fractal_k_bytes // elt)
        rate = m.cube_fp32_cycles_per_fractal if elt >= 4 else 1
        frac_mn = _ceil_div(rows, m.cube_fractal_rows) * _ceil_div(cols, m.cube_fractal_rows)
        k_slice = _k_slice(rows, cols, depth, elt, k_frac, m)
        first = True
        for k0 in range(0, depth, k_slice):
            ks = min(k_slice, depth - k0)
            a_bytes, b_bytes = rows * ks * elt, ks * cols * elt
            la, lb = self.new_slot(Buffer.L0A, a_bytes), self.new_slot(Buffer.L0B, b_bytes)
            self.emit(Instr(AIC, Pipe.MTE1, "extract", ONCHIP, op, a_bytes, m.l1_to_l0a,
                            cycles=_move(m.l1_to_l0a, a_bytes, m), reads=(sa,), write=la, alloc=self.fresh_alloc(la)))
            self.emit(Instr(AIC, Pipe.MTE1, "extract", ONCHIP, op, b_bytes, m.l1_to_l0b,
                            cycles=_move(m.l1_to_l0b, b_bytes, m), reads=(sb,), write=lb, alloc=self.fresh_alloc(lb)))
            reads = (la, lb) if first and acc_slot < 0 else (la, lb, acc_slot if first else result)
            self.emit(Instr(AIC, Pipe.CUBE, "matmul", STATIC, op, cycles=rate * frac_mn * _ceil_div(ks, k_frac),
                            head_cycles=m.cube_head_cycles, reads=reads, write=result,
                            alloc=self.fresh_alloc(result) if first else -1))
            first = False
        self.where.setdefault(op.result.id, {})[Buffer.L0C] = result

    def lower_vector(self, op: Op, i: int) -> None:
        assert op.result is not None
        tiles = [x for x in op.operands if isinstance(x, Value) and x.is_tile]
        slots = [(x, self.ensure(x, Buffer.UB, op)) for x in tiles]
        nbytes = _tile_bytes(op.result)
        cycles, head, tail = _vector_cycles(op, self.m)
        result = self.new_slot(Buffer.UB, nbytes, self.reusable(slots, Buffer.UB, nbytes, i))
        self.emit(Instr(AIV, Pipe.V, op.kind.value, STATIC, op, cycles=cycles, head_cycles=head, tail_cycles=tail,
                        reads=tuple(s for _, s in slots), write=result, alloc=self.fresh_alloc(result)))
        self.where.setdefault(op.result.id, {})[Buffer.UB] = result

    def assign_frees(self) -> None:
        """Free each allocation when the last instruction that reads or writes one of its slots ends."""
        last: dict[int, int] = {}
        for n, ins in enumerate(self.instrs):
            for s in ins.reads + ((ins.write,) if ins.write >= 0 else ()):
                a = self.slot_alloc[s]
                if a >= 0:
                    last[a] = n
        for a, n in sorted(last.items()):
            self.instrs[n].frees.append(a)


def _role(op: Op, k: int) -> str:
    if op.kind is OpKind.MATMUL:
        return ("mm_a", "mm_b", "mm_acc")[k]
    if op.kind is OpKind.STORE:
        return "store"
    return "vec"


def _move(path: TransferCost, nbytes: int, m: Machine) -> int:
    """On-chip move: L_fix + ceil32(bytes) / bandwidth (NPU_MODEL §3.1)."""
    aligned = _ceil_div(nbytes, m.transfer_align_bytes) * m.transfer_align_bytes
    return path.fixed_cycles + _ceil_div(aligned, path.bytes_per_cycle)


def _k_slice(rows: int, cols: int, depth: int, elt: int, k_frac: int, m: Machine) -> int:
    """Largest power-of-two count of K-fractals whose A and B slices each fit one L0A/L0B ping-pong half."""
    half_a = m.l0a_bytes // m.l0_pingpong_slices
    half_b = m.l0b_bytes // m.l0_pingpong_slices
    ks = k_frac
    depth_up = _ceil_div(depth, k_frac) * k_frac
    while ks * 2 <= depth_up and rows * ks * 2 * elt <= half_a and ks * 2 * cols * elt <= half_b:
        ks *= 2
    return min(ks, depth)


def _elems(v: Value) -> int:
    rows, cols = v.shape
    return rows * cols


# Activations have no single vector instruction on A2/A3: each is priced as the §3.2 instructions that compute it
# step by step (derived; sim/numerics.py evaluates the same steps). s = tile-scalar, e = exp, d = div, b = binary.
_ACTIVATION_STEPS = {
    OpKind.SIGMOID: "sesd",  # -x, e**, +1, 1 /
    OpKind.SILU: "sesd",  # -x, e**, +1, x /
    OpKind.TANH: "sesdss",  # 2x, e**, +1, 2 /, negate, +1
    OpKind.GELU: "bbsbs" + "sesdss" + "sbs",  # x*x, *x, *0.044715, +x, *sqrt(2/pi), tanh, +1, *x, *0.5
    # sin/cos (estimate): range reduction (* 1/pi, round by two casts, r = x - k pi, sign from k), then a degree-9
    # odd polynomial in r by Horner's rule (r*r, four multiply-adds, * r)
    OpKind.SIN: "scc" + "sbb" + "b" + "bsbsbsbs" + "b",
    OpKind.COS: "sscc" + "sbb" + "b" + "bsbsbsbs" + "b",  # cos(x) = sin(x + pi/2): one more tile-scalar add
}


def _steps_cycles(steps: str, elems: int, itemsize: int, m: Machine) -> tuple[int, int, int]:
    """(cycles without head, head, tail) of back-to-back V instructions over ``elems`` elements: the stream pays
    the first instruction's head and the last one's tail (§6.5: head per stream)."""
    rep = m.vector_repeat_bytes
    classes = {"s": m.vec_scalar, "e": m.vec_transcendental, "d": m.vec_div, "b": m.vec_binary, "c": m.vec_cast}
    cycles = 0
    for step in steps:
        nbytes = elems * (max(itemsize, m.transcendental_elem_bytes) if step == "e" else itemsize)
        cycles += classes[step].slope_cycles * max(1, _ceil_div(nbytes, rep))
        if step == "b" and nbytes % rep:
            cycles += m.vec_count_mode_cycles
    return cycles, classes[steps[0]].head_cycles, classes[steps[-1]].tail_cycles


def _vector_cycles(op: Op, m: Machine) -> tuple[int, int, int]:
    """(cycles without head, head, tail) of one V-pipe op (NPU_MODEL §3.2, §3.3)."""
    k = op.kind
    out = op.result
    assert out is not None
    rep = m.vector_repeat_bytes

    def repeats(nbytes: int) -> int:
        return max(1, _ceil_div(nbytes, rep))

    tiles = [x for x in op.operands if isinstance(x, Value) and x.is_tile]
    if k in ROW_REDUCE:
        x = tiles[0]
        rows, cols = x.shape
        per_row = repeats(cols * x.dtype.itemsize)
        cycles = m.row_reduce_fixed_cycles + rows * (m.vec_binary.slope_cycles * (per_row - 1)
                                                     + m.row_reduce_per_row_cycles)
        if k is OpKind.ROWMEAN:  # the 1/C scaling is one tile-scalar multiply over the [R, 1] result
            cycles += m.vec_scalar.slope_cycles * repeats(rows * out.dtype.itemsize)
        return cycles, 0, m.row_reduce_tail_cycles
    if k in COL_REDUCE:
        x = tiles[0]
        rows, cols = x.shape
        per_row = repeats(cols * x.dtype.itemsize)
        cycles = m.col_reduce_fixed_cycles + rows * (m.col_reduce_per_row_cycles + m.vec_binary.slope_cycles * per_row)
        return cycles, 0, m.row_reduce_tail_cycles
    extra = 0
    cls: VectorCost
    if k in BINARY:
        scalar = len(tiles) < 2 or any(isinstance(x, Literal) or (isinstance(x, Value) and not x.is_tile)
                                       for x in op.operands)
        if k is OpKind.DIV:
            cls = m.vec_div
        else:
            cls = m.vec_scalar if scalar else m.vec_binary
        nbytes = _elems(out) * out.dtype.itemsize
        if not scalar and nbytes % rep:
            extra = m.vec_count_mode_cycles
    elif k in TRANSCENDENTAL:
        cls = m.vec_transcendental
        nbytes = _elems(out) * max(out.dtype.itemsize, m.transcendental_elem_bytes)
    elif k in _ACTIVATION_STEPS:
        return _steps_cycles(_ACTIVATION_STEPS[k], _elems(out), out.dtype.itemsize, m)
    elif k in (OpKind.RSQRT, OpKind.RELU, OpKind.NEG, OpKind.ABS, OpKind.TRANSPOSE, OpKind.SLICE_EVEN,
               OpKind.SLICE_ODD, OpKind.INTERLEAVE, OpKind.BROADCAST, OpKind.EXTRACT_TOPK):
        # data rearrangement (estimate): vtranspose (16 x 16 blocks), GatherMask (even/odd columns, TopK
        # indices), gather for interleave and broadcast each take about one vcopy-rate pass over the result tile
        cls = m.vec_unary
        nbytes = _elems(out) * out.dtype.itemsize
    elif k is OpKind.CAST:
        cls = m.vec_cast
        wider = max(out.dtype.itemsize, tiles[0].dtype.itemsize)
        nbytes = _elems(out) * wider
    elif k is OpKind.CMP:
        cls = m.vec_binary
        nbytes = _elems(out) * tiles[0].dtype.itemsize
    elif k is OpKind.WHERE:
        cls = m.vec_select
        nbytes = _elems(out) * out.dtype.itemsize
    elif k is OpKind.TSORT32:
        # (estimate) vbitsort sorts 32 (score, index) pairs in one repeat; priced as one binary-op pass over them
        cls = m.vec_binary
        nbytes = _elems(out) * out.dtype.itemsize
    else:  # FULL and IOTA_U32 (vector_dup / index fill) and anything new: the default class
        cls = m.vec_default
        nbytes = _elems(out) * out.dtype.itemsize
    return cls.slope_cycles * repeats(nbytes) + extra, cls.head_cycles, cls.tail_cycles


def lower(ir: KernelIR, m: Machine) -> Plan:
    """The pipe instructions of ``ir`` on machine ``m``."""
    return _Lowering(ir, m).lower()


def describe(plan: Plan) -> str:
    """One line per instruction (for debugging and docs): unit.pipe name bytes/cycles."""
    lines = []
    for ins in plan.instrs:
        what = f"{ins.bytes} B" if ins.kind in (GM_READ, GM_WRITE) else f"{ins.cycles} cyc"
        lines.append(f"{ins.unit}.{ins.pipe:<5} {ins.name:<8} {what}")
    return "\n".join(lines)


__all__ = ["Instr", "Alloc", "Plan", "lower", "describe", "AIC", "AIV", "GM_READ", "GM_WRITE", "ONCHIP", "STATIC"]
