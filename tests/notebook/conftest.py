"""A real IPython shell whose run_cell re-raises (jupysql's TestingShell), reset per test, and spec cells."""
from __future__ import annotations

import os
import tempfile
from textwrap import dedent

import matplotlib
import pytest

matplotlib.use("Agg")

# IPython writes its profile and history under IPYTHONDIR; keep them out of the user's home during tests.
os.environ.setdefault("IPYTHONDIR", tempfile.mkdtemp(prefix="ptort-ipython-"))

from IPython.core.interactiveshell import InteractiveShell  # noqa: E402
from traitlets.config import Config  # noqa: E402

SETUP = dedent("""\
    import numpy as np
    from ptort_lab import *
    from ptort_lab.csp import Channel, Process, connect, consume, send
    F32, F16 = DType.F32, DType.F16
""")

# The spec pipeline (load -> compute -> store) built from the names the magic binds: DEPTH, TILE, TILES.
SPEC_BODY = dedent("""\
    R, C = TILE
    n = TILES

    @kernel
    def load_kernel(src: In[Tile[R, C, F32]], dst: Out[Tile[R, C, F16]]):
        tl.store(dst, tl.cast(tl.load(src), F16))

    @kernel
    def compute_kernel(input_tile: In[Tile[R, C, F16]], output_tile: Out[Tile[R, C, F16]]):
        x = tl.load(input_tile)
        tl.store(output_tile, tl.mul(x, x))

    @kernel
    def store_kernel(src: In[Tile[R, C, F16]], dst: Out[Tile[R, C, F32]]):
        tl.store(dst, tl.cast(tl.load(src), F32))

    x = np.random.default_rng(2026).standard_normal((n, R, C)).astype(np.float32)
    X = Tensor(data=x, dtype=F32, name="X")
    T0 = Tensor(shape=(n, R, C), dtype=F16, name="T0")
    T1 = Tensor(shape=(n, R, C), dtype=F16, name="T1")
    Y = Tensor(data=np.zeros_like(x), dtype=F32, name="Y")
    load_to_compute = Channel[Tensor](name="load_to_compute", depth=DEPTH)
    compute_to_store = Channel[Tensor](name="compute_to_store", depth=DEPTH)
    loader = (Process("loader").produces(load_to_compute)
              .body_func(lambda: [send(load_to_compute, load_kernel[t](src=X[t], dst=T0[t])) for t in range(n)]))
    computer = (Process("computer").consumes(load_to_compute).produces(compute_to_store)
                .body_func(lambda: consume(load_to_compute, lambda t: send(
                    compute_to_store, compute_kernel[t](input_tile=T0[t], output_tile=T1[t])))))
    storer = (Process("storer").consumes(compute_to_store)
              .body_func(lambda: consume(compute_to_store, lambda t: store_kernel[t](src=T1[t], dst=Y[t]))))
    pipeline = connect(loader, computer, storer)
""")


class TestingShell(InteractiveShell):
    """An InteractiveShell whose run_cell raises the cell's exception (after IPython has shown it)."""

    def run_cell(self, *args, **kwargs):
        result = super().run_cell(*args, **kwargs)
        result.raise_error()
        return result


@pytest.fixture(scope="package")
def _shell():
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = TestingShell.instance(config=config)
    shell.run_line_magic("load_ext", "ptort_lab")
    yield shell
    TestingShell.clear_instance()  # later test packages see no IPython


@pytest.fixture
def ip(_shell):
    """A fresh namespace with ptort_lab's DSL imported (the extension is loaded once per session)."""
    _shell.reset(new_session=False)
    _shell.run_cell(SETUP)
    yield _shell
    _shell.reset(new_session=False)


@pytest.fixture
def spec_body() -> str:
    return SPEC_BODY


def build_spec(depth: int, tile: tuple[int, int], tiles: int):
    """The spec pipeline as a plain builder: SPEC_BODY run in a fresh namespace with DEPTH, TILE, TILES bound."""
    ns: dict = {}
    exec(SETUP, ns)
    ns.update(DEPTH=depth, TILE=tile, TILES=tiles)
    exec(SPEC_BODY, ns)
    return ns["pipeline"]


@pytest.fixture
def spec_builder():
    return build_spec
