# %% [markdown]
# # 05 · Inside the NPU model
#
# Every run is priced on a modelled Ascend 910B-class NPU. Each constant comes from `NPU_MODEL.md` with its
# source; this notebook shows the pieces: machine presets, the pipe each op runs on, how double buffering
# *emerges* from buffer capacity, placement of pipeline stages, and exporting a run to Perfetto.

# %%
import numpy as np
from ptort_lab import (MACHINES, Channel, DType, Dense, In, Out, P, Tensor, Tile, ascend_910b, connect, consume,
                       for_each, kernel, process, send, task, tl, workload)
from ptort_lab.viz import kernel_view, plot_timeline

F16, F32 = DType.F16, DType.F32

# %% [markdown]
# ## Machine presets
# `ascend_910b` (the 910B2) is the default; `machine.replace(...)` derives a variant.

# %% tags=["nbval-check-output"]
for name, m in MACHINES.items():
    print(f"{name:<13} {m.clock_hz / 1e9:.2f} GHz  {m.num_cores} AI cores ({m.num_vector_cores} AIV)  "
          f"UB {m.ub_bytes // 1024} KiB  L1 {m.l1_bytes // 1024} KiB  HBM {m.hbm_bytes_per_cycle} B/cycle  "
          f"channel hop {m.channel_latency_cycles} cycles")

# %% [markdown]
# ## Which pipe runs each op
# Loads from global memory go to **MTE2**, vector work to **V**, stores to **MTE3** (on a vector core); a matmul
# moves its operands L1 → L0A/L0B on **MTE1**, multiplies on the **CUBE**, and leaves through **FIX**.

# %% tags=["nbval-check-output"]
@kernel
def add(x: In[Tile[128, 192, F16]], y: In[Tile[128, 192, F16]], z: Out[Tile[128, 192, F16]]):
    tl.store(z, tl.add(tl.load(x), tl.load(y)))

@kernel
def gemm(a: In[Tile[128, 64, F16]], b: In[Tile[64, 256, F16]], c: Out[Tile[128, 256, F32]]):
    tl.store(c, tl.matmul(tl.load(a), tl.load(b)))

print(kernel_view(add).text)
print()
print(kernel_view(gemm).text)

# %% [markdown]
# ## Double buffering, from capacity alone
# A data-parallel core issues its tasks in order and each pipe runs in order. A task's tiles occupy the 192 KiB
# Unified Buffer while they live, so the next task can start loading only when its tiles fit beside the current
# ones. An F16 128×192 add holds 96 KiB (two tasks fit: the next load overlaps this add); in F32 it holds 192 KiB
# (one fits: the pipes take turns). Nothing in the model says "double buffer": it follows from the sizes.
# (One vector unit per core here, so both tasks share its pipes.)

# %%
def adds(dtype, n=4):
    @kernel
    def add_tile(x: In[Tile[128, 192, dtype]], y: In[Tile[128, 192, dtype]], z: Out[Tile[128, 192, dtype]]):
        tl.store(z, tl.add(tl.load(x), tl.load(y)))
    shape = (n, 128, 192)
    X, Y, Z = (Tensor(shape=shape, dtype=dtype) for _ in range(3))

    @workload
    def many():
        for t in P(Dense[n]()):
            add_tile[t](x=X[t], y=Y[t], z=Z[t])
    program = many().compile(machine=ascend_910b.replace(aiv_per_core=1), compute_values=False)
    return program.execute()

runs = {dtype: adds(dtype) for dtype in (F16, F32)}

# %% tags=["nbval-check-output"]
for dtype, program in runs.items():
    s = program.stats()
    print(f"{dtype}: {s.total_cycles} cycles, MTE2 busy {s.lane_busy_pct['AIV0.MTE2']:.1f}%, "
          f"V busy {s.lane_busy_pct['AIV0.V']:.1f}%")

# %% tags=["nbval-ignore-output"]
plot_timeline(runs[F16], lanes="pipe", title="F16: two tasks fit in UB")

# %% tags=["nbval-ignore-output"]
plot_timeline(runs[F32], lanes="pipe", title="F32: one task fills UB")

# %% [markdown]
# ## Placing pipeline stages
# By default each CSP process gets its own core and every channel hop costs the machine's cross-core latency
# (1000 cycles, GM-staged). `place("shared")` puts all stages on one core — Ascend's CopyIn/Compute/CopyOut
# pattern — where they share that core's pipes and their queues stay on chip. The channel depth is then the
# number of UB buffers per queue, and it must fit: too deep a queue is a `CapacityError` with the numbers.

# %%
def spec_pipeline(depth, n=8):
    @kernel
    def load_kernel(src: In[Tile[128, 128, F32]], dst: Out[Tile[128, 128, F16]]):
        tl.store(dst, tl.cast(tl.load(src), F16))

    @kernel
    def compute_kernel(src: In[Tile[128, 128, F16]], dst: Out[Tile[128, 128, F16]]):
        x = tl.load(src)
        tl.store(dst, tl.mul(x, x))

    @kernel
    def store_kernel(src: In[Tile[128, 128, F16]], dst: Out[Tile[128, 128, F32]]):
        tl.store(dst, tl.cast(tl.load(src), F32))

    x = np.random.default_rng(0).standard_normal((n, 128, 128)).astype(np.float32)
    X, Y = Tensor(data=x), Tensor(data=np.zeros_like(x))
    T0, T1 = Tensor(shape=x.shape, dtype=F16), Tensor(shape=x.shape, dtype=F16)
    l2c, c2s = Channel(name="load_to_compute", depth=depth), Channel(name="compute_to_store", depth=depth)
    loader = process("loader").produces(l2c).body(
        for_each(Dense[n](), lambda t: send(l2c, task(load_kernel, [t], {"src": X[t], "dst": T0[t]}))))
    computer = process("computer").consumes(l2c).produces(c2s).body(
        consume(l2c, lambda t: send(c2s, task(compute_kernel, [t], {"src": T0[t], "dst": T1[t]}))))
    storer = process("storer").consumes(c2s).body(
        consume(c2s, lambda t: task(store_kernel, [t], {"src": T1[t], "dst": Y[t]})))
    return connect(loader, computer, storer)

# %% tags=["nbval-check-output"]
for placement in (None, "shared"):
    for depth in (1, 2):
        pipe = spec_pipeline(depth)
        if placement:
            pipe = pipe.place(placement)
        s = pipe.compile().execute().stats()
        print(f"{placement or 'one core each':<14} depth {depth}: {s.total_cycles:>6} cycles, "
              f"overlap {s.overlap_pct:5.1f}%")
try:
    spec_pipeline(4).place("shared").compile().execute()
except Exception as e:
    print(type(e).__name__, "-", str(e).splitlines()[0])

# %% tags=["nbval-ignore-output"]
shared = spec_pipeline(2).place("shared").compile().execute()
plot_timeline(shared, lanes="pipe", title="spec pipeline, one core, depth 2")

# %% [markdown]
# ## Another SKU and a what-if
# The 910B4 has fewer cores, a lower clock and half the HBM bandwidth; `replace` answers "what if HBM were
# twice as fast?". The run below streams 960 tiles (60 MiB read, 60 MiB written) over 24 cores (20 on the 910B4):
# enough that reading from HBM, not the ~6 µs launch, sets its time. "HBM busy" is the HBM traffic
# (`stats().memory["hbm_bytes"]`) over what the HBM could move in the whole run. On the 910B2 that traffic is the
# reads alone: the writes land in the write-back L2 and stay there (the 910B4's smaller L2 writes some back).
# Twice the bandwidth makes the run about 1.7x faster, not 2x: the launch and each core's own pipes do not speed
# up. With 48 tiles the same what-if would change almost nothing, because the launch would dominate.

# %% tags=["nbval-check-output"]
def stream(machine, n=960):
    @kernel
    def scale(x: In[Tile[128, 256, F16]], y: Out[Tile[128, 256, F16]]):
        tl.store(y, tl.mul(tl.load(x), 2.0))
    X, Y = Tensor(shape=(n, 128, 256), dtype=F16), Tensor(shape=(n, 128, 256), dtype=F16)

    @workload
    def w():
        for t in P(Dense[n]()):
            scale[t](x=X[t], y=Y[t])
    from ptort_lab import DispatchPolicy
    cores = min(machine.num_cores, 24)
    return w().dispatch(DispatchPolicy.round_robin(cores)).compile(machine=machine, compute_values=False).execute()

for label, m in (("910B2", ascend_910b), ("910B4", MACHINES["ascend_910b4"]),
                 ("910B2, 2x HBM", ascend_910b.replace(hbm_bytes_per_cycle=2 * ascend_910b.hbm_bytes_per_cycle))):
    s = stream(m).stats()
    hbm_busy = s.memory["hbm_bytes"] / (m.hbm_bytes_per_cycle * s.total_cycles)
    print(f"{label:<14} {s.total_cycles:>7} cycles = {s.time_us:7.2f} us, HBM busy {hbm_busy:4.0%}")

# %% [markdown]
# ## Perfetto / Chrome trace export
# `trace.save("run.json")` writes Chrome Trace Event JSON: one track per pipe per core, channel fill as counters.
# Open it at ui.perfetto.dev. `Trace.load` reads it back unchanged, and the same run always gives the same bytes.

# %% tags=["nbval-check-output"]
import os
import tempfile
from ptort_lab import Trace

trace = shared.trace()
path = os.path.join(tempfile.mkdtemp(), "run.json")
trace.save(path)
again = spec_pipeline(2).place("shared").compile().execute().trace()
print("spans:", len(trace.spans), " reloads equal:", Trace.load(path) == trace,
      " same bytes on a rerun:", again.to_chrome_json() == trace.to_chrome_json())
