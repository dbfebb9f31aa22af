#!/usr/bin/env python3
"""CSP pipeline example (PTO-RT v9 spec): load -> compute -> store over channels, run on the ptort_lab simulator.

Three processes pass tile indices through bounded channels while the tiles live in tensors:
    loader   F32 -> F16       (load_kernel: tl.load, tl.cast, tl.store)
    computer square in F16    (compute_kernel: tl.load, tl.mul, tl.store)
    storer   F16 -> F32       (store_kernel: tl.load, tl.cast, tl.store)
so Y[t] = float32(float16(X[t]) * float16(X[t])). The same work also runs data-parallel, and both results are
checked against plain numpy.

Usage:
    python examples/csp_pipeline/csp_pipeline_example.py [--size small|default|large] [--tiles N] [--tile-size S]
                                                         [--depth D]
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

try:
    import ptort_lab  # noqa: F401
except ImportError:  # running from a source checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from ptort_lab import Dense, DispatchPolicy, DType, In, Out, P, Tensor, Tile, TimingPolicy, kernel, tl, workload
from ptort_lab.csp import Channel, Event, Process, connect, consume, query, record, send, synchronize
from ptort_lab.dsl import steps
from ptort_lab.dsl.printer import kernel_op_summary
from ptort_lab.report import run_example

RULE = "=" * 70
SIZES = {"small": (2, 64), "default": (8, 128), "large": (64, 128)}  # (tiles, tile rows = cols)
F32, F16 = DType.F32, DType.F16
# Peak host memory per tile element (measured: the peak RSS grows by 33 bytes an element from 64 to 1024 tiles of
# 128x128): the float64 draw of the input, the tensors X, T0, T1, Y and Y_dp, the numpy reference and the check's
# temporaries.
HOST_BYTES_PER_ELEMENT = 32


def make_kernels(size: int):
    @kernel
    def load_kernel(src: In[Tile[size, size, F32]], dst: Out[Tile[size, size, F16]]):
        """Load an F32 tile and store it as F16."""
        tl.store(dst, tl.cast(tl.load(src), F16))

    @kernel
    def compute_kernel(input_tile: In[Tile[size, size, F16]], output_tile: Out[Tile[size, size, F16]]):
        """Square a tile elementwise in F16."""
        x = tl.load(input_tile)
        tl.store(output_tile, tl.mul(x, x))

    @kernel
    def store_kernel(src: In[Tile[size, size, F16]], dst: Out[Tile[size, size, F32]]):
        """Widen an F16 tile back to F32."""
        tl.store(dst, tl.cast(tl.load(src), F32))

    return load_kernel, compute_kernel, store_kernel


def host_memory_bytes() -> int | None:
    """This host's physical memory, or None where the OS does not say (no sysconf on Windows)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """The options, with --tiles and --tile-size filled in from --size when not given; refuses sizes that cannot
    run (< 1, more arrays than this host can hold, more tasks than the simulator lists) as usage errors."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", choices=sorted(SIZES), default="default",
                    help="small: 2 tiles of 64x64; default: the spec's 8 tiles of 128x128; large: 64 tiles of 128x128")
    ap.add_argument("--tiles", type=int, default=None, help="number of tiles, >= 1 (overrides --size)")
    ap.add_argument("--tile-size", type=int, default=None, help="tile rows = cols, >= 1 (overrides --size)")
    ap.add_argument("--depth", type=int, default=2, help="channel depth in buffer slots, >= 1 (default 2)")
    args = ap.parse_args(argv)
    for option, value in (("--tiles", args.tiles), ("--tile-size", args.tile_size), ("--depth", args.depth)):
        if value is not None and value < 1:  # (0 is not "the --size default": that is leaving the option out)
            ap.error(f"{option} must be >= 1, got {value}")
    n, size = SIZES[args.size]
    args.tiles = n if args.tiles is None else args.tiles
    args.tile_size = size if args.tile_size is None else args.tile_size
    needed, memory = args.tiles * args.tile_size ** 2 * HOST_BYTES_PER_ELEMENT, host_memory_bytes()
    if memory is not None and needed > memory:
        fits = min(memory // (args.tile_size ** 2 * HOST_BYTES_PER_ELEMENT), steps.MAX_TASKS // 3)
        ap.error(f"--tiles {args.tiles} of {args.tile_size}x{args.tile_size} would need about {needed:,} bytes "
                 f"({needed / 2**30:,.1f} GiB) of host memory (~{HOST_BYTES_PER_ELEMENT} bytes a tile element: the "
                 f"input, five tensors and the numpy reference), more than this host's {memory / 2**30:,.1f} GiB; "
                 + (f"use --tiles {fits} or fewer at --tile-size {args.tile_size}" if fits else
                    f"use a smaller --tile-size (the spec's is {SIZES['default'][1]})"))
    if 3 * args.tiles > steps.MAX_TASKS:  # (refused by the data-parallel run anyway, but only after minutes)
        ap.error(f"--tiles {args.tiles} makes {3 * args.tiles:,} tasks in the data-parallel run (3 a tile), more than "
                 f"the {steps.MAX_TASKS:,} the simulator lists (ptort_lab.dsl.steps.MAX_TASKS); use --tiles "
                 f"{steps.MAX_TASKS // 3} or fewer (a few thousand show the pipeline's steady state)")
    return args


def section(title: str) -> None:
    print()
    print(RULE)
    print(title)
    print(RULE)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    n, size = args.tiles, args.tile_size
    load_kernel, compute_kernel, store_kernel = make_kernels(size)

    x = np.random.default_rng(2026).standard_normal((n, size, size)).astype(np.float32)
    X = Tensor(data=x, dtype=F32, name="X")
    T0 = Tensor(shape=(n, size, size), dtype=F16, name="T0")
    T1 = Tensor(shape=(n, size, size), dtype=F16, name="T1")
    Y = Tensor(data=np.zeros_like(x), dtype=F32, name="Y")
    tiles = Dense[n]()

    print(RULE)
    print("CSP Pipeline Example - PTO-RT v9")
    print(RULE)
    print()
    print("Configuration:")
    print(f"  Tile size: {size}x{size}")
    print(f"  Number of tiles: {n}")
    print()
    print("Kernels (@kernel with tl.* primitives):")
    for k in (load_kernel, compute_kernel, store_kernel):
        print(f"  {k.name}: {kernel_op_summary(k.trace())}")

    section("1. CSP Pipeline Pattern")
    load_to_compute = Channel[Tensor](name="load_to_compute", depth=args.depth)
    compute_to_store = Channel[Tensor](name="compute_to_store", depth=args.depth)
    loader = (Process("loader")
              .produces(load_to_compute)
              .body_func(lambda: [send(load_to_compute, load_kernel[t](src=X[t], dst=T0[t])) for t in range(n)]))
    computer = (Process("computer")
                .consumes(load_to_compute)
                .produces(compute_to_store)
                .body_func(lambda: consume(load_to_compute, lambda t:
                                           send(compute_to_store,
                                                compute_kernel[t](input_tile=T0[t], output_tile=T1[t])))))
    storer = (Process("storer")
              .consumes(compute_to_store)
              .body_func(lambda: consume(compute_to_store, lambda t: store_kernel[t](src=T1[t], dst=Y[t]))))
    pipeline = connect(loader, computer, storer)
    print()
    print("Pipeline created:")
    print(f"  Channels: {load_to_compute.name} (depth={load_to_compute.depth})")
    print(f"            {compute_to_store.name} (depth={compute_to_store.depth})")
    print(f"  Processes: {' -> '.join(p.name for p in pipeline.processes)}")
    print(f"Pipeline structure: {type(pipeline).__name__}")
    print()
    print("Kernel IR (traced from tl.* primitives):")
    ir = load_kernel.trace()
    print(f"  load_kernel: {len(ir.ops)} operations")
    for op in ir.ops[:3]:
        print(f"    {op}")

    section("2. Simple CSP Workload (with P.pipe())")

    @workload
    def csp_workload():
        """Each statement inside P.pipe() becomes one stage, coupled by the channel."""
        with P.pipe():
            ch = Channel[Tensor](name="data_channel", depth=2)
            for t in P(tiles):
                send(ch, load_kernel[t](src=X[t], dst=T0[t]))
            consume(ch, lambda t: compute_kernel[t](input_tile=T0[t], output_tile=T1[t]))

    w = csp_workload()
    print(f"Workload created: {type(w).__name__}")

    section("3. Data-Parallel Equivalent (for comparison)")
    Y_dp = Tensor(data=np.zeros_like(x), dtype=F32, name="Y_dp")

    @workload
    def parallel_workload():
        """All tiles independent; the three kernels of one tile depend on each other through T0/T1."""
        for t in P(tiles):
            load_kernel[t](src=X[t], dst=T0[t])
            compute_kernel[t](input_tile=T0[t], output_tile=T1[t])
            store_kernel[t](src=T1[t], dst=Y_dp[t])

    dp_workload = parallel_workload()
    scheduled = (dp_workload
                 .dispatch(DispatchPolicy.round_robin(4))
                 .streams(2)
                 .timing(TimingPolicy.immediate)
                 .compile())
    print(f"Program compiled: {type(scheduled).__name__}")
    tasks = dp_workload.enumerate()
    print(f"Tasks enumerated: {len(tasks)}")
    counts: dict[str, int] = {}
    for t in tasks:
        counts[t.kernel] = counts.get(t.kernel, 0) + 1
    print("Task breakdown:")
    for name, count in counts.items():
        print(f"  {name}: {count} tasks")

    section("4. Event Synchronization")
    print()
    print("Event Synchronization Demo:")
    load_done = Event(name="load_done")
    compute_done = Event(name="compute_done")
    print(f"  Created events: {load_done.name}, {compute_done.name}")
    record(load_done)
    print(f"  Recorded: {load_done.name}")
    print(f"  Query {load_done.name}: {query(load_done)}")
    synchronize(load_done)
    print(f"  Synchronized on: {load_done.name}")

    section("5. Execution")
    print("Executing data-parallel workload...")
    scheduled.execute()
    scheduled.synchronize()
    print("Execution complete!")
    csp_program = pipeline.compile()
    csp_program.execute()

    reference = (x.astype(np.float16) * x.astype(np.float16)).astype(np.float32)
    results = [("CSP pipeline", Y.data, csp_program), ("Data-parallel", Y_dp.data, scheduled)]

    section("CSP Pipeline Example Summary")
    print()
    print("Key v9 CSP patterns demonstrated:")
    print("  1. Channel[T](name=, depth=): bounded channel; depth = buffer slots (2 = double buffering)")
    print("  2. Process(name).consumes()/.produces()/.body_func(): named pipeline stages")
    print("  3. send(ch, kernel[t](...)) / consume(ch, lambda t: ...): tokens pass, tiles stay in tensors")
    print("  4. connect(loader, computer, storer): composition with wiring checks")
    print("  5. Event + record/query/synchronize: synchronisation points")
    print("  6. P.pipe(): each statement of the block is a pipeline stage")
    print()
    print("Results (Y = float32(float16(X) * float16(X)), checked against numpy):")
    ok = True
    for label, y, program in results:
        err = float(np.max(np.abs(y - reference)))
        passed = bool(np.array_equal(y, reference))
        ok &= passed
        stats = program.stats()
        print(f"  {label:<14} max abs error {err:g}: {'PASS' if passed else 'FAIL'}  "
              f"({stats.task_count} tasks, {stats.total_cycles} cycles, overlap {stats.overlap_pct:.1f}%)")
    return 0 if ok else 1


if __name__ == "__main__":
    run_example(main)  # a ptort_lab error: its message and exit status 2, no traceback
