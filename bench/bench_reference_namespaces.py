"""Benchmark: what an in-process test pays to run a source notebook's reference cells, with its figure cells
drawn against left out (``coursekit.testing.notebooks.solution_namespace(figures=...)``), side by side in one
run (issue 23). Tests build such a namespace for every test cell they judge (``reference_records`` runs the
notebook up to that cell), so this is paid many times per notebook. Each notebook runs up to its first
training cell (Problems 3k and 4: tests load the session's trained weights instead). CPU of this process,
medians of the rounds; the rounds interleave the two ways, after one warm-up run of each.

Run: .venv/bin/python bench/bench_reference_namespaces.py [--rounds 5]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("MPLBACKEND", "Agg")

from coursekit.optional import marks_figure  # noqa: E402
from coursekit.testing import notebooks  # noqa: E402

FIRST_TRAINING = {"rnn_gradients.ipynb": "train_rnn", "surname_classification.ipynb": "p4_train"}


def cpu_seconds(notebook: str, figures: bool) -> float:
    start = time.process_time()
    notebooks.solution_namespace(notebook, until_grade_id=FIRST_TRAINING.get(notebook), figures=figures)
    return time.process_time() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    names = sorted(p.name for p in notebooks.SOURCE_DIR.glob("*.ipynb"))
    print(f"{'notebook':26s} {'figure cells':>12s} {'drawn':>9s} {'left out':>9s} {'ratio':>6s}")
    for name in names:
        count = sum(marks_figure(c) for c in notebooks.load(notebooks.SOURCE_DIR / name).cells)
        if not count:
            continue
        runs: dict[bool, list[float]] = {True: [], False: []}
        for figures in (True, False):  # warm-up: imports, matplotlib's font cache
            cpu_seconds(name, figures)
        for _ in range(args.rounds):
            for figures in (True, False):
                runs[figures].append(cpu_seconds(name, figures))
        drawn, left_out = statistics.median(runs[True]), statistics.median(runs[False])
        print(f"{name:26s} {count:12d} {drawn:8.3f}s {left_out:8.3f}s {left_out / drawn:6.2f}")


if __name__ == "__main__":
    main()
