"""The sandbox works wherever the course, its data and its Python environment live (issue 24).

Each test builds a small Python environment (``python -m venv --without-pip``), a data folder and a
working folder in an awkward place, and from that environment's Python runs a tiny command in the
full sandbox: the command must start from that environment, read the data and write its folder. Where
a layout cannot work (a folder the sandbox's user may not read), ``check_layout`` says so in one line
that names the path.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from coursekit import sandbox

REPO_ROOT = Path(__file__).resolve().parents[2]

try:
    if sandbox.check_available(allow_degraded=False) != "full":
        raise sandbox.SandboxUnavailable("no full sandbox")
except sandbox.SandboxUnavailable as exc:  # pragma: no cover - CI and the dev machine run as root
    pytest.skip(f"full sandbox unavailable: {exc}", allow_module_level=True)

# the caller: imports coursekit from this worktree, sandboxes a command run by its own (awkward) Python
CALLER = """
import json, sys
sys.path.insert(0, sys.argv[1])
from coursekit import sandbox
data, work = sys.argv[2], sys.argv[3]
command = [sys.executable, "-I", "-c",
           "import os, sys; open('out.txt', 'w').write('written'); "
           "print(sys.prefix, '|', sorted(os.listdir(sys.argv[1])), '|', open(os.path.join(sys.argv[1], 'names.txt')).read())",
           data]
r = sandbox.run(command, workdir=work, expose_ro=[data], uid=sandbox.claim_uid(), allow_degraded=False,
                limits=sandbox.Limits(wall_seconds=30, cpu_seconds=30))
print(json.dumps({"code": r.returncode, "out": r.stdout.decode(), "err": r.stderr.decode()}))
"""


def make_layout(base: Path) -> tuple[Path, Path, Path]:
    """A venv, a data folder and a working folder under ``base`` (all readable by others)."""
    base.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.base_prefix + "/bin/python3", "-m", "venv", "--without-pip", str(base / "venv")], check=True)
    data = base / "data"
    data.mkdir()
    (data / "names.txt").write_text("Adams Ünal")
    work = base / "work"
    work.mkdir()
    for path in [base, *base.rglob("*")]:
        if not path.is_symlink():
            path.chmod(0o755 if path.is_dir() else 0o644)
    return base / "venv", data, work


def run_caller(venv: Path, data: Path, work: Path, wrapper: list[str] = ()) -> dict:
    python = venv / "bin" / "python"
    done = subprocess.run([*wrapper, str(python), "-c", CALLER, str(REPO_ROOT), str(data), str(work)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


def assert_works(result: dict, venv: Path, work: Path) -> None:
    assert result["code"] == 0, result["err"]
    prefix, listing, content = (part.strip() for part in result["out"].split("|"))
    assert Path(prefix).resolve() == venv.resolve()
    assert listing == "['names.txt']" and content == "Adams Ünal"
    assert (work / "out.txt").read_text() == "written"


@pytest.fixture
def place(request):
    """A fresh folder under the given parent, removed afterwards."""
    made: list[Path] = []

    def make(parent: str, name: str = "") -> Path:
        folder = Path(parent) / f"ck-layout-{uuid.uuid4().hex[:8]}{name}"
        made.append(folder)
        return folder

    yield make
    for folder in made:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("parent", ["/tmp", "/var/tmp", "/run", "/dev/shm"])
def test_environment_data_and_work_under_a_scratch_place(parent, place):
    if not os.path.isdir(parent):
        pytest.skip(f"no {parent} here")
    venv, data, work = make_layout(place(parent))
    assert_works(run_caller(venv, data, work), venv, work)


def test_a_path_with_spaces_and_non_ascii_characters(place):
    venv, data, work = make_layout(place("/tmp") / "course kit" / "Kurs Ünal ✓ 課程")
    assert_works(run_caller(venv, data, work), venv, work)


def test_everything_reached_through_a_linked_folder(place):
    root = place("/tmp")
    make_layout(root / "real")
    link = root / "link to it"
    link.symlink_to(root / "real")
    venv, data, work = link / "venv", link / "data", link / "work"
    assert_works(run_caller(venv, data, work), venv, work)


def test_environment_and_data_on_a_read_only_file_system(place):
    base = place("/tmp")
    venv, data, work = make_layout(base)
    work = place("/tmp", "-work")
    work.mkdir()
    # a private mount namespace in which the layout's folder is a read-only file system
    script = (f'mount --bind "{base}" "{base}" && mount -o remount,bind,ro "{base}" && '
              f'touch "{base}/probe" 2>/dev/null && exit 3; exec "$@"')
    result = run_caller(venv, data, work, wrapper=["unshare", "--mount", "--propagation", "private",
                                                    "sh", "-c", script, "sh"])
    assert_works(result, venv, work)


def test_a_private_home_folder(place):
    home = place("/home")
    venv, data, work = make_layout(home / "kit")
    home.chmod(0o700)  # like a user's home: closed to others; the folders inside are readable
    assert_works(run_caller(venv, data, work), venv, work)


def test_a_folder_the_sandbox_user_cannot_read_is_refused_in_one_line(place):
    data = place("/tmp") / "data"
    (data / "private").mkdir(parents=True)
    (data / "private").chmod(0o700)
    with pytest.raises(sandbox.SandboxUnavailable) as refused:
        sandbox.check_layout([data])
    message = str(refused.value)
    assert "\n" not in message and str(data / "private") in message and "chmod" in message


def test_the_course_environment_and_data_pass_the_layout_check(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "names.txt").write_text("Adams")
    tmp_path.chmod(0o755)
    sandbox.check_layout([data])  # the probe starts a sandboxed Python that imports ipykernel
