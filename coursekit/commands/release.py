"""coursekit release: nbgrader generate_assignment from source/ into release/."""
from __future__ import annotations

import argparse

from coursekit.commands._common import add_assignment_argument, guarded, open_course


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_assignment_argument(parser)


@guarded
def run(args: argparse.Namespace) -> int:
    course, assignment = open_course(args)
    course.generate_release(assignment)
    names = course.source_notebooks(assignment)
    print(f"released {assignment}: {len(names)} notebooks -> {course.folder('release', assignment)}")
    for name in names:
        print(f"  {name}.ipynb")
    return 0
