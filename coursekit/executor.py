"""Run one notebook for grading: in a sandboxed kernel, with verdicts decided outside it.

The kernel is an ordinary IPython kernel started through ``coursekit.sandbox`` (unprivileged user,
no network, private mounts that hide the course, resource limits). The grader talks to it over
Unix-domain (IPC) sockets inside the kernel's scratch folder, which work across the network
namespace. Outputs are capped while they arrive; a watchdog kills the kernel when the notebook's
wall-clock budget is spent; a kernel that dies (``os._exit``, segfault, limits) leaves the remaining
cells unexecuted, so their checks simply never ran.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat import NotebookNode
from nbformat.v4 import new_output

from coursekit import sandbox


@dataclass
class ExecutionSettings:
    """How a notebook is run for grading (from nbgrader_config.py's ``c.Sandbox`` section)."""

    sandboxed: bool = True
    cell_timeout: int = 300
    notebook_timeout: int = 900
    startup_timeout: int = 60
    kernel_arguments: tuple[str, ...] = ("--HistoryManager.hist_file=:memory:", "--IPKernelApp.log_level=ERROR")
    max_output_bytes: int = 2_000_000  # per notebook, as received from the kernel
    limits: sandbox.Limits = field(default_factory=lambda: sandbox.Limits(
        cpu_seconds=1800, memory_bytes=8 * 1024 ** 3, max_processes=256, max_file_bytes=256 * 1024 ** 2,
        open_files=1024, wall_seconds=3600, max_output_bytes=1 << 20))
    hidden: tuple[str, ...] = ()  # folders the kernel must not see (the course folder)
    read_only: tuple[str, ...] = ()  # folders inside hidden ones it may read (e.g. the data set)
    environment: dict[str, str] = field(default_factory=dict)
    uid: int | None = None  # distinct per parallel job, so process limits are per student
    record_mime: str = ""  # outputs of this type are check records (their own output budget)
    max_record_bytes: int = 16_000_000  # check records kept per notebook (trained weights are large)


@dataclass
class ExecutionReport:
    executed_cells: int = 0
    problems: list[str] = field(default_factory=list)


class SandboxedKernelManager(AsyncKernelManager):
    """Starts ``python -m ipykernel_launcher`` through the sandbox, talking over IPC sockets."""

    settings: ExecutionSettings
    workdir: Path

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        # parent_handle=0: inside the PID namespace the kernel's parent is PID 1, which ipykernel's
        # parent poller would take for "the grader exited".
        command = [sys.executable, "-m", "ipykernel_launcher", "-f", self.connection_file,
                   "--IPKernelApp.parent_handle=0", *(extra_arguments or [])]
        if not self.settings.sandboxed:
            return command
        self._prepared = sandbox.prepare(command, workdir=self.workdir, limits=self.settings.limits,
                                         hidden=self.settings.hidden, expose_ro=self.settings.read_only,
                                         env=self._kernel_env(), uid=self.settings.uid)
        return self._prepared.argv

    def _kernel_env(self) -> dict[str, str]:
        env = {"HOME": str(self.workdir), "MPLCONFIGDIR": str(self.workdir), "TMPDIR": str(self.workdir),
               "MPLBACKEND": "module://matplotlib_inline.backend_inline", "NBGRADER_EXECUTION": "autograde",
               "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
        env.update(self.settings.environment)
        return env

    def write_connection_file(self, **kwargs: Any) -> None:
        super().write_connection_file(**kwargs)
        if self.settings.sandboxed:
            sandbox.give_to_sandbox_user(Path(self.connection_file), uid=self.settings.uid)

    async def _async_launch_kernel(self, kernel_cmd: list[str], **kw: Any) -> None:
        if self.settings.sandboxed:
            kw["env"] = self._prepared.env
            kw["preexec_fn"] = self._prepared.preexec_fn
        else:
            kw["env"] = {**os.environ, **self._kernel_env()}
        kw["stdin"] = kw["stdout"] = kw["stderr"] = subprocess.DEVNULL  # the kernel's raw fds go nowhere
        kw["cwd"] = str(self.workdir)
        await super()._async_launch_kernel(kernel_cmd, **kw)


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


def execute(nb: NotebookNode, workdir: Path, settings: ExecutionSettings) -> ExecutionReport:
    """Execute ``nb`` in place with ``workdir`` as the kernel's working folder (made the sandbox's own)."""
    report = ExecutionReport()
    km = SandboxedKernelManager(kernel_name="python3", transport="ipc", ip=str(workdir / ".k"),
                                connection_file=str(workdir / ".kernel.json"))
    km.settings, km.workdir = settings, workdir
    client = CappedNotebookClient(nb, km=km, timeout=settings.cell_timeout, interrupt_on_timeout=True,
                                  allow_errors=True, record_timing=False, startup_timeout=settings.startup_timeout,
                                  extra_arguments=list(settings.kernel_arguments),
                                  resources={"metadata": {"path": str(workdir)}},
                                  max_output_bytes=settings.max_output_bytes,
                                  max_record_bytes=settings.max_record_bytes, record_mime=settings.record_mime)
    expired = threading.Event()

    def kill_kernel() -> None:
        expired.set()
        try:
            if km.provisioner is not None and km.provisioner.process is not None:
                os.killpg(km.provisioner.process.pid, 9)
        except (ProcessLookupError, PermissionError, AttributeError):
            pass

    watchdog = threading.Timer(settings.notebook_timeout, kill_kernel)
    watchdog.daemon = True
    try:
        with client.setup_kernel():
            watchdog.start()
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                try:
                    client.execute_cell(cell, index, store_history=True)
                    report.executed_cells += 1
                except DeadKernelError:
                    why = "reached the notebook's time limit" if expired.is_set() else "the kernel died"
                    report.problems.append(f"{why} at cell {index}; later cells did not run")
                    break
                except CellTimeoutError:
                    report.problems.append(f"cell {index} exceeded {settings.cell_timeout} s and could not be interrupted")
                    break
    except Exception as err:  # kernel could not start, or the connection broke: grade what ran
        report.problems.append(f"the kernel stopped unexpectedly ({err.__class__.__name__}: {str(err)[:120]})")
    finally:
        watchdog.cancel()
        if settings.sandboxed and settings.uid is not None:
            sandbox.kill_user_processes(settings.uid)
    return report


def scratch_copy(folder: Path) -> Path:
    """A private copy of ``folder`` for the kernel to run in (its writes never reach the autograded folder)."""
    scratch = Path(tempfile.mkdtemp(prefix="ck-", dir=sandbox.SCRATCH_ROOT))
    for item in folder.iterdir():
        if item.is_symlink():
            continue
        if item.is_dir():
            shutil.copytree(item, scratch / item.name, symlinks=False, ignore_dangling_symlinks=True,
                            ignore=shutil.ignore_patterns("*.ipynb", "__pycache__"))
        elif item.suffix != ".ipynb":
            shutil.copy2(item, scratch / item.name)
    return scratch
