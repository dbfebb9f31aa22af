"""PtortResult: the mimebundle, deterministic outputs, escaping of user names, and parts that fail to render."""
from __future__ import annotations

import base64
import json
import re
from textwrap import dedent

import pytest
from matplotlib.figure import Figure

from ptort_lab.notebook import PtortResult
from ptort_lab.notebook.display import PIPELINE_MIME, TRACE_MIME

STOCK = {"text/plain", "text/html", "image/png", "image/svg+xml"}


def run(ip, line: str, body: str) -> PtortResult:
    return ip.run_cell_magic("ptort", line, body)


def test_default_bundle_has_stock_and_ptort_mimetypes(ip, spec_body):
    """By default: summary text, HTML, timeline PNG, diagram SVG, and both ptort JSON mimetypes."""
    bundle = run(ip, "", spec_body)._repr_mimebundle_()
    assert set(bundle) == STOCK | {TRACE_MIME, PIPELINE_MIME}
    assert bundle["image/png"].startswith(b"\x89PNG")
    assert bundle["image/svg+xml"].lstrip().startswith(("<?xml", "<svg", "<!DOCTYPE"))


@pytest.mark.parametrize("show, present, absent", [
    ("timeline", {"image/png", TRACE_MIME}, {"image/svg+xml", PIPELINE_MIME}),
    ("diagram", {"image/svg+xml", PIPELINE_MIME}, {"image/png", TRACE_MIME}),
    ("none", set(), {"image/png", "image/svg+xml", TRACE_MIME, PIPELINE_MIME}),
])
def test_show_selects_the_visual_parts(ip, spec_body, show, present, absent):
    """--show decides which images (and the JSON the JupyterLab renderers draw) are in the bundle; the text is
    always there."""
    bundle = run(ip, f"--show {show}", spec_body)._repr_mimebundle_()
    assert present <= set(bundle) and not absent & set(bundle)
    assert {"text/plain", "text/html"} <= set(bundle)


def test_show_stats_and_ir_add_text(ip, spec_body):
    """--show stats adds each run's stage table; --show ir the kernels' IR with pipes, in text and HTML."""
    bundle = run(ip, "--show stats,ir", spec_body)._repr_mimebundle_()
    text = bundle["text/plain"]
    assert "pipeline run:" in text and "data-parallel run:" in text and "stall cycles" in text
    assert "kernel load_kernel(" in text and "# AIV.MTE2" in text
    assert "kernel compute_kernel(" in bundle["text/html"]


def test_ir_views_are_one_text_view_of_every_kernel(ip, spec_body):
    """result.ir(): the kernels in order of first launch, by index or name; str, repr and pretty give the text."""
    from IPython.lib.pretty import pretty

    ir = run(ip, "--show none --tiles 2", spec_body).ir()
    assert [v.ir.name for v in ir] == ["load_kernel", "compute_kernel", "store_kernel"]
    assert ir["compute_kernel"] is ir[1] and ir[-1].ir.name == "store_kernel"
    with pytest.raises(KeyError):
        ir["missing"]
    assert str(ir) == repr(ir) == pretty(ir) == ir.text == "\n\n".join(v.text for v in ir)
    assert ir._repr_html_().count('<pre class="ptort-ir">') == 3


def test_trace_json_holds_both_runs_and_the_knobs(ip, spec_body):
    """application/vnd.ptort.trace+json is {"runs": {label: Chrome trace}, "knobs": {...}}."""
    bundle = run(ip, "--tiles 4", spec_body)._repr_mimebundle_(include={TRACE_MIME})
    data = bundle[TRACE_MIME]
    assert set(data["runs"]) == {"pipeline", "data-parallel"}
    for trace in data["runs"].values():
        assert sum(e.get("ph") == "X" for e in trace["traceEvents"]) >= 12
    assert data["knobs"] == {"depth": 2, "tile": [128, 128], "tiles": 4, "cores": 4}
    json.dumps(data)  # stored in the notebook as JSON


def test_pipeline_json_describes_processes_and_channels(ip, spec_body):
    """application/vnd.ptort.pipeline+json is viz.pipeline_json of the studied pipeline."""
    from ptort_lab import viz
    result = run(ip, "", spec_body)
    assert result._repr_mimebundle_(include={PIPELINE_MIME})[PIPELINE_MIME] == viz.pipeline_json(result.workload)


def test_text_and_json_outputs_are_identical_across_runs(ip, spec_body):
    """Two runs of one cell give the same text, HTML, SVG, PNG and JSON, with no addresses in them."""
    first = run(ip, "--show all", spec_body)._repr_mimebundle_()
    second = run(ip, "--show all", spec_body)._repr_mimebundle_()
    assert first == second
    for mime in ("text/plain", "text/html", "image/svg+xml"):
        assert not re.search(r"0x[0-9a-f]{6,}", first[mime]), mime
    assert "0x" not in json.dumps(first[TRACE_MIME]) + json.dumps(first[PIPELINE_MIME])
    assert "<ptort-cell-" not in first["text/plain"]


def test_text_plain_has_no_wall_clock_times(ip, spec_body):
    """The summary reports simulated cycles and us only: no ms, dates or seconds."""
    text = run(ip, "--show all", spec_body)._repr_mimebundle_(include={"text/plain"})["text/plain"]
    assert not re.search(r"\d ?(ms|s)\b", text) and "20" + "26-" not in text


XSS = "<img src=x onerror=alert(1)>"


def test_user_names_are_escaped_in_svg_and_html(ip, spec_body):
    """A process named like an HTML tag is text in every SVG and HTML output, never markup."""
    body = spec_body.replace('Process("loader")', f'Process("{XSS}")')
    bundle = run(ip, "--show all", body)._repr_mimebundle_()
    assert XSS in bundle["text/plain"]
    svg, page = bundle["image/svg+xml"], bundle["text/html"]
    assert "<img" not in svg and "&lt;img src=x onerror=alert(1)&gt;" in svg
    assert "onerror=alert" not in page.replace("&lt;img src=x onerror=alert(1)&gt;", "")
    for src in re.findall(r"<img [^>]*>", page):
        assert re.fullmatch(r'<img alt="[a-z ]+" src="data:image/(png|svg\+xml);base64,[A-Za-z0-9+/=]+"/>', src)
    embedded = base64.b64decode(re.search(r'src="data:image/svg\+xml;base64,([^"]+)"', page).group(1)).decode()
    assert embedded == svg


def test_a_part_that_fails_to_render_becomes_a_short_note(ip, spec_body, monkeypatch, capsys):
    """A timeline that raises leaves text/plain (with a note, addresses masked) and prints no traceback."""
    result = run(ip, "", spec_body)

    def broken(self):
        raise RuntimeError("figure <object at 0x7f3a2b1c0d00> exploded\nsecond line")

    monkeypatch.setattr(PtortResult, "timeline", broken)
    data, _ = ip.display_formatter.format(result)
    assert "image/png" not in data
    assert "[timeline not shown: RuntimeError: figure <object at 0x…> exploded]" in data["text/plain"]
    assert "0x7f" not in data["text/plain"] + data["text/html"]
    assert "Traceback" not in capsys.readouterr().out


def test_result_methods(ip, spec_body, tmp_path):
    """.timeline() is a Figure, .diagram() a Diagram, .ir() one view per kernel, .save_trace() writes files."""
    result = run(ip, "--tiles 4", spec_body)
    fig = result.timeline()
    assert isinstance(fig, Figure) and len(fig.axes) >= 2
    assert "loader" in result.diagram().dot
    ir = result.ir()
    assert len(ir) == 3 and ir["compute_kernel"].text.count("mul") == 1
    written = result.save_trace(tmp_path / "t.json.gz")
    assert [(label, p.name) for label, p in written] == [("pipeline", "t.json.gz"),
                                                         ("data-parallel", "t.data-parallel.json.gz")]
    assert all(p.exists() for _, p in written)
    assert repr(result) == result.summary()


def test_single_run_timeline_for_mode_pipeline(ip, spec_body):
    """With one run, the PNG is that run's timeline (plot_timeline)."""
    result = run(ip, "--mode pipeline --show timeline", spec_body)
    assert isinstance(result.timeline(), Figure)
    assert result._repr_mimebundle_()["image/png"].startswith(b"\x89PNG")
    assert set(result._repr_mimebundle_(include={TRACE_MIME})[TRACE_MIME]["runs"]) == {"pipeline"}


def test_plain_workload_has_no_pipeline_json(ip, spec_body):
    """A data-parallel workload (not a pipeline) leaves out the pipeline JSON but still shows its diagram."""
    body = spec_body + dedent("""\
        @workload
        def parallel():
            for t in P(Dense[n]()):
                load_kernel[t](src=X[t], dst=T0[t])
        parallel()
    """)
    bundle = run(ip, "", body)._repr_mimebundle_()
    assert PIPELINE_MIME not in bundle and "image/png" in bundle
    assert "not shown" not in bundle["text/plain"]
