"""Matplotlib figures without pyplot: a Figure on an Agg canvas, and deterministic PNG and SVG bytes."""
from __future__ import annotations

import io
import math
import numbers
import re
from typing import TYPE_CHECKING, Any

import matplotlib
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..errors import PtortTypeError, PtortValueError

if TYPE_CHECKING:
    from matplotlib.typing import RcKeyType

#: figure_png's resolutions, in dots per inch: below MIN_DPI text is unreadable (and a tiny dpi makes an empty
#: image); above MAX_DPI (print quality is 300-600) the raster grows with dpi squared for no visible gain.
MIN_DPI, MAX_DPI = 10, 1200
#: The largest PNG drawn: 50 million pixels (200 MB of raster, e.g. 10 x 500 inches at 100 dpi). Beyond it the
#: memory needed grows into GBs and can kill the kernel; Agg also refuses a side over 2**16 pixels.
MAX_PIXELS = 50_000_000
MAX_SIDE_PX = 2**16 - 1

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


def check_dpi(dpi: Any, api: str) -> float:
    """A resolution from MIN_DPI to MAX_DPI dots per inch, else a PtortTypeError / PtortValueError."""
    hint = f"Use e.g. {api}(dpi=100) (screen) or dpi=300 (print), or leave dpi out for the default."
    if isinstance(dpi, (bool, np.bool_)) or not isinstance(dpi, numbers.Real):
        raise PtortTypeError(f"{api}(dpi=...) must be a number of dots per inch, got {type(dpi).__name__} {dpi!r}.",
                             hint=hint)
    try:
        value = float(dpi)
    except OverflowError:  # an int past float's range
        value = math.inf
    if not math.isfinite(value) or not MIN_DPI <= value <= MAX_DPI:
        raise PtortValueError(f"{api}(dpi=...) must be from {MIN_DPI} to {MAX_DPI} dots per inch, got {dpi!r}.",
                              hint=hint)
    return value


def check_pixels(fig: Figure, dpi: float, api: str) -> None:
    """Refuse a raster that would be empty or too big to draw (MAX_PIXELS: its buffer alone would be GBs)."""
    w_in, h_in = (float(v) for v in fig.get_size_inches())
    w_px, h_px = round(w_in * dpi), round(h_in * dpi)
    if w_px < 1 or h_px < 1:
        raise PtortValueError(f"{api}: the figure is {w_in:g} x {h_in:g} inches, {w_px} x {h_px} pixels at {dpi:g} "
                              "dpi: an empty image.", hint="Give the figure a size (fig.set_size_inches(10, 4)).")
    if w_px * h_px > MAX_PIXELS or max(w_px, h_px) > MAX_SIDE_PX:
        fit = math.floor(min(math.sqrt(MAX_PIXELS / (w_in * h_in)), MAX_SIDE_PX / max(w_in, h_in)))
        raise PtortValueError(
            f"{api}: the figure is {w_in:g} x {h_in:g} inches, {w_px:,} x {h_px:,} pixels at {dpi:g} dpi: more than "
            f"the {MAX_PIXELS:,} pixels (at most {MAX_SIDE_PX:,} a side) a PNG is drawn with here.",
            hint=(f"Use a lower dpi (at most {fit} for this figure), " if fit >= MIN_DPI else "")
            + "or draw less: a timeline of fewer lanes or runs, or a smaller figure (fig.set_size_inches(...)).")


def figure_png(fig: Figure, dpi: float | None = None) -> bytes:
    """The figure as PNG bytes; the same figure always gives the same bytes (no Software or date metadata).

    ``dpi``: from MIN_DPI to MAX_DPI (default the figure's own); a picture of more than MAX_PIXELS pixels is
    refused (its raster alone would take GBs of memory)."""
    _check_figure(fig, "figure_png")
    resolution = float(fig.dpi) if dpi is None else check_dpi(dpi, "figure_png")
    check_pixels(fig, resolution, "figure_png()")
    _canvas(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=resolution, metadata={"Software": None})
    return buf.getvalue()


def figure_svg(fig: Figure) -> str:
    """The figure as SVG text with text kept as (escaped) text, a fixed id salt and no date; characters XML does
    not allow (control characters, lone surrogates) are drawn as U+FFFD, so the SVG stays valid."""
    _check_figure(fig, "figure_svg")
    _canvas(fig)
    buf = io.StringIO()
    with matplotlib.rc_context(_SVG_RC):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    # Names from logs carry control characters (ANSI colour codes, NUL) and cut strings lone surrogates, which XML
    # 1.0 does not allow anywhere: matplotlib writes them as they are, and browsers then refuse the whole SVG.
    return _NOT_XML.sub("\ufffd", buf.getvalue())


_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def drawable(text: str) -> str:
    """``text`` with each control character (ANSI colour codes from logs, NUL) and lone surrogate (JSON allows
    ``"\\ud83d"``: a string cut inside an emoji) as U+FFFD: fonts have no glyph for the one, matplotlib refuses to
    draw the other, and XML allows neither; a name is still recognisable without them. Newlines and tabs stay."""
    return _UNDRAWABLE.sub("\ufffd", text)


_UNDRAWABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f\ud800-\udfff]")


def text_kwargs(**kwargs: Any) -> dict[str, Any]:
    """Text properties for user-provided strings: never parsed as mathtext (a ``$`` in a name stays a ``$``)."""
    return {"parse_math": False, **kwargs}


__all__ = ["PtortFigure", "new_figure", "figure_png", "figure_svg", "text_kwargs", "drawable", "check_dpi",
           "check_pixels", "MIN_DPI", "MAX_DPI", "MAX_PIXELS"]
