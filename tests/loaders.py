"""Load the repository's example and bench scripts as modules, once per name, for tests that run them."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def load_file(name: str, path: Path) -> Any:
    """The script at ``path`` as module ``name`` (run once; later calls return the same module). Its folder is on
    sys.path while it runs, as when it is run as a script."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # its dataclasses look their module up while the file runs
    sys.path.insert(0, str(path.parent))
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(path.parent))
    return module


def flash_attention_example(name: str = "ptort_tests_fa_example") -> Any:
    """examples/flash_attention/flash_attention_example.py."""
    return load_file(name, ROOT / "examples" / "flash_attention" / "flash_attention_example.py")
