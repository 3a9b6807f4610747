"""coursekit release: nbgrader generate_assignment from source/ into release/."""
from __future__ import annotations

import argparse

from coursekit.commands._common import add_assignment_argument, guarded, open_course
from coursekit.course import Course, CourseError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_assignment_argument(parser)


def generate_release(course: Course, assignment: str) -> None:
    """Regenerate release/<assignment> and record the assignment in the gradebook."""
    course.source_notebooks(assignment)  # fails clearly if source/<assignment> is missing
    outcome = course.api.generate_assignment(assignment, force=True, create=True)
    if not outcome["success"]:
        log = (outcome.get("log") or "") + "\n" + (outcome.get("error") or "")
        causes = [line.strip() for line in log.splitlines()
                  if line.strip() and not line.startswith(("[INFO]", "[WARNING]", " ")) or "Error:" in line]
        raise CourseError(f"nbgrader could not generate {assignment}: " + " | ".join(causes[-3:]))
    course.prepare_folders()


@guarded
def run(args: argparse.Namespace) -> int:
    course, assignment = open_course(args)
    generate_release(course, assignment)
    names = course.source_notebooks(assignment)
    print(f"released {assignment}: {len(names)} notebooks -> {course.folder('release', assignment)}")
    for name in names:
        print(f"  {name}.ipynb")
    return 0
