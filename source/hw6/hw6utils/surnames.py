"""The pipeline of Problem 4 around the student's code: data set and splits, batches, training loop,
evaluation, plots.

The notebook asks students for the normalization (``unicodeToAscii``), the encoding (``namesToBatch``), the
model and the hyperparameters; the functions here take those as arguments (``encode=namesToBatch``,
``normalize=unicodeToAscii``) and hold no copy of them. The course's constants (vocabulary, split seed,
epochs, grading bar) are defined here once. What a finished training run hands in is
:mod:`hw6utils.surname_log`; the grader's own encoding and model are instructor-only code.
"""
from __future__ import annotations

import math
import string
import time
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

ALL_LETTERS = string.ascii_letters + " .,;'"   # 57 characters
N_LETTERS = len(ALL_LETTERS)                    # 57
PAD_INDEX = N_LETTERS                           # 57
VOCAB_SIZE = N_LETTERS + 1                      # 58
EPOCHS = 20                                     # fixed by the course
SPLIT_SEED = 6                                  # the course's seeded random 80/20 split
EVAL_FRACTION = 0.2
PASS_ACCURACY, FULL_ACCURACY = 70.0, 80.0       # linear grading bar (percent)


Encoder = Callable[[Sequence[str]], tuple[torch.Tensor, torch.Tensor]]  # namesToBatch: (x (B, L), last_pos (B,))


# ---------------------------------------------------------------- data set and splits
class SurnameData:
    """All names with integer labels; ``categories`` are the SORTED language names; ``x`` and ``last_pos``
    are every name encoded with ``encode`` (the notebook passes its ``namesToBatch``)."""

    def __init__(self, names_by_language: dict[str, list[str]], checksum: str, encode: Encoder):
        self.categories = sorted(names_by_language)
        self.names: list[str] = []
        self.labels: list[int] = []
        for label, language in enumerate(self.categories):
            for name in names_by_language[language]:
                self.names.append(name)
                self.labels.append(label)
        self.checksum = checksum
        self.x, self.last_pos = encode(self.names)
        self.y = torch.tensor(self.labels, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.names)

    def subset(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x, last_pos, y) rows ``index``, trimmed to the longest name among them."""
        last = self.last_pos[index]
        width = int(last.max()) + 1 if len(index) else 1
        return self.x[index, :width], last, self.y[index]


def random_split(n: int, seed: int = SPLIT_SEED, eval_fraction: float = EVAL_FRACTION
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """The course split: a seeded permutation, the last ``eval_fraction`` of it is evaluation."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_eval = int(round(n * eval_fraction))
    return perm[: n - n_eval].sort().values, perm[n - n_eval:].sort().values


def grouped_split(names: Sequence[str], normalize: Callable[[str], str], seed: int = SPLIT_SEED,
                  eval_fraction: float = EVAL_FRACTION) -> tuple[torch.Tensor, torch.Tensor]:
    """A split where no name string normalized with ``normalize`` is on both sides (all its lines go to one side)."""
    keys = sorted({normalize(n) for n in names})
    perm = torch.randperm(len(keys), generator=torch.Generator().manual_seed(seed)).tolist()
    n_eval_keys = int(round(len(keys) * eval_fraction))
    eval_keys = {keys[i] for i in perm[len(keys) - n_eval_keys:]}
    is_eval = torch.tensor([normalize(n) in eval_keys for n in names])
    idx = torch.arange(len(names))
    return idx[~is_eval], idx[is_eval]


# ---------------------------------------------------------------- training and evaluation
def batches(n: int, batch_size: int, generator: torch.Generator | None = None):
    """Index batches covering 0..n-1 exactly once: ceil(n / batch_size) batches, never an empty one."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start:start + batch_size]


def bucketed_batches(lengths: torch.Tensor, batch_size: int, generator: torch.Generator,
                     chunk_batches: int = 20) -> list[torch.Tensor]:
    """Shuffled batches of similar-length names (less padding, so faster), still ceil(n / batch_size) of them.

    The shuffled order is cut into chunks of ``chunk_batches`` batches, each chunk is sorted by length and
    cut into batches, and the batch order is shuffled again. Only the very last batch can be short.
    """
    n = len(lengths)
    order = torch.randperm(n, generator=generator)
    out: list[torch.Tensor] = []
    chunk = batch_size * chunk_batches
    for start in range(0, n, chunk):
        part = order[start:start + chunk]
        part = part[torch.sort(lengths[part], stable=True).indices]
        out.extend(part[i:i + batch_size] for i in range(0, len(part), batch_size))
    return [out[i] for i in torch.randperm(len(out), generator=generator).tolist()]


@torch.no_grad()
def predict_logits(model: nn.Module, x: torch.Tensor, last_pos: torch.Tensor, batch_size: int = 1024
                   ) -> torch.Tensor:
    """Logits of ``model`` in eval mode, in batches trimmed to their longest name."""
    was_training = model.training
    model.eval()
    order = torch.sort(last_pos, stable=True).indices   # similar lengths together: less padding
    out = []
    for idx in batches(len(x), batch_size):
        rows = order[idx]
        last = last_pos[rows]
        out.append(model(x[rows, : int(last.max()) + 1], last))
    model.train(was_training)
    if not out:
        return torch.zeros(0)
    logits = torch.empty(len(x), out[0].shape[1], dtype=out[0].dtype)
    logits[order] = torch.cat(out)
    return logits


def accuracy(model: nn.Module, x: torch.Tensor, last_pos: torch.Tensor, y: torch.Tensor) -> float:
    """Percentage of rows whose arg-max logit is the label."""
    return float((predict_logits(model, x, last_pos).argmax(1) == y).float().mean() * 100)


def train_classifier(model: nn.Module, data: SurnameData, train_idx: torch.Tensor, eval_idx: torch.Tensor, *,
                     optimizer_class: type = torch.optim.Adam, lr: float = 1e-3, batch_size: int = 64,
                     epochs: int = EPOCHS, seed: int = 0, progress: bool = True,
                     optimizer_kwargs: dict | None = None) -> dict[str, list[float]]:
    """Train with cross-entropy; history has per-iteration ``train_losses``, per-epoch accuracies (%) and
    ``seconds`` (wall clock at the end of each epoch).

    The training accuracy of an epoch is counted on the fly over its batches (in training mode, so with
    dropout), which costs nothing; the evaluation accuracy is computed after the epoch in eval mode.

    The progress bar counts batches; there are exactly ceil(len(train) / batch_size) per epoch.
    """
    from tqdm.auto import tqdm

    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    optimizer = optimizer_class(model.parameters(), lr=lr, **(optimizer_kwargs or {}))
    loss_fn = nn.CrossEntropyLoss()
    x_tr, last_tr, y_tr = data.subset(train_idx)
    x_ev, last_ev, y_ev = data.subset(eval_idx)
    history: dict[str, list[float]] = {"train_losses": [], "train_accuracies": [], "eval_accuracies": [],
                                       "seconds": []}
    started = time.perf_counter()
    per_epoch = math.ceil(len(train_idx) / batch_size)
    bar = tqdm(total=per_epoch * epochs, desc="training", disable=not progress, mininterval=0.5)
    for epoch in range(epochs):
        model.train()
        correct = 0
        for idx in bucketed_batches(last_tr, batch_size, generator):
            last = last_tr[idx]
            logits = model(x_tr[idx, : int(last.max()) + 1], last)
            loss = loss_fn(logits, y_tr[idx])
            correct += int((logits.argmax(1) == y_tr[idx]).sum())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            history["train_losses"].append(loss.item())
            bar.update(1)
        history["train_accuracies"].append(100.0 * correct / len(train_idx))
        history["eval_accuracies"].append(accuracy(model, x_ev, last_ev, y_ev))
        history["seconds"].append(time.perf_counter() - started)   # wall clock at the end of each epoch
        bar.set_postfix(epoch=epoch + 1, loss=f"{history['train_losses'][-1]:.3f}",
                        eval_acc=f"{history['eval_accuracies'][-1]:.1f}%")
    bar.close()
    return history


def accuracy_points(eval_accuracy: float, max_points: float) -> float:
    """Linear grading bar: 0 points at 70% or below, ``max_points`` at 80% or above."""
    frac = (eval_accuracy - PASS_ACCURACY) / (FULL_ACCURACY - PASS_ACCURACY)
    return float(max_points * min(1.0, max(0.0, frac)))


def predict(model: nn.Module, name: str, categories: Sequence[str], encode: Encoder,
            k: int = 3) -> list[tuple[str, float]]:
    """Top-``k`` languages for one name (encoded with ``encode``) with their softmax probabilities."""
    x, last = encode([name])
    probs = torch.softmax(predict_logits(model, x, last), dim=1)[0]
    top = probs.topk(min(k, len(categories)))
    return [(categories[i], float(p)) for p, i in zip(top.values, top.indices)]


# ---------------------------------------------------------------- plots
def plot_history(history: dict[str, list[float]], title: str = "") -> Any:
    """Training loss per iteration (with a moving average) and accuracy per epoch."""
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    losses = np.asarray(history["train_losses"])
    ax1.plot(losses, alpha=0.3, label="per iteration")
    if len(losses) >= 20:
        w = max(1, len(losses) // 50)
        ax1.plot(np.arange(w - 1, len(losses)), np.convolve(losses, np.ones(w) / w, mode="valid"),
                 label=f"moving average ({w})")
    ax1.set(xlabel="iteration", ylabel="cross-entropy", title="training loss")
    ax1.legend()
    epochs = np.arange(1, len(history["eval_accuracies"]) + 1)
    ax2.plot(epochs, history["train_accuracies"], "o-", label="train")
    ax2.plot(epochs, history["eval_accuracies"], "o-", label="evaluation")
    ax2.axhspan(PASS_ACCURACY, FULL_ACCURACY, color="grey", alpha=0.15, label="grading bar")
    ax2.set(xlabel="epoch", ylabel="accuracy (%)", title="accuracy")
    ax2.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def confusion_matrix(model: nn.Module, x: torch.Tensor, last_pos: torch.Tensor, y: torch.Tensor,
                     n_categories: int) -> np.ndarray:
    """Counts[true, predicted]."""
    pred = predict_logits(model, x, last_pos).argmax(1)
    counts = np.zeros((n_categories, n_categories), dtype=np.int64)
    np.add.at(counts, (y.numpy(), pred.numpy()), 1)
    return counts


def plot_confusion(counts: np.ndarray, categories: Sequence[str], title: str = "") -> Any:
    """Row-normalised confusion matrix: row i shows where the names of language i went (rows sum to 1)."""
    import matplotlib.pyplot as plt

    rows = counts.sum(axis=1, keepdims=True)
    norm = np.divide(counts, rows, out=np.zeros(counts.shape, dtype=float), where=rows > 0)
    fig, ax = plt.subplots(figsize=(7.5, 6.5))
    image = ax.imshow(norm, vmin=0, vmax=1, cmap="viridis")
    ax.set_xticks(range(len(categories)), categories, rotation=90)
    ax.set_yticks(range(len(categories)), categories)
    ax.set(xlabel="predicted language", ylabel="true language",
           title=title or "confusion matrix (each row sums to 1)")
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    return fig
