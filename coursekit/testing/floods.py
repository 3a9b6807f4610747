"""Kernels that send all they can, and a fresh grader process that reports its peak memory: for tests and
benchmarks of the grader's message caps (``coursekit/executor.py``; issue 19, bounded resources).

Each run is a new Python process (``executor.execute`` of a small notebook in the full sandbox, with the
course's kernel arguments), so ``ru_maxrss`` is that run's own high-water mark.
"""
from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

HONEST = ["print('hello')", "print('y' * 100_000)", "x = sum(range(10**6)); print(x)"]
PRINTS_1GB = ["print('hello')", "print('x' * 10**9)", "print('after')"]
# 200 messages of 15 MiB (3 GB), each just under the 16 MiB message limit, packed once and only re-signed
# (a new header each, or the grader refuses a replay): faster than a grader decodes them, as a hostile
# kernel need not go through print
FLOODS_15MIB = [
    "kernel = get_ipython().kernel\n"
    "session = kernel.session\n"
    "content = session.pack({'name': 'stdout', 'text': 'x' * (15 * 2**20)})\n"
    "parent, metadata = session.pack(kernel.get_parent()), session.pack({})\n"
    "for _ in range(200):\n"
    "    parts = [session.pack(session.msg_header('stream')), parent, metadata, content]\n"
    "    kernel.iopub_socket.send_multipart([b'<IDS|MSG>', session.sign(parts), *parts])\n"
    "import time; time.sleep(5)",
    "print('after')"]

_GRADER = """
import json, resource, sys, tempfile, time
from pathlib import Path
from nbformat.v4 import new_code_cell, new_notebook
from coursekit.executor import execute, remove_scratch, scratch_copy
from coursekit.preprocessors import SandboxedExecute
from coursekit.testing.courses import home_course

cells, traits = json.loads(sys.argv[1]), json.loads(sys.argv[2])
nb = new_notebook(cells=[new_code_cell(c) for c in cells])
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
traits = {"timeout": 300, "notebook_timeout": 600,
          "extra_arguments": list(home_course().config.Execute.extra_arguments), **traits}
settings = SandboxedExecute(**traits).execution_settings()
workdir = scratch_copy(Path(tempfile.mkdtemp()), settings.limits.workdir_bytes)
started = time.monotonic()
try:
    report = execute(nb, workdir, settings)
finally:
    remove_scratch(workdir)
outputs = ["".join(o.get("text", "")[:40] for o in c.outputs) for c in nb.cells]
print(json.dumps({"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "seconds": time.monotonic() - started, "problems": report.problems, "outputs": outputs}))
"""


def grade_in_fresh_process(cells: list[str], timeout: float = 1800, **traits: Any) -> dict[str, Any]:
    """Run ``cells`` in a sandboxed kernel from a new grader process with ``SandboxedExecute`` ``traits``;
    its peak resident memory (MiB), wall seconds, the problems reported and each cell's output (40 chars)."""
    done = subprocess.run([sys.executable, "-c", _GRADER, json.dumps(cells), json.dumps(traits)],
                          capture_output=True, text=True, timeout=timeout)
    if done.returncode != 0:
        raise RuntimeError(f"grader failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])
