"""ptort_lab: PTO-style tile kernels and CSP pipelines, simulated on an Ascend-class NPU model.

``import ptort_lab`` loads the DSL and the errors only; the program layer and the simulator load when one of their
names (``Program``, ``Trace``, ``ascend_910b``, ...) is first read or a workload is first compiled, and matplotlib,
IPython and ipywidgets when ``ptort_lab.viz`` or ``ptort_lab.notebook`` are used.
"""
from __future__ import annotations

from importlib import import_module as _import_module
from typing import TYPE_CHECKING, Any

from . import dsl, errors
from .compiled import install as _install_compiled
from .dsl import *  # noqa: F403 - the DSL is the public surface
from .dsl import __all__ as _dsl_all
from .dsl.csp import send_nowait
from .dsl.schedule import register_target as _register_target
from .dsl.workload import Workload
from .errors import (
    CapacityError,
    ChannelClosed,
    ChannelError,
    ChannelFull,
    DeadlockError,
    DSLUsageError,
    ExecutionError,
    KernelExecutionError,
    PipelineError,
    PtoError,
    PtortError,
    PtortTypeError,
    PtortValueError,
    RunLimitError,
    SimulationError,
    TypeCheckError,
)

if TYPE_CHECKING:
    from .program import Program
    from .sim.cost_model import CostModel
    from .sim.costs import NpuCostModel
    from .sim.machine import (
        MACHINES,
        Machine,
        TransferCost,
        VectorCost,
        ascend_910b,
        ascend_910b1,
        ascend_910b4,
        get_machine,
    )
    from .sim.runner import PinnedCosts
    from .sim.stats import ProgramStats
    from .sim.trace import Span, Trace

__version__ = "0.1.0"

__all__ = list(_dsl_all) + [
    "send_nowait", "Program", "CostModel", "NpuCostModel", "PinnedCosts", "Machine", "TransferCost", "VectorCost",
    "MACHINES", "get_machine", "ascend_910b", "ascend_910b1", "ascend_910b4", "ProgramStats", "Span", "Trace",
    "errors", "dsl", "PtortError", "DSLUsageError",
    "PtortTypeError", "PtortValueError", "PipelineError", "ChannelError", "ChannelClosed", "ChannelFull",
    "SimulationError", "DeadlockError", "KernelExecutionError", "CapacityError", "RunLimitError", "PtoError",
    "TypeCheckError", "ExecutionError", "__version__",
]

_install_compiled()  # (before the simulator loads: its pricing modules come compiled when built, compiled.py)

# The program layer and the simulator (most of the import time after numpy) load on first use (PEP 562).
_LAZY = {
    "Program": ".program", "CostModel": ".sim.cost_model", "NpuCostModel": ".sim.costs", "PinnedCosts": ".sim.runner",
    "ProgramStats": ".sim.stats", "Span": ".sim.trace", "Trace": ".sim.trace",
    **{name: ".sim.machine" for name in ("MACHINES", "Machine", "TransferCost", "VectorCost", "ascend_910b",
                                         "ascend_910b1", "ascend_910b4", "get_machine")},
}


if not TYPE_CHECKING:  # mypy reads the imports above, so a misspelt name stays an error there
    def __getattr__(name: str) -> Any:
        """A name of the program layer or the simulator, imported when first read (and kept)."""
        if name not in _LAZY:
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(_import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value


def __dir__() -> list[str]:
    """The module's names, the ones not loaded yet included."""
    return sorted(set(globals()) | set(_LAZY))


def _compile(workload: Workload, target: str, options: dict[str, Any]) -> Program:
    """``workload.compile()``: the simulator's targets, registered now and importing the program layer when used."""
    from .program import Program
    return Program(workload, target, options)


for _target in ("cpu_sim", "npu_sim", "sim"):  # ptort_lab.program registers the same ones when it loads
    _register_target(_target, _compile)


def load_ipython_extension(ipython):  # type: ignore[no-untyped-def]
    """``%load_ext ptort_lab``: register the %%ptort magic (imports IPython only now)."""
    from .notebook.magic import load_ipython_extension as _load
    _load(ipython)
