"""The instructor's copy of the assignment's helper package, and the instructor-only grading package,
loaded as trusted code.

Students get the helper package (e.g. ``hw6utils``) with the release, but only the copy in
``source/<assignment>/`` is trusted: the grader imports it by path under a private package name, so nothing
a student ships (or a module of the same name elsewhere on ``sys.path``) can stand in for it. The grading
package (e.g. ``hw6grading``: judges and reference implementations, never released) is imported the same
way and told the private name of the trusted helper package through its ``HELPERS`` attribute.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, Callable

_PREFIX = "_coursekit_trusted_"


def _package_name(helper_dir: Path) -> str:
    """A private, stable name per folder and content (a changed helper is loaded afresh)."""
    digest = hashlib.sha256(str(helper_dir.resolve()).encode())
    for path in sorted(helper_dir.glob("*.py")):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    return f"{_PREFIX}{helper_dir.name}_{digest.hexdigest()[:12]}"


def _import_by_path(folder: Path, name: str, attributes: dict[str, object] | None = None) -> str:
    init = folder / "__init__.py"
    if not init.is_file():
        raise FileNotFoundError(f"package {folder} not found (no __init__.py)")
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[str(folder)])
        package = importlib.util.module_from_spec(spec)
        for key, value in (attributes or {}).items():
            setattr(package, key, value)  # visible to the package's code as a global while it runs
        sys.modules[name] = package
        spec.loader.exec_module(package)
    return name


def trusted_package(helper_dir: Path) -> str:
    """Import the helper package found at ``helper_dir``; return its (private) package name."""
    helper_dir = Path(helper_dir)
    return _import_by_path(helper_dir, _package_name(helper_dir))


def trusted_grading_package(grading_dir: Path, helper_dir: Path) -> str:
    """Import the instructor-only grading package at ``grading_dir``, wired to the trusted helper package at
    ``helper_dir``; return its (private) package name."""
    grading_dir = Path(grading_dir)
    helpers = trusted_package(helper_dir)
    return _import_by_path(grading_dir, f"{_package_name(grading_dir)}_{helpers[-12:]}", {"HELPERS": helpers})


def trusted_module(helper_dir: Path, module: str) -> ModuleType:
    """One module of the trusted helper package, e.g. ``trusted_module(dir, "checks")``."""
    return importlib.import_module(f"{trusted_package(helper_dir)}.{module}")


def trusted_grading_module(grading_dir: Path, helper_dir: Path, module: str) -> ModuleType:
    """One module of the trusted grading package, e.g. ``trusted_grading_module(g, h, "surnames")``."""
    return importlib.import_module(f"{trusted_grading_package(grading_dir, helper_dir)}.{module}")


def judge_resolver(grading_dir: Path, helper_dir: Path) -> Callable[[str], Callable[..., Any]]:
    """Resolve a check's ``judge="module.function"``: a function of the grading package when it has it
    (judges that hold answers), else of the helper package (small generic judges, ``checks.*``)."""
    def resolve(judge: str) -> Callable[..., Any]:
        module, _, function = str(judge).rpartition(".")
        if not module.isidentifier() or not function.isidentifier() or function.startswith("_"):
            raise LookupError(f"not a judge name: {judge!r}")
        if (Path(grading_dir) / f"{module}.py").is_file():
            found = trusted_grading_module(grading_dir, helper_dir, module)
            if hasattr(found, function):
                return getattr(found, function)
        return getattr(trusted_module(helper_dir, module), function)
    return resolve
