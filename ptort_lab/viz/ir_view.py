"""The kernel IR view: the printed IR, with types, and the pipe each op runs on in the NPU model's lowering."""
from __future__ import annotations

import html
from typing import Any

from ..dsl.ir import KernelIR, Op, OpKind
from ..dsl.printer import print_kernel
from ..errors import PtortTypeError
from ..sim.lowering import lower
from ..sim.machine import Machine, ascend_910b, get_machine
from .views import TextView


def _count(items: list[str], sep: str = ", ") -> str:
    out: list[str] = []
    for name in dict.fromkeys(items):
        n = items.count(name)
        out.append(f"{name} x{n}" if n > 1 else name)
    return sep.join(out)


def op_pipes(ir: KernelIR, machine: Machine) -> dict[int, str]:
    """Op index -> where it runs, e.g. ``AIV.V``, ``AIC.CUBE x2 via AIC.MTE1 x4`` (moves the op needs first)."""
    index = {id(op): i for i, op in enumerate(ir.ops)}
    main: dict[int, list[str]] = {}
    moves: dict[int, list[str]] = {}
    for ins in lower(ir, machine).instrs:
        op: Op | None = ins.op
        if op is None or id(op) not in index:
            continue
        i = index[id(op)]
        # the instruction named after the op does its work; the others bring operands to it (TEXTRACT, FIX, GM hops)
        target = main if ins.name == op.kind.value else moves
        target.setdefault(i, []).append(f"{ins.unit}.{ins.pipe}")
    out = {}
    for i in range(len(ir.ops)):
        text = _count(main.get(i, []))
        if i in moves:
            text = f"{text} via {_count(moves[i], ' -> ')}".strip()
        if text:
            out[i] = text
    for i in reversed(range(len(ir.ops))):  # (from the end: a relu fused with the cast after it names its store)
        fused = _fused_into(ir, i, out)
        if fused is not None:
            out[i] = fused
    return out


def _fused_into(ir: KernelIR, i: int, pipes: dict[int, str]) -> str | None:
    """``fused into <the store's pipe>`` for a cast or relu that emits no instruction because the FIX store of its
    result does it on the way out (``lowering``: NPU_MODEL §2.1), else None."""
    op = ir.ops[i]
    if i in pipes or op.kind not in (OpKind.CAST, OpKind.RELU) or op.result is None:
        return None
    user = next((j for j in range(i + 1, len(ir.ops))
                 if any(getattr(v, "id", None) == op.result.id for v in ir.ops[j].operands)), None)
    if user is None or user not in pipes:
        return None
    store = pipes[user]
    return store if store.startswith("fused into") else (f"fused into {store}" if store.startswith("AIC.FIX") else None)


class KernelView(TextView):
    """A kernel's IR as text with a ``# pipe`` column; shows as text or an escaped ``<pre>`` in Jupyter."""

    def __init__(self, ir: KernelIR, machine: Machine) -> None:
        self.ir = ir
        self.machine = machine
        self.pipes = op_pipes(ir, machine)
        self._text = (f"# pipes on {machine.name} (AIC = cube unit, AIV = vector unit)\n"
                      + print_kernel(ir, pipes=self.pipes))

    @property
    def text(self) -> str:
        return self._text

    def _repr_html_(self) -> str:
        return f'<pre class="ptort-ir">{html.escape(self.text)}</pre>'

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None, **kwargs: Any) -> dict[str, str]:
        bundle = {"text/plain": self.text, "text/html": self._repr_html_()}
        return {k: v for k, v in bundle.items()
                if (include is None or k in include) and (exclude is None or k not in exclude)}


def kernel_view(kernel_or_ir: Any, machine: Machine | str | None = None) -> KernelView:
    """The IR of a ``@kernel`` (traced with its defaults) or a KernelIR, with the pipe of each op on ``machine``
    (a preset name or a Machine; default the Ascend 910B2 model).

    >>> print(kernel_view(scale))   # doctest: +SKIP
    # pipes on ascend_910b (AIC = cube unit, AIV = vector unit)
    kernel scale(x: In[f32[64,128]], y: Out[f32[64,128]]):
      a: f32[64,128] = load x                     # AIV.MTE2
      ...
    """
    ir = kernel_or_ir
    if not isinstance(ir, KernelIR):
        trace = getattr(ir, "trace", None)
        if getattr(ir, "kernel", None) is not None and trace is None:  # k[t]: a KernelLaunch
            trace = ir.kernel.trace
        ir = trace() if callable(trace) else None
    if not isinstance(ir, KernelIR):
        raise PtortTypeError(f"kernel_view() needs a @kernel or a KernelIR, got {type(kernel_or_ir).__name__} "
                             f"{kernel_or_ir!r}.", hint="Pass the decorated kernel (kernel_view(my_kernel)) or "
                                                        "my_kernel.trace().")
    return KernelView(ir, ascend_910b if machine is None else get_machine(machine))


__all__ = ["kernel_view", "KernelView", "op_pipes"]
