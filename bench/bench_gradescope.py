"""Benchmark: the Gradescope autograder (run_autograder in an emulated container) against the kit's own
commands on the same submission, side by side in one run.

Part 1 (log mode): `run_autograder` for the reference student's submission_log.json against
`coursekit grade-log` of the same file.
Part 2 (notebooks mode, hw6): `run_autograder` for the reference student's six notebooks against
`coursekit autograde` of the same submission (reference records already cached on both sides, as they
are on Gradescope: computed once when the zip is built). `--skip-notebooks` leaves part 2 out.

Run (root, Linux): .venv/bin/python bench/bench_gradescope.py [--repeats 1] [--log-repeats 3] [--skip-notebooks]
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from coursekit.course import Course
from coursekit.gradescope import emulate
from coursekit.gradescope.build import build
from coursekit.testing.courses import copy_course
from coursekit.testing.submission_logs import reference_submission_log

REPO = Path(__file__).resolve().parents[1]  # the checkout whose coursekit the subprocesses import


def clock(fn) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def gradescope_run(zip_path: Path, files: dict[str, Path], work: Path) -> tuple[float, dict]:
    shutil.rmtree(work, ignore_errors=True)
    emulate.unpack(zip_path, work)
    for name, path in files.items():
        shutil.copy(path, work / "submission" / name)
    seconds, (results, _) = clock(lambda: emulate.run(work))
    assert results is not None
    return seconds, results


def kit(course: Course, *args: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    seconds, done = clock(lambda: subprocess.run([sys.executable, "-m", "coursekit", "--course-dir", str(course.root),
                                                  *args], capture_output=True, text=True, env=env))
    if done.returncode != 0:
        raise SystemExit(f"coursekit {' '.join(args)} failed: {done.stderr[-2000:]}")
    return seconds


def row(label: str, ours: list[float], theirs: list[float], note: str) -> str:
    a, b = statistics.median(ours), statistics.median(theirs)
    return f"| {label} | {a:.1f} | {b:.1f} | {a / b:.2f}x | {note} |"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1, help="notebooks-mode runs of each side (median reported)")
    parser.add_argument("--log-repeats", type=int, default=3, help="log-mode runs of each side (median reported)")
    parser.add_argument("--skip-notebooks", action="store_true", help="only the log mode")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        course = Course.open(copy_course(tmp / "course"))
        if not (course.root / "data" / "names").is_dir():
            raise SystemExit("run `coursekit fetch-data` first: the surname data is needed")

        print("training the reference model once for its log (~15 s)...")
        log = tmp / "submission_log.json"
        log.write_text(json.dumps(reference_submission_log()))
        build_s, _ = clock(lambda: build(course, "hw6", "log", tmp / "log.zip"))
        print(f"log-mode zip built in {build_s:.1f} s")
        ours, theirs = [], []
        for i in range(args.log_repeats):
            seconds, results = gradescope_run(tmp / "log.zip", {"submission_log.json": log}, tmp / "gs")
            assert results["score"] == 5.0, results
            ours.append(seconds)
            theirs.append(kit(course, "grade-log", str(log)))
            print(f"  log run {i + 1}: run_autograder {ours[-1]:.1f} s, coursekit grade-log {theirs[-1]:.1f} s")
        rows.append(row("log: reference submission_log.json", ours, theirs, "score 5/5 on both sides"))

        if not args.skip_notebooks:
            print("building the notebooks-mode zip (grades the reference once: minutes)...")
            build_s, manifest = clock(lambda: build(course, "hw6", "notebooks", tmp / "nb.zip"))
            print(f"notebooks-mode zip built in {build_s:.1f} s")
            from coursekit.samples import build_samples

            course.generate_release("hw6")
            build_samples(course, "hw6")
            submission = course.folder("submitted", "reference", "hw6")
            files = {p.name: p for p in submission.glob("*.ipynb")}
            warm = kit(course, "autograde", "--student", "reference")  # caches this course's reference records
            print(f"  coursekit autograde, first run (computes the reference records): {warm:.1f} s")
            ours, theirs = [], []
            for i in range(args.repeats):
                seconds, results = gradescope_run(tmp / "nb.zip", files, tmp / "gs")
                auto = sum(c["points"] for c in manifest["cells"] if c["kind"] == "auto")
                assert results["score"] == auto, (results["score"], auto)
                ours.append(seconds)
                theirs.append(kit(course, "autograde", "--student", "reference"))
                print(f"  notebooks run {i + 1}: run_autograder {ours[-1]:.1f} s, coursekit autograde {theirs[-1]:.1f} s")
            rows.append(row("notebooks: reference, six notebooks", ours, theirs, f"{auto:g}/{auto:g} autograded points"))
            rows.append(f"| notebooks-mode zip build (once) | {build_s:.1f} | – | – | grades the reference once |")

    load = os.getloadavg()[0]
    print(f"\nmedian of {args.log_repeats} (log) and {args.repeats} (notebooks) runs, seconds (load average {load:.1f} on {os.cpu_count()} cores)\n")
    print("| submission | run_autograder (emulated Gradescope) | coursekit | ratio | note |")
    print("| --- | ---: | ---: | ---: | --- |")
    print("\n".join(rows))


if __name__ == "__main__":
    main()
