"""The discrete-event engine: processes with local clocks (CSPT), FIFOs with buffer slots, wake-ups, deadlocks.

Each process is a step generator (``dsl.steps``). Channel semantics are slots: SEND/ACQUIRE take a free slot
(waiting for the consumer's credit), the token becomes visible ``latency`` cycles after the producer finished, and
PULL(release) returns the previous token's slot ``latency`` cycles after the consumer finished with it. Each
channel has its own latency (a cross-core hop, or none for a queue between stages on one core). For a
linear pipeline this reproduces S_k(i) = max(F_k(i-1), F_{k-1}(i) + L, F_{k+1}(i-D) + L) exactly.

Scheduling: when processes share resources whose price depends on global time (pipes of one core, HBM), the
engine always advances the process with the smallest local time (a heap of ``(t, seq, proc)``, seq breaking ties
so runs are deterministic). When they do not (pinned costs), every time is fixed by timestamps alone, so the engine
runs each process until it blocks (Kahn/DAM style) and skips the heap: same times, far fewer steps.

Hot path (``bench/pipeline_speed.py``): a pipeline stage takes one generator step per item (``SEND_PULL`` and
``TASK_PULL`` carry the pull of the next token) and one call to price its task; in time order, handing over to an
earlier process is one heap operation.

Several producers on one channel (a merge): the consumer takes items in the order they become available, not in
the order the engine happened to run the sends. An item is available at its visible time (the producer's finish +
the channel's latency); items visible at the same cycle go in order of slot-grant time, then of the producers'
order in ``connect()``, then of send order. A consumer that is waiting takes the first item to become visible; one
that comes later takes the earliest visible item queued. Tokens of such a channel wait in a heap until their visible
time, when a release entry in the time-ordered heap (``_release``) moves them to the consumer in that order: every
channel with several producers or consumers, and every event with several recorders or waiters, needs global time
order, and the engine switches to it when such a channel or event is added. With one producer a channel's tokens are
already in that order (a process's clock never goes back) and are handed over directly. Events follow the same
rules: a signal is visible ``latency`` cycles after its record, the event's latency being that of a channel between
the same processes. Processes ready at one and the same cycle run in the order they became ready (the heap's sequence
number): deterministic, but when two producers ask for the last slot of a channel at the very same cycle, the one
the engine reached first gets it. A token visible the very cycle it was sent (a 0-cycle task and 0 latency) may queue
behind tokens already released at that cycle.

Run limits: a run stops with RunLimitError after ``MAX_STEPS`` process steps (one command of a process body: a send,
a consume, a task, a record or a wait), or after ``MAX_STEPS_WITHOUT_PROGRESS`` steps in which no process's clock
moved and no process finished (processes feeding each other in a cycle at one cycle time). Only runs with channels
are limited: without channels every process body is a finite list of tasks. Both are checked every 65,536 steps
(or every limit's worth, if smaller), so the hot path only counts down.
"""
from __future__ import annotations

import heapq
import itertools
import operator
from collections import deque
from typing import Any, Callable, Iterable

from ..dsl.steps import ACQUIRE, CLOSED, PULL, PUSH, RECORD, SEND, SEND_PULL, TASK, TASK_PULL, WAIT
from ..errors import DeadlockError, PtortError, PtortValueError, RunLimitError
from .trace import Sample, Stall

_first = operator.itemgetter(0)
_new = tuple.__new__  # builds a Stall without its Python-level __new__ (3x cheaper; long runs record millions)
AFTER = 100  # (AFTER, task_ids[, reason]): wait until those tasks finished (data-parallel dependencies)
WINDOW = 101  # (WINDOW,): wait until fewer than `window` tasks are in flight
NOT_BEFORE = 102  # (NOT_BEFORE, cycle, reason): do not go on before that cycle (TimingPolicy.rate_limit)

# A 3-stage pipeline over a million tiles takes about 3 million steps (one per stage and tile) and 30 s; a run ten
# times that long is almost surely a loop. Raise these (ptort_lab.sim.engine.MAX_STEPS = ...) for longer runs.
MAX_STEPS = 10_000_000
# Processes that feed each other in a cycle at one cycle time never move the clock: half a million such steps take
# 1-5 s (more when each step computes a task's values). A real run at one cycle time this long is one whose tasks
# all cost 0 cycles.
MAX_STEPS_WITHOUT_PROGRESS = 500_000
_CHECK_EVERY = 65_536  # steps between two limit checks (each sums every process's clock)
_DIAGNOSE_STEPS = 512  # steps run after a limit trips, recording what each process does, for the message


class Proc:
    """A running process: its step generator, local time, core, and what it is blocked on."""

    __slots__ = ("name", "gen", "t", "core", "reply", "retry", "blocked", "wait_since", "done", "stall_cycles",
                 "last_end", "granted", "order", "grants")

    def __init__(self, name: str, gen: Any, core: int, order: int = 0) -> None:
        self.name = name
        self.gen = gen
        self.core = core
        self.order = order  # its place in connect(): breaks ties between items visible at the same cycle
        self.t = 0
        self.reply: Any = None
        self.retry: tuple[Any, ...] | None = None
        self.blocked = ""
        self.wait_since = 0
        self.done = False
        self.stall_cycles = 0
        self.last_end = 0  # when its latest task finishes (a process may issue ahead of its tasks' ends)
        self.granted = False  # a slot was handed to it while it waited in SEND/ACQUIRE
        self.grants: list[int] = []  # when each ACQUIRE not yet matched by its PUSH took its slot


class Inbox:
    """Items for the first waiting process (tokens of a channel, signals of an event).

    ``tokens`` holds visible items ``(item, visible_time)`` in the order they are taken. With several senders,
    items still in flight wait in the heap ``pending`` as ``(visible_time, grant_time, sender_order, seq, item)``
    until the engine releases them at their visible time; with one sender ``pending`` is None.
    """

    __slots__ = ("name", "latency", "tokens", "pending", "consumers", "starved", "sent")

    def __init__(self, name: str, senders: int, latency_cycles: int, starved: str) -> None:
        self.name = name
        self.latency = latency_cycles
        self.tokens: deque[tuple[Any, int]] = deque()
        self.pending: list[tuple[int, int, int, int, Any]] | None = [] if senders > 1 else None
        self.consumers: deque[Proc] = deque()
        self.starved = starved  # the stall reason of a process waiting for an item
        self.sent = 0  # items put in `pending` so far (the last tie-break: send order)


class Fifo(Inbox):
    """The run-time side of one Channel: free slots (with the time each became free) and tokens in flight."""

    __slots__ = ("depth", "fresh", "free", "producers_left", "producers", "deltas", "backpressure", "send_wait",
                 "consume_wait")

    def __init__(self, name: str, depth: int, producers: int, latency_cycles: int = 0) -> None:
        super().__init__(name, producers, latency_cycles, f"starved on '{name}'")
        self.depth = depth
        # Slots never used yet are only counted (free since t=0, so the earliest to take): a depth of 10**9 costs
        # nothing. Freed slots queue with the time they became free.
        self.fresh = depth
        self.free: deque[int] = deque()
        self.producers_left = producers
        self.producers: deque[Proc] = deque()
        # Occupancy changes in causal order, one int each (no tuple per event): t = a slot taken at t, ~t = freed at t.
        self.deltas: list[int] = []
        self.backpressure = f"backpressure from '{name}'"  # stall and wait reasons, built once
        self.send_wait = f"send to '{name}' (no free slot)"
        self.consume_wait = f"consume from '{name}'"

    @property
    def in_use(self) -> int:
        """Slots taken and not yet freed (every slot is either free or in use)."""
        return self.depth - self.fresh - len(self.free)


class Wakeup(Inbox):
    """The run-time side of one Event: signals (items without a value) and the processes waiting for one."""

    __slots__ = ()

    def __init__(self, name: str, recorders: int = 1, latency_cycles: int = 0) -> None:
        super().__init__(name, recorders, latency_cycles, f"synchronize on '{name}'")


class _LimitReached(Exception):
    """Raised out of the main loop when a run limit trips (``kind`` is "steps" or "progress")."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class _Recorder:
    """Wraps a process's step generator after a run limit tripped, logging the commands it yields."""

    __slots__ = ("gen", "proc", "log")

    def __init__(self, gen: Any, proc: Proc, log: list[tuple[Proc, tuple[Any, ...]]]) -> None:
        self.gen, self.proc, self.log = gen, proc, log

    def send(self, value: Any) -> tuple[Any, ...]:
        cmd = self.gen.send(value)
        self.log.append((self.proc, cmd))
        return cmd  # type: ignore[no-any-return]


class Engine:
    """Run step generators in simulated time.

    ``run_task(task, proc)`` prices each task starting at ``proc.t``: it sets ``proc.t`` to when the process may go
    on (the task's end for a sequential process; earlier when a core may issue its next task while this one runs)
    and raises ``proc.last_end`` to the task's end. Anything the process passes on afterwards (tokens, credits,
    signals) is stamped no earlier than ``proc.last_end``.
    """

    def __init__(self, run_task: Callable[[Any, Proc], None], latency_cycles: int = 0,
                 window: int | None = None, time_ordered: bool = True, max_steps: int | None = None,
                 max_steps_without_progress: int | None = None) -> None:
        self.run_task = run_task
        self.time_ordered = time_ordered or window is not None
        self._ready: deque[Proc] = deque()
        self.latency = latency_cycles
        self.window = window
        self.procs: list[Proc] = []
        self.fifos: dict[Any, Fifo] = {}  # keyed by the Channel itself (identity hash: one lookup, no id() call)
        self.wakeups: dict[int, Wakeup] = {}
        self.closes: dict[str, list[Fifo]] = {}
        self.finished: dict[int, int] = {}
        self.task_waiters: dict[int, list[Proc]] = {}
        self.in_flight: list[int] = []
        self.stalls: list[Stall] = []
        # Entries (t, seq, Proc) to run a process, or (t, seq, Inbox) to release the inbox's items visible by t.
        self._heap: list[tuple[int, int, Any]] = []
        self._seq = 0
        # _push(p): p may run again (at p.t); bound once, as it runs once or twice per item.
        self._push: Callable[[Proc], None] = self._push_heap if self.time_ordered else self._ready.append
        # Run limits (module defaults read when the run starts) and the step count, kept in chunks of _check_every.
        self.max_steps = max_steps
        self.max_steps_without_progress = max_steps_without_progress
        self.steps = 0
        self._check_every = 1 << 62
        self._budget_left = self._check_every
        self._still_steps = 0
        self._progress: tuple[int, int] = (-1, -1)
        self._done_count = 0
        self._diagnosing = False

    # -- set-up -------------------------------------------------------------------------------------------------
    def add_fifo(self, channel: Any, producers: int, latency_cycles: int | None = None, consumers: int = 1) -> Fifo:
        """Register a channel; ``latency_cycles`` defaults to the engine's (cross-core) channel latency."""
        f = Fifo(channel.name, channel.depth, producers, self.latency if latency_cycles is None else latency_cycles)
        self.fifos[channel] = f
        if producers > 1 or consumers > 1:
            self._require_time_order()
        return f

    def add_event(self, event: Any, recorders: int, waiters: int, latency_cycles: int) -> Wakeup:
        """Register an Event: its signals become visible ``latency_cycles`` after each record."""
        w = self.wakeups[id(event)] = Wakeup(event.name, recorders, latency_cycles)
        if recorders > 1 or waiters > 1:
            self._require_time_order()
        return w

    def add_process(self, name: str, gen: Any, core: int, closes: Iterable[Any] = ()) -> Proc:
        p = Proc(name, gen, core, len(self.procs))
        self.procs.append(p)
        self.closes[name] = [self.fifos[c] for c in closes]
        self._push(p)
        return p

    def _require_time_order(self) -> None:
        """Several senders or takers on one channel or event: who gets what depends on when, so run in time order."""
        if self.time_ordered:
            return
        self.time_ordered = True
        self._push = self._push_heap
        while self._ready:
            self._push_heap(self._ready.popleft())

    def _push_heap(self, p: Proc) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (p.t, self._seq, p))

    def _wake(self, p: Proc, t: int, reason: str) -> None:
        if t > p.wait_since:
            self.stalls.append(_new(Stall, (p.name, reason, p.wait_since, t)))
            p.stall_cycles += t - p.wait_since
        p.t = t if t > p.t else p.t
        p.blocked = ""
        self._push(p)

    # -- main loop ----------------------------------------------------------------------------------------------
    def run(self) -> int:
        """Run every process to its end and return the makespan; DeadlockError when some never can, RunLimitError
        past the run limits."""
        self._start_limits()
        try:
            self._drive()
        except _LimitReached as stop:
            raise self._run_limit(stop.kind) from None
        blocked = [p for p in self.procs if not p.done]
        if blocked:
            raise self._deadlock(blocked)
        return max((p.t for p in self.procs), default=0)

    @property
    def step_count(self) -> int:
        """Process steps carried out so far (commands taken from the process bodies)."""
        return self.steps + self._check_every - self._budget_left

    def _drive(self) -> None:
        """Until no process can move: take the next one and carry out its commands until it blocks or ends.

        In time order the next process is the earliest one, and a process that gets ahead of another hands over to it
        at once (one heap operation); otherwise processes run in the order they became ready. Heap entries holding an
        Inbox release that inbox's items at their time instead.
        """
        heap, ready = self._heap, self._ready
        pop, switch = heapq.heappop, heapq.heappushpop
        fifos = self.fifos
        stalls = self.stalls
        window = self.window
        run_task = self.run_task
        budget = self._budget_left
        while heap or ready:
            if heap:
                entry = pop(heap)
                p = entry[2]
                if p.__class__ is not Proc:
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
                    if not budget:  # every _check_every steps: the run limits (may raise _LimitReached)
                        budget = self._checkpoint(p, cmd)
                else:
                    p.retry = None
                op = cmd[0]
                if op == SEND or op == SEND_PULL or op == ACQUIRE:  # take a free slot (granted while waiting, or now)
                    f = fifos[cmd[1]]
                    if p.granted:
                        p.granted = False
                    elif f.fresh:
                        f.fresh -= 1
                        f.deltas.append(p.t)
                    elif f.free:
                        ts = f.free.popleft()
                        if ts > p.t:
                            stalls.append(_new(Stall, (p.name, f.backpressure, p.t, ts)))
                            p.stall_cycles += ts - p.t
                            p.t = ts
                        f.deltas.append(p.t)
                    else:
                        p.blocked, p.wait_since, p.retry = f.send_wait, p.t, cmd
                        f.producers.append(p)
                        break
                    if op == ACQUIRE:
                        p.grants.append(p.t)
                    elif window is not None and not self._window_ok(p):
                        p.granted, p.retry = True, cmd
                    else:  # produce into it, then pass the token on
                        granted = p.t
                        run_task(cmd[2], p)
                        ts = (p.t if p.t > p.last_end else p.last_end) + f.latency
                        if f.pending is not None:
                            self._pend(f, cmd[3], ts, granted, p)
                        elif f.consumers:
                            self._hand_token(f, cmd[3], ts)
                        else:
                            f.tokens.append((cmd[3], ts))
                        if op == SEND_PULL:
                            if heap and p.t > heap[0][0]:
                                p.retry = cmd[4]  # the pull waits for its turn in time order (see the end of the loop)
                            else:
                                cmd = cmd[4]
                                op = PULL
                elif op == TASK or op == TASK_PULL:
                    if window is not None and not self._window_ok(p):
                        p.retry = cmd
                    else:
                        run_task(cmd[1], p)
                        if op == TASK_PULL:
                            if heap and p.t > heap[0][0]:
                                p.retry = cmd[2]
                            else:
                                cmd = cmd[2]
                                op = PULL
                elif op != PULL and self._other(p, cmd):
                    break
                if op == PULL:  # (also the second half of SEND_PULL / TASK_PULL)
                    f = fifos[cmd[1]]
                    if cmd[2]:  # free the slot of the previous token first
                        ts = (p.t if p.t > p.last_end else p.last_end) + f.latency
                        if f.producers:
                            self._credit(f, ts)
                        else:
                            f.deltas.append(~ts)
                            f.free.append(ts)
                    if f.tokens:
                        token, ts = f.tokens.popleft()
                        if ts > p.t:
                            stalls.append(_new(Stall, (p.name, f.starved, p.t, ts)))
                            p.stall_cycles += ts - p.t
                            p.t = ts
                        p.reply = token
                    elif f.producers_left == 0 and (f.pending is None or len(f.pending) <= len(f.consumers)):
                        p.reply = CLOSED  # (items still in flight all go to consumers already waiting)
                    else:
                        p.blocked, p.wait_since = f.consume_wait, p.t
                        f.consumers.append(p)
                        break
                if heap and p.t > heap[0][0]:  # time-ordered and another process is earlier: run that one now
                    self._seq += 1
                    entry = switch(heap, (p.t, self._seq, p))
                    while entry[2].__class__ is not Proc:
                        self._release(entry[2], entry[0])
                        entry = pop(heap)
                    p = entry[2]
                    send = p.gen.send
        self._budget_left = budget

    def _other(self, p: Proc, cmd: tuple[Any, ...]) -> bool:
        """PUSH, AFTER, NOT_BEFORE, RECORD and WAIT (the less frequent commands); True when ``p`` blocked."""
        op = cmd[0]
        if op == PUSH:
            f = self.fifos[cmd[1]]
            ts = (p.t if p.t > p.last_end else p.last_end) + f.latency
            granted = p.grants.pop() if p.grants else p.t
            if f.pending is not None:
                self._pend(f, cmd[2], ts, granted, p)
            elif f.consumers:
                self._hand_token(f, cmd[2], ts)
            else:
                f.tokens.append((cmd[2], ts))
        elif op == AFTER:
            for tid in cmd[1]:
                end = self.finished.get(tid)
                if end is None:
                    p.blocked, p.wait_since = f"task {tid} to finish", p.t
                    p.retry = cmd
                    self.task_waiters.setdefault(tid, []).append(p)
                    return True
                if end > p.t:
                    reason = cmd[2] if len(cmd) > 2 else f"waits for task {tid}"
                    self.stalls.append(_new(Stall, (p.name, reason, p.t, end)))
                    p.stall_cycles += end - p.t
                    p.t = end
        elif op == NOT_BEFORE:
            if cmd[1] > p.t:
                self.stalls.append(_new(Stall, (p.name, cmd[2], p.t, cmd[1])))
                p.stall_cycles += cmd[1] - p.t
                p.t = cmd[1]
        elif op == RECORD:
            w = self._wakeup(cmd[1])
            ts = (p.t if p.t > p.last_end else p.last_end) + w.latency
            if w.pending is not None:
                self._pend(w, None, ts, p.t, p)
            elif w.consumers:
                self._hand_token(w, None, ts)
            else:
                w.tokens.append((None, ts))
        elif op == WAIT:
            w = self._wakeup(cmd[1])
            if w.tokens:
                ts = w.tokens.popleft()[1]
                if ts > p.t:
                    self.stalls.append(_new(Stall, (p.name, w.starved, p.t, ts)))
                    p.stall_cycles += ts - p.t
                    p.t = ts
            else:
                p.blocked, p.wait_since = w.starved, p.t
                w.consumers.append(p)
                return True
        return False

    def _hand_token(self, box: Inbox, token: Any, ts: int) -> None:
        """An item becomes visible at ``ts`` while a process waits for one: hand it over and wake that process."""
        c = box.consumers.popleft()
        c.reply = token
        self._wake(c, ts, box.starved)

    def _pend(self, box: Inbox, token: Any, ts: int, granted: int, p: Proc) -> None:
        """An item of an inbox with several senders: it waits until ``ts``, when no earlier one can still come."""
        box.sent += 1
        heapq.heappush(box.pending, (ts, granted, p.order, box.sent, token))  # type: ignore[arg-type]
        self._seq += 1
        heapq.heappush(self._heap, (ts, self._seq, box))

    def _release(self, box: Inbox, now: int) -> None:
        """At ``now`` every process has reached ``now``, so no item visible before it can still be sent: pass the
        items visible by ``now`` on in (visible time, grant time, sender order, send order)."""
        pending = box.pending
        while pending and pending[0][0] <= now:
            ts, _, _, _, token = heapq.heappop(pending)
            if box.consumers:
                self._hand_token(box, token, ts)
            else:
                box.tokens.append((token, ts))

    def _credit(self, f: Fifo, ts: int) -> None:
        """A slot becomes free at ``ts`` while a producer waits for one: grant it and wake the producer."""
        f.deltas.append(~ts)
        q = f.producers.popleft()
        q.granted = True
        self._wake(q, ts, f.backpressure)
        f.deltas.append(q.t)

    def _window_ok(self, p: Proc) -> bool:
        """Hold a task until fewer than `window` are in flight; True when it may start now."""
        flight = self.in_flight
        while flight and flight[0] <= p.t:
            heapq.heappop(flight)
        if len(flight) < self.window:  # type: ignore[operator]
            return True
        earliest = flight[0]
        self.stalls.append(Stall(p.name, "task window full", p.t, earliest))
        p.stall_cycles += earliest - p.t
        p.t = earliest
        return False

    def task_started(self, task_id: int, end: int) -> None:
        """Called by run_task: record the end time and wake processes waiting on this task."""
        self.finished[task_id] = end
        if self.window is not None:
            heapq.heappush(self.in_flight, end)
        for w in self.task_waiters.pop(task_id, ()):
            w.blocked = ""
            self._push_at(w, end)

    def _push_at(self, p: Proc, t: int) -> None:
        if self.time_ordered:
            self._seq += 1
            heapq.heappush(self._heap, (t if t > p.t else p.t, self._seq, p))
        else:
            self._ready.append(p)

    def _wakeup(self, event: Any) -> Wakeup:
        w = self.wakeups.get(id(event))
        if w is None:  # an event the runner did not register: one recorder, the engine's latency
            w = self.wakeups[id(event)] = Wakeup(event.name, 1, self.latency)
        return w

    def _finish(self, p: Proc) -> None:
        p.done = True
        self._done_count += 1
        if p.last_end > p.t:
            p.t = p.last_end
        for f in self.closes.get(p.name, ()):
            f.producers_left -= 1
            if f.producers_left == 0:
                # Items still in flight go to the consumers waiting longest; the others learn now that it closed.
                keep = len(f.pending) if f.pending else 0
                closing = [f.consumers.pop() for _ in range(len(f.consumers) - keep)]
                for c in reversed(closing):
                    c.reply = CLOSED
                    self._wake(c, p.t, f.starved)

    # -- run limits ---------------------------------------------------------------------------------------------
    def _start_limits(self) -> None:
        """Read the limits (module defaults unless given) and check them; only runs with channels can loop."""
        if self.max_steps is None:
            self.max_steps = MAX_STEPS
        if self.max_steps_without_progress is None:
            self.max_steps_without_progress = MAX_STEPS_WITHOUT_PROGRESS
        for name, value in (("MAX_STEPS", self.max_steps),
                            ("MAX_STEPS_WITHOUT_PROGRESS", self.max_steps_without_progress)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise PtortValueError(f"the run limit ptort_lab.sim.engine.{name} must be an int >= 1, got {value!r}.",
                                      hint=f"Set it to a step count, e.g. ptort_lab.sim.engine.{name} = 100_000_000.")
        if self.fifos:
            self._check_every = min(_CHECK_EVERY, self.max_steps, self.max_steps_without_progress)
        self._budget_left = self._check_every

    def _checkpoint(self, p: Proc, cmd: tuple[Any, ...]) -> int:
        """Every ``_check_every`` steps (``cmd`` is ``p``'s last, not carried out yet): count them, check the limits,
        and return the next budget; raise _LimitReached (with ``p`` queued to carry out ``cmd``) when one trips."""
        self.steps += self._check_every
        self._budget_left = self._check_every
        kind = ""
        if self._diagnosing:
            kind = "diagnosed"
        else:
            progress = (sum(q.t for q in self.procs), self._done_count)
            if progress != self._progress:
                self._progress, self._still_steps = progress, 0
            else:
                self._still_steps += self._check_every
            if self.steps >= self.max_steps:  # type: ignore[operator]
                kind = "steps"
            elif self._still_steps >= self.max_steps_without_progress:  # type: ignore[operator]
                kind = "progress"
        if not kind:
            return self._check_every
        p.retry = cmd
        self._push(p)
        raise _LimitReached(kind)

    def _run_limit(self, kind: str) -> RunLimitError:
        """The error for a tripped limit: run a few hundred more steps recording what each process does, to name the
        processes that loop and their channels."""
        steps, still = self.steps, self._still_steps
        now = max((p.t for p in self.procs), default=0)
        clocks = {p.name: p.t for p in self.procs}  # at the limit, before the steps run to describe the loop
        log: list[tuple[Proc, tuple[Any, ...]]] = []
        for p in self.procs:
            if not p.done:
                p.gen = _Recorder(p.gen, p, log)
        self._diagnosing, self._check_every = True, _DIAGNOSE_STEPS
        self._budget_left = _DIAGNOSE_STEPS
        try:
            self._drive()
        except (_LimitReached, PtortError):  # (a run that ends or fails right after the limit is still past it)
            pass
        doing = _describe(log, clocks)
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

    # -- results ------------------------------------------------------------------------------------------------
    def samples(self, end: int | None = None) -> list[Sample]:
        """Occupancy steps per channel, in time order; steps after ``end`` (credits of the last items, which no
        producer is left to take) are shown at ``end``."""
        out = []
        for f in self.fifos.values():
            out.append(Sample(f.name, 0, 0))
            if f.deltas:
                steps = [(d, 1) if d >= 0 else (~d, -1) for d in f.deltas]
                # Stable sort by time only: at equal times the recorded (causal) order keeps 0 <= level <= depth.
                times, deltas = zip(*sorted(steps, key=_first))
                if end is not None:
                    times = tuple(t if t < end else end for t in times)
                out.extend(map(Sample, itertools.repeat(f.name), times, itertools.accumulate(deltas)))
        return out

    def _deadlock(self, blocked: list[Proc]) -> DeadlockError:
        now = max(p.t for p in blocked)
        waits = "; ".join(f"'{p.name}' waits to {p.blocked or 'run'} (since t={p.wait_since})" for p in blocked)
        fills = ", ".join(f"'{f.name}' {f.in_use}/{f.depth} slots in use, "
                          f"{len(f.tokens) + len(f.pending or ())} token(s) waiting"
                          + (" (closed)" if f.producers_left == 0 else "") for f in self.fifos.values())
        return DeadlockError(
            f"Deadlock at t={now} cycles: no process can move. {waits}." + (f" Channels: {fills}." if fills else ""),
            hint="Check that every consumed channel has a producer that keeps sending, that every synchronize has a "
                 "matching record, and that no process waits on a channel it fills itself; or raise a depth.",
            locate=False)


def _describe(log: list[tuple[Proc, tuple[Any, ...]]], clocks: dict[str, int]) -> str:
    """"Active: 'A' (t=0) sends to 'c1' and consumes 'c2'; ...": what each process did in the logged steps, and
    its clock when the limit tripped."""
    acts: dict[Proc, set[tuple[int, str]]] = {}
    for p, cmd in log:
        op = cmd[0]
        found = acts.setdefault(p, set())
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
    for p, found in sorted(acts.items(), key=lambda pa: pa[0].order):
        words = [w for _, w in sorted(found)]
        parts.append(f"'{p.name}' (t={clocks[p.name]:,}) " + (", ".join(words[:-1]) + " and " if len(words) > 1
                                                              else "") + words[-1])
    return "Active: " + "; ".join(parts) + "."
