"""The test cells of rnn_gradients.ipynb (Problem 3) accept the reference and reject wrong answers.

Each wrong implementation below is a plausible student mistake. It is put into a copy of the
reference namespace and judged the way the grader judges: the test cell's check() records are
compared, outside the code under test, with the records of the reference solution. Both the whole
test cell and its hidden section on its own must fail on it (so the hidden checks reject it by
themselves). For the mistakes that the visible checks cannot see, we also show that the visible part
passes on a student's machine (where visible checks assert at once).
"""
from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from coursekit.testing.notebooks import (SOURCE_DIR, cell_by_grade_id, is_test_cell, load,  # noqa: E402
                                         run_test_cell, runnable_source, solution_namespace, trusted_checks,
                                         working_directory)
from coursekit.testing.notebooks import helper_module  # noqa: E402
from coursekit.testing.notebooks import test_cell_records as cell_records  # noqa: E402  (not a test)
from tests.support.executed_sources import trained_3k  # noqa: E402
from tests.hw6.rejection import (BEGIN_HIDDEN, AlwaysEqual, assert_check_style,  # noqa: E402
                                 assert_sabotage_rejected, hidden_records, hidden_section, rnn_variant)
from tests.hw6.rejection import assert_rejected as _assert_rejected  # noqa: E402
from tests.hw6.rejection import sabotaged_kernel as _sabotage  # noqa: E402

NOTEBOOK = "rnn_gradients.ipynb"
TRAINING_TESTS = ("test_training_rnn", "test_training_lstm")
FAST_TESTS = ("test_rnn_layer_values", "test_rnn_layer_torch", "test_regression_model", "test_generate_batch",
              "test_loss_fn", "test_lstm_layer_values", "test_lstm_layer_gates", "test_stacked_rnn",
              "test_stacked_lstm")
OTHER_FILES = ("test_gradient_norms",)  # Problem 3d, tested in tests/hw6/test_gradviz_notebook.py


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    """Namespace after running the reference cells up to (not including) the training runs."""
    return solution_namespace(NOTEBOOK, until_grade_id="train_rnn")


def namespace_with(reference: dict[str, Any], **overrides: Any) -> dict[str, Any]:
    ns = dict(reference)
    ns.update(overrides)
    return ns


def _cell_part(grade_id: str, part: str) -> str:
    source = cell_by_grade_id(load(SOURCE_DIR / NOTEBOOK), grade_id).source
    assert BEGIN_HIDDEN in source, f"{grade_id} has no hidden tests"
    if part == "whole":
        return source
    if part == "visible":
        return source.split(BEGIN_HIDDEN)[0]
    return hidden_section(NOTEBOOK, grade_id)


def run_part(grade_id: str, part: str, ns: dict[str, Any]) -> None:
    """Run part of a test cell as on a student's machine (visible checks assert, hidden checks do nothing)."""
    assert os.environ.get(helper_module("records").RECORD_ENV) != "1", "these runs need the student-side behaviour"
    with working_directory(SOURCE_DIR):
        exec(compile(runnable_source(_cell_part(grade_id, part)), f"<{grade_id}:{part}>", "exec"), ns)


def assert_rejected(grade_id: str, ns: dict[str, Any]) -> None:
    """Judged like the grader does, the whole cell fails, and so does its hidden section alone."""
    _assert_rejected(NOTEBOOK, [grade_id], ns)


def hidden_only_catches(grade_id: str, ns: dict[str, Any]) -> None:
    """The visible checks pass on this mistake (on a student's machine); the hidden checks reject it."""
    run_part(grade_id, "visible", dict(ns))
    assert_rejected(grade_id, ns)


# --- the reference passes, and the cells' form ---------------------------------------------

@pytest.mark.parametrize("grade_id", FAST_TESTS)
def test_reference_passes(reference: dict[str, Any], grade_id: str) -> None:
    run_test_cell(NOTEBOOK, grade_id, dict(reference))  # judged as the grader does
    run_part(grade_id, "whole", dict(reference))  # on a student's machine: the visible checks assert


def test_every_test_cell_is_covered() -> None:
    nb = load(SOURCE_DIR / NOTEBOOK)
    test_ids = {c.metadata["nbgrader"]["grade_id"] for c in nb.cells
                if is_test_cell(c)}
    assert test_ids - set(OTHER_FILES) == set(FAST_TESTS) | set(TRAINING_TESTS)


def test_cells_keep_points_and_the_spec_values() -> None:
    nb = load(SOURCE_DIR / NOTEBOOK)
    points = {gid: cell_by_grade_id(nb, gid).metadata["nbgrader"]["points"] for gid in FAST_TESTS + TRAINING_TESTS}
    assert points == {"test_rnn_layer_values": 3, "test_rnn_layer_torch": 2, "test_regression_model": 2,
                      "test_generate_batch": 1, "test_loss_fn": 2, "test_lstm_layer_values": 2,
                      "test_lstm_layer_gates": 2, "test_stacked_rnn": 2, "test_stacked_lstm": 2,
                      "test_training_rnn": 2, "test_training_lstm": 2}
    visible = {gid: _cell_part(gid, "visible") for gid in FAST_TESTS + TRAINING_TESTS}
    assert "0.1973753273487091" in visible["test_rnn_layer_values"] and "18)" in visible["test_rnn_layer_values"]
    assert "34)" in visible["test_regression_model"]
    assert "3.0066667" in visible["test_loss_fn"] and "3.7)" in visible["test_loss_fn"]
    for gid in TRAINING_TESTS:
        assert "at_most=LOSS_TARGETS[num_layers]" in visible[gid]
    for gid, source in visible.items():
        hidden = _cell_part(gid, "hidden")
        for oracle in ("nn.RNN(", "nn.LSTM(", "_reference(", "assert_close", "allclose"):
            assert oracle not in hidden, f"{gid}: the hidden checks compute an expected value in the kernel"


# --- hostile kernels --------------------------------------------------------------------------

def test_sabotaged_kernel_does_not_rescue_wrong_layers(reference: dict[str, Any]) -> None:
    """Patched numpy/torch comparisons (or a silenced check) do not turn wrong answers into passes."""
    swapped = dict(CORRECT_ROLES, f="i", i="f")
    assert_sabotage_rejected(NOTEBOOK, "test_lstm_layer_gates", reference,
                             LSTMLayer=_lstm_variant(reference, _lstm_cell(swapped)))
    transposed = rnn_variant(reference, lambda s, h, x: s.nonlinearity(h @ s.W_h + x @ s.W_x.T + s.b))
    assert_sabotage_rejected(NOTEBOOK, "test_rnn_layer_torch", reference, RNNLayer=transposed)


def test_always_equal_results_are_rejected(reference: dict[str, Any]) -> None:
    """Objects that claim to equal everything cannot be recorded, so the checks fail (even when sabotaged)."""
    def loss_fn(pred, y, last_timestep_only=False):
        return AlwaysEqual()

    def generate_batch(seq_len=10, batch_size=1):
        return AlwaysEqual(), AlwaysEqual()

    assert_sabotage_rejected(NOTEBOOK, "test_loss_fn", reference, loss_fn=loss_fn)
    assert_sabotage_rejected(NOTEBOOK, "test_generate_batch", reference, generate_batch=generate_batch)


# --- 3a RNNLayer ----------------------------------------------------------------------------

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
    layer = rnn_variant(reference, lambda s, h, x: s.nonlinearity(h @ s.W_h.T + s.b + x @ s.W_x.T + s.b))
    assert_rejected("test_rnn_layer_values", namespace_with(reference, RNNLayer=layer))


@pytest.mark.parametrize("h0", ["ones", "small_noise"])
def test_rnn_nonzero_initial_state_rejected(reference: dict[str, Any], h0: str) -> None:
    def initial_state(layer, x):
        if h0 == "ones":
            return x.new_ones(x.shape[0], layer.hidden_size)
        return 1e-3 * torch.randn(x.shape[0], layer.hidden_size, generator=torch.Generator().manual_seed(0))

    NonzeroStart = rnn_variant(reference, lambda s, h, x: s.nonlinearity(h @ s.W_h.T + x @ s.W_x.T + s.b),
                               initial_state)
    assert_rejected("test_rnn_layer_values", namespace_with(reference, RNNLayer=NonzeroStart))


def test_rnn_transposed_recurrent_weight_costs_the_layout_cell_only(reference: dict[str, Any]) -> None:
    layer = rnn_variant(reference, lambda s, h, x: s.nonlinearity(h @ s.W_h + x @ s.W_x.T + s.b))
    ns = namespace_with(reference, RNNLayer=layer)
    run_test_cell(NOTEBOOK, "test_rnn_layer_values", dict(ns))  # constant parameters: layout-free
    assert_rejected("test_rnn_layer_torch", ns)


def test_rnn_ignoring_nonlinearity_fails_the_visible_layout_checks(reference: dict[str, Any]) -> None:
    """A layer that always uses tanh fails visibly (ReLU and identity), in the layout cell only."""
    layer = rnn_variant(reference, lambda s, h, x: torch.tanh(h @ s.W_h.T + x @ s.W_x.T + s.b))
    ns = namespace_with(reference, RNNLayer=layer)
    with pytest.raises(AssertionError, match="nonlinearity torch.relu"):
        run_part("test_rnn_layer_torch", "visible", dict(ns))
    assert_rejected("test_rnn_layer_torch", ns)
    run_test_cell(NOTEBOOK, "test_rnn_layer_values", dict(ns))


def test_rnn_ignoring_only_the_identity_fails_visibly(reference: dict[str, Any]) -> None:
    """Treating a lambda as "use tanh" (e.g. `nonlinearity or torch.tanh` misused) breaks the linear mode of 3d."""
    def step(s, h, x):
        fn = s.nonlinearity if s.nonlinearity in (torch.tanh, torch.relu) else torch.tanh
        return fn(h @ s.W_h.T + x @ s.W_x.T + s.b)

    with pytest.raises(AssertionError, match="linear RNN"):
        run_part("test_rnn_layer_torch", "visible", namespace_with(reference, RNNLayer=rnn_variant(reference, step)))


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


def test_uniform_inputs_rejected(reference: dict[str, Any]) -> None:
    def generate_batch(seq_len=10, batch_size=1):
        x = torch.rand(batch_size, seq_len, 1) * 2 - 1
        return x, x.cumsum(1) / torch.arange(1, seq_len + 1, dtype=x.dtype).view(1, seq_len, 1)

    assert_rejected("test_generate_batch", namespace_with(reference, generate_batch=generate_batch))


def test_float64_targets_caught_by_hidden_tests(reference: dict[str, Any]) -> None:
    def generate_batch(seq_len=10, batch_size=1):
        x = torch.randn(batch_size, seq_len, 1)
        return x, x.double().cumsum(1) / torch.arange(1, seq_len + 1, dtype=torch.float64).view(1, seq_len, 1)

    hidden_only_catches("test_generate_batch", namespace_with(reference, generate_batch=generate_batch))


def test_same_draw_on_every_call_rejected(reference: dict[str, Any]) -> None:
    """A private, re-seeded generator: every call returns the same x, and torch.manual_seed has no effect."""
    def generate_batch(seq_len=10, batch_size=1):
        x = torch.randn(batch_size, seq_len, 1, generator=torch.Generator().manual_seed(0))
        return x, x.cumsum(1) / torch.arange(1, seq_len + 1, dtype=x.dtype).view(1, seq_len, 1)

    assert_rejected("test_generate_batch", namespace_with(reference, generate_batch=generate_batch))


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


def test_loss_last_feature_instead_of_last_step_rejected(reference: dict[str, Any]) -> None:
    def loss_fn(pred, y, last_timestep_only=False):
        if last_timestep_only:
            pred, y = pred[..., -1], y[..., -1]
        return ((pred - y) ** 2).mean()

    ns = namespace_with(reference, loss_fn=loss_fn)
    with pytest.raises(AssertionError, match=r"\(B, T, 1\)"):  # the visible 3-D case shows it
        run_part("test_loss_fn", "visible", dict(ns))
    assert_rejected("test_loss_fn", ns)


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
    assert_rejected("test_lstm_layer_gates", ns)  # one bug, one cell


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


def test_lstm_ignoring_initial_state_rejected(reference: dict[str, Any]) -> None:
    base = reference["LSTM"]

    class IgnoresHc0(base):
        def forward(self, x, hc0=None):
            return base.forward(self, x, None)

    ns = namespace_with(reference, LSTM=IgnoresHc0)
    with pytest.raises(AssertionError, match="with hc0"):
        run_part("test_stacked_lstm", "visible", dict(ns))
    assert_rejected("test_stacked_lstm", ns)


def test_rnn_last_step_of_last_layer_only_rejected(reference: dict[str, Any]) -> None:
    base = reference["RNN"]

    class RepeatsLast(base):
        def forward(self, x):
            out, last = base.forward(self, x)
            return out, last[-1:].expand_as(last)

    assert_rejected("test_stacked_rnn", namespace_with(reference, RNN=RepeatsLast))


# --- 3k training ----------------------------------------------------------------------------

def _untrained_runs(reference: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """Models that were not trained (the right architecture, stored under the right names)."""
    net_class = reference["RNN"] if kind == "rnn" else reference["LSTM"]
    runs = {}
    for num_layers in (1, 2):
        for task, last_only in (("every step", False), ("last step", True)):
            torch.manual_seed(0)
            model = reference["RecurrentRegressionModel"](net_class(1, 8, num_layers))
            runs[f"{kind}_{num_layers}, {task}"] = {"model": model, "history": [], "final_loss": 1.0,
                                                     "num_layers": num_layers, "last_timestep_only": last_only}
    return runs


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_untrained_models_fail_the_visible_training_checks(reference: dict[str, Any], kind: str) -> None:
    """On a student's machine the final-loss bounds fail for untrained models (no training needed here)."""
    ns = namespace_with(reference, **{f"{kind}_runs": _untrained_runs(reference, kind)})
    with pytest.raises(AssertionError, match="final loss"):
        run_part(f"test_training_{kind}", "visible", ns)


@pytest.mark.parametrize("kind", ["rnn", "lstm"])
def test_training_checks_fail_without_runs(reference: dict[str, Any], kind: str) -> None:
    """In the untouched release the training cell raises NotImplementedError before any run is stored."""
    ns = namespace_with(reference, **{f"{kind}_runs": {}})
    with pytest.raises(AssertionError, match="number of trained"):
        run_part(f"test_training_{kind}", "whole", ns)


# The grader compares a student's training records with records of the reference notebook, which it
# runs once (training included). The eight trained models come from the session's kernel run of the
# source notebook (tests/hw6/executed_sources.py), shared with test_source_runs.py.

@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Any]:
    """The reference namespace after the training cells (the eight 3k runs).

    The notebook's own cells build each model; ``train_regression_model`` then hands back the weights and
    history that the same cell trained in the session's kernel run instead of training again.
    """
    saved = trained_3k(tmp_path_factory)
    training = helper_module("training")

    def trained_in_the_kernel_run(build_model, batch_fn, loss_fn, last_timestep_only, recipe=training.TrainingRecipe(),
                                  desc="training", **_):
        torch.manual_seed(recipe.seed)
        model = build_model()
        model.load_state_dict(saved[desc]["state"])
        return model, list(saved[desc]["history"])

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(training, "train_regression_model", trained_in_the_kernel_run)
        namespace = solution_namespace(NOTEBOOK, until_grade_id=TRAINING_TESTS[0])
    assert set(saved) == {*namespace["rnn_runs"], *namespace["lstm_runs"]}
    return namespace


@pytest.fixture(scope="module")
def training_records(trained: dict[str, Any]) -> dict[str, tuple[list, list]]:
    """grade_id -> (records of the whole cell, records of its hidden section), from the trained reference."""
    records = {}
    for grade_id in TRAINING_TESTS:
        whole, error = cell_records(NOTEBOOK, grade_id, dict(trained))
        assert error is None, f"the reference fails {grade_id}: {error!r}"
        hidden, error = hidden_records(NOTEBOOK, grade_id, dict(trained))
        assert error is None, f"the reference fails the hidden part of {grade_id}: {error!r}"
        records[grade_id] = (whole, hidden)
    return records


def _training_reasons(grade_id: str, ns: dict[str, Any], training_records, hidden_only: bool = False) -> list[str]:
    """What the grader would say about ``ns`` for a training cell (same judge as run_test_cell)."""
    from coursekit.verdicts import judge_cell

    whole, hidden = training_records[grade_id]
    if hidden_only:
        records, _ = hidden_records(NOTEBOOK, grade_id, dict(ns))
    else:
        records, _ = cell_records(NOTEBOOK, grade_id, dict(ns))
    reasons, _ = judge_cell(hidden if hidden_only else whole, records, trusted_checks())
    return reasons


@pytest.mark.slow
def test_training_cells_accept_the_trained_reference_and_reject_untrained_models(trained, training_records) -> None:
    for kind, grade_id in zip(("rnn", "lstm"), TRAINING_TESTS):
        whole, hidden = training_records[grade_id]
        checks = trusted_checks()
        bounds = [r for r in whole if r["at_most"] is not None]
        assert len(bounds) == 4 and all(r["visible"] and r["judge"] == "training.final_loss" for r in bounds)
        assert all(checks.resolve_judge(r["judge"])(r["value"]) <= r["at_most"] for r in bounds), \
            "the reference misses its own targets"
        assert len(hidden) == 8 and all(r["judge"] for r in hidden)
        assert _training_reasons(grade_id, trained, training_records) == []
        run_part(grade_id, "whole", dict(trained))  # the visible bounds hold on a student's machine too

        untrained = namespace_with(trained, **{f"{kind}_runs": _untrained_runs(trained, kind)})
        assert _training_reasons(grade_id, untrained, training_records)
        assert _training_reasons(grade_id, untrained, training_records, hidden_only=True)
        assert _training_reasons(grade_id, namespace_with(trained, **{f"{kind}_runs": {}}), training_records)
        with _sabotage():
            assert _training_reasons(grade_id, untrained, training_records)


@pytest.mark.slow
def test_numbers_from_the_kernel_earn_nothing_in_training_cells(trained, training_records, monkeypatch) -> None:
    """What a patched `check`, a faked history or a patched evaluation could claim is never what is
    judged: the grader recomputes every loss from the published weights."""
    from coursekit.verdicts import judge_cell

    checks = trusted_checks()
    for kind, grade_id in zip(("rnn", "lstm"), TRAINING_TESTS):
        whole, hidden = training_records[grade_id]
        # a patched check publishing a number inside every bound (and True for every judged boolean)
        forged = [dict(r, value=0.0 if r["at_most"] is not None else True) for r in [*whole, *hidden]]
        reasons, fraction = judge_cell([*whole, *hidden], forged, checks)
        assert reasons and fraction == 0.0
        # untrained models with a faked history and an evaluation function that reports 0 loss
        untrained = _untrained_runs(trained, kind)
        for run in untrained.values():
            run.update(history=[0.0] * 10, final_loss=0.0)
        import hw6utils.training as kernel_training  # the copy the notebook imported, as a kernel would

        monkeypatch.setattr(kernel_training, "evaluate_regression_model", lambda *a, **k: 0.0)
        assert _training_reasons(grade_id, namespace_with(trained, **{f"{kind}_runs": untrained}), training_records)
        monkeypatch.undo()
    # trained LSTM weights handed in for the RNN cell: not the architecture that cell asks for
    rnn_whole, _ = training_records["test_training_rnn"]
    lstm_whole, _ = training_records["test_training_lstm"]
    lstm_by_task = {r["name"].replace("lstm_", "rnn_"): r for r in lstm_whole if r["judge"]}
    swapped = [dict(r, value=lstm_by_task[r["name"]]["value"]) if r["name"] in lstm_by_task else r for r in rnn_whole]
    reasons, _ = judge_cell(rnn_whole, swapped, checks)
    assert reasons and all("expected a trained RNN" in reason for reason in reasons if "final loss" in reason)


@pytest.mark.slow
def test_check_style(trained, training_records, monkeypatch) -> None:
    """Every test cell of the notebook publishes check records only (training cells from the shared run)."""
    from tests.hw6 import rejection as _rejection

    whole_of = _rejection.reference_records
    hidden_of = _rejection.reference_hidden_records

    def reference_records(notebook: str, grade_id: str):
        return tuple(training_records[grade_id][0]) if grade_id in TRAINING_TESTS else whole_of(notebook, grade_id)

    def reference_hidden_records(notebook: str, grade_id: str):
        return tuple(training_records[grade_id][1]) if grade_id in TRAINING_TESTS else hidden_of(notebook, grade_id)

    monkeypatch.setattr(_rejection, "reference_records", reference_records)
    monkeypatch.setattr(_rejection, "reference_hidden_records", reference_hidden_records)
    assert_check_style(NOTEBOOK)
