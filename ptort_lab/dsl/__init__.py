"""The DSL layer: types, axes, @kernel + tl.* tracing to Kernel IR, @workload, CSP and schedules (no simulation)."""
from __future__ import annotations

from . import tl
from .axes import Dense, DenseDyn, Ragged, Sparse
from .csp import Channel, Event, Process, consume, process, query, record, replicate, send, synchronize, try_send
from .expr import LoopVar
from .ir import KernelIR, KernelParam, Literal, Op, OpKind, Value
from .kernel import Kernel, jit_kernel, kernel
from .runtime_slots import slot_bool, slot_i64, slot_u64
from .schedule import DispatchPolicy, Schedule, TaskWindow, TimingPolicy, WindowMode
from .task_graph import Deps, DepsMode, Pools, ReadyPolicy, StartPolicy, TaskGraphConfig, TracePolicy
from .tree import NodeKind
from .typecheck import (
                  LayoutIncompatibleError,
                  TensorLayout,
                  TensorReplicate,
                  TensorShard,
                  TypeCheckContext,
                  TypeChecker,
                  TypeErrorInfo,
                  TypeErrorKind,
                  tensor_layout_join,
                  validate_axis_index,
)
from .types import Constexpr, DType, In, InOut, Location, Out, Scalar, ScalarType, Tensor, TensorView, Tile, TileType
from .wiring import Pipeline, connect, per_core
from .workload import (
                  P,
                  Task,
                  Workload,
                  combine,
                  cond,
                  empty,
                  for_each,
                  parallel_for,
                  select,
                  sequential,
                  slot_load_u64,
                  slot_set_u64,
                  task,
                  workload,
)

pto = tl
KernelRef = Kernel  # the reference's name for a @kernel function

__all__ = [
    "tl", "pto", "Dense", "DenseDyn", "Ragged", "Sparse", "Channel", "Event", "Pipeline", "Process", "connect",
    "consume", "process", "query", "record", "replicate", "send", "synchronize", "try_send", "LoopVar", "KernelIR",
    "KernelParam", "Literal", "Op", "OpKind", "Value", "Kernel", "jit_kernel", "kernel", "DispatchPolicy",
    "Schedule", "TaskWindow", "TimingPolicy", "WindowMode", "Deps", "DepsMode", "Pools", "ReadyPolicy", "StartPolicy",
    "TaskGraphConfig", "TracePolicy", "KernelRef", "LayoutIncompatibleError", "TensorLayout",
    "TensorReplicate", "TensorShard", "TypeChecker", "TypeCheckContext", "TypeErrorInfo", "TypeErrorKind",
    "tensor_layout_join", "validate_axis_index", "Constexpr", "DType", "In", "InOut", "Location", "Out", "Scalar",
    "ScalarType", "Tensor", "TensorView", "Tile", "TileType", "P", "Task", "Workload", "combine", "cond", "empty",
    "for_each", "parallel_for", "select", "sequential", "task", "workload", "slot_u64", "slot_i64", "slot_bool",
    "slot_set_u64", "slot_load_u64", "NodeKind", "per_core",
]
