"""coursekit feedback: feedback HTML (without hidden tests) for autograded students, a summary page for
each, and delivery: nbgrader's exchange (--release) or one archive per student for the LMS (--zip)."""
from __future__ import annotations

import argparse
from pathlib import Path

from coursekit.commands._common import add_assignment_argument, guarded, open_course
from coursekit.feedback import generate_feedback
from coursekit.feedback_delivery import release_through_exchange, write_summaries, zip_for_lms


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_assignment_argument(parser)
    parser.add_argument("--student", action="append", help="only this student (repeatable)")
    parser.add_argument("--release", action="store_true",
                        help="hand each student their pages through nbgrader's exchange (c.Exchange.root); "
                             "students run `nbgrader fetch_feedback`")
    parser.add_argument("--zip", nargs="?", type=Path, const=True, default=None, metavar="DIR",
                        help="write one archive per student for LMS upload, named as Canvas's re-upload "
                             "expects (default DIR: reports/feedback/<assignment>)")


def _report(errors: dict[str, str | None], what: str) -> list[str]:
    for student, error in errors.items():
        if error:
            print(f"  {student}: {what} ({error})")
    return [s for s, e in errors.items() if not e]


@guarded
def run(args: argparse.Namespace) -> int:
    course, assignment = open_course(args)
    students = args.student or course.students_with_submissions(assignment)
    done = _report(generate_feedback(course, assignment, students), "no feedback")
    done = _report(write_summaries(course, assignment, done), "no summary")
    print(f"feedback for {len(done)} students in {course.folder('feedback')} (summary.html for each)")
    if args.release:
        released = _report(release_through_exchange(course, assignment, done), "not released")
        print(f"released through nbgrader's exchange for {len(released)} students "
              f"(exchange: {course.config.Exchange.get('root', '/srv/nbgrader/exchange')})")
    if args.zip is not None:
        out = course.root / "reports" / "feedback" / assignment if args.zip is True else args.zip
        archives, problems = zip_for_lms(course, assignment, done, out)
        for student, problem in problems.items():
            print(f"  {student}: {problem}")
        print(f"{len(archives)} archives for LMS upload in {out}")
    return 0
