"""The mypyc-compiled pricing modules (ptort_lab/compiled.py): loaded only when built from the sources as they are,
and giving the traces the Python modules give."""
from __future__ import annotations

import importlib.machinery
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import ptort_lab
from ptort_lab import compiled
from ptort_lab.build_compiled import missing_tools

TESTS = Path(__file__).resolve().parent
SAME_CASES = ("fa pipeline S=1024", "fa data_parallel S=1024", "fa pipeline S=1024 small L2",
              "csp_attention fa placement")


def _digests(pure: bool) -> dict[str, object]:
    """test_memo's whole-trace digests of SAME_CASES, computed in a fresh Python (pure: with the Python modules)."""
    code = (f"import json, sys; sys.path[:0] = [{str(TESTS)!r}, {str(TESTS / 'sim')!r}]\n"
            "import ptort_lab.compiled as compiled, test_memo as t\n"
            f"digests = {{n: t._digest(t.CASES[n]()) for n in {SAME_CASES!r}}}\n"
            "print(json.dumps({'status': compiled.status(), 'digests': digests}))\n")
    env = {k: v for k, v in os.environ.items() if k != compiled.PURE_ENV}
    if pure:
        env[compiled.PURE_ENV] = "1"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def test_the_pricing_modules_run_compiled_where_a_c_compiler_is():
    missing = missing_tools()
    if missing is not None or os.environ.get(compiled.PURE_ENV):
        pytest.skip(f"no compiled build here: {missing or compiled.PURE_ENV}")  # (make test builds it otherwise)
    import ptort_lab.sim.costs  # noqa: F401 - loads the four modules
    assert compiled.status() == "compiled (6 modules with mypyc: memory, buffers, memo, npu_run, residency, deps)"
    for module in compiled.MODULES:
        file = Path(sys.modules[module].__file__ or "")
        assert file.is_relative_to(compiled.BUILD_DIR) and file.suffix == ".so", module  # (mypyc names its path)


def test_the_python_modules_and_the_compiled_build_give_the_same_traces():
    """Each against the digests taken before the modules were compiled (test_memo.EXPECTED)."""
    sys.path.insert(0, str(TESTS / "sim"))
    try:
        from test_memo import EXPECTED
    finally:
        sys.path.remove(str(TESTS / "sim"))
    want = {name: EXPECTED[name] for name in SAME_CASES}
    pure = _digests(pure=True)
    assert pure == {"status": "pure Python (PTORT_LAB_PURE_PYTHON is set)", "digests": want}
    built = _digests(pure=False)
    assert built["digests"] == want
    assert built["status"] == compiled.usable_files()[1]


def _fake_build(tmp_path: Path) -> tuple[Path, Path]:
    """A package dir holding copies of the four sources and a build dir whose manifest matches them."""
    package, build = tmp_path / "ptort_lab", tmp_path / "_compiled"
    modules = {}
    for module in compiled.MODULES:
        source = compiled.source_path(module, package)
        source.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(compiled.source_path(module), source)
        name = module.rsplit(".", 1)[1] + ".so"
        modules[module] = {"file": name, "sha256": compiled.source_digest(source)}
    build.mkdir()
    for name in [entry["file"] for entry in modules.values()] + ["lib.so"]:
        (build / name).write_bytes(b"")
    manifest = {"python": compiled.build_tag(), "library": "lib.so", "modules": modules,
                "package_sha256": compiled.package_digest(package)}
    (build / compiled.MANIFEST).write_text(json.dumps(manifest))
    return package, build


def test_a_build_is_used_only_when_every_source_matches_it_on_the_python_it_was_built_for(tmp_path):
    package, build = _fake_build(tmp_path)
    files, why = compiled.usable_files(build, package, environ={})
    assert why == "compiled (6 modules with mypyc: memory, buffers, memo, npu_run, residency, deps)"
    assert files == {**{m: build / (m.rsplit(".", 1)[1] + ".so") for m in compiled.MODULES},
                     compiled.LIBRARY: build / "lib.so"}
    assert compiled.usable_files(build, package, environ={compiled.PURE_ENV: "1"}) == \
        ({}, "pure Python (PTORT_LAB_PURE_PYTHON is set)")
    assert compiled.usable_files(build, package, environ={compiled.PURE_ENV: "0"})[0] == files

    other = package / "sim" / "machine.py"  # a module the compiled ones import (not compiled itself)
    other.write_text("# a field's type changed\n")
    assert compiled.usable_files(build, package, environ={}) == \
        ({}, "pure Python (ptort_lab's sources changed since the compiled build: run `make` to rebuild it)")
    memo = compiled.source_path("ptort_lab.sim.memo", package)
    memo.write_text(memo.read_text() + "# an edit\n")
    assert compiled.usable_files(build, package, environ={}) == \
        ({}, "pure Python (memo.py changed since the compiled build: run `make` to rebuild it)")


def test_a_missing_foreign_or_incomplete_build_is_not_used(tmp_path):
    package, build = _fake_build(tmp_path)
    (build / "lib.so").unlink()
    assert compiled.usable_files(build, package, environ={}) == \
        ({}, "pure Python (the compiled build misses lib.so: run `make` to rebuild it)")
    manifest = json.loads((build / compiled.MANIFEST).read_text())
    (build / compiled.MANIFEST).write_text(json.dumps({**manifest, "python": "cpython-27 .so"}))
    assert compiled.usable_files(build, package, environ={}) == \
        ({}, "pure Python (the compiled build is for another Python: 'cpython-27 .so')")
    (build / compiled.MANIFEST).write_text("{not json")
    assert compiled.usable_files(build, package, environ={}) == \
        ({}, "pure Python (no compiled build: run `make` or `python -m ptort_lab.build_compiled`)")


def test_the_finder_is_installed_once_before_the_path_finder_and_finds_only_the_build():
    compiled.install()
    finders = [f for f in sys.meta_path if isinstance(f, compiled.CompiledFinder)]
    assert len(finders) == 1 and sys.meta_path.index(finders[0]) < sys.meta_path.index(importlib.machinery.PathFinder)
    assert finders[0].find_spec("ptort_lab.sim.engine") is None
    assert ptort_lab.__name__ == "ptort_lab"


def test_numpy_integers_reach_the_compiled_run_as_they_reach_the_python_one():
    """A model that wraps the NPU model (the pattern NpuCostModel's hint gives) may hand it numpy ints; the single-
    run API may get a placement of numpy ints; the compiled NpuRun takes them as the ints they hold."""
    import copy

    import numpy as np

    from ptort_lab import NpuCostModel
    from ptort_lab.sim.cost_model import CostModel
    from ptort_lab.spec_pipeline import build

    class Derated(CostModel):
        time_ordered = True

        def __init__(self, as_numpy):
            self.npu = NpuCostModel()
            self.clock_hz = self.npu.clock_hz
            self.int = np.int64 if as_numpy else int

        def begin_run(self, workload, placement, vector_units=None):
            self.run = self.npu.begin_run(workload, placement, vector_units)
            return self

        def task_timing(self, task, ir, core, start, lane, pipelined):
            issued, end, spans = self.run.task_timing(task, ir, self.int(core), self.int(start), lane, pipelined)
            return issued + self.int(10), end + self.int(10), spans

    def spans(as_numpy):
        program = build(depth=2, tiles=4).compile(cost_model=Derated(as_numpy), compute_values=False).execute()
        return [(s.lane, s.start, s.end) for s in program.trace().spans]
    assert spans(as_numpy=True) == spans(as_numpy=False)
    pipe = build(depth=2, tiles=2)
    model = NpuCostModel()
    model.prepare(pipe, {p.name: np.int64(i) for i, p in enumerate(pipe.processes)})
    assert {type(core) for core in model._current().placement.values()} == {int}
    assert copy.deepcopy(model)._last is None  # (a copy holds no run state: the run last begun is per run)


def test_a_cost_model_returning_numpy_ints_gives_plain_int_clocks():
    import numpy as np

    from ptort_lab.sim.cost_model import CostModel
    from ptort_lab.spec_pipeline import build

    class Numpy(CostModel):
        def task_timing(self, task, ir, core, start, lane, pipelined):
            end = np.int64(start) + np.int64(7)
            return end, end, []

    stats = build(depth=2, tiles=4).compile(cost_model=Numpy(), compute_values=False).execute().stats()
    assert type(stats.total_cycles) is int


def test_editor_lock_links_and_checkpoint_copies_are_not_sources(tmp_path):
    package, build = _fake_build(tmp_path)
    (package / "sim" / ".#npu_run.py").symlink_to(tmp_path / "nowhere")  # (Emacs' lock link: dangling)
    (package / ".ipynb_checkpoints").mkdir()
    (package / ".ipynb_checkpoints" / "compiled-checkpoint.py").write_text("# JupyterLab's copy\n")
    assert compiled.usable_files(build, package, environ={})[1].startswith("compiled")
