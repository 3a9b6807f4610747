"""coursekit points: the assignment's points per notebook, read from the cell metadata."""
from __future__ import annotations

import argparse

import nbformat

from coursekit.commands._common import add_assignment_argument, guarded, open_course
from coursekit.course import Course


def points_table(course: Course, assignment: str) -> str:
    """A Markdown table: autograded and manually graded points per notebook (the README shows it)."""
    rows, totals = [], [0.0, 0.0]
    for name in course.source_notebooks(assignment):
        nb = nbformat.read(str(course.folder("source", assignment, f"{name}.ipynb")), as_version=4)
        auto = manual = 0.0
        for cell in nb.cells:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("grade"):
                if cell.cell_type == "code" and not meta.get("solution"):
                    auto += float(meta.get("points", 0))
                else:
                    manual += float(meta.get("points", 0))
        rows.append(f"| `{name}.ipynb` | {auto:g} | {manual:g} | {auto + manual:g} |")
        totals = [totals[0] + auto, totals[1] + manual]
    return "\n".join(["| notebook | autograded | manually graded | total |", "|---|---:|---:|---:|", *rows,
                      f"| **total** | **{totals[0]:g}** | **{totals[1]:g}** | **{sum(totals):g}** |"])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_assignment_argument(parser)


@guarded
def run(args: argparse.Namespace) -> int:
    course, assignment = open_course(args)
    print(points_table(course, assignment))
    return 0
