"""Benchmark: the grader's peak memory while a kernel prints 1 GB, against an honest notebook, side by side.

Each case runs in a fresh grader process (``executor.execute`` of a small notebook in the full sandbox,
with the course's default limits), which reports its own peak resident memory (``ru_maxrss``), so the
cases do not share a high-water mark. Cases alternate (the machine is shared, each round sees the same
load); medians are reported:

* ``honest``: a notebook that prints a few lines and a 100 kB output (what a student's notebook does);
* ``prints 1 GB``: one cell ``print('x' * 10**9)``, one output message of 1 GB (issue 19, item 8: this
  raised the grader's peak from 130 MiB to 2,990 MiB before messages were capped);
* ``--uncapped`` adds the same notebook with ``max_message_bytes`` raised to 2 GiB (the old behaviour:
  needs several GB of free memory).

Target: the 1 GB case within 1.2x of the honest one. Run:
.venv/bin/python bench/bench_message_cap.py [--repeats 3] [--uncapped]
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

CASES = {
    "honest": ["print('hello')", "print('y' * 100_000)", "x = sum(range(10**6)); print(x)"],
    "prints 1 GB": ["print('hello')", "print('x' * 10**9)", "print('after')"],
}

GRADER = """
import json, resource, sys, tempfile, time
from pathlib import Path
from nbformat.v4 import new_code_cell, new_notebook
from coursekit.executor import execute, remove_scratch, scratch_copy
from coursekit.preprocessors import SandboxedExecute
from coursekit.testing.courses import home_course

cells, message_bytes = json.loads(sys.argv[1]), int(sys.argv[2])
nb = new_notebook(cells=[new_code_cell(c) for c in cells])
nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
traits = {"timeout": 300, "notebook_timeout": 600,
          "extra_arguments": list(home_course().config.Execute.extra_arguments)}
if message_bytes:
    traits["max_message_bytes"] = message_bytes
settings = SandboxedExecute(**traits).execution_settings()
workdir = scratch_copy(Path(tempfile.mkdtemp()), settings.limits.workdir_bytes)
started = time.monotonic()
try:
    report = execute(nb, workdir, settings)
finally:
    remove_scratch(workdir)
print(json.dumps({"peak_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "seconds": time.monotonic() - started, "problems": report.problems}))
"""


def run_case(cells: list[str], message_bytes: int = 0) -> dict:
    done = subprocess.run([sys.executable, "-c", GRADER, json.dumps(cells), str(message_bytes)],
                          capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise SystemExit(f"grader failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--uncapped", action="store_true", help="also the 1 GB case with the cap raised to 2 GiB")
    args = parser.parse_args()
    cases = {name: (cells, 0) for name, cells in CASES.items()}
    if args.uncapped:
        cases["prints 1 GB, cap raised to 2 GiB"] = (CASES["prints 1 GB"], 2 * 2 ** 30)
    results: dict[str, list[dict]] = {name: [] for name in cases}
    for round_ in range(args.repeats):
        for name, (cells, message_bytes) in cases.items():
            results[name].append(run_case(cells, message_bytes))
            print(f"round {round_ + 1}: {name}: {results[name][-1]}", file=sys.stderr)
    honest = statistics.median(r["peak_mib"] for r in results["honest"])
    print(f"| case | grader peak memory (MiB, median of {args.repeats}) | vs honest | wall s | reason given |")
    print("|---|---|---|---|---|")
    for name, runs in results.items():
        peak = statistics.median(r["peak_mib"] for r in runs)
        seconds = statistics.median(r["seconds"] for r in runs)
        reason = "; ".join(runs[-1]["problems"]) or "-"
        print(f"| {name} | {peak:.0f} | {peak / honest:.2f}x | {seconds:.1f} | {reason} |")


if __name__ == "__main__":
    main()
