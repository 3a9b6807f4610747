"""The class list from the LMS: who is enrolled, under which ids, mapped to nbgrader student ids.

``coursekit roster import <file.csv>`` reads the CSV the LMS itself exports (Canvas: Grades > Export,
the gradebook CSV; Moodle: Grades > Export > Plain text file, or the participants list), keeps it in
the course's owner-only state folder (``.coursekit/roster.json``: personal data, never committed) and
fills nbgrader's student table (names, e-mail, LMS user id). The nbgrader id of each student comes
from one column (``--id-from``; Canvas: "SIS Login ID", Moodle: "Email address"); an e-mail address
gives its local part. Students in the roster without a graded submission, and graded students
missing from the roster, are listed (:func:`compare`), never dropped silently.
"""
from __future__ import annotations

import csv
import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from coursekit.course import Course, CourseError

STATE_FILE = Path(".coursekit") / "roster.json"
STUDENT_ID = re.compile(r"^[A-Za-z0-9_.-]+$")  # what a submission folder may be named
CANVAS_IDENTITY = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
CANVAS_SKIP_ROWS = ("Points Possible", "Manual Posting", "Muted")  # the exported rows under the header
CANVAS_TEST_STUDENT = "Student, Test"
MOODLE_IDENTITY = ("First name", "Last name", "ID number", "Email address")
DEFAULT_ID_FROM = {"canvas": "SIS Login ID", "moodle": "Email address"}
ASSIGNMENT_COLUMN = re.compile(r"^(?P<name>.*\S)\s*\((?P<id>\d+)\)$")  # Canvas: "Name (id)"


@dataclass
class RosterStudent:
    """One enrolled student as the LMS knows them, and their nbgrader id."""

    student_id: str
    first_name: str = ""
    last_name: str = ""
    email: str = ""
    lms_user_id: str = ""  # Canvas "ID", Moodle "ID number"
    sis_user_id: str = ""
    sis_login_id: str = ""
    section: str = ""

    @property
    def sortable_name(self) -> str:
        """"Last, First", as Canvas writes the Student column."""
        return ", ".join(part for part in (self.last_name, self.first_name) if part)


@dataclass
class Roster:
    lms: str  # "canvas" or "moodle"
    students: list[RosterStudent]
    columns: list[str] = field(default_factory=list)  # the LMS's grade columns in the export, e.g. "HW6 (1234)"
    source: str = ""
    problems: list[str] = field(default_factory=list)  # rows that could not be mapped, in words

    def by_id(self) -> dict[str, RosterStudent]:
        return {s.student_id: s for s in self.students}


def _rows(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:  # Excel and Canvas may write a BOM
            reader = csv.DictReader(handle)
            rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
            return [h.strip() for h in (reader.fieldnames or [])], rows
    except FileNotFoundError:
        raise CourseError(f"{path}: no such file") from None
    except (UnicodeDecodeError, csv.Error) as err:
        raise CourseError(f"{path}: not a UTF-8 CSV file ({err})") from None


def detect_lms(header: list[str], path: Path) -> str:
    if "SIS Login ID" in header or {"Student", "ID"} <= set(header):
        return "canvas"
    if "Email address" in header or "ID number" in header:
        return "moodle"
    raise CourseError(f"{path}: not an LMS export I know: expected Canvas's gradebook columns "
                      f"({', '.join(CANVAS_IDENTITY)}) or Moodle's ({', '.join(MOODLE_IDENTITY)}); "
                      f"found {', '.join(header[:8]) or 'no header'}")


def nbgrader_id(value: str) -> str:
    """The nbgrader id a column value gives: an e-mail address gives its local part."""
    return value.split("@", 1)[0].strip() if "@" in value else value.strip()


def read_lms_csv(path: Path, id_from: str | None = None) -> Roster:
    """Parse a Canvas or Moodle export into a Roster; rows that cannot be mapped are kept as problems."""
    path = Path(path)
    header, rows = _rows(path)
    lms = detect_lms(header, path)
    id_from = id_from or DEFAULT_ID_FROM[lms]
    if id_from not in header:
        raise CourseError(f"{path}: no column {id_from!r} to take nbgrader ids from (--id-from); "
                          f"columns: {', '.join(header)}")
    identity = CANVAS_IDENTITY if lms == "canvas" else MOODLE_IDENTITY
    roster = Roster(lms=lms, students=[], source=str(path),
                    columns=[h for h in header if h not in identity and h != id_from and h])
    seen: dict[str, int] = {}
    for line, row in enumerate(rows, start=2):
        if lms == "canvas" and (row.get("Student", "").startswith(CANVAS_SKIP_ROWS)
                                or row.get("Student") == CANVAS_TEST_STUDENT):
            continue
        student = (_canvas_student if lms == "canvas" else _moodle_student)(row, nbgrader_id(row.get(id_from, "")))
        where = f"{path.name} line {line} ({student.sortable_name or student.email or 'no name'})"
        if not student.student_id:
            roster.problems.append(f"{where}: empty {id_from!r}, not mapped to a student")
        elif not STUDENT_ID.match(student.student_id):
            roster.problems.append(f"{where}: {student.student_id!r} is not a usable student id")
        elif student.student_id in seen:
            roster.problems.append(f"{where}: student id {student.student_id!r} again (first on line "
                                   f"{seen[student.student_id]})")
        else:
            seen[student.student_id] = line
            roster.students.append(student)
    return roster


def _canvas_student(row: dict[str, str], student_id: str) -> RosterStudent:
    last, _, first = row.get("Student", "").partition(",")
    return RosterStudent(student_id=student_id, first_name=first.strip(), last_name=last.strip(),
                         lms_user_id=row.get("ID", ""), sis_user_id=row.get("SIS User ID", ""),
                         sis_login_id=row.get("SIS Login ID", ""), section=row.get("Section", ""),
                         email=row.get("SIS Login ID", "") if "@" in row.get("SIS Login ID", "") else "")


def _moodle_student(row: dict[str, str], student_id: str) -> RosterStudent:
    return RosterStudent(student_id=student_id, first_name=row.get("First name", ""),
                         last_name=row.get("Last name", ""), email=row.get("Email address", ""),
                         lms_user_id=row.get("ID number", ""))


# --- the course's copy ---------------------------------------------------------------------------

def save(course: Course, roster: Roster) -> Path:
    """Keep the roster in the owner-only state folder and fill nbgrader's student table."""
    from nbgrader.api import Gradebook

    course.prepare_folders()
    path = course.root / STATE_FILE
    path.write_text(json.dumps({"lms": roster.lms, "source": roster.source, "columns": roster.columns,
                                "students": [asdict(s) for s in roster.students]}, indent=1))
    path.chmod(0o600)
    with Gradebook(course.db_url, course.course_id) as gb:
        for s in roster.students:
            gb.update_or_create_student(s.student_id, first_name=s.first_name or None,
                                        last_name=s.last_name or None, email=s.email or None,
                                        lms_user_id=s.lms_user_id or None)
    return path


def load(course: Course) -> Roster:
    """The roster last imported (CourseError if there is none)."""
    path = course.root / STATE_FILE
    if not path.is_file():
        raise CourseError(f"no roster yet ({path}); run `coursekit roster import <export from the LMS>.csv`")
    data = json.loads(path.read_text())
    return Roster(lms=data["lms"], students=[RosterStudent(**s) for s in data["students"]],
                  columns=data.get("columns", []), source=data.get("source", ""))


def graded_students(course: Course) -> dict[str, set[str]]:
    """assignment -> ids of students with a submission in nbgrader's gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url, course.course_id) as gb:
        return {a.name: {s.student.id for s in a.submissions} for a in gb.assignments}


def compare(course: Course, roster: Roster) -> list[str]:
    """In words: graded students the roster lacks, and roster students without a graded submission."""
    enrolled = set(roster.by_id())
    lines = []
    for assignment, graded in sorted(graded_students(course).items()):
        lines += [f"{assignment}: {s} has a graded submission but is not in the roster (not exported)"
                  for s in sorted(graded - enrolled)]
        lines += [f"{assignment}: {s} is in the roster but has no graded submission (left blank)"
                  for s in sorted(enrolled - graded)]
    return lines


def write_report(path: Path, title: str, lines: list[str]) -> Path:
    """The listing a person checks before uploading (also printed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"{title}\n" + "".join(f"- {line}\n" for line in lines) + ("(nothing to report)\n" * (not lines)))
    return path
