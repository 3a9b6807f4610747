"""Autograde submissions: preflight, sandboxed execution, verdicts outside the kernel, gradebook.

The work is split so that nothing a submission does can reach another submission or the grades:

1. (parent) ``preflight`` stages what can be graded and records the submission in the gradebook;
2. (workers, ``--jobs N`` in parallel) each notebook is sanitised with nbgrader's own preprocessors
   (test cells restored from the gradebook, outputs cleared, kernelspec reset), run by
   ``coursekit.executor`` in a sandboxed kernel, and judged by ``coursekit.verdicts`` against the
   reference solution's records;
3. (parent, one at a time) nbgrader's ``SaveAutoGrades`` and ``AssignLatePenalties`` write the
   scores, so the SQLite gradebook only ever has one writer.
"""
from __future__ import annotations

import json
import multiprocessing
import shutil
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import nbformat
from tqdm import tqdm

from coursekit import sandbox
from coursekit.course import Course, CourseError
from coursekit.executor import ExecutionSettings, execute, scratch_copy
from coursekit.preflight import ExpectedNotebook, check_submission
from coursekit.verdicts import apply_verdicts, fingerprint, is_test_cell, load_checks_module, \
    reference_records, save_records

STAGING = Path(".coursekit") / "staging"
REFERENCE_CACHE = Path(".coursekit") / "reference"


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


@dataclass
class Task:
    """One notebook of one student, ready to run (everything a worker process needs, picklable)."""

    course_root: str
    assignment: str
    student: str
    notebook: str
    staged: str
    folder: str  # autograded/<student>/<assignment>: the files the kernel works with
    reference: dict[str, list[dict[str, Any]]]


@dataclass
class Outcome:
    task: Task
    notebook_json: str | None
    problems: list[str]


# --- settings and reference records ---------------------------------------------------------------

def execution_settings(course: Course, sandboxed: bool | None = None) -> ExecutionSettings:
    """Execution settings from nbgrader_config.py (``c.Sandbox.*``, ``c.Execute.timeout``)."""
    section = course.config.get("Sandbox", {})
    limits = ExecutionSettings().limits
    for key in ("cpu_seconds", "memory_bytes", "max_processes", "max_file_bytes", "open_files"):
        if key in section:
            setattr(limits, key, int(section[key]))
    settings = ExecutionSettings(
        limits=limits,
        sandboxed=bool(section.get("enabled", True)) if sandboxed is None else sandboxed,
        cell_timeout=int(course.config.get("Execute", {}).get("timeout", 300)),
        notebook_timeout=int(section.get("notebook_timeout", 900)),
        max_output_bytes=int(section.get("max_output_bytes", 2_000_000)),
        hidden=(str(course.root), *section.get("hidden", ())),
        read_only=tuple(str(p) for p in section.get("read_only", ()) if Path(p).exists()),
        environment=dict(section.get("environment", {})),
    )
    if settings.sandboxed:
        try:
            sandbox.check_available()
        except sandbox.SandboxUnavailable as err:
            raise CourseError(f"cannot sandbox student kernels: {err}. Run as root on Linux, or pass "
                              "--no-sandbox on a machine where only trusted code is graded") from None
    return settings


def helper_dir(course: Course, assignment: str) -> Path:
    return course.folder("source", assignment, course.settings["helper_package"])


def _reference_fingerprint(course: Course, assignment: str, notebook: str) -> str:
    source = course.folder("source", assignment)
    helpers = [p for p in source.rglob("*") if p.is_file() and p.suffix != ".ipynb" and "__pycache__" not in p.parts]
    return fingerprint([source / f"{notebook}.ipynb", *helpers])


def reference_for(course: Course, assignment: str, notebook: str, settings: ExecutionSettings
                  ) -> dict[str, list[dict[str, Any]]]:
    """The check records of the instructor's solution for one notebook (computed once, cached).

    The source notebook is run exactly like a student's (same sandbox, same environment), so that
    numbers such as training losses are comparable.
    """
    cache = course.root / REFERENCE_CACHE / assignment / f"{notebook}-{_reference_fingerprint(course, assignment, notebook)}.json"
    if cache.is_file():
        return json.loads(cache.read_text())
    source = course.folder("source", assignment)
    nb = nbformat.read(str(source / f"{notebook}.ipynb"), as_version=4)
    workdir = scratch_copy(source)
    try:
        report = execute(nb, workdir, settings)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    failed = [c.metadata["nbgrader"]["grade_id"] for c in nb.cells if is_test_cell(c)
              and any(o.get("output_type") == "error" for o in c.outputs)]
    if report.problems or failed:
        raise CourseError(f"the reference solution of {notebook}.ipynb does not pass its own tests "
                          f"({'; '.join(report.problems) or 'failing: ' + ', '.join(failed)})")
    records = reference_records(nb)
    save_records(cache, records)
    return records


def _with_uid(settings: ExecutionSettings, uid: int) -> ExecutionSettings:
    return replace(settings, uid=uid)


# --- the gradebook side (parent process only) -------------------------------------------------------

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
        tests = ({c.metadata["nbgrader"]["grade_id"]: c for c in nbformat.read(str(released), as_version=4).cells
                  if is_test_cell(c)} if released.is_file() else {})
        expected.append(ExpectedNotebook(name=name, grade_ids=frozenset(grade_ids),
                                         test_checksums={gid: compute_checksum(c) for gid, c in tests.items()}))
    return expected


def _open_submission(course: Course, assignment: str, student: str, staged_folder: Path) -> None:
    from nbgrader.api import Gradebook

    timestamp = course.api.coursedir.get_existing_timestamp(str(staged_folder))
    with Gradebook(course.db_url, course.course_id) as gb:
        gb.update_or_create_student(student)
        if timestamp:
            gb.update_or_create_submission(assignment, student, timestamp=timestamp)
        else:
            gb.update_or_create_submission(assignment, student)


def _fill_autograded_folder(course: Course, assignment: str, staged: Path, target: Path) -> None:
    """autograded/<student>/<assignment>: the student's other files, then the instructor's (which win)."""
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for folder in (staged, course.folder("source", assignment)):
        for item in folder.iterdir():
            if item.suffix == ".ipynb" or item.is_symlink() or item.name in ("__pycache__", ".ipynb_checkpoints"):
                continue
            dest = target / item.name
            if dest.is_dir():
                shutil.rmtree(dest)
            if item.is_dir():
                shutil.copytree(item, dest, symlinks=False, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(item, dest)


def _resources(course: Course, task: Task) -> dict[str, Any]:
    return {"unique_key": task.notebook, "output_files_dir": f"{task.notebook}_files",
            "metadata": {"path": task.folder},
            "nbgrader": {"student": task.student, "assignment": task.assignment, "notebook": task.notebook,
                         "db_url": course.db_url}}


def _save_grades(course: Course, outcome: Outcome) -> None:
    from nbgrader.preprocessors import AssignLatePenalties, CheckCellMetadata, SaveAutoGrades

    nb = nbformat.reads(outcome.notebook_json, as_version=4)
    resources = _resources(course, outcome.task)
    for pp in (SaveAutoGrades, AssignLatePenalties, CheckCellMetadata):
        nb, resources = pp(config=course.config).preprocess(nb, resources)
    nbformat.write(nb, str(Path(outcome.task.folder) / f"{outcome.task.notebook}.ipynb"))


def _zero_ungraded(course: Course, assignment: str, student: str, notebooks: list[str]) -> None:
    """Record 0 for the autograder tests of notebooks that could not be run (manual grades stay)."""
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url, course.course_id) as gb:
        submission = gb.update_or_create_submission(assignment, student)
        for nb in submission.notebooks:
            if nb.name in notebooks:
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


# --- the worker side --------------------------------------------------------------------------------

_worker_settings: ExecutionSettings | None = None


def _init_worker(settings: ExecutionSettings) -> None:
    global _worker_settings
    _worker_settings = _with_uid(settings, sandbox.claim_uid()) if settings.sandboxed else settings


def grade_notebook(task: Task, settings: ExecutionSettings | None = None) -> Outcome:
    """Sanitise, execute and judge one notebook. Never raises for anything the submission does."""
    from nbgrader.preprocessors import (CheckCellMetadata, ClearOutput, DeduplicateIds, LimitOutput,
                                        OverwriteCells, OverwriteKernelspec)

    settings = settings or _worker_settings
    course = Course.open(task.course_root)
    problems: list[str] = []
    try:
        nb = nbformat.read(task.staged, as_version=4)
        resources = _resources(course, task)
        for pp in (ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, CheckCellMetadata):
            nb, resources = pp(config=course.config).preprocess(nb, resources)
    except Exception as err:  # nbgrader refuses the notebook's structure
        return Outcome(task, None, [f"{task.notebook}.ipynb: could not be prepared for grading ({str(err)[:160]})"])

    workdir = scratch_copy(Path(task.folder))
    try:
        report = execute(nb, workdir, settings)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    problems += [f"{task.notebook}.ipynb: {p}" for p in report.problems]

    checks = load_checks_module(helper_dir(course, task.assignment))
    legacy = {gid for gid, records in task.reference.items() if not records}
    judged = {gid: r for gid, r in task.reference.items() if gid not in legacy}
    apply_verdicts(nb, judged, checks.compare, skip=legacy, credit=getattr(checks, "partial_credit", None))
    nb, _ = LimitOutput(config=course.config).preprocess(nb, resources)
    return Outcome(task, nbformat.writes(nb), problems)


# --- the whole run ----------------------------------------------------------------------------------

def autograde(course: Course, assignment: str, students: list[str] | None = None, *, jobs: int = 1,
              sandboxed: bool | None = None) -> list[StudentResult]:
    """Autograde the given students (default: everyone with a submission folder)."""
    expected = expected_notebooks(course, assignment)
    students = students or course.students_with_submissions(assignment)
    if not students:
        raise CourseError(f"no submissions found in {course.folder('submitted')}/<student>/{assignment}/")
    settings = execution_settings(course, sandboxed)
    if settings.sandboxed:
        settings = _with_uid(settings, sandbox.claim_uid())  # for the reference runs and jobs=1
    references = {nb.name: reference_for(course, assignment, nb.name, settings)
                  for nb in tqdm(expected, desc="reference solutions", unit="notebook")}

    results: dict[str, StudentResult] = {}
    tasks: list[Task] = []
    ungraded: dict[str, list[str]] = {}
    for student in students:
        result = results[student] = StudentResult(student=student)
        staging = course.root / STAGING / student / assignment
        check = check_submission(student, course.folder("submitted", student, assignment), expected, staging)
        result.reasons.extend(check.reasons)
        ungraded[student] = list(check.missing)
        _open_submission(course, assignment, student, staging)
        folder = course.folder("autograded", student, assignment)
        _fill_autograded_folder(course, assignment, staging, folder)
        tasks += [Task(str(course.root), assignment, student, name, str(path), str(folder), references[name])
                  for name, path in sorted(check.staged.items())]

    for outcome in _run_tasks(tasks, settings, jobs):
        student = outcome.task.student
        results[student].reasons.extend(outcome.problems)
        if outcome.notebook_json is not None:
            try:
                _save_grades(course, outcome)
                continue
            except Exception as err:  # nbgrader could not match the notebook with the gradebook
                results[student].reasons.append(f"{outcome.task.notebook}.ipynb: grades not saved ({str(err)[:160]})")
        ungraded[student].append(outcome.task.notebook)

    for student, result in results.items():
        _zero_ungraded(course, assignment, student, ungraded[student])
        result.notebooks = read_scores(course, assignment, student)
        if len(ungraded[student]) == len(expected):
            result.status = "failed"
        elif result.reasons:
            result.status = "graded with warnings"
    shutil.rmtree(course.root / STAGING, ignore_errors=True)
    return [results[s] for s in students]


def _run_tasks(tasks: list[Task], settings: ExecutionSettings, jobs: int):
    """Yield outcomes in task order; with jobs > 1, notebooks run in that many worker processes."""
    progress = tqdm(total=len(tasks), desc="autograde", unit="notebook")
    if jobs <= 1:
        for task in tasks:
            yield grade_notebook(task, settings)
            progress.update()
    else:
        context = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_init_worker,
                                 initargs=(settings,)) as pool:
            futures = [pool.submit(grade_notebook, task) for task in tasks]
            for future in futures:
                yield future.result()
                progress.update()
    progress.close()
