"""PtortResult: what ``%%ptort`` returns; a deterministic rich display of one Comparison and its workload.

Every part of the display is built by ptort_lab.viz. A part that fails to render becomes a one-line note in the
text: IPython would otherwise print the formatter's traceback and fall back to a repr.
"""
from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from matplotlib.figure import Figure

from ..dsl import Kernel, Workload
from ..errors import PtortTypeError, PtortValueError, without_addresses
from ..explore import Comparison, Knobs, is_pipeline
from ..program import Program
from ..viz import Diagram, compare, draw_pipeline, figure_png, kernel_view, pipeline_json, plot_timeline
from ..viz.ir_view import KernelView
from ..viz.views import PIPELINE_MIME, TRACE_MIME, TextView

SHOW_PARTS = ("diagram", "ir", "timeline", "stats")
DEFAULT_SHOW = ("diagram", "timeline")
MAX_TRACE_SPANS = 50_000  # beyond this a run's trace is left out of the notebook (save_trace writes it)


def short_error(e: BaseException, limit: int = 300) -> str:
    """``Type: first line of the message``, with memory addresses masked: safe to show in a deterministic output."""
    text = str(e).strip().splitlines()
    message = without_addresses(text[0] if text else "")
    out = f"{type(e).__name__}: {message}" if message else type(e).__name__
    return out if len(out) <= limit else out[: limit - 1] + "…"


def render_part(what: str, make: Callable[[], Any], notes: list[str]) -> Any:
    try:
        return make()
    except Exception as e:
        notes.append(f"[{what} not shown: {short_error(e)}]")
        return None


def describe(workload: Workload) -> str:
    """One line naming the workload: its processes and channels, or its kind."""
    if is_pipeline(workload):
        procs = [p.name for p in workload.processes]
        chans = [f"{c.name} (depth {c.depth})" for c in workload.channels]
        text = f"pipeline {' -> '.join(procs)}"
        return text + (f"; channels {', '.join(chans)}" if chans else "")
    return f"workload {workload.name or workload.kind!r}"


def _machine_line(program: Program) -> str:
    machine = program.machine
    name = machine.name if machine is not None else type(program.cost_model).__name__
    return f"machine {name}, channel latency {program.run_options.channel_latency_cycles} cycles"


class NoSuchKernel(PtortValueError, KeyError, IndexError):
    """``ir()[key]`` names no kernel; still a KeyError/IndexError, so code that catches those (a lookup) works."""

    __str__ = PtortValueError.__str__  # KeyError's own __str__ would print the message as a quoted repr


class IRViews(TextView):
    """The IR of several kernels: ``.text``, one KernelView per kernel (by index or name), shown together."""

    def __init__(self, views: list[KernelView]) -> None:
        self.views = views

    @property
    def text(self) -> str:
        return "\n\n".join(v.text for v in self.views)

    def __len__(self) -> int:
        return len(self.views)

    def __iter__(self) -> Iterator[KernelView]:
        return iter(self.views)

    def __getitem__(self, key: int | str) -> KernelView:
        names = ", ".join(repr(v.ir.name) for v in self.views)
        if isinstance(key, int):
            if -len(self.views) <= key < len(self.views):
                return self.views[key]
            example = f"e.g. ir()[0] or ir()[{self.views[0].ir.name!r}]" if self.views else "once it has kernels"
            raise NoSuchKernel(f"ir()[{key}]: this result has {len(self.views)} kernel(s), numbered "
                               f"0..{len(self.views) - 1}: {names}.",
                               hint=f"Pick one by number or by name, {example}.")
        if not isinstance(key, str):
            raise PtortTypeError(f"ir()[...] takes a kernel's name (str) or number (int), got "
                                 f"{type(key).__name__} {key!r}.", hint=f"Kernels: {names}.")
        for v in self.views:
            if v.ir.name == key:
                return v
        raise NoSuchKernel(f"ir()[{key!r}]: no kernel {key!r} in this result; kernels: {names}.",
                           hint="Use one of the kernel names above, or a number: ir()[0].")

    def _repr_html_(self) -> str:
        return "\n".join(v._repr_html_() for v in self.views)


class PtortResult:
    """A pipeline run and/or its data-parallel twin (an ``explore.Comparison``), the workload, and what to show.

    ``.summary()`` is deterministic text (knobs, cycles, us, overlap %, speedup); ``.timeline()`` a Figure,
    ``.diagram()`` the pipeline Diagram, ``.ir()`` the kernels' IR, ``.save_trace(path)`` the Chrome trace(s).
    """

    def __init__(self, comparison: Comparison, workload: Workload, show: tuple[str, ...] = DEFAULT_SHOW) -> None:
        self.comparison = comparison
        self.workload = workload
        self.show = tuple(show)

    # -- the runs -----------------------------------------------------------------------------------------------
    @property
    def knobs(self) -> Knobs:
        """The four knobs as the cell had them bound; ``comparison.used`` names those the runs used (the summary
        shows only these: a cell that builds its own tiles does not use TILE)."""
        return self.comparison.knobs

    @property
    def pipeline(self) -> Program | None:
        return self.comparison.pipeline

    @property
    def data_parallel(self) -> Program | None:
        return self.comparison.data_parallel

    @property
    def runs(self) -> list[tuple[str, Program]]:
        return self.comparison.runs

    @property
    def speedup(self) -> float | None:
        return self.comparison.speedup

    def cycles(self) -> dict[str, int]:
        """Makespan in cycles per run label."""
        return {label: prog.stats().total_cycles for label, prog in self.runs}

    def summary(self) -> str:
        lines = [describe(self.workload)]
        if self.runs:
            lines.append(_machine_line(self.runs[0][1]))
        lines.append(self.comparison.summary())
        for label, program in self.runs:  # how far to trust the times (sim/validation.py)
            band = program.stats().error_band
            if band is not None:
                lines.append(f"model error, {label} run: {band.text()}")
        return "\n".join(lines)

    # -- views --------------------------------------------------------------------------------------------------
    def timeline(self) -> Figure:
        """Both runs' timelines on one time axis (viz.compare), or the one run's timeline."""
        if self.pipeline is not None and self.data_parallel is not None:
            return compare(self.comparison)
        label, program = self.runs[0]
        return plot_timeline(program, lanes="stage", title=f"{label} run")

    def diagram(self) -> Diagram:
        return draw_pipeline(self.workload)

    def kernels(self) -> list[Kernel]:
        """The kernels the workload launches, in order of first launch."""
        seen: list[Kernel] = []
        for _, program in self.runs[:1]:
            for task in program.tasks:
                k = task.kernel_ref
                if k is not None and not any(k is s for s in seen):
                    seen.append(k)
        return seen

    def ir(self) -> IRViews:
        machine = self.runs[0][1].machine if self.runs else None
        return IRViews([kernel_view(k, machine=machine) for k in self.kernels()])

    # -- traces -------------------------------------------------------------------------------------------------
    def trace_json(self) -> dict[str, Any]:
        """``{"runs": {label: Chrome trace dict}, "knobs": {...}}``; very long runs are left out (see save_trace)."""
        runs: dict[str, Any] = {}
        for label, program in self.runs:
            trace = program.trace()
            if len(trace.spans) > MAX_TRACE_SPANS:
                runs[label] = {"omitted": f"{len(trace.spans)} spans; write it with .save_trace(path)"}
            else:
                runs[label] = json.loads(trace.to_chrome_json())
        k = self.knobs
        return {"runs": runs, "knobs": {"depth": k.depth, "tile": list(k.tile), "tiles": k.tiles, "cores": k.cores}}

    def save_trace(self, path: str | os.PathLike[str]) -> list[tuple[str, Path]]:
        """Write the first run's Chrome trace to ``path``; with both runs, the data-parallel one goes next to it
        as ``NAME.data-parallel.json``. Returns (run label, path written) pairs."""
        if not isinstance(path, (str, os.PathLike)) or not isinstance(os.fspath(path), str):
            raise PtortTypeError(f"save_trace(path) takes a file path (a str or pathlib.Path), got "
                                 f"{type(path).__name__} {path!r}.",
                                 hint="Write result.save_trace('run.json') ('run.json.gz' to compress).")
        if not str(path).strip():
            raise PtortValueError(f"save_trace(path) got {str(path)!r}, which names no file.",
                                  hint="Write result.save_trace('run.json') ('run.json.gz' to compress).")
        path = Path(path)
        written = []
        for i, (label, program) in enumerate(self.runs):
            target = path if i == 0 else _sibling(path, label)
            program.trace().save(target)
            written.append((label, target))
        return written

    # -- rich display -------------------------------------------------------------------------------------------
    def _head(self) -> str:
        """The summary, plus each run's statistics when ``stats`` is shown."""
        parts = [self.summary()]
        if "stats" in self.show:
            parts += [program.stats().summary() for _, program in self.runs]
        return "\n\n".join(parts)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> dict[str, Any]:
        def wanted(mime: str) -> bool:
            return (not include or mime in include) and (not exclude or mime not in exclude)

        notes: list[str] = []
        bundle: dict[str, Any] = {}
        visual = wanted("image/png") or wanted("image/svg+xml") or wanted("text/html")
        png = svg = None
        if "timeline" in self.show and visual and self.runs:
            png = render_part("timeline", lambda: figure_png(self.timeline()), notes)
        if "diagram" in self.show and visual:
            before = len(notes)
            svg = render_part("diagram", lambda: self.diagram().svg(), notes)
            if svg is None and len(notes) == before:
                notes.append("[diagram not shown: no Graphviz layout available]")
        ir = render_part("kernel IR", self.ir, notes) if "ir" in self.show else None
        # The JSON parts feed the JupyterLab renderers, which draw what --show asked for and nothing else.
        if wanted(TRACE_MIME) and "timeline" in self.show:
            trace = render_part("trace", self.trace_json, notes)
            if trace is not None:
                bundle[TRACE_MIME] = trace
        if wanted(PIPELINE_MIME) and "diagram" in self.show and is_pipeline(self.workload):
            graph = render_part("pipeline JSON", lambda: pipeline_json(self.workload), notes)
            if graph is not None:
                bundle[PIPELINE_MIME] = graph
        head = self._head()
        bundle["text/plain"] = "\n\n".join([head] + ([ir.text] if ir is not None and len(ir) else []) + notes)
        if png is not None and wanted("image/png"):
            bundle["image/png"] = png
        if svg is not None and wanted("image/svg+xml"):
            bundle["image/svg+xml"] = svg
        if wanted("text/html"):
            bundle["text/html"] = html_output("\n\n".join([head] + notes), svg, png, ir)
        return bundle

    def __repr__(self) -> str:
        return self.summary()


def html_output(text: str, svg: str | None = None, png: bytes | None = None, ir: IRViews | None = None,
                png_alt: str = "timeline") -> str:
    """Everything in one output (a front end shows one mimetype per output): the summary, the diagram, the IR and
    the timeline. User names are escaped; the images are data URIs, so no markup inside them can run."""
    pieces = ['<div class="ptort-result">', f"<pre>{html.escape(text)}</pre>"]
    if svg is not None:
        data = base64.b64encode(svg.encode("utf-8")).decode("ascii")
        pieces.append(f'<img alt="pipeline diagram" src="data:image/svg+xml;base64,{data}"/>')
    if ir is not None and len(ir):
        pieces.append(ir._repr_html_())
    if png is not None:
        pieces.append(f'<img alt="{png_alt}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}"/>')
    pieces.append("</div>")
    return "\n".join(pieces)


def _sibling(path: Path, label: str) -> Path:
    name = path.name
    for suffix in (".json.gz", ".json"):
        if name.lower().endswith(suffix):  # (run.json.GZ is compressed too: the suffix is kept as written)
            return path.with_name(f"{name[: -len(suffix)]}.{label}{name[-len(suffix):]}")
    return path.with_name(f"{name}.{label}.json")


__all__ = ["PtortResult", "IRViews", "SHOW_PARTS", "DEFAULT_SHOW", "TRACE_MIME", "PIPELINE_MIME", "short_error",
           "describe", "render_part", "html_output"]
