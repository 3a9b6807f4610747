"""The formgrader as instructors use it, in a real browser: JupyterLab on the tiny fixture course.

Opens nbgrader's formgrader, checks it starts without warnings, runs *Autograde* for one student from
the "Manage submissions" page, then grades that student's written answer by hand on the grading page,
where the reference answer stands under it. The student's answer and outputs carry script and
``onerror`` payloads: none of them may run in the instructor's authenticated session.
"""
from __future__ import annotations

import shutil

import nbformat
import pytest

from coursekit.course import Course
from coursekit.samples import fill_answers
from coursekit.testing.tiny_course import ASSIGNMENT, make_course
from tests.support.browser import JupyterLab, launch, require_browser

pytestmark = [pytest.mark.browser, pytest.mark.timeout(420)]

STUDENT = "alice"
PAYLOAD_ANSWER = 'Because <img src=x onerror="window.pwned=1"> <script>window.pwned=2</script> it does.'
PAYLOAD_OUTPUT = "from IPython.display import HTML, display\ndisplay(HTML('<img src=y onerror=\"window.pwned=3\">'))"


def _cell(nb, gid):
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


@pytest.fixture
def course(tmp_path) -> Course:
    course = Course.open(make_course(tmp_path / "course"))
    course.generate_release(ASSIGNMENT)
    folder = course.folder("submitted", STUDENT, ASSIGNMENT)
    folder.mkdir(parents=True)
    for name in course.source_notebooks(ASSIGNMENT):
        release = nbformat.read(str(course.folder("release", ASSIGNMENT, f"{name}.ipynb")), as_version=4)
        source = nbformat.read(str(course.folder("source", ASSIGNMENT, f"{name}.ipynb")), as_version=4)
        nb = fill_answers(release, source)
        if name == "adder":
            _cell(nb, "why").source = PAYLOAD_ANSWER
            _cell(nb, "add").source += "\n" + PAYLOAD_OUTPUT
        nbformat.write(nb, str(folder / f"{name}.ipynb"))
    return course


@pytest.fixture
def lab(course, tmp_path):
    server = JupyterLab(course.root, tmp_path / "jupyter-state")
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
        shutil.rmtree(tmp_path / "jupyter-state", ignore_errors=True)


def _grade(course: Course, notebook: str, grade_id: str):
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url, course.course_id) as gb:
        grade = gb.find_grade(grade_id, notebook, ASSIGNMENT, STUDENT)
        return grade.auto_score, grade.manual_score


def test_formgrader_autogrades_and_grades_by_hand_without_running_student_scripts(course, lab):
    from playwright.sync_api import sync_playwright

    chromium = require_browser()
    dialogs: list[str] = []
    with sync_playwright() as playwright:
        browser = launch(playwright, chromium)
        try:
            page = browser.new_page()
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            page.goto(f"{lab.base_url}/formgrader/manage_assignments?token={lab.token}")
            page.wait_for_selector("text=" + ASSIGNMENT, timeout=60_000)
            assert page.locator(".alert-warning").count() == 0, page.locator(".alert-warning").all_inner_texts()

            page.goto(f"{lab.base_url}/formgrader/manage_submissions/{ASSIGNMENT}")
            row = page.locator("tr", has_text=STUDENT)
            row.locator(".autograde a").click()
            page.wait_for_selector(f"text=Successfully autograded '{ASSIGNMENT}' for student '{STUDENT}'",
                                   timeout=240_000)
            assert _grade(course, "adder", "test_add")[0] == 2.0  # judged outside the kernel, saved

            from nbgrader.api import Gradebook
            with Gradebook(course.db_url, course.course_id) as gb:
                submission_id = gb.find_submission_notebook("adder", ASSIGNMENT, STUDENT).id
            page.goto(f"{lab.base_url}/formgrader/submissions/{submission_id}/")
            page.wait_for_selector("input.score#why", timeout=60_000)
            assert "REFERENCE-ANSWER" in page.inner_text("body")  # the reference answer, for the grader
            assert "window.pwned" in page.inner_text("body")  # the student's text is shown as text...
            page.fill("input.score#why", "1")
            page.keyboard.press("Tab")
            page.wait_for_function("() => document.querySelector('#why').value === '1'")
            page.wait_for_timeout(1500)  # the save request
            assert page.evaluate("() => window.pwned") is None  # ...and none of it ran
        finally:
            browser.close()
    assert _grade(course, "adder", "why")[1] == 1.0
    assert dialogs == []
