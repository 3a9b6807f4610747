"""Shared pieces for the hw6 notebook tests: notebook discovery, nbgrader metadata, hidden lines."""
from __future__ import annotations

import shutil
from pathlib import Path

import nbformat

from notebook_cells import RELEASE_DIR, REPO_ROOT, SOURCE_DIR, nbgrader_meta

NOTEBOOKS = sorted(p.stem for p in SOURCE_DIR.glob("*.ipynb"))
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
           "BEGIN MARK SCHEME", "END MARK SCHEME")


def copy_course(target: Path) -> Path:
    """A throwaway course folder: config, pyproject and source/hw6 (no release, no gradebook)."""
    target.mkdir(parents=True, exist_ok=True)
    for name in ("nbgrader_config.py", "pyproject.toml"):
        shutil.copy(REPO_ROOT / name, target / name)
    shutil.copytree(SOURCE_DIR, target / "source" / "hw6",
                    ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints", "*.pyc"))
    return target


def region_lines(source: str, begin: str, end: str) -> list[str]:
    """Lines strictly inside ``### begin`` ... ``### end`` regions of a cell source."""
    inside, lines = False, []
    for line in source.splitlines():
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        elif inside:
            lines.append(line)
    return lines


def secret_lines(notebook: str) -> set[str]:
    """Distinctive lines of the hidden tests and written reference answers of a source notebook.

    Lines that also appear outside those regions (e.g. ``import torch``) or are short are left out,
    so that their presence in a release or feedback really means a leak.
    """
    nb = nbformat.read(str(SOURCE_DIR / f"{notebook}.ipynb"), as_version=4)
    secret, public = set(), set()
    for cell in nb.cells:
        meta = nbgrader_meta(cell)
        hidden = region_lines(cell.source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
        answer = (region_lines(cell.source, "BEGIN SOLUTION", "END SOLUTION")
                  if cell.cell_type == "markdown" and meta.get("solution") else [])
        secret.update(line.strip() for line in hidden + answer)
        public.update(line.strip() for line in cell.source.splitlines()
                      if line not in hidden and line not in answer)
    return {line for line in secret - public if len(line) >= 16 and not line.startswith("#")}


def release_notebook(notebook: str) -> nbformat.NotebookNode:
    return nbformat.read(str(RELEASE_DIR / f"{notebook}.ipynb"), as_version=4)
