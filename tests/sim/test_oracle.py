"""The engine's pipeline times equal the max-plus slot recurrence exactly (issue 3 oracle)."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from ptort_lab import Channel, Dense, connect, consume, for_each, kernel, process, send, task


def oracle(times: list[list[int]], depths: list[int], latency: int) -> tuple[list[list[int]], list[list[int]]]:
    """S_k(i) = max(F_k(i-1), F_{k-1}(i) + L, F_{k+1}(i-D_k) + L); F = S + t. Absent terms dropped."""
    K, n = len(times), len(times[0])
    S = [[0] * n for _ in range(K)]
    F = [[0] * n for _ in range(K)]
    for i in range(n):
        for k in range(K):
            s = F[k][i - 1] if i else 0
            if k:
                s = max(s, F[k - 1][i] + latency)
            if k + 1 < K and i >= depths[k]:
                s = max(s, F[k + 1][i - depths[k]] + latency)
            S[k][i], F[k][i] = s, s + times[k][i]
    return S, F


@kernel
def stage():
    """An empty kernel: its cost is pinned per task."""


def linear_pipeline(times: list[list[int]], depths: list[int]):
    K, n = len(times), len(times[0])
    chans = [Channel(name=f"c{k}", depth=depths[k]) for k in range(K - 1)]
    procs = []
    for k in range(K):
        def work(i, k=k):
            return task(stage, [i], {}, cycles=lambda t: times[k][t.params[0]])

        if k + 1 < K:
            def body(i, k=k, work=work):
                return send(chans[k], work(i))
        else:
            body = work
        w = for_each(Dense[n](), body) if k == 0 else consume(chans[k - 1], body)
        p = process(f"s{k}").body(w)
        if k:
            p.consumes(chans[k - 1])
        if k + 1 < K:
            p.produces(chans[k])
        procs.append(p)
    return connect(procs)


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_engine_matches_maxplus_oracle(data):
    """Start/finish of every (stage, item) and the makespan equal the recurrence for random pipelines."""
    K = data.draw(st.integers(1, 6))
    n = data.draw(st.integers(1, 12))
    depths = [data.draw(st.integers(1, 8)) for _ in range(max(K - 1, 0))] + [1]
    latency = data.draw(st.integers(0, 1000))
    times = [[data.draw(st.integers(0, 500)) for _ in range(n)] for _ in range(K)]
    pipe = linear_pipeline(times, depths)
    prog = pipe.compile(channel_latency_cycles=latency)
    prog.execute()
    S, F = oracle(times, depths, latency)
    got = {(sp.process, sp.index): (sp.start, sp.end) for sp in prog.trace().spans}
    for k in range(K):
        for i in range(n):
            assert got[(f"s{k}", i)] == (S[k][i], F[k][i]), (k, i)
    assert prog.stats().total_cycles == max(F[k][-1] for k in range(K))
