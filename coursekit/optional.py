"""Optional parts of an assignment, and whether they count: one course setting, applied at release.

Authoring: a Markdown cell whose metadata holds ``{"coursekit": {"optional": true}}`` opens an
optional part (e.g. "## 3h. An LSTM layer (optional)"). The part runs until the next Markdown heading
of the same or a higher level that is not itself marked optional, so every cell of the part (test
cells and written answers included) is optional without marking each one.

The setting: ``optional_parts`` in ``[tool.coursekit]`` of the course's pyproject.toml,

* ``"ungraded"`` (the default, as in the original homework): optional cells run, are checked and get
  feedback, but carry 0 points, so they are not part of any maximum score;
* ``"required"``: optional cells keep their points and count like every other cell.

It is applied once, when nbgrader generates the release (:class:`ApplyOptionalParts`): nbgrader then
records the points it finds in the gradebook, so autograding, the formgrader, exports and ``coursekit
points`` agree. Released cells of optional parts also carry ``metadata.coursekit.optional = true``, and
:class:`NoteOptionalParts` says on the feedback page that a part is optional and whether it counted.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor

SETTING = "optional_parts"
MODES = ("ungraded", "required")
DEFAULT_MODE = "ungraded"
HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
PART_LABEL = re.compile(r"^(\d+[a-z]?)(?=[.\s])")


def optional_mode(course_root: str | Path) -> str:
    """The course's ``optional_parts`` setting (CourseError naming pyproject.toml if it is not a known mode)."""
    from coursekit.course import CourseError, kit_settings

    mode = kit_settings(Path(course_root)).get(SETTING, DEFAULT_MODE)
    if mode not in MODES:
        raise CourseError(f"{Path(course_root) / 'pyproject.toml'}: [tool.coursekit] {SETTING} = {mode!r}; "
                         f"use one of {', '.join(repr(m) for m in MODES)}")
    return mode


def _heading(cell: Any) -> tuple[int, str] | None:
    """(level, text) of the first line of a Markdown cell that is a heading, else None."""
    if cell.get("cell_type") != "markdown" or not cell.get("source"):
        return None
    match = HEADING.match(cell["source"].lstrip().splitlines()[0])
    return (len(match.group(1)), match.group(2).strip()) if match else None


def marks_optional(cell: Any) -> bool:
    """True for a cell whose own metadata marks it (and, for a heading, its part) optional."""
    return bool(cell.get("metadata", {}).get("coursekit", {}).get("optional"))


def optional_cells(nb: Any) -> list[tuple[int, str]]:
    """(cell index, part label such as "3h") of every cell that belongs to an optional part."""
    found, level, label = [], None, ""
    for index, cell in enumerate(nb.cells):
        heading = _heading(cell)
        if marks_optional(cell) and heading:
            level = heading[0]
            match = PART_LABEL.match(heading[1])
            label = match.group(1) if match else heading[1]
        elif heading and level is not None and heading[0] <= level:
            level = None
        if level is not None or marks_optional(cell):
            found.append((index, label if level is not None else ""))
    return found


def optional_points(nb: Any) -> dict[str, float]:
    """grade_id -> points of every graded cell in an optional part (as written in the notebook)."""
    points = {}
    for index, _label in optional_cells(nb):
        meta = nb.cells[index].get("metadata", {}).get("nbgrader", {})
        if meta.get("grade"):
            points[meta["grade_id"]] = float(meta.get("points", 0))
    return points


def optional_labels(nb: Any) -> list[str]:
    """The part labels ("3h", "3i", ...) of a notebook's optional parts, in order."""
    labels: list[str] = []
    for _index, label in optional_cells(nb):
        if label and label not in labels:
            labels.append(label)
    return labels


def apply_optional_parts(nb: Any, mode: str) -> Any:
    """Stamp every cell of an optional part with ``metadata.coursekit.optional`` and, in "ungraded"
    mode, set the points of its graded cells to 0 (in place; returns ``nb``)."""
    if mode not in MODES:
        raise ValueError(f"unknown {SETTING} mode {mode!r}; use one of {MODES}")
    for index, label in optional_cells(nb):
        cell = nb.cells[index]
        stamp = cell.setdefault("metadata", {}).setdefault("coursekit", {})
        stamp["optional"] = True
        if label:
            stamp["part"] = label
        meta = cell["metadata"].get("nbgrader", {})
        if mode == "ungraded" and meta.get("grade"):
            meta["points"] = 0
    return nb


def _course_setting(preprocessor: NbGraderPreprocessor, name: str, default: str) -> str:
    """A ``CourseDirectory`` setting from the configuration nbgrader gave the preprocessor."""
    value = preprocessor.config.get("CourseDirectory", {}).get(name)
    return value if isinstance(value, str) and value else default


def _course_root(preprocessor: NbGraderPreprocessor) -> Path:
    return Path(_course_setting(preprocessor, "root", str(Path.cwd())))


class ApplyOptionalParts(NbGraderPreprocessor):
    """Release step (first in ``GenerateAssignment.preprocessors``): apply the ``optional_parts`` setting
    before nbgrader records the points of each cell in the gradebook."""

    def preprocess(self, nb, resources):
        return apply_optional_parts(nb, optional_mode(_course_root(self))), resources


FEEDBACK_NOTE = {"ungraded": "Optional part{part}: not counted in the grade (your course's setting).",
                 "required": "Optional part{part} in the original homework; your course counts it."}


def optional_note(part: str, mode: str) -> str:
    """The sentence the feedback page shows next to a cell of an optional part."""
    return FEEDBACK_NOTE[mode].format(part=f" {part}" if part else "")


class NoteOptionalParts(NbGraderPreprocessor):
    """Feedback step: a one-line note on every graded cell of an optional part.

    Which cells are optional is read from the instructor's source notebook (a submission's metadata
    could have been edited); code cells get the note as a first output line, written answers as a
    first italic line.
    """

    def preprocess(self, nb, resources):
        root = _course_root(self)
        info = resources.get("nbgrader", {})
        source = (root / _course_setting(self, "source_directory", "source") / str(info.get("assignment", ""))
                  / f"{info.get('notebook', '')}.ipynb")
        if not source.is_file():
            return nb, resources
        reference = nbformat.read(str(source), as_version=4)
        parts = {reference.cells[i].metadata["nbgrader"]["grade_id"]: label for i, label in optional_cells(reference)
                 if reference.cells[i].get("metadata", {}).get("nbgrader", {}).get("grade")}
        mode = optional_mode(root)
        for cell in nb.cells:
            grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if grade_id not in parts:
                continue
            note = optional_note(parts[grade_id], mode)
            if cell.cell_type == "code":
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=note + "\n"), *cell.outputs]
            else:
                cell.source = f"*{note}*\n\n{cell.source}"
        return nb, resources
