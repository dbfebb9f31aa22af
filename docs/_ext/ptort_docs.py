"""Sphinx extension of the ptort_lab docs: the API pages, public names for cross-references, stored outputs.

- The API pages (docs/api/generated/*.rst) are written from the modules' ``__all__`` when the build starts, so a
  name added to ``ptort_lab.__all__`` is documented without editing a page; autosummary then writes one page per
  name beside them. Names are grouped by the module that defines them.
- Docstrings and type hints name ptort_lab's classes by the module that defines them
  (``ptort_lab.dsl.csp.Channel``); the reference documents them under their public names (``ptort_lab.Channel``).
  ``resolve_public_name`` maps the first onto the second. A name that is public nowhere still fails the build.
- A notebook's ipywidgets view is drawn from its stored state as static HTML (sliders at their values, the
  explorer's table and its picture), so the page needs no widget JavaScript and no network.
"""
from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import json
import re
import sys
import typing
from pathlib import Path
from typing import Any

from docutils import nodes
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.errors import PycodeError
from sphinx.pycode import ModuleAnalyzer
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

logger = logging.getLogger(__name__)

GENERATED = "api/generated"
# Sections of the ptort_lab page: the modules whose names each one gathers, in page order.
SECTIONS: list[tuple[str, tuple[str, ...], str]] = [
    ("Kernels", ("ptort_lab.dsl.kernel",), "``@kernel`` traces a tile function into Kernel IR."),
    ("Types", ("ptort_lab.dsl.types",), "Tensors, tiles, scalars, dtypes and parameter directions."),
    ("Axes", ("ptort_lab.dsl.axes",), "The iteration spaces workloads loop over."),
    ("Workloads", ("ptort_lab.dsl.workload", "ptort_lab.dsl.tree", "ptort_lab.dsl.tasks", "ptort_lab.dsl.expr",
                   "ptort_lab.dsl.runtime_slots"),
     "``@workload``, ``P`` and the combinators that build a workload tree of tasks."),
    ("CSP pipelines", ("ptort_lab.dsl.csp", "ptort_lab.dsl.wiring"),
     "Channels, processes, events and ``connect``."),
    ("Schedules", ("ptort_lab.dsl.schedule", "ptort_lab.dsl.task_graph"),
     "Where and when the tasks of a data-parallel workload run."),
    ("Kernel IR", ("ptort_lab.dsl.ir",), "What ``kernel.trace()`` returns."),
    ("Type checking", ("ptort_lab.dsl.typecheck",), "Layouts and the workload type checker."),
    ("Programs, machines and traces", ("ptort_lab.program", "ptort_lab.sim"),
     "Compiled programs, the NPU model and what a run records."),
    ("Errors", ("ptort_lab.errors",), "Every error says what is wrong, where, and how to fix it."),
]
MODULE_PAGES = [  # (page, module documented, title, intro)
    ("viz", "ptort_lab.viz", "ptort_lab.viz", "Pipeline diagrams, kernel IR with pipes, matplotlib timelines."),
    ("notebook", "ptort_lab.notebook", "ptort_lab.notebook",
     "The ``%%ptort`` magic, its rich result, the explorer widget and sweeps."),
    ("explore", "ptort_lab.explore", "ptort_lab.explore",
     "A pipeline and its data-parallel twin under a set of knobs (no widgets)."),
    ("sweeps", "ptort_lab.sweeps", "ptort_lab.sweeps",
     "Sweeps without the notebook views: every combination of knob values, run here, on a process pool, a Dask or "
     "Ray cluster, cached on disk and resumable (``ptort_lab.notebook.sweep`` adds the progress bar and the plots)."),
]
# The supporting types page: types that public signatures name (a base class, an annotation, a return type) but
# that no ``__all__`` above exports. Each is documented where it is defined, so the page gives its import path.
SUPPORTING: list[tuple[str, tuple[str, ...], str]] = [  # (module, names, what they are to a user)
    ("ptort_lab.dsl.axes", ("Axis",), "The base class of the axes ``Dense``, ``DenseDyn`` and ``Ragged``."),
    ("ptort_lab.dsl.expr", ("Expr",),
     "Symbolic integer expressions over loop variables (``t + 1``, ``t.eq(3)``): what ``LoopVar`` and a "
     "``DenseDyn`` size are."),
    ("ptort_lab.dsl.runtime_slots", ("SlotExpr",), "What ``slot_u64``, ``slot_i64`` and ``slot_bool`` return."),
    ("ptort_lab.dsl.types", ("Direction",), "A kernel parameter's direction (``KernelParam.direction``)."),
    ("ptort_lab.dsl.tasks", ("Cycles", "TaskFactory"), "The types of a task's pinned cost and of a task factory."),
    ("ptort_lab.dsl.combinators", ("ScheduleCombinators",),
     "The schedule combinators every ``Workload`` has (``dispatch``, ``streams``, ``place``, ``task_graph``, ...)."),
    ("ptort_lab.program", ("CompileStats", "TraceLevel"),
     "What ``program.stats`` is before the program has run, and the levels of ``program.enable_tracing(level)``."),
    ("ptort_lab.sim.cost_model", ("TaskPricer", "Timing"),
     "What ``CostModel.begin_run`` returns and what ``task_timing`` computes: write these for a cost model of "
     "your own."),
    ("ptort_lab.sim.machine", ("Buffer", "Pipe"), "The on-chip buffers and the pipes of the NPU model."),
    ("ptort_lab.sim.trace", ("Sample", "Stall"), "The channel-occupancy samples and the stalls a ``Trace`` holds."),
    ("ptort_lab.sim.trace_files", ("WholeRun",),
     "The whole run a steady-state run's trace is the first tiles of (``Trace.whole_run``)."),
    ("ptort_lab.sim.validation", ("ErrorBand",),
     "How far the model's time may be off for the kind of work a run did (``ProgramStats.error_band``)."),
    ("ptort_lab.notebook.display", ("IRViews",), "What ``PtortResult.ir`` returns."),
    ("ptort_lab.viz.views", ("TextView",), "The base class of the text views (``Diagram``, ``KernelView``)."),
    ("ptort_lab.viz.diagrams", ("Graph", "Node", "Edge"), "What a ``Diagram`` shows (``Diagram.graph``)."),
    ("ptort_lab.viz.layout", ("Layout", "Box", "Route", "Point"),
     "A diagram's node boxes and edge routes (``Diagram.layout``)."),
]
# Public members that are plumbing between ptort_lab's own modules or views into a run's internals for tests and
# benchmarks; the reference leaves them out (their docstrings remain in the code).
NOT_IN_REFERENCE: dict[str, tuple[str, ...]] = {
    # the state of the run last begun, through the single-run API (a run's own state is its pricer's)
    "ptort_lab.sim.costs.NpuCostModel": ("plan", "memory", "pools", "pipe_free"),
    "ptort_lab.explore.Study": ("adopt",),  # how a %%ptort cell's explorer takes over the cell's run
    "ptort_lab.notebook.magic.PtortMagics": ("run",),  # %%ptort after its options are parsed
}


# ---------------------------------------------------------------------------------------------- the API pages
def own_name(obj: Any) -> str | None:
    """The name an object calls itself (``__name__``'s last part), None for plain values."""
    name = getattr(obj, "__name__", None)
    return name.rsplit(".", 1)[-1] if isinstance(name, str) else None


def is_alias(name: str, obj: Any) -> bool:
    """A second public name of a class, function or module (``KernelRef`` for ``Kernel``)."""
    own = own_name(obj)
    return (inspect.isclass(obj) or inspect.isroutine(obj) or inspect.ismodule(obj)) and own is not None \
        and own != name


def canonical_names(module: Any) -> dict[int, str]:
    """id(object) -> its own public name in ``module.__all__`` (aliases point to it)."""
    found: dict[int, str] = {}
    for name in module.__all__:
        obj = getattr(module, name)
        if not is_alias(name, obj) and not inspect.ismodule(obj):
            found.setdefault(id(obj), name)
    return found


def section_of(name: str, obj: Any) -> str:
    """The ptort_lab page's section for an object, from the module that defines it (for a constant: the first
    ptort_lab module below the package that holds it under its name)."""
    module = getattr(obj, "__module__", None) or ""
    if not isinstance(obj, type) and not inspect.isroutine(obj):
        holders = [m for m in sorted(sys.modules) if m.startswith("ptort_lab.")
                   and getattr(sys.modules[m], name, None) is obj]
        module = holders[-1] if holders else getattr(type(obj), "__module__", "")
    for title, prefixes, _ in SECTIONS:
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return title
    return "Other"


def autosummary(names: list[str], prefix: str) -> list[str]:
    """An autosummary table that writes one page per name into this folder."""
    lines = [".. autosummary::", "   :toctree: .", "   :nosignatures:", ""]
    return lines + [f"   {prefix}{name}" for name in names] + [""]


def heading(text: str, char: str) -> list[str]:
    return [text, char * len(text), ""]


def alias_entry(module_name: str, name: str, target: str, obj: Any) -> list[str]:
    """An alias documented as itself, pointing to its own name."""
    kind = "class" if inspect.isclass(obj) else "function" if inspect.isroutine(obj) else "data"
    role = {"class": "class", "function": "func", "data": "mod"}[kind]
    return [f".. py:{kind}:: {name}", "",  # in the page's current module
            f"   The reference's (PTO-WSP v9) name for :py:{role}:`{target} <{module_name}.{target}>`.", ""]


def top_level_page() -> str:
    """api/generated/ptort_lab.rst: every name of ``ptort_lab.__all__``, grouped by section."""
    import ptort_lab
    own = canonical_names(ptort_lab)
    groups: dict[str, list[str]] = {}
    aliases: list[str] = []
    modules: list[str] = []
    for name in ptort_lab.__all__:
        obj = getattr(ptort_lab, name)
        if inspect.ismodule(obj):
            modules.append(name)
        elif is_alias(name, obj):
            aliases.append(name)
        elif name == "__version__":
            modules.append(name)
        else:
            groups.setdefault(section_of(name, obj), []).append(name)
    lines = heading("ptort_lab", "=") + [".. py:module:: ptort_lab", "", ".. currentmodule:: ptort_lab", "",
                                          "Every name of ``ptort_lab.__all__`` (``from ptort_lab import ...``).", ""]
    for title, _, intro in SECTIONS + [("Other", (), "")]:
        if title in groups:
            lines += heading(title, "-") + ([intro, ""] if intro else []) + autosummary(groups[title], "")
    lines += heading("The reference's names", "-")
    lines += ["PTO-WSP v9 spells these differently; both spellings work.", ""]
    for name in aliases:
        obj = getattr(ptort_lab, name)
        target = own.get(id(obj)) or ("tl" if inspect.ismodule(obj) else own_name(obj))
        lines += alias_entry("ptort_lab", name, target, obj)
    lines += heading("Modules", "-")
    for name in modules:
        lines += module_entry(name)
    return "\n".join(lines) + "\n"


def module_entry(name: str) -> list[str]:
    """``tl``, ``pto``, ``errors``, ``dsl`` and ``__version__`` on the ptort_lab page, each with an anchor or a link
    to the page that declares it."""
    import ptort_lab
    if name == "__version__":
        return [".. py:data:: __version__", "", f"   ``{ptort_lab.__version__!r}``.", ""]
    if name == "errors":  # declared by its own page
        return [":py:mod:`ptort_lab.errors`: the module of the error classes, with the ones not listed above.", ""]
    if name == "dsl":
        return [".. py:module:: ptort_lab.dsl", "", "The DSL layer; ``ptort_lab`` re-exports every name of "
                "``ptort_lab.dsl.__all__`` (above).", "", ".. currentmodule:: ptort_lab", ""]
    texts = {
        "tl": "The tile operations (``tl.load``, ``tl.add``, ...) that a ``@kernel`` body calls: see :doc:`tl`.",
        "pto": "The reference's name for ``tl``, the same module: see :doc:`tl`.",
    }
    text = texts.get(name) or (inspect.getdoc(getattr(ptort_lab, name)) or "").split("\n")[0]
    return [f".. py:data:: {name}", "", f"   {text}", ""]


def tl_page() -> str:
    """api/generated/tl.rst: every tile operation."""
    from ptort_lab.dsl import tl
    # Documented where they are defined (autodoc imports modules, and ``ptort_lab.tl`` is an attribute).
    lines = heading("ptort_lab.tl", "=") + [".. py:module:: ptort_lab.dsl.tl", "",
                                             ".. currentmodule:: ptort_lab.dsl.tl", "", tl.__doc__.strip(), "",
                                             "Imported as ``from ptort_lab import tl`` (or ``pto``, the reference's "
                                             "name) and called inside a ``@kernel`` body: ``tl.load(src)``.", ""]
    own = canonical_names(tl)
    lines += autosummary([n for n in tl.__all__ if not is_alias(n, getattr(tl, n))], "")
    for name in tl.__all__:
        obj = getattr(tl, name)
        if is_alias(name, obj):
            lines += alias_entry("ptort_lab.dsl.tl", name, own.get(id(obj), own_name(obj) or name), obj)
    return "\n".join(lines) + "\n"


def errors_page() -> str:
    """api/generated/errors.rst: the error module's names not already exported by ptort_lab."""
    import ptort_lab
    from ptort_lab import errors
    rest = [n for n in errors.__all__ if n not in ptort_lab.__all__]
    lines = heading("ptort_lab.errors", "=") + [".. py:module:: ptort_lab.errors", "",
                                                 ".. currentmodule:: ptort_lab.errors", "",
                                                 errors.__doc__.strip(), "",
                                                 "The errors ``ptort_lab`` exports are on the :doc:`ptort_lab` page; "
                                                 "these are the others.", ""]
    return "\n".join(lines + autosummary(rest, "")) + "\n"


def module_page(module_name: str, title: str, intro: str) -> str:
    """api/generated/<page>.rst: every name of a module's ``__all__``."""
    module = importlib.import_module(module_name)
    lines = heading(title, "=") + [f".. py:module:: {module_name}", "", f".. currentmodule:: {module_name}", "",
                                    intro, ""]
    return "\n".join(lines + autosummary(list(module.__all__), "")) + "\n"


def supporting_page() -> str:
    """api/generated/supporting.rst: the types of ``SUPPORTING``, grouped by the module that defines them."""
    lines = heading("Supporting types", "=") + [
        "Types that the public names' signatures use (a base class, an annotation, a return type) without a name of "
        "their own in ``ptort_lab``: import them from the module each section names.", ""]
    for module_name, names, intro in SUPPORTING:
        lines += heading(module_name, "-") + [f".. py:module:: {module_name}", "",
                                              f".. currentmodule:: {module_name}", "", intro, ""]
        lines += autosummary(list(names), "")
    return "\n".join(lines) + "\n"


def write_if_changed(path: Path, text: str) -> None:
    """Rewrite a generated page only when it changes (an unchanged one keeps incremental builds incremental)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists() or path.read_text(encoding="utf-8") != text:
        path.write_text(text, encoding="utf-8")


def write_api_pages(srcdir: Path) -> None:
    folder = srcdir / GENERATED
    write_if_changed(folder / "ptort_lab.rst", top_level_page())
    write_if_changed(folder / "tl.rst", tl_page())
    write_if_changed(folder / "errors.rst", errors_page())
    for page, module_name, title, intro in MODULE_PAGES:
        write_if_changed(folder / f"{page}.rst", module_page(module_name, title, intro))
    write_if_changed(folder / "supporting.rst", supporting_page())


# ------------------------------------------------------------------------- references by their public names
def public_names() -> dict[str, str]:
    """Where each documented object is defined (``module.qualname``) -> the name it is documented under."""
    import ptort_lab
    from ptort_lab import errors
    from ptort_lab.dsl import tl
    found: dict[str, str] = {}
    modules = [(ptort_lab, "ptort_lab"), (tl, "ptort_lab.dsl.tl"), (errors, "ptort_lab.errors")]
    modules += [(importlib.import_module(m), m) for _, m, _, _ in MODULE_PAGES]
    for module, documented_as in modules:
        own = canonical_names(module)
        for name in module.__all__:
            obj = getattr(module, name)
            if documented_as == "ptort_lab.errors" and name in ptort_lab.__all__:
                documented_as_here = "ptort_lab"
            else:
                documented_as_here = documented_as
            defined = getattr(obj, "__module__", None), getattr(obj, "__qualname__", None)
            if None in defined or id(obj) not in own or own[id(obj)] != name:
                continue
            found.setdefault(f"{defined[0]}.{defined[1]}", f"{documented_as_here}.{name}")
    for module_name, names, _ in SUPPORTING:  # documented where defined (type aliases have no __qualname__)
        for name in names:
            found.setdefault(f"{module_name}.{name}", f"{module_name}.{name}")
    return found


def public_target(target: str, names: dict[str, str]) -> str | None:
    """The documented name for a reference to where an object is defined (or to one of its members)."""
    head, rest = target, ""
    while head:
        if head in names:
            return names[head] + rest
        head, _, last = head.rpartition(".")
        rest = f".{last}{rest}"
    short = [public for defined, public in names.items() if defined.rsplit(".", 1)[-1] == target]
    return short[0] if len(short) == 1 else None


def resolve_public_name(app: Sphinx, env: Any, node: Any, contnode: Any) -> Any:
    """missing-reference: retry a Python reference under the public name of what it names."""
    if node.get("refdomain") != "py":
        return None
    names = getattr(env, "ptort_public_names", None)
    if names is None:
        names = env.ptort_public_names = public_names()
    public = public_target(type_var_bound(node["reftarget"]) or node["reftarget"], names)
    if public is None or public == node["reftarget"]:
        return None
    domain = env.get_domain("py")
    return domain.resolve_xref(env, node["refdoc"], app.builder, "obj", public, node, contnode)


def type_var_bound(target: str) -> str | None:
    """For a TypeVar of a ptort_lab module (``ptort_lab.dsl.combinators.S``, bound to ``ScheduleCombinators``): where
    its bound is defined, which a signature's ``-> S`` then links to; else None."""
    module_name, _, name = target.rpartition(".")
    module = sys.modules.get(module_name)
    var = getattr(module, name, None)
    if not isinstance(var, typing.TypeVar) or var.__bound__ is None:
        return None
    bound = var.__bound__
    bound = getattr(module, bound.__forward_arg__, None) if isinstance(bound, typing.ForwardRef) else bound
    return f"{bound.__module__}.{bound.__qualname__}" if isinstance(bound, type) else None


def plain_builtins(app: Sphinx, doctree: Any) -> None:
    """doctree-read: a builtin type in a signature (``-> bytes``) stays plain text. Sphinx would otherwise look for
    an attribute of that name and link ``bytes`` to ``Span.bytes`` (or find two and warn)."""
    for node in list(doctree.findall(addnodes.pending_xref)):
        target = node.get("reftarget", "")
        if node.get("refdomain") == "py" and node.get("reftype") == "class" and "." not in target \
                and isinstance(getattr(builtins, target, None), type):
            shown = [c for c in node.children if isinstance(c, addnodes.pending_xref_condition)
                     and c.get("condition") == "*"]
            node.replace_self(shown[0].children if shown else node.children)


def public_bases(app: Sphinx, name: str, obj: Any, options: Any, bases: list[Any]) -> None:
    """autodoc-process-bases: show the bases a user can name. ``Generic[T]`` and ``object`` say nothing, and a
    private base (``_Policy``) is replaced by its own bases."""
    shown: list[Any] = []
    for base in bases:
        shown += visible_bases(base)
    bases[:] = list(dict.fromkeys(shown))


def drop_empty_bases(app: Sphinx, doctree: Any) -> None:
    """doctree-read: autodoc writes "Bases:" even when ``public_bases`` left nothing to show; drop that line."""
    for paragraph in list(doctree.findall(nodes.paragraph)):
        if paragraph.astext().strip() == "Bases:" and isinstance(paragraph.parent, addnodes.desc_content):
            paragraph.parent.remove(paragraph)


def visible_bases(base: Any) -> list[Any]:
    if base is object or getattr(base, "__origin__", None) is typing.Generic:
        return []
    if isinstance(base, type) and base.__name__.startswith("_"):
        return [b for parent in base.__bases__ for b in visible_bases(parent)]
    return [base]


def factory_defaults(app: Sphinx, what: str, name: str, obj: Any, options: Any, signature: str | None,
                     return_annotation: str | None) -> tuple[str | None, str | None] | None:
    """autodoc-process-signature: a dataclass field's ``default_factory`` shows as ``<factory>``, which is no
    Python expression (Sphinx then splits the signature at every comma); show ``...`` instead."""
    if signature and "<factory>" in signature:
        return signature.replace("<factory>", "..."), return_annotation
    return None


def constant_docstrings(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """autodoc-process-docstring: a constant re-exported by a package (``ptort_lab.MACHINES``) is documented by the
    ``#:`` comment where it is defined (ptort_lab/sim/machine.py). One without such a comment shows nothing rather
    than its type's docstring (``dict() -> new empty dictionary``, ``Machine``'s), unless its type is private and
    so exists for this object alone (``P``, a ``_PNamespace``)."""
    words = " ".join(lines).split()
    if what != "data" or (words and words != (inspect.getdoc(type(obj)) or "").split()):
        return  # documented by a comment where autodoc looked
    comment = defining_comment(name.rsplit(".", 1)[-1], obj)
    if comment:
        lines[:] = comment + [""]
    elif not type(obj).__name__.startswith("_"):
        lines.clear()


def defining_comment(attr: str, obj: Any) -> list[str] | None:
    """The ``#:`` comment of ``attr`` in the ptort_lab module that defines it (the one holding the object under
    that name and a comment for it)."""
    for modname in sorted(m for m in sys.modules if m == "ptort_lab" or m.startswith("ptort_lab.")):
        if getattr(sys.modules[modname], attr, None) is not obj:
            continue
        try:
            docs = ModuleAnalyzer.for_module(modname).find_attr_docs()
        except PycodeError:
            continue
        if ("", attr) in docs:
            return list(docs[("", attr)])
    return None


# ---------------------------------------------------------------------------- the machine constants' sources
class MachineConstants(SphinxDirective):
    """``{ptort-machine-constants}``: a table of every Machine constant, its preset values and the source its code
    comment gives (read from ptort_lab/sim/machine.py, so the page cannot drift from the model)."""

    def run(self) -> list[Any]:
        from ptort_lab.sim import machine
        self.env.note_dependency(machine.__file__)
        presets = [machine.ascend_910b1, machine.ascend_910b4]
        rows = [[nodes.Text("constant"), nodes.Text("ascend_910b"), nodes.Text("910B1 / 910B4"),
                 nodes.Text("source (§: NPU model notes)")]]
        for section, name, comment in machine_fields(machine):
            if name is None:
                rows.append([nodes.strong(text=section), nodes.Text(""), nodes.Text(""), nodes.Text(comment)])
                continue
            default = getattr(machine.ascend_910b, name)
            others = " / ".join(constant_text(name, getattr(m, name)) if getattr(m, name) != default else "="
                                for m in presets)
            rows.append([nodes.literal(text=name), nodes.Text(constant_text(name, default)), nodes.Text(others),
                         nodes.Text(comment or "(no source comment)")])
        return [table([22, 14, 14, 50], rows)]


def table(widths: list[int], rows: list[list[Any]]) -> Any:
    """A docutils table whose first row is the header; each cell holds one inline node."""
    group = nodes.tgroup(cols=len(widths))
    group += [nodes.colspec(colwidth=w) for w in widths]
    head, body = nodes.thead(), nodes.tbody()
    for i, cells in enumerate(rows):
        row = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            entry += nodes.paragraph("", "", cell)
            row += entry
        (head if i == 0 else body).append(row)
    group += [head, body]
    return nodes.table("", group, classes=["ptort-machine-constants"])


def machine_fields(machine: Any) -> list[tuple[str, str | None, str]]:
    """(section, field, comment) for each Machine field in source order, and (section, None, note) for each section
    header (the ``# -- chip (§1) ---`` lines) with the comment lines right under it."""
    source = inspect.getsource(machine.Machine).splitlines()
    tree = ast.parse("\n".join(source))
    fields = {node.lineno: node.target.id for node in tree.body[0].body
              if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)}
    rows: list[list[Any]] = []
    note: list[str] = []
    for number, line in enumerate(source, start=1):
        text = line.strip()
        header = re.match(r"# -- (.+?) -+$", text)
        if header:
            rows.append([header.group(1), None, ""])
        elif text.startswith("#"):
            comment = re.sub(r"^#:?\s*", "", text)
            if rows and rows[-1][1] is None:  # right under a header: the section's note
                rows[-1][2] = f"{rows[-1][2]} {comment}".strip()
            else:
                note.append(comment)
        elif number in fields and fields[number] != "name":  # the preset's name is no constant
            inline = re.split(r"\s#:?\s", line, maxsplit=1)
            section = rows[-1][0] if rows else ""
            rows.append([section, fields[number], " ".join(note + inline[1:]).strip()])
            note = []
    return [(section, name, comment) for section, name, comment in rows]


def constant_text(name: str, value: Any) -> str:
    """A constant in the units its name gives (bytes in KiB/MiB, Hz in GHz, a data path's two numbers)."""
    kib, mib = 1024, 1024 * 1024
    if type(value).__name__ == "TransferCost":
        return f"{value.bytes_per_cycle} B/cycle + {value.fixed_cycles} cycles"
    if type(value).__name__ == "VectorCost":
        return f"{value.head_cycles} + {value.slope_cycles}/repeat, tail {value.tail_cycles}"
    if name == "clock_hz":
        return f"{value / 1e9:g} GHz"
    if name.endswith("_bytes_per_s"):
        return f"{value / 1e12:g} TB/s"
    if name.endswith("_bytes") and isinstance(value, int) and value >= kib:
        return f"{value // mib} MiB" if value % mib == 0 else f"{value // kib} KiB" if value % kib == 0 else str(value)
    return f"{value:_}".replace("_", ",") if isinstance(value, int) else str(value)


# ------------------------------------------------------------------------------------------ stored outputs
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
# The JupyterLab renderers' input (extensions/ptort-lab-renderers); every such output also carries text/html with
# the same pictures inline, which the page shows.
RENDERER_ONLY = ("application/vnd.ptort.pipeline+json", "application/vnd.ptort.trace+json")


def static_outputs(app: Sphinx, docname: str, source: list[str]) -> None:
    """source-read: a notebook's renderer-only outputs are dropped (their text/html twin shows). A stored live
    widget view is an error: ``notebooks/build.py`` keeps only the explorer's picture and summary, so a view here
    means the notebook was saved from a live session instead of built."""
    if not app.env.doc2path(docname).suffix == ".ipynb":
        return
    notebook = json.loads(source[0])
    changed = notebook.get("metadata", {}).pop("widgets", None) is not None
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            for mime_type in RENDERER_ONLY:
                changed = data.pop(mime_type, None) is not None or changed
            if data.pop(WIDGET_VIEW, None) is not None:
                changed = True
                logger.warning(f"{docname}: a live widget view is stored in the notebook (it needs widget "
                               "JavaScript the site does not load): rebuild it with `make notebooks`",
                               location=docname)
    if changed:
        source[0] = json.dumps(notebook)


def leave_out(app: Sphinx, what: str, name: str, obj: Any, skip: bool, options: Any) -> bool | None:
    """autodoc-skip-member: the members of ``NOT_IN_REFERENCE`` stay out of the reference."""
    function = getattr(obj, "fget", obj)  # a property's getter says where it is defined
    where = f"{getattr(function, '__module__', '')}.{getattr(function, '__qualname__', '')}"
    for cls, members in NOT_IN_REFERENCE.items():
        if name in members and where == f"{cls}.{name}":
            return True
    return None


def magic_usage(app: Sphinx, what: str, name: str, obj: Any, options: Any, lines: list[str]) -> None:
    """autodoc-process-docstring: an IPython magic's docstring (the usage ``magic_arguments`` puts first, then its
    text) is plain text laid out for ``%%ptort?``, not reST: it is shown as written, as ``%%ptort?`` shows it."""
    if not hasattr(obj, "parser") or not hasattr(obj, "has_arguments"):
        return
    body = list(lines)
    while body and body[0].strip() in ("", "::"):
        body.pop(0)
    lines[:] = ["What ``%%ptort?`` shows:", "", "::", ""] + [f"   {line}" if line.strip() else "" for line in body]
    lines.append("")


def setup(app: Sphinx) -> dict[str, Any]:
    write_api_pages(Path(app.srcdir))
    app.connect("source-read", static_outputs)
    app.add_directive("ptort-machine-constants", MachineConstants)
    app.connect("missing-reference", resolve_public_name)
    app.connect("autodoc-process-bases", public_bases)
    app.connect("doctree-read", drop_empty_bases)
    app.connect("doctree-read", plain_builtins)
    app.connect("autodoc-process-signature", factory_defaults)
    app.connect("autodoc-process-docstring", constant_docstrings)
    app.connect("autodoc-process-docstring", magic_usage)
    app.connect("autodoc-skip-member", leave_out)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
