"""sweep(...) knob lists: a value given twice (64 and (64, 64) are one tile) and a mapping (whose keys iterating
would sweep) are refused, naming what was given and what to write."""
from __future__ import annotations

import pytest

from ptort_lab import PtortTypeError, PtortValueError
from ptort_lab.sweeps.points import knob_values


@pytest.mark.parametrize("name, values, said, fix", [
    ("tile", [64, 64], "sweep(tile=...): 64 is given twice (values 0 and 1 of the list)", "tile=[(64, 64)]"),
    ("depth", [1, 2, 2], "sweep(depth=...): 2 is given twice (values 1 and 2 of the list)", "depth=[1, 2]"),
    ("tile", [32, "64x64", (64, 64)],
     "sweep(tile=...): '64x64' and (64, 64) are the same value (values 1 and 2 of the list)",
     "tile=[(32, 32), (64, 64)]"),
])
def test_a_value_given_twice_is_refused(name, values, said, fix):
    with pytest.raises(PtortValueError) as e:
        knob_values(name, values, 100)
    assert str(e.value).startswith(said + ", so every row would run twice.")
    assert e.value.hint == f"Give each value once: {fix}."


def test_a_mapping_is_refused_not_read_as_its_keys():
    with pytest.raises(PtortTypeError) as e:
        knob_values("depth", {1: 2}, 100)
    assert str(e.value).startswith("sweep(depth=...) got a dict; a sweep runs a list of values, and a mapping's "
                                   "would be its keys ([1]).")
    assert e.value.hint == "Pass a list of the values to run, e.g. sweep(build, depth=[1, 2, 4, 8])."


def test_distinct_values_keep_their_order():
    assert knob_values("tile", [64, (32, 64), "16x16"], 100) == ([(64, 64), (32, 64), (16, 16)], 3)
    assert knob_values("depth", range(3, 0, -1), 100) == ([3, 2, 1], 3)
