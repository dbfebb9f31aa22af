"""The explorer after Kernel -> Interrupt, with equal cores, and the --interact panel's error text (round 9)."""
from __future__ import annotations

import pytest

from ptort_lab.explore import Knobs
from ptort_lab.notebook import Explorer


def _interruptible(spec_builder, at_depth: int):
    """The spec builder, but the run at ``at_depth`` is interrupted (what Kernel -> Interrupt does mid-run)."""
    def build(depth, tile, tiles):
        if depth == at_depth:
            raise KeyboardInterrupt
        return spec_builder(depth, tile, tiles)
    return build


def _slider(controls: dict, name: str) -> dict:
    return next(s for s in controls["sliders"] if s["name"] == name)


def test_an_interrupted_move_answers_the_view_and_keeps_the_last_good_run(spec_builder):
    """Interrupting the rerun of a move still answers the view's request (its rid), with the sliders back at the
    last good run and a message saying so; the next move runs as usual (the view used to wait forever)."""
    explorer = Explorer(_interruptible(spec_builder, 3), Knobs(depth=2, tile=(64, 64), tiles=4))
    good = explorer.controller.last
    explorer.request = {"rid": "v1:1", "knobs": {"depth": 3}, "equal_cores": None}
    assert explorer.view["rid"] == "v1:1" and explorer.controls["rid"] == "v1:1"
    assert explorer.view["error"] == explorer.message == \
        "interrupted; showing the last good run (depth=2 tile=64x64 tiles=4 cores=4)"
    assert explorer.view["runs"] == []  # the view keeps the timelines it has
    assert explorer.sliders["depth"].value == 2 and _slider(explorer.controls, "depth")["value"] == 2
    assert explorer.controller.last is good and explorer.controller.knobs.depth == 2
    explorer.request = {"rid": "v1:2", "knobs": {"depth": 4}, "equal_cores": None}
    assert explorer.view["rid"] == "v1:2" and explorer.view["error"] == "" and len(explorer.view["runs"]) == 2
    assert explorer.controller.last.knobs.depth == 4


def test_an_interrupted_change_from_code_stops_the_cell(spec_builder):
    """explorer.update() interrupted: the KeyboardInterrupt reaches the cell, and the panel says what it shows."""
    explorer = Explorer(_interruptible(spec_builder, 3), Knobs(depth=2, tile=(64, 64), tiles=4))
    with pytest.raises(KeyboardInterrupt):
        explorer.update(depth=3)
    assert explorer.message == "interrupted; showing the last good run (depth=2 tile=64x64 tiles=4 cores=4)"
    assert explorer.sliders["depth"].value == 2


def test_an_interrupted_first_run_stops_the_cell(spec_builder):
    with pytest.raises(KeyboardInterrupt):
        Explorer(_interruptible(spec_builder, 2), Knobs(depth=2, tile=(64, 64), tiles=4))


def test_equal_cores_shows_the_cores_both_runs_used(spec_builder):
    """With equal cores on, the disabled cores slider shows the pipeline's cores (what both runs used), not the
    knob; the view echoing that value back in a request does not change the knob."""
    explorer = Explorer(spec_builder, Knobs(tiles=8, cores=4), equal_cores=True)
    used = explorer.controller.last.knobs.cores
    assert used == 3 and [r["cores"] for r in explorer.controller.last_rows] == [3, 3]
    cores = _slider(explorer.controls, "cores")
    assert cores["disabled"] is True and cores["value"] == 3
    # The view sends every slider's value: the shown 3 is not a move; unticking brings back the knob's 4.
    explorer.request = {"rid": "v1:1", "knobs": {"depth": 3, "cores": 3}, "equal_cores": None}
    assert explorer.sliders["cores"].value == 4 and _slider(explorer.controls, "cores")["value"] == 3
    explorer.request = {"rid": "v1:2", "knobs": {"depth": 3, "cores": 3}, "equal_cores": False}
    assert explorer.sliders["cores"].value == 4
    cores = _slider(explorer.controls, "cores")
    assert cores["disabled"] is False and cores["value"] == 4
    assert [r["cores"] for r in explorer.controller.last_rows] == [3, 4]


def test_interact_error_names_the_cell_rerun_not_the_magics_closure(ip, spec_body):
    """A slider rerun of a --interact cell that fails says which values the body re-ran with, at the cell line,
    with a hint a panel can act on (no internal builder name, no __cause__ advice)."""
    body = spec_body.replace("n = TILES\n", "n = TILES\nassert TILES < 12, 'at most 11 tiles'\n")
    explorer = ip.run_cell_magic("ptort", "--interact --tiles 4", body)
    explorer.sliders["tiles"].value = 20
    assert explorer.message == (
        "UserCodeError: re-running the cell body with DEPTH=2, TILE=(128, 128), TILES=20 raised AssertionError: "
        "at most 11 tiles\n"
        "  at cell line 4\n"
        "    assert TILES < 12, 'at most 11 tiles'\n"
        "Fix that line of the cell, or move the slider back to a value it accepts. (showing the last good run)")
    assert "rebuild" not in explorer.message and "__cause__" not in explorer.message
    assert explorer.sliders["tiles"].value == 4
