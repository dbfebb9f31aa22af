"""Compact run data for the explorer's client-side timelines: a run's rows as parallel arrays, not a picture.

``compact_run(label, program)`` folds the run's Chrome trace events (``sim.export.chrome_events``: the same tracks,
names, order and overflow rows the JupyterLab renderer reads) into columns: per row, slice starts and ends in exact
cycles, op names and processes as indices into one string table, tile indices, task ids and bytes (a number column
whose values are all the same is sent as that one value); per channel, the sample cycles and occupancies. The
TypeScript side (src/logic/compact.ts) turns it into the same TimelineModel as the renderer's ``buildModel``.
Deterministic: same run, same dict.
"""
from __future__ import annotations

from typing import Any

from ..program import Program
from ..sim.export import CHANNELS_PROCESS, chrome_events
from ..sim.trace import Trace


class _Names:
    """A string table: each distinct string once, in order of first use."""

    def __init__(self) -> None:
        self.table: list[str] = []
        self._index: dict[str, int] = {}

    def __call__(self, text: str) -> int:
        i = self._index.get(text)
        if i is None:
            i = self._index[text] = len(self.table)
            self.table.append(text)
        return i


def _row(pid: int, label: str, lane: str, kind: str) -> dict[str, Any]:
    return {"pid": pid, "label": label, "lane": lane, "kind": kind, "s": [], "e": [], "n": [], "p": [], "x": [],
            "t": [], "b": []}


def compact_run(label: str, program: Program) -> dict[str, Any]:
    """One run as compact columns (see the module docstring); ``label`` names it (pipeline, data-parallel)."""
    return compact_trace(label, program.trace())


def compact_trace(label: str, trace: Trace) -> dict[str, Any]:
    """``compact_run`` of a Trace (a run's, or one read back with ``Trace.load``)."""
    events, sample_cycles = chrome_events(trace)
    names = _Names()
    groups: list[dict[str, Any]] = []
    thread_names: dict[tuple[int, int], str] = {}
    rows: dict[tuple[int, int], dict[str, Any]] = {}
    counters: dict[str, dict[str, Any]] = {}
    samples = iter(sample_cycles)
    for ev in events:
        ph, pid, tid, args = ev["ph"], ev.get("pid", 0), ev.get("tid", 0), ev.get("args", {})
        if ph == "M":
            if ev["name"] == "process_name" and args["name"] != CHANNELS_PROCESS:
                groups.append({"pid": pid, "label": args["name"]})
            elif ev["name"] == "thread_name":
                thread_names[(pid, tid)] = args["name"]
        elif ph == "X":
            row = rows.get((pid, tid))
            if row is None:
                stall = ev["cat"] == "stall"
                lane = "" if stall else args.get("lane", "")
                row = rows[(pid, tid)] = _row(pid, thread_names.get((pid, tid), lane), lane,
                                              "stall" if stall else "span")
            row["s"].append(args["start_cycles"])
            row["e"].append(args["end_cycles"])
            row["n"].append(names(ev["name"]))
            row["p"].append(names(args.get("process", "")))
            row["x"].append(args.get("index"))
            row["t"].append(args.get("task_id"))
            row["b"].append(args.get("bytes"))
        elif ph == "C":
            c = counters.setdefault(ev["name"], {"name": ev["name"], "capacity": trace.channels.get(ev["name"]),
                                                 "t": [], "v": []})
            c["t"].append(next(samples))
            c["v"].append(args["slots"])
    order = {name: i for i, name in enumerate(trace.channels)}
    ordered_rows = sorted(rows.items(), key=lambda item: item[0])  # by pid, then tid: the exporter's track order
    for c in counters.values():  # points in time order (stable), as the renderer sorts them
        pairs = sorted(zip(c["t"], c["v"]), key=lambda tv: tv[0])
        c["t"], c["v"] = [t for t, _ in pairs], [v for _, v in pairs]
    return {
        "label": label,
        "clock_hz": trace.clock_hz,
        "makespan": trace.makespan,
        "mode": trace.mode,
        "launch_cycles": trace.launch_cycles,
        "names": names.table,
        "groups": groups,
        "rows": [_trimmed(r) for _, r in ordered_rows],
        "counters": sorted(counters.values(), key=lambda c: order.get(c["name"], len(order))),
    }


SCALAR_COLUMNS = ("n", "p", "t", "b")  # number (or null) columns that may be sent as one value


def _trimmed(row: dict[str, Any]) -> dict[str, Any]:
    """A stall row carries no tile index, task id or bytes: leave those columns out. A number column whose slices
    all have the same value (one op, one process, one transfer size per lane) is sent as that one value: about a
    quarter fewer bytes per slider move."""
    if row["kind"] == "stall":
        for key in ("x", "t", "b"):
            del row[key]
    for key in SCALAR_COLUMNS:
        column = row.get(key)
        if column is not None and len(column) > 1 and all(v == column[0] for v in column):
            row[key] = column[0]
    return row


__all__ = ["compact_run", "compact_trace"]
