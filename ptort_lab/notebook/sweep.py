"""sweep(): every combination of knob values, run here, on a process pool or on a Dask or Ray cluster, cached on
disk and resumable; the notebook's views of it: a live progress bar, the table, a makespan plot, a Pareto plot and
each point's timeline.

``sweep(build, depth=range(1, 9), tile=[64, 128])`` runs 16 timing-only studies (pipeline and data-parallel) and
returns a SweepResult; ``.plot()`` draws makespan against the first swept knob, one line per value of the others;
``.pareto()`` makespan against cores used, with the Pareto front; ``.timeline(i)`` and ``.explore(i)`` open point i.
Running points, the cache and the executors are ``ptort_lab.sweeps`` (no notebook libraries, so workers load none).
A progress bar (ipywidgets in a kernel, else a line on stderr) appears once the sweep has run for half a second.
"""
from __future__ import annotations

from dataclasses import fields
from typing import Any, Callable

from ..errors import PtortValueError
from ..explore import Knobs, Study
from ..sweeps import execute
from ..sweeps import result as core
from ..sweeps.points import DEFAULT_DEPTHS, KNOBS, MAX_RUNS, MAX_RUNS_EXECUTOR, example
from ..sweeps.progress import Progress
from .display import html_output, render_part

PROGRESS_AFTER_S = 0.5
_STYLES = {"pipeline": "-", "data-parallel": "--"}
_RUNS = (("pipeline", "pipeline", "o", "C0"), ("data-parallel", "data_parallel", "s", "C1"))
_PER_RUN = {"cores": "cores used", "bytes_moved": "bytes moved (GM)", "us": "µs"}  # x of pareto() from each run
PARETO_LABELS = 24  # the front's points are labelled with their knobs up to this many
KNOB_TICKS = 12  # plot(): up to this many knob values, each is an x tick; more, and whole-number ticks are picked


def _tile_text(tile: tuple[int, int]) -> str:
    return f"{tile[0]}x{tile[1]}"


def _integer_ticks(ax: Any, values: list[int] | None = None) -> None:
    """X ticks at ``values`` (the knob values swept), or at whole numbers matplotlib picks."""
    from matplotlib.ticker import FixedLocator, MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True) if values is None else FixedLocator(values))


class SweepResult(core.SweepResult):
    """``ptort_lab.sweeps.SweepResult`` with the notebook's views: ``plot()``, ``pareto()``, ``timeline(i)``,
    ``explore(i)`` and a display of the table and the plot."""

    @classmethod
    def of(cls, result: core.SweepResult) -> SweepResult:
        return cls(**{f.name: getattr(result, f.name) for f in fields(result)})

    def plot(self, x: str | None = None, metric: str = "cycles") -> Any:
        """Makespan (or ``metric="overlap_pct"``) against knob ``x`` (default: the first swept knob), one line per
        combination of the other swept knobs; solid = pipeline, dashed = data-parallel. A Figure, no pyplot."""
        from ..viz.figures import new_figure, text_kwargs
        x = x or self.params[0]
        if x not in self.params:
            swept = ", ".join(self.params)
            raise PtortValueError(f"plot(x={x!r}) is not a swept knob; this sweep varied {swept}.",
                                  hint=f"Use plot(x={self.params[0]!r}); to plot against {x}, sweep it too, e.g. "
                                       f"sweep(build, {self.params[0]}=..., {x}={example(x).split('=', 1)[1]}"
                                  if x in KNOBS else f"Use plot(x={self.params[0]!r}) (swept: {swept}).")
        if metric not in ("cycles", "overlap_pct"):
            raise PtortValueError(f"plot(metric={metric!r}) is not 'cycles' or 'overlap_pct'.",
                                  hint="Use plot(metric='cycles') (makespan) or plot(metric='overlap_pct').")
        others = [p for p in self.params if p != x]
        rows = self.rows
        xs = sorted({r[x] for r in rows})
        position = {v: i for i, v in enumerate(xs)} if x == "tile" else {v: v for v in xs}
        fig = new_figure(7.5, 4.2)
        ax = fig.add_subplot(1, 1, 1)
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for r in rows:
            groups.setdefault(tuple(r[p] for p in others), []).append(r)
        colors = [f"C{i % 10}" for i in range(len(groups))]
        for color, (key, group) in zip(colors, groups.items()):
            name = ", ".join(f"{p}={_tile_text(v) if p == 'tile' else v}" for p, v in zip(others, key))
            for run, style in _STYLES.items():
                col = f"{run.replace('-', '_')}_{metric}"
                pts = sorted((position[r[x]], r[col]) for r in group if r[col] is not None)
                if pts:
                    ax.plot([p for p, _ in pts], [v for _, v in pts], style, marker="o", color=color,
                            label=f"{run}" + (f" ({name})" if name else ""))
        if x == "tile":
            ax.set_xticks(list(range(len(xs))), [_tile_text(v) for v in xs])
        else:  # a whole-number knob: never a tick at depth 1.5
            _integer_ticks(ax, xs if len(xs) <= KNOB_TICKS else None)
        ax.set_xlabel(x, **text_kwargs())
        ax.set_ylabel("makespan (cycles)" if metric == "cycles" else "overlap %")
        ax.set_title(f"{'makespan' if metric == 'cycles' else 'overlap'} vs {x}", **text_kwargs())
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        return fig

    def pareto_points(self, x: str = "cores", y: str = "cycles") -> list[tuple[float, float, str, int]]:
        """Every run of every point as (x, y, run, point index): ``x`` is per run ("cores" used, "bytes_moved",
        "us") or a swept knob ("tile": rows x cols); ``y`` is "cycles" or "us"."""
        self._check_pareto(x, y)
        out = []
        for p in self.points:
            if p.row is None:
                continue
            for run, prefix, _, _ in _RUNS:
                yv = p.row[f"{prefix}_{y}"]
                xv = p.row[f"{prefix}_{x}"] if x in _PER_RUN else p.row[x]
                if x == "tile":
                    xv = xv[0] * xv[1]
                if xv is not None and yv is not None:
                    out.append((float(xv), float(yv), run, p.index))
        return out

    def pareto_front(self, x: str = "cores", y: str = "cycles") -> list[tuple[float, float, str, int]]:
        """The runs no other run beats on both ``x`` and ``y`` (lower is better on both), by increasing x."""
        front: list[tuple[float, float, str, int]] = []
        for pt in sorted(self.pareto_points(x, y), key=lambda t: (t[0], t[1], t[3])):
            if not front or pt[1] < front[-1][1]:
                front.append(pt)
        return front

    def _check_pareto(self, x: str, y: str) -> None:
        xs = list(_PER_RUN) + [k for k in self.params if k != "cores"]
        if x not in xs:
            raise PtortValueError(f"pareto(x={x!r}) is not one of {', '.join(map(repr, xs))}.",
                                  hint="Use pareto(x='cores') (the cores each run used), pareto(x='bytes_moved'), "
                                       "or a swept knob.")
        if y not in ("cycles", "us"):
            raise PtortValueError(f"pareto(y={y!r}) is not 'cycles' or 'us'.",
                                  hint="Use pareto(y='cycles') (makespan) or pareto(y='us').")

    def pareto(self, x: str = "cores", y: str = "cycles") -> Any:
        """Makespan against the cores each run used (or ``x="bytes_moved"``, or a swept knob), pipeline runs as
        circles and data-parallel runs as squares, the Pareto front drawn through the runs nothing beats (fewer
        cores and fewer cycles); the front's points are labelled with their knobs. A Figure, no pyplot."""
        from ..viz.figures import new_figure, text_kwargs
        points, front = self.pareto_points(x, y), self.pareto_front(x, y)
        fig = new_figure(7.5, 4.6)
        ax = fig.add_subplot(1, 1, 1)
        for run, _, marker, color in _RUNS:
            mine = [(px, py) for px, py, r, _ in points if r == run]
            if mine:
                ax.scatter([p[0] for p in mine], [p[1] for p in mine], marker=marker, color=color, alpha=0.6,
                           label=run, zorder=2)
        if front:
            ax.step([p[0] for p in front], [p[1] for p in front], where="post", color="black", linewidth=1.2,
                    label="Pareto front", zorder=3)
            ax.scatter([p[0] for p in front], [p[1] for p in front], s=90, facecolors="none", edgecolors="black",
                       zorder=4)
            for px, py, _, i in front[:PARETO_LABELS]:
                ax.annotate(f"#{i} {self.points[i].label()}", (px, py), textcoords="offset points", xytext=(4, 4),
                            fontsize=6, **text_kwargs())
        if x != "us":  # cores, bytes, elements and knobs are whole numbers
            _integer_ticks(ax)
        xlabel = _PER_RUN.get(x, x if x != "tile" else "tile (rows x cols elements)")
        ax.set_xlabel(xlabel, **text_kwargs())
        ax.set_ylabel("makespan (cycles)" if y == "cycles" else "makespan (µs)")
        ax.set_title(f"makespan vs {xlabel}: the Pareto front (lower left is better)", **text_kwargs())
        ax.grid(True, alpha=0.3)
        if points:
            ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        return fig

    def timeline(self, index: int) -> Any:
        """Point ``index`` run again here, its timelines drawn (both runs on one cycle axis when there are two)."""
        from .. import viz
        label = f"point #{index}: {self._point(index, 'timeline').label()}"
        comparison = self.comparison(index)
        if comparison.pipeline is not None and comparison.data_parallel is not None:
            return viz.compare(comparison, title=label)
        run, program = comparison.runs[0]
        return viz.plot_timeline(program, lanes="stage", title=f"{label} ({run} run)")

    def explore(self, index: int) -> Any:
        """The explorer (sliders, timelines, table) opened at point ``index``'s knobs."""
        from .widgets import Explorer
        self._point(index, "explore")
        return Explorer(self.study(index))

    def _point(self, index: int, method: str) -> core.SweepPoint:
        """``point(index)``, refused in the words of ``method``, the method the user called with ``index``."""
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < len(self.points):
            has = f"{len(self.points)} (0..{len(self.points) - 1})" if self.points else "none"
            raise PtortValueError(f"{method}({index!r}) is not a point of this sweep: it has {has}.",
                                  hint=f"Use the # column of the table, e.g. result.{method}(0).")
        return self.point(index)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> dict[str, Any]:
        notes: list[str] = []
        png = render_part("plot", lambda: _png(self.plot()), notes) if self.rows else None  # fails -> a note
        text = "\n\n".join([repr(self)] + notes)
        bundle: dict[str, Any] = {"text/plain": text, "text/html": html_output(text, png=png, png_alt="sweep plot")}
        if png is not None:
            bundle["image/png"] = png
        return bundle


def _png(fig: Any) -> bytes:
    from .. import viz
    return bytes(viz.figure_png(fig))


class _NotebookProgress(Progress):
    """An ipywidgets bar with done/total, failed, from the cache and the time left, in a kernel; the line on
    stderr elsewhere. Updated in place; its last state (no time in it) is what a saved notebook keeps."""

    def __init__(self, mode: bool | None) -> None:
        super().__init__(mode, PROGRESS_AFTER_S)
        self.bar: Any = None
        self.label: Any = None
        self.box: Any = None
        self.handle: Any = None

    def show(self) -> None:
        try:
            from IPython import get_ipython
            shell = get_ipython()
            if shell is None or getattr(shell, "kernel", None) is None:
                raise ImportError("no kernel")
            import ipywidgets as widgets
            from IPython.display import display
            show: Callable[..., Any] = display  # IPython.display has no type information
            self.bar = widgets.IntProgress(value=0, min=0, max=self.total, description="sweep")
            self.label = widgets.Label(value="")
            self.box = widgets.HBox([self.bar, self.label])
            self.handle = show(self.box, display_id=True)
        except Exception:  # a terminal, plain Python or no ipywidgets: a line on stderr
            self.bar = None

    def draw(self, final: bool) -> None:
        if self.bar is None:
            super().draw(final)
            return
        self.bar.value = self.done
        self.label.value = self.text(final)
        if final:
            self.bar.bar_style = "success" if not self.failed else "warning"
            if self.handle is not None:
                self.handle.update(self.box)  # the saved output shows the finished state, not a moment of it


def sweep(study_or_builder: Study | Callable[..., Any], *, depth: Any = DEFAULT_DEPTHS, tile: Any = None,
          tiles: Any = None, cores: Any = None, knobs: Knobs | None = None, mode: str | None = None,
          executor: Any = "auto", cache: Any = True, progress: bool | None = None,
          **compile_options: Any) -> SweepResult:
    """Run every combination of the given knob values (None keeps the study's value) and collect the rows.

    ``study_or_builder`` is a builder (as for ``explore.Study``) or a Study, which is copied (its knobs are not
    changed). Runs are timing-only (``compute_values=False``) unless a compile option says otherwise. ``tile``
    values are (rows, cols), a square size, or "RxC"; each knob takes a list (or range) of distinct values, in the
    order of the rows. ``progress``: None shows a bar after half a second, True at once, False never.

    ``executor``: "auto" (this process, or a process pool once the sweep shows it will take more than a few
    seconds), "serial", "processes", or any ``concurrent.futures.Executor`` (``client.get_executor()`` of a Dask
    client, ``ptort_lab.sweeps.RayExecutor()``); with an executor a sweep may have up to 100,000 points (10,000
    without). ``cache``: True (``ptort_lab.sweeps.cache_info()`` says where), a folder, or False. A point that
    raises is listed in ``result.failures`` and the sweep goes on; Ctrl-C stops it, and the same sweep run again
    resumes from the cache.
    """
    if progress is not None and not isinstance(progress, bool):
        execute._progress_mode(progress)  # the same refusal as run_sweep's
    result = execute.run_sweep(study_or_builder, depth=depth, tile=tile, tiles=tiles, cores=cores, knobs=knobs,
                               mode=mode, executor=executor, cache=cache, progress=_NotebookProgress(progress),
                               **compile_options)
    return SweepResult.of(result)


__all__ = ["sweep", "SweepResult", "MAX_RUNS", "MAX_RUNS_EXECUTOR", "PROGRESS_AFTER_S"]
