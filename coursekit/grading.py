"""`coursekit autograde`: nbgrader's own Autograde pipeline, notebooks in parallel, one gradebook writer.

The pipeline is the one in nbgrader_config.py (``c.Autograde.sanitize_preprocessors`` and
``c.Autograde.autograde_preprocessors``), so ``nbgrader autograde`` and the formgrader grade the same
way. What this module adds is what nbgrader lacks:

1. (parent) intake (``coursekit.intake``, also nbgrader's pre-convert hook) and nbgrader's own
   ``Autograde.init_assignment`` (gradebook submission, files copied into autograded/);
2. (workers, ``--jobs N``) per notebook, every pipeline step before the first one that writes the
   gradebook: sanitising, the sandboxed kernel, the judge;
3. (parent, one at a time) the remaining steps (``SaveAutoGrades``, ``AssignLatePenalties``, ...), so
   the SQLite gradebook has one writer; then a summary per student.
"""
from __future__ import annotations

import multiprocessing
import shutil
import time
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import nbformat
from tqdm import tqdm
from traitlets import Float, Integer
from traitlets.config import Config, LoggingConfigurable
from traitlets.utils.importstring import import_item

from coursekit.course import Course, CourseError
from coursekit.intake import ExpectedNotebook, expected_notebooks, inspect, make_gradable, zero_ungradable

GRADEBOOK_STEPS = ("SaveAutoGrades", "AssignLatePenalties")  # pipeline steps that write the gradebook


class Budget(LoggingConfigurable):
    """How long one student's submission may take, in wall-clock seconds, over all its notebooks."""

    factor = Float(4.0, help="A submission may take this many times the reference solution's time.").tag(config=True)
    minimum = Integer(300, help="...but never less than this many seconds.").tag(config=True)

    def seconds(self, reference_seconds: float) -> float:
        return max(float(self.minimum), self.factor * reference_seconds)


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
    """One notebook of one student, ready to run (picklable: a worker needs nothing else)."""

    course_root: str
    assignment: str
    student: str
    notebook: str
    submitted: str  # the submitted notebook file
    folder: str  # autograded/<student>/<assignment>: the files the kernel works with
    sandboxed: bool | None = None
    seconds: float | None = None  # what is left of the student's time budget


@dataclass
class Outcome:
    task: Task
    notebook_json: str | None
    problems: list[str]
    seconds: float = 0.0


# --- the pipeline from nbgrader_config.py ------------------------------------------------------------

def grading_config(course: Course, sandboxed: bool | None = None) -> Config:
    """The course's configuration, with ``--no-sandbox`` applied."""
    config = Config(course.config)
    if sandboxed is not None:
        config.SandboxedExecute.sandboxed = sandboxed
    return config


def pipeline(config: Config) -> tuple[list[Any], list[Any]]:
    """(steps a worker runs, steps the parent runs): nbgrader's sanitise and autograde steps, split at
    the first step that writes the gradebook."""
    from nbgrader.converters import Autograde

    converter = Autograde(config=config)
    steps = [*converter.sanitize_preprocessors, *converter.autograde_preprocessors]
    classes = [import_item(s) if isinstance(s, str) else s for s in steps]
    split = next((i for i, cls in enumerate(classes) if cls.__name__ in GRADEBOOK_STEPS), len(classes))
    return classes[:split], classes[split:]


def _resources(config: Config, task: Task) -> dict[str, Any]:
    """What nbgrader's converter hands its preprocessors for one notebook."""
    from nbgrader.coursedir import CourseDirectory

    return {"unique_key": task.notebook, "output_files_dir": f"{task.notebook}_files",
            "metadata": {"path": task.folder},
            "nbgrader": {"student": task.student, "assignment": task.assignment, "notebook": task.notebook,
                         "db_url": CourseDirectory(config=config).db_url},
            "coursekit": {"problems": [], "seconds": task.seconds}}


def _run(steps: list[Any], config: Config, nb: Any, resources: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    for cls in steps:
        step = cls(config=config)
        if getattr(step, "enabled", True):
            nb, resources = step(nb, resources)
    return nb, resources


def grade_notebook(task: Task) -> Outcome:
    """The worker part of the pipeline for one notebook. Never raises for anything the submission does."""
    from coursekit.preprocessors.judge_checks import ReferenceUnavailable

    started = time.monotonic()
    course = Course.open(task.course_root)
    config = grading_config(course, task.sandboxed)
    worker_steps, _ = pipeline(config)
    resources = _resources(config, task)
    try:
        nb = nbformat.read(task.submitted, as_version=4)
        nb, resources = _run(worker_steps, config, nb, resources)
    except ReferenceUnavailable as err:
        return Outcome(task, None, [f"{task.notebook}.ipynb: not graded: {err}"], time.monotonic() - started)
    except Exception as err:  # nbgrader refuses the notebook's structure, or the kernel could not start
        return Outcome(task, None, [f"{task.notebook}.ipynb: could not be graded ({str(err)[:160]})"],
                       time.monotonic() - started)
    problems = [f"{task.notebook}.ipynb: {p}" for p in resources["coursekit"]["problems"]]
    return Outcome(task, nbformat.writes(nb), problems, time.monotonic() - started)


def save_grades(course: Course, config: Config, outcome: Outcome) -> None:
    """The parent part of the pipeline: gradebook steps, then the graded notebook into autograded/."""
    _, parent_steps = pipeline(config)
    nb = nbformat.reads(outcome.notebook_json, as_version=4)
    nb, _ = _run(parent_steps, config, nb, _resources(config, outcome.task))
    nbformat.write(nb, str(Path(outcome.task.folder) / f"{outcome.task.notebook}.ipynb"))


def read_scores(course: Course, assignment: str, student: str) -> list[NotebookScore]:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(course.db_url, course.course_id) as gb:
        try:
            submission = gb.find_submission(assignment, student)
        except MissingEntry:
            return []
        return [NotebookScore(nb.name, float(nb.code_score), float(nb.max_code_score), bool(nb.needs_manual_grade))
                for nb in sorted(submission.notebooks, key=lambda n: n.name)]


# --- the whole run -----------------------------------------------------------------------------------

def references(course: Course, config: Config, assignment: str, expected: list[ExpectedNotebook]
               ) -> tuple[float, dict[str, str]]:
    """Compute (or load) every notebook's reference records once, before any student runs:
    (the reference's total seconds, notebook -> why it cannot be graded)."""
    from coursekit.preprocessors.judge_checks import JudgeChecks, ReferenceUnavailable

    judge, seconds, unavailable = JudgeChecks(config=config), 0.0, {}
    for exp in tqdm(expected, desc="reference solutions", unit="notebook"):
        try:
            seconds += judge.reference_seconds(assignment, exp.name)
        except ReferenceUnavailable as err:
            unavailable[exp.name] = str(err)
    return seconds, unavailable


def _open_submission(course: Course, config: Config, assignment: str, student: str, notebooks: list[Path]) -> None:
    """nbgrader's own set-up of a submission: gradebook entries and the files in autograded/."""
    from nbgrader.converters import Autograde

    converter = Autograde(coursedir=course.api.coursedir, config=config)
    shutil.rmtree(course.folder("autograded", student, assignment), ignore_errors=True)
    converter.notebooks = [str(p) for p in notebooks]
    converter.init_assignment(assignment, student)


def autograde(course: Course, assignment: str, students: list[str] | None = None, *, jobs: int = 1,
              sandboxed: bool | None = None) -> list[StudentResult]:
    """Autograde the given students (default: everyone with a submission folder)."""
    config = grading_config(course, sandboxed)
    try:
        expected = expected_notebooks(config, assignment)
    except LookupError as err:
        raise CourseError(str(err)) from None
    students = students or course.students_with_submissions(assignment)
    if not students:
        raise CourseError(f"no submissions found in {course.folder('submitted')}/<student>/{assignment}/")
    _check_sandbox(config)
    course.prepare_folders()
    reference_seconds, unavailable = references(course, config, assignment, expected)
    budget = Budget(config=config).seconds(reference_seconds)

    results: dict[str, StudentResult] = {}
    ungraded: dict[str, list[str]] = {}
    tasks: list[Task] = []
    for student in tqdm(students, desc="intake", unit="student", disable=len(students) < 10):
        result = results[student] = StudentResult(student=student)
        folder = course.folder("submitted", student, assignment)
        intake = inspect(folder, expected)
        try:
            make_gradable(intake, course.root, student, assignment)
            gradable = {name: path for name, path in intake.notebooks.items() if name not in unavailable}
            result.reasons.extend(intake.reasons)
            result.reasons.extend(f"{name}.ipynb: not graded: {why}" for name, why in unavailable.items())
            ungraded[student] = list(intake.ungradable)
            if gradable:
                _open_submission(course, config, assignment, student, list(gradable.values()))
        except Exception as err:  # one student's files must never stop the others
            result.reasons.append(f"could not be prepared for grading ({err.__class__.__name__}: {str(err)[:160]})")
            gradable, ungraded[student] = {}, [exp.name for exp in expected]
        tasks += [Task(str(course.root), assignment, student, name, str(path),
                       str(course.folder("autograded", student, assignment)), sandboxed, budget)
                  for name, path in sorted(gradable.items())]

    for outcome in _run_tasks(tasks, jobs, budget):
        student = outcome.task.student
        results[student].reasons.extend(outcome.problems)
        if outcome.notebook_json is not None:
            try:
                save_grades(course, config, outcome)
                continue
            except Exception as err:  # nbgrader could not match the notebook with the gradebook
                results[student].reasons.append(f"{outcome.task.notebook}.ipynb: grades not saved ({str(err)[:160]})")
        if outcome.task.notebook not in unavailable:
            ungraded[student].append(outcome.task.notebook)

    for student, result in results.items():
        zero_ungradable(config, assignment, student, ungraded[student])
        result.notebooks = read_scores(course, assignment, student)
        if len(ungraded[student]) == len(expected):
            result.status = "failed"
        elif result.reasons:
            result.status = "graded with warnings"
    return [results[s] for s in students]


def _check_sandbox(config: Config) -> None:
    """Refuse to grade when kernels cannot be sandboxed (unless told so); say when they are only partly."""
    import sys

    from coursekit import sandbox

    if not config.SandboxedExecute.get("sandboxed", True):
        return
    allow_degraded = bool(config.SandboxedExecute.get("allow_degraded", False))
    try:
        kind = sandbox.check_available(allow_degraded=allow_degraded)
    except sandbox.SandboxUnavailable as err:
        raise CourseError(f"cannot sandbox student kernels: {err}. Run as root on Linux, or pass "
                          "--no-sandbox on a machine where only trusted code is graded") from None
    if kind != "full":
        print(f"coursekit: warning: {sandbox.mode(allow_degraded=allow_degraded)}", file=sys.stderr)


def _run_tasks(tasks: list[Task], jobs: int, budget: float) -> Iterator[Outcome]:
    """Grade every task; with jobs > 1 in that many worker processes. A student's notebooks share one
    wall-clock budget: a notebook starts with what is left of it, and is skipped when nothing is."""
    used: dict[str, float] = {}
    progress = tqdm(total=len(tasks), desc="autograde", unit="notebook")

    def ready(task: Task) -> Task | Outcome:
        left = budget - used.get(task.student, 0.0)
        if left <= 0:
            return Outcome(task, None, [f"{task.notebook}.ipynb: not run: the submission used up its time budget "
                                        f"of {budget:.0f} s"])
        task.seconds = left
        return task

    def finished(outcome: Outcome) -> Outcome:
        used[outcome.task.student] = used.get(outcome.task.student, 0.0) + outcome.seconds
        progress.update()
        return outcome

    try:
        if jobs <= 1:
            for task in tasks:
                item = ready(task)
                yield finished(item if isinstance(item, Outcome) else grade_notebook(item))
            return
        context = multiprocessing.get_context("forkserver")
        with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
            queue, running = list(tasks), set[Future]()
            while queue or running:
                while queue and len(running) < jobs:
                    item = ready(queue.pop(0))
                    if isinstance(item, Outcome):
                        yield finished(item)
                    else:
                        running.add(pool.submit(grade_notebook, item))
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    yield finished(future.result())
    finally:
        progress.close()
