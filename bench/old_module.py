"""A kit module as it was at an older commit, loaded beside today's (benchmarks compare the two in one run)."""
from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def load_old(commit: str, path: str, folder: Path) -> ModuleType:
    """``path`` (e.g. ``coursekit/intake.py``) at ``commit``, imported as ``old_<stem>`` from ``folder``."""
    text = subprocess.run(["git", "show", f"{commit}:{path}"], cwd=REPO, check=True,
                          capture_output=True, text=True).stdout
    name = f"old_{Path(path).stem}"
    (folder / f"{name}.py").write_text(text)
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
