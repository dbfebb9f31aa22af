"""What a run recorded: spans (core, lane, name, index, start, end, bytes) and channel-occupancy samples."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Span:
    """One busy interval: ``lane`` is a pipe (MTE2, V, ...) or a stage/process name; times in cycles."""

    core: int
    lane: str
    name: str
    index: Any
    start: int
    end: int
    bytes: int = 0
    process: str = ""
    task_id: int = -1

    @property
    def cycles(self) -> int:
        return self.end - self.start


@dataclass(frozen=True, slots=True)
class Sample:
    """Channel ``channel`` holds ``occupancy`` slots from cycle ``time`` on."""

    channel: str
    time: int
    occupancy: int


@dataclass(frozen=True, slots=True)
class Stall:
    """A process waited from ``start`` to ``end`` for ``reason`` (backpressure, starvation, dependencies)."""

    process: str
    reason: str
    start: int
    end: int


@dataclass
class Trace:
    """Everything one run recorded, in a deterministic order."""

    spans: list[Span] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    stalls: list[Stall] = field(default_factory=list)
    makespan: int = 0
    clock_hz: float = 1.8e9
    mode: str = "pipeline"
    processes: list[str] = field(default_factory=list)
    channels: dict[str, int] = field(default_factory=dict)
    cores: dict[int, str] = field(default_factory=dict)
    process_end: dict[str, int] = field(default_factory=dict)

    def spans_of(self, lane: str | None = None, process: str | None = None) -> list[Span]:
        return [s for s in self.spans if (lane is None or s.lane == lane) and (process is None or s.process == process)]

    def occupancy(self, channel: str) -> list[tuple[int, int]]:
        """(time, slots in use) steps for one channel, in time order."""
        return [(s.time, s.occupancy) for s in self.samples if s.channel == channel]

    def max_occupancy(self, channel: str) -> int:
        return max((o for _, o in self.occupancy(channel)), default=0)
