"""coursekit feedback: feedback HTML (without hidden tests) for autograded students."""
from __future__ import annotations

import argparse

from coursekit.commands._common import add_assignment_argument, guarded, open_course
from coursekit.feedback import generate_feedback


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_assignment_argument(parser)
    parser.add_argument("--student", action="append", help="only this student (repeatable)")


@guarded
def run(args: argparse.Namespace) -> int:
    course, assignment = open_course(args)
    students = args.student or course.students_with_submissions(assignment)
    problems = {s: e for s, e in generate_feedback(course, assignment, students).items() if e}
    for student, error in problems.items():
        print(f"  {student}: no feedback ({error})")
    print(f"feedback for {len(students) - len(problems)} students in {course.folder('feedback')}")
    return 0
