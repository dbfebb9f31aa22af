"""Bad Machine constants and compile() options raise ptort_lab errors naming the constant, the value and the fix."""
import dataclasses
import math

import numpy as np
import pytest
from source_lines import here

from ptort_lab import Dense, DType, In, Out, P, Tensor, Tile, kernel, tl, workload
from ptort_lab.errors import PtortError, PtortTypeError, PtortValueError
from ptort_lab.sim.costs import NpuCostModel
from ptort_lab.sim.machine import (
    _MACHINE_RULES,
    Machine,
    TransferCost,
    VectorCost,
    ascend_910b,
    ascend_910b4,
    get_machine,
)
from ptort_lab.sim.runner import PinnedCosts

F32 = DType.F32
LATENCY = "__pto_wsp_channel_latency_cycles"



# -- Machine constants ------------------------------------------------------------------------------------------------
NUMERIC = [f.name for f in dataclasses.fields(Machine) if f.type in ("int", "float")]
COSTS = [f.name for f in dataclasses.fields(Machine) if f.type in ("TransferCost", "VectorCost")]


def test_every_numeric_constant_has_a_rule():
    """The rule table covers every int/float constant, so a new constant cannot silently skip validation."""
    assert sorted(_MACHINE_RULES) == sorted(NUMERIC)


def test_presets_still_validate_and_replace_still_works():
    """The sourced presets pass their own checks; a valid replace() keeps working."""
    for m in (ascend_910b, ascend_910b4):
        assert dataclasses.replace(m) == m
    v = ascend_910b.replace(hbm_bytes_per_cycle=530, clock_hz=2_000_000_000, channel_latency_cycles=0)
    assert (v.hbm_bytes_per_cycle, v.clock_hz, v.channel_latency_cycles) == (530, 2_000_000_000, 0)


@pytest.mark.parametrize("field, bad, rule, fix", [
    ("hbm_bytes_per_cycle", 0, "must be an int >= 1 (bytes per cycle)", "preset's 850"),
    ("hbm_bytes_per_cycle", -850, "must be an int >= 1 (bytes per cycle)", "preset's 850"),
    ("l2_bytes_per_cycle", 0, "must be an int >= 1 (bytes per cycle)", "preset's 2550"),
    ("l2_port_bytes_per_cycle", 0, "must be an int >= 1 (bytes per cycle)", "preset's 128"),
    ("hbm_peak_bytes_per_s", 0.0, "must be a number >= 1 (bytes per second)", "preset's 1.6e12"),
    ("clock_hz", 0, "must be a number > 0 (Hz)", "preset's 1.8e9"),
    ("clock_hz", -1.8e9, "must be a number > 0 (Hz)", "preset's 1.8e9"),
    ("clock_hz", math.inf, "must be a number > 0 (Hz)", "preset's 1.8e9"),
    ("clock_hz", math.nan, "must be a number > 0 (Hz)", "preset's 1.8e9"),
    ("num_cores", 0, "must be an int >= 1 (AI cores)", "preset's 24"),
    ("aiv_per_core", 0, "must be an int >= 1 (AIVs per AI core)", "preset's 2"),
    ("ub_bytes", 0, "must be an int >= 1 (bytes)", "preset's 196608 (192 * KIB)"),
    ("l2_bytes", -1, "must be an int >= 1 (bytes)", "preset's 201326592 (192 * MIB)"),
    ("hbm_read_latency_cycles", -347, "must be an int >= 0 (cycles)", "silently faster"),
    ("l2_hit_latency_cycles", -1, "must be an int >= 0 (cycles)", "preset's 236"),
    ("launch_overhead_cycles", -10_900, "must be an int >= 0 (cycles)", "preset's 10900"),
    ("channel_latency_cycles", -1000, "must be an int >= 0 (cycles)", "preset's 1000"),
    ("cube_head_cycles", -6, "must be an int >= 0 (cycles)", "preset's 6"),
    ("row_reduce_fixed_cycles", -50, "must be an int >= 0 (cycles)", "preset's 50"),
    ("vector_repeat_bytes", 0, "must be an int >= 1 (bytes)", "preset's 256"),
    ("transfer_align_bytes", 0, "must be an int >= 1 (bytes)", "preset's 32"),
    ("cube_fractal_rows", 0, "must be an int >= 1 (rows)", "preset's 16"),
    ("cube_fractal_k_bytes", 0, "must be an int >= 1 (bytes)", "preset's 32"),
    ("l0_pingpong_slices", 0, "must be an int >= 1 (slices)", "preset's 2"),
])
def test_out_of_range_constant(field, bad, rule, fix, where):
    """An out-of-range constant names the machine, the constant, the value, the rule and a fix (at the user's line)."""
    with pytest.raises(PtortValueError) as e:
        line = here() + 1
        ascend_910b.replace(**{field: bad})
    msg = where(e, line)
    assert f"Machine 'ascend_910b': {field} {rule}, got {bad!r}." in msg
    assert fix in msg


@pytest.mark.parametrize("field, bad, fix", [
    ("hbm_bytes_per_cycle", "850", "preset's 850"),
    ("num_cores", True, "preset's 24"),
    ("num_cores", 24.5, "preset's 24"),
    ("ub_bytes", 1024.0, "Pass an int: 1024 instead of 1024.0"),
    ("clock_hz", "1.8GHz", "preset's 1.8e9"),
    ("clock_hz", None, "preset's 1.8e9"),
    ("channel_latency_cycles", False, "preset's 1000"),
])
def test_wrong_type_constant(field, bad, fix, where):
    """A str, bool or (for int constants) float is a PtortTypeError naming its type and value."""
    with pytest.raises(PtortTypeError) as e:
        line = here() + 1
        ascend_910b.replace(**{field: bad})
    msg = where(e, line)
    assert f"Machine 'ascend_910b': {field} must be" in msg
    assert f"got {type(bad).__name__} {bad!r}." in msg and fix in msg


def test_constructor_is_checked_too_and_names_the_machine(where):
    """Machine(...) itself is checked, and the message names that machine."""
    with pytest.raises(PtortValueError, match=r"Machine 'tiny': num_cores must be an int >= 1 \(AI cores\), got 0") \
            as e:
        line = here() + 1
        Machine(name="tiny", num_cores=0)
    where(e, line)
    with pytest.raises(PtortTypeError, match=r"Machine name must be a non-empty str, got ''"):
        ascend_910b.replace(name="")


def test_numpy_scalars_are_accepted_as_plain_numbers():
    """numpy ints/floats (from a sweep) are valid and stored as Python ints/floats."""
    m = ascend_910b.replace(num_cores=np.int64(20), clock_hz=np.float32(1.5e9), hbm_bytes_per_cycle=np.int32(530))
    assert type(m.num_cores) is int and type(m.clock_hz) is float and type(m.hbm_bytes_per_cycle) is int
    assert m == ascend_910b.replace(num_cores=20, clock_hz=1.5e9, hbm_bytes_per_cycle=530)


@pytest.mark.parametrize("make, exc, match", [
    (lambda: TransferCost(0, 200), PtortValueError,
     r"TransferCost\(0, 200\): bytes_per_cycle must be an int >= 1 \(bytes per cycle\), got 0\."),
    (lambda: TransferCost(60, -200), PtortValueError,
     r"TransferCost\(60, -200\): fixed_cycles must be an int >= 0 \(cycles\), got -200\."),
    (lambda: TransferCost(60.5, 200), PtortTypeError, r"bytes_per_cycle must be an int >= 1 .*got float 60.5\."),
    (lambda: VectorCost(10, -2, 14), PtortValueError,
     r"VectorCost\(10, -2, 14\): slope_cycles must be an int >= 0 \(cycles\), got -2\."),
    (lambda: VectorCost("10", 2, 14), PtortTypeError, r"head_cycles must be an int >= 0 \(cycles\), got str '10'"),
], ids=["transfer-bw-0", "transfer-fixed-neg", "transfer-float", "vector-slope-neg", "vector-str"])
def test_bad_transfer_and_vector_costs(make, exc, match, where):
    """TransferCost / VectorCost check their own fields, pointing at the line that built them, with an example."""
    with pytest.raises(exc, match=match) as e:
        make()
    msg = where(e, make.__code__.co_firstlineno)
    assert "TransferCost(bytes_per_cycle=60, fixed_cycles=200)" in msg or "VectorCost(head_cycles=10" in msg


@pytest.mark.parametrize("field", COSTS)
def test_cost_fields_need_their_class(field, where):
    """A data path or vector class given as a tuple is a PtortTypeError showing the preset's value."""
    with pytest.raises(PtortTypeError, match=rf"Machine 'ascend_910b': {field} must be a \w+Cost, got tuple") as e:
        line = here() + 1
        ascend_910b.replace(**{field: (1, 2)})
    assert f"{field}={getattr(ascend_910b, field)!r}" in where(e, line)


def test_get_machine_needs_a_machine_or_a_name(where):
    """get_machine(3) is a PtortTypeError listing the presets; an unknown name stays a PtortValueError."""
    with pytest.raises(PtortTypeError, match=r"machine must be a Machine or a preset name, got int 3") as e:
        line = here() + 1
        get_machine(3)
    assert "'ascend_910b4'" in where(e, line)
    with pytest.raises(PtortValueError, match=r"unknown machine"):
        get_machine("ascend_910c")


# -- compile() options and set_symbol_u64 -----------------------------------------------------------------------------
@kernel
def copy(src: In[Tile[8, 8, F32]], dst: Out[Tile[8, 8, F32]]):
    """Copy an 8x8 F32 tile."""
    tl.store(dst, tl.load(src))


@pytest.fixture
def w():
    """A 2-task copy workload."""
    X, Y = Tensor(data=np.ones((2, 8, 8), np.float32)), Tensor(shape=(2, 8, 8), dtype=F32)

    @workload
    def two():
        for t in P(Dense[2]()):
            copy[t](src=X[t], dst=Y[t])

    return two()


@pytest.mark.parametrize("bad, match, fix", [
    ("pinned", r"compile\(cost_model=...\) takes a cost model, got str 'pinned' \(it has no task_timing\(\) and no "
               r"clock_hz\)", "cost_model=PinnedCosts()"),
    (42, r"takes a cost model, got int 42", "cost_model=NpuCostModel()"),
    (PinnedCosts, r"compile\(cost_model=...\) got the class PinnedCosts, not a cost model", "Call it: "
                                                                                            "cost_model=PinnedCosts()"),
    (ascend_910b, r"takes a cost model, got Machine .*\(it has no task_timing\(\)\)", "machine='ascend_910b4'"),
], ids=["str", "int", "class", "machine"])
def test_compile_rejects_a_non_cost_model(w, bad, match, fix, where):
    """cost_model= must be a CostModel instance: the message names what was passed and suggests the real ones."""
    with pytest.raises(PtortTypeError, match=match) as e:
        line = here() + 1
        w.compile(cost_model=bad)
    assert fix in where(e, line)


def test_compile_accepts_real_cost_models_and_machines(w):
    """The valid forms still compile and run."""
    assert w.compile(cost_model=PinnedCosts()).execute().stats.total_cycles == 0
    assert w.compile(cost_model=NpuCostModel(), compute_values=False).execute().stats.total_cycles > 0
    assert w.compile(machine="ascend_910b4").machine is ascend_910b4
    assert w.compile(machine=ascend_910b.replace(num_cores=4)).machine.num_cores == 4
    assert w.compile(channel_latency_cycles=np.int64(5)).run_options.channel_latency_cycles == 5


@pytest.mark.parametrize("bad, exc, match", [
    (3, PtortTypeError, r"compile\(machine=...\) takes a Machine or a preset name, got int 3"),
    (["ascend_910b"], PtortTypeError, r"takes a Machine or a preset name, got list \['ascend_910b'\]"),
    ("ascend_910b5", PtortValueError, r"unknown machine 'ascend_910b5'"),
], ids=["int", "list", "unknown-name"])
def test_compile_rejects_a_bad_machine(w, bad, exc, match, where):
    """machine= takes a Machine or a preset name, and names the presets."""
    with pytest.raises(exc, match=match) as e:
        line = here() + 1
        w.compile(machine=bad)
    assert "ascend_910b4" in where(e, line)


@pytest.mark.parametrize("bad", ["no", "yes", 0, 1, None], ids=repr)
def test_compile_values_must_be_a_bool(w, bad, where):
    """compute_values='no' used to compute values (bool('no') is True): only True/False are accepted."""
    with pytest.raises(PtortTypeError, match=rf"compile\(compute_values=...\) must be True or False, got "
                                             rf"{type(bad).__name__} ") as e:
        line = here() + 1
        w.compile(compute_values=bad)
    assert "compute_values=False for a timing-only run" in where(e, line)


@pytest.mark.parametrize("bad, exc", [(-1, PtortValueError), (-10**6, PtortValueError), (1.5, PtortTypeError),
                                      ("1000", PtortTypeError), (True, PtortTypeError)], ids=repr)
def test_compile_channel_latency_must_be_a_non_negative_int(w, bad, exc, where):
    """channel_latency_cycles= must be an int >= 0; the hint gives the 910B's calibrated 1000."""
    with pytest.raises(exc, match=r"compile\(channel_latency_cycles=...\): channel_latency_cycles must be an int >= 0 "
                                  rf"\(cycles\), got .*{bad!r}") as e:
        line = here() + 1
        w.compile(channel_latency_cycles=bad)
    assert "cross-core hop is 1000" in where(e, line)


@pytest.mark.parametrize("bad, exc", [(-10**6, PtortValueError), (-1, PtortValueError), (2.5, PtortTypeError),
                                      ("7", PtortTypeError), (None, PtortTypeError)], ids=repr)
def test_set_symbol_latency_must_be_a_non_negative_int(w, bad, exc, where):
    """set_symbol_u64(latency, -10**6) used to be accepted and broke producer/consumer order."""
    program = w.compile()
    with pytest.raises(exc, match=rf"set_symbol_u64\('{LATENCY}', ...\): channel_latency_cycles must be an int >= 0 "
                                  rf"\(cycles\), got .*{bad!r}") as e:
        line = here() + 1
        program.set_symbol_u64(LATENCY, bad)
    assert "cross-core hop is 1000" in where(e, line)
    assert program.run_options.channel_latency_cycles == 1000  # unchanged
    program.set_symbol_u64(LATENCY, np.uint64(7))
    assert program.run_options.channel_latency_cycles == 7


def test_every_error_here_is_a_ptort_error():
    """Both classes used here derive from PtortError and the matching builtin."""
    assert issubclass(PtortTypeError, (PtortError, TypeError)) and issubclass(PtortValueError, (PtortError, ValueError))
