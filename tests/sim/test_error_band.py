"""The model's validated error band (sim/validation.py): which kind of work a run did, what the summary says."""
from __future__ import annotations

import pytest

from ptort_lab import DType, In, Out, PinnedCosts, Tensor, Tile, kernel, tl, workload
from ptort_lab.explore import run_study
from ptort_lab.knobs import Knobs
from ptort_lab.notebook.display import PtortResult
from ptort_lab.sim.validation import BANDS, GEMM, MIXED, UNVALIDATED, VECTOR, classify, error_band, model_notes

F16, F32 = DType.F16, DType.F32


@pytest.mark.parametrize("busy, kind", [
    ({"AIC.MTE2": 90.0, "AIC.CUBE": 80.0, "AIC.FIX": 3.0}, GEMM),
    ({"AIV0.MTE2": 40.0, "AIV0.V": 50.0, "AIV1.MTE3": 10.0}, VECTOR),
    ({"AIC.CUBE": 60.0, "AIV0.V": 70.0}, MIXED),
    # a side with less than 5 % of all pipe busy time does not make the run mixed: 4 / (80 + 4) = 4.8 %
    ({"AIC.CUBE": 80.0, "AIV0.V": 4.0}, GEMM),
    ({"AIC.CUBE": 76.0, "AIV0.V": 4.0}, MIXED),  # 4 / 80 = 5 %
    ({"load": 50.0, "compute": 50.0}, UNVALIDATED),  # stage lanes: pinned costs, no NPU pipe
    ({}, UNVALIDATED),
])
def test_the_kind_of_work_follows_the_busy_pipes(busy, kind):
    assert classify(busy) == kind
    assert error_band(busy) is BANDS[kind]


def test_only_gemm_is_validated_and_the_others_say_so():
    assert BANDS[GEMM].text() == ("GEMM-like: model time -7.7 % to +5.3 % of measured (NPU_MODEL §5.1 V1: fp16 GEMM "
                                  "on 24 cores, 4 sizes 1536-7680^3; pipe ratios within 5 points)")
    assert [k for k, band in BANDS.items() if band.validated] == [GEMM]
    assert BANDS[MIXED].text() == ("mixed cube + vector: unvalidated (no measurement covers cube and vector work "
                                   "together)")
    assert BANDS[VECTOR].text().startswith("vector streaming: unvalidated (no hardware measurement")


def test_a_heavily_used_fix_path_gets_a_note():
    assert model_notes({"AIC.FIX": 9.9}) == []
    (note,) = model_notes({"AIC.FIX": 25.0})
    assert note.startswith("FIX (L0C -> GM) was busy 25 % of the run: its 75 B/cycle is a fit")
    assert "unvalidated" in note


@kernel
def mm(a: In[Tile[64, 64, F16]], b: In[Tile[64, 64, F16]], c: Out[Tile[64, 64, F32]]):
    tl.store(c, tl.matmul(tl.load(a), tl.load(b)))


@kernel
def add(x: In[Tile[64, 64, F32]], y: In[Tile[64, 64, F32]], z: Out[Tile[64, 64, F32]]):
    tl.store(z, tl.add(tl.load(x), tl.load(y)))


def one_task(kern, shapes):
    tensors = [Tensor(shape=(1, *s), dtype=d) for s, d in shapes]

    @workload
    def w():
        if kern is mm:
            mm(a=tensors[0][0], b=tensors[1][0], c=tensors[2][0])
        else:
            add(x=tensors[0][0], y=tensors[1][0], z=tensors[2][0])

    return w()


def test_program_stats_carry_the_band_and_summary_shows_it():
    gemm = one_task(mm, [((64, 64), F16), ((64, 64), F16), ((64, 64), F32)]).compile(compute_values=False)
    stats = gemm.execute().stats()
    assert stats.error_band is BANDS[GEMM]
    assert f"  model error: {BANDS[GEMM].text()}" in stats.summary().splitlines()
    vector = one_task(add, [((64, 64), F32)] * 3).compile(compute_values=False).execute().stats()
    assert vector.error_band is BANDS[VECTOR]
    assert f"  model error: {BANDS[VECTOR].text()}" in vector.summary().splitlines()


def test_pinned_costs_are_unvalidated():
    stats = one_task(add, [((64, 64), F32)] * 3).compile(cost_model=PinnedCosts(default_cycles=10),
                                                         compute_values=False).execute().stats()
    assert stats.error_band is BANDS[UNVALIDATED] and stats.memory == {}
    assert "model error: unvalidated (no NPU pipe was timed: pinned or foreign costs)" in stats.summary()


def test_the_notebook_result_names_each_runs_band():
    result = PtortResult(run_study(one_task(add, [((64, 64), F32)] * 3), Knobs(cores=1), mode="data-parallel"),
                         one_task(add, [((64, 64), F32)] * 3))
    assert f"model error, data-parallel run: {BANDS[VECTOR].text()}" in result.summary().splitlines()
