"""One bug costs once in rnn_gradients.ipynb: a mistake in one answer fails that answer's test cell only.

Each scenario swaps one wrong (or unfinished) answer into the reference namespace and grades every fast
test cell the way the grader does; exactly the cells of the broken answer may fail. Later parts build
their inputs without the student's earlier answers (stand-ins from hw6utils.standins), so for instance
a bias-twice RNNLayer costs the 3 points of test_rnn_layer_values, not 9.
"""
from __future__ import annotations

import os
from typing import Any, Callable

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402

from coursekit.testing.notebooks import run_test_cell, solution_namespace  # noqa: E402
from tests.hw6.rejection import rnn_variant  # noqa: E402

NOTEBOOK = "rnn_gradients.ipynb"
FAST_CELLS = ("test_rnn_layer_values", "test_rnn_layer_torch", "test_regression_model", "test_generate_batch",
              "test_loss_fn", "test_gradient_norms", "test_lstm_layer_values", "test_lstm_layer_gates",
              "test_stacked_rnn", "test_stacked_lstm")


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    return solution_namespace(NOTEBOOK, until_grade_id="train_rnn")


def failing_cells(namespace: dict[str, Any]) -> set[str]:
    """The fast test cells the grader would fail for ``namespace``."""
    failed = set()
    for grade_id in FAST_CELLS:
        try:
            run_test_cell(NOTEBOOK, grade_id, dict(namespace))
        except AssertionError:
            failed.add(grade_id)
    return failed


def _unfinished(cls: type, method: str = "forward") -> type:
    """``cls`` with ``method`` still raising NotImplementedError, as in the untouched release."""
    def stub(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError()

    return type(cls.__name__, (cls,), {method: stub})


def _lstm_swapped_f_and_i(reference: dict[str, Any]) -> type:
    """An LSTMLayer whose forget gate uses the input gate's parameters and vice versa."""
    base = reference["LSTMLayer"]

    def gate(layer, k: str, x, h):
        return x @ getattr(layer, f"U_{k}") + h @ getattr(layer, f"W_{k}") + getattr(layer, f"b_{k}")

    class Swapped(base):
        def forward(self, x, hc0=None):
            h = c = x.new_zeros(x.shape[0], self.hidden_size)
            if hc0 is not None:
                h, c = hc0
            h_list = []
            for t in range(x.shape[1]):
                f, i = torch.sigmoid(gate(self, "i", x[:, t], h)), torch.sigmoid(gate(self, "f", x[:, t], h))
                o, g = torch.sigmoid(gate(self, "o", x[:, t], h)), torch.tanh(gate(self, "g", x[:, t], h))
                c = f * c + i * g
                h = torch.tanh(c) * o
                h_list.append(h)
            self.store_h_for_grad(h_list)
            return torch.stack(h_list, dim=1), (h, c)

    return Swapped


SCENARIOS: dict[str, tuple[Callable[[dict[str, Any]], dict[str, Any]], set[str]]] = {
    "RNNLayer adds the bias twice": (
        lambda r: {"RNNLayer": rnn_variant(r, lambda s, h, x: s.nonlinearity(h @ s.W_h.T + s.b + x @ s.W_x.T + s.b))},
        {"test_rnn_layer_values"}),
    "RNNLayer always uses tanh": (
        lambda r: {"RNNLayer": rnn_variant(r, lambda s, h, x: torch.tanh(h @ s.W_h.T + x @ s.W_x.T + s.b))},
        {"test_rnn_layer_torch"}),
    "RNNLayer uses W_h untransposed": (
        lambda r: {"RNNLayer": rnn_variant(r, lambda s, h, x: s.nonlinearity(h @ s.W_h + x @ s.W_x.T + s.b))},
        {"test_rnn_layer_torch"}),
    "RNNLayer unfinished": (
        lambda r: {"RNNLayer": _unfinished(r["RNNLayer"])},
        {"test_rnn_layer_values", "test_rnn_layer_torch"}),
    "RecurrentRegressionModel unfinished": (
        lambda r: {"RecurrentRegressionModel": _unfinished(r["RecurrentRegressionModel"])},
        {"test_regression_model"}),
    "LSTMLayer unfinished": (
        lambda r: {"LSTMLayer": _unfinished(r["LSTMLayer"])},
        {"test_lstm_layer_values", "test_lstm_layer_gates"}),
    "LSTMLayer with forget and input gates swapped": (
        lambda r: {"LSTMLayer": _lstm_swapped_f_and_i(r)},
        {"test_lstm_layer_gates"}),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_one_bug_fails_only_its_own_cells(reference: dict[str, Any], scenario: str) -> None:
    make, expected = SCENARIOS[scenario]
    assert failing_cells(dict(reference, **make(reference))) == expected


def test_the_reference_fails_no_cell(reference: dict[str, Any]) -> None:
    assert failing_cells(reference) == set()


def test_unfinished_data_and_loss_cost_their_own_cells(reference: dict[str, Any]) -> None:
    def unfinished(*args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError()

    cells = ("test_generate_batch", "test_loss_fn", "test_regression_model", "test_stacked_rnn")
    for name, own in (("generate_batch", "test_generate_batch"), ("loss_fn", "test_loss_fn")):
        ns = dict(reference, **{name: unfinished})
        failed = set()
        for grade_id in cells:
            try:
                run_test_cell(NOTEBOOK, grade_id, dict(ns))
            except AssertionError:
                failed.add(grade_id)
        assert failed == {own}, name
