"""The documentation site (docs/, ``make docs``): it builds, its API page lists every public name, the tutorials show
their stored figures and diagrams, and the Python blocks of its pages run as written."""
from __future__ import annotations

import base64
import importlib
import importlib.util
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType

import pytest

import ptort_lab
from ptort_lab.compiled import MODULES as COMPILED
from ptort_lab.compiled import source_path

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


# ------------------------------------------------------------------------------------------------ the build
@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """docs/ built as ``make docs`` builds it (nitpicky, every page, nothing reused), but without -W so that the
    tests below can look at the site and at the warnings separately; (html folder, warning lines)."""
    if importlib.util.find_spec("myst_nb") is None or importlib.util.find_spec("pydata_sphinx_theme") is None:
        message = "the docs extra is not installed: pip install -e '.[docs]' (make test installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    out = tmp_path_factory.mktemp("docs")
    warnings = out / "warnings.txt"
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-n", "--keep-going", "-E", "-q", "-w", str(warnings),
           "-d", str(out / "doctrees"), str(DOCS), str(out / "html")]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=900,
                         env={**os.environ, "MPLBACKEND": "Agg"})
    assert run.returncode == 0, f"sphinx-build failed:\n{run.stdout[-3000:]}\n{run.stderr[-3000:]}"
    lines = [line for line in warnings.read_text().splitlines() if "WARNING" in line or "ERROR" in line]
    return out / "html", lines


def is_docstring_problem(line: str) -> bool:
    """A warning about ptort_lab's own docstrings or signatures (the docstring pass fixes them), not about the
    documentation pages, the notebooks or the build set-up."""
    if re.search(r"/ptort_lab/[^:]*:docstring of ", line) or ":<autosummary>:" in line:
        return True
    unresolved = re.match(r"<unknown>:\d+: WARNING: py:\w+ reference target not found: (\S+)", line)
    return unresolved is not None


@pytest.mark.slow
def test_docs_build_has_nothing_wrong_but_ptort_lab_docstrings(site: tuple[Path, list[str]]):
    """Warnings from the pages, the tutorials or the configuration (a broken link, a missing page, a notebook
    output that cannot render, a third-party reference) fail now; ptort_lab's docstrings are the next test's."""
    _, lines = site
    others = [line for line in lines if not is_docstring_problem(line)]
    assert not others, "\n".join(others)


@pytest.mark.slow
def test_docs_build_has_no_warnings(site: tuple[Path, list[str]]):
    """`make docs` builds with -W -n: no warning at all, nitpicky cross-references included."""
    _, lines = site
    assert not lines, "\n".join(lines)


# -------------------------------------------------------------------------------------------- the API page
class Anchors(HTMLParser):
    """The ids and link targets of one HTML page."""

    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if values.get("id"):
            self.ids.add(values["id"] or "")
        if tag == "a" and values.get("href"):
            self.links.add(values["href"] or "")


def anchors(page: Path) -> Anchors:
    parser = Anchors()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser


def documented_at(page: Path, target: str) -> str | None:
    """Where the API page documents ``target`` (``ptort_lab.Channel``): its own anchor, or the page its link leads
    to, which must hold the anchor; None when it does not."""
    here = anchors(page)
    wanted = {target, f"module-{target}"}
    if here.ids & wanted:
        return page.name
    for link in here.links:
        file, _, fragment = link.partition("#")
        if fragment in wanted and file:
            linked = page.parent / file
            if linked.exists() and anchors(linked).ids & wanted:
                return file
    return None


@pytest.mark.slow
def test_api_page_lists_every_public_name(site: tuple[Path, list[str]]):
    """Every name of ptort_lab.__all__ is on the API page, as an entry there or a link to its own page."""
    html, _ = site
    page = html / "api" / "generated" / "ptort_lab.html"
    missing = [name for name in ptort_lab.__all__ if documented_at(page, f"ptort_lab.{name}") is None
               and not (name == "errors" and documented_at(html / "api" / "generated" / "errors.html",
                                                           "ptort_lab.errors"))]
    assert not missing, f"not on {page.relative_to(html)}: {missing}"


@pytest.mark.slow
@pytest.mark.parametrize("module, page", [("ptort_lab.viz", "viz"), ("ptort_lab.notebook", "notebook"),
                                          ("ptort_lab.explore", "explore"), ("ptort_lab.sweeps", "sweeps")])
def test_module_pages_list_every_public_name(site: tuple[Path, list[str]], module: str, page: str):
    """The viz, notebook, explore and sweeps pages list every name of their module's __all__."""
    html, _ = site
    names = importlib.import_module(module).__all__
    path = html / "api" / "generated" / f"{page}.html"
    missing = [name for name in names if documented_at(path, f"{module}.{name}") is None]
    assert not missing, f"not on {path.relative_to(html)}: {missing}"


@pytest.mark.slow
def test_tile_ops_page_lists_every_op(site: tuple[Path, list[str]]):
    from ptort_lab.dsl import tl
    html, _ = site
    path = html / "api" / "generated" / "tl.html"
    missing = [name for name in tl.__all__ if documented_at(path, f"ptort_lab.dsl.tl.{name}") is None]
    assert not missing, f"not on {path.relative_to(html)}: {missing}"


@pytest.mark.slow
def test_npu_model_page_gives_every_constant_a_source(site: tuple[Path, list[str]]):
    """The NPU model page's table has a row for every Machine constant, each with the source its code comment
    gives (a constant added without one shows "(no source comment)" and fails here)."""
    import dataclasses

    from ptort_lab import Machine
    html, _ = site
    text = (html / "explanation" / "npu_model.html").read_text(encoding="utf-8")
    table = text[text.index('class="ptort-machine-constants'):]
    table = table[:table.index("</table>")]
    names = [f.name for f in dataclasses.fields(Machine) if f.name != "name"]
    missing = [name for name in names if f'<span class="pre">{name}</span>' not in table]
    assert not missing and "(no source comment)" not in table, missing


def own_docstring(name: str, obj: object) -> str | None:
    """The documentation an object wrote itself: not a docstring inherited (an Enum's) nor a dataclass's generated
    signature; for a constant, the ``#:`` comment where it is defined (what docs/_ext/ptort_docs.py shows), or its
    private type's docstring (``P``)."""
    if isinstance(obj, type):
        doc = vars(obj).get("__doc__")
        return None if doc is None or doc.startswith(obj.__name__ + "(") else doc
    if callable(obj) or isinstance(obj, ModuleType):
        return getattr(obj, "__doc__", None)
    if type(obj).__name__.startswith("_"):
        return type(obj).__doc__
    return defining_comment(name.rsplit(".", 1)[-1], obj)


def defining_comment(attr: str, obj: object) -> str | None:
    """The ``#:`` comment above or beside ``attr = ...`` in a ptort_lab module that holds ``obj`` as ``attr``."""
    pattern = re.compile(rf"((?:^[ \t]*#:.*\n)+)[ \t]*{attr}\s*(?::[^=\n]*)?=|^{attr}\s*(?::[^=\n]*)?=.*#:(.*)$", re.M)
    for name, module in sorted(sys.modules.items()):
        if (name == "ptort_lab" or name.startswith("ptort_lab.")) and getattr(module, attr, None) is obj:
            match = pattern.search(source_path(name).read_text(encoding="utf-8") if name in COMPILED
                                   else Path(module.__file__ or "").read_text(encoding="utf-8"))
            if match:
                return (match.group(1) or match.group(2)).strip()
    return None


def public_objects() -> list[tuple[str, object]]:
    """Every name the API pages document, with its object (aliases and ``__version__`` aside)."""
    from ptort_lab import errors
    from ptort_lab.dsl import tl
    modules = [(ptort_lab, "ptort_lab"), (tl, "ptort_lab.tl"), (errors, "ptort_lab.errors")]
    modules += [(importlib.import_module(m), m) for m in ("ptort_lab.viz", "ptort_lab.notebook", "ptort_lab.explore",
                                                          "ptort_lab.sweeps")]
    found = []
    for module, prefix in modules:
        for name in module.__all__:
            obj = getattr(module, name)
            own = getattr(obj, "__name__", name)
            if name == "__version__" or (module is errors and name in ptort_lab.__all__) \
                    or (isinstance(own, str) and own.rsplit(".", 1)[-1] != name):
                continue
            found.append((f"{prefix}.{name}", obj))
    return found


def test_public_names_have_their_own_docstrings():
    undocumented = [name for name, obj in public_objects() if not own_docstring(name, obj)]
    assert not undocumented, undocumented


# ----------------------------------------------------------------------------------------------- tutorials
class Pictures(HTMLParser):
    """The pictures inside a page's article (the theme's icons are outside it): ``<img>`` sources and inline
    ``<svg>`` elements."""

    def __init__(self) -> None:
        super().__init__()
        self.depth = 0
        self.images: list[str] = []
        self.svgs = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "article":
            self.depth += 1
        elif self.depth and tag == "img":
            self.images.append(dict(attrs).get("src") or "")
        elif self.depth and tag == "svg":
            self.svgs += 1

    def handle_endtag(self, tag: str) -> None:
        if tag == "article":
            self.depth -= 1


def stored_pictures(notebook: Path) -> int:
    """How many pictures the notebook's stored outputs hold: a PNG or SVG output, the images inside an HTML output
    (the %%ptort result inlines its diagram and timeline), and an image widget of a stored widget view."""
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    state = nb.get("metadata", {}).get("widgets", {}).get("application/vnd.jupyter.widget-state+json", {})
    images = sum(1 for model in state.get("state", {}).values() if model["model_name"] == "ImageModel")
    count = 0
    for cell in nb["cells"]:
        for output in cell.get("outputs", []):
            data = output.get("data", {})
            if "application/vnd.jupyter.widget-view+json" in data:
                count += images
            elif "text/html" in data:
                text = "".join(data["text/html"])
                count += len(re.findall(r"<img\b", text)) + len(re.findall(r"<svg\b", text))
            elif "image/png" in data or "image/svg+xml" in data:
                count += 1
    return count


def test_some_tutorials_store_pictures():
    """The picture test below would pass on notebooks stored without outputs: they must hold some."""
    assert sum(stored_pictures(nb) > 0 for nb in NOTEBOOKS) >= 4, [(nb.name, stored_pictures(nb)) for nb in NOTEBOOKS]


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[nb.stem for nb in NOTEBOOKS])
def test_tutorial_pages_show_their_pictures(site: tuple[Path, list[str]], notebook: Path):
    """Each tutorial page shows every figure and diagram its notebook stored, and each picture has content: a data
    URI that decodes to an image, or a file of the site."""
    html, _ = site
    page = html / "tutorials" / f"{notebook.stem}.html"
    assert page.exists(), f"{notebook.name} has no page in the site"
    pictures = Pictures()
    pictures.feed(page.read_text(encoding="utf-8"))
    shown = len(pictures.images) + pictures.svgs
    assert shown >= stored_pictures(notebook), (shown, stored_pictures(notebook))
    for src in pictures.images:
        if src.startswith("data:"):
            header, _, payload = src.partition(",")
            assert header.startswith("data:image/") and base64.b64decode(payload)[:4] in (b"\x89PNG", b"<svg",
                                                                                           b"<?xm"), header
        else:
            assert (page.parent / src).is_file(), src


@pytest.mark.slow
def test_the_explorer_shows_as_its_picture_and_no_page_loads_a_script_from_the_network(site: tuple[Path, list[str]]):
    """Tutorials store no live widget view (notebooks/build.py keeps the explorer's picture and summary), so the
    explorer's page shows a picture and needs no widget JavaScript: no page loads a script from the network."""
    html, _ = site
    assert not [nb.name for nb in NOTEBOOKS if "widget-view+json" in nb.read_text(encoding="utf-8")]
    explorer = [nb for nb in NOTEBOOKS if "Explorer" in nb.read_text(encoding="utf-8")]
    assert explorer, "no tutorial shows the explorer any more"
    for notebook in explorer:
        assert "<img" in (html / "tutorials" / f"{notebook.stem}.html").read_text(encoding="utf-8")
    for page in html.rglob("*.html"):
        assert not re.search(r'<script[^>]+src="(https?:)?//', page.read_text(encoding="utf-8")), page


# ------------------------------------------------------------------------------------- the pages' examples
PAGES = sorted(p for p in DOCS.rglob("*.md") if "_build" not in p.parts and "```python" in p.read_text())


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(DOCS)) for p in PAGES])
def test_page_python_blocks_run(page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The ```python blocks of a page run, in order, in one namespace (```py and ```text blocks are not run)."""
    monkeypatch.chdir(tmp_path)  # pages write files (run.json)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for code in re.findall(r"```python\n(.*?)```", page.read_text(encoding="utf-8"), re.S):
        exec(compile(code, str(page), "exec"), namespace)
