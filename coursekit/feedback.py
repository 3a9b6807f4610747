"""Feedback that never shows hidden tests.

nbgrader's stock feedback HTML prints every test cell as it was run, hidden tests included, with
their tracebacks. ``HideHiddenTests`` (enabled in nbgrader_config.py) removes the hidden region from
each test cell, replaces that cell's outputs with a one-line verdict, and blanks any line of any
other output that repeats a hidden test line (a submission can capture the code its kernel runs and
print it later). The verdict names the checks that failed (never their expected values, which never
reach the student's kernel: see coursekit/verdicts.py). The graders' reference answers
(``ShowReferenceAnswers``) and the published check records are removed.
"""
from __future__ import annotations

from nbformat.v4 import new_output
from nbgrader.preprocessors import ClearHiddenTests

from coursekit.course import Course
from coursekit.preprocessors.show_reference_answers import is_reference_answer

HIDDEN_NOTE = ("This cell also ran hidden tests. Their code and output are not shown; "
               "see the score on the right. {verdict}\n")
FAILED_CHECKS = "Failed: {reasons}\n"
REDACTED = "[line removed: it repeats hidden test code]"
MIN_SECRET_LENGTH = 12


class HideHiddenTests(ClearHiddenTests):
    """Strip hidden test code, its outputs and any echo of it from feedback notebooks."""

    def preprocess(self, nb, resources):
        nb.cells = [cell for cell in nb.cells if not is_reference_answer(cell)]
        for cell in nb.cells:
            cell.get("metadata", {}).pop("coursekit", None)
        self._secrets = set()
        for cell in nb.cells:
            if cell.cell_type == "code":
                self._secrets.update(self._hidden_lines(cell.source))
        nb, resources = super().preprocess(nb, resources)
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs = [self._redact(out) for out in cell.get("outputs", [])]
        return nb, resources

    def _hidden_lines(self, source: str) -> set[str]:
        inside, lines = False, set()
        for line in source.splitlines():
            if self.begin_test_delimeter in line:
                inside = True
            elif self.end_test_delimeter in line:
                inside = False
            elif inside and len(line.strip()) >= MIN_SECRET_LENGTH:
                lines.add(line.strip())
        return lines

    def _clean(self, text: str) -> str:
        if not self._secrets or not isinstance(text, str):
            return text
        return "\n".join(REDACTED if any(s in line for s in self._secrets) else line for line in text.split("\n"))

    def _redact(self, out):
        if "text" in out:
            out["text"] = self._clean(out["text"])
        if "traceback" in out:
            out["traceback"] = [self._clean(line) for line in out["traceback"]]
        if "evalue" in out:
            out["evalue"] = self._clean(out["evalue"])
        for mime, value in out.get("data", {}).items():
            if isinstance(value, str):
                out["data"][mime] = self._clean(value)
            elif isinstance(value, list):
                out["data"][mime] = [self._clean(v) for v in value]
        return out

    def preprocess_cell(self, cell, resources, cell_index):
        if cell.cell_type != "code" or not self._remove_hidden_test_region(cell):
            return cell, resources
        errors = [out for out in cell.get("outputs", []) if out.get("output_type") == "error"]
        verdict = "Some test in this cell failed." if errors else "All tests in this cell passed."
        cell.outputs = [new_output("stream", name="stdout", text=HIDDEN_NOTE.format(verdict=verdict))]
        if errors:  # the judge's own words: which checks failed, by name (no expected values)
            reasons = "; ".join(self._clean(str(out.get("evalue", ""))) for out in errors)
            cell.outputs.append(new_output("stream", name="stdout", text=FAILED_CHECKS.format(reasons=reasons)))
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
