"""Docs against code, round 9 (hunt 9d): report.check on integers, the Channel depth message, and the numbers and
forms the pages quote, each checked against a run of the code the page describes."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from source_lines import here, located

from ptort_lab import (
    DeadlockError,
    Dense,
    DType,
    In,
    Out,
    PtortTypeError,
    PtortValueError,
    Tensor,
    Tile,
    for_each,
    kernel,
    tl,
)
from ptort_lab.csp import Channel, connect, consume, process, send
from ptort_lab.report import check

ROOT = Path(__file__).resolve().parents[1]
T = Tile[64, 64, DType.F32]


def _text(path: str) -> str:
    """A page's text with its line breaks as spaces (a quoted sentence may wrap anywhere)."""
    return " ".join((ROOT / path).read_text(encoding="utf-8").split())


def _stored_output(notebook: str, marker: str) -> str:
    """The stored stdout of the one cell of ``notebook`` whose source contains ``marker`` (nbval pins it to a run)."""
    cells = json.loads((ROOT / "notebooks" / notebook).read_text(encoding="utf-8"))["cells"]
    found = [c for c in cells if c["cell_type"] == "code" and marker in "".join(c["source"])]
    assert len(found) == 1, (notebook, marker, len(found))
    return "".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/plain", ""))
                   for o in found[0]["outputs"])


# -- #3: report.check compares integers exactly unless a tolerance is given ------------------------------------------
@pytest.mark.parametrize("got, expected", [
    (np.array([2**53 + 1], np.int64), np.array([2**53], np.int64)),  # the docstring's own example
    (np.array([1_000_001], np.int64), np.array([1_000_000], np.int64)),  # within the old default rtol=1e-5
    (np.array([3, 7], np.int32), np.array([3, 8], np.uint8)),
    (np.array([True, False]), np.array([True, True])),
], ids=["past-2**53", "large-ints", "indices", "bools"])
def test_check_integers_are_exact_by_default(got, expected):
    c = check("idx", got, expected)
    assert not c.passed and c.max_abs_error == 1.0 and (c.rtol, c.atol) == (0.0, 0.0)
    assert c.line().endswith("(rtol 0, atol 0): FAIL")
    assert check("idx", expected, expected).passed


def test_check_integer_tolerance_given_still_applies():
    """An explicit tolerance is the caller's choice (a rounded int8 result may be off by one)."""
    assert check("q", np.array([1, 2], np.int8), np.array([1, 3], np.int8), atol=1).passed
    assert check("q", np.array([3], np.int32), np.array([4], np.int32), rtol=0.5).passed
    only_atol = check("q", np.array([1_000_001]), np.array([1_000_000]), atol=0)
    assert not only_atol.passed and only_atol.rtol == 0.0  # the tolerance not given is 0 for integers


def test_check_defaults_for_floats_unchanged():
    c = check("y", np.array([1.0 + 5e-6]), np.array([1.0]))
    assert c.passed and (c.rtol, c.atol) == (1e-5, 1e-6)
    mixed = check("mixed", np.array([10_000_000], np.int64), np.array([10_000_001.0]))  # an int against a float
    assert mixed.passed and (mixed.rtol, mixed.atol) == (1e-5, 1e-6)
    with pytest.raises(PtortTypeError, match=r"check\(rtol=\.\.\.\) must be a number >= 0, got str '1e-3'\."):
        check("y", [1.0], [1.0], rtol="1e-3")


def test_check_docstring_says_what_it_does():
    doc = " ".join((check.__doc__ or "").split())
    assert "a tolerance not given is 0: by default they must be equal" in doc
    assert "an explicit ``atol``/``rtol`` still applies" in doc


# -- #9: Channel(depth=-1) says the rule for a pipeline's channels -----------------------------------------------------
def test_negative_channel_depth_says_pipelines_need_depth_1():
    with pytest.raises(PtortValueError) as e:
        line = here() + 1
        Channel(name="q", depth=-1)
    assert e.value.what == ("Channel 'q' depth must be >= 0, got -1, and >= 1 to carry items in a pipeline "
                            "(connect() refuses depth 0: each item in flight needs a buffer slot).")
    assert e.value.hint == ("depth is the number of buffer slots: 1 = no overlap, 2 = double buffering. To order "
                            "processes without passing data, use an Event (record / synchronize).")
    located(e, line)


# -- #1: pipeline_vs_data_parallel.md quotes tutorial 07's flash-attention run ----------------------------------------
def test_pipeline_vs_data_parallel_quotes_tutorial_07():
    depths = _stored_output("07_gallery.ipynb", "for depth in (1, 2):")
    cycles = {int(d): int(c) for d, c in re.findall(r"flash attention pipeline, depth (\d): (\d+) cycles", depths)}
    summary = _stored_output("07_gallery.ipynb", "%%ptort --depth 2 --tile 64x128 --tiles 4 --cores 1")
    dp = int(re.search(r"data-parallel\s+(\d+) cycles", summary).group(1))
    speedup = re.search(r"speedup vs data-parallel: ([\d.]+)x", summary).group(1)
    assert (cycles[2], dp) == (51713, 56102)  # the stored run (nbval checks it against the code)
    assert (f"at depth 2 the pipeline takes {cycles[2]:,} cycles against {dp:,} for its data-parallel twin on the "
            f"same core ({speedup}x), and {cycles[1]:,} at depth 1") in _text(
                "docs/explanation/pipeline_vs_data_parallel.md")


# -- #2: tutorial 05's what-if runs a workload HBM bounds --------------------------------------------------------------
def test_tutorial_05_what_if_is_hbm_bound():
    out = _stored_output("05_npu_model.ipynb", "def stream(machine")
    rows = {label.strip(): (int(c), int(b)) for label, c, b in
            re.findall(r"^(.+?)\s+(\d+) cycles = .* HBM busy\s+(\d+)%$", out, re.MULTILINE)}
    base, double = rows["910B2"], rows["910B2, 2x HBM"]
    assert base[1] >= 80  # HBM busy most of the run: bandwidth-bound
    assert round(base[0] / double[0], 1) == 1.7  # what the text says: about 1.7x faster, not 2x
    source = " ".join((ROOT / "notebooks/src/05_npu_model.py").read_text(encoding="utf-8").split())
    assert "Twice the bandwidth makes the run about 1.7x faster, not 2x" in source
    assert "for a bandwidth-bound data-parallel run" not in source


# -- #4: tile_channels.md describes the AIV0.MTE2 track the run shows --------------------------------------------------
def _copy_in_compute_copy_out(depth: int):
    @kernel
    def copy(src: In[T], dst: Out[T]):
        tl.store(dst, tl.load(src))

    @kernel
    def square(src: In[T], dst: Out[T]):
        x = tl.load(src)
        tl.store(dst, tl.mul(x, x))

    x = np.random.default_rng(0).random((8, 64, 64)).astype(np.float32)
    X, Y = Tensor(data=x), Tensor(data=np.zeros_like(x))
    qin, qout = Channel("qin", depth=depth, tile=T), Channel("qout", depth=depth, tile=T)
    copy_in = process("copy_in").produces(qin).body(
        for_each(Dense[8](), lambda t: send(qin, copy[t](src=X[t], dst=qin.item))))
    compute = process("compute").consumes(qin).produces(qout).body(
        consume(qin, lambda t: send(qout, square[t](src=qin.item, dst=qout.item))))
    copy_out = process("copy_out").consumes(qout).body(consume(qout, lambda t: copy[t](src=qout.item, dst=Y[t])))
    return connect(copy_in, compute, copy_out).place("shared").compile().execute()


def test_tile_channels_mte2_track_as_described():
    seen = {}
    for depth in (2, 1):
        program = _copy_in_compute_copy_out(depth)
        loads = sorted((s.start, s.end) for s in program.trace().spans if s.lane == "AIV0.MTE2")
        squares = sorted((s.start, s.end) for s in program.trace().spans if s.lane == "AIV0.V")
        held = {e - s for s, e in loads}
        gaps = {b[0] - a[1] for a, b in zip(loads, loads[1:])}
        periods = {b[0] - a[0] for a, b in zip(loads, loads[1:])}
        assert len(held) == len(gaps) == len(periods) == 1, (depth, held, gaps, periods)
        seen[depth] = (held.pop(), gaps.pop(), periods.pop(), program.stats().total_cycles,
                       {e - s for s, e in squares})
    (load, gap2, period2, total2, square), (_, gap1, period1, total1, _) = seen[2], seen[1]
    assert square == {gap1 - gap2}  # depth 1 also waits for the square that frees the slot
    page = _text("docs/howto/tile_channels.md")
    assert (f"Each load holds MTE2 for {load} cycles and its data land {gap2} cycles later. At depth 2 a load starts "
            f"every {period2} cycles: a {gap2}-cycle gap after each while its data land, then the square of that "
            f"tile runs beside the next load ({total2:,} cycles in all). At depth 1 a load starts every {period1} "
            f"cycles: the gap grows to {gap1} cycles, the data plus the {gap1 - gap2}-cycle square that frees the "
            f"slot ({total1:,} cycles).") in page
    assert "busy end to end" not in page


# -- #5: the glossary names the real forms of a process ----------------------------------------------------------------
def test_glossary_has_no_process_decorator():
    page = _text("docs/explanation/semantics.md")
    assert "@process" not in page
    assert '**process**: a CSP stage of the DSL (`Process("loader")`, or the builder `process("loader")`' in page
    with pytest.raises(PtortTypeError, match="Process name must be a non-empty string"):
        process(lambda: None)  # what `@process` on a function does


# -- #6: a page that writes replace(**PRE_ISSUE_13) says where the name comes from ------------------------------------
@pytest.mark.parametrize("page", ["docs/explanation/npu_model.md", "docs/explanation/npu_model_sources.md"])
def test_pre_issue_13_pages_name_the_import(page):
    text = _text(page)
    assert "ascend_910b.replace(**PRE_ISSUE_13)" in text
    assert "`from ptort_lab.sim.machine import PRE_ISSUE_13`" in text
    namespace: dict[str, object] = {}
    exec("from ptort_lab import ascend_910b\nfrom ptort_lab.sim.machine import PRE_ISSUE_13\n"
         "m = ascend_910b.replace(**PRE_ISSUE_13)", namespace)


# -- #7: the flash-attention README's task count ---------------------------------------------------------------------
def test_flash_attention_readme_task_count():
    run = subprocess.run([sys.executable, str(ROOT / "examples/flash_attention/flash_attention_example.py"),
                          "--seq", "4096", "--timing-only", "--variant", "pipeline"],
                         capture_output=True, text=True, timeout=300, check=True)
    tiles, blocks, tasks = map(int, re.search(
        r"(\d+) query tiles x (\d+) KV blocks on \d+ cores, (\d+) tasks", run.stdout).groups())
    assert tasks == tiles * blocks * 6 + tiles * 2 == 3136
    readme = _text("examples/flash_attention/README.md")
    steps, tiles_32k = 32768 // 128 * (32768 // 256), 32768 // 128
    assert (f"{steps} (query tile, KV block) steps, 6 tasks each in the pipeline plus 2 per query tile: "
            f"{steps * 6 + tiles_32k * 2:,} tasks") in readme
    assert "8 tasks each" not in readme


# -- #8: deadlock.md's annotated message is its own example's ----------------------------------------------------------
def test_deadlock_page_message_time_is_the_runs():
    @kernel
    def copy(src: In[T], dst: Out[T]):
        tl.store(dst, tl.load(src))

    X = Tensor(data=np.random.default_rng(0).random((4, 64, 64)).astype(np.float32))
    Y, Z, W = (Tensor(shape=(4, 64, 64), dtype=DType.F32) for _ in range(3))
    q, r = Channel("q", depth=2), Channel("r", depth=2)
    a = process("a").produces(q).consumes(r).body_func(lambda: [
        for_each(Dense[4](), lambda t: send(q, copy[t](src=X[t], dst=Y[t]))),
        consume(r, lambda t: copy[t](src=Z[t], dst=W[t]))])
    b = process("b").produces(r).consumes(q).body_func(lambda: [
        for_each(Dense[4](), lambda t: send(r, copy[t](src=X[t], dst=Z[t]))),
        consume(q, lambda t: copy[t](src=Y[t], dst=W[t]))])
    with pytest.raises(DeadlockError) as e:
        connect(a, b).compile().execute()
    when = re.match(r"Deadlock at t=(\d+) cycles", e.value.what).group(1)
    page = (ROOT / "docs/howto/deadlock.md").read_text(encoding="utf-8")
    assert set(re.findall(r"t=(\d+)", page)) == {when}


# -- #10: make examples and the README say what the examples do --------------------------------------------------------
def test_make_examples_comment_and_readme_golden_claim():
    makefile = (ROOT / "Makefile").read_text(encoding="utf-8")
    assert "--size small" in (ROOT / "examples/flash_attention/Makefile").read_text(encoding="utf-8")
    assert "## every example at its default size (flash_attention: --size small), checked against numpy" in makefile
    readme = _text("README.md")
    without_golden = sorted(d.name for d in (ROOT / "examples").iterdir()
                            if d.is_dir() and not (d / "golden.py").exists())
    assert without_golden == ["csp_pipeline"]
    assert ("Each example checks itself against plain numpy, a `golden.py` beside it with the tolerances in its README "
            "(`csp_pipeline`, the spec's example, compares inline and exactly)") in readme
