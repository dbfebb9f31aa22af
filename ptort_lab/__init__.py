"""ptort_lab: PTO-style tile kernels and CSP pipelines, simulated on an Ascend-class NPU model.

``import ptort_lab`` loads the DSL, the simulator and the program layer only; matplotlib, IPython and ipywidgets
are imported by ``ptort_lab.viz`` and ``ptort_lab.notebook`` when those are used.
"""
from __future__ import annotations

from . import dsl, errors
from .dsl import *  # noqa: F403 - the DSL is the public surface
from .dsl import __all__ as _dsl_all
from .dsl.csp import send_nowait
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


def load_ipython_extension(ipython):  # type: ignore[no-untyped-def]
    """``%load_ext ptort_lab``: register the %%ptort magic (imports IPython only now)."""
    from .notebook.magic import load_ipython_extension as _load
    _load(ipython)
