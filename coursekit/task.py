"""One notebook's grading task, self-contained: everything a worker needs travels with it as bytes.

The parent (``coursekit.grading``) sanitises the notebook against the gradebook and packs a ``Task``:
the sanitised notebook, the files of autograded/<student>/<assignment> (the student's other files and
the instructor's helper package), the instructor's non-notebook files of source/<assignment>, the
settings of the worker's pipeline steps and the reference records of that notebook. A worker, local
process or cluster machine alike, builds a private course skeleton from it in a temporary folder, runs
the costly steps (sandboxed kernel, judge), returns the judged notebook and deletes the folder. It
never sees the course folder, the gradebook or another student's files, and writes nothing outside
its temporary folder, so a task can be re-run anywhere (a worker killed mid-task costs nothing).
"""
from __future__ import annotations

import copy
import hashlib
import json
import os
import shutil
import stat
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from traitlets.config import Config

SKIPPED_DIRS = ("__pycache__", ".ipynb_checkpoints")


@dataclass
class Task:
    """One notebook of one student, ready to run anywhere (picklable; paths name nothing on the host)."""

    assignment: str
    student: str
    notebook: str
    notebook_json: str  # already sanitised by the parent
    files: dict[str, bytes]  # autograded/<student>/<assignment> without notebooks: the kernel's folder
    instructor: dict[str, bytes]  # source/<assignment> without notebooks: the helper package
    helper_package: str  # its folder name ([tool.coursekit] helper_package)
    settings: Config  # configuration of the worker's steps (limits, timeouts), no course paths
    steps: list[str]  # the worker's pipeline steps, as import strings
    reference: dict[str, Any]  # {"records": grade_id -> records, "seconds": float} of this notebook
    seconds: float | None = None  # what is left of the student's time budget
    fingerprint: dict[str, str] = field(default_factory=dict)  # the parent's environment (cluster runs)


@dataclass
class Outcome:
    """What came back for one task: the judged notebook (None when it could not be graded) and problems."""

    student: str
    notebook: str
    notebook_json: str | None
    problems: list[str]
    seconds: float = 0.0


def pack(folder: Path) -> dict[str, bytes]:
    """The regular files under ``folder`` except notebooks, by relative path (links are never followed,
    as in ``coursekit.executor.scratch_copy``)."""
    files: dict[str, bytes] = {}
    for top, dirs, names in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in SKIPPED_DIRS and not os.path.islink(os.path.join(top, d))]
        for name in names:
            path = Path(top, name)
            if not name.endswith(".ipynb") and stat.S_ISREG(path.lstat().st_mode):
                files[path.relative_to(folder).as_posix()] = path.read_bytes()
    return files


def unpack(files: dict[str, bytes], folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for relative, data in files.items():
        target = (folder / relative).resolve()
        if folder.resolve() not in target.parents:
            raise ValueError(f"{relative}: a task file outside its folder")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def worker_settings(config: Config, steps: list[type]) -> Config:
    """The part of the course configuration the worker's steps read: their own sections and their base
    classes' (timeouts, sandbox limits), plus where source/ is. Course paths are left out."""
    names = {base.__name__ for cls in steps for base in cls.mro()}
    settings = Config({name: copy.deepcopy(config[name]) for name in names if name in config})
    if "source_directory" in config.get("CourseDirectory", {}):
        settings.CourseDirectory.source_directory = config.CourseDirectory.source_directory
    return settings


def _skeleton(task: Task, root: Path) -> tuple[Config, Path]:
    """A private course in ``root``: pyproject.toml naming the helper package, source/<assignment>
    with the instructor's files, the kernel's folder and this notebook's reference cache entry."""
    from coursekit.course import assignment_source
    from coursekit.preprocessors.judge_checks import JudgeChecks

    (root / "pyproject.toml").write_text(f'[tool.coursekit]\nhelper_package = "{task.helper_package}"\n')
    config = Config(copy.deepcopy(task.settings))
    config.CourseDirectory.root = str(root)
    config.CourseDirectory.db_url = f"sqlite:///{root / 'unused.db'}"  # the worker writes no gradebook
    unpack(task.instructor, assignment_source(config, task.assignment))
    folder = root / "autograded" / task.student / task.assignment
    unpack(task.files, folder)
    cache = JudgeChecks(config=config).cache_file(task.assignment, task.notebook)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(task.reference))
    return config, folder


def resources(config: Config, assignment: str, student: str, notebook: str, folder: Path,
              seconds: float | None = None) -> dict[str, Any]:
    """What nbgrader's converter hands its preprocessors for one notebook."""
    from nbgrader.coursedir import CourseDirectory

    return {"unique_key": notebook, "output_files_dir": f"{notebook}_files", "metadata": {"path": str(folder)},
            "nbgrader": {"student": student, "assignment": assignment, "notebook": notebook,
                         "db_url": CourseDirectory(config=config).db_url},
            "coursekit": {"problems": [], "seconds": seconds}}


def run_steps(steps: list[Any], config: Config, nb: Any, resources: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    for cls in steps:
        step = cls(config=config)
        if getattr(step, "enabled", True):
            nb, resources = step(nb, resources)
    return nb, resources


def _private_root(task: Task) -> Path:
    """An empty owner-only folder for one task. Its name depends only on this process and the instructor's
    files, so the trusted helper package (imported by path) is imported once per worker process, as when
    grading from the course folder; a process runs one task at a time."""
    digest = hashlib.sha256()
    for name, data in sorted(task.instructor.items()):
        digest.update(name.encode())
        digest.update(data)
    root = Path(tempfile.gettempdir()) / f"coursekit-task-{os.getpid()}-{digest.hexdigest()[:12]}"
    shutil.rmtree(root, ignore_errors=True)  # what a killed task of an earlier process with this pid left
    root.mkdir(mode=0o700)
    return root


def grade_notebook(task: Task) -> Outcome:
    """The worker part of the pipeline for one notebook. Never raises for anything the submission does."""
    from traitlets.utils.importstring import import_item

    from coursekit.preprocessors.judge_checks import ReferenceUnavailable

    started = time.monotonic()
    root = _private_root(task)
    try:
        config, folder = _skeleton(task, root)
        res = resources(config, task.assignment, task.student, task.notebook, folder, task.seconds)
        nb = nbformat.reads(task.notebook_json, as_version=4)
        nb, res = run_steps([import_item(s) for s in task.steps], config, nb, res)
    except ReferenceUnavailable as err:
        return Outcome(task.student, task.notebook, None, [f"{task.notebook}.ipynb: not graded: {err}"],
                       time.monotonic() - started)
    except Exception as err:  # nbgrader refuses the notebook's structure, or the kernel could not start
        return Outcome(task.student, task.notebook, None,
                       [f"{task.notebook}.ipynb: could not be graded ({str(err)[:160]})"], time.monotonic() - started)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    problems = [f"{task.notebook}.ipynb: {p}" for p in res["coursekit"]["problems"]]
    return Outcome(task.student, task.notebook, nbformat.writes(nb), problems, time.monotonic() - started)
