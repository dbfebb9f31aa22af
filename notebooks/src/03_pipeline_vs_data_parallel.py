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
# Deeper channels never slow the pipeline down, and depth 2 is where most of the overlap comes from. Even so,
# for this memory-bound elementwise work the data-parallel twin finishes first, and the model says why: a stage
# process handles one tile at a time (load, compute, store, then the next tile), and every hop between stages
# costs the machine's 1000-cycle GM-staged channel latency; a data-parallel core keeps each tile's three tasks
# together and issues the next task while the current one runs, so its loads overlap its compute as far as the
# Unified Buffer allows (double buffering inside the core). Use the explorer to see how far each knob moves each
# side.

# %% [markdown]
# ## The explorer
# Move a slider: both timelines and the table redraw (timing-only runs, so each move takes a fraction of a
# second). `explorer.controller.last` is the latest comparison.

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
