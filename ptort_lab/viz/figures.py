"""Matplotlib figures without pyplot: a Figure on an Agg canvas, and deterministic PNG and SVG bytes."""
from __future__ import annotations

import io
from typing import Any

import matplotlib
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

# Fixed so that two renders of one figure give the same bytes (SVG ids are hashes salted with this).
_SVG_RC = {"svg.hashsalt": "ptort_lab", "svg.fonttype": "none"}


class PtortFigure(Figure):
    """A Figure that shows itself as a PNG in IPython even when no matplotlib backend was set up."""

    def _repr_png_(self) -> bytes:
        return figure_png(self)


def new_figure(width: float, height: float, dpi: float = 100) -> PtortFigure:
    """A Figure with its own Agg canvas: nothing is registered with pyplot, so nothing leaks between cells."""
    fig = PtortFigure(figsize=(width, height), dpi=dpi)
    FigureCanvasAgg(fig)
    return fig


def _canvas(fig: Figure) -> None:
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)


def figure_png(fig: Figure, dpi: float | None = None) -> bytes:
    """The figure as PNG bytes; the same figure always gives the same bytes (no Software or date metadata)."""
    _canvas(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi or fig.dpi, metadata={"Software": None})
    return buf.getvalue()


def figure_svg(fig: Figure) -> str:
    """The figure as SVG text with text kept as (escaped) text, a fixed id salt and no date."""
    _canvas(fig)
    buf = io.StringIO()
    with matplotlib.rc_context(_SVG_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    return buf.getvalue()


def text_kwargs(**kwargs: Any) -> dict[str, Any]:
    """Text properties for user-provided strings: never parsed as mathtext (a ``$`` in a name stays a ``$``)."""
    return {"parse_math": False, **kwargs}


__all__ = ["PtortFigure", "new_figure", "figure_png", "figure_svg", "text_kwargs"]
