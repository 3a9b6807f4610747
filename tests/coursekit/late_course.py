"""The tiny fixture course with a due date, an extension and four submission times (late-penalty and LMS
tests share one graded copy of it: the `late_course` fixture in conftest.py)."""
from __future__ import annotations

from pathlib import Path

import nbformat

from coursekit.course import Course
from coursekit.samples import fill_answers
from coursekit.testing.tiny_course import ASSIGNMENT, make_course

POLICY = f"""
c.LatePolicy.due_dates = {{"{ASSIGNMENT}": "2026-01-10T13:00:00+01:00"}}
c.LatePolicy.percent_per_day = 10.0
c.LatePolicy.max_percent = 50.0
c.LatePolicy.grace_minutes = 15.0
"""
# due 12:00 UTC; submission times as collection writes them (nbgrader's timestamp.txt)
SUBMITTED = {"early": "2026-01-10 11:00:00.000000 UTC",
             "grace": "2026-01-10 12:10:00.000000 UTC",
             "late": "2026-01-11 13:00:00.000000 UTC",  # 1 d 1 h late: two started days, 20 %
             "extended": "2026-01-11 13:00:00.000000 UTC"}  # as late, with a 2-day extension
EXTENSIONS = f'[{ASSIGNMENT}]\nextended = {{ days = 2, reason = "medical certificate" }}\n'
AUTOGRADED_POINTS = 3.0  # adder 2 + squares 1 (the written answer, 1 point, waits for a grader)
MAX_POINTS = 4.0
# the penalties every door stores (20 % of each notebook's points for `late`)
PENALTIES = {"early": {"adder": 0.0, "squares": 0.0}, "grace": {"adder": 0.0, "squares": 0.0},
             "late": {"adder": 0.4, "squares": 0.2}, "extended": {"adder": 0.0, "squares": 0.0}}


def fresh_course(root: Path) -> Course:
    """Released, with every student's honest submission and timestamp in submitted/ (not graded)."""
    make_course(root)
    with (root / "nbgrader_config.py").open("a") as config:
        config.write(POLICY)
    (root / "extensions.toml").write_text(EXTENSIONS)
    course = Course.open(root)
    course.generate_release(ASSIGNMENT)
    for student, stamp in SUBMITTED.items():
        folder = course.folder("submitted", student, ASSIGNMENT)
        folder.mkdir(parents=True)
        for name in course.source_notebooks(ASSIGNMENT):
            release = nbformat.read(str(course.folder("release", ASSIGNMENT, f"{name}.ipynb")), as_version=4)
            source = nbformat.read(str(course.folder("source", ASSIGNMENT, f"{name}.ipynb")), as_version=4)
            nbformat.write(fill_answers(release, source), str(folder / f"{name}.ipynb"))
        (folder / "timestamp.txt").write_text(stamp)
    return course


def penalties(course: Course) -> dict[str, dict[str, float]]:
    """student -> notebook -> late penalty stored in nbgrader's gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url, course.course_id) as gb:
        return {s: {nb.name: round(nb.late_submission_penalty or 0.0, 6)
                    for nb in gb.find_submission(ASSIGNMENT, s).notebooks} for s in SUBMITTED}
