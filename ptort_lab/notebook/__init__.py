"""The notebook layer: the ``%%ptort`` magic, its rich result, the explorer widget and sweeps.

Glue only: it imports IPython, ipywidgets and (through ptort_lab.viz) matplotlib, and nothing in ptort_lab imports
it (``ptort_lab.load_ipython_extension`` does, lazily, when ``%load_ext ptort_lab`` runs).
"""
from __future__ import annotations

from .display import PtortResult
from .magic import PtortMagics, load_ipython_extension
from .sweep import SweepResult, sweep
from .widgets import Explorer, ExplorerController

__all__ = ["load_ipython_extension", "PtortMagics", "PtortResult", "Explorer", "ExplorerController", "sweep",
           "SweepResult"]
