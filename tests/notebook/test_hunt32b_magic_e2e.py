"""Bug hunt 32b, in a real IPython shell: -o get_ipython is refused before the cell runs, so every later magic still
works; an abbreviated option given with its full spelling is an unknown option, never silently dropped."""
from __future__ import annotations

import pytest
from IPython.core.error import UsageError


def test_output_to_get_ipython_is_refused_and_later_magics_work(ip, spec_body):
    keeper = ip.user_ns["get_ipython"]
    with pytest.raises(UsageError) as e:
        ip.run_cell("%%ptort -o get_ipython --tile 32x32 --tiles 2 --show none\n" + spec_body)
    assert str(e.value) == ("-o get_ipython: IPython keeps get_ipython (every magic calls it), so storing the result "
                            "there would break the notebook; pick another name, e.g. -o result.")
    assert ip.user_ns["get_ipython"] is keeper
    ip.run_cell("%%ptort -o kept --tile 32x32 --tiles 2 --show none\n" + spec_body)
    assert ip.user_ns["kept"] is ip.user_ns["_ptort"]


def test_abbreviation_with_its_full_spelling_is_refused(ip, spec_body):
    with pytest.raises(UsageError) as e:
        ip.run_cell("%%ptort --dep 4 --depth 2 --tile 32x32 --tiles 2 --show none\n" + spec_body)
    assert str(e.value) == "unrecognized arguments: --dep 4. Did you mean '--depth'?"
