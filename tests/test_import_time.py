"""Import cost (issue 14): `import ptort_lab` leaves ml_dtypes (most of a second) until BF16 is first used."""
import subprocess
import sys

import pytest


def _run(code: str) -> str:
    """Run ``code`` in a fresh interpreter and return its stdout."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_import_ptort_lab_does_not_import_ml_dtypes():
    """A fresh `import ptort_lab` (and building an F16 kernel) loads no ml_dtypes."""
    code = ("import sys, ptort_lab\n"
            "from ptort_lab import DType, Tile, In, Out, kernel, tl\n"
            "@kernel\n"
            "def k(a: In[Tile[8, 8, DType.F16]], b: Out[Tile[8, 8, DType.F16]]):\n"
            "    tl.store(b, tl.mul(tl.load(a), 2.0))\n"
            "print('ml_dtypes' in sys.modules)")
    assert _run(code) == "False"


@pytest.mark.parametrize("use, expected", [
    ("DType.BF16.np_dtype.name", "bfloat16"),
    ("float(DType.BF16.finfo.max)", "3.3895313892515355e+38"),
    ("DType.from_numpy(ml_dtypes.bfloat16).name", "BF16"),
])
def test_bf16_still_works_and_imports_ml_dtypes_on_first_use(use, expected):
    """The first use of BF16 imports ml_dtypes; its dtype, range and the numpy round trip are as before."""
    code = ("import sys, ptort_lab\nfrom ptort_lab import DType\nbefore = 'ml_dtypes' in sys.modules\n"
            + ("import ml_dtypes\n" if "ml_dtypes." in use else "")
            + f"print(before, {use}, 'ml_dtypes' in sys.modules)")
    assert _run(code) == f"False {expected} True"


def test_a_bf16_literal_out_of_range_is_refused_after_the_lazy_import():
    """tl literals are range-checked against BF16's finfo, now read through the lazy import."""
    code = ("import ptort_lab\nfrom ptort_lab import DType, Tile, In, Out, kernel, tl, PtortError\n"
            "try:\n"
            "    @kernel\n"
            "    def k(a: In[Tile[8, 8, DType.BF16]], b: Out[Tile[8, 8, DType.BF16]]):\n"
            "        tl.store(b, tl.mul(tl.load(a), 1e39))\n"
            "    print('accepted')\n"
            "except PtortError as e:\n"
            "    print('largest finite 3.38953e+38' in str(e))")
    assert _run(code) == "True"
