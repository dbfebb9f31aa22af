"""Cost memoisation (issue 14 part 1): replaying each task's template keeps every trace byte-identical.

The NPU model resolves what pricing needs that does not depend on time once per (plan, core, AIV) of a run into a
``TaskTemplate`` (sim/memo.py) and replays it per task, while HBM/L2 pools, pipes and buffers still arbitrate at
run time. These tests compare whole traces (every span, the makespan, the GM counters) with digests computed
BEFORE the change, by this file's ``_digest`` on the tree with the issue-13 model and no sim/memo.py (HEAD at the
time, clean working tree):

    .venv/bin/python -c "import tests.sim.test_memo as t; t.print_digests()"

and pasted into ``EXPECTED`` unchanged. (The flash-attention digests were made again when the L2 model learnt that
a tile's sub-blocks are the same bytes as the tile, tests/sim/test_l2_subblocks.py: the model changed, the replay
did not; the csp_attention ones are still those of before the memoisation.) The fast paths of the buffer and
bandwidth pools are also checked against the general computations they skip (copied below from the code before the
change), on random request streams.
"""
from __future__ import annotations

import hashlib
from bisect import bisect_right
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
from loaders import flash_attention_example, load_file

from ptort_lab.sim.buffers import Allocation, BufferPool
from ptort_lab.sim.costs import NpuCostModel
from ptort_lab.sim.machine import PRE_ISSUE_13, ascend_910b
from ptort_lab.sim.memory import Pool

ROOT = Path(__file__).resolve().parents[2]
SMALL_L2 = ascend_910b.replace(l2_bytes=1 << 20)  # evictions and dirty write-backs within a few tiles
LRU_SMALL_L2 = SMALL_L2.replace(l2_replacement="lru")
TINY_L2 = ascend_910b.replace(l2_bytes=64 << 10)  # csp_attention's small tiles: evicted within a token or two
BEFORE_13 = ascend_910b.replace(**PRE_ISSUE_13)  # write-through L2, loads holding their pipe for the latency


def _fa() -> Any:
    return flash_attention_example("ptort_memo_fa_example")


def _csp() -> Any:
    return load_file("ptort_memo_csp_attention", ROOT / "examples/csp_attention/csp_attention_example.py")


def _digest(program: Any) -> str:
    """sha256 of the run's spans (every field, as plain Python values), makespan and GM counters."""
    trace = program.trace
    spans = [tuple(int(v) if isinstance(v, (int, np.integer)) else v for v in s) for s in trace.spans]
    mem = program.cost_model.memory
    counters = (mem.read_hit_bytes, mem.read_miss_bytes, mem.write_bytes, mem.writeback_bytes, mem.evictions,
                mem.dirty_evictions, mem.writethrough_bytes)
    text = repr((spans, int(trace.makespan), counters))
    return hashlib.sha256(text.encode()).hexdigest()


def _fa_run(variant: str, machine: Any = ascend_910b, **config: Any) -> Callable[[], Any]:
    def run() -> Any:
        fa = _fa()
        workload, _ = fa.build(variant, fa.Config(**config))
        program = workload.compile(cost_model=NpuCostModel(machine), compute_values=False)
        program.execute()
        return program
    return run


def _csp_run(kind: str, machine: Any = ascend_910b) -> Callable[[], Any]:
    def run() -> Any:
        ex = _csp()
        H, NQ, NKV, M = 2, 6, 4, 32
        kernels = ex.make_kernels(M, M, M)
        q, kt, v = (np.zeros(s, np.float16) for s in ((H, NQ, M, M), (H, NKV, M, M), (H, NKV, M, M)))
        pipeline = ex.build(q, kt, v, M, M, 2, kernels).pipeline
        if kind == "fa_placement":
            pipeline = pipeline.place(ex.fa_placement(H))
        elif kind == "twin":
            pipeline = ex.data_parallel_twin(pipeline, H)
        program = pipeline.compile(cost_model=NpuCostModel(machine), compute_values=False)
        program.execute()
        return program
    return run


CASES: dict[str, Callable[[], Any]] = {
    "fa pipeline S=1024": _fa_run("pipeline", seq=1024),
    "fa data_parallel S=1024": _fa_run("data_parallel", seq=1024),
    "fa pipeline S=1024 block=128 3 cores": _fa_run("pipeline", seq=1024, block=128, cores=3),
    "fa data_parallel S=1024 block=512 2 heads 3 cores": _fa_run("data_parallel", seq=1024, block=512, heads=2,
                                                                  cores=3),
    "fa pipeline S=1024 small L2": _fa_run("pipeline", SMALL_L2, seq=1024, cores=2),
    "fa data_parallel S=1024 small LRU L2": _fa_run("data_parallel", LRU_SMALL_L2, seq=1024, cores=2),
    "fa data_parallel S=2048 small L2 2 cores": _fa_run("data_parallel", SMALL_L2, seq=2048, cores=2),
    "fa pipeline S=2048 small LRU L2 2 cores": _fa_run("pipeline", LRU_SMALL_L2, seq=2048, cores=2),
    "fa data_parallel S=1024 before issue 13": _fa_run("data_parallel", BEFORE_13, seq=1024, cores=4),
    "fa pipeline S=1024 before issue 13": _fa_run("pipeline", BEFORE_13, seq=1024, cores=4),
    "csp_attention 1 core per stage": _csp_run("per_stage"),
    "csp_attention fa placement": _csp_run("fa_placement"),
    "csp_attention fa placement tiny L2": _csp_run("fa_placement", TINY_L2),
    "csp_attention 1 core per stage tiny LRU L2": _csp_run("per_stage", TINY_L2.replace(l2_replacement="lru")),
    "csp_attention data-parallel twin": _csp_run("twin"),
}

EXPECTED: dict[str, str] = {
    'fa pipeline S=1024': '072a9a380e074ddbc5209d981bf6fbaef587b53753688d966ec452a2dfb0e13e',
    'fa data_parallel S=1024': 'ea2ae9cce7055c9af9efbb438d7f78cb2ba6ae74bbf6b45c33a0370940868440',
    'fa pipeline S=1024 block=128 3 cores': '7f9e9ba78c8f7f5f95bbe59c06fd6865405369ced581f7212e1f469c34963b8d',
    'fa data_parallel S=1024 block=512 2 heads 3 cores':
        '8923db67627099bc02f56a5d804d04762c7ade5bd63e43a7af1ae741a0d05927',
    'fa pipeline S=1024 small L2': '2c09ef1a4c2bde66b011ad0ffc454f956468cb3d10f6f282eedb79f16c597ae1',
    'fa data_parallel S=1024 small LRU L2': '7900bb666d607874c8cb8e050d5c34d00e3df9e562bdadcbc0af988ec4d796bd',
    'fa data_parallel S=2048 small L2 2 cores': '7d0ee091ce24dae1e69077e0b669f62f44fa0a351ba65cfa14c07504b06db4a3',
    'fa pipeline S=2048 small LRU L2 2 cores': '51a1b742582ac834683922fbaf932c0759f49e8791acd046e8f4408b0cc18e3f',
    'fa data_parallel S=1024 before issue 13': 'ced7fe0e085edf875f0f5787df8ac5b4d5b139b2b77375a0e4ce69f293ac6367',
    'fa pipeline S=1024 before issue 13': '40199d463fa7bb62241ef29348014474b83904ef1639e483039b66f24b194ab3',
    'csp_attention 1 core per stage': '0e5efd852c3eacb5450964eaff64b83613e08547d954e60c9d424ce884628077',
    'csp_attention fa placement': '0702af214533823713ceaa11ecba1cb250d71f032a75cab0712a4243191234ad',
    'csp_attention fa placement tiny L2': 'b5db4ae33bccf6e43c152e8bbd3c971e08681cc645b18e969db64b060d132c0c',
    'csp_attention 1 core per stage tiny LRU L2': 'cfc47c70d8eca7b892b41ed1d1b61173152f17eadfbfd683c1e89d8498239bbf',
    'csp_attention data-parallel twin': '04cf9120711474128b857ee64fb6c195b8a9e5e5d6d72991950b80440a66a902',
}


def print_digests() -> None:
    """Print ``EXPECTED`` as computed on the current tree (how the digests above were made)."""
    for name, run in CASES.items():
        print(f"    {name!r}: {_digest(run())!r},")


@pytest.mark.parametrize("name", list(CASES))
def test_traces_equal_the_ones_before_memoisation(name: str) -> None:
    """Every span of the run (core, lane, op, index, start, end, bytes, process, task) and the GM counters are
    exactly those of the unmemoised model."""
    assert _digest(CASES[name]()) == EXPECTED[name]


@pytest.mark.parametrize("name", ["fa pipeline S=1024 block=128 3 cores", "csp_attention fa placement"])
def test_each_pipe_is_free_when_its_last_instruction_ends(name: str) -> None:
    """The pipes' clocks (one list, indexed from each template step) read back as ``pipe_free``: every pipe the run
    used, keyed (core, lane), free at the end of the last span on it (a pipe issues in order)."""
    program = CASES[name]()
    last_end: dict[tuple[int, str], int] = {}
    for s in program.trace.spans:
        last_end[(s.core, s.lane)] = max(last_end.get((s.core, s.lane), 0), s.end)
    assert program.cost_model.pipe_free == last_end
    assert {lane for _, lane in last_end} >= {"AIC.MTE2", "AIC.CUBE", "AIV0.V", "AIV1.MTE3"}

# -- the fast paths of buffers and memory against the general computations they replace -------------------------------
def _reference_allocate(pool: BufferPool, t: int, nbytes: int, floor: int) -> tuple[int, Allocation] | None:
    """BufferPool.allocate as it was before issue 14 (the full occupancy search every time)."""
    k = bisect_right(pool.closed_ends, floor)
    if k:
        pool.closed_total -= sum(a.bytes for a in pool.closed[:k])
        del pool.closed_ends[:k]
        del pool.closed[:k]
    cap = pool.capacity_bytes - nbytes
    if cap < 0:
        return None
    deltas: dict[int, int] = {}
    k = bisect_right(pool.closed_ends, t)
    for end, a in zip(pool.closed_ends[k:], pool.closed[k:]):
        s = max(a.start, t)
        deltas[s] = deltas.get(s, 0) + a.bytes
        deltas[end] = deltas.get(end, 0) - a.bytes
    for a in pool.open:
        s = max(a.start, t)
        deltas[s] = deltas.get(s, 0) + a.bytes
    times = sorted(deltas)
    levels, level = [], 0
    for tm in times:
        level += deltas[tm]
        levels.append(level)
    for i in range(len(levels) - 2, -1, -1):
        levels[i] = max(levels[i], levels[i + 1])
    if levels and levels[-1] > cap:
        return None
    start = t
    for i in range(len(times)):
        if levels[i] <= cap:
            break
        if i + 1 < len(times):
            start = times[i + 1]
    alloc = Allocation(start, nbytes)
    pool.open.append(alloc)
    pool.open_total += nbytes
    return start, alloc


def _pool_state(pool: BufferPool) -> tuple[Any, ...]:
    return ([(a.start, a.end, a.bytes) for a in pool.open], [(a.start, a.end, a.bytes) for a in pool.closed],
            list(pool.closed_ends))


def _allocate_both(fast: BufferPool, slow: BufferPool, t: int, nbytes: int,
                   floor: int) -> tuple[Allocation, Allocation] | None:
    """One request to the pool under test and to the full search (``slow``): the same start or the same refusal;
    the two allocations, or None."""
    got = fast.allocate(t, nbytes, floor)
    want = _reference_allocate(slow, t, nbytes, floor)
    assert (got is None) == (want is None)
    if got is None or want is None:
        return None
    assert got.start == want[0]
    return got, want[1]


def _free_both(fast: BufferPool, slow: BufferPool, held: list[tuple[Allocation, Allocation]], rng: Any,
               most_cycles: int) -> None:
    """End each allocation pair up to ``most_cycles`` after its start: both pools hold the same tiles after."""
    for got, want in held:
        end = got.start + int(rng.integers(0, most_cycles))
        fast.free(got, end)
        slow.free(want, end)
    assert _pool_state(fast) == _pool_state(slow)


@pytest.mark.parametrize("seed", range(6))
def test_buffer_allocation_fast_paths_start_each_tile_where_the_full_search_does(seed: int) -> None:
    """Random tasks' allocations and frees (tight and roomy buffers, ends out of order): every start, every refusal
    and the pool's allocations afterwards equal the full occupancy search's."""
    rng = np.random.default_rng(seed)
    capacity = int(rng.choice([4096, 16384, 65536]))
    fast, slow = BufferPool("fast", capacity), BufferPool("slow", capacity)
    floor = 0
    for _ in range(150):
        floor += int(rng.integers(0, 40))
        held: list[tuple[Allocation, Allocation]] = []
        for _ in range(int(rng.integers(1, 5))):  # one task: allocate, then free each at some later end
            t = floor + int(rng.integers(0, 200))
            nbytes = int(rng.integers(1, capacity // 2))
            pair = _allocate_both(fast, slow, t, nbytes, floor)
            if pair is not None:
                held.append(pair)
        _free_both(fast, slow, held, rng, 300)
        assert fast.open_total == sum(a.bytes for a in fast.open)
        assert fast.closed_total == sum(a.bytes for a in fast.closed)


@pytest.mark.parametrize("seed", range(12))
def test_buffer_allocation_waiting_for_frees_starts_where_the_full_search_does(seed: int) -> None:
    """Tasks asking in time order (each request no earlier than every earlier start, as a pipe's do) in tight
    buffers: the search waits for closed tiles' ends, mostly by its in-order scan; every start and refusal equal the
    full occupancy search's."""
    rng = np.random.default_rng(100 + seed)
    capacity = int(rng.choice([4096, 8192]))
    fast, slow = BufferPool("fast", capacity), BufferPool("slow", capacity)
    t = 0
    waited = 0
    for _ in range(200):
        held: list[tuple[Allocation, Allocation]] = []
        for _ in range(int(rng.integers(1, 4))):
            t += int(rng.integers(0, 30))
            nbytes = int(rng.integers(1, capacity))
            pair = _allocate_both(fast, slow, t, nbytes, t)
            if pair is not None:
                waited += pair[0].start > t
                t = max(t, pair[0].start)
                held.append(pair)
        _free_both(fast, slow, held, rng, 120)
    assert waited > 20


@pytest.mark.parametrize("seed", range(12))
def test_buffer_allocation_behind_later_starts_starts_where_the_full_search_does(seed: int) -> None:
    """A task's tiles asked for out of time order (its pipes run apart: a request at t while tiles taken by other
    pipes start after t) in tight buffers: the search merges those starts with the closed ends; every start and
    refusal equal the full occupancy search's, and many requests wait behind a later start."""
    rng = np.random.default_rng(500 + seed)
    capacity = int(rng.choice([4096, 8192]))
    fast, slow = BufferPool("fast", capacity), BufferPool("slow", capacity)
    floor = 0
    behind_later = 0
    for _ in range(200):
        floor += int(rng.integers(0, 25))
        held: list[tuple[Allocation, Allocation]] = []
        for _ in range(int(rng.integers(2, 7))):
            t = floor + int(rng.integers(0, 150))
            nbytes = int(rng.integers(1, capacity // 2))
            later = any(a.start > t for a in fast.open) or any(
                a.start > t and e > t for a, e in zip(fast.closed, fast.closed_ends))
            pair = _allocate_both(fast, slow, t, nbytes, floor)
            if pair is not None:
                behind_later += later and pair[0].start > t
                held.append(pair)
        _free_both(fast, slow, held, rng, 200)
    assert behind_later > 20


def _reference_transfer(pool: Pool, data_start: int, nbytes: int, cap: int) -> int:
    """Pool.transfer as it was before issue 14 (stretch by stretch)."""
    bw, remaining = pool.bytes_per_cycle, nbytes
    i = pool._split(data_start)
    t = data_start
    while True:
        nxt = pool.times[i + 1] if i + 1 < len(pool.times) else None
        rate = min(cap, bw // (pool.holders[i] + 1), bw - pool.used[i])
        if rate > 0:
            if nxt is None or rate * (nxt - t) >= remaining:
                end = t + -(-remaining // rate)
                j = pool._split(end)
                for k in range(i, j):
                    pool.used[k] += rate
                    pool.holders[k] += 1
                return end
            remaining -= rate * (nxt - t)
            pool.used[i] += rate
            pool.holders[i] += 1
        assert nxt is not None
        t = nxt
        i += 1


@pytest.mark.parametrize("seed", range(6))
def test_bandwidth_pool_fast_paths_end_each_transfer_where_the_stretch_walk_does(seed: int) -> None:
    """Random transfers (uncontended, at the cap, oversubscribed, past every breakpoint, before it) and forgets:
    every end and the pool's reservations afterwards equal the stretch-by-stretch walk's."""
    rng = np.random.default_rng(100 + seed)
    bw = int(rng.choice([850, 2064, 2550]))
    fast, slow = Pool(bw), Pool(bw)
    floor = 0
    for step in range(300):
        floor += int(rng.integers(0, 30 if step % 100 < 50 else 600))  # busy stretches, then quiet ones
        start = floor + int(rng.integers(0, 400))
        nbytes = int(rng.integers(1, 1 << int(rng.choice([10, 14, 17]))))
        cap = int(rng.choice([60, 94, 128, 138, bw, bw + 1]))
        assert fast.transfer(start, nbytes, cap) == _reference_transfer(slow, start, nbytes, cap), step
        assert (fast.times, fast.used, fast.holders) == (slow.times, slow.used, slow.holders), step
        if step % 7 == 0:
            fast.forget_before(floor)
            slow.forget_before(floor)
