"""Test-wide settings (where the verified surname data mirror is, and the repo paths) and the fixtures
shared across test folders: the graded hw6 sample course, built once per test session."""
from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_MIRROR = REPO_ROOT.parent / "shared" / "data" / "names"

# CI points HW6_DATA_MIRROR at ../shared/data/names; do the same for a developer's checkout.
if "HW6_DATA_MIRROR" not in os.environ and SHARED_MIRROR.is_dir():
    os.environ["HW6_DATA_MIRROR"] = str(SHARED_MIRROR)

# Deterministic, quiet notebook kernels; tools from this environment first on PATH.
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]):
    """Under pytest-xdist (tests/support/scheduling.py): before the other plugins, a module's tests that
    share a module-scoped fixture become one xdist group and the longest units of work go first; after
    them (pytest-xdist's own attempt included), grouped tests' node ids end in ``@<group>``, so that
    ``--dist loadgroup`` really keeps each group on one worker."""
    worker = bool(os.environ.get("PYTEST_XDIST_WORKER"))  # one process: collection order, nothing to group
    if worker:
        from tests.support import scheduling

        scheduling.group_modules_with_shared_fixtures(items)
        items[:] = scheduling.longest_first(items, scheduling.load_durations())
    result = yield
    if worker and config.getvalue("loadgroup"):
        scheduling.name_groups_in_node_ids(items)
    return result


@pytest.fixture(scope="session")
def graded_hw6_built(tmp_path_factory):
    """(course folder, GradedSamples) of the graded hw6 sample course, built in a newcomer's clone
    (tests/hw6/sample_course.py) once per test session for every pytest-xdist worker
    (tests/support/session_cache.py). The course folder is read only: tests change a copy."""
    from tests.hw6.sample_course import CLONE, data_mirror, grade_samples
    from tests.support.session_cache import build_once

    if data_mirror() is None:
        pytest.skip("no surname data mirror (HW6_DATA_MIRROR or data/names)")
    root, built = build_once(tmp_path_factory, "graded-hw6", grade_samples)
    return root / CLONE, built


@pytest.fixture(scope="session")
def graded_hw6(graded_hw6_built, tmp_path_factory):
    """(course, results, feedback errors): this worker's copy of the graded hw6 sample course, shared by
    the tests of the xdist group "hw6_pipeline" (test_pipeline.py, test_lms_export.py), which change it
    in turn (a roster, other doors re-grading)."""
    from tests.hw6.sample_course import copy_graded_hw6

    built, samples = graded_hw6_built
    return copy_graded_hw6(built, tmp_path_factory.mktemp("hw6") / "course"), samples.results, samples.feedback_errors
