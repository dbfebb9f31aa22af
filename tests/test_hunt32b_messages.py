"""Bug hunt 32b: messages are deterministic. A builder that returns something else than a workload is named by the
type and an address-free repr of what it returned (a generator function and an async function get their own fix:
return the workload); the sweep's other messages that show a user's object strip its memory address."""
from __future__ import annotations

import warnings
from concurrent.futures import Executor
from typing import Any

import pytest

from ptort_lab.errors import PtortTypeError, PtortValueError
from ptort_lab.explore import Knobs, Study
from ptort_lab.spec_pipeline import build
from ptort_lab.sweeps import run_sweep

KNOBS = Knobs(tile=(64, 64), tiles=2)


def gen(depth, tiles):
    yield build(depth, (64, 64), tiles)


async def coro(depth, tiles):
    return build(depth, (64, 64), tiles)


async def agen(depth, tiles):
    yield build(depth, (64, 64), tiles)


class Thing:
    pass


def thing(depth, tiles):
    return Thing()


def long_list(depth, tiles):
    return [object()] * 50


def none(depth, tiles):
    return None


def _study_error(builder: Any) -> PtortTypeError:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (a coroutine never awaited would warn)
        with pytest.raises(PtortTypeError) as excinfo:
            Study(builder, KNOBS).run()
    return excinfo.value


@pytest.mark.parametrize("builder, what, hint", [
    (gen, "the study's builder returned a generator, not a workload.",
     "gen is a generator function (it yields): return the workload instead of yielding it."),
    (agen, "the study's builder returned an async generator, not a workload.",
     "agen is an async generator function (it yields): return the workload instead of yielding it, from a plain "
     "def."),
    (coro, "the study's builder returned a coroutine, not a workload.",
     "coro is an async function, which a study cannot await: make it a plain def that returns the workload."),
    (thing, "the study's builder returned Thing <test_hunt32b_messages.Thing object at 0x…>, not a workload.",
     "Return the pipeline (connect(...)) or workload to study."),
    (long_list, "the study's builder returned list [<object object at 0x…>, <object object at 0x…>, <object object "
                "at 0x…>, <objec…, not a workload.",
     "Return the pipeline (connect(...)) or workload to study."),
    (none, "the study's builder returned NoneType None, not a workload.",
     "Return the pipeline (connect(...)) or workload to study."),
])
def test_builder_returning_no_workload(builder: Any, what: str, hint: str) -> None:
    e = _study_error(builder)
    assert (e.what, e.hint) == (what, hint)
    assert _study_error(builder).what == what  # the same words every time


def test_sweep_failure_of_a_generator_builder_is_deterministic() -> None:
    def failures() -> list[tuple[str, str, str]]:
        result = run_sweep(gen, depth=[1, 2], tiles=[2], executor="serial", cache=False, progress=False)
        return [(p.error.type, p.error.what, p.error.hint) for p in result.failures]

    first = failures()
    assert first == [("PtortTypeError", "the study's builder returned a generator, not a workload.",
                      "gen is a generator function (it yields): return the workload instead of yielding it.")] * 2
    assert failures() == first


def _sweep_error(kind: type[Exception], builder: Any = build, **kwargs: Any) -> str:
    kwargs = {"depth": [1], "tiles": [2], "executor": "serial", "cache": False, "progress": False, **kwargs}
    with pytest.raises(kind) as excinfo:
        run_sweep(builder, **kwargs)
    return excinfo.value.what  # type: ignore[attr-defined]


def test_sweep_argument_messages_show_no_address() -> None:
    odd = object()
    assert _sweep_error(PtortTypeError, odd) == (
        "sweep() needs a builder function or a Study, got object <object object at 0x…>.")
    assert _sweep_error(PtortTypeError, executor=odd) == (
        "sweep(executor=...) takes a concurrent.futures.Executor or one of 'auto', 'serial', 'processes', got "
        "object <object object at 0x…>.")
    assert _sweep_error(PtortTypeError, progress=odd) == (
        "sweep(progress=...) takes True, False or None, got object <object object at 0x…>.")
    assert _sweep_error(PtortTypeError, cache=odd) == (
        "sweep(cache=...) takes True, False or a folder, got object <object object at 0x…>.")
    assert _sweep_error(PtortValueError, depth=[odd]) == (
        "sweep(depth=...) value <object object at 0x…> is not an int >= 1.")


def test_executor_result_message_shows_no_address() -> None:
    """An executor that gives back something else than the task's outcomes is named without an address."""
    from concurrent.futures import Future

    class Odd(Executor):
        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def]
            future: Future[Any] = Future()
            future.set_result(Thing())
            return future

    with pytest.raises(Exception) as excinfo:
        run_sweep(build, depth=[1], tiles=[2], executor=Odd(), cache=False, progress=False)
    assert "0x…>" in str(excinfo.value) and "Thing <test_hunt32b_messages.Thing object at 0x…>" in str(excinfo.value)


def test_point_index_message_shows_no_address() -> None:
    result = run_sweep(build, depth=[1], tiles=[2], knobs=Knobs(tile=(64, 64)), executor="serial", cache=False,
                       progress=False)
    with pytest.raises(PtortValueError) as excinfo:
        result.point(Thing())  # type: ignore[arg-type]
    assert excinfo.value.what == ("point(<test_hunt32b_messages.Thing object at 0x…>) is not a point of this sweep: "
                                  "it has 1 (0..0).")
