"""Comparison.verdict(), channel_hops() and equal cores (run_study / Study), with pinned costs worked out by hand.

The pipeline: ``prod`` (10 cycles a tile) sends to ``cons`` (30 cycles a tile) over a depth-2 channel, 3 tiles, a
100-cycle channel latency. Each stage is a process on its own core (prod on core 0, cons on core 1), so every item
and every freed slot crosses cores and pays the 100 cycles:

    prod:  t0 [0, 10)    t1 [10, 20)    t2 waits for the slot t0 frees: 140 + 100 -> [240, 250)
    cons:  t0 [110, 140) t1 [140, 170)  t2 [350, 380)                  makespan 380, cons busy 90 / 380 = 24%

The data-parallel twin keeps each tile's two tasks on one core (tile t on core t % cores), in program order (all
prod tasks, then all cons tasks), one task at a time:

    2 cores: core 0 runs a0 [0,10) a2 [10,20) b0 [20,50) b2 [50,80); core 1 a1 [0,10) b1 [10,40): 80 cycles,
             busy 100% and 50% (mean 75%); 380 / 80 = 4.75
    3 cores: each core a [0,10) b [10,40): 40 cycles; 380 / 40 = 9.50
    1 core:  a0 a1 a2 b0 b1 b2 back to back: 120 cycles

Placed on one core (``place("shared")``) the channel stays on chip (latency 0) and the stages overlap: cons runs
[10, 40) [40, 70) [70, 100), so 100 cycles against the one-core twin's 120: the pipeline wins, 1.20x.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from ptort_lab import Channel, Dense, connect, consume, for_each, kernel, process, send, task
from ptort_lab.explore import Comparison, Knobs, Study, channel_hops, cores_used, run_study
from ptort_lab.sim.cost_model import PinnedCosts

ROOT = Path(__file__).resolve().parents[1]
LATENCY = 100


@kernel
def stage_a():
    """An empty kernel: its cost is pinned with cycles=."""


@kernel
def stage_b():
    """A second empty kernel."""


def two_stage(depth: int = 2, tiles: int = 3, prod_cycles: int = 10, cons_cycles: int = 30):
    ch = Channel(name="ch", depth=depth)
    prod = process("prod").produces(ch).body(
        for_each(Dense[tiles](), lambda t: send(ch, task(stage_a, [t], {}, cycles=prod_cycles))))
    cons = process("cons").consumes(ch).body(consume(ch, lambda t: task(stage_b, [t], {}, cycles=cons_cycles)))
    return connect([prod, cons], [ch])


def study(workload, cores: int, **options) -> Comparison:
    return run_study(workload, Knobs(depth=2, tiles=3, cores=cores), cost_model=PinnedCosts(),
                     channel_latency_cycles=LATENCY, **options)


# -- verdict() -------------------------------------------------------------------------------------------------------
def test_verdict_data_parallel_wins_like_for_like():
    c = study(two_stage(), cores=2)
    assert (c.pipeline.stats().total_cycles, c.data_parallel.stats().total_cycles) == (380, 80)
    assert c.verdict() == ("data-parallel 4.75x faster, both on 2 cores: the pipeline's 3 channel hops cost 100 "
                           "cycles each; busiest stage cons 24% busy; data-parallel cores 75% busy")


def test_verdict_says_when_the_cores_differ_and_how_to_even_them():
    c = study(two_stage(), cores=3)
    assert c.data_parallel.stats().total_cycles == 40
    assert c.verdict() == ("data-parallel 9.50x faster, pipeline on 2 cores, data-parallel on 3 (not like for like: "
                           "give both 2): the pipeline's 3 channel hops cost 100 cycles each; busiest stage cons 24% "
                           "busy; data-parallel cores 100% busy")


def test_verdict_pipeline_wins_on_one_core():
    c = study(two_stage().place("shared"), cores=1)
    assert (c.pipeline.stats().total_cycles, c.data_parallel.stats().total_cycles) == (100, 120)
    assert c.verdict() == ("pipeline 1.20x faster, both on 1 core: the pipeline's 3 channel hops cost 0 cycles each; "
                           "busiest stage cons 90% busy; data-parallel cores 100% busy")


def test_verdict_tie():
    """prod costs nothing: cons runs its 3 x 30 back to back in both runs (one core each)."""
    c = study(two_stage(prod_cycles=0).place("shared"), cores=1)
    assert c.verdict() == ("a tie at 90 cycles, both on 1 core: the pipeline's 3 channel hops cost 0 cycles each; "
                           "busiest stage cons 100% busy; data-parallel cores 100% busy")


def test_verdict_is_empty_with_one_run_and_is_in_the_summary():
    assert study(two_stage(), cores=2, mode="pipeline").verdict() == ""
    assert study(two_stage(), cores=2, mode="data-parallel").verdict() == ""
    c = study(two_stage(), cores=2)
    assert c.summary().splitlines()[-1] == f"  verdict: {c.verdict()}"


# -- channel_hops() --------------------------------------------------------------------------------------------------
def test_channel_hops_counts_items_and_prices_each_hop_as_the_run_did():
    assert channel_hops(study(two_stage(), cores=2).pipeline) == [("ch", 3, LATENCY)]
    assert channel_hops(study(two_stage(tiles=5), cores=2).pipeline) == [("ch", 5, LATENCY)]
    assert channel_hops(study(two_stage().place("shared"), cores=1).pipeline) == [("ch", 3, 0)]


def test_channel_hops_of_a_data_parallel_run_is_empty():
    c = study(two_stage(), cores=2)
    assert channel_hops(c.data_parallel) == []


def test_channel_hops_between_cube_and_vector_of_one_core_pay_the_channel_latency():
    """Flash attention on one AI core (S = 512: 4 query tiles x 2 KV blocks = 8 tokens): the cube/vector channels
    (s, p, pv) go through GM and pay 1000 cycles though all six processes sit on core 0; alpha and rowsum stay in
    one AIV's UB (0 cycles)."""
    sys.path.insert(0, str(ROOT / "examples" / "flash_attention"))
    try:
        import flash_attention_example as fa
    finally:
        sys.path.remove(str(ROOT / "examples" / "flash_attention"))
    program, _ = fa.run("pipeline", fa.Config(seq=512, cores=1))
    assert cores_used(program) == 1
    assert channel_hops(program) == [
        ("s0", 8, 1000), ("s1", 8, 1000), ("p0", 8, 1000), ("alpha0", 8, 0), ("rowsum0", 8, 0),
        ("p1", 8, 1000), ("alpha1", 8, 0), ("rowsum1", 8, 0), ("pv0", 8, 1000), ("pv1", 8, 1000),
    ]
    d, _ = fa.run("data_parallel", fa.Config(seq=512, cores=1))
    verdict = Comparison(Knobs(cores=1), pipeline=program, data_parallel=d).verdict()
    assert "the pipeline's 80 channel hops cost 32 x 0, 48 x 1,000 cycles" in verdict


# -- equal cores -----------------------------------------------------------------------------------------------------
def test_equal_cores_runs_the_twin_on_the_pipelines_cores():
    c = study(two_stage(), cores=3, equal_cores=True)
    assert c.equal_cores and c.knobs.cores == 2
    assert cores_used(c.data_parallel) == 2 and c.data_parallel.stats().total_cycles == 80
    assert "both on 2 cores" in c.verdict()


def test_equal_cores_follows_the_pipeline_down_to_one_core():
    c = study(two_stage().place("shared"), cores=4, equal_cores=True)
    assert c.knobs.cores == 1 and cores_used(c.data_parallel) == 1
    assert c.data_parallel.stats().total_cycles == 120


def test_without_equal_cores_the_knob_decides():
    c = study(two_stage(), cores=3)
    assert not c.equal_cores and c.knobs.cores == 3 and cores_used(c.data_parallel) == 3


@pytest.mark.parametrize("mode", ["pipeline", "data-parallel"])
def test_equal_cores_needs_both_runs(mode):
    """With one run there is nothing to even out: the knobs stay as given."""
    c = study(two_stage(), cores=3, equal_cores=True, mode=mode)
    assert not c.equal_cores and c.knobs.cores == 3


def test_study_equal_cores_applies_to_every_run_and_can_be_switched():
    def build(depth, tiles):
        return two_stage(depth=depth, tiles=tiles)

    s = Study(build, Knobs(depth=2, tiles=3, cores=3), equal_cores=True, cost_model=PinnedCosts(),
              channel_latency_cycles=LATENCY)
    assert s.run().knobs.cores == 2 and s.run(tiles=5).knobs.cores == 2
    s.equal_cores = False
    c = s.run(tiles=3)
    assert c.knobs.cores == 3 and c.data_parallel.stats().total_cycles == 40
