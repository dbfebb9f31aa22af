"""The explorer: sliders for channel depth, tile size, tile count and cores over a pure controller.

``ExplorerController`` holds no widgets: ``update(depth=4)`` reruns the study and keeps the Comparison in
``.last``, so tests drive it without a kernel. ``Explorer`` is an anywidget: its view (ptort_lab/notebook/static/
explorer.js, built from the JupyterLab renderers' TypeScript by extensions/build.sh) draws the sliders, the verdict,
the table and both runs' timelines client-side from compact run data (``compact.compact_run``: rows of numbers, not
a picture), so it works in JupyterLab, Notebook 7 and VS Code without a lab extension. A slider release sends one
request; the kernel reruns the study timing-only (the builder rebuilds, nothing computes values) and answers with
the new run data in one message; the view shows a busy indicator meanwhile and drops replies that a newer move made
stale. Only the side a move changed runs again: the study keeps its recent runs by content (``run_cache``), so a
cores move reuses the pipeline (unless the builder takes cores), a depth move the twin (when the depth changes only
the channels, which the twin has none of), and a move back to an earlier value runs nothing.

Without a live view (an unrun notebook, nbconvert HTML) the display bundle's picture shows instead: a matplotlib
PNG of the explorer's state and its summary text. A change made from code (``explorer.sliders["depth"].value = 1``,
``explorer.update(...)``) refreshes them at once. A move made in the browser cannot: the display bundle is one
output, and re-sending it (``update_display``) makes the front end build a new live view, which would reset the
view the user is working in (zoom, focus) on every move. So after browser moves the picture and summary catch up
just before the next cell runs (IPython's ``pre_run_cell``), and a notebook saved after that shows the last state.
"""
from __future__ import annotations

import html
import time
import weakref
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import anywidget
import traitlets

from ..errors import PtortError, PtortTypeError, PtortValueError
from ..explore import Comparison, Knobs, Study, check_compile_options, check_equal_cores, check_knobs, check_mode
from ..program import Program
from ..run_cache import DEFAULT_SIZE, RunCache
from ..sim.machine import Machine, ascend_910b, get_machine
from .compact import compact_run
from .display import short_error

STATIC = Path(__file__).resolve().parent / "static"
TILE_SIZES = (32, 64, 128, 256)
FIGURE_DPI = 100  # the static fallback picture: readable text at the notebook's width
COMPACT_KEPT = DEFAULT_SIZE  # compact run data kept: as many as the run cache keeps runs
KNOB_TITLES = {
    "depth": "channel depth (slots per channel)",
    "tile": "tile size (rows x cols)",
    "tiles": "number of tiles",
    "cores": "cores of the data-parallel run",
}


class ExplorerController:
    """Knob changes in, Comparisons out: ``update(**knobs)`` rebuilds and reruns ``study``.

    The study gets a ``RunCache`` (unless it has one): a timing-only run equal by content to a recent one is not run
    again (``Study``'s docstring), so a move reruns only the side the knob changed, and a move back reruns nothing.
    The compact run data of the recent runs are kept too (``view_state``)."""

    def __init__(self, study: Study) -> None:
        if not isinstance(study, Study):
            raise PtortTypeError(f"ExplorerController needs a Study, got {type(study).__name__} {study!r}.",
                                 hint="Write ExplorerController(Study(build)) (from ptort_lab.explore import Study), "
                                      "or Explorer(build) for the widget.")
        if study.cache is None:
            study.cache = RunCache()
        self.study = study
        self._compact: OrderedDict[tuple[str, int], tuple[Program, Any, dict[str, Any]]] = OrderedDict()
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

    def view_state(self, comparison: Comparison | None = None) -> dict[str, Any]:
        """What the view draws: compact run data, table rows, verdict and summary (no error)."""
        comparison = comparison or self.last
        if comparison is None:
            return {"runs": [], "table": [], "verdict": "", "summary": "", "note": "", "knobs": {}}
        k = comparison.knobs
        return {
            "runs": [self._compact_run(label, program) for label, program in comparison.runs],
            "table": self.last_rows if comparison is self.last else comparison.rows(),
            "verdict": comparison.verdict(),
            "summary": comparison.summary(),
            "note": comparison.note,
            "knobs": {"depth": k.depth, "tile": list(k.tile), "tiles": k.tiles, "cores": k.cores},
        }

    def _compact_run(self, label: str, program: Program) -> dict[str, Any]:
        """``compact_run(label, program)``, kept for the recent runs (a run from the study's cache is drawn again)."""
        key = (label, id(program))
        run = getattr(program, "_run", None)
        entry = self._compact.get(key)
        if entry is not None and entry[0] is program and entry[1] is run:
            self._compact.move_to_end(key)
            return entry[2]
        data = compact_run(label, program)
        self._compact[key] = (program, run, data)
        while len(self._compact) > COMPACT_KEPT:
            self._compact.popitem(last=False)
        return data

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
    """The runs as a small HTML table: cores, cycles, us, overlap %, the verdict (``rows``: the comparison's rows,
    when already computed)."""
    rows = rows if rows is not None else comparison.rows()
    head = "<tr><th>run</th><th>cores</th><th>cycles</th><th>&micro;s</th><th>overlap %</th><th>tasks</th></tr>"
    body = "".join(f"<tr><td>{html.escape(r['run'])}</td><td>{r['cores']}</td><td>{r['cycles']}</td>"
                   f"<td>{r['us']:.3f}</td><td>{r['overlap_pct']:.1f}</td><td>{r['tasks']}</td></tr>" for r in rows)
    caption = f"<p>{html.escape(str(comparison.knobs))}"
    verdict = comparison.verdict()
    if verdict:
        caption += f"; <b>{html.escape(verdict)}</b>"
    return f'{caption}</p><table class="ptort-explorer">{head}{body}</table>'


def _tile_options(current: tuple[int, int]) -> list[tuple[int, int]]:
    sizes = [(s, s) for s in TILE_SIZES]
    if current not in sizes:
        sizes.append(current)
    return sorted(sizes)


class Slider:
    """One knob of the panel, as code sees it: ``explorer.sliders["depth"].value = 4`` is what releasing the
    slider at 4 does (the study reruns at once)."""

    continuous_update = False  # a move reruns a simulation: only the release counts

    def __init__(self, explorer: Explorer, name: str, value: Any, *, min: int = 1, max: int = 1,
                 options: list[Any] | None = None, disabled: bool = False) -> None:
        self._explorer = explorer
        self.name = name
        self._value = value
        self.min, self.max = min, max
        self.options = options
        self.disabled = disabled

    @property
    def value(self) -> Any:
        return self._value

    @value.setter
    def value(self, value: Any) -> None:
        self._explorer._apply({self.name: value}, f"sliders[{self.name!r}].value")  # an error goes to the panel

    def fit(self) -> None:
        """Widen the slider to show its value exactly: a tile not among the options joins them (in order), a number
        past the ends moves max or min (the view's range input would clamp it, and the tile slider show its first
        option, and the next move of any slider would rerun with that instead)."""
        if self.options is not None:
            if self._value not in self.options:
                self.options = sorted([*self.options, self._value])
        else:
            self.min, self.max = min(self.min, self._value), max(self.max, self._value)

    def spec(self) -> dict[str, Any]:
        """The slider as the view draws it (a choice slider's value is a position in its options)."""
        out: dict[str, Any] = {"name": self.name, "label": self.name, "disabled": self.disabled,
                               "title": KNOB_TITLES[self.name]}
        if self.options is not None:
            pos = self.options.index(self._value) if self._value in self.options else 0
            out.update(min=0, max=len(self.options) - 1, value=pos,
                       options=[[f"{r}x{c}", [r, c]] for r, c in self.options])
        else:
            out.update(min=self.min, max=self.max, value=self._value)
        return out

    def __repr__(self) -> str:
        return f"Slider({self.name}={self._value!r})"


class Explorer(anywidget.AnyWidget):  # type: ignore[misc,unused-ignore]  # typed only in some anywidget releases
    """Sliders for depth, tile, tiles and cores, the verdict, a table and both timelines: ``Explorer(build)``.

    ``study_or_builder`` is an ``explore.Study`` (used as it is) or a builder taking any of depth, tile, tiles,
    cores (wrapped in a timing-only Study: ``compute_values=False``). ``equal_cores=True`` runs the data-parallel
    twin on the pipeline's own cores (like for like; the cores slider is then unused). ``explorer.controller.last``
    is the latest Comparison; ``explorer.sliders["depth"].value = 4`` is what moving the slider does.
    """

    _esm = STATIC / "explorer.js"
    _css = STATIC / "explorer.css"
    controls = traitlets.Dict().tag(sync=True)
    view = traitlets.Dict().tag(sync=True)
    request = traitlets.Dict().tag(sync=True)

    def __init__(self, study_or_builder: Study | Callable[..., Any], knobs: Knobs | None = None, *,
                 mode: str | None = None, equal_cores: bool | None = None, **compile_options: Any) -> None:
        # Every argument is checked before the first run: a bad one raises here instead of becoming the panel's
        # message (the panel shows what goes wrong while it is used).
        check_knobs(knobs, "Explorer")
        if mode is not None:
            check_mode(mode, "Explorer")
        if equal_cores is not None:
            equal_cores = check_equal_cores(equal_cores, "Explorer")
        if isinstance(study_or_builder, Study):
            study = study_or_builder
            _refuse_study_options(study, mode, compile_options)
            if knobs is not None:
                study.knobs = knobs
        else:
            compile_options.setdefault("compute_values", False)
            check_compile_options(compile_options, "Explorer")  # named as the user called it, not as Study
            study = Study(study_or_builder, knobs, mode or "both", **compile_options)
        if equal_cores is not None:
            study.equal_cores = equal_cores
        super().__init__()
        self.controller = ExplorerController(study)
        k = study.knobs
        self.sliders: dict[str, Slider] = {
            "depth": Slider(self, "depth", k.depth, min=1, max=max(8, k.depth)),
            "tile": Slider(self, "tile", k.tile, options=_tile_options(k.tile)),
            "tiles": Slider(self, "tiles", k.tiles, min=1, max=max(128, k.tiles)),
            "cores": Slider(self, "cores", k.cores, min=1, max=max(_machine_cores(study), k.cores)),
        }
        for name, s in self.sliders.items():  # a knob the builder ignores would change nothing
            s.disabled = not study.takes(name)
        self.message = ""
        self._error: BaseException | None = None  # what the last refresh raised (update() raises it again)
        self.last_refresh_ms: float | None = None
        self._figure_png: bytes | None = None
        self._display_ids: list[str] = []
        self._good: dict[str, Any] = self.knob_values()  # the slider values of the last good run
        self._good_equal_cores = study.equal_cores  # and its equal-cores choice
        self.observe(self._on_request, names="request")
        self.refresh()
        self._raise_interrupt()  # Ctrl-C during the first run stops the cell that makes the explorer

    # -- state ----------------------------------------------------------------------------------------------------
    @property
    def equal_cores(self) -> bool:
        return self.controller.study.equal_cores

    @property
    def verdict(self) -> str:
        last = self.controller.last
        return last.verdict() if last is not None else ""

    def knob_values(self) -> dict[str, Any]:
        return {name: s.value for name, s in self.sliders.items()}

    def table_html(self) -> str:
        last = self.controller.last
        return table_html(last, self.controller.last_rows) if last is not None else ""

    def update(self, **knobs: Any) -> Comparison:
        """Set knobs from code, rerun, redraw (the panel and the static picture); returns the new Comparison.

        A knob value or run that fails raises its error here (the panel shows it too, and keeps the last good run),
        so a script or a cell that never shows the panel sees it. Setting ``explorer.sliders[name].value`` is what
        moving that slider in the browser does instead: an error only goes to the panel's message."""
        ok = self._apply(knobs, "Explorer.update()")
        if not ok:
            error = self._error
            assert error is not None
            raise error
        assert self.controller.last is not None
        return self.controller.last

    def _apply(self, knobs: dict[str, Any], api: str) -> bool:
        """Set the sliders to ``knobs`` (names checked first), rerun, redraw; returns whether the run succeeded."""
        for name in knobs:
            if name not in self.sliders:
                raise PtortValueError(f"{api} got unknown knob {name!r}.", hint=f"Knobs: {', '.join(self.sliders)}.")
        for name, value in knobs.items():
            self.sliders[name]._value = value
        ok = self.refresh()
        self._refresh_picture()
        self._raise_interrupt()  # a change made from code was interrupted: the cell stops (the panel says so too)
        return ok

    def _raise_interrupt(self) -> None:
        if isinstance(self._error, KeyboardInterrupt):
            raise self._error

    def refresh(self, rid: str = "") -> bool:
        """Rerun with the sliders' values and send the new state to the view; an error becomes a short message
        (the view keeps the last good timelines). Returns whether the run succeeded."""
        started = time.perf_counter()
        self._error = None
        try:
            comparison = self.controller.update(**self.knob_values())
            state = self.controller.view_state(comparison)
        except Exception as e:  # a callback's exception would otherwise vanish (no cell to show it in)
            self._error = e
            self._show_error(e, rid, (time.perf_counter() - started) * 1e3)
            return False
        except KeyboardInterrupt as e:
            # Kernel -> Interrupt during a move: the view waits for an answer to its request, so one is sent
            # (the view would stay "running…" and queue every later move otherwise).
            self._error = e
            self._show_error(e, rid, (time.perf_counter() - started) * 1e3)
            return False
        self._fit_sliders()
        self._good = self.knob_values()
        self._good_equal_cores = self.controller.study.equal_cores
        self.message = ""
        self._figure_png = None
        controls = self._controls(rid)
        self.last_refresh_ms = (time.perf_counter() - started) * 1e3
        with self.hold_sync():  # one comm message for both: the view redraws once the reply is whole
            self.controls = controls
            self.view = {**state, "rid": rid, "error": "", "kernel_ms": round(self.last_refresh_ms, 1)}
        return True

    def _fit_sliders(self) -> None:
        """Set each slider to the knob the study just ran with (a tile given as a list or numpy ints is then the
        (rows, cols) tuple of ints the options hold) and widen it to show that value (``Slider.fit``): the view sends
        every slider's value on each move, so whatever it cannot show would silently replace the knob."""
        knobs = self.controller.knobs
        for name, slider in self.sliders.items():
            slider._value = getattr(knobs, name)
            slider.fit()

    def _show_error(self, e: BaseException, rid: str, kernel_ms: float | None = None) -> None:
        last = self.controller.last
        if isinstance(e, KeyboardInterrupt):
            self.message = (f"interrupted; showing the last good run ({last.knobs})" if last is not None
                            else "interrupted before the first run finished: move a slider to run again")
        else:
            self.message = _message(e) + (" (showing the last good run)" if last is not None else "")
        for name, value in self._good.items():  # the sliders go back to what the last good run used
            self.sliders[name]._value = value
        self.controller.study.equal_cores = self._good_equal_cores
        with self.hold_sync():
            self.controls = self._controls(rid)
            self.view = {**(self.view or self.controller.view_state()), "runs": [], "rid": rid,
                         "error": self.message, "kernel_ms": None if kernel_ms is None else round(kernel_ms, 1)}

    def _controls(self, rid: str) -> dict[str, Any]:
        """The sliders as the view draws them. ``rid`` (the request answered) makes every answer to a request new,
        so that it reaches the view even when the values are as before: after a refused move, the view's slider
        must go back to the last good value, which the controls already held."""
        study = self.controller.study
        sliders = [s.spec() for s in self.sliders.values()]
        if study.equal_cores:
            last = self.controller.last
            for spec in sliders:
                if spec["name"] == "cores":
                    spec["disabled"] = True
                    spec["title"] += " (equal cores: the pipeline's own)"
                    if last is not None and last.equal_cores:  # show the cores both runs used, not the knob
                        spec["value"] = last.knobs.cores
                        spec["max"] = max(spec["max"], last.knobs.cores)
        offer = study.mode == "both"
        return {"rid": rid, "sliders": sliders, "equal_cores": study.equal_cores,
                "equal_cores_label": "equal cores (data-parallel on the pipeline's cores)" if offer else ""}

    def _on_request(self, change: dict[str, Any]) -> None:
        """The view released a slider: rerun with its knobs and answer with the request's id."""
        request = change["new"] or {}
        rid = str(request.get("rid", "")) if isinstance(request, dict) else ""
        try:
            knobs, equal_cores = _request_parts(request, self.sliders)
        except PtortError as e:  # a malformed request from a view (or from code that set .request): say so
            self._show_error(e, rid)
            return
        for name, value in knobs.items():
            # With equal cores on, the view's cores slider shows the pipeline's cores, not the knob: not a move.
            shown_only = name == "cores" and self.controller.study.equal_cores
            if not self.sliders[name].disabled and not shown_only:
                self.sliders[name]._value = value
        if equal_cores is not None:
            self.controller.study.equal_cores = equal_cores
        if self.refresh(rid) and self._display_ids:
            _picture_behind(self)

    # -- display --------------------------------------------------------------------------------------------------
    def _picture(self) -> bytes | None:
        """The static fallback: the last state as a PNG (None when there is no run or it cannot be drawn)."""
        if self._figure_png is None and self.controller.last is not None:
            try:
                self._figure_png = self.controller.png()
            except Exception:  # noqa: BLE001 - the live view still works; the bundle then has text only
                return None
        return self._figure_png

    def _fallback_text(self) -> str:
        last = self.controller.last
        text = last.summary() if last is not None else "explorer: no run yet"
        return text + (f"\n{self.message}" if self.message else "")

    def _repr_mimebundle_(self, **kwargs: Any) -> tuple[dict[str, Any], dict[str, Any]]:
        """The widget view plus a picture and a summary of the last state, for front ends without the view."""
        data, metadata = _split(super()._repr_mimebundle_(**kwargs))
        data["text/plain"] = self._fallback_text()
        png = self._picture()
        if png is not None:
            data["image/png"] = png
        return data, metadata

    def _ipython_display_(self) -> None:
        """Display with a display id, so that changes made from code refresh the stored picture too."""
        from IPython.display import display
        data, metadata = _split(self._repr_mimebundle_())
        handle = display(data, metadata=metadata, raw=True, display_id=True)  # type: ignore[no-untyped-call]
        if handle is not None:
            self._display_ids.append(handle.display_id)

    def _refresh_picture(self) -> None:
        """Re-send every displayed copy of this explorer with the current picture (update_display)."""
        if not self._display_ids:
            return
        from IPython.display import update_display
        data, metadata = _split(self._repr_mimebundle_())
        for display_id in self._display_ids:
            update_display(data, metadata=metadata, raw=True, display_id=display_id)  # type: ignore[no-untyped-call]


_BEHIND: weakref.WeakSet[Explorer] = weakref.WeakSet()  # explorers moved in the browser since their last picture
_hooked: list[Any] = []  # the shell whose pre_run_cell event catches the pictures up (registered once)


def _picture_behind(explorer: Explorer) -> None:
    """Remember that ``explorer``'s stored picture is behind its view, to refresh before the next cell runs."""
    _BEHIND.add(explorer)
    if _hooked:
        return
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - the explorer needs IPython's display machinery anyway
        return
    shell = get_ipython()
    if shell is not None:
        shell.events.register("pre_run_cell", catch_up_pictures)
        _hooked.append(shell)


def catch_up_pictures(*_info: Any) -> None:
    """Re-send the picture and summary of every explorer moved in the browser since its last picture."""
    for explorer in list(_BEHIND):
        _BEHIND.discard(explorer)
        try:
            explorer._refresh_picture()
        except Exception:  # noqa: BLE001 - a picture that cannot be drawn must not stop the user's next cell
            pass


def _refuse_study_options(study: Study, mode: str | None, compile_options: dict[str, Any]) -> None:
    """Explorer(study, ...) uses the Study as it is: a mode or compile options given beside it would be ignored."""
    if compile_options:
        raise PtortValueError(f"Explorer(study, ...) got compile options {sorted(compile_options)}, but a Study "
                              "keeps its own (they would be ignored).",
                              hint="Give them to the Study: Explorer(Study(build, compute_values=False, "
                                   "machine='ascend_910b4')), or pass the builder: Explorer(build, machine=...).")
    if mode is not None and mode != study.mode:
        raise PtortValueError(f"Explorer(study, mode={mode!r}) contradicts the Study's own mode {study.mode!r} (a "
                              "Study keeps its own).",
                              hint=f"Give the mode to the Study: Study(build, mode={mode!r}), or pass the builder: "
                                   f"Explorer(build, mode={mode!r}).")


def _request_parts(request: Any, sliders: dict[str, Slider]) -> tuple[dict[str, Any], bool | None]:
    """The knob values and equal-cores choice of a request from the view, checked for their shape (the view sends
    ``{"rid": str, "knobs": {name: int, "tile": [rows, cols]}, "equal_cores": bool}``); a PtortValueError naming
    what is malformed otherwise. The values themselves are checked by the run, as any knob value is."""
    def malformed(what: str) -> PtortValueError:
        return PtortValueError(f"the explorer's view sent a malformed request: {what}.",
                               hint="Reload the page (or re-run the cell) so that the view and this ptort_lab "
                                    "match; set knobs from code with explorer.update(depth=4).", locate=False)
    if not isinstance(request, dict):
        raise malformed(f"{type(request).__name__} {request!r} is not an object")
    knobs = request.get("knobs") or {}
    if not isinstance(knobs, dict):
        raise malformed(f"'knobs' is {type(knobs).__name__} {knobs!r}, not an object of knob values")
    out: dict[str, Any] = {}
    for name, value in knobs.items():
        if name not in sliders:
            raise malformed(f"unknown knob {name!r} (knobs: {', '.join(sliders)})")
        if name == "tile":
            if not isinstance(value, (list, tuple)) or len(value) != 2:
                raise malformed(f"tile is {type(value).__name__} {value!r}, not [rows, cols]")
            value = tuple(value)
        elif isinstance(value, (list, tuple, dict)):
            raise malformed(f"{name} is {type(value).__name__} {value!r}, not a number")
        out[name] = value
    equal_cores = request.get("equal_cores")
    if equal_cores is not None and not isinstance(equal_cores, bool):
        raise malformed(f"'equal_cores' is {type(equal_cores).__name__} {equal_cores!r}, not true or false")
    return out, equal_cores


def _split(bundle: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """(data, metadata) of a mime bundle given either way."""
    return (bundle[0], bundle[1] or {}) if isinstance(bundle, tuple) else (bundle, {})


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


__all__ = ["Explorer", "ExplorerController", "Slider", "table_html", "TILE_SIZES"]
