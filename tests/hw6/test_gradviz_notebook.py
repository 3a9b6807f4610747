"""Problem 3d cells of rnn_gradients.ipynb: the graded spectral-radius functions and the visualizer cell.

The reference passes the test cell; plausible mistakes are rejected by the hidden tests on their own.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from coursekit.testing.notebooks import (SOURCE_DIR, cell_by_grade_id, load, nbgrader_meta, reference_records, run_test_cell,
                                         solution_namespace)
from tests.hw6.rejection import (BEGIN_HIDDEN, LyingFloat, assert_accepted, assert_rejected, assert_sabotage_rejected,
                                 reference_calls, reference_hidden_records)

NB = "rnn_gradients.ipynb"
CELLS = ["test_spectral_radius"]



@pytest.fixture(scope="module")
def reference():
    # everything up to (not including) the visualizer cell: RNNLayer, ..., spectral_radius
    return solution_namespace(NB, until_grade_id="gradviz_show")


def test_3d_cells_and_metadata():
    nb = load(SOURCE_DIR / NB)
    ids = [nbgrader_meta(c).get("grade_id") for c in nb.cells]
    assert "gradviz_placeholder" not in ids
    order = ["test_loss_fn", "gradviz_intro", "spectral_radius", "test_spectral_radius",
             "gradviz_show", "gradviz_try", "p3e_question"]
    positions = [ids.index(grade_id) for grade_id in order]
    assert positions == sorted(positions) and positions[-1] - positions[1] == 5, "3d cells sit between 3c and 3e"
    assert nbgrader_meta(cell_by_grade_id(nb, "test_spectral_radius"))["points"] == 2
    assert nbgrader_meta(cell_by_grade_id(nb, "spectral_radius"))["solution"] is True
    show = cell_by_grade_id(nb, "gradviz_show")
    assert nbgrader_meta(show)["locked"] and not nbgrader_meta(show)["grade"]
    assert "show_gradient_visualizer" in show.source


def test_reference_passes(reference):
    assert_accepted(NB, CELLS, reference)


def test_test_cell_publishes_checks_only():
    """Same rules as rejection.assert_check_style, for the 3d cell (no direct asserts, unique names,
    visible checks first, hidden checks that name no expected value)."""
    import re

    source = cell_by_grade_id(load(SOURCE_DIR / NB), "test_spectral_radius").source
    code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("#"))
    assert not re.search(r"^\s*assert\b", code, re.M) and "assert_close" not in code
    assert BEGIN_HIDDEN in source
    records = reference_records(NB, "test_spectral_radius")
    hidden = reference_hidden_records(NB, "test_spectral_radius")
    names = [r["name"] for r in records]
    assert len(names) == len(set(names))
    hidden_names = {r["name"] for r in hidden}
    assert hidden and not any(r["visible"] for r in hidden)
    visible = [r for r in records if r["name"] not in hidden_names]
    assert visible and all(r["visible"] for r in visible)


def test_reference_answers_are_right_on_every_input_the_cell_uses(reference):
    """Hidden checks compare with the reference; here each reference answer is verified with numpy."""
    calls = reference_calls(NB, "test_spectral_radius", reference, "spectral_radius")
    assert len(calls) >= 25
    for call in calls:
        weight = call.args[0].detach().double().numpy()
        assert isinstance(call.result, float)
        assert call.result == pytest.approx(float(np.abs(np.linalg.eigvals(weight)).max()), rel=1e-9, abs=1e-12)
    calls = reference_calls(NB, "test_spectral_radius", reference, "critical_weight_scale")
    assert len(calls) == 4
    for call in calls:
        w = call.args[0].W_h.detach().double().numpy()
        assert float(np.abs(np.linalg.eigvals(call.result * w)).max()) == pytest.approx(1.0, rel=1e-9)


def test_reference_values(reference):
    w = torch.tensor([[0.0, 1.0], [-4.0, 0.0]])  # eigenvalues +-2i
    assert reference["spectral_radius"](w) == pytest.approx(2.0)
    layer = reference["RNNLayer"](1, 4)
    rho = float(np.abs(np.linalg.eigvals(layer.W_h.detach().double().numpy())).max())
    assert reference["critical_weight_scale"](layer) == pytest.approx(1.0 / rho)


def _largest_singular_value(weight):
    return float(torch.linalg.matrix_norm(weight.detach().double(), ord=2))


def _largest_real_part(weight):
    return float(torch.linalg.eigvals(weight.detach().double()).real.max())


def _eigvalsh(weight):
    return float(torch.linalg.eigvalsh(weight.detach().double()).abs().max())


def _max_abs_entry(weight):
    return float(weight.detach().abs().max())


@pytest.mark.parametrize("wrong", [_largest_singular_value, _largest_real_part, _eigvalsh, _max_abs_entry],
                         ids=["singular_value", "real_part", "eigvalsh", "max_entry"])
def test_rejects_wrong_spectral_radius(reference, wrong):
    def critical(layer):
        return 1.0 / wrong(layer.W_h)

    assert_rejected(NB, CELLS, reference, spectral_radius=wrong, critical_weight_scale=critical)


def test_rejects_wrong_critical_scale(reference):
    sr = reference["spectral_radius"]

    def not_inverted(layer):
        return sr(layer.W_h)

    def rescales_in_place(layer):
        s = 1.0 / sr(layer.W_h)
        with torch.no_grad():
            layer.W_h.mul_(s)
        return s

    def squared(layer):
        return 1.0 / sr(layer.W_h) ** 2

    for wrong in (not_inverted, rescales_in_place, squared):
        assert_rejected(NB, CELLS, reference, critical_weight_scale=wrong)


def test_wrong_answers_are_rejected_in_a_sabotaged_kernel(reference):
    assert_sabotage_rejected(NB, "test_spectral_radius", reference, spectral_radius=_largest_singular_value,
                             critical_weight_scale=lambda layer: 1.0 / _largest_singular_value(layer.W_h))

    def lying(weight):
        return LyingFloat(0.0)

    assert_rejected(NB, CELLS, reference, spectral_radius=lying)


def test_rejects_tensor_instead_of_float(reference):
    def as_tensor(weight):
        return torch.linalg.eigvals(weight.detach().double()).abs().max()

    # a 0-d tensor is not a Python float: the visible test asks for one
    with pytest.raises(AssertionError):
        run_test_cell(NB, "test_spectral_radius", dict(reference, spectral_radius=as_tensor))


def test_visualizer_cell_runs_headless_with_reference_and_with_unfinished_layer(reference, monkeypatch, capsys):
    import IPython.display

    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    source = cell_by_grade_id(load(SOURCE_DIR / NB), "gradviz_show").source
    namespace = dict(reference)
    exec(compile(source, "<gradviz_show>", "exec"), namespace)  # not in a kernel: static plot
    assert namespace["visualizer"] is None and len(shown) == 1
    assert "eigenvalue" in capsys.readouterr().out

    class Unfinished(reference["RNNLayer"]):
        def forward(self, x):
            raise NotImplementedError()

    namespace = dict(reference, RNNLayer=Unfinished)
    exec(compile(source, "<gradviz_show>", "exec"), namespace)
    assert "not implemented" in capsys.readouterr().out


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
