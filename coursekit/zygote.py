"""The zygote: a pristine Python process with the course's heavy modules imported, forked once per kernel.

Importing torch takes about 3 CPU-seconds, and every hw6 notebook does it in a fresh kernel. The zygote
imports the modules once (``SandboxedExecute.preload_modules``, with ipykernel) and then only forks: for
each kernel it forks a warden (``sandbox.warden``), which builds the same sandbox as for an exec'd kernel
(namespaces, the allow-listed root, the sandbox uid, seccomp, limits) and runs the kernel's launcher in
the forked process instead of starting a new interpreter.

Why this is safe:
  * the zygote never runs student code and never reads course files: it imports libraries, then waits;
    every kernel is a copy-on-write copy of that pristine state, so nothing one notebook does (patched
    modules, files, environment) reaches the next one;
  * the forked warden keeps nothing of the zygote's descriptors but its connection to its *relay*, which
    neither the sandboxed command nor its children hold;
  * the grader sees an ordinary child process, the relay (``sandbox.relay``): it passes on stop and
    interrupt and exits with the kernel's status, and when the grader dies the relay does too, so the
    forked warden ends the kernel and removes its folder, as the warden does for an exec'd kernel;
  * the zygote talks to its grader over a socket pair (no path, no port): no kernel can reach it.

One zygote per grading process (``Zygote.running``); it ends when that process closes its end.
"""
from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

# What every kernel imports, whatever the course preloads. ipykernel.ipkernel brings its debugger (debugpy):
# 0.1-0.2 s of every kernel's start when imported there.
KERNEL_MODULES = ("ipykernel.kernelapp", "ipykernel.ipkernel", "zmq")


class ZygoteUnavailable(RuntimeError):
    """The zygote could not start (a module failed to import, or started a thread)."""


class Zygote:
    """A running zygote of this process, and the way to fork a sandboxed command from it."""

    _running: dict[tuple, "Zygote"] = {}  # at most KEEP, the most recently used last
    KEEP = 2  # a torch zygote holds a few hundred MB: a process grading two kinds of course keeps both

    def __init__(self, modules: tuple[str, ...], env: dict[str, str], startup_timeout: float = 120.0) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.home = tempfile.mkdtemp(prefix="coursekit-zygote-")  # its HOME, TMPDIR and matplotlib cache
        env = {**env, "HOME": self.home, "TMPDIR": self.home, "MPLCONFIGDIR": self.home}
        self.process = subprocess.Popen(
            [sys.executable, __file__, json.dumps([*KERNEL_MODULES, *modules]),
             str(theirs.fileno())], pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, cwd=self.home)
        theirs.close()
        self.control, self.lock, self.owner = ours, threading.Lock(), os.getpid()
        atexit.register(self.close)
        ours.settimeout(startup_timeout)
        try:
            answer = ours.recv(65536)
        except OSError as err:
            answer = f"no answer ({err})".encode()
        ours.settimeout(None)
        if answer != b"ready":
            self.close()
            raise ZygoteUnavailable(answer.decode(errors="replace") or "it exited before it was ready")

    @classmethod
    def running(cls, modules: tuple[str, ...], env: dict[str, str]) -> "Zygote":
        """This process's zygote for ``modules`` and ``env`` (started on first use, again if it died)."""
        key = (os.getpid(), tuple(modules), tuple(sorted(env.items())))
        zygote = cls._running.pop(key, None)
        if zygote is None or zygote.process.poll() is not None:
            for old in [k for k in cls._running if k[0] != key[0]]:  # inherited through a fork: not ours
                del cls._running[old]
            while len(cls._running) >= cls.KEEP:
                cls._running.pop(next(iter(cls._running))).close()
            zygote = cls(tuple(modules), env)
        cls._running[key] = zygote
        return zygote

    def fork(self, spec: dict) -> socket.socket:
        """Fork a warden for ``spec`` (see ``sandbox.prepare``); the connection its relay must be given."""
        relay_end, warden_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with self.lock:
                socket.send_fds(self.control, [json.dumps(spec).encode()], [warden_end.fileno()])
        except OSError:
            relay_end.close()
            raise
        finally:
            warden_end.close()
        return relay_end

    def close(self) -> None:
        """End the zygote (the kernels forked from it go on) and remove its folder; once, by its owner."""
        if os.getpid() != self.owner or self.control.fileno() < 0:
            return
        self.control.close()  # the zygote exits when it reads the end of its control socket
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.home, ignore_errors=True)


def serve(modules: list[str], control_fd: int) -> int:
    """The zygote's life: import ``modules``, say "ready", then fork a warden per request until EOF."""
    import importlib

    control = socket.socket(fileno=control_fd)
    try:
        for name in modules:
            importlib.import_module(name)
    except BaseException as err:  # noqa: BLE001 - whatever an import raised, the grader must hear it
        control.send(f"cannot import {name}: {err.__class__.__name__}: {err}"[:4000].encode())
        return 1
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:  # forking a process with threads copies their locks, not the threads
        control.send(f"importing {', '.join(modules)} started {threads - 1} thread(s)".encode())
        return 1
    control.send(b"ready")
    while True:
        try:
            request, fds, _, _ = socket.recv_fds(control, 1 << 20, 1)
        except OSError:
            return 0
        _reap()
        if not request:
            return 0
        if len(fds) != 1:
            for fd in fds:
                os.close(fd)
            continue
        if os.fork() == 0:
            control.close()
            _forked_warden(request, fds[0])  # never returns
        os.close(fds[0])


def _forked_warden(request: bytes, fd: int) -> None:
    """In a fork of the zygote: become the warden of one command, in a session of its own, with the relay's
    stdin, stdout and stderr and no other descriptor of the zygote; report the status to the relay."""
    from coursekit import sandbox

    code = sandbox.SETUP_FAILED
    connection = None
    try:
        os.setsid()  # its own process group: an interrupt reaches this command only
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.closerange(3, fd)
        os.closerange(fd + 1, 1 << 16)
        connection = socket.socket(fileno=fd)
        _, stdio, _, _ = socket.recv_fds(connection, 16, 3)
        if len(stdio) != 3:
            raise OSError(0, "the relay sent no stdin, stdout and stderr")
        for target, source in enumerate(stdio):
            os.dup2(source, target)
            os.close(source)
        code = sandbox.warden(json.loads(request), connection)
    except BaseException as err:  # noqa: BLE001 - report and leave, whatever it was
        try:
            os.write(2, f"sandbox: {err}\n".encode())
        except OSError:
            pass
    finally:
        try:
            if connection is not None:
                connection.send(f"X{code}".encode())
        except OSError:
            pass
        os._exit(code)


def _reap() -> None:
    """Collect the forked wardens that have ended."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass
    except ChildProcessError:
        pass


if __name__ == "__main__":
    # Run as a script: its own folder (coursekit/) is sys.path[0], where a kernel's `python -c` has '' (which
    # ipykernel's launcher drops). The wardens' code is imported from this package's parent, which may be on
    # no path at all (Gradescope's zip puts it on PYTHONPATH, which the zygote's environment leaves out), and
    # neither folder stays on the path kernels inherit.
    del sys.path[0]
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from coursekit import sandbox  # noqa: F401 - imported once here, for every forked warden

    del sys.path[0]
    sys.exit(serve(json.loads(sys.argv[1]), int(sys.argv[2])))
