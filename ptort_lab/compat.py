"""The reference's (PTO-WSP v9) public names, for porting: ``import ptort_lab.compat as pto_wsp`` or
``from ptort_lab.compat import *`` in place of ``import pto_wsp`` / ``from pto_wsp import *``.

Every public name of ``ptort_lab`` is here, plus the reference's other spellings of the same things (``Layout`` for
``TensorLayout``, ``KernelError`` for ``KernelExecutionError``, ...). Names ptort_lab does not provide (``npu``,
``MemLayout``, ``relayout``, ``Symbol``, ...) are not faked: using one fails at the import, where it is plain to
see; the README's porting section lists them and what to write instead.
"""
from __future__ import annotations

from . import *  # noqa: F403 - the whole public surface, under the same names as the reference's
from . import __all__ as _ptort_all
from .dsl.typecheck import LayoutIncompatibleError, TensorLayout, TensorReplicate, TensorShard, tensor_layout_join
from .errors import KernelExecutionError

# The reference's type_checker.py aliases of its layout types.
Layout = TensorLayout
LayoutShard = TensorShard
LayoutReplicate = TensorReplicate
layout_join = tensor_layout_join
LayoutCompatibilityError = LayoutIncompatibleError
# The reference's HEAD aliases of the distribution facets (its deprecated spatial.Shard/Replicate).
Shard = TensorShard
Replicate = TensorReplicate
# The reference's error raised by a failing kernel (a subclass of its ExecutionError, as here).
KernelError = KernelExecutionError

__all__ = list(_ptort_all) + ["Layout", "LayoutShard", "LayoutReplicate", "layout_join", "LayoutCompatibilityError",
                              "Shard", "Replicate", "KernelError"]
