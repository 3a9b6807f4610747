"""Problem 3d cells of rnn_gradients.ipynb: the student's measurement `gradient_norms` (autograded), the
visualizer cell that plots it, and the screenshot answer (graded by hand).

The reference passes the test cell; plausible mistakes are rejected by the checks; the reference agrees
with the instructor-only reference implementation on every input the cell uses.
"""
from __future__ import annotations

import re

import pytest
import torch

from coursekit.testing.notebooks import (SOURCE_DIR, cell_by_grade_id, load, nbgrader_meta, reference_records,
                                         solution_namespace)
from coursekit.testing.notebooks import test_cell_records as cell_records  # (not a test)
from hw6grading.gradients import gradient_norms as trusted_gradient_norms
from tests.hw6.rejection import (BEGIN_HIDDEN, assert_accepted, assert_rejected, assert_sabotage_rejected,
                                 reference_hidden_records)

NB = "rnn_gradients.ipynb"
CELLS = ["test_gradient_norms"]


@pytest.fixture(scope="module")
def reference():
    # everything up to (not including) the visualizer cell: RNNLayer, ..., gradient_norms
    return solution_namespace(NB, until_grade_id="gradviz_show")


def test_3d_cells_and_metadata():
    nb = load(SOURCE_DIR / NB)
    ids = [nbgrader_meta(c).get("grade_id") for c in nb.cells]
    order = ["test_loss_fn", "gradviz_intro", "fig_3d_many_to_one_graph", "gradient_norms", "test_gradient_norms",
             "gradviz_show", "p3d_screenshot", "answer_3d", "gradviz_try", "p3e_question"]
    positions = [ids.index(grade_id) for grade_id in order]
    assert positions == list(range(positions[0], positions[0] + len(order))), "3d cells sit between 3c and 3e"
    assert nbgrader_meta(cell_by_grade_id(nb, "test_gradient_norms"))["points"] == 2
    assert nbgrader_meta(cell_by_grade_id(nb, "gradient_norms"))["solution"] is True
    answer = cell_by_grade_id(nb, "answer_3d")
    meta = nbgrader_meta(answer)
    assert answer.cell_type == "markdown" and meta["grade"] and meta["solution"] and meta["points"] == 1
    intro = cell_by_grade_id(nb, "gradviz_intro").source
    assert "summed over several paths" in intro and r"\qquad (5)" in intro and "screenshot" in intro.lower()
    show = cell_by_grade_id(nb, "gradviz_show")
    assert nbgrader_meta(show)["locked"] and not nbgrader_meta(show)["grade"]
    assert "show_gradient_visualizer" in show.source


def test_reference_passes(reference):
    assert_accepted(NB, CELLS, reference)


def test_test_cell_publishes_checks_only():
    source = cell_by_grade_id(load(SOURCE_DIR / NB), "test_gradient_norms").source
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("#"))
    assert not re.search(r"^\s*assert\b", code, re.M) and "assert_close" not in code
    assert BEGIN_HIDDEN in source
    records = reference_records(NB, "test_gradient_norms")
    hidden = reference_hidden_records(NB, "test_gradient_norms")
    names = [r["name"] for r in records]
    assert len(names) == len(set(names))
    hidden_names = {r["name"] for r in hidden}
    assert hidden and not any(r["visible"] for r in hidden)
    visible = [r for r in records if r["name"] not in hidden_names]
    assert visible and all(r["visible"] for r in visible)


def test_reference_agrees_with_the_instructor_copy_on_every_input_the_cell_uses(reference):
    calls = []

    def spy(model, x, y, last_timestep_only=True):  # models hold non-leaf states: no deep copies here
        result = reference["gradient_norms"](model, x, y, last_timestep_only)
        calls.append(((model, x.clone(), y.clone(), last_timestep_only), result))
        return result

    records, error = cell_records(NB, "test_gradient_norms", dict(reference, gradient_norms=spy))
    assert error is None and records and len(calls) >= 10
    for (model, x, y, last), result in calls:
        expected = trusted_gradient_norms(model, x, y, last)
        for got, want in zip(result, expected):
            assert list(got) == pytest.approx(list(want), rel=1e-6, abs=1e-9)


def _summed_over_batch(model, x, y, last_timestep_only=True):
    h, g = _trusted(model, x, y, last_timestep_only)
    return [v * x.shape[0] for v in h], [v * x.shape[0] for v in g]


def _trusted(model, x, y, last_timestep_only=True):
    return trusted_gradient_norms(model, x, y, last_timestep_only)


def _ignores_the_target(model, x, y, last_timestep_only=True):
    return trusted_gradient_norms(model, x, y, True)


def _squared_norms(model, x, y, last_timestep_only=True):
    h, g = trusted_gradient_norms(model, x, y, last_timestep_only)
    return [v * v for v in h], [v * v for v in g]


def _reversed_in_time(model, x, y, last_timestep_only=True):
    h, g = trusted_gradient_norms(model, x, y, last_timestep_only)
    return h[::-1], g[::-1]


def _gradient_of_the_output(model, x, y, last_timestep_only=True):
    pred, all_h = model(x)
    all_h.retain_grad()
    ((pred - y) ** 2).mean().backward()
    h = all_h.detach().norm(dim=2).mean(dim=0).tolist()
    return h, all_h.grad.norm(dim=2).mean(dim=0).tolist()


@pytest.mark.parametrize("wrong", [_summed_over_batch, _ignores_the_target, _squared_norms, _reversed_in_time,
                                   _gradient_of_the_output])
def test_rejects_wrong_measurements(reference, wrong):
    assert_rejected(NB, CELLS, reference, gradient_norms=wrong)


def test_wrong_answers_are_rejected_in_a_sabotaged_kernel(reference):
    assert_sabotage_rejected(NB, "test_gradient_norms", reference, gradient_norms=_squared_norms)


def test_visualizer_cell_runs_headless_with_reference_and_with_unfinished_code(reference, monkeypatch, capsys):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    source = cell_by_grade_id(load(SOURCE_DIR / NB), "gradviz_show").source
    namespace = dict(reference)
    exec(compile(source, "<gradviz_show>", "exec"), namespace)  # not in a kernel: static plot
    assert namespace["visualizer"] is None and len(shown) == 1
    out = capsys.readouterr().out
    assert "static plot" in out and "eigenvalue" not in out

    def unfinished(model, x, y, last_timestep_only=True):
        raise NotImplementedError()

    namespace = dict(reference, gradient_norms=unfinished)
    exec(compile(source, "<gradviz_show>", "exec"), namespace)
    assert "not implemented" in capsys.readouterr().out.lower()
    namespace = {k: v for k, v in reference.items() if k != "gradient_norms"}
    exec(compile(source, "<gradviz_show>", "exec"), namespace)
    assert "gradient_norms is not defined yet" in capsys.readouterr().out


@pytest.mark.slow
def test_visualizer_cell_in_a_real_kernel_shows_widget_and_static_png(tmp_path):
    """nbclient (a real kernel, no frontend): the cell shows the widget plus a PNG fallback, no errors."""
    import base64
    import shutil

    import nbclient
    import nbformat

    folder = tmp_path / "hw6"
    shutil.copytree(SOURCE_DIR, folder, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    nb = load(folder / NB)
    ids = [nbgrader_meta(c).get("grade_id") for c in nb.cells]
    nb.cells = nb.cells[: ids.index("gradviz_show") + 1]
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(folder)}}).execute()
    nbformat.validate(nb)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    outputs = nb.cells[-1].outputs
    assert len(outputs) == 1 and outputs[0].output_type == "display_data"
    data = outputs[0].data
    assert "application/vnd.jupyter.widget-view+json" in data
    assert base64.b64decode(data["image/png"])[:8] == b"\x89PNG\r\n\x1a\n"
