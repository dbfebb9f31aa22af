"""Reading a Chrome trace written by another tool (no ``otherData.ptort``): best effort, in one linear pass.

X events become spans (``pid`` = core, lane = the thread's name from its M event), whole-number C series become
samples, times are rebased to the first event and read at 1 GHz (1 cycle = 1 ns); other phases and fractional
counters are skipped. Every field read is checked like a saved trace's (``trace.check_trace``): a bad one raises
BadField, which ``load`` turns into the error naming the file.
"""
from __future__ import annotations

from typing import Any

from .trace import MAX_CORE, MAX_CYCLES, MAX_INT, MAX_NAME_CHARS, BadField, Sample, Span, Trace, plain
from .trace_files import MISSING, Count

_new = tuple.__new__  # builds a record without its Python-level __new__ (3x cheaper; files hold millions)


def _ns(v: Any, i: int, key: str) -> int:
    """A foreign ts/dur in µs as whole ns (a JSON number; 1 cycle = 1 ns at the 1 GHz these traces are read at)."""
    if type(v) is float:
        ns = v * 1000
        if ns - ns == 0.0:  # finite (a finite ts near the float limit is not, times 1000)
            return round(ns)
    elif type(v) is int:
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
    checked: str = plain(name, "name", f"traceEvents[{i}].name")  # raises BadField, or makes a str subclass plain
    return checked


def _foreign_names(events: list[Any]) -> tuple[dict[tuple[int, Any], str], dict[int, str]]:
    """Thread names by (pid, tid) and process names by pid, from M events anywhere in the file."""
    threads: dict[tuple[int, Any], str] = {}
    procs: dict[int, str] = {}
    for i, ev in enumerate(events):
        if type(ev) is dict and ev.get("ph") == "M" and ev.get("name") in ("thread_name", "process_name"):
            args = ev.get("args", MISSING)
            if type(args) is not dict:
                raise BadField(f"traceEvents[{i}].args", args, "an object holding the name")
            label = plain(args.get("name", MISSING), "name", f"traceEvents[{i}].args.name")
            if ev["name"] == "thread_name":
                threads[(_pid(ev, i), _tid(ev, i))] = label
            else:
                procs[_pid(ev, i)] = label
    return threads, procs


def _whole(v: Any) -> bool:
    """Is ``v`` a whole number of slots (a C event value ptort_lab can keep as a Sample)?"""
    t = type(v)
    return (t is int or (t is float and v - v == 0.0 and v == int(v))) and 0 <= v <= MAX_INT


def load_foreign(events: list[Any]) -> Trace:
    """X events as spans, whole-number C series as samples, times rebased to the first of them (one pass each)."""
    threads, procs = _foreign_names(events)
    raw_spans: list[tuple[int, Any, str, int, int]] = []
    raw_samples: list[tuple[str, int, int]] = []
    for i, ev in enumerate(events):
        if type(ev) is not dict:
            raise BadField(f"traceEvents[{i}]", ev, "an event object")
        ph = ev.get("ph")
        if ph == "X":
            start = _ns(ev.get("ts", MISSING), i, "ts")
            dur = _ns(ev.get("dur", MISSING), i, "dur")
            if dur < 0:
                raise BadField(f"traceEvents[{i}].dur", ev["dur"], "a finite number of µs >= 0")
            raw_spans.append((_pid(ev, i), _tid(ev, i), _name(ev, i), start, start + dur))
        elif ph == "C":
            ts, name, args = _ns(ev.get("ts", MISSING), i, "ts"), _name(ev, i), ev.get("args")
            if type(args) is not dict:
                continue
            for key, value in args.items():
                if _whole(value):
                    series = name if key == "slots" or len(args) == 1 else f"{name}.{key}"
                    raw_samples.append((plain(series, "name", f"traceEvents[{i}].args"), ts, int(value)))
    t0 = min([s[3] for s in raw_spans] + [s[1] for s in raw_samples], default=0)
    last = max([s[4] for s in raw_spans] + [s[1] for s in raw_samples], default=0)
    if last - t0 > MAX_CYCLES:
        raise BadField("traceEvents", Count(len(events)), f"events within 2**53 ns of the first one (they span "
                                                            f"{(last - t0) // (86400 * 10**9):,} days)")
    lanes = {key: threads.get(key, str(key[1])) for key in {(s[0], s[1]) for s in raw_spans}}
    spans = [_new(Span, (pid, lanes[(pid, tid)], name, None, s - t0, e - t0, 0, "", -1))
             for pid, tid, name, s, e in raw_spans]
    samples = [_new(Sample, (name, ts - t0, v)) for name, ts, v in raw_samples]
    return Trace(spans=spans, samples=samples, makespan=last - t0, clock_hz=1e9,
                 processes=list(dict.fromkeys(sp.lane for sp in spans)), cores=procs)


__all__ = ["load_foreign"]
