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
"""
from __future__ import annotations

import gzip
import json
import math
import os
from fractions import Fraction
from pathlib import Path
from typing import Any, Iterable

from ..errors import PtortTypeError, PtortValueError
from .trace import Sample, Span, Stall, Trace

FORMAT = "ptort-chrome-trace"
VERSION = 1
CHANNELS_PROCESS = "channels"
# Canonical pipe order inside one core (NPU_MODEL.md §2.1): scalar, loads, cube path, vector, stores.
PIPE_ORDER = ("S", "MTE2", "MTE1", "M", "CUBE", "FIX", "V", "VEC", "VECTOR", "V2", "MTE3")


# -- values -------------------------------------------------------------------------------------------------------
def _encode(v: Any) -> Any:
    """A Span.index as JSON that decodes to an equal value (tuples and dicts are tagged)."""
    if v is None or isinstance(v, (bool, str)):
        return v
    if isinstance(v, int):
        return int(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            raise PtortValueError(f"Cannot export a span with the non-finite index {v!r}.",
                                  hint="Give spans finite indices (ints, strings or tuples of them).")
        return v
    if isinstance(v, tuple):
        return {"tuple": [_encode(x) for x in v]}
    if isinstance(v, list):
        return [_encode(x) for x in v]
    if isinstance(v, dict):
        return {"dict": [[_encode(k), _encode(x)] for k, x in v.items()]}
    if hasattr(v, "item") and callable(v.item):  # numpy scalars
        return _encode(v.item())
    raise PtortTypeError(f"Cannot export the span index {v!r} of type {type(v).__name__}.",
                         hint="Use ints, strings or tuples of them as span indices.")


def _decode(v: Any) -> Any:
    if isinstance(v, list):
        return [_decode(x) for x in v]
    if isinstance(v, dict):
        if set(v) == {"tuple"}:
            return tuple(_decode(x) for x in v["tuple"])
        if set(v) == {"dict"}:
            return {_decode(k): _decode(x) for k, x in v["dict"]}
        raise ValueError(f"unexpected index encoding {v!r}")
    return v


def _is_clock(hz: Any) -> bool:
    return isinstance(hz, (int, float)) and not isinstance(hz, bool) and math.isfinite(hz) and hz > 0


class _Clock:
    """Cycles -> integer ns, ``round(cycles * 1e9 / clock_hz)`` with halves rounded up, in exact integer math."""

    def __init__(self, clock_hz: float) -> None:
        if not _is_clock(clock_hz):
            raise PtortValueError(f"Cannot export a trace whose clock_hz is {clock_hz!r}: it must be a number > 0.",
                                  hint="Set trace.clock_hz to the core clock in Hz, e.g. 1.8e9.")
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
    """The traceEvents list and the exact cycle of each C event (in order)."""
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
    events, sample_cycles = chrome_events(trace)
    body = ",\n".join(_dumps(e) for e in events)
    # Top-level keys in sorted order, written by hand so that each event sits on its own line.
    return ('{"displayTimeUnit":"ns",\n"otherData":' + _dumps({"ptort": _metadata(trace, sample_cycles)})
            + ',\n"traceEvents":[\n' + body + ("\n" if body else "") + "]}\n")


def _path(path: Any, needs: str, hint: str) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise PtortTypeError(f"{needs}, got {_short(path)} of type {type(path).__name__}.", hint=hint)
    return Path(path)


def save(trace: Trace, path: str | os.PathLike[str]) -> Path:
    """Write ``to_chrome_json(trace)`` to ``path`` (gzip-compressed, reproducibly, when it ends in ``.gz``)."""
    p = _path(path, "Trace.save(path) needs a file path (str or pathlib.Path)",
              "Write trace.save('run.json') ('run.json.gz' to compress).")
    data = to_chrome_json(trace).encode("ascii")
    if p.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    try:
        p.write_bytes(data)
    except FileNotFoundError as e:
        raise PtortValueError(f"Trace.save: cannot write '{p}': the folder '{p.parent}' does not exist.",
                              hint=f"Create it first (Path('{p.parent}').mkdir(parents=True)) or save into an "
                                   "existing folder.") from e
    except IsADirectoryError as e:
        raise PtortValueError(f"Trace.save: cannot write '{p}': it is a folder, not a file.",
                              hint=f"Give a file name inside it, e.g. trace.save('{p / 'run.json'}').") from e
    except OSError as e:  # permissions, a file used as a folder, a full disk...
        raise PtortValueError(f"Trace.save: cannot write '{p}': {e.strerror or e}.",
                              hint="Check the path and that you may write there.") from e
    return p


# -- load ---------------------------------------------------------------------------------------------------------
_ONLY_OURS = ("Only files written by Trace.save(path) or to_chrome_json() load back (a Chrome trace from elsewhere "
              "needs a traceEvents list).")
_DAMAGED = "The trace was edited or cut short after it was written: save it again with trace.save(path)."


def _short(v: Any, n: int = 60) -> str:
    r = repr(v)
    return r if len(r) <= n else r[:n - 3] + "..."


def _read(text_or_path: Any) -> tuple[Any, str]:
    """The parsed JSON and a name for where it came from (for error messages)."""
    raw: str | bytes
    if isinstance(text_or_path, (bytes, bytearray)):
        raw, src = bytes(text_or_path), "the given trace bytes"
    elif isinstance(text_or_path, str) and text_or_path.lstrip()[:1] in ("{", "["):
        raw, src = text_or_path, "the given trace JSON text"
    else:
        p = _path(text_or_path, "Trace.load(path) needs a file path (str or pathlib.Path), JSON text or bytes",
                  "Write Trace.load('run.json') with the path that trace.save(...) returned.")
        src = f"trace file '{p}'"
        try:
            raw = p.read_bytes()
        except FileNotFoundError as e:
            raise PtortValueError(f"Cannot load {src}: it does not exist.",
                                  hint=f"Check the path (relative paths start at {os.getcwd()}); use the path "
                                       "that trace.save(...) returned.") from e
        except IsADirectoryError as e:
            raise PtortValueError(f"Cannot load {src}: it is a folder, not a file.",
                                  hint="Name the .json or .json.gz file in it that trace.save(...) wrote.") from e
        except OSError as e:
            raise PtortValueError(f"Cannot load {src}: {e.strerror or e}.",
                                  hint="Check the path and that you may read the file.") from e
    try:
        if isinstance(raw, bytes):
            raw = (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).decode("utf-8")
        return json.loads(raw), src
    except (OSError, EOFError) as e:  # gzip.BadGzipFile is an OSError; a cut-off .gz raises EOFError
        raise PtortValueError(f"Cannot load {src}: it is a damaged gzip file ({e}).", hint=_DAMAGED) from e
    except ValueError as e:  # JSONDecodeError and UnicodeDecodeError (binary data) are ValueErrors
        raise PtortValueError(f"Cannot load {src}: it is not JSON text ({e}).", hint=_ONLY_OURS) from e


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
                                  f"{version}; this one reads up to {VERSION}).",
                                  hint="Upgrade ptort_lab, or save the trace again with this version.")
        return meta
    # Chrome's own layouts: {"traceEvents": [...]} or a bare list of events.
    events = doc.get("traceEvents") if isinstance(doc, dict) else doc
    if not (isinstance(events, list) and all(isinstance(ev, dict) for ev in events)):
        got = f"an object with keys {_short(sorted(doc))}" if isinstance(doc, dict) else _short(doc)
        raise PtortValueError(f"Cannot load {src}: it is not a ptort_lab trace (no otherData.ptort block and no "
                              f"list of trace events; got {got}).", hint=_ONLY_OURS)
    return None


def load_chrome_json(text_or_path: str | bytes | os.PathLike[str]) -> Trace:
    """Read a trace written by ``to_chrome_json``/``save`` back into an equal Trace.

    Accepts JSON text, bytes, or a path (``.gz`` too). A Chrome trace from elsewhere (no ``otherData.ptort``) loads
    on a best-effort basis: X events become spans (cycles from ``ts``/``dur`` at 1 GHz unless args carry cycles),
    C events become samples. Anything else, or a damaged trace, raises PtortValueError (PtortTypeError for a
    ``text_or_path`` of the wrong type).
    """
    doc, src = _read(text_or_path)
    meta = _identify(doc, src)
    at = "traceEvents"  # the part being read, named in the error if it turns out to be malformed
    try:
        events: Iterable[Any] = doc if isinstance(doc, list) else doc["traceEvents"]
        if not isinstance(events, list):
            raise ValueError(f"expected a list of events, got {_short(events)}")
        at = "otherData.ptort"
        clock_hz = meta["clock_hz"] if meta is not None else 1e9
        if not _is_clock(clock_hz):
            raise ValueError(f"clock_hz must be a number > 0, got {_short(clock_hz)}")
        cycles_per_us = Fraction(clock_hz) / 10**6

        def us(ev: dict[str, Any], key: str) -> Fraction:
            v = ev.get(key, 0)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise ValueError(f"{key} must be a finite number of µs, got {_short(v)}")
            return Fraction(str(v))

        def cycles(t: Fraction) -> int:
            return round(t * cycles_per_us)

        thread_names: dict[tuple[int, int], str] = {}
        spans: list[Span] = []
        stalls: list[Stall] = []
        counters: list[tuple[str, Fraction, int]] = []
        for i, ev in enumerate(events):
            at = f"traceEvents[{i}]"
            args = (ev.get("args") or {}) if isinstance(ev, dict) else None
            if not isinstance(args, dict):
                raise ValueError(f"expected an event object with an args object, got {_short(ev)}")
            ph = ev.get("ph")
            if ph == "M" and ev.get("name") == "thread_name":
                thread_names[(ev.get("pid", 0), ev.get("tid", 0))] = args.get("name", "")
            elif ph == "X" and ev.get("cat") == "stall":
                stalls.append(Stall(args["process"], args["reason"], args["start_cycles"], args["end_cycles"]))
            elif ph == "X":
                if "start_cycles" in args:
                    start, end = args["start_cycles"], args["end_cycles"]
                else:
                    start, end = cycles(us(ev, "ts")), cycles(us(ev, "ts") + us(ev, "dur"))
                lane = args.get("lane", thread_names.get((ev.get("pid", 0), ev.get("tid", 0)), str(ev.get("tid", 0))))
                spans.append(Span(ev.get("pid", 0), lane, ev.get("name", ""), _decode(args.get("index")), start, end,
                                  args.get("bytes", 0), args.get("process", ""), args.get("task_id", -1)))
            elif ph == "C":
                for key, value in args.items():
                    name = ev.get("name", "") if key == "slots" or len(args) == 1 else f"{ev.get('name', '')}.{key}"
                    counters.append((name, us(ev, "ts"), value))
        if meta is None:
            samples = [Sample(name, cycles(ts), int(v)) for name, ts, v in counters]
            makespan = max([s.end for s in spans] + [s.time for s in samples], default=0)
            return Trace(spans=spans, samples=samples, stalls=stalls, makespan=makespan, clock_hz=clock_hz,
                         processes=list(dict.fromkeys(s.process or s.lane for s in spans)))
        at = "otherData.ptort"
        times = meta["sample_cycles"]
        if len(times) != len(counters):
            raise ValueError(f"{len(counters)} counter events but {len(times)} sample_cycles")
        samples = [Sample(name, t, v) for (name, _, v), t in zip(counters, times)]
        return Trace(
            spans=spans, samples=samples, stalls=stalls, makespan=meta["makespan"], clock_hz=clock_hz,
            mode=meta["mode"], processes=list(meta["processes"]), channels={k: v for k, v in meta["channels"]},
            cores={int(k): v for k, v in meta["cores"]}, process_end={k: v for k, v in meta["process_end"]})
    # Hand-edited or foreign files fail deep in the parse; report them as one error naming the file and the part.
    except (KeyError, IndexError, TypeError, ValueError, ArithmeticError) as e:
        detail = f"missing key {e.args[0]!r}" if isinstance(e, KeyError) else str(e)
        kind = "ptort_lab trace" if meta is not None else "Chrome trace"
        raise PtortValueError(f"Cannot load {src}: it is not a valid {kind}: {at}: {detail}.",
                              hint=_DAMAGED if meta is not None else _ONLY_OURS) from e


__all__ = ["to_chrome_json", "save", "load_chrome_json", "chrome_events"]
