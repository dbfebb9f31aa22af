"""check() of big int64/uint64 arrays (round 30): only the elements that differ are measured in Python ints (exact
past 2**53 and past int64's range), so an equal or nearly equal array costs a numpy pass, not ~85 bytes of Python
ints per element (10**7 equal int64 took 9 s and 1 GB); the answer is the exact one of before."""
from __future__ import annotations

import tracemalloc
from typing import Any, Callable

import numpy as np
import pytest

from ptort_lab.report import Check, check

N = 10**6
I64_MIN, I64_MAX, U64_MAX = -2**63, 2**63 - 1, 2**64 - 1
# Bytes per element a check may allocate (traced: numpy buffers and Python objects). Equal or nearly equal arrays:
# a bool mask (and, for uint64 against int64, a uint64 copy). Every element differing: the mask, their indices and
# one chunk of Python ints. Measuring every element in Python ints took 80-88.
EQUAL_BUDGET, DIFFER_BUDGET = 12, 32


def _traced(call: Callable[[], Check], n: int = N) -> tuple[Check, float]:
    """``call()``'s Check and the most memory it held at once, in bytes per element of ``n``."""
    outer = tracemalloc.is_tracing()
    if not outer:
        tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    tracemalloc.reset_peak()
    try:
        result = call()
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        if not outer:
            tracemalloc.stop()
    return result, peak / n


def _old_answer(got: np.ndarray[Any, Any], expected: np.ndarray[Any, Any], rtol: float,
                atol: float) -> tuple[bool, float, float]:
    """What check() answered before round 30, its formula written out: every element's distance in Python ints."""
    diff = np.abs(got.astype(object) - expected.astype(object)).astype(np.float64)
    reference = np.abs(expected.astype(np.float64))
    with np.errstate(over="ignore"):
        rel = diff / np.maximum(reference, np.finfo(np.float64).tiny)
        passed = bool(np.all((diff == 0) | (diff <= atol + rtol * reference)))
    return passed, float(diff.max()), float(rel.max())


@pytest.mark.parametrize("got_dtype, expected_dtype", [(np.int64, np.int64), (np.uint64, np.uint64),
                                                       (np.uint64, np.int64), (np.int32, np.int64)],
                         ids=["int64", "uint64", "uint64-int64", "int32-int64"])
def test_equal_big_integer_arrays_cost_a_numpy_pass(got_dtype: Any, expected_dtype: Any) -> None:
    g, e = np.arange(N, dtype=got_dtype), np.arange(N, dtype=expected_dtype)
    c, per_element = _traced(lambda: check("idx", g, e))
    assert (c.passed, c.max_abs_error, c.max_rel_error) == (True, 0.0, 0.0)
    assert per_element < EQUAL_BUDGET


# Each distance worked out by hand: |got - expected| in integers, then the nearest float64 (2**64 - 1 is 2.0**64).
@pytest.mark.parametrize("got, expected, distance, relative", [
    (np.int64(I64_MAX), np.int64(I64_MIN), 2.0**64, 2.0),  # 2**64 - 1 over |-2**63|
    (np.uint64(U64_MAX), np.uint64(0), 2.0**64, np.inf),  # over 0: no relative error is finite
    (np.uint64(U64_MAX), np.int64(I64_MIN), 2.0**64 + 2.0**63, 3.0),  # 2**64 - 1 + 2**63
    (np.int64(2**60 + 1), np.int64(2**60), 1.0, 2.0**-60),  # one apart, past float64's 2**53
    (np.uint64(2**63), np.int64(I64_MAX), 1.0, 2.0**-63),  # equal in float64, where numpy < 2.0 compared them
], ids=["int64-max-min", "uint64-max-0", "uint64-max-int64-min", "int64-2**60", "uint64-int64-2**63"])
def test_extreme_distances_in_a_big_array_are_exact(got: Any, expected: Any, distance: float,
                                                    relative: float) -> None:
    g, e = np.full(N, 7, got.dtype), np.full(N, 7, expected.dtype)
    g[[3, N - 2]], e[[3, N - 2]] = got, expected
    c, per_element = _traced(lambda: check("idx", g, e))
    assert (c.passed, c.max_abs_error, c.max_rel_error) == (False, distance, relative)
    assert check("idx", g, e, atol=distance).passed  # (the bound is exact too: a distance within atol passes)
    assert per_element < EQUAL_BUDGET


@pytest.mark.parametrize("got_dtype, expected_dtype, low", [(np.int64, np.int64, I64_MIN),
                                                            (np.uint64, np.uint64, 0), (np.uint64, np.int64, 0)],
                         ids=["int64", "uint64", "uint64-int64"])
@pytest.mark.parametrize("tolerance", [{}, {"rtol": 0.5}, {"atol": 2.0**65}], ids=["exact", "rtol", "atol"])
def test_a_few_differences_give_the_answer_of_every_element_in_python_ints(got_dtype: Any, expected_dtype: Any,
                                                                           low: int,
                                                                           tolerance: dict[str, float]) -> None:
    """50 full-range differences among 10**6 elements: the old formula's answer, at a numpy pass's cost."""
    rng = np.random.default_rng(30)
    e = rng.integers(low, np.iinfo(expected_dtype).max, N, dtype=expected_dtype, endpoint=True)
    g = e.astype(got_dtype)
    info = np.iinfo(got_dtype)
    g[rng.choice(N, 50, replace=False)] = rng.integers(info.min, info.max, 50, dtype=got_dtype, endpoint=True)
    c, per_element = _traced(lambda: check("idx", g, e, **tolerance))
    rtol, atol = tolerance.get("rtol", 0.0), tolerance.get("atol", 0.0)
    assert (c.passed, c.max_abs_error, c.max_rel_error) == _old_answer(g, e, rtol, atol)
    assert per_element < EQUAL_BUDGET


def test_every_element_differing_holds_python_ints_a_chunk_at_a_time() -> None:
    n = 2**18  # (16 chunks: fewer elements than N, as tracing each Python int is slow)
    g = np.arange(n, dtype=np.int64)
    e = g + np.int64(2**62)
    e[::3] = I64_MIN
    c, per_element = _traced(lambda: check("idx", g, e, atol=2.0**62), n)
    farthest = float((n - 1) - I64_MIN)  # the last element (2**18 - 1, a multiple of 3) against -2**63, as a float
    assert (c.passed, c.max_abs_error, c.max_rel_error) == (False, farthest, farthest / 2.0**63)
    assert check("idx", g[1::3], e[1::3], atol=2.0**62).passed  # (2**62 apart: within atol, exactly)
    assert per_element < DIFFER_BUDGET
