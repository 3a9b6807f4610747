"""What ``run_autograder`` runs inside Gradescope's container, once per submission.

Layout (Gradescope's contract): this zip unpacked in ``/autograder/source`` (``gradescope.json`` says
the mode, ``course/`` is the course folder built by ``coursekit gradescope``), the student's files in
``/autograder/submission``, the answer in ``/autograder/results/results.json``.

Whatever happens, a valid ``results.json`` is written: a submission that cannot be graded scores 0
with one line the student understands; an error of the grader itself scores 0 with a generic line for
the student and the details for staff (``extra_data`` and stdout, both hidden from students).
Student code only ever runs through ``coursekit.sandbox``, never as root.
"""
from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any

from coursekit.gradescope.results import AFTER_PUBLISHED, Results, Test, failure, write
from coursekit.sandbox import machine_memory_bytes

ROOT = Path(os.environ.get("COURSEKIT_AUTOGRADER_ROOT", "/autograder"))
MANIFEST = "gradescope.json"
PUBLIC = "public"  # /autograder/public: read-only copies of what sandboxed code may read (the data set)
PUBLIC_ENV = "COURSEKIT_PUBLIC_DIR"  # read by the nbgrader_config.py block the build appends
NO_NAMESPACES_ENV = "COURSEKIT_SANDBOX_NO_NAMESPACES"  # behave as if namespaces failed (the sandbox reads it too)
STUDENT = "student"  # one submission per container
INTERNAL_ERROR = ("The autograder hit an internal problem and could not grade this submission; the course "
                  "staff have the details and will grade it. Your score is 0 until then.")
NO_SANDBOX = ("Your submission could not be run safely on this grading machine, so it was not autograded; "
              "the course staff will grade it. Your score is 0 until then.")


# --- the container ---------------------------------------------------------------------------------

def _debris(rel: Path) -> bool:
    return any(part.startswith(".") or part in ("__MACOSX", "__pycache__") for part in rel.parts)


def submitted_files(folder: Path) -> list[Path]:
    """Regular files of the submission (no links, hard links, special files, macOS or editor debris), sorted."""
    return [path for path, kind in _entries(folder) if kind is None]


def refused_entries(folder: Path) -> list[str]:
    """One line per link, hard link or special file of the submission: never followed, read or copied."""
    return [f"{path.name}: {kind}, not read (upload the file itself)." for path, kind in _entries(folder) if kind]


def _entries(folder: Path) -> list[tuple[Path, str | None]]:
    """(path, None or the kind of entry that may not be used), judged by ``lstat`` (links never followed)."""
    from coursekit.entry_kinds import odd_kind  # the one rule: links, hard links, special files

    if not folder.is_dir() or folder.is_symlink():
        return []
    out = []
    for path in sorted(folder.rglob("*")):  # rglob does not descend into linked folders
        if _debris(path.relative_to(folder)):
            continue
        info = path.lstat()
        if stat.S_ISDIR(info.st_mode):
            continue
        out.append((path, odd_kind(info.st_mode, info.st_nlink)))
    return out


def read_regular(path: Path, max_bytes: int) -> bytes | str:
    """The bytes of a regular file with one name, read by descriptor (never through a link, never blocking
    on a FIFO), or a line saying why it was not read."""
    from coursekit.entry_kinds import odd_kind

    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError:
        return f"{path.name}: could not be opened as a plain file; it was not read."
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(fd)
        kind = odd_kind(info.st_mode, info.st_nlink)
        if kind:
            return f"{path.name}: {kind}, not read (upload the file itself)."
        if info.st_size > max_bytes:
            return (f"{path.name} is {human_size(info.st_size)}, over the {human_size(max_bytes)} limit per file; "
                    "it was not read.")
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        return f"{path.name} grew while it was read; it was not read."
    return data


def human_size(n: int) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} bytes"


def lock_down(root: Path, course_dir: Path) -> Path:
    """Make the instructor's files and the results root-only; publish what sandboxed code may read.

    Returns the public folder. The course's ``c.SandboxedExecute.read_only`` folders (the data set) are copied to
    ``/autograder/public`` (world-readable), because ``/autograder/source`` is closed to the sandbox user.
    """
    public = root / PUBLIC
    for path in (root / "source", root / "results", root / "submission"):
        path.mkdir(parents=True, exist_ok=True)
        os.chmod(path, 0o700)
    data = course_dir / "data"
    if data.is_dir() and not (public / "data").is_dir():
        shutil.copytree(data, public / "data", symlinks=False)
    public.mkdir(exist_ok=True)
    for folder, dirs, files in os.walk(public):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)
    os.environ[PUBLIC_ENV] = str(public)
    return public


def namespaces_work() -> bool:
    """Whether root can create the namespaces the full sandbox uses (probed by running ``true`` in them)."""
    if os.environ.get(NO_NAMESPACES_ENV, "").strip() not in ("", "0"):
        return False
    try:
        probe = subprocess.run(["unshare", "--net", "--mount", "--pid", "--fork", "--mount-proc", "true"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return probe.returncode == 0


def choose_isolation() -> tuple[str | None, str]:
    """("full" | "degraded" | None, a line for staff). None: no safe way to run student code here.

    Opts in to the sandbox's degraded mode (separate unprivileged uid and rlimits, no namespaces), which
    the sandbox uses only when namespaces cannot be created; the instructor's folders are closed to that
    uid by ``lock_down``. Without a degraded mode, a container without namespaces grades nothing.
    """
    from coursekit import sandbox

    opt_in = getattr(sandbox, "ALLOW_DEGRADED_ENV", None)
    if opt_in:
        os.environ[opt_in] = "1"
    try:
        kind = sandbox.check_available()
    except sandbox.SandboxUnavailable as err:
        return None, f"sandbox unavailable ({err}); student code was not run"
    if kind is None:  # a sandbox without modes: it needs the namespaces
        kind = "full" if namespaces_work() else None
    describe = getattr(sandbox, "mode", None)
    # the uid this process claims is the one its kernels run as (SandboxedExecute reuses a claimed uid)
    detail = describe(sandbox.claim_uid()) if callable(describe) and kind else ""
    if kind == "full":
        return "full", f"sandbox: full ({detail or 'unprivileged uid, network/mount/PID namespaces, rlimits'})"
    if kind == "degraded":
        return "degraded", (f"sandbox: DEGRADED, no namespaces in this container ({detail}); "
                            "/autograder/source, /autograder/results and /autograder/submission are root-only (700)")
    return None, ("namespaces cannot be created in this container and this kit's sandbox has no degraded "
                  "mode; student code was not run")


# --- log mode ----------------------------------------------------------------------------------------

LOG_CRITERIA = (
    ("file", "Log file: valid JSON in the submission-log format"),
    ("data", "Data and split: the course's surname data, split and training length"),
    ("model", "Model: your architecture rebuilds from the log and runs on the evaluation names"),
    ("accuracy", "Accuracy recomputed from your logged weights"),
    ("consistency", "Reported accuracy matches the recomputed one"),
)
MODEL_WORDS = ("weight", "model")


def pick_log(files: list[Path], log_name: str, notebook: str) -> tuple[Path | None, list[str]]:
    """The file to grade as the log and notes for the student (renamed or extra files), or (None, [reason])."""
    if not files:
        return None, [f"No file was submitted: upload {log_name} (written by the last cells of {notebook})."]
    exact = [f for f in files if f.name == log_name]
    jsons = [f for f in files if f.suffix.lower() == ".json"]
    chosen = exact[0] if exact else (jsons[0] if len(jsons) == 1 else None)
    if chosen is None:
        names = ", ".join(f.name for f in files[:5])
        if any(f.suffix == ".ipynb" for f in files) and not jsons:
            return None, [f"You uploaded a notebook ({names}); this assignment grades {log_name}, the file "
                          f"the last cells of {notebook} write next to it. Upload that file."]
        return None, [f"No {log_name} found among the uploaded files ({names}); upload {log_name}."]
    notes = [] if chosen.name == log_name else [f"{chosen.name} was graded as {log_name} (it was renamed)."]
    extras = [f.name for f in files if f != chosen]
    if extras:
        notes.append(f"Ignored other uploaded files: {', '.join(extras[:5])}{' ...' if len(extras) > 5 else ''}.")
    return chosen, notes


def failed_criterion(result: dict[str, Any], tolerance: float) -> str | None:
    """Which criterion stopped the log (grade-log stops at the first failure), from the result's numbers."""
    if result.get("reported_accuracy") is None:
        return "file" if result.get("reasons") else None
    if result.get("accuracy") is None:
        first = (result.get("reasons") or [""])[0].lower()
        return "model" if any(w in first for w in MODEL_WORDS) else "data"
    if abs(result["accuracy"] - result["reported_accuracy"]) > tolerance:
        return "consistency"
    return "accuracy" if result["score"] < result["max_score"] else None


def log_tests(result: dict[str, Any], tolerance: float, shown_path: str, name: str) -> list[Test]:
    """One Gradescope test per criterion; only the accuracy carries points (as in grade-log)."""
    reasons = [r.replace(shown_path, name) for r in result.get("reasons", [])]
    failed = failed_criterion(result, tolerance)
    order = [key for key, _ in LOG_CRITERIA]
    stop = order.index(failed) if failed else len(order)
    accuracy, reported = result.get("accuracy"), result.get("reported_accuracy")
    tests = []
    for index, (key, title) in enumerate(LOG_CRITERIA, start=0):
        points = float(result["max_score"]) if key == "accuracy" else 0.0
        if key == "accuracy":
            score = float(result["score"]) if failed != "consistency" else 0.0
            if accuracy is None:
                text = "Not computed: an earlier check failed."
            else:
                text = f"Recomputed evaluation accuracy: {accuracy:.2f}% ({score:g} of {points:g} points)."
                if failed == "accuracy" and reasons:
                    text += "\n" + reasons[0]
                if failed == "consistency":
                    text += "\nNo points: the accuracy your log reports does not match (see below)."
            tests.append(Test(title, score, points, text, number=f"{index + 1}",
                              passed=accuracy is not None and failed not in ("accuracy", "consistency")))
            continue
        if index < stop:
            text, passed = "Passed.", True
            if key == "consistency" and accuracy is not None and reported is not None:
                text = f"Passed: your log reports {reported:.2f}%, recomputed {accuracy:.2f}%."
        elif index == stop:
            text, passed = "\n".join(reasons) or "Failed.", False
        else:
            text, passed = "Not checked: an earlier check failed.", False
        tests.append(Test(title, 0.0, points, text, passed=passed, number=f"{index + 1}"))
    return tests


def unread_log_tests(reason: str, max_score: float) -> list[Test]:
    """The rows of a log that was not read at all (nothing uploaded, too big, ...): the file row fails."""
    return log_tests({"score": 0.0, "max_score": max_score, "reasons": [reason], "accuracy": None,
                      "reported_accuracy": None}, 0.0, "", "")


def grade_log(root: Path, manifest: dict[str, Any], course_dir: Path, public: Path) -> Results:
    from coursekit import gradelog

    log_name = manifest.get("log_name", "submission_log.json")
    notebook = manifest.get("log_notebook", "the notebook")
    files = submitted_files(root / "submission")
    path, notes = pick_log(files, log_name, notebook)
    points = float(manifest.get("log_points", 0.0))
    if path is None:
        return failure(notes[0], tests=unread_log_tests(notes[0], points))
    max_bytes = int(manifest.get("max_log_bytes", gradelog.DEFAULT_MAX_BYTES))
    size = path.stat().st_size
    if size > max_bytes:  # never read a huge upload
        line = (f"{path.name} is {human_size(size)}, over the {human_size(max_bytes)} limit for a "
                f"submission log, so it was not read: upload the file {notebook} writes.")
        return failure(line, tests=unread_log_tests(line, points))
    # the log is data: no student code runs in log mode (grade-log rebuilds the model with instructor code)
    line = "log mode: no student code runs (grade-log recomputes the accuracy from the logged weights)"
    data_dir = public / "data" / "names"
    try:
        result = gradelog.grade(path, course=course_dir, data_dir=str(data_dir) if data_dir.is_dir() else None,
                                max_bytes=max_bytes)
    except gradelog.GraderError as err:
        return failure(INTERNAL_ERROR, f"grade-log could not run: {err}",
                       tests=unread_log_tests("Not checked: the autograder could not run.", points))
    tolerance = float(getattr(gradelog, "ACCURACY_TOLERANCE", 0.1))
    tests = log_tests(result, tolerance, str(path), path.name)
    lines = [*notes, f"Score: {result['score']:g} / {result['max_score']:g}."]
    lines += [r.replace(str(path), path.name) for r in result.get("reasons", [])]
    return Results(tests=tests, student_lines=lines, instructor_lines=[line, f"grade-log result: {json.dumps(result)}"])


# --- notebooks mode -----------------------------------------------------------------------------------

def cell_message(nb_path: Path, grade_id: str, limit: int = 1500) -> str:
    """What the judged notebook says about one test cell (pass line, partial credit, or the failed checks)."""
    try:
        nb = json.loads(nb_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "Not run: the notebook could not be graded."
    for cell in nb.get("cells", []):
        if cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") != grade_id:
            continue
        parts = []
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                parts.append(str(out.get("evalue", "failed")))
            elif out.get("output_type") == "stream":
                parts.append("".join(out.get("text", "")).strip())
        return ("\n".join(p for p in parts if p) or "No output.")[:limit]
    return "Not run: this cell was not found in your notebook."


def stage_submission(root: Path, course, assignment: str, max_bytes: int) -> tuple[list[str], int]:
    """Copy the uploaded files into submitted/student/<assignment>/; (reasons, files copied)."""
    target = course.folder("submitted", STUDENT, assignment)
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    reasons, copied = refused_entries(root / "submission"), 0
    for path in submitted_files(root / "submission"):
        if (target / path.name).exists():
            reasons.append(f"{path.name} was uploaded twice; only the first copy was graded.")
            continue
        data = read_regular(path, max_bytes)  # by descriptor: the entry may have changed since it was listed
        if isinstance(data, str):
            reasons.append(data)
            continue
        (target / path.name).write_bytes(data)
        copied += 1
    created = _submission_time(root)
    if created:
        (target / "timestamp.txt").write_text(created)
    return reasons, copied


def _submission_time(root: Path) -> str | None:
    try:
        meta = json.loads((root / "submission_metadata.json").read_text(encoding="utf-8"))
        return str(meta["created_at"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def notebook_tests(course, assignment: str, manifest: dict[str, Any], graded: bool) -> list[Test]:
    """One row per autograded cell, named and numbered as the homework's part, from the gradebook.

    Written answers are not rows (they are graded in Gradescope's own questions; ``written_answers``
    lists them once). A cell that did not run is "failed" whatever its points; an optional part that
    carries no points says so.
    """
    from nbgrader.api import Gradebook, MissingEntry

    from coursekit.optional import NOT_RUN_VERDICT

    scores: dict[tuple[str, str], float] = {}
    if graded:
        with Gradebook(course.db_url, course.course_id) as gb:
            try:
                for nb in gb.find_submission(assignment, STUDENT).notebooks:
                    for grade in nb.grades:
                        scores[(nb.name, grade.name)] = float(grade.score or 0.0)
            except MissingEntry:
                pass
    tests = []
    for cell in manifest["cells"]:
        if cell["kind"] != "auto":
            continue
        name, gid, points = cell["notebook"], cell["grade_id"], float(cell["points"])
        title = cell.get("title") or f"{name}.ipynb: {gid}"
        judged = course.folder("autograded", STUDENT, assignment, f"{name}.ipynb")
        ran = graded and judged.is_file()
        message = cell_message(judged, gid) if ran else "Not run: see the message at the top."
        passed = ran and message.startswith("All ") and " checks passed" in message.splitlines()[0]
        if cell.get("optional") and points == 0 and message != NOT_RUN_VERDICT.strip():  # the title says so too
            message = "Optional, not counted. " + message  # (build.graded_cells); a part not run says it itself
        visibility = AFTER_PUBLISHED if cell["hidden"] else "visible"
        tests.append(Test(title, scores.get((name, gid), 0.0), points, message, visibility,
                          passed=passed if points == 0 else ran, number=cell.get("number", "")))
    return tests


def written_answers(manifest: dict[str, Any]) -> str:
    """One line naming the written answers, which staff grade in Gradescope's manually graded questions."""
    manual = [c for c in manifest["cells"] if c["kind"] == "manual" and float(c["points"]) > 0]
    if not manual:
        return ""
    names = "; ".join(f"{c.get('title') or c['grade_id']} ({float(c['points']):g})" for c in manual)
    return (f"Written answers ({sum(float(c['points']) for c in manual):g} points) are graded by staff in "
            f"Gradescope's manually graded questions, not here: {names}.")


def grade_notebooks(root: Path, manifest: dict[str, Any], course_dir: Path) -> Results:
    from coursekit.course import Course, CourseError
    from coursekit.grading import autograde

    course, assignment = Course.open(course_dir), manifest["assignment"]
    reasons, copied = stage_submission(root, course, assignment, int(manifest.get("max_upload_bytes", 50 << 20)))
    expected = ", ".join(f"{n}.ipynb" for n in manifest["notebooks"])
    written = written_answers(manifest)

    def failed(line: str, staff: str = "") -> Results:
        results = failure(line, staff, tests=notebook_tests(course, assignment, manifest, graded=False))
        results.student_lines += [written] if written else []
        return results

    if copied == 0:
        return failed(reasons[0] if reasons else f"No file was submitted: upload the notebooks ({expected}).")
    mode, iso_line = choose_isolation()
    if mode is None:
        return failed(NO_SANDBOX, iso_line)
    try:
        [result] = autograde(course, assignment, [STUDENT], sandboxed=True)
    except CourseError as err:
        return failed(INTERNAL_ERROR, f"autograde failed: {err}")
    tests = notebook_tests(course, assignment, manifest, graded=True)
    results = Results(tests=tests, instructor_lines=[iso_line, f"autograde status: {result.status}"])
    if results.waits_for_publication:  # the total would tell the hidden rows' results: it waits with them
        lines = ["Rows marked hidden, and your total, are shown once grades are published; the visible rows "
                 "show their results now."]
    else:
        lines = [f"Autograded points: {results.score:g} / {results.max_score:g}."]
    results.student_lines = [*lines, *([written] if written else []), *reasons, *result.reasons]
    return results


# --- entry point ----------------------------------------------------------------------------------------

DEADLINE_MARGIN = 60.0  # seconds kept, inside Gradescope's timeout, to write the answer after a stop
START_MARGIN = 30.0  # seconds the grading process may take to start and to save what it graded
MIN_BUDGET = 10.0  # the grading budget of a timeout too short for both margins
TIMEOUT_ENV = "COURSEKIT_GRADESCOPE_TIMEOUT"  # seconds; default: the manifest's (the README's per mode)
BUDGET_ENV = "COURSEKIT_GRADESCOPE_BUDGET"  # read by the nbgrader_config.py block: the grading budget


def grade_submission(root: Path) -> Results:
    manifest = json.loads((root / "source" / MANIFEST).read_text(encoding="utf-8"))
    course_dir = root / "source" / "course"
    public = lock_down(root, course_dir)
    if manifest["mode"] == "log":
        return grade_log(root, manifest, course_dir, public)
    return grade_notebooks(root, manifest, course_dir)


def _timeout(root: Path) -> float:
    if os.environ.get(TIMEOUT_ENV, "").strip():
        return float(os.environ[TIMEOUT_ENV])
    try:
        manifest = json.loads((root / "source" / MANIFEST).read_text(encoding="utf-8"))
        return float(manifest["container"]["timeout_seconds"])
    except (OSError, ValueError, KeyError, TypeError):
        return 600.0  # Gradescope's default


def unrun_tests(root: Path) -> list[Test]:
    """Every row of this zip's results, at 0 and not run (the answer when grading was stopped)."""
    try:
        manifest = json.loads((root / "source" / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    if manifest.get("mode") == "log":
        return unread_log_tests("Not checked: grading was stopped at the time limit.", float(manifest.get("log_points", 0)))
    return [Test(c.get("title") or f"{c['notebook']}.ipynb: {c['grade_id']}", 0.0, float(c["points"]),
                 "Not run: grading was stopped at the time limit.", AFTER_PUBLISHED if c["hidden"] else "visible",
                 passed=False, number=c.get("number", ""))
            for c in manifest.get("cells", []) if c["kind"] == "auto"]


def _grade_to(root: Path, out: Path) -> int:
    """The child's part: grade, write the results (as JSON, not yet checked) to ``out``."""
    try:
        results = grade_submission(root)
    except BaseException as err:  # noqa: BLE001 - the parent still needs an answer
        traceback.print_exc(file=sys.stdout)
        results = failure(INTERNAL_ERROR, f"internal error: {err.__class__.__name__}: {str(err)[:500]}")
    for line in results.instructor_lines:
        print(f"[staff] {line}", flush=True)
    out.write_text(json.dumps({"results": results.as_json()}), encoding="utf-8")
    return 0


def main(root: Path = ROOT) -> int:
    """Grade in a child process and answer Gradescope before its timeout, whatever the child does."""
    started = time.monotonic()
    target = root / "results" / "results.json"
    timeout = _timeout(root)
    budget = max(timeout - DEADLINE_MARGIN - START_MARGIN, MIN_BUDGET)  # grading stops notebooks itself in time
    memory = machine_memory_bytes()  # the container's cgroup limit where it has one; kernels get no more
    staff = [f"container: memory limit {human_size(memory)}, timeout {timeout:.0f} s, "
             f"grading budget {budget:.0f} s"]
    answer = root / "results" / ".child.json"
    env = {**os.environ, BUDGET_ENV: str(int(budget)), "TQDM_DISABLE": "1"}
    child = subprocess.Popen([sys.executable, "-m", "coursekit.gradescope.run", "--grade-to", str(answer)],
                             env=env, start_new_session=True)
    try:
        child.wait(timeout=max(timeout - DEADLINE_MARGIN - (time.monotonic() - started), 1.0))
        data = json.loads(answer.read_text(encoding="utf-8"))["results"]
    except subprocess.TimeoutExpired:
        _stop(child)
        staff.append(f"grading did not finish within {timeout - DEADLINE_MARGIN:.0f} s; stopped")
        data = failure(f"Grading did not finish within the time limit ({timeout / 60:.0f} minutes), so nothing was "
                       "scored: a cell that runs very long or never ends (an endless loop, training for too "
                       "long) is the usual cause. Your score is 0; fix that cell and upload again.",
                       tests=unrun_tests(root)).as_json()
    except (OSError, ValueError, KeyError) as err:
        staff.append(f"the grading process ended (exit {child.returncode}) without an answer: {err}")
        data = failure(INTERNAL_ERROR).as_json()
    data["execution_time"] = round(time.monotonic() - started, 3)
    data.setdefault("extra_data", {}).setdefault("instructor_notes", [])[:0] = staff
    for line in staff:
        print(f"[staff] {line}")
    try:
        write(data, target)
    except BaseException as err:  # noqa: BLE001 - e.g. a result the schema refuses: still answer Gradescope
        print(f"[staff] results did not validate ({err.__class__.__name__}: {str(err)[:300]}); wrote a fallback")
        write(failure(INTERNAL_ERROR, f"results did not validate: {str(err)[:300]}"), target)
    answer.unlink(missing_ok=True)
    return 0


def _stop(child: subprocess.Popen) -> None:
    """End the grading process and its kernels (they run as sandbox uids in sessions of their own)."""
    import signal

    try:
        os.killpg(child.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    child.wait()
    from coursekit import sandbox

    for uid in getattr(sandbox, "UID_RANGE", ()):  # only uids whose lock nobody holds: the child's is free now
        try:
            handle = open(Path(sandbox.SCRATCH_ROOT or "/tmp") / "uids" / f"uid-{uid}.lock", "w")
        except OSError:
            continue
        import fcntl

        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        sandbox.kill_user_processes(uid)
        handle.close()


def check_image() -> int:
    """setup.sh's last step: the kit imports with what grading needs, and the sandbox can run a kernel's
    imports as an unprivileged uid (degraded mode allowed: Docker's default capabilities have no namespaces)."""
    import importlib
    import tempfile

    for module in ("coursekit.grading", "coursekit.gradelog", "nbgrader.converters", "nbclient", "ipykernel",
                   "torch", "numpy", "matplotlib", "ipywidgets", "jsonschema", "yaml", "latex2mathml"):
        importlib.import_module(module)
    from coursekit import sandbox

    os.environ[sandbox.ALLOW_DEGRADED_ENV] = "1"
    kind = sandbox.check_available()
    uid = sandbox.claim_uid()
    with tempfile.TemporaryDirectory() as work:
        done = sandbox.run([sys.executable, "-c", "import torch, numpy, matplotlib, ipykernel; "
                            "print(torch.__version__, numpy.__version__)"], workdir=work, uid=uid,
                           limits=sandbox.Limits(cpu_seconds=120, wall_seconds=300, memory_bytes=8 << 30))
    if done.returncode != 0:
        print(f"the sandbox could not run a kernel's imports: {done.killed_reason or done.returncode}\n"
              f"{done.stderr.decode(errors='replace')[-2000:]}", file=sys.stderr)
        return 1
    import torch

    print(f"image ready: torch {torch.__version__}, sandbox {kind} as uid {uid}: "
          f"{done.stdout.decode().strip()}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--check-image"]:
        sys.exit(check_image())
    if sys.argv[1:2] == ["--grade-to"]:
        sys.exit(_grade_to(ROOT, Path(sys.argv[2])))
    sys.exit(main())
