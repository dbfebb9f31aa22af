"""Reading a Chrome trace written by another tool (no ``otherData.ptort``): best effort.

X events and matched B/E pairs become spans (``pid`` = core, a string pid such as torch.profiler's ``"Spans"`` a core
of its own after the int ones; lane = the thread's name from its M event, or its tid, with ``pid/`` in front when two
threads' lanes would have one name), C series (one per pid, id, name and args key, as Perfetto keeps them) of whole
numbers become samples, each series' in time order (equal times in file order: the format lets events come in any
order), times are rebased to the first event and read at 1 GHz (1 cycle = 1 ns; big epoch times are read exactly, to
the ns); other phases and series with a fractional value are skipped. A series is named by its counter's name, with
`` (pid P)`` (`` (pid P, id I)``) when that name is used in more than one process (or id), then ``.key`` when the
counter has more than one key (``slots``, the key Trace.save writes, is the name itself). A name that several series
would get (a counter literally named ``a.x`` and counter ``a``'s key ``x``; a counter named ``q (pid 2)`` and pid 2's
``q``) goes to the one whose counter's own name it is, else to the first in the file, and the others, in file order,
take `` #2``, `` #3``, ... (the first name no series has): the same file always gives the same names, and no two
series, of one process or of two, are ever merged. B/E events pair up per thread (pid, tid) as a stack, in time
order, as Perfetto pairs them: an E closes the latest open B of its thread (an E with none open is skipped), and a B
never closed ends at the trace's last timestamp (Perfetto draws it to the end too). A file with events of which none
can be used is refused (``NothingUsable``, naming the phases it has) rather than read as an empty trace. Every field
read is checked like a saved trace's (``trace.check_trace``): a bad one raises BadField, which ``load`` turns into
the error naming the file.
"""
from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

from ..dsl.tasks import MAX_CYCLES
from .trace import MAX_CORE, MAX_INT, MAX_NAME_CHARS, BadField, Sample, Span, Trace, plain
from .trace_files import MISSING, Count, short

# the phases read: X (complete), B/E (begin/end), C (counter); M (metadata) names the tracks
READ_PHASES = ("X", "B", "E", "C")


class NothingUsable(BadField):
    """The file has events, but none that becomes a span or a sample; the message counts its phases."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        phases = Counter(short(ev["ph"], 20) if "ph" in ev else "no ph" for ev in events)
        n = len(events)
        if n == 1:
            self.events = f"traceEvents holds 1 event (phase {next(iter(phases))}), which becomes no span or sample"
        else:
            listed = ", ".join(f"{ph}: {count:,}" for ph, count in phases.most_common(8))
            self.events = (f"traceEvents holds {n:,} events (phases {listed}{', ...' if len(phases) > 8 else ''}), "
                           "none of which becomes a span or a sample")
        super().__init__("traceEvents", Count(n), "X (complete), B/E (begin/end) or C (counter) events")

    def describe(self) -> str:
        return (f"{self.events} (ptort_lab reads X events, B/E pairs, an E closing an earlier B of its thread, and C "
                "events with whole-number values)")

_new = tuple.__new__  # builds a record without its Python-level __new__ (3x cheaper; files hold millions)


def _ns(v: Any, i: int, key: str) -> int:
    """A foreign ts/dur in µs as whole ns (a JSON number; 1 cycle = 1 ns at the 1 GHz these traces are read at)."""
    if type(v) is float:
        ns = v * 1000
        if ns - ns == 0.0:  # finite (a finite ts near the float limit is not, times 1000)
            return round(ns)
    elif type(v) is int:
        return v * 1000
    elif type(v) is Decimal:  # a big number, read exactly (load._exact_if_big): epoch times to the ns
        return round(v * 1000)
    raise BadField(f"traceEvents[{i}].{key}", v, "a finite number of µs")


Named = dict[str, int]  # a string pid (Kineto's "Spans", "Traces") -> the core it becomes


def _named_pids(events: list[Any]) -> Named:
    """Cores for the string pids of the file (torch.profiler writes ``"pid": "Spans"``): after the largest int pid,
    in order of first use; each core is named by its string (unless a process_name event names it)."""
    ints = [ev["pid"] for ev in events if type(ev) is dict and type(ev.get("pid")) is int]
    core = max([p for p in ints if 0 <= p <= MAX_CORE], default=-1) + 1
    named: Named = {}
    for ev in events:
        pid = ev.get("pid") if type(ev) is dict else None
        if type(pid) is str and pid not in named and len(pid) <= MAX_NAME_CHARS and core <= MAX_CORE:
            named[pid] = core
            core += 1
    return named


def _pid(ev: dict[str, Any], i: int, named: Named) -> int:
    """A foreign event's pid, which becomes its span's core (a string pid: the core ``named`` gives it)."""
    pid = ev.get("pid", 0)
    if type(pid) is int and 0 <= pid <= MAX_CORE:
        return pid
    if type(pid) is str and pid in named:
        return named[pid]
    raise BadField(f"traceEvents[{i}].pid", pid, "a process id (an int in 0..2**31-1, or a short string), which "
                                                "becomes the span's core")


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


def _foreign_names(events: list[Any],
                   named: Named) -> tuple[dict[tuple[int, Any], str], dict[int, str]]:
    """Thread names by (pid, tid) and process names by pid, from M events anywhere in the file (a string pid's
    core is named by the string, unless an M event names it)."""
    threads: dict[tuple[int, Any], str] = {}
    procs: dict[int, str] = {core: pid for pid, core in named.items()}
    for i, ev in enumerate(events):
        if type(ev) is dict and ev.get("ph") == "M" and ev.get("name") in ("thread_name", "process_name"):
            args = ev.get("args", MISSING)
            if type(args) is not dict:
                raise BadField(f"traceEvents[{i}].args", args, "an object holding the name")
            label = plain(args.get("name", MISSING), "name", f"traceEvents[{i}].args.name")
            if ev["name"] == "thread_name":
                threads[(_pid(ev, i, named), _tid(ev, i))] = label
            else:
                procs[_pid(ev, i, named)] = label
    return threads, procs


def _whole(v: Any) -> bool:
    """Is ``v`` a whole number of slots (a C event value ptort_lab can keep as a Sample)?"""
    t = type(v)
    return (t is int or (t in (float, Decimal) and v - v == 0 and v == int(v))) and 0 <= v <= MAX_INT


def load_foreign(events: list[Any]) -> Trace:
    """X events and B/E pairs as spans, whole-number C series as samples, times rebased to the first of them."""
    named = _named_pids(events)
    threads, procs = _foreign_names(events, named)
    raw_spans: list[tuple[int, int, Any, str, int, int]] = []  # (event index, pid, tid, name, start, end)
    raw_samples: list[tuple[str, int, int]] = []
    marks: list[tuple[int, int, str, int, Any, str]] = []  # B/E: (ts, event index, ph, pid, tid, name)
    counters: list[tuple[int, int, int, Any, str, Any]] = []  # C: (event index, ts, pid, id, name, args)
    for i, ev in enumerate(events):
        if type(ev) is not dict:
            raise BadField(f"traceEvents[{i}]", ev, "an event object")
        ph = ev.get("ph")
        if ph == "X":
            start = _ns(ev.get("ts", MISSING), i, "ts")
            dur = _ns(ev.get("dur", MISSING), i, "dur")
            if dur < 0:
                raise BadField(f"traceEvents[{i}].dur", ev["dur"], "a finite number of µs >= 0")
            raw_spans.append((i, _pid(ev, i, named), _tid(ev, i), _name(ev, i), start, start + dur))
        elif ph == "B" or ph == "E":
            marks.append((_ns(ev.get("ts", MISSING), i, "ts"), i, ph, _pid(ev, i, named), _tid(ev, i),
                          _name(ev, i) if ph == "B" else ""))
        elif ph == "C":
            counters.append((i, _ns(ev.get("ts", MISSING), i, "ts"), _pid(ev, i, named), ev.get("id"), _name(ev, i),
                             ev.get("args")))
    raw_samples += _series(counters)
    raw_spans += _paired(marks, max([s[5] for s in raw_spans] + [s[1] for s in raw_samples] + [m[0] for m in marks],
                                    default=0))
    if not raw_spans and not raw_samples and events:
        raise NothingUsable(events)
    raw_spans.sort(key=lambda s: s[0])  # file order (a B/E pair at its B)
    t0 = min([s[4] for s in raw_spans] + [s[1] for s in raw_samples], default=0)
    last = max([s[5] for s in raw_spans] + [s[1] for s in raw_samples], default=0)
    if last - t0 > MAX_CYCLES:
        raise BadField("traceEvents", Count(len(events)), f"events within 2**53 ns of the first one (they span "
                                                            f"{(last - t0) // (86400 * 10**9):,} days)")
    lanes = _lanes({(s[1], s[2]) for s in raw_spans}, threads)
    spans = [_new(Span, (pid, lanes[(pid, tid)], name, None, s - t0, e - t0, 0, "", -1))
             for _, pid, tid, name, s, e in raw_spans]
    samples = [_new(Sample, (name, ts - t0, v)) for name, ts, v in raw_samples]
    return Trace(spans=spans, samples=samples, makespan=last - t0, clock_hz=1e9,
                 processes=list(dict.fromkeys(sp.lane for sp in spans)), cores=procs)


def _number(v: Any) -> bool:
    return type(v) in (int, float, Decimal)


Series = tuple[int, Any, str, str]  # (pid, id, counter name, args key)


def _series(counters: list[tuple[int, int, int, Any, str, Any]]) -> list[tuple[str, int, int]]:
    """The C events as samples (channel, ts, value), one series per (pid, id, name, args key) as Perfetto keeps them,
    named by ``_series_names``; each series' samples in time order (equal times in file order), the series in the
    order of their first samples in the file. A series with any value that is not a whole number of slots is skipped
    whole (thinned, it would hold wrong values in between)."""
    keys: dict[tuple[int, Any, str], dict[str, bool]] = {}  # (pid, id, name) -> key -> all values whole so far
    used: dict[Series, None] = {}  # every series, in the order the file first gives it a value
    for _, _, pid, cid, name, args in counters:
        if type(args) is dict:
            sid = _scope_id(cid)
            seen = keys.setdefault((pid, sid, name), {})
            for key, value in args.items():
                if _number(value):
                    seen[key] = seen.get(key, True) and _whole(value)
                    used[(pid, sid, name, key)] = None
    channel = _series_names(keys, list(used))
    steps: dict[str, list[tuple[int, int]]] = {}  # series -> its (ts, value) in file order
    for i, ts, pid, cid, name, args in counters:
        if type(args) is not dict:
            continue
        for key, value in args.items():
            series = channel.get((pid, _scope_id(cid), name, key)) if _number(value) else None
            if series is None:
                continue
            got = steps.get(series)
            if got is None:
                got = steps[series] = []
                plain(series, "name", f"traceEvents[{i}].args")  # (a name made longer than a name may be: refused)
            got.append((ts, int(value)))
    # Chrome's format leaves events in any order, and a series is read as steps in time order (Trace.occupancy)
    return [(series, ts, v) for series, got in steps.items() for ts, v in sorted(got, key=lambda tv: tv[0])]


def _series_names(keys: dict[tuple[int, Any, str], dict[str, bool]], used: list[Series]) -> dict[Series, str]:
    """A distinct name for each whole-number series of ``used`` (in file order), by the rule in the module docstring:
    the name each wants (its counter's, with `` (pid P)`` and ``.key`` as needed) can be another series' too, and two
    series sharing a name would read as one wrong series."""
    scopes = Counter(name for _, _, name in keys)
    wanted: dict[Series, str] = {}
    for pid, cid, name, key in used:
        seen = keys[(pid, cid, name)]
        if seen[key]:
            base = name
            if scopes[name] > 1:
                base += f" (pid {pid})" if cid is None else f" (pid {pid}, id {cid!r})"
            wanted[(pid, cid, name, key)] = base if key == "slots" or len(seen) == 1 else f"{base}.{key}"
    # who keeps a name several want: the series whose counter's own name it is, else the first in the file
    keeper: dict[str, Series] = {}
    for series, want in wanted.items():
        if want == series[2] or want not in keeper:
            keeper[want] = series
    names: dict[Series, str] = {}
    given = set(wanted.values())  # (a renamed series never takes a name that another series wants)
    for series, want in wanted.items():
        if keeper[want] == series:
            names[series] = want
            continue
        n = 2
        while f"{want} #{n}" in given:
            n += 1
        names[series] = f"{want} #{n}"
        given.add(names[series])
    return names


def _scope_id(cid: Any) -> Any:
    """A counter's ``id`` (part of its series' key), None for none or one that is not an int or a str."""
    return cid if type(cid) in (int, str) else None


def _lanes(keys: set[tuple[int, Any]], threads: dict[tuple[int, Any], str]) -> dict[tuple[int, Any], str]:
    """The lane of each thread (pid, tid): its name (its tid without one), ``pid/...`` in front when another
    thread's lane would have the same name (Perfetto keeps threads apart by pid: merged, their spans would overlap
    in one lane and the run's overlap would read 0%)."""
    label = {k: threads.get(k, str(k[1])) for k in keys}
    uses = Counter(label.values())
    lanes = {k: f"{k[0]}/{name}" if uses[name] > 1 else name for k, name in label.items()}
    uses = Counter(lanes.values())  # (still the same: tid 1 and tid "1" in one process)
    return {k: f"{name} (tid {k[1]!r})" if uses[name] > 1 else name for k, name in lanes.items()}


def _paired(marks: list[tuple[int, int, str, int, Any, str]],
            last: int) -> list[tuple[int, int, Any, str, int, int]]:
    """B/E events as (B's event index, pid, tid, name, start, end): per thread, in time order (file order at equal
    times), an E closes the latest open B; an E with none open is skipped, a B never closed ends at ``last``."""
    out: list[tuple[int, int, Any, str, int, int]] = []
    open_: dict[tuple[int, Any], list[tuple[int, int, str]]] = {}  # (pid, tid) -> stack of (ts, index, name)
    for ts, i, ph, pid, tid, name in sorted(marks, key=lambda m: (m[0], m[1])):
        stack = open_.setdefault((pid, tid), [])
        if ph == "B":
            stack.append((ts, i, name))
        elif stack:
            start, j, begun = stack.pop()
            out.append((j, pid, tid, begun, start, ts))
    for (pid, tid), stack in open_.items():
        out += [(j, pid, tid, name, start, last) for start, j, name in stack]
    return out


__all__ = ["load_foreign"]
