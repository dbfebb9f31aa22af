"""Knobs: what a study varies (channel depth, tile size, tile count, cores), and the rules their values must keep.

The rules live here, so that every front end applies the same ones in the same words: ``%%ptort``, the explorer,
``sweep()`` and ``explore.Study`` / ``run_study``. A front end says how it spells a knob with ``KnobWords``. A value
a rule refuses raises ``KnobError`` (a PtortValueError): a sweep stops on it, since every point would be wrong.
"""
from __future__ import annotations

import numbers
import re
from dataclasses import dataclass, fields, replace
from typing import Any, Callable, Sequence

from .dsl import Channel
from .dsl import steps as steps_module
from .dsl.csp import MAX_DEPTH, int_text
from .errors import KnobError, PtortTypeError, PtortValueError, SourceLocation
from .sim.machine import Machine

#: The knobs a study varies: channel depth, tile size, tile count and the data-parallel run's cores.
KNOB_NAMES = ("depth", "tile", "tiles", "cores")


@dataclass(frozen=True)
class Knobs:
    """What the explorer and ``%%ptort`` let you change: channel depth, tile size, tile count, cores."""

    depth: int = 2
    tile: tuple[int, int] = (128, 128)
    tiles: int = 8
    cores: int = 4

    def __post_init__(self) -> None:
        # numpy integers (np.int64(2), a value out of np.arange) are accepted, as everywhere else, and stored as
        # plain ints so that the knobs print, compare and hash like the ints a user typed.
        for name in ("depth", "tiles", "cores"):
            v = getattr(self, name)
            if not _whole(v):
                raise PtortValueError(f"knob {name} must be an int >= 1, got {v!r}.",
                                      hint=f"Use e.g. {name}=2.")
            object.__setattr__(self, name, int(v))
        if self.depth > MAX_DEPTH:  # Channel(depth=...) would refuse it, but only once a builder had run
            raise PtortValueError(f"knob depth must be at most 2**53 = {MAX_DEPTH:,}, got {int_text(self.depth)}.",
                                  hint="depth is the buffer slots of each channel: a few is typical; use e.g. "
                                       "depth=4.")
        if (not isinstance(self.tile, (tuple, list)) or len(self.tile) != 2
                or not all(_whole(v) for v in self.tile)):
            raise PtortValueError(f"knob tile must be (rows, cols) of ints >= 1, got {self.tile!r}.",
                                  hint="Use tile=(64, 128) (or --tile 64x128 in %%ptort).")
        object.__setattr__(self, "tile", (int(self.tile[0]), int(self.tile[1])))

    def replace(self, **changes: Any) -> Knobs:
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise PtortValueError(f"unknown knob(s) {sorted(unknown)}.", hint="Knobs are depth, tile, tiles, cores.")
        return replace(self, **changes)

    def text(self, names: Sequence[str] = KNOB_NAMES) -> str:
        """``depth=2 tile=128x128 tiles=8 cores=4``, for the knobs ``names`` only."""
        shown = {"depth": f"depth={self.depth}", "tile": f"tile={self.tile[0]}x{self.tile[1]}",
                 "tiles": f"tiles={self.tiles}", "cores": f"cores={self.cores}"}
        return " ".join(shown[n] for n in KNOB_NAMES if n in names)

    def __str__(self) -> str:
        return self.text()


def task_limit(mode: str) -> tuple[int, str]:
    """The most tiles a study in ``mode`` may have, and why: a tile is at least one task, the data-parallel run
    lists every task before it runs (at most MAX_TASKS), and a pipeline runs at most MAX_PIPELINE_TASKS."""
    if mode == "pipeline":
        return steps_module.MAX_PIPELINE_TASKS, "tasks a pipeline run may have"
    return steps_module.MAX_TASKS, "tasks the data-parallel run may list"


#: What a notebook cell may hold for its study, display included, at most (less when
#: ``ptort_lab.sim.engine.MAX_RUN_BYTES``, the limit every run is held to, is lower): a cell runs in the Jupyter
#: kernel, where running out of memory takes every other cell's results with it.
MAX_CELL_BYTES = 2 * 2**30
#: Bytes a %%ptort cell holds per tile at least: measured 6.4 KB for the smallest study (a 2-stage pipeline of
#: pinned-cycle tasks, its data-parallel twin, their traces and the drawn result; 200,000 tiles held 1.3 GB), rounded
#: up. At MAX_CELL_BYTES that is ~260,000 tiles, a cell of about half a minute.
CELL_BYTES_PER_TILE = 8 * 1024


def cell_tile_limit(mode: str) -> tuple[int, str]:
    """The most tiles a %%ptort cell in ``mode`` may study, and why: ``task_limit``'s, or fewer when the cell's
    memory (MAX_CELL_BYTES, or MAX_RUN_BYTES when lower, at CELL_BYTES_PER_TILE) holds fewer."""
    from .sim import engine  # (read when asked: a test or a user may change MAX_RUN_BYTES)
    limit, what = task_limit(mode)
    budget = min(MAX_CELL_BYTES, engine.MAX_RUN_BYTES)
    by_memory = max(1, budget // CELL_BYTES_PER_TILE)
    if by_memory >= limit:
        return limit, what
    return by_memory, (f"tiles a notebook cell may study (at ~{CELL_BYTES_PER_TILE // 1024} KB a tile, its runs and "
                       f"display fill the {_gib(budget)} a cell may hold)")


def _gib(nbytes: int) -> str:
    return f"{nbytes / 2**30:g} GiB"


def check_cell_tiles(knobs: Knobs, mode: str, source: str = "TILES") -> None:
    """``check_knob_limits``, then a %%ptort cell's own limit (``cell_tile_limit``)."""
    check_knob_limits(knobs, mode, source)
    limit, what = cell_tile_limit(mode)
    if knobs.tiles > limit:
        raise KnobError(f"{source} is {knobs.tiles:,}: more than the {limit:,} {what}, so it is refused before "
                        "building anything.",
                        hint=f"Use at most {limit:,} tiles (a few thousand already show a pipeline's steady state), "
                             "or larger tiles.")


def check_knob_limits(knobs: Knobs, mode: str, source: str = "knob tiles") -> None:
    """Refuse knobs whose runs are known from their sizes alone to pass the simulator's task limits, before
    anything is built (a run of 10**8 tiles would take minutes and gigabytes before the limit stopped it)."""
    limit, what = task_limit(mode)
    if knobs.tiles > limit:
        raise KnobError(
            f"{source} is {knobs.tiles:,}: with at least one task per tile that is more than the {limit:,} {what}, "
            "so it is refused before building anything (it would run for minutes and exhaust memory).",
            hint=f"Use at most {limit:,} tiles (a few thousand already show a pipeline's steady state), or larger "
                 "tiles.")


@dataclass(frozen=True)
class KnobWords:
    """How a front end writes knob settings in its messages, as templates of ``{name}`` (depth), ``{NAME}`` (DEPTH)
    and ``{value}``: ``given``, how a value was set; ``setting``, how to set one; ``variable``, what a builder builds
    with. The default is Python's (``depth=4``, ``Knobs(depth=4)``, ``depth``). ``locate`` says where a channel was
    made when its own record cannot (a %%ptort cell searches its text)."""

    given: str = "{name}={value}"
    setting: str = "Knobs({name}={value})"
    variable: str = "{name}"
    locate: Callable[[Channel[Any]], SourceLocation | None] | None = None

    def __post_init__(self) -> None:
        for field_name in ("given", "setting", "variable"):
            template = getattr(self, field_name)
            try:
                self.say(template, "depth", 2)
            except (AttributeError, IndexError, KeyError, TypeError, ValueError) as e:
                raise PtortValueError(
                    f"KnobWords({field_name}={template!r}) is not a template of {{name}}, {{NAME}} and {{value}} "
                    f"({type(e).__name__}: {e}).", hint='Write e.g. KnobWords(given="--{name} {value}").') from None
        if self.locate is not None and not callable(self.locate):
            raise PtortTypeError(f"KnobWords(locate=...) takes a function of a channel, got {self.locate!r}.",
                                 hint="Pass e.g. locate=lambda channel: channel.loc, or leave it out.")

    def say(self, template: str, name: str, value: Any = "") -> str:
        """One of the templates filled in for knob ``name`` (and ``value``)."""
        return template.format(name=name, NAME=name.upper(), value=value)


#: How messages name the knobs set from Python (``Study.run(depth=4)``): ``depth=4``, ``Knobs(depth=4)``.
PYTHON_WORDS = KnobWords()


def check_cores(cores: int, machine: Machine, words: KnobWords = PYTHON_WORDS) -> None:
    """The rule for the cores knob: the data-parallel twin runs on ``cores`` AI cores, so ``machine`` needs them."""
    have = machine.num_cores
    if cores > have:
        raise KnobError(
            f"{words.say(words.given, 'cores', cores)} is more than machine '{machine.name}' has ({have} AI cores) "
            "for the data-parallel run.",
            hint=f"Use {have} cores or fewer ({words.say(words.setting, 'cores', have)}); mode 'pipeline' runs no "
                 "data-parallel twin, so it does not use cores.")


def check_depth(channels: Sequence[Channel[Any]], depth: int, words: KnobWords = PYTHON_WORDS) -> None:
    """The rule for a depth the user set: it must reach each of a pipeline's ``channels`` (built with it)."""
    wrong = [c for c in channels if c.depth != depth]
    if not wrong:
        return
    places = [_made_at(c, words) for c in wrong]
    listed = ", ".join(f"'{c.name}' has depth {c.depth}" + (f" ({p})" if p is not None and i else "")
                       for i, (c, p) in enumerate(zip(wrong, places)))
    var = words.say(words.variable, "depth")
    raise KnobError(
        f"{words.say(words.given, 'depth', depth)} did not reach the pipeline: channel {listed}.",
        hint=f"Build every channel with depth={var}, e.g. Channel[Tensor](name=\"q\", depth={var}): {var} holds the "
             "depth you set.", where=places[0], locate=places[0] is None)


_TILE = re.compile(r"^\s*(\d+)\s*(?:[xX×*,]\s*(\d+))?\s*$")


def tile_from_text(text: str) -> tuple[int, int] | None:
    """``"64x128"`` -> (64, 128); ``"128"`` -> (128, 128); None when it is neither (or a size is 0)."""
    m = _TILE.match(text)
    if not m:
        return None
    rows = int(m.group(1))
    cols = int(m.group(2)) if m.group(2) is not None else rows
    return (rows, cols) if rows >= 1 and cols >= 1 else None


def normal_knob(name: str, value: Any) -> Any:
    """One knob value normalised (plain ints; a tile as (rows, cols), a single size meaning a square), or None
    when it is not a valid value for knob ``name``."""
    if name == "tile":
        if _whole(value):
            return (int(value), int(value))
        if isinstance(value, (tuple, list)) and len(value) == 2 and all(_whole(v) for v in value):
            return (int(value[0]), int(value[1]))
        return None
    return int(value) if _whole(value) else None


def _made_at(channel: Channel[Any], words: KnobWords) -> SourceLocation | None:
    return words.locate(channel) if words.locate is not None else channel.loc


def _whole(v: Any) -> bool:
    """An int >= 1: Python's or numpy's integers, never a bool or a float such as 2.0."""
    return isinstance(v, numbers.Integral) and not isinstance(v, bool) and int(v) >= 1


def _knobs_example(value: Any) -> str:
    """``Knobs(...)`` written from what the user passed instead, when it reads as knob settings."""
    names = {f.name for f in fields(Knobs)}
    if isinstance(value, dict) and value and set(map(str, value)) <= names:
        return "Knobs(" + ", ".join(f"{k}={v!r}" for k, v in value.items()) + ")"
    if isinstance(value, str):
        parts = [p.strip() for p in value.replace(";", ",").split(",") if p.strip()]
        if parts and all("=" in p and p.split("=", 1)[0].strip() in names for p in parts):
            return "Knobs(" + ", ".join(p.replace(" ", "") for p in parts) + ")"
    return "Knobs(depth=2)"


def check_knobs(knobs: Any, api: str) -> Knobs | None:
    """``knobs`` if it is a Knobs (or None); else a PtortTypeError naming ``api`` (e.g. "sweep") and the fix."""
    if knobs is None or isinstance(knobs, Knobs):
        return knobs
    example = _knobs_example(knobs)
    raise PtortTypeError(f"{api}(knobs=...) needs a Knobs, got {type(knobs).__name__} {knobs!r}.",
                         hint=f"Write {api}(..., knobs={example}) (from ptort_lab.explore import Knobs).",
                         locate=True)


def refuse_knob_keywords(options: dict[str, Any], api: str, known: Sequence[str]) -> None:
    """Refuse the keyword arguments of ``api`` that go to compile() (``options``; ``known``: its option names) when
    they are knobs (``Explorer(build, depth=2)``) or a typo of one (``sweep(build, dpeth=[1, 2])``), saying how to
    set the knob, before compile() calls them unknown options. A sweep takes the knobs themselves as keyword
    arguments, so only a typo of one reaches here from it."""
    swept = api == "sweep"
    exact = [name for name in options if name in KNOB_NAMES]
    if exact:
        given = ", ".join(f"{name}={_short_repr(options[name])}" for name in exact)
        are, options_ = ("is a knob", "a compile() option") if len(exact) == 1 else ("are knobs", "compile() options")
        settings = ", ".join(_setting(name, options[name], swept) for name in exact)
        several = [name for name in exact if isinstance(options[name], (list, range))]
        also = (f"; to run several values, sweep(build, {', '.join(_setting(n, options[n], True) for n in several)})"
                if several else "")
        raise PtortValueError(f"{api}(...) got {given}, but {' and '.join(exact)} {are}, not {options_} (the keyword "
                              f"arguments {api}() does not take itself go to compile()).",
                              hint=f"{' and '.join(exact)} {are}: {_call(api, settings, swept)}{also}.")
    import difflib  # an error path only: not loaded by `import ptort_lab`
    for name, value in options.items():
        if name in known:
            continue
        close = difflib.get_close_matches(name, [*KNOB_NAMES, *known], n=1)
        if close and close[0] in KNOB_NAMES:
            raise PtortValueError(f"{api}(...) got an unknown keyword argument {name}={_short_repr(value)} (the "
                                  f"keyword arguments {api}() does not take itself go to compile(), which has no "
                                  "such option).",
                                  hint=f"Did you mean the knob {close[0]}? "
                                       f"{_call(api, _setting(close[0], value, swept), swept)}.")


def _setting(name: str, value: Any, swept: bool) -> str:
    """``depth=2`` as a Knobs(...) or sweep(...) argument, from what was given (a valid example when that is not)."""
    if swept:  # sweep() takes a list of values per knob
        several = isinstance(value, (list, range)) or (isinstance(value, tuple) and name != "tile")
        values = value if several else [value]  # (a tuple is one tile)
        return f"{name}={_short_repr(list(values))}"
    checked = normal_knob(name, value)
    return f"{name}={checked if checked is not None else getattr(Knobs(), name)!r}"


def _call(api: str, settings: str, swept: bool) -> str:
    if swept:
        return f"sweep(build, {settings})"
    return f"{api}(build, Knobs({settings})) (from ptort_lab.explore import Knobs)"


def _short_repr(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


__all__ = ["Knobs", "KnobWords", "PYTHON_WORDS", "KNOB_NAMES", "MAX_DEPTH", "task_limit", "check_knob_limits",
           "MAX_CELL_BYTES", "CELL_BYTES_PER_TILE", "cell_tile_limit", "check_cell_tiles", "check_knobs",
           "check_cores", "check_depth", "tile_from_text", "normal_knob", "refuse_knob_keywords"]
