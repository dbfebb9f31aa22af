"""Self-check reports for examples: compare results with a numpy golden and print cycles, µs and pipe busy %."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .program import Program


@dataclass(frozen=True)
class Check:
    """One comparison of a result with its numpy reference."""

    name: str
    max_abs_error: float
    max_rel_error: float
    passed: bool
    rtol: float
    atol: float

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        return (f"  {self.name:<16} max abs error {self.max_abs_error:.3g}, max rel error {self.max_rel_error:.3g} "
                f"(rtol {self.rtol:g}, atol {self.atol:g}): {verdict}")


def check(name: str, got: Any, expected: Any, *, rtol: float = 1e-5, atol: float = 1e-6) -> Check:
    """Compare ``got`` with ``expected`` elementwise (in float64) the way ``np.allclose`` does."""
    g = np.asarray(got, dtype=np.float64)
    e = np.asarray(expected, dtype=np.float64)
    if g.shape != e.shape:
        return Check(name, float("inf"), float("inf"), False, rtol, atol)
    diff = np.abs(g - e)
    rel = diff / np.maximum(np.abs(e), np.finfo(np.float64).tiny)
    passed = bool(np.all(diff <= atol + rtol * np.abs(e)))
    return Check(name, float(diff.max(initial=0.0)), float(rel.max(initial=0.0)), passed, rtol, atol)


def run_report(program: Program, label: str = "run") -> str:
    """Total cycles, µs at the machine clock, and busy % per pipe (averaged over the cores that use it)."""
    s = program.stats()
    lines = [f"  {label}: {s.total_cycles} cycles = {s.time_us:.3f} us at {s.clock_hz / 1e9:g} GHz, "
             f"{s.task_count} tasks, overlap {s.overlap_pct:.1f}%"]
    if s.lane_busy_pct:
        busy = ", ".join(f"{lane} {pct:.1f}" for lane, pct in sorted(s.lane_busy_pct.items()))
        lines.append(f"  pipe busy %: {busy}")
    return "\n".join(lines)


def report(title: str, checks: list[Check], programs: dict[str, Program]) -> bool:
    """Print the example's checks and run reports; True when every check passed."""
    print(title)
    for c in checks:
        print(c.line())
    for label, program in programs.items():
        print(run_report(program, label))
    ok = all(c.passed for c in checks)
    print("PASS" if ok else "FAIL")
    return ok


__all__ = ["Check", "check", "run_report", "report"]
