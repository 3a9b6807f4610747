"""`coursekit grade-log PATH`: grade a student's Problem 4 ``submission_log.json`` by recomputing it.

The log is untrusted. Steps: refuse files over the size limit before reading them; parse JSON strictly
(no NaN); validate against ``submission_log.schema.json``; check it against the course's facts (data
checksum, split seed, epochs, number of iterations, weights vs. the ``model`` list and their sha256);
then rebuild the model from the logged source and weights IN THE SANDBOX (``coursekit.sandbox``: user
nobody, no network, resource limits, wall-clock timeout), let it predict the canonical evaluation names
(encoded here, labels kept here), recompute the accuracy and compare it with the self-reported one.

Prints one JSON object: ``score``, ``max_score``, ``accuracy`` (recomputed, or null), ``reported_accuracy``,
``reasons`` (why points were lost; empty for a clean log). Exit 0 whenever it could grade (any score),
2 when the grader itself could not run (no data, no sandbox, ...).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import secrets
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

from coursekit import sandbox
from coursekit.data import find_course_dir, load_helper

SCHEMA_PATH = Path(__file__).with_name("submission_log.schema.json")
NOTEBOOK = Path("source") / "hw6" / "surname_classification.ipynb"
ACCURACY_GRADE_ID = "test_accuracy"
DEFAULT_MAX_BYTES = 16 * 1024 * 1024
SANDBOX_UIDS = (1_600_000, 1_700_000)  # numeric uids without a passwd entry, one per grading run
ACCURACY_TOLERANCE = 0.1  # percentage points between reported and recomputed accuracy


class GraderError(RuntimeError):
    """The grader itself cannot work (not the student's fault)."""


class Rejected(Exception):
    """The log gets 0 points for the given reason."""


def default_max_score(course: Path) -> float:
    """Points of the notebook's accuracy test cell (points live only in the notebook metadata)."""
    try:
        nb = json.loads((course / NOTEBOOK).read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            meta = cell.get("metadata", {}).get("nbgrader", {})
            if meta.get("grade_id") == ACCURACY_GRADE_ID:
                return float(meta["points"])
    except (OSError, ValueError, KeyError):
        pass
    return 5.0


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not valid JSON")


def read_log(path: Path, max_bytes: int) -> dict[str, Any]:
    """Size check, strict JSON parsing and schema validation; raises Rejected with the reason."""
    if not path.is_file():
        raise GraderError(f"{path} is not a file")
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise GraderError(f"cannot read {path}: {exc.strerror}") from None
    if size > max_bytes:
        raise Rejected(f"{path} is {size} bytes, over the limit of {max_bytes} bytes (not parsed)")
    with open(path, "rb") as handle:
        raw = handle.read(max_bytes + 1)
    if len(raw) > max_bytes:
        raise Rejected(f"{path} is over the limit of {max_bytes} bytes (not parsed)")
    try:
        log = json.loads(raw.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise Rejected(f"{path} is not valid JSON: {str(exc)[:300]}") from None
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(log), key=lambda e: list(e.absolute_path))
    if errors:
        shown = "; ".join(f"{'/'.join(map(str, e.absolute_path)) or '(top level)'}: {e.message[:200]}"
                          for e in errors[:5])
        more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
        raise Rejected(f"{path} does not follow the submission log schema: {shown}{more}")
    return log


def check_claims(log: dict[str, Any], surnames: Any, data_mod: Any, n_train: int) -> None:
    """Everything that can be checked without running student code; raises Rejected."""
    d = log["data"]
    if d["sha256"] != data_mod.EXPECTED_COMBINED_SHA256:
        raise Rejected(f"trained on other data: data sha256 {d['sha256']}, expected "
                       f"{data_mod.EXPECTED_COMBINED_SHA256}")
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
        raise Rejected(f"the `model` list {listed[:3]}... does not match the stored weights {stored[:3]}...")
    if surnames.weights_sha256(log["weights"]) != log["weights_sha256"]:
        raise Rejected("weights_sha256 does not match the stored weights (the weights were edited)")
    total = 0
    for name, entry in log["weights"].items():
        try:
            arr = surnames.decode_tensor(entry)
        except (ValueError, TypeError) as exc:
            raise Rejected(f"weights[{name!r}] cannot be decoded: {exc}") from None
        total += arr.size
        if not (abs(arr) < float("inf")).all():
            raise Rejected(f"weights[{name!r}] contains NaN or inf")
    if total == 0:
        raise Rejected("the stored weights are empty")


def grade(path: Path, *, course: Path, data_dir: str | None = None, max_score: float | None = None,
          max_bytes: int = DEFAULT_MAX_BYTES, limits: sandbox.Limits | None = None) -> dict[str, Any]:
    """Grade one log; returns the result dict. Raises GraderError for the grader's own failures."""
    import numpy as np

    max_score = default_max_score(course) if max_score is None else max_score
    result: dict[str, Any] = {"path": str(path), "score": 0.0, "max_score": max_score, "accuracy": None,
                              "reported_accuracy": None, "reasons": []}
    try:
        sandbox.check_available()
    except sandbox.SandboxUnavailable as exc:
        raise GraderError(f"cannot sandbox the student code: {exc}") from None
    try:
        data_mod = load_helper("surname_data", course)
        surnames = load_helper("surnames", course)
    except FileNotFoundError as exc:
        raise GraderError(str(exc)) from None
    try:
        target = data_dir or os.environ.get("HW6_DATA_DIR") or course / "data" / "names"
        names, checksum = data_mod.load_names(target, progress=False)
    except data_mod.SurnameDataError as exc:
        raise GraderError(str(exc)) from None
    data = surnames.SurnameData(names, checksum)
    train_idx, eval_idx = surnames.random_split(len(data), seed=surnames.SPLIT_SEED)
    try:
        log = read_log(path, max_bytes)
        result["reported_accuracy"] = float(log["history"]["eval_accuracies"][-1])
        if log["data"]["categories"] != data.categories:
            raise Rejected(f"categories {log['data']['categories'][:4]}... are not the sorted course languages")
        check_claims(log, surnames, data_mod, len(train_idx))
        x_eval, last_eval, y_eval = data.subset(eval_idx)
        predictions = run_model(log, x_eval.numpy(), last_eval.numpy(), len(data.categories), course, limits)
        accuracy = 100.0 * float((np.asarray(predictions) == y_eval.numpy()).mean())
        result["accuracy"] = round(accuracy, 4)
        if abs(accuracy - result["reported_accuracy"]) > ACCURACY_TOLERANCE:
            raise Rejected(f"self-reported evaluation accuracy {result['reported_accuracy']:.2f}% does not match "
                           f"{accuracy:.2f}% recomputed from the logged weights")
        result["score"] = round(surnames.accuracy_points(accuracy, max_score), 4)
        if accuracy < surnames.FULL_ACCURACY:
            result["reasons"].append(f"accuracy {accuracy:.2f}%: full points need {surnames.FULL_ACCURACY:.0f}%, "
                                     f"points start above {surnames.PASS_ACCURACY:.0f}%")
    except Rejected as exc:
        result["score"] = 0.0
        result["reasons"].append(str(exc))
    return result


def run_model(log: dict[str, Any], x: Any, last_pos: Any, n_categories: int, course: Path,
              limits: sandbox.Limits | None) -> list[int]:
    """Predictions of the logged model on ``x`` computed in the sandbox; raises Rejected on any failure."""
    import numpy as np

    work = Path(tempfile.mkdtemp(prefix="grade-log-"))
    try:
        spec = {key: log[key] for key in ("source_init", "source_forward", "hparams", "weights", "data")}
        spec["n_categories"] = n_categories
        (work / "model.json").write_text(json.dumps(spec), encoding="utf-8")
        np.save(work / "x.npy", np.ascontiguousarray(x))
        np.save(work / "last_pos.npy", np.ascontiguousarray(last_pos))
        shutil.copy(course / "source" / "hw6" / "hw6utils" / "surnames.py", work / "surnames.py")
        shutil.copy(Path(__file__).with_name("logrunner.py"), work / "logrunner.py")
        limits = limits or sandbox.Limits(cpu_seconds=60, wall_seconds=90, max_output_bytes=64 * 1024)
        # a uid of its own: the process limit then counts only this run's processes and threads
        uid = SANDBOX_UIDS[0] + secrets.randbelow(SANDBOX_UIDS[1] - SANDBOX_UIDS[0])
        outcome = sandbox.run([sys.executable, "-I", "logrunner.py"], workdir=work, limits=limits,
                              hidden=[course], uid=uid)
        if outcome.killed_reason is not None:
            raise Rejected(f"the logged model code was stopped by the sandbox: {outcome.killed_reason} "
                           f"(after {outcome.duration:.1f} s)")
        tail = outcome.stderr.decode("utf-8", "replace")[-500:]
        result_file = work / "result.json"
        if not result_file.is_file() or result_file.stat().st_size > 4 * 1024 * 1024:
            raise Rejected(f"the logged model code produced no result (exit code {outcome.returncode}): {tail}")
        try:
            answer = json.loads(result_file.read_text(encoding="utf-8"))
        except ValueError:
            raise Rejected("the logged model code produced an unreadable result") from None
        if not isinstance(answer, dict) or not answer.get("ok"):
            stage = answer.get("stage", "?") if isinstance(answer, dict) else "?"
            error = answer.get("error", "") if isinstance(answer, dict) else ""
            raise Rejected(f"the logged model failed ({stage}): {str(error)[:500]}")
        if outcome.returncode != 0:
            raise Rejected(f"the logged model code exited with code {outcome.returncode}: {tail}")
        predictions = answer.get("predictions")
        if (not isinstance(predictions, list) or len(predictions) != len(x)
                or not all(isinstance(p, int) and 0 <= p < n_categories for p in predictions)):
            raise Rejected("the logged model returned malformed predictions")
        return predictions
    finally:
        shutil.rmtree(work, ignore_errors=True)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="a student's submission_log.json")
    parser.add_argument("--max-score", type=float, default=None,
                        help="points for 80%% accuracy (default: the notebook's test_accuracy points)")
    parser.add_argument("--max-bytes", type=int, default=DEFAULT_MAX_BYTES,
                        help="refuse logs larger than this without parsing them (default 16 MiB)")
    parser.add_argument("--timeout", type=float, default=90.0,
                        help="wall-clock seconds for rebuilding and running the model (default 90)")
    parser.add_argument("--data-dir", default=None,
                        help="surname data folder (default: HW6_DATA_DIR, else <course>/data/names; filled "
                             "from HW6_DATA_MIRROR or the tutorial zip when empty)")


def run(args: argparse.Namespace) -> int:
    course = find_course_dir(getattr(args, "course_dir", None))
    limits = sandbox.Limits(cpu_seconds=max(1, int(args.timeout)), wall_seconds=args.timeout,
                            max_output_bytes=64 * 1024)
    try:
        result = grade(Path(args.path), course=course, data_dir=args.data_dir, max_score=args.max_score,
                       max_bytes=args.max_bytes, limits=limits)
    except GraderError as exc:
        print(f"grade-log: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2))
    return 0
