"""`coursekit fetch-data`: copies and verifies the real files from a mirror; names a corrupted file."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
REAL_MIRROR = Path(os.environ.get("HW6_DATA_MIRROR", REPO_ROOT.parent / "shared" / "data" / "names"))
pytestmark = pytest.mark.skipif(not REAL_MIRROR.is_dir(), reason="needs the verified mirror (HW6_DATA_MIRROR)")


def fetch(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("HW6_DATA_MIRROR", "HW6_DATA_DIR", "HW6_DATA_URL")}
    env["HW6_DATA_URL"] = "file:///nonexistent/data.zip"  # never the network
    return subprocess.run([sys.executable, "-m", "coursekit", "--course-dir", str(REPO_ROOT), "fetch-data", *args],
                          capture_output=True, text=True, env=env, cwd=REPO_ROOT, timeout=120)


def test_fetch_from_mirror_then_force(tmp_path):
    dest = tmp_path / "names"
    done = fetch("--mirror", str(REAL_MIRROR), "--dest", str(dest))
    assert done.returncode == 0, done.stderr
    assert "18 files verified" in done.stdout and "264ee4af21f8" in done.stdout
    assert len(list(dest.glob("*.txt"))) == 18
    # a second run keeps the verified files; --force fetches them again
    assert fetch("--dest", str(dest)).returncode == 0
    (dest / "Korean.txt").write_text("tampered\n")
    again = fetch("--dest", str(dest))
    assert again.returncode == 1 and "Korean.txt is corrupted" in again.stderr and "Traceback" not in again.stderr
    assert fetch("--mirror", str(REAL_MIRROR), "--dest", str(dest), "--force").returncode == 0


def test_fetch_with_corrupted_mirror(tmp_path):
    mirror = tmp_path / "mirror"
    shutil.copytree(REAL_MIRROR, mirror)
    (mirror / "Greek.txt").write_bytes((REAL_MIRROR / "Greek.txt").read_bytes() + b"Extra\n")
    done = fetch("--mirror", str(mirror), "--dest", str(tmp_path / "names"))
    assert done.returncode == 1
    assert "Greek.txt" in done.stderr and "corrupted" in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / "names" / "Arabic.txt").exists()


def test_fetch_without_mirror_or_network_fails_clearly(tmp_path):
    done = fetch("--dest", str(tmp_path / "names"))
    assert done.returncode == 1 and "could not download" in done.stderr and "Traceback" not in done.stderr
