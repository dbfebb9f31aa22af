"""Self-check reports for examples: compare results with a numpy golden and print cycles, µs and pipe busy %; run an
example's ``main()`` as a command (``run_example``)."""
from __future__ import annotations

import math
import numbers
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Callable, NoReturn

import numpy as np

from .dsl.types import Tensor, TensorView
from .errors import PtortError, PtortTypeError, PtortValueError
from .program import Program

_NUMBER_KINDS = "biufc"  # numpy dtype kinds check() compares: bool, ints, floats, complex
_INTEGER_KINDS = "biu"  # compared exactly, as integers, when both sides are of these kinds
_DEFAULT_RTOL, _DEFAULT_ATOL = 1e-5, 1e-6  # for values that are not both integers: float rounding is expected
_CHUNK = 1 << 14  # differing integers measured at once: ~3 MB of Python ints (~160 bytes each, with their arrays)


@dataclass(frozen=True)
class Check:
    """One comparison of a result with its numpy reference (``note``: why it failed before any value was compared,
    e.g. the shapes differ)."""

    name: str
    max_abs_error: float
    max_rel_error: float
    passed: bool
    rtol: float
    atol: float
    note: str = ""

    def line(self) -> str:
        verdict = "PASS" if self.passed else "FAIL"
        if self.note:
            return f"  {self.name:<16} {self.note}: {verdict}"
        return (f"  {self.name:<16} max abs error {self.max_abs_error:.3g}, max rel error {self.max_rel_error:.3g} "
                f"(rtol {self.rtol:g}, atol {self.atol:g}): {verdict}")


def check(name: str, got: Any, expected: Any, *, rtol: float | None = None, atol: float | None = None) -> Check:
    """Compare ``got`` with ``expected`` elementwise the way ``np.allclose`` does: ``|got - expected| <= atol +
    rtol * |expected|``, equal infinities match, a NaN never does. The shapes must be equal (no broadcasting).

    ``got`` and ``expected`` are numbers, arrays or nested lists of numbers, or a Tensor (its ``data``). When both
    are integer (or bool) arrays, a tolerance not given is 0: by default they must be equal (indices, counts), and
    the distance is computed as integers, so int64 values past 2**53, which float64 cannot tell apart, are not
    equal unless they are; an explicit ``atol``/``rtol`` still applies (e.g. ``atol=1`` for a rounded int8
    result). Any other pair defaults to ``rtol=1e-5, atol=1e-6`` and is compared in float64 (ml_dtypes floats
    such as bfloat16 and float8 too); complex values only with complex (a complex result against a real reference
    is refused rather than compared without its imaginary part).
    """
    if not isinstance(name, str):
        raise PtortTypeError(f"check(name, ...) takes the check's name as a str, got {type(name).__name__} "
                             f"{name!r}.", hint='Write check("Y = X * X", Y.data, expected).')
    given = {k: _tolerance(k, v) for k, v in (("rtol", rtol), ("atol", atol)) if v is not None}
    g, e = _values(name, "got", got), _values(name, "expected", expected)
    integers = g.dtype.kind in _INTEGER_KINDS and e.dtype.kind in _INTEGER_KINDS
    rtol = given.get("rtol", 0.0 if integers else _DEFAULT_RTOL)
    atol = given.get("atol", 0.0 if integers else _DEFAULT_ATOL)
    if (g.dtype.kind == "c") != (e.dtype.kind == "c"):
        which, other = ("got", "expected") if g.dtype.kind == "c" else ("expected", "got")
        raise PtortTypeError(f"check({name!r}): {which} is complex ({(g if which == 'got' else e).dtype}) but "
                             f"{other} is real, so the imaginary parts would be dropped.",
                             hint=f"Compare like with like: make both complex (np.asarray({other}, complex)), or "
                                  f"compare the real part explicitly (np.real({which})) if that is what you mean.")
    if g.shape != e.shape:
        return Check(name, math.inf, math.inf, False, rtol, atol,
                     note=f"got shape {g.shape} but expected shape {e.shape}")
    if integers:
        return _integer_check(name, g, e, rtol, atol)
    kind = np.complex128 if g.dtype.kind == "c" else np.float64
    g, e = g.astype(kind), e.astype(kind)
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is NaN: equal infinities are handled below
        diff = np.abs(g - e)
        same = g == e  # equal values, equal infinities included (np.isclose's rule)
        diff = np.where(same, 0.0, diff)
        close = same | (np.isfinite(g) & np.isfinite(e) & (diff <= atol + rtol * np.abs(e)))
        rel = np.where(np.isinf(diff), np.inf, diff / np.maximum(np.abs(e), np.finfo(np.float64).tiny))
    passed = bool(np.all(close))
    return Check(name, _largest(diff), _largest(rel), passed, rtol, atol)


def _integer_check(name: str, g: np.ndarray[Any, Any], e: np.ndarray[Any, Any], rtol: float,
                   atol: float) -> Check:
    """check() of two integer arrays of one shape, measuring only the elements that differ: an equal element is 0
    apart with relative error 0 and within any tolerance, so equal or nearly equal arrays cost one numpy pass."""
    at = np.flatnonzero(_differ(g, e))
    largest, largest_rel, passed = 0.0, 0.0, True
    for start in range(0, at.size, _CHUNK):  # a chunk at a time: memory stays bounded however many elements differ
        part = at[start:start + _CHUNK]
        expected = e.flat[part]
        diff = _integer_distance(g.flat[part], expected)  # exact: float64 would round 2**60 + 1 to 2**60
        reference = np.abs(expected.astype(np.float64))
        with np.errstate(over="ignore"):
            rel = diff / np.maximum(reference, np.finfo(np.float64).tiny)
            passed = passed and bool(np.all(diff <= atol + rtol * reference))
        largest, largest_rel = max(largest, float(diff.max())), max(largest_rel, float(rel.max()))
    return Check(name, largest, largest_rel, passed, rtol, atol)


def _differ(g: np.ndarray[Any, Any], e: np.ndarray[Any, Any]) -> Any:
    """Where two integer arrays of one shape differ, exactly: uint64 against a signed type is compared in uint64
    (numpy before 2.0 compares them in float64, where 2**63 - 1 and 2**63 are equal)."""
    if np.result_type(g.dtype, e.dtype).kind in _INTEGER_KINDS:
        return g != e
    unsigned, signed = (g, e) if g.dtype.kind == "u" else (e, g)
    return (signed < 0) | (unsigned != signed.astype(np.uint64))  # (a negative value wraps: it differs anyway)


def _integer_distance(g: np.ndarray[Any, Any], e: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """``|g - e|`` of two 1-d integer arrays, computed exactly and given as float64 (a distance of 1 stays 1, however
    large the values): in int64 when both fit in 32 bits, else in Python ints (an int64 difference could overflow,
    and uint64 values do not fit in int64)."""
    if g.dtype.itemsize <= 4 and e.dtype.itemsize <= 4:
        exact = np.abs(g.astype(np.int64) - e.astype(np.int64))
    else:
        exact = np.abs(g.astype(object) - e.astype(object))
    distance: np.ndarray[Any, Any] = exact.astype(np.float64)
    return distance


def _largest(values: np.ndarray[Any, Any]) -> float:
    """The largest value, NaN when any is NaN (a NaN result must not report a small error), 0 for no values."""
    return float(values.max()) if values.size else 0.0


def _tolerance(which: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise PtortTypeError(f"check({which}=...) must be a number >= 0, got {type(value).__name__} {_short(value)}.",
                             hint=f"Pass a number, e.g. {which}=1e-3 (not the string '1e-3').")
    try:
        number = float(value)
    except OverflowError:  # an int past float's range
        number = math.inf
    if not math.isfinite(number) or number < 0:
        raise PtortValueError(f"check({which}=...) must be a finite number >= 0, got {_short(value)}.",
                              hint=f"Pass e.g. {which}=1e-3; {which}=0 asks for exact agreement.")
    return number


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _values(name: str, side: str, value: Any) -> np.ndarray[Any, Any]:
    """``value`` as a numpy array of numbers (a Tensor's data), else a PtortTypeError / PtortValueError saying why."""
    where = f"check({name!r}): {side}"
    if isinstance(value, Tensor):
        if value.on_chip:  # its data is never written: comparing it would compare the inputs
            raise PtortValueError(f"{where} is on-chip Tensor {value.name or ''} whose data the run never writes.",
                                  hint=f"Compare the run's copy instead: check({name!r}, "
                                       "program.on_chip(tensor)[(core, unit)], expected).")
        if value.data is None:
            raise PtortValueError(f"{where} is Tensor {value.name or ''} with no data (no run has computed it).",
                                  hint="Run the program with values (compile() without compute_values=False), then "
                                       "compare tensor.data.")
        value = value.data
    elif isinstance(value, TensorView):
        raise PtortTypeError(f"{where} is a TensorView (a tensor indexed in the DSL), not values.",
                             hint="Index the data instead: X.data[t] rather than X[t].")
    elif isinstance(value, (str, bytes)):
        raise PtortTypeError(f"{where} is {type(value).__name__} {_short(value)}, not numbers.",
                             hint="Pass numbers, a numpy array or a Tensor, e.g. check(\"y\", Y.data, expected).")
    try:
        array = np.asarray(value)
    except (ValueError, TypeError) as e:  # a ragged list, or an object numpy cannot read
        raise PtortValueError(f"{where} is not an array of numbers ({type(e).__name__}: {e}).",
                              hint="Pass a numpy array or a list whose rows all have the same length.") from None
    if array.dtype.kind == "V" and array.dtype.type.__module__ == "ml_dtypes":
        array = _from_ml_dtypes(array)
    if array.dtype.kind not in _NUMBER_KINDS:
        if array.ndim == 0:
            what = f"is {type(value).__name__} {_short(value)}"
        else:
            what = "holds objects or ragged rows" if array.dtype.kind == "O" else f"holds dtype {array.dtype}"
        raise PtortTypeError(f"{where} {what}, not numbers.",
                             hint="Pass numbers, a numpy array of numbers or a Tensor (its data is compared).")
    return array


def _from_ml_dtypes(array: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """An array of an ml_dtypes type (bfloat16, float8_*, int4: numpy sees kind 'V') as float64 or int64, which
    hold each of its values exactly; any other ml_dtypes type is returned as it is (and refused as not numbers).
    ml_dtypes is imported only here, once such an array is seen (``import ptort_lab`` leaves it out)."""
    import ml_dtypes
    for info, wide in ((ml_dtypes.finfo, np.float64), (ml_dtypes.iinfo, np.int64)):
        try:
            info(array.dtype)
        except (ValueError, TypeError):
            continue
        return array.astype(wide)
    return array


def run_report(program: Program, label: str = "run") -> str:
    """Total cycles, µs at the machine clock, and busy % per pipe (averaged over the cores that use it)."""
    if not isinstance(program, Program):
        raise PtortTypeError(f"run_report() takes a Program that has run, got {type(program).__name__} {program!r}.",
                             hint="Pass the compiled program after execute(): run_report(w.compile().execute()).")
    if not isinstance(label, str):
        raise PtortTypeError(f"run_report(label=...) takes a str, got {type(label).__name__} {label!r}.",
                             hint='Write run_report(program, "pipeline").')
    if not program.is_complete():
        raise PtortValueError("run_report() needs a Program that has run, but this one has no finished run.",
                              hint="Call program.execute() first (if it raised, fix that error and run it again).")
    s = program.stats()
    lines = [f"  {label}: {s.total_cycles} cycles = {s.time_us:.3f} us at {s.clock_hz / 1e9:g} GHz, "
             f"{s.task_count} tasks, overlap {s.overlap_pct:.1f}%"]
    if s.lane_busy_pct:
        busy = ", ".join(f"{lane} {pct:.1f}" for lane, pct in sorted(s.lane_busy_pct.items()))
        lines.append(f"  pipe busy %: {busy}")
    return "\n".join(lines)


def report(title: str, checks: list[Check], programs: dict[str, Program]) -> bool:
    """Print the example's checks and run reports; True when every check passed."""
    if not isinstance(title, str):
        raise PtortTypeError(f"report(title, ...) takes a str, got {type(title).__name__} {title!r}.",
                             hint='Write report("my example", checks, {"pipeline": program}).')
    if isinstance(checks, Check) or not isinstance(checks, (list, tuple)) \
            or not all(isinstance(c, Check) for c in checks):
        got = type(checks).__name__ if not isinstance(checks, (list, tuple)) else \
            ", ".join(sorted({type(c).__name__ for c in checks if not isinstance(c, Check)}))
        raise PtortTypeError(f"report(title, checks, ...) takes a list of Check (what check() returns), got {got}.",
                             hint='Write report(title, [check("y", Y.data, expected)], {"pipeline": program}).')
    if not isinstance(programs, Mapping) or not all(isinstance(k, str) and isinstance(p, Program)
                                                    for k, p in programs.items()):
        raise PtortTypeError(f"report(title, checks, programs) takes a dict of label -> Program, got "
                             f"{type(programs).__name__} {programs!r}."[:300],
                             hint='Write report(title, checks, {"pipeline": program}) ({} for no run report).')
    lines = [title] + [c.line() for c in checks] + [run_report(p, label) for label, p in programs.items()]
    ok = all(c.passed for c in checks)
    print("\n".join(lines + ["PASS" if ok else "FAIL"]))
    return ok



def run_example(main: Callable[[], int]) -> NoReturn:
    """Run an example's ``main()`` as a command and exit with its status. A ptort_lab error (a mistake it explains:
    what, where, how to fix) prints its message to stderr and exits 2, as a usage error, without a traceback;
    ``PTORT_TRACEBACK=1`` in the environment keeps the traceback."""
    try:
        status = main()
    except PtortError as e:
        if os.environ.get("PTORT_TRACEBACK") == "1":
            raise
        print(f"{type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(2)
    sys.exit(status)

__all__ = ["run_example", "Check", "check", "run_report", "report"]
