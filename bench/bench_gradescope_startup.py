"""Benchmark: what a Gradescope run costs before it grades anything, this kit against an earlier commit's,
side by side in one run (issue 23).

One hw6 log-mode zip is built and unpacked twice; in the second tree the kit (``source/kit/coursekit``) is
replaced by the one of ``--before`` (``git archive``). Both trees then grade, alternately, ``--repeats``
times each: an empty upload (the answer is "No file was submitted": what is left is the fixed cost of
every submission, the parent process that guards the deadline, the grading child, their imports) and a
truncated submission_log.json (refused as not valid JSON). Wall time and CPU-seconds of the whole run
(``RUSAGE_CHILDREN``), medians.

Run (root, Linux): .venv/bin/python bench/bench_gradescope_startup.py [--before dfd42a5] [--repeats 5]
"""
from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from coursekit.course import Course
from coursekit.gradescope import emulate
from coursekit.gradescope.build import build
from coursekit.testing.courses import copy_course

REPO = Path(__file__).resolve().parents[1]


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


UPLOADS = {  # upload -> (files, what the answer must say)
    "empty upload": ({}, "No file was submitted"),
    "truncated log": ({"submission_log.json": '{"format_version": 2, "hist'}, "is not valid JSON"),
}


def graded(tree: Path, upload: str) -> tuple[float, float]:
    """(wall, CPU) seconds of one run of ``tree`` with ``upload``; checks the answer."""
    for name in ("submission", "results"):
        shutil.rmtree(tree / name)
        (tree / name).mkdir()
    files, answer = UPLOADS[upload]
    for name, text in files.items():
        (tree / "submission" / name).write_text(text)
    wall, cpu = time.perf_counter(), children_cpu()
    results, stdout = emulate.run(tree)
    wall, cpu = time.perf_counter() - wall, children_cpu() - cpu
    assert results is not None and results["score"] == 0 and answer in results["output"], stdout
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default="dfd42a5", help="the commit whose kit is measured beside this one")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        course = Course.open(copy_course(tmp / "course"))
        zip_path = tmp / "log.zip"
        build(course, "hw6", "log", zip_path)
        trees = {"now": emulate.unpack(zip_path, tmp / "now"), args.before: emulate.unpack(zip_path, tmp / "before")}
        kit = trees[args.before] / "source" / "kit"
        shutil.rmtree(kit / "coursekit")
        archive = subprocess.run(["git", "-C", str(REPO), "archive", args.before, "coursekit"],
                                 capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", str(kit)], input=archive, check=True)
        for tree in trees.values():
            graded(tree, "empty upload")  # warm-up: the page cache
        runs = {(upload, name): [] for upload in UPLOADS for name in trees}
        for _ in range(args.repeats):
            for upload, name in runs:
                runs[(upload, name)].append(graded(trees[name], upload))
    print(f"\nGradescope log mode, median of {args.repeats} runs each (interleaved)\n")
    print(f"| upload | kit | wall s | CPU s |\n| --- | --- | ---: | ---: |")
    for upload in UPLOADS:
        wall = {name: statistics.median(w for w, _ in runs[(upload, name)]) for name in trees}
        cpu = {name: statistics.median(c for _, c in runs[(upload, name)]) for name in trees}
        for name in trees:
            print(f"| {upload} | {name} | {wall[name]:.2f} | {cpu[name]:.2f} |")
        print(f"| {upload} | ratio now / {args.before} | {wall['now'] / wall[args.before]:.2f} | "
              f"{cpu['now'] / cpu[args.before]:.2f} |")


if __name__ == "__main__":
    main()
