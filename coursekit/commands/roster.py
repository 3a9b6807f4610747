"""coursekit roster: import the LMS's class list and fill nbgrader's student table; check it against the gradebook."""
from __future__ import annotations

import argparse
from pathlib import Path

from coursekit.commands._common import guarded, open_course


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["import", "check"],
                        help="import: read the LMS's CSV export; check: list students missing on either side")
    parser.add_argument("file", nargs="?", type=Path,
                        help="Canvas gradebook export or Moodle grade/participants export (CSV), for import")
    parser.add_argument("--id-from", default=None, metavar="COLUMN",
                        help='column holding the nbgrader student id (default: Canvas "SIS Login ID", Moodle '
                             '"Email address"; an e-mail address gives its local part)')


@guarded
def run(args: argparse.Namespace) -> int:
    from coursekit import roster

    course, _ = open_course(args)
    if args.action == "import":
        if args.file is None:
            print("coursekit roster import: give the CSV file the LMS exported")
            return 2
        imported = roster.read_lms_csv(args.file, args.id_from)
        saved = roster.save(course, imported)
        print(f"{len(imported.students)} students from {imported.lms} ({args.file}) -> nbgrader's student table, {saved}")
        lines = imported.problems + roster.compare(course, imported)
    else:
        imported = roster.load(course)
        lines = roster.compare(course, imported)
    report = roster.write_report(course.root / "reports" / "roster-report.txt", f"roster {imported.source}", lines)
    for line in lines:
        print(f"  {line}")
    print(f"report: {report}")
    return 0
