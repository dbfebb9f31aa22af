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
order; a file whose events were re-sorted by time pairs each C event with a cycle drawn at its own ``ts``), and the
run fields (makespan, clock_hz, mode, processes, channels, cores, process_end, and ``whole_run`` for the trace of
part of a run) from ``otherData.ptort``; dicts are stored as ordered pairs so their order survives too.
``otherData`` is the top-level key Perfetto skips as metadata (an unknown key makes its JSON importer stop reading).

Deterministic. Keys are sorted, events come in a fixed order, one event per line, and nothing depends on the wall
clock, ids or addresses: the same Trace gives byte-identical text.

Reading a file back is ``load.py`` (and ``load_foreign.py`` for Chrome traces from other tools).
"""
from __future__ import annotations

import errno
import gzip
import heapq
import itertools
import json
import os
import stat
from enum import IntEnum
from pathlib import Path
from typing import Any, Callable, NamedTuple

from ..errors import PtortValueError
from .gc_pause import gc_paused
from .load import MAX_BYTES, MAX_EVENTS, load_chrome_json, whole_run_value
from .machine import Pipe
from .trace import BadField, Trace, check_trace
from .trace_files import FORMAT, VERSION, NsClock, WholeRun, as_path, io_error, short, us_text

CHANNELS_PROCESS = "channels"
# The order of a core's pipe lanes (NPU_MODEL.md §2.1): loads, cube path, vector, stores (Pipe's order).
PIPE_ORDER: tuple[str, ...] = tuple(p.value for p in Pipe)


class TrackKind(IntEnum):
    """What a thread row holds; at one lane, the lane's row comes before its process's stall row."""

    LANE = 0  # the spans of one lane (a pipe or a stage) of a core, at one overflow level
    STALLS = 1  # the stalls of one process


TrackId = tuple[int, TrackKind, str, int]  # (pid, what it holds, lane or process name, overflow level)


class Layout(NamedTuple):
    """Where the exporter puts each record of a Trace (``track_layout``): the rows any front end draws."""

    where: dict[str, int]  # the pid of each process's stall row
    chan_pid: int  # the pid of the channels' counters
    pids: list[int]  # every pid, in order
    span_level: dict[int, int]  # the overflow level of each span (by index)
    stall_level: dict[int, int]  # the overflow level of each stall (by index)
    tracks: list[TrackId]  # every track, in file order


def track_layout(trace: Trace) -> Layout:
    """The exporter's rows for a checked Trace: span ``i`` is on ``(sp.core, TrackKind.LANE, sp.lane,
    span_level[i])``, stall ``i`` on ``(where[st.process], TrackKind.STALLS, st.process, stall_level[i])``."""
    where, chan_pid, pids = _pids(trace)
    first_seen, span_level, stall_level = _levels(trace, NsClock(trace.clock_hz).ns, where)
    return Layout(where, chan_pid, pids, span_level, stall_level,
                  _ordered_tracks(trace, where, first_seen, span_level, stall_level))
Items = dict[tuple[int, str], list[tuple[int, int, int]]]  # (pid, track name) -> (start ns, end ns, record index)


# -- values -------------------------------------------------------------------------------------------------------
def encode_index(v: Any) -> Any:
    """A Span.index (already checked by check_trace) as JSON that decodes to an equal value (tuples, dicts tagged)."""
    if isinstance(v, tuple):
        return {"tuple": [encode_index(x) for x in v]}
    if isinstance(v, list):
        return [encode_index(x) for x in v]
    if isinstance(v, dict):
        return {"dict": [[encode_index(k), encode_index(x)] for k, x in v.items()]}
    return v


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
    level down, where the same test repeats. Walking the levels one by one costs O(levels) per item, so when the
    levels pile up (spans that each overlap the next) the same levels come from ``_nest_many`` in O(n log n).
    """
    ordered = sorted(items, key=lambda x: x[0])
    stacks: list[list[int]] = []
    level: dict[int, int] = {}
    for start, end, key in ordered:
        k = 0
        while True:
            if k == len(stacks):
                if k == _FEW_LEVELS:
                    return _nest_many(ordered)
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


_FEW_LEVELS = 16  # up to this many levels, walking them is cheaper than _nest_many's tree


def _nest_many(ordered: list[tuple[int, int, int]]) -> dict[int, int]:
    """``_nest`` for items already sorted by start, in O(n log n) however many levels they need.

    Each level's stack holds ends that never increase towards its top, and starts never decrease, so the ends that
    ``_nest`` would pop (<= start) are exactly those a min-heap gives first. After popping them, an item goes to the
    first level whose top end is >= its end, or that is empty: a max segment tree over the levels' top ends (an
    empty or not yet used level counts as infinite) finds that level in O(log n).
    """
    size = 1
    while size < len(ordered) + 1:
        size *= 2
    inf = float("inf")
    tree: list[float] = [inf] * (2 * size)  # tree[size + k]: level k's top end; tree[i]: max of its two children
    stacks: list[list[int]] = []
    open_ends: list[tuple[int, int]] = []  # (end, level) of every item still on a stack

    def set_top(k: int) -> None:
        i = size + k
        tree[i] = stacks[k][-1] if stacks[k] else inf
        i //= 2
        while i:
            tree[i] = max(tree[2 * i], tree[2 * i + 1])
            i //= 2

    level: dict[int, int] = {}
    for start, end, key in ordered:
        while open_ends and open_ends[0][0] <= start:
            _, k = heapq.heappop(open_ends)
            stacks[k].pop()  # (the smallest end on its stack, so its top)
            set_top(k)
        i = 1
        while i < size:  # down to the leftmost level whose top end is >= end
            i = 2 * i if tree[2 * i] >= end else 2 * i + 1
        k = i - size
        if k == len(stacks):
            stacks.append([])
        stacks[k].append(end)
        heapq.heappush(open_ends, (end, k))
        set_top(k)
        level[key] = k
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
    """Every event in file order (track names, spans, stalls, counters) and the exact cycle of each C event."""
    ns = NsClock(trace.clock_hz).ns
    where, chan_pid, pids, span_level, stall_level, ordered = track_layout(trace)
    tid_of = {t: i + 1 for i, t in enumerate(ordered)}  # globally unique tids: viewers key threads by tid
    events = _track_names(trace, pids, chan_pid, ordered, tid_of)
    for i, sp in enumerate(trace.spans):
        s, e = ns(sp.start), ns(sp.end)
        events.append({
            "ph": "X", "cat": "span", "name": sp.name, "pid": sp.core,
            "tid": tid_of[(sp.core, TrackKind.LANE, sp.lane, span_level[i])], "ts": us_text(s),
            "dur": us_text(e - s),
            "args": {"lane": sp.lane, "process": sp.process, "index": encode_index(sp.index), "task_id": sp.task_id,
                     "bytes": sp.bytes, "start_cycles": sp.start, "end_cycles": sp.end, "cycles": sp.end - sp.start},
        })
    for i, st in enumerate(trace.stalls):
        s, e = ns(st.start), ns(st.end)
        pid = where[st.process]
        events.append({
            "ph": "X", "cat": "stall", "name": st.reason, "pid": pid,
            "tid": tid_of[(pid, TrackKind.STALLS, st.process, stall_level[i])], "ts": us_text(s),
            "dur": us_text(e - s),
            "args": {"process": st.process, "reason": st.reason, "start_cycles": st.start, "end_cycles": st.end,
                     "cycles": st.end - st.start},
        })
    sample_cycles = []
    for sm in trace.samples:
        events.append({"ph": "C", "cat": "occupancy", "name": sm.channel, "pid": chan_pid, "tid": 0,
                       "ts": us_text(ns(sm.time)), "args": {"slots": sm.occupancy}})
        sample_cycles.append(sm.time)
    return events, sample_cycles


def _pids(trace: Trace) -> tuple[dict[str, int], int, list[int]]:
    """(the pid of each process's stall row, the pid of the channels' counters, every pid in order)."""
    cores = sorted(set(trace.cores) | {sp.core for sp in trace.spans})
    where = _process_cores(trace)
    stall_procs = list(dict.fromkeys(st.process for st in trace.stalls))
    chan_pid = (max(cores) + 1) if cores else 0
    for p in stall_procs:
        if p not in where:
            where[p] = chan_pid
    pids = sorted(set(cores) | {where[p] for p in stall_procs} | ({chan_pid} if trace.samples else set()))
    return where, chan_pid, pids


def _levels(trace: Trace, ns: Callable[[int], int],
            where: dict[str, int]) -> tuple[dict[str, int], dict[int, int], dict[int, int]]:
    """(index of each lane's first span, the overflow level of each span, that of each stall)."""
    first_seen: dict[str, int] = {}
    span_items: Items = {}
    for i, sp in enumerate(trace.spans):
        first_seen.setdefault(sp.lane, i)
        span_items.setdefault((sp.core, sp.lane), []).append((ns(sp.start), ns(sp.end), i))
    stall_items: Items = {}
    for i, st in enumerate(trace.stalls):
        stall_items.setdefault((where[st.process], st.process), []).append((ns(st.start), ns(st.end), i))
    span_level: dict[int, int] = {}
    for items in span_items.values():
        span_level.update(_nest(items))
    stall_level: dict[int, int] = {}
    for items in stall_items.values():
        stall_level.update(_nest(items))
    return first_seen, span_level, stall_level


def _ordered_tracks(trace: Trace, where: dict[str, int], first_seen: dict[str, int], span_level: dict[int, int],
                    stall_level: dict[int, int]) -> list[TrackId]:
    """Every track, in file order: per pid, a lane, its overflow levels, then the stall track of the same-named
    process; other stall tracks last."""
    proc_rank = {p: i for i, p in enumerate(trace.processes)}
    for st in trace.stalls:
        proc_rank.setdefault(st.process, len(proc_rank))
    tracks: set[TrackId] = set()
    for i, sp in enumerate(trace.spans):
        tracks.add((sp.core, TrackKind.LANE, sp.lane, span_level[i]))
    for i, st in enumerate(trace.stalls):
        tracks.add((where[st.process], TrackKind.STALLS, st.process, stall_level[i]))
    lanes_on = {(t[0], t[2]) for t in tracks if t[1] is TrackKind.LANE}

    def track_key(t: TrackId) -> tuple[Any, ...]:
        pid, kind, name, level = t
        if kind is TrackKind.LANE or (pid, name) in lanes_on:
            return (pid, _lane_key(name, proc_rank, first_seen), kind, level)
        return (pid, (3, proc_rank[name], name), kind, level)

    return sorted(tracks, key=track_key)


def _track_names(trace: Trace, pids: list[int], chan_pid: int, ordered: list[TrackId],
                 tid_of: dict[TrackId, int]) -> list[dict[str, Any]]:
    """The M events: each pid's name and rank, then each of its tracks' name and rank."""
    events: list[dict[str, Any]] = []
    for sort, pid in enumerate(pids):
        name = CHANNELS_PROCESS if pid == chan_pid else trace.cores.get(pid, f"core{pid}")
        events.append({"ph": "M", "name": "process_name", "pid": pid, "tid": 0, "args": {"name": name}})
        events.append({"ph": "M", "name": "process_sort_index", "pid": pid, "tid": 0, "args": {"sort_index": sort}})
        for t in ordered:
            if t[0] != pid:
                continue
            _, kind, tname, level = t
            label = tname if kind is TrackKind.LANE else f"{tname} stalls"
            if level:
                label += f" #{level + 1}"
            tid = tid_of[t]
            events.append({"ph": "M", "name": "thread_name", "pid": pid, "tid": tid, "args": {"name": label}})
            events.append({"ph": "M", "name": "thread_sort_index", "pid": pid, "tid": tid,
                           "args": {"sort_index": tid}})
    return events


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
        **({} if trace.launch_cycles is None else {"launch_cycles": trace.launch_cycles}),
        **_whole_run(trace),
        "sample_cycles": sample_cycles,
        "time_grid": "ts/dur in us on a 1 ns grid: round(cycles * 1e9 / clock_hz) ns; exact cycles in args",
    }


def _whole_run(trace: Trace) -> dict[str, Any]:
    """``{"whole_run": {...}}`` for the trace of part of a run (a steady-state run's first tiles), else nothing."""
    w = getattr(trace, "whole_run", None)
    if w is None:
        return {}
    try:
        if not isinstance(w, WholeRun):
            raise BadField("Trace.whole_run", w, "None or a WholeRun(tiles, traced_tiles, cycles, overlap_pct, note)")
        whole_run_value(w._asdict(), "Trace.whole_run")
    except BadField as e:
        raise PtortValueError(f"Cannot save this trace: {e.describe()}.",
                              hint="Leave whole_run as execute(steady_state=True) set it (None for a trace of a "
                                   "whole run).") from None
    return {"whole_run": w._asdict()}


_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False)
_dumps = _ENCODER.encode  # one encoder for all events (json.dumps with options builds one per call)


def to_chrome_json(trace: Trace) -> str:
    """The trace as Chrome Trace Event JSON text (deterministic: same trace, same bytes)."""
    return _chrome_text(check_trace(trace, "to_chrome_json()"))


def _chrome_text(trace: Trace) -> str:
    with gc_paused():  # (millions of event dicts made and dropped: the collector would rescan the run's records)
        events, sample_cycles = _events(trace)
        body = ",\n".join(_dumps(e) for e in events)
    # Top-level keys in sorted order, written by hand so that each event sits on its own line.
    return ('{"displayTimeUnit":"ns",\n"otherData":' + _dumps({"ptort": _metadata(trace, sample_cycles)})
            + ',\n"traceEvents":[\n' + body + ("\n" if body else "") + "]}\n")


# -- files ----------------------------------------------------------------------------------------------------------


_temp_ids = itertools.count()
_SPECIAL = ((stat.S_ISFIFO, "a named pipe (FIFO)"), (stat.S_ISSOCK, "a socket"),
            (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def special_file(path: str | os.PathLike[str]) -> str | None:
    """What ``path`` is when it exists and is neither a regular file nor a folder (``"a named pipe (FIFO)"``), else
    None. Writing into one may block forever (a pipe nobody reads) or send the trace nowhere, so it is refused."""
    try:
        mode = os.stat(path).st_mode  # (through a symlink: what it points to)
    except (OSError, ValueError):  # missing, unreadable, a NUL in the path: opening it reports that
        return None
    return next((what for test, what in _SPECIAL if test(mode)), None)


def refuse_special(path: str | os.PathLike[str], api: str) -> None:
    """A PtortValueError when ``path`` is a pipe, socket or device (``special_file``), before anything opens it."""
    what = special_file(path)
    if what is not None:
        raise PtortValueError(f"{api}: cannot write '{os.fspath(path)}': it is {what}, not a regular file; writing "
                              "into it could block forever or lose the trace.",
                              hint="Save to an ordinary file, e.g. trace.save('run.json'); to send a trace elsewhere, "
                                   "write trace.to_chrome_json() there yourself.")


def refuse_nul(path: str | os.PathLike[str], api: str) -> None:
    """A PtortValueError for a path holding a NUL character, which no file name may contain."""
    text = os.fspath(path)
    if "\x00" in (text if isinstance(text, str) else os.fsdecode(text)):
        raise PtortValueError(f"{api}: cannot write {short(text)}: a file path cannot hold a NUL character ('\\x00').",
                              hint="Check how the path was built (a NUL often comes from C strings or binary data), "
                                   "e.g. trace.save('run.json').")


def _write(path: Path, data: bytes) -> None:
    """Write ``data`` whole or not at all: into a new file next to ``path``, then renamed over it (a full disk or a
    crash never leaves half a trace, nor destroys the file that was there). The new file keeps the old one's
    permission bits (a private trace stays private); a hard link to the old file keeps the old contents."""
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    refuse_special(path, "Trace.save")  # again: it may have been made since save() looked
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    temp = target.with_name(f".ptort-{os.getpid()}-{next(_temp_ids)}.tmp")
    try:
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    except PermissionError as e:
        if not target.is_file():
            raise
        # Writing over the file in place would truncate it first, so a failed write (a full disk) would lose it.
        raise PtortValueError(
            f"Trace.save: cannot write '{path}': its folder '{target.parent}' does not take new files (permission "
            f"denied, errno {errno.errorcode.get(e.errno or 0, e.errno)}), and the trace is only ever written to a "
            "new file renamed over the old one, so that a failed write cannot destroy the old file.",
            hint=f"Save into a folder you may write (e.g. trace.save('{target.name}') in your home folder), or make "
                 f"'{target.parent}' writable (chmod u+w '{target.parent}').") from e
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        try:
            os.chmod(temp, stat.S_IMODE(os.stat(target).st_mode))
        except FileNotFoundError:  # a new file: the umask's mode, as open() gives
            pass
        os.replace(temp, target)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


def save(trace: Trace, path: str | os.PathLike[str]) -> Path:
    """Write ``to_chrome_json(trace)`` to ``path`` (gzip-compressed, reproducibly, when it ends in ``.gz``, in any
    case); the file is replaced whole or not at all. A pipe, socket or device is refused (``special_file``)."""
    p = as_path(path, "Trace.save(path) needs a file path (str or pathlib.Path)",
                "Write trace.save('run.json') ('run.json.gz' to compress).", api="Trace.save")
    refuse_nul(p, "Trace.save")
    refuse_special(p, "Trace.save")  # before the trace is built: a pipe would block, a device lose it
    data = _chrome_text(check_trace(trace, "Trace.save")).encode("ascii")
    if p.suffix.lower() == ".gz":  # run.json.GZ too
        data = gzip.compress(data, mtime=0)
    try:
        _write(p, data)
    except OSError as e:
        raise io_error(e, "write", p) from e
    return p


__all__ = ["to_chrome_json", "save", "special_file", "refuse_special", "refuse_nul", "load_chrome_json",
           "chrome_events", "MAX_BYTES", "MAX_EVENTS", "PIPE_ORDER", "track_layout", "Layout", "TrackKind", "TrackId",
           "encode_index", "CHANNELS_PROCESS"]
