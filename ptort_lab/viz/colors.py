"""Timeline colours from palette.json, the palette the JupyterLab renderers use too (their src/logic/colors.ts).

A bar's colour: its op's entry in ``ops`` (load, mul, ...), else its lane's pipe's entry in ``pipes`` (an
``extract`` on ``AIC0.MTE1`` takes MTE1's), else ``categorical[fnv1a32(name) % 10]``. The hash is the renderers'
(FNV-1a over the name's UTF-16 code units, which are its bytes for ASCII names), so a name has one colour in both.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

_FNV_OFFSET = 0x811C9DC5
_FNV_PRIME = 0x01000193


def _load() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(Path(__file__).with_name("palette.json").read_text(encoding="utf-8"))
    return data


PALETTE = _load()
MAKESPAN_COLOR: str = PALETTE["makespan"]


def fnv1a32(text: str) -> int:
    """The 32-bit FNV-1a hash of ``text``'s UTF-16 code units, as the renderers' ``hashString`` computes it (a lone
    surrogate, which JSON allows, is its own code unit there too)."""
    units = text.encode("utf-16-le", "surrogatepass")
    h = _FNV_OFFSET
    for i in range(0, len(units), 2):
        h = ((h ^ (units[i] | units[i + 1] << 8)) * _FNV_PRIME) & 0xFFFFFFFF
    return h


def hashed_color(name: str) -> str:
    """The categorical colour ``name`` hashes to (for names the palette does not list)."""
    categorical: list[str] = PALETTE["categorical"]
    return categorical[fnv1a32(name) % len(categorical)]


def cycled_color(i: int) -> str:
    """The ``i``-th categorical colour, cycling (for a handful of things in a fixed order, e.g. channels)."""
    categorical: list[str] = PALETTE["categorical"]
    return categorical[i % len(categorical)]


def pipe_of(lane: str) -> str:
    """The pipe of a lane (``"AIV0.MTE2"`` -> ``"MTE2"``, any case); a stage lane (a process name) stays as it is."""
    pipe = lane.rpartition(".")[2].upper()
    return pipe if pipe in PALETTE["pipes"] else lane


def span_color(name: str, lane: str = "") -> str:
    """The colour of a span named ``name`` (an op) on ``lane``: by op, else by pipe, else hashed."""
    ops: dict[str, str] = PALETTE["ops"]
    pipes: dict[str, str] = PALETTE["pipes"]
    if name in ops:
        return ops[name]
    pipe = pipe_of(lane)
    return pipes[pipe] if pipe in pipes else hashed_color(name)


__all__ = ["PALETTE", "MAKESPAN_COLOR", "fnv1a32", "hashed_color", "cycled_color", "pipe_of", "span_color"]
