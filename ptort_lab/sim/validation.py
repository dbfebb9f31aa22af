"""How wrong the model's time may be for the kind of work a run did: its validated error band (issue 13).

A run is classified from which pipes were busy (``classify``): cube pipes only (GEMM-like), vector pipes only
(vector streaming), both (mixed), or no NPU pipe at all (pinned or foreign costs). Each kind carries what the model
was checked against and how far off it was (``BANDS``); the numbers are bench/validate.py's output (bench/RESULTS.md,
"NPU model: memory hierarchy (issue 13)"), and a kind no hardware measurement covers says "unvalidated". A band holds
only where it was measured: the GEMM band is V1's, fp16 GEMM on the unchanged ``ascend_910b``, so a cube run on another
machine or with other input dtypes is unvalidated (``error_band`` with the run's ``ModelUse``).

``model_notes`` names the fitted or estimated constants a run's time leaned on (NPU_MODEL §5.2: "always report which
of them are enabled"), each only when it was in play.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from .machine import MACHINES, Machine, ascend_910b

GEMM, VECTOR, MIXED, UNVALIDATED = "GEMM-like", "vector streaming", "mixed cube + vector", "unvalidated"
MINOR_SHARE = 0.05  # a side busy for less than this share of all pipe busy time does not count as its own kind
FIX_NOTE_PCT = 10.0  # FIX busy above this % of the run (V1's TSTORE ratios are 2.4-7.7 %) gets its note
V1_MACHINE = ascend_910b  # the machine V1 (the GEMM band) was measured on, and the reference for the fitted constants
V1_DTYPES = frozenset({"F16", "BF16"})  # V1 ran fp16; bf16 runs the cube at the same rate (NPU_MODEL §1, §3.4)


@dataclass(frozen=True)
class ErrorBand:
    """The model's measured error for one kind of work: ``low_pct``..``high_pct`` of model time against measured
    time (None when nothing was measured), and what that was measured on."""

    kind: str
    low_pct: float | None
    high_pct: float | None
    basis: str

    @property
    def validated(self) -> bool:
        return self.low_pct is not None and self.high_pct is not None

    def text(self) -> str:
        """One line for a summary: the kind, the band and its basis."""
        if not self.validated:
            kind = "" if self.kind == UNVALIDATED else f"{self.kind}: "
            return f"{kind}unvalidated ({self.basis})"
        return f"{self.kind}: model time {self.low_pct:+.1f} % to {self.high_pct:+.1f} % of measured ({self.basis})"


BANDS: dict[str, ErrorBand] = {
    # bench/validate.py, V1 rows (default ascend_910b): 1536^3 -7.7 %, 3072^3 +0.9 %, 6144^3 +5.3 %, 7680^3 -1.4 %
    GEMM: ErrorBand(GEMM, -7.7, 5.3, "NPU_MODEL §5.1 V1: fp16 GEMM on 24 cores, 4 sizes 1536-7680^3; pipe ratios "
                                     "within 5 points"),
    VECTOR: ErrorBand(VECTOR, None, None, "no hardware measurement of vector kernels is public; the model sits "
                                          "+6 % / +11 % above the §5.3 roofline estimate for add / softmax, and "
                                          "V5 TopK needs TMRGSORT, which the DSL lacks"),
    MIXED: ErrorBand(MIXED, None, None, "no measurement covers cube and vector work together"),
    UNVALIDATED: ErrorBand(UNVALIDATED, None, None, "no NPU pipe was timed: pinned or foreign costs"),
}


@dataclass(frozen=True)
class ModelUse:
    """What one run of the NPU model leaned on (``NpuRun.model_use``): its machine, the input dtypes of the matmuls
    it priced, and which fitted or estimated terms were in play."""

    machine: Machine
    cube_dtypes: tuple[str, ...] = ()  # sorted dtype names ("F16", ...)
    launched: bool = False  # a task ran instructions: the launch and the block dispatch are in the time
    channel_hops: bool = False  # a pipeline channel or event hop crossed cores or units (it pays L_chan)
    cross_unit_reads: bool = False  # data-parallel: a task read GM data another core's or unit's task wrote
    acc_via_l1: bool = False  # an accumulator went L1 -> L0C on MTE1 (lowering's approximation)


def classify(lane_busy_pct: dict[str, float]) -> str:
    """The kind of work from per-lane busy % (lanes "AIC.CUBE", "AIV0.V", ...): a side (cube = AIC, vector = AIV)
    counts when it holds at least MINOR_SHARE of the busy time of all NPU pipes."""
    cube = sum(p for lane, p in lane_busy_pct.items() if lane.startswith("AIC."))
    vector = sum(p for lane, p in lane_busy_pct.items() if lane.startswith("AIV") and "." in lane)
    total = cube + vector
    if total <= 0:
        return UNVALIDATED
    has_cube, has_vector = cube >= MINOR_SHARE * total, vector >= MINOR_SHARE * total
    if has_cube and has_vector:
        return MIXED
    return GEMM if has_cube else VECTOR


def error_band(lane_busy_pct: dict[str, float], use: ModelUse | None = None) -> ErrorBand:
    """The validated error band of the kind of work these busy pipes did; with the run's ``use``, the GEMM band only
    on V1's machine and input dtypes (else "unvalidated", saying why)."""
    kind = classify(lane_busy_pct)
    band = BANDS[kind]
    if kind != GEMM or use is None:
        return band
    dtypes = set(use.cube_dtypes)
    if _same_constants(use.machine, V1_MACHINE) and dtypes and dtypes <= V1_DTYPES:
        return band
    inputs = "/".join(use.cube_dtypes) + " cube inputs" if dtypes else "no matmul"
    return ErrorBand(GEMM, None, None, f"the band was measured on {V1_MACHINE.name} with F16/BF16 cube inputs, "
                                       f"NPU_MODEL §5.1 V1; this run uses {machine_text(use.machine)} with {inputs}")


def model_notes(lane_busy_pct: dict[str, float], use: ModelUse | None = None) -> list[str]:
    """Warnings about unsourced parts of the model the run leaned on (shown under its summary): the FIX rate when
    its pipe was busy, and with the run's ``use`` each fitted or estimated constant that was in play."""
    m = use.machine if use is not None else V1_MACHINE
    ref = V1_MACHINE
    notes = []
    fix = lane_busy_pct.get("AIC.FIX", 0.0)
    if fix >= FIX_NOTE_PCT:
        rate, fitted = m.l0c_to_gm.bytes_per_cycle, ref.l0c_to_gm.bytes_per_cycle
        basis = (f"its {rate} B/cycle is a fit to one GEMM's stores (V1, 128 KiB fp32 tiles)" if rate == fitted else
                 f"its {rate} B/cycle is a what-if (the preset's {fitted} B/cycle is a fit to one GEMM's stores, V1)")
        notes.append(f"FIX (L0C -> GM) was busy {fix:.0f} % of the run: {basis}; no vendor document gives the Fixpipe "
                     "rate (CANN's tiling estimator assumes ~106 B/cycle), so this part of the time is unvalidated")
    if use is None:
        return notes
    if use.launched and m.launch_overhead_cycles:
        notes.append(f"launch: {m.launch_overhead_cycles} cycles before the first instruction, "
                     + _basis(m.launch_overhead_cycles, ref.launch_overhead_cycles,
                              "a fit to onboard FA runs (NPU_MODEL §3.5)") + _other_clock(m, ref))
    if use.launched and m.block_dispatch_cycles:
        notes.append(f"block dispatch: {m.block_dispatch_cycles} cycles per AI core used, "
                     + _basis(m.block_dispatch_cycles, ref.block_dispatch_cycles,
                              "an estimate with no source (NPU_MODEL §3.5)"))
    if use.channel_hops:
        notes.append(f"channel hops between cores or units pay L_chan ({m.channel_latency_cycles} cycles unless "
                     "compile(channel_latency_cycles=...) set another), "
                     + _basis(m.channel_latency_cycles, ref.channel_latency_cycles,
                              "a fit to onboard FA (NPU_MODEL §4.2)"))
    if use.acc_via_l1:
        notes.append("an accumulator loaded from GM reaches L0C from L1 on MTE1 at the L1 -> L0A rate "
                     f"({m.l1_to_l0a.bytes_per_cycle} B/cycle): NPU_MODEL documents no such path, an approximation")
    if use.cross_unit_reads:
        notes.append("data-parallel: a task read GM data another core's or unit's task wrote, with no flag latency "
                     "(L_chan applies to channels only), so a comparison with a pipeline favours data-parallel")
    return notes


def _other_clock(m: Machine, ref: Machine) -> str:
    """On a clock other than the fit's, what the launch's cycles come to there: no source says whether it scales."""
    if m.clock_hz == ref.clock_hz or not m.clock_hz:
        return ""
    return (f"; kept in cycles at {m.clock_hz / 1e9:g} GHz, that is {m.us(m.launch_overhead_cycles):.1f} us "
            f"(the fit's {ref.us(ref.launch_overhead_cycles):.1f} us at {ref.clock_hz / 1e9:g} GHz): no "
            "source says whether the launch scales with the AI cores' clock")


def machine_text(m: Machine) -> str:
    """``m`` by name, with the constants it changes from the preset of that name (``ascend_910b`` when none)."""
    base = MACHINES.get(m.name, ascend_910b)
    changed = [f.name for f in dataclasses.fields(m)
               if f.name != "name" and getattr(m, f.name) != getattr(base, f.name)]
    if not changed:
        return m.name if m.name == base.name else f"{m.name} (= {base.name})"
    shown = ", ".join(changed[:3]) + (f" and {len(changed) - 3} more" if len(changed) > 3 else "")
    return f"{m.name} ({shown} changed from {base.name})"


def _same_constants(m: Machine, other: Machine) -> bool:
    return all(getattr(m, f.name) == getattr(other, f.name) for f in dataclasses.fields(m) if f.name != "name")


def _basis(value: Any, fitted: Any, basis: str) -> str:
    """``basis`` of a constant at its preset value; a what-if naming the preset's otherwise."""
    return basis if value == fitted else f"a what-if (the preset's {fitted} is {basis})"


__all__ = ["ErrorBand", "BANDS", "ModelUse", "classify", "error_band", "model_notes", "machine_text", "GEMM",
           "VECTOR", "MIXED", "UNVALIDATED"]
