"""The training loop of Problem 3k (running-average regression with recurrent nets).

The notebook trains eight small models (1- and 2-layer RNN and LSTM, on two tasks) with the recipe
below, on batches from the student's own ``generate_batch`` and with the student's ``loss_fn`` (3c), as
the original homework does. Every run is seeded (torch's global generator, which ``generate_batch``
draws from), so the same code always gives the same numbers. The graded test cells publish each trained
model's weights (:func:`training_evidence`); the grader recomputes the final loss from them with its
own data, loss and equations (instructor-only code), never with numbers from the student's kernel.

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


BatchFn = Callable[[int, int], tuple[torch.Tensor, torch.Tensor]]  # generate_batch(seq_len, batch_size)
LossFn = Callable[..., torch.Tensor]  # loss_fn(pred, y, last_timestep_only)


def train_regression_model(build_model: Callable[[], nn.Module], batch_fn: BatchFn, loss_fn: LossFn,
                           last_timestep_only: bool, recipe: TrainingRecipe = TrainingRecipe(),
                           desc: str = "training",
                           progress: bool = True,
                           on_step: Callable[[int, nn.Module], None] | None = None,
                           ) -> tuple[nn.Module, list[float]]:
    """Build a model (after seeding) and train it on batches ``batch_fn(seq_len, batch_size)`` with
    ``loss_fn(pred, y, last_timestep_only)``.

    ``build_model`` is called with torch's global seed set to ``recipe.seed`` so the initial
    parameters are reproducible; the batches are then drawn after seeding with ``recipe.seed + 1``. ``on_step(step, model)``, if given, runs after every optimizer
    step (benchmarks use it to evaluate along the way). Returns the trained model and the
    per-batch training losses.
    """
    with torch_threads(recipe.num_threads):
        torch.manual_seed(recipe.seed)
        model = build_model()
        torch.manual_seed(recipe.seed + 1)  # the batches: batch_fn draws from torch's global generator
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
                x, y = batch_fn(recipe.seq_len, recipe.batch_size)
                loss = loss_fn(_predictions(model, x), y, last_timestep_only=last_timestep_only)
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


def evaluate_regression_model(model: nn.Module, batch_fn: BatchFn, loss_fn: LossFn, last_timestep_only: bool,
                              recipe: TrainingRecipe = TrainingRecipe(), seed: int | None = None) -> float:
    """The "final loss": ``loss_fn`` on a fixed, seeded batch of fresh sequences from ``batch_fn``.

    The batch has ``recipe.eval_sequences`` sequences drawn after seeding torch's generator with ``seed``
    (default ``recipe.eval_seed``; the generator's state is restored afterwards), so the number is
    deterministic and barely noisy. The grader computes the same number from the weights alone.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(recipe.eval_seed if seed is None else seed)
        x, y = batch_fn(recipe.seq_len, recipe.eval_sequences)
    was_training = model.training
    model.eval()
    try:
        with torch_threads(recipe.num_threads), torch.no_grad():
            loss = loss_fn(_predictions(model, x), y, last_timestep_only=last_timestep_only)
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


# --- what the graded training cells publish ---------------------------------------------------
#
# A training test cell publishes each trained model's weights as plain data; the grader rebuilds the
# model from them with instructor-only code and recomputes the final loss itself.

def unread_parameters(model: nn.Module, input_size: int = 1) -> list[str]:
    """Names of the parameters that ``model``'s forward never reads (e.g. the bias ``b`` of an
    ``RNNLayer`` whose forward leaves it out).

    A parameter is unread when no gradient reaches it on a small probe batch and setting it to 0 leaves
    the predictions bitwise unchanged. Such a parameter keeps its untrained start values, which the
    specified equations would add in; published as 0 instead, the weights describe the very function
    the student trained (every term of the equations is linear in its parameter, so a 0 drops the term).
    A forward that fails on the probe reads nothing here: then every parameter is published as it is.
    """
    named = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    probe = torch.randn(3, 4, input_size, generator=torch.Generator().manual_seed(0))
    try:
        with torch.no_grad():
            before = _predictions(model, probe)
        with torch.enable_grad():
            out = _predictions(model, probe)
            if not out.requires_grad:
                return []
            grads = torch.autograd.grad(out.sum(), [p for _, p in named], allow_unused=True)
    except Exception:  # the student's forward, on a model the grader will judge from its weights anyway
        return []
    unread = [(name, p) for (name, p), grad in zip(named, grads) if grad is None]
    if not unread:
        return []
    saved = [p.detach().clone() for _, p in unread]
    try:
        with torch.no_grad():
            for _, p in unread:
                p.zero_()
            unchanged = torch.equal(_predictions(model, probe), before)
    except Exception:
        unchanged = False
    finally:
        with torch.no_grad():
            for (_, p), value in zip(unread, saved):
                p.copy_(value)
    return [name for name, _ in unread] if unchanged else []


def training_evidence(model: nn.Module, kind: str, last_timestep_only: bool) -> dict:
    """What a graded training cell publishes about one trained model: its weights and its recipe.

    Parameters the model's forward never reads are published as 0 (:func:`unread_parameters`), so the
    grader, which evaluates the weights with the specified equations, judges the same function whose
    final loss the notebook reports: a student who leaves out the bias loses the points of 3a, not
    those of 3k again.
    """
    recipe = RECIPES[kind]
    state = {name: value.detach().clone() for name, value in model.state_dict().items()}
    input_size = getattr(getattr(model, "recurrent_net", None), "input_size", 1)
    for name in unread_parameters(model, input_size if isinstance(input_size, int) else 1):
        state[name] = torch.zeros_like(state[name])
    layers = {name.split(".")[2] for name in state if name.startswith("recurrent_net.layers.")}
    return {"model": kind, "num_layers": len(layers), "last_timestep_only": bool(last_timestep_only),
            "state_dict": state, "seed": recipe.seed, "recipe": {k: v for k, v in vars(recipe).items()}}
