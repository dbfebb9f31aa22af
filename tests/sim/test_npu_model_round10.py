"""Hunt 10c (NPU cost model vs NPU_MODEL.md): block dispatch by rank among the cores used (F1), matmul on dtypes
with no cube mode refused (F6), and an error band and notes that say where they hold and what was fitted (F7)."""
from __future__ import annotations

import pytest
from source_lines import here, located

from ptort_lab import (
    Channel,
    DispatchPolicy,
    DType,
    In,
    InOut,
    Out,
    P,
    PinnedCosts,
    PtortTypeError,
    Tensor,
    Tile,
    connect,
    consume,
    for_each,
    kernel,
    process,
    send,
    task,
    tl,
    workload,
)
from ptort_lab.dsl import Dense
from ptort_lab.sim.machine import TransferCost, ascend_910b, ascend_910b4
from ptort_lab.sim.validation import BANDS, GEMM, ModelUse, error_band, model_notes

F16, F32 = DType.F16, DType.F32
M = ascend_910b
LAUNCH, DISPATCH = M.launch_overhead_cycles, M.block_dispatch_cycles  # 10900, 150

LAUNCH_NOTE = "launch: 10900 cycles before the first instruction, a fit to onboard FA runs (NPU_MODEL §3.5)"
DISPATCH_NOTE = "block dispatch: 150 cycles per AI core used, an estimate with no source (NPU_MODEL §3.5)"
CHANNEL_NOTE = ("channel hops between cores or units pay L_chan (1000 cycles unless "
                "compile(channel_latency_cycles=...) set another), a fit to onboard FA (NPU_MODEL §4.2)")
CROSS_NOTE = ("data-parallel: a task read GM data another core's or unit's task wrote, with no flag latency (L_chan "
              "applies to channels only), so a comparison with a pipeline favours data-parallel")


# -- F1: a data-parallel run's blocks go out in core order among the cores it uses -----------------------------------
@kernel
def relu(x: In[Tile[16, 16, F32]], z: Out[Tile[16, 16, F32]]):
    tl.store(z, tl.relu(tl.load(x)))


def four_relus(dispatch, streams=None):
    X, Z = Tensor(shape=(4, 16, 16), dtype=F32), Tensor(shape=(4, 16, 16), dtype=F32)

    @workload
    def w():
        for t in P(Dense[4]()):
            relu[t](x=X[t], z=Z[t])

    built = w()
    if streams is not None:
        built = built.streams(streams[0]).stream_by(streams[1])
    return built.dispatch(dispatch) if dispatch is not None else built


def first_starts(program):
    """Each core's first instruction, in cycles."""
    firsts = {}
    for s in program.trace().spans:
        firsts.setdefault(s.core, s.start)
    return firsts


# One task alone on its core, from its block's start (NPU_MODEL §3.1-§3.2, issue 13 GM paths): the 1 KiB load misses
# L2 (stream ceil(1024 / 60) = 18, data 347 later), relu is 10 + 1 x 4 repeats, its tail 13, the store streams
# ceil(1024 / 100) = 11 and is visible 96 later.
ONE_TASK = 18 + 347 + (10 + 4) + 13 + 11 + 96  # 499


@pytest.mark.parametrize("compute_values", [False, True], ids=["streamed", "listed"])
def test_a_keyed_dispatch_ranks_its_blocks_among_the_cores_it_uses(compute_values):
    """hash over 4 tasks uses 4 of the 24 cores: their blocks start at launch + 150, + 300, + 450, + 600 in core
    order (not at + (core + 1) x 150, up to + 3450)."""
    program = four_relus(DispatchPolicy.hash(lambda t: t.get("b"), 24)).compile(
        compute_values=compute_values).execute()
    firsts = first_starts(program)
    cores = sorted(firsts)
    assert len(cores) == 4 and cores[-1] > 3  # (the hash spreads them past cores 0..3)
    assert firsts == {core: LAUNCH + (rank + 1) * DISPATCH for rank, core in enumerate(cores)}
    assert program.stats().total_cycles == LAUNCH + 4 * DISPATCH + ONE_TASK == 11999


def test_a_run_on_one_core_starts_its_block_first_whichever_core_it_is():
    """dispatch_by(lambda t: 23, 24): one block, on core 23, dispatched first (+150, not +3600); the run takes what
    the same run on core 0 takes."""
    on_23 = four_relus(DispatchPolicy.dispatch_by(lambda t: 23, 24)).compile(compute_values=False).execute()
    on_0 = four_relus(DispatchPolicy.round_robin(1)).compile(compute_values=False).execute()
    assert first_starts(on_23) == {23: LAUNCH + DISPATCH}
    assert first_starts(on_0) == {0: LAUNCH + DISPATCH}
    assert on_23.stats().total_cycles == on_0.stats().total_cycles == 11685


def test_stream_by_ranks_the_streams_it_uses():
    """streams(24).stream_by(fn) with fn giving 5 and 9: two blocks, at + 150 and + 300."""
    program = four_relus(None, (24, lambda t: 5 + 4 * (t.get("b") % 2))).compile(compute_values=False).execute()
    assert first_starts(program) == {5: LAUNCH + DISPATCH, 9: LAUNCH + 2 * DISPATCH}


@pytest.mark.parametrize("dispatch", [DispatchPolicy.round_robin(24), DispatchPolicy.affinity(lambda t: t.get("b"), 4),
                                      DispatchPolicy.work_steal(4)], ids=["round_robin", "affinity", "work_steal"])
def test_runs_on_cores_0_to_3_keep_their_dispatch_times(dispatch):
    """Cores 0..3 used: block k at launch + (k + 1) x 150, as before."""
    program = four_relus(dispatch).compile(compute_values=False).execute()
    assert first_starts(program) == {k: LAUNCH + (k + 1) * DISPATCH for k in range(4)}


# -- F6: tl.matmul on a dtype with no cube mode is refused at the kernel's line ----------------------------------------
@pytest.mark.parametrize("dtype", [DType.F64, DType.I64, DType.I32, DType.I16, DType.U16, DType.U32, DType.U64])
def test_matmul_on_a_dtype_with_no_cube_mode_is_refused(dtype):
    line: list[int] = []
    with pytest.raises(PtortTypeError) as e:
        @kernel
        def mm(a: In[Tile[32, 32, dtype]], b: In[Tile[32, 32, dtype]], c: Out[Tile[32, 32, dtype]]):
            line.append(here() + 1)
            tl.store(c, tl.matmul(tl.load(a), tl.load(b)))
    name = dtype.value
    assert e.value.what == (f"tl.matmul: the cube unit has no {dtype} mode: {name}[32,32] @ {name}[32,32] (A2/A3 "
                            "cube inputs are F16, BF16, F32, I8, U8).")
    assert e.value.hint == ("Cast both operands first: tl.cast(a, DType.F16) or DType.BF16 (full cube rate), or "
                            "DType.F32 (quarter rate, keeps more precision).")
    located(e, line[0])


@pytest.mark.parametrize("dtype, out", [(DType.F16, F32), (DType.BF16, F32), (DType.F32, F32), (DType.I8, DType.I32),
                                        (DType.U8, DType.I32)])
def test_matmul_on_the_cube_dtypes_is_accepted(dtype, out):
    @kernel
    def mm(a: In[Tile[32, 32, dtype]], b: In[Tile[32, 32, dtype]]):
        assert tl.matmul(a, b).dtype is out

    assert [op.kind.value for op in mm.trace().ops] == ["matmul"]


# -- F7: the GEMM band only where V1 measured it; notes for the fitted and estimated terms in play ---------------------
@kernel
def mm32(a: In[Tile[64, 64, F32]], b: In[Tile[64, 64, F32]], c: Out[Tile[64, 64, F32]]):
    tl.store(c, tl.matmul(tl.load(a), tl.load(b)))


@kernel
def mm16(a: In[Tile[64, 64, F16]], b: In[Tile[64, 64, F16]], c: Out[Tile[64, 64, F32]]):
    tl.store(c, tl.matmul(tl.load(a), tl.load(b)))


def one_matmul(kern, dtype):
    A, B = Tensor(shape=(1, 64, 64), dtype=dtype), Tensor(shape=(1, 64, 64), dtype=dtype)
    C = Tensor(shape=(1, 64, 64), dtype=F32)

    @workload
    def w():
        kern(a=A[0], b=B[0], c=C[0])

    return w()


GEMM_BUSY = {"AIC.MTE2": 90.0, "AIC.CUBE": 80.0, "AIC.FIX": 3.0}
WHAT_IF = ascend_910b.replace(l0c_to_gm=TransferCost(10, 48), l2_write_back=False)


def test_the_gemm_band_holds_on_the_measured_preset_with_f16_inputs_only():
    assert error_band(GEMM_BUSY, ModelUse(M, ("F16",))) is BANDS[GEMM]
    assert error_band(GEMM_BUSY, ModelUse(M, ("BF16", "F16"))) is BANDS[GEMM]
    assert error_band(GEMM_BUSY, ModelUse(M.replace(name="copy"), ("F16",))) is BANDS[GEMM]  # same constants
    assert error_band(GEMM_BUSY) is BANDS[GEMM]  # (no run to say otherwise)
    head = ("GEMM-like: unvalidated (the band was measured on ascend_910b with F16/BF16 cube inputs, NPU_MODEL §5.1 "
            "V1; this run uses ")
    assert error_band(GEMM_BUSY, ModelUse(M, ("F32",))).text() == head + "ascend_910b with F32 cube inputs)"
    assert error_band(GEMM_BUSY, ModelUse(ascend_910b4, ("F16",))).text() == head + "ascend_910b4 with F16 cube inputs)"
    assert error_band(GEMM_BUSY, ModelUse(WHAT_IF, ("F16",))).text() == \
        head + "ascend_910b (l2_write_back, l0c_to_gm changed from ascend_910b) with F16 cube inputs)"


@pytest.mark.parametrize("machine, dtype, band", [
    ("ascend_910b", F16, None),
    ("ascend_910b", F32, "ascend_910b with F32 cube inputs"),
    ("ascend_910b4", F16, "ascend_910b4 with F16 cube inputs"),
    (WHAT_IF, F32, "ascend_910b (l2_write_back, l0c_to_gm changed from ascend_910b) with F32 cube inputs"),
])
def test_a_run_carries_the_band_of_its_machine_and_dtypes(machine, dtype, band):
    kern = mm16 if dtype is F16 else mm32
    stats = one_matmul(kern, dtype).compile(machine=machine, compute_values=False).execute().stats()
    if band is None:
        assert stats.error_band is BANDS[GEMM]
    else:
        assert stats.error_band.text() == ("GEMM-like: unvalidated (the band was measured on ascend_910b with F16/BF16 "
                                           f"cube inputs, NPU_MODEL §5.1 V1; this run uses {band})")
        assert f"  model error: {stats.error_band.text()}" in stats.summary().splitlines()


def test_the_fix_note_takes_the_machines_rate():
    fitted = ("FIX (L0C -> GM) was busy 25 % of the run: its 75 B/cycle is a fit to one GEMM's stores (V1, 128 KiB "
              "fp32 tiles); no vendor document gives the Fixpipe rate (CANN's tiling estimator assumes ~106 B/cycle), "
              "so this part of the time is unvalidated")
    assert model_notes({"AIC.FIX": 25.0}) == [fitted]
    assert model_notes({"AIC.FIX": 25.0}, ModelUse(M)) == [fitted]
    assert model_notes({"AIC.FIX": 25.0}, ModelUse(WHAT_IF)) == [
        "FIX (L0C -> GM) was busy 25 % of the run: its 10 B/cycle is a what-if (the preset's 75 B/cycle is a fit to "
        "one GEMM's stores, V1); no vendor document gives the Fixpipe rate (CANN's tiling estimator assumes ~106 "
        "B/cycle), so this part of the time is unvalidated"]


def test_the_fitted_and_estimated_terms_are_noted_only_when_in_play():
    assert model_notes({}, ModelUse(M)) == []  # nothing ran instructions: no launch
    assert model_notes({}, ModelUse(M, launched=True)) == [LAUNCH_NOTE, DISPATCH_NOTE]
    assert model_notes({}, ModelUse(M.replace(block_dispatch_cycles=0), launched=True)) == [LAUNCH_NOTE]
    assert model_notes({}, ModelUse(M.replace(launch_overhead_cycles=5000, block_dispatch_cycles=300),
                                    launched=True)) == [
        "launch: 5000 cycles before the first instruction, a what-if (the preset's 10900 is a fit to onboard FA runs "
        "(NPU_MODEL §3.5))",
        "block dispatch: 300 cycles per AI core used, a what-if (the preset's 150 is an estimate with no source "
        "(NPU_MODEL §3.5))"]


def test_a_data_parallel_vector_run_notes_the_launch_and_dispatch():
    stats = four_relus(DispatchPolicy.round_robin(4)).compile(compute_values=False).execute().stats()
    assert stats.notes == [LAUNCH_NOTE, DISPATCH_NOTE]
    assert f"  note: {DISPATCH_NOTE}" in stats.summary().splitlines()


def test_pinned_costs_get_no_model_notes():
    program = four_relus(DispatchPolicy.round_robin(4)).compile(cost_model=PinnedCosts(default_cycles=5))
    stats = program.execute().stats()
    assert stats.notes == []


@kernel
def produce(x: In[Tile[64, 64, F32]], t_: Out[Tile[64, 64, F32]]):
    tl.store(t_, tl.relu(tl.load(x)))


@kernel
def take(t_: In[Tile[64, 64, F32]], y: Out[Tile[64, 64, F32]]):
    tl.store(y, tl.exp(tl.load(t_)))


def handoff(reader, aiv):
    """Two producers write T[0], T[1]; two readers read T[reader(t)]: on 2 cores round robin, task 2 (core 0)
    reads T[0] written by task 0 on core 0 when reader is t, T[1] written on core 1 when reader is 1 - t; ``aiv``
    picks each task's AIV (``.vector_unit``)."""
    X, T, Y = (Tensor(shape=(2, 64, 64), dtype=F32) for _ in range(3))

    @workload
    def w():
        for t in P(Dense[2]()):
            produce[t](x=X[t], t_=T[t])
        for t in P(Dense[2]()):
            take[t](t_=T[reader(t)], y=Y[t])

    return w().dispatch(DispatchPolicy.round_robin(2)).vector_unit(aiv)


def test_a_data_parallel_handoff_between_cores_is_noted():
    """F2: the reader on the other core pays no flag latency; the notes say a comparison with a pipeline is tilted."""
    crossed = handoff(lambda t: 1 - t, 0).compile(compute_values=False).execute().stats()
    assert crossed.notes == [LAUNCH_NOTE, DISPATCH_NOTE, CROSS_NOTE]
    other_aiv = handoff(lambda t: t, lambda t: t.id // 2).compile(compute_values=False).execute().stats()
    assert other_aiv.notes == [LAUNCH_NOTE, DISPATCH_NOTE, CROSS_NOTE]  # (AIV0 -> AIV1 of one core: units apart)
    same_unit = handoff(lambda t: t, 0).compile(compute_values=False).execute().stats()
    assert same_unit.notes == [LAUNCH_NOTE, DISPATCH_NOTE]


@pytest.mark.parametrize("place, noted", [({"p": 0, "c": 1}, True), ({"p": 0, "c": (0, 1)}, True),
                                          ({"p": 0, "c": 0}, False)], ids=["cores", "aivs", "same-aiv"])
def test_a_pipeline_notes_l_chan_when_a_hop_crosses_cores_or_units(place, noted):
    X, T, Y = (Tensor(shape=(3, 64, 64), dtype=F32) for _ in range(3))
    ch = Channel(name="c", depth=2)
    p = process("p").produces(ch).body(for_each(Dense[3](), lambda t: send(ch, task(produce, [t],
                                                                                      {"x": X[t], "t_": T[t]}))))
    c = process("c").consumes(ch).body(consume(ch, lambda t: task(take, [t], {"t_": T[t], "y": Y[t]})))
    stats = connect(p, c).place(place).compile(compute_values=False).execute().stats()
    assert stats.notes == [LAUNCH_NOTE, DISPATCH_NOTE] + ([CHANNEL_NOTE] if noted else [])


def test_an_accumulator_loaded_from_gm_notes_its_undocumented_path():
    """F9: tl.matmul(a, b, tl.load(c)) moves c L1 -> L0C on MTE1, a path NPU_MODEL does not have."""
    @kernel
    def mma(a: In[Tile[64, 64, F16]], b: In[Tile[64, 64, F16]], c: InOut[Tile[64, 64, F32]]):
        tl.store(c, tl.matmul(tl.load(a), tl.load(b), tl.load(c)))

    A, B, C = Tensor(shape=(1, 64, 64), dtype=F16), Tensor(shape=(1, 64, 64), dtype=F16), Tensor(shape=(1, 64, 64),
                                                                                                  dtype=F32)

    @workload
    def w():
        mma(a=A[0], b=B[0], c=C[0])

    stats = w().compile(compute_values=False).execute().stats()
    assert stats.notes[-1] == ("an accumulator loaded from GM reaches L0C from L1 on MTE1 at the L1 -> L0A rate (256 "
                               "B/cycle): NPU_MODEL documents no such path, an approximation")
    plain = one_matmul(mm16, F16).compile(compute_values=False).execute().stats()
    assert not any("accumulator" in n for n in plain.notes)
