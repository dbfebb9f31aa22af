"""A join frees every slot of the items it paired when its body ends, before it waits for the next items.

``consume([a, b], fn)`` used to pull its channels one after the other after each body, and a pull frees the
previous item's slot *and then waits* for the next one: b's slot of item k stayed taken until a's item k + 1 had
arrived. A process that fills both channels (a split, ``send(a, send(b, task))``) needs b's slot before it can send
a's item k + 1, so a split feeding a join at depth 1 deadlocked, and so did examples/flash_attention's pipeline at
``--depth 1`` (``update`` held its ``alpha`` slot until ``pv``'s next item came, which needed ``softmax``, which
waited for that ``alpha`` slot). At depth >= 2 the late release only slowed such pipelines down, by an amount that
depended on the order the join listed its channels in.

Timelines worked out by hand with pinned costs (tile and token channels, both join orders, on-chip queues next to
GM rings), random split/join graphs against the slot recurrence, and the flash-attention example at depth 1 on the
NPU model against numpy.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from loaders import flash_attention_example

from ptort_lab import Dense, DType, In, Out, Tensor, Tile, for_each, kernel, task, tl
from ptort_lab.csp import Channel, connect, consume, process, send
from ptort_lab.sim.runner import PinnedCosts, RunOptions, simulate

F32 = DType.F32
T = Tile[16, 16, F32]
ROOT = Path(__file__).resolve().parents[2]


@kernel
def split2(src: In[T], a: Out[T], b: Out[T]):
    x = tl.load(src)
    tl.store(a, x)
    tl.store(b, tl.mul(x, 2.0))


@kernel
def add2(a: In[T], b: In[T], y: Out[T]):
    tl.store(y, tl.add(tl.load(a), tl.load(b)))


@kernel
def copy(src: In[T], dst: Out[T]):
    tl.store(dst, tl.load(src))


@kernel
def double(src: In[T], dst: Out[T]):
    tl.store(dst, tl.mul(tl.load(src), 2.0))


@kernel
def softmax_like(s: In[T], p: Out[T], alpha: Out[T], rowsum: Out[T]):
    x = tl.load(s)
    tl.store(p, x)
    tl.store(alpha, x)
    tl.store(rowsum, x)


@kernel
def pv_like(p0: In[T], p1: In[T], o0: Out[T], o1: Out[T]):
    tl.store(o0, tl.load(p0))
    tl.store(o1, tl.load(p1))


@kernel
def update_like(o: In[T], alpha: In[T], rowsum: In[T], y: Out[T]):
    tl.store(y, tl.add(tl.add(tl.load(o), tl.load(alpha)), tl.load(rowsum)))


def tiles(n: int) -> np.ndarray:
    """n small integer-valued F32 tiles (every sum below is exact)."""
    return np.arange(n * 256, dtype=np.float32).reshape(n, 16, 16) % 97


def spans(run: Any, proc: str) -> list[tuple[int, int]]:
    return [(s.start, s.end) for s in run.trace.spans if s.process == proc]


def stalls(run: Any, proc: str) -> list[tuple[str, int, int]]:
    return [(s.reason, s.start, s.end) for s in run.trace.stalls if s.process == proc]


# -- a split feeding a join --------------------------------------------------------------------------------------
def diamond(n: int, depth: int, order: str, tile: bool = True) -> tuple[Any, np.ndarray, Tensor]:
    """p fills a and b with one task per item (a split: send(a, send(b, task))), 100 cycles; j joins them in
    ``order`` ("ab" or "ba") into Y = A + B, 50 cycles."""
    x = tiles(n)
    X, Y = Tensor(data=x), Tensor(shape=x.shape, dtype=F32)
    a, b = (Channel(c, depth=depth, tile=T if tile else None) for c in "ab")
    A, B = (Tensor(shape=x.shape, dtype=F32) for _ in "ab")  # token channels: the items live in tensors
    item_a, item_b = (a.item, b.item) if tile else (None, None)

    def fill(t: Any) -> Any:
        out = {"a": item_a, "b": item_b} if tile else {"a": A[t], "b": B[t]}
        return send(a, send(b, task(split2, [t], {"src": X[t], **out}, cycles=100), token=t), token=t)

    def join(u: Any, v: Any) -> Any:
        t = u if order == "ab" else v  # the token of a
        ins = {"a": item_a, "b": item_b} if tile else {"a": A[t], "b": B[t]}
        return task(add2, [t], {**ins, "y": Y[t]}, cycles=50)

    p = process("p").produces(a, b).body(for_each(Dense[n](), fill))
    j = process("j").consumes(a, b).body(consume([a, b] if order == "ab" else [b, a], join))
    return connect(p, j), x, Y


@pytest.mark.parametrize("tile", [True, False], ids=["tile channels", "token channels"])
@pytest.mark.parametrize("order", ["ab", "ba"])
def test_a_split_feeding_a_join_runs_at_depth_1(order: str, tile: bool) -> None:
    """Depth 1, no latency. p's item k needs both slots, which j frees when its item k - 1 ends: p runs at
    0, 150, 300 (waiting 50 for a's slot each time, b's is free by then) and j at 100, 250, 400. Period 150 = 100 + 50,
    makespan 450. (Before the fix: DeadlockError at t=150, j waiting for a's next item while holding b's slot, or
    the other way round.)"""
    pipe, x, Y = diamond(3, 1, order, tile)
    run = simulate(pipe, PinnedCosts(), RunOptions())
    np.testing.assert_array_equal(Y.data, x + x * np.float32(2))
    assert spans(run, "p") == [(0, 100), (150, 250), (300, 400)]
    assert spans(run, "j") == [(100, 150), (250, 300), (400, 450)]
    assert run.trace.makespan == 450
    assert stalls(run, "p") == [("backpressure from 'a'", 100, 150), ("backpressure from 'a'", 250, 300)]


@pytest.mark.parametrize("order", ["ab", "ba"])
def test_a_split_feeding_a_join_through_gm_rings_pays_the_hop_both_ways(order: str) -> None:
    """Depth 1, p and j on two cores (GM rings, latency L = 1000) or on one (on-chip slots, L = 0). An item is
    visible L after p's task ends and its slots are free again L after j's ends: p starts item k at
    k (150 + 2 L), j at 100 + L + k (150 + 2 L); makespan 450 + 5 L."""
    for placement, hop in (({"p": 0, "j": 1}, 1000), ("shared", 0)):
        pipe, x, Y = diamond(3, 1, order)
        run = simulate(pipe, PinnedCosts(), RunOptions(channel_latency_cycles=1000, placement=placement))
        np.testing.assert_array_equal(Y.data, x + x * np.float32(2))
        period = 150 + 2 * hop
        assert spans(run, "p") == [(k * period, k * period + 100) for k in range(3)]
        assert spans(run, "j") == [(100 + hop + k * period, 150 + hop + k * period) for k in range(3)]
        assert run.trace.makespan == 450 + 5 * hop


@pytest.mark.parametrize("depth", [2, 3])
def test_a_split_feeding_a_join_overlaps_from_depth_2(depth: int) -> None:
    """Depth >= 2: p runs back to back (100 per item) and j 50 after each item: makespan 100 n + 50."""
    for order in ("ab", "ba"):
        pipe, x, Y = diamond(5, depth, order)
        run = simulate(pipe, PinnedCosts(), RunOptions())
        assert spans(run, "p") == [(100 * k, 100 * k + 100) for k in range(5)]
        assert spans(run, "j") == [(100 * k + 100, 100 * k + 150) for k in range(5)]
        assert run.trace.makespan == 550 and stalls(run, "p") == []


# -- the order a join lists its channels in -----------------------------------------------------------------------
def join_of_two_producers(order: str, n: int = 5) -> tuple[Any, np.ndarray, np.ndarray, Tensor]:
    """a sends A[t] (100 cycles), b sends 2 B[t] (300 cycles), depth 2; j joins them (50 cycles) in ``order``."""
    rng = np.random.default_rng(3)
    xa, xb = (rng.integers(0, 50, (n, 16, 16)).astype(np.float32) for _ in "ab")
    A, B, Y = Tensor(data=xa), Tensor(data=xb), Tensor(shape=xa.shape, dtype=F32)
    ca, cb = Channel("ca", depth=2, tile=T), Channel("cb", depth=2, tile=T)
    pa = process("a").produces(ca).body(for_each(Dense[n](), lambda t: send(
        ca, task(copy, [t], {"src": A[t], "dst": ca.item}, cycles=100))))
    pb = process("b").produces(cb).body(for_each(Dense[n](), lambda t: send(
        cb, task(double, [t], {"src": B[t], "dst": cb.item}, cycles=300))))
    chans = [ca, cb] if order == "ab" else [cb, ca]
    pj = process("j").consumes(ca, cb).body(consume(chans, lambda u, v: task(
        add2, [u], {"a": ca.item, "b": cb.item, "y": Y[u]}, cycles=50)))
    return connect(pa, pb, pj), xa, xb, Y


@pytest.mark.parametrize("order", ["ab", "ba"])
def test_the_order_a_join_lists_its_channels_in_does_not_change_its_timeline(order: str) -> None:
    """j starts item k when b's item is there, at 300 (k + 1), and frees both slots at 300 (k + 1) + 50; a's item
    k >= 2 takes the slot of item k - 2, so it starts at 300 (k - 1) + 50, whichever channel the join lists first.
    (Listing cb first used to keep ca's slot until cb's next item arrived: a's item k started at 300 k.)"""
    pipe, xa, xb, Y = join_of_two_producers(order)
    run = simulate(pipe, PinnedCosts(), RunOptions())
    np.testing.assert_array_equal(Y.data, xa + xb * np.float32(2))
    assert [s for s, _ in spans(run, "a")] == [0, 100] + [300 * (k - 1) + 50 for k in range(2, 5)]
    assert [s for s, _ in spans(run, "j")] == [300 * (k + 1) for k in range(5)]
    assert run.trace.makespan == 300 * 5 + 50


# -- the flash-attention shape -------------------------------------------------------------------------------------
def fa_shaped(n: int, depth: int) -> tuple[Any, np.ndarray, list[Tensor]]:
    """examples/flash_attention's six processes, 100 cycles per task: qk fills s0 and s1 (a split); softmax h takes
    s h and fills p h, alpha h, rowsum h; pv joins p0 and p1 and fills pv0 and pv1; update h joins pv h, alpha h and
    rowsum h into Y h = 3 s h (s0 = X, s1 = 2 X)."""
    x = tiles(n)
    X, Ys = Tensor(data=x), [Tensor(shape=x.shape, dtype=F32) for _ in range(2)]

    def ring(name: str) -> list[Channel[Any]]:
        return [Channel(f"{name}{h}", depth=depth, tile=T) for h in (0, 1)]

    s, p, o, a, r = ring("s"), ring("p"), ring("pv"), ring("alpha"), ring("rowsum")

    def qk(t: Any) -> Any:
        work = task(split2, [t], {"src": X[t], "a": s[0].item, "b": s[1].item}, cycles=100)
        return send(s[0], send(s[1], work, token=t), token=t)

    def softmax(h: int) -> Any:
        def step(t: Any) -> Any:
            work = task(softmax_like, [t], {"s": s[h].item, "p": p[h].item, "alpha": a[h].item,
                                            "rowsum": r[h].item}, cycles=100)
            return send(p[h], send(a[h], send(r[h], work, token=t), token=t), token=t)
        return step

    def pv(t: Any, _t1: Any) -> Any:
        work = task(pv_like, [t], {"p0": p[0].item, "p1": p[1].item, "o0": o[0].item, "o1": o[1].item}, cycles=100)
        return send(o[0], send(o[1], work, token=t), token=t)

    def update(h: int) -> Any:
        return lambda t, _a, _r: task(update_like, [t], {"o": o[h].item, "alpha": a[h].item, "rowsum": r[h].item,
                                                         "y": Ys[h][t]}, cycles=100)

    procs = [process("qk").produces(*s).body(for_each(Dense[n](), qk))]
    procs += [process(f"softmax{h}").consumes(s[h]).produces(p[h], a[h], r[h]).body(consume(s[h], softmax(h)))
              for h in (0, 1)]
    procs += [process("pv").consumes(*p).produces(*o).body(consume([p[0], p[1]], pv))]
    procs += [process(f"update{h}").consumes(o[h], a[h], r[h]).body(consume([o[h], a[h], r[h]], update(h)))
              for h in (0, 1)]
    return connect(*procs), x, Ys


def test_the_flash_attention_shape_runs_at_depth_1_as_worked_by_hand() -> None:
    """Depth 1, no latency, 3 items. Item k of a stage needs its inputs (same k, upstream) and the slots of its
    outputs, freed when the consumer ends item k - 1. qk k=1 waits for s0 until softmax ends item 0 (200), k=2 until
    it ends item 1 (500). softmax k=1 has s at 300 and p's slot (pv ended item 0 at 300) but waits for alpha's slot
    until update ends item 0 (400); k=2 likewise 600 -> 700. pv and update follow their inputs. The loop
    softmax -> pv -> update -> (alpha's slot) -> softmax sets the period: 300. (Before the fix: DeadlockError at
    t=400, softmax0 waiting for a slot of 'alpha0' that update0 kept until pv's next item came.)"""
    pipe, x, Ys = fa_shaped(3, 1)
    run = simulate(pipe, PinnedCosts(), RunOptions())
    np.testing.assert_array_equal(Ys[0].data, x * np.float32(3))
    np.testing.assert_array_equal(Ys[1].data, x * np.float32(2) * np.float32(3))
    assert spans(run, "qk") == [(0, 100), (200, 300), (500, 600)]
    for h in (0, 1):
        assert spans(run, f"softmax{h}") == [(100, 200), (400, 500), (700, 800)]
        assert spans(run, f"update{h}") == [(300, 400), (600, 700), (900, 1000)]
        starved, alpha_full = f"starved on 's{h}'", f"backpressure from 'alpha{h}'"
        assert stalls(run, f"softmax{h}") == [(starved, 0, 100), (starved, 200, 300), (alpha_full, 300, 400),
                                              (starved, 500, 600), (alpha_full, 600, 700)]
    assert spans(run, "pv") == [(200, 300), (500, 600), (800, 900)]
    assert stalls(run, "qk") == [("backpressure from 's0'", 100, 200), ("backpressure from 's0'", 300, 500)]
    assert run.trace.makespan == 1000


def test_the_flash_attention_shape_with_gm_rings_and_on_chip_queues_at_depth_1() -> None:
    """As the example places it: qk and pv on one core, softmax h and update h on core h + 1, so s, p and pv are
    GM rings (hop latency L = 10 each way) and alpha, rowsum stay on chip (no latency). Per item: softmax (100),
    L, pv (100), L, update (100), then alpha's slot is free at once: period 300 + 2 L = 320. Two items: qk 0-100,
    softmax 110-210 and 430-530, pv 220-320 and 540-640, update 330-430 and 650-750, qk's item 1 at 220 (s's slot
    is back L after softmax ends item 0)."""
    pipe, x, Ys = fa_shaped(2, 1)
    placement = {"qk": 0, "pv": 0, "softmax0": 1, "update0": 1, "softmax1": 2, "update1": 2}
    run = simulate(pipe, PinnedCosts(), RunOptions(channel_latency_cycles=10, placement=placement))
    np.testing.assert_array_equal(Ys[1].data, x * np.float32(2) * np.float32(3))
    assert spans(run, "qk") == [(0, 100), (220, 320)]
    for h in (0, 1):
        assert spans(run, f"softmax{h}") == [(110, 210), (430, 530)]
        assert spans(run, f"update{h}") == [(330, 430), (650, 750)]
        assert (f"backpressure from 'alpha{h}'", 330, 430) in stalls(run, f"softmax{h}")
    assert spans(run, "pv") == [(220, 320), (540, 640)]
    assert run.trace.makespan == 750


# -- random split/join graphs against the slot recurrence ----------------------------------------------------------
@kernel
def stage():
    """An empty kernel: its cost is pinned per task."""


def recurrence(order: list[str], ins: dict[str, list[str]], outs: dict[str, list[tuple[str, int]]],
               cost: dict[str, list[int]], n: int, latency: int) -> dict[str, list[tuple[int, int]]]:
    """S_P(k) = max(F_P(k-1), F_Q(k) + L for each input from Q, F_R(k - D) + L for each output to R of depth D):
    a process handles item k once it ends item k - 1, every input's item k is visible and every output has the
    slot its consumer freed when it ended item k - D. F = S + cost."""
    F: dict[str, list[int]] = {p: [] for p in order}
    out: dict[str, list[tuple[int, int]]] = {p: [] for p in order}
    for k in range(n):
        for p in order:
            start = F[p][k - 1] if k else 0
            for q in ins[p]:
                start = max(start, F[q][k] + latency)
            for r, depth in outs[p]:
                if k >= depth:
                    start = max(start, F[r][k - depth] + latency)
            F[p].append(start + cost[p][k])
            out[p].append((start, F[p][k]))
    return out


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_split_join_graphs_follow_the_slot_recurrence(data: Any) -> None:
    """Random acyclic graphs of 2-6 processes: each later process joins 1-3 earlier ones (in a random order) and
    every process with consumers fills all its output channels with one task per item (a split); depths 1-3, costs
    0-60, one latency for every hop. Each task starts and ends where the recurrence says: no deadlock at any depth,
    and a join's slots are all free when its body ends."""
    size = data.draw(st.integers(2, 6))
    n = data.draw(st.integers(1, 5))
    latency = data.draw(st.sampled_from([0, 7, 100]))
    names = [f"q{i}" for i in range(size)]
    ins = {p: [] for p in names}
    for i in range(1, size):
        ins[names[i]] = data.draw(st.lists(st.sampled_from(names[:i]), min_size=1, max_size=min(3, i), unique=True))
    chans: dict[tuple[str, str], Channel[Any]] = {}
    outs: dict[str, list[tuple[str, int]]] = {p: [] for p in names}
    for p in names:
        for q in ins[p]:
            chans[(q, p)] = Channel(f"{q}_{p}", depth=data.draw(st.integers(1, 3)))
            outs[q].append((p, chans[(q, p)].depth))
    cost = {p: [data.draw(st.integers(0, 60)) for _ in range(n)] for p in names}

    def body(p: str) -> Any:
        def fill(t: Any) -> Any:
            item: Any = task(stage, [t], {}, cycles=lambda tk, p=p: cost[p][tk.params[0]])
            for r, _ in outs[p]:  # the innermost send runs the task; each outer one takes its slot first
                item = send(chans[(p, r)], item, token=t)
            return item
        if not ins[p]:
            return for_each(Dense[n](), fill)
        listed = [chans[(q, p)] for q in ins[p]]
        joins = {1: lambda t: fill(t), 2: lambda t, _u: fill(t), 3: lambda t, _u, _v: fill(t)}
        return consume(listed if len(listed) > 1 else listed[0], joins[len(listed)])

    procs = [process(p).consumes(*(chans[(q, p)] for q in ins[p])).produces(*(chans[(p, r)] for r, _ in outs[p]))
             .body(body(p)) for p in names]
    run = simulate(connect(*procs), PinnedCosts(), RunOptions(channel_latency_cycles=latency))
    want = recurrence(names, ins, outs, cost, n, latency)
    for p in names:
        assert spans(run, p) == want[p], p
    assert run.trace.makespan == max(end for p in names for _, end in want[p])


# -- the example itself, on the NPU model ------------------------------------------------------------------------
def test_the_flash_attention_example_runs_at_depth_1_and_matches_numpy(capsys: pytest.CaptureFixture[str]) -> None:
    """``--variant pipeline --depth 1`` (S = 256, blocks of 128, one core: 2 query tiles x 2 KV blocks): GM rings
    between the AIC and the AIVs, UB queues for alpha and rowsum, all of one slot. It runs, Y equals the float64
    golden within the example's tolerance, and it is slower than depth 2 (each stage waits for the next to free
    its only slot)."""
    fa = flash_attention_example("ptort_join_slots_fa_example")
    assert fa.main(["--variant", "pipeline", "--depth", "1", "--seq", "256", "--block", "128", "--cores", "1"]) == 0
    out = capsys.readouterr().out
    assert "block 128, depth 1: 2 query tiles x 2 KV blocks on 1 cores" in out and out.rstrip().endswith("PASS")
    cycles = {d: fa.run("pipeline", fa.Config(256, block=128, cores=1, depth=d))[0].stats().total_cycles
              for d in (1, 2)}
    assert cycles[1] > cycles[2]
