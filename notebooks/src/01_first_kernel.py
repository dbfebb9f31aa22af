# %% [markdown]
# # 01 · Your first tile kernel and its IR
#
# A **kernel** is a Python function over *tiles* (2-D blocks of a tensor that fit on-chip). `@kernel` runs the
# function once on symbolic tiles and records every `tl.*` call as one op of a **Kernel IR**. The annotations
# (`In[Tile[rows, cols, dtype]]`, `Out[...]`) give every value its real shape and dtype.

# %%
import numpy as np
from ptort_lab import DType, Dense, In, Out, P, Tensor, Tile, kernel, tl, workload

F32, F16 = DType.F32, DType.F16

# %% [markdown]
# The spec's `load_kernel`: load an F32 tile, cast it to F16, store it.

# %% tags=["nbval-check-output"]
@kernel
def load_kernel(src: In[Tile[128, 128, F32]], dst: Out[Tile[128, 128, F16]]):
    x = tl.load(src)
    tl.store(dst, tl.cast(x, F16))

ir = load_kernel.trace()
print(f"load_kernel: {len(ir.ops)} operations")
for op in ir.ops:
    print("   ", op)

# %% [markdown]
# `str(ir)` is the full listing: one line per op, `name: type = op[params] args`. Temporaries are named
# `a, b, c, ...` when printed, so the same kernel always prints the same text.

# %% tags=["nbval-check-output"]
print(ir)

# %% [markdown]
# A richer kernel: RMSNorm of each row, `y = x * rsqrt(mean(x²) + eps) * g`. Reductions give `[rows, 1]`
# vectors that broadcast back over the row; Python operators trace the same `tl` ops.

# %% tags=["nbval-check-output"]
@kernel
def rmsnorm(x: In[Tile[16, 64, F32]], g: In[Tile[1, 64, F32]], y: Out[Tile[16, 64, F32]]):
    v = tl.load(x)
    inv = tl.rsqrt(tl.rowmean(v * v) + 1e-6)
    tl.store(y, v * inv * tl.load(g))

print(rmsnorm.trace())

# %% [markdown]
# Shapes and dtypes are checked while tracing. A mistake is reported with the op, the operands, your line and a
# fix (more in notebook 06):

# %% tags=["nbval-check-output"]
try:
    @kernel
    def broken(a: In[Tile[16, 64, F32]], b: In[Tile[64, 16, F32]], c: Out[Tile[16, 64, F32]]):
        tl.store(c, tl.add(tl.load(a), tl.load(b)))
except Exception as e:
    print(type(e).__name__, "-", str(e).splitlines()[0])

# %% [markdown]
# ## Running it
# Kernels run as **tasks** of a workload. `for t in P(tiles)` is a parallel loop; `rmsnorm[t](...)` launches the
# kernel on tile `t` of each tensor. The simulator computes the values with numpy, op by op in each op's dtype,
# and the time on the modelled NPU.

# %% tags=["nbval-check-output"]
rng = np.random.default_rng(0)
x = rng.standard_normal((4, 16, 64)).astype(np.float32)
g = rng.standard_normal((1, 1, 64)).astype(np.float32)
X, G, Y = Tensor(data=x), Tensor(data=g), Tensor(data=np.zeros_like(x))

@workload
def norm_all():
    for t in P(Dense[4]()):
        rmsnorm[t](x=X[t], g=G[0], y=Y[t])

program = norm_all().compile()
program.execute()
expected = x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + 1e-6) * g[0]
print("tasks:", [f"{t.kernel}[{t.params[0]}]" for t in program.enumerate()])
print("max abs error vs numpy:", float(np.abs(Y.data - expected).max()) < 1e-5)
print(program.stats().summary())
