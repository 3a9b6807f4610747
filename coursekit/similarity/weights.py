"""Trained weights: read them from submissions, and find exact and near-duplicate sets.

Two sources per student: Problem 4's ``submission_log.json`` (``weights`` maps parameter names to
base64 float32 tensors, with ``hparams``, ``data.split_seed`` and ``versions`` beside them) and the
Problem 3k models that the autograded ``rnn_gradients.ipynb`` keeps in its training cells'
``metadata["coursekit"]["records"]``. Only models of one architecture (the same parameter names and
shapes) are compared. Identical vectors are found by hash; near duplicates by a sweep over the
vectors sorted by norm (|a - b| <= d * max(|a|, |b|) implies the norms differ by at most that much),
so most pairs are never looked at. Both formats are read with the helper package's own decoders
(``WeightFormats``), the one place that defines them.
"""
from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from coursekit.helpers import trusted_module
from coursekit.similarity.settings import SimilaritySettings

TRAINING_CELLS = ("test_training_rnn", "test_training_lstm")
TRAINING_NOTEBOOK = "rnn_gradients"
PROBLEM4_SLOT = "Problem 4 surname classifier"
_MODEL_KEYS = {"model", "num_layers", "last_timestep_only", "state_dict", "seed", "recipe"}


@dataclass
class TrainedModel:
    """One trained model of one owner, flattened in parameter-name order."""
    owner: str
    slot: str                                     # which model of the homework this is
    architecture: tuple[tuple[str, tuple[int, ...]], ...]
    vector: np.ndarray
    context: dict[str, str]                       # seed, hyperparameters, versions: "key" -> JSON value
    digest: str = field(init=False)

    def __post_init__(self) -> None:
        self.vector = np.ascontiguousarray(self.vector, dtype=np.float32)
        self.digest = hashlib.sha256(self.vector.tobytes()).hexdigest()


@dataclass(frozen=True)
class WeightFormats:
    """The decoders of published weights, taken from the instructor's helper package (their owner)."""
    tensor: Callable[[Any], np.ndarray]  # a submission log's base64 tensor (surname_log.decode_tensor)
    array: Callable[[Any], np.ndarray]   # a check record's plain array (records.array_from_plain)

    @classmethod
    def of(cls, helper_dir: Path) -> "WeightFormats":
        return cls(tensor=trusted_module(helper_dir, "surname_log").decode_tensor,
                   array=trusted_module(helper_dir, "records").array_from_plain)


_MALFORMED = (KeyError, TypeError, ValueError, AttributeError, base64.binascii.Error)


def _flatten(prefix: str, value: Any, out: dict[str, str]) -> None:
    if isinstance(value, dict):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, out)
    else:
        out[prefix] = json.dumps(value, sort_keys=True)


def _model(owner: str, slot: str, arrays: dict[str, np.ndarray], context: dict[str, Any]) -> TrainedModel:
    names = sorted(arrays)
    architecture = tuple((name, tuple(arrays[name].shape)) for name in names)
    vector = np.concatenate([arrays[name].ravel() for name in names]) if names else np.zeros(0, np.float32)
    if not np.all(np.isfinite(vector)):
        raise ValueError(f"{slot}: weights contain NaN or inf")
    flat: dict[str, str] = {}
    _flatten("", context, flat)
    return TrainedModel(owner, slot, architecture, vector, flat)


# --- Problem 4: submission_log.json -----------------------------------------------------------------
def read_submission_log(path: Path, owner: str, formats: WeightFormats) -> TrainedModel:
    """Problem 4's model from a submission log; ValueError names the problem in one line."""
    try:
        log = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{path.name}: not readable JSON ({err})") from None
    if not isinstance(log, dict) or not isinstance(log.get("weights"), dict):
        raise ValueError(f"{path.name}: has no weights")
    try:
        arrays = {str(name): formats.tensor(entry) for name, entry in log["weights"].items()}
    except _MALFORMED as err:
        raise ValueError(f"{path.name}: malformed weights ({err})") from None
    data = log.get("data") if isinstance(log.get("data"), dict) else {}
    context = {"hparams": log.get("hparams", {}), "split_seed": data.get("split_seed"),
               "versions": log.get("versions", {})}
    return _model(owner, PROBLEM4_SLOT, arrays, context)


# --- Problem 3k: check records of the training cells -------------------------------------------------
def training_slot(value: dict[str, Any]) -> str:
    task = "last step" if value["last_timestep_only"] else "every step"
    return f"3k {value['model']}, {int(value['num_layers'])} layer(s), {task}"


def models_from_records(records: Any, owner: str, formats: WeightFormats) -> list[TrainedModel]:
    """The trained models among a training cell's check records (other records are not models)."""
    if not isinstance(records, list):
        raise ValueError("check records are not a list")
    models, seen = [], set()
    for record in records:
        value = record.get("value") if isinstance(record, dict) else None
        if not (isinstance(value, dict) and _MODEL_KEYS <= set(value)):
            continue
        if training_slot(value) in seen:  # a cell publishes each model for several checks
            continue
        seen.add(training_slot(value))
        if value["model"] not in ("rnn", "lstm") or not isinstance(value["state_dict"], dict):
            raise ValueError(f"record {record.get('name')!r}: not a trained rnn/lstm model")
        arrays = {str(name): formats.array(array) for name, array in value["state_dict"].items()}
        context = {"seed": value["seed"], "recipe": value["recipe"]}
        models.append(_model(owner, training_slot(value), arrays, context))
    return models


def read_training_notebook(path: Path, owner: str, formats: WeightFormats) -> list[TrainedModel]:
    """Problem 3k's models from an autograded rnn_gradients.ipynb (cell metadata coursekit.records)."""
    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
        cells = nb["cells"]
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise ValueError(f"{path.name}: not a readable notebook ({err})") from None
    models = []
    for cell in cells:
        meta = cell.get("metadata", {}) if isinstance(cell, dict) else {}
        if meta.get("nbgrader", {}).get("grade_id") in TRAINING_CELLS:
            records = meta.get("coursekit", {}).get("records", [])
            try:
                models += models_from_records(records, owner, formats)
            except _MALFORMED as err:
                raise ValueError(f"{path.name}: {err}") from None
    return models


def read_reference_records(path: Path, owner: str, formats: WeightFormats) -> list[TrainedModel]:
    """The instructor's 3k models from the grader's reference cache ({"records": grade_id -> records})."""
    try:
        by_cell = json.loads(Path(path).read_text(encoding="utf-8"))["records"]
        return [m for gid in TRAINING_CELLS for m in models_from_records(by_cell.get(gid, []), owner, formats)]
    except (OSError, *_MALFORMED) as err:
        raise ValueError(f"{path.name}: not usable reference records ({err})") from None


# --- finding equal and nearly equal weights ---------------------------------------------------------
@dataclass
class WeightGroup:
    """Owners whose models of one slot are equal (exact) or within the near-duplicate distance."""
    slot: str
    owners: list[str]
    exact: bool
    max_distance: float                       # largest |a - b| / max(|a|, |b|) to the first member
    min_cosine: float
    shared: dict[str, str]                    # context every member has with the same value
    differing: list[str]                      # context keys whose values differ between members
    variants: list[tuple[str, list[str]]]     # "seed = 0, lr = 0.01" -> owners, one per training setting

    @property
    def training_differs(self) -> list[str]:
        """Seeds and hyperparameters (not library versions) that differ between members."""
        return [k for k in self.differing if not k.startswith("versions.")]

    def concern(self, reference: str) -> int:
        """0: trained differently yet equal (look first), 1: same seed and hyperparameters,
        2: the reference's weights from the reference's seed and hyperparameters (expected)."""
        if self.training_differs or not any(k.endswith("seed") for k in self.shared):
            return 0
        return 2 if reference in self.owners else 1

    def explanation(self, reference: str) -> str:
        has_seed = any(k.endswith("seed") for k in self.shared)
        if not self.training_differs and has_seed:
            if reference in self.owners:
                return ("equal to the instructor's reference, trained with the same seed and hyperparameters: "
                        "a correct implementation trained this way gives these weights; compare the code")
            return ("same seed and same hyperparameters: independent correct runs can give these weights; "
                    "compare the code")
        if not self.training_differs:
            return "no seed recorded: worth a look"
        settings = " | ".join(f"{setting}: {', '.join(owners)}" for setting, owners in self.variants)
        return ("trained with different seeds or hyperparameters, yet these weights: independent runs would "
                f"not give them; worth a look ({settings})")


class _Components:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def join(self, i: int, j: int) -> None:
        self.parent[self.find(i)] = self.find(j)


def _join_near(vectors: list[np.ndarray], tolerance: float, components: _Components, block: int = 256) -> None:
    """Join every two vectors whose relative distance is at most ``tolerance`` into one component.

    Vectors are sorted by norm, and each is only compared with the ones whose norm is within the
    tolerance; the comparisons run as blocked matrix products (candidates), then exact distances,
    skipped for pairs already joined through others.
    """
    if len(vectors) < 2:
        return
    matrix = np.stack(vectors)
    norms = np.sqrt(np.einsum("ij,ij->i", matrix, matrix, dtype=np.float64))  # no float64 copy of the matrix
    order = np.argsort(norms, kind="stable")
    matrix, norms = matrix[order], norms[order]
    reach = np.searchsorted(norms, norms / (1 - tolerance) if tolerance < 1 else np.inf, side="right")
    for start in range(0, len(norms), block):
        stop = min(len(norms), start + block)
        end = int(reach[start:stop].max())
        if end <= start + 1:
            continue
        dots = (matrix[start:stop] @ matrix[start:end].T).astype(np.float64)
        squared = norms[start:stop, None] ** 2 + norms[None, start:end] ** 2 - 2 * dots
        scale = np.maximum(norms[start:stop, None], norms[None, start:end])
        # float32 products are not exact: take candidates with slack, then measure exactly
        candidates = np.argwhere(squared <= (1.5 * tolerance * scale) ** 2 + 1e-6 * scale ** 2)
        for a, b in candidates:
            i, j = start + int(a), start + int(b)
            first, second = int(order[i]), int(order[j])
            if j <= i or j >= reach[i] or components.find(first) == components.find(second):
                continue
            difference = matrix[i].astype(np.float64) - matrix[j]
            if float(np.sqrt(difference @ difference)) <= tolerance * (max(norms[i], norms[j]) or 1.0):
                components.join(first, second)


def weight_groups(models: list[TrainedModel], settings: SimilaritySettings) -> list[WeightGroup]:
    """Groups of two or more owners with equal or nearly equal weights, per slot and architecture."""
    buckets: dict[tuple[str, tuple], list[TrainedModel]] = {}
    for model in models:
        buckets.setdefault((model.slot, model.architecture), []).append(model)
    groups = []
    for (slot, _), bucket in sorted(buckets.items(), key=lambda item: item[0][0]):
        by_digest: dict[str, list[TrainedModel]] = {}
        for model in bucket:
            by_digest.setdefault(model.digest, []).append(model)
        digests = sorted(by_digest)
        vectors = [by_digest[d][0].vector for d in digests]
        components = _Components(len(digests))
        _join_near(vectors, settings.near_distance, components)
        members: dict[int, list[int]] = {}
        for i in range(len(digests)):
            members.setdefault(components.find(i), []).append(i)
        for indices in members.values():
            group_models = [m for i in indices for m in by_digest[digests[i]]]
            if len({m.owner for m in group_models}) >= 2:
                groups.append(_describe(slot, group_models, len(indices) == 1))
    return sorted(groups, key=lambda g: (g.slot, -len(g.owners), g.owners))


def _describe(slot: str, models: list[TrainedModel], exact: bool) -> WeightGroup:
    models = sorted(models, key=lambda m: m.owner)
    anchor = models[0].vector.astype(np.float64)
    anchor_norm = float(np.linalg.norm(anchor))
    distance, cosine = {}, {}
    for m in models:  # once per distinct vector: most members of a big group are equal
        if m.digest not in distance:
            vector = m.vector.astype(np.float64)
            norm = float(np.linalg.norm(vector))
            distance[m.digest] = float(np.linalg.norm(vector - anchor)) / (max(norm, anchor_norm) or 1.0)
            cosine[m.digest] = float(vector @ anchor) / (norm * anchor_norm) if norm * anchor_norm else 1.0
    keys = sorted(set().union(*(m.context for m in models)))
    shared = {k: models[0].context[k] for k in keys
              if all(k in m.context for m in models) and len({m.context[k] for m in models}) == 1}
    differing = [k for k in keys if k not in shared]
    training = [k for k in differing if not k.startswith("versions.")]
    variants: dict[str, list[str]] = {}
    for m in models:
        setting = ", ".join(f"{k} = {m.context.get(k, 'missing')}" for k in training)
        variants.setdefault(setting, []).append(m.owner)
    return WeightGroup(slot, [m.owner for m in models], exact, max(distance.values()), min(cosine.values()),
                       shared, differing, list(variants.items()))
