"""Tensor(data=...): arrays ptort_lab would read or write wrongly are refused, each with its own reason and fix;
the layouts it handles (strided, Fortran, reversed, memmap, bfloat16) give values equal to plain numpy."""
from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest

from ptort_lab import Dense, DType, In, Out, P, PtortTypeError, Tensor, Tile, kernel, tl, workload

F32 = DType.F32


@kernel
def double(src: In[Tile[8, 8, F32]], dst: Out[Tile[8, 8, F32]]):
    """dst = src + src."""
    x = tl.load(src)
    tl.store(dst, tl.add(x, x))


def run_double(x: np.ndarray, y: np.ndarray) -> None:
    X, Y = Tensor(data=x), Tensor(data=y)

    @workload
    def w():
        for b in P(Dense[x.shape[0]]()):
            double[b](src=X[b], dst=Y[b])

    w().compile().execute()


def refusal(data, **kw) -> PtortTypeError:
    with pytest.raises(PtortTypeError) as ei:
        Tensor(data=data, **kw)
    assert ei.value.where.code == "Tensor(data=data, **kw)"  # the user's line that built it
    return ei.value


def ones(dtype) -> np.ndarray:
    return np.ones((2, 8, 8), dtype)


# -- refused, with the real reason ------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw", [{}, {"dtype": F32}], ids=["inferred", "given"])
def test_big_endian_data_says_so(kw):
    """Before: "has numpy dtype float32 but dtype=F32, pass data.astype('float32')" (the same name twice)."""
    e = refusal(ones(">f4"), **kw)
    assert e.what == ("Tensor data is big-endian ('>f4'); ptort_lab computes in this machine's byte order ('<f4') "
                      "and never converts silently.")
    assert e.hint == "Pass data.astype('<f4') (same values in native order; keep that array to read results from it)."
    assert "big-endian ('>i2')" in refusal(ones(">i2")).what


def test_following_the_big_endian_hint_gives_numpy_values():
    big = (np.arange(2 * 8 * 8, dtype=np.float32).reshape(2, 8, 8) / 7).astype(">f4")
    native = big.astype("<f4")
    out = np.zeros((2, 8, 8), np.float32)
    run_double(native, out)
    np.testing.assert_array_equal(out, big.astype(np.float64) * 2)
    assert out.dtype == np.float32 and np.array_equal(native, big)


MISREAD = {
    "masked": lambda: np.ma.array(np.ones((2, 8, 8), np.float32), mask=False),
    "matrix": lambda: np.asmatrix(np.ones((8, 8), np.float32)),
    "subclass": lambda: np.ones((2, 2), np.float32).view(type("Mine", (np.ndarray,), {})),
    "structured": lambda: np.zeros((2, 8), dtype=[("a", "<f4"), ("b", "<i4")]),
    "object": lambda: np.array([[1.0, "x"]], dtype=object),
    "bool": lambda: np.ones((2, 2), bool),
    "complex": lambda: np.ones((2, 2), np.complex64),
    "longdouble": lambda: np.ones((2, 2), np.longdouble),
}


@pytest.mark.parametrize("kind, what, fix", [
    ("masked", "is a numpy masked array: ptort_lab computes on every element and would ignore its mask.",
     "Pass data.filled(value)"),
    ("matrix", "is a numpy.matrix, which stays 2-D when indexed (m[0] is 1 x N), so tile indexing would pick the "
     "wrong elements.", "Pass np.asarray(data) (a plain ndarray view of the same memory"),
    ("subclass", "is a test_tensor_data.Mine, a numpy.ndarray subclass whose indexing may differ from ndarray's.",
     "Pass np.asarray(data)"),
    ("structured", "has the structured dtype [('a', '<f4'), ('b', '<i4')] (fields 'a', 'b'); a tensor holds one "
     "number per element.", "Pass one field, e.g. data['a']"),
    ("object", "holds Python objects (numpy dtype object), not numbers.", "np.asarray(data, dtype=np.float32)"),
    ("bool", "has numpy dtype bool, which ptort_lab has no DType for.", "Use data.astype(np.uint8)"),
    ("complex", "has numpy dtype complex64, which ptort_lab has no DType for.",
     "Use data.real and data.imag as two tensors"),
    ("longdouble", "has numpy dtype float128, which ptort_lab has no DType for.", "Use a numeric array"),
])
@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # np.matrix
def test_arrays_ptort_lab_would_misread_are_refused(kind, what, fix):
    e = refusal(MISREAD[kind]())
    assert e.what == f"Tensor data {what}"
    assert fix in e.hint


def test_unsupported_dtype_with_an_explicit_dtype_names_the_array():
    """Given dtype=F32 and bool data, the old hint built DType.from_numpy(bool) and raised a different error."""
    e = refusal(np.ones((2, 2), bool), dtype=F32)
    assert e.what == "Tensor data has numpy dtype bool, which ptort_lab has no DType for."


def test_a_plain_dtype_mismatch_keeps_its_message():
    e = refusal(ones(np.float16), dtype=F32)
    assert e.what == "Tensor data has numpy dtype float16 but dtype=F32."
    assert e.hint.startswith("Pass data.astype('float32') or dtype=DType.F16")


# -- accepted, with numpy's values ------------------------------------------------------------------------------------
def values(n: int = 2) -> np.ndarray:
    return np.arange(n * 8 * 16, dtype=np.float32).reshape(n, 8, 16) / 3


@pytest.mark.parametrize("layout", ["strided", "fortran", "reversed", "transposed"])
def test_non_contiguous_inputs_and_outputs_are_exact(layout):
    """Views read and write through their strides: the results land in the caller's base array."""
    base = values()
    x = {"strided": base[:, :, ::2], "fortran": np.asfortranarray(base[:, :, :8]), "reversed": base[::-1, :, :8],
         "transposed": base[:, :, :8].transpose(0, 2, 1)}[layout]
    out_base = np.zeros((2, 8, 16), np.float32)
    y = out_base[:, :, 1::2]
    assert not x.flags.c_contiguous and not y.flags.c_contiguous
    run_double(x, y)
    np.testing.assert_array_equal(out_base[:, :, 1::2], 2 * x)
    assert not out_base[:, :, ::2].any()


def test_memmaps_are_read_and_written(tmp_path):
    src = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=(2, 8, 8))
    src[:] = values()[:, :, :8]
    src.flush()
    x = np.load(tmp_path / "x.npy", mmap_mode="r")  # read-only input: fine
    y = np.lib.format.open_memmap(tmp_path / "y.npy", mode="w+", dtype=np.float32, shape=(2, 8, 8))
    run_double(x, y)
    y.flush()
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), 2 * values()[:, :, :8])


def test_bfloat16_and_zero_d_arrays_are_accepted():
    assert Tensor(data=np.ones((2, 2), ml_dtypes.bfloat16)).dtype is DType.BF16
    assert Tensor(data=np.array(1.5, np.float32)).shape == ()
