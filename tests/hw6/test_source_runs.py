"""Every instructor notebook runs top to bottom without errors (solutions and hidden tests included)."""
from __future__ import annotations

import shutil

import nbformat
import pytest
from nbclient import NotebookClient

from coursekit.testing.notebooks import SOURCE_DIR
from tests.hw6.hw6_course import NOTEBOOKS


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_source_notebook_runs_top_to_bottom(notebook, tmp_path):
    work = tmp_path / "hw6"
    shutil.copytree(SOURCE_DIR, work, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    nb = nbformat.read(str(work / f"{notebook}.ipynb"), as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(work)}}).execute()
    errors = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
              and any(o.get("output_type") == "error" for o in c.outputs)]
    assert not errors, f"{notebook}: cells {errors} raised errors"
