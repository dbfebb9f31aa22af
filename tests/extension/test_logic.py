"""The JupyterLab renderers' framework-free TypeScript logic, run with node's built-in test runner (no browser).

extensions/ptort-lab-renderers/src/logic/*.ts turn a ptort Chrome trace (or the explorer's compact run data) into
rows and rectangles, do the zoom and pan maths, pick colours, write the tooltip text and filter Graphviz SVG. Their
tests (extensions/ptort-lab-renderers/test/*.ts) read the committed fixtures and, through PTORT_TRACE_FIXTURE /
PTORT_PIPELINE_FIXTURE / PTORT_COMPACT_FIXTURE, the payloads that ptort_lab emits right now, so a change of the export
format shows up here.
`jlpm lint` (ESLint and Prettier) runs here too, and the constants that both sides define are checked to agree:
the MIME types (src/logic/mime.ts against the Python modules) and the timeline palette (ptort_lab/viz/palette.json
against the extension's copy).

Needs node >= 18 and the extension's node_modules (extensions/build.sh installs them); skips with the reason
otherwise (the two agreement checks need neither). The core package never depends on any of this.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXT = ROOT / "extensions" / "ptort-lab-renderers"
TSC = EXT / "node_modules" / "typescript" / "bin" / "tsc"
ESLINT = EXT / "node_modules" / "eslint" / "bin" / "eslint.js"
JLPM = Path(sys.executable).with_name("jlpm")
NODE = shutil.which("node")
MIME_TS = EXT / "src" / "logic" / "mime.ts"
# The Python module that spells the ptort MIME types (everything else imports them); it must agree with mime.ts.
MIME_PY = [ROOT / "ptort_lab" / "viz" / "views.py"]
PALETTE = ROOT / "ptort_lab" / "viz" / "palette.json"
PALETTE_COPY = EXT / "src" / "logic" / "palette.json"


def _ts_mimes() -> dict[str, str]:
    """The MIME constants of src/logic/mime.ts: {"TRACE_MIME": "application/...", ...}."""
    return dict(re.findall(r"^export const (\w+_MIME) = '([^']+)';$", MIME_TS.read_text(), re.M))


TRACE_MIME = _ts_mimes()["TRACE_MIME"]
PIPELINE_MIME = _ts_mimes()["PIPELINE_MIME"]


def _node_major() -> int:
    if NODE is None:
        return 0
    out = subprocess.run([NODE, "--version"], capture_output=True, text=True, timeout=30).stdout.strip()
    m = re.match(r"v(\d+)", out)
    return int(m.group(1)) if m else 0


def _spec_pipeline(tiles: int, rows: int, cols: int, depth: int):
    """The spec pipeline (load -> compute -> store), as the extension's fixture script builds it."""
    from ptort_lab.spec_pipeline import build
    return build(depth, (rows, cols), tiles)


@pytest.fixture(scope="module")
def node_ready() -> str:
    if NODE is None:
        pytest.skip("node is not installed: the renderer logic tests need node >= 18 (Debian: apt-get install nodejs)")
    if _node_major() < 18:
        pytest.skip(f"node {_node_major()} is too old for `node --test`: need node >= 18")
    if not TSC.exists():
        pytest.skip("extensions/ptort-lab-renderers/node_modules is missing: run extensions/build.sh first "
                    "(it installs the locked npm packages and builds the wheel)")
    return NODE


@pytest.fixture(scope="module")
def fresh_payloads(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The trace and pipeline payloads of a %%ptort-style result, exported now (not the committed fixtures)."""
    from ptort_lab.explore import Knobs, run_study
    from ptort_lab.notebook.compact import compact_run
    from ptort_lab.notebook.display import PtortResult

    out = tmp_path_factory.mktemp("ptort-payloads")
    files: dict[str, list[Path]] = {"trace": [], "pipeline": [], "compact": []}
    for knobs in (Knobs(depth=2, tile=(64, 64), tiles=6, cores=2), Knobs(depth=1, tile=(32, 64), tiles=3, cores=3)):
        workload = _spec_pipeline(knobs.tiles, *knobs.tile, knobs.depth)
        comparison = run_study(workload, knobs)
        bundle = PtortResult(comparison, workload)._repr_mimebundle_(
            include=[TRACE_MIME, PIPELINE_MIME, "text/plain"])
        for kind, mime in (("trace", TRACE_MIME), ("pipeline", PIPELINE_MIME)):
            assert mime in bundle, f"the %%ptort display no longer emits {mime}"
            path = out / f"{kind}-{len(files[kind])}.json"
            path.write_text(json.dumps(bundle[mime]))
            files[kind].append(path)
        # The explorer's compact data of the same runs, paired with their trace: modelFromCompact == buildModel.
        path = out / f"compact-{len(files['compact'])}.json"
        path.write_text(json.dumps({"runs": {label: compact_run(label, p) for label, p in comparison.runs}}))
        files["compact"].append(path)
    return {k: v for k, v in files.items()}


def test_display_payloads_have_the_shape_the_renderers_read(fresh_payloads):
    """The contract with ptort_lab.notebook.display: runs of Chrome traces with otherData.ptort, knobs, and DOT."""
    for path in fresh_payloads["trace"]:
        data = json.loads(path.read_text())
        assert set(data) >= {"runs", "knobs"}
        assert list(data["runs"]) == ["pipeline", "data-parallel"]
        for run in data["runs"].values():
            assert run["displayTimeUnit"] == "ns"
            assert run["otherData"]["ptort"]["format"] == "ptort-chrome-trace"
            assert {e["ph"] for e in run["traceEvents"]} <= {"M", "X", "C"}
    for path in fresh_payloads["pipeline"]:
        data = json.loads(path.read_text())
        assert data["dot"].startswith("digraph") and data["nodes"] and "edges" in data


def test_mime_constants_agree_between_typescript_and_python():
    """src/logic/mime.ts is the renderers' one definition; every Python spelling of a ptort MIME type matches it."""
    ts = _ts_mimes()
    assert ts == {"TRACE_MIME": "application/vnd.ptort.trace+json",
                  "PIPELINE_MIME": "application/vnd.ptort.pipeline+json"}
    for path in MIME_PY:
        defined = dict(re.findall(r'^(\w+_MIME) = "([^"]+)"$', path.read_text(), re.M))
        assert defined, f"{path.relative_to(ROOT)} no longer defines a *_MIME constant: update MIME_PY"
        for name, value in defined.items():
            assert ts.get(name) == value, f"{path.relative_to(ROOT)}: {name} = {value!r}, mime.ts says {ts.get(name)!r}"
    # No other spelling anywhere in the package (a new copy would drift unseen).
    for path in sorted((ROOT / "ptort_lab").rglob("*.py")):
        for value in re.findall(r"application/vnd\.ptort\.[\w.+-]+", path.read_text()):
            assert value in ts.values(), f"{path.relative_to(ROOT)} spells the unknown MIME type {value!r}"


def test_palette_is_shared_by_the_python_and_typescript_timelines():
    """ptort_lab/viz/palette.json (shipped in the wheel) and the extension's copy are the same text and well formed."""
    assert PALETTE_COPY.read_text() == PALETTE.read_text(), (
        "extensions/ptort-lab-renderers/src/logic/palette.json differs from ptort_lab/viz/palette.json: run "
        "`jlpm sync:palette` in the extension (its build does it too) and commit the copy")
    palette = json.loads(PALETTE.read_text())
    colour = re.compile(r"^#[0-9a-f]{6}$")
    assert palette["version"] == 1
    assert len(palette["categorical"]) == 10 and all(colour.match(c) for c in palette["categorical"])
    for table in ("ops", "pipes"):
        assert palette[table] and all(colour.match(c) for c in palette[table].values()), table
    for key in ("stall", "cluster", "launch", "makespan", "channel", "channel_depth"):
        assert colour.match(palette[key]), key
    # The ten common ops keep ten different colours; loads and stores look the same by op and by pipe.
    assert len(set(palette["ops"].values())) == len(palette["ops"]) == 10
    assert palette["pipes"]["MTE2"] == palette["ops"]["load"] and palette["pipes"]["MTE3"] == palette["ops"]["store"]
    # The pipes are those the exporter orders lanes by.
    from ptort_lab.sim.export import PIPE_ORDER
    assert list(palette["pipes"]) == list(PIPE_ORDER)


def test_lint(node_ready):
    """`jlpm lint`: ESLint (typescript-eslint recommended + function and module size limits) and Prettier --check."""
    if not ESLINT.exists():
        pytest.skip("eslint is not installed in the extension's node_modules: run extensions/build.sh first")
    if not JLPM.exists():
        pytest.skip(f"jlpm is not next to {sys.executable} (it ships with jupyterlab)")
    env = {"PATH": f"{Path(node_ready).parent}:{JLPM.parent}:/usr/bin:/bin", "YARN_ENABLE_TELEMETRY": "0",
           "YARN_ENABLE_PROGRESS_BARS": "0", "HOME": os.environ.get("HOME", "/tmp")}
    run = subprocess.run([str(JLPM), "run", "lint"], cwd=EXT, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, (run.stdout + run.stderr)[-6000:]
    assert "All matched files use Prettier code style!" in run.stdout + run.stderr


def test_renderer_logic_unit_tests(node_ready, fresh_payloads, tmp_path):
    """tsc compiles src/logic + test/ to CommonJS, then `node --test` runs every test file; all must pass."""
    env = {
        "PATH": str(Path(node_ready).parent) + ":/usr/bin:/bin",
        "PTORT_TRACE_FIXTURE": ":".join(str(p) for p in fresh_payloads["trace"]),
        "PTORT_PIPELINE_FIXTURE": ":".join(str(p) for p in fresh_payloads["pipeline"]),
        "PTORT_COMPACT_FIXTURE": ":".join(f"{c}={t}" for c, t in zip(fresh_payloads["compact"],
                                                                    fresh_payloads["trace"])),
    }
    build = subprocess.run([node_ready, str(TSC), "-p", "tsconfig.test.json", "--outDir", str(tmp_path / "out")],
                           cwd=EXT, capture_output=True, text=True, timeout=300, env=env)
    assert build.returncode == 0, build.stdout + build.stderr
    # The compiled tests find the fixtures relative to their own location: mirror the source layout.
    files = sorted((tmp_path / "out" / "test").glob("*.test.js"))
    assert len(files) >= 5, files
    shutil.copytree(EXT / "test" / "fixtures", tmp_path / "test" / "fixtures")
    run = subprocess.run([node_ready, "--test", *map(str, files)], cwd=tmp_path, capture_output=True, text=True,
                         timeout=300, env=env)
    summary = "\n".join(line for line in run.stdout.splitlines() if line.startswith(("# tests", "# pass", "# fail")))
    assert run.returncode == 0, run.stdout[-6000:] + run.stderr[-2000:]
    assert re.search(r"^# fail 0$", run.stdout, re.M), summary
    tests = int(re.search(r"^# tests (\d+)$", run.stdout, re.M).group(1))
    assert tests >= 61, summary
    assert "modelFromCompact equals buildModel of the same runs" in run.stdout, "test/compact.test.ts did not run"
