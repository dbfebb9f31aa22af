"""Sphinx configuration of the ptort_lab documentation site (``make docs`` -> docs/_build/html).

The build needs no network: no intersphinx (references into numpy, the standard library and the other libraries
have no inventory here, so they stay plain text, see ``nitpick_ignore_regex``), and the tutorials are the
notebooks of ``notebooks/`` (``docs/tutorials`` is a symlink to it) rendered from their stored outputs, never
executed by this build (``make test`` executes and checks them with nbval).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
# The build imports ptort_lab.sweeps (its API page): whatever it caches goes under docs/_build, never into the user's
# cache (~/.cache/ptort_lab or $PTORT_LAB_CACHE). Set before anything imports ptort_lab.
os.environ["PTORT_LAB_CACHE"] = str(DOCS / "_build" / "ptort_lab_cache")

import ptort_lab  # noqa: E402 - after the path set-up

project = "ptort_lab"
author = "the ptort_lab authors"
copyright = "the ptort_lab authors, Apache-2.0"  # noqa: A001 - Sphinx's name
release = version = ptort_lab.__version__

extensions = [
    "myst_nb",                   # Markdown pages and the notebooks (includes myst_parser)
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "ptort_docs",                # docs/_ext: the API page from ptort_lab.__all__, stored outputs, public names
]

# Warnings are errors (-W in the Makefile) and every cross-reference must resolve (-n).
nitpicky = True
# References into libraries that have no inventory in an offline build, and only those: the standard library
# (builtins, typing, collections.abc, ...), numpy and the notebook libraries. Anything under ptort_lab must resolve.
_EXTERNAL_MODULES = (
    "numpy", "np", "numpy.typing", "npt", "ml_dtypes", "matplotlib", "IPython", "ipywidgets", "anywidget", "pandas",
    "distributed", "dask", "ray", "cloudpickle", "concurrent", "typing", "typing_extensions", "collections",
    "enum", "pathlib", "os", "io", "types", "dataclasses", "threading", "contextlib", "abc", "numbers",
    "datetime", "json", "builtins", "traitlets",
)
_BUILTIN_NAMES = (
    "object", "type", "int", "float", "complex", "bool", "str", "bytes", "bytearray", "list", "tuple", "dict",
    "set", "frozenset", "None", "NoneType", "Ellipsis", "slice", "range", "callable", "Exception",
    "BaseException", "ValueError", "TypeError", "RuntimeError", "KeyError", "IndexError", "MemoryError",
    "KeyboardInterrupt", "AttributeError", "NotImplementedError", "OSError", "Warning", "UserWarning",
    "ZeroDivisionError", "OverflowError", "ArithmeticError", "LookupError", "StopIteration", "TimeoutError",
)
# typing's names as annotations spell them when they are not evaluated (``Any``, or ``t.Any`` after
# ``import typing as t``).
_TYPING_NAMES = ("Any", "Callable", "Sequence", "Mapping", "Iterable", "Iterator", "Optional", "Union", "NoReturn",
                 "ClassVar", "Generic", "TypeVar", "Protocol")  # not Literal: ptort_lab.Literal is ours
nitpick_ignore_regex = [
    (r"py:.*", r"(%s)(\..+)?" % "|".join(m.replace(".", r"\.") for m in _EXTERNAL_MODULES)),
    (r"py:.*", r"(%s)" % "|".join(_BUILTIN_NAMES)),
    (r"py:.*", r"(t\.)?(%s)" % "|".join(_TYPING_NAMES)),
]

source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "_templates",
    "**/.ipynb_checkpoints",
    "tutorials/src",             # the notebooks' sources (notebooks/src/*.py): not pages
]

# --- MyST and MyST-NB: the notebooks keep the outputs `make notebooks` stored; this build never runs them.
nb_execution_mode = "off"
nb_merge_streams = True
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3
# No widget JavaScript from a CDN: the built tutorials store the explorer as a picture (notebooks/build.py).
nb_ipywidgets_js = {}

# --- autodoc / autosummary: the reference comes from the docstrings.
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": True, "undoc-members": True, "show-inheritance": True}
autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_typehints_format = "short"
add_module_names = False
python_use_unqualified_type_names = True

# --- HTML: the PyData theme, everything served from the build folder.
html_theme = "pydata_sphinx_theme"
html_title = f"ptort_lab {release}"
html_static_path = ["_static"]
html_css_files = ["ptort.css"]
html_theme_options = {
    "navbar_align": "left",
    "show_toc_level": 2,
    "navigation_with_keys": False,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version", "theme-version"],
}
html_show_sourcelink = False
html_copy_source = False
