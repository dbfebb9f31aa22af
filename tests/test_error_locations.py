"""Where an error is located: always the user's own line, never a library frame (IPython, threads, runners), or
none at all; and a UserCodeError's text says where the exception came from (a notebook shows only that text)."""
from __future__ import annotations

import asyncio
import inspect
import os
import runpy
import sys
import threading
import types
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from source_lines import here

from ptort_lab import PtortValueError, Trace, workload
from ptort_lab.errors import UserCodeError, raise_user_error, user_location

MISSING = "/nonexistent/ptort-test/run.json"



def fake_module(name: str, filename: str, source: str) -> types.ModuleType:
    """A module whose code objects carry ``filename`` and whose globals say ``name``, like an installed library."""
    module = types.ModuleType(name)
    exec(compile(source, filename, "exec"), module.__dict__)  # noqa: S102 - test helper
    return module


def load_error(call) -> PtortValueError:
    with pytest.raises(PtortValueError) as ei:
        call()
    return ei.value


@pytest.mark.parametrize("name, filename", [
    ("IPython.core.interactiveshell", "/opt/tools/IPython/core/interactiveshell.py"),  # by module name
    ("ipykernel.ipkernel", "/opt/tools/ipykernel/ipkernel.py"),
    ("somelib.runner", f"{sys.prefix}/lib/python3.11/site-packages/somelib/runner.py"),  # by where it is installed
    ("otherlib.call", "/usr/lib/python3/dist-packages/otherlib/call.py"),
], ids=["ipython", "ipykernel", "site-packages", "dist-packages"])
def test_library_frames_between_the_user_and_ptort_lab_are_skipped(name, filename):
    """user -> library -> ptort_lab: the error is located at the user's line (it used to be the library's)."""
    lib = fake_module(name, filename, "def run(f, *args):\n    return f(*args)\n")
    line = here() + 1
    e = load_error(lambda: lib.run(Trace.load, MISSING))
    assert (e.where.filename, e.where.lineno) == (__file__, line)
    assert e.where.code == "e = load_error(lambda: lib.run(Trace.load, MISSING))"


def test_no_user_frame_gives_no_location():
    """ptort_lab called straight from a thread pool, a thread or an event loop: nothing of the user's is on the
    stack, so the error has no location instead of one inside threading.py or concurrent/futures."""
    with ThreadPoolExecutor(1) as pool:
        assert pool.submit(Trace.load, MISSING).exception().where is None
    box = []
    thread = threading.Thread(target=lambda: box.append(user_location(1)))  # the lambda is user code...
    thread.start()
    thread.join()
    assert box[0].filename == __file__
    errors = []
    thread = threading.Thread(target=_load_into, args=(errors,))
    thread.start()
    thread.join()
    assert errors[0].where.filename == __file__ and errors[0].where.function == "_load_into"
    e = asyncio.run(_load_in_a_worker_thread())
    assert isinstance(e, PtortValueError) and e.where is None


def _load_into(errors: list) -> None:
    try:
        Trace.load(MISSING)
    except PtortValueError as e:
        errors.append(e)


async def _load_in_a_worker_thread() -> BaseException | None:
    try:
        await asyncio.to_thread(Trace.load, MISSING)
    except PtortValueError as e:
        return e
    return None


def test_a_script_run_by_runpy_is_the_users_code(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(f"from ptort_lab import Trace\n\nTrace.load({MISSING!r})\n")
    with pytest.raises(PtortValueError) as ei:
        runpy.run_path(str(script))
    assert (ei.value.where.filename, ei.value.where.lineno) == (str(script), 3)


# -- raise_user_error -------------------------------------------------------------------------------------------------
def user_error(fn) -> UserCodeError:
    try:
        fn()
    except Exception as exc:  # noqa: BLE001 - what ptort_lab does with a user's callback
        with pytest.raises(UserCodeError) as ei:
            raise_user_error(exc, "the test's callback")
        return ei.value
    raise AssertionError("fn did not raise")


def test_an_error_raised_on_the_users_line():
    """The user's own line raised: it is the location; the hint no longer points at a traceback IPython hides."""
    def boom():
        return {}["missing"]
    line = inspect.getsourcelines(boom)[1] + 1
    e = user_error(boom)
    assert e.what == "the test's callback raised KeyError: 'missing'"
    assert (e.where.lineno, e.where.code) == (line, 'return {}["missing"]')
    assert e.hint == "Fix the error in that line (the original exception is kept as this error's __cause__)."
    assert "chained above" not in str(e) and isinstance(e.__cause__, KeyError)
    assert e._render_traceback_()[-1] == e.hint


def test_an_error_raised_inside_a_library_names_that_frame():
    """numpy raised, called from the user's line: located at that line, and the hint names numpy's frame."""
    def reshape():
        return np.reshape(np.arange(3), (2, 2))
    line = inspect.getsourcelines(reshape)[1] + 1
    e = user_error(reshape)
    assert e.what == "the test's callback raised ValueError: cannot reshape array of size 3 into shape (2,2)"
    assert e.where.lineno == line
    assert e.hint.startswith("It was raised inside fromnumeric.py:")
    assert e.hint.endswith(", called from that line: check the values the line passes to it.")


def test_an_error_with_no_user_frame_names_where_it_was_raised():
    lib = fake_module("somelib.convert", f"{sys.prefix}/lib/python3.11/site-packages/somelib/convert.py",
                      "def parse(text):\n    return int(text)\n")
    e = user_error(lambda: lib.parse("x"))
    assert e.what == "the test's callback raised ValueError: invalid literal for int() with base 10: 'x'"
    assert e.where.filename == __file__  # the lambda: the user's innermost frame
    assert e.hint.startswith("It was raised inside convert.py:2 in parse, called from that line")
    try:
        lib.parse("y")
    except ValueError as exc:
        exc.__traceback__ = exc.__traceback__.tb_next  # only the library's frame left
        with pytest.raises(UserCodeError) as ei:
            raise_user_error(exc, "a callback")
    assert ei.value.hint == "It was raised at convert.py:2 in parse; fix the code or the values that reached it."
    assert os.path.basename(ei.value.where.filename) == "test_error_locations.py"


def test_a_builtin_given_as_a_callback_is_named_as_the_culprit_not_our_file():
    """.vector_unit(len): len has no Python frame, so the innermost frame is ptort_lab's call of it; the hint must not
    send the user to ptort_lab's source."""
    from ptort_lab import Dense, DispatchPolicy, DType, In, Out, P, Tensor, Tile, kernel, tl

    @kernel
    def copy_tile(src: In[Tile[4, 4, DType.F32]], dst: Out[Tile[4, 4, DType.F32]]):
        tl.store(dst, tl.add(tl.load(src), 1.0))

    X, Y = Tensor(data=np.ones((2, 4, 4), np.float32)), Tensor(shape=(2, 4, 4), dtype=DType.F32)

    @workload
    def w():
        for b in P(Dense[2]()):
            copy_tile[b](src=X[b], dst=Y[b])

    with pytest.raises(UserCodeError) as ei:
        w().dispatch(DispatchPolicy.round_robin(2)).vector_unit(len).compile().execute()
    assert ei.value.what.startswith("the vector_unit() function (for task 0, copy_tile[0]) raised TypeError: ")
    assert ei.value.hint.startswith("It was raised by the callable itself (a builtin or C function")
    assert "placement.py" not in str(ei.value)


def test_a_workload_body_that_raises_through_the_public_api():
    def lookup(table):
        return table["expert_7"]

    @workload
    def w():
        lookup({})

    with pytest.raises(UserCodeError) as ei:
        w()
    assert ei.value.what == "the body of @workload 'w' raised KeyError: 'expert_7'"
    assert ei.value.where.code == 'return table["expert_7"]'
    assert ei.value.hint.startswith("Fix the error in that line")
