"""hw6 end to end through the real nbgrader: release, autograde sample students, feedback.

All tests here share one course (one release, one autograde run per sample student) and one
pytest-xdist worker, so the expensive part runs once.
"""
from __future__ import annotations

import html
import re
import shutil

import nbformat

import pytest

from coursekit.course import Course
from coursekit.feedback import generate_feedback
from coursekit.grading import autograde
from coursekit.samples import build_samples
from coursekit.testing.courses import copy_course
from tests.hw6.hw6_course import NOTEBOOKS, secret_lines

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("hw6_pipeline")]
STUDENTS = ["reference", "untouched", "partial", "cheater", "nonlinearity"]

# The cheater hands in two notebooks with wrong code that passes the visible checks, and tries to
# make every comparison in its kernel say "equal".
CHEATS = {
    ("beam_search", "beam_search_impl"): (
        "def beam_search(next_log_probs, k, T, return_history=False):\n"
        "    seq, score, history = (), 0.0, []\n"
        "    for _ in range(T):\n"
        "        options = next_log_probs(seq)\n"
        "        token = max(sorted(options), key=lambda t: options[t])\n"
        "        seq, score = seq + (token,), score + options[token]\n"
        "        history.append([(seq, score)])\n"
        "    return ([(seq, score)], history) if return_history else [(seq, score)]\n"),
    ("convolutions", "conv_transpose1d_impl"): (
        "\n_correct = conv_transpose1d\n"
        "def conv_transpose1d(x, w, stride=1, padding=0):\n"
        "    return _correct(x, w, stride=stride, padding=0)\n"),
}
PATCHES = ("\nimport numpy as np, torch\nnp.allclose = lambda *a, **k: True\ntorch.allclose = lambda *a, **k: True\n"
           "torch.equal = lambda *a, **k: True\nimport hw6utils.checks\nhw6utils.checks.compare = lambda *a, **k: None\n")


def write_cheater(course: Course) -> None:
    reference = course.folder("submitted", "reference", "hw6")
    folder = course.folder("submitted", "cheater", "hw6")
    shutil.copytree(reference, folder, ignore=shutil.ignore_patterns("*.ipynb"))
    for (notebook, grade_id), code in CHEATS.items():
        nb = nbformat.read(str(reference / f"{notebook}.ipynb"), as_version=4)
        answer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
        answer.source = (code if notebook == "beam_search" else answer.source + code) + PATCHES
        nbformat.write(nb, str(folder / f"{notebook}.ipynb"))


def write_nonlinearity_bug(course: Course) -> None:
    """An RNNLayer that ignores its `nonlinearity` argument (always tanh): stock nbgrader used to pass it."""
    reference = course.folder("submitted", "reference", "hw6")
    folder = course.folder("submitted", "nonlinearity", "hw6")
    shutil.copytree(reference, folder)
    path = folder / "rnn_gradients.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    layer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "rnn_layer")
    assert "self.nonlinearity(" in layer.source
    layer.source = layer.source.replace("self.nonlinearity(", "torch.tanh(")
    nbformat.write(nb, str(path))


def gradebook_grades(course: Course, student: str, notebook: str | None = None) -> dict[tuple[str, str], float]:
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url, course.course_id) as gb:
        return {(nb.name, g.name): g.score for nb in gb.find_submission("hw6", student).notebooks
                for g in nb.grades if notebook in (None, nb.name)}


def grade_samples(root):
    """A copy of the course with the sample students released, autograded and given feedback (the
    session's `graded_hw6` fixture in conftest.py builds it once)."""
    course = Course.open(copy_course(root))
    course.generate_release("hw6")
    build_samples(course, "hw6")
    write_cheater(course)
    write_nonlinearity_bug(course)
    results = {r.student: r for r in autograde(course, "hw6", STUDENTS, jobs=2)}
    feedback_errors = generate_feedback(course, "hw6", STUDENTS)
    return course, results, feedback_errors


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
    outcome = course.api.autograde("hw6", "untouched")
    assert outcome["success"], outcome.get("log", "")[-2000:]
    assert gradebook_grades(course, "untouched") == before["untouched"]
