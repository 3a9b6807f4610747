"""Run an autograder zip the way Gradescope does, on this machine (Linux, root): for tests and benchmarks.

``unpack`` lays out a Gradescope tree (``source/`` = the zip, ``run_autograder`` copied next to it,
empty ``submission/`` and ``results/``); ``run`` mounts that tree at ``/autograder`` inside a private
mount namespace (so nothing outside the run sees it) and runs ``/autograder/run_autograder`` there,
optionally inside a ``Cgroup`` of a container's size (memory and CPU limits, v1 or v2), whose ``stats``
say what the run used (peak memory, CPU-seconds, out-of-memory kills) and, with ``sample=True``, the
peak resident memory of each kind of process (grader, kernel, ...), to see what fills the container.
"""
from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

MOUNT_POINT = Path("/autograder")
LOCK = Path("/run/coursekit-gradescope-emulate.lock")  # held (shared) by every emulated run
CREATED = Path("/run/coursekit-gradescope-emulate.created")  # we made /autograder: the last run removes it


def unpack(zip_path: Path, tree: Path) -> Path:
    """Gradescope's image build: the zip unpacked into ``tree/source`` (modes kept), run_autograder copied."""
    source = tree / "source"
    source.mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as zf:
        for info in zf.infolist():
            dest = source / info.filename
            if info.is_dir():
                dest.mkdir(parents=True, exist_ok=True)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(zf.read(info))
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(dest, mode)
    shutil.copy2(source / "run_autograder", tree / "run_autograder")
    for name in ("submission", "results"):
        (tree / name).mkdir()
    os.chmod(tree, 0o755)
    return tree


def notebook_upload(course_root: Path, assignment: str, filled: bool) -> dict[str, bytes]:
    """A notebooks-mode upload: every released notebook of ``assignment``, untouched or with the reference
    solution in its answer cells (``release/`` must exist), by file name."""
    import nbformat

    from coursekit.course import Course
    from coursekit.samples import fill_answers

    course, out = Course.open(course_root), {}
    for name in course.source_notebooks(assignment):
        release = nbformat.read(str(course.folder("release", assignment, f"{name}.ipynb")), as_version=4)
        source = nbformat.read(str(course.folder("source", assignment, f"{name}.ipynb")), as_version=4)
        out[f"{name}.ipynb"] = nbformat.writes(fill_answers(release, source) if filled else release).encode()
    return out


def run(tree: Path, *, python: str | None = None, env: dict[str, str] | None = None,
        timeout: float = 1800, cgroup: "Cgroup | None" = None) -> tuple[dict[str, Any] | None, str]:
    """Run ``tree/run_autograder`` with ``tree`` mounted at /autograder; (results.json or None, stdout).

    ``python``: the interpreter with the kit's dependencies (default: this one; Gradescope's image has
    /opt/coursekit/venv from setup.sh). ``cgroup``: the run (and everything it starts) is put in it.
    """
    script = 'mount --bind "$1" /autograder && cd /autograder && exec ./run_autograder > "$1/stdout" 2>&1'
    run_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": "/root",
               "COURSEKIT_PYTHON": python or sys.executable, **(env or {})}
    with open(LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # create the mount point once, never under a running emulation
        if not MOUNT_POINT.exists():
            MOUNT_POINT.mkdir()
            CREATED.touch()
        fcntl.flock(lock, fcntl.LOCK_SH)
        try:
            subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(tree)],
                           env=run_env, timeout=timeout, check=False, preexec_fn=cgroup.enter if cgroup else None)
        finally:
            try:  # the last emulated run removes the mount point it created (never a real /autograder)
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
                if CREATED.exists():
                    MOUNT_POINT.rmdir()
                    CREATED.unlink()
            except (BlockingIOError, OSError):
                pass
    results = tree / "results" / "results.json"
    stdout = (tree / "stdout").read_text(errors="replace") if (tree / "stdout").is_file() else ""
    return (json.loads(results.read_text()) if results.is_file() else None), stdout


# --- a container's size -----------------------------------------------------------------------------------

CGROUP_ROOT = Path("/sys/fs/cgroup")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


class Cgroup:
    """A cgroup (v2, or v1's memory, cpu and cpuacct hierarchies) with a memory limit (no swap) and a CPU
    quota, standing for one container; ``enter`` is a ``preexec_fn``; ``remove`` when the run is over."""

    def __init__(self, name: str, memory_mb: int, cpus: float, *, sample: bool = False) -> None:
        self.v2 = (CGROUP_ROOT / "cgroup.controllers").is_file()
        quota = int(cpus * 100_000)
        if self.v2:
            folder = CGROUP_ROOT / name
            self.dirs = {"memory": folder, "cpu": folder}
            folder.mkdir()
            (folder / "memory.max").write_text(str(memory_mb << 20))
            (folder / "memory.swap.max").write_text("0")
            (folder / "cpu.max").write_text(f"{quota} 100000")
        else:
            self.dirs = {c: CGROUP_ROOT / c / name for c in ("memory", "cpu", "cpuacct")}
            for folder in self.dirs.values():
                folder.mkdir(exist_ok=True)
            (self.dirs["memory"] / "memory.limit_in_bytes").write_text(str(memory_mb << 20))
            swap = self.dirs["memory"] / "memory.memsw.limit_in_bytes"
            if swap.exists():
                swap.write_text(str(memory_mb << 20))
            (self.dirs["cpu"] / "cpu.cfs_period_us").write_text("100000")
            (self.dirs["cpu"] / "cpu.cfs_quota_us").write_text(str(quota))
        self.peaks: dict[str, float] = {}  # MB of resident memory, the largest process of each kind
        self.address_space: dict[str, float] = {}  # MB: the largest VmPeak (what RLIMIT_AS limits) of each kind
        self.cpu: dict[str, dict[str, float]] = {}  # kind -> pid -> CPU-seconds last seen
        self.peak_sum = 0.0  # MB: the largest sum of every process's resident memory at one sample
        self._done = threading.Event()
        self._sampler = threading.Thread(target=self._sample, daemon=True) if sample else None
        if self._sampler:
            self._sampler.start()

    def enter(self) -> None:  # in the child, before exec
        for folder in dict.fromkeys(self.dirs.values()):
            (folder / "cgroup.procs").write_text(str(os.getpid()))

    def _sample(self) -> None:
        procs = self.dirs["memory"] / "cgroup.procs"
        while not self._done.wait(0.25):
            try:
                pids = procs.read_text().split()
            except OSError:
                continue
            total = 0.0
            for pid in pids:
                try:
                    status = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines()
                                  if line.startswith(("VmRSS:", "VmPeak:")))
                    rss, virtual = (int(status[key].split()[0]) / 1024 for key in ("VmRSS", "VmPeak"))
                    kind = process_kind(Path(f"/proc/{pid}/cmdline").read_bytes())
                    ticks = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[11:13]
                except (OSError, KeyError, IndexError, ValueError):  # gone, or a zombie
                    continue
                self.cpu.setdefault(kind, {})[pid] = sum(int(t) for t in ticks) / CLOCK_TICKS
                total += rss
                self.peaks[kind] = max(self.peaks.get(kind, 0.0), rss)
                self.address_space[kind] = max(self.address_space.get(kind, 0.0), virtual)
            self.peak_sum = max(self.peak_sum, total)

    def stats(self) -> dict[str, Any]:
        """peak_mb (the cgroup's own peak: page cache included), cpu_s, oom_kills; with sampling also
        rss_sum_mb, rss_mb (largest resident memory of each kind of process), address_space_mb (largest
        VmPeak of each kind: what the sandbox's RLIMIT_AS bounds) and cpu_by_kind (CPU-seconds
        of each kind as last sampled: a process's last quarter second is missed)."""
        mem, acct = self.dirs["memory"], self.dirs.get("cpuacct", self.dirs["cpu"])
        if self.v2:
            peak = int((mem / "memory.peak").read_text()) if (mem / "memory.peak").exists() else 0
            usage = dict(line.split() for line in (mem / "cpu.stat").read_text().splitlines())
            events = dict(line.split() for line in (mem / "memory.events").read_text().splitlines())
            out = {"peak_mb": peak / 2**20, "cpu_s": int(usage["usage_usec"]) / 1e6, "oom_kills": int(events["oom_kill"])}
        else:
            control = dict(line.split() for line in (mem / "memory.oom_control").read_text().splitlines())
            out = {"peak_mb": int((mem / "memory.max_usage_in_bytes").read_text()) / 2**20,
                   "cpu_s": int((acct / "cpuacct.usage").read_text()) / 1e9, "oom_kills": int(control.get("oom_kill", 0))}
        if self._sampler:
            out.update(rss_sum_mb=self.peak_sum, rss_mb=dict(sorted(self.peaks.items())),
                       address_space_mb=dict(sorted(self.address_space.items())),
                       cpu_by_kind={kind: sum(pids.values()) for kind, pids in sorted(self.cpu.items())})
        return out

    def remove(self) -> None:
        self._done.set()
        if self._sampler:
            self._sampler.join()
        for folder in dict.fromkeys(self.dirs.values()):
            for _ in range(50):
                try:
                    folder.rmdir()
                    break
                except OSError:
                    time.sleep(0.2)


def process_kind(cmdline: bytes) -> str:
    """What a process of an emulated run is, from its command line: kernel, warden, grader, ..."""
    args = [a.decode(errors="replace") for a in cmdline.split(b"\0") if a]
    text = " ".join(args)
    if any(a.endswith("/sandbox.py") for a in args[:4]):  # the warden (its spec names the kernel's command)
        return "sandbox warden"
    if "ipykernel_launcher" in text:
        return "kernel"
    if "--grade-to" in text:
        return "grader"
    if "coursekit.gradescope.run" in text:
        return "run_autograder (parent)"
    return Path(args[0]).name if args else "?"
