"""Chrome Trace Event JSON for a Trace (opens in ui.perfetto.dev and chrome://tracing), and a lossless loader.

Layout of ``to_chrome_json(trace)``::

    {"displayTimeUnit": "ns",
     "otherData": {"ptort": {...run metadata, exact ints...}},
     "traceEvents": [
        M events  process_name / process_sort_index per pid, thread_name / thread_sort_index per tid,
        X events  cat "span":  one per Span,  pid = core, tid = the span's lane (pipe or stage) on that core,
                  args {lane, process, index, task_id, bytes, start_cycles, end_cycles, cycles},
        X events  cat "stall": one per Stall, on a "<process> stalls" track of the process's core,
                  args {process, reason, start_cycles, end_cycles, cycles},
        C events  cat "occupancy": one per Sample, name = channel, args {"slots": occupancy},
                  on a "channels" pseudo-process placed after the cores]}

Time. ``ts``/``dur`` are microseconds on a 1 ns grid: cycle ``c`` is drawn at ``N(c) = round(c * 1e9 / clock_hz)``
ns (exact rational arithmetic), ``ts = N(start) / 1000`` and ``dur = (N(end) - N(start)) / 1000``. The viewer keeps
times as integer ns anyway (Perfetto rounds ``ts * 1000``), and on this grid every parser sees a span end exactly
where the next one starts, so back-to-back spans stay back-to-back and nest strictly (a float ``dur`` computed
independently of ``ts`` can make neighbours overlap by 1 ns at 1.8 GHz). The exact cycles are in ``args``.

Nesting guard. Perfetto needs X events on one (pid, tid) to nest strictly. In-order pipes and stages never overlap
partially, but if a cost model ever emits such spans, the later one moves to an overflow track ``"<lane> #2"``
(then ``#3``...) of the same core instead of being mis-drawn; ``args.lane`` still names its lane.

Lossless. Everything a Trace holds comes back from the file: spans and stalls from their ``args`` (file order =
list order), samples from the C events plus ``otherData.ptort.sample_cycles`` (the exact cycle of each C event, in
order), and the run fields (makespan, clock_hz, mode, processes, channels, cores, process_end) from
``otherData.ptort``; dicts are stored as ordered pairs so their order survives too. ``otherData`` is the top-level
key Perfetto skips as metadata (an unknown key makes its JSON importer stop reading).

Deterministic. Keys are sorted, events come in a fixed order, one event per line, and nothing depends on the wall
clock, ids or addresses: the same Trace gives byte-identical text.

What loads. ``load_chrome_json`` (``Trace.load``) checks every field it reads against the rules of
``trace.check_trace`` (the same rules ``save`` applies, so every saved file loads back): ints where ints, times whole
cycles in 0..2**53 with ends >= starts, names strings of at most 4096 characters, a known mode, indices of plain
values nested at most ``max_depth`` deep. Before parsing it bounds what reading may cost: ``max_bytes`` of file and of
decompressed text, ``max_events`` events (and 8 JSON objects or arrays per event). Anything else raises a
PtortValueError naming the source, the event index and field, and the fix; a limit names the argument that raises it.
A Chrome trace from another tool (no ``otherData.ptort``) loads best effort, in one linear pass: X events become spans
(``pid`` = core, lane = the thread's name), whole-number C series become samples, times are rebased to the first
event and read at 1 GHz (1 cycle = 1 ns); other phases and fractional counters are skipped.
"""
from __future__ import annotations

import errno
import gzip
import io
import itertools
import json
import os
import stat
import sys
from fractions import Fraction
from pathlib import Path
from typing import Any

from ..errors import PtortTypeError, PtortValueError
from .trace import (
    MAX_CORE,
    MAX_CYCLES,
    MAX_INDEX_DEPTH,
    MAX_INT,
    MAX_NAME_CHARS,
    MIN_INT,
    MODES,
    BadField,
    Sample,
    Span,
    Stall,
    Trace,
    check_trace,
    clock_value,
    index_value,
    plain,
)

FORMAT = "ptort-chrome-trace"
VERSION = 1
CHANNELS_PROCESS = "channels"
# Canonical pipe order inside one core (NPU_MODEL.md §2.1): scalar, loads, cube path, vector, stores.
PIPE_ORDER = ("S", "MTE2", "MTE1", "M", "CUBE", "FIX", "V", "VEC", "VECTOR", "V2", "MTE3")


# -- values -------------------------------------------------------------------------------------------------------
def _encode(v: Any) -> Any:
    """A Span.index (already checked by check_trace) as JSON that decodes to an equal value (tuples, dicts tagged)."""
    if isinstance(v, tuple):
        return {"tuple": [_encode(x) for x in v]}
    if isinstance(v, list):
        return [_encode(x) for x in v]
    if isinstance(v, dict):
        return {"dict": [[_encode(k), _encode(x)] for k, x in v.items()]}
    return v


class _Clock:
    """Cycles -> integer ns, ``round(cycles * 1e9 / clock_hz)`` with halves rounded up, in exact integer math."""

    def __init__(self, clock_hz: float) -> None:
        ratio = Fraction(10**9) / Fraction(clock_hz)  # ns per cycle, exactly (a float clock is a dyadic rational)
        self._num2, self._den, self._den2 = 2 * ratio.numerator, ratio.denominator, 2 * ratio.denominator

    def ns(self, cycles: int) -> int:
        # floor(c * p / q + 1/2) == (2 c p + q) // 2 q
        return (cycles * self._num2 + self._den) // self._den2


def _us(ns: int) -> float | int:
    """µs for an integer ns, as a short decimal (``1500`` ns -> ``1.5``; whole µs stay ints)."""
    q, r = divmod(ns, 1000)
    return q if r == 0 else ns / 1000


# -- tracks -------------------------------------------------------------------------------------------------------
def _lane_key(lane: str, processes: dict[str, int], first_seen: dict[str, int]) -> tuple[int, int, str]:
    if lane in processes:
        return (0, processes[lane], lane)
    unit = lane.rsplit(".", 1)[-1].upper()
    if unit in PIPE_ORDER:
        return (1, PIPE_ORDER.index(unit), lane)
    return (2, first_seen[lane], lane)


def _nest(items: list[tuple[int, int, int]]) -> dict[int, int]:
    """Overflow level per item so that each level nests strictly.

    ``items`` are (start_ns, end_ns, key) in file order. A viewer sorts by start (stably) and keeps a stack of open
    slices; an item that starts inside the top slice but ends after it would partially overlap, so it goes one
    level down, where the same test repeats.
    """
    stacks: list[list[int]] = []
    level: dict[int, int] = {}
    for start, end, key in sorted(items, key=lambda x: x[0]):
        k = 0
        while True:
            if k == len(stacks):
                stacks.append([])
            stack = stacks[k]
            while stack and stack[-1] <= start:
                stack.pop()
            if not stack or end <= stack[-1]:
                stack.append(end)
                level[key] = k
                break
            k += 1
    return level


def _process_cores(trace: Trace) -> dict[str, int]:
    """The core each process ran on (its first span), for placing its stall track."""
    out: dict[str, int] = {}
    for sp in trace.spans:
        if sp.process and sp.process not in out:
            out[sp.process] = sp.core
    for sp in trace.spans:
        out.setdefault(sp.lane, sp.core)
    for core, name in trace.cores.items():
        out.setdefault(name, core)
    return out


# -- export -------------------------------------------------------------------------------------------------------
def chrome_events(trace: Trace) -> tuple[list[dict[str, Any]], list[int]]:
    """The traceEvents list and the exact cycle of each C event (in order); refuses a Trace that breaks the rules
    of ``trace.check_trace`` (what Trace.load would refuse)."""
    return _events(check_trace(trace, "chrome_events()"))


def _events(trace: Trace) -> tuple[list[dict[str, Any]], list[int]]:
    clock = _Clock(trace.clock_hz)
    ns = clock.ns
    cores = sorted(set(trace.cores) | {sp.core for sp in trace.spans})
    where = _process_cores(trace)
    stall_procs = list(dict.fromkeys(st.process for st in trace.stalls))
    chan_pid = (max(cores) + 1) if cores else 0
    for p in stall_procs:
        if p not in where:
            where[p] = chan_pid
    pids = sorted(set(cores) | {where[p] for p in stall_procs} | ({chan_pid} if trace.samples else set()))

    # Tracks: (pid, kind, name, level) with kind 0 = lane, 1 = stalls.
    proc_rank = {p: i for i, p in enumerate(trace.processes)}
    for p in stall_procs:
        proc_rank.setdefault(p, len(proc_rank))
    first_seen: dict[str, int] = {}
    span_items: dict[tuple[int, str], list[tuple[int, int, int]]] = {}
    for i, sp in enumerate(trace.spans):
        first_seen.setdefault(sp.lane, i)
        span_items.setdefault((sp.core, sp.lane), []).append((ns(sp.start), ns(sp.end), i))
    stall_items: dict[tuple[int, str], list[tuple[int, int, int]]] = {}
    for i, st in enumerate(trace.stalls):
        stall_items.setdefault((where[st.process], st.process), []).append((ns(st.start), ns(st.end), i))
    span_level: dict[int, int] = {}
    for items in span_items.values():
        span_level.update(_nest(items))
    stall_level: dict[int, int] = {}
    for items in stall_items.values():
        stall_level.update(_nest(items))

    tracks: set[tuple[int, int, str, int]] = set()
    for i, sp in enumerate(trace.spans):
        tracks.add((sp.core, 0, sp.lane, span_level[i]))
    for i, st in enumerate(trace.stalls):
        tracks.add((where[st.process], 1, st.process, stall_level[i]))

    lanes_on = {(t[0], t[2]) for t in tracks if t[1] == 0}

    def track_key(t: tuple[int, int, str, int]) -> tuple[Any, ...]:
        # A lane, its overflow levels, then the stall track of the same-named process; other stall tracks last.
        pid, kind, name, level = t
        if kind == 0:
            return (pid, _lane_key(name, proc_rank, first_seen), kind, level)
        if (pid, name) in lanes_on:
            return (pid, _lane_key(name, proc_rank, first_seen), kind, level)
        return (pid, (3, proc_rank[name], name), kind, level)

    ordered = sorted(tracks, key=track_key)
    tid_of = {t: i + 1 for i, t in enumerate(ordered)}  # globally unique tids: viewers key threads by tid

    events: list[dict[str, Any]] = []
    for sort, pid in enumerate(pids):
        name = CHANNELS_PROCESS if pid == chan_pid else trace.cores.get(pid, f"core{pid}")
        events.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": name}})
        events.append({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0, "args": {"sort_index": sort}})
        for t in ordered:
            if t[0] != pid:
                continue
            _, kind, tname, level = t
            label = tname if kind == 0 else f"{tname} stalls"
            if level:
                label += f" #{level + 1}"
            tid = tid_of[t]
            events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": label}})
            events.append({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid,
                           "args": {"sort_index": tid}})

    for i, sp in enumerate(trace.spans):
        s, e = ns(sp.start), ns(sp.end)
        events.append({
            "ph": "X", "cat": "span", "name": sp.name, "pid": sp.core,
            "tid": tid_of[(sp.core, 0, sp.lane, span_level[i])], "ts": _us(s), "dur": _us(e - s),
            "args": {"lane": sp.lane, "process": sp.process, "index": _encode(sp.index), "task_id": sp.task_id,
                     "bytes": sp.bytes, "start_cycles": sp.start, "end_cycles": sp.end, "cycles": sp.end - sp.start},
        })
    for i, st in enumerate(trace.stalls):
        s, e = ns(st.start), ns(st.end)
        pid = where[st.process]
        events.append({
            "ph": "X", "cat": "stall", "name": st.reason, "pid": pid,
            "tid": tid_of[(pid, 1, st.process, stall_level[i])], "ts": _us(s), "dur": _us(e - s),
            "args": {"process": st.process, "reason": st.reason, "start_cycles": st.start, "end_cycles": st.end,
                     "cycles": st.end - st.start},
        })
    sample_cycles = []
    for sm in trace.samples:
        events.append({"ph": "C", "cat": "occupancy", "name": sm.channel, "pid": chan_pid, "tid": 0,
                       "ts": _us(ns(sm.time)), "args": {"slots": sm.occupancy}})
        sample_cycles.append(sm.time)
    return events, sample_cycles


def _metadata(trace: Trace, sample_cycles: list[int]) -> dict[str, Any]:
    return {
        "format": FORMAT,
        "version": VERSION,
        "clock_hz": trace.clock_hz,
        "makespan": trace.makespan,
        "mode": trace.mode,
        "processes": list(trace.processes),
        "channels": [[k, v] for k, v in trace.channels.items()],
        "cores": [[k, v] for k, v in trace.cores.items()],
        "process_end": [[k, v] for k, v in trace.process_end.items()],
        "sample_cycles": sample_cycles,
        "time_grid": "ts/dur in us on a 1 ns grid: round(cycles * 1e9 / clock_hz) ns; exact cycles in args",
    }


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
_dumps = _ENCODER.encode  # one encoder for all events (json.dumps with options builds one per call)


def to_chrome_json(trace: Trace) -> str:
    """The trace as Chrome Trace Event JSON text (deterministic: same trace, same bytes)."""
    return _chrome_text(check_trace(trace, "to_chrome_json()"))


def _chrome_text(trace: Trace) -> str:
    events, sample_cycles = _events(trace)
    body = ",\n".join(_dumps(e) for e in events)
    # Top-level keys in sorted order, written by hand so that each event sits on its own line.
    return ('{"displayTimeUnit":"ns",\n"otherData":' + _dumps({"ptort": _metadata(trace, sample_cycles)})
            + ',\n"traceEvents":[\n' + body + ("\n" if body else "") + "]}\n")


# -- files ----------------------------------------------------------------------------------------------------------
def _path(path: Any, needs: str, hint: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise PtortTypeError(f"{needs}, got {_short(path)} of type {type(path).__name__}.", hint=hint)
    return Path(path)


def _io_error(e: OSError, verb: str, path: Path) -> PtortValueError:
    """The OSError ``e`` from ``verb``-ing ("write" or "read") the trace file ``path``: its real cause, the path and a
    fix (one place for save and load, so each cause gets its own words instead of a guess)."""
    api = "Trace.save" if verb == "write" else "Trace.load"
    code = e.errno
    folder = path.parent
    if code == errno.ENOENT and verb == "write" and not folder.is_dir():
        what, hint = (f"the folder '{folder}' does not exist",
                      f"Create it first (Path('{folder}').mkdir(parents=True)) or save into an existing folder.")
    elif code == errno.ENOENT and verb == "write":
        what, hint = (f"the folder '{folder}' does not take new files (a special file system, like /proc)",
                      f"Save into an ordinary folder you may write, e.g. trace.save('{path.name}') in {os.getcwd()}.")
    elif code == errno.ENOENT:
        what, hint = ("it does not exist",
                      f"Check the path (relative paths start at {os.getcwd()}); use the path that trace.save(...) "
                      "returned.")
    elif code == errno.EISDIR:
        what = "it is a folder, not a file"
        hint = (f"Give a file name inside it, e.g. trace.save('{path / 'run.json'}')." if verb == "write" else
                "Name the .json or .json.gz file in it that trace.save(...) wrote.")
    elif code == errno.ENOTDIR:
        what, hint = ("a part of the path before the file name is a file, not a folder",
                      "Check the path: every part before the file name must be a folder.")
    elif code in (errno.EACCES, errno.EPERM):
        what = "permission denied"
        hint = (f"Save into a folder you may write (your home folder, or the notebook's folder), or change the "
                f"permissions of '{folder}'." if verb == "write" else
                f"Make the file readable (chmod u+r '{path}'), or copy it somewhere you may read.")
    elif code == errno.EROFS:
        what, hint = ("the file system is read-only",
                      "Save into a folder on a writable file system (your home folder, or the notebook's folder).")
    elif code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        what, hint = ("no space is left on the device",
                      "Free some space, save elsewhere, or save as .json.gz (about 10 times smaller); a file that was "
                      "there already is left as it was.")
    elif code == errno.ENAMETOOLONG:
        what, hint = "the file name is too long for the file system", "Use a shorter file name."
    else:
        what, hint = (e.strerror or str(e)), f"Check the path and that you may {verb} there."
    cause = f"{e.strerror}, errno {errno.errorcode.get(code, code)}" if e.strerror else type(e).__name__
    return PtortValueError(f"{api}: cannot {verb} '{path}': {what} ({cause}).", hint=hint)


_temp_ids = itertools.count()


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` whole or not at all: into a new file next to ``path``, then renamed over it (a full disk or a
    crash never leaves half a trace, nor destroys the file that was there)."""
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    if target.exists() and not target.is_file():  # /dev/null, a pipe: write into it, never replace it
        with open(target, "wb") as f:
            f.write(data)
        return
    temp = target.with_name(f".ptort-{os.getpid()}-{next(_temp_ids)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except PermissionError:
        if not target.is_file():
            raise
        with open(target, "wb") as f:  # a writable file in a folder that takes no new files: write it in place
            f.write(data)
        return
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def save(trace: Trace, path: str | os.PathLike[str]) -> Path:
    """Write ``to_chrome_json(trace)`` to ``path`` (gzip-compressed, reproducibly, when it ends in ``.gz``); the file
    is replaced whole or not at all."""
    p = _path(path, "Trace.save(path) needs a file path (str or pathlib.Path)",
              "Write trace.save('run.json') ('run.json.gz' to compress).")
    data = _chrome_text(check_trace(trace, "Trace.save")).encode("ascii")
    if p.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    try:
        _write(p, data)
    except OSError as e:
        raise _io_error(e, "write", p) from e
    return p


# -- load: reading --------------------------------------------------------------------------------------------------
MAX_BYTES = 256 * 2**20  # of a file and of its decompressed text: JSON in Python takes ~5-20x that in memory
MAX_EVENTS = 2_000_000
_CONTAINERS_PER_EVENT = 8  # JSON objects/arrays per event allowed before parsing (ours use 2-4; foreign args nest)
_ONLY_OURS = ("ptort_lab reads the files Trace.save(path) and to_chrome_json() write; a Chrome trace from another "
              "tool needs a traceEvents list.")
_DAMAGED = "The trace was edited or cut short after it was written: save it again with trace.save(path)."
_FOREIGN = ("This file was not written by ptort_lab (no otherData.ptort block): its X and C events are read best "
            "effort and must be well-formed; fix or drop that event, or export the trace again from its tool.")


def _short(v: Any, n: int = 60) -> str:
    r = repr(v)
    return r if len(r) <= n else r[:n - 3] + "..."


def _limits(max_bytes: Any, max_events: Any, max_depth: Any) -> tuple[int, int, int]:
    """The load limits, defaults filled in, each an int >= 1."""
    out = []
    for name, v, default in (("max_bytes", max_bytes, MAX_BYTES), ("max_events", max_events, MAX_EVENTS),
                             ("max_depth", max_depth, MAX_INDEX_DEPTH)):
        if v is None:
            v = default
        if isinstance(v, bool) or not isinstance(v, int) or v < 1:
            raise PtortValueError(f"Trace.load({name}=...) takes an int >= 1, got {_short(v)}.",
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
            raw = f.read(max_bytes + 1)
    except OSError as e:
        raise _io_error(e, "read", p) from e
    if len(raw) > max_bytes:
        raise _too_big(src, "it grew while being read", f"max_bytes={max_bytes:,}",
                       "Trace.load(path, max_bytes=...) with a larger value")
    return raw


def _gunzip(raw: bytes, src: str, max_bytes: int) -> bytes:
    """Decompressed bytes, at most ``max_bytes`` of them (a gzip bomb stops there instead of filling memory)."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
            data = f.read(max_bytes + 1)
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError; a cut-off .gz raises EOFError
        raise PtortValueError(f"Cannot load {src}: it is a damaged gzip file ({e}).", hint=_DAMAGED) from e
    if len(data) > max_bytes:
        raise _too_big(src, "it decompresses to more bytes", f"max_bytes={max_bytes:,}",
                       "Trace.load(path, max_bytes=...) with a larger value")
    return data


def _read(text_or_path: Any, max_bytes: int, max_events: int) -> tuple[Any, str]:
    """The parsed JSON and a name for where it came from (for error messages), within the limits."""
    text: str | bytes
    if isinstance(text_or_path, (bytes, bytearray, memoryview)):
        text, src = bytes(text_or_path), "the given trace bytes"
        if len(text) > max_bytes:
            raise _too_big(src, f"they are {_mib(len(text))}", f"max_bytes={max_bytes:,}",
                           f"load_chrome_json(data, max_bytes={len(text)})")
    elif isinstance(text_or_path, str) and text_or_path.lstrip()[:1] in ("{", "["):
        text, src = text_or_path, "the given trace JSON text"
        if len(text) > max_bytes:
            raise _too_big(src, f"it is {len(text):,} characters", f"max_bytes={max_bytes:,}",
                           f"load_chrome_json(text, max_bytes={len(text)})")
    else:
        p = _path(text_or_path, "Trace.load(path) needs a file path (str or pathlib.Path), JSON text or bytes",
                  "Write Trace.load('run.json') with the path that trace.save(...) returned.")
        src = f"trace file '{p}'"
        text = _read_file(p, src, max_bytes)
    if isinstance(text, bytes) and text[:2] == b"\x1f\x8b":
        text = _gunzip(text, src, max_bytes)
    # Parsing builds Python objects ~5-20x the text's size; refuse a file made of millions of tiny ones up front.
    containers = text.count(b"{" if isinstance(text, bytes) else "{") + \
        text.count(b"[" if isinstance(text, bytes) else "[")
    allowed = _CONTAINERS_PER_EVENT * max_events + 1024
    if containers > allowed:
        raise _too_big(src, f"it holds up to {containers:,} JSON objects and arrays",
                       f"{allowed:,} ({_CONTAINERS_PER_EVENT} per event of max_events={max_events:,})",
                       f"Trace.load(path, max_events={containers // _CONTAINERS_PER_EVENT + 1})")
    try:
        return json.loads(text.decode("utf-8") if isinstance(text, bytes) else text), src
    except UnicodeDecodeError as e:  # binary data
        raise PtortValueError(f"Cannot load {src}: it is not JSON text ({e}).", hint=_ONLY_OURS) from e
    except json.JSONDecodeError as e:
        raise PtortValueError(f"Cannot load {src}: it is not JSON text ({e}).", hint=_ONLY_OURS) from e
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
    other = doc.get("otherData") if isinstance(doc, dict) else None
    if isinstance(other, dict) and "ptort" in other:
        meta = other["ptort"]
        fmt = meta.get("format") if isinstance(meta, dict) else None
        if fmt != FORMAT:
            raise PtortValueError(f"Cannot load {src}: it is not a ptort_lab trace (otherData.ptort.format is "
                                  f"{_short(fmt)}, expected {FORMAT!r}).", hint=_ONLY_OURS)
        version = meta.get("version")
        if isinstance(version, bool) or not isinstance(version, int) or version < 1:
            raise PtortValueError(f"Cannot load {src}: it is not a valid ptort_lab trace: otherData.ptort.version "
                                  f"is {_short(version)}, expected an int >= 1.", hint=_DAMAGED)
        if version > VERSION:
            raise PtortValueError(f"Cannot load {src}: it was written by a newer ptort_lab (trace format version "
                                  f"{_short(version, 20)}; this one reads up to {VERSION}).",
                                  hint="Upgrade ptort_lab, or save the trace again with this version.")
        return meta
    # Chrome's own layouts: {"traceEvents": [...]} or a bare list of events.
    events = doc.get("traceEvents") if isinstance(doc, dict) else doc
    if not isinstance(events, list):
        got = f"an object with keys {_short(sorted(doc))}" if isinstance(doc, dict) else _short(doc)
        raise PtortValueError(f"Cannot load {src}: it is not a ptort_lab trace (no otherData.ptort block and no "
                              f"list of trace events; got {got}).", hint=_ONLY_OURS)
    return None


def load_chrome_json(text_or_path: str | bytes | os.PathLike[str], *, max_bytes: int | None = None,
                     max_events: int | None = None, max_depth: int | None = None) -> Trace:
    """Read a trace written by ``to_chrome_json``/``save`` back into an equal Trace.

    Accepts JSON text, bytes, or a path (``.gz`` too); what it checks and how a Chrome trace from another tool is
    read are in the module docstring. The limits: ``max_bytes`` (default 256 MiB) of file and of decompressed text,
    ``max_events`` (2,000,000) events, ``max_depth`` (32) levels of a span index. A bad file raises PtortValueError
    naming it, the event and field, and the fix (PtortTypeError for a ``text_or_path`` of the wrong type).
    """
    n_bytes, n_events, depth = _limits(max_bytes, max_events, max_depth)
    from .runner import _gc_paused  # the collector would rescan millions of new objects, finding nothing to free
    with _gc_paused():
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
        return _foreign(events)
    except BadField as e:
        kind, hint = ("a valid ptort_lab trace", _DAMAGED) if meta is not None else \
            ("a Chrome trace ptort_lab can read", _FOREIGN)
        raise PtortValueError(f"Cannot load {src}: it is not {kind}: {e.describe()}.", hint=hint) from None
    except _TooMany as e:
        raise _too_big(src, f"its {e.what} has {e.count:,} entries", f"max_events={n_events:,}",
                       f"Trace.load(path, max_events={e.count})") from None
    except RecursionError:
        raise PtortValueError(f"Cannot load {src}: a span index nests deeper than Python can follow.",
                              hint=f"Load it with a max_depth below {sys.getrecursionlimit() // 2}.") from None


# -- load: a ptort_lab trace ------------------------------------------------------------------------------------------
class _TooMany(Exception):
    """A list in the file longer than max_events allows."""

    def __init__(self, what: str, count: int) -> None:
        super().__init__(what)
        self.what, self.count = what, count


class _Missing:
    """Stands for a key the file lacks, so messages say "... is missing"."""

    def __repr__(self) -> str:
        return "missing"


_MISSING = _Missing()
_new = tuple.__new__  # builds a record without its Python-level __new__ (3x cheaper; files hold millions)
def _args(ev: dict[str, Any], at: str) -> dict[str, Any]:
    """The event's args object (Trace.save writes one on every X and C event)."""
    args = ev.get("args", _MISSING)
    if type(args) is not dict:
        raise BadField(f"{at}.args", args, "an object")
    return args


def _missing(e: KeyError, at: str) -> BadField:
    """The BadField for an args key the event lacks."""
    return BadField(f"{at}.args.{e.args[0]}", _MISSING, "a value (Trace.save writes every one)")


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

    def field(self, key: str) -> Any:
        """A key of ``otherData.ptort``, which must be there."""
        if key not in self.meta:
            raise BadField(f"otherData.ptort.{key}", _MISSING, "a value (Trace.save writes it)")
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
        core, name = ev.get("pid", _MISSING), ev.get("name", _MISSING)
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
        return _new(Span, (core, lane, name, index, start, end, nbytes, process, task_id))

    def stall(self, ev: dict[str, Any], at: str) -> Stall:
        """A stall from its X event."""
        args = _args(ev, at)
        try:
            process, reason, start, end = args["process"], args["reason"], args["start_cycles"], args["end_cycles"]
        except KeyError as e:
            raise _missing(e, at) from None
        start, end = _cycles_pair(start, end, at)
        return Stall(plain(process, "name", f"{at}.args.process"), plain(reason, "name", f"{at}.args.reason"),
                     start, end)

    def counter(self, ev: dict[str, Any], at: str) -> tuple[str, int]:
        """(channel, slots) of a C event; its cycle comes from otherData.ptort.sample_cycles."""
        args = _args(ev, at)
        if "slots" not in args:
            raise _missing(KeyError("slots"), at)
        slots = args["slots"]
        return plain(ev.get("name", _MISSING), "name", f"{at}.name"), plain(slots, "count", f"{at}.args.slots")

    def trace(self, events: Any) -> Trace:
        """The Trace the events and the metadata describe."""
        if type(events) is not list:
            raise BadField("traceEvents", _MISSING if events is None else events, "a list of events")
        if len(events) > self.max_events:
            raise _TooMany("traceEvents", len(events))
        spans: list[Span] = []
        stalls: list[Stall] = []
        counters: list[tuple[str, int]] = []
        for i, ev in enumerate(events):
            if type(ev) is not dict:
                raise BadField(f"traceEvents[{i}]", ev, "an event object")
            ph = ev.get("ph")
            if ph == "X":
                cat = ev.get("cat")
                if cat == "span":
                    spans.append(self.span(ev, f"traceEvents[{i}]"))
                elif cat == "stall":
                    stalls.append(self.stall(ev, f"traceEvents[{i}]"))
                else:
                    raise BadField(f"traceEvents[{i}].cat", cat, "'span' or 'stall'")
            elif ph == "C":
                counters.append(self.counter(ev, f"traceEvents[{i}]"))
            elif ph != "M":  # M events only name tracks: derived from the spans, so not read back
                raise BadField(f"traceEvents[{i}].ph", ph, "'M', 'X' or 'C' (the events Trace.save writes)")
        times = [plain(t, "cycles", f"otherData.ptort.sample_cycles[{k}]")
                 for k, t in enumerate(self.listed("sample_cycles"))]
        if len(times) != len(counters):
            raise BadField("otherData.ptort.sample_cycles", _Count(len(times)),
                           f"one cycle per counter (C) event: {len(counters)}")
        mode = self.field("mode")
        if mode not in MODES:
            raise BadField("otherData.ptort.mode", mode, " or ".join(map(repr, MODES)))
        return Trace(
            spans=spans, samples=[Sample(name, t, v) for (name, v), t in zip(counters, times)], stalls=stalls,
            makespan=plain(self.field("makespan"), "cycles", "otherData.ptort.makespan"),
            clock_hz=clock_value(self.field("clock_hz"), "otherData.ptort.clock_hz"), mode=mode,
            processes=[plain(p, "name", f"otherData.ptort.processes[{k}]")
                       for k, p in enumerate(self.listed("processes"))],
            channels=self.pairs("channels", ("name", "count")), cores=self.pairs("cores", ("core", "name")),
            process_end=self.pairs("process_end", ("name", "cycles")))


class _Count:
    """A list shown by its length in a message ("is a list of 3")."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __repr__(self) -> str:
        return f"a list of {self.n}"


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


# -- load: a Chrome trace from another tool ---------------------------------------------------------------------------
def _ns(v: Any, i: int, key: str) -> int:
    """A foreign ts/dur in µs as whole ns (a JSON number; 1 cycle = 1 ns at the 1 GHz these traces are read at)."""
    t = type(v)
    if t is float:
        ns = v * 1000
        if ns - ns == 0.0:  # finite (a finite ts near the float limit is not, times 1000)
            return round(ns)
    elif t is int:
        return v * 1000
    raise BadField(f"traceEvents[{i}].{key}", v, "a finite number of µs")


def _pid(ev: dict[str, Any], i: int) -> int:
    """A foreign event's pid, which becomes its span's core."""
    pid = ev.get("pid", 0)
    if type(pid) is int and 0 <= pid <= MAX_CORE:
        return pid
    raise BadField(f"traceEvents[{i}].pid", pid, "a process id (an int in 0..2**31-1), which becomes the span's core")


def _tid(ev: dict[str, Any], i: int) -> int | str:
    """A foreign event's tid (a key for its thread's name)."""
    tid = ev.get("tid", 0)
    if type(tid) is int or (type(tid) is str and len(tid) <= MAX_NAME_CHARS):
        return tid
    raise BadField(f"traceEvents[{i}].tid", tid, "a thread id (an int or a short string)")


def _name(ev: dict[str, Any], i: int) -> str:
    """A foreign event's name, checked like every name."""
    name = ev.get("name", "")
    if type(name) is str and len(name) <= MAX_NAME_CHARS:
        return name
    return plain(name, "name", f"traceEvents[{i}].name")  # raises BadField, or makes a str subclass plain


def _foreign_names(events: list[Any]) -> tuple[dict[tuple[int, Any], str], dict[int, str]]:
    """Thread names by (pid, tid) and process names by pid, from M events anywhere in the file."""
    threads: dict[tuple[int, Any], str] = {}
    procs: dict[int, str] = {}
    for i, ev in enumerate(events):
        if type(ev) is dict and ev.get("ph") == "M" and ev.get("name") in ("thread_name", "process_name"):
            args = ev.get("args", _MISSING)
            if type(args) is not dict:
                raise BadField(f"traceEvents[{i}].args", args, "an object holding the name")
            label = plain(args.get("name", _MISSING), "name", f"traceEvents[{i}].args.name")
            if ev["name"] == "thread_name":
                threads[(_pid(ev, i), _tid(ev, i))] = label
            else:
                procs[_pid(ev, i)] = label
    return threads, procs


def _whole(v: Any) -> bool:
    """Is ``v`` a whole number of slots (a C event value ptort_lab can keep as a Sample)?"""
    t = type(v)
    return (t is int or (t is float and v - v == 0.0 and v == int(v))) and 0 <= v <= MAX_INT


def _foreign(events: list[Any]) -> Trace:
    """X events as spans, whole-number C series as samples, times rebased to the first of them (one pass each)."""
    threads, procs = _foreign_names(events)
    raw_spans: list[tuple[int, Any, str, int, int]] = []
    raw_samples: list[tuple[str, int, int]] = []
    for i, ev in enumerate(events):
        if type(ev) is not dict:
            raise BadField(f"traceEvents[{i}]", ev, "an event object")
        ph = ev.get("ph")
        if ph == "X":
            start = _ns(ev.get("ts", _MISSING), i, "ts")
            dur = _ns(ev.get("dur", _MISSING), i, "dur")
            if dur < 0:
                raise BadField(f"traceEvents[{i}].dur", ev["dur"], "a finite number of µs >= 0")
            raw_spans.append((_pid(ev, i), _tid(ev, i), _name(ev, i), start, start + dur))
        elif ph == "C":
            ts, name, args = _ns(ev.get("ts", _MISSING), i, "ts"), _name(ev, i), ev.get("args")
            if type(args) is not dict:
                continue
            for key, value in args.items():
                if _whole(value):
                    series = name if key == "slots" or len(args) == 1 else f"{name}.{key}"
                    raw_samples.append((plain(series, "name", f"traceEvents[{i}].args"), ts, int(value)))
    t0 = min([s[3] for s in raw_spans] + [s[1] for s in raw_samples], default=0)
    last = max([s[4] for s in raw_spans] + [s[1] for s in raw_samples], default=0)
    if last - t0 > MAX_CYCLES:
        raise BadField("traceEvents", _Count(len(events)), f"events within 2**53 ns of the first one (they span "
                                                            f"{(last - t0) // (86400 * 10**9):,} days)")
    lanes = {key: threads.get(key, str(key[1])) for key in {(s[0], s[1]) for s in raw_spans}}
    spans = [_new(Span, (pid, lanes[(pid, tid)], name, None, s - t0, e - t0, 0, "", -1))
             for pid, tid, name, s, e in raw_spans]
    samples = [_new(Sample, (name, ts - t0, v)) for name, ts, v in raw_samples]
    return Trace(spans=spans, samples=samples, makespan=last - t0, clock_hz=1e9,
                 processes=list(dict.fromkeys(sp.lane for sp in spans)), cores=procs)


__all__ = ["to_chrome_json", "save", "load_chrome_json", "chrome_events", "MAX_BYTES", "MAX_EVENTS"]
