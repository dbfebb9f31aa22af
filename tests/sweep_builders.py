"""Builders for the sweep tests. Worker processes import this module (the builders travel by reference), so it
imports only ptort_lab. Each call is logged as a line in a file, which outlives the process that built."""
from __future__ import annotations

import os
import signal
from pathlib import Path

from ptort_lab.spec_pipeline import spec_pipeline

TILE = (32, 32)


class Logged:
    """The spec pipeline at ``depth`` (``tiles`` tiles of 32x32), logging "depth pid" to ``log`` on every call.

    Misbehaves on purpose: at depth ``fail_at`` it raises ValueError (every time); at depth ``interrupt_at`` it
    raises KeyboardInterrupt and at depth ``kill_at`` it kills its own process, each only while the file ``once``
    exists (it removes it first, so the rerun goes through)."""

    def __init__(self, log: Path, tiles: int = 2, fail_at: int = 0, interrupt_at: int = 0, kill_at: int = 0,
                 once: Path | None = None) -> None:
        self.log, self.tiles, self.fail_at = str(log), tiles, fail_at
        self.interrupt_at, self.kill_at = interrupt_at, kill_at
        self.once = str(once) if once is not None else None

    def __call__(self, depth):
        with open(self.log, "a") as f:
            f.write(f"{depth} {os.getpid()}\n")
        if depth == self.fail_at:
            raise ValueError(f"no tile fits at depth {depth}")
        if depth in (self.interrupt_at, self.kill_at) and self.once is not None and os.path.exists(self.once):
            os.remove(self.once)
            if depth == self.kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            raise KeyboardInterrupt
        return spec_pipeline(depth=depth, tile=TILE, tiles=self.tiles, seed=None).pipeline


def calls(log: Path) -> list[tuple[int, int]]:
    """(depth, pid) of every call logged so far."""
    if not log.exists():
        return []
    return [(int(d), int(p)) for d, p in (line.split() for line in log.read_text().splitlines())]


def depths(log: Path) -> list[int]:
    return sorted(d for d, _ in calls(log))


def stuck(depth):
    """The spec pipeline whose second channel stays at depth 2 whatever depth says (a builder bug)."""
    pipe = spec_pipeline(depth=depth, tile=TILE, tiles=2, seed=None).pipeline
    pipe.channels[1].depth = 2
    return pipe
