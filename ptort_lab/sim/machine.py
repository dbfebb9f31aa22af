"""Machine presets: every constant of the NPU timing model, each with its source in design/NPU_MODEL.md (the
repository's maintained copy, with the issue 13 amendments: docs/explanation/npu_model_sources.md; its § numbers
are the ones in the field comments below).

A ``Machine`` is a frozen dataclass; ``ascend_910b`` (Ascend 910B2, the default) is sourced from NPU_MODEL §1-§4.
``machine.replace(hbm_bytes_per_cycle=530)`` derives a variant; ``get_machine("ascend_910b4")`` looks a preset up.
Every constant is checked when a Machine (or TransferCost / VectorCost) is built, against ``_MACHINE_RULES``: a bad
one raises PtortTypeError / PtortValueError naming the machine, the constant, the value, the rule and the preset's.

What a core is: ``num_cores`` counts physical AI cores; each is one cube unit (AIC: pipes MTE2, MTE1, CUBE, FIX;
buffers L1, L0A, L0B, L0C) plus ``aiv_per_core`` vector units (AIV0, AIV1: pipes MTE2, V, MTE3; buffer UB), which
share nothing on chip (§2.1). ``Pipe`` and ``Buffer`` name them for the cost model, the exporter and the views.
A data-parallel schedule dispatches tasks to AI cores, so the GEMM runs on 24 cores = 24 AICs, and a
vector-only workload on 24 cores keeps all 48 AIVs busy (see ``costs.NpuCostModel``).
"""
from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import Any, NamedTuple

from ..dsl.tasks import MAX_CYCLES, cycles_bound_hint
from ..errors import PtortTypeError, PtortValueError

KIB = 1024


def bytes_text(n: int) -> str:
    """``196608 bytes (192 KiB)``, ``1536 bytes (1.5 KiB)``, ``100 bytes``: a buffer size as errors give it."""
    if n < KIB:
        return f"{n} bytes"
    return f"{n} bytes ({n // KIB} KiB)" if n % KIB == 0 else f"{n} bytes ({n / KIB:.1f} KiB)"
MIB = 1024 * KIB
L2_REPLACEMENTS = ("fifo", "lru")  # memory.GlobalMemory implements both
# §1 f_clk of the 910B2: fa_cost_model.py SOC_SPECS, pypto ModelTop.cpp, npu-smi "1800". The clock of the default
# machine, and of a trace or cost model that names none.
DEFAULT_CLOCK_HZ = 1.8e9
MIN_CLOCK_HZ, MAX_CLOCK_HZ = 1.0, 1e15  # a trace draws cycles in ns from the clock: finite and exact in between


def clock_range_error(owner: str, clock_hz: Any, example: str) -> PtortValueError | None:
    """The error for a clock outside MIN_CLOCK_HZ..MAX_CLOCK_HZ (None when it is inside): a run at that clock could
    not be saved, shown or summed."""
    if MIN_CLOCK_HZ <= clock_hz <= MAX_CLOCK_HZ:
        return None
    shown = repr(clock_hz) if not isinstance(clock_hz, int) or clock_hz.bit_length() <= 64 else \
        f"an int of {clock_hz.bit_length()} bits"
    return PtortValueError(f"{owner}: clock_hz must be a frequency of 1 Hz to 1e15 Hz, got {shown}.",
                           hint=f"Cycles become nanoseconds at this clock in traces and timelines: use e.g. {example}.")


def cycles_to_us(cycles: int, clock_hz: float) -> float:
    """``cycles`` at ``clock_hz`` in microseconds (0.0 without a clock): the one conversion every report uses."""
    return cycles / clock_hz * 1e6 if clock_hz else 0.0


class _Name(str, Enum):
    """Members that are their own names as plain text (``f"{Pipe.V}" == "V"``, as StrEnum, which 3.10 lacks)."""

    __str__ = str.__str__
    __format__ = str.__format__  # type: ignore[assignment]  # str's own (C, fast), exactly as StrEnum does


class Pipe(_Name):
    """The pipes of an AI core (NPU_MODEL §2.1), in data-path order: the order the exporter draws lanes in."""

    MTE2 = "MTE2"  # loads: GM -> L1 on the AIC, GM -> UB on an AIV
    MTE1 = "MTE1"  # the cube's operand extracts: L1 -> L0A / L0B (AIC)
    CUBE = "CUBE"  # matmul: L0A x L0B -> L0C (the AIC's M pipe)
    FIX = "FIX"  # the cube's results out: L0C -> GM or L1 (AIC)
    V = "V"  # vector ops on UB: elementwise, reduce, cast, select (AIV)
    MTE3 = "MTE3"  # stores: UB -> GM (AIV)


class Buffer(_Name):
    """The on-chip buffers of an AI core (NPU_MODEL §1); ``Machine.buffer_bytes`` gives their sizes."""

    UB = "UB"  # unified buffer of each AIV: vector operands and results
    L1 = "L1"  # the AIC's staging buffer: matmul operands loaded from GM
    L0A = "L0A"  # the cube's left operand
    L0B = "L0B"  # the cube's right operand
    L0C = "L0C"  # the cube's accumulator


class _Rule(NamedTuple):
    """What one numeric constant may hold: a number ``>= low`` (``> low`` when ``strict``) counting ``unit``, at most
    ``high`` when given, and a power of two when ``power_of_two``."""

    low: float
    unit: str
    strict: bool = False
    why: str = ""  # one sentence for the hint: what a value out of range would do
    high: int | None = None
    power_of_two: bool = False


# A cycle count is at most 2**53, as task(cycles=...) and channel_latency_cycles are: a run's times are sums of them,
# and a trace keeps times as JSON numbers, exact only up to 2**53 (a longer run could not be saved or loaded).
_CYCLES = _Rule(0, "cycles", why="A negative latency or cost would make runs silently faster than free.",
                high=MAX_CYCLES)
_BANDWIDTH = _Rule(1, "bytes per cycle", why="A path that moves 0 or fewer bytes per cycle can never finish.")
_BYTES = _Rule(1, "bytes", why="A buffer must hold at least one byte.")
_GRAIN = _Rule(1, "bytes", why="A block, repeat, element or fractal holds at least one byte.")

# Every numeric constant of Machine; an int field missing here gets _CYCLES (test_machine_bad_input checks coverage).
_MACHINE_RULES: dict[str, _Rule] = {
    "clock_hz": _Rule(0, "Hz", strict=True, why="Cycles are turned into seconds with it."),
    "num_cores": _Rule(1, "AI cores", why="A chip needs at least one AI core."),
    "aiv_per_core": _Rule(1, "AIVs per AI core", why="Vector tasks run on the AIVs, so a core needs at least one."),
    **dict.fromkeys(("ub_bytes", "l1_bytes", "l0a_bytes", "l0b_bytes", "l0c_bytes", "l2_bytes"), _BYTES),
    **dict.fromkeys(("hbm_bytes_per_cycle", "l2_bytes_per_cycle", "l2_port_bytes_per_cycle",
                     "l2_write_bytes_per_cycle", "l2_write_port_bytes_per_cycle"), _BANDWIDTH),
    **dict.fromkeys(("read_request_bytes", "write_request_bytes"), _GRAIN),
    "nd2nz_efficiency_pct": _Rule(1, "percent", why="A load that moves nothing per request can never finish.",
                                  high=100),
    **dict.fromkeys(("read_outstanding_requests", "write_outstanding_requests"),
                    _Rule(1, "requests", why="A core with no request in flight can never move data.")),
    "hbm_peak_bytes_per_s": _Rule(1, "bytes per second", why="The roofline bound divides by it."),
    "transfer_align_bytes": _GRAIN._replace(power_of_two=True),  # transfers move whole aligned blocks
    **dict.fromkeys(("vector_repeat_bytes", "transcendental_elem_bytes", "cube_fractal_k_bytes"), _GRAIN),
    "cube_fractal_rows": _Rule(1, "rows", why="Matmul sizes are divided into fractals of this many rows."),
    "l0_pingpong_slices": _Rule(1, "slices", why="L0A/L0B are divided into this many slices."),
    "cube_fp32_cycles_per_fractal": _Rule(1, "cycles", why="One fractal takes at least one cycle.",
                                          high=MAX_CYCLES),
    **dict.fromkeys(("hbm_read_latency_cycles", "l2_hit_latency_cycles", "l2_write_latency_cycles",
                     "hbm_write_latency_cycles", "block_dispatch_cycles", "vec_count_mode_cycles",
                     "row_reduce_fixed_cycles", "row_reduce_per_row_cycles", "row_reduce_tail_cycles",
                     "col_reduce_fixed_cycles", "col_reduce_per_row_cycles", "cube_head_cycles",
                     "launch_overhead_cycles", "channel_latency_cycles"), _CYCLES),
}
_TRANSFER_RULES: dict[str, _Rule] = {"bytes_per_cycle": _BANDWIDTH, "fixed_cycles": _CYCLES}
_VECTOR_RULES: dict[str, _Rule] = dict.fromkeys(("head_cycles", "slope_cycles", "tail_cycles"), _CYCLES)


def _check_fields(obj: Any, owner: str, rules: dict[str, _Rule], fix: Callable[[str, _Rule], str]) -> None:
    """Check every int/float field of the frozen dataclass ``obj`` against ``rules``; numpy (and other numeric)
    scalars are stored as plain ints/floats. A bad one raises PtortTypeError / PtortValueError naming ``owner``, the
    field, the value and the rule, with ``fix(field, rule)`` as the hint."""
    for f in dataclasses.fields(obj):
        if f.type not in ("int", "float"):
            continue
        value, rule, integer = getattr(obj, f.name), rules.get(f.name, _CYCLES), f.type == "int"
        plain = type(value) is int or (type(value) is float and not integer)
        if plain and (value > rule.low or (value == rule.low and not rule.strict)) \
                and (type(value) is int or math.isfinite(value)) and (rule.high is None or value <= rule.high) \
                and not (rule.power_of_two and value & (value - 1)):
            continue  # the fast path: a plain number in range
        need = f"{owner}: {f.name} must be {'an int' if integer else 'a number'} {_bound(rule)} ({rule.unit})"
        if isinstance(value, bool) or not isinstance(value, numbers.Integral if integer else numbers.Real):
            hint = (f"Pass an int: {int(value)} instead of {value!r}."
                    if integer and isinstance(value, float) and value.is_integer() else fix(f.name, rule))
            raise PtortTypeError(f"{need}, got {type(value).__name__} {value!r}.", hint=hint)
        finite = isinstance(value, numbers.Integral) or math.isfinite(value)
        if not finite or (value <= rule.low if rule.strict else value < rule.low):
            raise PtortValueError(f"{need}, got {value!r}.", hint=f"{rule.why} {fix(f.name, rule)}".strip())
        # e.g. np.int64 -> int (an int field holds an Integral by now: the isinstance is for the type checker)
        plain_value = int(value) if integer and isinstance(value, numbers.Integral) else float(value)
        if rule.high is not None and plain_value > rule.high:
            raise _too_high(owner, f.name, rule, plain_value, fix)
        if rule.power_of_two and int(plain_value) & (int(plain_value) - 1):
            raise PtortValueError(f"{owner}: {f.name} must be a power of two ({rule.unit}), got {plain_value!r}.",
                                  hint=f"Transfers move whole aligned blocks of a power-of-two size. "
                                       f"{fix(f.name, rule)}")
        object.__setattr__(obj, f.name, plain_value)


def _too_high(owner: str, name: str, rule: _Rule, value: float, fix: Callable[[str, _Rule], str]) -> PtortValueError:
    """The error for a constant above its rule's ``high`` (a cycle count past 2**53, a percentage past 100)."""
    shown = repr(value) if not isinstance(value, int) or value.bit_length() <= 64 else \
        f"an int of {value.bit_length()} bits"
    top = _top(rule)
    why = cycles_bound_hint("A cycle count of the timing model") if rule.high == MAX_CYCLES else \
        f"A percentage is at most {rule.high}."
    return PtortValueError(f"{owner}: {name} must be at most {top} ({rule.unit}), got {shown}.",
                           hint=f"{why} {fix(name, rule)}")


def _bound(rule: _Rule) -> str:
    return f"{'>' if rule.strict else '>='} {rule.low:g}"


def _top(rule: _Rule) -> str:
    return "2**53" if rule.high == MAX_CYCLES else f"{rule.high}"


def _range(rule: _Rule) -> str:
    """Every value ``rule`` allows, for a hint: ">= 0 and <= 2**53", ">= 1, a power of two"."""
    return _bound(rule) + (f" and <= {_top(rule)}" if rule.high is not None else "") \
        + (", a power of two" if rule.power_of_two else "")


@dataclass(frozen=True, slots=True)
class TransferCost:
    """One data path: ``cycles = fixed_cycles + ceil32(bytes) / bytes_per_cycle`` (NPU_MODEL §3.1)."""

    bytes_per_cycle: int
    fixed_cycles: int

    def __post_init__(self) -> None:
        _check_fields(self, f"TransferCost{(self.bytes_per_cycle, self.fixed_cycles)!r}", _TRANSFER_RULES,
                      lambda name, rule: f"Use a value {_range(rule)}; ascend_910b's GM->UB path is "
                                         "TransferCost(bytes_per_cycle=60, fixed_cycles=200).")


@dataclass(frozen=True, slots=True)
class VectorCost:
    """One vector instruction class: ``head_cycles`` when the pipe was idle, ``slope_cycles`` per 256 B repeat,
    ``tail_cycles`` before another pipe can observe the result (NPU_MODEL §3.2)."""

    head_cycles: int
    slope_cycles: int
    tail_cycles: int

    def __post_init__(self) -> None:
        _check_fields(self, f"VectorCost{(self.head_cycles, self.slope_cycles, self.tail_cycles)!r}",
                      _VECTOR_RULES, lambda name, rule: f"Use a value {_range(rule)}; ascend_910b's vadd is "
                                                        "VectorCost(head_cycles=10, slope_cycles=2, tail_cycles=14).")


@dataclass(frozen=True, slots=True)
class Machine:
    """Every constant of the NPU timing model. Field comments give the NPU_MODEL.md section and its source."""

    name: str = "ascend_910b"
    # -- chip (§1) ------------------------------------------------------------------------------------------------
    clock_hz: float = DEFAULT_CLOCK_HZ  #: §1 f_clk 1.8 GHz (910B2; sources at DEFAULT_CLOCK_HZ)
    num_cores: int = 24  #: §1 AIC count, one per AI core: fa_cost_model.py SOC_SPECS, npu-smi "Aicore Count 24"
    aiv_per_core: int = 2  #: §1 AIV = 2 per AIC: perf_sim config.hpp VEC_CORES_PER_AIC=2, CrossCoreSetFlag mode 2
    # -- on-chip buffers (§1) -------------------------------------------------------------------------------------
    ub_bytes: int = 192 * KIB  #: §1 UB per AIV: pto-isa buffer_limits.hpp, perf_sim config.hpp, pypto PipeConfig
    l1_bytes: int = 512 * KIB  #: §1 L1 per AIC: same three sources
    l0a_bytes: int = 64 * KIB  #: §1 L0A: same three sources
    l0b_bytes: int = 64 * KIB  #: §1 L0B: same three sources
    l0c_bytes: int = 128 * KIB  #: §1 L0C: same three sources
    # -- global memory (§1, §4.1; memory.py has the model) ---------------------------------------------------------
    hbm_bytes_per_cycle: int = 850  #: §1/§4.1 HBM pool, read misses and L2 write-backs share it: CANN tiling DDR_RW=850
    hbm_peak_bytes_per_s: float = 1.6e12  #: §1 HBM peak 1.6 TB/s: HWConf table; only the roofline bound (§5.3) uses it
    hbm_read_latency_cycles: int = 347  #: §1 HBM read latency: CANN tiling header DDR_LATENCY_RD=347
    hbm_write_latency_cycles: int = 203  #: §1 HBM write latency: CANN tiling header DDR_LATENCY_WD=203 (end flush)
    l2_bytes: int = 192 * MIB  #: §1 chip L2: CANN Ascend910B2.ini l2_size, ascend-boost-comm hardware.h, L2_SIZE_2
    # L2 replacement over whole tiles (memory.py); the hardware policy is unpublished. "fifo": a tile leaves once
    # l2_bytes of newer data has entered, the footprint rule of Huawei's sizing (hiascend "L2 CacheMode", CANN
    # is_fit_l2: A + B + C <= l2_size). "lru": pto-isa perf_sim cache_model.hpp and pypto. V1 7680^3 chose it
    # before issue 13 (LRU was 11 % fast; bench/RESULTS.md, "GEMM calibration"); since issue 13 both land it
    # (FIFO -1.4 %, LRU -4.4 %), and FIFO stays for the footprint rule
    l2_replacement: str = "fifo"  #: §4.1 / §5.1 V1: chosen by the measured 7680^3 GEMM (see the comment above)
    # Kernel-end flush of dirty L2 lines to HBM: no public source says the kernel waits for it (NPU_MODEL §4.1), so
    # by default it is only counted (ProgramStats.memory "l2_dirty_at_end_bytes"); True adds its HBM time at the end
    l2_flush_at_end: bool = False  #: §4.1 write-back L2: kernel-end flush, a model choice (no source either way)
    # Ablation switches (issue 13; docs/explanation/npu_model_sources.md §4.1): False reproduces the model before it
    l2_write_back: bool = True  #: §4.1 hiascend "L2 CacheMode": writes land in L2, dirty lines reach HBM on eviction
    gm_read_overlap: bool = True  #: §4.1 CANN GetDMABiuBw / READ_OTSd: the load pipe does not wait out the latency
    l2_bytes_per_cycle: int = 2550  #: §1/§4.1 L2 read pool (hits): CANN tiling header L2_RO=2550
    l2_port_bytes_per_cycle: int = 128  #: §1/§4.1 per-core L2 read port: CANN tiling header L2_PHY_RO=128
    l2_write_bytes_per_cycle: int = 2064  #: §1/§4.1 L2 write pool: CANN Ascend910B2.ini l2_write_rate=86 x 24 cores
    l2_write_port_bytes_per_cycle: int = 128  #: §1/§4.1 per-core L2 write port: CANN tiling header L2_PHY_WO=128
    l2_hit_latency_cycles: int = 236  #: §1 L2 hit read latency: CANN tiling header L2_LATENCY_RD=236
    l2_write_latency_cycles: int = 96  #: §1 L2 write latency (a posted write is visible after it): L2_LATENCY_WD=96
    # Outstanding requests per transfer (Little's law: bandwidth <= outstanding x request bytes / latency): CANN
    # cache_tiling_basic_block_est.cc l2_biu_bw = request_sum * READ_OTSd / (L2_LATENCY_RD * requests)
    read_outstanding_requests: int = 64  #: §4.1 CANN tiling header READ_OTSd=64 (per core)
    read_request_bytes: int = 512  #: §4.1 CANN cache_tiling_request_bytes.cpp: reads split into 512 B requests
    write_outstanding_requests: int = 48  #: §4.1 CANN tiling header WRITE_OTSd=48 (per core)
    write_request_bytes: int = 256  #: §4.1 CANN cache_tiling_request_bytes.cpp: writes split into 256 B requests
    # A GM -> L1 load converts ND rows to the cube's NZ fractals; its requests then move less per latency: CANN
    # GetDMABiuBw "dma_effi *= 0.75; // ND bandwidth ratio 1.2T / NZ bandwidth 1.6T = 0.75" (on the outstanding rate)
    nd2nz_efficiency_pct: int = 75  #: §4.1 CANN cache_tiling_basic_block_est.cc GetDMABiuBw (percent)
    # -- data paths (§3.1): per-core uncontended bandwidth and fixed cost per transfer ----------------------------
    # GM paths (memory.py): bytes_per_cycle caps one transfer (a read's HBM miss rate, a write's rate into L2);
    # fixed_cycles is the pipe's per-transfer issue cost, half the latency of the level it talks to, as CANN's
    # GetDMABiuBw charges latency / 2 per DMA; the latency itself is paid on the data, not on the pipe. GM -> L1 is
    # the exception: a fit to V1 (CANN's 118 leaves 1536^3 TLOAD -8.6 pt and 7680^3 TMATMUL +7.7 pt out of target;
    # CANN's ND -> NZ factor 0.75 on the whole DMA exposes 118 / 0.75 = 157; bench/RESULTS.md, "issue 13")
    gm_to_ub: TransferCost = TransferCost(60, 118)  #: TLOAD Vec: pto-isa flat table 100.9 GiB/s; L2_LATENCY_RD / 2
    gm_to_l1: TransferCost = TransferCost(80, 210)  #: TLOAD Mat: flat 135 GiB/s = 78 B/cyc; issue 210 (fit, V1)
    ub_to_gm: TransferCost = TransferCost(100, 48)  #: TSTORE Vec (MTE3): flat 188 GiB/s; L2_LATENCY_WD / 2
    l0c_to_gm: TransferCost = TransferCost(75, 48)  #: TSTORE Acc (FIX): 75 B/cyc fit to V1, no vendor rate; WD / 2
    l0c_to_l1: TransferCost = TransferCost(74, 50)  #: FIX L0C->L1: flat 128 GiB/s; L_fix 50 (estimate)
    l1_to_l0a: TransferCost = TransferCost(256, 40)  #: TEXTRACT left, MTE1: flat 441 GiB/s, CANN L0A_RO=256; 40 derived
    l1_to_l0b: TransferCost = TransferCost(128, 40)  #: TEXTRACT right (MTE1): flat 220.5 GiB/s, CANN L0B_RO=128
    transfer_align_bytes: int = 32  #: §3.1 ceil32(bytes): transfers move whole 32 B blocks (UB is 32 B aligned, §1)
    # -- vector pipe (§3.2, pto-isa cce_costmodel_vector_compute.hpp) ------------------------------------------------
    vector_repeat_bytes: int = 256  #: §1 one repeat = 8 x 32 B blocks: CCE intrinsic doc cceapi_0007
    vec_binary: VectorCost = VectorCost(10, 2, 14)  #: vadd/vsub/vmul/vmax/vmin, also vcmp (same datapath)
    vec_scalar: VectorCost = VectorCost(10, 1, 13)  #: vadds/vmuls/vmaxs/vmins (tile op scalar)
    vec_transcendental: VectorCost = VectorCost(13, 2, 18)  #: vexp/vln/vsqrt
    vec_unary: VectorCost = VectorCost(10, 1, 13)  #: vrsqrt/vrelu/vcopy; also vabs and neg (= vmuls by -1)
    vec_div: VectorCost = VectorCost(11, 4, 19)  #: vdiv (and tile / scalar: TDIVS fits 0.07-0.078 cyc/elem, §3.3)
    vec_cast: VectorCost = VectorCost(14, 2, 18)  #: vconv, repeats counted on the wider dtype (low confidence, §6.4)
    vec_select: VectorCost = VectorCost(13, 2, 14)  #: vsel
    vec_default: VectorCost = VectorCost(6, 2, 0)  #: default / unknown (used for tl.full = vector_dup)
    vec_count_mode_cycles: int = 16  #: §3.2 binary ALU ops pay +16 when bytes are not a multiple of one repeat
    transcendental_elem_bytes: int = 4  #: §3.2 exp/log/sqrt cost per element: fp16 counts as fp32 (0.0314 cyc/elem)
    row_reduce_fixed_cycles: int = 50  #: §3.3 structural row reduce R*(2*(ceil(C*s/256)-1)+7)+50 (derived)
    row_reduce_per_row_cycles: int = 7  #: §3.3 one vcadd/vcmax per row (vcadd slope 7, §3.2)
    row_reduce_tail_cycles: int = 32  #: §3.2 vcadd tail
    col_reduce_fixed_cycles: int = 8  #: §3.3 TCOLSUM fp32 C=128: 0.17*R*C + 8
    col_reduce_per_row_cycles: int = 18  #: §3.3 (derived): 0.17*128 = 21.8 cyc/row = 18 issue + 2 repeats * 2
    # -- cube (§3.4, pto-isa formula_backend_compute.hpp) ------------------------------------------------------------
    cube_head_cycles: int = 6  #: §3.4 per-op fixed cost, paid when M was idle
    cube_fractal_rows: int = 16  #: §3.4 one fractal = 16 x 16 x (32 B / sizeof) MACs per cycle
    cube_fractal_k_bytes: int = 32  #: §3.4 K-fractal = 16 fp16, 8 fp32, 32 int8
    cube_fp32_cycles_per_fractal: int = 2  #: §3.4 r = 2 for fp32 (quarter rate), r = 1 for 16/8-bit inputs
    l0_pingpong_slices: int = 2  #: L0A/L0B split in ping-pong halves: gemm_performance_kernel.cpp L0_PINGPONG_BYTES
    # -- launch (§3.5) ---------------------------------------------------------------------------------------------
    launch_overhead_cycles: int = 10_900  #: §3.5 launch ~6 us: fa_cost_model.py launch_overhead_cycles (onboard FA)
    # The block scheduler starts the launched blocks (one per AI core used) one after another: block k begins no
    # earlier than launch + (k + 1) x this. No vendor number exists (Ascend C "合理设置核数": start-up grows with
    # the cores used, values only in a figure); fa_cost_model's 2000/block is a ranking fit that V1 GEMM rules out
    block_dispatch_cycles: int = 150  #: §3.5 (estimate, unsourced): V1 bounds it (bench/RESULTS.md, "Validation")
    # -- CSP channels (§4.2) ---------------------------------------------------------------------------------------
    channel_latency_cycles: int = 1000  #: §4.2 L_chan: fa_cost_model.py "logical tile sync" fitted to onboard FA

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise PtortTypeError(f"Machine name must be a non-empty str, got {self.name!r}.",
                                 hint='Name the variant, e.g. ascend_910b.replace(name="my_910b", ...).')
        owner = f"Machine {self.name!r}"
        _check_fields(self, owner, _MACHINE_RULES, self._fix)
        error = clock_range_error(owner, self.clock_hz, "the ascend_910b preset's 1.8e9")
        if error is not None:
            raise error
        for f in dataclasses.fields(self):  # the data paths and vector classes (they check their own numbers)
            cls = _COST_CLASSES.get(str(f.type))  # (annotations are strings: `from __future__ import annotations`)
            value = getattr(self, f.name)
            if cls is not None and not isinstance(value, cls):
                raise PtortTypeError(
                    f"{owner}: {f.name} must be a {cls.__name__}, got {type(value).__name__} {value!r}.",
                    hint=f"Write {f.name}={f.default!r} (the ascend_910b preset's) or another "
                         f"{cls.__name__}(...) from ptort_lab.sim.machine.")
        for name, what in _SWITCHES.items():
            value = getattr(self, name)
            if not isinstance(value, bool):
                raise PtortTypeError(f"{owner}: {name} must be True or False, got {type(value).__name__} {value!r}.",
                                     hint=f"{what} The ascend_910b preset has {name}="
                                          f"{Machine.__dataclass_fields__[name].default}.")
        if self.l2_replacement not in L2_REPLACEMENTS:
            import difflib  # an error path only: not loaded by `import ptort_lab`
            close = difflib.get_close_matches(str(self.l2_replacement), L2_REPLACEMENTS, n=1)
            raise PtortValueError(f"Machine {self.name!r}: unknown l2_replacement {self.l2_replacement!r}.",
                                  hint=(f"Did you mean '{close[0]}'? " if close else "")
                                  + f"Use one of {', '.join(map(repr, L2_REPLACEMENTS))}.")

    @staticmethod
    def _fix(name: str, rule: _Rule) -> str:
        default: Any = next(f.default for f in dataclasses.fields(Machine) if f.name == name)
        shown = f"{default:g}".replace("e+0", "e").replace("e+", "e") if isinstance(default, float) else repr(default)
        if rule is _BYTES and default % MIB == 0:
            shown += f" ({default // MIB} * MIB)"
        elif rule is _BYTES and default % KIB == 0:
            shown += f" ({default // KIB} * KIB)"
        return f"Use the ascend_910b preset's {shown} or another value {_range(rule)}."

    @property
    def num_vector_cores(self) -> int:
        """All AIVs on the chip (48 on 910B2)."""
        return self.num_cores * self.aiv_per_core

    @property
    def cube_flops_per_cycle(self) -> int:
        """FP16 MACs x 2 per cycle of one AIC: 16 x 16 x 16 x 2 = 8192 (§1)."""
        k = self.cube_fractal_k_bytes // 2
        return self.cube_fractal_rows * self.cube_fractal_rows * k * 2

    def buffer_bytes(self, buffer: Buffer) -> int:
        """The size of one ``buffer`` (one per AIV for UB, one per AIC for the others)."""
        return {Buffer.UB: self.ub_bytes, Buffer.L1: self.l1_bytes, Buffer.L0A: self.l0a_bytes,
                Buffer.L0B: self.l0b_bytes, Buffer.L0C: self.l0c_bytes}[buffer]

    def aligned_bytes(self, nbytes: int) -> int:
        """``nbytes`` in whole ``transfer_align_bytes`` blocks: what a transfer moves, and the room a tile takes in a
        buffer (UB is 32 B aligned, NPU_MODEL §1)."""
        grain = self.transfer_align_bytes
        return -(-nbytes // grain) * grain

    def us(self, cycles: int) -> float:
        """``cycles`` of this machine in microseconds."""
        return cycles_to_us(cycles, self.clock_hz)

    def replace(self, **changes: Any) -> Machine:
        """A variant with some constants changed: ``ascend_910b.replace(hbm_bytes_per_cycle=530)``."""
        unknown = sorted(set(changes) - {f.name for f in dataclasses.fields(self)})
        if unknown:
            names = [f.name for f in dataclasses.fields(self)]
            import difflib  # an error path only: not loaded by `import ptort_lab`
            close = difflib.get_close_matches(unknown[0], names, n=1)
            raise PtortValueError(f"Machine has no constant(s) {unknown}.",
                                  hint=(f"Did you mean '{close[0]}'? " if close else "")
                                  + "See ptort_lab.sim.machine.Machine for the list.")
        return dataclasses.replace(self, **changes)

    def implausible_cycles(self) -> list[tuple[str, int, int]]:
        """(name, value, the ascend_910b preset's value) of each cycle constant that costs more than a second of
        this machine's clock per use (``gm_to_ub.fixed_cycles`` for a data path's): what to name when a run's times
        pass 2**53. Every sourced one is microseconds at most (NPU_MODEL §1-§3.5: the largest, launch ~6 us), so a
        second is some 10**5 times past any of them; a constant may still be set that high (each is only capped at
        2**53), and the run's end then says which."""
        found: list[tuple[str, int, int]] = []
        for f in dataclasses.fields(self):
            value, default = getattr(self, f.name), getattr(ascend_910b, f.name)
            if f.type == "int" and _MACHINE_RULES.get(f.name, _CYCLES).unit == "cycles":
                parts = [(f.name, value, default)]
            elif isinstance(value, (TransferCost, VectorCost)):
                parts = [(f"{f.name}.{g.name}", getattr(value, g.name), getattr(default, g.name))
                         for g in dataclasses.fields(value) if g.name.endswith("cycles")]
            else:
                continue
            found += [(name, int(v), int(d)) for name, v, d in parts if v > self.clock_hz]
        return found

    def summary(self) -> str:
        return (f"{self.name}: {self.num_cores} AI cores ({self.num_cores} AIC + {self.num_vector_cores} AIV) at "
                f"{self.clock_hz / 1e9:g} GHz, UB {self.ub_bytes // KIB} KiB, L1 {self.l1_bytes // KIB} KiB, "
                f"L0A/B/C {self.l0a_bytes // KIB}/{self.l0b_bytes // KIB}/{self.l0c_bytes // KIB} KiB, "
                f"HBM {self.hbm_bytes_per_cycle} B/cycle, L2 {self.l2_bytes // MIB} MiB "
                f"{'write-back' if self.l2_write_back else 'write-through'} "
                f"({self.l2_replacement}, read {self.l2_bytes_per_cycle} / write {self.l2_write_bytes_per_cycle} "
                "B/cycle)")


_COST_CLASSES: dict[str, type] = {"TransferCost": TransferCost, "VectorCost": VectorCost}
# The on/off fields of Machine, and what each does (the hint when one is not a bool)
_SWITCHES: dict[str, str] = {
    "l2_flush_at_end": "False counts the dirty L2 bytes left at the end; True also adds the time to write them "
                       "back to HBM to the run.",
    "l2_write_back": "True posts GM writes into L2 (HBM sees them on eviction); False writes them through to HBM.",
    "gm_read_overlap": "True lets a load pipe issue again while its data are in flight; False holds it for the "
                       "latency.",
}

#: The Ascend 910B2 (the default machine): every constant as ``Machine`` sources it.
ascend_910b = Machine()

#: 910B1: same chip as B2 at 1.85 GHz (§1 clock row: "910B1 1.85"; pto-isa arch_config.hpp kMainFrequencyHz). Every
#: other constant is the B2's, in cycles and bytes per cycle (the launch's 10,900 cycles are 5.9 us here; no B1
#: figure found for either: docs/explanation/npu_model.md, "Launch").
ascend_910b1 = ascend_910b.replace(name="ascend_910b1", clock_hz=1.85e9)

#: 910B4: 20 AIC / 40 AIV at 1.5 GHz, 0.8 TB/s HBM and 96 MiB L2 (§1: SOC_SPECS, HWConf table, "gm_scale=2"). The
#: launch keeps the B2's 10,900 cycles (7.3 us at 1.5 GHz): no source says whether it scales with the clock.
ascend_910b4 = ascend_910b.replace(
    name="ascend_910b4",
    clock_hz=1.5e9,  # §1 clock row: "B4 1.5 GHz"
    num_cores=20,  # §1 cube cores: "B3/B4 20"
    l2_bytes=96 * MIB,  # §1 chip L2: "B4: 96 MiB" (CANN Ascend910B4.ini l2_size=100663296)
    l2_write_bytes_per_cycle=20 * 86,  # ini l2_write_rate=86 per core (same in B4's ini) x 20 cores
    hbm_bytes_per_cycle=530,  # §1 effective HBM: "~530 B/cycle on small-L2 SKUs"
    hbm_peak_bytes_per_s=0.8e12,  # §1 HBM: "B4: 32 GB / 0.8 TB/s"
)

#: The memory model before issue 13, for before/after numbers (bench/fa_model_ablation.py, bench/validate.py
#: --before): writes through to HBM at §3.1's fixed 300 cycles, loads that hold their pipe for the latency, no
#: block dispatch. ``ascend_910b.replace(**PRE_ISSUE_13)`` reproduces the V1 figures of bench/RESULTS.md before it.
PRE_ISSUE_13: dict[str, Any] = {"l2_write_back": False, "gm_read_overlap": False, "block_dispatch_cycles": 0,
                                "ub_to_gm": TransferCost(100, 300), "l0c_to_gm": TransferCost(75, 300)}

#: The presets by name (what ``compile(machine="ascend_910b4")`` and ``get_machine`` look up).
MACHINES: dict[str, Machine] = {m.name: m for m in (ascend_910b, ascend_910b1, ascend_910b4)}


def get_machine(name: str | Machine) -> Machine:
    """The preset called ``name`` (a Machine is returned as is)."""
    if isinstance(name, Machine):
        return name
    if not isinstance(name, str):
        raise PtortTypeError(f"machine must be a Machine or a preset name, got {type(name).__name__} {name!r}.",
                             hint=f"Pass a preset name ({', '.join(map(repr, MACHINES))}) or a Machine such as "
                                  "ascend_910b.replace(num_cores=20).")
    try:
        return MACHINES[name]
    except KeyError:
        import difflib  # an error path only: not loaded by `import ptort_lab`
        close = difflib.get_close_matches(name, list(MACHINES), n=1)
        raise PtortValueError(f"unknown machine {name!r}.",
                              hint=(f"Did you mean '{close[0]}'? " if close else "")
                              + f"Presets: {', '.join(MACHINES)}.") from None


__all__ = ["Machine", "TransferCost", "VectorCost", "MACHINES", "get_machine", "ascend_910b", "ascend_910b1",
           "ascend_910b4", "KIB", "MIB", "L2_REPLACEMENTS", "DEFAULT_CLOCK_HZ", "MIN_CLOCK_HZ", "MAX_CLOCK_HZ",
           "cycles_to_us", "clock_range_error", "Pipe", "Buffer", "PRE_ISSUE_13", "bytes_text"]
