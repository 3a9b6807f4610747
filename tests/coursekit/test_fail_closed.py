"""Fail closed at every door: `coursekit autograde`, stock `nbgrader autograde` and the formgrader's API
(`NbGraderAPI.autograde`), on the tiny course, beside an honest student who keeps full points.

* links (to the instructor's notebooks, to a root-only file, nested deeper than PATH_MAX), a hard link and
  a FIFO: nothing they point at is read, copied, graded or put in feedback;
* a student for whom intake cannot finish is not graded at all (0, one reason line), never graded on
  what nbgrader would copy after a failed hook;
* every JSON type in every metadata field nbgrader or the kit reads harms at most its own notebook.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from coursekit.course import Course
from coursekit.grading import autograde
from coursekit.report import results_from_gradebook
from coursekit.testing.tiny_course import ASSIGNMENT, make_course
from tests.coursekit.test_doors import _notebooks, grades, submit

pytestmark = pytest.mark.slow  # one xdist group per door (below): the three doors grade on both workers

SECRET = "ROOT-ONLY-SECRET-7f3a"
JSON_VALUES = {"null": None, "bool": True, "int": 7, "float": 2.5, "huge": 10 ** 400, "string": "x",
               "list": [1, "a"], "dict": {"k": 1}, "nested": {"a": [{"b": [None, {"c": 1.5}]}]}}
CELL_FIELDS = ["grade", "solution", "locked", "task", "grade_id", "points", "schema_version", "checksum",
               "cell_type"]
WHOLE = ["cell.metadata", "cell.nbgrader", "cell.coursekit", "kernelspec", "language_info"]
VALID = {"grade": bool, "solution": bool, "locked": bool, "task": bool, "grade_id": str, "checksum": str,
         "cell_type": str, "points": (int, float), "cell.metadata": dict, "cell.nbgrader": dict,
         "cell.coursekit": dict, "kernelspec": dict, "language_info": dict}


def malformed(adder: nbformat.NotebookNode, where: str, value) -> str:
    """The honest adder notebook as raw JSON with ``value`` in one field of its test cell or notebook."""
    nb = json.loads(json.dumps(adder))
    test = next(c for c in nb["cells"] if c["metadata"].get("nbgrader", {}).get("grade_id") == "test_add")
    if where in CELL_FIELDS:
        test["metadata"]["nbgrader"][where] = value
    elif where == "cell.metadata":
        test["metadata"] = value
    elif where.startswith("cell."):
        test["metadata"][where.removeprefix("cell.")] = value
    else:
        nb["metadata"][where] = value
    return json.dumps(nb)


def variants() -> dict[str, tuple[str, object]]:
    """student id -> (field, value): every JSON type in every field."""
    return {f"m-{field.replace('.', '_')}-{kind}": (field, value)
            for field in [*CELL_FIELDS, *WHOLE] for kind, value in JSON_VALUES.items()}


def plausible(field: str, value) -> bool:
    """A value of the type nbgrader expects there (it may then be repaired and graded)."""
    if field == "schema_version":
        return value == 3
    if field == "points":
        return type(value) in (int, float) and 0 <= value <= 1e6
    types = VALID[field]
    return type(value) in (types if isinstance(types, tuple) else (types,))


def _deep_link(folder: Path, target: Path, levels: int = 420) -> None:
    """A link nested deeper than PATH_MAX (4096 bytes), made by descriptor."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    for _ in range(levels):
        os.mkdir("dddddddddd", dir_fd=fd)
        child = os.open("dddddddddd", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    os.symlink(str(target), "deep-link", dir_fd=fd)
    os.close(fd)


def build(root: Path) -> tuple[Course, Path]:
    """A fresh tiny course with the honest student, the hostile ones and every malformed variant."""
    course = Course.open(make_course(root / "course"))
    course.generate_release(ASSIGNMENT)
    secret = root / "root-only.txt"
    secret.write_text(SECRET)
    os.chmod(secret, 0o600)
    honest = _notebooks(course)
    submit(course, "honest", {f"{n}.ipynb": nb for n, nb in honest.items()})

    submit(course, "linker", {})
    folder = course.folder("submitted", "linker", ASSIGNMENT)
    for name in ("adder", "squares"):  # the untouched reference notebooks, through relative links
        (folder / f"{name}.ipynb").symlink_to(Path("../../../source") / ASSIGNMENT / f"{name}.ipynb")
    (folder / "secret.txt").symlink_to(secret)
    os.link(secret, folder / "hard.txt")
    os.mkfifo(folder / "pipe")
    _deep_link(folder, course.root / "source" / ASSIGNMENT / "adder.ipynb")

    # intake cannot finish (its quarantine folder cannot be made): nothing of this student is graded
    submit(course, "unfinished", {f"{n}.ipynb": nb for n, nb in honest.items()})
    (course.folder("submitted", "unfinished", ASSIGNMENT) / "secret.txt").symlink_to(secret)
    (course.root / ".coursekit" / "quarantine").mkdir(parents=True, exist_ok=True)
    (course.root / ".coursekit" / "quarantine" / "unfinished").write_text("in the way")

    # the case: a list grade id in one notebook, an honest other notebook
    submit(course, "witness", {"adder.ipynb": malformed(honest["adder"], "grade_id", ["a", "b"]),
                               "squares.ipynb": honest["squares"]})
    for student, (field, value) in variants().items():
        submit(course, student, {"adder.ipynb": malformed(honest["adder"], field, value)})
    return course, secret


def everyone(course: Course) -> list[str]:
    return ["honest", "linker", "unfinished", "witness", *variants()]


def by_coursekit(course: Course) -> str:
    results = autograde(course, ASSIGNMENT, jobs=2)
    return "\n".join(f"{r.student}: {line}" for r in results for line in r.reasons)


def by_nbgrader(course: Course) -> str:
    nbgrader = Path(sys.executable).with_name("nbgrader")
    run = subprocess.run([str(nbgrader), "autograde", ASSIGNMENT, "--force"], cwd=course.root,
                         capture_output=True, text=True, timeout=1800)
    return run.stderr


def by_formgrader_api(course: Course) -> str:
    logs = []
    for student in everyone(course):
        outcome = course.api.autograde(ASSIGNMENT, student)
        logs.append(outcome.get("log") or "")
        logs.append(outcome.get("error") or "")
    return "\n".join(logs)


DOORS = {"coursekit": by_coursekit, "nbgrader": by_nbgrader, "formgrader": by_formgrader_api}


@pytest.fixture(scope="module", params=[pytest.param(door, marks=pytest.mark.xdist_group(f"fail_closed_{door}"))
                                        for door in DOORS])
def graded(request, tmp_path_factory):
    course, secret = build(tmp_path_factory.mktemp(request.param))
    log = DOORS[request.param](course)
    feedback = course.api.generate_feedback(ASSIGNMENT)
    return request.param, course, log, grades(course, everyone(course)), feedback


def _scores(got, student):
    return {nb: score for (s, nb, _), score in got.items() if s == student}


def test_the_honest_student_keeps_full_points(graded):
    door, course, log, got, _ = graded
    assert _scores(got, "honest") == {"adder": 2.0, "squares": 1.0}, log[-3000:]


def test_links_hard_links_and_fifos_are_never_followed(graded):
    door, course, log, got, _ = graded
    assert _scores(got, "linker") == {"adder": 0.0, "squares": 0.0}, log[-3000:]
    for kind in ("autograded", "feedback"):
        for path in course.folder(kind).rglob("*"):
            if path.is_file() and not path.is_symlink():
                text = path.read_bytes()
                assert SECRET.encode() not in text, path
                if "linker" in path.parts or "unfinished" in path.parts:
                    assert b"REFERENCE-ANSWER" not in text and b"hidden-test-marker" not in text, path
    assert not list(course.folder("autograded", "linker", ASSIGNMENT).glob("*.ipynb"))
    assert "deep-link: symbolic link moved out" in log, log[-3000:]
    assert "hard.txt: hard link moved out" in log and "pipe: special file moved out" in log


def test_a_student_whose_intake_cannot_finish_is_not_graded(graded):
    door, course, log, got, _ = graded
    assert _scores(got, "unfinished") == {"adder": 0.0, "squares": 0.0}, log[-3000:]
    assert not list(course.folder("autograded", "unfinished", ASSIGNMENT).glob("*.ipynb"))
    said = [line for line in log.splitlines() if "intake could not finish" in line]
    assert len(said) == 1 and "quarantine/unfinished" in said[0], said  # one reason line, naming the cause
    if door == "coursekit":  # and `coursekit report` says it later
        (later,) = results_from_gradebook(course, ASSIGNMENT, ["unfinished"])
        assert later.status == "failed" and [r for r in later.reasons if "intake could not finish" in r]


def test_every_json_type_in_every_metadata_field_harms_only_its_notebook(graded):
    door, course, log, got, _ = graded
    assert _scores(got, "witness") == {"adder": 0.0, "squares": 1.0}, log[-3000:]
    wrong = {}
    for student, (field, value) in variants().items():
        adder = _scores(got, student).get("adder")
        if adder not in ((0.0, 2.0) if plausible(field, value) else (0.0,)):
            wrong[student] = adder
    assert not wrong, wrong
    assert "malformed metadata (cell 3: nbgrader grade_id is a list)" in log


# --- a notebook nbformat's schema would refuse first: the reason still names the field, at every door ----

SCHEMA_FIRST = {  # student -> (field, value, the words the reason line must hold)
    "schema-cell-metadata": ("cell.metadata", [1, "a"], "adder.ipynb: malformed metadata (cell 3: metadata is a list, "
                                                        "not an object)"),
    "schema-kernelspec": ("kernelspec", "x", "adder.ipynb: malformed metadata (notebook metadata kernelspec is a "
                                             "string, not an object)"),
    "schema-language-info": ("language_info", None, "adder.ipynb: malformed metadata (notebook metadata "
                                                    "language_info is null, not an object)"),
}


@pytest.mark.parametrize("door", [pytest.param(door, marks=pytest.mark.xdist_group(f"fail_closed_{door}"))
                                  for door in DOORS])
def test_a_notebook_the_schema_refuses_is_named_by_file_and_field_at_every_door(door, tmp_path):
    """Cell metadata, kernelspec or language_info that is not an object: nbformat cannot even read such a
    notebook, and its message names no field. Intake asks first, so every door's reason line names the file
    and the field; that notebook scores 0, the student's other notebook and the other students are graded."""
    course = Course.open(make_course(tmp_path / "course"))
    course.generate_release(ASSIGNMENT)
    honest = _notebooks(course)
    submit(course, "honest", {f"{n}.ipynb": nb for n, nb in honest.items()})
    for student, (field, value, _) in SCHEMA_FIRST.items():
        files = {"adder.ipynb": malformed(honest["adder"], field, value)}
        if field == "cell.metadata":  # one student also hands in an honest notebook
            files["squares.ipynb"] = honest["squares"]
        submit(course, student, files)
    students = ["honest", *SCHEMA_FIRST]
    run = {"coursekit": lambda: by_coursekit(course),
           "nbgrader": lambda: by_nbgrader(course),
           "formgrader": lambda: "\n".join(course.api.autograde(ASSIGNMENT, s).get("log") or "" for s in students)}
    log = run[door]()
    got = grades(course, students)
    assert _scores(got, "honest") == {"adder": 2.0, "squares": 1.0}, log[-3000:]
    assert _scores(got, "schema-cell-metadata") == {"adder": 0.0, "squares": 1.0}, log[-3000:]
    for student, (_, _, reason) in SCHEMA_FIRST.items():
        assert _scores(got, student)["adder"] == 0.0, log[-3000:]
        assert reason in log, (student, log[-3000:])
    assert "not a valid notebook" not in log and "Traceback" not in log, log[-3000:]
