"""Running the user's bodies (kernel, @workload, loop and process bodies): refuse the ones that would silently run
nothing (generators, coroutines), and turn what they raise into one located ptort_lab error."""
from __future__ import annotations

import dis
import inspect
import linecache
from types import CodeType
from typing import Any, Callable

from ..errors import DSLUsageError, PtortTypeError, SourceLocation, place, raise_user_error
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


_STUB_OPS = frozenset({"RESUME", "NOP", "LOAD_CONST", "RETURN_VALUE", "RETURN_CONST"})


def is_stub(fn: Any) -> bool:
    """Whether ``fn``'s body does nothing (``pass``, ``...`` or a docstring compile to "return None")."""
    code = getattr(fn, "__code__", None)
    return code is not None and not code.co_names and all(i.opname in _STUB_OPS for i in dis.get_instructions(code))


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


def describe_function(fn: Any) -> str:
    """``the lambda at cell.py:3`` or ``function 'key' (cell.py:10)``: which of the user's functions, for errors
    about how it is called."""
    code = getattr(inspect.unwrap(getattr(fn, "func", fn)), "__code__", None)
    if code is None:
        return repr(fn)
    at = place(code.co_filename, code.co_firstlineno)
    return f"the lambda at {at}" if code.co_name == "<lambda>" else f"function '{code.co_name}' ({at})"


def _signature(fn: Any) -> inspect.Signature | None:
    try:
        return inspect.signature(fn)
    except (TypeError, ValueError):  # no signature (some builtins): the call decides
        return None


def check_arity(fn: Any, n: int, what: str, example: str) -> None:
    """Refuse a user function that cannot take the ``n`` positional arguments ptort_lab will pass it, at the line
    that hands it over: called later, it would fail inside ptort_lab and the error would name ptort_lab's line rather
    than the function. ``what`` says what it gets ("the task (one argument)"), ``example`` how to write it."""
    sig = _signature(fn)
    if sig is None:
        return
    try:
        sig.bind(*range(n))
    except TypeError:
        raise PtortTypeError(f"{what}, but {describe_function(fn)} has the parameters {sig}.",
                             hint=f"Write it as {example}.") from None


def _arity_error(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], what: str) -> PtortTypeError | None:
    """The error for a call of ``fn`` that failed before running a line of it (wrong arguments), else None."""
    sig = _signature(fn)
    if sig is None:
        return None
    try:
        sig.bind(*args, **kwargs)
    except TypeError as e:
        given = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]) or "no arguments"
        return PtortTypeError(f"{what} cannot be called with ({given}): {describe_function(fn)} has the parameters "
                              f"{sig} ({e}).",
                              hint="Make the function's parameters match what it is called with (or call it with "
                                   "the arguments it declares).")
    return None


def run_user_body(fn: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], what: str) -> Any:
    """Call a user body; any error it raises becomes one located ptort_lab error (a refusal numpy swallowed, such
    as ``array[b]`` on a loop variable, comes back as itself; arguments the function cannot take are named as such,
    not as an error "raised at" ptort_lab's line that called it)."""
    clear_refusal()
    try:
        return fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - the user's body: any error becomes one located ptort_lab error
        swallowed = recover_refusal(e)
        if swallowed is not None:
            raise swallowed from e
        tb = e.__traceback__
        if isinstance(e, TypeError) and tb is not None and tb.tb_next is None:  # the call itself failed
            mismatch = _arity_error(fn, args, kwargs, what)
            if mismatch is not None:
                raise mismatch from e
        raise_user_error(e, what)
    finally:
        clear_refusal()  # it holds its traceback's frames


# -- what code reads: chains of attribute and constant-item reads off its names (kernel tracing, sweep keys) ---------
Step = tuple[bool, Any]  # (True, attribute name) or (False, constant subscript) after a name


def read_chains(code: CodeType) -> list[tuple[str, str, list[Step]]]:
    """The reads ``code`` makes of a global ("global"), a free or cell variable ("free") or a local ("local"), each
    with the attribute and constant-subscript steps right after it: ``CFG["scale"]`` is ("global", "CFG",
    [(False, "scale")])."""
    chains: list[tuple[str, str, list[Step]]] = []
    chain: list[Step] | None = None
    constant: tuple[Any, ...] = ()  # a constant just loaded after the chain (a subscript may follow)
    for ins in dis.get_instructions(code):
        op = ins.opname
        if op in ("EXTENDED_ARG", "NOP", "CACHE"):
            continue
        kind = _LOADS.get(op)
        if kind is not None and isinstance(ins.argval, str):
            chain = []
            chains.append((kind, ins.argval, chain))
            constant = ()
        elif chain is not None and not constant and op in ("LOAD_ATTR", "LOAD_METHOD") and \
                isinstance(ins.argval, str):
            chain.append((True, ins.argval))
        elif chain is not None and not constant and op in ("LOAD_CONST", "LOAD_SMALL_INT"):
            constant = (ins.argval,)
        elif chain is not None and constant and (op == "BINARY_SUBSCR" or (op == "BINARY_OP" and ins.argrepr == "[]")) \
                and isinstance(constant[0], (str, int, bytes, float, bool)):
            chain.append((False, constant[0]))
            constant = ()
        else:
            chain, constant = None, ()
    return chains


_LOADS = {"LOAD_GLOBAL": "global", "LOAD_NAME": "global", "LOAD_DEREF": "free", "LOAD_CLASSDEREF": "free",
          "LOAD_FAST": "local", "LOAD_FAST_CHECK": "local"}


def code_objects(code: CodeType) -> list[CodeType]:
    """``code`` and the code of the functions, lambdas and comprehensions it defines."""
    found = [code]
    for const in code.co_consts:
        if isinstance(const, CodeType):
            found.extend(code_objects(const))
    return found


__all__ = ["Step", "read_chains", "code_objects", "body_location", "is_stub", "generator_kind", "refuse_generator",
           "refuse_generator_result", "run_user_body", "check_arity", "describe_function"]
