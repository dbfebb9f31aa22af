"""Build-time checks (issue 10): what a loop variable or a traced tile cannot be asked while a workload or kernel is
built, task names formatted from loop variables, scalar kernel arguments, kernels calling kernels, generator bodies,
and sizes refused before any listing. Each mistake raises a ptort_lab error naming what, the user's line and a fix;
nothing is silently dropped, truncated or left to run for minutes."""
import math
import time

import numpy as np
import pytest
from source_lines import here

from ptort_lab import (
    Channel,
    Constexpr,
    Dense,
    DenseDyn,
    DispatchPolicy,
    DSLUsageError,
    DType,
    Event,
    In,
    KernelExecutionError,
    LoopVar,
    Out,
    P,
    PtortTypeError,
    PtortValueError,
    Ragged,
    Scalar,
    Tensor,
    Tile,
    TimingPolicy,
    cond,
    connect,
    consume,
    for_each,
    kernel,
    process,
    select,
    send,
    task,
    tl,
    workload,
)
from ptort_lab.dsl import steps as steps_module
from ptort_lab.errors import UserCodeError

F16, F32, I8, I32 = DType.F16, DType.F32, DType.I8, DType.I32



@kernel
def copy(src: In[Tile[4, 4, F32]], dst: Out[Tile[4, 4, F32]]):
    tl.store(dst, tl.load(src))


def loop_of(body, n=4):
    """A @workload running ``body(b)`` once, for b in P(Dense[n]()): it is built (and raises) when called."""
    @workload
    def w():
        for b in P(Dense[n]()):
            body(b)
    return w


def names(w):
    return [t.kernel for t in w.enumerate()]


def located(excinfo, lineno: int) -> None:
    """The error names this file and line and shows the line's code."""
    err = excinfo.value
    assert err.where is not None and err.where.lineno == lineno, str(err)
    assert err.where.filename.endswith("test_build_checks.py"), str(err)


# == 1. a loop variable has no truth value or number while the workload is built ======================================
IF_HINT = ("Use P.when(expr) / cond(expr, then, else) instead of a Python `if`, or index with it; combine conditions "
           "with & | ~ instead of and / or / not, in parentheses: P.when((b >= 3) & (b < 8)).")


@pytest.mark.parametrize("body, shown", [
    (lambda b: 1 if b == 0 else 0, "(b == 0)"),
    (lambda b: 1 if b != 3 else 0, "(b != 3)"),
    (lambda b: 1 if b < 1 else 0, "(b < 1)"),
    (lambda b: not b == 2, "(b == 2)"),
    (lambda b: b == 0 and b == 1, "(b == 0)"),
    (lambda b: b in [0, 2], "(b == 0)"),
    (lambda b: min(b, 2), "(b > 2)"),
    (lambda b: sorted([3, b]), "(b < 3)"),
    (lambda b: 1 if b == np.int64(1) else 0, "(b == 1)"),
    (lambda b: 1 if b == 0.5 else 0, "(b == 0.5)"),
    (lambda b: 1 if b == None else 0, "(b == None)"),  # noqa: E711 - the mistake under test
    (lambda b: bool(np.int64(0) == b), "(b == 0)"),
], ids=["if-eq", "if-ne", "if-lt", "not", "and", "in-list", "min", "sorted", "numpy-int", "float", "none",
        "numpy-lhs"])
def test_the_truth_value_of_a_comparison_is_refused(body, shown):
    """`if b == 0:` used to be the constant False (the tasks vanished); now it raises like `if b < 1:`."""
    with pytest.raises(DSLUsageError) as e:
        loop_of(body)()
    assert e.value.what == f"the symbolic expression `{shown}` has no value while the workload is being built."
    assert e.value.hint == IF_HINT
    located(e, body.__code__.co_firstlineno)


@pytest.mark.parametrize("body", [lambda b: b in {0, 1}, lambda b: 1 if b not in frozenset({3}) else 0,
                                  lambda b: b in {0: "zero"}], ids=["set", "frozenset", "dict"])
def test_membership_in_a_set_or_dict_is_refused(body):
    """A set or dict hashes b and never asks ==, so `b in {0, 1}` was False for every task."""
    with pytest.raises(DSLUsageError) as e:
        loop_of(body)()
    assert e.value.what == ("`b in ...` over a set or dict: the loop expression `b` has no value while the workload "
                            "is being built, so membership would be decided once, by identity, for every task.")
    assert e.value.hint == ("Decide per task with a condition function, P.when(lambda t: t.get('b') in {0, 1}), or "
                            "with one P.when(b == v) per value.")
    located(e, body.__code__.co_firstlineno)


def test_while_and_assert_on_a_loop_variable_are_refused():
    def with_while(b):
        while b == 1:  # a loop that would run 0 times for every task
            pass

    def with_assert(b):
        assert b != 5

    for body, line in ((with_while, with_while.__code__.co_firstlineno + 1),
                       (with_assert, with_assert.__code__.co_firstlineno + 1)):
        with pytest.raises(DSLUsageError, match="has no value while the workload is being built") as e:
            loop_of(body)()
        located(e, line)


def test_comparisons_still_work_symbolically():
    """`==` and friends stay symbolic for P.when / cond; numpy numbers and floats compare like ints."""
    def count(pred):
        @workload
        def w():
            for b in P(Dense[4]()):
                with P.when(pred(b)):
                    task("k", [b], [])
        return len(w().enumerate())

    assert count(lambda b: b == 0) == 1
    assert count(lambda b: b != 0) == 3
    assert count(lambda b: b == np.int64(2)) == 1
    assert count(lambda b: b < np.int64(2)) == 2
    assert count(lambda b: b == 2.0) == 1
    assert count(lambda b: b == 0.5) == 0  # true: no integer is 0.5
    assert count(lambda b: b <= 1.5) == 2
    assert count(lambda b: -b < -1) == 2
    assert count(lambda b: 6 // (b + 1) == 2) == 1  # 6 // 3
    assert count(lambda b: 7 % (b + 2) == 1) == 2  # b = 0 (7 % 2) and b = 1 (7 % 3)
    assert count(lambda b: lambda t: t.get("b") in {0, 3}) == 2  # the fix the set-membership refusal suggests


def test_comparing_two_loop_variables_in_an_if_is_refused():
    lines = []

    @workload
    def diagonal():
        for i, j in P(Dense[3](), Dense[3](), names=["i", "j"]):
            lines.append(here() + 1)
            if i == j:
                task("k", [i, j], [])

    with pytest.raises(DSLUsageError) as e:
        diagonal()
    assert e.value.what == ("`i == j` compares two loop expressions, which have no values while the workload is "
                            "being built (Python would answer by identity, the same for every task).")
    assert e.value.hint == ("Use P.when(i == j) / cond(i == j, then, else) to select the tasks where it holds; "
                            "`i is j` tests whether they are the same variable.")
    located(e, lines[0])

    @workload
    def symbolic():
        for i, j in P(Dense[3](), Dense[3](), names=["i", "j"]):
            with P.when(i == j):
                task("k", [i, j], [])

    assert [t.params for t in symbolic().enumerate()] == [[0, 0], [1, 1], [2, 2]]


def test_loop_variables_stay_usable_as_keys_and_in_membership_tests():
    """Identity truth between two expressions outside an `if`: dict keys, `in` over variables, list.index."""
    v, w = LoopVar("v"), LoopVar("w")
    table = {v: 1, w: 2}
    assert table[w] == 2 and v in [v] and w not in [v] and [v, w].index(w) == 1
    assert hash(v) == hash(v)
    built = []

    @workload
    def keyed():
        for b, h in P(Dense[2](), Dense[2]()):
            seen = {b: "b", h: "h"}
            built.append((seen[b], b in [h, b], h not in [b], len({b, h})))
            task("k", [b, h], [])

    assert len(keyed().enumerate()) == 4
    assert built == [("b", True, True, 2)]


@pytest.mark.parametrize("body, what", [
    (lambda b: int(b), "cannot be used as a Python int"),
    (lambda b: float(b), "cannot be used as a Python float"),
    (lambda b: math.floor(b), "cannot be used as a Python number (math.floor)"),
    (lambda b: round(b), "cannot be used as a Python number (round)"),
    (lambda b: range(b), "cannot be used as a Python int"),
    (lambda b: [10, 20, 30, 40][b], "cannot be used as a Python int"),
    (lambda b: "%d" % b, "cannot be used as a Python int"),
    (lambda b: np.zeros(4)[b], "cannot be used as a Python int"),
    (lambda b: np.full(b, 1.0), "cannot be used as a Python int"),
], ids=["int", "float", "floor", "round", "range", "list-index", "percent-d", "numpy-index", "numpy-full"])
def test_a_loop_variable_is_not_a_python_number(body, what):
    """numpy swallows the refusal raised inside it (array[b] gives its own IndexError): it comes back as itself."""
    with pytest.raises(DSLUsageError) as e:
        loop_of(body)()
    assert e.value.what == f"the symbolic expression `b` {what} while the workload is being built."
    assert e.value.hint == ("Use it to index a Tensor (X[t]), as a kernel launch axis (k[t](...)) or as a loop size "
                            "(P(DenseDyn(t))); its values exist only when the tasks are listed.")
    located(e, body.__code__.co_firstlineno)


def test_numpy_arange_of_a_loop_variable_is_refused_at_its_line():
    line = here() + 1
    body = lambda b: np.arange(b)  # noqa: E731
    with pytest.raises(DSLUsageError, match="has no value while the workload is being built") as e:
        loop_of(body)()
    located(e, line)


def test_a_refusal_caught_by_the_body_does_not_hide_a_later_error():
    def body(b):
        try:
            int(b)
        except DSLUsageError:
            pass
        raise KeyError("later")

    with pytest.raises(UserCodeError, match=r"raised KeyError: 'later'") as e:
        loop_of(body)()
    located(e, body.__code__.co_firstlineno + 5)


@pytest.mark.parametrize("body, what, hint", [
    (lambda b: len(b), "len() of the loop expression `b`: it is one integer per task, not a sequence.",
     "Use it to index a Tensor (X[t])"),
    (lambda b: list(b), "the loop expression `b` is one integer per task; it cannot be iterated.",
     "Loop over an axis instead: `for i in P(DenseDyn(t)):`"),
    (lambda b: b / 2, "`b / 2`: loop expressions are integers, and `/` would make a float index.",
     "Use integer division `b // 2`"),
    (lambda b: 8 / (b + 1), "`8 / (b + 1)`: loop expressions are integers, and `/` would make a float index.",
     "Use integer division `8 // (b + 1)`."),
], ids=["len", "iterate", "truediv", "rtruediv"])
def test_sequences_and_true_division_are_refused(body, what, hint):
    with pytest.raises(DSLUsageError) as e:
        loop_of(body)()
    assert e.value.what == what and e.value.hint.startswith(hint)
    located(e, body.__code__.co_firstlineno)


def test_the_same_checks_hold_in_body_callables():
    """for_each / select / consume bodies run through the same checks as a @workload body."""
    line = here() + 1
    body = lambda t: task("k", [t], []) if t == 1 else None  # noqa: E731
    with pytest.raises(DSLUsageError, match=r"`\(t == 1\)` has no value") as e:
        for_each(Dense[4](), body)
    located(e, line)
    ch = Channel("c", 2)
    with pytest.raises(DSLUsageError, match=r"`tok` cannot be used as a Python int") as e:
        consume(ch, lambda tok: [0, 1][tok])
    located(e, here() - 1)


# == 2. a loop variable formatted into a string =======================================================================
def test_task_names_formatted_from_a_loop_variable_get_each_tasks_value():
    """The issue-17 repro: all three tasks used to be named expert_e."""
    w = select([0, 2, 5], lambda e: task(f"expert_{e}", [e], []))
    assert names(w) == ["expert_0", "expert_2", "expert_5"]
    w = select([0, 2, 5], lambda e: task("expert_" + str(e), [e], []))
    assert names(w) == ["expert_0", "expert_2", "expert_5"]
    w = select([1, 12], lambda e: task("x{:03d}".format(e) + "_%s" % e + f"_{e + 1:>3}", [e], []))
    assert names(w) == ["x001_1_  2", "x012_12_ 13"]


def test_task_names_from_several_loop_variables_and_expressions():
    @workload
    def grid():
        for b, h in P(Dense[2](), Dense[3]()):
            task(f"t{b}_{h}_{b * 3 + h}", [b, h], [])

    assert names(grid()) == ["t0_0_0", "t0_1_1", "t0_2_2", "t1_0_3", "t1_1_4", "t1_2_5"]
    w = for_each(Dense[2](), lambda i: select([7, 9], lambda e: task(f"i{i}e{e}", [i, e], [])))
    assert names(w) == ["i0e7", "i0e9", "i1e7", "i1e9"]


def test_formatting_keeps_expressions_readable():
    """repr (what messages use) is the expression; str/format is the placeholder a task name resolves."""
    b = LoopVar("b")
    assert repr(b + 1) == "(b + 1)" and repr(b) == "b"
    assert str(b + 1) == "\u27e8(b + 1)\u27e9" and f"x{b}" == "x\u27e8b\u27e9"


def test_a_format_spec_that_cannot_format_an_int_is_refused():
    line = here() + 1
    body = lambda e: task(f"e{e:s}", [e], [])  # noqa: E731
    with pytest.raises(DSLUsageError) as e:
        select([0, 2], body)
    assert e.value.what == "the format spec 's' in `{e:s}` cannot format the integer values of the loop expression `e`."
    assert e.value.hint == "Use an integer format such as f\"expert_{e:03d}\", or none."
    located(e, line)


PLACEHOLDER_HINT = ("Only a task's name may format a loop variable (task(f\"expert_{e}\", [e], ...) names each task by "
                    "its value); here use a fixed string, or read the value at run time (t.get('e')).")


@pytest.mark.parametrize("make, api, text", [
    (lambda e: Tensor(shape=(4, 4), name=f"t{e}"), "Tensor(name=...)", "t\u27e8e\u27e9"),
    (lambda e: Channel(name=f"c_{e}"), "Channel(name=...)", "c_\u27e8e\u27e9"),
    (lambda e: process(f"worker{e}"), "Process(name=...)", "worker\u27e8e\u27e9"),
    (lambda e: Event(f"ev{e}"), "Event(name=...)", "ev\u27e8e\u27e9"),
    (lambda e: task("k", [e], []).named(f"n{e}"), "named()", "n\u27e8e\u27e9"),
    (lambda e: task("k", [e], [f"{e}"]), "task('k') resources", "\u27e8e\u27e9"),
    (lambda e: task("k", [e], {"x": str(e)}), "task('k') resources", "\u27e8e\u27e9"),
    (lambda e: kernel(name=f"k{e}")(lambda: None), "@kernel(name=...)", "k\u27e8e\u27e9"),
    (lambda e: send(Channel("cc", 2), f"{e}"), "send('cc', ...)", "\u27e8e\u27e9"),
], ids=["tensor", "channel", "process", "event", "named", "resource-list", "resource-dict", "kernel", "send-token"])
def test_a_formatted_loop_variable_is_refused_everywhere_else(make, api, text):
    with pytest.raises(DSLUsageError) as e:
        select([0, 2], make)
    assert e.value.what == (f"{api} got {text!r}, a string made by formatting the loop expression `e` while the "
                            "workload is being built; the expression has no value yet, so the string holds a "
                            "placeholder, not a task's value.")
    assert e.value.hint == PLACEHOLDER_HINT
    located(e, make.__code__.co_firstlineno)


def test_formatted_loop_variables_in_launch_arguments_names_and_options():
    @kernel
    def tagged(src: In[Tile[4, 4, F32]], dst: Out[Tile[4, 4, F32]], tag: Constexpr[str] = "x"):
        tl.store(dst, tl.load(src))

    X, Y = Tensor(shape=(4, 4, 4), dtype=F32), Tensor(shape=(4, 4, 4), dtype=F32)
    with pytest.raises(DSLUsageError, match=r"^kernel 'tagged' Constexpr parameter 'tag' got 'm⟨b⟩'") as e:
        loop_of(lambda b: tagged[b](src=X[b], dst=Y[b], tag=f"m{b}"))()
    located(e, here() - 1)
    with pytest.raises(DSLUsageError, match=r"^P\(names=...\) got 'v⟨b⟩', a string made by formatting"):
        loop_of(lambda b: [None for _ in P(Dense[2](), names=[f"v{b}"])])()
    w = select([0, 2], lambda e: task("k", [e], []))
    with pytest.raises(DSLUsageError, match=r"^compile\(machine=...\) got 'ascend_⟨e⟩'"):
        w.compile(machine=f"ascend_{LoopVar('e')}")


def test_a_placeholder_from_another_build_is_refused():
    text = f"x_{LoopVar('q')}"  # formatted outside any workload: nothing records what it stands for
    line = here() + 1
    body = lambda e: task(text, [e], [])  # noqa: E731
    with pytest.raises(DSLUsageError) as e:
        select([0, 2], body)
    assert e.value.what == ("task() got the name 'x_\u27e8q\u27e9', whose placeholder \u27e8q\u27e9 was not formatted "
                            "from a loop expression of this workload.")
    located(e, line)


def test_a_placeholder_given_to_task_get_at_run_time_is_refused():
    w = select([0, 2], lambda e: task("k", [e], [], cycles=10))
    e_var = LoopVar("e")
    with pytest.raises(DSLUsageError, match=r"^task 0 \(k\)\.get\(\) got '⟨e⟩'"):
        w.dispatch(DispatchPolicy.affinity(lambda t: t.get(f"{e_var}"), 2)).compile().execute()


# == 3. scalar kernel arguments ========================================================================================
@kernel
def scale_f32(src: In[Tile[4, 4, F32]], dst: Out[Tile[4, 4, F32]], alpha: Scalar[F32]):
    tl.store(dst, tl.mul(tl.load(src), alpha))


@kernel
def scale_i32(src: In[Tile[4, 4, I32]], dst: Out[Tile[4, 4, I32]], alpha: Scalar[I32]):
    tl.store(dst, tl.mul(tl.load(src), alpha))


def _scalar_kernel(dtype):
    @kernel
    def k(src: In[Tile[4, 4, F32]], dst: Out[Tile[4, 4, F32]], alpha: Scalar[dtype]):
        tl.store(dst, tl.load(src))
    return k


@pytest.mark.parametrize("dtype, value, what, hint", [
    (I32, 2.7, "2.7 is not a whole number, so it has no I32 value (I32 is an integer dtype; it would be truncated).",
     "Pass a whole number (e.g. 2), or declare the parameter Scalar[DType.F32] if fractions are meant."),
    (I32, np.float64(-0.5), "np.float64(-0.5) is not a whole number, so it has no I32 value (I32 is an integer dtype; "
     "it would be truncated).", "Pass a whole number (e.g. -1)"),
    (F16, 1e6, "1000000.0 is outside the range of F16 (largest finite 65504).",
     "Pass a value inside the range of F16, declare the parameter Scalar[DType.F32], or pass float('inf') if "
     "infinity is meant."),
    (DType.BF16, 1e39, "1e+39 is outside the range of BF16 (largest finite 3.38953e+38).", "Pass a value inside"),
    (F32, 10**400, f"{10**400!r} is too large for any floating-point dtype (F32).", "Pass a value inside"),
    (I8, 300, "300 is outside the range of I8 (-128..127).",
     "Pass a value inside that range, or declare the parameter with a wider dtype (Scalar[DType.I64] or "
     "Scalar[DType.F32])."),
    (DType.U8, -1, "-1 is outside the range of U8 (0..255).", "Pass a value inside that range"),
    (DType.U32, 2**32, "4294967296 is outside the range of U32 (0..4294967295).", "Pass a value inside that range"),
    (DType.I64, np.uint64(2**63), "np.uint64(9223372036854775808) is outside the range of I64 "
     "(-9223372036854775808..9223372036854775807).", "Pass a value inside that range"),
    (I32, float("nan"), "nan has no I32 value: I32 is an integer dtype, with no nan or inf.",
     "Integer dtypes have no nan or inf: declare the parameter Scalar[DType.F32] to pass nan."),
    (I32, float("inf"), "inf has no I32 value: I32 is an integer dtype, with no nan or inf.", "Integer dtypes"),
], ids=["float-to-i32", "numpy-float-to-i32", "f16-overflow", "bf16-overflow", "int-too-big-for-floats", "i8-range",
        "u8-negative", "u32-range", "numpy-uint-to-i64", "nan-to-int", "inf-to-int"])
def test_scalar_arguments_without_a_value_in_their_dtype_are_refused_at_the_launch(dtype, value, what, hint):
    k = _scalar_kernel(dtype)
    X, Y = Tensor(shape=(4, 4, 4), dtype=F32), Tensor(shape=(4, 4, 4), dtype=F32)
    line = here() + 1
    body = lambda b: k[b](src=X[b], dst=Y[b], alpha=value)  # noqa: E731
    with pytest.raises(PtortValueError) as e:
        loop_of(body)()
    assert e.value.what == f"kernel 'k' parameter 'alpha' (Scalar[{dtype}]): {what}"
    assert e.value.hint.startswith(hint)
    located(e, line)


def test_scalar_values_are_checked_even_without_type_checking():
    X, Y = Tensor(shape=(4, 4, 4), dtype=F32), Tensor(shape=(4, 4, 4), dtype=F32)

    @workload(type_check=False)
    def w():
        for b in P(Dense[4]()):
            scale_f32[b](src=X[b], dst=Y[b], alpha=1.0)
            scale_i32[b](src=None, dst=None, alpha=2.7)

    with pytest.raises(PtortValueError, match=r"^kernel 'scale_i32' parameter 'alpha' \(Scalar\[I32\]\): 2.7 is not"):
        w()


def run_scaled(k, x, alpha):
    """Y = k(X, alpha) over the 4 tiles of ``x``; returns Y's values."""
    X, Y = Tensor(data=x.copy()), Tensor(shape=x.shape, dtype=DType.from_numpy(x.dtype))
    loop_of(lambda b: k[b](src=X[b], dst=Y[b], alpha=alpha))().compile().execute()
    return Y.data


@pytest.mark.parametrize("value", [True, "3", np.bool_(True), 1j], ids=["bool", "str", "numpy-bool", "complex"])
def test_bools_and_strings_stay_type_errors(value):
    with pytest.raises(PtortTypeError, match=r"Kernel 'scale_f32' parameter 'alpha' is a scalar, got"):
        run_scaled(scale_f32, np.ones((4, 4, 4), np.float32), value)


@pytest.mark.parametrize("alpha", [3, 3.0, np.int64(3), np.float32(3.0)], ids=["int", "whole-float", "np-int",
                                                                                "np-float"])
def test_whole_numbers_of_any_kind_scale_an_int_tile_like_numpy(alpha):
    x = np.arange(64, dtype=np.int32).reshape(4, 4, 4) - 30
    np.testing.assert_array_equal(run_scaled(scale_i32, x, alpha), x * 3)


@pytest.mark.parametrize("alpha", [float("inf"), float("nan"), np.float16(0.5), -2], ids=["inf", "nan", "np-f16",
                                                                                          "int"])
def test_float_scalars_including_inf_and_nan_on_purpose_compute_like_numpy(alpha):
    xf = np.linspace(-2, 2, 64, dtype=np.float32).reshape(4, 4, 4)
    with np.errstate(invalid="ignore"):
        np.testing.assert_array_equal(run_scaled(scale_f32, xf, alpha), xf * np.float32(alpha))


def test_symbolic_scalar_arguments_are_checked_per_task_when_they_run():
    """A loop expression has its value only per task: 2**30 * b fits I32 for b = 0, 1 and not for b = 2."""
    x = np.ones((4, 4, 4), dtype=np.int32)
    X, Y = Tensor(data=x.copy()), Tensor(shape=(4, 4, 4), dtype=I32)
    line = here() + 1
    body = lambda b: scale_i32[b](src=X[b], dst=Y[b], alpha=b * 2**30)  # noqa: E731
    with pytest.raises(KernelExecutionError) as e:
        loop_of(body)().compile().execute()
    assert e.value.what.startswith("the launch of scale_i32 for tile 2 passes 2147483648 for scalar parameter 'alpha' "
                                   "(Scalar[I32]): 2147483648 is outside the range of I32 "
                                   "(-2147483648..2147483647).")
    located(e, line)
    line = here() + 1
    body = lambda b: scale_i32[b](src=X[b], dst=Y[b], alpha=b < 2)  # noqa: E731
    with pytest.raises(KernelExecutionError) as e:
        loop_of(body)().compile().execute()
    assert "passes True for scalar parameter 'alpha' (Scalar[I32]): bool True is not a real number" in e.value.what
    assert e.value.hint.startswith("A comparison of loop variables gives True/False, not a number")
    located(e, line)
    X, Y = Tensor(data=x.copy()), Tensor(shape=(4, 4, 4), dtype=I32)
    loop_of(lambda b: scale_i32[b](src=X[b], dst=Y[b], alpha=b * 7 - 2))().compile().execute()
    np.testing.assert_array_equal(Y.data[:, 0, 0], [-2, 5, 12, 19])


# == 4. a kernel called from another kernel ============================================================================
NESTED_HINT = ("Inline its tl.* ops in 'outer', or move them into a plain Python function (no @kernel) that takes "
               "tiles and calls tl.*, and call that from both kernels; launch kernels from a @workload.")


def test_a_kernel_called_inside_a_kernel_is_refused():
    line = here() + 4
    with pytest.raises(DSLUsageError) as e:
        @kernel
        def outer(src: In[Tile[4, 4, F32]], dst: Out[Tile[4, 4, F32]]):
            copy(src=src, dst=dst)
    assert e.value.what == ("kernel 'copy' is called inside the body of kernel 'outer' (copy(...)); a kernel cannot "
                            "launch another kernel, so its ops would not be part of the outer kernel and its outputs "
                            "never written.")
    assert e.value.hint == NESTED_HINT and e.value.context == "kernel 'outer'"
    located(e, line)

    with pytest.raises(DSLUsageError, match=r"\(copy\[...\]\(...\)\); a kernel cannot launch another kernel") as e:
        @kernel
        def outer(src: In[Tile[4, 4, F32]], dst: Out[Tile[4, 4, F32]]):  # noqa: F811
            copy[0](src=src, dst=dst)
    located(e, here() - 1)


def test_a_nested_kernel_call_is_refused_even_while_a_workload_is_built():
    """Tracing inside a @workload body must not turn the inner call into a task of the workload."""
    @workload
    def w():
        @kernel
        def outer(n: Constexpr[int] = 1):
            copy(src=None, dst=None)
        for b in P(Dense[2]()):
            task(outer, [b], {})

    with pytest.raises(DSLUsageError, match="kernel 'copy' is called inside the body of kernel 'outer'"):
        w()


def test_a_plain_helper_function_inlines_its_ops():
    def double(x):
        return tl.add(x, x)

    @kernel
    def outer(src: In[Tile[4, 4, F32]], dst: Out[Tile[4, 4, F32]]):
        tl.store(dst, double(tl.load(src)))

    assert [op.kind.value for op in outer.trace().ops] == ["load", "add", "store"]


# == 5. a traced tile has no Python value ==============================================================================
MASK_HINT = ("Compute both results and pick per element with a mask: tl.where(tl.gt(x, 0.0), a, b) (masks come from "
             "tl.lt/le/gt/ge/eq/ne).")
VALUE_HINT = ("Keep computing with tl.* ops on whole tiles; pick per element with a mask and tl.where, and pass values "
              "known at launch as Constexpr[int] or Scalar[...] parameters.")


@pytest.mark.parametrize("use, what, hint", [
    (lambda x: 1 if x else 0, "the truth value of a tile (f32[4,4]) is not known while the kernel is traced: the body "
     "runs once, at trace time, so a Python `if`/`while`/`and`/`or`/`not` on a tile would take one branch for every "
     "element of every task.", MASK_HINT),
    (lambda x: not x, "the truth value of a tile (f32[4,4])", MASK_HINT),
    (lambda x: x and 1, "the truth value of a tile (f32[4,4])", MASK_HINT),
    (lambda x: int(x), "int() of a tile (f32[4,4]): a tile has no Python value while the kernel is traced (its values "
     "exist only when a task runs).", VALUE_HINT),
    (lambda x: float(x), "float() of a tile (f32[4,4])", VALUE_HINT),
    (lambda x: round(x), "round() of a tile (f32[4,4])", VALUE_HINT),
    (lambda x: math.floor(x), "math.floor() of a tile (f32[4,4])", VALUE_HINT),
    (lambda x: range(x), "int() of a tile (f32[4,4])", VALUE_HINT),
    (lambda x: len(x), "len() of a tile (f32[4,4]): a kernel body works on whole tiles, not on Python elements or "
     "rows.", "Use tl.* ops on the whole tile (tl.rowsum, tl.transpose, tl.slice_even, ...); its shape is [4, 4] "
     "(x.shape)."),
    (lambda x: [r for r in x], "iterating a tile (f32[4,4])", "Use tl.* ops on the whole tile"),
    (lambda x: x[0], "indexing [0] of a tile (f32[4,4])", "Use tl.* ops on the whole tile"),
    (lambda x: x == 0, "`==` on a tile (f32[4,4]) in a kernel body: Python comparisons give one answer at trace time, "
     "not one per element.", "Use tl.eq(a, b) for the elementwise U8 mask, and tl.where(mask, x, y) to pick per "
     "element."),
    (lambda x: x != x, "`!=` on a tile (f32[4,4]) in a kernel body", "Use tl.ne(a, b)"),
    (lambda x: x > 0.0, "`>` on a tile (f32[4,4]) in a kernel body", "Use tl.gt(a, b)"),
    (lambda x: 0.0 <= x, "`>=` on a tile (f32[4,4]) in a kernel body", "Use tl.ge(a, b)"),
], ids=["if", "not", "and", "int", "float", "round", "floor", "range", "len", "iterate", "index", "eq", "ne", "gt",
        "reflected-le"])
def test_python_questions_about_a_traced_tile_are_refused(use, what, hint):
    with pytest.raises(DSLUsageError) as e:
        @kernel
        def k(src: In[Tile[4, 4, F32]], dst: Out[Tile[4, 4, F32]]):
            x = tl.load(src)
            use(x)
            tl.store(dst, x)
    assert e.value.what.startswith(what)
    assert e.value.hint.startswith(hint)
    assert e.value.context == "kernel 'k'"
    located(e, use.__code__.co_firstlineno)


def test_tracing_still_compares_values_itself_and_abs_traces():
    @kernel
    def k(src: In[Tile[4, 4, F32]], dst: Out[Tile[4, 4, F32]]):
        tl.store(dst, abs(-tl.load(src)))

    ir = k.trace()
    assert [op.kind.value for op in ir.ops] == ["load", "neg", "abs", "store"]
    p = ir.params[0].value
    assert p == ir.params[0].value and p != ir.ops[0].result and len({p, ir.params[0].value}) == 1
    assert bool(p)  # outside a trace a Value is an ordinary object


# == 6. generator and async bodies run nothing =========================================================================
BODY_HINT = ("Launch tasks as statements (k[t](...), task(...), send(...)) or return them (a workload or a list); do "
             "not yield them, and use a plain def, not async def.")


def test_a_generator_workload_is_refused_at_its_yield():
    line = here() + 5
    with pytest.raises(DSLUsageError) as e:
        @workload
        def w():
            for b in P(Dense[4]()):
                yield task("k", [b], [])
    assert e.value.what == ("@workload 'w' is a generator function (it uses `yield`): calling it returns without "
                            "running a line of its body, so it would build no tasks.")
    assert e.value.hint == BODY_HINT
    located(e, line)


def test_an_async_workload_is_refused_at_its_def():
    with pytest.raises(DSLUsageError) as e:
        @workload
        async def w():
            task("k", [0], [])
    assert e.value.what.startswith("@workload 'w' is an `async def` function: calling it returns without running")
    located(e, here() - 3)


def test_a_generator_kernel_is_refused_at_its_yield():
    with pytest.raises(DSLUsageError) as e:
        @kernel
        def k(src: In[Tile[4, 4, F32]], dst: Out[Tile[4, 4, F32]]):
            yield tl.store(dst, tl.load(src))
    assert e.value.what == ("@kernel 'k' is a generator function (it uses `yield`): calling it returns without running "
                            "a line of its body, so it would record no ops and write no outputs.")
    assert e.value.hint == "Write the body as a plain def that calls tl.* ops and tl.store (no yield, no async)."
    located(e, here() - 4)


def test_generator_bodies_of_loops_processes_and_consumers_are_refused():
    def each(t):
        yield task("k", [t], [])

    with pytest.raises(DSLUsageError, match=r"^the for_each body each is a generator function") as e:
        for_each(Dense[4](), each)
    located(e, each.__code__.co_firstlineno + 1)
    with pytest.raises(DSLUsageError, match=r"^the select body each is a generator function"):
        select([1, 2], each)
    ch = Channel("c", 2)
    with pytest.raises(DSLUsageError, match=r"^the consume body each is a generator function"):
        consume(ch, each)

    def produce():
        for i in range(4):
            yield send(ch, task("k", [i], []))

    with pytest.raises(DSLUsageError, match=r"^the body_func body produce is a generator function") as e:
        process("p").produces(ch).body_func(produce)
    located(e, produce.__code__.co_firstlineno + 2)


def test_bodies_returning_a_generator_are_refused():
    with pytest.raises(DSLUsageError) as e:
        for_each(Dense[4](), lambda t: (task("k", [t], []) for _ in range(1)))
    assert e.value.what == ("the for_each body <lambda> returned a generator, which runs nothing until iterated, so it "
                            "would build no tasks.")
    located(e, here() - 3)

    @workload
    def w():
        return (task("k", [b], []) for b in range(4))

    with pytest.raises(DSLUsageError, match=r"^@workload 'w' returned a generator") as e:
        w()
    located(e, here() - 1)


def test_a_pipeline_of_plain_bodies_still_builds_and_runs():
    ch = Channel("c", 2)
    a = process("a").produces(ch).body(for_each(Dense[3](), lambda t: send(ch, task("load", [t], [], cycles=5))))
    b = process("b").consumes(ch).body(consume(ch, lambda t: task("use", [t], [], cycles=5)))
    assert [t.kernel for t in connect(a, b).enumerate()] == ["load"] * 3 + ["use"] * 3


# == 7. sizes refused before any listing ===============================================================================
@pytest.mark.parametrize("make, cls, what", [
    (lambda: Dense[10**12](), PtortValueError,
     "Dense size 1,000,000,000,000 is more than the 20,000,000 iterations a workload may list: listing its points "
     "alone would run for minutes."),
    (lambda: Dense[10**30](), PtortValueError, "Dense size about 10**30 is more than the 20,000,000 iterations"),
    (lambda: DenseDyn(10**9), PtortValueError, "DenseDyn size 1,000,000,000 is more than the 20,000,000 iterations"),
    (lambda: Ragged(2, [10**8, 10**8]), PtortValueError,
     "Ragged(2, lengths) holds 200,000,000 items, more than the 20,000,000 iterations a workload may list."),
    (lambda: Dense[-3](), PtortValueError, "Dense size must be positive, got -3."),
    (lambda: Dense[8.0](), PtortTypeError, "Dense size must be an int, got 8.0."),
    (lambda: Dense[True](), PtortTypeError, "Dense size must be an int, got True."),
], ids=["dense-1e12", "dense-1e30", "densedyn-1e9", "ragged", "negative", "float", "bool"])
def test_absurd_axis_sizes_are_refused_where_the_axis_is_built(make, cls, what):
    with pytest.raises(cls) as e:
        make()
    assert e.value.what.startswith(what)
    located(e, make.__code__.co_firstlineno)


def test_a_dynamic_size_that_comes_out_huge_is_refused_when_listed():
    lines = []

    @workload
    def w():
        for b in P(Dense[2]()):
            lines.append(here() + 1)
            for h in P(DenseDyn(b * 10**9)):
                task("k", [h], [])

    with pytest.raises(PtortValueError, match=r"^DenseDyn\(b \* 1000000000\) size is 1,000,000,000 with b = 1, more "
                                              "than the 20,000,000 iterations") as e:
        w().enumerate()
    located(e, lines[0])


def _no_listing(monkeypatch):
    def refuse(*_):
        raise AssertionError("the workload was listed")
    monkeypatch.setattr(steps_module, "enumerate_tasks", refuse)


def test_too_many_tasks_from_static_sizes_is_refused_before_listing(monkeypatch):
    """5000 x 5000 tasks used to be listed up to 2 million (seconds, gigabytes) before the refusal."""
    _no_listing(monkeypatch)
    X, Y = Tensor(shape=(4, 4, 4), dtype=F32), Tensor(shape=(4, 4, 4), dtype=F32)
    lines = []

    @workload
    def w():
        for a, _ in P(Dense[5000](), Dense[5000]()):
            lines.append(here() + 1)
            copy[a](src=X[0], dst=Y[0])

    started = time.perf_counter()
    for run in (lambda: w().compile(), lambda: w().enumerate()):
        with pytest.raises(PtortValueError) as e:
            run()
        assert e.value.what == ("workload 'w' has more than 2,000,000 tasks (at least 25,000,000); enumerate() and a "
                                "run that computes values list every task in memory (about 0.5-1 KB each), so they "
                                "would run for minutes and exhaust memory.")
        assert e.value.hint.startswith("Use larger tiles or fewer of them")
        assert e.value.hint.endswith("If the run is meant to be this long, raise ptort_lab.dsl.steps.MAX_TASKS.")
        located(e, lines[0])
    assert time.perf_counter() - started < 5.0  # listing took 12-30 s before the refusal


def test_nested_loops_multiply_and_lists_count(monkeypatch):
    monkeypatch.setattr(steps_module, "MAX_TASKS", 11)
    _no_listing(monkeypatch)

    @workload
    def w():
        for b in P.seq(Dense[4]()):
            for h in P(DenseDyn(3)):
                task("k", [b, h], [])

    with pytest.raises(PtortValueError, match="has more than 11 tasks"):
        w().compile()
    with pytest.raises(PtortValueError, match="has more than 11 tasks"):
        select([0, 1, 2], lambda e: select(range(4), lambda i: task("k", [e, i], []))).enumerate()


def test_loops_that_list_no_tasks_still_count_their_iterations(monkeypatch):
    _no_listing(monkeypatch)
    lines = []

    @workload
    def w():
        lines.append(here() + 1)
        for a, _ in P(Dense[5000](), Dense[5000]()):
            with P.when(a < 0):
                task("k", [a], [])

    with pytest.raises(PtortValueError) as e:
        w().compile()
    assert e.value.what == ("workload 'w' loops over at least 25,000,000 iterations, more than the 20,000,000 a "
                            "workload may list; listing them would run for minutes before any task runs.")
    assert e.value.hint == ("Shorten the loops or use larger tiles (fewer, bigger iterations); an iteration that "
                            "launches nothing still has to be listed.")
    located(e, lines[0])
    with pytest.raises(PtortValueError, match="loops over at least 30,000,000 iterations"):
        select(range(10**12 - 30_000_000, 10**12), lambda e: cond(e < 0, task("k", [e], []))).compile()


def test_only_what_every_run_must_list_counts(monkeypatch):
    """Branches count their smaller side, dynamic sizes and consumed tokens count 0: nothing valid is refused."""
    monkeypatch.setattr(steps_module, "MAX_TASKS", 14)

    @workload
    def w():
        for b in P(Dense[4]()):
            with P.when(b < 1):
                for h in P(Dense[8]()):
                    task("k", [b, h], [])
            for h in P(DenseDyn(b)):
                task("d", [b, h], [])

    assert len(w().enumerate()) == 14  # b = 0: 8 tasks; DenseDyn(b) adds 0 + 1 + 2 + 3
    assert len(cond(False, select(range(100), lambda e: task("k", [e], [])), task("one", [0], [])).enumerate()) == 1


def test_a_pipeline_compiles_under_its_own_limit_and_is_listed_under_the_listing_one(monkeypatch):
    monkeypatch.setattr(steps_module, "MAX_TASKS", 5)
    monkeypatch.setattr(steps_module, "MAX_PIPELINE_TASKS", 7)
    ch = Channel("c", 2)

    def pipeline(n):
        a = process("a").produces(ch).body(for_each(Dense[n](), lambda t: send(ch, task("load", [t], [], cycles=5))))
        b = process("b").consumes(ch).body(consume(ch, lambda t: task("use", [t], [], cycles=5)))
        return connect(a, b)

    pipeline(3).compile()  # 3 producer tasks + the 3 the consumer surely runs (one per token) <= 7
    with pytest.raises(PtortValueError, match=r"has more than 5 tasks \(at least 6\)"):
        pipeline(3).enumerate()
    with pytest.raises(PtortValueError, match="has more than 7 tasks") as e:
        pipeline(4).compile()
    assert e.value.what == ("workload 'connect' has more than 7 tasks (at least 8); at tens to hundreds of "
                            "microseconds of simulator time a task it would run for an hour or more.")
    assert "execute(steady_state=True) extrapolates it exactly" in e.value.hint
    assert e.value.hint.endswith("raise ptort_lab.dsl.steps.MAX_PIPELINE_TASKS and run it with "
                                 "execute(keep_trace=False), which keeps no task in memory.")


def _issue_order(policy):
    w = select(range(8), lambda e: task("k", [e], [], cycles=10))
    prog = w.dispatch(DispatchPolicy.round_robin(2)).timing(policy).compile().execute()
    return [(s.start, s.end) for s in sorted(prog.trace.spans, key=lambda s: s.task_id)]


def test_absurd_timing_policies_cost_no_more_than_the_task_count():
    """interleaved(10**9) on 8 tasks ran 50 s: more chunks than tasks is one task per chunk, i.e. program order."""
    started = time.perf_counter()
    assert _issue_order(TimingPolicy.interleaved(10**9)) == _issue_order(TimingPolicy.interleaved(8))
    assert _issue_order(TimingPolicy.interleaved(8)) == _issue_order(TimingPolicy.immediate)
    assert _issue_order(TimingPolicy.batched(10**9)) == _issue_order(TimingPolicy.immediate)
    assert time.perf_counter() - started < 10.0  # interleaved(10**9) took 50 s
    assert _issue_order(TimingPolicy.interleaved(np.int64(2))) == _issue_order(TimingPolicy.interleaved(2))
    assert _issue_order(TimingPolicy.rate_limit(np.float64(2.5))) == _issue_order(TimingPolicy.rate_limit(2.5))
    assert _issue_order(TimingPolicy.rate_limit(1e300)) == _issue_order(TimingPolicy.immediate)


@pytest.mark.parametrize("make, what", [
    (lambda: TimingPolicy.rate_limit(10**400), "TimingPolicy.rate_limit(tasks_per_ms) got about 10**400, beyond any "
                                               "float rate."),
    (lambda: TimingPolicy.rate_limit(float("nan")), "TimingPolicy.rate_limit(tasks_per_ms) needs a number > 0, got "
                                                    "nan."),
    (lambda: TimingPolicy.rate_limit(float("inf")), "TimingPolicy.rate_limit(tasks_per_ms) needs a number > 0, got "
                                                    "inf."),
    (lambda: TimingPolicy.interleaved(0), "TimingPolicy.interleaved(n) needs an int >= 1, got 0."),
    (lambda: TimingPolicy.batched(2.5), "TimingPolicy.batched(n) needs an int >= 1, got 2.5."),
], ids=["rate-huge-int", "rate-nan", "rate-inf", "interleaved-0", "batched-float"])
def test_timing_policy_values_without_a_meaning_are_refused(make, what):
    with pytest.raises(PtortValueError) as e:
        make()
    assert e.value.what == what
    located(e, make.__code__.co_firstlineno)
