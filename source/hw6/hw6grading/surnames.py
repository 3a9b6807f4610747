"""Problem 4's reference code and judges: the encoding, the specified classifier, and what the grader
computes from published weights.

``unicode_to_ascii`` and ``encode_names`` are the answers to 4.1 and 4.2 (``unicodeToAscii``,
``namesToBatch``); ``SpecClassifier`` is the ``RecurrentClassifier`` of 4.4. The judges load a student's
published weights into ``SpecClassifier`` (:func:`classifier_from_state_dict`) and recompute what is
graded: the evaluation accuracy on the course split (:func:`graded_accuracy`), and the model's structure
and dropout (:func:`model_structure`). No student code runs and no number the student's kernel computed
enters a verdict, except outputs that the judge checks against its own recomputation.
"""
from __future__ import annotations

import unicodedata
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from torch import nn

from . import helper

_kit = helper("surnames")
_log = helper("surname_log")
ALL_LETTERS, PAD_INDEX, VOCAB_SIZE = _kit.ALL_LETTERS, _kit.PAD_INDEX, _kit.VOCAB_SIZE
SPLIT_SEED, EVAL_FRACTION = _kit.SPLIT_SEED, _kit.EVAL_FRACTION
_INDEX = {ch: i for i, ch in enumerate(ALL_LETTERS)}
_shown = _log._shown


# ---------------------------------------------------------------- 4.1 and 4.2: the encoding
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
    lengths = torch.tensor([len(n) for n in ascii_names], dtype=torch.long)
    width = max(int(lengths.max()) if len(names) else 0, 1)
    x = torch.full((len(names), width), PAD_INDEX, dtype=torch.long)
    # one assignment for all letters: the mask walks row by row, as the flat list does (6x faster than a
    # tensor per name on the 20,074 course names, which the grader encodes once per process)
    x[torch.arange(width) < lengths[:, None]] = torch.tensor([_INDEX[c] for n in ascii_names for c in n],
                                                             dtype=torch.long)
    return x, (lengths - 1).clamp(min=0)


# ---------------------------------------------------------------- 4.4: the specified architecture
MAX_HIDDEN_SIZE = 1024     # limits for weights the grader rebuilds (the reference uses 40 and 1 layer)
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


def evaluation_accuracy(model: nn.Module, data: Any) -> float:
    """Accuracy (%) of ``model`` on the course's evaluation split of ``data`` (seeded random 80/20)."""
    _, eval_idx = _kit.random_split(len(data), seed=SPLIT_SEED, eval_fraction=EVAL_FRACTION)
    return _kit.accuracy(model, *data.subset(eval_idx))


def rebuild_model(log: dict[str, Any], n_categories: int | None = None, vocab_size: int = VOCAB_SIZE) -> nn.Module:
    """The specified architecture loaded with a submission log's weights (eval mode); ValueError otherwise."""
    n_categories = n_categories if n_categories is not None else len(log["data"]["categories"])
    return classifier_from_state_dict(_log.state_dict_from_log(log), n_categories, vocab_size)


def course_data(names_by_language: dict[str, list[str]] | None = None, checksum: str = "") -> Any:
    """The surname data set encoded with the reference encoding: the given names, or the verified course
    data (HW6_DATA_DIR, or data/names near the working folder), loaded once."""
    if names_by_language is not None:
        return _kit.SurnameData(names_by_language, checksum, encode_names)
    data_mod = helper("surname_data")
    key = str(data_mod.resolve_data_dir())
    if key not in _DATA_CACHE:
        names, checksum = data_mod.load_names(fetch=False, progress=False)
        _DATA_CACHE[key] = _kit.SurnameData(names, checksum, encode_names)
    return _DATA_CACHE[key]


_DATA_CACHE: dict[str, Any] = {}


# ---------------------------------------------------------------- judges of published weights
def _state(evidence: dict[str, Any]) -> dict[str, np.ndarray]:
    array_from_plain = helper("records").array_from_plain
    if not isinstance(evidence, dict) or not isinstance(evidence.get("state_dict"), dict):
        raise ValueError("expected the published weights of a RecurrentClassifier")
    return {name: array_from_plain(value) for name, value in evidence["state_dict"].items()}


def graded_accuracy(evidence: dict[str, Any], reference: dict[str, Any] | None = None) -> float:
    """Evaluation accuracy (%) of published weights in the specified architecture, on the course split."""
    data = course_data()
    model = classifier_from_state_dict(_state(evidence), n_categories=len(data.categories))
    return evaluation_accuracy(model, data)


def accuracy_gap(evidence: dict[str, Any], reference: dict[str, Any] | None = None) -> float:
    """Recomputed minus self-reported evaluation accuracy (0 for an honest training run)."""
    return graded_accuracy(evidence) - float(evidence["reported_accuracy"])


DROPOUT_TOLERANCE = 1e-4


def model_structure(evidence: dict[str, Any], reference: dict[str, Any] | None = None) -> dict[str, Any]:
    """What the grader recomputes about a model the test cell built with dropout ``p`` and published.

    ``evidence`` holds the model's weights, ``p``, the names fed to it and its outputs in training mode
    (``train_outputs``: a list of runs) and eval mode. The weights are loaded into the specified
    architecture: that decides the keys, shapes and model type. The grader computes the pre-dropout
    vector ``v`` (the recurrent output at each name's last letter) itself; a training-mode output counts
    as dropout only if it equals ``output.weight @ (m * v / (1 - p)) + output.bias`` for some 0/1 mask
    ``m`` that drops something, and the eval output must equal the output without dropout. Random or
    copied arrays, and a model without dropout, fail.
    """
    p = float(evidence["p"])
    if not 0.0 < p < 1.0:
        raise ValueError("the published dropout probability must lie between 0 and 1")
    names = [str(n) for n in evidence["names"]]
    n_categories = int(evidence["n_categories"])
    model = classifier_from_state_dict(_state(evidence), n_categories=n_categories)
    x, last_pos = encode_names(names)
    with torch.no_grad():
        outputs, _ = model.rnn(model.embedding(x))
        v = outputs[torch.arange(len(names)), last_pos].double()          # (B, H), before dropout
    weight, bias = model.output.weight.detach().double(), model.output.bias.detach().double()
    array_from_plain = helper("records").array_from_plain
    eval_out = torch.from_numpy(array_from_plain(evidence["eval_outputs"]))
    expected_eval = v @ weight.T + bias
    runs = [torch.from_numpy(array_from_plain(run)) for run in evidence["train_outputs"]]
    return {"model type": model.model_type, "layers": model.num_layers, "hidden size": model.hidden_size,
            "logits shape": list(eval_out.shape),
            "eval output is the model's": bool(eval_out.shape == expected_eval.shape and
                                               _close(eval_out, expected_eval, DROPOUT_TOLERANCE)),
            "training outputs apply dropout": len(runs) >= 2 and all(_is_dropout(run, v, weight, bias, p)
                                                                     for run in runs)
                                              and bool((runs[0] != runs[1]).any())}


def _close(a: torch.Tensor, b: torch.Tensor, tol: float) -> bool:
    """Elementwise |a - b| <= tol, by plain arithmetic (no library comparison a test may have patched)."""
    return bool(((a - b).abs() <= tol).all())


def _is_dropout(out: torch.Tensor, v: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, p: float) -> bool:
    """Whether ``out`` = ``weight @ (m * v / (1 - p)) + bias`` for a 0/1 mask ``m`` with some zeros.

    The hidden size is below the number of categories in the test, so the least-squares solution for
    ``m * v / (1 - p)`` is unique; each entry must be 0 or the scaled ``v``.
    """
    if out.shape != (v.shape[0], weight.shape[0]):
        return False
    solved = torch.linalg.lstsq(weight, (out - bias).T).solution.T       # (B, H)
    if not _close(solved @ weight.T + bias, out, DROPOUT_TOLERANCE):
        return False
    kept = v / (1.0 - p)
    is_zero = solved.abs() < DROPOUT_TOLERANCE
    is_kept = (solved - kept).abs() < DROPOUT_TOLERANCE * (1 + kept.abs())
    return bool((is_zero | is_kept).all() and (is_zero & ~is_kept).any())
