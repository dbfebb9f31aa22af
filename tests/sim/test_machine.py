"""Machine presets hold the sourced NPU_MODEL constants; variants and look-ups behave."""
from __future__ import annotations

import dataclasses

import pytest

from ptort_lab.errors import PtortValueError
from ptort_lab.sim.machine import KIB, MACHINES, MIB, Machine, ascend_910b, ascend_910b4, get_machine


def test_default_preset_is_the_910b2_of_npu_model_section_1():
    """The default machine carries NPU_MODEL §1's 910B2 numbers."""
    m = ascend_910b
    assert m.clock_hz == 1.8e9
    assert (m.num_cores, m.num_vector_cores) == (24, 48)
    assert (m.ub_bytes, m.l1_bytes) == (192 * KIB, 512 * KIB)
    assert (m.l0a_bytes, m.l0b_bytes, m.l0c_bytes) == (64 * KIB, 64 * KIB, 128 * KIB)
    assert m.hbm_bytes_per_cycle == 850
    assert m.l2_bytes == 192 * MIB
    assert m.channel_latency_cycles == 1000


def test_cube_peak_matches_the_published_tflops():
    """16x16x16 MACs per cycle on 24 AICs at 1.8 GHz is the 353.9 TFLOPS of §1."""
    m = ascend_910b
    assert m.cube_flops_per_cycle == 8192
    assert m.cube_flops_per_cycle * m.num_cores * m.clock_hz / 1e12 == pytest.approx(353.9, abs=0.1)


def test_910b4_preset_is_a_smaller_sku():
    """The 910B4 preset has 20 AIC / 40 AIV at 1.5 GHz with half the HBM peak."""
    m = ascend_910b4
    assert (m.num_cores, m.num_vector_cores, m.clock_hz) == (20, 40, 1.5e9)
    assert m.hbm_peak_bytes_per_s == ascend_910b.hbm_peak_bytes_per_s / 2
    assert m.ub_bytes == ascend_910b.ub_bytes


def test_machines_are_frozen_and_replace_gives_a_variant():
    """replace() returns a changed copy and leaves the preset alone."""
    v = ascend_910b.replace(hbm_bytes_per_cycle=530)
    assert v.hbm_bytes_per_cycle == 530 and ascend_910b.hbm_bytes_per_cycle == 850
    assert v.ub_bytes == ascend_910b.ub_bytes
    with pytest.raises(dataclasses.FrozenInstanceError):
        ascend_910b.clock_hz = 1.0  # type: ignore[misc]


def test_replace_rejects_unknown_constants_with_a_suggestion():
    """A misspelt constant names the closest real one."""
    with pytest.raises(PtortValueError, match="hbm_bytes_per_cycle"):
        ascend_910b.replace(hbm_byte_per_cycle=1)


def test_get_machine_by_name_and_did_you_mean():
    """Presets are found by name; an unknown name lists a close match and every preset."""
    assert get_machine("ascend_910b4") is ascend_910b4
    assert get_machine(ascend_910b) is ascend_910b
    assert set(MACHINES) >= {"ascend_910b", "ascend_910b4"}
    with pytest.raises(PtortValueError) as e:
        get_machine("ascend_910b5")
    assert "Did you mean 'ascend_910b" in str(e.value) and "Presets:" in str(e.value)


def test_every_constant_has_a_source_comment():
    """Each Machine field is declared on a line that cites its source (a §-reference or a named file)."""
    import inspect

    source = inspect.getsource(Machine).splitlines()
    for f in dataclasses.fields(Machine):
        if f.name == "name":
            continue
        line = next(s for s in source if s.strip().startswith(f"{f.name}:"))
        assert "#" in line, f"{f.name} has no source comment"


def test_buffer_sizes_in_errors_name_kib_only_when_there_is_one():
    """A 100-byte buffer is "100 bytes", not "100 bytes (0 KiB)"."""
    from ptort_lab.sim.machine import bytes_text
    assert [bytes_text(n) for n in (100, 1024, 1536, 196608)] == [
        "100 bytes", "1024 bytes (1 KiB)", "1536 bytes (1.5 KiB)", "196608 bytes (192 KiB)"]
