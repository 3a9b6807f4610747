"""Grades into the LMS: the CSV files Canvas's and Moodle's own grade imports accept.

Canvas (Grades > Import): the gradebook CSV as Canvas exports it. A header row ``Student, ID, SIS User
ID, SIS Login ID, Section`` then one column per assignment, named ``Name (id)`` for an assignment
Canvas already has (the id from the roster's export) or just ``Name`` for a new one; a second row whose
first cell is ``Points Possible`` gives each column's maximum (identity cells empty); then one row per
student, ``Student`` written "Last, First". Canvas finds the student by ID / SIS User ID / SIS Login ID;
an empty grade cell leaves Canvas's grade as it is.

Moodle (Grades > Import > CSV file): a header row, one row per student, identified by the ``Email
address`` or ``ID number`` column (chosen as "Map from" at import), one column per grade item, and a
feedback column per item that holds the late-penalty line. Moodle refuses grades above the grade
item's maximum, so ``--out-of`` rescales points to that maximum.

Points are nbgrader's: every grade, manual grades included, minus the late penalty (recomputed first,
so a manual grade given after autograding is penalised alike), as nbgrader's own CSV export computes
them. Only students in the roster can be written; everyone else is listed in the report.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from coursekit.course import Course, CourseError
from coursekit.roster import ASSIGNMENT_COLUMN, CANVAS_IDENTITY, Roster, compare

CANVAS_POINTS_ROW = "Points Possible"
MOODLE_IDENTITY = ("First name", "Last name", "ID number", "Email address")


@dataclass(frozen=True)
class Grade:
    """One student's points on one assignment, as the LMS gets them."""

    points: float  # after the late penalty, manual grades included
    penalty: float
    late_reason: str


def gradebook_points(course: Course, assignments: list[str]) -> tuple[dict[str, float], dict[tuple[str, str], Grade]]:
    """(assignment -> maximum, (assignment, student) -> Grade), penalties recomputed first."""
    from nbgrader.api import Gradebook

    from coursekit.late import explain, recompute

    for assignment in assignments:
        recompute(course, assignment)
    maxima, grades = {}, {}
    with Gradebook(course.db_url, course.course_id) as gb:
        for assignment in assignments:
            record = gb.find_assignment(assignment)
            maxima[assignment] = float(record.max_score)
            for submission in record.submissions:
                penalty = float(submission.late_submission_penalty or 0.0)
                points = max(0.0, float(submission.score) - penalty)
                grades[(assignment, submission.student.id)] = Grade(points, penalty, "")
    for (assignment, student), grade in list(grades.items()):
        if grade.penalty or _has_extension(course, assignment, student):
            grades[(assignment, student)] = Grade(grade.points, grade.penalty, explain(course, assignment, student))
    return maxima, grades


def _has_extension(course: Course, assignment: str, student: str) -> bool:
    from coursekit.late import extensions_path, policy, read_extensions

    return (assignment, student) in read_extensions(extensions_path(course.root, policy(course)))


def all_assignments(course: Course) -> list[str]:
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url, course.course_id) as gb:
        return sorted(a.name for a in gb.assignments)


def lms_column(roster: Roster, assignment: str) -> str:
    """The roster export's column for ``assignment`` (Canvas "HW6 (1234)" or Moodle "Assignment: hw6
    (Real)"), matched by name, case-insensitively; else the assignment's own name (a new column)."""
    wanted = assignment.casefold()
    for column in roster.columns:
        match = ASSIGNMENT_COLUMN.match(column)
        name = (match.group("name") if match else column).casefold()
        name = name.removeprefix("assignment:").removesuffix("(real)").strip()
        if name == wanted or name.split(":")[0].strip() == wanted:
            return column
    return assignment


def _number(x: float) -> str:
    return f"{round(x, 4):g}"


def write_canvas(path: Path, roster: Roster, columns: dict[str, str], maxima: dict[str, float],
                 grades: dict[tuple[str, str], Grade], out_of: dict[str, float]) -> Path:
    """Canvas's gradebook import CSV (see the module docstring for its rules)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([*CANVAS_IDENTITY, *columns.values()])
        writer.writerow([CANVAS_POINTS_ROW, "", "", "", "", *(_number(out_of[a]) for a in columns)])
        for s in roster.students:
            cells = [_scaled(grades.get((a, s.student_id)), maxima[a], out_of[a]) for a in columns]
            writer.writerow([s.sortable_name, s.lms_user_id, s.sis_user_id, s.sis_login_id, s.section, *cells])
    return path


def write_moodle(path: Path, roster: Roster, columns: dict[str, str], maxima: dict[str, float],
                 grades: dict[tuple[str, str], Grade], out_of: dict[str, float]) -> Path:
    """Moodle's grade import CSV: identity columns, then per assignment a grade and a feedback column."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        header = list(MOODLE_IDENTITY)
        for column in columns.values():
            header += [column, f"{column} feedback"]
        writer.writerow(header)
        for s in roster.students:
            row = [s.first_name, s.last_name, s.lms_user_id, s.email]
            for a in columns:
                grade = grades.get((a, s.student_id))
                row += [_scaled(grade, maxima[a], out_of[a]), grade.late_reason if grade else ""]
            writer.writerow(row)
    return path


def _scaled(grade: Grade | None, maximum: float, out_of: float) -> str:
    if grade is None:
        return ""  # no graded submission: the LMS keeps what it has (listed in the report)
    return _number(grade.points if maximum == out_of or maximum == 0 else grade.points * out_of / maximum)


def export(course: Course, roster: Roster, lms: str, path: Path, assignments: list[str] | None = None,
           out_of: float | None = None) -> list[str]:
    """Write the LMS file for ``assignments`` (default: every assignment in the gradebook); returns the
    report lines (students missing on either side; students whose row lacks what the LMS matches on)."""
    if lms not in ("canvas", "moodle"):
        raise CourseError(f"unknown LMS {lms!r} (canvas or moodle)")
    assignments = assignments or all_assignments(course)
    if not assignments:
        raise CourseError("the gradebook has no assignments; release and autograde first")
    maxima, grades = gradebook_points(course, assignments)
    scale = {a: (out_of if out_of is not None else maxima[a]) for a in assignments}
    columns = {a: lms_column(roster, a) for a in assignments}
    report = compare(course, roster)
    if lms == "canvas":
        write_canvas(path, roster, columns, maxima, grades, scale)
        report += [f"{s.student_id}: no ID, SIS User ID or SIS Login ID; Canvas cannot match this row"
                   for s in roster.students if not (s.lms_user_id or s.sis_user_id or s.sis_login_id)]
    else:
        write_moodle(path, roster, columns, maxima, grades, scale)
        report += [f"{s.student_id}: no e-mail address or ID number; Moodle cannot match this row"
                   for s in roster.students if not (s.email or s.lms_user_id)]
    report += [f"{a}: points scaled from {maxima[a]:g} to {scale[a]:g}" for a in assignments if scale[a] != maxima[a]]
    return report


# --- reading the files back, by the LMS's rules ----------------------------------------------------

def read_canvas(path: Path) -> tuple[dict[str, float], dict[str, dict[str, str]]]:
    """(column -> points possible, student key -> {column: grade}) as Canvas's import reads a gradebook CSV:
    the student key is the first of ID, SIS User ID, SIS Login ID that is set."""
    with Path(path).open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.reader(handle))
    header = rows[0]
    if tuple(header[:5]) != CANVAS_IDENTITY:
        raise CourseError(f"{path}: Canvas needs the columns {', '.join(CANVAS_IDENTITY)} first")
    grade_columns = header[5:]
    points, students = {}, {}
    for row in rows[1:]:
        if row[0].strip() == CANVAS_POINTS_ROW:
            points = {c: float(v) for c, v in zip(grade_columns, row[5:]) if v}
            continue
        key = next((v for v in row[1:4] if v), "")
        students[key] = dict(zip(grade_columns, row[5:]))
    return points, students


def read_moodle(path: Path, map_from: str = "Email address") -> dict[str, dict[str, str]]:
    """user key (the ``map_from`` column) -> {column: value}, as Moodle's CSV import maps rows."""
    with Path(path).open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        return {row[map_from]: {k: v for k, v in row.items() if k not in MOODLE_IDENTITY} for row in reader}
