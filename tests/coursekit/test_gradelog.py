"""`coursekit grade-log`: an honest log round-trips; every forged log is rejected with a clear reason,
in bounded time. Uses the real data (HW6_DATA_MIRROR) and trains the reference model once (~15 s)."""
from __future__ import annotations

import copy
import json
import linecache
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from coursekit import gradelog, sandbox
from notebook_cells import SOURCE_DIR, cell_by_grade_id, load, runnable_source, solution_namespace

REPO_ROOT = Path(__file__).resolve().parents[2]
NB = "surname_classification.ipynb"
REAL_MIRROR = Path(os.environ.get("HW6_DATA_MIRROR", REPO_ROOT.parent / "shared" / "data" / "names"))

try:
    sandbox.check_available()
except sandbox.SandboxUnavailable as exc:  # pragma: no cover
    pytest.skip(f"sandbox unavailable: {exc}", allow_module_level=True)
if not REAL_MIRROR.is_dir():  # pragma: no cover
    pytest.skip("needs the verified mirror (HW6_DATA_MIRROR)", allow_module_level=True)
os.environ.setdefault("HW6_DATA_MIRROR", str(REAL_MIRROR))

LIMITS = sandbox.Limits(cpu_seconds=60, wall_seconds=60, max_output_bytes=64 * 1024)


@pytest.fixture(scope="module")
def honest() -> dict:
    """The reference notebook trained as a student would, and its log (built by the trusted helper)."""
    ns = solution_namespace(NB, until_grade_id="p4_confusion_md")
    # IPython keeps every cell's source in linecache, which inspect.getsource needs; do the same here.
    model_cell = runnable_source(cell_by_grade_id(load(SOURCE_DIR / NB), "p4_model").source)
    filename = f"<{NB}:p4_model>"
    linecache.cache[filename] = (len(model_cell), None, model_cell.splitlines(True), filename)
    hp = ns["surnames"].hparams_dict(ns["HIDDEN_SIZE"], ns["NUM_LAYERS"], ns["DROPOUT"], ns["MODEL_TYPE"],
                                     ns["OPTIMIZER_CLASS"], ns["LR"], ns["BATCH_SIZE"], ns["EPOCHS"], ns["SEED"])
    log = ns["surnames"].build_submission_log(ns["model"], ns["history"], hp, ns["LAST_NAME"], ns["data"])
    return json.loads(json.dumps(log))


def surnames_module():
    from coursekit.data import load_helper
    return load_helper("surnames", REPO_ROOT)


def save(tmp_path: Path, log_or_text, name: str = "submission_log.json") -> Path:
    path = tmp_path / name
    path.write_text(log_or_text if isinstance(log_or_text, str) else json.dumps(log_or_text))
    return path


def grade(path: Path, limits: sandbox.Limits = LIMITS, **kw) -> dict:
    return gradelog.grade(path, course=REPO_ROOT, limits=limits, **kw)


def reseal(log: dict) -> dict:
    """Recompute weights_sha256, as a forger who read the helper code would."""
    log["weights_sha256"] = surnames_module().weights_sha256(log["weights"])
    return log


def inject(log: dict, code: str) -> dict:
    """Forge a log whose __init__ runs ``code`` first (the weights and claims stay honest)."""
    forged = copy.deepcopy(log)
    head, rest = forged["source_init"].split("\n", 1)
    body = "".join(f"    {line}\n" for line in code.splitlines())
    forged["source_init"] = f"{head}\n{body}{rest}"
    return forged


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
    assert set(result) >= {"score", "max_score", "accuracy", "reasons"}
    reported = honest["history"]["eval_accuracies"][-1]
    assert abs(result["accuracy"] - reported) <= gradelog.ACCURACY_TOLERANCE
    assert result["max_score"] == 5.0
    assert result["score"] == pytest.approx(surnames_module().accuracy_points(result["accuracy"], 5.0))
    assert result["accuracy"] >= 80.0 and result["score"] == 5.0 and result["reasons"] == []
    assert elapsed < 60


def test_partial_score_is_linear(honest, tmp_path, monkeypatch):
    """A weaker honest model scores in proportion: move the bar instead of training a second model."""
    surnames = surnames_module()
    monkeypatch.setattr(gradelog, "load_helper", lambda name, course: surnames if name == "surnames"
                        else __import__("coursekit.data", fromlist=["load_helper"]).load_helper(name, course))
    monkeypatch.setattr(surnames, "FULL_ACCURACY", 90.0)
    monkeypatch.setattr(surnames, "PASS_ACCURACY", 80.0)
    result = grade(save(tmp_path, honest))
    assert 0 < result["score"] < 5.0
    assert result["score"] == pytest.approx(5.0 * (result["accuracy"] - 80.0) / 10.0, abs=1e-3)
    assert "full points need 90%" in result["reasons"][0]


# ---------------------------------------------------------------- forged claims (no code runs)
def test_edited_accuracy(honest, tmp_path):
    forged = copy.deepcopy(honest)
    forged["history"]["eval_accuracies"][-1] = 97.5
    assert_zero(grade(save(tmp_path, forged)), "self-reported evaluation accuracy 97.50%", "does not match")


def test_random_weights_with_honest_claims(honest, tmp_path):
    forged = copy.deepcopy(honest)
    rng = np.random.default_rng(0)
    for entry in forged["weights"].values():
        entry["data"] = surnames_module().encode_tensor(
            __import__("torch").from_numpy(rng.normal(0, 0.3, entry["shape"]).astype("float32")))["data"]
    result = grade(save(tmp_path, reseal(forged)))
    assert_zero(result, "does not match", "recomputed from the logged weights")
    assert result["accuracy"] < 70


def test_edited_weights_without_resealing(honest, tmp_path):
    forged = copy.deepcopy(honest)
    entry = forged["weights"]["output.bias"]
    entry["data"] = surnames_module().encode_tensor(__import__("torch").zeros(entry["shape"]))["data"]
    assert_zero(grade(save(tmp_path, forged)), "weights_sha256 does not match")


def test_model_list_does_not_match_weights(honest, tmp_path):
    forged = copy.deepcopy(honest)
    forged["model"][0][1] = [58, 999]
    assert_zero(grade(save(tmp_path, forged)), "does not match the stored weights")


def test_weights_that_do_not_fit_the_logged_model(honest, tmp_path):
    forged = copy.deepcopy(honest)
    forged["hparams"]["hidden_size"] = 32
    assert_zero(grade(save(tmp_path, forged)), "do not fit the logged model")


def test_truncated_weights_data(honest, tmp_path):
    forged = copy.deepcopy(honest)
    forged["weights"]["output.bias"]["data"] = forged["weights"]["output.bias"]["data"][:8]
    assert_zero(grade(save(tmp_path, reseal(forged))), "cannot be decoded")


def test_other_data_checksum(honest, tmp_path):
    forged = copy.deepcopy(honest)
    forged["data"]["sha256"] = "0" * 64
    assert_zero(grade(save(tmp_path, forged)), "trained on other data")


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
    result = gradelog.grade(path, course=REPO_ROOT, limits=LIMITS, max_score=5.0)
    assert_zero(result, "over the limit", "not parsed")
    assert time.monotonic() - started < 30


# ---------------------------------------------------------------- hostile source (runs in the sandbox)
def test_infinite_loop_is_stopped_in_bounded_time(honest, tmp_path):
    started = time.monotonic()
    result = grade(save(tmp_path, inject(honest, "while True:\n    pass")),
                   limits=sandbox.Limits(cpu_seconds=8, wall_seconds=8))
    assert_zero(result, "stopped by the sandbox")
    assert time.monotonic() - started < 40


def test_reading_instructor_files_fails(honest, tmp_path):
    secret = REPO_ROOT / "tests" / "artifacts" / "gradelog_secret.txt"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text("INSTRUCTOR-ONLY-ANSWER")
    secret.chmod(0o644)
    code = (f"leaked = [open(p).read() for p in ({str(secret)!r}, {str(REPO_ROOT / 'nbgrader_config.py')!r})]\n"
            "raise RuntimeError('LEAKED ' + repr(leaked))")
    result = grade(save(tmp_path, inject(honest, code)))
    assert_zero(result, "FileNotFoundError")
    assert "INSTRUCTOR-ONLY-ANSWER" not in json.dumps(result) and "LEAKED" not in json.dumps(result)


def test_network_access_fails(honest, tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    try:
        code = f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=3).sendall(b'weights')"
        result = grade(save(tmp_path, inject(honest, code)))
        with pytest.raises(socket.timeout):
            server.accept()
    finally:
        server.close()
    assert_zero(result, "Network is unreachable")


def test_huge_output_is_capped(honest, tmp_path):
    code = "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)"
    started = time.monotonic()
    result = grade(save(tmp_path, inject(honest, code)))
    assert_zero(result, "output size limit")
    assert len(json.dumps(result)) < 10_000 and time.monotonic() - started < 60


def test_memory_bomb(honest, tmp_path):
    result = grade(save(tmp_path, inject(honest, "hog = bytearray(64 * 1024 ** 3)")))
    assert_zero(result, "MemoryError")


def test_fork_bomb_is_contained(honest, tmp_path):
    code = "import os\nwhile True:\n    os.fork()"
    started = time.monotonic()
    result = grade(save(tmp_path, inject(honest, code)), limits=sandbox.Limits(cpu_seconds=10, wall_seconds=10,
                                                                                max_processes=32))
    assert result["score"] == 0.0 and result["reasons"]
    assert time.monotonic() - started < 60


def test_forward_returning_garbage(honest, tmp_path):
    forged = copy.deepcopy(honest)
    forged["source_forward"] = "def forward(self, x, last_pos):\n    return torch.full((len(x), 18), float('nan'))\n"
    assert_zero(grade(save(tmp_path, forged)), "NaN or inf")


def test_missing_file_is_a_usage_error(tmp_path):
    done = subprocess.run([sys.executable, "-m", "coursekit", "--course-dir", str(REPO_ROOT), "grade-log",
                           str(tmp_path / "absent.json")], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "is not a file" in done.stderr and "Traceback" not in done.stderr
