"""Fail closed at the two doors test_fail_closed.py does not walk: Gradescope's notebooks mode (the zip
run in an emulated container) and a cluster worker (a TLS scheduler and `coursekit worker`s), on the
tiny course.

* links, hard links and FIFOs in a submission: nothing they point at is read, copied, given to a kernel
  or put in the output; the honest files beside them are graded as usual;
* malformed nbgrader metadata harms only its own notebook: 0 for it with a reason, the run goes on.
  Every wrong JSON type in every field (test_fail_closed.py's matrix less the values of the expected
  type: 107 cases), five named cases (a list grade_id, a string points, a dict solution, a null
  schema_version, a huge int) and, at Gradescope, one notebook with nine types in nine fields at once.
  At the cluster door each case is a student of one grading run (with the matrix's 19 values of the
  expected type, graded like any notebook); at Gradescope (one container run per
  upload) each case is a notebook of its own in ONE upload of a 115-notebook assignment (copies of
  adder), beside the honest adder and squares.
"""
from __future__ import annotations

import copy
import json
import os
import pickle
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import nbformat
import pytest

from coursekit import grading
from coursekit.course import Course
from coursekit.gradescope import emulate
from coursekit.gradescope.build import build
from coursekit.gradescope.run import INTERNAL_ERROR
from coursekit.grading import autograde
from coursekit.preprocessors import sandboxed_execute
from coursekit.testing.tiny_course import ASSIGNMENT, make_course
from tests.coursekit.test_cluster import Cluster, give_certificates
from tests.coursekit.test_doors import _notebooks, grades, submit
from tests.coursekit.test_fail_closed import SECRET, malformed, plausible, variants
from tests.coursekit.test_gradescope import by_name, tiny, tiny_notebooks  # noqa: F401 - tiny is a fixture
from tests.support.gradescope import assert_reads_right

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("fail_closed_more_doors")]

MALFORMED = {"list-grade-id": ("grade_id", ["a", "b"]), "string-points": ("points", "2"),
             "dict-solution": ("solution", {"k": 1}), "null-schema-version": ("schema_version", None),
             "huge-int-points": ("points", 10 ** 400)}
REFERENCE_MARKS = (b"REFERENCE-ANSWER", b"hidden-test-marker")


def root_only_secret(folder: Path) -> Path:
    secret = folder / "root-only.txt"
    secret.write_text(SECRET)
    os.chmod(secret, 0o600)
    return secret


def leaks(folder: Path, marks: tuple[bytes, ...]) -> list[str]:
    """Files under ``folder`` (links not followed) holding any of ``marks``."""
    found = []
    for top, _, names in os.walk(folder):
        for name in names:
            path = Path(top, name)
            if not path.is_symlink() and path.is_file() and any(m in path.read_bytes() for m in marks):
                found.append(str(path))
    return found


# --- Gradescope notebooks mode -------------------------------------------------------------------------

def run_gradescope(zip_path: Path, tree: Path, files: dict[str, bytes], make_entries=None) -> tuple[dict, str]:
    """One upload through the zip in an emulated container; ``make_entries(submission, tree)`` adds links."""
    emulate.unpack(zip_path, tree)
    return run_unpacked(tree, files, make_entries)


def run_unpacked(tree: Path, files: dict[str, bytes], make_entries=None) -> tuple[dict, str]:
    """``run_gradescope`` on a tree already unpacked (``emulate.unpack``)."""
    for name, content in files.items():
        (tree / "submission" / name).write_bytes(content)
    if make_entries:
        make_entries(tree / "submission", tree)
    results, stdout = emulate.run(tree)
    assert results is not None, f"no results.json; stdout:\n{stdout}"
    assert_reads_right(results, json.loads((tree / "source" / "gradescope.json").read_text()), stdout)
    return results, stdout


def test_gradescope_never_follows_links_hard_links_or_fifos(tiny, tmp_path):
    course, zip_path = tiny
    honest = tiny_notebooks(course, filled=True)
    secret = root_only_secret(tmp_path)

    def hostile(submission: Path, tree: Path) -> None:
        reference = tree / "source" / "course" / "source" / ASSIGNMENT / "adder.ipynb"  # shipped in the zip
        assert b"REFERENCE-ANSWER" in reference.read_bytes()
        os.link(reference, submission / "adder.ipynb")  # a hard link to the instructor's notebook
        (submission / "copy.ipynb").symlink_to(reference)
        (submission / "secret.txt").symlink_to(secret)
        os.link(secret, submission / "hard.txt")  # a hard link to a root-only file
        os.mkfifo(submission / "pipe")

    results, stdout = run_gradescope(zip_path, tmp_path / "t", {"squares.ipynb": honest["squares.ipynb"]}, hostile)
    tests = by_name(results)
    assert tests["adder: add"]["score"] == 0.0 and tests["adder: add"]["status"] == "failed", results
    assert tests["squares: square"]["score"] == 1.0, results  # the honest file beside them is graded
    out = results["output"]
    for line in ("adder.ipynb: hard link, not read", "hard.txt: hard link, not read", "pipe: special file, not read",
                 "secret.txt: symbolic link, not read", "copy.ipynb: symbolic link, not read"):
        assert line in out, out
    everything = json.dumps(results) + stdout
    assert SECRET not in everything and "REFERENCE-ANSWER" not in everything
    course_dir = tmp_path / "t" / "source" / "course"
    for kind in ("submitted", "autograded", "feedback"):
        assert not leaks(course_dir / kind, (SECRET.encode(), *REFERENCE_MARKS)), kind


def test_gradescope_honest_upload_is_unaffected_by_the_new_checks(tiny, tmp_path):
    course, zip_path = tiny
    results, _ = run_gradescope(zip_path, tmp_path / "t", tiny_notebooks(course, filled=True))
    assert results["score"] == 3.0, results["output"]
    assert "not read" not in results["output"]


ALL_TYPES_AT_ONCE = {"grade": None, "solution": 7, "locked": 2.5, "task": 10 ** 400, "grade_id": True,
                     "points": "x", "schema_version": [1, "a"], "checksum": {"k": 1},
                     "cell_type": {"a": [{"b": [None, {"c": 1.5}]}]}}


def every_type_at_once(adder: nbformat.NotebookNode) -> str:
    """The adder notebook with a wrong JSON type in each nbgrader field of its test cell: all nine JSON
    types, nine fields, one notebook (the notebook-level fields would stop at nbformat's schema first)."""
    nb = json.loads(json.dumps(adder))
    for field, value in sorted(ALL_TYPES_AT_ONCE.items(), key=lambda item: item[0] == "grade_id"):
        assert not plausible(field, value), field  # grade_id last: ``malformed`` finds the cell by it
        nb = json.loads(malformed(nbformat.from_dict(nb), field, value))
    return json.dumps(nb)


def wrong_types() -> dict[str, tuple[str, object]]:
    """test_fail_closed.py's matrix less the values of the expected type (19 of 126): those are graded
    like any notebook, a kernel run each (the local and cluster doors grade them; the Gradescope upload
    leaves them out)."""
    return {student: (field, value) for student, (field, value) in variants().items() if not plausible(field, value)}


EVERY_TYPE_AT_ONCE = "m-every-type-at-once"


def gradescope_cases() -> dict[str, tuple[str, object]]:
    """Notebook name -> (field, value) of every malformed notebook of the one upload: the 107 wrong types,
    the five cases above, and (field "*") all nine JSON types in nine fields of one notebook."""
    return {**wrong_types(), **{f"m-{kind}": case for kind, case in MALFORMED.items()}, EVERY_TYPE_AT_ONCE: ("*", None)}


@contextmanager
def one_kernel_per_distinct_notebook() -> Iterator[dict]:
    """While the zip is built (in this process): notebooks with the same cells share one kernel run, its
    outputs copied into each. The build runs every notebook twice (its reference records, then the reference
    student), and the matrix's notebooks are copies of adder: 230 kernels without this, 226 of them
    telling nothing new. The upload is then graded for real (``emulate.run``: a fresh process, nothing patched)."""
    real, runs = sandboxed_execute.execute, {}

    def execute(nb, workdir, settings, skip=frozenset()):
        key = json.dumps([[c.cell_type, c.source] for c in nb.cells]) + repr(sorted(skip))
        if key not in runs:
            report = real(nb, workdir, settings, skip)
            runs[key] = (copy.deepcopy(report), copy.deepcopy(nb.cells))
            return report
        report, cells = runs[key]
        for cell, done in zip(nb.cells, cells):
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = copy.deepcopy(done.outputs), done.execution_count
        return copy.deepcopy(report)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(sandboxed_execute, "execute", execute)
        yield runs


@pytest.fixture(scope="module")
def every_case_upload(tmp_path_factory):
    """ONE Gradescope run over an assignment of 115 notebooks: honest adder and squares, and one copy of
    adder per case of ``gradescope_cases``, uploaded malformed in that one case and nothing else."""
    root = tmp_path_factory.mktemp("gradescope-matrix")
    course = Course.open(make_course(root / "course"))
    cases = gradescope_cases()
    for name in cases:
        shutil.copy(course.folder("source", ASSIGNMENT, "adder.ipynb"), course.folder("source", ASSIGNMENT, f"{name}.ipynb"))
    zip_path = root / "matrix-autograder.zip"
    with one_kernel_per_distinct_notebook() as runs:
        manifest = build(course, ASSIGNMENT, "notebooks", zip_path)
    assert manifest["reference_notebooks"] == len(cases) + 2 and len(runs) <= 4, len(runs)  # 2 sources, 2 samples
    tree = emulate.unpack(zip_path, root / "t")
    honest = emulate.notebook_upload(tree / "source" / "course", ASSIGNMENT, filled=True)
    files = {"adder.ipynb": honest["adder.ipynb"], "squares.ipynb": honest["squares.ipynb"]}
    for name, (field, value) in cases.items():
        own = nbformat.reads(honest[f"{name}.ipynb"].decode(), as_version=4)  # the same cells as adder
        files[f"{name}.ipynb"] = (every_type_at_once(own) if name == EVERY_TYPE_AT_ONCE else
                                  malformed(own, field, value)).encode()
    results, stdout = run_unpacked(tree, files)
    return manifest, results, stdout


def test_gradescope_honest_notebooks_keep_full_points_beside_113_malformed_ones(every_case_upload):
    manifest, results, stdout = every_case_upload
    tests = by_name(results)
    assert tests["adder: add"]["score"] == 2.0 and tests["squares: square"]["score"] == 1.0, results["output"]
    assert results["score"] == 3.0, results["output"]
    assert not [line for line in results["output"].splitlines() if line.startswith(("adder.ipynb", "squares.ipynb"))]
    assert "Traceback" not in results["output"] and INTERNAL_ERROR not in results["output"], stdout[-3000:]


def why(name: str, line: str) -> str:
    """A reason line without the notebook's name (which, here, names the case)."""
    return line.removeprefix(f"{name}.ipynb: ")


def ungraded(name: str) -> str:
    """The line intake adds after the reason for every notebook it could not read."""
    return f"{name}.ipynb: cannot be graded, scores 0"


def test_gradescope_every_json_type_in_every_metadata_field_harms_only_its_notebook(every_case_upload):
    """Each (field, JSON type) of the local doors' matrix, alone in its own notebook of one upload: its
    rows score 0 and fail, and one reason line names the notebook and the field."""
    manifest, results, stdout = every_case_upload
    tests, said = by_name(results), results["output"].splitlines()
    assert len(gradescope_cases()) == 113
    wrong = {}
    for name, (field, _) in gradescope_cases().items():
        rows = [c["title"] for c in manifest["cells"] if c["notebook"] == name and c["kind"] == "auto"]
        lines = [line for line in said if line.startswith(f"{name}.ipynb: ") and line != ungraded(name)]
        if not rows or any(tests[r]["score"] != 0.0 or tests[r]["status"] != "failed" for r in rows):
            wrong[name] = ("rows", [tests.get(r) for r in rows])
        elif len(lines) != 1 or ungraded(name) not in said:
            wrong[name] = ("not one reason line (and the notebook's score line)", lines)
        elif not (lines[0].startswith(f"{name}.ipynb: malformed metadata (")
                  and (field == "*" or field.split(".")[-1] in why(name, lines[0]))):
            wrong[name] = ("a reason that does not name the field", lines[0])
    assert not wrong, json.dumps(wrong, indent=0, default=str)[:6000]
    assert "grade_id is a list" in next(line for line in said if line.startswith("m-list-grade-id.ipynb"))
    assert "Traceback" not in results["output"] and INTERNAL_ERROR not in results["output"], stdout[-3000:]


def test_gradescope_every_reason_names_the_malformed_field(every_case_upload):
    """Also the 21 cases nbformat's schema refuses first (cell metadata, kernelspec or language_info not an
    object): intake asks before nbformat does."""
    manifest, results, _ = every_case_upload
    said = results["output"].splitlines()
    unnamed = {name: line for name, (field, _) in gradescope_cases().items() if field != "*"
               for line in said if line.startswith(f"{name}.ipynb: ") and line != ungraded(name)
               and field.split(".")[-1] not in why(name, line)}
    assert not unnamed, unnamed


# --- a cluster worker ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clustered(tmp_path_factory):
    """One grading run through a TLS scheduler and two workers: honest, linker and every malformed student
    (the local doors' whole matrix: 107 wrong types, refused before a kernel, and 19 of the expected type)."""
    cluster = Cluster(tmp_path_factory.mktemp("machines"))
    try:
        cluster.start_worker("worker-a")
        cluster.start_worker("worker-b")
        root = tmp_path_factory.mktemp("cluster")
        course = Course.open(make_course(root / "course"))
        course.generate_release(ASSIGNMENT)
        give_certificates(course, cluster)
        secret = root_only_secret(root)
        honest = _notebooks(course)
        submit(course, "honest", {f"{n}.ipynb": nb for n, nb in honest.items()})
        submit(course, "linker", {})
        folder = course.folder("submitted", "linker", ASSIGNMENT)
        for name in ("adder", "squares"):
            (folder / f"{name}.ipynb").symlink_to(Path("../../../source") / ASSIGNMENT / f"{name}.ipynb")
        (folder / "secret.txt").symlink_to(secret)
        os.link(secret, folder / "hard.txt")
        os.mkfifo(folder / "pipe")
        submit(course, "hardlinker", {"squares.ipynb": honest["squares"]})
        os.link(course.folder("source", ASSIGNMENT, "adder.ipynb"),
                course.folder("submitted", "hardlinker", ASSIGNMENT, "adder.ipynb"))
        for kind, (field, value) in MALFORMED.items():
            submit(course, f"m-{kind}", {"adder.ipynb": malformed(honest["adder"], field, value),
                                         "squares.ipynb": honest["squares"]})
        for student, (field, value) in variants().items():  # adder only, as at the local doors
            submit(course, student, {"adder.ipynb": malformed(honest["adder"], field, value)})
        students = ["honest", "linker", "hardlinker", *(f"m-{k}" for k in MALFORMED), *variants()]
        tasks = []
        make = grading.TaskMaker.__call__
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(grading.TaskMaker, "__call__", lambda self, *a: tasks.append(make(self, *a)) or tasks[-1])
            results = {r.student: r for r in autograde(course, ASSIGNMENT, students, scheduler=cluster.address)}
        logs = "".join(cluster.log(w) for w in cluster.workers)
        yield course, results, grades(course, students), tasks, logs
    finally:
        cluster.stop()


def _scores(got, student):
    return {nb: score for (s, nb, _), score in got.items() if s == student}


def test_cluster_honest_student_keeps_full_points(clustered):
    course, results, got, _, logs = clustered
    assert _scores(got, "honest") == {"adder": 2.0, "squares": 1.0}, results["honest"].reasons
    assert "coursekit worker: grading honest adder.ipynb" in logs  # graded on a worker, not locally


def test_cluster_links_hard_links_and_fifos_never_reach_a_worker(clustered):
    course, results, got, tasks, _ = clustered
    assert _scores(got, "linker") == {"adder": 0.0, "squares": 0.0}, results["linker"].reasons
    assert _scores(got, "hardlinker") == {"adder": 0.0, "squares": 1.0}, results["hardlinker"].reasons
    said = "\n".join(results["linker"].reasons + results["hardlinker"].reasons)
    for line in ("hard.txt: hard link moved out", "pipe: special file moved out", "secret.txt: symbolic link moved out",
                 "adder.ipynb: hard link moved out"):
        assert line in said, said
    for task in tasks:  # what travelled to the workers: no secret, no instructor notebook
        blob = pickle.dumps(task)
        assert SECRET.encode() not in blob
        if task.student in ("linker", "hardlinker"):
            assert not any(mark in blob for mark in REFERENCE_MARKS), (task.student, task.notebook)
    assert not leaks(course.folder("autograded"), (SECRET.encode(),))
    for student in ("linker", "hardlinker"):
        assert not leaks(course.folder("autograded", student), REFERENCE_MARKS)


def test_cluster_malformed_metadata_harms_only_its_notebook(clustered):
    course, results, got, _, _ = clustered
    for kind in MALFORMED:
        student = f"m-{kind}"
        assert _scores(got, student) == {"adder": 0.0, "squares": 1.0}, (student, results[student].reasons)
        reason = [r for r in results[student].reasons if "metadata" in r]
        assert len(reason) == 1 and reason[0].startswith("adder.ipynb: malformed metadata"), results[student].reasons
    assert any("grade_id is a list" in r for r in results["m-list-grade-id"].reasons), results["m-list-grade-id"].reasons


def test_cluster_every_json_type_in_every_metadata_field_harms_only_its_notebook(clustered):
    course, results, got, _, _ = clustered
    wrong = {}
    assert len(wrong_types()) == 107
    for student, (field, _) in wrong_types().items():
        adder = _scores(got, student).get("adder")
        if adder != 0.0:
            wrong[student] = (adder, results[student].reasons)
        elif not any(r.startswith("adder.ipynb: malformed metadata (") and field.split(".")[-1] in r
                     for r in results[student].reasons):
            wrong[student] = ("no reason line naming the notebook and the field", results[student].reasons)
        elif any("Traceback" in r for r in results[student].reasons):
            wrong[student] = ("a traceback", results[student].reasons)
    assert not wrong, wrong
    assert _scores(got, "honest") == {"adder": 2.0, "squares": 1.0}  # graded in the same run


def test_cluster_values_of_the_expected_type_are_graded_like_any_notebook(clustered):
    """The matrix's 19 values of the expected type (a string grade_id, points 7, ...): nbgrader repairs or
    refuses them as at the local doors (0 or full points), never more, never a traceback."""
    course, results, got, _, _ = clustered
    right = {s: case for s, case in variants().items() if s not in wrong_types()}
    assert len(right) == 19
    wrong = {student: (_scores(got, student).get("adder"), results[student].reasons) for student in right
             if _scores(got, student).get("adder") not in (0.0, 2.0)
             or any("Traceback" in r for r in results[student].reasons)}
    assert not wrong, wrong
