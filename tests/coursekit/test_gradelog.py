"""`coursekit grade-log`: an honest log round-trips; a log whose weights do not fit the specified architecture
(a memorising lookup table, wrong shapes, missing keys, another cell type, NaN) and every forged claim scores 0
with a short reason; the logged source is never executed and nothing the log says is echoed raw.
Uses the real data (HW6_DATA_MIRROR) and trains the reference model once (~12 s)."""
from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from coursekit import gradelog

REPO_ROOT = Path(__file__).resolve().parents[2]
NB = "surname_classification.ipynb"
REAL_MIRROR = Path(os.environ.get("HW6_DATA_MIRROR", REPO_ROOT.parent / "shared" / "data" / "names"))
SECRET = "INSTRUCTOR-ONLY-7f3a"

if not REAL_MIRROR.is_dir():  # pragma: no cover
    pytest.skip("needs the verified mirror (HW6_DATA_MIRROR)", allow_module_level=True)
os.environ.setdefault("HW6_DATA_MIRROR", str(REAL_MIRROR))


def surnames_module():
    return gradelog.load_helper("surnames", REPO_ROOT)


def surname_log_module():
    return gradelog.load_helper("surname_log", REPO_ROOT)


def grading_module():
    """The instructor-only Problem 4 code (specified classifier, reference encoding), as the grader loads it."""
    return gradelog.load_grading("surnames", REPO_ROOT)


@pytest.fixture(scope="module")
def course_data():
    """(surnames helper, SurnameData) as the grader loads them (fetched from the mirror if needed)."""
    data_mod = gradelog.load_helper("surname_data", REPO_ROOT)
    data_mod.ensure_data(REPO_ROOT / "data" / "names", progress=False)
    surnames, _, data = gradelog.load_course_data(REPO_ROOT, None)
    return surnames, data


@pytest.fixture(scope="module")
def honest(course_data, reference_log) -> dict:
    """The reference notebook trained as a student would, and its log (built by the trusted helper; the
    session's ``reference_log``, trained once)."""
    return copy.deepcopy(reference_log)


def save(tmp_path: Path, log_or_text, name: str = "submission_log.json") -> Path:
    path = tmp_path / name
    path.write_text(log_or_text if isinstance(log_or_text, str) else json.dumps(log_or_text))
    return path


def grade(path: Path, **kw) -> dict:
    return gradelog.grade(path, course=REPO_ROOT, **kw)


def reseal(log: dict) -> dict:
    """Recompute weights_sha256, as a forger who read the helper code would."""
    log["weights_sha256"] = surname_log_module().weights_sha256(log["weights"])
    return log


def with_weights(log: dict, state: dict) -> dict:
    """A copy of ``log`` carrying ``state`` (name -> array), its `model` list and a matching seal."""
    forged = copy.deepcopy(log)
    encode = surname_log_module().encode_tensor
    forged["weights"] = {key: encode(torch.as_tensor(np.asarray(value))) for key, value in state.items()}
    forged["model"] = [[key, list(np.shape(value))] for key, value in state.items()]
    return reseal(forged)


def honest_state(log: dict) -> dict[str, np.ndarray]:
    return surname_log_module().state_dict_from_log(log)


def assert_zero(result: dict, *fragments: str) -> None:
    assert result["score"] == 0.0, result
    text = " ".join(result["reasons"])
    for fragment in fragments:
        assert fragment in text, (fragment, result["reasons"])


# ---------------------------------------------------------------- honest
def test_honest_log_round_trips_through_the_cli(honest, tmp_path):
    path = save(tmp_path, honest)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "coursekit", "--course-dir", str(REPO_ROOT), "grade-log", str(path)],
                          capture_output=True, text=True, timeout=180, cwd=tmp_path)
    elapsed = time.monotonic() - started
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result) == {"path", "score", "max_score", "accuracy", "reported_accuracy", "reasons"}
    reported = honest["history"]["eval_accuracies"][-1]
    assert abs(result["accuracy"] - reported) <= gradelog.ACCURACY_TOLERANCE
    assert result["max_score"] == 5.0
    assert result["score"] == pytest.approx(surnames_module().accuracy_points(result["accuracy"], 5.0))
    assert result["accuracy"] >= 80.0 and result["score"] == 5.0 and result["reasons"] == []
    assert elapsed < 30


def test_partial_score_is_linear(honest, tmp_path, monkeypatch):
    """A weaker honest model scores in proportion: move the bar instead of training a second model."""
    surnames = surnames_module()
    load_helper = gradelog.load_helper
    monkeypatch.setattr(gradelog, "load_helper",
                        lambda name, course: surnames if name == "surnames" else load_helper(name, course))
    monkeypatch.setattr(surnames, "FULL_ACCURACY", 90.0)
    monkeypatch.setattr(surnames, "PASS_ACCURACY", 80.0)
    result = grade(save(tmp_path, honest))
    assert 0 < result["score"] < 5.0
    assert result["score"] == pytest.approx(5.0 * (result["accuracy"] - 80.0) / 10.0, abs=1e-3)
    assert "full points need 90%" in result["reasons"][0]


# ---------------------------------------------------------------- weights that do not fit the specified architecture
class Memoriser(nn.Module):
    """The measured hole: the specified model plus a hash table of every public name's majority language."""

    def __init__(self, vocab_size, rnn_size, n_categories, num_layers=1, dropout=0.0, model_type='lstm'):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, rnn_size)
        rnn_class = nn.LSTM if model_type == "lstm" else nn.RNN
        self.rnn = rnn_class(rnn_size, rnn_size, num_layers=num_layers, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(rnn_size, n_categories)
        self.memo = nn.Module()
        self.memo.register_buffer("table", torch.zeros(1 << 18))   # label + 1 per hash bucket, 0 = unknown

    def forward(self, x, last_pos):
        outputs, _ = self.rnn(self.embedding(x))
        logits = self.output(self.dropout(outputs[torch.arange(x.shape[0]), last_pos]))
        steps = torch.arange(x.shape[1])
        power = torch.tensor([pow(31, int(t), 1000003) for t in steps])
        code = (((x + 1) * power * (steps[None, :] <= last_pos[:, None])).sum(1) % 1000003) % (1 << 18)
        label = self.memo.table[code].long()
        hit = F.one_hot((label - 1).clamp(min=0), logits.shape[1]) * (label > 0)[:, None]
        return logits + 100.0 * hit


def memorising_log(honest: dict, course_data) -> tuple[dict, float]:
    """A self-consistent forged log: honest weights plus the lookup table, its own source, its own accuracy."""
    surnames, data = course_data
    hp = honest["hparams"]
    model = Memoriser(surnames.VOCAB_SIZE, hp["hidden_size"], len(data.categories), num_layers=hp["num_layers"],
                      model_type=hp["model_type"])
    state = {key: torch.from_numpy(value) for key, value in honest_state(honest).items()}
    model.load_state_dict(state, strict=False)
    with torch.no_grad():
        model.memo.table.zero_()
        votes: dict[int, list[int]] = {}   # the same hash as forward, over every public name
        steps = torch.arange(data.x.shape[1])
        power = torch.tensor([pow(31, int(t), 1000003) for t in steps])
        code = (((data.x + 1) * power * (steps[None, :] <= data.last_pos[:, None])).sum(1) % 1000003) % (1 << 18)
        for bucket, label in zip(code.tolist(), data.y.tolist()):
            votes.setdefault(bucket, []).append(label)
        for bucket, labels in votes.items():
            model.memo.table[bucket] = max(set(labels), key=labels.count) + 1
    surname_log = surname_log_module()
    accuracy = grading_module().evaluation_accuracy(model, data)
    forged = with_weights(honest, {k: v.numpy() for k, v in model.state_dict().items()})
    forged["source_init"] = surname_log.method_source(Memoriser, "__init__")
    forged["source_forward"] = surname_log.method_source(Memoriser, "forward")
    forged["history"]["eval_accuracies"][-1] = accuracy
    return forged, accuracy


def test_memorising_log_scores_zero(honest, course_data, tmp_path):
    forged, accuracy = memorising_log(honest, course_data)
    print(f"memorising model: {accuracy:.2f}%")
    assert accuracy > 93.0   # the forgery is real: its own model is far better than any honest one
    result = grade(save(tmp_path, forged))
    assert_zero(result, "do not fit the specified RecurrentClassifier", "unexpected parameter 'memo.table'")
    assert result["accuracy"] is None


def test_wrong_shape(honest, tmp_path):
    state = honest_state(honest)
    rows, hidden = state["rnn.weight_hh_l0"].shape
    state["rnn.weight_hh_l0"] = state["rnn.weight_hh_l0"][:, :-1]
    assert_zero(grade(save(tmp_path, with_weights(honest, state))),
                f"rnn.weight_hh_l0 has shape [{rows}, {hidden - 1}], expected [{rows}, {hidden}]")


def test_embedding_of_another_size(honest, tmp_path):
    state = honest_state(honest)
    state["embedding.weight"] = np.concatenate([state["embedding.weight"]] * 2, axis=1)
    hidden = state["rnn.weight_hh_l0"].shape[1]
    assert_zero(grade(save(tmp_path, with_weights(honest, state))),
                f"embedding.weight has shape [58, {2 * hidden}], expected [58, {hidden}]")


def test_missing_parameter(honest, tmp_path):
    state = honest_state(honest)
    del state["output.bias"]
    assert_zero(grade(save(tmp_path, with_weights(honest, state))), "missing parameter 'output.bias'")


def test_other_recurrent_cell(honest, tmp_path):
    """A GRU has the same key names as nn.RNN and nn.LSTM; its 3H-row matrices give it away."""
    state = honest_state(honest)
    hidden = state["rnn.weight_hh_l0"].shape[1]
    gru = nn.GRU(hidden, hidden, batch_first=True)
    state.update({f"rnn.{key}": value.detach().numpy() for key, value in gru.state_dict().items()})
    assert_zero(grade(save(tmp_path, with_weights(honest, state))),
                f"rnn.weight_ih_l0 has shape [{3 * hidden}, {hidden}]: expected [H, H] (nn.RNN) or [4H, H] (nn.LSTM)")


def test_hparams_name_another_model_type(honest, tmp_path):
    forged = copy.deepcopy(honest)
    forged["hparams"]["model_type"] = "rnn" if honest["hparams"]["model_type"] == "lstm" else "lstm"
    assert_zero(grade(save(tmp_path, forged)), f"hparams say {forged['hparams']['model_type']}",
                f"the weights are {honest['hparams']['model_type']}")


def test_weights_that_do_not_fit_the_logged_hidden_size(honest, tmp_path):
    forged = copy.deepcopy(honest)
    forged["hparams"]["hidden_size"] = 32
    assert_zero(grade(save(tmp_path, forged)), "hidden size 32", f"hidden size {honest['hparams']['hidden_size']}")


def test_nan_weights(honest, tmp_path):
    state = honest_state(honest)
    state["output.weight"][0, 0] = np.nan
    assert_zero(grade(save(tmp_path, with_weights(honest, state))), "'output.weight' contains NaN or inf")


# ---------------------------------------------------------------- the logged source is data: never run, never echoed
@pytest.mark.parametrize("code", [
    f"raise RuntimeError({SECRET!r} + open('/etc/hostname').read())",
    "while True:\n    pass",
    "import os\nos._exit(0)",
])
def test_logged_source_is_never_executed(honest, tmp_path, code):
    forged = copy.deepcopy(honest)
    head, rest = forged["source_init"].split("\n", 1)
    forged["source_init"] = head + "\n" + "".join(f"    {line}\n" for line in code.splitlines()) + rest
    forged["source_forward"] = f"def forward(self, x, last_pos):\n    raise ValueError({SECRET!r})\n"
    started = time.monotonic()
    result = grade(save(tmp_path, forged))
    assert result["score"] == 5.0 and result["reasons"] == [], result   # graded from the weights alone
    assert SECRET not in json.dumps(result) and time.monotonic() - started < 30


def test_log_strings_are_never_echoed(honest, tmp_path):
    """Strings from the log (last_name, weight names) never reach the reasons raw; reasons stay one short line."""
    forged = copy.deepcopy(honest)
    forged["last_name"] = (SECRET + "\x1b[2J\u202e") * 40   # too long: a schema error on last_name
    state = honest_state(honest)
    state[f"{SECRET}\n\x1b[31m" + "x" * 500] = np.zeros(3, dtype=np.float32)
    forged = with_weights(forged, state)
    result = grade(save(tmp_path, forged))
    assert_zero(result, "does not follow the submission log schema", "last_name: fails the schema's maxLength 200")
    shown = json.dumps(result)
    assert SECRET not in shown and "\\u001b" not in shown and "\\u202e" not in shown
    assert all(len(reason) <= gradelog.MAX_REASON_CHARS and "\n" not in reason for reason in result["reasons"])


# ---------------------------------------------------------------- forged claims
def test_edited_accuracy(honest, tmp_path):
    forged = copy.deepcopy(honest)
    forged["history"]["eval_accuracies"][-1] = 97.5
    assert_zero(grade(save(tmp_path, forged)), "self-reported evaluation accuracy 97.50%", "does not match")


def test_random_weights_with_honest_claims(honest, tmp_path):
    rng = np.random.default_rng(0)
    state = {key: rng.normal(0, 0.3, value.shape).astype("float32") for key, value in honest_state(honest).items()}
    result = grade(save(tmp_path, with_weights(honest, state)))
    assert_zero(result, "does not match", "recomputed from the logged weights")
    assert result["accuracy"] < 70


def test_edited_weights_without_resealing(honest, tmp_path):
    forged = copy.deepcopy(honest)
    entry = forged["weights"]["output.bias"]
    entry["data"] = surname_log_module().encode_tensor(torch.zeros(entry["shape"]))["data"]
    assert_zero(grade(save(tmp_path, forged)), "weights_sha256 does not match")


def test_model_list_does_not_match_weights(honest, tmp_path):
    forged = copy.deepcopy(honest)
    forged["model"][0][1] = [58, 999]
    assert_zero(grade(save(tmp_path, forged)), "does not match the stored weights", "from entry 0")


def test_truncated_weights_data(honest, tmp_path):
    forged = copy.deepcopy(honest)
    forged["weights"]["output.bias"]["data"] = forged["weights"]["output.bias"]["data"][:8]
    assert_zero(grade(save(tmp_path, reseal(forged))), "'output.bias'", "cannot be decoded")


def test_other_data_checksum(honest, tmp_path):
    forged = copy.deepcopy(honest)
    forged["data"]["sha256"] = "0" * 64
    assert_zero(grade(save(tmp_path, forged)), "trained on other data")


def test_other_categories(honest, tmp_path):
    forged = copy.deepcopy(honest)
    forged["data"]["categories"] = forged["data"]["categories"][::-1]
    assert_zero(grade(save(tmp_path, forged)), "not the 18 sorted course languages")


def test_other_split_seed(honest, tmp_path):
    forged = copy.deepcopy(honest)
    forged["data"]["split_seed"] += 1
    assert_zero(grade(save(tmp_path, forged)), "not the course split")


def test_more_epochs_than_allowed(honest, tmp_path):
    forged = copy.deepcopy(honest)
    forged["hparams"]["epochs"] = 40
    assert_zero(grade(save(tmp_path, forged)), "the course fixes 20")


def test_iteration_count_does_not_match_batch_size(honest, tmp_path):
    forged = copy.deepcopy(honest)
    forged["hparams"]["batch_size"] = 64
    assert_zero(grade(save(tmp_path, forged)), "iterations")


def test_malformed_json(honest, tmp_path):
    text = json.dumps(honest)
    assert_zero(grade(save(tmp_path, text[: len(text) // 2])), "is not valid JSON")


def test_nan_in_json(honest, tmp_path):
    text = json.dumps(honest).replace('"eval_accuracies": [', '"eval_accuracies": [NaN, ', 1)
    assert_zero(grade(save(tmp_path, text)), "is not valid JSON", "NaN")


@pytest.mark.parametrize("key", ["weights", "history", "source_forward", "format_version"])
def test_missing_key(honest, tmp_path, key):
    forged = copy.deepcopy(honest)
    del forged[key]
    assert_zero(grade(save(tmp_path, forged)), "does not follow the submission log schema", f"'{key}'")


def test_earlier_unverifiable_format(honest, tmp_path):
    old = {k: honest[k] for k in ("history", "hparams", "model", "last_name", "source_init", "source_forward")}
    assert_zero(grade(save(tmp_path, old)), "does not follow the submission log schema")


def test_oversized_file_is_not_parsed(honest, tmp_path, monkeypatch):
    path = tmp_path / "huge.json"
    with open(path, "wb") as f:
        f.truncate(gradelog.DEFAULT_MAX_BYTES + 1)  # sparse: all NUL bytes, never valid JSON anyway
    monkeypatch.setattr(gradelog.json, "loads", lambda *a, **k: pytest.fail("an oversized log was parsed"))
    started = time.monotonic()
    result = gradelog.grade(path, course=REPO_ROOT, max_score=5.0)
    assert_zero(result, "over the limit", "not parsed")
    assert time.monotonic() - started < 30


# ---------------------------------------------------------------- the grader's own failures
def test_missing_file_is_a_usage_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "coursekit", "--course-dir", str(REPO_ROOT), "grade-log",
                           str(tmp_path / "absent.json")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "is not a file" in done.stderr and "Traceback" not in done.stderr


def test_missing_data_is_named(honest, tmp_path):
    empty = tmp_path / "names"
    empty.mkdir()
    done = subprocess.run([sys.executable, "-m", "coursekit", "--course-dir", str(REPO_ROOT), "grade-log",
                           "--data-dir", str(empty), str(save(tmp_path, honest))],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr and not done.stdout
    assert done.stderr.strip() == f"grade-log: the surname data is missing in {empty}; run `coursekit fetch-data`"
    assert not any(empty.iterdir())   # nothing was fetched behind the instructor's back


# ---------------------------------------------------------------- classifier_from_state_dict on its own (no data)
class StudentModel(nn.Module):
    """A student's model that follows the specification, registering its layers in another order."""

    def __init__(self, vocab_size, rnn_size, n_categories, num_layers=1, dropout=0.0, model_type="lstm"):
        super().__init__()
        self.output = nn.Linear(rnn_size, n_categories)
        self.rnn = (nn.LSTM if model_type == "lstm" else nn.RNN)(rnn_size, rnn_size, num_layers=num_layers,
                                                                 batch_first=True)
        self.embedding = nn.Embedding(vocab_size, rnn_size)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x, last_pos):
        out, _ = self.rnn(self.embedding(x))
        return self.output(self.dropout(out[torch.arange(len(x)), last_pos]))


@pytest.mark.parametrize("model_type,layers", [("rnn", 1), ("rnn", 2), ("lstm", 1), ("lstm", 3)])
def test_spec_model_gives_the_student_models_logits(model_type, layers):
    surnames = surnames_module()
    torch.manual_seed(layers)
    student = StudentModel(58, 12, 18, num_layers=layers, dropout=0.4, model_type=model_type).eval()
    x, last = grading_module().encode_names(["Nakamura", "Li", "O'Neal", "Abdank-Kossovsky", "Z", "Ślusàrski", ""])
    for state in ({k: v.numpy() for k, v in student.state_dict().items()}, student.state_dict()):
        rebuilt = grading_module().classifier_from_state_dict(state, 18)
        assert (rebuilt.model_type, rebuilt.hidden_size, rebuilt.num_layers) == (model_type, 12, layers)
        assert not rebuilt.training
        assert torch.equal(surnames.predict_logits(rebuilt, x, last), surnames.predict_logits(student, x, last))


def spec_state(model_type="rnn", hidden=6, layers=1, categories=18) -> dict[str, np.ndarray]:
    model = StudentModel(58, hidden, categories, num_layers=layers, model_type=model_type)
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("change,message", [
    (lambda s: s.update({"memo.table": np.zeros(4, np.float32)}), "unexpected parameter 'memo.table'"),
    (lambda s: s.update({"rnn.weight_hr_l0": np.zeros((6, 6), np.float32)}),
     "unexpected parameter 'rnn.weight_hr_l0'"),
    (lambda s: s.pop("rnn.bias_hh_l0"), "missing parameter 'rnn.bias_hh_l0'"),
    (lambda s: s.update({"rnn.weight_hh_l0": np.zeros((5, 5), np.float32)}),
     "rnn.weight_hh_l0 has shape [5, 5], expected [6, 6]"),
    (lambda s: s.update({"embedding.weight": np.zeros((57, 6), np.float32)}),
     "embedding.weight has shape [57, 6], expected [58, 6]"),
    (lambda s: s.update({"output.bias": np.zeros(17, np.float32)}), "output.bias has shape [17], expected [18]"),
    (lambda s: s.update({"output.bias": np.full(18, np.inf, np.float32)}), "'output.bias' contains NaN or inf"),
    (lambda s: s.update({"output.bias": np.array(["a"] * 18)}), "'output.bias' is not a real-valued array"),
    (lambda s: s.update({"output.bias": [0.0] * 18}), "'output.bias' is not a real-valued array"),
])
def test_state_dict_mismatches_are_named(change, message):
    surname_log = grading_module()
    state = spec_state()
    change(state)
    with pytest.raises(ValueError) as error:
        surname_log.classifier_from_state_dict(state, 18)
    assert str(error.value) == message


def test_limits():
    surname_log = grading_module()
    with pytest.raises(ValueError, match="^hidden size 1025 is over the limit of 1024$"):
        surname_log.classifier_from_state_dict(spec_state(hidden=1025), 18)
    with pytest.raises(ValueError, match="^more than 4 recurrent layers$"):
        surname_log.classifier_from_state_dict(spec_state(layers=5, hidden=2), 18)
    with pytest.raises(ValueError, match="^1 categories: expected 2 to 100$"):
        surname_log.classifier_from_state_dict(spec_state(categories=1), 1)
    assert surname_log.classifier_from_state_dict(spec_state(layers=4, hidden=2), 18).num_layers == 4


def test_key_names_are_shown_sanitised():
    surname_log = grading_module()
    state = spec_state()
    state[f"{SECRET}\x1b[31m\n\u202e" + "y" * 500] = np.zeros(1, np.float32)
    with pytest.raises(ValueError) as error:
        surname_log.classifier_from_state_dict(state, 18)
    message = str(error.value)
    assert message.startswith("unexpected parameter 'INSTRUCTOR-ONLY-7f3a??31m??yyy") and message.endswith("y...'")
    assert message.isascii() and message.isprintable() and len(message) < 80


def test_evaluation_accuracy_is_fast_and_on_the_course_split(course_data):
    surnames, data = course_data
    torch.manual_seed(0)
    surname_log = grading_module()
    model = surname_log.classifier_from_state_dict(spec_state("lstm", hidden=64), len(data.categories))
    started = time.perf_counter()
    accuracy = surname_log.evaluation_accuracy(model, data)
    assert time.perf_counter() - started < 1.0
    _, eval_idx = surnames.random_split(len(data))
    assert len(eval_idx) == round(0.2 * len(data))
    assert accuracy == surnames.accuracy(model, *data.subset(eval_idx))
