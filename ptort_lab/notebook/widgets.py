"""The explorer: sliders for channel depth, tile size, tile count and cores over a pure controller.

``ExplorerController`` holds no widgets: ``update(depth=4)`` reruns the study and keeps the Comparison in
``.last``, so tests drive it (or the sliders) without a kernel. ``Explorer`` is the ipywidgets view: every slider
has ``continuous_update=False``; a change reruns the study and redraws both timelines (one PNG) and a table into
fixed-height areas. Errors from a rerun are shown in the panel as one short message.
"""
from __future__ import annotations

import html
import time
from typing import Any, Callable

import ipywidgets as widgets

from ..errors import PtortError, PtortTypeError, PtortValueError
from ..explore import Comparison, Knobs, Study, check_knobs
from ..sim.machine import Machine, ascend_910b, get_machine
from .display import short_error

TILE_SIZES = (32, 64, 128, 256)
FIGURE_DPI = 80  # the panel's timeline PNG (800 px wide); dpi hardly changes the draw time, artists do
FIGURE_HEIGHT = "520px"
TABLE_HEIGHT = "110px"


class ExplorerController:
    """Knob changes in, Comparisons out: ``update(**knobs)`` rebuilds and reruns ``study``."""

    def __init__(self, study: Study) -> None:
        if not isinstance(study, Study):
            raise PtortTypeError(f"ExplorerController needs a Study, got {type(study).__name__} {study!r}.",
                                 hint="Write ExplorerController(Study(build)) (from ptort_lab.explore import Study), "
                                      "or Explorer(build) for the widget.")
        self.study = study
        self.last: Comparison | None = None
        self.last_rows: list[dict[str, Any]] = []
        self.history: list[tuple[Knobs, list[dict[str, Any]]]] = []  # (knobs, rows) of every successful update
        self.error: BaseException | None = None

    @property
    def knobs(self) -> Knobs:
        return self.study.knobs

    def update(self, **knobs: Any) -> Comparison:
        """Apply knob changes (depth, tile, tiles, cores), rerun, remember and return the Comparison."""
        try:
            result = self.study.run(**knobs)
        except Exception as e:
            self.error = e
            raise
        self.error = None
        self.last = result
        self.last_rows = result.rows()  # stats are computed from the trace: once per run, not per view
        self.history.append((result.knobs, self.last_rows))
        return result

    def figure(self, comparison: Comparison | None = None) -> Any:
        """Both runs' timelines on one time axis (or the one run's), as a matplotlib Figure."""
        from .. import viz
        if comparison is not None and not isinstance(comparison, Comparison):
            raise PtortTypeError(f"figure() takes a Comparison (what update() returns), got "
                                 f"{type(comparison).__name__} {comparison!r}.",
                                 hint="Call controller.figure() for the last run, or controller.figure(comparison).")
        comparison = comparison or self.last
        if comparison is None:
            raise PtortValueError("ExplorerController.figure() has no run to draw yet.",
                                  hint="Call controller.update() first (e.g. controller.update(depth=2)); it runs the "
                                       "study and keeps the result for figure() and png().")
        if comparison.pipeline is not None and comparison.data_parallel is not None:
            return viz.compare(comparison)
        label, program = comparison.runs[0]
        return viz.plot_timeline(program, lanes="stage", title=f"{label} run")

    def png(self, comparison: Comparison | None = None, dpi: float = FIGURE_DPI) -> bytes:
        from .. import viz
        return bytes(viz.figure_png(self.figure(comparison), dpi=dpi))


def table_html(comparison: Comparison, rows: list[dict[str, Any]] | None = None) -> str:
    """The runs as a small HTML table: cycles, us, overlap %, and the pipeline's speedup (``rows``: the
    comparison's rows, when already computed)."""
    rows = rows if rows is not None else comparison.rows()
    head = "<tr><th>run</th><th>cycles</th><th>&micro;s</th><th>overlap %</th><th>tasks</th></tr>"
    body = "".join(f"<tr><td>{html.escape(r['run'])}</td><td>{r['cycles']}</td><td>{r['us']:.3f}</td>"
                   f"<td>{r['overlap_pct']:.1f}</td><td>{r['tasks']}</td></tr>" for r in rows)
    cycles = {r["run"]: r["cycles"] for r in rows}
    speedup = cycles["data-parallel"] / cycles["pipeline"] if cycles.get("pipeline") and "data-parallel" in cycles \
        else None
    caption = f"<p>{html.escape(str(comparison.knobs))}"
    if speedup is not None:
        caption += f"; pipeline speedup vs data-parallel: <b>{speedup:.2f}x</b>"
    return f'{caption}</p><table class="ptort-explorer">{head}{body}</table>'


def _tile_options(current: tuple[int, int]) -> list[tuple[str, tuple[int, int]]]:
    sizes = [(s, s) for s in TILE_SIZES]
    if current not in sizes:
        sizes.append(current)
    sizes.sort()
    return [(f"{r}x{c}", (r, c)) for r, c in sizes]


class Explorer(widgets.VBox):  # type: ignore[misc]  # ipywidgets has no type information, so VBox is Any
    """Sliders for depth, tile, tiles and cores, the two timelines and a table: ``Explorer(build)``.

    ``study_or_builder`` is an ``explore.Study`` (used as it is) or a builder taking any of depth, tile, tiles,
    cores (wrapped in a timing-only Study: ``compute_values=False``). ``explorer.controller.last`` is the latest
    Comparison; ``explorer.sliders["depth"].value = 4`` is what moving the slider does.
    """

    def __init__(self, study_or_builder: Study | Callable[..., Any], knobs: Knobs | None = None, *,
                 mode: str = "both", **compile_options: Any) -> None:
        check_knobs(knobs, "Explorer")
        if isinstance(study_or_builder, Study):
            study = study_or_builder
            if knobs is not None:
                study.knobs = knobs
        else:
            compile_options.setdefault("compute_values", False)
            study = Study(study_or_builder, knobs, mode, **compile_options)
        self.controller = ExplorerController(study)
        k = study.knobs
        style = {"description_width": "70px"}

        def slider(cls: Any, description: str, **kw: Any) -> Any:
            return cls(description=description, continuous_update=False, style=style,
                       layout=widgets.Layout(width="300px"), **kw)

        self.sliders: dict[str, Any] = {
            "depth": slider(widgets.IntSlider, "depth", value=k.depth, min=1, max=max(8, k.depth)),
            "tile": slider(widgets.SelectionSlider, "tile", options=_tile_options(k.tile), value=k.tile),
            "tiles": slider(widgets.IntSlider, "tiles", value=k.tiles, min=1, max=max(128, k.tiles)),
            "cores": slider(widgets.IntSlider, "cores", value=k.cores, min=1,
                            max=max(_machine_cores(study), k.cores)),
        }
        for name, s in self.sliders.items():  # a knob the builder ignores would change nothing
            s.disabled = not study.takes(name)
        self.message = widgets.HTML(value="")
        self.table = widgets.HTML(value="", layout=widgets.Layout(height=TABLE_HEIGHT, overflow="auto"))
        self.figure = widgets.Image(format="png", layout=widgets.Layout(height=FIGURE_HEIGHT, object_fit="contain"))
        self.last_refresh_ms: float | None = None
        for s in self.sliders.values():
            s.observe(self._on_change, names="value")
        controls = widgets.HBox([widgets.VBox([self.sliders["depth"], self.sliders["tile"]]),
                                 widgets.VBox([self.sliders["tiles"], self.sliders["cores"]])])
        super().__init__([controls, self.message, self.table, self.figure])
        self.refresh()

    def _on_change(self, change: dict[str, Any]) -> None:
        self.refresh()

    def knob_values(self) -> dict[str, Any]:
        return {name: s.value for name, s in self.sliders.items()}

    def refresh(self) -> None:
        """Rerun with the sliders' values and redraw; any error becomes a short message in the panel."""
        started = time.perf_counter()
        try:
            comparison = self.controller.update(**self.knob_values())
            png = self.controller.png(comparison)
        except Exception as e:  # a callback's exception would otherwise vanish (no cell to show it in)
            note = " (showing the last good run)" if self.controller.last is not None else ""
            self.message.value = (f'<pre style="color:#b00020;white-space:pre-wrap">'
                                  f"{html.escape(_message(e))}"
                                  f"{html.escape(note)}</pre>")
            return
        self.figure.value = png
        self.table.value = table_html(comparison, self.controller.last_rows)
        self.message.value = ""
        self.last_refresh_ms = (time.perf_counter() - started) * 1e3


def _machine_cores(study: Study) -> int:
    """The AI cores of the machine the study compiles for (its machine= option, else ascend_910b): the cores
    slider stops there, since a data-parallel run on more cores is refused."""
    machine = study.compile_options.get("machine")
    if isinstance(machine, (Machine, str)):
        try:
            return get_machine(machine).num_cores
        except PtortError:  # a bad preset name: compile() reports it on the first run
            pass
    return ascend_910b.num_cores


def _message(e: BaseException) -> str:
    """A PtortError's whole message (what, where, hint); the first line of anything else."""
    if isinstance(e, PtortError):
        return f"{type(e).__name__}: {e}"
    return short_error(e)


__all__ = ["Explorer", "ExplorerController", "table_html", "TILE_SIZES"]
