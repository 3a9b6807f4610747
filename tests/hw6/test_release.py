"""The committed student release: clean, complete, and exactly what nbgrader makes from source."""
from __future__ import annotations

import filecmp

import nbformat
import pytest

from coursekit.commands.release import generate_release
from coursekit.course import Course
from hw6_course import MARKERS, NOTEBOOKS, copy_course, release_notebook, secret_lines
from notebook_cells import RELEASE_DIR, SOURCE_DIR, nbgrader_meta


def test_every_source_notebook_is_released():
    assert NOTEBOOKS, "no notebooks in source/hw6"
    assert sorted(p.stem for p in RELEASE_DIR.glob("*.ipynb")) == NOTEBOOKS


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_release_has_no_solutions_hidden_tests_or_outputs(notebook):
    nb = release_notebook(notebook)
    for index, cell in enumerate(nb.cells):
        where = f"{notebook}.ipynb cell {index}"
        for marker in MARKERS:
            assert marker not in cell.source, f"{where} still contains {marker!r}"
        if cell.cell_type == "code":
            assert not cell.outputs, f"{where} has outputs"
            assert cell.execution_count is None, f"{where} has an execution count"
    text = nbformat.writes(nb)
    leaked = sorted(line for line in secret_lines(notebook) if line in text)
    assert not leaked, f"hidden test or reference answer lines in the release of {notebook}: {leaked[:3]}"


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_graded_cells_have_unique_ids_and_points(notebook):
    source = nbformat.read(str(SOURCE_DIR / f"{notebook}.ipynb"), as_version=4)
    for nb in (source, release_notebook(notebook)):
        ids = [nbgrader_meta(c)["grade_id"] for c in nb.cells if nbgrader_meta(c)]
        assert len(ids) == len(set(ids)), f"duplicate grade_id in {notebook}: {ids}"
        graded = [c for c in nb.cells if nbgrader_meta(c).get("grade")]
        assert graded, f"{notebook} has no graded cell"
        for cell in graded:
            meta = nbgrader_meta(cell)
            # optional parts may carry 0 points in the release (the course's optional_parts setting)
            optional = nb is not source and cell.metadata.get("coursekit", {}).get("optional")
            assert meta.get("points", 0) > 0 or optional, f"{notebook}: {meta['grade_id']} has no points"
            assert meta.get("schema_version") == 3


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_written_answers_are_stubs_in_the_release(notebook):
    for cell in release_notebook(notebook).cells:
        meta = nbgrader_meta(cell)
        if meta.get("solution") and cell.cell_type == "markdown":
            assert "YOUR ANSWER HERE" in cell.source, f"{notebook}: {meta['grade_id']} is not a stub"


def test_source_and_release_notebooks_have_no_outputs():
    for folder in (SOURCE_DIR, RELEASE_DIR):
        for path in folder.glob("*.ipynb"):
            nb = nbformat.read(str(path), as_version=4)
            dirty = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and (c.outputs or c.execution_count)]
            assert not dirty, f"{path} has outputs in cells {dirty}"


@pytest.mark.slow
def test_committed_release_is_what_nbgrader_generates(tmp_path):
    course = Course.open(copy_course(tmp_path / "course"))
    generate_release(course, "hw6")
    fresh = course.folder("release", "hw6")
    for notebook in NOTEBOOKS:
        ours = nbformat.read(str(RELEASE_DIR / f"{notebook}.ipynb"), as_version=4)
        theirs = nbformat.read(str(fresh / f"{notebook}.ipynb"), as_version=4)
        assert ours == theirs, f"release/hw6/{notebook}.ipynb is stale: run `make release` and commit it"
    comparison = filecmp.dircmp(RELEASE_DIR, fresh, ignore=["__pycache__", ".ipynb_checkpoints"])
    stale = []

    def walk(cmp: filecmp.dircmp, prefix: str = "") -> None:
        stale.extend(prefix + n for n in cmp.left_only + cmp.right_only + cmp.diff_files if not n.endswith(".ipynb"))
        for name, sub in cmp.subdirs.items():
            walk(sub, f"{prefix}{name}/")

    walk(comparison)
    assert not stale, f"release/hw6 differs from source in {stale}: run `make release` and commit it"


def test_readme_points_table_matches_the_notebooks():
    from coursekit.commands.points import points_table
    from notebook_cells import REPO_ROOT

    table = points_table(Course.open(REPO_ROOT), "hw6")
    assert table in (REPO_ROOT / "README.md").read_text(), \
        "README.md's points table is out of date: paste the output of `coursekit points`"
