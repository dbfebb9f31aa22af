"""Dependencies of data-parallel tasks (sim/deps.py): host kernels registered with ``program.register_kernel`` read
and write the tensors they are given and are called in task order; memory an array does not own (an ``as_strided``
window, a memoryview, a buffer) is the storage of what owns it."""
from __future__ import annotations

import types

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.lib.stride_tricks import as_strided

from ptort_lab import Dense, DispatchPolicy, DType, In, Out, P, Tensor, Tile, kernel, task, tl, workload
from ptort_lab.dsl.steps import enumerate_tasks
from ptort_lab.dsl.tasks import Task, running_host_kernels
from ptort_lab.dsl.types import Direction, TensorView
from ptort_lab.sim.deps import RegionKeys, RegionMap, infer_dependencies

R, C, F32 = 64, 64, DType.F32
T = Tile[R, C, F32]


@kernel
def produce(x: In[T], y: Out[T]):
    """Slow (many vector ops), ending as all ones: a task listed after it on another core starts first."""
    v = tl.load(x)
    for _ in range(20):
        v = tl.exp(tl.muls(v, 0.0))
    tl.store(y, v)


@kernel
def copy(x: In[T], y: Out[T]):
    tl.store(y, tl.load(x))


def _on_cores(cores_of):
    """Affinity by (kernel name, first param) -> core, over 4 cores."""
    return DispatchPolicy.affinity(lambda t: cores_of(t.kernel, t.params[0]), 4)


# -- 1. host kernels ---------------------------------------------------------------------------------------------------
def _snapshot_workload():
    X = Tensor(data=np.zeros((2, R, C), np.float32))
    Y = Tensor(data=np.zeros((2, R, C), np.float32))

    @workload
    def w():
        produce[0](x=X[0], y=X[1])  # keeps core 0 busy first
        produce[1](x=X[0], y=Y[0])  # writes Y[0] = 1
        task("snapshot", [2], [Y[0]])  # host kernel: reads Y[0] (list resources, as the reference passes them)
    return w, Y


def test_a_host_kernel_sees_what_the_kernel_listed_before_it_wrote():
    w, Y = _snapshot_workload()
    seen: list[float] = []
    program = w().dispatch(_on_cores(lambda k, p: 1 if k == "snapshot" else 0)).compile()
    program.register_kernel("snapshot", lambda y: seen.append(float(y.sum())))
    program.execute()
    assert seen == [float(R * C)] and float(Y.data[0].sum()) == R * C
    with running_host_kernels({"snapshot": print}):
        assert infer_dependencies(enumerate_tasks(w())) == [[], [], [1]]


def test_a_task_named_by_string_without_a_host_kernel_still_touches_nothing():
    w, _ = _snapshot_workload()
    assert infer_dependencies(enumerate_tasks(w())) == [[], [], []]
    with running_host_kernels({"other": print}):
        assert infer_dependencies(enumerate_tasks(w())) == [[], [], []]


def test_a_kernel_listed_after_a_host_kernel_reads_what_it_wrote():
    X = Tensor(data=np.zeros((2, R, C), np.float32))
    Y = Tensor(data=np.zeros((2, R, C), np.float32))
    Z = Tensor(data=np.zeros((2, R, C), np.float32))

    def fill(y, value):
        y[...] = value

    @workload
    def w():
        produce[0](x=X[0], y=X[1])  # keeps core 0 busy: the fill waits behind it
        task("fill", [1], {"y": Y[1], "value": 7.0})  # dict resources
        copy[1](x=Y[1], y=Z[1])  # on core 1: must wait for the fill

    program = w().dispatch(_on_cores(lambda k, p: 1 if k == "copy" else 0)).compile()
    program.register_kernel("fill", fill)
    program.execute()
    np.testing.assert_array_equal(Z.data[1], np.full((R, C), 7.0, np.float32))
    with running_host_kernels({"fill": fill}):
        assert infer_dependencies(enumerate_tasks(w())) == [[], [], [1]]


def test_host_kernels_are_called_in_task_order():
    """Host kernels share Python state (here a list), so they run in task order, as documented, even with no tensor
    among their resources; kernel tasks do not wait for such a host kernel."""
    X = Tensor(data=np.zeros((2, R, C), np.float32))
    calls: list[int] = []

    @workload
    def w():
        produce[0](x=X[0], y=X[1])  # core 0, slow
        task("log", [0], [0])  # core 0, after it
        task("log", [1], [1])  # core 1: free at once, but called after log 0
        copy[2](x=X[0], y=X[0])

    program = w().dispatch(_on_cores(lambda k, p: 0 if p == 0 else 1 if k == "log" else 2)).compile()
    program.register_kernel("log", calls.append)
    program.execute()
    assert calls == [0, 1]
    with running_host_kernels({"log": calls.append}):
        assert infer_dependencies(enumerate_tasks(w())) == [[], [], [1], [0]]


# -- 2. memory an array does not own -----------------------------------------------------------------------------------
def _window_run(window_of):
    """Tasks write buf[t], then read it through ``window_of(buf)`` on other cores: sequential semantics if the
    window is known to be buf's memory."""
    n = 2
    src = np.zeros((n, R, C), np.float32)
    buf = np.zeros((n, R, C), np.float32)
    S, S2, B = Tensor(data=src), Tensor(data=np.zeros_like(src)), Tensor(data=buf)
    V, OUT = Tensor(data=window_of(buf)), Tensor(data=np.zeros_like(src))

    @workload
    def w():
        for t in P(Dense[n]()):
            produce[t](x=S[t], y=S2[t])  # keeps cores 0 and 1 busy first
        for t in P(Dense[n]()):
            produce[t](x=S[t], y=B[t])  # writes buf[t] = 1
        for t in P(Dense[n]()):
            copy[t](x=V[t], y=OUT[t])  # reads buf[t] through the window

    w().dispatch(_on_cores(lambda k, p: p + (2 if k == "copy" else 0))).compile().execute()
    assert (buf == 1).all()
    np.testing.assert_array_equal(OUT.data, buf)
    assert infer_dependencies(enumerate_tasks(w())) == [[], [], [], [], [2], [3]]


def test_an_as_strided_window_depends_on_writes_to_its_array():
    _window_run(lambda buf: as_strided(buf, shape=buf.shape, strides=buf.strides, writeable=False))


def test_an_array_over_a_memoryview_depends_on_writes_to_its_array():
    _window_run(lambda buf: np.asarray(memoryview(buf)))


def test_arrays_over_one_buffer_or_pointer_are_one_storage():
    raw = bytearray(4 * 8 * 4 * 4)
    a = np.frombuffer(raw, np.float32).reshape(4, 8, 4)
    b = np.frombuffer(memoryview(raw)[256:], np.float32).reshape(2, 8, 4)  # a[2:] through another memoryview
    keys = RegionKeys()
    assert keys.region(Tensor(data=a)[2]) == keys.region(Tensor(data=b)[0]) == (id(raw), (2,))

    own = np.zeros((4, 8, 4), np.float32)

    class Pointer:  # the memory of ``own`` described by a pointer, as a foreign library hands it over
        __array_interface__ = dict(own.__array_interface__)

    ptr = np.asarray(Pointer())
    assert ptr.base is not None and not isinstance(ptr.base, np.ndarray)
    keys = RegionKeys()
    assert keys.region(Tensor(data=own)[1]) == (id(own), (1,))
    assert keys.region(Tensor(data=ptr)[1]) == (id(own), (1,))
    keys = RegionKeys()  # the other way round: the pointer first
    first = keys.region(Tensor(data=ptr)[3])
    assert keys.region(Tensor(data=own)[3]) == first


def test_ordinary_arrays_keep_their_keys():
    """Arrays that own their memory, and views of them, are keyed by their root array as before, even once memory
    no ndarray owns has been seen."""
    buf = np.zeros((8, 4, 4), np.float32)
    other = np.zeros((8, 4, 4), np.float32)
    keys = RegionKeys()
    assert keys.region(Tensor(data=buf[4:])[1]) == (id(buf), (1,))  # the first seen over buf: its row 0
    assert keys.region(Tensor(data=buf)[5]) == (id(buf), (1,))  # row 5 of buf is row 1 of buf[4:]
    assert keys.region(Tensor(data=np.frombuffer(bytearray(64), np.float32).reshape(1, 4, 4))[0])[1] == (0,)
    assert keys.region(Tensor(data=other)[-1]) == (id(other), (7,))
    assert keys.region(Tensor(data=buf.transpose(0, 2, 1))[0]) == (id(buf), ())  # another layout: the whole array
    x = np.ones((4, R, C), np.float32)
    X, Y = Tensor(data=x), Tensor(data=np.zeros_like(x))

    @workload
    def w():
        copy[0](x=X[0], y=Y[1])
        copy[1](x=Y[1], y=Y[2])
        copy[2](x=X[1], y=Y[3])
        copy[3](x=Y[2], y=X[1])

    assert infer_dependencies(enumerate_tasks(w())) == [[], [0], [], [1, 2]]


class _OldRegionMap:
    """RegionMap.dependencies as it was before regions were numbered (stop 27), keyed by the regions themselves."""

    def __init__(self) -> None:
        self.writer: dict = {}
        self.readers: dict = {}
        self.below: dict = {}
        self._prefixes: dict = {}

    def _overlapping(self, base, index):
        keys = list(self._prefixes_of((base, index)))
        keys += [(base, sub) for sub in self.below.get((base, index), ())]
        return keys

    def _prefixes_of(self, region):
        keys = self._prefixes.get(region)
        if keys is None:
            base, index = region
            keys = self._prefixes[region] = tuple((base, index[:k]) for k in range(len(index) + 1))
            for k in range(len(index)):
                self.below.setdefault(keys[k], set()).add(index)
        return keys

    def dependencies(self, task_id, reads, writes):
        deps = set()
        for region in reads:
            for key in self._overlapping(*region):
                if self.writer.get(key) is not None:
                    deps.add(self.writer[key])
        for region in writes:
            for key in self._overlapping(*region):
                if self.writer.get(key) is not None:
                    deps.add(self.writer[key])
                deps.update(self.readers.get(key) or ())
        for region in reads:
            self.readers.setdefault(region, []).append(task_id)
        for region in writes:
            base, _ = region
            for sub in self.below.get(region, ()):
                self.readers.pop((base, sub), None)
                self.writer.pop((base, sub), None)
            self.readers.pop(region, None)
            self.writer[region] = task_id
        deps.discard(task_id)
        return sorted(deps)


_TENSORS = {name: Tensor(shape=(3, 3, 3), dtype=DType.F32, name=name) for name in ("A", "B")}
_REGIONS = st.tuples(st.sampled_from(["A", "B"]), st.lists(st.integers(0, 2), max_size=3).map(tuple))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.lists(_REGIONS, max_size=3), st.lists(_REGIONS, max_size=3)), max_size=25))
def test_numbered_regions_give_the_dependencies_of_regions_keyed_by_themselves(accesses):
    """RegionMap.dependencies (tables keyed by region numbers) against the region-keyed tables it replaced, on random
    reads and writes of overlapping regions (one index a prefix of another), by tasks of a kernel whose parameters
    read or write those views."""
    new, old = RegionMap(), _OldRegionMap()
    for task_id, (reads, writes) in enumerate(accesses):
        views = {f"r{i}": (Direction.IN, name, index) for i, (name, index) in enumerate(reads)}
        views.update({f"w{i}": (Direction.OUT, name, index) for i, (name, index) in enumerate(writes)})
        kernel = types.SimpleNamespace(signature={k: (d, None) for k, (d, _, _) in views.items()})
        resources = {k: TensorView(_TENSORS[name], index) for k, (_, name, index) in views.items()}
        task = Task("k", [], resources, task_id, {}, kernel)
        regions = {k: (id(_TENSORS[name]), index) for k, (_, name, index) in views.items()}
        assert new.dependencies(task) == old.dependencies(
            task_id, [regions[k] for k in views if k[0] == "r"], [regions[k] for k in views if k[0] == "w"])
