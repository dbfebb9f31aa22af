"""notebooks/build.py: committed tutorials match their sources, and rebuilds give identical files."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]


def _build_module():
    spec = importlib.util.spec_from_file_location("ptort_notebook_build", ROOT / "notebooks" / "build.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


build = _build_module()
SOURCES = sorted((ROOT / "notebooks" / "src").glob("*.py"))


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_committed_notebook_has_the_cells_of_its_source(source):
    """Editing notebooks/src without `make notebooks` leaves a stale tutorial: caught here."""
    committed = nbformat.read(ROOT / "notebooks" / f"{source.stem}.ipynb", as_version=4)
    expected = build.parse(source.read_text())
    assert [(c.cell_type, c.source) for c in committed.cells] == [(c.cell_type, c.source) for c in expected]


PNG = "iVBORw0KGgo="  # a PNG's first bytes, base64: enough for a display bundle


def widget_notebook() -> nbformat.NotebookNode:
    """A cell showing an explorer-like widget (view + picture + summary) and a bare widget (view + repr), plus a
    stream, with the widget state nbclient stores."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("explorer", id="03-00")
    view = {"model_id": "a" * 32, "version_major": 2, "version_minor": 1}
    cell.outputs = [
        nbformat.v4.new_output("display_data", data={build.WIDGET_VIEW: view, "image/png": PNG,
                                                      "text/plain": "knobs: depth=2"}),
        nbformat.v4.new_output("display_data", data={build.WIDGET_VIEW: {**view, "model_id": "b" * 32},
                                                      "text/plain": "IntProgress(value=3)"}),
        nbformat.v4.new_output("stream", name="stdout", text="done\n"),
    ]
    nb.cells = [cell, nbformat.v4.new_markdown_cell("text")]
    nb.metadata["widgets"] = {build.WIDGET_STATE: {"version_major": 2, "version_minor": 0, "state": {
        "a" * 32: {"model_name": "AnyModel", "state": {"_esm": "x" * 28_000}},
        "b" * 32: {"model_name": "IntProgressModel", "state": {"value": 3}}}}}
    return nb


def test_stored_notebooks_keep_no_live_widgets():
    """A widget view gives way to its picture and summary; a widget with no picture goes; no widget state is kept
    (so no 28 KiB view bundle in the file, and nbconvert shows the picture)."""
    nb = build.static_widget_outputs(widget_notebook())
    outputs = nb.cells[0].outputs
    assert [o.output_type for o in outputs] == ["display_data", "stream"]
    assert outputs[0].data == {"image/png": PNG, "text/plain": "knobs: depth=2"}
    assert outputs[1].text == "done\n"
    assert "widgets" not in nb.metadata and "_esm" not in nbformat.writes(nb)
    assert build.static_widget_outputs(nb) == nb  # nothing left to drop


def test_nbconvert_html_shows_the_picture_not_a_widget():
    """The stored bundle, converted as `jupyter nbconvert --to html` does: an <img>, no widget view script."""
    from nbconvert import HTMLExporter

    html, _ = HTMLExporter().from_notebook_node(build.static_widget_outputs(widget_notebook()))
    assert f'src="data:image/png;base64,{PNG}"' in html
    assert build.WIDGET_VIEW not in html and "IntProgress(value=3)" not in html


def test_built_explorer_tutorial_stores_its_picture():
    """Tutorial 03 as committed: the explorer cell holds a PNG and its summary, and nbconvert HTML shows the PNG."""
    from nbconvert import HTMLExporter

    path = ROOT / "notebooks" / "03_pipeline_vs_data_parallel.ipynb"
    nb = nbformat.read(path, as_version=4)
    assert "widgets" not in nb.metadata and build.WIDGET_VIEW not in path.read_text()
    cells = [c for c in nb.cells if c.cell_type == "code" and c.source.startswith("explorer = Explorer(")]
    assert len(cells) == 1, "tutorial 03 no longer shows the explorer in one cell: update this test"
    (output,) = [o for o in cells[0].outputs if o.output_type == "display_data"]
    assert set(output.data) == {"image/png", "text/plain"}
    assert output.data["text/plain"].startswith("knobs: depth=")
    html, _ = HTMLExporter().from_notebook_node(nb)
    assert html.count(f'src="data:image/png;base64,{output.data["image/png"][:40]}') == 1


def test_adjacent_stream_outputs_are_merged():
    out = [nbformat.v4.new_output("stream", name="stdout", text="a\n"),
           nbformat.v4.new_output("stream", name="stdout", text="b\n"),
           nbformat.v4.new_output("stream", name="stderr", text="c\n"),
           nbformat.v4.new_output("stream", name="stdout", text="d\n")]
    assert [(o.name, o.text) for o in build.coalesced_streams(out)] == [
        ("stdout", "a\nb\n"), ("stderr", "c\n"), ("stdout", "d\n")]
