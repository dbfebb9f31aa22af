"""The renderers in a real JupyterLab, driven by headless Debian chromium through Python playwright.

Starts its own JupyterLab on 127.0.0.1 (random free port, ``port_retries=0``, a random token, temporary root,
workspace, settings and runtime dirs), opens a notebook with a ``%%ptort`` cell, runs it, and checks that the
custom trace renderer (not the PNG/SVG fallback) shows the timeline and the diagram; that hover, the colour legend,
the labelled kernel launch, Ctrl + wheel zoom (while a plain wheel scrolls the notebook), drag pan, the run toggle
and the Chrome-trace download work; that clicking a diagram node shows its details; that a Diagram on its own gets
the pipeline renderer; and that both follow JupyterLab's dark theme. Saves screenshots under the test's tmp dir
(``--basetemp DIR`` to keep them: lab.png, trace-light.png, trace-dark.png, diagram-clicked.png, ...). Kills exactly
the server it started.

Skips (with the reason) when /usr/bin/chromium, playwright, JupyterLab or the installed extension is missing:
``apt-get install -y chromium``, ``pip install playwright`` (never ``playwright install``), ``extensions/build.sh``.
"""
from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

CHROMIUM = Path(os.environ.get("PTORT_CHROMIUM", "/usr/bin/chromium"))
LABEXT = Path(sys.prefix) / "share" / "jupyter" / "labextensions" / "ptort-lab-renderers" / "package.json"

PTORT_CELL = """\
%%ptort --depth 2 --tile 64x64 --tiles 6 --cores 2 --show diagram,timeline -o spec
spec_pipeline(DEPTH, TILE, TILES).pipeline
"""

CELLS = [
    "%load_ext ptort_lab",
    "from ptort_lab.spec_pipeline import spec_pipeline",
    PTORT_CELL,
    "spec.diagram()",
    # Room below the outputs, so that the notebook can scroll when the wheel turns over the timeline.
    "print('\\n'.join(f'line {i}' for i in range(80)))",
]


def _requirements() -> str | None:
    """Why this test cannot run here, or None."""
    if not CHROMIUM.exists():
        return f"{CHROMIUM} is missing: apt-get install -y chromium (never `playwright install`)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "python playwright is not installed: pip install playwright (it drives Debian chromium)"
    try:
        import jupyterlab  # noqa: F401
    except ImportError:
        return "jupyterlab is not installed in this environment: pip install jupyterlab"
    if not LABEXT.exists():
        return f"the ptort-lab-renderers extension is not installed ({LABEXT} missing): run extensions/build.sh"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _write_notebook(path: Path) -> None:
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(src) for src in CELLS]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


class LabServer:
    """One JupyterLab (``app="notebook"``: Notebook 7) process on 127.0.0.1 with its own token and temporary dirs;
    stop() ends exactly it."""

    def __init__(self, root: Path, app: str = "lab") -> None:
        self.root = root
        self.port = _free_port()
        self.token = secrets.token_hex(16)
        self.base = f"http://127.0.0.1:{self.port}"
        home = root.parent / "lab-home"
        settings = home / "settings" / "@jupyterlab" / "apputils-extension"
        settings.mkdir(parents=True)
        # No "get Jupyter news?" toast over the outputs, and no network calls for news or updates.
        (settings / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        env = dict(os.environ)
        env.update({
            "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "JUPYTER_CONFIG_DIR": str(home / "config"),
            "IPYTHONDIR": str(home / "ipython"),
            "MPLBACKEND": "Agg",
            "PYTHONWARNINGS": "ignore",
        })
        module, app_class = ("jupyterlab", "LabApp") if app == "lab" else ("notebook", "JupyterNotebookApp")
        exe = Path(sys.executable).with_name(f"jupyter-{app}")
        cmd = [str(exe) if exe.exists() else sys.executable, *([] if exe.exists() else ["-m", module]),
               "--no-browser", "--ip=127.0.0.1", f"--port={self.port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={root}",
               f"--{app_class}.workspaces_dir={home / 'workspaces'}", f"--{app_class}.expose_app_in_browser=True",
               "--ServerApp.open_browser=False"]
        if app == "lab":
            cmd.append("--LabApp.extension_manager=readonly")
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        self.log_path = root.parent / "jupyterlab.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(cmd, cwd=root, env=env, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def api(self, path: str, method: str = "GET") -> object:
        req = urllib.request.Request(f"{self.base}{path}", method=method,
                                     headers={"Authorization": f"token {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as r:  # noqa: S310 - loopback only
            body = r.read()
        return json.loads(body) if body else None

    def wait_ready(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited with {self.proc.returncode}:\n{self.log()}")
            try:
                self.api("/api/status")
                return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError(f"JupyterLab did not answer on {self.base} within {timeout} s:\n{self.log()}")

    def stop(self) -> None:
        try:
            if self.proc.poll() is None:
                try:  # shut its kernels down first, so nothing outlives the server
                    for s in self.api("/api/sessions") or []:
                        self.api(f"/api/sessions/{s['id']}", method="DELETE")
                except OSError:
                    pass
                self.proc.send_signal(signal.SIGTERM)  # exactly this PID, never a name pattern
                try:
                    self.proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(timeout=10)
        finally:
            self._log.close()


@pytest.fixture
def lab(tmp_path: Path):
    reason = _requirements()
    if reason:
        pytest.skip(reason)
    root = tmp_path / "root"
    root.mkdir()
    _write_notebook(root / "demo.ipynb")
    server = LabServer(root)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
    assert server.proc.returncode is not None


@pytest.fixture
def page(lab: LabServer, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run", "--disable-dev-shm-usage"])
        try:
            context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
            pg = context.new_page()
            errors: list[str] = []
            pg.on("pageerror", lambda e: errors.append(str(e)))
            pg.errors = errors  # type: ignore[attr-defined]
            yield pg
        finally:
            browser.close()


KERNEL_READY = """() => {
    const w = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
    return !!k && k.connectionStatus === 'connected' && k.status === 'idle';
}"""


def _run_notebook(page, lab: LabServer) -> None:
    """Open demo.ipynb, wait until its kernel is connected and idle, and start "run all" (without awaiting the
    command's promise: page.evaluate has no timeout, and a kernel that dies would leave it pending forever)."""
    page.goto(f"{lab.base}/lab/tree/demo.ipynb?token={lab.token}&reset", wait_until="domcontentloaded")
    page.wait_for_function("() => !!window.jupyterapp", timeout=60_000)
    page.wait_for_function(KERNEL_READY, timeout=90_000, polling=250)
    page.wait_for_timeout(500)  # a kernel that is about to be replaced (restart races) shows up here
    page.wait_for_function(KERNEL_READY, timeout=90_000, polling=250)
    page.evaluate("() => { window.jupyterapp.commands.execute('notebook:run-all-cells'); return true; }")


SCROLLER = """el => {
    // The nearest ancestor that scrolls vertically: the notebook's scroll container.
    for (let p = el.parentElement; p; p = p.parentElement) {
        const s = getComputedStyle(p);
        if (/(auto|scroll)/.test(s.overflowY) && p.scrollHeight > p.clientHeight) {
            return p.scrollTop;
        }
    }
    return null;
}"""

LUMINANCE = """(el, prop) => {
    // Relative luminance (0 black .. 1 white) of a computed colour: "rgb(12, 34, 56)" or, from color-mix(),
    // "color(srgb 0.05 0.13 0.22)".
    const text = getComputedStyle(el)[prop];
    const scale = text.startsWith('color(') ? 1 : 255;
    const [r, g, b] = text.match(/[\\d.]+/g).map(Number).slice(0, 3).map(v => v / scale);
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}"""


def _open_trace(page, lab: LabServer, tmp_path: Path):
    """Run the notebook and return the locator of the %%ptort output drawn by the trace renderer."""
    _run_notebook(page, lab)
    trace = page.locator(".mimerenderer-ptort-trace")
    try:
        trace.wait_for(timeout=120_000)
    except Exception:  # pragma: no cover - the failure report
        page.screenshot(path=str(tmp_path / "no-trace.png"))
        pytest.fail(f"no trace renderer after run-all; screenshot {tmp_path / 'no-trace.png'}; server log:\n"
                    f"{lab.log()}")
    # The custom renderer won over the text/html, SVG and PNG parts of the same bundle: they are not rendered.
    cell = page.locator(".jp-CodeCell", has=page.locator(".mimerenderer-ptort-trace"))
    assert cell.count() == 1
    assert cell.locator(".jp-OutputArea .mimerenderer-ptort-trace").count() == 1
    assert cell.locator(".jp-RenderedImage, .jp-RenderedSVG, .jp-RenderedHTMLCommon").count() == 0
    # The timeline: rows of slices, channel rows, and the diagram laid out by Graphviz in the browser.
    page.wait_for_selector(".mimerenderer-ptort-trace svg.ptort-timeline-svg rect.ptort-slice", timeout=30_000)
    assert trace.locator("rect.ptort-slice").count() >= 18
    assert trace.locator("path.ptort-counter-fill").count() == 2
    trace.locator(".ptort-diagram svg.ptort-diagram-svg g.node").first.wait_for(timeout=60_000)
    assert trace.locator(".ptort-diagram g.node").count() == 3
    assert "pipeline" in trace.locator("pre.ptort-summary").inner_text()
    return trace


def _check_legend_and_launch(page, trace) -> None:
    """The legend names the ops in use, stalls, the launch and the makespan; the launch is labelled and hoverable."""
    from playwright.sync_api import expect

    legend = trace.locator(".ptort-legend .ptort-legend-item")
    assert legend.all_inner_texts() == ["load", "cast", "store", "mul", "stall", "kernel launch", "makespan"]
    swatch = trace.locator(".ptort-legend .ptort-swatch").first
    assert swatch.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(78, 121, 167)"  # load, palette.json
    trace.locator("select.ptort-colour-by").select_option("pipe")
    expect(legend.first).to_have_text("MTE2")
    assert legend.all_inner_texts()[:3] == ["MTE2", "V", "MTE3"]
    trace.locator("select.ptort-colour-by").select_option("op")
    expect(legend.first).to_have_text("load")

    label = trace.locator("text.ptort-launch-label")
    expect(label).to_have_count(1)
    assert label.text_content() == "kernel launch \u00b7 10,900 cycles"
    # (the colour-by change above redraws the plot: wait for the new band and labels before measuring them; a
    # bounding box of an element the redraw just replaced is None)
    expect(trace.locator("rect.ptort-launch-band")).to_be_visible()
    expect(trace.locator("text.ptort-label-lane").first).to_be_visible()
    band = trace.locator("rect.ptort-launch-band").bounding_box()
    lane = trace.locator("text.ptort-label-lane").first.bounding_box()  # AIV0.MTE2: idle during the launch
    assert band is not None and lane is not None
    page.mouse.move(band["x"] + band["width"] / 2, lane["y"] + lane["height"] / 2)
    tip = trace.locator(".ptort-tooltip")
    expect(tip).to_contain_text("kernel launch")
    assert "10,900 cycles" in tip.inner_text()


def _check_wheel(page, trace, timeline) -> tuple[float, float]:
    """A plain wheel over the plot scrolls the notebook and leaves the view; Ctrl + wheel zooms about the pointer."""
    def view() -> tuple[float, float]:
        return (float(timeline.get_attribute("data-view-start")), float(timeline.get_attribute("data-view-end")))

    start0, end0 = view()
    box = timeline.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + 40)
    top0 = timeline.evaluate(SCROLLER)
    assert top0 is not None, "no scroll container around the timeline"
    page.mouse.wheel(0, 200)
    page.wait_for_function(f"el => ({SCROLLER})(el) !== {top0}", arg=timeline.element_handle(), timeout=5_000)
    page.wait_for_timeout(200)  # a zoom, had there been one, is drawn on the next frame
    assert view() == (start0, end0), "a plain wheel over the timeline zoomed it"

    box = timeline.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + 40)
    top1 = timeline.evaluate(SCROLLER)
    page.keyboard.down("Control")
    for _ in range(3):
        page.mouse.wheel(0, -300)
    page.keyboard.up("Control")
    page.wait_for_function(
        "([el, w]) => (+el.dataset.viewEnd - +el.dataset.viewStart) < w * 0.8",
        arg=[timeline.element_handle(), end0 - start0], timeout=5_000)
    assert timeline.evaluate(SCROLLER) == top1, "Ctrl + wheel over the timeline scrolled the notebook"
    return view()


def _check_drag(page, timeline, before: tuple[float, float]) -> None:
    """Drag pans: the width stays, the start moves."""
    start1, end1 = before
    box = timeline.bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.6, box["y"] + 40)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + 40, steps=5)
    page.mouse.up()
    page.wait_for_timeout(100)
    start2, end2 = (float(timeline.get_attribute("data-view-start")), float(timeline.get_attribute("data-view-end")))
    assert abs((end2 - start2) - (end1 - start1)) < 1e-6 * (end1 - start1) + 1e-9
    assert start2 > start1


def _check_diagram(page, trace, tmp_path: Path) -> None:
    """A click on a node shows its details (another click, another node's); a drag pans; a plain wheel does not zoom."""
    from playwright.sync_api import expect

    diagram = trace.locator(".ptort-diagram")
    diagram.scroll_into_view_if_needed()
    info = diagram.locator(".ptort-diagram-info")
    diagram.locator("g.node").nth(1).click()
    expect(info).to_contain_text("computer (process)")
    text = info.inner_text()
    assert "kernels: compute_kernel" in text, text
    assert "in:  load_to_compute from loader (depth 2)" in text, text
    assert "out: compute_to_store to storer (depth 2)" in text, text
    expect(diagram.locator("g.node.ptort-selected")).to_have_count(1)
    diagram.screenshot(path=str(tmp_path / "diagram-clicked.png"))
    diagram.locator("g.node").first.click()
    expect(info).to_contain_text("loader (process)")

    svg = diagram.locator("svg.ptort-diagram-svg")
    box0 = svg.get_attribute("viewBox")
    vp = diagram.locator(".ptort-diagram-viewport").bounding_box()
    page.mouse.move(vp["x"] + 5, vp["y"] + 5)
    page.mouse.wheel(0, 150)
    page.wait_for_timeout(200)
    assert svg.get_attribute("viewBox") == box0, "a plain wheel over the diagram zoomed it"
    vp = diagram.locator(".ptort-diagram-viewport").bounding_box()
    page.mouse.move(vp["x"] + 5, vp["y"] + vp["height"] / 2)
    page.mouse.down()
    page.mouse.move(vp["x"] + 80, vp["y"] + vp["height"] / 2, steps=5)
    page.mouse.up()
    assert svg.get_attribute("viewBox") != box0, "dragging the diagram did not pan it"
    expect(info).to_contain_text("loader (process)")  # a drag is not a click: the details stay


def _check_dark_theme(page, trace, tmp_path: Path) -> None:
    """In JupyterLab Dark the timeline, the diagram and the legend use the theme's colours."""
    page.evaluate("() => { window.jupyterapp.commands.execute('apputils:change-theme', "
                  "{theme: 'JupyterLab Dark'}); return true; }")
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'", timeout=30_000)
    page.wait_for_timeout(500)  # the theme's stylesheet applies
    dark = {
        ".ptort-timeline": "backgroundColor",
        ".ptort-diagram-viewport": "backgroundColor",
        ".ptort-diagram g.node path, .ptort-diagram g.node polygon": "fill",
    }
    light = {
        ".ptort-diagram g.node text": "fill",
        ".ptort-diagram g.edge text": "fill",
        ".ptort-timeline text.ptort-label-lane": "fill",
        ".ptort-legend-item": "color",
    }
    for selector, prop in dark.items():
        lum = trace.locator(selector).first.evaluate(LUMINANCE, prop)
        assert lum < 0.3, f"{selector} {prop} is not dark in the dark theme (luminance {lum:.2f})"
    for selector, prop in light.items():
        lum = trace.locator(selector).first.evaluate(LUMINANCE, prop)
        assert lum > 0.6, f"{selector} {prop} is not light in the dark theme (luminance {lum:.2f})"
    trace.locator(".ptort-diagram").scroll_into_view_if_needed()
    trace.screenshot(path=str(tmp_path / "trace-dark.png"))


def test_trace_and_pipeline_renderers_in_jupyterlab(lab, page, tmp_path):
    from playwright.sync_api import expect

    page.set_default_timeout(30_000)  # every locator wait and action; evaluate() has none, so it never awaits work
    trace = _open_trace(page, lab, tmp_path)
    page.screenshot(path=str(tmp_path / "lab.png"), full_page=True)

    # Hover: a tooltip with the op, tile and cycles.
    timeline = trace.locator(".ptort-timeline")
    timeline.scroll_into_view_if_needed()
    slice_box = trace.locator("rect.ptort-slice:not(.ptort-stall)").first.bounding_box()
    page.mouse.move(slice_box["x"] + slice_box["width"] / 2, slice_box["y"] + slice_box["height"] / 2)
    tip = trace.locator(".ptort-tooltip")
    tip.wait_for(state="visible", timeout=5_000)
    text = tip.inner_text()
    assert "cycles" in text and "tile" in text, text
    trace.screenshot(path=str(tmp_path / "trace-hover.png"))

    _check_legend_and_launch(page, trace)
    trace.screenshot(path=str(tmp_path / "trace-light.png"))
    zoomed = _check_wheel(page, trace, timeline)
    _check_drag(page, timeline, zoomed)
    trace.screenshot(path=str(tmp_path / "trace-zoomed.png"))

    # The run toggle: data-parallel, then both on one axis.
    trace.locator("button[data-mode='data-parallel']").click()
    page.wait_for_function("el => el.dataset.run === 'data-parallel'", arg=trace.element_handle())
    expect(trace.locator("path.ptort-counter-fill")).to_have_count(0)  # no channels in the data-parallel run
    trace.locator("button[data-mode='both']").click()
    page.wait_for_function("el => el.dataset.run === 'both'", arg=trace.element_handle())
    expect(trace.locator("text.ptort-label-section")).to_have_count(2)  # waits for the redraw on a busy machine
    expect(trace.locator("text.ptort-launch-label")).to_have_count(2)  # one launch per run
    trace.screenshot(path=str(tmp_path / "trace-both.png"))
    trace.locator("button[data-mode='pipeline']").click()

    # Download: the Chrome trace of the run shown, as Perfetto-ready JSON.
    with page.expect_download() as dl:
        trace.locator("button.ptort-download").first.click()
    download = dl.value
    assert download.suggested_filename.startswith("ptort-pipeline-depth2-tile64x64-tiles6")
    saved = tmp_path / download.suggested_filename
    download.save_as(str(saved))
    doc = json.loads(saved.read_text())
    assert doc["otherData"]["ptort"]["mode"] == "pipeline" and doc["traceEvents"]

    _check_diagram(page, trace, tmp_path)

    # A Diagram on its own is drawn by the pipeline renderer.
    pipeline = page.locator(".jp-OutputArea .mimerenderer-ptort-pipeline")
    pipeline.wait_for(timeout=60_000)
    diagram_cell = page.locator(".jp-CodeCell", has=pipeline)
    assert diagram_cell.locator(".jp-RenderedImage, .jp-RenderedSVG").count() == 0
    pipeline.locator("svg.ptort-diagram-svg g.node").first.wait_for(timeout=60_000)
    pipeline.locator("g.node").last.click()
    expect(pipeline.locator(".ptort-diagram-info")).to_contain_text("storer (process)")
    pipeline.screenshot(path=str(tmp_path / "pipeline.png"))

    _check_dark_theme(page, trace, tmp_path)
    pipeline.screenshot(path=str(tmp_path / "pipeline-dark.png"))

    assert page.errors == [], page.errors  # type: ignore[attr-defined]
    for name in ("lab.png", "trace-hover.png", "trace-light.png", "trace-zoomed.png", "trace-both.png",
                 "diagram-clicked.png", "pipeline.png", "trace-dark.png", "pipeline-dark.png"):
        assert (tmp_path / name).stat().st_size > 5_000
