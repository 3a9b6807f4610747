"""Feedback that never shows hidden tests.

nbgrader's stock feedback HTML prints every test cell as it was run, hidden tests included, with
their tracebacks and expected values. ``HideHiddenTests`` (enabled in nbgrader_config.py) removes
the hidden region from each test cell and replaces that cell's outputs with a one-line verdict.
"""
from __future__ import annotations

from nbformat.v4 import new_output
from nbgrader.preprocessors import ClearHiddenTests

from coursekit.course import Course

HIDDEN_NOTE = ("This cell also ran hidden tests. Their code and output are not shown; "
               "see the score on the right. {verdict}\n")


class HideHiddenTests(ClearHiddenTests):
    """Strip hidden test code and its outputs (tracebacks included) from feedback notebooks."""

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type != "code" or not self._remove_hidden_test_region(cell):
            return cell, resources
        failed = any(out.get("output_type") == "error" for out in cell.get("outputs", []))
        verdict = "Some test in this cell failed." if failed else "All tests in this cell passed."
        cell.outputs = [new_output("stream", name="stdout", text=HIDDEN_NOTE.format(verdict=verdict))]
        return cell, resources


def generate_feedback(course: Course, assignment: str, students: list[str]) -> dict[str, str | None]:
    """Write feedback HTML for each student; return student -> error line (None when it worked)."""
    from tqdm import tqdm

    errors: dict[str, str | None] = {}
    for student in tqdm(students, desc=f"feedback {assignment}", unit="student"):
        if not course.folder("autograded", student, assignment).is_dir():
            errors[student] = "nothing autograded for this student"
            continue
        outcome = course.api.generate_feedback(assignment, student)
        errors[student] = None if outcome["success"] else (outcome.get("error") or "failed").strip().splitlines()[-1]
    return errors
