"""Recent timing-only runs of a study, keyed by the content of what ran: a slider moved back is answered at once.

``RunCache`` keeps the last ``size`` runs (least recently used out). A run's key is a content hash of the workload
that ran (the pipeline, or the data-parallel twin's tasks and its cores) and the compile options: ``content_key``
describes the same things, by the same rules, as the sweep cache's program key (``sweeps.fingerprint.Describer``:
node kinds and fields, kernels by their IR and code, tensors by name, shape, dtype, location and identity, not
their values nor where anything was written), with fast paths for what a workload holds most (nodes, tuples of
plain values, tensor views), so that hashing a 64-tile pipeline costs a few ms instead of a run. Equal keys mean
the same simulation, so a cached run's trace and stats are exactly what a new run would give.

Only timing-only runs (``compute_values=False``) are cached: a run that computes values writes tensors, which a
cached run would not. A run whose workload holds something without a stable description (an open file, a
generator) is not cached. A cached Program that was run again (``execute()``) or had its run options changed since
it was cached is dropped, never answered.
"""
from __future__ import annotations

import enum
import hashlib
import numbers
import threading
from collections import OrderedDict
from dataclasses import replace
from typing import Any

from .dsl import Kernel, Tensor, Workload
from .dsl.tree import SCHEMAS, NodeKind
from .dsl.types import TensorView
from .errors import PtortValueError, SourceLocation
from .program import Program

_PLAIN = frozenset({int, str, float, bool, type(None)})
DEFAULT_SIZE = 32  # runs kept: a few slider positions of each knob, both sides


class _Content:
    """A content hash built from tokens (fast paths) and a ``Describer`` (everything else, in order of first use)."""

    def __init__(self, tensor_values: bool) -> None:
        from .sweeps.fingerprint import Describer  # the sweeps package: loaded on the first key, not on import
        self._describer = Describer(tensor_values=tensor_values)
        self._out: list[str] = []
        self._seen: dict[int, int] = {}  # id of an object met before -> its number (identity counts, as in describe)
        self._keep: list[Any] = []  # objects numbered stay alive, so that their ids are not reused meanwhile

    def digest(self) -> str:
        h = hashlib.sha256("\x1f".join(self._out).encode("utf-8", "surrogatepass"))
        h.update(self._describer.hexdigest().encode())
        return h.hexdigest()

    def feed(self, v: Any) -> None:
        """Describe ``v``: plain values by their repr (a separator never appears in one), '§' tokens otherwise."""
        t = type(v)
        out = self._out
        if t in _PLAIN:
            out.append(repr(v))
        elif t is tuple or t is list:
            if all(type(x) in _PLAIN for x in v):
                out.append(repr(v))  # "(1, 2)" / "[1, 2]": unambiguous for plain items
                return
            out.append(f"§{t.__name__}{len(v)}")
            for x in v:
                self.feed(x)
        elif t is dict:
            out.append(f"§dict{len(v)}")
            for k, x in v.items():
                if type(k) is str:
                    out.append(repr(k))
                else:
                    self.feed(k)
                if type(x) is TensorView:  # the usual argument of a task: inline, it is most of a workload
                    self._view(x)
                else:
                    self.feed(x)
        elif t is TensorView:
            self._view(v)
        elif t is SourceLocation:
            out.append("§loc")  # where something was written never changes what it does
        else:
            n = self._seen.get(id(v))
            if n is None:
                self._numbered(v)
            else:
                out.append(f"§ref{n}")

    def _view(self, v: TensorView) -> None:
        """A tensor view: its base tensor (numbered) and its index."""
        n = self._seen.get(id(v.base))
        if n is None:
            self._out.append("§view")
            self._numbered(v.base)
        else:
            self._out.append(f"§view{n}")
        self.feed(v.index)

    def _numbered(self, v: Any) -> None:
        """An object with an identity, met for the first time: numbered (later uses name the number: ``§ref``)."""
        if isinstance(v, SourceLocation):  # a subclass of it (the exact class is taken in feed)
            self._out.append("§loc")
            return
        n = self._seen[id(v)] = len(self._seen)
        self._keep.append(v)
        if isinstance(v, Workload) and v.kind is not NodeKind.SLOT_LOAD:  # a slot load reads values: describe it
            self._out.append(f"§node{n} {v.kind.value}")
            self.feed(v.name)
            for name in SCHEMAS[v.kind].names:
                self.feed(getattr(v, name))
            self.feed(v.schedule)
        elif _own_plain_object(v):
            self._own(v, n)
        else:
            self._out.append(f"§obj{n}")
            self._describer.feed(v)

    def _own(self, v: Any, n: int) -> None:
        """One of ptort_lab's own objects: its class, its items (a list or dict subclass) and its public attributes
        but ``loc`` (as ``Describer._object`` does: private attributes hold run-time state and caches)."""
        cls = type(v)
        self._out.append(f"§own{n} {cls.__module__}.{cls.__qualname__}")
        for base in (str, bytes, int, float, complex):
            if isinstance(v, base):
                self._out.append(repr(base.__repr__(v)))
                break
        if isinstance(v, (list, tuple)):
            self.feed(list(v))
        elif isinstance(v, dict):
            self.feed(dict(v))
        from .sweeps.fingerprint import instance_attributes  # (loaded with the Describer, on the first key)
        state = instance_attributes(v)
        for name in sorted(state):
            if not name.startswith("_") and name != "loc":
                self._out.append(repr(name))
                self.feed(state[name])


def _own_plain_object(v: Any) -> bool:
    """Whether ``v`` is a ptort_lab object described by its class and public attributes (not a kernel, tensor,
    program, enum or class, which the Describer describes its own way)."""
    cls = type(v)
    return (cls.__module__.startswith("ptort_lab.")
            and not isinstance(v, (Kernel, Tensor, Program, enum.Enum, type)))


def tensor_values_count(options: dict[str, Any]) -> bool:
    """Whether a run under ``options`` may read tensor values (a cost model that is not ptort_lab's own): then
    tensors are described by their values too (here and in the sweep cache's keys)."""
    model = options.get("cost_model")
    return model is not None and not type(model).__module__.startswith("ptort_lab")


def content_key(*parts: Any, tensor_values: bool = False) -> str | None:
    """The content hash of ``parts`` (see the module docstring), or None when one has no stable description."""
    key = _Content(tensor_values)
    try:
        for part in parts:
            key.feed(part)
    except Exception:  # noqa: BLE001 - Undescribable, too deep, a repr that refuses (a huge int): run, do not cache
        return None
    return key.digest()


class RunCache:
    """The last ``size`` timing-only runs of a study, by content key: ``Study(build, cache=RunCache())``.

    A timing-only run whose workload and compile options equal, by content, a run the cache holds is answered with
    that run's Program instead of running again (same trace, same stats); runs that compute values are never
    cached (see ``ptort_lab.run_cache``). ``hits`` and ``misses`` count the answers. Safe to share between threads.
    """

    def __init__(self, size: int = DEFAULT_SIZE) -> None:
        given: Any = size  # checked as given: a user may pass anything
        if isinstance(given, bool) or not isinstance(given, numbers.Integral) or given < 1:
            raise PtortValueError(f"RunCache(size=...) must be an int >= 1, got {type(size).__name__} {size!r}.",
                                  hint=f"Pass how many recent runs to keep, e.g. RunCache(size={DEFAULT_SIZE}) "
                                       "(the default).")
        self.size = int(size)
        self._runs: OrderedDict[str, tuple[Program, Any, Any]] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._runs)

    def key(self, side: str, *parts: Any, options: dict[str, Any]) -> str | None:
        """The key of a run of ``side`` ("pipeline", "data-parallel", ...) made of ``parts`` under ``options``;
        None for a run that computes values (never cached) or that cannot be described."""
        if options.get("compute_values", True) is not False:
            return None
        return content_key(side, *parts, options, tensor_values=tensor_values_count(options))

    def get(self, key: str | None) -> Program | None:
        """The run cached under ``key``, if it is still the run that was cached."""
        if key is None:
            return None
        with self._lock:
            entry = self._runs.get(key)
            if entry is not None:
                program, run, options = entry
                if getattr(program, "_run", None) is run and program.run_options == options:
                    self._runs.move_to_end(key)
                    self.hits += 1
                    return program
                del self._runs[key]  # run again or changed since: its trace may not be this key's any more
            self.misses += 1
        return None

    def put(self, key: str | None, program: Program) -> None:
        """Keep ``program`` (just run, timing-only) under ``key``."""
        run = getattr(program, "_run", None)
        if key is None or run is None or program.run_options.compute_values:
            return
        with self._lock:
            self._runs[key] = (program, run, replace(program.run_options))
            self._runs.move_to_end(key)
            while len(self._runs) > self.size:
                self._runs.popitem(last=False)

    def clear(self) -> None:
        """Forget every run."""
        with self._lock:
            self._runs.clear()


__all__ = ["RunCache", "content_key", "tensor_values_count", "DEFAULT_SIZE"]
