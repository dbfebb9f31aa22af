"""The pipeline bench's K-stage chain with pinned costs, shared by the tests that compare run modes on it."""
from __future__ import annotations

from typing import Any

from ptort_lab import Channel, Dense, connect, consume, for_each, kernel, process, send, task


def linear(n: int, cycles: tuple[int, ...] = (100, 60, 100), depth: int = 2) -> Any:
    """s0 -> c0 -> s1 -> ...: empty kernels pinned to ``cycles[k]``, over ``n`` items."""
    chans = [Channel(name=f"c{k}", depth=depth) for k in range(len(cycles) - 1)]
    procs = []
    for k, cyc in enumerate(cycles):
        work = (lambda kn: lambda i: task(kn, [i], {}))(kernel(cycles=cyc, name=f"s{k}")(lambda: None))
        body = (lambda ch, wk: lambda i: send(ch, wk(i)))(chans[k], work) if k + 1 < len(cycles) else work
        p = process(f"s{k}").body(for_each(Dense[n](), body) if k == 0 else consume(chans[k - 1], body))
        if k:
            p.consumes(chans[k - 1])
        if k + 1 < len(cycles):
            p.produces(chans[k])
        procs.append(p)
    return connect(procs)
