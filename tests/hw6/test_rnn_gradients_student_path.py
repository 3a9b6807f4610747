"""rnn_gradients.ipynb as a student meets it: the untouched release runs top to bottom with only
NotImplementedError and its consequences, shows its figures before any code is written, and gives
away no answer in its visible cells; what its 3k cells report about a student's training (a bias-less
layer included) is what the grader judges."""
from __future__ import annotations

import contextlib
import io
import re
import shutil

import nbformat
import pytest
import torch

from coursekit.testing.notebooks import (RELEASE_DIR, SOURCE_DIR, helper_module, is_test_cell, load, nbgrader_meta,
                                         runnable_source, solution_namespace, trusted_checks, trusted_judges,
                                         working_directory)
from coursekit.testing.notebooks import test_cell_records as cell_records  # (a helper, not a test)
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


# --- 3k: what the notebook reports about a student's training is what the grader judges -------------

RUN_LINE = re.compile(r"^(?P<name>(?:rnn|lstm)_\d, [a-z ]+?)\s+final loss (?P<loss>\S+)\s+"
                      r"\(target < (?P<target>[^)]+)\): (?P<verdict>.+)$", re.M)
SHORT_STEPS = 60  # agreement does not depend on how long a run trains; runs this short miss their targets


def _biasless_rnn_layer(reference: dict) -> type:
    """A student's RNNLayer that leaves out the bias: h_t = tanh(W_h h_{t-1} + W_x x_t) (b is never read)."""
    class BiaslessRNNLayer(reference["RNNLayer"]):
        def forward(self, x):
            h, h_list = x.new_zeros(x.shape[0], self.hidden_size), []
            for t in range(x.shape[1]):
                h = self.nonlinearity(h @ self.W_h.T + x[:, t] @ self.W_x.T)
                h_list.append(h)
            self.store_h_for_grad(h_list)
            return torch.stack(h_list, dim=1), h

    return BiaslessRNNLayer


def _biasless_lstm_layer(reference: dict) -> type:
    """A student's LSTMLayer that leaves out the four gate biases b_f, b_i, b_o, b_g."""
    class BiaslessLSTMLayer(reference["LSTMLayer"]):
        def forward(self, x, hc0=None):
            h, c = hc0 if hc0 is not None else (x.new_zeros(x.shape[0], self.hidden_size),) * 2
            h_list = []
            for t in range(x.shape[1]):
                gate = {k: x[:, t] @ getattr(self, f"U_{k}") + h @ getattr(self, f"W_{k}") for k in "fiog"}
                c = torch.sigmoid(gate["f"]) * c + torch.sigmoid(gate["i"]) * torch.tanh(gate["g"])
                h = torch.tanh(c) * torch.sigmoid(gate["o"])
                h_list.append(h)
            self.store_h_for_grad(h_list)
            return torch.stack(h_list, dim=1), (h, c)

    return BiaslessLSTMLayer


def _training_cells_run(namespace: dict, kind: str) -> tuple[dict, str]:
    """The notebook's training cell(s) for ``kind`` run on a copy of ``namespace`` as a student runs them,
    with SHORT_STEPS per run (the other kind's runs: 1 step); (namespace after, what the cells printed).
    The stacked nets are defined again in the copy, so that they build the copy's layers."""
    from dataclasses import replace

    nb = load(SOURCE_DIR / f"{NOTEBOOK}.ipynb")
    ns = dict(namespace)
    ns["RECIPES"] = {name: replace(recipe, steps=SHORT_STEPS if name == kind else 1)
                     for name, recipe in namespace["RECIPES"].items()}
    printed = io.StringIO()
    with working_directory(SOURCE_DIR), contextlib.redirect_stdout(printed), contextlib.redirect_stderr(io.StringIO()):
        for grade_id in ("stacked_rnn", "stacked_lstm", "train_rnn", "train_lstm")[: 3 if kind == "rnn" else 4]:
            cell = next(c for c in nb.cells if nbgrader_meta(c).get("grade_id") == grade_id)
            exec(compile(runnable_source(cell.source), grade_id, "exec"), ns)
    return ns, printed.getvalue()


@pytest.fixture(scope="module")
def before_training() -> dict:
    """The reference namespace just before the 3k training cells."""
    return solution_namespace(f"{NOTEBOOK}.ipynb", until_grade_id="train_rnn")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_biasless_layer_notebook_and_grader_agree_on_every_run(before_training, kind, monkeypatch):
    """A student who leaves out the bias: for every run, the final loss the training cell prints is the
    one the grader recomputes from the published weights, every run the cell flags as missing its target
    is failed by the grader (and no other), the student's own test cell names all of them, not only the
    first, and so does the feedback."""
    from coursekit.feedback import failed_checks
    from coursekit.verdicts import judge_cell_named, verdict_outputs

    layer = {"rnn": ("RNNLayer", _biasless_rnn_layer), "lstm": ("LSTMLayer", _biasless_lstm_layer)}[kind]
    grade_id = f"test_training_{kind}"
    judge = trusted_judges()("training.final_loss")
    reference_ns, _ = _training_cells_run(before_training, kind)
    reference, error = cell_records(f"{NOTEBOOK}.ipynb", grade_id, dict(reference_ns))
    assert error is None, error
    for student_ns, printed in (_training_cells_run(before_training, kind),  # the reference agrees too
                                _training_cells_run(dict(before_training, **{layer[0]: layer[1](before_training)}),
                                                    kind)):
        lines = {m["name"]: m for m in RUN_LINE.finditer(printed) if m["name"].startswith(kind)}
        assert len(lines) == 4, printed
        records, error = cell_records(f"{NOTEBOOK}.ipynb", grade_id, dict(student_ns))
        assert error is None, error
        ref_by_name = {r["name"]: r for r in reference}
        judged = {r["name"].removesuffix(": final loss"): judge(r["value"], reference=ref_by_name[r["name"]]["value"])
                  for r in records if r["judge"] == "training.final_loss"}
        assert set(judged) == set(lines)
        for name, line in lines.items():
            reported = student_ns[f"{kind}_runs"][name]["final_loss"]
            assert line["loss"] == f"{judged[name]:.2e}", (name, line["loss"], judged[name])
            assert judged[name] == pytest.approx(reported, rel=1e-5), name
        flagged = {name for name, line in lines.items() if line["verdict"] == "MISSES THE TARGET"}
        assert {name for name, line in lines.items() if line["verdict"] == "meets the target"} == set(lines) - flagged
        assert len(flagged) >= 2, "runs this short should miss their targets"
        assert f"{len(flagged)} run(s) missed the target: " in printed
        assert all(name in printed.rsplit("missed the target: ", 1)[1].splitlines()[0] for name in flagged)
        # the grader: every flagged run fails its final-loss check, no other run does
        reasons, named, _ = judge_cell_named(reference, records, trusted_checks(), trusted_judges())
        failed_runs = {reason.split(": final loss:")[0] for reason in reasons if ": final loss:" in reason}
        assert failed_runs == flagged, reasons
        # the feedback names each of them
        cell = nbformat.v4.new_code_cell("")
        cell.outputs = verdict_outputs(reasons, len(reference))
        cell.metadata["coursekit"] = {"failed_checks": named}
        assert {f"{name}: final loss failed" for name in flagged} <= set(failed_checks(cell))
        # on the student's machine (no grader's judges), the test cell fails naming every flagged run
        records_module = helper_module("records")

        def unavailable(judge_name):
            raise records_module.JudgeUnavailable(judge_name)

        monkeypatch.setattr(helper_module("checks"), "resolve_judge", unavailable)
        source = next(c for c in load(SOURCE_DIR / f"{NOTEBOOK}.ipynb").cells
                      if nbgrader_meta(c).get("grade_id") == grade_id).source.split("### BEGIN HIDDEN TESTS")[0]
        with working_directory(SOURCE_DIR), pytest.raises(AssertionError) as failure:
            exec(compile(runnable_source(source), grade_id, "exec"), dict(student_ns))
        assert {name for name in lines if f"{name}: final loss" in str(failure.value)} == flagged
        assert "as your own code computes it" in str(failure.value)
        monkeypatch.undo()
