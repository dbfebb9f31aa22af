"""The tutorials run clean: every cell succeeds except those tagged raises-exception, which must fail."""
from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def test_every_tutorial_is_committed():
    """Tutorials 01-06 exist (built by `make notebooks`)."""
    assert [p.name[:2] for p in NOTEBOOKS][:6] == ["01", "02", "03", "04", "05", "06"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_notebook_runs_strictly(path, tmp_path):
    """nbclient runs every cell from scratch; an error anywhere (usage errors included) fails, and a cell tagged
    raises-exception that does not raise fails too."""
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    os.environ.setdefault("MPLBACKEND", "Agg")
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(tmp_path)}})
    try:
        client.execute()
    except CellExecutionError as e:  # pragma: no cover - the failure message is the report
        pytest.fail(f"{path.name}: {e}")
    for cell in nb.cells:
        if "raises-exception" in cell.get("metadata", {}).get("tags", []):
            assert any(o.output_type == "error" or (o.output_type == "stream" and o.name == "stderr"
                                                     and "UsageError" in o.text) for o in cell.outputs), \
                f"{path.name}: a cell tagged raises-exception did not fail:\n{cell.source}"
