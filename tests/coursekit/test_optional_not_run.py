"""Optional parts and figures, which count for nothing, are not run by the grader (``optional_parts =
"ungraded"``, the default): which cells are left out comes from the instructor's source notebook, a cell
with points always runs, a submission's own metadata decides nothing, and every door does the same."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell
from traitlets.config import Config

from coursekit.course import Course
from coursekit.optional import (FIGURE, FIGURE_NOT_DRAWN, NOT_RUN_VERDICT, SkipOptionalParts, apply_optional_parts,
                                cells_not_run, is_not_run, marks_figure, optional_cells, stamp_not_run)
from coursekit.samples import fill_answers
from coursekit.testing.notebooks import SOURCE_DIR, load
from coursekit.testing.tiny_course import ASSIGNMENT, make_course, nbgrader_cell


def _gid(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _cell(nb, gid):
    return next(c for c in nb.cells if _gid(c) == gid)


# --- which cells (no kernel) --------------------------------------------------------------------------

def test_problem_3_leaves_out_exactly_the_code_of_3h_to_3k():
    source = load(SOURCE_DIR / "rnn_gradients.ipynb")
    released = apply_optional_parts(load(SOURCE_DIR / "rnn_gradients.ipynb"), "ungraded")
    left_out = cells_not_run(released, source)
    optional = {index for index, _ in optional_cells(source)}
    assert set(left_out) == {i for i in optional if source.cells[i].cell_type == "code"}
    assert {_gid(released.cells[i]) for i in left_out} >= {"train_rnn", "train_lstm", "test_training_rnn",
                                                            "test_stacked_lstm", "lstm_layer"}
    # released with points ("required"): nothing is left out, whatever else the notebook says
    required = apply_optional_parts(load(SOURCE_DIR / "rnn_gradients.ipynb"), "required")
    assert cells_not_run(required, source) == []


def test_added_cells_belong_to_the_part_only_between_optional_cells():
    source = load(SOURCE_DIR / "rnn_gradients.ipynb")
    submission = apply_optional_parts(load(SOURCE_DIR / "rnn_gradients.ipynb"), "ungraded")
    first = min(index for index, _ in optional_cells(source))
    submission.cells.insert(first + 3, new_code_cell("print('inside 3h')"))  # between optional cells
    submission.cells.insert(first, new_code_cell("print('before 3h')"))  # after 3g's last cell
    submission.cells.append(new_code_cell("print('at the end')"))  # after the last optional cell
    # a heading the student marks optional does not make the required cells after it optional
    submission.cells.insert(2, new_markdown_cell("## 0. Mine (optional)", metadata={"coursekit": {"optional": True}}))
    left_out = {submission.cells[i].source for i in cells_not_run(submission, source)}
    assert "print('inside 3h')" in left_out and "print('at the end')" in left_out
    assert "print('before 3h')" not in left_out
    assert not any(_gid(c) and _gid(c) in {_gid(s) for i, s in enumerate(source.cells)
                                           if i not in dict(optional_cells(source))}
                   for c in submission.cells if c.source in left_out)


def test_figures_are_left_out_by_their_own_grade_id_only():
    source = load(SOURCE_DIR / "rnn_gradients.ipynb")
    submission = apply_optional_parts(load(SOURCE_DIR / "rnn_gradients.ipynb"), "ungraded")
    figure = next(i for i, c in enumerate(submission.cells) if marks_figure(c) and _gid(c) == "fig_3a_unrolled_rnn")
    submission.cells.insert(figure + 1, new_code_cell("print('beside a figure')"))
    submission.cells.insert(figure, new_code_cell("print('before a figure')"))
    for cell in submission.cells:  # what the submission says about figures decides nothing
        cell.metadata.setdefault("coursekit", {})["figure"] = cell.source.startswith("print(")
    stamp_not_run(submission, source, "ungraded")
    drawn_by_source = {_gid(c) for c in source.cells if marks_figure(c)}
    not_drawn = {_gid(c) for c in submission.cells if is_not_run(c) and c.metadata["coursekit"].get("not_run_reason") == FIGURE}
    assert not_drawn == drawn_by_source and "fig_3a_unrolled_rnn" in not_drawn
    assert not any(is_not_run(c) for c in submission.cells if c.source.startswith("print("))
    checked = stamp_not_run(apply_optional_parts(load(SOURCE_DIR / "rnn_gradients.ipynb"), "checked"), source, "checked")
    assert not any(is_not_run(c) for c in checked.cells)


def _course_config(root: Path) -> Config:
    config = Config()
    config.CourseDirectory.root = str(root)
    return config


def test_the_submissions_own_stamps_are_removed(tmp_path):
    """A student who stamps required cells `not_run`, or marks them optional, gets them run anyway."""
    root = tmp_path / "course"
    (root / "source" / "hw6").mkdir(parents=True)
    shutil.copy(SOURCE_DIR / "rnn_gradients.ipynb", root / "source" / "hw6" / "rnn_gradients.ipynb")
    submission = apply_optional_parts(load(SOURCE_DIR / "rnn_gradients.ipynb"), "ungraded")
    for cell in submission.cells:
        if cell.cell_type == "code":
            cell.metadata.setdefault("coursekit", {}).update(not_run=True, optional=True)
    resources = {"nbgrader": {"assignment": "hw6", "notebook": "rnn_gradients"}}
    step = SkipOptionalParts(config=_course_config(root))
    nb, _ = step.preprocess(submission, resources)
    source = load(SOURCE_DIR / "rnn_gradients.ipynb")
    optional = {_gid(source.cells[i]) for i, _ in optional_cells(source)} | {_gid(c) for c in source.cells
                                                                          if marks_figure(c)}
    stamped = {_gid(c) for c in nb.cells if is_not_run(c)}
    assert stamped and stamped <= optional
    assert all(not is_not_run(c) for c in nb.cells if _gid(c) not in optional)
    # in the other modes nothing is stamped, and nothing of the submission's survives
    for mode in ("checked", "required"):
        (root / "pyproject.toml").write_text(f'[tool.coursekit]\noptional_parts = "{mode}"\n')
        nb, _ = step.preprocess(nb, resources)
        assert not any(is_not_run(c) for c in nb.cells)
    # without the instructor's source notebook everything runs
    (root / "pyproject.toml").unlink()
    (root / "source" / "hw6" / "rnn_gradients.ipynb").unlink()
    for cell in nb.cells:
        cell.metadata.setdefault("coursekit", {})["not_run"] = True
    nb, _ = step.preprocess(nb, resources)
    assert not any(is_not_run(c) for c in nb.cells)


def test_a_cell_with_points_always_runs():
    cell = nbgrader_cell("code", "check('x', 1)", "test_x", grade=True, solution=False, points=2)
    cell.metadata["coursekit"] = {"not_run": True}
    assert not is_not_run(cell)
    cell.metadata["nbgrader"]["points"] = 0
    assert is_not_run(cell)
    cell.metadata["coursekit"] = {"not_run": "yes"}
    assert not is_not_run(cell)


# --- the doors (tiny course, real kernels) ---------------------------------------------------------------

def _heading(text: str, grade_id: str, optional: bool = False):
    cell = nbgrader_cell("markdown", text, grade_id, grade=False, solution=False)
    if optional:
        cell.metadata["coursekit"] = {"optional": True}
    return cell


def _figure(source: str, grade_id: str):
    cell = nbgrader_cell("code", source, grade_id, grade=False, solution=False)
    cell.metadata["coursekit"] = {"figure": True}
    return cell


def _course(root: Path, mode: str | None) -> Course:
    """The tiny course whose squares notebook has an optional part (2) between two required ones, and a
    figure in part 1."""
    make_course(root)
    path = root / "source" / ASSIGNMENT / "squares.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    nb.cells = [
        _heading("## 1. Ones", "p_ones"),
        nbgrader_cell("code", "def one():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION", "one",
                      grade=False, solution=True),
        _figure("print('figure drawn')", "ones_figure"),
        _heading("## 2. Squares (optional)", "p_squares", optional=True),
        *nb.cells,
        nbgrader_cell("code", "print('optional part ran')", "squares_demo", grade=False, solution=False),
        _heading("## 3. Cubes", "p_cubes"),
        nbgrader_cell("code", "def cube(x):\n    ### BEGIN SOLUTION\n    return x ** 3\n    ### END SOLUTION",
                      "cube", grade=False, solution=True),
        nbgrader_cell("code", "from hw6utils.checks import check\ncheck('two', cube(2), 8)\ncheck('one', one(), 1)",
                      "test_cube", grade=True, solution=False, points=1),
    ]
    nbformat.write(nb, str(path))
    if mode:
        (root / "pyproject.toml").write_text(f'[tool.coursekit]\nassignment = "{ASSIGNMENT}"\n'
                                             f'optional_parts = "{mode}"\n')
    course = Course.open(root)
    course.generate_release(ASSIGNMENT)
    for student, notebooks in _students(course).items():
        folder = course.folder("submitted", student, ASSIGNMENT)
        folder.mkdir(parents=True)
        for name, notebook in notebooks.items():
            nbformat.write(notebook, str(folder / f"{name}.ipynb"))
    return course


def _students(course: Course) -> dict[str, dict[str, nbformat.NotebookNode]]:
    def filled() -> dict[str, nbformat.NotebookNode]:
        return {name: fill_answers(nbformat.read(str(course.folder("release", ASSIGNMENT, f"{name}.ipynb")), 4),
                                   nbformat.read(str(course.folder("source", ASSIGNMENT, f"{name}.ipynb")), 4))
                for name in course.source_notebooks(ASSIGNMENT)}

    honest, forger, wrong = filled(), filled(), filled()
    _cell(wrong["squares"], "cube").source = "def cube(x):\n    return x * x"
    # the forger marks required cells optional and not run, and adds cells of their own
    for nb in forger.values():
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.metadata.setdefault("coursekit", {}).update(not_run=True, optional=True, figure=True)
    squares = forger["squares"]
    squares.cells.insert(squares.cells.index(_cell(squares, "ones_figure")) + 1,
                         new_code_cell("print('student cell after a figure')"))
    at = squares.cells.index(_cell(squares, "p_cubes"))
    squares.cells.insert(at, new_code_cell("print('student cell before part 3')"))
    squares.cells.insert(at + 1, new_markdown_cell("## 2b. Mine (optional)", metadata={"coursekit": {"optional": True}}))
    at = squares.cells.index(_cell(squares, "test_square"))
    squares.cells.insert(at, new_code_cell("print('student cell inside part 2')"))
    return {"honest": honest, "forger": forger, "wrong_cube": wrong}


def _outputs(course: Course, student: str) -> dict[str, str]:
    """grade_id or first line of source -> the text of the graded cell's outputs."""
    nb = nbformat.read(str(course.folder("autograded", student, ASSIGNMENT, "squares.ipynb")), as_version=4)
    return {_gid(c) or c.source.splitlines()[0]: "".join(o.get("text", "") or o.get("evalue", "") for o in c.outputs)
            for c in nb.cells if c.cell_type == "code"}


def _grades(course: Course, students=("honest", "forger", "wrong_cube")
            ) -> dict[tuple[str, str, str], tuple[float | None, float]]:
    from nbgrader.api import Gradebook

    with Gradebook(course.db_url, course.course_id) as gb:
        return {(s, nb.name, g.name): (g.score, g.max_score) for s in students
                for nb in gb.find_submission(ASSIGNMENT, s).notebooks for g in nb.grades if g.cell.cell_type == "code"}


@pytest.mark.slow
def test_every_door_leaves_out_the_optional_part_and_grades_alike(tmp_path):
    from coursekit.grading import autograde

    course = _course(tmp_path / "ck" / "course", None)
    autograde(course, ASSIGNMENT, jobs=2)
    expected = _grades(course)
    assert expected[("honest", "squares", "test_square")] == (0.0, 0.0)
    assert expected[("honest", "squares", "test_cube")] == (1.0, 1.0)
    assert expected[("forger", "squares", "test_cube")] == (1.0, 1.0)
    assert expected[("forger", "adder", "test_add")] == (2.0, 2.0)  # stamped "not run" by the student: ran
    assert expected[("wrong_cube", "squares", "test_cube")] == (0.0, 1.0)
    for student in ("honest", "forger"):
        out = _outputs(course, student)
        assert out["test_square"] == NOT_RUN_VERDICT
        assert out["square"] == out["squares_demo"] == ""  # never executed
        assert out["test_cube"].startswith("All 2 checks passed")
        assert out["ones_figure"] == FIGURE_NOT_DRAWN
    forged = _outputs(course, "forger")
    assert forged["print('student cell after a figure')"] == "student cell after a figure\n"
    assert forged["print('student cell inside part 2')"] == ""
    assert forged["print('student cell before part 3')"] == "student cell before part 3\n"

    stock = _course(tmp_path / "nbgrader" / "course", None)
    nbgrader = Path(sys.executable).with_name("nbgrader")
    run = subprocess.run([str(nbgrader), "autograde", ASSIGNMENT, "--force"], cwd=stock.root,
                         capture_output=True, text=True, timeout=600)
    assert _grades(stock) == expected, run.stderr[-3000:]
    api = _course(tmp_path / "api" / "course", None)
    for student in ("honest", "forger", "wrong_cube"):
        assert api.api.autograde(ASSIGNMENT, student)["success"]
    assert _grades(api) == expected
    for other in (stock, api):
        for student in ("honest", "forger"):
            assert _outputs(other, student) == _outputs(course, student)


@pytest.mark.slow
@pytest.mark.parametrize("mode, square_points", [("checked", 0.0), ("required", 1.0)])
def test_parts_that_are_checked_or_count_run_as_before(tmp_path, mode, square_points):
    from coursekit.grading import autograde

    course = _course(tmp_path / "course", mode)
    autograde(course, ASSIGNMENT, ["honest", "forger"])
    got = _grades(course, ("honest", "forger"))
    for student in ("honest", "forger"):
        assert got[(student, "squares", "test_square")] == (square_points, square_points)
        out = _outputs(course, student)
        assert out["test_square"].startswith("All 2 checks passed")
        assert out["squares_demo"] == "optional part ran\n"
        assert out["ones_figure"] == "figure drawn\n"
    assert _outputs(course, "forger")["print('student cell inside part 2')"] == "student cell inside part 2\n"


@pytest.mark.parametrize("mode, reference_runs_it", [("ungraded", False), ("checked", True)])
def test_the_reference_leaves_out_what_submissions_leave_out(tmp_path, mode, reference_runs_it):
    from coursekit.preprocessors.judge_checks import JudgeChecks

    course = _course(tmp_path / "course", mode)
    judge = JudgeChecks(config=course.config)
    records = judge.reference(ASSIGNMENT, "squares")
    assert records["test_cube"]
    assert bool(records.get("test_square")) is reference_runs_it  # records only from what ran
    assert f"-{mode}-" in judge.cache_file(ASSIGNMENT, "squares").name  # another mode, another cache entry
