"""hw6 end to end through the real nbgrader: release, autograde sample students, feedback.

All tests here share one course (one release, one autograde run per sample student) and one
pytest-xdist worker, so the expensive part runs once.
"""
from __future__ import annotations

import html
import re

import pytest

from coursekit.commands.release import generate_release
from coursekit.course import Course
from coursekit.feedback import generate_feedback
from coursekit.grading import autograde
from coursekit.samples import build_samples
from hw6_course import NOTEBOOKS, copy_course, secret_lines

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("hw6_pipeline")]
STUDENTS = ["reference", "untouched", "partial"]


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    course = Course.open(copy_course(tmp_path_factory.mktemp("hw6") / "course"))
    generate_release(course, "hw6")
    build_samples(course, "hw6")
    results = {r.student: r for r in autograde(course, "hw6", STUDENTS)}
    feedback_errors = generate_feedback(course, "hw6", STUDENTS)
    return course, results, feedback_errors


def score(results, student: str, notebook: str) -> tuple[float, float]:
    nb = next(nb for nb in results[student].notebooks if nb.name == notebook)
    return nb.code_score, nb.max_code_score


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_reference_solution_gets_full_autograded_points(graded, notebook):
    _, results, _ = graded
    got, maximum = score(results, "reference", notebook)
    assert maximum > 0 and got == maximum, f"reference scored {got}/{maximum} on {notebook}"


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_untouched_release_scores_zero_and_completes(graded, notebook):
    course, results, _ = graded
    assert score(results, "untouched", notebook)[0] == 0
    assert course.folder("autograded", "untouched", "hw6", f"{notebook}.ipynb").is_file()
    assert not any(notebook in reason for reason in results["untouched"].reasons)


def test_partially_correct_submission_gets_partial_points(graded):
    _, results, _ = graded
    partial, maximum = results["partial"].code_score, results["partial"].max_code_score
    assert 0 < partial < maximum


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_feedback_contains_no_hidden_test_source(graded, notebook):
    course, _, errors = graded
    assert errors == {s: None for s in STUDENTS}
    secrets = secret_lines(notebook, answers=False)  # a student's own answers may show
    for student in ("reference", "partial"):
        page = course.folder("feedback", student, "hw6", f"{notebook}.html")
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
        leaked = sorted(line for line in secrets if line in text)
        assert not leaked, f"{student}'s feedback for {notebook} shows hidden lines: {leaked[:3]}"
        assert "BEGIN HIDDEN TESTS" not in text
