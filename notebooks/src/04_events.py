# %% [markdown]
# # 04 · Events and synchronization
#
# Channels couple processes through buffer slots. **Events** are lighter: `record(ev)` signals, `synchronize(ev)`
# waits for (and takes) one signal, `query(ev)` tells whether a signal is pending. Signals count, so a producer
# can record several times before anyone waits.

# %%
import numpy as np
from ptort_lab import (DType, Dense, Event, In, InOut, Out, PinnedCosts, Tensor, Tile, connect, for_each, kernel,
                       process, query, record, synchronize, task, tl)

# %% [markdown]
# ## On the host
# Outside any process the calls act at once, exactly as in the spec's Event demo. The host has no other thread that
# could record an event, so `synchronize` never blocks: with no pending signal it raises straight away.

# %% tags=["nbval-check-output"]
load_done = Event(name="load_done")
print("query before record:", query(load_done))
record(load_done)
print("query after record: ", query(load_done))
synchronize(load_done)
print("query after sync:   ", query(load_done))
try:
    synchronize(load_done)
except Exception as e:
    print(type(e).__name__, "-", str(e).splitlines()[0])

# %% [markdown]
# ## Inside processes
# Inside a process body, `record` and `synchronize` are steps ordered in *simulated* time. Here a producer fills
# tile `t` of a tensor and records `filled`; a consumer waits for one signal per tile before it reads the tile. No
# data travels through the event: it only orders the two processes. Costs are pinned (`cycles=`) so the timeline is
# easy to check by hand: the producer takes 30 cycles a tile, the consumer 10, the event hop 5.

# %%
F32 = DType.F32
x = np.arange(4 * 8 * 8, dtype=np.float32).reshape(4, 8, 8)
A, B = Tensor(data=np.zeros_like(x)), Tensor(data=np.zeros_like(x))
X = Tensor(data=x)

@kernel
def fill(src: In[Tile[8, 8, F32]], dst: Out[Tile[8, 8, F32]]):
    tl.store(dst, tl.load(src))

@kernel
def double(src: In[Tile[8, 8, F32]], dst: Out[Tile[8, 8, F32]]):
    tl.store(dst, tl.mul(tl.load(src), 2.0))

filled = Event(name="filled")
producer = process("producer").body(for_each(Dense[4](), lambda t: [
    task(fill, [t], {"src": X[t], "dst": A[t]}, cycles=30),
    record(filled)]))
consumer = process("consumer").body(for_each(Dense[4](), lambda t: [
    synchronize(filled),
    task(double, [t], {"src": A[t], "dst": B[t]}, cycles=10)]))
program = connect(producer, consumer).compile(cost_model=PinnedCosts(), channel_latency_cycles=5)
_ = program.execute()

# %% tags=["nbval-check-output"]
for s in program.trace().spans:
    print(f"{s.process:<9} {s.name:<7} tile {s.index}  cycles {s.start:>3} .. {s.end:>3}")
print("B == 2 * X:", np.array_equal(B.data, 2 * x))

# %% [markdown]
# The consumer's tile `t` starts at `30 (t + 1) + 5`: the producer's record at the end of tile `t`, plus the hop.
# The waits show up as stalls of the consumer:

# %% tags=["nbval-check-output"]
for st in program.trace().stalls:
    print(f"{st.process:<9} {st.reason:<22} {st.start:>3} .. {st.end:>3}")
print(program.stats().summary())

# %% [markdown]
# ## A wait that can never end
# If the only record of the event comes after the wait (here the waiter records it itself, once its task is done),
# the simulator does not hang: it reports a deadlock with the simulated time, who waits on what, and every channel's
# fill. (An event that no process of the pipeline records at all is refused earlier, by `connect()`, at the
# `synchronize` line.)

# %% tags=["nbval-check-output"]
late = Event(name="recorded_too_late")
waiter = process("waiter").body(for_each(Dense[1](), lambda t: [synchronize(late),
                                                               task(double, [t], {"src": A[t], "dst": B[t]}),
                                                               record(late)]))
try:
    connect(waiter).compile(cost_model=PinnedCosts()).execute()
except Exception as e:
    print(type(e).__name__, "-", str(e).splitlines()[0])
