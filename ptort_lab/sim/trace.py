"""What a run recorded: spans (core, lane, name, index, start, end, bytes) and channel-occupancy samples."""
from __future__ import annotations

import dataclasses
import itertools
import math
import numbers
import operator
from array import array
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple, overload

import numpy as np

from ..dsl.tasks import MAX_CYCLES
from ..errors import PtortValueError
from .machine import DEFAULT_CLOCK_HZ, MAX_CLOCK_HZ, MIN_CLOCK_HZ, cycles_to_us
from .trace_files import WholeRun

# Records are NamedTuples: immutable, compared by value, and cheap to create by the million (a frozen dataclass
# costs several times more per instance, which dominated long runs).


class Span(NamedTuple):
    """One busy interval: ``lane`` is a pipe (MTE2, V, ...) or a stage/process name; times in cycles."""

    core: int
    lane: str
    name: str
    index: Any
    start: int
    end: int
    bytes: int = 0
    process: str = ""
    task_id: int = -1

    @property
    def cycles(self) -> int:
        return self.end - self.start


class Sample(NamedTuple):
    """Channel ``channel`` holds ``occupancy`` slots from cycle ``time`` on."""

    channel: str
    time: int
    occupancy: int


class Stall(NamedTuple):
    """A process waited from ``start`` to ``end`` for ``reason`` (backpressure, starvation, dependencies)."""

    process: str
    reason: str
    start: int
    end: int


# -- compact storage of a run's records ----------------------------------------------------------------------------
# A run records millions of spans and stalls: one tuple each (plus an int object per time) costs ~200 bytes, a row
# of int32/int64 columns with interned strings ~40. Producers append records as before (``append`` is the list append
# of the pending records, as cheap as a list's); ``compact()`` moves them into the columns. Checking and moving a
# record costs ~0.5-0.8 us in Python, a fifth of what the general engine spends on a task, so the engine's runs keep
# their records as tuples until they hold COMPACT_AFTER_ROWS of a kind, then compact them and every CHUNK_ROWS after
# (and the rest when the run ends); the max-plus path writes its columns straight from its arrays. A run that keeps no
# trace (execute(keep_trace=False)) keeps none of them: its spans are counted and dropped (stats.SpanFeed), its stalls
# and occupancy steps go to ``Dropped``.
CHUNK_ROWS = 4096
COMPACT_AFTER_ROWS = 1 << 22  # ~800 MB of tuples (1.4M tiles of a 3-stage pipeline): past it memory matters more
_new = tuple.__new__  # builds a record without its Python-level __new__
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# int columns start as array('i') (4 bytes: ids, cores, most indices and times) and widen to 'q' when a value needs it
_DTYPES = {code: np.dtype(f"i{array(code).itemsize}") for code in "iq"}  # their numpy twins


class RecordColumns(Sequence[Any]):
    """Records of one NamedTuple type kept column by column: ``int`` fields in int columns (4 bytes a row until a
    value needs 8), ``name`` fields as ids into one table of strings, ``any`` fields (a span's index) as ints with the
    rows that hold something else kept as they are. Reads like a list of records (len, iteration, indexing, slicing,
    == with a list). A record that does not fit the columns (not exactly its type, a numpy or out-of-range number)
    turns the store into a plain list, so every record reads back exactly as it was appended."""

    __slots__ = ("_cls", "_kinds", "_cols", "_names", "_ids", "_other", "pending", "_rows", "_compact", "append",
                 "extend")
    record: Any = tuple
    kinds: tuple[str, ...] = ()

    def __init__(self, items: Iterable[Any] = ()) -> None:
        self._cls, self._kinds = self.record, self.kinds
        self._cols = [array("i") for _ in self._kinds]
        self._names: list[str] = []
        self._ids: dict[str, int] = {}
        self._other: dict[int, Any] = {}  # row -> the value of its `any` field when that is not a plain int
        self.pending: list[Any] = []  # records not in the columns yet, in order after them
        self._rows = 0  # records in the columns
        self._compact = True  # False once a record did not fit: then everything is in `pending`
        self.append = self.pending.append
        self.extend = self.pending.extend
        self.extend(items)
        self.compact()

    def __reduce__(self) -> Any:
        return (self.__class__, (list(self),))

    def __len__(self) -> int:
        return self._rows + len(self.pending)

    def __iter__(self) -> Iterator[Any]:
        if self._rows:
            yield from self._records()
        yield from self.pending

    @overload
    def __getitem__(self, i: int) -> Any: ...

    @overload
    def __getitem__(self, i: slice) -> list[Any]: ...

    def __getitem__(self, i: Any) -> Any:
        if isinstance(i, slice):
            return [self[j] for j in range(*i.indices(len(self)))]
        n = len(self)
        j = operator.index(i)
        if j < 0:
            j += n
        if not 0 <= j < n:
            raise IndexError(f"{type(self).__name__} index out of range")
        if j >= self._rows:
            return self.pending[j - self._rows]
        values = []
        for kind, col in zip(self._kinds, self._cols):
            v = col[j]
            values.append(self._names[v] if kind == "name" else self._other.get(j, v) if kind == "any" else v)
        return _new(self._cls, values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (list, RecordColumns)):
            return len(self) == len(other) and list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, as a list

    def __repr__(self) -> str:
        return repr(list(self))

    def copy(self) -> list[Any]:
        """The records as a list."""
        return list(self)

    def _records(self) -> Iterator[Any]:
        """The records in the columns, built as they are read."""
        names, other = self._names, self._other
        cols: list[Iterable[Any]] = []
        for kind, col in zip(self._kinds, self._cols):
            if kind == "name":
                cols.append(map(names.__getitem__, col))
            elif kind == "any" and other:
                cols.append(map(other.get, itertools.count(), col))
            else:
                cols.append(col)
        return map(_new, itertools.repeat(self._cls), zip(*cols))

    def ints(self, k: int) -> np.ndarray[Any, np.dtype[np.int64]] | None:
        """Field ``k`` of every record as an int64 array (a time column read without building the records), or
        None when it is not an int field or a record holds something else there."""
        if self._kinds[k] != "int":
            return None
        try:
            tail = np.fromiter(map(operator.itemgetter(k), self.pending), dtype=np.int64, count=len(self.pending))
        except (TypeError, ValueError, OverflowError, IndexError):
            return None
        col = self._cols[k]
        head = np.frombuffer(col, dtype=_DTYPES[col.typecode]).astype(np.int64) if self._rows else tail[:0]
        return np.concatenate([head, tail])

    def name_codes(self, k: int) -> tuple[list[str], np.ndarray[Any, np.dtype[np.int64]]] | None:
        """Field ``k`` (a ``name`` field) of every record as (table of strings, int64 array of positions in it), read
        without building the records; None when it is not a name field or a record holds something else there."""
        if self._kinds[k] != "name":
            return None
        table, ids = list(self._names), dict(self._ids)
        tail = []
        for r in self.pending:
            v = r[k] if isinstance(r, tuple) and len(r) > k else None
            if type(v) is not str:
                return None
            i = ids.get(v)
            if i is None:
                i = ids[v] = len(table)
                table.append(v)
            tail.append(i)
        col = self._cols[k]
        head = np.frombuffer(col, dtype=_DTYPES[col.typecode]).astype(np.int64) if self._rows else \
            np.zeros(0, np.int64)
        return table, np.concatenate([head, np.asarray(tail, dtype=np.int64)])

    def distinct(self, k: int) -> set[Any]:
        """The distinct values of field ``k`` (a ``name`` or ``int`` field), read from the columns without building
        the records (the cross-field checks of a run's millions of spans)."""
        out = {r[k] for r in self.pending}
        if self._rows:
            col = self._cols[k]
            values = np.unique(np.frombuffer(col, dtype=_DTYPES[col.typecode])).tolist()
            kind = self._kinds[k]
            if kind == "name":
                out.update(self._names[v] for v in values)
            elif kind == "int":
                out.update(values)
            else:  # an `any` field: its values are not all in the column
                out.update(r[k] for r in self._records())
        return out

    def _id(self, name: str) -> int:
        i = self._ids.get(name)
        if i is None:
            i = self._ids[name] = len(self._names)
            self._names.append(name)
        return i

    def compact(self) -> None:
        """Move the pending records into the columns (or, when one does not fit, everything into ``pending``)."""
        rows = self.pending
        if not rows or not self._compact:
            return
        built = self._columns_of(rows)
        if built is None:
            self._compact = False
            rows[:0] = list(self._records())
            self._cols = [array(c.typecode) for c in self._cols]
            self._rows, self._other = 0, {}
            return
        for col, new in zip(self._cols, built):
            col.extend(new)
        self._rows += len(rows)
        rows.clear()

    def _columns_of(self, rows: list[Any]) -> list[array[int]] | None:
        """The columns of ``rows`` (its `any` fields that are not plain ints noted in ``_other``), or None when a
        record does not fit."""
        width = len(self._kinds)
        if set(map(type, rows)) != {self._cls} or set(map(len, rows)) != {width}:
            return None
        out: list[array[int]] = []
        other: dict[int, Any] = {}
        for k, (kind, col) in enumerate(zip(self._kinds, zip(*rows))):
            types = set(map(type, col))
            try:
                if kind == "name":
                    if types != {str}:
                        return None
                    ids: list[Any] = list(map(self._ids.get, col))
                    if None in ids:  # new names: numbered in order of first use
                        for name in dict.fromkeys(col):
                            self._id(name)
                        ids = list(map(self._ids.get, col))
                    out.append(array("i", ids))
                elif types == {int} or kind == "int":
                    if types != {int}:
                        return None
                    out.append(self._ints(k, col))
                else:
                    out.append(self._ints(k, self._any_values(col, other)))
            except OverflowError:
                if kind != "any":
                    return None
                out.append(self._ints(k, self._any_values(col, other)))
        self._other.update(other)
        return out

    def _ints(self, k: int, values: Any) -> array[int]:
        """``values`` as an array of column ``k``'s type, widening the column to 8 bytes when one needs it
        (OverflowError: one does not fit in 8 either)."""
        code = self._cols[k].typecode
        try:
            return array(code, values)
        except OverflowError:
            if code == "q":
                raise
            self._cols[k] = array("q", self._cols[k])
            return array("q", values)

    def _any_values(self, col: tuple[Any, ...], other: dict[int, Any]) -> list[int]:
        """An `any` column's ints: plain int64 values as they are, anything else noted in ``other`` (by row) over a
        0."""
        values = []
        for j, v in enumerate(col, self._rows):
            if type(v) is int and _INT64_MIN <= v <= _INT64_MAX:
                values.append(v)
            else:
                values.append(0)
                other[j] = v
        return values

    def add_columns(self, columns: list[Any]) -> None:
        """Append records given column by column (the max-plus path): per field a numpy int array, or for a
        ``name`` field a pair (table of strings, numpy array of positions in it), or a list of values."""
        self.compact()
        if not self._compact:
            self.extend(_new(self._cls, r) for r in zip(*(column_values(c) for c in columns)))
            return
        n = None
        for k, (kind, given) in enumerate(zip(self._kinds, columns)):
            if kind == "name":
                table, at = given
                given = np.array([self._id(s) for s in table], dtype=np.int64)[np.asarray(at)]
            if isinstance(given, np.ndarray):
                values = np.asarray(given, dtype=np.int64)
                if self._cols[k].typecode == "i" and len(values) and (
                        values.min() < np.iinfo(_DTYPES["i"]).min or values.max() > np.iinfo(_DTYPES["i"]).max):
                    self._cols[k] = array("q", self._cols[k])
                col = self._cols[k]
                col.frombytes(values.astype(_DTYPES[col.typecode]).tobytes())
            else:
                given = self._any_values(tuple(given), self._other) if kind == "any" else given
                new = self._ints(k, given)
                self._cols[k].extend(new)
            n = len(self._cols[k]) - self._rows if n is None else n
        self._rows += n or 0


def column_values(given: Any) -> list[Any]:
    """The plain values of one column as ``add_columns`` takes it."""
    if isinstance(given, tuple):
        table, at = given
        return [table[i] for i in np.asarray(at).tolist()]
    return given.tolist() if isinstance(given, np.ndarray) else list(given)


class Dropped(deque):  # type: ignore[type-arg]
    """Records of a run that keeps none (``execute(keep_trace=False)``): appended like a list, and dropped at once
    (a deque of length 0: append and extend stay C calls on the hot path)."""

    def __init__(self) -> None:
        super().__init__((), 0)

    def add_columns(self, columns: list[Any]) -> None:
        """Records given column by column (the max-plus path): dropped too."""


class SpanColumns(RecordColumns):
    """A run's spans, column by column (``trace.spans`` of a run)."""

    __slots__ = ()
    record = Span
    kinds = ("int", "name", "name", "any", "int", "int", "int", "name", "int")


class StallColumns(RecordColumns):
    """A run's stalls, column by column (``trace.stalls`` of a run)."""

    __slots__ = ()
    record = Stall
    kinds = ("name", "name", "int", "int")


# Trace(makespan=...) left out (or None): the last end of the trace's records, computed when read (_get_makespan)
_LAST_END: Any = None


@dataclass
class Trace:
    """Everything one run recorded, in a deterministic order. ``makespan`` left out is the last end of the spans,
    stalls, samples and ``process_end`` (0 without any), so a Trace built by hand is consistent."""

    # a run's spans and stalls are SpanColumns / StallColumns (compact; read like lists), a hand-made Trace's lists
    spans: Sequence[Span] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    stalls: Sequence[Stall] = field(default_factory=list)
    makespan: int = _LAST_END  # left out: computed from the records (see the class docstring)
    clock_hz: float = DEFAULT_CLOCK_HZ
    mode: str = "pipeline"
    processes: list[str] = field(default_factory=list)
    channels: dict[str, int] = field(default_factory=dict)
    cores: dict[int, str] = field(default_factory=dict)
    process_end: dict[str, int] = field(default_factory=dict)
    launch_cycles: int | None = None  # cycles before the first instruction (the kernel launch); None: not known
    whole_run: WholeRun | None = None  # the run this trace is part of (a steady-state run's first tiles); None: all

    @property
    def makespan_us(self) -> float:
        """The makespan in microseconds at ``clock_hz`` (0.0 without a clock)."""
        return cycles_to_us(self.makespan, self.clock_hz)

    def spans_of(self, lane: str | None = None, process: str | None = None) -> list[Span]:
        return [s for s in self.spans if (lane is None or s.lane == lane) and (process is None or s.process == process)]

    def occupancy(self, channel: str) -> list[tuple[int, int]]:
        """(time, slots in use) steps for one channel, in time order."""
        return [(s.time, s.occupancy) for s in self.samples if s.channel == channel]

    def max_occupancy(self, channel: str) -> int:
        return max((o for _, o in self.occupancy(channel)), default=0)

    def __call__(self) -> Trace:
        """Itself: ``program.trace()`` and the reference's ``program.trace`` are the same object."""
        return self

    def __repr__(self) -> str:
        """``<Trace pipeline: 6,000 spans, 3 cores, makespan 1,234,567 cycles>``: a run records millions of spans,
        which the dataclass repr would list one by one (a notebook cell ending in ``p.trace()`` shows this)."""
        cores = len(self.cores) if self.cores else len({s.core for s in self.spans})
        text = (f"<Trace {self.mode}: {len(self.spans):,} span{'s' if len(self.spans) != 1 else ''}, {cores:,} "
                f"core{'s' if cores != 1 else ''}, makespan {self.makespan:,} cycles")
        if self.stalls:
            text += f", {len(self.stalls):,} stall{'s' if len(self.stalls) != 1 else ''}"
        whole = self.whole_run
        return text + (f"; the {whole.said()}>" if isinstance(whole, WholeRun) else ">")

    # -- Chrome / Perfetto export (ptort_lab.sim.export) ----------------------------------------------------------
    def to_chrome_json(self) -> str:
        """This trace as Chrome Trace Event JSON (opens in ui.perfetto.dev); same trace, same bytes."""
        from .export import to_chrome_json
        return to_chrome_json(self)

    to_chrome_trace = to_chrome_json  # the reference's name (ExecutionTrace.to_chrome_trace)

    # -- the reference's ExecutionTrace.summary() / print_summary() ---------------------------------------------------
    def summary(self) -> dict[str, Any]:
        """What the spans add up to, as plain data: ``mode``, ``makespan`` (cycles), ``makespan_us``, ``spans``,
        ``tasks`` (distinct task ids), and per span name (``by_name``: a kernel's name under pinned costs, an
        instruction's under the NPU model) and per process (``by_process``: the span's process, else its lane, as
        the stages of ``stats()``; a pipeline's processes first, in order) a dict of ``spans``, ``tasks``,
        ``busy_cycles`` (the cycles at least one of its spans runs) and ``first_start`` / ``last_end`` (None
        without spans). Names are listed in the order their first span comes. Read from a run's columns without
        building its spans."""
        # a run's spans are as the engine made them; a hand-made Trace's are checked first (numpy numbers, bad ends)
        spans = self.spans if isinstance(self.spans, RecordColumns) else check_trace(self, "Trace.summary()").spans
        names, name_ids, stages, stage_ids, tasks, starts, ends = _span_columns(spans)
        listed = list(self.processes) if self.mode == "pipeline" else []
        return {
            "mode": self.mode,
            "makespan": self.makespan,
            "makespan_us": self.makespan_us,
            "spans": len(starts),
            "tasks": _distinct_tasks(tasks),
            "by_name": _group_figures(names, name_ids, tasks, starts, ends, []),
            "by_process": _group_figures(stages, stage_ids, tasks, starts, ends, listed),
        }

    def print_summary(self) -> None:
        """Print ``summary()`` as a short deterministic table (busy % of the makespan)."""
        print(summary_text(self.summary(), self.clock_hz))

    def save(self, path: Any) -> Any:
        """Write ``to_chrome_json()`` to ``path`` (``run.json``, or ``run.json.gz`` compressed); returns the Path."""
        from .export import save
        return save(self, path)

    @classmethod
    def load(cls, path: Any, *, max_bytes: int | None = None, max_events: int | None = None,
             max_depth: int | None = None) -> "Trace":
        """Read a trace written by ``save`` (or JSON text from ``to_chrome_json``) back into an equal Trace.

        The limits bound what a file may cost to read (None: the defaults of ``load.load_chrome_json``).
        """
        from .load import load_chrome_json
        return load_chrome_json(path, max_bytes=max_bytes, max_events=max_events, max_depth=max_depth)


_Ints = np.ndarray[Any, np.dtype[np.int64]]


def _codes(records: Sequence[Any], k: int) -> tuple[list[str], _Ints]:
    """Name field ``k`` of ``records`` as (table, positions): from a run's columns, else read record by record."""
    got = records.name_codes(k) if isinstance(records, RecordColumns) else None
    if got is not None:
        return got
    ids: dict[str, int] = {}
    at = [ids.setdefault(r[k], len(ids)) for r in records]
    return list(ids), np.asarray(at, dtype=np.int64)


def _int_field(records: Sequence[Any], k: int) -> _Ints:
    got = records.ints(k) if isinstance(records, RecordColumns) else None
    return got if got is not None else np.fromiter((int(r[k]) for r in records), dtype=np.int64, count=len(records))


def _span_columns(spans: Sequence[Span]) -> tuple[list[str], _Ints, list[str], _Ints, _Ints, _Ints, _Ints]:
    """(names, name of each span, stages, stage of each span, task ids, starts, ends) of ``spans``; a span's stage is
    its process, else its lane (``stats.stage_groups``)."""
    names, name_ids = _codes(spans, 2)
    lanes, lane_ids = _codes(spans, 1)
    processes, process_ids = _codes(spans, 7)
    index: dict[str, int] = {}  # stage name -> its position in ``stages``
    as_stage = np.asarray([index.setdefault(p, len(index)) for p in processes] or [0], dtype=np.int64)
    lane_stage = np.asarray([index.setdefault(n, len(index)) for n in lanes] or [0], dtype=np.int64)
    stages = list(index)
    unnamed = processes.index("") if "" in processes else -1
    stage_ids = np.where(process_ids == unnamed, lane_stage[lane_ids], as_stage[process_ids]) if len(process_ids) \
        else process_ids
    return names, name_ids, stages, stage_ids, _int_field(spans, 8), _int_field(spans, 4), _int_field(spans, 5)


def _distinct_tasks(tasks: _Ints) -> int:
    return int(len(np.unique(tasks[tasks >= 0])))


def _group_figures(table: list[str], ids: _Ints, tasks: _Ints, starts: _Ints, ends: _Ints,
                   listed: list[str]) -> dict[str, dict[str, Any]]:
    """Per group (a name of ``table``; ``listed`` ones first, even without spans, then in order of first span):
    spans, distinct tasks, busy cycles (the length of the union of its spans) and first start / last end."""
    out: dict[str, dict[str, Any]] = {name: {"spans": 0, "tasks": 0, "busy_cycles": 0, "first_start": None,
                                             "last_end": None} for name in listed}
    if not len(ids):
        return out
    present, first_row = np.unique(ids, return_index=True)
    order = np.lexsort((starts, ids))  # by group, then by start
    g, s, e, t = ids[order], starts[order], ends[order], tasks[order]
    bounds = np.flatnonzero(np.diff(g)) + 1
    figures: dict[int, dict[str, Any]] = {}
    for a, b in zip(np.concatenate([[0], bounds]).tolist(), np.concatenate([bounds, [len(g)]]).tolist()):
        gs, ge = s[a:b], e[a:b]
        reach = np.maximum.accumulate(ge)  # the furthest end so far: a span adds what it runs past it
        before = np.concatenate([gs[:1], reach[:-1]])
        busy = int(np.maximum(reach - np.maximum(gs, before), 0).sum())
        gt = t[a:b]
        figures[int(g[a])] = {"spans": b - a, "tasks": int(len(np.unique(gt[gt >= 0]))), "busy_cycles": busy,
                              "first_start": int(gs[0]), "last_end": int(reach[-1])}
    for i in present[np.argsort(first_row, kind="stable")].tolist():
        out[table[i]] = figures[i]  # (a listed name keeps its place)
    return out


def summary_text(summary: dict[str, Any], clock_hz: float) -> str:
    """``Trace.summary()`` as the table ``print_summary()`` prints."""
    makespan = summary["makespan"]
    lines = [f"{summary['mode']} trace: {summary['spans']:,} spans, {summary['tasks']:,} tasks, makespan "
             f"{makespan:,} cycles = {summary['makespan_us']:.3f} us at {clock_hz / 1e9:g} GHz"]
    for title, groups in (("process", summary["by_process"]), ("name", summary["by_name"])):
        if not groups:
            continue
        width = max(16, *(len(n) for n in groups))
        lines.append(f"  {title:<{width}}  spans  tasks  busy cycles   busy%  first start   last end")
        for name, f in groups.items():
            pct = 100.0 * f["busy_cycles"] / makespan if makespan else 0.0
            first = "-" if f["first_start"] is None else f"{f['first_start']:,}"
            last = "-" if f["last_end"] is None else f"{f['last_end']:,}"
            lines.append(f"  {name:<{width}}  {f['spans']:>5,}  {f['tasks']:>5,}  {f['busy_cycles']:>11,}  "
                         f"{pct:6.1f}  {first:>11}  {last:>9}")
    return "\n".join(lines)


def _get_samples(self: Trace) -> list[Sample]:
    value = self.__dict__.get("_samples", [])
    if callable(value):  # computed on first use: long runs record millions of steps nobody may look at
        value = self.__dict__["_samples"] = value()
    return value  # type: ignore[no-any-return]


def _set_samples(self: Trace, value: Any) -> None:
    self.__dict__["_samples"] = value


def _getstate(self: Trace) -> dict[str, Any]:
    """A run's trace as copy and pickle take it: its samples computed first (until read, they are a function of
    the run's engine, which holds the processes' generators: neither copies nor pickles)."""
    _get_samples(self)
    return dict(self.__dict__)


# `samples` stays a constructor field (Trace(samples=[...])) but may be given as a function computing the list.
Trace.samples = property(_get_samples, _set_samples)  # type: ignore[assignment]
Trace.__getstate__ = _getstate  # type: ignore[attr-defined]


def _get_makespan(self: Trace) -> int:
    value = self.__dict__.get("_makespan")
    made: int = last_end(self) if value is None else value
    return made


def _set_makespan(self: Trace, value: Any) -> None:
    self.__dict__["_makespan"] = value


# `makespan` stays a constructor field; left out, it follows the records (a hand-made Trace may grow after it is made).
Trace.makespan = property(_get_makespan, _set_makespan)  # type: ignore[assignment]

# The field of each record kind that ends it (Span.end, Stall.end, Sample.time).
_END_FIELD = {"spans": 5, "stalls": 3, "samples": 1}


def _ends_max(records: Any, k: int) -> int:
    """The largest int in field ``k`` of ``records`` (0 without any); a record or value of the wrong kind is skipped
    (the field checks name it), so reading a Trace's makespan never raises."""
    if isinstance(records, RecordColumns):
        col = records.ints(k)
        if col is not None:
            return int(col.max()) if len(col) else 0
    if not isinstance(records, (list, tuple, RecordColumns)):
        return 0
    try:  # checked records (the common case): one C-level pass
        fast = max(map(operator.itemgetter(k), records), default=0)
        if type(fast) is int:
            return max(fast, 0)
    except (TypeError, IndexError, KeyError):
        pass
    best = 0  # the slow way past anything that is not an int (the field checks name it)
    for r in records:
        v = r[k] if isinstance(r, tuple) and len(r) > k else None
        if isinstance(v, numbers.Integral) and not isinstance(v, bool) and int(v) > best:
            best = int(v)
    return best


def last_end(trace: Trace) -> int:
    """The last cycle any record of ``trace`` ends at: its spans, stalls, samples and ``process_end`` (0 if none)."""
    ends = [_ends_max(getattr(trace, kind), k) for kind, k in _END_FIELD.items()]
    pe = trace.process_end
    if isinstance(pe, dict):
        ends += [int(v) for v in pe.values() if isinstance(v, numbers.Integral) and not isinstance(v, bool)]
    return max(ends, default=0)


# -- what a Trace may hold -----------------------------------------------------------------------------------------
# One set of rules for every reader: Trace.save refuses what Trace.load would refuse (so every saved file loads back),
# and a Trace that passes is drawn, summed and exported without overflow (plot_timeline, stats, the Chrome JSON).
MAX_CORE = 2**31 - 1  # cores are Chrome pids (32-bit)
MIN_INT, MAX_INT = -(2**63), 2**63 - 1  # bytes, task ids, channel depths and fills, int indices (int64)
MAX_NAME_CHARS = 4096  # lanes, kernels, processes, channels, stall reasons and string indices
MAX_INDEX_DEPTH = 32  # tuples in tuples... deeper is a mistake, and decoding it recursively would crash
MODES = ("pipeline", "data-parallel")

EXPECTED = {
    "cycles": "a whole, finite number of cycles >= 0 (an int up to 2**53)",
    "core": "a core number (an int in 0..2**31-1)",
    "count": "an int in 0..2**63-1",
    "task_id": "a task id (an int in -1..2**63-1)",
    "name": f"a string of at most {MAX_NAME_CHARS} characters",
    "clock_hz": "a clock frequency in Hz (a finite number in 1..1e15)",
    "mode": " or ".join(map(repr, MODES)),
    "index": "None, a bool, an int (64-bit), a finite float, a string, or a tuple, list or dict of them",
}
_RANGE = {"cycles": (0, MAX_CYCLES), "core": (0, MAX_CORE), "count": (0, MAX_INT), "task_id": (-1, MAX_INT)}


class BadField(Exception):
    """A field that breaks the rules: ``path`` names it (``spans[3].end``), ``expected`` says what it must hold."""

    def __init__(self, path: str, value: Any, expected: str, hint: str | None = None) -> None:
        super().__init__(path)
        self.path, self.value, self.expected = path, value, expected
        self.hint = hint  # how to fix a hand-made Trace (a rule between fields has its own); None: the general one

    def describe(self) -> str:
        """``spans[3].end is 'x'; expected ...`` (long values cut; a huge int by its size: repr may refuse it)."""
        v = self.value
        if isinstance(v, int) and v.bit_length() > 64:
            digits = len(str(abs(v))) if v.bit_length() < 14000 else "over 4000"
            shown = f"{'a negative' if v < 0 else 'an'} int of {digits} digits"
        else:
            r = repr(v)
            shown = r if len(r) <= 60 else r[:57] + "..."
        return f"{self.path} is {shown}; expected {self.expected}"


def plain(v: Any, kind: str, path: str) -> Any:
    """``v`` as a plain int or str of ``kind`` (see EXPECTED; numpy ints become ints), else BadField."""
    if kind == "name":
        if isinstance(v, str) and len(v) <= MAX_NAME_CHARS:
            return v if type(v) is str else str(v)
    elif isinstance(v, numbers.Integral) and not isinstance(v, bool):
        lo, hi = _RANGE[kind]
        n = int(v)  # (the same object for a plain int, so callers see that nothing changed)
        if lo <= n <= hi:
            return n
    raise BadField(path, v, EXPECTED[kind])


def clock_value(v: Any, path: str) -> float:
    """A clock frequency in range (an int or float), else BadField."""
    kept: Any = v  # a plain int or float is kept as it is (an int clock stays an int in the file)
    if isinstance(v, numbers.Real) and not isinstance(v, bool):
        try:
            f = float(v)
        except OverflowError:  # an int beyond every float
            f = math.inf
        if math.isfinite(f) and MIN_CLOCK_HZ <= f <= MAX_CLOCK_HZ:
            return kept if type(kept) is int or type(kept) is float else f
    raise BadField(path, v, EXPECTED["clock_hz"])


def index_value(v: Any, path: str, depth: int = MAX_INDEX_DEPTH) -> Any:
    """A span index made of plain values (numpy scalars become Python ones; the same object when nothing changes)."""
    t = type(v)
    if v is None or t is bool or (t is str and len(v) <= MAX_NAME_CHARS) or (t is int and MIN_INT <= v <= MAX_INT) \
            or (t is float and math.isfinite(v)):
        return v
    if isinstance(v, (tuple, list, dict)):
        if depth <= 0:
            raise BadField(path, v, f"an index nested at most {MAX_INDEX_DEPTH} levels deep")
        if isinstance(v, dict):
            pairs = [(index_value(k, f"{path} key {k!r}", depth - 1), index_value(x, f"{path}[{k!r}]", depth - 1))
                     for k, x in v.items()]
            same = all(a is k and b is x for (a, b), (k, x) in zip(pairs, v.items()))
            return v if same and t is dict else dict(pairs)
        items = [index_value(x, f"{path}[{k}]", depth - 1) for k, x in enumerate(v)]
        if all(a is b for a, b in zip(items, v)) and t in (tuple, list):
            return v
        return tuple(items) if isinstance(v, tuple) else items
    if hasattr(v, "item") and type(v).__module__ == "numpy":  # numpy scalars
        return index_value(v.item(), path, depth)
    if isinstance(v, (str, numbers.Integral, float)) and t not in (str, int, float, bool):  # subclasses, as values
        base = str if isinstance(v, str) else int if isinstance(v, numbers.Integral) else float
        return index_value(base(v), path, depth)
    raise BadField(path, v, EXPECTED["index"])


def _span(sp: Any, i: int) -> Span:
    """A Span checked field by field (the slow path: numpy numbers, nested indices, or a field that is wrong)."""
    at = f"spans[{i}]"
    if not isinstance(sp, Span):
        raise BadField(at, sp, "a Span(core, lane, name, index, start, end, bytes, process, task_id)")
    start, end = plain(sp.start, "cycles", f"{at}.start"), plain(sp.end, "cycles", f"{at}.end")
    if end < start:
        raise BadField(f"{at}.end", end, f"a number of cycles >= the span's start {start}")
    new = (plain(sp.core, "core", f"{at}.core"), plain(sp.lane, "name", f"{at}.lane"),
           plain(sp.name, "name", f"{at}.name"), index_value(sp.index, f"{at}.index"), start, end,
           plain(sp.bytes, "count", f"{at}.bytes"), plain(sp.process, "name", f"{at}.process"),
           plain(sp.task_id, "task_id", f"{at}.task_id"))
    return sp if all(a is b for a, b in zip(new, sp)) else Span(*new)


def _spans(spans: Any) -> Any:
    """The spans, or a copy where some were made plain; BadField for the first one that breaks a rule."""
    out = None
    for i, sp in enumerate(spans):
        if type(sp) is Span:
            core, lane, name, index, start, end, nbytes, process, task_id = sp
            ti = type(index)
            if (type(start) is int and type(end) is int and 0 <= start <= end <= MAX_CYCLES
                    and type(core) is int and 0 <= core <= MAX_CORE and type(nbytes) is int and 0 <= nbytes <= MAX_INT
                    and type(task_id) is int and -1 <= task_id <= MAX_INT
                    and type(lane) is str and type(name) is str and type(process) is str
                    and len(lane) <= MAX_NAME_CHARS and len(name) <= MAX_NAME_CHARS
                    and len(process) <= MAX_NAME_CHARS
                    and (ti is int and MIN_INT <= index <= MAX_INT or index is None
                         or ti is str and len(index) <= MAX_NAME_CHARS)):
                continue
        fixed = _span(sp, i)
        if fixed is not sp:
            if out is None:
                out = list(spans)
            out[i] = fixed
    return spans if out is None else out


def _records(items: Any, cls: Any, kinds: tuple[str, ...], what: str) -> Any:
    """Samples or stalls checked field by field (same object when nothing changed)."""
    out = None
    name_first = kinds[1] == "cycles"  # a Sample (channel, time, fill); else a Stall (process, reason, start, end)
    for i, item in enumerate(items):
        if type(item) is cls:  # the common case, checked inline (runs record millions)
            a, b, c = item[0], item[1], item[2]
            if type(a) is str and len(a) <= MAX_NAME_CHARS and (
                    (name_first and type(b) is int and type(c) is int and 0 <= b <= MAX_CYCLES and 0 <= c <= MAX_INT)
                    or (not name_first and type(b) is str and len(b) <= MAX_NAME_CHARS and type(c) is int
                        and type(item[3]) is int and 0 <= c <= item[3] <= MAX_CYCLES)):
                continue
        at = f"{what}[{i}]"
        if not isinstance(item, cls):
            raise BadField(at, item, f"a {cls.__name__}({', '.join(cls._fields)})")
        new = tuple(plain(v, k, f"{at}.{f}") for v, k, f in zip(item, kinds, cls._fields))
        if cls is Stall and new[3] < new[2]:
            raise BadField(f"{at}.end", new[3], f"a number of cycles >= the stall's start {new[2]}")
        if not all(a is b for a, b in zip(new, item)):
            if out is None:
                out = list(items)
            out[i] = cls(*new)
    return items if out is None else out


def _mapping(d: Any, key_kind: str, value_kind: str, what: str) -> Any:
    """A dict checked key by key and value by value (same object when nothing changed)."""
    if not isinstance(d, dict):
        raise BadField(what, d, "a dict")
    pairs = [(plain(k, key_kind, f"{what} key {k!r}"), plain(v, value_kind, f"{what}[{k!r}]")) for k, v in d.items()]
    return d if all(a is k and b is v for (a, b), (k, v) in zip(pairs, d.items())) else dict(pairs)


def _sequence(v: Any, what: str) -> Any:
    """``v`` if it is a list or tuple (a dict or a string would be read item by item, wrongly)."""
    if not isinstance(v, (list, tuple, RecordColumns)):
        raise BadField(what, v, "a list")
    return v


def _checked(trace: Trace) -> Trace:
    """``trace``, or a copy with numpy numbers made plain; BadField for the first field that breaks a rule (each field
    on its own first, then the rules between fields: ``cross_check``)."""
    if trace.mode not in MODES:
        raise BadField("mode", trace.mode, EXPECTED["mode"])
    # the records first: a Trace made without a makespan computes it from them (a bad end is named as such)
    fields = {
        "clock_hz": clock_value(trace.clock_hz, "clock_hz"),
        "spans": _spans(_sequence(trace.spans, "spans")),
        "samples": _records(_sequence(trace.samples, "samples"), Sample, ("name", "cycles", "count"), "samples"),
        "stalls": _records(_sequence(trace.stalls, "stalls"), Stall, ("name", "name", "cycles", "cycles"), "stalls"),
        "processes": [plain(p, "name", f"processes[{i}]") for i, p in enumerate(_sequence(trace.processes,
                                                                                            "processes"))],
        "channels": _mapping(trace.channels, "name", "count", "channels"),
        "cores": _mapping(trace.cores, "core", "name", "cores"),
        "process_end": _mapping(trace.process_end, "name", "cycles", "process_end"),
        "launch_cycles": None if trace.launch_cycles is None else plain(trace.launch_cycles, "cycles",
                                                                        "launch_cycles"),
        "makespan": plain(trace.makespan, "cycles", "makespan"),
    }
    if all(a is b for a, b in zip(fields["processes"], trace.processes)):
        fields["processes"] = trace.processes
    changed = {k: v for k, v in fields.items() if v is not getattr(trace, k)}
    out = dataclasses.replace(trace, **changed) if changed else trace
    cross_check(out)
    return out


# -- the rules between fields ----------------------------------------------------------------------------------------
_ORDER_HINT = ("Leave makespan out (Trace(spans=...) computes it as the last end of the spans, stalls, samples and "
               "process_end), or give makespan=max(span.end for span in spans). A run's trace always passes, unless "
               "a cost model of your own returns spans that end after the end it gives for their task.")
_PROCESS_HINT = ("List every process the spans, stalls and process_end name in processes=[...] (or leave "
                 "processes empty). A run's trace always passes, unless a cost model of your own returns spans of "
                 "another process than the lane its task_timing was called with (cost_model.span_of(task, core, "
                 "lane, start, end) builds a right one).")
_DUPLICATE_HINT = "Name each process once in processes=[...] (a run's processes have unique names)."


class Where:
    """How a message names a field of a Trace (a loaded file names its events instead: load.py)."""

    def record(self, kind: str, i: int, field: str) -> str:
        """Field ``field`` of record ``i`` of ``kind`` (spans, stalls, samples)."""
        return f"{kind}[{i}].{field}"

    def process(self, k: int) -> str:
        return f"processes[{k}]"

    def process_end(self, k: int, key: str, value: bool) -> str:
        """Entry ``k`` (key ``key``) of process_end: its value (``value``) or its key."""
        return f"process_end[{key!r}]" if value else f"process_end key {key!r}"

    def makespan(self) -> str:
        return "makespan"


def _listed(names: Iterable[Any], n: int = 6) -> str:
    """A few names for a message (``'a', 'b', ... (9 in all)``)."""
    items = list(names)
    shown = ", ".join(repr(x) for x in items[:n])
    return shown + (f", ... ({len(items)} in all)" if len(items) > n else "")


def _first(records: Any, k: int, bad: Any) -> tuple[int, Any]:
    """The index and field ``k`` of the first record whose field ``k`` is in ``bad`` (a failure's slow path)."""
    return next((i, r[k]) for i, r in enumerate(records) if r[k] in bad)


def _distinct(records: Any, k: int) -> set[Any]:
    return records.distinct(k) if isinstance(records, RecordColumns) else {r[k] for r in records}


def cross_check(trace: Trace, where: Where | None = None) -> None:
    """The rules between the fields of a Trace whose fields each passed (BadField for the first broken one): process
    names unique; when the trace lists processes, every span (but one with an empty process), stall and process_end
    names one of them; and no record ends after the makespan. (``cores`` only names cores: a span on a core it does
    not name is drawn and exported as ``core<N>``, and a cost model may use any core.)"""
    at = where or Where()
    processes = list(trace.processes)
    known = set(processes)
    if len(known) != len(processes):
        k = next(k for k, p in enumerate(processes) if p in processes[:k])
        raise BadField(at.process(k), processes[k], "a process name not listed before (process names are unique)",
                       _DUPLICATE_HINT)
    expected = f"one of the trace's processes ({_listed(processes)})"
    if processes:
        for kind, k, allowed in (("spans", 7, {""}), ("stalls", 0, set())):
            records = getattr(trace, kind)
            unknown = _distinct(records, k) - known - allowed
            if unknown:
                i, name = _first(records, k, unknown)
                raise BadField(at.record(kind, i, "process"), name,
                               ("'' (no process) or " if allowed else "") + expected, _PROCESS_HINT)
        for k, key in enumerate(trace.process_end):
            if key not in known:
                raise BadField(at.process_end(k, key, False), key, expected, _PROCESS_HINT)
    makespan, last = trace.makespan, last_end(trace)
    if last > makespan:  # name the record that ends last (the first one, if several do)
        for kind, k in _END_FIELD.items():
            records = getattr(trace, kind)
            if _ends_max(records, k) == last:
                i = next(i for i, r in enumerate(records) if r[k] == last)
                latest = at.record(kind, i, "time" if kind == "samples" else "end")
                break
        else:
            k, key = next((k, key) for k, (key, end) in enumerate(trace.process_end.items()) if end == last)
            latest = at.process_end(k, key, True)
        raise BadField(at.makespan(), makespan, f"a number of cycles >= the last end of the trace's records "
                                                f"({latest} is {last:,})", _ORDER_HINT)


def check_trace(trace: Trace, api: str) -> Trace:
    """``trace`` if it holds what a run records (the rules above), or a copy with numpy numbers made plain;
    otherwise a PtortValueError naming the field, its value and what it must hold."""
    try:
        return _checked(trace)
    except BadField as e:
        if e.hint is not None:
            hint = e.hint
        elif isinstance(e.value, numbers.Integral) and e.expected == EXPECTED["cycles"] \
                and int(e.value) > MAX_CYCLES:
            hint = ("A trace keeps times up to 2**53 cycles (9,007,199,254,740,992: the largest a JSON number holds "
                    "exactly). A run stops with an error before its times pass it, naming what took it there (a "
                    "Machine cycle constant such as launch_overhead_cycles or block_dispatch_cycles, "
                    "channel_latency_cycles, or the cycles you pinned), so these times were set by hand: a Trace "
                    "built or changed by hand must keep its times within it.")
        elif e.path == "makespan":
            hint = _ORDER_HINT
        else:
            hint = ("A Trace from a run always passes; fix that field of the hand-made Trace (times are whole cycles "
                    "with start <= end <= 2**53; names are short strings).")
        raise PtortValueError(f"{api} got a Trace whose {e.describe()}.", hint=hint) from None
