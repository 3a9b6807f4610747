"""rnn_gradients.ipynb as a student meets it: the untouched release runs top to bottom with only
NotImplementedError and its consequences, shows its figures before any code is written, and gives
away no answer in its visible cells."""
from __future__ import annotations

import re
import shutil

import nbformat
import pytest

from coursekit.testing.notebooks import RELEASE_DIR, SOURCE_DIR, is_test_cell, load, nbgrader_meta
from tests.hw6.hw6_course import secret_lines

NOTEBOOK = "rnn_gradients"
FIGURES = {"fig_3a_unrolled_rnn": ("p3a_instructions", "rnn_layer", "unrolled_rnn"),
           "fig_3c_prediction_kinds": ("p3c_kinds", "generate_batch", "prediction_kinds"),
           "fig_3c_prediction_tasks": ("p3c_instructions", "generate_batch", "prediction_tasks"),
           "fig_3d_many_to_one_graph": ("gradviz_intro", "gradient_norms", "many_to_one_graph"),
           "fig_3h_lstm_cell": ("p3h_instructions", "lstm_layer", "lstm_cell"),
           "fig_3k_stacked_rnn": ("p3k_instructions", "stacked_rnn", "stacked_rnn")}
TRAINING_CELLS = {"train_rnn", "train_lstm"}


def _ids(nb) -> list[str | None]:
    return [nbgrader_meta(c).get("grade_id") for c in nb.cells]


def test_figures_sit_between_their_text_and_the_code_to_write():
    nb = load(RELEASE_DIR / f"{NOTEBOOK}.ipynb")
    ids = _ids(nb)
    for grade_id, (text, code, function) in FIGURES.items():
        cell = nb.cells[ids.index(grade_id)]
        meta = nbgrader_meta(cell)
        assert meta["locked"] and not meta["grade"] and not meta["solution"]
        assert ids.index(text) + 1 == ids.index(grade_id) < ids.index(code)
        assert f"show_figure({function}())" in cell.source
        assert "figure below" in nb.cells[ids.index(text)].source


def test_figure_cells_run_without_any_student_code(monkeypatch):
    """Each figure cell on its own, in a fresh namespace, displays one PNG (no pyplot figure left open)."""
    import sys

    import IPython.display
    import matplotlib.pyplot as plt

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    monkeypatch.syspath_prepend(str(RELEASE_DIR))
    sys.modules.pop("hw6utils.figures", None)
    nb = load(RELEASE_DIR / f"{NOTEBOOK}.ipynb")
    ids = _ids(nb)
    before = plt.get_fignums()
    for grade_id in FIGURES:
        exec(compile(nb.cells[ids.index(grade_id)].source, grade_id, "exec"), {})
    assert [obj.data[:8] for obj in shown] == [b"\x89PNG\r\n\x1a\n"] * len(FIGURES)
    assert plt.get_fignums() == before


def _visible_text(nb) -> str:
    """What a student reads: every Markdown cell and the code of every cell, as released."""
    return "\n".join(cell.source for cell in nb.cells)


def test_no_answer_in_the_visible_cells():
    nb = load(RELEASE_DIR / f"{NOTEBOOK}.ipynb")
    text = _visible_text(nb)
    # The written answers' key statements (3e-3j) and the 3h observation are asked for, not told.
    for giveaway in (r"2\(\\hat y - y\)\s*W_f", r"\(W_h\)\^\{?T\s*-\s*t", r"more slowly", r"\\operatorname\{diag\}\(f",
                     r"shape that 3e predicts", r"still vanish over long spans", r"Explosion is still possible"):
        assert not re.search(giveaway, text), f"the release of {NOTEBOOK} gives away {giveaway!r}"
    leaked = sorted(line for line in secret_lines(NOTEBOOK) if line in text)
    assert not leaked, leaked[:3]
    answer = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == "answer_3h")
    assert answer.cell_type == "markdown" and "YOUR ANSWER HERE" in answer.source


def test_3h_answer_cell_is_graded_by_hand_with_a_reference_answer():
    meta = nbgrader_meta(next(c for c in load(SOURCE_DIR / f"{NOTEBOOK}.ipynb").cells
                              if nbgrader_meta(c).get("grade_id") == "answer_3h"))
    assert meta["grade"] and meta["solution"] and meta["points"] == 1
    ids = _ids(load(SOURCE_DIR / f"{NOTEBOOK}.ipynb"))
    assert ids.index("test_lstm_layer_gates") < ids.index("p3h_question") < ids.index("answer_3h") < ids.index("p3i_question")


def test_no_grader_mechanics_or_earlier_version_in_visible_text():
    text = _visible_text(load(RELEASE_DIR / f"{NOTEBOOK}.ipynb"))
    for phrase in ("earlier version", "simplefilter", "importlib.reload", "stderr would cost"):
        assert phrase not in text, phrase
    instructions = next(c for c in load(RELEASE_DIR / f"{NOTEBOOK}.ipynb").cells
                        if nbgrader_meta(c).get("grade_id") == "p3c_instructions").source
    assert "torch.randn(batch_size, seq_len, 1)" in instructions  # the draw order the tests rely on


@pytest.mark.slow
def test_untouched_release_runs_with_only_not_implemented_and_its_consequences(tmp_path):
    from nbclient import NotebookClient

    work = tmp_path / "hw6"
    shutil.copytree(RELEASE_DIR, work, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    nb = nbformat.read(str(work / f"{NOTEBOOK}.ipynb"), as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(work)}}).execute()
    failed, stderr = {}, []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        grade_id = nbgrader_meta(cell).get("grade_id")
        for out in cell.outputs:
            if out.output_type == "error":
                failed[grade_id] = out.ename
            if out.output_type == "stream" and out.name == "stderr":
                stderr.append((grade_id, out.text[:200]))
    test_cells = {nbgrader_meta(c)["grade_id"] for c in nb.cells if is_test_cell(c)}
    assert not stderr, stderr
    assert set(failed) == test_cells | TRAINING_CELLS, "only test cells and the training runs may fail"
    assert {failed[g] for g in TRAINING_CELLS} == {"NotImplementedError"}
    consequences = {g: e for g, e in failed.items() if e != "NotImplementedError"}
    assert set(consequences) <= {"test_training_rnn", "test_training_lstm"}, consequences
    assert set(consequences.values()) <= {"AssertionError"}, consequences
    figures = [c for c in nb.cells if nbgrader_meta(c).get("grade_id") in FIGURES]
    assert all(any("image/png" in o.get("data", {}) for o in c.outputs) for c in figures)
