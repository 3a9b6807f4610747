"""The course that tests and benchmarks run against, its folders, and throwaway copies of it.

The home course is the course folder at or above the working directory, found the way the
``coursekit`` command finds it (tests and benchmarks run from the repository, which is a course).
Every path comes from its nbgrader configuration, never from where a module happens to live.
"""
from __future__ import annotations

import functools
import shutil
from pathlib import Path

from coursekit.course import Course, assignment_source, helper_dir

COPY_IGNORES = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "*.pyc")


@functools.cache
def home_course() -> Course:
    """The course around the working directory (resolved once, so a later chdir does not move it)."""
    return Course.open()


def source_dir(course: Course | None = None, assignment: str | None = None) -> Path:
    """source/<assignment> (default: the home course's default assignment, e.g. source/hw6)."""
    course = course or home_course()
    return assignment_source(course.config, assignment or course.default_assignment)


def release_dir(course: Course | None = None, assignment: str | None = None) -> Path:
    """release/<assignment>: the committed student version."""
    course = course or home_course()
    return course.folder("release", assignment or course.default_assignment)


def helper_folder(course: Course | None = None, assignment: str | None = None) -> Path:
    """The instructor's (trusted) helper package, e.g. source/hw6/hw6utils."""
    course = course or home_course()
    return helper_dir(course.config, assignment or course.default_assignment)


def grading_folder(course: Course | None = None, assignment: str | None = None) -> Path:
    """The instructor-only grading package (judges, reference implementations), e.g. source/hw6/hw6grading."""
    from coursekit.course import grading_dir

    course = course or home_course()
    return grading_dir(course.config, assignment or course.default_assignment)


def copy_course(target: Path, template: Course | None = None, *, folders: tuple[str, ...] = ("source",),
                with_data: bool = True) -> Path:
    """A throwaway course folder: config, pyproject and ``folders``/<assignment> of ``template``
    (default: the home course's source only; no gradebook), plus a copy of its surname data.

    The data is copied, not linked: the grading sandbox does not follow links out of the course.
    """
    template = template or home_course()
    assignment = template.default_assignment
    target.mkdir(parents=True, exist_ok=True)
    for name in ("nbgrader_config.py", "pyproject.toml"):
        shutil.copy(template.root / name, target / name)
    for kind in folders:
        shutil.copytree(template.folder(kind, assignment), target / kind / assignment, ignore=COPY_IGNORES)
    data = template.root / "data" / "names"  # filled by `coursekit fetch-data` (make test runs it first)
    if with_data and data.is_dir():
        shutil.copytree(data, target / "data" / "names")
    return target
