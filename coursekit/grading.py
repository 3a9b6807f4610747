"""`coursekit autograde`: nbgrader's own Autograde pipeline, notebooks in parallel, one gradebook writer.

The pipeline is the one in nbgrader_config.py (``c.Autograde.sanitize_preprocessors`` and
``c.Autograde.autograde_preprocessors``), so ``nbgrader autograde`` and the formgrader grade the same
way. What this module adds is what nbgrader lacks:

1. (parent) intake (``coursekit.intake``, also nbgrader's pre-convert hook) and nbgrader's own
   ``Autograde.init_assignment`` (gradebook submission, files copied into autograded/), the reference
   records once per notebook;
2. (parent) per notebook, the steps before the costly ones (sanitising, which reads the gradebook),
   then a self-contained ``coursekit.task.Task``;
3. (workers: this process, ``--jobs N`` local processes, or a Dask cluster with ``--scheduler``) the
   costly steps: the sandboxed kernel and the judge;
4. (parent, one at a time) the remaining steps (``SaveAutoGrades``, ``AssignLatePenalties``, ...), so
   the gradebook has one writer; then a summary per student.
"""
from __future__ import annotations

import json
import multiprocessing
import shutil
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Protocol

import nbformat
from tqdm import tqdm
from traitlets import Float, Integer, Unicode
from traitlets.config import Config, LoggingConfigurable
from traitlets.utils.importstring import import_item

from coursekit.course import Course, CourseError, assignment_source
from coursekit.gradebook_engines import reuse_engines
from coursekit.intake import ExpectedNotebook, expected_notebooks, instructor_names, prepare, zero_ungradable
from coursekit.outcomes import save_outcome
from coursekit.task import Outcome, Task, grade_notebook, pack, resources, run_steps, worker_settings

GRADEBOOK_STEPS = ("SaveAutoGrades", "ApplyDeadlines", "AssignLatePenalties")  # pipeline steps that write the gradebook
TASK_STEPS = ("SandboxedExecute", "JudgeChecks")  # the costly steps: a task runs them (and what lies between)


class ParallelGrading(LoggingConfigurable):
    """Where notebooks are graded: this machine (``--jobs``) or a Dask cluster."""

    scheduler = Unicode("", help="Address of a Dask scheduler (tls://HOST:8786) whose `coursekit worker`s "
                                 "grade the notebooks; empty: grade on this machine.").tag(config=True)
    allowed_failures = Integer(2, help="Worker deaths a notebook's task may outlive (it is re-run elsewhere); "
                                       "one more and the notebook is not graded. Set on the scheduler when a "
                                       "run starts.").tag(config=True)
    certificates = Unicode(".coursekit/cluster", help="Folder of the cluster's TLS certificates (`coursekit "
                                                       "cluster certs`; relative to the course root): this "
                                                       "side uses ca.pem, client.pem and client.key.").tag(config=True)


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


class Results(list):
    """The StudentResults of a run, and the notebooks nobody could be graded on: notebook -> why its
    reference could not be computed (an instructor problem: the commands exit non-zero on it)."""

    def __init__(self, results: list[StudentResult], unavailable: dict[str, str] | None = None) -> None:
        super().__init__(results)
        self.unavailable = dict(unavailable or {})


# --- the pipeline from nbgrader_config.py ------------------------------------------------------------

def grading_config(course: Course, sandboxed: bool | None = None) -> Config:
    """The course's configuration, with ``--no-sandbox`` applied."""
    config = Config(course.config)
    if sandboxed is not None:
        config.SandboxedExecute.sandboxed = sandboxed
    return config


def pipeline(config: Config) -> tuple[list[Any], list[Any], list[Any]]:
    """nbgrader's sanitise and autograde steps in three parts: (parent, before the task: sanitising,
    which reads the gradebook), (the task, on a worker: from the first to the last costly step), (parent,
    after: the rest, including the steps that write the gradebook)."""
    from nbgrader.converters import Autograde

    converter = Autograde(config=config)
    steps = [*converter.sanitize_preprocessors, *converter.autograde_preprocessors]
    classes = [import_item(s) if isinstance(s, str) else s for s in steps]
    costly = [i for i, cls in enumerate(classes) if cls.__name__ in TASK_STEPS]
    if not costly:
        return [], [], classes
    first, last = costly[0], costly[-1] + 1
    writers = [cls.__name__ for cls in classes[first:last] if cls.__name__ in GRADEBOOK_STEPS]
    if writers:
        raise CourseError(f"nbgrader_config.py: {', '.join(writers)} writes the gradebook, so it must come "
                          f"after {' and '.join(TASK_STEPS)} in c.Autograde.autograde_preprocessors")
    return classes[:first], classes[first:last], classes[last:]


def save_grades(course: Course, config: Config, assignment: str, outcome: Outcome, after: list[Any]) -> None:
    """The parent's part after the task: gradebook steps, then the graded notebook into autograded/."""
    folder = course.folder("autograded", outcome.student, assignment)
    nb = nbformat.reads(outcome.notebook_json, as_version=4)
    nb, _ = run_steps(after, config, nb, resources(config, assignment, outcome.student, outcome.notebook, folder))
    nbformat.write(nb, str(folder / f"{outcome.notebook}.ipynb"))


@dataclass
class Pending:
    """A notebook waiting to become a task (tasks are packed only when they start: they hold bytes)."""

    student: str
    notebook: str
    submitted: Path


class TaskMaker:
    """The parent's side of a task: sanitise the submitted notebook, pack what the worker needs."""

    def __init__(self, course: Course, config: Config, assignment: str, reference: dict[str, dict[str, Any]],
                 fingerprint: dict[str, str] | None = None) -> None:
        self.course, self.config, self.assignment, self.reference = course, config, assignment, reference
        self.before, task_steps, self.after = pipeline(config)
        self.steps = [f"{cls.__module__}.{cls.__name__}" for cls in task_steps]
        self.settings = worker_settings(config, task_steps)
        self.instructor = pack(assignment_source(config, assignment))
        self.helper_package = course.settings["helper_package"]
        self.fingerprint = fingerprint or {}

    def __call__(self, pending: Pending, seconds: float) -> Task | Outcome:
        folder = self.course.folder("autograded", pending.student, self.assignment)
        try:
            nb = nbformat.read(str(pending.submitted), as_version=4)
            nb, _ = run_steps(self.before, self.config, nb,
                              resources(self.config, self.assignment, pending.student, pending.notebook, folder))
        except Exception as err:  # nbgrader refuses the notebook's structure
            return Outcome(pending.student, pending.notebook, None,
                           [f"{pending.notebook}.ipynb: could not be graded ({str(err)[:160]})"])
        return Task(self.assignment, pending.student, pending.notebook, nbformat.writes(nb), pack(folder),
                    self.instructor, self.helper_package, self.settings, self.steps,
                    self.reference.get(pending.notebook, {}), seconds, self.fingerprint)


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
    if not converter.notebooks:  # the intake guard refused the submission (coursekit.intake)
        raise CourseError("intake did not finish for this submission: not graded")


def autograde(course: Course, assignment: str, students: list[str] | None = None, *, jobs: int = 1,
              sandboxed: bool | None = None, scheduler: str | None = None) -> Results:
    """Autograde the given students (default: everyone with a submission folder); with a ``scheduler``
    address (or ``c.ParallelGrading.scheduler``) on a Dask cluster of ``coursekit worker``s."""
    reuse_engines()  # nbgrader's gradebook keeps its compiled SQL for the rest of this process
    config = grading_config(course, sandboxed)
    scheduler = scheduler or ParallelGrading(config=config).scheduler
    try:
        expected = expected_notebooks(config, assignment)
    except LookupError as err:
        raise CourseError(str(err)) from None
    students = students or course.students_with_submissions(assignment)
    if not students:
        raise CourseError(f"no submissions found in {course.folder('submitted')}/<student>/{assignment}/")
    _check_sandbox(config)
    runner = _runner(config, jobs, scheduler)  # first: an unreachable or mismatched cluster fails fast
    try:
        return _autograde(course, config, assignment, students, expected, runner)
    finally:
        runner.close()


def _runner(config: Config, jobs: int, scheduler: str | None) -> Runner:
    if scheduler:
        from coursekit.cluster import ClusterRunner

        settings = ParallelGrading(config=config)
        certificates = Path(config.CourseDirectory.root) / settings.certificates  # an absolute setting wins
        return ClusterRunner(scheduler, settings.allowed_failures, certificates)
    return LocalRunner(jobs)


def _autograde(course: Course, config: Config, assignment: str, students: list[str], expected: list[ExpectedNotebook],
               runner: Runner) -> Results:
    course.prepare_folders()
    reference_seconds, unavailable = references(course, config, assignment, expected)
    budget = Budget(config=config).seconds(reference_seconds)

    results: dict[str, StudentResult] = {}
    ungraded: dict[str, list[str]] = {}
    pending: list[Pending] = []
    trusted = instructor_names(assignment_source(config, assignment))
    for student in tqdm(students, desc="intake", unit="student", disable=len(students) < 10):
        result = results[student] = StudentResult(student=student)
        folder = course.folder("submitted", student, assignment)
        intake = prepare(folder, expected, course.root, student, assignment, trusted)  # never raises; fails closed
        try:
            gradable = {name: path for name, path in intake.notebooks.items() if name not in unavailable}
            result.reasons.extend(intake.reasons)
            result.reasons.extend(f"{name}.ipynb: not graded: {why}" for name, why in unavailable.items())
            ungraded[student] = list(intake.ungradable)
            if gradable:
                _open_submission(course, config, assignment, student, list(gradable.values()))
        except Exception as err:  # one student's files must never stop the others
            result.reasons.append(f"could not be prepared for grading ({err.__class__.__name__}: {str(err)[:160]})")
            gradable, ungraded[student] = {}, [exp.name for exp in expected]
        pending += [Pending(student, name, path) for name, path in sorted(gradable.items())]

    reference = _reference_entries(config, assignment, [e.name for e in expected if e.name not in unavailable])
    make_task = TaskMaker(course, config, assignment, reference, runner.fingerprint)
    for outcome in _run_tasks(pending, runner, budget, make_task):
        student = outcome.student
        results[student].reasons.extend(outcome.problems)
        if outcome.notebook_json is not None:
            try:
                save_grades(course, config, assignment, outcome, make_task.after)
                continue
            except Exception as err:  # nbgrader could not match the notebook with the gradebook
                results[student].reasons.append(f"{outcome.notebook}.ipynb: grades not saved ({str(err)[:160]})")
        if outcome.notebook not in unavailable:
            ungraded[student].append(outcome.notebook)

    for student, result in results.items():
        zero_ungradable(config, assignment, student, ungraded[student])
        result.notebooks = read_scores(course, assignment, student)
        if len(ungraded[student]) == len(expected):
            result.status = "failed"
        elif result.reasons:
            result.status = "graded with warnings"
        save_outcome(course, assignment, student, result.status, result.reasons)
    return Results([results[s] for s in students], unavailable)


def _reference_entries(config: Config, assignment: str, notebooks: list[str]) -> dict[str, dict[str, Any]]:
    """notebook -> its cached reference entry ({"records", "seconds"}), shipped with its tasks."""
    from coursekit.preprocessors.judge_checks import JudgeChecks

    judge = JudgeChecks(config=config)
    return {name: json.loads(judge.cache_file(assignment, name).read_text()) for name in notebooks}


def _check_sandbox(config: Config) -> None:
    """Refuse to grade when kernels cannot be sandboxed (unless told so); say when they are only partly."""
    import sys

    from coursekit import sandbox

    if not config.SandboxedExecute.get("sandboxed", True):
        return
    allow_degraded = config.SandboxedExecute.get("allow_degraded")  # None: the environment decides
    try:
        kind = sandbox.check_available(allow_degraded=allow_degraded)
    except sandbox.SandboxUnavailable as err:
        raise CourseError(f"cannot sandbox student kernels: {err}. Run as root on Linux, or pass "
                          "--no-sandbox on a machine where only trusted code is graded") from None
    if kind != "full":
        print(f"coursekit: warning: {sandbox.mode(allow_degraded=allow_degraded)}", file=sys.stderr)
    try:  # before any student: a course, data or Python environment the sandbox's user cannot use
        sandbox.check_layout(config.SandboxedExecute.get("read_only", []), allow_degraded=allow_degraded)
    except sandbox.SandboxUnavailable as err:
        raise CourseError(f"cannot sandbox student kernels here: {err}") from None


# --- where tasks run -----------------------------------------------------------------------------------

class Runner(Protocol):
    """Runs tasks somewhere: ``submit`` returns a future, ``outcome`` turns a finished one into an Outcome."""

    fingerprint: dict[str, str] | None

    def slots(self) -> int: ...
    def submit(self, task: Task) -> Any: ...
    def wait(self, futures: set[Any]) -> set[Any]: ...
    def outcome(self, future: Any, task: Task) -> Outcome: ...
    def close(self) -> None: ...


# What a pool worker imports to grade (about 2 CPU-s): imported once by the forkserver that every worker is
# forked from, instead of once per worker. A process that grades again (a test session) reuses the forkserver.
WORKER_MODULES = ["coursekit.task", "coursekit.preprocessors", "nbgrader.preprocessors"]


class LocalRunner:
    """This process (jobs <= 1) or a pool of ``jobs`` local worker processes."""

    fingerprint = None

    def __init__(self, jobs: int) -> None:
        self.jobs = max(1, jobs)
        self.pool = None
        if self.jobs > 1:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(WORKER_MODULES)  # takes effect when the forkserver starts
            self.pool = ProcessPoolExecutor(max_workers=self.jobs, mp_context=context)

    def slots(self) -> int:
        return self.jobs

    def submit(self, task: Task) -> Future:
        if self.pool is not None:
            return self.pool.submit(grade_notebook, task)
        future: Future = Future()
        future.set_result(grade_notebook(task))
        return future

    def wait(self, futures: set[Any]) -> set[Any]:
        return wait(futures, return_when=FIRST_COMPLETED).done

    def outcome(self, future: Any, task: Task) -> Outcome:
        return future.result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _run_tasks(pending: list[Pending], runner: Runner, budget: float,
               make_task: Callable[[Pending, float], Task | Outcome]) -> Iterator[Outcome]:
    """Grade every pending notebook, at most ``runner.slots()`` at a time. A student's notebooks share one
    wall-clock budget: a notebook starts with what is left of it, and is skipped when nothing is."""
    used: dict[str, float] = {}
    progress = tqdm(total=len(pending), desc="autograde", unit="notebook")

    def finished(outcome: Outcome) -> Outcome:
        used[outcome.student] = used.get(outcome.student, 0.0) + outcome.seconds
        progress.update()
        return outcome

    queue, running = list(pending), dict[Any, Task]()
    try:
        while queue or running:
            while queue and len(running) < runner.slots():
                item = queue.pop(0)
                left = budget - used.get(item.student, 0.0)
                if left <= 0:
                    yield finished(Outcome(item.student, item.notebook, None, [
                        f"{item.notebook}.ipynb: not run: the submission used up its time budget of {budget:.0f} s"]))
                    continue
                task = make_task(item, left)
                if isinstance(task, Outcome):
                    yield finished(task)
                else:
                    running[runner.submit(task)] = task
            if running:
                for future in runner.wait(set(running)):
                    yield finished(runner.outcome(future, running.pop(future)))
    finally:
        progress.close()
