"""The hw6 sample course graded once per test session, the way a newcomer grades it: a clone of this
repository in a folder whose name has a space, its own venv, `coursekit fetch-data` from the mirror, the
whole `coursekit demo` (release, the bundled sample students, autograde, feedback, reports), then a cheater
and a nonlinearity bug handed in and graded by `coursekit autograde` and `coursekit feedback`.

The root conftest's ``graded_hw6_built`` fixture builds it once for every pytest-xdist worker
(tests.support.session_cache); test_clone_anywhere.py checks the demo's run, other tests read the course or
grade a copy of it (``copy_graded_hw6``: another door re-grading it, a cluster grading it again).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import nbformat

from coursekit import sandbox
from coursekit.course import Course
from coursekit.grading import StudentResult
from coursekit.report import results_from_gradebook
from tests.support.clone import REPO_ROOT, clone_with_venv

STUDENTS = ["reference", "untouched", "partial", "messy", "cheater", "nonlinearity"]
EXTRA = ["cheater", "nonlinearity"]  # handed in after the demo
CLONE = "course kit"  # the clone's folder: a name with a space

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


def data_mirror() -> Path | None:
    """The verified surname data the clone fetches from (HW6_DATA_MIRROR, else this repository's copy)."""
    mirror = Path(os.environ.get("HW6_DATA_MIRROR") or REPO_ROOT / "data" / "names")
    return mirror if mirror.is_dir() else None


@dataclass
class GradedSamples:
    """What building the graded sample course left to check."""

    kit_file: str  # where the clone's `import coursekit` comes from
    demo: subprocess.CompletedProcess  # `coursekit demo`, as the newcomer ran it
    results: dict[str, StudentResult]  # every student's result, as `coursekit report` reads it back
    feedback_errors: dict[str, str | None]  # student -> why a feedback page is missing (None: all there)


def _run(command: list[str], clone: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=clone, env=env, capture_output=True, text=True, timeout=3600)


def _missing_pages(course: Course, student: str) -> str | None:
    """Why a student's feedback is incomplete (a page missing for an autograded notebook), or None."""
    graded = sorted(course.folder("autograded", student, "hw6").glob("*.ipynb"))
    missing = [nb.stem for nb in graded if not course.folder("feedback", student, "hw6", f"{nb.stem}.html").is_file()]
    if not graded:
        return "nothing autograded"
    return f"no feedback page for {', '.join(missing)}" if missing else None


def grade_samples(root: Path) -> GradedSamples:
    """Build the graded sample course in ``root / CLONE``."""
    clone = root / CLONE
    venv = clone_with_venv(clone)
    env = {**os.environ, "HW6_DATA_MIRROR": str(data_mirror())}
    env.pop(sandbox.ALLOW_DEGRADED_ENV, None)
    kit = _run([str(venv / "bin" / "python"), "-c", "import coursekit; print(coursekit.__file__)"], clone, env)
    coursekit = [str(venv / "bin" / "coursekit")]
    fetched = _run([*coursekit, "fetch-data"], clone, env)
    if fetched.returncode != 0:
        raise RuntimeError(f"coursekit fetch-data failed in the clone: {fetched.stderr[-2000:]}")
    demo = _run([*coursekit, "demo"], clone, env)
    course = Course.open(clone)
    write_cheater(course)
    write_nonlinearity_bug(course)
    students = [arg for student in EXTRA for arg in ("--student", student)]
    for step in (["autograde", "hw6", *students, "--jobs", "2"], ["feedback", "hw6", *students]):
        done = _run([*coursekit, *step], clone, env)
        if done.returncode != 0:
            raise RuntimeError(f"coursekit {step[0]} failed in the clone: {(done.stdout + done.stderr)[-2000:]}")
    results = {r.student: r for r in results_from_gradebook(course, "hw6", STUDENTS)}
    feedback_errors = {student: _missing_pages(course, student) for student in STUDENTS}
    return GradedSamples(kit.stdout.strip(), demo, results, feedback_errors)


def copy_graded_hw6(built: Path, target: Path) -> Course:
    """A private copy of the graded sample course (gradebook, autograded notebooks, cached reference
    records and all; not the clone's venv and git history) to change without touching anyone else's."""
    shutil.copytree(built, target, symlinks=True, ignore=shutil.ignore_patterns(".venv", ".git"))
    return Course.open(target)
