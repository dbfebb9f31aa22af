"""The max-plus fast path: a linear pinned-cost pipeline run without the general engine, to the same trace.

A pipeline qualifies (``plan``) when its processes form one chain ``s0 -> c0 -> s1 -> ... -> s{K-1}`` (each process
consumes at most one channel and produces at most one, every channel has one producer and one consumer, no events),
every body is one loop (the source) or one consume (the others) around a single task or a send of one, the cost
model is ``PinnedCosts`` itself (prices are plain delays), no values are computed and nothing observes the run.
Then the times are the max-plus recurrence of the slot semantics (``engine.py``):

    P_k(i) = max(F_k(i-1), F_{k-1}(i) + L_{k-1})      (the token of item i arrived)
    S_k(i) = max(P_k(i), F_{k+1}(i-D_k) + L_k)         (a slot of the output channel is free)
    F_k(i) = S_k(i) + t_k(i)

and what the engine records (spans, stalls, occupancy steps) follows from them. What the recurrence does not give
is the *order* of those records (task ids, the order of ``trace.spans`` and ``trace.stalls``): the engine runs each
process until it blocks, taking the next from a queue, and that order depends on token and slot counts only, never
on times. ``_Order`` replays exactly that scheduling on counts alone; its state (queue, where each process is in its
body, counts relative to the source) repeats after a few items, and the records of one period, shifted by the
period's items, repeat until the source nears its end, so the middle is extrapolated and only the head and the tail
are replayed.

Tasks: when every task is built the simple way (one loop variable as its only parameter, no resources, an int or
no ``cycles=``) nothing of the timing needs a Task object, so ``run.tasks`` is built when first read (running the
bodies again, process by process); otherwise the bodies are run first, process by process, and the tasks priced in
the engine's order. Anything unexpected (a command of another shape, an error in a body, a run past a run limit, a
0-cycle task that could trip the no-progress limit) leaves the run to the general engine, which reports it.
"""
from __future__ import annotations

from collections import deque
from itertools import repeat
from typing import Any, Callable

import numpy as np

from ..dsl import steps as steps_module
from ..dsl.bindings import resolve_select_source
from ..dsl.commands import CLOSED, PULL, SEND, SEND_PULL, TASK_PULL
from ..dsl.expr import LoopVar, NameTemplate
from ..dsl.tasks import Task
from ..dsl.tree import NodeKind, Workload
from . import limits
from .fifo import Fifo
from .trace import Span, Stall, column_values

_new = tuple.__new__
_LOOPS = (NodeKind.FOR_EACH, NodeKind.PARALLEL_FOR, NodeKind.SELECT)
# record codes of _Order (3 bits): a task, a backpressure / starved stall, a slot taken / freed
_T, _SB, _SS, _DT, _DF = 0, 1, 2, 3, 4
# how many process activations may pass before a repeating scheduling state is given up on (then replay it all)
MAX_PERIOD_SEARCH = 4096

#: How many runs took the max-plus path (tests read it to tell which path ran).
runs = 0


class _Stage:
    """One process of the chain: its DSL process, engine actor, leaf task node and channels."""

    def __init__(self, proc: Any, actor: Any, leaf: Workload, node: Workload) -> None:
        self.proc, self.actor, self.leaf, self.node = proc, actor, leaf, node
        self.name: str = proc.name
        self.core: int = actor.core
        self.fifo_in: Fifo | None = None
        self.fifo_out: Fifo | None = None


# -- eligibility ----------------------------------------------------------------------------------------------------
def plan(engine: Any, pipe: Workload, cost: Any, pricer: Any, eligible: bool) -> list[_Stage] | None:
    """The chain's stages in chain order when the run may take the max-plus path, else None."""
    from .cost_model import PinnedCosts
    if not eligible or type(cost) is not PinnedCosts or pricer is not cost or engine.time_ordered \
            or engine.window is not None or engine.wakeups:
        return None
    procs = list(pipe.fields["processes"])
    if len(procs) < 2 or len(procs) != len(engine.procs):
        return None
    by_channel: dict[int, tuple[Any, Any]] = {}
    stages: dict[str, _Stage] = {}
    for p, actor in zip(procs, engine.procs):
        stage = _stage(p, actor)
        if stage is None:
            return None
        stages[p.name] = stage
    for c in pipe.fields["channels"]:
        prods, cons = pipe.producers(c), pipe.consumers(c)
        if len(prods) != 1 or len(cons) != 1 or prods[0] is cons[0]:
            return None
        by_channel[id(c)] = (prods[0], cons[0])
        stages[prods[0].name].fifo_out = engine.fifos[c]
        stages[cons[0].name].fifo_in = engine.fifos[c]
    sources = [s for s in stages.values() if s.fifo_in is None]
    if len(sources) != 1 or sources[0].fifo_out is None:
        return None
    chain = [sources[0]]
    while chain[-1].fifo_out is not None and len(chain) <= len(procs):
        nxt = [s for s in stages.values() if s.fifo_in is chain[-1].fifo_out]
        chain.append(nxt[0])
    if len(chain) != len(procs) or not all(_matches(s) for s in chain):
        return None
    return chain


def _stage(p: Any, actor: Any) -> _Stage | None:
    """A process whose body is one loop (source) or one consume around a task or a send of one, else None."""
    node = p.workload
    if node is None or len(p.consumes) > 1 or len(p.produces) > 1:
        return None
    if node.kind in _LOOPS:
        if p.consumes:
            return None
    elif node.kind is not NodeKind.CONSUME or getattr(node.channel, "tile", None) is not None:
        return None
    body = node.body
    if body.kind is NodeKind.SEND and isinstance(body.value, Workload) and body.value.kind is NodeKind.TASK \
            and getattr(body.channel, "tile", None) is None:
        return _Stage(p, actor, body.value, node)
    if body.kind is NodeKind.TASK:
        return _Stage(p, actor, body, node)
    return None


def _matches(s: _Stage) -> bool:
    """The body sends to the channel the process produces (or to none, the last stage) and consumes its input."""
    body = s.node.body
    sends = body.channel if body.kind is NodeKind.SEND else None
    out = s.proc.produces[0] if s.proc.produces else None
    if sends is not out or (sends is None) != (s.fifo_out is None):
        return False
    return s.node.kind in _LOOPS or s.node.channel is (s.proc.consumes[0] if s.proc.consumes else None)


def _simple(s: _Stage, var: str) -> bool:
    """Whether the stage's tasks are ``Task(name, [var], {})`` with an int or no ``cycles=``: the spans then need
    no Task object (index = the token), and the token passed on is that same value."""
    leaf = s.leaf
    token = s.node.body.token if s.node.body.kind is NodeKind.SEND else None
    return (isinstance(leaf.resources, dict) and not leaf.resources and len(leaf.params) == 1
            and isinstance(leaf.params[0], LoopVar) and leaf.params[0].name == var and token is None
            and not isinstance(leaf.kernel if isinstance(leaf.kernel, str) else leaf.kernel.name, NameTemplate)
            and (leaf.cycles is None or leaf.cycles.__class__ is int))


def _var(s: _Stage) -> str | None:
    node = s.node
    if node.kind is NodeKind.CONSUME:
        return str(node.var.name)
    if len(node.vars) == 1 and len(node.axes) == 1:
        return str(node.vars[0].name)
    return None


# -- the run --------------------------------------------------------------------------------------------------------
def run(engine: Any, chain: list[_Stage], pricer: Any, trace: Any, run_obj: Any) -> tuple[int | None, Any]:
    """Fill ``trace`` (spans, stalls), the fifos' occupancy steps and the actors' clocks as the engine would, and
    return (the makespan, ``pricer``); (None, the pricer the engine must run with) when the run must take the
    general engine (nothing changed): ``pricer`` itself, or a ``Replay`` of the cycles priced here already."""
    global runs
    try:
        out = _compute(engine, chain, pricer)
    except _Priced as left:  # the engine prices its tasks with these: no cycles= function is called twice
        return None, Replay(pricer, left.cycles, left.error)
    except Exception:  # noqa: BLE001 - a body that fails here fails in the engine too, which says where and when
        return None, pricer  # (the error names the process and sim time)
    if out is None:
        return None, pricer
    spans, count, stalls, ends, stall_cycles, deltas, tasks, task_builder = out
    _append_columns(trace.spans, spans, Span)
    _append_columns(engine.stalls, stalls, Stall)
    for s, d in zip(chain, deltas):
        if s.fifo_out is not None:
            s.fifo_out.deltas_source = d
    for s, end, sc in zip(chain, ends, stall_cycles):
        a = s.actor
        a.t = a.last_end = end
        a.stall_cycles, a.done = sc, True
    if tasks is not None:
        run_obj.task_list.extend(tasks)
    else:
        run_obj.task_builder, run_obj.task_total = task_builder, count
    runs += 1
    return int(max(ends)), pricer


def _append_columns(records: Any, columns: list[Any], cls: Any) -> None:
    """Append records given column by column (trace.RecordColumns.add_columns; a run that keeps no trace takes them
    the same way: stats.SpanFeed, trace.Dropped) to a run's spans or stalls."""
    if hasattr(records, "add_columns"):
        records.add_columns(columns)
    else:
        records.extend(map(_new, repeat(cls), zip(*map(column_values, columns))))


class _NotLinear(Exception):
    """A body yielded something the max-plus path does not model: the general engine runs it."""


class _Priced(Exception):
    """The tasks were priced, in the engine's order, but the run takes the general engine: a task costs 0 cycles
    (the engine's no-progress limit may apply), or the cycles= function of task ``len(cycles)`` raised ``error``."""

    def __init__(self, cycles: list[int], error: Exception | None) -> None:
        super().__init__()
        self.cycles, self.error = cycles, error


class Replay:
    """The pricer of a run this path left to the engine after pricing its tasks (``_Priced``): the engine runs the
    same tasks in the same order (ids 0, 1, ..., as ``_Order`` replays it), so each takes the cycles priced for it
    and the task whose cycles= function raised raises that error again: a cycles= function (which may count its
    calls, or be expensive) is called once a task in the run."""

    def __init__(self, pricer: Any, cycles: list[int], error: Exception | None) -> None:
        self.pricer, self.cycles, self.error = pricer, cycles, error
        self.task_timing = pricer.task_timing  # (never asked: fixed_cycles always answers, as PinnedCosts's does)

    def fixed_cycles(self, task: Task) -> int | None:
        i = task.id
        if i < len(self.cycles):
            return self.cycles[i]
        if i == len(self.cycles) and self.error is not None:
            raise self.error
        return self.pricer.fixed_cycles(task)  # type: ignore[no-any-return]  # (PinnedCosts: an int)


def _compute(engine: Any, chain: list[_Stage], pricer: Any) -> Any:
    K = len(chain)
    vars_ = [_var(s) for s in chain]
    if vars_[0] is None:
        points: list[Any] | None = None
    else:
        points = list(resolve_select_source(chain[0].node.axes[0], {}))
    simple = points is not None and all(v is not None and _simple(s, v) for s, v in zip(chain, vars_))
    if points is not None and not _within_limits(engine, K, len(points)):
        return None  # (known before any body runs: the engine runs them, once)
    tasks_by_stage: list[list[Task]] | None = None
    if simple:
        assert points is not None
        n = len(points)
        cycles: list[int] = [int(s.leaf.cycles) if s.leaf.cycles is not None  # type: ignore[arg-type]
                             else pricer.default_cycles for s in chain]
        if min(cycles, default=1) <= 0:
            return None
    else:
        tasks_by_stage = _drain(chain)
        n = len(tasks_by_stage[0])
        if any(len(t) != n for t in tasks_by_stage):
            return None
    if not _within_limits(engine, K, n):
        return None
    order = _Order(K, n, [s.fifo_out.depth for s in chain[:-1]],  # type: ignore[union-attr]
                   [chain.index(_stage_of(chain, a)) for a in engine.procs]).events()
    code = order & 7
    rest = order >> 3
    ks = rest % K
    items = rest // K
    is_task = code == _T
    tk, ti = ks[is_task], items[is_task]
    flat = tk * n + ti if n else tk
    if simple:
        times = [[c] * n for c in cycles]
    else:  # price the tasks in the engine's order (a cycles= function sees them as it would)
        assert tasks_by_stage is not None
        all_tasks = [tasks_by_stage[k][i] for k, i in zip(tk.tolist(), ti.tolist())]
        for tid, t in enumerate(all_tasks):
            t.id, t.process = tid, chain[int(tk[tid])].name
        priced = _price(pricer, all_tasks)
        flat_times = np.empty(K * n, dtype=np.int64)
        flat_times[flat] = priced
        times = flat_times.reshape(K, n).tolist()
    lat = [s.fifo_out.latency_cycles for s in chain[:-1]]  # type: ignore[union-attr]
    depth = [s.fifo_out.depth for s in chain[:-1]]  # type: ignore[union-attr]
    P, S, F = _recurrence(times, depth, lat, simple)
    Pf, Sf, Ff = P.reshape(-1), S.reshape(-1), F.reshape(-1)
    names = [s.name for s in chain]
    cores = [s.core for s in chain]
    kernels = [s.leaf.kernel if isinstance(s.leaf.kernel, str) else s.leaf.kernel.name for s in chain]
    index: Any
    if simple:
        assert points is not None
        index = ti if points == list(range(n)) else _pick(points, ti)
    else:
        index = [t.params[0] if t.params else t.id for t in all_tasks]
    count = len(tk)
    # the spans column by column (trace.SpanColumns): Span(core, lane, name, index, start, end, bytes, process, id)
    spans = [np.asarray(cores, dtype=np.int64)[tk], (names, tk), (kernels, tk), index, Sf[flat], Ff[flat],
             np.zeros(count, dtype=np.int64), (names, tk), np.arange(count, dtype=np.int64)]
    stalls, stall_cycles = _stalls(code, ks, items, n, K, Pf, Sf, Ff, lat, chain)
    # each channel's occupancy steps now, as one int64 array (8 bytes a step; the arrays of every record and time
    # they are picked from would cost ~130 bytes a task while kept), listed when the samples are first read
    on = code >= _DT
    dc, dk, di = code[on], ks[on], items[on]
    deltas = [_deltas(dc[dk == ch], di[dk == ch], n, K, Sf, Ff, lat, ch).tolist for ch in range(K - 1)]
    ends = F[:, n - 1].tolist() if n else [0] * K
    if simple:
        # (the narrowest ints that hold them: kept until run.tasks is read)
        return spans, count, stalls, ends, stall_cycles, deltas, None, _lazy_tasks(
            chain, tk.astype(np.min_scalar_type(K)), ti.astype(np.min_scalar_type(n)))
    return spans, count, stalls, ends, stall_cycles, deltas, all_tasks, None


def _price(pricer: Any, tasks: list[Task]) -> list[int]:
    """Each task's cycles, in the engine's order; ``_Priced`` (with what was priced) when the run must take the
    engine after all: a 0-cycle task, or a cycles= function that raised."""
    priced: list[int] = []
    try:
        for t in tasks:
            priced.append(pricer.fixed_cycles(t))
    except Exception as e:  # noqa: BLE001 - raised again for that task by the engine's run (Replay)
        raise _Priced(priced, e) from None
    if priced and min(priced) <= 0:
        raise _Priced(priced, None)
    return priced


def _pick(values: list[Any], at: Any) -> list[Any]:
    """``[values[i] for i in at]`` (a numpy index array), in C."""
    table = np.empty(len(values), dtype=object)
    table[:] = values
    return table[at].tolist()  # type: ignore[no-any-return]


def _stage_of(chain: list[_Stage], actor: Any) -> _Stage:
    return next(s for s in chain if s.actor is actor)


def _within_limits(engine: Any, K: int, n: int) -> bool:
    """Whether the general engine would finish this run within its limits (else it runs, and reports them)."""
    from . import engine as engine_module
    steps = n + (K - 1) * (n + 1)
    max_steps = engine.max_steps if engine.max_steps is not None else engine_module.MAX_STEPS
    if not isinstance(max_steps, int) or steps >= max_steps:
        return False
    if K * n >= steps_module.MAX_PIPELINE_TASKS:
        return False
    held = K * n * (limits.BYTES_PER_TASK + limits.BYTES_PER_SPAN) + 2 * K * n * limits.BYTES_PER_STALL
    max_bytes = engine_module.MAX_RUN_BYTES
    return isinstance(max_bytes, int) and held <= max_bytes


def _recurrence(times: list[list[int]], depth: list[int], lat: list[int],
                periodic: bool) -> tuple[Any, Any, Any]:
    """P, S, F of every (stage, item) as (K, n) int64 arrays, item-major (the oracle's loop). ``periodic`` (every
    stage's cost the same for every item): once the last items' finish times, relative to the source's, repeat,
    every later item is the one a period before shifted by the period's cycles (the recurrence is shift-invariant),
    so the rest is filled in with numpy."""
    K, n = len(times), len(times[0]) if times else 0
    P: list[list[int]] = [[] for _ in range(K)]
    S: list[list[int]] = [[] for _ in range(K)]
    F: list[list[int]] = [[] for _ in range(K)]
    window = max(depth, default=0) + 1
    seen: dict[tuple[int, ...], int] | None = {} if periodic and window <= 64 else None
    head = n
    repeat = 0
    for i in range(n):
        if seen is not None and i >= window:
            base = F[0][i - 1]
            key = tuple(F[k][i - 1 - d] - base for k in range(K) for d in range(window))
            j = seen.get(key)
            if j is not None:
                head, repeat = i, j
                break
            seen[key] = i
            if i > 4096:
                seen = None
        for k in range(K):
            p = F[k][i - 1] if i else 0
            if k:
                a = F[k - 1][i] + lat[k - 1]
                if a > p:
                    p = a
            s = p
            if k + 1 < K and i >= depth[k]:
                b = F[k + 1][i - depth[k]] + lat[k]
                if b > s:
                    s = b
            P[k].append(p)
            S[k].append(s)
            F[k].append(s + times[k][i])
    arrays = tuple(np.empty((K, n), dtype=np.int64) for _ in range(3))
    for x, rows in zip(arrays, (P, S, F)):
        if head:
            x[:, :head] = rows
    if head < n:
        period = head - repeat
        step = F[0][head - 1] - F[0][repeat - 1]
        idx = np.arange(head, n, dtype=np.int64)
        q, r = np.divmod(idx - head, period)
        for x in arrays:
            x[:, head:] = x[:, repeat + r] + (q + 1) * step
    return arrays  # type: ignore[return-value]


def _stalls(code: Any, ks: Any, items: Any, n: int, K: int, Pf: Any, Sf: Any, Ff: Any, lat: list[int],
            chain: list[_Stage]) -> tuple[list[Any], list[int]]:
    """The stalls in the engine's order, column by column (trace.StallColumns): backpressure [P, S] and starved
    [F(i-1), P] where they last."""
    sel = (code == _SB) | (code == _SS)
    c, k, i = code[sel], ks[sel], items[sel]
    f = k * n + i
    prev = np.where(i > 0, Ff[np.maximum(f - 1, 0)], 0)
    start = np.where(c == _SB, Pf[f], prev)
    end = np.where(c == _SB, Sf[f], Pf[f])
    keep = end > start
    c, k, start, end = c[keep], k[keep], start[keep], end[keep]
    names = [s.name for s in chain]
    reasons = [s.fifo_out.backpressure if s.fifo_out is not None else "" for s in chain] + \
        [s.fifo_in.starved if s.fifo_in is not None else "" for s in chain]
    stalls = [(names, k), (reasons, np.where(c == _SB, k, k + K)), start, end]
    per = np.zeros(K, dtype=np.int64)
    np.add.at(per, k, end - start)
    return stalls, per.tolist()


def _deltas(c: Any, i: Any, n: int, K: int, Sf: Any, Ff: Any, lat: list[int], ch: int) -> Any:
    """Channel ``ch``'s occupancy steps in the engine's order (from its records' codes ``c`` and items ``i``): a
    slot taken at S_k(i), freed at ~(F_{k+1}(j) + L)."""
    taken = Sf[ch * n + i]
    freed = ~(Ff[min(ch + 1, K - 1) * n + i] + lat[ch])
    return np.where(c == _DT, taken, freed)


def _drain(chain: list[_Stage]) -> list[list[Task]]:
    """Each stage's tasks in order, running its body on its own with the tokens its producer sent (the engine
    passes them in the same order: one producer, one consumer per channel)."""
    out: list[list[Task]] = []
    tokens: list[Any] = []
    for k, s in enumerate(chain):
        gen = steps_module.steps(s.proc.workload, {})
        tasks: list[Task] = []
        sent: list[Any] = []
        ch_out = s.proc.produces[0] if s.proc.produces else None
        if k == 0:
            for cmd in gen:
                if cmd[0] is not SEND or cmd[1] is not ch_out:
                    raise _NotLinear
                tasks.append(cmd[2])
                sent.append(cmd[3])
        else:
            ch_in = s.proc.consumes[0]
            cmd = next(gen)
            if cmd[0] is not PULL or cmd[1] is not ch_in or cmd[2]:
                raise _NotLinear
            for tok in [*tokens, CLOSED]:
                try:
                    cmd = gen.send(tok)
                except StopIteration:
                    if tok is not CLOSED:
                        raise _NotLinear from None
                    break
                if tok is CLOSED:
                    raise _NotLinear
                if cmd[0] is SEND_PULL and cmd[1] is ch_out and ch_out is not None:
                    tasks.append(cmd[2])
                    sent.append(cmd[3])
                elif cmd[0] is TASK_PULL and ch_out is None:
                    tasks.append(cmd[1])
                else:
                    raise _NotLinear
                pull = cmd[-1]
                if pull[0] is not PULL or pull[1] is not ch_in or not pull[2]:
                    raise _NotLinear
        out.append(tasks)
        tokens = sent
    return out


def _lazy_tasks(chain: list[_Stage], tk: Any, ti: Any) -> Callable[[], list[Task]]:
    """``run.tasks`` of a simple chain, built when first read: the bodies run again, ids in the engine's order."""
    def build() -> list[Task]:
        by_stage = _drain(chain)
        out = [by_stage[k][i] for k, i in zip(tk.tolist(), ti.tolist())]
        for tid, (t, k) in enumerate(zip(out, tk.tolist())):
            t.id, t.process = tid, chain[k].name
        return out
    return build


# -- the engine's order, on counts ----------------------------------------------------------------------------------
_PULL_, _SEND_, _TASK_, _REL_ = 0, 1, 2, 3  # where a process is in its per-item cycle


class _Order:
    """Replays the engine's run-until-block scheduling of the chain on counts only, as record codes
    ``((item * K + stage) << 3) | code`` (for channel records, ``stage`` is the channel's number)."""

    def __init__(self, K: int, n: int, depths: list[int], queue: list[int]) -> None:
        self.K, self.n = K, n
        self.fresh = list(depths)
        self.freeq: list[deque[int]] = [deque() for _ in depths]
        self.tokens: list[deque[int]] = [deque() for _ in depths]
        self.prod_wait = [False] * (K - 1)
        self.cons_wait = [False] * (K - 1)
        self.closed = [False] * (K - 1)
        self.granted = [False] * K
        self.done = [False] * K
        self.nxt = [0] * K
        self.pc = [_SEND_] + [_PULL_] * (K - 1)
        self.ready: deque[int] = deque(queue)
        self.out: list[int] = []

    def events(self) -> Any:
        """Every record, in the engine's order (a numpy int64 array)."""
        seen: dict[tuple[Any, ...], tuple[int, int]] = {}
        chunks: list[Any] = []
        searching = True
        activations = 0
        while self.ready:
            k = self.ready.popleft()
            if searching and k == 0:
                activations += 1
                key = self._key(k)
                hit = seen.get(key)
                if hit is not None:
                    searching = self._jump(hit, chunks)
                elif activations > MAX_PERIOD_SEARCH:
                    searching = False
                else:
                    seen[key] = (len(self.out), self.nxt[0])
            self._activate(k)
        chunks.append(np.asarray(self.out, dtype=np.int64))
        return np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int64)

    def _key(self, k: int) -> tuple[Any, ...]:
        base = self.nxt[0]
        return (k, tuple(self.ready), tuple(self.pc), tuple(self.granted), tuple(self.fresh),
                tuple(len(q) for q in self.freeq), tuple(len(q) for q in self.tokens), tuple(self.prod_wait),
                tuple(self.cons_wait), tuple(x - base for x in self.nxt),
                tuple(q[0] - base if q else 0 for q in self.freeq), tuple(q[0] - base if q else 0 for q in self.tokens))

    def _jump(self, hit: tuple[int, int], chunks: list[Any]) -> bool:
        """The state repeats: append whole periods of records (shifted) while the source stays clear of its end."""
        at, base_then = hit
        p = self.nxt[0] - base_then
        template = np.asarray(self.out[at:], dtype=np.int64)
        if p <= 0 or not len(template):
            return False
        rel_items = (template >> 3) // self.K - base_then
        top = int(rel_items.max()) + p  # furthest item a period starting now reaches, relative to its start base
        m = (self.n - 2 - self.nxt[0] - top) // p
        if m <= 0:
            return False
        shift = p * self.K * 8
        chunks.append(np.asarray(self.out, dtype=np.int64))
        chunks.append((template[None, :] + (np.arange(1, m + 1, dtype=np.int64) * shift)[:, None]
                       + (self.nxt[0] - base_then - p) * self.K * 8).reshape(-1))
        self.out = []
        d = m * p
        self.nxt = [x + d for x in self.nxt]
        self.freeq = [deque(x + d for x in q) for q in self.freeq]
        self.tokens = [deque(x + d for x in q) for q in self.tokens]
        return False

    def _emit(self, code: int, k: int, i: int) -> None:
        self.out.append(((i * self.K + k) << 3) | code)

    def _activate(self, k: int) -> None:
        """Run process ``k`` until it blocks or ends."""
        K, n, emit = self.K, self.n, self._emit
        last = k == K - 1
        while True:
            pc, i = self.pc[k], self.nxt[k]
            if pc == _PULL_:
                c = k - 1
                if self.tokens[c]:
                    self.tokens[c].popleft()
                    emit(_SS, k, i)
                    self.pc[k] = _TASK_ if last else _SEND_
                elif self.closed[c]:
                    self._finish(k)
                    return
                else:
                    self.cons_wait[c] = True
                    return
            elif pc == _SEND_:
                if k == 0 and i >= n:
                    self._finish(k)
                    return
                if self.granted[k]:
                    self.granted[k] = False
                elif self.fresh[k]:
                    self.fresh[k] -= 1
                    emit(_DT, k, i)
                elif self.freeq[k]:
                    self.freeq[k].popleft()
                    emit(_SB, k, i)
                    emit(_DT, k, i)
                else:
                    self.prod_wait[k] = True
                    return
                emit(_T, k, i)
                if self.cons_wait[k]:  # hand the token over: the consumer wakes with it
                    self.cons_wait[k] = False
                    emit(_SS, k + 1, i)
                    self.pc[k + 1] = _TASK_ if k + 1 == K - 1 else _SEND_
                    self.ready.append(k + 1)
                else:
                    self.tokens[k].append(i)
                if k == 0:
                    self.nxt[0] = i + 1
                else:
                    self.pc[k] = _REL_
            elif pc == _TASK_:
                emit(_T, k, i)
                self.pc[k] = _REL_
            else:  # _REL_: free the slot of item i upstream, then pull the next
                c = k - 1
                emit(_DF, c, i)
                if self.prod_wait[c]:  # credit the waiting producer: it takes the slot now
                    self.prod_wait[c] = False
                    j = self.nxt[c]
                    emit(_SB, c, j)
                    emit(_DT, c, j)
                    self.granted[c] = True
                    self.ready.append(c)
                else:
                    self.freeq[c].append(i)
                self.nxt[k] = i + 1
                self.pc[k] = _PULL_

    def _finish(self, k: int) -> None:
        self.done[k] = True
        if k < self.K - 1:
            self.closed[k] = True
            if self.cons_wait[k]:
                self.cons_wait[k] = False
                self.ready.append(k + 1)


__all__ = ["plan", "run", "runs", "MAX_PERIOD_SEARCH", "Replay"]
