"""Run untrusted code (student source from a log, later whole notebook kernels) in a bounded sandbox.

What a sandboxed command gets (Linux, run by root; uses util-linux ``unshare`` and ``setpriv``):

* an unprivileged user (``nobody:nogroup``, no supplementary groups, no capabilities, no_new_privs);
* new network, mount and PID namespaces: no network at all (not even loopback), no view of the host's
  processes, and its own mount table in which the ``hidden`` folders (the course folder, ``/root``,
  ``/home``, ``/tmp``, ``/var/tmp``, ``/dev/shm`` by default) are covered by empty read-only tmpfs mounts; the
  Python installation is mounted back read-only and the working folder read-write;
* resource limits: CPU seconds, address space, number of processes (for its uid), size of any file it
  writes, open files, no core dumps; a wall-clock timeout that kills the whole process group (and with it
  the PID namespace); stdout and stderr each captured up to a cap, the command being killed when it prints
  more;
* an empty temporary working folder (``HOME`` points there), a minimal environment, stdin from /dev/null.

Not protected: world-readable system files outside the hidden folders (``/etc``, ``/usr``, ...) can be
read, and the Python installation is visible (read-only). Nothing is written outside the working folder
except by the kernel's own accounting.
"""
from __future__ import annotations

import os
import pwd
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

MiB = 1024 * 1024


class SandboxUnavailable(RuntimeError):
    """The sandbox cannot be set up on this machine (not root, tool missing, namespaces refused)."""


@dataclass
class Limits:
    """Resource limits of one sandboxed run."""
    cpu_seconds: int = 60
    memory_bytes: int = 4096 * MiB          # address space; importing torch maps ~1.5 GiB
    max_processes: int = 64                 # threads count too (RLIMIT_NPROC is per user)
    max_file_bytes: int = 64 * MiB
    open_files: int = 256
    wall_seconds: float = 120.0
    max_output_bytes: int = 1 * MiB         # per stream


@dataclass
class SandboxResult:
    returncode: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    output_exceeded: bool = False
    duration: float = 0.0
    command: list[str] = field(default_factory=list)

    @property
    def killed_reason(self) -> str | None:
        """Why the sandbox killed the command, if it did."""
        if self.timed_out:
            return "wall-clock time limit"
        if self.output_exceeded:
            return "output size limit"
        if self.returncode is not None and self.returncode < 0:
            sig = -self.returncode
            names = {signal.SIGXCPU: "CPU time limit", signal.SIGKILL: "killed (CPU or memory limit)",
                     signal.SIGXFSZ: "file size limit", signal.SIGSEGV: "segmentation fault"}
            return names.get(sig, f"signal {sig}")
        return None


SANDBOX_USER = "nobody"
DEFAULT_HIDDEN = ("/root", "/home", "/tmp", "/var/tmp", "/dev/shm")


def _ids(user: str) -> tuple[int, int]:
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def python_paths() -> list[Path]:
    """Folders the sandboxed Python needs: this interpreter's prefixes (venv and base installation)."""
    out: list[Path] = []
    for p in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
              str(Path(sys.executable).resolve().parent.parent)}:
        path = Path(p).resolve()
        if path not in out:
            out.append(path)
    return out


def check_available() -> None:
    """Raise SandboxUnavailable unless this process can build the sandbox."""
    if not sys.platform.startswith("linux"):
        raise SandboxUnavailable("the sandbox needs Linux namespaces")
    if os.geteuid() != 0:
        raise SandboxUnavailable("the sandbox must be started by root (it switches to the user nobody)")
    for tool in ("unshare", "setpriv", "mount"):
        if shutil.which(tool) is None:
            raise SandboxUnavailable(f"`{tool}` (util-linux) is not installed")
    try:
        _ids(SANDBOX_USER)
    except KeyError:
        raise SandboxUnavailable(f"there is no user {SANDBOX_USER!r}") from None


def _under(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _setup_script(workdir: Path, hidden: Sequence[Path], expose_ro: Sequence[Path], stage: Path,
                  uid: int, gid: int, command: Sequence[str]) -> str:
    """Shell script run as root inside the new namespaces: hide folders, re-expose some, drop privileges."""
    q = shlex.quote
    lines = ["set -e", "mount --make-rprivate /"]
    exposures = [(p, False) for p in expose_ro if any(_under(p, h) for h in hidden)]
    exposures.append((workdir, True))
    for i, (path, _) in enumerate(exposures):
        lines += [f"mkdir -p {q(str(stage / str(i)))}", f"mount --rbind {q(str(path))} {q(str(stage / str(i)))}"]
    for h in hidden:
        if h.is_dir():
            lines.append(f"mount -t tmpfs -o size=64k,mode=755 sandbox-hidden {q(str(h))}")
    for i, (path, writable) in enumerate(exposures):
        lines += [f"mkdir -p {q(str(path))}", f"mount --move {q(str(stage / str(i)))} {q(str(path))}"]
        if not writable:
            lines.append(f"mount -o remount,bind,ro {q(str(path))}")
    for h in hidden:  # the covering tmpfs mounts become read-only once the mount points exist
        if h.is_dir():
            lines.append(f"mount -o remount,ro,bind {q(str(h))} 2>/dev/null || true")
    lines.append(f"cd {q(str(workdir))}")
    # not exec: this root shell stays PID 1 of the namespace (the command cannot signal it) and turns a
    # death by signal into the exit status 128 + signal, which run() decodes.
    lines.append("setpriv --reuid=%d --regid=%d --clear-groups --no-new-privs --inh-caps=-all "
                 "--bounding-set=-all -- %s" % (uid, gid, " ".join(q(c) for c in command)))
    lines.append("exit $?")
    return "\n".join(lines)


def _limit_resources(limits: Limits):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
        resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_processes, limits.max_processes))
        resource.setrlimit(resource.RLIMIT_FSIZE, (limits.max_file_bytes, limits.max_file_bytes))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.open_files, limits.open_files))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


SCRATCH_ROOT = "/run/coursekit" if os.path.isdir("/run") else None


@dataclass
class Prepared:
    """A sandboxed command ready for ``subprocess.Popen(argv, env=env, preexec_fn=preexec_fn)``."""
    argv: list[str]
    env: dict[str, str]
    preexec_fn: object
    stage: Path


def give_to_sandbox_user(path: Path, uid: int | None = None) -> None:
    """Make ``path`` (and everything below it) owned by the sandbox user, so the sandbox can use it."""
    _chown_tree(path, *((uid, uid) if uid is not None else _ids(SANDBOX_USER)))


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(root, name), uid, gid)
    os.lchown(path, uid, gid)


UID_RANGE = range(61000, 61256)  # numeric users (no passwd entry) handed out to sandboxed jobs
_claimed: dict[int, object] = {}  # uid -> open lock file: a claim lasts as long as this process


def claim_uid() -> int:
    """Reserve a sandbox uid for this process, unique among all graders running on this machine.

    A parallel job must not share its uid with another one: process limits are per uid, and leftover
    processes are killed by uid. The claim is an exclusive lock on /run/coursekit/uid-N.lock, released
    when the process exits.
    """
    import fcntl

    if _claimed:  # one process runs one kernel at a time: it keeps its uid
        return next(iter(_claimed))
    folder = Path(SCRATCH_ROOT or tempfile.gettempdir()) / "uids"
    folder.mkdir(parents=True, exist_ok=True)
    for uid in UID_RANGE:
        handle = open(folder / f"uid-{uid}.lock", "w")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            continue
        _claimed[uid] = handle
        kill_user_processes(uid)  # anything a crashed earlier holder left behind
        return uid
    raise SandboxUnavailable(f"all {len(UID_RANGE)} sandbox uids are in use")


def kill_user_processes(uid: int) -> None:
    """Kill every process left running as ``uid`` (a sandbox slot's own user id, never a real user)."""
    if uid not in UID_RANGE:
        raise ValueError(f"refusing to kill processes of uid {uid}: not a sandbox uid")
    subprocess.run(["pkill", "-KILL", "-U", str(uid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def prepare(command: Sequence[str], *, workdir: Path | str, limits: Limits | None = None,
            hidden: Sequence[Path | str] = (), expose_ro: Sequence[Path | str] = (),
            env: dict[str, str] | None = None, uid: int | None = None) -> Prepared:
    """Build the sandboxed form of ``command``, with ``workdir`` (made the sandbox user's) as its only
    writable folder.

    ``hidden`` adds folders to DEFAULT_HIDDEN (give the course folder here); ``expose_ro`` lists folders
    mounted back read-only if a hidden folder covers them (the Python installation is always added).
    ``uid`` runs the command as that numeric user and group instead of nobody (one per parallel job, so
    that process limits are per job).
    """
    check_available()
    limits = limits or Limits()
    workdir = Path(workdir).resolve()
    uid, gid = (uid, uid) if uid is not None else _ids(SANDBOX_USER)
    candidates = {Path(h).resolve() for h in [*DEFAULT_HIDDEN, *hidden]} - {Path("/")}
    # a folder inside another hidden folder is already hidden (and its mount point would be gone)
    hidden_paths = sorted(p for p in candidates if not any(q != p and _under(p, q) for q in candidates))
    exposes = [Path(p).resolve() for p in [*python_paths(), *expose_ro]]
    _chown_tree(workdir, uid, gid)
    os.chmod(workdir, 0o700)
    stage = Path(tempfile.mkdtemp(prefix="sandbox-stage-", dir="/run" if os.path.isdir("/run") else None))
    if any(_under(stage, h) for h in hidden_paths):
        raise SandboxUnavailable(f"staging folder {stage} lies in a hidden folder")
    script = _setup_script(workdir, hidden_paths, exposes, stage, uid, gid, command)
    full = ["unshare", "--net", "--mount", "--pid", "--fork", "--mount-proc", "--", "/bin/sh", "-c", script]
    run_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(workdir), "LANG": "C.UTF-8",
               "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
               "PYTHONNOUSERSITE": "1", "TMPDIR": str(workdir), "MPLCONFIGDIR": str(workdir)}
    run_env.update(env or {})
    return Prepared(argv=full, env=run_env, preexec_fn=_limit_resources(limits), stage=stage)


def run(command: Sequence[str], *, workdir: Path | str, limits: Limits | None = None,
        hidden: Sequence[Path | str] = (), expose_ro: Sequence[Path | str] = (),
        env: dict[str, str] | None = None, uid: int | None = None) -> SandboxResult:
    """Run ``command`` in the sandbox (see ``prepare``), capturing its output up to the limits.

    ``uid``: run as this numeric user instead of nobody, so the process limit is not shared with other
    sandboxes running at the same time.
    """
    limits = limits or Limits()
    prepared = prepare(command, workdir=workdir, limits=limits, hidden=hidden, expose_ro=expose_ro, env=env,
                       uid=uid)
    full, run_env, stage = prepared.argv, prepared.env, prepared.stage
    started = time.monotonic()
    proc = subprocess.Popen(full, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=run_env, start_new_session=True, preexec_fn=prepared.preexec_fn)
    buffers = {"stdout": bytearray(), "stderr": bytearray()}
    exceeded = threading.Event()

    def kill() -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def pump(stream, key: str) -> None:
        while True:
            chunk = stream.read(65536)
            if not chunk:
                return
            room = limits.max_output_bytes - len(buffers[key])
            buffers[key] += chunk[:max(room, 0)]
            if len(chunk) > room:
                exceeded.set()
                kill()

    threads = [threading.Thread(target=pump, args=(proc.stdout, "stdout"), daemon=True),
               threading.Thread(target=pump, args=(proc.stderr, "stderr"), daemon=True)]
    for t in threads:
        t.start()
    timed_out = False
    try:
        proc.wait(timeout=limits.wall_seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
        kill()
        proc.wait()
    finally:
        kill()  # anything the command left behind in its process group
    for t in threads:
        t.join(timeout=5)
    try:
        stage.rmdir() if not any(stage.iterdir()) else shutil.rmtree(stage, ignore_errors=True)
    except OSError:
        pass
    code = proc.returncode
    if code is not None and 128 < code < 128 + 65 and not timed_out and not exceeded.is_set():
        code = -(code - 128)   # the shell's report of a death by signal
    return SandboxResult(returncode=code, stdout=bytes(buffers["stdout"]),
                         stderr=bytes(buffers["stderr"]), timed_out=timed_out,
                         output_exceeded=exceeded.is_set(), duration=time.monotonic() - started,
                         command=list(command))
