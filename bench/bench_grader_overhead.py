"""Benchmark: the grader's fixed cost per notebook, measured side by side in one run (issue 23).

Part 1, kernel start: a one-cell notebook executed in the sandbox (forked from the zygote), with the
kit's ``CappedKernelClient.wait_for_ready`` (ready when kernel_info's "idle" status arrives) against
jupyter_client's own wait (which then reads IOPub until it has been silent for 0.2 s). Rounds interleave.
Part 2, the gradebook: the tiny test course, 10 copies of its reference student graded serially by
``coursekit autograde``, with nbgrader's gradebook engine kept per process (``reuse_engines``) against a
new engine per ``Gradebook(...)`` (nbgrader's own way). Wall time and the grader's own CPU (the kernels
run in other processes).
Part 3, a kernel's first optimizer: a notebook that makes one ``torch.optim.Adam`` (torch then imports
``torch._dynamo``), kernels forked from a zygote that preloaded numpy and torch against one that also
preloaded ``torch._dynamo`` (nbgrader_config.py's list). Rounds interleave.

Run (root, for the sandbox): .venv/bin/python bench/bench_grader_overhead.py [--rounds 2] [--kernels 8]
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import nbgrader.api
from jupyter_client.client import KernelClient
from nbformat.v4 import new_code_cell, new_notebook

from coursekit import executor, gradebook_engines
from coursekit.course import Course
from coursekit.executor import CappedKernelClient, execute, scratch_copy
from coursekit.grading import autograde
from coursekit.preprocessors import SandboxedExecute
from coursekit.samples import build_samples
from coursekit.testing.tiny_course import ASSIGNMENT, make_course

KIT_WAIT = CappedKernelClient.wait_for_ready
JUPYTER_WAIT = KernelClient._async_wait_for_ready
NEW_ENGINE_EACH_TIME = nbgrader.api.create_engine
FIRST_OPTIMIZER = "import torch\noptimizer = torch.optim.Adam([torch.zeros(1, requires_grad=True)])"


def kernel_start(folder: Path, kernels: int, wait, preload: tuple[str, ...] = ("numpy",),
                 source: str = "x = 1") -> float:
    """Median seconds to execute a one-cell notebook (``source``), over ``kernels`` kernels forked from a
    zygote that imported ``preload``, with ``wait``."""
    CappedKernelClient.wait_for_ready = wait
    nb = new_notebook(cells=[new_code_cell(source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    settings = SandboxedExecute(timeout=60, notebook_timeout=120, preload_modules=list(preload),
                                extra_arguments=["--HistoryManager.hist_file=:memory:",
                                                 "--IPKernelApp.log_level=ERROR"]).execution_settings()
    seconds = []
    for _ in range(kernels):
        workdir = scratch_copy(folder)
        start = time.perf_counter()
        report = execute(nb, workdir, settings)
        seconds.append(time.perf_counter() - start)
        executor.remove_scratch(workdir)
        assert report.executed_cells == 1 and not report.problems, report.problems
    CappedKernelClient.wait_for_ready = KIT_WAIT
    return statistics.median(seconds)


def grade_tiny(course: Course, students: list[str], reuse: bool) -> tuple[float, float]:
    """(wall seconds, grader CPU seconds) of grading ``students`` serially."""
    import coursekit.grading
    import coursekit.intake

    gradebook_engines._engines.clear()
    nbgrader.api.create_engine = NEW_ENGINE_EACH_TIME
    installers = (coursekit.grading, coursekit.intake)
    if not reuse:
        for module in installers:
            module.reuse_engines = lambda: None
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        autograde(course, ASSIGNMENT, students, jobs=1)
        return time.perf_counter() - wall, time.process_time() - cpu
    finally:
        for module in installers:
            module.reuse_engines = gradebook_engines.reuse_engines
        nbgrader.api.create_engine = NEW_ENGINE_EACH_TIME


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--kernels", type=int, default=8, help="kernels per measurement in part 1")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "notebook"
        folder.mkdir()
        kernel_start(folder, 2, KIT_WAIT)  # warm-up: starts the zygote
        print("Part 1: one-cell notebook, median seconds per kernel (start, run, stop)")
        for round_ in range(args.rounds):
            ours = kernel_start(folder, args.kernels, KIT_WAIT)
            theirs = kernel_start(folder, args.kernels, JUPYTER_WAIT)
            print(f"  round {round_ + 1}: jupyter_client's wait {theirs:.3f} s   kit's wait {ours:.3f} s   "
                  f"ratio {ours / theirs:.2f}")

        course = Course.open(make_course(Path(tmp) / "course"))
        course.generate_release(ASSIGNMENT)
        build_samples(course, ASSIGNMENT)
        students = []
        for i in range(10):
            students.append(f"copy{i:02d}")
            shutil.copytree(course.folder("submitted", "reference", ASSIGNMENT),
                            course.folder("submitted", students[-1], ASSIGNMENT))
        grade_tiny(course, ["reference"], True)  # warm-up: reference records, zygote
        print("Part 2: tiny course, 10 submissions x 2 notebooks, serial")
        for round_ in range(args.rounds):
            new_wall, new_cpu = grade_tiny(course, students, False)
            kept_wall, kept_cpu = grade_tiny(course, students, True)
            print(f"  round {round_ + 1}: engine per Gradebook {new_wall:.1f} s wall, {new_cpu:.1f} s grader CPU   "
                  f"engine kept {kept_wall:.1f} s, {kept_cpu:.1f} s   ratio wall {kept_wall / new_wall:.2f}, "
                  f"CPU {kept_cpu / new_cpu:.2f}")

        print("Part 3: a notebook that makes one torch optimizer, median seconds per kernel")
        without, with_dynamo = ("numpy", "torch"), ("numpy", "torch", "torch._dynamo")
        for preload in (without, with_dynamo):  # warm-up: start both zygotes
            kernel_start(folder, 1, KIT_WAIT, preload, FIRST_OPTIMIZER)
        for round_ in range(args.rounds):
            before = kernel_start(folder, args.kernels, KIT_WAIT, without, FIRST_OPTIMIZER)
            after = kernel_start(folder, args.kernels, KIT_WAIT, with_dynamo, FIRST_OPTIMIZER)
            print(f"  round {round_ + 1}: zygote with numpy, torch {before:.3f} s   also torch._dynamo {after:.3f} s   "
                  f"ratio {after / before:.2f}")


if __name__ == "__main__":
    main()
