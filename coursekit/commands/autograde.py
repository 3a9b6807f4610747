"""coursekit autograde: grade submissions in submitted/ into the gradebook."""
from __future__ import annotations

import argparse

from coursekit.commands._common import add_assignment_argument, guarded, open_course
from coursekit.grading import autograde
from coursekit.report import summary_table


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_assignment_argument(parser)
    parser.add_argument("--student", action="append", help="only this student (repeatable)")


@guarded
def run(args: argparse.Namespace) -> int:
    course, assignment = open_course(args)
    results = autograde(course, assignment, args.student)
    print(summary_table(results))
    print(f"logs: {course.root / 'reports' / 'autograde-logs'}")
    return 0
