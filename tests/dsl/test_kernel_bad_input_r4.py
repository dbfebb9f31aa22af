"""Bad kernel input, round 4: a kernel called outside a workload, globals frozen in a trace, Constexpr cache keys,
an Out stored in part, omitted parameters with defaults, placeholder Constexpr defaults, positional-only parameters,
hints that pointed the wrong way, set-valued Constexprs in the IR header and bad string annotations.

The module uses ``from __future__ import annotations``, so every kernel here has string annotations (evaluated by
@kernel)."""
from __future__ import annotations

import numpy as np
import pytest
from source_lines import here, located

from ptort_lab import (
    Constexpr,
    DSLUsageError,
    DType,
    In,
    InOut,
    Out,
    PtortTypeError,
    PtortValueError,
    Scalar,
    Tensor,
    Tile,
    Value,
    kernel,
    tl,
    workload,
)

F32, I64 = DType.F32, DType.I64
T = Tile[4, 8, F32]


@kernel
def square(src: In[T], dst: Out[T]):
    x = tl.load(src)
    tl.store(dst, tl.mul(x, x))


def data(value: float = 3.0, n: int = 2) -> tuple[Tensor, Tensor]:
    return Tensor(data=np.full((n, 4, 8), value, np.float32)), Tensor(data=np.zeros((n, 4, 8), np.float32))


def run(k, **args) -> None:
    @workload
    def w():
        k(**args)

    w().compile().execute()


# -- hunt1 #2: a kernel called outside a @workload with data ----------------------------------------------------------
def test_a_kernel_called_outside_a_workload_with_tensor_views_is_refused_at_the_call():
    X, Y = data()
    with pytest.raises(DSLUsageError) as e:
        line = here() + 1
        square(src=X[0], dst=Y[0])
    assert e.value.what == ("square(...) outside a @workload only traces the kernel: it computes nothing and writes "
                            "no tensor, so the data given (src=Tensor(f32[2, 4, 8])[0], dst=Tensor(f32[2, 4, 8])[0]) "
                            "would not be used.")
    assert e.value.hint == ("To run it, launch it in a @workload (@workload def w(): square(src=..., dst=...)) and "
                            "call w().compile().execute(); to see its IR only, call square.trace().")
    located(e, line)
    assert not Y.data.any()


def test_a_kernel_called_outside_a_workload_with_numpy_arrays_is_refused():
    with pytest.raises(DSLUsageError, match=r"^square\(\.\.\.\) outside a @workload only traces the kernel") as e:
        line = here() + 1
        square(np.ones((4, 8), np.float32), np.zeros((4, 8), np.float32))
    assert "src=an ndarray of shape (4, 8), dst=an ndarray of shape (4, 8)" in e.value.what
    located(e, line)


def test_tracing_calls_outside_a_workload_still_trace():
    @kernel
    def shaped(x: In[Tensor], y: Out[Tensor], s: Constexpr[float] = 2.0):
        tl.store(y, tl.muls(tl.load(x), s))

    assert square() is square.trace()
    ir = shaped(x=Value.tile(4, 8, F32), y=Value.tile(4, 8, F32), s=3.0)
    assert str(ir).splitlines()[0] == "kernel shaped[s=3.0](x: In[f32[4,8]], y: Out[f32[4,8]]):"
    X, Y = data()
    assert shaped.trace(x=X[0], y=Y[0], s=3.0) is ir  # trace() takes tensor views for their shapes
    with pytest.raises(DSLUsageError, match=r"^shaped\(\.\.\.\) outside a @workload only traces"):
        shaped(x=X[0], y=Y[0])


def test_inside_a_workload_the_same_call_runs():
    X, Y = data()
    run(square, src=X[0], dst=Y[0])
    assert (Y.data[0] == 9).all() and not Y.data[1].any()


# -- hunt1 #3: a module global the body reads -------------------------------------------------------------------------
SCALE_R4 = 2.0
NOT_PLAIN_R4 = [1]


@kernel
def scaled(a: In[T], out: Out[T]):
    tl.store(out, tl.muls(tl.load(a), SCALE_R4 + NOT_PLAIN_R4[0] - 1))


def test_a_changed_plain_global_is_traced_again():
    global SCALE_R4
    X, Y = data(1.0)
    first = scaled.trace()
    try:
        SCALE_R4 = 3.0  # e.g. a later notebook cell
        run(scaled, a=X[0], out=Y[0])
        assert (Y.data[0] == 3.0).all()
        assert scaled.trace() is not first and "mul b, 3.0" in str(scaled.trace())
        again = scaled.trace()
        assert scaled.trace() is again  # unchanged since: the cached trace
    finally:
        SCALE_R4 = 2.0
    assert "mul b, 2.0" in str(scaled.trace())


def test_other_globals_do_not_make_a_new_trace():
    global NOT_PLAIN_R4
    first = scaled.trace()
    try:
        NOT_PLAIN_R4 = [1]  # a list is not a plain value: read only when the body is traced
        assert scaled.trace() is first
    finally:
        NOT_PLAIN_R4 = [1]


def test_the_kernel_docstring_says_plain_globals_are_part_of_the_trace():
    from ptort_lab.dsl.kernel import Kernel
    assert "the next launch\n    traces the body again" in (Kernel.__doc__ or "")


# -- hunt1 #4: Constexpr values that are == but not the same ----------------------------------------------------------
@kernel
def reciprocal(a: In[Tile[1, 4, F32]], out: Out[Tile[1, 4, F32]], s: Constexpr[float] = 0.0):
    tl.store(out, tl.div(tl.full(1, 4, 1.0, F32), tl.muls(tl.load(a), s)))


def test_minus_zero_is_its_own_trace_and_prints_as_minus_zero():
    assert str(reciprocal.trace(s=-0.0)).splitlines()[0] == \
        "kernel reciprocal[s=-0.0](a: In[f32[1,4]], out: Out[f32[1,4]]):"
    assert reciprocal.trace(s=-0.0) is not reciprocal.trace(s=0.0)
    A, Y = Tensor(data=np.ones((1, 4), np.float32)), Tensor(data=np.zeros((1, 4), np.float32))
    with np.errstate(divide="ignore"):
        run(reciprocal, a=A, out=Y, s=-0.0)
    assert (Y.data == -np.inf).all()


def test_true_one_and_one_point_zero_are_three_traces():
    @kernel
    def k(a: In[T], out: Out[T], n: Constexpr[int] = 0):
        tl.store(out, tl.load(a))

    heads = [str(k.trace(n=v)).splitlines()[0] for v in (1, True, 1.0, float("nan"))]
    assert [h.split("(")[0] for h in heads] == ["kernel k[n=1]", "kernel k[n=True]", "kernel k[n=1.0]",
                                                "kernel k[n=nan]"]
    assert k.trace(n=float("nan")) is k.trace(n=float("nan"))  # a nan matches itself


# -- hunt1 #5: an Out stored in part ----------------------------------------------------------------------------------
def test_an_out_stored_in_part_is_refused_at_its_store():
    with pytest.raises(PtortTypeError) as e:
        line = here() + 4
        @kernel
        def k(a: In[T], out: Out[T]):
            x = tl.load(a)
            tl.store(out[0:3, :], tl.exp(x[0:3, :]))
    assert e.value.what == ("kernel 'k' stores into only part of its Out parameter 'out' (f32[4,8]): out[3:4, :] is "
                            "never written (the stores cover out[0:3, :]), so that part would keep the values its "
                            "tensor held before the run.")
    assert e.value.hint == ("Store that part too (tl.store(out[3:4, :], ...)), or fix the slice bounds; a parameter "
                            "the kernel may leave partly as it is is InOut[...].")
    located(e, line)


def test_a_gap_that_is_not_a_window_is_counted():
    with pytest.raises(PtortTypeError) as e:
        @kernel
        def k(a: In[T], out: Out[T]):
            x = tl.load(a)
            tl.store(out[0:2, :], x[0:2, :])
            tl.store(out[2:4, 0:4], x[2:4, 0:4])
            tl.store(out[3:4, 4:8], x[3:4, 4:8])
    assert "out[2:3, 4:8] is never written (the stores cover out[0:2, :], out[2:4, 0:4], out[3:4, 4:8])" \
        in e.value.what
    with pytest.raises(PtortTypeError) as e:
        @kernel
        def k2(a: In[T], out: Out[T]):
            x = tl.load(a)
            tl.store(out[0:1, :], x[0:1, :])
            tl.store(out[3:4, 0:4], x[3:4, 0:4])
    assert ": 20 element(s) within out[1:4, :] are never written" in e.value.what
    assert e.value.hint.startswith("Store those elements too, or fix the slice bounds")


def test_stores_that_cover_the_tile_together_are_fine():
    @kernel
    def rows(a: In[T], out: Out[T]):
        x = tl.load(a)
        for r in range(4):
            tl.store(out[r:r + 1, :], tl.exp(x[r:r + 1, :]))

    @kernel
    def nested(a: In[T], out: Out[T]):
        x = tl.load(a)
        left = out[:, 0:4]
        tl.store(left[0:2, :], x[0:2, 0:4])
        tl.store(tl.slice(left, rows=(2, 4)), x[2:4, 0:4])
        tl.store(out[:, 4:8], x[:, 4:8])

    @kernel
    def partial_inout(a: In[T], out: InOut[T]):
        tl.store(out[0:1, :], tl.load(a)[0:1, :])

    @kernel
    def stub(a: In[T], out: Out[T]):
        """Only a docstring: a stub."""

    X, Y = data(0.0)
    run(rows, a=X[0], out=Y[0])
    assert (Y.data[0] == 1).all()


# -- hunt1 #7: omitted parameters with defaults -----------------------------------------------------------------------
def test_an_omitted_scalar_with_a_default_runs_with_it():
    @kernel
    def k(a: In[T], out: Out[T], eps: Scalar[F32] = 0.5):
        tl.store(out, tl.add(tl.load(a), eps))

    X, Y = data(1.0)
    run(k, a=X[0], out=Y[0])
    assert (Y.data[0] == 1.5).all()


def test_an_omitted_tile_parameter_with_default_none_is_refused_at_the_launch():
    @kernel
    def k(a: In[T], out: Out[T], b: In[T] = None):
        tl.store(out, tl.load(a))

    X, Y = data()

    @workload
    def w():
        k(a=X[0], out=Y[0])

    with pytest.raises(PtortTypeError) as e:
        w().compile()
    assert "Kernel 'k' expects 3 args, got 2: missing argument 'b'." in e.value.what
    assert e.value.hint == ("Pass b=... (a tensor view such as X[t]): its default None is no tensor for the kernel to "
                            "run on.")
    assert e.value.where is not None and e.value.where.code == "k(a=X[0], out=Y[0])"

    @workload
    def abstract():
        k(a=None, out=None)  # an abstract task binds no tile: b may stay out

    abstract().compile()


def test_an_omitted_scalar_with_default_none_is_refused_at_the_launch():
    @kernel
    def k(a: In[T], out: Out[T], eps: Scalar[F32] = None):
        tl.store(out, tl.add(tl.load(a), eps))

    X, Y = data()

    @workload
    def w():
        k(a=X[0], out=Y[0])

    with pytest.raises(PtortTypeError) as e:
        w().compile()
    assert "missing argument 'eps'" in e.value.what
    assert e.value.hint == "Pass eps=... (a number, Scalar[F32]): its default None is not a number."


# -- hunt1 #9: a placeholder Constexpr default ------------------------------------------------------------------------
def test_a_constexpr_default_none_is_not_traced_at_the_def():
    line = here() + 4
    @kernel
    def k(a: In[T], out: Out[T], width: Constexpr[int] = None):
        x = tl.load(a)
        tl.store(out, tl.add(x, tl.broadcast(tl.full(4, 1, 1.0, F32), (4, width))))

    X, Y = data(1.0)
    run(k, a=X[0], out=Y[0], width=8)
    assert (Y.data[0] == 2).all()
    with pytest.raises(PtortTypeError) as e:
        k.trace()
    assert e.value.what == ("tl.broadcast: shape must be (rows, cols) with ints >= 1, got (4, None). Kernel 'k' was "
                            "traced with the default width=None.")
    assert e.value.hint.endswith("Pass width=... at the launch.")
    located(e, line)


def test_a_bad_constexpr_default_says_the_def_traced_with_it():
    with pytest.raises(PtortTypeError) as e:
        line = here() + 4
        @kernel
        def k(a: In[T], out: Out[T], width: Constexpr[int] = 0):
            x = tl.load(a)
            tl.store(out, tl.add(x, tl.broadcast(tl.full(4, 1, 1.0, F32), (4, width))))
    assert e.value.what.endswith("got (4, 0). Kernel 'k' was traced at its definition with the defaults "
                                 "{'width': 0}.")
    assert e.value.hint.endswith("Give width a default the body can run with, or none (then each launch passes the "
                                 "value).")
    located(e, line)


# -- hunt1 #10: positional-only parameters ----------------------------------------------------------------------------
def test_positional_only_parameters_are_refused_at_the_def():
    with pytest.raises(PtortTypeError) as e:
        line = here() + 2
        @kernel
        def k(a: In[T],
              /, out: Out[T]):
            tl.store(out, tl.load(a))
    assert e.value.what == ("kernel 'k' makes parameter 'a' positional-only (the '/' in its signature); kernels need "
                            "named parameters, as launches pass arguments by name.")
    assert e.value.hint == "Remove the '/' from the signature of 'k'."
    located(e, line)


# -- hunt1 #11: hints that pointed the wrong way ----------------------------------------------------------------------
def test_a_missing_constexpr_hint_does_not_ask_for_a_tensor_view():
    @kernel
    def k(a: In[T], out: Out[T], s: Constexpr[float]):
        tl.store(out, tl.muls(tl.load(a), s))

    X, Y = data()

    @workload
    def w():
        k(a=X[0], out=Y[0])

    with pytest.raises(PtortTypeError) as e:
        w().compile()
    assert "missing argument 's'" in e.value.what
    assert e.value.hint == "Pass s=... (its Constexpr[float] value, fixed for each trace), or give it a default."


def test_a_scalar_out_of_range_hint_does_not_suggest_its_own_dtype():
    @kernel
    def f(a: In[T], out: Out[T], s: Scalar[F32]):
        tl.store(out, tl.muls(tl.load(a), s))

    @kernel
    def i(a: In[T], out: Out[T], n: Scalar[I64]):
        tl.store(out, tl.load(a))

    X, Y = data()

    def launch(k, **args):
        @workload
        def w():
            k(a=X[0], out=Y[0], **args)

        return w

    with pytest.raises(PtortValueError) as e:
        launch(f, s=1e39)()
    assert e.value.hint == ("Pass a value inside the range of F32, declare the parameter Scalar[DType.F64], or pass "
                            "float('inf') if infinity is meant.")
    with pytest.raises(PtortValueError) as e:
        launch(i, n=2 ** 64)()
    assert e.value.hint == ("Pass a value inside that range, or declare the parameter with a wider dtype "
                            "(Scalar[DType.F32]).")


def test_trace_with_a_positional_value_says_to_name_it():
    with pytest.raises(PtortTypeError) as e:
        line = here() + 1
        reciprocal.trace(2.0)
    assert e.value.what == "reciprocal.trace() takes its values by name, got 1 positional (2.0)."
    assert e.value.hint == "Name them: reciprocal.trace(s=...)."
    located(e, line)
    with pytest.raises(PtortTypeError, match=r"^square\.trace\(\) takes its values by name") as e:
        square.trace(1)
    assert e.value.hint == ("Call square.trace() with no arguments: kernel 'square' has no Constexpr or "
                            "shape-generic parameters.")


# -- hunt1 #12: set-valued Constexprs in the IR header ----------------------------------------------------------------
def test_set_and_dict_constexprs_print_sorted():
    @kernel
    def k(a: In[T], out: Out[T], names: Constexpr[frozenset] = frozenset({"gamma", "alpha", "delta", "beta"}),
          table: Constexpr[dict] = None):
        tl.store(out, tl.load(a))

    ir = k.trace(table={"b": {3, 1, 2}, "a": (frozenset({"y", "x"}),)})
    assert str(ir).splitlines()[0] == (
        "kernel k[names=frozenset({'alpha', 'beta', 'delta', 'gamma'})][table={'a': (frozenset({'x', 'y'}),), "
        "'b': {1, 2, 3}}](a: In[f32[4,8]], out: Out[f32[4,8]]):")


# -- hunt2 #12: string annotations that evaluate to a bad value -------------------------------------------------------
def test_a_bad_tile_size_in_a_string_annotation_is_the_tile_error_at_the_parameter():
    def make(size: int):
        @kernel
        def k(src: In[Tile[4, 4, F32]],
              dst: Out[Tile[size, size, F32]]):
            tl.store(dst, tl.load(src))
        return k

    with pytest.raises(PtortTypeError) as e:
        line = here() - 5
        make(-4)
    assert e.value.what == "Tile rows must be a positive int, got int -4."
    assert e.value.hint == "Tile sizes are static: use whole numbers such as Tile[128, 128, F16]."
    assert "<string>" not in str(e.value) and ".." not in str(e.value)
    located(e, line)


def test_only_a_name_error_gets_the_module_level_hint():
    with pytest.raises(PtortTypeError) as e:
        line = here() + 2
        @kernel
        def k(src: In[Tile[4, 4, DType.F33]]):
            pass
    assert e.value.what == ("the annotation 'In[Tile[4, 4, DType.F33]]' of kernel parameter 'src' could not be "
                            "evaluated: F33.")
    assert e.value.hint == ("Fix the annotation: it must evaluate to In[Tile[...]], Out[Tile[...]], Scalar[...] or "
                            "Constexpr[...].")
    located(e, line)
    with pytest.raises(PtortTypeError) as e:
        @kernel
        def k2(src: In[Tile[nope, 4, F32]]):  # noqa: F821
            pass
    assert e.value.hint.startswith("Define the names it uses at module level")
