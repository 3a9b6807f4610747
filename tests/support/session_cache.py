"""Things built once per test session and shared by every pytest-xdist worker (e.g. the graded hw6 sample
course): the first worker that asks builds it under a file lock, the others wait for it and reuse it.

What is built lives in the session's own temporary folder (the parent of each worker's basetemp, as
pytest-xdist documents for once-per-session fixtures), named by a hash of the code that built it
(``coursekit/`` and the course's ``source/``), so a stale copy is never read. A build that fails is not
tried again: every later test that asks fails at once with its error.
Consumers copy the folder before changing anything in it: the built copy is read-only by convention.
"""
from __future__ import annotations

import fcntl
import hashlib
import os
import pickle
from pathlib import Path
from typing import Any, Callable

import pytest

from coursekit.testing.courses import home_course

SKIPPED_PARTS = {"__pycache__", ".ipynb_checkpoints"}


def code_key(*folders: Path) -> str:
    """A hash of the files under ``folders`` (their paths relative to the folder and their contents)."""
    digest = hashlib.sha256()
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file() and not SKIPPED_PARTS & set(p.parts)):
            digest.update(str(path.relative_to(folder)).encode() + b"\0")
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def kit_key() -> str:
    """The hash of what a graded course depends on: the kit (``coursekit/``) and the course's ``source/``."""
    import coursekit

    return code_key(Path(coursekit.__file__).parent, home_course().folder("source"))


def session_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder every worker of this test session sees (the controller's basetemp under xdist)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def build_once(tmp_path_factory: pytest.TempPathFactory, name: str, build: Callable[[Path], Any]) -> tuple[Path, Any]:
    """(folder, value): ``build(folder)`` run once per session and code version, its (picklable) return
    value kept beside the folder for every later caller, in any worker."""
    root = session_folder(tmp_path_factory) / f"shared-{name}-{kit_key()}"
    done, failed = root.with_suffix(".pickle"), root.with_suffix(".failed")
    with open(root.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one builder; the others wait here, then read what it made
        if failed.is_file():  # built once means failed once: the other tests say so instead of rebuilding
            raise RuntimeError(f"building the session's {name} failed in another test: {failed.read_text()}")
        if not done.is_file():
            try:
                value = build(root)
            except BaseException as err:  # pytest-timeout's Failed is a BaseException
                failed.write_text(f"{type(err).__name__}: {err}"[:2000])
                raise
            done.write_bytes(pickle.dumps(value))
    return root, pickle.loads(done.read_bytes())

