"""coursekit late: who was late, by how much, and why; --recompute re-applies the penalties."""
from __future__ import annotations

import argparse

from coursekit.commands._common import add_assignment_argument, guarded, open_course


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_assignment_argument(parser)
    parser.add_argument("--recompute", action="store_true",
                        help="re-apply due date, extensions.toml and the penalty rule to every graded submission "
                             "from the gradebook (no kernel runs; manual grades count)")
    parser.add_argument("--help-policy", action="store_true", help="print the late-policy settings and their help")


@guarded
def run(args: argparse.Namespace) -> int:
    from coursekit.late import LatePolicy, explain, policy, read_extensions, extensions_path, recompute

    course, assignment = open_course(args)
    if args.help_policy:
        print(LatePolicy.class_get_help())
        return 0
    late_policy = policy(course)
    read_extensions(extensions_path(course.root, late_policy))  # a broken file fails before anything changes
    if args.recompute:
        changed = recompute(course, assignment)
        print("\n".join(changed) if changed else "late penalties: nothing changed")
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url, course.course_id) as gb:
        students = sorted(s.student.id for s in gb.assignment_submissions(assignment))
    print(late_policy.describe())
    for student in students:
        print(f"{student}: {explain(course, assignment, student)}")
    return 0
