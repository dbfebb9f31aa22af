"""Reference (PTO-WSP v9) compatibility, round 7: P.seq/P.sel default loop-variable names, KernelIR params as
(name, value) pairs and op attrs read by key, tl.load/tl.store offset=/mask=, Kernel.compile(), Tensor layouts,
validate_axis_index, Workload.with_params/layout and the Schedule's reference names, and the smaller constructors."""
import warnings

import pytest
from source_lines import here, located

from ptort_lab import (
    Channel,
    Dense,
    DSLUsageError,
    DType,
    In,
    InOut,
    KernelIR,
    LoopVar,
    Out,
    P,
    PtortTypeError,
    PtortValueError,
    Schedule,
    Tensor,
    TensorLayout,
    TensorReplicate,
    TensorShard,
    Tile,
    Value,
    kernel,
    process,
    task,
    tl,
    validate_axis_index,
    workload,
)
from ptort_lab.dsl.types import Location

F32, F16 = DType.F32, DType.F16


# -- 1: P.seq's default name is "i", P.sel's "e"; neither takes a name from P()'s b, h, s, d, ... ----------------------
def test_p_seq_and_p_sel_default_names_are_the_references():
    """As in the reference: ``t.get("b")`` is the first P axis even under an outer P.seq, ``t.get("i")`` the P.seq
    variable and ``t.get("e")`` the P.sel variable (before, P.seq took "b" and shifted P's names)."""
    @workload
    def w():
        for i in P.seq(Dense[2]()):
            for b in P(Dense[3]()):
                task("k", [i, b], [])

    ts = w().enumerate()
    assert ts[-1].bindings == {"i": 1, "b": 2}
    assert [t.get("b") for t in ts] == [0, 1, 2, 0, 1, 2]
    assert [t.get("i") for t in ts] == [0, 0, 0, 1, 1, 1]

    @workload
    def w2():
        for e in P.sel([5, 6]):
            task("k", [e], [])

    assert [t.bindings for t in w2().enumerate()] == [{"e": 5}, {"e": 6}]


def test_p_seq_default_name_takes_no_name_from_the_p_counter():
    """The P axes after a P.seq (or P.sel) are still b, h, s, ...: the default name takes none of them."""
    @workload
    def w():
        for b in P(Dense[2]()):
            for e in P.sel([7]):
                for i in P.seq(Dense[1]()):
                    for h, s in P(Dense[1](), Dense[2]()):
                        task("k", [b, e, i, h, s], [])

    assert w().enumerate()[-1].bindings == {"b": 1, "e": 7, "i": 0, "h": 0, "s": 1}


def test_nested_default_named_p_seq_is_numbered_and_an_explicit_clash_is_still_refused():
    """A P.seq inside a P.seq with the default name is "i2" (the reference would reuse "i", so its t.get("i") reads
    the inner loop; here it reads the outer one); naming the inner loop "i" explicitly is refused, as before."""
    @workload
    def nested():
        for i in P.seq(Dense[2]()):
            for j in P.seq(Dense[3]()):
                task("k", [i, j], [])

    assert nested().enumerate()[-1].bindings == {"i": 1, "i2": 2}

    @workload
    def clash():
        for i in P.seq(Dense[2]()):
            for j in P.seq(Dense[3](), "i"):
                task("k", [i, j], [])

    line = here() - 3
    with pytest.raises(PtortValueError) as e:
        clash()
    assert e.value.what == "loop variable name 'i' is already used by an enclosing loop."
    assert e.value.hint == "Give the inner loop another name; t.get(name) must say which loop it means."
    located(e, line)


# -- 2: KernelIR params are (name, value) pairs; op attrs read by key ------------------------------------------------
@kernel
def mm(a: In[Tile[4, 8, F32]], b: In[Tile[8, 4, F32]], c: Out[Tile[4, 4, F32]]):
    tl.store(c, tl.matmul(a, b))


@kernel
def to_half(x: In[Tile[4, 4, F32]], y: Out[Tile[4, 4, F16]]):
    tl.store(y, tl.cast(tl.load(x), F16))


def test_kernel_params_are_name_value_pairs_and_keep_their_attributes():
    """The reference's tests/test_kernel_tracing_codegen.py: ``ir.params[0][1].shape == (4, 8)`` and
    ``for name, v in ir.params``."""
    ir = mm.trace()
    assert ir.params[0][1].shape == (4, 8)
    assert [(name, v.shape) for name, v in ir.params] == [("a", (4, 8)), ("b", (8, 4)), ("c", (4, 4))]
    assert len(ir.params[0]) == 2 and ir.params[0][0] == "a" and ir.params[0][-1] is ir.params[0].value
    assert ir.params[2].name == "c" and ir.params[2].is_tile  # the attributes are unchanged


def test_op_attrs_read_by_key_and_the_ir_text_is_unchanged():
    """``op.attrs["dtype"]`` as the reference's dict; a load's and a store's ``offset`` is (0, 0) (the reference
    records it); the pairs, their equality and the printed IR stay as they were."""
    ir = to_half.trace()
    load, cast, store = ir.ops
    assert cast.attrs["dtype"] is F16 and cast.attrs.get("dtype") is F16 and "dtype" in cast.attrs
    assert cast.attrs == (("dtype", F16),) and list(cast.attrs) == [("dtype", F16)]
    assert dict(cast.attrs.items()) == {"dtype": F16} and list(cast.attrs.keys()) == ["dtype"]
    assert load.attrs["offset"] == (0, 0) and store.attrs.get("offset") == (0, 0)
    assert load.attrs == () and not load.attrs and cast.attrs.get("mask", "none") == "none"
    with pytest.raises(KeyError):
        cast.attrs["offset"]
    assert str(ir) == ("kernel to_half(x: In[f32[4,4]], y: Out[f16[4,4]]):\n"
                       "  a: f32[4,4] = load x\n"
                       "  b: f16[4,4] = cast[F16] a\n"
                       "  store y, b")


# -- 13: tl.load / tl.store take the reference's offset= and mask= at their defaults ----------------------------------
def test_load_and_store_accept_the_references_default_offset_and_mask():
    @kernel
    def copy_ref(x: In[Tile[4, 4, F32]], y: Out[Tile[4, 4, F32]]):
        v = tl.load(x, offset=(0, 0), mask=None)
        tl.store(y, v, offset=[0, 0], mask=None)

    @kernel
    def copy(x: In[Tile[4, 4, F32]], y: Out[Tile[4, 4, F32]]):
        tl.store(y, tl.load(x))

    assert str(copy_ref.trace()).replace("copy_ref", "copy") == str(copy.trace())


def test_load_with_another_offset_is_refused_naming_the_slice():
    with pytest.raises(PtortValueError) as e:
        @kernel
        def shifted(x: In[Tile[4, 4, F32]], y: Out[Tile[4, 4, F32]]):
            tl.store(y, tl.load(x, offset=(0, 2)))
    line = here() - 1
    assert e.value.what == "tl.load: offset=(0, 2) is not supported: tl.load moves the whole tile it is given."
    assert e.value.hint == ("Slice the parameter instead (static bounds, only that region moves): "
                            "tl.load(src[r0:r1, c0:c1]).")
    assert e.value.context == "kernel 'shifted'"
    located(e, line)


def test_store_with_a_mask_is_refused_naming_tl_where():
    with pytest.raises(PtortValueError) as e:
        @kernel
        def masked(x: In[Tile[4, 4, F32]], y: InOut[Tile[4, 4, F32]]):
            v = tl.load(x)
            tl.store(y, v, mask=tl.gt(v, 0.0))
    line = here() - 1
    assert e.value.what == "tl.store: mask= is not supported (got u8[4,4]): tl.store moves every element."
    assert e.value.hint == ("Pick per element with tl.where on the whole tile: "
                            "tl.store(dst, tl.where(mask, value, tl.load(dst))) with dst InOut[...].")
    located(e, line)


def test_an_offset_that_is_not_a_pair_of_ints_is_a_type_error():
    with pytest.raises(PtortTypeError) as e:
        @kernel
        def odd(x: In[Tile[4, 4, F32]], y: Out[Tile[4, 4, F32]]):
            tl.store(y, tl.load(x, offset=2))
    line = here() - 1
    assert e.value.what == "tl.load: offset= must be a pair of ints (the reference's default (0, 0)), got 2."
    assert e.value.hint == "Leave offset out; to move a window of the tile, slice it: tl.load(src[r0:r1, c0:c1])."
    located(e, line)


# -- 12: Kernel.compile() is refused as a RuntimeError, pointing at the workload -------------------------------------
def test_kernel_compile_is_a_runtime_error_naming_the_workload():
    with pytest.raises(RuntimeError) as e:
        mm.compile("cpu_sim")
    line = here() - 1
    assert isinstance(e.value, DSLUsageError)
    assert e.value.what == ("Kernel.compile() is not supported: kernel 'mm' runs as tasks of a workload, and the "
                            "workload is what compiles (as at the reference's HEAD).")
    assert e.value.hint == ("Launch it in a @workload and compile that: workload(...).compile(), e.g. @workload def "
                            "w(): mm[t](...) inside a P(...) loop, then w().compile().execute(). mm.trace() gives "
                            "the kernel's IR.")
    located(e, line)


# -- 4: Tensor.layout is the replicated layout by default; views have a layout; a 0-d tensor has 0 bytes -----------
def test_tensor_layout_defaults_to_replicated_and_views_drop_the_indexed_dimensions():
    t = Tensor(data=None, shape=(4, 8), dtype=F16)
    assert t.layout == TensorLayout.default(2) and t.layout.is_replicated()
    sharded = TensorLayout((TensorShard(0), TensorReplicate(), TensorReplicate()))
    t3 = Tensor(data=None, shape=(4, 8, 16), dtype=F32, layout=sharded)
    assert t3[0].layout == TensorLayout((TensorReplicate(), TensorReplicate()))
    assert t3[0, 1].layout == TensorLayout((TensorReplicate(),)) and t3[0, 1, 2].layout is None
    assert t3.slice(1, 3).layout == sharded and not t.with_layout(TensorLayout.sharded(0, 2)).layout.is_replicated()
    assert Tensor(data=None, shape=(), dtype=F32).nbytes() == 0 and t.nbytes() == 64


def test_a_layout_that_is_not_a_tensor_layout_is_refused():
    with pytest.raises(PtortTypeError) as e:
        Tensor(shape=(4, 8), dtype=F32, layout=(TensorShard(0), TensorReplicate()))
    line = here() - 1
    assert e.value.what == "Tensor layout must be a TensorLayout, got tuple (S(0), R)."
    assert e.value.hint == ("Write layout=TensorLayout.sharded(0, 2) or TensorLayout((TensorShard(0), "
                            "TensorReplicate(), ...)), one entry per dimension; leave it out for the replicated "
                            "default.")
    located(e, line)


def test_views_keep_base_and_index_exprs_as_the_reference():
    """The reference's tests/test_tensor_index_tracking.py, with LoopVar(name, axis)."""
    axis = Dense[4]()
    b = LoopVar("b", axis)
    base = Tensor(data=None, shape=(4, 2, 3), dtype=F32)
    v2 = base[b][1]
    assert v2.base is base and v2.index_exprs[0] is b and v2.index_exprs[1] == 1
    assert b.axis is axis and base.base is base and base.index_exprs == ()


# -- 6: validate_axis_index ---------------------------------------------------------------------------------------
def test_validate_axis_index_returns_true_when_inside():
    assert validate_axis_index(Dense[4](), 3) is True
    with pytest.raises(TypeError):
        validate_axis_index(Dense[4](), 5)


# -- 9: Workload.with_params / layout() and the Schedule's reference names -------------------------------------------
def test_with_params_records_the_named_axes_on_a_copy():
    batch, heads = Dense[4](), Dense[8]()
    w = task("kernel", [], [])
    w2 = w.with_params(("batch", batch), ("heads", heads))
    assert w2.schedule.params == (("batch", batch), ("heads", heads)) and w.schedule.params == ()
    with pytest.raises(PtortTypeError) as e:
        w.with_params("batch")
    line = here() - 1
    assert e.value.what == "with_params() takes (name, axis) pairs, got 'batch'."
    assert e.value.hint == 'Write .with_params(("batch", Dense[4]()), ("heads", Dense[8]())).'
    located(e, line)


def test_workload_layout_is_deprecated_and_returns_a_copy():
    t = Tensor(data=None, shape=(4, 8), dtype=F16)
    w = task("kernel", [], [])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        w2 = w.layout(t, TensorShard(0), TensorReplicate())
    line = here() - 1
    assert len(caught) == 1 and issubclass(caught[0].category, DeprecationWarning)
    assert (caught[0].filename, caught[0].lineno) == (__file__, line)
    assert str(caught[0].message) == ("Workload.layout() is deprecated (as in the reference) and does not change the "
                                      "run: give the tensor its layout instead, Tensor(..., "
                                      "layout=TensorLayout((TensorShard(0), TensorReplicate()))).")
    assert w2 is not w and w2.schedule == w.schedule


def test_schedule_streams_and_to_dict_as_the_reference():
    s = Schedule()
    assert s.streams == 1 and s.dispatch is None and s.stream_by is None and s.timing is None
    assert s.to_dict() == {}
    s4 = Schedule(dispatch="policy", streams=4, timing="immediate")
    assert s4.stream_count == 4 and s4.streams == 4
    assert s4.to_dict() == {"dispatch": "policy", "streams": 4, "timing": "immediate"}
    assert task("kernel", [], []).streams(4).schedule.streams == 4
    assert task("kernel", [], []).streams(2).task_graph().schedule.streams == 1  # task_graph() clears streams
    with pytest.raises(PtortTypeError) as e:
        Schedule(streams=4, stream_count=2)
    line = here() - 1
    assert e.value.what == ("Schedule(streams=..., stream_count=...): streams is the reference's name for "
                            "stream_count; give one of them.")
    assert e.value.hint == "Write Schedule(streams=4)."
    located(e, line)


# -- 14: the smaller reference attributes and constructors ------------------------------------------------------------
def test_direction_markers_have_the_references_private_parts():
    assert In[Tensor]._direction == "in" and Out[Tensor]._direction == "out" and InOut[Tensor]._direction == "inout"
    assert In[Tile[4, 4, F32]]._inner_type == Tile[4, 4, F32]


def test_value_takes_the_references_constructor_and_has_a_location():
    v = Value(1, F16, (32, 128), Location.UB, "x")
    assert (v.id, v.shape, v.dtype, v.location, v.name, v.debug_name) == (1, (32, 128), F16, Location.UB, "x", "x")
    assert v == Value(1, Tile[32, 128, F16], "x")
    assert Value(2, dtype=F32).shape == () and Value(2, dtype=F32).location is Location.UB
    assert Value.tile(32, 128).location is Location.UB and Value.tile(4, 4, F32, Location.L1).location is Location.L1
    with pytest.raises(PtortTypeError) as e:
        Value(1, F16, (32,))
    line = here() - 1
    assert e.value.what == "Value(id, dtype, shape, ...): shape must be (rows, cols) or None, got (32,)."
    assert e.value.hint == "Write Value(1, DType.F16, (32, 128)), or Value.tile(32, 128, DType.F16)."
    located(e, line)


def test_kernel_ir_has_schedule_hints():
    ir = KernelIR(name="k", params=(), ops=(), schedule_hints={"tile": 64})
    assert ir.schedule_hints == {"tile": 64} and KernelIR("k", (), ()).schedule_hints == {}
    assert mm.trace().schedule_hints == {}


def test_loop_var_refuses_an_index_other_than_zero():
    with pytest.raises(PtortValueError) as e:
        LoopVar("b", Dense[4](), 2)
    line = here() - 1
    assert e.value.what == ("LoopVar('b', axis, index=2): a loop variable has no value of its own; each task's "
                            "bindings give it one.")
    assert e.value.hint == ("Write LoopVar('b', axis) (index 0, the reference's default), or use the variable a "
                            "P(...) loop yields.")
    located(e, line)


# -- 10: a process's body workload is .workload; .body stays the method that sets it ----------------------------------
def test_process_body_is_the_setter_and_workload_the_body():
    ch = Channel("c", depth=2)
    body = task("t", [], [])
    p = process("x").produces(ch).body(body)
    assert p.workload is body and callable(p.body)


def test_an_unknown_task_window_unit_is_told_the_one_unit_simulated():
    """hunt7a #15: the hint listed 'bytes' and 'entries', which the next check refuses as not simulated."""
    from ptort_lab.dsl.schedule import TaskWindow
    with pytest.raises(PtortValueError) as e:
        TaskWindow(10, "pages")
    assert e.value.what == "Invalid unit: pages"
    assert e.value.hint.startswith("Use unit='tasks', the only unit simulated: TaskWindow(10, 'tasks')")
