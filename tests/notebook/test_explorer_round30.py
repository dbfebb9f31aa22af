"""The explorer's controls can always show the knobs set from code (a move of another slider keeps them), and a
Comparison's repr says what is true of a run that kept no trace (round 30)."""
from __future__ import annotations

from typing import Any

import pytest

from ptort_lab.errors import PtortValueError
from ptort_lab.explore import Comparison, Knobs
from ptort_lab.notebook import Explorer
from ptort_lab.spec_pipeline import build

START = Knobs(depth=2, tile=(64, 64), tiles=4)


def _shown(spec: dict[str, Any]) -> Any:
    """What the view's slider holds for ``spec``: an HTML range input clamps its value to [min, max], and a choice
    slider's value is a position in its options (explorer.js ``_buildControls``)."""
    position = min(max(spec["value"], spec["min"]), spec["max"])
    return spec["options"][position][1] if "options" in spec else position


def _view_knobs(explorer: Explorer) -> dict[str, Any]:
    """The knobs the view sends on a move: every slider's value as it shows it (explorer.js ``_knobValues``)."""
    return {spec["name"]: _shown(spec) for spec in explorer.controls["sliders"]}


def _move(explorer: Explorer, rid: str, **moved: Any) -> None:
    """The user moves the sliders ``moved`` (only those) in the browser: the view sends one request."""
    knobs = {**_view_knobs(explorer), **{k: list(v) if k == "tile" else v for k, v in moved.items()}}
    explorer.request = {"rid": rid, "knobs": knobs, "equal_cores": None}


def _set_tile_from_list(ex: Explorer) -> None:
    ex.update(tile=[128, 128])


def _set_tile_by_slider(ex: Explorer) -> None:
    ex.sliders["tile"].value = [128, 128]


def _set_tile_not_among_options(ex: Explorer) -> None:
    ex.update(tile=(48, 48))


@pytest.mark.parametrize(("set_tile", "tile"), [(_set_tile_from_list, (128, 128)),
                                                (_set_tile_by_slider, (128, 128)),
                                                (_set_tile_not_among_options, (48, 48))])
def test_a_tile_set_from_code_survives_a_move_of_the_depth_slider(set_tile, tile):
    """A tile set from code as a list, or one the tile slider did not offer, is what the next move reruns with:
    the view used to show it as the first option (32x32) and send that back with the depth it moved."""
    explorer = Explorer(build, START)
    set_tile(explorer)
    assert explorer.controller.last.knobs.tile == tile
    spec = next(s for s in explorer.controls["sliders"] if s["name"] == "tile")
    _move(explorer, "v1:1", depth=3)
    assert explorer.message == "" and explorer.view["rid"] == "v1:1"
    assert explorer.controller.last.knobs == Knobs(depth=3, tile=tile, tiles=4, cores=4)
    assert spec["options"][spec["value"]] == [f"{tile[0]}x{tile[1]}", list(tile)]
    assert [o[1] for o in spec["options"]] == sorted(o[1] for o in spec["options"])  # (the options stay in order)
    assert explorer.sliders["tile"].value == tile and isinstance(explorer.sliders["tile"].value, tuple)


def test_depth_and_tiles_set_past_the_sliders_ends_survive_a_move_of_another_slider():
    """depth=20 and tiles=300 from code widen the sliders (8 and 128 were their ends), so the view's range inputs
    do not clamp them, and moving the cores slider reruns at depth 20 with 300 tiles, not 8 and 128."""
    explorer = Explorer(build, START)
    explorer.update(depth=20, tiles=300)
    specs = {s["name"]: s for s in explorer.controls["sliders"]}
    assert (specs["depth"]["max"], specs["depth"]["value"]) == (20, 20)
    assert (specs["tiles"]["max"], specs["tiles"]["value"]) == (300, 300)
    _move(explorer, "v1:1", cores=2)
    assert explorer.message == ""
    assert explorer.controller.last.knobs == Knobs(depth=20, tile=(64, 64), tiles=300, cores=2)
    _move(explorer, "v1:2", tile=(32, 32))  # and once more: the widened sliders stay wide
    assert explorer.controller.last.knobs == Knobs(depth=20, tile=(32, 32), tiles=300, cores=2)


def test_a_refused_value_leaves_the_sliders_showing_the_last_good_run():
    """A depth the run refuses (0) is not added to the slider: the controls show the last good knobs, and a move
    of another slider reruns with those (and the tile set from a list before)."""
    explorer = Explorer(build, START)
    explorer.update(tile=[128, 128], depth=12)
    explorer.sliders["depth"].value = 0  # refused: the panel says so and keeps the last good run
    assert explorer.message.startswith("PtortValueError: knob depth must be an int >= 1")
    assert _view_knobs(explorer) == {"depth": 12, "tile": [128, 128], "tiles": 4, "cores": 4}
    assert next(s for s in explorer.controls["sliders"] if s["name"] == "depth")["min"] == 1
    _move(explorer, "v1:1", tiles=5)
    assert explorer.controller.last.knobs == Knobs(depth=12, tile=(128, 128), tiles=5, cores=4)


def test_the_repr_of_a_comparison_with_a_run_that_kept_no_trace_says_so():
    """Both runs ran; the pipeline's kept no trace, so there is no verdict: the repr says that (it used to say that
    neither had run), and verdict() still raises the error naming keep_trace=False."""
    lean = build(depth=2, tile=(64, 64), tiles=3).compile().execute(keep_trace=False)
    full = build(depth=2, tile=(64, 64), tiles=3).compile().execute()
    comparison = Comparison(Knobs(), pipeline=lean, data_parallel=full)
    cycles = lean.stats().total_cycles
    assert repr(comparison) == (
        f"<Comparison depth=2 tile=128x128 tiles=8 cores=4: pipeline run {cycles:,} cycles but kept no trace "
        f"(execute(keep_trace=False): no verdict); data-parallel run {full.stats().total_cycles:,} cycles>")
    with pytest.raises(PtortValueError, match="kept no trace"):
        comparison.verdict()


def test_the_repr_of_a_comparison_tells_a_run_not_run_from_one_that_kept_no_trace():
    """One run not run yet and one that kept no trace: each is named for what it is."""
    lean = build(depth=2, tile=(64, 64), tiles=3).compile().execute(keep_trace=False)
    unrun = build(depth=2, tile=(64, 64), tiles=3).compile()
    text = repr(Comparison(Knobs(), pipeline=unrun, data_parallel=lean))
    assert text == (f"<Comparison depth=2 tile=128x128 tiles=8 cores=4: pipeline not run yet; data-parallel run "
                    f"{lean.stats().total_cycles:,} cycles but kept no trace (execute(keep_trace=False): no verdict)>")
