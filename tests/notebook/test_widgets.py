"""The explorer: a pure controller, and sliders that drive it (asserted on controller.last and on the run data the
view draws, never on pixels)."""
from __future__ import annotations

import json

import pytest

from ptort_lab.errors import PtortValueError
from ptort_lab.explore import Knobs, Study
from ptort_lab.notebook import Explorer, ExplorerController
from ptort_lab.notebook.compact import compact_run


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
    assert explorer.sliders["tile"].options[:4] == [(32, 32), (64, 64), (128, 128), (256, 256)]
    assert (explorer.sliders["tiles"].max, explorer.sliders["cores"].max) == (128, 24)


def test_explorer_draws_at_start(explorer):
    """The panel has the first run at once: compact run data for both timelines, the table rows and the verdict."""
    assert explorer.controller.last is not None
    view = explorer.view
    assert [r["label"] for r in view["runs"]] == ["pipeline", "data-parallel"]
    assert [r["run"] for r in view["table"]] == ["pipeline", "data-parallel"]
    assert view["verdict"].startswith("data-parallel ") and view["error"] == ""
    assert explorer.message == ""
    json.dumps(view)  # it goes to the browser as JSON


def test_view_data_are_numbers_that_match_the_trace(explorer):
    """The timelines go as columns of cycles, one row per track: every span of the trace, exactly once."""
    run = explorer.view["runs"][0]
    trace = explorer.controller.last.pipeline.trace()
    spans = [(s, e) for row in run["rows"] if row["kind"] == "span" for s, e in zip(row["s"], row["e"])]
    assert sorted(spans) == sorted((sp.start, sp.end) for sp in trace.spans)
    assert run["makespan"] == trace.makespan and run["launch_cycles"] == trace.launch_cycles
    assert [c["name"] for c in run["counters"]] == ["load_to_compute", "compute_to_store"]
    assert all(isinstance(v, int) for row in run["rows"] for v in row["s"] + row["e"])
    names = {run["names"][i] for row in run["rows"] for i in column(row, "n")}
    assert names >= {sp.name for sp in trace.spans}


def column(row, key):
    """A compact row's column as one value per slice (a column of equal values is sent as that one value)."""
    values = row[key]
    return values if isinstance(values, list) else [values] * len(row["s"])


def test_view_data_send_a_column_of_equal_values_once(explorer):
    """Each lane of the spec pipeline runs one op of one process moving one size of tile: op, process and bytes go
    as single values; tile indices and task ids differ per slice and stay lists. Expanded, they match the trace."""
    run = explorer.view["runs"][0]
    trace = explorer.controller.last.pipeline.trace()
    load = next(row for row in run["rows"] if row["label"] == "AIV0.MTE2")
    assert run["names"][load["n"]] == "load" and run["names"][load["p"]] == "loader"
    assert load["b"] == 128 * 128 * 4 and isinstance(load["t"], list) and isinstance(load["x"], list)
    got = sorted((s, run["names"][n], run["names"][p], t, b) for row in run["rows"] if row["kind"] == "span"
                 for s, n, p, t, b in zip(row["s"], column(row, "n"), column(row, "p"), column(row, "t"),
                                          column(row, "b")))
    assert got == sorted((sp.start, sp.name, sp.process, sp.task_id, sp.bytes) for sp in trace.spans)


def test_a_request_from_the_view_reruns_and_answers_with_its_id(explorer):
    """What a slider release sends: the knobs and a request id; the answer carries the id (the view drops stale
    answers by it)."""
    explorer.request = {"rid": "v1:7", "knobs": {"depth": 1, "tile": [64, 64], "tiles": 8, "cores": 2},
                        "equal_cores": None}
    last = explorer.controller.last
    assert last.knobs == Knobs(depth=1, tile=(64, 64), tiles=8, cores=2)
    assert explorer.view["rid"] == "v1:7" and explorer.view["error"] == ""
    assert explorer.sliders["tile"].value == (64, 64)
    assert [s["value"] for s in explorer.controls["sliders"]] == [1, 1, 8, 2]  # tile: position of 64x64


def test_a_refused_move_sends_the_view_its_sliders_back_every_time(explorer):
    """A 256x256 F32 tile does not fit the UB: the answer carries the last good sliders (tile back at 128x128),
    and a second refusal of the same move is sent too (the values are as before, but the view's slider is not)."""
    sent = []
    explorer.observe(lambda change: sent.append(change["new"]), names="controls")
    for rid in ("v1:1", "v1:2"):
        explorer.request = {"rid": rid, "knobs": {"tile": [256, 256]}, "equal_cores": None}
        assert explorer.view["error"].startswith("CapacityError: ") and explorer.view["rid"] == rid
        assert sent[-1]["rid"] == rid
        assert next(s for s in sent[-1]["sliders"] if s["name"] == "tile")["value"] == 2  # 128x128
    assert len(sent) == 2 and explorer.controller.last.knobs.tile == (128, 128)


def test_equal_cores_gives_the_twin_the_pipelines_cores(explorer):
    """Like for like: the data-parallel run gets the pipeline's 3 cores, and the verdict says both ran on 3."""
    explorer.request = {"rid": "v1:1", "knobs": {"depth": 2, "tile": [128, 128], "tiles": 16, "cores": 4},
                        "equal_cores": True}
    last = explorer.controller.last
    assert last.equal_cores and last.knobs.cores == 3
    assert [r["cores"] for r in explorer.view["table"]] == [3, 3]
    assert "both on 3 cores" in explorer.view["verdict"]
    assert next(s for s in explorer.controls["sliders"] if s["name"] == "cores")["disabled"] is True


def test_the_display_bundle_has_a_picture_and_a_summary_not_a_repr(explorer):
    """Unrun notebooks and nbconvert HTML show the PNG of the last state; text/plain is the summary."""
    data, _ = explorer._repr_mimebundle_()
    assert set(data) == {"application/vnd.jupyter.widget-view+json", "image/png", "text/plain"}
    assert data["image/png"].startswith(b"\x89PNG")
    assert data["text/plain"] == explorer.controller.last.summary()
    assert "Explorer(" not in data["text/plain"]


def test_depth_slider_changes_cycles_and_overlap(explorer):
    """Moving depth from 2 to 1 serialises the pipeline: more cycles, less overlap; the run data are new."""
    before = explorer.controller.last.pipeline.stats()
    runs = explorer.view["runs"]
    explorer.sliders["depth"].value = 1
    after = explorer.controller.last.pipeline.stats()
    assert explorer.controller.last.knobs.depth == 1
    assert after.total_cycles > before.total_cycles and after.overlap_pct < before.overlap_pct
    assert explorer.view["runs"] != runs and explorer.view["runs"][0]["makespan"] == after.total_cycles
    assert explorer.last_refresh_ms is not None


def test_a_move_reruns_only_the_side_it_changes_and_a_move_back_nothing(explorer, spec_builder):
    """The notebook's builder makes new kernels and tensors on every build; equal content is still the same run:
    depth leaves the twin (it has no channels), cores the pipeline, and moving back draws the first runs again,
    exactly as a new study draws them."""
    first, runs = explorer.controller.last, explorer.view["runs"]
    explorer.sliders["depth"].value = 3
    deeper = explorer.controller.last
    assert deeper.pipeline is not first.pipeline and deeper.data_parallel is first.data_parallel
    explorer.sliders["cores"].value = 2
    assert explorer.controller.last.pipeline is deeper.pipeline
    explorer.update(depth=2, cores=4)
    back = explorer.controller.last
    assert back.pipeline is first.pipeline and back.data_parallel is first.data_parallel
    assert explorer.view["runs"] == runs and explorer.view["table"] == first.rows()
    fresh = Study(spec_builder, back.knobs, compute_values=False).run()
    assert runs == [compact_run(label, program) for label, program in fresh.runs]
    assert explorer.view["verdict"] == fresh.verdict()


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
    assert "cores=1" in explorer.table_html()


def test_errors_in_a_callback_show_in_the_panel(spec_builder):
    """A builder that raises leaves a short message in the panel and keeps the last good figure."""
    def build(depth, tile, tiles):
        if depth == 3:
            raise PtortValueError("depth 3 is not supported here.", hint="Pick another depth.", locate=False)
        return spec_builder(depth, tile, tiles)

    explorer = Explorer(build, Knobs(tiles=4))
    explorer.sliders["depth"].value = 3
    assert "PtortValueError: depth 3 is not supported here." in explorer.message
    assert "showing the last good run" in explorer.message
    assert explorer.view["error"] == explorer.message and explorer.view["runs"] == []  # the view keeps its timelines
    assert explorer.controller.last.knobs.depth == 2 and explorer.sliders["depth"].value == 2
    explorer.sliders["depth"].value = 4
    assert explorer.message == "" and explorer.controller.last.knobs.depth == 4
    assert explorer.view["error"] == "" and len(explorer.view["runs"]) == 2


def test_error_messages_in_the_panel_are_text(spec_builder):
    """An error naming user text reaches the view as plain text (no run yet: the bundle says so too)."""
    def build(depth):
        raise ValueError("<script>alert(1)</script>")

    explorer = Explorer(build, Knobs(tiles=4))
    # The view sets the message with textContent, never as markup; the error names the builder and the line.
    assert explorer.message.startswith("UserCodeError: the study's builder build (with {'depth': 2}) raised "
                                       "ValueError: <script>alert(1)</script>")
    assert explorer.view["error"] == explorer.message and explorer.controller.last is None
    assert explorer._repr_mimebundle_()[0]["text/plain"].endswith(explorer.message)


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
    assert "AssertionError: depth 3 breaks this cell" in explorer.message


class _Events:
    def __init__(self) -> None:
        self.hooks: list[tuple[str, object]] = []

    def register(self, event: str, fn: object) -> None:
        self.hooks.append((event, fn))


def test_browser_moves_refresh_the_stored_picture_before_the_next_cell(explorer, monkeypatch):
    """A move from the view leaves the live output alone (re-sending it would rebuild the view), and the picture
    and summary of the display bundle catch up in pre_run_cell; a change from code refreshes them at once."""
    import IPython
    import IPython.display

    from ptort_lab.notebook import widgets

    sent: list[dict] = []
    monkeypatch.setattr(IPython.display, "update_display",
                        lambda data, **kw: sent.append({"data": data, "display_id": kw["display_id"]}))
    shell = type("Shell", (), {"events": _Events()})()
    monkeypatch.setattr(IPython, "get_ipython", lambda: shell)
    monkeypatch.setattr(widgets, "_hooked", [])
    explorer._display_ids = ["d1"]
    explorer.request = {"rid": "v1:1", "knobs": {"depth": 4}, "equal_cores": None}
    assert sent == [] and shell.events.hooks == [("pre_run_cell", widgets.catch_up_pictures)]
    explorer.request = {"rid": "v1:2", "knobs": {"depth": 3}, "equal_cores": None}
    assert len(shell.events.hooks) == 1  # registered once
    widgets.catch_up_pictures(None)
    assert [m["display_id"] for m in sent] == ["d1"]
    data = sent[0]["data"]
    assert data["text/plain"].startswith("knobs: depth=3 ") and data["image/png"][:4] == b"\x89PNG"
    widgets.catch_up_pictures(None)
    assert len(sent) == 1  # nothing behind any more
    explorer.update(depth=2)
    assert len(sent) == 2 and sent[1]["data"]["text/plain"].startswith("knobs: depth=2 ")


def test_a_failed_browser_move_leaves_the_picture_alone(explorer, monkeypatch):
    from ptort_lab.notebook import widgets

    monkeypatch.setattr(widgets, "_hooked", ["shell"])
    explorer._display_ids = ["d1"]
    explorer.request = {"rid": "v1:1", "knobs": {"depth": 0}, "equal_cores": None}
    assert explorer.view["error"] and explorer not in widgets._BEHIND
