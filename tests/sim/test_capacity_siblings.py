"""A run-time capacity hint that cuts on-chip state makes room for every kernel on that unit, not only the one that
overflowed first: following it once runs (flash attention's pipeline at --block 128 took 300 -> 223 -> 222 -> 191)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from loaders import flash_attention_example

from ptort_lab import CapacityError


@pytest.mark.parametrize("depth", [300, 223])
def test_the_depth_offered_leaves_room_for_the_hungriest_kernel_on_the_aiv(depth):
    fa = flash_attention_example()
    lines = Path(fa.__file__).read_text().splitlines()
    ring_line = next(i for i, text in enumerate(lines, 1) if 'Channel(f"{name}{h}"' in text)
    with pytest.raises(CapacityError) as e:
        fa.run("pipeline", fa.Config(seq=256, block=128, depth=depth))
    hint = e.value.hint
    # the kernel that overflowed first needs less than 'update' does, placed on the same AIV
    assert ", and kernel 'update' on the same unit 65536. " in hint
    assert (f"give tile channel 'alpha1@c0', tile channel 'rowsum1@c0' (made at the same line, "
            f"flash_attention_example.py:{ring_line}) depth 191 or less (they have {depth})") in hint
    cfg = fa.Config(seq=256, block=128, depth=191)
    qkv = fa.random_inputs(cfg)
    _, t = fa.run("pipeline", cfg, qkv)  # one step: the depth offered runs, against numpy
    assert np.allclose(fa.output(cfg, t), fa.golden.attention_ref(*qkv), rtol=1e-3, atol=2e-3)
    with pytest.raises(CapacityError) as e:
        fa.run("pipeline", fa.Config(seq=256, block=128, depth=192))
    assert e.value.what.startswith("kernel 'update' ")  # (one slot more and 'update' has no room)
