"""Every door grades alike: `coursekit autograde`, stock `nbgrader autograde` and the formgrader's API
(`NbGraderAPI.autograde`) run nbgrader_config.py's pipeline and give the same per-cell grades, on the
tiny fixture course, for honest, blank, messy and hidden-only-bug students."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from coursekit.course import Course
from coursekit.grading import autograde
from coursekit.samples import fill_answers
from coursekit.testing.tiny_course import ASSIGNMENT, make_course

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("doors")]


def _notebooks(course: Course, filled: bool = True) -> dict[str, nbformat.NotebookNode]:
    out = {}
    for name in course.source_notebooks(ASSIGNMENT):
        release = nbformat.read(str(course.folder("release", ASSIGNMENT, f"{name}.ipynb")), as_version=4)
        source = nbformat.read(str(course.folder("source", ASSIGNMENT, f"{name}.ipynb")), as_version=4)
        out[name] = fill_answers(release, source) if filled else release
    return out


def _cell(nb, gid):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


def students(course: Course) -> dict[str, dict[str, nbformat.NotebookNode | str]]:
    """name -> {file name: notebook or raw text}."""
    honest = _notebooks(course)
    hidden_bug = _notebooks(course)
    _cell(hidden_bug["adder"], "add").source = "def add(a, b):\n    return abs(a) + abs(b)"  # visible test passes
    messy = _notebooks(course)
    patched = _notebooks(course)
    _cell(patched["squares"], "square").source = (
        "def square(x):\n    return 0\n"
        "import hw6utils.checks as _c\n_c.check = lambda name, value, *a, **k: None\n"
        "_c.recording = lambda: False")
    return {
        "honest": {f"{n}.ipynb": nb for n, nb in honest.items()},
        "blank": {f"{n}.ipynb": nb for n, nb in _notebooks(course, filled=False).items()},
        "hidden_bug": {f"{n}.ipynb": nb for n, nb in hidden_bug.items()},
        "messy": {"adder (1).ipynb": messy["adder"], "squares.ipynb": '{"cells": [ not json'},
        "patched_check": {f"{n}.ipynb": nb for n, nb in patched.items()},
    }


def submit(course: Course, student: str, files: dict) -> None:
    folder = course.folder("submitted", student, ASSIGNMENT)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name, content in files.items():
        if isinstance(content, str):
            (folder / name).write_text(content)
        else:
            nbformat.write(content, str(folder / name))


def grades(course: Course, names) -> dict[tuple[str, str, str], float | None]:
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url, course.course_id) as gb:
        return {(s, nb.name, g.name): g.score for s in names
                for nb in gb.find_submission(ASSIGNMENT, s).notebooks for g in nb.grades
                if g.cell.cell_type == "code"}


def fresh_course(root: Path) -> Course:
    course = Course.open(make_course(root))
    course.generate_release(ASSIGNMENT)
    for student, files in students(course).items():
        submit(course, student, files)
    return course


@pytest.fixture(scope="module")
def by_coursekit(tmp_path_factory):
    course = fresh_course(tmp_path_factory.mktemp("ck") / "course")
    results = {r.student: r for r in autograde(course, ASSIGNMENT, jobs=2)}
    return course, results, grades(course, results)


def test_coursekit_grades_fairly(by_coursekit):
    course, results, got = by_coursekit
    assert got[("honest", "adder", "test_add")] == 2.0 and got[("honest", "squares", "test_square")] == 1.0
    assert got[("hidden_bug", "adder", "test_add")] == 0.0  # only a hidden check fails
    assert got[("patched_check", "squares", "test_square")] == 0.0  # a patched `check` earns nothing
    assert got[("messy", "adder", "test_add")] == 2.0 and got[("messy", "squares", "test_square")] == 0.0
    assert any("renamed notebook, graded as adder.ipynb" in r for r in results["messy"].reasons)
    assert any("squares.ipynb: not valid JSON" in r for r in results["messy"].reasons)


def test_stock_nbgrader_autograde_gives_the_same_grades(by_coursekit, tmp_path):
    _, results, expected = by_coursekit
    course = fresh_course(tmp_path / "course")
    nbgrader = Path(sys.executable).with_name("nbgrader")
    run = subprocess.run([str(nbgrader), "autograde", ASSIGNMENT, "--force"], cwd=course.root,
                         capture_output=True, text=True, timeout=600)
    assert grades(course, results) == expected, run.stderr[-3000:]
    assert "renamed notebook, graded as adder.ipynb" in run.stderr  # intake speaks through nbgrader's log


def test_formgrader_api_gives_the_same_grades(by_coursekit, tmp_path):
    _, results, expected = by_coursekit
    course = fresh_course(tmp_path / "course")
    for student in results:
        outcome = course.api.autograde(ASSIGNMENT, student)
        assert outcome["success"] or student == "messy", outcome.get("log", "")[-2000:]
    assert grades(course, results) == expected
