"""Trained weights as plain data and back: the submission log, the notebook's published evidence, and
the specified model the grader rebuilds from them (Problem 4).

A finished training run leaves the notebook two ways. ``submission_log.json`` (:func:`build_submission_log`)
holds the weights as base64 float32 tensors with the history, hyperparameters, data checksum and versions;
``coursekit grade-log`` checks it. The graded accuracy cell publishes the weights as plain data
(:func:`model_evidence`), judged by :func:`graded_accuracy` and :func:`accuracy_gap`. Either way the grader
loads the weights into the architecture the homework specifies, written here by the instructor
(:func:`classifier_from_state_dict`), and recomputes the evaluation accuracy on the course split: no
student code runs and no number the student's kernel computed enters the grade. The course's constants
(split, vocabulary) come from :mod:`hw6utils.surnames`, where they are defined once.
"""
from __future__ import annotations

import base64
import hashlib
import inspect
import json
import platform
import textwrap
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch
from torch import nn

from .surnames import EVAL_FRACTION, PAD_INDEX, SPLIT_SEED, VOCAB_SIZE, SurnameData, accuracy, random_split

FORMAT_VERSION = 2                              # version 1 was the earlier, self-reported log


# ---------------------------------------------------------------- submission log
def encode_tensor(t: torch.Tensor) -> dict[str, Any]:
    """A tensor as {shape, dtype, data: base64 of little-endian float32 bytes}."""
    arr = t.detach().cpu().to(torch.float32).numpy().astype("<f4")
    return {"shape": list(arr.shape), "dtype": "float32", "data": base64.b64encode(arr.tobytes()).decode("ascii")}


def decode_tensor(entry: dict[str, Any]) -> np.ndarray:
    """Inverse of encode_tensor; raises ValueError when the byte count does not match the shape."""
    if not isinstance(entry, dict):
        raise ValueError("a weight is not a tensor entry")
    if entry.get("dtype") != "float32":
        raise ValueError(f"a weight is not a float32 tensor entry (dtype {entry.get('dtype')!r})")
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
