"""gc_paused(): keep the cyclic garbage collector off while a run (or a trace load) builds millions of records."""
from __future__ import annotations

import gc
import threading
from contextlib import contextmanager
from typing import Iterator

_lock = threading.Lock()
_runs = 0  # runs in progress in any thread; the collector waits until the last one ends
_was_enabled = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """A run allocates millions of small long-lived records (tasks, spans, samples); the cyclic collector would
    rescan them again and again while finding nothing to free, so it waits until the run is over (until every run
    is over, when several threads run at once: the first to start pauses it, the last to end resumes it)."""
    global _runs, _was_enabled
    with _lock:
        if _runs == 0:
            _was_enabled = gc.isenabled()
            gc.disable()
        _runs += 1
    try:
        yield
    finally:
        with _lock:
            _runs -= 1
            if _runs == 0 and _was_enabled:
                # freeze+unfreeze moves the run's objects straight to the oldest generation, so re-enabling does
                # not start with one young-generation pass over all of them (40% of a long run); nothing stays
                # frozen.
                gc.freeze()
                gc.unfreeze()
                gc.enable()


__all__ = ["gc_paused"]
