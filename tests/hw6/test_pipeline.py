"""hw6 end to end through the real nbgrader: release, autograde sample students, feedback.

All tests here share one graded course (the session's ``graded_hw6``: `coursekit demo` in a newcomer's
clone, then two more students, built once per test session, see tests/hw6/sample_course.py) and one
pytest-xdist worker.
"""
from __future__ import annotations

import html
import re

import pytest

from coursekit.course import Course
from coursekit.outcomes import saved_outcome
from tests.hw6.hw6_course import NOTEBOOKS, secret_lines

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("hw6_pipeline"),
              pytest.mark.timeout(1800)]  # the first test may build the graded course or wait for it


def gradebook_grades(course: Course, student: str, notebook: str | None = None) -> dict[tuple[str, str], float]:
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url, course.course_id) as gb:
        return {(nb.name, g.name): g.score for nb in gb.find_submission("hw6", student).notebooks
                for g in nb.grades if notebook in (None, nb.name)}


@pytest.fixture(scope="module")
def graded(graded_hw6):
    return graded_hw6


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


def test_cheating_in_the_kernel_earns_nothing_on_hw6(graded):
    _, results, _ = graded
    assert score(results, "cheater", "beam_search") == (0.0, 8.0)
    assert score(results, "cheater", "convolutions") == (7.0, 11.0)  # only conv_transpose1d was wrong
    assert any("missing" in reason for reason in results["cheater"].reasons)


def test_partially_correct_submission_gets_partial_points(graded):
    _, results, _ = graded
    partial, maximum = results["partial"].code_score, results["partial"].max_code_score
    assert 0 < partial < maximum


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_feedback_contains_no_hidden_test_source(graded, notebook):
    course, _, errors = graded
    assert all(errors[s] is None for s in ("reference", "untouched", "partial"))
    secrets = secret_lines(notebook, answers=False)  # a student's own answers may show
    for student in ("reference", "partial"):
        page = course.folder("feedback", student, "hw6", f"{notebook}.html")
        text = html.unescape(re.sub(r"<[^>]+>", "", page.read_text()))
        leaked = sorted(line for line in secrets if line in text)
        assert not leaked, f"{student}'s feedback for {notebook} shows hidden lines: {leaked[:3]}"
        assert "BEGIN HIDDEN TESTS" not in text


def test_every_door_gives_hw6_the_same_grades(graded):
    """Stock `nbgrader autograde` and the formgrader's API re-grade students already graded by
    `coursekit autograde`: every grade stays the same (one pipeline behind every door)."""
    import subprocess
    import sys
    from pathlib import Path

    course, results, _ = graded
    assert score(results, "nonlinearity", "rnn_gradients")[0] < score(results, "reference", "rnn_gradients")[0]
    before = {s: gradebook_grades(course, s) for s in ("nonlinearity", "cheater", "untouched")}
    nbgrader = Path(sys.executable).with_name("nbgrader")
    for student, notebook in (("nonlinearity", "rnn_gradients"), ("cheater", "beam_search")):
        run = subprocess.run([str(nbgrader), "autograde", "hw6", f"--student={student}", f"--notebook={notebook}",
                              "--force"], cwd=course.root, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr[-2000:]
        assert gradebook_grades(course, student) == before[student], student
        # what `coursekit autograde` said about this student no longer describes the autograded notebooks
        assert saved_outcome(course, "hw6", student) is None
    assert saved_outcome(course, "hw6", "partial") == (results["partial"].status, results["partial"].reasons)
    outcome = course.api.autograde("hw6", "untouched")
    assert outcome["success"], outcome.get("log", "")[-2000:]
    assert gradebook_grades(course, "untouched") == before["untouched"]
