"""@workload and the composition forms: tasks are enumerated in program order with their params and bindings."""
import numpy as np
import pytest

from ptort_lab import (
    Dense,
    DenseDyn,
    DType,
    In,
    Out,
    P,
    Ragged,
    Sparse,
    Tensor,
    Tile,
    combine,
    cond,
    for_each,
    kernel,
    parallel_for,
    select,
    sequential,
    task,
    tl,
    workload,
)


def listing(w):
    """(kernel, params, bindings) of every enumerated task."""
    return [(t.kernel, t.params, t.bindings) for t in w.enumerate()]


def test_nested_p_loops_name_axes_i_then_b():
    """P.seq over i with P over b inside gives tasks in row-major order with bindings i, b: P.seq's default name is
    the reference's "i", and P() takes the first of b, h, s, d, ..."""
    @workload
    def grid():
        for i in P.seq(Dense[2]()):
            for b in P(DenseDyn(2)):
                task("k", [i, b], [])

    assert listing(grid()) == [("k", [0, 0], {"i": 0, "b": 0}), ("k", [0, 1], {"i": 0, "b": 1}),
                               ("k", [1, 0], {"i": 1, "b": 0}), ("k", [1, 1], {"i": 1, "b": 1})]


def test_p_names_override_the_defaults():
    """P(axis, names=["tile"]) binds the loop variable as 'tile'."""
    @workload
    def named():
        for t in P(Dense[2](), names=["tile"]):
            task("k", [t], [])

    assert [t.bindings for t in named().enumerate()] == [{"tile": 0}, {"tile": 1}]


def test_when_otherwise_on_a_loop_expression():
    """P.when(t < 2) / P.otherwise() pick a branch per iteration."""
    @workload
    def split():
        for t in P(Dense[4]()):
            with P.when(t < 2):
                task("lo", [t], [])
            with P.otherwise():
                task("hi", [t], [])

    assert [(k, p) for k, p, _ in listing(split())] == [("lo", [0]), ("lo", [1]), ("hi", [2]), ("hi", [3])]


def test_sparse_row_selection():
    """P.sel(sp[b]) iterates the indices stored in row b of a CSR structure."""
    sp = Sparse(2, [0, 2, 5], [1, 3, 0, 2, 4])

    @workload
    def moe():
        for b in P(Dense[2]()):
            for e in P.sel(sp[b]):
                task("expert", [b, e], [])

    assert [p for _, p, _ in listing(moe())] == [[0, 1], [0, 3], [1, 0], [1, 2], [1, 4]]


def test_ragged_axis_yields_row_item_pairs():
    """P(Ragged(3, [2, 0, 1])) yields (row, item) for each item: (0,0), (0,1), (2,0)."""
    @workload
    def rag():
        for i, j in P(Ragged(3, [2, 0, 1])):
            task("r", [i, j], [])

    assert [p for _, p, _ in listing(rag())] == [[0, 0], [0, 1], [2, 0]]


def test_dense_dyn_sized_by_a_ragged_length():
    """DenseDyn(ragged.length(b)) sizes the inner loop per outer iteration."""
    r = Ragged(3, [2, 0, 3])

    @workload
    def dyn():
        for b in P(Dense[3]()):
            for s in P(DenseDyn(r.length(b))):
                task("dyn", [b, s], [])

    assert [p for _, p, _ in listing(dyn())] == [[0, 0], [0, 1], [2, 0], [2, 1], [2, 2]]


def test_functional_forms_compose_in_program_order():
    """combine(for_each, sequential(task, parallel_for)) lists its tasks in program order, bound by lambda names."""
    w = combine(for_each(Dense[2](), lambda t: task("a", [t], [])),
                sequential(task("b", [9], []), parallel_for(Dense[2](), lambda i: task("c", [i], []))))
    assert listing(w) == [("a", [0], {"t": 0}), ("a", [1], {"t": 1}), ("b", [9], {}), ("c", [0], {"i": 0}),
                          ("c", [1], {"i": 1})]
    assert w.kind == "combine"


def test_select_over_a_list():
    """select([3, 1], body) runs the body for 3 then 1."""
    assert listing(select([3, 1], lambda e: task("s", [e], []))) == [("s", [3], {"e": 3}), ("s", [1], {"e": 1})]


def test_cond_with_expression_and_callable_predicates():
    """cond(t < 2, then, else) and cond(lambda task: ..., then) choose per iteration."""
    w = for_each(Dense[4](), lambda t: cond(t < 2, task("x", [t], []), task("y", [t], [])))
    assert [(k, p) for k, p, _ in listing(w)] == [("x", [0]), ("x", [1]), ("y", [2]), ("y", [3])]
    only = for_each(Dense[3](), lambda t: cond(lambda tk: tk.get("t") == 1, task("only1", [t], [])))
    assert [(k, p) for k, p, _ in listing(only)] == [("only1", [1])]


def test_enumerate_binds_tensor_views_and_kernel_names():
    """Tasks carry the kernel's name and resources resolved to concrete tile indices."""
    @kernel
    def copy(src: In[Tile[4, 4, DType.F32]], dst: Out[Tile[4, 4, DType.F32]]):
        tl.store(dst, tl.load(src))

    X = Tensor(data=np.zeros((3, 4, 4), np.float32))
    Y = Tensor(shape=(3, 4, 4), dtype=DType.F32)

    @workload
    def w():
        for t in P(Dense[3]()):
            copy[t](src=X[t], dst=Y[t])

    ts = w().enumerate()
    assert [t.kernel for t in ts] == ["copy"] * 3
    assert [t.resources["src"].index for t in ts] == [(0,), (1,), (2,)]
    assert all(t.resources["dst"].base is Y for t in ts)


def test_workload_without_launches_is_empty():
    """A @workload that launches nothing enumerates no tasks."""
    @workload
    def nothing():
        pass

    assert nothing().enumerate() == []


@pytest.mark.parametrize("axis, size", [(Dense[8](), 8), (DenseDyn(5), 5), (Ragged(2, [3, 4]), 7)])
def test_axis_sizes(axis, size):
    """Dense[8]().size == 8, DenseDyn(5).size == 5, Ragged(2, [3, 4]).size == 7."""
    assert axis.size == size


def test_tensor_view_indexing():
    """X[t] drops the leading dimension; X[1][2] and X[1, 2] are the same tile."""
    X = Tensor(shape=(2, 3, 4, 4), dtype=DType.F16)
    assert X[1].shape == (3, 4, 4)
    assert X[1][2].shape == (4, 4) and X[1][2].index == X[1, 2].index == (1, 2)
    assert X[1].dtype is DType.F16


def test_dtype_spellings():
    """str(DType.F16) is 'F16' (IR short form) and .value 'f16' (type strings); BF16 maps to ml_dtypes."""
    assert (str(DType.F16), DType.F16.value) == ("F16", "f16")
    assert DType.BF16.np_dtype.name == "bfloat16"
    assert DType.from_numpy(np.float32) is DType.F32


def test_calling_a_workload_inside_a_workload_composes_it():
    """A @workload called inside another contributes its tasks in place; its loop does not shadow the outer one."""
    @workload
    def inner(b):
        for t in P(Dense[2]()):
            task("in", [b, t], [])

    @workload
    def outer():
        task("pre", [0], [])
        for b in P(Dense[2]()):
            inner(b)
        task("post", [0], [])

    assert [(k, p) for k, p, _ in listing(outer())] == [
        ("pre", [0]), ("in", [0, 0]), ("in", [0, 1]), ("in", [1, 0]), ("in", [1, 1]), ("post", [0])]
    assert [t.bindings for t in inner(5).enumerate()] == [{"b": 0}, {"b": 1}]


def test_type_errors_of_a_nested_workload_reach_the_outer_one():
    """A bad launch inside a nested @workload is collected on the outer workload."""
    @kernel
    def copy(src: In[Tile[4, 4, DType.F32]], dst: Out[Tile[4, 4, DType.F32]]):
        tl.store(dst, tl.load(src))

    X = Tensor(shape=(2, 4, 4), dtype=DType.F32)

    @workload
    def inner():
        copy[0](src=X[0])

    @workload
    def outer():
        inner()

    assert [e.kind.value for e in outer().type_errors] == ["ARITY_MISMATCH"]


def test_sibling_loops_may_reuse_a_name_but_nested_loops_may_not():
    """Two loops one after the other keep names=['i']; a loop nested in one named 'i' may not be named 'i' too
    (t.get('i') would be ambiguous), while default names are made unique (b, h, ...)."""
    import pytest

    from ptort_lab import Dense, P, PtortValueError, task, workload

    @workload
    def two_phases():
        for i in P(Dense[2](), names=["i"]):
            task("first", [i])
        for i in P(Dense[2](), names=["i"]):
            for j in P(Dense[2]()):
                task("second", [i, j])

    tasks = two_phases().enumerate()
    assert [t.bindings for t in tasks[:2]] == [{"i": 0}, {"i": 1}]
    assert set(tasks[2].bindings) == {"i", "b"}

    @workload
    def clash():
        for i in P(Dense[2](), names=["i"]):
            for j in P(Dense[2](), names=["i"]):
                task("second", [i, j])

    with pytest.raises(PtortValueError, match="name 'i' is already used by an enclosing loop"):
        clash()


def test_task_get_of_an_unknown_name_is_an_error():
    """Task.get raises for a name the task has no binding for (unless a default is given), suggesting close ones."""
    import pytest

    from ptort_lab import Dense, P, PtortValueError, task, workload

    @workload
    def w():
        for b, h in P(Dense[2](), Dense[2]()):
            task("k", [b, h])

    t = w().enumerate()[0]
    assert t.get("h") == 0 and t.get("x", 7) == 7
    with pytest.raises(PtortValueError, match=r"no loop variable 'i'; its bindings are b=0, h=0"):
        t.get("i")
