"""Kernel IR view: printed IR with types and the pipe of each op (NPU lowering), escaped HTML, repr bundle."""
from __future__ import annotations

from textwrap import dedent

import pytest
from IPython.lib.pretty import pretty
from viz_cases import XSS

from ptort_lab import DType, In, Out, PtortTypeError, PtortValueError, Tile, kernel, tl
from ptort_lab.viz import KernelView, kernel_view

F16, F32 = DType.F16, DType.F32


@kernel
def mm_exp(a: In[Tile[128, 256, F16]], b: In[Tile[256, 128, F16]], c: Out[Tile[128, 128, F32]]):
    """A matmul whose result goes through the vector unit: cube, then a GM hop to the AIV."""
    x = tl.load(a)
    y = tl.load(b)
    z = tl.matmul(x, y)
    tl.store(c, tl.exp(tl.cast(z, F32)))


def test_spec_load_kernel_view_is_golden(spec_kernels):
    """The spec's load_kernel prints its typed IR with the AIV pipe each op runs on."""
    assert kernel_view(spec_kernels.load).text == dedent("""\
        # pipes on ascend_910b (AIC = cube unit, AIV = vector unit)
        kernel load_kernel(src: In[f32[128,128]], dst: Out[f16[128,128]]):
          a: f32[128,128] = load src                    # AIV.MTE2
          b: f16[128,128] = cast[F16] a                 # AIV.V
          store dst, b                                  # AIV.MTE3""")


def test_matmul_runs_on_the_cube_and_moves_are_named():
    """matmul runs on AIC.CUBE after MTE1 extracts; a vector op on its result first crosses FIX -> GM -> MTE2."""
    lines = kernel_view(mm_exp).text.splitlines()
    assert lines[4].endswith("= matmul d, e                 # AIC.CUBE x2 via AIC.MTE1 x4")
    assert lines[5].endswith("# AIV.V via AIC.FIX -> AIV.MTE2")
    assert lines[2].endswith("# AIC.MTE2") and lines[7].endswith("# AIV.MTE3")


def test_ir_and_kernel_give_the_same_view(spec_kernels):
    """A KernelIR and its @kernel give the same text; str, repr and IPython's pretty print all show it."""
    view = kernel_view(spec_kernels.compute.trace())
    assert isinstance(view, KernelView)
    assert view.text == kernel_view(spec_kernels.compute).text == str(view) == repr(view) == pretty(view)


def test_machine_by_name_and_unknown_machine(spec_kernels):
    """machine= takes a preset name (shown in the header); an unknown name is a PtortValueError with presets."""
    assert kernel_view(spec_kernels.load, "ascend_910b4").text.startswith("# pipes on ascend_910b4 ")
    with pytest.raises(PtortValueError, match="unknown machine"):
        kernel_view(spec_kernels.load, machine="tpu")


def test_non_kernel_is_a_type_error():
    """Anything but a @kernel or KernelIR is a PtortTypeError saying what to pass."""
    with pytest.raises(PtortTypeError, match="needs a @kernel or a KernelIR"):
        kernel_view("load_kernel")


def test_html_is_escaped_pre():
    """_repr_html_ is the text in a <pre>, with a kernel named like an HTML injection escaped."""
    def body(x: In[Tile[16, 16, F32]], y: Out[Tile[16, 16, F32]]):
        tl.store(y, tl.load(x))

    view = kernel_view(kernel(name=XSS)(body))
    html = view._repr_html_()
    assert html.startswith('<pre class="ptort-ir">') and html.endswith("</pre>")
    assert "kernel &lt;img src=x onerror=alert(1)&gt;(x: In[f32[16,16]]" in html
    assert "<img" not in html


def test_mimebundle_has_text_and_html(spec_kernels):
    """The bundle holds text/plain and text/html, filtered by include/exclude."""
    view = kernel_view(spec_kernels.store)
    assert set(view._repr_mimebundle_()) == {"text/plain", "text/html"}
    assert view._repr_mimebundle_(exclude={"text/html"}) == {"text/plain": view.text}


def test_text_views_show_their_text_everywhere(spec_kernels, spec_pipeline):
    """KernelView and Diagram are TextViews: str(), repr() and IPython's pretty printer all give .text."""
    from ptort_lab.viz import draw_pipeline
    from ptort_lab.viz.views import TextView

    for view in (kernel_view(spec_kernels.load), draw_pipeline(spec_pipeline)):
        assert isinstance(view, TextView)
        assert str(view) == repr(view) == pretty(view) == view.text
    assert draw_pipeline(spec_pipeline).text.startswith("pipeline: loader -> [load_to_compute d=2] -> computer")
