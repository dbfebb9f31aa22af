"""The sweep cache on disk: one small JSON file per result, keyed by the content hash of the program that ran.

Layout under the cache directory (``default_cache_dir()``: ``$PTORT_LAB_CACHE/sweeps``, else
``$XDG_CACHE_HOME/ptort_lab/sweeps``, else ``~/.cache/ptort_lab/sweeps``)::

    v1/results/ab/ab12....json   {"format": 1, "key": <program key>, "row": {...}}   one row of a SweepResult
    v1/points/cd/cd34....json    {"format": 1, "key": <point key>, "program": <program key>}

A *program key* hashes what ran (``keys.program_key``); a *point key* hashes what was asked (the builder, its knobs
and options), so a rerun finds its rows without building anything. Every file is written to a temporary file beside
it and renamed into place, so an interrupted write leaves no half-written entry. An entry that cannot be read back
(truncated by a crash, edited by hand, nested too deeply for json, or not a regular file of at most
``MAX_ENTRY_BYTES``: a FIFO, a symlink, a huge file, which are never read) is ignored, recomputed and replaced, with
one warning per sweep; so is a row holding a value no run gives (``_row_ok``: a negative count, NaN, a bool, a
percentage over 100, a speedup that is not its cycles' ratio, knobs other than the point's). An entry that a worker
process read counts the same: the worker hands it to the notebook (``take_corrupt``), which warns of it with its
own. A cache that cannot be written (a read-only or full disk) only warns: the sweep still runs.
"""
from __future__ import annotations

import errno
import json
import math
import numbers
import os
import re
import stat
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import PtortTypeError, PtortValueError

if TYPE_CHECKING:
    from ..knobs import Knobs

FORMAT = 1
_VERSION_DIR = f"v{FORMAT}"
_KEY_CHARS = frozenset("0123456789abcdef")
ROW_INTS = ("depth", "tiles", "cores")  # the row's knob values besides its tile: ints >= 1


class SweepCacheWarning(UserWarning):
    """The sweep cache had an unreadable entry (recomputed and replaced) or could not be written."""


def default_cache_dir() -> Path:
    """``$PTORT_LAB_CACHE/sweeps``, else ``$XDG_CACHE_HOME/ptort_lab/sweeps``, else ``~/.cache/ptort_lab/sweeps``."""
    root = os.environ.get("PTORT_LAB_CACHE")
    if root:
        return Path(root).expanduser() / "sweeps"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ptort_lab" / "sweeps"


@dataclass(frozen=True)
class CacheInfo:
    """What the sweep cache at ``path`` holds: results (rows), points (what was asked -> its result), bytes."""

    path: Path
    results: int
    points: int
    bytes: int

    def __str__(self) -> str:
        return (f"sweep cache {self.path}: {self.results:,} results, {self.points:,} points, "
                f"{_size_text(self.bytes)} (clear it with ptort_lab.sweeps.clear_cache())")

    def __repr__(self) -> str:
        return str(self)


def _size_text(n: int) -> str:
    """``512 bytes``, ``5.0 KB``, ``2.1 MB``."""
    if n < 1024:
        return f"{n:,} bytes"
    size = n / 1024
    for unit in ("KB", "MB"):
        if size < 1024:
            return f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def _cache_path(path: Any, api: str) -> Path:
    """The cache folder ``path`` names (None: ``default_cache_dir()``); a typed error for anything else."""
    if path is None:
        return default_cache_dir()
    example = f"{api}() (the default cache) or {api}('path/to/folder')"
    if not isinstance(path, (str, os.PathLike)):
        raise PtortTypeError(f"{api}(path) takes a folder's path (a str or pathlib.Path) or None, got "
                             f"{type(path).__name__} {path!r}.", hint=f"Call {example}.")
    text = os.fspath(path)
    if not isinstance(text, str):  # a bytes PathLike
        raise PtortTypeError(f"{api}(path) takes a str or pathlib.Path, got a bytes path {text!r}.",
                             hint=f"Decode it first (os.fsdecode(path)), or call {example}.")
    if not text.strip():  # Path("") is the current folder: clear_cache("") must not empty ./v1
        raise PtortValueError(f"{api}(path) got {text!r}, which names no folder.", hint=f"Call {example}.")
    if "\x00" in text:
        raise PtortValueError(f"{api}(path) got {text!r}, which holds a NUL character (no file name can).",
                              hint=f"Call {example}.")
    return cache_folder(Path(text).expanduser())


def cache_folder(path: Path) -> Path:
    """The sweep cache that ``path`` names: ``path`` itself, or ``path/sweeps`` when ``path`` is the root that
    PTORT_LAB_CACHE names (the sweep cache is its ``sweeps`` folder) and holds no cache of its own."""
    try:
        if not (path / _VERSION_DIR).is_dir() and (path / "sweeps" / _VERSION_DIR).is_dir():
            return path / "sweeps"
    except OSError:
        pass
    return path


# The files the cache writes: v1/<kind>/<first two hex digits of the key>/<64-hex key>.json, and the temporary
# file of a write killed before its rename (tempfile.mkstemp(prefix=".tmp-", suffix=".json")). Nothing else under
# the folder is the cache's: cache_info() counts and clear_cache() deletes only these.
_KINDS = ("results", "points")
_TEMP_NAME = re.compile(r"\.tmp-[a-z0-9_]{8}\.json")


MAX_ENTRY_BYTES = 16 * 2**20  # an entry is about 2 KB: a file past 16 MiB is not one (it is never read)
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


class NotAnEntry(OSError):
    """What is at an entry's path is not a regular file of at most MAX_ENTRY_BYTES (so it is not read)."""


def read_entry(path: Path) -> bytes:
    """The bytes of the entry file ``path``: a regular file, not a symlink (a link to /dev/zero would never end), not
    a FIFO (opening one blocks until something writes to it), not bigger than MAX_ENTRY_BYTES. NotAnEntry for
    anything else, FileNotFoundError when nothing is there, another OSError when it cannot be read."""
    st = os.lstat(path)
    if not stat.S_ISREG(st.st_mode) or st.st_size > MAX_ENTRY_BYTES:
        raise NotAnEntry(f"{path} is not a cache entry")
    # (no following a symlink, no waiting on a FIFO: the path may have been replaced since the lstat)
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as e:
        if e.errno in (errno.ELOOP, errno.ENXIO, errno.EISDIR):  # made a symlink, a socket or a folder meanwhile
            raise NotAnEntry(f"{path} is not a cache entry") from None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotAnEntry(f"{path} is not a cache entry")
        with os.fdopen(fd, "rb", closefd=False) as f:
            raw = f.read(MAX_ENTRY_BYTES + 1)
    finally:
        os.close(fd)
    if len(raw) > MAX_ENTRY_BYTES:  # (grew since the lstat)
        raise NotAnEntry(f"{path} is not a cache entry")
    return raw


def _is_entry(name: str, bucket: str) -> bool:
    return name.endswith(".json") and _valid_key(name[:-5]) and name[:2] == bucket


def _own_files(root: Path) -> Iterator[tuple[str, Path, bool]]:
    """(kind, path, is a temporary file) for every file the cache at ``root`` wrote: its temporary files (regular
    files), and whatever is at an entry's name but a folder (a FIFO or symlink there is an entry to a sweep, a corrupt
    one: ``read_entry``; removing it removes the link, never its target)."""
    for kind in _KINDS:
        folder = root / _VERSION_DIR / kind
        for bucket in _listing(folder):
            if len(bucket.name) != 2 or not set(bucket.name) <= _KEY_CHARS or not _is_plain_dir(bucket):
                continue
            for f in _listing(bucket):
                if _is_entry(f.name, bucket.name):
                    if not _is_plain_dir(f):
                        yield kind, f, False
                elif _TEMP_NAME.fullmatch(f.name) and _is_plain_file(f):
                    yield kind, f, True


def _listing(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir()) if _is_plain_dir(folder) else []
    except OSError:  # unreadable, or removed meanwhile
        return []


def _is_plain_dir(p: Path) -> bool:
    return p.is_dir() and not p.is_symlink()


def _is_plain_file(p: Path) -> bool:
    return p.is_file() and not p.is_symlink()


def cache_info(path: str | os.PathLike[str] | None = None) -> CacheInfo:
    """How many results and points the sweep cache at ``path`` (default ``default_cache_dir()``) holds, and its
    size on disk (only the cache's own entries count: other files in the folder are not its)."""
    root = _cache_path(path, "cache_info")
    counts = {kind: 0 for kind in _KINDS}
    size = 0
    for kind, f, temporary in _own_files(root):
        if temporary:  # a write that was killed before its rename: no entry
            continue
        counts[kind] += 1
        try:
            size += f.lstat().st_size  # (a symlink's own size: its target is not the cache's)
        except OSError:
            continue
    return CacheInfo(root, counts["results"], counts["points"], size)


def clear_cache(path: str | os.PathLike[str] | None = None) -> int:
    """Delete every entry of the sweep cache at ``path`` (default ``default_cache_dir()``); returns how many
    results and points were removed. Only the cache's own files go (``v1/results/ab/<key>.json`` and
    ``v1/points/cd/<key>.json``, and temporary files of killed writes; a FIFO or symlink at an entry's name, which a
    sweep reads as a corrupt entry, goes too: the link, never its target); any other file under the folder stays,
    and so do the folders that hold one (a folder of the cache is removed once it is empty)."""
    root = _cache_path(path, "clear_cache")
    removed = 0
    failed: list[tuple[Path, OSError]] = []
    for _, f, temporary in list(_own_files(root)):
        try:
            f.unlink()
        except FileNotFoundError:  # another process cleared it meanwhile
            continue
        except OSError as e:
            failed.append((f, e))
            continue
        removed += not temporary
    version = root / _VERSION_DIR
    for kind in _KINDS:  # the cache's folders, deepest first, each only if nothing is left in it
        for bucket in _listing(version / kind):
            if len(bucket.name) == 2 and set(bucket.name) <= _KEY_CHARS:
                _remove_if_empty(bucket)
        _remove_if_empty(version / kind)
    _remove_if_empty(version)
    if failed:
        first, why = failed[0]
        raise PtortValueError(
            f"clear_cache() removed {removed:,} entries but could not delete {len(failed):,} of the cache's files "
            f"(first: {first}: {type(why).__name__}: {why.strerror or why}).",
            hint=f"Check that you may write to {version} (its owner and permissions), then call clear_cache() again.")
    return removed


def _remove_if_empty(folder: Path) -> None:
    if not _is_plain_dir(folder):
        return
    try:
        folder.rmdir()  # fails, as it should, when anything is left in it
    except OSError:
        pass


def _valid_key(key: Any) -> bool:
    return isinstance(key, str) and len(key) == 64 and set(key) <= _KEY_CHARS


def _count(v: Any) -> bool:
    """A count (cycles, bytes, cores used): an int >= 0, never a bool."""
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _knob(v: Any) -> bool:
    """A knob value (depth, tiles, cores, a tile's side): an int >= 1, never a bool."""
    return _count(v) and v >= 1


def _finite(v: Any) -> bool:
    """A real number that JSON gives back (int or float), finite, never a bool."""
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)


def _time(v: Any) -> bool:
    return _finite(v) and v >= 0


def _percent(v: Any) -> bool:
    return _finite(v) and 0 <= v <= 100


# One run's fields of a row (worker.row_of), prefixed "pipeline_" or "data_parallel_", with what each must be:
# cycles and bytes are counts, µs a time, overlap a share of the run's makespan, cores the cores its spans ran on.
_RUN_FIELDS: dict[str, Callable[[Any], bool]] = {
    "cycles": _count, "us": _time, "overlap_pct": _percent, "cores": _count, "bytes_moved": _count}
_RUN_PREFIXES = ("pipeline", "data_parallel")
# A row's keys in the order worker.row_of gives them (a row read back is put in it: the files store keys sorted).
ROW_ORDER = ("depth", "tile", "tiles", "cores", *(f"{p}_{n}" for n in ("cycles", "overlap_pct") for p in _RUN_PREFIXES),
             "speedup", *(f"{p}_{n}" for p in _RUN_PREFIXES for n in ("us", "cores", "bytes_moved")))
ROW_KEYS = frozenset(ROW_ORDER)


def _row_ok(row: Any, knobs: Knobs | None = None) -> bool:
    """A row as the sweep writes it (``worker.row_of``), each field checked by its meaning: the knobs (the point's
    depth, tile and tiles, when ``knobs`` is given), each run's figures (all None for a run the mode leaves out)
    and the speedup (the data-parallel cycles over the pipeline's). A row edited by hand fails."""
    if not isinstance(row, dict) or set(row) != ROW_KEYS:
        return False
    tile = row["tile"]
    if not (all(_knob(row[k]) for k in ROW_INTS) and isinstance(tile, list) and len(tile) == 2
            and all(_knob(v) for v in tile)):
        return False
    if knobs is not None and (row["depth"], tuple(tile), row["tiles"]) != (knobs.depth, knobs.tile, knobs.tiles):
        return False  # (cores may differ: equal cores, or a workload's own dispatch, decide the cores that ran)
    return all(_run_ok(row, prefix) for prefix in _RUN_PREFIXES) and _speedup_ok(row)


def _run_ok(row: dict[str, Any], prefix: str) -> bool:
    """One run's fields: all None (the mode left the run out), or each what a run gives."""
    values = {name: row[f"{prefix}_{name}"] for name in _RUN_FIELDS}
    if all(v is None for v in values.values()):
        return True
    return all(check(values[name]) for name, check in _RUN_FIELDS.items())


def _speedup_ok(row: dict[str, Any]) -> bool:
    """The speedup is what ``Comparison.speedup`` gives: None without both runs (or with a 0-cycle pipeline),
    else the data-parallel cycles over the pipeline's."""
    p, d, speedup = row["pipeline_cycles"], row["data_parallel_cycles"], row["speedup"]
    if p is None or d is None or p == 0:
        return speedup is None
    return _finite(speedup) and math.isclose(speedup, d / p, rel_tol=1e-12)


@dataclass
class SweepCache:
    """One sweep's view of the cache directory ``root``: reads and atomic writes, the unreadable entries met, and
    whether writing failed (then the sweep goes on uncached)."""

    root: Path
    read_only: bool = False
    corrupt: list[Path] = field(default_factory=list)
    write_error: str | None = None  # the first write that failed, with the rows saved and not (write_summary)
    saved: int = 0  # rows saved by this sweep
    unsaved: int = 0  # rows this sweep could not save
    _first_error: OSError | None = None

    def _file(self, kind: str, key: str) -> Path:
        return self.root / _VERSION_DIR / kind / key[:2] / f"{key}.json"

    def _read(self, kind: str, key: str) -> dict[str, Any] | None:
        """The entry ``key`` of ``kind``, or None: missing, or corrupt (then counted, recomputed and replaced)."""
        path = self._file(kind, key)
        try:
            raw = read_entry(path)
        except FileNotFoundError:  # missing
            return None
        except NotAnEntry:  # a FIFO, a symlink, a folder or a file far bigger than an entry: never read
            self._bad(path)
            return None
        except OSError:  # unreadable: then it is recomputed, and replaced if the folder allows
            return None
        try:
            data = json.loads(raw.decode("utf-8"))
        except (ValueError, RecursionError):  # not JSON (a write cut short by a crash, an edit), or nested deeper
            self._bad(path)                   # than json can read
            return None
        if not isinstance(data, dict) or data.get("format") != FORMAT or data.get("key") != key:
            self._bad(path)
            return None
        return data

    def _bad(self, path: Path) -> None:
        if path not in self.corrupt:  # a point looked up, then its program: one entry, counted once
            self.corrupt.append(path)

    def take_corrupt(self) -> list[str]:
        """The unreadable entries met since the last call (a worker hands them to the notebook, which warns)."""
        taken = [str(p) for p in self.corrupt]
        self.corrupt.clear()  # (a worker's cache serves several tasks: each entry is handed over once)
        return taken

    def add_corrupt(self, paths: list[str]) -> None:
        """Count unreadable entries a worker met, as if met here (an entry met here too is counted once)."""
        for path in paths:
            self._bad(Path(path))

    def result(self, program_key: str, knobs: Knobs | None = None) -> dict[str, Any] | None:
        """The row stored for ``program_key`` (its tile as a tuple), or None; ``knobs``: the point's, which the
        row's must be (a row that is not is counted as edited by hand, as any row no run gives)."""
        data = self._read("results", program_key)
        if data is None:
            return None
        row = data.get("row")
        if not _row_ok(row, knobs):
            self._bad(self._file("results", program_key))
            return None
        assert isinstance(row, dict)
        return {**{k: row[k] for k in ROW_ORDER}, "tile": tuple(row["tile"])}  # (a computed row's key order)

    def program_of(self, point_key: str) -> str | None:
        """The program key a point key led to last time, or None."""
        data = self._read("points", point_key)
        if data is None:
            return None
        program = data.get("program")
        if not _valid_key(program):
            self._bad(self._file("points", point_key))
            return None
        assert isinstance(program, str)
        return program

    def lookup(self, point_key: str, knobs: Knobs | None = None) -> tuple[str, dict[str, Any]] | None:
        """(program key, row) for a point asked before (``knobs``: its knobs, checked against the row's), or None."""
        program = self.program_of(point_key)
        if program is None:
            return None
        row = self.result(program, knobs)
        return (program, row) if row is not None else None

    def store(self, program_key: str, row: dict[str, Any], point_key: str | None) -> None:
        """Save ``row`` under ``program_key`` (and the point's link to it), each file whole or not at all."""
        if self.read_only:
            return
        # Every row is tried (a write that failed once, a folder removed meanwhile or a full disk that was freed,
        # says nothing about the next), and the rows saved and not are counted for the warning.
        try:
            self._write("results", program_key, {"format": FORMAT, "key": program_key,
                                                 "row": {**row, "tile": list(row["tile"])}})
            if point_key is not None:
                self._write("points", point_key, {"format": FORMAT, "key": point_key, "program": program_key})
        except OSError as e:
            self.unsaved += 1
            if self._first_error is None:
                self._first_error = e
        else:
            self.saved += 1
        self.write_error = self.write_summary()

    def write_summary(self) -> str | None:
        """``3 of 10 rows could not be saved (the disk is full: OSError: ...)``, or None when every row was."""
        e = self._first_error
        if e is None or not self.unsaved:
            return None
        return (f"{self.unsaved} of {self.saved + self.unsaved} rows could not be saved, {self.saved} were "
                f"({_write_reason(e)}: {type(e).__name__}: {e})")

    def _write(self, kind: str, key: str, data: dict[str, Any]) -> None:
        path = self._file(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
        except FileNotFoundError:  # the folder was removed just now (clear_cache() in another process): once more
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".json", dir=path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(data, f, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:  # an interrupt or a full disk: no half-written entry, no stray temporary file
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise

    def warn(self) -> None:
        """One warning for what went wrong with the cache during the sweep (unreadable entries, failed writes)."""
        if self.corrupt:
            listed = ", ".join(str(p) for p in self.corrupt[:3]) + (" ..." if len(self.corrupt) > 3 else "")
            warnings.warn(f"sweep cache: {len(self.corrupt)} unreadable entr{'y' if len(self.corrupt) == 1 else 'ies'} "
                          f"ignored, recomputed and replaced ({listed}).", SweepCacheWarning, stacklevel=4)
        e = self._first_error
        if e is not None and self.unsaved:
            warnings.warn(f"sweep cache: could not write to {self.root} ({_write_reason(e)}: {type(e).__name__}: "
                          f"{e}); {self.unsaved} of {self.saved + self.unsaved} rows computed were not saved, "
                          f"{self.saved} were. {_write_fix(e)}", SweepCacheWarning, stacklevel=4)


def _write_reason(e: OSError) -> str:
    """Why a write failed, in words."""
    if e.errno == errno.ENOSPC or e.errno == errno.EDQUOT:
        return "the disk is full"
    if e.errno == errno.ENOENT:
        return "a folder of the cache was removed while the sweep wrote to it"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "the folder is not writable"
    if e.errno in (errno.ENOTDIR, errno.EEXIST):
        return "the path is a file, not a folder"
    return "the write failed"


def _write_fix(e: OSError) -> str:
    if e.errno == errno.ENOSPC or e.errno == errno.EDQUOT:
        return ("Free some space (ptort_lab.sweeps.clear_cache() empties the sweep cache) and run the same sweep "
                "again: only the rows not saved are computed again.")
    if e.errno == errno.ENOENT:
        return "Run the same sweep again to save them (was clear_cache() called while it ran?)."
    return "Set PTORT_LAB_CACHE to a writable folder, or pass cache=False."


__all__ = ["SweepCache", "CacheInfo", "SweepCacheWarning", "cache_info", "clear_cache", "default_cache_dir",
           "FORMAT"]
