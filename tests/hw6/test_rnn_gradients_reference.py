"""The reference solution of rnn_gradients.ipynb (Problem 3) against torch.nn.RNN / torch.nn.LSTM and
float64 formulas -- on general inputs and on exactly the inputs its test cells use (the hidden checks
compare students with the reference there) -- and the trusted training helper hw6utils.training
(fast: no full training runs here)."""
from __future__ import annotations

import os
from typing import Any, NamedTuple

os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from coursekit.testing.notebooks import reference_records, solution_namespace  # noqa: E402
from coursekit.testing.notebooks import test_cell_records as cell_records  # noqa: E402  (not a test)

from tests.hw6.rejection import reference_calls  # noqa: E402
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
    from hw6grading import training as grading  # the instructor-only reference data and loss

    x, y = grading.running_average_batch(6, 4, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 6, 1)
    torch.testing.assert_close(y[:, -1], x.mean(dim=1))
    pred = torch.zeros_like(y)
    assert float(grading.regression_loss(pred, y, False)) == pytest.approx(float((y ** 2).mean()))
    assert float(grading.regression_loss(pred, y, True)) == pytest.approx(float((y[:, -1] ** 2).mean()))


def test_training_is_deterministic_and_learns(ns: dict[str, Any]) -> None:
    """A short run (not the graded recipe) is bitwise reproducible and lowers the loss."""
    recipe = training.TrainingRecipe(hidden_size=8, steps=60, warmup_steps=10, eval_sequences=200)

    def build():
        return ns["RecurrentRegressionModel"](ns["RNN"](1, recipe.hidden_size, 1))

    threads = torch.get_num_threads()
    model_a, hist_a = training.train_regression_model(build, ns["generate_batch"], ns["loss_fn"], False, recipe, progress=False)
    model_b, hist_b = training.train_regression_model(build, ns["generate_batch"], ns["loss_fn"], False, recipe, progress=False)
    assert torch.get_num_threads() == threads, "the helper must restore torch's thread count"
    assert hist_a == hist_b and len(hist_a) == 60
    assert sum(hist_a[-10:]) < sum(hist_a[:10])
    loss_a = training.evaluate_regression_model(model_a, ns["generate_batch"], ns["loss_fn"], False, recipe)
    assert loss_a == training.evaluate_regression_model(model_b, ns["generate_batch"], ns["loss_fn"], False, recipe)
    assert loss_a != training.evaluate_regression_model(model_a, ns["generate_batch"], ns["loss_fn"], False, recipe, seed=5)


def test_training_rejects_wrong_output_shape(ns: dict[str, Any]) -> None:
    class Flat(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))

        def forward(self, x):
            return x[:, -1, 0] * self.w  # (B,) instead of (B, T, 1)

    with pytest.raises(ValueError, match=r"shape \(B, T, 1\)"):
        training.train_regression_model(Flat, ns["generate_batch"], ns["loss_fn"], False,
                                        training.TrainingRecipe(steps=2), progress=False)


def test_training_learning_rate_schedule(ns: dict[str, Any]) -> None:
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
        training.train_regression_model(Probe, ns["generate_batch"], ns["loss_fn"], False, recipe, progress=False)
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


# --- the answers the test cells compare with ------------------------------------------------
#
# The hidden checks compare a student's outputs with the reference solution's outputs on the same
# inputs. Here every call the test cells make is spied on, and the reference's answer to it is
# verified against an independent oracle (torch.nn.RNN / torch.nn.LSTM given the same weights, or a
# float64 formula), so "equal to the reference" means "right".

class ModuleCall(NamedTuple):
    """One forward call during a test cell: the module, its parameters, the inputs and outputs (copies)."""
    module: nn.Module
    params: dict
    args: tuple
    result: Any


def _copy(value: Any) -> Any:
    if torch.is_tensor(value):
        return value.detach().clone()
    if isinstance(value, (tuple, list)):
        return type(value)(_copy(v) for v in value)
    return value


def module_calls(ns: dict[str, Any], grade_id: str, class_name: str) -> list[ModuleCall]:
    """Run a test cell (record mode, as the grader does) with ``class_name`` spied on; every forward call.

    The spied run must publish exactly the reference records, so the verified outputs are the compared ones.
    """
    calls: list[ModuleCall] = []
    base = ns[class_name]

    class Spy(base):
        def forward(self, *args: Any, **kwargs: Any) -> Any:
            assert not kwargs
            params = {name: p.detach().clone() for name, p in self.named_parameters()}
            saved = _copy(args)
            result = base.forward(self, *args)
            calls.append(ModuleCall(self, params, saved, _copy(result)))
            return result

    records, error = cell_records(NOTEBOOK, grade_id, dict(ns, **{class_name: Spy}))
    assert error is None, f"the reference fails {grade_id}: {error!r}"
    assert records == list(reference_records(NOTEBOOK, grade_id)), "spying changed the records"
    assert calls, f"{grade_id} never called {class_name}"
    return calls


def _plain_arrays(value: Any) -> Any:
    """Plain record data back to float64 tensors (arrays) / lists / dicts."""
    if isinstance(value, dict) and "__array__" in value:
        return torch.tensor([float(x) for x in value["data"]], dtype=torch.float64).reshape(value["__array__"])
    if isinstance(value, dict):
        return {k: _plain_arrays(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain_arrays(v) for v in value]
    return value


def _record(grade_id: str, name: str) -> Any:
    [record] = [r for r in reference_records(NOTEBOOK, grade_id) if r["name"] == name]
    return _plain_arrays(record["value"])


def _close(got: torch.Tensor, want: torch.Tensor, atol: float = 1e-5) -> None:
    torch.testing.assert_close(got.double(), want.double(), atol=atol, rtol=0)


NONLINEARITIES = {torch.tanh: "tanh", torch.relu: "relu"}


def _nonlinearity_name(fn) -> str:
    """"tanh", "relu" or "identity" (the test cells pass `lambda z: z` for a linear RNN)."""
    if fn in NONLINEARITIES:
        return NONLINEARITIES[fn]
    probe = torch.tensor([-1.5, 0.0, 2.0])
    assert torch.equal(fn(probe), probe), f"unexpected nonlinearity {fn!r}"
    return "identity"


def _float64_rnn(params: dict, x: torch.Tensor, nonlinearity: str) -> tuple[torch.Tensor, torch.Tensor]:
    """all_h and h_T of one RNN layer in float64, step by step (the oracle for the identity, which nn.RNN lacks)."""
    fn = {"tanh": torch.tanh, "relu": torch.relu, "identity": lambda z: z}[nonlinearity]
    W_h, W_x, b = (params[k].double() for k in ("W_h", "W_x", "b"))
    h, states = torch.zeros(x.shape[0], W_h.shape[0], dtype=torch.float64), []
    for t in range(x.shape[1]):
        h = fn(h @ W_h.T + x[:, t].double() @ W_x.T + b)
        states.append(h)
    return torch.stack(states, dim=1), h


def _torch_rnn(layer_params: list[dict], nonlinearity: str) -> nn.RNN:
    """torch.nn.RNN with the weights of RNNLayers (one parameter dict per layer)."""
    in_size = layer_params[0]["W_x"].shape[1]
    hidden = layer_params[0]["W_h"].shape[0]
    ref = nn.RNN(in_size, hidden, num_layers=len(layer_params), nonlinearity=nonlinearity, batch_first=True)
    with torch.no_grad():
        for i, p in enumerate(layer_params):
            getattr(ref, f"weight_hh_l{i}").copy_(p["W_h"])
            getattr(ref, f"weight_ih_l{i}").copy_(p["W_x"])
            getattr(ref, f"bias_ih_l{i}").copy_(p["b"])
            getattr(ref, f"bias_hh_l{i}").zero_()
    return ref


def _torch_lstm(layer_params: list[dict]) -> nn.LSTM:
    """torch.nn.LSTM with the weights of LSTMLayers (PyTorch's gate order is i, f, g, o)."""
    in_size, hidden = layer_params[0]["U_f"].shape
    ref = nn.LSTM(in_size, hidden, num_layers=len(layer_params), batch_first=True)
    with torch.no_grad():
        for i, p in enumerate(layer_params):
            getattr(ref, f"weight_ih_l{i}").copy_(torch.cat([p[f"U_{k}"].T for k in "ifgo"]))
            getattr(ref, f"weight_hh_l{i}").copy_(torch.cat([p[f"W_{k}"].T for k in "ifgo"]))
            getattr(ref, f"bias_ih_l{i}").copy_(torch.cat([p[f"b_{k}"] for k in "ifgo"]))
            getattr(ref, f"bias_hh_l{i}").zero_()
    return ref


def _per_layer(params: dict, prefix: str = "layers.") -> list[dict]:
    layers: dict[int, dict] = {}
    for name, value in params.items():
        index, pname = name[len(prefix):].split(".")
        layers.setdefault(int(index), {})[pname] = value
    return [layers[i] for i in sorted(layers)]


def _check_rnn_layer_call(call: ModuleCall) -> str:
    """Verify one RNNLayer call against nn.RNN (tanh, ReLU) or a float64 formula (identity); its nonlinearity."""
    (x,) = call.args
    all_h, last_h = call.result
    kind = _nonlinearity_name(call.module.nonlinearity)
    if kind == "identity":
        out, h_T = _float64_rnn(call.params, x, kind)
    else:
        out, h_n = _torch_rnn([call.params], kind).to(x.dtype)(x)
        h_T = h_n[0]
    _close(all_h, out)
    _close(last_h, h_T)
    return kind


def _check_lstm_layer_call(call: ModuleCall) -> None:
    x, *rest = call.args
    hc0 = rest[0] if rest else None
    all_h, (h, c) = call.result
    ref = _torch_lstm([call.params])
    out, (h_n, c_n) = ref(x) if hc0 is None else ref(x, (hc0[0][None], hc0[1][None]))
    _close(all_h, out)
    _close(h, h_n[0])
    _close(c, c_n[0])


def test_rnn_layer_answers_match_torch(ns: dict[str, Any]) -> None:
    kinds = set()
    for grade_id in ("test_rnn_layer_values", "test_rnn_layer_torch"):
        calls = module_calls(ns, grade_id, "RNNLayer")
        for call in calls:
            kinds.add(_check_rnn_layer_call(call))
        assert len(calls) >= 7
    assert kinds == {"tanh", "relu", "identity"}
    float64 = [c for c in module_calls(ns, "test_rnn_layer_values", "RNNLayer") if c.args[0].dtype == torch.float64]
    assert len(float64) == 1 and float64[0].result[0].dtype == torch.float64


def _float64_rnn_states(params: dict, x: torch.Tensor) -> list[torch.Tensor]:
    """h_1..h_T of an RNN layer in float64, written out step by step (for gradients of a loss)."""
    W_h, W_x, b = (params[k].double().requires_grad_() for k in ("W_h", "W_x", "b"))
    h, states = torch.zeros(x.shape[0], W_h.shape[0], dtype=torch.float64), []
    for t in range(x.shape[1]):
        h = torch.tanh(h @ W_h.T + x[:, t].double() @ W_x.T + b)
        states.append(h)
    return states


def _float64_lstm_states(params: dict, x: torch.Tensor) -> tuple[list[torch.Tensor], torch.Tensor]:
    p = {k: v.double().requires_grad_() for k, v in params.items()}
    hidden = p["W_f"].shape[0]
    h = c = torch.zeros(x.shape[0], hidden, dtype=torch.float64)
    states = []
    for t in range(x.shape[1]):
        xt = x[:, t].double()
        gate = {k: xt @ p[f"U_{k}"] + h @ p[f"W_{k}"] + p[f"b_{k}"] for k in "fiog"}
        c = torch.sigmoid(gate["f"]) * c + torch.sigmoid(gate["i"]) * torch.tanh(gate["g"])
        h = torch.tanh(c) * torch.sigmoid(gate["o"])
        states.append(h)
    return states, c


def test_rnn_h_list_answers_match_autograd(ns: dict[str, Any]) -> None:
    """The recorded h_list values and gradients are h_t and dL/dh_t for L = sum(h_T @ linspace(-0.5, 1, H))."""
    call = module_calls(ns, "test_rnn_layer_values", "RNNLayer")[-1]  # the h_list layer is the last one built
    (x,) = call.args
    states = _float64_rnn_states(call.params, x)
    loss = (states[-1] @ torch.linspace(-0.5, 1.0, states[-1].shape[1], dtype=torch.float64)).sum()
    grads = torch.autograd.grad(loss, states)
    values, recorded = _record("test_rnn_layer_values", "rnn_h_list_values"), _record("test_rnn_layer_values", "rnn_h_list_grads")
    assert len(values) == len(recorded) == x.shape[1] == 6
    for t in range(6):
        _close(values[t], states[t])
        _close(recorded[t], grads[t])
    assert float(recorded[0].abs().sum()) > 0


def test_lstm_layer_answers_match_torch(ns: dict[str, Any]) -> None:
    with_state = 0
    for grade_id in ("test_lstm_layer_values", "test_lstm_layer_gates"):
        calls = module_calls(ns, grade_id, "LSTMLayer")
        for call in calls:
            _check_lstm_layer_call(call)
            with_state += len(call.args) > 1 and call.args[1] is not None
        assert len(calls) >= 6
    assert with_state == 5


def test_lstm_h_list_answers_match_autograd(ns: dict[str, Any]) -> None:
    """The recorded gradients are dL/dh_t for L = sum(h_T) + sum(c_T)."""
    call = module_calls(ns, "test_lstm_layer_values", "LSTMLayer")[-1]
    (x,) = call.args
    states, c = _float64_lstm_states(call.params, x)
    grads = torch.autograd.grad(states[-1].sum() + c.sum(), states)
    values, recorded = _record("test_lstm_layer_values", "lstm_h_list_values"), _record("test_lstm_layer_values", "lstm_h_list_grads")
    assert len(values) == len(recorded) == 5
    for t in range(5):
        _close(values[t], states[t])
        _close(recorded[t], grads[t])
    assert float(recorded[0].abs().sum()) > 0


def _stand_in_formula(params: dict, x: torch.Tensor, hc0=None) -> tuple[torch.Tensor, torch.Tensor]:
    """hw6utils.standins.StandInLayer in float64, from its docstring: all_h and the reported c_T."""
    steps = torch.arange(1, x.shape[1] + 1, dtype=torch.float64).view(1, -1, 1)
    pre = (x.double().cumsum(1) / steps) @ params["P"].double().T + params["q"].double()
    h0 = 0.0 if hc0 is None else hc0[0].double().unsqueeze(1)
    c0 = 0.0 if hc0 is None else hc0[1].double()
    return torch.tanh(pre + h0), pre[:, -1] + c0


def test_stacked_answers_are_the_stacked_stand_ins(ns: dict[str, Any]) -> None:
    """The 3k cells run RNN/LSTM on stand-in layers; the reference stacks them as the instructions say
    (layer l + 1 reads the states of layer l; h, c of every layer; layer l starts from hc0[l])."""
    for call in module_calls(ns, "test_stacked_rnn", "RNN"):
        (x,) = call.args
        inp, lasts = x, []
        for params in _per_layer(call.params):
            inp, _ = _stand_in_formula(params, inp)
            lasts.append(inp[:, -1])
        _close(call.result[0], inp)
        _close(call.result[1], torch.stack(lasts))
    with_state = 0
    for call in module_calls(ns, "test_stacked_lstm", "LSTM"):
        x, *rest = call.args
        hc0 = rest[0] if rest else None
        with_state += hc0 is not None
        inp, hs, cs = x, [], []
        for index, params in enumerate(_per_layer(call.params)):
            inp, c = _stand_in_formula(params, inp, None if hc0 is None else (hc0[0][index], hc0[1][index]))
            hs.append(inp[:, -1])
            cs.append(c)
        last_layer_h, (h, c) = call.result
        _close(last_layer_h, inp)
        _close(h, torch.stack(hs))
        _close(c, torch.stack(cs))
    assert with_state == 5


def test_regression_model_answers_match_the_formula(ns: dict[str, Any]) -> None:
    """out = all_h @ W.T + b on every timestep, all_h = the recurrent net's states (given or from nn.RNN)."""
    stand_ins = 0
    for call in module_calls(ns, "test_regression_model", "RecurrentRegressionModel"):
        (x,) = call.args
        out, all_h = call.result
        want_h = call.module.recurrent_net.all_h  # every forward call reads states from a stand-in
        stand_ins += 1
        _close(all_h, want_h)
        _close(out, want_h @ call.params["output_layer.weight"].T + call.params["output_layer.bias"])
    assert stand_ins == 6
    for trial in range(3):
        assert _record("test_regression_model", f"readout_{trial}")["recurrent net calls"] == 1


def test_loss_answers_match_the_formula(ns: dict[str, Any]) -> None:
    calls = reference_calls(NOTEBOOK, "test_loss_fn", ns, "loss_fn")
    for call in calls:
        pred, y = call.args[0].double(), call.args[1].double()
        last = call.kwargs.get("last_timestep_only", call.args[2] if len(call.args) > 2 else False)
        d = pred[:, -1] - y[:, -1] if last else pred - y
        _close(call.result, (d ** 2).mean(), atol=1e-6)
    assert len(calls) == 4 + 2 * 4
    for shape in [(4, 6, 1), (3, 5, 2), (1, 1, 1), (5, 3)]:
        [call] = [c for c in calls if tuple(c.args[0].shape) == shape and c.kwargs.get("last_timestep_only")]
        d = (call.args[0] - call.args[1]).double()
        grad = torch.zeros(shape, dtype=torch.float64)
        grad[:, -1] = 2 * d[:, -1] / d[:, -1].numel()
        _close(_record("test_loss_fn", "loss_" + "x".join(map(str, shape)))["gradient of the last-step loss"], grad)


def test_generate_batch_answers_are_running_averages_of_standard_normal_draws(ns: dict[str, Any]) -> None:
    calls = reference_calls(NOTEBOOK, "test_generate_batch", ns, "generate_batch")
    assert len(calls) >= 10
    for call in calls:
        seq_len = call.kwargs.get("seq_len", 10)
        batch_size = call.kwargs.get("batch_size", 1)
        x, y = call.result
        assert x.shape == y.shape == (batch_size, seq_len, 1) and x.dtype == y.dtype == torch.float32
        counts = torch.arange(1, seq_len + 1, dtype=torch.float64).view(1, seq_len, 1)
        _close(y, x.double().cumsum(1) / counts, atol=1e-6)
    # the seeded draws are torch.randn(batch_size, seq_len, 1) after torch.manual_seed
    records = {T: _record("test_generate_batch", f"batch_T{T}_B{B}") for T, B in [(1, 1), (2, 5), (7, 3), (30, 4)]}
    torch.manual_seed(3004)
    for T, B in [(1, 1), (2, 5), (7, 3), (30, 4)]:
        want = torch.randn(B, T, 1)
        _close(records[T]["x"], want, atol=0)
    big = torch.randn(400, 50, 1)
    assert abs(_record("test_generate_batch", "sample_mean") - float(big.mean())) < 1e-6
    assert abs(_record("test_generate_batch", "sample_mean")) < 0.03
    assert abs(_record("test_generate_batch", "sample_std") - 1) < 0.03
    first, second = _record("test_generate_batch", "two_calls")
    assert not torch.equal(first, second)
    again = _record("test_generate_batch", "seed_11_twice")
    assert torch.equal(again[0], again[1])
