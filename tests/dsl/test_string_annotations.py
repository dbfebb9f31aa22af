"""Kernels written under `from __future__ import annotations`: the string annotations are evaluated, not ignored."""
from __future__ import annotations

from textwrap import dedent

import pytest

from ptort_lab import DType, In, Out, PtortTypeError, Tile, kernel, tl

ROWS = 16


@kernel
def module_level(src: In[Tile[ROWS, 32, DType.BF16]], dst: Out[Tile[ROWS, 32, DType.F32]]):
    """Annotations naming a module constant."""
    tl.store(dst, tl.cast(tl.load(src), DType.F32))


def test_module_level_string_annotations_give_real_types():
    """String annotations referring to module globals trace to their real shapes and dtypes."""
    assert str(module_level.trace()) == dedent("""\
        kernel module_level(src: In[bf16[16,32]], dst: Out[f32[16,32]]):
          a: bf16[16,32] = load src
          b: f32[16,32] = cast[F32] a
          store dst, b""")


def test_local_names_in_string_annotations():
    """String annotations may name locals of the function that applies @kernel."""
    rows, cols = 4, 8

    @kernel
    def local(src: In[Tile[rows, cols, DType.F16]]):
        tl.exp(src)

    assert local.trace().ops[0].result.shape == (4, 8)


def test_unresolvable_string_annotation_names_the_parameter():
    """An annotation naming an undefined variable fails with the parameter and the evaluation error."""
    with pytest.raises(PtortTypeError, match=r"the annotation 'In\[Tile\[nope, 8\]\]' of kernel parameter 'src' "
                                             r"could not be evaluated: name 'nope' is not defined"):
        @kernel
        def broken(src: In[Tile[nope, 8]]):  # noqa: F821
            pass
