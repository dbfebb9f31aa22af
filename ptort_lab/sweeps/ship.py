"""Sending a sweep's builder to worker processes: pickled once with cloudpickle, or a clear error saying which
object cannot travel and why, before any worker starts.

cloudpickle sends a function defined in a notebook or script (``__main__``) by value, with what it closes over
and the globals it reads; a function of an importable module goes by reference (its module must be importable
on the workers: a process pool and a LocalCluster inherit this process's ``sys.path``; a remote cluster needs the
module installed). An object that cannot be pickled (an open file being written, a lock, a generator, a socket)
is found by walking what the builder reaches, and named in the error with the fix.
"""
from __future__ import annotations

import hashlib
import io
import linecache
import os
import types
from typing import Any, Iterator

from ..errors import SourceLocation, SweepError
from .fingerprint import _key_text, global_names, is_library_module

_MAX_DEPTH = 8  # how far the search for the object that cannot be pickled goes into nested objects


def _dumps(obj: Any) -> bytes:
    import cloudpickle
    data: bytes = cloudpickle.dumps(obj)
    return data


def cell_sources(filenames: set[str]) -> dict[str, tuple[int, None, list[str], str]]:
    """The text of the user's files that exist only in this process (notebook cells), as linecache entries."""
    out = {}
    for name in sorted(filenames):
        entry = linecache.cache.get(name)
        if entry is None or os.path.exists(name) or len(entry) != 4:
            continue
        size, _, lines, full = entry
        out[name] = (int(size), None, list(lines), str(full))
    return out


def pack(spec: Any, builder: Any, api: str) -> tuple[str, bytes]:
    """(a short id, the pickled ``spec``); a SweepError naming the object that cannot be pickled otherwise."""
    try:
        data = _dumps(spec)
    except Exception as e:  # noqa: BLE001 - whatever pickling raises, the message below names the object
        raise _cannot_ship(spec, builder, api, e) from None
    return hashlib.sha256(data).hexdigest()[:20], data


def _cannot_ship(spec: Any, builder: Any, api: str, error: BaseException) -> SweepError:
    name = getattr(builder, "__qualname__", None) or getattr(builder, "__name__", None) or type(builder).__name__
    what = f"the builder {name}"
    found = _find(builder, what, set(), 0)
    if found is None:  # the builder pickles: something else of the study does (a compile option, the words)
        what = "the sweep's options"
        found = next((f for label, part in _spec_parts(spec) if (f := _find(part, label, set(), 0)) is not None),
                     (what, spec, error))
    path, obj, why = found
    return SweepError(
        f"{api} cannot send {what} to its worker processes: {path} is {_kind(obj)}, which cannot be pickled "
        f"({type(why).__name__}: {why}).",
        hint=_fix(obj), where=_defined_at(builder), locate=False)


def _spec_parts(spec: Any) -> Iterator[tuple[str, Any]]:
    for key, value in getattr(spec, "options", {}).items():
        yield f"compile option {key}", value
    yield "the knob words", getattr(spec, "words", None)


def _find(obj: Any, label: str, seen: set[int], depth: int) -> tuple[str, Any, BaseException] | None:
    """The innermost part of ``obj`` that cannot be pickled: (how it is reached, the object, the error)."""
    try:
        _dumps(obj)
        return None
    except Exception as e:  # noqa: BLE001 - the error itself is what the message reports
        error = e
    if depth >= _MAX_DEPTH or id(obj) in seen:
        return label, obj, error
    seen.add(id(obj))
    for step, part in _parts(obj):
        found = _find(part, f"{label}'s {step}" if depth == 0 else f"{label} -> {step}", seen, depth + 1)
        if found is not None:
            return found
    return label, obj, error


def _parts(obj: Any) -> Iterator[tuple[str, Any]]:
    """What pickling ``obj`` pickles too: a function's closure, globals and defaults; items; attributes."""
    if isinstance(obj, types.FunctionType):
        for name, cell in zip(obj.__code__.co_freevars, obj.__closure__ or ()):
            try:
                yield f"closure variable {name!r}", cell.cell_contents
            except ValueError:
                continue
        if not is_library_module(obj.__module__ or ""):
            for name in sorted(global_names(obj.__code__)):
                if name in obj.__globals__:
                    yield f"global {name!r}", obj.__globals__[name]
        for i, d in enumerate(obj.__defaults__ or ()):
            yield f"default value {i}", d
    elif isinstance(obj, types.MethodType):
        yield "object", obj.__self__
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield f"[{_key_text(k)}]", v
    elif isinstance(obj, (list, tuple, set, frozenset)):
        for i, v in enumerate(obj):
            yield f"[{i}]", v
    else:
        for k, v in getattr(obj, "__dict__", {}).items():
            yield f"attribute {k!r}", v


def _kind(obj: Any) -> str:
    """``an open file (_io.TextIOWrapper '/tmp/log.txt')``: what the object is, in words."""
    if isinstance(obj, io.IOBase):
        name = getattr(obj, "name", "")
        return f"an open file ({type(obj).__module__}.{type(obj).__qualname__}{f' {name!r}' if name else ''})"
    if isinstance(obj, types.GeneratorType):
        return f"a generator ({obj.__qualname__})"
    kind = type(obj).__name__
    if "lock" in kind.lower() or kind in ("Condition", "Semaphore", "Event", "RLock"):
        return f"a lock ({type(obj).__module__}.{type(obj).__qualname__})"
    return f"a {type(obj).__module__}.{type(obj).__qualname__}"


def _fix(obj: Any) -> str:
    serial = "or pass executor='serial' to run the sweep in this process."
    if isinstance(obj, io.IOBase):
        return f"Open the file inside the builder (each worker process opens its own), {serial}"
    if isinstance(obj, types.GeneratorType):
        return f"Pass a list instead (list(...)): a generator's position cannot be sent, {serial}"
    if "lock" in type(obj).__name__.lower():
        return ("Create the lock inside the builder, or drop it: each worker process builds its points on its own, "
                f"{serial}")
    return ("Create that object inside the builder, or define it at the top of an importable module (sent by "
            f"reference: the workers import it), {serial}")


def _defined_at(builder: Any) -> SourceLocation | None:
    code = getattr(builder, "__code__", None)
    if not isinstance(code, types.CodeType):
        return None
    line = linecache.getline(code.co_filename, code.co_firstlineno).strip()
    return SourceLocation(code.co_filename, code.co_firstlineno, code.co_name, line)


__all__ = ["pack", "cell_sources"]
