"""Layering: dsl imports nothing from sim/program/viz/notebook, sim no program/viz/notebook; no plotting on import."""
import ast
import os
import subprocess
import sys
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "ptort_lab"
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")
CONFIG = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
def test_import_linter_contracts_hold():
    """`lint-imports` with the contracts in pyproject.toml passes: every contract kept."""
    result = subprocess.run([str(LINT_IMPORTS), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"Contracts: {len(CONFIG['contracts'])} kept, 0 broken." in result.stdout


# -- the same contracts, checked directly on the source (independent of import-linter's view of the tree) ----------
def _imports(path: Path, module: str | None = None) -> list[tuple[int, str]]:
    """(line, absolute module) for every import statement in a ptort_lab source file, relative ones resolved."""
    module = module or ".".join(path.relative_to(ROOT).with_suffix("").parts)
    package = module.rsplit(".", 1)[0]  # the package a module (or a package's __init__) lives in
    out = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append((node.lineno, target))
            out += [(node.lineno, f"{target}.{a.name}") for a in node.names]
    return out


def _violations(source: str, forbidden: list[str]) -> list[str]:
    files = [PACKAGE / f"{source}.py"] if (PACKAGE / f"{source}.py").is_file() else \
        sorted((PACKAGE / source).rglob("*.py"))
    bad = []
    for path in files:
        for line, target in _imports(path):
            if any(target == f or target.startswith(f + ".") for f in forbidden):
                bad.append(f"{path.relative_to(ROOT)}:{line} imports {target}")
    return bad


@pytest.mark.parametrize("contract", [c for c in CONFIG["contracts"] if c["type"] == "forbidden"],
                         ids=lambda c: c["name"][:40])
def test_contract_holds_on_direct_imports(contract):
    """No module of a contract's sources imports a forbidden module directly (relative imports resolved)."""
    bad = []
    for source in contract["source_modules"]:
        bad += _violations(source.removeprefix("ptort_lab."), contract["forbidden_modules"])
    assert bad == []


def test_direct_import_checker_resolves_relative_imports(tmp_path):
    """The checker resolves `from ..sim import engine` in ptort_lab.dsl.x to ptort_lab.sim(.engine), and flags it."""
    path = tmp_path / "x.py"
    path.write_text("import numpy as np\nfrom ..sim import engine\nfrom .kernel import kernel\nfrom . import tl\n")
    assert _imports(path, "ptort_lab.dsl.x") == [
        (1, "numpy"), (2, "ptort_lab.sim"), (2, "ptort_lab.sim.engine"), (3, "ptort_lab.dsl.kernel"),
        (3, "ptort_lab.dsl.kernel.kernel"), (4, "ptort_lab.dsl"), (4, "ptort_lab.dsl.tl")]


def test_import_does_not_load_plotting_or_notebook_libraries():
    """`import ptort_lab` (and ptort_lab.csp) leaves matplotlib, IPython and ipywidgets unloaded."""
    code = ("import sys, ptort_lab, ptort_lab.csp; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('matplotlib', 'IPython', 'ipywidgets')))")
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "PYTHONSTARTUP")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
