"""Kernels forked from the zygote (coursekit/zygote.py): each one starts from the pristine imported state,
confined exactly as an exec'd kernel, and holds nothing that reaches the zygote or its relay."""
from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_notebook

from coursekit import sandbox
from coursekit.executor import ExecutionReport, execute, remove_scratch, scratch_copy
from coursekit.preprocessors import SandboxedExecute

KERNEL_ARGUMENTS = ["--HistoryManager.hist_file=:memory:", "--IPKernelApp.log_level=ERROR"]

try:
    sandbox.check_available()
except sandbox.SandboxUnavailable as exc:  # pragma: no cover - CI and the dev machine run as root
    pytest.skip(f"sandbox unavailable: {exc}", allow_module_level=True)

# What a kernel can see of its own start: was numpy imported before the first cell (a fork of the
# zygote), and does anything an earlier kernel left behind show up?
LOOK = """
import json, os, sys, builtins
seen = {"preloaded": "numpy" in sys.modules}
import numpy, json as json_module
seen.update(numpy_mark=getattr(numpy, "LEFT_BEHIND", None), json_mark=getattr(json_module, "LEFT_BEHIND", None),
            builtin_mark=getattr(builtins, "LEFT_BEHIND", None), env_mark=os.environ.get("LEFT_BEHIND"),
            tmp_files=sorted(os.listdir("/tmp")), draw=float(numpy.random.rand()), pid=os.getpid())
print("SEEN" + json.dumps(seen))
"""
# ... and then what a hostile notebook would leave for the next one
LEAVE = """
import os, builtins, numpy, json
numpy.LEFT_BEHIND = json.LEFT_BEHIND = builtins.LEFT_BEHIND = "patched"
os.environ["LEFT_BEHIND"] = "patched"
open("/tmp/left-behind", "w").write("patched")
numpy.random.seed(0)
"""
# Every descriptor the kernel holds, and its credentials: a relay or zygote connection would be a Unix socket
# pair (no path at either end) made by root, the grader; the kernel's own pairs (asyncio's) are its uid's.
DESCRIPTORS = """
import json, os, socket, struct
unnamed = []
for name in os.listdir("/proc/self/fd"):
    fd = int(name)
    try:
        target = os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        continue
    if not target.startswith("socket:"):
        continue
    probe = socket.socket(fileno=os.dup(fd))
    try:
        if probe.family == socket.AF_UNIX and not probe.getsockname() and not probe.getpeername():
            pid, uid, gid = struct.unpack("3i", probe.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))
            if uid != os.getuid():  # a socket pair the kernel did not make itself (asyncio makes its own)
                unnamed.append([fd, target, pid, uid])
    except OSError:
        pass
    finally:
        probe.close()
status = dict(line.rstrip("\\n").split(":\\t", 1) for line in open("/proc/self/status") if ":\\t" in line)
print("FDS" + json.dumps({"unnamed": unnamed, "uid": status["Uid"], "caps": [status[k] for k in
      ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")], "nnp": status.get("NoNewPrivs")}))
"""

# Whether the kernel started with ipykernel's debugger (debugpy): a grading kernel has no use for it
DEBUGGER = """
import json, sys
print("DEBUGGER" + json.dumps({"debugpy": sys.modules.get("debugpy") is not None,
                               "debugger": hasattr(get_ipython().kernel, "debugger")}))
"""


def run(tmp_path: Path, *sources: str, **traits) -> tuple[nbformat.NotebookNode, ExecutionReport]:
    nb = new_notebook(cells=[new_code_cell(s) for s in sources])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    folder = tmp_path / "submission"
    folder.mkdir(exist_ok=True)
    settings = SandboxedExecute(**{"timeout": 30, "notebook_timeout": 90, "extra_arguments": KERNEL_ARGUMENTS,
                                   "preload_modules": ["numpy"], **traits}).execution_settings()
    workdir = scratch_copy(folder, settings.limits.workdir_bytes)
    try:
        report = execute(nb, workdir, settings)
    finally:
        remove_scratch(workdir)
    return nb, report


def said(nb: nbformat.NotebookNode, prefix: str) -> dict:
    for cell in nb.cells:
        for output in cell.outputs:
            for line in output.get("text", "").splitlines():
                if line.startswith(prefix):
                    return json.loads(line[len(prefix):])
    raise AssertionError(f"no {prefix} line in {[c.outputs for c in nb.cells]}")


def test_nothing_one_forked_kernel_does_reaches_the_next(tmp_path):
    first, report = run(tmp_path, LOOK, LEAVE)
    assert report.problems == []
    second, report = run(tmp_path, LOOK)
    assert report.problems == []
    before, after = said(first, "SEEN"), said(second, "SEEN")
    assert before["preloaded"] and after["preloaded"], "the kernels did not start from the zygote"
    for seen in (before, after):
        assert seen["numpy_mark"] is seen["json_mark"] is seen["builtin_mark"] is seen["env_mark"] is None
        assert "left-behind" not in seen["tmp_files"]  # (a clone under /tmp has its mount points there)
    assert before["draw"] != after["draw"], "both kernels drew the zygote's random state"


def test_the_control_an_exec_kernel_imports_numpy_itself(tmp_path):
    nb, report = run(tmp_path, LOOK, fork_kernels=False)
    assert report.problems == [] and said(nb, "SEEN")["preloaded"] is False


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "exec"])
def test_a_forked_kernel_is_confined_like_an_exec_one(tmp_path, fork):
    nb, report = run(tmp_path, DESCRIPTORS, fork_kernels=fork)
    assert report.problems == []
    seen = said(nb, "FDS")
    assert seen["unnamed"] == [], "the kernel holds a socket pair made by the grader (a relay or zygote connection)"
    assert len(set(seen["uid"].split())) == 1 and seen["uid"].split()[0] != "0"
    assert [int(cap, 16) for cap in seen["caps"]] == [0] * 5 and seen["nnp"] == "1"


@pytest.mark.parametrize("fork", [True, False], ids=["forked", "exec"])
def test_a_grading_kernel_starts_without_a_debugger(tmp_path, fork):
    """Importing debugpy was 0.25 CPU-s of every kernel's start."""
    nb, report = run(tmp_path, DEBUGGER, fork_kernels=fork)
    assert report.problems == [] and said(nb, "DEBUGGER") == {"debugpy": False, "debugger": False}


def test_a_zygote_that_cannot_import_its_modules_leaves_kernels_to_start_as_before(tmp_path):
    nb, report = run(tmp_path, LOOK, preload_modules=["numpy", "no_such_module_anywhere"])
    assert report.problems == [] and said(nb, "SEEN")["preloaded"] is False


def test_a_zygote_that_died_is_started_again(tmp_path):
    from coursekit.zygote import Zygote

    run(tmp_path, LOOK)
    for zygote in list(Zygote._running.values()):
        zygote.process.kill()
        zygote.process.wait()
    nb, report = run(tmp_path, LOOK)
    assert report.problems == [] and said(nb, "SEEN")["preloaded"] is True
