"""What every view shares: the MIME types the JupyterLab renderers read, and the text view base class."""
from __future__ import annotations

from typing import Any

# The one Python spelling of each ptort MIME type; extensions/ptort-lab-renderers/src/logic/mime.ts is the
# TypeScript one (tests/extension/test_logic.py checks that they agree). The notebook layer imports these.
TRACE_MIME = "application/vnd.ptort.trace+json"
PIPELINE_MIME = "application/vnd.ptort.pipeline+json"


class TextView:
    """A view whose plain-text form is ``.text``: ``str()``, ``repr()`` and IPython's pretty printer all show it."""

    @property
    def text(self) -> str:
        raise NotImplementedError  # each view says what its text is

    def __str__(self) -> str:
        return self.text

    def __repr__(self) -> str:
        return self.text

    def _repr_pretty_(self, p: Any, cycle: bool) -> None:
        p.text(self.text)


__all__ = ["TextView", "TRACE_MIME", "PIPELINE_MIME"]
