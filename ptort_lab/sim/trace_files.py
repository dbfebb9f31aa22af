"""The trace file format's name and version, and what writing (``export``) and reading (``load``) share: paths,
OS errors in plain words, and the short forms of values that messages show."""
from __future__ import annotations

import errno
import os
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

from ..errors import PtortTypeError, PtortValueError

FORMAT = "ptort-chrome-trace"  # otherData.ptort.format
VERSION = 1  # otherData.ptort.version: files of a newer version are refused by name


def short(v: Any, n: int = 60) -> str:
    """``repr(v)``, cut to ``n`` characters for a message."""
    r = repr(v)
    return r if len(r) <= n else r[:n - 3] + "..."


class Missing:
    """Stands for a key the file lacks, so messages say "... is missing"."""

    def __repr__(self) -> str:
        return "missing"


MISSING = Missing()


class Count:
    """A list shown by its length in a message ("is a list of 3")."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __repr__(self) -> str:
        return f"a list of {self.n}"


class WholeRun(NamedTuple):
    """The run a trace is part of, when it holds only its first tiles (``execute(steady_state=True)`` keeps the
    trace of a short run and extrapolates the figures): ``Trace.whole_run``, kept in the saved file
    (``otherData.ptort.whole_run``) so that a loaded trace is never taken for the whole run."""

    tiles: int  # the tiles of the whole run
    traced_tiles: int  # the tiles the trace holds
    cycles: int  # the whole run's makespan (its trace ends much earlier)
    overlap_pct: float  # the whole run's overlap
    note: str = ""  # how its figures were found (SteadyState.note)

    def said(self) -> str:
        """``4-tile trace of a 10,000-tile run (1,000,060 cycles)`` for messages and notes."""
        return f"{self.traced_tiles:,}-tile trace of a {self.tiles:,}-tile run ({self.cycles:,} cycles)"


def whole_run_of(trace: Any) -> WholeRun | None:
    """``trace.whole_run`` (None for a trace of a whole run, and for a Trace made before the field existed)."""
    w = getattr(trace, "whole_run", None)
    return w if isinstance(w, WholeRun) else None


class NsClock:
    """Cycles -> integer ns, ``round(cycles * 1e9 / clock_hz)`` with halves rounded up, in exact integer math (the
    time grid of the file's ``ts``/``dur``: ``export`` writes them, ``load`` checks them against the cycles)."""

    def __init__(self, clock_hz: float) -> None:
        ratio = Fraction(10**9) / Fraction(clock_hz)  # ns per cycle, exactly (a float clock is a dyadic rational)
        self._num2, self._den, self._den2 = 2 * ratio.numerator, ratio.denominator, 2 * ratio.denominator

    def ns(self, cycles: int) -> int:
        # floor(c * p / q + 1/2) == (2 c p + q) // 2 q
        return (cycles * self._num2 + self._den) // self._den2

    def terms(self) -> tuple[int, int, int]:
        """``(a, b, c)`` with ``ns(cycles) == (cycles * a + b) // c``, for a loop over millions of records that
        inlines ``ns`` (a call per record costs more than the arithmetic)."""
        return self._num2, self._den, self._den2


def us_text(ns: int) -> float | int:
    """µs for an integer ns, as a short decimal (``1500`` ns -> ``1.5``; whole µs stay ints): a file's ``ts``."""
    q, r = divmod(ns, 1000)
    return q if r == 0 else ns / 1000


def as_path(path: Any, needs: str, hint: str, *, api: str, bytes_ok: bool = False) -> Path:
    """``path`` as a Path, ``~`` expanded (as matplotlib's savefig does); a PtortTypeError saying what ``needs`` one
    (with ``hint``) for anything else (an ``os.PathLike`` giving bytes is decoded when ``bytes_ok``). A path that
    names no file is refused by ``api`` before pathlib hides it: ``''`` (Path('') is the folder '.'), and one ending
    in ``/`` (a folder: pathlib drops the ``/``, and save would write a file of the folder's name)."""
    if not isinstance(path, (str, os.PathLike)):
        raise PtortTypeError(f"{needs}, got {short(path)} of type {type(path).__name__}.", hint=hint)
    text = os.fspath(path)
    if isinstance(text, bytes):
        if not bytes_ok:
            raise PtortTypeError(f"{needs}, got {type(path).__name__} {short(path)}, whose os.fspath() is bytes "
                                 f"{short(text)}.", hint=hint)
        text = os.fsdecode(text)
    if text == "":
        raise PtortValueError(f"{api}: the path is empty (''), which names no file.", hint=hint)
    if text.endswith(("/", os.sep)):
        raise PtortValueError(f"{api}: the path '{cut_path(text)}' ends with '/', so it names a folder, not a "
                              "file.", hint=f"Name a file inside it, e.g. '{cut_path(text + 'run.json')}'.")
    return Path(text).expanduser() if text.startswith("~") else Path(text)


def cut_path(path: Any, n: int = 1024) -> str:
    """``path`` as text for a message, its middle cut when longer than ``n`` characters (JSON text taken for a
    path would otherwise fill the screen)."""
    text = str(path)
    return text if len(text) <= n else f"{text[:n - 63]}...{text[-60:]}"


def io_error(e: OSError, verb: str, path: Path) -> PtortValueError:
    """The OSError ``e`` from ``verb``-ing ("write" or "read") the trace file ``path``: its real cause, the path and a
    fix (one place for save and load, so each cause gets its own words instead of a guess)."""
    api = "Trace.save" if verb == "write" else "Trace.load"
    code = e.errno
    folder = cut_path(path.parent)
    file_name = cut_path(path.name, 80)
    if code == errno.ENOENT and verb == "write" and not path.parent.is_dir():
        what, hint = (f"the folder '{folder}' does not exist",
                      f"Create it first (Path('{folder}').mkdir(parents=True)) or save into an existing folder.")
    elif code == errno.ENOENT and verb == "write":
        what, hint = (f"the folder '{folder}' does not take new files (a special file system, like /proc)",
                      f"Save into an ordinary folder you may write, e.g. trace.save('{file_name}') in {os.getcwd()}.")
    elif code == errno.ENOENT:
        what, hint = ("it does not exist",
                      f"Check the path (relative paths start at {os.getcwd()}); use the path that trace.save(...) "
                      "returned.")
    elif code == errno.EISDIR:
        what = "it is a folder, not a file"
        hint = (f"Give a file name inside it, e.g. trace.save('{cut_path(path / 'run.json')}')." if verb == "write" else
                "Name the .json or .json.gz file in it that trace.save(...) wrote.")
    elif code == errno.ENOTDIR:
        what, hint = ("a part of the path before the file name is a file, not a folder",
                      "Check the path: every part before the file name must be a folder.")
    elif code in (errno.EACCES, errno.EPERM):
        what = "permission denied"
        hint = (f"Save into a folder you may write (your home folder, or the notebook's folder), or change the "
                f"permissions of '{folder}'." if verb == "write" else
                f"Make the file readable (chmod u+r '{cut_path(path)}'), or copy it somewhere you may read.")
    elif code == errno.EROFS:
        what, hint = ("the file system is read-only",
                      "Save into a folder on a writable file system (your home folder, or the notebook's folder).")
    elif code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        what, hint = ("no space is left on the device",
                      "Free some space, save elsewhere, or save as .json.gz (about 10 times smaller); a file that was "
                      "there already is left as it was.")
    elif code == errno.ENAMETOOLONG:
        what, hint = "the file name is too long for the file system", "Use a shorter file name."
    else:
        what, hint = (e.strerror or str(e)), f"Check the path and that you may {verb} there."
    name = errno.errorcode.get(code, code) if code is not None else None
    cause = f"{e.strerror}, errno {name}" if e.strerror else type(e).__name__
    return PtortValueError(f"{api}: cannot {verb} '{cut_path(path)}': {what} ({cause}).", hint=hint)


__all__ = ["FORMAT", "VERSION", "WholeRun", "whole_run_of", "NsClock", "us_text", "as_path", "cut_path", "io_error",
           "short", "MISSING", "Count"]
