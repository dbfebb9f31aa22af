"""Compact run data for the explorer's client-side timelines: a run's rows as parallel arrays, not a picture.

``compact_run(label, program)`` packs the run's Trace into columns, row by row, with the tracks of the Chrome trace
exporter (``sim.export``: the same rows, names, order and overflow rows ``#2``, ``#3`` that the JupyterLab renderer
reads from a saved trace): per row, slice starts and ends in exact cycles, op names and processes as indices into
one string table, tile indices, task ids and bytes (a number column whose values are all the same is sent as that
one value); per channel, the sample cycles and occupancies. It reads the spans, stalls and samples straight from the
Trace (one pass each), without building the exporter's event dicts. The TypeScript side (src/logic/compact.ts) turns
it into the same TimelineModel as the renderer's ``buildModel``. Deterministic: same run, same dict.
"""
from __future__ import annotations

from typing import Any

from ..program import Program
from ..sim.export import TrackId, TrackKind, encode_index, track_layout
from ..sim.trace import Trace, check_trace


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
    """``compact_run`` of a Trace (a run's, or one read back with ``Trace.load``); refuses a Trace that breaks the
    rules of ``trace.check_trace``, as the exporter does."""
    trace = check_trace(trace, "compact_trace()")
    where, chan_pid, pids, span_level, stall_level, tracks = track_layout(trace)
    rows = {track: _track_row(track) for track in tracks}
    names = _Names()
    for i, sp in enumerate(trace.spans):  # names numbered in the exporter's event order: spans, then stalls
        row = rows[(sp.core, TrackKind.LANE, sp.lane, span_level[i])]
        row["s"].append(sp.start)
        row["e"].append(sp.end)
        row["n"].append(names(sp.name))
        row["p"].append(names(sp.process))
        row["x"].append(encode_index(sp.index))
        row["t"].append(sp.task_id)
        row["b"].append(sp.bytes)
    for i, st in enumerate(trace.stalls):
        row = rows[(where[st.process], TrackKind.STALLS, st.process, stall_level[i])]
        row["s"].append(st.start)
        row["e"].append(st.end)
        row["n"].append(names(st.reason))
        row["p"].append(names(st.process))
    return {
        "label": label,
        "clock_hz": trace.clock_hz,
        "makespan": trace.makespan,
        "mode": trace.mode,
        "launch_cycles": trace.launch_cycles,
        "names": names.table,
        "groups": [{"pid": pid, "label": trace.cores.get(pid, f"core{pid}")} for pid in pids if pid != chan_pid],
        "rows": [_trimmed(r) for r in rows.values()],  # tracks in the exporter's order: by pid, then its tracks
        "counters": _counters(trace),
    }


def _track_row(track: TrackId) -> dict[str, Any]:
    """The empty row of an exporter track: a lane's spans (overflow levels ``#2``...) or a process's stalls."""
    pid, kind, name, level = track
    label = name if kind is TrackKind.LANE else f"{name} stalls"
    if level:
        label += f" #{level + 1}"
    return _row(pid, label, name if kind is TrackKind.LANE else "", "span" if kind is TrackKind.LANE else "stall")


def _counters(trace: Trace) -> list[dict[str, Any]]:
    """Per channel, its samples in time order (stable, as the renderer sorts them), channels in the run's order."""
    counters: dict[str, dict[str, Any]] = {}
    for sm in trace.samples:
        c = counters.get(sm.channel)
        if c is None:
            c = counters[sm.channel] = {"name": sm.channel, "capacity": trace.channels.get(sm.channel), "t": [],
                                        "v": []}
        c["t"].append(sm.time)
        c["v"].append(sm.occupancy)
    for c in counters.values():
        pairs = sorted(zip(c["t"], c["v"]), key=lambda tv: tv[0])
        c["t"], c["v"] = [t for t, _ in pairs], [v for _, v in pairs]
    order = {name: i for i, name in enumerate(trace.channels)}
    return sorted(counters.values(), key=lambda c: order.get(c["name"], len(order)))


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
