"""The hw6 sample course graded once per test session: the release, the bundled sample students plus a
cheater and a nonlinearity bug, autograded by `coursekit autograde` and given feedback.

The root conftest's ``graded_hw6`` fixture builds it once for every pytest-xdist worker
(tests.support.session_cache) and hands each worker a copy; ``copy_graded_hw6`` gives a test a copy of its
own to change (another door re-grading it, a cluster grading it again).
"""
from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from coursekit.course import Course
from coursekit.feedback import generate_feedback
from coursekit.grading import StudentResult, autograde
from coursekit.samples import build_samples
from coursekit.testing.courses import copy_course

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
    """An RNNLayer that ignores its `nonlinearity` argument (always tanh): stock nbgrader used to pass it.
    Only rnn_gradients.ipynb is handed in (the other six would be the reference's, graded again)."""
    reference = course.folder("submitted", "reference", "hw6")
    folder = course.folder("submitted", "nonlinearity", "hw6")
    shutil.copytree(reference, folder, ignore=shutil.ignore_patterns("*.ipynb"))
    path = folder / "rnn_gradients.ipynb"
    shutil.copy(reference / path.name, path)
    nb = nbformat.read(str(path), as_version=4)
    layer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "rnn_layer")
    assert "self.nonlinearity(" in layer.source
    layer.source = layer.source.replace("self.nonlinearity(", "torch.tanh(")
    nbformat.write(nb, str(path))


def grade_samples(root: Path) -> tuple[dict[str, StudentResult], dict[str, str | None]]:
    """Build the graded sample course in ``root``: (results by student, feedback errors by student)."""
    course = Course.open(copy_course(root))
    course.generate_release("hw6")
    build_samples(course, "hw6")
    write_cheater(course)
    write_nonlinearity_bug(course)
    results = {r.student: r for r in autograde(course, "hw6", STUDENTS, jobs=2)}
    feedback_errors = generate_feedback(course, "hw6", STUDENTS)
    return results, feedback_errors


def copy_graded_hw6(built: Path, target: Path) -> Course:
    """A private copy of the graded sample course (gradebook, autograded notebooks, cached reference
    records and all) to change without touching anyone else's."""
    from tests.support.session_cache import copy_built

    return Course.open(copy_built(built, target))
