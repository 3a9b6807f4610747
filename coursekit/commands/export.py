"""coursekit export: grades to CSV (nbgrader's export, plus one row per notebook)."""
from __future__ import annotations

import argparse
from pathlib import Path

from coursekit.commands._common import add_assignment_argument, guarded, open_course
from coursekit.report import export_csv, export_notebook_csv


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_assignment_argument(parser)
    parser.add_argument("--to", default="reports/grades.csv", help="CSV path (relative to the course folder)")


@guarded
def run(args: argparse.Namespace) -> int:
    course, assignment = open_course(args)
    path = course.root / args.to
    export_csv(course, path)
    per_notebook = export_notebook_csv(course, assignment, course.students_with_submissions(assignment),
                                       path.with_name(f"{Path(args.to).stem}-by-notebook.csv"))
    print(f"grades: {path}\nby notebook: {per_notebook}")
    return 0
