"""The notebook protocol in one place: which cells nbgrader grades, and how they are named.

Built on nbgrader's own ``utils.is_grade`` / ``utils.is_solution``, made safe for hostile notebooks
whose ``nbgrader`` metadata is not a dict.
"""
from __future__ import annotations

from typing import Any

from nbformat import NotebookNode
from nbgrader.utils import is_grade, is_solution


def nbgrader_meta(cell: NotebookNode) -> dict[str, Any]:
    """The cell's nbgrader metadata ({} when absent or malformed)."""
    meta = cell.get("metadata", {}).get("nbgrader") if isinstance(cell.get("metadata"), dict) else None
    return meta if isinstance(meta, dict) else {}


def _well_formed(cell: NotebookNode) -> bool:
    return bool(nbgrader_meta(cell))


def is_test_cell(cell: NotebookNode) -> bool:
    """An autograder test cell: a graded code cell that is not an answer cell."""
    return (cell.get("cell_type") == "code" and _well_formed(cell) and bool(is_grade(cell))
            and not is_solution(cell) and bool(nbgrader_meta(cell).get("grade_id")))


def is_answer_cell(cell: NotebookNode) -> bool:
    """A cell the student writes in (code or Markdown)."""
    return _well_formed(cell) and bool(is_solution(cell))


def is_manually_graded(cell: NotebookNode) -> bool:
    """A graded cell that a person scores (written answers)."""
    return _well_formed(cell) and bool(is_grade(cell)) and not is_test_cell(cell)


def grade_id(cell: NotebookNode) -> str:
    return str(nbgrader_meta(cell).get("grade_id", ""))


def points(cell: NotebookNode) -> float:
    return float(nbgrader_meta(cell).get("points", 0) or 0)
