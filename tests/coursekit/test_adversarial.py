"""Hostile submissions, graded together with an honest reference student in ONE run (--jobs 2).

Each test asserts the hostile student's expected outcome and that the reference student, graded
in the same run, keeps full points. The tiny fixture assignment (`adder` 2 points: add(a, b);
`squares` 1 point: square(x)) keeps this fast; tests/hw6/test_pipeline.py repeats a few cases on hw6.
"""
from __future__ import annotations

import json
import sqlite3
import subprocess

import nbformat
import pytest
from nbformat.v4 import new_code_cell

from coursekit.course import Course
from coursekit.feedback import generate_feedback
from coursekit.grading import autograde, read_scores
from coursekit.report import results_from_gradebook
from coursekit.samples import fill_answers
from coursekit.testing.tiny_course import ASSIGNMENT, make_course

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("adversarial")]

WRONG_ADD = "def add(a, b):\n    return 0"
SUBMISSIONS = {}  # student -> function(course, notebooks) that edits the reference notebooks in place


def hostile(fn):
    SUBMISSIONS[fn.__name__] = fn
    return fn


def cell(nbs, name: str, grade_id: str):
    return next(c for c in nbs[name].cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)


def insert_before(nbs, name: str, grade_id: str, source: str) -> None:
    index = next(i for i, c in enumerate(nbs[name].cells) if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id)
    nbs[name].cells.insert(index, new_code_cell(source))


# --- the hostile students ---------------------------------------------------------------------------

@hostile
def edited_test_cell(course, nbs):
    cell(nbs, "adder", "add").source = WRONG_ADD
    cell(nbs, "adder", "test_add").source = "print('all good')"


@hostile
def deleted_test_cell(course, nbs):
    cell(nbs, "adder", "add").source = WRONG_ADD
    nbs["adder"].cells.remove(cell(nbs, "adder", "test_add"))


@hostile
def changed_metadata(course, nbs):
    test = cell(nbs, "adder", "test_add")
    test.metadata.nbgrader["points"] = 100
    as_markdown = cell(nbs, "squares", "test_square")
    as_markdown.cell_type = "markdown"
    del as_markdown["outputs"], as_markdown["execution_count"]
    nbs["squares"].cells.append(nbformat.from_dict(json.loads(json.dumps(cell(nbs, "squares", "square")))))


@hostile
def renamed_grade_id(course, nbs):
    cell(nbs, "adder", "add").source = WRONG_ADD
    cell(nbs, "adder", "test_add").metadata.nbgrader["grade_id"] = "my_own_test"


@hostile
def prefilled_outputs(course, nbs):
    cell(nbs, "adder", "add").source = WRONG_ADD
    fake = {"name": "one_plus_two", "value": 3, "tol": 1e9, "visible": True}
    cell(nbs, "adder", "test_add").outputs = [nbformat.v4.new_output(
        "display_data", data={"application/vnd.coursekit.check+json": fake})]
    cell(nbs, "adder", "test_add").execution_count = 1


@hostile
def hidden_tracebacks(course, nbs):
    cell(nbs, "adder", "add").source = WRONG_ADD + (
        "\nimport sys\nip = get_ipython()\nip.showtraceback = lambda *a, **k: None\n"
        "sys.excepthook = lambda *a: None\nsys.stderr = open('/dev/null', 'w')")


@hostile
def monkeypatched_comparisons(course, nbs):
    cell(nbs, "adder", "add").source = WRONG_ADD + (
        "\nimport numpy as np\nnp.allclose = lambda *a, **k: True\nnp.isclose = lambda *a, **k: True\n"
        "np.testing.assert_allclose = lambda *a, **k: None\nimport hw6utils.checks as c\n"
        "c.compare = lambda *a, **k: None")


@hostile
def input_transformer(course, nbs):
    cell(nbs, "adder", "add").source = WRONG_ADD + (
        "\nip = get_ipython()\nip.input_transformers_cleanup.append(lambda lines: ['pass\\n'])")


@hostile
def pre_run_cell_hook(course, nbs):
    cell(nbs, "adder", "add").source = WRONG_ADD + (
        "\ndef skip(info):\n    raise KeyboardInterrupt\nget_ipython().events.register('pre_run_cell', skip)")


@hostile
def always_equal(course, nbs):
    cell(nbs, "adder", "add").source = (
        "class Anything(float):\n    def __eq__(self, other):\n        return True\n"
        "    __hash__ = float.__hash__\ndef add(a, b):\n    return Anything(0)")


@hostile
def reads_instructor_files(course, nbs):
    targets = [course.root / "source" / ASSIGNMENT / "adder.ipynb", course.root / "gradebook.db",
               course.root / "nbgrader_config.py"]
    cell(nbs, "adder", "add").source += "\nfor p in %r:\n    try:\n        print(open(p).read()[:200])\n" \
        "    except OSError as e:\n        print('BLOCKED', type(e).__name__)" % [str(t) for t in targets]


@hostile
def writes_gradebook_and_others(course, nbs):
    cell(nbs, "adder", "add").source += (
        "\nimport sqlite3, os\nfor target in %r:\n    try:\n"
        "        db = sqlite3.connect(target); db.execute('UPDATE grade SET auto_score = 100'); db.commit()\n"
        "    except Exception as e:\n        print('BLOCKED', type(e).__name__)\n"
        "for target in %r:\n    try:\n        os.makedirs(os.path.dirname(target), exist_ok=True)\n"
        "        open(target, 'w').write('{}')\n    except OSError as e:\n        print('BLOCKED', type(e).__name__)"
        % ([str(course.root / "gradebook.db")],
           [str(course.folder("autograded", "reference", ASSIGNMENT, "adder.ipynb")),
            str(course.folder("submitted", "reference", ASSIGNMENT, "adder.ipynb")),
            str(course.root / "reports" / "grades.csv")]))


@hostile
def leftover_processes(course, nbs):
    cell(nbs, "adder", "add").source += (
        "\nimport subprocess, os\nsubprocess.Popen(['sleep', '613.5'], start_new_session=True)\n"
        "if os.fork() == 0:\n    os.setsid()\n    os.execvp('sleep', ['sleep', '613.25'])")


@hostile
def exits(course, nbs):
    cell(nbs, "adder", "add").source += "\nimport sys\nsys.exit(3)"
    insert_before(nbs, "squares", "test_square", "raise KeyboardInterrupt")
    insert_before(nbs, "squares", "test_square", "raise SystemExit(1)")


@hostile
def os_exit(course, nbs):
    insert_before(nbs, "adder", "test_add", "import os\nos._exit(0)")


@hostile
def segfault(course, nbs):
    insert_before(nbs, "squares", "test_square", "import ctypes\nctypes.string_at(0)")


@hostile
def infinite_loop(course, nbs):
    insert_before(nbs, "adder", "test_add", "while True:\n    pass")
    insert_before(nbs, "squares", "test_square",
                  "import time\nwhile True:\n    try:\n        time.sleep(0.1)\n    except BaseException:\n        pass")


@hostile
def memory_bomb(course, nbs):
    insert_before(nbs, "adder", "why", "hoard = []\nwhile True:\n    hoard.append(bytearray(50 * 2**20))")


@hostile
def fork_bomb(course, nbs):
    insert_before(nbs, "squares", "test_square",
                  "import os\nfor _ in range(10000):\n    try:\n        os.fork()\n    except OSError:\n        pass")


@hostile
def output_flood(course, nbs):
    insert_before(nbs, "adder", "why", "for _ in range(3000):\n    print('x' * 100_000)")  # 300 MB


@hostile
def network_and_pip(course, nbs):
    cell(nbs, "adder", "add").source += (
        "\nimport urllib.request, subprocess, sys\ntry:\n    urllib.request.urlopen('http://127.0.0.1:1/', timeout=3)\n"
        "except Exception as e:\n    print('NET BLOCKED', type(e).__name__)\n"
        "r = subprocess.run([sys.executable, '-m', 'pip', 'download', '--no-deps', '-d', '.', 'pyjokes'],"
        " capture_output=True)\n"
        "print('PIP EXIT', r.returncode)")


@hostile
def shadowing_modules(course, nbs):
    folder = course.folder("submitted", "shadowing_modules", ASSIGNMENT)
    (folder / "numpy.py").write_text("def allclose(*a, **k):\n    return True\n")
    (folder / "torch.py").write_text("raise SystemExit\n")
    cell(nbs, "adder", "add").source = WRONG_ADD


@hostile
def symlinks(course, nbs):
    folder = course.folder("submitted", "symlinks", ASSIGNMENT)
    (folder / "stolen.ipynb").symlink_to(course.root / "source" / ASSIGNMENT / "adder.ipynb")
    (folder / "extra").mkdir()
    (folder / "extra" / "gradebook").symlink_to(course.root / "gradebook.db")


@hostile
def changed_kernelspec(course, nbs):
    nbs["adder"].metadata["kernelspec"] = {"name": "evil", "display_name": "evil", "language": "python"}


@hostile
def grading_aware(course, nbs):
    cell(nbs, "adder", "add").source = (
        "import os\nif os.environ.get('NBGRADER_EXECUTION'):\n    import numpy as np\n"
        "    np.allclose = lambda *a, **k: True\n    def add(a, b):\n        return 0\n"
        "else:\n    def add(a, b):\n        return a + b")


@hostile
def malformed_json(course, nbs):
    nbs["adder"] = '{"cells": [{"cell_type": "code", "source": "def add(a, b'


@hostile
def empty_notebook(course, nbs):
    nbs["adder"] = nbformat.v4.new_notebook()


@hostile
def missing_notebook(course, nbs):
    del nbs["adder"]


@hostile
def renamed_notebook(course, nbs):
    nbs["adder (copy)"] = nbs.pop("adder")


@hostile
def extra_notebook(course, nbs):
    nbs["scratch"] = nbformat.v4.new_notebook(cells=[new_code_cell("print('my experiments')")])


# --- one grading run for all of them ----------------------------------------------------------------

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = make_course(tmp_path_factory.mktemp("adversarial") / "course")
    with (root / "nbgrader_config.py").open("a") as config:
        config.write("\nc.Execute.timeout = 8\nc.SandboxedExecute.notebook_timeout = 40\n"
                     "c.SandboxedExecute.memory_bytes = 1536 * 1024**2\nc.SandboxedExecute.max_processes = 64\n")
    course = Course.open(root)
    course.generate_release(ASSIGNMENT)
    students = ["reference", *SUBMISSIONS]
    for student in students:
        folder = course.folder("submitted", student, ASSIGNMENT)
        folder.mkdir(parents=True)
        nbs = {}
        for name in course.source_notebooks(ASSIGNMENT):
            release = nbformat.read(str(course.folder("release", ASSIGNMENT, f"{name}.ipynb")), as_version=4)
            source = nbformat.read(str(course.folder("source", ASSIGNMENT, f"{name}.ipynb")), as_version=4)
            nbs[name] = fill_answers(release, source)
        if student in SUBMISSIONS:
            SUBMISSIONS[student](course, nbs)
        for name, nb in nbs.items():  # a notebook, or raw text for a file that is not one
            if isinstance(nb, str):
                (folder / f"{name}.ipynb").write_text(nb)
            else:
                nbformat.write(nb, str(folder / f"{name}.ipynb"))
    results = {r.student: r for r in autograde(course, ASSIGNMENT, students, jobs=2)}
    feedback = generate_feedback(course, ASSIGNMENT, students)
    return course, results, feedback


def scores(course, student):
    return {nb.name: nb.code_score for nb in read_scores(course, ASSIGNMENT, student)}


def outputs_text(course, student, notebook="adder") -> str:
    nb = nbformat.read(str(course.folder("autograded", student, ASSIGNMENT, f"{notebook}.ipynb")), as_version=4)
    return json.dumps([c.get("outputs", []) for c in nb.cells])


@pytest.fixture
def outcome(run, request):
    course, results, feedback = run
    assert scores(course, "reference") == {"adder": 2.0, "squares": 1.0}, "the honest student lost points"
    assert results["reference"].status == "graded"
    return course, results, feedback


def test_every_hostile_student_got_a_status_and_feedback(outcome):
    course, results, feedback = outcome
    assert set(results) == {"reference", *SUBMISSIONS}
    for student, result in results.items():
        assert result.status in ("graded", "graded with warnings", "failed"), student
        assert result.max_code_score == 3.0
        assert 0 <= result.code_score <= 3.0


def test_the_report_after_the_run_shows_every_status_and_reason(outcome):
    """`coursekit report` later (feedback written in between) says what the run said."""
    course, results, _ = outcome
    assert {r.status for r in results.values()} == {"graded", "graded with warnings"}  # failed: test_fail_closed
    later = {r.student: r for r in results_from_gradebook(course, ASSIGNMENT, list(results))}
    assert later == results


def test_edited_test_cell(outcome):
    assert scores(outcome[0], "edited_test_cell") == {"adder": 0.0, "squares": 1.0}


def test_deleted_test_cell(outcome):
    assert scores(outcome[0], "deleted_test_cell") == {"adder": 0.0, "squares": 1.0}


def test_changed_points_cell_type_and_duplicates(outcome):
    course, results, _ = outcome
    # points, cell type and duplicated ids are restored from the gradebook: never more than the maximum
    assert scores(course, "changed_metadata") == {"adder": 2.0, "squares": 1.0}, results["changed_metadata"].reasons


def test_changed_grade_id(outcome):
    assert scores(outcome[0], "renamed_grade_id") == {"adder": 0.0, "squares": 1.0}


def test_prefilled_outputs(outcome):
    assert scores(outcome[0], "prefilled_outputs")["adder"] == 0.0


def test_hidden_tracebacks(outcome):
    assert scores(outcome[0], "hidden_tracebacks")["adder"] == 0.0


def test_monkeypatched_comparisons(outcome):
    assert scores(outcome[0], "monkeypatched_comparisons")["adder"] == 0.0


def test_input_transformer(outcome):
    assert scores(outcome[0], "input_transformer")["adder"] == 0.0


def test_pre_run_cell_hook(outcome):
    assert scores(outcome[0], "pre_run_cell_hook")["adder"] == 0.0


def test_always_equal_object(outcome):
    assert scores(outcome[0], "always_equal")["adder"] == 0.0


def test_reading_instructor_files_is_blocked(outcome):
    course = outcome[0]
    text = outputs_text(course, "reads_instructor_files")
    assert text.count("BLOCKED") == 3 and "BEGIN HIDDEN" not in text and "nbgrader" not in text.lower().replace(
        "blocked", "")
    assert scores(course, "reads_instructor_files") == {"adder": 2.0, "squares": 1.0}


def test_writing_gradebook_or_other_students_is_blocked(outcome):
    course = outcome[0]
    # the course folder does not exist in the kernel's root: writes to it fail, or land in the kernel's
    # private /tmp and vanish with it; on the host nothing changed
    assert outputs_text(course, "writes_gradebook_and_others").count("BLOCKED") >= 1
    for path in (course.folder("autograded", "reference", ASSIGNMENT, "adder.ipynb"),
                 course.folder("submitted", "reference", ASSIGNMENT, "adder.ipynb")):
        assert path.read_text().strip() != "{}", f"{path} was overwritten"
    grades_csv = course.root / "reports" / "grades.csv"
    assert not grades_csv.exists() or grades_csv.read_text().strip() != "{}"
    with sqlite3.connect(course.root / "gradebook.db") as db:
        assert db.execute("SELECT MAX(auto_score) FROM grade").fetchone()[0] <= 2.0
    assert scores(course, "writes_gradebook_and_others") == {"adder": 2.0, "squares": 1.0}


def test_no_background_process_survives(outcome):
    for marker in ("sleep 613.5", "sleep 613.25"):
        found = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
        assert found.stdout.strip() == "", f"`{marker}` started by a submission is still running"
    assert scores(outcome[0], "leftover_processes") == {"adder": 2.0, "squares": 1.0}


def test_sys_exit_systemexit_keyboardinterrupt_do_not_stop_grading(outcome):
    assert scores(outcome[0], "exits") == {"adder": 2.0, "squares": 1.0}


def test_os_exit_scores_remaining_tests_zero(outcome):
    course, results, _ = outcome
    assert scores(course, "os_exit") == {"adder": 0.0, "squares": 1.0}
    assert any("kernel died" in r for r in results["os_exit"].reasons)


def test_segfault_scores_remaining_tests_zero(outcome):
    course, results, _ = outcome
    assert scores(course, "segfault") == {"adder": 2.0, "squares": 0.0}
    assert any("kernel died" in r for r in results["segfault"].reasons)


def test_infinite_loops_are_stopped(outcome):
    course, results, _ = outcome
    # the plain loop is interrupted and the test still runs; the loop that swallows interrupts
    # runs into the notebook's time limit, which ends that notebook
    assert scores(course, "infinite_loop") == {"adder": 2.0, "squares": 0.0}


def test_memory_bomb(outcome):
    course, results, _ = outcome
    # the kernel's memory limit stops the bomb with a MemoryError; the grader and the tests before it are fine
    assert scores(course, "memory_bomb") == {"adder": 2.0, "squares": 1.0}
    assert "MemoryError" in outputs_text(course, "memory_bomb")


def test_fork_bomb(outcome):
    assert scores(outcome[0], "fork_bomb")["adder"] == 2.0


def test_gigabytes_of_output_are_capped(outcome):
    course = outcome[0]
    path = course.folder("autograded", "output_flood", ASSIGNMENT, "adder.ipynb")
    assert path.stat().st_size < 5_000_000
    assert scores(course, "output_flood") == {"adder": 2.0, "squares": 1.0}


def test_network_and_pip_install_fail(outcome):
    course = outcome[0]
    text = outputs_text(course, "network_and_pip")
    assert "NET BLOCKED" in text and "PIP EXIT 0" not in text


def test_shadowing_numpy_and_torch_are_ignored(outcome):
    course, results, _ = outcome
    assert scores(course, "shadowing_modules") == {"adder": 0.0, "squares": 1.0}
    assert sum("numpy.py: would shadow" in r for r in results["shadowing_modules"].reasons) == 1


def test_symlinks_are_not_followed(outcome):
    course, results, _ = outcome
    folder = course.folder("autograded", "symlinks", ASSIGNMENT)
    assert not any(p.is_symlink() for p in folder.rglob("*"))
    assert not (folder / "extra" / "gradebook").exists()
    assert sum("symbolic link moved out of the submission" in r for r in results["symlinks"].reasons) == 2


def test_changed_kernelspec(outcome):
    assert scores(outcome[0], "changed_kernelspec") == {"adder": 2.0, "squares": 1.0}


def test_grading_aware_code_only_hurts_itself(outcome):
    assert scores(outcome[0], "grading_aware")["adder"] == 0.0


def test_malformed_notebook_json(outcome):
    course, results, _ = outcome
    assert scores(course, "malformed_json") == {"adder": 0.0, "squares": 1.0}
    assert any("adder.ipynb: not valid JSON" in r for r in results["malformed_json"].reasons)


def test_empty_notebook(outcome):
    # the test cells come back from the gradebook; the answers they need do not exist
    assert scores(outcome[0], "empty_notebook") == {"adder": 0.0, "squares": 1.0}


def test_missing_notebook(outcome):
    course, results, _ = outcome
    assert scores(course, "missing_notebook") == {"adder": 0.0, "squares": 1.0}
    assert any("adder.ipynb: missing" in r for r in results["missing_notebook"].reasons)


def test_renamed_notebook(outcome):
    course, results, _ = outcome
    assert scores(course, "renamed_notebook") == {"adder": 2.0, "squares": 1.0}
    assert any("graded as adder.ipynb" in r for r in results["renamed_notebook"].reasons)


def test_extra_notebook(outcome):
    course, results, _ = outcome
    assert scores(course, "extra_notebook") == {"adder": 2.0, "squares": 1.0}
    assert any("scratch.ipynb: not part of the assignment" in r for r in results["extra_notebook"].reasons)


def test_feedback_never_shows_hidden_tests(outcome):
    course, _, feedback = outcome
    for student, error in feedback.items():
        assert error is None, student
        for page in course.folder("feedback", student, ASSIGNMENT).glob("*.html"):
            text = page.read_text()
            assert "add(-5, 2)" not in text and "square(-4)" not in text  # check names may show, never code
