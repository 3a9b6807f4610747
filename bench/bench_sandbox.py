"""Benchmark: the allow-list sandbox against the previous deny-list sandbox, side by side in one run.

The previous ``coursekit/sandbox.py`` and ``coursekit/executor.py`` are taken from git (``--old``, default
the commit before the allow-list root) into a temporary folder and imported as separate modules, so
the package keeps no dead code. Two measurements, old and new alternating (the machine is shared, so
each pair sees the same load), reported as medians of wall-clock time, and for the start-up also of CPU
time (user + system of the sandbox and the command, which the load of a shared machine barely moves;
a kernel's CPU time does not reach the grader's rusage, so the notebook part reports wall time only):

1. start-up: ``sandbox.run`` of ``python -I -c pass`` (sandbox set-up and tear-down, nothing else);
2. per notebook: ``executor.execute`` of a two-cell notebook without imports (kernel start, shutdown,
   cleanup: the sandbox's share, little noise), and of one that imports numpy and torch, as every hw6
   notebook does (the imports dominate, and scatter with the machine's load).

Run: .venv/bin/python bench/bench_sandbox.py [--repeats 5] [--old COMMIT]
"""
from __future__ import annotations

import argparse
import importlib.util
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbformat.v4 import new_code_cell, new_notebook

REPO = Path(__file__).resolve().parents[1]
OLD_DEFAULT = "5fc0900"  # main before the allow-list root: the deny-list sandbox


def load_old(commit: str, folder: Path):
    """The previous sandbox and executor, as modules old_sandbox and old_executor (the record protocol
    they imported from coursekit.verdicts now belongs to the helper package's records module)."""
    from coursekit.helpers import trusted_module
    from coursekit.testing.courses import helper_folder

    records = trusted_module(helper_folder(), "records")
    for name in ("sandbox", "executor"):
        text = subprocess.run(["git", "show", f"{commit}:coursekit/{name}.py"], cwd=REPO, check=True,
                              capture_output=True, text=True).stdout
        text = text.replace("from coursekit import sandbox", "import old_sandbox as sandbox")
        text = text.replace("from coursekit.verdicts import RECORD_ENV, RECORD_MIME",
                            f"RECORD_ENV, RECORD_MIME = {records.RECORD_ENV!r}, {records.RECORD_MIME!r}")
        (folder / f"old_{name}.py").write_text(text)
    modules = []
    for name in ("old_sandbox", "old_executor"):
        spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        spec.loader.exec_module(module)
        modules.append(module)
    return modules


def notebook(imports: bool = True) -> nbformat.NotebookNode:
    first = "import numpy as np\nimport torch\nx = torch.ones(3)" if imports else "x = [1.0, 1.0, 1.0]"
    nb = new_notebook(cells=[new_code_cell(first), new_code_cell("print(float(sum(x)))")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def time_startup(module, uid: int) -> tuple[float, float]:
    work = Path(tempfile.mkdtemp(prefix="bench-sandbox-"))
    try:
        start, cpu = time.perf_counter(), children_cpu()
        result = module.run([sys.executable, "-I", "-c", "pass"], workdir=work, uid=uid,
                            limits=module.Limits(wall_seconds=60, cpu_seconds=60))
        elapsed = time.perf_counter() - start, children_cpu() - cpu
        assert result.returncode == 0, result.stderr
        return elapsed
    finally:
        shutil.rmtree(work, ignore_errors=True)


def settings_for(executor, uid: int):
    """Like settings for both executors: the old one's dataclass had defaults, the current one is built
    from the SandboxedExecute preprocessor's traits."""
    if executor.__name__ == "old_executor":
        return executor.ExecutionSettings(sandboxed=True, uid=uid, cell_timeout=120, notebook_timeout=300)
    from coursekit.preprocessors import SandboxedExecute
    from coursekit.testing.courses import home_course

    kernel_arguments = list(home_course().config.Execute.extra_arguments)  # as the course starts kernels
    return SandboxedExecute(uid=uid, timeout=120, notebook_timeout=300,
                            extra_arguments=kernel_arguments).execution_settings()


def time_notebook(executor, uid: int, imports: bool = True) -> tuple[float, float | None]:
    work = Path(tempfile.mkdtemp(prefix="bench-sandbox-", dir=executor.sandbox.SCRATCH_ROOT))
    nb = notebook(imports)
    settings = settings_for(executor, uid)
    try:
        start = time.perf_counter()
        report = executor.execute(nb, work, settings)
        elapsed = time.perf_counter() - start, None
        assert not report.problems and nb.cells[1].outputs[0]["text"].strip() == "3.0", report.problems
        return elapsed
    finally:
        shutil.rmtree(work, ignore_errors=True)


def remove_old_stage_folders(before: set[Path]) -> None:
    """The deny-list sandbox leaves an empty /run/sandbox-stage-* per kernel: remove the empty ones it made."""
    for folder in set(Path("/run").glob("sandbox-stage-*")) - before:
        try:
            folder.rmdir()
        except OSError:
            pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--old", default=OLD_DEFAULT, help="git commit holding the deny-list sandbox")
    args = parser.parse_args()
    from coursekit import executor as new_executor
    from coursekit import sandbox as new_sandbox

    with tempfile.TemporaryDirectory() as tmp:
        old_sandbox, old_executor = load_old(args.old, Path(tmp))
        uid = new_sandbox.claim_uid()
        print(f"new sandbox: {new_sandbox.mode(uid)}")
        stages = set(Path("/run").glob("sandbox-stage-*"))
        startup = {"deny-list (old)": [], "allow-list (new)": []}
        per_notebook = {"deny-list (old)": [], "allow-list (new)": []}
        empty = {"deny-list (old)": [], "allow-list (new)": []}
        time_notebook(new_executor, uid)  # warm the file cache for both
        for i in range(args.repeats * 3):
            startup["deny-list (old)"].append(time_startup(old_sandbox, uid))
            startup["allow-list (new)"].append(time_startup(new_sandbox, uid))
        for i in range(args.repeats * 2):
            empty["deny-list (old)"].append(time_notebook(old_executor, uid, imports=False))
            empty["allow-list (new)"].append(time_notebook(new_executor, uid, imports=False))
        for i in range(args.repeats):
            per_notebook["deny-list (old)"].append(time_notebook(old_executor, uid))
            per_notebook["allow-list (new)"].append(time_notebook(new_executor, uid))
            print(f"  pair {i + 1}/{args.repeats}: old {per_notebook['deny-list (old)'][-1][0]:.2f} s, "
                  f"new {per_notebook['allow-list (new)'][-1][0]:.2f} s", flush=True)
        remove_old_stage_folders(stages)
    for title, table in (("sandbox start-up, `python -I -c pass`", startup),
                         ("per notebook, kernel only (two cells, no imports)", empty),
                         ("per notebook, numpy + torch, two cells", per_notebook)):
        print(f"\n{title} (median of {len(table['deny-list (old)'])}, old/new alternating)")
        print(f"  {'':18s} {'wall s':>8s} {'CPU s':>8s}")
        medians = {}
        for name, values in table.items():
            medians[name] = [statistics.median(v[k] for v in values) if values[0][k] is not None else None
                              for k in (0, 1)]
            print(f"  {name:18s} " + " ".join(f"{m:8.3f}" if m is not None else f"{'-':>8s}" for m in medians[name]))
        old, new = medians.values()
        print(f"  {'difference':18s} " + " ".join(f"{b - a:+8.3f}" if a is not None else f"{'-':>8s}"
                                                  for a, b in zip(old, new)) + "   (budget: +0.200 s per notebook)")
        pairs = [b[0] - a[0] for a, b in zip(*table.values())]
        print(f"  {'paired':18s} {statistics.median(pairs):+8.3f}            (median of new - old within each pair)")


if __name__ == "__main__":
    main()
