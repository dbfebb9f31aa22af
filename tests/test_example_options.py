"""The examples' command-line options: a value that cannot run is a one-line usage error (exit status 2, no traceback)
before anything runs, and a ptort_lab error that still escapes an example prints its message, not a traceback."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted(p for p in (ROOT / "examples").iterdir() if p.is_dir() and list(p.glob("*_example.py")))


def _script(name: str) -> Path:
    return ROOT / "examples" / name / f"{name}_example.py"


def _run(name: str, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(_script(name)), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, **(env or {})})


CORES_OVER = "--cores {n} is more than machine 'ascend_910b' has (24 AI cores); use --cores 24 or fewer"

BAD_OPTIONS = [
    # csp_pipeline: 0 was silently the --size value, -1 and huge sizes ended in numpy tracebacks
    ("csp_pipeline", ["--size", "small", "--tiles", "0"], "--tiles must be >= 1, got 0"),
    ("csp_pipeline", ["--size", "small", "--tile-size", "0"], "--tile-size must be >= 1, got 0"),
    ("csp_pipeline", ["--size", "small", "--tiles", "-1"], "--tiles must be >= 1, got -1"),
    ("csp_pipeline", ["--size", "small", "--tile-size", "-4"], "--tile-size must be >= 1, got -4"),
    ("csp_pipeline", ["--depth", "0"], "--depth must be >= 1, got 0"),
    ("csp_pipeline", ["--tiles", "700000", "--tile-size", "1"],
     "--tiles 700000 makes 2,100,000 tasks in the data-parallel run (3 a tile), more than the 2,000,000 the simulator "
     "lists (ptort_lab.dsl.steps.MAX_TASKS); use --tiles 666666 or fewer (a few thousand show the pipeline's steady "
     "state)"),
    # --cores 0 meant one core (lightning_indexer) or the size's count (moe); past 24 or negative: tracebacks
    ("moe", ["--size", "small", "--cores", "0"], "--cores must be >= 1, got 0"),
    ("moe", ["--size", "small", "--cores", "-1"], "--cores must be >= 1, got -1"),
    ("moe", ["--size", "small", "--cores", "25"], CORES_OVER.format(n=25)),
    ("lightning_indexer", ["--size", "small", "--cores", "0"], "--cores must be >= 1, got 0"),
    ("lightning_indexer", ["--size", "small", "--cores", "-1"], "--cores must be >= 1, got -1"),
    ("lightning_indexer", ["--size", "small", "--cores", "100"], CORES_OVER.format(n=100)),
    # flash_attention: --cores 30 was accepted at --seq 512 (4 tiles) and a traceback at --seq 4096
    ("flash_attention", ["--seq", "512", "--cores", "30", "--timing-only"], CORES_OVER.format(n=30)),
    ("flash_attention", ["--seq", "4096", "--cores", "30", "--timing-only"], CORES_OVER.format(n=30)),
    ("flash_attention", ["--cores", "30"], CORES_OVER.format(n=30)),  # checked before --seq is asked for
    ("flash_attention", ["--seq", "512", "--depth", "1000000000000", "--variant", "pipeline", "--timing-only"],
     "--depth 1000000000000 is more than 384: the pipeline's alpha and rowsum channels are UB queues of [64, 1] F32 "
     "slots, and 384 of each fill an AIV's 192 KiB UB (fewer fit next to the kernels' tiles); use a few slots "
     "(default 4)"),
]


@pytest.mark.parametrize("name, args, message", BAD_OPTIONS, ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_a_bad_option_is_a_usage_error(name: str, args: list[str], message: str) -> None:
    """Exit status 2, argparse's one-line error naming the option and its rule, nothing run, no traceback."""
    proc = _run(name, *args)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert f"{name}_example.py: error: {message}\n" in proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""


def test_csp_pipeline_refuses_a_size_that_would_not_fit_in_host_memory() -> None:
    """--tiles 100000000 tried to allocate 2.98 TiB in numpy; it is refused with the bytes it needs and a size that
    fits (the host's memory decides how many tiles)."""
    proc = _run("csp_pipeline", "--size", "small", "--tiles", "100000000")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stdout == ""
    assert re.search(r"error: --tiles 100000000 of 64x64 would need about 13,107,200,000,000 bytes \(12,207\.0 GiB\) "
                     r"of host memory \(~32 bytes a tile element: the input, five tensors and the numpy reference\), "
                     r"more than this host's [\d,.]+ GiB; use --tiles [1-9]\d* or fewer at --tile-size 64\n$",
                     proc.stderr), proc.stderr


def test_flash_attention_refuses_a_check_that_would_not_fit_in_host_memory_and_points_at_timing_only() -> None:
    """With values, the numpy golden holds one head's S x S_KV float64 scores: --seq 1048576 would need terabytes."""
    proc = _run("flash_attention", "--seq", "1048576", "--variant", "pipeline")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr and proc.stdout == ""
    assert re.search(r"error: checking the values of --seq 1048576 --heads 1 --batch 1 would need about "
                     r"26,397,942,743,040 bytes \(24,585\.0 GiB\) of host memory \(the numpy golden's float64 scores "
                     r"and the inputs\), more than this host's [\d,.]+ GiB; add --timing-only \(the same cycles, no "
                     r"values\), or use a smaller --seq, --heads or --batch\n$", proc.stderr), proc.stderr


def test_the_largest_core_count_is_accepted() -> None:
    """--cores 24 (all of ascend_910b's AI cores) runs and passes."""
    proc = _run("lightning_indexer", "--size", "small", "--cores", "24")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "top-8, 24 cores (affinity on b)" in proc.stdout and proc.stdout.rstrip().endswith("PASS")


def test_moe_without_cores_uses_the_sizes_count() -> None:
    """Leaving --cores out (not 0) means the size's count: 4 at small."""
    proc = _run("moe", "--size", "small")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "top-2, 4 cores\n" in proc.stdout


ESCAPING = [
    # a tile the kernels cannot hold on chip: ptort_lab's CapacityError, found while the example runs
    ("csp_pipeline", ["--size", "small", "--tile-size", "200"], "CapacityError: kernel 'store_kernel' cannot fit",
     "Use a smaller tile than [200, 200]"),
    # a depth under the argparse bound whose UB queues do not fit next to the kernels' tiles
    ("flash_attention", ["--seq", "512", "--depth", "200", "--variant", "pipeline", "--timing-only"],
     "CapacityError: kernel 'softmax_first'", "Use a smaller tile"),
]


@pytest.mark.parametrize("name, args, first, hint", ESCAPING, ids=[e[0] for e in ESCAPING])
def test_a_ptort_lab_error_prints_its_message_without_a_traceback(name: str, args: list[str], first: str,
                                                                  hint: str) -> None:
    """Exit status 2 and the error's own lines (what, where, hint) on stderr; PTORT_TRACEBACK=1 keeps the traceback."""
    proc = _run(name, *args)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stderr.startswith(first) and "Traceback" not in proc.stderr
    assert f"  at {name}_example.py:" in proc.stderr and hint in proc.stderr
    shown = _run(name, *args, env={"PTORT_TRACEBACK": "1"})
    assert shown.returncode == 1 and "Traceback (most recent call last)" in shown.stderr and first in shown.stderr


RAISE_AT_EXECUTE = """
import runpy, sys
from ptort_lab import Program
from ptort_lab.errors import PtortValueError

def execute(self, *args, **kwargs):
    raise PtortValueError("a run refused for the test.", hint="The hint of the test.", locate=False)

Program.execute = execute
sys.argv = [sys.argv[1], "--size", "small"]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.mark.parametrize("folder", EXAMPLES, ids=lambda p: p.name)
def test_every_example_prints_an_escaping_ptort_lab_error_as_its_message(folder: Path) -> None:
    """Each example's ``__main__`` turns a PtortError into its message on stderr and exit status 2."""
    proc = subprocess.run([sys.executable, "-c", RAISE_AT_EXECUTE, str(_script(folder.name))], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stderr == "PtortValueError: a run refused for the test.\nThe hint of the test.\n"
