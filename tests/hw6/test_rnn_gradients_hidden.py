"""The test cells of rnn_gradients.ipynb (Problem 3) accept the reference and reject wrong answers.

Each wrong implementation below is a plausible student mistake. It is put into a copy of the
reference namespace, and both the whole test cell and its hidden section on its own must fail on it
(so the hidden tests reject it by themselves, whatever the visible checks do). For the mistakes that
the visible checks cannot see, we also show that the visible part alone passes.
"""
from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest
import torch
from torch import nn

from notebook_cells import (SOURCE_DIR, cell_by_grade_id, load, run_test_cell, runnable_source,
                            solution_namespace, working_directory)

NOTEBOOK = "rnn_gradients.ipynb"
TRAINING_TESTS = ("test_training_rnn", "test_training_lstm")
FAST_TESTS = ("test_rnn_layer_values", "test_rnn_layer_torch", "test_regression_model", "test_generate_batch",
              "test_loss_fn", "test_lstm_layer_values", "test_lstm_layer_gates", "test_stacked_rnn",
              "test_stacked_lstm")


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    """Namespace after running the reference cells up to (not including) the training runs."""
    return solution_namespace(NOTEBOOK, until_grade_id="train_rnn")


def namespace_with(reference: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    ns = dict(reference)
    ns.update(overrides)
    return ns


BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


def _cell_part(grade_id: str, part: str) -> str:
    source = cell_by_grade_id(load(SOURCE_DIR / NOTEBOOK), grade_id).source
    assert BEGIN_HIDDEN in source, f"{grade_id} has no hidden tests"
    if part == "whole":
        return source
    if part == "visible":
        return source.split(BEGIN_HIDDEN)[0]
    return source.split(BEGIN_HIDDEN, 1)[1].split(END_HIDDEN, 1)[0]


def run_part(grade_id: str, part: str, ns: dict[str, Any]) -> None:
    """Run the visible part (what students see), the hidden section, or the whole test cell."""
    with working_directory(SOURCE_DIR):
        exec(compile(runnable_source(_cell_part(grade_id, part)), f"<{grade_id}:{part}>", "exec"), ns)


def _expect_failure(run, label: str) -> None:
    with pytest.raises(Exception) as excinfo:
        run()
    assert not isinstance(excinfo.value, (NameError, SyntaxError)), f"{label} is broken: {excinfo.value!r}"


def assert_rejected(grade_id: str, ns: dict[str, Any], *, via_run_test_cell: bool = True) -> None:
    """The whole cell fails, and so does its hidden section alone (not because a test is broken).

    These cells assert in the kernel (no check() records), so running the whole cell directly is
    what run_test_cell does too; it is used for the training cells, where run_test_cell would first
    retrain the reference models to collect (empty) reference records.
    """
    if via_run_test_cell:
        _expect_failure(lambda: run_test_cell(NOTEBOOK, grade_id, dict(ns)), grade_id)
    else:
        _expect_failure(lambda: run_part(grade_id, "whole", dict(ns)), grade_id)
    _expect_failure(lambda: run_part(grade_id, "hidden", dict(ns)), f"{grade_id} (hidden section)")


def hidden_only_catches(grade_id: str, ns: dict[str, Any]) -> None:
    """The visible checks pass on this mistake; the hidden tests reject it."""
    run_part(grade_id, "visible", dict(ns))
    assert_rejected(grade_id, ns)


# --- the reference passes -------------------------------------------------------------------

@pytest.mark.parametrize("grade_id", FAST_TESTS)
def test_reference_passes(reference: dict[str, Any], grade_id: str) -> None:
    run_test_cell(NOTEBOOK, grade_id, dict(reference))


def test_every_test_cell_is_covered() -> None:
    nb = load(SOURCE_DIR / NOTEBOOK)
    test_ids = {c.metadata["nbgrader"]["grade_id"] for c in nb.cells
                if c.metadata.get("nbgrader", {}).get("grade") and not c.metadata["nbgrader"].get("solution")}
    # 3d's test cell (test_spectral_radius) is covered in tests/hw6/test_gradviz_notebook.py
    assert test_ids - {"test_spectral_radius"} == set(FAST_TESTS) | set(TRAINING_TESTS)


# --- 3a RNNLayer ----------------------------------------------------------------------------

def _rnn_variant(reference: dict[str, Any], step) -> type:
    """An RNNLayer whose forward uses ``step(layer, h, x_t) -> h_next`` and h_0 = 0."""
    base = reference["RNNLayer"]

    class Variant(base):
        def forward(self, x):
            h = x.new_zeros(x.shape[0], self.hidden_size)
            h_list = []
            for t in range(x.shape[1]):
                h = step(self, h, x[:, t])
                h_list.append(h)
            self.store_h_for_grad(h_list)
            return torch.stack(h_list, dim=1), h

    return Variant


def test_rnn_two_bias_parameters_rejected(reference: dict[str, Any]) -> None:
    base = reference["RNNLayer"]

    class TwoBiases(base):
        def __init__(self, input_size, hidden_size, nonlinearity=torch.tanh):
            super().__init__(input_size, hidden_size, nonlinearity)
            self.b_hh = nn.Parameter(torch.zeros(hidden_size))

        def forward(self, x):
            h = x.new_zeros(x.shape[0], self.hidden_size)
            h_list = []
            for t in range(x.shape[1]):
                h = self.nonlinearity(h @ self.W_h.T + self.b_hh + x[:, t] @ self.W_x.T + self.b)
                h_list.append(h)
            self.store_h_for_grad(h_list)
            return torch.stack(h_list, dim=1), h

    ns = namespace_with(reference, RNNLayer=TwoBiases)
    assert_rejected("test_rnn_layer_values", ns)
    assert_rejected("test_rnn_layer_torch", ns)


def test_rnn_bias_added_twice_rejected(reference: dict[str, Any]) -> None:
    layer = _rnn_variant(reference, lambda s, h, x: s.nonlinearity(h @ s.W_h.T + s.b + x @ s.W_x.T + s.b))
    assert_rejected("test_rnn_layer_values", namespace_with(reference, RNNLayer=layer))


@pytest.mark.parametrize("h0", ["ones", "small_noise"])
def test_rnn_nonzero_initial_state_rejected(reference: dict[str, Any], h0: str) -> None:
    base = reference["RNNLayer"]

    class NonzeroStart(base):
        def forward(self, x):
            if h0 == "ones":
                h = x.new_ones(x.shape[0], self.hidden_size)
            else:
                h = 1e-3 * torch.randn(x.shape[0], self.hidden_size, generator=torch.Generator().manual_seed(0))
            h_list = []
            for t in range(x.shape[1]):
                h = self.nonlinearity(h @ self.W_h.T + x[:, t] @ self.W_x.T + self.b)
                h_list.append(h)
            self.store_h_for_grad(h_list)
            return torch.stack(h_list, dim=1), h

    assert_rejected("test_rnn_layer_values", namespace_with(reference, RNNLayer=NonzeroStart))


def test_rnn_transposed_recurrent_weight_rejected(reference: dict[str, Any]) -> None:
    layer = _rnn_variant(reference, lambda s, h, x: s.nonlinearity(h @ s.W_h + x @ s.W_x.T + s.b))
    ns = namespace_with(reference, RNNLayer=layer)
    run_test_cell(NOTEBOOK, "test_rnn_layer_values", dict(ns))  # layout-free checks cannot see it
    assert_rejected("test_rnn_layer_torch", ns)


def test_rnn_ignoring_nonlinearity_caught_by_hidden_tests(reference: dict[str, Any]) -> None:
    layer = _rnn_variant(reference, lambda s, h, x: torch.tanh(h @ s.W_h.T + x @ s.W_x.T + s.b))
    hidden_only_catches("test_rnn_layer_values", namespace_with(reference, RNNLayer=layer))


def test_rnn_detached_h_list_caught_by_hidden_tests(reference: dict[str, Any]) -> None:
    base = reference["RNNLayer"]

    class StoresCopies(base):
        def forward(self, x):
            all_h, last_h = base.forward(self, x)
            copies = [h.detach().clone().requires_grad_() for h in self.h_list]
            self.store_h_for_grad(copies)
            return all_h, last_h

    hidden_only_catches("test_rnn_layer_values", namespace_with(reference, RNNLayer=StoresCopies))


# --- 3b RecurrentRegressionModel ------------------------------------------------------------

def test_readout_on_last_step_only_rejected(reference: dict[str, Any]) -> None:
    base = reference["RecurrentRegressionModel"]

    class LastOnly(base):
        def forward(self, x):
            all_h, last_h = self.recurrent_net(x)
            return self.output_layer(last_h).unsqueeze(1).expand(-1, x.shape[1], -1), all_h

    assert_rejected("test_regression_model", namespace_with(reference, RecurrentRegressionModel=LastOnly))


# --- 3c data and loss -----------------------------------------------------------------------

def _batch_variant(average):
    def generate_batch(seq_len=10, batch_size=1):
        x = torch.randn(batch_size, seq_len, 1)
        return x, average(x)
    return generate_batch


@pytest.mark.parametrize("variant", ["divide_by_t_plus_1", "exclusive_sum", "zero_based_count"])
def test_off_by_one_running_average_rejected(reference: dict[str, Any], variant: str) -> None:
    def average(x):
        T = x.shape[1]
        steps = torch.arange(1, T + 1, dtype=x.dtype).view(1, T, 1)
        if variant == "divide_by_t_plus_1":
            return x.cumsum(1) / (steps + 1)
        if variant == "exclusive_sum":  # mean of x_1..x_{t-1}, with y_1 = x_1
            shifted = torch.cat([x[:, :1], x.cumsum(1)[:, :-1]], dim=1)
            return shifted / torch.clamp(steps - 1, min=1)
        return x.cumsum(1) / torch.clamp(steps - 1, min=1)  # counts 0, 1, 2, ... (clamped)

    assert_rejected("test_generate_batch", namespace_with(reference, generate_batch=_batch_variant(average)))


def test_uniform_inputs_caught_by_hidden_tests(reference: dict[str, Any]) -> None:
    def generate_batch(seq_len=10, batch_size=1):
        x = torch.rand(batch_size, seq_len, 1) * 2 - 1
        return x, x.cumsum(1) / torch.arange(1, seq_len + 1, dtype=x.dtype).view(1, seq_len, 1)

    hidden_only_catches("test_generate_batch", namespace_with(reference, generate_batch=generate_batch))


def test_loss_ignoring_last_timestep_only_rejected(reference: dict[str, Any]) -> None:
    def loss_fn(pred, y, last_timestep_only=False):
        return ((pred - y) ** 2).mean()

    assert_rejected("test_loss_fn", namespace_with(reference, loss_fn=loss_fn))


def test_loss_with_sum_rejected(reference: dict[str, Any]) -> None:
    def loss_fn(pred, y, last_timestep_only=False):
        if last_timestep_only:
            pred, y = pred[:, -1], y[:, -1]
        return ((pred - y) ** 2).sum()

    assert_rejected("test_loss_fn", namespace_with(reference, loss_fn=loss_fn))


def test_loss_last_feature_instead_of_last_step_caught_by_hidden_tests(reference: dict[str, Any]) -> None:
    def loss_fn(pred, y, last_timestep_only=False):
        if last_timestep_only:
            pred, y = pred[..., -1], y[..., -1]
        return ((pred - y) ** 2).mean()

    hidden_only_catches("test_loss_fn", namespace_with(reference, loss_fn=loss_fn))


# --- 3h LSTMLayer ---------------------------------------------------------------------------

def _lstm_variant(reference: dict[str, Any], cell) -> type:
    """An LSTMLayer whose step is ``cell(layer, x_t, h, c) -> (h, c)``."""
    base = reference["LSTMLayer"]

    class Variant(base):
        def forward(self, x, hc0=None):
            if hc0 is None:
                h = x.new_zeros(x.shape[0], self.hidden_size)
                c = x.new_zeros(x.shape[0], self.hidden_size)
            else:
                h, c = hc0
            h_list = []
            for t in range(x.shape[1]):
                h, c = cell(self, x[:, t], h, c)
                h_list.append(h)
            self.store_h_for_grad(h_list)
            return torch.stack(h_list, dim=1), (h, c)

    return Variant


def _pre(layer, k: str, x, h, transpose_w: bool = False):
    W = getattr(layer, f"W_{k}")
    return x @ getattr(layer, f"U_{k}") + h @ (W.T if transpose_w else W) + getattr(layer, f"b_{k}")


def _lstm_cell(roles: dict[str, str], transpose_w: bool = False):
    """LSTM step where gate ``role`` uses the parameters of gate ``roles[role]``."""
    def cell(layer, x, h, c):
        f = torch.sigmoid(_pre(layer, roles["f"], x, h, transpose_w))
        i = torch.sigmoid(_pre(layer, roles["i"], x, h, transpose_w))
        o = torch.sigmoid(_pre(layer, roles["o"], x, h, transpose_w))
        g = torch.tanh(_pre(layer, roles["g"], x, h, transpose_w))
        c = f * c + i * g
        return torch.tanh(c) * o, c
    return cell


CORRECT_ROLES = {"f": "f", "i": "i", "o": "o", "g": "g"}


def test_lstm_variant_helper_matches_reference(reference: dict[str, Any]) -> None:
    """Sanity check of the helper used below: with the right roles it passes every LSTM test."""
    ns = namespace_with(reference, LSTMLayer=_lstm_variant(reference, _lstm_cell(CORRECT_ROLES)))
    for grade_id in ("test_lstm_layer_values", "test_lstm_layer_gates"):
        run_test_cell(NOTEBOOK, grade_id, dict(ns))


@pytest.mark.parametrize("swap", [("f", "i"), ("f", "o"), ("f", "g"), ("i", "o"), ("i", "g"), ("o", "g")])
def test_lstm_swapped_gates_rejected(reference: dict[str, Any], swap: tuple[str, str]) -> None:
    roles = dict(CORRECT_ROLES)
    a, b = swap
    roles[a], roles[b] = b, a
    ns = namespace_with(reference, LSTMLayer=_lstm_variant(reference, _lstm_cell(roles)))
    run_test_cell(NOTEBOOK, "test_lstm_layer_values", dict(ns))  # constant parameters cannot see roles
    assert_rejected("test_lstm_layer_gates", ns)


def test_lstm_transposed_recurrent_weights_rejected(reference: dict[str, Any]) -> None:
    ns = namespace_with(reference, LSTMLayer=_lstm_variant(reference, _lstm_cell(CORRECT_ROLES, transpose_w=True)))
    assert_rejected("test_lstm_layer_gates", ns)


def test_lstm_without_output_gate_rejected(reference: dict[str, Any]) -> None:
    def cell(layer, x, h, c):
        f = torch.sigmoid(_pre(layer, "f", x, h))
        i = torch.sigmoid(_pre(layer, "i", x, h))
        g = torch.tanh(_pre(layer, "g", x, h))
        c = f * c + i * g
        return torch.tanh(c), c

    assert_rejected("test_lstm_layer_values", namespace_with(reference, LSTMLayer=_lstm_variant(reference, cell)))


def test_lstm_nonzero_initial_cell_rejected(reference: dict[str, Any]) -> None:
    base = reference["LSTMLayer"]

    class CellStartsAtOne(base):
        def forward(self, x, hc0=None):
            if hc0 is None:
                hc0 = (x.new_zeros(x.shape[0], self.hidden_size), x.new_ones(x.shape[0], self.hidden_size))
            return base.forward(self, x, hc0)

    assert_rejected("test_lstm_layer_values", namespace_with(reference, LSTMLayer=CellStartsAtOne))


# --- 3k stacked nets ------------------------------------------------------------------------

def test_rnn_layer_two_fed_with_x_rejected(reference: dict[str, Any]) -> None:
    base = reference["RNN"]

    class FeedsX(base):
        def forward(self, x):
            outs, lasts = None, []
            for layer in self.layers:
                outs, last = layer(x)  # every layer reads x (a shape error when input_size != hidden_size)
                lasts.append(last)
            return outs, torch.stack(lasts)

    ns = namespace_with(reference, RNN=FeedsX)
    assert_rejected("test_stacked_rnn", ns)


def test_rnn_fed_with_x_when_sizes_match_caught_by_hidden_tests(reference: dict[str, Any]) -> None:
    """Feeds x to every layer whose input size allows it: only input_size == hidden_size exposes it."""
    base = reference["RNN"]

    class FeedsXWhenPossible(base):
        def forward(self, x):
            inp, lasts = x, []
            for layer in self.layers:
                inp, last = layer(x if layer.input_size == x.shape[-1] else inp)
                lasts.append(last)
            return inp, torch.stack(lasts)

    hidden_only_catches("test_stacked_rnn", namespace_with(reference, RNN=FeedsXWhenPossible))


def test_lstm_fed_with_x_when_sizes_match_caught_by_hidden_tests(reference: dict[str, Any]) -> None:
    base = reference["LSTM"]

    class FeedsXWhenPossible(base):
        def forward(self, x, hc0=None):
            inp, hs, cs = x, [], []
            for l, layer in enumerate(self.layers):
                state = None if hc0 is None else (hc0[0][l], hc0[1][l])
                inp, (h, c) = layer(x if layer.input_size == x.shape[-1] else inp, state)
                hs.append(h)
                cs.append(c)
            return inp, (torch.stack(hs), torch.stack(cs))

    hidden_only_catches("test_stacked_lstm", namespace_with(reference, LSTM=FeedsXWhenPossible))


def test_lstm_ignoring_initial_state_caught_by_hidden_tests(reference: dict[str, Any]) -> None:
    base = reference["LSTM"]

    class IgnoresHc0(base):
        def forward(self, x, hc0=None):
            return base.forward(self, x, None)

    hidden_only_catches("test_stacked_lstm", namespace_with(reference, LSTM=IgnoresHc0))


def test_rnn_last_step_of_last_layer_only_rejected(reference: dict[str, Any]) -> None:
    base = reference["RNN"]

    class RepeatsLast(base):
        def forward(self, x):
            out, last = base.forward(self, x)
            return out, last[-1:].expand_as(last)

    assert_rejected("test_stacked_rnn", namespace_with(reference, RNN=RepeatsLast))


# --- 3k training ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_untrained_models_fail_training_tests(reference: dict[str, Any], kind: str) -> None:
    """Models that were not trained (or trained badly) miss the targets; no training needed here."""
    ns = dict(reference)
    net_class = ns["RNN"] if kind == "rnn" else ns["LSTM"]
    runs = {}
    for num_layers in (1, 2):
        for last_only in (False, True):
            torch.manual_seed(0)
            model = ns["RecurrentRegressionModel"](net_class(1, 8, num_layers))
            runs[f"{kind}_{num_layers}, {last_only}"] = {"model": model, "history": [], "final_loss": 1.0,
                                                        "num_layers": num_layers, "last_timestep_only": last_only}
    ns[f"{kind}_runs"] = runs
    assert_rejected(f"test_training_{kind}", ns, via_run_test_cell=False)


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_training_tests_fail_without_runs(reference: dict[str, Any], kind: str) -> None:
    """In the untouched release the training cell raises NotImplementedError before any run is stored."""
    ns = dict(reference)
    ns[f"{kind}_runs"] = {}
    with pytest.raises(AssertionError, match="must hold four trained models"):
        run_part(f"test_training_{kind}", "whole", ns)
