"""A ``%%ptort`` cell body: compiled under a name we recognise, run in a namespace, its workload found, and its
errors pointed at cell lines.

The body is compiled with one blank line in front of it, so body line *k* is line *k + 1* of its code object:
the line number every frame, ``SourceLocation`` and traceback reports is already the *cell* line (line 1 is the
``%%ptort`` line). The source, ``%%ptort`` line included, is registered in ``linecache`` under the filename
``<ptort-cell-N>``, so ``ptort_lab.errors.user_location`` and Python's traceback machinery find each line's text.
"""
from __future__ import annotations

import ast
import itertools
import linecache
import os
import re
import sys
import sysconfig
import traceback
from types import CodeType, FrameType, FunctionType, TracebackType
from typing import Any, NoReturn

from ..dsl import Workload
from ..dsl.csp import MAX_DEPTH, int_text
from ..errors import PtortError, PtortValueError, SourceLocation, place
from ..explore import Knobs, is_pipeline
from ..knobs import normal_knob, tile_from_text
from ..program import Program

KNOB_NAMES = {"depth": "DEPTH", "tile": "TILE", "tiles": "TILES", "cores": "CORES"}

_serial = itertools.count(1)
_FILENAME = re.compile(r"<ptort-cell-(\d+)>")
_LOCATION = re.compile(r"<ptort-cell-(\d+)>:(\d+)")
_cell_labels: dict[str, str] = {}  # filename -> how messages name that cell ("In [3]")
_PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep
_LIBRARY_DIRS = tuple({os.path.abspath(p) + os.sep for key in ("stdlib", "platstdlib", "purelib", "platlib")
                       if (p := sysconfig.get_paths().get(key))})


def is_cell_file(filename: str) -> bool:
    return _FILENAME.fullmatch(filename) is not None


# -- the body ----------------------------------------------------------------------------------------------------
class CellBody:
    """The DSL Python of one ``%%ptort`` cell, compiled once and runnable many times (the explorer re-runs it)."""

    def __init__(self, source: str, magic_line: str = "", execution_count: int | None = None) -> None:
        self.source = source
        self.filename = f"<ptort-cell-{next(_serial)}>"
        _cell_labels[self.filename] = f"In [{execution_count}]" if execution_count else self.filename
        text = f"%%ptort {magic_line}".rstrip() + "\n" + source
        if not text.endswith("\n"):
            text += "\n"
        linecache.cache[self.filename] = (len(text), None, text.splitlines(True), self.filename)
        try:
            tree = ast.parse("\n" + source, self.filename)
        except SyntaxError as e:
            raise _short(e, self.filename) from None
        last: ast.expr | None = None
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            last = tree.body[-1].value
            tree.body.pop()
        try:  # compile() refuses what ast.parse accepts at top level: return, await, yield, break, nonlocal
            self._exec: CodeType = compile(tree, self.filename, "exec")
            self._eval: CodeType | None = compile(ast.Expression(last), self.filename, "eval") if last else None
        except SyntaxError as e:
            raise _short(e, self.filename) from None
        self.assigned = _top_level_stores(tree)

    def knobs_read(self, namespace: dict[str, Any]) -> set[str]:
        """The knobs (``depth``, ``tile``, ...) whose names (DEPTH, TILE, TILES, CORES) the body reads or sets: in its
        own code, or in a function of ``namespace`` that it names (a helper an earlier cell defined reads the same
        names), and so on through the functions those name. A knob the body never names was bound but not used."""
        names: set[str] = set()
        seen: set[int] = set()
        todo = [code for code in (self._exec, self._eval) if code is not None]
        while todo:
            code = todo.pop()
            if id(code) in seen:
                continue
            seen.add(id(code))
            todo += [c for c in code.co_consts if isinstance(c, CodeType)]  # its functions, lambdas, comprehensions
            for name in code.co_names:
                names.add(name)
                todo += _functions_code(namespace.get(name), namespace)
        return {knob for knob, var in KNOB_NAMES.items() if var in names}

    def run(self, namespace: dict[str, Any]) -> Any:
        """Run the body in ``namespace`` (names it defines stay there); return its last expression's value."""
        exec(self._exec, namespace)
        return eval(self._eval, namespace) if self._eval is not None else None

    def find_workload(self, value: Any, namespace: dict[str, Any]) -> Workload:
        """The workload to study: the last expression's value if it is one, else the last workload the body
        assigned at top level (the last pipeline if it assigned any); a Program's workload."""
        target = self.find_target(value, namespace)
        return target.workload if isinstance(target, Program) else target

    def find_target(self, value: Any, namespace: dict[str, Any], compiled: list[Program] | tuple[()] = ()
                    ) -> Workload | Program:
        """What to study: as ``find_workload``, but a compiled Program (the last expression, an assignment, or
        the last Program the body compiled from the chosen workload, listed in ``compiled``) is returned as is, so
        that it is studied with its own compile options. A body that leaves no workload or Program in its names
        (it built and compiled one inside a function) is studied as the last Program it compiled."""
        if isinstance(value, (Workload, Program)):
            chosen = value
        else:
            assigned = [namespace[n] for n in self.assigned if isinstance(namespace.get(n), (Workload, Program))]
            pipelines = [w for w in assigned if is_pipeline(w.workload if isinstance(w, Program) else w)]
            if not assigned:
                if compiled:  # built and compiled inside a function the cell called: the last Program it compiled
                    return compiled[-1]
                self._nothing_built(value)
            chosen = (pipelines or assigned)[-1]
        if isinstance(chosen, Workload):
            programs = [p for p in compiled if p.workload is chosen]
            if programs:
                return programs[-1]
        return chosen

    def _nothing_built(self, value: Any) -> NoReturn:
        got = f" (its last expression is {type(value).__name__})" if value is not None else ""
        raise PtortValueError(f"the %%ptort cell built no workload, pipeline or compiled program to run{got}.",
                              hint="End the cell with the pipeline (e.g. `connect(loader, computer, storer)`) or its "
                                   "program (`.compile()`), or assign it to a name; to see a kernel's IR use "
                                   "ptort_lab.viz.kernel_view(k).",
                              locate=False)


def _functions_code(value: Any, namespace: dict[str, Any]) -> list[CodeType]:
    """The code of ``value`` when it is a function whose global names are ``namespace``'s (also inside a @kernel or
    @workload, which keep their function as ``__wrapped__``), or of such methods of a class; else nothing."""
    for _ in range(8):  # a few wrappers deep; a mock answers every attribute with a new one
        if isinstance(value, (FunctionType, type)):
            break
        try:
            value = vars(value).get("__wrapped__")  # the instance's own attribute: no __getattr__ runs
        except Exception:  # noqa: BLE001 - no __dict__ (an int, a slotted object), or a __dict__ that refuses
            return []
    if isinstance(value, type):
        members = [m.__func__ if isinstance(m, (staticmethod, classmethod)) else m for m in vars(value).values()]
        return [m.__code__ for m in members if isinstance(m, FunctionType) and m.__globals__ is namespace]
    if isinstance(value, FunctionType) and value.__globals__ is namespace:
        return [value.__code__]
    return []


def _top_level_stores(tree: ast.Module) -> list[str]:
    """Names the module body binds, ordered by their last binding (functions, classes and lambdas are scopes)."""
    order: dict[str, int] = {}

    def visit(node: ast.AST) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            order.pop(node.name, None)
            order[node.name] = node.lineno
            return  # their bodies are other scopes
        if isinstance(node, (ast.Lambda, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)):
            return
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            order.pop(node.id, None)
            order[node.id] = node.lineno
        for child in ast.iter_child_nodes(node):
            visit(child)

    for stmt in tree.body:
        visit(stmt)
    return list(order)


# -- knobs <-> namespace ------------------------------------------------------------------------------------------
def knob_value(name: str, value: Any, source: str) -> Any:
    """Check one knob value (from an option or a namespace name) and normalise it: ints, TILE a (rows, cols).
    The hint is %%ptort advice (set the name or pass the option); sweep() checks its values itself."""
    checked = normal_knob(name, value)
    if name == "depth" and checked is not None and checked > MAX_DEPTH:
        raise PtortValueError(f"{source} is {int_text(checked)}; DEPTH must be at most 2**53 = {MAX_DEPTH:,} (buffer "
                              "slots per channel).",
                              hint="A few slots is typical: set DEPTH = 4 or pass --depth 4.", locate=False)
    if checked is not None:
        return checked
    if name == "tile":
        raise PtortValueError(f"{source} is {value!r}; TILE must be (rows, cols) of ints >= 1.",
                              hint="Set TILE = (128, 128) or pass --tile 128x128.", locate=False)
    raise PtortValueError(f"{source} is {value!r}; {KNOB_NAMES[name]} must be an int >= 1.",
                          hint=f"Set {KNOB_NAMES[name]} = 2 or pass --{name} 2.", locate=False)


def knobs_from_namespace(namespace: dict[str, Any], given: dict[str, Any], default: Knobs) -> Knobs:
    """Knobs from ``given`` (options), else the namespace's DEPTH/TILE/TILES/CORES, else ``default``."""
    values = {}
    for name, var in KNOB_NAMES.items():
        if given.get(name) is not None:
            values[name] = given[name]
        elif var in namespace:
            values[name] = knob_value(name, namespace[var], f"{var} in the namespace")
        else:
            values[name] = getattr(default, name)
    return Knobs(**values)


def bind_knobs(namespace: dict[str, Any], knobs: Knobs) -> None:
    for name, var in KNOB_NAMES.items():
        namespace[var] = getattr(knobs, name)


_UNBOUND = object()


def saved_knobs(namespace: dict[str, Any]) -> dict[str, Any]:
    """The namespace's DEPTH, TILE, TILES, CORES as they are (``_UNBOUND`` for a missing one), for ``restore_knobs``."""
    return {var: namespace.get(var, _UNBOUND) for var in KNOB_NAMES.values()}


def restore_knobs(namespace: dict[str, Any], saved: dict[str, Any]) -> None:
    """Put back what ``saved_knobs`` saw, so a failed cell's knob values do not carry over to the next cell."""
    for var, value in saved.items():
        if value is _UNBOUND:
            namespace.pop(var, None)
        else:
            namespace[var] = value


# -- errors ------------------------------------------------------------------------------------------------------
def label(text: str, current: str | None) -> str:
    """Rewrite ``<ptort-cell-N>:L`` in a message as ``cell line L`` (this cell) or ``cell In [n] line L``."""
    def repl(m: re.Match[str]) -> str:
        filename = f"<ptort-cell-{m.group(1)}>"
        if filename == current:
            return f"cell line {m.group(2)}"
        return f"cell {_cell_labels.get(filename, filename)} line {m.group(2)}"

    return _LOCATION.sub(repl, text)


def _innermost_cell_frame(tb: TracebackType | None) -> SourceLocation | None:
    found = None
    for frame, lineno in traceback.walk_tb(tb):
        filename = frame.f_code.co_filename
        if is_cell_file(filename):
            found = SourceLocation(filename, lineno, frame.f_code.co_name, linecache.getline(filename, lineno).strip())
    return found


def relocate(exc: BaseException, current: str | None, outer: frozenset[str] = frozenset(),
             fallback: SourceLocation | None = None, short: bool = True) -> BaseException:
    """Make ``exc`` point at cell lines and render as one short message; return it (changed in place).

    A PtortError keeps its type and gets a ``where`` in the cell when it had none, or had one in the code that
    called the magic (IPython's frames: the library looked for a user line above the magic); its message then names
    ``cell line L``. Any other exception gets a ``_render_traceback_`` listing only the user's frames (unless
    ``short`` is False: then IPython shows its full traceback).
    """
    if isinstance(exc, PtortError):
        where = exc.where
        if where is None or not _is_user_frame(where.filename) or where.filename in outer:
            where = _innermost_cell_frame(exc.__traceback__) or fallback
        exc.where = where
        exc.args = (label(exc._compose(), current),)
        return exc
    if not short or type(exc).__name__ == "UsageError":  # IPython prints UsageErrors as one line already
        return exc
    try:
        lines = _user_traceback(exc, current)
        # IPython's hook for a custom traceback, set on this one exception (no exception type declares it).
        exc._render_traceback_ = lambda: lines  # type: ignore[attr-defined]
    except Exception:  # an exception type without a __dict__: IPython's own traceback is shown instead
        pass
    return exc


def interrupted(exc: KeyboardInterrupt, what: str, body: CellBody | None, after: str,
                short: bool = True) -> KeyboardInterrupt:
    """A KeyboardInterrupt in a cell, given a short ``_render_traceback_`` instead of ptort_lab's frames: ``what``
    was interrupted, at which cell line (when the body's code was running), its own message (a sweep's says what it
    saved), then ``after``. It stays the same exception, so the cell stops as on any interrupt (returned, changed
    in place; unchanged when ``short`` is False)."""
    if not short:
        return exc
    at = _innermost_cell_frame(exc.__traceback__) if body is not None else None
    lines = [f"{type(exc).__name__}: {what}" + (f", at {label(f'{at.filename}:{at.lineno}', body.filename)}"
                                                if at is not None and body is not None else "") + "."]
    if at is not None and at.code:
        lines.append(f"    {at.code}")
    if str(exc):
        lines.append(label(str(exc), body.filename if body is not None else None))
    lines.append(after)
    try:
        exc._render_traceback_ = lambda: lines  # type: ignore[attr-defined]
    except Exception:  # noqa: BLE001 - a KeyboardInterrupt subclass without a __dict__: IPython's traceback
        pass
    return exc


# A compiled extension's frames (numpy.random's) name their Cython source relative to where it was built
# ("_generator.pyx"), which no install path matches: they are a library's, never the cell's or the user's.
_CYTHON_SOURCES = (".pyx", ".pxd", ".pxi")


def _is_user_frame(filename: str) -> bool:
    if is_cell_file(filename):
        return True
    if filename.startswith("<") or filename.endswith(_CYTHON_SOURCES):
        return False
    path = os.path.abspath(filename)
    return not path.startswith(_PACKAGE_DIR) and not path.startswith(_LIBRARY_DIRS)


def _user_traceback(exc: BaseException, current: str | None) -> list[str]:
    """``Type: message`` then ``at <place>`` and the line's text for each of the user's frames, outermost first."""
    message = str(exc)
    lines = [f"{type(exc).__name__}: {label(message, current)}" if message else type(exc).__name__]
    for fs in traceback.extract_tb(exc.__traceback__):
        if not _is_user_frame(fs.filename):
            continue
        at = label(f"{fs.filename}:{fs.lineno}", current) if is_cell_file(fs.filename) \
            else place(fs.filename, fs.lineno or 0)
        lines.append(f"  at {at}" + (f" in {fs.name}" if fs.name not in ("<module>", "<lambda>") else ""))
        if fs.line:
            lines.append(f"    {fs.line.strip()}")
    return lines


class PtortSyntaxError(PtortError):
    """The body of a ``%%ptort`` cell is not valid Python; the message shows the cell line with a caret."""

    def __init__(self, what: str, where: SourceLocation, offset: int | None,
                 hint: str = "Fix the line above; the cell body is ordinary Python.") -> None:
        self.offset = offset
        super().__init__(what, where=where, hint=hint)

    def _compose(self) -> str:
        lines = super()._compose().splitlines()
        if self.offset and self.where is not None and self.where.code:
            full = linecache.getline(self.where.filename, self.where.lineno).rstrip("\n")
            indent = len(full) - len(full.lstrip())
            lines.insert(3, "    " + " " * max(0, self.offset - 1 - indent) + "^")
        return "\n".join(lines)


def _short(e: SyntaxError, filename: str) -> PtortSyntaxError:
    lineno = e.lineno or 1
    code = linecache.getline(filename, lineno).strip()
    where = SourceLocation(filename, lineno, "<module>", code)
    if "await" in e.msg:  # plain notebook cells allow top-level await, so users expect it here too
        return PtortSyntaxError(e.msg, where, e.offset, hint="%%ptort cell bodies cannot use top-level await: "
                                "run the coroutine with asyncio.run(...) or await it in a plain cell first.")
    return PtortSyntaxError(e.msg, where, e.offset)


def outer_files() -> frozenset[str]:
    """Filenames of the frames that called into the magic (IPython, ipykernel, the notebook cell itself)."""
    frame: FrameType | None = sys._getframe(1)
    names = set()
    while frame is not None:
        names.add(frame.f_code.co_filename)
        frame = frame.f_back
    return frozenset(n for n in names if not os.path.abspath(n).startswith(_PACKAGE_DIR))


__all__ = ["CellBody", "PtortSyntaxError", "KNOB_NAMES", "bind_knobs", "interrupted", "is_cell_file", "knob_value",
           "knobs_from_namespace", "label", "normal_knob", "outer_files", "relocate", "restore_knobs", "saved_knobs",
           "tile_from_text"]
