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
"""
from __future__ import annotations

import heapq
import itertools
import operator
from collections import deque
from typing import Any, Callable, Iterable

from ..dsl.steps import ACQUIRE, CLOSED, PULL, PUSH, RECORD, SEND, SEND_PULL, TASK, TASK_PULL, WAIT
from ..errors import DeadlockError
from .trace import Sample, Stall

_first = operator.itemgetter(0)
_new = tuple.__new__  # builds a Stall without its Python-level __new__ (3x cheaper; long runs record millions)
AFTER = 100  # (AFTER, task_ids[, reason]): wait until those tasks finished (data-parallel dependencies)
WINDOW = 101  # (WINDOW,): wait until fewer than `window` tasks are in flight
NOT_BEFORE = 102  # (NOT_BEFORE, cycle, reason): do not go on before that cycle (TimingPolicy.rate_limit)


class Proc:
    """A running process: its step generator, local time, core, and what it is blocked on."""

    __slots__ = ("name", "gen", "t", "core", "reply", "retry", "blocked", "wait_since", "done", "stall_cycles",
                 "last_end", "granted")

    def __init__(self, name: str, gen: Any, core: int) -> None:
        self.name = name
        self.gen = gen
        self.core = core
        self.t = 0
        self.reply: Any = None
        self.retry: tuple[Any, ...] | None = None
        self.blocked = ""
        self.wait_since = 0
        self.done = False
        self.stall_cycles = 0
        self.last_end = 0  # when its latest task finishes (a process may issue ahead of its tasks' ends)
        self.granted = False  # a slot was handed to it while it waited in SEND/ACQUIRE


class Fifo:
    """The run-time side of one Channel: free slots (with the time each became free) and tokens in flight."""

    __slots__ = ("name", "depth", "fresh", "free", "tokens", "producers_left", "consumers", "producers", "deltas",
                 "starved", "backpressure", "send_wait", "consume_wait", "latency")

    def __init__(self, name: str, depth: int, producers: int, latency_cycles: int = 0) -> None:
        self.name = name
        self.latency = latency_cycles
        self.depth = depth
        # Slots never used yet are only counted (free since t=0, so the earliest to take): a depth of 10**9 costs
        # nothing. Freed slots queue with the time they became free.
        self.fresh = depth
        self.free: deque[int] = deque()
        self.tokens: deque[tuple[Any, int]] = deque()
        self.producers_left = producers
        self.consumers: deque[Proc] = deque()
        self.producers: deque[Proc] = deque()
        # Occupancy changes in causal order, one int each (no tuple per event): t = a slot taken at t, ~t = freed at t.
        self.deltas: list[int] = []
        self.starved = f"starved on '{name}'"  # stall and wait reasons, built once
        self.backpressure = f"backpressure from '{name}'"
        self.send_wait = f"send to '{name}' (no free slot)"
        self.consume_wait = f"consume from '{name}'"

    @property
    def in_use(self) -> int:
        """Slots taken and not yet freed (every slot is either free or in use)."""
        return self.depth - self.fresh - len(self.free)


class Wakeup:
    """The run-time side of one Event: pending signal times and the processes waiting for one."""

    __slots__ = ("name", "signals", "waiters")

    def __init__(self, name: str) -> None:
        self.name = name
        self.signals: deque[int] = deque()
        self.waiters: deque[Proc] = deque()


class Engine:
    """Run step generators in simulated time.

    ``run_task(task, proc)`` prices each task starting at ``proc.t``: it sets ``proc.t`` to when the process may go
    on (the task's end for a sequential process; earlier when a core may issue its next task while this one runs)
    and raises ``proc.last_end`` to the task's end. Anything the process passes on afterwards (tokens, credits,
    signals) is stamped no earlier than ``proc.last_end``.
    """

    def __init__(self, run_task: Callable[[Any, Proc], None], latency_cycles: int = 0,
                 window: int | None = None, time_ordered: bool = True) -> None:
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
        self._heap: list[tuple[int, int, Proc]] = []
        self._seq = 0
        # _push(p): p may run again (at p.t); bound once, as it runs once or twice per item.
        self._push: Callable[[Proc], None] = self._push_heap if self.time_ordered else self._ready.append

    # -- set-up -------------------------------------------------------------------------------------------------
    def add_fifo(self, channel: Any, producers: int, latency_cycles: int | None = None) -> Fifo:
        """Register a channel; ``latency_cycles`` defaults to the engine's (cross-core) channel latency."""
        f = Fifo(channel.name, channel.depth, producers, self.latency if latency_cycles is None else latency_cycles)
        self.fifos[channel] = f
        return f

    def add_process(self, name: str, gen: Any, core: int, closes: Iterable[Any] = ()) -> Proc:
        p = Proc(name, gen, core)
        self.procs.append(p)
        self.closes[name] = [self.fifos[c] for c in closes]
        self._push(p)
        return p

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
        """Run every process to its end and return the makespan; DeadlockError when some never can."""
        self._drive()
        blocked = [p for p in self.procs if not p.done]
        if blocked:
            raise self._deadlock(blocked)
        return max((p.t for p in self.procs), default=0)

    def _drive(self) -> None:
        """Until no process can move: take the next one and carry out its commands until it blocks or ends.

        In time order the next process is the earliest one, and a process that gets ahead of another hands over to it
        at once (one heap operation); otherwise processes run in the order they became ready.
        """
        heap, ready = self._heap, self._ready
        pop, switch = heapq.heappop, heapq.heappushpop
        fifos = self.fifos
        stalls = self.stalls
        window = self.window
        run_task = self.run_task
        while heap or ready:
            p = pop(heap)[2] if heap else ready.popleft()
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
                        pass
                    elif window is not None and not self._window_ok(p):
                        p.granted, p.retry = True, cmd
                    else:  # produce into it, then pass the token on
                        run_task(cmd[2], p)
                        ts = (p.t if p.t > p.last_end else p.last_end) + f.latency
                        if f.consumers:
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
                    elif f.producers_left == 0:
                        p.reply = CLOSED
                    else:
                        p.blocked, p.wait_since = f.consume_wait, p.t
                        f.consumers.append(p)
                        break
                if heap and p.t > heap[0][0]:  # time-ordered and another process is earlier: run that one now
                    self._seq += 1
                    p = switch(heap, (p.t, self._seq, p))[2]
                    send = p.gen.send

    def _other(self, p: Proc, cmd: tuple[Any, ...]) -> bool:
        """PUSH, AFTER, NOT_BEFORE, RECORD and WAIT (the less frequent commands); True when ``p`` blocked."""
        op = cmd[0]
        if op == PUSH:
            f = self.fifos[cmd[1]]
            ts = (p.t if p.t > p.last_end else p.last_end) + f.latency
            if f.consumers:
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
            ts = (p.t if p.t > p.last_end else p.last_end) + self.latency
            if w.waiters:
                self._wake(w.waiters.popleft(), ts, f"synchronize on '{w.name}'")
            else:
                w.signals.append(ts)
        elif op == WAIT:
            w = self._wakeup(cmd[1])
            if w.signals:
                ts = w.signals.popleft()
                if ts > p.t:
                    self.stalls.append(_new(Stall, (p.name, f"synchronize on '{w.name}'", p.t, ts)))
                    p.stall_cycles += ts - p.t
                    p.t = ts
            else:
                p.blocked, p.wait_since = f"synchronize on '{w.name}'", p.t
                w.waiters.append(p)
                return True
        return False

    def _hand_token(self, f: Fifo, token: Any, ts: int) -> None:
        """A token becomes visible at ``ts`` while a consumer waits for one: hand it over and wake the consumer."""
        c = f.consumers.popleft()
        c.reply = token
        self._wake(c, ts, f.starved)

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
        if w is None:
            w = self.wakeups[id(event)] = Wakeup(event.name)
        return w

    def _finish(self, p: Proc) -> None:
        p.done = True
        if p.last_end > p.t:
            p.t = p.last_end
        for f in self.closes.get(p.name, ()):
            f.producers_left -= 1
            if f.producers_left == 0:
                while f.consumers:
                    c = f.consumers.popleft()
                    c.reply = CLOSED
                    self._wake(c, p.t, f.starved)

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
        fills = ", ".join(f"'{f.name}' {f.in_use}/{f.depth} slots in use, {len(f.tokens)} token(s) waiting"
                          + (" (closed)" if f.producers_left == 0 else "") for f in self.fifos.values())
        return DeadlockError(
            f"Deadlock at t={now} cycles: no process can move. {waits}." + (f" Channels: {fills}." if fills else ""),
            hint="Check that every consumed channel has a producer that keeps sending, that every synchronize has a "
                 "matching record, and that no process waits on a channel it fills itself; or raise a depth.",
            locate=False)
