"""The committed student release: clean, complete, and exactly what nbgrader makes from source."""
from __future__ import annotations

import filecmp
import re

import nbformat
import pytest

from coursekit.course import Course
from coursekit.testing.notebooks import RELEASE_DIR, SOURCE_DIR, nbgrader_meta
from tests.hw6.hw6_course import MARKERS, NOTEBOOKS, release_notebook, secret_lines


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
@pytest.mark.xdist_group("hw6_pipeline")  # the release of the session's graded sample course, on its worker
@pytest.mark.timeout(1800)  # may build the graded course or wait for it
def test_committed_release_is_what_nbgrader_generates(graded_hw6_built):
    built, _ = graded_hw6_built
    fresh = Course.open(built).folder("release", "hw6")  # generated from source/ by `generate_release`, read only
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
    from coursekit.testing.courses import home_course

    table = points_table(home_course(), "hw6")
    assert table in (home_course().root / "README.md").read_text(), \
        "README.md's points table is out of date: paste the output of `coursekit points`"


# --- questions stay questions ---------------------------------------------------------------------
#
# The homework asks students to derive dy/dw (1b), the beams after each step (2a-2c), the filter (6b) and
# the 2-D transpose-convolution output (6c; its 1-D example is given with its result, as in the original). Neither the text nor the tests a student can read may give
# them away; the exact values live in hidden checks only. Text is normalised before the search (no
# spaces, no multiplication signs or LaTeX spacing, "2.0" written "2") so that any spelling is caught.

ANSWERS = {
    "backprop_scalar_rnn": ["3w^2u_1", "3w**2u1", "3w^2u1", "3w**2*u1", "2wu_2", "2wu2", "u_3+2w", "u3+2w"],
    "beam_search": ["-1.25", "-1.33", "-1.85", "-1.93", "-1.46", "-1.45", "neuralnetworknetwork",
                    "networkneuralnetwork", "neuralneuralneural"],
    "convolutions": ["[2,-1,3]", "2,-1,3]", "[-1,3,-2]", "[3,-3,1]", "[0,3,1]"],
}


def normalised(text: str) -> str:
    text = re.sub(r"\\[,;:!]|\\cdot|\\times|\\ ", "", text)
    text = re.sub(r"(\d)\.0+\b", r"\1", text)
    text = text.replace("\u2212", "-").replace("'", "").replace('"', "")
    return re.sub(r"[\s*]|\\,", "", text).replace("**", "^")


def student_readable(notebook: str) -> list[tuple[int, str]]:
    """(index, text) of every markdown cell and every code cell except the student's own answer cells."""
    cells = release_notebook(notebook).cells
    return [(i, c.source) for i, c in enumerate(cells)
            if c.cell_type == "markdown" or not nbgrader_meta(c).get("solution")]


@pytest.mark.parametrize("notebook", sorted(ANSWERS))
def test_release_gives_no_answer_away(notebook):
    found = [(i, answer) for i, text in student_readable(notebook) for answer in ANSWERS[notebook]
             if normalised(answer) in normalised(text)]
    assert not found, f"{notebook}: answers in student-readable cells {found}"


@pytest.mark.parametrize("notebook", sorted(ANSWERS))
def test_answers_are_still_checked_by_hidden_tests(notebook):
    """The other half of the bargain: the source's hidden tests do check the questions' exact answers."""
    source = nbformat.read(str(SOURCE_DIR / f"{notebook}.ipynb"), as_version=4)
    hidden = " ".join(c.source.split("### BEGIN HIDDEN TESTS")[1] for c in source.cells
                      if "### BEGIN HIDDEN TESTS" in c.source)
    wanted = {"backprop_scalar_rnn": ["check(\"1b: dy/dw\", claim(dy_dw_answer", "symbolic.equals_reference"],
              "beam_search": ["_WORKED_TREE", "check(f\"worked example, k={_k}: history\""],
              "convolutions": ["check(\"filter of the worked example\"", "check(\"worked 2-D example\"",
                               "check(\"6c: output of the 2-D transpose convolution\""]}[notebook]
    for text in wanted:
        assert text in hidden, (notebook, text)


def test_the_leak_search_would_find_the_answers():
    """The normalisation catches the spellings the notebooks used before the answers were hidden."""
    old = {"backprop_scalar_rnn": r"$\partial y/\partial w = u_3 + 2 w u_2 + 3 w^2 u_1$",
           "beam_search": 'check("kept", beam, [(("neural", "network"), -1.25), (("network", "neural"), -1.33)])',
           "convolutions": 'check("worked 2-D example", out, [[-1.0, 3.0, -2.0], [3.0, -3.0, 1.0], [0.0, 3.0, 1.0]])'}
    for notebook, text in old.items():
        assert any(normalised(answer) in normalised(text) for answer in ANSWERS[notebook]), notebook
    assert normalised("[2.0, -1.0, 3.0]") == "[2,-1,3]" and normalised("a * z_ + b * x_") == "az_+bx_"


LETTERING = {"backprop_scalar_rnn": ["1a", "1b", "1c", "1d"], "beam_search": ["2a", "2c", "2d", "2e"],
             "surname_classification": ["4a"], "reading_and_survey": ["5a", "5b", "5c", "Problem 7"],
             "convolutions": ["6a", "6b", "6c"]}


@pytest.mark.parametrize("notebook", sorted(LETTERING))
def test_headings_use_the_homeworks_lettering(notebook):
    """A TA maps every part to the original homework by the headings (1a-d, 2a-e, 4a, 5a-c, 6a-c, 7)."""
    headings = [line for c in release_notebook(notebook).cells if c.cell_type == "markdown"
                for line in c.source.splitlines() if line.startswith("#")]
    for part in LETTERING[notebook]:
        assert any(re.search(rf"\b{part}\b", line) for line in headings), (notebook, part, headings)
