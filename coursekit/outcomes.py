"""What the last `coursekit` grading run said about each student: the status and the reasons it printed.

The gradebook keeps the scores but not why a student was graded with warnings or not graded at all; that
used to live only in the terminal of the run. Each run now keeps it in the course's owner-only state folder
(``.coursekit/outcomes/<assignment>/<student>.json``), so `coursekit report` shows it later.
An outcome describes one set of autograded notebooks: it is kept with their modification times and read
back only while they are unchanged (another door that grades the student again makes it stale).
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from coursekit.course import Course

OUTCOMES = Path(".coursekit") / "outcomes"


def outcome_file(course: Course, assignment: str, student: str) -> Path:
    return course.root / OUTCOMES / assignment / f"{student}.json"


def _autograded_times(course: Course, assignment: str, student: str) -> dict[str, int]:
    """notebook file -> modification time (ns) of the student's autograded notebooks (links not followed)."""
    folder = course.folder("autograded", student, assignment)
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return {}
    return {e.name: e.stat(follow_symlinks=False).st_mtime_ns for e in entries
            if e.name.endswith(".ipynb") and e.is_file(follow_symlinks=False)}


def save_outcome(course: Course, assignment: str, student: str, status: str, reasons: list[str]) -> None:
    """Keep a student's status and reasons from this run (replacing the last run's). The grades are in
    the gradebook already: a state folder that cannot be written costs a warning, not the run."""
    path = outcome_file(course, assignment, student)
    record = {"status": status, "reasons": reasons, "autograded": _autograded_times(course, assignment, student)}
    partial = path.with_name(path.name + ".partial")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial.write_text(json.dumps(record, indent=1), encoding="utf-8")
        os.replace(partial, path)
    except OSError as err:
        print(f"coursekit: warning: {student}'s status was not kept in {path}: {err.strerror or err}", file=sys.stderr)


def saved_outcome(course: Course, assignment: str, student: str) -> tuple[str, list[str]] | None:
    """(status, reasons) of the last run that graded this student, or None when there is none or the
    autograded notebooks changed since (graded again through another door)."""
    try:
        record = json.loads(outcome_file(course, assignment, student).read_text(encoding="utf-8"))
        status, reasons, times = record["status"], record["reasons"], record["autograded"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not (isinstance(status, str) and isinstance(reasons, list) and all(isinstance(r, str) for r in reasons)):
        return None
    if times != _autograded_times(course, assignment, student):
        return None
    return status, reasons
