"""Bug hunt 32b, the sweep cache's files: an entry that nests too deeply for json, a FIFO, a symlink (to /dev/zero or
anywhere) or a file far bigger than any entry is a corrupt entry like any other: warned of once, recomputed and
replaced, never a hang, a bare RecursionError or MemoryError, and never a cache that fails every later sweep.
clear_cache() removes what the sweep would read as an entry, cache_info() counts it by its own size."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest

from ptort_lab.explore import Knobs
from ptort_lab.spec_pipeline import build
from ptort_lab.sweeps import cache_info, clear_cache, run_sweep
from ptort_lab.sweeps.cache import MAX_ENTRY_BYTES

KNOBS = Knobs(tile=(64, 64))


def sweep(cache: Path | bool) -> tuple[Any, list[str]]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_sweep(build, depth=[1, 2], tiles=[2], knobs=KNOBS, executor="serial", cache=cache,
                           progress=False)
    return result, [f"{w.category.__name__}: {w.message}" for w in caught]


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    """A cache holding the two rows of ``sweep``."""
    result, caught = sweep(tmp_path)
    assert (result.cache.reused, result.cache.computed, caught) == (0, 2, [])
    return tmp_path


def results(cache: Path) -> list[Path]:
    return sorted((cache / "v1" / "results").glob("*/*.json"))


def warned(path: Path) -> list[str]:
    return [f"SweepCacheWarning: sweep cache: 1 unreadable entry ignored, recomputed and replaced ({path})."]


def check_replaced(cache: Path, entry: Path) -> None:
    """A sweep over the cache warns of ``entry`` once, recomputes its row, replaces it; the next sweep is clean."""
    result, caught = sweep(cache)
    assert caught == warned(entry)
    assert (result.cache.reused, result.cache.computed) == (1, 1)
    assert result.rows == sweep(False)[0].rows
    assert entry.is_file() and not entry.is_symlink()
    assert json.loads(entry.read_text())["format"] == 1
    again, caught = sweep(cache)
    assert (again.cache.reused, again.cache.computed, caught) == (2, 0, [])


def test_deeply_nested_entry_is_corrupt_not_a_recursion_error(cache: Path) -> None:
    entry = results(cache)[0]
    entry.write_text("[" * 100_000)
    check_replaced(cache, entry)


def test_entry_not_utf8_is_corrupt(cache: Path) -> None:
    entry = results(cache)[0]
    entry.write_bytes(b"\xff\xfe{}")
    check_replaced(cache, entry)


def test_huge_entry_is_corrupt_without_being_read(cache: Path) -> None:
    """A valid entry padded past MAX_ENTRY_BYTES (16 MiB; entries are about 2 KB) is refused by its size."""
    assert MAX_ENTRY_BYTES == 16 * 2**20
    entry = results(cache)[0]
    text = entry.read_text()
    with open(entry, "w") as f:
        f.write(text)
        f.write(" " * (MAX_ENTRY_BYTES + 1 - len(text)))
    check_replaced(cache, entry)


def test_entry_at_the_cap_is_read(cache: Path) -> None:
    entry = results(cache)[0]
    text = entry.read_text()
    entry.write_text(text + " " * (MAX_ENTRY_BYTES - len(text)))
    result, caught = sweep(cache)
    assert (result.cache.reused, result.cache.computed, caught) == (2, 0, [])


def test_symlinked_entry_is_corrupt(cache: Path, tmp_path: Path) -> None:
    """A symlink is never followed, even to a valid entry: the link is replaced by a file, its target kept."""
    entry = results(cache)[0]
    target = tmp_path / "elsewhere.json"
    target.write_text(entry.read_text())
    entry.unlink()
    entry.symlink_to(target)
    check_replaced(cache, entry)
    assert target.read_text() == entry.read_text()


def test_fifo_entry_is_corrupt_and_never_blocks(cache: Path) -> None:
    entry = results(cache)[0]
    entry.unlink()
    os.mkfifo(entry)
    outcome: list[Any] = []
    worker = threading.Thread(target=lambda: outcome.append(sweep(cache)), daemon=True)
    worker.start()
    worker.join(60)
    if worker.is_alive():  # blocked opening the FIFO: open its other end, so that the thread ends
        os.close(os.open(entry, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(60)
        pytest.fail("the sweep blocked on a FIFO in the cache")
    result, caught = outcome[0]
    assert caught == warned(entry)
    assert (result.cache.reused, result.cache.computed) == (1, 1)
    assert entry.is_file()


def test_entry_linked_to_dev_zero_is_corrupt(cache: Path) -> None:
    """A symlink to /dev/zero (an endless file): refused at once, in a process whose memory is capped so that a
    read of it could only fail."""
    entry = results(cache)[0]
    entry.unlink()
    entry.symlink_to("/dev/zero")
    script = textwrap.dedent(f"""
        import resource, warnings
        resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))
        from ptort_lab.explore import Knobs
        from ptort_lab.spec_pipeline import build
        from ptort_lab.sweeps import run_sweep
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            r = run_sweep(build, depth=[1, 2], tiles=[2], knobs=Knobs(tile=(64, 64)), executor="serial",
                          cache={str(cache)!r}, progress=False)
        print(r.cache.reused, r.cache.computed, [str(w.message) for w in caught])
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.stdout.strip() == (f"1 1 ['sweep cache: 1 unreadable entry ignored, recomputed and replaced "
                                   f"({entry}).']"), done.stderr[-2000:]
    assert entry.is_file() and not entry.is_symlink()


def test_corrupt_point_entry_is_corrupt(cache: Path) -> None:
    """The point entries (what was asked -> its program) are read the same way."""
    point = sorted((cache / "v1" / "points").glob("*/*.json"))[0]
    point.write_text("[" * 100_000)
    result, caught = sweep(cache)
    assert caught == warned(point)
    assert result.rows == sweep(False)[0].rows
    assert json.loads(point.read_text())["format"] == 1


def test_clear_cache_and_cache_info_count_what_the_sweep_reads_as_entries(cache: Path, tmp_path: Path) -> None:
    """A FIFO or symlink at an entry's name is an entry to the sweep (corrupt): cache_info() counts it by its own
    size (never its target's), clear_cache() removes it (never its target)."""
    first, second = results(cache)
    target = tmp_path / "target.json"
    target.write_text("x" * 10_000)
    first.unlink()
    first.symlink_to(target)
    second.unlink()
    os.mkfifo(second)
    points = sorted((cache / "v1" / "points").glob("*/*.json"))
    expected = os.lstat(first).st_size + sum(p.stat().st_size for p in points)  # (a FIFO's size is 0)
    info = cache_info(cache)
    assert (info.results, info.points, info.bytes) == (2, 2, expected)
    assert clear_cache(cache) == 4
    assert not (cache / "v1").exists()
    assert target.read_text() == "x" * 10_000
