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
    """Problem 4's reference model trained as a student would and the submission log it hands in
    (coursekit.testing.submission_logs; ~12 s of training), once per test session for every xdist worker.
    Plain JSON data: modules take a deep copy of their own."""
    from coursekit.testing.submission_logs import reference_submission_log
    from tests.support.session_cache import build_once

    return build_once(tmp_path_factory, "reference-log", lambda folder: reference_submission_log())[1]
