"""Benchmark: autograding hw6, stock nbgrader against coursekit, measured side by side in one run.

Part 1 (one submission): `nbgrader autograde` for the reference student (one call, all notebooks)
against `coursekit` (intake, sandboxed kernel per notebook, judge), with coursekit's time per notebook
and the time its judge spends outside the kernel (trained weights re-evaluated for 3k and Problem 4).
Both run nbgrader_config.py's pipeline; "stock" is nbgrader's own command, serial.
Part 2 (N submissions, default 20, cycling reference/partial/untouched): stock `nbgrader autograde`
serial against `coursekit autograde --jobs 2`; prints the throughput ratio. Part 3: the sandbox's
per-notebook overhead, coursekit serial with and without the sandbox on the same submissions.
Part 0 (on request, ``--parts 0``): where the CPU of one reference submission goes: per notebook the
grader's and its kernels' CPU-seconds, the kernel's start-up, and the slowest cells.
``--kernels exec forked`` runs part 1's coursekit grading once per way of starting kernels, side by side.

Run: .venv/bin/python bench/bench_autograde.py [--submissions 20] [--skip-stock] [--parts 0 1 2 3] [--keep DIR]
"""
from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from coursekit import grading
from coursekit.course import Course
from coursekit.intake import expected_notebooks
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
    parser.add_argument("--submissions", "--students", dest="students", type=int, default=20)
    parser.add_argument("--skip-stock", action="store_true", help="leave out the stock nbgrader runs")
    parser.add_argument("--parts", type=int, nargs="+", default=[1, 2, 3], choices=[0, 1, 2, 3],
                        help="which parts to run (default: 1 2 3; 0 is the profile)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="build the throwaway course in DIR and reuse it (and its cached reference records) "
                             "on the next run")
    parser.add_argument("--modes", nargs="+", default=["checked", "ungraded"],
                        help="optional_parts settings profiled side by side in part 0 (\"checked\" runs every cell, "
                             "as grading did before optional parts were left out); the last one is used for "
                             "parts 1-3")
    parser.add_argument("--kernels", nargs="+", default=["forked"], choices=["exec", "forked"],
                        help="how kernels start, side by side in part 1 (\"exec\": a new interpreter per notebook, "
                             "as before the zygote; \"forked\": a fork of the zygote); the last one is used for "
                             "the stock run and parts 2-3")
    args = parser.parse_args()
    global METER
    METER = CpuMeter()
    try:
        run(args)
    finally:
        METER.close()


def run(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp) / "course"
        shutil.rmtree(root / "source", ignore_errors=True)  # a kept course gets today's source and config
        course = Course.open(copy_course(root, with_data=not (root / "data" / "names").is_dir()))
        course.generate_release("hw6")  # always: a kept course's students must be today's notebooks
        build_samples(course, "hw6")
        samples = ["reference", "partial", "untouched"]
        students = [f"student{i:02d}" for i in range(args.students)]
        for i, student in enumerate(students):
            shutil.rmtree(course.folder("submitted", student, "hw6"), ignore_errors=True)
            shutil.copytree(course.folder("submitted", samples[i % 3], "hw6"), course.folder("submitted", student, "hw6"))
        notebooks = len(course.source_notebooks("hw6"))

        print("computing the reference records once (cached for every later run)...")
        setup = clock(lambda: grading.references(course, grading.grading_config(course), "hw6",
                                                 expected_notebooks(course.config, "hw6")))
        print(f"  reference records: {setup:.1f} s\n")

        set_kernels(course, args.kernels[-1])
        if 0 in args.parts:
            for mode in args.modes:
                set_optional_parts(course, mode)
                part_zero(course, mode)
            set_optional_parts(course, args.modes[-1])
        if 1 in args.parts:
            part_one(args, course)
        if 2 in args.parts:
            part_two(args, course, students, notebooks)
        if 3 in args.parts:
            part_three(course, samples, notebooks)
        print(f"\nmachine: {os.cpu_count()} cores; load average {os.getloadavg()[0]:.1f} at the end")


def set_kernels(course: Course, kernels: str) -> None:
    """Set how kernels start in the throwaway course's nbgrader_config.py (read by every grading step)."""
    path = course.root / "nbgrader_config.py"
    setting = "c.SandboxedExecute.fork_kernels = "
    lines = [line for line in path.read_text().splitlines() if not line.startswith(setting)]
    path.write_text("\n".join([*lines, f"{setting}{kernels == 'forked'}"]) + "\n")
    course.__dict__.pop("config", None)  # Course.config is read once: read it again


def set_optional_parts(course: Course, mode: str) -> None:
    """Set ``optional_parts`` in the throwaway course's pyproject.toml (read at every grading step)."""
    path = course.root / "pyproject.toml"
    lines = [line for line in path.read_text().splitlines() if not line.startswith("optional_parts")]
    at = lines.index("[tool.coursekit]") + 1
    path.write_text("\n".join([*lines[:at], f'optional_parts = "{mode}"', *lines[at:]]) + "\n")


class CpuMeter:
    """CPU-seconds of this benchmark and everything it starts. Kernels run in PID namespaces below their
    warden and are never reaped by this process, so ``getrusage`` misses them: as root on cgroup v1, the
    benchmark moves itself into a cpuacct cgroup of its own (every kernel and every `nbgrader` it starts
    inherits it) and reads ``cpuacct.usage``; otherwise only this process and its reaped children count."""

    def __init__(self) -> None:
        self.group = Path(f"/sys/fs/cgroup/cpuacct/coursekit-bench-autograde-{os.getpid()}")
        try:
            self.group.mkdir()
            (self.group / "cgroup.procs").write_text(str(os.getpid()))
            self.kind = "cgroup (benchmark, graders, kernels)"
        except OSError:
            self.group, self.kind = None, "getrusage (kernels not counted)"

    def seconds(self) -> float:
        if self.group is not None:
            return int((self.group / "cpuacct.usage").read_text()) / 1e9
        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime

    def close(self) -> None:
        if self.group is not None:
            Path("/sys/fs/cgroup/cpuacct/cgroup.procs").write_text(str(os.getpid()))
            for _ in range(50):  # the last kernels may still be leaving
                try:
                    self.group.rmdir()
                    return
                except OSError:
                    time.sleep(0.1)


METER: CpuMeter | None = None


def cpu_seconds() -> float:
    """CPU-seconds so far (see CpuMeter)."""
    return METER.seconds() if METER is not None else 0.0


def part_zero(course: Course, mode: str, top: int = 6) -> None:
    """Profile of one reference submission, serial: CPU per notebook, kernel start, slowest cells."""
    from coursekit import executor
    from coursekit.preprocessors import sandboxed_execute

    cells: dict[str, list[tuple[float, int, str]]] = {}
    starts: dict[str, float] = {}
    cpu: dict[str, tuple[float, float, float]] = {}
    current = {"notebook": "", "since": 0.0}
    original_grade, original_cell = grading.grade_notebook, executor.CappedNotebookClient.execute_cell
    original_execute = sandboxed_execute.execute

    def timed_grade(task):
        current["notebook"] = task.notebook
        wall0, cpu0 = time.perf_counter(), cpu_seconds()
        try:
            return original_grade(task)
        finally:
            cpu[task.notebook] = (time.perf_counter() - wall0, cpu_seconds() - cpu0, 0.0)

    def timed_execute(*args, **kwargs):
        current["since"] = cpu_seconds()
        return original_execute(*args, **kwargs)

    def timed_cell(self, cell, index, **kwargs):
        name = current["notebook"]
        if name not in starts:  # kernel started and ready: first cell
            starts[name] = cpu_seconds() - current["since"]
        t0 = cpu_seconds()
        try:
            return original_cell(self, cell, index, **kwargs)
        finally:
            label = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id") or cell.source.split("\n")[0][:40]
            cells.setdefault(name, []).append((cpu_seconds() - t0, index, label))

    grading.grade_notebook, sandboxed_execute.execute = timed_grade, timed_execute
    executor.CappedNotebookClient.execute_cell = timed_cell
    reset(course)
    try:
        wall0, cpu0 = time.perf_counter(), cpu_seconds()
        result = grading.autograde(course, "hw6", ["reference"])[0]
        total = cpu_seconds() - cpu0
        wall = time.perf_counter() - wall0
    finally:
        grading.grade_notebook, sandboxed_execute.execute = original_grade, original_execute
        executor.CappedNotebookClient.execute_cell = original_cell
    print(f"Part 0: profile of one reference submission (coursekit autograde, serial), optional_parts = {mode!r}")
    print(f"  CPU-seconds measured by {METER.kind if METER else '-'}")
    print(f"  {'notebook':28s} {'wall':>6s} {'CPU':>6s} {'to 1st cell':>11s} {'cells':>6s}  "
          "slowest cells (CPU s; the first is the imports)")
    for name in sorted(cpu):
        wall_nb, used, _ = cpu[name]
        timed = sorted(cells.get(name, []), reverse=True)
        slow = ", ".join(f"{label} {seconds:.1f}" for seconds, _, label in timed[:top])
        print(f"  {name:28s} {wall_nb:6.1f} {used:6.1f} {starts.get(name, 0):11.1f} "
              f"{sum(s for s, _, _ in timed):6.1f}  {slow}")
    print(f"  whole run: wall {wall:.1f} s, CPU {total:.1f} s (load average {os.getloadavg()[0]:.1f}); "
          f"score {result.code_score:g} / {result.max_code_score:g}\n")


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

    def judged(*args, **kwargs):
        t0 = time.perf_counter()
        try:
            return original_judge(*args, **kwargs)
        finally:
            judge_seconds[str(len(judge_seconds))] = time.perf_counter() - t0

    grading.grade_notebook, judge_checks.apply_verdicts = timed, judged
    by_kernels = {}
    for kernels in args.kernels:  # the last one stays set for the stock run and parts 2-3
        set_kernels(course, kernels)
        reset(course)
        timings.clear()
        judge_seconds.clear()
        cpu0, start = cpu_seconds(), time.perf_counter()
        ours = grading.autograde(course, "hw6", ["reference"])[0]
        ours_one, ours_cpu = time.perf_counter() - start, cpu_seconds() - cpu0
        by_kernels[kernels] = (ours_one, ours_cpu, ours.code_score, ours.max_code_score)
    grading.grade_notebook, judge_checks.apply_verdicts = original, original_judge
    reset(course)
    cpu0 = cpu_seconds()
    stock_one = None if args.skip_stock else clock(lambda: stock_autograde(course, ["reference"]))
    stock_cpu = cpu_seconds() - cpu0
    print("Part 1: one full submission (reference student)")
    for name, seconds in sorted(timings.items()):
        print(f"  {name:28s} {seconds:6.1f} s")
    for kernels, (wall, cpu, score, most) in by_kernels.items():
        print(f"  coursekit, {kernels} kernels:{' ' * (6 - len(kernels))}            {wall:6.1f} s wall, {cpu:6.1f} s CPU, "
              f"score {score:g} / {most:g}")
    if len(by_kernels) == 2:
        print(f"  forked / exec: wall {by_kernels['forked'][0] / by_kernels['exec'][0]:.2f}, "
              f"CPU {by_kernels['forked'][1] / by_kernels['exec'][1]:.2f}")
    print(f"  of which judging outside the kernel:     {sum(judge_seconds.values()):6.2f} s "
          f"(slowest notebook {max(judge_seconds.values(), default=0.0):.2f} s)")
    if stock_one:
        stock_score = sum(nb.code_score for nb in grading.read_scores(course, "hw6", "reference"))
        print(f"  stock nbgrader autograde:                {stock_one:6.1f} s wall, {stock_cpu:6.1f} s CPU, "
              f"score {stock_score:g}   ratio coursekit/stock {ours_one / stock_one:.2f} "
              f"(CPU {ours_cpu / stock_cpu:.2f})")



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
