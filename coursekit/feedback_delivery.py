"""Feedback that reaches students: one summary page each, nbgrader's exchange, one archive each for the LMS.

After ``generate_feedback`` (feedback.py) has written ``feedback/<student>/<assignment>/<notebook>.html``:

* ``student_summary`` reads the gradebook (points with manual grades, nbgrader's late penalty per
  notebook, the due date with the student's extension) and the autograded notebooks as feedback shows
  them (``HideHiddenTests``: failed checks by name, never hidden code) into a ``StudentSummary``.
* ``summary_html`` renders it; it is the one function here that makes HTML, and every piece of
  student-derived text goes through ``html.escape`` (``write_page`` is the one place pages are written).
* ``write_summaries`` writes ``summary.html`` beside the notebook pages and puts the same table at the
  top of every notebook page, because nbgrader's exchange hands a student only pages named after
  notebooks they submitted (``nbgrader fetch_feedback``): the summary travels with each of them.
* ``release_through_exchange`` runs nbgrader's ``release_feedback`` (``c.Exchange.root`` as configured);
  ``zip_for_lms`` writes one archive per student named as Canvas's "Re-Upload Submissions" expects
  (``<lastnamefirstname>_<LMS user id>_...``: Canvas takes the first all-digit part as its user id).
"""
from __future__ import annotations

import copy
import html
import re
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import quote

import nbformat

from coursekit.sanitize import clean_page, kit_anchor_mark
from coursekit.course import Course, CourseError

SUMMARY_NAME = "summary"
BLOCK_START = "<!-- coursekit-summary -->"
BLOCK_END = "<!-- /coursekit-summary -->"
FAILED_PREFIX = "Failed: "


@dataclass
class CellResult:
    """One graded cell that lost points or still waits for a grader."""
    grade_id: str
    kind: str                 # "tests", "written answer", "code answer"
    score: float
    max_score: float
    pending: bool             # waits for a manual grade
    reasons: list[str]        # what failed, as feedback shows it (check names, never hidden code)
    section: str              # the heading above the cell: what to review


@dataclass
class ProblemSummary:
    notebook: str
    title: str
    score: float
    max_score: float
    late_penalty: float
    cells: list[CellResult] = field(default_factory=list)
    has_page: bool = True


@dataclass
class StudentSummary:
    student: str
    assignment: str
    submitted: datetime | None
    due: datetime | None
    seconds_late: float
    problems: list[ProblemSummary]
    deadline: str | None = None   # the deadline, extension and penalty rule in words (coursekit/late.py)

    @property
    def score(self) -> float:
        return sum(p.score for p in self.problems)

    @property
    def max_score(self) -> float:
        return sum(p.max_score for p in self.problems)

    @property
    def late_penalty(self) -> float:
        return sum(p.late_penalty for p in self.problems)


# --- reading ---------------------------------------------------------------------------------------
def _read_autograded(course: Course, path: Path
                     ) -> tuple[str, dict[str, str], dict[str, str], dict[str, list[str]]]:
    """From an autograded notebook: its title, and per grade_id the heading above the cell, the kind of
    cell, and what failed as the feedback page says it (the notebook goes through ``HideHiddenTests``)."""
    from coursekit.feedback import HideHiddenTests

    nb = nbformat.read(str(path), as_version=4)
    shown, _ = HideHiddenTests(config=course.config).preprocess(copy.deepcopy(nb), {})
    title, heading, sections, kinds, reasons = "", "", {}, {}, {}
    for cell in shown.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    heading = line.lstrip("#").strip()
                    title = title or heading
        grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
        if not grade_id:
            continue
        sections[grade_id] = heading
        solution = cell.metadata["nbgrader"].get("solution")
        kinds[grade_id] = ("written answer" if cell.cell_type == "markdown" else "code answer" if solution
                           else "tests")
        found = []
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            text = out.get("text", "")
            if out.get("output_type") == "stream" and isinstance(text, str) and text.startswith(FAILED_PREFIX):
                found.append(text[len(FAILED_PREFIX):].strip())
            elif out.get("output_type") == "error":
                found.append(f"{out.get('ename', 'Error')}: {out.get('evalue', '')}".strip())
        reasons[grade_id] = found
    return title, sections, kinds, reasons


def student_summary(course: Course, assignment: str, student: str) -> StudentSummary:
    """Points, late penalty, what failed and what to review, per notebook, from the gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(course.db_url) as gradebook:
        try:
            submission = gradebook.find_submission(assignment, student)
        except MissingEntry:
            raise CourseError(f"{student}: no graded submission of {assignment} in the gradebook") from None
        problems = []
        for notebook in sorted(submission.notebooks, key=lambda n: n.name):
            autograded = course.folder("autograded", student, assignment, f"{notebook.name}.ipynb")
            title, sections, kinds, reasons = (_read_autograded(course, autograded) if autograded.is_file()
                                               else ("", {}, {}, {}))
            problem = ProblemSummary(notebook.name, title, float(notebook.score or 0), float(notebook.max_score or 0),
                                     float(notebook.late_submission_penalty or 0))
            problem.has_page = course.folder("feedback", student, assignment, f"{notebook.name}.html").is_file()
            order = {grade_id: number for number, grade_id in enumerate(sections)}  # as in the notebook
            for grade in sorted(notebook.grades, key=lambda g: order.get(g.name, len(order))):
                score, top = float(grade.score or 0), float(grade.max_score or 0)
                if score >= top and not grade.needs_manual_grade:
                    continue
                problem.cells.append(CellResult(grade.name, kinds.get(grade.name, "answer"), score, top,
                                                bool(grade.needs_manual_grade), reasons.get(grade.name, []),
                                                sections.get(grade.name, "")))
            problems.append(problem)
        summary = StudentSummary(student, assignment, submission.timestamp, submission.duedate,
                                 float(submission.total_seconds_late), problems)
    summary.deadline = _deadline_in_words(course, assignment, student)
    return summary


def _deadline_in_words(course: Course, assignment: str, student: str) -> str | None:
    """The deadlines module's explanation (due date, extension and its reason, penalty), if the kit has it."""
    try:
        from coursekit import late
    except ImportError:
        return None
    found = late.lateness(course, assignment, student)
    return found.explanation if found is not None else None


# --- the page ---------------------------------------------------------------------------------------
def _points(x: float) -> str:
    return f"{x:g}"


def _lateness(summary: StudentSummary) -> str:
    if summary.seconds_late <= 0:
        return "on time" + (f" (due {summary.due:%Y-%m-%d %H:%M} UTC)" if summary.due else "")
    hours = summary.seconds_late / 3600
    late = f"{hours:.1f} hours" if hours < 48 else f"{hours / 24:.1f} days"
    return f"late by {late} (due {summary.due:%Y-%m-%d %H:%M} UTC)"


def summary_html(summary: StudentSummary, *, fragment: bool = False, kit_mark: str = "") -> str:
    """The summary as HTML: a whole page, or (``fragment``) the block put at the top of notebook pages.
    Plain markup only (no script, no style attribute, no external resource); all text escaped. Its links
    to the notebook pages' anchors carry ``kit_mark`` (``coursekit.sanitize.kit_anchor_mark``): they lead
    to nbgrader's anchors, never to an element of the student's."""
    e = html.escape
    rows = []
    for p in summary.problems:
        name = f"{p.notebook}: {p.title}" if p.title else p.notebook
        page = quote(p.notebook, safe="") + ".html"  # a relative path, never a scheme such as javascript:
        link = (f"<a href='{page}'>{e(name)}</a>" if p.has_page else e(name))
        failed, review = [], []
        for c in p.cells:
            where = (f"<a href='{page}#{kit_mark}{quote(c.grade_id, safe='')}'>{e(c.grade_id)}</a>" if p.has_page
                     else e(c.grade_id))
            state = "waits for a grader" if c.pending else f"{_points(c.score)} / {_points(c.max_score)}"
            why = f": {e('; '.join(c.reasons))}" if c.reasons and not c.pending else ""
            failed.append(f"<li>{where} ({e(c.kind)}, {e(state)}){why}</li>")
            if c.section and c.section not in review:
                review.append(c.section)
        if p.late_penalty:
            penalty = f"-{_points(p.late_penalty)}"
        else:
            penalty = "0 (on time)" if summary.seconds_late <= 0 else "0"
        rows.append("<tr>" + f"<td>{link}</td>"
                    + f"<td>{e(_points(p.score))} / {e(_points(p.max_score))}</td><td>{e(penalty)}</td>"
                    + f"<td>{'<ul>' + ''.join(failed) + '</ul>' if failed else 'nothing'}</td>"
                    + f"<td>{e('; '.join(review)) if review else '-'}</td></tr>")
    head = (f"<h2>Feedback for {e(summary.student)}: {e(summary.assignment)}</h2>"
            f"<p>Total: {e(_points(summary.score))} / {e(_points(summary.max_score))} points, "
            + (f"late penalty -{e(_points(summary.late_penalty))}, "
               f"{e(_points(max(0.0, summary.score - summary.late_penalty)))} after the penalty"
               if summary.late_penalty else "late penalty 0")
            + f" ({e(_lateness(summary))}). Written answers marked as waiting count once a grader has "
            "graded them.</p>"
            + (f"<p>Deadline: {e(summary.deadline)}.</p>" if summary.deadline else ""))
    table = ("<table border='1' cellpadding='4'><thead><tr><th>problem (notebook page)</th><th>points</th>"
             "<th>late penalty</th><th>what lost points</th><th>what to review</th></tr></thead><tbody>"
             + "".join(rows) + "</tbody></table>")
    block = f"{BLOCK_START}<div id='{kit_mark}coursekit-summary'>{head}{table}</div>{BLOCK_END}"
    if fragment:
        return block
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            f"<title>Feedback: {e(summary.assignment)}</title></head><body>{block}</body></html>")


def write_page(path: Path, text: str, kit_mark: str = "") -> None:
    """Every page this module writes goes through here: the allow-list sanitiser runs last."""
    path.write_text(clean_page(text, kit_mark=kit_mark), encoding="utf-8")


def with_summary_block(page: str, block: str) -> str:
    """A notebook's feedback page with ``block`` first in its body (an older block is replaced)."""
    page = re.sub(re.escape(BLOCK_START) + ".*?" + re.escape(BLOCK_END), "", page, flags=re.S)
    found = re.search(r"<body[^>]*>", page)
    at = found.end() if found else 0
    return page[:at] + block + page[at:]


def write_summaries(course: Course, assignment: str, students: list[str]) -> dict[str, str | None]:
    """summary.html for each student, and the summary on top of each notebook page; student -> error."""
    errors: dict[str, str | None] = {}
    for student in students:
        folder = course.folder("feedback", student, assignment)
        if not folder.is_dir():
            errors[student] = "no feedback pages"
            continue
        if (folder / f"{SUMMARY_NAME}.ipynb").exists() or SUMMARY_NAME in course.source_notebooks(assignment):
            raise CourseError(f"a notebook named {SUMMARY_NAME}.ipynb would collide with the summary page")
        try:
            summary = student_summary(course, assignment, student)
        except CourseError as err:
            errors[student] = str(err)
            continue
        mark = kit_anchor_mark()
        write_page(folder / f"{SUMMARY_NAME}.html", summary_html(summary, kit_mark=mark), mark)
        block = summary_html(summary, fragment=True, kit_mark=mark)
        for problem in summary.problems:
            page = folder / f"{problem.notebook}.html"
            if page.is_file():
                write_page(page, with_summary_block(page.read_text(encoding="utf-8"), block), mark)
        errors[student] = None
    return errors


# --- delivery ---------------------------------------------------------------------------------------
def release_through_exchange(course: Course, assignment: str, students: list[str]) -> dict[str, str | None]:
    """nbgrader's ``release_feedback`` per student; student -> error line (None when released)."""
    errors: dict[str, str | None] = {}
    for student in students:
        folder = course.folder("feedback", student, assignment)
        if not (folder / "submission_secret.txt").is_file():
            secret = course.folder("submitted", student, assignment, "submission_secret.txt")
            if not secret.is_file():
                errors[student] = "not submitted through nbgrader's exchange, nothing to release there (use --zip)"
                continue
            (folder / "submission_secret.txt").write_text(secret.read_text())
        if not (folder / "timestamp.txt").is_file():
            errors[student] = "feedback has no timestamp.txt (was the submission collected by nbgrader?)"
            continue
        outcome = course.api.release_feedback(assignment, student)
        errors[student] = None if outcome["success"] else (outcome.get("error") or "failed").strip().splitlines()[-1]
    return errors


def _name_part(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def archive_name(student: str, assignment: str, first: str | None, last: str | None, lms_id: str | None) -> str:
    """``lastnamefirstname_<LMS id>_feedback-<assignment>.zip`` (Canvas re-upload); the student id
    stands in for the name, and the LMS id is left out, when the roster does not give them."""
    name = _name_part((last or "") + (first or "")) or _name_part(student) or "student"
    if name.isdigit():  # Canvas would read an all-digit name as the user id
        name = "s" + name
    parts = [name] + ([re.sub(r"\D", "", lms_id)] if lms_id and re.sub(r"\D", "", lms_id) else [])
    return "_".join(parts) + f"_feedback-{_name_part(assignment) or 'assignment'}.zip"


def zip_for_lms(course: Course, assignment: str, students: list[str], out_dir: Path
                ) -> tuple[dict[str, Path], dict[str, str]]:
    """One archive per student (summary.html and the notebook pages); -> (archives, student -> problem)."""
    from nbgrader.api import Gradebook, MissingEntry

    out_dir.mkdir(parents=True, exist_ok=True)
    archives, problems = {}, {}
    with Gradebook(course.db_url) as gradebook:
        for student in students:
            folder = course.folder("feedback", student, assignment)
            pages = sorted(p for p in folder.glob("*.html") if p.is_file() and not p.is_symlink()) \
                if folder.is_dir() else []
            if not pages:
                problems[student] = "no feedback pages"
                continue
            try:
                who = gradebook.find_student(student)
                first, last, lms_id = who.first_name, who.last_name, who.lms_user_id
            except MissingEntry:
                first = last = lms_id = None
            if not lms_id:
                problems[student] = "no LMS user id in the gradebook (import the roster): archive named by student id"
            target = out_dir / archive_name(student, assignment, first, last, lms_id)
            with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
                for page in pages:
                    archive.write(page, f"{assignment}-feedback/{page.name}")
            archives[student] = target
    return archives, problems
