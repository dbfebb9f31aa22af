"""DSL round 9: a cached kernel trace kept a value that had changed since (read through a helper, a closure, a dict
item or an attribute); `**`, `//`, `%` on a tile and a float operand of a loop expression gave Python's bare
TypeError."""
import importlib
import types

import numpy as np
import pytest
from source_lines import here, located

from ptort_lab import Dense, DSLUsageError, DType, In, Out, P, Scalar, Tensor, Tile, kernel, tl, workload

kernel_module = importlib.import_module("ptort_lab.dsl.kernel")  # (ptort_lab.dsl.kernel is the decorator too)

F32, I32 = DType.F32, DType.I32
T = Tile[2, 4, F32]
X0 = np.arange(8, dtype=np.float32).reshape(2, 4)


def run(k, x: np.ndarray = X0) -> np.ndarray:
    """Launch ``k(x=..., y=...)`` once and return y."""
    X, Y = Tensor(data=x.copy()), Tensor(data=np.zeros(x.shape, x.dtype))

    @workload
    def w():
        k(x=X, y=Y)

    w().compile().execute()
    return Y.data


# -- hunt9a #3: values a trace baked in, read other than as a plain global of the body ---------------------------------
EPS_R9 = 1.0
SCALE_R9 = 2.0
CFG_R9 = {"scale": 2.0, "inner": {"bias": 1.0}}
LIST_R9 = [3.0]


def shift_r9(x):
    return tl.adds(x, EPS_R9)


def outer_r9(x):  # a helper calling a helper: its global is watched too
    return tl.muls(shift_r9(x), SCALE_R9)


def offset_r9():
    return 1.0


class Settings:
    scale = 2.0

    def __init__(self) -> None:
        self.bias = 1.0


SETTINGS_R9 = Settings()
CONFIG_R9 = types.ModuleType("config_r9")  # a user's config module (import config; config.EPS)
CONFIG_R9.__file__ = __file__
CONFIG_R9.EPS = 1.0
DTYPE_R9 = F32


@kernel
def k_helper(x: In[T], y: Out[T]):
    tl.store(y, shift_r9(tl.load(x)))


@kernel
def k_nested(x: In[T], y: Out[T]):
    tl.store(y, outer_r9(tl.load(x)))


@kernel
def k_dict(x: In[T], y: Out[T]):
    tl.store(y, tl.adds(tl.muls(tl.load(x), CFG_R9["scale"]), CFG_R9["inner"]["bias"]))


@kernel
def k_list(x: In[T], y: Out[T]):
    tl.store(y, tl.muls(tl.load(x), LIST_R9[0]))


@kernel
def k_attributes(x: In[T], y: Out[T]):
    tl.store(y, tl.adds(tl.muls(tl.load(x), Settings.scale), SETTINGS_R9.bias))


@kernel
def k_module(x: In[T], y: Out[T]):
    tl.store(y, tl.adds(tl.load(x), CONFIG_R9.EPS))


@kernel
def k_enum(x: In[T], y: Out[T]):
    tl.store(y, tl.cast(tl.cast(tl.load(x), DTYPE_R9), F32))


@kernel
def k_redefined_helper(x: In[T], y: Out[T]):
    tl.store(y, tl.adds(tl.load(x), offset_r9()))


def make_scaled():
    factor = 2.0

    @kernel
    def k_closure(x: In[T], y: Out[T]):
        tl.store(y, tl.muls(tl.load(x), factor))

    def set_factor(value: float) -> None:
        nonlocal factor
        factor = value

    return k_closure, set_factor


def make_with_helper():
    """A kernel factory whose helper reads the factory's closure variable."""
    bias = 1.0

    def helper(x):
        return tl.adds(x, bias)

    @kernel
    def k_closure_helper(x: In[T], y: Out[T]):
        tl.store(y, helper(tl.load(x)))

    def set_bias(value: float) -> None:
        nonlocal bias
        bias = value

    return k_closure_helper, set_bias


def test_a_global_read_through_a_helper_is_traced_again_when_it_changes():
    global EPS_R9
    assert np.array_equal(run(k_helper), X0 + 1.0)
    try:
        EPS_R9 = 10.0
        assert np.array_equal(run(k_helper), X0 + 10.0)
        assert "add a, 10.0" in str(k_helper.trace())
    finally:
        EPS_R9 = 1.0
    assert np.array_equal(run(k_helper), X0 + 1.0)


def test_the_globals_of_a_helper_a_helper_calls_are_watched_too():
    global EPS_R9, SCALE_R9
    assert np.array_equal(run(k_nested), (X0 + 1.0) * 2.0)
    try:
        EPS_R9, SCALE_R9 = 0.5, 3.0
        assert np.array_equal(run(k_nested), (X0 + 0.5) * 3.0)
    finally:
        EPS_R9, SCALE_R9 = 1.0, 2.0


def test_a_closure_variable_of_a_kernel_factory_is_traced_again_when_it_changes():
    k_closure, set_factor = make_scaled()
    assert np.array_equal(run(k_closure), X0 * 2.0)
    set_factor(7.0)
    assert np.array_equal(run(k_closure), X0 * 7.0)
    assert "mul a, 7.0" in str(k_closure.trace())


def test_a_closure_variable_read_by_a_helper_is_watched():
    k_closure_helper, set_bias = make_with_helper()
    assert np.array_equal(run(k_closure_helper), X0 + 1.0)
    set_bias(-4.0)
    assert np.array_equal(run(k_closure_helper), X0 - 4.0)


def test_a_dict_item_changed_in_place_is_traced_again():
    assert np.array_equal(run(k_dict), X0 * 2.0 + 1.0)
    try:
        CFG_R9["scale"] = 5.0
        CFG_R9["inner"]["bias"] = 0.25
        assert np.array_equal(run(k_dict), X0 * 5.0 + 0.25)
    finally:
        CFG_R9["scale"] = 2.0
        CFG_R9["inner"]["bias"] = 1.0
    assert np.array_equal(run(k_dict), X0 * 2.0 + 1.0)


def test_a_list_item_at_a_constant_index_is_watched():
    assert np.array_equal(run(k_list), X0 * 3.0)
    try:
        LIST_R9[0] = 0.5
        assert np.array_equal(run(k_list), X0 * 0.5)
    finally:
        LIST_R9[0] = 3.0


def test_class_and_instance_attributes_are_traced_again_when_they_change():
    assert np.array_equal(run(k_attributes), X0 * 2.0 + 1.0)
    try:
        Settings.scale = 3.0
        assert np.array_equal(run(k_attributes), X0 * 3.0 + 1.0)
        SETTINGS_R9.bias = 9.0
        assert np.array_equal(run(k_attributes), X0 * 3.0 + 9.0)
    finally:
        Settings.scale = 2.0
        SETTINGS_R9.bias = 1.0


def test_an_attribute_of_a_user_module_is_traced_again_when_it_changes():
    assert np.array_equal(run(k_module), X0 + 1.0)
    try:
        CONFIG_R9.EPS = 0.5
        assert np.array_equal(run(k_module), X0 + 0.5)
    finally:
        CONFIG_R9.EPS = 1.0


def test_an_enum_global_is_traced_again_when_it_changes():
    global DTYPE_R9
    x = X0 + 0.25
    assert np.array_equal(run(k_enum, x), x)
    try:
        DTYPE_R9 = DType.I32
        assert "b: i32[2,4] = cast[I32] a" in str(k_enum.trace())
        assert np.array_equal(run(k_enum, x), X0)  # the fraction is dropped in I32
    finally:
        DTYPE_R9 = F32


def test_a_helper_defined_again_is_traced_again():
    global offset_r9
    before = offset_r9
    assert np.array_equal(run(k_redefined_helper), X0 + 1.0)
    try:
        def offset_r9():  # e.g. its notebook cell run again with a new body
            return 6.0
        assert np.array_equal(run(k_redefined_helper), X0 + 6.0)
    finally:
        offset_r9 = before


def test_nothing_changed_keeps_the_cached_trace_and_does_not_scan_again(monkeypatch):
    global EPS_R9
    first = k_nested.trace()
    scans = []
    real = kernel_module._dependencies
    monkeypatch.setattr(kernel_module, "_dependencies", lambda fn: scans.append(fn) or real(fn))
    for _ in range(3):
        run(k_nested)
    assert k_nested.trace() is first and not scans  # each launch compares the objects only
    try:
        EPS_R9 = 1.0 + 0.0  # another object, the same value: the same trace
        EPS_R9 = float("1.0")
        assert k_nested.trace() is first and not scans
        EPS_R9 = 2.0
        assert k_nested.trace() is not first and len(scans) == 1
    finally:
        EPS_R9 = 1.0


def test_the_kernel_docstring_names_what_is_watched_and_what_is_not():
    doc = kernel_module.Kernel.__doc__ or ""
    assert "by the helper functions it calls that way" in doc
    assert "Values reached any other way (a computed key, a numpy array's elements, a property" in doc


# -- hunt9a #9: `**`, `//`, `%` on a tile ------------------------------------------------------------------------------
def test_power_of_a_tile_is_refused_at_the_definition_naming_tl_mul():
    with pytest.raises(DSLUsageError) as e:
        line = here() + 4
        @kernel
        def square(x: In[T], y: Out[T]):
            v = tl.load(x)
            tl.store(y, v ** 2)
    assert e.value.what == ("`**` on a tile (f32[2,4]) (with 2 on the right): tl has no power op, so a tile does not "
                            "support `**`.")
    assert e.value.hint == ("Square with tl.mul(x, x) (or x * x); use tl.sqrt(x) for x ** 0.5 and tl.rsqrt(x) for "
                            "x ** -0.5; another power p of a positive x is tl.exp(tl.muls(tl.log(x), p)).")
    assert e.value.context == "kernel 'square'"
    located(e, line)


def test_a_number_to_the_power_of_a_tile_is_refused():
    with pytest.raises(DSLUsageError, match=r"^`\*\*` on a tile \(f32\[2,4\]\) \(with 2\.0 on the left\)") as e:
        line = here() + 3
        @kernel
        def exp2(x: In[T], y: Out[T]):
            tl.store(y, 2.0 ** tl.load(x))
    located(e, line)


@pytest.mark.parametrize("op", ["//", "r//"])
def test_floor_division_of_a_tile_is_refused_naming_tl_div(op):
    with pytest.raises(DSLUsageError) as e:
        line = here() + 4
        @kernel
        def halve(x: In[Tile[2, 4, I32]], y: Out[Tile[2, 4, I32]]):
            v = tl.load(x)
            tl.store(y, v // 2 if op == "//" else 2 // v)
    side = "right" if op == "//" else "left"
    assert e.value.what == (f"`//` on a tile (i32[2,4]) (with 2 on the {side}): tl has no floor-division op, so a "
                            "tile does not support `//`.")
    assert e.value.hint == ("Divide with tl.div(a, b) (or a / b): integer tiles divide to an integer (operands of one "
                            "sign), and a float quotient tl.cast to an integer dtype is rounded to the nearest "
                            "integer, halves to even (tl has no floor op).")
    located(e, line)


def test_remainder_of_a_tile_is_refused_with_the_formula_that_works():
    with pytest.raises(DSLUsageError) as e:
        line = here() + 4
        @kernel
        def parity(x: In[Tile[2, 4, I32]], y: Out[Tile[2, 4, I32]]):
            v = tl.load(x)
            tl.store(y, v % 2)
    assert e.value.what == ("`%` on a tile (i32[2,4]) (with 2 on the right): tl has no remainder op, so a tile does "
                            "not support `%`.")
    assert e.value.hint == "For integer tiles of one sign, compute it as tl.sub(a, tl.mul(tl.div(a, b), b)) " \
                           "(a - (a / b) * b)."
    located(e, line)

    @kernel  # the formula the hint names runs and gives the remainder
    def remainder(x: In[Tile[2, 4, I32]], y: Out[Tile[2, 4, I32]]):
        v = tl.load(x)
        tl.store(y, tl.sub(v, tl.mul(tl.div(v, 3), 3)))

    a = np.arange(8, dtype=np.int32).reshape(2, 4)
    assert np.array_equal(run(remainder, a), a % 3)


# -- hunt9a #10: a float operand of a loop expression ------------------------------------------------------------------
@kernel
def scale_by(x: In[T], y: Out[T], s: Scalar[F32]):
    tl.store(y, tl.muls(tl.muls(tl.load(x), s), 0.5))


FLOAT_OPERANDS = {  # what each spells, as the message shows it (the loop variable is named b)
    "b * 0.5": lambda t: t * 0.5,
    "0.5 * b": lambda t: 0.5 * t,
    f"b + {np.float32(1.5)!r}": lambda t: t + np.float32(1.5),
    "b - 1.0": lambda t: t - 1.0,
    "b // 2.0": lambda t: t // 2.0,
    "b % 2.5": lambda t: t % 2.5,
}


@pytest.mark.parametrize("shown", list(FLOAT_OPERANDS))
def test_a_float_operand_of_a_loop_expression_is_refused_at_its_line(shown):
    X, Y = Tensor(data=np.ones((4, 2, 4), np.float32)), Tensor(data=np.zeros((4, 2, 4), np.float32))
    operand = FLOAT_OPERANDS[shown]

    @workload
    def w():
        for t in P(Dense[4]()):
            scale_by[t](x=X[t], y=Y[t], s=operand(t))

    with pytest.raises(DSLUsageError) as e:
        w()
    op, kind = shown.split()[1], "float32" if shown == f"b + {np.float32(1.5)!r}" else "float"
    assert e.value.what == f"`{shown}`: loop expressions are integers, and `{op}` with a {kind} would make a float."
    assert e.value.hint == ("Keep loop arithmetic in integers (`b * 2`, `b // 2`, `b % 2`). For a float per task, pass "
                            "the integer to a Scalar[DType.F32] parameter (s=b) and scale it in the kernel "
                            "(tl.muls(tl.muls(x, s), 0.5)), or load the value per tile from a tensor (S[b]).")
    located(e, operand.__code__.co_firstlineno)


def test_the_scalar_form_the_hint_names_runs():
    X, Y = Tensor(data=np.ones((4, 2, 4), np.float32)), Tensor(data=np.zeros((4, 2, 4), np.float32))

    @workload
    def w():
        for t in P(Dense[4]()):
            scale_by[t](x=X[t], y=Y[t], s=t)

    w().compile().execute()
    assert np.array_equal(Y.data[:, 0, 0], np.arange(4) * 0.5)


def test_comparisons_with_a_float_still_work():
    X, Y = Tensor(data=np.ones((4, 2, 4), np.float32)), Tensor(data=np.zeros((4, 2, 4), np.float32))

    @workload
    def w():
        for t in P(Dense[4]()):
            with P.when(t < 1.5):
                scale_by[t](x=X[t], y=Y[t], s=2)

    w().compile().execute()
    assert Y.data[:2].all() and not Y.data[2:].any()


class _Scaler:
    def __init__(self, s):
        self.s = s

    def apply(self, v):
        return tl.muls(v, self.s)


step = _Scaler(2.0).apply  # a helper read as a global: a bound method


@kernel
def _scaled(x: In[Tile[8, 8, DType.F32]], y: Out[Tile[8, 8, DType.F32]]):
    tl.store(y, step(tl.load(x)))


def test_a_bound_method_helper_of_another_instance_traces_again():
    """review11a #1: bound methods were compared by their function only, so `step = _Scaler(3.0).apply` kept the
    trace made with 2.0."""
    global step
    before = str(_scaled.ir_for({}))
    try:
        step = _Scaler(3.0).apply
        after = str(_scaled.ir_for({}))
    finally:
        step = _Scaler(2.0).apply
    assert "2.0" in before and "3.0" not in before
    assert "3.0" in after and "2.0" not in after


SCALE = 2.0


def _times_scale(v):
    return tl.muls(v, SCALE)


@kernel
def _scaled_by_helper(x: In[Tile[8, 8, DType.F32]], y: Out[Tile[8, 8, DType.F32]]):
    tl.store(y, _times_scale(tl.load(x)))


def test_a_run_checks_what_a_kernel_baked_in_once_and_the_next_run_sees_a_change(monkeypatch):
    """The re-trace check costs up to ~5 us a launch for a kernel that reads many values: a run asks it once per
    kernel (dsl.kernel.checked_once_per_run); a value changed between runs is still seen by the next run."""
    global SCALE
    kernel_module = importlib.import_module("ptort_lab.dsl.kernel")
    n = 40
    X = Tensor(data=np.ones((n, 8, 8), np.float32))
    Y = Tensor(shape=(n, 8, 8), dtype=DType.F32)

    @workload
    def w():
        for t in P(Dense[n]()):
            _scaled_by_helper[t](x=X[t], y=Y[t])

    checks = []
    real = kernel_module.Kernel._forget_stale_traces

    def counted(self):
        checks.append(kernel_module._RUN.get())
        real(self)

    monkeypatch.setattr(kernel_module.Kernel, "_forget_stale_traces", counted)
    program = w().compile()
    checks.clear()
    program.execute()
    assert np.array_equal(Y.data, np.full((n, 8, 8), 2.0, np.float32))
    run = checks[0]
    assert run != 0 and set(checks) == {run} and _scaled_by_helper._checked_in == run
    try:
        SCALE = 3.0
        program.execute()
        assert np.array_equal(Y.data, np.full((n, 8, 8), 3.0, np.float32))
    finally:
        SCALE = 2.0
    assert kernel_module._RUN.get() == 0  # (outside a run every call checks)
