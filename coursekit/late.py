"""Deadlines, extensions and late penalties: one policy, applied by nbgrader's own late-penalty step.

Where each piece lives:

* the due date and the penalty policy are traits of :class:`LatePolicy` (set in nbgrader_config.py:
  ``c.LatePolicy.due_dates``, ``percent_per_day``, ``max_percent``, ``grace_minutes``);
* per-student extensions are ``extensions.toml`` in the course folder (reviewed like any course file),
  one line per extension with its reason (:func:`read_extensions`);
* submission times are nbgrader's ``timestamp.txt`` written at collection (``coursekit collect``,
  a Gradescope export, nbgrader's exchange), which nbgrader stores as ``Submission.timestamp``.

Every door runs the autograde pipeline of nbgrader_config.py, where :class:`ApplyDeadlines` writes the
configured due date and the student's extension into nbgrader's gradebook, and nbgrader's
``AssignLatePenalties`` then asks :class:`LatePolicy` (its ``plugin_class``) for each notebook's
penalty and stores it as ``SubmittedNotebook.late_submission_penalty``. :func:`recompute` runs those
same two steps again from the gradebook alone (no kernel), after a deadline, an extension or a manual
grade changed; :func:`explain` says in one line why a student has the penalty they have.

The rule: a submission up to ``grace_minutes`` after its (extended) due date is on time; later, each
started day late costs ``percent_per_day`` % of the notebook's points, at most ``max_percent`` %.
"""
from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from nbgrader.plugins import LateSubmissionPlugin
from traitlets import Dict, Float, Unicode

from coursekit.course import Course, CourseError

DAY = 86400.0


# --- the settings --------------------------------------------------------------------------------

class LatePolicy(LateSubmissionPlugin):
    """The course's due dates and late-penalty rule (nbgrader's ``AssignLatePenalties.plugin_class``)."""

    due_dates = Dict(
        key_trait=Unicode(), value_trait=Unicode(), default_value={},
        help="Due date per assignment, ISO 8601 with a UTC offset, e.g. {'hw6': '2026-12-10T23:59:00+01:00'}. "
             "An assignment not listed keeps the due date nbgrader has for it (none: never late).",
    ).tag(config=True)
    percent_per_day = Float(
        10.0, help="Percent of a notebook's points taken off per started day late (after the grace period).",
    ).tag(config=True)
    max_percent = Float(
        50.0, help="The most a late submission loses, in percent of its points (100: it can drop to zero).",
    ).tag(config=True)
    grace_minutes = Float(
        15.0, help="Minutes after the (extended) due date during which a submission still counts as on time.",
    ).tag(config=True)
    extensions_file = Unicode(
        "extensions.toml", help="Per-student extensions with their reasons, relative to the course folder.",
    ).tag(config=True)

    penalty_method = Unicode("none", help="Not used: the penalty follows percent_per_day and max_percent.")

    def percent(self, seconds_late: float) -> float:
        """Percent of the points lost for a submission ``seconds_late`` after its (extended) due date."""
        if seconds_late <= self.grace_minutes * 60:
            return 0.0
        days = math.ceil(seconds_late / DAY)
        return min(self.max_percent, self.percent_per_day * days)

    def late_submission_penalty(self, student_id: str, score: float, total_seconds_late: float) -> float:
        """Points taken off a notebook that earned ``score`` (nbgrader's plugin interface)."""
        return round(score * self.percent(total_seconds_late) / 100.0, 6)

    def due_date(self, assignment: str) -> datetime | None:
        """The configured due date of ``assignment`` in UTC (naive, as nbgrader stores it), or None."""
        text = self.due_dates.get(assignment)
        return None if text is None else parse_time(text, f"c.LatePolicy.due_dates[{assignment!r}]")

    def describe(self) -> str:
        """The rule in one sentence, for the release header and the README."""
        if self.percent_per_day <= 0:
            return "Late submissions are not penalised."
        grace = f" (after a {self.grace_minutes:g}-minute grace period)" if self.grace_minutes else ""
        return (f"Late submissions lose {self.percent_per_day:g} % of their points per started day{grace}, "
                f"at most {self.max_percent:g} %.")


def parse_time(text: str, where: str) -> datetime:
    """An ISO 8601 time with a UTC offset as naive UTC (nbgrader's convention); CourseError if not one."""
    try:
        when = datetime.fromisoformat(str(text).strip())
    except ValueError:
        raise CourseError(f"{where}: {text!r} is not a date and time like 2026-12-10T23:59:00+01:00") from None
    if when.tzinfo is None:
        raise CourseError(f"{where}: {text!r} has no UTC offset (write e.g. 2026-12-10T23:59:00+01:00 or ...Z)")
    return when.astimezone(timezone.utc).replace(tzinfo=None)


def policy(course: Course) -> LatePolicy:
    """The course's policy, configured from nbgrader_config.py."""
    return LatePolicy(config=course.config)


# --- extensions.toml -----------------------------------------------------------------------------

@dataclass(frozen=True)
class Extension:
    """Extra time one student has for one assignment, and why."""

    assignment: str
    student: str
    reason: str
    extra: timedelta | None = None  # days/hours after the due date ...
    until: datetime | None = None  # ... or a new due date (naive UTC)

    def delta(self, due: datetime | None) -> timedelta | None:
        """The extension as nbgrader stores it (time added to the due date)."""
        if self.extra is not None:
            return self.extra
        return None if due is None else max(self.until - due, timedelta(0))


EXAMPLE = '[hw6]\nalice = { days = 2, reason = "medical certificate of 2026-12-08" }\n'


def read_extensions(path: Path) -> dict[tuple[str, str], Extension]:
    """(assignment, student) -> Extension from ``extensions.toml``; {} if the file does not exist.

    Format: one table per assignment, one line per student:
    ``alice = { days = 2, reason = "..." }`` (or ``hours = 36`` or ``until = 2026-12-14T12:00:00+01:00``).
    A line without a reason, without an amount, or with anything unknown is an error naming the file.
    """
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise CourseError(f"{path}: not valid TOML ({err}); example:\n{EXAMPLE}") from None
    out = {}
    for assignment, students in data.items():
        if not isinstance(students, dict):
            raise CourseError(f"{path}: [{assignment}] must be a table of students; example:\n{EXAMPLE}")
        for student, entry in students.items():
            out[(assignment, student)] = _extension(path, assignment, student, entry)
    return out


def _extension(path: Path, assignment: str, student: str, entry: Any) -> Extension:
    where = f"{path}: [{assignment}] {student}"
    if not isinstance(entry, dict):
        raise CourseError(f"{where}: write {{ days = 2, reason = \"...\" }}")
    unknown = set(entry) - {"days", "hours", "until", "reason"}
    if unknown:
        raise CourseError(f"{where}: unknown key(s) {', '.join(sorted(unknown))} (days, hours, until, reason)")
    reason = str(entry.get("reason", "")).strip()
    if not reason:
        raise CourseError(f"{where}: every extension needs a reason = \"...\"")
    amounts = [k for k in ("days", "hours", "until") if k in entry]
    if len(amounts) != 1:
        raise CourseError(f"{where}: give exactly one of days, hours or until")
    if "until" in entry:
        until = entry["until"]
        if isinstance(until, datetime) and until.tzinfo is not None:
            until = until.astimezone(timezone.utc).replace(tzinfo=None)
        else:
            until = parse_time(str(until), f"{where}: until")
        return Extension(assignment, student, reason, until=until)
    amount = entry[amounts[0]]
    if not isinstance(amount, (int, float)) or isinstance(amount, bool) or amount < 0:
        raise CourseError(f"{where}: {amounts[0]} must be a number of {amounts[0]} ≥ 0")
    return Extension(assignment, student, reason, extra=timedelta(**{amounts[0]: float(amount)}))


def extensions_path(root: Path | str, late_policy: LatePolicy) -> Path:
    return Path(root) / late_policy.extensions_file


# --- the gradebook -------------------------------------------------------------------------------

def sync_deadline(gb: Any, root: Path | str, late_policy: LatePolicy, assignment: str, student: str) -> None:
    """Write the configured due date of ``assignment`` and ``student``'s extension into nbgrader's
    gradebook (its ``Assignment.duedate`` and ``Submission.extension``), where nbgrader computes
    ``total_seconds_late`` from them. The caller commits."""
    due = late_policy.due_date(assignment)
    record = gb.find_assignment(assignment)
    if due is not None and record.duedate != due:
        record.duedate = due
    extension = read_extensions(extensions_path(root, late_policy)).get((assignment, student))
    submission = gb.find_submission(assignment, student)
    submission.extension = None if extension is None else extension.delta(record.duedate)


def recompute(course: Course, assignment: str, students: list[str] | None = None) -> list[str]:
    """Re-apply deadlines, extensions and penalties to graded submissions from the gradebook alone
    (nbgrader's ``AssignLatePenalties`` with the course's plugin; no kernel runs). Manual grades count.
    Returns one line per student whose penalty changed."""
    from nbgrader.api import Gradebook
    from nbgrader.preprocessors import AssignLatePenalties
    from nbformat.v4 import new_notebook

    from coursekit.preprocessors.apply_deadlines import ApplyDeadlines

    config = course.config
    with Gradebook(course.db_url, course.course_id) as gb:
        graded = {s.student.id: sorted(nb.name for nb in s.notebooks) for s in gb.assignment_submissions(assignment)}
        before = {s: _penalty(gb, assignment, s) for s in graded}
    changed = []
    for student in sorted(graded if students is None else set(students) & set(graded)):
        for notebook in graded[student]:
            resources = {"nbgrader": {"student": student, "assignment": assignment, "notebook": notebook,
                                      "db_url": course.db_url}}
            for step in (ApplyDeadlines(config=config), AssignLatePenalties(config=config)):
                step(new_notebook(), resources)
        with Gradebook(course.db_url, course.course_id) as gb:
            after = _penalty(gb, assignment, student)
        if abs(after - before[student]) > 1e-9:
            changed.append(f"{student}: late penalty {before[student]:g} -> {after:g} points")
    return changed


def _penalty(gb: Any, assignment: str, student: str) -> float:
    return float(gb.find_submission(assignment, student).late_submission_penalty or 0.0)


# --- in words ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Lateness:
    """Where one submission stands: what the grade table, the export and the feedback show."""

    student: str
    submitted: datetime | None  # naive UTC
    due: datetime | None  # with the extension, naive UTC
    original_due: datetime | None  # without it
    seconds_late: float
    penalty: float  # points, summed over notebooks
    percent: float
    extension: Extension | None
    grace_seconds: float = 0.0

    @property
    def status(self) -> str:
        """"on time", "on time (grace)" or "late"."""
        if self.submitted is None or self.due is None or self.seconds_late <= 0:
            return "on time"
        return "late" if self.percent > 0 or self.seconds_late > self.grace_seconds else "on time (grace)"

    @property
    def explanation(self) -> str:
        """The line :func:`explain` returns."""
        if self.due is None:
            return "no due date set"
        if self.submitted is None:
            return f"due {_utc(self.due)}; no submission time recorded (treated as on time)"
        granted = f"; extension to {_utc(self.due)}: {self.extension.reason}" if self.extension else ""
        times = f"submitted {_utc(self.submitted)}, due {_utc(self.original_due or self.due)}"
        if self.status == "on time":
            return f"on time ({times}{granted})"
        if self.status == "on time (grace)":
            return f"on time, within the grace period ({times}{granted})"
        return (f"late by {_duration(self.seconds_late)} ({times}{granted}): "
                f"-{self.percent:g} % of the points, {self.penalty:g} points taken off")


def lateness(course: Course, assignment: str, student: str) -> Lateness | None:
    """The submission's times and penalty as stored in nbgrader's gradebook (None if not graded)."""
    from nbgrader.api import Gradebook, MissingEntry

    late_policy = policy(course)
    with Gradebook(course.db_url, course.course_id) as gb:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            return None
        submitted, due, original_due = submission.timestamp, submission.duedate, submission.assignment.duedate
        seconds = float(submission.total_seconds_late or 0.0)
        penalty = float(submission.late_submission_penalty or 0.0)
    extension = read_extensions(extensions_path(course.root, late_policy)).get((assignment, student))
    return Lateness(student, submitted, due, original_due, seconds, penalty, late_policy.percent(seconds), extension,
                    late_policy.grace_minutes * 60)


def lateness_of(course: Course, assignment: str, students: list[str]) -> dict[str, Lateness]:
    """student -> Lateness, for the graded ones among ``students`` (the grade table's late columns)."""
    found = {student: lateness(course, assignment, student) for student in students}
    return {student: state for student, state in found.items() if state is not None}


def notebook_penalties(course: Course, assignment: str, student: str) -> dict[str, float]:
    """notebook -> late penalty in points, as nbgrader stores it (SubmittedNotebook.late_submission_penalty)."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(course.db_url, course.course_id) as gb:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            return {}
        return {nb.name: float(nb.late_submission_penalty or 0.0) for nb in submission.notebooks}


def _utc(when: datetime) -> str:
    return when.strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: float) -> str:
    days, rest = divmod(int(round(seconds)), 86400)
    hours, rest = divmod(rest, 3600)
    parts = [f"{days} d"] * bool(days) + [f"{hours} h"] * bool(hours) + [f"{rest // 60} min"] * (not days)
    return " ".join(parts)


def explain(course: Course, assignment: str, student: str) -> str:
    """One line for a student or a TA: on time or late, by how much, the penalty and why.

    E.g. "late by 1 d 3 h (submitted 2026-12-12 02:59 UTC, due 2026-12-10 23:59 UTC): -20 % of the
    points, 0.8 points taken off". Extensions are named with their reason.
    """
    state = lateness(course, assignment, student)
    return "not graded yet" if state is None else state.explanation
