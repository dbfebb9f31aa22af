"""Load the mypyc-compiled builds of the NPU model's pricing modules when they match their sources, else the Python.

``make`` (``python -m ptort_lab.build_compiled``) compiles ``MODULES`` with mypyc into ``ptort_lab/_compiled/``
with a manifest of their sources' sha256. ``import ptort_lab`` puts a finder first on ``sys.meta_path`` that loads
those builds only when every source still has the digest it was built from and the Python is the one they were built
for; otherwise (a source edited since, another Python, no build, or ``PTORT_LAB_PURE_PYTHON=1``) the plain modules
load, which compute the same times (tests/test_compiled.py compares whole traces). ``status()`` says which it is.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import sys
from pathlib import Path
from typing import Any, Sequence

#: the pricing path of the NPU model (py-spy: about two thirds of a flash-attention run), compiled as one group
MODULES = ("ptort_lab.sim.memory", "ptort_lab.sim.buffers", "ptort_lab.sim.memo", "ptort_lab.sim.npu_run",
           "ptort_lab.sim.residency", "ptort_lab.sim.deps")
GROUP = "ptort_lab_compiled"  # mypyc's shared library of the group is the top-level module GROUP + "__mypyc"
LIBRARY = GROUP + "__mypyc"
PACKAGE_DIR = Path(__file__).resolve().parent
BUILD_DIR = PACKAGE_DIR / "_compiled"
MANIFEST = "manifest.json"
PURE_ENV = "PTORT_LAB_PURE_PYTHON"  # set to 1: always the Python modules


def source_path(module: str, package_dir: Path = PACKAGE_DIR) -> Path:
    """The .py file of ``module`` (``ptort_lab.sim.memory`` -> ``<package_dir>/sim/memory.py``)."""
    return package_dir.joinpath(*module.split(".")[1:]).with_suffix(".py")


def source_digest(path: Path) -> str:
    """The sha256 of a source file's bytes (what a build is checked against)."""
    import hashlib  # (here: ~5 ms that `import ptort_lab` need not pay)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def package_digest(package_dir: Path = PACKAGE_DIR) -> str:
    """The sha256 of every .py file of the package (paths and bytes): the compiled modules bake in what they import
    from the others (a field's type, a class's attributes), so an edit anywhere retires the build."""
    import hashlib
    h = hashlib.sha256()
    for path in sorted(package_dir.rglob("*.py")):
        relative = path.relative_to(package_dir)
        if any(part.startswith(".") for part in relative.parts) or not path.is_file():
            continue  # (an editor's lock link .#costs.py, JupyterLab's .ipynb_checkpoints: not sources)
        h.update(str(relative).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def build_tag() -> str:
    """The interpreter a build is for: its cache tag and extension suffix (``cpython-311 .cpython-311-x86_64...``)."""
    return f"{sys.implementation.cache_tag} {importlib.machinery.EXTENSION_SUFFIXES[0]}"


def usable_files(build_dir: Path = BUILD_DIR, package_dir: Path = PACKAGE_DIR,
                 environ: Any = os.environ) -> tuple[dict[str, Path], str]:
    """The compiled file of each module (and of the group's library) when the build in ``build_dir`` may be used,
    else ``{}``; and why, in words."""
    if environ.get(PURE_ENV, "") not in ("", "0"):
        return {}, f"pure Python ({PURE_ENV} is set)"
    import json  # (here, as hashlib)
    try:
        manifest = json.loads((build_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}, "pure Python (no compiled build: run `make` or `python -m ptort_lab.build_compiled`)"
    if not isinstance(manifest, dict) or manifest.get("python") != build_tag():
        return {}, f"pure Python (the compiled build is for another Python: {manifest.get('python')!r})"
    files: dict[str, Path] = {}
    modules = manifest.get("modules", {})
    for module in MODULES:  # all or none: compiled modules call each other directly
        entry = modules.get(module)
        source = source_path(module, package_dir)
        if not isinstance(entry, dict) or not source.is_file() or entry.get("sha256") != source_digest(source):
            return {}, f"pure Python ({source.name} changed since the compiled build: run `make` to rebuild it)"
        files[module] = build_dir / str(entry.get("file"))
    if manifest.get("package_sha256") != package_digest(package_dir):
        return {}, "pure Python (ptort_lab's sources changed since the compiled build: run `make` to rebuild it)"
    files[LIBRARY] = build_dir / str(manifest.get("library"))
    missing = [path.name for path in files.values() if not path.is_file()]
    if missing:
        return {}, f"pure Python (the compiled build misses {', '.join(sorted(missing))}: run `make` to rebuild it)"
    return files, f"compiled ({len(MODULES)} modules with mypyc: {', '.join(m.rsplit('.', 1)[1] for m in MODULES)})"


class CompiledFinder:  # (a meta path finder; importlib.abc costs 10 ms to import)
    """Finds the compiled build of ``MODULES`` (decided once, on the first of them imported); None for every other
    module, so the usual finders load it."""

    def __init__(self) -> None:
        self.files: dict[str, Path] | None = None
        self.reason = "pure Python (no module of the build imported yet)"

    def find_spec(self, fullname: str, path: Sequence[str] | None = None,
                  target: Any = None) -> importlib.machinery.ModuleSpec | None:
        if fullname not in _NAMES:
            return None
        if self.files is None:
            self.files, self.reason = usable_files()
        file = self.files.get(fullname)
        return importlib.util.spec_from_file_location(fullname, file) if file is not None else None


_NAMES = frozenset(MODULES) | {LIBRARY}
_finder = CompiledFinder()


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (once; ``import ptort_lab`` does it before any of MODULES)."""
    if not any(isinstance(f, CompiledFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _finder)


def loads_compiled(module: str) -> bool:
    """Whether ``module`` (one of ``MODULES``) is loaded from the compiled build: what ptort_lab's finder chose when the
    first of them was imported (False before that, and when the finder was never asked)."""
    return _finder.files is not None and module in _finder.files


def status() -> str:
    """Which modules this process runs: ``compiled (...)`` or ``pure Python (why)``."""
    loaded = [sys.modules.get(m) for m in MODULES]
    if any(m is None for m in loaded):
        return usable_files()[1]  # (what importing them would load)
    native = sum(not str(getattr(m, "__file__", "")).endswith(".py") for m in loaded)
    if native == len(MODULES) or (native == 0 and _finder.reason.startswith("pure")):
        return _finder.reason
    return f"pure Python ({len(MODULES) - native} of the {len(MODULES)} modules imported before ptort_lab's finder)"


__all__ = ["MODULES", "install", "status", "loads_compiled"]
