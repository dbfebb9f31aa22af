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
    every entry is a plain int inside its dimension. On anything else - an entry that is negative, out of range or
    not an int, a loop variable with no value, an expression that raises - it calls ``general``, which gives the
    same Task or raises the error naming what is wrong (expressions are taken as pure, as compiled loop expressions
    take them: a user's Expr subclass with side effects would see them twice).
    ``general`` itself when the node is not written so (too many entries, or Python cannot compile it)."""
    code = Code(__name__)
    lines: list[str] = []
    checks: list[str] = []

    def view_text(view: TensorView) -> str | None:
        shape = view.base.shape
        if len(view.index) > len(shape):  # (the general factory says what is wrong)
            return None
        entries = []
        for k, entry in enumerate(view.index):
            var = f"i{len(checks)}"
            lines.append(f"        {var} = {code.value(entry)}")
            checks.append(f"{var}.__class__ is int and 0 <= {var} < {int(shape[k])}")
            entries.append(var)
        return f"{code.name(TensorView)}({code.name(view.base)}, ({''.join(e + ', ' for e in entries)}))"

    def resource_text(value: Any) -> str | None:
        if isinstance(value, TensorView):
            return view_text(value) if value.is_symbolic else code.name(value)  # (a fixed view: the same object)
        return code.value(value, read_loop_vars=True)

    try:
        param_texts = [code.value(p, read_loop_vars=True) for p in params]
        pairs = list(resources.items()) if isinstance(resources, dict) else list(enumerate(resources))
        if sum(len(v.index) for _, v in pairs if isinstance(v, TensorView)) > MAX_INLINE_ENTRIES:
            return general
        texts = [resource_text(v) for _, v in pairs]
        if any(t is None for t in texts):
            return general
        if isinstance(resources, dict):
            res = "{" + ", ".join(f"{code.name(k)}: {t}" for (k, _), t in zip(pairs, texts)) + "}"
        else:
            res = "[" + ", ".join(str(t) for t in texts) + "]"
        made = (f"{code.name(Task)}({code.name(name)}, [{', '.join(param_texts)}], {res}, 0, b, {code.name(kernel)}, "
                f"{code.name(cycles)}, {code.name(loc)})")
        text = "\n".join(["def _make(b):", "    try:", *lines,
                          f"        if {' and '.join(checks) or 'True'}:", f"            return {made}",
                          "    except Exception:", "        pass",
                          f"    return {code.name(general)}(b)", ""])
    except Exception:  # noqa: BLE001 - a node this cannot write: the general factory
        return general
    fn: Callable[[dict[str, Any]], Task] | None = code.function(text, "<task factory>")
    return general if fn is None else fn


__all__ = ["compile_factory", "MAX_INLINE_ENTRIES"]
