"""The reference's (PTO-WSP v9) Python-to-C++ IR bridge names, for porting: there is no C++ bridge in ptort_lab.

The reference converts a workload into a ``pto_ir_cpp`` module (``workload_to_ir``, ``workload_to_codegen_ir``), prints
and parses that IR (``module_to_string``, ``parse_ir_string``) and says whether its C++ bindings were built
(``HAS_CPP_BINDINGS``, ``cpp``: the bindings module, None without them). Its tests import these and skip with
``skipif(not HAS_CPP_BINDINGS)``. Here ``HAS_CPP_BINDINGS`` is False and ``cpp`` is None, so such tests skip as on a
reference checkout without its C++ build, and each function raises ``IRBridgeError`` (the reference's error when its
bindings are missing) naming what to use instead: ptort_lab simulates the workload tree itself, and that tree is the IR
(``w.kind``, ``w.children()``, the tasks of ``w.compile().enumerate()``), and a kernel's IR prints with
``k.trace().dump()`` (or ``str(k.trace())``).
"""
from __future__ import annotations

from typing import Any, NoReturn

from .errors import PtortError

HAS_CPP_BINDINGS = False  # ptort_lab has no pto_ir_cpp bindings: the simulator runs the Python workload tree
cpp: Any = None  # the reference's bindings module, None without them (always, here)

_INSTEAD = ("The workload tree is the IR here: read w.kind and w.children() (and w.schedule), list the tasks a run "
            "makes with w.compile().enumerate(), and print a kernel's IR with k.trace().dump() (or "
            "str(k.trace())); run the workload with w.compile().execute().")


class IRBridgeError(PtortError):
    """The reference's error of its Python-to-C++ IR bridge (an ``Exception`` there, a PtortError here). Raised by
    ``workload_to_ir``, ``workload_to_codegen_ir``, ``module_to_string`` and ``parse_ir_string``: ptort_lab has no
    C++ bridge."""


def _no_bridge(call: str) -> NoReturn:
    raise IRBridgeError(f"{call}: there is no C++ IR bridge in ptort_lab (HAS_CPP_BINDINGS is False, cpp is None): "
                        "it simulates the Python workload tree itself, with no C++ module to build, print or parse.",
                        hint=_INSTEAD)


def workload_to_ir(workload: Any, module_name: str = "main") -> NoReturn:
    """The reference converts ``workload`` into a C++ IR module; here it raises IRBridgeError (no C++ bridge)."""
    _no_bridge("workload_to_ir(workload)")


def workload_to_codegen_ir(workload: Any, module_name: str = "main") -> NoReturn:
    """The reference (HEAD) converts ``workload`` into a C++ IR module with its codegen inputs; here it raises
    IRBridgeError (no C++ bridge)."""
    _no_bridge("workload_to_codegen_ir(workload)")


def module_to_string(module: Any) -> NoReturn:
    """The reference prints a C++ IR module; here it raises IRBridgeError (no C++ bridge)."""
    _no_bridge("module_to_string(module)")


def parse_ir_string(text: Any) -> NoReturn:
    """The reference parses IR text into a C++ IR module; here it raises IRBridgeError (no C++ bridge)."""
    _no_bridge("parse_ir_string(text)")


__all__ = ["HAS_CPP_BINDINGS", "cpp", "IRBridgeError", "workload_to_ir", "workload_to_codegen_ir", "module_to_string",
           "parse_ir_string"]
