"""Task factories compiled to Python functions: a task node's parameters and tensor views under loop bindings as
one call (the usual case), the general factory for everything else."""
from __future__ import annotations

from typing import Any, Callable

from ..errors import SourceLocation
from .expr_code import Code
from .tasks import Task
from .types import TensorView

# A task with more index entries than this is built by the general factory (the text stays small).
MAX_INLINE_ENTRIES = 64


def compile_factory(name: Any, kernel: Any, cycles: Any, loc: SourceLocation | None, params: list[Any],
                    resources: Any, general: Callable[[dict[str, Any]], Task]) -> Callable[[dict[str, Any]], Task]:
    """``general`` (``bindings.task_factory``'s factory of the node) as one function: each parameter and each
    resource evaluated inline (``Code.value``), each symbolic view's index entries too, and the Task built when
    every entry is a plain int inside its dimension. When one is not (a literal -1, a numpy int, or one the general
    factory refuses: negative, out of range, not an int) the Task is built from the values evaluated, each view's
    entries checked as the general factory checks them (``TensorView.at_entries``): the same Task or error, each
    expression evaluated once (a user's Expr subclass may count its calls). On an exception (a loop variable with no
    value, an expression that raises) it calls ``general``, which raises the error naming what is wrong: the
    expressions evaluated before it are evaluated again there, as a failing loop expression is (``expr``: the error
    names the node that failed, found by evaluating the tree node by node).
    ``general`` itself when the node is not written so (too many entries, or Python cannot compile it)."""
    code = Code(__name__)
    lines: list[str] = []
    checks: list[str] = []
    late: list[str] = []  # the parameters and plain resources, evaluated (in the general factory's order) when an
    # entry is not the usual plain int

    def view_texts(view: TensorView) -> tuple[str, str] | None:
        shape = view.base.shape
        if len(view.index) > len(shape):  # (the general factory says what is wrong)
            return None
        entries = []
        for k, entry in enumerate(view.index):
            var = f"i{len(checks)}"
            lines.append(f"        {var} = {code.value(entry)}")
            checks.append(f"{var}.__class__ is int and 0 <= {var} < {int(shape[k])}")
            entries.append(var)
        index = f"({''.join(e + ', ' for e in entries)})"
        return (f"{code.name(TensorView)}({code.name(view.base)}, {index})",
                f"{code.name(view)}.at_entries({index}, b, {code.name(loc)})")

    def value_texts(value: Any) -> tuple[str, str]:
        """(the text of ``value``, a local holding it, evaluated among ``late``)."""
        text = code.value(value, read_loop_vars=True)
        var = f"v{len(late)}"
        late.append(f"        {var} = {text}")
        return text, var

    def resource_texts(value: Any) -> tuple[str, str] | None:
        if isinstance(value, TensorView):
            if value.is_symbolic:
                return view_texts(value)
            return code.name(value), code.name(value)  # (a fixed view: the same object)
        return value_texts(value)

    try:
        param_texts = [value_texts(p) for p in params]
        pairs = list(resources.items()) if isinstance(resources, dict) else list(enumerate(resources))
        if sum(len(v.index) for _, v in pairs if isinstance(v, TensorView)) > MAX_INLINE_ENTRIES:
            return general
        texts = [resource_texts(v) for _, v in pairs]
        known = [t for t in texts if t is not None]
        if len(known) < len(texts):
            return general
        made, checked = (_task_text(code, name, kernel, cycles, loc, [t[way] for t in param_texts],
                                    [(k, t[way]) for (k, _), t in zip(pairs, known)], isinstance(resources, dict))
                         for way in (0, 1))
        text = "\n".join(["def _make(b):", "    try:", *lines,
                          f"        if {' and '.join(checks) or 'True'}:", f"            return {made}",
                          *late, "        got = True", "    except Exception:", "        got = False",
                          "    if got:", f"        return {checked}",
                          f"    return {code.name(general)}(b)", ""])
    except Exception:  # noqa: BLE001 - a node this cannot write: the general factory
        return general
    fn: Callable[[dict[str, Any]], Task] | None = code.function(text, "<task factory>")
    return general if fn is None else fn


def _task_text(code: Code, name: Any, kernel: Any, cycles: Any, loc: SourceLocation | None, params: list[str],
               resources: list[tuple[Any, str]], by_name: bool) -> str:
    """The text of the Task of these parameter and resource texts (resources by name, else by position)."""
    if by_name:
        res = "{" + ", ".join(f"{code.name(k)}: {t}" for k, t in resources) + "}"
    else:
        res = "[" + ", ".join(t for _, t in resources) + "]"
    return (f"{code.name(Task)}({code.name(name)}, [{', '.join(params)}], {res}, 0, b, {code.name(kernel)}, "
            f"{code.name(cycles)}, {code.name(loc)})")


__all__ = ["compile_factory", "MAX_INLINE_ENTRIES"]
