"""Every instructor notebook runs top to bottom without errors (solutions and hidden tests included)."""
from __future__ import annotations

import nbformat
import pytest

from tests.hw6.hw6_course import NOTEBOOKS
from tests.support.executed_sources import executed


@pytest.mark.slow
@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_source_notebook_runs_top_to_bottom(notebook, tmp_path_factory):
    nb = nbformat.read(str(executed(tmp_path_factory, notebook) / f"{notebook}.ipynb"), as_version=4)
    errors = [i for i, c in enumerate(nb.cells) if c.cell_type == "code"
              and any(o.get("output_type") == "error" for o in c.outputs)]
    assert not errors, f"{notebook}: cells {errors} raised errors"
    assert all(c.get("execution_count") for c in nb.cells if c.cell_type == "code" and c.source.strip()), \
        f"{notebook}: not every code cell ran"
