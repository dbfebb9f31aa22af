"""Module settings a sweep's worker processes must see as the notebook sees them.

A worker process imports a module fresh (cloudpickle sends a module, and a function defined in one, by reference),
so a value the notebook set at run time (``settings.TILES = 16``, ``ptort_lab.sim.engine.MAX_STEPS = ...``) would
be the file's value there, and the pool's rows would differ from this process's. ``module_state`` records the
public attributes of every user module the builder reaches (and ptort_lab's documented run settings): a small plain
value (a number, a short string, a small container of them) as itself, anything else (a large array, a settings
object) as a digest of what it holds. ``apply_module_state`` runs in a worker: in another process it sets the small
values, then checks every digest against the module as that process has it, and refuses (naming the attribute)
where a value set at run time cannot be sent, rather than compute rows with other settings. In the notebook's own
process (a thread pool) nothing is set: the modules are the very ones the notebook holds.
"""
from __future__ import annotations

import enum
import importlib
import os
import pickle
import sys
import types
from typing import Any

import numpy as np

from ..errors import SweepError
from .fingerprint import Undescribable, describe, global_names, is_library_module

# ptort_lab's own module settings that the docs tell users to change at run time (limits and machine presets).
LIBRARY_SETTINGS = (("ptort_lab.sim.engine", ("MAX_STEPS", "MAX_STEPS_WITHOUT_PROGRESS", "MAX_RUN_BYTES")),
                    ("ptort_lab.dsl.steps", ("MAX_TASKS", "MAX_PIPELINE_TASKS", "MAX_LOOP_ITERATIONS",
                                             "MAX_LISTING_STEPS_WITHOUT_TASKS")),
                    ("ptort_lab.sim.machine", ("MACHINES",)))
_MAX_OBJECTS = 20_000  # how much of the builder's reach is walked looking for modules
_PLAIN = (type(None), bool, int, float, complex, str, bytes, np.generic, np.ndarray, enum.Enum)

ModuleState = dict[str, Any]  # {"pid": the notebook's, "values": {module: {attr: value}}, "digests": {...}}
_SMALL_BYTES = 64 * 1024  # a plain value sent along (pickled) at most this big; a larger one is checked by digest


def user_module(name: str) -> types.ModuleType | None:
    """The loaded module ``name`` when it is the user's own (a file that is not library code nor ``__main__``)."""
    module = sys.modules.get(name)
    if module is None or name == "__main__" or is_library_module(name):
        return None
    return module if isinstance(getattr(module, "__file__", None), str) else None


def is_plain_data(value: Any, depth: int = 0) -> bool:
    """A value that means the same in any process: numbers, strings, arrays, and containers of them."""
    if isinstance(value, _PLAIN):
        return True
    if depth > 8:
        return False
    if type(value) in (tuple, list, set, frozenset):
        return all(is_plain_data(v, depth + 1) for v in value)
    if type(value) is dict:
        return all(is_plain_data(k, depth + 1) and is_plain_data(v, depth + 1) for k, v in value.items())
    return False


def reached_modules(build: Any) -> list[types.ModuleType]:
    """The user modules ``build`` reaches: through the globals, closures and defaults of its functions, the
    modules they name, and the modules those import, in the order met."""
    found: dict[str, types.ModuleType] = {}
    seen: set[int] = set()
    todo = [build]
    while todo and len(seen) < _MAX_OBJECTS:
        obj = todo.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        todo.extend(_parts(obj, found))
    return list(found.values())


def _parts(obj: Any, found: dict[str, types.ModuleType]) -> list[Any]:
    """What ``obj`` leads to (noting the user modules met in ``found``)."""
    if isinstance(obj, types.ModuleType):
        if user_module(obj.__name__) is None or obj.__name__ in found:
            return []
        found[obj.__name__] = obj
        return [v for v in vars(obj).values() if isinstance(v, (types.ModuleType, types.FunctionType, type))]
    if isinstance(obj, types.FunctionType):
        parts: list[Any] = [sys.modules.get(obj.__module__ or "")]
        if is_library_module(obj.__module__ or ""):
            return [p for p in parts if p is not None]
        parts += [obj.__globals__[n] for n in global_names(obj.__code__) if n in obj.__globals__]
        parts += [c.cell_contents for c in obj.__closure__ or () if _filled(c)]
        parts += list(obj.__defaults__ or ()) + list((obj.__kwdefaults__ or {}).values())
        return [p for p in parts if p is not None]
    if isinstance(obj, types.MethodType):
        return [obj.__func__, obj.__self__]
    if isinstance(obj, (staticmethod, classmethod)):
        return [obj.__func__]
    if isinstance(obj, type):
        if is_library_module(obj.__module__):
            return []
        return [m for m in (sys.modules.get(obj.__module__),) if m is not None] + list(vars(obj).values())
    if type(obj) in (tuple, list, set, frozenset):
        return list(obj)
    if type(obj) is dict:
        return list(obj.values())
    if is_library_module(type(obj).__module__):
        return []
    return [type(obj), *getattr(obj, "__dict__", {}).values()]  # an instance of the user's class (a callable)


def _filled(cell: Any) -> bool:
    try:
        return cell.cell_contents is not cell  # (always True: reading it is the test)
    except ValueError:  # a cell not yet filled
        return False


def module_state(build: Any) -> ModuleState:
    """What a worker must match: ptort_lab's run settings and the small plain attributes of the user modules
    ``build`` reaches, by value; their other public attributes by digest (``apply_module_state``)."""
    values: dict[str, dict[str, Any]] = {}
    digests: dict[str, dict[str, str]] = {}
    for name, names in LIBRARY_SETTINGS:
        module = sys.modules.get(name)
        if module is not None:
            values[name] = {n: getattr(module, n) for n in names if hasattr(module, n)}
    for module in reached_modules(build):
        for attr, value in sorted(vars(module).items()):
            if attr.startswith("_") or isinstance(value, (types.ModuleType, types.FunctionType, type)):
                continue  # (modules and code are sent by reference: a worker imports the same ones)
            if is_plain_data(value) and _small(value):
                values.setdefault(module.__name__, {})[attr] = value
            else:
                digest = _digest(value)
                if digest is not None:
                    digests.setdefault(module.__name__, {})[attr] = digest
    return {"pid": os.getpid(), "values": values, "digests": digests}


def _small(value: Any) -> bool:
    if isinstance(value, np.ndarray):  # (its size is known without pickling it: a settings array may be large)
        return value.nbytes <= _SMALL_BYTES
    try:
        return len(pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)) <= _SMALL_BYTES
    except Exception:  # noqa: BLE001 - not picklable: not sent
        return False


def _digest(value: Any) -> str | None:
    """A digest of what ``value`` holds, the same in every process (None when it cannot be described)."""
    try:
        return describe(value, tensor_values=True)[0]
    except (Undescribable, Exception):  # noqa: BLE001 - the user's objects: not checked
        return None


def apply_module_state(state: ModuleState) -> None:
    """In a worker process: set the notebook's small module values, then check the rest by digest (a SweepError
    naming the attributes that differ). In the notebook's own process (a thread-pool executor) nothing is done."""
    if not state or state.get("pid") == os.getpid():
        return
    for name, attributes in state["values"].items():
        module = importlib.import_module(name)
        for attr, value in attributes.items():
            current = getattr(module, attr, None)
            if type(current) is dict and type(value) is dict and name.startswith("ptort_lab."):
                current.update(value)  # (a dict of presets other modules hold too: updated in place)
            else:
                setattr(module, attr, value)
    differ = []
    for name, attributes in state["digests"].items():
        module = importlib.import_module(name)
        for attr, digest in attributes.items():
            if _digest(getattr(module, attr, None)) != digest:
                differ.append(f"{name}.{attr}")
    if differ:
        shown = ", ".join(differ[:4]) + (f" and {len(differ) - 4} more" if len(differ) > 4 else "")
        raise SweepError(f"{shown} {'holds' if len(differ) == 1 else 'hold'} other values in the sweep's worker "
                         "processes than in the notebook: a worker imports the module afresh from its file, and a "
                         "value set at run time that is not a small plain value (a number, a string, a small "
                         "array or list of them) cannot be sent to it, so its rows would be computed with other "
                         "settings.",
                         hint="Run the sweep with executor='serial', make the value a knob of the builder, or set it "
                              "in the module's file.", locate=False)


__all__ = ["module_state", "apply_module_state", "reached_modules", "is_plain_data",
           "user_module", "ModuleState", "LIBRARY_SETTINGS"]
