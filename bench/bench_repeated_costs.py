"""Benchmark: three costs paid again and again, each measured both ways side by side in one run (issue 23).

Part 1, a new gradebook: ``Gradebook(url)`` of a database that does not exist yet, stamped with the schema
head by nbgrader's own way (the ``alembic heads`` program) against the kit's (``gradebook_engines.alembic_head``,
read in-process once). CPU of this process and its children.
Part 2, a feedback page: the kit's exporter (``coursekit.sanitize.SanitizedHTMLExporter``, one new exporter
per page as nbgrader makes them) rendering hw6's release notebooks, with nbconvert's templates compiled
for every page against compiled once per process (``COMPILED_TEMPLATES``).
Part 3, ``autograde(jobs=2)`` of the tiny course's four sample students in a fresh process, its pool
workers forked from a forkserver that imported nothing against one that imported the grading modules
(``grading.WORKER_MODULES``). CPU of the whole process tree (a cgroup: pool workers, zygotes, kernels).
Rounds interleave the two ways.

Run (root, for the sandbox and the cgroup): .venv/bin/python bench/bench_repeated_costs.py [--rounds 3]
"""
from __future__ import annotations

import argparse
import copy
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import nbgrader.api
from nbgrader.api import Gradebook

from coursekit import gradebook_engines, sanitize
from coursekit.course import Course
from coursekit.gradescope.emulate import Cgroup
from coursekit.samples import build_samples
from coursekit.testing.courses import home_course
from coursekit.testing.tiny_course import ASSIGNMENT, make_course

ALEMBIC_PROGRAM = nbgrader.api.get_alembic_version


def cpu_with_children() -> float:
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def new_gradebooks(folder: Path, count: int, in_process: bool) -> float:
    """CPU-seconds per new gradebook."""
    gradebook_engines.reuse_engines()
    nbgrader.api.get_alembic_version = gradebook_engines.alembic_head if in_process else ALEMBIC_PROGRAM
    start = cpu_with_children()
    for _ in range(count):
        with Gradebook(f"sqlite:///{tempfile.mktemp(dir=folder, suffix='.db')}") as gradebook:
            gradebook.add_student("ada")
    return (cpu_with_children() - start) / count


def feedback_pages(notebooks: list, compiled_once: bool) -> float:
    """CPU-seconds per page."""
    class EveryTime(sanitize.TemplatesCompiledOnce):
        def load_bytecode(self, bucket) -> None:
            pass

    sanitize.COMPILED_TEMPLATES = sanitize.TemplatesCompiledOnce() if compiled_once else EveryTime()
    sanitize.SanitizedHTMLExporter().from_notebook_node(copy.deepcopy(notebooks[0]))  # warm: imports, first compile
    start = time.process_time()
    for nb in notebooks:
        sanitize.SanitizedHTMLExporter().from_notebook_node(copy.deepcopy(nb))
    return (time.process_time() - start) / len(notebooks)


GRADE_TINY = """
import sys
from coursekit import grading
from coursekit.course import Course
from coursekit.samples import SAMPLE_STUDENTS
course_dir, preload, assignment = sys.argv[1:4]
if preload == "nothing":
    grading.WORKER_MODULES = []
results = grading.autograde(Course.open(course_dir), assignment, list(SAMPLE_STUDENTS), jobs=2)
[reference] = [r for r in results if r.student == "reference"]
assert 0 < reference.code_score == reference.max_code_score, reference
"""


def grade_tiny(root: Path, preload: str, round_: int) -> tuple[float, float]:
    """(wall, CPU-seconds of the process tree) of one autograde(jobs=2) of the tiny course's samples."""
    course_dir = make_course(root / f"{preload}-{round_}")
    course = Course.open(course_dir)
    course.generate_release(ASSIGNMENT)
    build_samples(course, ASSIGNMENT)
    group = Cgroup(f"bench-repeated-{preload}-{round_}", memory_mb=8192, cpus=2.0)
    try:
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", GRADE_TINY, str(course_dir), preload, ASSIGNMENT], check=True,
                       preexec_fn=group.enter, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        return time.perf_counter() - start, group.stats()["cpu_s"]
    finally:
        group.remove()


def ratio_line(label: str, before: list[float], after: list[float], unit: str) -> None:
    b, a = statistics.median(before), statistics.median(after)
    print(f"{label:55s} {b:8.3f} {unit}  ->  {a:8.3f} {unit}   ratio {a / b:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--gradebooks", type=int, default=5, help="new gradebooks per measurement in part 1")
    args = parser.parse_args()
    release = home_course().folder("release", "hw6")
    notebooks = [nbformat.read(str(path), as_version=4) for path in sorted(release.glob("*.ipynb"))]
    parts: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in ("gradebook", "page", "wall", "cpu")}
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        for round_ in range(args.rounds):
            for in_process in (False, True):
                parts["gradebook"][in_process].append(new_gradebooks(folder, args.gradebooks, in_process))
            for compiled_once in (False, True):
                parts["page"][compiled_once].append(feedback_pages(notebooks, compiled_once))
            for preload in ("nothing", "grading"):
                wall, cpu = grade_tiny(folder, preload, round_)
                parts["wall"][preload == "grading"].append(wall)
                parts["cpu"][preload == "grading"].append(cpu)
            print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[0][-1]:.3f} / {v[1][-1]:.3f}" for k, v in parts.items()))
    print(f"\nmedians of {args.rounds} rounds (before -> after):")
    ratio_line("part 1: a new gradebook, CPU (alembic program -> in-process)", *parts["gradebook"], "s")
    ratio_line(f"part 2: a feedback page of hw6's release ({len(notebooks)} notebooks), CPU", *parts["page"], "s")
    ratio_line("part 3: tiny course, 4 students, autograde(jobs=2), wall", *parts["wall"], "s")
    ratio_line("part 3: the same, CPU of the process tree", *parts["cpu"], "s")


if __name__ == "__main__":
    main()
