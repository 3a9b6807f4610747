"""The instructor pipeline on the tiny fixture assignment: scores, bad input, feedback."""
from __future__ import annotations

import html
import time
import json
import re
import shutil
from pathlib import Path

import nbformat
import pytest

from coursekit.course import Course, CourseError
from coursekit.feedback import generate_feedback
from coursekit.grading import autograde, read_scores
from coursekit.samples import build_samples, fill_answers
from coursekit.testing.tiny_course import ASSIGNMENT, make_course


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Course:
    course = Course.open(make_course(tmp_path_factory.mktemp("tiny") / "course"))
    course.generate_release(ASSIGNMENT)
    return course


def submit(course: Course, student: str, notebooks: dict[str, nbformat.NotebookNode | str]) -> Path:
    """Write a submission folder; values are notebooks or raw file text."""
    folder = course.folder("submitted", student, ASSIGNMENT)
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name, content in notebooks.items():
        path = folder / name
        if isinstance(content, str):
            path.write_text(content)
        else:
            nbformat.write(content, str(path))
    return folder


def notebooks(course: Course, filled: bool = True) -> dict[str, nbformat.NotebookNode]:
    out = {}
    for name in course.source_notebooks(ASSIGNMENT):
        release = nbformat.read(str(course.folder("release", ASSIGNMENT, f"{name}.ipynb")), as_version=4)
        source = nbformat.read(str(course.folder("source", ASSIGNMENT, f"{name}.ipynb")), as_version=4)
        out[f"{name}.ipynb"] = fill_answers(release, source) if filled else release
    return out


def scores(course: Course, student: str) -> dict[str, tuple[float, float]]:
    return {nb.name: (nb.code_score, nb.max_code_score) for nb in read_scores(course, ASSIGNMENT, student)}


def visible_text(html_file: Path) -> str:
    """The text a reader of an HTML file sees (tags removed, entities decoded)."""
    return html.unescape(re.sub(r"<[^>]+>", "", html_file.read_text()))


def grade(course: Course, student: str):
    [result] = autograde(course, ASSIGNMENT, [student])
    return result


def test_reference_gets_full_points_and_untouched_gets_zero(course):
    submit(course, "ref", notebooks(course))
    submit(course, "blank", notebooks(course, filled=False))
    results = {r.student: r for r in autograde(course, ASSIGNMENT, ["ref", "blank"])}
    assert scores(course, "ref") == {"adder": (2.0, 2.0), "squares": (1.0, 1.0)}
    assert scores(course, "blank") == {"adder": (0.0, 2.0), "squares": (0.0, 1.0)}
    assert results["ref"].status == "graded" and results["ref"].reasons == []
    assert results["blank"].status == "graded"


def test_invalid_json_scores_zero_and_other_notebook_still_graded(course):
    nbs = notebooks(course)
    nbs["squares.ipynb"] = '{"cells": [ this is not json'
    submit(course, "broken_json", nbs)
    result = grade(course, "broken_json")
    assert scores(course, "broken_json") == {"adder": (2.0, 2.0), "squares": (0.0, 1.0)}
    assert any("squares.ipynb: not valid JSON" in r for r in result.reasons)
    assert result.status == "graded with warnings"


def test_valid_json_that_is_not_a_notebook_is_reported(course):
    nbs = notebooks(course)
    nbs["adder.ipynb"] = json.dumps({"hello": "world"})
    submit(course, "not_nb", nbs)
    result = grade(course, "not_nb")
    assert scores(course, "not_nb")["adder"] == (0.0, 2.0)
    assert any("adder.ipynb: valid JSON but not a valid notebook" in r for r in result.reasons)


def test_missing_notebook_scores_zero_with_reason(course):
    nbs = notebooks(course)
    del nbs["adder.ipynb"]
    submit(course, "missing", nbs)
    result = grade(course, "missing")
    assert scores(course, "missing") == {"adder": (0.0, 2.0), "squares": (1.0, 1.0)}
    assert any("adder.ipynb: missing" in r for r in result.reasons)


def test_renamed_notebook_is_graded_under_its_real_name(course):
    nbs = notebooks(course)
    nbs["my adder copy.ipynb"] = nbs.pop("adder.ipynb")
    submit(course, "renamed", nbs)
    result = grade(course, "renamed")
    assert scores(course, "renamed") == {"adder": (2.0, 2.0), "squares": (1.0, 1.0)}
    assert any("renamed notebook, graded as adder.ipynb" in r for r in result.reasons)


def test_unrelated_extra_notebook_is_ignored(course):
    nbs = notebooks(course)
    nbs["scratch.ipynb"] = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
    submit(course, "extra", nbs)
    result = grade(course, "extra")
    assert scores(course, "extra") == {"adder": (2.0, 2.0), "squares": (1.0, 1.0)}
    assert any("scratch.ipynb: not part of the assignment" in r for r in result.reasons)


def test_deleted_test_cell_is_restored_and_run(course):
    nbs = notebooks(course, filled=False)  # unanswered: the restored test must fail, not vanish
    nbs["adder.ipynb"].cells = [c for c in nbs["adder.ipynb"].cells
                                if c.metadata.get("nbgrader", {}).get("grade_id") != "test_add"]
    submit(course, "deleted", nbs)
    result = grade(course, "deleted")
    assert scores(course, "deleted")["adder"] == (0.0, 2.0)
    assert any("deleted test cell(s) test_add restored" in r for r in result.reasons)


def test_edited_test_cell_is_replaced_by_the_original(course):
    nbs = notebooks(course)
    source = nbs["squares.ipynb"]
    for cell in source.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("grade_id") == "square":
            cell.source = "def square(x):\n    return 9"  # wrong, but passes the visible test
        if meta.get("grade_id") == "test_square":
            cell.source = "pass"
    submit(course, "edited", nbs)
    result = grade(course, "edited")
    assert scores(course, "edited")["squares"] == (0.0, 1.0)  # hidden test square(-4) == 16 fails
    assert any("edited test cell(s) test_square" in r for r in result.reasons)


def test_student_with_no_usable_notebook_fails_cleanly(course):
    submit(course, "nothing", {"adder.ipynb": "", "squares.ipynb": "garbage"})
    result = grade(course, "nothing")
    assert result.status == "failed"
    assert scores(course, "nothing") == {"adder": (0.0, 2.0), "squares": (0.0, 1.0)}


def test_regrading_gives_the_same_score_and_keeps_the_submission(course):
    submit(course, "again", notebooks(course))
    original = (course.folder("submitted", "again", ASSIGNMENT) / "adder.ipynb").read_bytes()
    first = grade(course, "again").code_score
    second = grade(course, "again").code_score
    assert first == second == 3.0
    assert (course.folder("submitted", "again", ASSIGNMENT) / "adder.ipynb").read_bytes() == original


def test_feedback_never_contains_hidden_tests(course):
    submit(course, "fb", notebooks(course))
    nbs = notebooks(course)
    nbs["adder.ipynb"].cells[1].source = "def add(a, b):\n    return 3"  # fails the hidden test only
    submit(course, "fb_wrong", nbs)
    autograde(course, ASSIGNMENT, ["fb", "fb_wrong"])
    assert generate_feedback(course, ASSIGNMENT, ["fb", "fb_wrong"]) == {"fb": None, "fb_wrong": None}
    for student in ("fb", "fb_wrong"):
        text = visible_text(course.folder("feedback", student, ASSIGNMENT) / "adder.html")
        assert "check('one_plus_two', add(1, 2), 3)" in text  # visible tests stay visible
        for secret in ("add(-5, 2)", "BEGIN HIDDEN TESTS"):
            assert secret not in text, f"{secret!r} leaked into {student}'s feedback"
    wrong = visible_text(course.folder("feedback", "fb_wrong", ASSIGNMENT) / "adder.html")
    assert "Some test in this cell failed" in wrong
    assert "hidden check 'hidden-test-marker' failed" in wrong  # named, never with its expected value


def test_graders_see_the_reference_answer_under_each_written_answer(course):
    submit(course, "ra", notebooks(course, filled=False))
    grade(course, "ra")
    nb = nbformat.read(str(course.folder("autograded", "ra", ASSIGNMENT, "adder.ipynb")), as_version=4)
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") or c.metadata.get("coursekit", {}).get("reference_answer")
           for c in nb.cells]
    answer = ids.index("why")
    assert ids[answer + 1] == "why" and "REFERENCE-ANSWER" in nb.cells[answer + 1].source
    assert "YOUR ANSWER HERE" in nb.cells[answer].source  # the student's own cell is untouched
    assert generate_feedback(course, ASSIGNMENT, ["ra"]) == {"ra": None}
    assert "REFERENCE-ANSWER" not in visible_text(course.folder("feedback", "ra", ASSIGNMENT) / "adder.html")


def test_student_html_and_scripts_are_sanitised_in_feedback(course):
    nbs = notebooks(course)
    why = next(c for c in nbs["adder.ipynb"].cells if c.metadata.get("nbgrader", {}).get("grade_id") == "why")
    why.source = "Because <img src=x onerror=\"window.pwned=1\"> <script>window.pwned=2</script>"
    add = next(c for c in nbs["adder.ipynb"].cells if c.metadata.get("nbgrader", {}).get("grade_id") == "add")
    add.source += "\nfrom IPython.display import HTML, display\ndisplay(HTML('<script>window.pwned=3</script>'))"
    submit(course, "xss", nbs)
    grade(course, "xss")
    assert generate_feedback(course, ASSIGNMENT, ["xss"]) == {"xss": None}
    page = (course.folder("feedback", "xss", ASSIGNMENT) / "adder.html").read_text()
    assert "pwned" in page  # the student's text is there, as text
    assert executable_payloads(page, "pwned") == []


def executable_payloads(page: str, marker: str) -> list[str]:
    """Scripts and event-handler attributes of an HTML page that mention ``marker`` (what would run)."""
    from html.parser import HTMLParser

    found: list[str] = []

    class Finder(HTMLParser):
        in_script = False

        def handle_starttag(self, tag, attrs):
            self.in_script = tag == "script"
            found.extend(f"<{tag} {name}>" for name, value in attrs
                         if name.startswith("on") and marker in (value or ""))

        def handle_data(self, data):
            if self.in_script and marker in data:
                found.append(f"<script>{data[:40]}")

        def handle_endtag(self, tag):
            self.in_script = False

    Finder().feed(page)
    return found


def test_unknown_assignment_is_a_clear_error(course):
    with pytest.raises(CourseError, match="not in the gradebook"):
        autograde(course, "nope", ["ref"])


def test_samples_cover_reference_untouched_partial_and_messy(course):
    folders = build_samples(course, ASSIGNMENT)
    assert set(folders) == {"reference", "untouched", "partial", "messy"}
    assert (folders["reference"] / "helper.py").is_file()  # helper files travel with the notebooks
    messy = {p.name for p in folders["messy"].iterdir()}
    assert "adder (1).ipynb" in messy and "squares.ipynb" in messy
    with pytest.raises(json.JSONDecodeError):
        json.loads((folders["messy"] / "squares.ipynb").read_text())


def grade_serially_then_in_parallel(course: Course, prefix: str) -> tuple[dict, dict]:
    """Submit a full, a blank and a half-done student; grade them with --jobs 1, then --jobs 2.

    Returns the per-cell grades of both runs: (student, notebook, grade_id) -> score.
    """
    from nbgrader.api import Gradebook

    students = [f"{prefix}_ref", f"{prefix}_blank", f"{prefix}_half"]
    half = notebooks(course)
    half["squares.ipynb"] = notebooks(course, filled=False)["squares.ipynb"]
    for student, nbs in zip(students, (notebooks(course), notebooks(course, filled=False), half)):
        submit(course, student, nbs)

    def grades() -> dict[tuple[str, str, str], float]:
        with Gradebook(course.db_url, course.course_id) as gb:
            return {(s.split("_", 1)[1], nb.name, g.name): g.score for s in students
                    for nb in gb.find_submission(ASSIGNMENT, s).notebooks for g in nb.grades}

    autograde(course, ASSIGNMENT, students, jobs=1)
    serial = grades()
    autograde(course, ASSIGNMENT, students, jobs=2)
    return serial, grades()


def test_parallel_grading_gives_the_same_grades_as_serial(course):
    serial, parallel = grade_serially_then_in_parallel(course, "par")
    assert parallel == serial
    assert serial[("ref", "adder", "test_add")] == 2.0 and serial[("ref", "squares", "test_square")] == 1.0
    assert serial[("half", "adder", "test_add")] == 2.0 and serial[("half", "squares", "test_square")] == 0.0
    assert serial[("blank", "adder", "test_add")] == 0.0


def test_missing_course_data_is_named_and_the_other_notebooks_are_graded(tmp_path):
    """A notebook whose reference needs the course data (data/names, as Problem 4 does) cannot be judged
    without it: autograde names the missing folder and `coursekit fetch-data`, and grades the rest."""
    from coursekit.testing.tiny_course import nbgrader_cell as _cell

    root = make_course(tmp_path / "course")
    reader = nbformat.v4.new_notebook(cells=[
        _cell("code", "import os\ndef first_line():\n    ### BEGIN SOLUTION\n"
                      "    return open(os.path.join(os.environ['HW6_DATA_DIR'], 'x.txt')).readline().strip()\n"
                      "    ### END SOLUTION", "first_line", grade=False, solution=True),
        _cell("code", "from hw6utils.checks import check\ncheck('first line', first_line())",
              "test_first_line", grade=True, solution=False, points=1)])
    reader.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(reader, str(root / "source" / ASSIGNMENT / "reader.ipynb"))
    course = Course.open(root)
    course.generate_release(ASSIGNMENT)
    submit(course, "someone", notebooks(course))

    [result] = autograde(course, ASSIGNMENT, ["someone"])
    assert scores(course, "someone")["adder"] == (2.0, 2.0) and scores(course, "someone")["squares"] == (1.0, 1.0)
    [why] = [r for r in result.reasons if r.startswith("reader.ipynb: not graded")]
    assert "the course data is missing" in why and "coursekit fetch-data" in why
    assert str(root / "data" / "names") in why

    (root / "data" / "names").mkdir(parents=True)
    (root / "data" / "names" / "x.txt").write_text("hello\n")
    [result] = autograde(course, ASSIGNMENT, ["someone"])
    assert scores(course, "someone")["reader"] == (1.0, 1.0) and result.reasons == []


def test_course_state_is_owner_only_and_the_exchange_exists(course):
    assert (course.root / ".coursekit").stat().st_mode & 0o777 == 0o700
    assert (course.root / "gradebook.db").stat().st_mode & 0o777 == 0o600
    exchange = Path(course.config.Exchange.root)
    assert exchange.is_dir()  # the formgrader's Release and Collect need it
    assert course.root.resolve() not in exchange.resolve().parents  # no student account enters the course


def test_a_student_who_sleeps_hits_the_submission_budget(tmp_path):
    root = make_course(tmp_path / "course")
    with (root / "nbgrader_config.py").open("a") as config:
        config.write("\nc.Budget.minimum = 10\nc.Budget.factor = 0.5\n")
    course = Course.open(root)
    course.generate_release(ASSIGNMENT)
    nbs = notebooks(course)
    add = next(c for c in nbs["adder.ipynb"].cells if c.metadata["nbgrader"].get("grade_id") == "add")
    add.source += "\nimport time\ntime.sleep(120)"
    submit(course, "sleeper", nbs)
    started = time.monotonic()
    [result] = autograde(course, ASSIGNMENT, ["sleeper"])
    assert time.monotonic() - started < 60  # nobody waits for the sleeper beyond its budget
    assert scores(course, "sleeper") == {"adder": (0.0, 2.0), "squares": (0.0, 1.0)}
    assert any("time" in r and "budget" in r for r in result.reasons), result.reasons


def test_feedback_math_renders_without_a_cdn(course):
    nbs = notebooks(course)
    why = next(c for c in nbs["adder.ipynb"].cells if c.metadata.get("nbgrader", {}).get("grade_id") == "why")
    why.source = "Because $a + b = b + a$ and $$\\frac{a}{b}$$ (code stays: `$x$`)."
    submit(course, "math", nbs)
    grade(course, "math")
    assert generate_feedback(course, ASSIGNMENT, ["math"]) == {"math": None}
    page = (course.folder("feedback", "math", ASSIGNMENT) / "adder.html").read_text()
    assert page.count("<math") >= 2 and "<mfrac>" in page  # MathML: the browser draws it, no MathJax needed
    assert "$a + b = b + a$" not in page and "<code>$x$</code>" in page
