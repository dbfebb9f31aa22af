"""The code base passes `ruff check` and `mypy --strict` with the settings in pyproject.toml."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_check_is_clean():
    """ruff finds nothing in the package, tests, benches, examples and the notebook builder."""
    ruff = Path(sys.executable).with_name("ruff")
    result = subprocess.run([str(ruff), "check", "--output-format", "concise", "ptort_lab", "tests", "bench",
                             "examples", "notebooks/build.py"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_is_clean():
    """mypy (strict, settings in pyproject.toml) finds nothing in the package, which ships py.typed."""
    mypy = Path(sys.executable).with_name("mypy")
    result = subprocess.run([str(mypy), "--no-incremental"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (ROOT / "ptort_lab" / "py.typed").is_file()
