"""Viz fixtures: the spec pipeline, a tiny pinned-cost pipeline, the XSS process name; Agg backend for matplotlib."""
from __future__ import annotations

import matplotlib
import pytest

matplotlib.use("Agg")

from viz_cases import XSS, spec_pipeline_of, two_stage  # noqa: E402

from ptort_lab import PinnedCosts  # noqa: E402


@pytest.fixture
def spec_pipeline(spec_kernels, spec_data):
    """The spec pipeline (8 tiles of 128x128, depth 2)."""
    return spec_pipeline_of(spec_kernels, spec_data)


@pytest.fixture
def pinned_run(stages):
    """A run of the two-stage pipeline with pinned costs: 4 producer spans and 4 consumer spans."""
    return two_stage(stages).compile(cost_model=PinnedCosts()).execute()


@pytest.fixture
def xss_pipeline(stages):
    """A two-stage pipeline whose producer is named like an HTML injection."""
    return two_stage(stages, producer=XSS, consumer='say "hi" \\ bye')  # (a newline is refused where it is made)
