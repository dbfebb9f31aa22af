"""The run-time state the engine moves: actors (running processes), fifos (channels), wakeups (events).

An ``Actor`` is the run-time side of one DSL ``Process``: its step generator, local clock and what it waits on. An
``Inbox`` holds items for the first waiting actor; a ``Fifo`` (one Channel) adds buffer slots, a ``Wakeup`` (one
Event) holds signals. The engine (``engine.py``) keys both by the DSL object itself (Channel / Event: identity hash,
one dict lookup). Times are cycles.

Several producers on one channel (a merge): the consumer takes items in the order they become available, not in
the order the engine happened to run the sends. An item is available at its visible time (the producer's finish +
the channel's latency); items visible at the same cycle go in order of slot-grant time, then of the producers'
order in ``connect()``, then of send order. A consumer that is waiting takes the first item to become visible; one
that comes later takes the earliest visible item queued. Tokens of such a channel wait in ``Inbox.pending`` until
their visible time, when a release entry in the engine's time-ordered heap moves them to the consumer in that order:
every channel with several producers or consumers, and every event with several recorders or waiters, needs global
time order. With one producer a channel's tokens are already in that order (a process's clock never goes back) and
are handed over directly. Events follow the same rules: a signal is visible ``latency_cycles`` after its record, the
event's latency being that of a channel between the same processes. Actors ready at one and the same cycle run in
the order they became ready (the heap's sequence number): deterministic, but when two producers ask for the last slot
of a channel at the very same cycle, the one the engine reached first gets it. A token visible the very cycle it was
sent (a 0-cycle task and 0 latency) may queue behind tokens already released at that cycle.

Latency is per hop, a (producer, consumer) pair: a channel or event whose ends all pay the same latency keeps one
(``Inbox.latency_cycles``); one with hops on a core and hops between cores (a merge whose producers sit on different
cores, ...) gets a ``Hops`` table. Its items are visible to a consumer at the producer's finish + their hop's
latency, and its freed slots to a producer at the consumer's finish + theirs. With several consumers, an item waits
in ``pending`` until the first of them can see it; then the waiting consumer that sees it first takes it (ties: the
one waiting longest), or, none waiting, the first to ask, at its own hop's time. A slot freed while producers wait
goes the same way to the producer that sees it first.
"""
from __future__ import annotations

import heapq
import itertools
import operator
from collections import deque
from typing import Any, Callable, Mapping

from ..dsl.commands import CLOSED
from ..errors import DeadlockError, PipelineError, SourceLocation
from .trace import Sample, Stall

_first = operator.itemgetter(0)
_new = tuple.__new__  # builds a Stall without its Python-level __new__ (3x cheaper; long runs record millions)


class Actor:
    """A running process: its step generator, local time, core, and what it is blocked on."""

    __slots__ = ("name", "gen", "t", "core", "reply", "retry", "blocked", "wait_since", "done", "stall_cycles",
                 "last_end", "granted", "order", "grants")

    def __init__(self, name: str, gen: Any, core: int, order: int = 0) -> None:
        self.name = name
        self.gen = gen  # the step generator (dsl.steps), or a limits.Recorder around it
        self.core = core
        self.order = order  # its place in connect(): breaks ties between items visible at the same cycle
        self.t = 0
        self.reply: Any = None
        self.retry: tuple[Any, ...] | None = None  # a command to carry out again (it blocked, or waits its turn)
        self.blocked = ""
        self.wait_since = 0
        self.done = False
        self.stall_cycles = 0
        self.last_end = 0  # when its latest task finishes (a process may issue ahead of its tasks' ends)
        self.granted = False  # a slot was handed to it while it waited in SEND/ACQUIRE
        self.grants: list[int] = []  # when each ACQUIRE not yet matched by its PUSH took its slot


class Inbox:
    """Items for the first waiting actor (tokens of a channel, signals of an event).

    ``tokens`` holds visible items ``(item, visible_time)`` in the order they are taken (with ``hops``, the time
    its nearest taker sees it). With several senders (or several takers that see items at different times: ``Hops``),
    items still in flight wait in the heap ``pending`` as ``(visible_time, grant_time, sender_order, seq, item)``
    until the engine releases them at their visible time; otherwise ``pending`` is None.
    """

    __slots__ = ("name", "latency_cycles", "tokens", "pending", "consumers", "starved", "sent", "hops")

    def __init__(self, name: str, senders: int, latency_cycles: int, starved: str) -> None:
        self.name = name
        self.latency_cycles = latency_cycles
        self.tokens: deque[tuple[Any, int]] = deque()
        self.pending: list[tuple[int, int, int, int, Any]] | None = [] if senders > 1 else None
        self.consumers: deque[Actor] = deque()
        self.starved = starved  # the stall reason of an actor waiting for an item
        self.sent = 0  # items put in `pending` so far (the last tie-break: send order)
        self.hops: Hops | None = None  # each hop's latency, when they differ (else every hop costs latency_cycles)


class Fifo(Inbox):
    """The run-time side of one Channel: free slots (with the time each became free) and tokens in flight."""

    __slots__ = ("depth", "fresh", "free", "producers_left", "closed_at", "producers", "deltas", "backpressure",
                 "send_wait", "consume_wait", "deltas_source", "readers", "writers", "takes")

    def __init__(self, name: str, depth: int, producers: int, latency_cycles: int = 0) -> None:
        super().__init__(name, producers, latency_cycles, f"starved on '{name}'")
        self.depth = depth
        # Slots never used yet are only counted (free since t=0, so the earliest to take): a depth of 10**9 costs
        # nothing. Freed slots queue with the time they became free.
        self.fresh = depth
        self.free: deque[int] = deque()
        self.producers_left = producers
        # When the channel closes: the latest end of its producers' bodies so far (a body may go on with other tasks
        # after its last send; the close pays no latency). A consume ends no earlier.
        self.closed_at = 0
        self.producers: deque[Actor] = deque()
        # Occupancy changes in causal order, one int each (no tuple per event): t = a slot taken at t, ~t = freed at t.
        self.deltas: list[int] = []
        self.deltas_source: Callable[[], list[int]] | None = None  # the max-plus path's deltas, built on first read
        self.backpressure = f"backpressure from '{name}'"  # stall and wait reasons, built once
        self.send_wait = f"send to '{name}' (no free slot)"
        self.consume_wait = f"consume from '{name}'"
        self.readers: tuple[str, ...] = ()  # the names of its consumers (for a deadlock's message)
        self.writers: tuple[str, ...] = ()  # the names of its producers (for tokens left at the end of a run)
        self.takes: tuple[Any, ...] = ()  # where its consumes are (SourceLocation or None), in its consumers' order

    @property
    def in_use(self) -> int:
        """Slots taken and not yet freed (every slot is either free or in use)."""
        return self.depth - self.fresh - len(self.free)

    def samples(self, end: int | None = None) -> list[Sample]:
        """Occupancy steps in time order, from (0, 0); steps after ``end`` are shown at ``end``."""
        out = [Sample(self.name, 0, 0)]
        if self.deltas_source is not None:
            self.deltas, self.deltas_source = self.deltas_source(), None
        if self.deltas:
            steps = [(d, 1) if d >= 0 else (~d, -1) for d in self.deltas]
            # Stable sort by time only: at equal times the recorded (causal) order keeps 0 <= level <= depth.
            times, deltas = zip(*sorted(steps, key=_first))
            if end is not None:
                times = tuple(t if t < end else end for t in times)
            out.extend(map(Sample, itertools.repeat(self.name), times, itertools.accumulate(deltas)))
        return out


class Wakeup(Inbox):
    """The run-time side of one Event: signals (items without a value) and the actors waiting for one."""

    __slots__ = ("recorded",)

    def __init__(self, name: str, recorders: int = 1, latency_cycles: int = 0) -> None:
        super().__init__(name, recorders, latency_cycles, f"synchronize on '{name}'")
        self.recorded = 0  # signals recorded so far (those not waiting in `tokens` or `pending` were taken)

    @property
    def taken(self) -> int:
        """Signals a synchronize took (or was handed) so far."""
        return self.recorded - len(self.tokens) - len(self.pending or ())


class Hops:
    """The latency of each hop of a channel or event whose hops differ (some of its ends share a core and its
    buffers, others do not); a hop is a (sender, taker) pair of ends, each named by its place in ``connect()``
    (``Actor.order``).

    An item leaves its sender ``out[sender]`` after the sender's finish (the latency of its cheapest hop: the merge
    order and the release go by it) and its taker sees it ``extra[sender, taker]`` later still. A freed slot goes
    back the same way: ``back[taker]`` after its consumer's finish, then ``back_extra[taker, sender]`` for the
    producer that takes it. Where that extra depends on who takes an item (several takers), the items waiting in
    ``Inbox.tokens`` remember their senders here, in the same order, and the free slots the consumers that freed
    them."""

    __slots__ = ("out", "extra", "back", "back_extra", "senders", "freers")

    def __init__(self, latency: dict[tuple[int, int], int]) -> None:
        self.out: dict[int, int] = {}
        self.back: dict[int, int] = {}
        for (sender, taker), cycles in latency.items():
            self.out[sender] = min(cycles, self.out.get(sender, cycles))
            self.back[taker] = min(cycles, self.back.get(taker, cycles))
        extra = {(s, t): cycles - self.out[s] for (s, t), cycles in latency.items()}
        back_extra = {(t, s): cycles - self.back[t] for (s, t), cycles in latency.items()}
        self.extra = extra if any(extra.values()) else None  # (None: every taker sees an item at once)
        self.back_extra = back_extra if any(back_extra.values()) else None
        self.senders: deque[int] = deque()
        self.freers: deque[int] = deque()

    def queued(self, sender: int) -> None:
        """An item of ``sender`` joins the box's ``tokens``."""
        if self.extra is not None:
            self.senders.append(sender)

    def taken(self, taker: int) -> int:
        """``taker`` takes the first item of the box's ``tokens``: how much later than its ``tokens`` time it sees
        it."""
        return 0 if self.extra is None else self.extra[self.senders.popleft(), taker]

    def freed(self, freer: int) -> None:
        """A slot ``freer`` freed joins the channel's ``free`` slots."""
        if self.back_extra is not None:
            self.freers.append(freer)

    def slot_taken(self, taker: int) -> int:
        """``taker`` takes the first of the channel's ``free`` slots: how much later than its ``free`` time it sees
        it."""
        return 0 if self.back_extra is None else self.back_extra[self.freers.popleft(), taker]


def _set_hops(box: Inbox, hops: Hops | None) -> None:
    """Give ``box`` its hops. When who takes an item decides when it is seen (several takers, hops that differ),
    its items wait in ``pending`` until the first taker can see them, even from one sender: then the waiting taker
    that sees it first gets it, not the first to have asked before anyone could see it."""
    box.hops = hops
    if hops is not None and hops.extra is not None and box.pending is None:
        box.pending = []


def _nearest(waiting: deque[Actor], extra: dict[tuple[int, int], int], source: int) -> Actor:
    """Take out of ``waiting`` the actor that sees an item of ``source`` first (``extra[source, actor]`` the least;
    ties: the one waiting longest)."""
    at = min(range(len(waiting)), key=lambda i: extra[source, waiting[i].order])
    actor = waiting[at]
    del waiting[at]
    return actor


def _takers(f: Fifo) -> set[Actor]:
    """The waiting consumers the items still in flight of closing channel ``f`` will go to (none can come after
    them): each item, in the order they are released, to the waiting consumer that sees it first (``_nearest``;
    ties, or every hop alike: the one waiting longest), as ``Channels._release`` hands them over."""
    if not f.pending:
        return set()
    hops = f.hops
    if hops is None or hops.extra is None:
        return set(itertools.islice(f.consumers, len(f.pending)))
    waiting = deque(f.consumers)
    kept: set[Actor] = set()
    for _, _, sender, _, _ in sorted(f.pending):  # (the heap's order; the send counts differ, items never compare)
        if not waiting:
            break
        kept.add(_nearest(waiting, hops.extra, sender))
    return kept


class Channels:
    """A run's fifos and wakeups and how items move through them: hand-over, release in time order, credits.

    The engine (a subclass) drives the actors; this part owns what they share: the channels and events (keyed by the
    DSL object itself: identity hash, one lookup), the stalls recorded so far, and the run queue: a heap of
    ``(t, seq, Actor)`` entries to run an actor and ``(t, seq, Inbox)`` entries to release an inbox's items visible
    by t (time order), or a plain deque of actors ready to run (run-until-block order).
    """

    def __init__(self, latency_cycles: int, time_ordered: bool) -> None:
        self.latency_cycles = latency_cycles  # of a channel or event registered without its own
        self.time_ordered = time_ordered
        self.fifos: dict[Any, Fifo] = {}
        self.wakeups: dict[Any, Wakeup] = {}
        self.closes: dict[str, list[Fifo]] = {}  # process name -> the channels it produces into
        self.stalls: list[Stall] = []
        self._ready: deque[Actor] = deque()
        self._heap: list[tuple[int, int, Any]] = []
        self._seq = 0
        # _push(p): p may run again (at p.t); bound once, as it runs once or twice per item.
        self._push: Callable[[Actor], None] = self._push_heap if time_ordered else self._ready.append

    def add_fifo(self, channel: Any, producers: int, latency_cycles: int | None = None, consumers: int = 1,
                 readers: tuple[str, ...] = (), hops: Hops | None = None) -> Fifo:
        """Register a channel; ``latency_cycles`` defaults to the engine's (cross-core) channel latency; ``readers``
        names its consumers; ``hops``: each hop's latency, when they differ."""
        latency = self.latency_cycles if latency_cycles is None else latency_cycles
        f = self.fifos[channel] = Fifo(channel.name, channel.depth, producers, latency)
        f.readers = readers
        _set_hops(f, hops)
        if producers > 1 or consumers > 1:
            self._require_time_order()
        return f

    def add_event(self, event: Any, recorders: int, waiters: int, latency_cycles: int,
                  hops: Hops | None = None) -> Wakeup:
        """Register an Event: its signals become visible ``latency_cycles`` after each record (``hops``: each hop's
        latency, when they differ)."""
        w = self.wakeups[event] = Wakeup(event.name, recorders, latency_cycles)
        _set_hops(w, hops)
        if recorders > 1 or waiters > 1:
            self._require_time_order()
        return w

    def _require_time_order(self) -> None:
        """Several senders or takers on one channel or event: who gets what depends on when, so run in time order."""
        if self.time_ordered:
            return
        self.time_ordered = True
        self._push = self._push_heap
        while self._ready:
            self._push_heap(self._ready.popleft())

    def _push_heap(self, p: Actor) -> None:
        self._seq += 1
        heapq.heappush(self._heap, (p.t, self._seq, p))

    def _wakeup(self, event: Any) -> Wakeup:
        """The wakeup of ``event`` (registered now if the runner did not)."""
        w = self.wakeups.get(event)
        if w is None:  # an event the runner did not register: one recorder, the engine's latency
            w = self.wakeups[event] = Wakeup(event.name, 1, self.latency_cycles)
        return w

    def _wake(self, p: Actor, t: int, reason: str) -> None:
        """``p``, blocked since ``p.wait_since``, may go on at ``t``: record the wait as a stall and queue it."""
        if t > p.wait_since:
            self.stalls.append(_new(Stall, (p.name, reason, p.wait_since, t)))
            p.stall_cycles += t - p.wait_since
        p.t = t if t > p.t else p.t
        p.blocked = ""
        self._push(p)

    def _deliver(self, box: Inbox, p: Actor, token: Any, granted: int) -> None:
        """``p`` passes an item on (its slot granted at ``granted``): visible the box's latency after ``p``'s last
        task ends. (SEND does the same inline.)"""
        hops = box.hops
        ts = (p.t if p.t > p.last_end else p.last_end) + (box.latency_cycles if hops is None else hops.out[p.order])
        if box.pending is not None:
            self._pend(box, token, ts, granted, p)
        elif box.consumers:
            self._hand_token(box, token, ts, p.order)
        else:
            box.tokens.append((token, ts))
            if hops is not None:
                hops.queued(p.order)

    def _hand_token(self, box: Inbox, token: Any, ts: int, sender: int) -> None:
        """An item of ``sender`` (an ``Actor.order``) becomes visible at ``ts`` while an actor waits for one: hand it
        over and wake that actor (with hops of different latencies, the one that sees it first)."""
        hops = box.hops
        if hops is None or hops.extra is None:
            c = box.consumers.popleft()
        else:
            c = _nearest(box.consumers, hops.extra, sender)
            ts += hops.extra[sender, c.order]
        c.reply = token
        self._wake(c, ts, box.starved)

    def _pend(self, box: Inbox, token: Any, ts: int, granted: int, p: Actor) -> None:
        """An item of an inbox with several senders: it waits until ``ts``, when no earlier one can still come."""
        assert box.pending is not None
        box.sent += 1
        heapq.heappush(box.pending, (ts, granted, p.order, box.sent, token))
        self._seq += 1
        heapq.heappush(self._heap, (ts, self._seq, box))

    def _release(self, box: Inbox, now: int) -> None:
        """At ``now`` every actor has reached ``now``, so no item visible before it can still be sent: pass the
        items visible by ``now`` on in (visible time, grant time, sender order, send order)."""
        pending = box.pending
        while pending and pending[0][0] <= now:
            ts, _, sender, _, token = heapq.heappop(pending)
            if box.consumers:
                self._hand_token(box, token, ts, sender)
            else:
                box.tokens.append((token, ts))
                if box.hops is not None:
                    box.hops.queued(sender)

    def _credit(self, f: Fifo, ts: int, freer: int) -> None:
        """A slot ``freer`` (an ``Actor.order``) freed becomes free at ``ts`` while a producer waits for one: grant it
        and wake the producer (with hops of different latencies, the one that sees it first)."""
        f.deltas.append(~ts)
        hops = f.hops
        if hops is None or hops.back_extra is None:
            q = f.producers.popleft()
        else:
            q = _nearest(f.producers, hops.back_extra, freer)
            ts += hops.back_extra[freer, q.order]
        q.granted = True
        self._wake(q, ts, f.backpressure)
        f.deltas.append(q.t)

    def _free_slot(self, p: Actor, cmd: tuple[Any, ...]) -> bool:
        """(RELEASE, channel): ``p`` is done with its previous item of the channel: free its slot, visible the
        channel's latency after ``p``'s last task ends (as a PULL's release; the engine's cold command, never
        blocks)."""
        f = self.fifos[cmd[1]]
        hops = f.hops
        ts = (p.t if p.t > p.last_end else p.last_end) + (f.latency_cycles if hops is None else hops.back[p.order])
        if f.producers:
            self._credit(f, ts, p.order)
        else:
            f.deltas.append(~ts)
            f.free.append(ts)
            if hops is not None:
                hops.freed(p.order)
        return False

    def _close(self, p: Actor) -> None:
        """``p`` finished (its body ended at ``p.t``): the channels it produces into lose a producer; when none is
        left, the waiting consumers that no item still in flight goes to learn that the channel closed, at the end of
        the last producer's body."""
        for f in self.closes.get(p.name, ()):
            f.producers_left -= 1
            if p.t > f.closed_at:
                f.closed_at = p.t
            if f.producers_left == 0:
                kept = _takers(f)
                closing = [c for c in f.consumers if c not in kept]
                if closing:
                    f.consumers = deque(c for c in f.consumers if c in kept)
                for c in closing:
                    c.reply = CLOSED
                    self._wake(c, f.closed_at, f.starved)

    def samples(self, end: int | None = None) -> list[Sample]:
        """Occupancy steps per channel, in time order; steps after ``end`` (credits of the last items, which no
        producer is left to take) are shown at ``end``."""
        return [s for f in self.fifos.values() for s in f.samples(end)]


DEADLOCK_LISTED = 12  # processes and channels a deadlock message names; the error keeps every one

# Where a blocked process's step is in the user's code: (process name, role, channel or event) -> its line, the role
# "sends", "consumes" or "waits" (the runner's, from the process bodies; asked only when a run deadlocks).
StepLine = Callable[[str, str, Any], SourceLocation | None]


def deadlock_error(blocked: list[Actor], fifos: Mapping[Any, Fifo], wakeups: Mapping[Any, Wakeup] | None = None,
                   now: int | None = None, step_line: StepLine | None = None) -> DeadlockError:
    """No actor can move since ``now`` (the last clock any process reached; default the blocked ones'): which ones
    wait for what (since when, and at which line of theirs when ``step_line`` knows it), the channels' fill (tokens
    waiting, and slots its consumers took and hold) and the events' signals (recorded, taken). ``fifos`` and
    ``wakeups`` are keyed by their Channel and Event. The error points at the line of the first blocked process that
    has one (``where``, with the process as ``context``). A big run (e.g. one pipeline per core) names the first
    ``DEADLOCK_LISTED`` of each and counts the rest; ``error.waits`` and ``error.channels`` hold them all."""
    wakeups = wakeups or {}
    if now is None:
        now = max(p.t for p in blocked)
    lines = _step_lines(blocked, fifos, wakeups, step_line)
    waits = [f"'{p.name}' waits to {p.blocked or 'run'}{'' if at is None else f' at {at}'} (since t={p.wait_since})"
             for p, at in zip(blocked, lines)]
    # A slot in use holds a token not yet consumed, or an item a consumer took and has not freed yet (it frees it
    # when it takes its next one), or a slot a send body took and has not filled (ACQUIRE before its PUSH): with
    # no such body open, the rest are the consumers'.
    bodies_open = any(p.grants for p in blocked)
    fills = [_fill(f, bodies_open) for f in fifos.values()]
    channels = f" Channels: {_listed(fills, 'channels')}." if fills else ""
    signals = [f"'{w.name}' recorded {w.recorded}, taken {w.taken}" for w in wakeups.values()]
    events = f" Events: {_listed(signals, 'events')}." if signals else ""
    first = next(((p, at) for p, at in zip(blocked, lines) if at is not None), None)
    error = DeadlockError(
        f"Deadlock at t={now} cycles: no process can move. {_listed(waits, 'processes blocked', '; ')}.{channels}"
        f"{events}",
        hint="Check that every consumed channel has a producer that keeps sending, that every synchronize has a "
             "matching record, and that no process waits on a channel it fills itself; or raise a depth.",
        where=None if first is None else first[1], context="" if first is None else f"process '{first[0].name}'",
        locate=False)
    error.waits, error.channels = waits, fills  # type: ignore[attr-defined]  # the whole picture, for big runs
    return error


def _step_lines(blocked: list[Actor], fifos: Mapping[Any, Fifo], wakeups: Mapping[Any, Wakeup],
                step_line: StepLine | None) -> list[SourceLocation | None]:
    """The user's line of the step each blocked actor waits in, where ``step_line`` knows it."""
    if step_line is None:
        return [None] * len(blocked)
    waits = _waits_in(fifos, wakeups)
    return [None if (step := waits.get(p)) is None else step_line(p.name, *step) for p in blocked]


def _waits_in(fifos: Mapping[Any, Fifo], wakeups: Mapping[Any, Wakeup]) -> dict[Actor, tuple[str, Any]]:
    """Each waiting actor -> (role, the Channel or Event) of the step it waits in: it queues among a channel's
    producers for a slot (a send), among its consumers for an item (a consume or join) or among an event's waiters
    (a synchronize). One pass over the queues: a run of a million replicas may deadlock too."""
    found: dict[Actor, tuple[str, Any]] = {}
    for used, f in fifos.items():
        found.update((p, ("sends", used)) for p in f.producers)
        found.update((p, ("consumes", used)) for p in f.consumers)
    for used, w in wakeups.items():
        found.update((p, ("waits", used)) for p in w.consumers)
    return found


def unconsumed_error(f: Fifo, end: int) -> PipelineError:
    """Every process ended, but channel ``f`` still holds tokens: no consume of it ran (a consume takes tokens until
    its channel closes), so the work they stand for was dropped. Raised at the end of the run (at t=``end``), at the
    consume's line: the same program with a smaller depth would deadlock instead."""
    left = len(f.tokens) + len(f.pending or ())
    where = next((loc for loc in f.takes if loc is not None), None)
    return PipelineError(
        f"the run ended (t={end} cycles) with {left} token(s) left in channel '{f.name}': {_names(f.writers)} sent "
        f"them, and the consume({f.name}, ...) of {_names(f.readers)} never took them, so the work they stand for "
        "never ran.",
        hint="A consume takes every token until its channel closes, so this one never ran: it sits in a branch that "
             "was not taken (cond(...) or P.when(...)). Consume the channel outside the branch, or send to it only "
             "under the same condition.", where=where, locate=False)


def _names(names: tuple[str, ...]) -> str:
    """"'a'", "'a' and 'b'" (or "its processes" when there are none)."""
    quoted = [f"'{n}'" for n in names]
    return (", ".join(quoted[:-1]) + " and " + quoted[-1]) if len(quoted) > 1 else (quoted[0] if quoted else
                                                                                      "its processes")


def _fill(f: Fifo, bodies_open: bool) -> str:
    """"'c' 1/1 slots in use, 0 token(s) waiting, 1 held by 'b'": one channel's part of a deadlock's message."""
    waiting = len(f.tokens) + len(f.pending or ())
    held = f.in_use - waiting
    text = f"'{f.name}' {f.in_use}/{f.depth} slots in use, {waiting} token(s) waiting"
    if held > 0 and f.readers and not bodies_open:
        names = " or ".join(f"'{n}'" for n in f.readers)
        text += f", {held} held by {names} (taken items, each freed when its consumer takes its next)"
    return text + (" (closed)" if f.producers_left == 0 else "")


def _listed(items: list[str], what: str, sep: str = ", ") -> str:
    """The first ``DEADLOCK_LISTED`` items joined, and how many more there are."""
    shown = sep.join(items[:DEADLOCK_LISTED])
    more = len(items) - DEADLOCK_LISTED
    return shown + (f"{sep}... and {more} more {what} (all of them in the error's .waits / .channels)"
                    if more > 0 else "")


__all__ = ["Actor", "Inbox", "Fifo", "Wakeup", "Hops", "Channels", "StepLine", "deadlock_error", "unconsumed_error"]
