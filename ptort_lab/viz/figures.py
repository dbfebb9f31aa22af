"""Matplotlib figures without pyplot: a Figure on an Agg canvas, and deterministic PNG and SVG bytes."""
from __future__ import annotations

import io
import math
import numbers
from typing import TYPE_CHECKING, Any

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..errors import PtortTypeError, PtortValueError

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

# Fixed so that two renders of one figure give the same bytes (SVG ids are hashes salted with this).
_SVG_RC: dict[RcKeyType, Any] = {"svg.hashsalt": "ptort_lab", "svg.fonttype": "none"}


class PtortFigure(Figure):
    """A Figure that shows itself as a PNG in IPython even when no matplotlib backend was set up."""

    def _repr_png_(self) -> bytes:
        return figure_png(self)


def new_figure(width: float, height: float, dpi: float = 100) -> PtortFigure:
    """A Figure with its own Agg canvas: nothing is registered with pyplot, so nothing leaks between cells."""
    fig = PtortFigure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _check_figure(fig: Any, api: str) -> None:
    if isinstance(fig, Figure):
        return
    if callable(getattr(fig, "png" if api == "figure_png" else "svg", None)):
        hint = f"This {type(fig).__name__} renders itself: call its .{'png' if api == 'figure_png' else 'svg'}()."
    elif hasattr(fig, "trace") or hasattr(fig, "spans"):
        hint = f"Plot the run first: {api}(plot_timeline(program))."
    else:
        hint = f"Pass a matplotlib Figure, e.g. {api}(plot_timeline(program)) or {api}(compare(comparison))."
    raise PtortTypeError(f"{api}() needs a matplotlib Figure, got {type(fig).__name__} {fig!r}.", hint=hint)


def _canvas(fig: Figure) -> None:
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)


def figure_png(fig: Figure, dpi: float | None = None) -> bytes:
    """The figure as PNG bytes; the same figure always gives the same bytes (no Software or date metadata)."""
    _check_figure(fig, "figure_png")
    if dpi is not None and (isinstance(dpi, bool) or not isinstance(dpi, numbers.Real) or not math.isfinite(dpi)
                            or dpi <= 0):
        raise PtortValueError(f"figure_png(dpi=...) must be a number > 0, got {dpi!r}.",
                              hint="Use e.g. figure_png(fig, dpi=100), or leave dpi out for the figure's own.")
    _canvas(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi or fig.dpi, metadata={"Software": None})
    return buf.getvalue()


def figure_svg(fig: Figure) -> str:
    """The figure as SVG text with text kept as (escaped) text, a fixed id salt and no date."""
    _check_figure(fig, "figure_svg")
    _canvas(fig)
    buf = io.StringIO()
    with matplotlib.rc_context(_SVG_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return buf.getvalue()


def text_kwargs(**kwargs: Any) -> dict[str, Any]:
    """Text properties for user-provided strings: never parsed as mathtext (a ``$`` in a name stays a ``$``)."""
    return {"parse_math": False, **kwargs}


__all__ = ["PtortFigure", "new_figure", "figure_png", "figure_svg", "text_kwargs"]
