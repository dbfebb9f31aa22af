"""Channel-occupancy samples stay inside the run and between 0 and the channel depth."""
from __future__ import annotations

from ptort_lab.spec_pipeline import spec_pipeline


def test_occupancy_samples_end_inside_the_run_and_drain_to_zero():
    """With a 1000-cycle hop the last credits land after the makespan; they are shown at the makespan."""
    spec = spec_pipeline(depth=2, tile=(64, 64), tiles=4, seed=None)
    trace = spec.pipeline.compile(channel_latency_cycles=1000, compute_values=False).execute().trace()
    for name, depth in trace.channels.items():
        steps = trace.occupancy(name)
        assert all(t <= trace.makespan for t, _ in steps)
        assert all(0 <= level <= depth for _, level in steps)
        assert steps[-1][1] == 0
