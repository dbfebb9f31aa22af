"""End to end: a %%ptort cell that runs out of host memory, in a real IPython shell under an address-space cap, is a
short ptort_lab error at the cell's line; the knobs are as before it and the next cell runs (the kernel lives)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from textwrap import dedent

HERE = Path(__file__).resolve().parent

SCRIPT = dedent("""\
    import os, resource, sys, tempfile
    os.environ["IPYTHONDIR"] = tempfile.mkdtemp(prefix="ptort-ipython-")
    import matplotlib
    matplotlib.use("Agg")
    from IPython.core.interactiveshell import InteractiveShell
    from traitlets.config import Config
    sys.path.insert(0, {here!r})
    from conftest import SETUP, SPEC_BODY
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    shell = InteractiveShell.instance(config=config)
    shell.run_line_magic("load_ext", "ptort_lab")
    shell.run_cell(SETUP)
    print("@small:", shell.run_cell("%%ptort --depth 2 --tiles 4 --tile 64x64\\n" + SPEC_BODY).success)
    used = int(open("/proc/self/statm").read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    resource.setrlimit(resource.RLIMIT_AS, (used + 600 * 2**20, resource.RLIM_INFINITY))
    big = shell.run_cell("%%ptort --depth 2 --tiles 3000 --tile 256x256\\n" + SPEC_BODY)  # ~3 GB of tensors
    e = big.error_in_exec
    print("@big:", type(e).__name__, "|", e.what, "|", e.where.lineno, e.where.code, "|", e.hint)
    print("@knobs:", shell.user_ns["DEPTH"], shell.user_ns["TILES"], shell.user_ns["TILE"])
    print("@next:", shell.run_cell("%%ptort --depth 3 --tiles 4 --tile 64x64\\n" + SPEC_BODY).success)
""")


def test_a_cell_out_of_host_memory_is_a_short_error_and_the_shell_goes_on(tmp_path):
    script = tmp_path / "oom.py"
    script.write_text(SCRIPT.format(here=str(HERE)))
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=240)
    lines = {line.split(":", 1)[0][1:]: line.split(":", 1)[1].strip() for line in done.stdout.splitlines()
             if line.startswith("@")}  # (the cells print their own report lines too)
    assert done.returncode == 0, done.stderr[-2000:]
    assert lines["small"] == "True"
    assert lines["big"] == (
        "PtortValueError | %%ptort ran out of host memory while running the cell body. | "
        "1 %%ptort --depth 2 --tiles 3000 --tile 256x256 | Use fewer tiles than --tiles 3000 or smaller ones (--tile), "
        "or compile the kernels timing-only (compute_values=False), which keeps no tensor values. The cell stored no "
        "result: _ptort, DEPTH, TILE, TILES and CORES are as before it.")
    assert lines["knobs"] == "2 4 (64, 64)"  # as the first cell left them, not 3000 tiles of 256x256
    assert lines["next"] == "True"
