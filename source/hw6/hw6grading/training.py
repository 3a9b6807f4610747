"""Problem 3c's reference data and loss, and the judges of the 3k training runs.

``running_average_batch`` and ``regression_loss`` are the answers to 3c (``generate_batch``, ``loss_fn``).
The judges rebuild a published model from its weights with torch's own ``nn.RNN`` / ``nn.LSTM`` (the
layout of the notebook's ``RNNLayer`` / ``LSTMLayer`` parameters is fixed) and recompute its final loss
on the course's evaluation batch: the grade never rests on a number the student's kernel computed.
"""
from __future__ import annotations

import torch
from torch import nn

from . import helper

_kit = helper("training")
LOSS_TARGETS, RECIPES, TrainingRecipe = _kit.LOSS_TARGETS, _kit.RECIPES, _kit.TrainingRecipe

SECOND_EVAL_SEED = 777  # a second, independent evaluation batch
MAX_HIDDEN = 256
GATES = ("f", "i", "o", "g")  # the notebook's LSTMLayer parameter names: U_k, W_k, b_k
TORCH_GATE_ORDER = ("i", "f", "g", "o")  # nn.LSTM stacks its gates in this order


def running_average_batch(seq_len: int, batch_size: int,
                          generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequences ``x ~ N(0, 1)`` of shape (B, T, 1) and their running averages ``y`` (B, T, 1)."""
    x = torch.randn(batch_size, seq_len, 1, generator=generator)
    steps = torch.arange(1, seq_len + 1, dtype=x.dtype).view(1, seq_len, 1)
    return x, x.cumsum(dim=1) / steps


def regression_loss(pred: torch.Tensor, y: torch.Tensor, last_timestep_only: bool = False) -> torch.Tensor:
    """Mean squared error over every timestep, or over the last timestep only (dim 1 is time)."""
    if last_timestep_only:
        pred, y = pred[:, -1], y[:, -1]
    return ((pred - y) ** 2).mean()


def evaluate(model: nn.Module, last_timestep_only: bool, recipe: TrainingRecipe = TrainingRecipe(),
             seed: int | None = None) -> float:
    """The "final loss" of a trusted model: MSE on the seeded evaluation batch (``recipe.eval_seed``)."""
    generator = torch.Generator().manual_seed(recipe.eval_seed if seed is None else seed)
    x, y = running_average_batch(recipe.seq_len, recipe.eval_sequences, generator)
    model.eval()
    with _kit.torch_threads(recipe.num_threads), torch.no_grad():
        return float(regression_loss(model(x), y, last_timestep_only))


def architecture(evidence: dict, reference: dict | None = None) -> list:
    """[kind, number of layers, hidden size] read from the published parameter names and shapes."""
    names = set(evidence["state_dict"])
    layers = sorted({int(n.split(".")[2]) for n in names if n.startswith("recurrent_net.layers.")
                     and n.split(".")[2].isdigit()})
    kind = "lstm" if any(n.endswith(".W_f") for n in names) else "rnn"
    hidden = int(evidence["state_dict"]["output_layer.weight"]["__array__"][1])
    return [kind, len(layers), hidden]


def _tensor(plain: object) -> torch.Tensor:
    """A published array back as a float32 tensor."""
    return torch.from_numpy(helper("records").array_from_plain(plain)).float()


class _TrustedRegression(nn.Module):
    def __init__(self, net: nn.Module, readout: nn.Linear) -> None:
        super().__init__()
        self.net, self.readout = net, readout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.net(x)[0])


def regression_model_from_weights(evidence: dict) -> nn.Module:
    """Rebuild a published RecurrentRegressionModel with trusted torch modules (ValueError if it is not
    the notebook's architecture)."""
    kind, num_layers, hidden = architecture(evidence)
    if not 1 <= num_layers <= 4 or not 1 <= hidden <= MAX_HIDDEN:
        raise ValueError(f"unexpected architecture: {num_layers} layers of size {hidden}")
    weights = {name: _tensor(value) for name, value in evidence["state_dict"].items()}
    per_layer = (["W_h", "W_x", "b"] if kind == "rnn" else [f"{p}_{g}" for g in GATES for p in ("U", "W", "b")])
    expected = {f"recurrent_net.layers.{l}.{p}" for l in range(num_layers) for p in per_layer}
    expected |= {"output_layer.weight", "output_layer.bias"}
    if set(weights) != expected:
        raise ValueError("the parameter names are not those of the notebook's "
                         f"{kind.upper()} with {num_layers} layer(s)")
    net = (nn.LSTM if kind == "lstm" else nn.RNN)(1, hidden, num_layers=num_layers, batch_first=True)
    with torch.no_grad():
        for l in range(num_layers):
            p = {name.rsplit(".", 1)[1]: w for name, w in weights.items() if name.startswith(f"recurrent_net.layers.{l}.")}
            if kind == "rnn":
                w_ih, w_hh, b_ih = p["W_x"], p["W_h"], p["b"]
            else:  # the notebook computes x @ U_k + h @ W_k: torch wants the transposes, gates stacked
                w_ih = torch.cat([p[f"U_{g}"].T for g in TORCH_GATE_ORDER])
                w_hh = torch.cat([p[f"W_{g}"].T for g in TORCH_GATE_ORDER])
                b_ih = torch.cat([p[f"b_{g}"] for g in TORCH_GATE_ORDER])
            getattr(net, f"weight_ih_l{l}").copy_(w_ih)  # a wrong shape raises here
            getattr(net, f"weight_hh_l{l}").copy_(w_hh)
            getattr(net, f"bias_ih_l{l}").copy_(b_ih)
            getattr(net, f"bias_hh_l{l}").zero_()
    readout = nn.Linear(hidden, 1)
    with torch.no_grad():
        readout.weight.copy_(weights["output_layer.weight"])
        readout.bias.copy_(weights["output_layer.bias"])
    return _TrustedRegression(net, readout)


def _loss_of_published(evidence: dict, reference: dict | None, seed: int | None) -> float:
    """Recompute a published model's loss. Against a ``reference`` (the grader), the model must have
    the reference's kind and depth, and is evaluated on the reference's task."""
    kind, num_layers, _ = architecture(evidence)
    task = evidence
    if reference is not None:
        if architecture(reference)[:2] != [kind, num_layers]:
            raise ValueError(f"expected a trained {architecture(reference)[0].upper()} with "
                             f"{architecture(reference)[1]} layer(s), got {kind.upper()} with {num_layers}")
        task = reference
    return evaluate(regression_model_from_weights(evidence), bool(task["last_timestep_only"]), RECIPES[kind], seed)


def final_loss(evidence: dict, reference: dict | None = None) -> float:
    """The graded "final loss" of a published model, recomputed from its weights with trusted code."""
    return _loss_of_published(evidence, reference, None)


def meets_target_on_second_batch(evidence: dict, reference: dict | None = None) -> bool:
    """Whether the published model meets its target on a second, independent evaluation batch too."""
    num_layers = architecture(reference if reference is not None else evidence)[1]
    return _loss_of_published(evidence, reference, SECOND_EVAL_SEED) < LOSS_TARGETS[num_layers]
