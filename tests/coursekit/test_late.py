"""Deadlines, extensions and late penalties (coursekit/late.py) on the tiny fixture course.

One policy behind every door: `coursekit autograde`, stock `nbgrader autograde` and the formgrader's
`NbGraderAPI.autograde` store the same penalties; an extension in extensions.toml turns a late
submission on time; `coursekit late --recompute` re-applies a changed extension or a manual grade from
the gradebook without running a kernel.
"""
from __future__ import annotations

import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import nbformat
import pytest

from coursekit.cli import main as coursekit
from coursekit.course import CourseError
from coursekit.grading import autograde
from coursekit.late import LatePolicy, explain, read_extensions, recompute
from coursekit.testing.tiny_course import ASSIGNMENT, make_course
from tests.coursekit.late_course import EXTENSIONS, PENALTIES as EXPECTED, SUBMITTED, fresh_course, penalties

# --- the rule and the file (no grading) ----------------------------------------------------------

def test_penalty_rule_grace_days_and_cap():
    rule = LatePolicy(percent_per_day=10, max_percent=50, grace_minutes=15)
    assert rule.percent(0) == 0 and rule.percent(15 * 60) == 0  # inside the grace period
    assert rule.percent(16 * 60) == 10  # the first started day
    assert rule.percent(86400 + 3600) == 20
    assert rule.percent(30 * 86400) == 50  # capped
    assert rule.late_submission_penalty("s", 4.0, 86400 + 3600) == pytest.approx(0.8)


def test_due_date_needs_an_offset():
    with pytest.raises(CourseError, match="no UTC offset"):
        LatePolicy(due_dates={"hw6": "2026-12-10 23:59"}).due_date("hw6")
    assert LatePolicy(due_dates={"hw6": "2026-12-10T23:59:00+01:00"}).due_date("hw6").hour == 22


@pytest.mark.parametrize("line, problem", [
    ('alice = { days = 2 }', "needs a reason"),
    ('alice = { reason = "ill" }', "exactly one of days, hours or until"),
    ('alice = { days = 2, hours = 3, reason = "ill" }', "exactly one of"),
    ('alice = { weeks = 1, reason = "ill" }', "unknown key"),
    ('alice = { days = -1, reason = "ill" }', "≥ 0"),
    ('alice = { until = "2026-12-14 12:00", reason = "ill" }', "no UTC offset"),
    ('alice = { days = 2, reason = "ill" ', "not valid TOML"),
])
def test_a_bad_extension_line_is_named(tmp_path, line, problem):
    path = tmp_path / "extensions.toml"
    path.write_text(f"[hw6]\n{line}\n")
    with pytest.raises(CourseError, match=problem) as err:
        read_extensions(path)
    assert str(path) in str(err.value)


def test_extensions_by_days_hours_or_new_date(tmp_path):
    path = tmp_path / "extensions.toml"
    path.write_text('[hw6]\na = { days = 2, reason = "x" }\nb = { hours = 36, reason = "y" }\n'
                    'c = { until = 2026-12-14T12:00:00+01:00, reason = "z" }\n')
    got = read_extensions(path)
    assert got[("hw6", "a")].extra == timedelta(days=2) and got[("hw6", "b")].extra == timedelta(hours=36)
    assert got[("hw6", "c")].until.hour == 11 and got[("hw6", "c")].reason == "z"
    assert read_extensions(tmp_path / "missing.toml") == {}


# --- through the pipeline ------------------------------------------------------------------------

@pytest.fixture
def graded(late_course):
    return late_course


@pytest.mark.slow
@pytest.mark.xdist_group("late")
def test_coursekit_autograde_applies_the_policy_and_the_extension(graded):
    assert penalties(graded) == EXPECTED
    assert explain(graded, ASSIGNMENT, "early").startswith("on time (submitted 2026-01-10 11:00 UTC, due 2026-01-10 12:00")
    assert explain(graded, ASSIGNMENT, "grace").startswith("on time, within the grace period")
    assert explain(graded, ASSIGNMENT, "late") == (
        "late by 1 d 1 h (submitted 2026-01-11 13:00 UTC, due 2026-01-10 12:00 UTC): "
        "-20 % of the points, 0.6 points taken off")
    assert "extension to 2026-01-12 12:00 UTC: medical certificate" in explain(graded, ASSIGNMENT, "extended")
    assert explain(graded, ASSIGNMENT, "extended").startswith("on time")


@pytest.mark.slow
@pytest.mark.xdist_group("late")
def test_release_header_shows_the_due_date(graded):
    for name in graded.source_notebooks(ASSIGNMENT):
        nb = nbformat.read(str(graded.folder("release", ASSIGNMENT, f"{name}.ipynb")), as_version=4)
        assert nb.cells[0].source.startswith("**Due: Saturday 10 January 2026, 12:00 UTC.** Late submissions "
                                             "lose 10 % of their points per started day")
    graded.generate_release(ASSIGNMENT)  # released again: still one header
    nb = nbformat.read(str(graded.folder("release", ASSIGNMENT, "adder.ipynb")), as_version=4)
    assert sum("**Due:" in c.source for c in nb.cells) == 1


@pytest.mark.slow
@pytest.mark.xdist_group("late")
@pytest.mark.parametrize("door", ["nbgrader autograde", "NbGraderAPI.autograde"])
def test_every_door_stores_the_same_penalties(graded, tmp_path, door):
    course = fresh_course(tmp_path / "course")
    if door == "nbgrader autograde":
        nbgrader = Path(sys.executable).with_name("nbgrader")
        run = subprocess.run([str(nbgrader), "autograde", ASSIGNMENT, "--force"], cwd=course.root,
                             capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stderr[-3000:]
    else:
        for student in SUBMITTED:
            outcome = course.api.autograde(ASSIGNMENT, student)
            assert outcome["success"], outcome.get("log", "")[-2000:]
    assert penalties(course) == penalties(graded) == EXPECTED


@pytest.mark.slow
@pytest.mark.xdist_group("late")
def test_the_gradescope_export_door_gives_the_same_penalties(graded, tmp_path):
    """Gradescope's "Export Submissions" zip: `coursekit collect` stamps each student with the export's
    submission time (timestamp.txt), and grading it stores the same penalties as every other door."""
    import shutil
    import zipfile

    from coursekit.gradescope.export import collect_export

    course = fresh_course(tmp_path / "course")
    archive, metadata = tmp_path / "export.zip", []
    with zipfile.ZipFile(archive, "w") as zf:
        for n, (student, stamp) in enumerate(SUBMITTED.items()):
            folder = course.folder("submitted", student, ASSIGNMENT)
            for path in folder.glob("*.ipynb"):
                zf.write(path, f"assignment_1_export/submission_{n}/{path.name}")
            created = stamp.replace(" UTC", " +00:00")
            metadata.append(f"submission_{n}:\n  :submitters:\n  - :name: {student}\n    :sid: {student}\n"
                            f"  :created_at: {created}\n")
        zf.writestr("assignment_1_export/submission_metadata.yml", "".join(metadata))
    shutil.rmtree(course.folder("submitted"))
    lines = collect_export(course, ASSIGNMENT, archive)
    assert all("submitted 20" in line for line in lines), lines
    autograde(course, ASSIGNMENT, jobs=2)
    assert penalties(course) == EXPECTED


@pytest.mark.slow
@pytest.mark.xdist_group("late")
def test_recompute_follows_extensions_and_manual_grades_without_kernels(graded, capsys):
    from nbgrader.api import Gradebook

    course = graded
    autograded = sorted(course.folder("autograded").rglob("*.ipynb"))
    stamps = {p: p.stat().st_mtime_ns for p in autograded}
    # the extension moves from `extended` to `late`
    (course.root / "extensions.toml").write_text(
        f'[{ASSIGNMENT}]\nlate = {{ hours = 26, reason = "train strike" }}\n')
    assert coursekit(["--course-dir", str(course.root), "late", ASSIGNMENT, "--recompute"]) == 0
    out = capsys.readouterr().out
    assert "extended: late penalty 0 -> 0.6 points" in out and "late: late penalty 0.6 -> 0 points" in out
    assert "late: on time (submitted 2026-01-11 13:00 UTC, due 2026-01-10 12:00 UTC; extension to " \
           "2026-01-11 14:00 UTC: train strike)" in out
    got = penalties(course)
    assert got["late"] == {"adder": 0.0, "squares": 0.0} and got["extended"] == {"adder": 0.4, "squares": 0.2}
    # a grader gives `extended` the written answer's point: 20 % of it goes too
    with Gradebook(course.db_url, course.course_id) as gb:
        gb.find_grade("why", "adder", ASSIGNMENT, "extended").manual_score = 1.0
        gb.db.commit()
    assert recompute(course, ASSIGNMENT) == ["extended: late penalty 0.6 -> 0.8 points"]
    assert penalties(course)["extended"]["adder"] == pytest.approx(0.6)
    assert {p: p.stat().st_mtime_ns for p in autograded} == stamps  # no notebook was graded again
    (course.root / "extensions.toml").write_text(EXTENSIONS)  # back to the module's state
    recompute(course, ASSIGNMENT)
    with Gradebook(course.db_url, course.course_id) as gb:
        gb.find_grade("why", "adder", ASSIGNMENT, "extended").manual_score = None
        gb.db.commit()
    recompute(course, ASSIGNMENT)
    assert penalties(course) == EXPECTED


def test_a_broken_extensions_file_stops_recompute_with_its_name(tmp_path, capsys):
    make_course(tmp_path / "course")
    (tmp_path / "course" / "extensions.toml").write_text('[tiny]\nbob = { days = 1 }\n')
    assert coursekit(["--course-dir", str(tmp_path / "course"), "late", ASSIGNMENT, "--recompute"]) == 2
    err = capsys.readouterr().err
    assert "extensions.toml: [tiny] bob: every extension needs a reason" in err and "Traceback" not in err


@pytest.mark.slow
@pytest.mark.xdist_group("late")
def test_grade_table_and_csv_show_on_time_late_and_why(graded, capsys, tmp_path):
    import csv

    from coursekit.report import export_notebook_csv

    assert coursekit(["--course-dir", str(graded.root), "report", ASSIGNMENT]) == 0
    out = capsys.readouterr().out
    header = out.splitlines()[0].split()
    assert header[-4:] == ["late", "penalty", "submitted", "status"]
    rows = {line.split()[0]: line.split() for line in out.splitlines()[2:] if not line.startswith(" ")}
    assert rows["late"][-3:] == ["-0.6", "late", "graded"] and rows["early"][-4:] == ["0", "on", "time", "graded"]
    assert "  late: late by 1 d 1 h (submitted 2026-01-11 13:00 UTC" in out
    assert "  extended: on time (" in out and "medical certificate" in out
    assert "  early:" not in out  # nothing to say about an on-time submission without extension
    path = export_notebook_csv(graded, ASSIGNMENT, sorted(SUBMITTED), tmp_path / "by-notebook.csv")
    by_notebook = {(r["student_id"], r["notebook"]): r for r in csv.DictReader(path.open())}
    assert by_notebook[("late", "adder")]["late_penalty"] == "0.4"
    assert by_notebook[("late", "squares")]["timeliness"] == "late"
    assert by_notebook[("grace", "adder")]["timeliness"] == "on time (grace)"
    assert "medical certificate" in by_notebook[("extended", "adder")]["late_reason"]
