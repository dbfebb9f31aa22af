"""Where in a test file an error should point: the caller's line, and a check that an error names it."""
from __future__ import annotations

import inspect
from typing import Any


def here() -> int:
    """The caller's current line number."""
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    return frame.f_back.f_lineno


def located(e: Any, line: int) -> None:
    """The error in ``e`` (a pytest ExceptionInfo) names the caller's file at ``line``."""
    frame = inspect.currentframe()
    assert frame is not None and frame.f_back is not None
    caller = frame.f_back.f_code.co_filename
    assert e.value.where is not None, e.value
    assert (e.value.where.filename, e.value.where.lineno) == (caller, line), e.value.where
