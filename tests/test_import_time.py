"""Import cost (issue 14): `import ptort_lab` leaves ml_dtypes (most of a second) until BF16 is first used, and the
program layer and the simulator until one of their names is read (PEP 562 lazy exports in ptort_lab/__init__.py)."""
import os
import re
import subprocess
import sys

import pytest


def _run(code: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run ``code`` in a fresh interpreter (``args`` before ``-c``) and return its stdout (its stderr with -X)."""
    out = subprocess.run([sys.executable, *args, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.returncode == 0, out.stderr
    return (out.stderr if args else out.stdout).strip()


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


# -- the program layer and the simulator load on first use ------------------------------------------------------
# What `import ptort_lab` loads: the errors and the DSL (numpy with it); nothing of sim/, program, viz, notebook,
# sweeps, explore or report, and no difflib (its one use, "did you mean", is on error paths).
LAZY_MODULES = ("ptort_lab.sim", "ptort_lab.program", "ptort_lab.viz", "ptort_lab.notebook", "ptort_lab.sweeps",
                "ptort_lab.explore", "ptort_lab.knobs", "ptort_lab.report", "ptort_lab.compat", "difflib")


def _loaded(code: str) -> list[str]:
    """The modules of LAZY_MODULES (or under them) loaded after ``code`` runs in a fresh interpreter."""
    return _run(code + f"\nimport sys\nprint(sorted(m for m in sys.modules if m.startswith({LAZY_MODULES!r})))"
                ).splitlines()[-1:]


def test_import_ptort_lab_loads_neither_the_program_layer_nor_the_simulator():
    """`import ptort_lab` and `from ptort_lab import` of DSL names load no sim/program (or later-layer) module."""
    assert _loaded("import ptort_lab") == ["[]"]
    assert _loaded("from ptort_lab import Channel, DType, In, Out, P, Tile, kernel, tl, workload, PtortError") \
        == ["[]"]


@pytest.mark.parametrize("name, module", [
    ("Program", "ptort_lab.program"), ("Trace", "ptort_lab.sim.trace"), ("ascend_910b", "ptort_lab.sim.machine"),
    ("PinnedCosts", "ptort_lab.sim.cost_model"), ("NpuCostModel", "ptort_lab.sim.costs"),
])
def test_reading_a_simulator_name_loads_its_module_then(name, module):
    """The first read of a lazy name imports the module that defines it (and what that one needs), no sooner."""
    code = (f"import sys, ptort_lab\nbefore = {module!r} in sys.modules\nvalue = ptort_lab.{name}\n"
            f"print(before, {module!r} in sys.modules, 'ptort_lab.sim.maxplus' in sys.modules)")
    assert _run(code) == "False True False"  # the max-plus path loads with the first run, not with Program


def test_every_public_name_imports_and_is_the_defining_modules_object():
    """`from ptort_lab import X` works for every X of __all__, each lazy X is the object its module defines, dir()
    lists them all before they load, and `from ptort_lab import *` binds every one."""
    code = ("import importlib, ptort_lab\n"
            "listed = set(ptort_lab.__all__) <= set(dir(ptort_lab))\n"
            "bad = []\n"
            "for name in ptort_lab.__all__:\n"
            "    scope = {}\n"
            "    exec(f'from ptort_lab import {name} as x', scope)\n"
            "    if name in ptort_lab._LAZY:\n"
            "        defined = getattr(importlib.import_module(ptort_lab._LAZY[name], 'ptort_lab'), name)\n"
            "        if scope['x'] is not defined: bad.append(name)\n"
            "star = {}\n"
            "exec('from ptort_lab import *', star)\n"
            "print(listed, bad, sorted(set(ptort_lab.__all__) - set(star)), len(ptort_lab._LAZY))")
    assert _run(code) == "True [] [] 15"


def test_a_misspelt_name_is_still_an_attribute_and_import_error():
    """A name ptort_lab does not have raises AttributeError (ImportError from `from ptort_lab import`), and loads
    nothing."""
    code = ("import sys, ptort_lab\n"
            "try:\n    ptort_lab.Progam\nexcept AttributeError as e:\n    print(e)\n"
            "try:\n    from ptort_lab import Progam\nexcept ImportError as e:\n    print(type(e).__name__)\n"
            "print('ptort_lab.program' in sys.modules)")
    assert _run(code).splitlines() == ["module 'ptort_lab' has no attribute 'Progam'", "ImportError", "False"]


def test_compile_works_before_the_program_layer_is_loaded():
    """`workload.compile()` from a DSL-only import finds the simulator's targets (registered by ptort_lab/__init__,
    which imports the program layer then) and runs: the F32 doubling kernel's numbers are numpy's."""
    code = ("import sys\nimport numpy as np\n"
            "from ptort_lab.dsl import DType, In, Out, Tensor, Tile, kernel, tl, workload\n"
            "@kernel\n"
            "def k(a: In[Tile[8, 8, DType.F32]], b: Out[Tile[8, 8, DType.F32]]):\n"
            "    tl.store(b, tl.mul(tl.load(a), 2.0))\n"
            "A = Tensor(np.arange(64, dtype=np.float32).reshape(8, 8))\nB = Tensor(np.zeros((8, 8), np.float32))\n"
            "@workload\ndef w():\n    k(A, B)\n"
            "before = 'ptort_lab.program' in sys.modules\n"
            "program = w().compile(target='npu_sim')\nprogram.execute()\n"
            "print(before, type(program).__name__, np.array_equal(B.data, np.arange(64).reshape(8, 8) * 2))")
    assert _run(code) == "False Program True"


# -- the import time itself -------------------------------------------------------------------------------------
def _import_profile() -> tuple[float, float]:
    """(seconds in ptort_lab's own modules, seconds importing numpy) of one `python -X importtime -c "import
    ptort_lab"`, its sources compiled afresh (no bytecode cache: the worst case, and the same every run)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTHONPYCACHEPREFIX", None)
    own_us = numpy_us = 0
    for line in _run("import ptort_lab", "-X", "importtime", env=env).splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+(\d+) \| *(\S+)$", line)
        if match and match[3].split(".")[0] == "ptort_lab":
            own_us += int(match[1])
        elif match and match[3] == "numpy":
            numpy_us = int(match[2])
    return own_us / 1e6, numpy_us / 1e6


def test_ptort_labs_own_share_of_the_import_is_small():
    """ptort_lab's own modules take < 0.3 s of `import ptort_lab` and less than 2.5x numpy's import, best of 3
    (it was 0.26-0.65 s with the simulator loaded eagerly; 0.11 s and ~1.1-1.4x numpy's at stop 23, without .pyc
    files, as this machine runs with PYTHONDONTWRITEBYTECODE: mostly compiling the DSL's source; 0.09-0.10 s and
    1.6-2.0x at stop 28, numpy's own import varying 44-62 ms from run to run; with .pyc files 0.03 s). The ratio holds
    on a loaded machine, where both slow down alike; the bound in seconds is a backstop. Loading the simulator
    eagerly again is caught sharply by test_import_ptort_lab_loads_neither_the_program_layer_nor_the_simulator."""
    runs = [_import_profile() for _ in range(3)]
    own_s = min(own for own, _ in runs)
    ratio = min(own / numpy_s for own, numpy_s in runs)
    assert own_s < 0.3 and ratio < 2.5, runs
