"""What a sweep returns: one SweepPoint per combination (its row or its error), a table, and each point's run again.

This module draws nothing (it runs in worker processes too); ``ptort_lab.notebook.sweep.SweepResult`` adds the
plots, the timeline of a point and the notebook display.
"""
from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import Any

from ..errors import KnobError, PtortError, PtortValueError, SourceLocation, repr_text, traceback_location
from ..explore import Comparison, Study

TABLE_COLUMNS = ("pipeline_cycles", "data_parallel_cycles", "speedup")


@dataclass(frozen=True)
class PointError:
    """Why one point failed: the exception's type, what it said, the user's line, the fix it suggested.
    ``knob_rule``: a KnobError (a knob value the study cannot apply), which stops the sweep."""

    type: str
    what: str
    where: SourceLocation | None = None
    hint: str = ""
    context: str = ""
    knob_rule: bool = False

    @classmethod
    def of(cls, e: BaseException) -> PointError:
        """The record of exception ``e`` (a PtortError keeps its what, where and hint)."""
        if isinstance(e, PtortError):
            return cls(type(e).__name__, e.what, e.where, e.hint, e.context, isinstance(e, KnobError))
        where, _ = traceback_location(e)
        return cls(type(e).__name__, str(e), where)

    def line(self) -> str:
        """``Type: first line of what`` (at file:line)."""
        first = (self.what.splitlines() or [""])[0]
        at = f" (at {self.where})" if self.where is not None else ""
        return f"{self.type}: {first}{at}"

    def __str__(self) -> str:
        lines = [f"{self.type}: {self.what}"]
        if self.where is not None:
            lines.append(f"  at {self.where}" + (f" in {self.context}" if self.context else ""))
            if self.where.code:
                lines.append(f"    {self.where.code}")
        if self.hint:
            lines.append(self.hint)
        return "\n".join(lines)

    def raise_knob_error(self) -> None:
        """Raise this knob rule's KnobError again in this process (it stopped the sweep in a worker)."""
        raise KnobError(self.what, hint=self.hint, where=self.where, context=self.context, locate=False)


@dataclass(frozen=True)
class SweepPoint:
    """One combination: its index, the swept knob values, its row (None if it failed) or error, and whether the
    row came from the sweep cache."""

    index: int
    values: dict[str, Any]
    row: dict[str, Any] | None = None
    error: PointError | None = None
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.row is not None

    def label(self) -> str:
        """``depth=2 tile=64x64``: the swept knob values."""
        return " ".join(f"{k}={_value_text(k, v)}" for k, v in self.values.items())


def _value_text(name: str, value: Any) -> str:
    return f"{value[0]}x{value[1]}" if name == "tile" else str(value)


@dataclass
class CacheUse:
    """How a sweep used the cache: where it is, rows found there, rows computed, and why some were not saved."""

    path: str | None = None
    reused: int = 0
    computed: int = 0
    note: str = ""  # e.g. why points could not be looked up, or were not saved
    write_error: str | None = None  # why the cache could not be written (then the rows computed were not saved)

    def line(self) -> str:
        if self.path is None:
            return "cache: off (cache=False)"
        if self.write_error is not None:
            text = (f"cache: {self.reused} reused, {self.computed} computed; could not save to the cache "
                    f"{self.path}: {self.write_error}")
        else:
            text = f"cache: {self.reused} reused, {self.computed} computed and saved in {self.path}"
        return text + (f" ({self.note})" if self.note else "")


@dataclass
class SweepResult:
    """One point per combination, in the order of the knob values given: ``rows`` (those that ran),
    ``failures`` (those that raised), ``point(i)``, ``table()``, and ``comparison(i)`` / ``study(i)`` to look at a
    point's runs again."""

    params: tuple[str, ...]
    points: list[SweepPoint] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the sweep; kept out of every display (they are deterministic)
    cache: CacheUse = field(default_factory=CacheUse)
    executor: str = "serial"
    base: Study | None = field(default=None, repr=False)  # the sweep's study (as before its first point)
    notes: list[str] = field(default_factory=list)  # e.g. why the points ran in this process after all
    cpu_seconds: float = 0.0  # CPU time the points run by this sweep took, wherever they ran (not displayed)

    @property
    def rows(self) -> list[dict[str, Any]]:
        """The rows of the points that ran: knobs, each run's cycles, µs, overlap %, cores, bytes, the speedup."""
        return [p.row for p in self.points if p.row is not None]

    @property
    def failures(self) -> list[SweepPoint]:
        return [p for p in self.points if p.error is not None]

    def point(self, index: int, method: str = "point") -> SweepPoint:
        """Point ``index`` (the # column of the table); ``method`` is what the user called, for the error."""
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self.points):
            raise PtortValueError(f"{method}({repr_text(index)}) is not a point of this sweep: it has "
                                  f"{len(self.points)} (0..{len(self.points) - 1}).",
                                  hint=f"Use the # column of the table, e.g. result.{method}(0).")
        return self.points[index]

    def study(self, index: int) -> Study:
        """A new Study of the sweep's builder and options, with point ``index``'s knobs."""
        return self._study(index, "study")

    def _study(self, index: int, method: str) -> Study:
        point = self.point(index, method)
        if self.base is None:
            raise PtortValueError("this SweepResult keeps no study, so its points cannot be run again.",
                                  hint="Use the SweepResult that sweep() returned.")
        base = self.base
        return Study(base.build, base.knobs.replace(**point.values), base.mode, words=base.words,
                     equal_cores=base.equal_cores, **base.compile_options)

    def comparison(self, index: int) -> Comparison:
        """Point ``index`` run again in this process (its runs, traces and stats): a Comparison."""
        study = self._study(index, "comparison")
        return study.run()

    # -- text ------------------------------------------------------------------------------------------------------
    def _table_cells(self) -> tuple[list[str], list[list[str]]]:
        cols = ["#"] + list(self.params) + ["pipeline cycles", "data-parallel cycles", "speedup"]
        body = []
        for p in self.points:
            knobs = [str(p.index)] + [_value_text(k, p.values[k]) for k in self.params]
            if p.row is None:
                err = p.error.type if p.error is not None else "?"
                body.append(knobs + ["failed", err, "-"])
                continue
            r = p.row
            body.append(knobs + [str(r["pipeline_cycles"] if r["pipeline_cycles"] is not None else "-"),
                                 str(r["data_parallel_cycles"] if r["data_parallel_cycles"] is not None else "-"),
                                 f"{r['speedup']:.2f}x" if r["speedup"] is not None else "-"])
        return cols, body

    def text_table(self) -> str:
        """The table as text: one line per point, failed points marked."""
        cols, body = self._table_cells()
        n = 1 + len(self.params)
        widths = [max(len(c), 4) if i == 0 else 9 if i < n else 20 for i, c in enumerate(cols)]
        lines = ["  ".join(f"{c:>{w}}" for c, w in zip(cols, widths))]
        lines += ["  ".join(f"{v:>{w}}" for v, w in zip(row, widths)) for row in body]
        return "\n".join(lines)

    def table(self) -> Any:
        """The rows as a pandas DataFrame (one row per point, failed points with their error) when pandas is
        installed, else a SweepTable (text and HTML)."""
        records = self.records()
        try:
            import pandas
        except ImportError:
            return SweepTable(self.columns(), records)
        return pandas.DataFrame.from_records(records, columns=self.columns())

    def columns(self) -> list[str]:
        metrics = [k for k in (self.rows[0] if self.rows else {}) if k not in ("depth", "tile", "tiles", "cores")]
        return ["point"] + ["depth", "tile", "tiles", "cores"] + metrics + ["cached", "error"]

    def records(self) -> list[dict[str, Any]]:
        """One dict per point: its index, knobs and metrics (None when it failed), cached, and its error line."""
        out = []
        for p in self.points:
            rec: dict[str, Any] = {"point": p.index}
            rec.update(p.row if p.row is not None else {**self._knobs_of(p)})
            rec["cached"] = p.cached
            rec["error"] = p.error.line() if p.error is not None else None
            out.append(rec)
        return out

    def _knobs_of(self, p: SweepPoint) -> dict[str, Any]:
        knobs = self.base.knobs.replace(**p.values) if self.base is not None else None
        return {k: getattr(knobs, k) if knobs is not None else p.values.get(k) for k in ("depth", "tile", "tiles",
                                                                                           "cores")}

    def summary(self) -> str:
        """The header: what was swept, how many points ran, failed, came from the cache, and on what."""
        failed = len(self.failures)
        head = f"sweep of {', '.join(self.params)}: {len(self.rows)} runs"
        if failed:
            head += f", {failed} failed"
        return head

    def __repr__(self) -> str:
        lines = [self.summary(), self.text_table()]
        if self.failures:
            lines.append(f"failed points ({len(self.failures)}):")
            lines += [f"  #{p.index} {p.label()}: {p.error.line()}" for p in self.failures if p.error is not None]
        lines.append(f"{self.cache.line()}; ran on {self.executor}")
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        return self.table_html()

    def table_html(self) -> str:
        cols, body = self._table_cells()
        head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in r) + "</tr>" for r in body)
        return (f"<p>{html.escape(self.summary())}</p><table class=\"ptort-sweep\"><tr>{head}</tr>{rows}</table>"
                f"<p>{html.escape(self.cache.line())}; ran on {html.escape(self.executor)}</p>")


@dataclass(frozen=True)
class SweepTable:
    """The sweep's table without pandas: ``columns``, ``records``; prints as text, shows as HTML."""

    columns: list[str]
    records: list[dict[str, Any]]

    def __len__(self) -> int:
        return len(self.records)

    def _cells(self) -> list[list[str]]:
        return [[_cell(c, r.get(c)) for c in self.columns] for r in self.records]

    def __repr__(self) -> str:
        cells = self._cells()
        widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(self.columns)]
        lines = ["  ".join(f"{c:>{w}}" for c, w in zip(self.columns, widths))]
        lines += ["  ".join(f"{v:>{w}}" for v, w in zip(row, widths)) for row in cells]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(c)}</th>" for c in self.columns)
        rows = "".join("<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in r) + "</tr>" for r in self._cells())
        return f'<table class="ptort-sweep"><tr>{head}</tr>{rows}</table>'


def _cell(column: str, value: Any) -> str:
    if value is None:
        return "-"
    if column == "tile":
        return _value_text("tile", value)
    if isinstance(value, float):
        return f"{value:.3f}" if column.endswith("_us") else f"{value:.2f}"
    return str(value)


__all__ = ["SweepResult", "SweepPoint", "PointError", "SweepTable", "CacheUse"]
