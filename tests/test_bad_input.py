"""Bad input never hangs and always raises a located ptort_lab error: the cases an adversarial audit found in
user callbacks, conditions, schedules, placements and huge sizes."""
from __future__ import annotations

import numpy as np
import pytest

import ptort_lab
from ptort_lab import (
    Channel,
    Dense,
    DispatchPolicy,
    DType,
    In,
    Out,
    P,
    PinnedCosts,
    ReadyPolicy,
    Tensor,
    Tile,
    TimingPolicy,
    cond,
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
from ptort_lab.dsl import steps as steps_module
from ptort_lab.dsl.expr import LoopVar
from ptort_lab.errors import PtortTypeError, PtortValueError, UserCodeError
from ptort_lab.explore import Knobs, Study, run_study

F32 = DType.F32


@kernel(cycles=10)
def copy(src: In[Tile[4, 4, F32]], dst: Out[Tile[4, 4, F32]]):
    tl.store(dst, tl.load(src))


def copies(n: int = 4):
    X, Y = Tensor(data=np.ones((n, 4, 4), np.float32)), Tensor(shape=(n, 4, 4), dtype=F32)

    @workload
    def many():
        for b in P(Dense[n]()):
            copy[b](src=X[b], dst=Y[b])

    return many()


def two_stage(depth: int, n: int = 4):
    X, Y = Tensor(data=np.ones((n, 4, 4), np.float32)), Tensor(shape=(n, 4, 4), dtype=F32)
    ch = Channel(name="c", depth=depth)
    a = process("a").produces(ch).body(for_each(Dense[n](), lambda t: send(ch, task(copy, [t], {"src": X[t],
                                                                                                 "dst": Y[t]}))))
    b = process("b").consumes(ch).body(consume(ch, lambda t: task(copy, [t], {"src": Y[t], "dst": Y[t]})))
    return connect(a, b)


# -- sizes that used to hang ----------------------------------------------------------------------------------------
def test_a_huge_channel_depth_costs_nothing():
    """Unused slots are only counted: depth 10**9 runs like an unbounded queue (producer never waits)."""
    prog = two_stage(10**9).compile(compute_values=False).execute()
    assert prog.stats.total_cycles == two_stage(4).compile(compute_values=False).execute().stats.total_cycles


def test_too_many_tasks_is_refused_at_the_launch_line(monkeypatch):
    monkeypatch.setattr(steps_module, "MAX_TASKS", 10)
    with pytest.raises(PtortValueError, match=r"(?s)more than 10 tasks.*test_bad_input.py.*larger tiles"):
        copies(11).compile().execute()
    monkeypatch.setattr(steps_module, "MAX_PIPELINE_TASKS", 5)
    with pytest.raises(PtortValueError, match="more than 5 tasks"):
        two_stage(2).compile().execute()


# -- the user's own code raising --------------------------------------------------------------------------------------
def test_a_kernel_body_that_raises_is_reported_at_its_line():
    with pytest.raises(UserCodeError, match=r"(?s)the body of kernel 'bad' raised ZeroDivisionError.*"
                                            r"test_bad_input.py.*1 / 0"):
        @kernel
        def bad(src: In[Tile[4, 4, F32]], dst: Out[Tile[4, 4, F32]]):
            tl.store(dst, tl.load(src)) if 1 / 0 else None
        bad.trace()


def test_user_callbacks_that_raise_become_user_code_errors():
    def boom(*_):
        raise KeyError("zz")

    with pytest.raises(UserCodeError, match=r"(?s)the body of @workload 'w' raised KeyError"):
        @workload
        def w():
            boom()
        w()
    with pytest.raises(UserCodeError, match=r"DispatchPolicy.affinity key function .* raised KeyError") as e:
        copies().dispatch(DispatchPolicy.affinity(boom, 2)).compile().execute()
    assert isinstance(e.value.__cause__, KeyError)
    with pytest.raises(UserCodeError, match="ReadyPolicy.priority function"):
        copies().task_graph(ready=ReadyPolicy.priority(boom)).compile().execute()
    with pytest.raises(UserCodeError, match="the study's builder"):
        Study(lambda depth: boom()).run()


@pytest.mark.parametrize("key, match", [(lambda t: 2.5, r"returned 2.5 .* must return an int"),
                                        (lambda t: float("inf"), "returned inf"),
                                        (lambda t: None, "returned None")], ids=["float", "inf", "none"])
def test_dispatch_keys_must_be_ints(key, match):
    with pytest.raises(PtortValueError, match=match):
        copies().dispatch(DispatchPolicy.hash(key, 2)).compile().execute()


# -- conditions -------------------------------------------------------------------------------------------------------
def counted(make_cond):
    X, Y = Tensor(data=np.ones((4, 4, 4), np.float32)), Tensor(shape=(4, 4, 4), dtype=F32)

    @workload
    def w():
        for b in P(Dense[4]()):
            make_cond(b, copy[b](src=X[b], dst=Y[b]))

    return w().compile(compute_values=False).execute().stats.task_count


def test_equality_on_a_loop_variable_is_symbolic():
    """`b == 3` selects one task (it used to be the constant False, selecting none)."""
    assert counted(lambda b, t: cond(b == 3, t)) == 1
    assert counted(lambda b, t: cond(b != 3, t)) == 3
    v, w = LoopVar("v"), LoopVar("w")  # loop variables still work as dict keys (identity truth)
    assert {v: 1, w: 2}[w] == 2 and v in [v] and w not in [v]


@pytest.mark.parametrize("pred, match", [("b < 4", "a string is not evaluated"), (None, "got NoneType None")],
                         ids=["string", "none"])
def test_conditions_of_the_wrong_type_are_refused(pred, match):
    with pytest.raises(PtortTypeError, match=match):
        cond(pred, None)


def test_condition_functions_are_checked_when_they_run():
    with pytest.raises(PtortTypeError, match=r"(?s)a condition evaluated to ndarray.*must be a bool"):
        counted(lambda b, t: cond(lambda tk: np.array([1, 0]), t))
    with pytest.raises(PtortTypeError, match="a condition function takes 2 arguments"):
        counted(lambda b, t: cond(lambda x, y: True, t))
    with pytest.raises(UserCodeError, match=r"a condition function .* raised ZeroDivisionError"):
        counted(lambda b, t: cond(lambda tk: 1 / 0, t))


# -- schedules, placements, cost models -------------------------------------------------------------------------------
def test_timing_policy_values_are_checked_however_it_is_built():
    with pytest.raises(PtortValueError, match=r"batched\(n\) needs an int >= 1, got 0"):
        TimingPolicy("batched", 0)
    with pytest.raises(PtortValueError, match=r"rate_limit\(tasks_per_ms\) needs a number > 0, got -5"):
        TimingPolicy("rate_limit", -5)
    with pytest.raises(PtortValueError, match="unknown TimingPolicy kind 'soon'"):
        TimingPolicy("soon")
    assert TimingPolicy.immediate() is TimingPolicy.immediate


def test_placement_cores_must_be_ints():
    with pytest.raises(PtortValueError, match=r"placement puts process 'a' on 'core0'; a place is a core \(int\)"):
        two_stage(2).place({"a": "core0"}).compile().execute()


@pytest.mark.parametrize("kwargs, match", [({"default_cycles": -5}, "default_cycles=...\\) must be an int >= 0"),
                                           ({"clock_hz": 0}, "clock_hz=...\\) must be a frequency > 0")])
def test_pinned_costs_arguments_are_checked(kwargs, match):
    with pytest.raises(PtortValueError, match=match):
        PinnedCosts(**kwargs)


def test_select_over_a_list_needs_ints():
    with pytest.raises(PtortTypeError, match=r"select/P.sel over a list needs int indices, got 'a'"):
        X, Y = Tensor(data=np.ones((2, 4, 4), np.float32)), Tensor(shape=(2, 4, 4), dtype=F32)

        @workload
        def w():
            for e in P.sel(["a", "b"]):
                copy[e](src=X[e], dst=Y[e])

        w().compile().execute()


def test_kernel_of_a_non_function_and_run_study_of_the_wrong_things():
    with pytest.raises(PtortTypeError, match="@kernel decorates a function, got int 42"):
        kernel(42)
    with pytest.raises(PtortTypeError, match="run_study needs Knobs, got dict"):
        run_study(copies(), {"cores": 2})
    with pytest.raises(PtortTypeError, match="run_study needs a workload or pipeline, got function"):
        run_study(lambda: None, Knobs())


def test_a_token_that_is_not_an_index_is_reported_at_the_launch_that_uses_it():
    X, Y = Tensor(data=np.ones((2, 4, 4), np.float32)), Tensor(shape=(2, 4, 4), dtype=F32)
    ch = Channel(name="c", depth=1)
    a = process("a").produces(ch).body(for_each(Dense[2](), lambda t: send(ch, task(copy, [t], {
        "src": X[t], "dst": Y[t]}), token="tok")))
    b = process("b").consumes(ch).body(consume(ch, lambda t: task(copy, [t], {"src": Y[t], "dst": X[t]})))
    with pytest.raises(PtortTypeError, match=r"(?s)index .* is str 'tok'.*tensor indices are ints.*"
                                             r"test_bad_input.py.*task\(copy, \[t\], \{\"src\": Y\[t\]"):
        connect(a, b).compile().execute()


# -- second audit ------------------------------------------------------------------------------------------------------
def test_launch_axes_and_resource_keys_are_checked_at_the_launch():
    X, Y = Tensor(data=np.ones((2, 4, 4), np.float32)), Tensor(shape=(2, 4, 4), dtype=F32)
    with pytest.raises(PtortTypeError, match=r"(?s)kernel 'copy' is launched with axis 0.5 \(float\).*test_bad_in"):
        @workload
        def w():
            copy[0.5](src=X[0], dst=Y[0])
        w()
    with pytest.raises(PtortTypeError, match=r"kernel 'copy' got resource key\(s\) \[0\]; keys are parameter names"):
        @workload
        def w2():
            for b in P(Dense[2]()):
                task(copy, [b], {0: X[b], "dst": Y[b]})
        w2()


def test_index_expressions_that_divide_by_zero_or_go_negative_are_refused():
    X, Y = Tensor(data=np.ones((4, 4, 4), np.float32)), Tensor(shape=(4, 4, 4), dtype=F32)
    with pytest.raises(PtortValueError, match=r"`b // 0` divides by zero"):
        @workload
        def w():
            for b in P(Dense[4]()):
                copy[b](src=X[b // 0], dst=Y[b])
        w()

    @workload
    def shifted():
        for b in P(Dense[4]()):
            copy[b](src=X[b - 1], dst=Y[b])

    with pytest.raises(PtortValueError, match=r"(?s)index \(b - 1\) = -1 of .* is negative.*P.when\(t > 0\)"):
        shifted().compile().execute()


def test_constants_keep_their_dtype_and_range():
    @kernel
    def scale(x: In[Tile[4, 4, F32]], y: Out[Tile[4, 4, F32]]):
        tl.store(y, tl.mul(tl.load(x), tl.constant(0.1, DType.F16)))

    ir = scale.trace()
    assert ir.ops[1].operands[1].value == float(np.float16(0.1))  # 0.0999755859375, rounded as F16 first
    with pytest.raises(PtortValueError, match=r"1000000.0 is outside the range of F16"):
        @kernel
        def big(x: In[Tile[4, 4, DType.F16]], y: Out[Tile[4, 4, DType.F16]]):
            tl.store(y, tl.add(tl.load(x), 1e6))


def test_integer_division_by_zero_is_an_error_not_zero():
    I32 = DType.I32
    with pytest.raises(PtortValueError, match="divides the I32 tile by the literal 0"):
        @kernel
        def lit(x: In[Tile[4, 4, I32]], y: Out[Tile[4, 4, I32]]):
            tl.store(y, tl.div(tl.load(x), 0))

    @kernel
    def tiles(x: In[Tile[4, 4, I32]], d: In[Tile[4, 4, I32]], y: Out[Tile[4, 4, I32]]):
        tl.store(y, tl.div(tl.load(x), tl.load(d)))

    X, D, Y = (Tensor(data=np.ones((1, 4, 4), np.int32)), Tensor(data=np.zeros((1, 4, 4), np.int32)),
               Tensor(shape=(1, 4, 4), dtype=I32))

    @workload
    def w():
        tiles(x=X[0], d=D[0], y=Y[0])

    prog = w().compile()
    with pytest.raises(ptort_lab.KernelExecutionError, match="integer division by zero"):
        prog.execute()
    with pytest.raises(PtortValueError, match=r"program.stats has no run: the last execute\(\) raised "
                                              r"KernelExecutionError"):
        prog.stats()


def test_a_kernel_that_returns_its_result_is_told_to_store_it():
    with pytest.raises(PtortTypeError, match=r"(?s)kernel 'ret' returned .*tl.store\(out, value\)"):
        @kernel
        def ret(x: In[Tile[4, 4, F32]], y: Out[Tile[4, 4, F32]]):
            return tl.load(x)


def test_streams_without_a_key_take_tasks_in_turn():
    """streams(2) alone: tasks 0, 2 on stream 0 and 1, 3 on stream 1 (the reference put all on stream 0)."""
    prog = copies(4).streams(2).compile().execute()
    assert sorted((s.index, s.core) for s in prog.trace.spans) == [(0, 0), (1, 1), (2, 0), (3, 1)]


def test_pipe_blocks_cannot_nest():
    from ptort_lab import DSLUsageError

    X, Y = Tensor(data=np.ones((2, 4, 4), np.float32)), Tensor(shape=(2, 4, 4), dtype=F32)
    with pytest.raises(DSLUsageError, match=r"(?s)pipelines cannot nest.*test_bad_input.py"):
        @workload
        def w():
            with P.pipe():
                for b in P(Dense[2]()):
                    copy[b](src=X[b], dst=Y[b])
                with P.pipe():
                    for b in P(Dense[2]()):
                        copy[b](src=Y[b], dst=X[b])
        w()


@pytest.mark.parametrize("names, match", [("tile", r"takes a list of variable names, got 'tile'"),
                                          ([1], r"1 is not a Python identifier"),
                                          (["x", "x"], "a name repeats"),
                                          (["x", "y"], "2 names for 1 loop variable")],
                         ids=["string", "int", "repeat", "extra"])
def test_loop_variable_names_are_checked(names, match):
    X, Y = Tensor(data=np.ones((2, 4, 4), np.float32)), Tensor(shape=(2, 4, 4), dtype=F32)
    with pytest.raises((PtortTypeError, PtortValueError), match=match):
        @workload
        def w():
            for b in P(Dense[2](), names=names):
                copy[b](src=X[b], dst=Y[b])
        w()


def test_an_inner_loop_cannot_reuse_an_enclosing_name():
    X, Y = Tensor(data=np.ones((2, 4, 4), np.float32)), Tensor(shape=(2, 4, 4), dtype=F32)
    with pytest.raises(PtortValueError, match="name 'x' is already used by an enclosing loop"):
        @workload
        def w():
            for a in P(Dense[2](), names=["x"]):
                for _ in P(Dense[1](), names=["x"]):
                    copy[a](src=X[a], dst=Y[a])
        w()


def test_place_on_a_data_parallel_workload_is_refused():
    with pytest.raises(PtortValueError, match=r"(?s)place\(\) puts the processes of a CSP pipeline.*\.dispatch"):
        copies().place("shared")


# -- third audit ----------------------------------------------------------------------------------------------------
def test_runtime_division_by_zero_in_an_expression_is_located():
    X, Y = Tensor(data=np.ones((4, 4, 4), np.float32)), Tensor(shape=(4, 4, 4), dtype=F32)

    @workload
    def w():
        for b in P(Dense[4]()):
            copy[b](src=X[(b + 1) % b], dst=Y[b])

    with pytest.raises(PtortValueError, match=r"`\(\(b \+ 1\) % b\)` divides by zero for \{'b': 0\}"):
        w().enumerate()


def test_schedule_mistakes_found_by_the_third_audit():
    with pytest.raises(PtortValueError, match="stream_by\\(fn\\) picks one of the streams\\(n\\)"):
        copies().stream_by(lambda t: t.get("b")).compile().execute()
    with pytest.raises(PtortValueError, match=r"compile\(placement=...\) puts the processes of a CSP pipeline"):
        copies().compile(placement={"core0": 0}).execute()
    with pytest.raises(PtortValueError, match=r"rate_limit\(4.94066e-324\) spaces tasks inf cycles apart"):
        copies().timing(TimingPolicy.rate_limit(5e-324)).compile().execute()
    with pytest.raises(PtortValueError, match=r"task_graph\(\) has no option\(s\) \['bogus'\]"):
        copies().task_graph(bogus=1)


def test_numpy_integers_are_accepted_where_ints_are():
    from ptort_lab import TracePolicy

    @kernel
    def free(src: In[Tile[4, 4, F32]], dst: Out[Tile[4, 4, F32]]):
        tl.store(dst, tl.load(src))

    X, Y = Tensor(data=np.ones((2, 4, 4), np.float32)), Tensor(shape=(2, 4, 4), dtype=F32)
    times = np.array([5, 7])

    @workload
    def w():
        for b in P(Dense[2]()):
            free[b](src=X[b], dst=Y[b])

    prog = w().task_graph(trace=TracePolicy.cycles(lambda t: times[t.get("b")]),
                          ready=ReadyPolicy.priority(lambda t: np.int64(-t.get("b")))).compile().execute()
    assert prog.stats.total_cycles == 12

    @kernel
    def bc(v: In[Tile[4, 1, F32]], out: Out[Tile[4, 8, F32]]):
        tl.store(out, tl.broadcast(tl.load(v), (np.int64(4), np.int64(8))))

    assert str(bc.trace().ops[1]) == "broadcast [4,8]"
