"""Fixtures of the hw6 notebook tests."""
from __future__ import annotations

from typing import Any

import pytest

from coursekit.testing.notebooks import solution_namespace


@pytest.fixture(scope="module")
def reference(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The namespace of the test module's notebook ``NB`` after its reference solution cells (tests skipped).
    A module that needs less of the notebook defines its own ``reference``."""
    return solution_namespace(request.module.NB)


@pytest.fixture(scope="session")
def graded_hw6(tmp_path_factory):
    """(course, results, feedback errors) of hw6's sample students, graded once per session and shared by
    the tests of the xdist group "hw6_pipeline" (test_pipeline.py, test_lms_export.py)."""
    from tests.hw6.test_pipeline import grade_samples

    return grade_samples(tmp_path_factory.mktemp("hw6") / "course")
