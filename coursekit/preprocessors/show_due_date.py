"""ShowDueDate: the due date and the late rule at the top of each released notebook.

A release step (``c.GenerateAssignment.preprocessors``): when ``c.LatePolicy.due_dates`` names the
assignment, an ordinary Markdown cell (no nbgrader metadata, so it grades like any text) saying when
it is due and what lateness costs is put first. Assignments without a configured due date are
released unchanged. Extensions are personal and never appear in the release.
"""
from __future__ import annotations

from typing import Any

from nbformat import NotebookNode
from nbformat.v4 import new_markdown_cell
from nbgrader.preprocessors import NbGraderPreprocessor

MARK = "coursekit_due_date"  # cell metadata key, so a repeated release does not stack headers


class ShowDueDate(NbGraderPreprocessor):
    """Insert "Due: <date> (UTC). <late rule>" as the first cell."""

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        from coursekit.late import LatePolicy

        late_policy = LatePolicy(config=self.config)
        due = late_policy.due_date(resources["nbgrader"]["assignment"])
        nb.cells = [c for c in nb.cells if not c.get("metadata", {}).get(MARK)]
        if due is not None:
            cell = new_markdown_cell(f"**Due: {due:%A %d %B %Y, %H:%M} UTC.** {late_policy.describe()}")
            cell.metadata[MARK] = True
            nb.cells.insert(0, cell)
        return nb, resources
