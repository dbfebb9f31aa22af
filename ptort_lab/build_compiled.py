"""Compile the NPU model's pricing modules with mypyc into ``ptort_lab/_compiled/`` (``python -m
ptort_lab.build_compiled``; ``make`` runs it). Without a C compiler, Python headers or mypyc it says so and leaves
the Python modules in use; a compile that fails is an error.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from . import compiled
from .compiled import BUILD_DIR, GROUP, LIBRARY, MANIFEST, MODULES, build_tag, source_digest, source_path

# run in a child Python from the project root: mypyc reads [tool.mypy] from its pyproject.toml and names modules by
# their paths; setuptools' build_ext then compiles the generated C (one shared library for the group, one stub per
# module)
_SETUP = """
import sys
from setuptools import Distribution
from mypyc.build import mypycify
target, lib, temp = sys.argv[1:4]
ext = mypycify(sys.argv[4:], opt_level="3", group_name={group!r}, target_dir=target)
dist = Distribution({{"name": {group!r}, "ext_modules": ext, "script_name": "build_compiled"}})
cmd = dist.get_command_obj("build_ext")
cmd.build_lib, cmd.build_temp, cmd.inplace = lib, temp, 0
dist.run_command("build_ext")
"""


def missing_tools() -> str | None:
    """What the build needs and this machine lacks (a C compiler, Python.h, mypyc, setuptools), or None."""
    compiler = (sysconfig.get_config_var("CC") or "cc").split()[0]
    if shutil.which(compiler) is None:
        return f"no C compiler ({compiler})"
    if not (Path(sysconfig.get_paths()["include"]) / "Python.h").is_file():
        return "no Python headers (Python.h; on Debian: apt-get install python3-dev)"
    for module in ("mypyc", "setuptools"):
        try:
            __import__(module)
        except ImportError:
            return f"no {module} (pip install -e '.[dev]')"
    return None


def build(build_dir: Path = BUILD_DIR) -> str:
    """Compile MODULES and replace ``build_dir`` with the result and its manifest; the manifest's line of text."""
    root = compiled.PACKAGE_DIR.parent
    sources = [source_path(m) for m in MODULES]
    digests = {m: source_digest(p) for m, p in zip(MODULES, sources)}  # (what is compiled, read before it is)
    package = compiled.package_digest()
    with tempfile.TemporaryDirectory(prefix="ptort_lab_compiled_") as tmp:
        lib = Path(tmp) / "lib"
        done = subprocess.run(
            [sys.executable, "-c", _SETUP.format(group=GROUP), str(Path(tmp) / "c"), str(lib), str(Path(tmp) / "o"),
             *(str(p.relative_to(root)) for p in sources)], cwd=root, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"mypyc failed (exit {done.returncode}):\n{(done.stdout + done.stderr)[-4000:]}")
        built = {".".join(p.relative_to(lib).parts).split(".cpython")[0].split(".pypy")[0]: p
                 for p in lib.rglob("*") if p.is_file()}
        fresh = build_dir.with_name(build_dir.name + ".new")
        shutil.rmtree(fresh, ignore_errors=True)
        fresh.mkdir()
        for path in built.values():
            shutil.copy2(path, fresh / path.name)
        manifest = {"python": build_tag(), "library": built[LIBRARY].name, "package_sha256": package,
                    "modules": {m: {"file": built[m].name, "sha256": digests[m]} for m in MODULES}}
        (fresh / MANIFEST).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
        shutil.rmtree(build_dir, ignore_errors=True)
        fresh.rename(build_dir)
    return f"compiled {len(MODULES)} modules with mypyc into {build_dir}"


def main() -> int:
    """Build unless up to date (``--force``: always), or say why not (exit 0: the Python modules work everywhere);
    exit 1 when a compile fails."""
    if compiled.usable_files(environ={})[0] and "--force" not in sys.argv[1:]:
        return 0  # (up to date: built from the sources as they are, for this Python)
    missing = missing_tools()
    if missing is not None:
        print(f"ptort_lab: not compiling the pricing modules: {missing}; the Python modules are used (same results, "
              "~1.4x slower on the NPU model).")
        return 0
    try:
        print(f"ptort_lab: {build()}")
    except (RuntimeError, KeyError, OSError) as e:
        print(f"ptort_lab: compiling the pricing modules failed: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
