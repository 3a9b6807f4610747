"""Grade a student's Problem 4 ``submission_log.json`` by recomputing it.

The log is untrusted data; no code from it ever runs. Steps: refuse files over the size limit before
reading them; parse JSON strictly (no NaN); validate against ``submission_log.schema.json``; check it
against the course's facts (data checksum, split seed, epochs, number of iterations, weights vs. the
``model`` list and their sha256); then load the weights into the architecture the homework specifies,
built by the instructor-only ``hw6grading.surnames.classifier_from_state_dict`` (exactly the specified keys and
shapes: a model with anything extra does not load), recompute its accuracy on the course's evaluation
split and compare it with the self-reported one. ``source_init``/``source_forward`` are for people to read.

Prints one JSON object: ``score``, ``max_score``, ``accuracy`` (recomputed, or null), ``reported_accuracy``,
``reasons`` (why points were lost; empty for a clean log), ``path``. Reasons are short and sanitised: they
never quote the log's own strings. Exit 0 whenever it could grade (any score), 2 when the grader itself
could not run (no data, no helper, ...).
"""
from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from types import ModuleType
from typing import Any

from coursekit.course import Course
from coursekit.helpers import trusted_grading_module, trusted_module

SCHEMA_PATH = Path(__file__).with_name("submission_log.schema.json")
NOTEBOOK = "surname_classification.ipynb"
ACCURACY_GRADE_ID = "test_accuracy"
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
ACCURACY_TOLERANCE = 0.1  # percentage points between reported and recomputed accuracy
MAX_REASON_CHARS = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]+")


class GraderError(RuntimeError):
    """The grader itself cannot work (not the student's fault)."""


class Rejected(Exception):
    """The log gets 0 points for the given reason."""


def sanitise(text: str, limit: int = MAX_REASON_CHARS) -> str:
    """One printable line of at most ``limit`` characters (control and bidi characters become spaces)."""
    line = " ".join(_CONTROL.sub(" ", text).split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def helper_dir(course: Path) -> Path:
    """``source/<assignment>/<helper package>`` of the course (names from pyproject's [tool.coursekit])."""
    settings = Course(root=course).settings
    return course / "source" / settings["assignment"] / settings["helper_package"]


def load_helper(name: str, course: Path) -> ModuleType:
    """The trusted instructor copy of ``<helper package>/<name>.py`` (see coursekit.helpers)."""
    try:
        return trusted_module(helper_dir(course), name)
    except (FileNotFoundError, ModuleNotFoundError):
        raise GraderError(f"helper module {helper_dir(course) / (name + '.py')} not found "
                          "(is --course-dir right?)") from None


def grading_dir(course: Path) -> Path:
    """``source/<assignment>/<grading package>``: the instructor-only judges and reference code."""
    settings = Course(root=course).settings
    return course / "source" / settings["assignment"] / settings["grading_package"]


def load_grading(name: str, course: Path) -> ModuleType:
    """The trusted instructor-only ``<grading package>/<name>.py`` (see coursekit.helpers)."""
    try:
        return trusted_grading_module(grading_dir(course), helper_dir(course), name)
    except (FileNotFoundError, ModuleNotFoundError):
        raise GraderError(f"grading module {grading_dir(course) / (name + '.py')} not found "
                          "(is --course-dir right?)") from None


def default_max_score(course: Path) -> float:
    """Points of the notebook's accuracy test cell (points live only in the notebook metadata)."""
    try:
        nb = json.loads((helper_dir(course).parent / NOTEBOOK).read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("grade_id") == ACCURACY_GRADE_ID:
                return float(meta["points"])
    except (OSError, ValueError, KeyError):
        pass
    return 5.0


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def _safe_part(part: object, limit: int = 40) -> str:
    """A key from the log as a reason may show it: ASCII letters, digits and ``._-`` (others as ?), capped."""
    text = str(part)
    safe = "".join(ch if ch.isascii() and (ch.isalnum() or ch in "._-") else "?" for ch in text[:limit])
    return safe + ("..." if len(text) > limit else "")


def _schema_problem(error: Any) -> str:
    """One schema error without the offending value (the value is the student's text)."""
    where = "/".join(_safe_part(part) for part in error.absolute_path) or "(top level)"
    if error.validator == "required":  # the missing names come from the schema
        return f"{where}: {error.message}"
    rule = error.validator_value if isinstance(error.validator_value, (int, float, str)) else None
    shown = f" {rule}" if rule is not None and not isinstance(rule, bool) else ""
    return f"{where}: fails the schema's {error.validator}{shown}"


def read_log(path: Path, max_bytes: int) -> dict[str, Any]:
    """Size check, strict JSON parsing and schema validation; raises Rejected with the reason."""
    if not path.is_file():
        raise GraderError(f"{path} is not a file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise GraderError(f"cannot read {path}: {exc.strerror}") from None
    if size > max_bytes:
        raise Rejected(f"{path.name} is {size} bytes, over the limit of {max_bytes} bytes (not parsed)")
    with open(path, "rb") as handle:
        raw = handle.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise Rejected(f"{path.name} is over the limit of {max_bytes} bytes (not parsed)")
    try:
        log = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except UnicodeDecodeError:
        raise Rejected(f"{path.name} is not valid JSON: not UTF-8") from None
    except (ValueError, RecursionError) as exc:  # json's messages name a position, not the content
        raise Rejected(f"{path.name} is not valid JSON: {str(exc)[:120]}") from None
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(log), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        shown = "; ".join(_schema_problem(e) for e in errors[:3])
        more = f" (and {len(errors) - 3} more)" if len(errors) > 3 else ""
        raise Rejected(f"{path.name} does not follow the submission log schema: {shown}{more}")
    return log


def check_claims(log: dict[str, Any], surnames: Any, surname_log: Any, data_mod: Any, categories: list[str],
                 n_train: int) -> None:
    """Everything that can be checked before loading the weights; raises Rejected."""
    d = log["data"]
    if d["sha256"] != data_mod.EXPECTED_COMBINED_SHA256:
        raise Rejected(f"trained on other data: data sha256 {d['sha256']}, expected "
                       f"{data_mod.EXPECTED_COMBINED_SHA256}")
    if d["categories"] != categories:
        raise Rejected(f"data.categories are not the {len(categories)} sorted course languages")
    if d["split_seed"] != surnames.SPLIT_SEED or d["eval_fraction"] != surnames.EVAL_FRACTION:
        raise Rejected(f"not the course split: split_seed {d['split_seed']}, eval_fraction {d['eval_fraction']} "
                       f"(expected {surnames.SPLIT_SEED}, {surnames.EVAL_FRACTION})")
    if d["vocab_size"] != surnames.VOCAB_SIZE or d["pad_index"] != surnames.PAD_INDEX:
        raise Rejected("vocabulary differs from the course encoding (58 entries, pad index 57)")
    hp, history = log["hparams"], log["history"]
    if hp["epochs"] != surnames.EPOCHS:
        raise Rejected(f"trained for {hp['epochs']} epochs; the course fixes {surnames.EPOCHS}")
    for key in ("train_accuracies", "eval_accuracies"):
        if len(history[key]) != hp["epochs"]:
            raise Rejected(f"history.{key} has {len(history[key])} entries for {hp['epochs']} epochs")
    iterations = hp["epochs"] * math.ceil(n_train / hp["batch_size"])
    if len(history["train_losses"]) != iterations:
        raise Rejected(f"history.train_losses has {len(history['train_losses'])} entries; {hp['epochs']} epochs "
                       f"at batch size {hp['batch_size']} make {iterations} iterations")
    listed = [(name, list(shape)) for name, shape in log["model"]]
    stored = [(name, list(entry["shape"])) for name, entry in log["weights"].items()]
    if listed != stored:
        where = next((i for i, (a, b) in enumerate(zip(listed, stored)) if a != b), min(len(listed), len(stored)))
        raise Rejected(f"the `model` list ({len(listed)} entries) does not match the stored weights "
                       f"({len(stored)} entries) from entry {where}")
    if surname_log.weights_sha256(log["weights"]) != log["weights_sha256"]:
        raise Rejected("weights_sha256 does not match the stored weights (the weights were edited)")


def load_spec_model(log: dict[str, Any], grading: Any, n_categories: int) -> Any:
    """The specified architecture with the logged weights; Rejected when they do not fit it or the hparams."""
    try:
        model = grading.rebuild_model(log, n_categories)
    except ValueError as exc:
        raise Rejected(f"the weights do not fit the specified RecurrentClassifier: {exc}") from None
    hp = log["hparams"]
    claimed = (hp["model_type"], hp["hidden_size"], hp["num_layers"])
    found = (model.model_type, model.hidden_size, model.num_layers)
    if claimed != found:
        raise Rejected("hparams say {} with hidden size {} and {} layer(s); the weights are {} with hidden size {} "
                       "and {} layer(s)".format(*claimed, *found))
    return model


def load_course_data(course: Path, data_dir: str | None) -> tuple[Any, Any, Any]:
    """(surnames helper, surname_data helper, SurnameData) of the course; GraderError when missing."""
    data_mod = load_helper("surname_data", course)
    surnames = load_helper("surnames", course)
    target = Path(data_dir or os.environ.get("HW6_DATA_DIR") or course / "data" / "names")
    if not any((target / name).is_file() for name in data_mod.EXPECTED_SHA256):
        raise GraderError(f"the surname data is missing in {target}; run `coursekit fetch-data`")
    try:
        names, checksum = data_mod.load_names(target, fetch=False, progress=False)
    except data_mod.SurnameDataError as exc:
        raise GraderError(str(exc)) from None
    return surnames, data_mod, load_grading("surnames", course).course_data(names, checksum)


def grade(path: Path, *, course: Path, data_dir: str | None = None, max_score: float | None = None,
          max_bytes: int = DEFAULT_MAX_BYTES) -> dict[str, Any]:
    """Grade one log; returns the result dict. Raises GraderError for the grader's own failures."""
    max_score = default_max_score(course) if max_score is None else max_score
    result: dict[str, Any] = {"path": str(path), "score": 0.0, "max_score": max_score, "accuracy": None,
                              "reported_accuracy": None, "reasons": []}
    try:
        log = read_log(path, max_bytes)  # JSON and its schema first: a log refused here needs no torch, no data
    except Rejected as exc:
        result["reasons"].append(sanitise(str(exc)))
        return result
    surnames, data_mod, data = load_course_data(course, data_dir)
    surname_log = load_helper("surname_log", course)
    train_idx, _ = surnames.random_split(len(data), seed=surnames.SPLIT_SEED)
    try:
        result["reported_accuracy"] = float(log["history"]["eval_accuracies"][-1])
        check_claims(log, surnames, surname_log, data_mod, data.categories, len(train_idx))
        grading = load_grading("surnames", course)
        model = load_spec_model(log, grading, len(data.categories))
        accuracy = grading.evaluation_accuracy(model, data)
        result["accuracy"] = round(accuracy, 4)
        if abs(accuracy - result["reported_accuracy"]) > ACCURACY_TOLERANCE:
            raise Rejected(f"self-reported evaluation accuracy {result['reported_accuracy']:.2f}% does not match "
                           f"{accuracy:.2f}% recomputed from the logged weights with the specified architecture")
        result["score"] = round(surnames.accuracy_points(accuracy, max_score), 4)
        if accuracy < surnames.FULL_ACCURACY:
            result["reasons"].append(f"accuracy {accuracy:.2f}%: full points need {surnames.FULL_ACCURACY:.0f}%, "
                                     f"points start above {surnames.PASS_ACCURACY:.0f}%")
    except Rejected as exc:
        result["score"] = 0.0
        result["reasons"].append(sanitise(str(exc)))
    return result
