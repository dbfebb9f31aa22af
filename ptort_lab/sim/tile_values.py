"""Work that depends on the tile index: the conds, cycles= functions and loop sizes a steady-state run must check.

A steady-state probe compares the engine's state tile by tile, and that state holds no cost and no branch taken, so
a ``cond(i < 5000, ...)``, a ``cycles=`` function of the tile or a loop sized by it changes the work of tiles the
short runs never reach. ``tile_values`` finds every such place in a workload (``TileValues``), evaluates it at every
tile when asked, and says whether its values repeat with the period the probe found (``sim/steady_state.py``).
"""
from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable, Hashable, Iterator, Sequence

from ..dsl import axes as axes_module
from ..dsl import expr as expr_module
from ..dsl.axes import Axis, DenseDyn, SparseRow
from ..dsl.bindings import call_predicate, make_task, resolve_select_source
from ..dsl.expr import Expr, LoopVar
from ..dsl.tree import LOOPS, NodeKind
from ..dsl.workload import Workload
from ..errors import PtortError, SourceLocation


def roots(workload: Workload) -> list[Workload]:
    """The workload and its processes' bodies (a pipeline's tile loops are in its processes)."""
    return [workload] + [p.workload for p in getattr(workload, "processes", ()) or ()]


# The state a probe compares holds no cost and no branch taken, so a cond(i < 5000, ...), a cycles= function of the
# tile or a loop sized by it changes the work of tiles the short runs never reach. Their values are evaluated at
# every tile instead, at most this many evaluations in all (about a second); past it they cannot be checked.
MAX_VALUE_CHECKS = 1_000_000
_TILE, _OTHER = 1, 2  # what a loop or consume variable holds (absent: nothing of the tile): the tile index itself,
# or a value derived from it (a token computed from it, a send's running index)
_INDEX = object()  # the token of a send that passes its index among the process's sends
_PER_TILE_HINT = ("Run it in full with execute() at the size you built, or make the per-tile work the same for every "
                  "tile (no per-tile costs or shapes).")


@dataclass
class Why:
    """Why a run is not extrapolated: the note's reason, and the hint and line of the error when it must refuse."""

    text: str
    hint: str = _PER_TILE_HINT
    where: SourceLocation | None = None
    among: str = ""  # where the refusal found no steady state, when that is the reason ("in a workload of 100 tiles")


@dataclass
class _Place:
    """A value of the workload that may change with the tile index: its value at tile x, or why it cannot say."""

    what: str
    loc: SourceLocation | None
    value: Callable[[int], Hashable] | None
    why: str = ""

    def named(self) -> str:
        return f"{self.what} at {self.loc}" if self.loc is not None else self.what


class TileValues:
    """The places whose values change with the tile index (conds, cycles= functions, loop sizes) and their values,
    evaluated tile by tile as far as needed: ``seq[x]`` numbers the tuple of values at tile x (``table[seq[x]]``).
    ``why``: they cannot be evaluated (then the run is not extrapolated)."""

    def __init__(self, places: list[_Place]) -> None:
        self.places = places
        # the names of the variables that hold the tile index (and no other variable's): a task's tile is its value
        self.tile_names: tuple[str, ...] = ()
        self.seq: list[int] = []
        self.table: list[tuple[Any, ...]] = []
        self._ids: dict[tuple[Any, ...], int] = {}
        opaque = next((p for p in places if p.value is None), None)
        self.why = None if opaque is None else Why(f"{opaque.named()} {opaque.why}, so whether the run repeats "
                                                    "cannot be checked", where=opaque.loc)

    def evaluate(self, tiles: int) -> Why | None:
        """The values up to tile ``tiles`` (exclusive); why not, when they cannot be evaluated."""
        if not self.places or len(self.seq) >= tiles:
            return None
        if tiles * len(self.places) > MAX_VALUE_CHECKS:
            place = self.places[0]
            return Why(f"{place.named()} depends on the tile index, and checking its values at {tiles:,} tiles is "
                        f"more than the {MAX_VALUE_CHECKS:,} evaluations a steady-state run makes",
                        hint="Run fewer tiles, or run it in full with execute() at the size you built (with "
                             "keep_trace=False for a long run).", where=place.loc)
        for x in range(len(self.seq), tiles):
            values = []
            for place in self.places:
                try:
                    values.append(place.value(x))  # type: ignore[misc]  # (set: the places were checked)
                except Exception as e:  # noqa: BLE001 - the user's condition or cost function
                    what = e.what if isinstance(e, PtortError) else str(e)
                    return Why(f"{place.named()} depends on the tile index, and evaluating it for tile {x:,} "
                                f"raised {type(e).__name__} ({what.rstrip('.')}), so whether the run repeats cannot "
                                "be checked", where=place.loc)
            key = tuple(values)
            number = self._ids.get(key)
            if number is None:
                number = self._ids[key] = len(self.table)
                self.table.append(key)
            self.seq.append(number)
        return None

    def pattern(self, tiles: int, target: int, size: int, longest_period: int) -> tuple[int, int, Why | None]:
        """(start, every, why not): the values up to ``tiles`` (of ``target``) repeat every ``every`` tiles from
        tile ``start`` on (the probe keys only those tiles; a period longer than ``longest_period`` is none); ``why``:
        they do not, or only so late that the full run of ``size`` tiles (when it is the run asked for) costs less."""
        if not self.places:
            return 0, 1, None
        why = self.evaluate(tiles)
        if why is not None:
            return 0, 1, why
        repeat = _repeats(self.seq[:tiles])
        if repeat is None or repeat[1] > longest_period:
            return 0, 1, self._too_long(tiles, target, size, longest_period, repeat)
        start, every = repeat
        if (start, every) == (0, 1):
            return 0, 1, None  # the same at every tile (a cycles= function that is a constant)
        if target == size and 3 * (start + 2 * every) >= size:
            # the short runs would each pass tile `start` and three periods: the full run costs less
            if start:
                place = self._differs(start - 1, start - 1 + every)
                when = f"repeats every {every:,} tile(s) only from tile {start:,} on"
            else:
                place = self._varies()
                when = f"repeats only every {every:,} tiles"
            return start, every, Why(f"{place.named()} changes the tiles' work, which {when}, so extrapolating "
                                      "would simulate about as many tiles as the full run", where=place.loc)
        return start, every, None

    def breaks(self, first: int, p: int, tiles: int) -> Why | None:
        """Why a period of ``p`` tiles from tile ``first`` on is not the values' own over ``tiles`` tiles (or they
        cannot be checked), None when it is."""
        why = self.evaluate(tiles)
        if why is not None or not self.places:
            return why
        seq = self.seq
        for x in range(first, tiles - p):
            if seq[x] != seq[x + p]:
                place = self._differs(x, x + p)
                return Why(f"{place.named()} has another value at tile {x + p:,} than at tile {x:,}, one period of "
                            f"the run's state ({p} tile(s)) before, so the run does not repeat with it",
                            where=place.loc)
        return None

    def _too_long(self, tiles: int, target: int, size: int, longest_period: int,
                  repeat: tuple[int, int] | None) -> Why:
        """Why the values of the first ``tiles`` tiles show no period (``repeat``: none, or one past
        ``longest_period``): a place whose own values do not repeat, or else the places that each repeat but together
        only every so many tiles (the least common multiple of their periods), more than the tiles evaluated hold
        three times."""
        along = f"the first {tiles:,} tiles" if tiles < target else f"its {tiles:,} tiles"
        own: list[tuple[_Place, int, int]] = []  # (place, from which tile, every how many) of those that vary
        for i, place in enumerate(self.places):
            alone = _repeats([self.table[n][i] for n in self.seq[:tiles]])
            if alone is None:
                return Why(f"{place.named()} changes the tiles' work and does not repeat along {along}",
                           where=place.loc)
            if alone[1] > longest_period:
                return Why(f"{place.named()} changes the tiles' work and repeats only every {alone[1]:,} tiles, "
                           f"more than the {longest_period:,} a steady-state run looks for", where=place.loc)
            if alone != (0, 1):
                own.append((place, *alone))
        if len(own) < 2:  # (one place that varies: its own period is the values' one; kept for safety)
            place = self._varies()
            return Why(f"{place.named()} changes the tiles' work and does not repeat along {along}", where=place.loc)
        start, every = repeat if repeat is not None else (max(s for _, s, _ in own),
                                                          math.lcm(*(q for _, _, q in own)))
        named = [f"{place.named()} ({_every(q, s)})" for place, s, q in own]
        values = f"the per-tile values of {', '.join(named[:-1])} and {named[-1]} together repeat only " \
                 f"{_every(every, start)}"
        where = own[0][0].loc
        if repeat is not None:
            return Why(f"{values}, more than the {longest_period:,} a steady-state run looks for", where=where)
        need = start + 3 * every  # (none found: more than `tiles`)
        if tiles == size:
            return Why(f"{values}: extrapolating needs 3 periods of them, {need:,} tiles, and the workload has "
                       f"{size:,}", where=where,
                       hint=f"Build the workload with at least {need:,} tiles (its tile loop over Dense[{need}]() or "
                            "more), or make those values repeat sooner; or run it in full with execute() at the size "
                            "you built.")
        has = f"the run asked for has {tiles:,}" if tiles == target else \
            f"a steady-state run looks at most {tiles:,} tiles ahead"
        return Why(f"{values}: extrapolating needs 3 periods of them, {need:,} tiles, and {has}", where=where)

    def _varies(self) -> _Place:
        """The first place whose value is not the same at every tile evaluated."""
        return next((p for i, p in enumerate(self.places) if len({row[i] for row in self.table}) > 1),
                    self.places[0])

    def _differs(self, x: int, y: int) -> _Place:
        a, b = self.table[self.seq[x]], self.table[self.seq[y]]
        return next((place for place, u, v in zip(self.places, a, b) if u != v), self.places[0])


def tile_values(workload: Workload, axes: list[Any]) -> TileValues:
    """What in ``workload`` may change with the tile index of ``axes`` (evaluated tile by tile when asked)."""
    scoped = list(_scoped(roots(workload)))
    kinds = _variable_kinds(scoped, {id(a) for a in axes})
    out = TileValues([p for node, scope in scoped if (p := _place(node, scope, kinds)) is not None])
    bound = [v for node, _ in scoped for v in _bound(node)]
    other = {v.name for v in bound if kinds.get(id(v)) != _TILE}
    out.tile_names = tuple(sorted({v.name for v in bound if kinds.get(id(v)) == _TILE} - other))
    return out


def _every(q: int, start: int) -> str:
    """"every 3 tiles", "every 3 tiles from tile 2 on", "the same from tile 2 on"."""
    since = f" from tile {start:,} on" if start else ""
    return f"the same{since}" if q == 1 else f"every {q:,} tiles{since}"


def _repeats(seq: Sequence[Hashable]) -> tuple[int, int] | None:
    """(s, q): ``seq[s:]`` repeats every q items, for the longest such tail that holds at least three periods (the
    prefix function of the reversed sequence gives each tail's shortest period); None when there is none."""
    r = seq[::-1]
    border = [0] * len(r)
    k = 0
    for i in range(1, len(r)):
        while k and r[i] != r[k]:
            k = border[k - 1]
        if r[i] == r[k]:
            k += 1
        border[i] = k
    best = None
    for length in range(1, len(r) + 1):
        period = length - border[length - 1]
        if length >= 3 * period:
            best = (len(r) - length, period)
    return best


def _scoped(roots: list[Workload]) -> Iterator[tuple[Workload, tuple[LoopVar, ...]]]:
    """Every node under ``roots`` (once each) with the loop and consume variables bound where it runs."""
    seen: set[int] = set()
    stack: list[tuple[Workload, tuple[LoopVar, ...]]] = [(r, ()) for r in reversed(roots)]
    while stack:
        node, scope = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node, scope
        inner = scope + _bound(node)
        stack.extend((child, inner) for child in reversed(node.children()))


def _bound(node: Workload) -> tuple[LoopVar, ...]:
    """The variables ``node`` binds for its body: a loop's, a consume's or a join's."""
    kind = node.kind
    return tuple(node.vars) if kind in LOOPS or kind is NodeKind.JOIN else (node.var,) if kind is NodeKind.CONSUME \
        else ()


def _variable_kinds(scoped: list[tuple[Workload, tuple[LoopVar, ...]]], tile_ids: set[int]) -> dict[int, int]:
    """id(variable) -> _TILE or _OTHER for the variables that hold a tile index: the loop variables of the tile axes,
    and the consume and join variables of channels whose every send passes one of those on as its token."""
    kinds: dict[int, int] = {}
    tokens: dict[int, list[Any]] = {}
    receivers: list[tuple[LoopVar, Any]] = []
    for node, _ in scoped:
        if node.kind in LOOPS:
            k = 0
            for axis in node.axes:
                if id(axis) in tile_ids and k < len(node.vars):
                    kinds[id(node.vars[k])] = _TILE
                k += axis.rank if isinstance(axis, Axis) else 1
        elif node.kind is NodeKind.SEND:
            tokens.setdefault(id(node.channel), []).append(_token(node))
        elif node.kind is NodeKind.CONSUME:
            receivers.append((node.var, node.channel))
        elif node.kind is NodeKind.JOIN:
            receivers.extend(zip(node.vars, node.channels))
    for _ in range(len(receivers) + 1):  # a token may be another consume's variable: until nothing changes
        changed = False
        for var, channel in receivers:
            sent = {_token_kind(t, kinds) for t in tokens.get(id(channel), [])}
            kind = _TILE if sent == {_TILE} else 0 if sent <= {0} else _OTHER
            if kinds.get(id(var), 0) != kind:
                kinds[id(var)] = kind
                changed = True
        if not changed:
            break
    else:  # (did not settle: assume the worst)
        kinds.update((id(var), _OTHER) for var, _ in receivers)
    return {k: v for k, v in kinds.items() if v}


def _token(send: Workload) -> Any:
    """What a send passes on (csp.send): ``token=``, else its task's first axis value, else its index."""
    if send.token is not None:
        return send.token
    value = send.value
    if isinstance(value, Workload):
        return value.params[0] if value.kind is NodeKind.TASK and value.params else _INDEX
    return value


def _token_kind(token: Any, kinds: dict[int, int]) -> int:
    if token is _INDEX:
        return _OTHER
    if isinstance(token, LoopVar):
        return kinds.get(id(token), 0)
    reads, opaque = _reads(token)
    return _OTHER if opaque or any(kinds.get(id(v), 0) for v in reads) else 0


def _reads(value: Any) -> tuple[list[LoopVar], bool]:
    """(the loop variables ``value`` reads, whether it also reads something only the run knows: a runtime slot, a
    channel item)."""
    found: list[LoopVar] = []
    opaque = False
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, LoopVar):
            found.append(v)
        elif isinstance(v, Expr):
            if type(v).__module__ not in (expr_module.__name__, axes_module.__name__):
                opaque = True
                continue
            stack.extend(getattr(v, name, None) for cls in type(v).__mro__ for name in getattr(cls, "__slots__", ()))
        elif isinstance(v, DenseDyn):
            stack.append(v.size)
        elif isinstance(v, SparseRow):
            stack.append(v.row)
        elif isinstance(v, (list, tuple)):
            stack.extend(v)
    return found, opaque


def _place(node: Workload, scope: tuple[LoopVar, ...], kinds: dict[int, int]) -> _Place | None:
    """The place ``node`` has whose value may change with the tile index, None when it has none."""
    loc = node.loc
    if node.kind is NodeKind.COND:
        pred = node.pred
        if isinstance(pred, Expr):
            return _expr_place(f"cond({_text(pred)}, ...)", loc, pred, scope, kinds,
                               lambda b: bool(expr_module.evaluate(pred, b)))
        if callable(pred):
            return _call_place("the condition function of a cond", loc, scope, kinds,
                               lambda b: bool(call_predicate(pred, b, loc)))
    elif node.kind is NodeKind.TASK and callable(node.cycles):
        name = node.kernel if isinstance(node.kernel, str) else node.kernel.name
        return _call_place(f"the cycles= function of task '{name}'", loc, scope, kinds,
                           lambda b: make_task(node, b).pinned_cycles())
    elif node.kind in LOOPS:
        for axis in node.axes:
            if isinstance(axis, (DenseDyn, SparseRow, list, tuple)):
                place = _expr_place(f"the loop over {axis!r}", loc, axis, scope, kinds,
                                    functools.partial(_points, axis))
                if place is not None:
                    return place
    return None


def _points(axis: Any, bindings: dict[str, Any]) -> Hashable:
    """The points a loop over ``axis`` visits (as a hashable value)."""
    points = resolve_select_source(axis, bindings)
    return points if isinstance(points, range) else tuple(points)


def _expr_place(what: str, loc: SourceLocation | None, value: Any, scope: tuple[LoopVar, ...],
                kinds: dict[int, int], value_at: Callable[[dict[str, Any]], Hashable]) -> _Place | None:
    """A loop expression's place: evaluated with its one tile variable bound to each tile."""
    reads, opaque = _reads(value)
    if opaque:
        if any(id(v) in kinds for v in scope):
            return _Place(what, loc, None, "reads a value only the run knows (a runtime slot or a channel item)")
        return None
    tiled = [v for v in reads if id(v) in kinds]
    if not tiled:
        return None
    derived = next((v for v in tiled if kinds[id(v)] == _OTHER), None)
    if derived is not None:
        return _Place(what, loc, None, f"reads '{derived.name}', a value derived from the tile index that its "
                                       "channel's producers send (not the tile index itself)")
    names = sorted({v.name for v in reads})
    if len(names) > 1:
        tile = tiled[0].name
        others = ", ".join(repr(n) for n in names if n != tile)
        return _Place(what, loc, None, f"reads the tile index '{tile}' together with {others}")
    return _at_tile(what, loc, names[0], value_at)


def _call_place(what: str, loc: SourceLocation | None, scope: tuple[LoopVar, ...], kinds: dict[int, int],
                value_at: Callable[[dict[str, Any]], Hashable]) -> _Place | None:
    """A function's place (it may read any variable bound where it runs): called with the tile variable bound."""
    tiled = [v for v in scope if id(v) in kinds]
    if not tiled:
        return None
    if any(kinds[id(v)] == _OTHER for v in tiled) or len({v.name for v in tiled}) > 1:
        return _Place(what, loc, None, "is a function of a task whose loop variables include values derived from "
                                       "the tile index")
    return _at_tile(what, loc, tiled[0].name, value_at)


def _at_tile(what: str, loc: SourceLocation | None, name: str,
             value_at: Callable[[dict[str, Any]], Hashable]) -> _Place:
    return _Place(what, loc, lambda x: value_at({name: x}))


def _text(e: Any) -> str:
    text = repr(e)
    return text[1:-1] if text.startswith("(") and text.endswith(")") else text


__all__ = ["TileValues", "Why", "tile_values", "roots", "MAX_VALUE_CHECKS"]
