"""CSP: Channel, Process, send/consume, connect() (with wiring checks), replicate, and Events.

Events are either host events or pipeline events, never both. On the host (outside any body) ``record`` counts a
signal at once, ``query`` says whether one is pending and ``synchronize`` takes one (or raises: nothing else could
record it). Inside process bodies ``record``/``synchronize`` are steps run in simulated time; every run starts with
no signals and drops them at its end, so host calls cannot see or feed them. Using one Event both ways raises
DSLUsageError at the second kind of use.
"""
from __future__ import annotations

from typing import Any, Callable, Generic, Iterable, TypeVar

from ..errors import (
    ChannelClosed,
    ChannelFull,
    DSLUsageError,
    PipelineError,
    PtortTypeError,
    PtortValueError,
    SourceLocation,
    user_location,
)
from .expr import refuse_placeholders
from .workload import Workload, _add, _body_with_var, _state, adopt, call_body, in_builder

T = TypeVar("T")


def _check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise PtortTypeError(f"{what} name must be a non-empty string, got {name!r}.",
                             hint=f'Write {what}(name="load_to_compute", ...).')
    refuse_placeholders(name, f"{what}(name=...)")  # f"ch_{b}": a loop variable has no value while building
    return name


class Channel(Generic[T]):
    """A bounded FIFO between processes: ``Channel[Tensor](name="l2c", depth=2)``.

    ``depth`` is the number of buffer slots: a producer takes a free slot before it produces into it, and the
    consumer frees it when it has finished with the item (Ascend TQue semantics): depth 1 serialises producer and
    consumer, depth 2 double-buffers. Tokens (tile indices) travel; the data stays in tensors. ``try_send``,
    ``size``, ``empty``, ``full`` and ``close`` act on a host-side buffer outside any simulation.
    """

    def __init__(self, name: str = "channel", depth: int = 1) -> None:
        self.name = _check_name(name, "Channel")
        if isinstance(depth, bool) or not isinstance(depth, int):
            raise PtortTypeError(f"Channel '{name}' depth must be an int, got {depth!r}.", hint="Use depth=2.")
        if depth < 0:
            raise PtortValueError(f"Channel '{name}' depth must be >= 0, got {depth}.",
                                  hint="depth is the number of buffer slots: 1 = no overlap, 2 = double buffering.")
        self.depth = depth
        self.loc = user_location(2)
        self._buffer: list[Any] = []
        self._open = True

    def is_open(self) -> bool:
        return self._open

    def size(self) -> int:
        return len(self._buffer)

    def empty(self) -> bool:
        return not self._buffer

    def full(self) -> bool:
        return len(self._buffer) >= self.depth

    def close(self) -> None:
        self._open = False

    def __repr__(self) -> str:
        return f"Channel({self.name!r}, depth={self.depth})"


def try_send(ch: Channel[Any], value: Any) -> bool:
    """Append to the channel's host-side buffer if a slot is free; False when full; ChannelClosed when closed."""
    if not isinstance(ch, Channel):
        raise PtortTypeError(f"try_send needs a Channel, got {ch!r}.", hint="Pass a Channel(...).")
    if not ch.is_open():
        raise ChannelClosed(f"try_send on closed channel '{ch.name}'.", context=f"channel '{ch.name}'",
                            hint="Create a new channel, or do not close it before sending.")
    if ch.full():
        return False
    ch._buffer.append(value)
    return True


def send_nowait(ch: Channel[Any], value: Any) -> None:
    """Like try_send but raises ChannelFull instead of returning False."""
    if not try_send(ch, value):
        raise ChannelFull(f"Channel '{ch.name}' is full ({ch.size()}/{ch.depth}).", context=f"channel '{ch.name}'",
                          hint="Consume from it first or give it a larger depth.")


class ChannelList(list):  # type: ignore[type-arg]
    """The channels a process consumes or produces; calling it adds channels and returns the process."""

    def __init__(self, owner: Process, what: str) -> None:
        super().__init__()
        self._owner, self._what = owner, what

    def __call__(self, *channels: Any) -> Process:
        for ch in channels:
            for c in (ch if isinstance(ch, (list, tuple)) else [ch]):
                if not isinstance(c, Channel):
                    raise PtortTypeError(f"process '{self._owner.name}' .{self._what}() takes Channels, got {c!r}.",
                                         hint=f"Pass Channel objects: .{self._what}(ch).")
                if not any(c is x for x in self):
                    self.append(c)
        return self._owner


class Process:
    """A named pipeline stage: ``Process("loader").produces(ch).body_func(fn)`` or
    ``process("loader").consumes(a).produces(b).body(workload)``.

    ``.consumes`` / ``.produces`` are lists of Channels that can also be called to add channels.
    """

    def __init__(self, name: str, consumes: Iterable[Channel[Any]] = (), produces: Iterable[Channel[Any]] = (),
                 body: Workload | None = None) -> None:
        self.name = _check_name(name, "Process")
        self.consumes = ChannelList(self, "consumes")
        self.produces = ChannelList(self, "produces")
        self.consumes(*consumes)
        self.produces(*produces)
        self.workload: Workload | None = None
        self.replica_of: str | None = None
        self.loc = user_location(2)
        if body is not None:
            self.body(body)

    def body(self, w: Workload) -> Process:
        """Set the process body to a workload (for_each/consume/send/task ...)."""
        if not isinstance(w, Workload):
            raise PtortTypeError(f"process '{self.name}' .body() takes a workload, got {type(w).__name__} {w!r}.",
                                 hint="Use .body(for_each(...)) / .body(consume(...)), or .body_func(callable).")
        adopt(w)
        check_consumes(w, self.name)
        self.workload = w
        return self

    def body_func(self, fn: Callable[[], Any]) -> Process:
        """Set the body to what ``fn()`` builds (launches, sends, loops) or returns (a workload or a list)."""
        w = call_body(fn, api="body_func")
        check_consumes(w, self.name)
        self.workload = w
        return self

    def __repr__(self) -> str:
        return f"Process({self.name!r})"


def process(name: str) -> Process:
    """Start building a process: ``process("loader").produces(ch).body(...)``."""
    return Process(name)


# Each replica is one more process, and a process runs on its own AI core unless placement is shared: the default
# machine has 24 cores, so a useful pool is a few dozen wide. 4096 copies (170x the chip) still build, connect and
# run in well under a second with .place("shared"); 10**7 would spend a minute making Process objects first.
MAX_REPLICAS = 4096


def replicate(proc: Process, n: int) -> list[Process]:
    """``n`` independent copies of ``proc`` named ``name[0]``.. that share its channels (a worker pool). Each copy
    takes ``proc``'s body as it is now; ``n`` is at most ``MAX_REPLICAS``."""
    if not isinstance(proc, Process):
        raise PtortTypeError(f"replicate() needs a Process as first argument, got {type(proc).__name__} {proc!r}.",
                             hint='Build the process first: replicate(process("worker").consumes(ch).body(...), 4).')
    if isinstance(n, bool) or not isinstance(n, int):
        raise PtortTypeError(f"replicate({proc.name!r}, n) needs an int n (the number of copies), got "
                             f"{type(n).__name__} {n!r}.", hint="Pass a whole number of copies: replicate(p, 4).")
    if n < 1:
        raise PtortValueError(f"replicate({proc.name!r}, n) needs n >= 1, got {n!r}.", hint="Use replicate(p, 4).")
    if n > MAX_REPLICAS:
        raise PtortValueError(
            f"replicate({proc.name!r}, n) makes at most {MAX_REPLICAS} copies, got n={n}: each copy is a process on "
            "its own AI core (unless placed 'shared') and the default machine has 24.",
            hint="Use a pool about as wide as the cores you model, e.g. replicate(p, 4), and more tokens per "
                 "worker; or model a bigger machine with machine.replace(num_cores=...).")
    if proc.workload is None:
        raise PipelineError(f"replicate({proc.name!r}, {n}) copies a process with no body; each copy takes the body "
                            "the process has when replicate() is called, so setting it later would not reach them.",
                            hint=f"Call .body(...) or .body_func(...) on '{proc.name}' before replicate().")
    out = []
    for i in range(n):
        p = Process(f"{proc.name}[{i}]", proc.consumes, proc.produces, None)
        p.workload = proc.workload
        p.replica_of = proc.name
        out.append(p)
    return out


def send(ch: Channel[Any], value: Any, *, token: Any = None) -> Workload:
    """Take a free slot of ``ch``, run ``value`` (a task) into it, then pass its token to the consumer: ``token=``
    if given, else the task's first axis value, else (a task launched without axes, the spec's
    ``send(ch, kernel(...))``) 0, 1, 2, ...: the send's index among this process's axis-less sends to ``ch``.
    ``value`` may also be a body workload (then ``token=``, else the index, travels) or a plain int / loop expression
    token."""
    if not isinstance(ch, Channel):
        raise PtortTypeError(f"send() needs a Channel as first argument, got {type(ch).__name__} {ch!r}.",
                             hint="Write send(ch, task(...)).")
    if not ch.is_open():
        raise ChannelClosed(f"send to closed channel '{ch.name}'.", context=f"channel '{ch.name}'",
                            hint="Do not call ch.close() on a channel a process still sends to.")
    refuse_placeholders((value, token), f"send({ch.name!r}, ...)")  # a token f"{t}" would travel as text
    _check_send_value(value, f"send({ch.name!r}, value)")
    if isinstance(value, Workload):
        adopt(value)
    node = Workload("send", loc=user_location(2), channel=ch, value=value, token=token)
    _add(node)
    return node


def _check_send_value(value: Any, api: str) -> None:
    """Refuse what cannot be one item: None (nothing built or returned) and a list of tasks (the tasks would run
    before the send, outside its slot, and the list itself would travel as the token). Other tokens are checked
    where a task uses them."""
    if value is None:
        raise PtortTypeError(f"{api} got None: there is nothing to send (a function that builds the task but does "
                             "not return it?).", hint="Send a task, send(ch, k[t](...)), or a token: send(ch, t).")
    if isinstance(value, (list, tuple, dict, set)):
        raise PtortTypeError(f"{api} got a {type(value).__name__}, not one task or token: its tasks would run before "
                             "the send, outside its slot, and the whole container would travel as the token.",
                             hint="For several tasks under one slot: send(ch, sequential(k1[t](...), k2[t](...)), "
                                  "token=t).")


def consume(ch: Channel[Any], body: Callable[[Any], Any]) -> Workload:
    """For every token that arrives on ``ch``, run ``body(token)``; ends when the producers finished and the
    channel drained. The slot is freed when the body has finished."""
    if not isinstance(ch, Channel):
        raise PtortTypeError(f"consume() needs a Channel as first argument, got {type(ch).__name__} {ch!r}.",
                             hint="Write consume(ch, lambda t: task(...)).")
    loc = user_location(2)
    var, node_body = _body_with_var(body, "consume")
    node = Workload("consume", loc=loc, channel=ch, var=var, body=node_body)
    _add(node)
    return node


class Event:
    """A named synchronisation point: ``record`` signals it, ``synchronize`` waits for (and takes) a signal,
    ``query`` tells whether a signal is pending. Signals count, so records can run ahead of waits, and a record never
    blocks (``depth`` is kept for the reference's API; its depth-0 rendezvous would block a single host thread).

    An Event is used either on the host or as steps of process bodies, not both: a pipeline run starts with no
    signals and drops them at its end, so a host ``record`` could not release a body's ``synchronize`` and a host
    ``query`` could not see a body's ``record``; the second kind of use raises DSLUsageError.
    """

    def __init__(self, name: str = "event", depth: int = 1) -> None:
        self.name = _check_name(name, "Event")
        if isinstance(depth, bool) or not isinstance(depth, int) or depth < 0:
            raise PtortValueError(f"Event '{name}' depth must be an int >= 0, got {depth!r}.", hint="Use depth=1.")
        self.depth = depth
        self.signal_count = 0
        self.wait_count = 0
        self._host_use: str | None = None  # the first host record/synchronize ("record at cell.py:3")
        self._body_use: str | None = None  # the first body step ("synchronize at cell.py:9")

    def __repr__(self) -> str:
        return f"Event({self.name!r})"


def _check_event(ev: Any, api: str) -> Event:
    if not isinstance(ev, Event):
        raise PtortTypeError(f"{api}() needs an Event, got {type(ev).__name__} {ev!r}.",
                             hint=f'Create one with Event(name="done") and pass it to {api}().')
    return ev


_MIX_HINT = ("Use one Event for host-side record/query/synchronize and another for the record/synchronize steps "
             "inside process bodies (those order the processes in simulated time; program.trace() shows when each "
             "happened).")


def _use_in_body(ev: Event, api: str, loc: SourceLocation | None) -> None:
    """A body step on ``ev``: refused when the host already recorded or took signals of it."""
    if ev._host_use is not None:
        raise DSLUsageError(
            f"{api}({ev.name!r}) in a process body, but Event '{ev.name}' is also used on the host ({ev._host_use}). "
            "A pipeline run starts with no signals and drops them at its end, so the host's records would never "
            f"reach this step{' (the process would wait forever)' if api == 'synchronize' else ''}.",
            hint=_MIX_HINT, where=loc, locate=loc is None)
    if ev._body_use is None:
        ev._body_use = f"{api} at {loc}" if loc is not None else api


def _use_on_host(ev: Event, api: str) -> None:
    """A host call on ``ev``: refused when a process body uses it (its signals live only inside each run)."""
    if ev._body_use is not None:
        reach = {"record": "this record would never release the body's synchronize",
                 "synchronize": "this synchronize cannot take the signals the body records",
                 "query": "query cannot see the signals the body records"}[api]
        raise DSLUsageError(
            f"{api}({ev.name!r}) on the host, but Event '{ev.name}' is a step of a process body ({ev._body_use}). "
            f"A pipeline run starts with no signals and drops them at its end, so {reach}.", hint=_MIX_HINT)
    if api != "query" and ev._host_use is None:
        where = user_location(3)
        ev._host_use = f"{api} at {where}" if where is not None else api


def record(ev: Event) -> Workload | None:
    """Signal ``ev``. Inside a process body it is a step of that process; on the host it counts at once."""
    _check_event(ev, "record")
    if in_builder():
        node = Workload("record", loc=user_location(2), event=ev)
        _use_in_body(ev, "record", node.loc)
        _add(node)
        return node
    _use_on_host(ev, "record")
    ev.signal_count += 1
    return None


def query(ev: Event) -> bool:
    """True when a recorded signal has not been taken by ``synchronize`` yet (a host-side check)."""
    _check_event(ev, "query")
    if in_builder():
        # While a body is being built query() would be evaluated once, before anything ran, and its constant
        # (usually False) would silently decide the body's structure, e.g. drop every task under cond(query(ev)).
        raise DSLUsageError(
            f"query({ev.name!r}) is a host-side check and cannot be used while a process body or workload is being "
            "built: it would be evaluated once, now, before any record ran, and not in simulated time.",
            hint="Inside a body, order processes with steps: record(ev) in one and synchronize(ev) in the other "
                 "(the waiting process blocks until the signal arrives). Call query(ev) only on the host, outside "
                 "@workload, process bodies and for_each/consume lambdas.")
    _use_on_host(ev, "query")
    return ev.signal_count > ev.wait_count


def synchronize(ev: Event) -> Workload | None:
    """Wait for ``ev``. Inside a process body the process waits (in simulated time); on the host the call never
    blocks: it takes a pending signal, or raises because nothing else could ever record it."""
    _check_event(ev, "synchronize")
    if in_builder():
        node = Workload("wait", loc=user_location(2), event=ev)
        _use_in_body(ev, "synchronize", node.loc)
        _add(node)
        return node
    _use_on_host(ev, "synchronize")
    if ev.signal_count <= ev.wait_count:
        raise DSLUsageError(
            f"synchronize({ev.name!r}) would wait forever: the event has no pending record "
            f"({ev.signal_count} recorded, {ev.wait_count} taken) and the host has no other thread to record it.",
            hint="Call record(event) first, or put record/synchronize inside process bodies so the simulator "
                 "orders them.")
    ev.wait_count += 1
    return None


# -- pipelines -------------------------------------------------------------------------------------------------------
class Pipeline(Workload):
    """Processes coupled by channels, made by ``connect``; compile() and execute() run it on the simulator."""

    def __init__(self, processes: tuple[Process, ...], channels: tuple[Channel[Any], ...],
                 loc: SourceLocation | None = None) -> None:
        super().__init__("connect", loc=loc, processes=processes, channels=channels)

    def __repr__(self) -> str:
        return f"<Pipeline {' -> '.join(p.name for p in self.processes)}>"


def channel_uses(node: Any) -> tuple[list[Channel[Any]], list[Channel[Any]], list[Event], list[Event]]:
    """Channels a body sends to and consumes from, and the Events it records and waits on (each once)."""
    sends: list[Any] = []
    consumes: list[Any] = []
    records: list[Any] = []
    waits: list[Any] = []

    def add(lst: list[Any], x: Any) -> None:
        if not any(x is y for y in lst):
            lst.append(x)

    def walk(n: Any) -> None:
        if not isinstance(n, Workload):
            return
        k = n.kind
        if k == "send":
            add(sends, n.channel)
            walk(n.value)
        elif k == "consume":
            add(consumes, n.channel)
            walk(n.body)
        elif k == "record":
            add(records, n.event)
        elif k == "wait":
            add(waits, n.event)
        elif k in ("parallel_for", "for_each", "select"):
            walk(n.body)
        elif k == "cond":
            walk(n.then)
            walk(n.otherwise)
        elif k in ("combine", "sequential"):
            for c in n.children:
                walk(c)
        elif k in ("pipe", "connect"):
            raise PipelineError("a pipeline cannot be nested inside a process body or another pipeline.",
                                hint="Connect all processes at one level with a single connect().", where=n.loc,
                                locate=n.loc is None)

    walk(node)
    return sends, consumes, records, waits


_LOOPS = {"parallel_for": "a P()/parallel_for loop", "for_each": "a for_each/P.seq loop",
          "select": "a select/P.sel loop"}


def check_consumes(body: Any, owner: str) -> None:
    """Each channel is consumed at most once per body, and never inside a loop (for_each, P(), select or another
    consume): a consume runs until its channel is closed and drained, so a second consume of it, or the loop's next
    iteration, would silently never see an item. The two branches of a cond may each consume it (one runs)."""
    def walk(n: Any, loop: Workload | None, seen: dict[int, Workload]) -> None:
        if not isinstance(n, Workload):
            return
        k = n.kind
        if k == "consume":
            ch = n.channel
            if loop is not None:
                raise _consume_in_loop(n, loop, owner)
            first = seen.get(id(ch))
            if first is not None:
                at = f" (first at {first.loc})" if first.loc is not None else ""
                raise DSLUsageError(
                    f"process '{owner}' consumes channel '{ch.name}' twice{at}: the first consume ends only when the "
                    "channel is closed and drained, so the second would never see an item.",
                    hint=f"Consume '{ch.name}' once and put all its per-item work in that consume's body.",
                    where=n.loc, locate=n.loc is None)
            seen[id(ch)] = n
            walk(n.body, n, seen)
        elif k in _LOOPS:
            walk(n.body, n, seen)
        elif k == "cond":
            then, otherwise = dict(seen), dict(seen)
            walk(n.then, loop, then)
            walk(n.otherwise, loop, otherwise)
            seen.update(then)
            seen.update(otherwise)
        elif k in ("combine", "sequential"):
            for c in n.children:
                walk(c, loop, seen)
        elif k == "send":
            walk(n.value, loop, seen)

    walk(body, None, {})


def _consume_in_loop(node: Workload, loop: Workload, owner: str) -> DSLUsageError:
    ch = node.channel
    if loop.kind == "consume":
        inside = (f"a consume of the same channel '{ch.name}'" if loop.channel is ch
                  else f"a consume of channel '{loop.channel.name}'")
    else:
        inside = _LOOPS[loop.kind]
    at = f" (at {loop.loc})" if loop.loc is not None else ""
    return DSLUsageError(
        f"consume('{ch.name}') inside {inside}{at} in process '{owner}': a consume runs until its channel is closed "
        "and drained, so it would take every item in the loop's first iteration and do nothing in the others.",
        hint=f"Put consume({ch.name}, lambda t: ...) at the top level of the process body (it already loops over "
             "every item) and the per-item work in its body; to take items from two channels in turn, give each "
             "channel its own process, or send both kinds of items into one channel.",
        where=node.loc, locate=node.loc is None)


def _flatten(items: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for it in items:
        if isinstance(it, (list, tuple)):
            out.extend(_flatten(it))
        else:
            out.append(it)
    return out


def check_wiring(procs: list[Process], listed: list[Channel[Any]] | None,
                 loc: SourceLocation | None) -> list[Channel[Any]]:
    """Verify a set of processes can run as a pipeline; return every channel, in first-use order."""
    def fail(what: str, hint: str) -> PipelineError:
        return PipelineError(what, hint=hint, where=loc, locate=loc is None)

    seen: dict[str, Process] = {}
    for p in procs:
        if not isinstance(p, Process):
            raise fail(f"connect() takes Process objects, got {type(p).__name__} {p!r}.",
                       "Build processes with process(name)...body(...) or Process(name)...body_func(...).")
        if p.name in seen:
            raise fail(f"two processes are named '{p.name}'.", "Give every process a unique name.")
        seen[p.name] = p
        if p.workload is None:
            raise fail(f"process '{p.name}' has no body.", f"Call .body(workload) or .body_func(fn) on '{p.name}'.")
    channels: list[Channel[Any]] = []
    by_name: dict[str, Channel[Any]] = {}
    first_user: dict[str, str] = {}

    def note(c: Channel[Any], user: str) -> None:
        other = by_name.get(c.name)
        if other is not None and other is not c:
            raise fail(f"two different channels are named '{c.name}' (one {first_user[c.name]}, the other {user}).",
                       "Give every channel a unique name.")
        if other is None:
            by_name[c.name] = c
            first_user[c.name] = user
            channels.append(c)

    for c in listed or []:
        if not isinstance(c, Channel):
            raise fail(f"connect() channel list holds {type(c).__name__} {c!r}, not a Channel.",
                       "Pass Channel objects: connect([p1, p2], [ch]).")
        note(c, "in connect()'s channel list")
    events: dict[str, tuple[Event, str]] = {}

    def note_event(ev: Event, user: str) -> None:
        # Deadlock reports name events only by name, so two Events called "e" would make them ambiguous.
        other = events.get(ev.name)
        if other is not None and other[0] is not ev:
            raise fail(f"two different events are named '{ev.name}' (one {other[1]}, the other {user}).",
                       "Give every Event a unique name, or use the same Event object in both processes if they "
                       "should synchronise with each other.")
        if other is None:
            events[ev.name] = (ev, user)

    for p in procs:
        check_consumes(p.workload, p.name)
        sends, consumes, records, waits = channel_uses(p.workload)
        for c in list(p.consumes) + list(p.produces) + sends + consumes:
            note(c, f"used by process '{p.name}'")
        for ev in records:
            note_event(ev, f"recorded by process '{p.name}'")
        for ev in waits:
            note_event(ev, f"waited on by process '{p.name}'")
        for c in sends:
            if not any(c is d for d in p.produces):
                raise fail(f"process '{p.name}' sends to channel '{c.name}' but does not declare it.",
                           f"Add .produces({c.name}) to process '{p.name}'.")
        for c in consumes:
            if not any(c is d for d in p.consumes):
                raise fail(f"process '{p.name}' consumes channel '{c.name}' it did not declare.",
                           f"Add .consumes({c.name}) to process '{p.name}'.")
        for c in p.consumes:
            if not any(c is d for d in consumes):
                raise fail(f"process '{p.name}' declares it consumes channel '{c.name}' but its body never "
                           "consumes it, so its producer would block forever.",
                           f"Add consume({c.name}, lambda t: ...) to the body, or drop .consumes({c.name}).")
    if listed is not None:
        for c in channels:
            if not any(c is d for d in listed):
                users = [p.name for p in procs if any(c is d for d in list(p.consumes) + list(p.produces))]
                raise fail(f"channel '{c.name}' is used by process '{users[0] if users else '?'}' but is missing "
                           "from connect()'s channel list.", f"Add {c.name} to the channel list.")
    for c in channels:
        producers = [p for p in procs if any(c is d for d in p.produces)]
        consumers = [p for p in procs if any(c is d for d in p.consumes)]
        if not producers:
            who = f"process '{consumers[0].name}' consumes it" if consumers else "no process uses it"
            raise fail(f"channel '{c.name}' has no producer ({who}).",
                       f"Add a process with .produces({c.name}) that sends to it.")
        if not consumers:
            raise fail(f"channel '{c.name}' has no consumer (process '{producers[0].name}' produces it); its "
                       f"producer would block once {c.depth} slot(s) fill.",
                       f"Add a process with .consumes({c.name}) and consume({c.name}, ...).")
        groups = {p.replica_of or p.name for p in consumers}
        if len(groups) > 1:
            names = " and ".join(f"'{p.name}'" for p in consumers)
            raise fail(f"channel '{c.name}' is consumed by two processes ({names}); each item would go to only one "
                       "of them.", "Give each consumer its own channel, or use replicate() for a worker pool.")
    _check_cycles(procs, channels, fail)
    for c in channels:
        if c.depth == 0:
            raise fail(f"channel '{c.name}' has depth 0: data channels need at least one buffer slot "
                       "(depth 0 is for Events).", f"Use Channel(name={c.name!r}, depth=1) or more (2 double-buffers).")
    return channels


def _check_cycles(procs: list[Process], channels: list[Channel[Any]], fail: Callable[[str, str], Exception]) -> None:
    """Reject a cycle of processes whose channels hold no slots at all: nothing could ever move."""
    edges: dict[str, list[tuple[str, Channel[Any]]]] = {p.name: [] for p in procs}
    for c in channels:
        if c.depth != 0:
            continue
        for p in procs:
            if any(c is d for d in p.produces):
                for q in procs:
                    if any(c is d for d in q.consumes):
                        edges[p.name].append((q.name, c))
    state: dict[str, int] = {}
    path: list[tuple[str, Channel[Any] | None]] = []  # (process, the channel that led to it) from the DFS root

    def visit(n: str, via: Channel[Any] | None) -> None:
        state[n] = 1
        path.append((n, via))
        for m, c in edges[n]:
            if state.get(m) == 1:
                cyc = path[next(i for i, (x, _) in enumerate(path) if x == m):]
                names = " -> ".join([x for x, _ in cyc] + [m])
                chans = ", ".join(f"'{ch.name}'" for _, ch in cyc[1:] if ch is not None) + \
                    (", " if len(cyc) > 1 else "") + f"'{c.name}'"
                raise fail(f"the processes {names} form a cycle whose channels ({chans}) have total depth 0, so "
                           "no process in it can ever send.", "Give at least one channel on the cycle depth >= 1.")
            if state.get(m) is None:
                visit(m, c)
        path.pop()
        state[n] = 2

    for p in procs:
        if state.get(p.name) is None:
            visit(p.name, None)


def connect(*args: Any) -> Pipeline:
    """Compose processes into a Pipeline and verify the wiring: ``connect(p1, p2, p3)`` or
    ``connect([p1, p2, p3], [ch1, ch2])`` (nested lists from replicate() are flattened)."""
    loc = user_location(2)
    listed: list[Channel[Any]] | None = None
    if len(args) == 2 and isinstance(args[0], (list, tuple)) and isinstance(args[1], (list, tuple)) and \
            all(isinstance(c, Channel) for c in _flatten(args[1])):
        procs, listed = _flatten(args[0]), _flatten(args[1])
    else:
        procs = _flatten(args)
    if not procs:
        raise PipelineError("connect() needs at least one process.", hint="Write connect(loader, computer, storer).",
                            where=loc, locate=False)
    channels = check_wiring(procs, listed, loc)
    pipe = Pipeline(tuple(procs), tuple(channels), loc)
    _add(pipe)
    return pipe


def _nested_pipeline(node: Any) -> Workload | None:
    """The first pipe/connect node inside ``node`` (a stage of a P.pipe() block), else None."""
    if not isinstance(node, Workload):
        return None
    if node.kind in ("pipe", "connect"):
        return node
    f = node.fields
    for child in [f.get("value"), f.get("body"), f.get("then"), f.get("otherwise"), *f.get("children", ())]:
        found = _nested_pipeline(child)
        if found is not None:
            return found
    return None


def _outside_user(c: Channel[Any], sends: bool) -> Workload | None:
    """A statement already built in a block enclosing the current P.pipe() that sends to (``sends``) or consumes
    ``c``: the other end of a channel the pipe block lacks is outside it, typically in an enclosing P.pipe()."""
    st = _state.get()
    for frame in (st.frames if st is not None else []):
        for node in frame:
            try:
                uses = channel_uses(node)
            except PipelineError:  # an earlier, complete pipeline: its channels are its own
                continue
            if any(c is d for d in uses[0 if sends else 1]):
                return node
    return None


def pipe_pipeline(stages: list[Workload], loc: SourceLocation | None) -> Workload:
    """The node ``with P.pipe():`` builds: each top-level statement is one stage process."""
    nest_hint = ("Put every stage directly under one `with P.pipe():` block (pipelines cannot nest), or build "
                 "processes and connect() them.")
    for stage in stages:
        inner = _nested_pipeline(stage)
        if inner is not None:
            raise DSLUsageError("pipelines cannot nest: a `with P.pipe():` block (or connect()) sits inside "
                                "another `with P.pipe():` block.", hint=nest_hint, where=inner.loc or loc,
                                locate=(inner.loc or loc) is None)
    procs = []
    for i, stage in enumerate(stages):
        sends, consumes, _, _ = channel_uses(stage)
        procs.append(Process(f"stage{i}", consumes, sends, stage))
    # A channel with one end inside this block and the other in a statement built before it in an enclosing block
    # (an outer P.pipe() whose inner block closes first) would otherwise be reported as "no producer/consumer".
    for p in procs:
        for c, sends in [(c, True) for c in p.consumes] + [(c, False) for c in p.produces]:
            if any(any(c is d for d in (q.produces if sends else q.consumes)) for q in procs):
                continue
            outside = _outside_user(c, sends)
            if outside is not None:
                at = f" (at {outside.loc}: `{outside.loc.code}`)" if outside.loc is not None else ""
                raise DSLUsageError(
                    f"channel '{c.name}' is {'consumed' if sends else 'sent to'} inside this `with P.pipe():` block "
                    f"but {'sent to' if sends else 'consumed'} by a statement outside it{at}; a pipeline's stages "
                    "must all be top-level statements of one `with P.pipe():` block, and pipelines cannot nest.",
                    hint=nest_hint, where=loc, locate=loc is None)
    try:
        channels = check_wiring(procs, None, loc) if procs else []
    except PipelineError as e:
        st = _state.get()
        if st is None or len(st.frames) <= 1:
            raise
        # Inside another block (a loop, P.when, or an outer P.pipe() whose later stages are not built yet).
        raise PipelineError(e.what, hint=f"{e.hint} If this `with P.pipe():` is inside another one: pipelines "
                            "cannot nest; put all stages in one block.", where=e.where, context=e.context,
                            locate=False) from None
    return Workload("pipe", loc=loc, processes=tuple(procs), channels=tuple(channels))


__all__ = ["Channel", "Process", "process", "replicate", "send", "consume", "connect", "Pipeline", "Event",
           "record", "query", "synchronize", "try_send", "send_nowait", "channel_uses"]
