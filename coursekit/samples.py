"""Sample submissions built from source/ and release/, so they always match the notebooks.

- ``reference``: the release with every answer cell filled in from the instructor's solution.
- ``untouched``: the release exactly as students receive it.
- ``partial``:   the release with the first half of each notebook's code answers filled in.
- ``messy``:     the reference, but one notebook renamed, one not valid JSON, one with a test cell
                 deleted and one missing: shows that broken input is graded, not fatal.
"""
from __future__ import annotations

import shutil
from pathlib import Path
import nbformat

from coursekit.course import Course, CourseError
from coursekit.notebook import grade_id, is_answer_cell, is_test_cell

SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
SAMPLE_STUDENTS = ("reference", "untouched", "partial", "messy")


def solution_text(source_cell) -> str:
    """The cell as a student who wrote the reference answer would have it (no solution markers)."""
    return "\n".join(line for line in source_cell.source.splitlines()
                     if line.strip() not in SOLUTION_MARKERS)


def fill_answers(release_nb, source_nb, grade_ids: set[str] | None = None) -> nbformat.NotebookNode:
    """Copy of ``release_nb`` whose answer cells (all, or those in ``grade_ids``) hold the solution."""
    solutions = {grade_id(c): c for c in source_nb.cells if is_answer_cell(c)}
    filled = nbformat.from_dict(release_nb)
    for cell in filled.cells:
        gid = grade_id(cell)
        if is_answer_cell(cell) and gid in solutions and (grade_ids is None or gid in grade_ids):
            cell.source = solution_text(solutions[gid])
    return filled


def first_half_of_code_answers(nb) -> set[str]:
    """grade_ids of the first half (at least one) of a notebook's code answer cells."""
    ids = [grade_id(c) for c in nb.cells if is_answer_cell(c) and c.cell_type == "code"]
    return set(ids[: max(1, len(ids) // 2)])


def build_samples(course: Course, assignment: str) -> dict[str, Path]:
    """Write every sample student into submitted/<student>/<assignment>/ (replacing older copies)."""
    release_dir = course.folder("release", assignment)
    names = course.source_notebooks(assignment)
    if not all((release_dir / f"{n}.ipynb").is_file() for n in names):
        raise CourseError(f"{release_dir} is incomplete; run `coursekit release {assignment}` first")
    pairs = {n: (nbformat.read(str(release_dir / f"{n}.ipynb"), as_version=4),
                 nbformat.read(str(course.folder("source", assignment, f"{n}.ipynb")), as_version=4))
             for n in names}

    written = {}
    for student in SAMPLE_STUDENTS:
        folder = course.folder("submitted", student, assignment)
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        # helper files travel with the release; students submit the whole folder
        for item in release_dir.iterdir():
            if item.suffix != ".ipynb":
                copy = shutil.copytree if item.is_dir() else shutil.copy2
                copy(item, folder / item.name)
        for index, (name, (release_nb, source_nb)) in enumerate(pairs.items()):
            target = folder / f"{name}.ipynb"
            if student == "untouched":
                nb = release_nb
            elif student == "partial":
                nb = fill_answers(release_nb, source_nb, first_half_of_code_answers(source_nb))
            else:
                nb = fill_answers(release_nb, source_nb)
            if student == "messy":
                nb = _damage(nb, index, name, folder)
                if nb is None:
                    continue
                target = folder / f"{name}.ipynb"
            nbformat.write(nb, str(target))
        written[student] = folder
    return written


def _damage(nb, index: int, name: str, folder: Path):
    """Break the messy student's notebooks in a different way each (cycling through four ways)."""
    way = index % 4
    if way == 0:  # renamed by the student
        nbformat.write(nb, str(folder / f"{name} (1).ipynb"))
        return None
    if way == 1:  # truncated file, not valid JSON
        text = nbformat.writes(nb)
        (folder / f"{name}.ipynb").write_text(text[: len(text) // 2])
        return None
    if way == 2:  # a test cell deleted
        tests = [i for i, c in enumerate(nb.cells) if is_test_cell(c)]
        if tests:
            del nb.cells[tests[0]]
        return nb
    return None  # not submitted at all
