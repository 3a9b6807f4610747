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


# --- what nbgrader's steps may be handed -------------------------------------------------------------

SCHEMA_VERSION = 3  # nbgrader's cell metadata schema; any other makes nbgrader stop the whole run
MAX_POINTS = 1e6
NBGRADER_FIELDS: dict[str, tuple[type, ...]] = {  # field of a cell's ``nbgrader`` metadata -> its JSON types
    "grade": (bool,), "solution": (bool,), "locked": (bool,), "task": (bool,), "grade_id": (str,),
    "points": (int, float), "schema_version": (int,), "checksum": (str,), "cell_type": (str,),
}
KIT_FIELDS: dict[str, tuple[type, ...]] = {"optional": (bool,), "reference_answer": (str,)}  # ``coursekit``
NOTEBOOK_FIELDS = {"kernelspec": ("name", "display_name", "language"), "language_info": ("name", "version")}


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean", type(None): "null",
            int: "an integer", float: "a number"}.get(type(value), type(value).__name__)


def _field_problem(field: str, value: Any, types: tuple[type, ...]) -> str | None:
    if type(value) not in types:  # exact types: True is not a number here, 1 is not a boolean
        return f"{field} is {_kind(value)}"
    if field == "points" and not 0 <= value <= MAX_POINTS:  # also NaN and infinities; huge ints never overflow
        return f"points is {str(value)[:20]}, not between 0 and {MAX_POINTS:g}"
    if field == "schema_version" and value != SCHEMA_VERSION:
        return f"schema_version is {str(value)[:20]}, not {SCHEMA_VERSION}"
    return None


def metadata_problem(nb: Any) -> str | None:
    """Why this notebook's metadata cannot be handed to nbgrader's steps (None when it can).

    nbgrader reads its cell fields and the notebook's kernelspec and language_info trusting their types,
    and some of its errors (an unknown ``schema_version``) stop a whole run; the kit reads ``coursekit``
    cell metadata. A notebook whose fields hold other JSON types is refused here, before any of them runs,
    so it harms at most itself. Values of the right type are left to nbgrader's sanitising steps, which
    restore the released metadata of the cells they know.

    ``nb`` may be the file's raw JSON, not yet checked by nbformat (intake asks first, so the reason names
    the field: nbformat's own errors for a cell whose metadata is a list do not); parts that are not even
    shaped like a notebook (the file is a list, ``cells`` is not a list, a cell is not an object) are left
    to nbformat's schema."""
    if not isinstance(nb, dict):
        return None
    notebook_meta = nb.get("metadata", {})
    if not isinstance(notebook_meta, dict):
        return f"notebook metadata is {_kind(notebook_meta)}, not an object"
    for key, fields in NOTEBOOK_FIELDS.items():
        value = notebook_meta.get(key)
        if value is None and key not in notebook_meta:
            continue
        if not isinstance(value, dict):
            return f"notebook metadata {key} is {_kind(value)}, not an object"
        bad = next((f for f in fields if f in value and not isinstance(value[f], str)), None)
        if bad:
            return f"notebook metadata {key}.{bad} is {_kind(value[bad])}, not a string"
    cells = nb.get("cells", [])
    for number, cell in enumerate(cells if isinstance(cells, list) else [], start=1):
        if not isinstance(cell, dict) or "metadata" not in cell:
            continue
        meta = cell["metadata"]
        if not isinstance(meta, dict):
            return f"cell {number}: metadata is {_kind(meta)}, not an object"
        for key, fields in (("nbgrader", NBGRADER_FIELDS), ("coursekit", KIT_FIELDS)):
            if key not in meta:
                continue
            if not isinstance(meta[key], dict):
                return f"cell {number}: {key} metadata is {_kind(meta[key])}, not an object"
            if key == "nbgrader" and "schema_version" not in meta[key]:
                return f"cell {number}: nbgrader metadata without schema_version"
            for field, types in fields.items():
                if field in meta[key]:
                    problem = _field_problem(field, meta[key][field], types)
                    if problem:
                        return f"cell {number}: nbgrader {problem}" if key == "nbgrader" else \
                            f"cell {number}: coursekit {problem}"
    return None
