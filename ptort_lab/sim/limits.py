"""Run limits of the engine: the step counts that stop a pipeline looping forever, and the report naming the loop.

The limits are ``ptort_lab.sim.engine.MAX_STEPS``, ``MAX_STEPS_WITHOUT_PROGRESS`` and ``MAX_RUN_BYTES`` (read when a
run starts; see ``engine``), and ``NEVER_ENDS_STEPS`` here: a pipeline with processes that can each finish only after
the next one in a cycle has (each consumes, unconditionally, a channel the next produces: ``endless_cycle``) can
never finish; once it has run that many steps with its clock moving it is stopped (a deadlock, if it comes sooner,
is reported as one). The engine's inner loop only counts a budget down; every ``check_every`` steps
``RunLimits.trip`` looks at the totals. When a limit trips, the engine runs a few hundred more steps with each
process's commands logged (``Recorder``), and ``describe`` turns that log into "which processes loop on which channels".
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from ..dsl.commands import ACQUIRE, PULL, PUSH, RECORD, RELEASE, SEND, SEND_PULL, TASK, TASK_PULL, WAIT
from ..dsl.tree import NodeKind
from ..errors import PtortValueError, RunLimitError
from .fifo import Actor

if TYPE_CHECKING:  # (the engine imports this module)
    from .engine import Engine

CHECK_EVERY = 65_536  # steps between two limit checks (each sums every process's clock)
DIAGNOSE_STEPS = 512  # steps run after a limit trips, recording what each process does, for the message
# A pipeline that can never finish (endless_cycle) is stopped after this many steps once its clock moves (a tenth of
# a second with pinned costs, 1-4 s with the NPU model and values): it would run until a limit anyway. Such a run
# is checked every NEVER_ENDS_STEPS steps.
NEVER_ENDS_STEPS = 16_384
# Estimated bytes a run holds per task (the Task, its bindings and resources, its channel occupancy steps), per span
# and per stall kept. Spans and stalls are kept column by column (trace.SpanColumns: 4-byte ints and interned names
# until a value needs 8 bytes): tracemalloc of 1e5 tiles of a 3-stage pipeline on the general engine measured 560
# bytes per stage-item in all (was 700 with a tuple per span and stall), ~40 per span, ~20 per stall.
BYTES_PER_TASK = 500
BYTES_PER_SPAN = 48
BYTES_PER_STALL = 24
# A run that keeps no trace (execute(keep_trace=False), stats.SpanTotals) holds its spans not counted yet (a Span tuple
# with its ints, ~200 bytes, at most runner.FLUSH_SPANS of them) and the busy intervals still open after the earliest
# clock (a (start, end) tuple, ~120 bytes: the work in flight), nothing per task.
BYTES_PER_UNCOUNTED_SPAN = 200
BYTES_PER_OPEN_INTERVAL = 120

Log = list[tuple[Actor, tuple[Any, ...]]]


class LimitReached(Exception):
    """Raised out of the engine's main loop when a run limit trips (``kind`` is "steps" or "progress")."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class Recorder:
    """Wraps an actor's step generator after a run limit tripped, logging the commands it yields."""

    __slots__ = ("gen", "actor", "log")

    def __init__(self, gen: Any, actor: Actor, log: Log) -> None:
        self.gen, self.actor, self.log = gen, actor, log

    def send(self, value: Any) -> tuple[Any, ...]:
        cmd: tuple[Any, ...] = self.gen.send(value)
        self.log.append((self.actor, cmd))
        return cmd


class RunLimits:
    """The step counts of one run against its two limits (validated ints >= 1)."""

    def __init__(self, max_steps: Any, max_steps_without_progress: Any, max_run_bytes: Any = 1 << 62,
                 endless: list[tuple[str, str, str]] | None = None,
                 held_bytes: Callable[[], int] | None = None) -> None:
        for name, value in (("MAX_STEPS", max_steps), ("MAX_STEPS_WITHOUT_PROGRESS", max_steps_without_progress),
                            ("MAX_RUN_BYTES", max_run_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PtortValueError(f"the run limit ptort_lab.sim.engine.{name} must be an int >= 1, got {value!r}.",
                                      hint=f"Set it to a step count, e.g. ptort_lab.sim.engine.{name} = 100_000_000.")
        self.max_steps: int = max_steps
        self.max_steps_without_progress: int = max_steps_without_progress
        self.max_run_bytes: int = max_run_bytes
        self.endless = endless  # the cycle of processes that can never finish, if any (endless_cycle)
        self.held_bytes = held_bytes  # estimate of the bytes the run holds (tasks, spans, stalls), when known
        self.held = 0  # that estimate at the last check
        self.steps = 0  # counted in chunks of check_every
        self.still_steps = 0  # of those, the steps since the clocks last moved or a process last finished
        self.progress = (-1, -1)  # (sum of the clocks, processes done) at the last check
        self.check_every = 1 << 62  # runs without channels are finite lists of tasks: never checked
        self.progress_every = 1 << 62  # steps between two looks at progress (check_every, or a multiple of it)
        self.progress_steps = 0  # self.steps at the last look at progress
        self.clocks = -1  # the sum of the clocks at the last check
        self.diagnosing = False

    def start(self, has_channels: bool) -> int:
        """The first budget: only runs with channels can loop, so only they are checked."""
        if has_channels:
            self.progress_every = min(CHECK_EVERY, self.max_steps, self.max_steps_without_progress)
            self.check_every = min(self.progress_every, NEVER_ENDS_STEPS) if self.endless else self.progress_every
        return self.check_every

    def trip(self, progress: tuple[int, int]) -> str:
        """Count ``check_every`` more steps; the limit they pass ("steps", "progress"), or "" to go on."""
        self.steps += self.check_every
        if self.diagnosing:
            return "diagnosed"
        moved = progress[0] != self.clocks and self.clocks >= 0  # the clocks moved since the last check
        self.clocks = progress[0]
        if self.steps - self.progress_steps >= self.progress_every:  # (an endless run is checked more often)
            if progress != self.progress:
                self.progress, self.still_steps = progress, 0
            else:
                self.still_steps += self.steps - self.progress_steps
            self.progress_steps = self.steps
        if self.steps >= self.max_steps:
            return "steps"
        if self.still_steps >= self.max_steps_without_progress:
            return "progress"
        if self.endless and self.steps >= NEVER_ENDS_STEPS and moved:
            return "endless"
        if self.held_bytes is not None:
            self.held = self.held_bytes()
            if self.held > self.max_run_bytes:
                return "memory"
        return ""

    def start_diagnosis(self) -> int:
        """The budget of the few steps run to describe the loop."""
        self.diagnosing, self.check_every = True, DIAGNOSE_STEPS
        return DIAGNOSE_STEPS

    def error(self, kind: str, steps: int, still: int, now: int, doing: str) -> RunLimitError:
        """The RunLimitError for ``kind``, at ``steps`` steps (``still`` of them without progress) and time ``now``."""
        if kind == "progress":
            what = (f"Run limit: {still:,} steps without simulated time moving (at t={now:,} cycles, "
                    f"{steps:,} steps in all). {doing} Processes that feed each other through channels pass items "
                    "back and forth forever: a consume loop ends only when every producer of its channel has "
                    "finished.")
            hint = ("Give the loop an end, e.g. a for_each over a finite axis instead of a consume that feeds its own "
                    "producer. If the run is only long and its tasks cost 0 cycles, pin costs (cycles=) or raise the "
                    "limit: ptort_lab.sim.engine.MAX_STEPS_WITHOUT_PROGRESS = "
                    f"{10 * self.max_steps_without_progress:_} (now {self.max_steps_without_progress:_}).")
        elif kind == "endless":
            what = (f"Run limit: this pipeline can never finish: {_cycle_text(self.endless or [])}. It has run "
                    f"{steps:,} steps (simulated time t={now:,} cycles) and would run until a limit. {doing}")
            hint = ("Give the loop an end: a process that consumes a channel ends only when every producer of that "
                    "channel has finished, so a cycle of such processes needs one that stops on its own (a for_each "
                    "over a finite axis instead of a consume). If it is meant to run this long, raise "
                    f"ptort_lab.sim.limits.NEVER_ENDS_STEPS (now {NEVER_ENDS_STEPS:_}).")
        elif kind == "memory":
            what = (f"Run limit: the run holds about {_size(self.held)} of tasks, spans and stalls after {steps:,} "
                    f"steps (simulated time t={now:,} cycles), more than its limit of {_size(self.max_run_bytes)}; "
                    f"going on would exhaust host memory. {doing}")
            hint = ("Run fewer tiles, or execute(steady_state=True) for the exact figures of a long periodic run "
                    "(it simulates only a few periods), or execute(keep_trace=False), which keeps only the figures "
                    "of stats() (no trace); if the host has the memory, raise the limit: "
                    f"ptort_lab.sim.engine.MAX_RUN_BYTES = {2 * self.max_run_bytes:_} (now {self.max_run_bytes:_}).")
        else:
            what = (f"Run limit: the pipeline ran {steps:,} steps (a send, consume, task, record or synchronize of a "
                    f"process each) and has not finished; simulated time is t={now:,} cycles. {doing}")
            hint = ("If it should end, look for processes that feed each other in a cycle (a consume loop ends only "
                    "when every producer of its channel has finished). If it is only long, raise the limit: "
                    f"ptort_lab.sim.engine.MAX_STEPS = {10 * self.max_steps:_} (now {self.max_steps:_}).")
        return RunLimitError(what, hint=hint)


def _size(nbytes: int) -> str:
    """1.5 GiB, 12 MiB, 900 KiB."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}" if unit == "GiB" else f"{nbytes // scale:,} {unit}"
    return f"{nbytes:,} bytes"


def _cycle_text(cycle: list[tuple[str, str, str]]) -> str:
    """"'A' ends only after 'c2' closes, which needs 'B' to finish; 'B' ends only after ...": the cycle's links."""
    return "; ".join(f"'{p}' ends only after '{c}' closes, which needs '{q}' to finish" for p, c, q in cycle)


def endless_cycle(processes: list[Any], producers: Callable[[Any], Any]) -> list[tuple[str, str, str]] | None:
    """A cycle of processes that can never finish, as (process, channel it must drain, that channel's producer)
    links, or None. A process whose body (outside any loop, branch or consume body: it surely gets there) consumes a
    channel ends only after every producer of that channel has finished; a cycle of such waits never ends."""
    waits: dict[str, list[tuple[str, str]]] = {}
    for p in processes:
        waits[p.name] = [(c.name, q.name) for c in _must_drain(p.workload) for q in producers(c)]
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[tuple[str, str, str]] = []

    def visit(name: str) -> list[tuple[str, str, str]] | None:
        state[name] = 1
        for channel, producer in waits.get(name, ()):
            path.append((name, channel, producer))
            if state.get(producer) == 1:  # back to a process on the path: the cycle is from there
                start = next(i for i, link in enumerate(path) if link[0] == producer)
                return path[start:]
            if producer not in state:
                found = visit(producer)
                if found is not None:
                    return found
            path.pop()
        state[name] = 2
        return None

    for p in processes:
        if p.name not in state:
            cycle = visit(p.name)
            if cycle is not None:
                return cycle
    return None


_SURELY_RUN = frozenset({NodeKind.SEQUENTIAL, NodeKind.COMBINE})  # nodes whose children all run


def _must_drain(node: Any) -> list[Any]:
    """The channels a body consumes on every run of it: CONSUME nodes reached through sequences only."""
    out: list[Any] = []
    stack = [node]
    while stack:
        n = stack.pop()
        kind = getattr(n, "kind", None)
        if kind is NodeKind.CONSUME:
            out.append(n.channel)
        elif kind in _SURELY_RUN:
            stack.extend(n.children())
    return out


def diagnose(engine: Engine, kind: str) -> RunLimitError:
    """The error for a tripped limit: run a few hundred more steps recording what each actor does, to name the
    processes that loop and their channels."""
    limits = engine.limits
    assert limits is not None
    steps, still = limits.steps, limits.still_steps
    now = max((p.t for p in engine.procs), default=0)
    clocks = {p.name: p.t for p in engine.procs}  # at the limit, before the steps run to describe the loop
    log: Log = []
    for p in engine.procs:
        if not p.done:
            p.gen = Recorder(p.gen, p, log)
    engine.resume(limits.start_diagnosis())
    return limits.error(kind, steps, still, now, describe(log, clocks))


def describe(log: Log, clocks: dict[str, int]) -> str:
    """"Active: 'A' (t=0) sends to 'c1' and consumes 'c2'; ...": what each process did in the logged steps, and
    its clock when the limit tripped."""
    acts: dict[Actor, set[tuple[int, str]]] = {}
    for actor, cmd in log:
        op = cmd[0]
        found = acts.setdefault(actor, set())
        if op in (SEND, SEND_PULL, ACQUIRE, PUSH):
            found.add((0, f"sends to '{cmd[1].name}'"))
        if op in (PULL, TASK_PULL, SEND_PULL, RELEASE):
            found.add((1, f"consumes '{cmd[-1][1].name if op in (TASK_PULL, SEND_PULL) else cmd[1].name}'"))
        if op in (TASK, TASK_PULL, SEND, SEND_PULL):
            found.add((2, "runs tasks"))
        if op == RECORD:
            found.add((3, f"records '{cmd[1].name}'"))
        if op == WAIT:
            found.add((4, f"synchronizes on '{cmd[1].name}'"))
    if not acts:
        return "No process took a step after the limit."
    parts = []
    for actor, found in sorted(acts.items(), key=lambda pa: pa[0].order):
        words = [w for _, w in sorted(found)]
        parts.append(f"'{actor.name}' (t={clocks[actor.name]:,}) " + (", ".join(words[:-1]) + " and "
                                                                       if len(words) > 1 else "") + words[-1])
    return "Active: " + "; ".join(parts) + "."


__all__ = ["RunLimits", "LimitReached", "Recorder", "describe", "diagnose", "endless_cycle", "CHECK_EVERY",
           "DIAGNOSE_STEPS", "NEVER_ENDS_STEPS", "BYTES_PER_TASK", "BYTES_PER_SPAN", "BYTES_PER_STALL",
           "BYTES_PER_UNCOUNTED_SPAN", "BYTES_PER_OPEN_INTERVAL"]
