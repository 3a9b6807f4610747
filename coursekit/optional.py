"""Optional parts of an assignment, and whether they count: one course setting, applied at release.

Authoring: a Markdown cell whose metadata holds ``{"coursekit": {"optional": true}}`` opens an
optional part (e.g. "## 3h. An LSTM layer (optional)"). The part runs until the next Markdown heading
of the same or a higher level that is not itself marked optional, so every cell of the part (test
cells and written answers included) is optional without marking each one.

The setting: ``optional_parts`` in ``[tool.coursekit]`` of the course's pyproject.toml,

* ``"ungraded"`` (the default, as in the original homework): optional cells carry 0 points, so they
  are not part of any maximum score, and the grader does not run them (students run them themselves;
  the feedback says "optional, not run by the grader"): grading a submission costs only what counts;
* ``"checked"``: optional cells carry 0 points, but the grader runs and checks them, so the feedback
  shows their verdicts;
* ``"required"``: optional cells keep their points and count like every other cell.

The points are applied once, when nbgrader generates the release (:class:`ApplyOptionalParts`): nbgrader
then records them in the gradebook, so autograding, the formgrader, exports and ``coursekit points``
agree. Released cells of optional parts also carry ``metadata.coursekit.optional = true``, and
:class:`NoteOptionalParts` says on the feedback page that a part is optional and whether it counted.

Not running them is decided at grading time, at every door (:class:`SkipOptionalParts`, a sanitising
step of nbgrader's Autograde pipeline): which cells are optional comes from the instructor's source
notebook, never from the submission, and a cell that carries points is always run.

Figures count for nothing either: a code cell of the source notebook marked ``{"coursekit": {"figure":
true}}`` only draws (it defines nothing later cells read; ``tests/hw6/test_figures.py`` checks the hw6
notebooks). In "ungraded" mode the grader leaves such cells out too, each one by its own grade_id (a cell a
student added next to a figure always runs); the autograded notebook says so in its place (the feedback
shows the figure the student's own notebook holds, as for every cell that is not a test). In the other
modes every figure is drawn.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import nbformat
from nbgrader.preprocessors import NbGraderPreprocessor

from coursekit.notebook import grade_id

SETTING = "optional_parts"
MODES = ("ungraded", "checked", "required")
NOT_RUN_MODE = "ungraded"  # the mode in which the grader does not run optional parts
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


def marks_figure(cell: Any) -> bool:
    """True for a code cell that only draws a figure, as its own metadata says (read from the source notebook)."""
    stamp = cell.get("metadata", {}).get("coursekit", {})
    return cell.get("cell_type") == "code" and isinstance(stamp, dict) and stamp.get("figure") is True


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
    and "checked" modes, set the points of its graded cells to 0 (in place; returns ``nb``)."""
    if mode not in MODES:
        raise ValueError(f"unknown {SETTING} mode {mode!r}; use one of {MODES}")
    for index, label in optional_cells(nb):
        cell = nb.cells[index]
        stamp = cell.setdefault("metadata", {}).setdefault("coursekit", {})
        stamp["optional"] = True
        if label:
            stamp["part"] = label
        meta = cell["metadata"].get("nbgrader", {})
        if mode != "required" and meta.get("grade"):
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


FEEDBACK_NOTE = {"ungraded": "Optional part{part}: optional, not run by the grader and not counted in the grade "
                             "(your course's setting).",
                 "checked": "Optional part{part}: not counted in the grade (your course's setting).",
                 "required": "Optional part{part} in the original homework; your course counts it."}
NOT_RUN_VERDICT = "Optional, not run by the grader (it counts for nothing in this course).\n"
FIGURE_NOT_DRAWN = "Figure: drawn when you run the notebook yourself; the grader leaves it out (it counts for nothing).\n"
FIGURE = "figure"  # metadata.coursekit.not_run_reason of a figure the grader left out


def optional_note(part: str, mode: str, code: bool = True) -> str:
    """The sentence the feedback page shows next to a cell of an optional part (a written answer is never
    run, so it gets the "not counted" sentence)."""
    return FEEDBACK_NOTE["checked" if mode == NOT_RUN_MODE and not code else mode].format(
        part=f" {part}" if part else "")


def _points(cell: Any) -> float:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return float(meta.get("points", 0) or 0) if meta.get("grade") else 0.0


def is_not_run(cell: Any) -> bool:
    """True for a code cell the grader leaves out: stamped by :class:`SkipOptionalParts` in this grading
    run, and carrying no points (a cell with points always runs, whatever its metadata says)."""
    stamp = cell.get("metadata", {}).get("coursekit", {})
    return (cell.get("cell_type") == "code" and isinstance(stamp, dict) and stamp.get("not_run") is True
            and _points(cell) == 0)


def figures_not_drawn(submission: Any, reference: Any) -> list[int]:
    """Indices of the submission's code cells whose grade_id is a figure cell of ``reference`` (the source
    notebook) and that carry no points. Only those cells: one the student added beside a figure always runs."""
    figures = {grade_id(c) for c in reference.cells if marks_figure(c)} - {""}
    return [index for index, cell in enumerate(submission.cells)
            if cell.get("cell_type") == "code" and grade_id(cell) in figures and _points(cell) == 0]


def cells_not_run(submission: Any, reference: Any) -> list[int]:
    """Indices of the submission's code cells that belong to an optional part of ``reference`` (the
    instructor's source notebook), recognised by grade_id. A cell without a known grade_id (one the
    student added) belongs to the part only if the known cells before and after it (or before it, at the
    end) are optional. If any of those cells carries points, nothing is left out (fail closed).
    Figures are left out by :func:`figures_not_drawn`."""
    optional = {reference.cells[i].metadata["nbgrader"]["grade_id"] for i, _ in optional_cells(reference)
                if reference.cells[i].get("metadata", {}).get("nbgrader", {}).get("grade_id")}
    known = {c.metadata["nbgrader"]["grade_id"] for c in reference.cells
             if c.get("metadata", {}).get("nbgrader", {}).get("grade_id")}
    ids = [c.get("metadata", {}).get("nbgrader", {}).get("grade_id") for c in submission.cells]
    state = [None if gid not in known else gid in optional for gid in ids]
    chosen, before = [], None
    for index, cell in enumerate(submission.cells):
        if state[index] is not None:
            before = state[index]
            inside = before
        else:
            after = next((s for s in state[index + 1:] if s is not None), None)
            inside = before is True and after in (True, None)
        if inside:
            if _points(cell) != 0:
                return []
            if cell.get("cell_type") == "code":
                chosen.append(index)
    return chosen


def _source_notebook(preprocessor: NbGraderPreprocessor, resources: dict[str, Any]) -> Path:
    info = resources.get("nbgrader", {})
    return (_course_root(preprocessor) / _course_setting(preprocessor, "source_directory", "source")
            / str(info.get("assignment", "")) / f"{info.get('notebook', '')}.ipynb")


class SkipOptionalParts(NbGraderPreprocessor):
    """Sanitising step of autograding: with ``optional_parts = "ungraded"``, stamp the code cells of
    optional parts ``metadata.coursekit.not_run`` so that ``SandboxedExecute`` leaves them out and
    ``JudgeChecks`` says so. It first removes that stamp from every cell, so a submission's own metadata
    never decides; which cells are optional is read from the instructor's source notebook. Without the
    source notebook, or in the other modes, every cell runs."""

    def preprocess(self, nb, resources):
        for cell in nb.cells:
            stamp = cell.get("metadata", {}).get("coursekit")
            if isinstance(stamp, dict):
                stamp.pop("not_run", None)
                stamp.pop("not_run_reason", None)
        source = _source_notebook(self, resources)
        if source.is_file():
            stamp_not_run(nb, nbformat.read(str(source), as_version=4), optional_mode(_course_root(self)))
        return nb, resources


def stamp_not_run(nb: Any, reference: Any, mode: str) -> Any:
    """In "ungraded" mode, stamp ``nb``'s code cells of optional parts and its figures (as ``reference``, the
    source notebook, marks them) ``metadata.coursekit.not_run``: the grader leaves them out. In place."""
    if mode != NOT_RUN_MODE:
        return nb
    figures = set(figures_not_drawn(nb, reference))
    for index in sorted(figures | set(cells_not_run(nb, reference))):
        stamp = nb.cells[index].setdefault("metadata", {}).setdefault("coursekit", {})
        if isinstance(stamp, dict):
            stamp["not_run"] = True
            if index in figures:
                stamp["not_run_reason"] = FIGURE
    return nb


class NoteOptionalParts(NbGraderPreprocessor):
    """Feedback step: a one-line note on every graded cell of an optional part.

    Which cells are optional is read from the instructor's source notebook (a submission's metadata
    could have been edited); code cells get the note as a first output line, written answers as a
    first italic line.
    """

    def preprocess(self, nb, resources):
        root = _course_root(self)
        source = _source_notebook(self, resources)
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
            note = optional_note(parts[grade_id], mode, code=cell.cell_type == "code")
            if cell.cell_type == "code":
                cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=note + "\n"), *cell.outputs]
            else:
                cell.source = f"*{note}*\n\n{cell.source}"
        return nb, resources
