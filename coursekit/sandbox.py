"""Run untrusted code (student kernels, code from a log) in a bounded sandbox built from an allow-list.

Every sandboxed command is started by a small *warden* (this file run as a script, as root) that
supervises it and cleans up after it. Three modes:

``full`` (the default; Linux, run by root):
  * new PID, network, IPC, UTS and mount namespaces: no network at all (not even loopback), no view of
    the host's processes (``/proc`` is fresh and hides other users' processes), no shared SysV memory;
  * an EMPTY root (a size-capped tmpfs, entered with ``pivot_root``) into which only this is mounted:
    ``/usr`` (and ``/bin``, ``/lib*``, ``/sbin`` as they are on the host, links or read-only binds), the
    Python installation and the ``expose_ro`` folders read-only at their host paths, the working
    folder read-write, a minimal ``/etc`` (stub passwd/group, nsswitch, hosts, ld.so.cache, localtime,
    alternatives, fonts), a minimal ``/dev`` (null, zero, full, random, urandom, tty) and empty private ``/tmp``,
    ``/var/tmp``, ``/dev/shm``, ``/run``. No other host path exists inside; whatever a command writes
    outside its working folder lives in that tmpfs and vanishes with it, so no two commands share a
    writable place and nothing survives the command except its working folder;
  * an unprivileged numeric user (no groups, no capabilities, no_new_privs) and resource limits: CPU
    seconds, private memory and address space, processes per uid, file size, open files, no core dumps;
  * a seccomp filter that denies the kernel keyrings (they belong to the uid and outlive its processes,
    so they would carry data to the next kernel), new namespaces (no user namespaces) and mounts.

``degraded`` (opt-in: ``allow_degraded=True`` or ``COURSEKIT_SANDBOX_ALLOW_DEGRADED=1``), used when the
  namespaces cannot be created (e.g. a Gradescope container): the command runs as the unprivileged uid
  with the same limits, seccomp filter and process-tree cleanup, but sees the host's filesystem and
  network as that uid may (world-readable files, world-writable /tmp, /dev/shm, /run/lock: make the
  course folder owner-only). Never root: without a way to switch user the sandbox refuses to run.
  ``COURSEKIT_SANDBOX_NO_NAMESPACES=1`` makes the namespace probe fail, to try this mode anywhere.

``unisolated`` (``isolated=False``, for trusted code such as ``--no-sandbox``): the grader's own user
  and environment, only the process-tree cleanup.

In every mode the whole process tree ends with the command: when it exits, when the caller stops it
(SIGTERM to the warden), and when the caller dies (the warden has PR_SET_PDEATHSIG; it then also
removes the working folder). Without a PID namespace the warden is a child subreaper, so processes
that daemonise are still its descendants and get killed. ``mode()`` says which mode a call would use.
"""
from __future__ import annotations

import os
import signal
import sys
import time

if __name__ != "__main__":  # the warden (run as a script) needs only os, signal, sys, time, json, ctypes
    import pwd
    import resource
    import shutil
    import subprocess
    import tempfile
    import threading
    from dataclasses import dataclass, field
    from pathlib import Path
    from typing import Sequence

MiB = 1024 * 1024
ALLOW_DEGRADED_ENV = "COURSEKIT_SANDBOX_ALLOW_DEGRADED"
NO_NAMESPACES_ENV = "COURSEKIT_SANDBOX_NO_NAMESPACES"
SETUP_FAILED = 125  # the warden's exit status when it could not build the sandbox
GRADER_GONE = signal.SIGHUP  # the warden's parent-death signal


# ==================================================================================================
# The warden: runs as ``python -I -S sandbox.py '<json spec>'`` (stdlib only, nothing imported lazily)
# ==================================================================================================

CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWPID, CLONE_NEWNET = 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_CHILD_SUBREAPER = 1, 36
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41, "riscv64": 41}
# seccomp, on top of the namespaces: the kernel keyrings of a uid outlive its processes (a channel from one
# student's kernel to the next one under the same uid), and new namespaces (user namespaces in particular)
# and mounts would only widen the kernel's attack surface. So these system calls fail with EPERM, clone()
# with a namespace flag too, clone3() with ENOSYS (its flags cannot be inspected; the C library then falls
# back to clone()), and any system call of a foreign ABI (i386, x32) through which they could be reached.
#                   arch        clone clone3 (denied: add_key request_key keyctl unshare setns mount umount2 pivot_root)
SECCOMP_ARCH = {"x86_64": (0xC000003E, 56, 435, (248, 249, 250, 272, 308, 165, 166, 155)),
                "aarch64": (0xC00000B7, 220, 435, (217, 218, 219, 97, 268, 40, 39, 41))}
CLONE_NAMESPACES = 0x7E020000  # CLONE_NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
DEVICES = ("null", "zero", "full", "random", "urandom", "tty")


class _Stop(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _libc():
    import ctypes

    return ctypes.CDLL(None, use_errno=True)


def _check(result: int, what: str) -> None:
    if result != 0:
        import ctypes

        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(libc, source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = (lambda s: os.fsencode(s) if s is not None else None)  # any path: spaces, non-ASCII, undecodable
    _check(libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


# statvfs flags of a bound file system that its bind must keep (a remount may not clear a locked flag)
ST_KEPT = ((1, MS_RDONLY), (8, MS_NOEXEC), (1024, 1024), (2048, 2048), (4096, 1 << 21))  # noatime, nodiratime, relatime


def _bind(libc, source: str, target: str, writable: bool = False, device: bool = False) -> None:
    """Bind ``source`` at ``target`` (created empty), read-only unless ``writable``; never setuid, and
    device nodes only where ``device``. The source file system's own restrictions (read-only, noexec,
    atime flags) are kept."""
    if os.path.isdir(source):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        if not os.path.lexists(target):
            open(target, "a").close()
    _mount(libc, source, target, None, MS_BIND)
    kept = os.statvfs(source).f_flag
    flags = MS_REMOUNT | MS_BIND | MS_NOSUID | (0 if writable else MS_RDONLY) | (0 if device else MS_NODEV)
    flags |= sum(ms for st, ms in ST_KEPT if kept & st)
    _mount(libc, None, target, None, flags)


def _etc_files(spec: dict) -> dict[str, str | bytes]:
    """The minimal /etc, read from the host before it disappears."""
    uid = spec["uid"]
    files: dict[str, str | bytes] = {
        "passwd": f"root:x:0:0:root:/root:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:"
                  f"/usr/sbin/nologin\nstudent:x:{uid}:{uid}:student:{spec['workdir']}:/bin/sh\n",
        "group": f"root:x:0:\nnogroup:x:65534:\nstudent:x:{uid}:\n",
        "nsswitch.conf": "passwd: files\ngroup: files\nhosts: files\n",
        "hosts": "127.0.0.1 localhost\n::1 localhost\n",
        "hostname": "sandbox\n",
    }
    for name in ("ld.so.cache", "localtime"):
        try:
            with open(f"/etc/{name}", "rb") as handle:
                files[name] = handle.read()
        except OSError:
            pass
    return files


def _build_root(spec: dict) -> None:
    """In a fresh mount namespace: assemble the allow-listed tree in a tmpfs and pivot into it."""
    import platform

    libc = _libc()
    _check(libc.unshare(CLONE_NEWNS), "unshare(mount)")
    _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
    etc = _etc_files(spec)
    os.umask(0o022)  # the folders made below are the skeleton of the root: readable by the command's user
    # The new root is mounted over this namespace's /tmp (no folder is created on the host). Every host
    # folder the command gets (Python, read-only folders, the working folder) may lie under /tmp, /run,
    # /dev/shm, ...: each is opened first and bound through /proc/self/fd, parents before children.
    binds = [(path, False) for path in spec["python"]] + [(path, False) for path in spec["read_only"]]
    binds.append((spec["workdir"], True))
    handles = {path: os.open(path, os.O_PATH | os.O_CLOEXEC) for path, _ in binds}
    new = "/tmp"
    _mount(libc, "sandbox-root", new, "tmpfs", MS_NOSUID | MS_NODEV,
           f"size={spec['tmpfs_bytes']},nr_inodes=65536,mode=755")

    def inside(path: str) -> str:
        return new + path

    for top in ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            os.symlink(os.readlink(top), inside(top))
        elif os.path.isdir(top):
            _bind(libc, top, inside(top))
    os.makedirs(inside("/etc"))
    for name, content in etc.items():
        with open(inside(f"/etc/{name}"), "wb") as handle:
            handle.write(content.encode() if isinstance(content, str) else content)
    for folder in ("/etc/alternatives", "/etc/fonts"):  # command links (awk, ...); fc-list's configuration
        if os.path.isdir(folder):
            _bind(libc, folder, inside(folder))
    os.makedirs(inside("/dev"))
    for name in DEVICES:
        if os.path.exists(f"/dev/{name}"):
            _bind(libc, f"/dev/{name}", inside(f"/dev/{name}"), writable=True, device=True)
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, inside(f"/dev/{name}"))
    for folder, mode in (("/tmp", 0o1777), ("/var/tmp", 0o1777), ("/dev/shm", 0o1777), ("/run", 0o755),
                         ("/proc", 0o555)):
        os.makedirs(inside(folder), exist_ok=True)
        os.chmod(inside(folder), mode)
    for path, writable in sorted(binds, key=lambda bind: (bind[0].count("/"), bind[1], bind[0])):
        _bind(libc, f"/proc/self/fd/{handles[path]}", inside(path), writable=writable)
    for fd in handles.values():
        os.close(fd)
    _mount(libc, "proc", inside("/proc"), "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, "hidepid=2")
    number = SYS_PIVOT_ROOT.get(platform.machine())
    if number is None:
        raise OSError(0, f"pivot_root: unknown system call number on {platform.machine()}")
    os.chdir(new)
    _check(libc.syscall(number, b".", b"."), "pivot_root")
    _check(libc.umount2(b".", MNT_DETACH), "detach the host root")
    os.chdir("/")


def _kill_descendants(me: int) -> None:
    """SIGKILL every descendant of this process (a child subreaper: daemons stay descendants)."""
    for _ in range(200):
        parents: dict[int, int] = {}
        for entry in os.listdir("/proc"):
            if entry.isdigit():
                try:
                    with open(f"/proc/{entry}/stat", "rb") as handle:
                        stat = handle.read()
                    parents[int(entry)] = int(stat[stat.rindex(b")") + 2:].split()[1])
                except (OSError, ValueError):
                    pass
        tree, frontier = set(), {me}
        while frontier:
            frontier = {pid for pid, parent in parents.items() if parent in frontier} - tree
            tree |= frontier
        for pid in tree:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        try:
            while os.waitpid(-1, os.WNOHANG)[0] > 0:
                pass
        except ChildProcessError:
            if not tree:
                return
        if not tree:
            return
        time.sleep(0.005)


def _kill_uid(uid: int) -> None:
    """Kill every process of ``uid`` (a sandbox slot's own uid) from a child that has become that uid."""
    if not 61000 <= uid < 61256:  # UID_RANGE; never root, never a shared user such as nobody
        return
    pid = os.fork()
    if pid == 0:
        try:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            if os.getuid() != 0:
                os.kill(-1, signal.SIGKILL)
        finally:
            os._exit(0)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _seccomp_program(machine: str) -> list[tuple[int, int, int, int]]:
    """The classic-BPF filter described at SECCOMP_ARCH, as (code, jump-if-true, jump-if-false, k)."""
    arch, clone, clone3, denied = SECCOMP_ARCH[machine]
    eperm, enosys, allow = 0x00050000 | 1, 0x00050000 | 38, 0x7FFF0000  # SECCOMP_RET_ERRNO | errno, RET_ALLOW
    ld, jeq, jge, jset, ret = 0x20, 0x15, 0x35, 0x45, 0x06
    n = len(denied)
    program = [(ld, 0, 0, 4), (jeq, 1, 0, arch), (ret, 0, 0, eperm),  # 0-2: the native ABI only
               (ld, 0, 0, 0), (jge, 0, 1, 0x40000000), (ret, 0, 0, eperm)]  # 3-5: no x32 numbers
    program += [(jeq, n - i + 5, 0, number) for i, number in enumerate(denied)]  # 6..: to the last EPERM
    program += [(jeq, 0, 1, clone3), (ret, 0, 0, enosys),
                (jeq, 0, 2, clone), (ld, 0, 0, 16), (jset, 1, 0, CLONE_NAMESPACES),  # clone: flags = args[0]
                (ret, 0, 0, allow), (ret, 0, 0, eperm)]
    return program


def _confine_system_calls() -> None:
    """Install the seccomp filter (inherited by everything the command starts)."""
    import ctypes
    import platform

    program = _seccomp_program(platform.machine())

    class Filter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_ushort), ("jt", ctypes.c_ubyte), ("jf", ctypes.c_ubyte), ("k", ctypes.c_uint)]

    class Program(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.POINTER(Filter))]

    filters = (Filter * len(program))(*[Filter(*op) for op in program])
    libc = _libc()
    _check(libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0), "prctl(no_new_privs)")
    _check(libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(Program(len(program), filters)), 0, 0),
           "seccomp")


_relay_connection: list = []  # a forked warden's connection to its relay: never in the command's hands


def _fork() -> int:
    """fork() with the warden's stop signals held, so that the child never runs the warden's handlers,
    and without the warden's connection to its relay (a command could forge the exit status with it)."""
    held = {signal.SIGTERM, GRADER_GONE}
    signal.pthread_sigmask(signal.SIG_BLOCK, held)
    pid = os.fork()
    if pid == 0:
        for signum in (signal.SIGINT, signal.SIGTERM, GRADER_GONE):
            signal.signal(signum, signal.SIG_DFL)
        for connection in _relay_connection:
            connection.close()
        _relay_connection.clear()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, held)
    return pid


def _start_command(spec: dict) -> int:
    """Fork the command: default signal handling, in the working folder, dropped to the sandbox user."""
    pid = _fork()
    if pid:
        return pid
    try:
        os.chdir(spec["workdir"])
        command = spec["command"]
        if spec.get("forked"):
            _run_in_this_process(spec)
        if spec["mode"] != "unisolated":
            _confine_system_calls()
            uid = spec["uid"]
            command = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs",
                       "--inh-caps=-all", "--bounding-set=-all", "--pdeathsig=KILL", "--", *command]
        else:
            _check(_libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl")
        os.execvp(command[0], command)
    except BaseException as err:  # noqa: BLE001 - report and leave, whatever it was
        os.write(2, f"sandbox: cannot start {spec['command'][0]}: {err}\n".encode())
    os._exit(SETUP_FAILED)


def _wait_for(main: int, connection=None) -> int:
    """Reap children until ``main`` exits; its exit status, a death by signal N as 128 + N. A forked
    warden also follows its relay's orders on ``connection`` meanwhile."""
    while True:
        pid, status = os.waitpid(-1, 0 if connection is None else os.WNOHANG)
        if pid == 0:
            _follow_relay(connection, 0.05)
        elif pid == main:
            return os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status)


def _follow_relay(connection, seconds: float) -> None:
    """Stop (``T``) or interrupt (``I``) the command as the relay says; its silence (EOF) means that the
    grader is gone."""
    import select

    if not select.select([connection], [], [], seconds)[0]:
        return
    orders = connection.recv(64)
    if not orders:
        raise _Stop(GRADER_GONE)
    if b"T" in orders:
        raise _Stop(signal.SIGTERM)
    if b"I" in orders:  # the warden ignores SIGINT, PID 1 of a namespace too: it reaches the command
        os.killpg(os.getpgrp(), signal.SIGINT)


# -- a command forked from the zygote (coursekit/zygote.py): ``python -c CODE ARGS`` run in this process --

PR_CAPBSET_DROP, PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL = 24, 47, 4


def _apply_limits(limits: dict) -> None:
    """Set the resource limits (name -> [soft, hard]) and volunteer this process to the OOM killer."""
    import resource

    for name, (soft, hard) in limits.items():
        resource.setrlimit(getattr(resource, name), (soft, hard))
    try:  # in a container at its memory limit, the kernel (not the grader) is the one the OOM killer ends
        with open("/proc/self/oom_score_adj", "w") as handle:
            handle.write("1000")
    except OSError:
        pass


def _become_user(uid: int) -> None:
    """What ``setpriv`` does before an exec'd command, in this process: no groups, ``uid`` as every user and
    group id, no capability in any set, death with the parent. Checked afterwards from /proc."""
    import ctypes

    libc = _libc()
    for cap in range(64):  # past the last capability the call fails, which is fine
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)
    _check(libc.prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0), "prctl(ambient capabilities)")
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)
    header, sets = (ctypes.c_uint32 * 2)(0x20080522, 0), (ctypes.c_uint32 * 6)()  # version 3: all sets empty
    _check(libc.capset(header, sets), "capset")
    _check(libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0), "prctl(pdeathsig)")
    with open("/proc/self/status") as handle:
        status = dict(line.rstrip("\n").split(":\t", 1) for line in handle if ":\t" in line)
    ids = status["Uid"].split() + status["Gid"].split()
    caps = [status[name] for name in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")]
    if set(ids) != {str(uid)} or status.get("Groups", "").strip() or any(int(cap, 16) for cap in caps):
        raise OSError(0, f"the command is not confined to uid {uid}: {ids} {caps}")


def _run_in_this_process(spec: dict) -> None:
    """Become the command ``python -c CODE ARGS`` in this process, as the sandbox user, with the spec's
    environment and limits, then exit with its status. The modules the zygote imported stay imported: that
    is the point; everything else a fresh interpreter would have is reset here."""
    import atexit
    import types

    _apply_limits(spec["limits"])
    if spec["mode"] != "unisolated":
        _confine_system_calls()
        _become_user(spec["uid"])
    os.environ.clear()
    os.environ.update(spec["env"])
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as a fresh interpreter: KeyboardInterrupt
    sys.dont_write_bytecode = True
    if "tempfile" in sys.modules:
        sys.modules["tempfile"].tempdir = None  # found again from TMPDIR
    if "numpy.random" in sys.modules:
        sys.modules["numpy.random"].seed()  # not the zygote's state, which every fork would share
    for name in [name for name in sys.modules if name == "coursekit" or name.startswith("coursekit.")]:
        del sys.modules[name]  # the zygote's own code: nothing the command should import from memory
    code, args = spec["command"][2], spec["command"][3:]
    main = types.ModuleType("__main__")
    sys.modules["__main__"], sys.argv = main, ["-c", *args]
    status = 0
    try:
        exec(compile(code, "<string>", "exec"), main.__dict__)
    except SystemExit as done:
        status = done.code if isinstance(done.code, int) else (0 if done.code is None else 1)
    except BaseException:  # noqa: BLE001 - as the interpreter would: a traceback and status 1
        import traceback

        traceback.print_exc()
        status = 1
    finally:
        atexit._run_exitfuncs()
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError, AttributeError):
                pass
    os._exit(status)


def _namespaced_init(spec: dict) -> None:
    """PID 1 of the new PID namespace: build the root, run the command, exit with it (which ends the namespace)."""
    _libc().prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    try:
        _build_root(spec)
        _libc().sethostname(b"sandbox", 7)
    except OSError as err:
        os.write(2, f"sandbox: cannot build the sandbox: {err}\n".encode())
        os._exit(SETUP_FAILED)
    os._exit(_wait_for(_start_command(spec)))


def warden(spec: dict, connection=None) -> int:
    """Start the command as the spec says and stay until it and everything it started are gone.

    ``connection``: a warden forked from the zygote talks to the grader through its relay (``relay``)
    instead of signals; it closes when the grader is gone."""
    def stop(signum, frame):
        raise _Stop(signum)

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # interrupts are for the command (same process group)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(GRADER_GONE, stop)
    libc = _libc()
    main = None
    if connection is not None:
        _relay_connection.append(connection)
    try:
        if connection is None and os.getppid() != spec["parent"]:
            raise _Stop(GRADER_GONE)
        if spec["mode"] == "full":
            _check(libc.unshare(CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
            main = _fork()
            if main == 0:
                _namespaced_init(spec)
        else:
            _check(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(subreaper)")
            main = _start_command(spec)
        code = _wait_for(main, connection)
    except _Stop as why:
        code = 128 + why.signum
        if why.signum == GRADER_GONE:  # nobody is left to read or remove the working folder
            _end_tree(spec, main)
            import shutil

            _libc().umount2(os.fsencode(spec["workdir"]), MNT_DETACH)  # a size-capped working folder
            shutil.rmtree(spec["workdir"], ignore_errors=True)
            return code
    except OSError as err:
        os.write(2, f"sandbox: {err}\n".encode())
        code = SETUP_FAILED
    _end_tree(spec, main)
    return code


def _end_tree(spec: dict, main: int | None) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(GRADER_GONE, signal.SIG_IGN)
    if spec["mode"] == "full":
        if main:  # killing PID 1 of the namespace kills everything in it
            try:
                os.kill(main, signal.SIGKILL)
                os.waitpid(main, 0)
            except OSError:
                pass
        return
    _kill_descendants(os.getpid())
    if spec["mode"] == "degraded":
        _kill_uid(spec["uid"])


def _probe() -> int:
    """Exit 0 if this machine lets us create the namespaces and mounts of the full mode."""
    libc = _libc()
    try:
        _check(libc.unshare(CLONE_NEWPID | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS), "unshare")
        pid = os.fork()
        if pid == 0:
            try:
                _check(libc.unshare(CLONE_NEWNS), "unshare(mount)")
                _mount(libc, None, "/", None, MS_REC | MS_PRIVATE)
                _mount(libc, "sandbox-probe", "/tmp", "tmpfs", MS_NOSUID | MS_NODEV, "size=64k")
                os._exit(0)
            except OSError as err:
                os.write(2, f"{err}\n".encode())
                os._exit(1)
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    except OSError as err:
        os.write(2, f"{err}\n".encode())
        return 1


def relay(fd: int, parent: int) -> int:
    """Stand in for a command forked by the zygote, as the grader's child: hand the forked warden this
    process's stdin, stdout and stderr, pass on SIGTERM (stop) and SIGINT (interrupt), and exit with the
    command's status. When the grader dies (GRADER_GONE) this process exits, the connection closes, and the
    forked warden ends the command and removes its working folder, as the warden itself would."""
    import socket

    connection = socket.socket(fileno=fd)
    signal.signal(signal.SIGTERM, lambda signum, frame: connection.send(b"T"))
    signal.signal(signal.SIGINT, lambda signum, frame: connection.send(b"I"))
    signal.signal(GRADER_GONE, lambda signum, frame: os._exit(128 + GRADER_GONE))
    if os.getppid() != parent:
        return 128 + GRADER_GONE
    socket.send_fds(connection, [b"S"], [0, 1, 2])
    while True:
        try:
            said = connection.recv(64)
        except OSError:
            said = b""
        if not said:
            return SETUP_FAILED
        if said.startswith(b"X"):
            return int(said[1:])


if __name__ == "__main__":
    import json

    if sys.argv[1:] == ["probe"]:
        sys.exit(_probe())
    if sys.argv[1] == "relay":
        sys.exit(relay(int(sys.argv[2]), int(sys.argv[3])))
    sys.exit(warden(json.loads(sys.argv[1])))


# ==================================================================================================
# The caller's side
# ==================================================================================================

class SandboxUnavailable(RuntimeError):
    """The sandbox cannot be set up on this machine (not root, tool missing, namespaces refused)."""


@dataclass
class Limits:
    """Resource limits of one sandboxed run."""
    cpu_seconds: int = 60
    memory_bytes: int = 4096 * MiB          # private memory, RLIMIT_DATA (never more than the machine has)
    mapping_bytes: int = 2048 * MiB         # address space beyond that: libraries and reservations (torch maps
                                            # ~0.8 GiB it never touches); shared mappings stop here
    max_processes: int = 64                 # threads count too (RLIMIT_NPROC is per user)
    max_file_bytes: int = 64 * MiB
    open_files: int = 256
    wall_seconds: float = 120.0
    max_output_bytes: int = 1 * MiB         # per stream
    tmpfs_bytes: int = 256 * MiB            # everything written outside the working folder (/tmp, /dev/shm)
    workdir_bytes: int | None = None        # the working folder's own file system (made by the caller), if any


@dataclass
class SandboxResult:
    returncode: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    output_exceeded: bool = False
    duration: float = 0.0
    command: list[str] = field(default_factory=list)
    mode: str = ""

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
WARDEN = os.path.abspath(__file__)
SCRATCH_ROOT = "/run/coursekit" if os.path.isdir("/run") else None
UID_RANGE = range(61000, 61256)  # numeric users (no passwd entry) handed out to sandboxed jobs
_claimed: dict[int, object] = {}  # uid -> open lock file: a claim lasts as long as this process
_namespaces: str | None = None  # "" when the probe succeeded, else why it failed


def _ids(user: str) -> tuple[int, int]:
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def python_paths() -> list[Path]:
    """Folders the sandboxed Python needs: this interpreter's prefixes (venv and base installation)."""
    paths = {Path(p).resolve() for p in (sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix,
                                         str(Path(sys.executable).resolve().parent.parent))}
    return sorted(p for p in paths if not any(q in p.parents for q in paths))


def _degraded_allowed(allow_degraded: bool | None) -> bool:
    if allow_degraded is not None:
        return allow_degraded
    return os.environ.get(ALLOW_DEGRADED_ENV, "").strip().lower() in ("1", "true", "yes")


def _namespace_problem() -> str:
    """Why the full mode cannot run here ("" if it can); probed once per process."""
    global _namespaces
    if os.environ.get(NO_NAMESPACES_ENV, "").strip() not in ("", "0"):
        return f"namespaces disabled by {NO_NAMESPACES_ENV}"
    if _namespaces is None:
        probe = subprocess.run([sys.executable, "-I", "-S", WARDEN, "probe"], stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=30)
        _namespaces = "" if probe.returncode == 0 else \
            f"cannot create namespaces ({probe.stderr.decode(errors='replace').strip()[:200] or probe.returncode})"
    return _namespaces


def _check_basics() -> None:
    if not sys.platform.startswith("linux"):
        raise SandboxUnavailable("the sandbox needs Linux")
    if os.geteuid() != 0:
        raise SandboxUnavailable("the sandbox must be started by root (it switches to an unprivileged user)")
    if shutil.which("setpriv") is None:
        raise SandboxUnavailable("`setpriv` (util-linux) is not installed")
    if any(str(p) == "/" for p in python_paths()):
        raise SandboxUnavailable("the Python installation is the whole filesystem (prefix /)")


def check_available(allow_degraded: bool | None = None) -> str:
    """Raise SandboxUnavailable unless this process can sandbox commands; return the mode it would use."""
    _check_basics()
    problem = _namespace_problem()
    if problem and not _degraded_allowed(allow_degraded):
        raise SandboxUnavailable(f"{problem}; set {ALLOW_DEGRADED_ENV}=1 to run with a separate uid and "
                                 "limits only (degraded mode)")
    return "degraded" if problem else "full"


_layouts: dict[tuple, str] = {}  # (mode, folders) -> why a sandboxed Python cannot use them ("" if it can)
PROBE = ("import os, sys\nimport ipykernel\n"
         "for path in sys.argv[1:]:\n    os.listdir(path) if os.path.isdir(path) else open(path, 'rb').close()\n")


def check_layout(read_only: Sequence[Path | str] = (), allow_degraded: bool | None = None) -> None:
    """Raise SandboxUnavailable, in one line naming the path and what to do, unless a sandboxed kernel can
    use this Python environment and the ``read_only`` folders where they are (checked once per process).

    Any folder works in the full mode (under /tmp, /run, /dev/shm, behind links, read-only, with spaces),
    as long as the sandbox's user may read it: the folders are bound at their real paths into a new root.
    The degraded mode sees the host's tree, so there every folder above the data must be open to others
    too (for the Python installation, the probe that starts it decides).
    """
    kind = check_available(allow_degraded)
    folders = [*python_paths(), *(Path(p).resolve() for p in read_only if Path(p).exists())]
    key = (kind, tuple(str(p) for p in folders))
    if key not in _layouts:
        _layouts[key] = _layout_problem(folders, kind, allow_degraded)
    if _layouts[key]:
        raise SandboxUnavailable(_layouts[key])


def _layout_problem(folders: list[Path], kind: str, allow_degraded: bool | None) -> str:
    for folder in folders:
        closed = _closed_to_others(folder, ancestors=kind == "degraded" and folder not in python_paths())
        if closed is not None:
            return (f"{closed} is not readable by other users, so the sandbox's user cannot use {folder}: "
                    f"run `chmod o+rX` on it (or `chmod -R o+rX {folder}`), or move {folder} to a readable folder")
    scratch = Path(SCRATCH_ROOT or tempfile.gettempdir())
    scratch.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="ck-probe-", dir=scratch))
    try:
        readable = [str(p) for p in folders[len(python_paths()):]]
        result = run([sys.executable, "-I", "-c", PROBE, *readable], workdir=work, expose_ro=readable,
                     uid=claim_uid(), allow_degraded=allow_degraded,
                     limits=Limits(wall_seconds=120, cpu_seconds=60))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if result.returncode == 0:
        return ""
    said = [line for line in printable(result.stderr).splitlines() if line.strip()]
    why = said[-1] if said else result.killed_reason or f"exit status {result.returncode}"
    return (f"a sandboxed kernel cannot start with the Python environment {sys.prefix}"
            f"{' and ' + ', '.join(readable) if readable else ''} ({why[:240]}); install the environment "
            "and the data in folders the sandbox's user may read")


def _closed_to_others(folder: Path, ancestors: bool, most: int = 5000) -> Path | None:
    """The first path that other users cannot read (folders: cannot list and enter) at ``folder``, in its
    first ``most`` entries, and with ``ancestors`` in the folders above it."""
    def closed(path: Path, is_dir: bool) -> bool:
        mode = path.stat().st_mode
        return (mode & 0o005) != 0o005 if is_dir else not mode & 0o004

    if ancestors:
        for parent in reversed(folder.parents):
            if parent.stat().st_mode & 0o001 == 0:
                return parent
    if closed(folder, folder.is_dir()):
        return folder
    if folder.is_dir() and folder not in [Path(p).resolve() for p in (sys.prefix, sys.base_prefix)]:
        seen = 0
        for top, dirs, files in os.walk(folder):
            for name, is_dir in [*((d, True) for d in dirs), *((f, False) for f in files)]:
                path = Path(top, name)
                if not path.is_symlink() and closed(path, is_dir):
                    return path
                seen += 1
                if seen >= most:
                    return None
    return None


def printable(raw: bytes, lines: int = 0, width: int = 0) -> str:
    """``raw`` output of a sandboxed program as text a person may read: no control characters or escape
    sequences; with ``lines`` and ``width``, at most that many lines of that many characters."""
    import re

    text = re.sub(r"\x1b\[[0-?]*[ -/]*[@-~]", "", raw.decode("utf-8", errors="replace"))
    text = "".join(c if c == "\n" or c.isprintable() else " " if c == "\t" else "" for c in text)
    if lines:
        kept = [line.rstrip()[:width or None] for line in text.splitlines() if line.strip()][:lines]
        text = "\n".join(kept)
    return text


def mode(uid: int | None = None, allow_degraded: bool | None = None) -> str:
    """A one-line description of the sandbox a command would get, for reports."""
    kind = check_available(allow_degraded)
    uid = uid if uid is not None else _ids(SANDBOX_USER)[0]
    if kind == "full":
        return f"full: allow-list root, namespaces (pid, net, mount, ipc), uid {uid}, rlimits"
    return f"degraded: no namespaces ({_namespace_problem()}), uid {uid}, rlimits, process-tree cleanup"


def _limit_resources(limits: Limits | None):
    """The pre-exec step of the warden: it dies with the thread that started it, within limits."""
    libc = _libc()  # loaded before fork: the child only calls it
    rlimits = _rlimits(limits) if limits is not None else None

    def apply() -> None:
        libc.prctl(PR_SET_PDEATHSIG, int(GRADER_GONE), 0, 0, 0)
        if rlimits is not None:
            _apply_limits(rlimits)
    return apply


def _rlimits(limits: Limits) -> dict[str, tuple[int, int]]:
    """The resource limits of a sandboxed command, by ``resource`` name."""
    memory = memory_limit(limits)
    return {"RLIMIT_CPU": (limits.cpu_seconds, limits.cpu_seconds + 1), "RLIMIT_DATA": (memory, memory),
            "RLIMIT_AS": (memory + limits.mapping_bytes,) * 2,
            "RLIMIT_NPROC": (limits.max_processes,) * 2, "RLIMIT_FSIZE": (limits.max_file_bytes,) * 2,
            "RLIMIT_NOFILE": (limits.open_files,) * 2, "RLIMIT_CORE": (0, 0)}


def memory_limit(limits: Limits) -> int:
    """The private memory a command gets (RLIMIT_DATA): its limit, but never more than this machine or
    container has. An address-space cap (RLIMIT_AS) of that much would starve torch, which reserves far more
    than it uses; the address space gets ``mapping_bytes`` on top instead, which bounds shared mappings."""
    return min(limits.memory_bytes, machine_memory_bytes())


_machine_memory: list[int] = []


def machine_memory_bytes() -> int:
    """The memory this process may use: MemTotal, or less where a memory cgroup (v2 or v1) limits it."""
    if not _machine_memory:
        found = []
        try:
            with open("/proc/meminfo") as handle:
                found += [int(line.split()[1]) * 1024 for line in handle if line.startswith("MemTotal:")]
        except OSError:
            pass
        found += _cgroup_memory_limits()
        _machine_memory.append(min(found) if found else 1 << 62)
    return _machine_memory[0]


def _cgroup_memory_limits() -> list[int]:
    """The memory limits of this process's cgroups and their ancestors (v2 memory.max, v1 limit_in_bytes)."""
    try:
        with open("/proc/self/cgroup") as handle:
            groups = [line.rstrip("\n").split(":", 2) for line in handle if line.count(":") >= 2]
        with open("/proc/self/mountinfo") as handle:
            mounts = [line.split() for line in handle]
    except OSError:
        return []
    limits = []
    for hierarchy, controllers, path in groups:
        v2 = hierarchy == "0" and controllers == ""
        if not v2 and "memory" not in controllers.split(","):
            continue
        for fields in mounts:
            dash = fields.index("-") if "-" in fields else -1
            if dash < 0 or fields[dash + 1] != ("cgroup2" if v2 else "cgroup"):
                continue
            if not v2 and "memory" not in fields[-1].split(","):
                continue
            root, point = fields[3], fields[4]
            relative = path[len(root):] if path.startswith(root) and root != "/" else path
            folder = Path(point + "/" + relative.lstrip("/"))
            name = "memory.max" if v2 else "memory.limit_in_bytes"
            while True:
                try:
                    value = (folder / name).read_text().strip()
                    if value.isdigit():
                        limits.append(int(value))
                except OSError:
                    pass
                if folder == Path(point) or Path(point) not in folder.parents:
                    break
                folder = folder.parent
    return limits


def cap_folder(folder: Path, size_bytes: int) -> bool:
    """Mount a tmpfs of ``size_bytes`` on the (empty) ``folder``, so that whatever is written there is
    capped; False where mounts are not allowed (e.g. a container: the folder stays as it is)."""
    if os.geteuid() != 0 or not sys.platform.startswith("linux"):
        return False
    try:
        _mount(_libc(), "coursekit-scratch", str(folder), "tmpfs", MS_NOSUID | MS_NODEV,
               f"size={int(size_bytes)},nr_inodes=65536,mode=700")
        return True
    except OSError:
        return False


def uncap_folder(folder: Path) -> None:
    """Undo ``cap_folder`` (nothing happens if the folder has no file system of its own)."""
    if os.path.ismount(folder):
        _libc().umount2(os.fsencode(str(folder)), MNT_DETACH)


@dataclass
class Prepared:
    """A sandboxed command ready for ``subprocess.Popen(argv, env=env, preexec_fn=preexec_fn)``.

    Stop it with ``stop(pid)`` (the warden ends the whole tree), not by killing the warden.
    """
    argv: list[str]
    env: dict[str, str]
    preexec_fn: object
    stage: Path | None = None  # kept for callers of the former sandbox; nothing is staged on the host
    mode: str = ""
    relay_connection: object = None  # forked from the zygote: the relay's end, for Popen's pass_fds

    @property
    def pass_fds(self) -> tuple[int, ...]:
        return (self.relay_connection.fileno(),) if self.relay_connection is not None else ()

    def started(self) -> None:
        """Call once Popen has run (or failed): the relay holds its own copy of the connection, and the
        forked warden must see it close when the relay ends."""
        if self.relay_connection is not None:
            self.relay_connection.close()


def give_to_sandbox_user(path: Path, uid: int | None = None) -> None:
    """Make ``path`` (and everything below it) owned by the sandbox user, so the sandbox can use it."""
    _chown_tree(path, *((uid, uid) if uid is not None else _ids(SANDBOX_USER)))


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    for root, dirs, files in os.walk(path):
        for name in [*dirs, *files]:
            os.lchown(os.path.join(root, name), uid, gid)
    os.lchown(path, uid, gid)


def claim_uid() -> int:
    """Reserve a sandbox uid for this process, unique among all graders running on this machine.

    A parallel job must not share its uid with another one: process limits are per uid, and leftover
    processes are killed by uid. The claim is an exclusive lock on /run/coursekit/uids/uid-N.lock,
    released when the process exits.
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
    # kill(-1) from a process that has become the uid reaches all of its processes at once (a forking
    # process cannot outrun it, unlike a scan of /proc)
    subprocess.run(["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "kill", "-KILL", "-1"],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def prepare(command: Sequence[str], *, workdir: Path | str, limits: Limits | None = None,
            expose_ro: Sequence[Path | str] = (),
            env: dict[str, str] | None = None, uid: int | None = None, isolated: bool = True,
            allow_degraded: bool | None = None, zygote=None) -> Prepared:
    """Build the sandboxed form of ``command``, with ``workdir`` (made the sandbox user's) as its only
    writable folder.

    ``expose_ro``: folders (or files) mounted read-only at their own paths (the Python installation is
    always added); nothing else of the host exists inside. ``uid`` runs the command as that numeric user and
    group instead of nobody (one per parallel job, so that process limits are per job). ``isolated=False``
    runs the command as the caller, with the caller's environment plus ``env`` and no limits, and only ends
    its process tree with it (trusted code). ``allow_degraded``: see the module docstring. ``zygote`` (a
    ``coursekit.zygote.Zygote``; sandboxed ``python -c CODE ARGS`` commands only): the command is a fork of
    that process, its modules already imported, in the same sandbox; the argv then starts its relay.
    """
    workdir = Path(workdir).resolve()
    spec: dict = {"command": _without_links(command), "workdir": str(workdir), "parent": os.getpid()}
    if not isolated:
        spec["mode"] = "unisolated"
        run_env = {**os.environ, **(env or {})}
        return Prepared(argv=[sys.executable, "-I", "-S", WARDEN, _json(spec)], env=run_env,
                        preexec_fn=_limit_resources(None), mode="unisolated: the grader's own user")
    kind = check_available(allow_degraded)
    limits = limits or Limits()
    uid, gid = (uid, uid) if uid is not None else _ids(SANDBOX_USER)
    if uid == 0 or gid == 0:
        raise SandboxUnavailable("refusing to run sandboxed code as root")
    _chown_tree(workdir, uid, gid)
    os.chmod(workdir, 0o700)
    exposed = []  # each folder at its real path, and at the path it was given when that goes through links
    for given in (Path(os.path.abspath(p)) for p in expose_ro if Path(p).exists()):
        exposed += [str(path) for path in dict.fromkeys([given.resolve(), given]) if str(path) not in exposed]
    spec.update(mode=kind, uid=uid, python=[str(p) for p in python_paths()], read_only=exposed,
                tmpfs_bytes=int(limits.tmpfs_bytes))
    run_env = {**base_env(workdir), **(env or {})}
    if zygote is not None and (kind == "full" or _python_open_to_others()):
        if list(command)[1:2] != ["-c"]:
            raise ValueError("only a `python -c CODE ARGS` command can be forked from the zygote")
        try:
            connection = zygote.fork({**spec, "forked": True, "env": run_env, "limits": _rlimits(limits)})
        except OSError:  # the zygote is gone: this command starts as a new interpreter
            connection = None
        if connection is not None:
            argv = [sys.executable, "-I", "-S", WARDEN, "relay", str(connection.fileno()), str(os.getpid())]
            return Prepared(argv=argv, env={"PATH": run_env["PATH"]}, preexec_fn=_limit_resources(None),
                            mode=mode(uid, allow_degraded), relay_connection=connection)
    return Prepared(argv=[sys.executable, "-I", "-S", WARDEN, _json(spec)], env=run_env,
                    preexec_fn=_limit_resources(limits), mode=mode(uid, allow_degraded))


def base_env(workdir: Path | str) -> dict[str, str]:
    """The environment every sandboxed command starts from (its own additions come on top)."""
    return {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(workdir), "LANG": "C.UTF-8",
            "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONDONTWRITEBYTECODE": "1",
            "PYTHONNOUSERSITE": "1", "TMPDIR": str(workdir), "MPLCONFIGDIR": str(workdir)}


def _python_open_to_others() -> bool:
    """Whether the sandbox user can read the Python installation on the host (degraded mode sees the host's
    tree). A fork of the zygote needs it for every module imported after the fork; an exec'd interpreter
    can still start without it, from the system's standard library."""
    if not _python_open:
        _python_open.append(all(_closed_to_others(path, ancestors=True, most=50) is None
                                for path in python_paths()))
    return _python_open[0]


_python_open: list[bool] = []


def _without_links(command: Sequence[str]) -> list[str]:
    """``command`` with its program's folder resolved: inside the sandbox only real paths exist (a venv
    reached through a linked folder), while the program's own name is kept (a venv's python is a link
    that must be called by its name in the venv, so that it finds pyvenv.cfg)."""
    command = list(command)
    if command and os.path.isabs(command[0]):
        program = Path(command[0])
        command[0] = str(program.parent.resolve() / program.name)
    return command


def _json(spec: dict) -> str:
    import json

    return json.dumps(spec)


def stop(pid: int, grace: float = 5.0) -> None:
    """Ask the warden ``pid`` to end its command's whole tree; SIGKILL its process group if it does not."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:  # not waitpid: the exit status belongs to the Popen object
        if _is_zombie(pid):
            return
        time.sleep(0.01)
    try:
        os.killpg(pid, signal.SIGKILL)
    except OSError:
        pass


def _is_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            stat = handle.read()
        return stat[stat.rindex(b")") + 2:].startswith(b"Z")
    except OSError:
        return True


def run(command: Sequence[str], *, workdir: Path | str, limits: Limits | None = None,
        expose_ro: Sequence[Path | str] = (),
        env: dict[str, str] | None = None, uid: int | None = None, isolated: bool = True,
        allow_degraded: bool | None = None) -> SandboxResult:
    """Run ``command`` in the sandbox (see ``prepare``), capturing its output up to the limits."""
    limits = limits or Limits()
    prepared = prepare(command, workdir=workdir, limits=limits, expose_ro=expose_ro, env=env,
                       uid=uid, isolated=isolated, allow_degraded=allow_degraded)
    started = time.monotonic()
    proc = subprocess.Popen(prepared.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=prepared.env, start_new_session=True,
                            preexec_fn=prepared.preexec_fn)
    buffers = {"stdout": bytearray(), "stderr": bytearray()}
    exceeded = threading.Event()

    def pump(stream, key: str) -> None:
        while True:
            chunk = stream.read(65536)
            if not chunk:
                return
            room = limits.max_output_bytes - len(buffers[key])
            buffers[key] += chunk[:max(room, 0)]
            if len(chunk) > room and not exceeded.is_set():
                exceeded.set()
                threading.Thread(target=stop, args=(proc.pid,), daemon=True).start()

    threads = [threading.Thread(target=pump, args=(proc.stdout, "stdout"), daemon=True),
               threading.Thread(target=pump, args=(proc.stderr, "stderr"), daemon=True)]
    for t in threads:
        t.start()
    timed_out = False
    try:
        proc.wait(timeout=limits.wall_seconds)
    except subprocess.TimeoutExpired:
        timed_out = True
        stop(proc.pid)
        proc.wait()
    except BaseException:
        stop(proc.pid)
        raise
    for t in threads:
        t.join(timeout=5)
    code = proc.returncode
    if code is not None and 128 < code < 128 + 65 and not timed_out and not exceeded.is_set():
        code = -(code - 128)   # the warden's report of a death by signal
    return SandboxResult(returncode=code, stdout=bytes(buffers["stdout"]),
                         stderr=bytes(buffers["stderr"]), timed_out=timed_out,
                         output_exceeded=exceeded.is_set(), duration=time.monotonic() - started,
                         command=list(command), mode=prepared.mode)
