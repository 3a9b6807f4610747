"""Trusted pipeline of Problem 4: encoding, splits, training loop, plots and the submission log.

The notebook asks students for the normalization, the model and the hyperparameters; everything that
decides the grade (the canonical encoding, the split, the epochs, the evaluation, the log format and the
specified architecture, rebuilt from trained weights by :func:`classifier_from_state_dict`) lives here so
that autograding restores this copy and ``coursekit grade-log`` can recompute it without running student code.
"""
from __future__ import annotations

import base64
import hashlib
import inspect
import json
import math
import platform
import string
import sys
import textwrap
import time
import unicodedata
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

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
FORMAT_VERSION = 2                              # version 1 was the earlier, self-reported log
PASS_ACCURACY, FULL_ACCURACY = 70.0, 80.0       # linear grading bar (percent)
_INDEX = {ch: i for i, ch in enumerate(ALL_LETTERS)}


# ---------------------------------------------------------------- encoding
def unicode_to_ascii(name: str) -> str:
    """NFD-decompose, drop combining marks (Mn) and keep only ALL_LETTERS ("Ślusàrski" -> "Slusarski")."""
    return "".join(ch for ch in unicodedata.normalize("NFD", name)
                   if unicodedata.category(ch) != "Mn" and ch in _INDEX)


def encode_names(names: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Normalize and encode names as (x (B,L) long padded with PAD_INDEX, last_pos (B,) long).

    ``L`` is the longest normalized name (at least 1); ``last_pos`` is the index of each name's last
    character (0 for a name that normalizes to nothing, whose only position is padding).
    """
    ascii_names = [unicode_to_ascii(n) for n in names]
    length = max([len(n) for n in ascii_names] + [1])
    x = torch.full((len(names), length), PAD_INDEX, dtype=torch.long)
    last = torch.zeros(len(names), dtype=torch.long)
    for row, name in enumerate(ascii_names):
        if name:
            x[row, :len(name)] = torch.tensor([_INDEX[c] for c in name], dtype=torch.long)
            last[row] = len(name) - 1
    return x, last


# ---------------------------------------------------------------- data set and splits
class SurnameData:
    """All names with integer labels; ``categories`` are the SORTED language names."""

    def __init__(self, names_by_language: dict[str, list[str]], checksum: str = ""):
        self.categories = sorted(names_by_language)
        self.names: list[str] = []
        self.labels: list[int] = []
        for label, language in enumerate(self.categories):
            for name in names_by_language[language]:
                self.names.append(name)
                self.labels.append(label)
        self.checksum = checksum
        self.x, self.last_pos = encode_names(self.names)
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


def grouped_split(names: Sequence[str], seed: int = SPLIT_SEED, eval_fraction: float = EVAL_FRACTION
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """A split where no normalized name string is on both sides (all its lines go to one side)."""
    keys = sorted({unicode_to_ascii(n) for n in names})
    perm = torch.randperm(len(keys), generator=torch.Generator().manual_seed(seed)).tolist()
    n_eval_keys = int(round(len(keys) * eval_fraction))
    eval_keys = {keys[i] for i in perm[len(keys) - n_eval_keys:]}
    is_eval = torch.tensor([unicode_to_ascii(n) in eval_keys for n in names])
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


def predict(model: nn.Module, name: str, categories: Sequence[str], k: int = 3) -> list[tuple[str, float]]:
    """Top-``k`` languages for one name with their softmax probabilities."""
    x, last = encode_names([name])
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


# ---------------------------------------------------------------- submission log
def encode_tensor(t: torch.Tensor) -> dict[str, Any]:
    """A tensor as {shape, dtype, data: base64 of little-endian float32 bytes}."""
    arr = t.detach().cpu().to(torch.float32).numpy().astype("<f4")
    return {"shape": list(arr.shape), "dtype": "float32", "data": base64.b64encode(arr.tobytes()).decode("ascii")}


def decode_tensor(entry: dict[str, Any]) -> np.ndarray:
    """Inverse of encode_tensor; raises ValueError when the byte count does not match the shape."""
    if entry.get("dtype") != "float32":
        raise ValueError(f"unsupported dtype {entry.get('dtype')!r}")
    raw = base64.b64decode(entry["data"], validate=True)
    shape = tuple(int(s) for s in entry["shape"])
    if len(raw) != 4 * int(np.prod(shape, dtype=np.int64)):
        raise ValueError(f"{len(raw)} bytes do not fit shape {list(shape)}")
    return np.frombuffer(raw, dtype="<f4").reshape(shape).copy()


def weights_sha256(weights: dict[str, dict[str, Any]]) -> str:
    """sha256 over the keys, shapes and base64 data, in state-dict order."""
    h = hashlib.sha256()
    for key, entry in weights.items():
        h.update(json.dumps([key, entry["shape"], entry["dtype"]]).encode())
        h.update(entry["data"].encode("ascii"))
    return h.hexdigest()


def method_source(cls: type, name: str) -> str:
    """Dedented source of ``cls.<name>`` (works for classes defined in notebook cells)."""
    return textwrap.dedent(inspect.getsource(getattr(cls, name)))


def build_submission_log(model: nn.Module, history: dict[str, list[float]], hparams: dict[str, Any],
                         last_name: str, data: SurnameData, split_seed: int = SPLIT_SEED) -> dict[str, Any]:
    """The verifiable log: the earlier keys plus weights, data checksum, split seed and versions."""
    state = model.state_dict()
    weights = {key: encode_tensor(value) for key, value in state.items()}
    import matplotlib
    import tqdm as tqdm_module
    return {
        "format_version": FORMAT_VERSION,
        "last_name": str(last_name),
        "history": {key: [float(v) for v in history[key]]
                    for key in ("train_losses", "train_accuracies", "eval_accuracies")},
        "hparams": dict(hparams),
        "model": [[key, list(value.shape)] for key, value in state.items()],
        "source_init": method_source(type(model), "__init__"),
        "source_forward": method_source(type(model), "forward"),
        "weights": weights,
        "weights_sha256": weights_sha256(weights),
        "data": {"sha256": data.checksum, "n_names": len(data), "categories": list(data.categories),
                 "split": "random", "split_seed": int(split_seed), "eval_fraction": EVAL_FRACTION,
                 "vocab_size": VOCAB_SIZE, "pad_index": PAD_INDEX},
        "versions": {"python": platform.python_version(), "torch": torch.__version__, "numpy": np.__version__,
                     "matplotlib": matplotlib.__version__, "tqdm": tqdm_module.__version__},
    }


def write_submission_log(path: str | Path, log: dict[str, Any]) -> Path:
    """Write the log as JSON (no NaN allowed) and return its path."""
    path = Path(path)
    path.write_text(json.dumps(log, allow_nan=False), encoding="utf-8")
    return path


def hparams_dict(hidden_size: int, num_layers: int, dropout: float, model_type: str, optimizer_class: type,
                 lr: float, batch_size: int, epochs: int, seed: int) -> dict[str, Any]:
    """The ``hparams`` section of the log (optimizer stored by class name)."""
    return {"hidden_size": int(hidden_size), "num_layers": int(num_layers), "dropout": float(dropout),
            "model_type": str(model_type), "optimizer_class": optimizer_class.__name__, "lr": float(lr),
            "batch_size": int(batch_size), "epochs": int(epochs), "seed": int(seed)}


# ---------------------------------------------------------------- the specified architecture, rebuilt from weights
MAX_HIDDEN_SIZE = 1024     # limits for weights the grader rebuilds (the reference uses 64 and 1 layer)
MAX_LAYERS = 4
MAX_CATEGORIES = 100
_GATES = {"rnn": 1, "lstm": 4}  # rows of weight_ih / weight_hh per hidden unit


class SpecClassifier(nn.Module):
    """The architecture Problem 4 specifies, written by the instructor (the grader never runs student code).

    embedding (``vocab_size`` x ``rnn_size``) -> ``nn.RNN`` (tanh) or ``nn.LSTM`` stack, batch_first, input and
    hidden size ``rnn_size`` -> the output at each name's last non-pad position -> dropout -> linear. Its
    state-dict keys are the ones the homework asks for.
    """

    def __init__(self, vocab_size: int, rnn_size: int, n_categories: int, num_layers: int = 1,
                 dropout: float = 0.0, model_type: str = "lstm"):
        super().__init__()
        if model_type not in _GATES:
            raise ValueError(f"model_type must be 'rnn' or 'lstm', got {model_type!r}")
        self.model_type, self.hidden_size, self.num_layers = model_type, rnn_size, num_layers
        self.embedding = nn.Embedding(vocab_size, rnn_size)
        rnn_class = nn.LSTM if model_type == "lstm" else nn.RNN
        self.rnn = rnn_class(rnn_size, rnn_size, num_layers=num_layers, batch_first=True,
                             dropout=dropout if num_layers > 1 else 0.0)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(rnn_size, n_categories)

    def forward(self, x: torch.Tensor, last_pos: torch.Tensor) -> torch.Tensor:
        outputs, _ = self.rnn(self.embedding(x))
        last = outputs[torch.arange(x.shape[0], device=x.device), last_pos]
        return self.output(self.dropout(last))


def spec_keys(num_layers: int) -> list[str]:
    """The state-dict keys the homework specifies, in registration order."""
    per_layer = [f"rnn.{kind}_l{layer}" for layer in range(num_layers)
                 for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    return ["embedding.weight", *per_layer, "output.weight", "output.bias"]


def _shown(key: object, limit: int = 40) -> str:
    """A key as an error message may show it: ASCII letters, digits and ``._-`` only (others as ?), capped."""
    text = key if isinstance(key, str) else f"<{type(key).__name__}>"
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "?" for ch in text[:limit])
    return "'" + safe + ("..." if len(text) > limit else "") + "'"


def _as_float_array(key: str, value: Any) -> np.ndarray:
    """A weight as a float32 array; ValueError for anything that is not a finite real array."""
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "fiu":
        raise ValueError(f"{_shown(key)} is not a real-valued array")
    if not np.isfinite(value).all():
        raise ValueError(f"{_shown(key)} contains NaN or inf")
    return value.astype(np.float32, copy=False)


def classifier_from_state_dict(state_dict: Mapping[str, np.ndarray | torch.Tensor], n_categories: int,
                               vocab_size: int = VOCAB_SIZE) -> nn.Module:
    """The specified ``RecurrentClassifier`` built by instructor code and loaded with ``state_dict`` (eval mode).

    Why: grading must score the architecture the homework asks for, whatever code the student ran; a
    model with anything extra (a lookup table of the public names, say) must not load. The model type
    (LSTM: 4H rows in ``weight_ih``/``weight_hh``), hidden size H and number of layers are read from the keys
    and shapes; the keys must be exactly :func:`spec_keys`, every shape must fit, every value be finite,
    with H <= MAX_HIDDEN_SIZE, layers <= MAX_LAYERS, 2..MAX_CATEGORIES categories and the embedding
    ``vocab_size`` x H. Raises ValueError with a short message naming the first mismatch (keys shown
    sanitised, so the message is safe to show). The result has ``model_type``, ``hidden_size``, ``num_layers``.
    Example messages: "unexpected parameter 'memo.table'", "missing parameter 'output.bias'",
    "rnn.weight_hh_l0 has shape [5, 5], expected [16, 16]", "'output.weight' contains NaN or inf".
    No file I/O; pure function of its arguments.
    """
    if not isinstance(state_dict, Mapping):
        raise ValueError(f"the weights must be a mapping of names to arrays, not {type(state_dict).__name__}")
    if not 2 <= n_categories <= MAX_CATEGORIES:
        raise ValueError(f"{n_categories} categories: expected 2 to {MAX_CATEGORIES}")
    layers = 0
    while layers <= MAX_LAYERS and f"rnn.weight_ih_l{layers}" in state_dict:
        layers += 1
    if layers > MAX_LAYERS:
        raise ValueError(f"more than {MAX_LAYERS} recurrent layers")
    expected = spec_keys(max(layers, 1))
    for key in state_dict:
        if key not in expected:
            raise ValueError(f"unexpected parameter {_shown(key)}")
    for key in expected:
        if key not in state_dict:
            raise ValueError(f"missing parameter {_shown(key)}")
    arrays = {key: _as_float_array(key, state_dict[key]) for key in expected}
    ih = arrays["rnn.weight_ih_l0"].shape   # [H, H] for nn.RNN, [4H, H] for nn.LSTM (input size = H)
    hidden = ih[1] if len(ih) == 2 else 0
    model_type = next((kind for kind, gates in _GATES.items() if hidden and ih[0] == gates * hidden), None)
    if model_type is None:
        raise ValueError(f"rnn.weight_ih_l0 has shape {list(ih)}: expected [H, H] (nn.RNN) or [4H, H] (nn.LSTM)")
    if hidden > MAX_HIDDEN_SIZE:
        raise ValueError(f"hidden size {hidden} is over the limit of {MAX_HIDDEN_SIZE}")
    rows = _GATES[model_type] * hidden
    shapes = {"embedding.weight": [vocab_size, hidden], "output.weight": [n_categories, hidden],
              "output.bias": [n_categories]}
    for layer in range(layers):
        shapes.update({f"rnn.weight_ih_l{layer}": [rows, hidden], f"rnn.weight_hh_l{layer}": [rows, hidden],
                       f"rnn.bias_ih_l{layer}": [rows], f"rnn.bias_hh_l{layer}": [rows]})
    for key in expected:
        if list(arrays[key].shape) != shapes[key]:
            raise ValueError(f"{key} has shape {list(arrays[key].shape)}, expected {shapes[key]}")
    model = SpecClassifier(vocab_size, hidden, n_categories, num_layers=layers, model_type=model_type)
    model.load_state_dict({key: torch.from_numpy(np.array(arrays[key])) for key in expected}, strict=True)
    return model.eval()


def evaluation_accuracy(model: nn.Module, data: SurnameData) -> float:
    """Accuracy (%) of ``model`` on the course's evaluation split of ``data`` (seeded random 80/20)."""
    _, eval_idx = random_split(len(data), seed=SPLIT_SEED, eval_fraction=EVAL_FRACTION)
    return accuracy(model, *data.subset(eval_idx))


def state_dict_from_log(log: dict[str, Any]) -> dict[str, np.ndarray]:
    """The logged weights as arrays (ValueError naming the first entry that cannot be decoded)."""
    state = {}
    for key, entry in log["weights"].items():
        try:
            state[key] = decode_tensor(entry)
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"weights[{_shown(key)}] cannot be decoded: {str(exc)[:100]}") from None
    return state


def rebuild_model(log: dict[str, Any], n_categories: int | None = None, vocab_size: int = VOCAB_SIZE) -> nn.Module:
    """The specified architecture loaded with the log's weights (eval mode), as the grader rebuilds it.

    The log's ``source_init``/``source_forward`` are kept for people to read and are never executed: if your
    own model follows the specification, this model gives the same logits. Raises ValueError otherwise.
    """
    n_categories = n_categories if n_categories is not None else len(log["data"]["categories"])
    return classifier_from_state_dict(state_dict_from_log(log), n_categories, vocab_size)


# --- what the graded accuracy cell publishes, and how the grader judges it -----------------------
#
# The cell publishes the trained weights (``model_evidence``); the grader loads them into the
# architecture the homework specifies (``classifier_from_state_dict``) and recomputes the evaluation
# accuracy on the course split with the course's own copy of the data. No number the student's
# kernel computed enters the grade.

_DATA_CACHE: dict[str, SurnameData] = {}


def model_evidence(model: nn.Module, history: dict[str, list[float]]) -> dict[str, Any]:
    """The trained weights and the evaluation accuracy the training loop reported."""
    return {"state_dict": {name: value.detach().clone() for name, value in model.state_dict().items()},
            "reported_accuracy": float(history["eval_accuracies"][-1])}


def course_data() -> SurnameData:
    """The verified surname data (HW6_DATA_DIR, or data/names near the working folder), loaded once."""
    from .surname_data import load_names, resolve_data_dir

    key = str(resolve_data_dir())
    if key not in _DATA_CACHE:
        names, checksum = load_names(fetch=False, progress=False)
        _DATA_CACHE[key] = SurnameData(names, checksum)
    return _DATA_CACHE[key]


def graded_accuracy(evidence: dict[str, Any], reference: dict[str, Any] | None = None) -> float:
    """Evaluation accuracy (%) of published weights in the specified architecture, on the course split."""
    from .records import array_from_plain

    data = course_data()
    state = {name: array_from_plain(value) for name, value in evidence["state_dict"].items()}
    model = classifier_from_state_dict(state, n_categories=len(data.categories))
    return evaluation_accuracy(model, data)


def accuracy_gap(evidence: dict[str, Any], reference: dict[str, Any] | None = None) -> float:
    """Recomputed minus self-reported evaluation accuracy (0 for an honest training run)."""
    return graded_accuracy(evidence) - float(evidence["reported_accuracy"])
