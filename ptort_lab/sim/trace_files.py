"""The trace file format's name and version, and what writing (``export``) and reading (``load``) share: paths,
OS errors in plain words, and the short forms of values that messages show."""
from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Any

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


def as_path(path: Any, needs: str, hint: str) -> Path:
    """``path`` as a Path; a PtortTypeError saying what ``needs`` one (with ``hint``) for anything else."""
    if not isinstance(path, (str, os.PathLike)):
        raise PtortTypeError(f"{needs}, got {short(path)} of type {type(path).__name__}.", hint=hint)
    return Path(path)


def io_error(e: OSError, verb: str, path: Path) -> PtortValueError:
    """The OSError ``e`` from ``verb``-ing ("write" or "read") the trace file ``path``: its real cause, the path and a
    fix (one place for save and load, so each cause gets its own words instead of a guess)."""
    api = "Trace.save" if verb == "write" else "Trace.load"
    code = e.errno
    folder = path.parent
    if code == errno.ENOENT and verb == "write" and not folder.is_dir():
        what, hint = (f"the folder '{folder}' does not exist",
                      f"Create it first (Path('{folder}').mkdir(parents=True)) or save into an existing folder.")
    elif code == errno.ENOENT and verb == "write":
        what, hint = (f"the folder '{folder}' does not take new files (a special file system, like /proc)",
                      f"Save into an ordinary folder you may write, e.g. trace.save('{path.name}') in {os.getcwd()}.")
    elif code == errno.ENOENT:
        what, hint = ("it does not exist",
                      f"Check the path (relative paths start at {os.getcwd()}); use the path that trace.save(...) "
                      "returned.")
    elif code == errno.EISDIR:
        what = "it is a folder, not a file"
        hint = (f"Give a file name inside it, e.g. trace.save('{path / 'run.json'}')." if verb == "write" else
                "Name the .json or .json.gz file in it that trace.save(...) wrote.")
    elif code == errno.ENOTDIR:
        what, hint = ("a part of the path before the file name is a file, not a folder",
                      "Check the path: every part before the file name must be a folder.")
    elif code in (errno.EACCES, errno.EPERM):
        what = "permission denied"
        hint = (f"Save into a folder you may write (your home folder, or the notebook's folder), or change the "
                f"permissions of '{folder}'." if verb == "write" else
                f"Make the file readable (chmod u+r '{path}'), or copy it somewhere you may read.")
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
    return PtortValueError(f"{api}: cannot {verb} '{path}': {what} ({cause}).", hint=hint)


__all__ = ["FORMAT", "VERSION", "as_path", "io_error", "short", "MISSING", "Count"]
