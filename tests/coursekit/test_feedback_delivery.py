"""Feedback reaches students: through nbgrader's exchange to a real student account, and as LMS archives.

The exchange lives in a temporary folder outside the course (``c.Exchange.root``). A student account
``ckf-...`` is created for the test and removed afterwards; it fetches the assignment, submits it and
fetches its feedback with nbgrader's own commands, as that user, with its own HOME.
"""
from __future__ import annotations

import html
import os
import pwd
import re
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from datetime import timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urlparse

import nbformat
import pytest

from coursekit.cli import main as coursekit_main
from coursekit.course import Course
from coursekit.feedback_delivery import (CellResult, ProblemSummary, StudentSummary, archive_name, student_summary,
                                         summary_html)
from coursekit.grading import autograde
from coursekit.samples import fill_answers
from coursekit.testing.tiny_course import ASSIGNMENT, make_course

NBGRADER = Path(sys.executable).parent / "nbgrader"


def visible_text(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page))


def attribute_values(page: str, attribute: str) -> set[str]:
    """Every value of ``attribute`` (``href``, ``name``) on a page, however the exporter quotes it."""
    found: set[str] = set()

    class Finder(HTMLParser):
        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            found.update(value for name, value in attrs if name == attribute and value)

    Finder().feed(page)
    return found


class StudentAccount:
    """An unprivileged account ``ckf-<random>`` with its own HOME, removed by ``remove``."""

    def __init__(self) -> None:
        self.name = f"ckf-{secrets.token_hex(4)}"
        self.home = Path(tempfile.mkdtemp(prefix=f"{self.name}-home-"))
        subprocess.run(["useradd", "--no-create-home", "--home-dir", str(self.home), "--shell", "/usr/sbin/nologin",
                        "--user-group", self.name], check=True)
        entry = pwd.getpwnam(self.name)
        self.uid, self.gid = entry.pw_uid, entry.pw_gid
        os.chown(self.home, self.uid, self.gid)
        os.chmod(self.home, 0o700)

    def run(self, *args: str) -> subprocess.CompletedProcess:
        """``args`` as this user in its HOME. This machine's Python lives under /root (mode 0700), so the
        command runs in a private mount namespace where only /root/.pyenv is visible under /root, as a
        student's own Python would be on a shared server."""
        python_home = Path(sys.base_prefix).resolve()
        stage = Path(tempfile.mkdtemp(prefix="ckf-stage-"))
        inner = " ".join(f"'{a}'" for a in args)
        script = "set -e\n"
        if str(python_home).startswith("/root/"):
            script += (f"mount --bind /root/.pyenv {stage}\n"
                       "mount -t tmpfs -o mode=0755,size=1m tmpfs /root\nmkdir /root/.pyenv\n"
                       f"mount --move {stage} /root/.pyenv\n")
        script += (f"cd {self.home}\nexec setpriv --reuid={self.uid} --regid={self.gid} --init-groups "
                   f"env -i HOME={self.home} USER={self.name} LOGNAME={self.name} PATH=/usr/bin:/bin {inner}\n")
        try:
            return subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
                                  capture_output=True, text=True, timeout=300)
        finally:
            stage.rmdir()

    def remove(self) -> None:
        subprocess.run(["pkill", "-KILL", "-u", self.name], check=False)
        subprocess.run(["userdel", self.name], check=False)
        shutil.rmtree(self.home, ignore_errors=True)


@pytest.fixture
def student():
    if os.geteuid() != 0 or not shutil.which("useradd") or not shutil.which("unshare"):
        pytest.skip("needs root, useradd and unshare to create a student account")
    account = StudentAccount()
    try:
        yield account
    finally:
        account.remove()


@pytest.fixture
def exchange():
    folder = Path(tempfile.mkdtemp(prefix="ckf-exchange-"))
    os.chmod(folder, 0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def nbgrader_as(account: StudentAccount, exchange: Path, course: Course, *args: str) -> str:
    done = account.run(str(NBGRADER), *args, "--course", course.course_id, f"--Exchange.root={exchange}")
    assert done.returncode == 0, f"nbgrader {args[0]} as {account.name} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


@pytest.mark.slow
def test_feedback_released_through_the_exchange_is_fetched_by_the_student(tmp_path, student, exchange, capsys):
    course = Course.open(make_course(tmp_path / "course"))
    with (course.root / "nbgrader_config.py").open("a") as config:
        config.write(f"\nc.Exchange.root = {str(exchange)!r}\n")
    course.generate_release(ASSIGNMENT)
    assert course.api.release_assignment(ASSIGNMENT)["success"]

    # the student fetches, answers (adder wrong on a hidden check, squares right) and submits
    nbgrader_as(student, exchange, course, "fetch_assignment", ASSIGNMENT)
    mine = student.home / ASSIGNMENT
    for name, wrong in (("adder", True), ("squares", False)):
        source = nbformat.read(str(course.folder("source", ASSIGNMENT, f"{name}.ipynb")), as_version=4)
        filled = fill_answers(nbformat.read(str(mine / f"{name}.ipynb"), as_version=4), source)
        if wrong:
            filled.cells[1].source = "def add(a, b):\n    return 3"
        nbformat.write(filled, str(mine / f"{name}.ipynb"))
    nbgrader_as(student, exchange, course, "submit", ASSIGNMENT)

    # the instructor collects, grades and releases
    assert course.api.collect(ASSIGNMENT)["success"]
    assert course.folder("submitted", student.name, ASSIGNMENT, "adder.ipynb").is_file()
    by_hand = course.folder("submitted", "handed-in-by-email", ASSIGNMENT)  # not through the exchange
    by_hand.mkdir(parents=True)
    for name in ("adder.ipynb", "squares.ipynb"):
        shutil.copy(course.folder("submitted", student.name, ASSIGNMENT, name), by_hand / name)
    autograde(course, ASSIGNMENT, [student.name, "handed-in-by-email"])
    zips = tmp_path / "zips"
    assert coursekit_main(["--course-dir", str(course.root), "feedback", ASSIGNMENT, "--student", student.name,
                           "--student", "handed-in-by-email", "--release", "--zip", str(zips)]) == 0
    printed = capsys.readouterr().out
    assert ("handed-in-by-email: not released (not submitted through nbgrader's exchange, nothing to release "
            "there (use --zip))") in printed
    assert "released through nbgrader's exchange for 1 students" in printed and "2 archives" in printed

    # the student fetches the pages with nbgrader's own command
    nbgrader_as(student, exchange, course, "fetch_feedback", ASSIGNMENT)
    [stamp] = list((mine / "feedback").iterdir())
    fetched = {p.name: p.read_text() for p in stamp.glob("*.html")}
    assert set(fetched) == {"adder.html", "squares.html"}
    assert all(os.stat(stamp / name).st_uid == student.uid for name in fetched)  # the student's own copies
    adder = visible_text(fetched["adder.html"])
    assert f"Feedback for {student.name}: {ASSIGNMENT}" in adder  # the summary travels with every page
    assert "Total: 1 / 4 points, late penalty 0 (on time" in adder
    assert "hidden check 'hidden-test-marker' failed" in adder and "add(-5, 2)" not in adder
    # the summary's links lead to nbgrader's anchors, in the kit's id namespace (coursekit/sanitize.py)
    assert {"squares.html", "adder.html#test_add"} <= attribute_values(fetched["adder.html"], "href")
    assert "test_add" in attribute_values(fetched["adder.html"], "name")  # the link's target exists

    assert sorted(p.name for p in zips.iterdir()) == sorted(
        [f"{student.name.replace('-', '')}_feedback-{ASSIGNMENT}.zip", f"handedinbyemail_feedback-{ASSIGNMENT}.zip"])
    archive = zips / f"{student.name.replace('-', '')}_feedback-{ASSIGNMENT}.zip"
    with zipfile.ZipFile(archive) as opened:
        assert sorted(opened.namelist()) == [f"{ASSIGNMENT}-feedback/{n}.html" for n in ("adder", "squares", "summary")]
        summary = opened.read(f"{ASSIGNMENT}-feedback/summary.html").decode()
    assert "adder.html#test_add" in attribute_values(summary, "href") and "waits for a grader" in summary  # the written answer

    # a late penalty in nbgrader's gradebook (as AssignLatePenalties stores it) shows on the summary
    from nbgrader.api import Gradebook
    with Gradebook(course.db_url) as gradebook:
        submission = gradebook.find_submission(ASSIGNMENT, student.name)
        gradebook.update_or_create_assignment(ASSIGNMENT, duedate=submission.timestamp - timedelta(hours=3))
        notebook = gradebook.find_submission_notebook("adder", ASSIGNMENT, student.name)
        notebook.late_submission_penalty = 0.5
        gradebook.db.commit()
    late = student_summary(course, ASSIGNMENT, student.name)
    assert late.late_penalty == 0.5 and 10_700 < late.seconds_late < 10_900
    text = visible_text(summary_html(late))
    assert "late penalty -0.5, 0.5 after the penalty (late by 3.0 hours" in text


ALLOWED_TAGS = {"html", "head", "meta", "title", "body", "div", "h2", "p", "table", "thead", "tbody", "tr", "th",
                "td", "ul", "li", "a"}


class TagAudit(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: list[tuple[str, str | None]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        self.attributes += attrs


def test_summary_page_carries_no_active_content():
    hostile = "<script>alert(1)</script><img src=x onerror=alert(2)>"
    summary = StudentSummary("s<b>1</b>", ASSIGNMENT, None, None, 0.0, [ProblemSummary(
        "javascript:alert(3)//' onmouseover='x", f"Title {hostile}", 1.0, 3.0, 0.0,
        [CellResult("gid\"><script>", "tests", 0.0, 2.0, False, [f"got {hostile}"], f"Section {hostile}")])])
    page = summary_html(summary)
    audit = TagAudit()
    audit.feed(page)
    assert audit.tags <= ALLOWED_TAGS
    assert {name for name, _ in audit.attributes} <= {"lang", "charset", "id", "href", "border", "cellpadding"}
    hrefs = [value or "" for name, value in audit.attributes if name == "href"]
    assert hrefs and all(urlparse(href).scheme == "" for href in hrefs)  # relative links, never javascript:
    assert "got <script>alert(1)</script>" in visible_text(page)  # shown as text, not run


def test_archive_names_follow_canvas_reupload():
    assert archive_name("jdoe", "hw6", "Jane", "Doe", "4321") == "doejane_4321_feedback-hw6.zip"
    assert archive_name("12345", "hw6", None, None, None) == "s12345_feedback-hw6.zip"  # never read as a user id
    assert archive_name("../x", "hw6", None, None, None) == "x_feedback-hw6.zip"
