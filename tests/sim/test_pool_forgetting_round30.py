"""The bandwidth pools forget their reservations before each task's start (memory.Pool.forget_before), which is
exact only if no later transfer starts before that point. The point was the start a core's late block moved the
task to, and other cores' tasks still transferred before it: priced against a pool emptier than it was (the
data-parallel example's gate on 24 cores 19,561 cycles instead of 19,991; notebook 05's stream 1 % fast). Now each
task's own start, which the engine gives in time order. The pools are compiled classes in the default build, so the
check runs in a child Python on the plain ones."""
from __future__ import annotations

import os
import subprocess
import sys
import textwrap

CHECK = textwrap.dedent('''
    from ptort_lab import DType, Dense, DispatchPolicy, In, Out, P, Tensor, Tile, kernel, tl, workload
    from ptort_lab.sim import memory

    forgot, early, total = {}, [0], [0]
    forget, transfer = memory.Pool.forget_before, memory.Pool.transfer

    def forget_before(self, t):
        forgot[id(self)] = max(forgot.get(id(self), 0), t)
        forget(self, t)

    def counted(self, data_start, nbytes, cap):
        total[0] += 1
        early[0] += data_start < forgot.get(id(self), 0)
        return transfer(self, data_start, nbytes, cap)

    memory.Pool.forget_before, memory.Pool.transfer = forget_before, counted

    @kernel
    def scale(x: In[Tile[128, 256, DType.F16]], y: Out[Tile[128, 256, DType.F16]]):
        tl.store(y, tl.mul(tl.load(x), 2.0))

    n = 240
    X, Y = Tensor(shape=(n, 128, 256), dtype=DType.F16), Tensor(shape=(n, 128, 256), dtype=DType.F16)

    @workload
    def w():
        for t in P(Dense[n]()):
            scale[t](x=X[t], y=Y[t])

    w().dispatch(DispatchPolicy.round_robin(24)).compile(compute_values=False).execute()
    print(total[0], early[0])
''')


def test_no_transfer_starts_before_the_point_its_pool_forgot():
    """240 memory-bound tasks on 24 cores, whose blocks start 150 cycles apart: every GM transfer (480) starts at or
    after the last point its pool forgot (72 did not before)."""
    env = {**os.environ, "PTORT_LAB_PURE_PYTHON": "1"}
    done = subprocess.run([sys.executable, "-c", CHECK], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["480", "0"]
