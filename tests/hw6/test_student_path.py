"""The student's path: a fresh virtual environment with only the packages the README tells students to
install runs every release notebook top to bottom. Untouched, the notebooks fail only where the student
has work to do: ``NotImplementedError`` from their own code, and its consequences after it (a failed
visible check, or a name the unfinished cell never defined).
"""
from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys

import nbformat
import pytest
from nbclient import NotebookClient

from coursekit.testing.courses import home_course
from coursekit.testing.notebooks import RELEASE_DIR
from tests.hw6.hw6_course import NOTEBOOKS

REPO_ROOT = home_course().root

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("student_path"), pytest.mark.timeout(900)]
CONSEQUENCES = {"NotImplementedError", "AssertionError", "NameError"}


def readme_install_commands() -> list[list[str]]:
    """The `pip install ...` commands of the README's student workflow, in order."""
    section = REPO_ROOT.joinpath("README.md").read_text().split("## Student workflow", 1)[1].split("\n## ", 1)[0]
    return [command.split()[2:] for command in re.findall(r"`(pip install [^`]+)`", section)]


@pytest.fixture(scope="module")
def student_kernel(tmp_path_factory) -> tuple[str, dict[str, str]]:
    """A kernel spec that runs in a new venv holding only what the README installs."""
    root = tmp_path_factory.mktemp("student-env")
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    commands = readme_install_commands()
    assert commands and commands[0] == ["torch==2.13.0"], "the README must install torch first, pinned"
    for packages in commands:  # the README's packages; --no-compile: what the kernels import compiles on
        # first import instead of all of torch and JupyterLab up front (27 of torch's 38 CPU-seconds)
        subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--no-compile", *packages], check=True,
                       timeout=900)
    spec = root / "share" / "jupyter" / "kernels" / "student"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "student", "language": "python"}))
    return "student", {"JUPYTER_PATH": str(root / "share" / "jupyter")}


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_untouched_release_fails_only_where_work_is_left(student_kernel, notebook, tmp_path, monkeypatch):
    kernel, env = student_kernel
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.delenv("COURSEKIT_RECORD_CHECKS", raising=False)
    # as on a student's machine, the first kernel saves the bytecode of what it imports (pip ran with
    # --no-compile) and the next ones read it: with PYTHONDONTWRITEBYTECODE (set on some CI machines) every
    # kernel would compile torch's sources again, 11 s instead of 4.6 s of imports
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)
    folder = tmp_path / "hw6"
    shutil.copytree(RELEASE_DIR, folder, ignore=shutil.ignore_patterns("__pycache__"))
    if (REPO_ROOT / "data" / "names").is_dir():  # where a student puts the data (next to the notebook)
        shutil.copytree(REPO_ROOT / "data" / "names", folder / "data" / "names")
    nb = nbformat.read(str(folder / f"{notebook}.ipynb"), as_version=4)
    NotebookClient(nb, kernel_name=kernel, timeout=600, allow_errors=True,
                   resources={"metadata": {"path": str(folder)}}).execute()
    stubbed = False  # consequences only count after a stub raised
    for index, cell in enumerate(nb.cells):
        errors = {o["ename"] for o in cell.get("outputs", []) if o.get("output_type") == "error"}
        allowed = CONSEQUENCES if stubbed else {"NotImplementedError"}
        assert errors <= allowed, f"{notebook} cell {index}: {sorted(errors)}\n{cell.source[:300]}"
        stubbed = stubbed or "NotImplementedError" in errors
    assert stubbed, f"{notebook}: the untouched release raised no NotImplementedError"
