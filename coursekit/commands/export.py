"""coursekit export: grades to CSV (nbgrader's export, plus one row per notebook), or to an LMS's import file.

``--to canvas`` / ``--to moodle`` write the file Canvas's or Moodle's own grade import accepts
(coursekit/lms.py), for the students of the roster (`coursekit roster import`); everyone missing on
either side is printed and listed in a report file beside it.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from coursekit.commands._common import add_assignment_argument, guarded, open_course
from coursekit.report import export_csv, export_notebook_csv

LMS = ("canvas", "moodle")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_assignment_argument(parser)
    parser.add_argument("--to", default="reports/grades.csv",
                        help="canvas, moodle, or a CSV path for nbgrader's own export (relative to the course folder)")
    parser.add_argument("--out", default=None, help="where the LMS file goes (default: reports/<lms>-grades.csv)")
    parser.add_argument("--all", action="store_true", help="every assignment in the gradebook, one column each")
    parser.add_argument("--out-of", type=float, default=None, metavar="POINTS",
                        help="rescale to the LMS grade item's maximum (default: the assignment's points)")


@guarded
def run(args: argparse.Namespace) -> int:
    course, assignment = open_course(args)
    if args.to in LMS:
        return _to_lms(course, None if args.all else [assignment], args)
    path = course.root / args.to
    export_csv(course, path)
    per_notebook = export_notebook_csv(course, assignment, course.students_with_submissions(assignment),
                                       path.with_name(f"{Path(args.to).stem}-by-notebook.csv"))
    print(f"grades: {path}\nby notebook: {per_notebook}")
    return 0


def _to_lms(course, assignments: list[str] | None, args: argparse.Namespace) -> int:
    from coursekit import lms, roster

    students = roster.load(course)
    if students.lms != args.to:
        print(f"note: the roster came from {students.lms}; its ids are used for {args.to}")
    out = course.root / (args.out or f"reports/{args.to}-grades.csv")
    lines = lms.export(course, students, args.to, out, assignments, args.out_of)
    report = roster.write_report(out.with_name(f"{out.stem}-report.txt"), f"{args.to} export {out.name}", lines)
    for line in lines:
        print(f"  {line}")
    print(f"{args.to} grades: {out}\nreport: {report}")
    return 0
