"""Canvas and Moodle exports from the graded hw6 sample course (the session's `graded_hw6` fixture, shared
with test_pipeline.py), with a roster that lacks one graded student and has one who never submitted."""
from __future__ import annotations

import csv

import pytest

from coursekit.cli import main as coursekit
from coursekit.lms import read_canvas, read_moodle

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("hw6_pipeline"),
              pytest.mark.timeout(1800)]  # may build the graded course or wait for it

ROSTER = {"reference": ("Rey", "Reference", "201"), "untouched": ("Uma", "Untouched", "202"),
          "partial": ("Pat", "Partial", "203"), "nonlinearity": ("Nils", "Nonlinear", "204"),
          "newcomer": ("Nia", "Newcomer", "205")}  # `cheater` is graded but not enrolled


def nbgrader_totals(course) -> tuple[float, dict[str, float]]:
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url, course.course_id) as gb:
        assignment = gb.find_assignment("hw6")
        return float(assignment.max_score), {s.student.id: max(0.0, s.score - (s.late_submission_penalty or 0.0))
                                             for s in assignment.submissions}


def test_canvas_and_moodle_files_from_the_graded_sample_course(graded_hw6, tmp_path, capsys):
    course = graded_hw6[0]
    export = tmp_path / "canvas.csv"
    with export.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "HW6: Recurrent networks (777)"])
        writer.writerow(["    Points Possible", "", "", "", "", "100"])
        for sid, (first, last, lms_id) in ROSTER.items():
            writer.writerow([f"{last}, {first}", lms_id, f"S{lms_id}", sid, "L01", ""])
    cli = ["--course-dir", str(course.root)]
    assert coursekit([*cli, "roster", "import", str(export)]) == 0
    assert coursekit([*cli, "export", "hw6", "--to", "canvas"]) == 0
    assert coursekit([*cli, "export", "hw6", "--to", "moodle"]) == 0
    out = capsys.readouterr().out
    for line in ("hw6: cheater has a graded submission but is not in the roster (not exported)",
                 "hw6: newcomer is in the roster but has no graded submission (left blank)"):
        assert out.count(line) == 3  # roster import, then each export
    maximum, totals = nbgrader_totals(course)
    points, students = read_canvas(course.root / "reports" / "canvas-grades.csv")
    assert points == {"HW6: Recurrent networks (777)": maximum}  # the existing Canvas assignment, its id
    got = {key: row["HW6: Recurrent networks (777)"] for key, row in students.items()}
    expected = {ROSTER[s][2]: f"{round(totals[s], 4):g}" for s in ROSTER if s in totals}
    assert got == {**expected, "205": ""}
    assert 0 < float(got["203"]) < float(got["201"]) <= maximum  # partial below reference
    moodle = read_moodle(course.root / "reports" / "moodle-grades.csv", "ID number")
    assert {k: v["HW6: Recurrent networks (777)"] for k, v in moodle.items()} == got
