"""SandboxedExecute: nbgrader's Execute step, with the student's kernel in the course's sandbox.

The kernel runs in a scratch copy of the notebook's folder, as an unprivileged user without network
and without sight of the course (``coursekit.sandbox``), under resource and time limits, with
``COURSEKIT_RECORD_CHECKS=1`` so that test cells only publish plain data. What went wrong (time
limits, a dead kernel) is logged and collected in ``resources["coursekit"]["problems"]``. Code cells
of optional parts that ``coursekit.optional.SkipOptionalParts`` stamped in this run (and that carry no
points) are not run.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any

from nbformat import NotebookNode
from nbgrader.preprocessors import Execute
from traitlets import Bool, Dict, Integer, List, Unicode

from coursekit import sandbox
from coursekit.course import assignment_source, helper_dir
from coursekit.executor import ExecutionSettings, execute, remove_scratch, scratch_copy
from coursekit.helpers import trusted_module
from coursekit.intake import instructor_names, shadowing_entries
from coursekit.optional import is_not_run

GiB, MiB = 1024 ** 3, 1024 ** 2


class SandboxedExecute(Execute):
    """Execute a notebook in a sandboxed kernel that publishes check records (see module docstring)."""

    sandboxed = Bool(True, help="Run kernels in the sandbox (Linux, as root). Turn off only for trusted "
                                "code on machines without root.").tag(config=True)
    notebook_timeout = Integer(900, help="Wall-clock seconds for a whole notebook.").tag(config=True)
    max_output_bytes = Integer(2_000_000, help="Outputs kept per notebook, as received from the kernel."
                               ).tag(config=True)
    max_record_bytes = Integer(16_000_000, help="Check records kept per notebook (a budget of their own, so "
                                                "that printing cannot crowd out the tests; trained weights "
                                                "are a few MB).").tag(config=True)
    cpu_seconds = Integer(1800, help="CPU seconds per kernel.").tag(config=True)
    memory_bytes = Integer(8 * GiB, help="Private memory per kernel (RLIMIT_DATA: heap, arrays, tensors); never "
                                         "more than the machine or its container has (MemTotal, the memory "
                                         "cgroup's limit), whatever is set here. The address space gets 2 GiB "
                                         "more for libraries and the reservations torch never touches.").tag(config=True)
    writable_bytes = Integer(1 * GiB, help="Everything a kernel can write, in bytes: its working folder (a file "
                                           "system of its own, in memory) and its private /tmp, /var/tmp and "
                                           "/dev/shm (a quarter, at most 256 MiB). A kernel that fills it gets "
                                           "'No space left on device'. Degraded mode: the working folder only "
                                           "where the grader may mount.").tag(config=True)
    max_message_bytes = Integer(16 * MiB, help="Largest message the grader accepts from a kernel (an output, a "
                                               "check record). A larger one is refused before it is read, so the "
                                               "grader's memory does not grow with what a kernel prints, and the "
                                               "kernel is stopped with a reason. At least the largest check record."
                                ).tag(config=True)
    max_received_bytes = Integer(256 * MiB, help="Everything the grader reads from a kernel per notebook, in "
                                                 "bytes as received (output past max_output_bytes included: "
                                                 "dropped, but still read and decoded). A kernel that sends "
                                                 "more is stopped with a reason.").tag(config=True)
    max_queued_messages = Integer(4, help="Messages from a kernel that each of the grader's sockets holds before "
                                          "it stops reading from the kernel (ZeroMQ's receive high-water mark; "
                                          "the kernel then waits, or its own queue fills in its own memory). "
                                          "Times max_message_bytes, it bounds the grader's memory.").tag(config=True)
    max_processes = Integer(256, help="Processes and threads per kernel (each job has its own uid).").tag(config=True)
    max_file_bytes = Integer(256 * MiB, help="Largest file a kernel may write.").tag(config=True)
    open_files = Integer(1024, help="Open files per kernel.").tag(config=True)
    read_only = List(Unicode(), help="Host folders the kernel may read (e.g. a data set).").tag(config=True)
    environment = Dict(help="Extra environment variables of the kernel.").tag(config=True)
    allow_degraded = Bool(None, allow_none=True,
                          help="Where Linux namespaces are unavailable (e.g. some containers), run kernels under "
                               "a separate unprivileged uid with the limits only instead of refusing to grade. "
                               "Never runs student code as root. None: the environment variable "
                               f"{sandbox.ALLOW_DEGRADED_ENV}=1 opts in (the Gradescope runner sets it)."
                          ).tag(config=True)

    fork_kernels = Bool(True, help="Start each sandboxed kernel as a fork of a zygote: a pristine process of "
                                   "this grader that has imported ipykernel and preload_modules once "
                                   "(coursekit/zygote.py), instead of a new interpreter that imports them "
                                   "again. Same sandbox, same limits; only the start-up is cheaper.").tag(config=True)
    preload_modules = List(Unicode(), default_value=["numpy"],
                           help="Modules the zygote imports before forking kernels: the course's heavy imports "
                                "(no threads may start at import, and nothing of the course itself).").tag(config=True)

    uid = Integer(None, allow_none=True, help="Sandbox uid of this process (claimed when not set).")

    def execution_settings(self) -> ExecutionSettings:
        """The execution settings these traits describe (a uid is claimed for sandboxed runs)."""
        private_tmp = min(256 * MiB, self.writable_bytes // 4)
        limits = sandbox.Limits(cpu_seconds=self.cpu_seconds, memory_bytes=self.memory_bytes,
                                max_processes=self.max_processes, max_file_bytes=self.max_file_bytes,
                                open_files=self.open_files, wall_seconds=float(self.notebook_timeout) + 60,
                                max_output_bytes=1 << 20, tmpfs_bytes=private_tmp,
                                workdir_bytes=self.writable_bytes - private_tmp)
        if self.sandboxed and self.uid is None:
            self.uid = sandbox.claim_uid()
        if self.sandboxed:  # every door: a layout the sandbox cannot use stops here, with its reason (once)
            sandbox.check_layout(self.read_only, allow_degraded=self.allow_degraded)
        return ExecutionSettings(
            sandboxed=self.sandboxed, cell_timeout=self.timeout, notebook_timeout=self.notebook_timeout,
            startup_timeout=int(self.startup_timeout), kernel_arguments=tuple(self.extra_arguments),
            max_output_bytes=self.max_output_bytes, max_record_bytes=self.max_record_bytes,
            max_message_bytes=self.max_message_bytes, max_received_bytes=self.max_received_bytes,
            max_queued_messages=self.max_queued_messages, limits=limits,
            allow_degraded=self.allow_degraded, read_only=tuple(p for p in self.read_only if Path(p).exists()),
            environment=dict(self.environment), uid=self.uid if self.sandboxed else None,
            preload_modules=tuple(self.preload_modules) if self.fork_kernels else None)

    def settings(self, assignment: str) -> ExecutionSettings:
        """The execution settings for one assignment's notebooks: its test cells publish check records."""
        settings = self.execution_settings()
        records = trusted_module(helper_dir(self.config, assignment), "records")
        settings.environment[records.RECORD_ENV] = "1"
        settings.record_mime = records.RECORD_MIME
        return settings

    def preprocess(self, nb: NotebookNode, resources: dict[str, Any]) -> tuple[NotebookNode, dict[str, Any]]:
        folder = Path(resources.get("metadata", {}).get("path") or ".")
        problems = resources.setdefault("coursekit", {}).setdefault("problems", [])
        settings = self.settings(resources["nbgrader"]["assignment"])
        left = resources["coursekit"].get("seconds")  # what is left of the submission's time budget
        if left is not None:
            settings.deadline = time.monotonic() + left
        workdir = scratch_copy(folder, settings.limits.workdir_bytes if settings.sandboxed else None)
        try:
            trusted = self._instructor_names(resources)
            for path in shadowing_entries(workdir, trusted):  # intake reported them to the instructor
                self.log.warning("%s: would shadow an installed module, left out of the kernel's folder", path.name)
                shutil.rmtree(path) if path.is_dir() else path.unlink()
            skip = frozenset(i for i, cell in enumerate(nb.cells) if is_not_run(cell))  # optional parts
            report = execute(nb, workdir, settings, skip)
        finally:
            remove_scratch(workdir)
        for problem in report.problems:
            self.log.warning("%s", problem)
        problems.extend(report.problems)
        resources["coursekit"]["sandbox_mode"] = report.sandbox_mode
        return nb, resources

    def _instructor_names(self, resources: dict[str, Any]) -> set[str]:
        """Module names the instructor ships with the assignment (the helper package): never shadowing."""
        return instructor_names(assignment_source(self.config, resources["nbgrader"]["assignment"]))
