"""The explorer in a real JupyterLab after Kernel -> Interrupt during a slider rerun, and after a kernel restart.

A slow study (each rerun takes seconds) is interrupted while a depth move runs: the panel must answer (busy mark
gone, the message "interrupted; showing the last good run (...)", the slider back at the last good depth), and the
next move must run as usual (the view used to stay "running…" forever and drop every later move). After a kernel
restart the view's controls are off and it says to re-run the cell (a move used to show "running…" forever).
Uses the server and browser set-up of tests/extension/test_browser.py; skips (with the reason) when chromium,
playwright, JupyterLab or anywidget is missing.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "extension"))

from test_browser import KERNEL_READY, LabServer  # noqa: E402
from test_explorer_browser import explorer_requirements, launch_chromium, open_explorer  # noqa: E402

pytestmark = pytest.mark.browser

CELLS = [
    "from ptort_lab.explore import Knobs\nfrom ptort_lab.notebook import Explorer\n"
    "from ptort_lab.spec_pipeline import build",
    # Long enough that an interrupt lands during the rerun (a few seconds per run here).
    "explorer = Explorer(build, Knobs(depth=2, tile=(64, 64), tiles=6000, cores=4))\nexplorer",
]
BUSY = "() => document.querySelector('.ptort-explorer').dataset.busy === '{}'"
KERNEL = "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel"


def _write_notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def _press_on_depth(page, root) -> None:
    depth = root.locator("input[data-knob='depth']")
    depth.scroll_into_view_if_needed()
    depth.focus()
    page.keyboard.press("ArrowRight")


def _text(root, selector: str) -> str:
    return root.locator(selector).first.inner_text()


def test_interrupted_and_restarted_explorer(tmp_path):
    reason = explorer_requirements()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    root_dir = tmp_path / "root"
    root_dir.mkdir()
    _write_notebook(root_dir / "slow.ipynb")
    server = LabServer(root_dir)
    try:
        server.wait_ready()
        with sync_playwright() as p:
            browser = launch_chromium(p)
            try:
                page = browser.new_context(viewport={"width": 1400, "height": 900}).new_page()
                errors: list[str] = []
                page.on("pageerror", lambda e: errors.append(str(e)))
                root = open_explorer(page, server, "slow.ipynb")
                page.wait_for_function(KERNEL_READY, timeout=120_000, polling=250)

                # A depth move, interrupted while it runs: the panel answers and keeps the last good run.
                _press_on_depth(page, root)
                page.wait_for_function(BUSY.format("true"), timeout=10_000)
                page.wait_for_function(f"() => ({KERNEL})().status === 'busy'", timeout=10_000, polling=50)
                page.wait_for_timeout(300)
                page.evaluate(f"() => {{ ({KERNEL})().interrupt(); return true; }}")
                page.wait_for_function(BUSY.format("false"), timeout=20_000)
                page.screenshot(path=str(tmp_path / "interrupted.png"))
                assert _text(root, "pre.ptort-explorer-error") == (
                    "interrupted; showing the last good run (depth=2 tile=64x64 tiles=6000 cores=4)")
                assert _text(root, "output.ptort-explorer-value") == "2"
                assert "depth=2" in _text(root, "pre.ptort-explorer-summary")

                # The next move runs and redraws as usual.
                _press_on_depth(page, root)
                page.wait_for_function(BUSY.format("false"), timeout=60_000)
                page.wait_for_function(
                    "() => document.querySelector('pre.ptort-explorer-summary').innerText.includes('depth=3')",
                    timeout=60_000)
                assert root.locator("pre.ptort-explorer-error").first.is_hidden()
                assert _text(root, "output.ptort-explorer-value") == "3"

                # A kernel restart: the controls go off and the view says what to do.
                page.evaluate(f"() => {{ ({KERNEL})().restart(); return true; }}")
                page.wait_for_function("() => document.querySelector('.ptort-explorer').dataset.kernel === 'gone'",
                                       timeout=30_000)
                page.screenshot(path=str(tmp_path / "restarted.png"))
                assert _text(root, "pre.ptort-explorer-error").startswith(
                    "the kernel restarted: re-run this cell to use the explorer again")
                assert all(root.locator("input[data-knob]").evaluate_all("els => els.map(e => e.disabled)"))
                assert root.get_attribute("data-busy") == "false"
                assert not errors, errors
            finally:
                browser.close()
    finally:
        server.stop()
    assert server.proc.returncode is not None
