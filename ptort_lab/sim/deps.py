"""Data dependencies between data-parallel tasks, inferred from the tensor regions they read and write.

A region is a tile of the memory a tensor's values live in, not of the Tensor object: ``Y[-1]`` and ``Y[3]`` of a
4-row ``Y`` are one region, and so are ``Y.slice(2, 4)[1]`` and ``Y[3]`` (the slice's array is a view of Y's). Two
tensors whose arrays share memory are told apart by that memory (``RegionKeys``): their rows map onto the rows of
the first of them seen when their layouts agree (same row size and strides, start on a row boundary), and any other
overlap counts as the whole array (an access to it then depends on every access to the array: never a race).
Memory an array does not own (an ``as_strided`` window, ``np.asarray(memoryview(a))``, ``np.frombuffer``) is traced
to what owns it, so such a view and the array it looks at are one storage.

A task named by string whose name has a registered host kernel (``Program.register_kernel``) runs opaque Python code
on its resources: it reads and writes every tensor view among them, and the host kernels are called in task order
(as documented), so each also waits for the host-kernel task before it.
"""
from __future__ import annotations

from typing import Any, Hashable

import numpy as np

from ..dsl.tasks import host_kernel
from ..dsl.types import Direction, Tensor, TensorView
from ..dsl.workload import Task

Region = tuple[Hashable, tuple[int, ...]]  # (storage, leading index): an index is a prefix of its sub-regions'

# The region every host-kernel task writes, so each waits for the one before it: the calls run in task order (their
# Python state, such as a list they append to, is shared). No storage key is a str, so it names no tensor's memory.
HOST_CALLS: Region = ("host kernel calls", ())


class RegionKeys:
    """The region a tensor view names, by the memory it names (one per run: it caches each tensor's storage).

    ``exact_only``: a tensor that overlaps another in a layout rows cannot express keeps regions of its own (the L2
    model's lines: a tile there is a transfer's bytes, so one line for a whole array would be wrong the other way).
    """

    def __init__(self, exact_only: bool = False) -> None:
        self.exact_only = exact_only
        # id(tensor) -> (tensor, storage key, row offset or None: overlaps its storage in another layout)
        self._bases: dict[int, tuple[Tensor, Hashable, int | None]] = {}
        # storage key (id of what owns the memory) -> (owner, layout of the first array seen: start address, rows)
        self._layouts: dict[int, tuple[Any, tuple[Any, ...]]] = {}
        # (lowest, highest + 1 address, key) of each storage over memory no ndarray owns, and of every storage once
        # there is one: an array over such memory joins the storage it overlaps (its owner may be any object)
        self._foreign: list[tuple[int, int, int]] = []
        self._spans: list[tuple[int, int, int]] | None = None

    def region(self, view: TensorView) -> Region:
        """``view``'s region: its storage, and its index with negative entries counted from the end (as numpy does)
        and rows counted in the storage's rows."""
        base = view.base
        hit = self._bases.get(id(base))
        if hit is None or hit[0] is not base:
            hit = self._bases[id(base)] = (base, *self._storage_of(base))
        index = view.index
        offset = hit[2]
        if offset is None:
            return hit[1], ()
        if offset == 0:
            entries: Any = index  # (Any: compared as they are, numpy ints too)
            for i in entries:  # (a loop, not min(): once per GM argument of every task)
                if i < 0:
                    break
            else:
                return hit[1], index  # (the usual case, as is: non-negative indices of a tensor of its own)
        shape = base.shape
        out = [i + shape[k] if i < 0 else i for k, i in enumerate(index)]
        if out:
            out[0] += offset
        return hit[1], tuple(out)

    def _storage_of(self, tensor: Tensor) -> tuple[Hashable, int | None]:
        """(storage key, where ``tensor``'s row 0 is among the rows of the first tensor seen over the same memory);
        the offset is None when it overlaps that memory in another layout."""
        data: Any = tensor.data  # (Any: an array's base may be any object - an mmap - whatever numpy's stubs say)
        if data is None:
            return id(tensor.storage), 0  # (its values will be allocated for it and the views of its array alone)
        root: Any = data
        while isinstance(root.base, np.ndarray):
            root = root.base
        owner: Any = root if root.base is None else self._owner_of(root)
        key = id(owner)
        start = data.__array_interface__["data"][0]
        if self._foreign or not isinstance(owner, np.ndarray):
            key, owner = self._join_overlapping(root, owner)
        layout = (data.strides[0], data.shape[1:], data.strides[1:]) if data.ndim else (0, (), ())
        first = self._layouts.get(key)
        if first is None or first[0] is not owner:
            first = self._layouts[key] = (owner, (start, *layout))
        first_start, row_bytes = first[1][0], layout[0]
        if first[1][1:] == layout:  # rows of one size and layout: row i here is row i + offset there
            if start == first_start:
                return key, 0
            if row_bytes > 0 and (start - first_start) % row_bytes == 0:
                return key, (start - first_start) // row_bytes
        return (id(tensor), 0) if self.exact_only else (key, None)

    @staticmethod
    def _owner_of(root: np.ndarray) -> Any:
        """What owns the memory of ``root``, an array whose base is no ndarray: through an ``as_strided`` window's
        base, a memoryview's object and the arrays under them, to the ndarray (or other object) at the bottom."""
        obj: Any = root
        for _ in range(64):  # (a chain this long is not numpy's: stop there and use what it reached)
            below = obj.obj if isinstance(obj, memoryview) else getattr(obj, "base", None)
            if below is None:
                break
            obj = below
        return obj

    def _join_overlapping(self, root: np.ndarray, owner: Any) -> tuple[int, Any]:
        """(key, owner) of the storage ``root`` belongs to: one whose bytes it overlaps, if either is over memory no
        ndarray owns (two objects can describe one memory: a pointer exported twice), else its own. (Two ndarrays
        that own their memory never overlap, so this only runs once such memory has been seen.) If it overlaps
        several, it joins the first."""
        lo, hi = _byte_bounds(root)
        foreign = not isinstance(owner, np.ndarray)
        if self._spans is None:  # (the storages seen so far, all ndarrays' own)
            self._spans = [(*_byte_bounds(first[0]), key) for key, first in self._layouts.items()
                           if isinstance(first[0], np.ndarray)]
        key = id(owner)
        for other_lo, other_hi, other in self._spans if foreign else self._foreign:
            if other != key and lo < other_hi and other_lo < hi:
                key, owner = other, self._layouts[other][0]
                break
        span = (lo, hi, key)
        if span not in self._spans:
            self._spans.append(span)
            if foreign:
                self._foreign.append(span)
        return key, owner


def _byte_bounds(a: np.ndarray) -> tuple[int, int]:
    """The lowest address of ``a``'s elements and one past its highest byte (numpy's ``byte_bounds``)."""
    lo = hi = a.__array_interface__["data"][0]
    for n, stride in zip(a.shape, a.strides):
        if n == 0:
            return lo, lo
        if stride < 0:
            lo += (n - 1) * stride
        else:
            hi += (n - 1) * stride
    return lo, hi + a.itemsize


def task_accesses(task: Task, _directions: dict[int, tuple[Any, dict[str, tuple[bool, bool]]]] | None = None,
                  keys: RegionKeys | None = None) -> tuple[list[Region], list[Region]]:
    """(reads, writes) as (storage, leading index) regions (``RegionKeys``); a task named by string touches nothing,
    unless a host kernel is registered for its name in the run under way: then it reads and writes every tensor view
    among its resources, and ``HOST_CALLS``. ``_directions`` caches each kernel's (reads, writes) per parameter,
    ``keys`` each tensor's storage, across the tasks of one run."""
    reads: list[Region] = []
    writes: list[Region] = []
    kernel = task.kernel_ref
    if kernel is None:
        if host_kernel(task) is not None:
            _host_accesses(task, keys or RegionKeys(), reads, writes)
        return reads, writes
    if not isinstance(task.resources, dict):
        return reads, writes
    directions = _directions_of(kernel, _directions)
    region_of = (keys or RegionKeys()).region
    for name, arg in task.resources.items():
        if not isinstance(arg, TensorView):
            continue
        rw = directions.get(name)
        if rw is None or arg.base.on_chip:
            continue  # (an on-chip tensor: each core has its own copy, and a core runs its tasks in order)
        region = region_of(arg)
        if rw[0]:
            reads.append(region)
        if rw[1]:
            writes.append(region)
    return reads, writes


def _host_accesses(task: Task, keys: RegionKeys, reads: list[Region], writes: list[Region]) -> None:
    """A host kernel's accesses: it is opaque Python, so it may read and write each tensor view it is given (a list
    by position or a dict by name, as it is called), and it comes after the host-kernel task before it."""
    res = task.resources
    for arg in res.values() if isinstance(res, dict) else res or ():
        if isinstance(arg, TensorView) and not arg.base.on_chip:  # (on chip: a copy per core, as for kernels)
            region = keys.region(arg)
            reads.append(region)
            writes.append(region)
    writes.append(HOST_CALLS)


def _directions_of(kernel: Any, cache: dict[int, tuple[Any, dict[str, tuple[bool, bool]]]] | None
                   ) -> dict[str, tuple[bool, bool]]:
    """(read, written) per parameter of ``kernel``'s signature (cached per kernel object in ``cache``)."""
    hit = cache.get(id(kernel)) if cache is not None else None
    if hit is not None and hit[0] is kernel:
        return hit[1]
    directions = {name: (spec[0] in (Direction.IN, Direction.INOUT), spec[0] in (Direction.OUT, Direction.INOUT))
                  for name, spec in kernel.signature.items()}
    if cache is not None:
        cache[id(kernel)] = (kernel, directions)
    return directions


class RegionMap:
    """Last writer and readers-since per region; regions overlap when one index is a prefix of the other.

    ``dependencies`` keys its tables by a number per region (a region's nested tuple is hashed once a task, not once
    per table lookup); ``_prefixes_of`` and ``below`` index the regions themselves, for ``access_order``."""

    def __init__(self) -> None:
        self.below: dict[Region, set[tuple[int, ...]]] = {}
        # region -> the regions it contains or is contained in by prefix: (base, index[:k]) for every k
        self._prefixes: dict[Region, tuple[Region, ...]] = {}
        self._directions: dict[int, tuple[Any, dict[str, tuple[bool, bool]]]] = {}
        self._keys = RegionKeys()
        # by region number: the last writer, the readers since, and the regions below (longer indices of it)
        self._writer: dict[int, int] = {}
        self._readers: dict[int, list[int]] = {}
        self._below: dict[int, set[int]] = {}
        # region -> the numbers of its prefixes, its own last (numbered the first time a region or prefix is seen)
        self._numbers: dict[Region, tuple[int, ...]] = {}
        self._number: dict[Region, int] = {}

    def _overlapping(self, base: Hashable, index: tuple[int, ...]) -> list[Region]:
        """The regions overlapping (base, index): its prefixes, itself, and those seen below it."""
        keys = list(self._prefixes_of((base, index)))
        keys += [(base, sub) for sub in self.below.get((base, index), ())]
        return keys

    def _prefixes_of(self, region: Region) -> tuple[Region, ...]:
        """``region``'s prefixes, itself last; registers it below each shorter one the first time (a region with no
        writer or readers yet adds no dependency, so registering it before its task's own accesses are recorded
        changes nothing)."""
        keys = self._prefixes.get(region)
        if keys is None:
            base, index = region
            keys = self._prefixes[region] = tuple((base, index[:k]) for k in range(len(index) + 1))
            for k in range(len(index)):
                self.below.setdefault(keys[k], set()).add(index)
        return keys

    def _numbers_of(self, region: Region) -> tuple[int, ...]:
        """``_prefixes_of`` as region numbers (registering the region below each shorter prefix the first time)."""
        numbers = self._numbers.get(region)
        if numbers is None:
            base, index = region
            number = self._number
            out = []
            for k in range(len(index) + 1):
                key = (base, index[:k])
                n = number.get(key)
                if n is None:
                    n = number[key] = len(number)
                out.append(n)
            numbers = self._numbers[region] = tuple(out)
            below = self._below
            for n in numbers[:-1]:
                below.setdefault(n, set()).add(numbers[-1])
        return numbers

    def dependencies(self, task: Task) -> list[int]:
        """Ids of earlier tasks this task must wait for (RAW, WAR, WAW), then record its own accesses."""
        reads, writes = task_accesses(task, self._directions, self._keys)
        deps: set[int] = set()
        writer, readers, below = self._writer, self._readers, self._below
        numbers_of = self._numbers_of
        read_numbers = [numbers_of(region) for region in reads]
        write_numbers = [numbers_of(region) for region in writes]
        for numbers in read_numbers:  # its prefixes, itself, and the regions below it
            for n in (*numbers, *below.get(numbers[-1], ())):
                w = writer.get(n)
                if w is not None:
                    deps.add(w)
        for numbers in write_numbers:
            for n in (*numbers, *below.get(numbers[-1], ())):
                w = writer.get(n)
                if w is not None:
                    deps.add(w)
                r = readers.get(n)
                if r:
                    deps.update(r)
        task_id = task.id
        for numbers in read_numbers:
            readers.setdefault(numbers[-1], []).append(task_id)
        for numbers in write_numbers:
            n = numbers[-1]
            # this write covers its sub-regions: later accesses to them depend on this task alone
            for sub in below.get(n, ()):
                readers.pop(sub, None)
                writer.pop(sub, None)
            readers.pop(n, None)
            writer[n] = task_id
        deps.discard(task_id)
        return sorted(deps)


def infer_dependencies(tasks: list[Task]) -> list[list[int]]:
    """For each task (in program order), the ids of the earlier tasks it depends on."""
    rm = RegionMap()
    return [rm.dependencies(t) for t in tasks]
