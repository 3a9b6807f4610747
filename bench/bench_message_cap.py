"""Benchmark: the grader's peak memory while a kernel prints 1 GB, or floods messages just under the size
limit, against an honest notebook, side by side.

Each case runs in a fresh grader process (``coursekit.testing.floods``: ``executor.execute`` of a small
notebook in the full sandbox, with the course's default limits), which reports its own peak resident memory
(``ru_maxrss``), so the cases do not share a high-water mark. Cases alternate (the machine is shared, each
round sees the same load); medians are reported:

* ``honest``: a notebook that prints a few lines and a 100 kB output (what a student's notebook does);
* ``prints 1 GB``: one cell ``print('x' * 10**9)``, one output message of 1 GB (issue 19, item 8: this
  raised the grader's peak from 130 MiB to 2,990 MiB before messages were capped);
* ``floods 15 MiB messages``: 200 messages of 15 MiB (3 GB), each under the 16 MiB message limit;
* ``--uncapped`` adds the two attacks without the caps (the old behaviour: ``max_message_bytes`` 2 GiB,
  ``max_received_bytes`` unlimited, ZeroMQ's default queue of 1,000 messages; needs several GB of memory).

Target: the attacks' peak memory bounded (within 1.2x of honest for one huge message). Run:
.venv/bin/python bench/bench_message_cap.py [--repeats 3] [--uncapped] [--only floods]
"""
from __future__ import annotations

import argparse
import statistics
import sys

from coursekit.testing.floods import FLOODS_15MIB, HONEST, PRINTS_1GB, grade_in_fresh_process

CASES = {"honest": HONEST, "prints 1 GB": PRINTS_1GB, "floods 15 MiB messages": FLOODS_15MIB}
UNCAPPED = {"max_message_bytes": 2 * 2 ** 30, "max_received_bytes": 2 ** 62, "max_queued_messages": 1000}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--uncapped", action="store_true", help="also the attacks without the caps (old behaviour)")
    parser.add_argument("--only", help="only the cases whose name contains this (and the honest one)")
    args = parser.parse_args()
    cases = {name: (cells, {}) for name, cells in CASES.items()}
    if args.uncapped:
        cases["prints 1 GB, uncapped"] = (PRINTS_1GB, UNCAPPED)
        cases["floods 15 MiB messages, uncapped"] = (FLOODS_15MIB, UNCAPPED)
    if args.only:
        cases = {name: case for name, case in cases.items() if name == "honest" or args.only in name}
    results: dict[str, list[dict]] = {name: [] for name in cases}
    for round_ in range(args.repeats):
        for name, (cells, traits) in cases.items():
            run = grade_in_fresh_process(cells, **traits)
            results[name].append(run)
            print(f"round {round_ + 1}: {name}: {run['peak_mib']:.0f} MiB, {run['seconds']:.1f} s, "
                  f"{run['problems']}", file=sys.stderr)
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
