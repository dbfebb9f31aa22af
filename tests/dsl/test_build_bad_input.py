"""Bad DSL input, round 2: unsent produces, un-entered blocks, stray loop variables, bad sends, tl call mistakes."""
import copy
import inspect
import pickle

import numpy as np
import pytest
from source_lines import here, located

from ptort_lab import (
    Channel,
    Dense,
    DSLUsageError,
    DType,
    Event,
    In,
    Out,
    P,
    PipelineError,
    PtortTypeError,
    PtortValueError,
    Tensor,
    Tile,
    cond,
    connect,
    consume,
    for_each,
    kernel,
    process,
    replicate,
    send,
    task,
    tl,
    workload,
)
from ptort_lab.csp import send_nowait, try_send
from ptort_lab.dsl.expr import LoopVar
from ptort_lab.dsl.tree import Workload
from ptort_lab.dsl.wiring import per_core
from ptort_lab.dsl.workload import WorkloadFunction

F32 = DType.F32
T = Tile[8, 8, F32]


@kernel
def copy_k(src: In[T], dst: Out[T]):
    tl.store(dst, tl.load(src))




def tensors(n: int = 4):
    x = np.arange(n * 64, dtype=np.float32).reshape(n, 8, 8)
    return x, Tensor(data=x.copy()), Tensor(data=np.full_like(x, 7.0))


# -- 1. a declared produce that is never sent --------------------------------------------------------------------------
def test_a_produced_channel_the_body_never_sends_to_is_refused_at_connect():
    _, X, Y = tensors()
    Z = Tensor(data=np.full((4, 8, 8), 7.0, np.float32))
    ch = Channel("q", depth=2)
    a = process("a").produces(ch).body(for_each(Dense[4](), lambda t: copy_k[t](src=X[t], dst=Y[t])))
    b = process("b").consumes(ch).body(consume(ch, lambda t: copy_k[t](src=Y[t], dst=Z[t])))
    with pytest.raises(PipelineError) as e:
        line = here() + 1
        connect(a, b)
    assert e.value.what.startswith("process 'a' declares it produces channel 'q' but its body never sends to it, so "
                                   "its consumer would never get an item")
    assert "drop .produces(q)" in e.value.hint
    located(e, line)


def test_a_send_in_one_branch_of_a_cond_counts_as_a_send():
    x, X, Y = tensors()
    Z = Tensor(data=np.zeros_like(x))
    ch = Channel("q", depth=2)
    a = process("a").produces(ch).body(for_each(Dense[4](), lambda t: cond(
        t < 2, send(ch, copy_k[t](src=X[t], dst=Y[t])), copy_k[t](src=X[t], dst=Y[t]))))
    b = process("b").consumes(ch).body(consume(ch, lambda t: copy_k[t](src=Y[t], dst=Z[t])))
    program = connect(a, b).compile().execute()
    assert program.stats().task_count == 6
    np.testing.assert_array_equal(Z.data[:2], x[:2])
    assert not Z.data[2:].any()


# -- 2. block helpers called without `with` ----------------------------------------------------------------------------
def _when_alone(t):
    P.when(t < 2)  # the mistake
    task("k", [t])


def _when_assigned(t):
    task("k", [t])
    c = P.when(t < 2)  # the mistake
    del c


def _elif_alone(t):
    with P.when(t < 1):
        task("k", [t])
    P.elif_(t < 2)  # the mistake
    task("j", [t])


def _otherwise_alone(t):
    with P.when(t < 1):
        task("k", [t])
    P.otherwise()  # the mistake
    task("j", [t])


@pytest.mark.parametrize("body, api, effect", [
    (_when_alone, "P.when", "the statements after it run for every iteration, as if the condition always held"),
    (_when_assigned, "P.when", "the statements after it run for every iteration"),
    (_elif_alone, "P.elif_", "the statements after it run for every iteration"),
    (_otherwise_alone, "P.otherwise", "the statements after it run for every iteration, not only where"),
], ids=["when", "when-assigned-last", "elif", "otherwise"])
def test_a_block_helper_called_without_with_is_refused_at_its_line(body, api, effect):
    @workload
    def w():
        for t in P(Dense[4]()):
            body(t)

    with pytest.raises(DSLUsageError) as e:
        w()
    assert e.value.what.startswith(f"{api}(...) was called without `with`: it opens a block, so on its own it does "
                                   f"nothing and {effect}")
    assert e.value.hint == f"Write `with {api}(...):` and indent the statements it governs under it."
    source = inspect.getsource(body).splitlines()
    mistake = next(i for i, text in enumerate(source) if "# the mistake" in text)
    located(e, body.__code__.co_firstlineno + mistake)


def test_a_pipe_called_without_with_is_refused():
    @workload
    def w():
        line = here() + 1
        P.pipe()
        for t in P(Dense[4]()):
            task("k", [t])
        return line

    with pytest.raises(DSLUsageError) as e:
        w()
    assert e.value.what.startswith("P.pipe(...) was called without `with`: it opens a block, so on its own it does "
                                   "nothing and no pipeline is built")
    assert e.value.where is not None and e.value.where.code == "P.pipe()"


def test_a_block_made_first_and_entered_at_once_still_works():
    @workload
    def w():
        for t in P(Dense[4]()):
            block = P.when(t < 2)
            with block:
                task("k", [t])

    assert [t.params for t in w().enumerate()] == [[0], [1]]


def test_a_block_entered_twice_is_refused():
    @workload
    def w():
        for t in P(Dense[4]()):
            block = P.when(t < 2)
            with block:
                task("k", [t])
            with block:
                task("j", [t])

    with pytest.raises(DSLUsageError, match=r"^this P.when\(...\) block \(made at .*\) is entered a second time"):
        w()


# -- 7. loop variables outside their loop ------------------------------------------------------------------------------
def _build(fn):
    with pytest.raises(DSLUsageError) as e:
        workload(fn)()
    return e


def test_break_inside_a_p_loop_is_refused_at_the_break():
    _, X, Y = tensors()

    def w():
        for t in P(Dense[4]()):
            copy_k[t](src=X[t], dst=Y[t])
            break

    e = _build(w)
    loop_line = w.__code__.co_firstlineno + 1
    assert e.value.what.startswith(f"the P() loop at {__file__.rsplit('/', 1)[-1]}:{loop_line} was left before the "
                                   "end of its body (`break`, `return`, or next() on P(...)).")
    assert "with P.when(t < n):" in e.value.hint
    located(e, loop_line + 2)


def test_return_inside_a_p_seq_loop_is_refused():
    def w():
        for t in P.seq(Dense[4]()):
            task("k", [t])
            return

    e = _build(w)
    assert e.value.what.startswith("the P.seq() loop at ")
    located(e, w.__code__.co_firstlineno + 3)


def test_next_on_a_p_loop_is_refused():
    def w():
        t = next(iter(P(Dense[4]())))
        task("k", [t])

    e = _build(w)
    assert e.value.what.startswith("the P() loop at ")
    located(e, w.__code__.co_firstlineno + 1)


def test_zip_over_p_loops_is_refused_instead_of_building_into_a_stale_frame():
    def w():
        for a, b in zip(P(Dense[2]()), P(Dense[3]())):
            task("k", [a, b])
        task("after", [0])

    e = _build(w)
    assert e.value.what.startswith("the P() loop at ")
    assert "ended while a loop opened after it was still open (zip() or next() over P(...) loops?)" in e.value.what
    assert e.value.hint.startswith("Nest the loops")
    located(e, w.__code__.co_firstlineno + 1)


def test_a_loop_variable_used_after_its_loop_is_refused_by_its_name():
    _, X, Y = tensors()

    def w():
        for t in P(Dense[4]()):
            copy_k[t](src=X[t], dst=Y[t])
        copy_k[t](src=X[t], dst=Y[t])

    e = _build(w)
    first = w.__code__.co_firstlineno
    assert e.value.what == (f"loop variable `t` (named 'b' in the workload) of the P() loop at "
                            f"{__file__.rsplit('/', 1)[-1]}:{first + 1} is used outside that loop, where it has no "
                            "value.")
    assert e.value.hint.startswith("Use a loop variable only inside the body of its loop.")
    located(e, first + 3)


def test_list_of_a_p_loop_gives_variables_that_are_refused():
    def w():
        ts = list(P(Dense[4](), names=["i"]))
        task("k", [ts[0]])

    e = _build(w)
    assert e.value.what.startswith("loop variable `i` of the P() loop at ")
    located(e, w.__code__.co_firstlineno + 2)


def test_a_loop_variable_of_another_workload_is_refused():
    saved = []

    @workload
    def first():
        for t in P(Dense[2]()):
            saved.append(t)
            task("k", [t])

    first()

    def second():
        for s in P(Dense[2]()):
            task("k", [s + saved[0]])

    e = _build(second)
    assert e.value.what == ("`b` is not a variable of any loop open here (it belongs to another workload or body, or "
                            "was made by hand), so it has no value here.")
    located(e, second.__code__.co_firstlineno + 2)


def test_a_condition_on_a_variable_after_its_loop_is_refused_at_the_block():
    def w():
        for t in P(Dense[4]()):
            task("k", [t])
        with P.when(t < 2):
            task("j", [0])

    e = _build(w)
    assert e.value.what.startswith("loop variable `t` (named 'b' in the workload) of the P() loop at ")
    located(e, w.__code__.co_firstlineno + 3)


def test_a_for_each_variable_kept_past_its_body_is_refused():
    kept = []
    for_each(Dense[2](), lambda t: kept.append(t))
    with pytest.raises(DSLUsageError) as e:
        line = here() + 1
        for_each(Dense[2](), lambda i: task("k", [i, kept[0]]))
    assert e.value.what.startswith("`t` is not a variable of any loop open here")
    located(e, line)


def test_loop_variables_used_inside_their_loops_still_build():
    """Nested loops, an outer variable in an inner loop, a nested @workload given the variable, sibling loops that
    reuse a name, P.when on an enclosing variable, and a for_each inside a consume."""
    @workload
    def inner(b):
        task("inner", [b])

    @workload
    def w():
        for b in P(Dense[2](), names=["b"]):
            for h in P(Dense[2](), names=["h"]):
                with P.when(b < 1):
                    task("k", [b, h])
            inner(b)
        for b in P(Dense[2](), names=["b"]):
            task("again", [b])

    assert [(t.kernel, t.params) for t in w().enumerate()] == [
        ("k", [0, 0]), ("k", [0, 1]), ("inner", [0]), ("inner", [1]), ("again", [0]), ("again", [1])]
    ch = Channel("c", depth=2)
    a = process("a").produces(ch).body(for_each(Dense[2](), lambda t: send(ch, task("a", [t], []))))
    b = process("b").consumes(ch).body(consume(ch, lambda t: for_each(Dense[2](), lambda j: task("b", [t, j], []))))
    assert sorted(tuple(t.params) for t in connect(a, b).enumerate() if t.kernel == "b") == [
        (0, 0), (0, 1), (1, 0), (1, 1)]


def test_a_missing_binding_at_run_time_names_the_variable():
    """The backstop under the build checks: a node made by hand with a variable no loop binds."""
    with pytest.raises(DSLUsageError, match=r"^loop variable 'zz' has no value here: it is used outside its loop"):
        Workload("task", kernel="k", params=(LoopVar("zz"),)).enumerate()
    i = LoopVar("i")
    node = Workload("for_each", axes=(Dense[2](),), vars=(i,),
                    body=Workload("task", kernel="k", params=(i,), resources=[LoopVar("zz") + 1]))
    with pytest.raises(DSLUsageError, match=r"^loop variable 'zz' has no value here: .*bound here: 'i'\)"):
        node.enumerate()
    branch = Workload("cond", pred=LoopVar("zz") < 2, then=Workload("task", kernel="k"))
    with pytest.raises(DSLUsageError, match=r"^loop variable 'zz' has no value here"):
        branch.enumerate()


def test_a_missing_binding_in_a_launch_is_named_when_the_program_runs():
    _, X, Y = tensors()
    i = LoopVar("i")
    launch = Workload("task", kernel=copy_k, params=(i,), resources={"src": X[LoopVar("zz")], "dst": Y[i]})
    node = Workload("parallel_for", axes=(Dense[4](),), vars=(i,), body=launch)
    with pytest.raises(DSLUsageError, match=r"^loop variable 'zz' has no value here"):
        node.compile().execute()


# -- 8. an uncalled @workload function ---------------------------------------------------------------------------------
@workload
def module_level_workload():
    for t in P(Dense[2]()):
        task("k", [t])


def plain_body():
    for t in P(Dense[2]()):
        task("k", [t])


def test_a_workload_method_on_the_uncalled_function_says_to_call_it():
    w = module_level_workload
    with pytest.raises(DSLUsageError) as e:
        line = here() + 1
        w.compile()
    assert isinstance(e.value, AttributeError)
    assert e.value.what == ("'module_level_workload' is the @workload function, not the workload it builds, so it has "
                            "no .compile.")
    assert e.value.hint == ("Call it first: module_level_workload().compile(...), e.g. "
                            "module_level_workload().compile().execute().")
    located(e, line)
    with pytest.raises(DSLUsageError, match=r"no \.execute") as e:
        w.execute()
    assert e.value.hint.startswith("Call it, compile and run it: module_level_workload().compile().execute()")
    with pytest.raises(DSLUsageError, match=r"no \.dispatch"):
        w.dispatch(None)


def test_the_uncalled_function_still_behaves_as_an_object():
    w = module_level_workload
    assert not hasattr(w, "compile") and getattr(w, "enumerate", "absent") == "absent"
    with pytest.raises(AttributeError) as e:
        _ = w.not_a_workload_method
    assert not isinstance(e.value, DSLUsageError)
    with pytest.raises(AttributeError) as e:
        _ = w.__not_a_dunder__
    assert not isinstance(e.value, DSLUsageError)
    assert copy.copy(w).name == copy.deepcopy(w).name == "module_level_workload"
    again = pickle.loads(pickle.dumps(WorkloadFunction(plain_body)))  # (a decorated def pickles by name: not here)
    assert again.name == "plain_body" and len(again().enumerate()) == 2
    assert str(inspect.signature(w)) == "()"


# -- 9. unknown @workload options, Dense[n](args) ----------------------------------------------------------------------
def test_workload_refuses_an_unknown_option_listing_the_known_ones():
    with pytest.raises(PtortTypeError) as e:
        line = here() + 1
        @workload(name="x")
        def w():
            pass
    assert e.value.what == ("@workload has no option name=; its options are type_check= and fail_on_type_error=.")
    assert e.value.hint.startswith("A workload is named after its function")
    located(e, line)
    with pytest.raises(PtortTypeError, match=r"^@workload has no option cycles=") as e:
        workload(cycles=3)
    assert e.value.hint.startswith("Write @workload, or @workload(type_check=True")


@pytest.mark.parametrize("value", ["no", 1, None], ids=repr)
def test_workload_options_must_be_bools(value):
    with pytest.raises(PtortTypeError, match=r"^@workload\(type_check=\.\.\.\) must be True or False"):
        workload(type_check=value)
    with pytest.raises(PtortTypeError, match=r"^@workload\(fail_on_type_error=\.\.\.\) must be True or False"):
        workload(fail_on_type_error=value)
    assert workload(type_check=np.bool_(False))(lambda: None).type_check is False


def test_a_dense_axis_with_an_argument_says_the_size_goes_in_brackets():
    with pytest.raises(PtortTypeError) as e:
        line = here() + 1
        Dense[8](3)
    assert e.value.what == "Dense[8]() takes no arguments, got Dense[8](3): the size goes in the brackets."
    assert "DenseDyn(n)" in e.value.hint
    located(e, line)
    with pytest.raises(PtortTypeError, match=r"^Dense\[8\]\(\) takes no arguments, got Dense\[8\]\(size=3\)"):
        Dense[8](size=3)
    with pytest.raises(PtortTypeError, match=r"^Dense needs a static size: write Dense\[8\]\(\), not Dense\(4\)"):
        Dense(4)


# -- 10. values a send cannot carry ------------------------------------------------------------------------------------
_, _X, _Y = tensors()


@pytest.mark.parametrize("make, what", [
    (lambda: copy_k.trace(), "the traced KernelIR of kernel 'copy_k': a kernel called outside a "
                                           "@workload or process body is traced, not launched"),
    (lambda: copy_k, "the kernel 'copy_k' itself, not a launch of it"),
    (lambda: copy_k[0], "copy_k[...] without its arguments, which launches nothing"),
    (lambda: _X[0], "the tensor Tensor(f32[4, 8, 8])[0]: channels carry tokens (tile indices), the data stays in "
                    "tensors"),
    (lambda: _X, "the tensor Tensor(f32[4, 8, 8]): channels carry tokens (tile indices), the data stays in tensors"),
    (lambda: "hello", "the str 'hello': tokens are tile indices, ints"),
    (lambda: 2.5, "the float 2.5: tokens are tile indices, ints"),
    (lambda: np.float32(2.0), "the float32 np.float32(2.0): tokens are tile indices, ints"),
    (lambda: True, "the bool True, which is not a tile index"),
    (lambda: object, "type <class 'object'>"),
], ids=["kernel-ir", "kernel", "launch", "view", "tensor", "str", "float", "np-float", "bool", "other"])
def test_a_send_refuses_a_value_that_cannot_be_an_item_at_the_send(make, what):
    ch = Channel("q", depth=2)
    value = make()
    with pytest.raises(PtortTypeError) as e:
        line = here() + 1
        send(ch, value)
    assert e.value.what == (f"send('q', value) got {what}; a send takes a task (k[t](...)), a body workload, or an "
                            "int token.")
    located(e, line)


def test_the_kernel_ir_hint_says_how_to_launch_it():
    ch = Channel("q", depth=2)
    with pytest.raises(PtortTypeError) as e:
        send(ch, copy_k.trace())
    assert e.value.hint.startswith("Launch it inside a body, where the call makes a task: for_each(")


def test_numpy_and_expression_tokens_still_travel():
    x, X, Y = tensors(3)
    ch = Channel("q", depth=2)
    a = process("a").produces(ch).body_func(lambda: [send(ch, np.int64(2)), send(ch, 0)])
    b = process("b").consumes(ch).body(consume(ch, lambda t: copy_k[t](src=X[t], dst=Y[t])))
    connect(a, b).compile().execute()
    np.testing.assert_array_equal(Y.data[[0, 2]], x[[0, 2]])
    assert (Y.data[1] == 7.0).all()


# -- 14. numpy integers for depths and tile sizes ----------------------------------------------------------------------
def test_numpy_integers_are_accepted_as_depths_and_sizes():
    ch = Channel("q", depth=np.int64(2))
    assert ch.depth == 2 and type(ch.depth) is int
    tile = Tile[np.int64(64), np.int32(32), F32]
    assert tile == Tile[64, 32, F32] and type(tile.rows) is int and type(tile.cols) is int
    assert Channel("t", depth=np.int16(3), tile=Tile[8, 8, F32]).depth == 3
    ev = Event("e", depth=np.int64(1))
    assert ev.depth == 1 and type(ev.depth) is int
    p = process("w").consumes(ch).body(consume(ch, lambda t: task("k", [t], [])))
    assert [r.name for r in replicate(p, np.int64(2))] == ["w[0]", "w[1]"]
    node = task("k", [0], cycles=np.int64(5))
    assert node.cycles == 5 and type(node.cycles) is int


def test_per_core_takes_a_numpy_count():
    def build(core):
        c = Channel("c", depth=1)
        return connect(process("a").produces(c).body(send(c, task("a", [], []))),
                       process("b").consumes(c).body(consume(c, lambda t: task("b", [t], []))))
    assert len(per_core(build, np.int64(2)).processes) == 4


@pytest.mark.parametrize("make, match", [
    (lambda: Channel("q", depth=np.float64(2.0)), r"^Channel 'q' depth must be an int, got float64 np.float64\(2.0\)"),
    (lambda: Channel("q", depth=True), r"^Channel 'q' depth must be an int, got bool True"),
    (lambda: Tile[np.float32(8), 8, F32], r"^Tile rows must be a positive int, got float32 np.float32\(8.0\)"),
    (lambda: Tile[True, 8, F32], r"^Tile rows must be a positive int, got bool True"),
    (lambda: Tile[8, np.int64(0), F32], r"^Tile cols must be a positive int, got int64 np.int64\(0\)"),
], ids=["np-float-depth", "bool-depth", "np-float-rows", "bool-rows", "zero-cols"])
def test_non_integers_stay_refused(make, match):
    with pytest.raises(PtortTypeError, match=match):
        make()


# -- 15. numpy bools as conditions, numbers refused --------------------------------------------------------------------
def test_numpy_bools_are_conditions():
    flag = np.array([1.0]).sum() > 0

    @workload
    def w():
        for t in P(Dense[4]()):
            cond(flag, task("yes", [t]), task("no", [t]))
            with P.when(~flag):
                task("never", [t])

    assert [t.kernel for t in w().enumerate()] == ["yes"] * 4


@pytest.mark.parametrize("pred, holds", [(2, True), (-1, True), (0, False), (np.int64(1), True)], ids=repr)
def test_an_integer_condition_holds_by_pythons_truth_rule(pred, holds):
    """As the reference evaluates its predicate in Python: ``cond(0, ...)`` takes the other branch."""
    @workload
    def w():
        for t in P(Dense[2]()):
            cond(pred, task("yes", [t]), task("no", [t]))

    assert [t.kernel for t in w().enumerate()] == (["yes"] if holds else ["no"]) * 2


@pytest.mark.parametrize("pred", [2.5, np.float32(1.0)], ids=repr)
def test_a_float_is_not_a_condition(pred):
    with pytest.raises(PtortTypeError) as e:
        cond(pred, task("k", [0]))
    assert e.value.what.startswith(f"cond(pred) needs a bool, a loop expression or a function of the task, got "
                                   f"{type(pred).__name__} {pred!r}: a number is not a truth value.")
    assert e.value.hint == "Compare it: cond(x != 0) or cond(x > 0.5) (or pass True/False)."

    @workload
    def w():
        for t in P(Dense[2]()):
            with P.when(pred):
                task("k", [t])

    with pytest.raises(PtortTypeError, match=r"^P.when\(pred\) needs a bool"):
        w()


# -- 16. host-only channel calls inside a body -------------------------------------------------------------------------
def test_try_send_inside_a_body_is_refused_as_host_only():
    _, X, Y = tensors()
    ch = Channel("q", depth=1)
    with pytest.raises(DSLUsageError) as e:
        line = here() + 1
        for_each(Dense[4](), lambda t: try_send(ch, copy_k[t](src=X[t], dst=Y[t])))
    assert e.value.what.startswith("try_send('q', ...) is host-only: it appends to the channel's host-side buffer at "
                                   "once")
    assert e.value.hint.startswith("Use send(q, k[t](...)) in a process body")
    located(e, line)
    with pytest.raises(DSLUsageError, match=r"^send_nowait\('q', \.\.\.\) is host-only"):
        for_each(Dense[4](), lambda t: send_nowait(ch, t))
    assert ch.size() == 0  # nothing reached the host buffer


@pytest.mark.parametrize("call", ["size", "empty", "full", "close"])
def test_host_buffer_calls_inside_a_body_are_refused(call):
    ch = Channel("q", depth=1)
    with pytest.raises(DSLUsageError, match=rf"^q\.{call}\(\) acts on channel 'q''s host-side buffer and cannot be "
                                            "used while a process body or workload is being built"):
        for_each(Dense[2](), lambda t: cond(getattr(ch, call)() is None, task("k", [t])))
    assert ch.is_open()


@pytest.mark.parametrize("value", [None, [1, 2], "hello", 2.5], ids=["none", "list", "str", "float"])
def test_host_buffers_hold_any_python_value(value):
    """The host-side buffer is a plain queue, as the reference's is: try_send/send_nowait take any value (what a
    simulated send may carry is send()'s check, in a body)."""
    ch = Channel("q", depth=2)
    assert try_send(ch, value) is True
    send_nowait(ch, value)
    assert ch.full() and try_send(ch, 3) is False


# -- 17. tl call mistakes, P.seq with two axes -------------------------------------------------------------------------
def trace_error(body):
    with pytest.raises(PtortTypeError) as e:
        @kernel
        def k(src: In[T], dst: Out[Tile[8, 1, F32]]):
            tl.store(dst, body(tl.load(src)))
    return e.value


def test_a_reduction_given_an_axis_names_its_signature_and_the_other_reduction():
    line = here() + 1
    e = trace_error(lambda v: tl.rowsum(v, axis=1))
    assert e.what == ("tl.rowsum: called as tl.rowsum(f32[8,8], axis=1), but it takes tl.rowsum(x) (rowsum() got an "
                      "unexpected keyword argument 'axis').")
    assert e.hint == ("tl.rowsum reduces each row ([r, c] -> [r, 1]) and takes no axis; the sum of each column "
                      "([1, c]) is tl.colsum(x).")
    assert e.context == "kernel 'k'"
    assert (e.where.filename, e.where.lineno) == (__file__, line)
    assert trace_error(lambda v: tl.colsum(v, 0)).hint.endswith("the sum of each row ([r, 1]) is tl.rowsum(x).")
    assert trace_error(lambda v: tl.rowmax(v, dim=1)).hint.endswith("is tl.colmax(x).")


def test_transpose_with_axes_and_other_signature_mistakes():
    e = trace_error(lambda v: tl.transpose(v, (1, 0)))
    assert e.what.startswith("tl.transpose: called as tl.transpose(f32[8,8], (1, 0)), but it takes tl.transpose(x)")
    assert e.hint == "tl.transpose(x) swaps the two dimensions of a 2-D tile ([r, c] -> [c, r]) and takes no axes."
    e = trace_error(lambda v: tl.exp(v, 2))
    assert e.what.startswith("tl.exp: called as tl.exp(f32[8,8], 2), but it takes tl.exp(x)")
    assert e.hint == "Call it as tl.exp(x); help(tl.exp) says what each argument is."
    e = trace_error(lambda v: tl.full(8, 1, 0.0, DType.F32, 3))
    assert "but it takes tl.full(rows, cols, value, dtype=DType.F32)" in e.what
    e = trace_error(lambda v: tl.select(v))
    assert e.what.startswith("tl.select: called as tl.select(f32[8,8]), but it takes tl.select(mask, a, b)")


def test_errors_raised_inside_an_op_pass_through_unchanged():
    e = trace_error(lambda v: tl.cast(v, "f16"))
    assert e.what == "tl.cast: dtype must be a DType, got 'f16'."


def test_p_seq_with_two_axes_says_to_use_p():
    @workload
    def w():
        for t in P.seq(Dense[2](), Dense[2]()):
            task("k", [t])

    with pytest.raises(PtortTypeError) as e:
        w()
    assert e.value.what == "P.seq takes one axis, got 2; use P(...) for several."
    assert e.value.where.code == "for t in P.seq(Dense[2](), Dense[2]()):"

    @workload
    def w2():
        for t in P.sel([1, 2], "e", [3]):
            task("k", [t])

    with pytest.raises(PtortTypeError, match=r"^P.sel takes one axis, got 3; use P\(\.\.\.\) for several"):
        w2()

    @workload
    def w3():
        for t in P.seq(Dense[2](), 5):
            task("k", [t])

    with pytest.raises(PtortTypeError, match=r"^P.seq\(axis, name\): name must be a str .*got int 5"):
        w3()

    @workload
    def named():
        for k in P.seq(Dense[2](), "k"):
            task("x", [k])

    assert [t.bindings for t in named().enumerate()] == [{"k": 0}, {"k": 1}]


def test_p_seq_still_takes_the_axis_class_error():
    @workload
    def w():
        for t in P.seq(Dense[2](), Dense):
            task("k", [t])

    with pytest.raises(PtortTypeError, match=r"^P.seq takes one axis, got 2"):
        w()
    with pytest.raises(PtortValueError):  # unchanged: a bad loop name
        @workload
        def bad():
            for t in P.seq(Dense[2](), "not valid"):
                task("k", [t])
        bad()


# -- a kernel launch that is never called ------------------------------------------------------------------------------
def test_a_launch_that_is_not_called_is_refused_at_its_line():
    _, X, Y = tensors()

    @kernel
    def cp(src: In[T], dst: Out[T]):
        tl.store(dst, tl.load(src))

    @workload
    def w():
        for t in P(Dense[2]()):
            cp[t]  # noqa: B018 - the mistake under test
            task("other", [t])

    line = here() - 3
    with pytest.raises(DSLUsageError) as e:
        w()
    assert e.value.what == ("cp[...] is not called: it names a launch of kernel 'cp' but launches nothing until it is "
                            "called with its arguments.")
    assert e.value.hint == "Call it: cp[...](src=..., dst=...)."
    assert e.value.where.lineno == line and e.value.where.code.strip().startswith("cp[t]")


def test_a_launch_called_at_once_or_kept_and_called_next_is_fine():
    _, X, Y = tensors()

    @kernel
    def cp(src: In[T], dst: Out[T]):
        tl.store(dst, tl.load(src))

    @workload
    def w():
        for t in P(Dense[2]()):
            cp[t](src=X[t], dst=Y[t])
            launch = cp[t]
            launch(src=X[t], dst=Y[t])

    assert [t.kernel for t in w().enumerate()] == ["cp"] * 4
