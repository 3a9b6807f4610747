"""Run one notebook for grading: in a sandboxed kernel, with verdicts decided outside it.

The kernel is an ordinary IPython kernel started through ``coursekit.sandbox`` (unprivileged user,
no network, an allow-list root that holds only the Python installation, the data and its working
folder, resource limits); unsandboxed kernels (trusted code) still run under the sandbox's warden, so
that in every case the kernel's whole process tree ends with the notebook, also when the grader is
killed. The grader talks to the kernel over Unix-domain (IPC) sockets inside the kernel's scratch
folder, which work across the network namespace. Outputs are capped while they arrive; a watchdog
stops the kernel when the notebook's time limit or the submission's time budget (``deadline``) is
spent; a kernel that dies (``os._exit``, segfault, limits) leaves the remaining cells unexecuted, so
their checks simply never ran.
"""
from __future__ import annotations

import asyncio
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from typing import Any

import zmq
import zmq.asyncio
from jupyter_client.asynchronous import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbformat.v4 import new_output
from traitlets import Type, default
from zmq.utils.monitor import recv_monitor_message

from coursekit import sandbox
from coursekit.zygote import Zygote, ZygoteUnavailable

KERNEL_ENV = {"MPLBACKEND": "module://matplotlib_inline.backend_inline", "NBGRADER_EXECUTION": "autograde",
              "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
              "PYDEVD_DISABLE_FILE_VALIDATION": "1"}  # ipykernel's debugger: no warning about frozen modules
PER_KERNEL_ENV = ("HOME", "TMPDIR", "MPLCONFIGDIR")  # the kernel's own folder: not the zygote's environment
_zygote_failures: list[str] = []  # why the zygote could not start in this process (warned once)


@dataclass
class ExecutionSettings:
    """How a notebook is run for grading. Every default lives on the ``SandboxedExecute`` preprocessor's
    traits; build these with ``SandboxedExecute(...).execution_settings()``."""

    sandboxed: bool
    cell_timeout: int | None  # seconds per cell (None: no limit)
    notebook_timeout: int
    startup_timeout: int
    kernel_arguments: tuple[str, ...]
    max_output_bytes: int  # per notebook, as received from the kernel
    max_message_bytes: int  # per message: a larger one is refused before it is read, and the kernel stopped
    max_received_bytes: int  # per notebook, every message as received (dropped output too): then the kernel stops
    max_queued_messages: int  # per socket: received, not yet read (with max_message_bytes, bounds the memory)
    max_record_bytes: int  # check records kept per notebook (trained weights are large)
    limits: sandbox.Limits
    allow_degraded: bool | None  # sandbox without namespaces allowed (None: the environment decides)
    read_only: tuple[str, ...] = ()  # folders the kernel may read, at their own paths (e.g. the data set)
    environment: dict[str, str] = field(default_factory=dict)
    record_mime: str = ""  # outputs of this type are check records (their own output budget)
    uid: int | None = None  # distinct per parallel job, so process limits are per student
    preload_modules: tuple[str, ...] | None = None  # kernels fork from a zygote with these imported (None: exec)
    deadline: float | None = None  # time.monotonic() at which the submission's time budget is spent


@dataclass
class ExecutionReport:
    executed_cells: int = 0
    problems: list[str] = field(default_factory=list)
    sandbox_mode: str = ""  # how the kernel was confined (sandbox.mode()), for reports


# ``python -m ipykernel_launcher``, except that the kernel's IOPub socket queues without a message limit
# (ZeroMQ's SNDHWM 0, instead of 1,000 messages, past which it drops output). The grader reads at most
# ``max_queued_messages`` ahead (RCVHWM), so a burst of output waits in the kernel's own memory (under its
# memory limit) instead of being dropped or filling the grader's.
# The grader's sockets connect before the kernel has bound its own; ZeroMQ then tries again every
# RECONNECT_MS (its default, 100 ms, was a sixth of a small notebook's grading). What IOPub publishes before
# it is connected is lost, so "ready" waits IDLE_AFTER_REPLY for the status that follows a kernel_info reply,
# then asks again.
RECONNECT_MS = 10
IDLE_AFTER_REPLY = 0.2

KERNEL_LAUNCHER = """
import sys
if sys.path and sys.path[0] == '':
    del sys.path[0]  # as ipykernel_launcher: never import from the working folder first
sys.modules['debugpy'] = None  # no debugger in a grading kernel (ipykernel starts without it): 0.25 CPU-s less
import zmq
from ipykernel import kernelapp
_init_iopub = kernelapp.IPKernelApp.init_iopub
def _init_iopub_unlimited(app, context):
    context.setsockopt(zmq.SNDHWM, 0)
    _init_iopub(app, context)
kernelapp.IPKernelApp.init_iopub = _init_iopub_unlimited
kernelapp.launch_new_instance()
"""


class CountedChannel(AsyncZMQSocketChannel):
    """A channel that tells its kernel manager the size of every message as received, before it is decoded,
    so that a kernel sending more than the notebook's budget is stopped (``SandboxedKernelManager.received``)."""

    manager: SandboxedKernelManager | None = None

    async def _recv(self, **kwargs: Any) -> dict[str, Any]:
        frames = await self.socket.recv_multipart(**kwargs)
        if self.manager is not None:
            self.manager.received(sum(len(frame) for frame in frames))
        _, message = self.session.feed_identities(frames)
        return self.session.deserialize(message)


class CappedKernelClient(AsyncKernelClient):
    """A kernel client whose sockets refuse any message larger than ``max_message_bytes`` before reading
    it (ZeroMQ's MAXMSGSIZE: the kernel is disconnected instead), so the grader's memory does not grow
    with what a kernel sends. Its manager watches the disconnections and stops the kernel, saying why.

    Many messages just under that size are bounded too: each socket queues at most ``max_queued_messages``
    (ZeroMQ's RCVHWM; beyond it ZeroMQ stops reading from the kernel, whose own queue then fills, in its
    own memory), and every message is counted as it arrives (``CountedChannel``)."""

    shell_channel_class = Type(CountedChannel)
    iopub_channel_class = Type(CountedChannel)
    stdin_channel_class = Type(CountedChannel)
    control_channel_class = Type(CountedChannel)

    @default("context")
    def _context_default(self) -> zmq.asyncio.Context:
        self._created_context = True
        context = zmq.asyncio.Context()
        context.setsockopt(zmq.MAXMSGSIZE, self.parent.settings.max_message_bytes)
        context.setsockopt(zmq.RCVHWM, self.parent.settings.max_queued_messages)
        return context

    def _create_connected_socket(self, channel: str, identity: bytes | None = None) -> zmq.Socket:
        socket = super()._create_connected_socket(channel, identity)
        if channel in ("iopub", "shell", "stdin", "control"):
            self.parent.watch(socket)
        return socket

    def _counted(self, channel: CountedChannel) -> CountedChannel:
        channel.manager = self.parent
        return channel

    shell_channel = property(lambda self: self._counted(AsyncKernelClient.shell_channel.fget(self)))
    iopub_channel = property(lambda self: self._counted(AsyncKernelClient.iopub_channel.fget(self)))
    stdin_channel = property(lambda self: self._counted(AsyncKernelClient.stdin_channel.fget(self)))
    control_channel = property(lambda self: self._counted(AsyncKernelClient.control_channel.fget(self)))

    async def wait_for_ready(self, timeout: float | None = None) -> None:
        """Ready when a ``kernel_info`` request is answered on shell and its status "idle" has come over IOPub
        (so IOPub is connected too); asked again until then, up to ``timeout``. The kernel publishes that
        status right after its reply: when it does not come soon, IOPub was not connected yet and it is lost.

        jupyter_client's own wait then reads IOPub until it has been silent for 0.2 s, a third of a small
        notebook's grading. Nothing needs that: every reply and output is matched to its request by id."""
        deadline = time.monotonic() + (float("inf") if timeout is None else timeout)
        while True:
            self.kernel_info()
            try:
                reply = await self.shell_channel.get_msg(timeout=1)
            except Empty:
                reply = None
            if reply is not None and reply["msg_type"] == "kernel_info_reply" \
                    and await self._idle_after(reply["parent_header"].get("msg_id"), seconds=IDLE_AFTER_REPLY):
                self._handle_kernel_info_reply(reply)
                return
            if not await self._async_is_alive():
                raise RuntimeError("Kernel died before replying to kernel_info")
            if time.monotonic() > deadline:
                raise RuntimeError(f"Kernel didn't respond in {timeout:.0f} seconds")

    async def _idle_after(self, request_id: str | None, seconds: float) -> bool:
        """Whether IOPub says "idle" for ``request_id`` within ``seconds`` (older messages are dropped)."""
        until = time.monotonic() + seconds
        while (left := until - time.monotonic()) > 0:
            try:
                message = await self.iopub_channel.get_msg(timeout=left)
            except Empty:
                return False
            if (message["msg_type"] == "status" and message["content"].get("execution_state") == "idle"
                    and message["parent_header"].get("msg_id") == request_id):
                return True
        return False


class SandboxedKernelManager(AsyncKernelManager):
    """Starts the kernel (``KERNEL_LAUNCHER``: ipykernel's launcher) through the sandbox, talking over IPC sockets."""

    settings: ExecutionSettings
    workdir: Path
    cut_off = ""  # why the grader stopped the kernel itself (a message over the limit)
    cell = 0  # the cell being run
    received_bytes = 0  # every message from the kernel, as received

    def received(self, size: int) -> None:
        """Count a message from the kernel; past the notebook's budget, stop the kernel (once), saying why.
        Output past ``max_output_bytes`` is dropped, but reading and decoding it still costs the grader:
        a kernel that floods messages just under the size limit is stopped here."""
        self.received_bytes += size
        if self.received_bytes <= self.settings.max_received_bytes or self.cut_off:
            return
        limit = self.settings.max_received_bytes / 2 ** 20
        self.cut_off = (f"the kernel sent more than the grader's limit of {limit:g} MiB of messages (output "
                        f"in a loop?) at cell {self.cell}; it was stopped and later cells did not run")
        pid = self.warden_pid()
        if pid is not None:  # not in the event loop: the warden may take a moment to end the kernel's tree
            threading.Thread(target=sandbox.stop, args=(pid,), daemon=True).start()

    def watch(self, socket: zmq.Socket) -> None:
        """Stop the kernel when ``socket`` loses it while it runs: ZeroMQ dropped an oversize message."""
        address = f"inproc://coursekit-monitor-{id(self)}-{id(socket)}"
        socket.monitor(address, zmq.EVENT_DISCONNECTED)
        monitor = zmq.Context.shadow(socket.context.underlying).socket(zmq.PAIR)
        monitor.connect(address)
        watcher = threading.Thread(target=self._watch, args=(monitor,), daemon=True)
        self.watchers = [*getattr(self, "watchers", []), watcher]
        watcher.start()

    def _watch(self, monitor: zmq.Socket, grace: float = 3.0) -> None:
        """A refused message disconnects the kernel for good (the channel is dead, the notebook would hang).
        A kernel that dies disconnects too, but then its warden ends within ``grace`` seconds."""
        try:
            while not getattr(self, "finished", False):
                if not monitor.poll(200):
                    continue
                if recv_monitor_message(monitor)["event"] != zmq.EVENT_DISCONNECTED:
                    return  # the monitor stopped: the socket was closed
                cell = self.cell
                end = time.monotonic() + grace
                while (self.warden_pid() is not None and time.monotonic() < end
                       and not getattr(self, "finished", False)):
                    time.sleep(0.05)
                pid = self.warden_pid()
                if pid is not None and not getattr(self, "finished", False):
                    limit = self.settings.max_message_bytes / 2 ** 20
                    self.cut_off = (f"the kernel sent a message larger than the grader's limit of {limit:g} MiB "
                                    f"(one huge output?) at cell {cell}; it was stopped and later cells did not run")
                    sandbox.stop(pid)
                return
        except zmq.ContextTerminated:
            return  # the grader released the connection: nothing left to watch
        finally:
            monitor.close(linger=0)

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        # parent_handle=0: inside the PID namespace the kernel's parent is PID 1, which ipykernel's
        # parent poller would take for "the grader exited".
        # capture_fd_output=False: what C code writes to stderr (a crash's last words) comes straight to the
        # grader's pipe, not through a thread of the kernel that dies with it
        command = [sys.executable, "-c", KERNEL_LAUNCHER, "-f", self.connection_file,
                   "--IPKernelApp.parent_handle=0", "--IPKernelApp.capture_fd_output=False",
                   *(extra_arguments or [])]
        self._prepared = sandbox.prepare(command, workdir=self.workdir, limits=self.settings.limits,
                                         expose_ro=self.settings.read_only, env=self._kernel_env(),
                                         uid=self.settings.uid, isolated=self.settings.sandboxed,
                                         allow_degraded=self.settings.allow_degraded, zygote=self._zygote())
        return self._prepared.argv

    def _zygote(self) -> Zygote | None:
        """This process's zygote for the course's preloaded modules (sandboxed kernels only); None where it
        is turned off or cannot start (the kernel then starts as a new interpreter, which only costs time)."""
        if not self.settings.sandboxed or self.settings.preload_modules is None:
            return None
        env = {key: value for key, value in {**sandbox.base_env(self.workdir), **KERNEL_ENV}.items()
               if key not in PER_KERNEL_ENV}  # what imports may read; the course's own variables come per kernel
        try:
            return Zygote.running(self.settings.preload_modules, env)
        except (OSError, ZygoteUnavailable) as err:
            if not _zygote_failures:
                self.log.warning("kernels start without preloaded modules (slower): %s", err)
            _zygote_failures.append(str(err))
            return None

    def _kernel_env(self) -> dict[str, str]:
        return {"HOME": str(self.workdir), "MPLCONFIGDIR": str(self.workdir), "TMPDIR": str(self.workdir),
                **KERNEL_ENV, **self.settings.environment}

    def write_connection_file(self, **kwargs: Any) -> None:
        super().write_connection_file(**kwargs)
        if self.settings.sandboxed:
            sandbox.give_to_sandbox_user(Path(self.connection_file), uid=self.settings.uid)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        kw["env"] = self._prepared.env
        kw["preexec_fn"] = self._prepared.preexec_fn
        kw["stdin"] = kw["stdout"] = subprocess.DEVNULL  # the kernel's raw stdout goes nowhere
        kw["stderr"] = subprocess.PIPE  # its first lines say why a kernel (or the sandbox) gave up
        kw["cwd"] = str(self.workdir)
        kw["pass_fds"] = self._prepared.pass_fds
        try:
            await super()._async_launch_kernel(kernel_cmd, **kw)
        finally:
            self._prepared.started()
        process = getattr(self.provisioner, "process", None)
        if process is not None and process.stderr is not None:
            self.stderr = StderrHead(process.stderr)

    def last_words(self) -> str:
        """The first lines the kernel (or its sandbox) wrote to stderr, as one short printable line."""
        stderr = getattr(self, "stderr", None)
        return stderr.text() if stderr is not None else ""

    def exit_code(self) -> int | None:
        """The kernel's (its warden's) exit status once it has ended: 128 + N for a death by signal N."""
        process = getattr(self.provisioner, "process", None)
        return process.poll() if process is not None else None

    def warden_pid(self) -> int | None:
        """The pid of the kernel's warden while it runs (never a reaped pid, which could be reused)."""
        process = getattr(self.provisioner, "process", None)
        return process.pid if process is not None and process.poll() is None else None

    async def _async_kill_kernel(self, restart: bool = False) -> None:
        # the warden ends the whole tree (daemons included) when asked; a SIGKILL would only end the warden
        pid = self.warden_pid()
        if pid is not None:
            await asyncio.get_running_loop().run_in_executor(None, sandbox.stop, pid, 3.0)
        await super()._async_kill_kernel(restart=restart)


class StderrHead:
    """Keeps the first and the last ``keep`` bytes of a kernel's stderr pipe and drains the rest (so the
    kernel never blocks on a full pipe, and the grader never holds more than that of it)."""

    def __init__(self, pipe: Any, keep: int = 4096) -> None:
        self.head, self.tail, self.keep, self.more = bytearray(), bytearray(), keep, False
        self.thread = threading.Thread(target=self._drain, args=(pipe,), daemon=True)
        self.thread.start()

    def _drain(self, pipe: Any) -> None:
        with pipe:
            while chunk := pipe.read1(65536) if hasattr(pipe, "read1") else pipe.read(65536):
                room = max(self.keep - len(self.head), 0)
                self.head += chunk[:room]
                if len(chunk) > room:
                    self.more = True
                    self.tail = (self.tail + chunk[room:])[-self.keep:]

    def text(self, lines: int = 3, width: int = 160) -> str:
        """What it said, in one line: its first lines, and its last ones when it said more."""
        self.thread.join(timeout=1.0)  # the kernel has exited: what it wrote is in the pipe
        noise = ("NOTE: When using the `ipython kernel` entry point",)  # ipykernel's start-up chatter

        def said(raw: bytes) -> list[str]:
            return [line.strip()[:width] for line in sandbox.printable(raw).splitlines()
                    if line.strip() and not line.startswith(noise)]

        first, last = said(bytes(self.head)), said(bytes(self.tail))
        kept = first[:lines] + (["..."] + last[-2:] if self.more and last else [])
        return " | ".join(kept)


class CappedNotebookClient(NotebookClient):
    """nbclient that keeps at most ``max_output_bytes`` of outputs (and as much of check records)."""

    def __init__(self, *args: Any, max_output_bytes: int, max_record_bytes: int, record_mime: str,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.max_output_bytes = max_output_bytes
        self.max_record_bytes = max_record_bytes
        self.record_mime = record_mime
        self._received = self._record_bytes = 0
        self._truncated_cells: set[int] = set()
        self.timed_out: dict[int, bool] = {}  # cells interrupted at their time limit

    async def _async_handle_timeout(self, timeout: int, cell: NotebookNode | None = None) -> Any:
        # nbclient interrupts the cell and carries on: remember it, so the student is told why it stopped
        if cell is not None:
            index = next((i for i, c in enumerate(self.nb.cells) if c is cell), None)
            if index is not None:
                self.timed_out[index] = True
        return await super()._async_handle_timeout(timeout, cell)

    def output(self, outs, msg, display_id, cell_index):  # noqa: D401 (nbclient hook)
        content = msg.get("content", {})
        data = content.get("data", {}) if isinstance(content.get("data"), dict) else {}
        is_record = bool(self.record_mime) and self.record_mime in data
        size = len(str(content.get("text", ""))) + sum(len(str(v)) for v in data.values()) \
            + sum(len(str(line)) for line in content.get("traceback", []) or [])
        # check records have their own budget, so a flood of prints cannot crowd out the tests
        if is_record:
            self._record_bytes += size
        else:
            self._received += size
        if self._received > self.max_output_bytes or self._record_bytes > self.max_record_bytes:
            if cell_index not in self._truncated_cells:
                self._truncated_cells.add(cell_index)
                outs.append(new_output("stream", name="stderr",
                                       text="[grader] output limit reached: further output was dropped\n"))
            return None
        return super().output(outs, msg, display_id, cell_index)


def execute(nb: NotebookNode, workdir: Path, settings: ExecutionSettings,
            skip: frozenset[int] = frozenset()) -> ExecutionReport:
    """Execute ``nb`` in place with ``workdir`` as the kernel's working folder (made the sandbox's own),
    leaving out the code cells whose indices are in ``skip`` (no kernel starts if nothing is left)."""
    report = ExecutionReport()
    code_cells = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and i not in skip]
    if not code_cells and skip:
        return report
    budget = float(settings.notebook_timeout)
    if settings.deadline is not None:
        left = settings.deadline - time.monotonic()
        if left <= 0:
            first = code_cells[0] if code_cells else 0
            report.problems.append(f"reached the submission's time budget at cell {first}; later cells did not run")
            return report
        budget = min(budget, left)
    by_deadline = settings.deadline is not None and budget < settings.notebook_timeout
    km = SandboxedKernelManager(kernel_name="python3", transport="ipc", ip=str(workdir / ".k"),
                                connection_file=str(workdir / ".kernel.json"))
    km.settings, km.workdir = settings, workdir
    km.client_factory = CappedKernelClient
    km.context.setsockopt(zmq.MAXMSGSIZE, settings.max_message_bytes)  # its own socket: control
    km.context.setsockopt(zmq.RCVHWM, settings.max_queued_messages)
    km.context.setsockopt(zmq.RECONNECT_IVL, RECONNECT_MS)
    client = CappedNotebookClient(nb, km=km, timeout=settings.cell_timeout, interrupt_on_timeout=True,
                                  allow_errors=True, record_timing=False, startup_timeout=settings.startup_timeout,
                                  extra_arguments=list(settings.kernel_arguments),
                                  resources={"metadata": {"path": str(workdir)}},
                                  max_output_bytes=settings.max_output_bytes,
                                  max_record_bytes=settings.max_record_bytes, record_mime=settings.record_mime)
    expired = threading.Event()

    def stop_kernel() -> None:
        expired.set()
        pid = km.warden_pid()
        if pid is not None:
            sandbox.stop(pid)

    def stopped_at(index: int) -> str:
        limit = "reached the submission's time budget" if by_deadline else "reached the notebook's time limit"
        return f"{limit} at cell {index}; later cells did not run"

    def died_at(index: int) -> str:
        if km.cut_off:
            return km.cut_off
        said, code = km.last_words(), km.exit_code()
        signum = code - 128 if code is not None and 128 < code < 128 + 65 else None
        if any(sign in said for sign in OUT_OF_MEMORY) or signum == signal.SIGKILL:
            return (f"the kernel ran out of memory at cell {index} (it may use {memory_text(settings)}); "
                    "later cells did not run" + (f" (it said: {said})" if said else ""))
        if signum == signal.SIGXCPU:
            return (f"the kernel used up its {settings.limits.cpu_seconds} CPU seconds at cell {index}; "
                    "later cells did not run")
        return f"the kernel died at cell {index}; later cells did not run" + (f" (it said: {said})" if said else "")

    watchdog = threading.Timer(budget, stop_kernel)
    watchdog.daemon = True
    index = code_cells[0] if code_cells else 0
    try:
        with client.setup_kernel():
            report.sandbox_mode = getattr(getattr(km, "_prepared", None), "mode", "")
            watchdog.start()
            for index in code_cells:
                km.cell = index
                try:
                    client.execute_cell(nb.cells[index], index, store_history=True)
                    report.executed_cells += 1
                    report.problems += cell_problems(nb.cells[index], index, client, settings)
                except DeadKernelError:
                    report.problems.append(stopped_at(index) if expired.is_set() else died_at(index))
                    break
                except CellTimeoutError:
                    report.problems.append(stopped_at(index) if expired.is_set() else
                                           f"cell {index} exceeded {settings.cell_timeout} s and could not be interrupted")
                    break
                if expired.is_set():
                    report.problems.append(stopped_at(index))
                    break
            km.finished = True  # from here on the kernel is shut down: its disconnections are expected
            if km.cut_off and km.cut_off not in report.problems:  # cut off in the last cell
                report.problems.append(km.cut_off)
    except Exception as err:  # kernel could not start, or the connection broke: grade what ran
        said = km.last_words()
        report.problems.append(stopped_at(index) if expired.is_set() else
                               f"the kernel stopped unexpectedly ({err.__class__.__name__}: {str(err)[:120]})"
                               + (f"; it said: {said}" if said else ""))
    finally:
        km.finished = True
        watchdog.cancel()
        pid = km.warden_pid()
        if pid is not None:
            sandbox.stop(pid)
        if settings.sandboxed and settings.uid in sandbox.UID_RANGE:
            sandbox.kill_user_processes(settings.uid)
        release_connections(client, km)
    return report


def release_connections(client: NotebookClient, km: SandboxedKernelManager) -> None:
    """Close what the kernel's connection held in the grader: nbclient leaves it to the caller when it is
    given the kernel manager (it does not own it), and without this every kernel leaks about 30 open files
    (a long grading run then dies when ZeroMQ cannot open a socket)."""
    for watcher in getattr(km, "watchers", []):  # they see `finished` within 0.2 s and close their monitor
        watcher.join(timeout=5.0)
    if client.kc is not None:
        client.kc.stop_channels()  # joins the channel threads, closes the client's own context
        client.kc = None
    km.context.destroy(linger=0)


OUT_OF_MEMORY = ("MemoryError", "bad_alloc", "Cannot allocate memory", "out of memory", "can't allocate memory")


def memory_text(settings: ExecutionSettings) -> str:
    return f"{sandbox.memory_limit(settings.limits) / 2 ** 30:.1f} GiB"


def cell_problems(cell: NotebookNode, index: int, client: "CappedNotebookClient",
                  settings: ExecutionSettings) -> list[str]:
    """One line per thing that stopped a cell that the student should read about (a cell over its time
    limit, out of memory), also written into the cell's outputs for the feedback."""
    lines = []
    if client.timed_out.pop(index, False):
        lines.append(f"cell {index} ran longer than its limit of {settings.cell_timeout} s and was interrupted")
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    if any(o.get("ename") == "MemoryError" or any(sign in str(o.get("evalue", "")) for sign in OUT_OF_MEMORY)
           for o in errors):
        lines.append(f"cell {index} ran out of memory (the kernel may use {memory_text(settings)})")
    for line in lines:
        cell.outputs.append(new_output("stream", name="stderr", text=f"[grader] {line}\n"))
    return lines


def scratch_copy(folder: Path, writable_bytes: int | None = None) -> Path:
    """A private copy of ``folder`` for the kernel to run in (its writes never reach the autograded folder).

    Only folders and regular files are copied, never through a link: a link in a submission must not
    make the grader (root) copy a file the student could not read into the kernel's reach.
    """
    if sandbox.SCRATCH_ROOT:
        os.makedirs(sandbox.SCRATCH_ROOT, mode=0o755, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="ck-", dir=sandbox.SCRATCH_ROOT)).resolve()
    if writable_bytes:  # a file system of that size: all the kernel can write there (where mounts work)
        sandbox.cap_folder(scratch, writable_bytes)
    for top, dirs, files in os.walk(folder):  # os.walk does not descend into linked folders
        relative = Path(top).relative_to(folder)
        dirs[:] = [d for d in dirs if d != "__pycache__" and not os.path.islink(os.path.join(top, d))]
        for d in dirs:
            (scratch / relative / d).mkdir()
        for name in files:
            source = Path(top, name)
            if name.endswith(".ipynb") or not stat.S_ISREG(source.lstat().st_mode):
                continue
            shutil.copy2(source, scratch / relative / name, follow_symlinks=False)
    return scratch


def remove_scratch(scratch: Path) -> None:
    """Remove a folder made by ``scratch_copy`` (and its size-capped file system, if it has one)."""
    sandbox.uncap_folder(scratch)
    shutil.rmtree(scratch, ignore_errors=True)
