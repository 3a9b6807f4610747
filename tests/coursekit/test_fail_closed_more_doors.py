"""Fail closed at the two doors test_fail_closed.py does not walk: Gradescope's notebooks mode (the zip
run in an emulated container) and a cluster worker (a TLS scheduler and `coursekit worker`s), on the
tiny course.

* links, hard links and FIFOs in a submission: nothing they point at is read, copied, given to a kernel
  or put in the output; the honest files beside them are graded as usual;
* malformed nbgrader metadata (a list grade_id, a string points, a dict solution, a null
  schema_version, a huge int) harms only its own notebook: 0 for it with a reason, the run goes on.
  At the cluster door every wrong JSON type in every field (test_fail_closed.py's matrix less the
  values of the expected type, 107 students) is graded in the same single run; at Gradescope (one container run per upload) the five cases above and
  one upload whose notebook carries all nine JSON types in nine fields at once.
"""
from __future__ import annotations

import json
import os
import pickle
from pathlib import Path

import nbformat
import pytest

from coursekit import grading
from coursekit.course import Course
from coursekit.gradescope import emulate
from coursekit.gradescope.run import INTERNAL_ERROR
from coursekit.grading import autograde
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


@pytest.mark.parametrize("kind", list(MALFORMED))
def test_gradescope_malformed_metadata_harms_only_its_notebook(tiny, tmp_path, kind):
    course, zip_path = tiny
    field, value = MALFORMED[kind]
    honest = tiny_notebooks(course, filled=True)
    adder = nbformat.reads(honest["adder.ipynb"].decode(), as_version=4)
    files = {"adder.ipynb": malformed(adder, field, value).encode(), "squares.ipynb": honest["squares.ipynb"]}
    results, stdout = run_gradescope(zip_path, tmp_path / "t", files)
    tests = by_name(results)
    assert tests["adder: add"]["score"] == 0.0, results
    assert tests["squares: square"]["score"] == 1.0, results
    reason = [line for line in results["output"].splitlines() if "metadata" in line]
    assert len(reason) == 1 and reason[0].startswith("adder.ipynb: malformed metadata"), results["output"]
    assert "Traceback" not in results["output"]
    assert INTERNAL_ERROR not in results["output"], stdout[-3000:]  # the run itself went on


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


def test_gradescope_every_json_type_at_once_harms_only_its_notebook(tiny, tmp_path):
    course, zip_path = tiny
    honest = tiny_notebooks(course, filled=True)
    adder = nbformat.reads(honest["adder.ipynb"].decode(), as_version=4)
    files = {"adder.ipynb": every_type_at_once(adder).encode(), "squares.ipynb": honest["squares.ipynb"]}
    results, stdout = run_gradescope(zip_path, tmp_path / "t", files)
    tests = by_name(results)
    assert tests["adder: add"]["score"] == 0.0 and tests["squares: square"]["score"] == 1.0, results
    reason = [line for line in results["output"].splitlines() if "metadata" in line]
    assert len(reason) == 1 and reason[0].startswith("adder.ipynb: malformed metadata"), results["output"]
    assert "Traceback" not in results["output"] and INTERNAL_ERROR not in results["output"], stdout[-3000:]


def wrong_types() -> dict[str, tuple[str, object]]:
    """test_fail_closed.py's matrix less the values of the expected type (19 of 126): those are graded
    like any notebook (the local doors grade them all), each one a kernel run this door would add."""
    return {student: (field, value) for student, (field, value) in variants().items() if not plausible(field, value)}


# --- a cluster worker ---------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def clustered(tmp_path_factory):
    """One grading run through a TLS scheduler and two workers: honest, linker and every malformed student."""
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
        for student, (field, value) in wrong_types().items():  # adder only, as at the local doors
            submit(course, student, {"adder.ipynb": malformed(honest["adder"], field, value)})
        students = ["honest", "linker", "hardlinker", *(f"m-{k}" for k in MALFORMED), *wrong_types()]
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
    for student in wrong_types():
        adder = _scores(got, student).get("adder")
        if adder != 0.0:
            wrong[student] = (adder, results[student].reasons)
        elif not any(r.startswith("adder.ipynb: ") for r in results[student].reasons):
            wrong[student] = ("no reason line naming the notebook", results[student].reasons)
        elif any("Traceback" in r for r in results[student].reasons):
            wrong[student] = ("a traceback", results[student].reasons)
    assert not wrong, wrong
    assert _scores(got, "honest") == {"adder": 2.0, "squares": 1.0}  # graded in the same run
