"""Test-wide settings: where the verified surname data mirror is, and the repo paths."""
from __future__ import annotations

import os
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_MIRROR = REPO_ROOT.parent / "shared" / "data" / "names"

# CI points HW6_DATA_MIRROR at ../shared/data/names; do the same for a developer's checkout.
if "HW6_DATA_MIRROR" not in os.environ and SHARED_MIRROR.is_dir():
    os.environ["HW6_DATA_MIRROR"] = str(SHARED_MIRROR)

# Deterministic, quiet notebook kernels; tools from this environment first on PATH.
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")
