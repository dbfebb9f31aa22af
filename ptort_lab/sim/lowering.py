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
- FIX converts and rectifies on the way out (NPU_MODEL §2.1, "with fused cast/quant/relu"; pto-isa TSTORE of an Acc
  tile: the F32 -> F16/BF16 cast, the pre-quant modes F32 -> I8/U8 and I32 -> I8/U8/F16/I16, ReluPreMode): a GM store
  of ``cast(m)``, ``relu(m)``, ``cast(relu(m))`` or ``relu(cast(m))`` of a matmul result ``m``, each step's result
  used only by the next and the last only by the store, is one FIX store of the stored tile's bytes, read from L0C;
  the cast and relu emit nothing. Any other use of a step's result (or a store into a resident parameter) keeps the
  steps on V, with ``m`` staged through GM as below. The Kernel IR is unchanged: this is a lowering choice.
- Every other op (elementwise, reduce, cast, cmp, where, full) runs on the AIV's V pipe, reading and writing UB.
- A value needed on the other unit crosses through GM, as on A2/A3: L0C -> GM (FIX) -> UB (MTE2), or
  UB -> GM (MTE3) -> L1 (MTE2). A matmul result used as a matmul operand goes L0C -> L1 on FIX.
- An op's result reuses the buffer of an operand that dies at this op when it fits (in place, like
  TMATMUL_ACC(c, c, a, b) or TADD(x, x, y)); otherwise it gets a new allocation.
- No IR op resolves to the scalar pipe S (TASSIGN, TSYNC, TALLOC... are not in the IR); scalar issue is free.
- tl.slice is a view, no instruction. A slice of an on-chip tile shares its tile's slots and allocation (a matmul on
  it extracts only its bytes; an op may overwrite the allocation in place only when the whole tile dies there). A
  slice of a parameter is a sub-block in GM: a load of it, or a store into it, moves only that block (``window``,
  its own L2 region). tl.concat is a V copy (vec_unary per 256 B of the result) into a new UB allocation; parts
  elsewhere come to UB the usual way.
- A *resident* parameter (``lower(ir, m, resident)``: an on-chip tensor or an on-chip tile channel's slot, issue 12)
  already sits in its buffer, in a slot no allocation of the kernel backs: loading it is free (an alias), and a
  store into it writes that slot. The op producing the stored value writes the slot itself when it can (a matmul
  accumulating into an L0C-resident acc, a vector op into a UB-resident tile, a load from GM straight into UB or L1),
  i.e. when nothing still needs the slot's old value from that op on; otherwise the store is a move: the normal
  cross-unit path ending in the slot, or within one buffer a copy (UB: a V copy, priced as vec_unary per 256 B; L1
  and L0C (estimates): one MTE1 L1 -> L0A-rate or FIX L0C -> L1-rate move). An L1-resident tile cannot reach UB or
  GM (the AIC's L1 has no path there): a vector op or GM store of it is an error.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ..dsl.ir import BINARY, COL_REDUCE, ROW_REDUCE, TRANSCENDENTAL, KernelIR, Literal, Op, OpKind, Value
from ..dsl.types import DType
from ..errors import PtortValueError
from .machine import Buffer, Machine, Pipe, TransferCost, VectorCost

AIC, AIV = "AIC", "AIV"
# instruction kinds: how an instruction is priced
GM_READ, GM_WRITE, ONCHIP, STATIC = "gm_read", "gm_write", "onchip", "static"

# The conversions FIX applies to an accumulator on its way from L0C to GM (pto-isa include/pto/npu/a2a3/TStore.hpp:
# GetCastPreQuantMode, F32 -> F16 / BF16 from the destination's dtype alone; GetScalarPreQuantMode, the "quant" modes
# with a pre-quant scalar, here the scale 1 of a plain cast: F32 -> I8 / U8, I32 -> I8 / U8 / F16 / I16), besides
# none at all. Its other fused step is ReLU (TSTORE's ReluPreMode::NormalRelu, with any of these).
_FIX_CASTS: dict[DType, frozenset[DType]] = {
    DType.F32: frozenset((DType.F32, DType.F16, DType.BF16, DType.I8, DType.U8)),
    DType.I32: frozenset((DType.I32, DType.I8, DType.U8, DType.F16, DType.I16)),
}


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
    window: tuple[int, int, int, int] | None = None  # (r0, r1, c0, c1) of ``region`` a sub-block transfer moves
    extent: tuple[int, int, int, int] | None = None  # (0, rows, 0, cols) of a whole 2-D tile a transfer moves


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
    slot_alloc: list[int] = field(default_factory=list)  # slot id -> its allocation (-1: a GM staging marker)
    resident: dict[str, int] = field(default_factory=dict)  # resident parameter -> its slot (no allocation)


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


def _tile_bytes(v: Value) -> int:
    rows, cols = v.shape
    return rows * cols * v.dtype.itemsize


def _extent(v: Value) -> tuple[int, int, int, int]:
    """The whole of tile ``v`` as a sub-block (0, rows, 0, cols): the L2 model serves a read of a tile from the
    lines of its sub-blocks when they cover it."""
    rows, cols = v.shape
    return 0, rows, 0, cols


class _Lowering:
    """The state of lowering one kernel: where each value lives (side -> slot) and the instructions so far."""

    def __init__(self, ir: KernelIR, m: Machine, resident: tuple[tuple[str, Buffer], ...] = ()) -> None:
        self.ir, self.m = ir, m
        self.instrs: list[Instr] = []
        self.allocs: list[Alloc] = []
        self.slot_alloc: list[int] = []
        self.where: dict[int, dict[Buffer, int]] = {}  # value id -> {UB | L1 | L0C: slot}
        self.param_of: dict[int, str] = {p.value.id: p.name for p in ir.params if p.value is not None and p.is_tile}
        self.source: dict[int, str] = dict(self.param_of)  # value id -> tile parameter it is a copy of
        self.window: dict[int, tuple[int, int, int, int]] = {}  # value id -> its sub-block of ``source`` (a slice)
        self.alias: dict[int, int] = {}  # a slice of an on-chip tile -> the tile whose allocation it shares
        self.roles: dict[int, set[str]] = {}
        self.last_use: dict[int, int] = {}
        for i, op in enumerate(ir.ops):
            for k, x in enumerate(op.operands):
                if isinstance(x, Value) and x.is_tile:
                    if op.kind is not OpKind.SLICE:  # a view: its parent is used as the slice is (below)
                        self.roles.setdefault(x.id, set()).add(_role(op, k))
                    self.last_use[x.id] = i
        for i in range(len(ir.ops) - 1, -1, -1):  # later slices first, so a slice of a slice reaches the root
            op = ir.ops[i]
            if op.kind is OpKind.SLICE and op.result is not None:
                x = op.operands[0]
                assert isinstance(x, Value)
                self.roles.setdefault(x.id, set()).update(self.roles.get(op.result.id, ()))
                self.last_use[x.id] = max(self.last_use.get(x.id, i), self.last_use.get(op.result.id, i))
        self.resident: dict[str, Buffer] = dict(resident)  # parameter -> the buffer its tile already sits in
        self.resident_slot: dict[str, int] = {}
        for p in ir.params:
            if p.name in self.resident and p.value is not None and p.is_tile:
                self.resident_slot[p.name] = slot = len(self.slot_alloc)
                self.slot_alloc.append(-1)  # held for the whole run, outside the kernel's allocations
                self.where[p.value.id] = {self.resident[p.name]: slot}
                del self.source[p.value.id]  # not in GM: never loaded from there
        self.fused: dict[int, Value] = self._fix_fusions()  # a cast/relu result -> the matmul result FIX stores it from
        self.into: dict[int, str] = self._in_place() if self.resident_slot else {}  # value -> resident it is made in

    # -- slots and allocations --------------------------------------------------------------------------------------
    def new_slot(self, buffer: Buffer, nbytes: int, reuse: int = -1) -> int:
        if reuse >= 0:
            alloc = self.slot_alloc[reuse]
        else:
            alloc = len(self.allocs)
            self.allocs.append(Alloc(buffer, self.m.aligned_bytes(nbytes)))  # tiles start on aligned addresses
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
    def load(self, v: Value, buffer: Buffer, op: Op | None, into: int = -1) -> int:
        """Bring value ``v`` (a tile parameter or a copy of one) from GM into ``buffer`` (UB or L1), into the
        resident slot ``into`` when given."""
        nbytes = _tile_bytes(v)
        slot = into if into >= 0 else self.new_slot(buffer, nbytes)
        unit, path = (AIV, self.m.gm_to_ub) if buffer == Buffer.UB else (AIC, self.m.gm_to_l1)
        window = self.window.get(v.id)
        self.emit(Instr(unit, Pipe.MTE2, "load", GM_READ, op, nbytes, path, self.source[v.id], write=slot,
                        alloc=self.fresh_alloc(slot), window=window, extent=None if window else _extent(v)))
        self.where.setdefault(v.id, {})[buffer] = slot
        return slot

    def ensure(self, v: Value, buffer: Buffer, op: Op, into: int = -1) -> int:
        """The slot holding ``v`` in ``buffer``, emitting the moves that bring it there (the last one into the
        resident slot ``into`` when given: a store into a resident parameter)."""
        have = self.where.get(v.id, {})
        if buffer in have and into < 0:
            return have[buffer]
        nbytes = _tile_bytes(v)
        m = self.m
        if buffer in (Buffer.UB, Buffer.L1) and v.id in self.source and Buffer.L0C not in have:
            return self.load(v, buffer, op, into)
        if buffer == Buffer.UB and Buffer.L0C not in have:
            raise self._stuck_in_l1(v, op)
        new = self.new_slot if into < 0 else lambda buf, n: into
        if buffer == Buffer.UB:  # L0C -> GM (FIX) -> UB (MTE2): the AIC and AIV share nothing on chip
            staged = self.emit(Instr(AIC, Pipe.FIX, "fix", GM_WRITE, op, nbytes, m.l0c_to_gm, None,
                                     reads=(have[Buffer.L0C],)))
            slot = new(Buffer.UB, nbytes)
            self.emit(Instr(AIV, Pipe.MTE2, "load", GM_READ, op, nbytes, m.gm_to_ub, None,
                            reads=(self._marker(staged),), write=slot, alloc=self.fresh_alloc(slot)))
        elif buffer == Buffer.L1:
            slot = new(Buffer.L1, nbytes)
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
            slot = new(Buffer.L0C, nbytes)
            self.emit(Instr(AIC, Pipe.MTE1, "extract", ONCHIP, op, nbytes, m.l1_to_l0a,
                            cycles=_move(m.l1_to_l0a, nbytes, m), reads=(l1,), write=slot,
                            alloc=self.fresh_alloc(slot)))
        if into < 0:  # (a resident slot holds the value only until the next store into it)
            self.where.setdefault(v.id, {})[buffer] = slot
        return slot

    def _stuck_in_l1(self, v: Value, op: Op) -> PtortValueError:
        """The error for a tile that lives only in L1 (an L1-resident parameter) but is needed in UB or GM."""
        root = self.alias.get(v.id, v.id)
        name = next((p.name for p in self.ir.params if p.value is not None and p.value.id == root), None)
        what = f"tile '{name}'" if name else "a tile"
        return PtortValueError(
            f"kernel '{self.ir.name}': `{op}` needs {what} in UB (for the vector unit or a store to global memory), "
            "but it lives in L1 (an on-chip tensor with location=Location.L1), and the AIC's L1 has no path to an "
            "AIV's UB or to global memory.",
            hint="Give the tensor location=Location.UB if vector ops or stores use it, or use an L1 tile only as a "
                 "matmul operand.", where=op.loc, locate=op.loc is None)

    def copy_into(self, buffer: Buffer, src: int, dst: int, nbytes: int, op: Op) -> None:
        """A move within one buffer into the resident slot ``dst`` (UB: a V copy; L1, L0C: estimates)."""
        m = self.m
        if buffer == Buffer.UB:
            cls = m.vec_unary
            cycles = cls.slope_cycles * max(1, _ceil_div(nbytes, m.vector_repeat_bytes))
            self.emit(Instr(AIV, Pipe.V, "copy", STATIC, op, cycles=cycles, head_cycles=cls.head_cycles,
                            tail_cycles=cls.tail_cycles, reads=(src,), write=dst))
        elif buffer == Buffer.L1:
            self.emit(Instr(AIC, Pipe.MTE1, "copy", ONCHIP, op, nbytes, m.l1_to_l0a,
                            cycles=_move(m.l1_to_l0a, nbytes, m), reads=(src,), write=dst))
        else:
            self.emit(Instr(AIC, Pipe.FIX, "copy", ONCHIP, op, nbytes, m.l0c_to_l1,
                            cycles=_move(m.l0c_to_l1, nbytes, m), reads=(src,), write=dst))

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
            if self.last_use.get(self.alias.get(v.id, v.id)) == i:  # a slice: its whole tile must die here
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
            elif k is OpKind.SLICE:
                self.lower_slice(op)
            elif op.result is not None and op.result.id in self.fused:
                continue  # a cast or relu the FIX store of its result applies on the way out (lower_store)
            else:
                self.lower_vector(op, i)
        self.assign_frees()
        return Plan(self.ir.name, self.instrs, self.allocs, any(ins.unit == AIV for ins in self.instrs),
                    self.slot_alloc, dict(self.resident_slot))

    # -- FIX fusion ---------------------------------------------------------------------------------------------------
    def _fix_fusions(self) -> dict[int, Value]:
        """The casts and relus that a GM store of their result does on FIX (NPU_MODEL §2.1: L0C -> GM "with fused
        cast/quant/relu"): ``store(y, cast(m))``, ``store(y, relu(m))``, ``store(y, cast(relu(m)))`` and
        ``store(y, relu(cast(m)))``, where ``m`` is a matmul result (in L0C), each step's result is used only by the
        next one (the last only by the store), the cast is one FIX converts (``_FIX_CASTS``) and ``y`` is in GM (not
        a resident parameter). Each such step's result -> ``m``; ``m`` then stays in L0C until the store."""
        ops = self.ir.ops
        producer = {op.result.id: (i, op) for i, op in enumerate(ops) if op.result is not None}
        users: dict[int, list[int]] = {}
        for i, op in enumerate(ops):
            for x in op.operands:
                if isinstance(x, Value):
                    users.setdefault(x.id, []).append(i)
        fused: dict[int, Value] = {}
        for i, op in enumerate(ops):
            if op.kind is OpKind.STORE and not self._stores_on_chip(op.operands[0], producer):
                chain = _fix_chain(op.operands[1], i, producer, users)
                if chain is not None:
                    m, steps = chain
                    for step in steps:
                        fused[step.id] = m
                    self.last_use[m.id] = max(self.last_use.get(m.id, i), i)  # L0C holds m until the store reads it
        return fused

    def _stores_on_chip(self, dst: Value | Literal, producer: dict[int, tuple[int, Op]]) -> bool:
        """Whether a store into ``dst`` writes a resident parameter (it, or a view of it), not GM."""
        while isinstance(dst, Value) and dst.id in producer and producer[dst.id][1].kind in (OpKind.SLICE, OpKind.LOAD):
            dst = producer[dst.id][1].operands[0]
        return isinstance(dst, Value) and self.param_of.get(dst.id) in self.resident

    # -- resident parameters ------------------------------------------------------------------------------------------
    def _in_place(self) -> dict[int, str]:
        """The values whose producing op writes straight into a resident parameter's slot: each is stored whole into
        that parameter later, its producer can write that buffer, no other store into the parameter comes between,
        and nothing needs the slot's old value from the producer on (earlier views of the slot are not used after
        it, and the parameter is not read between the producer and the store)."""
        ops = self.ir.ops
        resident = {p.value.id: p.name for p in self.ir.params if p.name in self.resident_slot and p.value is not None}
        holders: dict[str, set[int]] = {name: set() for name in resident.values()}  # values that view the slot now
        stores: dict[int, list[tuple[int, str]]] = {}  # value -> (op index, parameter) of its whole resident stores
        for i, op in enumerate(ops):
            dst, src = (op.operands + (None, None))[:2]
            if op.kind is OpKind.STORE and isinstance(dst, Value) and dst.id in resident and isinstance(src, Value):
                stores.setdefault(src.id, []).append((i, resident[dst.id]))
        into: dict[int, str] = {}
        for j, op in enumerate(ops):
            v, x = op.result, op.operands[0] if op.operands else None
            if v is None:
                continue
            if op.kind in (OpKind.LOAD, OpKind.SLICE) and isinstance(x, Value):
                root = resident.get(x.id) or next((n for n, vs in holders.items() if x.id in vs), None)
                if root is not None:  # a view of the slot
                    holders[root].add(v.id)
                    continue
            for i, name in stores.get(v.id, ()):
                if self._writes_buffer(op, self.resident[name]) and self._slot_free(j, i, name, holders[name]):
                    into[v.id] = name
                    holders[name].add(v.id)
                    break
        return into

    @staticmethod
    def _writes_buffer(op: Op, buffer: Buffer) -> bool:
        """Whether ``op`` can write its result straight into ``buffer``."""
        if op.kind is OpKind.LOAD:
            return buffer in (Buffer.UB, Buffer.L1)  # MTE2 from GM into either
        if op.kind is OpKind.MATMUL:
            return buffer == Buffer.L0C
        return op.kind is not OpKind.SLICE and buffer == Buffer.UB  # the vector ops

    def _slot_free(self, j: int, i: int, name: str, holders: set[int]) -> bool:
        """Whether op ``j`` may overwrite parameter ``name``'s slot for the store at op ``i``."""
        param = next(p.value.id for p in self.ir.params if p.name == name and p.value is not None)
        if any(self.last_use.get(h, -1) > j for h in holders):
            return False  # an earlier view of the old value is still used
        for k in range(j + 1, i):
            op = self.ir.ops[k]
            if any(isinstance(x, Value) and x.id == param for x in op.operands):
                return False  # the parameter's old value is read (or stored into) before op i
        return True

    def resident_target(self, dst: Value) -> str | None:
        """The resident parameter a store into ``dst`` writes (``dst`` itself or a slice of it), else None."""
        root = self.alias.get(dst.id, dst.id)
        for p in self.ir.params:
            if p.value is not None and p.value.id == root and p.name in self.resident_slot:
                return p.name
        return None

    def store_resident(self, op: Op, src: Value, name: str, nbytes: int) -> None:
        """A store into a resident parameter: nothing when the value was made in its slot, else a move into it."""
        buffer, slot = self.resident[name], self.resident_slot[name]
        have = self.where.get(src.id, {})
        if have.get(buffer) == slot:
            return
        if buffer in have:
            self.copy_into(buffer, have[buffer], slot, nbytes, op)
        else:
            self.ensure(src, buffer, op, into=slot)

    def lower_slice(self, op: Op) -> None:
        """A view, no instruction: a slice of an on-chip tile shares its slots (and so its allocation); a slice of a
        parameter not loaded yet is a sub-block of it in GM, which a load or store then moves alone."""
        x, v = op.operands[0], op.result
        assert isinstance(x, Value) and v is not None
        (r0, r1), (c0, c1) = op.attr("rows"), op.attr("cols")
        if x.id in self.source:
            b0, _, d0, _ = self.window.get(x.id, (0, x.shape[0], 0, x.shape[1]))
            self.source[v.id] = self.source[x.id]
            self.window[v.id] = (b0 + r0, b0 + r1, d0 + c0, d0 + c1)
        if x.id in self.where:
            self.where[v.id] = dict(self.where[x.id])
            self.alias[v.id] = self.alias.get(x.id, x.id)

    def lower_load(self, op: Op) -> None:
        src, v = op.operands[0], op.result
        assert isinstance(src, Value) and v is not None
        if src.id not in self.source:  # a resident parameter (or a slice of one): already there, free
            self.where[v.id] = dict(self.where.get(src.id, {}))
            self.alias[v.id] = self.alias.get(src.id, src.id)
            return
        self.source[v.id] = self.source[src.id]
        if src.id in self.window:
            self.window[v.id] = self.window[src.id]
        roles = self.roles.get(v.id, set())
        target = self.into.get(v.id)  # loaded straight into a resident parameter's slot
        buffers = set()
        if roles & {"mm_a", "mm_b", "mm_acc"}:
            buffers.add(Buffer.L1)
        if "vec" in roles or not roles or ("store" in roles and self._stored_elsewhere(v, target)):
            buffers.add(Buffer.UB)
        if target is not None:
            buffers.add(self.resident[target])
        for buffer in (Buffer.L1, Buffer.UB):
            if buffer in buffers:
                into = self.resident_slot[target] if target is not None and self.resident[target] == buffer else -1
                self.load(v, buffer, op, into)

    def _stored_elsewhere(self, v: Value, target: str | None) -> bool:
        """Whether ``v`` is stored somewhere other than the resident parameter it is loaded straight into."""
        if target is None:
            return True
        return any(op.kind is OpKind.STORE and getattr(op.operands[1], "id", None) == v.id
                   and self.resident_target(op.operands[0]) != target
                   for op in self.ir.ops if isinstance(op.operands[0], Value))

    def lower_store(self, op: Op) -> None:
        dst, src = op.operands
        assert isinstance(dst, Value) and isinstance(src, Value)
        nbytes = _tile_bytes(src)
        target = self.resident_target(dst) if self.resident_slot else None
        if target is not None:
            self.store_resident(op, src, target, nbytes)
            return
        have = self.where.get(src.id, {})
        region, window = self.source.get(dst.id, dst.name), self.window.get(dst.id)  # a slice: its sub-block
        base = self.fused.get(src.id)  # a cast/relu FIX applies on the way out: it reads the matmul result in L0C
        if base is not None or (Buffer.L0C in have and Buffer.UB not in have):
            l0c = self.where[base.id][Buffer.L0C] if base is not None else have[Buffer.L0C]
            self.emit(Instr(AIC, Pipe.FIX, "store", GM_WRITE, op, nbytes, self.m.l0c_to_gm, region, reads=(l0c,),
                            window=window, extent=None if window else _extent(dst)))
        else:
            slot = self.ensure(src, Buffer.UB, op)
            self.emit(Instr(AIV, Pipe.MTE3, "store", GM_WRITE, op, nbytes, self.m.ub_to_gm, region, reads=(slot,),
                            window=window, extent=None if window else _extent(dst)))

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
        target = self.into.get(op.result.id)  # made in a resident L0C tile's slot (e.g. an accumulator kept there)
        if len(op.operands) == 3:
            acc = op.operands[2]
            assert isinstance(acc, Value)
            acc_slot = self.ensure(acc, Buffer.L0C, op)
            result = self.resident_slot[target] if target is not None else \
                self.new_slot(Buffer.L0C, out_bytes, self.reusable([(acc, acc_slot)], Buffer.L0C, out_bytes, i))
        else:
            result = self.resident_slot[target] if target is not None else self.new_slot(Buffer.L0C, out_bytes)
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
        # a concat copies its parts into a new allocation (writing over a part in place would clobber the next one)
        reuse = -1 if op.kind is OpKind.CONCAT else self.reusable(slots, Buffer.UB, nbytes, i)
        target = self.into.get(op.result.id)  # made in a resident UB tile's slot
        result = self.resident_slot[target] if target is not None else self.new_slot(Buffer.UB, nbytes, reuse)
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


def _fix_chain(v: Value | Literal, user: int, producer: dict[int, tuple[int, Op]],
               users: dict[int, list[int]]) -> tuple[Value, list[Value]] | None:
    """``(m, steps)`` when ``v``, stored by op ``user``, is a cast and/or relu (one of each at most) of the matmul
    result ``m`` that FIX can apply on the way out, each step's result used only by the next (``steps``: their
    results), else None."""
    steps: list[Value] = []
    kinds: set[OpKind] = set()
    while isinstance(v, Value) and v.id in producer:
        j, op = producer[v.id]
        if op.kind is OpKind.MATMUL:
            converts = _FIX_CASTS.get(v.dtype, frozenset())
            casts_ok = all(s.dtype in converts for s in steps if producer[s.id][1].kind is OpKind.CAST)
            return (v, steps) if steps and casts_ok else None
        if op.kind not in (OpKind.CAST, OpKind.RELU) or op.kind in kinds or users.get(v.id) != [user]:
            return None
        kinds.add(op.kind)
        steps.append(v)
        v, user = op.operands[0], j
    return None


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
    """The whole K when its A and B slices each fit one L0A/L0B ping-pong half, else the largest power-of-two count
    of K-fractals that does (K = 48 is one slice, not 32 + 16: a cheaper matmul at K = 49 would be an artifact)."""
    half_a = m.l0a_bytes // m.l0_pingpong_slices
    half_b = m.l0b_bytes // m.l0_pingpong_slices
    depth_up = _ceil_div(depth, k_frac) * k_frac
    if rows * depth_up * elt <= half_a and depth_up * cols * elt <= half_b:
        return depth
    ks = k_frac
    while ks * 2 <= depth_up and rows * ks * 2 * elt <= half_a and ks * 2 * cols * elt <= half_b:
        ks *= 2
    return min(ks, depth)


def _elems(v: Value) -> int:
    rows, cols = v.shape
    return rows * cols


# Activations have no single vector instruction on A2/A3: each is priced as the §3.2 instructions that compute it
# step by step (derived; sim/numerics.py evaluates the same steps). s = tile-scalar, e = exp, b = binary (tile-tile),
# d = a scalar divided by a tile, D = a tile divided by a tile. b and D are binary ALU instructions, so they pay
# §3.2's count-mode charge on a byte count that is not a whole number of repeats, as tl.mul and tl.div of two tiles do.
_ACTIVATION_STEPS = {
    OpKind.SIGMOID: "sesd",  # -x, e**, +1, 1 /
    OpKind.SILU: "sesD",  # -x, e**, +1, x /
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
    classes = {"s": m.vec_scalar, "e": m.vec_transcendental, "d": m.vec_div, "D": m.vec_div, "b": m.vec_binary,
               "c": m.vec_cast}
    cycles = 0
    for step in steps:
        nbytes = elems * (max(itemsize, m.transcendental_elem_bytes) if step == "e" else itemsize)
        cycles += classes[step].slope_cycles * max(1, _ceil_div(nbytes, rep))
        if step in "bD" and nbytes % rep:  # count mode (§3.2), tile-tile ALU steps only
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
               OpKind.SLICE_ODD, OpKind.INTERLEAVE, OpKind.BROADCAST, OpKind.EXTRACT_TOPK, OpKind.CONCAT):
        # data rearrangement (estimate): vtranspose (16 x 16 blocks), GatherMask (even/odd columns, TopK
        # indices), gather for interleave and broadcast, and the copies of a concat each take about one vcopy-rate
        # pass over the result tile
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


def lower(ir: KernelIR, m: Machine, resident: tuple[tuple[str, Buffer], ...] = ()) -> Plan:
    """The pipe instructions of ``ir`` on machine ``m``; ``resident`` names the tile parameters that already sit on
    chip, and in which buffer (an on-chip tensor, an on-chip tile channel's slot)."""
    return _Lowering(ir, m, resident).lower()


@dataclass(frozen=True, slots=True)
class Peak:
    """The most bytes one buffer of a lowered kernel holds at once: at instruction ``at``, the allocations
    ``live`` (the one taken there included)."""

    buffer: Buffer
    bytes: int
    at: int
    live: tuple[int, ...]


def buffer_peaks(plan: Plan) -> dict[Buffer, Peak]:
    """The peak of each buffer the kernel uses, over its instruction order, by the run's rule (``buffers``): an
    allocation is held from the instruction that takes it to the end of the one that last uses it. One task's
    allocations are all that can be held when it takes one (earlier tasks' have ends, which only delay it), so a
    peak over the buffer's size is exactly a run's CapacityError at that instruction."""
    held: dict[int, int] = {}
    level: dict[Buffer, int] = {}
    peaks: dict[Buffer, Peak] = {}
    for n, ins in enumerate(plan.instrs):
        if ins.alloc >= 0:
            alloc = plan.allocs[ins.alloc]
            held[ins.alloc] = alloc.bytes
            now = level[alloc.buffer] = level.get(alloc.buffer, 0) + alloc.bytes
            best = peaks.get(alloc.buffer)
            if best is None or now > best.bytes:
                live = tuple(a for a in held if plan.allocs[a].buffer == alloc.buffer)
                peaks[alloc.buffer] = Peak(alloc.buffer, now, n, live)
        for a in ins.frees:
            if a in held:
                level[plan.allocs[a].buffer] -= held.pop(a)
    return peaks


def describe(plan: Plan) -> str:
    """One line per instruction (for debugging and docs): unit.pipe name bytes/cycles."""
    lines = []
    for ins in plan.instrs:
        what = f"{ins.bytes} B" if ins.kind in (GM_READ, GM_WRITE) else f"{ins.cycles} cyc"
        lines.append(f"{ins.unit}.{ins.pipe:<5} {ins.name:<8} {what}")
    return "\n".join(lines)


__all__ = ["Instr", "Alloc", "Plan", "Peak", "lower", "buffer_peaks", "describe", "AIC", "AIV", "GM_READ", "GM_WRITE",
           "ONCHIP", "STATIC"]
