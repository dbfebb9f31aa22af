"""Copying or pickling a compiled Program (round 30): refused with a PtortTypeError saying why (its kernels' Python
functions, generated axis classes and run state) and what to copy instead, where it raised a bare TypeError,
AttributeError or PicklingError (deep copy, pickle) or made a shallow copy that changed the original."""
from __future__ import annotations

import copy
import pickle
from typing import Any, Callable

import cloudpickle
import pytest

from ptort_lab.errors import PtortTypeError
from ptort_lab.program import Program
from ptort_lab.spec_pipeline import build

HELD = ("a compiled Program cannot be copied or pickled. It holds the Python functions of its kernels (defined "
        "anywhere: local functions, notebook cells, module globals), the axis classes its workload generated and its "
        "simulator run's state; ")
HINT = ("Copy or pickle its results instead: program.trace() and program.stats() copy and pickle. For another "
        "Program of the same workload, compile it again: program.workload.compile(program.target, **program.options) "
        "(then set_axis_sizes and register_kernel again, if you used them).")


def _program(run: bool = True) -> Program:
    program = build(depth=2, tile=(64, 64), tiles=3).compile()
    return program.execute() if run else program


def _refusal(call: Callable[[], Any]) -> PtortTypeError:
    with pytest.raises(PtortTypeError) as e:
        call()
    assert isinstance(e.value, TypeError)  # (an `except TypeError` around a copy still catches it)
    return e.value


@pytest.mark.parametrize("run", [True, False], ids=["run", "compiled"])
def test_a_deep_copy_is_refused_saying_what_to_copy_instead(run: bool) -> None:
    program = _program(run)
    error = _refusal(lambda: copy.deepcopy(program))
    assert error.what == "copy.deepcopy(program): " + HELD + "those cannot be copied."
    assert error.hint == HINT
    assert error.where is not None and (error.where.filename, error.where.code) == (
        __file__, "error = _refusal(lambda: copy.deepcopy(program))")


@pytest.mark.parametrize("dumps", [*(lambda p, n=n: pickle.dumps(p, protocol=n)
                                     for n in range(pickle.HIGHEST_PROTOCOL + 1)), cloudpickle.dumps],
                         ids=[*(f"pickle-{n}" for n in range(pickle.HIGHEST_PROTOCOL + 1)), "cloudpickle"])
def test_pickling_is_refused_saying_what_to_pickle_instead(dumps: Callable[[Program], bytes]) -> None:
    program = _program()
    error = _refusal(lambda: dumps(program))
    assert error.what == "pickling a Program: " + HELD + "those cannot be pickled."
    assert error.hint == HINT


def test_a_shallow_copy_is_refused_instead_of_sharing_the_originals_settings() -> None:
    """copy.copy shared the run options: set_symbol_u64 on the copy changed the original's channel latency."""
    program = _program()
    error = _refusal(lambda: copy.copy(program))
    assert error.what == ("copy.copy(program): " + HELD + "a shallow copy would share this Program's run state and "
                          "settings (set_symbol_u64 on the copy changes this one).")
    assert error.hint == HINT and program.run_options.channel_latency_cycles == 1000


def test_what_the_hint_says_to_copy_copies_and_pickles() -> None:
    program = _program()
    _refusal(lambda: pickle.dumps(program))
    stats, trace = program.stats(), program.trace()
    assert pickle.loads(pickle.dumps(stats)).total_cycles == copy.deepcopy(stats).total_cycles == stats.total_cycles
    assert pickle.loads(pickle.dumps(trace)).makespan == copy.deepcopy(trace).makespan == trace.makespan
    again = program.workload.compile(program.target, **program.options).execute()
    assert again.stats().total_cycles == stats.total_cycles and again is not program
