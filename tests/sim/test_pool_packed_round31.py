"""The bandwidth pools on packed int64 arrays (memory.Pool over sim/packed.py): the same reservations as the plain
rule they implement, compiled (librt vecs) and interpreted (lists), and a pool that pickles."""
from __future__ import annotations

import os
import pickle
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from ptort_lab import compiled
from ptort_lab.sim import memory


class RulePool:
    """The pool's rule written plainly: stretches between breakpoints, each new transfer taking, stretch by stretch,
    ``min(cap, pool // (holders + 1), pool - used)`` until its bytes have moved (no fast paths)."""

    def __init__(self, bytes_per_cycle: int) -> None:
        self.pool = bytes_per_cycle
        self.times, self.used, self.holders = [0], [0], [0]

    def _split(self, t: int) -> int:
        i = max((k for k, x in enumerate(self.times) if x <= t), default=-1)
        if i < 0:
            self.times[:0], self.used[:0], self.holders[:0] = [t], [0], [0]
            return 0
        if self.times[i] != t:
            i += 1
            self.times.insert(i, t)
            self.used.insert(i, self.used[i - 1])
            self.holders.insert(i, self.holders[i - 1])
        return i

    def transfer(self, start: int, nbytes: int, cap: int) -> int:
        if nbytes <= 0:  # (nothing moves, nothing is reserved)
            return start
        i, t, left = self._split(start), start, nbytes
        while True:
            rate = min(cap, self.pool // (self.holders[i] + 1), self.pool - self.used[i])
            last = i + 1 == len(self.times)
            if rate > 0 and (last or rate * (self.times[i + 1] - t) >= left):
                end = t + -(-left // rate)
                j = self._split(end)
                for k in range(i, j):
                    self.used[k] += rate
                    self.holders[k] += 1
                return end
            if rate > 0:
                left -= rate * (self.times[i + 1] - t)
                self.used[i] += rate
                self.holders[i] += 1
            t = self.times[i + 1]
            i += 1

    def forget_before(self, t: int) -> None:
        i = max((k for k, x in enumerate(self.times) if x <= t), default=-1)
        if i > 0:
            del self.times[:i], self.used[:i], self.holders[:i]


# (start offset from the last forget, bytes, cap) per transfer; a forget moves the floor on by the given cycles
_ops = st.lists(st.one_of(
    st.tuples(st.just("transfer"), st.integers(0, 400), st.integers(0, 5000), st.sampled_from([1, 7, 60, 128, 850])),
    st.tuples(st.just("forget"), st.integers(0, 150), st.just(0), st.just(0))), max_size=60)


@settings(max_examples=300, deadline=None)
@given(pool_bytes=st.sampled_from([64, 850, 2550]), ops=_ops)
def test_the_pool_reserves_what_the_plain_rule_does(pool_bytes, ops):
    pool, rule = memory.Pool(pool_bytes), RulePool(pool_bytes)
    floor = 0
    for kind, a, nbytes, cap in ops:
        if kind == "forget":
            floor += a
            pool.forget_before(floor)
            rule.forget_before(floor)
        else:
            assert pool.transfer(floor + a, nbytes, cap) == rule.transfer(floor + a, nbytes, cap)
    assert (list(pool.times), list(pool.used), list(pool.holders)) == (rule.times, rule.used, rule.holders)


def test_a_pool_pickles_with_its_reservations():
    pool = memory.Pool(850)
    for start, nbytes in ((0, 6000), (10, 9000), (25, 300)):
        pool.transfer(start, nbytes, 60)
    copy = pickle.loads(pickle.dumps(pool))
    kept = (list(pool.times), list(pool.used), list(pool.holders))
    assert kept == ([0, 10, 25, 30, 100, 160], [60, 120, 180, 120, 60, 0], [1, 2, 3, 2, 1, 0])
    assert (list(copy.times), list(copy.used), list(copy.holders)) == kept
    assert copy.transfer(40, 1000, 60) == pool.transfer(40, 1000, 60) == 57


def test_the_arrays_are_packed_when_compiled_and_lists_when_interpreted():
    packed = compiled.loads_compiled("ptort_lab.sim.memory")
    assert packed == (not memory.__file__.endswith(".py"))
    assert type(memory.Pool(1).times).__name__ == ("vec[i64]" if packed else "list")
    code = "from ptort_lab.sim import memory; print(type(memory.Pool(1).times).__name__, memory.__file__[-3:])"
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, compiled.PURE_ENV: "1"},
                          capture_output=True, text=True, timeout=120)
    assert done.stdout.split() == ["list", ".py"], done.stderr[-2000:]
