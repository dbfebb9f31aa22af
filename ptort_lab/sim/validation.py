"""How wrong the model's time may be for the kind of work a run did: its validated error band (issue 13).

A run is classified from which pipes were busy (``classify``): cube pipes only (GEMM-like), vector pipes only
(vector streaming), both (mixed), or no NPU pipe at all (pinned or foreign costs). Each kind carries what the model
was checked against and how far off it was (``BANDS``); the numbers are bench/validate.py's output (bench/RESULTS.md,
"NPU model: memory hierarchy (issue 13)"), and a kind no hardware measurement covers says "unvalidated".
"""
from __future__ import annotations

from dataclasses import dataclass

GEMM, VECTOR, MIXED, UNVALIDATED = "GEMM-like", "vector streaming", "mixed cube + vector", "unvalidated"
MINOR_SHARE = 0.05  # a side busy for less than this share of all pipe busy time does not count as its own kind
FIX_NOTE_PCT = 10.0  # FIX busy above this % of the run (V1's TSTORE ratios are 2.4-7.7 %) gets its note


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


def error_band(lane_busy_pct: dict[str, float]) -> ErrorBand:
    """The validated error band of the kind of work these busy pipes did."""
    return BANDS[classify(lane_busy_pct)]


def model_notes(lane_busy_pct: dict[str, float]) -> list[str]:
    """Warnings about unsourced parts of the model the run leaned on (shown under its summary)."""
    notes = []
    fix = lane_busy_pct.get("AIC.FIX", 0.0)
    if fix >= FIX_NOTE_PCT:
        notes.append(f"FIX (L0C -> GM) was busy {fix:.0f} % of the run: its 75 B/cycle is a fit to one GEMM's "
                     "stores (V1, 128 KiB fp32 tiles); no vendor document gives the Fixpipe rate (CANN's tiling "
                     "estimator assumes ~106 B/cycle), so this part of the time is unvalidated")
    return notes


__all__ = ["ErrorBand", "BANDS", "classify", "error_band", "model_notes", "GEMM", "VECTOR", "MIXED", "UNVALIDATED"]
