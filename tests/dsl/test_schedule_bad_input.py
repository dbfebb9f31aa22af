"""Bad input, round 3: overlapping outputs, CSR checks, placements, Program(...), arities, numpy counts, names."""
import copy
import inspect
import pickle

import numpy as np
import pytest
from numpy.lib.stride_tricks import as_strided
from source_lines import here, located

import ptort_lab.compat as pto_wsp
from ptort_lab import (
    Channel,
    Dense,
    DispatchPolicy,
    DSLUsageError,
    DType,
    Event,
    In,
    Location,
    Out,
    P,
    Program,
    PtortTypeError,
    PtortValueError,
    Sparse,
    TaskWindow,
    Tensor,
    Tile,
    TimingPolicy,
    connect,
    consume,
    for_each,
    kernel,
    process,
    record,
    send,
    synchronize,
    task,
    tl,
    workload,
)
from ptort_lab.compat import TypeChecker
from ptort_lab.dsl.wiring import per_core

F32 = DType.F32
T = Tile[8, 8, F32]


@kernel
def copy_k(src: In[T], dst: Out[T]):
    tl.store(dst, tl.load(src))




X = Tensor(data=np.arange(4 * 64, dtype=np.float32).reshape(4, 8, 8))
Y = Tensor(shape=(4, 8, 8), dtype=F32)


@workload
def module_copy():
    """Copies X to Y, tile by tile."""
    for t in P(Dense[4]()):
        copy_k[t](src=X[t], dst=Y[t])


def pipeline():
    q = Channel("q", depth=2)
    out = Tensor(shape=(4, 8, 8), dtype=F32)
    a = process("a").produces(q).body(for_each(Dense[4](), lambda t: send(q, copy_k[t](src=X[t], dst=out[t]))))
    b = process("b").consumes(q).body(consume(q, lambda t: copy_k[t](src=out[t], dst=out[t])))
    return a, b, connect(a, b)


# -- 5. an output array whose tiles share memory -----------------------------------------------------------------------
def test_a_writable_array_with_a_zero_stride_is_refused_where_the_tensor_is_made():
    out = as_strided(np.zeros((8, 8), np.float32), shape=(4, 8, 8), strides=(0, 32, 4))  # 4 "tiles", one buffer
    with pytest.raises(PtortValueError) as e:
        line = here() + 1
        Tensor(data=out)
    assert e.value.what.startswith("Tensor data of shape (4, 8, 8) overlaps itself (dimension 0 has stride 0")
    assert "np.ascontiguousarray" in e.value.hint
    located(e, line)


def test_an_interleaved_strided_layout_is_refused_only_when_elements_really_share_memory():
    base = np.zeros(64, np.float32)
    with pytest.raises(PtortValueError, match=r"overlaps itself \(its strides \(8, 16\) make some elements share"):
        Tensor(data=as_strided(base, shape=(3, 2), strides=(8, 16)))  # element (0, 1) and (2, 0) are byte 16
    assert Tensor(data=as_strided(base, shape=(3, 2), strides=(8, 12))).shape == (3, 2)  # interleaved, disjoint
    with pytest.raises(PtortValueError, match="overlaps itself"):  # a stride smaller than an element
        Tensor(data=as_strided(base, shape=(3,), strides=(2,)))


def test_layouts_without_overlap_and_read_only_broadcasts_are_accepted():
    ones = np.ones((4, 8, 8), np.float32)
    for data in (ones, ones[::-1], np.ones((8, 8, 4), np.float32).transpose(2, 0, 1), ones[:, ::2, ::2],
                 np.broadcast_to(np.ones((8, 8), np.float32), (4, 8, 8))):  # (read-only: a fine input)
        assert Tensor(data=data).shape == data.shape
    on_chip = as_strided(np.zeros((8, 8), np.float32), shape=(4, 8, 8), strides=(0, 32, 4))
    assert Tensor(data=on_chip, location=Location.UB).on_chip  # its data is only the initial value of each copy


def test_the_overlapping_output_of_the_report_no_longer_runs_with_the_last_writer_winning():
    x = np.random.default_rng(0).random((4, 8, 8), dtype=np.float32)
    out = as_strided(np.zeros((8, 8), np.float32), shape=(4, 8, 8), strides=(0, 32, 4))
    with pytest.raises(PtortValueError, match="overlaps itself"):
        Tensor(data=out)
    fixed = np.ascontiguousarray(out)  # the hint's fix: every tile its own memory
    src, dst = Tensor(data=x), Tensor(data=fixed)

    @workload
    def w():
        for t in P(Dense[4]()):
            copy_k[t](src=src[t], dst=dst[t])

    w().compile().execute()
    np.testing.assert_array_equal(fixed, x)


# -- 7 and 12. Sparse --------------------------------------------------------------------------------------------------
def test_sparse_refuses_indices_past_the_end_of_indptr():
    with pytest.raises(PtortValueError) as e:
        line = here() + 1
        Sparse(2, [0, 1, 2], [4, 7, 9, 11])
    assert e.value.what == ("Sparse(2, indptr, indices): indptr ends at 2 (the number of stored indices) but 4 "
                            "indices were given, so the last 2 would belong to no row.")
    assert e.value.hint.startswith("indptr[-1] must equal len(indices)")
    located(e, line)
    with pytest.raises(PtortValueError, match="indptr ends at 3 .* but only 2 indices were given"):
        Sparse(2, [0, 1, 3], [4, 7])
    sp = Sparse(2, [0, 2, 4], [4, 7, 9, 11])
    assert (len(sp), list(sp), sp[1]) == (4, [4, 7, 9, 11], [9, 11])


@pytest.mark.parametrize("row", [1.0, "1", True, None])
def test_sparse_rows_must_be_ints(row):
    sp = Sparse(2, [0, 2, 3], [1, 3, 0])
    with pytest.raises(PtortTypeError) as e:
        line = here() + 1
        sp[row]
    assert e.value.what.startswith(f"Sparse sp[row]: the row must be an int or a loop variable, got "
                                   f"{type(row).__name__}")
    located(e, line)
    with pytest.raises(PtortTypeError, match="Sparse row_nnz: the row must be an int"):
        sp.row_nnz(row)


def test_sparse_rows_accept_numpy_ints_and_still_check_the_range():
    sp = Sparse(2, [0, 2, 3], [1, 3, 0])
    assert sp[np.int64(1)] == [0] and sp.row_nnz(np.int32(0)) == 2
    with pytest.raises(PtortValueError, match=r"Sparse row 2 is out of range 0..1"):
        sp[2]


def test_a_sparse_row_indexed_by_a_loop_expression_out_of_range_names_its_line():
    sp = Sparse(2, [0, 2, 3], [0, 1, 3])

    @workload
    def w():
        for b in P(Dense[2]()):
            for e in P.sel(sp[b + 1]):
                copy_k[e](src=X[e], dst=Y[e])

    line = here() - 3
    with pytest.raises(PtortValueError) as e:
        w().enumerate()
    assert e.value.what.startswith("sparse[b + 1] is row int 2 with b = 1, but the Sparse's rows are the ints 0..1")
    located(e, line)


# -- 11. place() -------------------------------------------------------------------------------------------------------
def test_place_accepts_process_objects_as_keys_and_runs_as_with_their_names():
    a, b, pipe = pipeline()
    by_object = pipe.place({a: 0, b: (0, 1)})
    assert by_object.schedule.placement == {"a": 0, "b": (0, 1)}
    assert pipe.place({"a": 0, "b": (0, 1)}).compile().execute().stats().total_cycles == \
        by_object.compile().execute().stats().total_cycles
    assert pipe.place({a: np.int64(0), "b": [np.int64(0), 1]}).schedule.placement == {"a": 0, "b": (0, 1)}


@pytest.mark.parametrize("placement, error, start", [
    (np.array([0, 0]), PtortTypeError, "place() takes 'shared' or a dict process -> core, got ndarray"),
    ([0, 0], PtortTypeError, "place() takes 'shared' or a dict process -> core, got list [0, 0]"),
    ("share", PtortValueError, "place(): the only placement string is 'shared'"),
    ({"c": 0}, PtortValueError, "place() names unknown process(es) 'c'; this pipeline's processes are 'a', 'b'"),
    ({"a": -1}, PtortValueError, "placement puts process 'a' on -1; a place is a core (int)"),
    ({"a": 1.0}, PtortValueError, "placement puts process 'a' on 1.0"),
    ({"a": (0, 1, 2)}, PtortValueError, "placement puts process 'a' on (0, 1, 2)"),
    ({3: 0}, PtortTypeError, "place(): a placement key is a process or its name, got int 3"),
])
def test_a_bad_placement_is_refused_at_the_place_line(placement, error, start):
    _, _, pipe = pipeline()
    with pytest.raises(error) as e:
        line = here() + 1
        pipe.place(placement)
    assert e.value.what.startswith(start), e.value.what
    located(e, line)


def test_a_process_placed_twice_or_from_another_pipeline_is_refused():
    a, _, pipe = pipeline()
    with pytest.raises(PtortValueError, match=r"place\(\) places process 'a' twice"):
        pipe.place({a: 0, "a": 1})
    stranger, _, _ = pipeline()
    with pytest.raises(PtortValueError, match="place\\(\\) places process 'a', which is not one of this pipeline's"):
        pipe.place({stranger: 0})


def test_compile_placement_is_checked_the_same_way_at_the_compile_line():
    a, b, pipe = pipeline()
    assert pipe.compile(placement={a: 0, b: 0}).run_options.placement == {"a": 0, "b": 0}
    assert pipe.place({a: 0, b: 0}).compile(placement={"a": 0, "b": 0}) is not None  # the same placement twice
    with pytest.raises(PtortTypeError) as e:
        line = here() + 1
        pipe.compile(placement=np.array([0, 0]))
    assert e.value.what.startswith("compile(placement=...) takes 'shared' or a dict")
    located(e, line)
    with pytest.raises(PtortValueError, match=r"compile\(placement=...\) puts the processes of a CSP pipeline"):
        module_copy().compile(placement="shared")


# -- 13. Program(...) --------------------------------------------------------------------------------------------------
def test_program_refuses_what_is_not_a_workload():
    with pytest.raises(PtortTypeError) as e:
        line = here() + 1
        pto_wsp.Program(None)
    assert e.value.what == "Program(workload, ...) takes a Workload, got NoneType None."
    located(e, line)
    with pytest.raises(PtortTypeError, match="takes a Workload, got WorkloadFunction") as e:
        Program(module_copy)
    assert e.value.hint.startswith("Call it first: Program(module_copy(), 'cpu_sim')")


def test_program_refuses_an_unknown_target_as_compile_does():
    with pytest.raises(PtortValueError, match="Unknown target: npu"):
        module_copy().compile(target="npu")
    with pytest.raises(PtortValueError, match="Unknown target: npu") as e:
        line = here() + 1
        pto_wsp.Program(module_copy(), "npu")
    located(e, line)
    with pytest.raises(PtortTypeError, match="target must be a target name"):
        Program(module_copy(), 3)
    with pytest.raises(PtortTypeError, match="options must be a dict, got list"):
        Program(module_copy(), "cpu_sim", [("machine", "x")])
    assert Program(module_copy(), "npu_sim").execute().stats().total_cycles > 0


# -- D(a). steps of a pipeline in a data-parallel workload -------------------------------------------------------------
def test_record_in_a_data_parallel_workload_names_the_record_line():
    ev = Event("e")

    @workload
    def w():
        for t in P(Dense[4]()):
            copy_k[t](src=X[t], dst=Y[t])
            record(ev)

    line = here() - 2
    for run in (lambda: w().compile().execute(), lambda: w().enumerate()):  # enumerate() names it too
        with pytest.raises(DSLUsageError) as e:
            run()
        assert e.value.what.startswith("record(ev) is a step of a pipeline process, but workload 'w' is "
                                       "data-parallel")
        located(e, line)


def test_synchronize_consume_and_a_token_send_in_a_data_parallel_workload_name_their_lines():
    ev, q = Event("e"), Channel("q", depth=2)

    @workload
    def waits():
        for _t in P(Dense[2]()):
            synchronize(ev)

    @workload
    def tokens():
        for t in P(Dense[2]()):
            send(q, t)

    for w, api, line in ((waits, "synchronize(ev)", here() - 7), (tokens, "send(ch, ...)", here() - 2)):
        with pytest.raises(DSLUsageError) as e:
            w().compile()
        assert e.value.what.startswith(f"{api} is a step of a pipeline process"), e.value.what
        located(e, line)

    @workload
    def sends_tasks():  # a send of a task outside a pipeline runs the task, as the reference lists it
        for t in P(Dense[4]()):
            send(q, copy_k[t](src=X[t], dst=Y[t]))

    sends_tasks().compile().execute()
    np.testing.assert_array_equal(Y.data, X.data)


# -- D(b). the type checker counts only real arguments -----------------------------------------------------------------
def test_check_kernel_call_reports_unknown_and_missing_arguments_separately():
    tc = TypeChecker()
    assert not tc.check_kernel_call(copy_k, (), {"src": X[0], "zz": 1})
    assert [e.message for e in tc.errors] == ["Kernel 'copy_k' has no parameter 'zz'.",
                                              "Kernel 'copy_k' expects 2 args, got 1: missing argument 'dst'."]


# -- D(c). functions that cannot take what they are given --------------------------------------------------------------
@pytest.mark.parametrize("make, start", [
    (lambda: module_copy().vector_unit(lambda: 0),
     "vector_unit(fn) calls fn with the task (one argument), but the lambda at test_schedule_bad_input.py:"),
    (lambda: module_copy().streams(2).stream_by(lambda a, b: 0), "stream_by(fn) calls fn with the task"),
    (lambda: module_copy().dispatch(DispatchPolicy.affinity(lambda: 0, 2)),
     "DispatchPolicy.affinity calls its key function with the task"),
    (lambda: module_copy().dispatch(DispatchPolicy.hash(lambda: 0, 2)),
     "DispatchPolicy.hash calls its key function with the task"),
    (lambda: module_copy().dispatch(DispatchPolicy.dispatch_by(lambda: 0, 2)),
     "DispatchPolicy.dispatch_by calls its key function"),
    (lambda: task("x", [0], cycles=lambda: 3), "task(cycles=fn) calls fn with the task (one argument)"),
    (lambda: per_core(lambda: None, 2), "per_core calls build with the core number (one argument)"),
])
def test_a_function_of_the_wrong_arity_is_refused_where_it_is_given(make, start):
    with pytest.raises(PtortTypeError) as e:
        make()
    assert e.value.what.startswith(start), e.value.what
    assert "has the parameters" in e.value.what and "placement.py" not in str(e.value)
    assert e.value.where.filename == __file__ and e.value.where.function == "<lambda>"  # the line that passes it


def test_a_workload_called_with_arguments_its_def_lacks_names_the_function_not_ptort_lab():
    with pytest.raises(PtortTypeError) as e:
        line = here() + 1
        module_copy(3)
    assert e.value.what.startswith("the body of @workload 'module_copy' cannot be called with (3): function "
                                   "'module_copy' (test_schedule_bad_input.py:")
    assert "user_code.py" not in str(e.value)
    located(e, line)


# -- D(d). numpy integers count as ints --------------------------------------------------------------------------------
def test_schedule_counts_accept_numpy_integers_as_the_ints_they_hold():
    assert TaskWindow(np.int64(8)).size == 8 and type(TaskWindow(np.int64(8)).size) is int
    for make in (DispatchPolicy.round_robin, DispatchPolicy.work_steal):
        policy = make(np.int64(2))
        assert policy.num_cores == 2 and type(policy.num_cores) is int
    assert DispatchPolicy.affinity(lambda t: 0, np.int32(3)).num_cores == 3
    w = module_copy().streams(np.int64(2))
    assert w.schedule.stream_count == 2 and type(w.schedule.stream_count) is int
    v = module_copy().dispatch(DispatchPolicy.round_robin(np.int64(2))).vector_unit(np.int64(1))
    assert v.schedule.vector_unit == 1 and type(v.schedule.vector_unit) is int
    assert v.compile().execute().stats().total_cycles > 0
    assert TimingPolicy.batched(np.int64(4)).value == 4


@pytest.mark.parametrize("make", [lambda: TaskWindow(np.float64(8)), lambda: DispatchPolicy.round_robin(2.0),
                                  lambda: module_copy().streams(np.bool_(True)), lambda: TaskWindow(True)])
def test_schedule_counts_still_refuse_floats_and_bools(make):
    with pytest.raises(PtortValueError, match="int >= "):
        make()


# -- D(e). P.sel over a concrete list ----------------------------------------------------------------------------------
@pytest.mark.parametrize("values, bad", [([1.5, 2], "1.5 (float, entry 0"), ([0, "2"], "'2' (str, entry 1"),
                                         ([None], "None (NoneType, entry 0"), ((0, True), "True (bool, entry 1")])
def test_a_bad_sel_list_is_refused_at_the_sel_line(values, bad):
    with pytest.raises(PtortTypeError) as e:
        @workload
        def w():
            for e_ in P.sel(values):
                copy_k[e_](src=X[e_], dst=Y[e_])

        line = here() - 3
        w()
    assert e.value.what.startswith(f"select/P.sel over a list needs int indices, got {bad}"), e.value.what
    located(e, line)


def test_sel_accepts_numpy_ints_an_integer_array_and_loop_expressions():
    @workload
    def w():
        for b in P(Dense[2]()):
            for e in P.sel([np.int64(0), b + 2]):
                copy_k[e](src=X[e], dst=Y[e])
        for e in P.sel(np.nonzero(np.array([0, 1, 0, 1]))[0]):
            copy_k[e](src=X[e], dst=Y[e])

    assert [t.params[-1] for t in w().enumerate()] == [0, 2, 0, 3, 1, 3]


# -- D(g). a @workload function has the function's names ---------------------------------------------------------------
def test_a_workload_function_has_name_qualname_doc_and_wrapped():
    w = module_copy
    assert (w.__name__, w.__qualname__, w.__doc__) == ("module_copy", "module_copy", "Copies X to Y, tile by tile.")
    assert w.__module__ == __name__ and inspect.unwrap(w) is w.fn
    assert str(inspect.signature(w)) == "()" and "def module_copy" in inspect.getsource(w)
    assert repr(w) == "<@workload function module_copy>"

    @workload
    def local():
        pass

    assert local.__qualname__.endswith("<locals>.local") and local.__name__ == "local"


def test_a_module_level_workload_function_pickles_and_copies_as_a_function_does():
    assert pickle.loads(pickle.dumps(module_copy)) is module_copy
    assert copy.copy(module_copy) is module_copy and copy.deepcopy(module_copy) is module_copy
    assert len(pickle.loads(pickle.dumps(module_copy))().enumerate()) == 4


def test_writes_through_a_slice_of_a_tensor_without_data_reach_it():
    """Y.slice(...) of a Tensor made with shape= only used to get an array of its own: writes through the slice never
    reached Y (Y.data stayed None). The slice now shares Y's array, allocated as zeros when it is taken."""
    from ptort_lab import DType, In, Out, P, Tensor, Tile, kernel, tl, workload

    T8 = Tile[8, 8, DType.F32]

    @kernel
    def cp(src: In[T8], dst: Out[T8]):
        tl.store(dst, tl.load(src))

    x = np.arange(2 * 8 * 8, dtype=np.float32).reshape(2, 8, 8)
    X, Y = Tensor(data=x), Tensor(shape=(4, 8, 8), dtype=DType.F32)
    lower = Y.slice(2, 4)

    @workload
    def w():
        for t in P(Dense[2]()):
            cp[t](src=X[t], dst=lower[t])

    w().compile().execute()
    np.testing.assert_array_equal(Y.data[2:], x)
    assert not Y.data[:2].any()
