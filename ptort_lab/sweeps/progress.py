"""Sweep progress: done/total, failed, from the cache, and the time left; a line on stderr (the notebook layer
draws the same numbers as a widget).

Shown once the sweep has run for ``after_s`` seconds (``mode=None``), at once (``True``), or never (``False``).
The last state drawn has no time in it, so a saved notebook output does not change from run to run.
"""
from __future__ import annotations

import sys
import time
from typing import TextIO

PROGRESS_AFTER_S = 0.5


def eta_text(seconds: float) -> str:
    """``7 s``, ``2 min 05 s``, ``1 h 03 min``."""
    s = int(round(seconds))
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


class Progress:
    """Counts and time left of one sweep; ``show`` and ``draw`` print a line on stderr (subclasses draw
    elsewhere)."""

    def __init__(self, mode: bool | None = None, after_s: float | None = None, stream: TextIO | None = None) -> None:
        self.mode = mode
        self.after_s = PROGRESS_AFTER_S if after_s is None else after_s
        self.stream = stream
        self.total = self.done = self.failed = self.cached = 0
        self.executor = ""
        self.started = time.perf_counter()
        self.shown = False
        self._ran_from: tuple[float, int] | None = None  # (time, points done) when the first point ran here
        self._last_draw = 0.0

    def start(self, total: int, executor: str = "") -> None:
        self.total, self.executor = total, executor
        self.started = time.perf_counter()

    def update(self, done: int, failed: int, cached: int) -> None:
        """The sweep has ``done`` points (``failed`` of them failed, ``cached`` came from the cache)."""
        now = time.perf_counter()
        if self._ran_from is None and done > cached:
            self._ran_from = (self.started, cached)
        self.done, self.failed, self.cached = done, failed, cached
        if self.mode is False:
            return
        if not self.shown and (self.mode or now - self.started > self.after_s):
            self.shown = True
            self.show()
        if self.shown:
            self.draw(final=False)

    def close(self) -> None:
        if self.shown:
            self.draw(final=True)

    def eta_s(self) -> float | None:
        """Seconds left at the pace of the points run so far (None before one has run)."""
        if self._ran_from is None:
            return None
        since, cached = self._ran_from
        ran = self.done - cached
        if ran <= 0:
            return None
        return (time.perf_counter() - since) / ran * (self.total - self.done)

    def text(self, final: bool) -> str:
        """``12/200 runs, 1 failed, 3 from the cache, 41 s left``."""
        out = f"{self.done}/{self.total} runs, {self.failed} failed, {self.cached} from the cache"
        eta = None if final else self.eta_s()
        return out + (f", {eta_text(eta)} left" if eta is not None and self.done < self.total else "")

    # -- the drawing (a line on stderr) ----------------------------------------------------------------------------
    def show(self) -> None:
        """Start showing (the line appears with the first draw)."""

    def draw(self, final: bool) -> None:
        now = time.perf_counter()
        if not final and now - self._last_draw < 0.5:
            return
        self._last_draw = now
        stream = self.stream if self.stream is not None else sys.stderr
        print(f"\rsweep: {self.text(final)}", end="\n" if final else "", file=stream, flush=True)


__all__ = ["Progress", "PROGRESS_AFTER_S", "eta_text"]
