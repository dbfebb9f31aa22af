# %% [markdown]
# # 03 · Pipeline overlap vs a data-parallel run
#
# The same work can run two ways. As a **CSP pipeline** each stage is a process on its own core, and channel
# depth decides how far a stage can run ahead (depth 1: the stages take turns; depth 2: double buffering). As a
# **data-parallel** run, every tile's three tasks go to one of `cores` cores, and tiles spread over the cores.
# This notebook builds the spec pipeline from four knobs — depth, tile size, tile count, cores — and compares.

# %% [markdown]
# Notebook 02 wrote the spec pipeline out in full; here it comes ready-made from `ptort_lab.spec_pipeline`:
# `build(depth, tile, tiles)` returns the pipeline for one setting of the knobs.

# %%
import inspect
from ptort_lab.explore import Knobs, Study
from ptort_lab.notebook import Explorer, sweep
from ptort_lab.spec_pipeline import build, spec_pipeline

print(inspect.getsource(spec_pipeline))

# %% [markdown]
# ## One setting at a time
# A `Study` rebuilds the pipeline with new knobs, runs it and its data-parallel twin, and keeps the comparison.

# %% tags=["nbval-check-output"]
study = Study(build, Knobs(depth=1, tile=(128, 128), tiles=16, cores=4))
for depth in (1, 2, 4):
    print(study.run(depth=depth))

# %% [markdown]
# Deeper channels do not slow this pipeline down (its stages run on their own units; stages sharing one unit
# can lose a few cycles when a deeper channel lets the producer queue its work first), and depth 2 is where
# most of the overlap comes from. The last line
# of each comparison is its **verdict**: who wins, by how much, on how many cores, and why, from the runs' own
# numbers: how many items crossed between stages and what each hop cost, how busy the busiest stage was, how busy
# the data-parallel cores were. Here it also says the comparison is not like for like: the pipeline runs one stage
# per core (3 cores) while the twin gets `cores` (4).
#
# ## Like for like: equal cores
# `equal_cores=True` gives the data-parallel twin exactly the cores the pipeline used, so the verdict compares the
# two ways of organising the same work on the same hardware:

# %% tags=["nbval-check-output"]
equal = Study(build, Knobs(depth=1, tile=(128, 128), tiles=16, cores=4), equal_cores=True)
for depth in (1, 2, 4):
    comparison = equal.run(depth=depth)
    print(f"depth {depth}: {comparison.verdict()}")

# %% [markdown]
# For this memory-bound elementwise work the model explains the verdict: a stage process handles one tile at a
# time (load, compute, store, then the next tile), every item that crosses between stages (and every slot handed
# back) pays the machine's GM-staged channel latency, and the loader stage, the busiest, still idles much of the
# time waiting for slots. A data-parallel core keeps each tile's three tasks together and issues the next task
# while the current one runs, so its loads overlap its compute as far as the Unified Buffer allows (double
# buffering inside the core), with no hops at all. Use the explorer to see how far each knob moves each side.

# %% [markdown]
# ## The explorer
# Move a slider: the verdict, the table and both timelines redraw in the page (the kernel reruns timing-only and
# sends the runs' numbers, not a picture; "running..." shows while it works). The **equal cores** box gives the
# twin the pipeline's cores. `explorer.controller.last` is the latest comparison. (In a notebook that has not been
# run, or in its HTML export, a picture of the explorer's last state shows instead.)

# %% tags=["nbval-ignore-output"]
explorer = Explorer(build, Knobs(depth=2, tile=(128, 128), tiles=16, cores=4))
explorer

# %% [markdown]
# Setting a slider from code is exactly what dragging it does:

# %% tags=["nbval-check-output"]
explorer.sliders["depth"].value = 1
print(explorer.controller.last.summary())

# %% [markdown]
# ## A sweep
# `sweep` runs every combination and plots makespan against the first parameter, one line per value of the
# others (a progress bar appears when it takes more than a moment).

# %% tags=["nbval-ignore-output"]
result = sweep(build, depth=range(1, 7), tile=[64, 128], knobs=Knobs(tiles=16, cores=4))
result.plot()

# %% tags=["nbval-check-output"]
for row in result.rows:
    print(f"depth {row['depth']}  tile {row['tile'][0]}x{row['tile'][1]}  pipeline {row['pipeline_cycles']:>6}  "
          f"data-parallel {row['data_parallel_cycles']:>6}")

# %% [markdown]
# ## A case where the pipeline wins: flash attention
# The spec pipeline loses because its three stages all want the same units and every hop costs more than a tile's
# work. Flash attention is the opposite case (`examples/flash_attention`, the production form of notebook 07's
# section 4): on each AI core a six-process pipeline runs `qk` and `pv` on the cube (AIC) and the softmax and
# update halves on the two vector units (AIV0, AIV1), so its stages use *different* units of one core and run at
# the same time; Q and the running softmax state stay on chip, and the cube/vector channels are GM rings whose
# 1000-cycle hops hide behind the channel depth. Its data-parallel variant runs the same kernels as
# software-pipelined tasks, query tile `g` on core `g % cores`. Both run timing-only here (the same cycles as a run
# with values, without the numpy work), at S = 2048 (16 query tiles x 8 KV blocks, one head), on 1 to 16 cores,
# each variant on the same cores:

# %% tags=["nbval-check-output"]
import sys
from pathlib import Path

import ptort_lab
from ptort_lab.explore import Comparison, cores_used

sys.path.insert(0, str(Path(ptort_lab.__file__).resolve().parents[1] / "examples" / "flash_attention"))
import flash_attention_example as fa

fa_study = {}
for cores in (1, 2, 4, 8, 16):
    cfg = fa.Config(seq=2048, cores=cores)
    pipeline_run, _ = fa.run("pipeline", cfg)
    data_parallel_run, _ = fa.run("data_parallel", cfg)
    fa_study[cores] = Comparison(Knobs(depth=cfg.depth, tile=(128, cfg.block), tiles=cfg.tiles, cores=cores),
                                 pipeline=pipeline_run, data_parallel=data_parallel_run)
    tokens = cfg.tiles * cfg.kv_blocks // cores_used(pipeline_run)
    p_cycles, d_cycles = pipeline_run.stats().total_cycles, data_parallel_run.stats().total_cycles
    winner = "pipeline" if p_cycles < d_cycles else "data-parallel" if d_cycles < p_cycles else "tie"
    print(f"{cores:>2} core{'s' if cores > 1 else ' '} ({tokens:>3} tokens a core): pipeline {p_cycles:>7}  data-parallel {d_cycles:>7}  "
          f"-> {winner}")

# %% [markdown]
# The verdicts at the two ends of the range, and where the winner flips (all computed from the runs above):

# %% tags=["nbval-check-output"]
def winner(comparison):
    p, d = comparison.pipeline.stats().total_cycles, comparison.data_parallel.stats().total_cycles
    return "pipeline" if p < d else "data-parallel" if d < p else "tie"


counts = sorted(fa_study)
for cores in (counts[0], counts[-1]):
    print(f"{cores} core{'s' if cores > 1 else ''}: {fa_study[cores].verdict()}")
flips = [(a, b) for a, b in zip(counts, counts[1:]) if winner(fa_study[a]) != winner(fa_study[b])]
for a, b in flips:
    print(f"the winner flips between {a} cores ({winner(fa_study[a])}) and {b} cores ({winner(fa_study[b])})")
if not flips:
    print(f"no flip between {counts[0]} and {counts[-1]} cores: {winner(fa_study[counts[0]])} wins throughout")

# %% [markdown]
# ## Conclusion: when each wins, and why
# - **Data-parallel wins** when every stage wants the same units and a tile's work is short next to a channel hop,
#   as in the spec pipeline: a data-parallel core already overlaps one tile's load with another's compute inside
#   the core, with no hops, while the pipeline pays a GM-staged hop per item and its stages wait on each other. It
#   wins like for like (equal cores) at every depth above.
# - **The pipeline wins** when its stages run on *different* units of one core (cube and vector) and keep their
#   state on chip, and each core has a long enough stream of work to hide the hops behind the channel depth: flash
#   attention on few cores, where the busiest vector stage is busy most of the run. With more cores, each core's
#   stream gets shorter (fewer tokens a core), the pipeline's fill and drain (the first hops, nothing yet to
#   overlap) weigh more, and the software-pipelined data-parallel variant catches up: the flip above.
#
# The numbers come from the NPU model, so they move when the model does; the verdict lines are recomputed on every
# run, and they are what to read.

# %% tags=["nbval-check-output"]
print(f"spec pipeline, equal cores, depth {equal.knobs.depth}: {equal.last.verdict()}")
for cores in counts:
    print(f"flash attention, {cores:>2} core{'s' if cores > 1 else ' '}: {winner(fa_study[cores])} wins")
