"""L2 lines of a tile and of its sub-blocks are the same GM bytes (sim/memory.py ``GlobalMemory._held``).

A store of rows 0:64 of a tile, then loads of rows 0:32 and 32:64 (flash attention's S ring: the AIC writes a [64,
256] half, each AIV reads 32 rows of it) read data already in the write-back L2. They used to be looked up by their
exact region key, missed, and were priced as HBM reads (347-cycle latency, the HBM pool), the first time each ring
slot was used: deeper rings had more first uses, so a deeper pipeline ran slower.
"""
from __future__ import annotations

import sys
from pathlib import Path

from ptort_lab.sim.machine import KIB, ascend_910b
from ptort_lab.sim.memory import GlobalMemory

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from loaders import flash_attention_example  # noqa: E402

M = ascend_910b
HALF = 32 * KIB  # a [64, 256] F16 half of a [128, 256] tile
TOP, BOTTOM, ALL = (0, 64, 0, 256), (64, 128, 0, 256), (0, 128, 0, 256)


def part(window: tuple[int, int, int, int], storage: str = "S", index: tuple[int, ...] = (0,)) -> tuple:
    return (storage, index, window)


def test_a_read_of_part_of_a_written_sub_block_hits():
    mem = GlobalMemory(M)
    _, visible = mem.write_times(0, 2 * HALF // 2, M.l0c_to_gm, part(TOP))
    end, ready, hit = mem.read_times(10_000, HALF // 2, M.gm_to_ub, part((0, 32, 0, 256)))
    assert hit and mem.read_miss_bytes == 0 and mem.hbm_bytes == 0
    assert ready >= visible
    # the second half of the written rows too; rows the write did not cover miss
    assert mem.read_times(20_000, HALF // 2, M.gm_to_ub, part((32, 64, 0, 256)))[2]
    assert not mem.read_times(30_000, HALF // 2, M.gm_to_ub, part((48, 80, 0, 256)))[2]
    assert mem.read_miss_bytes == HALF // 2


def test_a_read_waits_for_every_line_that_holds_some_of_its_bytes():
    """The read of a tile written in two halves is ready no earlier than the later half is visible."""
    mem = GlobalMemory(M)
    _, first = mem.write_times(0, HALF, M.ub_to_gm, part(TOP))
    _, second = mem.write_times(50_000, HALF, M.ub_to_gm, part(BOTTOM))
    assert second > 50_000 > first
    _, ready, hit = mem.read_times(0, 2 * HALF, M.gm_to_l1, ("S", (0,)), True, ALL)
    assert hit and ready >= second


def test_a_whole_tile_read_is_served_by_its_parts_only_when_they_cover_it():
    mem = GlobalMemory(M)
    mem.write_times(0, HALF, M.ub_to_gm, part(TOP))
    assert not mem.read_times(10_000, 2 * HALF, M.gm_to_l1, ("S", (0,)), True, ALL)[2]  # rows 64:128 never written
    mem = GlobalMemory(M)
    mem.write_times(0, HALF, M.ub_to_gm, part(TOP))
    mem.write_times(0, HALF, M.ub_to_gm, part(BOTTOM))
    assert mem.read_times(10_000, 2 * HALF, M.gm_to_l1, ("S", (0,)), True, ALL)[2]
    # without its bounds a whole-tile read cannot know its parts cover it: a miss, as before
    assert not mem.read_times(20_000, 2 * HALF, M.gm_to_l1, ("S", (1,)), True)[2]


def test_a_read_of_a_sub_block_of_a_whole_tile_in_l2_hits():
    mem = GlobalMemory(M)
    mem.write_times(0, 2 * HALF, M.ub_to_gm, ("S", (0,)))
    assert mem.read_times(10_000, HALF, M.gm_to_ub, part(BOTTOM))[2]
    assert mem.read_miss_bytes == 0


def test_a_write_replaces_the_sub_blocks_inside_it_so_no_byte_is_held_twice():
    mem = GlobalMemory(M)
    for window in ((0, 32, 0, 256), (32, 64, 0, 256), BOTTOM):
        mem.write_times(0, HALF // 2 if window[1] - window[0] == 32 else HALF, M.ub_to_gm, part(window))
    assert mem.l2_used_bytes == 2 * HALF
    mem.write_times(1000, HALF, M.ub_to_gm, part(TOP))  # covers the two 32-row parts
    assert sorted(k[2] for k in mem.lines) == [TOP, BOTTOM] and mem.l2_used_bytes == 2 * HALF
    mem.write_times(2000, 2 * HALF, M.ub_to_gm, ("S", (0,)))  # the whole tile replaces every part
    assert list(mem.lines) == [("S", (0,))] and mem.l2_used_bytes == 2 * HALF and mem.parts == {}


def test_an_evicted_sub_block_no_longer_serves_reads():
    mem = GlobalMemory(M.replace(l2_bytes=2 * HALF))
    mem.write_times(0, HALF, M.ub_to_gm, part(TOP))
    mem.write_times(0, 2 * HALF, M.ub_to_gm, ("T", (0,)))  # evicts S's part (FIFO)
    assert part(TOP) not in mem.lines and mem.parts == {}
    assert not mem.read_times(10_000, HALF // 2, M.gm_to_ub, part((0, 32, 0, 256)))[2]


def test_plain_string_regions_are_whole_tiles():
    """A three-letter region name is not a sub-block (only (storage, index, window) tuples are)."""
    mem = GlobalMemory(M)
    mem.write_times(0, HALF, M.ub_to_gm, "abc")
    assert mem.parts == {} and mem.read_times(10_000, HALF, M.gm_to_ub, "abc")[2]


def test_flash_attention_reads_only_q_k_and_v_from_hbm_and_deeper_rings_are_not_slower():
    """S = 1024: the GM rings between the AIC and the AIVs stay in L2 (HBM reads = Q, K and V once each), and
    the pipeline's makespan does not grow with the ring depth (it grew by 3 % from depth 4 to 8 before)."""
    fa = flash_attention_example()
    qkv_bytes = 3 * 1024 * 128 * 2
    cycles = {}
    for depth in (4, 8):
        for variant in ("pipeline", "data_parallel"):
            work, _ = fa.build(variant, fa.Config(1024, depth=depth))
            program = work.compile(compute_values=False)
            program.execute()
            stats = program.stats()
            assert stats.memory["read_miss_bytes"] == qkv_bytes, (variant, depth)
            cycles[variant, depth] = stats.total_cycles
    assert cycles["pipeline", 8] <= cycles["pipeline", 4]
    assert cycles["data_parallel", 8] == cycles["data_parallel", 4]  # (no channels)
