"""Run an autograder zip the way Gradescope does, on this machine (Linux, root): for tests and benchmarks.

``unpack`` lays out a Gradescope tree (``source/`` = the zip, ``run_autograder`` copied next to it,
empty ``submission/`` and ``results/``); ``run`` mounts that tree at ``/autograder`` inside a private
mount namespace (so nothing outside the run sees it) and runs ``/autograder/run_autograder`` there.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

MOUNT_POINT = Path("/autograder")
LOCK = Path("/run/coursekit-gradescope-emulate.lock")  # held (shared) by every emulated run
CREATED = Path("/run/coursekit-gradescope-emulate.created")  # we made /autograder: the last run removes it


def unpack(zip_path: Path, tree: Path) -> Path:
    """Gradescope's image build: the zip unpacked into ``tree/source`` (modes kept), run_autograder copied."""
    source = tree / "source"
    source.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            dest = source / info.filename
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(zf.read(info))
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(dest, mode)
    shutil.copy2(source / "run_autograder", tree / "run_autograder")
    for name in ("submission", "results"):
        (tree / name).mkdir()
    os.chmod(tree, 0o755)
    return tree


def run(tree: Path, *, python: str | None = None, env: dict[str, str] | None = None,
        timeout: float = 1800) -> tuple[dict[str, Any] | None, str]:
    """Run ``tree/run_autograder`` with ``tree`` mounted at /autograder; (results.json or None, stdout).

    ``python``: the interpreter with the kit's dependencies (default: this one; Gradescope's image has
    /opt/coursekit/venv from setup.sh).
    """
    script = 'mount --bind "$1" /autograder && cd /autograder && exec ./run_autograder > "$1/stdout" 2>&1'
    run_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": "/root",
               "COURSEKIT_PYTHON": python or sys.executable, **(env or {})}
    with open(LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # create the mount point once, never under a running emulation
        if not MOUNT_POINT.exists():
            MOUNT_POINT.mkdir()
            CREATED.touch()
        fcntl.flock(lock, fcntl.LOCK_SH)
        try:
            subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(tree)],
                           env=run_env, timeout=timeout, check=False)
        finally:
            try:  # the last emulated run removes the mount point it created (never a real /autograder)
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if CREATED.exists():
                    MOUNT_POINT.rmdir()
                    CREATED.unlink()
            except (BlockingIOError, OSError):
                pass
    results = tree / "results" / "results.json"
    stdout = (tree / "stdout").read_text(errors="replace") if (tree / "stdout").is_file() else ""
    return (json.loads(results.read_text()) if results.is_file() else None), stdout
