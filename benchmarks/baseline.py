"""Shared by the benchmarks: import a pcdkit source file as it was at an earlier git revision."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType


def module_at(rev: str, path: str, name: str, folder: Path,
              replace: tuple[tuple[str, str], ...] = ()) -> ModuleType:
    """``path`` at git revision ``rev`` (read with ``git show``, text replacements ``replace``
    applied, e.g. to point its imports at other baseline modules), imported apart as ``name``."""
    text = subprocess.run(["git", "show", f"{rev}:{path}"], check=True, capture_output=True,
                          text=True).stdout
    for old, new in replace:
        text = text.replace(old, new)
    file = folder / f"{name}.py"
    file.write_text(text)
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
