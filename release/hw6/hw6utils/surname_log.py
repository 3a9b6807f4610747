"""Trained weights as plain data and back: the submission log and the notebook's published evidence
(Problem 4).

A finished training run leaves the notebook two ways. ``submission_log.json`` (:func:`build_submission_log`)
holds the weights as base64 float32 tensors with the history, hyperparameters, data checksum and versions;
``coursekit grade-log`` checks it. The graded accuracy cell publishes the weights as plain data
(:func:`model_evidence`). Either way the grader loads the weights into the architecture the homework
specifies, with instructor-only code that is not part of this package, and recomputes the evaluation
accuracy on the course split: no student code runs and no number the student's kernel computed enters
the grade. The course's constants (split, vocabulary) come from :mod:`hw6utils.surnames`.
"""
from __future__ import annotations

import base64
import hashlib
import inspect
import json
import platform
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .surnames import EVAL_FRACTION, PAD_INDEX, SPLIT_SEED, VOCAB_SIZE, SurnameData

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


def _shown(key: object, limit: int = 40) -> str:
    """A key as an error message may show it: ASCII letters, digits and ``._-`` only (others as ?), capped."""
    text = key if isinstance(key, str) else f"<{type(key).__name__}>"
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "?" for ch in text[:limit])
    return "'" + safe + ("..." if len(text) > limit else "") + "'"


def state_dict_from_log(log: dict[str, Any]) -> dict[str, np.ndarray]:
    """The logged weights as arrays (ValueError naming the first entry that cannot be decoded)."""
    state = {}
    for key, entry in log["weights"].items():
        try:
            state[key] = decode_tensor(entry)
        except (ValueError, TypeError, KeyError) as exc:
            raise ValueError(f"weights[{_shown(key)}] cannot be decoded: {str(exc)[:100]}") from None
    return state


# --- what the graded accuracy cell publishes ------------------------------------------------------
#
# The cell publishes the trained weights (``model_evidence``); the grader loads them into the
# architecture the homework specifies (instructor-only code) and recomputes the evaluation accuracy
# on the course split with the course's own copy of the data.

def model_evidence(model: nn.Module, history: dict[str, list[float]]) -> dict[str, Any]:
    """The trained weights and the evaluation accuracy the training loop reported."""
    return {"state_dict": {name: value.detach().clone() for name, value in model.state_dict().items()},
            "reported_accuracy": float(history["eval_accuracies"][-1])}
