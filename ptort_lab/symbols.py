"""A compiled program's run-time symbols (the reference's codegen-first HEAD): values set between runs, read by the
next run, with no rebuild.

- ``outer_<id>``, ``lengths_<id>`` (a Ragged) and ``outer_<id>``, ``indptr_<id>``, ``indices_<id>`` (a Sparse), with
  ``<id>`` the axis's ``id()``: ``set_symbol_u64`` binds the outer size, ``set_symbol_ptr`` an array; the next run
  loops over the structure they describe (``axes.run_structures``). An array is read when each run starts, as the
  reference reads its pointer: changing it in place changes the next run.
- Any other name a program reads: a ``Symbol("name")`` in the workload (a kernel's scalar argument, an index, a loop
  size) and ``symbol_u64("name")`` / ``t.tags["name"]`` in a dispatch or stream key or a ``P.when`` condition
  (``dsl/scalar_expr.py``): ``set_symbol_u64`` for a whole number, ``set_symbol_f32`` for a float (a kernel's float
  scalar parameter).

Each setter checks its value at once, and the name against what the program is known to read without calling any
of its code (it is scanned anew at each setter and each run: a pipeline's process bodies may be set again): its
Symbols and conditions, its Ragged and Sparse axes. A name none of them reads is refused, unless a dispatch or stream
key function may read it: that one is taken, and the run checks that a key did read it (``RunSymbols.check``: a
symbol set and never read is an ``UnreadSymbolWarning`` after the run, naming it and the symbols the run read). A
setter of the wrong kind (an f32 for an integer parameter, a number for an array) is refused. What only the pair can
say (one length per outer row, ``indptr`` ending at ``len(indices)``) is checked when the run starts, at its
``execute()``; symbols bound to an axis the workload no longer loops over affect nothing (a StaleSymbolWarning says
so).
"""
from __future__ import annotations

import difflib
import math
import numbers
import re
import threading
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .dsl.axes import MAX_ITERATIONS, DenseDyn, Ragged, RaggedFlat, Sparse, SparseRow, run_structures
from .dsl.expr import Expr
from .dsl.scalar_expr import RunReads, ScalarCondition, Symbol, run_reads, run_symbols
from .dsl.tree import LOOPS, NodeKind, Workload, walk
from .dsl.types import ScalarType, TensorView
from .errors import PtortTypeError, PtortValueError, user_location
from .sim.placement import is_work_stealing

_STRUCTURE = re.compile(r"(outer|lengths|indptr|indices)_(\d+)")
_PARTS: dict[type, tuple[str, ...]] = {Ragged: ("outer", "lengths"), Sparse: ("outer", "indptr", "indices")}
_KEYED = ("affinity", "hash", "dispatch_by")


class StaleSymbolWarning(UserWarning):
    """Symbols bound to a Ragged or Sparse axis that the program's workload no longer loops over (a pipeline
    process's body set again): they affect nothing, and apply again if the axis comes back."""


@dataclass
class _Scan:
    """What a workload reads at run time, found without calling any user code: its Ragged and Sparse axes (by id),
    each symbol name's uses by its Symbols and conditions, and the key functions that may read other symbols."""

    axes: dict[int, Any] = field(default_factory=dict)
    # name -> [(kind, what reads it)]: kind "int" (a whole number), "float" (a float Scalar) or "any"
    uses: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    # the run's dispatch or stream key functions: user code, never called to find what they read (a run says)
    keys: list[str] = field(default_factory=list)

    def axis_named(self, ident: str) -> Any:
        """The axis whose ``id()`` is written ``ident`` (decimal, as str(id(axis)) writes it), or None."""
        for number, axis in self.axes.items():
            if str(number) == ident:
                return axis
        return None


class UnreadSymbolWarning(UserWarning):
    """A symbol set for a run that no part of it read: a misspelt name, or one only a key's branch that this run
    did not take reads."""


class RunSymbols:
    """The symbols of one run (``ProgramSymbols.of_run``): ``check()``, after the run, warns of a symbol set that no
    part of the run read (a misspelt name?), and of an f32 set for a symbol the keys read only as a whole number.
    A warning, not an error: a key reads a symbol only in the branch it takes, so a valid program may leave one
    unread in a run (and a refusal would stick: a symbol once set stays set)."""

    def __init__(self, values: dict[str, int | float], scan: _Scan, reads: RunReads) -> None:
        self.values, self.scan, self.reads = values, scan, reads

    def check(self) -> None:
        scan, reads = self.scan, self.reads
        provisional = {n: v for n, v in self.values.items() if n not in scan.uses}
        if not provisional or not reads.keys_called:  # (no key ran: a run with no tasks cannot say what they read)
            return
        unread = [n for n in provisional if n not in reads.names]
        if unread:
            read = sorted(set(reads.names) | set(scan.uses))
            close = difflib.get_close_matches(unread[0], read, n=1)
            shown = _listed([f"{_shown_name(n)} ({_setter(self.values[n])})" for n in unread])
            keys = _listed(scan.keys)
            _warn(UnreadSymbolWarning(
                f"symbol{'s' if len(unread) > 1 else ''} {shown} {'were' if len(unread) > 1 else 'was'} set, but "
                f"this run never read {'them' if len(unread) > 1 else 'it'}: no Symbol or condition of the program "
                f"reads {'those names' if len(unread) > 1 else 'that name'}, and {keys} did not in this run (a key "
                "reads a symbol only in the branch it takes). "
                + (f"Did you mean {close[0]!r}? " if close else "")
                + (f"The run read the symbols {_listed([repr(n) for n in read])}." if read else
                   "The run read no symbol.")))
        for name, value in provisional.items():
            if isinstance(value, float) and reads.names.get(name) == {"u64"}:
                _warn(UnreadSymbolWarning(
                    f"symbol {_shown_name(name)} was set with set_symbol_f32, but {_listed(scan.keys)} of this run "
                    f"read{'s' if len(scan.keys) == 1 else ''} it as a whole number (a u64): write "
                    f"program.set_symbol_u64({_shown_name(name)}, n)."))


class ProgramSymbols:
    """The symbols of one Program: ``set_u64``/``set_f32``/``set_ptr`` check and keep them; ``of_run()`` puts them
    in place for a run (in its context only). The workload is scanned again at each setter and each run (a
    pipeline's process bodies may be set again between runs); no user code is called to check a name."""

    def __init__(self, workload: Workload) -> None:
        self.workload = workload
        self._lock = threading.Lock()
        self._values: dict[str, int | float] = {}  # plain symbols
        # Ragged/Sparse symbols: name -> (the axis, its outer size (an int) or array). The axis is held, so its id()
        # names it (and no other object) for as long as the binding lasts.
        self._bound: dict[str, tuple[Any, Any]] = {}

    def scan(self) -> _Scan:
        """What the workload reads now (its wiring may have changed since the last call: scanned anew)."""
        return _scan(self.workload)

    # -- setters ------------------------------------------------------------------------------------------------------
    def set_u64(self, name: str, value: Any) -> None:
        api = "set_symbol_u64"
        scan = self.scan()
        axis, part = self._structure(name, api, scan)
        if axis is not None:
            if part != "outer":
                raise PtortTypeError(f"{api}({name!r}, {value!r}): {name} is the {part} array of {axis!r}, not a "
                                     "number.", hint=f"Bind it with program.set_symbol_ptr({name!r}, np.array([...], "
                                                     "dtype=np.int32)).")
            n = _checked_outer(name, value)
            with self._lock:
                self._bound[name] = (axis, n)
            return
        self._check_use(name, "u64", api, value, scan)
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not 0 <= int(value) < 2**64:
            error = PtortValueError if isinstance(value, numbers.Integral) and not isinstance(value, bool) \
                else PtortTypeError
            raise error(f"{api}({name!r}, {value!r}): the value must be an int in 0..2**64 - 1 (a u64).",
                        hint=f"Write program.{api}({name!r}, 4); for a float use set_symbol_f32.")
        with self._lock:
            self._values[name] = int(value)

    def set_f32(self, name: str, value: Any) -> None:
        api = "set_symbol_f32"
        scan = self.scan()
        axis, part = self._structure(name, api, scan)
        if axis is not None:
            fix = (f"program.set_symbol_u64({name!r}, n)" if part == "outer" else
                   f"program.set_symbol_ptr({name!r}, np.array([...], dtype=np.int32))")
            what = "the outer size (a whole number)" if part == "outer" else f"the {part} array"
            raise PtortTypeError(f"{api}({name!r}, {value!r}): {name} is {what} of {axis!r}, not an f32.",
                                 hint=f"Write {fix}.")
        self._check_use(name, "f32", api, value, scan)
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise PtortTypeError(f"{api}({name!r}, {value!r}): the value must be a real number, got "
                                 f"{type(value).__name__}.", hint=f"Write program.{api}({name!r}, 2.0).")
        try:
            with np.errstate(over="ignore"):
                f, finite = float(np.float32(value)), math.isfinite(float(value))
        except OverflowError:  # (an int past a float's range)
            f, finite = math.inf, True
        if not math.isfinite(f) and finite:
            raise PtortValueError(f"{api}({name!r}, {value!r}): the value is outside the f32 range (about "
                                  "+-3.4e38).", hint="An f32 symbol holds magnitudes up to about 3.4e38 (and inf or "
                                                     "nan when given them): scale the value into that range.")
        with self._lock:
            self._values[name] = f

    def set_ptr(self, name: str, array: Any) -> None:
        api = "set_symbol_ptr"
        scan = self.scan()
        axis, part = self._structure(name, api, scan)
        if axis is None:
            raise PtortValueError(f"{api}({_shown_name(name)}, ...): this program has no pointer symbol "
                                  f"{_shown_name(name)}. Pointer symbols bind the arrays of its Ragged and Sparse "
                                  "axes: lengths_<id>, indptr_<id> and indices_<id>, with <id> the axis's id().",
                                  hint=self._names_hint(name, scan, pointers=True))
        if part == "outer":
            raise PtortTypeError(f"{api}({name!r}, ...): {name} is the outer size of {axis!r}, a number, not an "
                                 "array.", hint=f"Write program.set_symbol_u64({name!r}, n).")
        _checked_ints(name, part, array)
        with self._lock:
            self._bound[name] = (axis, array)

    def _structure(self, name: Any, api: str, scan: _Scan) -> tuple[Any, str]:
        """(the Ragged or Sparse axis, the part) that ``name`` binds, or (None, "") for a plain symbol; a name of the
        form ``outer_<id>`` with no axis of that id, or a part the axis has not, is refused."""
        if not isinstance(name, str) or not name:
            raise PtortTypeError(f"{api}(name, ...): name must be a symbol's name (a non-empty str), got "
                                 f"{type(name).__name__} {name!r}.", hint=f'Write program.{api}("scale_s", ...).')
        m = _STRUCTURE.fullmatch(name)
        if m is None or name in scan.uses:
            return None, ""
        part, ident = m.group(1), m.group(2)
        axis = scan.axis_named(ident)  # (by the digits as written: no int() of a name thousands of digits long)
        if axis is None:
            raise PtortValueError(f"{api}({_shown_name(name)}, ...): no Ragged or Sparse axis of this program has "
                                  f"the id {_shown_id(ident)}.",
                                  hint=self._names_hint(name, scan, pointers=True, by_axis=True))
        parts = _parts(axis)
        if part not in parts:
            kind = "Ragged" if isinstance(axis, Ragged) else "Sparse"
            raise PtortValueError(f"{api}({name!r}, ...): {axis!r} is a {kind}; its symbols are "
                                  f"{_listed([f'{p}_{ident}' for p in parts])}.",
                                  hint="A Ragged binds outer_<id> and lengths_<id>; a Sparse outer_<id>, "
                                       "indptr_<id> and indices_<id>.")
        return axis, part

    def _check_use(self, name: str, kind: str, api: str, value: Any, scan: _Scan) -> None:
        """Refuse a name the program cannot read, and a setter that does not fit how its Symbols read it. A name
        only a key function may read is taken for now: the run checks that it was read (``RunSymbols.check``)."""
        uses = scan.uses.get(name)
        if not uses:
            if scan.keys:
                return  # (a key function may read it: the run says if it does not, without calling it here)
            raise PtortValueError(f"unknown symbol {_shown_name(name)}: this program reads no symbol of that name, "
                                  "so setting it would change nothing.",
                                  hint=self._names_hint(name, scan, pointers=False))
        wrong = [what for k, what in uses if k == ("int" if kind == "f32" else "float")]
        if wrong:
            other = "set_symbol_u64" if kind == "f32" else "set_symbol_f32"
            example = "4" if kind == "f32" else "2.0"
            reads = "a whole number" if kind == "f32" else "a float"
            raise PtortTypeError(f"{api}({name!r}, {value!r}): {wrong[0]} reads symbol {name!r} as {reads}.",
                                 hint=f"Write program.{other}({name!r}, {example}).")

    def _names_hint(self, name: str, scan: _Scan, pointers: bool, by_axis: bool = False) -> str:
        """What this program's symbols are, the closest to ``name`` first."""
        axes = []
        for ident, axis in scan.axes.items():
            axes.append(f"{axis!r}: {', '.join(f'{p}_{ident}' for p in _parts(axis))}")
        names = list(scan.uses) + [f"{p}_{i}" for i, a in scan.axes.items() for p in _parts(a)]
        close = difflib.get_close_matches(name[:200], names, n=1)
        out = f"Did you mean {close[0]!r}? " if close and not by_axis else ""
        if scan.uses and not pointers:
            out += f"Its symbols are {_listed([repr(n) for n in scan.uses])}"
            out += f"; its Ragged and Sparse axes bind {'; '.join(axes)}." if axes else "."
        elif axes:
            out += f"Its Ragged and Sparse axes bind {'; '.join(axes)} (the number is the axis's id())."
        else:
            out += ("It reads no symbol and loops over no Ragged or Sparse axis. A program reads Symbol('name') "
                    "given to a kernel (or as an index or size), symbol_u64('name') and t.tags['name'] in a "
                    "dispatch key, and outer_<id> / lengths_<id> / indptr_<id> / indices_<id> for the Ragged and "
                    "Sparse axes it loops over.")
        if not pointers and self.workload.is_pipeline:
            out += " __pto_wsp_channel_latency_cycles sets the channel latency."
        return out

    # -- a run ---------------------------------------------------------------------------------------------------------
    @contextmanager
    def of_run(self) -> Iterator[RunSymbols]:
        """The ``with`` runs with this program's symbols: the structures bound (checked now, the arrays read now)
        and the symbol values, in this context only. It yields the run's RunSymbols: ``check()`` it after a run."""
        with self._lock:
            values, bound = dict(self._values), dict(self._bound)
        scan = self.scan() if values or bound else _Scan()  # (nothing set: nothing to place or check)
        structures = self._structures(bound, scan) if bound else {}
        reads = RunReads()
        symbols_token, reads_token = run_symbols.set(values), run_reads.set(reads)
        outer = run_structures.get()
        token = run_structures.set({**(outer or {}), **structures}) if structures else None
        try:
            yield RunSymbols(values, scan, reads)
        finally:
            if token is not None:
                run_structures.reset(token)
            run_reads.reset(reads_token)
            run_symbols.reset(symbols_token)

    def _structures(self, bound: dict[str, tuple[Any, Any]], scan: _Scan) -> dict[int, tuple[Any, ...]]:
        """id(axis) -> the structure the run loops over, for each axis of the workload with a bound symbol; symbols
        of an axis it no longer loops over (a process body set again) affect nothing, and a warning says so."""
        by_axis: dict[int, tuple[Any, dict[str, Any]]] = {}
        for name, (bound_axis, value) in bound.items():
            part = name.partition("_")[0]
            by_axis.setdefault(id(bound_axis), (bound_axis, {}))[1][part] = value
        out: dict[int, tuple[Any, ...]] = {}
        for ident, (axis, parts) in by_axis.items():
            stale = scan.axes.get(ident) is not axis  # (the axis is held: its id names it alone)
            if stale:
                names = _listed([f"{p}_{ident}" for p in parts])
                _warn(StaleSymbolWarning(
                    f"symbol{'s' if len(parts) > 1 else ''} {names} of {axis!r} affect{'s' if len(parts) == 1 else ''} "
                    "nothing in this run: the program's workload no longer loops over that axis (a process body set "
                    "again?). The binding stays, and applies again if the axis comes back.\n"
                    "Hint: bind the symbols of the axes its processes loop over now"
                    + (f": {_listed([f'{p}_{i}' for i, a in scan.axes.items() for p in _parts(a)])}."
                       if scan.axes else ".")))
                continue
            out[ident] = (_ragged(axis, ident, parts) if isinstance(axis, Ragged) else _sparse(axis, ident, parts))
        return out


_WARNED: dict[Any, Any] = {}  # (warn_explicit's registry: a warning once per line, as warnings.warn's default)


def _warn(warning: Warning) -> None:
    """Warn at the user's line (the run's execute() or enumerate()): a ``with`` in between hides it from
    ``stacklevel``."""
    loc = user_location()
    if loc is None:
        warnings.warn(warning, stacklevel=3)
        return
    warnings.warn_explicit(warning, type(warning), loc.filename, loc.lineno, registry=_WARNED)


def _setter(value: int | float) -> str:
    return "set_symbol_f32" if isinstance(value, float) else "set_symbol_u64"


def _shown_id(ident: str) -> str:
    return ident if len(ident) <= 40 else f"{ident[:12]}...({len(ident):,} digits)"


def _shown_name(name: str) -> str:
    return repr(name) if len(name) <= 80 else f"{name[:40]!r}... ({len(name):,} characters)"


# -- the structures of a run -------------------------------------------------------------------------------------------
def _ragged(axis: Ragged, ident: int, parts: dict[str, Any]) -> tuple[int, list[int]]:
    outer, lengths = axis.built
    src_outer = src_lengths = "as built"
    if "outer" in parts:
        outer, src_outer = parts["outer"], f"set_symbol_u64('outer_{ident}', {parts['outer']})"
    if "lengths" in parts:
        lengths = _checked_ints(f"lengths_{ident}", "lengths", parts["lengths"], at_run=True)
        src_lengths = f"set_symbol_ptr('lengths_{ident}', ...)"
    if len(lengths) != outer:
        raise PtortValueError(f"{axis!r} runs with outer size {outer} ({src_outer}) but {len(lengths)} lengths "
                              f"({src_lengths}): a Ragged takes one length per outer row.",
                              hint=f"Bind the two together before the run: program.set_symbol_u64('outer_{ident}', n) "
                                   f"and program.set_symbol_ptr('lengths_{ident}', np.array([...], dtype=np.int32)) "
                                   "with n entries.")
    total = sum(lengths)
    if total > MAX_ITERATIONS:
        raise PtortValueError(f"{axis!r} runs with lengths ({src_lengths}) holding {total:,} items, more than the "
                              f"{MAX_ITERATIONS:,} iterations a workload may list.",
                              hint="Use larger tiles (fewer items per row) or a smaller problem.")
    return outer, lengths


def _sparse(axis: Sparse, ident: int, parts: dict[str, Any]) -> tuple[int, list[int], list[int]]:
    outer, indptr, indices = axis.built
    src = {"outer": "as built", "indptr": "as built", "indices": "as built"}
    if "outer" in parts:
        outer, src["outer"] = parts["outer"], f"set_symbol_u64('outer_{ident}', {parts['outer']})"
    if "indptr" in parts:
        indptr = _checked_ints(f"indptr_{ident}", "indptr", parts["indptr"], at_run=True)
        src["indptr"] = f"set_symbol_ptr('indptr_{ident}', ...)"
    if "indices" in parts:
        indices = _checked_ints(f"indices_{ident}", "indices", parts["indices"], at_run=True)
        src["indices"] = f"set_symbol_ptr('indices_{ident}', ...)"
    if len(indptr) != outer + 1:
        raise PtortValueError(f"{axis!r} runs with outer size {outer} ({src['outer']}) but indptr has {len(indptr)} "
                              f"entries ({src['indptr']}); it needs outer + 1 = {outer + 1}.",
                              hint=f"indptr[r]..indptr[r+1] delimits row r: bind outer_{ident} and indptr_{ident} "
                                   "together, e.g. outer 2 with indptr [0, 2, 3].")
    if indptr[-1] != len(indices):
        raise PtortValueError(f"{axis!r} runs with indptr ({src['indptr']}) ending at {indptr[-1]}, the number of "
                              f"stored indices, but indices has {len(indices)} entries ({src['indices']}).",
                              hint=f"indptr[-1] must equal len(indices): bind indptr_{ident} and indices_{ident} "
                                   "together, e.g. indptr [0, 2, 3] with indices [4, 7, 1].")
    return outer, indptr, indices


def _checked_outer(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise PtortTypeError(f"set_symbol_u64({name!r}, {value!r}): an outer size must be an int, got "
                             f"{type(value).__name__}.", hint=f"Write program.set_symbol_u64({name!r}, 2).")
    n = int(value)
    if n < 1:
        raise PtortValueError(f"set_symbol_u64({name!r}, {value!r}): an outer size must be >= 1.",
                              hint="For a run with no items keep one row and bind its length (or its indptr) to 0: "
                                   "outer 1 with lengths [0], or indptr [0, 0] and no indices.")
    if n > MAX_ITERATIONS:
        raise PtortValueError(f"set_symbol_u64({name!r}, {n:,}): the outer size is more than the {MAX_ITERATIONS:,} "
                              "iterations a workload may list.", hint="Use fewer, larger rows.")
    return n


def _checked_ints(name: str, part: str, value: Any, at_run: bool = False) -> list[int]:
    """The array bound to ``name`` as a list of ints, checked for ``part`` (lengths and indices >= 0; indptr from 0,
    never decreasing)."""
    api = f"set_symbol_ptr({name!r}, ...)"
    now = " (read when the run started: the array changed since it was bound)" if at_run else ""
    example = {"lengths": "[1, 2]", "indptr": "[0, 2, 3]", "indices": "[0, 2, 1]"}[part]
    fix = f"Bind a 1-D integer array: program.set_symbol_ptr({name!r}, np.array({example}, dtype=np.int32))."
    if isinstance(value, np.ma.MaskedArray):  # (its masked entries have no value: tolist() gives None for them)
        masked = np.flatnonzero(np.ma.getmaskarray(value)).tolist()
        if masked:
            raise PtortValueError(f"{api}: {part} is a masked array with {len(masked):,} masked entr"
                                  f"{'y' if len(masked) == 1 else 'ies'} (at {_short(masked)}){now}; a masked entry "
                                  "has no value to loop over.",
                                  hint=f"Fill the masked entries first, program.set_symbol_ptr({name!r}, "
                                       "array.filled(0)), or bind a plain np.array.")
        value = np.ma.getdata(value)
    if isinstance(value, np.ndarray):
        if value.ndim != 1:
            raise PtortValueError(f"{api}: {part} must be a 1-D array, got shape {value.shape}{now}.", hint=fix)
        if value.dtype.kind not in "iu":
            raise PtortTypeError(f"{api}: {part} must hold integers, got an array of {value.dtype}{now}.", hint=fix)
        ints = [int(v) for v in value.tolist()]
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
                raise PtortTypeError(f"{api}: {part}[{i}] is {type(v).__name__} {v!r}, not an int{now}.", hint=fix)
        ints = [int(v) for v in value]
    else:
        raise PtortTypeError(f"{api}: {part} must be a 1-D numpy array of integers (or a list of ints), got "
                             f"{type(value).__name__} {value!r}.", hint=fix)
    if part == "indptr":
        if not ints or ints[0] != 0 or any(b < a for a, b in zip(ints, ints[1:])):
            raise PtortValueError(f"{api}: indptr must start at 0 and never decrease, got {_short(ints)}{now}.",
                                  hint="Build indptr as the running count of indices per row, e.g. [0, 2, 3].")
    else:
        bad = next((i for i, v in enumerate(ints) if v < 0), None)
        if bad is not None:
            what = "a row's item count" if part == "lengths" else "a loop index"
            raise PtortValueError(f"{api}: {part}[{bad}] is {ints[bad]}; each entry is {what}, >= 0{now}.",
                                  hint="Use 0 for an empty row." if part == "lengths" else fix)
    return ints


def _parts(axis: Any) -> tuple[str, ...]:
    """The symbol parts of a Ragged (outer, lengths) or a Sparse (outer, indptr, indices)."""
    return _PARTS[Ragged] if isinstance(axis, Ragged) else _PARTS[Sparse]


def _short(values: list[int]) -> str:
    return repr(values) if len(values) <= 12 else f"[{', '.join(map(str, values[:6]))}, ... {len(values):,} entries]"


def _listed(items: list[str]) -> str:
    return items[0] if len(items) == 1 else f"{', '.join(items[:-1])} and {items[-1]}"


# -- what a workload reads -------------------------------------------------------------------------------------------
def _scan(workload: Workload) -> _Scan:
    found = _Scan()
    roots = [workload]
    if workload.is_pipeline:
        roots += [p.workload for p in workload.processes if isinstance(getattr(p, "workload", None), Workload)]
    for root in roots:
        for node in walk(root):
            kind = node.kind
            if kind is NodeKind.TASK:
                _scan_task(node, found)
            elif kind in LOOPS:
                _scan_values(node.axes, found, node)
            elif kind is NodeKind.COND:
                _scan_values(node.pred, found, node)
            elif kind is NodeKind.SLOT_SET:
                _scan_values(node.value, found, node)
            elif kind is NodeKind.SLOT_LOAD:
                _scan_values(node.view, found, node)
            elif kind is NodeKind.SEND:
                _scan_values(node.token, found, node)
    if not workload.is_pipeline:
        found.keys = _keys(workload)
    return found


def _keys(workload: Workload) -> list[str]:
    """The key functions a run of ``workload`` calls for its tasks, as the dispatcher picks them (placement.py): a
    keyed DispatchPolicy's (not under work stealing), else stream_by's with streams(n). Named, never called."""
    schedule = workload.schedule
    policy = schedule.dispatch
    if policy is None:
        return ["the stream_by key"] if schedule.stream_by is not None and schedule.stream_count else []
    if policy.kind not in _KEYED or policy.key_fn is None or is_work_stealing(schedule):
        return []
    return [f"the DispatchPolicy.{policy.kind} key"]


def _scan_task(node: Workload, found: _Scan) -> None:
    kernel = node.kernel
    signature = getattr(kernel, "signature", None) if not isinstance(kernel, str) else None
    _scan_values(node.params, found, node)
    res = node.resources
    items: Iterable[tuple[Any, Any]] = res.items() if isinstance(res, dict) else enumerate(res or ())
    for key, value in items:
        typ = signature.get(key) if signature is not None and isinstance(key, str) else None
        if isinstance(value, Symbol) and typ is not None and isinstance(typ[1], ScalarType):
            dtype = typ[1].dtype
            found.uses.setdefault(value.name, []).append(
                ("float" if dtype.is_float else "int",
                 f"kernel '{kernel.name}' parameter '{key}' (Scalar[{dtype}])"))  # type: ignore[union-attr]
        elif isinstance(value, Symbol):  # (a host kernel's argument, a Constexpr: a number of either kind)
            name = kernel if isinstance(kernel, str) else kernel.name
            found.uses.setdefault(value.name, []).append(("any", f"task '{name}' argument {key!r}"))
        elif typ is not None and isinstance(typ[1], ScalarType) and isinstance(value, Expr):
            # arithmetic on Symbols for a Scalar (s=Symbol("s") * 2): its Symbols are read as the Scalar's kind
            dtype = typ[1].dtype
            inner = _Scan()
            _scan_values(value, inner, node)
            found.axes.update(inner.axes)
            for name in inner.uses:
                found.uses.setdefault(name, []).append(
                    ("float" if dtype.is_float else "int",
                     f"kernel '{kernel.name}' parameter '{key}' (Scalar[{dtype}])"))  # type: ignore[union-attr]
        else:
            _scan_values(value, found, node)


def _scan_values(value: Any, found: _Scan, node: Workload, depth: int = 0) -> None:
    """Record the Symbols and the Ragged and Sparse axes in ``value`` (an axis, expression, view or list of them)."""
    if depth > 50:
        return
    if isinstance(value, Symbol):
        at = f" at {node.loc}" if node.loc is not None else ""
        found.uses.setdefault(value.name, []).append(("int", f"the {node.kind} statement{at} (an index, size, "
                                                             "launch axis or condition)"))
    elif isinstance(value, ScalarCondition):
        at = f" at {value.loc}" if value.loc is not None else ""
        for leaf in value.expr.leaves():
            if leaf.kind in ("symbol_u64", "task_tag_u64"):
                found.uses.setdefault(leaf.a, []).append(("int", f"the {value.api} condition{at}"))
    elif isinstance(value, (Ragged, Sparse)):
        found.axes.setdefault(id(value), value)
    elif isinstance(value, RaggedFlat):
        found.axes.setdefault(id(value.ragged), value.ragged)
    elif isinstance(value, SparseRow):
        found.axes.setdefault(id(value.sparse), value.sparse)
        _scan_values(value.row, found, node, depth + 1)
    elif isinstance(value, DenseDyn):
        _scan_values(value.built_size, found, node, depth + 1)
    elif isinstance(value, TensorView):
        _scan_values(value.index, found, node, depth + 1)
    elif isinstance(value, (list, tuple)):
        for v in value:
            _scan_values(v, found, node, depth + 1)
    elif isinstance(value, Expr):  # arithmetic and conditions on loop variables, a Ragged's row length
        for attr in ("lhs", "rhs", "operand", "row", "ragged"):
            part = getattr(value, attr, None)
            if part is not None:
                _scan_values(part, found, node, depth + 1)


__all__ = ["ProgramSymbols", "RunSymbols", "StaleSymbolWarning", "UnreadSymbolWarning"]
