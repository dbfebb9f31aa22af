"""The schedule combinators of a workload (``dispatch``, ``streams``, ``timing``, ``task_graph``, ``place``, ...):
each checks its argument and returns a copy of the workload with its Schedule changed."""
from __future__ import annotations

import copy
import numbers
import warnings
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, Callable, Sequence, TypeVar

from ..errors import PtortTypeError, PtortValueError
from .schedule import DispatchPolicy, Schedule, TaskWindow, TimingPolicy
from .task_graph import task_graph_config
from .user_code import check_arity

S = TypeVar("S", bound="ScheduleCombinators")


class ScheduleCombinators:
    """Mixed into Workload: the combinators, over its ``_schedule`` and ``is_pipeline``."""

    __slots__ = ()
    _schedule: Schedule

    @property
    def is_pipeline(self) -> bool:  # pragma: no cover - Workload defines it
        raise NotImplementedError

    def _with(self: S, **changes: Any) -> S:
        w = copy.copy(self)
        object.__setattr__(w, "_schedule", replace(self._schedule, **changes))
        return w

    def _data_parallel_only(self, api: str) -> None:
        """Schedule combinators that order enumerated tasks mean nothing to a pipeline: say so at the call."""
        if self.is_pipeline:
            raise PtortValueError(
                f"{api} applies to data-parallel workloads; a CSP pipeline runs each process's body in order on its "
                "own core.", hint="Place processes with .place('shared') or .place({process: core}); compare with "
                                  "a data-parallel run through ptort_lab.explore.data_parallel_twin(pipeline, cores).")

    def dispatch(self: S, policy: Any) -> S:
        """Which core runs each task: a DispatchPolicy (round_robin, affinity, hash, work_steal, dispatch_by).

        Returns a new workload; ``w`` keeps its own policy. On a workload that has one already, the new policy replaces
        it (``w.dispatch(round_robin(4))`` is how a study re-runs ``w`` on other cores), as a second ``.named()``
        does a name."""
        self._data_parallel_only("dispatch()")
        if not isinstance(policy, DispatchPolicy):
            raise PtortTypeError(f"dispatch() takes a DispatchPolicy, got {policy!r}.",
                                 hint="Use DispatchPolicy.round_robin(4), .affinity(fn), .hash(fn) or .work_steal().")
        if policy.key_fn is not None:  # (checked here: schedule, a layer below user_code, cannot)
            check_arity(policy.key_fn, 1, f"DispatchPolicy.{policy.kind} calls its key function with the task (one "
                        "argument)", f'DispatchPolicy.{policy.kind}(lambda t: t.get("b"), 4)')
        return self._with(dispatch=policy)

    def streams(self: S, n: int) -> S:
        """Run the tasks on ``n`` streams (cores), in turn unless ``stream_by`` says which."""
        self._data_parallel_only("streams()")
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise PtortValueError(f"streams(n) needs an int >= 1, got {n!r}.", hint="Use streams(2).")
        return self._with(stream_count=int(n))  # a numpy integer (a sweep grid's value) is the int it holds

    def stream_by(self: S, fn: Callable[..., Any]) -> S:
        """With ``streams(n)`` and no dispatch policy: task t runs on stream (core) ``fn(t) % n``."""
        self._data_parallel_only("stream_by()")
        if not callable(fn):
            raise PtortTypeError(f"stream_by(fn) needs a key function, got {fn!r}.",
                                 hint='Write .streams(4).stream_by(lambda t: t.get("b")).')
        check_arity(fn, 1, "stream_by(fn) calls fn with the task (one argument)",
                    '.stream_by(lambda t: t.get("b"))')
        return self._with(stream_by=fn)

    def timing(self: S, policy: Any) -> S:
        """How a data-parallel run issues its tasks: a TimingPolicy (see ``ptort_lab.sim.issue``)."""
        if not isinstance(policy, TimingPolicy):
            raise PtortTypeError(f"timing(policy) needs a TimingPolicy, got {policy!r}.",
                                 hint="Write .timing(TimingPolicy.batched(8)) or .timing(TimingPolicy.immediate).")
        if policy.kind != "immediate":
            self._data_parallel_only(f"timing(TimingPolicy.{policy.kind})")
        return self._with(timing=policy)

    def spatial_map(self: S, grid: Any) -> S:
        """Record a spatial grid (the reference's API; as in the reference, it does not change the run)."""
        return self._with(spatial_grid=grid)

    def with_params(self: S, *params: Any) -> S:
        """Record the workload's named axis parameters, ``w.with_params(("batch", Dense[4]()), ("heads", heads))``,
        in ``w.schedule.params`` (the reference's metadata for its IR bridge; as there, the run does not read them)."""
        for p in params:
            if not (isinstance(p, tuple) and len(p) == 2 and isinstance(p[0], str)):
                raise PtortTypeError(f"with_params() takes (name, axis) pairs, got {_short(p)}.",
                                     hint='Write .with_params(("batch", Dense[4]()), ("heads", Dense[8]())).')
        return self._with(params=tuple(params))

    def layout(self: S, tensor: Any, *dims: Any) -> S:
        """Deprecated, as in the reference (a DeprecationWarning, and the run is unchanged): a layout belongs to the
        tensor's type, ``Tensor(..., layout=TensorLayout((TensorShard(0), TensorReplicate())))``. Returns a copy."""
        warnings.warn("Workload.layout() is deprecated (as in the reference) and does not change the run: give the "
                      "tensor its layout instead, Tensor(..., layout=TensorLayout((TensorShard(0), "
                      "TensorReplicate()))).", DeprecationWarning, stacklevel=2)
        return self._with()

    def place(self: S, placement: Any) -> S:
        """Put processes on cores: ``{"loader": 0, "computer": 0}``, ``{"update": (0, 1)}`` (core 0, AIV1) or
        ``"shared"`` (all on core 0). A key is a process's name or the Process itself; checked here, at the user's
        line, rather than when the run starts. A process that no placement names runs on the lowest core that no
        other process is on yet (in connect() order).

        Returns a new workload. On one placed already, the placements merge, so
        ``.place({"loader": 0}).place({"computer": 1})`` places both; an entry replaces the earlier one of the same
        process only (``.place({"loader": 2})`` moves the loader and keeps the rest, as a study re-placing one
        process does). ``"shared"`` places every process on core 0: it replaces any earlier placement, and a dict
        after it moves only the processes it names. ``.place(None)`` drops every placement."""
        if not self.is_pipeline:
            raise PtortValueError("place() puts the processes of a CSP pipeline on cores; this is a data-parallel "
                                  "workload, which has none.",
                                  hint="Send its tasks to cores with .dispatch(DispatchPolicy.round_robin(4)) or "
                                       "another DispatchPolicy.")
        processes = getattr(self, "processes", ())
        added = check_placement(placement, processes, "place()")
        merged = _merged_placement(self._schedule.placement, added, processes)
        # (checked again as a whole: the run and compile(placement=...) read the merged placement as if given at once)
        return self._with(placement=check_placement(merged, processes, "place()"))

    def vector_unit(self: S, unit: Any) -> S:
        """Which vector unit (AIV) of its core runs each data-parallel task's vector work: an int, or a function of
        the task returning one (``.vector_unit(lambda t: t.get("h") % 2)``). Without it a core hands its vector
        tasks to its AIVs in turn. Checked against the machine's AIVs per core when the run starts."""
        if self.is_pipeline:
            raise PtortValueError(
                "vector_unit() picks the AIV of each task of a data-parallel workload; a CSP pipeline's processes "
                "are placed instead.",
                hint='Put a vector process on AIV1 of its core with .place({"softmax": (0, 1)}).')
        if isinstance(unit, bool) or not (callable(unit) or isinstance(unit, numbers.Integral)):
            raise PtortTypeError(f"vector_unit() takes an AIV index (int) or a function of the task returning one, got "
                                 f"{type(unit).__name__} {unit!r}.",
                                 hint='Write .vector_unit(1) or .vector_unit(lambda t: t.get("h") % 2).')
        if callable(unit):
            check_arity(unit, 1, "vector_unit(fn) calls fn with the task (one argument)",
                        '.vector_unit(lambda t: t.get("h") % 2)')
            return self._with(vector_unit=unit)
        if unit < 0:
            raise PtortValueError(f"vector_unit({unit}): an AIV index is >= 0.",
                                  hint="AIVs of a core are numbered 0, 1, ...: write .vector_unit(0) or (1).")
        return self._with(vector_unit=int(unit))  # a numpy integer is the int it holds (the machine check wants int)

    def task_graph(self: S, deps: Any = None, window: Any = None, pools: Any = None, ready: Any = None,
                   start: Any = None, trace: Any = None, **unknown: Any) -> S:
        """Run as a task graph (clears streams, as in the reference). What each argument does:
        ``ptort_lab.dsl.task_graph``; ``window=TaskWindow(k)`` caps the tasks in flight, by default at 8192 (the
        reference's ``TaskWindow(8192)``)."""
        self._data_parallel_only("task_graph()")
        if unknown:
            raise PtortValueError(f"task_graph() has no option(s) {sorted(unknown)}.",
                                  hint="Its options are deps, window, pools, ready, start and trace.")
        if window is not None and not isinstance(window, TaskWindow):
            raise PtortTypeError(f"task_graph(window=...) takes a TaskWindow, got {window!r}.",
                                 hint="Use TaskWindow(8, 'tasks').")
        graph = task_graph_config(window=window, deps=deps, pools=pools, ready=ready, start=start, trace=trace)
        # graph.window, not window: the reference's default cap (8192) applies in the run as in its own
        return self._with(window=graph.window, deps=deps, graph=graph, stream_count=None, stream_by=None)


_PLACE_HINT = 'Write .place("shared") or .place({"loader": 0, "computer": (0, 1)}): a process (or its name) -> a ' \
              'core, or (core, aiv) for a vector process on that AIV of the core.'


def check_placement(placement: Any, processes: Sequence[Any], api: str) -> Any:
    """``placement`` as the run reads it: None, ``"shared"``, or a dict process name -> core or (core, aiv) of
    Python ints. A Process key becomes its name; anything else (a list, an array, an unknown process, a negative
    core) is refused now, naming ``api`` at the user's line."""
    if placement is None:
        return None
    if isinstance(placement, str):
        if placement != "shared":
            raise PtortValueError(f"{api}: the only placement string is 'shared' (every process on one core), got "
                                  f"{placement!r}.", hint=_PLACE_HINT)
        return placement
    if not isinstance(placement, Mapping):
        raise PtortTypeError(f"{api} takes 'shared' or a dict process -> core, got {type(placement).__name__} "
                             f"{_short(placement)}.", hint=_PLACE_HINT)
    names = [p.name for p in processes]
    out: dict[str, Any] = {}
    for key, value in placement.items():
        name = _process_name(key, processes, api)
        if name in out:
            raise PtortValueError(f"{api} places process '{name}' twice (as a Process and by its name?).",
                                  hint="Give each process one place.")
        out[name] = _place_value(name, value, api)
    unknown = [n for n in out if processes and n not in names]
    if unknown:
        raise PtortValueError(f"{api} names unknown process(es) {', '.join(map(repr, unknown))}; this pipeline's "
                              f"processes are {', '.join(map(repr, names))}.", hint=_PLACE_HINT)
    return out


def _merged_placement(placed: Any, added: Any, processes: Sequence[Any]) -> Any:
    """The placement after ``placed`` (the workload's so far) and then ``added`` (a checked one): a dict replaces
    the entries of the processes it names and keeps the others; None, ``"shared"`` (it names every process) and a
    first placement stand as they are. ``"shared"`` followed by a dict is every process on core 0, then the dict."""
    if added is None or isinstance(added, str) or placed is None:
        return added
    if isinstance(placed, str) and placed == "shared":
        placed = {p.name: 0 for p in processes}
    elif not isinstance(placed, Mapping):  # (only a private _with() sets anything else: the new placement stands)
        return added
    return {**placed, **added}


def _short(value: Any) -> str:
    text = repr(value).replace("\n", " ")
    return text if len(text) <= 80 else text[:77] + "..."


def _process_name(key: Any, processes: Sequence[Any], api: str) -> str:
    """A placement key's process name: a string as it is, a Process (one of this pipeline's) by its name."""
    if isinstance(key, str):
        return key
    if any(key is p for p in processes):
        return str(key.name)
    kinds = tuple({type(p) for p in processes})  # Process (csp, a layer above, is not imported here)
    if isinstance(key, kinds):
        raise PtortValueError(f"{api} places process {getattr(key, 'name', key)!r}, which is not one of this "
                              f"pipeline's processes ({', '.join(repr(p.name) for p in processes)}).",
                              hint="Place the Process objects passed to connect(...), or name them by string.")
    raise PtortTypeError(f"{api}: a placement key is a process or its name, got {type(key).__name__} "
                         f"{_short(key)}.", hint=_PLACE_HINT)


def _place_value(name: str, value: Any, api: str) -> Any:
    """A core (int >= 0) or (core, aiv) of ints >= 0, as Python ints (numpy integers are the ints they hold)."""
    parts: tuple[Any, ...] = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    ok = len(parts) == (2 if isinstance(value, (tuple, list)) else 1) and \
        all(isinstance(v, numbers.Integral) and not isinstance(v, bool) and int(v) >= 0 for v in parts)
    if not ok:
        raise PtortValueError(f"placement puts process '{name}' on {_short(value)}; a place is a core (int) or "
                              f"(core, aiv) with two ints, each >= 0 (given to {api}).", hint=_PLACE_HINT)
    return int(parts[0]) if len(parts) == 1 else (int(parts[0]), int(parts[1]))


__all__ = ["ScheduleCombinators", "check_placement"]
