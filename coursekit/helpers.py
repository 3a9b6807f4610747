"""The instructor's copy of the assignment's helper package, loaded as trusted code.

Students get the same package with the release, but only the copy in ``source/<assignment>/`` is
trusted: the grader imports it by path under a private package name, so nothing a student ships
(or a module of the same name elsewhere on ``sys.path``) can stand in for it.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

_PREFIX = "_coursekit_trusted_"


def _package_name(helper_dir: Path) -> str:
    """A private, stable name per folder and content (a changed helper is loaded afresh)."""
    digest = hashlib.sha256(str(helper_dir.resolve()).encode())
    for path in sorted(helper_dir.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return f"{_PREFIX}{helper_dir.name}_{digest.hexdigest()[:12]}"


def trusted_package(helper_dir: Path) -> str:
    """Import the helper package found at ``helper_dir``; return its (private) package name."""
    helper_dir = Path(helper_dir)
    init = helper_dir / "__init__.py"
    if not init.is_file():
        raise FileNotFoundError(f"helper package {helper_dir} not found (no __init__.py)")
    name = _package_name(helper_dir)
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(helper_dir)])
        package = importlib.util.module_from_spec(spec)
        sys.modules[name] = package
        spec.loader.exec_module(package)
    return name


def trusted_module(helper_dir: Path, module: str) -> ModuleType:
    """One module of the trusted helper package, e.g. ``trusted_module(dir, "checks")``."""
    return importlib.import_module(f"{trusted_package(helper_dir)}.{module}")
