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

import sys
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from ..dsl import steps as steps_module
from ..dsl.commands import ACQUIRE, PULL, PUSH, RECORD, RELEASE, SEND, SEND_PULL, TASK, TASK_PULL, WAIT
from ..dsl.sizes import checked_limit, checked_task_limit
from ..dsl.tasks import MAX_CYCLES, Task
from ..dsl.tree import NodeKind
from ..dsl.types import TensorView
from ..errors import RunLimitError, SimulationError
from .fifo import Actor
from .machine import DEFAULT_CLOCK_HZ, Machine

if TYPE_CHECKING:  # (the engine imports this module)
    from .engine import Engine

CHECK_EVERY = 65_536  # steps between two limit checks (each sums every process's clock)
DIAGNOSE_STEPS = 512  # steps run after a limit trips, recording what each process does, for the message
# A pipeline that can never finish (endless_cycle) is stopped after this many steps once its clock moves (a tenth of
# a second with pinned costs, 1-4 s with the NPU model and values): it would run until a limit anyway. Such a run
# is checked every NEVER_ENDS_STEPS steps.
NEVER_ENDS_STEPS = 16_384
# What a run that keeps its trace holds (held_bytes, checked against MAX_RUN_BYTES): its Task objects, and its spans
# and stalls, as tuples until the trace compacts them (trace.COMPACT_AFTER_ROWS: the first 4M of a kind), then in
# columns. How much a task or a tuple holds varies with the program (its loop bindings, tensor views, the cost
# model's span count and times), so it is measured on the run itself: sys.getsizeof over the objects of the last
# SAMPLE records (each object once: what tasks share counts a SAMPLE-th), plus BYTES_AROUND_TASK for what a task
# costs around it. Measured with tracemalloc against this estimate at every check (a run of 400k-600k tasks, 2026-03):
#   pinned costs, 3 stages (general engine, values):   657 B a task (1 span, ~0 stalls), estimate within 3 %
#   NPU model, 2 stages of a 64x64 F16 add:          1,276 B a task (3 spans, 0.5 stalls), within 6 %
#   NPU model, the spec pipeline (3 stages):         1,520 B a task (3 spans, 0.8 stalls), within 10 %
#   NPU model, flash attention pipeline (S=16384):   4,170 B a task (14.6 spans, 0.5 stalls), within 12 %
# The fixed figures it replaced (500 B a task, 48 a span, 24 a stall) were 1.2x low on the first and 2-3.4x low on
# the NPU model, whose tasks hold more views and have a span per instruction, each a ~150-byte tuple until compacted.
SAMPLE = 64
BYTES_AROUND_TASK = 80  # a task's slot in the run's list and its share of the engine's records (occupancy steps)
# A compacted span or stall (trace.SpanColumns: 4-byte ints and interned names until a value needs 8 bytes); and a
# task of a plain pinned-cost pipeline in all, as measured on 1e5 tiles of a 3-stage pipeline on the general engine
# (~40 bytes a span, ~20 a stall, 500 a task: maxplus.py's figures for the runs it would leave to the engine).
BYTES_PER_SPAN = 48
BYTES_PER_STALL = 24
BYTES_PER_TASK = 500
# A run that keeps no trace (execute(keep_trace=False), stats.SpanTotals) holds its spans not counted yet (a Span tuple
# with its ints, ~200 bytes, at most runner.FLUSH_SPANS of them) and the busy intervals still open after the earliest
# clock (a (start, end) tuple, ~120 bytes: the work in flight), nothing per task.
BYTES_PER_UNCOUNTED_SPAN = 200
BYTES_PER_OPEN_INTERVAL = 120


def held_bytes(tasks: list[Any], spans: Any, stalls: Any) -> int:
    """An estimate of the host memory a run holds in ``tasks`` and the records ``spans`` and ``stalls`` keeps
    (trace.RecordColumns, or lists): each kind's count times the bytes its last SAMPLE entries hold."""
    total = len(tasks) * (_sampled_bytes(tasks[-SAMPLE:], _task_parts, _VALUES) + BYTES_AROUND_TASK)
    for records, compacted in ((spans, BYTES_PER_SPAN), (stalls, BYTES_PER_STALL)):
        pending = getattr(records, "pending", records)  # the tuples not compacted yet
        total += (len(records) - len(pending)) * compacted
        if pending:
            total += len(pending) * _sampled_bytes(pending[-SAMPLE:], _record_parts, _NUMBERS)
    return total


# Small values counted as they are, never looked into. A record's names (a kernel, a lane, a process) are shared by
# many records (interned, or made once per core), a task's bindings may hold names of its own ("c.item").
_NUMBERS = (int, float, np.generic)
_VALUES = (*_NUMBERS, str, bytes, type(None))
_OWN_ITEMS = 256  # a container with more items than this is not a task's own (its params, views, bindings)


def _task_parts(o: Any) -> Any:
    """What a task holds of its own: its params, resources (tensor views and their indices, not the tensors) and
    loop bindings; nothing for anything else (a kernel, a source location: shared by many tasks)."""
    if isinstance(o, Task):
        return (o.params, o.resources, o.bindings)
    if isinstance(o, TensorView):
        return (o.index,)
    return _record_parts(o)


def _record_parts(o: Any) -> Any:
    """A tuple's, list's or dict's items (a record's fields: its ints and names)."""
    if isinstance(o, (tuple, list)):
        return o
    if isinstance(o, dict):
        return (*o.keys(), *o.values())
    return ()


def _sampled_bytes(sample: list[Any], parts: Callable[[Any], Any], leaves: tuple[type, ...]) -> int:
    """The bytes one of ``sample`` holds on average: sys.getsizeof of every object reached through ``parts``
    (containers, tasks and views) and of every small value of a type in ``leaves``, each counted once."""
    if not sample:
        return 0
    seen: set[int] = set()
    stack = list(sample)
    total = 0
    while stack:
        o = stack.pop()
        if id(o) in seen:
            continue
        seen.add(id(o))
        if isinstance(o, _VALUES):
            total += sys.getsizeof(o) if isinstance(o, leaves) else 0
            continue
        inner = parts(o)
        if len(inner) > _OWN_ITEMS:  # not a task's or a record's own: data it shares (a user's token, say)
            continue
        if inner or isinstance(o, (tuple, list, dict, Task, TensorView)):
            total += sys.getsizeof(o)
            stack.extend(inner)
    return total // len(sample)


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


# Each limit of a run: its setting's full name, its unit and a sensible larger setting (checked_limit's hint).
_ENGINE_LIMITS = (("MAX_STEPS", "a step count", "100_000_000"),
                  ("MAX_STEPS_WITHOUT_PROGRESS", "a step count", "100_000_000"),
                  ("MAX_RUN_BYTES", "a byte count", "8 * 2**30 (8 GiB)"))


def checked_settings(max_steps: Any, max_steps_without_progress: Any,
                     max_run_bytes: Any) -> tuple[int, int, int, int]:
    """Every run limit setting checked the same way (``checked_limit``: an int >= 1, else a PtortValueError naming
    it): the engine's three (as given), NEVER_ENDS_STEPS, and the task limits a run reads per task (runner.py,
    dsl/steps.py: checked here, once a run, not on the hot path); the first four as ints."""
    steps, progress, nbytes = (checked_limit(value, f"ptort_lab.sim.engine.{name}", unit, example)
                               for value, (name, unit, example) in zip(
                                   (max_steps, max_steps_without_progress, max_run_bytes), _ENGINE_LIMITS))
    never_ends = checked_limit(NEVER_ENDS_STEPS, "ptort_lab.sim.limits.NEVER_ENDS_STEPS", "a step count", "100_000")
    checked_task_limit(steps_module.MAX_PIPELINE_TASKS, "MAX_PIPELINE_TASKS")
    checked_task_limit(steps_module.MAX_TASKS, "MAX_TASKS")
    return steps, progress, nbytes, never_ends


class RunLimits:
    """The step counts of one run against its limits (every setting checked: ``checked_settings``)."""

    def __init__(self, max_steps: Any, max_steps_without_progress: Any, max_run_bytes: Any = 1 << 62,
                 endless: list[tuple[str, str, str]] | None = None,
                 held_bytes: Callable[[], int] | None = None, finite: bool = False) -> None:
        self.max_steps, self.max_steps_without_progress, self.max_run_bytes, self.never_ends_steps = \
            checked_settings(max_steps, max_steps_without_progress, max_run_bytes)
        self.endless = endless  # the cycle of processes that can never finish, if any (endless_cycle)
        self.held_bytes = held_bytes  # estimate of the bytes the run holds (tasks, spans, stalls), when known
        # a data-parallel run: a finite list of tasks (steps.MAX_TASKS), held to MAX_RUN_BYTES only (a core's steps
        # are its tasks and their waits: no step count says it loops)
        self.finite = finite
        self.held = 0  # that estimate at the last check
        self.steps = 0  # counted in chunks of check_every
        self.still_steps = 0  # of those, the steps since the clocks last moved or a process last finished
        self.progress = (-1, -1)  # (sum of the clocks, processes done) at the last check
        self.check_every = 1 << 62  # a run with no channels and no estimate is never checked
        self.progress_every = 1 << 62  # steps between two looks at progress (check_every, or a multiple of it)
        self.progress_steps = 0  # self.steps at the last look at progress
        self.clocks = -1  # the sum of the clocks at the last check
        self.diagnosing = False

    def start(self, has_channels: bool) -> int:
        """The first budget. Every pipeline run (one with channels, or given a memory estimate: runner.py gives one
        to every run) is checked against MAX_STEPS and MAX_RUN_BYTES, a ``finite`` (data-parallel) run against
        MAX_RUN_BYTES only; only runs with channels can loop at one cycle time or never finish, so only they are
        checked for progress (and NEVER_ENDS_STEPS)."""
        if has_channels:
            self.progress_every = min(CHECK_EVERY, self.max_steps, self.max_steps_without_progress)
            self.check_every = (min(self.progress_every, self.never_ends_steps) if self.endless
                                else self.progress_every)
        elif self.held_bytes is not None:  # (progress_every stays past any run: no progress limit)
            self.check_every = CHECK_EVERY if self.finite else min(CHECK_EVERY, self.max_steps)
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
        if self.steps >= self.max_steps and not self.finite:
            return "steps"
        if self.still_steps >= self.max_steps_without_progress:
            return "progress"
        if self.endless and self.steps >= self.never_ends_steps and moved:
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

    def error(self, kind: str, steps: int, still: int, now: int, doing: str, looping: bool = True) -> RunLimitError:
        """The RunLimitError for ``kind``, at ``steps`` steps (``still`` of them without progress) and time ``now``;
        ``looping``: the processes feed each other in a cycle (``endless``, or seen doing so: ``_feeds_in_cycle``)."""
        raise_progress = (f"ptort_lab.sim.engine.MAX_STEPS_WITHOUT_PROGRESS = {10 * self.max_steps_without_progress:_}"
                          f" (now {self.max_steps_without_progress:_})")
        if kind == "progress" and not looping:
            what = (f"Run limit: {still:,} steps without simulated time moving (at t={now:,} cycles, "
                    f"{steps:,} steps in all). {doing} The processes feed no cycle through channels: this is a long "
                    "run at one simulated time (its tasks cost 0 cycles and its channels have latency 0), not a "
                    "loop.")
            hint = ("If the run is only long and its tasks cost 0 cycles, pin costs (cycles=) or raise the limit: "
                    f"{raise_progress}.")
        elif kind == "progress":
            what = (f"Run limit: {still:,} steps without simulated time moving (at t={now:,} cycles, "
                    f"{steps:,} steps in all). {doing} Processes that feed each other through channels pass items "
                    "back and forth forever: a consume loop ends only when every producer of its channel has "
                    "finished.")
            hint = ("Give the loop an end, e.g. a for_each over a finite axis instead of a consume that feeds its own "
                    "producer. If the run is only long and its tasks cost 0 cycles, pin costs (cycles=) or raise the "
                    f"limit: {raise_progress}.")
        elif kind == "endless":
            what = (f"Run limit: this pipeline can never finish: {_cycle_text(self.endless or [])}. It has run "
                    f"{steps:,} steps (simulated time t={now:,} cycles) and would run until a limit. {doing}")
            hint = ("Give the loop an end: a process that consumes a channel ends only when every producer of that "
                    "channel has finished, so a cycle of such processes needs one that stops on its own (a for_each "
                    "over a finite axis instead of a consume). If it is meant to run this long, raise "
                    f"ptort_lab.sim.limits.NEVER_ENDS_STEPS (now {self.never_ends_steps:_}).")
        elif kind == "memory" and self.finite:  # (``steps``: the tasks run so far)
            what = (f"Run limit: the run holds about {_size(self.held)} of tasks and spans after {steps:,} tasks "
                    f"(simulated time t={now:,} cycles), more than its limit of {_size(self.max_run_bytes)}; going "
                    "on would exhaust host memory.")
            hint = ("Run fewer tiles, or execute(keep_trace=False), which keeps only the figures of stats() (no "
                    "trace and no tasks); if the host has the memory, raise the limit: "
                    f"ptort_lab.sim.engine.MAX_RUN_BYTES = {2 * self.max_run_bytes:_} (now {self.max_run_bytes:_}).")
        elif kind == "memory":
            what = (f"Run limit: the run holds about {_size(self.held)} of tasks, spans and stalls after {steps:,} "
                    f"steps (simulated time t={now:,} cycles), more than its limit of {_size(self.max_run_bytes)}; "
                    f"going on would exhaust host memory. {doing}")
            raise_bytes = (f"ptort_lab.sim.engine.MAX_RUN_BYTES = {2 * self.max_run_bytes:_} "
                           f"(now {self.max_run_bytes:_})")
            if looping:  # a run that loops holds more the longer it runs, with or without a trace
                what += (" These processes feed each other through channels in a cycle: a consume loop ends only "
                         "when every producer of its channel has finished.")
                hint = ("If the loop should end, give it an end (a for_each over a finite axis instead of a consume "
                        "that feeds its own producer). If it is only long and the host has the memory, raise the "
                        f"limit: {raise_bytes}.")
            else:
                hint = ("Run fewer tiles, or execute(steady_state=True) for the exact figures of a long periodic run "
                        "(it simulates only a few periods), or execute(keep_trace=False), which keeps only the "
                        f"figures of stats() (no trace); if the host has the memory, raise the limit: {raise_bytes}.")
        else:
            what = (f"Run limit: the pipeline ran {steps:,} steps (a send, consume, task, record or synchronize of a "
                    f"process each) and has not finished; simulated time is t={now:,} cycles. {doing}")
            raise_steps = f"ptort_lab.sim.engine.MAX_STEPS = {10 * self.max_steps:_} (now {self.max_steps:_})"
            hint = ("If it should end, look for processes that feed each other in a cycle (a consume loop ends only "
                    f"when every producer of its channel has finished). If it is only long, raise the limit: "
                    f"{raise_steps}." if looping else
                    "Its processes feed no cycle through channels, so it only runs long: raise the limit, "
                    f"{raise_steps}, or run fewer tiles.")
        return RunLimitError(what, hint=hint)


def _size(nbytes: int) -> str:
    """1.5 GiB, 12 MiB, 900 KiB."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if nbytes >= scale:
            return f"{nbytes / scale:.1f} {unit}" if unit == "GiB" else f"{nbytes // scale:,} {unit}"
    return f"{nbytes:,} bytes"


def run_past_max_cycles(makespan: int, cost: Any, channel_latency_cycles: int) -> SimulationError:
    """The error for a run whose end (its makespan: every time it records is at most that, so the runner compares
    it once, not each time) is past 2**53, naming what took it there: the machine's cycle constants of more than a
    second per use (``Machine.implausible_cycles``), a channel latency of more than a second per hop, else what adds
    up over the tasks."""
    machine = getattr(cost, "machine", None)
    clock = getattr(cost, "clock_hz", None) or DEFAULT_CLOCK_HZ
    what = (f"the run ends at cycle {makespan:,}, past 2**53 ({MAX_CYCLES:,}): a trace keeps times as JSON numbers, "
            "exact only up to 2**53, so its times could not be kept, saved or loaded.")
    causes = []
    big = machine.implausible_cycles() if isinstance(machine, Machine) else []
    if big:
        named = machine.name if isinstance(machine, Machine) else ""
        sets = ", ".join(f"{name}={value:,}" for name, value, _ in big)
        preset = ", ".join(f"{name}={default:,}" for name, _, default in big)
        causes.append(f"Machine '{named}' sets {sets}: more than a second of its clock per use, where the "
                      f"sourced values are microseconds at most (the ascend_910b preset's: {preset}). Use values near "
                      "the preset's")
    if channel_latency_cycles > clock and not any(name == "channel_latency_cycles" for name, _, _ in big):
        causes.append(f"channel_latency_cycles={channel_latency_cycles:,} is more than a second per hop between cores: "
                      "lower it (compile(channel_latency_cycles=...), %%ptort --latency)")
    hint = ". ".join(causes) + "." if causes else (
        "Times add up over a run's tasks: lower the cycles you pinned (task(cycles=...), @kernel(cycles=...), "
        "PinnedCosts(default_cycles=...)), the machine's cycle constants or channel_latency_cycles, or run fewer "
        "tasks.")
    return SimulationError(what, hint=hint)


def _cycle_text(cycle: list[tuple[str, str, str]]) -> str:
    """"'A' ends only after 'c2' closes, which needs 'B' to finish; 'B' ends only after ...": the cycle's links."""
    return "; ".join(f"'{p}' ends only after '{c}' closes, which needs '{q}' to finish" for p, c, q in cycle)


def endless_cycle(processes: list[Any], producers: Callable[[Any], Any]) -> list[tuple[str, str, str]] | None:
    """A cycle of processes that can never finish, as (process, channel it must drain, that channel's producer)
    links, or None. A process whose body surely consumes a channel (``_must_drain``) ends only after every producer
    of that channel has finished; a cycle of such waits never ends."""
    waits: dict[str, list[tuple[str, str]]] = {}
    for p in processes:
        waits[p.name] = [(c.name, q.name) for c in _must_drain(p.workload) for q in producers(c)]
    return _find_cycle([p.name for p in processes], waits)


def _find_cycle(names: list[str], links: dict[str, list[tuple[str, str]]]) -> list[tuple[str, str, str]] | None:
    """A cycle in the graph whose edges are ``links[a]`` = [(label, b), ...], as (a, label, b) links, or None. A
    depth-first search with its own stack (a chain of thousands of processes would pass Python's recursion limit),
    visiting in the order a recursive one would."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    for root in names:
        if root in state:
            continue
        state[root] = 1
        path: list[tuple[str, str, str]] = []  # the links from the root to the top of the stack
        stack = [(root, iter(links.get(root, ())))]
        while stack:
            name, todo = stack[-1]
            link = next(todo, None)
            if link is None:  # every link of `name` followed: done, back to the process before it
                state[name] = 2
                stack.pop()
                if path:
                    path.pop()
                continue
            label, to = link
            path.append((name, label, to))
            if state.get(to) == 1:  # back to a process on the path: the cycle is from there
                start = next(i for i, (a, _, _) in enumerate(path) if a == to)
                return path[start:]
            if to in state:
                path.pop()
            else:
                state[to] = 1
                stack.append((to, iter(links.get(to, ()))))
    return None


_SURELY_RUN = frozenset({NodeKind.SEQUENTIAL, NodeKind.COMBINE})  # nodes whose children all run


def _must_drain(node: Any) -> list[Any]:
    """The channels a body consumes on every run of it: CONSUME and JOIN nodes (a join ends only when every one of
    its channels closed) reached through sequences, and through a cond that surely takes one branch (a constant
    predicate) or whose two branches both drain the channel."""
    out: list[Any] = []
    stack = [node]
    while stack:
        n = stack.pop()
        kind = getattr(n, "kind", None)
        if kind is NodeKind.CONSUME:
            out.append(n.channel)
        elif kind is NodeKind.JOIN:
            out.extend(n.channels)
        elif kind in _SURELY_RUN:
            stack.extend(n.children())
        elif kind is NodeKind.COND:
            if isinstance(n.pred, bool):  # (cond(True, ...): the predicate is stored as a bool)
                stack.append(n.then if n.pred else n.otherwise)
            else:
                otherwise = {id(c) for c in _must_drain(n.otherwise)}
                out.extend(c for c in _must_drain(n.then) if id(c) in otherwise)
    return out


def _feeds_in_cycle(log: Log) -> bool:
    """Whether the processes seen in ``log`` feed each other in a cycle: each sends to a channel the next consumes."""
    senders: dict[Any, set[str]] = {}  # channel -> the processes seen sending to it
    takes: dict[str, set[Any]] = {}  # process -> the channels it was seen consuming
    for actor, cmd in log:
        op = cmd[0]
        if op in (SEND, SEND_PULL, ACQUIRE, PUSH):
            senders.setdefault(cmd[1], set()).add(actor.name)
        if op in (PULL, TASK_PULL, SEND_PULL, RELEASE):
            takes.setdefault(actor.name, set()).add(cmd[-1][1] if op in (TASK_PULL, SEND_PULL) else cmd[1])
    feeds: dict[str, list[tuple[str, str]]] = {}
    for taker, channels in takes.items():
        for channel in channels:
            for sender in senders.get(channel, ()):
                feeds.setdefault(sender, []).append((channel.name, taker))
    return _find_cycle(list(feeds), feeds) is not None


def diagnose(engine: Engine, kind: str) -> RunLimitError:
    """The error for a tripped limit: run a few hundred more steps recording what each actor does, to name the
    processes that loop and their channels."""
    limits = engine.limits
    assert limits is not None
    steps, still = limits.steps, limits.still_steps
    now = max((p.t for p in engine.procs), default=0)
    if limits.finite:  # a data-parallel run's cores loop on nothing: its tasks so far (each one's end is kept)
        return limits.error(kind, len(engine.finished), still, now, "", looping=False)
    clocks = {p.name: p.t for p in engine.procs}  # at the limit, before the steps run to describe the loop
    log: Log = []
    for p in engine.procs:
        if not p.done:
            p.gen = Recorder(p.gen, p, log)
    engine.resume(limits.start_diagnosis())
    looping = engine.endless is not None or _feeds_in_cycle(log)
    return limits.error(kind, steps, still, now, describe(log, clocks), looping)


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


__all__ = ["RunLimits", "LimitReached", "Recorder", "describe", "diagnose", "endless_cycle", "checked_settings",
           "held_bytes", "run_past_max_cycles", "CHECK_EVERY", "DIAGNOSE_STEPS", "NEVER_ENDS_STEPS", "SAMPLE",
           "BYTES_AROUND_TASK", "BYTES_PER_TASK", "BYTES_PER_SPAN", "BYTES_PER_STALL", "BYTES_PER_UNCOUNTED_SPAN",
           "BYTES_PER_OPEN_INTERVAL"]
