"""Shared pieces for the hw6 notebook tests: notebook discovery, nbgrader metadata, hidden lines.

(A throwaway copy of the course is ``coursekit.testing.courses.copy_course``.)
"""
from __future__ import annotations

import nbformat

from coursekit.testing.notebooks import RELEASE_DIR, SOURCE_DIR, nbgrader_meta

NOTEBOOKS = sorted(p.stem for p in SOURCE_DIR.glob("*.ipynb"))
MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS",
           "BEGIN MARK SCHEME", "END MARK SCHEME")


def split_regions(source: str, begin: str, end: str) -> tuple[list[str], list[str]]:
    """(lines inside ``### begin`` ... ``### end`` regions, lines outside them), stripped."""
    inside, secret, public = False, [], []
    for line in source.splitlines():
        if begin in line:
            inside = True
        elif end in line:
            inside = False
        else:
            (secret if inside else public).append(line.strip())
    return secret, public


def secret_lines(notebook: str, *, answers: bool = True) -> set[str]:
    """Distinctive lines of the hidden tests (and, with ``answers``, the written reference answers)
    of a source notebook.

    Lines that also appear outside those regions (e.g. ``import torch``) or are short are left out,
    so that their presence in a release or feedback really means a leak.
    """
    nb = nbformat.read(str(SOURCE_DIR / f"{notebook}.ipynb"), as_version=4)
    secret, public = set(), set()
    for cell in nb.cells:
        if cell.cell_type == "markdown" and nbgrader_meta(cell).get("solution"):
            if not answers:
                continue
            inside, outside = split_regions(cell.source, "BEGIN SOLUTION", "END SOLUTION")
        else:
            inside, outside = split_regions(cell.source, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
        secret.update(inside)
        public.update(outside)
    return {line for line in secret - public if len(line) >= 16 and not line.startswith("#")}


def release_notebook(notebook: str) -> nbformat.NotebookNode:
    return nbformat.read(str(RELEASE_DIR / f"{notebook}.ipynb"), as_version=4)
