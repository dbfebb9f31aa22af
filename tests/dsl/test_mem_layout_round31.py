"""MemLayout, relayout and the collectives (the reference's R10 layout API): the reference's test forms, with their
values and reprs, then what this port adds (data shared, not copied; bad input refused with a hint)."""
import numpy as np
import pytest

from ptort_lab import DType, Location, PtortTypeError, PtortValueError, Tensor
from ptort_lab.dsl import LayoutIncompatibleError, TensorLayout, TensorReplicate, TensorShard, tensor_layout_join
from ptort_lab.dsl.mem_layout import MemLayout, allgather, allreduce, reduce_scatter, relayout

R, S = TensorReplicate, TensorShard


# -- the reference's tests (tests/test_python_frontend.py: TestMemLayout, TestTensorLayout, the transitions) -------
def test_row_major():
    layout = MemLayout.row_major((4, 8))
    assert layout.strides == (8, 1)
    assert layout.order == (0, 1)
    assert repr(layout) == "MemLayout(strides=(8, 1), order=(0, 1))"


def test_col_major():
    layout = MemLayout.col_major((4, 8))
    assert layout.strides == (1, 4)
    assert layout.order == (1, 0)
    assert repr(layout) == "MemLayout(strides=(1, 4), order=(1, 0))"


def test_permute():
    permuted = MemLayout.row_major((4, 8, 16)).permute((2, 0, 1))
    assert permuted.strides == (1, 128, 16)
    assert permuted.order == (1, 2, 0)  # slowest first: old dim 0 is new dim 1, old 1 is new 2, old 2 is new 0


def test_compose():
    composed = MemLayout(strides=(8, 1)).compose(MemLayout(swizzle="XOR"))
    assert composed.strides == (8, 1)
    assert composed.swizzle == "XOR"
    assert repr(composed) == "MemLayout(strides=(8, 1), swizzle=XOR)"


def test_tensor_layout_with_mem_layout():
    layout = TensorLayout(dist=(TensorShard(0), TensorReplicate()), mem=MemLayout.row_major((4, 8)))
    assert layout.mem is not None
    assert layout.mem.strides == (8, 1)
    assert repr(layout) == "TensorLayout(S(0), R, mem=MemLayout(strides=(8, 1), order=(0, 1)))"
    assert repr(TensorLayout((R(), S(3)))) == "TensorLayout(R, S(3))"  # no mem: unchanged


def test_relayout():
    t1 = Tensor(data=None, shape=(4, 8), dtype=DType.F16)
    assert t1.layout.is_replicated()
    t2 = relayout(t1, TensorLayout.sharded(dim=0, rank=2, mesh_axis=0))
    assert not t2.layout.is_replicated()
    assert t2.layout.sharded_dims() == [0]


def test_allreduce():
    t1 = Tensor(data=None, shape=(4, 8), dtype=DType.F16, layout=TensorLayout.sharded(dim=0, rank=2, mesh_axis=0))
    assert not t1.layout.is_replicated()
    assert allreduce(t1, mesh_axis=0).layout.is_replicated()


def test_allgather():
    t1 = Tensor(data=None, shape=(4, 8), dtype=DType.F16, layout=TensorLayout.sharded(dim=0, rank=2, mesh_axis=0))
    assert isinstance(allgather(t1, dim=0, mesh_axis=0).layout.dist[0], TensorReplicate)


def test_reduce_scatter():
    t1 = Tensor(data=None, shape=(4, 8), dtype=DType.F16)
    t2 = reduce_scatter(t1, dim=0, mesh_axis=0)
    assert isinstance(t2.layout.dist[0], TensorShard)
    assert t2.layout.dist[0].mesh_axis == 0


# -- semantics beyond the reference's stubs ---------------------------------------------------------------------------
def test_transitions_share_the_data_and_keep_the_rest():
    x = np.arange(32, dtype=np.float32).reshape(4, 8)
    mem = MemLayout.row_major((4, 8))
    t = Tensor(data=x, name="x", layout=TensorLayout((S(1), R()), mem))
    for u in (relayout(t, TensorLayout.sharded(0, 2)), allreduce(t, 1), allgather(t, 0, 1),
              reduce_scatter(t, 1, 1, op="max")):
        assert u is not t and u.data is x and (u.shape, u.dtype, u.name, u.location) == ((4, 8), DType.F32, "x",
                                                                                         Location.Global)
    assert t.layout == TensorLayout((S(1), R()), mem)  # the source keeps its layout
    assert allreduce(t, 1).layout == TensorLayout((R(), R()), mem)  # the memory facet is kept
    assert allreduce(t, 0).layout.dist == (S(1), R())  # only S(mesh_axis) dimensions become R
    assert reduce_scatter(t, 1, 0).layout.dist == (S(1), S(0))


def test_relayout_of_a_tensor_without_data_shares_its_allocation():
    t = Tensor(shape=(2, 4), dtype=DType.F32)
    u = relayout(t, TensorLayout.sharded(1, 2))
    assert t.data is None and u.data is None  # (nothing allocated by a change of type)
    u.allocate()[0, 0] = 5
    assert t.data[0, 0] == 5


def test_tile_divides_the_layout():
    tiled = MemLayout.row_major((64, 32)).tile((16, 8))
    # element (16*ti + i, 8*tj + j) sits at 32*(16*ti + i) + 8*tj + j
    assert tiled.strides == (512, 8, 32, 1)
    assert tiled.order == (0, 2, 1, 3)
    assert MemLayout(swizzle="XOR", pack=4).permute((1, 0)) == MemLayout(swizzle="XOR", pack=4)  # no strides


def test_compose_takes_the_other_layouts_facets_where_set():
    a = MemLayout.row_major((4, 8))
    assert a.compose(MemLayout.col_major((4, 8))) == MemLayout.col_major((4, 8))
    assert a.compose(MemLayout()) == a
    assert repr(MemLayout()) == "MemLayout()"
    assert repr(MemLayout(strides=[2, 1], pack=4)) == "MemLayout(strides=(2, 1), pack=4)"  # lists become tuples


def test_layout_join_composes_the_memory_facets():
    a = TensorLayout((R(), R()), MemLayout(strides=(8, 1)))
    b = TensorLayout((S(0), R()), MemLayout(swizzle="XOR"))
    assert tensor_layout_join(a, b) == TensorLayout((S(0), R()), MemLayout(strides=(8, 1), swizzle="XOR"))
    assert tensor_layout_join(TensorLayout((R(),)), TensorLayout((R(),), MemLayout((1,)))).mem == MemLayout((1,))


# -- bad input ---------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("make, error, match", [
    (lambda: MemLayout(strides=8), PtortTypeError, "strides must be a tuple of ints"),
    (lambda: MemLayout(strides=(8, 1.5)), PtortTypeError, "strides must be a tuple of ints"),
    (lambda: MemLayout(strides=(8, 1), order=(0, 0)), PtortValueError, "not a permutation"),
    (lambda: MemLayout(strides=(8, 1), order=(0, 1, 2)), PtortValueError, "not a permutation"),
    (lambda: MemLayout.row_major((4, 0)), PtortValueError, "must be positive"),
    (lambda: MemLayout.col_major(4), PtortTypeError, "must be a tuple of ints"),
    (lambda: MemLayout.row_major((4, 8)).permute((0, 2)), PtortValueError, "not a permutation"),
    (lambda: MemLayout.row_major((4, 8)).compose((1, 8)), PtortTypeError, "compose needs a MemLayout"),
    (lambda: MemLayout.row_major((4, 8)).tile((2,)), PtortValueError, "has 1 dimensions"),
    (lambda: MemLayout(swizzle="XOR").tile((2, 2)), PtortValueError, "needs strides"),
    (lambda: TensorLayout((R(), R()), mem=(8, 1)), PtortTypeError, "mem must be a MemLayout"),
])
def test_bad_layouts_are_refused(make, error, match):
    with pytest.raises(error, match=match) as info:
        make()
    assert info.value.hint


def _t(layout=None):
    return Tensor(shape=(4, 8), dtype=DType.F32, layout=layout)


@pytest.mark.parametrize("call, error, match", [
    (lambda: relayout(_t()[0], TensorLayout.default(1)), PtortTypeError, "needs a Tensor"),
    (lambda: relayout(_t(), (S(0), R())), PtortTypeError, "must be a TensorLayout"),
    (lambda: relayout(_t(), TensorLayout.default(3)), LayoutIncompatibleError, "has 3 dimensions"),
    (lambda: relayout(Tensor(shape=(2, 4), location=Location.UB), TensorLayout.default(2)), PtortTypeError,
     "on-chip"),
    (lambda: allreduce(_t(), mesh_axis=-1), PtortTypeError, "mesh_axis must be an int >= 0"),
    (lambda: allreduce(_t(), 0, op="prod"), PtortValueError, "op 'prod'"),
    (lambda: allgather(_t(), dim=2, mesh_axis=0), PtortValueError, "dim 2 is out of range"),
    (lambda: allgather(_t(TensorLayout.sharded(0, 2, 1)), 0, 0), LayoutIncompatibleError, "mesh axis 1"),
    (lambda: reduce_scatter(_t(), dim="0", mesh_axis=0), PtortTypeError, "dim must be an int"),
    (lambda: reduce_scatter(_t(TensorLayout.sharded(0, 2, 1)), 0, 0), LayoutIncompatibleError, "already sharded"),
])
def test_bad_transitions_are_refused(call, error, match):
    with pytest.raises(error, match=match) as info:
        call()
    assert info.value.hint


# -- after the review: one array for a tensor and its re-laid-out views, checked inputs --------------------------
def test_a_relayout_and_its_tensor_share_one_array_set_after_either():
    X = Tensor(shape=(4, 8), dtype=DType.F32)
    Xs = relayout(X, TensorLayout.sharded(0, 2))
    X.data = np.ones((4, 8), np.float32)  # set after the relayout: the view reads it
    assert Xs.data is X.data and Xs.storage is X
    Xs.data = np.full((4, 8), 2, np.float32)  # and a set through the view is the tensor's
    assert X.data is Xs.data and float(X.data.sum()) == 64.0
    Y = Tensor(shape=(4, 8), dtype=DType.F32)
    Yw = Y.with_layout(TensorLayout.sharded(1, 2))
    assert Yw.allocate() is Y.data  # (allocated for both by either)


def test_a_relayout_allocates_nothing_of_its_own():
    """A tensor larger than the modelled HBM can be re-laid out (a change of type): only its values need memory."""
    H = Tensor(shape=(1 << 16, 1 << 16, 8), dtype=DType.F32)
    Hs = relayout(H, TensorLayout.sharded(0, 3))
    assert H.data is None and Hs.data is None and Hs.shape == H.shape


@pytest.mark.parametrize("call, error, said", [
    (lambda X: allreduce(X, 0, np.array(["sum", "max"])), PtortValueError, "allreduce: op array("),
    (lambda X: relayout(X, TensorLayout(("x", "y"))), PtortTypeError, "relayout: TensorLayout('x', 'y') has 'x'"),
    (lambda X: relayout(X, TensorLayout.sharded(0, 2).__class__((TensorReplicate(), TensorReplicate()),
                                                                 MemLayout.row_major((2, 3, 4)))),
     LayoutIncompatibleError, "relayout: the memory layout MemLayout(strides=(12, 4, 1)"),
    (lambda X: MemLayout(swizzle=[1]), PtortTypeError, "MemLayout swizzle must be hashable"),
])
def test_bad_layouts_and_ops_are_refused_with_a_ptort_error(call, error, said):
    with pytest.raises(error) as e:
        call(Tensor(shape=(4, 8), dtype=DType.F32))
    assert str(e.value).startswith(said) and e.value.hint
