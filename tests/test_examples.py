"""Every example runs at its small size, checks itself against numpy and says PASS; each folder is complete."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if p.is_dir() and list(p.glob("*_example.py")))


def test_spec_related_examples_exist():
    """The spec README's related examples are there."""
    names = {p.name for p in EXAMPLES}
    assert {"csp_pipeline", "data_parallel", "moe", "attention"} <= names


@pytest.mark.parametrize("folder", EXAMPLES, ids=lambda p: p.name)
def test_example_folder_is_complete(folder):
    """Each example has its script, a README and a Makefile with a run target (and a golden, but the spec's)."""
    assert (folder / f"{folder.name}_example.py").is_file()
    assert (folder / "README.md").is_file()
    assert "run:" in (folder / "Makefile").read_text()
    if folder.name != "csp_pipeline":
        assert (folder / "golden.py").is_file()


@pytest.mark.parametrize("folder", EXAMPLES, ids=lambda p: p.name)
def test_example_passes_at_small_size(folder):
    """`<name>_example.py --size small` exits 0 and reports PASS for its numpy check."""
    script = folder / f"{folder.name}_example.py"
    proc = subprocess.run([sys.executable, str(script), "--size", "small"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "PASS" in proc.stdout and "FAIL" not in proc.stdout
