"""ptort_lab's exceptions: each says what went wrong, where (user line, kernel, process, sim time) and how to fix it.

The hierarchy (every class also derives from the matching builtin, so ``except TypeError`` keeps working)::

    PtortError
     ├── DSLUsageError     (RuntimeError)  a DSL call in the wrong place: tl.* outside @kernel, P() outside @workload
     ├── CompileError                      a program that cannot be built as written (the reference's name for it)
     │    ├── PtortTypeError    (TypeError)     shapes, dtypes, annotations or kernel arguments that do not fit
     │    ├── PtortValueError   (ValueError)    a bad value: an axis size, a channel depth, a schedule option
     │    │    ├── KnobError                    a knob value a study cannot apply: a depth that misses a channel,
     │    │    │                                cores past the machine, a knob the builder ignores (stops a sweep)
     │    │    └── ScheduleError                the reference's schedule error (never raised here)
     │    ├── PipelineError     (ValueError)    connect() found broken wiring (no producer, two consumers, 0-depth
     │    │                                     cycle)
     │    └── IRConversionError                 the reference's IR bridge error (never raised here)
     ├── ChannelError      (RuntimeError)  misuse of a channel at run time
     │    ├── ChannelClosed                a send on a closed channel
     │    └── ChannelFull                  a non-blocking send on a full channel
     ├── UserCodeError     (RuntimeError)  the user's own code (a kernel or workload body, a predicate, a key or
     │                                     cost function) raised; the original exception is chained
     ├── SweepError        (RuntimeError)  a sweep could not go on: its builder cannot be sent to the workers, a
     │                                     worker process died, a worker runs other ptort_lab code
     └── SimulationError   (RuntimeError)  the simulator could not finish a run
          ├── DeadlockError                no process can move; lists who waits on what and every channel's fill
          ├── KernelExecutionError         a kernel failed while computing its values
          ├── CapacityError                tiles and buffers do not fit in the modelled on-chip memory
          └── RunLimitError                a pipeline ran past the step limits (processes that loop forever)
"""
from __future__ import annotations

import linecache
import os
import re
import sys
import sysconfig
from dataclasses import dataclass
from types import FrameType
from typing import Any, NoReturn

_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


@dataclass(frozen=True, slots=True)
class SourceLocation:
    """A place in the user's code: file, line, enclosing function and the line's text."""

    filename: str
    lineno: int
    function: str = ""
    code: str = ""

    def __str__(self) -> str:
        return place(self.filename, self.lineno)


def place(filename: str, lineno: int) -> str:
    """How messages name a line: ``file.py:12``, or ``cell In[3], line 2`` for a notebook cell (IPython compiles a
    cell under a hashed temporary file, ``2702741056.py``, that means nothing to the user)."""
    cell = _ipython_cell(filename)
    return f"cell {cell}, line {lineno}" if cell is not None else f"{os.path.basename(filename)}:{lineno}"


def _ipython_cell(filename: str) -> str | None:
    """IPython's name for the cell compiled as ``filename`` (``In[3]``), else None. IPython is never imported here:
    only one already running can have compiled a cell."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return None
    try:
        shell = ipython.get_ipython()
        named = shell.compile.format_code_name(filename) if shell is not None else None  # ("Cell", "In[3]")
    except Exception:  # noqa: BLE001 - an IPython without this API (or a shell that is not IPython's)
        return None
    return named[1] if isinstance(named, tuple) and len(named) == 2 and isinstance(named[1], str) else None


_PASS_THROUGH = frozenset({"contextlib", "typing", "dataclasses"})  # stdlib frames between ptort_lab and the user
# (with, Channel[T], Machine.replace -> __post_init__)

# Code that calls ptort_lab on the user's behalf is never "the user's line": the notebook (IPython, ipykernel), event
# loops and thread pools (asyncio, concurrent.futures, threading), module runners (runpy, importlib), test runners
# (pytest) and anything installed as a library (the standard library, site-packages, dist-packages).
_LIBRARY_MODULES = frozenset({
    "IPython", "ipykernel", "ipywidgets", "traitlets", "tornado", "zmq", "jupyter_client", "jupyter_core",
    "nbclient", "nbconvert", "comm", "asyncio", "concurrent", "threading", "runpy", "importlib", "pytest", "_pytest",
    "pluggy", "hypothesis", "unittest", "pdb", "bdb", "code", "codeop", "functools", "numpy", "matplotlib"})
_LIBRARY_DIRS = tuple(sorted({os.path.abspath(p) + os.sep for key in ("stdlib", "platstdlib", "purelib", "platlib")
                              if (p := sysconfig.get_paths().get(key))}))
_LIBRARY_PARTS = (f"{os.sep}site-packages{os.sep}", f"{os.sep}dist-packages{os.sep}")
_library_files: dict[str, bool] = {}  # filename -> is it library code (asked for every frame of every error)


def _is_library(filename: str, module: str) -> bool:
    """Is this frame a library's: a known caller by module name, or a file installed with Python or a package?"""
    if module.partition(".")[0] in _LIBRARY_MODULES:
        return True
    known = _library_files.get(filename)
    if known is None:
        path = os.path.abspath(filename) if not filename.startswith("<") else filename
        known = _library_files[filename] = path.startswith(_LIBRARY_DIRS) or any(p in path for p in _LIBRARY_PARTS)
    return known


def _is_internal(filename: str, module: str = "") -> bool:
    # Code that dataclasses/namedtuple generate for ptort_lab classes has filename "<string>" but ptort_lab's globals.
    return filename.startswith((_PACKAGE_DIR, "<frozen")) or module == "ptort_lab" \
        or module.startswith("ptort_lab.") or module in _PASS_THROUGH


def is_internal_frame(frame: FrameType) -> bool:
    """Is ``frame`` ptort_lab's own code (or a stdlib frame passed through between it and the user)?"""
    filename = frame.f_code.co_filename
    module = frame.f_globals.get("__name__") or ""
    return _is_internal(filename if filename.startswith("<") else os.path.abspath(filename),
                        module if isinstance(module, str) else "")


def _is_user_code(frame: FrameType) -> bool:
    """Is ``frame`` the user's code: neither ptort_lab's nor a library's (notebook, runner, thread pool, stdlib)?"""
    module = frame.f_globals.get("__name__") or ""
    return is_user_file(frame.f_code.co_filename, module if isinstance(module, str) else "")


def is_user_file(filename: str, module: str = "") -> bool:
    """Is code in ``filename`` (of module ``module``) the user's: neither ptort_lab's nor a library's? Only such
    code has lines that ``user_location`` can return."""
    return not _is_internal(os.path.abspath(filename) if not filename.startswith("<") else filename, module) \
        and not _is_library(filename, module)


def _is_ours(frame: FrameType) -> bool:
    """Is ``frame`` ptort_lab's own code?"""
    module = frame.f_globals.get("__name__")
    return isinstance(module, str) and (module == "ptort_lab" or module.startswith("ptort_lab."))


def user_location(skip: int = 1) -> SourceLocation | None:
    """Return the innermost frame of the user's own code (outside ptort_lab and the libraries calling it), else None."""
    frame: FrameType | None = sys._getframe(skip)
    while frame is not None:
        if _is_user_code(frame):
            filename = frame.f_code.co_filename
            code = linecache.getline(filename, frame.f_lineno).strip()
            return SourceLocation(filename, frame.f_lineno, frame.f_code.co_name, code)
        frame = frame.f_back
    return None


class PtortError(Exception):
    """Base class of every ptort_lab error.

    ``what`` is a full sentence naming the API and the offending values; ``where`` the user's line (found
    automatically when not given); ``context`` names the kernel, process or sim time; ``hint`` says how to fix it.
    """

    def __init__(self, what: str, *, hint: str = "", where: SourceLocation | None = None, context: str = "",
                 locate: bool = True) -> None:
        self.what = what
        self.hint = hint
        self.where = where if where is not None or not locate else user_location(2)
        self.context = context
        super().__init__(self._compose())

    def _compose(self) -> str:
        lines = [self.what]
        if self.where is not None:
            lines.append(f"  at {self.where}" + (f" in {self.context}" if self.context else ""))
            if self.where.code:
                lines.append(f"    {self.where.code}")
        elif self.context:
            lines.append(f"  in {self.context}")
        if self.hint:
            lines.append(self.hint)
        return "\n".join(lines)

    def _render_traceback_(self) -> list[str]:
        """IPython shows exactly these lines instead of a framework traceback."""
        return [f"{type(self).__name__}: {line}" if i == 0 else line for i, line in enumerate(str(self).splitlines())]


class DSLUsageError(PtortError, RuntimeError):
    """A DSL call made where it cannot work (tl.* outside @kernel, P() outside @workload, ...)."""


class CompileError(PtortError):
    """A program that cannot be built as written: the base of PtortTypeError, PtortValueError and PipelineError.

    The reference (PTO-WSP v9) wraps every failure of ``compile()`` in its ``CompileError``; here each failure keeps
    its own class (a TypeError, a ValueError, ...), and ``except CompileError`` catches them all. ``workload_name``
    and ``target`` are the reference's optional attributes (None unless given)."""

    def __init__(self, what: str, workload_name: str | None = None, target: str | None = None, *, hint: str = "",
                 where: SourceLocation | None = None, context: str = "", locate: bool = True) -> None:
        self.workload_name = workload_name
        self.target = target
        super().__init__(what, hint=hint, where=where, context=context, locate=locate)


class PtortTypeError(CompileError, TypeError):
    """Shapes, dtypes, annotations or arguments that do not fit together."""


class PtortValueError(CompileError, ValueError):
    """A value out of its allowed range (axis size, channel depth, schedule option, ...)."""


class KnobError(PtortValueError):
    """A knob value the study cannot apply (so every run of a sweep would be the same, or none could run): a depth
    that does not reach every channel, cores past the machine, a knob the builder does not take."""


class PipelineError(CompileError, ValueError):
    """connect() or a process definition found wiring that cannot run."""


class ScheduleError(PtortValueError):
    """The reference's error for a schedule its target cannot apply. Nothing here raises it: ptort_lab refuses a
    schedule option with PtortValueError or PtortTypeError where it is given (the reference declares this class and
    never raises it either). ``primitive`` and ``target`` are the reference's optional attributes."""

    def __init__(self, what: str, primitive: str | None = None, target: str | None = None, *, hint: str = "",
                 where: SourceLocation | None = None, context: str = "", locate: bool = True) -> None:
        self.primitive = primitive
        super().__init__(what, target=target, hint=hint, where=where, context=context, locate=locate)


class IRConversionError(CompileError):
    """The reference's error for a workload its Python-to-C++ IR bridge cannot convert. Nothing here raises it:
    ptort_lab simulates the workload tree itself, with no IR to convert."""


class ChannelError(PtortError, RuntimeError):
    """A channel used in a way its state does not allow."""


class ChannelClosed(ChannelError):
    """A send on a channel that has been closed."""


class ChannelFull(ChannelError):
    """A non-blocking send on a channel with no free slot."""


class UserCodeError(PtortError, RuntimeError):
    """An exception raised inside the user's own code that ptort_lab called (kept as ``__cause__``)."""


class SweepError(PtortError, RuntimeError):
    """A sweep could not go on (its builder cannot be sent to the workers, a worker process died); the points done
    so far are in the sweep cache, so running the same sweep again resumes it."""


def traceback_location(exc: BaseException) -> tuple[SourceLocation | None, tuple[str, int, str] | None]:
    """The innermost line of the user's code in ``exc``'s traceback, and the innermost frame of all (file, line,
    function): where the user's code raised, and where the exception itself came from."""
    where = None
    raised_in = None
    ours = False
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        raised_in = (frame.f_code.co_filename, tb.tb_lineno, frame.f_code.co_name)
        ours = _is_ours(frame)
        if _is_user_code(frame):
            where = SourceLocation(raised_in[0], tb.tb_lineno, raised_in[2],
                                   linecache.getline(raised_in[0], tb.tb_lineno).strip())
        tb = tb.tb_next
    if where is None and raised_in is not None and ours:  # only our frames: the user's callable was a builtin (len)
        raised_in = ("", 0, "")
    return where, raised_in


def raise_user_error(exc: Exception, what: str, hint: str = "") -> NoReturn:
    """Re-raise ``exc``, raised by user code that ptort_lab called for ``what`` (e.g. "the body of kernel 'k'"),
    as a UserCodeError at the user's line that raised it; ptort_lab's own errors pass through unchanged.

    The message carries everything needed (a notebook shows only these lines, not the chained traceback): the
    original type and message, the user's innermost line, and where the exception itself was raised when that was
    deeper, inside a library the line called."""
    if isinstance(exc, PtortError):
        raise exc
    where, raised_in = traceback_location(exc)  # the innermost frame in user code is the line that raised
    raise UserCodeError(f"{what} raised {type(exc).__name__}: {exc}",
                        hint=hint or _user_error_hint(where, raised_in, exc), where=where,
                        locate=where is None) from exc


# Python's own TypeError for a Python function called with arguments its signature does not take ("f() takes 0
# positional arguments but 1 was given", "missing 1 required positional argument", ...): raised by the call itself,
# before any line of the function runs, so the traceback holds only the caller's frame (as for a builtin).
_PYTHON_ARITY = re.compile(r"^(?P<name>[\w.<>]+)\(\) (takes (from )?\d+ (to \d+ )?positional arguments? but "
                           r"|missing \d+ required (positional|keyword-only) arguments?: "
                           r"|got an unexpected keyword argument |got multiple values for argument "
                           r"|got some positional-only arguments passed as keyword arguments)")


def _user_error_hint(where: SourceLocation | None, raised_in: tuple[str, int, str] | None,
                     exc: BaseException | None = None) -> str:
    """How to fix it, naming the innermost frame when the exception came from deeper than the user's line."""
    if raised_in is None or (where is not None and (where.filename, where.lineno) == raised_in[:2]):
        return "Fix the error in that line (the original exception is kept as this error's __cause__)."
    arity = _PYTHON_ARITY.match(str(exc)) if isinstance(exc, TypeError) and not raised_in[0] else None
    if arity is not None:  # a Python callable whose parameters do not fit the call: none of its lines ran
        return (f"The call of {arity['name']}() itself failed, before any of its lines ran: its parameters do not "
                "match the arguments it was called with (see the TypeError above). Define it with the parameters the "
                "API passes it.")
    if not raised_in[0]:  # a builtin or C function given as the callable: no line of its own to name
        return ("It was raised by the callable itself (a builtin or C function, with no Python line), called with "
                "the arguments named above: pass a function of the form the API expects.")
    deeper = place(raised_in[0], raised_in[1]) + \
        (f" in {raised_in[2]}" if not raised_in[2].startswith("<") else "")
    if where is None:
        return f"It was raised at {deeper}; fix the code or the values that reached it."
    return f"It was raised inside {deeper}, called from that line: check the values the line passes to it."


class SimulationError(PtortError, RuntimeError):
    """The simulator could not finish a run."""


class DeadlockError(SimulationError):
    """No process can make progress; the message lists every blocked process and channel."""


class KernelExecutionError(SimulationError):
    """A kernel raised while computing its values."""


class CapacityError(SimulationError):
    """Tiles or channel buffers that do not fit in the modelled on-chip memory."""


class RunLimitError(SimulationError):
    """A pipeline ran past ``MAX_STEPS`` steps, or ``MAX_STEPS_WITHOUT_PROGRESS`` steps without its clock moving
    (``ptort_lab.sim.engine``); the message names the processes that loop and their channels."""


class UnorderedAccessWarning(UserWarning):
    """Two processes of a pipeline touched the same memory, one of them writing, with nothing ordering them, and
    the run computed their values in another order than simulated time: it ran again in time order
    (``ptort_lab.sim.access_order``)."""


def warning_stack_level() -> int:
    """The ``stacklevel`` for ``warnings.warn`` in the function that asks: its first caller outside ptort_lab (the
    user's line)."""
    frame: FrameType | None = sys._getframe(1)
    level = 1
    while frame is not None and _is_ours(frame):
        frame = frame.f_back
        level += 1
    return level


_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")  # memory addresses differ from run to run: never in a message or output


def without_addresses(text: str) -> str:
    """``text`` with its memory addresses masked (``<Thing object at 0x…>``): messages and outputs stay
    deterministic."""
    return _ADDRESS.sub("0x…", text)


def repr_text(value: Any, limit: int = 80) -> str:
    """``<mod.Thing object at 0x…>``: a user's value's repr for a message, without memory addresses, cut to
    ``limit`` characters (``<Thing>`` if its repr raises)."""
    try:
        text = without_addresses(repr(value))
    except Exception:  # noqa: BLE001 - the user's __repr__
        return f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[:limit - 1] + "…"


def value_text(value: Any, limit: int = 80) -> str:
    """``int 42``, ``Thing <mod.Thing object at 0x…>``: a user's value for a message, its type and ``repr_text``."""
    return f"{type(value).__name__} {repr_text(value, limit)}"


# The reference's names, where one of ours means the same thing: its base class, the type checker's error (a
# CompileError there and here) and failures while a program executes.
PtoError = PtortError
TypeCheckError = PtortTypeError
ExecutionError = SimulationError


__all__ = [
    "PtortError", "DSLUsageError", "PtortTypeError", "PtortValueError", "PipelineError", "ChannelError",
    "ChannelClosed", "ChannelFull", "SimulationError", "DeadlockError", "KernelExecutionError", "CapacityError",
    "RunLimitError", "SourceLocation", "user_location", "UserCodeError", "raise_user_error", "PtoError",
    "KnobError", "SweepError", "traceback_location", "place", "is_user_file", "UnorderedAccessWarning",
    "warning_stack_level",
    "TypeCheckError", "ExecutionError", "CompileError", "ScheduleError", "IRConversionError",
]
