"""The only code that turns Kernel IR into text: the short op form and the one-line-per-op kernel listing."""
from __future__ import annotations

from .ir import KernelIR, Literal, Op, OpKind, Value
from .types import Direction


def _attr_text(op: Op) -> list[str]:
    if op.kind is OpKind.SLICE:  # the window as Python writes it: 0:64 128:256
        return [f"{a}:{b}" for _, (a, b) in op.attrs]
    return [f"[{','.join(map(str, v))}]" if isinstance(v, tuple) else str(v) for _, v in op.attrs]


def short_op(op: Op) -> str:
    """``load src``, ``cast F16``, ``mul 2.0``, ``store dst``: the op, its params, and the named or literal operands."""
    parts = _attr_text(op)
    for a in op.operands:
        if isinstance(a, Literal):
            parts.append(str(a))
        elif a.name is not None:
            parts.append(a.name)
    return " ".join([op.kind.value] + parts) if parts else op.kind.value


def _temp_name(n: int) -> str:
    # a, b, ..., z, ba, bb, ... as in JAX: the names exist only in printed text.
    letters = "abcdefghijklmnopqrstuvwxyz"
    out = letters[n % 26]
    n //= 26
    while n:
        out = letters[n % 26] + out
        n //= 26
    return out


def _value_text(v: object) -> str:
    """``repr(v)``, but with the items of sets (and the keys of dicts) sorted by their text: a set's order changes
    with PYTHONHASHSEED, and the IR text must not."""
    if isinstance(v, (set, frozenset)) and v:
        items = "{" + ", ".join(sorted(_value_text(x) for x in v)) + "}"
        return items if type(v) is set else f"{type(v).__name__}({items})"
    if isinstance(v, dict) and type(v) is dict:
        pairs = sorted((_value_text(k), _value_text(x)) for k, x in v.items())
        return "{" + ", ".join(f"{k}: {x}" for k, x in pairs) + "}"
    if isinstance(v, list) and type(v) is list:
        return "[" + ", ".join(_value_text(x) for x in v) + "]"
    if isinstance(v, tuple) and type(v) is tuple:
        return "(" + ", ".join(_value_text(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    return repr(v)


def print_kernel(ir: KernelIR, *, pipes: dict[int, str] | None = None) -> str:
    """One line per op: ``name: type = op[params] args``; temporaries are named a, b, c... at print time.

    ``pipes`` (op index -> pipe name) appends the pipe each op runs on, for the simulator's IR view.
    """
    names: dict[int, str] = {}
    params = []
    for p in ir.params:
        if p.value is not None:
            names[p.value.id] = p.name
        if p.direction is Direction.CONSTEXPR:
            continue
        params.append(f"{p.name}: {p.direction.value}[{p.type}]")
    consts = "".join(f"[{k}={_value_text(v)}]" for k, v in ir.constexprs)
    lines = [f"kernel {ir.name}{consts}({', '.join(params)}):"]
    taken = set(names.values())
    counter = 0

    def fresh() -> str:
        nonlocal counter
        while True:
            name = _temp_name(counter)
            counter += 1
            if name not in taken:
                return name

    def operand(a: Value | Literal) -> str:
        return str(a) if isinstance(a, Literal) else names[a.id]

    for i, op in enumerate(ir.ops):
        params_text = "".join(f"[{v}]" for v in (_attr_text(op) if op.kind is OpKind.SLICE else
                                                   (v for _, v in op.attrs)))
        args = ", ".join(operand(a) for a in op.operands)
        body = f"{op.kind.value}{params_text}" + (f" {args}" if args else "")
        if op.result is not None:
            names[op.result.id] = fresh()
            line = f"  {names[op.result.id]}: {op.result.type} = {body}"
        else:
            line = f"  {body}"
        if pipes is not None and i in pipes:
            line = f"{line:<48}# {pipes[i]}"
        lines.append(line)
    if not ir.ops:
        lines.append("  (no ops)")
    return "\n".join(lines)


def kernel_op_summary(ir: KernelIR) -> str:
    """``tl.load, tl.cast, tl.store``: the distinct tl ops a kernel uses, in first-use order."""
    seen: list[str] = []
    for op in ir.ops:
        name = f"tl.{op.kind.value}"
        if op.kind is OpKind.CMP:
            name = f"tl.{op.attr('cmp')}"
        if name not in seen:
            seen.append(name)
    return ", ".join(seen)
