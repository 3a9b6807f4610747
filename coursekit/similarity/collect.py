"""Read one assignment's submissions into the code indexes and the list of trained models.

Everything here only reads: ``submitted/<student>/<assignment>/*.ipynb`` and ``submission_log.json``,
``autograded/<student>/<assignment>/rnn_gradients.ipynb``, the release and source notebooks, and the
grader's cached reference records. A notebook that cannot be read costs one reason line, never the run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import nbformat.reader
from tqdm import tqdm

from coursekit.course import Course, CourseError, helper_dir
from coursekit.samples import solution_text
from coursekit.similarity.code import Cell, CellIndex, imported_names
from coursekit.similarity.settings import SimilaritySettings
from coursekit.similarity.weights import (TRAINING_NOTEBOOK, TrainedModel, WeightFormats, read_reference_records,
                                          read_submission_log, read_training_notebook)

REFERENCE = "instructor solution"
REFERENCE_CACHE = Path(".coursekit") / "reference"
LOG_NAME = "submission_log.json"


@dataclass
class Collected:
    indexes: list[CellIndex]
    models: list[TrainedModel]
    students: list[str]
    reasons: list[str] = field(default_factory=list)


def _nbgrader(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _answer_cells(nb) -> dict[str, str]:
    """grade_id -> source of every code answer cell (nbgrader ``solution: true``)."""
    return {_nbgrader(c)["grade_id"]: c.source for c in nb.cells
            if c.cell_type == "code" and _nbgrader(c).get("solution") and _nbgrader(c).get("grade_id")}


def release_cells(course: Course, assignment: str, settings: SimilaritySettings
                  ) -> tuple[list[Cell], dict[tuple[str, str], str]]:
    """The answer cells of the release, and the instructor's solution of each (notebook, grade_id)."""
    cells, solutions = [], {}
    for name in course.source_notebooks(assignment):
        release_path = course.folder("release", assignment, f"{name}.ipynb")
        if not release_path.is_file():
            raise CourseError(f"{release_path} is missing; run `coursekit release {assignment}` first")
        release = nbformat.read(str(release_path), as_version=4)
        source = nbformat.read(str(course.folder("source", assignment, f"{name}.ipynb")), as_version=4)
        known = frozenset().union(*(imported_names(c.source) for c in release.cells if c.cell_type == "code"))
        instructor = {_nbgrader(c).get("grade_id"): solution_text(c) for c in source.cells}
        for grade_id, text in _answer_cells(release).items():
            cells.append(Cell(name, grade_id, text, known, settings))
            if grade_id in instructor:
                solutions[(name, grade_id)] = instructor[grade_id]
    return cells, solutions


def read_notebook(path: Path):
    """A notebook as nbformat's NotebookNode (v4), parsed without schema validation: only the answer
    cells' sources and metadata are used, and validating thousands of notebooks costs minutes."""
    nb = nbformat.reader.reads(path.read_text(encoding="utf-8"))
    return nb if nb.nbformat == 4 else nbformat.convert(nb, 4)


def _find_notebook(folder: Path, name: str) -> Path | None:
    """The student's copy of ``name``.ipynb, or a renamed one such as "name (1).ipynb"."""
    exact = folder / f"{name}.ipynb"
    if exact.is_file():
        return exact
    renamed = sorted(p for p in folder.glob(f"{name}*.ipynb") if p.is_file())
    return renamed[0] if renamed else None


def newest_reference_records(course: Course, assignment: str) -> Path | None:
    """The grader's newest cached reference records of the training notebook, if any."""
    folder = course.root / REFERENCE_CACHE / assignment
    found = sorted(folder.glob(f"{TRAINING_NOTEBOOK}-*.json"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def collect(course: Course, assignment: str, settings: SimilaritySettings, *,
            students: list[str] | None = None, reference_log: Path | None = None,
            reference_records: Path | None = None, progress: bool = True) -> Collected:
    """Index every answer cell of every submission (and the instructor's), and read every trained model."""
    cells, solutions = release_cells(course, assignment, settings)
    indexes = {(c.notebook, c.grade_id): CellIndex(c) for c in cells}
    for key, text in solutions.items():
        indexes[key].add(REFERENCE, text)
    students = course.students_with_submissions(assignment) if students is None else students
    collected = Collected(list(indexes.values()), [], list(students))
    notebooks = sorted({c.notebook for c in cells})
    shared_vectors: dict[str, object] = {}
    formats = WeightFormats.of(helper_dir(course.config, assignment))

    for student in tqdm(students, desc="similarity", unit="student", disable=not progress):
        folder = course.folder("submitted", student, assignment)
        for name in notebooks:
            path = _find_notebook(folder, name)
            if path is None:
                continue
            if path.stat().st_size > settings.max_notebook_bytes:
                collected.reasons.append(f"{student}: {path.name}: skipped, larger than "
                                         f"{settings.max_notebook_bytes // 2**20} MiB")
                continue
            try:
                answers = _answer_cells(read_notebook(path))
            except Exception as err:  # a broken or hostile file: one line, then the next one
                collected.reasons.append(f"{student}: {path.name}: skipped, not a readable notebook "
                                         f"({type(err).__name__})")
                continue
            for grade_id, text in answers.items():
                if (name, grade_id) not in indexes or not isinstance(text, str):
                    continue
                if len(text) > settings.max_answer_chars:
                    collected.reasons.append(f"{student}: {path.name}: answer {grade_id} skipped, longer than "
                                             f"{settings.max_answer_chars} characters")
                    continue
                indexes[(name, grade_id)].add(student, text)
        for model in _student_models(course, assignment, student, settings, formats, collected.reasons):
            # equal weights are common (the course fixes 3k's seed): keep one copy of each vector
            model.vector = shared_vectors.setdefault(model.digest, model.vector)
            collected.models.append(model)

    collected.models += _reference_models(course, assignment, reference_log, reference_records, formats,
                                          collected.reasons)
    return collected


def _student_models(course: Course, assignment: str, student: str, settings: SimilaritySettings,
                    formats: WeightFormats, reasons: list[str]) -> list[TrainedModel]:
    models = []
    log = course.folder("submitted", student, assignment, LOG_NAME)
    trained = course.folder("autograded", student, assignment, f"{TRAINING_NOTEBOOK}.ipynb")
    for path, read in ((log, read_submission_log), (trained, read_training_notebook)):
        if path.is_file() and path.stat().st_size > settings.max_notebook_bytes:
            reasons.append(f"{student}: {path.name}: weights skipped, larger than "
                           f"{settings.max_notebook_bytes // 2**20} MiB")
        elif path.is_file():
            try:
                found = read(path, student, formats)
                models += found if isinstance(found, list) else [found]
            except ValueError as err:
                reasons.append(f"{student}: {err}; weights skipped")
    return models


def _reference_models(course: Course, assignment: str, reference_log: Path | None,
                      reference_records: Path | None, formats: WeightFormats,
                      reasons: list[str]) -> list[TrainedModel]:
    models = []
    records = reference_records or newest_reference_records(course, assignment)
    for path, read in ((reference_log, read_submission_log), (records, read_reference_records)):
        if path is None:
            continue
        try:
            found = read(Path(path), REFERENCE, formats)
            models += found if isinstance(found, list) else [found]
        except ValueError as err:
            reasons.append(f"reference: {err}")
    return models
