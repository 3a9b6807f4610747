"""nbgrader's exchange, end to end with two real student accounts on this machine (the tiny course):
release_assignment -> fetch (as each student) -> submit -> a hostile student swaps his inbound files for
links and a FIFO -> `coursekit collect --exchange` -> autograde -> generate_feedback -> release_feedback
-> fetch_feedback; and another account reads neither the instructor's notebooks nor a classmate's work."""
from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import nbformat
import pytest

from coursekit.cli import main
from coursekit.collect import IntakeLimits
from coursekit.course import Course
from coursekit.exchange import collect_exchange, inbound_folder, mode_problems
from coursekit.grading import autograde
from coursekit.testing.tiny_course import ASSIGNMENT, make_course
from tests.coursekit.test_doors import _notebooks

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("exchange")]

ALICE, BOB = "ckx-alice", "ckx-bob"  # honest, hostile (helper F2's tests use ckf-* accounts)
PYTHON = "/usr/bin/python3.11"  # readable by every account (the kit's venv may live under /root)


def _user(name: str) -> None:
    subprocess.run(["userdel", "-r", name], capture_output=True)
    subprocess.run(["useradd", "-m", "-s", "/usr/sbin/nologin", name], check=True, capture_output=True)


def as_student(name: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run Python as an unprivileged account (its own uid, gid and groups), with nbgrader importable."""
    user = pwd.getpwnam(name)
    env = {"HOME": user.pw_dir, "USER": name, "PATH": "/usr/bin:/bin", "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": sysconfig.get_paths()["purelib"]}
    return subprocess.run(["setpriv", f"--reuid={user.pw_uid}", f"--regid={user.pw_gid}", "--init-groups",
                           PYTHON, *args], cwd=cwd or user.pw_dir, env=env, capture_output=True, text=True,
                          timeout=300)


def nbgrader_as(name: str, *args: str) -> subprocess.CompletedProcess:
    run = as_student(name, "-m", "nbgrader", *args)
    assert run.returncode == 0, run.stderr[-2000:]
    return run


@pytest.fixture(scope="module")
def site():
    """A world-traversable folder holding the exchange and the course side by side (the course is
    protected by its own modes only), and the two accounts; all removed afterwards."""
    if not shutil.which("useradd") or os.geteuid() != 0 or not Path(PYTHON).exists():
        pytest.skip("needs root, useradd and /usr/bin/python3.11")
    top = Path(tempfile.mkdtemp(prefix="ckx-", dir="/tmp"))
    os.chmod(top, 0o755)
    for name in (ALICE, BOB):
        _user(name)
    try:
        yield top
    finally:
        for name in (ALICE, BOB):
            subprocess.run(["userdel", "-r", name], capture_output=True)
        shutil.rmtree(top, ignore_errors=True)


def _course(site: Path) -> Course:
    root = make_course(site / "course")
    exchange = site / "exchange"
    exchange.mkdir(mode=0o755)
    with (root / "nbgrader_config.py").open("a") as config:
        config.write(f"\nc.Exchange.root = {str(exchange)!r}\n")
    course = Course.open(root)
    course.generate_release(ASSIGNMENT)
    return course


def _fetch_fill_submit(course: Course, student: str, exchange: Path) -> Path:
    flags = ["--course", course.course_id, f"--Exchange.root={exchange}"]
    nbgrader_as(student, "fetch_assignment", ASSIGNMENT, *flags)
    home = Path(pwd.getpwnam(student).pw_dir)
    for name, nb in _notebooks(course).items():  # the student's answers (written as the student)
        path = home / ASSIGNMENT / f"{name}.ipynb"
        path.write_text(nbformat.writes(nb))
        os.chown(path, pwd.getpwnam(student).pw_uid, pwd.getpwnam(student).pw_gid)
    nbgrader_as(student, "submit", ASSIGNMENT, *flags)
    cache = home / ".local/share/jupyter/nbgrader_cache" / course.course_id
    [submitted] = [p.name for p in cache.iterdir()]  # the inbound copy's name, without nbgrader's random tail
    [inbound] = inbound_folder(course).glob(f"{submitted}*")
    return inbound


def _can_read(student: str, paths: list[Path]) -> dict[str, str]:
    script = ("import json, os, sys\nout = {}\nfor p in json.loads(sys.argv[1]):\n"
              "    try:\n        open(p, 'rb').read(1) if os.path.isfile(p) else os.listdir(p)\n"
              "        out[p] = 'read'\n    except OSError as e:\n        out[p] = type(e).__name__\n"
              "print(json.dumps(out))")
    run = as_student(student, "-c", script, json.dumps([str(p) for p in paths]))
    return json.loads(run.stdout)


def test_the_exchange_end_to_end(site, capsys, monkeypatch):
    course = _course(site)
    exchange = site / "exchange"
    nbgrader = str(Path(sys.executable).with_name("nbgrader"))
    run = subprocess.run([nbgrader, "release_assignment", ASSIGNMENT, "--force"], cwd=course.root,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]

    alice = _fetch_fill_submit(course, ALICE, exchange)
    bob = _fetch_fill_submit(course, BOB, exchange)
    # inbound/ is write-only for students: Bob cannot list it to learn Alice's (unguessable) folder name
    assert _can_read(BOB, [alice.parent]) == {str(alice.parent): "PermissionError"}

    # Bob, as himself, swaps his own inbound files: links to the instructor's notebooks, a FIFO
    source = course.root / "source" / ASSIGNMENT
    swap = (f"import os\nb = {str(bob)!r}\nos.unlink(b + '/adder.ipynb')\n"
            f"os.symlink({str(source / 'adder.ipynb')!r}, b + '/adder.ipynb')\n"
            f"os.symlink({str(source)!r}, b + '/source')\nos.mkfifo(b + '/pipe')\n")
    done = as_student(BOB, "-c", swap)
    assert done.returncode == 0, done.stderr

    # an oversize submission is refused, per student, with a reason; nothing is collected
    small = collect_exchange(course, ASSIGNMENT, IntakeLimits(max_bytes=1000))
    assert any(ALICE in line and "refused" in line and "MiB" in line for line in small), small
    assert not course.folder("submitted", ALICE, ASSIGNMENT).exists()

    monkeypatch.chdir(course.root)
    assert main(["collect", "--exchange", "--assignment", ASSIGNMENT]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith(f"{ALICE}: collected into") for line in lines), lines
    [refusal] = [line for line in lines if BOB in line]
    assert "refused (" in refusal and ("link" in refusal or "special file" in refusal), refusal
    assert not course.folder("submitted", BOB, ASSIGNMENT).exists()

    # nbgrader's own door (and the formgrader's Collect button) runs the same collect
    again = subprocess.run([nbgrader, "collect", ASSIGNMENT], cwd=course.root, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"collect: {ALICE}: already collected" in again.stderr, again.stderr[-2000:]
    assert "refused (" in next(line for line in again.stderr.splitlines() if BOB in line)
    assert not course.folder("submitted", BOB, ASSIGNMENT).exists()

    collected = course.folder("submitted", ALICE, ASSIGNMENT)
    for path in [collected, *collected.rglob("*")]:
        info = path.lstat()
        assert info.st_uid == 0 and info.st_mode & 0o077 == 0, (path, oct(info.st_mode))
    assert mode_problems(course) == [], mode_problems(course)

    # another account reads neither the instructor's notebooks, a classmate's work, nor the gradebook
    private = [source / "adder.ipynb", source, collected / "adder.ipynb", course.folder("submitted"),
               course.root / "gradebook.db", course.root / ".coursekit"]
    assert set(_can_read(BOB, private).values()) == {"PermissionError"}, _can_read(BOB, private)

    # ...nor rename the course's exchange folder to put his own in place (the root is sticky now)
    moved = as_student(BOB, "-c", f"import os; os.rename({str(exchange / course.course_id)!r}, "
                                  f"{str(exchange / 'moved')!r})")
    assert "PermissionError" in moved.stderr and (exchange / course.course_id).is_dir()

    [result] = autograde(course, ASSIGNMENT, [ALICE], jobs=2)
    assert (result.code_score, result.max_code_score) == (3.0, 3.0), result.reasons
    assert course.api.generate_feedback(ASSIGNMENT, ALICE)["success"]
    run = subprocess.run([nbgrader, "release_feedback", ASSIGNMENT], cwd=course.root, capture_output=True,
                         text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    nbgrader_as(ALICE, "fetch_feedback", ASSIGNMENT, "--course", course.course_id, f"--Exchange.root={exchange}")
    fetched = list((Path(pwd.getpwnam(ALICE).pw_dir) / ASSIGNMENT / "feedback").rglob("adder.html"))
    assert fetched and "hidden-test-marker" not in fetched[0].read_text()
