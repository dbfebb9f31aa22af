"""Running the user's bodies (kernel, @workload, loop and process bodies): refuse the ones that would silently run
nothing (generators, coroutines), and turn what they raise into one located ptort_lab error."""
from __future__ import annotations

import dis
import inspect
import linecache
from typing import Any, Callable

from ..errors import DSLUsageError, SourceLocation, raise_user_error
from .expr import clear_refusal, recover_refusal


def body_location(fn: Any) -> SourceLocation | None:
    """The first ``yield``/``await`` line of a function (else its ``def`` line), for errors about its kind."""
    code = getattr(inspect.unwrap(getattr(fn, "func", fn)), "__code__", None)
    if code is None:
        return None
    line, current = code.co_firstlineno, code.co_firstlineno
    for ins in dis.get_instructions(code):
        starts = ins.starts_line
        if isinstance(starts, int) and not isinstance(starts, bool):
            current = starts
        positions = getattr(ins, "positions", None)
        if ins.opname in ("YIELD_VALUE", "YIELD_FROM", "GET_AWAITABLE", "GET_AITER", "GET_ANEXT"):
            line = positions.lineno if positions is not None and positions.lineno else current
            break
    else:  # no yield or await: name the `def` line rather than a decorator above it
        for n in range(line, line + 20):
            if linecache.getline(code.co_filename, n).lstrip().startswith(("def ", "async def ")):
                line = n
                break
    return SourceLocation(code.co_filename, line, code.co_name, linecache.getline(code.co_filename, line).strip())


def generator_kind(fn: Any) -> str | None:
    """'a generator function (it uses `yield`)' or 'an `async def` function' when calling ``fn`` runs none of it."""
    if inspect.isgeneratorfunction(fn) or inspect.isasyncgenfunction(fn):
        return "a generator function (it uses `yield`)"
    if inspect.iscoroutinefunction(fn):
        return "an `async def` function"
    return None


def refuse_generator(fn: Any, what: str, builds: str, hint: str) -> None:
    """Refuse a body that is a generator or coroutine function: calling it returns at once without running a
    line, so it would silently build nothing."""
    kind = generator_kind(fn)
    if kind is None:
        return
    where = body_location(fn)
    raise DSLUsageError(f"{what} is {kind}: calling it returns without running a line of its body, so it would "
                        f"{builds}.", hint=hint, where=where, locate=where is None)


def refuse_generator_result(result: Any, what: str, builds: str, hint: str) -> None:
    """Refuse a body call that returned a generator or coroutine (e.g. a lambda returning a generator expression)."""
    if not (inspect.isgenerator(result) or inspect.iscoroutine(result) or inspect.isasyncgen(result)):
        return
    close = getattr(result, "close", None)
    if close is not None:
        close()  # no "coroutine was never awaited" warning on top of the error
    raise DSLUsageError(f"{what} returned a {type(result).__name__}, which runs nothing until iterated, so it would "
                        f"{builds}.", hint=hint)


def run_user_body(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], what: str) -> Any:
    """Call a user body; any error it raises becomes one located ptort_lab error (a refusal numpy swallowed, such
    as ``array[b]`` on a loop variable, comes back as itself)."""
    clear_refusal()
    try:
        return fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - the user's body: any error becomes one located ptort_lab error
        swallowed = recover_refusal(e)
        if swallowed is not None:
            raise swallowed from e
        raise_user_error(e, what)
    finally:
        clear_refusal()  # it holds its traceback's frames


__all__ = ["body_location", "generator_kind", "refuse_generator", "refuse_generator_result", "run_user_body"]
