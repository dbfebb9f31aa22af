"""The explorer widget (anywidget) in real front ends: JupyterLab and Notebook 7 in headless Debian chromium.

Opens a notebook whose cell shows ``Explorer(build, ...)`` (the spec pipeline), checks that the view draws both
timelines client-side (slices, channel rows, the table and the verdict), that releasing a slider sends one request
and redraws with the new run (the depth shown in the table and the pipeline's makespan change), that the busy
indicator clears, that arrow keys move a slider run after run without losing its focus, and that a plain wheel over
the explorer's timeline scrolls the page instead of zooming. The same notebook is opened in Notebook 7 too. The view
needs no JupyterLab extension: only anywidget (and its own labextension, which its wheel installs). Uses the server
and browser set-up of test_browser.py; skips (with the reason) when chromium, playwright, JupyterLab, Notebook 7 or
anywidget is missing.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from test_browser import CHROMIUM, KERNEL_READY, SCROLLER, LabServer  # noqa: E402

pytestmark = pytest.mark.browser

SETUP = ("from ptort_lab.explore import Knobs\nfrom ptort_lab.notebook import Explorer\n"
         "from ptort_lab.spec_pipeline import build")


def explorer_cells(tiles: int = 16) -> list[str]:
    return [
        SETUP,
        f"explorer = Explorer(build, Knobs(depth=2, tile=(128, 128), tiles={tiles}, cores=4))\nexplorer",
        # Room below the output, so that the page can scroll when the wheel turns over the timeline.
        "print('\\n'.join(f'line {i}' for i in range(80)))",
    ]


def explorer_requirements(notebook_7: bool = False) -> str | None:
    """Why the explorer cannot be driven in a browser here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: apt-get install -y chromium (never `playwright install`)"
    for module, fix in (("playwright.sync_api", "pip install playwright"), ("anywidget", "pip install anywidget"),
                        ("jupyterlab", "pip install jupyterlab"),
                        *([("notebook", "pip install 'notebook>=7'")] if notebook_7 else [])):
        try:
            __import__(module)
        except ImportError:
            return f"{module} is not installed: {fix}"
    return None


def write_explorer_notebook(path: Path, tiles: int = 16) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in explorer_cells(tiles)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def launch_chromium(p):
    return p.chromium.launch(
        executable_path=str(CHROMIUM), headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"])


def open_explorer(page, server: LabServer, name: str, notebook_7: bool = False):
    """Open the notebook, run every cell, and return the explorer's root once both timelines are drawn."""
    path = "notebooks" if notebook_7 else "lab/tree"
    page.goto(f"{server.base}/{path}/{name}?token={server.token}&reset", wait_until="domcontentloaded")
    page.wait_for_function("() => !!window.jupyterapp", timeout=60_000)
    page.wait_for_function(KERNEL_READY, timeout=90_000, polling=250)
    page.wait_for_timeout(500)  # a kernel that is about to be replaced (restart races) shows up here
    page.wait_for_function(KERNEL_READY, timeout=90_000, polling=250)
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); return true; }")
    root = page.locator(".ptort-explorer")
    page.wait_for_selector(".ptort-explorer svg.ptort-timeline-svg rect.ptort-slice", timeout=120_000)
    return root


def _table_row(root, run: str) -> list[str]:
    return root.locator(f"table.ptort-explorer-table tr[data-run='{run}'] td").all_inner_texts()


def _check_first_draw(root) -> None:
    """Both runs drawn from run data: slices, two channel rows, a two-row table and the verdict."""
    assert root.locator("rect.ptort-slice").count() >= 48
    assert root.locator("path.ptort-counter-fill").count() == 2
    assert _table_row(root, "pipeline")[1] == "3" and _table_row(root, "data-parallel")[1] == "4"
    assert root.locator(".ptort-explorer-verdict").inner_text().startswith("data-parallel ")
    assert [root.locator(f"input[data-knob='{k}']").count() for k in ("depth", "tile", "tiles", "cores")] == [1] * 4


def _check_slider_redraw(page, root) -> None:
    """Dragging the depth slider to its left end (2 -> 1) and releasing it reruns and redraws: a longer pipeline,
    the busy mark gone."""
    before = _table_row(root, "pipeline")[2]
    box = root.locator("input[data-knob='depth']").bounding_box()
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] * 0.14, y)  # the thumb at 2 of 1..8
    page.mouse.down()
    page.mouse.move(box["x"] + 1, y, steps=4)
    page.mouse.up()
    page.wait_for_function("() => (window.ptortExplorerTimings || []).length >= 1", timeout=30_000)
    page.wait_for_function("() => document.querySelector('.ptort-explorer').dataset.busy === 'false'",
                           timeout=30_000)
    after = _table_row(root, "pipeline")[2]
    assert int(after.replace(",", "")) > int(before.replace(",", "")), (before, after)
    assert root.locator("output.ptort-explorer-value").first.inner_text() == "1"
    assert "depth=1" in root.locator("pre.ptort-explorer-summary").inner_text()
    timing = page.evaluate("() => window.ptortExplorerTimings[0]")
    assert timing["knob"] == "depth" and timing["ms"] > 0


def _check_keyboard_moves_keep_focus(page, root) -> None:
    """The arrow keys move the focused slider, one run per key, and the slider keeps the focus through each reply
    (it used to be rebuilt by every reply, so the second key press went nowhere)."""
    depth = root.locator("input[data-knob='depth']")
    depth.focus()
    for n, value in ((2, "2"), (3, "3")):
        before = page.evaluate("() => window.ptortExplorerTimings.length")
        page.keyboard.press("ArrowRight")
        try:
            page.wait_for_function(f"() => window.ptortExplorerTimings.length > {before}", timeout=30_000)
        except Exception:  # pragma: no cover - the failure report
            state = page.evaluate("() => [document.activeElement && document.activeElement.outerHTML.slice(0, 200), "
                                  "document.querySelector(\"input[data-knob='depth']\").value, "
                                  "window.ptortExplorerTimings.length]")
            pytest.fail(f"key press {n} ran nothing: focus, depth value, timings = {state}")
        page.wait_for_function("() => document.querySelector('.ptort-explorer').dataset.busy === 'false'",
                               timeout=30_000)
        assert page.evaluate("() => document.activeElement && document.activeElement.dataset.knob") == "depth", n
        assert root.locator("output.ptort-explorer-value").first.inner_text() == value
        assert f"depth={value}" in root.locator("pre.ptort-explorer-summary").inner_text()


def _check_plain_wheel_scrolls(page, root) -> None:
    """A plain wheel over the explorer's timeline scrolls the page and leaves the view alone."""
    timeline = root.locator(".ptort-timeline")
    timeline.scroll_into_view_if_needed()
    box = timeline.bounding_box()
    view0 = timeline.evaluate("el => [el.dataset.viewStart, el.dataset.viewEnd]")
    top0 = timeline.evaluate(SCROLLER)
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + box["height"] * 0.5)
    page.mouse.wheel(0, 200)
    page.wait_for_timeout(300)
    assert timeline.evaluate("el => [el.dataset.viewStart, el.dataset.viewEnd]") == view0
    assert top0 is not None and timeline.evaluate(SCROLLER) > top0, "a plain wheel over the timeline did not scroll"


@pytest.mark.parametrize("app", ["lab", "notebook"])
def test_explorer_draws_and_redraws_in_the_browser(app, tmp_path):
    """JupyterLab and Notebook 7: the explorer draws client-side, a slider release redraws, the wheel scrolls."""
    reason = explorer_requirements(notebook_7=app == "notebook")
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    root_dir = tmp_path / "root"
    root_dir.mkdir()
    write_explorer_notebook(root_dir / "explorer.ipynb")
    server = LabServer(root_dir, app=app)
    try:
        server.wait_ready()
        with sync_playwright() as p:
            browser = launch_chromium(p)
            try:
                page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                try:
                    root = open_explorer(page, server, "explorer.ipynb", notebook_7=app == "notebook")
                except Exception:  # pragma: no cover - the failure report
                    page.screenshot(path=str(tmp_path / "no-explorer.png"))
                    pytest.fail(f"no explorer view ({app}); screenshot {tmp_path / 'no-explorer.png'}; server log:\n"
                                f"{server.log()}")
                _check_first_draw(root)
                page.screenshot(path=str(tmp_path / f"explorer-{app}.png"))
                _check_slider_redraw(page, root)
                _check_keyboard_moves_keep_focus(page, root)
                _check_plain_wheel_scrolls(page, root)
                # Notebook 7 itself logs one start-up error with this test's empty settings dir; none may come
                # from the explorer.
                errors = [e for e in errors if e != "Cannot read properties of undefined (reading 'schema')"]
                assert not errors, errors
            finally:
                browser.close()
    finally:
        server.stop()
    assert server.proc.returncode is not None
