"""Wiring processes into a pipeline: connect() and ``with P.pipe():``, and the checks that refuse wiring that cannot
run (undeclared or unused channels, two consumers, no producer, an event no process records, 0-depth cycles,
duplicate names)."""
from __future__ import annotations

import numbers
from typing import Any, Callable, Iterable

from ..errors import DSLUsageError, PipelineError, PtortError, PtortTypeError, SourceLocation, user_location
from .builder import active_builder, add, adopt
from .csp import MAX_REPLICAS, Channel, Event, Process, check_consumes
from .tree import NodeKind, Workload, channel_ends, nesting_named, set_wiring_check, walk
from .user_code import check_arity, run_user_body

Fail = Callable[[str, str], PipelineError]
Ends = dict[int, tuple[tuple[Any, ...], tuple[Any, ...]]]


class Pipeline(Workload):
    """Processes coupled by channels, made by ``connect``; compile() and execute() run it on the simulator."""

    __slots__ = ("wired_state",)  # the wiring_state connect() checked (compile() checks again only what changed)
    wired_state: tuple[Any, ...]

    def __init__(self, processes: tuple[Process, ...], channels: tuple[Channel[Any], ...],
                 loc: SourceLocation | None = None) -> None:
        Workload.__init__(self, NodeKind.CONNECT, loc=loc, _wired=True, processes=processes, channels=channels)
        object.__setattr__(self, "wired_state", wiring_state(self))

    def __repr__(self) -> str:
        return f"<Pipeline {' -> '.join(p.name for p in self.processes)}>"


def channel_uses(node: Any) -> tuple[list[Channel[Any]], list[Channel[Any]], list[Event], list[Event]]:
    """Channels a body sends to and consumes from, and the Events it records and waits on (each once, in program
    order)."""
    found: dict[str, list[Any]] = {"sends": [], "consumes": [], "records": [], "waits": []}
    if not isinstance(node, Workload):
        return [], [], [], []
    for n in walk(node):
        if n.is_pipeline:
            raise PipelineError("a pipeline cannot be nested inside a process body or another pipeline.",
                                hint="Connect all processes at one level with a single connect().", where=n.loc,
                                locate=n.loc is None)
        for role, seen in found.items():
            for x in n.uses(role):
                if not any(x is y for y in seen):
                    seen.append(x)
    return found["sends"], found["consumes"], found["records"], found["waits"]


def _flatten(items: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for it in items:
        if isinstance(it, (list, tuple)):
            out.extend(_flatten(it))
        else:
            out.append(it)
    return out


class _Names:
    """Channels and events by name, in first-use order: two different objects with one name are refused (reports
    name them only by name)."""

    def __init__(self, fail: Fail) -> None:
        self.fail = fail
        self.channels: list[Channel[Any]] = []
        self._channels: dict[str, tuple[Channel[Any], str]] = {}
        self._events: dict[str, tuple[Event, str]] = {}

    def channel(self, c: Channel[Any], user: str) -> None:
        """Note channel ``c``, used by ``user`` ("used by process 'p'")."""
        other = self._channels.get(c.name)
        if other is not None and other[0] is not c:
            raise self.fail(f"two different channels are named '{c.name}' (one {other[1]}, the other {user}).",
                            "Give every channel a unique name.")
        if other is None:
            self._channels[c.name] = (c, user)
            self.channels.append(c)

    def event(self, ev: Event, user: str) -> None:
        """Note event ``ev``, recorded or waited on by ``user``."""
        other = self._events.get(ev.name)
        if other is not None and other[0] is not ev:
            raise self.fail(f"two different events are named '{ev.name}' (one {other[1]}, the other {user}).",
                            "Give every Event a unique name, or use the same Event object in both processes if they "
                            "should synchronise with each other.")
        if other is None:
            self._events[ev.name] = (ev, user)


def _check_processes(procs: list[Any], fail: Fail) -> None:
    """Process objects, uniquely named, each with a body."""
    seen: dict[str, Process] = {}
    for p in procs:
        if not isinstance(p, Process):
            raise fail(f"connect() takes Process objects, got {type(p).__name__} {p!r}.",
                       "Build processes with process(name)...body(...) or Process(name)...body_func(...).")
        if seen.get(p.name) is p:
            raise fail(f"process '{p.name}' is listed twice; a process runs once in a pipeline.",
                       f"List each process once: drop the second '{p.name}'.")
        if p.name in seen:
            raise fail(f"two processes are named '{p.name}'.", "Give every process a unique name.")
        seen[p.name] = p
        if p.workload is None:
            raise fail(f"process '{p.name}' has no body.", f"Call .body(workload) or .body_func(fn) on '{p.name}'.")


def _check_declared(p: Process, sends: list[Channel[Any]], consumes: list[Channel[Any]], fail: Fail) -> None:
    """What a body sends to and consumes is what its process declares, and every declared consume happens."""
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


def _check_sends(p: Process, sends: list[Channel[Any]], fail: Fail) -> None:
    """Every channel a process declares it produces is sent to somewhere in its body (a send in one branch of a cond
    counts): else its consumer would silently never run."""
    for c in p.produces:
        if not any(c is d for d in sends):
            raise fail(f"process '{p.name}' declares it produces channel '{c.name}' but its body never sends to it, "
                       "so its consumer would never get an item and its work would silently not run.",
                       f"Send each item: send({c.name}, k[t](...)) runs the task into a buffer slot and passes its "
                       f"token on (for_each(Dense[n](), lambda t: send({c.name}, k[t](...)))); or drop "
                       f".produces({c.name}).")


def _check_ends(channels: list[Channel[Any]], ends: Ends, fail: Fail) -> None:
    """Every channel has a producer and one consumer (or one pool of replicas)."""
    for c in channels:
        producers, consumers = ends.get(id(c), ((), ()))
        if not producers:
            who = f"process '{consumers[0].name}' consumes it" if consumers else "no process uses it"
            raise fail(f"channel '{c.name}' has no producer ({who}).",
                       f"Add a process with .produces({c.name}) that sends to it.")
        if not consumers:
            raise fail(f"channel '{c.name}' has no consumer (process '{producers[0].name}' produces it); its "
                       f"producer would block once {c.depth} slot(s) fill.",
                       f"Add a process with .consumes({c.name}) and consume({c.name}, ...).")
        if len({p.replica_of or p.name for p in consumers}) > 1:
            names = " and ".join(f"'{p.name}'" for p in consumers)
            raise fail(f"channel '{c.name}' is consumed by two processes ({names}); each item would go to only one "
                       "of them.", "Give each consumer its own channel, or use replicate() for a worker pool.")
        if c.tile is not None:
            _check_tile_ends(c, producers, consumers, fail)


def _check_tile_ends(c: Channel[Any], producers: tuple[Any, ...], consumers: tuple[Any, ...], fail: Fail) -> None:
    """A tile channel's slots are one producer's and one consumer's (item k sits in slot k % depth of both)."""
    for role, procs in (("produced", producers), ("consumed", consumers)):
        if len(procs) > 1:
            names = " and ".join(f"'{p.name}'" for p in procs)
            raise fail(f"tile channel '{c.name}' is {role} by {len(procs)} processes ({names}); a tile channel has "
                       "exactly one producer and one consumer, since item k of each sits in buffer slot k % depth.",
                       "Give each process its own tile channel (and join them with consume([a, b], ...)), or make "
                       f"'{c.name}' a token channel (no tile=) whose data lives in a Tensor.")


def check_wiring(procs: list[Process], listed: list[Channel[Any]] | None,
                 loc: SourceLocation | None) -> list[Channel[Any]]:
    """Verify a set of processes can run as a pipeline; return every channel, in first-use order."""
    def fail(what: str, hint: str) -> PipelineError:
        return PipelineError(what, hint=hint, where=loc, locate=loc is None)

    _check_processes(procs, fail)
    names = _Names(fail)
    sent_to: dict[str, list[Channel[Any]]] = {}  # process -> the channels its body sends to
    recorded: list[Event] = []  # the events the processes' bodies record
    waits_of: dict[str, list[Event]] = {}  # process -> the events its body synchronizes on
    for c in listed or []:
        if not isinstance(c, Channel):
            raise fail(f"connect() channel list holds {type(c).__name__} {c!r}, not a Channel.",
                       "Pass Channel objects: connect([p1, p2], [ch]).")
        names.channel(c, "in connect()'s channel list")
    uses_of: dict[int, tuple[list[Any], ...]] = {}  # id(body) -> what it uses (replicas share one body)
    for p in procs:
        uses = uses_of.get(id(p.workload))
        if uses is None:
            with nesting_named(p.workload):  # (a body chain built up in a loop, met from a deep stack)
                check_consumes(p.workload, p.name)
                uses = uses_of[id(p.workload)] = channel_uses(p.workload)
        sends, consumes, records, waits = uses
        for c in list(p.consumes) + list(p.produces) + sends + consumes:
            names.channel(c, f"used by process '{p.name}'")
        for ev in records:
            names.event(ev, f"recorded by process '{p.name}'")
        for ev in waits:
            names.event(ev, f"waited on by process '{p.name}'")
        _check_declared(p, sends, consumes, fail)
        sent_to[p.name] = sends
        recorded += records
        waits_of[p.name] = waits
    for p in procs:  # after every process's own checks, so a missing consume is named before a missing send
        _check_sends(p, sent_to[p.name], fail)
    ends = channel_ends(procs)
    for c in names.channels if listed is not None else []:
        if not any(c is d for d in listed or []):
            made, used = ends.get(id(c), ((), ()))
            users = sorted(made + used, key=procs.index)
            raise fail(f"channel '{c.name}' is used by process '{users[0].name if users else '?'}' but is missing "
                       "from connect()'s channel list.", f"Add {c.name} to the channel list.")
    _check_ends(names.channels, ends, fail)
    _check_recorded(procs, recorded, waits_of)
    _check_cycles(procs, names.channels, ends, fail)
    for c in names.channels:
        if c.depth == 0:
            raise fail(f"channel '{c.name}' has depth 0: data channels need at least one buffer slot "
                       "(depth 0 is for Events).", f"Use Channel(name={c.name!r}, depth=1) or more (2 double-buffers).")
    return names.channels


def _reference_pipeline(kind: NodeKind, processes: Any, channels: Any,
                        loc: SourceLocation | None) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """The checks of ``connect(processes, channels)`` for the reference constructor ``Workload("connect" or "pipe",
    processes=[...], channels=[...])``; returns the processes and channels (nested lists flattened)."""
    for field, value in (("processes", processes), ("channels", channels)):
        if not isinstance(value, (list, tuple)):
            raise PtortTypeError(f"Workload({str(kind)!r}) field {field}= must be a list, got {type(value).__name__} "
                                 f"{value!r}.", hint="Write connect(processes=[p1, p2], channels=[ch]) (or "
                                                     "Workload('connect', processes=[p1, p2], channels=[ch])).",
                                 where=loc, locate=loc is None)
    procs = _flatten(processes)
    if not procs and kind is NodeKind.CONNECT:
        raise PipelineError(f"Workload({str(kind)!r}, processes=[], ...) needs at least one process, as connect() "
                            "does.", hint="Pass processes=[loader, computer, storer], or write connect(loader, "
                                          "computer, storer).", where=loc, locate=loc is None)
    checked = check_wiring(procs, _flatten(channels), loc) if procs else []
    return tuple(procs), tuple(checked)


def wiring_state(pipe: Workload) -> tuple[Any, ...]:
    """What a pipeline's wiring checks read that stays changeable after connect(): each process's name, body and
    declared channels, and each channel's name (a channel's depth is checked when it is set). Equal states
    (Process, Workload and Channel objects compare by identity) need no second check."""
    return (tuple((p.name, p.workload, tuple(p.consumes), tuple(p.produces)) for p in pipe.processes),
            tuple(c.name for c in pipe.channels))


def check_pipeline(pipe: Workload, where: SourceLocation | None,
                   checked: tuple[Any, ...] | None = None) -> tuple[Any, ...]:
    """Check a pipeline as it is now, as it is compiled or run: its Process objects can change after connect()
    checked them (a body set again, .consumes/.produces edited, a renamed process), so they get connect()'s checks
    again, and the wiring must still be the one the pipeline was built with (its channels and their ends). Returns
    the state checked: a pipeline whose state is still the one connect() or the caller (``checked``) checked is not
    checked again (a tuple per process, where the checks walk every body)."""
    state = wiring_state(pipe)
    if state == checked or state == getattr(pipe, "wired_state", None):
        return state
    built = "connect()" if pipe.kind is NodeKind.CONNECT else "`with P.pipe():`"
    at = f" (at {pipe.loc})" if pipe.loc is not None else ""
    changed = (f"{built} checked this pipeline when it built it{at}, and a process of it has changed since (its "
               "body set again, its .consumes/.produces edited, or it was renamed).")
    fix = (f"A pipeline runs the Process objects {built} was given, as they are when it runs: change them before "
           "connecting them, or connect() them again after the change and compile that pipeline.")
    procs = list(pipe.processes)
    try:
        channels = check_wiring(procs, None, where)
    except PtortError as e:
        raise type(e)(f"{e.what} {changed}", hint=f"{e.hint} {fix}".strip(), where=e.where, context=e.context,
                      locate=False) from None
    wired = {id(c) for c in pipe.channels}
    ends = channel_ends(procs)
    for c in channels:
        if id(c) not in wired:
            user = next(p for p in procs if any(c is d for d in list(p.consumes) + list(p.produces)))
            raise PipelineError(f"process '{user.name}' now uses channel '{c.name}', which is not a channel of this "
                                f"pipeline ({', '.join(repr(d.name) for d in pipe.channels) or 'none'}): {changed}",
                                hint=fix, where=where, locate=where is None)
    for c in pipe.channels:
        old, new = pipe.ends.get(id(c), ((), ())), ends.get(id(c), ((), ()))
        if old != new:  # (tuples of Process objects: compared by identity)
            raise PipelineError(f"channel '{c.name}' now goes from {_who(new[0])} to {_who(new[1])}, but {built} "
                                f"wired it from {_who(old[0])} to {_who(old[1])}: {changed}", hint=fix, where=where,
                                locate=where is None)
    return state


def _who(procs: tuple[Any, ...]) -> str:
    return " and ".join(f"'{p.name}'" for p in procs) or "no process"


def _check_recorded(procs: list[Process], recorded: list[Event], waits_of: dict[str, list[Event]]) -> None:
    """Every Event a process synchronizes on is recorded by a process of the pipeline: a run starts with no signals
    (a host record() cannot release a body's synchronize, nor can another pipeline's record), so a synchronize on an
    event none of them records would wait forever, as a consume of a channel with no producer would."""
    for p in procs:
        for ev in waits_of[p.name]:
            if any(ev is r for r in recorded):
                continue
            body = p.workload
            assert body is not None  # (_check_processes refused a process with no body)
            wait = next(n for n in walk(body) if any(ev is e for e in n.uses("waits")))
            raise PipelineError(
                f"process '{p.name}' synchronizes on Event '{ev.name}', but no process of this pipeline records it, "
                "so it would wait forever: a pipeline run starts with no signals, and only its own processes' "
                "record() steps signal it.",
                hint=f"Record it inside the pipeline: add record({ev.name}) to the body of the process that should "
                     f"release '{p.name}' (a process passed to the same connect(), or a stage of the same `with "
                     "P.pipe():` block); or drop the synchronize.",
                where=wait.loc, locate=wait.loc is None)


def _check_cycles(procs: list[Process], channels: list[Channel[Any]], ends: Ends, fail: Fail) -> None:
    """Reject a cycle of processes whose channels hold no slots at all: nothing could ever move."""
    edges: dict[str, list[tuple[str, Channel[Any]]]] = {p.name: [] for p in procs}
    for c in channels:
        if c.depth == 0:
            made, used = ends.get(id(c), ((), ()))
            for p in made:
                edges[p.name] += [(q.name, c) for q in used]
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


_CONNECT_FORMS = ("connect(p1, p2, p3), connect([p1, p2, p3], [ch1, ch2]) or, with the reference's parameter names, "
                  "connect(processes=[p1, p2, p3], channels=[ch1, ch2])")


def connect(*args: Any, **keywords: Any) -> Pipeline:
    """Compose processes into a Pipeline and verify the wiring: ``connect(p1, p2, p3)`` or
    ``connect([p1, p2, p3], [ch1, ch2])`` (nested lists from replicate() are flattened), or with the reference's
    parameter names ``connect(processes=[...], channels=[...])``."""
    loc = user_location()
    listed: list[Channel[Any]] | None = None
    if keywords:
        procs, listed = _connect_keywords(args, keywords, loc)
    elif len(args) == 2 and isinstance(args[0], (list, tuple)) and isinstance(args[1], (list, tuple)) and \
            all(isinstance(c, Channel) for c in _flatten(args[1])):
        procs, listed = _flatten(args[0]), _flatten(args[1])
    else:
        procs = _flatten(args)
    if not procs:
        raise PipelineError("connect() needs at least one process.", hint="Write connect(loader, computer, storer).",
                            where=loc, locate=False)
    channels = check_wiring(procs, listed, loc)
    pipe = Pipeline(tuple(procs), tuple(channels), loc)
    add(pipe)
    return pipe


def _connect_keywords(args: tuple[Any, ...], keywords: dict[str, Any],
                      loc: SourceLocation | None) -> tuple[list[Any], list[Any] | None]:
    """The processes and listed channels of ``connect(processes=..., channels=...)`` (the reference's signature
    ``connect(processes, channels)``), either by keyword or the processes positionally."""
    unknown = sorted(set(keywords) - {"processes", "channels"})
    if unknown:
        raise PtortTypeError(f"connect() got unknown keyword argument(s) {unknown}.",
                             hint=f"Write {_CONNECT_FORMS}.", where=loc, locate=False)
    if "processes" in keywords and args:
        raise PtortTypeError(f"connect() got the processes twice: {len(args)} positionally and processes=.",
                             hint=f"Pass them one way: {_CONNECT_FORMS}.", where=loc, locate=False)
    processes = keywords["processes"] if "processes" in keywords else args
    channels = keywords.get("channels")
    procs = _flatten(processes if isinstance(processes, (list, tuple)) else [processes])
    return procs, None if channels is None else _flatten(channels if isinstance(channels, (list, tuple))
                                                         else [channels])


def _outside_user(c: Channel[Any], sends: bool) -> Workload | None:
    """A statement already built in a block enclosing the current P.pipe() that sends to (``sends``) or consumes
    ``c``: the other end of a channel the pipe block lacks is outside it, typically in an enclosing P.pipe()."""
    st = active_builder()
    for frame in (st.frames if st is not None else []):
        for node in frame:
            try:
                uses = channel_uses(node)
            except PipelineError:  # an earlier, complete pipeline: its channels are its own
                continue
            if any(c is d for d in uses[0 if sends else 1]):
                return node
    return None


_NEST_HINT = ("Put every stage directly under one `with P.pipe():` block (pipelines cannot nest), or build "
              "processes and connect() them.")


def _check_stage_ends(procs: list[Process], loc: SourceLocation | None) -> None:
    """A channel with one end inside this P.pipe() block and the other in a statement built before it in an enclosing
    block (an outer P.pipe() whose inner block closes first) would otherwise be reported as "no producer/consumer"."""
    ends = channel_ends(procs)
    for p in procs:
        for c, wants_sender in [(c, True) for c in p.consumes] + [(c, False) for c in p.produces]:
            if ends.get(id(c), ((), ()))[0 if wants_sender else 1]:
                continue
            outside = _outside_user(c, wants_sender)
            if outside is not None:
                at = f" (at {outside.loc}: `{outside.loc.code}`)" if outside.loc is not None else ""
                raise DSLUsageError(
                    f"channel '{c.name}' is {'consumed' if wants_sender else 'sent to'} inside this `with P.pipe():` "
                    f"block but {'sent to' if wants_sender else 'consumed'} by a statement outside it{at}; a "
                    "pipeline's stages must all be top-level statements of one `with P.pipe():` block, and pipelines "
                    "cannot nest.", hint=_NEST_HINT, where=loc, locate=loc is None)


def pipe_pipeline(stages: list[Workload], loc: SourceLocation | None) -> Workload:
    """The node ``with P.pipe():`` builds: each top-level statement is one stage process."""
    for stage in stages:
        inner = next((n for n in walk(stage) if n.is_pipeline), None)
        if inner is not None:
            raise DSLUsageError("pipelines cannot nest: a `with P.pipe():` block (or connect()) sits inside "
                                "another `with P.pipe():` block.", hint=_NEST_HINT, where=inner.loc or loc,
                                locate=(inner.loc or loc) is None)
    procs = []
    for i, stage in enumerate(stages):
        sends, consumes, _, _ = channel_uses(stage)
        procs.append(Process(f"stage{i}", consumes, sends, stage))
    _check_stage_ends(procs, loc)
    try:
        channels = check_wiring(procs, None, loc) if procs else []
    except PipelineError as e:
        st = active_builder()
        if st is None or len(st.frames) <= 1:
            raise
        # Inside another block (a loop, P.when, or an outer P.pipe() whose later stages are not built yet).
        raise PipelineError(e.what, hint=f"{e.hint} If this `with P.pipe():` is inside another one: pipelines "
                            "cannot nest; put all stages in one block.", where=e.where, context=e.context,
                            locate=False) from None
    return Workload(NodeKind.PIPE, loc=loc, _wired=True, processes=tuple(procs), channels=tuple(channels))


# -- per_core: one independent pipeline per core ---------------------------------------------------------------------
def per_core(build: Callable[[int], Any], cores: int) -> Pipeline:
    """One copy of a pipeline per core, in one call: ``build(core)`` makes copy ``core`` (0 <= core < ``cores``) with
    its own processes and channels, and returns it (a ``connect()`` Pipeline, placed or not).

    Names that repeat across copies get ``@c<core>`` (``qk`` becomes ``qk@c3``); names a builder already made unique
    stay. Each copy runs on its own core: its placement names units of one core (0, or ``core`` itself), so
    ``{"qk": 0, "sm": (0, 1)}`` becomes ``{"qk@c3": 3, "sm@c3": (3, 1)}``, and a process it does not place runs on
    core ``core`` (its cube work on the AIC, its vector work on AIV0). Returns one Pipeline of every copy; more
    cores than the machine has is refused when it is compiled."""
    loc = user_location()

    def fail(what: str, hint: str) -> PipelineError:
        return PipelineError(f"per_core: {what}", hint=hint, where=loc, locate=loc is None)

    if not callable(build):
        raise fail(f"build must be a function of the core returning a Pipeline, got {type(build).__name__} "
                   f"{build!r}.", "Write per_core(lambda core: connect(...), cores=24), with fresh channels per call.")
    count: Any = cores  # any integer: a numpy integer (a sweep grid's value) counts as the int it holds
    if isinstance(count, bool) or not isinstance(count, numbers.Integral) or not 1 <= int(count) <= MAX_REPLICAS:
        raise fail(f"cores must be an int in 1..{MAX_REPLICAS}, got {cores!r}.",
                   "Give the number of copies, one per core, e.g. per_core(build, cores=24) on the 910B.")
    cores = int(count)
    check_arity(build, 1, "per_core calls build with the core number (one argument)",
                "per_core(lambda core: connect(...), cores=4)")
    copies = [_built_copy(build, core, fail) for core in range(cores)]
    _refuse_shared(copies, fail)
    _rename_repeated(copies)
    procs = [p for copy in copies for p in copy.processes]
    placement: dict[str, Any] = {}
    for core, copy in enumerate(copies):
        placement.update(_copy_placement(copy, core, fail))
    channels = check_wiring(procs, [c for copy in copies for c in copy.channels], loc)
    pipe = Pipeline(tuple(procs), tuple(channels), loc).place(placement)
    add(pipe)
    return pipe


def _built_copy(build: Callable[[int], Any], core: int, fail: Fail) -> Workload:
    """``build(core)``, checked to be a pipeline (taken out of an open builder frame: per_core adds the whole)."""
    copy = run_user_body(build, (core,), {}, f"the per_core builder (for core {core})")
    if not isinstance(copy, Workload) or not copy.is_pipeline:
        raise fail(f"build({core}) returned {type(copy).__name__} {copy!r}, not a pipeline.",
                   "Return the connect(...) of that copy's processes: per_core(lambda core: connect(a, b), cores=4).")
    adopt(copy)
    return copy


def _refuse_shared(copies: list[Workload], fail: Fail) -> None:
    """Copies are independent: a process, channel or Event object in two of them would couple them."""
    seen: dict[int, tuple[str, str, int]] = {}
    for core, copy in enumerate(copies):
        things = [("process", p) for p in copy.processes] + [("channel", c) for c in copy.channels] + \
            [("Event", ev) for ev in _events(copy)]
        for kind, x in things:
            first = seen.setdefault(id(x), (kind, x.name, core))
            if first[2] != core:
                raise fail(f"copies {first[2]} and {core} share the {kind} '{x.name}' (the same object): build "
                           "returned it twice, so the copies would not be independent.",
                           f"Create the {kind} inside build(core), so every call makes a fresh one (a {kind} made "
                           "outside the function, or a default argument, is shared by every copy).")


def _events(copy: Workload) -> list[Event]:
    found: list[Event] = []
    for p in copy.processes:
        _, _, records, waits = channel_uses(p.workload)
        found += [ev for ev in records + waits if not any(ev is e for e in found)]
    return found


def _rename_repeated(copies: list[Workload]) -> None:
    """A process, channel or Event name that appears in more than one copy becomes ``name@c<core>`` in each."""
    for group_of in (lambda w: list(w.processes), lambda w: list(w.channels), _events):
        groups = [group_of(copy) for copy in copies]
        counts: dict[str, int] = {}
        for things in groups:
            for name in {x.name for x in things}:
                counts[name] = counts.get(name, 0) + 1
        for core, things in enumerate(groups):
            for x in things:
                if counts[x.name] > 1:
                    x.name = f"{x.name}@c{core}"


def _copy_placement(copy: Workload, core: int, fail: Fail) -> dict[str, Any]:
    """Copy ``core``'s placement moved to core ``core``: every process on it, on the AIV its copy chose."""
    placed = copy.schedule.placement
    names = [p.name for p in copy.processes]
    if placed is None or placed == "shared":
        return {name: core for name in names}
    if not isinstance(placed, dict):
        raise fail(f"copy {core} is placed {placed!r}; a copy's placement is 'shared' or a dict process -> place.",
                   'Place a copy\'s processes on units of one core: .place({"qk": 0, "softmax": (0, 1)}).')
    out: dict[str, Any] = {}
    for p in copy.processes:
        original = p.name.rsplit(f"@c{core}", 1)[0] if p.name.endswith(f"@c{core}") else p.name
        value = placed.get(p.name, placed.get(original, core))
        where, aiv = (value[0], value[1]) if isinstance(value, (tuple, list)) and len(value) == 2 else (value, 0)
        if isinstance(where, bool) or not isinstance(where, numbers.Integral) or where not in (0, core):
            raise fail(f"copy {core} places process '{original}' on {value!r}; each copy runs on one core, its own "
                       f"(core {core}).",
                       "Place a copy's processes on core 0 (or the core build() was given), choosing the unit"
                       ': .place({"qk": 0, "softmax": (0, 1)}) puts softmax on AIV1 of the copy\'s core.')
        out[p.name] = (core, aiv) if aiv else core
    unknown = set(placed) - set(names) - {n.rsplit(f"@c{core}", 1)[0] for n in names}
    if unknown:
        raise fail(f"copy {core}'s placement names unknown process(es) {sorted(unknown)}.",
                   f"Its processes are {', '.join(names)}.")
    return out


set_wiring_check(_reference_pipeline)

__all__ = ["Pipeline", "channel_uses", "check_wiring", "check_pipeline", "wiring_state", "connect", "pipe_pipeline",
           "per_core"]
