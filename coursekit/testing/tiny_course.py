"""A two-notebook fixture assignment ("tiny") for fast tests of the instructor tooling.

Its notebooks use the real helper package (copied from the template course) and the real
nbgrader_config.py, so the pipeline under test is the course's own; only the notebooks are small.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from coursekit.course import Course
from coursekit.testing.courses import helper_folder, home_course

ASSIGNMENT = "tiny"


def nbgrader_cell(kind: str, source: str, grade_id: str, *, grade: bool, solution: bool, points: int = 0):
    """A code or markdown cell with nbgrader's metadata (schema 3; locked unless it is a solution)."""
    meta = {"grade": grade, "solution": solution, "locked": not solution, "grade_id": grade_id,
            "schema_version": 3}
    if grade:
        meta["points"] = points
    cell = new_code_cell(source) if kind == "code" else new_markdown_cell(source)
    cell.metadata["nbgrader"] = meta
    return cell


def adder_notebook() -> nbformat.NotebookNode:
    nb = new_notebook(cells=[
        nbgrader_cell("markdown", "# Adder\nWrite `add`.", "intro", grade=False, solution=False),
        nbgrader_cell("code", "def add(a, b):\n    ### BEGIN SOLUTION\n    return a + b\n    ### END SOLUTION",
              "add", grade=False, solution=True),
        nbgrader_cell("code", "from hw6utils.checks import check\ncheck('one_plus_two', add(1, 2), 3)\n"
                      "### BEGIN HIDDEN TESTS\ncheck('hidden-test-marker', add(-5, 2))\n### END HIDDEN TESTS",
              "test_add", grade=True, solution=False, points=2),
        nbgrader_cell("markdown", "Why does addition commute?\n\n### BEGIN SOLUTION\nBecause REFERENCE-ANSWER.\n"
                          "### END SOLUTION", "why", grade=True, solution=True, points=1),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    return nb


def squares_notebook() -> nbformat.NotebookNode:
    nb = new_notebook(cells=[
        nbgrader_cell("code", "def square(x):\n    ### BEGIN SOLUTION\n    return x * x\n    ### END SOLUTION",
              "square", grade=False, solution=True),
        nbgrader_cell("code", "from hw6utils.checks import check\ncheck('three', square(3), 9)\n"
                      "### BEGIN HIDDEN TESTS\ncheck('minus_four', square(-4))\n### END HIDDEN TESTS",
              "test_square", grade=True, solution=False, points=1),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3 (ipykernel)", "language": "python"}
    return nb


def make_course(root: Path, template: Course | None = None) -> Path:
    """Write a course folder under ``root``: ``template``'s nbgrader_config.py (default: the home
    course's) and source/tiny with the two notebooks and a copy of its helper package."""
    template = template or home_course()
    root.mkdir(parents=True, exist_ok=True)
    shutil.copy(template.root / "nbgrader_config.py", root / "nbgrader_config.py")
    with open(root / "nbgrader_config.py", "a") as config:  # its notebooks import no torch
        config.write('\nc.SandboxedExecute.preload_modules = ["numpy"]\n')
    source = root / "source" / ASSIGNMENT
    source.mkdir(parents=True)
    nbformat.write(adder_notebook(), str(source / "adder.ipynb"))
    nbformat.write(squares_notebook(), str(source / "squares.ipynb"))
    (source / "helper.py").write_text("TRUSTED = True\n")
    helpers = helper_folder(template)
    shutil.copytree(helpers, source / helpers.name, ignore=shutil.ignore_patterns("__pycache__"))
    return root
