"""Argument helpers shared by the coursekit subcommands."""
from __future__ import annotations

import argparse
import sys

from coursekit.course import Course, CourseError


def add_assignment_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("assignment", nargs="?", default=None, help="assignment id (default: from pyproject.toml)")


def open_course(args: argparse.Namespace) -> tuple[Course, str]:
    course = Course.open(args.course_dir)
    return course, (getattr(args, "assignment", None) or course.default_assignment)


def fail(message: str) -> int:
    print(f"coursekit: error: {message}", file=sys.stderr)
    return 2


def guarded(run):
    """Turn CourseError into one clear error line and exit status 2 instead of a traceback."""
    def wrapper(args: argparse.Namespace) -> int:
        try:
            return run(args)
        except CourseError as err:
            return fail(str(err))
    wrapper.__doc__ = run.__doc__
    return wrapper
