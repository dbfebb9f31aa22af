"""JupyterLab renderers for ptort_lab outputs (a prebuilt labextension; this module only locates it).

The extension itself is JavaScript in ``share/jupyter/labextensions/ptort-lab-renderers``; JupyterLab finds it
there on its own. ``_jupyter_labextension_paths`` is the hook older tools (and ``jupyter labextension develop``)
use to locate it from the Python package.
"""
try:
    from ._version import __version__
except ImportError:  # a source checkout that was never built
    __version__ = "0.0.0+unbuilt"

MIME_TYPES = ("application/vnd.ptort.trace+json", "application/vnd.ptort.pipeline+json")


def _jupyter_labextension_paths() -> list[dict[str, str]]:
    return [{"src": "labextension", "dest": "ptort-lab-renderers"}]
