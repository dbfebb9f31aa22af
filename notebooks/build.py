"""Build the tutorial notebooks from their sources in notebooks/src/ and run them, storing the outputs.

Each source is a Python file in the "percent" format: ``# %%`` starts a code cell (optionally
``# %% tags=["nbval-check-output"]``), ``# %% [markdown]`` a markdown cell whose lines start with ``# ``.
Running is done with nbclient in this environment's kernel, with a fixed matplotlib backend and hash salt, so the
committed outputs are the ones the tests compare against. No live widget is stored (``static_widget_outputs``): a
widget's output keeps the rest of its display bundle (the explorer's picture and summary), so the file carries no
widget JavaScript and nbconvert HTML shows the picture.

    python notebooks/build.py            # every notebook
    python notebooks/build.py 02         # the ones whose name starts with 02
    python notebooks/build.py --no-run   # write notebooks without outputs
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
SOURCES = HERE / "src"
CELL = re.compile(r"^# %%(?P<kind> \[markdown\])?(?:\s+tags=(?P<tags>\[.*\]))?\s*$")


def parse(text: str) -> list[nbformat.NotebookNode]:
    """Cells of a percent-format source."""
    cells: list[nbformat.NotebookNode] = []
    kind, tags, lines = None, [], []

    def flush() -> None:
        if kind is None:
            return
        body = "\n".join(lines).strip("\n")
        if kind == "markdown":
            md = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in body.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(md))
        else:
            cell = nbformat.v4.new_code_cell(body)
            if tags:
                cell.metadata["tags"] = tags
            cells.append(cell)

    for line in text.splitlines():
        m = CELL.match(line)
        if m:
            flush()
            kind = "markdown" if m.group("kind") else "code"
            tags = json.loads(m.group("tags")) if m.group("tags") else []
            lines = []
        elif kind is not None:
            lines.append(line)
    flush()
    return cells


def build(source: Path, run: bool = True) -> Path:
    nb = nbformat.v4.new_notebook()
    nb.cells = parse(source.read_text())
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    # Cell ids are random by default; derive them from position so rebuilds give identical files.
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"{source.stem[:2]}-{i:02d}"
    if run:
        os.environ.setdefault("MPLBACKEND", "Agg")
        client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(HERE)}},
                                store_widget_state=False)
        client.execute()
        for cell in nb.cells:
            cell.get("metadata", {}).pop("execution", None)
            if "outputs" in cell:
                cell.outputs = coalesced_streams(cell.outputs)
        nb = static_widget_outputs(nb)
    out = HERE / f"{source.stem}.ipynb"
    nbformat.write(nb, out)
    return out


def coalesced_streams(outputs: list) -> list:
    """Adjacent stdout (or stderr) outputs as one: how the kernel's flushes split a stream varies from run to run."""
    merged: list = []
    for output in outputs:
        last = merged[-1] if merged else None
        if (output.get("output_type") == "stream" and last is not None and last.get("output_type") == "stream"
                and last.get("name") == output.get("name")):
            last["text"] += output["text"]
        else:
            merged.append(output)
    return merged


WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def static_widget_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The notebook without live widgets: each stored widget view gives way to the rest of its display bundle (the
    explorer's picture and summary), a widget output with nothing else to show is dropped, and no widget state is
    kept. A stored view would need the widget's JavaScript: nbconvert HTML then loads it from a CDN (or shows a blank
    box offline), an unrun notebook in JupyterLab shows "model not found", and the explorer's state embeds its 28 KiB
    view bundle. Running the cell again shows the live widget."""
    for cell in nb.cells:
        if "outputs" not in cell:
            continue
        kept = []
        for output in cell.outputs:
            data = output.get("data", {})
            if WIDGET_VIEW in data:
                del data[WIDGET_VIEW]
                output.get("metadata", {}).pop(WIDGET_VIEW, None)
                if not set(data) - {"text/plain"}:
                    continue  # a widget without a picture: its text is only a repr
            kept.append(output)
        cell.outputs = kept
    nb.metadata.pop("widgets", None)
    return nb


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("prefix", nargs="*", help="only notebooks whose name starts with one of these")
    ap.add_argument("--no-run", action="store_true", help="write the notebooks without executing them")
    args = ap.parse_args(argv)
    sources = sorted(SOURCES.glob("*.py"))
    if args.prefix:
        sources = [s for s in sources if any(s.stem.startswith(p) for p in args.prefix)]
    for src in sources:
        print(f"building {src.stem}.ipynb", flush=True)
        build(src, run=not args.no_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())
