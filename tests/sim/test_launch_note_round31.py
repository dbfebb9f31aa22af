"""The launch is a cycle count fitted on the 910B2 at 1.8 GHz and the other presets keep it: a run on another clock
says what it comes to there, and that no source says whether it scales (docs/explanation/npu_model.md, "Launch")."""
from __future__ import annotations

from ptort_lab.sim.machine import ascend_910b, ascend_910b4
from ptort_lab.sim.validation import ModelUse, model_notes


def _launch_note(machine):
    use = ModelUse(machine, (), True, False, False, False)
    return next(n for n in model_notes({}, use) if n.startswith("launch:"))


def test_the_fit_s_own_clock_says_only_where_it_comes_from():
    assert _launch_note(ascend_910b) == ("launch: 10900 cycles before the first instruction, a fit to onboard FA runs "
                                         "(NPU_MODEL §3.5)")


def test_another_clock_says_what_the_cycles_come_to_there():
    assert _launch_note(ascend_910b4) == (
        "launch: 10900 cycles before the first instruction, a fit to onboard FA runs (NPU_MODEL §3.5); kept in cycles "
        "at 1.5 GHz, that is 7.3 us (the fit's 6.1 us at 1.8 GHz): no source says whether the launch scales with the "
        "AI cores' clock")
