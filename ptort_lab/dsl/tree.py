"""The workload tree (the Workload IR): NodeKind, the field schema of each kind, the Workload node, and the walks.

As the Kernel IR's ``Op`` is one class with an ``OpKind``, a workload node is one class with a ``NodeKind``, and
``SCHEMAS`` says, per kind, which typed fields the node has (reading another kind's field raises AttributeError),
which of them hold child nodes (``children``) and which channels or events the node itself uses (``uses``). The
generic code (``walk``, ``Workload.children``, ``Workload.uses``, the kind groups ``LOOPS``, ``REPEATS``,
``BRANCHES``, ``PIPELINES``) serves every walker, so a new node kind is a NodeKind member and its SCHEMAS entry here
(plus a slot for a new field name), and its handler in ``steps.HANDLERS``.

A node is built once, by the builder or by the reference constructor ``Workload(kind, **fields)``, and never changes
after that: the schedule combinators and ``named()`` return changed copies, and the builder's finishing steps are
the explicit methods ``set_otherwise``, ``default_name`` and ``set_type_errors``.
"""
from __future__ import annotations

import copy
import enum
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping, Sequence

from ..errors import DSLUsageError, PtortTypeError, PtortValueError, SourceLocation
from .combinators import ScheduleCombinators
from .expr import LoopVar, refuse_placeholders
from .schedule import Schedule, compiler_for
from .tasks import Cycles, Task, TaskFactory
from .typecheck import TypeErrorInfo

if TYPE_CHECKING:
    from types import ModuleType

    from .kernel import Kernel
    from .types import TensorView


class NodeKind(str, enum.Enum):
    """Every kind of workload node. Members are strings: they compare, print and format as their value."""

    TASK = "task"                  # one kernel launch
    PARALLEL_FOR = "parallel_for"  # independent iterations over axes
    FOR_EACH = "for_each"          # iterations listed in order (a process body runs them one after another)
    SELECT = "select"              # one iteration per index of a list or Sparse row
    COND = "cond"                  # then or otherwise, by a predicate
    COMBINE = "combine"            # unordered composition
    SEQUENTIAL = "sequential"      # children listed in order (a process body runs them one after another)
    SEND = "send"                  # take a buffer slot of a channel, run a task into it, pass its token on
    CONSUME = "consume"            # run a body for every token of a channel
    JOIN = "join"                  # run a body for every k-th token of each of several channels
    RECORD = "record"              # signal an Event
    WAIT = "wait"                  # wait for an Event's signal and take it
    PIPE = "pipe"                  # the stages of a `with P.pipe():` block
    CONNECT = "connect"            # the processes and channels connect() wired (a Pipeline)
    EMPTY = "empty"                # nothing
    SLOT_SET = "slot_set"          # set a runtime slot
    SLOT_LOAD = "slot_load"        # read a tensor element into a runtime slot

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return format(str(self.value), spec)

    def __repr__(self) -> str:  # the kind reads as the string it always was, in messages and reprs alike
        return repr(self.value)

    @classmethod
    def _missing_(cls, value: object) -> NodeKind:
        names = [k.value for k in cls]
        import difflib  # an error path only: not loaded by `import ptort_lab`
        close = difflib.get_close_matches(str(value), names, n=1)
        raise PtortValueError(f"unknown workload node kind {value!r}.",
                              hint=(f"Did you mean {close[0]!r}? " if close else "")
                              + f"The kinds are {', '.join(names)}.")


# Kind groups (tinygrad's GroupOp): what generic code asks of a kind.
LOOPS = frozenset({NodeKind.PARALLEL_FOR, NodeKind.FOR_EACH, NodeKind.SELECT})
GROUPS = frozenset({NodeKind.COMBINE, NodeKind.SEQUENTIAL})
PIPELINES = frozenset({NodeKind.PIPE, NodeKind.CONNECT})  # a whole pipeline: only ever the root of a program
REPEATS = LOOPS | {NodeKind.CONSUME, NodeKind.JOIN}  # runs its body once per iteration or token
BRANCHES = frozenset({NodeKind.COND})  # its children are alternatives: one of them runs

_NEW_EMPTY: Any = object()  # a default meaning "a new empty node"


@dataclass(frozen=True)
class NodeSchema:
    """The fields of one node kind: ``required`` and ``optional`` (name -> default), in order; ``children`` (fields
    holding a child node or a tuple of them, in program order; those in ``tokens_ok`` may hold a plain token
    instead); ``uses`` ((role, field): what the node itself "sends" to, "consumes", "records" or "waits" on)."""

    required: tuple[str, ...] = ()
    optional: Mapping[str, Any] = field(default_factory=dict)
    children: tuple[str, ...] = ()
    tokens_ok: frozenset[str] = frozenset()
    uses: tuple[tuple[str, str], ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        """Every field name of the kind."""
        return self.required + tuple(self.optional)


_LOOP = NodeSchema(("axes", "vars", "body"), children=("body",))
_GROUP = NodeSchema(optional={"parts": ()}, children=("parts",))
_PIPELINE = NodeSchema(("processes", "channels"))
SCHEMAS: dict[NodeKind, NodeSchema] = {
    NodeKind.TASK: NodeSchema(("kernel",), {"params": (), "resources": (), "cycles": None}),
    NodeKind.PARALLEL_FOR: _LOOP,
    NodeKind.FOR_EACH: _LOOP,
    NodeKind.SELECT: _LOOP,
    NodeKind.COND: NodeSchema(("pred", "then"), {"otherwise": _NEW_EMPTY, "has_else": False, "is_elif": False},
                              children=("then", "otherwise")),
    NodeKind.COMBINE: _GROUP,
    NodeKind.SEQUENTIAL: _GROUP,
    NodeKind.SEND: NodeSchema(("channel", "value"), {"token": None}, children=("value",),
                              tokens_ok=frozenset({"value"}), uses=(("sends", "channel"),)),
    NodeKind.CONSUME: NodeSchema(("channel", "var", "body"), children=("body",), uses=(("consumes", "channel"),)),
    NodeKind.JOIN: NodeSchema(("channels", "vars", "body"), children=("body",), uses=(("consumes", "channels"),)),
    NodeKind.RECORD: NodeSchema(("event",), uses=(("records", "event"),)),
    NodeKind.WAIT: NodeSchema(("event",), uses=(("waits", "event"),)),
    NodeKind.PIPE: _PIPELINE,
    NodeKind.CONNECT: _PIPELINE,
    NodeKind.EMPTY: NodeSchema(),
    NodeKind.SLOT_SET: NodeSchema(("slot", "value")),
    NodeKind.SLOT_LOAD: NodeSchema(("slot", "view"), {"row": 0, "col": 0}),
}


def _steps() -> ModuleType:
    """The interpreter (``steps``): it sits above the tree, so this is the tree's one upward import, declared in the
    import-linter contract (``Workload.enumerate()`` and ``compile()`` are the reference's API on the node)."""
    from . import steps
    return steps


class Workload(ScheduleCombinators):
    """A node of a workload tree: ``Workload(kind, name=None, **fields)`` with the fields SCHEMAS lists for ``kind``.

    Schedule combinators (``dispatch``, ``streams``, ``timing``, ``task_graph``, ...) return a new Workload and
    leave this one unchanged; ``compile()`` gives a Program; ``enumerate()`` lists its tasks in program order.
    """

    __slots__ = ("kind", "name", "loc", "_schedule", "type_errors", "kernel", "params", "resources", "cycles",
                 "factory", "axes", "vars", "body", "pred", "then", "otherwise", "has_else", "is_elif", "parts",
                 "channel", "value", "token", "var", "event", "processes", "channels", "ends", "slot", "view", "row",
                 "col", "_copy_of")
    kind: NodeKind
    name: str | None
    loc: SourceLocation | None
    type_errors: list[TypeErrorInfo]
    kernel: Kernel | str  # task: a @kernel, or a name (enumerate-only tasks)
    params: tuple[Any, ...]  # task: its axis values (ints or loop expressions)
    resources: Any  # task: param -> tensor view (a dict), or a list
    cycles: Cycles  # task: its pinned cost, if any
    factory: TaskFactory | None  # task: the interpreter's task factory, built on first use
    axes: tuple[Any, ...]  # loops
    vars: tuple[LoopVar, ...]  # loops: one variable per axis (two for a Ragged axis); join: one per channel
    body: Workload  # loops, consume, join
    pred: Any  # cond: a bool, a loop expression or a function of the task
    then: Workload  # cond
    otherwise: Workload  # cond
    has_else: bool  # cond: whether an otherwise branch was given
    is_elif: bool  # cond: made by P.elif_, as the otherwise branch of the cond before it
    parts: tuple[Workload, ...]  # combine, sequential
    channel: Any  # send, consume
    value: Any  # send: a task or body node, or a plain token; slot_set: an int or a loop expression
    token: Any  # send: what travels (None: the task's first axis value)
    var: LoopVar  # consume: bound to each token
    event: Any  # record, wait
    processes: tuple[Any, ...]  # pipe, connect
    channels: tuple[Any, ...]  # pipe, connect; join: the channels it pairs items of, in order
    ends: dict[int, tuple[tuple[Any, ...], tuple[Any, ...]]]  # pipe, connect: see channel_ends
    slot: int  # slot_set, slot_load
    view: TensorView  # slot_load
    row: int  # slot_load
    col: int  # slot_load

    def __init__(self, kind: NodeKind | str, name: str | None = None, loc: SourceLocation | None = None, *,
                 _wired: bool = False, **fields: Any) -> None:
        kind = kind if kind.__class__ is NodeKind else NodeKind(kind)
        schema = SCHEMAS[kind]
        put = object.__setattr__
        put(self, "kind", kind)
        put(self, "name", name)
        put(self, "loc", loc)
        put(self, "_schedule", _NO_SCHEDULE)
        put(self, "type_errors", [])
        put(self, "_copy_of", None)
        for key in fields:
            if key not in schema.optional and key not in schema.required:
                _unknown_field(kind, key, schema)
        for key in schema.required:
            if key not in fields:
                raise PtortTypeError(f"Workload({str(kind)!r}) needs the field {key}=.",
                                     hint=f"Its fields are {', '.join(schema.names)}.")
            put(self, key, fields[key])
        for key, default in schema.optional.items():
            value = fields.get(key, default)
            put(self, key, Workload(NodeKind.EMPTY) if value is _NEW_EMPTY else value)
        for key in schema.children:
            self._check_child(key, getattr(self, key), schema)
        if schema.children:
            _refuse_scheduled_parts(self)
        if kind is NodeKind.TASK:
            put(self, "factory", None)
        elif kind in PIPELINES:
            processes, channels = self.processes, self.channels
            if not _wired and _wiring_check is not None:  # the reference constructor: connect()'s checks
                processes, channels = _wiring_check(kind, processes, channels, loc)
            put(self, "processes", tuple(processes))
            put(self, "channels", tuple(channels))
            put(self, "ends", channel_ends(self.processes))

    def _check_child(self, name: str, value: Any, schema: NodeSchema) -> None:
        if isinstance(value, Workload) or (name in schema.tokens_ok and not isinstance(value, (list, tuple))):
            return
        if isinstance(value, (list, tuple)) and all(isinstance(v, Workload) for v in value):
            object.__setattr__(self, name, tuple(value))
            return
        raise PtortTypeError(f"Workload({str(self.kind)!r}) field {name}= must be a workload"
                             f"{' or a list of them' if isinstance(value, (list, tuple)) else ''}, got "
                             f"{type(value).__name__} {value!r}.",
                             hint="Build nodes with the DSL (task(...), for_each(...), combine(...), ...).")

    def __setattr__(self, name: str, value: Any) -> None:
        raise DSLUsageError(f"workload nodes do not change once built (setting {name!r} of {self!r}).",
                            hint="Build a new node instead: .named(name) renames a copy, and the schedule combinators "
                                 "(.dispatch, .place, ...) return changed copies.")

    def __getattr__(self, name: str) -> Any:  # reached only for a name that is not set: say which kind lacks it
        if name not in _FIELD_NAMES:
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        kind = object.__getattribute__(self, "kind")
        raise AttributeError(f"a {kind} node has no field {name!r}; its fields are "
                             f"{', '.join(SCHEMAS[kind].names) or 'none'}.")

    def __delattr__(self, name: str) -> None:
        self.__setattr__(name, None)

    def __copy__(self) -> Workload:
        new = object.__new__(type(self))
        for name in _slot_names(type(self)):
            try:
                object.__setattr__(new, name, getattr(self, name))
            except AttributeError:  # a field of another kind
                continue
        object.__setattr__(new, "_copy_of", self)
        return new

    def copy_sources(self) -> Iterator[Workload]:
        """The nodes this one is a copy of, nearest first (``named()`` and the schedule combinators return copies):
        a build puts a copy in the place of the node it was made from, so its tasks are listed once."""
        source = self._copy_of
        while source is not None:
            yield source
            source = source._copy_of

    # -- the generic view every walker uses --------------------------------------------------------------------
    def children(self) -> tuple[Workload, ...]:
        """The child nodes in program order (a loop's body, a cond's two branches, a group's parts, a pipeline's
        process bodies)."""
        if self.kind in PIPELINES:
            return tuple(w for p in self.processes if isinstance(w := getattr(p, "workload", None), Workload))
        out: list[Workload] = []
        for name in SCHEMAS[self.kind].children:
            value = getattr(self, name)
            if isinstance(value, Workload):
                out.append(value)
            elif isinstance(value, tuple):
                out.extend(value)
        return tuple(out)

    def uses(self, role: str) -> tuple[Any, ...]:
        """The channels or events this node itself uses in role ``role``: "sends", "consumes", "records" or "waits"."""
        out: list[Any] = []
        for r, name in SCHEMAS[self.kind].uses:
            if r == role:
                value = getattr(self, name)
                out.extend(value if isinstance(value, (list, tuple)) else (value,))
        return tuple(out)

    @property
    def is_pipeline(self) -> bool:
        """Whether this node is a whole pipeline (connect() or a P.pipe() block), run process by process."""
        return self.kind in PIPELINES

    def producers(self, channel: Any) -> tuple[Any, ...]:
        """A pipeline's processes that produce ``channel``, in process order."""
        return self.ends.get(id(channel), ((), ()))[0]

    def consumers(self, channel: Any) -> tuple[Any, ...]:
        """A pipeline's processes that consume ``channel``, in process order."""
        return self.ends.get(id(channel), ((), ()))[1]

    @property
    def schedule(self) -> Schedule:
        """What the schedule combinators recorded (read-only: each combinator returns a new Workload)."""
        return self._schedule

    @property
    def fields(self) -> Mapping[str, Any]:
        """The node's own fields by name, read-only (prefer the typed attributes: ``node.body``)."""
        return MappingProxyType({name: getattr(self, name) for name in SCHEMAS[self.kind].names})

    # -- the reference's private names (its tests read them): read-only aliases of the public fields ------------
    @property
    def _kind(self) -> str:
        """The reference's ``w._kind``: ``kind`` (a NodeKind, equal to its string), with the reference's names for
        the kinds it names otherwise (``"slot_set_u64"``, ``"slot_load_u64"``, ``"pipeline"`` for ``P.pipe()``)."""
        return _REFERENCE_KINDS.get(self.kind, self.kind)

    @property
    def _kwargs(self) -> Mapping[str, Any]:
        """The reference's ``w._kwargs``: the node's fields under the reference's keys (``kernel``/``params``/
        ``resources``, ``axis``/``body``/``var_name``, ``sparse``, ``predicate``/``then_workload``/``else_workload``,
        ``workloads``, ...), read-only. Use the typed attributes (``w.body``, ``w.then``) or ``fields`` instead."""
        return MappingProxyType(_reference_kwargs(self))

    @property
    def _name(self) -> str | None:
        """The reference's ``w._name``: ``name``."""
        return self.name

    @property
    def _params(self) -> list[tuple[str, Any]]:
        """The reference's ``w._params`` (what ``with_params`` recorded, ``[]`` when none): a new list of
        ``schedule.params`` (not the task's ``params``)."""
        return list(self._schedule.params)

    @property
    def _dispatch_policy(self) -> Any:
        """The reference's ``w._dispatch_policy``: ``schedule.dispatch``."""
        return self._schedule.dispatch

    @property
    def _stream_count(self) -> int | None:
        """The reference's ``w._stream_count``: ``schedule.streams`` (1 when ``streams(n)`` was not given), and None
        after ``task_graph()`` cleared it (as in the reference) until a later ``streams(n)``."""
        if self._schedule.stream_count is None and self._schedule.graph is not None:
            return None
        return self._schedule.streams

    @property
    def _stream_by_fn(self) -> Callable[..., Any] | None:
        """The reference's ``w._stream_by_fn``: ``schedule.stream_by``."""
        return self._schedule.stream_by

    @property
    def _timing_policy(self) -> Any:
        """The reference's ``w._timing_policy``: ``schedule.timing``."""
        return self._schedule.timing

    @property
    def _task_graph_config(self) -> Any:
        """The reference's ``w._task_graph_config``: ``schedule.graph`` (a TaskGraphConfig once ``task_graph()`` was
        called; its ``window`` is the one given, else the reference's ``TaskWindow(8192)``, which the run enforces)."""
        return self._schedule.graph

    @property
    def _type_errors(self) -> list[TypeErrorInfo]:
        """The reference's ``w._type_errors``: ``type_errors``."""
        return self.type_errors

    def _copy(self) -> Workload:
        """The reference's ``w._copy()``: a copy with the same fields, name and schedule (``copy.copy(w)``)."""
        return copy.copy(self)

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"<{type(self).__name__} {self.kind}{label}>"

    # -- the builder's finishing steps (the only changes after construction) -----------------------------------
    def set_otherwise(self, branch: Workload) -> None:
        """Builder (cond): the branch a following ``P.otherwise()`` block built."""
        self._check_child("otherwise", branch, SCHEMAS[self.kind])
        _refuse_scheduled_part(self, branch)
        object.__setattr__(self, "otherwise", branch)
        object.__setattr__(self, "has_else", True)

    def remember_factory(self, make: TaskFactory) -> None:
        """Interpreter (task): keep the task factory built for this node."""
        object.__setattr__(self, "factory", make)

    def default_name(self, name: str) -> None:
        """Builder: name this node ``name`` unless it is named (the root of a @workload takes the function's name)."""
        if not self.name:
            object.__setattr__(self, "name", name)

    def set_type_errors(self, errors: list[TypeErrorInfo]) -> None:
        """Builder: the type errors a @workload collected, kept on its root."""
        object.__setattr__(self, "type_errors", errors)

    # -- identity, errors, enumeration, compilation ------------------------------------------------------------
    def has_type_errors(self) -> bool:
        """Whether building this workload collected type errors (see ``type_errors``)."""
        return bool(self.type_errors)

    def named(self, name: str) -> Workload:
        """A copy of this node named ``name``."""
        refuse_placeholders(name, "named()")
        w = copy.copy(self)
        object.__setattr__(w, "name", name)
        return w

    def enumerate(self) -> list[Task]:
        """Every task in program order, with loop variables bound (ids 0..n-1)."""
        self.raise_type_errors()
        steps = _steps()
        steps.check_size(self, steps.MAX_TASKS)
        steps.refuse_pipeline_steps(self)  # at the step's own line, not this call's
        tasks: list[Task] = steps.enumerate_tasks(self)
        return tasks

    def task_count(self) -> int:
        """How many tasks ``enumerate()`` lists."""
        return len(self.enumerate())

    def raise_type_errors(self) -> None:
        """Raise the collected type errors (the first in full, the others listed), if any."""
        if self.type_errors:
            first = self.type_errors[0]
            more = "".join(f"\n  - {e.short()}" for e in self.type_errors[1:])
            raise PtortTypeError(
                f"workload '{self.name or self.kind}' has {len(self.type_errors)} type error(s): {first.message}"
                + (f"\nOther errors:{more}" if more else ""), hint=first.hint, where=first.location, locate=False)

    def compile(self, target: str = "cpu_sim", **options: Any) -> Any:
        """Check the workload and return a Program ready to ``execute()``."""
        refuse_placeholders(target, "compile(target)")
        for key, value in options.items():
            refuse_placeholders(value, f"compile({key}=...)")
        self.raise_type_errors()
        steps = _steps()
        limit = "MAX_PIPELINE_TASKS" if self.is_pipeline else "MAX_TASKS"
        steps.check_size(self, getattr(steps, limit), limit)
        with nesting_named(self):
            return compiler_for(target)(self, target, options)

    def check_size(self, max_tasks: int) -> None:
        """Refuse, before listing anything, a workload whose axis sizes alone guarantee more than ``max_tasks`` tasks
        or MAX_ITERATIONS loop iterations (listing it would run for minutes and exhaust memory)."""
        _steps().check_size(self, max_tasks)


#: The wiring check of a pipeline built by the reference constructor, ``Workload("connect" or "pipe",
#: processes=..., channels=...)``: (kind, processes, channels, loc) -> the checked processes and channels. connect()
#: and ``with P.pipe():`` check before they build the node (``_wired=True``); the wiring module, a layer above the
#: tree (which does not import it), sets this with ``set_wiring_check``.
WiringCheck = Callable[[NodeKind, Any, Any, SourceLocation | None], tuple[tuple[Any, ...], tuple[Any, ...]]]
_wiring_check: WiringCheck | None = None


def set_wiring_check(check: WiringCheck) -> None:
    """Make ``check`` the wiring check of pipelines built by the reference constructor (see ``_wiring_check``)."""
    global _wiring_check
    _wiring_check = check


def _slot_names(cls: type) -> tuple[str, ...]:
    """The slots of a Workload class: the node's, then a subclass's own (a Pipeline's ``wired_state``)."""
    return tuple(name for klass in reversed(cls.__mro__) for name in klass.__dict__.get("__slots__", ()))


_NO_SCHEDULE = Schedule()

# The reference's names of the kinds it spells otherwise (``Workload._kind``).
_REFERENCE_KINDS: dict[NodeKind, str] = {NodeKind.SLOT_SET: "slot_set_u64", NodeKind.SLOT_LOAD: "slot_load_u64",
                                         NodeKind.PIPE: "pipeline"}


def _reference_kwargs(node: Workload) -> dict[str, Any]:
    """``node``'s fields under the reference's ``_kwargs`` keys (lists where the reference keeps lists). A loop
    over several axes is one node here (the reference nests one loop per axis): its ``axis`` is the tuple of axes
    and its ``var_name`` the names joined by commas, as the reference's loop frame records them. The kinds the
    reference does not have (join, record, wait) give their own fields."""
    kind = node.kind
    if kind is NodeKind.TASK:
        return {"kernel": node.kernel, "params": list(node.params), "resources": node.resources}
    if kind in LOOPS:
        axes = node.axes
        out: dict[str, Any] = {"sparse" if kind is NodeKind.SELECT else "axis": axes[0] if len(axes) == 1 else axes,
                               "body": node.body, "var_name": ",".join(v.name for v in node.vars)}
        return out
    if kind is NodeKind.COND:
        return {"predicate": node.pred, "then_workload": node.then, "else_workload": node.otherwise}
    if kind in GROUPS:
        return {"workloads": list(node.parts)}
    if kind is NodeKind.SEND:
        return {"channel": node.channel, "value": node.value}
    if kind is NodeKind.CONSUME:
        return {"channel": node.channel, "body": node.body}
    if kind in PIPELINES:
        return {"processes": list(node.processes), "channels": list(node.channels)}
    if kind is NodeKind.SLOT_SET:
        return {"slot": node.slot, "value": node.value}
    if kind is NodeKind.SLOT_LOAD:
        return {"slot": node.slot, "tensor": node.view, "row": node.row, "col": node.col}
    return {name: getattr(node, name) for name in SCHEMAS[kind].names}
_FIELD_NAMES = frozenset(name for schema in SCHEMAS.values() for name in schema.names)


def _unknown_field(kind: NodeKind, key: str, schema: NodeSchema) -> None:
    import difflib  # an error path only: not loaded by `import ptort_lab`
    close = difflib.get_close_matches(key, schema.names, n=1)
    raise PtortTypeError(f"Workload({str(kind)!r}) has no field {key!r}.",
                         hint=(f"Did you mean {close[0]!r}? " if close else "")
                         + f"Its fields are {', '.join(schema.names) or 'none'}.")


# What a node with a schedule of its own is, as a part of each kind of node (the error below names it).
_AS_PART = {
    NodeKind.COMBINE: "a part of combine() (or of a @workload or body with several statements)",
    NodeKind.SEQUENTIAL: "a part of sequential()",
    NodeKind.COND: "a branch of cond() / P.when()",
    NodeKind.PARALLEL_FOR: "the body of a P() / parallel_for loop",
    NodeKind.FOR_EACH: "the body of a P.seq() / for_each loop",
    NodeKind.SELECT: "the body of a P.sel() / select loop",
    NodeKind.SEND: "the task of send()",
    NodeKind.CONSUME: "the body of consume()",
    NodeKind.JOIN: "the body of consume([...])",
}


def _schedule_calls(schedule: Schedule) -> list[str]:
    """The combinator calls that gave ``schedule`` its run-changing fields (``spatial_map`` only records)."""
    calls = []
    if schedule.dispatch is not None:
        calls.append(f".dispatch({schedule.dispatch!r})")
    if schedule.stream_count is not None:
        calls.append(f".streams({schedule.stream_count})")
    if schedule.stream_by is not None:
        calls.append(".stream_by(fn)")
    if schedule.timing is not None:
        timing = schedule.timing
        calls.append(f".timing(TimingPolicy.{timing.kind}" + ("" if timing.kind == "immediate" else
                                                              f"({timing.value:g})") + ")")
    if schedule.graph is not None or schedule.window is not None or schedule.deps is not None:
        calls.append(".task_graph(...)")
    if schedule.placement is not None:
        calls.append(".place(...)")
    if schedule.vector_unit is not None:
        calls.append(f".vector_unit({schedule.vector_unit!r})" if isinstance(schedule.vector_unit, int)
                     else ".vector_unit(fn)")
    return calls


def _refuse_scheduled_parts(node: Workload) -> None:
    """A child with a schedule of its own (``combine(a().dispatch(...), b())``) is refused where it becomes a part:
    a run follows the schedule of the workload it runs only, so the child's would be silently dropped. (A pipeline
    child is left to the nesting checks, which refuse it as a pipeline.)"""
    for child in node.children():
        _refuse_scheduled_part(node, child)


def _refuse_scheduled_part(node: Workload, child: Workload) -> None:
    if child._schedule is not _NO_SCHEDULE and child.kind not in PIPELINES:
        calls = _schedule_calls(child._schedule)
        if not calls:
            return
        label = f"workload '{child.name}'" if child.name else \
            f"the {child.kind} built at {child.loc}" if child.loc is not None else f"a {child.kind} node"
        raise DSLUsageError(
            f"{label} carries its own schedule ({' '.join(calls)}) but is {_AS_PART[node.kind]}, where that has "
            "no effect: a run follows only the schedule of the workload it runs (the root), never a part's.",
            hint=f"Put the schedule on the workload you compile and run (combine(a, b){calls[0]}, or "
                 f"my_workload(){calls[0]}) and build the part without it.")


def channel_ends(processes: Sequence[Any]) -> dict[int, tuple[tuple[Any, ...], tuple[Any, ...]]]:
    """id(channel) -> (the processes that produce it, those that consume it), in process order."""
    ends: dict[int, tuple[list[Any], list[Any]]] = {}
    for p in processes:
        for c in getattr(p, "produces", ()):
            ends.setdefault(id(c), ([], []))[0].append(p)
        for c in getattr(p, "consumes", ()):
            ends.setdefault(id(c), ([], []))[1].append(p)
    return {k: (tuple(made), tuple(used)) for k, (made, used) in ends.items()}


def group(nodes: Sequence[Workload], kind: str = "combine") -> Workload:
    """0 nodes -> empty, 1 -> that node, more -> a combine (or sequential) node."""
    if not nodes:
        return Workload(NodeKind.EMPTY)
    if len(nodes) == 1:
        return nodes[0]
    return Workload(kind, parts=tuple(nodes))


def walk(node: Workload) -> Iterator[Workload]:
    """``node`` and every node under it, each before its children, in program order."""
    stack = [node]
    while stack:
        n = stack.pop()
        yield n
        stack.extend(reversed(n.children()))


def first_use(body: Any, role: str, used: Any) -> SourceLocation | None:
    """The line of ``body``'s first step that uses channel or event ``used`` in role ``role`` ("sends",
    "consumes", "records" or "waits"; a join consumes each of its channels), among the steps whose line is known;
    None when there is none or ``body`` is not a workload tree. Error paths ask it (a walk of the whole body)."""
    if not isinstance(body, Workload):
        return None
    return next((n.loc for n in walk(body) if n.loc is not None and any(x is used for x in n.uses(role))), None)


# A RecursionError while walking a tree at least this deep is taken as the tree's depth (far below Python's default
# limit of 1,000 frames, far above any tree written by hand).
DEEP_NESTING = 100


@contextmanager
def nesting_named(node: Any) -> Iterator[None]:
    """The ``with`` turns a RecursionError of ptort_lab's walks over ``node`` into ``too_deep``'s error, naming the
    line that built its deepest chain; a RecursionError that the tree's depth does not explain is raised as it is."""
    try:
        yield
    except RecursionError:  # a chain built up in a loop: name the line that built it
        deep = too_deep(node) if isinstance(node, Workload) else None
        if deep is None:
            raise
        raise deep from None


def too_deep(node: Workload) -> PtortValueError | None:
    """The error for a tree nested too deep for ptort_lab's walks (a ``RecursionError`` while walking ``node``),
    naming the line that built most of its deepest chain (``body = sequential(body, ...)`` in a loop); None when the
    tree is not deep, so the RecursionError came from somewhere else."""
    deepest: tuple[Workload, Any] | None = None  # the deepest node and its chain of parents, (node, (parent, ...))
    depth = 0
    stack: list[tuple[Workload, int, Any]] = [(node, 1, None)]
    while stack:  # (task nodes, the leaves, are not asked for children: twins have millions)
        n, d, parents = stack.pop()
        if d > depth:
            deepest, depth = (n, parents), d
        if n.kind is not NodeKind.TASK:
            stack.extend((child, d + 1, (n, parents)) for child in n.children())
    if depth < DEEP_NESTING or deepest is None:
        return None
    lines: dict[tuple[str, int], tuple[int, Workload]] = {}
    chain: Any = deepest
    while chain is not None:
        n, chain = chain
        if n.loc is not None:
            key = (n.loc.filename, n.loc.lineno)
            lines[key] = (lines.get(key, (0, n))[0] + 1, n)
    built = max(lines.values(), key=lambda found: found[0], default=(0, node))[1]
    what = "cond(...) chooses between the previous one and a step" if built.kind is NodeKind.COND else \
        f"{built.kind}(...) holds the previous one"
    at = f" at {built.loc}" if built.loc is not None else ""
    return PtortValueError(
        f"workload '{node.name or node.kind}' nests {depth:,} levels deep (each {what}, built over and over{at}): too "
        "deep for ptort_lab to walk, Python's recursion limit stops it.",
        hint="Build the chain flat: collect the steps in a list and pass them at once, sequential(*steps) (or "
             "combine(*steps) when their order does not matter); for a chain of conds, put one cond(pred, step) per "
             "step in that list.", where=built.loc, locate=built.loc is None)


__all__ = ["NodeKind", "NodeSchema", "SCHEMAS", "Workload", "channel_ends", "set_wiring_check", "group", "walk",
           "first_use", "too_deep", "nesting_named", "LOOPS", "GROUPS", "PIPELINES", "REPEATS", "BRANCHES",
           "DEEP_NESTING", "Task"]
