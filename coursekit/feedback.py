"""Feedback that never shows hidden tests, nor anything the grading kernel printed after hidden code ran.

nbgrader's stock feedback HTML prints every test cell as it was run, hidden tests included, with their
tracebacks, and every output the grading kernel produced. A student controls that kernel: a cell can
print the kernel's input history (``In``, ``_ih``, encoded so that no text filter sees it) or hook
``pre_run_cell`` to capture the hidden tests and print them in a later cell. So ``HideHiddenTests``
(enabled in nbgrader_config.py) never shows an output of the grading kernel:

* a code cell that is not a test cell shows the outputs of the same cell (same id, same source) in
  the notebook the student SUBMITTED (which never saw a hidden test), or none;
* a test cell loses its hidden region and shows only the grader's verdict, written here from
  ``JudgeChecks``' outcome: passed, partial credit, or which checks failed, by name (the judge's words
  about values are left out: a value is the student's, and could carry any text).

The graders' reference answers (``ShowReferenceAnswers``) and the published check records are removed.
Staff views (the formgrader) keep the autograded notebook's full outputs.
"""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode
from nbformat.v4 import new_output
from nbgrader.coursedir import CourseDirectory
from nbgrader.preprocessors import ClearHiddenTests, LimitOutput
from traitlets import Integer

from coursekit.course import Course
from coursekit.notebook import is_test_cell
from coursekit.preprocessors.show_reference_answers import is_reference_answer
from coursekit.verdicts import NO_REFERENCE

HIDDEN_NOTE = ("This cell also ran hidden tests. Their code and output are not shown; "
               "see the score on the right. {verdict}\n")
PASSED, FAILED = "All tests in this cell passed.", "Some test in this cell failed."
FAILED_CHECKS = "Failed: {reasons}\n"
# The verdict lines JudgeChecks writes (coursekit/verdicts.py), in the only forms feedback repeats.
PASS_LINE = re.compile(r"All \d+ checks passed\.\n?\Z")
PARTIAL_LINE = re.compile(r"Partial credit: \d{1,3}% of the points\.\n?\Z")
CHECK_NAME = r"[\w .\-/()\[\]]{1,80}"
NAMED_REASON = re.compile(rf"(hidden check '{CHECK_NAME}'|{CHECK_NAME}) (failed|did not run)\Z")
VISIBLE_REASON = re.compile(rf"({CHECK_NAME}): ")
MAX_NAME = 200  # characters of one failed check's name shown


def failed_checks(cell: NotebookNode) -> list[str]:
    """The failed checks of a judged test cell, by name only: as JudgeChecks named them in the cell's
    metadata (``coursekit.failed_checks``, every one, in order), else read from its CheckFailed error."""
    kit = cell.get("metadata", {}).get("coursekit")
    named = kit.get("failed_checks") if isinstance(kit, dict) else None
    judged = any(out.get("output_type") == "error" and out.get("ename") == "CheckFailed"
                 for out in cell.get("outputs", []))
    if judged and isinstance(named, list) and named and all(isinstance(name, str) for name in named):
        return list(dict.fromkeys(" ".join(name.split())[:MAX_NAME] for name in named))
    names = []
    for out in cell.get("outputs", []):
        if out.get("output_type") != "error":
            continue
        if out.get("ename") != "CheckFailed":
            names.append("the cell stopped with an error")
            continue
        for line in out.get("traceback", []):
            reason = str(line).removeprefix("CheckFailed: ").strip()
            visible = VISIBLE_REASON.match(reason)
            if NAMED_REASON.fullmatch(reason) or reason == NO_REFERENCE:
                names.append(reason)
            elif visible:
                names.append(f"{visible.group(1)} failed")
            else:
                names.append("a check failed")
    return list(dict.fromkeys(names))


def verdict_outputs(cell: NotebookNode, had_hidden: bool) -> list[NotebookNode]:
    """What feedback shows for a test cell: the grader's verdict, never the kernel's outputs."""
    outputs = cell.get("outputs", [])
    failed = failed_checks(cell)
    verdict = FAILED if failed else PASSED
    lines = [HIDDEN_NOTE.format(verdict=verdict) if had_hidden else verdict + "\n"]
    if failed:
        lines.append(FAILED_CHECKS.format(reasons="; ".join(failed)))
    else:
        lines += [out["text"] for out in outputs if out.get("output_type") == "stream"
                  and isinstance(out.get("text"), str) and PARTIAL_LINE.match(out["text"])][:1]
    return [new_output("stream", name="stdout", text="".join(lines))]


def read_submitted(path: Path, root: Path, max_bytes: int) -> NotebookNode | None:
    """The notebook at ``path`` (under ``root``) if it is a plain file reached without links, else None."""
    try:
        relative = path.relative_to(root)
        at = root
        for part in relative.parts:
            at = at / part
            if stat.S_ISLNK(os.lstat(at).st_mode):
                return None
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
                return None
            return nbformat.reads(f.read(max_bytes + 1).decode("utf-8"), as_version=4)
    except Exception:  # missing, unreadable, not a notebook: no outputs, never an error
        return None


class HideHiddenTests(ClearHiddenTests):
    """Strip hidden test code from feedback; show submitted outputs and the grader's verdicts only."""

    max_submitted_bytes = Integer(64 * 1024 * 1024, help="A submitted notebook larger than this gives its "
                                                         "feedback no outputs.").tag(config=True)

    def preprocess(self, nb, resources):
        nb.cells = [cell for cell in nb.cells if not is_reference_answer(cell)]
        self._submitted = self._submitted_cells(resources)
        self._limit = LimitOutput(parent=self)
        return super().preprocess(nb, resources)

    def _submitted_cells(self, resources: dict[str, Any]) -> list[NotebookNode]:
        """The code cells of the notebook the student submitted (none if it cannot be read safely)."""
        info = resources.get("nbgrader", {})
        coursedir = CourseDirectory(config=self.config)
        root = Path(coursedir.root).resolve()
        folder = coursedir.format_path(coursedir.submitted_directory, info.get("student", ""),
                                       info.get("assignment", ""))
        nb = read_submitted(Path(folder) / f"{info.get('notebook', '')}.ipynb", root, self.max_submitted_bytes)
        return [c for c in (nb.cells if nb else []) if c.get("cell_type") == "code"]

    def _submitted_outputs(self, cell: NotebookNode, resources: dict[str, Any], index: int) -> list:
        """The outputs of the same cell (same id and source; else the only one with that source) as submitted."""
        same = [c for c in self._submitted if c.get("source") == cell.source]
        by_id = [c for c in same if c.get("id") and c.get("id") == cell.get("id")]
        match = by_id[0] if by_id else same[0] if len(same) == 1 else None
        if match is None:
            return []
        copy = nbformat.from_dict({"cell_type": "code", "source": "", "metadata": {},
                                   "outputs": match.get("outputs", [])})
        return self._limit.preprocess_cell(copy, resources, index)[0].outputs

    def preprocess_cell(self, cell, resources, cell_index):
        cell, resources = self._verdict_or_submitted_outputs(cell, resources, cell_index)
        cell.get("metadata", {}).pop("coursekit", None)  # records and check names stay with the staff
        return cell, resources

    def _verdict_or_submitted_outputs(self, cell, resources, cell_index):
        if cell.cell_type != "code":
            return cell, resources
        try:
            had_hidden = self._remove_hidden_test_region(cell)
        except RuntimeError:  # unbalanced delimiters: a student's own text (a test cell's is the instructor's)
            had_hidden = is_test_cell(cell)
            if had_hidden:
                cell.source = ""
        if is_test_cell(cell) or had_hidden:
            cell.outputs = verdict_outputs(cell, had_hidden)
        else:
            cell.outputs = self._submitted_outputs(cell, resources, cell_index)
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
