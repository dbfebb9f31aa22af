"""NPU model edges, round 6 (hunt 5b): capacity hints that type-check and fit (compile time and run time), runs whose
times pass 2**53, and tiles larger than the whole L2."""
from __future__ import annotations

import numpy as np
import pytest
from source_lines import here, located

from ptort_lab import (
    CapacityError,
    Dense,
    DType,
    In,
    InOut,
    Location,
    Out,
    P,
    Tensor,
    Tile,
    for_each,
    kernel,
    tl,
    workload,
)
from ptort_lab.csp import Channel, connect, consume, process, send
from ptort_lab.dsl.tasks import Task
from ptort_lab.errors import PtortValueError, SimulationError
from ptort_lab.sim.capacity import fix_in_room, kernel_overflow
from ptort_lab.sim.cost_model import PinnedCosts
from ptort_lab.sim.costs import NpuCostModel
from ptort_lab.sim.limits import run_past_max_cycles
from ptort_lab.sim.machine import Buffer, TransferCost, ascend_910b
from ptort_lab.sim.memory import GlobalMemory
from ptort_lab.sim.residency import Reservation
from ptort_lab.sim.trace import Span, Trace, check_trace

F16, F32 = DType.F16, DType.F32


# -- item 2: a compile-time matmul hint offers only shapes the kernel accepts ---------------------------------------
def matmul_workload(m: int, k_a: int, k_b: int, n: int):
    """One launch of a [m, k_a] @ [k_b, n] F16 matmul (k_a != k_b only to show what the old hint led to)."""
    @kernel
    def mm(a: In[Tile[m, k_a, F16]], b: In[Tile[k_b, n, F16]], c: Out[Tile[m, n, F32]]):
        tl.store(c, tl.matmul(tl.load(a), tl.load(b)))

    A, B = Tensor(shape=(1, m, k_a), dtype=F16), Tensor(shape=(1, k_b, n), dtype=F16)
    C = Tensor(shape=(1, m, n), dtype=F32)

    @workload
    def w():
        for t in P(Dense[1]()):
            mm[t](a=A[t], b=B[t], c=C[t])

    return w()


def test_a_matmul_whose_k_equals_n_is_offered_k_on_both_operands():
    """[4096, 16] @ [16, 8] overflows L0A. The hint used to offer [4096, 8] for "every tile with 16 columns" (only
    a), which does not type-check ([4096, 8] @ [16, 8]); K is a's columns and b's rows together, and both offers
    compile and run."""
    with pytest.raises(CapacityError) as e:
        matmul_workload(4096, 16, 16, 8).compile()
    assert e.value.hint == ("Use a smaller tile than [4096, 16] (no reorder of the kernel's ops makes it fit): the "
                            "largest that fits is [2048, 16] (2048 rows instead of 4096 in a and c) or [4096, 8] (8 "
                            "instead of 16 in a's columns and b's rows).")
    matmul_workload(2048, 16, 16, 8).compile(compute_values=False).execute()
    matmul_workload(4096, 8, 8, 8).compile(compute_values=False).execute()


def test_a_matmul_whose_m_equals_k_scales_m_without_k():
    """[512, 512] @ [512, 16] overflows L1. "496 rows in every tile that has 512" also made b [496, 16]; the rows
    offer is a and c, the K offer a's columns and b's rows, and both compile."""
    with pytest.raises(CapacityError) as e:
        matmul_workload(512, 512, 512, 16).compile()
    assert e.value.hint == ("Use a smaller tile than [512, 512] (no reorder of the kernel's ops makes it fit): the "
                            "largest that fits is [496, 512] (496 rows instead of 512 in a and c) or [512, 496] (496 "
                            "instead of 512 in a's columns and b's rows).")
    matmul_workload(496, 512, 512, 16).compile(compute_values=False).execute()
    matmul_workload(512, 496, 496, 16).compile(compute_values=False).execute()


def test_a_tile_whose_sizes_the_ops_fix_is_not_offered_smaller():
    """Its rows come from two slice windows joined by a concat, its columns are split and interleaved: no smaller
    tile keeps the kernel's shapes consistent, and the hint says so instead of naming one."""
    @kernel
    def fixed(x: In[Tile[256, 256, F32]], y: Out[Tile[256, 256, F32]]):
        t = tl.concat([tl.load(x[0:128, :]), tl.load(x[128:256, :])], axis=0)
        tl.store(y, tl.interleave(tl.slice_even(t), tl.slice_odd(t)))

    X, Y = Tensor(shape=(1, 256, 256), dtype=F32), Tensor(shape=(1, 256, 256), dtype=F32)

    @workload
    def w():
        fixed[0](x=X[0], y=Y[0])

    with pytest.raises(CapacityError) as e:
        w().compile()
    assert e.value.hint == ("Split the kernel into smaller steps so fewer tiles are live at once: no smaller tile than "
                            "[256, 256] is offered (its sizes are fixed by the kernel's ops (a slice window, a "
                            "concat, tl.slice_even/odd, tl.interleave) or kept on chip as state).")


def test_only_the_dimension_the_ops_leave_free_is_offered():
    """The columns are split into two windows and joined again (fixed); the rows follow x and y (free): only a
    rows offer, named by parameter, and it compiles."""
    def build(rows: int):
        @kernel
        def halves(x: In[Tile[rows, 256, F32]], y: Out[Tile[rows, 256, F32]]):
            t = tl.load(x)
            tl.store(y, tl.concat([tl.exp(t[:, 0:128]), tl.exp(t[:, 128:256])], axis=1))

        X, Y = Tensor(shape=(1, rows, 256), dtype=F32), Tensor(shape=(1, rows, 256), dtype=F32)

        @workload
        def w():
            halves[0](x=X[0], y=Y[0])

        return w()

    with pytest.raises(CapacityError) as e:
        build(256).compile()
    assert e.value.hint.endswith("the largest that fits is [64, 256] (64 rows instead of 256 in x and y).")
    build(64).compile(compute_values=False).execute()


# -- item 4: the run-time hint with on-chip state is worked out and fits ---------------------------------------------
def state_kernel(state_rows: int, tile_rows: int):
    @kernel
    def k(x: In[Tile[tile_rows, 64, F32]], s: InOut[Tile[state_rows, 64, F32]], y: Out[Tile[tile_rows, 64, F32]]):
        tl.store(y, tl.mul(tl.load(x), 2.0))
        tl.store(s, tl.add(tl.load(s), 1.0))
    return k


def run_state_pipeline(state_rows: int, tile_rows: int) -> None:
    """One process whose kernel keeps an on-chip UB tensor S of [state_rows, 64] F32 beside its own tiles."""
    k = state_kernel(state_rows, tile_rows)
    X = Tensor(data=np.ones((3, tile_rows, 64), np.float32))
    Y = Tensor(shape=(3, tile_rows, 64), dtype=F32)
    S = Tensor(shape=(state_rows, 64), dtype=F32, location=Location.UB, name="S")
    connect(process("p").body(for_each(Dense[3](), lambda t: k[t](x=X[t], s=S, y=Y[t])))).compile().execute()


def ub_tensor(rows: int) -> Reservation:
    return Reservation(f"tensor 'S' f32[{rows}, 64]", rows * 64 * 4, None, "process 'p'")


def test_with_state_reserved_the_hint_names_a_tile_and_a_state_size_that_both_fit():
    """S [740, 64] F32 leaves 7 KiB of UB; the kernel's [64, 64] tiles need 16 KiB. "Half the rows" (32) still
    failed; the largest tile that fits is 16 rows, and the largest S that leaves room is 704 rows (180224 B)."""
    task = Task("k", [0], {}, kernel_ref=state_kernel(740, 64))
    hint = fix_in_room(task, ascend_910b, Buffer.UB, {Buffer.UB: [ub_tensor(740)]}, (("s", Buffer.UB),))
    assert hint == ("The on-chip state reserved in UB (189440 bytes) leaves the kernel's own tiles 7168 bytes, and at "
                    "its peak the kernel holds 16384 bytes there at once. Use a smaller tile than [64, 64] (no "
                    "reorder of the kernel's ops makes it fit): the largest that fits is [16, 64] (16 rows instead "
                    "of 64 in x and y) or [64, 16] (16 columns instead of 64 in x and y). Or keep the kernel as it is "
                    "and make tensor 'S' f32[740, 64] at most 180224 bytes (it has 189440).")
    with pytest.raises(CapacityError):
        run_state_pipeline(740, 32)  # the old hint's "half the rows"
    run_state_pipeline(740, 16)  # the tile offered
    run_state_pipeline(180224 // 256, 64)  # the state size offered: 704 rows


def test_with_the_buffer_full_of_state_only_the_state_fix_is_named():
    """S fills UB exactly: no tile of the kernel fits in 0 bytes, so the hint names the state size that does."""
    task = Task("k", [0], {}, kernel_ref=state_kernel(768, 8))
    hint = fix_in_room(task, ascend_910b, Buffer.UB, {Buffer.UB: [ub_tensor(768)]}, (("s", Buffer.UB),))
    assert hint == ("The on-chip state reserved in UB (196608 bytes) leaves the kernel's own tiles 0 bytes, and at "
                    "its peak the kernel holds 2048 bytes there at once. Keep the kernel as it is and make tensor "
                    "'S' f32[768, 64] at most 194560 bytes (it has 196608), or keep less state on chip.")
    run_state_pipeline(194560 // 256, 8)


def aic_channel_pipeline(depth: int):
    """mm1 -> q (an AIC-to-AIC L1 tile channel of [128, 128] F32 slots, 64 KiB each) -> mm2, on one core."""
    TA, TO = Tile[128, 128, F16], Tile[128, 128, F32]

    @kernel
    def mm1(a: In[TA], w: In[TA], c: Out[TO]):
        tl.store(c, tl.matmul(tl.load(a), tl.load(w)))

    @kernel
    def mm2(c: In[TO], w: In[TO], d: Out[TO]):
        tl.store(d, tl.matmul(tl.load(c), tl.load(w)))

    A, W = Tensor(shape=(3, 128, 128), dtype=F16), Tensor(shape=(128, 128), dtype=F16)
    W2, D = Tensor(shape=(128, 128), dtype=F32), Tensor(shape=(3, 128, 128), dtype=F32)
    q = Channel("q", depth=depth, tile=TO)
    p1 = process("p1").produces(q).body(for_each(Dense[3](), lambda t: send(q, mm1[t](a=A[t], w=W, c=q.item))))
    p2 = process("p2").consumes(q).body(consume(q, lambda t: mm2[t](c=q.item, w=W2, d=D[t])))
    return mm1, connect(p1, p2).place({"p1": 0, "p2": 0})


def test_a_tile_channel_that_fills_l1_is_given_the_depth_that_fits():
    """Eight 64 KiB slots fill L1; mm1's loads need 64 KiB more. The hint used to say "a smaller tile (e.g. half the
    rows)"; depth 7 is what fits, and runs."""
    mm1, _ = aic_channel_pipeline(8)
    channel = Reservation("tile channel 'q' (8 x f32[128,128])", 8 * 65536, None, "processes 'p1' and 'p2'", 8, 65536)
    hint = fix_in_room(Task("mm1", [0], {}, kernel_ref=mm1), ascend_910b, Buffer.L1, {Buffer.L1: [channel]},
                       (("c", Buffer.L1),))
    assert hint == ("The on-chip state reserved in L1 (524288 bytes) leaves the kernel's own tiles 0 bytes, and at "
                    "its peak the kernel holds 65536 bytes there at once. Keep the kernel as it is and give tile "
                    "channel 'q' depth 7 or less (it has 8), or keep less state on chip.")
    with pytest.raises(CapacityError):
        aic_channel_pipeline(8)[1].compile(compute_values=False).execute()
    aic_channel_pipeline(7)[1].compile(compute_values=False).execute()


def test_when_neither_a_tile_nor_the_state_can_fit_the_hint_says_so():
    """The kernel's sizes are fixed by its ops and its peak (512 KiB) is more than UB holds: no fix is invented."""
    @kernel
    def fixed(x: In[Tile[256, 256, F32]], y: Out[Tile[256, 256, F32]]):
        t = tl.concat([tl.load(x[0:128, :]), tl.load(x[128:256, :])], axis=0)
        tl.store(y, tl.interleave(tl.slice_even(t), tl.slice_odd(t)))

    hint = fix_in_room(Task("fixed", [0], {}, kernel_ref=fixed), ascend_910b, Buffer.UB,
                       {Buffer.UB: [ub_tensor(16)]})
    assert hint.startswith("The on-chip state reserved in UB (4096 bytes) leaves the kernel's own tiles 192512 bytes")
    assert hint.endswith("Neither a smaller tile nor a smaller part of this state alone makes it fit: keep less "
                         "state on chip, or split the kernel into smaller steps.")


def test_without_state_the_run_time_hint_is_the_compile_time_one():
    """No state reserved: the same reorder or tile compile() offers (one rule, two callers)."""
    @kernel
    def copy(x: In[Tile[256, 256, F32]], y: Out[Tile[256, 256, F32]]):
        tl.store(y, tl.exp(tl.load(x)))

    overflow = kernel_overflow(copy.trace(), ascend_910b)
    assert overflow is not None
    assert fix_in_room(Task("copy", [0], {}, kernel_ref=copy), ascend_910b, Buffer.UB) == overflow.hint
    assert fix_in_room(Task("pinned", [0], {}), ascend_910b, Buffer.UB) == (
        "Make the kernel's tiles live at once fit the 196608 bytes of UB it has, or split the kernel into smaller "
        "steps.")


def test_a_run_that_overflows_beside_state_gives_the_worked_out_hint():
    """The run's own CapacityError carries fix_in_room's hint (costs.py's _capacity_error), not "half the rows"."""
    with pytest.raises(CapacityError) as e:
        run_state_pipeline(740, 64)
    assert e.value.hint.startswith("The on-chip state reserved in UB (189440 bytes) leaves the kernel's own tiles "
                                   "7168 bytes")
    assert "[16, 64] (16 rows instead of 64 in x and y)" in e.value.hint and "half the rows" not in e.value.hint


# -- item 5: a run whose times pass 2**53 stops, naming the setting ---------------------------------------------------
def test_implausible_cycle_constants_are_named_with_the_presets():
    assert ascend_910b.implausible_cycles() == []
    m = ascend_910b.replace(block_dispatch_cycles=2**53, gm_to_ub=TransferCost(60, 2**40))
    assert m.implausible_cycles() == [("gm_to_ub.fixed_cycles", 2**40, 118), ("block_dispatch_cycles", 2**53, 150)]


def test_the_run_end_error_names_the_machine_constant_or_the_latency_or_the_pinned_cycles():
    cost = NpuCostModel(ascend_910b.replace(block_dispatch_cycles=2**53))
    e = run_past_max_cycles(2**53 + 14845, cost, 0)
    assert e.what == ("the run ends at cycle 9,007,199,254,755,837, past 2**53 (9,007,199,254,740,992): a trace keeps "
                      "times as JSON numbers, exact only up to 2**53, so its times could not be kept, saved or "
                      "loaded.")
    assert e.hint == ("Machine 'ascend_910b' sets block_dispatch_cycles=9,007,199,254,740,992: more than a second "
                      "of its clock per use, where the sourced values are microseconds at most (the ascend_910b "
                      "preset's: block_dispatch_cycles=150). Use values near the preset's.")
    assert run_past_max_cycles(2**54, PinnedCosts(), 2**52).hint == (
        "channel_latency_cycles=4,503,599,627,370,496 is more than a second per hop between cores: lower it "
        "(compile(channel_latency_cycles=...), %%ptort --latency).")
    assert run_past_max_cycles(2**54, PinnedCosts(default_cycles=2**52), 0).hint == (
        "Times add up over a run's tasks: lower the cycles you pinned (task(cycles=...), @kernel(cycles=...), "
        "PinnedCosts(default_cycles=...)), the machine's cycle constants or channel_latency_cycles, or run fewer "
        "tasks.")


def test_a_run_past_2_53_cycles_stops_at_its_end_naming_block_dispatch_cycles():
    """block_dispatch_cycles=2**53 passes Machine's check (each constant is capped at 2**53) but the run's times
    are sums: it used to end at 9,007,199,254,755,837 and fail only at Trace.save, blaming the latency."""
    @kernel
    def mm(a: In[Tile[48, 40, F16]], b: In[Tile[40, 24, F16]], c: Out[Tile[48, 24, F32]]):
        tl.store(c, tl.exp(tl.matmul(tl.load(a), tl.load(b))))

    A, B = Tensor(shape=(2, 48, 40), dtype=F16), Tensor(shape=(2, 40, 24), dtype=F16)
    C = Tensor(shape=(2, 48, 24), dtype=F32)

    @workload
    def w():
        for t in P(Dense[2]()):
            mm[t](a=A[t], b=B[t], c=C[t])

    program = w().compile(machine=ascend_910b.replace(block_dispatch_cycles=2**53), compute_values=False)
    with pytest.raises(SimulationError) as e:
        line = here() + 1
        program.execute()
    located(e, line)
    assert e.value.what.startswith("the run ends at cycle 9,007,199,254,7") and "past 2**53" in e.value.what
    assert e.value.hint.startswith("Machine 'ascend_910b' sets block_dispatch_cycles=9,007,199,254,740,992")


def test_the_save_hint_names_the_machine_cycle_constants_too():
    with pytest.raises(PtortValueError) as e:
        check_trace(Trace(spans=[Span(0, "V", "k", 0, 2**53 + 1, 2**53 + 1)], makespan=2**53 + 1), "Trace.save")
    assert e.value.hint == ("A trace keeps times up to 2**53 cycles (9,007,199,254,740,992: the largest a JSON number "
                            "holds exactly). A run stops with an error before its times pass it, naming what took it "
                            "there (a Machine cycle constant such as launch_overhead_cycles or block_dispatch_cycles, "
                            "channel_latency_cycles, or the cycles you pinned), so these times were set by hand: a "
                            "Trace built or changed by hand must keep its times within it.")


# -- item 6: a tile larger than the whole L2 is not held in it --------------------------------------------------------
def test_a_tile_larger_than_l2_is_written_back_at_once_and_read_from_hbm():
    m = ascend_910b.replace(l2_bytes=1024)
    mem = GlobalMemory(m)
    mem.write(0, 4608, m.ub_to_gm, ("C", (0,)))
    assert (mem.dirty_bytes, mem.writeback_bytes, mem.dirty_evictions, mem.l2_used_bytes) == (0, 4608, 1, 0)
    assert not mem.read(10_000, 4608, m.gm_to_ub, ("C", (0,))).hit
    assert not mem.read(20_000, 4608, m.gm_to_ub, None).hit  # staged through GM: no room for it either
    assert (mem.read_hit_bytes, mem.read_miss_bytes, mem.l2_used_bytes) == (0, 9216, 0)
    fits = GlobalMemory(ascend_910b.replace(l2_bytes=4608))  # the same tile when it fits: kept, dirty, then a hit
    fits.write(0, 4608, m.ub_to_gm, ("C", (0,)))
    assert fits.dirty_bytes == 4608 and fits.read(10_000, 4608, m.gm_to_ub, ("C", (0,))).hit


@pytest.mark.parametrize("replacement", ["fifo", "lru"])
def test_an_l2_of_one_byte_serves_no_hit_and_holds_no_dirty_bytes(replacement):
    @kernel
    def mm(a: In[Tile[48, 40, F16]], b: In[Tile[40, 24, F16]], c: Out[Tile[48, 24, F32]]):
        tl.store(c, tl.exp(tl.matmul(tl.load(a), tl.load(b))))

    A, B = Tensor(shape=(6, 48, 40), dtype=F16), Tensor(shape=(6, 40, 24), dtype=F16)
    C = Tensor(shape=(6, 48, 24), dtype=F32)

    @workload
    def w():
        for t in P(Dense[6]()):
            mm[t](a=A[t], b=B[t], c=C[t])

    machine = ascend_910b.replace(l2_bytes=1, l2_replacement=replacement)
    memory = w().compile(machine=machine, compute_values=False).execute().stats().memory
    assert memory["read_hit_bytes"] == 0 and memory["l2_dirty_at_end_bytes"] == 0
    # every write (6 matmul results staged through GM for the AIV, 6 stores of C) went back to HBM as it landed
    assert memory["writeback_bytes"] == memory["write_bytes"] == 12 * 4608
