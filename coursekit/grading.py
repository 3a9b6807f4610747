"""Autograde submissions through nbgrader, one notebook at a time, so nothing one student
(or one broken notebook) does can stop the others."""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from tqdm import tqdm

from coursekit.course import Course, CourseError
from coursekit.preflight import ExpectedNotebook, SubmissionCheck, check_submission

STAGING = Path(".coursekit") / "staging"


@dataclass
class NotebookScore:
    name: str
    code_score: float
    max_code_score: float
    needs_manual_grade: bool


@dataclass
class StudentResult:
    """What happened to one student's submission, in one line for the instructor."""

    student: str
    status: str = "graded"  # graded | graded with warnings | failed
    reasons: list[str] = field(default_factory=list)
    notebooks: list[NotebookScore] = field(default_factory=list)

    @property
    def code_score(self) -> float:
        return sum(nb.code_score for nb in self.notebooks)

    @property
    def max_code_score(self) -> float:
        return sum(nb.max_code_score for nb in self.notebooks)


def _test_cell_sources(nb: nbformat.NotebookNode) -> dict[str, nbformat.NotebookNode]:
    cells = {}
    for cell in nb.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution") and meta.get("grade_id"):
            cells[meta["grade_id"]] = cell
    return cells


def expected_notebooks(course: Course, assignment: str) -> list[ExpectedNotebook]:
    """The assignment's notebooks as the gradebook knows them, with the released test cells."""
    from nbgrader.api import Gradebook, MissingEntry
    from nbgrader.utils import compute_checksum

    with Gradebook(course.db_url, course.course_id) as gb:
        try:
            notebooks = gb.find_assignment(assignment).notebooks
        except MissingEntry:
            raise CourseError(f"assignment {assignment!r} is not in the gradebook; "
                              f"run `coursekit release {assignment}` first") from None
        names = {nb.name: {c.name for c in nb.grade_cells} | {c.name for c in nb.solution_cells}
                 | {c.name for c in nb.source_cells} for nb in notebooks}
    expected = []
    for name, grade_ids in sorted(names.items()):
        released = course.folder("release", assignment, f"{name}.ipynb")
        tests = _test_cell_sources(nbformat.read(str(released), as_version=4)) if released.is_file() else {}
        expected.append(ExpectedNotebook(name=name, grade_ids=frozenset(grade_ids),
                                         test_checksums={gid: compute_checksum(c) for gid, c in tests.items()}))
    return expected


def _run_nbgrader_autograde(course: Course, assignment: str, student: str, notebook: str) -> dict:
    from nbgrader.converters import Autograde
    from nbgrader.utils import capture_log, temp_attrs

    coursedir = course.api.coursedir
    with temp_attrs(coursedir, assignment_id=assignment, student_id=student, notebook_id=notebook,
                    submitted_directory=str(STAGING)):
        app = Autograde(coursedir=coursedir, parent=course.api)
        app.force = True
        app.create_student = True
        return capture_log(app)


def _last_error_line(result: dict) -> str:
    text = (result.get("error") or "") + "\n" + (result.get("log") or "")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("[ERROR]") or "Error" in ln]
    return (errors[-1] if errors else lines[-1] if lines else "unknown error")[:200]


def _zero_ungraded(course: Course, assignment: str, student: str, notebooks: list[str]) -> None:
    """Record 0 for the autograder tests of notebooks that could not be run (manual grades stay)."""
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url, course.course_id) as gb:
        gb.update_or_create_student(student)
        submission = gb.update_or_create_submission(assignment, student)
        for nb in submission.notebooks:
            if nb.name not in notebooks:
                continue
            for grade in nb.grades:
                if grade.cell.cell_type == "code":
                    grade.auto_score = 0.0
                    grade.needs_manual_grade = False
        gb.db.commit()


def read_scores(course: Course, assignment: str, student: str) -> list[NotebookScore]:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(course.db_url, course.course_id) as gb:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            return []
        return [NotebookScore(nb.name, float(nb.code_score), float(nb.max_code_score), bool(nb.needs_manual_grade))
                for nb in sorted(submission.notebooks, key=lambda n: n.name)]


def autograde_student(course: Course, assignment: str, student: str,
                      expected: list[ExpectedNotebook], log_dir: Path) -> StudentResult:
    """Autograde every gradable notebook of one student; never raises for the student's faults."""
    result = StudentResult(student=student)
    staging = course.root / STAGING / student / assignment
    check: SubmissionCheck = check_submission(student, course.folder("submitted", student, assignment),
                                              expected, staging)
    result.reasons.extend(check.reasons)
    shutil.rmtree(course.folder("autograded", student, assignment), ignore_errors=True)

    logs = []
    ungraded = list(check.missing)
    for name in sorted(check.staged):
        outcome = _run_nbgrader_autograde(course, assignment, student, name)
        logs.append(f"===== {name} =====\n{outcome.get('log', '')}\n{outcome.get('error') or ''}")
        if not outcome["success"]:
            ungraded.append(name)
            result.reasons.append(f"{name}.ipynb: could not be run to the end, scores 0 ({_last_error_line(outcome)})")
    _zero_ungraded(course, assignment, student, ungraded)

    log_dir.mkdir(parents=True, exist_ok=True)
    (log_dir / f"{student}.log").write_text("\n".join(logs))
    result.notebooks = read_scores(course, assignment, student)
    if len(ungraded) == len(expected):
        result.status = "failed"
    elif result.reasons:
        result.status = "graded with warnings"
    return result


def autograde(course: Course, assignment: str, students: list[str] | None = None) -> list[StudentResult]:
    """Autograde the given students (default: everyone with a submission folder)."""
    expected = expected_notebooks(course, assignment)
    students = students or course.students_with_submissions(assignment)
    if not students:
        raise CourseError(f"no submissions found in {course.folder('submitted')}/<student>/{assignment}/")
    log_dir = course.root / "reports" / "autograde-logs"
    results = []
    for student in tqdm(students, desc=f"autograde {assignment}", unit="student"):
        results.append(autograde_student(course, assignment, student, expected, log_dir))
    shutil.rmtree(course.root / STAGING, ignore_errors=True)
    return results
