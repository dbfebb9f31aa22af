"""The spec example prints the spec's Expected Output, section by section, and checks its numbers."""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "csp_pipeline" / "csp_pipeline_example.py"
SPEC = ROOT.parent / "shared" / "spec" / "csp_pipeline_README.md"

# The "Expected Output" block of the spec README, up to its free-form summary ("...").
EXPECTED = """\
======================================================================
CSP Pipeline Example - PTO-RT v9
======================================================================

Configuration:
  Tile size: 128x128
  Number of tiles: 8

Kernels (@kernel with tl.* primitives):
  load_kernel: tl.load, tl.cast, tl.store
  compute_kernel: tl.load, tl.mul, tl.store
  store_kernel: tl.load, tl.cast, tl.store

======================================================================
1. CSP Pipeline Pattern
======================================================================

Pipeline created:
  Channels: load_to_compute (depth=2)
            compute_to_store (depth=2)
  Processes: loader -> computer -> storer
Pipeline structure: Pipeline

Kernel IR (traced from tl.* primitives):
  load_kernel: 3 operations
    load src
    cast F16
    store dst

======================================================================
2. Simple CSP Workload (with P.pipe())
======================================================================
Workload created: Workload

======================================================================
3. Data-Parallel Equivalent (for comparison)
======================================================================
Program compiled: Program
Tasks enumerated: 24
Task breakdown:
  load_kernel: 8 tasks
  compute_kernel: 8 tasks
  store_kernel: 8 tasks

======================================================================
4. Event Synchronization
======================================================================

Event Synchronization Demo:
  Created events: load_done, compute_done
  Recorded: load_done
  Query load_done: True
  Synchronized on: load_done

======================================================================
5. Execution
======================================================================
Executing data-parallel workload...
Execution complete!

======================================================================
CSP Pipeline Example Summary
======================================================================

Key v9 CSP patterns demonstrated:
"""


def _run(*cmd: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120)


@pytest.fixture(scope="module")
def output() -> str:
    proc = _run(sys.executable, str(EXAMPLE))
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_example_prints_expected_output(output):
    """Everything up to the free-form summary is exactly the spec's Expected Output."""
    assert output.startswith(EXPECTED)


def test_expected_block_matches_the_spec_file():
    """The copy above is the spec's own block (checked whenever the shared spec is next to the repo)."""
    if not SPEC.exists():
        pytest.skip(f"spec not found at {SPEC}")
    block = SPEC.read_text().split("## Expected Output", 1)[1].split("```", 2)[1]
    spec_lines = block.strip("\n").splitlines()[:-1]  # drop the trailing "..."
    assert "\n".join(spec_lines).strip() == EXPECTED.strip()


def test_example_checks_both_runs_against_numpy(output):
    """Both the CSP pipeline and the data-parallel run report an exact match with numpy."""
    results = re.findall(r"^  (CSP pipeline|Data-parallel)\s+max abs error (\S+): (PASS|FAIL)", output, re.M)
    assert results == [("CSP pipeline", "0", "PASS"), ("Data-parallel", "0", "PASS")]
    assert re.search(r"CSP pipeline .*\(24 tasks, \d+ cycles", output)


def test_make_run_target_prints_the_same():
    """`make -C examples/csp_pipeline run` runs the same example."""
    proc = _run("make", "-s", "-C", "examples/csp_pipeline", "run", f"PYTHON={sys.executable}")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(EXPECTED)
