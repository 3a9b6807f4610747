"""ShowReferenceAnswers: put the instructor's reference answer under each written answer, for graders.

The formgrader shows the autograded notebook; after every manually graded answer cell this step adds a
read-only Markdown cell with the reference answer from ``source/`` (the part between the solution
markers). The cells carry ``metadata.coursekit.reference_answer`` and feedback removes them
(``coursekit.feedback.HideHiddenTests``), so students never see them.
"""
from __future__ import annotations

from typing import Any

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_markdown_cell
from nbgrader.preprocessors import NbGraderPreprocessor
from traitlets import Unicode

from coursekit.course import assignment_source
from coursekit.notebook import grade_id, is_manually_graded

MARKER = "reference_answer"


def solution_region(source: str, begin: str = "### BEGIN SOLUTION", end: str = "### END SOLUTION") -> str:
    """The text between the solution markers of a source cell (the whole cell if it has none)."""
    if begin not in source:
        return source.strip()
    return source.split(begin, 1)[1].split(end, 1)[0].strip()


def is_reference_answer(cell: NotebookNode) -> bool:
    return bool(cell.get("metadata", {}).get("coursekit", {}).get(MARKER))


class ShowReferenceAnswers(NbGraderPreprocessor):
    """Insert the reference answer after each manually graded answer (graders only)."""

    heading = Unicode("**Reference answer** (graders only; removed from feedback):",
                      help="First line of each inserted reference-answer cell.").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        source = assignment_source(self.config, resources["nbgrader"]["assignment"])
        path = source / f"{resources['nbgrader']['notebook']}.ipynb"
        if not path.is_file():
            return nb, resources
        answers = {grade_id(c): solution_region(c.source) for c in nbformat.read(str(path), as_version=4).cells
                   if is_manually_graded(c)}
        cells = []
        for cell in nb.cells:
            if is_reference_answer(cell):
                continue
            cells.append(cell)
            if is_manually_graded(cell) and answers.get(grade_id(cell)):
                body = answers[grade_id(cell)]
                if cell.cell_type == "code":
                    body = f"```python\n{body}\n```"
                note = new_markdown_cell(f"{self.heading}\n\n{body}")
                note.metadata["coursekit"] = {MARKER: grade_id(cell)}
                note.metadata["editable"] = note.metadata["deletable"] = False
                cells.append(note)
        nb.cells = cells
        return nb, resources
