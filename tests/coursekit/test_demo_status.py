"""`coursekit demo` and `coursekit autograde` fail loudly when grading fails, and say why (issue 24).

On the tiny course, with one test cell that reads the course data (as Problem 4 does): without the data
both commands exit non-zero and name the missing data, and once it is there the reference earns full
points; a kernel that dies leaves its last words in the reason. (The whole demo with its data, on hw6:
test_clone_anywhere.py.)
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from coursekit import sandbox
from coursekit.course import Course
from coursekit.executor import execute, scratch_copy
from coursekit.preprocessors import SandboxedExecute
from coursekit.testing.tiny_course import ASSIGNMENT, make_course, nbgrader_cell

COURSEKIT = [sys.executable, "-m", "coursekit"]
KERNEL_ARGUMENTS = ["--HistoryManager.hist_file=:memory:", "--IPKernelApp.log_level=ERROR"]

try:
    sandbox.check_available()
    SANDBOXED = True
except sandbox.SandboxUnavailable:  # pragma: no cover - CI and the dev machine run as root
    SANDBOXED = False


def data_course(root: Path) -> Path:
    """The tiny course, its adder notebook with one more test that counts the words of the course data."""
    course = make_course(root)
    path = course / "source" / ASSIGNMENT / "adder.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    nb.cells.append(nbgrader_cell(
        "code", "import os\nfrom hw6utils.checks import check\n"
                "words = open(os.path.join(os.environ['HW6_DATA_DIR'], 'names.txt')).read().split()\n"
                "check('data_words', len(words))", "test_data", grade=True, solution=False, points=1))
    nbformat.write(nb, str(path))
    return course


def add_data(course: Path) -> None:
    (course / "data" / "names").mkdir(parents=True)
    (course / "data" / "names" / "names.txt").write_text("Adams Baker Ünal\n")


def coursekit(course: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*COURSEKIT, "--course-dir", str(course), *args], capture_output=True, text=True,
                          timeout=900, cwd=course)


@pytest.mark.slow
def test_the_demo_and_autograde_fail_loudly_when_the_data_is_missing_and_pass_once_it_is_there(tmp_path):
    """(The demo with its data, on hw6, exits 0 with the reference at full points: test_clone_anywhere.py.)"""
    course = data_course(tmp_path / "course")
    done = coursekit(course, "demo", ASSIGNMENT)
    assert done.returncode != 0, done.stdout
    failed = [line for line in done.stderr.splitlines() if "FAILED" in line]
    assert failed and any("adder.ipynb" in line and "fetch-data" in line for line in failed), done.stderr
    # the students are in submitted/ now: autograde alone says the same and exits non-zero too
    again = coursekit(course, "autograde", ASSIGNMENT, "--student", "reference")
    assert again.returncode != 0
    assert "adder.ipynb was graded for nobody" in again.stderr and "fetch-data" in again.stderr
    # once the data is there, the same command grades the reference at full points and exits 0
    add_data(course)
    fixed = coursekit(course, "autograde", ASSIGNMENT, "--student", "reference")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    reference = next(line for line in fixed.stdout.splitlines() if line.startswith("reference "))
    assert reference.split()[1:4] == ["3/3", "1/1", "4/4"] and "graded for nobody" not in fixed.stderr


@pytest.mark.parametrize("sandboxed", [True, False] if SANDBOXED else [False],
                         ids=lambda s: "sandboxed" if s else "unsandboxed")
def test_a_dead_kernel_reason_carries_its_last_words(tmp_path, sandboxed):
    nb = new_notebook(cells=[new_code_cell("print('fine')"), new_code_cell(
        "import os\nos.write(2, b'LAST-WORDS: segfault in \\x1b[31mlib\\x07 at 0x0\\n')\nos._exit(3)"),
        new_code_cell("print('never')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder = tmp_path / "submission"
    folder.mkdir()
    workdir = scratch_copy(folder)
    settings = SandboxedExecute(sandboxed=sandboxed, timeout=30, notebook_timeout=60,
                                extra_arguments=KERNEL_ARGUMENTS).execution_settings()
    try:
        report = execute(nb, workdir, settings)
    finally:
        subprocess.run(["rm", "-rf", str(workdir)])
    assert report.executed_cells == 1 and len(report.problems) == 1
    problem = report.problems[0]
    assert problem.startswith("the kernel died at cell 1") and "LAST-WORDS: segfault in lib at 0x0" in problem
    assert "\x1b" not in problem and "\x07" not in problem and "\n" not in problem


def test_a_sandbox_that_cannot_be_built_says_why(tmp_path, monkeypatch):
    """The sandbox's own complaint (here: a read-only folder that vanished after the check) reaches the reason."""
    if not SANDBOXED:
        pytest.skip("no sandbox")
    nb = new_notebook(cells=[new_code_cell("print('fine')")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder = tmp_path / "submission"
    folder.mkdir()
    workdir = scratch_copy(folder)
    settings = SandboxedExecute(sandboxed=True, timeout=30, notebook_timeout=60, startup_timeout=20,
                                extra_arguments=KERNEL_ARGUMENTS).execution_settings()
    gone = tmp_path / "data-gone"
    gone.mkdir()
    settings.read_only = (str(gone),)
    # the warden is a separate program: make it fail by handing it a folder removed after prepare()
    prepare = sandbox.prepare

    def prepare_then_remove(*args, **kwargs):
        prepared = prepare(*args, **kwargs)
        os.rmdir(gone)
        return prepared

    monkeypatch.setattr(sandbox, "prepare", prepare_then_remove)
    try:
        report = execute(nb, workdir, settings)
    finally:
        subprocess.run(["rm", "-rf", str(workdir)])
    assert report.executed_cells == 0 and len(report.problems) == 1
    assert "cannot build the sandbox" in report.problems[0] and "data-gone" in report.problems[0]
