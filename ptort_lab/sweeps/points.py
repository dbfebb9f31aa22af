"""A sweep's points: the knob values checked, their count refused past the limit before anything is built, and
every combination listed in order.
"""
from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping, MappingView
from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..dsl.csp import MAX_DEPTH, int_text
from ..errors import PtortTypeError, PtortValueError, repr_text, value_text
from ..explore import (
    Knobs,
    Study,
    check_compile_options,
    check_knob_limits,
    check_knobs,
    check_mode,
)
from ..knobs import KnobWords, normal_knob, tile_from_text

#: The knobs a sweep varies (its keyword arguments), in the order of a row's columns.
KNOBS = ("depth", "tile", "tiles", "cores")
DEFAULT_DEPTHS = range(1, 9)  # what sweep() varies when told nothing about depth
#: The most combinations one sweep runs in this process (serially, or on the process pool it starts by itself).
#: Every combination rebuilds the work and simulates it (twice with mode="both"): a few milliseconds for a tiny
#: pipeline, tens for a realistic one, so 10,000 runs is already minutes of waiting. Beyond it sweep() refuses up
#: front, before building anything (a range(1, 10**7) would otherwise look like a hang).
MAX_RUNS = 10_000
#: With executor= given (a process pool, a Dask or Ray cluster's executor) the work is spread, so the limit is what
#: the notebook itself holds: one row per point in memory and two small files per point in the sweep cache (about
#: 2 KB), and a table or Pareto plot that can still be drawn: 100,000 points is ~200 MB of cache and a few seconds
#: to draw. At 0.1-1 s per point that is 3-30 core-hours: a cluster's afternoon.
MAX_RUNS_EXECUTOR = 100_000
_EXAMPLES = {"depth": "[1, 2, 4, 8]", "tile": '[64, (64, 128), "32x64"]', "tiles": "[4, 8, 16]",
             "cores": "[1, 2, 4]"}


def example(name: str) -> str:
    return f"sweep(build, {name}={_EXAMPLES.get(name, '[...]')})"


def knob_values(name: str, values: Any, limit: int) -> tuple[list[Any], int | None]:
    """The checked values of one swept knob (at most ``limit`` + 1 of them are read) and how many there are in
    all (None when there are more than were read and the iterable cannot tell)."""
    if isinstance(values, AbstractSet) and not isinstance(values, MappingView):
        # A set's order depends on the process's hash seed: the rows would come in another order in every run.
        try:
            ordered = sorted(values)
        except TypeError:  # values that do not compare (ints and tuples): still a stable example
            ordered = sorted(values, key=repr_text)
        listed = f"{name}={repr_text(ordered)}" if len(ordered) <= 6 else f"{name}=[...]"
        raise PtortTypeError(f"sweep({name}=...) got a {type(values).__name__}, whose order changes from one Python "
                             "process to the next, so the order of the rows would too.",
                             hint=f"Pass a list in the order you want the rows, e.g. {listed}, or "
                                  f"{name}=sorted(...).")
    if isinstance(values, Mapping):  # (iterating a dict sweeps its keys: {1: 2} would run depth 1 only)
        raise PtortTypeError(f"sweep({name}=...) got a {type(values).__name__}; a sweep runs a list of values, and a "
                             f"mapping's would be its keys ({_short_list(list(values))}).",
                             hint=f"Pass a list of the values to run, e.g. {example(name)}.")
    if name == "tile" and _is_pair(values):
        # Everywhere else (Knobs(tile=...), Study.run(tile=...)) a pair of sizes is one (rows, cols) tile, while a
        # sweep reads a tuple as its values: which was meant cannot be told, and the other guess runs other tiles.
        rows, cols = values
        raise PtortValueError(f"sweep(tile={values!r}) is ambiguous: one {rows}x{cols} tile, or the two square tiles "
                              f"{rows}x{rows} and {cols}x{cols}?",
                              hint=f"Pass a list: tile=[({rows}, {cols})] for the one tile, or tile=[{rows}, {cols}] "
                                   "for the two square tiles.")
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        values = [values]
    try:
        total: int | None = len(values)
    except TypeError:
        total = None
    raw = list(itertools.islice(values, limit + 1))  # never the whole of a huge range or an endless generator
    if total is None and len(raw) <= limit:
        total = len(raw)
    out = []
    for v in raw:
        checked = None
        if name == "tile" and isinstance(v, str):
            checked = tile_from_text(v)  # "64x128", as on the %%ptort line
            if checked is None:
                raise PtortValueError(f"sweep(tile=...) value {v!r} is not ROWSxCOLS (such as '64x128').",
                                      hint=f"Give sizes, (rows, cols) pairs or 'RxC' strings: {example(name)}.")
        else:
            checked = normal_knob(name, v)
        if checked is None:
            what = "a tile size: an int >= 1 or (rows, cols) of ints >= 1" if name == "tile" else "an int >= 1"
            raise PtortValueError(f"sweep({name}=...) value {repr_text(v)} is not {what}.",
                                  hint=f"Pass {name} values like these: {example(name)}.")
        if name == "depth" and isinstance(checked, int) and checked > MAX_DEPTH:
            raise PtortValueError(f"sweep(depth=...) value {int_text(checked)} is more than 2**53 = {MAX_DEPTH:,}, "
                                  "the most buffer slots a channel may have.",
                                  hint=f"A few slots is typical: {example(name)}.")
        out.append(checked)
    if not out:
        raise PtortValueError(f"sweep() got no values for {name}.", hint=f"Pass e.g. {example(name)}.")
    _refuse_repeats(name, raw, out)
    return out, total


def _refuse_repeats(name: str, raw: list[Any], checked: list[Any]) -> None:
    """A value given twice (64 and (64, 64) are one tile) would run every row twice: refused, naming both."""
    first: dict[Any, int] = {}
    for i, v in enumerate(checked):
        j = first.setdefault(v, i)
        if j == i:
            continue
        same = (f"{repr_text(raw[j])} and {repr_text(raw[i])} are the same value" if raw[j] != raw[i]
                else f"{repr_text(raw[i])} is given twice")
        raise PtortValueError(f"sweep({name}=...): {same} (values {j} and {i} of the list), so every row would "
                              "run twice.",
                              hint=f"Give each value once: {name}={_short_list(list(dict.fromkeys(checked)))}.")


def _short_list(values: list[Any]) -> str:
    text = repr_text(values, limit=10_000)
    return text if len(text) <= 60 else text[:57] + "...]"


def _is_pair(values: Any) -> bool:
    """A tuple of two ints (a (rows, cols) tile, or two tile sizes)."""
    return (isinstance(values, tuple) and len(values) == 2
            and all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in values))


def check_count(params: tuple[str, ...], sizes: list[int | None], with_executor: bool) -> None:
    """Refuse a sweep of more combinations than its limit (MAX_RUNS, or MAX_RUNS_EXECUTOR with an executor)
    before anything is built."""
    limit = MAX_RUNS_EXECUTOR if with_executor else MAX_RUNS
    known = [n for n in sizes if n is not None]
    count = 1
    for n in known:
        count *= n
    if len(known) == len(sizes) and count <= limit:
        return
    exact = len(known) == len(sizes)
    counts = ", ".join(f"{p}: {f'{n:,}' if n is not None else f'more than {limit:,}'} values"
                       for p, n in zip(params, sizes))
    runs = f"{count:,}" if exact else f"more than {limit:,}"
    if with_executor:
        raise PtortValueError(
            f"sweep() would run {runs} combinations ({counts}); with an executor it runs at most {limit:,}.",
            hint=f"Sweep fewer values, e.g. {example(params[0])}, or split the sweep into several smaller ones (each "
                 "keeps its rows in the sweep cache).")
    raise PtortValueError(
        f"sweep() would run {runs} combinations ({counts}); without executor= it runs at most {limit:,}.",
        hint=f"Sweep fewer values, e.g. {example(params[0])}, or split the sweep into several smaller ones, or pass "
             f"executor= (a concurrent.futures executor: a process pool, client.get_executor() of a Dask cluster, "
             f"or a Ray one) to run up to {MAX_RUNS_EXECUTOR:,}.")


@dataclass
class Plan:
    """A checked sweep: the study to copy, the swept knob names, and every combination (knob name -> value)."""

    study: Study
    params: tuple[str, ...]
    combos: list[dict[str, Any]]


def plan(study_or_builder: Any, given: dict[str, Any], knobs: Knobs | None, mode: str | None,
         compile_options: dict[str, Any], with_executor: bool) -> Plan:
    """Check the sweep's arguments and list its combinations, before anything is built."""
    check_knobs(knobs, "sweep")
    if mode is not None:  # refused here, before a point is built (each would fail the same way)
        check_mode(mode, "sweep")
    study_mode = mode or (study_or_builder.mode if isinstance(study_or_builder, Study) else "both")
    check_compile_options(compile_options, "sweep", study_mode)
    if not isinstance(study_or_builder, Study) and not callable(study_or_builder):
        raise PtortTypeError(f"sweep() needs a builder function or a Study, got {value_text(study_or_builder)}.",
                             hint="def build(depth, tile, tiles): ... return connect(...); then "
                                  "sweep(build, depth=[1, 2, 4]).")
    study = _study(study_or_builder, knobs, mode, compile_options)
    given = dict(given)
    if given["depth"] is DEFAULT_DEPTHS and not study.takes("depth") and any(given[k] is not None
                                                                            for k in KNOBS[1:]):
        given["depth"] = None  # the default depth sweep, for a builder without depth: only what was asked
    params = tuple(k for k in KNOBS if given[k] is not None)
    if not params:
        raise PtortValueError("sweep() got no knob to vary.", hint="Pass e.g. sweep(build, depth=range(1, 9)).")
    builder_takes_cores = study._takes_all or "cores" in study._takes
    if study.equal_cores and "cores" in params and not builder_takes_cores:  # the twin runs on the pipeline's cores
        raise PtortValueError("sweep(cores=...) varies the data-parallel twin's cores, but the Study has "
                              "equal_cores=True, which runs the twin on the pipeline's own cores, so every row "
                              "would be the same.",
                              hint="Leave cores out of the sweep, or sweep a Study without equal_cores=True.")
    for p in params:  # a knob the builder ignores would give identical rows
        study.refuse_untaken(p, f"sweep({p}=...)", "every row would be the same")
    limit = MAX_RUNS_EXECUTOR if with_executor else MAX_RUNS
    checked = [knob_values(p, given[p], limit) for p in params]
    check_count(params, [n for _, n in checked], with_executor)
    if "tiles" in params:  # refused from the sizes, before anything is built
        check_knob_limits(study.knobs.replace(tiles=max(checked[params.index("tiles")][0])), study.mode,
                          "the largest sweep(tiles=...) value")
    else:
        check_knob_limits(study.knobs, study.mode)
    combos = [dict(zip(params, combo)) for combo in itertools.product(*(values for values, _ in checked))]
    return Plan(study, params, combos)


# How a sweep's messages say to set a knob: in the sweep's own terms ("sweep(build, cores=[24])"), not Knobs(...)
SWEEP_WORDS = KnobWords(setting="sweep(build, {name}=[{value}])")


def _study(study_or_builder: Study | Callable[..., Any], knobs: Knobs | None, mode: str | None,
           compile_options: dict[str, Any]) -> Study:
    """The sweep's own Study: a copy of the one given (its knobs stay as they are), timing-only by default."""
    if isinstance(study_or_builder, Study):
        base = study_or_builder
        options = {"compute_values": False, **base.compile_options, **compile_options}
        return Study(base.build, knobs or base.knobs, mode or base.mode, words=base.words,
                     equal_cores=base.equal_cores, **options)
    options = {"compute_values": False, **compile_options}
    return Study(study_or_builder, knobs, mode or "both", words=SWEEP_WORDS, **options)


__all__ = ["KNOBS", "MAX_RUNS", "MAX_RUNS_EXECUTOR", "DEFAULT_DEPTHS", "Plan", "plan", "knob_values",
           "check_count", "example"]
