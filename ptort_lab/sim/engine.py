"""The discrete-event engine: processes with local clocks (CSPT), FIFOs with buffer slots, wake-ups, deadlocks.

Each process runs as an ``Actor`` around its step generator (``dsl.steps``), which yields the commands of
``dsl.commands``. Channel semantics are slots: SEND/ACQUIRE take a free slot (waiting for the consumer's credit), the
token becomes visible ``latency_cycles`` after the producer finished, and PULL(release) returns the previous token's
slot ``latency_cycles`` after the consumer finished with it. Each hop (producer, consumer) has its own latency (a
cross-core hop, or none for a queue between stages on one core): one per channel when its hops all cost the same,
else ``fifo.Hops``. For a linear pipeline this reproduces
S_k(i) = max(F_k(i-1), F_{k-1}(i) + L, F_{k+1}(i-D) + L) exactly.

Scheduling: when processes share resources whose price depends on global time (pipes of one core, HBM), the
engine always advances the actor with the smallest local time (a heap of ``(t, seq, actor)``, seq breaking ties
so runs are deterministic). When they do not (pinned costs), every time is fixed by timestamps alone, so the engine
runs each actor until it blocks (Kahn/DAM style) and skips the heap: same times, far fewer steps.

Hot path (``bench/pipeline_speed.py``): a pipeline stage takes one generator step per item (``SEND_PULL`` and
``TASK_PULL`` carry the pull of the next token) and one call to price its task; in time order, handing over to an
earlier actor is one heap operation. SEND, TASK and PULL are carried out inline in ``_drive``; the rarer commands
(PUSH, RECORD, WAIT, AFTER, NOT_BEFORE, RELEASE) are small methods in the ``_cold`` table.

Several producers on one channel (a merge), or several recorders of an event, need global time order: which
item a consumer takes depends on when each became visible (the rules are in ``fifo.py``); the engine switches to
time order when such a channel or event is added, and releases such items from its heap (``_release``).

Run limits: a run stops with RunLimitError after ``MAX_STEPS`` process steps (one command of a process body: a send,
a consume, a task, a record or a wait), or after ``MAX_STEPS_WITHOUT_PROGRESS`` steps in which no process's clock
moved and no process finished (processes feeding each other in a cycle at one cycle time), or once the run holds more
than ``MAX_RUN_BYTES`` of tasks, spans and stalls (an estimate), or after ``limits.NEVER_ENDS_STEPS`` steps of a
pipeline that can never finish (``limits.endless_cycle``) while its clock moves. Every pipeline run is held to
MAX_STEPS and MAX_RUN_BYTES; the other two need channels (a loop); a data-parallel run (``finite``), a finite list of
tasks (``steps.MAX_TASKS``), is held to MAX_RUN_BYTES only (its trace can still outgrow the host: the NPU model keeps
a span per instruction, kilobytes a task). They are checked every 65,536 steps (or every limit's worth, if smaller), so
the hot path only counts down (``limits.py``). Every setting is checked when a run starts (an int >= 1).
"""
from __future__ import annotations

import heapq
from typing import Any, Callable, Iterable

from ..dsl.commands import (
    ACQUIRE,
    AFTER,
    CLOSED,
    NOT_BEFORE,
    PULL,
    PUSH,
    RECORD,
    RELEASE,
    SEND,
    SEND_PULL,
    TASK,
    TASK_PULL,
    WAIT,
    Cmd,
)
from ..errors import PtortError, SimulationError
from .fifo import Actor, Channels, StepLine, deadlock_error, unconsumed_error
from .limits import LimitReached, RunLimits, checked_settings, diagnose
from .trace import Stall

_new = tuple.__new__  # builds a Stall without its Python-level __new__ (3x cheaper; long runs record millions)


class TaskWait(str):
    """What a process blocked on a task waits for, as its message says it (``task 12 to finish``), with the task id
    itself (the steady state keys it relative to the task keyed: an absolute id never repeats)."""

    tid: int  # (a str subtype takes no __slots__ but an empty one: the id lives in its __dict__)

    def __new__(cls, tid: int) -> TaskWait:
        text = super().__new__(cls, f"task {tid} to finish")
        text.tid = tid
        return text

    def __getnewargs__(self) -> tuple[int]:  # type: ignore[override]  # (copy and pickle rebuild it from the id)
        return (self.tid,)

# A 3-stage pipeline over a million tiles takes about 3 million steps (one per stage and tile) and 30 s; a run ten
# times that long is almost surely a loop. Raise these (ptort_lab.sim.engine.MAX_STEPS = ...) for longer runs.
MAX_STEPS = 10_000_000
# Processes that feed each other in a cycle at one cycle time never move the clock: half a million such steps take
# 1-5 s (more when each step computes a task's values). A real run at one cycle time this long is one whose tasks
# all cost 0 cycles.
MAX_STEPS_WITHOUT_PROGRESS = 500_000
# The host memory a run may hold in tasks, spans and stalls (estimated: limits.held_bytes), checked with the step
# limits: past it the run stops with RunLimitError instead of a MemoryError minutes later.
MAX_RUN_BYTES = 4 << 30

RunTask = Callable[[Any, Actor], None]


class Engine(Channels):
    """Run step generators in simulated time.

    ``run_task(task, actor)`` prices each task starting at ``actor.t``: it sets ``actor.t`` to when the process may
    go on (the task's end for a sequential process; earlier when a core may issue its next task while this one runs)
    and raises ``actor.last_end`` to the task's end. Anything the process passes on afterwards (tokens, credits,
    signals) is stamped no earlier than ``actor.last_end``. ``window`` (tasks) caps the tasks in flight at once.
    """

    def __init__(self, run_task: RunTask, latency_cycles: int = 0, window: int | None = None,
                 time_ordered: bool = True, max_steps: int | None = None,
                 max_steps_without_progress: int | None = None) -> None:
        super().__init__(latency_cycles, time_ordered or window is not None)
        self.run_task = run_task
        self.window = window
        self.procs: list[Actor] = []
        self.finished: dict[int, int] = {}  # task id -> its end (data-parallel runs: AFTER waits on them)
        self.task_waiters: dict[int, list[Actor]] = {}
        self.in_flight: list[int] = []  # ends of the tasks in flight (a heap), when a window caps them
        self._cold: dict[Cmd, Callable[[Actor, tuple[Any, ...]], bool]] = {
            PUSH: self._push_token, RECORD: self._record, WAIT: self._wait, AFTER: self._after,
            NOT_BEFORE: self._not_before, RELEASE: self._free_slot}
        # Run limits: module defaults read when the run starts; the step count is kept in chunks (limits.py). The
        # settings are checked here too: a run the max-plus path prices (maxplus.py) never reaches run().
        self.max_steps = max_steps
        self.max_steps_without_progress = max_steps_without_progress
        checked_settings(MAX_STEPS if max_steps is None else max_steps, MAX_STEPS_WITHOUT_PROGRESS
                         if max_steps_without_progress is None else max_steps_without_progress, MAX_RUN_BYTES)
        self.limits: RunLimits | None = None
        self.endless: list[tuple[str, str, str]] | None = None  # processes that can never finish (limits.py)
        self.held_bytes: Callable[[], int] | None = None  # the run's estimate of the bytes it holds (runner.py)
        self.finite = False  # a data-parallel run (runner.py): held to MAX_RUN_BYTES only
        self.dealer: Any = None  # a data-parallel run's dealer (runner._Dealer): its queues are run state too
        self.step_line: StepLine | None = None  # a blocked step's user line, for a deadlock's message (runner.py)
        self._budget_left = 1 << 62
        self._done_count = 0

    # -- set-up -------------------------------------------------------------------------------------------------
    def add_process(self, name: str, gen: Any, core: int, closes: Iterable[Any] = ()) -> Actor:
        """Start a process: ``gen`` yields its commands; ``closes`` are the channels it produces into."""
        p = Actor(name, gen, core, len(self.procs))
        self.procs.append(p)
        self.closes[name] = [self.fifos[c] for c in closes]
        self._push(p)
        return p

    def _push_at(self, p: Actor, t: int) -> None:
        if self.time_ordered:
            self._seq += 1
            heapq.heappush(self._heap, (t if t > p.t else p.t, self._seq, p))
        else:
            self._ready.append(p)

    # -- main loop ----------------------------------------------------------------------------------------------
    def run(self) -> int:
        """Run every process to its end and return the makespan; DeadlockError when some never can, RunLimitError
        past the run limits, PipelineError when every one ended but a channel still holds tokens (no consume of it
        ran: the work they stand for would be dropped silently)."""
        self.limits = RunLimits(MAX_STEPS if self.max_steps is None else self.max_steps,
                                MAX_STEPS_WITHOUT_PROGRESS if self.max_steps_without_progress is None
                                else self.max_steps_without_progress, MAX_RUN_BYTES, self.endless, self.held_bytes,
                                self.finite)
        self._budget_left = self.limits.start(bool(self.fifos))
        try:
            self._drive()
        except LimitReached as stop:
            raise diagnose(self, stop.kind) from None
        blocked = [p for p in self.procs if not p.done]
        end = max((p.t for p in self.procs), default=0)
        if blocked:  # (at the last clock a process reached: the blocked ones may have stopped long before)
            raise deadlock_error(blocked, self.fifos, self.wakeups, end, self.step_line)
        leftover = next((f for f in self.fifos.values() if f.tokens or f.pending), None)
        if leftover is not None:
            raise unconsumed_error(leftover, end)
        return end

    @property
    def step_count(self) -> int:
        """Process steps carried out so far (commands taken from the process bodies)."""
        if self.limits is None:
            return 0
        return self.limits.steps + self.limits.check_every - self._budget_left

    def _drive(self) -> None:
        """Until no actor can move: take the next one and carry out its commands until it blocks or ends.

        The documented hot loop (see the module docstring): SEND, TASK and PULL inline, the rest through
        ``_cold``. In time order the next actor is the earliest one, and an actor that gets ahead of another hands
        over to it at once (one heap operation); otherwise actors run in the order they became ready. Heap entries
        holding an Inbox release that inbox's items at their time instead.
        """
        heap, ready = self._heap, self._ready
        pop, switch = heapq.heappop, heapq.heappushpop
        fifos, cold, unknown = self.fifos, self._cold, self._unknown
        stalls = self.stalls
        window = self.window
        run_task = self.run_task
        budget = self._budget_left
        while heap or ready:
            if heap:
                entry = pop(heap)
                p = entry[2]
                if p.__class__ is not Actor:
                    self._release(p, entry[0])
                    continue
            else:
                p = ready.popleft()
            send = p.gen.send
            while True:
                cmd = p.retry
                if cmd is None:
                    try:
                        cmd = send(p.reply)
                    except StopIteration:
                        self._finish(p)
                        break
                    p.reply = None
                    budget -= 1
                    if budget <= 0:  # every check_every steps: the run limits (may raise LimitReached)
                        budget = self._checkpoint(p, cmd)
                else:
                    p.retry = None
                op = cmd[0]  # (commands are Cmd members, compared by identity: see dsl.commands)
                if op is SEND or op is SEND_PULL or op is ACQUIRE:  # take a free slot (granted while waiting, or now)
                    f = fifos[cmd[1]]
                    if p.granted:
                        p.granted = False
                    elif f.fresh:
                        f.fresh -= 1
                        f.deltas.append(p.t)
                    elif f.free:
                        ts = f.free.popleft()
                        if f.hops is not None:  # (the latency of this hop, when a channel's hops differ)
                            ts += f.hops.slot_taken(p.order)
                        if ts > p.t:  # (_stall, inline: a stalled pipeline passes here once per item)
                            stalls.append(_new(Stall, (p.name, f.backpressure, p.t, ts)))
                            p.stall_cycles += ts - p.t
                            p.t = ts
                        f.deltas.append(p.t)
                    else:
                        p.blocked, p.wait_since, p.retry = f.send_wait, p.t, cmd
                        f.producers.append(p)
                        break
                    if op is ACQUIRE:
                        p.grants.append(p.t)
                    elif window is not None and not self._window_ok(p):
                        p.granted, p.retry = True, cmd
                    else:  # produce into it, then pass the token on
                        granted = p.t
                        run_task(cmd[2], p)
                        hops = f.hops
                        ts = (p.t if p.t > p.last_end else p.last_end) + \
                            (f.latency_cycles if hops is None else hops.out[p.order])
                        if f.pending is not None:
                            self._pend(f, cmd[3], ts, granted, p)
                        elif f.consumers:
                            self._hand_token(f, cmd[3], ts, p.order)
                        else:
                            f.tokens.append((cmd[3], ts))
                            if hops is not None:
                                hops.queued(p.order)
                        if op is SEND_PULL:  # then its pull, now, or in its turn when another actor is earlier
                            if heap and p.t > heap[0][0]:
                                p.retry = cmd[4]
                            else:
                                cmd, op = cmd[4], PULL
                elif op is TASK or op is TASK_PULL:
                    if window is not None and not self._window_ok(p):
                        p.retry = cmd
                    else:
                        run_task(cmd[1], p)
                        if op is TASK_PULL:  # then its pull (as for SEND_PULL)
                            if heap and p.t > heap[0][0]:
                                p.retry = cmd[2]
                            else:
                                cmd, op = cmd[2], PULL
                elif op is not PULL and cold.get(op, unknown)(p, cmd):
                    break  # a cold command blocked
                if op is PULL:  # (also the second half of SEND_PULL / TASK_PULL)
                    f = fifos[cmd[1]]
                    hops = f.hops
                    if cmd[2]:  # free the slot of the previous token first (Channels._free_slot, inline: hot path)
                        ts = (p.t if p.t > p.last_end else p.last_end) + \
                            (f.latency_cycles if hops is None else hops.back[p.order])
                        if f.producers:
                            self._credit(f, ts, p.order)
                        else:
                            f.deltas.append(~ts)
                            f.free.append(ts)
                            if hops is not None:
                                hops.freed(p.order)
                    if f.tokens:
                        token, ts = f.tokens.popleft()
                        if hops is not None:
                            ts += hops.taken(p.order)
                        if ts > p.t:  # (_stall, inline: a starved stage passes here once per item)
                            stalls.append(_new(Stall, (p.name, f.starved, p.t, ts)))
                            p.stall_cycles += ts - p.t
                            p.t = ts
                        p.reply = token
                    elif f.producers_left == 0 and (f.pending is None or len(f.pending) <= len(f.consumers)):
                        # (items still in flight all go to consumers already waiting.) The consume ends when the
                        # producers' bodies have: in run-until-block order a producer may have closed the channel
                        # at a later time than this consumer's clock.
                        if f.closed_at > p.t:
                            stalls.append(_new(Stall, (p.name, f.starved, p.t, f.closed_at)))
                            p.stall_cycles += f.closed_at - p.t
                            p.t = f.closed_at
                        p.reply = CLOSED
                    else:
                        p.blocked, p.wait_since = f.consume_wait, p.t
                        f.consumers.append(p)
                        break
                if heap and p.t > heap[0][0]:  # time-ordered and another actor is earlier: run that one now
                    self._seq += 1
                    entry = switch(heap, (p.t, self._seq, p))
                    while entry[2].__class__ is not Actor:
                        self._release(entry[2], entry[0])
                        entry = pop(heap)
                    p = entry[2]
                    send = p.gen.send
        self._budget_left = budget

    # -- the cold commands: each returns True when the actor blocked ---------------------------------------------
    def _push_token(self, p: Actor, cmd: tuple[Any, ...]) -> bool:
        """(PUSH, channel, token): pass on the token of the slot the matching ACQUIRE took."""
        self._deliver(self.fifos[cmd[1]], p, cmd[2], p.grants.pop() if p.grants else p.t)
        return False

    def _record(self, p: Actor, cmd: tuple[Any, ...]) -> bool:
        """(RECORD, event): a signal, visible after the event's latency."""
        w = self._wakeup(cmd[1])
        w.recorded += 1
        self._deliver(w, p, None, p.t)
        return False

    def _wait(self, p: Actor, cmd: tuple[Any, ...]) -> bool:
        """(WAIT, event): take a signal, waiting for one if none is there."""
        w = self._wakeup(cmd[1])
        if not w.tokens:
            p.blocked, p.wait_since = w.starved, p.t
            w.consumers.append(p)
            return True
        ts = w.tokens.popleft()[1]
        self._stall(p, w.starved, ts if w.hops is None else ts + w.hops.taken(p.order))
        return False

    def _after(self, p: Actor, cmd: tuple[Any, ...]) -> bool:
        """(AFTER, task_ids[, reason]): go on when those tasks have finished."""
        for tid in cmd[1]:
            end = self.finished.get(tid)
            if end is None:
                p.blocked, p.wait_since = TaskWait(tid), p.t
                p.retry = cmd
                self.task_waiters.setdefault(tid, []).append(p)
                return True
            if end > p.t:  # (the reason is built only for a real stall: runs check millions of dependencies)
                self._stall(p, cmd[2] if len(cmd) > 2 else f"waits for task {tid}", end)
        return False

    def _not_before(self, p: Actor, cmd: tuple[Any, ...]) -> bool:
        """(NOT_BEFORE, cycle, reason): go on no earlier than that cycle."""
        self._stall(p, cmd[2], cmd[1])
        return False

    def _unknown(self, p: Actor, cmd: tuple[Any, ...]) -> bool:
        """A command given as a plain int (``(1, ...)`` for SEND): carry it out again as its Cmd member."""
        try:
            op = Cmd(cmd[0])
        except (ValueError, TypeError):
            op = None
        if op is None or op is cmd[0]:  # not a command, or a member this engine has no method for (never loop)
            what = "which is not a command" if op is None else "which the engine has no rule for"
            raise SimulationError(f"process '{p.name}' gave the engine {cmd[0]!r}, {what}.",
                                  hint="A process body yields (Cmd.X, ...) tuples of ptort_lab.dsl.commands; build "
                                       "bodies with the DSL (send, consume, task, ...).", locate=False) from None
        p.retry = (op, *cmd[1:])
        return False

    # -- shared bookkeeping ---------------------------------------------------------------------------------------
    def _stall(self, p: Actor, reason: str, until: int) -> None:
        """``p`` waits from its clock until ``until`` for ``reason`` (nothing when ``until`` is not later)."""
        if until > p.t:
            self.stalls.append(_new(Stall, (p.name, reason, p.t, until)))
            p.stall_cycles += until - p.t
            p.t = until

    def _window_ok(self, p: Actor) -> bool:
        """Hold a task until fewer than `window` are in flight; True when it may start now."""
        assert self.window is not None
        flight = self.in_flight
        while flight and flight[0] <= p.t:
            heapq.heappop(flight)
        if len(flight) < self.window:
            return True
        self._stall(p, "task window full", flight[0])
        return False

    def task_started(self, task_id: int, end: int) -> None:
        """Called by run_task: record the end time and wake actors waiting on this task."""
        self.finished[task_id] = end
        if self.window is not None:
            heapq.heappush(self.in_flight, end)
        for w in self.task_waiters.pop(task_id, ()):
            w.blocked = ""
            self._push_at(w, end)

    def _finish(self, p: Actor) -> None:
        p.done = True
        self._done_count += 1
        if p.last_end > p.t:
            p.t = p.last_end
        self._close(p)

    # -- run limits ---------------------------------------------------------------------------------------------
    def _checkpoint(self, p: Actor, cmd: tuple[Any, ...]) -> int:
        """Every ``check_every`` steps (``cmd`` is ``p``'s last, not carried out yet): check the limits and return
        the next budget; raise LimitReached (with ``p`` queued to carry out ``cmd``) when one trips."""
        assert self.limits is not None
        self._budget_left = self.limits.check_every
        kind = self.limits.trip((sum(q.t for q in self.procs), self._done_count))
        if not kind:
            return self.limits.check_every
        p.retry = cmd
        self._push(p)
        raise LimitReached(kind)

    def resume(self, budget: int) -> None:
        """Carry on for at most ``budget`` more steps (after a limit tripped, to see what the processes do); a limit
        or an error on the way ends it quietly: the run is past its limit either way."""
        self._budget_left = budget
        try:
            self._drive()
        except (LimitReached, PtortError):
            pass


__all__ = ["Engine", "MAX_STEPS", "MAX_STEPS_WITHOUT_PROGRESS", "MAX_RUN_BYTES"]
