"""Bug hunt 32b, the sweep cache's key: a function wrapped by ``functools.lru_cache`` / ``functools.cache`` (a C
object that pickles by its name) is described by the function it wraps, so editing that function gives a new key
and never a stale row; a wrapper that cannot be described makes the point uncacheable instead of keying it by name.
The run cache's content key uses the same Describer and gets the same answer."""
from __future__ import annotations

import functools
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest

from ptort_lab.run_cache import content_key
from ptort_lab.spec_pipeline import build
from ptort_lab.sweeps import run_sweep
from ptort_lab.sweeps.fingerprint import Undescribable, describe

MODULE = "hunt32b_user_cells"  # a notebook-like module name: not installed, so its code is the user's


def cell(source: str, ns: dict[str, Any] | None = None) -> dict[str, Any]:
    """Run ``source`` as a notebook cell would (into ``ns``, a fresh namespace by default)."""
    ns = {"__name__": MODULE, "build": build, "functools": functools} if ns is None else ns
    exec(compile(textwrap.dedent(source), f"<{MODULE}>", "exec"), ns)
    return ns


def key(obj: Any) -> str:
    return describe(obj, tensor_values=True)[0]


LRU_V1 = """
    @functools.lru_cache(maxsize=None)
    def tiles_for(tiles):
        return tiles
"""
LRU_V2 = """
    @functools.lru_cache(maxsize=None)
    def tiles_for(tiles):
        return tiles * 4
"""


def test_lru_cache_wrapped_function_is_keyed_by_its_code() -> None:
    v1, v1_again, v2 = cell(LRU_V1)["tiles_for"], cell(LRU_V1)["tiles_for"], cell(LRU_V2)["tiles_for"]
    assert key(v1) == key(v1_again)  # the same code: the same key (rows are still found)
    assert key(v1) != key(v2)


def test_functools_cache_wrapped_function_is_keyed_by_its_code() -> None:
    v1 = cell("@functools.cache\ndef f(t):\n    return t\n")["f"]
    v2 = cell("@functools.cache\ndef f(t):\n    return t + 1\n")["f"]
    assert key(v1) != key(v2)


def test_lru_cache_parameters_count() -> None:
    plain = cell("@functools.lru_cache(maxsize=None)\ndef f(t):\n    return t\n")["f"]
    typed = cell("@functools.lru_cache(maxsize=None, typed=True)\ndef f(t):\n    return t\n")["f"]
    assert key(plain) != key(typed)


def test_builder_reading_an_lru_cached_global_gets_a_new_key_when_it_is_edited() -> None:
    ns = cell(LRU_V1 + """
    def builder(depth, tiles):
        return build(depth, (64, 64), tiles_for(tiles))
    """)
    before = key(ns["builder"])
    cell(LRU_V2, ns)  # the cell defining tiles_for edited and run again
    assert key(ns["builder"]) != before


def test_partial_is_keyed_by_its_function_and_arguments() -> None:
    f1 = cell("def f(a, b):\n    return a\n")["f"]
    f2 = cell("def f(a, b):\n    return b\n")["f"]
    assert key(functools.partial(f1, 2)) == key(functools.partial(f1, 2))
    assert key(functools.partial(f1, 2)) != key(functools.partial(f2, 2))
    assert key(functools.partial(f1, 2)) != key(functools.partial(f1, 3))


def test_wraps_style_decorator_is_keyed_by_what_it_wraps() -> None:
    source = """
    def logged(fn):
        @functools.wraps(fn)
        def wrapper(*args):
            return fn(*args)
        return wrapper

    @logged
    def tiles_for(tiles):
        return tiles{}
    """
    assert key(cell(source.format(""))["tiles_for"]) != key(cell(source.format(" * 4"))["tiles_for"])


def test_wrapper_known_only_by_name_is_undescribable() -> None:
    """An lru_cache wrapper whose __wrapped__ was removed says nothing of its code: never keyed by its name."""
    f = cell(LRU_V1)["tiles_for"]
    del f.__wrapped__
    with pytest.raises(Undescribable) as excinfo:
        describe({"tiles_for": f}, tensor_values=True)
    assert str(excinfo.value) == (
        "['tiles_for']: functools._lru_cache_wrapper hunt32b_user_cells.tiles_for is known only by its name, which "
        "stays the same when its code is edited (pickle saves it by name)")


def test_library_objects_pickled_by_name_keep_a_key() -> None:
    """A library's object pickled by name (Ellipsis) is keyed by its qualified name, and a library function in an
    lru_cache by that function: both stay cacheable."""
    import math

    assert key(...) == key(...)
    assert key(...) != key(NotImplemented)
    cached_sqrt = functools.lru_cache(maxsize=None)(math.sqrt)
    assert key(cached_sqrt) == key(functools.lru_cache(maxsize=None)(math.sqrt))
    assert key(cached_sqrt) != key(functools.lru_cache(maxsize=None)(math.exp))


def test_content_key_tells_lru_cache_versions_apart() -> None:
    v1, v2 = cell(LRU_V1)["tiles_for"], cell(LRU_V2)["tiles_for"]
    assert content_key("side", v1) == content_key("side", cell(LRU_V1)["tiles_for"])
    assert content_key("side", v1) != content_key("side", v2)
    del v1.__wrapped__
    assert content_key("side", v1) is None  # not describable: the run is not cached


def _sweep(builder: Any, cache: Path | bool) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no cache warning either
        return run_sweep(builder, depth=[2], tiles=[2], executor="serial", cache=cache, progress=False)


def test_sweep_reruns_a_point_whose_lru_cached_helper_was_edited(tmp_path: Path) -> None:
    ns = cell(LRU_V1 + """
    def builder(depth, tiles):
        return build(depth, (64, 64), tiles_for(tiles))
    """)
    first = _sweep(ns["builder"], tmp_path)
    assert (first.cache.reused, first.cache.computed) == (0, 1)
    cell(LRU_V2, ns)
    second = _sweep(ns["builder"], tmp_path)
    fresh = _sweep(ns["builder"], False)
    assert (second.cache.reused, second.cache.computed) == (0, 1)
    assert second.rows == fresh.rows
    assert second.rows[0]["pipeline_cycles"] != first.rows[0]["pipeline_cycles"]
    again = _sweep(ns["builder"], tmp_path)  # unchanged since: found
    assert (again.cache.reused, again.cache.computed) == (1, 0)


def test_sweep_reruns_a_functools_cache_builder_that_was_edited(tmp_path: Path) -> None:
    source = """
    @functools.cache
    def builder(depth, tiles):
        return build(depth, (64, 64), tiles{})
    """
    first = _sweep(cell(source.format(""))["builder"], tmp_path)
    second = _sweep(cell(source.format(" * 4"))["builder"], tmp_path)
    assert (second.cache.reused, second.cache.computed) == (0, 1)
    assert second.rows == _sweep(cell(source.format(" * 4"))["builder"], False).rows
    assert second.rows[0]["pipeline_cycles"] != first.rows[0]["pipeline_cycles"]
