"""Benchmark: autograding hw6, stock nbgrader against coursekit, measured side by side in one run.

Part 1 (one submission): `nbgrader autograde` for the reference student (one call, all notebooks)
against `coursekit` (intake, sandboxed kernel per notebook, judge), with coursekit's time per notebook
and the time its judge spends outside the kernel (trained weights re-evaluated for 3k and Problem 4).
Both run nbgrader_config.py's pipeline; "stock" is nbgrader's own command, serial.
Part 2 (N submissions, default 20, cycling reference/partial/untouched): stock `nbgrader autograde`
serial against `coursekit autograde --jobs 2`; prints the throughput ratio. Part 3: the sandbox's
per-notebook overhead, coursekit serial with and without the sandbox on the same submissions.

Run: .venv/bin/python bench/bench_autograde.py [--students 20] [--skip-stock]
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from coursekit import grading
from coursekit.course import Course
from coursekit.samples import build_samples
from coursekit.testing.courses import copy_course


def clock(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def stock_autograde(course: Course, students: list[str]) -> None:
    nbgrader = str(Path(sys.executable).parent / "nbgrader")
    for student in students:  # one call per student, as an instructor would script it
        subprocess.run([nbgrader, "autograde", "hw6", "--student", student, "--force", "--create"],
                       cwd=course.root, check=True, capture_output=True)


def reset(course: Course) -> None:
    shutil.rmtree(course.folder("autograded"), ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--skip-stock", action="store_true", help="leave out the stock nbgrader runs")
    parser.add_argument("--parts", type=int, nargs="+", default=[1, 2, 3], choices=[1, 2, 3],
                        help="which parts to run (default: all)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        course = Course.open(copy_course(Path(tmp) / "course"))
        course.generate_release("hw6")
        build_samples(course, "hw6")
        samples = ["reference", "partial", "untouched"]
        students = [f"student{i:02d}" for i in range(args.students)]
        for i, student in enumerate(students):
            shutil.copytree(course.folder("submitted", samples[i % 3], "hw6"), course.folder("submitted", student, "hw6"))
        notebooks = len(course.source_notebooks("hw6"))

        print("computing the reference records once (cached for every later run)...")
        setup = clock(lambda: grading.autograde(course, "hw6", ["reference"]))
        print(f"  first coursekit run incl. reference records: {setup:.1f} s\n")

        # Part 1: one full submission
        if 1 in args.parts:
            part_one(args, course)
        if 2 in args.parts:
            part_two(args, course, students, notebooks)
        if 3 in args.parts:
            part_three(course, samples, notebooks)
        print(f"\nmachine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at the end")


def part_one(args: argparse.Namespace, course: Course) -> None:
    """One full submission, with time per notebook and the judge's share."""
    timings: dict[str, float] = {}
    original = grading.grade_notebook

    def timed(task):
        t0 = time.perf_counter()
        try:
            return original(task)
        finally:
            timings[task.notebook] = time.perf_counter() - t0

    from coursekit.preprocessors import judge_checks
    judge_seconds: dict[str, float] = {}
    original_judge = judge_checks.apply_verdicts

    def judged(nb, reference, checks, mime):
        t0 = time.perf_counter()
        try:
            return original_judge(nb, reference, checks, mime)
        finally:
            judge_seconds[str(len(judge_seconds))] = time.perf_counter() - t0

    grading.grade_notebook, judge_checks.apply_verdicts = timed, judged
    reset(course)
    ours_one = clock(lambda: grading.autograde(course, "hw6", ["reference"]))
    grading.grade_notebook, judge_checks.apply_verdicts = original, original_judge
    reset(course)
    stock_one = None if args.skip_stock else clock(lambda: stock_autograde(course, ["reference"]))
    print("Part 1: one full submission (reference student)")
    for name, seconds in sorted(timings.items()):
        print(f"  {name:28s} {seconds:6.1f} s")
    print(f"  coursekit (sandboxed, verdicts outside): {ours_one:6.1f} s")
    print(f"  of which judging outside the kernel:     {sum(judge_seconds.values()):6.2f} s "
          f"(slowest notebook {max(judge_seconds.values()):.2f} s)")
    if stock_one:
        print(f"  stock nbgrader autograde:                {stock_one:6.1f} s   ratio coursekit/stock {ours_one / stock_one:.2f}")



def part_two(args: argparse.Namespace, course: Course, students: list[str], notebooks: int) -> None:
    """N submissions: stock nbgrader serial against coursekit --jobs 2."""
    reset(course)
    stock_n = None if args.skip_stock else clock(lambda: stock_autograde(course, students))
    reset(course)
    ours_n = clock(lambda: grading.autograde(course, "hw6", students, jobs=2))
    print(f"\nPart 2: {args.students} submissions x {notebooks} notebooks")
    print(f"  coursekit autograde --jobs 2: {ours_n:7.1f} s  ({args.students * 60 / ours_n:5.1f} submissions/min)")
    if stock_n:
        print(f"  stock nbgrader, serial:       {stock_n:7.1f} s  ({args.students * 60 / stock_n:5.1f} submissions/min)")
        print(f"  throughput ratio coursekit/stock: {stock_n / ours_n:.2f}x")



def part_three(course: Course, samples: list[str], notebooks: int) -> None:
    """The sandbox's overhead per notebook (serial, the three sample students)."""
    reset(course)
    plain = clock(lambda: grading.autograde(course, "hw6", samples, sandboxed=False))
    reset(course)
    boxed = clock(lambda: grading.autograde(course, "hw6", samples))
    print(f"\nPart 3: sandbox overhead, {len(samples)} submissions serial")
    print(f"  without sandbox: {plain:6.1f} s   with sandbox: {boxed:6.1f} s   "
          f"overhead per notebook: {(boxed - plain) / (len(samples) * notebooks):+.2f} s")


if __name__ == "__main__":
    main()
