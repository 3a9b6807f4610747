"""The Gradescope autograder zip, run the way Gradescope runs it.

Each case unpacks the zip into a temporary tree, mounts it at /autograder in a private mount namespace
(as root) and runs /autograder/run_autograder; every results.json is validated against
coursekit/gradescope/results.schema.json. Log mode uses hw6 (grade-log is fast); notebooks mode uses the
tiny fixture course. setup.sh is checked with `bash -n` and its --dry-run (a real install of torch and
the pinned kit takes many minutes and needs the network: too slow for CI).
"""
from __future__ import annotations

import copy
import json
import os
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from coursekit import sandbox
from coursekit.course import Course
from coursekit.gradescope import emulate, run as gs_run
from coursekit.gradescope.build import build
from coursekit.gradescope.export import is_export
from coursekit.gradescope.results import validate
from coursekit.samples import fill_answers
from coursekit.testing.notebooks import cell_by_grade_id
from coursekit.testing.submission_logs import reference_submission_log
from coursekit.testing.tiny_course import ASSIGNMENT as TINY, make_course

REPO_ROOT = Path(__file__).resolve().parents[2]
MIRROR = Path(os.environ.get("HW6_DATA_MIRROR", REPO_ROOT.parent / "shared" / "data" / "names"))

try:
    sandbox.check_available()
except sandbox.SandboxUnavailable as exc:  # pragma: no cover
    pytest.skip(f"needs root and the sandbox to emulate Gradescope: {exc}", allow_module_level=True)
if shutil.which("unshare") is None:  # pragma: no cover
    pytest.skip("needs util-linux unshare", allow_module_level=True)


# --- helpers -------------------------------------------------------------------------------------------

def grade(zip_path: Path, tree: Path, files: dict[str, bytes | str | Path] | None = None,
          env: dict[str, str] | None = None, sparse: dict[str, int] | None = None) -> tuple[dict, str]:
    """Run one submission through the zip in an emulated Gradescope container; results.json is validated."""
    emulate.unpack(zip_path, tree)
    for name, content in (files or {}).items():
        dest = tree / "submission" / name
        if isinstance(content, Path):
            shutil.copy(content, dest)
        else:
            dest.write_bytes(content.encode() if isinstance(content, str) else content)
    for name, size in (sparse or {}).items():
        with open(tree / "submission" / name, "wb") as handle:
            handle.truncate(size)  # a sparse file: no disk used, never read by the autograder
    results, stdout = emulate.run(tree, env=env)
    assert results is not None, f"no results.json; stdout:\n{stdout}"
    validate(results)
    assert results["stdout_visibility"] == "hidden"
    return results, stdout


def by_name(results: dict) -> dict[str, dict]:
    return {t["name"]: t for t in results["tests"]}


def criterion(results: dict, key: str) -> dict:
    title = dict(gs_run.LOG_CRITERIA)[key]
    return by_name(results)[title]


# --- log mode (hw6) ------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def log_zip(tmp_path_factory) -> Path:
    if not MIRROR.is_dir():  # pragma: no cover
        pytest.skip("needs the verified surname data (HW6_DATA_MIRROR)")
    course = tmp_path_factory.mktemp("hw6") / "course"
    shutil.copytree(REPO_ROOT, course, ignore=shutil.ignore_patterns(
        ".git", ".venv", "autograded", "submitted", "feedback", "reports", "gradebook.db", ".coursekit", "data",
        "__pycache__", "gradescope", "release"))
    shutil.copytree(MIRROR, course / "data" / "names")
    out = course / "gradescope" / "hw6-autograder.zip"
    done = subprocess.run([sys.executable, "-m", "coursekit", "--course-dir", str(course), "gradescope", "hw6",
                           "--mode", "log"], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert done.returncode == 0, done.stderr
    assert "wrote" in done.stdout and out.is_file()
    return out


@pytest.fixture(scope="module")
def honest_log() -> dict:
    """The reference solution of Problem 4 trained as a student would (~15 s), logged by the trusted helper."""
    return reference_submission_log()


def test_zip_follows_gradescopes_layout(log_zip):
    with zipfile.ZipFile(log_zip) as zf:
        names = set(zf.namelist())
        modes = {i.filename: (i.external_attr >> 16) for i in zf.infolist()}
        manifest = json.loads(zf.read("gradescope.json"))
        pins = zf.read("requirements.txt").decode().split()
    assert {"setup.sh", "run_autograder", "gradescope.json", "requirements.txt"} <= names
    assert modes["run_autograder"] & stat.S_IXUSR and modes["setup.sh"] & stat.S_IXUSR
    assert "kit/coursekit/gradescope/run.py" in names and "course/source/hw6/hw6utils/surname_log.py" in names
    assert "course/data/names/English.txt" in names
    assert manifest["mode"] == "log" and manifest["log_points"] == 5.0
    assert all("==" in pin for pin in pins) and "torch==2.13.0" in pins


def test_unknown_assignment_or_mode_is_one_clear_line(log_zip):
    course = log_zip.parents[1]
    for args, expected in ((["nope"], "assignment 'nope' not found"), (["--mode", "pdf"], "invalid choice: 'pdf'")):
        done = subprocess.run([sys.executable, "-m", "coursekit", "--course-dir", str(course), "gradescope", *args],
                              capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
        assert done.returncode == 2 and expected in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_setup_script_is_valid_bash_and_installs_torch_cpu_first(log_zip, tmp_path):
    with zipfile.ZipFile(log_zip) as zf:
        zf.extractall(tmp_path)
    for script in ("setup.sh", "run_autograder"):
        assert subprocess.run(["bash", "-n", str(tmp_path / script)]).returncode == 0, script
    dry = subprocess.run(["bash", str(tmp_path / "setup.sh"), "--dry-run"], capture_output=True, text=True, timeout=30)
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    torch = next(i for i, line in enumerate(lines) if "torch==2.13.0" in line)
    assert "--index-url https://download.pytorch.org/whl/cpu" in lines[torch]
    kit = next(i for i, line in enumerate(lines) if "-r" in line.split() and "requirements.txt" in line)
    assert torch < kit and any("python3.11 -m venv" in line for line in lines[:torch])


def test_reference_log_earns_full_points(log_zip, honest_log, tmp_path):
    results, stdout = grade(log_zip, tmp_path / "t", {"submission_log.json": json.dumps(honest_log)})
    assert results["score"] == 5.0, results
    assert all(t["status"] == "passed" for t in results["tests"]), results["tests"]
    accuracy = criterion(results, "accuracy")
    assert accuracy["score"] == accuracy["max_score"] == 5.0 and "Recomputed evaluation accuracy" in accuracy["output"]
    assert results["leaderboard"][0]["value"] >= 80.0
    assert "sandbox: full" in " ".join(results["extra_data"]["instructor_notes"])
    assert "sandbox" not in results["output"] and "[staff]" in stdout
    for folder in ("source", "results", "submission"):  # closed to the sandbox uid
        assert stat.S_IMODE((tmp_path / "t" / folder).stat().st_mode) == 0o700


def test_forged_log_scores_zero_with_the_reason(log_zip, honest_log, tmp_path):
    forged = copy.deepcopy(honest_log)
    forged["history"]["eval_accuracies"][-1] = 97.5
    results, _ = grade(log_zip, tmp_path / "t", {"submission_log.json": json.dumps(forged)})
    assert results["score"] == 0.0
    consistency = criterion(results, "consistency")
    assert consistency["status"] == "failed" and "97.50%" in consistency["output"] and "does not match" in consistency["output"]
    assert "Recomputed evaluation accuracy" in criterion(results, "accuracy")["output"]
    assert criterion(results, "model")["status"] == "passed"
    assert "does not match" in results["output"]


def test_edited_weights_fail_the_model_criterion(log_zip, honest_log, tmp_path):
    forged = copy.deepcopy(honest_log)
    forged["weights_sha256"] = "0" * 64
    results, _ = grade(log_zip, tmp_path / "t", {"submission_log.json": json.dumps(forged)})
    assert results["score"] == 0.0
    assert criterion(results, "data")["status"] == "passed"
    assert "weights_sha256" in criterion(results, "model")["output"]
    assert criterion(results, "consistency")["output"].startswith("Not checked")


@pytest.mark.parametrize("case, files, sparse, failed, reason", [
    ("nothing", {}, {}, "file", "No file was submitted"),
    ("truncated", {"submission_log.json": '{"format_version": 2, "hist'}, {}, "file", "submission_log.json is not valid JSON"),
    ("not a log", {"submission_log.json": '{"hello": 1}'}, {}, "file", "does not follow the submission log schema"),
    ("notebook", {"surname_classification.ipynb": "{}"}, {}, "file", "You uploaded a notebook"),
    ("1 GB", {}, {"submission_log.json": 1 << 30}, "file", "it was not read"),
    ("two other files", {"a.txt": "x", "b.txt": "y"}, {}, "file", "No submission_log.json found"),
])
def test_bad_input_scores_zero_with_one_clear_line(log_zip, tmp_path, case, files, sparse, failed, reason):
    started = time.monotonic()
    results, _ = grade(log_zip, tmp_path / "t", files, sparse=sparse)
    assert time.monotonic() - started < 60
    assert results["score"] == 0.0
    assert reason in results["output"], results["output"]
    assert len(results["output"].splitlines()) <= 2
    assert [t["name"] for t in results["tests"]] == [title for _, title in gs_run.LOG_CRITERIA]
    assert all(t["score"] == 0 for t in results["tests"])


def test_renamed_log_and_extra_file_are_graded_with_a_note(log_zip, honest_log, tmp_path):
    results, _ = grade(log_zip, tmp_path / "t", {"submission_log (1).json": json.dumps(honest_log), "notes.txt": "hi"})
    assert results["score"] == 5.0
    assert "submission_log (1).json was graded as submission_log.json" in results["output"]
    assert "Ignored other uploaded files: notes.txt" in results["output"]


def test_without_namespaces_student_code_never_runs_as_root(log_zip, honest_log, tmp_path):
    """A container that cannot create namespaces: the degraded sandbox if the kit has one, else no run."""
    results, _ = grade(log_zip, tmp_path / "t", {"submission_log.json": json.dumps(honest_log)},
                       env={gs_run.NO_NAMESPACES_ENV: "1"})
    notes = " ".join(results["extra_data"]["instructor_notes"])
    if getattr(sandbox, "ALLOW_DEGRADED_ENV", None):  # the sandbox's opt-in degraded mode
        assert results["score"] == 5.0 and "DEGRADED" in notes
    else:
        assert results["score"] == 0.0 and results["output"] == gs_run.NO_SANDBOX
        assert "namespaces cannot be created" in notes and "not run" in notes
    assert "namespace" not in results["output"]


def test_results_are_written_even_when_the_kit_breaks(log_zip, honest_log, tmp_path):
    # the manifest is gone: the kit starts but cannot work
    emulate.unpack(log_zip, tmp_path / "a")
    (tmp_path / "a" / "source" / "gradescope.json").unlink()
    results, stdout = emulate.run(tmp_path / "a")
    validate(results)
    assert results["score"] == 0 and results["output"] == gs_run.INTERNAL_ERROR and "Traceback" in stdout
    # Python itself cannot start: run_autograder answers on its own
    results, stdout = grade(log_zip, tmp_path / "b", {"submission_log.json": "{}"},
                            env={"COURSEKIT_PYTHON": "/nonexistent/python"})
    assert results["score"] == 0 and "internal problem" in results["output"] and "did not start" in stdout


# --- notebooks mode (tiny course) -------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> tuple[Course, Path]:
    """The tiny course with one visible-only test cell (squares) beside one with hidden tests (adder)."""
    root = make_course(tmp_path_factory.mktemp("tiny") / "course")
    path = root / "source" / TINY / "squares.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    test = cell_by_grade_id(nb, "test_square")
    test.source = test.source.split("### BEGIN HIDDEN TESTS")[0].rstrip()
    nbformat.write(nb, str(path))
    course = Course.open(root)
    out = root / "tiny-autograder.zip"
    manifest = build(course, TINY, "notebooks", out)
    assert manifest["reference_notebooks"] == 2
    course.generate_release(TINY)  # the instructor's own release, to make submissions from
    return course, out


def tiny_notebooks(course: Course, filled: bool) -> dict[str, bytes]:
    out = {}
    for name in course.source_notebooks(TINY):
        release = nbformat.read(str(course.folder("release", TINY, f"{name}.ipynb")), as_version=4)
        source = nbformat.read(str(course.folder("source", TINY, f"{name}.ipynb")), as_version=4)
        out[f"{name}.ipynb"] = nbformat.writes(fill_answers(release, source) if filled else release).encode()
    return out


@pytest.mark.slow
def test_notebooks_zip_ships_the_reference_records_and_gradebook(tiny):
    with zipfile.ZipFile(tiny[1]) as zf:
        names = zf.namelist()
    assert "course/gradebook.db" in names and "course/release/tiny/adder.ipynb" in names
    assert sum(n.startswith("course/.coursekit/reference/tiny/") and n.endswith(".json") for n in names) == 2


@pytest.mark.slow
def test_notebooks_reference_full_points_hidden_details_after_publication(tiny, tmp_path):
    course, zip_path = tiny
    results, stdout = grade(zip_path, tmp_path / "t", tiny_notebooks(course, filled=True))
    tests = by_name(results)
    assert results["score"] == 3.0, results
    assert tests["adder.ipynb: test_add"]["visibility"] == "after_published"   # has hidden tests
    assert tests["squares.ipynb: test_square"]["visibility"] == "visible"       # visible checks only
    assert tests["squares.ipynb: test_square"]["output"] == "All 1 checks passed."
    manual = tests["adder.ipynb: why (written answer)"]
    assert (manual["score"], manual["max_score"], manual["output"]) == (0.0, 1.0, "graded by staff")
    assert "status" not in manual
    cache = tmp_path / "t" / "source" / "course" / ".coursekit" / "reference" / TINY
    with zipfile.ZipFile(zip_path) as zf:  # cached at build time: no record was recomputed
        shipped = {Path(n).name for n in zf.namelist() if "/.coursekit/reference/" in n and n.endswith(".json")}
    assert {p.name for p in cache.glob("*.json")} == shipped
    assert "Autograded points: 3 / 3" in results["output"]


@pytest.mark.slow
def test_notebooks_without_namespaces_run_in_the_degraded_sandbox(tiny, tmp_path):
    """The runner's opt-in reaches the kernels nbgrader's pipeline starts: graded, never as root."""
    course, zip_path = tiny
    results, _ = grade(zip_path, tmp_path / "t", tiny_notebooks(course, filled=True),
                       env={gs_run.NO_NAMESPACES_ENV: "1"})
    assert results["score"] == 3.0, results["output"]
    assert "DEGRADED" in " ".join(results["extra_data"]["instructor_notes"])


@pytest.mark.slow
def test_notebooks_untouched_release_scores_zero(tiny, tmp_path):
    course, zip_path = tiny
    results, _ = grade(zip_path, tmp_path / "t", tiny_notebooks(course, filled=False))
    assert results["score"] == 0.0
    square = by_name(results)["squares.ipynb: test_square"]
    assert square["status"] == "failed" and "three did not run" in square["output"]


@pytest.mark.slow
def test_notebooks_bad_input(tiny, tmp_path):
    course, zip_path = tiny
    nbs = tiny_notebooks(course, filled=True)
    # nothing uploaded: every test listed at 0, one line
    results, _ = grade(zip_path, tmp_path / "a")
    assert results["score"] == 0 and results["output"].startswith("No file was submitted")
    assert len(results["tests"]) == 3
    # renamed + extra file + truncated notebook + a 1 GB upload (never read)
    results, _ = grade(zip_path, tmp_path / "b", {"adder (1).ipynb": nbs["adder.ipynb"], "notes.txt": "hi",
                                                  "squares.ipynb": nbs["squares.ipynb"][:200]},
                       sparse={"huge.ipynb": 1 << 30})
    tests = by_name(results)
    assert tests["adder.ipynb: test_add"]["score"] == 2.0  # graded under its real name
    assert tests["squares.ipynb: test_square"]["score"] == 0.0
    out = results["output"]
    assert "huge.ipynb is 1.0 GB" in out and "renamed" in out and "squares.ipynb: not valid JSON" in out


# --- Gradescope's Export Submissions -> submitted/ ---------------------------------------------------------

METADATA = """\
submission_1001:
  :submitters:
  - :name: Ada Lovelace
    :sid: '5551'
    :email: ada@uni.example
  :created_at: 2026-11-20 13:45:01.123456789 -08:00
  :score: 5.0
submission_1002:
  :submitters:
  - :name: Pair One
    :sid: ''
    :email: pair.one@uni.example
  - :name: Pair Two
    :sid: '5553'
    :email: two@uni.example
  :created_at: 2026-11-21 09:00:00.000000000 +00:00
submission_1003:
  :submitters: []
"""


def test_collect_reads_a_gradescope_export(tmp_path):
    course = Course.open(make_course(tmp_path / "course"))
    export = tmp_path / "assignment_77_export.zip"
    with zipfile.ZipFile(export, "w") as zf:
        zf.writestr("assignment_77_export/submission_metadata.yml", METADATA)
        zf.writestr("assignment_77_export/submission_1001/adder.ipynb", "ada's notebook")
        zf.writestr("assignment_77_export/submission_1002/adder.ipynb", "the pair's notebook")
        zf.writestr("assignment_77_export/submission_1002/../../escape.txt", "no")
    assert is_export(export) and not is_export(tmp_path / "course" / "nbgrader_config.py")
    (course.folder("submitted", "5551", TINY)).mkdir(parents=True)  # an earlier collect
    done = subprocess.run([sys.executable, "-m", "coursekit", "--course-dir", str(course.root), "collect",
                           "--assignment", TINY, str(export)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
    assert done.returncode == 0, done.stderr
    ada = course.folder("submitted", "5551", TINY)
    assert (ada / "adder.ipynb").read_text() == "ada's notebook"
    assert (ada / "timestamp.txt").read_text() == "2026-11-20 21:45:01.123456 UTC"
    assert course.folder("submitted", "5551", f"{TINY}.previous-1").is_dir()
    for student in ("pair.one", "5553"):  # a group submission: one copy per submitter
        folder = course.folder("submitted", student, TINY)
        assert (folder / "adder.ipynb").read_text() == "the pair's notebook"
        assert (folder / "timestamp.txt").read_text() == "2026-11-21 09:00:00.000000 UTC"
    assert not (tmp_path / "escape.txt").exists() and "refused member" in done.stdout
    assert "submission_1003: no submitters listed, skipped" in done.stdout
