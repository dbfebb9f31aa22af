"""What a run recorded: spans (core, lane, name, index, start, end, bytes) and channel-occupancy samples."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

# Records are NamedTuples: immutable, compared by value, and cheap to create by the million (a frozen dataclass
# costs several times more per instance, which dominated long runs).


class Span(NamedTuple):
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


class Sample(NamedTuple):
    """Channel ``channel`` holds ``occupancy`` slots from cycle ``time`` on."""

    channel: str
    time: int
    occupancy: int


class Stall(NamedTuple):
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

    def __call__(self) -> Trace:
        """Itself: ``program.trace()`` and the reference's ``program.trace`` are the same object."""
        return self

    # -- Chrome / Perfetto export (ptort_lab.sim.export) ----------------------------------------------------------
    def to_chrome_json(self) -> str:
        """This trace as Chrome Trace Event JSON (opens in ui.perfetto.dev); same trace, same bytes."""
        from .export import to_chrome_json
        return to_chrome_json(self)

    to_chrome_trace = to_chrome_json  # the reference's name (ExecutionTrace.to_chrome_trace)

    def save(self, path: Any) -> Any:
        """Write ``to_chrome_json()`` to ``path`` (``run.json``, or ``run.json.gz`` compressed); returns the Path."""
        from .export import save
        return save(self, path)

    @classmethod
    def load(cls, path: Any) -> "Trace":
        """Read a trace written by ``save`` (or JSON text from ``to_chrome_json``) back into an equal Trace."""
        from .export import load_chrome_json
        return load_chrome_json(path)


def _get_samples(self: Trace) -> list[Sample]:
    value = self.__dict__.get("_samples", [])
    if callable(value):  # computed on first use: long runs record millions of steps nobody may look at
        value = self.__dict__["_samples"] = value()
    return value  # type: ignore[no-any-return]


def _set_samples(self: Trace, value: Any) -> None:
    self.__dict__["_samples"] = value


# `samples` stays a constructor field (Trace(samples=[...])) but may be given as a function computing the list.
Trace.samples = property(_get_samples, _set_samples)  # type: ignore[assignment]
