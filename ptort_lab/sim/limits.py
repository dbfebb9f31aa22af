"""Run limits of the engine: the step counts that stop a pipeline looping forever, and the report naming the loop.

The limits are ``ptort_lab.sim.engine.MAX_STEPS`` and ``MAX_STEPS_WITHOUT_PROGRESS`` (read when a run starts; see
``engine``). The engine's inner loop only counts a budget down; every ``check_every`` steps ``RunLimits.trip`` looks
at the totals. When a limit trips, the engine runs a few hundred more steps with each process's commands logged
(``Recorder``), and ``describe`` turns that log into "which processes loop on which channels".
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..dsl.commands import ACQUIRE, PULL, PUSH, RECORD, SEND, SEND_PULL, TASK, TASK_PULL, WAIT
from ..errors import PtortValueError, RunLimitError
from .fifo import Actor

if TYPE_CHECKING:  # (the engine imports this module)
    from .engine import Engine

CHECK_EVERY = 65_536  # steps between two limit checks (each sums every process's clock)
DIAGNOSE_STEPS = 512  # steps run after a limit trips, recording what each process does, for the message

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

    def __init__(self, max_steps: Any, max_steps_without_progress: Any) -> None:
        for name, value in (("MAX_STEPS", max_steps), ("MAX_STEPS_WITHOUT_PROGRESS", max_steps_without_progress)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PtortValueError(f"the run limit ptort_lab.sim.engine.{name} must be an int >= 1, got {value!r}.",
                                      hint=f"Set it to a step count, e.g. ptort_lab.sim.engine.{name} = 100_000_000.")
        self.max_steps: int = max_steps
        self.max_steps_without_progress: int = max_steps_without_progress
        self.steps = 0  # counted in chunks of check_every
        self.still_steps = 0  # of those, the steps since the clocks last moved or a process last finished
        self.progress = (-1, -1)  # (sum of the clocks, processes done) at the last check
        self.check_every = 1 << 62  # runs without channels are finite lists of tasks: never checked
        self.diagnosing = False

    def start(self, has_channels: bool) -> int:
        """The first budget: only runs with channels can loop, so only they are checked."""
        if has_channels:
            self.check_every = min(CHECK_EVERY, self.max_steps, self.max_steps_without_progress)
        return self.check_every

    def trip(self, progress: tuple[int, int]) -> str:
        """Count ``check_every`` more steps; the limit they pass ("steps", "progress"), or "" to go on."""
        self.steps += self.check_every
        if self.diagnosing:
            return "diagnosed"
        if progress != self.progress:
            self.progress, self.still_steps = progress, 0
        else:
            self.still_steps += self.check_every
        if self.steps >= self.max_steps:
            return "steps"
        if self.still_steps >= self.max_steps_without_progress:
            return "progress"
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
        else:
            what = (f"Run limit: the pipeline ran {steps:,} steps (a send, consume, task, record or synchronize of a "
                    f"process each) and has not finished; simulated time is t={now:,} cycles. {doing}")
            hint = ("If it should end, look for processes that feed each other in a cycle (a consume loop ends only "
                    "when every producer of its channel has finished). If it is only long, raise the limit: "
                    f"ptort_lab.sim.engine.MAX_STEPS = {10 * self.max_steps:_} (now {self.max_steps:_}).")
        return RunLimitError(what, hint=hint)


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
        if op in (PULL, TASK_PULL, SEND_PULL):
            found.add((1, f"consumes '{cmd[-1][1].name if op != PULL else cmd[1].name}'"))
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


__all__ = ["RunLimits", "LimitReached", "Recorder", "describe", "diagnose", "CHECK_EVERY", "DIAGNOSE_STEPS"]
