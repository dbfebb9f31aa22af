"""Views of pipelines, kernels and runs: diagrams (DOT/SVG/PNG), kernel IR with pipes, matplotlib timelines."""
from __future__ import annotations

from .diagrams import Diagram, draw_pipeline, pipeline_dot, pipeline_json, render_svg
from .figures import figure_png
from .ir_view import KernelView, kernel_view
from .timeline import compare, plot_timeline

__all__ = ["pipeline_dot", "pipeline_json", "render_svg", "draw_pipeline", "Diagram", "kernel_view", "KernelView",
           "plot_timeline", "compare", "figure_png"]
