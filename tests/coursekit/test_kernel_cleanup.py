"""Every kernel ends with its notebook, sandboxed or not: when it is done, when its time budget is spent,
and when the grader itself is killed. Nothing of it (process or folder) remains on the host."""
from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from coursekit import sandbox
from coursekit.course import Course
from coursekit.executor import ExecutionSettings, execute, scratch_copy
from coursekit.preprocessors import SandboxedExecute

REPO_ROOT = Path(__file__).resolve().parents[2]

try:
    sandbox.check_available()
    SANDBOX = [True, False]
except sandbox.SandboxUnavailable:  # pragma: no cover - CI and the dev machine run as root
    SANDBOX = [False]


def notebook(*sources: str) -> nbformat.NotebookNode:
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def daemons(token: str) -> str:
    """A cell that leaves processes behind as a student could: a new session, and a double fork."""
    return ("import subprocess, os\n"
            f"subprocess.Popen(['sleep', '{token}'], start_new_session=True)\n"
            "if os.fork() == 0:\n"
            "    os.setsid()\n"
            "    if os.fork() == 0:\n"
            f"        os.execvp('sleep', ['sleep', '{token}'])\n"
            "    os._exit(0)\n"
            "print('started')")


def token() -> str:
    return f"{7000 + secrets.randbelow(1000)}.{secrets.randbelow(10**6):06d}"


def processes_with(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and entry.name != str(os.getpid()):
            try:
                if text.encode() in (entry / "cmdline").read_bytes():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


def owned_by(uid: int | None) -> set[Path]:
    """Entries of the host's scratch places that belong to the kernel's uid."""
    if uid is None:
        return set()
    places = [Path(p) for p in ("/run", "/run/coursekit", "/tmp", "/var/tmp", "/dev/shm") if Path(p).is_dir()]
    return {entry for place in places for entry in place.iterdir()
            if not entry.is_symlink() and entry.stat().st_uid == uid}


def left_behind(uid: int | None, before: set[Path]) -> set[Path]:
    """What the run left in the host's scratch places under its uid (``before``: what was there already,
    e.g. from an earlier run on this machine that was killed with its grader's parent)."""
    return owned_by(uid) - before


KERNEL_ARGUMENTS = list(Course.open(REPO_ROOT).config.Execute.extra_arguments)  # as the course starts kernels


def settings_for(sandboxed: bool, **kw) -> ExecutionSettings:
    settings = SandboxedExecute(sandboxed=sandboxed, timeout=30, notebook_timeout=60, memory_bytes=2 * 1024 ** 3,
                                extra_arguments=KERNEL_ARGUMENTS).execution_settings()
    for name, value in kw.items():
        setattr(settings, name, value)
    return settings


def wait_until(condition, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.1)
    return condition()


MODES = ["full", "degraded", "unsandboxed"] if True in SANDBOX else ["unsandboxed"]


@pytest.mark.parametrize("mode", MODES)
def test_daemons_end_with_the_notebook(tmp_path, mode, monkeypatch):
    sandboxed = mode != "unsandboxed"
    if mode == "degraded":  # as in a container without namespaces: a uid of its own and limits only
        monkeypatch.setenv(sandbox.NO_NAMESPACES_ENV, "1")
        monkeypatch.setenv(sandbox.ALLOW_DEGRADED_ENV, "1")
    mark = token()
    nb = notebook(daemons(mark), "import time; time.sleep(0.5); print('done')")
    folder = tmp_path / "submission"
    folder.mkdir()
    workdir = scratch_copy(folder)
    settings = settings_for(sandboxed)
    before = owned_by(settings.uid) - {workdir}
    try:
        report = execute(nb, workdir, settings)
    finally:
        subprocess.run(["rm", "-rf", str(workdir)])
    assert report.problems == [] and report.executed_cells == 2
    assert "started" in nb.cells[0].outputs[0]["text"]
    assert wait_until(lambda: not processes_with(mark), 5), "processes of the notebook outlived it"
    assert not processes_with(str(workdir)), "the kernel outlived the notebook"
    assert not left_behind(settings.uid, before)
    assert report.sandbox_mode.startswith({"full": "full", "degraded": "degraded", "unsandboxed": "unisolated"}[mode])


@pytest.mark.slow
@pytest.mark.parametrize("sandboxed", SANDBOX, ids=lambda s: "sandboxed" if s else "unsandboxed")
def test_killed_grader_leaves_nothing_behind(tmp_path, sandboxed):
    mark = token()
    uid = sandbox.claim_uid() if sandboxed else None
    before = owned_by(uid)
    folder = tmp_path / "submission"
    folder.mkdir()
    (folder / "data.txt").write_text("x")
    nb_path = tmp_path / "nb.ipynb"
    nbformat.write(notebook(daemons(mark), "import time; time.sleep(600)"), str(nb_path))
    grader = (
        "import sys, nbformat\n"
        "from pathlib import Path\n"
        "from coursekit import sandbox\n"
        "from coursekit.executor import execute, scratch_copy\n"
        "from coursekit.preprocessors import SandboxedExecute\n"
        f"settings = SandboxedExecute(sandboxed={sandboxed}, uid={uid}, timeout=600, notebook_timeout=900,\n"
        f"                            extra_arguments={KERNEL_ARGUMENTS!r}).execution_settings()\n"
        f"workdir = scratch_copy(Path({str(folder)!r}))\n"
        "print(workdir, flush=True)\n"
        f"execute(nbformat.read({str(nb_path)!r}, as_version=4), workdir, settings)\n")
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    proc = subprocess.Popen([sys.executable, "-c", grader], stdout=subprocess.PIPE, env=env, text=True)
    try:
        workdir = Path(proc.stdout.readline().strip())
        assert workdir.is_dir()
        assert wait_until(lambda: len(processes_with(mark)) >= 2, 60), "the notebook never started its daemons"
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        # 30 s: the warden ends the tree at once, but on a loaded 2-core machine (the whole suite) its first
        # scheduling slot may come late; a leak never ends, so the bound only has to be finite
        assert wait_until(lambda: not processes_with(mark) and not processes_with(str(workdir)), 30), \
            "processes of the notebook outlived the killed grader"
        assert wait_until(lambda: not workdir.exists(), 5), "the kernel's working folder outlived the grader"
        assert not left_behind(uid, before)
    finally:
        if proc.poll() is None:
            proc.kill()
        for pid in processes_with(mark):
            os.kill(pid, signal.SIGKILL)


@pytest.mark.slow
@pytest.mark.parametrize("sandboxed", SANDBOX[:1], ids=lambda s: "sandboxed" if s else "unsandboxed")
def test_sleeping_student_hits_the_submission_budget(tmp_path, sandboxed):
    nb = notebook("print('first')", "import time; time.sleep(120)", "print('never')")
    workdir = scratch_copy(tmp_path)
    started = time.monotonic()
    try:
        report = execute(nb, workdir, settings_for(sandboxed, deadline=time.monotonic() + 8))
    finally:
        subprocess.run(["rm", "-rf", str(workdir)])
    assert time.monotonic() - started < 25
    assert report.problems == ["reached the submission's time budget at cell 1; later cells did not run"]
    assert report.executed_cells == 1 and not nb.cells[2].get("outputs")


def test_spent_budget_runs_nothing(tmp_path):
    nb = notebook("print('x')")
    report = execute(nb, tmp_path, settings_for(False, deadline=time.monotonic() - 1))
    assert report.executed_cells == 0
    assert report.problems == ["reached the submission's time budget at cell 0; later cells did not run"]


def test_scratch_copy_never_follows_links(tmp_path):
    folder = tmp_path / "autograded"
    (folder / "hw6utils").mkdir(parents=True)
    (folder / "hw6utils" / "checks.py").write_text("ok")
    (folder / "notes.txt").write_text("notes")
    (folder / "adder.ipynb").write_text("{}")
    secret = tmp_path / "secret.txt"
    secret.write_text("ROOT-ONLY")
    secret.chmod(0o600)
    os.symlink(secret, folder / "link.txt")
    os.symlink(secret, folder / "hw6utils" / "inner-link.txt")
    os.symlink(tmp_path, folder / "linked-folder")
    scratch = scratch_copy(folder)
    try:
        copied = sorted(str(p.relative_to(scratch)) for p in scratch.rglob("*"))
    finally:
        subprocess.run(["rm", "-rf", str(scratch)])
    assert copied == ["hw6utils", "hw6utils/checks.py", "notes.txt"]
