"""Run pieces of a course's instructor notebooks in-process (inside pytest or a benchmark).

Tests use this to execute the reference solution cells of a source notebook, or to run one of its
(hidden) test cells against a deliberately wrong implementation and check that it fails. Notebooks are
named relative to the home course's source folder (``SOURCE_DIR``, see ``coursekit.testing.courses``).
"""
from __future__ import annotations

import functools
import importlib
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any, Iterator

import nbformat

from coursekit.notebook import is_test_cell, nbgrader_meta  # noqa: F401  (the one rule; tests import it from here)
from coursekit.optional import marks_figure
from coursekit.testing import courses


def __getattr__(name: str) -> Path:
    """``SOURCE_DIR`` and ``RELEASE_DIR`` of the home course, looked up when first asked for (so that
    importing this module works anywhere, and the course comes from its configuration)."""
    if name == "SOURCE_DIR":
        return courses.source_dir()
    if name == "RELEASE_DIR":
        return courses.release_dir()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def load(path: str | Path) -> nbformat.NotebookNode:
    """A notebook file, as nbformat version 4."""
    return nbformat.read(str(path), as_version=4)


def cell_by_grade_id(nb: nbformat.NotebookNode, grade_id: str) -> nbformat.NotebookNode:
    """The cell whose nbgrader grade_id is ``grade_id`` (KeyError if there is none)."""
    for cell in nb.cells:
        if nbgrader_meta(cell).get("grade_id") == grade_id:
            return cell
    raise KeyError(f"no cell with grade_id {grade_id!r}")


def runnable_source(source: str) -> str:
    """Cell source without IPython magics and shell escapes (plain Python for exec)."""
    return "\n".join(line for line in source.splitlines() if not line.lstrip().startswith(("%", "!")))


@contextmanager
def working_directory(path: Path) -> Iterator[None]:
    """Run with ``path`` as the working directory (test cells read files relative to their notebook)."""
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


@contextmanager
def kernel_started_in(folder: Path) -> Iterator[None]:
    """Run code the way a kernel started in ``folder`` would see the world: ``folder`` is the working
    directory and comes first on ``sys.path`` (so a notebook's ``import hw6utils`` finds the helper
    package beside it). The one place in the tests and benchmarks that changes ``sys.path``;
    both are restored afterwards."""
    entry = str(folder)
    with working_directory(folder):
        sys.path.insert(0, entry)
        try:
            yield
        finally:
            sys.path.remove(entry)


def solution_namespace(notebook: str, *, until_grade_id: str | None = None, skip_tests: bool = True,
                       skip_grade_ids: tuple[str, ...] = (), figures: bool = False) -> dict[str, Any]:
    """Execute the code cells of a source notebook (reference solution) and return its namespace.

    Stops before the cell ``until_grade_id``; test cells are skipped unless ``skip_tests`` is False, and
    figure cells unless ``figures`` is True (as the grader leaves them out by default: they define nothing
    later cells read, see coursekit.optional). Runs as a kernel started in the notebook's folder would
    (``kernel_started_in``), so ``import hw6utils`` works.
    """
    source_dir = courses.source_dir()
    nb = load(source_dir / notebook)
    namespace: dict[str, Any] = {"__name__": "__main__"}
    with kernel_started_in(source_dir):
        for cell in nb.cells:
            meta = nbgrader_meta(cell)
            if until_grade_id is not None and meta.get("grade_id") == until_grade_id:
                break
            if cell.cell_type != "code" or meta.get("grade_id") in skip_grade_ids:
                continue
            if (skip_tests and is_test_cell(cell)) or (not figures and marks_figure(cell)):
                continue
            exec(compile(runnable_source(cell.source), f"<{notebook}:{meta.get('grade_id', 'cell')}>", "exec"),
                 namespace)
    return namespace


def helper_module(name: str) -> ModuleType:
    """A module of the helper package as the notebooks' cells import it (``import hw6utils.<name>``: the
    copy in sys.modules that solution cells and test cells share), e.g. ``helper_module("checks")``."""
    folder = courses.helper_folder()
    with kernel_started_in(folder.parent):
        return importlib.import_module(f"{folder.name}.{name}")


def checks_module() -> ModuleType:
    """The helper package's checks module as the notebooks' test cells import it."""
    return helper_module("checks")


def trusted_judges():
    """The grader's judge resolver: instructor-only grading package first, then the helper package."""
    from coursekit.helpers import judge_resolver

    return judge_resolver(courses.grading_folder(), courses.helper_folder())


def trusted_checks() -> ModuleType:
    """The instructor's checks module as the grader loads it (judges resolve in that package)."""
    from coursekit.helpers import trusted_module

    return trusted_module(courses.helper_folder(), "checks")


BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def hidden_section(notebook: str, grade_id: str) -> str:
    """The hidden-test part of a test cell (ValueError if the cell has none)."""
    source = cell_by_grade_id(load(courses.source_dir() / notebook), grade_id).source
    if BEGIN_HIDDEN not in source:
        raise ValueError(f"{notebook}:{grade_id} has no hidden tests")
    return source.split(BEGIN_HIDDEN, 1)[1].split(END_HIDDEN, 1)[0]


def test_cell_records(notebook: str, grade_id: str, namespace: dict[str, Any], hidden_only: bool = False
                      ) -> tuple[list[dict[str, Any]], BaseException | None]:
    """Run one test cell (or only its hidden section) in record mode, as the grader does:
    (published check records, error or None)."""
    cell = cell_by_grade_id(load(courses.source_dir() / notebook), grade_id)
    if not is_test_cell(cell):
        raise ValueError(f"{grade_id!r} is not a test cell")
    source = hidden_section(notebook, grade_id) if hidden_only else cell.source
    label = f"<{notebook}:{grade_id}{':hidden' if hidden_only else ''}>"
    record_format = helper_module("records")
    record_format.recorder = []
    error = None
    try:
        with working_directory(courses.source_dir()):
            exec(compile(runnable_source(source), label, "exec"), namespace)
    except Exception as err:  # the student's code may raise anything
        error = err
    finally:
        records, record_format.recorder = record_format.recorder, None
    return records, error


@functools.lru_cache(maxsize=None)
def reference_records(notebook: str, grade_id: str, hidden_only: bool = False) -> tuple[dict[str, Any], ...]:
    """The records the reference solution publishes for one test cell (or its hidden section):
    what the grader compares with."""
    records, error = test_cell_records(notebook, grade_id, solution_namespace(notebook, until_grade_id=grade_id),
                                       hidden_only)
    if error is not None:
        part = "the hidden part of " if hidden_only else ""
        raise RuntimeError(f"the reference solution fails {part}{notebook}:{grade_id}: {error!r}")
    return tuple(records)


def run_test_cell(notebook: str, grade_id: str, namespace: dict[str, Any], hidden_only: bool = False,
                  reference: list[dict[str, Any]] | None = None) -> None:
    """Grade one test cell of a source notebook (hidden checks included; or ``hidden_only``) against
    ``namespace`` the way the grader does: records compared with the reference solution's records,
    outside the code under test. Raises AssertionError naming the failed checks if rejected.
    A cell that publishes no checks is simply run (its asserts decide).
    """
    from coursekit.verdicts import judge_cell

    if reference is None:
        reference = list(reference_records(notebook, grade_id, hidden_only))
    records, error = test_cell_records(notebook, grade_id, namespace, hidden_only)
    if not reference:  # a test cell that asserts directly instead of publishing checks
        if error is not None:
            raise error
        return
    reasons, _ = judge_cell(reference, records, trusted_checks(), trusted_judges())
    if reasons:
        part = " (hidden part)" if hidden_only else ""
        raise AssertionError(f"{grade_id}{part}: " + "; ".join(reasons)) from error
