"""sweep(): run a study over every combination of knob values; rows, a text table and a makespan plot.

``sweep(build, depth=range(1, 9), tile=[64, 128])`` runs 16 timing-only studies (pipeline and data-parallel) and
returns a SweepResult; ``.plot()`` draws makespan against the first swept knob, one line per value of the others.
A progress bar (ipywidgets in a kernel, else a line on stderr) appears once the sweep has run for half a second.
"""
from __future__ import annotations

import itertools
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

from ..errors import PtortTypeError, PtortValueError
from ..explore import Comparison, Knobs, Study, check_knob_limits, check_knobs
from .cell import normal_knob, tile_from_text
from .display import html_output, render_part

KNOBS = ("depth", "tile", "tiles", "cores")
PROGRESS_AFTER_S = 0.5
_STYLES = {"pipeline": "-", "data-parallel": "--"}
# The most combinations one sweep() runs. Every combination rebuilds the work and simulates it (twice with
# mode="both"): a few milliseconds for a tiny pipeline, tens for a realistic one, so 10,000 runs is already minutes
# of waiting, and a table or plot of more rows than that cannot be read anyway. Beyond it sweep() refuses up front,
# before building anything (a range(1, 10**7) would otherwise look like a hang).
MAX_RUNS = 10_000
_EXAMPLES = {"depth": "[1, 2, 4, 8]", "tile": '[64, (64, 128), "32x64"]', "tiles": "[4, 8, 16]",
             "cores": "[1, 2, 4]"}


def _tile_text(tile: tuple[int, int]) -> str:
    return f"{tile[0]}x{tile[1]}"


def _example(name: str) -> str:
    return f"sweep(build, {name}={_EXAMPLES[name]})"


def _values(name: str, values: Any) -> tuple[list[Any], int | None]:
    """The checked values of one swept knob (at most MAX_RUNS + 1 of them are read) and how many there are in
    all (None when there are more than were read and the iterable cannot tell)."""
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        values = [values]
    try:
        total: int | None = len(values)
    except TypeError:
        total = None
    raw = list(itertools.islice(values, MAX_RUNS + 1))  # never the whole of a huge range or an endless generator
    if total is None and len(raw) <= MAX_RUNS:
        total = len(raw)
    out = []
    for v in raw:
        checked = None
        if name == "tile" and isinstance(v, str):
            checked = tile_from_text(v)  # "64x128", as on the %%ptort line
            if checked is None:
                raise PtortValueError(f"sweep(tile=...) value {v!r} is not ROWSxCOLS (such as '64x128').",
                                      hint=f"Give sizes, (rows, cols) pairs or 'RxC' strings: {_example(name)}.")
        else:
            checked = normal_knob(name, v)
        if checked is None:
            what = "a tile size: an int >= 1 or (rows, cols) of ints >= 1" if name == "tile" else "an int >= 1"
            raise PtortValueError(f"sweep({name}=...) value {v!r} is not {what}.",
                                  hint=f"Pass {name} values like these: {_example(name)}.")
        out.append(checked)
    if not out:
        raise PtortValueError(f"sweep() got no values for {name}.", hint=f"Pass e.g. {_example(name)}.")
    return out, total


def _check_count(params: tuple[str, ...], sizes: list[int | None]) -> None:
    """Refuse a sweep of more than MAX_RUNS combinations before anything is built."""
    known = [n for n in sizes if n is not None]
    count = 1
    for n in known:
        count *= n
    if len(known) == len(sizes) and count <= MAX_RUNS:
        return
    exact = len(known) == len(sizes)
    counts = ", ".join(f"{p}: {f'{n:,}' if n is not None else f'more than {MAX_RUNS:,}'} values"
                       for p, n in zip(params, sizes))
    runs = f"{count:,}" if exact else f"more than {MAX_RUNS:,}"
    raise PtortValueError(f"sweep() would run {runs} combinations ({counts}); it runs at most {MAX_RUNS:,}.",
                          hint=f"Sweep fewer values, e.g. {_example(params[0])}, or split the sweep into "
                               "several smaller ones.")


@dataclass
class SweepResult:
    """One row per combination: the knobs, each run's cycles and overlap %, and the speedup."""

    params: tuple[str, ...]
    rows: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0  # wall time of the sweep; kept out of every display (they are deterministic)

    def table(self) -> str:
        cols = list(self.params) + ["pipeline cycles", "data-parallel cycles", "speedup"]
        lines = ["  ".join(f"{c:>20}" if i >= len(self.params) else f"{c:>9}" for i, c in enumerate(cols))]
        for r in self.rows:
            knobs = [_tile_text(r[p]) if p == "tile" else str(r[p]) for p in self.params]
            runs = [str(r["pipeline_cycles"] if r["pipeline_cycles"] is not None else "-"),
                    str(r["data_parallel_cycles"] if r["data_parallel_cycles"] is not None else "-"),
                    f"{r['speedup']:.2f}x" if r["speedup"] is not None else "-"]
            lines.append("  ".join([f"{v:>9}" for v in knobs] + [f"{v:>20}" for v in runs]))
        return "\n".join(lines)

    def plot(self, x: str | None = None, metric: str = "cycles") -> Any:
        """Makespan (or ``metric="overlap_pct"``) against knob ``x`` (default: the first swept knob), one line per
        combination of the other swept knobs; solid = pipeline, dashed = data-parallel. A Figure, no pyplot."""
        from ..viz.figures import new_figure, text_kwargs
        x = x or self.params[0]
        if x not in self.params:
            swept = ", ".join(self.params)
            raise PtortValueError(f"plot(x={x!r}) is not a swept knob; this sweep varied {swept}.",
                                  hint=f"Use plot(x={self.params[0]!r}); to plot against {x}, sweep it too, e.g. "
                                       f"sweep(build, {self.params[0]}=..., {x}={_EXAMPLES.get(x, '[...]')})."
                                  if x in KNOBS else f"Use plot(x={self.params[0]!r}) (swept: {swept}).")
        if metric not in ("cycles", "overlap_pct"):
            raise PtortValueError(f"plot(metric={metric!r}) is not 'cycles' or 'overlap_pct'.",
                                  hint="Use plot(metric='cycles') (makespan) or plot(metric='overlap_pct').")
        others = [p for p in self.params if p != x]
        xs = sorted({r[x] for r in self.rows})
        position = {v: i for i, v in enumerate(xs)} if x == "tile" else {v: v for v in xs}
        fig = new_figure(7.5, 4.2)
        ax = fig.add_subplot(1, 1, 1)
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = {}
        for r in self.rows:
            groups.setdefault(tuple(r[p] for p in others), []).append(r)
        colors = [f"C{i % 10}" for i in range(len(groups))]
        for color, (key, rows) in zip(colors, groups.items()):
            name = ", ".join(f"{p}={_tile_text(v) if p == 'tile' else v}" for p, v in zip(others, key))
            for run, style in _STYLES.items():
                col = f"{run.replace('-', '_')}_{metric}"
                pts = sorted((position[r[x]], r[col]) for r in rows if r[col] is not None)
                if pts:
                    ax.plot([p for p, _ in pts], [v for _, v in pts], style, marker="o", color=color,
                            label=f"{run}" + (f" ({name})" if name else ""))
        if x == "tile":
            ax.set_xticks(list(range(len(xs))), [_tile_text(v) for v in xs])
        ax.set_xlabel(x, **text_kwargs())
        ax.set_ylabel("makespan (cycles)" if metric == "cycles" else "overlap %")
        ax.set_title(f"{'makespan' if metric == 'cycles' else 'overlap'} vs {x}", **text_kwargs())
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="best")
        fig.tight_layout()
        return fig

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> dict[str, Any]:
        notes: list[str] = []
        png = render_part("plot", lambda: _png(self.plot()), notes) if self.rows else None  # fails -> a note
        text = "\n\n".join([repr(self)] + notes)
        bundle: dict[str, Any] = {"text/plain": text, "text/html": html_output(text, png=png, png_alt="sweep plot")}
        if png is not None:
            bundle["image/png"] = png
        return bundle

    def __repr__(self) -> str:
        return f"sweep of {', '.join(self.params)}: {len(self.rows)} runs\n{self.table()}"


def _png(fig: Any) -> bytes:
    from .. import viz
    return bytes(viz.figure_png(fig))


class _Progress:
    """Shown once the sweep has run for PROGRESS_AFTER_S (or at once with progress=True); never with False."""

    def __init__(self, total: int, mode: bool | None) -> None:
        self.total, self.mode = total, mode
        self.started = time.perf_counter()
        self.bar: Any = None
        self.handle: Any = None
        self.text = False
        self.last_print = 0.0

    def _show(self) -> None:
        try:
            from IPython import get_ipython
            shell = get_ipython()
            if shell is None or getattr(shell, "kernel", None) is None:
                raise ImportError("no kernel")
            import ipywidgets as widgets
            from IPython.display import display
            show: Callable[..., Any] = display  # IPython.display has no type information
            self.bar = widgets.IntProgress(value=0, min=0, max=self.total, description="sweep")
            self.handle = show(self.bar, display_id=True)
        except Exception:  # a terminal, plain Python or no ipywidgets: a line on stderr
            self.text = True

    def step(self, done: int) -> None:
        if self.mode is False:
            return
        now = time.perf_counter()
        if self.bar is None and not self.text and (self.mode or now - self.started > PROGRESS_AFTER_S):
            self._show()
        if self.bar is not None:
            self.bar.value = done
        elif self.text and (now - self.last_print > 0.5 or done == self.total):
            self.last_print = now
            print(f"\rsweep: {done}/{self.total} runs", end="\n" if done == self.total else "", file=sys.stderr,
                  flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.value = self.total
            self.bar.bar_style = "success"
            if self.handle is not None:
                self.handle.update(self.bar)  # the saved output shows the finished state, not a moment of it


_DEPTHS = range(1, 9)  # what sweep() varies when told nothing about depth


def _row(comparison: Comparison) -> dict[str, Any]:
    """One SweepResult row: the knobs that ran, each run's cycles and overlap %, and the speedup."""
    k = comparison.knobs
    stats = {label: prog.stats() for label, prog in comparison.runs}
    pipe, twin = stats.get("pipeline"), stats.get("data-parallel")
    return {
        "depth": k.depth, "tile": k.tile, "tiles": k.tiles, "cores": k.cores,
        "pipeline_cycles": pipe.total_cycles if pipe else None,
        "data_parallel_cycles": twin.total_cycles if twin else None,
        "pipeline_overlap_pct": round(pipe.overlap_pct, 1) if pipe else None,
        "data_parallel_overlap_pct": round(twin.overlap_pct, 1) if twin else None,
        "speedup": comparison.speedup,
    }


def sweep(study_or_builder: Study | Callable[..., Any], *, depth: Any = _DEPTHS, tile: Any = None,
          tiles: Any = None, cores: Any = None, knobs: Knobs | None = None, mode: str | None = None,
          progress: bool | None = None, **compile_options: Any) -> SweepResult:
    """Run every combination of the given knob values (None keeps the study's value) and collect the rows.

    ``study_or_builder`` is a builder (as for ``explore.Study``) or a Study, which is copied (its knobs are not
    changed). Runs are timing-only (``compute_values=False``) unless a compile option says otherwise. ``tile``
    values are (rows, cols), a square size, or "RxC". ``progress``: None shows a bar after half a second, True at
    once, False never.
    """
    check_knobs(knobs, "sweep")
    if not isinstance(study_or_builder, Study) and not callable(study_or_builder):
        raise PtortTypeError(f"sweep() needs a builder function or a Study, got {type(study_or_builder).__name__} "
                             f"{study_or_builder!r}.",
                             hint="def build(depth, tile, tiles): ... return connect(...); then "
                                  "sweep(build, depth=[1, 2, 4]).")
    if isinstance(study_or_builder, Study):
        base = study_or_builder
        options = {"compute_values": False, **base.compile_options, **compile_options}
        study = Study(base.build, knobs or base.knobs, mode or base.mode, words=base.words, **options)
    else:
        options = {"compute_values": False, **compile_options}
        study = Study(study_or_builder, knobs, mode or "both", **options)
    given = {"depth": depth, "tile": tile, "tiles": tiles, "cores": cores}
    if depth is _DEPTHS and not study.takes("depth") and any(given[k] is not None for k in KNOBS[1:]):
        given["depth"] = None  # the default depth sweep, for a builder without depth: only what was asked
    params = tuple(k for k in KNOBS if given[k] is not None)
    if not params:
        raise PtortValueError("sweep() got no knob to vary.", hint="Pass e.g. sweep(build, depth=range(1, 9)).")
    for p in params:  # a knob the builder ignores would give identical rows
        study.refuse_untaken(p, f"sweep({p}=...)", "every row would be the same")
    checked = [_values(p, given[p]) for p in params]
    _check_count(params, [n for _, n in checked])
    if "tiles" in params:  # refused from the sizes, before anything is built
        check_knob_limits(study.knobs.replace(tiles=max(checked[params.index("tiles")][0])), study.mode,
                          "the largest sweep(tiles=...) value")
    else:
        check_knob_limits(study.knobs, study.mode)
    combos = list(itertools.product(*(values for values, _ in checked)))
    result = SweepResult(params)
    bar = _Progress(len(combos), progress)
    started = time.perf_counter()
    try:
        for i, combo in enumerate(combos, start=1):
            comparison = study.run(**dict(zip(params, combo)))
            k = comparison.knobs
            if "cores" in params and k.cores != study.knobs.cores:
                raise PtortValueError(
                    f"sweep(cores=...) varies the data-parallel cores, but {comparison.note}, so every row would be "
                    "the same.",
                    hint="Leave cores out of the sweep, or build the workload without .dispatch(...) (the study then "
                         "dispatches its tasks over the cores knob), or give the builder a cores parameter and "
                         "dispatch with it.")
            result.rows.append(_row(comparison))
            bar.step(i)
    finally:
        bar.close()
    result.seconds = time.perf_counter() - started
    return result


__all__ = ["sweep", "SweepResult", "MAX_RUNS"]
