# %% [markdown]
# # 06 · Errors and how to read them
#
# Every ptort_lab error says **what** is wrong (the API and the values), **where** (your file and line — in a
# notebook, the cell line — plus the kernel or process and the simulated time), and **how to fix it**. In a
# `%%ptort` cell you get that short message instead of a framework traceback; it is still a real error, so a
# tested notebook fails on it. The cells below fail on purpose (they carry the `raises-exception` tag).

# %%
%load_ext ptort_lab
import numpy as np
from ptort_lab import DType, In, Out, Tensor, Tile, kernel, tl
from ptort_lab.csp import Channel, Process, connect, consume, send

F32 = DType.F32

# %% [markdown]
# ## A type error inside a kernel
# Tracing checks shapes and dtypes. The message names the op, both operands, the kernel, the cell line and its
# text, and a fix.

# %% tags=["raises-exception"]
%%ptort
@kernel
def bad_add(a: In[Tile[64, 64, F32]], b: In[Tile[64, 32, F32]], c: Out[Tile[64, 64, F32]]):
    tl.store(c, tl.add(tl.load(a), tl.load(b)))

# %% [markdown]
# ## Wiring that cannot run
# `connect()` checks every channel has a producer and a consumer, that processes declare what they use, and that
# no cycle is left without buffer slots. Here nobody consumes `results`:

# %% tags=["raises-exception"]
%%ptort
@kernel
def copy(src: In[Tile[64, 64, F32]], dst: Out[Tile[64, 64, F32]]):
    tl.store(dst, tl.load(src))

X, Y = Tensor(shape=(4, 64, 64), dtype=F32), Tensor(shape=(4, 64, 64), dtype=F32)
results = Channel[Tensor](name="results", depth=DEPTH)
producer = Process("producer").produces(results).body_func(
    lambda: [send(results, copy[t](src=X[t], dst=Y[t])) for t in range(4)])
connect(producer)

# %% [markdown]
# ## A deadlock
# Two processes that each wait for the other never start. The simulator does not hang: it stops at once and
# lists who waits on what (at which line) and how full each channel is, pointing at the first blocked wait.

# %% tags=["raises-exception"]
%%ptort --mode pipeline
ping = Channel[Tensor](name="ping", depth=1)
pong = Channel[Tensor](name="pong", depth=1)
left = Process("left").consumes(pong).produces(ping).body_func(
    lambda: consume(pong, lambda t: send(ping, copy[t](src=X[t], dst=Y[t]))))
right = Process("right").consumes(ping).produces(pong).body_func(
    lambda: consume(ping, lambda t: send(pong, copy[t](src=Y[t], dst=X[t]))))
connect(left, right)

# %% [markdown]
# ## Too big for the chip
# A 256×256 F32 tile is 256 KiB; a vector core's Unified Buffer holds 192 KiB. The error gives the numbers and
# suggests a smaller tile.

# %% tags=["raises-exception"]
%%ptort --mode data-parallel
@kernel
def huge(src: In[Tile[256, 256, F32]], dst: Out[Tile[256, 256, F32]]):
    tl.store(dst, tl.load(src))

from ptort_lab import P, Dense, workload
A, B = Tensor(shape=(2, 256, 256), dtype=F32), Tensor(shape=(2, 256, 256), dtype=F32)

@workload
def too_big():
    for t in P(Dense[2]()):
        huge[t](src=A[t], dst=B[t])

too_big()

# %% [markdown]
# ## A bad option
# Mistakes on the `%%ptort` line are one-line usage errors, with a suggestion when the name is close.

# %% tags=["raises-exception"]
%%ptort --machine ascend_910x
copy

# %% [markdown]
# ## In plain Python
# Outside the magic you get normal tracebacks; the error objects carry the parts separately.

# %% tags=["nbval-check-output"]
from ptort_lab import PtortError
try:
    Channel(name="q", depth=-1)
except PtortError as e:
    print("type: ", type(e).__name__, "| also a ValueError:", isinstance(e, ValueError))
    print("what: ", e.what)
    print("hint: ", e.hint)

# %% tags=["nbval-check-output"]
from ptort_lab import task
try:
    task(copy, [0], {"src": X[0], "dts": Y[0]})
except PtortError as e:
    print(type(e).__name__, "-", e.what)
    print("hint:", e.hint)
