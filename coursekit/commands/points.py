"""coursekit points: the assignment's points per notebook, read from the cell metadata."""
from __future__ import annotations

import argparse

import nbformat

from coursekit.commands._common import add_assignment_argument, guarded, open_course
from coursekit.course import Course
from coursekit.notebook import grade_id, is_manually_graded, is_test_cell, points
from coursekit.optional import SETTING, optional_labels, optional_mode, optional_points


def points_table(course: Course, assignment: str) -> str:
    """A Markdown table: autograded and manually graded points per notebook (the README shows it).

    Optional parts (coursekit/optional.py) count as the course's ``optional_parts`` setting says: their
    points appear in the last column, and in the totals only when the setting is "required".
    """
    mode = optional_mode(course.root)
    rows, totals, optional_total = [], [0.0, 0.0], 0.0
    for name in course.source_notebooks(assignment):
        nb = nbformat.read(str(course.folder("source", assignment, f"{name}.ipynb")), as_version=4)
        optional = optional_points(nb)
        auto = manual = 0.0
        for cell in nb.cells:
            if not (is_test_cell(cell) or is_manually_graded(cell)) or (mode != "required" and grade_id(cell) in optional):
                continue
            if is_test_cell(cell):
                auto += points(cell)
            else:
                manual += points(cell)
        extra = sum(optional.values())
        optional_total += extra
        parts = f"{extra:g} ({', '.join(optional_labels(nb))})" if optional else "–"
        rows.append(f"| `{name}.ipynb` | {auto:g} | {manual:g} | {auto + manual:g} | {parts} |")
        totals = [totals[0] + auto, totals[1] + manual]
    counted = "counted in the totals" if mode == "required" else "not counted"
    return "\n".join([f"| notebook | autograded | manually graded | total | optional parts ({counted}) |",
                      "|---|---:|---:|---:|---:|", *rows,
                      f"| **total** | **{totals[0]:g}** | **{totals[1]:g}** | **{sum(totals):g}** | "
                      f"**{optional_total:g}** |",
                      "", f"Optional parts: `{SETTING} = \"{mode}\"` (`[tool.coursekit]` in pyproject.toml)."])


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_assignment_argument(parser)


@guarded
def run(args: argparse.Namespace) -> int:
    course, assignment = open_course(args)
    print(points_table(course, assignment))
    return 0
