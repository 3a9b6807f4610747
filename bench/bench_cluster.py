"""Benchmark: the Dask cluster path against the local `--jobs 2` pool, side by side in one run.

The same N submissions (default 20) of the tiny fixture course (coursekit/testing/tiny_course.py: two short
notebooks each, so the kernel's own work is small and the per-task overhead shows) are graded with
`autograde(jobs=2)` and with `autograde(scheduler=...)` on a `dask scheduler` and two `coursekit worker`
processes on this machine (127.0.0.1): same cores, same sandbox. Reported: wall time of each, the
overhead per task of the cluster path, the parent's own serial time per notebook (sanitise + pack a
task, save its grades: the one part that does not scale with workers) and the size of a task.

Then a projection to 1,500 hw6 submissions with 10, 50 and 100 workers (one worker = one core),
from the per-notebook times of one hw6 submission recorded in docs/benchmarks.md (or --hw6-seconds).

Run: .venv/bin/python bench/bench_cluster.py [--students 20] [--rounds 1]
"""
from __future__ import annotations

import argparse
import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from coursekit import grading
from coursekit.course import Course
from coursekit.samples import fill_answers
from coursekit.testing.tiny_course import ASSIGNMENT, make_course

REPO = Path(__file__).resolve().parents[1]  # the checkout whose coursekit the workers import

# One full hw6 submission, seconds per notebook (docs/benchmarks.md, "Autograding", 2026-11-22).
HW6_SECONDS = {"backprop_scalar_rnn": 1.7, "beam_search": 1.5, "convolutions": 2.6, "reading_and_survey": 0.7,
               "rnn_gradients": 20.4, "surname_classification": 10.9}


def submissions(course: Course, n: int) -> list[str]:
    students = [f"student{i:02d}" for i in range(n)]
    for student in students:
        folder = course.folder("submitted", student, ASSIGNMENT)
        folder.mkdir(parents=True)
        for name in course.source_notebooks(ASSIGNMENT):
            release = nbformat.read(str(course.folder("release", ASSIGNMENT, f"{name}.ipynb")), as_version=4)
            source = nbformat.read(str(course.folder("source", ASSIGNMENT, f"{name}.ipynb")), as_version=4)
            nbformat.write(fill_answers(release, source), str(folder / f"{name}.ipynb"))
    return students


def start(command: list[str], cwd: Path) -> subprocess.Popen:
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(command, cwd=cwd, stdout=subprocess.DEVNULL, stderr=open(cwd / "log", "w"),
                            env={**os.environ, "PYTHONPATH": str(REPO)}, start_new_session=True)


def cluster(tmp: Path, workers: int) -> tuple[str, list[subprocess.Popen]]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    address = f"tcp://127.0.0.1:{port}"
    processes = [start([str(Path(sys.executable).with_name("dask")), "scheduler", "--host", "127.0.0.1",
                        "--port", str(port), "--no-dashboard"], tmp / "scheduler")]
    while "Scheduler at" not in (tmp / "scheduler" / "log").read_text():
        time.sleep(0.2)
    processes += [start([sys.executable, "-m", "coursekit", "worker", address], tmp / f"worker{i}")
                  for i in range(workers)]
    return address, processes


class ParentClock:
    """Time the parent spends per notebook (making tasks, saving grades) and the size of the tasks."""

    def __init__(self) -> None:
        self.seconds, self.sizes = 0.0, []
        self.make, self.save = grading.TaskMaker.__call__, grading.save_grades

    def __enter__(self) -> "ParentClock":
        def make(maker, *args):
            t0 = time.perf_counter()
            task = self.make(maker, *args)
            self.seconds += time.perf_counter() - t0
            self.sizes.append(len(pickle.dumps(task)))
            return task

        def save(*args):
            t0 = time.perf_counter()
            self.save(*args)
            self.seconds += time.perf_counter() - t0

        grading.TaskMaker.__call__, grading.save_grades = make, save
        return self

    def __exit__(self, *exc) -> None:
        grading.TaskMaker.__call__, grading.save_grades = self.make, self.save


def clock(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def projection(per_notebook: dict[str, float], overhead: float, parent: float, submissions: int = 1500) -> None:
    tasks = submissions * len(per_notebook)
    work = submissions * sum(per_notebook.values()) + tasks * overhead  # worker-seconds
    print(f"\nProjection: {submissions} hw6 submissions ({tasks} notebooks, {sum(per_notebook.values()):.1f} s "
          f"per submission + {overhead:.2f} s cluster overhead per notebook; parent {parent:.3f} s per notebook)")
    print(f"  {'workers':>8} {'worker-bound':>14} {'parent-bound':>14} {'estimate':>10}")
    for workers in (10, 50, 100):
        bound = work / workers + max(per_notebook.values())  # plus the tail: the last long notebook
        serial = tasks * parent
        print(f"  {workers:>8} {bound / 3600:>12.2f} h {serial / 3600:>12.2f} h {max(bound, serial) / 3600:>8.2f} h")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=1, help="alternate local/cluster this many times")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        course = Course.open(make_course(tmp / "course"))
        course.generate_release(ASSIGNMENT)
        students = submissions(course, args.students)
        address, processes = cluster(tmp / "machines", workers=2)
        try:
            print("reference records and a warm-up run on each path (workers join on the first run)...")
            grading.autograde(course, ASSIGNMENT, students[:1], jobs=2)
            grading.autograde(course, ASSIGNMENT, students[:2], scheduler=address)
            local, dask = [], []
            for _ in range(args.rounds):
                with ParentClock() as local_parent:
                    local.append(clock(lambda: grading.autograde(course, ASSIGNMENT, students, jobs=2)))
                with ParentClock() as dask_parent:
                    dask.append(clock(lambda: grading.autograde(course, ASSIGNMENT, students, scheduler=address)))
        finally:
            for process in processes:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    n = args.students * 2
    best_local, best_dask = min(local), min(dask)
    overhead = (best_dask - best_local) * 2 / n  # two workers: extra worker-seconds per task
    print(f"\n{args.students} tiny submissions ({n} notebooks), 2 local processes vs 2 Dask workers, same machine")
    print(f"  local --jobs 2:        {best_local:6.1f} s   ({best_local * 2 / n:.2f} worker-s per notebook)  runs: "
          f"{', '.join(f'{t:.1f}' for t in local)}")
    print(f"  Dask, 2 workers:       {best_dask:6.1f} s   ({best_dask * 2 / n:.2f} worker-s per notebook)  runs: "
          f"{', '.join(f'{t:.1f}' for t in dask)}")
    print(f"  ratio Dask / local:    {best_dask / best_local:6.2f}")
    print(f"  overhead per task:     {overhead:+6.2f} s")
    print(f"  parent per notebook:   {dask_parent.seconds / n:6.3f} s (Dask run), {local_parent.seconds / n:.3f} s "
          "(local run): sanitise + pack + save grades")
    print(f"  task size:             {sum(dask_parent.sizes) / len(dask_parent.sizes) / 1024:6.1f} KiB on average "
          "(tiny; an hw6 task carries its notebook and reference records)")
    projection(HW6_SECONDS, max(overhead, 0.0), dask_parent.seconds / n)


if __name__ == "__main__":
    main()
