"""Builders shared by the viz tests: the spec pipeline, a pinned two-stage pipeline, an HTML-injection name."""
from __future__ import annotations

from ptort_lab import Channel, Process, connect, consume, send, task

XSS = "<img src=x onerror=alert(1)>"


def spec_pipeline_of(k, d, depth: int = 2):
    """The spec's loader -> computer -> storer pipeline over channels of ``depth`` slots."""
    l2c = Channel(name="load_to_compute", depth=depth)
    c2s = Channel(name="compute_to_store", depth=depth)
    loader = (Process("loader").produces(l2c)
              .body_func(lambda: [send(l2c, k.load[t](src=d.X[t], dst=d.T[t])) for t in range(d.n)]))
    computer = (Process("computer").consumes(l2c).produces(c2s)
                .body_func(lambda: consume(l2c, lambda t: send(c2s, k.compute[t](input_tile=d.T[t],
                                                                                 output_tile=d.U[t])))))
    storer = (Process("storer").consumes(c2s)
              .body_func(lambda: consume(c2s, lambda t: k.store[t](src=d.U[t], dst=d.Y[t]))))
    return connect(loader, computer, storer)


def two_stage(stages, producer: str = "producer", consumer: str = "consumer", tiles: int = 4):
    """producer (100 cycles per tile) -> ch (depth 2) -> consumer (50 cycles per tile), with pinned costs."""
    ch = Channel(name="ch", depth=2)
    prod = Process(producer).produces(ch).body_func(
        lambda: [send(ch, task(stages.a, [i], {}, cycles=100)) for i in range(tiles)])
    cons = Process(consumer).consumes(ch).body_func(lambda: consume(ch, lambda t: task(stages.b, [t], {}, cycles=50)))
    return connect(prod, cons)
