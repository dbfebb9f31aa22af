"""Bad input to Machine constants, data-parallel on-chip state and run-time placements: refused with a clear error."""
import inspect

import numpy as np
import pytest
from source_lines import here

from ptort_lab import Dense, DType, In, InOut, Location, Out, P, Tensor, Tile, for_each, kernel, tl, workload
from ptort_lab.csp import Channel, connect, consume, process, send
from ptort_lab.dsl.workload import Task
from ptort_lab.errors import PtortTypeError, PtortValueError, SimulationError
from ptort_lab.sim.machine import TransferCost, VectorCost, ascend_910b
from ptort_lab.sim.on_chip import UnitWrites
from ptort_lab.sim.placement import process_cores
from ptort_lab.sim.runner import PinnedCosts, RunOptions, simulate

F32 = DType.F32
T = Tile[64, 64, F32]
BIG = 2**53



# -- Finding 8: Machine constants have upper bounds, percentages and alignments are checked ---------------------------
@pytest.mark.parametrize("field, bad, shown", [
    ("launch_overhead_cycles", 2**62, "4611686018427387904"),
    ("block_dispatch_cycles", 2**70, "an int of 71 bits"),
    ("hbm_read_latency_cycles", BIG + 1, str(BIG + 1)),
    ("channel_latency_cycles", np.uint64(2**60), str(2**60)),
    ("cube_fp32_cycles_per_fractal", BIG + 1, str(BIG + 1)),
    ("row_reduce_per_row_cycles", 10**30, "an int of 100 bits"),
])
def test_cycle_constants_are_capped_at_2_pow_53(field, bad, shown, where):
    """A cycle count past 2**53 used to run and give a makespan past what a trace can save; now refused."""
    with pytest.raises(PtortValueError) as e:
        line = here() + 1
        ascend_910b.replace(**{field: bad})
    msg = where(e, line)
    assert e.value.what == f"Machine 'ascend_910b': {field} must be at most 2**53 (cycles), got {shown}."
    assert "exact only up to 2**53" in msg and "or another value >= " in msg and "and <= 2**53" in msg


def test_the_cap_itself_is_accepted_and_the_presets_still_pass():
    """2**53 is allowed (as task(cycles=...) allows it), and every preset value passes the new rules."""
    m = ascend_910b.replace(launch_overhead_cycles=BIG, nd2nz_efficiency_pct=100, transfer_align_bytes=64,
                            gm_to_ub=TransferCost(60, BIG), vec_binary=VectorCost(BIG, BIG, BIG))
    assert (m.launch_overhead_cycles, m.nd2nz_efficiency_pct, m.transfer_align_bytes) == (BIG, 100, 64)
    assert ascend_910b.replace(nd2nz_efficiency_pct=1, transfer_align_bytes=np.int64(1)).transfer_align_bytes == 1


@pytest.mark.parametrize("bad", [101, 1000, np.int64(200)], ids=repr)
def test_a_percentage_is_at_most_100(bad, where):
    """nd2nz_efficiency_pct=1000 used to be accepted (a load into L1 ten times faster than the plain one)."""
    with pytest.raises(PtortValueError) as e:
        line = here() + 1
        ascend_910b.replace(nd2nz_efficiency_pct=bad)
    msg = where(e, line)
    assert e.value.what == f"Machine 'ascend_910b': nd2nz_efficiency_pct must be at most 100 (percent), got {int(bad)}."
    assert "A percentage is at most 100. Use the ascend_910b preset's 75 or another value >= 1 and <= 100." in msg
    with pytest.raises(PtortValueError, match=r"nd2nz_efficiency_pct must be an int >= 1 \(percent\), got 0\."):
        ascend_910b.replace(nd2nz_efficiency_pct=0)


@pytest.mark.parametrize("bad", [3, 48, 100, np.int32(24)], ids=repr)
def test_the_transfer_alignment_is_a_power_of_two(bad, where):
    """transfer_align_bytes=3 used to be accepted: transfers were rounded up to 3-byte blocks."""
    with pytest.raises(PtortValueError) as e:
        line = here() + 1
        ascend_910b.replace(transfer_align_bytes=bad)
    msg = where(e, line)
    assert e.value.what == (f"Machine 'ascend_910b': transfer_align_bytes must be a power of two (bytes), got "
                            f"{int(bad)}.")
    assert "Use the ascend_910b preset's 32 or another value >= 1, a power of two." in msg


@pytest.mark.parametrize("make, what", [
    (lambda: TransferCost(60, 2**80), "TransferCost(60, 1208925819614629174706176): fixed_cycles must be at most "
                                      "2**53 (cycles), got an int of 81 bits."),
    (lambda: TransferCost(60, BIG + 1), f"TransferCost(60, {BIG + 1}): fixed_cycles must be at most 2**53 (cycles), "
                                        f"got {BIG + 1}."),
    (lambda: VectorCost(10, 2**60, 14), f"VectorCost(10, {2**60}, 14): slope_cycles must be at most 2**53 (cycles), "
                                        f"got {2**60}."),
], ids=["transfer-2**80", "transfer-2**53+1", "vector-2**60"])
def test_transfer_and_vector_cycles_are_capped(make, what, where):
    """TransferCost(60, 2**80) used to run, giving 'overlap 1.0e22 %' and a trace that could not be saved."""
    with pytest.raises(PtortValueError) as e:
        make()
    msg = where(e, make.__code__.co_firstlineno)
    assert e.value.what == what
    assert "Use a value >= 0 and <= 2**53;" in msg


@pytest.mark.parametrize("bad, exc", [(0, PtortValueError), (-60, PtortValueError), (0.5, PtortTypeError)], ids=repr)
def test_transfer_bandwidth_must_be_positive(bad, exc):
    """bytes_per_cycle > 0 (an int >= 1): a path that moves nothing per cycle never finishes."""
    with pytest.raises(exc, match=r"bytes_per_cycle must be an int >= 1 \(bytes per cycle\)"):
        TransferCost(bad, 118)


# -- Finding 4: data-parallel UB state read on the AIV that did not write it ------------------------------------------
@kernel
def copy(src: In[T], dst: Out[T]):
    """Copy one tile."""
    tl.store(dst, tl.load(src))


@kernel(cycles=100)
def pinned_copy(src: In[T], dst: Out[T]):
    """Copy one tile, its time pinned (its values are still computed)."""
    tl.store(dst, tl.load(src))


@kernel
def accumulate(x: In[T], acc: InOut[T]):
    """acc += x."""
    tl.store(acc, tl.add(tl.load(acc), tl.load(x)))


def state_round_trip(writer=copy, reader_index=None):
    """Three tiles into UB state, then read back: tasks go to AIV0, AIV1, AIV0, then AIV1, AIV0, AIV1."""
    x = np.random.default_rng(0).random((3, 64, 64), dtype=np.float32)
    X, Y = Tensor(data=x), Tensor(data=np.zeros_like(x))
    S = Tensor(shape=(3, 64, 64), dtype=F32, location=Location.UB, name="S")

    @workload
    def w():
        for t in P.seq(Dense[3]()):
            writer[t](src=X[t], dst=S[t])
        for t in P.seq(Dense[3]()):
            copy[t](src=S[t] if reader_index is None else S[reader_index], dst=Y[t])

    return w(), x, Y


READ_LINE = inspect.getsource(state_round_trip).splitlines()[11].strip()


@pytest.mark.parametrize("values", [True, False], ids=["values", "timing-only"])
def test_reading_a_tile_only_the_other_aiv_wrote_is_refused(values):
    """Each AIV keeps its own UB copy: task 3 (AIV1) would read zeros where task 0 (AIV0) wrote tile 0. It used to
    run and leave Y all zeros; now refused (timing-only runs too, as a pipeline's same mistake is)."""
    w, _, Y = state_round_trip()
    with pytest.raises(SimulationError) as e:
        w.compile(compute_values=values).execute()
    assert e.value.what == ("task 3 (copy) reads tile [0] of on-chip tensor 'S' on core 0 AIV1, but only AIV0 of "
                            "that core wrote it (task 0 (copy)): each AIV keeps its own copy of a UB tensor, so the "
                            "task would read AIV1's untouched copy (zeros).")
    assert ".vector_unit(lambda t: ...)" in e.value.hint and "global memory" in e.value.hint
    assert e.value.where is not None and e.value.where.code == READ_LINE
    assert "core 0, tile 0" in str(e.value)
    assert not Y.data.any()  # nothing written by a refused run


@pytest.mark.parametrize("unit", [0, 1, lambda t: t.params[0] % 2], ids=["aiv0", "aiv1", "per-tile"])
def test_writer_and_reader_on_one_aiv_give_the_right_values(unit):
    """The fixes the hint offers run and give Y == X."""
    w, x, Y = state_round_trip()
    w.vector_unit(unit).compile().execute()
    np.testing.assert_array_equal(Y.data, x)


def test_a_negative_index_names_the_same_tile():
    """S[-1] is S[2]: written on AIV0 (task 2), read on AIV1 (task 3): refused like S[2] would be."""
    w, _, _ = state_round_trip(reader_index=-1)
    with pytest.raises(SimulationError, match=r"task 3 \(copy\) reads tile \[-1\] of on-chip tensor 'S' on core 0 "
                                              r"AIV1, but only AIV0 of that core wrote it \(task 2 \(copy\)\)"):
        w.compile(compute_values=False).execute()


def test_a_pinned_writer_is_seen_by_the_value_check():
    """A pinned kernel's values land in AIV0's copy; an unpinned reader of tile 1 runs on AIV1 (the second vector
    task): the value run refuses it too."""
    w, _, _ = state_round_trip(writer=pinned_copy)
    with pytest.raises(SimulationError, match=r"task 4 \(copy\) reads tile \[1\] of on-chip tensor 'S' on core 0 "
                                              r"AIV1, but only AIV0 of that core wrote it \(task 1 \(pinned_copy\)\)"):
        w.compile().execute()


def test_an_accumulator_split_over_two_aivs_is_refused():
    """acc += x on AIV0 then AIV1: the second would add to AIV1's zeros, not to the first's sum."""
    X = Tensor(data=np.ones((2, 64, 64), np.float32))
    ACC = Tensor(data=np.full((64, 64), 5, np.float32), location=Location.UB, name="acc")

    @workload
    def w():
        for t in P(Dense[2]()):
            accumulate[t](x=X[t], acc=ACC)

    with pytest.raises(SimulationError, match=r"task 1 \(accumulate\) reads on-chip tensor 'acc' on core 0 AIV1, "
                                              r"but only AIV0 of that core wrote it \(task 0 \(accumulate\)\).*"
                                              r"untouched copy \(the tensor's data\)\."):
        w().compile().execute()
    prog = w().vector_unit(0).compile()
    prog.execute()
    np.testing.assert_array_equal(prog.on_chip(ACC)[(0, "AIV0")], np.full((64, 64), 7, np.float32))


def test_tiles_written_and_read_on_their_own_aiv_are_fine():
    """Each AIV writing and reading only its own tiles is the normal case: no refusal."""
    x = np.random.default_rng(1).random((4, 64, 64), dtype=np.float32)
    X, Y = Tensor(data=x), Tensor(data=np.zeros_like(x))
    S = Tensor(shape=(4, 64, 64), dtype=F32, location=Location.UB, name="S")

    @workload
    def w():
        for t in P.seq(Dense[4]()):
            copy[t](src=X[t], dst=S[t])
            copy[t](src=S[t], dst=Y[t])

    w().vector_unit(lambda t: t.params[0] % 2).compile().execute()
    np.testing.assert_array_equal(Y.data, x)


def _task(i: int) -> Task:
    return Task(kernel="k", params=[i], resources={}, id=i)  # a kernel named by string: read and written


@pytest.mark.parametrize("written, read, refused", [
    ((), (1,), True),  # the whole tensor written, one tile of it read
    ((1,), (), True),  # one tile written, the whole tensor read
    ((1,), (0,), False),  # another tile
    ((1, 2), (1,), True),  # a sub-tile of the read tile
    ((-1,), (3,), True),  # the same tile named from the end
])
def test_overlapping_tiles_count_as_written(written, read, refused):
    """A tile overlaps what another unit wrote when one index is a prefix of the other (negatives counted from the
    end)."""
    S = Tensor(shape=(4, 8, 64, 64), dtype=F32, location=Location.UB, name="S")
    writes = UnitWrites()
    writes.touch(_task(0), "s", S, written, 0, "AIV0")
    if refused:
        with pytest.raises(SimulationError, match=r"task 1 \(k\) reads .*on-chip tensor 'S' on core 0 AIV1, but only "
                                                  r"AIV0 of that core wrote it \(task 0 \(k\)\)"):
            writes.touch(_task(1), "s", S, read, 0, "AIV1")
    else:
        writes.touch(_task(1), "s", S, read, 0, "AIV1")
    writes.touch(_task(2), "s", S, read, 1, "AIV1")  # another core: its own copies, nothing to refuse


# -- Finding 11: run-time placements (compile(placement=...)) ---------------------------------------------------------
def two_stage():
    """A two-process pipeline a -> b and its Process objects."""
    X, Y, Z = (Tensor(data=np.ones((2, 64, 64), np.float32)) for _ in range(3))
    q = Channel("q", depth=2)
    a = process("a").produces(q).body(for_each(Dense[2](), lambda t: send(q, copy[t](src=X[t], dst=Y[t]))))
    b = process("b").consumes(q).body(consume(q, lambda t: copy[t](src=Y[t], dst=Z[t])))
    return connect(a, b), a, b


def test_process_objects_as_keys_are_read_by_name():
    """{a: 0, b: 0} used to crash sorting Process objects; {a: 0} said 'unknown process(es) [Process('a')]'."""
    pipe, a, b = two_stage()
    procs = [a, b]
    assert process_cores(procs, {a: 0, b: 0}) == ({"a": 0, "b": 0}, {})
    assert process_cores(procs, {a: 3}) == ({"a": 3, "b": 0}, {})
    assert process_cores(procs, {a: np.int64(0), "b": (0, 1)}) == ({"a": 0, "b": 0}, {"b": 1})
    run = simulate(pipe, PinnedCosts(), RunOptions(placement={a: 2, b: 2}, compute_values=False))
    assert {s.core for s in run.trace.spans} == {2}
    assert pipe.compile(placement={a: 0, b: 0}, compute_values=False).execute().stats.total_cycles > 0


@pytest.mark.parametrize("bad, exc, what", [
    (np.array([0, 0]), PtortTypeError, "placement must be None, 'shared' or a dict process -> core, got ndarray "
                                       "array([0, 0])."),
    ([0, 0], PtortTypeError, "placement must be None, 'shared' or a dict process -> core, got list [0, 0]."),
    (0, PtortTypeError, "placement must be None, 'shared' or a dict process -> core, got int 0."),
    ("sharde", PtortValueError, "the only placement string is 'shared' (every process on one core), got 'sharde'."),
    ({3: 0}, PtortTypeError, "a placement key is a process or its name, got int 3."),
    ({"a": 0, "c": 1}, PtortValueError, "placement names unknown process(es) ['c']."),
    ({"a": -1}, PtortValueError, "placement puts process 'a' on -1; cores and AIVs are numbered from 0."),
    ({"a": (0, -1)}, PtortValueError, "placement puts process 'a' on (0, -1); cores and AIVs are numbered from 0."),
    ({"a": "core0"}, PtortValueError, "placement puts process 'a' on 'core0'; a place is a core (int) or (core, aiv) "
                                      "with two ints."),
], ids=["ndarray", "list", "int", "typo", "int-key", "unknown", "negative-core", "negative-aiv", "str-core"])
def test_bad_run_time_placements_are_refused(bad, exc, what):
    """np.array placements used to raise numpy's ambiguous-truth ValueError; each bad form is a ptort_lab error."""
    pipe, a, b = two_stage()
    with pytest.raises(exc) as e:
        simulate(pipe, PinnedCosts(), RunOptions(placement=bad, compute_values=False))
    assert e.value.what == what
    assert e.value.hint


def test_a_process_placed_twice_or_from_another_pipeline_is_refused():
    """{a: 0, "a": 1} gives two places to one process; a Process of another pipeline is not this one's."""
    _, a, b = two_stage()
    _, other, _ = two_stage()
    with pytest.raises(PtortValueError, match=r"placement places process 'a' twice \(as a Process and by its name\?\)"):
        process_cores([a, b], {a: 0, "a": 1})
    with pytest.raises(PtortValueError, match=r"placement places process 'a', which is not one of this pipeline's "
                                              r"processes \('a', 'b'\)\."):
        process_cores([a, b], {other: 0})


def test_a_negative_index_waits_for_the_same_tiles_write():
    """On one AIV, reading S[-1] after writing S[2] waits for that write exactly as reading S[2] does (the timing
    model keys a resident tile by its normalised index): the two runs' spans are equal."""
    spans = []
    for index in (2, -1):
        w, x, Y = state_round_trip(reader_index=index)
        program = w.vector_unit(0).compile(compute_values=False)
        program.execute()
        spans.append([(s.lane, s.name, s.start, s.end) for s in program.trace().spans])
    assert spans[0] == spans[1]


def test_a_pinned_writer_lands_on_the_aiv_vector_unit_names():
    """.vector_unit(1) puts a pinned (cycles=) writer's values in AIV1's copy too, so the reader on AIV1 sees them
    (it used to land on AIV0 whatever .vector_unit said, and the value check refused the run)."""
    w, x, Y = state_round_trip(writer=pinned_copy)
    w.vector_unit(1).compile().execute()
    np.testing.assert_array_equal(Y.data, x)


def test_the_twin_of_a_pipeline_with_ub_state_keeps_it_on_one_aiv():
    """A pipeline whose process keeps a running sum in UB: its data-parallel twin (explore.data_parallel_twin, what
    %%ptort and the explorer run beside it) runs a core's vector tasks on AIV0, where the pipeline keeps that state,
    instead of dealing them to both AIVs (whose second copy the refusal above would catch); on one core its sum is
    the pipeline's."""
    from ptort_lab.explore import data_parallel_twin

    x = np.random.default_rng(1).random((6, 64, 64), dtype=np.float32)
    X = Tensor(data=x)

    def build():
        acc = Tensor(shape=(64, 64), dtype=F32, location=Location.UB, name="acc")
        p = process("sum").body(for_each(Dense[6](), lambda t: accumulate[t](x=X[t], acc=acc)))
        return connect(p), acc

    pipeline, acc = build()
    program = pipeline.compile()
    program.execute()
    (piped,) = program.on_chip(acc).values()
    twin = data_parallel_twin(pipeline, 1).compile()
    twin.execute()
    (twinned,) = twin.on_chip(acc).values()
    np.testing.assert_allclose(twinned, x.sum(axis=0), rtol=1e-6)
    np.testing.assert_array_equal(twinned, piped)
