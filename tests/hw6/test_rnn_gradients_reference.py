"""The reference solution of rnn_gradients.ipynb (Problem 3) against torch.nn.RNN / torch.nn.LSTM,
and the trusted training helper hw6utils.training (fast: no full training runs here)."""
from __future__ import annotations

import os
import sys
from typing import Any

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from notebook_cells import SOURCE_DIR, solution_namespace  # noqa: E402

sys.path.insert(0, str(SOURCE_DIR))
from hw6utils import training  # noqa: E402

NOTEBOOK = "rnn_gradients.ipynb"


@pytest.fixture(scope="module")
def ns() -> dict[str, Any]:
    return solution_namespace(NOTEBOOK, until_grade_id="train_rnn")


def _randomize(module: nn.Module, gen: torch.Generator, scale: float = 0.7) -> None:
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.empty(p.shape).uniform_(-scale, scale, generator=gen))


def _copy_rnn_layer(layer: nn.Module, torch_rnn: nn.RNN, index: int) -> None:
    with torch.no_grad():
        getattr(torch_rnn, f"weight_hh_l{index}").copy_(layer.W_h)
        getattr(torch_rnn, f"weight_ih_l{index}").copy_(layer.W_x)
        getattr(torch_rnn, f"bias_ih_l{index}").copy_(layer.b)
        getattr(torch_rnn, f"bias_hh_l{index}").zero_()


def _copy_lstm_layer(layer: nn.Module, torch_lstm: nn.LSTM, index: int) -> None:
    p = dict(layer.named_parameters())
    with torch.no_grad():  # PyTorch's gate order is i, f, g, o
        getattr(torch_lstm, f"weight_ih_l{index}").copy_(torch.cat([p[f"U_{k}"].T for k in "ifgo"]))
        getattr(torch_lstm, f"weight_hh_l{index}").copy_(torch.cat([p[f"W_{k}"].T for k in "ifgo"]))
        getattr(torch_lstm, f"bias_ih_l{index}").copy_(torch.cat([p[f"b_{k}"] for k in "ifgo"]))
        getattr(torch_lstm, f"bias_hh_l{index}").zero_()


@pytest.mark.parametrize("nonlinearity", ["tanh", "relu"])
@pytest.mark.parametrize("sizes", [(1, 1, 1, 1), (2, 3, 4, 5), (4, 4, 2, 9)])
def test_rnn_layer_matches_torch(ns: dict[str, Any], nonlinearity: str, sizes: tuple[int, ...]) -> None:
    in_size, hidden, batch, steps = sizes
    gen = torch.Generator().manual_seed(1)
    layer = ns["RNNLayer"](in_size, hidden, nonlinearity=getattr(torch, nonlinearity))
    _randomize(layer, gen)
    ref = nn.RNN(in_size, hidden, nonlinearity=nonlinearity, batch_first=True)
    _copy_rnn_layer(layer, ref, 0)
    x = torch.randn(batch, steps, in_size, generator=gen)
    all_h, last_h = layer(x)
    out, h_n = ref(x)
    torch.testing.assert_close(all_h, out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(last_h, h_n[0], atol=1e-5, rtol=1e-5)


def test_parameter_counts_and_names(ns: dict[str, Any]) -> None:
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(ns["RNNLayer"](2, 3)) == 18
    assert count(ns["RecurrentRegressionModel"](ns["RNNLayer"](2, 3), 4)) == 34
    assert [n for n, _ in ns["RNNLayer"](2, 3).named_parameters()] == ["W_h", "W_x", "b"]
    lstm_names = {n for n, _ in ns["LSTMLayer"](2, 3).named_parameters()}
    assert lstm_names == {f"{kind}_{gate}" for kind in "UWb" for gate in "fiog"}


def test_known_values(ns: dict[str, Any]) -> None:
    layer = ns["set_all_parameters"](ns["RNNLayer"](1, 1), 0.1)
    _, last_h = layer(torch.ones(1, 1, 1))
    assert abs(float(last_h.detach()) - 0.1973753273487091) < 1e-6
    pred = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]])
    y = torch.tensor([[-1.1, -1.2, -1.3], [-1.4, -1.5, -1.6]])
    assert abs(float(ns["loss_fn"](pred, y)) - 3.0066667) < 1e-5
    assert abs(float(ns["loss_fn"](pred, y, last_timestep_only=True)) - 3.7) < 1e-5


def test_hidden_state_gradients_match_autograd(ns: dict[str, Any]) -> None:
    """h_list[t].grad after backward is dL/dh_t (what the 3d visualizer plots)."""
    for make in (lambda: ns["RNNLayer"](1, 4), lambda: ns["LSTMLayer"](1, 4)):
        torch.manual_seed(0)
        layer = make()
        model = ns["RecurrentRegressionModel"](layer)
        x, y = ns["generate_batch"](seq_len=6, batch_size=3)
        out, _ = model(x)
        ns["loss_fn"](out, y, last_timestep_only=True).backward()
        retained = [h.grad.clone() for h in layer.h_list]
        # A second forward pass; autograd.grad gives dL/dh_t directly (it also fills the new .grad).
        out, _ = model(x)
        expected = torch.autograd.grad(ns["loss_fn"](out, y, last_timestep_only=True), layer.h_list)
        assert len(retained) == len(expected) == 6
        for got, want in zip(retained, expected):
            torch.testing.assert_close(got, want)
        assert float(retained[0].abs().sum()) > 0


@pytest.mark.parametrize("sizes", [(1, 1, 1, 3), (2, 3, 4, 6), (3, 3, 2, 8)])
def test_lstm_layer_matches_torch(ns: dict[str, Any], sizes: tuple[int, ...]) -> None:
    in_size, hidden, batch, steps = sizes
    gen = torch.Generator().manual_seed(2)
    layer = ns["LSTMLayer"](in_size, hidden)
    _randomize(layer, gen, 0.8)
    ref = nn.LSTM(in_size, hidden, batch_first=True)
    _copy_lstm_layer(layer, ref, 0)
    x = torch.randn(batch, steps, in_size, generator=gen)
    all_h, (h, c) = layer(x)
    out, (h_n, c_n) = ref(x)
    torch.testing.assert_close(all_h, out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(h, h_n[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(c, c_n[0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("sizes", [(1, 4, 1), (3, 3, 2), (2, 5, 3)])
def test_stacked_nets_match_torch(ns: dict[str, Any], sizes: tuple[int, int, int]) -> None:
    in_size, hidden, layers = sizes
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 7, in_size, generator=gen)

    rnn = ns["RNN"](in_size, hidden, layers)
    _randomize(rnn, gen)
    ref_rnn = nn.RNN(in_size, hidden, num_layers=layers, batch_first=True)
    for i, layer in enumerate(rnn.layers):
        _copy_rnn_layer(layer, ref_rnn, i)
    out, last = rnn(x)
    ref_out, ref_last = ref_rnn(x)
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(last, ref_last, atol=1e-5, rtol=1e-5)

    lstm = ns["LSTM"](in_size, hidden, layers)
    _randomize(lstm, gen, 0.8)
    ref_lstm = nn.LSTM(in_size, hidden, num_layers=layers, batch_first=True)
    for i, layer in enumerate(lstm.layers):
        _copy_lstm_layer(layer, ref_lstm, i)
    hc0 = (torch.randn(layers, 2, hidden, generator=gen), torch.randn(layers, 2, hidden, generator=gen))
    for state in (None, hc0):
        out, (h, c) = lstm(x, state)
        ref_out, (ref_h, ref_c) = ref_lstm(x, state)
        torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(h, ref_h, atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(c, ref_c, atol=1e-5, rtol=1e-5)


def test_generate_batch_running_average(ns: dict[str, Any]) -> None:
    torch.manual_seed(0)
    x, y = ns["generate_batch"](seq_len=12, batch_size=5)
    assert x.shape == y.shape == (5, 12, 1)
    for t in range(12):
        torch.testing.assert_close(y[:, t], x[:, : t + 1].mean(dim=1))


# --- hw6utils.training ----------------------------------------------------------------------

def test_training_batch_and_loss() -> None:
    x, y = training.running_average_batch(6, 4, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 6, 1)
    torch.testing.assert_close(y[:, -1], x.mean(dim=1))
    pred = torch.zeros_like(y)
    assert float(training.regression_loss(pred, y, False)) == pytest.approx(float((y ** 2).mean()))
    assert float(training.regression_loss(pred, y, True)) == pytest.approx(float((y[:, -1] ** 2).mean()))


def test_training_is_deterministic_and_learns(ns: dict[str, Any]) -> None:
    """A short run (not the graded recipe) is bitwise reproducible and lowers the loss."""
    recipe = training.TrainingRecipe(hidden_size=8, steps=60, warmup_steps=10, eval_sequences=200)

    def build():
        return ns["RecurrentRegressionModel"](ns["RNN"](1, recipe.hidden_size, 1))

    threads = torch.get_num_threads()
    model_a, hist_a = training.train_regression_model(build, False, recipe, progress=False)
    model_b, hist_b = training.train_regression_model(build, False, recipe, progress=False)
    assert torch.get_num_threads() == threads, "the helper must restore torch's thread count"
    assert hist_a == hist_b and len(hist_a) == 60
    assert sum(hist_a[-10:]) < sum(hist_a[:10])
    loss_a = training.evaluate_regression_model(model_a, False, recipe)
    assert loss_a == training.evaluate_regression_model(model_b, False, recipe)
    assert loss_a != training.evaluate_regression_model(model_a, False, recipe, seed=5)


def test_training_rejects_wrong_output_shape() -> None:
    class Flat(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return x[:, -1, 0] * self.w  # (B,) instead of (B, T, 1)

    with pytest.raises(ValueError, match=r"shape \(B, T, 1\)"):
        training.train_regression_model(Flat, False, training.TrainingRecipe(steps=2), progress=False)


def test_training_learning_rate_schedule() -> None:
    """Warm-up then cosine decay: the rate peaks early and ends near zero."""
    recipe = training.TrainingRecipe(hidden_size=2, steps=100, warmup_steps=10)
    rates: list[float] = []

    class Probe(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return x * self.w

    original = torch.optim.Adam.step

    def spy(self, *args, **kwargs):
        rates.append(self.param_groups[0]["lr"])
        return original(self, *args, **kwargs)

    torch.optim.Adam.step = spy
    try:
        training.train_regression_model(Probe, False, recipe, progress=False)
    finally:
        torch.optim.Adam.step = original
    assert len(rates) == 100
    assert rates[0] == pytest.approx(recipe.lr / 10)
    assert max(rates) == pytest.approx(recipe.lr, rel=0.05) and rates.index(max(rates)) == 9
    assert rates[-1] < recipe.lr * 1e-3


def test_plot_loss_curves_uses_log_axis() -> None:
    fig = training.plot_loss_curves({"a": [1.0, 0.1, 0.01], "b": [2.0, 1.0, 0.5]}, targets={"a": 0.05})
    ax = fig.axes[0]
    assert ax.get_yscale() == "log"
    assert len(ax.get_lines()) == 3  # two curves and one target line
    import matplotlib.pyplot as plt
    plt.close(fig)
