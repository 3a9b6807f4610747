"""coursekit.sandbox: unprivileged user, no network, hidden folders, and every limit kills in bounded time."""
from __future__ import annotations

import os
import socket
import sys
import time
from pathlib import Path

import pytest

from coursekit import sandbox

REPO_ROOT = Path(__file__).resolve().parents[2]

try:
    sandbox.check_available()
except sandbox.SandboxUnavailable as exc:  # pragma: no cover - CI and the dev machine run as root
    pytest.skip(f"sandbox unavailable: {exc}", allow_module_level=True)


def run_py(tmp_path, code: str, uid: int | None = None, **limits) -> sandbox.SandboxResult:
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    return sandbox.run([sys.executable, "-I", "-c", code], workdir=work, hidden=[REPO_ROOT], uid=uid,
                       limits=sandbox.Limits(**{"wall_seconds": 20, "cpu_seconds": 20, **limits}))


def test_runs_as_nobody_in_an_empty_writable_folder(tmp_path):
    r = run_py(tmp_path, "import os; open('f', 'w').write('x'); print(os.getuid(), os.getgid(), os.getgroups(), "
                         "sorted(os.listdir('.')), os.environ.get('HOME') == os.getcwd())")
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split("\n")[0] == "65534 65534 [] ['f'] True"


def test_instructor_files_are_hidden(tmp_path):
    secret = REPO_ROOT / "tests" / "artifacts" / "sandbox_secret.txt"
    secret.parent.mkdir(parents=True, exist_ok=True)
    secret.write_text("TOP-SECRET-TOKEN")
    secret.chmod(0o644)  # world-readable: only the mount namespace protects it
    other_tmp = tmp_path / "other-temporary-file.txt"
    other_tmp.write_text("TMP-SECRET")
    other_tmp.chmod(0o644)
    tmp_path.chmod(0o755)
    code = ("import os\n"
            "for p in [%r, %r, %r, '/root']:\n"
            "    try:\n"
            "        print(p, open(p).read() if os.path.isfile(p) else os.listdir(p))\n"
            "    except OSError as e:\n"
            "        print(p, type(e).__name__)\n") % (str(secret), str(REPO_ROOT / "nbgrader_config.py"), str(other_tmp))
    r = run_py(tmp_path, code)
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    assert "TOP-SECRET-TOKEN" not in out and "FileNotFoundError" in out
    assert "c.CourseDirectory" not in out
    assert "TMP-SECRET" not in out  # other temporary files are not visible either
    assert "/root ['.pyenv']" in out or "/root []" in out or "/root PermissionError" in out


def test_no_network_even_to_loopback(tmp_path):
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    server.settimeout(0.5)
    port = server.getsockname()[1]
    try:
        r = run_py(tmp_path, "import socket\ntry:\n    socket.create_connection(('127.0.0.1', %d), timeout=3)\n"
                             "    print('CONNECTED')\nexcept OSError as e:\n    print('BLOCKED', e)\n" % port)
        with pytest.raises(socket.timeout):
            server.accept()
    finally:
        server.close()
    assert "BLOCKED" in r.stdout.decode() and "CONNECTED" not in r.stdout.decode()


def test_wall_clock_timeout_kills_the_whole_group(tmp_path):
    code = ("import subprocess, os, time\n"
            "p = subprocess.Popen(['sleep', '300'], start_new_session=True)\n"
            "open('child.pid', 'w').write(str(p.pid))\n"
            "time.sleep(300)\n")
    started = time.monotonic()
    r = run_py(tmp_path, code, wall_seconds=3)
    assert r.timed_out and r.killed_reason == "wall-clock time limit"
    assert time.monotonic() - started < 15
    time.sleep(0.5)
    # the child ran in the sandbox's PID namespace: no `sleep 300` of user nobody is left
    leftovers = [p for p in Path("/proc").iterdir() if p.name.isdigit() and _is_nobody_sleep(p)]
    assert not leftovers


def _is_nobody_sleep(proc: Path) -> bool:
    try:
        status = (proc / "status").read_text()
        cmdline = (proc / "cmdline").read_bytes()
    except OSError:
        return False
    return "\nUid:\t65534" in status and cmdline.startswith(b"sleep\x00300")


def test_cpu_limit(tmp_path):
    started = time.monotonic()
    r = run_py(tmp_path, "while True:\n    pass\n", cpu_seconds=1, wall_seconds=30)
    assert not r.timed_out and r.returncode is not None and r.returncode < 0
    assert r.killed_reason in ("CPU time limit", "killed (CPU or memory limit)")
    assert time.monotonic() - started < 20


def test_output_is_capped_and_the_command_killed(tmp_path):
    r = run_py(tmp_path, "import sys\nwhile True:\n    sys.stdout.write('x' * 65536)\n", max_output_bytes=100_000)
    assert r.output_exceeded and r.killed_reason == "output size limit"
    assert len(r.stdout) == 100_000


def test_file_size_limit(tmp_path):
    r = run_py(tmp_path, "open('big', 'wb').write(b'0' * (4 * 1024 * 1024))\n", max_file_bytes=1024 * 1024)
    assert r.returncode != 0
    assert (tmp_path / "work" / "big").stat().st_size <= 1024 * 1024


def test_memory_limit(tmp_path):
    r = run_py(tmp_path, "x = bytearray(3 * 1024 ** 3)\nprint('ALLOCATED')\n", memory_bytes=1024 ** 3)
    assert r.returncode != 0 and b"ALLOCATED" not in r.stdout and b"MemoryError" in r.stderr


def test_process_limit(tmp_path):
    code = ("import os, time\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n            time.sleep(5)\n"
            "            os._exit(0)\n        n += 1\nexcept OSError:\n    print('LIMITED', n)\n")
    # a uid of its own: RLIMIT_NPROC counts every process and thread of the uid, and other sandboxes
    # (notebook kernels) may run as nobody at the same time
    r = run_py(tmp_path, code, uid=1_650_000 + os.getpid() % 10_000, max_processes=20)
    out = r.stdout.decode()
    assert "LIMITED" in out and int(out.split()[1]) < 20
