"""A newcomer's clone of this repository, made as the README says, for tests that grade in it."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix)


def clone_worktree(clone: Path) -> None:
    """`git clone` of this repository into ``clone``, with the working tree's uncommitted edits to tracked
    files applied: they are what a developer means to test (a file never added to git is not there)."""
    subprocess.run(["git", "clone", "--quiet", str(REPO_ROOT), str(clone)], check=True)
    edits = subprocess.run(["git", "diff", "--binary", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                           check=True).stdout
    if edits:
        subprocess.run(["git", "apply", "--whitespace=nowarn"], cwd=clone, input=edits, check=True)


def clone_with_venv(clone: Path) -> Path:
    """``clone_worktree`` and a venv inside the clone: a hard-linked copy of the running one, with its
    scripts re-pointed and coursekit installed editable from the clone."""
    clone_worktree(clone)
    venv = clone / ".venv"
    subprocess.run(["cp", "-al", str(VENV), str(venv)], check=True)
    for script in (venv / "bin").iterdir():
        if script.is_file() and not script.is_symlink():
            with open(script, "rb") as handle:
                first = handle.readline()
            if first.startswith(b"#!" + str(VENV).encode()):
                rest = script.read_bytes()[len(first):]
                script.unlink()  # a new file: the hard link to the original is broken, not edited
                script.write_bytes(b"#!" + str(venv / "bin" / "python").encode() + b"\n" + rest)
                script.chmod(0o755)
    site = next((venv / "lib").glob("python3*/site-packages"))
    for stale in [*site.glob("__editable__*coursekit*"), *site.glob("coursekit*.pth"), *site.glob("coursekit-*.dist-info")]:
        shutil.rmtree(stale) if stale.is_dir() else stale.unlink()
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps",
                    "--no-build-isolation", "-e", str(clone)], check=True, capture_output=True)
    return venv
