"""Parallel autograding against a PostgreSQL gradebook (nbgrader's `db_url`) gives the serial grades.

The test starts its own PostgreSQL server on 127.0.0.1 (Debian's postgresql package; `make test`
installs it) in a temporary folder and stops it afterwards.
"""
from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

from coursekit.course import Course
from coursekit.testing.tiny_course import ASSIGNMENT, make_course
from tests.coursekit.test_grading import grade_serially_then_in_parallel

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("postgres")]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    bins = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not bins or os.geteuid() != 0:
        if os.environ.get("CI") == "true":
            pytest.fail("PostgreSQL server binaries (Debian package postgresql) are missing in CI")
        pytest.skip("needs Debian's postgresql package and root")
    bin_dir = Path(bins[-1]).parent
    data = Path(tempfile.mkdtemp(prefix="pg-", dir="/run" if os.path.isdir("/run") else None))
    shutil.chown(data, "postgres", "postgres")
    port = _free_port()

    def as_postgres(*args: str) -> None:
        subprocess.run(["setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", *args],
                       check=True, capture_output=True, cwd=data)

    as_postgres(str(bin_dir / "initdb"), "-D", str(data / "db"), "-A", "trust", "-U", "postgres")
    as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data / "db"), "-l", str(data / "log"), "-w", "start",
                "-o", f"-p {port} -h 127.0.0.1 -k {data}")
    try:
        as_postgres(str(bin_dir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "gradebook")
        yield f"postgresql://postgres@127.0.0.1:{port}/gradebook"
    finally:
        as_postgres(str(bin_dir / "pg_ctl"), "-D", str(data / "db"), "-m", "immediate", "stop")
        shutil.rmtree(data, ignore_errors=True)


def test_parallel_grading_into_postgres_matches_serial(tmp_path, postgres_url):
    root = make_course(tmp_path / "course")
    with (root / "nbgrader_config.py").open("a") as config:
        config.write(f"\nc.CourseDirectory.db_url = {postgres_url!r}\n")
    course = Course.open(root)
    assert course.db_url.startswith("postgresql://")
    course.generate_release(ASSIGNMENT)
    serial, parallel = grade_serially_then_in_parallel(course, "pg")
    assert parallel == serial
    assert serial[("ref", "adder", "test_add")] == 2.0 and serial[("ref", "squares", "test_square")] == 1.0
    assert serial[("half", "squares", "test_square")] == 0.0 and serial[("blank", "adder", "test_add")] == 0.0
