"""notebooks/build.py: committed tutorials match their sources, and rebuilds give identical files."""
from __future__ import annotations

import importlib.util
import sys
import uuid
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


def widget_notebook(ids: list[str]) -> nbformat.NotebookNode:
    """A box (ids[0]) shown in a cell, holding a slider (ids[1]), plus a widget nothing shows (ids[2])."""
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("box", id="03-00")
    cell.outputs = [nbformat.v4.new_output("display_data", data={
        build.WIDGET_VIEW: {"model_id": ids[0], "version_major": 2, "version_minor": 0}})]
    nb.cells = [cell]
    nb.metadata["widgets"] = {build.WIDGET_STATE: {"version_major": 2, "version_minor": 0, "state": {
        ids[2]: {"model_name": "LayoutModel", "state": {}},
        ids[1]: {"model_name": "IntSliderModel", "state": {"value": 3}},
        ids[0]: {"model_name": "VBoxModel", "state": {"children": [f"IPY_MODEL_{ids[1]}"]}},
    }}}
    return nb


def test_widget_ids_depend_on_the_notebook_not_on_the_run():
    runs = [build.stable_widget_ids(widget_notebook([uuid.uuid4().hex for _ in range(3)]), "03_x") for _ in range(2)]
    assert nbformat.writes(runs[0]) == nbformat.writes(runs[1])
    state = runs[0].metadata["widgets"][build.WIDGET_STATE]["state"]
    box = runs[0].cells[0].outputs[0].data[build.WIDGET_VIEW]["model_id"]
    slider = state[box]["state"]["children"][0].removeprefix("IPY_MODEL_")
    assert state[slider]["state"] == {"value": 3} and len(state) == 3 and list(state) == sorted(state)


def test_adjacent_stream_outputs_are_merged():
    out = [nbformat.v4.new_output("stream", name="stdout", text="a\n"),
           nbformat.v4.new_output("stream", name="stdout", text="b\n"),
           nbformat.v4.new_output("stream", name="stderr", text="c\n"),
           nbformat.v4.new_output("stream", name="stdout", text="d\n")]
    assert [(o.name, o.text) for o in build.coalesced_streams(out)] == [
        ("stdout", "a\nb\n"), ("stderr", "c\n"), ("stdout", "d\n")]
