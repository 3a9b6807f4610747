"""Fixtures shared by the coursekit tests."""
from __future__ import annotations

import pytest

from coursekit.course import Course
from tests.coursekit.late_course import AUTOGRADED_POINTS, fresh_course


@pytest.fixture(scope="session")
def late_course(tmp_path_factory) -> Course:
    """The tiny course with deadlines (tests/coursekit/late_course.py), graded once by `coursekit autograde`
    (tests using it share the xdist group "late", so one worker grades it once)."""
    from coursekit.grading import autograde
    from coursekit.testing.tiny_course import ASSIGNMENT

    course = fresh_course(tmp_path_factory.mktemp("late") / "course")
    results = autograde(course, ASSIGNMENT, jobs=2)
    assert all(r.code_score == AUTOGRADED_POINTS for r in results), results
    return course


@pytest.fixture(scope="session")
def reference_log(tmp_path_factory) -> dict:
    """The submission log Problem 4's reference solution hands in: the one its notebook wrote in the
    session's kernel run (tests/support/executed_sources.py). Plain JSON data: modules take a deep copy
    of their own."""
    from tests.support.executed_sources import reference_log as executed_reference_log

    return executed_reference_log(tmp_path_factory)
