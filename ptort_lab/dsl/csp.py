"""CSP: Channel, Process, send/consume, replicate, and Events (connect() and its wiring checks: ``wiring``).

Events are either host events or pipeline events, never both. On the host (outside any body) ``record`` counts a
signal at once, ``query`` says whether one is pending and ``synchronize`` takes one (or raises: nothing else could
record it). Inside process bodies ``record``/``synchronize`` are steps run in simulated time; every run starts with
no signals and drops them at its end, so host calls cannot see or feed them. Using one Event both ways raises
DSLUsageError at the second kind of use.
"""
from __future__ import annotations

from typing import Any, Callable, Generic, Iterable, Iterator, TypeVar

import numpy as np

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
from .axes import Dense, DenseDyn
from .builder import add, adopt, body_with_var, body_with_vars, call_body, in_builder
from .expr import BinaryExpr, Expr, LoopVar, NotExpr, evaluate, refuse_placeholders, refuse_unprintable
from .tasks import MAX_CYCLES
from .tree import BRANCHES, LOOPS, REPEATS, NodeKind, Workload, nesting_named, walk
from .types import Direction, ItemSlot, Tensor, TensorView, TileType, is_integer

T = TypeVar("T")

#: The most buffer slots a channel may have. A trace keeps a channel's depth as a JSON number, exact only up to
#: 2**53 (as it keeps times), and no buffer comes near it: slots past the items a channel carries are never used.
MAX_DEPTH = MAX_CYCLES


def _check_name(name: Any, what: str) -> str:
    if not isinstance(name, str) or not name:
        raise PtortTypeError(f"{what} name must be a non-empty string, got {name!r}.",
                             hint=f'Write {what}(name="load_to_compute", ...).')
    refuse_placeholders(name, f"{what}(name=...)")  # f"ch_{b}": a loop variable has no value while building
    refuse_unprintable(name, f"{what} name", f"{what}(name={{}}, ...)")
    return name


class Channel(Generic[T]):
    """A bounded FIFO between processes: ``Channel[Tensor](name="l2c", depth=2)``.

    ``depth`` is the number of buffer slots: a producer takes a free slot before it produces into it, and the
    consumer frees it when it has finished with the item (Ascend TQue semantics): depth 1 serialises producer and
    consumer, depth 2 double-buffers; it may be set again later (``ch.depth = 2``, an int >= 1, checked at that
    line). Tokens (tile indices) travel; the data stays in tensors. ``try_send``,
    ``size``, ``empty``, ``full`` and ``close`` act on a host-side buffer outside any simulation.

    ``Channel(name, depth=2, tile=Tile[r, c, dtype])`` is a tile channel: its items are tiles held in its buffer
    slots, and ``ch.item`` stands for the slot of the current item (``item``). Its slots stay on chip when its one
    producer and one consumer share a buffer (one core, same AIV or both on the AIC), else they are a ring of
    ``depth`` tiles in global memory that the channel owns.
    """

    def __class_getitem__(cls, item: Any) -> Any:
        """``Channel[T]``: the spec's form, ``T`` the type of the items (a hint, as typing's ``Generic`` takes it;
        ``Channel[T](...)`` makes a Channel). A value that is no type (``Channel[5]``) is refused here: Python's
        typing takes it silently (the reference's too)."""
        import types  # (only when a channel type is written)
        hint = 'Write Channel[Tensor](name="data_channel", depth=2) (the spec\'s form), or Channel(name=..., depth=2).'
        items = item if isinstance(item, tuple) else (item,)
        if len(items) != 1:
            raise PtortTypeError(f"Channel[T] takes one type parameter (the type of the channel's items), got "
                                 f"{len(items)}.", hint=hint)
        t = items[0]
        if not (t is None or isinstance(t, (type, str, TypeVar, TileType, types.GenericAlias, types.UnionType))
                or type(t).__module__ == "typing"):  # (Any, Union[...], list[int], a TypeVar, a forward reference)
            text = repr(t).replace("\n", " ")
            raise PtortTypeError(f"Channel[T] takes the type of the channel's items (Tensor, int, Any, ...), got "
                                 f"{type(t).__name__} {text if len(text) <= 80 else text[:77] + '...'}.", hint=hint)
        return super().__class_getitem__(item)  # type: ignore[misc]

    def __init__(self, name: str = "channel", depth: int = 1, tile: TileType | None = None) -> None:
        self.name = _check_name(name, "Channel")
        self.depth = _checked_depth(name, depth)
        self.loc = user_location()
        self.tile = _check_tile(name, tile, self.depth)
        self._ring: Tensor | None = None
        if self.tile is not None:  # the slots' storage: one tile per slot (placement decides on chip or in GM)
            self._ring = Tensor(shape=(self.depth, self.tile.rows, self.tile.cols), dtype=self.tile.dtype,
                                name=f"{name}.item")
            self._ring.loc = self.loc
            self._ring.ring_of = self
            self._item = TensorView(self._ring, (ItemSlot(self),))
        self._buffer: list[Any] = []
        self._open = True

    def __setattr__(self, name: str, value: Any) -> None:
        # ``depth`` stays a plain attribute (the reference's, and what a sweep's program key reads), set again with
        # the checks Channel(...) makes: ``pipe.channels[1].depth = 2``.
        if name == "depth" and "depth" in self.__dict__:
            value = self._new_depth(value)
        object.__setattr__(self, name, value)

    def _new_depth(self, value: Any) -> int:
        """A depth set after the channel was made: an int >= 1 (a pipeline runs with its channels' depths as they
        are when it is compiled and run), and a tile channel's stays the one its buffer was made with."""
        depth = _checked_depth(self.name, value)
        if depth == 0:  # (Channel(depth=0) is refused by connect(); a depth set later is refused here, at its line)
            raise PtortValueError(f"Channel '{self.name}' depth must be >= 1, got 0: data channels need at least one "
                                  "buffer slot (depth 0 is for Events).",
                                  hint=f"Set {self.name}.depth = 1 or more (2 double-buffers); to order processes "
                                       "without passing data, use an Event (record / synchronize).")
        if self.tile is not None and depth != self.depth:
            raise PtortValueError(f"Channel '{self.name}' is a tile channel: its depth ({self.depth}) is fixed when it "
                                  f"is made, since its buffer of {self.depth} tile slots is made then (and "
                                  f"{self.name}.item in the bodies built since refers to it), so it cannot become "
                                  f"{depth}.",
                                  hint=f"Make the channel with that depth, Channel({self.name!r}, depth={depth}, "
                                       "tile=...), and build the processes that use it again.")
        return depth

    @property
    def item(self) -> TensorView:
        """The buffer slot of the current item, as a kernel argument: in ``send(ch, k[t](..., dst=ch.item))`` the slot
        the send took, in ``consume(ch, lambda t: k2[t](src=ch.item, ...))`` the slot of the item being consumed
        (item number % depth; the item number counts this process's sends to, or items taken from, ``ch``)."""
        if self._ring is None:
            raise DSLUsageError(f"channel '{self.name}' carries tokens, not tiles, so it has no .item.",
                                hint=f"Make it a tile channel: Channel(name={self.name!r}, depth={self.depth or 2}, "
                                     "tile=Tile[rows, cols, dtype]); or keep the data in a Tensor and index it with "
                                     "the token.")
        return self._item

    def is_open(self) -> bool:
        """Whether sends are still accepted (``close()`` ends them)."""
        return self._open

    def size(self) -> int:
        """Items in the host-side buffer."""
        _host_only(self, "size()")
        return len(self._buffer)

    def empty(self) -> bool:
        """Whether the host-side buffer holds no item."""
        _host_only(self, "empty()")
        return not self._buffer

    def full(self) -> bool:
        """Whether every buffer slot of the host-side buffer is taken."""
        _host_only(self, "full()")
        return len(self._buffer) >= self.depth

    def close(self) -> None:
        """Refuse further sends (``try_send``/``send_nowait``, and ``send`` while building)."""
        _host_only(self, "close()")
        self._open = False

    def __repr__(self) -> str:
        tile = f", tile={self.tile}" if self.tile is not None else ""
        return f"Channel({self.name!r}, depth={self.depth}{tile})"


def _checked_depth(name: str, value: Any) -> int:
    """A channel's depth: an int in 0..MAX_DEPTH (a numpy integer is the int it holds)."""
    if not is_integer(value):
        raise PtortTypeError(f"Channel '{name}' depth must be an int, got {type(value).__name__} {value!r}.",
                             hint="Use depth=2.")
    depth = int(value)  # a numpy integer (np.arange, a sweep grid) is the int it holds
    if depth < 0:  # depth 0 is refused later, by connect() (a data channel) or _check_tile (a tile channel)
        raise PtortValueError(f"Channel '{name}' depth must be >= 0, got {depth}, and >= 1 to carry items in a "
                              "pipeline (connect() refuses depth 0: each item in flight needs a buffer slot).",
                              hint="depth is the number of buffer slots: 1 = no overlap, 2 = double buffering. "
                                   "To order processes without passing data, use an Event (record / "
                                   "synchronize).")
    if depth > MAX_DEPTH:
        raise PtortValueError(f"Channel '{name}' depth must be at most 2**53 = {MAX_DEPTH:,}, got "
                              f"{int_text(depth)}.",
                              hint="depth is the number of buffer slots: a few is typical (2 double-buffers); a "
                                   "depth as large as the number of items the channel carries never blocks its "
                                   "producer.")
    return depth


def int_text(value: int) -> str:
    """An int for a message: its digits, or how many there are when it is too long to show (str() refuses past
    4,300 digits)."""
    if value.bit_length() <= 100:  # up to 30 digits: readable
        return str(value)
    digits = len(str(abs(value))) if value.bit_length() < 14000 else "over 4000"
    return f"{'a negative' if value < 0 else 'an'} int of {digits} digits"


# A GM ring bigger than the modelled HBM is a depth or tile mistake (the 910B carries 64 GB; see types._HBM_BYTES).
_RING_LIMIT_BYTES = 64 * 2**30


def _check_tile(name: str, tile: Any, depth: int) -> TileType | None:
    """``tile=`` of a Channel: None (a token channel) or a TileType, with at least one slot and a ring that fits."""
    if tile is None:
        return None
    if not isinstance(tile, TileType):
        raise PtortTypeError(f"Channel '{name}' tile= must be a tile type such as Tile[64, 64, DType.F32], got "
                             f"{type(tile).__name__} {tile!r}.",
                             hint="Write Channel(name, depth=2, tile=Tile[rows, cols, dtype]) (the items' shape and "
                                  "dtype, as a kernel parameter is annotated).")
    checked: TileType = tile
    for field, size in (("rows", tile.rows), ("cols", tile.cols)):
        if not is_integer(size) or size < 1:
            raise PtortTypeError(f"Channel '{name}' tile= {tile} has {field}={size!r}; a tile's rows and cols are "
                                 "positive whole numbers.",
                                 hint="Write Channel(name, depth=2, tile=Tile[64, 64, DType.F32]).")
    if type(tile.rows) is not int or type(tile.cols) is not int:  # (numpy ints: the simulator takes plain ints)
        checked = TileType(int(tile.rows), int(tile.cols), tile.dtype, tile.location)
    if depth < 1:
        raise PtortValueError(f"Channel '{name}' carries tiles but has depth {depth}: its items live in its buffer "
                              "slots, so it needs at least one.",
                              hint="Use depth=1 (no overlap) or depth=2 (double buffering).")
    if depth * tile.nbytes > _RING_LIMIT_BYTES:
        raise PtortValueError(f"Channel '{name}' holds {depth} slots of {tile} ({tile.nbytes:,} bytes each): "
                              f"{depth * tile.nbytes:,} bytes, more than the modelled 910B's 64 GiB of HBM.",
                              hint="A tile channel's depth is its buffer: use a few slots (2 double-buffers).")
    return checked


def _host_only(ch: Channel[Any], api: str) -> None:
    """The host-side buffer is not part of any simulation: used while a body is being built, it would act once, now,
    and its answer would silently fix the body's structure (as ``query`` would)."""
    if in_builder():
        raise DSLUsageError(
            f"{ch.name}.{api} acts on channel '{ch.name}''s host-side buffer and cannot be used while a process body "
            "or workload is being built: it would run once, now, not as a step of the process in simulated time.",
            hint=f"Inside a body, send with send({ch.name}, k[t](...)) and take items with consume({ch.name}, "
                 "lambda t: ...); a channel ends when its producers finish. Use the host-side buffer only outside "
                 "@workload, process bodies and for_each/consume lambdas.")


def try_send(ch: Channel[Any], value: Any) -> bool:
    """Append to the channel's host-side buffer if a buffer slot is free; False when full; ChannelClosed when
    closed. Host-only: inside a process body, ``send`` is the step that sends."""
    return _host_send(ch, value, "try_send")


def send_nowait(ch: Channel[Any], value: Any) -> None:
    """Like try_send but raises ChannelFull instead of returning False."""
    if not _host_send(ch, value, "send_nowait"):
        raise ChannelFull(f"Channel '{ch.name}' is full ({len(ch._buffer)}/{ch.depth}).",
                          context=f"channel '{ch.name}'", hint="Consume from it first or give it a larger depth.")


def _host_send(ch: Channel[Any], value: Any, api: str) -> bool:
    if not isinstance(ch, Channel):
        raise PtortTypeError(f"{api} needs a Channel, got {ch!r}.", hint="Pass a Channel(...).")
    if in_builder():
        raise DSLUsageError(
            f"{api}({ch.name!r}, ...) is host-only: it appends to the channel's host-side buffer at once, so inside "
            "a process body or workload it would run now, while the body is being built, not as a step of the "
            "process.", hint=f"Use send({ch.name}, k[t](...)) in a process body: it takes a free buffer slot in "
                             "simulated time (waiting while the channel is full) and passes the token on.")
    if not ch.is_open():
        raise ChannelClosed(f"{api} on closed channel '{ch.name}'.", context=f"channel '{ch.name}'",
                            hint="Create a new channel, or do not close it before sending.")
    # (any Python value: the host-side buffer is a plain queue, as the reference's is; what a simulated send may
    # carry is checked by send())
    if len(ch._buffer) >= ch.depth:
        return False
    ch._buffer.append(value)
    return True


class ChannelList(list[Channel[Any]]):
    """The channels a process consumes or produces; calling it adds channels and returns the process. The list's own
    ways of adding (``append``, ``extend``, ``insert``, ``+=``, ``[i] = ...``) take Channels only, as the call does."""

    def __init__(self, owner: Process, what: str) -> None:
        super().__init__()
        self._owner, self._what = owner, what

    def __call__(self, *channels: Any) -> Process:
        for ch in channels:
            for c in (ch if isinstance(ch, (list, tuple)) else [ch]):
                self._checked(c, f".{self._what}()")
                if not any(c is x for x in self):
                    super().append(c)
        return self._owner

    def _checked(self, c: Any, api: str) -> Channel[Any]:
        if isinstance(c, Channel):
            return c
        owner = self._owner.name
        if isinstance(c, Event):
            raise PtortTypeError(f"process '{owner}' {api} takes Channels, got Event '{c.name}': a process does not "
                                 "declare the Events it uses.",
                                 hint=f"Put record({c.name}) / synchronize({c.name}) steps in the process bodies; "
                                      f".consumes / .produces list only the Channels a process takes items from or "
                                      "sends to.")
        raise PtortTypeError(f"process '{owner}' {api} takes Channels, got {c!r}.",
                             hint=f"Pass Channel objects: .{self._what}(ch), or .{self._what}.append(ch) with ch = "
                                  "Channel(name, depth=2) (not its name).")

    def append(self, c: Any) -> None:
        super().append(self._checked(c, f".{self._what}.append()"))

    def insert(self, index: Any, c: Any) -> None:
        super().insert(index, self._checked(c, f".{self._what}.insert()"))

    def extend(self, channels: Iterable[Any]) -> None:
        super().extend([self._checked(c, f".{self._what}.extend()") for c in channels])

    def __iadd__(self, channels: Iterable[Any]) -> ChannelList:  # type: ignore[override,misc]
        self.extend(channels)
        return self

    def __setitem__(self, index: Any, value: Any) -> None:
        api = f".{self._what}[{index!r}] = ..."
        if isinstance(index, slice):
            super().__setitem__(index, [self._checked(c, api) for c in value])
        else:
            super().__setitem__(index, self._checked(value, api))


class Process:
    """A named pipeline stage: ``Process("loader").produces(ch).body_func(fn)`` or
    ``process("loader").consumes(a).produces(b).body(workload)``.

    ``.consumes`` / ``.produces`` are lists of Channels that can also be called to add channels.

    ``.workload`` is the body workload (None until one is set). ``.body`` is the method that sets it, as in the spec's
    ``.body(...)`` form, so it is not the workload itself as the reference's ``Process.body`` record field is: read
    the body as ``proc.workload``.
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
        self.loc = user_location()
        if body is not None:
            self.body(body)

    def body(self, w: Workload) -> Process:
        """Set the process body to a workload (for_each/consume/send/task ...); returns the process. The body is then
        ``proc.workload`` (``proc.body`` stays this method)."""
        if not isinstance(w, Workload):
            raise PtortTypeError(f"process '{self.name}' .body() takes a workload, got {type(w).__name__} {w!r}.",
                                 hint="Use .body(for_each(...)) / .body(consume(...)), or .body_func(callable).")
        adopt(w)
        self._check_body(w)
        self.workload = w
        return self

    def body_func(self, fn: Callable[[], Any]) -> Process:
        """Set the body to what ``fn()`` builds (launches, sends, loops) or returns (a workload or a list)."""
        w = call_body(fn, api="body_func")
        self._check_body(w)
        self.workload = w
        return self

    def _check_body(self, w: Workload) -> None:
        with nesting_named(w):
            check_consumes(w, self.name)
            check_items(w, self.name)

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
    if not is_integer(n):
        raise PtortTypeError(f"replicate({proc.name!r}, n) needs an int n (the number of copies), got "
                             f"{type(n).__name__} {n!r}.", hint="Pass a whole number of copies: replicate(p, 4).")
    n = int(n)
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
    """Take a free buffer slot of ``ch``, run ``value`` (a task) into it, then pass its token to the consumer:
    ``token=`` if given, else the task's first axis value, else (a task launched without axes, the spec's
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
    if isinstance(token, (bool, np.bool_, float, complex, np.floating, np.complexfloating)):
        # a number that is no index, refused as send(ch, 1.5) is (it ran as a tile index where no tensor is indexed
        # by it); other objects travel and are checked where a task uses them, as a plain value's are
        what, _ = _not_an_item(token)
        raise PtortTypeError(f"send({ch.name!r}, ..., token=...) got {what}; a token is an int or a loop expression "
                             "(t, t + 1).", hint="Pass the tile index the consumer should receive: token=t (the loop "
                                                 "variable), an expression of it (token=t + 1) or an int.")
    if isinstance(value, Workload):
        adopt(value)
    node = Workload(NodeKind.SEND, loc=user_location(), channel=ch, value=value, token=token)
    add(node)
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
    if isinstance(value, (Workload, Expr)) or is_integer(value):
        return
    what, hint = _not_an_item(value)
    raise PtortTypeError(f"{api} got {what}; a send takes a task (k[t](...)), a body workload, or an int token.",
                         hint=hint)


_TOKEN_HINT = "Send the task that makes the item, send(ch, k[t](src=X[t], dst=Y[t])), or its tile index, send(ch, t)."


def _not_an_item(value: Any) -> tuple[str, str]:
    """How a send names a value that cannot be an item, and how to fix it."""
    from .ir import KernelIR, Value  # an error path only (kernel imports the builder: no import cycle at load)
    from .kernel import Kernel, KernelLaunch
    if isinstance(value, KernelIR):
        return (f"the traced KernelIR of kernel '{value.name}': a kernel called outside a @workload or process "
                "body is traced, not launched", "Launch it inside a body, where the call makes a task: for_each("
                "Dense[n](), lambda t: send(ch, k[t](src=X[t], dst=Y[t]))), or .body_func(lambda: send(ch, "
                "k(src=X[0], dst=Y[0]))).")
    if isinstance(value, Kernel):
        return (f"the kernel '{value.name}' itself, not a launch of it",
                f"Launch it: send(ch, {value.name}[t](...)) with its arguments.")
    if isinstance(value, KernelLaunch):
        return (f"{value.kernel.name}[...] without its arguments, which launches nothing",
                f"Call it: send(ch, {value.kernel.name}[t](src=X[t], dst=Y[t])).")
    if isinstance(value, (Tensor, TensorView)):
        return (f"the tensor {value!r}: channels carry tokens (tile indices), the data stays in tensors",
                "Send the task that writes the tile, send(ch, k[t](..., dst=Y[t])), and let the consumer read Y[t]; "
                "for tiles held in the channel's own buffer, make it a tile channel (tile=Tile[...]) and use "
                "ch.item.")
    if isinstance(value, Value):
        return (f"the traced tile value {value.type}: tl.* values live inside a kernel",
                "Store it from the kernel (tl.store(dst, v)) and send the task that runs the kernel.")
    if isinstance(value, (bool, np.bool_)):
        return f"the bool {value!r}, which is not a tile index", "Send an int token (0 or 1), or a task."
    if isinstance(value, (float, complex, np.floating, np.complexfloating)):
        return (f"the {type(value).__name__} {value!r}: tokens are tile indices, ints",
                "Send an int: send(ch, int(v)) when v is whole, or the loop variable t.")
    if isinstance(value, str):
        return f"the str {value!r}: tokens are tile indices, ints", _TOKEN_HINT
    return f"{type(value).__name__} {value!r}", _TOKEN_HINT


def consume(ch: Channel[Any] | list[Channel[Any]] | tuple[Channel[Any], ...], body: Callable[..., Any]) -> Workload:
    """For every token that arrives on ``ch``, run ``body(token)``; ends when the producers finished and the
    channel drained. The token's buffer slot is freed when the body has finished.

    ``consume([a, b], lambda ta, tb: ...)`` joins channels: it takes one token from each, in order, pairs the k-th
    tokens, runs the body (which may use ``a.item`` and ``b.item``, the k-th items of tile channels), then frees
    both slots, before it waits for any next token (so a split feeding a join runs at depth 1); it ends when every
    channel has closed, and one closing while another still delivers tokens is an error naming both counts."""
    if isinstance(ch, (list, tuple)):
        return _join(tuple(ch), body)
    if not isinstance(ch, Channel):
        raise PtortTypeError(f"consume() needs a Channel as first argument, got {type(ch).__name__} {ch!r}.",
                             hint="Write consume(ch, lambda t: task(...)), or consume([a, b], lambda ta, tb: ...) to "
                                  "join two channels.")
    loc = user_location()
    var, node_body = body_with_var(body, "consume")
    node = Workload(NodeKind.CONSUME, loc=loc, channel=ch, var=var, body=node_body)
    add(node)
    return node


def _join(chans: tuple[Any, ...], body: Callable[..., Any]) -> Workload:
    """The node of ``consume([a, b, ...], body)``: one body per k-th token of every channel."""
    loc = user_location()
    if not chans:
        raise PtortTypeError("consume([], ...) joins no channel.",
                             hint="Pass the channels to join: consume([a, b], lambda ta, tb: ...).", where=loc,
                             locate=False)
    for c in chans:
        if not isinstance(c, Channel):
            raise PtortTypeError(f"consume([...]) joins channels, but the list holds {type(c).__name__} {c!r}.",
                                 hint="Pass Channel objects: consume([a, b], lambda ta, tb: ...).", where=loc,
                                 locate=False)
    for i, c in enumerate(chans):
        if any(c is d for d in chans[:i]):
            raise DSLUsageError(f"consume([...]) lists channel '{c.name}' twice; a join takes one token from each "
                                "channel it lists.",
                                hint=f"List '{c.name}' once; to take two tokens of it at a time, send them as one.",
                                where=loc, locate=False)
    if len(chans) == 1:
        return consume(chans[0], body)
    variables, node_body = body_with_vars(body, "consume", len(chans))
    node = Workload(NodeKind.JOIN, loc=loc, channels=chans, vars=variables, body=node_body)
    add(node)
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
        if not is_integer(depth) or depth < 0:
            raise PtortValueError(f"Event '{name}' depth must be an int >= 0, got {depth!r}.", hint="Use depth=1.")
        self.depth = int(depth)
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
        where = user_location()
        ev._host_use = f"{api} at {where}" if where is not None else api


def record(ev: Event) -> Workload | None:
    """Signal ``ev``. Inside a process body it is a step of that process; on the host it counts at once."""
    _check_event(ev, "record")
    if in_builder():
        node = Workload(NodeKind.RECORD, loc=user_location(), event=ev)
        _use_in_body(ev, "record", node.loc)
        add(node)
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
        node = Workload(NodeKind.WAIT, loc=user_location(), event=ev)
        _use_in_body(ev, "synchronize", node.loc)
        add(node)
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


# How an error names the loop a consume sits in (a repeating kind missing here is named by its kind).
_LOOP_NAMES = {NodeKind.PARALLEL_FOR: "a P()/parallel_for loop", NodeKind.FOR_EACH: "a for_each/P.seq loop",
               NodeKind.SELECT: "a select/P.sel loop"}


def check_consumes(body: Any, owner: str) -> None:
    """Each channel is consumed at most once per body, and never inside a loop (for_each, P(), select or another
    consume): a consume runs until its channel is closed and drained, so a second consume of it, or the loop's next
    iteration, would silently never see an item. The two branches of a cond may each consume it (one runs)."""
    def visit(n: Workload, loop: Workload | None, seen: dict[int, Workload]) -> None:
        for ch in n.uses("consumes"):
            if loop is not None:
                raise _consume_in_loop(n, ch, loop, owner)
            first = seen.get(id(ch))
            if first is not None:
                at = f" (first at {first.loc})" if first.loc is not None else ""
                raise DSLUsageError(
                    f"process '{owner}' consumes channel '{ch.name}' twice{at}: the first consume ends only when the "
                    "channel is closed and drained, so the second would never see an item.",
                    hint=f"Consume '{ch.name}' once and put all its per-item work in that consume's body.",
                    where=n.loc, locate=n.loc is None)
            seen[id(ch)] = n
        if n.is_pipeline:
            return  # a nested pipeline is refused by the wiring check, which names it
        inner = n if n.kind in REPEATS else loop
        if n.kind in BRANCHES:  # alternatives: each branch sees the consumes before the branch, not its sibling's
            branches = [dict(seen) for _ in n.children()]
            for child, branch in zip(n.children(), branches):
                visit(child, inner, branch)
            for branch in branches:
                seen.update(branch)
            return
        for child in n.children():
            visit(child, inner, seen)

    if isinstance(body, Workload):
        visit(body, None, {})


def _consume_in_loop(node: Workload, ch: Channel[Any], loop: Workload, owner: str) -> DSLUsageError:
    if loop.kind in (NodeKind.CONSUME, NodeKind.JOIN):
        used = loop.uses("consumes")
        if any(ch is c for c in used):
            inside = f"a consume of the same channel '{ch.name}'"
        elif len(used) > 1:
            inside = "a join of channels " + " and ".join(f"'{c.name}'" for c in used)
        else:
            inside = f"a consume of channel '{used[0].name}'"
    else:
        inside = _LOOP_NAMES.get(loop.kind, f"a {loop.kind} loop")
    at = f" (at {loop.loc})" if loop.loc is not None else ""
    return DSLUsageError(
        f"consume('{ch.name}') inside {inside}{at} in process '{owner}': a consume runs until its channel is closed "
        "and drained, so it would take every item in the loop's first iteration and do nothing in the others.",
        hint=f"Put consume({ch.name}, lambda t: ...) at the top level of the process body (it already loops over "
             "every item) and the per-item work in its body; to take items from two channels in turn, give each "
             "channel its own process, or send both kinds of items into one channel.",
        where=node.loc, locate=node.loc is None)


def check_items(body: Any, owner: str) -> None:
    """``ch.item`` only inside a send to ``ch`` (the slot it fills) or a consume of ``ch`` (the slot it reads), and
    every send to a tile channel fills its item: a task of it writes ``ch.item`` (else the consumer would read a slot
    nobody wrote)."""
    def visit(n: Workload, scope: tuple[Any, ...]) -> None:
        if n.kind is NodeKind.TASK:
            _check_task_items(n, scope, owner)
            return
        _check_use_types(n, owner)
        inner = scope + n.uses("sends") + n.uses("consumes")
        for child in n.children():
            visit(child, inner)
        if n.kind is NodeKind.SEND and n.channel.tile is not None:
            _check_send_fills(n, owner)

    if isinstance(body, Workload):
        visit(body, ())


def _check_use_types(n: Workload, owner: str) -> None:
    """The channels and events a node built with ``Workload(kind, ...)`` uses are Channel and Event objects."""
    for role, want, api in (("sends", Channel, "send(ch, ...)"), ("consumes", Channel, "consume(ch, ...)"),
                            ("records", Event, "record(ev)"), ("waits", Event, "synchronize(ev)")):
        article = "an" if want is Event else "a"
        for x in n.uses(role):
            if not isinstance(x, want):
                raise PtortTypeError(
                    f"process '{owner}': a {n.kind} node {role} {type(x).__name__} {x!r}, not {article} "
                    f"{want.__name__}.", hint=f"Build it with {api} on {article} {want.__name__}(...) object.",
                    where=n.loc, locate=n.loc is None)


def _item_args(task: Workload) -> list[tuple[str, Any]]:
    """(parameter, channel) of each argument of a task node that is a tile channel's ``ch.item``."""
    res = task.resources
    pairs = res.items() if isinstance(res, dict) else enumerate(res or ())
    return [(str(k), v.base.ring_of) for k, v in pairs if isinstance(v, TensorView) and v.base.ring_of is not None]


def _check_task_items(task: Workload, scope: tuple[Any, ...], owner: str) -> None:
    for pname, ch in _item_args(task):
        if not any(ch is c for c in scope):
            raise DSLUsageError(
                f"process '{owner}' passes {ch.name}.item (to '{pname}') outside a send to or consume of channel "
                f"'{ch.name}': it stands for the buffer slot of the item that send or consume is handling, so here "
                "it has no slot.",
                hint=f"Use it in the task a send fills, send({ch.name}, k[t](..., dst={ch.name}.item)), or in the body "
                     f"of consume({ch.name}, lambda t: k2[t](src={ch.name}.item, ...)).", where=task.loc,
                locate=task.loc is None)


def _check_send_fills(node: Workload, owner: str) -> None:
    """A send to a tile channel must write its item (an Out or InOut argument ``ch.item`` of one of its tasks) on
    every path through it, and no task may read the item before a task of the send wrote it: the slot holds the item
    sent ``depth`` items before (or, at first, whatever the buffer held), where the data-parallel twin gives each item
    a fresh tile."""
    ch = node.channel
    fill = _ItemFill(node, owner)
    state, anywhere = fill.run(node.value, NO) if isinstance(node.value, Workload) else (NO, False)
    if not anywhere:
        raise DSLUsageError(
            f"process '{owner}' sends to tile channel '{ch.name}' but no task of that send writes {ch.name}.item, so "
            "the consumer would read a buffer slot nobody filled.",
            hint=f"Write the item in the send: send({ch.name}, k[t](..., dst={ch.name}.item)) with dst an Out[...] "
                 f"parameter; or make '{ch.name}' a token channel (no tile=) if only the token matters.",
            where=node.loc, locate=node.loc is None)
    if state != YES and fill.gap is not None:
        same_line = node.loc is not None and (fill.gap.filename, fill.gap.lineno) == (node.loc.filename,
                                                                                      node.loc.lineno)
        at = "" if same_line else f" at {fill.gap}"
        raise DSLUsageError(
            f"process '{owner}' sends to tile channel '{ch.name}' but writes {ch.name}.item in only one branch of "
            f"the cond{at} in that send, so after the other branch the consumer would read whatever the item's slot "
            f"holds: {_stale(ch)}.",
            hint=f"Write {ch.name}.item (with an Out[...] parameter) in both branches, or make the send itself "
                 f"conditional, cond(pred, send({ch.name}, k[t](..., dst={ch.name}.item))), so nothing is sent "
                 "when nothing is made.", where=node.loc, locate=node.loc is None)


def _stale(ch: Channel[Any]) -> str:
    """What a slot holds before the send writes it, and why that is wrong."""
    return (f"the item sent {ch.depth} item(s) before (its slot is reused every {ch.depth}), or for the first "
            "items whatever the buffer held (uninitialised memory on the chip), while the data-parallel twin gives "
            "each item a fresh tile: the numbers would depend on the depth and differ from the twin's")


class _ItemFill:
    """Whether a send's value writes its channel's item, following the value's program order (the listed order of
    sequential, combine and loop bodies, which data dependencies keep, as the twin does); a cond's branches are
    alternatives. ``run(n, state)`` gives the state after ``n`` (``NO``: written on no path, ``MAYBE``, ``YES``:
    on every path) and whether some task of ``n`` writes it, and raises at a task that reads the item (an In or
    InOut argument ``ch.item``) where it is written on no path yet.

    A loop in the send whose first point is known when the send is built (a Dense axis, a DenseDyn of a positive
    size or of an expression of such loops' variables, a list of ints) is run twice: once for its first iteration,
    its variables bound to their first values, where a cond whose condition those values decide (``k == 0``,
    ``(k >= 1) & (j == 0)``) takes only its branch; then once for the later iterations, its variables unbound (not
    at all when the loop has only that one point). So ``cond(k == 0, init(dst=q.item), acc(dst=q.item))`` over K is
    accepted (iteration 0 writes, the later ones update) and ``cond(k == 1, init(...), acc(...))`` is refused: its
    first iteration updates an item nothing wrote.

    What cannot be decided keeps the rule from before: in a loop whose body writes the item, a cond whose condition
    is not decided (a function of the task, a runtime slot, a variable of a loop around the send such as the token
    ``t``, a loop over a Sparse row or a DenseDyn(0) sized at run time, and every cond of a loop's later iterations
    that depends on the loop's variable) may run its branch only in iterations after a write, so that branch starts
    from ``MAYBE``; a read the first iteration surely reaches before any write is refused still. Loops are taken to
    run at least once."""

    def __init__(self, send_node: Workload, owner: str) -> None:
        self.send, self.owner, self.ch = send_node, owner, send_node.channel
        self.gap: SourceLocation | None = None  # the last cond one branch of which writes the item, the other not
        self.writing_loops = 0  # how many loops around the node being run have a body that writes the item
        self.first: dict[str, Any] = {}  # the variables of the loops in the send run at their first iteration
        self.taken: list[tuple[Workload, bool]] = []  # the conds those values decided on the way to the node run

    def run(self, n: Workload, state: int) -> tuple[int, bool]:
        if n.kind is NodeKind.TASK:
            return self._task(n, state)
        if n.kind in BRANCHES:
            pred = getattr(n, "pred", None)
            if isinstance(pred, bool):  # a constant condition: only its branch runs
                return self.run(n.then if pred else n.otherwise, state)
            decided = self._decide(pred)
            if decided is not None:  # decided by the first values of the loops around it: only its branch runs
                self.taken.append((n, decided))
                try:
                    return self.run(n.then if decided else n.otherwise, state)
                finally:
                    self.taken.pop()
            entry = MAYBE if state == NO and self.writing_loops else state
            then_s, then_a = self.run(n.then, entry)
            else_s, else_a = self.run(n.otherwise, entry)
            if (then_s == YES) != (else_s == YES):
                self.gap = n.loc
            return (then_s if then_s == else_s else MAYBE), then_a or else_a
        if n.kind in LOOPS:
            return self._loop(n, state)
        return self._children(n, state)

    def _children(self, n: Workload, state: int) -> tuple[int, bool]:
        anywhere = False
        for child in n.children():
            state, a = self.run(child, state)
            anywhere = anywhere or a
        return state, anywhere

    def _loop(self, n: Workload, state: int) -> tuple[int, bool]:
        writes = any(self._writes(t) for t in walk(n) if t.kind is NodeKind.TASK)
        names = [getattr(v, "name", None) for v in n.vars]
        outer = self.first
        # (only a cond below can take another branch at the first iteration: without one, one pass is the same,
        # and two passes per loop would be 2**depth passes for nested loops)
        point = self._first_point(n) if any(t.kind is NodeKind.COND for t in walk(n)) else None
        self.writing_loops += writes
        try:
            self.first = {k: v for k, v in outer.items() if k not in names}  # (the loop's own variables shadow)
            if point is None:  # not known when the send is built: one run for every iteration, as before
                return self._children(n, state)
            values, only = point
            self.first = {**self.first, **values}
            state, anywhere = self._children(n, state)  # the first iteration
            if only:
                return state, anywhere
            self.first = {k: v for k, v in outer.items() if k not in names}
            state, later = self._children(n, state)  # the later iterations, from what the first one left
            return state, anywhere or later
        finally:
            self.writing_loops -= writes
            self.first = outer

    def _first_point(self, loop: Workload) -> tuple[dict[str, Any], bool] | None:
        """The values of ``loop``'s variables at its first iteration, and whether that is its only one; None when
        the send's build cannot tell (a Sparse or Ragged source, a DenseDyn(0) or size set by the run)."""
        if len(loop.vars) != len(loop.axes):
            return None
        values: dict[str, Any] = {}
        only = True
        for var, axis in zip(loop.vars, loop.axes):
            name = getattr(var, "name", None)
            if not isinstance(name, str):
                return None
            if isinstance(axis, Dense):
                size: Any = axis.size
                one = size == 1
            elif isinstance(axis, DenseDyn):
                size = axis.size
                if isinstance(size, Expr):
                    size = self._value(size)
                    one = size == 1
                else:
                    one = False  # (a DenseDyn of a number may be resized by program.set_axis_sizes)
            elif isinstance(axis, (list, tuple, range)):
                first: Any = self._value(axis[0]) if len(axis) else None
                if not is_integer(first):
                    return None
                values[name], only = int(first), only and len(axis) == 1
                continue
            else:
                return None
            if not is_integer(size) or size < 1:
                return None
            values[name], only = 0, only and one
        return values, only

    def _decide(self, pred: Any) -> bool | None:
        """The value of a cond's condition at the first iteration of the loops in the send around it, when it is
        an expression of their variables only; else None."""
        value = self._value(pred)
        return None if value is None or not isinstance(value, (bool, np.bool_, int, np.integer)) else bool(value)

    def _value(self, e: Any) -> Any:
        """``e`` evaluated with ``self.first``, when it is a number or an expression of those variables only (so
        nothing reads a runtime slot or a token while the send is built); else None."""
        def known(x: Any) -> bool:
            if isinstance(x, (bool, int, float, np.bool_, np.integer, np.floating)):
                return True
            if type(x) is LoopVar:
                return x.name in self.first
            if isinstance(x, BinaryExpr):
                return known(x.lhs) and known(x.rhs)
            if isinstance(x, NotExpr):
                return known(x.operand)
            return False

        if not known(e):
            return None
        try:
            return evaluate(e, self.first)
        except (PtortValueError, PtortTypeError, ArithmeticError, TypeError, ValueError, KeyError):
            return None  # (the run evaluates it again and says what is wrong, at the cond's line)

    def _uses(self, task: Workload) -> Iterator[tuple[str, Direction, Any]]:
        """(parameter, direction, type) of each argument of ``task`` that is this send's item (a task whose kernel
        has no signature - a named or host task - writes it)."""
        signature = getattr(task.kernel, "signature", None) or {}
        for pname, c in _item_args(task):
            if c is self.ch:
                direction, typ = signature.get(pname, (Direction.OUT, None))
                yield pname, direction, typ

    def _writes(self, task: Workload) -> bool:
        return any(direction in _WRITES for _, direction, _ in self._uses(task))

    def _task(self, task: Workload, state: int) -> tuple[int, bool]:
        writes = False
        for pname, direction, typ in self._uses(task):
            if state == NO and direction in _READS:
                self._refuse_read(task, pname, direction, typ)
            writes = writes or direction in _WRITES
        if writes and state != YES:
            self.gap = None  # (a cond before left it unwritten on a path: this write covers that path)
        return (YES if writes else state), writes

    def _refuse_read(self, task: Workload, pname: str, direction: Direction, typ: Any) -> None:
        ch, kname = self.ch, getattr(task.kernel, "name", str(task.kernel))
        declared = f"{direction.value}[{typ}]" if typ is not None else direction.value
        earlier = "" if task is self.send.value else "; no earlier task of that send writes it"
        if direction is Direction.INOUT:
            how = f"its parameter '{pname}' is {declared}, an update in place that starts from the item"
            hint = (f"Declare '{pname}' Out[...] and store the whole tile from the kernel's other inputs "
                    f"(tl.store({pname}, v) with v computed without tl.load({pname})); to accumulate, compute into "
                    f"a fresh tile, or fill the item first: send({ch.name}, sequential("
                    f"init[t](..., {pname}={ch.name}.item), {kname}[t](..., {pname}={ch.name}.item)), token=t) "
                    "with init's parameter an Out[...].")
        else:
            how = f"its parameter '{pname}' ({declared}) gets {ch.name}.item"
            hint = (f"Read the data where it comes from (a tensor, or the item of a channel this process consumes) "
                    f"and write {ch.name}.item through an Out[...] parameter; or fill the item first: "
                    f"send({ch.name}, sequential(fill[t](..., dst={ch.name}.item), {kname}[t]({pname}="
                    f"{ch.name}.item, ...)), token=t) with fill's dst an Out[...].")
        if self.taken:  # conds that the first values of the loops in the send decided led to this task
            cond_node, then = self.taken[-1]
            at = f" at {cond_node.loc}" if cond_node.loc is not None else ""
            values = ", ".join(f"{k} = {v}" for k, v in self.first.items())
            var = next((k for k in _var_names(cond_node.pred) if k in self.first), None)
            first = f"{var} == {self.first[var]}" if var is not None else "k == 0"
            var = var or "k"
            earlier += (f"; at the first iteration of the loop in the send ({values}) the cond "
                        f"`{_pred_text(cond_node.pred)}`{at} runs its {'then' if then else 'otherwise'} branch, "
                        "which reads the item before any task has written it")
            hint = (f"Make the branch that the first iteration runs write {ch.name}.item whole through an Out[...] "
                    f"parameter, as a K-loop does: cond({first}, init[t, {var}](..., dst={ch.name}.item), "
                    f"{kname}[t, {var}](..., {pname}={ch.name}.item)). Or: " + hint[:1].lower() + hint[1:])
        raise DSLUsageError(
            f"process '{self.owner}' sends to tile channel '{ch.name}' with kernel '{kname}', which reads "
            f"{ch.name}.item before it is written ({how}{earlier}): the item's slot still holds {_stale(ch)}.",
            hint=hint, where=self.send.loc, locate=self.send.loc is None)


def _var_names(e: Any) -> Iterator[str]:
    """The names of the loop variables in expression ``e``, left to right."""
    if isinstance(e, LoopVar):
        yield e.name
    elif isinstance(e, BinaryExpr):
        yield from _var_names(e.lhs)
        yield from _var_names(e.rhs)
    elif isinstance(e, NotExpr):
        yield from _var_names(e.operand)


def _pred_text(pred: Any) -> str:
    """A condition as the user wrote it: ``k == 1``, not ``(k == 1)``."""
    text = repr(pred)
    return text[1:-1] if isinstance(pred, BinaryExpr) and text.startswith("(") and text.endswith(")") else text


_WRITES = (Direction.OUT, Direction.INOUT)
_READS = (Direction.IN, Direction.INOUT)
NO, MAYBE, YES = 0, 1, 2  # (_ItemFill) whether a send's item is written yet: on no path, on some, on every one

__all__ = ["Channel", "ChannelList", "Process", "process", "replicate", "MAX_REPLICAS", "send", "consume", "Event",
           "record", "query", "synchronize", "try_send", "send_nowait", "check_consumes", "check_items", "MAX_DEPTH",
           "int_text"]
