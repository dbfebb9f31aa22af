"""Content hashes for the sweep cache: a canonical, deterministic description of a program, a builder and options.

``Describer`` walks a Python object graph and feeds a sha256 with what it finds, by type: plain values by value,
numpy arrays by dtype, shape and a hash of their bytes, containers item by item (sets sorted by their items'
hashes), a workload node by its kind, name, schema fields and schedule (never its source line), a kernel by its IR
text and its function, a tensor by name, shape, dtype, location and layout (its values only where they can change a
run's time: see ``tensor_values``). Functions of the user's code are described by their code (bytecode, constants
and names, not file names or line numbers), defaults, closure, the globals they read and what they read through a
module (``settings.Cfg.TILE``, ``settings.CFG.tiles``); library code (the standard library, installed packages,
ptort_lab itself) by its qualified name, since ``code_version()`` covers ptort_lab and other libraries do not change
a simulated time; a library's wrapper of a function (``functools.lru_cache``, ``functools.cache``, what
``functools.wraps`` marks with ``__wrapped__``) by the function it wraps, never by the name it pickles under (an
object of the user's that is known only by its name is ``Undescribable``). A user module is described by its file
and its attributes as they are now, the classes its file defines by their attributes (``Cfg.TILE = 128`` set in the
notebook). An object without a stable description (an open file, a lock, a generator, a socket) makes the whole
description fail with ``Undescribable`` naming where it was found: the point is then simply not cached, never cached
under a key that could match another program (a module's attribute that no code reads through it is left out
instead: it may be a lock no run uses).
"""
from __future__ import annotations

import dataclasses
import enum
import hashlib
import importlib.metadata
import os
import sys
import sysconfig
import types
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from ..dsl import Kernel, Tensor, Workload
from ..dsl.tree import SCHEMAS, NodeKind
from ..dsl.user_code import code_objects, read_chains
from ..errors import SourceLocation, without_addresses
from ..program import Program

MAX_OBJECTS = 2_000_000  # a description past this many objects is refused (the builder holds a whole dataset)
_PACKAGE_DIR = Path(__file__).resolve().parents[1]
_LIBRARY_DIRS = tuple(sorted({os.path.abspath(p) + os.sep for key in ("stdlib", "platstdlib", "purelib", "platlib")
                              if (p := sysconfig.get_paths().get(key))}))
_LIBRARY_PARTS = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")
# What a class body holds that is not its behaviour, or that Python adds later (pickling an instance caches
# __slotnames__ on its class: the class must describe the same before and after).
_CLASS_NOISE = frozenset({"__dict__", "__weakref__", "__module__", "__doc__", "__qualname__", "__annotations__",
                          "__firstlineno__", "__static_attributes__", "__slots__", "__parameters__",
                          "__orig_bases__", "__abstractmethods__", "_abc_impl", "__slotnames__",
                          # a dataclass's fields are its instances' attributes and its annotations; their Field
                          # records hold mappingproxies (metadata) that have no description
                          "__dataclass_fields__", "__dataclass_params__"})


class Undescribable(Exception):
    """An object in the graph has no stable description; ``path`` says where it was reached from."""

    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"{path}: {reason}" if path else reason)


def code_version() -> str:
    """ptort_lab's version and a hash of every source file of the package (and the Python version), as they were
    when this process imported the sweeps: an edited simulator in a source checkout gets new keys, though its
    version string stays the same, and a worker that runs other code than the notebook is told apart."""
    return _CODE_VERSION


def _code_version() -> str:
    h = hashlib.sha256(f"python {sys.version_info[:2]}".encode())
    version = str(getattr(sys.modules["ptort_lab"], "__version__", "?"))  # imported first, as every submodule's parent
    h.update(version.encode())
    for path in sorted(_PACKAGE_DIR.rglob("*.py")):
        h.update(str(path.relative_to(_PACKAGE_DIR)).encode())
        h.update(path.read_bytes())
    return f"{version}+{h.hexdigest()[:16]}"


_CODE_VERSION = _code_version()  # at import: the code this process runs, not what is on disk later


def is_library_module(name: str) -> bool:
    """Whether module ``name`` is library code: ptort_lab, the standard library or an installed package."""
    top = name.partition(".")[0]
    if top in ("ptort_lab", "builtins", "__main__") or top in sys.stdlib_module_names:
        return top != "__main__"
    module = sys.modules.get(name)
    filename = getattr(module, "__file__", None)
    if not isinstance(filename, str):
        return module is not None and not hasattr(module, "__path__") and name != "__main__"
    path = os.path.abspath(filename)
    return path.startswith(_LIBRARY_DIRS) or any(p in path for p in _LIBRARY_PARTS)


@lru_cache(maxsize=1)
def _distributions() -> dict[str, list[str]]:
    try:
        return dict(importlib.metadata.packages_distributions())
    except Exception:  # noqa: BLE001 - broken metadata: the file digest still tells versions apart
        return {}


@lru_cache(maxsize=256)
def _distribution_version(top: str) -> str:
    names = _distributions().get(top, [])
    versions = []
    for name in names:
        try:
            versions.append(f"{name}=={importlib.metadata.version(name)}")
        except Exception:  # noqa: BLE001 - metadata that cannot be read: the file digest counts
            continue
    return " ".join(sorted(versions))


def library_version(module_name: str) -> str:
    """What tells two versions of an installed package apart: its distribution's version and the digest of the
    module's own file ("" for ptort_lab, whose code_version() counts, and the standard library, which is
    Python's version). A builder installed as a package makes the workload as much as one in a notebook."""
    top = module_name.partition(".")[0]
    if top in ("ptort_lab", "builtins", "__main__") or top in sys.stdlib_module_names:
        return ""
    filename = getattr(sys.modules.get(module_name), "__file__", None)
    digest = file_digest(filename)[:16] if isinstance(filename, str) else ""
    return f"{_distribution_version(top)} {digest}".strip()


@lru_cache(maxsize=256)
def _file_digest(filename: str, mtime_ns: int, size: int) -> str:
    with open(filename, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def file_digest(filename: str) -> str:
    """The content hash of a source file ("" when it cannot be read)."""
    try:
        st = os.stat(filename)
        return _file_digest(filename, st.st_mtime_ns, st.st_size)
    except OSError:
        return ""


class Describer:
    """Feeds a sha256 with a canonical description of objects (see the module docstring).

    ``tensor_values``: describe the values of tensors too (a builder's captured data, tensors a cost model of the
    user's own may read); a program's key leaves them out except where the run reads them (runtime slot loads).
    ``sources`` collects the file names of the user functions met (their text is shipped to workers so that
    their errors show the line).
    """

    def __init__(self, *, tensor_values: bool) -> None:
        self.tensor_values = tensor_values
        self._h = hashlib.sha256()
        self._memo: dict[tuple[int, bool], int] = {}
        self._keep: list[Any] = []  # memoised objects stay alive, so their ids are not reused meanwhile
        self._path: list[str] = []
        self._count = 0
        self._open_modules: set[str] = set()  # user modules described (or being described) by this description
        self.sources: set[str] = set()

    # -- output ----------------------------------------------------------------------------------------------------
    def hexdigest(self) -> str:
        return self._h.hexdigest()

    def put(self, tag: str, text: str = "") -> None:
        """One token: a tag and a length-prefixed text, so that no two token sequences read the same."""
        self._h.update(f"{tag}:{len(text)}:{text};".encode("utf-8", "surrogatepass"))

    @contextmanager
    def at(self, step: str) -> Iterator[None]:
        """Describe what follows as reached through ``step`` (for the Undescribable message)."""
        self._path.append(step)
        try:
            yield
        finally:
            self._path.pop()

    def fail(self, reason: str) -> Undescribable:
        return Undescribable(" -> ".join(self._path), reason)

    # -- the walk --------------------------------------------------------------------------------------------------
    def feed(self, obj: Any) -> None:
        """Describe ``obj`` (and everything it holds)."""
        self._count += 1
        if self._count > MAX_OBJECTS:
            raise self.fail(f"it holds more than {MAX_OBJECTS:,} objects")
        t = type(obj)
        if t is int and obj.bit_length() > 4096:  # repr() refuses ints past 4300 digits; hex has no limit
            self.put("bigint", hex(obj))
        elif obj is None or t in (bool, int, float, complex, str):
            self.put(t.__name__, repr(obj))
        elif t in (bytes, bytearray):
            self.put("bytes", hashlib.sha256(obj).hexdigest())
        elif isinstance(obj, enum.Enum):
            self.put("enum", f"{_qualified(type(obj))}.{obj.name}")
        elif isinstance(obj, SourceLocation):
            self.put("loc")  # where something was written never changes what it does
        elif isinstance(obj, np.generic):
            self.put("npscalar", f"{obj.dtype.str}{obj.item()!r}")
        else:
            key = (id(obj), self.tensor_values)  # a container of tensors describes more with their values
            seen = self._memo.get(key)
            if seen is not None:
                self.put("ref", str(seen))
                return
            self._memo[key] = len(self._memo)
            self._keep.append(obj)
            self._compound(obj)

    def _compound(self, obj: Any) -> None:
        t = type(obj)
        if t in (tuple, list):
            self.put(t.__name__, str(len(obj)))
            for i, v in enumerate(obj):
                with self.at(f"[{i}]"):
                    self.feed(v)
        elif t is dict:
            self._items(obj)
        elif t in (set, frozenset):
            self.put("set", str(len(obj)))
            for digest in sorted(self._digest(v) for v in obj):
                self.put("item", digest)
        elif isinstance(obj, np.ndarray):
            self._array(obj)
        elif isinstance(obj, Workload):
            self._workload(obj)
        elif isinstance(obj, Kernel):
            self._kernel(obj)
        elif isinstance(obj, Tensor):
            self._tensor(obj)
        elif isinstance(obj, Program):
            self.put("program")
            self.feed(obj.workload)
            self.feed(obj.options)
        elif isinstance(obj, types.FunctionType):
            self._function(obj)
        elif isinstance(obj, types.CodeType):
            self._code(obj)
        elif isinstance(obj, (types.BuiltinFunctionType, types.MethodWrapperType, types.WrapperDescriptorType,
                              types.MethodDescriptorType, types.ClassMethodDescriptorType)):
            self._builtin(obj)
        elif isinstance(obj, types.MethodType):
            self.put("method")
            self.feed(obj.__func__)
            with self.at("bound to"):
                self.feed(obj.__self__)
        elif isinstance(obj, types.ModuleType):
            self._module(obj)
        elif isinstance(obj, type):
            self._class(obj)
        elif isinstance(obj, (staticmethod, classmethod)):
            self.put(type(obj).__name__)
            self.feed(obj.__func__)
        elif isinstance(obj, property):
            self.put("property")
            for part in (obj.fget, obj.fset, obj.fdel):
                self.feed(part)
        else:
            self._object(obj)

    def _digest(self, obj: Any) -> str:
        """The hash of ``obj`` alone (a set's items are sorted by it: their order differs between processes)."""
        sub = Describer(tensor_values=self.tensor_values)
        sub._path = list(self._path)
        sub._count = self._count
        sub._open_modules = self._open_modules
        sub.feed(obj)
        self._count = sub._count
        self.sources |= sub.sources
        return sub.hexdigest()

    def _items(self, mapping: Any) -> None:
        self.put("dict", str(len(mapping)))
        for k, v in mapping.items():
            self.feed(k)
            with self.at(f"[{_key_text(k)}]"):
                self.feed(v)

    def _array(self, a: np.ndarray[Any, Any]) -> None:
        self.put("ndarray", f"{a.dtype.str}{a.shape}")
        if a.dtype.hasobject:
            self.feed(a.ravel().tolist())
        else:
            raw: Any = np.ascontiguousarray(a).reshape(-1).view(np.uint8)  # bytes of any dtype (bfloat16 too)
            self.put("data", hashlib.sha256(raw).hexdigest() if a.size else "")

    # -- ptort_lab's own kinds -------------------------------------------------------------------------------------
    def _workload(self, node: Workload) -> None:
        """A node: its kind, name, every schema field and its schedule (the tree's derived and cached parts, and
        the source line, are left out). A runtime slot load reads its tensor's values, so they count there."""
        self.put("node", str(node.kind))
        self.feed(node.name)
        reads_values = node.kind is NodeKind.SLOT_LOAD
        saved = self.tensor_values
        self.tensor_values = saved or reads_values
        try:
            for name in SCHEMAS[node.kind].names:
                with self.at(f"{node.kind} field {name}"):
                    self.feed(getattr(node, name))
        finally:
            self.tensor_values = saved
        with self.at("schedule"):
            self.feed(node.schedule)

    def _kernel(self, k: Kernel) -> None:
        """A kernel: its IR text (when it traces without Constexpr values) and its public fields (the function it
        is traced from, its signature, pinned cycles, options); its trace cache is left out."""
        self.put("kernel", k.name)
        try:
            ir = str(k.trace()) if all(n in k.defaults for n in k.constexpr_params) else ""
        except Exception:  # noqa: BLE001 - a body that needs launch-time values: its function describes it
            ir = ""
        self.put("ir", ir)
        with self.at(f"kernel {k.name}"):
            self._public(k)

    def _tensor(self, t: Tensor) -> None:
        """A tensor: its public fields but its values (name, shape, dtype, location, layout, ...); the values
        too where they count (``tensor_values``)."""
        self.feed(type(t))
        self._public(t, skip=("data",))
        if self.tensor_values:
            self.put("values", "unset" if t.data is None else "")
            if t.data is not None:
                self._array(t.data)

    def _public(self, obj: Any, skip: tuple[str, ...] = ()) -> None:
        """An object's public attributes, by name (not ``loc``, not ``skip``): what ptort_lab's classes hold that
        is not run-time state, caches or a source line."""
        state = instance_attributes(obj)
        for name in sorted(state):
            if name.startswith("_") or name == "loc" or name in skip:
                continue
            with self.at(f"attribute {name!r}"):
                self.put("attr", name)
                self.feed(state[name])

    # -- Python code -----------------------------------------------------------------------------------------------
    def _function(self, fn: types.FunctionType) -> None:
        module = fn.__module__ or ""
        if is_library_module(module):  # its code is the library's; what it closes over may be the user's
            self.put("libfn", f"{module}.{fn.__qualname__} {library_version(module)}")
            with self.at(f"function {fn.__qualname__}"):
                self.feed(fn.__defaults__)
                self._closure(fn)
                if "__wrapped__" in fn.__dict__:  # a library's decorator (functools.wraps) that keeps the function
                    with self.at("wrapping"):   # only there, not in its closure
                        self.feed(fn.__dict__["__wrapped__"])
            return
        self.put("fn", fn.__qualname__)
        self.sources.add(fn.__code__.co_filename)
        self._code(fn.__code__)
        # The user's code can read anything it reaches, tensor values too (a cycles= function that looks up per-tile
        # lengths in a Tensor): what it closes over and the globals it reads are described with their values.
        saved = self.tensor_values
        self.tensor_values = True
        try:
            self._function_parts(fn)
        finally:
            self.tensor_values = saved

    def _function_parts(self, fn: types.FunctionType) -> None:
        with self.at(f"function {fn.__qualname__}"):
            with self.at("defaults"):
                self.feed(fn.__defaults__)
                self.feed(fn.__kwdefaults__)
            self._closure(fn)
            names = sorted(n for n in global_names(fn.__code__) if n in fn.__globals__)
            for name in names:
                with self.at(f"global {name!r}"):
                    self.put("global", name)
                    self.feed(fn.__globals__[name])
            for chain in sorted(global_chains(fn.__code__)):
                root = fn.__globals__.get(chain[0])
                if isinstance(root, types.ModuleType):  # (any other global is described whole above)
                    self._read(root, chain)
            if fn.__dict__:
                with self.at("attributes"):
                    self._items(fn.__dict__)

    def _read(self, root: types.ModuleType, chain: tuple[str, ...]) -> None:
        """What code reads through a module (``settings.Cfg.TILE``): the value at the chain's end, or the last object
        on it whose attribute cannot be looked up without running code (then that object whole)."""
        # A module describes an attribute it cannot describe as opaque (the builder may never read it); what the
        # builder does read through it must be keyed, or be Undescribable (the point is then not looked up).
        steps, value = read_chain(root, chain[1:])
        if steps:
            dotted = ".".join(chain[:steps + 1])
            with self.at(f"reads {dotted}"):
                self.put("reads", dotted)
                self.feed(value)

    def _closure(self, fn: types.FunctionType) -> None:
        for name, cell in zip(fn.__code__.co_freevars, fn.__closure__ or ()):
            with self.at(f"closure variable {name!r}"):
                try:
                    value = cell.cell_contents
                except ValueError:  # a cell not yet filled (a name defined later in the enclosing function)
                    self.put("empty")
                    continue
                self.feed(value)

    def _code(self, co: types.CodeType) -> None:
        """What a code object does: its bytecode, names and constants (not its file or line numbers)."""
        self.put("code", co.co_name)
        self.put("ops", hashlib.sha256(co.co_code).hexdigest())
        for part in (co.co_names, co.co_varnames, co.co_freevars, co.co_cellvars):
            self.put("names", " ".join(part))
        self.put("args", f"{co.co_argcount} {co.co_posonlyargcount} {co.co_kwonlyargcount} {co.co_flags}")
        for c in co.co_consts:
            self.feed(c)

    def _builtin(self, fn: Any) -> None:
        owner = getattr(fn, "__self__", None)
        self.put("builtin", f"{getattr(fn, '__module__', None) or ''}.{getattr(fn, '__qualname__', repr(fn))}")
        if owner is not None and not isinstance(owner, (types.ModuleType, type)):
            with self.at("bound to"):
                self.feed(owner)

    def _module(self, m: types.ModuleType) -> None:
        name = m.__name__
        if is_library_module(name):
            self.put("libmodule", f"{name} {library_version(name)}")
            return
        filename = getattr(m, "__file__", None)
        self.put("module", f"{name} {file_digest(filename) if isinstance(filename, str) else ''}")
        if name in self._open_modules:  # modules that import each other: described once
            return
        # Its file says what it defines; what it holds now may differ (settings.TILES = 16 set in the notebook,
        # a value taken from a module it imports, which may have been edited): its other attributes count too.
        self._open_modules.add(name)
        with self.at(f"module {name}"):
            for attr, value in sorted(vars(m).items()):
                if not attr.startswith("__"):
                    self.put("attr", attr)
                    self._member(value, name, attr)

    def _member(self, value: Any, module: str, qualname: str) -> None:
        """An attribute of a user module (or of a class it defines) at ``qualname``: a function its file defines there
        by the file's digest; a class its file defines by its settings; anything else by a digest of its value."""
        if isinstance(value, type) and as_written(value, module, qualname):
            self._class_settings(value, module)
        elif not as_written(value, module, qualname):
            try:
                digest = self._digest(value)
            except Undescribable:  # an attribute the builder may never read (what it reads is keyed: _read)
                digest = "opaque"
            self.put("value", digest)

    def _class_settings(self, cls: type, module: str) -> None:
        """A class its module's file defines: its code is the file's, but its attributes may have been set since
        (``Cfg.TILE = 128`` in the notebook), so each counts as a module's attribute does."""
        self.put("settings", cls.__qualname__)
        with self.at(f"class {cls.__qualname__}"):
            for attr, value in sorted(vars(cls).items()):
                if attr not in _CLASS_NOISE:
                    self.put("attr", attr)
                    self._member(value, module, f"{cls.__qualname__}.{attr}")
        self.put("end", cls.__qualname__)  # (a nested class's attributes are told from its owner's)

    def _class(self, cls: type) -> None:
        if is_library_module(cls.__module__):
            self.put("libclass", f"{_qualified(cls)} {library_version(cls.__module__)}")
            return
        self.put("class", cls.__qualname__)
        with self.at(f"class {cls.__qualname__}"):
            for base in cls.__bases__:
                self.feed(base)
            for name in sorted(vars(cls)):
                if name in _CLASS_NOISE:
                    continue
                with self.at(name):
                    self.put("attr", name)
                    self.feed(vars(cls)[name])

    def _object(self, obj: Any) -> None:
        """Any other object: its class, then its fields (ptort_lab's and the user's classes) or what pickling
        would save (other libraries' classes, whose internals are theirs)."""
        cls = type(obj)
        self.feed(cls)
        for base in (str, bytes, int, float, complex):  # a subclass of a plain value (a NameTemplate, an IntFlag)
            if isinstance(obj, base):
                self.put("value", base.__repr__(obj))
                break
        own = cls.__module__.startswith("ptort_lab")
        if own or not is_library_module(cls.__module__):
            if dataclasses.is_dataclass(obj):
                # (a field(init=False) the object has not set yet is left out, as an unset slot is)
                state = {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj) if hasattr(obj, f.name)}
            else:
                state = instance_attributes(obj)
            if isinstance(obj, (list, tuple)):
                self.feed(list(obj))
            elif isinstance(obj, dict):
                self._items(dict(obj))
            if own:  # ptort_lab keeps run-time state (buffers, counters, caches) in _private attributes
                self._public(obj)
                return
            for name in sorted(state):
                with self.at(f"attribute {name!r}"):
                    self.put("attr", name)
                    self.feed(state[name])
            return
        wrapped = _wrapped(obj)
        if wrapped is not _NOTHING:  # a library's wrapper (functools.lru_cache): what it wraps says what it does
            self.put("wraps")
            with self.at(f"{cls.__name__} wrapping"):
                self.feed(wrapped)
                if isinstance(obj, _LRU_WRAPPER):
                    self.feed(obj.cache_parameters())  # (typed=True tells 3 from 3.0)
        self._reduced(obj, wraps=wrapped is not _NOTHING)

    def _reduced(self, obj: Any, wraps: bool = False) -> None:
        """What pickling would save of a library's object. An object pickled by its name (``reduced`` is a str: a C
        function wrapper, a singleton) is described by that name only where the name says what it is: a library's
        object (its qualified name and version), or a wrapper whose wrapped function was described (``wraps``)."""
        try:
            reduced = obj.__reduce_ex__(4)
        except Exception as e:  # noqa: BLE001 - what pickling refuses has no stable description either
            raise self.fail(f"{_short(obj)} has no stable description ({type(e).__name__}: {e})") from None
        if isinstance(reduced, str):
            if wraps:
                return
            module = _module_of(obj)
            if not is_library_module(module):  # the user's code, known by a name an edit keeps: never keyed
                raise self.fail(f"{_qualified(type(obj))} {module}.{reduced} is known only by its name, which stays "
                                "the same when its code is edited (pickle saves it by name)")
            self.put("global", f"{module}.{reduced} {library_version(module)}")
            return
        self.put("reduce", str(len(reduced)))
        for i, part in enumerate(reduced):
            with self.at(f"{type(obj).__name__} state"):
                self.feed(list(part) if i >= 3 and part is not None else part)


_NOTHING: Any = object()  # no __wrapped__
_LRU_WRAPPER = type(lru_cache(maxsize=None)(len))  # functools._lru_cache_wrapper (functools.cache makes one too)


def _wrapped(obj: Any) -> Any:
    """What a library's wrapper object wraps (its ``__wrapped__``: functools.lru_cache, functools.cache and
    functools.update_wrapper set it), else ``_NOTHING``."""
    try:
        return getattr(obj, "__wrapped__", _NOTHING)
    except Exception:  # noqa: BLE001 - a proxy whose __getattr__ raises: described as any object is
        return _NOTHING


def _module_of(obj: Any) -> str:
    """The module pickle looks a by-name object up in: its ``__module__``, else its class's."""
    try:
        module = getattr(obj, "__module__", None)
    except Exception:  # noqa: BLE001 - a __getattr__ that raises
        module = None
    return module if isinstance(module, str) else type(obj).__module__


def instance_attributes(obj: Any) -> dict[str, Any]:
    """An object's instance attributes: its __dict__ and every __slots__ entry that is set."""
    state = dict(getattr(obj, "__dict__", {}))
    for klass in type(obj).__mro__:
        slots = klass.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name in ("__dict__", "__weakref__") or name in state:
                continue
            try:
                state[name] = getattr(obj, name)
            except AttributeError:
                continue
    return state


def global_names(co: types.CodeType) -> set[str]:
    """Every name a code object (and the functions nested in it) may read as a global."""
    names = set(co.co_names)
    for c in co.co_consts:
        if isinstance(c, types.CodeType):
            names |= global_names(c)
    return names


def _key_text(key: Any) -> str:
    """A dict key for a path in a message (a key whose repr raises is named by its type)."""
    try:
        return without_addresses(repr(key))[:80]
    except Exception:  # noqa: BLE001 - the user's __repr__
        return f"<{type(key).__qualname__} key>"


@lru_cache(maxsize=4096)
def global_chains(co: types.CodeType) -> frozenset[tuple[str, ...]]:
    """The attribute chains a code object (and code nested in it) reads from globals: ("settings", "Cfg", "TILE")
    (``dsl.user_code.read_chains``' global reads, up to their first subscript; cached: a builder's functions are keyed
    again at every sweep)."""
    found: set[tuple[str, ...]] = set()
    for code in code_objects(co):
        for kind, name, steps in read_chains(code):
            attrs = []
            for is_attribute, key in steps:
                if not is_attribute:
                    break
                attrs.append(key)
            if kind == "global" and attrs:
                found.add((name, *attrs))
    return frozenset(found)


def read_chain(root: Any, names: tuple[str, ...]) -> tuple[int, Any]:
    """(how many of ``names`` were looked up, the value reached) going down ``root.a.b...`` by ``static_attribute``."""
    value = root
    for steps, name in enumerate(names):
        found, attr = static_attribute(value, name)
        if not found:
            return steps, value
        value = attr
    return len(names), value


def static_attribute(obj: Any, name: str) -> tuple[bool, Any]:
    """(found, value) of ``obj.name`` without running code, in the user's modules, classes, objects and namespaces."""
    if isinstance(obj, types.ModuleType):
        space = {} if is_library_module(obj.__name__) else vars(obj)
        return name in space, space.get(name)
    if isinstance(obj, type):
        found, value = _class_attribute(obj, name)
        # (a classmethod or property runs with the class, which is then described whole; a function does not)
        return found and (not _binds(value) or isinstance(value, (types.FunctionType, staticmethod))), value
    if is_library_module(type(obj).__module__) and not isinstance(obj, types.SimpleNamespace):
        return False, None  # (a library object describes itself whole)
    return _instance_attribute(obj, name)


def _instance_attribute(obj: Any, name: str) -> tuple[bool, Any]:
    """``obj.name`` as Python finds it: the instance's attributes, else plain data of its class."""
    found, value = _class_attribute(type(obj), name)
    slot = isinstance(value, types.MemberDescriptorType)
    if found and _binds(value) and not slot:
        return False, None  # a method or property runs with the object, which is then described whole
    state = instance_attributes(obj)
    if name in state:
        return True, state[name]
    return found and not slot, value


def _binds(value: Any) -> bool:
    """A descriptor: what an attribute lookup gives is not the value itself (a method bound, a property's result)."""
    return hasattr(type(value), "__get__")


def _class_attribute(cls: type, name: str) -> tuple[bool, Any]:
    """(found, value) of ``name`` in the class dicts of ``cls``'s user classes (a library base ends the search)."""
    for klass in cls.__mro__:
        if is_library_module(klass.__module__):
            break
        if name in vars(klass):
            return True, vars(klass)[name]
    return False, None


def as_written(value: Any, module: str, qualname: str) -> bool:
    """Whether ``value`` is the function or class ``module``'s file defines at ``qualname`` (the file's digest
    describes its code), not one bound there at run time (``settings.policy = settings.fast``) or made by a call."""
    inner = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
    if isinstance(inner, property):
        inner = inner.fget
    return (isinstance(inner, (types.FunctionType, type)) and getattr(inner, "__module__", None) == module
            and getattr(inner, "__qualname__", None) == qualname)


def _qualified(cls: type) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


def _short(obj: Any) -> str:
    """``type repr`` in at most 120 characters (memory addresses are not shown)."""
    try:
        text = without_addresses(repr(obj))
    except Exception:  # noqa: BLE001 - a repr that fails still leaves the type
        text = ""
    text = text if len(text) <= 100 else text[:99] + "…"
    return f"{type(obj).__module__}.{type(obj).__qualname__} {text}".strip()


def describe(*parts: Any, tensor_values: bool) -> tuple[str, set[str]]:
    """The sha256 hex digest of ``parts`` described in order, and the source files of the user functions met."""
    d = Describer(tensor_values=tensor_values)
    try:
        for part in parts:
            d.feed(part)
    except RecursionError:
        raise d.fail("it is nested too deeply to describe") from None
    except Undescribable:
        raise
    except Exception as e:  # noqa: BLE001 - the user's objects (a __repr__ or __eq__ that raises): not keyed
        raise d.fail(f"describing it raised {type(e).__name__}: {e}") from None
    return d.hexdigest(), d.sources


__all__ = ["Describer", "Undescribable", "code_version", "describe", "file_digest", "is_library_module",
           "instance_attributes", "global_chains", "read_chain", "static_attribute", "as_written"]
