"""The README's Python blocks run as written."""
from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_python_blocks_run():
    """Every ```python block of README.md executes without error (the quick start is real)."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README has no python blocks"
    for code in blocks:
        exec(compile(code, str(README), "exec"), {"__name__": "readme"})
