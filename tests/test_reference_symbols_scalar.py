"""The reference's (PTO-WSP v9 HEAD) scalar run-time symbols: ``Symbol("name")`` as a kernel's Scalar argument read
from ``program.set_symbol_f32/u64`` (its test_codegen_dynamic_symbols.py), and ``pto_wsp.scalar_expr`` dispatch keys
over task params, tags and symbols evaluated per task (its test_codegen_scalar_expr_eval.py), with C++'s 64-bit
arithmetic; every value checked with an error naming the symbol."""
from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest
from source_lines import here, located

import ptort_lab.compat as pto_wsp
from ptort_lab import (
    Dense,
    DispatchPolicy,
    DType,
    In,
    Out,
    P,
    PtortTypeError,
    PtortValueError,
    Ragged,
    Scalar,
    Tensor,
    Tile,
    kernel,
    task,
    tl,
    workload,
)
from ptort_lab.dsl.scalar_expr import (
    ScalarExpr,
    ScalarExprError,
    Symbol,
    TaskExpr,
    as_expr,
    evaluate_u64,
    run_symbols,
    symbol_u64,
    trace_task_fn,
)
from ptort_lab.dsl.tasks import Task
from ptort_lab.errors import DSLUsageError, UserCodeError
from ptort_lab.symbols import UnreadSymbolWarning

F32, I32 = DType.F32, DType.I32


# -- Symbol as a kernel scalar (test_codegen_dynamic_symbols.py) ------------------------------------------------------
def scale_program(symbol: str = "scale_s"):
    x = np.arange(16, dtype=np.float32).reshape(4, 4)
    y = np.zeros((4, 4), dtype=np.float32)
    X, Y = Tensor(data=x, shape=x.shape, dtype=F32), Tensor(data=y, shape=y.shape, dtype=F32)

    @kernel
    def scale(x_tile: In[Tile[4, 4, F32]], y_tile: Out[Tile[4, 4, F32]], s: Scalar[F32]):
        tl.store(y_tile, tl.mul(x_tile, s))

    @workload
    def wl():
        scale(x_tile=X, y_tile=Y, s=Symbol(symbol))

    return wl().named("dyn_scalar_symbol").compile(), x, y


def test_a_scalar_symbol_changes_without_recompile():
    program, x, y = scale_program()
    program.set_symbol_f32("scale_s", 2.0)
    program.execute()
    assert np.array_equal(y, x * 2.0)
    cycles2 = program.stats.total_cycles
    y[:] = 0
    program.set_symbol_f32("scale_s", 3.0)
    program.execute()
    assert np.array_equal(y, x * 3.0)
    assert program.stats.total_cycles == cycles2
    assert program.enumerate()[0].resources["s"] == 3.0


def test_an_f32_symbol_is_rounded_to_f32():
    program, x, y = scale_program()
    program.set_symbol_f32("scale_s", 0.1)
    program.execute()
    assert program.enumerate()[0].resources["s"] == float(np.float32(0.1))
    assert np.array_equal(y, x * np.float32(0.1))


def test_a_run_with_an_unset_symbol_names_it():
    program, _, y = scale_program()
    with pytest.raises(PtortValueError) as e:
        program.execute()
    assert e.value.what == ("Symbol('scale_s') has no value in this run: the program was never given symbol "
                            "'scale_s' (the reference would read 0).")
    assert e.value.hint == ("Set it before running: program.set_symbol_u64('scale_s', n) for a whole number, "
                            "program.set_symbol_f32('scale_s', x) for a kernel's float scalar.")
    assert e.value.where is not None and e.value.where.code == "scale(x_tile=X, y_tile=Y, s=Symbol(symbol))"
    assert y.sum() == 0


def test_a_symbol_listed_outside_a_program_says_where_symbols_live():
    program, _, _ = scale_program()
    with pytest.raises(PtortValueError) as e:
        program.workload.enumerate()
    assert e.value.what == ("Symbol('scale_s') has no value here: symbols are set on a compiled program, and they "
                            "have values only while it runs.")


def test_symbol_setters_check_the_name_the_kind_and_the_value():
    program, _, _ = scale_program()
    with pytest.raises(PtortTypeError) as e:
        line = here() + 1
        program.set_symbol_u64("scale_s", 2)
    assert e.value.what == ("set_symbol_u64('scale_s', 2): kernel 'scale' parameter 's' (Scalar[F32]) reads symbol "
                            "'scale_s' as a float.")
    assert e.value.hint == "Write program.set_symbol_f32('scale_s', 2.0)."
    located(e, line)
    with pytest.raises(PtortValueError) as e:
        program.set_symbol_f32("scale", 2.0)
    assert e.value.what == ("unknown symbol 'scale': this program reads no symbol of that name, so setting it would "
                            "change nothing.")
    assert e.value.hint.startswith("Did you mean 'scale_s'? Its symbols are 'scale_s'.")
    with pytest.raises(PtortTypeError) as e:
        program.set_symbol_f32("scale_s", "2")
    assert e.value.what == "set_symbol_f32('scale_s', '2'): the value must be a real number, got str."
    with pytest.raises(PtortValueError) as e:
        program.set_symbol_f32("scale_s", 1e39)
    assert e.value.what == "set_symbol_f32('scale_s', 1e+39): the value is outside the f32 range (about +-3.4e38)."


def test_an_integer_scalar_symbol_takes_set_symbol_u64():
    x = np.arange(16, dtype=np.int32).reshape(4, 4)
    y = np.zeros((4, 4), dtype=np.int32)
    X, Y = Tensor(data=x, shape=x.shape, dtype=I32), Tensor(data=y, shape=y.shape, dtype=I32)

    @kernel
    def fill(x_tile: In[Tile[4, 4, I32]], y_tile: Out[Tile[4, 4, I32]], n: Scalar[I32]):
        tl.store(y_tile, tl.add(tl.load(x_tile), n))

    @workload
    def wl():
        fill(x_tile=X, y_tile=Y, n=Symbol("n"))

    program = wl().compile()
    program.set_symbol_u64("n", 7)
    program.execute()
    assert np.array_equal(y, x + 7)
    with pytest.raises(PtortTypeError) as e:
        program.set_symbol_f32("n", 7.0)
    assert e.value.what == ("set_symbol_f32('n', 7.0): kernel 'fill' parameter 'n' (Scalar[I32]) reads symbol 'n' as "
                            "a whole number.")
    with pytest.raises(PtortValueError) as e:
        program.set_symbol_u64("n", -1)
    assert e.value.what == "set_symbol_u64('n', -1): the value must be an int in 0..2**64 - 1 (a u64)."


def test_a_symbol_sizes_a_loop_and_indexes_a_tensor():
    """A Symbol is a loop expression: its value in the run sizes a DenseDyn and launches tasks."""
    from ptort_lab import DenseDyn, task

    @workload
    def wl():
        for b in P(DenseDyn(Symbol("n"))):
            task("k", [b, Symbol("off")], [])

    program = wl().compile()
    program.set_symbol_u64("n", 3)
    program.set_symbol_u64("off", 10)
    assert [t.params for t in program.enumerate()] == [[0, 10], [1, 10], [2, 10]]


def test_a_host_kernel_argument_symbol_takes_either_setter():
    from ptort_lab import task

    @workload
    def wl():
        task("accumulate", [], {"s": Symbol("s")})

    program = wl().compile()
    got = []
    program.register_kernel("accumulate", lambda s: got.append(s))
    program.set_symbol_f32("s", 0.5)
    program.execute()
    program.set_symbol_u64("s", 3)
    program.execute()
    assert got == [0.5, 3]


# -- scalar_expr dispatch keys (test_codegen_scalar_expr_eval.py) -----------------------------------------------------
@kernel(cycles=32)
def copy_tile(src: In[Tile[4, 4, F32]], dst: Out[Tile[4, 4, F32]]):
    """Copy a tile; every launch costs 32 cycles."""
    tl.store(dst, tl.load(src))


def six_copies():
    a = np.arange(6 * 16, dtype=np.float32).reshape(6, 4, 4)
    b = np.zeros_like(a)
    A, B = Tensor(data=a), Tensor(data=b)

    @workload
    def wl():
        for t in P(Dense[6]()):
            copy_tile[t](src=A[t], dst=B[t])

    return wl(), a, b


def cores(program) -> list[tuple[int, int]]:
    return sorted((s.index, s.core) for s in program.trace.spans)


def test_a_key_over_tags_and_params_reads_the_symbol_per_run():
    """t.tags["mask"] is the symbol "mask": 0 keys every task to core 0, 1 splits them by parity."""
    w, a, b = six_copies()
    program = w.dispatch(DispatchPolicy.affinity(lambda t: (t.tags["mask"] & t.params[0].cast_u64()),
                                                 num_aicpus=2)).compile()
    program.set_symbol_u64("mask", 0)
    program.execute()
    assert np.array_equal(b, a)
    assert cores(program) == [(i, 0) for i in range(6)]
    assert program.stats.total_cycles == 6 * 32
    b[:] = 0
    program.set_symbol_u64("mask", 1)
    program.execute()
    assert np.array_equal(b, a)
    assert cores(program) == [(i, i % 2) for i in range(6)]
    assert program.stats.total_cycles == 3 * 32


def test_a_ternary_key_with_comparison_and_casts():
    w, a, b = six_copies()
    program = w.dispatch(DispatchPolicy.affinity(
        lambda t: (t.params[0] == symbol_u64("special").cast_i64()).where(0, 1).cast_u64(), num_aicpus=2)).compile()
    program.set_symbol_u64("special", 0)
    program.execute()
    assert cores(program) == [(0, 0)] + [(i, 1) for i in range(1, 6)]
    assert program.stats.total_cycles == 5 * 32
    program.set_symbol_u64("special", 7)
    program.execute()
    assert cores(program) == [(i, 1) for i in range(6)]
    assert program.stats.total_cycles == 6 * 32
    assert np.array_equal(b, a)


def test_a_key_built_from_a_symbol_on_the_concrete_task_is_evaluated():
    """A key that returns a scalar expression from the concrete task (t.get("b") + symbol_u64("off")) is evaluated
    for it; stream_by keys read symbols too."""
    w, _, _ = six_copies()
    program = w.dispatch(DispatchPolicy.affinity(lambda t: t.get("b") + symbol_u64("off"), 3)).compile()
    program.set_symbol_u64("off", 1)
    program.execute()
    assert cores(program) == [(i, (i + 1) % 3) for i in range(6)]
    streamed = w.streams(2).stream_by(lambda t: t.tags["lane"]).compile()
    streamed.set_symbol_u64("lane", 1)
    streamed.execute()
    assert cores(streamed) == [(i, 1) for i in range(6)]


def test_dispatch_by_and_hash_keys_take_scalar_expressions_and_other_errors_stay_the_users():
    """dispatch_by keys core = key % n; hash mixes the key first (as any hash key here). A key function failing for
    its own reason (a misspelt attribute) still fails with its own error, at its line."""
    w, _, _ = six_copies()
    program = w.dispatch(DispatchPolicy.dispatch_by(lambda t: t.tags["m"] & t.params[0].cast_u64(), 4)).compile()
    program.set_symbol_u64("m", 3)
    program.execute()
    assert cores(program) == [(0, 0), (1, 1), (2, 2), (3, 3), (4, 0), (5, 1)]
    hashed = w.dispatch(DispatchPolicy.hash(lambda t: t.tags["m"] & t.params[0].cast_u64(), 2)).compile()
    hashed.set_symbol_u64("m", 3)
    hashed.execute()
    concrete = w.dispatch(DispatchPolicy.hash(lambda t: t.params[0] & 3, 2)).compile().execute()
    assert cores(hashed) == cores(concrete)
    program = w.dispatch(DispatchPolicy.affinity(lambda t: t.kernal, 2)).compile()
    with pytest.raises(UserCodeError) as e:
        program.execute()
    assert e.value.what == ("the DispatchPolicy.affinity key function (for task 0, copy_tile[0]) raised "
                            "AttributeError: 'Task' object has no attribute 'kernal'")


def test_an_unset_key_symbol_is_named_at_execute():
    w, _, b = six_copies()
    program = w.dispatch(DispatchPolicy.affinity(lambda t: t.tags["mask"] & t.params[0].cast_u64(), 2)).compile()
    with pytest.raises(PtortValueError) as e:
        program.execute()
    assert e.value.what == ("the DispatchPolicy.affinity key reads t.tags['mask'] (the symbol 'mask'), which has no "
                            "value in this run: the program was never given symbol 'mask' (the reference would read "
                            "0).")
    assert e.value.hint == "Set it before running: program.set_symbol_u64('mask', 1)."
    assert b.sum() == 0
    # (what a key reads is known only when it runs: set_symbol_f32 calls no key, so the run refuses the f32)
    program.set_symbol_f32("mask", 1.0)
    with pytest.raises(PtortValueError) as e:
        program.execute()
    assert e.value.what == ("the DispatchPolicy.affinity key `(tag('mask') & (u64)(task.params[0]))` for task 0 "
                            "(copy_tile[0]): t.tags['mask'] (the symbol 'mask') is read as a u64, but the symbol was "
                            "set with set_symbol_f32 (1.0).")
    assert e.value.hint == "Set it with program.set_symbol_u64('mask', n)."
    assert b.sum() == 0


def test_key_errors_name_the_expression_and_the_task():
    w, _, _ = six_copies()
    program = w.dispatch(DispatchPolicy.affinity(lambda t: t.tags["m"] + t.params[1].cast_u64(), 2)).compile()
    program.set_symbol_u64("m", 0)
    with pytest.raises(PtortValueError) as e:
        program.execute()
    assert e.value.what == ("the DispatchPolicy.affinity key `(tag('m') + (u64)(task.params[1]))` for task 0 "
                            "(copy_tile[0]): t.params[1] does not exist: the task has 1 launch axis value(s) [0].")
    program = w.dispatch(DispatchPolicy.affinity(lambda t: t.tags["m"] & t.params[0], 2)).compile()
    program.set_symbol_u64("m", 0)
    with pytest.raises(ScalarExprError) as e:
        program.execute()
    assert e.value.what == "`tag('m') & task.params[0]`: & needs both bool or both u64, got u64 and i64."


# -- keys are user code: never called to check a symbol, their own errors stay theirs ---------------------------------
@pytest.mark.timeout(30)
def test_a_traced_task_has_no_length_or_items_so_tracing_fails_fast():
    """sum(t.params) / tuple(t.params) on the symbolic task used to loop for ever (an index-only sequence)."""
    t = TaskExpr()
    for use in (iter, len, tuple, sum, lambda p: 0 in p):
        with pytest.raises(ScalarExprError) as e:
            use(t.params)
        assert "of t.params of a traced task" in e.value.what
    with pytest.raises(ScalarExprError) as e:
        list(t.tags)
    assert e.value.hint == 'Read each tag by its name: t.tags["mask"].'
    w, _, b = six_copies()
    program = w.dispatch(DispatchPolicy.affinity(lambda t: (sum(t.params) + t.params[0].cast_u64()) % 2,
                                                 2)).compile()
    with pytest.raises(ScalarExprError) as e:
        program.execute()
    assert e.value.what.startswith("iterating over (or unpacking, sum(), tuple()) of t.params of a traced task")
    assert b.sum() == 0


def test_setting_a_symbol_never_calls_the_key_function():
    """A memoising key (first-come numbering) used to be called on a symbolic task by set_symbol_*, shifting every
    task by one core; a key's calls are the run's alone."""
    seen: dict = {}
    called: list[str] = []

    def key(t):
        called.append(type(t).__name__)
        return seen.setdefault(t.params[0], len(seen))

    def run(bind: bool):
        seen.clear()
        called.clear()
        ragged = Ragged(2, [3, 3])

        @workload
        def wl():
            for i in P.seq(ragged):
                task("k", [i], [], cycles=10)

        program = wl().dispatch(DispatchPolicy.affinity(key, 4)).compile()
        if bind:
            program.set_symbol_ptr(f"lengths_{id(ragged)}", [3, 3])
            program.set_symbol_u64("maybe_read_by_the_key", 1)  # (taken for now: only the run can say)
            assert called == []
            with pytest.warns(UnreadSymbolWarning):  # the key read no symbol: the unread one is warned of
                program.execute()
            program = wl().dispatch(DispatchPolicy.affinity(key, 4)).compile()
            program.set_symbol_ptr(f"lengths_{id(ragged)}", [3, 3])
            seen.clear()
            called.clear()
        program.execute()
        return sorted((s.index, s.core) for s in program.trace.spans), set(called)

    assert run(True) == run(False) == ([(i, i % 4) for i in range(6)], {"Task"})


@pytest.mark.parametrize("key, error", [
    (lambda t: t.params[0] + {0: 1, 1: 2}.get(t.params[0]),
     "the DispatchPolicy.affinity key function (for task 2, copy_tile[2]) raised TypeError: unsupported operand "
     "type(s) for +: 'int' and 'NoneType'"),
    (lambda t: t.get("b") * None,
     "the DispatchPolicy.affinity key function (for task 0, copy_tile[0]) raised TypeError: unsupported operand "
     "type(s) for *: 'int' and 'NoneType'"),
    (lambda t: t.params[0] + "1",
     "the DispatchPolicy.affinity key function (for task 0, copy_tile[0]) raised TypeError: unsupported operand "
     "type(s) for +: 'int' and 'str'"),
    (lambda t: t.params[0].bit_length() + t.foo,
     "the DispatchPolicy.affinity key function (for task 0, copy_tile[0]) raised AttributeError: 'Task' object has "
     "no attribute 'foo'"),
])
def test_a_key_functions_own_bug_is_reported_as_its_own(key, error):
    """Only an AttributeError for what scalar expressions alone have (cast_u64, where, tags, ...) makes a key
    traced symbolically; a None config value or a TypeError stays the user's error, at the key's line."""
    w, _, b = six_copies()
    program = w.dispatch(DispatchPolicy.affinity(key, 4)).compile()
    with pytest.raises(UserCodeError) as e:
        program.execute()
    assert e.value.what == error
    assert e.value.where is not None and e.value.where.filename == __file__
    assert b.sum() == 0


def test_what_only_scalar_expressions_have_is_found_from_the_classes():
    from ptort_lab.dsl.scalar_expr import SYMBOLIC_ONLY
    assert {"cast_u64", "cast_i64", "cast_bool", "where", "tags"} <= SYMBOLIC_ONLY
    assert not {"params", "get", "get_axis_value", "id", "kernel", "bit_length"} & SYMBOLIC_ONLY


def test_a_symbol_no_part_of_a_run_read_is_warned_of_naming_what_it_read():
    """A misspelt name with a key the setter cannot look into is taken, and the run warns of it after it (a key reads
    a symbol only in the branch it takes, so a valid program may leave one unread: a refusal would stick, since a
    symbol once set stays set): the warning names the symbol, the ones the run read, and a close match."""
    w, a, b = six_copies()
    program = w.dispatch(DispatchPolicy.affinity(lambda t: t.id % 4, 4)).compile()
    program.set_symbol_u64("typo_symbol", 3)
    with pytest.warns(UnreadSymbolWarning) as caught:
        program.execute()
    assert str(caught[0].message) == (
        "symbol 'typo_symbol' (set_symbol_u64) was set, but this run never read it: no Symbol or condition of the "
        "program reads that name, and the DispatchPolicy.affinity key did not in this run (a key reads a symbol "
        "only in the branch it takes). The run read no symbol.")
    assert caught[0].filename == __file__
    np.testing.assert_array_equal(b, a)  # (the run itself stands)
    program = w.dispatch(DispatchPolicy.affinity(lambda t: t.tags["mask"] & t.params[0].cast_u64(), 2)).compile()
    program.set_symbol_u64("mask", 1)
    program.set_symbol_u64("mask2", 1)
    with pytest.warns(UnreadSymbolWarning) as caught:
        program.execute()
    text = str(caught[0].message)
    assert text.startswith("symbol 'mask2' (set_symbol_u64) was set, but this run never read it")
    assert text.endswith("Did you mean 'mask'? The run read the symbols 'mask'.")
    # a symbol in a branch no task takes is still read by the key's expression; an f32 for it is warned of
    program = w.dispatch(DispatchPolicy.affinity(
        lambda t: (t.params[0] >= 0).where(t.tags["m"], symbol_u64("spare")).cast_u64(), 2)).compile()
    program.set_symbol_u64("m", 1)
    program.set_symbol_u64("spare", 0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # (both read: no warning)
        program.execute()
    assert cores(program) == [(i, 1) for i in range(6)]
    program.set_symbol_f32("spare", 0.5)
    with pytest.warns(UnreadSymbolWarning) as caught:
        program.execute()
    assert str(caught[0].message) == ("symbol 'spare' was set with set_symbol_f32, but the DispatchPolicy.affinity "
                                      "key of this run reads it as a whole number (a u64): write "
                                      "program.set_symbol_u64('spare', n).")
    # a key that reads a symbol only in a branch this run does not take: a warning, and the next runs still run
    program = w.dispatch(DispatchPolicy.affinity(
        lambda t: t.params[0] + symbol_u64("off") if t.params[0] > 100 else t.params[0], 2)).compile()
    program.set_symbol_u64("off", 1)
    for _ in range(2):
        with pytest.warns(UnreadSymbolWarning, match="symbol 'off' .* never read it"):
            program.execute()
    assert cores(program) == [(i, i % 2) for i in range(6)]
    # with no key at all, a name nothing reads is refused when set, as before
    with pytest.raises(PtortValueError):
        w.compile().set_symbol_u64("typo_symbol", 3)


# -- scalar expressions as conditions (test_codegen_cond.py) -----------------------------------------------------------
def test_a_scalar_condition_reads_loop_variables_and_symbols_per_run():
    from ptort_lab import cond, parallel_for, task
    from ptort_lab.dsl.scalar_expr import axis

    @workload
    def wl():
        for b in P(Dense[4]()):
            with P.when(axis("b") < symbol_u64("cut").cast_i64()):
                task("a", [b], [])
            with P.otherwise():
                task("o", [b], [])

    program = wl().compile()
    program.set_symbol_u64("cut", 2)
    assert [(t.kernel, t.params) for t in program.enumerate()] == [("a", [0]), ("a", [1]), ("o", [2]), ("o", [3])]
    program.set_symbol_u64("cut", 1)
    assert [(t.kernel, t.params) for t in program.enumerate()] == [("a", [0]), ("o", [1]), ("o", [2]), ("o", [3])]
    with pytest.raises(PtortTypeError) as e:
        program.set_symbol_f32("cut", 1.0)
    assert e.value.what.startswith("set_symbol_f32('cut', 1.0): the P.when condition at ")
    assert e.value.what.endswith(" reads symbol 'cut' as a whole number.")
    w = parallel_for(Dense[3](), lambda i: cond(predicate=axis(i.name) == 1, then_workload=task("one", [i], []),
                                                else_workload=task("other", [i], [])))
    assert [t.kernel for t in w.enumerate()] == ["other", "one", "other"]


def test_scalar_conditions_refuse_launch_axes_and_loop_expressions():
    from ptort_lab import task
    from ptort_lab.dsl.scalar_expr import axis, task_param

    @workload
    def reads_params():
        for b in P(Dense[2]()):
            with P.when(task_param(0) < 1):
                task("a", [b], [])

    with pytest.raises(PtortValueError) as e:
        line = here() - 4
        reads_params().enumerate()
    assert e.value.what == ("the P.when condition `(task.params[0] < 1)` with b = 0: task_param(0) reads a task's "
                            "launch axes, and a condition has none.")
    assert e.value.hint == "Read the loop variables of a condition with axis('b')."
    located(e, line)

    @workload
    def mixes():
        for b in P(Dense[2]()):
            with P.when(axis("b") < b):
                task("a", [b], [])

    with pytest.raises(ScalarExprError) as e:
        mixes()
    assert e.value.what == "`b` is a loop expression of the workload, not a scalar expression: the two do not mix."


# -- the expressions: C++'s 64-bit semantics ---------------------------------------------------------------------------
def value(expr, params=(0,), bindings=None, symbols=None):
    task = Task("k", list(params), {}, 0, dict(bindings or {"b": 0}))
    token = run_symbols.set(symbols or {})
    try:
        return evaluate_u64(as_expr(expr), task)
    finally:
        run_symbols.reset(token)


U64_MAX = 2**64 - 1
p = TaskExpr().params


@pytest.mark.parametrize("expr, expected", [
    (p[0] // 2, 2**64 - 3),           # -7 / 2 == -3 (truncated toward zero), as a u64
    (p[0] % 2, U64_MAX),              # -7 % 2 == -1 (the dividend's sign)
    (p[0].cast_u64() >> 60, 15),      # (u64)-7 == 2**64 - 7
    (p[0] < as_expr(1).cast_u64(), 0),  # -7 < 1u: false in C++ (-7 converts to a huge u64)
    (p[0] < 1, 1),
    (-p[0], 7),
    ((p[0] == -7).where(10, 20), 10),
    ((p[0] != -7) | (p[0] == -7), 1),
    (as_expr(1).cast_u64() << 63, 2**63),
    (symbol_u64("s") - as_expr(1).cast_u64(), U64_MAX),  # 0u - 1u wraps
    (~symbol_u64("s"), U64_MAX),
    (symbol_u64("s").cast_bool(), 0),
    ((p[0] == 0) & (as_expr(1) // p[0] == 0), 0),  # && short-circuits: no division by zero
])
def test_scalar_expressions_evaluate_as_cpp(expr, expected):
    assert value(expr, params=(-7,), symbols={"s": 0}) == expected


def test_scalar_expressions_refuse_what_has_no_value_or_type():
    with pytest.raises(DSLUsageError, match=r"^the scalar expression `\(task.params\[0\] < 1\)` has no value while "
                                            "it is built"):
        bool(p[0] < 1)
    with pytest.raises(ScalarExprError) as e:
        (p[0] < 1).where(1, as_expr(2).cast_u64())
    assert e.value.what == (".where(1, (u64)(2)): the branches are i64 and u64; both must have one type.")
    with pytest.raises(ScalarExprError) as e:
        as_expr("x")
    assert e.value.what == "cannot use str 'x' in a scalar expression: it holds bools and 64-bit integers."
    with pytest.raises(PtortValueError) as e:
        value(p[0] // (p[0] - p[0]), params=(3,))
    assert e.value.what == ("the scalar expression `(task.params[0] / (task.params[0] - task.params[0]))` for task 0 "
                            "(k[3]): `(task.params[0] / (task.params[0] - task.params[0]))` divides by zero.")
    assert trace_task_fn(lambda t: t.get("b")).to_debug_str() == "axis('b')"
    assert isinstance(trace_task_fn(lambda t: 3), ScalarExpr)


# -- the compat names --------------------------------------------------------------------------------------------
def test_the_reference_imports_its_scalar_expr_names(monkeypatch):
    monkeypatch.setitem(sys.modules, "pto_wsp", pto_wsp)
    try:
        exec("from pto_wsp import Symbol\nfrom pto_wsp.scalar_expr import Expr, symbol_u64, slot_u64\n"
             "from pto_wsp.types import Symbol as TypesSymbol\n", scope := {})
    finally:
        for name in [n for n in sys.modules if n.startswith("pto_wsp.")]:
            del sys.modules[name]
    assert scope["Symbol"] is Symbol and scope["TypesSymbol"] is Symbol and scope["Expr"] is ScalarExpr
    assert scope["symbol_u64"] is symbol_u64 and "Symbol" in pto_wsp.__all__
    # the reference's symbol ids: FNV-1a 64 (the published test vectors)
    assert [pto_wsp.scalar_expr.fnv1a_64(s) for s in ("", "a", "foobar")] == [
        0xCBF29CE484222325, 0xAF63DC4C8601EC8C, 0x85944171F73967E8]


def test_arithmetic_on_a_symbol_for_a_float_scalar_reads_it_as_a_float():
    """s=Symbol("s") * 2 for a Scalar[F32]: set_symbol_f32 is the setter (it was refused as 'a whole number')."""
    x = np.arange(16, dtype=np.float32).reshape(4, 4)
    y = np.zeros((4, 4), dtype=np.float32)
    X, Y = Tensor(data=x), Tensor(data=y)

    @kernel
    def scale(x_tile: In[Tile[4, 4, F32]], y_tile: Out[Tile[4, 4, F32]], s: Scalar[F32]):
        tl.store(y_tile, tl.mul(x_tile, s))

    @workload
    def wl():
        scale(x_tile=X, y_tile=Y, s=Symbol("s") * 2)

    program = wl().compile()
    program.set_symbol_f32("s", 1.5)
    program.execute()
    np.testing.assert_array_equal(y, x * 3.0)
    with pytest.raises(PtortTypeError, match=r"parameter 's' \(Scalar\[F32\]\) reads symbol 's' as a float"):
        program.set_symbol_u64("s", 3)


def test_a_symbol_in_a_loop_variables_default_counts_as_read():
    """t.get("zz", symbol_u64("d")): the default's symbol is read by the key (no UnreadSymbolWarning for it)."""
    w, a, b = six_copies()
    program = w.dispatch(DispatchPolicy.affinity(
        lambda t: t.get("zz", symbol_u64("d")).cast_u64() & t.tags["m"], 4)).compile()
    program.set_symbol_u64("m", 3)
    program.set_symbol_u64("d", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        program.execute()
    assert cores(program) == [(i, 1) for i in range(6)]  # (no loop variable zz: the default 1, & 3)
