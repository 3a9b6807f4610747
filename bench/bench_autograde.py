"""Benchmark: autograde of one full reference submission of hw6.

Side by side in one run, on the same throwaway course:
  (a) stock `nbgrader autograde hw6 --student reference` (all notebooks in one call), and
  (b) `coursekit` autograde (preflight, then one nbgrader call per notebook),
printing the wall time per notebook for (b) and the ratio (b)/(a).
Run: .venv/bin/python bench/bench_autograde.py
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "tests" / "hw6"))

from coursekit import grading  # noqa: E402
from coursekit.commands.release import generate_release  # noqa: E402
from coursekit.course import Course  # noqa: E402
from coursekit.samples import build_samples  # noqa: E402
from hw6_course import copy_course  # noqa: E402


def main() -> None:
    mirror = REPO.parent / "shared" / "data" / "names"
    if "HW6_DATA_MIRROR" not in os.environ and mirror.is_dir():
        os.environ["HW6_DATA_MIRROR"] = str(mirror)
    with tempfile.TemporaryDirectory() as tmp:
        course = Course.open(copy_course(Path(tmp) / "course"))
        generate_release(course, "hw6")
        build_samples(course, "hw6")

        start = time.perf_counter()
        subprocess.run([str(Path(sys.executable).parent / "nbgrader"), "autograde", "hw6", "--student", "reference",
                        "--force", "--create"], cwd=course.root, check=True, capture_output=True)
        stock = time.perf_counter() - start
        shutil.rmtree(course.folder("autograded"), ignore_errors=True)

        timings: dict[str, float] = {}
        original = grading._run_nbgrader_autograde

        def timed(course_, assignment, student, notebook):
            t0 = time.perf_counter()
            try:
                return original(course_, assignment, student, notebook)
            finally:
                timings[notebook] = time.perf_counter() - t0

        grading._run_nbgrader_autograde = timed
        start = time.perf_counter()
        [result] = grading.autograde(course, "hw6", ["reference"])
        ours = time.perf_counter() - start

    print(f"\nreference submission: {result.code_score:g}/{result.max_code_score:g} autograded points")
    print(f"{'notebook':32s} seconds")
    for name, seconds in sorted(timings.items()):
        print(f"{name:32s} {seconds:7.1f}")
    print(f"\nstock nbgrader autograde (one call):      {stock:7.1f} s")
    print(f"coursekit autograde (one call/notebook):  {ours:7.1f} s")
    print(f"ratio coursekit / stock:                  {ours / stock:7.2f}")


if __name__ == "__main__":
    main()
