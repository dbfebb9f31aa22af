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


FLASH = ROOT / "examples" / "flash_attention" / "flash_attention_example.py"


def _flash(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(FLASH), *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_flash_attention_timing_only_prints_the_documented_lines_and_the_same_cycles_as_a_run_with_values():
    """``--timing-only`` skips the numpy work but not the schedule: the cycles equal the checked run's, and each
    variant prints its result line, its pipes with the bound, and no PASS/FAIL."""
    import re

    line = re.compile(r"^flash_attention variant=(\w+) seq=1024 heads=2 batch=1: (\d+) cycles = [\d.]+ us$", re.M)
    timed = _flash("--seq", "1024", "--heads", "2", "--cores", "4", "--timing-only")
    checked = _flash("--seq", "1024", "--heads", "2", "--cores", "4")
    assert timed.returncode == 0 and checked.returncode == 0, timed.stderr[-2000:] + checked.stderr[-2000:]
    assert line.findall(timed.stdout) == line.findall(checked.stdout)
    assert [v for v, _ in line.findall(timed.stdout)] == ["pipeline", "data_parallel"]
    pipes = re.findall(r"^  pipes: (.*)  bound by (\S+)", timed.stdout, re.M)
    assert len(pipes) == 2
    for busy, bound in pipes:
        shares = dict(re.findall(r"(\S+) (\d+)%", busy))
        assert {"AIC.CUBE", "AIC.MTE2", "AIV0.V", "AIV1.V", "HBM"} <= shares.keys()
        assert all(name in shares for name in bound.split("+"))
        assert int(shares[bound.split("+")[0]]) == max(int(v) for v in shares.values())
    assert "PASS" not in timed.stdout and checked.stdout.rstrip().endswith("PASS")


def test_flash_attention_refuses_a_sequence_that_is_not_a_whole_number_of_blocks():
    """A bad --seq is a usage error naming the rule, not a traceback."""
    proc = _flash("--seq", "1000", "--timing-only")
    assert proc.returncode == 2
    assert "--seq 1000 must be a positive multiple of --block 256" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_flash_attention_with_more_keys_than_queries_matches_numpy():
    """``--seq-kv``: 256 queries attend to 512 keys (2 query tiles x 2 KV blocks); Y is checked against the float64
    golden, and the result line names both lengths."""
    proc = _flash("--seq", "256", "--seq-kv", "512", "--cores", "2")
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert proc.stdout.count("flash_attention variant=") == 2
    assert "flash_attention variant=pipeline seq=256 seq_kv=512 heads=1 batch=1: " in proc.stdout
    assert "2 query tiles x 2 KV blocks on 2 cores" in proc.stdout
    assert proc.stdout.rstrip().endswith("PASS")


def test_flash_attention_refuses_a_key_length_that_is_not_a_whole_number_of_blocks():
    proc = _flash("--seq", "256", "--seq-kv", "300", "--timing-only")
    assert proc.returncode == 2
    assert "--seq-kv 300 must be a positive multiple of --block 256" in proc.stderr
    assert "Traceback" not in proc.stderr
