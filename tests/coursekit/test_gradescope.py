"""The Gradescope autograder zip, run the way Gradescope runs it.

Each case unpacks the zip into a temporary tree, mounts it at /autograder in a private mount namespace
(as root) and runs /autograder/run_autograder; every results.json goes through the one shared check,
``tests.support.gradescope.assert_reads_right`` (Gradescope's schema, status agrees with score, nothing
hidden told before publication, maximum = autograded points). Log mode uses hw6 (grade-log is fast);
notebooks mode uses the tiny fixture course. Here setup.sh is checked with `bash -n` and its --dry-run;
test_gradescope_build.py runs it for real in a fresh root file system.
"""
from __future__ import annotations

import copy
import json
import os
import re
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
from coursekit.samples import fill_answers
from coursekit.testing.notebooks import cell_by_grade_id
from coursekit.testing.tiny_course import ASSIGNMENT as TINY, make_course
from tests.support.gradescope import assert_reads_right

REPO_ROOT = Path(__file__).resolve().parents[2]
MIRROR = Path(os.environ.get("HW6_DATA_MIRROR") or next(
    (p for p in (REPO_ROOT / "data" / "names", REPO_ROOT.parent / "shared" / "data" / "names") if p.is_dir()),
    REPO_ROOT / "data" / "names"))

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
    manifest = json.loads((tree / "source" / "gradescope.json").read_text())
    assert_reads_right(results, manifest, stdout)
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
def honest_log(reference_log) -> dict:
    """The reference solution of Problem 4 trained as a student would, logged by the trusted helper (the
    session's ``reference_log``, trained once)."""
    return copy.deepcopy(reference_log)


def test_zip_follows_gradescopes_layout(log_zip):
    with zipfile.ZipFile(log_zip) as zf:
        names = set(zf.namelist())
        modes = {i.filename: (i.external_attr >> 16) for i in zf.infolist()}
        manifest = json.loads(zf.read("gradescope.json"))
        lock = zf.read("requirements.lock").decode()
    assert {"setup.sh", "run_autograder", "gradescope.json", "requirements.lock"} <= names
    assert modes["run_autograder"] & stat.S_IXUSR and modes["setup.sh"] & stat.S_IXUSR
    assert "kit/coursekit/gradescope/run.py" in names and "course/source/hw6/hw6utils/surname_log.py" in names
    assert "course/data/names/English.txt" in names
    assert manifest["mode"] == "log" and manifest["log_points"] == 5.0
    assert manifest["container"] == {"cpus": 0.5, "memory_mb": 768, "timeout_seconds": 600}
    # every package pinned with its hash, pip included; what only instructors use stays out of the image
    pins = re.findall(r"^([a-z0-9-]+)==(\S+) \\\n    --hash=sha256:[0-9a-f]{64}$", lock, flags=re.M)
    assert len(pins) == lock.count("==") and len(pins) > 50
    locked = dict(pins)
    assert locked["torch"] == "2.13.0+cpu" and "pip" in locked and locked["nbgrader"] == "0.9.6"
    assert not {"jupyterlab", "notebook", "dask", "distributed", "copydetect"} & set(locked)


def test_lock_matches_the_kits_pins():
    """The image's lock holds pyproject.toml's versions (regenerate it with coursekit.gradescope.lock)."""
    from coursekit.gradescope.build import lock_disagreements

    assert lock_disagreements() == []


def test_unknown_assignment_or_mode_is_one_clear_line(log_zip):
    course = log_zip.parents[1]
    for args, expected in ((["nope"], "assignment 'nope' not found"), (["--mode", "pdf"], "invalid choice: 'pdf'")):
        done = subprocess.run([sys.executable, "-m", "coursekit", "--course-dir", str(course), "gradescope", *args],
                              capture_output=True, text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(REPO_ROOT)})
        assert done.returncode == 2 and expected in done.stderr and "Traceback" not in done.stderr, done.stderr


def test_setup_script_installs_only_the_hash_checked_lock(log_zip, tmp_path):
    """The commands setup.sh runs (its real run is test_gradescope_build.py): no PPA, one pip run over
    the lock with hashes checked, caches cleaned, bytecode compiled, the image's own check last."""
    with zipfile.ZipFile(log_zip) as zf:
        zf.extractall(tmp_path)
    for script in ("setup.sh", "run_autograder"):
        assert subprocess.run(["bash", "-n", str(tmp_path / script)]).returncode == 0, script
    dry = subprocess.run(["bash", str(tmp_path / "setup.sh"), "--dry-run"], capture_output=True, text=True, timeout=30,
                         env={"PATH": os.environ["PATH"]})
    assert dry.returncode == 0, dry.stderr
    lines = dry.stdout.splitlines()
    assert not any("add-apt-repository" in line or "ppa:" in line for line in lines)
    [pip] = [line for line in lines if " pip install " in line]
    for flag in ("--require-hashes", "--no-deps", "--only-binary=:all:", "--index-url https://pypi.org/simple",
                 "--extra-index-url https://download.pytorch.org/whl/cpu", f"-r {tmp_path}/requirements.lock"):
        assert flag in pip, flag
    assert "apt-get clean" in lines and any(line.startswith("rm -rf /var/lib/apt/lists/") for line in lines)
    assert any(" -m compileall " in line for line in lines)  # runs never write bytecode: the image holds it
    assert lines[-1].endswith("-m coursekit.gradescope.run --check-image")


def test_reference_log_earns_full_points(log_zip, honest_log, tmp_path):
    results, stdout = grade(log_zip, tmp_path / "t", {"submission_log.json": json.dumps(honest_log)})
    assert results["score"] == 5.0, results
    assert all(t["status"] == "passed" for t in results["tests"]), results["tests"]
    assert [t["number"] for t in results["tests"]] == ["1", "2", "3", "4", "5"]
    accuracy = criterion(results, "accuracy")
    assert accuracy["score"] == accuracy["max_score"] == 5.0 and "Recomputed evaluation accuracy" in accuracy["output"]
    assert "leaderboard" not in results  # removed: the README's Gradescope section says why
    notes = " ".join(results["extra_data"]["instructor_notes"])
    assert "no student code runs" in notes and "timeout 600 s" in notes
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
    assert time.monotonic() - started < 120  # a shared machine: the point is that nothing big is read
    assert results["score"] == 0.0
    assert reason in results["output"], results["output"]
    assert len(results["output"].splitlines()) <= 2
    assert [t["name"] for t in results["tests"]] == [title for _, title in gs_run.LOG_CRITERIA]
    assert all(t["score"] == 0 for t in results["tests"])
    assert [t["status"] for t in results["tests"]] == ["failed"] * 5  # nothing "passed" that was not checked
    assert reason in criterion(results, failed)["output"]  # the row that failed says why
    assert [t["output"].split(":")[0] for t in results["tests"][1:]] == ["Not checked", "Not checked", "Not computed",
                                                                          "Not checked"]


def imported_modules(stdout: str) -> list[str]:
    """The modules Python's import log (PYTHONPROFILEIMPORTTIME) names in a run's output, once per import."""
    return [line.rsplit("|", 1)[1].strip() for line in stdout.splitlines() if line.startswith("import time:")]


def test_log_mode_imports_no_nbgrader_and_refuses_a_broken_log_before_torch(log_zip, honest_log, tmp_path):
    """Log mode runs no notebook, so neither the process that guards the deadline nor the grading child
    imports nbgrader (about 3 CPU-seconds per process, paid by every submission). Python's own import log
    (PYTHONPROFILEIMPORTTIME, in the run's output) says which modules each process imported."""
    results, stdout = grade(log_zip, tmp_path / "t", {"submission_log.json": json.dumps(honest_log)},
                            env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert results["score"] == 5.0, results["output"]
    imported = imported_modules(stdout)
    assert imported.count("coursekit.gradescope.results") == 2 and "coursekit.gradelog" in imported  # both processes
    assert not [name for name in imported if name.split(".")[0] == "nbgrader"]
    # a log refused for its JSON is answered before the data set and torch are loaded
    results, stdout = grade(log_zip, tmp_path / "t2", {"submission_log.json": '{"format_version": 2, "hist'},
                            env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert "submission_log.json is not valid JSON" in results["output"], results["output"]
    imported = imported_modules(stdout)
    assert "coursekit.gradelog" in imported and "torch" not in imported


def test_renamed_log_and_extra_file_are_graded_with_a_note(log_zip, honest_log, tmp_path):
    results, _ = grade(log_zip, tmp_path / "t", {"submission_log (1).json": json.dumps(honest_log), "notes.txt": "hi"})
    assert results["score"] == 5.0
    assert "submission_log (1).json was graded as submission_log.json" in results["output"]
    assert "Ignored other uploaded files: notes.txt" in results["output"]


def test_results_are_written_even_when_the_kit_breaks(log_zip, honest_log, tmp_path):
    # the manifest is gone: the kit starts but cannot work
    emulate.unpack(log_zip, tmp_path / "a")
    (tmp_path / "a" / "source" / "gradescope.json").unlink()
    results, stdout = emulate.run(tmp_path / "a")
    assert_reads_right(results, None, stdout)
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


def student_view(results: dict) -> dict:
    """What a student sees before grades are published: every field not waiting for publication."""
    waits = results.get("visibility") in ("after_published", "hidden")
    return {"score": None if waits else results["score"], "output": None if waits else results["output"],
            "tests": [{k: v for k, v in t.items()} for t in results["tests"] if t["visibility"] == "visible"]}


@pytest.mark.slow
def test_notebooks_reference_full_points_hidden_details_after_publication(tiny, tmp_path):
    course, zip_path = tiny
    results, stdout = grade(zip_path, tmp_path / "t", tiny_notebooks(course, filled=True))
    tests = by_name(results)
    assert results["score"] == 3.0, results
    assert set(tests) == {"adder: add", "squares: square"}  # the written answer is not an autograder row
    assert tests["adder: add"]["visibility"] == "after_published"   # has hidden tests
    assert tests["squares: square"]["visibility"] == "visible"       # visible checks only
    assert tests["squares: square"]["output"] == "All 1 checks passed."
    assert [tests["adder: add"]["number"], tests["squares: square"]["number"]] == ["1.1", "2.1"]
    assert "Written answers (1 points) are graded by staff" in results["output"] and "adder: why (1)" in results["output"]
    cache = tmp_path / "t" / "source" / "course" / ".coursekit" / "reference" / TINY
    with zipfile.ZipFile(zip_path) as zf:  # cached at build time: no record was recomputed
        shipped = {Path(n).name for n in zf.namelist() if "/.coursekit/reference/" in n and n.endswith(".json")}
    assert {p.name for p in cache.glob("*.json")} == shipped
    # a hidden row: the total and the output wait for publication with it
    assert results["visibility"] == "after_published" and "3 / 3" not in results["output"]
    notes = " ".join(results["extra_data"]["instructor_notes"])
    uid = int(re.search(r"uid (\d+)", notes).group(1))
    assert uid in sandbox.UID_RANGE and "timeout 1200 s" in notes


@pytest.mark.slow
def test_notebooks_hidden_result_is_not_told_before_publication(tiny, tmp_path):
    """Issue 19 item 6: a bug only a hidden check sees changes nothing a student sees before publication."""
    course, zip_path = tiny
    honest = tiny_notebooks(course, filled=True)
    nb = nbformat.reads(honest["adder.ipynb"].decode(), as_version=4)
    for cell in nb.cells:
        if "def add(a, b):" in cell.source:
            cell.source = "def add(a, b):\n    return 3 if (a, b) == (1, 2) else 0"
    buggy = {**honest, "adder.ipynb": nbformat.writes(nb).encode()}
    right, _ = grade(zip_path, tmp_path / "a", honest)
    wrong, _ = grade(zip_path, tmp_path / "b", buggy)
    assert wrong["score"] < right["score"]  # the hidden check did see it
    assert student_view(wrong) == student_view(right)


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
    square = by_name(results)["squares: square"]
    assert square["status"] == "failed" and "three did not run" in square["output"]


@pytest.mark.slow
def test_notebooks_bad_input(tiny, tmp_path):
    course, zip_path = tiny
    nbs = tiny_notebooks(course, filled=True)
    # nothing uploaded: every test listed at 0, one line
    results, _ = grade(zip_path, tmp_path / "a")
    assert results["score"] == 0 and results["output"].startswith("No file was submitted")
    assert len(results["tests"]) == 2 and all(t["status"] == "failed" for t in results["tests"])
    # renamed + extra file + truncated notebook + a 1 GB upload (never read)
    results, _ = grade(zip_path, tmp_path / "b", {"adder (1).ipynb": nbs["adder.ipynb"], "notes.txt": "hi",
                                                  "squares.ipynb": nbs["squares.ipynb"][:200]},
                       sparse={"huge.ipynb": 1 << 30})
    tests = by_name(results)
    assert tests["adder: add"]["score"] == 2.0  # graded under its real name
    assert tests["squares: square"]["score"] == 0.0
    out = results["output"]
    assert "huge.ipynb is 1.0 GB" in out and "renamed" in out and "squares.ipynb: not valid JSON" in out


@pytest.mark.slow
def test_notebooks_run_ends_inside_the_timeout_with_an_answer(tiny, tmp_path):
    """A notebook that never ends: run_autograder answers (score 0, one line) before Gradescope's timeout."""
    course, zip_path = tiny
    nbs = tiny_notebooks(course, filled=True)
    nb = nbformat.reads(nbs["squares.ipynb"].decode(), as_version=4)
    for cell in nb.cells:
        if "def square(x):" in cell.source:
            cell.source = "import time\nwhile True:\n    time.sleep(1)"
    started = time.monotonic()
    results, _ = grade(zip_path, tmp_path / "t", {**nbs, "squares.ipynb": nbformat.writes(nb).encode()},
                       env={gs_run.TIMEOUT_ENV: "100"})  # the smallest grading budget (MIN_BUDGET)
    assert time.monotonic() - started < 100
    assert by_name(results)["squares: square"]["score"] == 0 and by_name(results)["squares: square"]["status"] == "failed"
    assert results["output"]  # one reason, whether the budget stopped the notebook or the deadline the run


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


@pytest.mark.parametrize("mode", ["ungraded", "checked", "required"])
def test_the_manifest_has_the_points_the_release_gets_without_a_release(mode):
    """The zip's rows and maximum follow the optional-parts setting, even when it is built before any
    release was generated (a bench built one from a bare source folder and counted 68 points, not 56)."""
    from coursekit.gradescope.build import graded_cells
    from coursekit.notebook import grade_id, points
    from coursekit.optional import apply_optional_parts

    def graded(nb):
        return [c for c in nb.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade")]

    source = REPO_ROOT / "source" / "hw6"
    _, cells = graded_cells(source, mode)
    expected = {grade_id(c): points(c) for path in sorted(source.glob("*.ipynb"))
                for c in graded(apply_optional_parts(nbformat.read(str(path), as_version=4), mode))}
    assert {c["grade_id"]: c["points"] for c in cells} == expected
    released = {grade_id(c): points(c) for path in sorted((REPO_ROOT / "release" / "hw6").glob("*.ipynb"))
                for c in graded(nbformat.read(str(path), as_version=4))}
    auto = sum(c["points"] for c in cells if c["kind"] == "auto")
    if mode == "required":
        assert auto > sum(released[c["grade_id"]] for c in cells if c["kind"] == "auto")
    else:  # the committed release is generated with the default setting
        assert {c["grade_id"]: c["points"] for c in cells} == released and auto == 56
