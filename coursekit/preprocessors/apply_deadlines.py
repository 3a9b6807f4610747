"""ApplyDeadlines: the course's due date and the student's extension into nbgrader's gradebook.

Runs just before nbgrader's ``AssignLatePenalties`` in the autograde pipeline, so that every door
(``coursekit autograde``, ``nbgrader autograde``, the formgrader, Gradescope) and ``coursekit late
--recompute`` compute lateness from the same deadline: ``c.LatePolicy.due_dates`` and
``extensions.toml`` (see coursekit/late.py). The notebook itself is not changed.
"""
from __future__ import annotations

from typing import Any

from nbformat import NotebookNode
from nbgrader.preprocessors import NbGraderPreprocessor


class ApplyDeadlines(NbGraderPreprocessor):
    """Write ``Assignment.duedate`` and ``Submission.extension`` from the course settings."""

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        from nbgrader.api import Gradebook
        from nbgrader.coursedir import CourseDirectory

        from coursekit.late import LatePolicy, sync_deadline

        info = resources["nbgrader"]
        root = CourseDirectory(config=self.config).root
        with Gradebook(info["db_url"]) as gb:
            sync_deadline(gb, root, LatePolicy(config=self.config), info["assignment"], info["student"])
            gb.db.commit()
        return nb, resources
