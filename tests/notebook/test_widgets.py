"""The explorer: a pure controller, and sliders that drive it (asserted on controller.last, never on pixels)."""
from __future__ import annotations

import pytest

from ptort_lab.errors import PtortValueError
from ptort_lab.explore import Knobs, Study
from ptort_lab.notebook import Explorer, ExplorerController


@pytest.fixture
def explorer(spec_builder):
    return Explorer(spec_builder, Knobs(tiles=16))


def test_controller_update_reruns_with_new_knobs(spec_builder):
    """update(depth=...) rebuilds and reruns; a deeper channel overlaps more and finishes sooner."""
    controller = ExplorerController(Study(spec_builder, Knobs(tiles=16), compute_values=False))
    shallow = controller.update(depth=1)
    deep = controller.update(depth=4)
    assert controller.last is deep and controller.knobs.depth == 4
    assert [c.depth for c in deep.pipeline.workload.channels] == [4, 4]
    p1, p4 = shallow.pipeline.stats(), deep.pipeline.stats()
    assert p4.total_cycles < p1.total_cycles and p4.overlap_pct > p1.overlap_pct
    assert [k.depth for k, _ in controller.history] == [1, 4]
    assert controller.history[-1][1] == deep.rows()


def test_controller_keeps_the_last_good_run_when_an_update_fails(spec_builder):
    """A failing update raises, records the error and leaves .last alone."""
    controller = ExplorerController(Study(spec_builder, Knobs(tiles=4), compute_values=False))
    good = controller.update(depth=2)
    with pytest.raises(PtortValueError):
        controller.update(depth=0)
    assert controller.last is good and isinstance(controller.error, PtortValueError)


def test_sliders_do_not_update_continuously(explorer):
    """Every slider waits for release (continuous_update=False): each change reruns a simulation."""
    assert set(explorer.sliders) == {"depth", "tile", "tiles", "cores"}
    assert all(s.continuous_update is False for s in explorer.sliders.values())
    assert explorer.sliders["depth"].min == 1 and explorer.sliders["depth"].max == 8
    assert [v for _, v in explorer.sliders["tile"].options][:4] == [(32, 32), (64, 64), (128, 128), (256, 256)]
    assert (explorer.sliders["tiles"].max, explorer.sliders["cores"].max) == (128, 24)


def test_explorer_draws_at_start(explorer):
    """The panel shows the first run at once: a PNG of both timelines and the table."""
    assert explorer.controller.last is not None
    assert bytes(explorer.figure.value).startswith(b"\x89PNG")
    assert "<table" in explorer.table.value and "data-parallel" in explorer.table.value
    assert explorer.message.value == ""


def test_depth_slider_changes_cycles_and_overlap(explorer):
    """Moving depth from 2 to 1 serialises the pipeline: more cycles, less overlap; the figure is redrawn."""
    before = explorer.controller.last.pipeline.stats()
    png = explorer.figure.value
    explorer.sliders["depth"].value = 1
    after = explorer.controller.last.pipeline.stats()
    assert explorer.controller.last.knobs.depth == 1
    assert after.total_cycles > before.total_cycles and after.overlap_pct < before.overlap_pct
    assert explorer.figure.value != png
    assert explorer.last_refresh_ms is not None


def test_tile_tiles_and_cores_sliders_reach_the_study(explorer):
    """The tile slider sets TILE, tiles the task count, cores the data-parallel run's cores."""
    explorer.sliders["tile"].value = (64, 64)
    assert explorer.controller.last.knobs.tile == (64, 64)
    explorer.sliders["tiles"].value = 5
    assert len(explorer.controller.last.pipeline.tasks) == 15
    dp2 = explorer.controller.last.data_parallel.stats().total_cycles
    explorer.sliders["cores"].value = 1
    last = explorer.controller.last
    assert last.knobs == Knobs(depth=2, tile=(64, 64), tiles=5, cores=1)
    assert last.data_parallel.stats().total_cycles > dp2
    assert "cores=1" in explorer.table.value


def test_errors_in_a_callback_show_in_the_panel(spec_builder):
    """A builder that raises leaves a short message in the panel and keeps the last good figure."""
    def build(depth, tile, tiles):
        if depth == 3:
            raise PtortValueError("depth 3 is not supported here.", hint="Pick another depth.", locate=False)
        return spec_builder(depth, tile, tiles)

    explorer = Explorer(build, Knobs(tiles=4))
    png = explorer.figure.value
    explorer.sliders["depth"].value = 3
    assert "PtortValueError: depth 3 is not supported here." in explorer.message.value
    assert "showing the last good run" in explorer.message.value
    assert explorer.figure.value == png and explorer.controller.last.knobs.depth == 2
    explorer.sliders["depth"].value = 4
    assert explorer.message.value == "" and explorer.controller.last.knobs.depth == 4


def test_error_messages_in_the_panel_are_escaped(spec_builder):
    """An error naming user text shows it as text, not markup."""
    def build(depth):
        raise ValueError("<script>alert(1)</script>")

    explorer = Explorer(build, Knobs(tiles=4))
    assert "<script>" not in explorer.message.value and "&lt;script&gt;" in explorer.message.value


def test_interact_returns_an_explorer_that_reruns_the_cell(ip, spec_body):
    """%%ptort --interact returns the panel; its sliders rerun the body with new DEPTH/TILES, leaving the
    notebook's own DEPTH alone, and _ptort holds the cell's first run."""
    explorer = ip.run_cell_magic("ptort", "--interact --tiles 4", spec_body)
    assert isinstance(explorer, Explorer)
    assert ip.user_ns["_ptort"].knobs.tiles == 4
    explorer.sliders["depth"].value = 5
    last = explorer.controller.last
    assert [c.depth for c in last.pipeline.workload.channels] == [5, 5]
    assert len(last.pipeline.tasks) == 12
    assert ip.user_ns["DEPTH"] == 2


def test_interact_errors_name_the_cell_line(ip, spec_body):
    """A failing rerun of the cell shows the cell line in the panel."""
    body = spec_body.replace("n = TILES\n", "n = TILES\nassert DEPTH != 3, 'depth 3 breaks this cell'\n")
    explorer = ip.run_cell_magic("ptort", "--interact --tiles 2", body)
    explorer.sliders["depth"].value = 3
    assert "AssertionError: depth 3 breaks this cell" in explorer.message.value
