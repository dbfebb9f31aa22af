"""Where diagram boxes and arrows go (Graphviz ``plain`` output, or a built-in layered layout) and drawing them."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

from matplotlib.patches import Ellipse, FancyBboxPatch, PathPatch, Polygon
from matplotlib.path import Path

from .figures import PtortFigure, new_figure, text_kwargs

# A Layout is in inches with y pointing up, as Graphviz's ``plain`` format gives it: boxes by node id (centre and
# size) and, for each edge in graph order, the control points of a cubic Bezier that ends where the arrowhead begins,
# plus the label position. The built-in layout ranks nodes by longest path from the sources (back edges of cycles
# ignored), orders each rank by the mean position of its predecessors, and routes edges as curves left to right
# (back edges arc over the top), so a fresh machine without any Graphviz still gets a readable picture.

#: A point ``(x, y)`` in inches.
Point = tuple[float, float]
ARROW_IN = 10 / 72  # Graphviz's default arrowhead length (10 pt)
NODE_PT, EDGE_PT = 11.0, 9.0  # font sizes written into the DOT and used by the estimates here
_CHAR_IN = {NODE_PT: 0.62 * NODE_PT / 72, EDGE_PT: 0.58 * EDGE_PT / 72}  # a generous average glyph width
_MAX_W, _MAX_H = 12.0, 9.0  # figure size cap in inches; larger layouts are scaled down


@dataclass(frozen=True)
class Box:
    """A node's centre and size, in inches."""

    x: float
    y: float
    w: float
    h: float


@dataclass(frozen=True)
class Route:
    """An edge: Bezier control points (3k+1 of them, ending at the arrowhead's base) and the label centre."""

    points: tuple[Point, ...]
    label: Point | None


@dataclass(frozen=True)
class Layout:
    """Boxes by node id and one Route per graph edge (same order), in a ``width`` x ``height`` inch area."""

    width: float
    height: float
    boxes: dict[str, Box]
    routes: tuple[Route, ...]
    source: str


# -- Graphviz plain ---------------------------------------------------------------------------------------------------
def _tokens(line: str) -> list[str]:
    """Split a plain-format line on blanks, keeping "quoted strings" (with backslash escapes) whole."""
    out: list[str] = []
    i, n = 0, len(line)
    while i < n:
        if line[i].isspace():
            i += 1
            continue
        if line[i] == '"':
            j, buf = i + 1, []
            while j < n and line[j] != '"':
                if line[j] == "\\" and j + 1 < n:
                    j += 1
                buf.append(line[j])
                j += 1
            out.append("".join(buf))
            i = j + 1
        else:
            j = i
            while j < n and not line[j].isspace():
                j += 1
            out.append(line[i:j])
            i = j
    return out


def parse_plain(text: str, edges: Sequence[Any], source: str) -> Layout:
    """A Layout from Graphviz ``-Tplain`` output; ``edges`` (with .source/.target) fixes the route order."""
    width = height = 0.0
    boxes: dict[str, Box] = {}
    found: dict[tuple[str, str], list[Route]] = {}
    for line in text.splitlines():
        tok = _tokens(line)
        if not tok:
            continue
        if tok[0] == "graph":
            width, height = float(tok[2]), float(tok[3])
        elif tok[0] == "node":
            boxes[tok[1]] = Box(float(tok[2]), float(tok[3]), float(tok[4]), float(tok[5]))
        elif tok[0] == "edge":
            n = int(tok[3])
            nums = [float(v) for v in tok[4:4 + 2 * n]]
            rest = tok[4 + 2 * n:]
            label = (float(rest[-4]), float(rest[-3])) if len(rest) >= 5 else None
            pts = tuple((nums[2 * k], nums[2 * k + 1]) for k in range(n))
            found.setdefault((tok[1], tok[2]), []).append(Route(pts, label))
    routes = []
    for e in edges:
        queue = found.get((e.source, e.target)) or []
        routes.append(queue.pop(0) if queue else Route((), None))
    return Layout(width, height, boxes, tuple(routes), source)


# -- the built-in layered layout ---------------------------------------------------------------------------------------
def text_width(text: str, pt: float) -> float:
    return max((len(line) for line in text.split("\n")), default=0) * _CHAR_IN[pt]


def node_size(lines: Sequence[str]) -> tuple[float, float]:
    w = max(0.9, max((len(s) for s in lines), default=0) * _CHAR_IN[NODE_PT] + 0.3)
    h = max(0.5, len(lines) * NODE_PT * 1.3 / 72 + 0.2)
    return w, h


def _back_edges(ids: list[str], succ: dict[str, list[tuple[str, int]]]) -> set[int]:
    """Edge indices that close a cycle, found by an iterative DFS from the nodes in graph order."""
    state: dict[str, int] = {}
    back: set[int] = set()
    for root in ids:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(succ[root]))]
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                state[node] = 2
                stack.pop()
                continue
            m, k = nxt
            if state.get(m) == 1:
                back.add(k)
            elif m not in state:
                state[m] = 1
                stack.append((m, iter(succ[m])))
    return back


def _bezier(p: Sequence[Point], t: float) -> Point:
    u = 1 - t
    return (u ** 3 * p[0][0] + 3 * u * u * t * p[1][0] + 3 * u * t * t * p[2][0] + t ** 3 * p[3][0],
            u ** 3 * p[0][1] + 3 * u * u * t * p[1][1] + 3 * u * t * t * p[2][1] + t ** 3 * p[3][1])


def layered(nodes: Sequence[Any], edges: Sequence[Any]) -> Layout:
    """Left-to-right layers by longest path; needs only .id/.lines on nodes and .source/.target/.label on edges."""
    ids = [n.id for n in nodes]
    size = {n.id: node_size(n.lines) for n in nodes}
    succ: dict[str, list[tuple[str, int]]] = {i: [] for i in ids}
    for k, e in enumerate(edges):
        if e.source != e.target:
            succ[e.source].append((e.target, k))
    back = _back_edges(ids, succ)
    forward = [(e.source, e.target) for k, e in enumerate(edges) if k not in back and e.source != e.target]
    indeg = {i: 0 for i in ids}
    for _, t in forward:
        indeg[t] += 1
    rank = {i: 0 for i in ids}
    ready = [i for i in ids if indeg[i] == 0]
    while ready:
        s = ready.pop(0)
        for src, t in forward:
            if src == s:
                rank[t] = max(rank[t], rank[s] + 1)
                indeg[t] -= 1
                if indeg[t] == 0:
                    ready.append(t)
    layers: list[list[str]] = [[] for _ in range(max(rank.values(), default=0) + 1)]
    for i in ids:
        layers[rank[i]].append(i)
    pos = {i: float(k) for layer in layers for k, i in enumerate(layer)}
    for r in range(1, len(layers)):  # order a rank by the mean position of its predecessors (stable)
        def bary(i: str) -> float:
            preds = [pos[s] for s, t in forward if t == i and rank[s] < rank[i]]
            return sum(preds) / len(preds) if preds else pos[i]
        layers[r].sort(key=bary)
        for k, i in enumerate(layers[r]):
            pos[i] = float(k)
    boxes: dict[str, Box] = {}
    x = 0.0
    for r, layer in enumerate(layers):
        col_w = max((size[i][0] for i in layer), default=0.0)
        total = sum(size[i][1] for i in layer) + 0.35 * (len(layer) - 1)
        y = total / 2
        for i in layer:
            w, h = size[i]
            boxes[i] = Box(x + col_w / 2, y - h / 2, w, h)
            y -= h + 0.35
        labels = [text_width(e.label, EDGE_PT) for e in edges if rank[e.source] == r and e.label]
        x += col_w + max([0.8] + [lw + 0.5 for lw in labels])
    routes = []
    seen: dict[tuple[str, str, bool], int] = {}
    counts: dict[tuple[str, str, bool], int] = {}
    for k, e in enumerate(edges):
        fwd = k not in back and e.source != e.target and rank[e.target] > rank[e.source]
        key = (e.source, e.target, fwd)
        counts[key] = counts.get(key, 0) + 1
    for k, e in enumerate(edges):
        s, t = boxes[e.source], boxes[e.target]
        fwd = k not in back and e.source != e.target and rank[e.target] > rank[e.source]
        key = (e.source, e.target, fwd)
        j = seen[key] = seen.get(key, -1) + 1
        if fwd:
            off = (j - (counts[key] - 1) / 2) * min(0.16, 0.8 * min(s.h, t.h) / max(counts[key], 1))
            p0, p3 = (s.x + s.w / 2, s.y + off), (t.x - t.w / 2 - ARROW_IN, t.y + off)
            dx = (p3[0] - p0[0]) * 0.45
            pts = (p0, (p0[0] + dx, p0[1]), (p3[0] - dx, p3[1]), p3)
            mid = _bezier(pts, 0.5)
            label = (mid[0], mid[1] + 0.11)
        else:  # a back edge, a same-rank edge or a self loop: arc over every box in between
            lo, hi = min(s.x, t.x) - 1e-9, max(s.x, t.x) + 1e-9
            top = max(b.y + b.h / 2 for b in boxes.values() if lo <= b.x <= hi)
            sx, tx = (s.x - s.w / 4, s.x + s.w / 4) if e.source == e.target else (s.x, t.x)
            p0, p3 = (sx, s.y + s.h / 2), (tx, t.y + t.h / 2 + ARROW_IN)
            # control height so that the curve clears `top` for t in [0.3, 0.7], where the boxes in between sit
            lift = (top + 0.15 + 0.3 * j - 0.37 * min(p0[1], p3[1])) / 0.63
            pts = (p0, (sx, lift), (tx, lift), p3)
            mid = _bezier(pts, 0.5)
            label = (mid[0], mid[1] + 0.1)
        routes.append(Route(pts, label if e.label else None))
    return _normalised(boxes, routes, edges)


def _normalised(boxes: dict[str, Box], routes: list[Route], edges: Sequence[Any]) -> Layout:
    """Shift everything so the drawing starts at (0.05, 0.05) inches; compute the extent."""
    xs: list[float] = []
    ys: list[float] = []
    for b in boxes.values():
        xs += [b.x - b.w / 2, b.x + b.w / 2]
        ys += [b.y - b.h / 2, b.y + b.h / 2]
    for r, e in zip(routes, edges):
        for k in range(0, len(r.points) - 3, 3):  # the curve's extent, not its control points
            curve = [_bezier(r.points[k:k + 4], i / 10) for i in range(11)]
            xs += [p[0] for p in curve]
            ys += [p[1] for p in curve]
        if r.label is not None:
            half = text_width(e.label, EDGE_PT) / 2
            xs += [r.label[0] - half, r.label[0] + half]
            ys += [r.label[1] + 0.1]
    if not xs:
        return Layout(1.0, 0.5, {}, (), "builtin")
    m = 0.05
    dx, dy = m - min(xs), m - min(ys)
    moved = {k: Box(b.x + dx, b.y + dy, b.w, b.h) for k, b in boxes.items()}
    shifted = tuple(Route(tuple((x + dx, y + dy) for x, y in r.points),
                          None if r.label is None else (r.label[0] + dx, r.label[1] + dy)) for r in routes)
    return Layout(max(xs) - min(xs) + 2 * m, max(ys) - min(ys) + 2 * m, moved, shifted, "builtin")


# -- drawing --------------------------------------------------------------------------------------------------------
_STYLE = {"process": ("#eef3fb", "#4a6fa5"), "kernel": ("#eef3fb", "#4a6fa5"), "tensor": ("#f7f7f7", "#888888")}


def draw(nodes: Sequence[Any], edges: Sequence[Any], layout: Layout, title: str = "") -> PtortFigure:
    """A matplotlib Figure of the diagram: boxes, Bezier edges with arrowheads, labels as plain text."""
    scale = min(1.0, _MAX_W / max(layout.width, 1e-9), _MAX_H / max(layout.height, 1e-9))
    pad = 0.1
    title_h = 0.3 if title and layout.source == "builtin" else 0.0  # Graphviz layouts already hold the label
    fig = new_figure(layout.width * scale + 2 * pad, layout.height * scale + 2 * pad + title_h)
    ax = fig.add_axes((0.0, 0.0, 1.0, 1.0))
    ax.set_axis_off()
    ax.set_xlim(-pad / scale, layout.width + pad / scale)
    ax.set_ylim(-pad / scale, layout.height + (pad + title_h) / scale)
    if title:
        y = layout.height + title_h / scale / 2 if title_h else layout.height - 0.15
        ax.text(layout.width / 2, y, title, ha="center", va="center",
                fontsize=NODE_PT * scale, **text_kwargs())
    for n in nodes:
        b = layout.boxes.get(n.id)
        if b is None:
            continue
        face, edge = _STYLE.get(n.kind, _STYLE["process"])
        if n.kind == "tensor":
            patch: Any = Ellipse((b.x, b.y), b.w, b.h, facecolor=face, edgecolor=edge, linewidth=1)
        else:
            radius = min(0.08, b.h / 4)
            patch = FancyBboxPatch((b.x - b.w / 2 + radius, b.y - b.h / 2 + radius), b.w - 2 * radius,
                                   b.h - 2 * radius, boxstyle=f"round,pad={radius}", facecolor=face, edgecolor=edge,
                                   linewidth=1)
        ax.add_patch(patch)
        ax.text(b.x, b.y, "\n".join(n.lines), ha="center", va="center", fontsize=NODE_PT * 0.88 * scale,
                linespacing=1.25, **text_kwargs())
    for e, r in zip(edges, layout.routes):
        if len(r.points) < 2:
            continue
        style = "--" if e.kind == "event" else "-"
        codes = [Path.MOVETO] + [Path.CURVE4] * (len(r.points) - 1) if (len(r.points) - 1) % 3 == 0 \
            else [Path.MOVETO] + [Path.LINETO] * (len(r.points) - 1)
        ax.add_patch(PathPatch(Path(r.points, codes), fill=False, edgecolor="#555555", linewidth=1,
                               linestyle=style))
        (x0, y0), (x1, y1) = r.points[-2], r.points[-1]
        d = math.hypot(x1 - x0, y1 - y0) or 1.0
        ux, uy = (x1 - x0) / d, (y1 - y0) / d
        tip = (x1 + ux * ARROW_IN, y1 + uy * ARROW_IN)
        half = ARROW_IN * 0.35
        ax.add_patch(Polygon([tip, (x1 - uy * half, y1 + ux * half), (x1 + uy * half, y1 - ux * half)],
                             closed=True, facecolor="#555555", edgecolor="#555555", linewidth=0.5))
        if r.label is not None and e.label:
            ax.text(r.label[0], r.label[1], e.label, ha="center", va="center", fontsize=EDGE_PT * 0.88 * scale,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 0.5, "alpha": 0.8}, **text_kwargs())
    return fig


__all__ = ["Box", "Route", "Layout", "parse_plain", "layered", "draw", "node_size", "NODE_PT", "EDGE_PT"]
