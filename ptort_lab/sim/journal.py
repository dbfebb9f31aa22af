"""What a value-computing run wrote, so that a run that fails leaves every tensor as it was (``numerics.Writes``).

Runs that compute values write tensors their callers share (two threads running one Program write the same arrays,
and undoing a failed run must not undo another run's writes), so they take turns (``values_lock``); timing-only runs
touch no tensor and run concurrently. ``recording(writes)`` makes the runs of a ``with`` block (a Study) record into
one journal, so each of its runs can start from the same data.
"""
from __future__ import annotations

import contextvars
import threading
from contextlib import contextmanager
from typing import Any, Iterator

from ..errors import PtortError
from .numerics import Writes

# Re-entrant: a cycles= function may itself run a program.
values_lock = threading.RLock()
_recording: contextvars.ContextVar[Writes | None] = contextvars.ContextVar("ptort_writes", default=None)


@contextmanager
def recording(writes: Writes) -> Iterator[Writes]:
    """Inside the ``with``, value-computing runs (in this thread) record what they write into ``writes``, and one
    that fails puts back everything ``writes`` holds: the tensors return to how they were when it was made. A Study
    uses it so that each of its runs starts from the same data."""
    token = _recording.set(writes)
    try:
        yield writes
    finally:
        _recording.reset(token)


def journal_for(compute_values: bool, writes: Writes | None) -> Writes | None:
    """The journal a run records into: ``writes``, else the one ``recording`` set, else a new one; None for a
    timing-only run (it writes nothing)."""
    if not compute_values:
        return None
    journal = writes if writes is not None else _recording.get()
    return journal if journal is not None else Writes()


def undo(journal: Writes, e: BaseException) -> None:
    """Put back what a failed run wrote, and say so in its error."""
    names = [_tensor_name(t) for t in journal.tensors()]
    try:
        journal.restore()
        note = (f"Outputs left unchanged: {_listing(names)} {'is' if len(names) == 1 else 'are'} as before the run "
                "(a run writes its outputs only if it succeeds)." if names else "")
    except Exception as failed:  # noqa: BLE001 - never hide the run's own error behind this one
        note = f"Undoing the run's writes failed ({type(failed).__name__}: {failed}): {_listing(names)} may be " \
               "half-written."
    if note and isinstance(e, PtortError) and not getattr(e, "_undo_noted", False):
        e._undo_noted = True  # type: ignore[attr-defined]  # a mark on the error: note it once when runs nest
        e.hint = f"{e.hint} {note}" if e.hint else note
        e.args = (e._compose(),)


def _tensor_name(t: Any) -> str:
    return f"'{t.name}'" if t.name else f"{t.dtype.value}{list(t.shape)}"


def _listing(names: list[str]) -> str:
    shown = names[:6] + ([f"{len(names) - 6} more"] if len(names) > 6 else [])
    return ", ".join(shown[:-1]) + " and " + shown[-1] if len(shown) > 1 else "".join(shown)


__all__ = ["recording", "journal_for", "undo", "values_lock"]
