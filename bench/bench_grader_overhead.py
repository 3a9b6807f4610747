"""Benchmark: the grader's fixed cost per notebook, measured side by side in one run (issue 23).

Part 1, kernel start: a one-cell notebook executed in the sandbox (forked from the zygote), with the
kit's ``CappedKernelClient.wait_for_ready`` (ready when kernel_info's "idle" status arrives) against
jupyter_client's own wait (which then reads IOPub until it has been silent for 0.2 s). Rounds interleave.
Part 2, the gradebook: the tiny test course, 10 copies of its reference student graded serially by
``coursekit autograde``, with nbgrader's gradebook engine kept per process (``reuse_engines``) against a
new engine per ``Gradebook(...)`` (nbgrader's own way). Wall time and the grader's own CPU (the kernels
run in other processes).

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


def kernel_start(folder: Path, kernels: int, wait) -> float:
    """Median seconds to execute a one-cell notebook, over ``kernels`` kernels, with ``wait``."""
    CappedKernelClient.wait_for_ready = wait
    nb = new_notebook(cells=[new_code_cell("x = 1")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    settings = SandboxedExecute(timeout=30, notebook_timeout=60, preload_modules=["numpy"],
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


if __name__ == "__main__":
    main()
