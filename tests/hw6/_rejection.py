"""Helpers for proving that a notebook's test cells reject a deliberately wrong implementation.

`assert_rejected` runs a whole test cell (visible + hidden, via notebook_cells.run_test_cell) and
then the hidden section on its own, each in a fresh copy of the namespace, and requires both to
raise AssertionError: so the hidden tests reject the implementation by themselves.
"""
from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402

from notebook_cells import (SOURCE_DIR, cell_by_grade_id, load, run_test_cell,  # noqa: E402
                            runnable_source, working_directory)

BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def hidden_section(notebook: str, grade_id: str) -> str:
    """The hidden-test part of a test cell (fails the test if the cell has none)."""
    source = cell_by_grade_id(load(SOURCE_DIR / notebook), grade_id).source
    if BEGIN_HIDDEN not in source:
        pytest.fail(f"{notebook}:{grade_id} has no hidden tests")
    return source.split(BEGIN_HIDDEN, 1)[1].split(END_HIDDEN, 1)[0]


def run_hidden_only(notebook: str, grade_id: str, namespace: dict[str, Any]) -> None:
    """Execute only the hidden tests of a test cell in ``namespace``."""
    with working_directory(SOURCE_DIR):
        exec(compile(runnable_source(hidden_section(notebook, grade_id)), f"<{notebook}:{grade_id}:hidden>", "exec"),
             namespace)


def assert_rejected(notebook: str, grade_ids: list[str], reference: dict[str, Any], **wrong: Any) -> None:
    """Each cell in ``grade_ids`` (whole cell, and its hidden section alone) fails with ``wrong`` swapped in."""
    for grade_id in grade_ids:
        for runner in (run_test_cell, run_hidden_only):
            namespace = dict(reference, **wrong)
            with pytest.raises(AssertionError):
                runner(notebook, grade_id, namespace)


def assert_accepted(notebook: str, grade_ids: list[str], reference: dict[str, Any], **impl: Any) -> None:
    """Each cell in ``grade_ids`` passes with ``impl`` swapped into the reference namespace."""
    for grade_id in grade_ids:
        run_test_cell(notebook, grade_id, dict(reference, **impl))
