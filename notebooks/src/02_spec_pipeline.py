# %% [markdown]
# # 02 · The spec's CSP pipeline
#
# Three processes — **loader** (F32 → F16), **computer** (square), **storer** (F16 → F32) — coupled by two
# bounded channels, exactly as in the PTO-RT v9 CSP example. `%%ptort` runs the cell, studies the pipeline it
# builds next to its data-parallel twin, and shows the diagram and both timelines.

# %%
%load_ext ptort_lab

# %%
import numpy as np
from ptort_lab import DType, In, Out, Tensor, Tile, kernel, tl
from ptort_lab.csp import Channel, Process, connect, consume, send

F32, F16 = DType.F32, DType.F16

# %% [markdown]
# The `%%ptort` line binds `DEPTH`, `TILE`, `TILES` and `CORES`; the cell builds with them, and its last
# expression is the pipeline to study. The summary line (cycles, µs, overlap %) is deterministic.

# %%
%%ptort --depth 2 --tile 128x128 --tiles 8 --show diagram,timeline -o spec
R, C = TILE

@kernel
def load_kernel(src: In[Tile[R, C, F32]], dst: Out[Tile[R, C, F16]]):
    tl.store(dst, tl.cast(tl.load(src), F16))

@kernel
def compute_kernel(input_tile: In[Tile[R, C, F16]], output_tile: Out[Tile[R, C, F16]]):
    x = tl.load(input_tile)
    tl.store(output_tile, tl.mul(x, x))

@kernel
def store_kernel(src: In[Tile[R, C, F16]], dst: Out[Tile[R, C, F32]]):
    tl.store(dst, tl.cast(tl.load(src), F32))

x = np.random.default_rng(7).standard_normal((TILES, R, C)).astype(np.float32)
X, Y = Tensor(data=x, name="X"), Tensor(data=np.zeros_like(x), name="Y")
T0, T1 = Tensor(shape=x.shape, dtype=F16, name="T0"), Tensor(shape=x.shape, dtype=F16, name="T1")

load_to_compute = Channel[Tensor](name="load_to_compute", depth=DEPTH)
compute_to_store = Channel[Tensor](name="compute_to_store", depth=DEPTH)
loader = (Process("loader").produces(load_to_compute)
          .body_func(lambda: [send(load_to_compute, load_kernel[t](src=X[t], dst=T0[t])) for t in range(TILES)]))
computer = (Process("computer").consumes(load_to_compute).produces(compute_to_store)
            .body_func(lambda: consume(load_to_compute, lambda t: send(
                compute_to_store, compute_kernel[t](input_tile=T0[t], output_tile=T1[t])))))
storer = (Process("storer").consumes(compute_to_store)
          .body_func(lambda: consume(compute_to_store, lambda t: store_kernel[t](src=T1[t], dst=Y[t]))))
connect(loader, computer, storer)

# %% [markdown]
# The result's summary, as text (the same text the cell shows above its figures):

# %% tags=["nbval-check-output"]
print(repr(spec))

# %% [markdown]
# The values are real: `Y` holds `float32(float16(X) * float16(X))`, bit for bit.

# %% tags=["nbval-check-output"]
expected = (x.astype(np.float16) * x.astype(np.float16)).astype(np.float32)
print("Y matches numpy exactly:", np.array_equal(Y.data, expected))

# %% [markdown]
# The result object keeps both runs: stats, traces, and the IR of each kernel with the pipe it runs on.

# %% tags=["nbval-check-output"]
print(spec.comparison.pipeline.stats().summary())

# %% tags=["nbval-check-output"]
print(spec.ir())

# %% [markdown]
# ## Depth 1: no overlap
# With one slot per channel a producer can only start tile `t+1` when the consumer has finished with tile `t`,
# so the stages take turns. Re-run the same cell body with `--depth 1` (the names it defined are still here):

# %%
%%ptort --depth 1 --show timeline --mode pipeline
load_to_compute = Channel[Tensor](name="load_to_compute", depth=DEPTH)
compute_to_store = Channel[Tensor](name="compute_to_store", depth=DEPTH)
loader = (Process("loader").produces(load_to_compute)
          .body_func(lambda: [send(load_to_compute, load_kernel[t](src=X[t], dst=T0[t])) for t in range(TILES)]))
computer = (Process("computer").consumes(load_to_compute).produces(compute_to_store)
            .body_func(lambda: consume(load_to_compute, lambda t: send(
                compute_to_store, compute_kernel[t](input_tile=T0[t], output_tile=T1[t])))))
storer = (Process("storer").consumes(compute_to_store)
          .body_func(lambda: consume(compute_to_store, lambda t: store_kernel[t](src=T1[t], dst=Y[t]))))
connect(loader, computer, storer)

# %% [markdown]
# The channel never holds more than one tile:

# %% tags=["nbval-check-output"]
print(repr(_ptort))
print("most tiles ever in load_to_compute:", _ptort.comparison.pipeline.trace().max_occupancy("load_to_compute"))

# %% [markdown]
# ## Perfetto
# `--trace-out` (or `spec.save_trace(path)`) writes a Chrome trace you can open at ui.perfetto.dev.

# %% tags=["nbval-check-output"]
import os, tempfile
path = os.path.join(tempfile.mkdtemp(), "spec.json")
spec.save_trace(path)
print("trace written:", os.path.getsize(path) > 0)
