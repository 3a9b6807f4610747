"""coursekit samples: write the bundled sample submissions into submitted/."""
from __future__ import annotations

import argparse

from coursekit.commands._common import add_assignment_argument, guarded, open_course
from coursekit.samples import build_samples


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_assignment_argument(parser)


@guarded
def run(args: argparse.Namespace) -> int:
    course, assignment = open_course(args)
    for student, folder in build_samples(course, assignment).items():
        print(f"  {student:10s} -> {folder}")
    return 0
