"""Module settings a sweep's worker processes must see as the notebook sees them.

A worker process imports a module fresh (cloudpickle sends a module, and a function defined in one, by reference),
so a value the notebook set at run time (``settings.TILES = 16``, ``ptort_lab.sim.engine.MAX_STEPS = ...``) would
be the file's value there, and the pool's rows would differ from this process's. ``module_state`` records the
public attributes of every user module the builder reaches and of the classes its file defines (``Cfg.TILE = 128``:
a worker's class is the file's too), and ptort_lab's documented run settings: a small plain value (a number, a
short string, a small container of them) as itself, anything else (a large array, a settings object) as a digest
of what it holds. ``apply_module_state`` runs in a worker: in another process it sets the small values, then checks
every digest against the module as that process has it, and refuses (naming the attribute) where a value set at run
time cannot be sent, rather than compute rows with other settings. In the notebook's own process (a thread pool)
nothing is set: the modules are the very ones the notebook holds.
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
from .fingerprint import (
    Undescribable,
    as_written,
    describe,
    global_chains,
    global_names,
    instance_attributes,
    is_library_module,
    read_chain,
)

# ptort_lab's own module settings that the docs tell users to change at run time (limits and machine presets).
LIBRARY_SETTINGS = (("ptort_lab.sim.engine", ("MAX_STEPS", "MAX_STEPS_WITHOUT_PROGRESS", "MAX_RUN_BYTES")),
                    ("ptort_lab.dsl.steps", ("MAX_TASKS", "MAX_PIPELINE_TASKS", "MAX_LOOP_ITERATIONS",
                                             "MAX_LISTING_STEPS_WITHOUT_TASKS")),
                    ("ptort_lab.sim.machine", ("MACHINES",)))
_MAX_OBJECTS = 20_000  # how much of the builder's reach is walked looking for modules
_PLAIN = (type(None), bool, int, float, complex, str, bytes, np.generic, np.ndarray, enum.Enum)

# {"pid": the notebook's, "values": {module: {path: value}}, "digests": {module: {path: digest}},
#  "same": {module: {path: function or class}}, "unchecked": ["module.path", ...]}
ModuleState = dict[str, Any]
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


def _readers(build: Any) -> list[types.FunctionType]:
    """The user functions ``build`` may run, reached as its key reaches them: through globals, closures, defaults,
    classes and objects, and what they read through modules (not every function a module it names holds)."""
    functions: list[types.FunctionType] = []
    seen: set[int] = set()
    todo = [build]
    while todo and len(seen) < _MAX_OBJECTS:
        obj = todo.pop()
        if id(obj) in seen or isinstance(obj, types.ModuleType):
            continue
        seen.add(id(obj))
        if isinstance(obj, types.FunctionType) and not is_library_module(obj.__module__ or ""):
            functions.append(obj)
            todo += [value for _, _, value in _reads(obj)]
        todo.extend(_parts(obj, {}))
    return functions


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
    """What a worker must match: ptort_lab's run settings, and the settings of the user modules ``build`` reaches
    (their attributes and their classes'): small plain values and code found by name as themselves, anything else by
    digest; and what the builder reads through an object of theirs that has no digest, checked too."""
    values: dict[str, dict[str, Any]] = {}
    for name, names in LIBRARY_SETTINGS:
        module = sys.modules.get(name)
        if module is not None:
            values[name] = {n: getattr(module, n) for n in names if hasattr(module, n)}
    state: ModuleState = {"pid": os.getpid(), "values": values, "digests": {}, "same": {}, "unchecked": []}
    for module in reached_modules(build):
        for path, value in _settings(module):
            _record(state, module.__name__, path, value)
    for name, path, value in (read for fn in _readers(build) for read in _reads(fn)):
        _record_read(state, name, path, value)
    return state


def _record(state: ModuleState, module: str, path: str, value: Any) -> None:
    """Note a setting for a worker: as itself (a small plain value, code found by name), else by digest (none when
    it has no stable description: a module's attribute the builder may never read)."""
    if isinstance(value, types.ModuleType):
        return  # (a worker imports the same one)
    if (is_plain_data(value) or _by_name(value)) and _small(value):
        state["values"].setdefault(module, {})[path] = value
    elif (digest := _digest(value)) is not None:
        state["digests"].setdefault(module, {})[path] = digest


def _record_read(state: ModuleState, module: str, path: str, value: Any) -> None:
    """Note what the builder reads at ``path`` for a worker to check, unless a setting on the way covers it (a class
    sent, an object checked whole); what can be neither sent nor checked is noted as such (the pool refuses)."""
    parts = path.split(".")
    covered = {p for kind in ("values", "digests") for p in state[kind].get(module, {})}
    if isinstance(value, types.ModuleType) or any(".".join(parts[:n]) in covered for n in range(1, len(parts) + 1)):
        return
    # (checked, not set: an object of the user's is not patched in the worker, as a module's value is replaced)
    if _by_name(value) and _small(value):  # code: the worker's must be the very one (not its globals' digest)
        state["same"].setdefault(module, {})[path] = value
    elif (digest := _digest(value)) is not None:
        state["digests"].setdefault(module, {})[path] = digest
    elif not is_library_module(type(value).__module__) and f"{module}.{path}" not in state["unchecked"]:
        state["unchecked"].append(f"{module}.{path}")  # (a library object holds no setting: a lock, a logger)


def _settings(module: types.ModuleType) -> list[tuple[str, Any]]:
    """(dotted path, value) of a user module's public settings: its attributes and its classes' (``Cfg.TILE``)."""
    found: list[tuple[str, Any]] = []
    for attr, value in sorted(vars(module).items()):
        if not attr.startswith("_"):
            found += _member_settings(value, module.__name__, attr, attr)
    return found


def _member_settings(value: Any, module: str, qualname: str, path: str) -> list[tuple[str, Any]]:
    """The settings an attribute holds: a class its module's file defines, its attributes (a worker's class is the
    file's); the file's own code, none (a worker imports the same); anything else (a function bound at run time
    too), itself."""
    if isinstance(value, type) and as_written(value, module, qualname):
        return _class_settings(value, module, path)
    return [] if as_written(value, module, qualname) else [(path, value)]


def _class_settings(cls: type, module: str, path: str) -> list[tuple[str, Any]]:
    """(dotted path, value) of the public attributes of a class ``module``'s file defines, nested classes included."""
    if issubclass(cls, enum.Enum):  # (its members are the file's, and cannot be assigned)
        return []
    found: list[tuple[str, Any]] = []
    for attr, value in sorted(vars(cls).items()):
        if not attr.startswith("_"):
            found += _member_settings(value, module, f"{cls.__qualname__}.{attr}", f"{path}.{attr}")
    return found


def _reads(fn: types.FunctionType) -> list[tuple[str, str, Any]]:
    """(module, dotted path, value) of what ``fn`` reads through a user module (``settings.SRC.tiles``), as the
    sweep's key describes it: a value the module's digest leaves out (it is opaque) is still checked in a worker."""
    found: list[tuple[str, str, Any]] = []
    for chain in sorted(global_chains(fn.__code__)):
        root = fn.__globals__.get(chain[0])
        if isinstance(root, types.ModuleType) and user_module(root.__name__) is root:
            steps, value = read_chain(root, chain[1:])
            if steps:
                found.append((root.__name__, ".".join(chain[1:steps + 1]), value))
    return found


def _by_name(value: Any) -> bool:
    """A function or class a worker finds by its module and name (a notebook's own goes by value: not sent)."""
    return isinstance(value, (types.FunctionType, type)) and getattr(value, "__module__", None) != "__main__"


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
    naming the attributes that differ, or that the builder reads and none can check). In the notebook's own process
    (a thread-pool executor) nothing is done."""
    if not state or state.get("pid") == os.getpid():
        return
    _refuse_unchecked(state.get("unchecked", []))
    differ = []
    for name, attributes in state["values"].items():
        module = importlib.import_module(name)
        for path, value in attributes.items():
            try:
                _assign(module, path, value)
            except (AttributeError, TypeError):  # a class the worker's module lacks, or one that refuses the value
                differ.append(f"{name}.{path}")
    for name, attributes in state["digests"].items():
        module = importlib.import_module(name)
        for path, digest in attributes.items():
            if _digest(_lookup(module, path)) != digest:
                differ.append(f"{name}.{path}")
    for name, attributes in state.get("same", {}).items():
        module = importlib.import_module(name)
        differ += [f"{name}.{path}" for path, code in attributes.items() if _lookup(module, path) is not code]
    if differ:
        verb = "holds" if len(differ) == 1 else "hold"
        raise SweepError(f"{_names(differ)} {verb} other values in the sweep's worker "
                         "processes than in the notebook: a worker imports the module afresh from its file, and a "
                         "value set at run time that is not a small plain value (a number, a string, a small "
                         "array or list of them) cannot be sent to it, so its rows would be computed with other "
                         "settings.",
                         hint="Run the sweep with executor='serial', make the value a knob of the builder, or set it "
                              "in the module's file.", locate=False)


def _refuse_unchecked(unchecked: list[str]) -> None:
    """A SweepError naming what the builder reads that a worker can neither be given nor check (module_state)."""
    if unchecked:
        one = len(unchecked) == 1
        raise SweepError(f"{_names(unchecked)} cannot be checked in the sweep's worker processes: the builder reads "
                         f"{'it' if one else 'them'} through {'its' if one else 'their'} module, and "
                         f"{'it has' if one else 'they have'} no stable description (an object holding a lock, a "
                         "file or a generator), so a worker, which imports the module afresh from its file, could "
                         "compute its rows with other settings than the notebook's.",
                         hint="Run the sweep with executor='serial', or keep the settings the builder reads in plain "
                              "values (numbers, strings, arrays) or objects made of them.", locate=False)


def _names(paths: list[str]) -> str:
    """``a.X, a.Y`` (at most four, then ``and 3 more``)."""
    return ", ".join(paths[:4]) + (f" and {len(paths) - 4} more" if len(paths) > 4 else "")


def _assign(module: types.ModuleType, path: str, value: Any) -> None:
    """Set ``module``'s setting at ``path`` (``TILES``, ``Cfg.TILE``, ``SRC.tiles``) to the notebook's ``value``."""
    *outer, attr = path.split(".")
    owner: Any = module
    for name in outer:
        found, owner = _find(owner, name)
        if not found:
            raise AttributeError(path)
    found, current = _find(owner, attr)
    if found and (current is value or (is_plain_data(value) and _digest(current) == _digest(value))):
        return  # (the file's value already: a frozen object, or a class that refuses assignment, is left alone)
    if type(current) is dict and type(value) is dict and module.__name__.startswith("ptort_lab."):
        current.update(value)  # (a dict of presets other modules hold too: updated in place)
    else:
        setattr(owner, attr, value)


def _lookup(module: types.ModuleType, path: str) -> Any:
    """``module``'s setting at ``path`` as the worker has it (None where it has none)."""
    value: Any = module
    for name in path.split("."):
        found, value = _find(value, name)
        if not found:
            return None
    return value


def _find(owner: Any, name: str) -> tuple[bool, Any]:
    """(found, value) of ``owner.name`` where the notebook's paths were found: a module's or an object's own
    attributes, else its class's (without running a property or __getattr__)."""
    if isinstance(owner, types.ModuleType):
        return name in vars(owner), vars(owner).get(name)
    if not isinstance(owner, type):
        state = instance_attributes(owner)
        if name in state:
            return True, state[name]
        owner = type(owner)
    for klass in owner.__mro__:
        if name in vars(klass):
            return True, vars(klass)[name]
    return False, None


__all__ = ["module_state", "apply_module_state", "reached_modules", "is_plain_data",
           "user_module", "ModuleState", "LIBRARY_SETTINGS"]
