"""Trusted training loop for Problem 3k (running-average regression with recurrent nets).

The notebook trains eight small models (1- and 2-layer RNN and LSTM, on two tasks) with the
recipe below, and the graded tests re-evaluate them with :func:`evaluate_regression_model`.
Data and loss live here rather than in the student's notebook so that the grade depends only on
the student's recurrent layers, and every run is seeded so that the same submission always
earns the same score. The task's data, :func:`running_average_batch`, is defined here once; the
Problem 3d measurement (:mod:`hw6utils.gradients`) draws its batch with it too.

Recipe (see docs/benchmarks.md, "Problem 3k training recipe"): hidden size 32, Adam on batches of
64 fresh sequences of length 10, peak learning rate 1e-2 with a 60-step linear warm-up and cosine
decay to 0, gradient-norm clipping at 1; 1000 steps for RNNs, 500 for LSTMs (an LSTM step costs
about three times as much and LSTMs need fewer steps on this task).
"""
from __future__ import annotations

import math
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

# Targets of Problem 3k for the final loss (mean squared error), by number of layers.
LOSS_TARGETS: dict[int, float] = {1: 0.01, 2: 0.001}


@dataclass(frozen=True)
class TrainingRecipe:
    """Hyper-parameters of the 3k training runs (defaults are the graded recipe)."""

    hidden_size: int = 32
    steps: int = 1000
    batch_size: int = 64
    seq_len: int = 10
    lr: float = 1e-2  # peak learning rate
    warmup_steps: int = 60  # linear warm-up from lr / warmup_steps to lr (0: none)
    cosine_decay: bool = True  # learning rate follows a half cosine from ``lr`` down to 0
    clip_grad_norm: float | None = 1.0
    seed: int = 0  # seeds the model's initial parameters and the training batches
    eval_sequences: int = 2000  # size of the evaluation batch defining the "final loss"
    eval_seed: int = 2026  # the evaluation batch never overlaps the training stream's seed
    num_threads: int = 1  # tiny matrices: one thread is fastest and bitwise reproducible


RECIPES: dict[str, TrainingRecipe] = {"rnn": TrainingRecipe(), "lstm": TrainingRecipe(steps=500)}
"""The graded recipe for each kind of net (the evaluation settings are the same for both)."""


def running_average_batch(seq_len: int, batch_size: int,
                          generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequences ``x ~ N(0, 1)`` of shape (B, T, 1) and their running averages ``y`` (B, T, 1)."""
    x = torch.randn(batch_size, seq_len, 1, generator=generator)
    steps = torch.arange(1, seq_len + 1, dtype=x.dtype).view(1, seq_len, 1)
    return x, x.cumsum(dim=1) / steps


def regression_loss(pred: torch.Tensor, y: torch.Tensor, last_timestep_only: bool) -> torch.Tensor:
    """Mean squared error over every timestep, or over the last timestep only (dim 1 is time)."""
    if last_timestep_only:
        pred, y = pred[:, -1], y[:, -1]
    return ((pred - y) ** 2).mean()


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Temporarily run torch with ``n`` intra-op threads."""
    previous = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _progress(total: int, desc: str, enabled: bool):
    """A tqdm bar (widget in Jupyter, text elsewhere), or None when disabled."""
    if not enabled:
        return None
    from tqdm.auto import tqdm
    return tqdm(total=total, desc=desc, leave=True, mininterval=0.5)


def _predictions(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The model's per-timestep predictions (B, T, out); accepts models returning a tuple."""
    out = model(x)
    if isinstance(out, (tuple, list)):
        out = out[0]
    if not isinstance(out, torch.Tensor) or out.dim() != 3 or out.shape[:2] != x.shape[:2]:
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise ValueError(f"the model must return predictions of shape (B, T, 1) = "
                         f"{(x.shape[0], x.shape[1], 1)} first; got {shape}")
    return out


def train_regression_model(build_model: Callable[[], nn.Module], last_timestep_only: bool,
                           recipe: TrainingRecipe = TrainingRecipe(), desc: str = "training",
                           progress: bool = True,
                           on_step: Callable[[int, nn.Module], None] | None = None,
                           ) -> tuple[nn.Module, list[float]]:
    """Build a model (after seeding) and train it on the running-average task.

    ``build_model`` is called with torch's global seed set to ``recipe.seed`` so the initial
    parameters are reproducible. ``on_step(step, model)``, if given, runs after every optimizer
    step (benchmarks use it to evaluate along the way). Returns the trained model and the
    per-batch training losses.
    """
    with torch_threads(recipe.num_threads):
        torch.manual_seed(recipe.seed)
        model = build_model()
        generator = torch.Generator().manual_seed(recipe.seed + 1)
        optimizer = torch.optim.Adam(model.parameters(), lr=recipe.lr)
        steps = recipe.steps

        def lr_factor(step: int) -> float:
            warmup = min(1.0, (step + 1) / recipe.warmup_steps) if recipe.warmup_steps > 0 else 1.0
            decay = 0.5 * (1.0 + math.cos(math.pi * step / steps)) if recipe.cosine_decay else 1.0
            return warmup * decay

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)
        history: list[float] = []
        bar = _progress(steps, desc, progress)
        model.train()
        try:
            for step in range(steps):
                x, y = running_average_batch(recipe.seq_len, recipe.batch_size, generator)
                loss = regression_loss(_predictions(model, x), y, last_timestep_only)
                if not torch.isfinite(loss):
                    raise FloatingPointError(f"{desc}: the loss became {loss.item()} at step {step}")
                optimizer.zero_grad()
                loss.backward()
                if recipe.clip_grad_norm is not None:
                    nn.utils.clip_grad_norm_(model.parameters(), recipe.clip_grad_norm)
                optimizer.step()
                scheduler.step()
                history.append(loss.item())
                if on_step is not None:
                    on_step(step, model)
                if bar is not None:
                    bar.update(1)
                    if step % 50 == 0 or step == steps - 1:
                        bar.set_postfix(loss=f"{history[-1]:.2e}", refresh=False)
        finally:
            if bar is not None:
                bar.close()
    return model, history


def evaluate_regression_model(model: nn.Module, last_timestep_only: bool,
                              recipe: TrainingRecipe = TrainingRecipe(), seed: int | None = None) -> float:
    """The "final loss": mean squared error on a fixed, seeded batch of fresh sequences.

    The batch has ``recipe.eval_sequences`` sequences drawn with ``seed`` (default
    ``recipe.eval_seed``), so the number is deterministic and barely noisy.
    """
    generator = torch.Generator().manual_seed(recipe.eval_seed if seed is None else seed)
    x, y = running_average_batch(recipe.seq_len, recipe.eval_sequences, generator)
    was_training = model.training
    model.eval()
    try:
        with torch_threads(recipe.num_threads), torch.no_grad():
            loss = regression_loss(_predictions(model, x), y, last_timestep_only)
    finally:
        model.train(was_training)
    return float(loss)


def smooth(values: Sequence[float], window: int = 20) -> list[float]:
    """Trailing moving average (for readable loss curves)."""
    out, total = [], 0.0
    for i, v in enumerate(values):
        total += v
        if i >= window:
            total -= values[i - window]
        out.append(total / min(i + 1, window))
    return out


def plot_loss_curves(histories: dict[str, list[float]], targets: dict[str, float] | None = None,
                     title: str = "training loss", window: int = 20):
    """Plot smoothed loss histories on a log axis; dashed lines mark the targets. Returns the figure."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, history in histories.items():
        line, = ax.plot(smooth(history, window), label=name, linewidth=1.2)
        if targets and name in targets:
            ax.axhline(targets[name], color=line.get_color(), linestyle="--", linewidth=0.8)
    ax.set_yscale("log")
    ax.set_xlabel("training step (batch)")
    ax.set_ylabel(f"MSE (moving average over {window} batches)")
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    return fig


# --- what the graded training cells publish, and how the grader judges it ------------------------
#
# A training test cell publishes each trained model's weights as plain data (``training_evidence``).
# The grader rebuilds the model from them with torch's own ``nn.RNN`` / ``nn.LSTM`` (the layout of
# the notebook's RNNLayer / LSTMLayer parameters is fixed) and recomputes the final loss itself: the
# grade never rests on a number the student's kernel computed.

SECOND_EVAL_SEED = 777  # a second, independent evaluation batch
MAX_HIDDEN = 256
GATES = ("f", "i", "o", "g")  # the notebook's LSTMLayer parameter names: U_k, W_k, b_k
TORCH_GATE_ORDER = ("i", "f", "g", "o")  # nn.LSTM stacks its gates in this order


def training_evidence(model: nn.Module, kind: str, last_timestep_only: bool) -> dict:
    """What a graded training cell publishes about one trained model: its weights and its recipe."""
    recipe = RECIPES[kind]
    state = {name: value.detach().clone() for name, value in model.state_dict().items()}
    layers = {name.split(".")[2] for name in state if name.startswith("recurrent_net.layers.")}
    return {"model": kind, "num_layers": len(layers), "last_timestep_only": bool(last_timestep_only),
            "state_dict": state, "seed": recipe.seed, "recipe": {k: v for k, v in vars(recipe).items()}}


def _tensor(plain: object) -> torch.Tensor:
    """A published array back as a float32 tensor."""
    from .records import array_from_plain

    return torch.from_numpy(array_from_plain(plain)).float()


def architecture(evidence: dict, reference: dict | None = None) -> list:
    """[kind, number of layers, hidden size] read from the published parameter names and shapes."""
    names = set(evidence["state_dict"])
    layers = sorted({int(n.split(".")[2]) for n in names if n.startswith("recurrent_net.layers.")
                     and n.split(".")[2].isdigit()})
    kind = "lstm" if any(n.endswith(".W_f") for n in names) else "rnn"
    hidden = int(evidence["state_dict"]["output_layer.weight"]["__array__"][1])
    return [kind, len(layers), hidden]


def _regression_model_from_weights(evidence: dict) -> nn.Module:
    """Rebuild a published RecurrentRegressionModel with trusted torch modules (ValueError if it
    is not the notebook's architecture)."""
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
    rnn_class = nn.LSTM if kind == "lstm" else nn.RNN
    net = rnn_class(1, hidden, num_layers=num_layers, batch_first=True)
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


class _TrustedRegression(nn.Module):
    def __init__(self, net: nn.Module, readout: nn.Linear) -> None:
        super().__init__()
        self.net, self.readout = net, readout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.readout(self.net(x)[0])


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
    model = _regression_model_from_weights(evidence)
    return evaluate_regression_model(model, bool(task["last_timestep_only"]), RECIPES[kind], seed=seed)


def final_loss(evidence: dict, reference: dict | None = None) -> float:
    """The graded "final loss" of a published model, recomputed from its weights with trusted code."""
    return _loss_of_published(evidence, reference, None)


def meets_target_on_second_batch(evidence: dict, reference: dict | None = None) -> bool:
    """Whether the published model meets its target on a second, independent evaluation batch too."""
    num_layers = architecture(reference if reference is not None else evidence)[1]
    return _loss_of_published(evidence, reference, SECOND_EVAL_SEED) < LOSS_TARGETS[num_layers]
