"""coursekit.sandbox: unprivileged user, no network, hidden folders, and every limit kills in bounded time."""
from __future__ import annotations

import os
import shutil
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
    work.mkdir(parents=True, exist_ok=True)
    return sandbox.run([sys.executable, "-I", "-c", code], workdir=work, uid=uid,
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


# --- the allow-list root ----------------------------------------------------------------------------

def allowed_top_level(*paths: Path) -> set[str]:
    """What `/` may hold: the fixed skeleton plus the first component of every exposed folder."""
    skeleton = {"bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "proc", "run", "sbin", "tmp", "usr", "var"}
    return skeleton | {p.resolve().parts[1] for p in [*sandbox.python_paths(), *paths]}


def test_root_holds_only_the_allow_listed_tree(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "names.txt").write_text("Adams")
    work = tmp_path / "work"
    work.mkdir()
    code = ("import os, json\n"
            "print(json.dumps({'/': sorted(os.listdir('/')), 'etc': sorted(os.listdir('/etc')),\n"
            "    'dev': sorted(os.listdir('/dev')), 'run': os.listdir('/run'), 'tmp': os.listdir('/tmp'),\n"
            "    'var': sorted(os.listdir('/var')), 'data': os.listdir(%r), 'proc': sorted(p for p in os.listdir('/proc') if p.isdigit()),\n"
            "    'data_parent': sorted(os.listdir(%r))}))\n") % (str(data), str(tmp_path))
    r = sandbox.run([sys.executable, "-I", "-c", code], workdir=work, expose_ro=[data],
                    limits=sandbox.Limits(wall_seconds=20, cpu_seconds=20))
    assert r.returncode == 0, r.stderr
    seen = __import__("json").loads(r.stdout)
    assert set(seen["/"]) <= allowed_top_level(data, work)
    assert "home" not in seen["/"] and "srv" not in seen["/"] and "opt" not in seen["/"]
    assert set(seen["etc"]) <= {"passwd", "group", "nsswitch.conf", "hosts", "hostname", "ld.so.cache", "localtime",
                                "alternatives", "fonts"}
    assert set(seen["dev"]) <= {"null", "zero", "full", "random", "urandom", "tty", "shm", "fd", "stdin", "stdout",
                                "stderr"}
    assert seen["run"] == [] and seen["var"] == ["tmp"]
    assert seen["data"] == ["names.txt"]
    assert seen["data_parent"] == ["data", "work"]  # only exposed folders exist beside each other
    assert len(seen["proc"]) == 1  # its own process only: no host processes, not even the sandbox's PID 1


def make_decoy() -> Path:
    """A previous term's course, world-readable, outside any course folder."""
    decoy = Path("/srv") / f"ck-decoy-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    (decoy / ".coursekit" / "reference" / "tiny").mkdir(parents=True)
    (decoy / ".coursekit" / "reference" / "tiny" / "adder-0.json").write_text('{"test_add": []}')
    (decoy / "gradebook.db").write_text("DECOY-GRADEBOOK")
    (decoy / "nbgrader_config.py").write_text("c = get_config()  # DECOY-CONFIG\n")
    for path in [decoy, *decoy.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return decoy


SEARCH = ("import os, sys\n"
          "hits = []\n"
          "python = (sys.prefix + '/', sys.base_prefix + '/')  # nbgrader's own test fixtures live there\n"
          "for top, dirs, files in os.walk('/'):\n"
          "    if top == '/':\n"
          "        dirs[:] = [d for d in dirs if d != 'proc']\n"
          "    for name in dirs + files:\n"
          "        path = os.path.join(top, name)\n"
          "        if ('ck-decoy' in name or name == '.coursekit' or name in ('gradebook.db', 'nbgrader_config.py')\n"
          "                and not path.startswith(python)):\n"
          "            hits.append(path)\n"
          "print('HITS', hits)\n")


def test_a_decoy_course_elsewhere_on_the_host_cannot_be_found(tmp_path):
    decoy = make_decoy()
    try:
        r = run_py(tmp_path, SEARCH + "print('EXISTS', os.path.exists(%r))\n" % str(decoy))
        assert r.returncode == 0, r.stderr
        assert "HITS []" in r.stdout.decode() and "EXISTS False" in r.stdout.decode()
    finally:
        shutil.rmtree(decoy)


def test_writes_outside_the_working_folder_fail_or_vanish(tmp_path):
    marker = f"left-by-{os.getpid()}-{time.monotonic_ns()}"
    places = ["/tmp", "/var/tmp", "/dev/shm", "/run", "/run/lock", "/etc", "/usr/local", "/", sys.prefix]
    write = ("import os\n"
             "for place in %r:\n"
             "    try:\n"
             "        with open(os.path.join(place, %r), 'w') as f:\n"
             "            f.write('x' * 1000)\n"
             "        print('WROTE', place)\n"
             "    except OSError as e:\n"
             "        print('REFUSED', place, type(e).__name__)\n") % (places, marker)
    first = run_py(tmp_path, write, uid=sandbox.claim_uid())
    assert first.returncode == 0, first.stderr
    wrote = [line.split()[1] for line in first.stdout.decode().splitlines() if line.startswith("WROTE")]
    assert set(wrote) <= {"/tmp", "/var/tmp", "/dev/shm"}  # private tmpfs places, nothing else
    look = ("import os\nprint('SEEN', [p for p in %r if os.path.exists(os.path.join(p, %r))])\n") % (places, marker)
    second = run_py(tmp_path / "second", look, uid=sandbox.claim_uid())
    assert second.returncode == 0, second.stderr
    assert "SEEN []" in second.stdout.decode()  # the next kernel, even with the same uid, sees none of it
    assert not [p for p in places if os.path.exists(os.path.join(p, marker))]  # nor does the host


def test_attacker_sees_and_signals_no_other_process(tmp_path):
    code = ("import os, signal\n"
            "print('PIDS', sorted(int(p) for p in os.listdir('/proc') if p.isdigit()))\n"
            "for pid in [1, %d]:\n"
            "    for what in ('environ', 'cmdline'):\n"
            "        try:\n"
            "            open('/proc/%%d/%%s' %% (pid, what)).read(); print('READ', pid, what)\n"
            "        except OSError as e:\n"
            "            print('NO', pid, what)\n"
            "    try:\n"
            "        os.kill(pid, signal.SIGTERM); print('SIGNALLED', pid)\n"
            "    except OSError as e:\n"
            "        print('NOSIGNAL', pid, type(e).__name__)\n") % os.getpid()
    r = run_py(tmp_path, code)
    out = r.stdout.decode()
    assert r.returncode == 0, r.stderr
    assert "READ" not in out and "SIGNALLED" not in out
    assert out.splitlines()[0] == "PIDS [2]"


def test_degraded_mode_is_opt_in_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setenv(sandbox.NO_NAMESPACES_ENV, "1")
    monkeypatch.delenv(sandbox.ALLOW_DEGRADED_ENV, raising=False)
    with pytest.raises(sandbox.SandboxUnavailable, match="degraded"):
        sandbox.check_available()
    uid = sandbox.claim_uid()  # claimed: a test run beside a grading run never uses its uids
    assert sandbox.mode(uid, allow_degraded=True).startswith("degraded: no namespaces")
    mark = f"{8000 + os.getpid() % 1000}.{time.monotonic_ns() % 10**6}"
    work = tmp_path / "work"
    work.mkdir()
    code = ("import os, subprocess\n"
            "subprocess.Popen(['sleep', %r], start_new_session=True)\n"
            "print(os.getuid(), os.getgroups())\n") % mark
    monkeypatch.setenv(sandbox.ALLOW_DEGRADED_ENV, "1")
    r = sandbox.run([sys.executable, "-I", "-c", code], workdir=work, uid=uid,
                    limits=sandbox.Limits(wall_seconds=20, cpu_seconds=20))
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split("\n")[0] == f"{uid} []"
    assert r.mode.startswith("degraded: no namespaces") and f"uid {uid}" in r.mode
    time.sleep(0.2)
    assert not [p for p in Path("/proc").iterdir() if p.name.isdigit() and _cmdline_has(p, mark)]


def test_degraded_mode_never_runs_as_root(tmp_path, monkeypatch):
    monkeypatch.setenv(sandbox.NO_NAMESPACES_ENV, "1")
    with pytest.raises(sandbox.SandboxUnavailable, match="root"):
        sandbox.prepare(["true"], workdir=tmp_path, uid=0, allow_degraded=True)


def _cmdline_has(proc: Path, text: str) -> bool:
    try:
        return text.encode() in (proc / "cmdline").read_bytes()
    except OSError:
        return False


def test_nothing_is_staged_on_the_host(tmp_path):
    prepared = sandbox.prepare(["true"], workdir=tmp_path)
    assert prepared.stage is None
    assert not any(str(tmp_path) != arg and "/run/" in arg for arg in prepared.argv[:-1])


# --- a replay of the reference records, found in a decoy course (the 68/68) ---------------

REPLAY = ("import os, json, sys\n"
          "found = {}\n"
          "skip = {'/proc', '/sys', '/usr', sys.prefix, sys.base_prefix}\n"
          "for root in ['/srv', '/']:\n"
          "    for top, dirs, files in os.walk(root):\n"
          "        dirs[:] = [d for d in dirs if os.path.join(top, d) not in skip]\n"
          "        if '/.coursekit/reference' in top:\n"
          "            for name in files:\n"
          "                try:\n"
          "                    cached = json.load(open(os.path.join(top, name)))\n"
          "                except (OSError, ValueError):\n"
          "                    continue\n"
          "                for records in cached.get('records', cached).values():\n"
          "                    for record in records:\n"
          "                        found.setdefault(record['name'], record)\n"
          "    if found:\n"
          "        break\n"
          "print('REPLAYING', len(found))\n"
          "import hw6utils.checks as checks\n"
          "import hw6utils.records as record_format\n"
          "from IPython.display import display\n"
          "def check(name, *args, **kwargs):\n"
          "    if name in found:\n"
          "        display({record_format.RECORD_MIME: found[name]}, raw=True)\n"
          "checks.check = check\n"
          "def unstub(lines):  # the untouched release's stubs return None instead of raising\n"
          "    return [line.replace('raise NotImplementedError()', 'return None') for line in lines]\n"
          "get_ipython().input_transformers_post.append(unstub)\n")


@pytest.mark.slow
def test_replayed_reference_records_from_a_decoy_score_nothing(tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell

    from coursekit.course import Course
    from coursekit.grading import autograde, read_scores
    from coursekit.samples import fill_answers
    from coursekit.testing.tiny_course import ASSIGNMENT, make_course

    course = Course.open(make_course(tmp_path / "course"))
    course.generate_release(ASSIGNMENT)
    for student in ("honest", "replay"):
        folder = course.folder("submitted", student, ASSIGNMENT)
        folder.mkdir(parents=True)
        for name in course.source_notebooks(ASSIGNMENT):
            nb = nbformat.read(str(course.folder("release", ASSIGNMENT, f"{name}.ipynb")), as_version=4)
            if student == "honest":
                nb = fill_answers(nb, nbformat.read(str(course.folder("source", ASSIGNMENT, f"{name}.ipynb")),
                                                    as_version=4))
            else:
                nb.cells.insert(0, new_code_cell(REPLAY))
            nbformat.write(nb, str(folder / f"{name}.ipynb"))
    autograde(course, ASSIGNMENT, ["honest"])  # fills the reference cache that the decoy copies
    decoy = Path("/srv") / f"ck-decoy-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    shutil.copytree(course.root, decoy, ignore=shutil.ignore_patterns("submitted", "autograded"))
    for path in [decoy, *decoy.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    try:
        assert list((decoy / ".coursekit" / "reference").rglob("*.json")), "no reference cache to replay"
        autograde(course, ASSIGNMENT, ["replay"])
        sandboxed = {nb.name: nb.code_score for nb in read_scores(course, ASSIGNMENT, "replay")}
        autograde(course, ASSIGNMENT, ["replay"], sandboxed=False)  # the control: the attack itself works
        unsandboxed = {nb.name: nb.code_score for nb in read_scores(course, ASSIGNMENT, "replay")}
    finally:
        shutil.rmtree(decoy)
    assert sandboxed == {"adder": 0.0, "squares": 0.0}
    assert unsandboxed == {"adder": 2.0, "squares": 1.0}


def test_no_new_namespaces_or_mounts_inside(tmp_path):
    """A user namespace would make the student "root" of a new namespace: denied, like mount and setns."""
    code = ("import os, subprocess\n"
            "for cmd in (['unshare', '-Ur', 'true'], ['unshare', '-Urm', 'mount', '-t', 'tmpfs', 'x', '/tmp']):\n"
            "    print(subprocess.run(cmd, capture_output=True).returncode != 0)\n"
            "try:\n"
            "    os.unshare(os.CLONE_NEWUSER) if hasattr(os, 'unshare') else print(True)\n"
            "except OSError:\n"
            "    print(True)\n"
            "import threading; t = threading.Thread(target=print, args=('threads',)); t.start(); t.join()\n")
    r = run_py(tmp_path, code)
    assert r.returncode == 0, r.stderr
    assert r.stdout.decode().split() == ["True", "True", "True", "threads"]


def test_kernel_keyrings_carry_nothing_to_the_next_kernel(tmp_path):
    """The keyrings of a uid outlive its processes: the sandbox denies them (seccomp)."""
    code = ("import ctypes, sys\n"
            "libc = ctypes.CDLL(None, use_errno=True)\n"
            "numbers = {'x86_64': (248, 250), 'aarch64': (217, 219)}[__import__('platform').machine()]\n"
            "if sys.argv[1] == 'write':\n"
            "    print('ADD', libc.syscall(numbers[0], b'user', b'leak', b'SECRET', 6, -4))\n"
            "else:\n"
            "    print('FOUND', libc.syscall(numbers[1], 10, -4, b'user', b'leak', 0))\n")
    uid = sandbox.claim_uid()
    outs = []
    for step in ("write", "read"):
        work = tmp_path / step
        work.mkdir()
        r = sandbox.run([sys.executable, "-I", "-c", code, step], workdir=work, uid=uid,
                        limits=sandbox.Limits(wall_seconds=20, cpu_seconds=20))
        assert r.returncode == 0, r.stderr
        outs.append(r.stdout.decode())
    assert outs == ["ADD -1\n", "FOUND -1\n"]
