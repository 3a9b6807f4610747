"""Optional parts (coursekit/optional.py): which cells they cover, the course setting, and its effect on
the release, the gradebook's maximum score, `coursekit points` and the feedback note."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_markdown_cell
from traitlets.config import Config

from coursekit.course import Course, CourseError
from coursekit.optional import (DEFAULT_MODE, ApplyOptionalParts, NoteOptionalParts, apply_optional_parts,
                                optional_cells, optional_labels, optional_mode, optional_points)

from coursekit.testing.notebooks import SOURCE_DIR, load, nbgrader_meta  # noqa: E402
from coursekit.testing.tiny_course import ASSIGNMENT, make_course  # noqa: E402

# The lines the lead adds to nbgrader_config.py (tested here on a copy of the course).
CONFIG_LINES = '''
# --- optional parts: [tool.coursekit] optional_parts in pyproject.toml (coursekit/optional.py) ---------------
from nbgrader.converters import GenerateAssignment  # noqa: E402
c.GenerateAssignment.preprocessors = ["coursekit.optional.ApplyOptionalParts",
                                      *GenerateAssignment.class_traits()["preprocessors"].default()]
'''

P3_OPTIONAL = {"test_lstm_layer_values", "test_lstm_layer_gates", "answer_3h", "answer_3i", "answer_3j",
               "test_stacked_rnn", "test_stacked_lstm", "test_training_rnn", "test_training_lstm"}


def heading(text: str, optional: bool = False) -> nbformat.NotebookNode:
    cell = new_markdown_cell(text)
    if optional:
        cell.metadata["coursekit"] = {"optional": True}
    return cell


def test_problem_3_optional_parts_are_3h_to_3k():
    nb = load(SOURCE_DIR / "rnn_gradients.ipynb")
    assert set(optional_points(nb)) == P3_OPTIONAL
    assert optional_labels(nb) == ["3h", "3i", "3j", "3k"]
    first = min(index for index, _ in optional_cells(nb))
    assert nbgrader_meta(nb.cells[first])["grade_id"] == "p3h_instructions"
    assert "(optional)" in nb.cells[first].source.splitlines()[0]
    for index, label in optional_cells(nb):  # every optional heading says so, as in the original
        first_line = nb.cells[index].source.splitlines()[0] if nb.cells[index].source else ""
        if nb.cells[index].cell_type == "markdown" and first_line.startswith("## "):
            assert "optional" in first_line, first_line
    for grade_id in ("test_rnn_layer_values", "answer_3e", "answer_3g", "test_gradient_norms"):
        assert grade_id not in optional_points(nb)


def test_a_part_ends_at_the_next_heading_of_its_level():
    nb = nbformat.v4.new_notebook(cells=[
        heading("## 1. Required"), heading("## 2. Extra (optional)", optional=True), heading("### 2.1 detail"),
        heading("plain text"), heading("## 3. Required again"), heading("# Appendix")])
    assert [index for index, _ in optional_cells(nb)] == [1, 2, 3]
    assert optional_labels(nb) == ["2"]


def test_apply_sets_points_only_when_ungraded():
    nb = load(SOURCE_DIR / "rnn_gradients.ipynb")
    before = optional_points(nb)
    required = apply_optional_parts(load(SOURCE_DIR / "rnn_gradients.ipynb"), "required")
    assert optional_points(required) == before
    ungraded = apply_optional_parts(nb, "ungraded")
    assert optional_points(ungraded) == {grade_id: 0.0 for grade_id in before}
    stamped = {nbgrader_meta(c).get("grade_id"): c.metadata["coursekit"] for c in ungraded.cells
               if c.metadata.get("coursekit", {}).get("optional")}
    assert stamped["test_stacked_rnn"] == {"optional": True, "part": "3k"}
    assert stamped["answer_3h"]["part"] == "3h"
    assert nbgrader_meta(cell_of(ungraded, "test_rnn_layer_values"))["points"] == 3
    with pytest.raises(ValueError, match="unknown optional_parts mode"):
        apply_optional_parts(nb, "bonus")


def cell_of(nb, grade_id):
    return next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == grade_id)


def test_setting_default_and_errors(tmp_path):
    assert optional_mode(tmp_path) == DEFAULT_MODE == "ungraded"
    (tmp_path / "pyproject.toml").write_text('[tool.coursekit]\noptional_parts = "required"\n')
    assert optional_mode(tmp_path) == "required"
    (tmp_path / "pyproject.toml").write_text('[tool.coursekit]\noptional_parts = "sometimes"\n')
    with pytest.raises(CourseError, match=r"pyproject.toml: \[tool.coursekit\] optional_parts = 'sometimes'"):
        optional_mode(tmp_path)


def _tiny_course_with_optional_squares(root: Path, mode: str | None) -> Course:
    make_course(root)
    path = root / "source" / ASSIGNMENT / "squares.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    nb.cells.insert(0, heading("## 2. Squares (optional)", optional=True))
    nbformat.write(nb, str(path))
    with open(root / "nbgrader_config.py", "a") as config:
        config.write(CONFIG_LINES)
    if mode:
        (root / "pyproject.toml").write_text(f'[tool.coursekit]\nassignment = "{ASSIGNMENT}"\noptional_parts = "{mode}"\n')
    return Course.open(root)


@pytest.mark.parametrize("mode, squares_points", [(None, 0.0), ("checked", 0.0), ("required", 1.0)])
def test_release_applies_the_setting_and_the_gradebook_agrees(tmp_path, mode, squares_points):
    from coursekit.commands.points import points_table

    course = _tiny_course_with_optional_squares(tmp_path / "course", mode)
    course.generate_release(ASSIGNMENT)
    released = nbformat.read(str(course.folder("release", ASSIGNMENT, "squares.ipynb")), as_version=4)
    test_cell = cell_of(released, "test_square")
    assert test_cell.metadata["coursekit"]["optional"] is True
    assert test_cell.metadata["nbgrader"]["points"] == squares_points
    assert "coursekit" not in cell_of(nbformat.read(str(course.folder("release", ASSIGNMENT, "adder.ipynb")),
                                                    as_version=4), "test_add").metadata
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url) as gradebook:
        assignment = gradebook.find_assignment(ASSIGNMENT)
        assert assignment.max_score == 3.0 + squares_points
    table = points_table(course, ASSIGNMENT)
    assert f"| `squares.ipynb` | {squares_points:g} | 0 | {squares_points:g} | 1 (2) |" in table
    assert ("counted in the totals" if mode == "required" else "not counted") in table


def test_feedback_note_names_the_part_and_the_setting(tmp_path):
    course = _tiny_course_with_optional_squares(tmp_path / "course", None)
    nb = nbformat.read(str(course.folder("source", ASSIGNMENT, "squares.ipynb")), as_version=4)
    test_cell = cell_of(nb, "test_square")
    test_cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="ok\n")]
    config = Config()
    config.CourseDirectory.root = str(course.root)
    resources = {"nbgrader": {"assignment": ASSIGNMENT, "notebook": "squares"}}
    nb, _ = NoteOptionalParts(config=config).preprocess(nb, resources)
    assert test_cell.outputs[0]["text"].startswith("Optional part 2: optional, not run by the grader and not "
                                                   "counted in the grade")
    assert test_cell.outputs[1]["text"] == "ok\n"
    assert all("Optional" not in "".join(o.get("text", "") for o in c.get("outputs", []))
               for c in nb.cells if nbgrader_meta(c).get("grade_id") != "test_square")
    (course.root / "pyproject.toml").write_text('[tool.coursekit]\noptional_parts = "checked"\n')
    test_cell.outputs = []
    nb, _ = NoteOptionalParts(config=config).preprocess(nb, resources)
    assert test_cell.outputs[0]["text"].startswith("Optional part 2: not counted in the grade")
    (course.root / "pyproject.toml").unlink()
    # The release step reads the same setting.
    released, _ = ApplyOptionalParts(config=config).preprocess(nbformat.read(
        str(course.folder("source", ASSIGNMENT, "squares.ipynb")), as_version=4), {})
    assert cell_of(released, "test_square").metadata["nbgrader"]["points"] == 0
