"""ClearEmptyMetadata: drop the empty ``nbgrader`` metadata that DeduplicateIds leaves on repeated cells.

nbgrader's ``DeduplicateIds`` empties the metadata of every repeat of a grade id; ``OverwriteCells`` then
fails on those cells (it expects a ``grade_id`` wherever ``nbgrader`` metadata exists), so one
duplicated cell would stop the whole notebook. Runs between the two.
"""
from __future__ import annotations

from typing import Any

from nbformat import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor


class ClearEmptyMetadata(NbGraderPreprocessor):
    """Remove ``nbgrader`` metadata without a grade id: such a cell is an ordinary cell."""

    def preprocess_cell(self, cell: NotebookNode, resources: dict[str, Any], index: int
                        ) -> tuple[NotebookNode, dict[str, Any]]:
        meta = cell.get("metadata", {}).get("nbgrader")
        if meta is not None and not (isinstance(meta, dict) and meta.get("grade_id")):
            del cell.metadata["nbgrader"]
        return cell, resources
