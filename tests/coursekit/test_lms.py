"""Grades into the LMS (coursekit/lms.py, coursekit/roster.py) on the graded tiny course with deadlines.

The roster is the LMS's own export with one graded student missing (`grace`) and one extra student
(`newcomer`); the files are checked against the import rules Canvas and Moodle document, and read back
by a parser of each format (and by `coursekit roster import`, which reads the same Canvas format).
"""
from __future__ import annotations

import csv
import io

import pytest

from coursekit.cli import main as coursekit
from coursekit.course import CourseError
from coursekit.lms import read_canvas, read_moodle
from coursekit.roster import read_lms_csv
from coursekit.testing.tiny_course import ASSIGNMENT
from tests.coursekit.late_course import MAX_POINTS

pytestmark = pytest.mark.xdist_group("late")

# Canvas's gradebook export: a BOM, the "Points Possible" row, the test student, read-only columns
CANVAS_EXPORT = ("\ufeffStudent,ID,SIS User ID,SIS Login ID,Section,tiny (4321),Quiz 1 (999),Current Score,"
                 "Final Score\n"
                 "    Points Possible,,,,,4.00,10.00,(read only),(read only)\n"
                 '"Student, Test",99,,,Sec A,,,,\n'
                 '"Early, Erin",101,S101,early,Sec A,,8,80,80\n'
                 '"Late, Lee",103,S103,late@uni.example,Sec B,,,,\n'
                 '"Extended, Eva",104,S104,extended,Sec A,,,,\n'
                 '"Newcomer, Nia",105,S105,newcomer,Sec B,,,,\n')
MOODLE_EXPORT = ("First name,Last name,ID number,Institution,Department,Email address,Assignment: tiny (Real),"
                 "Course total (Real),Last downloaded from this course\n"
                 "Erin,Early,S101,Uni,CS,early@uni.example,-,-,1767000000\n"
                 "Lee,Late,S103,Uni,CS,late@uni.example,-,-,1767000000\n"
                 "Eva,Extended,S104,Uni,CS,extended@uni.example,-,-,1767000000\n"
                 "Nia,Newcomer,S105,Uni,CS,newcomer@uni.example,-,-,1767000000\n")
MISSING = ["tiny: grace has a graded submission but is not in the roster (not exported)",
           "tiny: newcomer is in the roster but has no graded submission (left blank)"]


def cli(course, *args) -> int:
    return coursekit(["--course-dir", str(course.root), *args])


@pytest.fixture
def canvas_roster(late_course, tmp_path, capsys):
    export = tmp_path / "canvas-export.csv"
    export.write_text(CANVAS_EXPORT, encoding="utf-8")
    assert cli(late_course, "roster", "import", str(export)) == 0
    return capsys.readouterr().out


@pytest.mark.slow
def test_roster_import_fills_nbgraders_student_table_and_lists_who_is_missing(late_course, canvas_roster):
    from nbgrader.api import Gradebook

    assert "4 students from canvas" in canvas_roster  # the test student and the points row are not students
    for line in MISSING:
        assert line in canvas_roster
        assert line in (late_course.root / "reports" / "roster-report.txt").read_text()
    with Gradebook(late_course.db_url, late_course.course_id) as gb:
        lee = gb.find_student("late")  # an e-mail address in SIS Login ID gives its local part
        assert (lee.first_name, lee.last_name, lee.email, lee.lms_user_id) == ("Lee", "Late", "late@uni.example", "103")
        assert gb.find_student("newcomer").lms_user_id == "105"
    assert oct((late_course.root / ".coursekit" / "roster.json").stat().st_mode & 0o777) == "0o600"


@pytest.mark.slow
def test_roster_check_lists_the_same_students_later(late_course, canvas_roster, capsys):
    assert cli(late_course, "roster", "check") == 0
    out = capsys.readouterr().out
    assert all(line in out for line in MISSING)


def canvas_rules(text: str) -> list[list[str]]:
    """The documented rules of Canvas's gradebook import, checked on the raw file."""
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert rows[1][0] == "Points Possible" and rows[1][1:5] == ["", "", "", ""]
    assert all(len(row) == len(rows[0]) for row in rows)
    for row in rows[2:]:
        assert any(row[1:4]), f"{row}: Canvas cannot tell who this is"
        for cell, possible in zip(row[5:], rows[1][5:]):
            assert cell == "" or 0 <= float(cell) <= float(possible)
    return rows


@pytest.mark.slow
def test_canvas_export_follows_canvas_rules_and_reads_back(late_course, canvas_roster, capsys):
    from nbgrader.api import Gradebook

    with Gradebook(late_course.db_url, late_course.course_id) as gb:  # a grader gives `late` the written point
        gb.find_grade("why", "adder", ASSIGNMENT, "late").manual_score = 1.0
        gb.db.commit()
    try:
        assert cli(late_course, "export", ASSIGNMENT, "--to", "canvas") == 0
    finally:
        with Gradebook(late_course.db_url, late_course.course_id) as gb:
            gb.find_grade("why", "adder", ASSIGNMENT, "late").manual_score = None
            gb.db.commit()
    out = capsys.readouterr().out
    path = late_course.root / "reports" / "canvas-grades.csv"
    text = path.read_text(encoding="utf-8")
    rows = canvas_rules(text)
    assert rows[0][5:] == ["tiny (4321)"]  # the existing Canvas assignment, by its id
    assert rows[1][5] == f"{MAX_POINTS:g}"
    assert '"Late, Lee",103,S103,late@uni.example,Sec B,3.2' in text  # 4 points (manual one too) - 20 %
    points, students = read_canvas(path)
    assert points == {"tiny (4321)": MAX_POINTS}
    assert students == {"101": {"tiny (4321)": "3"}, "103": {"tiny (4321)": "3.2"},
                        "104": {"tiny (4321)": "3"}, "105": {"tiny (4321)": ""}}
    again = read_lms_csv(path)  # the same format Canvas exports: the roster import reads it back
    assert [(s.student_id, s.first_name, s.last_name, s.lms_user_id) for s in again.students] == [
        ("early", "Erin", "Early", "101"), ("late", "Lee", "Late", "103"), ("extended", "Eva", "Extended", "104"),
        ("newcomer", "Nia", "Newcomer", "105")]
    report = (late_course.root / "reports" / "canvas-grades-report.txt").read_text()
    for line in MISSING:
        assert line in out and line in report


@pytest.mark.slow
def test_moodle_export_by_email_rescaled_with_the_penalty_as_feedback(late_course, tmp_path, capsys):
    export = tmp_path / "moodle-export.csv"
    export.write_text(MOODLE_EXPORT)
    assert cli(late_course, "roster", "import", str(export)) == 0
    assert cli(late_course, "export", ASSIGNMENT, "--to", "moodle", "--out-of", "100") == 0
    out = capsys.readouterr().out
    path = late_course.root / "reports" / "moodle-grades.csv"
    header = next(csv.reader(path.open()))
    assert header == ["First name", "Last name", "ID number", "Email address",
                      "Assignment: tiny (Real)", "Assignment: tiny (Real) feedback"]
    by_email = read_moodle(path, "Email address")
    assert {k: v["Assignment: tiny (Real)"] for k, v in by_email.items()} == {
        "early@uni.example": "75", "late@uni.example": "60", "extended@uni.example": "75",
        "newcomer@uni.example": ""}
    assert by_email["late@uni.example"]["Assignment: tiny (Real) feedback"].startswith("late by 1 d 1 h")
    assert "medical certificate" in by_email["extended@uni.example"]["Assignment: tiny (Real) feedback"]
    assert by_email["early@uni.example"]["Assignment: tiny (Real) feedback"] == ""
    assert set(read_moodle(path, "ID number")) == {"S101", "S103", "S104", "S105"}  # or keyed by ID number
    assert "tiny: points scaled from 4 to 100" in out
    for line in MISSING:
        assert line in out


def test_an_unknown_export_is_refused_with_its_name(tmp_path):
    path = tmp_path / "class.csv"
    path.write_text("name,mark\nA,1\n")
    with pytest.raises(CourseError, match="class.csv: not an LMS export I know"):
        read_lms_csv(path)


def test_unmappable_rows_are_listed_not_dropped(tmp_path):
    path = tmp_path / "canvas.csv"
    path.write_text("Student,ID,SIS User ID,SIS Login ID,Section\n\"A, B\",1,,,S\n\"C, D\",2,,c d,S\n"
                    "\"E, F\",3,,ef,S\n\"G, H\",4,,ef,S\n")
    roster = read_lms_csv(path)
    assert [s.student_id for s in roster.students] == ["ef"]
    assert [p.split(": ", 1)[1] for p in roster.problems] == [
        "empty 'SIS Login ID', not mapped to a student", "'c d' is not a usable student id",
        "student id 'ef' again (first on line 4)"]
