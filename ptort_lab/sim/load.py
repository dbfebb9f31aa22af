"""load_chrome_json / Trace.load: read a trace file back into an equal Trace, within limits, checking every field.

What loads. ``load_chrome_json`` (``Trace.load``) checks every field it reads against the rules of
``trace.check_trace`` (the same rules ``save`` applies, so every saved file loads back): ints where ints, times whole
cycles in 0..2**53 with ends >= starts, names strings of at most 4096 characters, a known mode, indices of plain
values nested at most ``max_depth`` deep. Before parsing it bounds what reading may cost: ``max_bytes`` of file and of
decompressed text, ``max_events`` events (and 8 JSON objects or arrays per event). Anything else raises a
PtortValueError naming the source, the event index and field, and the fix; a limit names the argument that raises it.
The fields must also agree with each other (``trace.cross_check``): no span, stall or sample ends after the makespan,
and the spans, stalls and process_end name only listed processes and cores. The times a viewer draws must be those of
the exact cycles: each span's and stall's ``ts``/``dur`` exactly what save writes for its ``args.start_cycles`` and
``args.end_cycles``, each C event's ``ts`` that of a ``sample_cycles`` entry (a file whose times were edited would
otherwise load as something other than what it shows); the events may be in any order.
A Chrome trace from another tool (no ``otherData.ptort``) loads best effort (``load_foreign``): X events and B/E
pairs become spans (``pid`` = core, lane = the thread's name), whole-number C series become samples, times are
rebased to the first event and read at 1 GHz (1 cycle = 1 ns); other phases and fractional counters are skipped, and
a file none of whose events can be used is refused.
What is read. A str or bytes that names an existing file is read from that file; any other str starting with ``{``
or ``[`` (or bytes) is the trace's JSON text itself. A leading byte order mark is skipped, and an array of events
without its closing ``]`` (a tracer killed mid-run; the Chrome format allows it) is read as if it had one.
"""
from __future__ import annotations

import errno
import gzip
import io
import json
import os
import stat
import sys
from collections import deque
from decimal import Decimal
from pathlib import Path
from typing import Any

from ..dsl.tasks import MAX_CYCLES
from ..errors import PtortValueError
from .gc_pause import gc_paused
from .load_foreign import NothingUsable, load_foreign
from .trace import (
    MAX_CORE,
    MAX_INDEX_DEPTH,
    MAX_INT,
    MIN_INT,
    MODES,
    BadField,
    Sample,
    Span,
    Stall,
    Trace,
    Where,
    clock_value,
    cross_check,
    index_value,
    plain,
)
from .trace_files import (
    FORMAT,
    MISSING,
    VERSION,
    Count,
    NsClock,
    WholeRun,
    as_path,
    cut_path,
    io_error,
    short,
    us_text,
)

_new = tuple.__new__  # builds a record without its Python-level __new__ (3x cheaper; files hold millions)
MAX_BYTES = 256 * 2**20  # of a file and of its decompressed text: JSON in Python takes ~5-20x that in memory
MAX_EVENTS = 2_000_000
_CONTAINERS_PER_EVENT = 8  # JSON objects/arrays per event allowed before parsing (ours use 2-4; foreign args nest)
_ONLY_OURS = ("ptort_lab reads the files Trace.save(path) and to_chrome_json() write; a Chrome trace from another "
              'tool must be a list of events, or an object {"traceEvents": [...]}.')
_DAMAGED = "The trace was edited or cut short after it was written: save it again with trace.save(path)."
_FOREIGN = ("This file was not written by ptort_lab (no otherData.ptort block): its X, B/E and C events are read "
            "best effort and must be well-formed; fix or drop that event, or export the trace again from its tool.")
_TIMES_EDITED = ("A span's or stall's ts and dur are drawn from its args.start_cycles and args.end_cycles, the exact "
                 "times ptort_lab loads, so they must change together: undo the edit of ts/dur, or change the loaded "
                 "Trace in Python and save it again with trace.save(path).")
_NOTHING_USABLE = ("This file was not written by ptort_lab (no otherData.ptort block), and ptort_lab reads only its "
                   "complete (X), begin/end (B/E) and counter (C) events: export the trace again from its tool with "
                   "those (Chrome's JSON trace format), or load a file that Trace.save wrote.")


def _limits(max_bytes: Any, max_events: Any, max_depth: Any) -> tuple[int, int, int]:
    """The load limits, defaults filled in, each an int >= 1."""
    out = []
    for name, v, default in (("max_bytes", max_bytes, MAX_BYTES), ("max_events", max_events, MAX_EVENTS),
                             ("max_depth", max_depth, MAX_INDEX_DEPTH)):
        if v is None:
            v = default
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise PtortValueError(f"Trace.load({name}=...) takes an int >= 1, got {short(v)}.",
                                  hint=f"Leave it out for the default ({default:,}), or pass a larger int to read "
                                       "a bigger trace you trust.")
        out.append(v)
    return out[0], out[1], out[2]


def _too_big(src: str, what: str, limit_text: str, fix: str) -> PtortValueError:
    """A limit was passed: what, which limit, and the call that raises it."""
    return PtortValueError(f"Cannot load {src}: {what}, more than {limit_text}.",
                           hint=f"If you trust the file and have the memory, raise the limit: {fix}.")


def _mib(n: int) -> str:
    """A byte count for a message (``300,000,000 bytes (286.1 MiB)``)."""
    return f"{n:,} bytes ({n / 2**20:.1f} MiB)" if n >= 2**20 else f"{n:,} bytes"


def _read_file(p: Path, src: str, max_bytes: int) -> bytes:
    """The file's bytes, never more than ``max_bytes`` + 1 of them read (a device or a huge file cannot hang us)."""
    try:
        info = os.stat(p)
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(p))
        if not stat.S_ISREG(info.st_mode):
            raise PtortValueError(f"Cannot load {src}: it is not a regular file (a device, pipe or socket).",
                                  hint="Name the .json or .json.gz file that trace.save(...) wrote.")
        if info.st_size > max_bytes:
            raise _too_big(src, f"it is {_mib(info.st_size)}", f"max_bytes={max_bytes:,}",
                           f"Trace.load(path, max_bytes={info.st_size})")
        with open(p, "rb") as f:
            raw = _read_upto(f, max_bytes + 1, info.st_size + 1)
    except OSError as e:
        raise io_error(e, "read", p) from e
    if len(raw) > max_bytes:
        raise _too_big(src, "it grew while being read", f"max_bytes={max_bytes:,}",
                       "Trace.load(path, max_bytes=...) with a larger value")
    return raw


_CHUNK = 16 * 2**20


def _read_upto(f: Any, limit: int, expected: int) -> bytes:
    """At most ``limit`` bytes of ``f``, to its end: ``expected`` of them first, then in chunks. ``f.read(limit)``
    would allocate all of ``limit`` up front (a MemoryError for ``max_bytes=10**12``, even for a small file)."""
    parts = [f.read(min(limit, expected))]
    total = len(parts[0])
    while total < limit:
        chunk = f.read(min(limit - total, _CHUNK))
        if not chunk:
            break
        parts.append(chunk)
        total += len(chunk)
    return parts[0] if len(parts) == 1 else b"".join(parts)


def _gunzip(raw: bytes, src: str, max_bytes: int) -> bytes:
    """Decompressed bytes, at most ``max_bytes`` of them (a gzip bomb stops there instead of filling memory)."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
            data = _read_upto(f, max_bytes + 1, 16 * len(raw))  # (traces compress about 10 times)
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError; a cut-off .gz raises EOFError
        raise PtortValueError(f"Cannot load {src}: it is a damaged gzip file ({e}).", hint=_DAMAGED) from e
    if len(data) > max_bytes:
        raise _too_big(src, "it decompresses to more bytes", f"max_bytes={max_bytes:,}",
                       "Trace.load(path, max_bytes=...) with a larger value")
    return data


MAX_PATH_CHARS = 4096  # longer text (or text with a newline) is never taken for a file path


def _names_file(v: str | bytes) -> bool:
    """Does ``v`` name something on disk? (A path is short and one line; a NUL in it names nothing.)"""
    newline = "\n" if isinstance(v, str) else b"\n"
    return len(v) <= MAX_PATH_CHARS and newline not in v and os.path.lexists(v)  # type: ignore[operator]


def _path_like(v: str | bytes) -> bool:
    """Could ``v`` have been meant as a file path (short, one line, no quote: JSON text of a trace has them)?"""
    if isinstance(v, str):
        return 0 < len(v) <= MAX_PATH_CHARS and "\n" not in v and '"' not in v
    return 0 < len(v) <= MAX_PATH_CHARS and b"\n" not in v and b'"' not in v


_BOM = "\ufeff"


def _starts_json(text: str) -> bool:
    """Does ``text`` start like JSON text of a trace (``{`` or ``[``, after whitespace and a byte order mark)?"""
    return text.lstrip().removeprefix(_BOM).lstrip()[:1] in ("{", "[")


def _closed_array(text: str) -> str | None:
    """A Chrome trace in the array form that stops before its ``]`` (the format allows it: a tracer killed mid-run
    leaves one, and chrome://tracing and Perfetto read it) with the ``]`` added; None for text that is no array."""
    body = text.lstrip().removeprefix(_BOM).lstrip()
    if not body.startswith("["):
        return None
    body = body.rstrip()
    return (body[:-1] if body.endswith(",") else body) + "]"


_EXACT_FROM = 2.0**32  # µs: from here on a float's spacing nears a ns fraction, so the number is kept exactly


def _exact_if_big(text: str) -> float | Decimal:
    """A JSON number with a fraction or exponent: a float, or the exact Decimal when it is too big for a float to
    keep its ns (``load_foreign`` reads both)."""
    f = float(text)
    return f if abs(f) < _EXACT_FROM or f - f != 0.0 else Decimal(text)


def _is_ours(doc: Any) -> bool:
    """Does the parsed ``doc`` carry an ``otherData.ptort`` block (the mark of a file ptort_lab wrote)?"""
    other = doc.get("otherData") if isinstance(doc, dict) else None
    return isinstance(other, dict) and "ptort" in other


def _parsed(decoded: str) -> Any:
    """The JSON of ``decoded``, its numbers read as ``_identify`` will take the file: plain floats for a ptort_lab
    trace, big numbers exactly for a foreign one.

    A foreign trace's epoch times (torch.profiler writes µs since 1970, to the ns: 1712667379478076.150) are finer
    than a float holds there (0.25 µs apart), so they are read exactly; ours are compared with the floats save wrote,
    so they must not be. Only the parsed structure says whose a file is (a foreign trace may name a thread "ptort"):
    the text is parsed the way a quick look at it suggests (a ``"ptort"`` string in it), and again the other way in
    the rare case the structure disagrees (one parse for every file ptort_lab wrote, and for most others).
    """
    exact = '"ptort"' not in decoded
    try:
        doc = json.loads(decoded, parse_float=_exact_if_big) if exact else json.loads(decoded)
    except json.JSONDecodeError as first:
        closed = _closed_array(decoded)  # (an array is never ours: its big numbers are read exactly)
        if closed is None:
            raise
        try:
            return json.loads(closed, parse_float=_exact_if_big)
        except json.JSONDecodeError:
            raise first from None  # (more than the ] is missing: say what was wrong first)
    if _is_ours(doc) == exact:  # guessed wrong: parse again the other way (same structure, numbers read right)
        del doc  # (free the first parse before the second is built: a file may be 256 MiB)
        return json.loads(decoded) if exact else json.loads(decoded, parse_float=_exact_if_big)
    return doc


def _read(text_or_path: Any, max_bytes: int, max_events: int) -> tuple[Any, str]:
    """The parsed JSON and a name for where it came from (for error messages), within the limits. A str or bytes
    that names an existing file is that file (``Trace.load("[exp1].json")``); other bytes, and a str that starts
    with ``{`` or ``[``, are the trace's JSON text."""
    text: str | bytes
    if isinstance(text_or_path, (bytes, bytearray, memoryview)) and not _names_file(bytes(text_or_path)):
        text, src = bytes(text_or_path), "the given trace bytes"
        if len(text) > max_bytes:
            raise _too_big(src, f"they are {_mib(len(text))}", f"max_bytes={max_bytes:,}",
                           f"load_chrome_json(data, max_bytes={len(text)})")
    elif isinstance(text_or_path, str) and _starts_json(text_or_path) and not _names_file(text_or_path):
        text, src = text_or_path, "the given trace JSON text"
        if len(text) > max_bytes:
            raise _too_big(src, f"it is {len(text):,} characters", f"max_bytes={max_bytes:,}",
                           f"load_chrome_json(text, max_bytes={len(text)})")
    else:
        if isinstance(text_or_path, (bytes, bytearray, memoryview)):
            text_or_path = os.fsdecode(bytes(text_or_path))  # bytes that name a file: its path
        p = as_path(text_or_path, "Trace.load(path) needs a file path (str, bytes or pathlib.Path), JSON text or "
                    "bytes", "Write Trace.load('run.json') with the path that trace.save(...) returned.",
                    api="Trace.load", bytes_ok=True)
        if "\x00" in str(p):
            raise PtortValueError(f"Cannot load trace file {short(str(p))}: a file path cannot hold a NUL character "
                                  "('\\x00').", hint="Check how the path was built (a NUL often comes from C strings "
                                                      "or binary data); use the path that trace.save(...) returned.")
        src = f"trace file '{cut_path(p)}'"
        text = _read_file(p, src, max_bytes)
    if isinstance(text, bytes) and text[:2] == b"\x1f\x8b":
        text = _gunzip(text, src, max_bytes)
    # Parsing builds Python objects ~5-20x the text's size; refuse a file made of millions of tiny ones up front.
    containers = text.count(b"{") + text.count(b"[") if isinstance(text, bytes) else text.count("{") + text.count("[")
    allowed = _CONTAINERS_PER_EVENT * max_events + 1024
    if containers > allowed:
        raise _too_big(src, f"it holds up to {containers:,} JSON objects and arrays",
                       f"{allowed:,} ({_CONTAINERS_PER_EVENT} per event of max_events={max_events:,})",
                       f"Trace.load(path, max_events={containers // _CONTAINERS_PER_EVENT + 1})")
    # text that fails to parse but could be a path was most likely meant as one: say that no such file exists
    not_json = _ONLY_OURS
    if not src.startswith("trace file") and _path_like(text):
        shown = short(os.fsdecode(text) if isinstance(text, bytes) else text)
        not_json = (f"No file named {shown} exists either (relative paths start at {os.getcwd()}): check the path, "
                    "or pass the trace's JSON text. " + _ONLY_OURS)
    try:
        # (a file saved by a Windows editor starts with a byte order mark, which JSON readers refuse)
        decoded = text.decode("utf-8-sig") if isinstance(text, bytes) else text.removeprefix(_BOM)
        return _parsed(decoded), src
    except UnicodeDecodeError as e:  # binary data
        raise PtortValueError(f"Cannot load {src}: it is not JSON text ({e}).", hint=_ONLY_OURS) from e
    except json.JSONDecodeError as e:
        raise PtortValueError(f"Cannot load {src}: it is not JSON text ({e}).", hint=not_json) from e
    except ValueError as e:  # an int of more than sys.get_int_max_str_digits() digits
        raise PtortValueError(f"Cannot load {src}: it holds a number too long to read ({e}).",
                              hint=_ONLY_OURS) from e
    except RecursionError:
        raise PtortValueError(f"Cannot load {src}: it nests JSON arrays and objects deeper than Python's JSON reader "
                              f"can follow (about {sys.getrecursionlimit()} levels).", hint=_ONLY_OURS) from None
    except MemoryError:
        raise PtortValueError(f"Cannot load {src}: this process ran out of memory parsing it.",
                              hint="Free memory, or lower max_bytes/max_events so such files are refused before "
                                   "they are parsed.") from None


def _identify(doc: Any, src: str) -> dict[str, Any] | None:
    """The ``otherData.ptort`` block of a ptort_lab trace, None for a Chrome trace from elsewhere; refuse the rest."""
    if _is_ours(doc):
        meta = doc["otherData"]["ptort"]
        fmt = meta.get("format") if isinstance(meta, dict) else None
        if fmt != FORMAT:
            raise PtortValueError(f"Cannot load {src}: it is not a ptort_lab trace (otherData.ptort.format is "
                                  f"{short(fmt)}, expected {FORMAT!r}).", hint=_ONLY_OURS)
        version = meta.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise PtortValueError(f"Cannot load {src}: it is not a valid ptort_lab trace: otherData.ptort.version "
                                  f"is {short(version)}, expected an int >= 1.", hint=_DAMAGED)
        if version > VERSION:
            raise PtortValueError(f"Cannot load {src}: it was written by a newer ptort_lab (trace format version "
                                  f"{short(version, 20)}; this one reads up to {VERSION}).",
                                  hint="Upgrade ptort_lab, or save the trace again with this version.")
        checked: dict[str, Any] = meta  # (a dict: its format key matched)
        return checked
    # Chrome's own layouts: {"traceEvents": [...]} or a bare list of events.
    events = doc.get("traceEvents") if isinstance(doc, dict) else doc
    if not isinstance(events, list):
        got = f"an object with keys {short(sorted(doc))}" if isinstance(doc, dict) else short(doc)
        raise PtortValueError(f"Cannot load {src}: it is not a ptort_lab trace (no otherData.ptort block and no "
                              f"list of trace events; got {got}).", hint=_ONLY_OURS)
    return None


def load_chrome_json(text_or_path: str | bytes | os.PathLike[str], *, max_bytes: int | None = None,
                     max_events: int | None = None, max_depth: int | None = None) -> Trace:
    """Read a trace written by ``to_chrome_json``/``save`` back into an equal Trace.

    Accepts JSON text, bytes, or a path (``.gz`` too; a str or bytes that names an existing file is that file, even
    one starting with ``[`` or ``{``); what it checks and how a Chrome trace from another tool is read are in the
    module docstring. The limits: ``max_bytes`` (default 256 MiB) of file and of decompressed text,
    ``max_events`` (2,000,000) events, ``max_depth`` (32) levels of a span index. A bad file raises PtortValueError
    naming it, the event and field, and the fix (PtortTypeError for a ``text_or_path`` of the wrong type).
    """
    n_bytes, n_events, depth = _limits(max_bytes, max_events, max_depth)
    with gc_paused():  # the collector would rescan millions of new objects, finding nothing to free
        return _load(text_or_path, n_bytes, n_events, depth)


def _load(text_or_path: Any, n_bytes: int, n_events: int, depth: int) -> Trace:
    doc, src = _read(text_or_path, n_bytes, n_events)
    meta = _identify(doc, src)
    try:
        if meta is not None:
            return _Ours(meta, n_events, depth).trace(doc.get("traceEvents"))
        events = doc if isinstance(doc, list) else doc["traceEvents"]
        if len(events) > n_events:
            raise _too_big(src, f"it has {len(events):,} events", f"max_events={n_events:,}",
                           f"Trace.load(path, max_events={len(events)})")
        return load_foreign(events)
    except BadField as e:
        kind, hint = ("a valid ptort_lab trace", _TIMES_EDITED if isinstance(e, _EditedTime) else _DAMAGED) \
            if meta is not None else \
            ("a Chrome trace ptort_lab can read", _NOTHING_USABLE if isinstance(e, NothingUsable) else _FOREIGN)
        raise PtortValueError(f"Cannot load {src}: it is not {kind}: {e.describe()}.", hint=hint) from None
    except _TooMany as e:
        raise _too_big(src, f"its {e.what} has {e.count:,} entries", f"max_events={n_events:,}",
                       f"Trace.load(path, max_events={e.count})") from None
    except RecursionError:
        raise PtortValueError(f"Cannot load {src}: a span index nests deeper than Python can follow.",
                              hint=f"Load it with a max_depth below {sys.getrecursionlimit() // 2}.") from None


# -- a ptort_lab trace ------------------------------------------------------------------------------------------------
class _EditedTime(BadField):
    """A span's or stall's ts or dur that is not where its exact cycles are drawn (_load hints _TIMES_EDITED)."""


class _TooMany(Exception):
    """A list in the file longer than max_events allows."""

    def __init__(self, what: str, count: int) -> None:
        super().__init__(what)
        self.what, self.count = what, count


def _args(ev: dict[str, Any], at: str) -> dict[str, Any]:
    """The event's args object (Trace.save writes one on every X and C event)."""
    args = ev.get("args", MISSING)
    if type(args) is not dict:
        raise BadField(f"{at}.args", args, "an object")
    return args


def _missing(e: KeyError, at: str) -> BadField:
    """The BadField for an args key the event lacks."""
    return BadField(f"{at}.args.{e.args[0]}", MISSING, "a value (Trace.save writes every one)")


def _cycles_pair(start: Any, end: Any, at: str) -> tuple[int, int]:
    """start_cycles and end_cycles of an event, checked, with end >= start."""
    start = plain(start, "cycles", f"{at}.args.start_cycles")
    end = plain(end, "cycles", f"{at}.args.end_cycles")
    if end < start:
        raise BadField(f"{at}.args.end_cycles", end, f"a number of cycles >= start_cycles {start}")
    return start, end


class _Ours:
    """Reads the events and ``otherData.ptort`` block that ``to_chrome_json`` writes, checking every field."""

    def __init__(self, meta: dict[str, Any], max_events: int, max_depth: int) -> None:
        self.meta, self.max_events, self.max_depth = meta, max_events, max_depth
        self.clock_hz = clock_value(self.field("clock_hz"), "otherData.ptort.clock_hz")
        self.clock = NsClock(self.clock_hz)
        self.grid = self.clock.terms()  # (ns() inlined in span(): files hold millions)

    def field(self, key: str) -> Any:
        """A key of ``otherData.ptort``, which must be there."""
        if key not in self.meta:
            raise BadField(f"otherData.ptort.{key}", MISSING, "a value (Trace.save writes it)")
        return self.meta[key]

    def listed(self, key: str) -> list[Any]:
        """A list of ``otherData.ptort``, at most max_events long."""
        v = self.field(key)
        if type(v) is not list:
            raise BadField(f"otherData.ptort.{key}", v, "a list")
        if len(v) > self.max_events:
            raise _TooMany(f"otherData.ptort.{key}", len(v))
        return v

    def pairs(self, key: str, kinds: tuple[str, str]) -> dict[Any, Any]:
        """A dict stored as [key, value] pairs (keys unique), each side checked as ``kinds``."""
        out: dict[Any, Any] = {}
        for k, pair in enumerate(self.listed(key)):
            at = f"otherData.ptort.{key}[{k}]"
            if type(pair) is not list or len(pair) != 2:
                raise BadField(at, pair, "a [key, value] pair")
            name = plain(pair[0], kinds[0], f"{at}[0]")
            if name in out:
                raise BadField(f"{at}[0]", name, "a key not listed before")
            out[name] = plain(pair[1], kinds[1], f"{at}[1]")
        return out

    def span(self, ev: dict[str, Any], at: str) -> Span:
        """A span from its X event; the common case is checked inline, a failure field by field."""
        args = _args(ev, at)
        try:
            lane, process, index, task_id = args["lane"], args["process"], args["index"], args["task_id"]
            nbytes, start, end = args["bytes"], args["start_cycles"], args["end_cycles"]
        except KeyError as e:
            raise _missing(e, at) from None
        core, name = ev.get("pid", MISSING), ev.get("name", MISSING)
        if not (type(start) is int and type(end) is int and 0 <= start <= end <= MAX_CYCLES and type(core) is int
                and 0 <= core <= MAX_CORE and type(nbytes) is int and 0 <= nbytes <= MAX_INT
                and type(task_id) is int and -1 <= task_id <= MAX_INT and type(lane) is str and type(name) is str
                and type(process) is str and len(lane) + len(name) + len(process) <= 4096):
            start, end = _cycles_pair(start, end, at)
            core, name = plain(core, "core", f"{at}.pid"), plain(name, "name", f"{at}.name")
            lane, process = plain(lane, "name", f"{at}.args.lane"), plain(process, "name", f"{at}.args.process")
            nbytes = plain(nbytes, "count", f"{at}.args.bytes")
            task_id = plain(task_id, "task_id", f"{at}.args.task_id")
        if type(index) is not int or not MIN_INT <= index <= MAX_INT:
            index = _decode(index, f"{at}.args.index", self.max_depth, self.max_depth)
        n2, d, d2 = self.grid  # times(), inlined: a call per span would cost more than its test
        s = (start * n2 + d) // d2
        ts, dur = ev.get("ts"), ev.get("dur")
        if (ts != s / 1000 or dur != ((end * n2 + d) // d2 - s) / 1000 or ts is True or ts is False or dur is True
                or dur is False):
            self.refuse_times(ev, at, start, end, "span")
        return _new(Span, (core, lane, name, index, start, end, nbytes, process, task_id))

    def stall(self, ev: dict[str, Any], at: str) -> Stall:
        """A stall from its X event."""
        args = _args(ev, at)
        try:
            process, reason, start, end = args["process"], args["reason"], args["start_cycles"], args["end_cycles"]
        except KeyError as e:
            raise _missing(e, at) from None
        start, end = _cycles_pair(start, end, at)
        stall = Stall(plain(process, "name", f"{at}.args.process"), plain(reason, "name", f"{at}.args.reason"),
                      start, end)
        self.times(ev, at, start, end, "stall")
        return stall

    def times(self, ev: dict[str, Any], at: str, start: int, end: int, what: str) -> None:
        """Refuse an X event whose ``ts`` or ``dur`` is not what save writes for its cycles.

        The cycles in ``args`` are what loads; ``ts``/``dur`` are only what a viewer draws. A span shifted in the file
        (with jq, or in an editor) would load as something other than what the file shows, so it is refused, naming
        the field. Each event keeps its own ts, so a file re-sorted by time still loads. The test: save writes
        ``us_text(ns)``, ``ns / 1000`` as a float that json reads back equal; the rest (whole µs written as ints, a
        time beyond a float's ints, a bool) falls to ``refuse_times``, which compares with ``us_text`` exactly.
        """
        n2, d, d2 = self.grid
        s = (start * n2 + d) // d2
        ts, dur = ev.get("ts"), ev.get("dur")
        if (ts != s / 1000 or dur != ((end * n2 + d) // d2 - s) / 1000 or ts is True or ts is False or dur is True
                or dur is False):
            self.refuse_times(ev, at, start, end, what)

    def refuse_times(self, ev: dict[str, Any], at: str, start: int, end: int, what: str) -> None:
        """The _EditedTime for an X event whose ``ts`` or ``dur`` is not ``us_text`` of its cycles' ns, if any."""
        s, e = self.clock.ns(start), self.clock.ns(end)
        edited = f"the {what}'s ts/dur disagree with its args: the file's times were edited"
        ts = ev.get("ts", MISSING)
        if type(ts) not in (int, float) or ts != us_text(s):
            raise _EditedTime(f"{at}.ts", ts, f"{us_text(s)!r} (µs, the time of args.start_cycles {start}; {edited}, "
                                              "and args.start_cycles holds the exact start)")
        dur = ev.get("dur", MISSING)
        if type(dur) not in (int, float) or dur != us_text(e - s):
            raise _EditedTime(f"{at}.dur", dur, f"{us_text(e - s)!r} (µs, from args.start_cycles {start} to "
                                                f"args.end_cycles {end}; {edited}, and args.end_cycles holds the "
                                                "exact end)")

    def counter(self, ev: dict[str, Any], at: str) -> tuple[str, int, Any]:
        """(channel, slots, ts) of a C event; its exact cycle is in otherData.ptort.sample_cycles (``_pair``)."""
        args = _args(ev, at)
        if "slots" not in args:
            raise _missing(KeyError("slots"), at)
        slots = args["slots"]
        return (plain(ev.get("name", MISSING), "name", f"{at}.name"), plain(slots, "count", f"{at}.args.slots"),
                ev.get("ts", MISSING))

    def trace(self, events: Any) -> Trace:
        """The Trace the events and the metadata describe."""
        if type(events) is not list:
            raise BadField("traceEvents", MISSING if events is None else events, "a list of events")
        if len(events) > self.max_events:
            raise _TooMany("traceEvents", len(events))
        spans: list[Span] = []
        stalls: list[Stall] = []
        counters: list[tuple[str, int, Any]] = []
        counter_events: list[int] = []
        span_events: list[int] = []  # the event index of each span and stall, for messages about them
        stall_events: list[int] = []
        for i, ev in enumerate(events):
            if type(ev) is not dict:
                raise BadField(f"traceEvents[{i}]", ev, "an event object")
            ph = ev.get("ph")
            if ph == "X":
                cat = ev.get("cat")
                if cat == "span":
                    spans.append(self.span(ev, f"traceEvents[{i}]"))
                    span_events.append(i)
                elif cat == "stall":
                    stalls.append(self.stall(ev, f"traceEvents[{i}]"))
                    stall_events.append(i)
                else:
                    raise BadField(f"traceEvents[{i}].cat", cat, "'span' or 'stall'")
            elif ph == "C":
                counters.append(self.counter(ev, f"traceEvents[{i}]"))
                counter_events.append(i)
            elif ph != "M":  # M events only name tracks: derived from the spans, so not read back
                raise BadField(f"traceEvents[{i}].ph", ph, "'M', 'X' or 'C' (the events Trace.save writes)")
        times = [plain(t, "cycles", f"otherData.ptort.sample_cycles[{k}]")
                 for k, t in enumerate(self.listed("sample_cycles"))]
        if len(times) != len(counters):
            raise BadField("otherData.ptort.sample_cycles", Count(len(times)),
                           f"one cycle per counter (C) event: {len(counters)}")
        mode = self.field("mode")
        if mode not in MODES:
            raise BadField("otherData.ptort.mode", mode, " or ".join(map(repr, MODES)))
        clock_hz = self.clock_hz
        trace = Trace(
            spans=spans, samples=_pair(counters, counter_events, times, self.clock), stalls=stalls,
            makespan=plain(self.field("makespan"), "cycles", "otherData.ptort.makespan"),
            clock_hz=clock_hz, mode=mode,
            processes=[plain(p, "name", f"otherData.ptort.processes[{k}]")
                       for k, p in enumerate(self.listed("processes"))],
            channels=self.pairs("channels", ("name", "count")), cores=self.pairs("cores", ("core", "name")),
            process_end=self.pairs("process_end", ("name", "cycles")), launch_cycles=self.launch_cycles())
        if "whole_run" in self.meta:  # the trace of a steady-state run's first tiles: never taken for the whole run
            whole = whole_run_value(self.meta["whole_run"], "otherData.ptort.whole_run")
            trace.whole_run = whole
        # the rules between fields, as save applies them: an edited makespan or process name is refused here
        cross_check(trace, _InFile(span_events, stall_events))
        return trace

    def launch_cycles(self) -> int | None:
        """``otherData.ptort.launch_cycles``, None in a file written before it was recorded."""
        if "launch_cycles" not in self.meta:
            return None
        cycles: int = plain(self.meta["launch_cycles"], "cycles", "otherData.ptort.launch_cycles")
        return cycles


def _pair(counters: list[tuple[str, int, Any]], events: list[int], cycles: list[int], clock: NsClock) -> list[Sample]:
    """The samples: each C event with the cycle of ``sample_cycles`` drawn at its own ``ts``.

    Save writes the k-th C event for ``sample_cycles[k]``, so they pair by position; but a tool that sorts the events
    by time (``jq '.traceEvents |= sort_by(.ts)'``) keeps a valid Chrome trace while moving the C events, so then each
    takes the first unused cycle drawn at its ``ts`` (the events of one ns in file order), and the samples come back
    in the order of ``sample_cycles``, the order they had. A ``ts`` that no unused cycle is drawn at is refused: the
    file's times were edited, and either the event or ``sample_cycles`` would be wrong.
    """
    drawn = [us_text(clock.ns(c)) for c in cycles]
    if all(type(ts) in (int, float) and ts == t for (_, _, ts), t in zip(counters, drawn)):
        return [Sample(name, c, v) for (name, v, _), c in zip(counters, cycles)]
    at_time: dict[Any, deque[int]] = {}
    for j, t in enumerate(drawn):
        at_time.setdefault(t, deque()).append(j)
    placed: list[tuple[int, Sample]] = []
    for (name, v, ts), i in zip(counters, events):
        unused = at_time.get(ts) if type(ts) in (int, float) else None
        if not unused:
            raise BadField(f"traceEvents[{i}].ts", ts,
                           "the time of an otherData.ptort.sample_cycles entry not used by an earlier C event "
                           "(the C events' ts disagree with sample_cycles: the file's times were edited)")
        j = unused.popleft()
        placed.append((j, Sample(name, cycles[j], v)))
    placed.sort(key=lambda jp: jp[0])
    return [sm for _, sm in placed]


def whole_run_value(v: Any, path: str) -> WholeRun:
    """A ``whole_run`` object (``{"tiles": ..., "traced_tiles": ..., ...}``) as a WholeRun, every field checked."""
    if type(v) is not dict:
        raise BadField(path, v, "an object with " + ", ".join(WholeRun._fields))
    for key in v:
        if key not in WholeRun._fields:
            raise BadField(f"{path}.{short(key, 30)}", v[key], "no such key (the keys: "
                           + ", ".join(WholeRun._fields) + ")")
    missing = [k for k in WholeRun._fields if k not in v]
    if missing:
        raise BadField(f"{path}.{missing[0]}", MISSING, "a value (Trace.save writes it)")
    tiles, traced = plain(v["tiles"], "count", f"{path}.tiles"), plain(v["traced_tiles"], "count",
                                                                       f"{path}.traced_tiles")
    if not 1 <= traced <= tiles:
        raise BadField(f"{path}.traced_tiles", traced, f"an int in 1..tiles ({tiles:,})")
    overlap = v["overlap_pct"]
    if isinstance(overlap, bool) or not isinstance(overlap, (int, float)) or not 0 <= overlap <= 100:
        raise BadField(f"{path}.overlap_pct", overlap, "a number of percent in 0..100")
    return WholeRun(tiles, traced, plain(v["cycles"], "cycles", f"{path}.cycles"), overlap,
                    plain(v["note"], "name", f"{path}.note"))


class _InFile(Where):
    """Names the fields of a loaded Trace by where the file holds them (``traceEvents[12].args.end_cycles``)."""

    _ARGS = {"end": "args.end_cycles", "process": "args.process", "core": "pid"}

    def __init__(self, span_events: list[int], stall_events: list[int]) -> None:
        self.events = {"spans": span_events, "stalls": stall_events}

    def record(self, kind: str, i: int, field: str) -> str:
        if kind == "samples":
            return f"otherData.ptort.sample_cycles[{i}]"
        return f"traceEvents[{self.events[kind][i]}].{self._ARGS[field]}"

    def process(self, k: int) -> str:
        return f"otherData.ptort.processes[{k}]"

    def process_end(self, k: int, key: str, value: bool) -> str:
        return f"otherData.ptort.process_end[{k}][{1 if value else 0}]"

    def makespan(self) -> str:
        return "otherData.ptort.makespan"


def _decode(v: Any, path: str, depth: int, max_depth: int) -> Any:
    """A span index read back from its JSON form, checked like ``trace.index_value``."""
    t = type(v)
    if t is not list and t is not dict:
        return index_value(v, path, 0)
    if depth <= 0:
        raise BadField(path, v, f"an index nested at most max_depth={max_depth} levels deep")
    if t is list:
        return [_decode(x, f"{path}[{k}]", depth - 1, max_depth) for k, x in enumerate(v)]
    if len(v) == 1 and type(v.get("tuple")) is list:
        return tuple(_decode(x, f"{path}.tuple[{k}]", depth - 1, max_depth) for k, x in enumerate(v["tuple"]))
    if len(v) == 1 and type(v.get("dict")) is list:
        out: dict[Any, Any] = {}
        for k, pair in enumerate(v["dict"]):
            at = f"{path}.dict[{k}]"
            if type(pair) is not list or len(pair) != 2:
                raise BadField(at, pair, "a [key, value] pair")
            key = _decode(pair[0], f"{at}[0]", depth - 1, max_depth)
            try:
                out[key] = _decode(pair[1], f"{at}[1]", depth - 1, max_depth)
            except TypeError:  # a list (or a tuple holding one) cannot be a dict key
                raise BadField(f"{at}[0]", pair[0], "a hashable key (no list in it)") from None
        return out
    raise BadField(path, v, 'a list, {"tuple": [...]} or {"dict": [[key, value], ...]} (how save writes an index)')


__all__ = ["load_chrome_json", "whole_run_value", "MAX_BYTES", "MAX_EVENTS"]
