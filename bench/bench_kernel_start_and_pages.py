"""Benchmark: two costs of every graded notebook, each measured both ways side by side in one run (issue 23).

Part 1, a kernel's start: the tiny course's filled-in submissions graded serially by ``autograde`` in a fresh
process, kernels started as before (ipykernel imports its debugger, debugpy; the grader's sockets reconnect
every 100 ms, ZeroMQ's default, and wait 1 s for IOPub's "idle" after a kernel_info reply before asking again)
against as now (no debugger; 10 ms; 0.2 s). Wall time and CPU of the whole process tree (a cgroup: grader,
zygote, kernels), per notebook.
Part 2, a feedback page: the kit's exporter rendering hw6's release notebooks with nbconvert's own last step,
a BeautifulSoup pass over the whole page (``HTMLExporter.from_notebook_node``), against without it
(``SanitizedHTMLExporter._render``). CPU of this process, per page.
Rounds interleave the two ways.

Run (root, for the sandbox and the cgroup): .venv/bin/python bench/bench_kernel_start_and_pages.py [--rounds 3]
"""
from __future__ import annotations

import argparse
import copy
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbconvert.exporters import HTMLExporter

from coursekit import sanitize
from coursekit.course import Course
from coursekit.gradescope.emulate import Cgroup, notebook_upload
from coursekit.testing.courses import home_course
from coursekit.testing.tiny_course import ASSIGNMENT, make_course

GRADE = """
import json, sys, time
from coursekit import executor, grading
from coursekit.course import Course
course_dir, assignment, way, students = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
if way == "before":
    executor.KERNEL_LAUNCHER = "".join(line for line in executor.KERNEL_LAUNCHER.splitlines(keepends=True)
                                       if "debugpy" not in line)
    executor.RECONNECT_MS, executor.IDLE_AFTER_REPLY = 100, 1.0
course = Course.open(course_dir)
grading.autograde(course, assignment, students[:1])  # warm: the reference records, the zygote
print("warm", flush=True)
sys.stdin.readline()
start = time.perf_counter()
results = grading.autograde(course, assignment, students[1:])
assert all(r.code_score == r.max_code_score > 0 for r in results), results
print(json.dumps({"wall": time.perf_counter() - start}), flush=True)
"""


def submissions(root: Path, count: int) -> tuple[Path, list[str]]:
    """A tiny course with ``count`` filled-in submissions."""
    course_dir = make_course(root)
    course = Course.open(course_dir)
    course.generate_release(ASSIGNMENT)
    filled = notebook_upload(course_dir, ASSIGNMENT, filled=True)
    students = [f"student{i:02d}" for i in range(count)]
    for student in students:
        folder = course.folder("submitted", student, ASSIGNMENT)
        folder.mkdir(parents=True)
        for name, content in filled.items():
            (folder / name).write_bytes(content)
    return course_dir, students


def grade(course_dir: Path, students: list[str], way: str, round_: int) -> tuple[float, float]:
    """(wall, CPU of the process tree) per notebook of the submissions after the first (which starts the
    zygote and computes the reference records)."""
    group = Cgroup(f"bench-kernel-start-{way}-{round_}", memory_mb=8192, cpus=2.0)
    try:
        child = subprocess.Popen([sys.executable, "-c", GRADE, str(course_dir), ASSIGNMENT, way, *students],
                                 preexec_fn=group.enter, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True)
        assert child.stdout.readline().strip() == "warm"
        warm = group.stats()["cpu_s"]
        child.stdin.write("go\n")
        child.stdin.flush()
        wall = json.loads(child.stdout.readline())["wall"]
        assert child.wait() == 0
        cpu = group.stats()["cpu_s"] - warm
    finally:
        group.remove()
    notebooks = 2 * (len(students) - 1)
    return wall / notebooks, cpu / notebooks


def feedback_pages(notebooks: list, soup_pass: bool) -> float:
    """CPU-seconds per page."""
    exporter_class = sanitize.SanitizedHTMLExporter
    if soup_pass:
        class WithSoupPass(sanitize.SanitizedHTMLExporter):
            def _render(self, nb, resources, **kw):
                return HTMLExporter.from_notebook_node(self, nb, resources, **kw)
        exporter_class = WithSoupPass
    exporter_class().from_notebook_node(copy.deepcopy(notebooks[0]))  # warm: imports, templates
    start = time.process_time()
    for nb in notebooks:
        exporter_class().from_notebook_node(copy.deepcopy(nb))
    return (time.process_time() - start) / len(notebooks)


def ratio_line(label: str, before: list[float], after: list[float], unit: str) -> None:
    b, a = statistics.median(before), statistics.median(after)
    print(f"{label:60s} {b:8.3f} {unit}  ->  {a:8.3f} {unit}   ratio {a / b:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--submissions", type=int, default=11, help="tiny submissions per grading run")
    args = parser.parse_args()
    release = home_course().folder("release", "hw6")
    notebooks = [nbformat.read(str(path), as_version=4) for path in sorted(release.glob("*.ipynb"))]
    parts: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in ("wall", "cpu", "page")}
    with tempfile.TemporaryDirectory() as scratch:
        course_dir, students = submissions(Path(scratch) / "course", args.submissions)
        for round_ in range(args.rounds):
            for after, way in enumerate(("before", "after")):
                wall, cpu = grade(course_dir, students, way, round_)
                parts["wall"][after].append(wall)
                parts["cpu"][after].append(cpu)
            for after in (0, 1):
                parts["page"][after].append(feedback_pages(notebooks, soup_pass=not after))
            print(f"round {round_ + 1}: " + ", ".join(f"{k} {v[0][-1]:.3f} / {v[1][-1]:.3f}" for k, v in parts.items()))
    print(f"\nmedians of {args.rounds} rounds (before -> after):")
    ratio_line("part 1: a tiny notebook graded serially, wall", *parts["wall"], "s")
    ratio_line("part 1: the same, CPU of the process tree", *parts["cpu"], "s")
    ratio_line(f"part 2: a feedback page of hw6's release ({len(notebooks)} notebooks), CPU", *parts["page"], "s")


if __name__ == "__main__":
    main()
