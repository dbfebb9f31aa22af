"""The two keys of the sweep cache: what a point asks for (before building) and what ran (after building).

*Point key*: ptort_lab's code version, the builder (its code, closure and the globals it reads, data included),
the compile options, the machine they resolve to, the study mode and the point's knobs. Equal point keys mean the
same builder asked for the same thing, so a rerun (or a resumed sweep) takes the row without building.

*Program key*: ptort_lab's code version, what the builder built (the workload tree: node kinds, fields, loop axes,
channels and their depths, tensors' shapes and dtypes, kernels' IR and code; or a compiled Program: its workload
and options), the compile options and machine, the mode and the knobs. Tensor values are left out (a timing-only
run never reads them), except where a run reads them to decide what runs (runtime slot loads) and when the cost
model is the user's own (it may read anything). Equal program keys mean the same simulation, whoever built it.
"""
from __future__ import annotations

import hashlib
from typing import Any

from ..explore import Study
from ..knobs import Knobs
from ..program import Program
from ..run_cache import tensor_values_count
from ..sim.machine import ascend_910b, get_machine
from .fingerprint import code_version, describe


def effective_machine(options: dict[str, Any]) -> Any:
    """The Machine the options compile for (a preset name resolved), None with a cost model of the user's own."""
    if "cost_model" in options:
        return None
    machine = options.get("machine")
    if machine is None:
        return ascend_910b
    try:
        return get_machine(machine)
    except Exception:  # noqa: BLE001 - a bad value: compile() reports it when the point runs
        return machine


def builder_key(study: Study) -> tuple[str, set[str]]:
    """The hash of everything a point key shares: code version, builder, options, machine, mode; and the source
    files of the user functions the builder reaches."""
    options = study.compile_options
    like_for_like = ("equal_cores",) if study.equal_cores else ()  # (keys of studies without it stay as they were)
    return describe(code_version(), "builder", study.build, options, effective_machine(options), study.mode,
                    *like_for_like, tensor_values=True)


def point_key(builder: str, knobs: Knobs) -> str:
    """The key of one point: the builder's hash and the point's knobs."""
    knob_text = f"{knobs.depth} {knobs.tile[0]}x{knobs.tile[1]} {knobs.tiles} {knobs.cores}"
    return hashlib.sha256(f"point {builder} {knob_text}".encode()).hexdigest()


def program_key(target: Any, knobs: Knobs, study: Study) -> str:
    """The key of what ran: the built workload or Program under the study's options, mode and knobs."""
    options = study.compile_options
    values = tensor_values_count(options) or (isinstance(target, Program) and tensor_values_count(target.options))
    like_for_like = ("equal_cores",) if study.equal_cores else ()
    digest, _ = describe(code_version(), "program", target, options, effective_machine(options), study.mode,
                         knobs, *like_for_like, tensor_values=values)
    return digest


__all__ = ["builder_key", "point_key", "program_key", "effective_machine"]
