"""Reference-style (PTO-WSP v9) code, round 7: the Program's reference knobs (``using_cpp_backend``,
``set_axis_sizes`` with ``DenseDyn(0)``, the symbol setters), the reference's error classes and type-checker
functions, its submodule imports through ``ptort_lab.compat``, and the porting guide that documents them."""
from __future__ import annotations

import importlib
import re
import sys
from pathlib import Path

import numpy as np
import pytest
from source_lines import here, located

import ptort_lab
import ptort_lab.compat as pto_wsp
from ptort_lab import (
    Channel,
    Dense,
    DenseDyn,
    DispatchPolicy,
    DType,
    In,
    Out,
    P,
    PinnedCosts,
    PipelineError,
    PtortTypeError,
    PtortValueError,
    Ragged,
    TaskWindow,
    Tensor,
    Tile,
    WindowMode,
    connect,
    consume,
    for_each,
    kernel,
    process,
    send,
    task,
    tl,
    workload,
)
from ptort_lab.errors import CompileError, IRConversionError, ScheduleError

ROOT = Path(__file__).resolve().parents[1]
PORTING = (ROOT / "docs" / "howto" / "port_from_v9.md").read_text(encoding="utf-8")


@kernel
def double(src: In[Tile[4, 4, DType.F32]], dst: Out[Tile[4, 4, DType.F32]]):
    tl.store(dst, tl.muls(tl.load(src), 2.0))


def _doubles(axis):
    """A workload doubling tile b of X into Y for every b of ``axis``, and its tensors (4 tiles of 4x4)."""
    x = np.arange(4 * 4 * 4, dtype=np.float32).reshape(4, 4, 4)
    X, Y = Tensor(data=x), Tensor(data=np.zeros_like(x))

    @workload
    def doubles():
        for b in P(axis):
            double[b](src=X[b], dst=Y[b])

    return doubles(), x, Y


# -- item 3: using_cpp_backend, codegen_artifact_dir ------------------------------------------------------------------
def test_using_cpp_backend_is_true_and_read_only():
    """The reference's tests assert it after compile(): a ptort_lab program really runs (on the simulator)."""
    program = task("k", [], []).compile(target="cpu_sim")
    assert program.using_cpp_backend is True
    with pytest.raises(AttributeError):
        program.using_cpp_backend = False  # type: ignore[misc]
    assert program.codegen_artifact_dir is None  # the reference's value for a program that runs in place
    assert "really runs" in type(program).using_cpp_backend.__doc__


# -- item 11: DenseDyn(0) and set_axis_sizes --------------------------------------------------------------------------
def test_dense_dyn_sized_at_run_time_reruns_at_each_size_without_recompiling():
    """The reference's test_dense_dyn_axis_size_can_change_without_recompile: DenseDyn(0), then set_axis_sizes by the
    loop variable's name before each execute(); values and task counts follow the size set."""
    w, x, Y = _doubles(DenseDyn(0))
    program = w.compile(target="cpu_sim")
    program.set_axis_sizes({"b": 2})
    assert len(program.enumerate()) == 2
    program.execute()
    program.synchronize()
    assert program.stats.task_count == 2
    np.testing.assert_array_equal(Y.data[:2], x[:2] * 2)
    assert not Y.data[2:].any()
    cycles2 = program.stats.total_cycles
    program.set_axis_sizes({"b": 4})
    program.execute()
    assert program.stats.task_count == 4 and program.stats.total_cycles > cycles2
    np.testing.assert_array_equal(Y.data, x * 2)


def test_set_axis_sizes_resizes_a_dense_dyn_of_a_size_and_leaves_the_built_axis_alone():
    axis = DenseDyn(4)
    w, _, _ = _doubles(axis)
    program = w.compile(compute_values=False)
    program.set_axis_sizes({"b": np.int64(3)})
    assert program.execute().stats.task_count == 3
    assert axis.size == 4 and len(w.enumerate()) == 4  # only the program's runs see the size
    assert w.compile().execute().stats.task_count == 4


def test_a_run_of_an_unsized_dense_dyn_names_its_loop_and_the_call():
    w, _, _ = _doubles(DenseDyn(0)); built = f"{Path(__file__).name}:{here()}"  # noqa: E702
    program = w.compile()
    with pytest.raises(PtortValueError) as e:
        line = here() + 1
        program.execute()
    assert e.value.what == (f"loop 'b' runs over DenseDyn(0) (built at {built}), whose size is set at run time, but "
                            "none was set.")
    assert e.value.hint == ("Call program.set_axis_sizes({'b': n}) before running it, or build the axis with its "
                            "size, DenseDyn(n).")
    located(e, line)
    with pytest.raises(PtortValueError, match="loop 'b' runs over DenseDyn"):
        program.enumerate()


def test_listing_an_unsized_dense_dyn_outside_a_program_points_at_the_axis():
    axis = DenseDyn(0); line = here()  # noqa: E702
    w = for_each(axis, lambda i: task("k", [i], []))
    with pytest.raises(PtortValueError) as e:
        w.enumerate()
    assert e.value.what == "DenseDyn(0) has no size: it is sized at run time, and no size was set for this run."
    assert e.value.hint == ("Compile the workload and set the size by its loop variable's name before running: "
                            "program.set_axis_sizes({'b': 4}) ('b' names the first P axis); or build the axis with "
                            "its size, DenseDyn(4). (0 is the reference's 'sized at run time', not an empty loop: a "
                            "size that may come out 0 launches nothing under cond(n > 0, ...) or P.when(n > 0).)")
    located(e, line)


def test_a_negative_dense_dyn_names_zero_as_the_run_time_size():
    with pytest.raises(PtortValueError) as e:
        DenseDyn(-1)
    assert e.value.what == "DenseDyn size must be positive, got -1."
    assert e.value.hint == ("An axis with no iterations builds no tasks; use a size >= 1, or DenseDyn(0) for a size "
                            "the program sets at run time (program.set_axis_sizes).")


def test_set_axis_sizes_refuses_what_it_cannot_size_naming_the_loop():
    program = _doubles(DenseDyn(0))[0].compile()
    with pytest.raises(PtortValueError) as e:
        line = here() + 1
        program.set_axis_sizes({"c": 2})
    assert e.value.what == "set_axis_sizes: no loop of this program is named 'c'."
    assert e.value.hint == "Its loops over a DenseDyn are 'b'."
    located(e, line)
    with pytest.raises(PtortValueError) as e:
        program.set_axis_sizes({"b": 0})
    assert e.value.what == "set_axis_sizes: loop 'b' size must be an int >= 1, got 0."
    with pytest.raises(PtortTypeError) as e:
        program.set_axis_sizes({"b": 2.0})
    assert e.value.what == "set_axis_sizes: loop 'b' size must be an int >= 1, got float 2.0."
    with pytest.raises(PtortTypeError) as e:
        program.set_axis_sizes([("b", 2)])  # type: ignore[arg-type]
    assert e.value.what == "set_axis_sizes takes a dict {loop variable: size}, got list [('b', 2)]."
    with pytest.raises(PtortValueError, match="no loop of this program is named 'c'"):
        program.set_axis_sizes({"b": 3, "c": 1})
    with pytest.raises(PtortValueError, match="loop 'b' runs over DenseDyn"):  # nothing was set by the refused call
        program.execute()

    static = _doubles(Dense[4]())[0].compile()
    with pytest.raises(PtortValueError) as e:
        static.set_axis_sizes({"b": 2})
    assert e.value.what == ("set_axis_sizes: loop 'b' runs over Dense[4](), a static axis; only a DenseDyn of a "
                            "whole-number size takes its size at run time.")
    assert e.value.hint == ("Build the loop over DenseDyn(0) (or DenseDyn(n)) to size it with set_axis_sizes, or "
                            "build the workload again with the new size.")
    ragged = Ragged(2, [1, 2])
    per_row = for_each(Dense[2](), lambda r: for_each(DenseDyn(ragged.length(r)), lambda j: task("k", [r, j], [])))
    inner = per_row.body.vars[0].name
    with pytest.raises(PtortValueError) as e:
        per_row.compile().set_axis_sizes({inner: 2})
    outer = per_row.vars[0].name
    assert e.value.what == (f"set_axis_sizes: loop '{inner}' runs over DenseDyn(len[{outer}]), a DenseDyn sized by "
                            f"the expression len[{outer}], computed per iteration; only a DenseDyn of a whole-number "
                            "size takes its size at run time.")


def test_set_axis_sizes_sizes_a_pipeline_process_loop():
    tiles = DenseDyn(0)
    ch = Channel("c", depth=2)
    producer = process("producer").produces(ch).body(for_each(tiles, lambda i: send(ch, task("load", [i], []))))
    consumer = process("consumer").consumes(ch).body(consume(ch, lambda t: task("use", [t], [])))
    program = connect([producer, consumer], [ch]).compile()
    name = producer.workload.vars[0].name
    with pytest.raises(PtortValueError, match=f"loop '{name}' runs over DenseDyn"):
        program.execute()
    program.set_axis_sizes({name: 3})
    assert program.execute().stats.task_count == 6


def test_set_symbol_f32_and_ptr_refuse_what_the_program_does_not_read():
    """The setters take only the symbols a program reads (tests/test_reference_symbols_*.py): a program of one
    abstract task reads none, and the channel latency is a whole number."""
    program = task("k", [], []).compile()
    with pytest.raises(PtortTypeError) as e:
        program.set_symbol_f32("__pto_wsp_channel_latency_cycles", 50.0)
    assert e.value.what == ("set_symbol_f32('__pto_wsp_channel_latency_cycles', 50.0): the channel latency is a "
                            "whole number of cycles, not an f32.")
    assert e.value.hint == "Write program.set_symbol_u64('__pto_wsp_channel_latency_cycles', 50)."
    nothing = ("It reads no symbol and loops over no Ragged or Sparse axis. A program reads Symbol('name') given to a "
               "kernel (or as an index or size), symbol_u64('name') and t.tags['name'] in a dispatch key, and "
               "outer_<id> / lengths_<id> / indptr_<id> / indices_<id> for the Ragged and Sparse axes it loops over.")
    with pytest.raises(PtortValueError) as e:
        line = here() + 1
        program.set_symbol_f32("scale_s", 2.0)
    assert e.value.what == ("unknown symbol 'scale_s': this program reads no symbol of that name, so setting it would "
                            "change nothing.")
    assert e.value.hint == nothing
    located(e, line)
    with pytest.raises(PtortValueError) as e:
        program.set_symbol_ptr("lengths", np.zeros(4))
    assert e.value.what == ("set_symbol_ptr('lengths', ...): this program has no pointer symbol 'lengths'. Pointer "
                            "symbols bind the arrays of its Ragged and Sparse axes: lengths_<id>, indptr_<id> and "
                            "indices_<id>, with <id> the axis's id().")
    assert e.value.hint == nothing


# -- item 8: the reference's error classes and type-checker functions -------------------------------------------------
def test_the_reference_error_classes_and_their_hierarchy():
    assert issubclass(pto_wsp.TypeCheckError, pto_wsp.CompileError)  # as in the reference
    for cls in (PtortTypeError, PtortValueError, PipelineError, ScheduleError, IRConversionError):
        assert issubclass(cls, CompileError) and issubclass(cls, pto_wsp.PtoError)
    assert issubclass(ScheduleError, ValueError)
    assert pto_wsp.CompileError is CompileError and pto_wsp.ScheduleError is ScheduleError
    assert pto_wsp.IRConversionError is IRConversionError
    e = CompileError("Codegen compilation failed: x", workload_name="w", target="cpu_sim")
    assert (str(e).splitlines()[0], e.workload_name, e.target) == ("Codegen compilation failed: x", "w", "cpu_sim")
    s = ScheduleError("no streams here", primitive="streams", target="npu")
    assert (s.primitive, s.target, s.workload_name) == ("streams", "npu", None)
    assert PtortValueError("v").workload_name is None
    with pytest.raises(CompileError):  # what compile() refuses, as the reference's except CompileError catches it
        task("k", [], []).compile(bogus=1)


def test_check_kernel_call_and_check_layouts_compatible_as_the_reference_describes():
    @pto_wsp.kernel
    def my_kernel(a: In[pto_wsp.Tensor], b: Out[pto_wsp.Tensor]):
        pass

    assert pto_wsp.check_kernel_call(my_kernel, (), {"a": None, "b": None}) == []
    missing = pto_wsp.check_kernel_call(my_kernel, (), {"a": None})
    assert [e.kind for e in missing] == [pto_wsp.TypeErrorKind.ARITY_MISMATCH]
    extra = pto_wsp.check_kernel_call(my_kernel, (0,), {"a": None, "b": None, "c": None})
    assert [e.kind for e in extra] == [pto_wsp.TypeErrorKind.ARITY_MISMATCH]
    with pytest.raises(PtortTypeError, match="missing argument 'b'"):
        pto_wsp.check_kernel_call(my_kernel, (), {"a": None}, fail_fast=True)
    with pytest.raises(PtortTypeError) as e:
        pto_wsp.check_kernel_call(my_kernel, 3, {})  # type: ignore[arg-type]
    assert e.value.what == ("check_kernel_call(kernel, axes, args): axes must be a tuple of the launch's loop values, "
                            "got int 3.")

    R, S = pto_wsp.LayoutReplicate, pto_wsp.LayoutShard
    t1 = Tensor(shape=(4, 4), dtype=DType.F16, layout=pto_wsp.Layout((R(), R())))
    t2 = Tensor(shape=(4, 4), dtype=DType.F16, layout=pto_wsp.Layout((S(0), R())))
    t3 = Tensor(shape=(4, 4), dtype=DType.F16, layout=pto_wsp.Layout((S(1), R())))
    joined = pto_wsp.check_layouts_compatible(t1, t2)
    assert repr(joined) == "TensorLayout(S(0), R)" and isinstance(joined.dist[0], pto_wsp.LayoutShard)
    assert pto_wsp.check_layouts_compatible(t2, t3) is None
    assert pto_wsp.check_layouts_compatible(t2) == t2.layout and pto_wsp.check_layouts_compatible() is None


def test_get_direction_get_inner_type_and_dist_elem():
    tile = Tile[4, 4, DType.F32]
    assert [pto_wsp.get_direction(h) for h in (In[tile], Out[tile], pto_wsp.InOut[tile], pto_wsp.Constexpr[int])] \
        == ["in", "out", "inout", "constexpr"]
    assert (pto_wsp.get_direction(In), pto_wsp.get_direction("Out[Tile]"), pto_wsp.get_direction(int)) \
        == ("in", "out", "unknown")
    assert pto_wsp.get_inner_type(In[tile]) == tile and pto_wsp.get_inner_type(tile) is None
    assert isinstance(pto_wsp.TensorReplicate(), pto_wsp.DistElem)
    assert isinstance(pto_wsp.TensorShard(0), pto_wsp.DistElem) and not isinstance(0, pto_wsp.DistElem)


def test_every_reference_name_is_provided_or_listed_as_not_provided():
    """The report's list of the reference's public names: each is in ptort_lab.compat, or in the porting guide's
    "What is not provided"."""
    names = ["CompileError", "ScheduleError", "IRConversionError", "check_kernel_call", "check_layouts_compatible",
             "extract_kernel_params", "get_direction", "get_inner_type", "DistElem", "CompiledKernel", "LinearLayout",
             "f2_dot", "f2_matmul", "f2_rank", "propagate_transpose", "propagate_reshape", "propagate_broadcast",
             "to_tensor_layout", "from_tensor_layout", "workload_to_ir", "workload_to_codegen_ir",
             "module_to_string", "parse_ir_string", "IRBridgeError", "HAS_CPP_BINDINGS", "cpp", "AutoScheduler",
             "SearchSpace", "ScheduleConfig", "ExplorationResult", "ExplorationSummary", "auto_schedule",
             "set_axis_sizes", "set_symbol_f32", "set_symbol_ptr"]
    not_provided = PORTING[PORTING.index("## What is not provided"):]
    missing = [n for n in names if not hasattr(pto_wsp, n) and not hasattr(ptort_lab.Program, n)
               and f"`{n}`" not in not_provided]
    assert missing == []
    assert "check_kernel_call" in pto_wsp.__all__ and "CompileError" in pto_wsp.__all__


# -- item 7: the reference's submodules --------------------------------------------------------------------------------
def test_the_reference_submodules_import_from_compat():
    from ptort_lab.compat.builder import KernelRef, get_direction
    from ptort_lab.compat.csp import Channel as CspChannel
    from ptort_lab.compat.errors import CompileError as Err
    from ptort_lab.compat.errors import KernelError, PtoError
    from ptort_lab.compat.kernel import OpKind
    from ptort_lab.compat.p_namespace import LoopVar
    from ptort_lab.compat.p_namespace import P as PLoop
    from ptort_lab.compat.primitives import for_each as fe
    from ptort_lab.compat.schedule import TaskWindow as TW
    from ptort_lab.compat.type_checker import check_layouts_compatible
    from ptort_lab.compat.types import DenseDyn as DD
    from ptort_lab.compat.types import DistElem
    from ptort_lab.compat.workload import Schedule, Workload

    assert CspChannel is Channel and fe is for_each and PLoop is P and DD is DenseDyn and TW is TaskWindow
    assert Err is CompileError and issubclass(KernelError, PtoError) and KernelRef is ptort_lab.Kernel
    assert Workload is ptort_lab.Workload and Schedule is ptort_lab.Schedule and OpKind is ptort_lab.OpKind
    assert LoopVar is ptort_lab.LoopVar and get_direction is pto_wsp.get_direction and DistElem is pto_wsp.DistElem
    assert check_layouts_compatible is pto_wsp.check_layouts_compatible
    assert pto_wsp.csp is ptort_lab.csp and pto_wsp.types.Tensor is Tensor
    assert pto_wsp.workload is workload and pto_wsp.kernel is kernel  # the decorators, as in the reference
    scalar_expr = importlib.import_module("ptort_lab.compat.scalar_expr")  # run-time symbols in dispatch keys
    assert scalar_expr.Expr is ptort_lab.dsl.scalar_expr.ScalarExpr and scalar_expr.Symbol is pto_wsp.Symbol


def test_the_reference_imports_run_unchanged_under_an_alias(monkeypatch):
    """sys.modules["pto_wsp"] = ptort_lab.compat: the reference's CSPT test's imports run as written, and the
    decorators stay the package's attributes."""
    monkeypatch.setitem(sys.modules, "pto_wsp", pto_wsp)
    try:
        exec("from pto_wsp.csp import Channel, consume, connect, process, send\n"
             "from pto_wsp.primitives import for_each\n"
             "from pto_wsp.workload import Workload\n"
             "import pto_wsp.kernel\n", scope := {})
        assert scope["Workload"] is ptort_lab.Workload and scope["for_each"] is for_each
        assert pto_wsp.workload is workload and pto_wsp.kernel is kernel
        assert sys.modules["pto_wsp.workload"] is sys.modules["ptort_lab.compat.workload"]
        exec("import pto_wsp.scalar_expr", scope := {})
        assert scope["pto_wsp"].scalar_expr is sys.modules["ptort_lab.compat.scalar_expr"]
    finally:
        for name in [n for n in sys.modules if n.startswith("pto_wsp.")]:
            del sys.modules[name]


# -- item 5: dispatch and window relations -------------------------------------------------------------------------
def _copy_runs(**options):
    """The reference's test_codegen_schedule_dispatch_window: 4 copies of a 4x4 F32 tile, undispatched, round_robin(2),
    and round_robin(2) with a window of 1 task; their total cycles."""
    x = np.arange(64, dtype=np.float32).reshape(4, 4, 4)
    A, B = Tensor(data=x), Tensor(data=np.zeros_like(x))

    @kernel
    def copy_tile(src: In[Tile[4, 4, DType.F32]], dst: Out[Tile[4, 4, DType.F32]]):
        tl.store(dst, src)

    @workload
    def wl():
        for t in P(Dense[4]()):
            copy_tile[t](src=A[t], dst=B[t])

    rr2 = DispatchPolicy.round_robin(2)
    window = TaskWindow(1, "tasks", WindowMode.STALL)
    return [w.compile(**options).execute().stats.total_cycles
            for w in (wl(), wl().dispatch(rr2), wl().dispatch(rr2).task_graph(window=window))]


def test_the_reference_dispatch_relations_hold_with_pinned_costs_not_on_the_npu_model():
    """As the porting guide says: with fixed task costs 4D, 2D, 4D exactly; on the NPU model core 0 already overlaps
    the tasks, so a window of 1 is slower than no dispatch."""
    assert _copy_runs(cost_model=PinnedCosts(32)) == [128, 64, 128]
    none, _, window_1 = _copy_runs()
    assert window_1 > none
    assert "PinnedCosts(32)" in PORTING and "128, 64 and 128 cycles" in PORTING


# -- item 15: the docs point to places that exist ---------------------------------------------------------------------
def test_the_porting_list_is_where_the_docs_say():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Porting code from the reference (PTO-WSP v9)"):]
    assert "(docs/howto/port_from_v9.md)" in section.split("\n## ")[0]
    assert "README's section" not in PORTING and "[What is not provided](#what-is-not-provided)" in PORTING
    assert "README" not in (pto_wsp.__doc__ or "") and "docs/howto/port_from_v9.md" in (pto_wsp.__doc__ or "")
    assert re.search(r"default channel latency\*\* is the 910B's cross-core hop, 1000 cycles", PORTING)
    assert "`compile(channel_latency_cycles=0)`" in PORTING
